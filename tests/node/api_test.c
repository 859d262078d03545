/*
 * api_test.c - every route of the session API against a real jarvisd,
 * answers checked field by field against docs/api.md: health, metrics,
 * status, counters, audit log, configuration, archive, batches, export,
 * backup, verify, peers and trust.
 *
 * One node serves the whole group; each test works under names of its own
 * so that the tests do not see each other's data.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "apitest.h"
#include "hlc.h"
#include "proc.h"

static api_node N;

static int setup(void **state)
{
    (void)state;
    api_start(&N, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int st = api_stop(&N);
    api_cleanup(&N);
    return st == 0 ? 0 : -1;
}

/* json_equal, printing both sides when they differ. */
#define assert_json_equal(a, b) json_eq_at(__FILE__, __LINE__, (a), (b))
static void json_eq_at(const char *file, int line, const json_t *a,
                       const json_t *b)
{
    if (a && b && json_equal(a, b))
        return;
    char *ta = a ? json_dumps(a, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    char *tb = b ? json_dumps(b, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    print_error("%s:%d: JSON differs:\n  %.2000s\n  %.2000s\n", file, line,
                ta ? ta : "(null)", tb ? tb : "(null)");
    free(ta);
    free(tb);
    _fail(file, line);
}

static json_t *parse(const char *text)
{
    json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);
    assert_non_null(j);
    return j;
}

/* A time field: the API's format, and within [lo, hi] (ms). */
static uint64_t check_time(const json_t *obj, const char *key, uint64_t lo,
                           uint64_t hi)
{
    uint64_t ms = 0;
    const char *s = api_str(obj, key);
    if (!api_parse_time(s, &ms))
        fail_msg("'%s' is not RFC 3339 with milliseconds: '%s'", key, s);
    if (ms < lo || ms > hi)
        fail_msg("'%s' %s is outside [%llu, %llu]", key, s,
                 (unsigned long long)lo, (unsigned long long)hi);
    return ms;
}

/* -- health, metrics, status ---------------------------------------------- */

static void test_health(void **state)
{
    (void)state;
    json_t *j = API_OK(&N, 200, "GET", "/health", NULL, NULL);
    json_t *want = parse("{\"status\":\"ok\"}");
    assert_json_equal(j, want);
    json_decref(want);
    json_decref(j);

    j = API_OK(&N, 200, "GET", "/v1/health", N.admin_token, NULL);
    API_FIELDS(j, "score", "status", "components");
    json_int_t score = API_INT(j, "score");
    assert_true(score >= 0 && score <= 100);
    /* A fresh node with no peers has nothing wrong with it. */
    assert_true(score >= 80);
    assert_string_equal(api_str(j, "status"), "healthy");
    json_t *comps = json_object_get(j, "components");
    API_FIELDS(comps, "storage", "api", "replication", "clock", "memory");
    const char *key;
    json_t *c;
    json_object_foreach(comps, key, c)
    {
        API_FIELDS(c, "status", "score", "reason");
        json_int_t s = API_INT(c, "score");
        assert_true(s >= 0 && s <= 100);
        assert_string_equal(api_str(c, "status"), "ok");
        assert_true(strlen(api_str(c, "reason")) > 0);
    }
    json_decref(j);
}

/* The process_* family describes this very node; cpu gets its CPU time. */
static void process_figures(const char *body, double *v)
{
    double now = (double)api_now_ms() / 1000.0;
    double start = api_metric(body, "process_start_time_seconds");
    char info[128];
    /* Started by this test, a few minutes at most ago (the kernel gives
     * the boot time in whole seconds). */
    if (!(start > now - 600 && start <= now + 2))
        fail_msg("process_start_time_seconds %.3f, now %.3f", start, now);
    assert_true(api_metric(body, "process_open_fds") >= 3);
    assert_true(api_metric(body, "process_max_fds") >=
                api_metric(body, "process_open_fds"));
    assert_true(api_metric(body, "process_resident_memory_bytes") > 1 << 20);
    assert_true(api_metric(body, "process_virtual_memory_bytes") >=
                api_metric(body, "process_resident_memory_bytes"));
    v[4] = api_metric(body, "process_cpu_seconds_total");
    assert_true(v[4] >= 0);
    snprintf(info, sizeof info,
             "jarvis_build_info{version=\"%s\",protocol=\"4\"", JV_VERSION);
    if (!strstr(body, info))
        fail_msg("/metrics lacks '%s'", info);
}

static void test_metrics(void **state)
{
    (void)state;
    static const char incr[] = "jarvis_requests_total{route=\"/v1/counters/{}/"
                               "increment\",method=\"POST\",status=\"200\"}";
    static const char lat[] = "jarvis_request_duration_seconds_count{route="
                              "\"/v1/counters/{}/increment\"}";
    static const char ops[] = "jarvis_ops_applied_total{origin=\"local\"}";
    static const char nf[] = "jarvis_requests_total{route=\"unmatched\","
                             "method=\"GET\",status=\"404\"}";
    static const char *const families[] = {
        "# TYPE jarvis_requests_total counter",
        "# TYPE jarvis_request_duration_seconds histogram",
        "# TYPE jarvis_ops_applied_total counter",
        "# TYPE jarvis_batch_ops histogram",
        "# TYPE jarvis_commit_seconds histogram",
        "# TYPE jarvis_database_bytes gauge",
        "# TYPE jarvis_sessions gauge",
        "# TYPE jarvis_rate_limited_total counter",
        "# TYPE jarvis_build_info gauge",
        "# TYPE process_cpu_seconds_total counter",
        "# TYPE process_open_fds gauge",
        "# TYPE process_max_fds gauge",
        "# TYPE process_resident_memory_bytes gauge",
        "# TYPE process_virtual_memory_bytes gauge",
        "# TYPE process_start_time_seconds gauge",
    };
    jv_http_resp r;
    char type[128];
    double before[5], after[5];

    for (int round = 0; round < 2; round++) {
        API_REQ(&N, &r, "GET", "/metrics", NULL, NULL);
        assert_int_equal(r.status, 200);
        assert_non_null(
            jv_http_resp_header(&r, "Content-Type", type, sizeof type));
        assert_true(strncmp(type, "text/plain; version=0.0.4", 25) == 0);
        for (size_t i = 0; i < sizeof families / sizeof families[0]; i++)
            if (!strstr(r.body, families[i]))
                fail_msg("/metrics lacks '%s'", families[i]);
        double *v = round ? after : before;
        v[0] = api_metric(r.body, incr);
        v[1] = api_metric(r.body, lat);
        v[2] = api_metric(r.body, ops);
        v[3] = api_metric(r.body, nf);
        assert_true(api_metric(r.body, "jarvis_database_bytes") > 0);
        process_figures(r.body, round ? after : before);
        /* The admin session the test opened is live. */
        assert_true(api_metric(r.body, "jarvis_sessions") >= 1);
        jv_http_resp_fini(&r);
        if (round)
            break;
        for (int i = 0; i < 3; i++)
            json_decref(API_OK(&N, 200, "POST",
                               "/v1/counters/metrics.c/increment",
                               N.admin_token, NULL));
        API_ERR_ONLY(&N, 404, "not_found", "GET", "/v1/no-such-route",
                     N.admin_token, NULL);
    }
    assert_true(after[0] == before[0] + 3);
    assert_true(after[1] == before[1] + 3);
    /* One operation per increment: they were sent one after another. */
    assert_true(after[2] == before[2] + 3);
    assert_true(after[3] == before[3] + 1);
    assert_true(after[4] >= before[4]); /* CPU time only grows */
}

static void test_status(void **state)
{
    (void)state;
    uint64_t now = api_now_ms();
    json_t *j = API_OK(&N, 200, "GET", "/v1/status", N.admin_token, NULL);
    API_FIELDS(j, "node_id", "name", "peer_address", "version", "started_at",
               "uptime_seconds", "database_bytes", "log", "version_vector",
               "held_batches", "peers", "reload", "cluster_keys",
               "protocol_version", "origin", "replication_delay");
    assert_string_equal(api_str(j, "node_id"), N.node_id);
    /* No SIGHUP yet: no reload to report; no peer: no delay measured. */
    assert_true(json_is_null(json_object_get(j, "reload")));
    assert_true(json_is_null(json_object_get(j, "replication_delay")));
    /* No cluster key here: plaintext peers, and the version it speaks. */
    assert_true(json_is_null(json_object_get(j, "cluster_keys")));
    assert_int_equal(json_integer_value(json_object_get(j, "protocol_version")),
                     4);
    assert_string_equal(api_str(j, "name"), "apitest");
    assert_string_equal(api_str(j, "version"), JV_VERSION);
    /* --listen off: no peer address. */
    assert_string_equal(api_str(j, "peer_address"), "");
    uint64_t started = check_time(j, "started_at", now - 120000, now + 1000);
    json_int_t up = API_INT(j, "uptime_seconds");
    assert_true(up >= 0 && (uint64_t)up <= (now + 1000 - started) / 1000);
    assert_true(API_INT(j, "database_bytes") > 0);
    assert_int_equal(API_INT(j, "held_batches"), 0);
    assert_true(json_is_array(json_object_get(j, "peers")));
    assert_int_equal(json_array_size(json_object_get(j, "peers")), 0);
    json_t *vv = json_object_get(j, "version_vector");
    assert_int_equal(json_object_size(vv), 1);
    json_int_t seq = API_INT(vv, N.node_id);
    assert_true(seq >= 2); /* the admin key's and session's audit entries */
    /* One origin: the log holds exactly its operations 1..seq. */
    json_t *log = json_object_get(j, "log");
    API_FIELDS(log, "batches", "operations", "bytes");
    assert_int_equal(API_INT(log, "operations"), seq);
    json_int_t batches = API_INT(log, "batches");
    json_int_t bytes = API_INT(log, "bytes");
    assert_true(batches >= 1 && batches <= seq);
    assert_true(bytes > batches * 100); /* a header, a chain link, an op */
    json_decref(j);

    /* One write is one operation: the vector moves by one, the log by one
     * batch and its bytes. */
    json_decref(API_OK(&N, 200, "POST", "/v1/counters/status.c/increment",
                       N.admin_token, NULL));
    j = API_OK(&N, 200, "GET", "/v1/status", N.admin_token, NULL);
    assert_int_equal(API_INT(json_object_get(j, "version_vector"), N.node_id),
                     seq + 1);
    log = json_object_get(j, "log");
    assert_int_equal(API_INT(log, "operations"), seq + 1);
    assert_int_equal(API_INT(log, "batches"), batches + 1);
    assert_true(API_INT(log, "bytes") > bytes);
    json_decref(j);
}

/* -- counters ------------------------------------------------------------- */

static void expect_json(json_t *got, const char *want_text)
{
    json_t *want = parse(want_text);
    assert_json_equal(got, want);
    json_decref(want);
    json_decref(got);
}

static void test_counters(void **state)
{
    (void)state;
    const char *t = N.admin_token;
    const char *p = "/v1/counters/hits/increment";
    /* No body, an empty object: by defaults to 1. */
    expect_json(API_OK(&N, 200, "POST", p, t, NULL),
                "{\"name\":\"hits\",\"total\":1}");
    expect_json(API_OK(&N, 200, "POST", p, t, "{}"),
                "{\"name\":\"hits\",\"total\":2}");
    expect_json(API_OK(&N, 200, "POST", p, t, "{\"by\":5}"),
                "{\"name\":\"hits\",\"total\":7}");
    expect_json(API_OK(&N, 200, "POST", p, t, "{\"by\":-3}"),
                "{\"name\":\"hits\",\"total\":4}");
    expect_json(API_OK(&N, 200, "POST", p, t, "{\"by\":-10}"),
                "{\"name\":\"hits\",\"total\":-6}");
    expect_json(API_OK(&N, 200, "GET", "/v1/counters/hits", t, NULL),
                api_fmt("{\"name\":\"hits\",\"total\":-6,\"shares\":[{"
                        "\"replica\":\"%s\",\"increments\":7,"
                        "\"decrements\":13,\"value\":-6}]}",
                        N.node_id));

    /* |by| up to 2^53, both ways. */
    expect_json(API_OK(&N, 200, "POST", "/v1/counters/big/increment", t,
                       "{\"by\":9007199254740992}"),
                "{\"name\":\"big\",\"total\":9007199254740992}");
    expect_json(API_OK(&N, 200, "POST", "/v1/counters/big/increment", t,
                       "{\"by\":-9007199254740992}"),
                "{\"name\":\"big\",\"total\":0}");

    /* Any UTF-8 name, percent-encoded in the path, '/' included. */
    static const char odd[] = "a/b c\xc3\xbc%?&=#+";
    const char *e = api_esc(odd, false);
    json_t *j = API_OK(&N, 200, "POST", api_fmt("/v1/counters/%s/increment", e),
                       t, "{\"by\":2}");
    assert_string_equal(api_str(j, "name"), odd);
    json_decref(j);
    j = API_OK(&N, 200, "GET", api_fmt("/v1/counters/%s", e), t, NULL);
    assert_string_equal(api_str(j, "name"), odd);
    assert_int_equal(API_INT(j, "total"), 2);
    json_decref(j);

    /* A name of 256 bytes is the longest. */
    char longest[257];
    memset(longest, 'n', 256);
    longest[256] = '\0';
    j = API_OK(&N, 200, "POST", api_fmt("/v1/counters/%s/increment", longest),
               t, NULL);
    assert_string_equal(api_str(j, "name"), longest);
    json_decref(j);
}

/* Pages through GET <route>?prefix=&limit= and returns every row (a new
 * array), checking next_cursor on the way: a string while rows remain,
 * null on the last page; *pages counts the requests. */
static json_t *page_all(const char *route, const char *field,
                        const char *prefix, int limit, int *pages)
{
    json_t *all = json_array();
    char cursor[2048] = "";
    *pages = 0;
    for (;;) {
        const char *path =
            cursor[0]
                ? api_fmt("%s?prefix=%s&limit=%d&cursor=%s", route,
                          api_esc(prefix, false), limit, api_esc(cursor, false))
                : api_fmt("%s?prefix=%s&limit=%d", route,
                          api_esc(prefix, false), limit);
        json_t *j = API_OK(&N, 200, "GET", path, N.admin_token, NULL);
        (*pages)++;
        assert_true(*pages < 100);
        API_FIELDS(j, field, "next_cursor");
        json_t *rows = json_object_get(j, field);
        json_t *next = json_object_get(j, "next_cursor");
        assert_true(json_is_array(rows));
        assert_true(json_array_size(rows) <= (size_t)limit);
        json_array_extend(all, rows);
        if (json_is_null(next)) {
            json_decref(j);
            break;
        }
        /* A cursor is only given when this page was full. */
        assert_true(json_is_string(next));
        assert_int_equal(json_array_size(rows), limit);
        snprintf(cursor, sizeof cursor, "%s", json_string_value(next));
        json_decref(j);
    }
    return all;
}

static void test_counter_list(void **state)
{
    (void)state;
    /* 25 counters page/00..page/24, with totals 1..25, in one batch. */
    json_t *ops = json_array();
    for (int i = 0; i < 25; i++)
        json_array_append_new(
            ops, json_pack("{s:s,s:s,s:i}", "op", "counter.increment", "name",
                           api_fmt("page/%02d", i), "by", i + 1));
    json_t *b = json_pack("{s:o}", "ops", ops);
    char *text = json_dumps(b, JSON_COMPACT);
    json_decref(API_OK(&N, 200, "POST", "/v1/batch", N.admin_token, text));
    free(text);
    json_decref(b);

    static const int limits[] = {10, 24, 25, 26, 1, 1000};
    for (size_t k = 0; k < sizeof limits / sizeof limits[0]; k++) {
        int pages;
        json_t *all =
            page_all("/v1/counters", "counters", "page/", limits[k], &pages);
        assert_int_equal(json_array_size(all), 25);
        /* A full last page has no cursor: the server looked one row
         * further and found none. */
        assert_int_equal(pages, (25 + limits[k] - 1) / limits[k]);
        for (int i = 0; i < 25; i++) {
            json_t *row = json_array_get(all, (size_t)i);
            API_FIELDS(row, "name", "total");
            assert_string_equal(api_str(row, "name"), api_fmt("page/%02d", i));
            assert_int_equal(API_INT(row, "total"), i + 1);
        }
        json_decref(all);
    }

    /* Default limit: everything in one page; the whole list is by name. */
    json_t *j = API_OK(&N, 200, "GET", "/v1/counters", N.admin_token, NULL);
    json_t *rows = json_object_get(j, "counters");
    assert_true(json_array_size(rows) >= 25);
    assert_true(json_is_null(json_object_get(j, "next_cursor")));
    for (size_t i = 1; i < json_array_size(rows); i++)
        assert_true(strcmp(api_str(json_array_get(rows, i - 1), "name"),
                           api_str(json_array_get(rows, i), "name")) < 0);
    json_decref(j);

    expect_json(API_OK(&N, 200, "GET", "/v1/counters?prefix=nothing-here",
                       N.admin_token, NULL),
                "{\"counters\":[],\"next_cursor\":null}");
}

/* -- audit log ------------------------------------------------------------ */

static json_t *audit_query(const char *query)
{
    json_t *j = API_OK(&N, 200, "GET", api_fmt("/v1/audit?%s", query),
                       N.admin_token, NULL);
    API_FIELDS(j, "entries", "next_cursor");
    json_t *e = json_incref(json_object_get(j, "entries"));
    json_decref(j);
    return e;
}

/* Fails unless the entries are exactly want[0..n), in that order. */
static void expect_entries(json_t *got, json_t *const *want, size_t n)
{
    json_t *w = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append(w, want[i]);
    assert_json_equal(got, w);
    json_decref(w);
    json_decref(got);
}

static void test_audit(void **state)
{
    (void)state;
    char ci[160], ci_tok[160];
    api_key(&N, "audit-ci", "writer", ci, NULL);
    api_session(&N, ci, 0, ci_tok, NULL);

    uint64_t t0 = api_now_ms();
    json_t *e1 = API_OK(
        &N, 201, "POST", "/v1/audit", ci_tok,
        "{\"action\":\"deploy\",\"target\":\"web-1\",\"detail\":\"v2.3.1\"}");
    api_sleep_ms(5);
    /* target and detail are optional. */
    json_t *e2 =
        API_OK(&N, 201, "POST", "/v1/audit", ci, "{\"action\":\"deploy\"}");
    api_sleep_ms(5);
    json_t *e3 = API_OK(&N, 201, "POST", "/v1/audit", N.admin_token,
                        "{\"action\":\"rollback\",\"target\":\"web-1\"}");
    uint64_t t1 = api_now_ms();

    json_t *es[] = {e1, e2, e3};
    uint64_t tms[3];
    json_int_t last_seq = 0;
    for (int i = 0; i < 3; i++) {
        json_t *e = es[i];
        API_FIELDS(e, "id", "origin", "seq", "time", "time_ms", "actor",
                   "action", "target", "detail");
        assert_string_equal(api_str(e, "origin"), N.node_id);
        json_int_t seq = API_INT(e, "seq");
        assert_true(seq > last_seq);
        last_seq = seq;
        assert_string_equal(api_str(e, "id"),
                            api_fmt("%s:%lld", N.node_id, (long long)seq));
        tms[i] = check_time(e, "time", t0, t1);
        assert_int_equal(API_INT(e, "time_ms"), tms[i]);
    }
    assert_true(tms[0] < tms[1] && tms[1] < tms[2]);
    /* The actor is the name of the key behind the credential, for a
     * session as for the key itself. */
    assert_string_equal(api_str(e1, "actor"), "audit-ci");
    assert_string_equal(api_str(e2, "actor"), "audit-ci");
    assert_string_equal(api_str(e3, "actor"), "admin");
    assert_string_equal(api_str(e1, "target"), "web-1");
    assert_string_equal(api_str(e1, "detail"), "v2.3.1");
    assert_string_equal(api_str(e2, "target"), "");
    assert_string_equal(api_str(e2, "detail"), "");

    /* Filters and order. */
    expect_entries(audit_query("action=deploy"), es, 2);
    json_t *rev[] = {e2, e1};
    expect_entries(audit_query("action=deploy&order=desc"), rev, 2);
    expect_entries(audit_query("action=deploy&order=asc"), es, 2);
    expect_entries(audit_query("actor=audit-ci&action=deploy"), es, 2);
    /* The key's session was opened under its name too. */
    json_t *by_ci = audit_query("actor=audit-ci");
    assert_int_equal(json_array_size(by_ci), 3);
    assert_string_equal(api_str(json_array_get(by_ci, 0), "action"),
                        "session.create");
    assert_json_equal(json_array_get(by_ci, 1), e1);
    assert_json_equal(json_array_get(by_ci, 2), e2);
    json_decref(by_ci);
    expect_entries(audit_query("actor=admin&action=rollback"), es + 2, 1);
    expect_entries(audit_query("actor=audit-ci&action=rollback"), es, 0);

    /* since <= time < until, in RFC 3339 and in milliseconds. */
    const char *s2 = api_str(e2, "time"), *s3 = api_str(e3, "time");
    expect_entries(audit_query(api_fmt("since=%s", s2)), es + 1, 2);
    expect_entries(
        audit_query(api_fmt("since=%llu", (unsigned long long)tms[1])), es + 1,
        2);
    expect_entries(audit_query(api_fmt("since=%s&until=%s&action=deploy",
                                       api_str(e1, "time"), s3)),
                   es, 2);
    expect_entries(
        audit_query(api_fmt("since=%llu&until=%llu", (unsigned long long)tms[1],
                            (unsigned long long)tms[2])),
        es + 1, 1);
    expect_entries(
        audit_query(api_fmt("since=%llu&until=%llu", (unsigned long long)tms[1],
                            (unsigned long long)tms[1])),
        es, 0);
    /* An offset names the same instant: e2's time two hours ahead. */
    char local[40];
    api_format_time(tms[1] + 2 * 3600 * 1000, local);
    local[23] = '\0';
    expect_entries(
        audit_query(api_fmt("since=%s%%2B02:00&action=deploy", local)), es + 1,
        1);
    json_t *rev3[] = {e3, e2};
    expect_entries(audit_query(api_fmt("since=%s&order=desc", s2)), rev3, 2);

    /* Paging, both ways, over 7 entries of one action. */
    json_t *pg[7];
    for (int i = 0; i < 7; i++)
        pg[i] = API_OK(&N, 201, "POST", "/v1/audit", ci,
                       api_fmt("{\"action\":\"page\",\"detail\":\"%d\"}", i));
    for (int desc = 0; desc < 2; desc++) {
        json_t *all = json_array();
        char cursor[256] = "";
        int pages = 0;
        for (;;) {
            json_t *j = API_OK(&N, 200, "GET",
                               api_fmt("/v1/audit?action=page&limit=3%s%s%s",
                                       desc ? "&order=desc" : "",
                                       cursor[0] ? "&cursor=" : "", cursor),
                               N.admin_token, NULL);
            pages++;
            json_array_extend(all, json_object_get(j, "entries"));
            json_t *next = json_object_get(j, "next_cursor");
            if (json_is_null(next)) {
                json_decref(j);
                break;
            }
            assert_true(json_is_string(next));
            snprintf(cursor, sizeof cursor, "%s",
                     api_esc(json_string_value(next), false));
            json_decref(j);
            assert_true(pages < 10);
        }
        assert_int_equal(pages, 3);
        assert_int_equal(json_array_size(all), 7);
        for (int i = 0; i < 7; i++)
            assert_json_equal(json_array_get(all, (size_t)i),
                              pg[desc ? 6 - i : i]);
        json_decref(all);
    }
    for (int i = 0; i < 7; i++)
        json_decref(pg[i]);
    json_decref(e1);
    json_decref(e2);
    json_decref(e3);
}

/* -- configuration -------------------------------------------------------- */

/* A register as PUT and GET give it: the fields, the value, set_by this
 * node, set_at the physical part of the stamp. */
static void check_register(const json_t *j, const char *key, const char *value,
                           uint64_t lo, uint64_t hi)
{
    API_FIELDS(j, "key", "value", "set_by", "stamp", "set_at");
    assert_string_equal(api_str(j, "key"), key);
    json_t *want = parse(value);
    assert_json_equal(json_object_get(j, "value"), want);
    json_decref(want);
    assert_string_equal(api_str(j, "set_by"), N.node_id);
    json_int_t stamp = API_INT(j, "stamp");
    assert_true(stamp > 0);
    uint64_t at = check_time(j, "set_at", lo, hi);
    assert_int_equal(at, jv_hlc_ms((uint64_t)stamp));
}

static void test_config(void **state)
{
    (void)state;
    static const char *const values[] = {
        "\"postgres://db:5432\"",
        "42",
        "-7",
        "1.5",
        "true",
        "false",
        "null",
        "[1,\"a\",null,[]]",
        "{\"b\":{\"c\":[1,2]},\"a\":1}",
        "\"\"",
        "\"\xc3\xbcn\xc3\xaf \\u2603\"",
        "9007199254740993",
    };
    const size_t nv = sizeof values / sizeof values[0];
    for (size_t i = 0; i < nv; i++) {
        const char *key = api_fmt("types/%zu", i);
        uint64_t t0 = api_now_ms();
        json_t *put =
            API_OK(&N, 200, "PUT", api_fmt("/v1/config/%s", key), N.admin_token,
                   api_fmt("{\"value\":%s}", values[i]));
        check_register(put, key, values[i], t0, api_now_ms());
        json_t *get = API_OK(&N, 200, "GET", api_fmt("/v1/config/%s", key),
                             N.admin_token, NULL);
        assert_json_equal(get, put);
        json_decref(put);
        json_decref(get);
    }

    /* Overwriting: the later write wins, with a greater stamp. */
    json_t *old =
        API_OK(&N, 200, "GET", "/v1/config/types/0", N.admin_token, NULL);
    json_t *now = API_OK(&N, 200, "PUT", "/v1/config/types/0", N.admin_token,
                         "{\"value\":{\"moved\":true}}");
    assert_true(API_INT(now, "stamp") > API_INT(old, "stamp"));
    json_t *get =
        API_OK(&N, 200, "GET", "/v1/config/types/0", N.admin_token, NULL);
    assert_json_equal(get, now);
    json_decref(old);
    json_decref(now);
    json_decref(get);

    /* A key with '/' as it is in the path, or percent-encoded. */
    json_t *put = API_OK(&N, 200, "PUT", "/v1/config/db/primary/url",
                         N.admin_token, "{\"value\":\"postgres://a\"}");
    assert_string_equal(api_str(put, "key"), "db/primary/url");
    get = API_OK(&N, 200, "GET", "/v1/config/db%2Fprimary%2Furl", N.admin_token,
                 NULL);
    assert_json_equal(get, put);
    json_decref(put);
    json_decref(get);

    /* The change is audited: config.set, the key as target. */
    json_t *e = audit_query("action=config.set&order=desc&limit=1");
    assert_int_equal(json_array_size(e), 1);
    assert_string_equal(api_str(json_array_get(e, 0), "target"),
                        "db/primary/url");
    assert_string_equal(api_str(json_array_get(e, 0), "actor"), "admin");
    json_decref(e);

    /* The list, by key, paged, each row as GET gives it. */
    int pages;
    json_t *all = page_all("/v1/config", "config", "types/", 5, &pages);
    assert_int_equal(json_array_size(all), nv);
    assert_int_equal(pages, 3);
    for (size_t i = 0; i < nv; i++) {
        json_t *row = json_array_get(all, i);
        if (i > 0)
            assert_true(strcmp(api_str(json_array_get(all, i - 1), "key"),
                               api_str(row, "key")) < 0);
        json_t *one = API_OK(&N, 200, "GET",
                             api_fmt("/v1/config/%s", api_str(row, "key")),
                             N.admin_token, NULL);
        assert_json_equal(row, one);
        json_decref(one);
    }
    json_decref(all);
}

/* -- archive -------------------------------------------------------------- */

static void check_entry(const json_t *j, const char *key, const char *value,
                        uint64_t lo, uint64_t hi)
{
    API_FIELDS(j, "key", "value", "added_by", "stamp", "added_at", "values",
               "all");
    assert_string_equal(api_str(j, "key"), key);
    json_t *want = parse(value);
    assert_json_equal(json_object_get(j, "value"), want);
    json_decref(want);
    /* One value: "all" holds it, as the entry shows it. */
    json_t *all = json_object_get(j, "all");
    assert_int_equal(json_array_size(all), 1);
    json_t *v = json_array_get(all, 0);
    API_FIELDS(v, "value", "added_by", "stamp", "added_at");
    const char *same[] = {"value", "added_by", "stamp", "added_at"};
    for (size_t i = 0; i < 4; i++)
        assert_json_equal(json_object_get(v, same[i]),
                          json_object_get(j, same[i]));
    assert_string_equal(api_str(j, "added_by"), N.node_id);
    json_int_t stamp = API_INT(j, "stamp");
    assert_int_equal(check_time(j, "added_at", lo, hi),
                     jv_hlc_ms((uint64_t)stamp));
    assert_int_equal(API_INT(j, "values"), 1);
}

static void test_archive(void **state)
{
    (void)state;
    const char *t = N.admin_token;
    uint64_t t0 = api_now_ms();
    json_t *a = API_OK(&N, 200, "PUT", "/v1/archive/reports/2026-11", t,
                       "{\"value\":{\"rows\":12}}");
    check_entry(a, "reports/2026-11", "{\"rows\":12}", t0, api_now_ms());
    json_t *g =
        API_OK(&N, 200, "GET", "/v1/archive/reports%2F2026-11", t, NULL);
    assert_json_equal(g, a);
    json_decref(g);

    /* A second add replaces the value; one value remains. */
    json_t *b = API_OK(&N, 200, "PUT", "/v1/archive/reports/2026-11", t,
                       "{\"value\":[\"x\"]}");
    check_entry(b, "reports/2026-11", "[\"x\"]", t0, api_now_ms());
    assert_true(API_INT(b, "stamp") > API_INT(a, "stamp"));
    g = API_OK(&N, 200, "GET", "/v1/archive/reports/2026-11", t, NULL);
    assert_json_equal(g, b);
    json_decref(g);
    json_decref(a);
    json_decref(b);

    /* Remove: 204, then absent; a second remove finds nothing. */
    assert_null(
        API_OK(&N, 204, "DELETE", "/v1/archive/reports/2026-11", t, NULL));
    API_ERR(&N, 404, "not_found", "GET", "/v1/archive/reports/2026-11", t,
            NULL);
    API_ERR(&N, 404, "not_found", "DELETE", "/v1/archive/reports/2026-11", t,
            NULL);
    /* And it can be added again. */
    json_decref(API_OK(&N, 200, "PUT", "/v1/archive/reports/2026-11", t,
                       "{\"value\":\"back\"}"));

    /* The list by prefix, paged; each row as GET gives it. */
    for (int i = 0; i < 5; i++)
        json_decref(API_OK(&N, 200, "PUT",
                           api_fmt("/v1/archive/arch-list/%d", i), t,
                           api_fmt("{\"value\":%d}", i)));
    int pages;
    json_t *all = page_all("/v1/archive", "entries", "arch-list/", 2, &pages);
    assert_int_equal(pages, 3);
    assert_int_equal(json_array_size(all), 5);
    for (int i = 0; i < 5; i++) {
        json_t *row = json_array_get(all, (size_t)i);
        assert_string_equal(api_str(row, "key"), api_fmt("arch-list/%d", i));
        assert_int_equal(API_INT(row, "value"), i);
        json_t *one = API_OK(&N, 200, "GET",
                             api_fmt("/v1/archive/arch-list/%d", i), t, NULL);
        /* A listing gives each key's latest value; GET adds "all". */
        assert_int_equal(json_array_size(json_object_get(one, "all")), 1);
        json_object_del(one, "all");
        assert_json_equal(row, one);
        json_decref(one);
    }
    json_decref(all);
}

/* -- batches -------------------------------------------------------------- */

static void batch_refused(int status, const char *code, const char *body,
                          const char *op_named)
{
    jv_http_resp r;
    size_t l0, l1;
    char *before = api_export(&N, &l0);
    API_REQ(&N, &r, "POST", "/v1/batch", N.admin_token, body);
    API_CHECK_ERROR(&r, status, code);
    const char *msg = api_str(json_object_get(r.json, "error"), "message");
    if (op_named && !strstr(msg, op_named))
        fail_msg("the error does not name '%s': %s", op_named, msg);
    jv_http_resp_fini(&r);
    char *after = api_export(&N, &l1);
    assert_int_equal(l0, l1);
    assert_memory_equal(before, after, l0);
    free(before);
    free(after);
}

static void test_batch(void **state)
{
    (void)state;
    const char *t = N.admin_token;
    json_decref(
        API_OK(&N, 200, "PUT", "/v1/archive/b-reports/0", t, "{\"value\":0}"));

    /* One op refers to something absent: 404 naming it, nothing applied. */
    batch_refused(
        404, "not_found",
        "{\"ops\":[{\"op\":\"counter.increment\",\"name\":\"b-req\",\"by\":2},"
        "{\"op\":\"audit.append\",\"action\":\"b-deploy\"},"
        "{\"op\":\"config.set\",\"key\":\"b-feature/x\",\"value\":true},"
        "{\"op\":\"archive.add\",\"key\":\"b-reports/1\",\"value\":1},"
        "{\"op\":\"archive.remove\",\"key\":\"b-reports/absent\"}]}",
        "op 4");
    /* Invalid ops: 400 naming the op. */
    batch_refused(
        400, "invalid_field",
        "{\"ops\":[{\"op\":\"counter.increment\",\"name\":\"b-req\"},"
        "{\"op\":\"archive.remove\",\"key\":\"b-reports/0\"},"
        "{\"op\":\"counter.increment\",\"name\":\"b-req\",\"by\":0}]}",
        "op 2");
    batch_refused(400, "invalid_field",
                  "{\"ops\":[{\"op\":\"counter.increment\",\"name\":\"b-r\"},"
                  "{\"op\":\"counter.explode\",\"name\":\"b-r\"}]}",
                  "op 1");
    batch_refused(400, "invalid_field",
                  "{\"ops\":[{\"op\":\"counter.increment\",\"name\":\"b-r\"},"
                  "{\"op\":\"archive.remove\",\"key\":\"b-reports/0\"},"
                  "{\"op\":\"audit.append\",\"action\":\"x\"},"
                  "{\"op\":\"config.set\",\"key\":\"b-k\"}]}",
                  "op 3");
    batch_refused(400, "invalid_field",
                  "{\"ops\":[{\"op\":\"audit.append\",\"target\":\"x\"},"
                  "{\"op\":\"counter.increment\",\"name\":\"b-r\"}]}",
                  "op 0");
    batch_refused(400, "invalid_field",
                  "{\"ops\":[{\"op\":\"counter.increment\",\"name\":\"b-r\"},"
                  "{\"op\":\"archive.add\",\"key\":\"\",\"value\":1}]}",
                  "op 1");
    batch_refused(400, "invalid_field",
                  "{\"ops\":[{\"op\":\"counter.increment\",\"name\":\"b-r\"},"
                  "7]}",
                  "op 1");
    batch_refused(400, "invalid_field", "{\"ops\":[]}", NULL);
    batch_refused(400, "invalid_field", "{\"ops\":{}}", NULL);
    batch_refused(400, "invalid_field", "{}", NULL);
    API_ERR(&N, 404, "not_found", "GET", "/v1/config/b-feature/x", t, NULL);
    API_ERR(&N, 404, "not_found", "GET", "/v1/counters/b-req", t, NULL);

    /* All five kinds at once: one result per op, as the single route. */
    json_t *res = API_OK(
        &N, 200, "POST", "/v1/batch", t,
        "{\"ops\":[{\"op\":\"counter.increment\",\"name\":\"b-req\",\"by\":2},"
        "{\"op\":\"audit.append\",\"action\":\"b-deploy\",\"target\":"
        "\"web-1\",\"detail\":\"v2\"},"
        "{\"op\":\"config.set\",\"key\":\"b-feature/x\",\"value\":true},"
        "{\"op\":\"archive.add\",\"key\":\"b-reports/1\",\"value\":{\"ok\":"
        "true}},"
        "{\"op\":\"archive.remove\",\"key\":\"b-reports/0\"}]}");
    API_FIELDS(res, "results");
    json_t *rs = json_object_get(res, "results");
    assert_int_equal(json_array_size(rs), 5);
    expect_json(json_incref(json_array_get(rs, 0)),
                "{\"name\":\"b-req\",\"total\":2}");
    json_t *au = json_array_get(rs, 1);
    API_FIELDS(au, "id", "origin", "seq", "time", "time_ms", "actor", "action",
               "target", "detail");
    json_t *q = audit_query("action=b-deploy");
    assert_int_equal(json_array_size(q), 1);
    assert_json_equal(json_array_get(q, 0), au);
    json_decref(q);
    json_t *g = API_OK(&N, 200, "GET", "/v1/config/b-feature/x", t, NULL);
    assert_json_equal(json_array_get(rs, 2), g);
    json_decref(g);
    g = API_OK(&N, 200, "GET", "/v1/archive/b-reports/1", t, NULL);
    assert_json_equal(json_array_get(rs, 3), g);
    json_decref(g);
    expect_json(json_incref(json_array_get(rs, 4)),
                "{\"key\":\"b-reports/0\",\"removed\":true}");
    json_decref(res);
    API_ERR(&N, 404, "not_found", "GET", "/v1/archive/b-reports/0", t, NULL);

    /* 1000 ops is the most; 1001 are refused. */
    json_t *ops = json_array();
    for (int i = 0; i < 1001; i++)
        json_array_append_new(ops,
                              json_pack("{s:s,s:s}", "op", "counter.increment",
                                        "name", "b-bulk"));
    json_t *body = json_pack("{s:O}", "ops", ops);
    char *text = json_dumps(body, JSON_COMPACT);
    batch_refused(400, "invalid_field", text, NULL);
    free(text);
    json_array_remove(ops, 0);
    json_decref(body);
    body = json_pack("{s:o}", "ops", ops);
    text = json_dumps(body, JSON_COMPACT);
    res = API_OK(&N, 200, "POST", "/v1/batch", t, text);
    rs = json_object_get(res, "results");
    assert_int_equal(json_array_size(rs), 1000);
    for (size_t i = 0; i < 1000; i++)
        assert_int_equal(API_INT(json_array_get(rs, i), "total"),
                         (json_int_t)i + 1);
    json_decref(res);
    free(text);
    json_decref(body);
    g = API_OK(&N, 200, "GET", "/v1/counters/b-bulk", t, NULL);
    assert_int_equal(API_INT(g, "total"), 1000);
    json_decref(g);
}

/* -- export --------------------------------------------------------------- */

static void test_export(void **state)
{
    (void)state;
    const char *t = N.admin_token;
    json_decref(API_OK(&N, 200, "POST", "/v1/counters/ex-c/increment", t,
                       "{\"by\":-4}"));
    json_decref(API_OK(&N, 200, "PUT", "/v1/config/ex-k", t,
                       "{\"value\":[1.25,\"z\"]}"));
    json_decref(
        API_OK(&N, 200, "PUT", "/v1/archive/ex-a", t, "{\"value\":null}"));

    size_t l1, l2;
    char *x1 = api_export(&N, &l1);
    /* Reads change nothing. */
    json_decref(API_OK(&N, 200, "GET", "/v1/status", t, NULL));
    json_decref(API_OK(&N, 200, "GET", "/v1/counters", t, NULL));
    char *x2 = api_export(&N, &l2);
    assert_int_equal(l1, l2);
    assert_memory_equal(x1, x2, l1);
    free(x2);

    /* Deterministic JSON: sorted keys, compact, one line. */
    json_t *x = json_loadb(x1, l1, 0, NULL);
    assert_non_null(x);
    char *canon = json_dumps(x, JSON_COMPACT | JSON_SORT_KEYS);
    assert_int_equal(strlen(canon) + 1, l1);
    assert_memory_equal(canon, x1, l1 - 1);
    assert_int_equal(x1[l1 - 1], '\n');
    free(canon);

    /* Only the replicated state: no keys, sessions, peers, secrets. */
    API_FIELDS(x, "format", "counters", "audit", "config", "archive",
               "archive_context", "trust");
    assert_string_equal(api_str(x, "format"), "jarvis-export/1");
    assert_null(strstr(x1, "jvk_"));
    assert_null(strstr(x1, "jvs_"));
    assert_null(strstr(x1, N.node.admin_key));
    assert_int_equal(json_object_size(json_object_get(x, "trust")), 0);

    /* Every part agrees with the routes that read it. */
    json_t *c = json_object_get(json_object_get(x, "counters"), "ex-c");
    expect_json(json_incref(c),
                api_fmt("{\"%s\":{\"p\":0,\"n\":4}}", N.node_id));
    json_t *reg = API_OK(&N, 200, "GET", "/v1/config/ex-k", t, NULL);
    json_t *want =
        json_pack("{s:O,s:O,s:O}", "value", json_object_get(reg, "value"),
                  "stamp", json_object_get(reg, "stamp"), "replica",
                  json_object_get(reg, "set_by"));
    assert_json_equal(json_object_get(json_object_get(x, "config"), "ex-k"),
                      want);
    json_decref(want);
    json_decref(reg);
    json_t *ent = API_OK(&N, 200, "GET", "/v1/archive/ex-a", t, NULL);
    json_t *vals = json_object_get(json_object_get(x, "archive"), "ex-a");
    assert_int_equal(json_array_size(vals), 1);
    json_t *v0 = json_array_get(vals, 0);
    API_FIELDS(v0, "replica", "n", "stamp", "value");
    assert_string_equal(api_str(v0, "replica"), N.node_id);
    assert_int_equal(API_INT(v0, "stamp"), API_INT(ent, "stamp"));
    assert_true(json_is_null(json_object_get(v0, "value")));
    json_decref(ent);
    json_t *ctx = json_object_get(x, "archive_context");
    API_FIELDS(ctx, "vector", "cloud");
    assert_true(API_INT(json_object_get(ctx, "vector"), N.node_id) >=
                API_INT(v0, "n"));

    /* The audit part holds every entry the audit route lists, in time
     * order. */
    json_t *audit = json_object_get(x, "audit");
    json_t *listed = audit_query("limit=1000");
    assert_int_equal(json_array_size(audit), json_array_size(listed));
    for (size_t i = 0; i < json_array_size(audit); i++) {
        json_t *a = json_array_get(audit, i), *l = json_array_get(listed, i);
        API_FIELDS(a, "origin", "seq", "time_ms", "actor", "action", "target",
                   "detail");
        assert_int_equal(API_INT(a, "seq"), API_INT(l, "seq"));
        assert_int_equal(API_INT(a, "time_ms"), API_INT(l, "time_ms"));
        assert_string_equal(api_str(a, "action"), api_str(l, "action"));
        if (i > 0)
            assert_true(API_INT(json_array_get(audit, i - 1), "time_ms") <=
                        API_INT(a, "time_ms"));
    }
    json_decref(listed);
    json_decref(x);

    /* A write changes it. */
    json_decref(
        API_OK(&N, 200, "POST", "/v1/counters/ex-c/increment", t, NULL));
    x2 = api_export(&N, &l2);
    assert_true(l1 != l2 || memcmp(x1, x2, l1) != 0);
    free(x2);
    free(x1);
}

/* -- backup and verify ---------------------------------------------------- */

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    char buf[65536];
    size_t n;
    assert_non_null(in);
    assert_non_null(out);
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(in);
    assert_int_equal(fclose(out), 0);
}

static void check_verify(api_node *a, json_int_t ops)
{
    json_t *v = API_OK(a, 200, "POST", "/v1/verify", a->admin_token, NULL);
    API_FIELDS(v, "ok", "integrity", "batches", "ops", "origins",
               "bad_signatures", "bad_links", "bad_encodings", "vv_matches",
               "state_matches", "detail", "base", "base_ok", "base_bytes",
               "compacted");
    assert_true(json_is_true(json_object_get(v, "ok")));
    /* Nothing compacted on a node without peers. */
    assert_true(json_is_false(json_object_get(v, "base")));
    assert_string_equal(api_str(v, "integrity"), "ok");
    assert_true(API_INT(v, "batches") >= 1);
    assert_int_equal(API_INT(v, "ops"), ops);
    assert_true(API_INT(v, "ops") >= API_INT(v, "batches"));
    assert_int_equal(API_INT(v, "origins"), 1);
    assert_int_equal(API_INT(v, "bad_signatures"), 0);
    assert_int_equal(API_INT(v, "bad_links"), 0);
    assert_int_equal(API_INT(v, "bad_encodings"), 0);
    assert_true(json_is_true(json_object_get(v, "vv_matches")));
    assert_true(json_is_true(json_object_get(v, "state_matches")));
    assert_string_equal(api_str(v, "detail"), "");
    json_decref(v);
}

static json_int_t own_seq(api_node *a)
{
    json_t *s = API_OK(a, 200, "GET", "/v1/status", a->admin_token, NULL);
    json_int_t seq = API_INT(json_object_get(s, "version_vector"), a->node_id);
    json_decref(s);
    return seq;
}

static void test_backup_verify(void **state)
{
    (void)state;
    char dir[PATH_MAX], path[PATH_MAX + 16], body[PATH_MAX + 32];
    struct stat sb;
    /* A plain name goes into the node's backup dir (DATA_DIR/backups by
     * default); the answer gives the full path. */
    assert_non_null(realpath(N.node.dir, dir));
    strcat(dir, "/backups");
    snprintf(path, sizeof path, "%s/b.db", dir);
    snprintf(body, sizeof body, "{\"path\":\"b.db\"}");

    /* Every operation of the log is checked: the count is this node's
     * sequence number (one origin). */
    check_verify(&N, own_seq(&N));

    size_t elen;
    char *before = api_export(&N, &elen);
    json_t *b = API_OK(&N, 201, "POST", "/v1/backup", N.admin_token, body);
    API_FIELDS(b, "path", "bytes");
    assert_string_equal(api_str(b, "path"), path);
    assert_int_equal(stat(path, &sb), 0);
    assert_true(sb.st_size > 0);
    assert_int_equal(API_INT(b, "bytes"), sb.st_size);
    json_decref(b);

    API_ERR(&N, 409, "conflict", "POST", "/v1/backup", N.admin_token, body);
    API_ERR(&N, 400, "invalid_field", "POST", "/v1/backup", N.admin_token,
            "{\"path\":\"relative/b.db\"}");
    API_ERR(&N, 400, "invalid_field", "POST", "/v1/backup", N.admin_token,
            "{}");
    /* A directory that is not there is the caller's mistake, and says so;
     * nothing is written. */
    char missing[PATH_MAX + 32], mbody[PATH_MAX + 64];
    snprintf(missing, sizeof missing, "%s/no-such-dir/b.db", dir);
    snprintf(mbody, sizeof mbody, "{\"path\":\"%s\"}", missing);
    jv_http_resp mr = {0};
    API_REQ(&N, &mr, "POST", "/v1/backup", N.admin_token, mbody);
    API_CHECK_ERROR(&mr, 400, "invalid_field");
    assert_non_null(strstr(mr.body, "does not exist"));
    jv_http_resp_fini(&mr);
    assert_int_equal(stat(missing, &sb), -1);

    /* Both actions are audited, by the admin key's name. */
    json_t *e = audit_query("action=backup");
    assert_int_equal(json_array_size(e), 1);
    assert_string_equal(api_str(json_array_get(e, 0), "target"), path);
    assert_string_equal(api_str(json_array_get(e, 0), "actor"), "admin");
    json_decref(e);
    e = audit_query("action=verify");
    assert_int_equal(json_array_size(e), 1);
    assert_string_equal(api_str(json_array_get(e, 0), "actor"), "admin");
    json_decref(e);

    /* The backup is a database a node runs on: its export is the state
     * when the backup was taken, and it verifies. */
    api_node r;
    char to[800];
    api_prepare(&r);
    assert_int_equal(mkdir(r.node.dir, 0700), 0);
    static const char *const files[] = {"node.key", "node.id", "admin.key"};
    for (size_t i = 0; i < 3; i++) {
        char from[800];
        snprintf(from, sizeof from, "%s/%s", N.node.dir, files[i]);
        snprintf(to, sizeof to, "%s/%s", r.node.dir, files[i]);
        copy_file(from, to);
        chmod(to, 0600);
    }
    snprintf(to, sizeof to, "%s/jarvis.db", r.node.dir);
    copy_file(path, to);
    /* The admin session is in the backup too: using it keeps the restored
     * node from writing anything before its export is taken. */
    snprintf(r.admin_token, sizeof r.admin_token, "%s", N.admin_token);
    api_restart(&r, NULL);
    size_t rlen;
    char *restored = api_export(&r, &rlen);
    assert_int_equal(rlen, elen);
    assert_memory_equal(restored, before, elen);
    free(restored);
    free(before);
    check_verify(&r, own_seq(&r));
    assert_int_equal(api_stop(&r), 0);
    api_cleanup(&r);
}

/* -- peers, trust, test faults -------------------------------------------- */

static void test_peers_trust(void **state)
{
    (void)state;
    expect_json(API_OK(&N, 200, "GET", "/v1/peers", N.admin_token, NULL),
                "{\"peers\":[]}");
    expect_json(API_OK(&N, 200, "GET", "/v1/trust", N.admin_token, NULL),
                api_fmt("{\"self\":\"%s\",\"trust\":[]}", N.node_id));
    /* Without --test-faults the fault switch does not exist. */
    API_ERR(&N, 404, "not_found", "POST", "/v1/debug/faults", N.admin_token,
            "{\"unblock_all\":true}");
    API_ERR(&N, 404, "not_found", "GET", "/v1/debug/faults", N.admin_token,
            NULL);
    API_ERR(&N, 404, "not_found", "POST", "/v1/debug/faults", NULL, "{}");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_health),
        cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_status),
        cmocka_unit_test(test_counters),
        cmocka_unit_test(test_counter_list),
        cmocka_unit_test(test_audit),
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_archive),
        cmocka_unit_test(test_batch),
        cmocka_unit_test(test_export),
        cmocka_unit_test(test_backup_verify),
        cmocka_unit_test(test_peers_trust),
    };
    if (jv_http_global_init() != 0)
        return 1;
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    jv_http_global_fini();
    return rc;
}
