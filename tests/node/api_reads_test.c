/*
 * api_reads_test.c - reads off the loop, against a real jarvisd
 * (docs/api.md "Consistency", "Export"; docs/architecture.md "Threads").
 *
 * - Read-your-writes under concurrency: threads write on one connection
 *   and read on another at once; every read sees the thread's own
 *   acknowledged write, while the others write too.
 * - The read cache: single-key answers come from memory, the same bytes,
 *   and still show every acknowledged write; readers polling a hot key
 *   while it is written never see it go back; config answers come from
 *   memory while counters are written without pause.
 * - A client that reads an export (or a page of large entries) at a
 *   trickle does not hold up anyone: another client's reads answer
 *   promptly meanwhile.
 * - The streamed export is byte for byte the whole document encoded at
 *   once (compact, keys sorted, one newline), as the in-memory export
 *   was; and its memory stays bounded however many entries it has
 *   (JV_EXPORT_ENTRIES, default 100,000; 1,000,000 for the figure in
 *   docs/api.md).
 * - SIGTERM with reads in flight: jarvisd exits 0, promptly.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "apitest.h"

/* "Promptly": far below the client's 10 s timeout, generous for a busy
 * 2-core machine. */
#define PROMPT_MS 3000

/* Under AddressSanitizer memory figures mean little (shadow memory, the
 * quarantine of freed blocks) and loading is slow: fewer entries, and the
 * bound is printed, not checked. */
#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED      1
#define EXPORT_DEFAULT 20000
#else
#define SANITIZED      0
#define EXPORT_DEFAULT 100000
#endif

static unsigned api_port(const api_node *a)
{
    unsigned port = 0;
    assert_int_equal(sscanf(a->node.url, "http://127.0.0.1:%u", &port), 1);
    return port;
}

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

/* n operations through POST /v1/batch, 1000 a request: counters c/<i>,
 * archive adds a/<i> (value_bytes each), config k/<i>, audit entries,
 * in turn. */
static void load(api_node *a, long n, size_t value_bytes)
{
    size_t cap = 1000 * (value_bytes + 128) + 64;
    char *body = malloc(cap), *value = malloc(value_bytes + 1);
    assert_non_null(body);
    assert_non_null(value);
    memset(value, 'v', value_bytes);
    value[value_bytes] = '\0';
    for (long base = 0; base < n; base += 1000) {
        size_t k = (size_t)snprintf(body, cap, "{\"ops\":[");
        for (long i = base; i < base + 1000 && i < n; i++) {
            const char *sep = i > base ? "," : "";
            switch (i % 4) {
            case 0:
                k += (size_t)snprintf(body + k, cap - k,
                                      "%s{\"op\":\"counter.increment\","
                                      "\"name\":\"c/%07ld\",\"by\":%ld}",
                                      sep, i, i % 7 - 3 ? i % 7 - 3 : 1);
                break;
            case 1:
                k += (size_t)snprintf(body + k, cap - k,
                                      "%s{\"op\":\"archive.add\",\"key\":"
                                      "\"a/%07ld\",\"value\":\"%s\"}",
                                      sep, i, value);
                break;
            case 2:
                k += (size_t)snprintf(body + k, cap - k,
                                      "%s{\"op\":\"config.set\",\"key\":"
                                      "\"k/%07ld\",\"value\":{\"n\":%ld,"
                                      "\"s\":\"\\u00e9/\\\"\"}}",
                                      sep, i, i);
                break;
            default:
                k += (size_t)snprintf(body + k, cap - k,
                                      "%s{\"op\":\"audit.append\",\"action\":"
                                      "\"load\",\"target\":\"t%ld\"}",
                                      sep, i);
                break;
            }
        }
        snprintf(body + k, cap - k, "]}");
        json_decref(API_OK(a, 200, "POST", "/v1/batch", a->admin_token, body));
    }
    free(body);
    free(value);
}

/* -- read-your-writes ----------------------------------------------------- */

#define RYW_THREADS 6
#define RYW_ROUNDS  150

typedef struct {
    const api_node *a;
    int id;
    atomic_long *failures;
    char why[512];
} ryw_thread;

static void ryw_fail(ryw_thread *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void ryw_fail(ryw_thread *t, const char *fmt, ...)
{
    va_list ap;
    if (atomic_fetch_add(t->failures, 1) == 0 || !t->why[0]) {
        va_start(ap, fmt);
        vsnprintf(t->why, sizeof t->why, fmt, ap);
        va_end(ap);
    }
}

/* Writes on w, reads at once on r (another connection): the read must
 * show the acknowledged write. Another thread's counter only grows. */
static void *ryw_main(void *arg)
{
    ryw_thread *t = arg;
    jv_http_client w, r;
    jv_http_resp resp;
    char path[96], cfg[96], other[96], body[64];
    long seen_other = -1;
    if (jv_http_client_init(&w, t->a->node.url) ||
        jv_http_client_init(&r, t->a->node.url)) {
        ryw_fail(t, "client init");
        return NULL;
    }
    snprintf(path, sizeof path, "/v1/counters/ryw-%d", t->id);
    snprintf(cfg, sizeof cfg, "/v1/config/ryw/%d", t->id);
    snprintf(other, sizeof other, "/v1/counters/ryw-%d",
             (t->id + 1) % RYW_THREADS);
    const char *tok = t->a->admin_token;
    for (int i = 1; i <= RYW_ROUNDS; i++) {
        char inc[128];
        snprintf(inc, sizeof inc, "%s/increment", path);
        jv_http_do(&w, "POST", inc, tok, "{}", 2, &resp);
        if (resp.status != 200 || !resp.json ||
            json_integer_value(json_object_get(resp.json, "total")) != i)
            ryw_fail(t, "POST %s: %ld %s", inc, resp.status, resp.body);
        jv_http_resp_fini(&resp);
        jv_http_do(&r, "GET", path, tok, NULL, 0, &resp);
        if (resp.status != 200 || !resp.json ||
            json_integer_value(json_object_get(resp.json, "total")) != i)
            ryw_fail(t, "GET %s after increment %d: %ld %s", path, i,
                     resp.status, resp.body);
        jv_http_resp_fini(&resp);

        snprintf(body, sizeof body, "{\"value\":%d}", i);
        jv_http_do(&w, "PUT", cfg, tok, body, strlen(body), &resp);
        if (resp.status != 200)
            ryw_fail(t, "PUT %s: %ld %s", cfg, resp.status, resp.body);
        jv_http_resp_fini(&resp);
        jv_http_do(&r, "GET", cfg, tok, NULL, 0, &resp);
        if (resp.status != 200 || !resp.json ||
            json_integer_value(json_object_get(resp.json, "value")) != i)
            ryw_fail(t, "GET %s after set %d: %ld %s", cfg, i, resp.status,
                     resp.body);
        jv_http_resp_fini(&resp);

        jv_http_do(&r, "GET", other, tok, NULL, 0, &resp);
        if (resp.status == 200 && resp.json) {
            long v =
                (long)json_integer_value(json_object_get(resp.json, "total"));
            if (v < seen_other)
                ryw_fail(t, "GET %s went back from %ld to %ld", other,
                         seen_other, v);
            seen_other = v;
        } else if (resp.status != 404) {
            ryw_fail(t, "GET %s: %ld %s", other, resp.status, resp.body);
        }
        jv_http_resp_fini(&resp);
    }
    jv_http_client_fini(&w);
    jv_http_client_fini(&r);
    return NULL;
}

static void test_read_your_writes(void **state)
{
    (void)state;
    api_node N;
    char *extra[] = {(char *)"--rate-limit", (char *)"0", NULL};
    api_start(&N, extra);
    static ryw_thread th[RYW_THREADS];
    pthread_t tid[RYW_THREADS];
    atomic_long failures = 0;
    for (int i = 0; i < RYW_THREADS; i++) {
        th[i] = (ryw_thread){.a = &N, .id = i, .failures = &failures};
        assert_int_equal(pthread_create(&tid[i], NULL, ryw_main, &th[i]), 0);
    }
    for (int i = 0; i < RYW_THREADS; i++)
        assert_int_equal(pthread_join(tid[i], NULL), 0);
    for (int i = 0; i < RYW_THREADS; i++)
        if (th[i].why[0])
            fprintf(stderr, "thread %d: %s\n", i, th[i].why);
    assert_int_equal(atomic_load(&failures), 0);
    printf("read-your-writes: %d threads x %d rounds, every read saw its "
           "write\n",
           RYW_THREADS, RYW_ROUNDS);
    assert_int_equal(api_stop(&N), 0);
    api_cleanup(&N);
}

/* -- the read cache ---------------------------------------------------------
 */

static double cache_hits(api_node *a)
{
    jv_http_resp r;
    API_REQ(a, &r, "GET", "/metrics", NULL, NULL);
    assert_int_equal(r.status, 200);
    double v =
        api_metric(r.body, "jarvis_read_cache_lookups_total{result=\"hit\"}");
    jv_http_resp_fini(&r);
    return v;
}

/* GETs path until an answer comes from the cache (the hit count grows);
 * every answer meanwhile is `want`, byte for byte. */
static void until_hit(api_node *a, const char *path, const char *want)
{
    uint64_t deadline = api_now_ms() + 10000;
    double before = cache_hits(a);
    for (;;) {
        jv_http_resp r;
        API_REQ(a, &r, "GET", path, a->admin_token, NULL);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, want);
        jv_http_resp_fini(&r);
        if (cache_hits(a) > before)
            return;
        assert_true(api_now_ms() < deadline);
    }
}

/* A writer increments while readers poll the same counter (the hot key a
 * dashboard reads): no reader ever sees less than what was acknowledged
 * before its request, nor a total that goes back. The writer also
 * replaces an archive entry's value, and the readers read it: each
 * answer is of one state (its latest value among its values). */
#define HOT_READERS 4
#define HOT_WRITES  300

typedef struct {
    const api_node *a;
    atomic_long *acked;
    atomic_bool *done;
    atomic_long *failures;
    char why[256];
    long reads;
} hot_reader;

/* The entry's "value" is one of its "all" values. */
static bool archive_whole(const json_t *e)
{
    const json_t *all = json_object_get(e, "all"), *v;
    size_t i;
    json_array_foreach(all, i, v)
    {
        if (json_equal(json_object_get(v, "value"),
                       json_object_get(e, "value")))
            return true;
    }
    return false;
}

static void *hot_read_main(void *arg)
{
    hot_reader *t = arg;
    jv_http_client c;
    jv_http_resp r;
    long last = 0;
    if (jv_http_client_init(&c, t->a->node.url)) {
        atomic_fetch_add(t->failures, 1);
        return NULL;
    }
    while (!atomic_load(t->done)) {
        long floor = atomic_load(t->acked);
        jv_http_do(&c, "GET", "/v1/counters/hot", t->a->admin_token, NULL, 0,
                   &r);
        long v =
            r.status == 200 && r.json
                ? (long)json_integer_value(json_object_get(r.json, "total"))
                : -1;
        if (v < floor || v < last) {
            if (atomic_fetch_add(t->failures, 1) == 0)
                snprintf(t->why, sizeof t->why,
                         "read %ld after %ld acknowledged, %ld seen: %ld %s", v,
                         floor, last, r.status, r.body);
        }
        last = v > last ? v : last;
        t->reads++;
        jv_http_resp_fini(&r);
        /* An archive entry is read with two statements: its latest value
         * must be among all its values, from one state. */
        jv_http_do(&c, "GET", "/v1/archive/r/1", t->a->admin_token, NULL, 0,
                   &r);
        if (r.status != 200 || !archive_whole(r.json)) {
            if (atomic_fetch_add(t->failures, 1) == 0)
                snprintf(t->why, sizeof t->why, "archive entry torn: %ld %s",
                         r.status, r.body);
        }
        jv_http_resp_fini(&r);
    }
    jv_http_client_fini(&c);
    return NULL;
}

/* Increments a counter until told to stop. */
typedef struct {
    const api_node *a;
    atomic_bool *done;
    atomic_long writes;
} flood_writer;

static void *flood_main(void *arg)
{
    flood_writer *f = arg;
    jv_http_client c;
    jv_http_resp r;
    if (jv_http_client_init(&c, f->a->node.url))
        return NULL;
    while (!atomic_load(f->done)) {
        jv_http_do(&c, "POST", "/v1/counters/flood/increment",
                   f->a->admin_token, "{}", 2, &r);
        if (r.status == 200)
            atomic_fetch_add(&f->writes, 1);
        jv_http_resp_fini(&r);
    }
    jv_http_client_fini(&c);
    return NULL;
}

/* Config reads while counters are written without pause: a write of
 * another kind neither moves nor holds back a config answer, so they come
 * from memory. */
static void config_while_counters(api_node *a)
{
    enum {
        FLOODERS = 2,
        READS = 200
    };
    static flood_writer f[FLOODERS];
    pthread_t tid[FLOODERS];
    atomic_bool done = false;
    for (int i = 0; i < FLOODERS; i++) {
        f[i] = (flood_writer){.a = a, .done = &done};
        assert_int_equal(pthread_create(&tid[i], NULL, flood_main, &f[i]), 0);
    }
    /* The flood is on before the reads start. */
    uint64_t deadline = api_now_ms() + 10000;
    while (atomic_load(&f[0].writes) + atomic_load(&f[1].writes) < 20) {
        assert_true(api_now_ms() < deadline);
        api_sleep_ms(1);
    }
    double before = cache_hits(a);
    for (int i = 0; i < READS; i++) {
        json_t *v =
            API_OK(a, 200, "GET", "/v1/config/a/b", a->admin_token, NULL);
        assert_int_equal(API_INT(v, "value"), 100);
        json_decref(v);
    }
    double hits = cache_hits(a) - before;
    atomic_store(&done, true);
    long writes = 0;
    for (int i = 0; i < FLOODERS; i++) {
        assert_int_equal(pthread_join(tid[i], NULL), 0);
        writes += atomic_load(&f[i].writes);
    }
    printf("read cache: %.0f of %d config reads from memory during %ld "
           "counter increments\n",
           hits, READS, writes);
    assert_true(writes > 0);
    /* A write of every kind (the hourly session purge) may fall in the
     * phase; with every write counted as every kind, 0 to 2 hit. */
    assert_true(hits >= READS - 10);
}

static void test_read_cache(void **state)
{
    (void)state;
    api_node N;
    char *extra[] = {(char *)"--rate-limit", (char *)"0", NULL};
    api_start(&N, extra);
    const char *tok = N.admin_token;

    /* Answered from memory, the same bytes as from the database. */
    json_decref(API_OK(&N, 200, "POST", "/v1/counters/hot/increment", tok,
                       "{\"by\":5}"));
    json_decref(
        API_OK(&N, 200, "PUT", "/v1/config/a/b", tok, "{\"value\":{\"x\":1}}"));
    json_decref(
        API_OK(&N, 200, "PUT", "/v1/archive/r/1", tok, "{\"value\":\"v1\"}"));
    static const char *const paths[] = {"/v1/counters/hot", "/v1/config/a/b",
                                        "/v1/archive/r/1"};
    for (size_t p = 0; p < 3; p++) {
        jv_http_resp r;
        API_REQ(&N, &r, "GET", paths[p], tok, NULL);
        assert_int_equal(r.status, 200);
        until_hit(&N, paths[p], r.body);
        jv_http_resp_fini(&r);
    }

    /* Read-your-writes through it: each write is seen by the next read,
     * and by the one after (the second of a pair is the one kept). */
    for (int i = 1; i <= 100; i++) {
        json_decref(
            API_OK(&N, 200, "POST", "/v1/counters/hot/increment", tok, "{}"));
        json_decref(API_OK(&N, 200, "PUT", "/v1/config/a/b", tok,
                           api_fmt("{\"value\":%d}", i)));
        json_decref(API_OK(&N, 200, "PUT", "/v1/archive/r/1", tok,
                           api_fmt("{\"value\":%d}", i)));
        for (int twice = 0; twice < 2; twice++) {
            json_t *v = API_OK(&N, 200, "GET", "/v1/counters/hot", tok, NULL);
            assert_int_equal(API_INT(v, "total"), 5 + i);
            json_decref(v);
            v = API_OK(&N, 200, "GET", "/v1/config/a/b", tok, NULL);
            assert_int_equal(API_INT(v, "value"), i);
            json_decref(v);
            v = API_OK(&N, 200, "GET", "/v1/archive/r/1", tok, NULL);
            assert_int_equal(API_INT(v, "value"), i);
            json_decref(v);
        }
    }

    config_while_counters(&N);

    /* Hot key, one writer, readers polling. */
    static hot_reader th[HOT_READERS];
    pthread_t tid[HOT_READERS];
    atomic_long acked = 105, failures = 0;
    atomic_bool done = false;
    for (int i = 0; i < HOT_READERS; i++) {
        th[i] = (hot_reader){
            .a = &N, .acked = &acked, .done = &done, .failures = &failures};
        assert_int_equal(pthread_create(&tid[i], NULL, hot_read_main, &th[i]),
                         0);
    }
    for (int i = 1; i <= HOT_WRITES; i++) {
        json_t *v =
            API_OK(&N, 200, "POST", "/v1/counters/hot/increment", tok, "{}");
        atomic_store(&acked, API_INT(v, "total"));
        json_decref(v);
        json_decref(API_OK(&N, 200, "PUT", "/v1/archive/r/1", tok,
                           api_fmt("{\"value\":%d}", 1000 + i)));
    }
    atomic_store(&done, true);
    long reads = 0;
    for (int i = 0; i < HOT_READERS; i++) {
        assert_int_equal(pthread_join(tid[i], NULL), 0);
        if (th[i].why[0])
            fprintf(stderr, "reader %d: %s\n", i, th[i].why);
        reads += th[i].reads;
    }
    assert_int_equal(atomic_load(&failures), 0);
    json_t *v = API_OK(&N, 200, "GET", "/v1/counters/hot", tok, NULL);
    assert_int_equal(API_INT(v, "total"), 105 + HOT_WRITES);
    json_decref(v);
    printf("read cache: %ld reads of a hot key during %d writes, %.0f hits "
           "in all, none behind\n",
           reads, HOT_WRITES, cache_hits(&N));
    assert_int_equal(api_stop(&N), 0);
    api_cleanup(&N);
}

/* -- slow clients --------------------------------------------------------- */

/* Sends a GET and returns the socket, with a small receive buffer so that
 * the node's side fills up at once. */
static int start_get(unsigned port, const char *path, const char *token)
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

/* Reads up to n bytes if some are there within wait_ms; 0 at the end. */
static ssize_t trickle(int fd, size_t n, int wait_ms)
{
    char buf[1024];
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, wait_ms) <= 0)
        return -1;
    return recv(fd, buf, n < sizeof buf ? n : sizeof buf, 0);
}

static void test_slow_export(void **state)
{
    (void)state;
    api_node N;
    char *extra[] = {(char *)"--rate-limit", (char *)"0", NULL};
    api_start(&N, extra);
    unsigned port = api_port(&N);
    load(&N, 20000, 200);
    json_decref(API_OK(&N, 200, "POST", "/v1/counters/probe/increment",
                       N.admin_token, "{}"));
    size_t whole;
    free(api_export(&N, &whole));
    assert_true(whole > 1u << 20);

    int ex = start_get(port, "/v1/export", N.admin_token);
    int pg = start_get(port, "/v1/archive?limit=1000", N.admin_token);
    jv_http_client c;
    assert_int_equal(jv_http_client_init(&c, N.node.url), 0);
    uint64_t worst = 0, t_start = api_now_ms();
    size_t got = 0;
    int reads = 0;
    /* Each round: a trickle of the export and of the page (1 KiB each),
     * then other reads, which must not wait for either. */
    for (int round = 0; round < 100; round++) {
        ssize_t k = trickle(ex, 1024, 5000);
        assert_true(k > 0);
        got += (size_t)k;
        trickle(pg, 1024, 0);
        const char *paths[] = {"/v1/counters/probe", "/v1/counters?limit=5",
                               "/v1/config/k%2F0000002", "/v1/status"};
        for (size_t i = 0; i < 4; i++) {
            jv_http_resp r;
            uint64_t t0 = api_now_ms();
            jv_http_do(&c, "GET", paths[i], N.admin_token, NULL, 0, &r);
            uint64_t ms = api_now_ms() - t0;
            if (r.status != 200)
                fail_msg("GET %s: %ld %s", paths[i], r.status, r.body);
            jv_http_resp_fini(&r);
            worst = ms > worst ? ms : worst;
            reads++;
        }
    }
    /* The export was read only in part: it is still running. */
    assert_true(got < whole);
    printf("slow export: %d reads while an export (%zu of %zu bytes taken "
           "in %llu ms) and a page trickled; slowest %llu ms\n",
           reads, got, whole, (unsigned long long)(api_now_ms() - t_start),
           (unsigned long long)worst);
    if (worst > PROMPT_MS)
        fail_msg("a read took %llu ms beside a slow export",
                 (unsigned long long)worst);
    close(ex);
    close(pg);
    jv_http_client_fini(&c);
    assert_int_equal(api_stop(&N), 0);
    api_cleanup(&N);
}

/* -- export bytes and memory ---------------------------------------------- */

/* The bytes are the whole document encoded at once, as the export was
 * before it streamed: compact, keys sorted, one newline at the end. */
static void check_encoding(const char *bytes, size_t len)
{
    json_error_t e;
    json_t *doc = json_loadb(bytes, len, 0, &e);
    if (!doc)
        fail_msg("export is not JSON: %s at %d", e.text, e.position);
    char *again = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
    assert_non_null(again);
    assert_int_equal(strlen(again) + 1, len);
    assert_memory_equal(again, bytes, len - 1);
    assert_int_equal(bytes[len - 1], '\n');
    assert_string_equal(api_str(doc, "format"), "jarvis-export/1");
    free(again);
    json_decref(doc);
}

typedef struct {
    pid_t pid;
    atomic_bool stop;
    long peak;
} rss_watch;

static void *watch_main(void *arg)
{
    rss_watch *w = arg;
    while (!atomic_load(&w->stop)) {
        long now = rss_kib(w->pid);
        if (now > w->peak)
            w->peak = now;
        api_sleep_ms(20);
    }
    return NULL;
}

static void test_export_bytes_and_memory(void **state)
{
    (void)state;
    const char *env = getenv("JV_EXPORT_ENTRIES");
    long n = env ? atol(env) : EXPORT_DEFAULT;
    api_node N;
    char *extra[] = {(char *)"--rate-limit", (char *)"0", NULL};
    api_start(&N, extra);
    uint64_t t0 = api_now_ms();
    load(&N, n, 16);
    /* Removes, and keys with several values, show in the export too. */
    json_decref(API_OK(&N, 204, "DELETE", "/v1/archive/a%2F0000001",
                       N.admin_token, NULL));
    printf("export: %ld operations loaded in %llu ms\n", n,
           (unsigned long long)(api_now_ms() - t0));

    pid_t pid = N.node.proc.pid;
    rss_watch w = {.pid = pid, .peak = rss_kib(pid)};
    long base = w.peak;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, watch_main, &w), 0);
    size_t len;
    N.http.timeout_ms = 1800000; /* a million entries on a busy machine */
    t0 = api_now_ms();
    char *bytes = api_export(&N, &len);
    uint64_t ms = api_now_ms() - t0;
    atomic_store(&w.stop, true);
    pthread_join(th, NULL);
    printf("export: %zu bytes in %llu ms; node RSS %ld KiB before, peak "
           "%ld KiB (+%ld KiB)\n",
           len, (unsigned long long)ms, base, w.peak, w.peak - base);
    /* docs/api.md: a running export holds at most 8 MiB over the
     * stream buffer (32 MiB); the whole export is far larger at 10^6. */
    long bound = 40 * 1024;
    if (!SANITIZED && w.peak - base > bound)
        fail_msg("RSS grew by %ld KiB during an export, bound %ld KiB",
                 w.peak - base, bound);
    check_encoding(bytes, len);

    /* The same state gives the same bytes. */
    size_t len2;
    char *again = api_export(&N, &len2);
    assert_int_equal(len2, len);
    assert_memory_equal(again, bytes, len);
    free(again);
    free(bytes);
    assert_int_equal(api_stop(&N), 0);
    api_cleanup(&N);
}

/* -- stop with reads in flight -------------------------------------------- */

typedef struct {
    const api_node *a;
    atomic_bool *stop;
    atomic_long *answered;
} hammer;

static void *hammer_main(void *arg)
{
    hammer *h = arg;
    jv_http_client c;
    if (jv_http_client_init(&c, h->a->node.url))
        return NULL;
    c.timeout_ms = 20000;
    const char *paths[] = {"/v1/counters?limit=1000", "/v1/audit?limit=1000",
                           "/v1/counters/c%2F0000000", "/v1/archive?limit=500"};
    for (unsigned i = 0; !atomic_load(h->stop); i++) {
        jv_http_resp r;
        if (jv_http_do(&c, "GET", paths[i % 4], h->a->admin_token, NULL, 0,
                       &r) == 0 &&
            r.status == 200)
            atomic_fetch_add(h->answered, 1);
        int no_answer = r.status == 0;
        jv_http_resp_fini(&r);
        if (no_answer)
            break; /* the node has stopped */
    }
    jv_http_client_fini(&c);
    return NULL;
}

static void test_stop_with_reads(void **state)
{
    (void)state;
    enum {
        HAMMERS = 8
    };
    api_node N;
    char *extra[] = {(char *)"--rate-limit", (char *)"0", NULL};
    api_start(&N, extra);
    load(&N, 20000, 64);
    atomic_bool stop = false;
    atomic_long answered = 0;
    hammer h = {&N, &stop, &answered};
    pthread_t tid[HAMMERS];
    for (int i = 0; i < HAMMERS; i++)
        assert_int_equal(pthread_create(&tid[i], NULL, hammer_main, &h), 0);
    uint64_t t0 = api_now_ms();
    while (atomic_load(&answered) < 50) {
        if (api_now_ms() - t0 > 60000)
            fail_msg("no reads answered");
        api_sleep_ms(5);
    }
    t0 = api_now_ms();
    int rc = api_stop(&N);
    uint64_t ms = api_now_ms() - t0;
    atomic_store(&stop, true);
    for (int i = 0; i < HAMMERS; i++)
        pthread_join(tid[i], NULL);
    printf("stop: SIGTERM with %d clients reading: exit %d after %llu ms "
           "(%ld reads answered)\n",
           HAMMERS, rc, (unsigned long long)ms, (long)atomic_load(&answered));
    assert_int_equal(rc, 0);
    if (ms > 10000)
        fail_msg("stopping took %llu ms with reads in flight",
                 (unsigned long long)ms);
    api_cleanup(&N);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_your_writes),
        cmocka_unit_test(test_read_cache),
        cmocka_unit_test(test_slow_export),
        cmocka_unit_test(test_export_bytes_and_memory),
        cmocka_unit_test(test_stop_with_reads),
    };
    if (jv_http_global_init() != 0)
        return 1;
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    jv_http_global_fini();
    return rc;
}
