/*
 * peers_bench.c - the Jarvis side of bench/peers (bench/peers/run.sh runs
 * it beside Yjs and Automerge and prints them side by side).
 *
 * The workload of bench/peers/workload.mjs, made the same way: SETS
 * config sets over 10,000 keys in transactions of 1,000 (one POST
 * /v1/batch each), keys and values from xorshift32 seeded with 1. Three
 * real jarvisd processes on loopback (tests/support/cluster.h), durable
 * (the node's default --sync) and verified (every batch signed by its
 * origin and checked by each receiver):
 *
 *   node 0 takes the writes (local commit);
 *   node 1 runs during them and applies each transaction as it is pushed
 *     ("incremental"): its CPU seconds over the phase (process_cpu_seconds_
 *     total) give operations per CPU-second of applying, comparable with a
 *     library applying updates in a loop; the wall time from the last
 *     acknowledgement until its version vector equals node 0's is shown too;
 *   node 2 starts after all writes and catches up from its peers ("one
 *     state": everything at once): operations per second of wall time from
 *     its start until its version vector equals node 0's.
 *
 * Bytes on the wire per set: the growth of jarvis_repl_bytes_total{direction=
 * "out"} (as sent, zstd over 1 KiB) and of the uncompressed counterpart,
 * summed over the nodes, over each phase. Disk: node 2's database file and
 * its retained log (GET /v1/status) per set. Memory: node 2's resident set
 * after its catch-up (process_resident_memory_bytes).
 *
 * Each config set through the API also leaves a config.set audit entry (the
 * product audits configuration changes), so Jarvis replicates two
 * operations per set; every figure here is per set, the workload's unit.
 *
 * Usage: peers_bench [--sets N] [--json]   (default 1,000,000 sets)
 *   --json  also print one JSON line of the figures, last
 * Binaries from $JV_BIN_DIR, else this program's directory. Not a test.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

#define KEYS 10000u
#define TXN  1000u

static void die(jv_cluster *c, const char *what)
{
    fprintf(stderr, "peers_bench: %s: %s\n", what, c->err);
    jv_cluster_dump_logs(c);
    jv_cluster_fini(c);
    exit(1);
}

static uint32_t xs = 1;

static uint32_t next32(void)
{
    xs ^= xs << 13;
    xs ^= xs >> 17;
    xs ^= xs << 5;
    return xs;
}

/* One transaction of the workload as a POST /v1/batch body. */
static char *txn_body(void)
{
    size_t cap = 64 + TXN * 96, len = 0;
    char *b = malloc(cap);
    if (b == NULL)
        return NULL;
    len += (size_t)snprintf(b, cap, "{\"ops\":[");
    for (unsigned j = 0; j < TXN; j++) {
        uint32_t k = next32() % KEYS, v1 = next32(), v2 = next32();
        len += (size_t)snprintf(b + len, cap - len,
                                "%s{\"op\":\"config.set\",\"key\":\"key-%05u\","
                                "\"value\":\"%08x%08x\"}",
                                j ? "," : "", k, v1, v2);
    }
    snprintf(b + len, cap - len, "]}");
    return b;
}

static double metric(jv_cluster *c, size_t i, const char *family,
                     const char *match)
{
    double v = jv_cluster_metric_sum(c, i, family, match);
    if (v < 0)
        die(c, family);
    return v;
}

typedef struct {
    double out, raw; /* repl bytes sent, as sent and uncompressed */
} wire;

static wire wire_now(jv_cluster *c, size_t n)
{
    wire w = {0, 0};
    for (size_t i = 0; i < n; i++) {
        if (!jv_cluster_running(c, i))
            continue;
        w.out += metric(c, i, "jarvis_repl_bytes_total", "direction=\"out\"");
        w.raw += metric(c, i, "jarvis_repl_bytes_uncompressed_total",
                        "direction=\"out\"");
    }
    return w;
}

static bool vv_equal(jv_cluster *c, size_t a, size_t b)
{
    json_t *x = jv_cluster_vv(c, a), *y = jv_cluster_vv(c, b);
    bool eq = x != NULL && y != NULL && json_equal(x, y);
    json_decref(x);
    json_decref(y);
    return eq;
}

/* Milliseconds from t0 until node i's vector equals node 0's. */
static double wait_equal(jv_cluster *c, size_t i, double t0)
{
    while (!vv_equal(c, 0, i)) {
        if (jv_cluster_now_ms() - t0 > 1800000)
            die(c, "no convergence within 30 minutes");
        jv_cluster_sleep_ms(20);
    }
    return jv_cluster_now_ms() - t0;
}

static double status_num(jv_cluster *c, size_t i, const char *obj,
                         const char *field)
{
    json_t *st = jv_cluster_get_json(c, i, "/v1/status");
    if (st == NULL)
        die(c, "GET /v1/status");
    json_t *o = obj ? json_object_get(st, obj) : st;
    double v = json_number_value(json_object_get(o, field));
    json_decref(st);
    return v;
}

int main(int argc, char **argv)
{
    unsigned long long sets = 1000000;
    bool as_json = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--sets") && i + 1 < argc)
            sets = strtoull(argv[++i], NULL, 10) / TXN * TXN;
        else if (!strcmp(argv[i], "--json"))
            as_json = true;
        else {
            fprintf(stderr, "usage: peers_bench [--sets N] [--json]\n");
            return 2;
        }
    }
    if (sets == 0 || jv_cluster_bin_dir_default() != 0) {
        fprintf(stderr, "peers_bench: bad --sets or no JV_BIN_DIR\n");
        return 2;
    }
    static char *const flags[] = {NULL};
    jv_cluster c;
    jv_cluster_opts o = {.n = 3, .flags = flags};
    if (jv_cluster_init(&c, &o) != 0 || jv_cluster_start(&c, 0) != 0 ||
        jv_cluster_start(&c, 1) != 0)
        die(&c, "cluster");

    printf("Jarvis: %llu config sets over %u keys, %u per transaction, "
           "3 nodes\n",
           sets, KEYS, TXN);
    fflush(stdout);
    double cpu0 = metric(&c, 1, "process_cpu_seconds_total", NULL);
    wire w0 = wire_now(&c, 2);
    double t0 = jv_cluster_now_ms();
    for (unsigned long long done = 0; done < sets; done += TXN) {
        char *b = txn_body();
        jv_http_resp r;
        if (b == NULL || jv_cluster_http(&c, 0, "POST", "/v1/batch", b, &r))
            die(&c, "POST /v1/batch");
        free(b);
        if (r.status != 200) {
            snprintf(c.err, sizeof c.err, "POST /v1/batch: %ld %s", r.status,
                     r.body);
            die(&c, "write");
        }
        jv_http_resp_fini(&r);
    }
    double wrote = jv_cluster_now_ms() - t0;
    double lag = wait_equal(&c, 1, jv_cluster_now_ms());
    double cpu1 = metric(&c, 1, "process_cpu_seconds_total", NULL) - cpu0;
    wire w1 = wire_now(&c, 2);
    double inc_out = (w1.out - w0.out) / (double)sets,
           inc_raw = (w1.raw - w0.raw) / (double)sets;
    printf("  local commit on node 0: %.0f sets/s (%.1f s, over HTTP)\n",
           (double)sets / (wrote / 1000), wrote / 1000);
    printf("  incremental (node 1, pushed as written): %.0f sets per "
           "CPU-second of node 1; equal %.0f ms after the last write\n",
           (double)sets / cpu1, lag);
    printf("    wire: %.1f bytes/set as sent, %.1f uncompressed\n", inc_out,
           inc_raw);
    fflush(stdout);

    w0 = wire_now(&c, 2);
    double s0 = jv_cluster_now_ms();
    if (jv_cluster_start(&c, 2) != 0)
        die(&c, "start node 2");
    double ms = wait_equal(&c, 2, s0);
    w1 = wire_now(&c, 3);
    double st_out = (w1.out - w0.out) / (double)sets,
           st_raw = (w1.raw - w0.raw) / (double)sets;
    double rss = metric(&c, 2, "process_resident_memory_bytes", NULL);
    double db = status_num(&c, 2, NULL, "database_bytes");
    double logb = status_num(&c, 2, "log", "bytes");
    printf("  one state (node 2 joins and catches up): %.0f sets/s "
           "(%.1f s from its start)\n",
           (double)sets / (ms / 1000), ms / 1000);
    printf("    wire: %.1f bytes/set as sent, %.1f uncompressed\n", st_out,
           st_raw);
    printf("  node 2 afterwards: database %.1f bytes/set (log bodies %.1f), "
           "resident %.1f MiB\n",
           db / (double)sets, logb / (double)sets, rss / 1048576);
    if (jv_cluster_wait_converged(&c, NULL, 0, 300000, NULL) != 0)
        die(&c, "exports differ");
    printf("  exports of the three nodes identical\n");
    if (as_json)
        printf("{\"lib\":\"jarvis\",\"sets\":%llu,\"commit_per_s\":%.0f,"
               "\"inc_per_cpu_s\":%.0f,\"inc_lag_ms\":%.0f,"
               "\"inc_wire\":%.2f,\"inc_wire_raw\":%.2f,"
               "\"state_per_s\":%.0f,\"state_wire\":%.2f,"
               "\"state_wire_raw\":%.2f,\"disk\":%.2f,\"log\":%.2f,"
               "\"rss\":%.0f}\n",
               sets, (double)sets / (wrote / 1000), (double)sets / cpu1, lag,
               inc_out, inc_raw, (double)sets / (ms / 1000), st_out, st_raw,
               db / (double)sets, logb / (double)sets, rss);
    jv_cluster_fini(&c);
    return 0;
}
