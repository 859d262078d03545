/*
 * repl_bench.c - replication between real jarvisd processes on loopback,
 * set up as docs/operations.md says (tests/support/cluster.h): every node
 * lists every node as a peer (a full mesh) and trusts every node.
 *
 *   1. Convergence after a burst of writes on one node (1000 operations
 *      in 10 requests), for N = 4, 8, 16: the time from the burst's last
 *      acknowledgement until every node's version vector is equal (all
 *      nodes polled over the API), in the default mode (pushes, --fanout
 *      3, plus anti-entropy every 1000 ms; the first burst after start-up
 *      shown apart, since pushes settle during it) and with anti-entropy
 *      only (--fanout 0, --sync-interval 200 ms), where rounds = time /
 *      interval, set against log2(N).
 *   2. Bytes on the wire per replicated operation, from the default-mode
 *      bursts, summed over all nodes and divided by operations x receivers
 *      (N - 1): the growth of jarvis_repl_bytes_total{direction="out"}
 *      (as sent: messages over 1 KiB are zstd-compressed) and of
 *      jarvis_repl_bytes_uncompressed_total{direction="out"} (the same
 *      messages as they would be without zstd, so that protocol overhead
 *      cannot hide behind compression), each against the encoded size of
 *      an operation (the log's body bytes plus the batch signatures, per
 *      operation: GET /v1/status) -- goal for the uncompressed ratio: at
 *      most 1.3x -- and, as the baseline, against sending every receiver
 *      the same operations as full state (the export) instead. The idle
 *      traffic of anti-entropy over the same time is measured separately
 *      and shown.
 *   3. Catch-up: two nodes; one is stopped while the other takes 1,000,000
 *      operations (audit entries, archive adds, counter increments; POST
 *      /v1/batch, 1000 per request); restarted, the time until its version
 *      vector equals the other's gives operations per second. Baseline in
 *      the same run, in this process: the same number of operations of the
 *      same kinds and texts, in batches of the size node 0's log has,
 *      encoded and Ed25519-signed before the clock; inside the clock, per
 *      batch: BLAKE2b hash + Ed25519 verify + decode, then plain INSERTs of
 *      one row per operation (its fields) into one table without index,
 *      one transaction per batch, WAL and synchronous=NORMAL as the store,
 *      SQLite set up as jarvisd sets it (memory statistics off, the
 *      connection opened without its mutex). The node does that and more
 *      (fetch over the network, zstd, the log, CRDT state, two processes
 *      sharing the cores).
 *
 * Usage: repl_bench [--quick] [--ops N] [--reps N]
 *   --quick  N = 4 and 8 only, 100,000 operations to catch up
 * Binaries are taken from $JV_BIN_DIR, else from this program's directory.
 * Not a test: it prints figures.
 */
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "cluster.h"
#include "hlc.h"
#include "store.h"
#include "testutil.h"

#define BURST_REQUESTS 10
#define BURST_OPS      100 /* per request: 1000 operations a burst */

static jv_rng rng;

static void die(jv_cluster *c, const char *what)
{
    fprintf(stderr, "repl_bench: %s: %s\n", what, c ? c->err : "");
    if (c != NULL) {
        jv_cluster_dump_logs(c);
        jv_cluster_fini(c);
    }
    exit(1);
}

static json_t *status(jv_cluster *c, size_t i)
{
    json_t *st = jv_cluster_get_json(c, i, "/v1/status");
    if (st == NULL)
        die(c, "GET /v1/status");
    return st;
}

static double log_figure(json_t *st, const char *key)
{
    return (double)json_integer_value(
        json_object_get(json_object_get(st, "log"), key));
}

static void post(jv_cluster *c, size_t i, const char *path, const char *body)
{
    jv_http_resp r;
    if (jv_cluster_http(c, i, "POST", path, body, &r) != 0 || r.status != 200) {
        fprintf(stderr, "POST %s: %ld %.300s\n", path, r.status,
                r.body ? r.body : "");
        jv_http_resp_fini(&r);
        die(c, "a write failed");
    }
    jv_http_resp_fini(&r);
}

static char *batch_body(unsigned long long base, unsigned n, bool config)
{
    char *b = jv_cluster_batch_body(&rng, base, n, config);
    if (b == NULL)
        die(NULL, "out of memory");
    return b;
}

static double batches(jv_cluster *c, const char *result)
{
    char series[128];
    double sum = 0;
    snprintf(series, sizeof series, "jarvis_repl_batches_total{result=\"%s\"}",
             result);
    for (size_t i = 0; i < c->n; i++) {
        double v = jv_cluster_metric(c, i, series);
        if (v < 0)
            die(c, "GET /metrics");
        sum += v;
    }
    return sum;
}

static double bytes_out(jv_cluster *c)
{
    double sum = 0;
    for (size_t i = 0; i < c->n; i++) {
        double v = jv_cluster_metric(c, i,
                                     "jarvis_repl_bytes_total{"
                                     "direction=\"out\"}");
        if (v < 0)
            die(c, "GET /metrics");
        sum += v;
    }
    return sum;
}

static double bytes_raw(jv_cluster *c)
{
    double sum = 0;
    for (size_t i = 0; i < c->n; i++) {
        double v = jv_cluster_metric_sum(
            c, i, "jarvis_repl_bytes_uncompressed_total", "direction=\"out\"");
        if (v < 0)
            die(c, "GET /metrics");
        sum += v;
    }
    return sum;
}

/* Every node's version vector equal: the time it took from t0. */
static double wait_equal(jv_cluster *c, double t0, double limit_ms)
{
    for (;;) {
        json_t *first = jv_cluster_vv(c, 0);
        bool eq = first != NULL;
        for (size_t i = 1; eq && i < c->n; i++) {
            json_t *vv = jv_cluster_vv(c, i);
            eq = vv != NULL && json_equal(first, vv);
            json_decref(vv);
        }
        json_decref(first);
        double now = jv_cluster_now_ms();
        if (eq)
            return now - t0;
        if (now - t0 > limit_ms)
            die(c, "version vectors never became equal");
        jv_cluster_sleep_ms(2);
    }
}

static void cluster_up(jv_cluster *c, size_t n, char *const *flags)
{
    jv_cluster_opts o = {.n = n, .flags = flags};
    o.seed = jv_rng_next(&rng);
    if (jv_cluster_init(c, &o) != 0 || jv_cluster_start_all(c) != 0)
        die(c, "cannot start the cluster");
    if (jv_cluster_wait_converged(c, NULL, 0, 60000, NULL) != 0)
        die(c, "the cluster did not settle");
}

typedef struct {
    double ms[16];
    unsigned n;
} samples;

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(samples *s)
{
    qsort(s->ms, s->n, sizeof s->ms[0], cmp_d);
    return s->n % 2 ? s->ms[s->n / 2]
                    : (s->ms[s->n / 2 - 1] + s->ms[s->n / 2]) / 2;
}

/* One burst of 1000 operations on node 0; returns the convergence time
 * and, through the pointers, the figures of part 2. */
typedef struct {
    double ms;
    double wire;    /* bytes out over all nodes during the burst */
    double raw;     /* the same messages without zstd */
    double idle;    /* bytes out over all nodes in as long idle */
    double ops;     /* operations the burst made (log figures) */
    double enc;     /* their encoded bytes, signatures included */
    double state;   /* export bytes after it */
    double db;      /* node 0's database bytes after it */
    double applied; /* batches applied by the receivers */
    double dups;    /* batches received again (dropped as duplicates) */
} burst_fig;

static unsigned long long op_base;

static void burst(jv_cluster *c, int interval_ms, burst_fig *f)
{
    json_t *st = status(c, 0);
    double ops0 = log_figure(st, "operations"),
           bytes0 = log_figure(st, "bytes"),
           batches0 = log_figure(st, "batches");
    json_decref(st);
    double out0 = bytes_out(c), raw0 = bytes_raw(c);
    double applied0 = batches(c, "applied"), dups0 = batches(c, "duplicate");
    char *bodies[BURST_REQUESTS];
    for (unsigned r = 0; r < BURST_REQUESTS; r++) {
        bodies[r] = batch_body(op_base, BURST_OPS, true);
        op_base += BURST_OPS;
    }
    double t0 = 0;
    for (unsigned r = 0; r < BURST_REQUESTS; r++) {
        post(c, 0, "/v1/batch", bodies[r]);
        t0 = jv_cluster_now_ms();
        free(bodies[r]);
    }
    f->ms = wait_equal(c, t0, 120000);
    /* Messages still in flight when the vectors met (duplicates, the
     * answers of exchanges under way) count too: wait two intervals. */
    jv_cluster_sleep_ms(2 * interval_ms);
    double window = jv_cluster_now_ms() - t0;
    f->wire = bytes_out(c) - out0;
    f->raw = bytes_raw(c) - raw0;
    f->applied = batches(c, "applied") - applied0;
    f->dups = batches(c, "duplicate") - dups0;
    st = status(c, 0);
    f->ops = log_figure(st, "operations") - ops0;
    f->enc = log_figure(st, "bytes") - bytes0 +
             64.0 * (log_figure(st, "batches") - batches0);
    f->db = (double)json_integer_value(json_object_get(st, "database_bytes"));
    json_decref(st);
    char *e;
    size_t elen;
    if (jv_cluster_export(c, 0, &e, &elen) != 0)
        die(c, "export");
    free(e);
    f->state = (double)elen;
    /* Idle anti-entropy over as long, for comparison. */
    double idle0 = bytes_out(c);
    jv_cluster_sleep_ms((long)window);
    f->idle = bytes_out(c) - idle0;
}

/* Sums a run of bursts into the figures of part 2. */
static void sum_bursts(const burst_fig *f, unsigned n, burst_fig *t)
{
    memset(t, 0, sizeof *t);
    for (unsigned r = 0; r < n; r++) {
        t->wire += f[r].wire;
        t->raw += f[r].raw;
        t->idle += f[r].idle;
        t->ops += f[r].ops;
        t->enc += f[r].enc;
        t->applied += f[r].applied;
        t->dups += f[r].dups;
    }
    t->state = f[n - 1].state;
    t->db = f[n - 1].db;
}

static void print_bytes(size_t n, const char *which, const burst_fig *t,
                        unsigned bursts)
{
    double recv = (double)(n - 1);
    double per = t->wire / (t->ops * recv), e = t->enc / t->ops;
    double raw = t->raw / (t->ops * recv);
    /* Per receiver and burst, against sending it the whole state. */
    double delta = t->wire / bursts / recv;
    printf("   %3zu  %-6s %7.1f B %7.1f B %7.1f B  %5.2fx  %5.2fx  %7.1f B  "
           "%5.2f  %9.0f B  %8.4f\n",
           n, which, raw, per, e, raw / e, per / e, t->idle / (t->ops * recv),
           t->dups / t->applied, t->state, delta / t->state);
}

static void part_convergence(const size_t *sizes, size_t nsizes, unsigned reps)
{
    static char *const ae_flags[] = {"--fanout", "0", "--sync-interval", "200",
                                     NULL};
    static char *const def_flags[] = {NULL};
    printf("\n1. Convergence after a burst of 1000 operations on one node "
           "(10 POST /v1/batch of 100),\n   full mesh on loopback; time "
           "from the burst's last acknowledgement until every node's\n   "
           "version vector is equal. push+AE: jarvisd's defaults (--fanout "
           "3, --sync-interval 1000);\n   the first burst after start-up "
           "apart (pushes have not settled yet), then %u bursts:\n   median "
           "(min-max). AE only: --fanout 0 --sync-interval 200, %u bursts, "
           "rounds = time / 200 ms.\n\n",
           reps, reps);
    printf("   %3s  %-8s  %-24s  %-36s  %7s\n", "N", "1st", "push+AE",
           "AE only: time = rounds", "log2(N)");
    burst_fig first[3], figs[3][16];
    for (size_t k = 0; k < nsizes; k++) {
        size_t n = sizes[k];
        jv_cluster c;
        samples push = {.n = 0}, ae = {.n = 0};
        cluster_up(&c, n, def_flags);
        burst(&c, 1000, &first[k]);
        for (unsigned r = 0; r < reps; r++) {
            burst(&c, 1000, &figs[k][r]);
            push.ms[push.n++] = figs[k][r].ms;
        }
        jv_cluster_fini(&c);
        cluster_up(&c, n, ae_flags);
        for (unsigned r = 0; r < reps; r++) {
            burst_fig f;
            burst(&c, 200, &f);
            ae.ms[ae.n++] = f.ms;
        }
        jv_cluster_fini(&c);
        double pm = median(&push), am = median(&ae);
        char a[64], b[64], f1[32];
        snprintf(f1, sizeof f1, "%.0f ms", first[k].ms);
        snprintf(a, sizeof a, "%5.0f ms (%.0f-%.0f)", pm, push.ms[0],
                 push.ms[push.n - 1]);
        snprintf(b, sizeof b, "%4.0f ms = %3.1f rounds (%.1f-%.1f)", am,
                 am / 200, ae.ms[0] / 200, ae.ms[ae.n - 1] / 200);
        printf("   %3zu  %-8s  %-24s  %-36s  %7.1f\n", n, f1, a, b,
               log2((double)n));
        fflush(stdout);
    }

    printf("\n2. Bytes on the wire per replicated operation (the push+AE "
           "bursts above): the growth of\n   jarvis_repl_bytes_uncompressed_"
           "total{direction=\"out\"} (raw) and jarvis_repl_bytes_total{"
           "direction=\"out\"}\n   (as sent, zstd) summed over all nodes / "
           "(operations x (N-1))\n\n");
    printf("   %3s  %-6s %9s %9s %9s  %6s  %6s  %9s  %5s  %11s  %8s\n", "N",
           "bursts", "raw/op", "wire/op", "encoded", "raw/e", "wire/e",
           "idle AE/op", "dup", "full state", "delta/st");
    for (size_t k = 0; k < nsizes; k++) {
        burst_fig t;
        print_bytes(sizes[k], "1st", &first[k], 1);
        sum_bursts(figs[k], reps, &t);
        print_bytes(sizes[k], "next", &t, reps);
    }
    printf("\n   encoded: the log's body bytes plus a 64-byte signature per "
           "batch, per operation (GET /v1/status);\n   raw/e = raw/op / "
           "encoded: the protocol's overhead without compression (goal: at "
           "most 1.3x);\n   wire/e = wire/op / encoded, as sent (messages "
           "over 1 KiB are zstd-compressed);\n   idle AE/op: the same nodes' "
           "traffic (as sent) over as long without writes, per operation\n"
           "   (included in wire/op);\n   dup: batches received again per "
           "batch applied by a receiver;\n   delta/st, the baseline: bytes "
           "sent per receiver and burst / the full state (export bytes),\n"
           "   i.e. against sending every receiver the whole state instead of "
           "the delta.\n");
}

/* -- catch-up baseline: verify + plain INSERT ---------------------------- */

typedef struct {
    jv_buf body;
    uint8_t sig[JV_SIG_LEN];
} signed_batch;

/* Operation id of the catch-up's mix (batch_body without config), its
 * texts in t[0..1]. */
static jv_op catchup_op(unsigned long long id, uint64_t seq, uint64_t stamp,
                        char t[2][48])
{
    jv_op op;
    unsigned long long x = jv_rng_next(&rng);
    memset(&op, 0, sizeof op);
    switch (id % 3) {
    case 0:
        snprintf(t[0], 48, "svc-%llu", id % 1000);
        snprintf(t[1], 48, "%016llx", x);
        op.kind = JV_OP_AUDIT;
        op.audit.time_ms = jv_hlc_ms(stamp);
        op.audit.actor = jv_str_c("admin");
        op.audit.action = jv_str_c("deploy");
        op.audit.target = jv_str_c(t[0]);
        op.audit.detail = jv_str_c(t[1]);
        break;
    case 1:
        snprintf(t[0], 48, "app/%llu", id);
        snprintf(t[1], 48, "\"%016llx\"", x);
        op.kind = JV_OP_ARCHIVE_ADD;
        op.add.key = jv_str_c(t[0]);
        op.add.value = jv_str_c(t[1]);
        op.add.stamp = stamp;
        op.add.dot_n = seq;
        break;
    default:
        snprintf(t[0], 48, "hits/%llu", id);
        op.kind = JV_OP_COUNTER;
        op.counter.name = jv_str_c(t[0]);
        op.counter.p = x % 1000 + 1;
        break;
    }
    return op;
}

static signed_batch *catchup_batches(const jv_keypair *kp,
                                     unsigned long long total, unsigned per,
                                     size_t *nb)
{
    *nb = (size_t)((total + per - 1) / per);
    signed_batch *b = calloc(*nb, sizeof *b);
    jv_op *ops = calloc(per, sizeof *ops);
    char(*t)[2][48] = calloc(per, sizeof *t);
    uint8_t prev[JV_HASH_LEN] = {0};
    uint64_t seq = 1;
    if (b == NULL || ops == NULL || t == NULL)
        die(NULL, "out of memory");
    for (size_t k = 0; k < *nb; k++) {
        unsigned long long done = (unsigned long long)k * per;
        unsigned n = total - done < per ? (unsigned)(total - done) : per;
        uint64_t stamp = jv_hlc_make(1700000000000ull + k, 0);
        for (unsigned j = 0; j < n; j++)
            ops[j] = catchup_op(done + j, seq + j, stamp, t[j]);
        jv_batch in = {.origin = kp->pk,
                       .first_seq = seq,
                       .hlc = stamp,
                       .ops = ops,
                       .nops = n};
        memcpy(in.prev, prev, JV_HASH_LEN);
        jv_buf_init(&b[k].body);
        if (jv_batch_encode(&in, &b[k].body) != JV_OK)
            die(NULL, "batch encode");
        jv_batch_hash(b[k].body.data, b[k].body.len, prev);
        jv_batch_sign(prev, kp, b[k].sig);
        seq += n;
    }
    free(ops);
    free(t);
    return b;
}

static void sql_must(sqlite3 *db, int rc, const char *what)
{
    if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
        fprintf(stderr, "repl_bench: %s: %s\n", what, sqlite3_errmsg(db));
        exit(1);
    }
}

static void bind_s(sqlite3_stmt *s, int i, jv_str v)
{
    sqlite3_bind_text(s, i, v.p, (int)v.n, SQLITE_STATIC);
}

/* One row per operation: kind, origin, seq, its texts and number. */
static void insert_op(sqlite3 *db, sqlite3_stmt *ins, const jv_batch *b,
                      uint32_t j)
{
    const jv_op *op = &b->ops[j];
    sqlite3_bind_int(ins, 1, (int)op->kind);
    sqlite3_bind_blob(ins, 2, b->origin.b, JV_ID_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(ins, 3, (sqlite3_int64)(b->first_seq + j));
    if (op->kind == JV_OP_AUDIT) {
        bind_s(ins, 4, op->audit.actor);
        bind_s(ins, 5, op->audit.action);
        bind_s(ins, 6, op->audit.target);
        bind_s(ins, 7, op->audit.detail);
        sqlite3_bind_int64(ins, 8, (sqlite3_int64)op->audit.time_ms);
    } else if (op->kind == JV_OP_ARCHIVE_ADD) {
        bind_s(ins, 4, op->add.key);
        bind_s(ins, 5, op->add.value);
        sqlite3_bind_int64(ins, 8, (sqlite3_int64)op->add.stamp);
    } else {
        bind_s(ins, 4, op->counter.name);
        sqlite3_bind_int64(ins, 8, (sqlite3_int64)op->counter.p);
    }
    sql_must(db, sqlite3_step(ins), "insert");
    sqlite3_reset(ins);
    sqlite3_clear_bindings(ins);
}

static void verify_insert(sqlite3 *db, sqlite3_stmt *ins, const jv_id *pk,
                          const signed_batch *sb)
{
    uint8_t hash[JV_HASH_LEN];
    jv_batch dec;
    jv_batch_hash(sb->body.data, sb->body.len, hash);
    if (jv_batch_verify_sig(hash, sb->sig, pk) != JV_OK)
        die(NULL, "baseline: bad signature");
    if (jv_batch_decode(sb->body.data, sb->body.len, &dec) != JV_OK)
        die(NULL, "baseline: decode");
    sql_must(db, sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL),
             "begin");
    for (uint32_t j = 0; j < dec.nops; j++)
        insert_op(db, ins, &dec, j);
    sql_must(db, sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), "commit");
    jv_batch_fini(&dec);
}

/* Operations per second of the baseline. */
static double catchup_baseline(unsigned long long total, unsigned per)
{
    jv_keypair kp;
    size_t nb;
    const char *tmp = getenv("TMPDIR");
    char dir[PATH_MAX], path[PATH_MAX + 16];
    snprintf(dir, sizeof dir, "%s/jv-repl-bench-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL || jv_keypair_generate(&kp) != JV_OK)
        die(NULL, "baseline set-up");
    signed_batch *b = catchup_batches(&kp, total, per, &nb);
    snprintf(path, sizeof path, "%s/base.db", dir);
    sqlite3 *db;
    sqlite3_stmt *ins;
    /* Opened as the store opens its connections (store.c). */
    sql_must(NULL,
             sqlite3_open_v2(path, &db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                 SQLITE_OPEN_NOMUTEX,
                             NULL),
             "open");
    sql_must(db,
             sqlite3_exec(db,
                          "PRAGMA journal_mode = WAL; PRAGMA synchronous = "
                          "NORMAL; PRAGMA cache_size = -8192; PRAGMA "
                          "temp_store = MEMORY; CREATE TABLE t(kind INTEGER, "
                          "origin BLOB, seq INTEGER, a TEXT, b TEXT, c TEXT, "
                          "d TEXT, n INTEGER)",
                          NULL, NULL, NULL),
             "set-up");
    sql_must(db,
             sqlite3_prepare_v2(db,
                                "INSERT INTO t VALUES (?1, ?2, ?3, ?4, ?5, "
                                "?6, ?7, ?8)",
                                -1, &ins, NULL),
             "prepare");
    double t0 = jv_cluster_now_ms();
    for (size_t k = 0; k < nb; k++)
        verify_insert(db, ins, &kp.pk, &b[k]);
    double ms = jv_cluster_now_ms() - t0;
    sqlite3_finalize(ins);
    sqlite3_close(db);
    for (size_t k = 0; k < nb; k++)
        jv_buf_fini(&b[k].body);
    free(b);
    jv_keypair_wipe(&kp);
    static const char *const files[] = {"base.db", "base.db-wal",
                                        "base.db-shm"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
    return (double)total / (ms / 1000);
}

static void part_catchup(unsigned long long total)
{
    static char *const flags[] = {NULL};
    jv_cluster c;
    printf("\n3. Catch-up of a node that missed %llu operations (2 nodes)\n\n",
           total);
    cluster_up(&c, 2, flags);
    json_t *st = status(&c, 1);
    double had = log_figure(st, "operations");
    json_decref(st);
    st = status(&c, 0);
    double ops0 = log_figure(st, "operations"),
           batches0 = log_figure(st, "batches");
    json_decref(st);
    if (jv_cluster_stop(&c, 1) != 0)
        die(&c, "stop");
    double t0 = jv_cluster_now_ms();
    for (unsigned long long done = 0; done < total; done += 1000) {
        unsigned n = total - done < 1000 ? (unsigned)(total - done) : 1000;
        char *b = batch_body(op_base, n, false);
        op_base += n;
        post(&c, 0, "/v1/batch", b);
        free(b);
    }
    double wrote = jv_cluster_now_ms() - t0;
    st = status(&c, 0);
    double ops = log_figure(st, "operations"),
           nbatches = log_figure(st, "batches"),
           db = (double)json_integer_value(
               json_object_get(st, "database_bytes"));
    json_decref(st);
    printf("   written on node 0: %.0f operations in %.1f s (%.0f ops/s), "
           "database %.0f MB\n",
           ops, wrote / 1000, ops / (wrote / 1000), db / 1e6);
    fflush(stdout);

    double s0 = jv_cluster_now_ms();
    if (jv_cluster_start(&c, 1) != 0)
        die(&c, "restart");
    double ready = jv_cluster_now_ms();
    double ms = wait_equal(&c, s0, 600000);
    st = status(&c, 1);
    double got = log_figure(st, "operations") - had;
    json_decref(st);
    printf("   node 1 restarted: serving after %.0f ms, version vector equal "
           "after %.1f s\n",
           ready - s0, ms / 1000);
    double rate = got / (ms / 1000);
    printf("   catch-up rate: %.0f operations/s (%.0f operations fetched)\n",
           rate, got);
    if (jv_cluster_wait_converged(&c, NULL, 0, 120000, NULL) != 0)
        die(&c, "exports differ after the catch-up");
    printf("   exports identical afterwards\n");
    jv_cluster_fini(&c);
    /* The baseline after the cluster is gone, so that it has the cores. */
    /* The size of the batches the writes made on node 0. */
    unsigned per = nbatches > batches0
                       ? (unsigned)lround((ops - ops0) / (nbatches - batches0))
                       : 1000;
    if (per < 1)
        per = 1;
    double base = catchup_baseline(total, per);
    printf("   baseline: hash + Ed25519 verify + decode + plain INSERT of "
           "the same number of operations\n   in batches of %u, one "
           "transaction each: %.0f operations/s; catch-up / baseline = "
           "%.2f\n",
           per, base, rate / base);
}

int main(int argc, char **argv)
{
    bool quick = false;
    unsigned long long ops = 1000000;
    unsigned reps = 5;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) {
            quick = true;
            ops = 100000;
        } else if (!strcmp(argv[i], "--ops") && i + 1 < argc) {
            ops = strtoull(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
            reps = (unsigned)atoi(argv[++i]);
        } else {
            fprintf(stderr, "usage: repl_bench [--quick] [--ops N] "
                            "[--reps N]\n");
            return 2;
        }
    }
    if (reps < 1 || reps > 16 || ops < 1000) {
        fprintf(stderr, "repl_bench: --reps 1..16, --ops at least 1000\n");
        return 2;
    }
    if (jv_cluster_bin_dir_default() != 0)
        die(NULL, "set JV_BIN_DIR to the directory of jarvisd");
    /* The baseline's SQLite set up as jarvisd sets its own. */
    if (jv_store_process_init() != JV_OK)
        die(NULL, "SQLite started too early");
    jv_rng_seed(&rng, jv_test_seed());
    printf("repl_bench: real jarvisd processes on 127.0.0.1, %ld cores\n",
           sysconf(_SC_NPROCESSORS_ONLN));
    static const size_t all[] = {4, 8, 16}, few[] = {4, 8};
    part_convergence(quick ? few : all, quick ? 2 : 3, reps);
    part_catchup(ops);
    return 0;
}
