/*
 * sim.h - the sync protocol on many simulated nodes, deterministic and
 * seeded (docs/simulation.md).
 *
 * N nodes run the node's replication code (repl.c, through the
 * jv_repl_host of simhost.c) and storage (an in-memory SQLite store each)
 * in one thread, on one event queue and one random stream: the same seed
 * gives the same run, byte for byte. The network has latency with a long
 * tail (so it reorders), loss, duplication and partitions (symmetric or
 * one-way); nodes crash, losing what they had not committed, and restart;
 * their clocks are off and drift.
 *
 * Scenarios:
 *   faults  writes on random nodes while faults come and go; then every
 *           fault heals and the nodes must converge.
 *   burst   a quiet cluster takes `burst` writes on random nodes at once
 *           or `burst_gap_ms` apart (after `warmup` rounds of one write
 *           per node); measures how long and how many messages and bytes
 *           it takes for every node to hold them (sim_scale).
 *   churn   writes while, every simulated minute, 10 % of the nodes
 *           restart and 1 % new ones join; then they must converge.
 *
 * During the run no node may hold more batches than were ever committed.
 * Checks at the end of every run: every node holds every batch committed
 * anywhere (convergence), every acknowledged write included; every node's
 * vector and state encoding are the same; each node's log verifies (its
 * chains and signatures, and its state against a replay of its log:
 * jv_store_verify); and the state equals the crdt/ models fed with every
 * operation of the log.
 */
#ifndef JV_SIM_H
#define JV_SIM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"

typedef struct jv_sim jv_sim;

typedef struct {
    unsigned nodes; /* default 8 */
    uint64_t seed;
    uint64_t duration_ms; /* the scenario's active part, simulated */
    const char *scenario; /* "faults" (default), "burst", "churn" */
    unsigned peers;       /* each node dials this many (and its ring
                             neighbour); default 4 */
    unsigned fanout;      /* default 3; 0: anti-entropy alone */
    uint64_t interval_ms; /* anti-entropy period; default 1000 */
    uint64_t timeout_ms;  /* one exchange; default 2000 */
    uint64_t lat_min_us, lat_mean_us; /* latency: min + exponential */
    double loss, dup;                 /* the network's baseline */
    double write_rate;     /* writes per simulated second, cluster-wide */
    unsigned burst;        /* burst: writes */
    unsigned warmup;       /* burst: rounds of one write per node before it */
    unsigned writers;      /* burst: on this many random nodes (0: any) */
    uint64_t burst_gap_ms; /* burst: between one write and the next (0: all
                              at once, one batch per node) */
    uint64_t settle_ms;    /* after healing, the most convergence may take */
    bool verify;           /* jv_store_verify and the models on every node */
    FILE *trace;           /* faults and phases, one line each; NULL: none */
    /* Tests of the checks themselves: the first acknowledged write is
     * recorded with a sequence number its node never committed (a writer
     * that acknowledges what it did not write). */
    bool test_lie;
} jv_sim_opts;

typedef struct {
    uint64_t events, messages, msg_bytes, dropped, duplicated;
    uint64_t writes, acked, crashes, joins, partitions;
    uint64_t batches;     /* committed anywhere, in all */
    uint64_t sim_ms;      /* simulated time of the whole run */
    uint64_t converge_ms; /* from the heal (burst: the writes) to all */
    uint64_t conv_msgs, conv_bytes; /* sent in that span (as sent) */
    uint64_t conv_raw_bytes;        /* the same messages without zstd */
    uint64_t conv_dups;     /* batches received that a node held already */
    uint64_t ops;           /* burst: its operations */
    uint64_t burst_batches; /* ... in so many batches */
    uint64_t op_bytes;      /* ... encoded (batch bodies and signatures) */
    uint64_t lag_p50_ms, lag_p99_ms, lag_max_ms; /* commit -> apply */
    uint64_t lag_samples;
    uint8_t digest[32]; /* the converged state (every node's) */
} jv_sim_stats;

void jv_sim_opts_default(jv_sim_opts *o);

/* Runs one simulation. JV_OK when every check passed; otherwise msg says
 * what failed (JV_ESTATE: a check; other codes: the simulation could not
 * run). s is filled either way. */
jv_err jv_sim_run(const jv_sim_opts *o, jv_sim_stats *s, char *msg,
                  size_t msglen);

#endif
