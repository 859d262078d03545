/*
 * transport.c - request/reply between peers over nng 1.5.2.
 *
 * Threads. nng completes every operation on threads of its own, through a
 * callback per nng_aio. Those callbacks do one thing: put the object that
 * owns the aio on the transport's event queue (a list under a mutex) and
 * wake the loop with uv_async_send(). The loop thread pops the objects one
 * at a time and runs their state machines; every nng call that starts an
 * operation, and every user callback, happens there.
 *
 *   nng thread:   aio done -> post(obj) -> [queue] -> uv_async_send
 *   loop thread:  on_async -> pop obj -> obj->ev.fn(obj) -> user callback
 *
 * Each object (server context, peer, probe) owns exactly one aio and one
 * event node, and starts its next operation only from the loop after
 * handling the previous completion; so an object is queued at most once,
 * and posting never allocates on nng's threads.
 *
 * Lifetimes. Freeing an object that owns an aio goes: nng_aio_stop() (an
 * outstanding operation is cancelled, and a callback already running is
 * waited for; after it no callback can come), then the object's event is
 * taken off the queue under the mutex, then whatever message the state
 * says is ours is freed. Messages follow nng's rule: a successful send
 * hands the message to nng, a failed one leaves it in the aio for us; a
 * successful receive hands it to us. The queue mutex is never held while
 * calling into nng, and nng_aio_stop() is never called from an nng
 * callback, so neither side can wait on the other.
 *
 * The loop pops one event at a time (not the whole list) because a user
 * callback may free another peer whose event is already queued: freeing
 * removes it from the shared queue, so it is never run after the free.
 * The uv handles are closed only after every aio is stopped, so no nng
 * thread can touch the async handle once it is gone.
 *
 * Listener probe (nng #1518). In 1.5.2 a failed handshake hands its error
 * to the listener's pending accept; NNG_ECLOSED (a write that meets EPIPE:
 * over TCP a peer that half-closed then reset before nng wrote its header,
 * over IPC one that simply closed) makes the listener stop accepting for
 * good. Connections it already holds keep working, and new ones even
 * complete their handshake (the transport negotiates on its own) but are
 * never handed to the socket: requests on them vanish. So the probe
 * connects afresh each time and waits for a real answer: every
 * probe_interval_ms a REQ socket of our own drops the connection the last
 * probe used, its dialer reaches our bound address again, and it sends
 * magic + random nonce; our REP side echoes it without telling the user. A
 * probe that gets no echo within probe_timeout_ms fails; probe_failures
 * failures in a row close the listener and create it again on the same address.
 *
 * Two residues of nng 1.5.2 shape the rest. Closing a listener that holds
 * such negotiated-but-never-accepted connections leaks them and its
 * endpoint inside nng (a few KiB per re-creation); nothing here can reach
 * them. And closing a connection at the instant a message arrives on it
 * can lose the receive (the transport re-arms a read on an aio already
 * closed), which wedges nng's single reaper thread and every later
 * nng_close() behind it. So the probe only ever closes connections that
 * are idle: the one its last answered probe used, closed at the start of
 * the next probe; the fault switch and the re-creation of the listener
 * happen while no probe is in flight; and closing the transport waits for
 * a probe in flight to end before closing anything.
 *
 * Connection state (on_link). nng says nothing of a dial that fails, and
 * reading its statistics takes its global locks; so the state comes from
 * two other places, neither of which closes anything of nng's. Pipe
 * notifications on each peer's socket (ADD_POST, REM_POST) run on nng's
 * threads (REM_POST on the reaper's) and, like the aio callbacks, only
 * record the pipe id and post the peer's link event; they reach the peer
 * through a small refcounted pwatch that outlives it, since the socket is
 * closed later on a thread of its own. When there is no pipe, a check
 * connects to the peer's address with plain libuv and closes again: the
 * error (refused, timed out, unreachable) is the reason shown. A check
 * that connects reads the SP header nng's listener sends first and only
 * then closes (with a reset): the listener then sees an ordinary failed
 * handshake, never the half-closed connection of nng #1518 above. At most
 * one check per peer is under way, and the ones that sends start back
 * off, so a dead peer costs a connect() now and then.
 */
#include "transport.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "alloc.h"

#define container_of(p, type, field) \
    ((type *)(void *)((char *)(p)-offsetof(type, field)))

/* Addresses longer than this are refused; a sane one is far shorter. */
#define ADDR_MAX 512
/* sockaddr_un's sun_path holds 108 bytes on Linux, the NUL included. */
#define IPC_PATH_MAX 107

/* NNG_OPT_RECVMAXSZ counts the SP header too (4 bytes of request id, more
 * for a backtrace through devices). The exact body limit is enforced by
 * this file; nng's limit only has to keep anything much larger off. */
#define SP_HEADER_SLACK 64

/* Events handled per wake-up, so a flood of completions cannot starve the
 * rest of the loop; what remains is handled at the next wake-up. */
#define EVENTS_PER_WAKE 64

/* A reply that cannot be handed to nng within this time (the requester
 * stopped reading) is dropped, so that a slow peer cannot hold a context. */
#define REPLY_TIMEOUT_MS 10000

#define PROBE_MAGIC     "\xffjvprobe"
#define PROBE_MAGIC_LEN 8
#define PROBE_NONCE_LEN 16
#define PROBE_LEN       (PROBE_MAGIC_LEN + PROBE_NONCE_LEN)
/* The probe's redial backoff starts here (ms). */
#define PROBE_REDIAL_MIN_MS 10

typedef struct tev tev;
struct tev {
    tev *prev, *next;
    bool queued;
    void (*fn)(tev *);
};

enum srv_state {
    SRV_IDLE, /* no operation; the socket is closed or not yet listening */
    SRV_RECV, /* waiting for a request */
    SRV_HELD, /* the user holds the request */
    SRV_SEND, /* handing the reply to nng */
};

struct jv_inbound {
    jv_transport *t;
    tev ev;
    nng_ctx ctx;
    nng_aio *aio;
    nng_msg *req; /* SRV_HELD: the request the user is answering */
    enum srv_state state;
};

enum req_state {
    REQ_IDLE,
    REQ_SEND, /* request queued in nng until a pipe takes it */
    REQ_RECV, /* waiting for the reply */
};

/* What nng's pipe callbacks on one peer's socket share with the loop. It
 * outlives the peer: the socket is closed later, on a thread of its own
 * (close_detached), and a callback may run until nng_close() returns; so
 * the peer and its socket each hold a reference, and the last to let go
 * frees it. */
typedef struct {
    uv_mutex_t mtx;
    jv_tpeer *p;   /* NULL once the peer is freed: post nothing */
    unsigned refs; /* the peer's and the socket's */
    uint32_t pipe; /* id of the peer's connection; 0: none */
    uint32_t adds; /* connections made so far */
} pwatch;

typedef struct check check;

struct jv_tpeer {
    jv_transport *t;
    jv_tpeer *prev, *next;
    tev ev;
    char *addr;
    void *user;
    nng_socket sock;
    bool sock_open;
    nng_ctx ctx;
    nng_aio *aio;
    enum req_state state;
    uint64_t deadline; /* uv_hrtime() ns */

    /* The connection's state, as last reported through on_link. */
    pwatch *w;
    tev lev;               /* a pipe came or went */
    uint32_t adds_seen;    /* w->adds when last looked at */
    bool reported;         /* on_link was called at least once */
    const char *why;       /* as last reported; NULL: connected */
    check *ck;             /* the connection check in flight, if any */
    bool rechecked;        /* it is the second look (CHECK_AGAIN_MS) */
    uint64_t next_check;   /* uv_hrtime() ns: none sooner on a send */
    uint64_t check_gap_ms; /* the backoff between checks */
};

struct jv_transport {
    uv_loop_t *loop;
    jv_transport_opts o;
    jv_transport_cbs cbs;
    uv_async_t async;
    uv_timer_t timer;
    uv_mutex_t mtx; /* guards the event queue, nothing else */
    tev *qhead, *qtail;
    int handles;
    bool closing;   /* jv_transport_close() was called */
    bool finishing; /* and the nng side is being torn down */
    void (*done)(void *);
    void *done_arg;

    jv_tpeer *peers;

    /* Inbound. */
    nng_socket rep;
    bool rep_open;
    nng_listener listener;
    bool listener_up; /* as far as the transport knows */
    char *url;        /* the address bound, with the real port */
    jv_inbound *srv;
    unsigned nsrv;

    /* Listener probe. */
    nng_socket psock;
    bool psock_open;
    nng_ctx pctx;
    bool pdialed;   /* the probe's dialer exists (from the first probe) */
    nng_pipe ppipe; /* the connection of the last probe answered */
    nng_aio *paio;
    tev pev;
    enum req_state pstate;
    uint64_t pdeadline;
    uint8_t pmsg[PROBE_LEN];
    char *purl;
    unsigned pfail;
    bool kill_pending; /* the fault switch, waiting for an idle probe */
    uint64_t restarts;
};

/* ---- errors, times, addresses ---------------------------------------- */

static jv_err from_nng(int rv)
{
    switch (rv) {
    case 0:
        return JV_OK;
    case NNG_ETIMEDOUT:
        return JV_ETIMEDOUT;
    case NNG_ECLOSED:
    case NNG_ECANCELED:
        return JV_ECLOSED;
    case NNG_EMSGSIZE:
        return JV_ETOOBIG;
    case NNG_ENOMEM:
        return JV_ENOMEM;
    case NNG_EINVAL:
    case NNG_EADDRINVAL:
    case NNG_ENOTSUP:
        return JV_EINVAL;
    case NNG_EADDRINUSE:
        return JV_EBUSY;
    case NNG_EPERM:
        return JV_EPERM;
    default:
        /* refused, reset, shut, unreachable, protocol errors... */
        return JV_ENET;
    }
}

/* on_reply promises one of four outcomes; anything else is the network. */
static jv_err reply_err(int rv)
{
    jv_err err = from_nng(rv);
    if (err == JV_OK || err == JV_ETIMEDOUT || err == JV_ECLOSED)
        return err;
    return JV_ENET;
}

static nng_duration dur(uint64_t ms)
{
    return ms > INT32_MAX ? INT32_MAX : (nng_duration)ms;
}

/* Milliseconds left until a uv_hrtime() deadline; at least 1 so that an
 * expired deadline still fails through nng's own timeout path. */
static nng_duration left_ms(uint64_t deadline)
{
    uint64_t now = uv_hrtime();
    if (deadline <= now + 1000000)
        return 1;
    return dur((deadline - now) / 1000000);
}

typedef struct {
    bool tcp;
    const char *host; /* tcp: as written, brackets included */
    size_t hostlen;
    unsigned port;
} addr_parts;

static bool is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '.';
}

static bool is_ip6_char(char c)
{
    return (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
           (c >= '0' && c <= '9') || c == ':' || c == '.';
}

static jv_err addr_parse(const char *addr, addr_parts *out)
{
    size_t len;
    memset(out, 0, sizeof(*out));
    if (!addr || (len = strnlen(addr, ADDR_MAX + 1)) > ADDR_MAX)
        return JV_EINVAL;
    if (strncmp(addr, "ipc://", 6) == 0) {
        const char *path = addr + 6;
        size_t n = len - 6;
        if (n < 2 || n > IPC_PATH_MAX || path[0] != '/')
            return JV_EINVAL;
        return JV_OK;
    }
    if (strncmp(addr, "tcp://", 6) != 0)
        return JV_EINVAL;
    const char *h = addr + 6, *end = addr + len, *colon;
    if (*h == '[') {
        const char *close = memchr(h, ']', (size_t)(end - h));
        if (!close || close == h + 1 || close[1] != ':')
            return JV_EINVAL;
        for (const char *c = h + 1; c < close; c++)
            if (!is_ip6_char(*c))
                return JV_EINVAL;
        colon = close + 1;
    } else {
        colon = memchr(h, ':', (size_t)(end - h));
        if (!colon || colon == h)
            return JV_EINVAL;
        for (const char *c = h; c < colon; c++)
            if (!is_name_char(*c))
                return JV_EINVAL;
    }
    const char *d = colon + 1;
    unsigned long port = 0;
    if (d == end || end - d > 5)
        return JV_EINVAL;
    for (; d < end; d++) {
        if (*d < '0' || *d > '9')
            return JV_EINVAL;
        port = port * 10 + (unsigned long)(*d - '0');
    }
    if (port > 65535)
        return JV_EINVAL;
    out->tcp = true;
    out->host = h;
    out->hostlen = (size_t)(colon - h);
    out->port = (unsigned)port;
    return JV_OK;
}

jv_err jv_transport_addr_check(const char *addr)
{
    addr_parts a;
    return addr_parse(addr, &a);
}

static char *tcp_url(const char *host, size_t hostlen, unsigned port)
{
    char tmp[ADDR_MAX + 16];
    int n =
        snprintf(tmp, sizeof(tmp), "tcp://%.*s:%u", (int)hostlen, host, port);
    if (n < 0 || (size_t)n >= sizeof(tmp))
        return NULL;
    return jv_strndup(tmp, (size_t)n);
}

/* The address the probe dials: the bound one, with a wildcard host
 * replaced by loopback (one cannot connect to 0.0.0.0 portably). */
static char *probe_url(const char *url)
{
    addr_parts a;
    char host[64];
    uint8_t ip[16];
    if (addr_parse(url, &a) || !a.tcp)
        return jv_strndup(url, strlen(url));
    if (a.hostlen < sizeof(host)) {
        bool v6 = a.host[0] == '[';
        memcpy(host, a.host + v6, a.hostlen - 2 * v6);
        host[a.hostlen - 2 * v6] = '\0';
        if (!v6 && inet_pton(AF_INET, host, ip) == 1 &&
            memcmp(ip, "\0\0\0\0", 4) == 0)
            return tcp_url("127.0.0.1", 9, a.port);
        if (v6 && inet_pton(AF_INET6, host, ip) == 1 &&
            memcmp(ip, &in6addr_any, 16) == 0)
            return tcp_url("[::1]", 5, a.port);
    }
    return jv_strndup(url, strlen(url));
}

/* ---- the event queue --------------------------------------------------- */

/* Any thread (nng's callbacks). */
static void post(jv_transport *t, tev *e)
{
    uv_mutex_lock(&t->mtx);
    if (!e->queued) {
        e->queued = true;
        e->next = NULL;
        e->prev = t->qtail;
        if (t->qtail)
            t->qtail->next = e;
        else
            t->qhead = e;
        t->qtail = e;
    }
    uv_mutex_unlock(&t->mtx);
    uv_async_send(&t->async);
}

static void unlink_ev(jv_transport *t, tev *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        t->qhead = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        t->qtail = e->prev;
    e->prev = e->next = NULL;
    e->queued = false;
}

/* Loop thread, after the owner's aio is stopped. */
static void unqueue(jv_transport *t, tev *e)
{
    uv_mutex_lock(&t->mtx);
    if (e->queued)
        unlink_ev(t, e);
    uv_mutex_unlock(&t->mtx);
}

static void on_async(uv_async_t *h)
{
    jv_transport *t = h->data;
    bool more;
    for (int i = 0; i < EVENTS_PER_WAKE; i++) {
        tev *e;
        if (t->finishing)
            return;
        uv_mutex_lock(&t->mtx);
        if ((e = t->qhead))
            unlink_ev(t, e);
        uv_mutex_unlock(&t->mtx);
        if (!e)
            return;
        e->fn(e);
    }
    uv_mutex_lock(&t->mtx);
    more = t->qhead != NULL;
    uv_mutex_unlock(&t->mtx);
    if (more && !t->finishing)
        uv_async_send(&t->async);
}

/* ---- messages ---------------------------------------------------------- */

static jv_err msg_new(const uint8_t *p, size_t n, nng_msg **out)
{
    nng_msg *m;
    *out = NULL; /* defined on every path, also for callers that ignore err */
    int rv = nng_msg_alloc(&m, n);
    if (rv)
        return from_nng(rv);
    if (n)
        memcpy(nng_msg_body(m), p, n);
    *out = m;
    return JV_OK;
}

/* After nng_aio_stop(): frees the message the aio holds if, given the
 * state, it is ours (a send that did not succeed, a receive that did). */
static void free_aio_msg(nng_aio *aio, bool sending)
{
    int rv = nng_aio_result(aio);
    nng_msg *m = nng_aio_get_msg(aio);
    nng_aio_set_msg(aio, NULL);
    if (m && (sending ? rv != 0 : rv == 0))
        nng_msg_free(m);
}

/* ---- inbound ----------------------------------------------------------- */

static void srv_recv(jv_inbound *in)
{
    in->state = SRV_RECV;
    nng_aio_set_timeout(in->aio, NNG_DURATION_INFINITE);
    nng_ctx_recv(in->ctx, in->aio);
}

static void srv_send(jv_inbound *in, nng_msg *m)
{
    in->state = SRV_SEND;
    nng_aio_set_msg(in->aio, m);
    nng_aio_set_timeout(in->aio, REPLY_TIMEOUT_MS);
    nng_ctx_send(in->ctx, in->aio);
}

static bool is_probe(nng_msg *m)
{
    return nng_msg_len(m) == PROBE_LEN &&
           memcmp(nng_msg_body(m), PROBE_MAGIC, PROBE_MAGIC_LEN) == 0;
}

static void srv_cb(void *arg)
{
    jv_inbound *in = arg;
    post(in->t, &in->ev);
}

static void srv_event(tev *e)
{
    jv_inbound *in = container_of(e, jv_inbound, ev);
    jv_transport *t = in->t;
    int rv = nng_aio_result(in->aio);
    nng_msg *m = nng_aio_get_msg(in->aio);

    nng_aio_set_msg(in->aio, NULL);
    if (in->state == SRV_SEND) {
        if (rv != 0 && m)
            nng_msg_free(m);
        if (rv == NNG_ECLOSED)
            in->state = SRV_IDLE;
        else
            srv_recv(in);
        return;
    }
    if (in->state != SRV_RECV)
        return;
    if (rv != 0) {
        /* Closed: the socket is going away. Anything else is transient
         * (nng's receive on a REP context fails for no other reason). */
        if (rv == NNG_ECLOSED)
            in->state = SRV_IDLE;
        else
            srv_recv(in);
        return;
    }
    if (nng_msg_len(m) > t->o.max_message) {
        /* Within nng's slack but over ours: never shown as a request,
         * only counted. */
        size_t len = nng_msg_len(m);
        nng_msg_free(m);
        srv_recv(in);
        if (t->cbs.on_oversized)
            t->cbs.on_oversized(t->cbs.arg, len);
        return;
    }
    if (is_probe(m)) {
        srv_send(in, m); /* echo: the probe checks its own nonce */
        return;
    }
    if (t->closing) {
        /* Only the last probe is still answered while closing. */
        nng_msg_free(m);
        srv_recv(in);
        return;
    }
    in->req = m;
    in->state = SRV_HELD;
    t->cbs.on_request(t->cbs.arg, in, nng_msg_body(m), nng_msg_len(m));
}

void jv_transport_reply(jv_inbound *in, const uint8_t *msg, size_t len)
{
    nng_msg *m = NULL;
    if (!in || in->state != SRV_HELD || in->t->closing)
        return;
    /* Built before the request is freed: msg may point into it. */
    if (len > in->t->o.max_message || msg_new(msg, len, &m)) {
        /* The requester would refuse it anyway; it times out instead. */
        jv_transport_drop(in);
        return;
    }
    nng_msg_free(in->req);
    in->req = NULL;
    srv_send(in, m);
}

void jv_transport_drop(jv_inbound *in)
{
    if (!in || in->state != SRV_HELD || in->t->closing)
        return;
    nng_msg_free(in->req);
    in->req = NULL;
    /* A new receive on a REP context forgets the unanswered request. */
    srv_recv(in);
}

static void pwatch_release(pwatch *w);

typedef struct {
    nng_socket sock;
    uint64_t linger_ns;
    pwatch *w; /* a peer socket's reference, let go once it is closed */
} closing;

static void *close_main(void *arg)
{
    closing *c = arg;
    if (c->linger_ns) {
        struct timespec ts = {(time_t)(c->linger_ns / 1000000000u),
                              (long)(c->linger_ns % 1000000000u)};
        nanosleep(&ts, NULL);
    }
    nng_close(c->sock); /* returns after the last pipe callback */
    pwatch_release(c->w);
    jv_free(c);
    return NULL;
}

/* nng_close() of a socket on a thread of its own, after linger_ns: the
 * caller is the node's loop, which must never wait for the network, and
 * nng_close() waits for nng's reaper, which nng 1.5.2 wedges when a
 * connection closes just as a message arrives on it (see the top of this
 * file). A peer's request in flight may still be answered until its
 * deadline, so such a socket lingers until then and closes once idle. The
 * caller has stopped every aio on the socket first, so nothing of nng
 * refers to the caller's objects any more; a process that exits before
 * the close ends loses nothing (nng keeps no state on disk). w (or NULL)
 * is released once the socket is closed. Where no thread can be made, it
 * closes here. */
static void close_detached(nng_socket s, uint64_t linger_ns, pwatch *w)
{
    pthread_attr_t attr;
    pthread_t th;
    closing *arg = jv_malloc(sizeof(*arg));
    bool started = false;
    if (arg && pthread_attr_init(&attr) == 0) {
        arg->sock = s;
        arg->linger_ns = linger_ns;
        arg->w = w;
        started =
            pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) == 0 &&
            pthread_create(&th, &attr, close_main, arg) == 0;
        pthread_attr_destroy(&attr);
    }
    if (!started) {
        jv_free(arg);
        nng_close(s);
        pwatch_release(w);
    }
}

/* Stops the listener, the REP socket and its contexts. Held requests are
 * dropped; the contexts themselves stay allocated (the user may still hold
 * them until the transport is freed). Loop thread; the aios are stopped
 * before the socket goes, so the close itself never blocks the loop. */
static void server_stop(jv_transport *t)
{
    t->listener_up = false;
    for (unsigned i = 0; i < t->nsrv; i++) {
        jv_inbound *in = &t->srv[i];
        if (!in->aio)
            continue;
        nng_aio_stop(in->aio);
        unqueue(t, &in->ev);
        if (in->state == SRV_SEND || in->state == SRV_RECV)
            free_aio_msg(in->aio, in->state == SRV_SEND);
        if (in->req)
            nng_msg_free(in->req);
        in->req = NULL;
        nng_aio_free(in->aio);
        in->aio = NULL;
        in->state = SRV_IDLE;
    }
    if (t->rep_open) {
        close_detached(t->rep, 0, NULL); /* its listener and contexts too */
        t->rep_open = false;
    }
}

static jv_err listener_start(jv_transport *t, const char *url)
{
    int rv;
    if ((rv = nng_listener_create(&t->listener, t->rep, url)))
        return from_nng(rv);
    /* Before it starts: a listener takes its limit when created and hands
     * it to each connection it accepts; the default is no limit. */
    if ((rv = nng_listener_set_size(t->listener, NNG_OPT_RECVMAXSZ,
                                    t->o.max_message + SP_HEADER_SLACK)) ||
        (rv = nng_listener_start(t->listener, 0))) {
        nng_listener_close(t->listener);
        return from_nng(rv);
    }
    t->listener_up = true;
    return JV_OK;
}

/* ---- outbound ---------------------------------------------------------- */

static void peer_cb(void *arg)
{
    jv_tpeer *p = arg;
    post(p->t, &p->ev);
}

static void peer_event(tev *e)
{
    jv_tpeer *p = container_of(e, jv_tpeer, ev);
    jv_transport *t = p->t;
    int rv = nng_aio_result(p->aio);
    nng_msg *m = nng_aio_get_msg(p->aio);

    nng_aio_set_msg(p->aio, NULL);
    if (p->state == REQ_SEND && rv == 0) {
        /* Handed to a pipe; the rest of the same deadline is for the
         * reply. */
        p->state = REQ_RECV;
        nng_aio_set_timeout(p->aio, left_ms(p->deadline));
        nng_ctx_recv(p->ctx, p->aio);
        return;
    }
    if (p->state == REQ_IDLE)
        return;
    p->state = REQ_IDLE;
    if (rv != 0) {
        if (m)
            nng_msg_free(m); /* a failed send leaves the request with us */
        t->cbs.on_reply(t->cbs.arg, p, reply_err(rv), NULL, 0);
        return;
    }
    if (nng_msg_len(m) > t->o.max_message) {
        /* Within nng's slack but over ours: refused like a larger one. */
        nng_msg_free(m);
        t->cbs.on_reply(t->cbs.arg, p, JV_ENET, NULL, 0);
        return;
    }
    /* p may be freed by the callback; m is ours either way. */
    t->cbs.on_reply(t->cbs.arg, p, JV_OK, nng_msg_body(m), nng_msg_len(m));
    nng_msg_free(m);
}

/* A REQ socket with one context: never resends by itself (a request is
 * resent only by the caller, who knows whether it is still wanted), and
 * refuses replies over the limit. */
static jv_err req_open(jv_transport *t, nng_socket *s, nng_ctx *ctx,
                       size_t recvmax)
{
    int rv;
    if ((rv = nng_req0_open(s)))
        return from_nng(rv);
    if ((rv = nng_socket_set_size(*s, NNG_OPT_RECVMAXSZ, recvmax)) ||
        (rv = nng_socket_set_ms(*s, NNG_OPT_REQ_RESENDTIME,
                                NNG_DURATION_INFINITE)) ||
        (rv = nng_socket_set_ms(*s, NNG_OPT_RECONNMINT,
                                dur(t->o.reconnect_min_ms))) ||
        (rv = nng_socket_set_ms(*s, NNG_OPT_RECONNMAXT,
                                dur(t->o.reconnect_max_ms))) ||
        (rv = nng_ctx_open(ctx, *s)) ||
        /* A context copies the socket's resend time when opened; set on
         * the context too so that nothing depends on that order. */
        (rv = nng_ctx_set_ms(*ctx, NNG_OPT_REQ_RESENDTIME,
                             NNG_DURATION_INFINITE))) {
        nng_close(*s);
        return from_nng(rv);
    }
    return JV_OK;
}

/* Dials url in the background; nng redials after a lost connection with
 * a backoff from min_ms doubling up to max_ms. The dialer lives as long as
 * the socket (closing dialers one by one is a path of nng 1.5.2 we keep
 * away from: nng_close() was seen to hang after it). */
static jv_err dial(nng_socket s, const char *url, size_t recvmax,
                   uint64_t min_ms, uint64_t max_ms)
{
    nng_dialer d;
    int rv;
    if ((rv = nng_dialer_create(&d, s, url)))
        return from_nng(rv);
    if ((rv = nng_dialer_set_size(d, NNG_OPT_RECVMAXSZ, recvmax)) ||
        (rv = nng_dialer_set_ms(d, NNG_OPT_RECONNMINT, dur(min_ms))) ||
        (rv = nng_dialer_set_ms(d, NNG_OPT_RECONNMAXT, dur(max_ms))) ||
        (rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK))) {
        nng_dialer_close(d);
        return from_nng(rv);
    }
    return JV_OK;
}

/* ---- connection state -------------------------------------------------- */

/* A peer's first check waits this long for nng's own dial, so that a peer
 * that is up is not connected to a second time at start. */
#define CHECK_FIRST_MS 250
/* A check that has not connected by then reports a timeout. */
#define CHECK_TIMEOUT_MS 3000
/* A check that connected to a peer closing down looks again this late. */
#define CHECK_AGAIN_MS 200
/* Checks started by a send while there is no connection back off from
 * the first gap to the last: a dead peer costs a connect() now and then. */
#define CHECK_GAP_MIN_MS 1000
#define CHECK_GAP_MAX_MS 30000
/* What nng's TCP and IPC transports send first on a new connection. */
#define SP_HEADER_LEN 8

/* A connection check: libuv connects to the peer's address (resolving a
 * name first) and closes again, to learn at once why nng cannot connect
 * (refused, unreachable...), which nng does not say. nng itself is never
 * touched. When the connection succeeds, the check reads the SP header
 * that nng's listener sends before it closes (with a reset, over TCP):
 * the listener then sees an ordinary failed handshake. Closing before
 * that header is written is what can make nng 1.5.2's listener stop
 * accepting for good (see the top of this file). */
enum check_state {
    CK_WAIT,
    CK_RESOLVE,
    CK_CONNECT,
    CK_READ,
    CK_DONE
};

/* A name lookup, on a detached thread of its own rather than libuv's
 * pool: getaddrinfo() cannot be interrupted, and with a resolver that
 * does not answer it takes seconds; in the pool it would hold the threads
 * the node's own jobs (checkpoints, backups) run on, and keep the loop,
 * and so the node's stop, waiting for it. Shared by the thread and the
 * check until both let go; the outcome is posted only while the check
 * still wants it (ck, under mtx). */
typedef struct {
    uv_mutex_t mtx;
    unsigned refs;
    check *ck; /* NULL once the check is over */
    jv_transport *t;
    char host[ADDR_MAX + 1], port[8];
    int status; /* 0, or a UV_EAI_* code */
    struct sockaddr_storage sa;
} resolving;

struct check {
    jv_tpeer *p; /* NULL once done or abandoned */
    uv_loop_t *loop;
    enum check_state state;
    bool lost;     /* a connection was lost: the outcome is reported */
    bool tcp;      /* which member of s is in use, if any */
    bool stream;   /* s is initialised */
    unsigned open; /* handles and requests whose callback is still due */
    uv_timer_t timer;
    resolving *res; /* the name lookup under way, if any */
    tev rev;        /* its outcome, posted by its thread */
    union {
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } s;
    uv_connect_t conn;
    char buf[SP_HEADER_LEN];
    size_t got;
};

static void pwatch_release(pwatch *w)
{
    bool last;
    if (!w)
        return;
    uv_mutex_lock(&w->mtx);
    last = --w->refs == 0;
    uv_mutex_unlock(&w->mtx);
    if (last) {
        uv_mutex_destroy(&w->mtx);
        jv_free(w);
    }
}

/* nng's thread (a dialer's for ADD_POST, the reaper's for REM_POST):
 * records the change and posts the peer's link event, nothing more. */
static void pipe_cb(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
    pwatch *w = arg;
    uv_mutex_lock(&w->mtx);
    if (ev == NNG_PIPE_EV_ADD_POST) {
        w->pipe = pipe.id;
        w->adds++;
    } else if (w->pipe == pipe.id) {
        w->pipe = 0;
    }
    if (w->p)
        post(w->p->t, &w->p->lev);
    uv_mutex_unlock(&w->mtx);
}

static bool has_pipe(jv_tpeer *p, uint32_t *adds)
{
    bool up;
    uv_mutex_lock(&p->w->mtx);
    up = p->w->pipe != 0;
    if (adds)
        *adds = p->w->adds;
    uv_mutex_unlock(&p->w->mtx);
    return up;
}

/* Tells the user when the state changes, never twice the same. */
static void link_report(jv_tpeer *p, const char *why)
{
    if (p->reported &&
        (p->why == why || (p->why && why && strcmp(p->why, why) == 0)))
        return;
    p->reported = true;
    p->why = why;
    if (p->t->cbs.on_link && !p->t->closing)
        p->t->cbs.on_link(p->t->cbs.arg, p, why);
}

static const char *why_of(int status)
{
    switch (status) {
    case UV_ECONNREFUSED:
        return "connection refused";
    case UV_ENOENT:
        return "connection refused: no socket at that path";
    case UV_ETIMEDOUT:
        return "connection timed out";
    case UV_EHOSTUNREACH:
        return "host unreachable";
    case UV_ENETUNREACH:
        return "network unreachable";
    case UV_ECONNRESET:
        return "connection reset";
    case UV_EAI_NONAME:
    case UV_EAI_AGAIN:
    case UV_EAI_FAIL:
    case UV_EAI_NODATA:
        return "host name not resolved";
    default:
        return "cannot connect";
    }
}

static void ck_unref(check *ck)
{
    if (--ck->open == 0)
        jv_free(ck);
}

static void on_ck_closed(uv_handle_t *h)
{
    ck_unref(h->data);
}

static void res_release(resolving *r)
{
    bool last;
    uv_mutex_lock(&r->mtx);
    last = --r->refs == 0;
    uv_mutex_unlock(&r->mtx);
    if (last) {
        uv_mutex_destroy(&r->mtx);
        jv_free(r);
    }
}

/* The check no longer wants the lookup's outcome: its thread finishes
 * on its own and posts nothing. */
static void res_abandon(check *ck)
{
    resolving *r = ck->res;
    if (!r)
        return;
    uv_mutex_lock(&r->mtx);
    r->ck = NULL;
    uv_mutex_unlock(&r->mtx);
    unqueue(r->t, &ck->rev);
    ck->res = NULL;
    res_release(r);
}

/* Ends the check: its handles close (the last callback frees it). */
static void ck_end(check *ck)
{
    bool reset = ck->state == CK_READ && ck->tcp;
    res_abandon(ck);
    ck->state = CK_DONE;
    if (ck->p)
        ck->p->ck = NULL;
    ck->p = NULL;
    uv_close((uv_handle_t *)&ck->timer, on_ck_closed);
    if (!ck->stream)
        return;
    /* A reset, not a FIN: nng's listener takes it as a failed handshake
     * and goes on accepting without the pause it makes after an EOF. */
    if (!reset || uv_tcp_close_reset(&ck->s.tcp, on_ck_closed) != 0)
        uv_close((uv_handle_t *)&ck->s, on_ck_closed);
}

static void check_start(jv_tpeer *p, bool lost, uint64_t delay_ms);

/* The outcome: connected (ok), or why not. */
static void ck_finish(check *ck, bool ok, const char *why)
{
    jv_tpeer *p = ck->p;
    bool lost = ck->lost, half = ok && ck->got < sizeof(ck->buf);
    ck_end(ck);
    if (!p || has_pipe(p, NULL))
        return; /* nng connected meanwhile: its link event says so */
    /* Connected, but closed before nng's header came: a process that is
     * exiting (its listening socket goes last). Once more, a moment
     * later, to say "refused" rather than "closed" if it is gone. */
    if (half && lost && !p->rechecked) {
        p->rechecked = true;
        check_start(p, true, CHECK_AGAIN_MS);
        return;
    }
    p->rechecked = false;
    if (!ok)
        link_report(p, why);
    else if (lost)
        link_report(p, "connection closed");
    /* Else the address accepts connections: nng's dialer gets one. */
}

static void ck_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    check *ck = h->data;
    (void)hint;
    buf->base = ck->buf + ck->got;
    buf->len = sizeof(ck->buf) - ck->got;
}

static void on_ck_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    check *ck = s->data;
    (void)buf;
    if (ck->state != CK_READ || n == 0)
        return;
    if (n > 0 && (ck->got += (size_t)n) < sizeof(ck->buf))
        return;
    ck_finish(ck, true, NULL); /* the header, or the peer closed: it is up */
}

static void on_ck_connect(uv_connect_t *req, int status)
{
    check *ck = req->data;
    if (ck->state == CK_CONNECT) {
        if (status < 0) {
            ck_finish(ck, false, why_of(status));
        } else {
            ck->state = CK_READ;
            if (uv_read_start((uv_stream_t *)&ck->s, ck_alloc, on_ck_read))
                ck_finish(ck, true, NULL);
        }
    }
    ck_unref(ck);
}

static void ck_connect_tcp(check *ck, const struct sockaddr *sa)
{
    int rv;
    uv_tcp_init(ck->loop, &ck->s.tcp); /* cannot fail without flags */
    ck->s.tcp.data = ck;
    ck->tcp = ck->stream = true;
    ck->open++;
    ck->conn.data = ck;
    if ((rv = uv_tcp_connect(&ck->conn, &ck->s.tcp, sa, on_ck_connect))) {
        ck_finish(ck, false, why_of(rv));
        return;
    }
    ck->open++;
    ck->state = CK_CONNECT;
}

/* Loop thread: the lookup's outcome, posted while the check wanted it. */
static void on_ck_resolved(tev *e)
{
    check *ck = container_of(e, check, rev);
    resolving *r = ck->res;
    struct sockaddr_storage sa;
    int status;
    if (ck->state != CK_RESOLVE || !r)
        return;
    uv_mutex_lock(&r->mtx);
    status = r->status;
    sa = r->sa;
    uv_mutex_unlock(&r->mtx);
    res_abandon(ck);
    if (status)
        ck_finish(ck, false, why_of(status));
    else
        ck_connect_tcp(ck, (struct sockaddr *)&sa);
}

/* The lookup's own thread: blocks in getaddrinfo() as long as it takes. */
static void *resolve_main(void *arg)
{
    resolving *r = arg;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    struct sockaddr_storage sa;
    int rv = getaddrinfo(r->host, r->port, &hints, &ai);
    /* As why_of() tells them: not resolved, or failed for another reason
     * (no memory, a system error). */
    int status = rv == EAI_SYSTEM || rv == EAI_MEMORY ? UV_ENOMEM
                 : rv                                 ? UV_EAI_NONAME
                                                      : 0;
    memset(&sa, 0, sizeof(sa));
    if (!status && (!ai || ai->ai_addrlen > sizeof(sa)))
        status = UV_EAI_NONAME;
    else if (!status)
        memcpy(&sa, ai->ai_addr, ai->ai_addrlen);
    if (ai)
        freeaddrinfo(ai);
    uv_mutex_lock(&r->mtx);
    r->status = status;
    r->sa = sa;
    if (r->ck)
        post(r->t, &r->ck->rev);
    uv_mutex_unlock(&r->mtx);
    res_release(r);
    return NULL;
}

/* Starts the lookup of host:port for ck on a detached thread. */
static int res_start(check *ck, const char *host, const char *port)
{
    pthread_attr_t attr;
    pthread_t th;
    resolving *r = jv_calloc(1, sizeof(*r));
    int rv = UV_ENOMEM;
    if (!r || uv_mutex_init(&r->mtx) != 0) {
        jv_free(r);
        return UV_ENOMEM;
    }
    r->refs = 2; /* the check's and the thread's */
    r->ck = ck;
    r->t = ck->p->t;
    snprintf(r->host, sizeof(r->host), "%s", host);
    snprintf(r->port, sizeof(r->port), "%s", port);
    ck->res = r;
    ck->rev.fn = on_ck_resolved;
    if (pthread_attr_init(&attr) == 0) {
        if (pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) == 0 &&
            pthread_create(&th, &attr, resolve_main, r) == 0)
            rv = 0;
        pthread_attr_destroy(&attr);
    }
    if (rv) {
        r->refs = 1; /* no thread: only the check's */
        res_abandon(ck);
    }
    return rv;
}

static void on_ck_timer(uv_timer_t *h);

static void ck_begin(check *ck)
{
    const char *addr = ck->p->addr;
    struct sockaddr_storage sa;
    char host[ADDR_MAX + 1], port[8];
    addr_parts a;
    int rv;

    uv_timer_start(&ck->timer, on_ck_timer, CHECK_TIMEOUT_MS, 0);
    if (addr_parse(addr, &a)) {
        ck_finish(ck, false, "cannot connect");
        return;
    }
    if (!a.tcp) {
        uv_pipe_init(ck->loop, &ck->s.pipe, 0);
        ck->s.pipe.data = ck;
        ck->stream = true;
        ck->open++;
        ck->conn.data = ck;
        uv_pipe_connect(&ck->conn, &ck->s.pipe, addr + 6, on_ck_connect);
        ck->open++;
        ck->state = CK_CONNECT;
        return;
    }
    bool v6 = a.host[0] == '[';
    memcpy(host, a.host + v6, a.hostlen - 2 * v6);
    host[a.hostlen - 2 * v6] = '\0';
    snprintf(port, sizeof(port), "%u", a.port);
    if (uv_ip4_addr(host, (int)a.port, (struct sockaddr_in *)&sa) == 0 ||
        uv_ip6_addr(host, (int)a.port, (struct sockaddr_in6 *)&sa) == 0) {
        ck_connect_tcp(ck, (struct sockaddr *)&sa);
        return;
    }
    if ((rv = res_start(ck, host, port))) {
        ck_finish(ck, false, why_of(rv));
        return;
    }
    ck->state = CK_RESOLVE;
}

static void on_ck_timer(uv_timer_t *h)
{
    check *ck = h->data;
    switch (ck->state) {
    case CK_WAIT:
        if (has_pipe(ck->p, NULL))
            ck_end(ck); /* nng is connected: nothing to find out */
        else
            ck_begin(ck);
        break;
    case CK_RESOLVE:
        ck_finish(ck, false, "host name not resolved: the lookup timed out");
        break;
    case CK_CONNECT:
        ck_finish(ck, false, "connection timed out");
        break;
    case CK_READ:
        ck_finish(ck, true, NULL); /* connected, the header is late */
        break;
    case CK_DONE:
        break;
    }
}

/* Starts a check of p's address after delay_ms, unless one is under way
 * (lost then joins it). Always through the timer, so that the outcome
 * is never reported from inside the caller. */
static void check_start(jv_tpeer *p, bool lost, uint64_t delay_ms)
{
    check *ck;
    if (p->ck) {
        p->ck->lost |= lost;
        if (p->ck->state == CK_WAIT && delay_ms < CHECK_FIRST_MS)
            uv_timer_start(&p->ck->timer, on_ck_timer, delay_ms, 0);
        return;
    }
    if (p->t->closing || !(ck = jv_calloc(1, sizeof(*ck))))
        return;
    ck->p = p;
    ck->loop = p->t->loop;
    ck->lost = lost;
    ck->state = CK_WAIT;
    uv_timer_init(ck->loop, &ck->timer);
    ck->timer.data = ck;
    ck->open = 1;
    p->ck = ck;
    uv_timer_start(&ck->timer, on_ck_timer, delay_ms, 0);
}

/* Loop thread: a connection of p's came or went. */
static void link_event(tev *e)
{
    jv_tpeer *p = container_of(e, jv_tpeer, lev);
    uint32_t adds;
    bool up = has_pipe(p, &adds), cycled = adds != p->adds_seen;
    p->adds_seen = adds;
    if (up) {
        p->check_gap_ms = 0;
        p->next_check = 0;
        link_report(p, NULL);
        return;
    }
    /* Lost (perhaps one made and lost before this event ran): why? */
    if (cycled || (p->reported && !p->why))
        check_start(p, true, 0);
}

jv_err jv_transport_peer_new(jv_transport *t, const char *addr, void *user,
                             jv_tpeer **out)
{
    jv_tpeer *p = NULL;
    jv_err err;
    int rv;

    if (t->closing)
        return JV_ECLOSED;
    if ((err = jv_transport_addr_check(addr)))
        return err;
    if (!(p = jv_calloc(1, sizeof(*p))) ||
        !(p->addr = jv_strndup(addr, strlen(addr)))) {
        err = JV_ENOMEM;
        goto fail;
    }
    p->t = t;
    p->user = user;
    p->ev.fn = peer_event;
    p->lev.fn = link_event;
    if (!(p->w = jv_calloc(1, sizeof(*p->w))) || uv_mutex_init(&p->w->mtx)) {
        jv_free(p->w);
        p->w = NULL;
        err = JV_ENOMEM;
        goto fail;
    }
    p->w->p = p;
    p->w->refs = 2; /* the peer's and the socket's */
    if ((rv = nng_aio_alloc(&p->aio, peer_cb, p))) {
        err = from_nng(rv);
        goto fail;
    }
    if ((err = req_open(t, &p->sock, &p->ctx,
                        t->o.max_message + SP_HEADER_SLACK)))
        goto fail;
    p->sock_open = true;
    /* Before the dial, so that no connection goes unseen. */
    if ((rv = nng_pipe_notify(p->sock, NNG_PIPE_EV_ADD_POST, pipe_cb, p->w)) ||
        (rv = nng_pipe_notify(p->sock, NNG_PIPE_EV_REM_POST, pipe_cb, p->w))) {
        err = from_nng(rv);
        goto fail;
    }
    if ((err = dial(p->sock, addr, t->o.max_message + SP_HEADER_SLACK,
                    t->o.reconnect_min_ms, t->o.reconnect_max_ms)))
        goto fail;
    p->next = t->peers;
    if (t->peers)
        t->peers->prev = p;
    t->peers = p;
    /* If nng has not connected by then, a check says why. */
    check_start(p, false, CHECK_FIRST_MS);
    *out = p;
    return JV_OK;
fail:
    if (p) {
        if (p->sock_open)
            nng_close(p->sock); /* no pipe callback comes after this */
        if (p->w) {
            unqueue(t, &p->lev);
            uv_mutex_destroy(&p->w->mtx);
            jv_free(p->w);
        }
        if (p->aio)
            nng_aio_free(p->aio);
        jv_free(p->addr);
        jv_free(p);
    }
    return err;
}

void *jv_tpeer_user(const jv_tpeer *p)
{
    return p->user;
}

const char *jv_tpeer_addr(const jv_tpeer *p)
{
    return p->addr;
}

bool jv_tpeer_busy(const jv_tpeer *p)
{
    return p->state != REQ_IDLE;
}

bool jv_transport_recall(jv_tpeer *p)
{
    if (p->state != REQ_SEND)
        return false;
    /* Asynchronous: peer_event() sees either NNG_ECANCELED (taken back)
     * or success (a pipe took it first). */
    nng_aio_cancel(p->aio);
    return true;
}

void jv_transport_peer_free(jv_tpeer *p)
{
    jv_transport *t;
    uint64_t now = uv_hrtime(), linger = 0;
    if (!p)
        return;
    t = p->t;
    if (p->state != REQ_IDLE && p->deadline > now)
        linger = p->deadline - now + 1000000000u;
    /* Cancels the request and waits out a callback in flight: after this
     * line no nng thread refers to p. */
    nng_aio_stop(p->aio);
    unqueue(t, &p->ev);
    if (p->state != REQ_IDLE)
        free_aio_msg(p->aio, p->state == REQ_SEND);
    /* The aio is stopped: nothing of nng refers to it any more. */
    nng_aio_free(p->aio);
    if (p->ck)
        ck_end(p->ck); /* abandoned: reports nothing */
    /* A pipe callback running now finishes before this lock is ours;
     * later ones post nothing. */
    uv_mutex_lock(&p->w->mtx);
    p->w->p = NULL;
    uv_mutex_unlock(&p->w->mtx);
    unqueue(t, &p->lev);
    close_detached(p->sock, linger, p->w); /* its context and dialer too */
    pwatch_release(p->w);
    if (p->prev)
        p->prev->next = p->next;
    else
        t->peers = p->next;
    if (p->next)
        p->next->prev = p->prev;
    jv_free(p->addr);
    jv_free(p);
}

jv_err jv_transport_send(jv_tpeer *p, const uint8_t *msg, size_t len,
                         uint64_t timeout_ms)
{
    nng_msg *m;
    jv_err err;
    if (p->t->closing)
        return JV_ECLOSED;
    if (p->state != REQ_IDLE)
        return JV_EBUSY;
    if (len > p->t->o.max_message)
        return JV_ETOOBIG;
    if ((err = msg_new(msg, len, &m)))
        return err;
    /* One deadline for both halves: waiting for a connection counts. */
    p->deadline = uv_hrtime() + (timeout_ms > UINT64_MAX / 1000000
                                     ? UINT64_MAX / 2
                                     : timeout_ms * 1000000);
    p->state = REQ_SEND;
    nng_aio_set_msg(p->aio, m);
    nng_aio_set_timeout(p->aio, dur(timeout_ms));
    nng_ctx_send(p->ctx, p->aio);
    /* Not connected: a check (backing off) keeps the reason current. */
    if (!p->ck && p->reported && p->why && uv_hrtime() >= p->next_check) {
        p->check_gap_ms = !p->check_gap_ms ? CHECK_GAP_MIN_MS
                          : p->check_gap_ms * 2 > CHECK_GAP_MAX_MS
                              ? CHECK_GAP_MAX_MS
                              : p->check_gap_ms * 2;
        p->next_check = uv_hrtime() + p->check_gap_ms * 1000000;
        check_start(p, false, 0);
    }
    return JV_OK;
}

/* ---- the listener probe ------------------------------------------------ */

static void probe_cb(void *arg)
{
    jv_transport *t = arg;
    post(t, &t->pev);
}

static void listener_restart(jv_transport *t)
{
    jv_err err;
    if (t->listener_up)
        nng_listener_close(t->listener); /* also fine if already closed */
    t->listener_up = false;
    if ((err = listener_start(t, t->url)) == JV_OK)
        t->restarts++;
    if (t->cbs.on_listener)
        t->cbs.on_listener(t->cbs.arg, err);
}

static void probe_done(jv_transport *t, bool ok)
{
    t->pstate = REQ_IDLE;
    if (t->closing)
        return;
    if (t->kill_pending && t->listener_up) {
        t->kill_pending = false;
        nng_listener_close(t->listener);
    }
    if (ok) {
        t->pfail = 0;
        return;
    }
    if (++t->pfail < t->o.probe_failures)
        return;
    t->pfail = 0;
    listener_restart(t);
}

static void finish_close(jv_transport *t);

static void probe_event(tev *e)
{
    jv_transport *t = container_of(e, jv_transport, pev);
    int rv = nng_aio_result(t->paio);
    nng_msg *m = nng_aio_get_msg(t->paio);
    bool ok;

    nng_aio_set_msg(t->paio, NULL);
    if (t->pstate == REQ_SEND && rv == 0) {
        t->pstate = REQ_RECV;
        nng_aio_set_timeout(t->paio, left_ms(t->pdeadline));
        nng_ctx_recv(t->pctx, t->paio);
        return;
    }
    if (t->pstate == REQ_IDLE)
        return;
    ok = rv == 0 && nng_msg_len(m) == PROBE_LEN &&
         memcmp(nng_msg_body(m), t->pmsg, PROBE_LEN) == 0;
    if (ok)
        t->ppipe = nng_msg_get_pipe(m);
    if (m)
        nng_msg_free(m);
    probe_done(t, ok);
    if (t->closing)
        finish_close(t);
}

static void probe_tick(uv_timer_t *h)
{
    jv_transport *t = h->data;
    nng_msg *m;

    if (t->closing || t->pstate != REQ_IDLE)
        return;
    if (!t->listener_up) {
        /* A re-creation failed earlier: try again. */
        listener_restart(t);
        return;
    }
    /* Dialled at the first probe, not before: a transport closed sooner
     * never connects to itself. Redials to our own address are cheap and
     * must be quick, or a probe would time out waiting for the backoff
     * rather than for the listener. */
    if (!t->pdialed) {
        uint64_t max = t->o.probe_timeout_ms / 4;
        if (dial(t->psock, t->purl, PROBE_LEN + SP_HEADER_SLACK,
                 PROBE_REDIAL_MIN_MS,
                 max > PROBE_REDIAL_MIN_MS ? max : PROBE_REDIAL_MIN_MS)) {
            probe_done(t, false);
            return;
        }
        t->pdialed = true;
    }
    /* Each probe must travel on a new connection: a dead listener goes on
     * serving the ones it accepted before. Closing the last one makes the
     * dialer connect again, and the request waits for that. */
    if (nng_pipe_id(t->ppipe) > 0)
        nng_pipe_close(t->ppipe);
    t->ppipe = (nng_pipe)NNG_PIPE_INITIALIZER;
    memcpy(t->pmsg, PROBE_MAGIC, PROBE_MAGIC_LEN);
    randombytes_buf(t->pmsg + PROBE_MAGIC_LEN, PROBE_NONCE_LEN);
    if (msg_new(t->pmsg, PROBE_LEN, &m)) {
        probe_done(t, false);
        return;
    }
    t->pdeadline = uv_hrtime() + t->o.probe_timeout_ms * 1000000;
    t->pstate = REQ_SEND;
    nng_aio_set_msg(t->paio, m);
    nng_aio_set_timeout(t->paio, dur(t->o.probe_timeout_ms));
    nng_ctx_send(t->pctx, t->paio);
}

/* On failure, the caller's probe_stop() releases what was set up. */
static jv_err probe_start(jv_transport *t)
{
    jv_err err;
    int rv;
    if (!(t->purl = probe_url(t->url)))
        return JV_ENOMEM;
    t->pev.fn = probe_event;
    if ((rv = nng_aio_alloc(&t->paio, probe_cb, t)))
        return from_nng(rv);
    if ((err = req_open(t, &t->psock, &t->pctx, PROBE_LEN + SP_HEADER_SLACK)))
        return err;
    t->psock_open = true;
    if (uv_timer_start(&t->timer, probe_tick, t->o.probe_interval_ms,
                       t->o.probe_interval_ms))
        return JV_ESTATE;
    return JV_OK;
}

static void probe_stop(jv_transport *t)
{
    uv_timer_stop(&t->timer);
    if (t->paio) {
        nng_aio_stop(t->paio);
        unqueue(t, &t->pev);
        if (t->pstate != REQ_IDLE)
            free_aio_msg(t->paio, t->pstate == REQ_SEND);
        t->pstate = REQ_IDLE;
    }
    if (t->paio)
        nng_aio_free(t->paio);
    t->paio = NULL;
    if (t->psock_open)
        close_detached(t->psock, 0, NULL); /* its dialer and connection too */
    t->psock_open = false;
    t->pdialed = false;
    t->ppipe = (nng_pipe)NNG_PIPE_INITIALIZER;
    jv_free(t->purl);
    t->purl = NULL;
}

/* ---- the transport ----------------------------------------------------- */

const char *jv_transport_nng_version(void)
{
    return nng_version();
}

void jv_transport_opts_default(jv_transport_opts *o)
{
    o->max_message = 8u << 20;
    o->server_contexts = 8;
    o->probe_interval_ms = 5000;
    o->probe_timeout_ms = 2000;
    o->probe_failures = 2;
    o->reconnect_min_ms = 100;
    o->reconnect_max_ms = 5000;
}

jv_err jv_transport_new(uv_loop_t *loop, const jv_transport_opts *o,
                        const jv_transport_cbs *cbs, jv_transport **out)
{
    jv_transport *t = NULL;
    bool mtx = false;
    jv_err err = JV_EINVAL;

    if (!loop || !cbs || !cbs->on_request || !cbs->on_reply)
        return JV_EINVAL;
    if (!(t = jv_calloc(1, sizeof(*t))))
        return JV_ENOMEM;
    if (o)
        t->o = *o;
    else
        jv_transport_opts_default(&t->o);
    if (t->o.max_message == 0 ||
        t->o.max_message > (size_t)INT32_MAX - SP_HEADER_SLACK ||
        t->o.server_contexts == 0 || t->o.server_contexts > 4096 ||
        t->o.probe_failures == 0 || t->o.probe_timeout_ms == 0 ||
        t->o.probe_timeout_ms > INT32_MAX ||
        t->o.reconnect_min_ms > t->o.reconnect_max_ms)
        goto fail;
    t->loop = loop;
    t->cbs = *cbs;
    err = JV_ENOMEM;
    if (uv_mutex_init(&t->mtx))
        goto fail;
    mtx = true;
    /* The async first, since it is the one that can fail: a handle that
     * is initialised can only be let go of through uv_close(). A timer
     * cannot fail. */
    if (uv_async_init(loop, &t->async, on_async))
        goto fail;
    uv_timer_init(loop, &t->timer);
    t->async.data = t;
    t->timer.data = t;
    t->handles = 2;
    *out = t;
    return JV_OK;
fail:
    if (mtx)
        uv_mutex_destroy(&t->mtx);
    jv_free(t);
    return err;
}

jv_err jv_transport_listen(jv_transport *t, const char *addr, char *bound,
                           size_t boundlen)
{
    addr_parts a;
    jv_err err;
    int rv;

    if (t->closing)
        return JV_ECLOSED;
    if (t->url || t->rep_open)
        return JV_ESTATE;
    if ((err = addr_parse(addr, &a)))
        return err;
    if ((rv = nng_rep0_open(&t->rep)))
        return from_nng(rv);
    t->rep_open = true;
    if ((rv = nng_socket_set_size(t->rep, NNG_OPT_RECVMAXSZ,
                                  t->o.max_message + SP_HEADER_SLACK))) {
        err = from_nng(rv);
        goto fail;
    }
    if (!(t->srv = jv_calloc(t->o.server_contexts, sizeof(*t->srv)))) {
        err = JV_ENOMEM;
        goto fail;
    }
    for (; t->nsrv < t->o.server_contexts; t->nsrv++) {
        jv_inbound *in = &t->srv[t->nsrv];
        in->t = t;
        in->ev.fn = srv_event;
        if ((rv = nng_ctx_open(&in->ctx, t->rep)) ||
            (rv = nng_aio_alloc(&in->aio, srv_cb, in))) {
            err = from_nng(rv);
            goto fail;
        }
    }
    if ((err = listener_start(t, addr)))
        goto fail;
    if (a.tcp && a.port == 0) {
        int port = 0;
        if ((rv = nng_listener_get_int(t->listener, NNG_OPT_TCP_BOUND_PORT,
                                       &port))) {
            err = from_nng(rv);
            goto fail;
        }
        /* Re-creating the listener must take the same port again. */
        t->url = tcp_url(a.host, a.hostlen, (unsigned)port);
    } else {
        t->url = jv_strndup(addr, strlen(addr));
    }
    if (!t->url) {
        err = JV_ENOMEM;
        goto fail;
    }
    if (bound) {
        if (strlen(t->url) >= boundlen) {
            err = JV_EINVAL;
            goto fail;
        }
        memcpy(bound, t->url, strlen(t->url) + 1);
    }
    if (t->o.probe_interval_ms && (err = probe_start(t)))
        goto fail;
    for (unsigned i = 0; i < t->nsrv; i++)
        srv_recv(&t->srv[i]);
    return JV_OK;
fail:
    probe_stop(t);
    server_stop(t);
    jv_free(t->srv);
    t->srv = NULL;
    t->nsrv = 0;
    jv_free(t->url);
    t->url = NULL;
    return err;
}

uint64_t jv_transport_listener_restarts(const jv_transport *t)
{
    return t->restarts;
}

void jv_transport_fault_kill_listener(jv_transport *t)
{
    /* listener_up stays true: only the probe may find out. While a probe
     * is in flight the kill waits for it to end (see finish_close()). */
    if (!t->listener_up)
        return;
    if (t->pstate != REQ_IDLE)
        t->kill_pending = true;
    else
        nng_listener_close(t->listener);
}

static void on_handle_closed(uv_handle_t *h)
{
    jv_transport *t = h->data;
    void (*done)(void *) = t->done;
    void *arg = t->done_arg;
    if (--t->handles > 0)
        return;
    uv_mutex_destroy(&t->mtx);
    jv_free(t->srv);
    jv_free(t->url);
    jv_free(t);
    if (done)
        done(arg);
}

/* Tears the nng side down and closes the uv handles; done() follows from
 * their close callbacks. */
static void finish_close(jv_transport *t)
{
    if (t->finishing)
        return; /* e.g. closed from on_listener inside probe_event() */
    t->finishing = true;
    probe_stop(t);
    server_stop(t);
    /* Every aio is stopped: no nng thread can touch the async any more. */
    uv_close((uv_handle_t *)&t->async, on_handle_closed);
    uv_close((uv_handle_t *)&t->timer, on_handle_closed);
}

void jv_transport_close(jv_transport *t, void (*done)(void *), void *arg)
{
    if (!t || t->closing)
        return;
    t->closing = true;
    t->done = done;
    t->done_arg = arg;
    /* The contract says peers go first; one left over would otherwise be
     * a handle into freed memory, so it is freed here, silently. */
    while (t->peers)
        jv_transport_peer_free(t->peers);
    uv_timer_stop(&t->timer);
    /* A probe in flight is let finish (within probe_timeout_ms; the REP
     * side still echoes it) before its socket is closed: in nng 1.5.2,
     * closing a connection at the instant a message arrives on it can
     * lose the receive and wedge nng's reaper thread, and every later
     * nng_close() with it. probe_event() then calls finish_close(). */
    if (t->pstate != REQ_IDLE)
        return;
    finish_close(t);
}
