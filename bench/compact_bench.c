/*
 * compact_bench.c - what bounded history buys, printed (not a test). Each
 * figure is printed with its baseline, measured in the same run:
 *
 *   1. disk: a store after N counter increments over a fixed state of
 *      STATE names (commits of 100 distinct names), compacted every 10^4
 *      operations as a node with --log-retention 0 would, against the same
 *      writes without compaction; database file plus WAL after a
 *      checkpoint;
 *   2. join: a new store getting the state of the uncompacted one (history
 *      N operations, state STATE entries) by a full replay of its log
 *      (hash, Ed25519 check, decode and jv_store_apply of every batch, in
 *      chunks of 256: the storage work of wave-1 catch-up; the network is
 *      left out) against installing the compacted store's base snapshot
 *      (read, digest, signature, strict decode, join, new base);
 *   3. verify: jv_store_verify on the uncompacted store, then on the same
 *      store after compacting it.
 *
 * Usage: compact_bench [N ...]   (default 100000 1000000; in $TMPDIR)
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "apply.h"
#include "backup.h"
#include "query.h"
#include "snapshot.h"

#define STATE     10000
#define PER_BATCH 100

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void die(const char *what, jv_store *st)
{
    fprintf(stderr, "compact_bench: %s: %s\n", what,
            st ? jv_store_errmsg(st) : "");
    exit(1);
}

static char dir[512];

static jv_store *open_new(const char *name, const jv_keypair *kp)
{
    char p[700], msg[256];
    jv_store_opts o;
    jv_store *st;
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    unlink(p);
    jv_store_opts_default(&o);
    o.create = true;
    if (jv_store_open(p, &o, &st, msg, sizeof(msg)))
        die(msg, NULL);
    if (jv_store_set_self(st, &kp->pk))
        die("set self", st);
    return st;
}

static jv_store *reopen(const char *name)
{
    char p[700], msg[256];
    jv_store_opts o;
    jv_store *st;
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    jv_store_opts_default(&o);
    if (jv_store_open(p, &o, &st, msg, sizeof(msg)))
        die(msg, NULL);
    return st;
}

static uint64_t file_bytes(const char *name)
{
    char p[720];
    struct stat sb;
    uint64_t n = 0;
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    if (stat(p, &sb) == 0)
        n += (uint64_t)sb.st_size;
    snprintf(p, sizeof(p), "%s/%s-wal", dir, name);
    if (stat(p, &sb) == 0)
        n += (uint64_t)sb.st_size;
    return n;
}

static void compact_all(jv_store *st, const jv_keypair *kp)
{
    jv_vv vv;
    jv_compact_stats cs;
    jv_vv_init(&vv);
    if (jv_store_vv(st, &vv) || jv_store_compact(st, kp, &vv, INT64_MAX, &cs))
        die("compact", st);
    jv_vv_fini(&vv);
}

/* n increments of 1 over STATE names, PER_BATCH distinct names a commit;
 * with compaction every 10^4 operations when `compact`. */
static void write_n(jv_store *st, const jv_keypair *kp, uint64_t n,
                    bool compact)
{
    static char names[STATE][16];
    jv_intent in[PER_BATCH];
    for (int i = 0; i < STATE; i++)
        snprintf(names[i], sizeof(names[i]), "c%05d", i);
    uint64_t hlc = (uint64_t)time(NULL) * 1000 << 16;
    for (uint64_t done = 0, k = 0; done < n; k++) {
        memset(in, 0, sizeof(in));
        for (int i = 0; i < PER_BATCH; i++) {
            in[i].op.kind = JV_OP_COUNTER;
            in[i].op.counter.name =
                jv_str_c(names[(k * PER_BATCH + (uint64_t)i) % STATE]);
            in[i].by = 1;
        }
        jv_write_group g = {.intents = in, .n = PER_BATCH};
        jv_commit_info ci;
        if (jv_store_commit_local(st, kp, ++hlc, &g, 1, &ci) || g.result)
            die("commit", st);
        done += PER_BATCH;
        if (compact && done % 10000 == 0)
            compact_all(st, kp);
    }
}

static void checkpoint(jv_store *st)
{
    if (jv_store_checkpoint(st, NULL, NULL))
        die("checkpoint", st);
}

typedef struct {
    jv_store *dst;
    jv_store_batch sb[256];
    jv_batch bt[256];
    jv_buf bytes;
    size_t off[256], len[256], n;
} replay;

static void replay_flush(replay *r)
{
    jv_err res[256];
    for (size_t i = 0; i < r->n; i++) {
        const uint8_t *p = r->bytes.data + r->off[i];
        uint8_t hash[JV_HASH_LEN];
        jv_batch_hash(p, r->len[i], hash);
        if (jv_batch_decode(p, r->len[i], &r->bt[i]))
            die("decode", NULL);
        if (jv_batch_verify_sig(hash, p + r->len[i], &r->bt[i].origin))
            die("signature", NULL);
        memcpy((uint8_t *)r->bytes.data + r->off[i] + r->len[i] + JV_SIG_LEN,
               hash, JV_HASH_LEN);
        r->sb[i] = (jv_store_batch){p, r->len[i], p + r->len[i],
                                    p + r->len[i] + JV_SIG_LEN, &r->bt[i]};
    }
    if (r->n && jv_store_apply(r->dst, r->sb, r->n, 0, res, NULL))
        die("apply", r->dst);
    for (size_t i = 0; i < r->n; i++)
        jv_batch_fini(&r->bt[i]);
    r->n = 0;
    jv_buf_reset(&r->bytes);
}

static jv_err replay_row(void *arg, const jv_log_row *row)
{
    replay *r = arg;
    r->off[r->n] = r->bytes.len;
    r->len[r->n] = row->len;
    jv_buf_append(&r->bytes, row->body, row->len);
    jv_buf_append(&r->bytes, row->sig, JV_SIG_LEN);
    jv_buf_append(&r->bytes, row->hash, JV_HASH_LEN);
    if (++r->n == 256)
        replay_flush(r);
    return JV_OK;
}

static double verify_s(jv_store *st, jv_verify_report *rep)
{
    double t = now_s();
    if (jv_store_verify(st, rep) || !jv_verify_ok(rep))
        die("verify", st);
    return now_s() - t;
}

static void run(uint64_t n)
{
    jv_keypair a, fresh;
    jv_keypair_generate(&a);
    jv_keypair_generate(&fresh);
    printf("\n== N = %" PRIu64 " counter increments, state %d names ==\n", n,
           STATE);
    jv_store *with = open_new("with.db", &a);
    jv_store *without = open_new("without.db", &a);
    double t = now_s();
    write_n(without, &a, n, false);
    double tw = now_s() - t;
    t = now_s();
    write_n(with, &a, n, true);
    compact_all(with, &a);
    double tc = now_s() - t;
    /* Closing checkpoints the WAL into the file and removes it. */
    checkpoint(with);
    checkpoint(without);
    jv_store_close(with);
    jv_store_close(without);
    uint64_t bw = file_bytes("with.db"), bo = file_bytes("without.db");
    with = reopen("with.db");
    without = reopen("without.db");
    printf("disk       without compaction %12" PRIu64 " bytes   with %12" PRIu64
           " bytes   (%.1fx smaller)\n",
           bo, bw, (double)bo / (double)bw);
    printf("writing    without compaction %9.2f s        with %9.2f s\n", tw,
           tc);

    /* Join: full replay of the uncompacted log, or the base. */
    jv_store *r1 = open_new("replay.db", &fresh);
    replay rp = {.dst = r1};
    jv_buf_init(&rp.bytes);
    t = now_s();
    if (jv_store_log_scan(without, replay_row, &rp))
        die("scan", without);
    replay_flush(&rp);
    double t_replay = now_s() - t;
    jv_buf_fini(&rp.bytes);

    jv_store *r2 = open_new("snap.db", &fresh);
    jv_intent tr = {0};
    tr.op.kind = JV_OP_TRUST;
    tr.op.trust.node = a.pk;
    tr.op.trust.trusted = true;
    tr.op.trust.stamp = 1u << 16;
    tr.op.trust.name = jv_str_c("a");
    jv_write_group g = {.intents = &tr, .n = 1};
    jv_commit_info ci;
    if (jv_store_commit_local(r2, &fresh, 1u << 16, &g, 1, &ci))
        die("trust", r2);
    jv_snap_info info;
    jv_buf enc;
    char msg[256];
    jv_buf_init(&enc);
    t = now_s();
    if (jv_store_base_get(with, &info, &enc))
        die("base", with);
    if (jv_store_snap_install(r2, &fresh, enc.data, enc.len, &info, msg,
                              sizeof(msg)))
        die(msg, r2);
    double t_snap = now_s() - t;
    printf("join       full replay %9.2f s   snapshot %9.3f s   (%.0fx "
           "faster; base %" PRIu64 " bytes)\n",
           t_replay, t_snap, t_replay / t_snap, info.bytes);
    jv_buf_fini(&enc);

    /* Verify on one store, before and after compacting it. */
    jv_verify_report rep;
    double v_before = verify_s(without, &rep);
    uint64_t nb = rep.batches;
    compact_all(without, &a);
    double v_after = verify_s(without, &rep);
    printf("verify     before compaction %9.2f s (%" PRIu64
           " batches)   after %9.3f s (%" PRIu64 " batches; %.0fx)\n",
           v_before, nb, v_after, rep.batches, v_before / v_after);
    jv_store_close(with);
    jv_store_close(without);
    jv_store_close(r1);
    jv_store_close(r2);
}

int main(int argc, char **argv)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/jarvis-compact-bench-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    if (argc > 1)
        for (int i = 1; i < argc; i++)
            run(strtoull(argv[i], NULL, 10));
    else {
        run(100000);
        run(1000000);
    }
    static const char *const files[] = {"with.db", "without.db", "replay.db",
                                        "snap.db"};
    for (size_t i = 0; i < 4; i++) {
        static const char *const sfx[] = {"", "-wal", "-shm"};
        for (size_t k = 0; k < 3; k++) {
            char p[800];
            snprintf(p, sizeof(p), "%s/%s%s", dir, files[i], sfx[k]);
            unlink(p);
        }
    }
    rmdir(dir);
    return 0;
}
