/*
 * writer.h - the commit thread: group commit off the event loop.
 *
 *   loop thread                      writer thread
 *   -----------                      -------------
 *   submit(r) -> queue
 *   no commit running? dispatch:
 *     job = whole queue, stamp  ---> verify remote batches' signatures,
 *                                    jv_store_apply (one transaction),
 *                                    jv_store_commit_local (one transaction,
 *                                    one signed batch for all local groups)
 *   async wakeup  <------------------ job done
 *   call each r->done; queue non-empty? dispatch again
 *
 * While one commit runs, new writes wait in the queue and go together in
 * the next one: under load a commit carries many requests (one signature,
 * one fsync), idle a write commits alone at once. The loop never blocks on
 * the disk. A dedicated thread (rather than libuv's pool) keeps long jobs
 * there (backup, verify, export) from ever delaying a commit.
 *
 * Ownership: a request and everything it points to belong to the caller
 * and must stay valid until its done callback, which runs on the loop
 * thread.
 */
#ifndef JV_WRITER_H
#define JV_WRITER_H

#include <uv.h>

#include "apply.h"
#include "auth.h"
#include "hlc.h"
#include "trustview.h"

typedef struct jv_writer jv_writer;
typedef struct jv_write_req jv_write_req;

typedef void (*jv_write_cb)(jv_write_req *r);

/* What a request may change, as far as those who keep answers care
 * (rcache.h): a request of peers' batches, a recheck, a trust decision,
 * a succession or a group with a `local` step may change anything. */
enum {
    JV_CHANGES_COUNTERS = 1 << 0,
    JV_CHANGES_CONFIG = 1 << 1,
    JV_CHANGES_ARCHIVE = 1 << 2,
    JV_CHANGES_OTHER = 1 << 3, /* audit entries, API keys */
    JV_CHANGES_ALL = (1 << 4) - 1
};

/* A batch from a peer. body is owned by the caller. */
typedef struct {
    const uint8_t *body;
    size_t len;
    uint8_t sig[JV_SIG_LEN];
    jv_err result; /* out: jv_store_apply's result, or JV_ESIG, JV_EDECODE */
} jv_remote_batch;

struct jv_write_req {
    /* In: local writes (group.n > 0 or group.local set), or remote
     * batches (nremote > 0), or both. */
    jv_write_group group;
    jv_remote_batch *remote;
    size_t nremote;
    unsigned apply_flags;
    /* The trust list and the cluster keys changed on another connection
     * (a snapshot was installed): the writer reads them again after the
     * job. */
    bool reread_trust;
    jv_write_cb done;
    void *arg;

    /* Out, valid in done: the storage error that failed the commit (then
     * nothing of this request was applied), and what the commit did. */
    jv_err err;
    char errmsg[256]; /* the store's message for err ("" when none) */
    jv_commit_info info;
    jv_apply_stats stats;
    uint64_t commit_ns; /* duration of the commit(s) this request was in */
    size_t job_groups;  /* local groups committed together with this one */

    unsigned changes;   /* internal: JV_CHANGES_*, set by submit */
    jv_write_req *next; /* internal */
};

/* What one commit job did, for metrics. */
typedef struct {
    size_t requests;       /* requests in the job */
    size_t groups;         /* local write groups committed */
    size_t groups_failed;  /* ... of which dropped */
    size_t nops;           /* local operations after coalescing */
    size_t nbatches;       /* local batches made */
    uint64_t own_seq;      /* jv_writer_own_seq() of the job */
    size_t remote_batches; /* peers' batches offered */
    uint64_t remote_ops;   /* peers' operations applied */
    uint64_t commit_ns;
    jv_err err;       /* a storage error that failed a commit */
    unsigned changes; /* JV_CHANGES_* of its requests, together */
    /* Read on the writer's thread after the job (jv_writer_after), so
     * that the loop reads no store for them: the applied version vector
     * when own_seq is 0 or a read of it failed before (NULL if this one
     * failed too, or none was due), and a new trust view when the job
     * wrote trust entries or successions or a request asked for one
     * (reread_trust), or a read of it failed before (the observer takes
     * it; NULL otherwise). */
    const jv_vv *vv;
    jv_trustview *trust;
    /* The cluster keys, after a job that applied peers' key operations
     * (also those a local trust released) or asked (reread_trust), or
     * after a failed read of them (the observer takes them; NULL
     * otherwise). */
    jv_auth_ckeys *ckeys;
    jv_err read_err; /* those reads' failure (the next job reads again) */
} jv_writer_job;

typedef void (*jv_writer_observer)(void *arg, const jv_writer_job *job);

/* Starts the thread. st is used only by that thread from now on; kp is
 * copied; clock belongs to the loop and stamps each batch. A trust view
 * is read again after the first job that moves st's trust generation
 * from what it is now. */
jv_err jv_writer_start(uv_loop_t *loop, jv_store *st, const jv_keypair *kp,
                       jv_hlc *clock, jv_writer **out);

/* Called on the loop thread after every job, before the requests' done
 * callbacks. */
void jv_writer_observe(jv_writer *w, jv_writer_observer fn, void *arg);

/* Queues a request. Loop thread. */
void jv_writer_submit(jv_writer *w, jv_write_req *r);

/* Runs one job (requests linked by `next`) on st, as the writer thread
 * does: each request's peer batches verified and applied, then every
 * local group in one commit stamped hlc. Fills the requests' results;
 * calls no done callback. The simulator's writer. */
void jv_writer_run(jv_store *st, const jv_keypair *kp, uint64_t hlc,
                   jv_write_req *job);

/* After a job that only added operations of this node (none of peers'
 * batches, held batches released, trust, a succession, a node-local
 * step: nothing of JV_CHANGES_ALL), this node's newest sequence number;
 * else 0. */
uint64_t jv_writer_own_seq(const jv_write_req *job);

/* What the loop learns from the store after a job. */
typedef struct {
    uint64_t trust_gen;   /* the store's trust generation `trust` was read at */
    bool dirty;           /* a request asked for a view, none read since */
    jv_trustview *trust;  /* out: a new view, else NULL */
    jv_auth_ckeys *ckeys; /* out: the cluster keys, else NULL */
    bool ckeys_due;       /* a read of them failed: read them again */
    jv_vv vv;             /* out: the applied vector, when vv_read */
    bool vv_read;
    bool vv_due; /* a read of it failed: read it after every job until one
                    succeeds */
    jv_err err;  /* out: a read that failed (the next job reads again) */
} jv_writer_after;

/* Fills a after job ran on st: on the writer's thread, or the simulator's
 * writer. The vector is read when the job may have changed more than this
 * node's log, or a read of it failed before, until a read succeeds. A
 * trust view is read when st's trust generation moved from
 * a->trust_gen, or a request of this job or an earlier one asked
 * (reread_trust), until a read succeeds; the cluster keys when the job
 * applied peers' key operations or a request asked (reread_trust), until
 * a read succeeds. a->trust and a->ckeys must be NULL (taken by the
 * caller since). */
void jv_writer_read_after(jv_store *st, const jv_write_req *job,
                          jv_writer_after *a);

/* The newest sequence number of self's log that job committed, as far
 * as its requests and a (may be NULL; its vector if read) show; 0 if
 * none. */
uint64_t jv_writer_own_head(const jv_write_req *job, const jv_writer_after *a,
                            const jv_id *self);

/* The newest sequence number of this node's log committed so far (0 before
 * the first commit). Any thread: it is published as soon as a commit
 * returns, before the observer hears of it, so that a peer's claim to
 * hold a batch of ours that the loop has not heard of yet can be told
 * from one no commit made. */
uint64_t jv_writer_committed_head(const jv_writer *w);

/* Requests queued or committing. Loop thread. */
size_t jv_writer_pending(const jv_writer *w);
/* ... of them, those that may change something of `changes`. */
size_t jv_writer_pending_changes(const jv_writer *w, unsigned changes);

/* Once nothing is pending, stops the thread and frees the writer, then
 * calls done(arg) on the loop thread. Submitting after this is a bug. */
void jv_writer_stop(jv_writer *w, void (*done)(void *), void *arg);

#endif
