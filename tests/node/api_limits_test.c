/*
 * api_limits_test.c - floods and slow readers against a real jarvisd
 * (docs/api.md "Limits").
 *
 * Floods: one address opens 5,000 connections (idle ones, and a few that
 * send a request head slowly) and keeps them; meanwhile another client's
 * GET /health and an authenticated GET /v1/status must succeed promptly,
 * whether the attacker is another address (127.0.0.2: the per-address
 * limit) or the very address of the client (127.0.0.1: only eviction of
 * the oldest idle connection helps). A slow request head is cut off at the
 * header deadline.
 *
 * Slow readers: hundreds of clients ask for a page of large archive
 * entries, or the export, and read nothing. The node's resident memory
 * (VmRSS) must stay under the documented bound, others must still be
 * served, and the non-readers must be disconnected after the send
 * deadline.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "apitest.h"

#define ATTACK            5000
#define HEADER_TIMEOUT_MS 1500
/* "Promptly": far below the client's 10 s timeout, generous for a busy
 * 2-core machine. */
#define PROMPT_MS 3000

static unsigned api_port(const api_node *a)
{
    unsigned port = 0;
    assert_int_equal(sscanf(a->node.url, "http://127.0.0.1:%u", &port), 1);
    return port;
}

/* A non-blocking connection from `from` (NULL: any) to the node. -1 when
 * the process is out of descriptors or ports. */
static int connect_from(const char *from, unsigned port)
{
    struct sockaddr_in sa, src;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (from) {
        memset(&src, 0, sizeof src);
        src.sin_family = AF_INET;
        inet_pton(AF_INET, from, &src.sin_addr);
        if (bind(fd, (struct sockaddr *)&src, sizeof src) != 0) {
            close(fd);
            return -1;
        }
    }
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 &&
        errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

static void raise_nofile(void)
{
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    rl.rlim_cur = rl.rlim_max;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < ATTACK + 512)
        skip(); /* cannot hold the flood from here */
}

static double metric(api_node *a, const char *series)
{
    jv_http_resp r;
    API_REQ(a, &r, "GET", "/metrics", NULL, NULL);
    assert_int_equal(r.status, 200);
    double v = api_metric(r.body, series);
    jv_http_resp_fini(&r);
    return v;
}

static double closed_by_limits(api_node *a)
{
    return metric(a,
                  "jarvis_api_connections_closed_total{reason=\"evicted\"}") +
           metric(a, "jarvis_api_connections_closed_total{reason=\"refused\"}");
}

/* One request on a fresh connection: status and milliseconds taken. */
static long fresh_request(api_node *a, const char *path, const char *cred,
                          uint64_t *ms)
{
    jv_http_client c;
    jv_http_resp r;
    assert_int_equal(jv_http_client_init(&c, a->node.url), 0);
    uint64_t t0 = api_now_ms();
    jv_http_do(&c, "GET", path, cred, NULL, 0, &r);
    *ms = api_now_ms() - t0;
    long status = r.status;
    if (status != 200)
        fprintf(stderr, "GET %s: %ld %s %s\n", path, status, r.error,
                r.body ? r.body : "");
    jv_http_resp_fini(&r);
    jv_http_client_fini(&c);
    return status;
}

typedef struct {
    int fd[ATTACK];
    int n;
} flood;

/* Opens the flood from `from`; every 500th connection starts a request
 * head it will finish only slowly (slowloris). */
static void flood_open(flood *f, const char *from, unsigned port)
{
    static const char partial[] = "GET /v1/status HTTP/1.1\r\nHost: x\r\n";
    f->n = 0;
    for (int i = 0; i < ATTACK; i++) {
        int fd = connect_from(from, port);
        assert_true(fd >= 0);
        f->fd[f->n++] = fd;
        if (i % 500 == 0) {
            struct pollfd p = {fd, POLLOUT, 0};
            if (poll(&p, 1, 1000) == 1)
                (void)send(fd, partial, sizeof partial - 1, MSG_NOSIGNAL);
        }
    }
}

/* The slow ones send one more header line. */
static void flood_trickle(flood *f)
{
    for (int i = 0; i < f->n; i += 500)
        (void)send(f->fd[i], "X-Slow: 1\r\n", 11, MSG_NOSIGNAL);
}

static void flood_close(flood *f)
{
    for (int i = 0; i < f->n; i++)
        close(f->fd[i]);
    f->n = 0;
}

/* While the flood is held: /health and an authenticated /v1/status on
 * fresh connections, several times, each prompt. */
static void others_served(api_node *a, flood *f, const char *who)
{
    uint64_t worst = 0;
    for (int i = 0; i < 5; i++) {
        uint64_t ms;
        flood_trickle(f);
        assert_int_equal(fresh_request(a, "/health", NULL, &ms), 200);
        if (ms > PROMPT_MS)
            fail_msg("%s: /health took %llu ms", who, (unsigned long long)ms);
        worst = ms > worst ? ms : worst;
        assert_int_equal(fresh_request(a, "/v1/status", a->admin_token, &ms),
                         200);
        if (ms > PROMPT_MS)
            fail_msg("%s: /v1/status took %llu ms", who,
                     (unsigned long long)ms);
        worst = ms > worst ? ms : worst;
    }
    printf("%s: %d connections held; 5 x /health and /v1/status from "
           "127.0.0.1 all 200, slowest %llu ms; %.0f closed by the limits "
           "so far, %.0f open\n",
           who, f->n, (unsigned long long)worst, closed_by_limits(a),
           metric(a, "jarvis_api_connections"));
}

static void test_flood(void **state)
{
    (void)state;
    raise_nofile();
    api_node N;
    char *extra[] = {(char *)"--max-conns", (char *)"2048",
                     (char *)"--header-timeout", (char *)"1500", NULL};
    api_start(&N, extra);
    unsigned port = api_port(&N);
    static flood f;

    /* Another address holds 5,000 connections: it gets at most its share
     * (1,024, half of max-conns) and loses its own oldest. */
    flood_open(&f, "127.0.0.2", port);
    uint64_t deadline = api_now_ms() + 60000;
    while (closed_by_limits(&N) < ATTACK - 2048 - 100) {
        assert_true(api_now_ms() < deadline);
        api_sleep_ms(100);
    }
    others_served(&N, &f, "flood from 127.0.0.2");
    assert_true(metric(&N, "jarvis_api_connections") <= 2048);
    flood_close(&f);

    /* The same from the client's own address: eviction of the oldest idle
     * connection is what lets it in. */
    double before = closed_by_limits(&N);
    flood_open(&f, "127.0.0.1", port);
    deadline = api_now_ms() + 60000;
    while (closed_by_limits(&N) < before + ATTACK - 2048 - 100) {
        assert_true(api_now_ms() < deadline);
        api_sleep_ms(100);
    }
    others_served(&N, &f, "flood from 127.0.0.1");
    flood_close(&f);

    /* A slow request head is answered 408 and closed at the header
     * deadline, not at the (longer) idle or request timeout. */
    int fd = connect_from(NULL, port);
    struct pollfd p = {fd, POLLOUT, 0};
    assert_int_equal(poll(&p, 1, 5000), 1);
    uint64_t t0 = api_now_ms();
    static const char head[] = "GET /health HTTP/1.1\r\nHost: x\r\n";
    assert_int_equal(send(fd, head, sizeof head - 1, MSG_NOSIGNAL),
                     (ssize_t)sizeof head - 1);
    char buf[1024];
    size_t got = 0;
    for (;;) {
        p.events = POLLIN;
        assert_int_equal(poll(&p, 1, 20000), 1);
        ssize_t k = recv(fd, buf + got, sizeof buf - 1 - got, 0);
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    uint64_t took = api_now_ms() - t0;
    printf("slow head: 408 and closed after %llu ms (header deadline %d ms)\n",
           (unsigned long long)took, HEADER_TIMEOUT_MS);
    close(fd);
    buf[got] = '\0';
    assert_non_null(strstr(buf, "408"));
    if (took < HEADER_TIMEOUT_MS - 100 || took > HEADER_TIMEOUT_MS + PROMPT_MS)
        fail_msg("slow head closed after %llu ms, deadline %d ms",
                 (unsigned long long)took, HEADER_TIMEOUT_MS);
    assert_true(
        metric(&N, "jarvis_api_connections_closed_total{reason=\"timeout\"}") >=
        1);
    assert_int_equal(api_stop(&N), 0);
    api_cleanup(&N);
}

/* -- slow readers --------------------------------------------------------- */

#define ENTRIES         1000
#define VALUE_BYTES     16000
#define READERS         300
#define EXPORTS         4 /* exports run at once (docs/api.md) */
#define SEND_TIMEOUT_MS 3000

static long rss_kib(pid_t pid)
{
    char path[64], line[256];
    long kib = -1;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

static void load_archive(api_node *a)
{
    char *value = malloc(VALUE_BYTES + 1);
    size_t cap = 110 * (VALUE_BYTES + 128);
    char *body = malloc(cap);
    assert_non_null(value);
    assert_non_null(body);
    memset(value, 'v', VALUE_BYTES);
    value[VALUE_BYTES] = '\0';
    for (int b = 0; b < ENTRIES / 100; b++) {
        size_t k = (size_t)snprintf(body, cap, "{\"ops\":[");
        for (int i = 0; i < 100; i++)
            k += (size_t)snprintf(body + k, cap - k,
                                  "%s{\"op\":\"archive.add\",\"key\":"
                                  "\"big/%03d/%02d\",\"value\":\"%s\"}",
                                  i ? "," : "", b, i, value);
        snprintf(body + k, cap - k, "]}");
        json_decref(API_OK(a, 200, "POST", "/v1/batch", a->admin_token, body));
    }
    free(body);
    free(value);
}

/* A client that sends the request and reads nothing. */
static int non_reader(unsigned port, const char *path, const char *token)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int small = 4096;
    struct sockaddr_in sa;
    assert_true(fd >= 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    const char *req = api_fmt("GET %s HTTP/1.1\r\nHost: x\r\n"
                              "Authorization: Bearer %s\r\n\r\n",
                              path, token);
    assert_int_equal(send(fd, req, strlen(req), MSG_NOSIGNAL),
                     (ssize_t)strlen(req));
    return fd;
}

static void test_slow_readers(void **state)
{
    (void)state;
    raise_nofile();
    api_node N;
    char *extra[] = {(char *)"--max-body", (char *)"4M",
                     (char *)"--send-timeout", (char *)"3000", NULL};
    api_start(&N, extra);
    unsigned port = api_port(&N);
    load_archive(&N);
    /* Whole answers would be big: a page of the archive is some 16 MB. */
    size_t export_len;
    free(api_export(&N, &export_len));
    assert_true(export_len > (size_t)ENTRIES * VALUE_BYTES);
    pid_t pid = N.node.proc.pid;
    long base = rss_kib(pid);

    static int fd[READERS + EXPORTS + 1];
    for (int i = 0; i < READERS; i++)
        fd[i] = non_reader(port, "/v1/archive?limit=1000", N.admin_token);
    for (int i = 0; i < EXPORTS; i++) {
        fd[READERS + i] = non_reader(port, "/v1/export", N.admin_token);
        /* Its answer has begun (peeked at, not read): it runs. */
        struct pollfd p = {fd[READERS + i], POLLIN, 0};
        assert_int_equal(poll(&p, 1, 20000), 1);
    }
    /* Over the exports' limit: 503 at once, nothing held. */
    jv_http_resp r;
    API_REQ(&N, &r, "GET", "/v1/export", N.admin_token, NULL);
    API_CHECK_ERROR(&r, 503, "busy");
    jv_http_resp_fini(&r);

    /* While they hold their answers: memory stays bounded and others are
     * served. */
    long peak = base;
    for (int round = 0; round < 10; round++) {
        uint64_t ms;
        assert_int_equal(fresh_request(&N, "/health", NULL, &ms), 200);
        assert_true(ms <= PROMPT_MS);
        assert_int_equal(
            fresh_request(&N, "/v1/archive?limit=2", N.admin_token, &ms), 200);
        assert_true(ms <= PROMPT_MS);
        long now = rss_kib(pid);
        if (now > peak)
            peak = now;
        api_sleep_ms(100);
    }
    /* docs/api.md: stream-buffer (32 MiB) + 64 KiB per connection + 8 MiB
     * per running export + 8 MiB of page cache for each of the three
     * reader threads' connections, over what the node held before. */
    long bound = 32 * 1024 + (READERS + EXPORTS) * 64 + EXPORTS * 8 * 1024 +
                 3 * 8 * 1024;
    printf("slow readers: RSS %ld KiB before, peak %ld KiB (+%ld KiB, "
           "bound +%ld KiB) with %d page and %d export non-readers\n",
           base, peak, peak - base, bound, READERS, EXPORTS);
    if (peak - base > bound)
        fail_msg("RSS grew by %ld KiB, more than the bound of %ld KiB",
                 peak - base, bound);

    /* The send deadline disconnects every one of them (the node's count
     * of open connections; the one asking is the only one left). */
    uint64_t t0 = api_now_ms();
    while (metric(&N, "jarvis_api_connections") > 1) {
        if (api_now_ms() - t0 > 60000)
            fail_msg("non-readers still connected after 60 s");
        api_sleep_ms(100);
    }
    printf("slow readers: all disconnected %llu ms after the check\n",
           (unsigned long long)(api_now_ms() - t0));
    assert_true(
        metric(&N, "jarvis_api_connections_closed_total{reason=\"timeout\"}") >=
        READERS);
    for (int i = 0; i < READERS + EXPORTS; i++)
        close(fd[i]);
    /* And the export works for a reader again. */
    size_t again;
    free(api_export(&N, &again));
    assert_int_equal(again, export_len);
    assert_int_equal(api_stop(&N), 0);
    api_cleanup(&N);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flood),
        cmocka_unit_test(test_slow_readers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
