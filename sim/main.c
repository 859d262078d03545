/*
 * jarvis-sim - the sync protocol on N simulated nodes (sim.h).
 *
 *   jarvis-sim [--nodes N] [--seed S] [--duration SECONDS]
 *              [--scenario faults|burst|churn] [--seeds K] [options]
 *
 * One line per run: the seed, ok or what failed, and what happened. With
 * --seeds K it runs seeds S, S+1, ... S+K-1 and stops at the first
 * failure; the exit status is 0 only if every run passed. Replay a failure
 * with its seed (and the same options): the run is the same, byte for byte.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sim.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: jarvis-sim [--nodes N] [--seed S] [--duration SECONDS]\n"
               "                  [--scenario faults|burst|churn] [--seeds K]\n"
               "                  [--peers N] [--fanout N] [--interval MS]\n"
               "                  [--timeout MS] [--loss P] [--dup P]\n"
               "                  [--latency MIN_US,MEAN_US] [--rate W]\n"
               "                  [--burst W] [--warmup R] [--writers K]\n"
               "                  [--burst-gap MS] [--settle SECONDS]\n"
               "                  [--no-verify] [--trace]\n"
               "                  [--log LEVEL]\n");
}

static int num(const char *s, uint64_t *out)
{
    char *end;
    if (!s || !*s || *s == '-')
        return -1;
    *out = strtoull(s, &end, 10);
    return *end ? -1 : 0;
}

static int real(const char *s, double *out)
{
    char *end;
    *out = strtod(s, &end);
    return *end || *out < 0 || *out > 1 ? -1 : 0;
}

static void print(const jv_sim_opts *o, const jv_sim_stats *s, jv_err err,
                  const char *msg)
{
    char hex[17];
    for (int i = 0; i < 8; i++)
        snprintf(hex + 2 * i, 3, "%02x", s->digest[i]);
    printf("seed %" PRIu64 " %s: %s; %u nodes, %" PRIu64
           " s simulated, %" PRIu64 " events, %" PRIu64 " writes (%" PRIu64
           " acknowledged), %" PRIu64 " batches, %" PRIu64 " messages (%" PRIu64
           " lost, %" PRIu64 " duplicated), %" PRIu64 " crashes, %" PRIu64
           " partitions, %" PRIu64 " joins; converged %" PRIu64
           " ms after healing; lag p50 %" PRIu64 " ms, p99 %" PRIu64
           " ms, max %" PRIu64 " ms; state %s\n",
           o->seed, o->scenario, err ? msg : "ok", o->nodes, s->sim_ms / 1000,
           s->events, s->writes, s->acked, s->batches, s->messages, s->dropped,
           s->duplicated, s->crashes, s->partitions, s->joins, s->converge_ms,
           s->lag_p50_ms, s->lag_p99_ms, s->lag_max_ms, hex);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"nodes", 1, 0, 'n'},
        {"seed", 1, 0, 's'},
        {"duration", 1, 0, 'd'},
        {"scenario", 1, 0, 'S'},
        {"seeds", 1, 0, 'k'},
        {"peers", 1, 0, 'p'},
        {"fanout", 1, 0, 'f'},
        {"interval", 1, 0, 'i'},
        {"timeout", 1, 0, 't'},
        {"loss", 1, 0, 'l'},
        {"dup", 1, 0, 'D'},
        {"latency", 1, 0, 'L'},
        {"rate", 1, 0, 'r'},
        {"burst", 1, 0, 'b'},
        {"burst-gap", 1, 0, 'G'},
        {"no-verify", 0, 0, 'V'},
        {"trace", 0, 0, 'T'},
        {"log", 1, 0, 'g'},
        {"help", 0, 0, 'h'},
        {"settle", 1, 0, 'e'},
        {"warmup", 1, 0, 'w'},
        {"writers", 1, 0, 'W'},
        {0, 0, 0, 0},
    };
    jv_sim_opts o;
    uint64_t v, seeds = 1, a, b;
    jv_log_level level = JV_LOG_ERROR;
    int c, bad = 0;
    jv_sim_opts_default(&o);
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'n':
            bad |= num(optarg, &v) || v < 2 || v > 100000;
            o.nodes = (unsigned)v;
            break;
        case 's':
            bad |= num(optarg, &o.seed);
            break;
        case 'd':
            bad |= num(optarg, &v) || v > 86400;
            o.duration_ms = v * 1000;
            break;
        case 'S':
            o.scenario = optarg;
            break;
        case 'k':
            bad |= num(optarg, &seeds) || !seeds;
            break;
        case 'p':
            bad |= num(optarg, &v) || v > 1000;
            o.peers = (unsigned)v;
            break;
        case 'f':
            bad |= num(optarg, &v) || v > 64;
            o.fanout = (unsigned)v;
            break;
        case 'i':
            bad |= num(optarg, &o.interval_ms) || o.interval_ms < 10;
            break;
        case 't':
            bad |= num(optarg, &o.timeout_ms) || o.timeout_ms < 10;
            break;
        case 'l':
            bad |= real(optarg, &o.loss);
            break;
        case 'D':
            bad |= real(optarg, &o.dup);
            break;
        case 'L':
            bad |= sscanf(optarg, "%" SCNu64 ",%" SCNu64, &a, &b) != 2;
            o.lat_min_us = a;
            o.lat_mean_us = b;
            break;
        case 'r':
            bad |= num(optarg, &v) || !v;
            o.write_rate = (double)v;
            break;
        case 'b':
            bad |= num(optarg, &v) || !v;
            o.burst = (unsigned)v;
            break;
        case 'w':
            bad |= num(optarg, &v) || v > 100;
            o.warmup = (unsigned)v;
            break;
        case 'W':
            bad |= num(optarg, &v) || v > 1000000;
            o.writers = (unsigned)v;
            break;
        case 'G':
            bad |= num(optarg, &v) || v > 60000;
            o.burst_gap_ms = v;
            break;
        case 'V':
            o.verify = false;
            break;
        case 'e':
            bad |= num(optarg, &v) || !v;
            o.settle_ms = v * 1000;
            break;
        case 'T':
            o.trace = stdout;
            break;
        case 'g':
            bad |= jv_log_parse_level(optarg, &level) != JV_OK;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            bad = 1;
        }
    }
    if (bad || optind != argc) {
        usage(stderr);
        return 2;
    }
    jv_log_set_level(level);
    uint64_t first = o.seed;
    for (uint64_t k = 0; k < seeds; k++) {
        jv_sim_stats s;
        char msg[512];
        o.seed = first + k;
        jv_err err = jv_sim_run(&o, &s, msg, sizeof(msg));
        print(&o, &s, err, msg);
        if (err)
            return 1;
    }
    return 0;
}
