/*
 * http_test.c - the HTTP/1.1 server against plain blocking sockets.
 *
 * The server runs on a libuv loop in a background thread; everything that
 * touches it from the test goes through on_loop(), which runs a function on
 * the loop thread and waits for it. Clients are blocking sockets with
 * receive timeouts, so every byte on the wire is the test's choice.
 *
 * The handler picks its behaviour from the query string: "hold=1" keeps the
 * request for the test to answer, "delay=N" answers from a timer N ms
 * later, anything else is answered at once with an echo of the request.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <uv.h>

#include "alloc.h"
#include "http.h"

#define RECV_TIMEOUT_S 5
#define MAX_HELD       8

typedef struct fx fx;
typedef void (*loop_fn)(fx *f, void *arg);

struct fx {
    uv_loop_t loop;
    uv_thread_t thread;
    uv_async_t async;
    uv_mutex_t mu;
    uv_cond_t cv;
    loop_fn call;
    void *call_arg;
    unsigned call_seq, done_seq;
    jv_http_server *srv;
    char bound[160];
    int port;
    /* loop thread only (read through on_loop) */
    jv_http_req *held[MAX_HELD];
    int nheld;
    int nrequests;
    int done_calls;
};

/* -- running things on the loop thread ------------------------------------ */

static void on_async(uv_async_t *a)
{
    fx *f = a->data;
    loop_fn fn;
    void *arg;
    uv_mutex_lock(&f->mu);
    fn = f->call;
    arg = f->call_arg;
    uv_mutex_unlock(&f->mu);
    if (fn)
        fn(f, arg);
    uv_mutex_lock(&f->mu);
    f->call = NULL;
    f->done_seq = f->call_seq;
    uv_cond_broadcast(&f->cv);
    uv_mutex_unlock(&f->mu);
}

static void on_loop(fx *f, loop_fn fn, void *arg)
{
    unsigned seq;
    uv_mutex_lock(&f->mu);
    f->call = fn;
    f->call_arg = arg;
    seq = ++f->call_seq;
    uv_mutex_unlock(&f->mu);
    uv_async_send(&f->async);
    uv_mutex_lock(&f->mu);
    while (f->done_seq < seq)
        uv_cond_wait(&f->cv, &f->mu);
    uv_mutex_unlock(&f->mu);
}

static void loop_main(void *arg)
{
    fx *f = arg;
    uv_run(&f->loop, UV_RUN_DEFAULT);
}

/* -- the handler ---------------------------------------------------------- */

static void echo(jv_http_req *r)
{
    jv_str path = jv_http_path(r), query = jv_http_query(r);
    jv_str xt = jv_http_header(r, "x-test");
    size_t blen;
    const uint8_t *b = jv_http_body(r, &blen);
    char head[1024];
    int n = snprintf(head, sizeof(head),
                     "method=%s path=%.*s query=%.*s x-test=%.*s remote=%s "
                     "len=%zu\n",
                     jv_http_method(r), (int)path.n, path.p, (int)query.n,
                     query.p, (int)xt.n, xt.p, jv_http_remote(r), blen);
    char *out = jv_malloc((size_t)n + blen);
    if (!out) {
        jv_http_respond(r, 500, NULL, NULL, NULL, 0);
        return;
    }
    memcpy(out, head, (size_t)n);
    memcpy(out + n, b, blen);
    jv_http_respond(r, 200, "text/plain", "X-Echo: yes\r\n", out,
                    (size_t)n + blen);
    jv_free(out);
}

typedef struct {
    uv_timer_t t;
    jv_http_req *r;
} later;

static void free_later(uv_handle_t *h)
{
    jv_free(h->data);
}

static void on_later(uv_timer_t *t)
{
    later *l = t->data;
    echo(l->r);
    uv_close((uv_handle_t *)t, free_later);
}

/* "stream=N": N bytes of a known pattern, pulled 1000 at a time. */
typedef struct {
    size_t left, at;
    int *ended; /* 1: complete, 2: cut short */
} streamer;

static char pattern_at(size_t i)
{
    return (char)('a' + (i * 7 + i / 1000) % 26);
}

static jv_http_pull stream_pull(void *arg, jv_http_stream *st, jv_buf *out)
{
    streamer *p = arg;
    char piece[1000];
    size_t n = p->left < sizeof(piece) ? p->left : sizeof(piece);
    (void)st;
    for (size_t i = 0; i < n; i++)
        piece[i] = pattern_at(p->at + i);
    jv_buf_append(out, piece, n);
    p->at += n;
    p->left -= n;
    return p->left ? JV_HTTP_MORE : JV_HTTP_END;
}

static void stream_done(void *arg, bool complete)
{
    streamer *p = arg;
    *p->ended = complete ? 1 : 2;
    jv_free(p);
}

static int stream_ended; /* loop thread; read after fx_wait */

static void handler(void *arg, jv_http_req *r)
{
    fx *f = arg;
    jv_buf v;
    f->nrequests++;
    jv_buf_init(&v);
    if (jv_http_query_param(jv_http_query(r), "stream", &v) == JV_OK) {
        streamer *p = jv_calloc(1, sizeof(*p));
        p->left = strtoull((char *)v.data, NULL, 10);
        p->ended = &stream_ended;
        jv_http_respond_stream(r, 200, "text/plain", "X-Streamed: 1\r\n",
                               stream_pull, stream_done, p);
    } else if (jv_http_query_param(jv_http_query(r), "hold", &v) == JV_OK &&
               f->nheld < MAX_HELD) {
        f->held[f->nheld++] = r;
    } else if (jv_http_query_param(jv_http_query(r), "delay", &v) == JV_OK) {
        later *l = jv_calloc(1, sizeof(*l));
        if (!l) {
            jv_http_respond(r, 500, NULL, NULL, NULL, 0);
        } else {
            l->r = r;
            uv_timer_init(&f->loop, &l->t);
            l->t.data = l;
            uv_timer_start(&l->t, on_later, strtoull((char *)v.data, NULL, 10),
                           0);
        }
    } else {
        echo(r);
    }
    jv_buf_fini(&v);
}

/* -- fixture -------------------------------------------------------------- */

static int port_of(const char *bound)
{
    const char *colon = strrchr(bound, ':');
    return colon ? atoi(colon + 1) : 0;
}

static fx *fx_start(const jv_http_opts *o, const char *addr)
{
    fx *f = jv_calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(uv_mutex_init(&f->mu), 0);
    assert_int_equal(uv_cond_init(&f->cv), 0);
    assert_int_equal(uv_async_init(&f->loop, &f->async, on_async), 0);
    f->async.data = f;
    assert_int_equal(jv_http_server_new(&f->loop, o, handler, f, &f->srv),
                     JV_OK);
    /* The loop does not run yet: calling in from here is safe. */
    assert_int_equal(jv_http_listen(f->srv, addr, f->bound, sizeof(f->bound)),
                     JV_OK);
    f->port = port_of(f->bound);
    assert_int_equal(uv_thread_create(&f->thread, loop_main, f), 0);
    return f;
}

static void on_done(void *arg)
{
    fx *f = arg;
    f->done_calls++;
}

static void do_close(fx *f, void *arg)
{
    (void)arg;
    jv_http_server_close(f->srv, on_done, f);
    uv_close((uv_handle_t *)&f->async, NULL);
}

/* Closes the server and ends the loop thread; true when done() was called
 * exactly once. */
static bool fx_finish(fx *f)
{
    on_loop(f, do_close, NULL);
    uv_thread_join(&f->thread);
    return f->done_calls == 1;
}

static void fx_free(fx *f)
{
    assert_int_equal(uv_loop_close(&f->loop), 0);
    uv_cond_destroy(&f->cv);
    uv_mutex_destroy(&f->mu);
    jv_free(f);
}

static void fx_stop(fx *f)
{
    assert_true(fx_finish(f));
    fx_free(f);
}

typedef struct {
    size_t conns, inflight;
    int nheld, nrequests;
} counts;

static void get_counts(fx *f, void *arg)
{
    counts *c = arg;
    c->conns = jv_http_conns(f->srv);
    c->inflight = jv_http_inflight(f->srv);
    c->nheld = f->nheld;
    c->nrequests = f->nrequests;
}

static void get_stats(fx *f, void *arg)
{
    jv_http_stats_get(f->srv, arg);
}

static counts fx_counts(fx *f)
{
    counts c;
    on_loop(f, get_counts, &c);
    return c;
}

/* Waits up to 5 s for the server to show these numbers. */
static bool fx_wait(fx *f, size_t conns, size_t inflight)
{
    for (int i = 0; i < 2500; i++) {
        counts c = fx_counts(f);
        if (c.conns == conns && c.inflight == inflight)
            return true;
        usleep(2000);
    }
    return false;
}

typedef struct {
    int status;
    const char *headers;
    const char *body;
    size_t len;
} answer;

/* Answers the oldest held request. */
static void answer_held(fx *f, void *arg)
{
    answer *a = arg;
    jv_http_req *r = f->held[0];
    memmove(f->held, f->held + 1, (size_t)(f->nheld - 1) * sizeof(f->held[0]));
    f->nheld--;
    jv_http_respond(r, a->status, "text/plain", a->headers, a->body, a->len);
}

static void respond_held(fx *f, const char *body)
{
    answer a = {200, NULL, body, strlen(body)};
    on_loop(f, answer_held, &a);
}

static jv_http_opts small_opts(void)
{
    jv_http_opts o;
    jv_http_opts_default(&o);
    o.max_body = 1024;
    o.max_header_bytes = 1024;
    return o;
}

/* -- client --------------------------------------------------------------- */

typedef struct {
    int fd;
    size_t len;
    char buf[1 << 17];
} cli;

typedef struct {
    int status;
    char head[4096];
    char body[8192];
    size_t body_len;
} resp;

static int with_timeouts(int fd)
{
    struct timeval tv = {RECV_TIMEOUT_S, 0};
    if (fd < 0)
        return fd;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    return fd;
}

/* -1 with errno set when the connection fails. */
static int tcp_connect(int family, int port)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int fd = socket(family, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    memset(&ss, 0, sizeof(ss));
    if (family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        a->sin6_addr = in6addr_loopback;
        len = sizeof(*a);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof(*a);
    }
    /* Small writes leave at once: fragmented requests stay fragmented. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
    if (connect(fd, (struct sockaddr *)&ss, len) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return with_timeouts(fd);
}

static int unix_connect(const char *path)
{
    struct sockaddr_un sa;
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return with_timeouts(fd);
}

static cli *cli_new(int fd)
{
    cli *c;
    assert_true(fd >= 0);
    c = jv_calloc(1, sizeof(*c));
    assert_non_null(c);
    c->fd = fd;
    return c;
}

static cli *cli_tcp(fx *f)
{
    return cli_new(tcp_connect(AF_INET, f->port));
}

static void cli_free(cli *c)
{
    if (c->fd >= 0)
        close(c->fd);
    jv_free(c);
}

static void cli_sendn(cli *c, const void *p, size_t n)
{
    const char *s = p;
    while (n > 0) {
        ssize_t k = send(c->fd, s, n, MSG_NOSIGNAL);
        assert_true(k > 0);
        s += k;
        n -= (size_t)k;
    }
}

static void cli_send(cli *c, const char *s)
{
    cli_sendn(c, s, strlen(s));
}

/* Reads more into the buffer: > 0 bytes, 0 at EOF, -1 on error/timeout. */
static ssize_t cli_fill(cli *c)
{
    ssize_t k;
    if (c->len == sizeof(c->buf))
        return -1;
    k = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
    if (k > 0)
        c->len += (size_t)k;
    return k;
}

static const char *find_crlf2(const char *p, size_t n)
{
    for (size_t i = 0; i + 4 <= n; i++) {
        if (memcmp(p + i, "\r\n\r\n", 4) == 0)
            return p + i;
    }
    return NULL;
}

/* A header's value in a response head, or NULL. */
static const char *resp_header(const resp *r, const char *name, char *val,
                               size_t vlen)
{
    size_t n = strlen(name);
    const char *line = strstr(r->head, "\r\n");
    while (line && line[2] != '\0') {
        line += 2;
        if (strncasecmp(line, name, n) == 0 && line[n] == ':') {
            const char *v = line + n + 1, *end = strstr(v, "\r\n");
            while (*v == ' ')
                v++;
            snprintf(val, vlen, "%.*s", (int)(end - v), v);
            return val;
        }
        line = strstr(line, "\r\n");
    }
    return NULL;
}

/* Reads one response; false on EOF or timeout before it is complete. */
static bool cli_recv(cli *c, resp *r)
{
    const char *end;
    char cl[32];
    size_t head_len, body_len = 0;
    memset(r, 0, sizeof(*r));
    while (!(end = find_crlf2(c->buf, c->len))) {
        if (cli_fill(c) <= 0)
            return false;
    }
    head_len = (size_t)(end - c->buf) + 4;
    if (head_len >= sizeof(r->head))
        return false;
    memcpy(r->head, c->buf, head_len);
    r->head[head_len] = '\0';
    if (sscanf(r->head, "HTTP/1.1 %d ", &r->status) != 1)
        return false;
    if (resp_header(r, "Content-Length", cl, sizeof(cl)))
        body_len = strtoul(cl, NULL, 10);
    if (body_len >= sizeof(r->body))
        return false;
    while (c->len < head_len + body_len) {
        if (cli_fill(c) <= 0)
            return false;
    }
    memcpy(r->body, c->buf + head_len, body_len);
    r->body[body_len] = '\0';
    r->body_len = body_len;
    memmove(c->buf, c->buf + head_len + body_len, c->len - head_len - body_len);
    c->len -= head_len + body_len;
    return true;
}

/* True when the server closed the connection (EOF or reset) and sent
 * nothing more. */
static bool cli_closed(cli *c)
{
    char b[64];
    ssize_t k;
    if (c->len > 0)
        return false;
    k = recv(c->fd, b, sizeof(b), 0);
    return k == 0 || (k < 0 && errno == ECONNRESET);
}

static bool resp_has(const resp *r, const char *name, const char *want)
{
    char v[256];
    return resp_header(r, name, v, sizeof(v)) && strcmp(v, want) == 0;
}

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000;
}

/* One request, one response, on a fresh connection. */
static void roundtrip(fx *f, const char *req, resp *r)
{
    cli *c = cli_tcp(f);
    cli_send(c, req);
    assert_true(cli_recv(c, r));
    cli_free(c);
}

static void assert_error(const resp *r, int status, const char *code)
{
    char want[96];
    assert_int_equal(r->status, status);
    assert_true(resp_has(r, "Content-Type", "application/json"));
    assert_true(resp_has(r, "Connection", "close"));
    snprintf(want, sizeof(want), "{\"error\":{\"code\":\"%s\",", code);
    assert_true(strncmp(r->body, want, strlen(want)) == 0);
}

#define GET(path) "GET " path " HTTP/1.1\r\nHost: t\r\n\r\n"

/* -- tests ---------------------------------------------------------------- */

static void test_get_and_post(void **state)
{
    fx *f = fx_start(NULL, "127.0.0.1:0");
    cli *c = cli_tcp(f);
    resp r;
    char want[256], remote[64];
    (void)state;

    cli_send(c, "GET /echo/a%20b?x=1&y=two HTTP/1.1\r\nHost: t\r\n"
                "X-Test: Hello\r\n\r\n");
    assert_true(cli_recv(c, &r));
    assert_int_equal(r.status, 200);
    assert_true(strncmp(r.head, "HTTP/1.1 200 OK\r\n", 17) == 0);
    assert_true(resp_has(&r, "Content-Type", "text/plain"));
    assert_true(resp_has(&r, "Connection", "keep-alive"));
    assert_true(resp_has(&r, "X-Echo", "yes"));
    /* The remote address is the client's own. */
    {
        struct sockaddr_in me;
        socklen_t len = sizeof(me);
        assert_int_equal(getsockname(c->fd, (struct sockaddr *)&me, &len), 0);
        snprintf(remote, sizeof(remote), "127.0.0.1:%u",
                 (unsigned)ntohs(me.sin_port));
    }
    snprintf(want, sizeof(want),
             "method=GET path=/echo/a%%20b query=x=1&y=two x-test=Hello "
             "remote=%s len=0\n",
             remote);
    assert_string_equal(r.body, want);

    /* Header names are case-insensitive; trailing blanks are not part of
     * the value. */
    cli_send(c, "POST /data HTTP/1.1\r\nHost: t\r\nx-TEST:   spaced  \r\n"
                "Content-Length: 11\r\n\r\nhello world");
    assert_true(cli_recv(c, &r));
    assert_int_equal(r.status, 200);
    snprintf(want, sizeof(want),
             "method=POST path=/data query= x-test=spaced remote=%s "
             "len=11\nhello world",
             remote);
    assert_string_equal(r.body, want);

    cli_free(c);
    fx_stop(f);
}

static void test_head_has_no_body(void **state)
{
    fx *f = fx_start(NULL, "127.0.0.1:0");
    cli *c = cli_tcp(f);
    char buf[4096];
    size_t got = 0;
    (void)state;
    cli_send(c, "HEAD /h HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    for (;;) {
        ssize_t k = recv(c->fd, buf + got, sizeof(buf) - 1 - got, 0);
        assert_true(k >= 0);
        if (k == 0)
            break;
        got += (size_t)k;
    }
    buf[got] = '\0';
    /* The length of the body a GET would get, and no body. */
    {
        struct sockaddr_in me;
        socklen_t len = sizeof(me);
        char echo[256], cl[64];
        assert_int_equal(getsockname(c->fd, (struct sockaddr *)&me, &len), 0);
        int n = snprintf(echo, sizeof(echo),
                         "method=HEAD path=/h query= x-test= "
                         "remote=127.0.0.1:%u len=0\n",
                         (unsigned)ntohs(me.sin_port));
        snprintf(cl, sizeof(cl), "\r\nContent-Length: %d\r\n", n);
        assert_non_null(strstr(buf, cl));
    }
    assert_true(strncmp(buf, "HTTP/1.1 200 OK\r\n", 17) == 0);
    assert_true(strcmp(buf + got - 4, "\r\n\r\n") == 0);
    cli_free(c);
    fx_stop(f);
}

static void test_unescape_and_query(void **state)
{
    jv_buf b;
    (void)state;
    jv_buf_init(&b);

    assert_int_equal(jv_http_unescape(jv_str_c("a%20b%2Fc+d"), &b), JV_OK);
    assert_string_equal((char *)b.data, "a b/c+d");
    assert_int_equal(b.len, 7);
    assert_int_equal(jv_http_unescape(jv_str_c("%41%6a%6A"), &b), JV_OK);
    assert_string_equal((char *)b.data, "Ajj");
    assert_int_equal(jv_http_unescape(jv_str_c(""), &b), JV_OK);
    assert_int_equal(b.len, 0);
    assert_string_equal((char *)b.data, "");
    const char *bad[] = {"%", "%4", "abc%", "%zz", "%g0", "%0g", "a%00b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(jv_http_unescape(jv_str_c(bad[i]), &b), JV_EINVAL);
    jv_str nul = {"a\0b", 3};
    assert_int_equal(jv_http_unescape(nul, &b), JV_EINVAL);
    /* Replaces, does not append. */
    assert_int_equal(jv_http_unescape(jv_str_c("x"), &b), JV_OK);
    assert_int_equal(jv_http_unescape(jv_str_c("yz"), &b), JV_OK);
    assert_string_equal((char *)b.data, "yz");

    jv_str q = jv_str_c("a=1&b=two+words&c=%2B&empty=&flag&x%20y=3&a=2&"
                        "bad=%zz&nul=%00&p%2=4");
    assert_int_equal(jv_http_query_param(q, "a", &b), JV_OK);
    assert_string_equal((char *)b.data, "1");
    assert_int_equal(jv_http_query_param(q, "b", &b), JV_OK);
    assert_string_equal((char *)b.data, "two words");
    assert_int_equal(jv_http_query_param(q, "c", &b), JV_OK);
    assert_string_equal((char *)b.data, "+");
    assert_int_equal(jv_http_query_param(q, "empty", &b), JV_OK);
    assert_int_equal(b.len, 0);
    assert_int_equal(jv_http_query_param(q, "flag", &b), JV_OK);
    assert_int_equal(b.len, 0);
    assert_int_equal(jv_http_query_param(q, "x y", &b), JV_OK);
    assert_string_equal((char *)b.data, "3");
    assert_int_equal(jv_http_query_param(q, "bad", &b), JV_EINVAL);
    assert_int_equal(jv_http_query_param(q, "nul", &b), JV_EINVAL);
    /* Not found: out keeps what it had. */
    assert_int_equal(jv_http_query_param(q, "a", &b), JV_OK);
    assert_int_equal(jv_http_query_param(q, "missing", &b), JV_ENOTFOUND);
    assert_int_equal(jv_http_query_param(q, "x%20y", &b), JV_ENOTFOUND);
    assert_string_equal((char *)b.data, "1");
    assert_int_equal(jv_http_query_param(q, "fla", &b), JV_ENOTFOUND);
    /* A key that does not decode matches nothing. */
    assert_int_equal(jv_http_query_param(q, "p%2", &b), JV_ENOTFOUND);
    assert_int_equal(jv_http_query_param(jv_str_c(""), "a", &b), JV_ENOTFOUND);
    assert_int_equal(jv_http_query_param(jv_str_c("&&a=5&"), "a", &b), JV_OK);
    assert_string_equal((char *)b.data, "5");

    assert_string_equal(jv_http_reason(200), "OK");
    assert_string_equal(jv_http_reason(404), "Not Found");
    assert_string_equal(jv_http_reason(431), "Request Header Fields Too Large");
    assert_string_equal(jv_http_reason(203), "Non-Authoritative Information");
    assert_string_equal(jv_http_reason(299), "Unknown");
    jv_buf_fini(&b);
}

static void test_keep_alive(void **state)
{
    fx *f = fx_start(NULL, "127.0.0.1:0");
    cli *c = cli_tcp(f);
    resp r;
    char want[64];
    (void)state;
    for (int i = 0; i < 5; i++) {
        char req[128];
        snprintf(req, sizeof(req), "GET /k/%d HTTP/1.1\r\nHost: t\r\n\r\n", i);
        cli_send(c, req);
        assert_true(cli_recv(c, &r));
        assert_int_equal(r.status, 200);
        assert_true(resp_has(&r, "Connection", "keep-alive"));
        snprintf(want, sizeof(want), "method=GET path=/k/%d ", i);
        assert_true(strncmp(r.body, want, strlen(want)) == 0);
    }
    counts n = fx_counts(f);
    assert_int_equal(n.conns, 1);
    assert_int_equal(n.nrequests, 5);
    cli_free(c);
    assert_true(fx_wait(f, 0, 0));
    fx_stop(f);
}

static void test_pipelined(void **state)
{
    fx *f = fx_start(NULL, "127.0.0.1:0");
    cli *c = cli_tcp(f);
    char req[8192], want[64];
    size_t n = 0;
    resp r;
    (void)state;
    for (int i = 0; i < 20; i++) {
        if (i == 7)
            n += (size_t)snprintf(req + n, sizeof(req) - n,
                                  "POST /p/%d HTTP/1.1\r\nHost: t\r\n"
                                  "Content-Length: 5\r\n\r\nabcde",
                                  i);
        else
            n += (size_t)snprintf(req + n, sizeof(req) - n,
                                  "GET /p/%d HTTP/1.1\r\nHost: t\r\n\r\n", i);
    }
    cli_sendn(c, req, n);
    for (int i = 0; i < 20; i++) {
        assert_true(cli_recv(c, &r));
        assert_int_equal(r.status, 200);
        snprintf(want, sizeof(want), "method=%s path=/p/%d ",
                 i == 7 ? "POST" : "GET", i);
        assert_true(strncmp(r.body, want, strlen(want)) == 0);
    }
    cli_free(c);
    fx_stop(f);
}

typedef struct {
    cli *c;
    const char *p;
    size_t n;
} sender;

static void send_main(void *arg)
{
    sender *s = arg;
    size_t off = 0;
    while (off < s->n) {
        ssize_t k = send(s->c->fd, s->p + off, s->n - off, MSG_NOSIGNAL);
        if (k <= 0)
            return;
        off += (size_t)k;
    }
}

/* Far more pipelined input than the server keeps unparsed: it must stop
 * reading, then resume, and answer everything in order. */
static void test_pipelined_many(void **state)
{
    enum {
        N = 5000
    };
    fx *f = fx_start(NULL, "127.0.0.1:0");
    cli *c = cli_tcp(f);
    size_t cap = (size_t)N * 48, n = 0;
    char *req = jv_malloc(cap), want[64];
    uv_thread_t t;
    resp r;
    (void)state;
    assert_non_null(req);
    for (int i = 0; i < N; i++)
        n += (size_t)snprintf(req + n, cap - n,
                              "GET /m/%d HTTP/1.1\r\nHost: t\r\n\r\n", i);
    assert_true(n > 2 * 65536);
    sender s = {c, req, n};
    assert_int_equal(uv_thread_create(&t, send_main, &s), 0);
    for (int i = 0; i < N; i++) {
        assert_true(cli_recv(c, &r));
        snprintf(want, sizeof(want), "method=GET path=/m/%d ", i);
        assert_true(strncmp(r.body, want, strlen(want)) == 0);
    }
    uv_thread_join(&t);
    jv_free(req);
    cli_free(c);
    fx_stop(f);
}

/* Answers that come later, slowest first, still leave in request order. */
static void test_async_pipelined(void **state)
{
    fx *f = fx_start(NULL, "127.0.0.1:0");
    cli *c = cli_tcp(f);
    const int delays[] = {60, 40, 0, 20, 0};
    char req[2048], want[64];
    size_t n = 0;
    resp r;
    uint64_t t0;
    (void)state;
    for (int i = 0; i < 5; i++)
        n += (size_t)snprintf(req + n, sizeof(req) - n,
                              "GET /a/%d?delay=%d HTTP/1.1\r\nHost: t\r\n\r\n",
                              i, delays[i]);
    t0 = now_ms();
    cli_sendn(c, req, n);
    for (int i = 0; i < 5; i++) {
        assert_true(cli_recv(c, &r));
        snprintf(want, sizeof(want), "method=GET path=/a/%d query=delay=%d ", i,
                 delays[i]);
        assert_true(strncmp(r.body, want, strlen(want)) == 0);
    }
    /* One at a time: the delays add up. */
    assert_true(now_ms() - t0 >= 110);
    cli_free(c);
    fx_stop(f);
}

/* Paths under big_body_path take max_big_body instead; others, and
 * paths that only start alike, keep max_body. */
static void test_big_body_path(void **state)
{
    jv_http_opts o = small_opts();
    o.big_body_path = "/big";
    o.max_big_body = 4096;
    fx *f = fx_start(&o, "127.0.0.1:0");
    static const struct {
        const char *path;
        int status;
    } cases[] = {
        {"/big", 200}, {"/big/inspect", 200}, {"/bigger", 413}, {"/b", 413}};
    char req[4096], body[3000];
    resp r;
    (void)state;
    memset(body, 'b', sizeof(body));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cli *c = cli_tcp(f);
        snprintf(req, sizeof(req),
                 "POST %s HTTP/1.1\r\nHost: t\r\nContent-Length: 3000\r\n"
                 "\r\n",
                 cases[i].path);
        cli_send(c, req);
        if (cases[i].status == 200)
            cli_sendn(c, body, sizeof(body));
        assert_true(cli_recv(c, &r));
        assert_int_equal(r.status, cases[i].status);
        if (cases[i].status == 200)
            assert_non_null(strstr(r.body, " len=3000\n"));
        cli_free(c);
    }
    fx_stop(f);
}

static void test_body_limits(void **state)
{
    jv_http_opts o = small_opts();
    fx *f = fx_start(&o, "127.0.0.1:0");
    char req[4096], body[1100];
    resp r;
    cli *c;
    (void)state;
    memset(body, 'b', sizeof(body));

    /* Exactly max_body. */
    c = cli_tcp(f);
    snprintf(req, sizeof(req),
             "POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 1024\r\n\r\n");
    cli_send(c, req);
    cli_sendn(c, body, 1024);
    assert_true(cli_recv(c, &r));
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, " len=1024\n"));
    cli_free(c);

    /* One more: 413, connection closed. */
    c = cli_tcp(f);
    snprintf(req, sizeof(req),
             "POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 1025\r\n\r\n");
    cli_send(c, req);
    cli_sendn(c, body, 1025);
    assert_true(cli_recv(c, &r));
    assert_error(&r, 413, "payload_too_large");
    assert_true(cli_closed(c));
    cli_free(c);

    /* Refused from the declared length alone, before any body byte. */
    c = cli_tcp(f);
    cli_send(c, "POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 999999999\r\n"
                "\r\n");
    assert_true(cli_recv(c, &r));
    assert_error(&r, 413, "payload_too_large");
    assert_true(cli_closed(c));
    cli_free(c);

    /* Chunked, within the bound, decoded. */
    c = cli_tcp(f);
    cli_send(c, "POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
                "\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
    assert_true(cli_recv(c, &r));
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, " len=11\nhello world"));
    cli_free(c);

    /* Chunked, over the bound in small chunks. */
    c = cli_tcp(f);
    cli_send(c, "POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
                "\r\n");
    for (int i = 0; i < 5; i++) {
        cli_send(c, "100\r\n");
        cli_sendn(c, body, 256);
        cli_send(c, "\r\n");
    }
    assert_true(cli_recv(c, &r));
    assert_error(&r, 413, "payload_too_large");
    assert_true(cli_closed(c));
    cli_free(c);

    /* Chunked, one chunk announced over the bound. */
    c = cli_tcp(f);
    cli_send(c, "POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
                "\r\n401\r\n");
    assert_true(cli_recv(c, &r));
    assert_error(&r, 413, "payload_too_large");
    assert_true(cli_closed(c));
    cli_free(c);
    fx_stop(f);
}

static void test_expect_continue(void **state)
{
    jv_http_opts o = small_opts();
    fx *f = fx_start(&o, "127.0.0.1:0");
    resp r;
    cli *c;
    (void)state;

    c = cli_tcp(f);
    cli_send(c, "PUT /e HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
                "Content-Length: 5\r\n\r\n");
    assert_true(cli_recv(c, &r));
    assert_int_equal(r.status, 100);
    assert_string_equal(r.head, "HTTP/1.1 100 Continue\r\n\r\n");
    cli_send(c, "hello");
    assert_true(cli_recv(c, &r));
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, " len=5\nhello"));
    cli_free(c);

    /* Over the bound: 413 at once, no 100. */
    c = cli_tcp(f);
    cli_send(c, "PUT /e HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
                "Content-Length: 5000\r\n\r\n");
    assert_true(cli_recv(c, &r));
    assert_error(&r, 413, "payload_too_large");
    assert_true(cli_closed(c));
    cli_free(c);

    /* HTTP/1.0 clients get no 100. */
    c = cli_tcp(f);
    cli_send(c, "PUT /e HTTP/1.0\r\nExpect: 100-continue\r\n"
                "Content-Length: 2\r\n\r\nok");
    assert_true(cli_recv(c, &r));
    assert_int_equal(r.status, 200);
    cli_free(c);
    fx_stop(f);
}

static void test_headers_too_large(void **state)
{
    jv_http_opts o = small_opts();
    fx *f = fx_start(&o, "127.0.0.1:0");
    char req[8192];
    size_t n;
    resp r;
    (void)state;

    n = (size_t)snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nX-Big: ");
    memset(req + n, 'a', 2000);
    n += 2000;
    snprintf(req + n, sizeof(req) - n, "\r\n\r\n");
    roundtrip(f, req, &r);
    assert_error(&r, 431, "headers_too_large");

    /* The request target counts. */
    n = (size_t)snprintf(req, sizeof(req), "GET /");
    memset(req + n, 'u', 2000);
    n += 2000;
    snprintf(req + n, sizeof(req) - n, " HTTP/1.1\r\n\r\n");
    roundtrip(f, req, &r);
    assert_error(&r, 431, "headers_too_large");

    /* 64 fields pass, 65 do not. */
    for (int fields = 64; fields <= 65; fields++) {
        n = (size_t)snprintf(req, sizeof(req), "GET / HTTP/1.1\r\n");
        for (int i = 0; i < fields; i++)
            n += (size_t)snprintf(req + n, sizeof(req) - n, "H%d: v\r\n", i);
        snprintf(req + n, sizeof(req) - n, "\r\n");
        roundtrip(f, req, &r);
        if (fields == 64)
            assert_int_equal(r.status, 200);
        else
            assert_error(&r, 431, "headers_too_large");
    }
    fx_stop(f);
}

static void test_malformed(void **state)
{
    fx *f = fx_start(NULL, "127.0.0.1:0");
    const char *bad[] = {
        "GARBAGE\r\n\r\n",
        "GET / HTTP/9.x\r\n\r\n",
        "GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n",
        "CONNECT example.com:443 HTTP/1.1\r\nHost: t\r\n\r\n",
        "GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
        ("GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: "
         "chunked\r\n\r\n"),
        "GET / HTTP/1.1\r\nBad Header: v\r\n\r\n",
        "GET / HTTP/1.1\r\nHost : t\r\n\r\n",
    };
    resp r;
    cli *c;
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        c = cli_tcp(f);
        cli_send(c, bad[i]);
        assert_true(cli_recv(c, &r));
        assert_error(&r, 400, "bad_request");
        assert_true(cli_closed(c));
        cli_free(c);
    }
    /* A good request, then garbage on the same connection. */
    c = cli_tcp(f);
    cli_send(c, GET("/ok") "\x01\x02 nonsense\r\n\r\n");
    assert_true(cli_recv(c, &r));
    assert_int_equal(r.status, 200);
    assert_true(cli_recv(c, &r));
    assert_error(&r, 400, "bad_request");
    assert_true(cli_closed(c));
    cli_free(c);
    assert_int_equal(fx_counts(f).nrequests, 1);
    fx_stop(f);
}

static void test_fragmented(void **state)
{
    fx *f = fx_start(NULL, "127.0.0.1:0");
    cli *c = cli_tcp(f);
    const char *req = "POST /frag/ment?q=1 HTTP/1.1\r\nHost: t\r\n"
                      "X-Test: pieces\r\nContent-Length: 3\r\n\r\nxyz";
    resp r;
    (void)state;
    for (const char *p = req; *p; p++) {
        cli_sendn(c, p, 1);
        usleep(200);
    }
    assert_true(cli_recv(c, &r));
    assert_int_equal(r.status, 200);
    assert_true(strncmp(r.body,
                        "method=POST path=/frag/ment query=q=1 x-test=pieces ",
                        52) == 0);
    assert_non_null(strstr(r.body, " len=3\nxyz"));
    cli_free(c);
    fx_stop(f);
}

static void test_connection_close(void **state)
{
    fx *f = fx_start(NULL, "127.0.0.1:0");
    resp r;
    cli *c;
    (void)state;

    c = cli_tcp(f);
    cli_send(c, "GET /a HTTP/1.0\r\n\r\n");
    assert_true(cli_recv(c, &r));
    assert_int_equal(r.status, 200);
    assert_true(resp_has(&r, "Connection", "close"));
    assert_true(cli_closed(c));
    cli_free(c);

    c = cli_tcp(f);
    cli_send(c, "GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_true(cli_recv(c, &r));
    assert_true(resp_has(&r, "Connection", "keep-alive"));
    cli_send(c, "GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_true(cli_recv(c, &r));
    assert_int_equal(r.status, 200);
    cli_free(c);

    /* Whatever follows a "Connection: close" request is not answered. */
    c = cli_tcp(f);
    cli_send(c, "GET /a HTTP/1.1\r\nConnection: close\r\n\r\n" GET("/b"));
    assert_true(cli_recv(c, &r));
    assert_int_equal(r.status, 200);
    assert_true(resp_has(&r, "Connection", "close"));
    assert_true(cli_closed(c));
    cli_free(c);
    assert_true(fx_wait(f, 0, 0));
    fx_stop(f);
}

static void test_request_timeout(void **state)
{
    jv_http_opts o = small_opts();
    fx *f;
    resp r;
    cli *c;
    uint64_t t0;
    (void)state;
    o.request_timeout_ms = 200;
    f = fx_start(&o, "127.0.0.1:0");

    /* Headers never finished. */
    c = cli_tcp(f);
    t0 = now_ms();
    cli_send(c, "GET / HTTP/1.1\r\nHost: t\r\n");
    assert_true(cli_recv(c, &r));
    assert_true(now_ms() - t0 >= 190);
    assert_error(&r, 408, "request_timeout");
    assert_true(cli_closed(c));
    cli_free(c);

    /* Body never finished, though bytes keep coming. */
    c = cli_tcp(f);
    t0 = now_ms();
    cli_send(c, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n");
    for (int i = 0; i < 4; i++) {
        usleep(60000);
        cli_send(c, "x");
    }
    assert_true(cli_recv(c, &r));
    assert_true(now_ms() - t0 >= 190);
    assert_error(&r, 408, "request_timeout");
    assert_true(cli_closed(c));
    cli_free(c);

    /* No timer while the handler holds the request. */
    c = cli_tcp(f);
    cli_send(c, GET("/held?hold=1"));
    assert_true(fx_wait(f, 1, 1));
    usleep(400000);
    respond_held(f, "late");
    assert_true(cli_recv(c, &r));
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "late");
    /* ...and the connection still serves. */
    cli_send(c, GET("/next"));
    assert_true(cli_recv(c, &r));
    assert_int_equal(r.status, 200);
    cli_free(c);
    fx_stop(f);
}

static void test_idle_timeout(void **state)
{
    jv_http_opts o = small_opts();
    fx *f;
    resp r;
    cli *c, *quiet;
    uint64_t t0;
    (void)state;
    o.idle_timeout_ms = 200;
    f = fx_start(&o, "127.0.0.1:0");

    quiet = cli_tcp(f); /* never sends a byte */
    c = cli_tcp(f);
    cli_send(c, GET("/once"));
    assert_true(cli_recv(c, &r));
    assert_int_equal(r.status, 200);
    t0 = now_ms();
    assert_true(cli_closed(c)); /* silently: no 408 */
    assert_true(now_ms() - t0 >= 150);
    assert_true(cli_closed(quiet));
    assert_true(fx_wait(f, 0, 0));
    cli_free(c);
    cli_free(quiet);
    fx_stop(f);
}

static void test_disconnect_while_held(void **state)
{
    fx *f = fx_start(NULL, "127.0.0.1:0");
    cli *c = cli_tcp(f);
    resp r;
    (void)state;

    /* The client leaves, pipelined bytes unread; the server notices while
     * the handler still holds the request. */
    cli_send(c, GET("/gone?hold=1") GET("/never"));
    assert_true(fx_wait(f, 1, 1));
    close(c->fd);
    c->fd = -1;
    assert_true(fx_wait(f, 0, 1));
    respond_held(f, "nobody listens");
    assert_true(fx_wait(f, 0, 0));
    assert_int_equal(fx_counts(f).nrequests, 1);
    cli_free(c);

    /* Still serving. */
    roundtrip(f, GET("/still"), &r);
    assert_int_equal(r.status, 200);
    fx_stop(f);
}

/* The server closed with a request held: done() runs, the request stays
 * valid, and answering it after the loop has ended frees everything. */
static void test_close_while_held(void **state)
{
    fx *f = fx_start(NULL, "127.0.0.1:0");
    cli *c = cli_tcp(f);
    jv_http_req *r;
    (void)state;
    cli_send(c, GET("/held?hold=1"));
    assert_true(fx_wait(f, 1, 1));
    assert_true(fx_finish(f)); /* loop thread gone: safe to call from here */
    assert_int_equal(f->nheld, 1);
    r = f->held[0];
    assert_string_equal(jv_http_method(r), "GET");
    assert_true(jv_str_eq(jv_http_path(r), jv_str_c("/held")));
    assert_true(jv_http_start_ns(r) > 0);
    jv_http_respond(r, 200, NULL, NULL, "x", 1);
    assert_true(cli_closed(c));
    cli_free(c);
    fx_free(f);
}

static void test_max_conns(void **state)
{
    jv_http_opts o = small_opts();
    fx *f;
    resp r;
    cli *a, *b, *extra, *d;
    (void)state;
    o.max_conns = 2;
    f = fx_start(&o, "127.0.0.1:0");

    /* Both idle after their answer: a newcomer evicts the oldest. */
    a = cli_tcp(f);
    cli_send(a, GET("/a"));
    assert_true(cli_recv(a, &r));
    b = cli_tcp(f);
    cli_send(b, GET("/b"));
    assert_true(cli_recv(b, &r));
    extra = cli_tcp(f);
    cli_send(extra, GET("/extra"));
    assert_true(cli_recv(extra, &r));
    assert_int_equal(r.status, 200);
    assert_true(cli_closed(a));
    assert_int_equal(fx_counts(f).conns, 2);
    cli_free(a);
    cli_free(extra);
    assert_true(fx_wait(f, 1, 0));

    /* Nothing waiting (both hold a request): the newcomer is closed. */
    d = cli_tcp(f);
    cli_send(d, GET("/d?hold=1"));
    cli_send(b, GET("/b?hold=1"));
    assert_true(fx_wait(f, 2, 2));
    extra = cli_tcp(f);             /* the kernel completes the handshake... */
    assert_true(cli_closed(extra)); /* ...the server closes it */
    cli_free(extra);
    respond_held(f, "one");
    respond_held(f, "two");
    assert_true(cli_recv(d, &r));
    assert_true(cli_recv(b, &r));
    cli_free(d);
    cli_free(b);
    fx_stop(f);
}

/* One address over its limit loses its own oldest waiting connection,
 * slow heads included, and a slow head is cut off at the header deadline. */
static void test_per_addr_and_slow_head(void **state)
{
    jv_http_opts o = small_opts();
    cli *c[4];
    resp r;
    fx *f;
    (void)state;
    o.max_conns_per_addr = 3;
    o.header_timeout_ms = 2000; /* long enough not to fire before eviction */
    f = fx_start(&o, "127.0.0.1:0");
    for (int i = 0; i < 3; i++)
        c[i] = cli_tcp(f);
    cli_send(c[0], "GET /slow HTTP/1.1\r\nHost: x\r\n"); /* never ends */
    assert_true(fx_wait(f, 3, 0));
    c[3] = cli_tcp(f);
    cli_send(c[3], GET("/new"));
    assert_true(cli_recv(c[3], &r));
    assert_int_equal(r.status, 200);
    assert_true(cli_closed(c[0])); /* the oldest, though it sent a byte */
    assert_true(fx_wait(f, 3, 0));
    /* A slow head on a fresh connection: 408 at the header deadline. */
    cli_free(c[0]);
    c[0] = cli_tcp(f); /* evicts c[1], the oldest now */
    cli_send(c[0], "GET /slow HTTP/1.1\r\nHost: x\r\n");
    assert_true(cli_recv(c[0], &r));
    assert_int_equal(r.status, 408);
    assert_true(cli_closed(c[0]));
    for (int i = 0; i < 4; i++)
        cli_free(c[i]);
    jv_http_stats st;
    on_loop(f, get_stats, &st);
    assert_true(st.evicted >= 2);
    assert_true(st.timed_out >= 1);
    fx_stop(f);
}

static char *find_bytes(char *p, size_t n, const char *what)
{
    size_t k = strlen(what);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(p + i, what, k) == 0)
            return p + i;
    return NULL;
}

/* Reads a chunked body after the head; false when it is malformed. */
static bool cli_chunked(cli *c, char *out, size_t cap, size_t *len)
{
    *len = 0;
    for (;;) {
        char *eol;
        while (!(eol = find_bytes(c->buf, c->len, "\r\n")))
            if (cli_fill(c) <= 0)
                return false;
        size_t n = strtoul(c->buf, NULL, 16), line = (size_t)(eol - c->buf) + 2;
        while (c->len < line + n + 2)
            if (cli_fill(c) <= 0)
                return false;
        if (*len + n > cap || memcmp(c->buf + line + n, "\r\n", 2) != 0)
            return false;
        memcpy(out + *len, c->buf + line, n);
        *len += n;
        memmove(c->buf, c->buf + line + n + 2, c->len - line - n - 2);
        c->len -= line + n + 2;
        if (n == 0)
            return true;
    }
}

static void test_stream(void **state)
{
    jv_http_opts o = small_opts();
    static char body[300000];
    size_t len;
    resp r;
    char v[64];
    fx *f;
    cli *c;
    (void)state;
    o.send_timeout_ms = 300;
    o.stream_buffer = 40000; /* two pieces */
    f = fx_start(&o, "127.0.0.1:0");
    c = cli_tcp(f);

    /* Ends within one piece: an ordinary answer with a length. */
    cli_send(c, GET("/s?stream=1500"));
    assert_true(cli_recv(c, &r));
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 1500);
    for (size_t i = 0; i < 1500; i++)
        assert_int_equal(r.body[i], pattern_at(i));
    assert_non_null(resp_header(&r, "X-Streamed", v, sizeof(v)));

    /* Longer: chunked, then the connection serves the next request. */
    cli_send(c, GET("/s?stream=250000"));
    assert_true(cli_recv(c, &r)); /* the head: no Content-Length */
    assert_non_null(resp_header(&r, "Transfer-Encoding", v, sizeof(v)));
    assert_string_equal(v, "chunked");
    assert_true(cli_chunked(c, body, sizeof(body), &len));
    assert_int_equal(len, 250000);
    for (size_t i = 0; i < len; i++)
        assert_int_equal(body[i], pattern_at(i));
    assert_int_equal(stream_ended, 1);
    cli_send(c, GET("/after"));
    assert_true(cli_recv(c, &r));
    assert_int_equal(r.status, 200);
    cli_free(c);

    /* HTTP/1.0: the body ends with the connection. */
    c = cli_tcp(f);
    cli_send(c, "GET /s?stream=50000 HTTP/1.0\r\n\r\n");
    while (cli_fill(c) > 0)
        ;
    char *sep = find_bytes(c->buf, c->len, "\r\n\r\n");
    assert_non_null(sep);
    assert_int_equal(c->len - (size_t)(sep + 4 - c->buf), 50000);
    assert_null(find_bytes(c->buf, (size_t)(sep - c->buf), "chunked"));
    cli_free(c);

    /* Clients that read nothing: cut off after the send deadline, the
     * stream ended incomplete, and the server still answers. */
    stream_ended = 0;
    cli *slow[3];
    for (int i = 0; i < 3; i++) {
        int small = 4096;
        slow[i] = cli_tcp(f);
        setsockopt(slow[i]->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
        cli_send(slow[i], GET("/s?stream=50000000"));
    }
    assert_true(fx_wait(f, 0, 0));
    assert_int_equal(stream_ended, 2);
    for (int i = 0; i < 3; i++)
        cli_free(slow[i]);
    roundtrip(f, GET("/still"), &r);
    assert_int_equal(r.status, 200);
    fx_stop(f);
}

static void listen_again(fx *f, void *arg)
{
    jv_err *err = arg;
    *err = jv_http_listen(f->srv, f->bound, NULL, 0);
}

static void test_unix_socket(void **state)
{
    char path[108], addr[128];
    struct sockaddr_un sa;
    struct stat st;
    jv_http_server *tmp;
    uv_loop_t loop;
    int fd;
    fx *f;
    resp r;
    cli *c;
    jv_err err;
    (void)state;

    /* sun_path is short: a long TMPDIR falls back to /tmp. */
    const char *dir = getenv("TMPDIR");
    if (!dir || strlen(dir) > 64)
        dir = "/tmp";
    snprintf(path, sizeof(path), "%s/jv_http_test_%d.sock", dir, (int)getpid());
    snprintf(addr, sizeof(addr), "unix:%s", path);
    unlink(path);

    /* Not a socket: left alone. */
    fd = open(path, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(jv_http_server_new(&loop, NULL, handler, NULL, &tmp),
                     JV_OK);
    assert_int_equal(jv_http_listen(tmp, addr, NULL, 0), JV_EEXIST);
    jv_http_server_close(tmp, NULL, NULL);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    unlink(path);

    /* A stale socket, left by a dead server: replaced. */
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path));
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(fd);

    f = fx_start(NULL, addr);
    assert_string_equal(f->bound, addr);
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0660);

    c = cli_new(unix_connect(path));
    cli_send(c, GET("/u?x=1"));
    assert_true(cli_recv(c, &r));
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, " remote=unix "));
    cli_free(c);

    /* A live one: not ours. */
    on_loop(f, listen_again, &err);
    assert_int_equal(err, JV_EBUSY);
    fx_stop(f);
    assert_int_equal(lstat(path, &st), -1); /* removed at close */

    /* Too long for sun_path. */
    {
        char lng[200];
        memset(lng, 'p', sizeof(lng));
        memcpy(lng, "unix:/tmp/", 10);
        lng[sizeof(lng) - 1] = '\0';
        assert_int_equal(uv_loop_init(&loop), 0);
        assert_int_equal(jv_http_server_new(&loop, NULL, handler, NULL, &tmp),
                         JV_OK);
        assert_int_equal(jv_http_listen(tmp, lng, NULL, 0), JV_EINVAL);
        jv_http_server_close(tmp, NULL, NULL);
        assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
        assert_int_equal(uv_loop_close(&loop), 0);
    }
}

typedef struct {
    const char *addr;
    char bound[128];
    size_t boundlen;
    jv_err err;
} listen_call;

static void do_listen(fx *f, void *arg)
{
    listen_call *l = arg;
    l->err = jv_http_listen(f->srv, l->addr, l->bound, l->boundlen);
}

static void test_port0_and_addresses(void **state)
{
    fx *f = fx_start(NULL, "127.0.0.1:0");
    listen_call l;
    resp r;
    cli *c;
    (void)state;

    assert_true(strncmp(f->bound, "127.0.0.1:", 10) == 0);
    assert_true(f->port > 0 && f->port < 65536);
    roundtrip(f, GET("/p0"), &r);
    assert_int_equal(r.status, 200);

    /* A second listener, IPv6 where the machine has it. */
    memset(&l, 0, sizeof(l));
    l.addr = "[::1]:0";
    l.boundlen = sizeof(l.bound);
    on_loop(f, do_listen, &l);
    if (l.err == JV_OK) {
        assert_true(strncmp(l.bound, "[::1]:", 6) == 0);
        c = cli_new(tcp_connect(AF_INET6, port_of(l.bound)));
        cli_send(c, GET("/v6"));
        assert_true(cli_recv(c, &r));
        assert_int_equal(r.status, 200);
        assert_non_null(strstr(r.body, " remote=[::1]:"));
        cli_free(c);
    } else {
        print_message("IPv6 loopback unavailable (%s): skipped\n",
                      jv_strerror(l.err));
    }

    /* A bound name that does not fit. */
    l.addr = "127.0.0.1:0";
    l.boundlen = 5;
    on_loop(f, do_listen, &l);
    assert_int_equal(l.err, JV_EINVAL);

    /* The port in use. */
    {
        jv_err err;
        on_loop(f, listen_again, &err);
        assert_int_equal(err, JV_EBUSY);
    }

    const char *bad[] = {
        "nonsense", "1.2.3.4", "127.0.0.1:99999", "127.0.0.1:", "127.0.0.1:8x",
        "[::1",     "[::1]80", "::1:80",          ":80",        "999.1.1.1:80"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        l.addr = bad[i];
        l.boundlen = sizeof(l.bound);
        on_loop(f, do_listen, &l);
        assert_int_equal(l.err, JV_EINVAL);
    }
    fx_stop(f);
}

static void do_stop_accepting(fx *f, void *arg)
{
    (void)arg;
    jv_http_stop_accepting(f->srv);
}

static void test_graceful_stop(void **state)
{
    fx *f = fx_start(NULL, "127.0.0.1:0");
    cli *busy = cli_tcp(f), *idle = cli_tcp(f);
    resp r;
    (void)state;

    cli_send(idle, GET("/idle"));
    assert_true(cli_recv(idle, &r));
    cli_send(busy, GET("/busy?hold=1"));
    assert_true(fx_wait(f, 2, 1));

    on_loop(f, do_stop_accepting, NULL);
    assert_true(cli_closed(idle)); /* idle keep-alive: closed */
    assert_int_equal(tcp_connect(AF_INET, f->port), -1);
    assert_int_equal(errno, ECONNREFUSED);
    counts n = fx_counts(f);
    assert_int_equal(n.conns, 1);
    assert_int_equal(n.inflight, 1);

    respond_held(f, "finished");
    assert_true(cli_recv(busy, &r));
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "finished");
    assert_true(resp_has(&r, "Connection", "close"));
    assert_true(cli_closed(busy));
    assert_true(fx_wait(f, 0, 0));
    cli_free(busy);
    cli_free(idle);
    fx_stop(f); /* server_close, then done() exactly once */
}

static void test_bad_options(void **state)
{
    uv_loop_t loop;
    jv_http_server *s = NULL;
    jv_http_opts o;
    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    jv_http_opts_default(&o);
    o.max_conns = 0;
    assert_int_equal(jv_http_server_new(&loop, &o, handler, NULL, &s),
                     JV_EINVAL);
    jv_http_opts_default(&o);
    o.request_timeout_ms = 0;
    assert_int_equal(jv_http_server_new(&loop, &o, handler, NULL, &s),
                     JV_EINVAL);
    assert_int_equal(jv_http_server_new(&loop, NULL, NULL, NULL, &s),
                     JV_EINVAL);
    assert_null(s);

    /* Allocation failures leave nothing behind. */
    for (long n = 0; n < 2; n++) {
        jv_alloc_fail_after(n);
        assert_int_equal(jv_http_server_new(&loop, NULL, handler, NULL, &s),
                         JV_ENOMEM);
        jv_alloc_fail_reset();
    }
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unescape_and_query),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_get_and_post),
        cmocka_unit_test(test_head_has_no_body),
        cmocka_unit_test(test_keep_alive),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_pipelined_many),
        cmocka_unit_test(test_async_pipelined),
        cmocka_unit_test(test_body_limits),
        cmocka_unit_test(test_big_body_path),
        cmocka_unit_test(test_expect_continue),
        cmocka_unit_test(test_headers_too_large),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_fragmented),
        cmocka_unit_test(test_connection_close),
        cmocka_unit_test(test_request_timeout),
        cmocka_unit_test(test_idle_timeout),
        cmocka_unit_test(test_disconnect_while_held),
        cmocka_unit_test(test_close_while_held),
        cmocka_unit_test(test_max_conns),
        cmocka_unit_test(test_per_addr_and_slow_head),
        cmocka_unit_test(test_stream),
        cmocka_unit_test(test_unix_socket),
        cmocka_unit_test(test_port0_and_addresses),
        cmocka_unit_test(test_graceful_stop),
    };
    /* A client that goes away must not kill the process with SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
