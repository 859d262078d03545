/*
 * storage_bench.c - what the storage layer costs, printed (not a test).
 *
 *   1. Apply throughput (operations per second) for counter, audit, config
 *      and archive operations at 1, 64 and 1024 operations per batch, one
 *      transaction per batch on every side. Batches are built (texts,
 *      encoded, signed by the peer) before any clock starts; then, inside
 *      the clock:
 *      - remote apply: what the node's writer does for every peer batch
 *        (node/writer.c run_remote): peek at the header, read the origin's
 *        head, hash the body, verify the Ed25519 signature, decode the
 *        operations, jv_store_apply (one batch per call), free the decoded
 *        batch;
 *      - local commit: jv_store_commit_local of the batch's intents (encode,
 *        hash, sign, log and materialize), the intents built outside;
 *      - baseline INSERT: plain INSERTs of the operations' fields (built
 *        outside, as for local) into a table without any index, with the
 *        store's pragmas (WAL, synchronous=NORMAL), opened as the store
 *        opens its connections (without the connection's mutex): what a
 *        store without a log, CRDT metadata or signatures would do. One
 *        execution of a prepared single-row INSERT per row, while the
 *        store writes a remote batch's rows by multi-row INSERTs of up to
 *        64 rows
 *        (storage/apply.c): with multi-row INSERTs the baseline too would
 *        be faster;
 *      - baseline verify+INSERT: the same INSERTs of the rows decoded from
 *        the same signed batches, after the same hash, Ed25519 verification
 *        and decode as remote apply: what a naive store that checks its
 *        peers' signatures would do.
 *      remote is shown against both baselines, local against INSERT. Each
 *      figure is the median of three rounds, the four sides interleaved.
 *      SQLite is set up for all of them as jarvisd sets it (memory
 *      statistics off: jv_store_process_init).
 *   2. Signature verification per operation (hash of the body plus one
 *      Ed25519 verify per batch, divided by the operations in it).
 *   3. Peak resident memory of a process that inserts 1,000,000 archive
 *      entries and then lists all of them page by page; and the time to
 *      reopen that database (open runs PRAGMA quick_check).
 *
 * Usage: storage_bench [directory]   (default $TMPDIR or /tmp)
 *        storage_bench --apply PER ROUNDS [directory]
 *            only the apply throughput table (part 1) at PER operations
 *            per batch, each figure the median of ROUNDS (odd) rounds
 *        storage_bench --baseline-mix PER [directory]
 *            only the INSERT baseline of the four kinds in equal shares,
 *            PER rows per transaction: one figure, operations/s (for
 *            http_bench.sh's writes of every kind)
 */
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "apply.h"
#include "hlc.h"
#include "query.h"
#include "store.h"

static const uint8_t zero_hash[JV_HASH_LEN];
static const char *bench_dir;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *why)
{
    fprintf(stderr, "storage_bench: %s: %s\n", what, why);
    exit(1);
}

static char *fresh_path(const char *name)
{
    static int serial;
    size_t n = strlen(bench_dir) + strlen(name) + 48;
    char *p = malloc(n);
    if (!p)
        die("malloc", "out of memory");
    snprintf(p, n, "%s/jv-bench-%d-%d-%s", bench_dir, (int)getpid(), serial++,
             name);
    return p;
}

static void remove_db(const char *path)
{
    char buf[4096];
    unlink(path);
    snprintf(buf, sizeof(buf), "%s-wal", path);
    unlink(buf);
    snprintf(buf, sizeof(buf), "%s-shm", path);
    unlink(buf);
}

static jv_store *open_store(const char *path)
{
    jv_store_opts o;
    jv_store *st;
    char msg[256];
    jv_store_opts_default(&o);
    o.create = true;
    if (jv_store_open(path, &o, &st, msg, sizeof(msg)) != JV_OK)
        die("open", msg);
    return st;
}

/* -- workloads ------------------------------------------------------------ */

enum {
    K_COUNTER,
    K_AUDIT,
    K_CONFIG,
    K_ARCHIVE,
    K_COUNT
};
static const char *const kind_name[K_COUNT] = {"counter", "audit", "config",
                                               "archive"};

/* The texts of operation i: distinct names and keys within a batch of
 * 1024, repeating across batches for counters and config (updates), new
 * for audit and archive (inserts). */
typedef struct {
    char name[24];
    char key[40];
    char value[96];
} texts;

static const char detail[] =
    "{\"request\":\"PUT /v1/config\",\"status\":200,\"bytes\":512}";

static void make_texts(int kind, uint64_t i, texts *t)
{
    snprintf(t->name, sizeof(t->name), "requests.%04u", (unsigned)(i % 1024));
    if (kind == K_ARCHIVE)
        snprintf(t->key, sizeof(t->key), "doc/2024/%012" PRIu64, i);
    else
        snprintf(t->key, sizeof(t->key), "service.limits.%04u",
                 (unsigned)(i % 1024));
    snprintf(t->value, sizeof(t->value),
             "{\"id\":%" PRIu64 ",\"owner\":\"ops\",\"size\":4096,"
             "\"tags\":[\"a\",\"b\"]}",
             i);
}

static jv_op make_op(int kind, uint64_t i, const texts *t, uint64_t stamp)
{
    jv_op op;
    memset(&op, 0, sizeof(op));
    switch (kind) {
    case K_COUNTER:
        op.kind = JV_OP_COUNTER;
        op.counter.name = jv_str_c(t->name);
        op.counter.p = i + 1;
        break;
    case K_AUDIT:
        op.kind = JV_OP_AUDIT;
        op.audit.time_ms = jv_hlc_ms(stamp);
        op.audit.actor = jv_str_c("admin-1");
        op.audit.action = jv_str_c("config.set");
        op.audit.target = jv_str_c(t->key);
        op.audit.detail = jv_str_c(detail);
        break;
    case K_CONFIG:
        op.kind = JV_OP_CONFIG;
        op.config.key = jv_str_c(t->key);
        op.config.value = jv_str_c(t->value);
        op.config.stamp = stamp;
        break;
    default:
        op.kind = JV_OP_ARCHIVE_ADD;
        op.add.key = jv_str_c(t->key);
        op.add.value = jv_str_c(t->value);
        op.add.stamp = stamp;
        op.add.dot_n = i + 1;
        break;
    }
    return op;
}

static jv_intent make_intent(int kind, uint64_t i, const texts *t,
                             uint64_t stamp)
{
    jv_intent in;
    memset(&in, 0, sizeof(in));
    in.op = make_op(kind, i, t, stamp);
    if (kind == K_COUNTER)
        in.by = 1;
    return in;
}

/* A signed batch, as a peer's message carries it (not yet verified or
 * decoded: the writer does that, inside the clock). */
typedef struct {
    jv_buf body;
    uint8_t hash[JV_HASH_LEN];
    uint8_t sig[JV_SIG_LEN];
} pbatch;

static pbatch *build_batches(const jv_keypair *kp, int kind, size_t per,
                             size_t nb)
{
    pbatch *b = calloc(nb, sizeof(*b));
    texts *t = calloc(per, sizeof(*t));
    jv_op *ops = calloc(per, sizeof(*ops));
    if (!b || !t || !ops)
        die("malloc", "out of memory");
    const uint8_t *prev = zero_hash;
    uint64_t seq = 1;
    for (size_t k = 0; k < nb; k++) {
        uint64_t stamp = jv_hlc_make(1700000000000u + k, 0);
        for (size_t j = 0; j < per; j++) {
            uint64_t i = k * per + j;
            make_texts(kind, i, &t[j]);
            ops[j] = make_op(kind, i, &t[j], stamp);
        }
        jv_batch in = {.origin = kp->pk,
                       .first_seq = seq,
                       .hlc = stamp,
                       .ops = ops,
                       .nops = (uint32_t)per};
        memcpy(in.prev, prev, JV_HASH_LEN);
        jv_buf_init(&b[k].body);
        if (jv_batch_encode(&in, &b[k].body) != JV_OK)
            die("encode", "failed");
        jv_batch_hash(b[k].body.data, b[k].body.len, b[k].hash);
        jv_batch_sign(b[k].hash, kp, b[k].sig);
        prev = b[k].hash;
        seq += per;
    }
    free(t);
    free(ops);
    return b;
}

static void free_batches(pbatch *b, size_t nb)
{
    for (size_t k = 0; k < nb; k++)
        jv_buf_fini(&b[k].body);
    free(b);
}

/* Operations per configuration: enough to take a measurable time, few
 * enough for a short run. Single-operation batches are one transaction
 * each, and the slowest. */
static size_t total_ops(size_t per)
{
    return per == 1 ? 1024 : 65536;
}

/* One peer batch as node/writer.c run_remote handles it. */
static void apply_one(jv_store *st, const pbatch *b)
{
    jv_batch_head h;
    uint64_t applied;
    uint8_t last[JV_HASH_LEN], hash[JV_HASH_LEN];
    jv_batch dec;
    jv_err res;
    if (jv_batch_peek(b->body.data, b->body.len, &h) != JV_OK)
        die("peek", "failed");
    if (jv_store_origin_head(st, &h.origin, &applied, last) == JV_OK &&
        h.last_seq <= applied)
        die("apply", "a batch is already applied");
    jv_batch_hash(b->body.data, b->body.len, hash);
    if (jv_batch_verify_sig(hash, b->sig, &h.origin) != JV_OK)
        die("verify", "bad signature");
    if (jv_batch_decode(b->body.data, b->body.len, &dec) != JV_OK)
        die("decode", "failed");
    jv_store_batch sb = {b->body.data, b->body.len, b->sig, hash, &dec};
    if (jv_store_apply(st, &sb, 1, 0, &res, NULL) != JV_OK || res != JV_OK)
        die("apply", jv_store_errmsg(st));
    jv_batch_fini(&dec);
}

static double run_remote(const jv_keypair *kp, int kind, size_t per)
{
    size_t nb = total_ops(per) / per;
    pbatch *b = build_batches(kp, kind, per, nb);
    char *path = fresh_path("remote.db");
    jv_store *st = open_store(path);
    double t0 = now_s();
    for (size_t k = 0; k < nb; k++)
        apply_one(st, &b[k]);
    double dt = now_s() - t0;
    jv_store_close(st);
    remove_db(path);
    free(path);
    free_batches(b, nb);
    return (double)(nb * per) / dt;
}

static double run_local(const jv_keypair *kp, int kind, size_t per)
{
    size_t nb = total_ops(per) / per;
    char *path = fresh_path("local.db");
    jv_store *st = open_store(path);
    if (jv_store_set_self(st, &kp->pk) != JV_OK)
        die("set self", jv_store_errmsg(st));
    texts *t = calloc(per, sizeof(*t));
    jv_intent *in = calloc(per, sizeof(*in));
    if (!t || !in)
        die("malloc", "out of memory");
    double spent = 0;
    for (size_t k = 0; k < nb; k++) {
        uint64_t stamp = jv_hlc_make(1700000000000u + k, 0);
        for (size_t j = 0; j < per; j++) {
            make_texts(kind, k * per + j, &t[j]);
            in[j] = make_intent(kind, k * per + j, &t[j], stamp);
        }
        jv_write_group g = {.intents = in, .n = per};
        jv_commit_info ci;
        double t0 = now_s();
        if (jv_store_commit_local(st, kp, stamp, &g, 1, &ci) != JV_OK ||
            g.result != JV_OK || ci.nops != per)
            die("commit", jv_store_errmsg(st));
        spent += now_s() - t0;
    }
    jv_store_close(st);
    remove_db(path);
    free(path);
    free(t);
    free(in);
    return (double)(nb * per) / spent;
}

/* The baseline: rows carrying what the materialized row of each kind
 * carries, inserted into a table without any index. */
static const char *const base_table[K_COUNT] = {
    "CREATE TABLE t(name TEXT, replica BLOB, p INTEGER, n INTEGER)",
    "CREATE TABLE t(origin BLOB, seq INTEGER, time_ms INTEGER, actor TEXT, "
    "action TEXT, target TEXT, detail TEXT)",
    "CREATE TABLE t(key TEXT, value TEXT, stamp INTEGER, replica BLOB)",
    "CREATE TABLE t(key TEXT, replica BLOB, n INTEGER, stamp INTEGER, "
    "value TEXT)",
};
static const char *const base_insert[K_COUNT] = {
    "INSERT INTO t VALUES (?1, ?2, ?3, ?4)",
    "INSERT INTO t VALUES (?2, ?3, ?4, ?6, ?7, ?1, ?5)",
    "INSERT INTO t VALUES (?1, ?5, ?4, ?2)",
    "INSERT INTO t VALUES (?1, ?2, ?3, ?4, ?5)",
};

static void must(sqlite3 *db, int rc, const char *what)
{
    /* A failed open may leave no handle, whose message would be "out of
     * memory": the code's own text then. */
    if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
        die(what, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

static void bind_str(sqlite3_stmt *s, int i, jv_str v)
{
    sqlite3_bind_text(s, i, v.p, (int)v.n, SQLITE_STATIC);
}

/* The row of operation op (sequence number seq of origin pk). */
static void bind_op(sqlite3_stmt *s, const jv_op *op, const jv_id *pk,
                    uint64_t seq)
{
    sqlite3_bind_blob(s, 2, pk->b, JV_ID_LEN, SQLITE_STATIC);
    switch (op->kind) {
    case JV_OP_COUNTER:
        bind_str(s, 1, op->counter.name);
        sqlite3_bind_int64(s, 3, (int64_t)op->counter.p);
        sqlite3_bind_int64(s, 4, (int64_t)op->counter.n);
        break;
    case JV_OP_AUDIT:
        bind_str(s, 1, op->audit.target);
        sqlite3_bind_int64(s, 3, (int64_t)seq);
        sqlite3_bind_int64(s, 4, (int64_t)op->audit.time_ms);
        bind_str(s, 5, op->audit.detail);
        bind_str(s, 6, op->audit.actor);
        bind_str(s, 7, op->audit.action);
        break;
    case JV_OP_CONFIG:
        bind_str(s, 1, op->config.key);
        sqlite3_bind_int64(s, 4, (int64_t)op->config.stamp);
        bind_str(s, 5, op->config.value);
        break;
    default:
        bind_str(s, 1, op->add.key);
        sqlite3_bind_int64(s, 3, (int64_t)op->add.dot_n);
        sqlite3_bind_int64(s, 4, (int64_t)op->add.stamp);
        bind_str(s, 5, op->add.value);
        break;
    }
}

typedef struct {
    sqlite3 *db;
    sqlite3_stmt *ins, *begin, *commit;
    char *path;
} base_db;

static void base_open(base_db *b, int kind)
{
    b->path = fresh_path("baseline.db");
    must(NULL,
         sqlite3_open_v2(b->path, &b->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                             SQLITE_OPEN_NOMUTEX,
                         NULL),
         b->path);
    /* The store's pragmas (store.c: set_pragmas and WAL). */
    must(b->db,
         sqlite3_exec(b->db,
                      "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
                      "PRAGMA cache_size = -8192; PRAGMA temp_store = MEMORY",
                      NULL, NULL, NULL),
         "pragmas");
    must(b->db, sqlite3_exec(b->db, base_table[kind], NULL, NULL, NULL),
         "create");
    must(b->db, sqlite3_prepare_v2(b->db, base_insert[kind], -1, &b->ins, NULL),
         "prepare");
    must(b->db,
         sqlite3_prepare_v2(b->db, "BEGIN IMMEDIATE", -1, &b->begin, NULL),
         "prepare");
    must(b->db, sqlite3_prepare_v2(b->db, "COMMIT", -1, &b->commit, NULL),
         "prepare");
}

static void base_close(base_db *b)
{
    sqlite3_finalize(b->ins);
    sqlite3_finalize(b->begin);
    sqlite3_finalize(b->commit);
    sqlite3_close(b->db);
    remove_db(b->path);
    free(b->path);
}

/* One transaction inserting the rows of ops[0..n). */
static void base_insert_rows(base_db *b, const jv_op *ops, size_t n,
                             const jv_id *pk, uint64_t first_seq)
{
    must(b->db, sqlite3_step(b->begin), "begin");
    sqlite3_reset(b->begin);
    for (size_t j = 0; j < n; j++) {
        bind_op(b->ins, &ops[j], pk, first_seq + j);
        must(b->db, sqlite3_step(b->ins), "insert");
        sqlite3_reset(b->ins);
    }
    must(b->db, sqlite3_step(b->commit), "commit");
    sqlite3_reset(b->commit);
}

/* Plain INSERTs of operations built outside the clock, as for local. */
static double run_baseline(const jv_keypair *kp, int kind, size_t per)
{
    size_t nb = total_ops(per) / per;
    base_db b;
    base_open(&b, kind);
    texts *t = calloc(per, sizeof(*t));
    jv_op *ops = calloc(per, sizeof(*ops));
    if (!t || !ops)
        die("malloc", "out of memory");
    double spent = 0;
    for (size_t k = 0; k < nb; k++) {
        uint64_t stamp = jv_hlc_make(1700000000000u + k, 0);
        for (size_t j = 0; j < per; j++) {
            make_texts(kind, k * per + j, &t[j]);
            ops[j] = make_op(kind, k * per + j, &t[j], stamp);
        }
        double t0 = now_s();
        base_insert_rows(&b, ops, per, &kp->pk, k * per + 1);
        spent += now_s() - t0;
    }
    base_close(&b);
    free(t);
    free(ops);
    return (double)(nb * per) / spent;
}

/* The same signed batches as remote apply: hash, verify, decode, INSERT. */
static double run_baseline_verified(const jv_keypair *kp, int kind, size_t per)
{
    size_t nb = total_ops(per) / per;
    pbatch *pb = build_batches(kp, kind, per, nb);
    base_db b;
    base_open(&b, kind);
    double t0 = now_s();
    for (size_t k = 0; k < nb; k++) {
        uint8_t hash[JV_HASH_LEN];
        jv_batch dec;
        jv_batch_hash(pb[k].body.data, pb[k].body.len, hash);
        if (jv_batch_verify_sig(hash, pb[k].sig, &kp->pk) != JV_OK)
            die("verify", "bad signature");
        if (jv_batch_decode(pb[k].body.data, pb[k].body.len, &dec) != JV_OK)
            die("decode", "failed");
        base_insert_rows(&b, dec.ops, dec.nops, &dec.origin, dec.first_seq);
        jv_batch_fini(&dec);
    }
    double dt = now_s() - t0;
    base_close(&b);
    free_batches(pb, nb);
    return (double)(nb * per) / dt;
}

enum {
    MAX_ROUNDS = 15
};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *v, int n)
{
    double s[MAX_ROUNDS];
    memcpy(s, v, (size_t)n * sizeof(*s));
    qsort(s, (size_t)n, sizeof(*s), cmp_double);
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* The table of part 1 for the nsizes batch sizes in sizes. */
static void bench_throughput(const jv_keypair *kp, const size_t *sizes,
                             size_t nsizes, int rounds)
{
    printf("\n== apply throughput (operations/s; one transaction per batch; "
           "synchronous=NORMAL;\n   median of %d interleaved rounds)\n",
           rounds);
    printf("%-8s %6s %10s %10s %10s %10s %8s %8s %8s\n", "kind", "batch",
           "remote", "local", "baseline", "baseline", "remote/", "remote/",
           "local/");
    printf("%-8s %6s %10s %10s %10s %10s %8s %8s %8s\n", "", "", "apply",
           "commit", "INSERT", "vrf+INS", "INSERT", "vrf+INS", "INSERT");
    for (int kind = 0; kind < K_COUNT; kind++) {
        for (size_t s = 0; s < nsizes; s++) {
            size_t per = sizes[s];
            double f[4][MAX_ROUNDS];
            /* Interleaved rounds, so that a burst of load from whatever
             * else runs on the machine does not land on one side only. */
            for (int r = 0; r < rounds; r++) {
                f[0][r] = run_baseline(kp, kind, per);
                f[1][r] = run_baseline_verified(kp, kind, per);
                f[2][r] = run_remote(kp, kind, per);
                f[3][r] = run_local(kp, kind, per);
            }
            double base = median(f[0], rounds), vbase = median(f[1], rounds);
            double remote = median(f[2], rounds), local = median(f[3], rounds);
            printf("%-8s %6zu %10.0f %10.0f %10.0f %10.0f %8.2f %8.2f %8.2f\n",
                   kind_name[kind], per, remote, local, base, vbase,
                   remote / base, remote / vbase, local / base);
            fflush(stdout);
        }
    }
    printf("goal: remote/INSERT >= 0.6 at 1024 operations per batch, every "
           "kind\n");
}

static void bench_verify(const jv_keypair *kp)
{
    static const size_t sizes[] = {1, 64, 1024};
    printf("\n== signature verification (BLAKE2b of the body + one Ed25519 "
           "verify per batch)\n");
    printf("%-8s %6s %14s %14s\n", "kind", "batch", "us/batch", "us/op");
    for (int kind = 0; kind < K_COUNT; kind += 3) {
        for (size_t s = 0; s < 3; s++) {
            size_t per = sizes[s], nb = per == 1 ? 4096 : 65536 / per;
            if (nb > 1024)
                nb = 1024;
            pbatch *b = build_batches(kp, kind, per, nb);
            uint8_t h[JV_HASH_LEN];
            double t0 = now_s();
            for (size_t k = 0; k < nb; k++) {
                jv_batch_hash(b[k].body.data, b[k].body.len, h);
                if (jv_batch_verify_sig(h, b[k].sig, &kp->pk) != JV_OK)
                    die("verify", "bad signature");
            }
            double dt = now_s() - t0;
            printf("%-8s %6zu %14.2f %14.3f\n", kind_name[kind], per,
                   dt / (double)nb * 1e6, dt / (double)(nb * per) * 1e6);
            free_batches(b, nb);
        }
    }
}

/* -- memory --------------------------------------------------------------- */

typedef struct {
    uint64_t rows;
    uint64_t bytes;
    char last[64];
} list_ctx;

static jv_err count_row(void *arg, const jv_archive_row *r)
{
    list_ctx *c = arg;
    c->rows++;
    c->bytes += r->value.n;
    size_t n = r->key.n < sizeof(c->last) - 1 ? r->key.n : sizeof(c->last) - 1;
    memcpy(c->last, r->key.p, n);
    c->last[n] = '\0';
    return JV_OK;
}

/* Runs in a child, so that its peak is its own. */
static void memory_child(const jv_keypair *kp, const char *path, uint64_t n,
                         int fd)
{
    jv_store *st = open_store(path);
    if (jv_store_set_self(st, &kp->pk) != JV_OK)
        die("set self", jv_store_errmsg(st));
    enum {
        PER = 1024
    };
    static texts t[PER];
    static jv_intent in[PER];
    double t0 = now_s();
    for (uint64_t k = 0; k * PER < n; k++) {
        uint64_t stamp = jv_hlc_make(1700000000000u + k, 0);
        size_t per = n - k * PER < PER ? (size_t)(n - k * PER) : PER;
        for (size_t j = 0; j < per; j++) {
            make_texts(K_ARCHIVE, k * PER + j, &t[j]);
            in[j] = make_intent(K_ARCHIVE, k * PER + j, &t[j], stamp);
        }
        jv_write_group g = {.intents = in, .n = per};
        jv_commit_info ci;
        if (jv_store_commit_local(st, kp, stamp, &g, 1, &ci) != JV_OK ||
            g.result != JV_OK)
            die("commit", jv_store_errmsg(st));
    }
    double insert_s = now_s() - t0;
    list_ctx c = {0};
    t0 = now_s();
    for (;;) {
        uint64_t before = c.rows;
        char after[64];
        strcpy(after, c.last);
        if (jv_store_archive_list(st, jv_str_c(""), jv_str_c(after), 1000,
                                  count_row, &c) != JV_OK)
            die("list", jv_store_errmsg(st));
        if (c.rows == before)
            break;
    }
    double list_s = now_s() - t0;
    jv_store_close(st);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double r[5] = {(double)ru.ru_maxrss, insert_s, list_s, (double)c.rows,
                   (double)c.bytes};
    if (write(fd, r, sizeof(r)) != (ssize_t)sizeof(r))
        _exit(2);
    _exit(c.rows == n ? 0 : 3);
}

static void bench_memory(const jv_keypair *kp)
{
    const uint64_t n = 1000000;
    char *path = fresh_path("million.db");
    int fds[2];
    if (pipe(fds) != 0)
        die("pipe", "failed");
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        memory_child(kp, path, n, fds[1]);
    }
    close(fds[1]);
    double r[5] = {0};
    ssize_t got = read(fds[0], r, sizeof(r));
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    if (got != (ssize_t)sizeof(r) || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
        fprintf(stderr, "memory child: status %d, %.0f rows listed\n", status,
                r[3]);
        die("memory child", "failed");
    }
    struct stat sb;
    stat(path, &sb);
    printf("\n== memory: %" PRIu64 " archive entries inserted (commits of "
           "1024) and listed (pages of 1000)\n",
           n);
    printf("insert: %.1f s (%.0f ops/s); list: %.1f s (%.0f rows, %.0f "
           "value bytes); database %.1f MiB\n",
           r[1], (double)n / r[1], r[2], r[3], r[4],
           (double)sb.st_size / 1048576.0);
    printf("peak resident memory (ru_maxrss): %.1f MiB (limit 64 MiB): %s\n",
           r[0] / 1024.0, r[0] / 1024.0 < 64 ? "ok" : "OVER");

    /* What open costs on this database: the header checks and quick_check
     * run before the connection is handed out. */
    double t0 = now_s();
    jv_store *st = open_store(path);
    double open_s = now_s() - t0;
    jv_store_close(st);
    printf("reopen (header checks + PRAGMA quick_check): %.0f ms\n",
           open_s * 1000);
    remove_db(path);
    free(path);
}

/* http_bench.sh's baseline for its writes of every kind: plain INSERTs
 * of the four kinds in equal shares, PER rows per transaction (the size
 * of the node's group commits in that run): operations/s over all. */
static int baseline_mix(const jv_keypair *kp, const char *arg)
{
    char *end;
    unsigned long per = strtoul(arg, &end, 10);
    if (*end || per < 1 || per > 1024) {
        fprintf(stderr, "storage_bench: --baseline-mix wants 1..1024\n");
        return 2;
    }
    double secs = 0, ops = 0;
    for (int kind = 0; kind < K_COUNT; kind++) {
        double n = (double)(total_ops(per) / per * per);
        secs += n / run_baseline(kp, kind, per);
        ops += n;
    }
    printf("%.0f\n", ops / secs);
    return 0;
}

/* --apply PER ROUNDS: part 1 alone, at one batch size. */
static int apply_only(const jv_keypair *kp, const char *per_arg,
                      const char *rounds_arg)
{
    char *e1, *e2;
    unsigned long per = strtoul(per_arg, &e1, 10);
    long rounds = strtol(rounds_arg, &e2, 10);
    if (*e1 || *e2 || per < 1 || per > 1024 || rounds < 1 ||
        rounds > MAX_ROUNDS || rounds % 2 == 0) {
        fprintf(stderr,
                "storage_bench: --apply wants 1..1024 and an odd "
                "number of rounds up to %d\n",
                MAX_ROUNDS);
        return 2;
    }
    size_t size = per;
    printf("storage_bench: SQLite %s, databases in %s\n", sqlite3_libversion(),
           bench_dir);
    bench_throughput(kp, &size, 1, (int)rounds);
    return 0;
}

int main(int argc, char **argv)
{
    const char *tmp = getenv("TMPDIR");
    bool mix = argc > 2 && strcmp(argv[1], "--baseline-mix") == 0;
    bool apply = argc > 3 && strcmp(argv[1], "--apply") == 0;
    int dir_arg = mix ? 3 : apply ? 4 : 1;
    bench_dir = argc > dir_arg ? argv[dir_arg] : tmp && *tmp ? tmp : "/tmp";
    struct stat sb;
    if (stat(bench_dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        die(bench_dir, "not a directory");
    /* SQLite set up as in jarvisd, for both sides. */
    if (jv_store_process_init() != JV_OK)
        die("SQLite", "already started");
    jv_keypair kp;
    if (jv_keypair_generate(&kp) != JV_OK)
        die("keypair", "libsodium failed");
    if (mix || apply) {
        int rc = mix ? baseline_mix(&kp, argv[2])
                     : apply_only(&kp, argv[2], argv[3]);
        jv_keypair_wipe(&kp);
        return rc;
    }
    printf("storage_bench: SQLite %s, databases in %s\n", sqlite3_libversion(),
           bench_dir);
    double t0 = now_s();
    /* First, while this process is still small (the child inherits it). */
    bench_memory(&kp);
    bench_verify(&kp);
    static const size_t sizes[] = {1, 64, 1024};
    bench_throughput(&kp, sizes, 3, 3);
    printf("\ntotal %.1f s\n", now_s() - t0);
    jv_keypair_wipe(&kp);
    return 0;
}
