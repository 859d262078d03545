/*
 * sim_int.h - the simulator's world, shared by sim.c (nodes, workload,
 * faults, checks) and simhost.c (each node's jv_repl_host: its clock,
 * timer, jobs and the simulated network).
 */
#ifndef JV_SIM_INT_H
#define JV_SIM_INT_H

#include "repl.h"
#include "sim.h"
#include "simq.h"

typedef struct simnode simnode;

/* A job a crash must fail (its done callback not yet run). */
typedef struct simjob {
    enum {
        J_READ,
        J_OFFLOOP
    } kind;
    simnode *n;
    uint64_t gen;
    jv_read_job *read;
    jv_offloop_fn ofn;
    jv_offloop_done odone;
    void *oarg;
    bool ran;   /* fn ran; done pending */
    bool light; /* reads no store: a hand-over, not a read (h_open) */
    jv_err err;
    struct simjob *prev, *next;
} simjob;

struct jv_transport {
    simnode *n;
    jv_transport_cbs cbs;
    bool closed;
    struct jv_inbound *ins; /* not answered yet */
};

struct jv_tpeer {
    jv_transport *t; /* NULL once freed */
    unsigned to;     /* node index */
    void *user;
    uint64_t req; /* outstanding request's id, 0: none */
    struct jv_tpeer *next;
};

struct jv_inbound {
    jv_transport *t;
    jv_tpeer *from;
    uint64_t req;
    void *pkt; /* the request's bytes, valid until answered */
    struct jv_inbound *prev, *next;
};

struct simnode {
    jv_sim *w;
    unsigned idx;
    uint64_t gen; /* moves on at each crash: its events die */
    bool up;
    bool joined; /* part of the cluster (churn adds nodes later) */
    char addr[48];
    jv_config cfg;
    jv_node node;
    jv_store *st;
    jv_repl *repl;
    jv_transport *tp;
    /* The host's timer: one at a time. */
    uint64_t timer_gen;
    void (*tfn)(void *);
    void *targ;
    /* The writer: queue, and the job whose done callbacks are due. */
    jv_write_req *wq, *wq_tail, *wdone;
    jv_writer_after after; /* what the loop learns after wdone */
    uint64_t own_head;     /* jv_writer_committed_head */
    bool wrunning;
    simjob *jobs;
    /* Clock: offset from true time and drift, parts per million. */
    int64_t skew_us;
    int64_t drift_ppm;
    unsigned *peers;
    size_t npeers;
    /* Partition side (0 or 1) while one is on. */
    unsigned side;
    uint64_t restarts;
    uint64_t sent_bytes, sent_msgs;
    uint64_t batches; /* batches it holds (committed or applied) */
    void *commits;    /* its commits: (last_seq, when), for lag */
    size_t ncommits, commitcap;
};

typedef struct {
    jv_id id;
    unsigned idx;
} jv_sim_key;

struct jv_sim {
    jv_sim_opts o;
    jv_simq q;
    simnode *nodes;
    size_t n, cap;
    jv_tpeer *tpeers; /* every transport peer ever made (freed at the end) */
    uint64_t next_req;
    /* The network now. */
    double loss, dup;
    bool partition, asymmetric;
    uint64_t net_gen;  /* the network fault in force */
    bool healing;      /* no more faults or writes: converge */
    bool ending;       /* everything stops */
    uint64_t inflight; /* writes not answered yet */
    uint64_t genesis;  /* batches of the founding commit */
    jv_sim_stats s;
    jv_keypair *keys;
    jv_sim_key *byid; /* keys by id, for lag */
    uint64_t *lag;    /* histogram, 1 ms buckets */
    /* Acknowledged writes: per origin, the highest sequence number. */
    uint64_t *acked;
    char why[640];    /* jv__simcheck_behind's line */
    char broken[256]; /* the first invariant broken during the run */
};

/* simhost.c */
void jv__simhost_make(simnode *n, jv_repl_host *out);
/* The node's clock, ms since the epoch. */
uint64_t jv__sim_clock(simnode *n);
/* Fails every job of n not finished yet (a crash), without running it. */
void jv__simhost_crash(simnode *n);
/* Tells the peers of the world that n went up or down (on_link). */
void jv__simhost_link(simnode *n, bool up);
void jv__simhost_free_peers(jv_sim *w);
/* A write request, as the node's writer takes one. */
void jv__simhost_write(simnode *n, jv_write_req *req);

#endif
