/*
 * snapshot_test.c - bounded history in storage: compaction into a base
 * (state unchanged, log rows gone, verify passes, generation after
 * generation), the OR-Set join across snapshots in either order, installs
 * of a peer's snapshot (a node's unsynced writes kept) and the refusal of a
 * flipped byte, an untrusted maker and a short encoding with nothing
 * applied, and a SIGKILL in the middle of compaction and of an install.
 */
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backup.h"
#include "hlc.h"
#include "snapshot.h"
#include "storetest.h"

typedef struct {
    char *dir;
    jv_keypair a, b, c, evil;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    f->dir = st_mkdtemp();
    st_keypair(&f->a, 61);
    st_keypair(&f->b, 62);
    st_keypair(&f->c, 63);
    st_keypair(&f->evil, 64);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    st_rmdir(f->dir);
    free(f);
    return 0;
}

static jv_store *node_open(fx *f, const char *name, const jv_keypair *kp)
{
    char *p = st_path(f->dir, name);
    jv_store *st = st_open(p);
    free(p);
    assert_int_equal(jv_store_set_self(st, &kp->pk), JV_OK);
    return st;
}

static uint64_t clock_ms = 1000;

static uint64_t tick(void)
{
    return jv_hlc_make(++clock_ms, 0);
}

/* A commit of several kinds, numbered i; every fifth removes a key. */
static void write_some(jv_store *st, const jv_keypair *kp, int i)
{
    char key[32], val[48], name[16];
    /* A remove names the key the commit before added. */
    snprintf(key, sizeof(key), "doc/%03d", (i - (i % 5 == 4)) % 40);
    snprintf(val, sizeof(val), "{\"n\":%d}", i);
    snprintf(name, sizeof(name), "c%d", i % 5);
    uint64_t t = tick();
    jv_intent in[4] = {
        st_counter(name, i % 3 ? 2 : -1),
        st_audit(clock_ms, "writer", "put", key, val),
        i % 5 == 4 ? st_rm(key) : st_add(key, val, t),
        st_config(name, val, t),
    };
    jv_err r = st_commit(st, kp, t, in, 4, NULL);
    assert_true(r == JV_OK || r == JV_ENOTFOUND);
}

static void trust(jv_store *st, const jv_keypair *kp, const jv_id *node)
{
    jv_intent in = st_trust(node, true, tick(), "peer");
    assert_int_equal(st_commit(st, kp, jv_hlc_make(clock_ms, 0), &in, 1, NULL),
                     JV_OK);
}

static jv_err copy_row(void *arg, const jv_log_row *r)
{
    jv_store *dst = arg;
    st_batch b;
    st_batch_from_row(&b, r);
    jv_err res = st_apply1(dst, &b, 0);
    st_batch_fini(&b);
    assert_true(res == JV_OK || res == JV_EDUP || res == JV_EGAP);
    return JV_OK;
}

/* Anti-entropy by hand: every batch src logs, offered to dst. */
static void sync_from(jv_store *dst, jv_store *src)
{
    assert_int_equal(jv_store_log_scan(src, copy_row, dst), JV_OK);
}

/* The replicated state without the log (st_export minus its log lines). */
static char *state_of(jv_store *st)
{
    char *s = st_export(st, false);
    char *out = calloc(1, strlen(s) + 1), *w = out;
    for (char *line = s; *line;) {
        char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line + 1) : strlen(line);
        if (strncmp(line, "log", 3) != 0) {
            memcpy(w, line, n);
            w += n;
        }
        line += n;
    }
    free(s);
    return out;
}

/* st's replicated state is want's. */
static void state_is(jv_store *st, const char *want)
{
    char *got = state_of(st);
    assert_string_equal(want, got);
    free(got);
}

/* Whether an archive value (the last field of its line, in hex) is in a
 * state rendering. */
static bool has_value(const char *state, const char *v)
{
    char pat[256];
    pat[0] = ' ';
    jv_hex((const uint8_t *)v, strlen(v), pat + 1);
    strcat(pat, "\n");
    return strstr(state, pat) != NULL;
}

static jv_err count_above(void *arg, const jv_log_row *r)
{
    uint64_t *n = arg;
    if (r->first_seq > n[1] && r->hlc > n[2])
        n[0]++;
    return JV_OK;
}

/* Batches of the log starting after seq and stamped after hlc. */
static uint64_t batches_after(jv_store *st, uint64_t seq, uint64_t hlc)
{
    uint64_t n[3] = {0, seq, hlc};
    assert_int_equal(jv_store_log_scan(st, count_above, n), JV_OK);
    return n[0];
}

static void check_verified(jv_store *st)
{
    jv_verify_report r;
    assert_int_equal(jv_store_verify(st, &r), JV_OK);
    if (!jv_verify_ok(&r))
        fail_msg("verify: integrity %s, sig %llu link %llu enc %llu vv %d "
                 "state %d %s base %d/%d %s",
                 r.integrity_msg, (unsigned long long)r.bad_signatures,
                 (unsigned long long)r.bad_links,
                 (unsigned long long)r.bad_encodings, r.vv_matches,
                 r.state_matches, r.state_msg, r.base, r.base_ok, r.base_msg);
}

static uint64_t log_batches(jv_store *st)
{
    jv_store_stats s;
    assert_int_equal(jv_store_stats_get(st, &s), JV_OK);
    return s.batches;
}

static void frontier_all(jv_store *st, jv_vv *out)
{
    assert_int_equal(jv_store_vv(st, out), JV_OK);
}

static void compact(jv_store *st, const jv_keypair *kp, const jv_vv *front,
                    jv_compact_stats *cs)
{
    jv_err err = jv_store_compact(st, kp, front, INT64_MAX, cs);
    if (err)
        fail_msg("compact: %s (%s)", jv_errname(err), jv_store_errmsg(st));
}

/* Compaction leaves the state as it was, the log shorter, verify happy;
 * a second round builds on the first base; a frontier below the vector
 * keeps what is above it. */
static void test_compact_generations(void **state)
{
    fx *f = *state;
    jv_store *a = node_open(f, "a.db", &f->a);
    jv_store *b = node_open(f, "b.db", &f->b);
    jv_vv front;
    jv_compact_stats cs;
    jv_vv_init(&front);
    for (int i = 0; i < 60; i++) {
        write_some(a, &f->a, i);
        write_some(b, &f->b, 1000 + i);
    }
    sync_from(a, b);
    char *before = state_of(a);
    uint64_t n0 = log_batches(a);
    assert_true(n0 >= 100);
    frontier_all(a, &front);
    /* Part of b's history only (b's sequence numbers count operations). */
    jv_vv_set(&front, &f->b.pk, 60);
    uint64_t keep = batches_after(b, 60, 0);
    assert_true(keep > 10 && keep < n0 / 2);
    compact(a, &f->a, &front, &cs);
    assert_true(cs.built);
    assert_int_equal(log_batches(a), keep);
    char *after = state_of(a);
    assert_string_equal(before, after);
    free(after);
    check_verified(a);

    /* More writes, then everything. */
    for (int i = 60; i < 90; i++)
        write_some(a, &f->a, i);
    free(before);
    before = state_of(a);
    frontier_all(a, &front);
    compact(a, &f->a, &front, &cs);
    assert_true(cs.built);
    assert_int_equal(log_batches(a), 0);
    jv_snap_info info;
    assert_int_equal(jv_store_base_get(a, &info, NULL), JV_OK);
    assert_int_equal(info.gen, 2);
    after = state_of(a);
    assert_string_equal(before, after);
    free(after);
    check_verified(a);

    /* Nothing new: nothing built. */
    compact(a, &f->a, &front, &cs);
    assert_false(cs.built);
    /* Batches sent again after they were compacted are duplicates, not
     * equivocations. */
    sync_from(a, b);
    after = state_of(a);
    assert_string_equal(before, after);
    free(after);

    /* Writes after compaction keep numbering and verify. */
    write_some(a, &f->a, 200);
    check_verified(a);
    free(before);
    jv_vv_fini(&front);
    jv_store_close(a);
    jv_store_close(b);
}

/* A retention bound (max_hlc) keeps recent batches. */
static void test_compact_retention(void **state)
{
    fx *f = *state;
    jv_store *a = node_open(f, "a.db", &f->a);
    jv_vv front;
    jv_compact_stats cs;
    jv_vv_init(&front);
    clock_ms = 10000;
    for (int i = 0; i < 20; i++)
        write_some(a, &f->a, i);
    frontier_all(a, &front);
    /* Batches stamped up to the tenth commit only. */
    assert_int_equal(
        jv_store_compact(a, &f->a, &front, jv_hlc_make(10010, 0xffff), &cs),
        JV_OK);
    assert_true(cs.built);
    uint64_t keep = batches_after(a, 0, jv_hlc_make(10010, 0xffff));
    assert_true(keep >= 8);
    assert_int_equal(log_batches(a), keep);
    check_verified(a);
    jv_vv_fini(&front);
    jv_store_close(a);
}

static void encode(jv_store *st, jv_buf *out)
{
    jv_buf_init(out);
    assert_int_equal(jv_snap_encode(st, out), JV_OK);
}

/* OR-Set: x adds k twice (dots x1, x2); y got x1 and removed it. Joining
 * y's snapshot into x keeps x2 (add wins) and drops x1; joining the
 * snapshots into empty stores in either order gives the same state, also
 * when the remove arrives before its add. */
static void test_join_orset(void **state)
{
    fx *f = *state;
    jv_store *x = node_open(f, "x.db", &f->a);
    jv_store *y = node_open(f, "y.db", &f->b);
    jv_intent in;
    in = st_add("k", "v1", tick());
    assert_int_equal(
        st_commit(x, &f->a, jv_hlc_make(clock_ms, 0), &in, 1, NULL), JV_OK);
    jv_buf old_x;
    encode(x, &old_x); /* x with x1 only */
    sync_from(y, x);
    in = st_rm("k");
    assert_int_equal(
        st_commit(y, &f->b, jv_hlc_make(tick() >> 16, 0), &in, 1, NULL), JV_OK);
    in = st_add("k", "v2", tick());
    assert_int_equal(
        st_commit(x, &f->a, jv_hlc_make(clock_ms, 0), &in, 1, NULL), JV_OK);

    /* The reference: every batch replayed. */
    jv_store *ref = node_open(f, "ref.db", &f->c);
    sync_from(ref, x);
    sync_from(ref, y);
    char *want = state_of(ref);
    assert_true(has_value(want, "v2"));
    assert_false(has_value(want, "v1"));

    jv_buf sx, sy;
    encode(x, &sx);
    encode(y, &sy);
    assert_int_equal(jv_store_snap_join(x, sy.data, sy.len), JV_OK);
    state_is(x, want);
    char *got;

    jv_store *e1 = node_open(f, "e1.db", &f->c);
    jv_store *e2 = node_open(f, "e2.db", &f->c);
    assert_int_equal(jv_store_snap_join(e1, sx.data, sx.len), JV_OK);
    assert_int_equal(jv_store_snap_join(e1, sy.data, sy.len), JV_OK);
    assert_int_equal(jv_store_snap_join(e2, sy.data, sy.len), JV_OK);
    assert_int_equal(jv_store_snap_join(e2, sx.data, sx.len), JV_OK);
    state_is(e1, want);
    state_is(e2, want);
    /* The remove (in y's snapshot) first, then a snapshot with the add it
     * removed: the add does not come back. */
    jv_store *e3 = node_open(f, "e3.db", &f->c);
    assert_int_equal(jv_store_snap_join(e3, sy.data, sy.len), JV_OK);
    assert_int_equal(jv_store_snap_join(e3, old_x.data, old_x.len), JV_OK);
    got = state_of(e3);
    assert_false(has_value(got, "v1"));
    assert_true(has_value(got, "v2") == false);
    free(got);
    /* Joins are idempotent. */
    assert_int_equal(jv_store_snap_join(e1, sx.data, sx.len), JV_OK);
    state_is(e1, want);

    /* Same state, same bytes. */
    jv_buf s1, sr;
    encode(e1, &s1);
    encode(ref, &sr);
    assert_int_equal(s1.len, sr.len);
    assert_memory_equal(s1.data, sr.data, s1.len);

    free(want);
    jv_buf_fini(&old_x);
    jv_buf_fini(&sx);
    jv_buf_fini(&sy);
    jv_buf_fini(&s1);
    jv_buf_fini(&sr);
    jv_store_close(x);
    jv_store_close(y);
    jv_store_close(ref);
    jv_store_close(e1);
    jv_store_close(e2);
    jv_store_close(e3);
}

/* Dots at and beyond 2^40 are filed in other spans of their replica
 * (storage.md, archive_span): a join adds such entries, and drops one when
 * the other side's context saw it removed (a cloud dot there), as
 * replaying the batches does; joins in either order agree. */
static void test_join_orset_far_dots(void **state)
{
    fx *f = *state;
    static const uint8_t zero[JV_HASH_LEN];
    static const char *const keys[3] = {"near", "far", "last"};
    static const char *const vals[3] = {"\"n\"", "\"f\"", "\"l\""};
    const uint64_t dots[3] = {3, (UINT64_C(1) << 40) + 7, INT64_MAX};
    uint64_t hlc = tick();
    jv_op ops[3];
    memset(ops, 0, sizeof(ops));
    for (int i = 0; i < 3; i++) {
        ops[i].kind = JV_OP_ARCHIVE_ADD;
        ops[i].add.key = jv_str_c(keys[i]);
        ops[i].add.value = jv_str_c(vals[i]);
        ops[i].add.stamp = hlc;
        ops[i].add.dot_n = dots[i];
    }
    st_batch b;
    st_batch_make(&b, &f->evil, 1, zero, hlc, ops, 3);
    jv_store *x = node_open(f, "x.db", &f->a);
    jv_store *y = node_open(f, "y.db", &f->b);
    assert_int_equal(st_apply1(x, &b, 0), JV_OK);
    assert_int_equal(st_apply1(y, &b, 0), JV_OK);
    jv_intent in = st_rm("far");
    assert_int_equal(
        st_commit(y, &f->b, jv_hlc_make(tick() >> 16, 0), &in, 1, NULL), JV_OK);

    jv_store *ref = node_open(f, "ref.db", &f->c);
    sync_from(ref, x);
    sync_from(ref, y);
    char *want = state_of(ref);
    assert_true(has_value(want, vals[0]));
    assert_false(has_value(want, vals[1]));
    assert_true(has_value(want, vals[2]));

    jv_buf sx, sy;
    encode(x, &sx);
    encode(y, &sy);
    assert_int_equal(jv_store_snap_join(x, sy.data, sy.len), JV_OK);
    state_is(x, want);
    char *got;
    jv_store *e1 = node_open(f, "e1.db", &f->c);
    jv_store *e2 = node_open(f, "e2.db", &f->c);
    assert_int_equal(jv_store_snap_join(e1, sx.data, sx.len), JV_OK);
    got = state_of(e1);
    assert_true(has_value(got, vals[1]));
    free(got);
    assert_int_equal(jv_store_snap_join(e1, sy.data, sy.len), JV_OK);
    assert_int_equal(jv_store_snap_join(e2, sy.data, sy.len), JV_OK);
    assert_int_equal(jv_store_snap_join(e2, sx.data, sx.len), JV_OK);
    state_is(e1, want);
    state_is(e2, want);

    free(want);
    st_batch_fini(&b);
    jv_buf_fini(&sx);
    jv_buf_fini(&sy);
    jv_store_close(x);
    jv_store_close(y);
    jv_store_close(ref);
    jv_store_close(e1);
    jv_store_close(e2);
}

/* Cluster keys across a join: two different adds of one id (an origin
 * that signed both, one on each side) revoke it, as applying both batches
 * does; a revocation on one side wins over the other's add. */
static void test_join_cluster_keys(void **state)
{
    fx *f = *state;
    jv_store *x = node_open(f, "x.db", &f->a);
    jv_store *y = node_open(f, "y.db", &f->b);
    jv_store *ref = node_open(f, "ref.db", &f->c);
    jv_intent in = {0};
    in.op.kind = JV_OP_KEY_ADD;
    in.op.key_add.id = jv_str_c("k1");
    in.op.key_add.name = jv_str_c("one");
    in.op.key_add.role = jv_str_c("reader");
    in.op.key_add.time_ms = 5;
    in.op.key_add.by = jv_str_c("admin");
    memset(in.op.key_add.hash, 1, sizeof(in.op.key_add.hash));
    assert_int_equal(st_commit(x, &f->a, tick(), &in, 1, NULL), JV_OK);
    in.op.key_add.name = jv_str_c("other");
    assert_int_equal(st_commit(y, &f->b, tick(), &in, 1, NULL), JV_OK);
    in.op.key_add.id = jv_str_c("k2");
    assert_int_equal(st_commit(y, &f->b, tick(), &in, 1, NULL), JV_OK);
    jv_intent rv = {0};
    rv.op.kind = JV_OP_KEY_REVOKE;
    rv.op.key_revoke.id = jv_str_c("k2");
    rv.op.key_revoke.time_ms = 9;
    rv.op.key_revoke.by = jv_str_c("admin");
    assert_int_equal(st_commit(x, &f->a, tick(), &rv, 1, NULL), JV_OK);
    sync_from(ref, x);
    sync_from(ref, y);
    char *want = state_of(ref);
    assert_non_null(strstr(want, "conflicting adds"));
    jv_buf sy;
    encode(y, &sy);
    assert_int_equal(jv_store_snap_join(x, sy.data, sy.len), JV_OK);
    state_is(x, want);
    free(want);
    jv_buf_fini(&sy);
    jv_store_close(x);
    jv_store_close(y);
    jv_store_close(ref);
}

/* a compacts; c, with local writes of its own, cannot get a's early
 * batches any more and installs a's base instead. */
static void make_pair(fx *f, jv_store **a, jv_store **c, jv_buf *enc,
                      jv_snap_info *info)
{
    jv_vv front;
    jv_compact_stats cs;
    jv_vv_init(&front);
    *a = node_open(f, "a.db", &f->a);
    *c = node_open(f, "c.db", &f->c);
    trust(*c, &f->c, &f->a.pk);
    trust(*a, &f->a, &f->c.pk);
    for (int i = 0; i < 40; i++)
        write_some(*a, &f->a, i);
    for (int i = 0; i < 5; i++)
        write_some(*c, &f->c, 500 + i);
    frontier_all(*a, &front);
    compact(*a, &f->a, &front, &cs);
    assert_int_equal(log_batches(*a), 0);
    jv_buf_init(enc);
    assert_int_equal(jv_store_base_get(*a, info, enc), JV_OK);
    jv_vv_fini(&front);
}

static void expect_refused(jv_store *c, const uint8_t *enc, size_t len,
                           const jv_snap_info *info, const jv_keypair *kp,
                           jv_err want)
{
    char *before = st_export(c, true);
    char msg[256];
    assert_int_equal(
        jv_store_snap_install(c, kp, enc, len, info, msg, sizeof(msg)), want);
    assert_true(msg[0] != '\0');
    char *after = st_export(c, true);
    assert_string_equal(before, after);
    jv_snap_info none;
    assert_int_equal(jv_store_base_get(c, &none, NULL), JV_ENOTFOUND);
    free(before);
    free(after);
}

static void test_install_refusals(void **state)
{
    fx *f = *state;
    jv_store *a, *c;
    jv_buf enc;
    jv_snap_info info;
    make_pair(f, &a, &c, &enc, &info);

    /* One flipped byte, anywhere. */
    for (size_t at = 0; at < enc.len; at += enc.len / 7 + 1) {
        enc.data[at] ^= 0x20;
        expect_refused(c, enc.data, enc.len, &info, &f->c, JV_EDECODE);
        enc.data[at] ^= 0x20;
    }
    /* Cut short. */
    expect_refused(c, enc.data, enc.len - 9, &info, &f->c, JV_EDECODE);
    /* Cut short, and signed so by a trusted maker: the strict decode. */
    jv_snap_info shortinfo = info;
    shortinfo.bytes = enc.len - 9;
    jv_snap_digest(enc.data, enc.len - 9, shortinfo.digest);
    jv_snap_sign(shortinfo.digest, &f->a, shortinfo.sig);
    expect_refused(c, enc.data, enc.len - 9, &shortinfo, &f->c, JV_EDECODE);
    /* A bad signature. */
    jv_snap_info bad = info;
    bad.sig[3] ^= 1;
    expect_refused(c, enc.data, enc.len, &bad, &f->c, JV_ESIG);
    /* Signed by a node c does not trust. */
    jv_snap_info evil = info;
    evil.maker = f->evil.pk;
    jv_snap_sign(info.digest, &f->evil, evil.sig);
    expect_refused(c, enc.data, enc.len, &evil, &f->c, JV_EUNTRUSTED);

    jv_store_close(a);
    jv_store_close(c);
    jv_buf_fini(&enc);
}

static void test_install_keeps_local(void **state)
{
    fx *f = *state;
    jv_store *a, *c;
    jv_buf enc;
    jv_snap_info info;
    make_pair(f, &a, &c, &enc, &info);
    uint64_t mine = log_batches(c);
    char msg[256];
    assert_int_equal(jv_store_snap_install(c, &f->c, enc.data, enc.len, &info,
                                           msg, sizeof(msg)),
                     JV_OK);
    check_verified(c);
    /* c's own batches are still in its log, to be sent; a gets them and
     * both end in the same state. */
    assert_int_equal(log_batches(c), mine);
    sync_from(a, c);
    char *sa = state_of(a), *sc = state_of(c);
    assert_string_equal(sa, sc);
    free(sa);
    free(sc);
    /* Both carry on: a's next batches chain onto c's vector. */
    write_some(a, &f->a, 99);
    sync_from(c, a);
    sa = state_of(a);
    sc = state_of(c);
    assert_string_equal(sa, sc);
    free(sa);
    free(sc);
    check_verified(c);
    check_verified(a);
    /* And c compacts onto the installed base. */
    jv_vv front;
    jv_compact_stats cs;
    jv_vv_init(&front);
    frontier_all(c, &front);
    compact(c, &f->c, &front, &cs);
    assert_true(cs.built);
    check_verified(c);
    jv_vv_fini(&front);
    jv_store_close(a);
    jv_store_close(c);
    jv_buf_fini(&enc);
}

/* SIGKILL at a spread of moments during compaction (and during an
 * install): the reopened database verifies and holds the same state. */
static void kill_during(fx *f, bool install)
{
    char *path = st_path(f->dir, "k.db");
    char *cpath = st_path(f->dir, "kc.db");
    jv_store *st = node_open(f, "k.db", &f->a);
    jv_store *c = node_open(f, "kc.db", &f->c);
    trust(c, &f->c, &f->a.pk);
    for (int i = 0; i < 400; i++)
        write_some(st, &f->a, i);
    for (int i = 0; i < 5; i++)
        write_some(c, &f->c, 900 + i);
    jv_buf enc;
    jv_snap_info info;
    jv_vv front;
    jv_vv_init(&front);
    jv_buf_init(&enc);
    if (install) {
        jv_compact_stats cs;
        frontier_all(st, &front);
        compact(st, &f->a, &front, &cs);
        assert_int_equal(jv_store_base_get(st, &info, &enc), JV_OK);
    }
    jv_store *target = install ? c : st;
    const char *tpath = install ? cpath : path;
    char *want = state_of(target);
    jv_store_close(st);
    jv_store_close(c);
    for (int round = 0; round < 6; round++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            jv_store_opts o;
            jv_store *s;
            jv_store_opts_default(&o);
            if (jv_store_open(tpath, &o, &s, NULL, 0))
                _exit(2);
            jv_vv fr;
            jv_vv_init(&fr);
            jv_store_vv(s, &fr);
            jv_compact_stats cs;
            char msg[256];
            jv_err e = install
                           ? jv_store_snap_install(s, &f->c, enc.data, enc.len,
                                                   &info, msg, sizeof(msg))
                           : jv_store_compact(s, &f->a, &fr, INT64_MAX, &cs);
            _exit(e == JV_OK ? 0 : 3);
        }
        /* Each round kills a little later: from at once to not at all. */
        usleep((useconds_t)(round * round * 4000));
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        assert_false(WIFEXITED(status) && WEXITSTATUS(status) > 1);
        jv_store *s = st_open(tpath);
        check_verified(s);
        char *got = state_of(s);
        if (install) {
            /* Before the install or after it: c's writes are there. */
            assert_true(has_value(got, "{\"n\":903}"));
        } else {
            assert_string_equal(want, got);
        }
        free(got);
        jv_store_close(s);
    }
    /* Whatever was left is finished by a last round. */
    jv_store *s = st_open(tpath);
    jv_vv_clear(&front);
    frontier_all(s, &front);
    if (install) {
        char msg[256];
        jv_err e = jv_store_snap_install(s, &f->c, enc.data, enc.len, &info,
                                         msg, sizeof(msg));
        assert_int_equal(e, JV_OK);
    } else {
        jv_compact_stats cs;
        compact(s, &f->a, &front, &cs);
        assert_int_equal(log_batches(s), 0);
        state_is(s, want);
    }
    check_verified(s);
    jv_store_close(s);
    free(want);
    free(path);
    free(cpath);
    jv_buf_fini(&enc);
    jv_vv_fini(&front);
}

static void test_kill_compact(void **state)
{
    kill_during(*state, false);
}

static void test_kill_install(void **state)
{
    kill_during(*state, true);
}

/* The decoder refuses what is not a snapshot. */
static void test_check_strict(void **state)
{
    (void)state;
    char msg[128];
    static const uint8_t ok[] = {'J', 'V', 'S', 'N', 'A', 'P', 1, 0};
    assert_int_equal(jv_snap_check(ok, sizeof(ok), NULL, msg, sizeof(msg)),
                     JV_OK);
    static const uint8_t trailing[] = {'J', 'V', 'S', 'N', 'A', 'P', 1, 0, 0};
    assert_int_equal(
        jv_snap_check(trailing, sizeof(trailing), NULL, msg, sizeof(msg)),
        JV_EDECODE);
    static const uint8_t badtag[] = {'J', 'V', 'S', 'N', 'A', 'P', 1, 12, 0};
    assert_int_equal(
        jv_snap_check(badtag, sizeof(badtag), NULL, msg, sizeof(msg)),
        JV_EDECODE);
    static const uint8_t noend[] = {'J', 'V', 'S', 'N', 'A', 'P', 1};
    assert_int_equal(
        jv_snap_check(noend, sizeof(noend), NULL, msg, sizeof(msg)),
        JV_EDECODE);
    /* A counter row whose text length runs past the end. */
    static const uint8_t longtext[] = {'J', 'V', 'S', 'N', 'A', 'P', 1,
                                       5,   0,   0,   0,   9,   'a', 0};
    assert_int_equal(
        jv_snap_check(longtext, sizeof(longtext), NULL, msg, sizeof(msg)),
        JV_EDECODE);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_check_strict),        T(test_compact_generations),
        T(test_compact_retention),   T(test_join_orset),
        T(test_join_orset_far_dots), T(test_install_refusals),
        T(test_install_keeps_local), T(test_kill_compact),
        T(test_kill_install),        T(test_join_cluster_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
