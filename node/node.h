/*
 * node.h - a running jarvisd: the loop, its state, start and graceful stop.
 *
 * One libuv loop thread owns everything here. Work that blocks runs
 * elsewhere: commits on the writer thread (writer.h), backup, verify and
 * export on libuv's thread pool with connections of their own. Reads for
 * the API run on the reader pool (readers.h), a peer's catch-up on a pool
 * of its own (WAL: they never wait for the writer, and they see every
 * acknowledged write). The loop reads the store only while the node
 * starts (rst), and closes that connection once it has started.
 *
 * Stopping (SIGTERM, SIGINT): stop accepting, answer what is in flight,
 * let the writer finish its queue, close the database, exit 0.
 */
#ifndef JV_NODE_H
#define JV_NODE_H

#include <limits.h>
#include <uv.h>

#include "auth.h"
#include "config.h"
#include "hlc.h"
#include "http.h"
#include "keyring.h"
#include "metrics.h"
#include "readers.h"
#include "writer.h"

typedef struct jv_node jv_node;
struct jv_repl;

struct jv_node {
    uv_loop_t *loop;
    const jv_config *cfg;     /* swapped by a reload (reload.h): loop thread */
    jv_sync sync;             /* cfg->sync, for other threads: never reloaded */
    struct jv_reload *reload; /* the last reload's outcome (reload.h) */
    jv_keypair kp;            /* the node's identity: signs its peer messages */
    jv_keypair origin;        /* signs its batches: kp, or a newer key since a
                                 restore (datadir.h, jv_datadir_restore) */
    char self_hex[JV_ID_HEX];
    char data_dir[PATH_MAX];
    char db_path[PATH_MAX];
    char api_addr_path[PATH_MAX];
    char api_bound[256];
    char backup_dir[PATH_MAX]; /* resolved: no symlink, no .. */

    jv_store *wst; /* writer connection: the writer thread's */
    jv_store *rst; /* the loop's reads at start-up; NULL once started */
    jv_store *cst; /* checkpoint connection: one thread-pool job at a time */
    /* The trust list's decisions (trustview.h), for the loop: read at
     * start, then swapped in after writer jobs (on_job, writer.h). */
    jv_trustview *trust;
    jv_readers *readers;      /* API reads, off the loop (readers.h) */
    jv_readers *sync_readers; /* peers' catch-up: selection, compression */
    uv_timer_t ckpt_timer;
    uv_work_t ckpt_work;
    bool ckpt_running;
    bool compacting; /* a compaction round is on the thread pool */
    /* refresh_after_change is due (on_tick): it could not submit its
     * job, or a read or take after a writer job failed. */
    bool refresh_due;
    jv_writer *writer;
    jv_http_server *http;
    jv_auth *auth;
    jv_metrics *metrics;
    void *api_series; /* the API's cached metric handles (api.c) */
    jv_hlc hlc;
    struct jv_repl *repl; /* peers and sync */
    /* Peers added through the API (stored with source "api"), as the
     * store holds them: a reload keeps them when the file drops them. */
    jv_strlist api_peers;
    jv_keyring ring;      /* cluster keys (empty: plaintext peers) */
    char peer_bound[256]; /* where peers reach us ("" if not listening) */
    /* Restored from a backup and not caught up yet with every peer: its
     * old origin's later batches may still be out there (health only; it
     * writes at once, under its new origin). */
    bool catching_up;
    jv_id restored_from; /* that old origin */

    /* Change streams (watch.h); NULL once stopping. */
    struct jv_watch *watch;

    uv_signal_t sigterm, sigint, sighup;
    uv_timer_t tick;
    int lockfd;
    uint64_t started_ms;
    bool stopping;
    int exit_code;
    unsigned closing;  /* handles still closing during stop */
    unsigned offloop;  /* thread-pool jobs running (backup, verify, export) */
    unsigned changing; /* ... of them, jobs that change the data */
    /* Single-key answers while the data stands still (rcache.h). */
    struct jv_rcache *rcache;
    uint64_t ticks;

    /* Health inputs. */
    uint64_t last_commit_ms;
    jv_err last_commit_err;
    uint64_t last_commit_err_ms;
    uint64_t api_errors_window; /* 5xx answered in the current minute */
    uint64_t api_errors_last;   /* ... and in the previous one */
    uint64_t window_start_ms;
};

/* Wall clock in milliseconds since the Unix epoch (shifted by the test
 * clock offset, if one is set). Any thread. */
uint64_t jv_now_ms(void);

/* Tests only (jarvisd --test-faults): shifts the node's wall clock, and the
 * store's, by ms from now on, as a clock set wrong (or stepped) would be.
 * Any thread. */
void jv_clock_test_offset(int64_t ms);

/* Prepares the data dir (identity, database, admin key), takes its lock,
 * opens both connections and starts listening. msg receives a one-line
 * reason on failure; everything opened so far is closed again. */
jv_err jv_node_start(jv_node *n, uv_loop_t *loop, const jv_config *cfg,
                     char *msg, size_t msglen);

/* Begins the graceful stop (idempotent). Loop thread. When the loop has
 * run out of handles, call jv_node_fini(). */
void jv_node_stop(jv_node *n);
/* Frees what outlives the loop and releases the data dir's lock. */
void jv_node_fini(jv_node *n);

/* The session API's limits for cfg (max-conns sized to the open-file
 * limit). */
void jv_node_api_limits(const jv_config *cfg, jv_http_opts *ho);

/* Puts the node ids of l on the replicated trust list, as a bootstrap
 * only: ids with a trust decision already are left alone. JV_EINVAL (with
 * msg) for an entry that is not a node id. */
jv_err jv_node_trust_bootstrap(jv_node *n, const jv_strlist *l, char *msg,
                               size_t msglen);

/* Whether addr is among n->api_peers; marks or unmarks it, after the
 * store's change committed. */
bool jv_node_api_peer(const jv_node *n, const char *addr);
jv_err jv_node_api_peer_set(jv_node *n, const char *addr, bool api);

/* Runs a job on libuv's thread pool with a connection of its own to the
 * database (opened and closed there), then `done` on the loop thread.
 * Refused with JV_ECLOSED while stopping. */
typedef jv_err (*jv_offloop_fn)(jv_store *st, void *arg);
typedef void (*jv_offloop_done)(jv_node *n, jv_err err, void *arg);
jv_err jv_node_offloop(jv_node *n, jv_offloop_fn fn, jv_offloop_done done,
                       void *arg);
/* The same for a job that may change what reads answer (a snapshot
 * installed; a compaction does not: it folds the log, not the state):
 * the read cache serves nothing while it runs, nor what it held before. */
jv_err jv_node_offloop_change(jv_node *n, jv_offloop_fn fn,
                              jv_offloop_done done, void *arg);

#endif
