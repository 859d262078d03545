/*
 * api_durability_test.c - what survives: a restart keeps all state (data,
 * keys, sessions, revocations, peers), a second jarvisd on a data dir in
 * use is refused, and no acknowledged write is lost when the node is sent
 * SIGTERM (it must finish what is in flight and exit 0) or SIGKILL (sync
 * normal: a committed transaction survives a process crash) in the middle
 * of a write load from several client threads.
 *
 * The load's bound: each thread increments a counter of its own and
 * counts the answers. After the restart the counter's total T must obey
 *     acknowledged <= T <= acknowledged + unanswered
 * where "unanswered" counts the requests that may have reached the node
 * without an answer coming back (a refused connection or a 503 applied
 * nothing). The SIGKILL run goes round twice (JV_CRASH_CYCLES=N: N
 * times, scripts/nemesis.sh crash N), the bound taken over all rounds.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "apitest.h"
#include "testutil.h"

/* A list route, all pages, as one array (for before/after comparisons). */
static json_t *list_all(api_node *a, const char *route, const char *field)
{
    json_t *j = API_OK(a, 200, "GET", api_fmt("%s?limit=1000", route),
                       a->admin_token, NULL);
    assert_true(json_is_null(json_object_get(j, "next_cursor")));
    json_t *rows = json_incref(json_object_get(j, field));
    json_decref(j);
    return rows;
}

/* Everything the API shows of a node's state. */
typedef struct {
    char *export_bytes;
    size_t export_len;
    json_t *keys, *sessions, *counters, *audit, *config, *archive, *trust,
        *peers, *vv;
} snapshot;

static void snap(api_node *a, snapshot *s)
{
    s->export_bytes = api_export(a, &s->export_len);
    json_t *j = API_OK(a, 200, "GET", "/v1/keys", a->admin_token, NULL);
    s->keys = json_incref(json_object_get(j, "keys"));
    json_decref(j);
    j = API_OK(a, 200, "GET", "/v1/sessions", a->admin_token, NULL);
    s->sessions = json_incref(json_object_get(j, "sessions"));
    json_decref(j);
    s->counters = list_all(a, "/v1/counters", "counters");
    s->audit = list_all(a, "/v1/audit", "entries");
    s->config = list_all(a, "/v1/config", "config");
    s->archive = list_all(a, "/v1/archive", "entries");
    j = API_OK(a, 200, "GET", "/v1/trust", a->admin_token, NULL);
    s->trust = json_incref(j);
    json_decref(j);
    /* A peer's address and configuration survive; its live counters
     * (failures, last error) do not have to. */
    j = API_OK(a, 200, "GET", "/v1/peers", a->admin_token, NULL);
    s->peers = json_array();
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(j, "peers"), i, p)
    {
        json_array_append(s->peers, json_object_get(p, "address"));
    }
    json_decref(j);
    j = API_OK(a, 200, "GET", "/v1/status", a->admin_token, NULL);
    s->vv = json_incref(json_object_get(j, "version_vector"));
    json_decref(j);
}

static void snap_free(snapshot *s)
{
    free(s->export_bytes);
    json_t *all[] = {s->keys,    s->sessions, s->counters, s->audit, s->config,
                     s->archive, s->trust,    s->peers,    s->vv};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        json_decref(all[i]);
}

static void same(const char *what, const json_t *a, const json_t *b)
{
    if (json_equal(a, b))
        return;
    char *ta = json_dumps(a, JSON_COMPACT), *tb = json_dumps(b, JSON_COMPACT);
    print_error("%s differs after the restart:\n  %.3000s\n  %.3000s\n", what,
                ta, tb);
    free(ta);
    free(tb);
    fail();
}

/* -- restart -------------------------------------------------------------- */

static void test_restart_keeps_state(void **state)
{
    (void)state;
    api_node D;
    api_start(&D, NULL);
    const char *t = D.admin_token;
    char w[160], w_id[32], r[160], gone[160], gone_id[32];
    char w_tok[160], r_tok[160], gone_tok[160], ended_tok[160],
        revoked_tok[160], revoked_sid[32];
    api_key(&D, "dur-writer", "writer", w, w_id);
    api_key(&D, "dur-reader", "reader", r, NULL);
    api_key(&D, "dur-gone", "writer", gone, gone_id);
    api_session(&D, w, 0, w_tok, NULL);
    api_session(&D, r, 7200, r_tok, NULL);
    api_session(&D, gone, 0, gone_tok, NULL);
    api_session(&D, w, 0, ended_tok, NULL);
    api_session(&D, w, 0, revoked_tok, revoked_sid);

    /* Every kind of write. */
    json_decref(API_OK(&D, 200, "POST", "/v1/counters/d-c/increment", w_tok,
                       "{\"by\":40}"));
    json_decref(API_OK(&D, 200, "POST", "/v1/counters/d-c/increment", w,
                       "{\"by\":-2}"));
    json_decref(API_OK(&D, 201, "POST", "/v1/audit", w_tok,
                       "{\"action\":\"deploy\",\"target\":\"web-1\","
                       "\"detail\":\"v1\"}"));
    json_decref(API_OK(&D, 200, "PUT", "/v1/config/d/url", t,
                       "{\"value\":\"postgres://db\"}"));
    json_decref(API_OK(&D, 200, "PUT", "/v1/config/d/obj", w,
                       "{\"value\":{\"a\":[1,2.5,null,true]}}"));
    json_decref(API_OK(&D, 200, "PUT", "/v1/archive/d/r1", w,
                       "{\"value\":{\"rows\":1}}"));
    json_decref(
        API_OK(&D, 200, "PUT", "/v1/archive/d/r2", w, "{\"value\":[\"two\"]}"));
    assert_null(API_OK(&D, 204, "DELETE", "/v1/archive/d/r2", w, NULL));
    json_decref(API_OK(
        &D, 200, "POST", "/v1/batch", w,
        "{\"ops\":[{\"op\":\"counter.increment\",\"name\":\"d-b\",\"by\":3},"
        "{\"op\":\"config.set\",\"key\":\"d/flag\",\"value\":false},"
        "{\"op\":\"archive.add\",\"key\":\"d/r3\",\"value\":3},"
        "{\"op\":\"audit.append\",\"action\":\"batch\"}]}"));
    json_decref(API_OK(&D, 200, "POST", "/v1/trust", t,
                       "{\"node_id\":\"00112233445566778899aabbccddeeff00112233"
                       "445566778899aabbccddeeff\",\"name\":\"lab\"}"));
    json_decref(API_OK(&D, 201, "POST", "/v1/peers", t,
                       "{\"addr\":\"tcp://127.0.0.1:9\"}"));
    /* Revocations must survive too. */
    assert_null(
        API_OK(&D, 204, "DELETE", "/v1/sessions/current", ended_tok, NULL));
    assert_null(API_OK(&D, 204, "DELETE",
                       api_fmt("/v1/sessions/%s", revoked_sid), t, NULL));
    assert_null(
        API_OK(&D, 204, "DELETE", api_fmt("/v1/keys/%s", gone_id), t, NULL));

    snapshot before, after;
    snap(&D, &before);
    char token[160];
    snprintf(token, sizeof token, "%s", D.admin_token);
    assert_int_equal(api_stop(&D), 0);
    api_restart(&D, NULL);
    /* The admin session of before is still valid: no new one was made. */
    assert_string_equal(D.admin_token, token);
    snap(&D, &after);

    assert_int_equal(after.export_len, before.export_len);
    assert_memory_equal(after.export_bytes, before.export_bytes,
                        before.export_len);
    same("keys", before.keys, after.keys);
    same("sessions", before.sessions, after.sessions);
    same("counters", before.counters, after.counters);
    same("audit", before.audit, after.audit);
    same("config", before.config, after.config);
    same("archive", before.archive, after.archive);
    same("trust", before.trust, after.trust);
    same("peers", before.peers, after.peers);
    same("version vector", before.vv, after.vv);
    assert_int_equal(json_array_size(after.peers), 1);
    json_int_t seq = API_INT(before.vv, D.node_id);
    snap_free(&before);
    snap_free(&after);

    /* Credentials as before: live ones work with their roles, revoked and
     * ended ones do not. */
    json_t *j =
        API_OK(&D, 200, "POST", "/v1/counters/d-c/increment", w_tok, NULL);
    assert_int_equal(API_INT(j, "total"), 39);
    json_decref(j);
    json_decref(API_OK(&D, 200, "GET", "/v1/counters/d-c", r_tok, NULL));
    API_ERR(&D, 403, "forbidden", "PUT", "/v1/config/d/url", r_tok,
            "{\"value\":1}");
    json_decref(API_OK(&D, 200, "GET", "/v1/status", r, NULL));
    API_ERR(&D, 401, "unauthorized", "GET", "/v1/status", ended_tok, NULL);
    API_ERR(&D, 401, "unauthorized", "GET", "/v1/status", revoked_tok, NULL);
    API_ERR(&D, 401, "unauthorized", "GET", "/v1/status", gone, NULL);
    API_ERR(&D, 401, "unauthorized", "GET", "/v1/status", gone_tok, NULL);
    API_ERR(&D, 401, "unauthorized", "POST", "/v1/sessions", NULL,
            api_fmt("{\"api_key\":\"%s\"}", gone));
    /* Key names stay taken. */
    API_ERR(&D, 409, "conflict", "POST", "/v1/keys", t,
            "{\"name\":\"dur-writer\",\"role\":\"reader\"}");

    /* The log goes on where it was: no sequence number is reused, and the
     * whole log still verifies. */
    j = API_OK(&D, 200, "GET", "/v1/status", t, NULL);
    assert_int_equal(API_INT(json_object_get(j, "version_vector"), D.node_id),
                     seq + 1);
    json_decref(j);
    j = API_OK(&D, 200, "POST", "/v1/verify", t, NULL);
    assert_true(json_is_true(json_object_get(j, "ok")));
    assert_int_equal(API_INT(j, "ops"), seq + 1);
    json_decref(j);

    assert_int_equal(api_stop(&D), 0);
    api_cleanup(&D);
}

/* -- one node per data dir ------------------------------------------------ */

static void test_second_node_refused(void **state)
{
    (void)state;
    api_node D;
    api_start(&D, NULL);
    size_t l0, l1;
    char *before = api_export(&D, &l0);
    char bin[512];
    assert_true(jv_bin_path("jarvisd", bin, sizeof bin));
    char *argv[] = {bin,
                    (char *)"--data-dir",
                    D.node.dir,
                    (char *)"--api-listen",
                    (char *)"127.0.0.1:0",
                    (char *)"--listen",
                    (char *)"off",
                    NULL};
    jv_proc_result r;
    assert_int_equal(jv_proc_run(argv, NULL, 20000, &r), 0);
    assert_false(r.timed_out);
    assert_true(r.status != 0);
    const char *pid = api_fmt("pid %d", (int)D.node.proc.pid);
    if (!strstr(r.err, "another jarvisd") || !strstr(r.err, pid) ||
        !strstr(r.err, D.node.dir))
        fail_msg("the refusal does not name the running node (%s): %s", pid,
                 r.err);
    jv_proc_result_fini(&r);

    /* The running node did not notice. */
    json_decref(API_OK(&D, 200, "GET", "/health", NULL, NULL));
    char *after = api_export(&D, &l1);
    assert_int_equal(l0, l1);
    assert_memory_equal(before, after, l0);
    free(before);
    free(after);
    assert_int_equal(api_stop(&D), 0);
    api_cleanup(&D);
}

/* -- an answer being written when SIGTERM comes --------------------------- */

/* Connects a socket with a small receive buffer to the node (base URL
 * "http://127.0.0.1:PORT"), so that a large answer stays partly unsent. */
static int slow_reader(const char *url)
{
    struct sockaddr_in sa;
    unsigned port = 0;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    assert_int_equal(sscanf(url, "http://127.0.0.1:%u", &port), 1);
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int small = 4096;
    struct timeval tv = {10, 0};
    assert_true(fd >= 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

static void send_all(int fd, const char *s)
{
    assert_int_equal(send(fd, s, strlen(s), MSG_NOSIGNAL), (ssize_t)strlen(s));
}

/* Reads one answer until the node closes the connection, then parses it
 * into r (status, headers, JSON body). */
static void read_answer(int fd, jv_http_resp *r)
{
    char buf[8192];
    size_t have = 0;
    ssize_t k;
    while (have < sizeof buf - 1 &&
           (k = recv(fd, buf + have, sizeof buf - 1 - have, 0)) > 0)
        have += (size_t)k;
    close(fd);
    buf[have] = '\0';
    memset(r, 0, sizeof *r);
    char *sep = strstr(buf, "\r\n\r\n");
    if (sep == NULL || sscanf(buf, "HTTP/1.1 %ld", &r->status) != 1)
        fail_msg("no answer: '%s'", buf);
    *sep = '\0';
    r->headers = strdup(strstr(buf, "\r\n") + 2);
    r->body = strdup(sep + 4);
    assert_non_null(r->headers);
    assert_non_null(r->body);
    r->body_len = strlen(r->body);
    r->json = json_loads(r->body, 0, NULL);
}

static double api_conns(api_node *a)
{
    jv_http_resp r;
    API_REQ(a, &r, "GET", "/metrics", NULL, NULL);
    assert_int_equal(r.status, 200);
    double v = api_metric(r.body, "jarvis_api_connections");
    jv_http_resp_fini(&r);
    return v;
}

/* Waits until the node holds at least n API connections, then for one
 * more answer: the loop has gone round again since it accepted them, and
 * has read what they had sent. */
static void wait_conns(api_node *a, double n)
{
    uint64_t t0 = api_now_ms();
    while (api_conns(a) < n) {
        if (api_now_ms() - t0 > 30000)
            fail_msg("the node did not accept the connections in 30 s");
        api_sleep_ms(10);
    }
    (void)api_conns(a);
}

/* True when the file at path holds needle. */
static bool file_has(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    char *buf = NULL;
    size_t cap = 0, n = 0, k;
    do {
        if (n + 4096 + 1 > cap) {
            cap = 2 * (n + 4096 + 1);
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        k = fread(buf + n, 1, 4096, f);
        n += k;
    } while (k > 0);
    fclose(f);
    buf[n] = '\0';
    bool found = strstr(buf, needle) != NULL;
    free(buf);
    return found;
}

/* Waits until the file at path holds needle. */
static void wait_log(const char *path, const char *needle)
{
    uint64_t t0 = api_now_ms();
    while (!file_has(path, needle)) {
        if (api_now_ms() - t0 > 30000)
            fail_msg("'%s' not in %s after 30 s", needle, path);
        api_sleep_ms(10);
    }
}

static void test_sigterm_finishes_answer(void **state)
{
    (void)state;
    api_node D;
    char *extra[] = {(char *)"--max-body", (char *)"16M", NULL};
    api_start(&D, extra);
    /* An export of some 15 MB: far more than socket buffers hold. */
    size_t n = 100 * 65600 + 64;
    char *body = malloc(n), *value = malloc(60001);
    assert_non_null(body);
    assert_non_null(value);
    memset(value, 'e', 60000);
    value[60000] = '\0';
    for (int b = 0; b < 2; b++) {
        size_t k = (size_t)snprintf(body, n, "{\"ops\":[");
        for (int i = 0; i < 100; i++)
            k += (size_t)snprintf(body + k, n - k,
                                  "%s{\"op\":\"config.set\",\"key\":"
                                  "\"big/%d/%d\",\"value\":\"%s\"}",
                                  i ? "," : "", b, i, value);
        snprintf(body + k, n - k, "]}");
        json_decref(API_OK(&D, 200, "POST", "/v1/batch", D.admin_token, body));
    }
    free(body);
    free(value);
    size_t want_len;
    char *want = api_export(&D, &want_len);

    /* Ask for it, read its first bytes only, then SIGTERM the node. */
    int fd = slow_reader(D.node.url);
    const char *req = api_fmt("GET /v1/export HTTP/1.1\r\nHost: x\r\n"
                              "Authorization: Bearer %s\r\n\r\n",
                              D.admin_token);
    assert_int_equal(send(fd, req, strlen(req), MSG_NOSIGNAL),
                     (ssize_t)strlen(req));
    char *got = malloc(want_len + want_len / 64 + 65536);
    assert_non_null(got);
    size_t have = 0;
    ssize_t k = recv(fd, got, 4096, 0);
    assert_true(k > 0);
    have = (size_t)k;
    /* Two more clients are half-way through a request when the signal
     * comes; they finish while the node drains. */
    double conns = api_conns(&D);
    int fh = slow_reader(D.node.url), fw = slow_reader(D.node.url);
    static const char health[] = "GET /health HTTP/1.1\r\nHost: x\r\n";
    const char *incr =
        api_fmt("POST /v1/counters/late/increment HTTP/1.1\r\nHost: x\r\n"
                "Authorization: Bearer %s\r\n",
                D.admin_token);
    send_all(fh, health);
    send_all(fw, incr);
    wait_conns(&D, conns + 2);

    /* A slow client: nothing more is read for a while after the signal. */
    jv_proc_signal(&D.node.proc, SIGTERM);
    wait_log(D.node.log, "stopping: finishing");
    /* While it stops: /health says so, and writes are refused. */
    send_all(fh, "\r\n");
    send_all(fw, "\r\n");
    jv_http_resp r;
    read_answer(fh, &r);
    assert_int_equal(r.status, 503);
    assert_string_equal(api_str(r.json, "status"), "stopping");
    jv_http_resp_fini(&r);
    read_answer(fw, &r);
    API_CHECK_ERROR(&r, 503, "shutting_down");
    jv_http_resp_fini(&r);

    for (;;) {
        k = recv(fd, got + have, want_len + want_len / 64 + 65536 - have, 0);
        if (k <= 0)
            break;
        have += (size_t)k;
    }
    close(fd);
    /* Signal 0: only wait (a second SIGTERM would make it exit at once). */
    assert_int_equal(jv_test_node_kill(&D.node, 0), 0);

    /* The whole answer arrived. */
    got[have] = '\0';
    char *sep = strstr(got, "\r\n\r\n");
    assert_non_null(sep);
    size_t head = (size_t)(sep + 4 - got);
    /* A large answer streams in chunks (docs/api.md). */
    *sep = '\0';
    assert_non_null(strstr(got, "Transfer-Encoding: chunked"));
    size_t blen = api_dechunk(got + head, have - head);
    assert_true(blen != SIZE_MAX);
    have = head + blen;
    if (have - head != want_len)
        fail_msg("SIGTERM cut an answer being sent: %zu of %zu bytes",
                 have - head, want_len);
    assert_memory_equal(got + head, want, want_len);
    free(got);

    /* The refused write left nothing. */
    api_restart(&D, extra);
    size_t len;
    char *now = api_export(&D, &len);
    assert_int_equal(len, want_len);
    assert_memory_equal(now, want, want_len);
    free(now);
    free(want);
    assert_int_equal(api_stop(&D), 0);
    api_cleanup(&D);
}

/* -- a write load stopped by a signal ------------------------------------- */

#define LOAD_THREADS 4

typedef struct {
    const char *url, *cred;
    char name[32];
    atomic_bool *stop;
    atomic_bool acked_one; /* set after its first 200 */
    /* results, read after join */
    long acked;      /* 200: committed */
    long unanswered; /* may have been applied: no answer came */
    long refused;    /* certainly not applied: 503 or no connection */
    long attempts;
    long bad; /* a 200 whose total was not acked, or another status */
    char why[256];
} load_thread;

static void *load_main(void *arg)
{
    load_thread *t = arg;
    jv_http_client c;
    if (jv_http_client_init(&c, t->url) != 0) {
        snprintf(t->why, sizeof t->why, "no client");
        t->bad++;
        return NULL;
    }
    c.timeout_ms = 20000;
    /* Not api_fmt(): its buffers are the main thread's. */
    char p[64];
    snprintf(p, sizeof p, "/v1/counters/%s/increment", t->name);
    while (!atomic_load(t->stop)) {
        jv_http_resp r;
        t->attempts++;
        jv_http_do(&c, "POST", p, t->cred, "{\"by\":1}", 8, &r);
        const char *code = r.json
                               ? json_string_value(json_object_get(
                                     json_object_get(r.json, "error"), "code"))
                               : NULL;
        if (r.status == 200) {
            t->acked++;
            atomic_store(&t->acked_one, true);
            /* One writer per counter: the node's total is what it
             * acknowledged, unless an unanswered request was applied. */
            json_int_t total =
                json_integer_value(json_object_get(r.json, "total"));
            if (total < t->acked || total > t->acked + t->unanswered) {
                t->bad++;
                snprintf(t->why, sizeof t->why, "total %lld after %ld acks",
                         (long long)total, t->acked);
            }
        } else if ((r.status == 503 && code &&
                    strcmp(code, "shutting_down") == 0) ||
                   r.not_sent) {
            t->refused++;
        } else if (r.status == 0) {
            t->unanswered++;
        } else {
            t->bad++;
            snprintf(t->why, sizeof t->why, "answer %ld: %.200s", r.status,
                     r.body);
        }
        jv_http_resp_fini(&r);
    }
    jv_http_client_fini(&c);
    return NULL;
}

/* One cycle: LOAD_THREADS writers against D, which is stopped with sig
 * in the middle of the load and restarted; then every counter is checked
 * against what its thread was told, over all cycles so far. */
static void load_cycle(api_node *D, int sig, jv_rng *rng, load_thread *th,
                       char **extra)
{
    atomic_bool stop;
    atomic_init(&stop, false);
    pthread_t tid[LOAD_THREADS];
    for (int i = 0; i < LOAD_THREADS; i++) {
        atomic_init(&th[i].acked_one, false);
        th[i].url = D->node.url; /* a restart may change the port */
        th[i].stop = &stop;
        assert_int_equal(pthread_create(&tid[i], NULL, load_main, &th[i]), 0);
    }
    /* Somewhere in the middle of the load: once every thread has had a
     * write acknowledged, at a random moment. */
    uint64_t t0 = api_now_ms();
    for (int i = 0; i < LOAD_THREADS; i++)
        while (!atomic_load(&th[i].acked_one)) {
            if (api_now_ms() - t0 > 60000)
                fail_msg("%s: no write acknowledged in 60 s", th[i].name);
            api_sleep_ms(10);
        }
    api_sleep_ms((long)jv_rng_below(rng, 600));
    int st = jv_test_node_kill(&D->node, sig);
    atomic_store(&stop, true);
    for (int i = 0; i < LOAD_THREADS; i++)
        assert_int_equal(pthread_join(tid[i], NULL), 0);
    assert_int_equal(st, sig == SIGTERM ? 0 : 128 + sig);

    api_restart(D, extra);
    for (int i = 0; i < LOAD_THREADS; i++) {
        load_thread *t = &th[i];
        if (t->bad)
            fail_msg("%s: %ld wrong answers, last: %s", t->name, t->bad,
                     t->why);
        json_t *j = API_OK(D, 200, "GET", api_fmt("/v1/counters/%s", t->name),
                           D->admin_token, NULL);
        json_int_t total = API_INT(j, "total");
        json_decref(j);
        printf("%s: %ld attempts, %ld acknowledged, %ld refused, %ld "
               "unanswered; total after the restart %lld\n",
               t->name, t->attempts, t->acked, t->refused, t->unanswered,
               (long long)total);
        if (total < t->acked || total > t->acked + t->unanswered)
            fail_msg("%s: total %lld outside [%ld, %ld]", t->name,
                     (long long)total, t->acked, t->acked + t->unanswered);
        /* A graceful stop answers whatever it applies: what went
         * unanswered (a request racing the close of an idle connection)
         * was not applied. */
        if (sig == SIGTERM && total != t->acked)
            fail_msg("%s: SIGTERM applied %lld writes it did not answer",
                     t->name, (long long)(total - t->acked));
    }
}

/* What survived is a consistent log. Verify replays the whole log: after
 * many cycles of load that is tens of thousands of batches. */
static void verify(api_node *D)
{
    long was = D->http.timeout_ms;
    D->http.timeout_ms = 300000;
    json_t *v = API_OK(D, 200, "POST", "/v1/verify", D->admin_token, NULL);
    D->http.timeout_ms = was;
    assert_true(json_is_true(json_object_get(v, "ok")));
    json_decref(v);
}

/* Runs `cycles` load cycles (above) on one node, stopped each time with
 * sig. */
static void load_run(int sig, long cycles)
{
    api_node D;
    char w[160];
    jv_rng rng;
    /* As fast as the node goes: no rate limit. */
    char *extra[] = {(char *)"--rate-limit", (char *)"0", NULL};
    api_start(&D, extra);
    api_key(&D, "load", "writer", w, NULL);
    jv_rng_seed(&rng, jv_test_seed() ^ (uint64_t)sig);
    load_thread th[LOAD_THREADS];
    memset(th, 0, sizeof th);
    for (int i = 0; i < LOAD_THREADS; i++) {
        th[i].cred = w;
        snprintf(th[i].name, sizeof th[i].name, "load-%d", i);
    }
    for (long k = 0; k < cycles; k++) {
        load_cycle(&D, sig, &rng, th, extra);
        if (k + 1 == cycles || (k + 1) % 10 == 0)
            verify(&D);
        long acked = 0, unanswered = 0;
        for (int i = 0; i < LOAD_THREADS; i++) {
            acked += th[i].acked;
            unanswered += th[i].unanswered;
        }
        printf("signal %d, cycle %ld of %ld: %ld writes acknowledged, %ld "
               "unanswered, all there\n",
               sig, k + 1, cycles, acked, unanswered);
        fflush(stdout);
    }
    assert_int_equal(api_stop(&D), 0);
    api_cleanup(&D);
}

static void test_sigterm_under_load(void **state)
{
    (void)state;
    load_run(SIGTERM, 1);
}

/* JV_CRASH_CYCLES=N (scripts/nemesis.sh crash N) kills it N times. */
static void test_sigkill_under_load(void **state)
{
    (void)state;
    const char *env = getenv("JV_CRASH_CYCLES");
    long cycles = env ? strtol(env, NULL, 10) : 2;
    assert_true(cycles >= 1 && cycles <= 100000);
    load_run(SIGKILL, cycles);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_restart_keeps_state),
        cmocka_unit_test(test_second_node_refused),
        cmocka_unit_test(test_sigterm_finishes_answer),
        cmocka_unit_test(test_sigterm_under_load),
        cmocka_unit_test(test_sigkill_under_load),
    };
    if (jv_http_global_init() != 0)
        return 1;
    jv_test_seed();
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    jv_http_global_fini();
    return rc;
}
