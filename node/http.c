/*
 * http.c - the session API's HTTP/1.1 server (contract in http.h).
 *
 * Lifetimes. Three objects outlive each other in ways that are not obvious:
 *
 *   server ──< listener            (freed in its close callback)
 *          ──< connection ── request (embedded) ── write requests (embedded)
 *
 * - A connection (http_conn) owns two libuv handles, the stream and a timer,
 *   and embeds everything else it needs: the request being read or handled,
 *   the response write request, the "100 Continue" write request and the
 *   shutdown request. It is reference-counted: one reference while either
 *   handle is open (dropped by the last close callback), one while the
 *   handler holds its request (dropped by jv_http_respond()), and a short
 *   one around every place that calls out (the handler may answer, close
 *   the server or both before it returns). It is freed when the count
 *   reaches zero, never earlier, so a handler that answers a request whose
 *   client is gone only finds a closed connection and drops the response.
 *
 * - A request (jv_http_req) is embedded in its connection, and its bytes live
 *   in the connection's buffers, which are reused by the next request: no
 *   allocation per request once the buffers have grown. One connection holds
 *   at most one request at a time, because nothing more is parsed until its
 *   response has been written, which also keeps pipelined answers in order.
 *
 * - A write request is embedded in its connection and writes from the
 *   connection's output buffer, which holds a copy of the body. libuv calls
 *   every write callback (with UV_ECANCELED if the handle is being closed)
 *   before the handle's close callback, so the connection, and the buffer,
 *   outlive every write.
 *
 * - The server counts its open libuv handles (listeners, connections' handles
 *   and its own retry timer) and its allocated connections. When it is
 *   closed, done() runs from the close callback of its last handle, and the
 *   server is freed once no connection remains allocated (a connection whose
 *   request is still held keeps it, without any handle).
 *
 * Input. Reads land in one buffer shared by all connections (callbacks run
 * one at a time on the loop thread) and are parsed in place; http-parser
 * copies nothing, so URL, headers and body are copied into the request's
 * buffers by the parser callbacks. At the end of each request the parser is
 * paused; bytes after it (pipelined requests) go to the connection's `in`
 * buffer and are parsed from there, without moving, once the response has
 * been written. Reading goes on while a request is held, so that a client
 * that goes away is noticed, until `in` holds HTTP_IN_MAX bytes.
 *
 * Limits (contract in http.h). Connections that have not handed us a
 * request head yet are on the server's waiting list, oldest first; a new
 * connection over a limit closes the oldest one of them instead of being
 * refused, so whoever holds idle or slow connections loses them first.
 * Clients are counted per address in a small hash table.
 *
 * Streams. A streamed answer keeps its connection "streaming" until its
 * last piece is written: nothing is parsed meanwhile, as for any answer.
 * Each piece is pulled into the output buffer when the previous one has
 * been written, framed as a chunk, and counted against the server's
 * stream budget until written; a stream over budget waits in a queue that
 * is served when pieces drain.
 *
 * Timeouts use one timer per connection, lazily: a deadline is a number
 * that can move freely; the timer is restarted only when a deadline comes
 * earlier than the timer's, and when the timer fires early it is re-armed
 * for the current deadline. So keep-alive requests cost no timer operation.
 */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <http_parser.h>

#include "alloc.h"

#define HTTP_MAX_HEADERS 64
/* One read's worth; libuv suggests 64 KiB. */
#define HTTP_READ_SIZE 65536
/* Unparsed input kept per connection before reading stops (backpressure). */
#define HTTP_IN_MAX 65536
/* Buffers grown past this are freed after their request, so that an idle
 * connection does not keep a large body's memory. */
#define HTTP_KEEP_MAX 65536
/* Request line bytes that no callback reports: method, spaces, version,
 * CRLF (approximately; http-parser's own 80 KiB cap bounds the rest). */
#define HTTP_LINE_BYTES 16
/* ": " and CRLF around each header field. */
#define HTTP_FIELD_BYTES 4
/* How long a connection closing after an answer keeps draining the client's
 * input, so that unread input does not turn our FIN into a reset that
 * destroys the answer before the client reads it. */
#define HTTP_LINGER_MS       2000
#define HTTP_ACCEPT_RETRY_MS 100
#define HTTP_BACKLOG         511
#define HTTP_ADDR_BUCKETS    1024
/* SO_SNDBUF of TCP connections (Linux doubles it for bookkeeping). */
#define HTTP_SNDBUF (128 * 1024)

typedef struct http_addr http_addr;

/* Connections from one client address. */
struct http_addr {
    http_addr *next;
    unsigned count;
    uint8_t klen;
    uint8_t key[16];
};

typedef struct http_listener http_listener;
typedef struct http_conn http_conn;

typedef union {
    uv_handle_t handle;
    uv_stream_t stream;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
} http_stream;

struct http_listener {
    http_stream h;
    jv_http_server *s;
    http_listener *next;
    char *path; /* the Unix socket file we bound, unlinked at close */
    bool is_unix;
    bool stalled; /* a connection waits for uv_accept(): allocation failed */
    bool closing;
};

typedef struct {
    size_t name_off, name_len, val_off, val_len; /* in jv_http_req.head */
} http_field;

struct jv_http_req {
    http_conn *conn;
    jv_buf head; /* the target, then header names and values, back to back */
    size_t target_len, path_len, query_off, query_len;
    size_t head_bytes; /* counted against max_header_bytes */
    http_field fields[HTTP_MAX_HEADERS];
    unsigned nfields;
    bool in_value; /* the last header callback was for a value */
    jv_buf body;
    uint64_t start_ns;
    unsigned method;
};

enum {
    DL_NONE,
    DL_IDLE,    /* between requests: close silently */
    DL_REQUEST, /* first byte to full body: 408 */
    DL_SEND,    /* the client does not read our answer: close */
    DL_LINGER   /* draining after the last answer: close */
};

struct http_conn {
    http_stream h;
    uv_timer_t timer;
    uv_write_t wreq;    /* the response, from `out` */
    uv_write_t creq;    /* "100 Continue" */
    uv_shutdown_t sreq; /* FIN after the last answer */
    jv_http_server *s;
    http_conn *prev, *next; /* the server's open connections */
    unsigned refs;
    unsigned handles; /* libuv handles not yet closed */
    http_parser parser;
    jv_http_req req;
    jv_buf in; /* received, not parsed yet: in.data[in_off..in.len) */
    size_t in_off;
    jv_buf out;
    uint64_t msg_start_ms; /* loop time of the current request's first byte */
    uint64_t deadline;     /* loop time; meaningful unless DL_NONE */
    uint64_t timer_due;    /* when the timer fires; 0 when not armed */
    int deadline_kind;
    int err_status; /* set by a parser callback that fails; 0: just close */
    const char *err_msg;
    bool listed;      /* in the server's list, counted by jv_http_conns() */
    bool reading;     /* uv_read_start() in effect */
    bool in_msg;      /* a request has begun and is not complete */
    bool held;        /* the handler has the request */
    bool writing;     /* a response write is in flight */
    bool keep_alive;  /* http_should_keep_alive() of the current request */
    bool close_after; /* close once the response is written */
    bool discard;     /* input is dropped: answering an error or lingering */
    bool closing;     /* uv_close() called */
    char remote[64];
    http_conn *next_written; /* in the server's written list */
    /* limits */
    http_addr *addr;          /* NULL for Unix sockets */
    http_conn *wprev, *wnext; /* the server's waiting list */
    uint64_t waiting_since;   /* loop time it joined the waiting list */
    bool waiting;             /* on the waiting list */
    bool headers_done;        /* the current request's head is complete */
    bool http11;              /* the current request is HTTP/1.1 or later */
    /* a streamed answer (jv_http_respond_stream) */
    bool streaming;   /* pull() may still be called or bytes written */
    bool stream_head; /* the status line is written */
    bool stream_chunked;
    bool stream_last;   /* the last piece is being written */
    bool stream_wait;   /* pull() said WAIT and nothing is in flight */
    bool stream_queued; /* waits for the stream budget */
    int stream_status;
    char *stream_type, *stream_headers;
    jv_http_pull_fn pull;
    jv_http_end_fn pull_end;
    void *pull_arg;
    size_t stream_acct; /* bytes counted in the budget */
    http_conn *qnext;   /* the budget queue */
    jv_buf sbuf;        /* the first piece, before the head is written */
};

struct jv_http_server {
    uv_loop_t *loop;
    jv_http_opts o;
    jv_http_handler handler;
    void *arg;
    char *rbuf; /* the shared read buffer, HTTP_READ_SIZE bytes */
    http_listener *listeners;
    http_conn *conns;
    uv_timer_t timer;   /* accept retries */
    uv_idle_t flush;    /* runs the written list on the next iteration */
    http_conn *written; /* answers written at once, continuation pending */
    size_t nconns;      /* listed connections */
    size_t nalloc;      /* allocated connections */
    size_t inflight;
    size_t nhandles; /* open libuv handles, ours and the connections' */
    http_conn *wait_head, *wait_tail; /* waiting connections, oldest first */
    http_conn *q_head, *q_tail;       /* streams waiting for the budget */
    size_t stream_bytes;              /* budget in use */
    jv_http_stats stats;
    http_addr *addrs[HTTP_ADDR_BUCKETS];
    bool stopping;
    bool closing;
    bool done_called;
    void (*done)(void *);
    void *done_arg;
};

static void conn_close(http_conn *c);
static void conn_settle(http_conn *c);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);
static void conn_fail(http_conn *c, int status, const char *msg);
static void listener_accept(http_listener *l);
static void on_flush(uv_idle_t *h);
static void stream_next(http_conn *c);
static void stream_end(http_conn *c, bool complete);

/* -- errors --------------------------------------------------------------- */

static jv_err err_from_uv(int rc)
{
    switch (rc) {
    case 0:
        return JV_OK;
    case UV_ENOMEM:
        return JV_ENOMEM;
    case UV_EADDRINUSE:
        return JV_EBUSY;
    case UV_EACCES:
    case UV_EPERM:
        return JV_EPERM;
    case UV_EINVAL:
    case UV_ENAMETOOLONG:
        return JV_EINVAL;
    default:
        return JV_ENET;
    }
}

/* -- server lifetime ------------------------------------------------------ */

static void server_free(jv_http_server *s)
{
    jv_free(s->rbuf);
    jv_free(s);
}

/* After the last handle is closed: done(), then free unless a connection
 * still waits for its request's answer. */
static void server_maybe_done(jv_http_server *s)
{
    if (!s->closing || s->nhandles > 0 || s->done_called)
        return;
    s->done_called = true;
    if (s->done)
        s->done(s->done_arg);
    if (s->nalloc == 0)
        server_free(s);
}

static void on_server_handle_closed(uv_handle_t *h)
{
    jv_http_server *s = h->data;
    s->nhandles--;
    server_maybe_done(s);
}

/* -- connection lifetime -------------------------------------------------- */

static void conn_free(http_conn *c)
{
    jv_http_server *s = c->s;
    jv_buf_fini(&c->req.head);
    jv_buf_fini(&c->req.body);
    jv_buf_fini(&c->in);
    jv_buf_fini(&c->out);
    jv_buf_fini(&c->sbuf);
    jv_free(c->stream_type);
    jv_free(c->stream_headers);
    jv_free(c);
    s->nalloc--;
    /* Only a late jv_http_respond() gets here after done(). */
    if (s->done_called && s->nalloc == 0)
        server_free(s);
}

static void conn_unref(http_conn *c)
{
    if (--c->refs == 0)
        conn_free(c);
}

static void on_conn_closed(uv_handle_t *h)
{
    http_conn *c = h->data;
    jv_http_server *s = c->s;
    s->nhandles--;
    /* Cannot free the server: this handle kept done() from running. */
    if (--c->handles == 0)
        conn_unref(c);
    server_maybe_done(s);
}

/* -- waiting list and addresses ------------------------------------------ */

static void wait_del(http_conn *c)
{
    jv_http_server *s = c->s;
    if (!c->waiting)
        return;
    if (c->wprev)
        c->wprev->wnext = c->wnext;
    else
        s->wait_head = c->wnext;
    if (c->wnext)
        c->wnext->wprev = c->wprev;
    else
        s->wait_tail = c->wprev;
    c->wprev = c->wnext = NULL;
    c->waiting = false;
}

static void wait_add(http_conn *c)
{
    jv_http_server *s = c->s;
    if (c->waiting || c->closing)
        return;
    c->waiting = true;
    c->waiting_since = uv_now(s->loop);
    c->wprev = s->wait_tail;
    c->wnext = NULL;
    if (s->wait_tail)
        s->wait_tail->wnext = c;
    else
        s->wait_head = c;
    s->wait_tail = c;
}

/* Ours and those handed over. */
static size_t conns_open(const jv_http_server *s)
{
    return s->nconns +
           (s->o.handed_over ? s->o.handed_over(s->o.handed_over_arg) : 0);
}

static bool server_busy(const jv_http_server *s)
{
    return (uint64_t)conns_open(s) * 4 >= (uint64_t)s->o.max_conns * 3;
}

static size_t addr_bucket(const uint8_t *key, size_t klen)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < klen; i++)
        h = (h ^ key[i]) * 16777619u;
    return h % HTTP_ADDR_BUCKETS;
}

/* The entry of sa's address, created with count 0; NULL when out of
 * memory or not an IP address. */
static http_addr *addr_get(jv_http_server *s, const struct sockaddr *sa)
{
    const uint8_t *key;
    size_t klen;
    if (sa->sa_family == AF_INET) {
        key = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
        klen = 4;
    } else if (sa->sa_family == AF_INET6) {
        key = (const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
        klen = 16;
    } else {
        return NULL;
    }
    size_t b = addr_bucket(key, klen);
    for (http_addr *a = s->addrs[b]; a; a = a->next)
        if (a->klen == klen && memcmp(a->key, key, klen) == 0)
            return a;
    http_addr *a = jv_calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->klen = (uint8_t)klen;
    memcpy(a->key, key, klen);
    a->next = s->addrs[b];
    s->addrs[b] = a;
    return a;
}

/* Frees a's entry when no connection counts in it. */
static void addr_gc(jv_http_server *s, http_addr *a)
{
    if (!a || a->count > 0)
        return;
    http_addr **pp = &s->addrs[addr_bucket(a->key, a->klen)];
    while (*pp != a)
        pp = &(*pp)->next;
    *pp = a->next;
    jv_free(a);
}

static void addr_put(jv_http_server *s, http_addr *a)
{
    if (a) {
        a->count--;
        addr_gc(s, a);
    }
}

/* Drops c from the stream budget and its queue. */
static void stream_release(http_conn *c)
{
    jv_http_server *s = c->s;
    s->stream_bytes -= c->stream_acct;
    c->stream_acct = 0;
    if (s->q_head && s->stream_bytes < s->o.stream_buffer &&
        !s->closing) /* let a queued stream go, outside this call stack */
        uv_idle_start(&s->flush, on_flush);
    if (!c->stream_queued)
        return;
    http_conn **pp = &s->q_head, *prev = NULL;
    while (*pp != c) {
        prev = *pp;
        pp = &(*pp)->qnext;
    }
    *pp = c->qnext;
    if (s->q_tail == c)
        s->q_tail = prev;
    c->qnext = NULL;
    c->stream_queued = false;
}

static void conn_unlist(http_conn *c)
{
    jv_http_server *s = c->s;
    wait_del(c);
    if (!c->listed)
        return;
    addr_put(s, c->addr);
    c->addr = NULL;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    c->listed = false;
    s->nconns--;
}

/* Idempotent. Pending writes complete with UV_ECANCELED; a held request
 * stays valid until answered. With reset, a TCP connection is reset: what
 * the client did not take is dropped at once, rather than kept by the
 * kernel for a client that does not read. */
static void conn_close_how(http_conn *c, bool reset)
{
    if (c->closing)
        return;
    c->closing = true;
    c->reading = false;
    c->deadline_kind = DL_NONE;
    conn_unlist(c);
    if (c->streaming) {
        stream_release(c);
        stream_end(c, false);
    }
    if (!reset || c->h.handle.type != UV_TCP ||
        uv_tcp_close_reset(&c->h.tcp, on_conn_closed) != 0)
        uv_close(&c->h.handle, on_conn_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_closed);
}

static void conn_close(http_conn *c)
{
    conn_close_how(c, false);
}

/* Nothing received, held or being written: safe to close at any moment. */
static bool conn_idle(const http_conn *c)
{
    return !c->held && !c->writing && !c->streaming && !c->in_msg &&
           !c->discard && c->in_off == c->in.len;
}

/* -- timers --------------------------------------------------------------- */

static void on_conn_timer(uv_timer_t *t);

static void conn_arm(http_conn *c, uint64_t at)
{
    uint64_t now = uv_now(c->s->loop);
    c->timer_due = at > now ? at : now;
    uv_timer_start(&c->timer, on_conn_timer, c->timer_due - now, 0);
}

static void conn_deadline(http_conn *c, int kind, uint64_t at)
{
    c->deadline_kind = kind;
    c->deadline = at;
    /* A later deadline waits for the armed timer to fire and re-arm. */
    if (kind != DL_NONE && (c->timer_due == 0 || at < c->timer_due))
        conn_arm(c, at);
}

static void on_conn_timer(uv_timer_t *t)
{
    http_conn *c = t->data;
    int kind = c->deadline_kind;
    c->timer_due = 0;
    if (kind == DL_NONE || c->closing)
        return;
    if (uv_now(c->s->loop) < c->deadline) {
        conn_arm(c, c->deadline);
        return;
    }
    c->deadline_kind = DL_NONE;
    if (kind == DL_REQUEST || kind == DL_SEND)
        c->s->stats.timed_out++;
    if (kind == DL_REQUEST)
        conn_fail(c, 408, "request not complete in time");
    else
        conn_close_how(c, kind == DL_SEND);
}

/* -- output --------------------------------------------------------------- */

static void buf_puts(jv_buf *b, const char *s)
{
    jv_buf_append(b, s, strlen(s)); /* errors are sticky; checked once */
}

/* Decimal digits of v: every answer writes a few numbers, and printf
 * showed in profiles of the request path. */
static void buf_putu(jv_buf *b, uint64_t v)
{
    char d[20];
    size_t n = 0;
    do
        d[sizeof(d) - ++n] = (char)('0' + v % 10);
    while ((v /= 10) && n < sizeof(d));
    jv_buf_append(b, d + sizeof(d) - n, n);
}

/* Shrinks what a large request or response left behind. */
static void conn_trim(http_conn *c)
{
    if (c->out.cap > HTTP_KEEP_MAX)
        jv_buf_fini(&c->out);
    if (c->req.head.cap > HTTP_KEEP_MAX)
        jv_buf_fini(&c->req.head);
    if (c->req.body.cap > HTTP_KEEP_MAX)
        jv_buf_fini(&c->req.body);
    if (c->sbuf.cap > HTTP_KEEP_MAX)
        jv_buf_fini(&c->sbuf);
    if (c->in_off == c->in.len && c->in.cap > HTTP_KEEP_MAX) {
        jv_buf_fini(&c->in);
        c->in_off = 0;
    }
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    http_conn *c = req->data;
    if (status < 0)
        conn_close(c);
}

/* After the last answer: FIN, then drop input until the client closes or
 * the linger time is over. */
static void conn_linger(http_conn *c)
{
    jv_http_server *s = c->s;
    uint64_t ms = s->o.idle_timeout_ms < HTTP_LINGER_MS ? s->o.idle_timeout_ms
                                                        : HTTP_LINGER_MS;
    c->discard = true;
    c->in.len = c->in_off = 0;
    c->sreq.data = c;
    if (uv_shutdown(&c->sreq, &c->h.stream, on_shutdown) != 0) {
        conn_close(c);
        return;
    }
    if (!c->reading && uv_read_start(&c->h.stream, on_alloc, on_read) != 0) {
        conn_close(c);
        return;
    }
    c->reading = true;
    conn_deadline(c, DL_LINGER, uv_now(s->loop) + ms);
}

static void conn_resume(http_conn *c);

static void written(http_conn *c, int status)
{
    c->writing = false;
    if (status < 0 || c->closing) {
        conn_close(c);
        return;
    }
    if (c->streaming) {
        stream_release(c);
        conn_deadline(c, DL_NONE, 0);
        if (!c->stream_last) {
            stream_next(c);
            return;
        }
        stream_end(c, true);
    }
    conn_trim(c);
    if (c->close_after)
        conn_linger(c);
    else
        conn_resume(c);
}

static void on_written(uv_write_t *w, int status)
{
    written(w->data, status);
}

/* Answers the socket took whole at once continue here, on the next loop
 * iteration, as a write callback would: never inside the handler's call. */
static void on_flush(uv_idle_t *h)
{
    jv_http_server *s = h->data;
    http_conn *list = s->written;
    s->written = NULL;
    uv_idle_stop(&s->flush);
    while (list) {
        http_conn *c = list;
        list = c->next_written;
        c->next_written = NULL;
        written(c, 0);
        conn_unref(c); /* the list's */
    }
    /* Streams that waited for the budget, oldest first. */
    while (s->q_head && s->stream_bytes < s->o.stream_buffer) {
        http_conn *c = s->q_head;
        s->q_head = c->qnext;
        if (!s->q_head)
            s->q_tail = NULL;
        c->qnext = NULL;
        c->stream_queued = false;
        c->refs++;
        stream_next(c);
        conn_unref(c);
    }
}

/* Status line and headers into the output buffer (reset first); len is
 * the body's, or SIZE_MAX for a streamed body of unknown length. */
static void conn_head(http_conn *c, int status, const char *content_type,
                      const char *headers, size_t len)
{
    jv_http_server *s = c->s;
    jv_buf *o = &c->out;
    bool bodiless = status < 200 || status == 204 || status == 304;

    c->close_after = c->close_after || !c->keep_alive || s->stopping;
    jv_buf_reset(o);
    buf_puts(o, "HTTP/1.1 ");
    buf_putu(o, (uint64_t)status);
    buf_puts(o, " ");
    buf_puts(o, jv_http_reason(status));
    buf_puts(o, "\r\n");
    if (content_type) {
        buf_puts(o, "Content-Type: ");
        buf_puts(o, content_type);
        buf_puts(o, "\r\n");
    }
    if (len == SIZE_MAX && c->stream_chunked) {
        buf_puts(o, "Transfer-Encoding: chunked\r\n");
    } else if (!bodiless && len != SIZE_MAX) {
        buf_puts(o, "Content-Length: ");
        buf_putu(o, len);
        buf_puts(o, "\r\n");
    }
    buf_puts(o, c->close_after ? "Connection: close\r\n"
                               : "Connection: keep-alive\r\n");
    if (headers)
        buf_puts(o, headers);
    buf_puts(o, "\r\n");
}

/* Writes the output buffer from off. */
static void conn_send(http_conn *c, size_t off)
{
    jv_http_server *s = c->s;
    jv_buf *o = &c->out;
    if (jv_buf_err(o) || o->len > UINT_MAX) {
        conn_close(c);
        return;
    }
    uv_buf_t buf = uv_buf_init((char *)o->data + off, (unsigned)(o->len - off));
    /* Most answers fit the socket's buffer: write them now. uv_write()
     * alone would also arm and disarm the socket for writing, one
     * epoll_ctl per answer. */
    int done = uv_try_write(&c->h.stream, &buf, 1);
    if (done == (int)buf.len) {
        c->writing = true;
        c->refs++; /* the written list's */
        c->next_written = s->written;
        s->written = c;
        uv_idle_start(&s->flush, on_flush);
        return;
    }
    if (done < 0 && done != UV_EAGAIN) {
        conn_close(c);
        return;
    }
    if (done > 0)
        buf = uv_buf_init(buf.base + done, (unsigned)(buf.len - (size_t)done));
    c->wreq.data = c;
    if (uv_write(&c->wreq, &c->h.stream, &buf, 1, on_written) != 0) {
        conn_close(c);
        return;
    }
    c->writing = true;
    conn_deadline(c, DL_SEND, uv_now(s->loop) + s->o.send_timeout_ms);
}

/* Status line, our headers, the caller's, the body (copied), as one write
 * from the connection's output buffer. */
static void conn_write(http_conn *c, int status, const char *content_type,
                       const char *headers, const void *body, size_t len)
{
    bool bodiless = status < 200 || status == 204 || status == 304;
    if (status < 100 || status > 999)
        status = 500;
    conn_head(c, status, content_type, headers, len);
    /* HEAD answers carry the length of the body they do not send. */
    if (!bodiless && c->req.method != HTTP_HEAD)
        jv_buf_append(&c->out, body, len);
    conn_send(c, 0);
}

/* -- streamed answers ----------------------------------------------------- */

static void stream_end(http_conn *c, bool complete)
{
    jv_http_end_fn end = c->pull_end;
    void *arg = c->pull_arg;
    c->streaming = false;
    c->stream_wait = false;
    c->pull = NULL;
    c->pull_end = NULL;
    c->pull_arg = NULL;
    jv_free(c->stream_type);
    jv_free(c->stream_headers);
    c->stream_type = c->stream_headers = NULL;
    if (end)
        end(arg, complete);
}

void jv_http_chunk_line(char out[JV_HTTP_CHUNK_HEAD], size_t n)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 7; i >= 0; i--, n >>= 4)
        out[i] = hex[n & 15];
    out[8] = '\r';
    out[9] = '\n';
}

/* Pulls into b until a piece is full or the producer stops. */
static jv_http_pull stream_fill(http_conn *c, jv_buf *b, size_t from)
{
    jv_http_pull r = JV_HTTP_MORE;
    while (r == JV_HTTP_MORE && b->len - from < JV_HTTP_CHUNK)
        r = c->pull(c->pull_arg, (jv_http_stream *)c, b);
    if (jv_buf_err(b))
        r = JV_HTTP_ABORT;
    return r;
}

/* The first piece: an answer that ends in it goes out whole with a
 * Content-Length; a longer one starts with its head. */
static void stream_first(http_conn *c)
{
    jv_buf *o = &c->out, *b = &c->sbuf;
    jv_buf_reset(b);
    jv_http_pull r = stream_fill(c, b, 0);
    if (r == JV_HTTP_ABORT) {
        stream_end(c, false);
        conn_close(c);
        return;
    }
    if (r == JV_HTTP_END) {
        int status = c->stream_status;
        char *type = c->stream_type, *headers = c->stream_headers;
        c->stream_type = c->stream_headers = NULL;
        stream_end(c, true);
        conn_write(c, status, type, headers, b->data, b->len);
        jv_free(type);
        jv_free(headers);
        return;
    }
    c->stream_head = true;
    c->stream_chunked = c->http11;
    if (!c->http11)
        c->close_after = true; /* HTTP/1.0: the close ends the body */
    conn_head(c, c->stream_status, c->stream_type, c->stream_headers, SIZE_MAX);
    if (b->len && c->stream_chunked) {
        char line[JV_HTTP_CHUNK_HEAD];
        jv_http_chunk_line(line, b->len);
        jv_buf_append(o, line, sizeof(line));
    }
    jv_buf_append(o, b->data, b->len);
    if (b->len && c->stream_chunked)
        buf_puts(o, "\r\n");
    jv_buf_fini(b);
    c->stream_acct = o->cap;
    c->s->stream_bytes += c->stream_acct;
    conn_send(c, 0);
}

/* The next piece, when nothing is being written. */
static void stream_next(http_conn *c)
{
    jv_http_server *s = c->s;
    jv_buf *o = &c->out;
    size_t hdr = 0, off = 0, n;

    if (c->closing || c->writing || !c->streaming || c->stream_queued)
        return;
    c->stream_wait = false;
    /* The first piece goes at once: most answers end in it, and none
     * should wait behind clients that do not read. */
    if (c->stream_head && s->stream_bytes >= s->o.stream_buffer) {
        /* Over budget: the memory of our last piece goes back too. */
        jv_buf_fini(o);
        c->stream_queued = true;
        if (s->q_tail)
            s->q_tail->qnext = c;
        else
            s->q_head = c;
        s->q_tail = c;
        return;
    }
    if (!c->stream_head) {
        stream_first(c);
        return;
    }
    jv_buf_reset(o);
    if (c->stream_chunked) {
        hdr = JV_HTTP_CHUNK_HEAD;
        jv_buf_append(o, "0000000000", hdr);
    }
    jv_http_pull r = stream_fill(c, o, hdr);
    if (r == JV_HTTP_ABORT) {
        stream_end(c, false);
        conn_close(c);
        return;
    }
    n = o->len - hdr;
    if (r == JV_HTTP_WAIT && n == 0) {
        c->stream_wait = true;
        return;
    }
    if (c->stream_chunked) {
        if (n) {
            jv_http_chunk_line((char *)o->data, n);
            buf_puts(o, "\r\n");
        } else {
            off = hdr;
        }
        if (r == JV_HTTP_END)
            buf_puts(o, "0\r\n\r\n");
    }
    if (r == JV_HTTP_END)
        c->stream_last = true;
    if (o->len == off) { /* HTTP/1.0 and nothing left to send */
        c->writing = true;
        written(c, 0);
        return;
    }
    c->stream_acct = o->cap;
    s->stream_bytes += c->stream_acct;
    conn_send(c, off);
}

/* An error the server answers itself, then closes. Only called when nothing
 * is held or being written (parsing and DL_REQUEST happen only then). */
static void conn_fail(http_conn *c, int status, const char *msg)
{
    const char *code = status == 408   ? "request_timeout"
                       : status == 413 ? "payload_too_large"
                       : status == 431 ? "headers_too_large"
                                       : "bad_request";
    char body[256];
    int n =
        snprintf(body, sizeof(body),
                 "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", code, msg);
    if (n < 0 || (size_t)n >= sizeof(body)) {
        conn_close(c);
        return;
    }
    c->discard = true;
    c->in_msg = false;
    c->close_after = true;
    wait_del(c);
    c->req.method = HTTP_GET; /* an error has a body, even after HEAD */
    conn_write(c, status, "application/json", NULL, body, (size_t)n);
}

static void on_continue_sent(uv_write_t *w, int status)
{
    http_conn *c = w->data;
    if (status < 0)
        conn_close(c);
}

/* -- parser callbacks ----------------------------------------------------- */

/* Makes http_parser_execute() stop with a callback error; the caller
 * answers err_status (or closes when it is 0). */
static int conn_reject(http_conn *c, int status, const char *msg)
{
    c->err_status = status;
    c->err_msg = msg;
    return -1;
}

static int head_add(http_conn *c, const char *at, size_t len)
{
    jv_http_req *r = &c->req;
    size_t max = c->s->o.max_header_bytes;
    if (r->head_bytes > max || len > max - r->head_bytes)
        return conn_reject(c, 431, "request headers too large");
    r->head_bytes += len;
    if (jv_buf_append(&r->head, at, len))
        return conn_reject(c, 0, NULL);
    return 0;
}

static int on_message_begin(http_parser *p)
{
    http_conn *c = p->data;
    jv_http_req *r = &c->req;
    c->in_msg = true;
    c->headers_done = false;
    c->msg_start_ms = uv_now(c->s->loop);
    r->start_ns = uv_hrtime();
    jv_buf_reset(&r->head);
    jv_buf_reset(&r->body);
    r->target_len = r->path_len = r->query_off = r->query_len = 0;
    r->head_bytes = HTTP_LINE_BYTES;
    r->nfields = 0;
    r->in_value = false;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    http_conn *c = p->data;
    c->req.target_len += len; /* fragments are contiguous in head */
    return head_add(c, at, len);
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    http_conn *c = p->data;
    jv_http_req *r = &c->req;
    if (r->nfields == 0 || r->in_value) {
        if (r->nfields == HTTP_MAX_HEADERS)
            return conn_reject(c, 431, "too many header fields");
        http_field *f = &r->fields[r->nfields++];
        f->name_off = r->head.len;
        f->name_len = f->val_off = f->val_len = 0;
        r->in_value = false;
        r->head_bytes += HTTP_FIELD_BYTES;
    }
    /* Debian builds http-parser without HTTP_PARSER_STRICT, which lets
     * blanks into names; RFC 9112 5.1 wants them refused (smuggling). */
    if (memchr(at, ' ', len) || memchr(at, '\t', len))
        return conn_reject(c, 400, "blank in a header name");
    r->fields[r->nfields - 1].name_len += len;
    return head_add(c, at, len);
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    http_conn *c = p->data;
    jv_http_req *r = &c->req;
    if (r->nfields == 0)
        return conn_reject(c, 400, "header value without a name");
    http_field *f = &r->fields[r->nfields - 1];
    if (!r->in_value) {
        r->in_value = true;
        f->val_off = r->head.len;
    }
    f->val_len += len;
    return head_add(c, at, len);
}

static void split_target(jv_http_req *r)
{
    const char *t = (const char *)r->head.data;
    size_t n = r->target_len, i = 0, j;
    while (i < n && t[i] != '?' && t[i] != '#')
        i++;
    r->path_len = i;
    if (i < n && t[i] == '?') {
        for (j = i + 1; j < n && t[j] != '#'; j++)
            ;
        r->query_off = i + 1;
        r->query_len = j - (i + 1);
    }
}

/* The body limit of this request: max_body, or max_big_body for the
 * paths under big_body_path (known once the target is split). */
static size_t body_limit(const http_conn *c)
{
    const jv_http_opts *o = &c->s->o;
    const jv_http_req *r = &c->req;
    size_t n = o->big_body_path ? strlen(o->big_body_path) : 0;
    if (n && o->max_big_body > o->max_body && r->path_len >= n &&
        memcmp(r->head.data, o->big_body_path, n) == 0 &&
        (r->path_len == n || r->head.data[n] == '/'))
        return o->max_big_body;
    return o->max_body;
}

static int on_headers_complete(http_parser *p)
{
    http_conn *c = p->data;
    jv_http_req *r = &c->req;
    size_t max_body;
    bool chunked = (p->flags & F_CHUNKED) != 0;
    bool sized = !chunked && p->content_length != ULLONG_MAX;

    /* Origin form only: no absolute URLs, no "*", no CONNECT authority. */
    if (r->target_len == 0 || r->head.data[0] != '/')
        return conn_reject(c, 400, "request target is not a path");
    split_target(r);
    max_body = body_limit(c);
    r->method = p->method;
    c->keep_alive = http_should_keep_alive(p) != 0;
    c->http11 = p->http_major > 1 || (p->http_major == 1 && p->http_minor >= 1);
    c->headers_done = true;
    wait_del(c); /* a request is under way: not evicted, not idle */
    if (sized && p->content_length > max_body)
        return conn_reject(c, 413, "request body too large");
    if (chunked || (sized && p->content_length > 0)) {
        jv_str e = jv_http_header(r, "expect");
        /* HTTP/1.0 clients do not know 100 (RFC 9110 10.1.1). */
        if (e.n == 12 && strncasecmp(e.p, "100-continue", 12) == 0 &&
            (p->http_major > 1 || (p->http_major == 1 && p->http_minor >= 1))) {
            static char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
            uv_buf_t b = uv_buf_init(cont, sizeof(cont) - 1);
            c->creq.data = c;
            if (uv_write(&c->creq, &c->h.stream, &b, 1, on_continue_sent))
                return conn_reject(c, 0, NULL);
        }
    }
    return 0;
}

static int on_chunk_header(http_parser *p)
{
    http_conn *c = p->data;
    /* content_length is the size of the chunk to come: refuse it early. */
    if (p->content_length > body_limit(c) - c->req.body.len)
        return conn_reject(c, 413, "request body too large");
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    http_conn *c = p->data;
    jv_buf *b = &c->req.body;
    if (len > body_limit(c) - b->len)
        return conn_reject(c, 413, "request body too large");
    if (jv_buf_append(b, at, len))
        return conn_reject(c, 0, NULL);
    return 0;
}

static int on_message_complete(http_parser *p)
{
    http_conn *c = p->data;
    c->in_msg = false;
    /* http_parser_execute() returns right after this request's last byte;
     * the rest waits until the answer is written. */
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
    .on_chunk_header = on_chunk_header,
};

/* -- input ---------------------------------------------------------------- */

static bool conn_may_parse(const http_conn *c)
{
    return !c->held && !c->writing && !c->streaming && !c->closing &&
           !c->discard;
}

static void conn_dispatch(http_conn *c)
{
    jv_http_server *s = c->s;
    c->held = true;
    c->refs++; /* dropped by jv_http_respond() */
    s->inflight++;
    conn_deadline(c, DL_NONE, 0);
    s->handler(s->arg, &c->req);
}

static void conn_parse_error(http_conn *c, enum http_errno e)
{
    if (e >= HPE_CB_message_begin && e <= HPE_CB_chunk_complete) {
        if (c->err_status)
            conn_fail(c, c->err_status, c->err_msg);
        else
            conn_close(c);
    } else if (e == HPE_HEADER_OVERFLOW) {
        conn_fail(c, 431, "request headers too large");
    } else {
        conn_fail(c, 400, http_errno_description(e));
    }
}

/* Parses p[0..n) as far as the connection may: up to the end, or to the
 * end of a request whose answer is not written yet. Returns the bytes
 * used; all of them after an error (the rest is dropped). The caller holds
 * a reference: the handler may close the connection. */
static size_t conn_parse(http_conn *c, const char *p, size_t n)
{
    size_t used = 0;
    while (used < n && conn_may_parse(c)) {
        size_t k = http_parser_execute(&c->parser, &parser_settings, p + used,
                                       n - used);
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        used += k;
        if (e == HPE_PAUSED) {
            http_parser_pause(&c->parser, 0);
            conn_dispatch(c);
        } else if (e != HPE_OK || k == 0) {
            conn_parse_error(c, e == HPE_OK ? HPE_UNKNOWN : e);
            return n;
        }
    }
    return used;
}

/* Keeps unparsed input, moving the unparsed part to the front first: that
 * part is below HTTP_IN_MAX plus one read, so the copying stays linear. */
static bool conn_keep_input(http_conn *c, const char *p, size_t n)
{
    jv_buf *in = &c->in;
    if (c->in_off > 0) {
        memmove(in->data, in->data + c->in_off, in->len - c->in_off);
        in->len -= c->in_off;
        c->in_off = 0;
    }
    return jv_buf_append(in, p, n) == JV_OK;
}

/* After input or an answer: read while `in` has room, and set the deadline
 * that fits the connection's state. */
static void conn_settle(http_conn *c)
{
    jv_http_server *s = c->s;
    bool want_read;
    if (c->closing || c->discard)
        return;
    if (s->stopping && conn_idle(c)) {
        conn_close(c);
        return;
    }
    want_read = c->in.len - c->in_off < HTTP_IN_MAX;
    if (want_read != c->reading) {
        int rc = want_read ? uv_read_start(&c->h.stream, on_alloc, on_read)
                           : uv_read_stop(&c->h.stream);
        if (rc != 0) {
            conn_close(c);
            return;
        }
        c->reading = want_read;
    }
    if (c->held || c->writing || c->streaming)
        return; /* no deadline, or DL_SEND set by conn_send() */
    if (c->in_msg) {
        /* A slow head (slowloris) gets the shorter of the two. */
        uint64_t t = s->o.request_timeout_ms;
        if (!c->headers_done && s->o.header_timeout_ms < t)
            t = s->o.header_timeout_ms;
        conn_deadline(c, DL_REQUEST, c->msg_start_ms + t);
    } else if (c->deadline_kind != DL_IDLE) {
        wait_add(c);
        conn_deadline(c, DL_IDLE,
                      uv_now(s->loop) + (server_busy(s)
                                             ? s->o.idle_busy_ms
                                             : s->o.idle_timeout_ms));
    }
}

/* The answer is written: parse what was pipelined meanwhile. */
static void conn_resume(http_conn *c)
{
    c->refs++;
    if (c->in_off < c->in.len) {
        size_t used = conn_parse(c, (const char *)c->in.data + c->in_off,
                                 c->in.len - c->in_off);
        c->in_off += used;
    }
    if (c->discard || c->in_off == c->in.len)
        c->in.len = c->in_off = 0;
    conn_settle(c);
    conn_unref(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    http_conn *c = h->data;
    (void)suggested;
    *buf = uv_buf_init(c->s->rbuf, HTTP_READ_SIZE);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    http_conn *c = st->data;
    size_t n = (size_t)nread, used = 0;
    /* EOF or an error: the client is gone (a half-close counts as gone, as
     * nginx has it), whatever it sent or we owe it. */
    if (nread < 0) {
        conn_close(c);
        return;
    }
    if (nread == 0 || c->discard || c->closing)
        return;
    c->refs++;
    if (conn_may_parse(c) && c->in_off == c->in.len)
        used = conn_parse(c, buf->base, n);
    if (used < n && !c->closing && !c->discard &&
        !conn_keep_input(c, buf->base + used, n - used))
        conn_close(c);
    conn_settle(c);
    conn_unref(c);
}

/* -- accepting ------------------------------------------------------------ */

static void format_addr(const struct sockaddr *sa, char *out, size_t n)
{
    char ip[INET6_ADDRSTRLEN] = "";
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        uv_ip6_name(a, ip, sizeof(ip));
        snprintf(out, n, "[%s]:%u", ip, (unsigned)ntohs(a->sin6_port));
    } else if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        uv_ip4_name(a, ip, sizeof(ip));
        snprintf(out, n, "%s:%u", ip, (unsigned)ntohs(a->sin_port));
    } else {
        snprintf(out, n, "unknown");
    }
}

static void on_server_timer(uv_timer_t *t)
{
    jv_http_server *s = t->data;
    for (http_listener *l = s->listeners; l; l = l->next) {
        if (l->stalled && !l->closing)
            listener_accept(l);
    }
}

/* Closes the oldest waiting connection (of address a, unless NULL). */
static bool evict(jv_http_server *s, const http_addr *a)
{
    http_conn *v = s->wait_head;
    while (v && a && v->addr != a)
        v = v->wnext;
    if (!v)
        return false;
    s->stats.evicted++;
    conn_close(v);
    return true;
}

/* Names the new connection and makes room for it under the limits; false
 * when it must be closed. */
static bool conn_admit(jv_http_server *s, http_conn *c)
{
    bool is_unix = c->h.handle.type == UV_NAMED_PIPE;
    if (is_unix) {
        snprintf(c->remote, sizeof(c->remote), "unix");
    } else {
        struct sockaddr_storage ss;
        int len = (int)sizeof(ss);
        uv_tcp_nodelay(&c->h.tcp, 1);
        /* A fixed send buffer instead of the kernel's autotuning (up to
         * 4 MiB each): a client that stops reading holds that much of the
         * kernel's memory, and is noticed (send_timeout_ms) that soon. */
        int sndbuf = HTTP_SNDBUF;
        uv_send_buffer_size(&c->h.handle, &sndbuf);
        if (uv_tcp_getpeername(&c->h.tcp, (struct sockaddr *)&ss, &len) != 0)
            return false;
        format_addr((const struct sockaddr *)&ss, c->remote, sizeof(c->remote));
        c->addr = addr_get(s, (const struct sockaddr *)&ss);
        if (!c->addr)
            return false;
    }
    if (server_busy(s)) {
        /* Idle connections get the shorter idle time now. */
        uint64_t now = uv_now(s->loop);
        while (s->wait_head &&
               now - s->wait_head->waiting_since >= s->o.idle_busy_ms)
            evict(s, NULL);
    }
    if ((c->addr && c->addr->count >= s->o.max_conns_per_addr &&
         !evict(s, c->addr)) ||
        (conns_open(s) >= s->o.max_conns && !evict(s, NULL))) {
        s->stats.refused++;
        addr_gc(s, c->addr);
        c->addr = NULL;
        return false;
    }
    return true;
}

static void listener_accept(http_listener *l)
{
    jv_http_server *s = l->s;
    http_conn *c = jv_calloc(1, sizeof(*c));
    if (!c) {
        /* libuv stops watching the listener until uv_accept() is called:
         * try again later rather than stall it for good. */
        l->stalled = true;
        uv_timer_start(&s->timer, on_server_timer, HTTP_ACCEPT_RETRY_MS, 0);
        return;
    }
    l->stalled = false;
    c->s = s;
    c->req.conn = c;
    s->nalloc++;
    if (l->is_unix)
        uv_pipe_init(s->loop, &c->h.pipe, 0);
    else
        uv_tcp_init(s->loop, &c->h.tcp);
    uv_timer_init(s->loop, &c->timer);
    c->h.handle.data = c;
    c->timer.data = c;
    c->handles = 2;
    c->refs = 1; /* the handles' */
    s->nhandles += 2;
    if (uv_accept(&l->h.stream, &c->h.stream) != 0 || !conn_admit(s, c)) {
        conn_close(c);
        return;
    }
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    c->listed = true;
    s->nconns++;
    if (c->addr)
        c->addr->count++;
    wait_add(c);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    if (uv_read_start(&c->h.stream, on_alloc, on_read) != 0) {
        conn_close(c);
        return;
    }
    c->reading = true;
    conn_deadline(c, DL_IDLE, uv_now(s->loop) + s->o.idle_timeout_ms);
}

static void on_connection(uv_stream_t *st, int status)
{
    if (status < 0)
        return; /* EMFILE and the like: libuv keeps listening */
    listener_accept(st->data);
}

/* -- listening ------------------------------------------------------------ */

static void on_listener_closed(uv_handle_t *h)
{
    http_listener *l = h->data;
    jv_http_server *s = l->s;
    for (http_listener **pp = &s->listeners; *pp; pp = &(*pp)->next) {
        if (*pp == l) {
            *pp = l->next;
            break;
        }
    }
    jv_free(l->path);
    jv_free(l);
    s->nhandles--;
    server_maybe_done(s);
}

static void listener_close(http_listener *l)
{
    if (l->closing)
        return;
    l->closing = true;
    if (l->path)
        unlink(l->path);
    uv_close(&l->h.handle, on_listener_closed);
}

/* "host:port" or "[v6]:port" into a socket address. */
static jv_err parse_tcp_addr(const char *addr, struct sockaddr_storage *ss)
{
    char host[INET6_ADDRSTRLEN];
    const char *h = addr, *end, *port;
    bool v6 = addr[0] == '[';
    unsigned long val = 0;
    size_t hlen;

    if (v6) {
        h = addr + 1;
        end = strchr(h, ']');
        if (!end || end[1] != ':')
            return JV_EINVAL;
        port = end + 2;
    } else {
        end = strrchr(addr, ':');
        if (!end)
            return JV_EINVAL;
        port = end + 1;
    }
    hlen = (size_t)(end - h);
    if (hlen == 0 || hlen >= sizeof(host) || (!v6 && memchr(h, ':', hlen)))
        return JV_EINVAL;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    if (*port == '\0' || strlen(port) > 5)
        return JV_EINVAL;
    for (const char *q = port; *q; q++) {
        if (*q < '0' || *q > '9')
            return JV_EINVAL;
        val = val * 10 + (unsigned long)(*q - '0');
    }
    if (val > 65535)
        return JV_EINVAL;
    if (v6)
        return uv_ip6_addr(host, (int)val, (struct sockaddr_in6 *)ss) == 0
                   ? JV_OK
                   : JV_EINVAL;
    return uv_ip4_addr(host, (int)val, (struct sockaddr_in *)ss) == 0
               ? JV_OK
               : JV_EINVAL;
}

static jv_err listen_tcp(http_listener *l, const char *addr, char *name,
                         size_t namelen)
{
    jv_http_server *s = l->s;
    struct sockaddr_storage ss;
    int len = (int)sizeof(ss);
    jv_err err;

    memset(&ss, 0, sizeof(ss));
    err = parse_tcp_addr(addr, &ss);
    if (err)
        return err;
    uv_tcp_init(s->loop, &l->h.tcp);
    l->h.handle.data = l;
    s->nhandles++;
    /* libuv reports most bind errors from uv_listen(). */
    err = err_from_uv(uv_tcp_bind(&l->h.tcp, (struct sockaddr *)&ss, 0));
    if (!err)
        err = err_from_uv(uv_listen(&l->h.stream, HTTP_BACKLOG, on_connection));
    if (!err)
        err = err_from_uv(
            uv_tcp_getsockname(&l->h.tcp, (struct sockaddr *)&ss, &len));
    if (!err)
        format_addr((const struct sockaddr *)&ss, name, namelen);
    return err;
}

/* A socket file nobody listens on is left by a crash: remove it. A live
 * one, or any other kind of file, is not ours to remove. */
static jv_err unix_clear_stale(const char *path, size_t plen)
{
    struct sockaddr_un sa;
    struct stat st;
    int fd, rc, e;

    if (lstat(path, &st) != 0)
        return errno == ENOENT ? JV_OK : JV_EIO;
    if (!S_ISSOCK(st.st_mode))
        return JV_EEXIST;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, plen);
    /* Non-blocking: a live server with a full backlog must not block us. */
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return JV_EIO;
    rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    e = errno;
    close(fd);
    if (rc == 0 || e == EAGAIN)
        return JV_EBUSY;
    if (e != ECONNREFUSED)
        return e == EACCES ? JV_EPERM : JV_EIO;
    if (unlink(path) != 0 && errno != ENOENT)
        return JV_EIO;
    return JV_OK;
}

static jv_err listen_unix(http_listener *l, const char *path, char *name,
                          size_t namelen)
{
    jv_http_server *s = l->s;
    size_t plen = strlen(path);
    char *copy;
    jv_err err;

    /* uv_pipe_bind() would silently truncate a long path. */
    if (plen == 0 || plen >= sizeof(((struct sockaddr_un *)NULL)->sun_path))
        return JV_EINVAL;
    err = unix_clear_stale(path, plen);
    if (err)
        return err;
    copy = jv_strndup(path, plen);
    if (!copy)
        return JV_ENOMEM;
    uv_pipe_init(s->loop, &l->h.pipe, 0);
    l->h.handle.data = l;
    s->nhandles++;
    err = err_from_uv(uv_pipe_bind(&l->h.pipe, path));
    if (err) {
        jv_free(copy);
        return err;
    }
    l->path = copy; /* bound: ours to unlink */
    /* Before uv_listen(): nobody can connect with looser permissions. */
    if (chmod(path, 0660) != 0)
        return errno == EPERM ? JV_EPERM : JV_EIO;
    err = err_from_uv(uv_listen(&l->h.stream, HTTP_BACKLOG, on_connection));
    if (!err)
        snprintf(name, namelen, "unix:%s", path);
    return err;
}

/* -- public API ----------------------------------------------------------- */

void jv_http_opts_default(jv_http_opts *o)
{
    memset(o, 0, sizeof(*o)); /* fields added later are off */
    o->max_body = 1u << 20;
    o->big_body_path = NULL;
    o->max_big_body = 0;
    o->max_header_bytes = 16u << 10;
    o->max_conns = 4096;
    o->max_conns_per_addr = 2048;
    o->idle_timeout_ms = 60000;
    o->idle_busy_ms = 5000;
    o->header_timeout_ms = 10000;
    o->request_timeout_ms = 10000;
    o->send_timeout_ms = 30000;
    o->stream_buffer = 32u << 20;
}

static bool opts_ok(const jv_http_opts *o)
{
    return o->max_conns && o->max_conns_per_addr &&
           o->max_header_bytes >= 2 * HTTP_LINE_BYTES && o->idle_timeout_ms &&
           o->idle_busy_ms && o->header_timeout_ms && o->request_timeout_ms &&
           o->send_timeout_ms && o->stream_buffer;
}

jv_err jv_http_server_new(uv_loop_t *loop, const jv_http_opts *o,
                          jv_http_handler handler, void *arg,
                          jv_http_server **out)
{
    jv_http_opts def;
    jv_http_server *s = NULL;

    if (!loop || !handler || !out)
        return JV_EINVAL;
    if (!o) {
        jv_http_opts_default(&def);
        o = &def;
    }
    if (!opts_ok(o))
        return JV_EINVAL;
    s = jv_calloc(1, sizeof(*s));
    if (!s)
        goto fail;
    s->rbuf = jv_malloc(HTTP_READ_SIZE);
    if (!s->rbuf)
        goto fail;
    s->loop = loop;
    s->o = *o;
    s->handler = handler;
    s->arg = arg;
    uv_timer_init(loop, &s->timer);
    uv_unref((uv_handle_t *)&s->timer); /* retries alone keep no loop alive */
    s->timer.data = s;
    uv_idle_init(loop, &s->flush);
    s->flush.data = s;
    s->nhandles = 2;
    *out = s;
    return JV_OK;
fail:
    if (s)
        jv_free(s->rbuf);
    jv_free(s);
    return JV_ENOMEM;
}

jv_err jv_http_listen(jv_http_server *s, const char *addr, char *bound,
                      size_t boundlen)
{
    char name[sizeof(((struct sockaddr_un *)NULL)->sun_path) + 16] = "";
    http_listener *l;
    jv_err err;

    if (!s || !addr || (bound && boundlen == 0))
        return JV_EINVAL;
    if (s->stopping)
        return JV_ESTATE;
    l = jv_calloc(1, sizeof(*l));
    if (!l)
        return JV_ENOMEM;
    l->s = s;
    l->is_unix = strncmp(addr, "unix:", 5) == 0;
    if (l->is_unix)
        err = listen_unix(l, addr + 5, name, sizeof(name));
    else
        err = listen_tcp(l, addr, name, sizeof(name));
    if (!err && bound && strlen(name) >= boundlen)
        err = JV_EINVAL;
    if (err)
        goto fail;
    if (bound)
        memcpy(bound, name, strlen(name) + 1);
    l->next = s->listeners;
    s->listeners = l;
    return JV_OK;
fail:
    if (l->h.handle.data) /* the handle was initialized: free it when closed */
        listener_close(l);
    else
        jv_free(l);
    return err;
}

void jv_http_stop_accepting(jv_http_server *s)
{
    http_conn *c, *next;
    if (!s || s->stopping)
        return;
    s->stopping = true;
    for (http_listener *l = s->listeners; l; l = l->next)
        listener_close(l);
    for (c = s->conns; c; c = next) {
        next = c->next;
        if (conn_idle(c))
            conn_close(c);
    }
}

size_t jv_http_inflight(const jv_http_server *s)
{
    return s->inflight;
}

size_t jv_http_writing(const jv_http_server *s)
{
    size_t n = 0;
    for (const http_conn *c = s->conns; c; c = c->next)
        n += c->writing || c->streaming;
    return n;
}

void jv_http_stats_get(const jv_http_server *s, jv_http_stats *out)
{
    *out = s->stats;
}

size_t jv_http_conns(const jv_http_server *s)
{
    return conns_open(s);
}

void jv_http_server_close(jv_http_server *s, void (*done)(void *), void *arg)
{
    if (!s || s->closing)
        return;
    s->closing = true;
    s->stopping = true;
    s->done = done;
    s->done_arg = arg;
    for (http_listener *l = s->listeners; l; l = l->next)
        listener_close(l);
    while (s->conns)
        conn_close(s->conns);
    /* The flush handle closes now: drop the written list's references. */
    while (s->written) {
        http_conn *c = s->written;
        s->written = c->next_written;
        c->next_written = NULL;
        c->writing = false;
        conn_unref(c);
    }
    uv_close((uv_handle_t *)&s->flush, on_server_handle_closed);
    /* Always closed last, so done() runs from a close callback, never from
     * inside this call. */
    uv_close((uv_handle_t *)&s->timer, on_server_handle_closed);
}

const char *jv_http_method(const jv_http_req *r)
{
    return http_method_str((enum http_method)r->method);
}

jv_str jv_http_path(const jv_http_req *r)
{
    jv_str p = {(const char *)r->head.data, r->path_len};
    return p;
}

jv_str jv_http_query(const jv_http_req *r)
{
    jv_str q = {"", 0};
    if (r->query_len) {
        q.p = (const char *)r->head.data + r->query_off;
        q.n = r->query_len;
    }
    return q;
}

jv_str jv_http_header(const jv_http_req *r, const char *name)
{
    jv_str v = {"", 0};
    size_t n = strlen(name);
    const char *head = (const char *)r->head.data;
    for (unsigned i = 0; i < r->nfields; i++) {
        const http_field *f = &r->fields[i];
        if (f->name_len != n || strncasecmp(head + f->name_off, name, n))
            continue;
        if (f->val_len) {
            v.p = head + f->val_off;
            v.n = f->val_len;
            /* http-parser skips leading whitespace, not trailing. */
            while (v.n && (v.p[v.n - 1] == ' ' || v.p[v.n - 1] == '\t'))
                v.n--;
        }
        break;
    }
    return v;
}

const uint8_t *jv_http_body(const jv_http_req *r, size_t *len)
{
    *len = r->body.len;
    return r->body.len ? r->body.data : (const uint8_t *)"";
}

const char *jv_http_remote(const jv_http_req *r)
{
    return r->conn->remote;
}

uint64_t jv_http_start_ns(const jv_http_req *r)
{
    return r->start_ns;
}

void jv_http_respond(jv_http_req *r, int status, const char *content_type,
                     const char *headers, const void *body, size_t len)
{
    http_conn *c = r->conn;
    jv_http_server *s = c->s;
    c->held = false;
    s->inflight--;
    /* A closed connection's client is gone: the answer goes nowhere. */
    if (!c->closing)
        conn_write(c, status, content_type, headers, body, len);
    conn_unref(c); /* the handler's; may free the connection and server */
}

jv_err jv_http_detach(jv_http_req *r, int status, const char *content_type,
                      const char *headers, jv_buf *head, int *fd, bool *is_unix,
                      bool *chunked)
{
    http_conn *c = r->conn;
    jv_http_server *s = c->s;
    uv_os_fd_t own;
    jv_err err = JV_OK;
    c->held = false;
    s->inflight--;
    *fd = -1;
    if (c->closing || c->writing) {
        /* Cannot happen while the handler holds the request; were it
         * written to meanwhile, the client would wait for nothing. */
        conn_close(c);
        err = JV_ECLOSED;
        goto out;
    }
    if (uv_fileno(&c->h.handle, &own) != 0 ||
        (*fd = fcntl(own, F_DUPFD_CLOEXEC, 0)) < 0) {
        err = JV_ENET;
        conn_close(c);
        goto out;
    }
    /* The new owner closes the connection when its answer ends. */
    c->close_after = true;
    c->stream_chunked = c->http11;
    conn_head(c, status, content_type, headers, SIZE_MAX);
    c->stream_chunked = false;
    jv_buf_reset(head);
    jv_buf_append(head, c->out.data, c->out.len);
    jv_buf_reset(&c->out);
    *is_unix = c->h.handle.type == UV_NAMED_PIPE;
    *chunked = c->http11;
    if (jv_buf_err(head)) {
        close(*fd);
        *fd = -1;
        err = JV_ENOMEM;
    }
    /* Closes our descriptor only: the socket lives on in the copy. */
    conn_close(c);
out:
    conn_unref(c); /* the handler's */
    return err;
}

void jv_http_respond_stream(jv_http_req *r, int status,
                            const char *content_type, const char *headers,
                            jv_http_pull_fn pull, jv_http_end_fn end, void *arg)
{
    http_conn *c = r->conn;
    jv_http_server *s = c->s;
    c->held = false;
    s->inflight--;
    if (c->closing) {
        end(arg, false);
        conn_unref(c);
        return;
    }
    if (status < 100 || status > 999)
        status = 500;
    c->streaming = true;
    c->stream_head = c->stream_last = c->stream_wait = false;
    c->stream_status = status;
    c->pull = pull;
    c->pull_end = end;
    c->pull_arg = arg;
    c->stream_type =
        content_type ? jv_strndup(content_type, strlen(content_type)) : NULL;
    c->stream_headers = headers ? jv_strndup(headers, strlen(headers)) : NULL;
    if ((content_type && !c->stream_type) || (headers && !c->stream_headers)) {
        conn_close(c); /* ends the stream */
    } else {
        c->refs++;
        stream_next(c);
        conn_unref(c);
    }
    conn_unref(c); /* the handler's */
}

void jv_http_stream_resume(jv_http_stream *st)
{
    http_conn *c = (http_conn *)st;
    if (!c->stream_wait || c->closing)
        return;
    c->refs++;
    stream_next(c);
    conn_unref(c);
}

static int hexval(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Replaces out's contents with s decoded, NUL-terminated (the NUL is not
 * counted in out->len); `plus` turns '+' into a space (query strings). */
static jv_err unescape(jv_str s, bool plus, jv_buf *out)
{
    size_t k = 0;
    jv_buf_reset(out);
    if (jv_buf_reserve(out, s.n + 1))
        return JV_ENOMEM;
    for (size_t i = 0; i < s.n; i++) {
        int ch = (unsigned char)s.p[i];
        if (ch == '%') {
            int hi = i + 2 < s.n ? hexval((unsigned char)s.p[i + 1]) : -1;
            int lo = i + 2 < s.n ? hexval((unsigned char)s.p[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                goto bad;
            ch = hi << 4 | lo;
            i += 2;
        } else if (ch == '+' && plus) {
            ch = ' ';
        }
        /* A NUL would cut the C string short of what was checked. */
        if (ch == 0)
            goto bad;
        out->data[k++] = (uint8_t)ch;
    }
    out->data[k] = '\0';
    out->len = k;
    return JV_OK;
bad:
    out->data[0] = '\0';
    out->len = 0;
    return JV_EINVAL;
}

jv_err jv_http_unescape(jv_str s, jv_buf *out)
{
    if (!out)
        return JV_EINVAL;
    return unescape(s, false, out);
}

/* Whether a query key, decoded ('+' as space), is `name`; decoded on the
 * fly so that out is left alone unless the key matches. A key that does
 * not decode matches nothing. */
static bool key_is(jv_str key, const char *name, size_t nlen)
{
    size_t j = 0;
    for (size_t i = 0; i < key.n; i++, j++) {
        int ch = (unsigned char)key.p[i];
        if (ch == '%') {
            int hi = i + 2 < key.n ? hexval((unsigned char)key.p[i + 1]) : -1;
            int lo = i + 2 < key.n ? hexval((unsigned char)key.p[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return false;
            ch = hi << 4 | lo;
            i += 2;
        } else if (ch == '+') {
            ch = ' ';
        }
        if (ch == 0 || j == nlen || ch != (unsigned char)name[j])
            return false;
    }
    return j == nlen;
}

jv_err jv_http_query_param(jv_str query, const char *name, jv_buf *out)
{
    size_t nlen, i = 0;
    if (!name || !out)
        return JV_EINVAL;
    nlen = strlen(name);
    while (i < query.n) {
        const char *seg = query.p + i, *eq;
        size_t end = i, slen;
        while (end < query.n && query.p[end] != '&')
            end++;
        slen = end - i;
        i = end + 1;
        eq = memchr(seg, '=', slen);
        jv_str key = {seg, eq ? (size_t)(eq - seg) : slen};
        if (!key_is(key, name, nlen))
            continue;
        jv_str val = {eq ? eq + 1 : seg + slen, eq ? slen - key.n - 1 : 0};
        return unescape(val, true, out);
    }
    return JV_ENOTFOUND;
}

const char *jv_http_reason(int status)
{
    /* http-parser's table of registered codes and phrases. */
    switch (status) {
#define JV_HTTP_REASON(num, name, string) \
    case num:                             \
        return #string;
        HTTP_STATUS_MAP(JV_HTTP_REASON)
#undef JV_HTTP_REASON
    default:
        return "Unknown";
    }
}

jv_err jv_http_set_limits(jv_http_server *s, const jv_http_opts *o)
{
    if (!s || !o || !opts_ok(o))
        return JV_EINVAL;
    size_t (*handed_over)(void *) = s->o.handed_over;
    void *handed_over_arg = s->o.handed_over_arg;
    s->o = *o;
    if (!o->handed_over) {
        s->o.handed_over = handed_over;
        s->o.handed_over_arg = handed_over_arg;
    }
    /* A larger stream budget lets queued streams go on now, not only
     * when another one ends. */
    if (s->q_head && s->stream_bytes < s->o.stream_buffer && !s->closing)
        uv_idle_start(&s->flush, on_flush);
    return JV_OK;
}
