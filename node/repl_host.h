/*
 * repl_host.h - what replication needs from the world, as one table.
 *
 * The replication logic (repl.c) reaches the outside only through this
 * table: a clock, one timer, the peer transport, the writer, the sync
 * reader pool and the off-loop pool. Everything else it uses is its own
 * state; it reads no store on the loop after it started.
 *
 *                     repl.c (the protocol, unchanged)
 *                               |
 *                        jv_repl_host
 *              +----------------+-----------------+
 *   jarvisd: jv_repl_host_node       jarvis-sim: sim/simhost.c
 *   wall clock, uv timer,            virtual clock per node, timers on
 *   nng transport (transport.h),     one event queue, a simulated network
 *   writer and reader threads        (latency, loss, partitions), jobs run
 *                                    as events on an in-memory store
 *
 * The transport entries keep transport.h's contract exactly (which
 * callbacks come when, who owns what), so the two worlds differ in timing
 * and faults only. Every entry is called on the loop thread (the node's) or
 * the simulator's single thread; every callback comes there too.
 */
#ifndef JV_REPL_HOST_H
#define JV_REPL_HOST_H

#include "node.h"
#include "transport.h"

typedef struct {
    void *ctx;
    /* Seeds jitter and peer picks. */
    uint64_t seed;
    /* Wall-clock milliseconds since the epoch, as this node sees them. */
    uint64_t (*now_ms)(void *ctx);
    /* The one timer: fn(arg) once, delay_ms from now, replacing one that
     * is pending; timer_stop cancels it. */
    void (*timer_start)(void *ctx, uint64_t delay_ms, void (*fn)(void *arg),
                        void *arg);
    void (*timer_stop)(void *ctx);
    /* Jobs (writer.h, readers.h, node.h's jv_node_offloop_change): the
     * same contracts; done callbacks come later, never from inside the
     * call. offloop's jobs change the data: after each, the host has the
     * writer re-check held batches and read the trust list and the
     * vector again (a write request with JV_APPLY_RECHECK and
     * reread_trust). */
    void (*write)(void *ctx, jv_write_req *req);
    /* jv_writer_committed_head: this node's newest sequence number
     * committed, known as soon as the commit returns. */
    uint64_t (*own_committed)(void *ctx);
    jv_err (*read)(void *ctx, jv_read_job *job);
    /* As read, for a short job that reads no store (inflating a peer's
     * message under 64 KiB): jarvisd runs it on the sync reader's thread
     * too; the simulator as the hand-over it is, not as a read. */
    jv_err (*open)(void *ctx, jv_read_job *job);
    jv_err (*offloop)(void *ctx, jv_offloop_fn fn, jv_offloop_done done,
                      void *arg);
    /* A peer became reachable or unreachable (change streams). */
    void (*peer_seen)(void *ctx, const char *addr, const jv_id *id,
                      bool reachable);
    /* transport.h, one entry per function. */
    jv_err (*tp_new)(void *ctx, const jv_transport_opts *o,
                     const jv_transport_cbs *cbs, jv_transport **out);
    jv_err (*tp_listen)(jv_transport *t, const char *addr, char *bound,
                        size_t boundlen);
    jv_err (*tp_peer_new)(jv_transport *t, const char *addr, void *user,
                          jv_tpeer **out);
    void *(*tp_user)(const jv_tpeer *p);
    void (*tp_peer_free)(jv_tpeer *p);
    jv_err (*tp_send)(jv_tpeer *p, const uint8_t *msg, size_t len,
                      uint64_t timeout_ms);
    void (*tp_reply)(jv_inbound *in, const uint8_t *msg, size_t len);
    void (*tp_drop)(jv_inbound *in);
    bool (*tp_recall)(jv_tpeer *p);
    void (*tp_close)(jv_transport *t, void (*done)(void *), void *arg);
    void (*tp_kill_listener)(jv_transport *t);
    /* Releases ctx (the timer stopped first), then done(arg). */
    void (*fini)(void *ctx, void (*done)(void *), void *arg);
} jv_repl_host;

/* The node's host: its loop, its clock (jv_now_ms), nng, its writer and
 * sync readers, the change streams. */
jv_err jv_repl_host_node(jv_node *n, jv_repl_host *out);

#endif
