#include "repl_host.h"

#include <sodium.h>

#include "alloc.h"
#include "watch.h"

typedef struct {
    jv_node *node;
    uv_timer_t timer;
    void (*fn)(void *);
    void *arg;
    void (*done)(void *);
    void *done_arg;
} host;

static uint64_t h_now(void *ctx)
{
    (void)ctx;
    return jv_now_ms();
}

static void on_timer(uv_timer_t *t)
{
    host *h = t->data;
    h->fn(h->arg);
}

static void h_timer_start(void *ctx, uint64_t delay_ms, void (*fn)(void *),
                          void *arg)
{
    host *h = ctx;
    h->fn = fn;
    h->arg = arg;
    uv_timer_start(&h->timer, on_timer, delay_ms, 0);
}

static void h_timer_stop(void *ctx)
{
    host *h = ctx;
    uv_timer_stop(&h->timer);
}

static void h_write(void *ctx, jv_write_req *req)
{
    host *h = ctx;
    jv_writer_submit(h->node->writer, req);
}

static uint64_t h_own_committed(void *ctx)
{
    host *h = ctx;
    return jv_writer_committed_head(h->node->writer);
}

static jv_err h_read(void *ctx, jv_read_job *job)
{
    host *h = ctx;
    return jv_readers_submit(h->node->sync_readers, job);
}

static jv_err h_offloop(void *ctx, jv_offloop_fn fn, jv_offloop_done done,
                        void *arg)
{
    host *h = ctx;
    /* Replication's only job off the loop installs a snapshot. */
    return jv_node_offloop_change(h->node, fn, done, arg);
}

static void h_peer_seen(void *ctx, const char *addr, const jv_id *id,
                        bool reachable)
{
    host *h = ctx;
    jv_watch_peer(h->node->watch, addr, id, reachable);
}

static jv_err h_tp_new(void *ctx, const jv_transport_opts *o,
                       const jv_transport_cbs *cbs, jv_transport **out)
{
    host *h = ctx;
    return jv_transport_new(h->node->loop, o, cbs, out);
}

static void on_closed(uv_handle_t *t)
{
    host *h = t->data;
    void (*done)(void *) = h->done;
    void *arg = h->done_arg;
    jv_free(h);
    if (done)
        done(arg);
}

static void h_fini(void *ctx, void (*done)(void *), void *arg)
{
    host *h = ctx;
    h->done = done;
    h->done_arg = arg;
    uv_close((uv_handle_t *)&h->timer, on_closed);
}

jv_err jv_repl_host_node(jv_node *n, jv_repl_host *out)
{
    host *h = jv_calloc(1, sizeof(*h));
    if (!h)
        return JV_ENOMEM;
    h->node = n;
    uv_timer_init(n->loop, &h->timer);
    h->timer.data = h;
    *out = (jv_repl_host){
        .ctx = h,
        .now_ms = h_now,
        .timer_start = h_timer_start,
        .timer_stop = h_timer_stop,
        .write = h_write,
        .own_committed = h_own_committed,
        .read = h_read,
        .open = h_read,
        .offloop = h_offloop,
        .peer_seen = h_peer_seen,
        .tp_new = h_tp_new,
        .tp_listen = jv_transport_listen,
        .tp_peer_new = jv_transport_peer_new,
        .tp_user = jv_tpeer_user,
        .tp_peer_free = jv_transport_peer_free,
        .tp_send = jv_transport_send,
        .tp_reply = jv_transport_reply,
        .tp_drop = jv_transport_drop,
        .tp_recall = jv_transport_recall,
        .tp_close = jv_transport_close,
        .tp_kill_listener = jv_transport_fault_kill_listener,
        .fini = h_fini,
    };
    randombytes_buf(&out->seed, sizeof(out->seed));
    return JV_OK;
}
