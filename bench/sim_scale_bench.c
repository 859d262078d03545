/*
 * sim_scale_bench.c - how the sync protocol scales, on simulated nodes
 * (jarvis-sim's engine, sim/sim.h: the node's replication and storage code
 * over a simulated network; one seed, so the figures are the same on every
 * machine). Each node dials its ring successor and 4 others at random;
 * latency 0.5 ms + exponential mean 2 ms; 1 % loss and 1 % duplication.
 *
 *   1. Burst: a cluster of N nodes that has been running (3 rounds in
 *      which every node wrote once, so that the pushes have settled into
 *      their trees) takes W writes (1 to 3 operations each; W = 1000 at
 *      every N) on random nodes at once; a node's writes at one moment go
 *      out as one batch (group commit). Measured until every node holds
 *      every batch: simulated time, rounds (time / the 1 s anti-entropy
 *      period), messages and bytes per node per round, bytes per
 *      operation delivered (all bytes sent, as sent and as they would be
 *      without zstd, over operations x receivers (N - 1), against the
 *      encoded size of an operation: batch bodies and signatures), and the
 *      batches received a second time. Two modes side by side: pushes
 *      (fanout 3) plus anti-entropy, and anti-entropy alone (fanout 0), for
 *      N = 16, 64, 256, 1000. Goals: rounds <= log2(N) + 2; bytes per
 *      operation delivered <= 1.3x the uncompressed operation.
 *   2. The same news at every N: the W writes on 16 random nodes only,
 *      after one warm-up round: what a node sends and receives in all as
 *      the cluster grows (goal: no faster than log N).
 *   3. Churn: 1000 nodes taking writes for --churn-minutes (default 1)
 *      simulated minutes while every minute 10 % restart (down 1 to 5 s)
 *      and 1 % new ones join; then convergence, and the replication lag
 *      (commit on the origin to apply on each node) percentiles.
 *
 * Usage: sim_scale_bench [--quick] [--seed S] [--burst W] [--warmup R]
 *                        [--churn-minutes M] [--only burst|news|churn]
 *   --quick: N = 16 and 64, churn on 100 nodes for one minute.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "sim.h"

static double wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct {
    uint64_t seed;
    unsigned writes, warmup, writers;
} burst_cfg;

static int burst(unsigned n, unsigned fanout, const burst_cfg *c,
                 double *rounds_out)
{
    jv_sim_opts o;
    jv_sim_stats s;
    char msg[512];
    jv_sim_opts_default(&o);
    o.scenario = "burst";
    o.nodes = n;
    o.seed = c->seed;
    o.fanout = fanout;
    o.burst = c->writes;
    o.warmup = c->warmup;
    o.writers = c->writers;
    o.verify = false; /* states compared by digest; verify: sim_test */
    double t0 = wall();
    jv_err err = jv_sim_run(&o, &s, msg, sizeof(msg));
    double secs = wall() - t0;
    if (err) {
        printf("N=%u fanout %u: FAILED: %s\n", n, fanout, msg);
        return 1;
    }
    double rounds = (double)s.converge_ms / (double)o.interval_ms;
    double r = rounds < 1 ? 1 : rounds, recv = (double)s.ops * (n - 1);
    double op = (double)s.op_bytes / (double)s.ops;
    double dup = (double)s.conv_dups / ((double)s.burst_batches * (n - 1));
    if (c->writers)
        printf("| %5u | %-14s | %7" PRIu64 " | %6.2f | %8.1f | %9.0f | "
               "%9.0f | %9.0f | %5.2f | %5.2f | %5.1f%% | %6.1f |\n",
               n, fanout ? "push+pull" : "pull only", s.converge_ms, rounds,
               (double)s.conv_msgs / n, (double)s.op_bytes * (n - 1) / n,
               (double)s.conv_raw_bytes / n, (double)s.conv_bytes / n,
               (double)s.conv_raw_bytes / recv / op,
               (double)s.conv_bytes / recv / op, 100 * dup, secs);
    else
        printf("| %5u | %-14s | %7" PRIu64 " | %6.2f | %5.1f | %8.1f | %9.0f "
               "| %5.2f | %5.2f | %5.1f%% | %6.1f |\n",
               n, fanout ? "push+pull" : "pull only", s.converge_ms, rounds,
               log2((double)n) + 2, (double)s.conv_msgs / n / r,
               (double)s.conv_bytes / n / r,
               (double)s.conv_raw_bytes / recv / op,
               (double)s.conv_bytes / recv / op, 100 * dup, secs);
    fflush(stdout);
    *rounds_out = rounds;
    return 0;
}

static int churn(unsigned n, unsigned minutes, uint64_t seed)
{
    jv_sim_opts o;
    jv_sim_stats s;
    char msg[512];
    jv_sim_opts_default(&o);
    o.scenario = "churn";
    o.nodes = n;
    o.seed = seed;
    o.duration_ms = minutes * 60000ull;
    o.write_rate = 20;
    o.verify = false;
    double t0 = wall();
    jv_err err = jv_sim_run(&o, &s, msg, sizeof(msg));
    printf("\nchurn, %u nodes, %u simulated minute(s), 20 writes/s: %s\n", n,
           minutes, err ? msg : "converged");
    printf("  %" PRIu64 " restarts, %" PRIu64 " joins, %" PRIu64
           " writes (%" PRIu64 " acknowledged), %" PRIu64
           " messages (%.1f per node per second)\n",
           s.crashes, s.joins, s.writes, s.acked, s.messages,
           (double)s.messages / (double)(n + s.joins) /
               ((double)s.sim_ms / 1000));
    printf("  converged %" PRIu64 " ms after the churn stopped; replication "
           "lag over %" PRIu64 " applies: p50 %" PRIu64 " ms, p99 %" PRIu64
           " ms, max %" PRIu64 " ms (the run took %.0f s)\n",
           s.converge_ms, s.lag_samples, s.lag_p50_ms, s.lag_p99_ms,
           s.lag_max_ms, wall() - t0);
    return err ? 1 : 0;
}

static const unsigned sizes[] = {16, 64, 256, 1000};

/* 1: the burst, both modes, at every N. */
static int burst_table(const burst_cfg *c, size_t nsizes)
{
    int bad = 0;
    printf("a burst of %u writes on random nodes after %u warm-up rounds, "
           "until every node holds them\n\n",
           c->writes, c->warmup);
    printf(
        "| N     | mode           | ms      | rounds | goal  | msgs/node/rnd "
        "| bytes/node/rnd | raw/op | wire/op | dups | took s |\n");
    printf("| ----- | -------------- | ------- | ------ | ----- | -------- "
           "| --------- | ----- | ----- | ----- | ------ |\n");
    for (size_t i = 0; i < nsizes; i++) {
        double push, pull;
        bad |= burst(sizes[i], 3, c, &push);
        bad |= burst(sizes[i], 0, c, &pull);
        if (!bad && pull > 0)
            printf("|       | pull/push time |         | %6.2f |       |\n",
                   pull / (push > 0 ? push : 1));
    }
    printf(
        "\nraw/op, wire/op: bytes sent per operation delivered (operations x "
        "(N - 1) receivers) over the encoded operation; raw without zstd, "
        "wire as sent (goal <= 1.3). dups: batches received a second time, "
        "over batches x receivers.\n\n");
    return bad;
}

/* 2: the same news at every N (the batches of 16 writing nodes), so that
 * what a node sends and receives shows what the protocol adds as the
 * cluster grows. */
static int news_table(const burst_cfg *c, size_t nsizes)
{
    int bad = 0;
    burst_cfg f = *c;
    f.writers = 16;
    f.warmup = 1;
    printf("the same news at every N: %u writes on 16 random nodes, after "
           "%u warm-up round; per node, in all\n\n",
           f.writes, f.warmup);
    printf("| N     | mode           | ms      | rounds | msgs/node | "
           "news/node | raw/node  | wire/node | raw/op | wire/op | dups | "
           "took s |\n");
    printf("| ----- | -------------- | ------- | ------ | -------- | --------- "
           "| --------- | --------- | ----- | ----- | ----- | ------ |\n");
    for (size_t i = 0; i < nsizes; i++) {
        double push, pull;
        bad |= burst(sizes[i], 3, &f, &push);
        bad |= burst(sizes[i], 0, &f, &pull);
    }
    printf("\nnews/node: the bytes of the operations each node had to receive "
           "(larger with N: an archive removal carries the dots it observed, "
           "more of them where more nodes wrote); raw/node, wire/node: what "
           "each node sent, without zstd and as sent.\n\n");
    return bad;
}

int main(int argc, char **argv)
{
    bool quick = false;
    burst_cfg c = {.seed = 1, .writes = 1000, .warmup = 3, .writers = 0};
    unsigned minutes = 1;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            quick = true;
        else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
            c.seed = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--burst") == 0 && i + 1 < argc)
            c.writes = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--warmup") == 0 && i + 1 < argc)
            c.warmup = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--churn-minutes") == 0 && i + 1 < argc)
            minutes = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc &&
                 (strcmp(argv[i + 1], "burst") == 0 ||
                  strcmp(argv[i + 1], "news") == 0 ||
                  strcmp(argv[i + 1], "churn") == 0))
            only = argv[++i];
        else {
            fprintf(stderr,
                    "usage: sim_scale_bench [--quick] [--seed S] [--burst W] "
                    "[--warmup R] [--churn-minutes M] "
                    "[--only burst|news|churn]\n");
            return 2;
        }
    }
    jv_log_set_level(JV_LOG_ERROR);
    size_t nsizes = quick ? 2 : 4;
    int bad = 0;
    printf("sim_scale_bench, seed %" PRIu64 "\n\n", c.seed);
    if (!only || strcmp(only, "burst") == 0)
        bad |= burst_table(&c, nsizes);
    if (!only || strcmp(only, "news") == 0)
        bad |= news_table(&c, nsizes);
    if (!only || strcmp(only, "churn") == 0)
        bad |= churn(quick ? 100 : 1000, quick ? 1 : minutes, c.seed);
    return bad;
}
