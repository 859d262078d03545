/*
 * loadgen.c - an open-loop HTTP/1.1 load generator for the shell benchmarks:
 * many keep-alive connections, each a user making requests on a schedule of its
 * own, whatever the server's answers do.
 *
 * Each connection sends its k-th request at t0 + phase + k / rate (the
 * phase random in one period, so that the load is even). A connection has
 * one request outstanding at most: if an answer comes after the next
 * request's time, that request goes at once, and its latency counts from
 * the time it was due, not from when it went. So a slow server is charged
 * for the requests it held back (wrk measures from the send, and misses
 * them), while this program's own timer slack (libuv timers fire on whole
 * milliseconds) is not charged: a request sent on time by its timer counts
 * from its send. With --rate 0 every connection sends its next request as
 * soon as the answer has come (closed loop), latency from the send.
 *
 * The mix: each request is a write (POST of --write-body to --write-path)
 * with probability --writes percent, else a read (GET --read-path), with
 * an Authorization header when --auth is given. Answers must carry a
 * Content-Length and fit in 16 KiB (jarvisd's and nginx's here do);
 * others count as connection errors.
 *
 * Counted: requests due in the --secs window after every connection is
 * open (later ones are not sent); the answers to them are awaited up to
 * --timeout seconds. The last line is for scripts:
 *
 *   loadgen: WOK WBAD ROK RBAD ERR UNSURE P50 P99 P999 RPS
 *
 * WOK/ROK writes/reads answered 2xx, WBAD/RBAD answered otherwise, ERR
 * connection errors and requests unanswered at the end, UNSURE the writes
 * among them (sent, no answer: perhaps applied), latencies in ms, RPS the
 * answered requests per second of the window. Exit status 1 when the run
 * could not be made (bad arguments, no connection).
 *
 * Usage: loadgen URL [--conns N] [--threads T] [--rate R] [--secs S]
 *        [--writes PCT] [--auth TOKEN] [--read-path P] [--write-path P]
 *        [--write-body B] [--timeout S] [--seed N]
 */
#define _GNU_SOURCE /* memmem */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#define RBUF 16384

typedef struct gen gen;
typedef struct worker worker;

typedef struct {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wr;
    uv_connect_t cr;
    worker *w;
    char buf[RBUF];
    size_t len;
    uint64_t due;  /* ns: when the outstanding (or next) request is due */
    uint64_t sent; /* ns: when it went */
    bool busy, is_write, late, dead;
    bool due_sent; /* the request due at `due` has gone */
} conn;

struct worker {
    gen *g;
    uv_loop_t loop;
    uv_async_t go;
    uv_timer_t end;
    pthread_t thread;
    conn *conns;
    unsigned nconns, opened;
    uint64_t rng;
    uint32_t *lat; /* microseconds */
    size_t nlat, caplat;
    uint64_t wok, wbad, rok, rbad, err, unsure;
    bool stopping, finished;
};

struct gen {
    struct sockaddr_storage addr;
    char host[300];
    const char *auth, *read_path, *write_path, *write_body;
    unsigned conns, threads, writes_pct;
    double rate, secs, timeout;
    uint64_t seed;
    char *req_read, *req_write;
    size_t len_read, len_write;
    uint64_t period; /* ns; 0: closed loop */
    _Atomic uint64_t t0, t_end;
    atomic_uint ready, failed;
    worker *w;
};

static uint64_t next_rand(uint64_t *s)
{
    /* xorshift64*: enough to pick a mix and phases. */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

static void record(worker *w, uint64_t ns)
{
    if (w->nlat == w->caplat) {
        size_t cap = w->caplat ? w->caplat * 2 : 65536;
        uint32_t *p = realloc(w->lat, cap * sizeof *p);
        if (!p) {
            fprintf(stderr, "loadgen: out of memory\n");
            exit(1);
        }
        w->lat = p;
        w->caplat = cap;
    }
    uint64_t us = ns / 1000;
    w->lat[w->nlat++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static void send_request(conn *c);
static bool all_idle(const worker *w);
static void finish(worker *w);

static void drop(conn *c)
{
    worker *w = c->w;
    if (c->busy) {
        w->err++;
        if (c->is_write)
            w->unsure++;
        c->busy = false;
    }
    if (c->dead)
        return;
    c->dead = true;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->tcp, NULL);
    uv_close((uv_handle_t *)&c->timer, NULL);
    if (w->stopping && all_idle(w))
        finish(w);
}

static void on_written(uv_write_t *wr, int status)
{
    conn *c = wr->data;
    if (status < 0 && !c->dead)
        drop(c);
}

static void on_timer(uv_timer_t *t)
{
    send_request(t->data);
}

/* The next request of c: due one period after the last (closed loop: now),
 * sent at once when already due, else by the timer. after_answer: c was
 * held by the server until now, which is charged for a late send. */
static void schedule(conn *c, bool after_answer)
{
    gen *g = c->w->g;
    uint64_t now = uv_hrtime();
    if (g->period == 0) {
        c->due = now;
    } else {
        c->due += g->period;
    }
    c->due_sent = false;
    if (c->due >= atomic_load(&g->t_end))
        return;
    if (c->due <= now) {
        c->late = after_answer && g->period != 0;
        send_request(c);
        return;
    }
    c->late = false;
    uint64_t ms = (c->due - now + 999999) / 1000000;
    uv_timer_start(&c->timer, on_timer, ms, 0);
}

static void send_request(conn *c)
{
    worker *w = c->w;
    gen *g = w->g;
    if (c->dead || c->busy)
        return;
    c->is_write = next_rand(&w->rng) % 100 < g->writes_pct;
    uv_buf_t b = c->is_write ? uv_buf_init(g->req_write, (unsigned)g->len_write)
                             : uv_buf_init(g->req_read, (unsigned)g->len_read);
    c->busy = true;
    c->due_sent = true;
    c->sent = uv_hrtime();
    c->wr.data = c;
    if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0)
        drop(c);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    (void)hint;
    conn *c = h->data;
    *b = uv_buf_init(c->buf + c->len, (unsigned)(RBUF - c->len));
}

/* A complete answer at the start of c->buf: its total length, 0 when more
 * is needed, -1 when it cannot be read. */
static long answer_len(conn *c, int *status)
{
    char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
    if (!end)
        return c->len == RBUF ? -1 : 0;
    size_t head = (size_t)(end - c->buf) + 4;
    if (c->len < 12 || memcmp(c->buf, "HTTP/1.", 7) != 0)
        return -1;
    *status = atoi(c->buf + 9);
    long body = -1;
    for (char *p = c->buf; p < end; p++) {
        if ((p == c->buf || p[-1] == '\n') &&
            strncasecmp(p, "content-length:", 15) == 0) {
            body = strtol(p + 15, NULL, 10);
            break;
        }
    }
    if (body < 0 || head + (size_t)body > RBUF)
        return -1;
    return c->len >= head + (size_t)body ? (long)(head + (size_t)body) : 0;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    (void)b;
    conn *c = s->data;
    worker *w = c->w;
    if (n < 0 || (n > 0 && !c->busy)) {
        drop(c);
        return;
    }
    c->len += (size_t)n;
    int status = 0;
    long len = answer_len(c, &status);
    if (len < 0) {
        drop(c);
        return;
    }
    if (len == 0)
        return;
    uint64_t now = uv_hrtime();
    /* Sent late because the server held the connection: from the due time;
     * else from the send (the timer's slack is ours). */
    record(w, now - (c->late ? c->due : c->sent));
    bool ok = status >= 200 && status < 300;
    if (c->is_write)
        ok ? w->wok++ : w->wbad++;
    else
        ok ? w->rok++ : w->rbad++;
    c->busy = false;
    memmove(c->buf, c->buf + len, c->len - (size_t)len);
    c->len -= (size_t)len;
    /* After the window, only the requests it held back are still sent. */
    schedule(c, true);
    if (w->stopping && all_idle(w))
        finish(w);
}

/* -- starting and stopping ------------------------------------------------ */

static void on_connect(uv_connect_t *cr, int status)
{
    conn *c = cr->data;
    worker *w = c->w;
    if (status < 0) {
        fprintf(stderr, "loadgen: connect: %s\n", uv_strerror(status));
        atomic_fetch_add(&w->g->failed, 1);
        drop(c);
    } else {
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    }
    if (++w->opened == w->nconns)
        atomic_fetch_add(&w->g->ready, 1);
}

static void finish(worker *w)
{
    if (w->finished)
        return;
    w->finished = true;
    /* Requests due in the window and never sent (their connection held
     * or lost) count as unanswered. */
    uint64_t period = w->g->period, end = atomic_load(&w->g->t_end);
    for (unsigned i = 0; period && i < w->nconns; i++) {
        conn *c = &w->conns[i];
        uint64_t first = c->due_sent ? c->due + period : c->due;
        if (first < end)
            w->err += (end - first + period - 1) / period;
    }
    uv_timer_stop(&w->end);
    uv_close((uv_handle_t *)&w->end, NULL);
    uv_close((uv_handle_t *)&w->go, NULL);
    for (unsigned i = 0; i < w->nconns; i++)
        drop(&w->conns[i]);
}

static void on_timeout(uv_timer_t *t)
{
    finish(t->data);
}

static bool all_idle(const worker *w)
{
    for (unsigned i = 0; i < w->nconns; i++)
        if (w->conns[i].busy && !w->conns[i].dead)
            return false;
    return true;
}

/* A connection whose timer is still to send a request due in the window
 * (this thread ran late): the window is not over for it. */
static bool timer_owes(const worker *w)
{
    uint64_t end = atomic_load(&w->g->t_end);
    for (unsigned i = 0; i < w->nconns; i++) {
        const conn *c = &w->conns[i];
        if (!c->dead && !c->busy && !c->due_sent && c->due < end)
            return true;
    }
    return false;
}

/* The window is over: no new requests; the answers outstanding are awaited
 * up to the timeout. */
static void on_window_end(uv_timer_t *t)
{
    worker *w = t->data;
    /* libuv's clock is in whole milliseconds: it may fire a little early,
     * or before a connection's timer due at the same moment. */
    if (uv_hrtime() < atomic_load(&w->g->t_end) || timer_owes(w)) {
        uv_timer_start(&w->end, on_window_end, 1, 0);
        return;
    }
    w->stopping = true;
    if (all_idle(w)) {
        finish(w);
        return;
    }
    uv_timer_start(&w->end, on_timeout, (uint64_t)(w->g->timeout * 1000), 0);
}

/* Every connection's first request, once all are open (main sets t0). */
static void on_go(uv_async_t *a)
{
    worker *w = a->data;
    gen *g = w->g;
    uint64_t t0 = atomic_load(&g->t0);
    for (unsigned i = 0; i < w->nconns; i++) {
        conn *c = &w->conns[i];
        uint64_t first = t0 + (g->period ? next_rand(&w->rng) % g->period : 0);
        /* One that could not connect: its requests count as unanswered. */
        if (c->dead) {
            c->due = first;
            continue;
        }
        if (g->period == 0) {
            /* Closed loop: the first request at t0, then back to back. */
            c->due = first;
            c->due_sent = false;
            uint64_t now = uv_hrtime();
            if (now >= first)
                send_request(c);
            else
                uv_timer_start(&c->timer, on_timer,
                               (first - now + 999999) / 1000000, 0);
            continue;
        }
        c->due = first - g->period;
        schedule(c, false);
    }
    uint64_t now = uv_hrtime(), end = atomic_load(&g->t_end);
    uint64_t ms = (end > now ? end - now : 0) / 1000000;
    uv_timer_start(&w->end, on_window_end, ms, 0);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    uv_run(&w->loop, UV_RUN_DEFAULT);
    return NULL;
}

static int worker_init(gen *g, worker *w, unsigned nconns)
{
    w->g = g;
    w->nconns = nconns;
    w->rng = g->seed * 0x9e3779b97f4a7c15ull + (uint64_t)(w - g->w) + 1;
    w->conns = calloc(nconns ? nconns : 1, sizeof *w->conns);
    if (!w->conns || uv_loop_init(&w->loop) != 0)
        return -1;
    uv_async_init(&w->loop, &w->go, on_go);
    w->go.data = w;
    uv_timer_init(&w->loop, &w->end);
    w->end.data = w;
    for (unsigned i = 0; i < nconns; i++) {
        conn *c = &w->conns[i];
        c->w = w;
        uv_tcp_init(&w->loop, &c->tcp);
        uv_timer_init(&w->loop, &c->timer);
        c->tcp.data = c->timer.data = c->cr.data = c;
        uv_tcp_nodelay(&c->tcp, 1);
        int rc = uv_tcp_connect(&c->cr, &c->tcp,
                                (const struct sockaddr *)&g->addr, on_connect);
        if (rc != 0) {
            fprintf(stderr, "loadgen: connect: %s\n", uv_strerror(rc));
            return -1;
        }
    }
    if (nconns == 0)
        atomic_fetch_add(&g->ready, 1);
    return 0;
}

/* -- arguments, requests, results ----------------------------------------- */

static int parse_url(gen *g, const char *url)
{
    char hostport[300];
    if (strncmp(url, "http://", 7) != 0)
        return -1;
    url += 7;
    size_t n = strcspn(url, "/");
    if (n == 0 || n >= sizeof hostport)
        return -1;
    memcpy(hostport, url, n);
    hostport[n] = '\0';
    snprintf(g->host, sizeof g->host, "%s", hostport);
    char *colon = strrchr(hostport, ':');
    if (!colon)
        return -1;
    *colon = '\0';
    int port = atoi(colon + 1);
    if (port <= 0 || port > 65535)
        return -1;
    struct sockaddr_in *a4 = (struct sockaddr_in *)&g->addr;
    return uv_ip4_addr(hostport, port, a4) == 0 ? 0 : -1;
}

static char *format_request(const gen *g, bool write, size_t *len)
{
    char auth[600] = "";
    if (g->auth)
        snprintf(auth, sizeof auth, "Authorization: Bearer %s\r\n", g->auth);
    size_t cap = 1024 + strlen(auth) + strlen(g->write_body);
    char *r = malloc(cap);
    if (!r)
        return NULL;
    int n;
    if (write)
        n = snprintf(r, cap,
                     "POST %s HTTP/1.1\r\nHost: %s\r\n%s"
                     "Content-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     g->write_path, g->host, auth, strlen(g->write_body),
                     g->write_body);
    else
        n = snprintf(r, cap, "GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n",
                     g->read_path, g->host, auth);
    *len = (size_t)n;
    return r;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static double pct(const uint32_t *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t i = (size_t)(p / 100.0 * (double)n);
    return (i >= n ? v[n - 1] : v[i]) / 1000.0;
}

static void report(gen *g)
{
    uint64_t wok = 0, wbad = 0, rok = 0, rbad = 0, err = 0, unsure = 0;
    size_t n = 0;
    for (unsigned i = 0; i < g->threads; i++)
        n += g->w[i].nlat;
    uint32_t *all = malloc((n ? n : 1) * sizeof *all);
    if (!all) {
        fprintf(stderr, "loadgen: out of memory\n");
        exit(1);
    }
    size_t k = 0;
    for (unsigned i = 0; i < g->threads; i++) {
        worker *w = &g->w[i];
        if (w->nlat)
            memcpy(all + k, w->lat, w->nlat * sizeof *all);
        k += w->nlat;
        wok += w->wok, wbad += w->wbad, rok += w->rok, rbad += w->rbad;
        err += w->err, unsure += w->unsure;
    }
    qsort(all, n, sizeof *all, cmp_u32);
    double p50 = pct(all, n, 50), p99 = pct(all, n, 99),
           p999 = pct(all, n, 99.9), rps = (double)n / g->secs;
    printf("%u connections, %u threads, %s, %.0f s: %zu answers, "
           "%.0f/s\n",
           g->conns, g->threads, g->period ? "open loop" : "closed loop",
           g->secs, n, rps);
    printf("latency ms: p50 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n", p50, p99,
           p999, n ? all[n - 1] / 1000.0 : 0.0);
    printf("loadgen: %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
           " %" PRIu64 " %.3f %.3f %.3f %.1f\n",
           wok, wbad, rok, rbad, err, unsure, p50, p99, p999, rps);
    free(all);
}

static void usage(void)
{
    fprintf(stderr, "usage: loadgen URL [--conns N] [--threads T] [--rate R] "
                    "[--secs S]\n"
                    "       [--writes PCT] [--auth TOKEN] [--read-path P] "
                    "[--write-path P]\n"
                    "       [--write-body B] [--timeout S] [--seed N]\n");
    exit(1);
}

static void parse_args(gen *g, int argc, char **argv)
{
    *g = (gen){.conns = 1000,
               .threads = 2,
               .rate = 40,
               .secs = 10,
               .writes_pct = 10,
               .timeout = 10,
               .read_path = "/v1/counters/bench",
               .write_path = "/v1/counters/bench/increment",
               .write_body = "{\"by\":1}",
               .seed = (uint64_t)uv_hrtime()};
    if (argc < 2 || parse_url(g, argv[1]) != 0)
        usage();
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            usage();
        i++;
        if (strcmp(a, "--conns") == 0)
            g->conns = (unsigned)strtoul(v, NULL, 10);
        else if (strcmp(a, "--threads") == 0)
            g->threads = (unsigned)strtoul(v, NULL, 10);
        else if (strcmp(a, "--rate") == 0)
            g->rate = strtod(v, NULL);
        else if (strcmp(a, "--secs") == 0)
            g->secs = strtod(v, NULL);
        else if (strcmp(a, "--writes") == 0)
            g->writes_pct = (unsigned)strtoul(v, NULL, 10);
        else if (strcmp(a, "--auth") == 0)
            g->auth = v;
        else if (strcmp(a, "--read-path") == 0)
            g->read_path = v;
        else if (strcmp(a, "--write-path") == 0)
            g->write_path = v;
        else if (strcmp(a, "--write-body") == 0)
            g->write_body = v;
        else if (strcmp(a, "--timeout") == 0)
            g->timeout = strtod(v, NULL);
        else if (strcmp(a, "--seed") == 0)
            g->seed = strtoull(v, NULL, 10);
        else
            usage();
    }
    if (g->conns == 0 || g->threads == 0 || g->threads > 64 || g->rate < 0 ||
        g->secs <= 0 || g->writes_pct > 100 || g->timeout <= 0 ||
        (g->auth && strlen(g->auth) > 500))
        usage();
    if (g->threads > g->conns)
        g->threads = g->conns;
    g->period = g->rate > 0 ? (uint64_t)(1e9 / g->rate) : 0;
}

int main(int argc, char **argv)
{
    gen g;
    parse_args(&g, argc, argv);
    printf("loadgen: seed %" PRIu64 "\n", g.seed);
    g.req_read = format_request(&g, false, &g.len_read);
    g.req_write = format_request(&g, true, &g.len_write);
    g.w = calloc(g.threads, sizeof *g.w);
    if (!g.req_read || !g.req_write || !g.w) {
        fprintf(stderr, "loadgen: out of memory\n");
        return 1;
    }
    for (unsigned i = 0; i < g.threads; i++) {
        unsigned share = g.conns / g.threads + (i < g.conns % g.threads);
        if (worker_init(&g, &g.w[i], share) != 0 ||
            pthread_create(&g.w[i].thread, NULL, worker_main, &g.w[i]) != 0) {
            fprintf(stderr, "loadgen: cannot start worker %u\n", i);
            return 1;
        }
    }
    /* All connections open (or failed) before the clock starts. */
    for (int i = 0; atomic_load(&g.ready) < g.threads; i++) {
        if (i == 30000) {
            fprintf(stderr, "loadgen: connections not open in 30 s\n");
            return 1;
        }
        uv_sleep(1);
    }
    unsigned failed = atomic_load(&g.failed);
    if (failed == g.conns) {
        fprintf(stderr, "loadgen: no connection could be opened\n");
        return 1;
    }
    /* A head start for every thread to be waiting when t0 comes. */
    uint64_t t0 = uv_hrtime() + 50000000;
    atomic_store(&g.t_end, t0 + (uint64_t)(g.secs * 1e9));
    atomic_store(&g.t0, t0);
    for (unsigned i = 0; i < g.threads; i++)
        uv_async_send(&g.w[i].go);
    for (unsigned i = 0; i < g.threads; i++) {
        pthread_join(g.w[i].thread, NULL);
        uv_loop_close(&g.w[i].loop);
    }
    if (failed)
        fprintf(stderr, "loadgen: %u connections could not be opened\n",
                failed);
    report(&g);
    for (unsigned i = 0; i < g.threads; i++) {
        free(g.w[i].conns);
        free(g.w[i].lat);
    }
    free(g.w);
    free(g.req_read);
    free(g.req_write);
    return 0;
}
