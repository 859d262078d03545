/*
 * watch_test.c - GET /v1/watch against real jarvisd processes, checked
 * against docs/api.md "Change streams": the events of local writes and of
 * a peer's writes arrive once each, in per-origin order, with strictly
 * increasing ids; a stream resumes exactly (Last-Event-ID or ?cursor=)
 * after a disconnect and after a restart of the node; a cursor the log
 * no longer covers answers 410 cursor_expired; a consumer that does not
 * read falls behind, is told "lagged" and closed while a fast one and the
 * writer carry on; filters; credentials. (A peer's writes:
 * tests/net/watch_test.c.)
 *
 * Every wait is a read with a generous deadline, never a fixed sleep.
 */
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "apitest.h"
#include "sse.h"

#define WAIT_MS 30000

typedef struct {
    char id[32];
    char event[32];
    json_t *data;
} ev;

static uint64_t idnum(const char *s)
{
    return strtoull(s, NULL, 10);
}

/* Opens a stream that must answer 200 and start with hello; returns the
 * hello's data cursor in now (may be NULL) and its id in start. */
static void open_ok(jv_sse *s, const char *url, const char *token,
                    const char *query, const char *last_id, int rcvbuf,
                    char *start, char *now)
{
    char path[512];
    snprintf(path, sizeof(path), "/v1/watch%s", query ? query : "");
    assert_int_equal(jv_sse_open(s, url, path, token, last_id, rcvbuf, WAIT_MS),
                     0);
    if (s->status != 200)
        fail_msg("GET %s: %d %s", path, s->status, s->body ? s->body : "");
    jv_sse_event e;
    assert_int_equal(jv_sse_next(s, &e, WAIT_MS), 1);
    assert_string_equal(e.event, "hello");
    json_t *d = json_loads(e.data, 0, NULL);
    assert_non_null(d);
    assert_int_equal(strlen(api_str(d, "node")), 64);
    assert_true(api_str(d, "cursor")[0] != '\0');
    if (now)
        snprintf(now, 32, "%s", api_str(d, "cursor"));
    if (start)
        snprintf(start, 32, "%s", e.id);
    json_decref(d);
    jv_sse_event_fini(&e);
}

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The next n events (pings skipped); fails the test past WAIT_MS, pings
 * or not. Checks
 * that ids grow strictly and data is one JSON object whose cursor is the
 * id. */
static void next_n(jv_sse *s, ev *out, size_t n, uint64_t *last)
{
    double end = mono_ms() + WAIT_MS;
    for (size_t i = 0; i < n;) {
        jv_sse_event e;
        double left = end - mono_ms();
        int r = left > 0 ? jv_sse_next(s, &e, (int)left) : 0;
        if (r != 1)
            fail_msg("event %zu of %zu did not come (%d)", i + 1, n, r);
        if (e.comment) {
            jv_sse_event_fini(&e);
            continue;
        }
        snprintf(out[i].id, sizeof(out[i].id), "%s", e.id);
        snprintf(out[i].event, sizeof(out[i].event), "%s", e.event);
        out[i].data = json_loads(e.data, 0, NULL);
        if (!out[i].data)
            fail_msg("data is not JSON: %s", e.data);
        jv_sse_event_fini(&e);
        if (strcmp(out[i].event, "lagged") != 0) {
            assert_string_equal(api_str(out[i].data, "cursor"), out[i].id);
            assert_string_equal(api_str(out[i].data, "kind"), out[i].event);
            if (last) {
                assert_true(idnum(out[i].id) > *last);
                *last = idnum(out[i].id);
            }
        }
        i++;
    }
}

static void evs_free(ev *e, size_t n)
{
    for (size_t i = 0; i < n; i++)
        json_decref(e[i].data);
}

/* No further event within a short while: the stream owes nothing. */
static void nothing_more(jv_sse *s)
{
    jv_sse_event e;
    int r;
    while ((r = jv_sse_next(s, &e, 300)) == 1) {
        bool c = e.comment;
        if (!c)
            fail_msg("unexpected event %s: %s", e.event, e.data);
        jv_sse_event_fini(&e);
    }
    assert_int_equal(r, 0);
}

static void incr(api_node *a, const char *name, int by)
{
    json_decref(API_OK(a, 200, "POST",
                       api_fmt("/v1/counters/%s/increment", name),
                       a->admin_token, api_fmt("{\"by\":%d}", by)));
}

/* -- one node ------------------------------------------------------------- */

static void test_local_events(void **state)
{
    (void)state;
    api_node a;
    jv_sse s;
    ev e[8];
    uint64_t last = 0;
    api_start(&a, NULL);
    open_ok(&s, a.node.url, a.admin_token, NULL, NULL, 0, NULL, NULL);

    incr(&a, "web.hits", 5);
    incr(&a, "web.hits", -2);
    json_decref(API_OK(&a, 200, "PUT", "/v1/config/app%2Fmode", a.admin_token,
                       "{\"value\":{\"fast\":true}}"));
    json_decref(API_OK(&a, 200, "PUT", "/v1/archive/r1", a.admin_token,
                       "{\"value\":\"line\\nbreak\"}"));
    API_OK(&a, 204, "DELETE", "/v1/archive/r1", a.admin_token, NULL);
    next_n(&s, e, 6, &last);

    assert_string_equal(e[0].event, "counter");
    assert_string_equal(api_str(e[0].data, "name"), "web.hits");
    assert_int_equal(API_INT(e[0].data, "delta"), 5);
    assert_string_equal(api_str(e[0].data, "origin"), a.node_id);
    assert_string_equal(e[1].event, "counter");
    assert_int_equal(API_INT(e[1].data, "delta"), -2);
    assert_true(API_INT(e[1].data, "seq") > API_INT(e[0].data, "seq"));
    assert_string_equal(e[2].event, "config");
    assert_string_equal(api_str(e[2].data, "key"), "app/mode");
    assert_true(json_is_true(
        json_object_get(json_object_get(e[2].data, "value"), "fast")));
    assert_string_equal(e[3].event, "audit"); /* config.set's entry */
    assert_string_equal(api_str(e[3].data, "action"), "config.set");
    assert_string_equal(api_str(e[3].data, "target"), "app/mode");
    assert_string_equal(e[4].event, "archive");
    assert_string_equal(api_str(e[4].data, "op"), "add");
    assert_string_equal(api_str(e[4].data, "value"), "line\nbreak");
    assert_string_equal(e[5].event, "archive");
    assert_string_equal(api_str(e[5].data, "op"), "remove");
    uint64_t t;
    assert_true(api_parse_time(api_str(e[5].data, "time"), &t));
    for (size_t i = 1; i < 6; i++)
        assert_true(API_INT(e[i].data, "seq") > API_INT(e[i - 1].data, "seq"));
    evs_free(e, 6);
    nothing_more(&s);
    jv_sse_close(&s);
    api_cleanup(&a);
}

/* Commits made while nobody watches are skipped without waking the
 * stream thread; a stream opened after them (at "now") gets exactly what
 * is committed after it opened, each time the node goes from no stream to
 * one; and a stream resumed from before them still gets them from the
 * log. */
static void test_idle_commits(void **state)
{
    (void)state;
    api_node a;
    jv_sse s;
    ev e[4];
    char first[32] = "";
    api_start(&a, NULL);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 40; i++)
            incr(&a, "idle", 1);
        uint64_t last = 0;
        open_ok(&s, a.node.url, a.admin_token, NULL, NULL, 0,
                round == 0 ? first : NULL, NULL);
        for (int i = 1; i <= 3; i++)
            incr(&a, "live", i + 10 * round);
        next_n(&s, e, 3, &last);
        for (int i = 0; i < 3; i++) {
            assert_string_equal(e[i].event, "counter");
            assert_string_equal(api_str(e[i].data, "name"), "live");
            assert_int_equal(API_INT(e[i].data, "delta"), i + 1 + 10 * round);
        }
        evs_free(e, 3);
        nothing_more(&s);
        jv_sse_close(&s);
    }
    /* From the first stream's hello: the 9 live increments and the 80
     * idle ones of the later rounds, in order. */
    open_ok(&s, a.node.url, a.admin_token, NULL, first, 0, NULL, NULL);
    int idle = 0, live = 0;
    uint64_t last = 0;
    for (int i = 0; i < 89; i++) {
        next_n(&s, e, 1, &last);
        const char *name = api_str(e[0].data, "name");
        if (strcmp(name, "idle") == 0) {
            idle++;
        } else {
            assert_string_equal(name, "live");
            assert_int_equal(API_INT(e[0].data, "delta"),
                             live % 3 + 1 + 10 * (live / 3));
            live++;
        }
        evs_free(e, 1);
    }
    assert_int_equal(idle, 80);
    assert_int_equal(live, 9);
    nothing_more(&s);
    jv_sse_close(&s);
    api_cleanup(&a);
}

static void test_filters_and_roles(void **state)
{
    (void)state;
    api_node a;
    jv_sse s, all;
    ev e[4];
    uint64_t last = 0;
    char reader[160], token[160];
    api_start(&a, NULL);
    api_key(&a, "watcher", "reader", reader, NULL);
    api_session(&a, reader, 0, token, NULL);

    /* Credentials as for every /v1 route; a bad query changes nothing. */
    assert_int_equal(
        jv_sse_open(&s, a.node.url, "/v1/watch", NULL, NULL, 0, WAIT_MS), 0);
    assert_int_equal(s.status, 401);
    jv_sse_close(&s);
    API_ERR(&a, 400, "invalid_query", "GET", "/v1/watch?kind=counters", token,
            NULL);
    API_ERR(&a, 400, "invalid_query", "GET", "/v1/watch?cursor=12x", token,
            NULL);
    API_ERR(&a, 400, "invalid_query", "GET", "/v1/watch?cursor=-1", token,
            NULL);

    open_ok(&s, a.node.url, token, "?kind=counter,config&prefix=web.", NULL, 0,
            NULL, NULL);
    open_ok(&all, a.node.url, token, NULL, NULL, 0, NULL, NULL);
    incr(&a, "db.reads", 1);
    incr(&a, "web.hits", 3);
    json_decref(API_OK(&a, 200, "PUT", "/v1/config/web.port", a.admin_token,
                       "{\"value\":8080}"));
    json_decref(API_OK(&a, 200, "PUT", "/v1/config/db.port", a.admin_token,
                       "{\"value\":5432}"));
    next_n(&s, e, 2, &last);
    assert_string_equal(api_str(e[0].data, "name"), "web.hits");
    assert_int_equal(API_INT(e[0].data, "delta"), 3);
    assert_string_equal(api_str(e[1].data, "key"), "web.port");
    assert_int_equal(json_integer_value(json_object_get(e[1].data, "value")),
                     8080);
    evs_free(e, 2);
    /* The unfiltered stream saw everything by now. */
    ev f[6];
    uint64_t l2 = 0;
    next_n(&all, f, 6, &l2);
    evs_free(f, 6);
    nothing_more(&s);
    jv_sse_close(&s);
    jv_sse_close(&all);
    api_cleanup(&a);
}

/* Resume after a disconnect and after a restart: exactly the events
 * after the cursor. */
static void test_resume(void **state)
{
    (void)state;
    api_node a;
    jv_sse s;
    ev e[40];
    uint64_t last = 0;
    char start[32];
    api_start(&a, NULL);
    open_ok(&s, a.node.url, a.admin_token, "?kind=counter", NULL, 0, start,
            NULL);
    for (int i = 1; i <= 10; i++)
        incr(&a, "c", i);
    next_n(&s, e, 4, &last);
    char cursor[32];
    snprintf(cursor, sizeof(cursor), "%s", e[3].id);
    evs_free(e, 4);
    jv_sse_close(&s);
    for (int i = 11; i <= 20; i++)
        incr(&a, "c", i);

    /* Disconnect: 5..20 come, each once, in order. */
    last = idnum(cursor);
    open_ok(&s, a.node.url, a.admin_token, "?kind=counter", cursor, 0, NULL,
            NULL);
    next_n(&s, e, 16, &last);
    for (int i = 0; i < 16; i++)
        assert_int_equal(API_INT(e[i].data, "delta"), i + 5);
    evs_free(e, 16);
    nothing_more(&s);
    jv_sse_close(&s);

    /* Restart: 13..30 from ?cursor= (before and after the restart). */
    char q[96];
    {
        jv_sse r;
        open_ok(&r, a.node.url, a.admin_token, "?kind=counter", start, 0, NULL,
                NULL);
        uint64_t l = idnum(start);
        next_n(&r, e, 12, &l);
        snprintf(cursor, sizeof(cursor), "%s", e[11].id);
        evs_free(e, 12);
        jv_sse_close(&r);
    }
    assert_int_equal(api_stop(&a), 0);
    api_restart(&a, NULL);
    for (int i = 21; i <= 30; i++)
        incr(&a, "c", i);
    snprintf(q, sizeof(q), "?kind=counter&cursor=%s", cursor);
    last = idnum(cursor);
    open_ok(&s, a.node.url, a.admin_token, q, NULL, 0, NULL, NULL);
    next_n(&s, e, 18, &last);
    for (int i = 0; i < 18; i++)
        assert_int_equal(API_INT(e[i].data, "delta"), i + 13);
    evs_free(e, 18);
    nothing_more(&s);
    jv_sse_close(&s);

    /* From the beginning: all 30. */
    last = 0;
    open_ok(&s, a.node.url, a.admin_token, "?kind=counter&cursor=0", NULL, 0,
            NULL, NULL);
    next_n(&s, e, 30, &last);
    for (int i = 0; i < 30; i++)
        assert_int_equal(API_INT(e[i].data, "delta"), i + 1);
    evs_free(e, 30);
    nothing_more(&s);
    jv_sse_close(&s);
    api_cleanup(&a);
}

static void expect_expired(api_node *a, const char *cursor)
{
    jv_sse s;
    char q[96];
    snprintf(q, sizeof(q), "/v1/watch?cursor=%s", cursor);
    assert_int_equal(
        jv_sse_open(&s, a->node.url, q, a->admin_token, NULL, 0, WAIT_MS), 0);
    assert_int_equal(s.status, 410);
    json_t *b = json_loads(s.body, 0, NULL);
    assert_non_null(b);
    assert_string_equal(api_str(json_object_get(b, "error"), "code"),
                        "cursor_expired");
    assert_true(api_str(b, "cursor")[0] != '\0');
    json_decref(b);
    jv_sse_close(&s);
}

static void db_exec(api_node *a, const char *sql)
{
    sqlite3 *db;
    char path[700];
    snprintf(path, sizeof(path), "%s/jarvis.db", a->node.dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
        fail_msg("%s: %s", sql, err);
    sqlite3_close(db);
}

/* Batches removed from the log (as compaction does): cursors before them
 * answer 410; rowids are never reused, so later cursors stay exact. */
static void test_expired(void **state)
{
    (void)state;
    api_node a;
    jv_sse s;
    ev e[4];
    uint64_t last = 0;
    char start[32];
    api_start(&a, NULL);
    expect_expired(&a, "999999999999999999");
    open_ok(&s, a.node.url, a.admin_token, "?kind=counter", NULL, 0, start,
            NULL);
    incr(&a, "x", 1);
    incr(&a, "x", 2);
    next_n(&s, e, 2, &last);
    char after[32];
    snprintf(after, sizeof(after), "%s", e[1].id);
    evs_free(e, 2);
    jv_sse_close(&s);
    assert_int_equal(api_stop(&a), 0);
    /* Every batch goes, the newest included. */
    db_exec(&a, "DELETE FROM batch");
    api_restart(&a, NULL);
    expect_expired(&a, start);
    expect_expired(&a, after);
    expect_expired(&a, "0");
    /* "Now" is past every deleted rowid: a new batch comes after it. */
    char now[32];
    open_ok(&s, a.node.url, a.admin_token, "?kind=counter", NULL, 0, now, NULL);
    jv_sse_close(&s);
    incr(&a, "x", 3);
    last = idnum(now);
    open_ok(&s, a.node.url, a.admin_token, "?kind=counter", now, 0, NULL, NULL);
    next_n(&s, e, 1, &last);
    assert_int_equal(API_INT(e[0].data, "p"), 6);
    evs_free(e, 1);
    nothing_more(&s);
    jv_sse_close(&s);
    api_cleanup(&a);
}

/* -- slow and fast consumers ------------------------------------------------
 */

typedef struct {
    jv_sse *s; /* open (its hello read) before the writes start */
    size_t want, got;
    bool ok;
    char why[256];
} reader_arg;

#define FAST_READER_MS 300000

static void *fast_reader(void *p)
{
    reader_arg *r = p;
    jv_sse_event e;
    uint64_t last = 0;
    /* One deadline for all: pings on a stalled stream must not reset it. */
    double end = mono_ms() + FAST_READER_MS;
    while (r->got < r->want) {
        double left = end - mono_ms();
        int rc = left > 0 ? jv_sse_next(r->s, &e, (int)left) : 0;
        if (rc != 1) {
            snprintf(r->why, sizeof(r->why), "stream ended after %zu: %d",
                     r->got, rc);
            break;
        }
        if (!e.comment && strcmp(e.event, "audit") == 0) {
            uint64_t id = idnum(e.id);
            if (id <= last) {
                snprintf(r->why, sizeof(r->why), "id went back");
                jv_sse_event_fini(&e);
                break;
            }
            last = id;
            r->got++;
        }
        jv_sse_event_fini(&e);
    }
    r->ok = r->got == r->want;
    return NULL;
}

/* POST /v1/batch of n audit entries numbered from base. */
static void audit_batch(api_node *a, unsigned base, unsigned n)
{
    size_t cap = (size_t)n * 256 + 64, at = 0;
    char *body = malloc(cap);
    assert_non_null(body);
    at += (size_t)snprintf(body + at, cap - at, "{\"ops\":[");
    for (unsigned i = 0; i < n; i++)
        at += (size_t)snprintf(body + at, cap - at,
                               "%s{\"op\":\"audit.append\",\"action\":\"t\","
                               "\"target\":\"e%08u\",\"detail\":\"%0100u\"}",
                               i ? "," : "", base + i, base + i);
    snprintf(body + at, cap - at, "]}");
    json_decref(API_OK(a, 200, "POST", "/v1/batch", a->admin_token, body));
    free(body);
}

static void test_lagged(void **state)
{
    (void)state;
    api_node a;
    jv_sse slow;
    char *extra[] = {"--send-timeout", "600000", NULL};
    const unsigned total = 40000, per = 1000;
    api_start(&a, extra);
    open_ok(&slow, a.node.url, a.admin_token, "?kind=audit", NULL, 4096, NULL,
            NULL);
    /* Both streams start before the first write: "now" is before it. */
    jv_sse fast;
    open_ok(&fast, a.node.url, a.admin_token, "?kind=audit", NULL, 0, NULL,
            NULL);
    reader_arg fr = {&fast, total, 0, false, ""};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, fast_reader, &fr), 0);
    /* Far more than the ring holds, while the slow one reads nothing. */
    for (unsigned b = 0; b < total / per; b++)
        audit_batch(&a, b * per, per);
    pthread_join(th, NULL);
    jv_sse_close(&fast);
    if (!fr.ok)
        fail_msg("fast reader: %s (%zu of %u)", fr.why, fr.got, total);

    /* The slow one: a prefix of the entries in order, then lagged. */
    jv_sse_event e;
    unsigned seen = 0;
    char lag[32] = "";
    double end = mono_ms() + WAIT_MS;
    for (;;) {
        double left = end - mono_ms();
        int rc = left > 0 ? jv_sse_next(&slow, &e, (int)left) : 0;
        if (rc != 1)
            break;
        if (!strcmp(e.event, "lagged")) {
            json_t *d = json_loads(e.data, 0, NULL);
            snprintf(lag, sizeof(lag), "%s", api_str(d, "cursor"));
            json_decref(d);
            jv_sse_event_fini(&e);
            break;
        }
        if (!strcmp(e.event, "audit")) {
            json_t *d = json_loads(e.data, 0, NULL);
            char want[16];
            snprintf(want, sizeof(want), "e%08u", seen);
            assert_string_equal(api_str(d, "target"), want);
            json_decref(d);
            seen++;
        }
        jv_sse_event_fini(&e);
    }
    if (!lag[0])
        fail_msg("no lagged event after %u entries", seen);
    assert_true(seen < total);
    assert_int_equal(jv_sse_next(&slow, &e, WAIT_MS), -1); /* closed */
    jv_sse_close(&slow);

    /* Its cursor resumes from the log: the rest, each once. */
    uint64_t last = idnum(lag);
    open_ok(&slow, a.node.url, a.admin_token, "?kind=audit", lag, 0, NULL,
            NULL);
    for (unsigned i = seen; i < total; i++) {
        ev x;
        next_n(&slow, &x, 1, &last);
        char want[16];
        snprintf(want, sizeof(want), "e%08u", i);
        assert_string_equal(api_str(x.data, "target"), want);
        json_decref(x.data);
    }
    nothing_more(&slow);
    jv_sse_close(&slow);
    api_cleanup(&a);
}

/* -- backup and verify progress --------------------------------------------
 */

/* The node events of one backup or verify, up to its last (done or
 * failed): a first `running` with the total not known yet (0 of 0), then
 * `running` events with one total > 0 and done growing strictly, the
 * last of them with done == total, then `done` with the same figures.
 * How many `running` events come in between depends on how long the job
 * takes (the node samples every 200 ms); at least the last figures do.
 * Returns the total; *running counts the events with a total. */
static uint64_t job_events(jv_sse *s, const char *what, size_t *running)
{
    uint64_t last = 0, total = 0, done = 0;
    size_t n = 0;
    *running = 0;
    for (bool end = false; !end;) {
        ev e;
        next_n(s, &e, 1, &last);
        assert_string_equal(e.event, "node");
        assert_string_equal(api_str(e.data, "event"), what);
        const char *state = api_str(e.data, "state");
        uint64_t d = (uint64_t)API_INT(e.data, "done");
        uint64_t t = (uint64_t)API_INT(e.data, "total");
        if (n++ == 0) {
            assert_string_equal(state, "running");
            assert_int_equal(d, 0);
            assert_int_equal(t, 0);
        } else if (!strcmp(state, "running")) {
            assert_true(t > 0);
            assert_true(d <= t);
            if (total)
                assert_int_equal(t, total);
            if (*running)
                assert_true(d > done);
            total = t;
            done = d;
            ++*running;
        } else {
            if (strcmp(state, "done") != 0)
                fail_msg("%s ended %s", what, state);
            assert_true(*running >= 1);
            assert_int_equal(done, total);
            assert_int_equal(d, done);
            assert_int_equal(t, total);
            end = true;
        }
        json_decref(e.data);
    }
    return total;
}

static int64_t pages_of(const char *path)
{
    sqlite3 *db;
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA page_count", -1, &s, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    int64_t n = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return n;
}

/* Some megabytes in a few hundred batches: several backup steps. */
static void fill_log(api_node *a)
{
    for (unsigned b = 0; b < 300; b++)
        audit_batch(a, b * 40, 40);
}

/* docs/api.md "Change streams", node events: a backup counts pages (the
 * copy's), a verify steps (one per batch of the log, and the integrity
 * check and the tables compared). */
static void test_job_progress(void **state)
{
    (void)state;
    api_node a;
    jv_sse s;
    size_t running;
    api_start(&a, NULL);
    fill_log(&a);
    open_ok(&s, a.node.url, a.admin_token, "?kind=node", NULL, 0, NULL, NULL);

    json_decref(API_OK(&a, 201, "POST", "/v1/backup", a.admin_token,
                       "{\"path\":\"progress.db\"}"));
    uint64_t pages = job_events(&s, "backup", &running);
    printf("  backup: %" PRIu64 " pages, %zu running events\n", pages, running);
    char path[700];
    snprintf(path, sizeof(path), "%s/backups/progress.db", a.node.dir);
    assert_int_equal((int64_t)pages, pages_of(path));
    assert_true(pages > 3 * 128);

    /* Encrypted: the copy's pages too (the sealing comes after them). */
    json_decref(API_OK(&a, 201, "POST", "/v1/backup", a.admin_token,
                       "{\"path\":\"sealed.db\",\"passphrase\":"
                       "\"progress-test\"}"));
    uint64_t sealed = job_events(&s, "backup", &running);
    printf("  encrypted backup: %" PRIu64 " pages, %zu running events\n",
           sealed, running);
    assert_true(sealed >= pages);

    json_t *v = API_OK(&a, 200, "POST", "/v1/verify", a.admin_token, NULL);
    assert_true(json_is_true(json_object_get(v, "ok")));
    uint64_t batches = (uint64_t)API_INT(v, "batches");
    json_decref(v);
    uint64_t steps = job_events(&s, "verify", &running);
    printf("  verify: %" PRIu64 " steps for %" PRIu64
           " batches, %zu running events\n",
           steps, batches, running);
    assert_true(batches >= 300);
    assert_true(steps >= batches + 2 && steps <= batches + 64);
    nothing_more(&s);
    jv_sse_close(&s);
    api_cleanup(&a);
}

typedef struct {
    api_node *a;
    long status;
    char body[256];
} verify_arg;

static void *verify_main(void *p)
{
    verify_arg *v = p;
    jv_http_client c;
    jv_http_resp r;
    if (jv_http_client_init(&c, v->a->node.url))
        return NULL;
    c.timeout_ms = WAIT_MS;
    if (jv_http_do(&c, "POST", "/v1/verify", v->a->admin_token, NULL, 0, &r) ==
        0) {
        v->status = r.status;
        snprintf(v->body, sizeof(v->body), "%s", r.body);
    }
    jv_http_resp_fini(&r);
    jv_http_client_fini(&c);
    return NULL;
}

/* SIGTERM while a verify runs (its `running` event seen): the node waits
 * for the job, closes its progress timer, answers and exits cleanly
 * (under the sanitizers too). */
static void test_job_stop(void **state)
{
    (void)state;
    api_node a;
    jv_sse s;
    ev e;
    uint64_t last = 0;
    api_start(&a, NULL);
    fill_log(&a);
    open_ok(&s, a.node.url, a.admin_token, "?kind=node", NULL, 0, NULL, NULL);
    verify_arg v = {&a, 0, ""};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, verify_main, &v), 0);
    next_n(&s, &e, 1, &last);
    assert_string_equal(api_str(e.data, "event"), "verify");
    assert_string_equal(api_str(e.data, "state"), "running");
    json_decref(e.data);
    assert_int_equal(api_stop(&a), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    printf("  verify answered %ld to a request in flight at SIGTERM\n",
           v.status);
    /* An answer came: the result, or 503 when the node was already too far
     * into stopping to write the verification's audit entry. */
    if (v.status != 200 &&
        !(v.status == 503 && strstr(v.body, "\"shutting_down\"")))
        fail_msg("verify answered %ld %s", v.status, v.body);
    jv_sse_close(&s);
    api_cleanup(&a);
}

/* Handed over to the streams' thread, streams still count per client
 * address (--max-conns-per-addr); a closed one frees its place. */
static void test_stream_limits(void **state)
{
    (void)state;
    api_node a;
    char *extra[] = {"--max-conns", "40", "--max-conns-per-addr", "4", NULL};
    jv_sse s[5];
    api_start(&a, extra);
    for (int i = 0; i < 4; i++)
        open_ok(&s[i], a.node.url, a.admin_token, NULL, NULL, 0, NULL, NULL);
    assert_int_equal(jv_sse_open(&s[4], a.node.url, "/v1/watch", a.admin_token,
                                 NULL, 0, WAIT_MS),
                     0);
    assert_int_equal(s[4].status, 503);
    assert_non_null(strstr(s[4].body, "too_many_streams"));
    jv_sse_close(&s[4]);
    /* Plain requests from the same address still get through. */
    json_decref(API_OK(&a, 200, "GET", "/v1/status", a.admin_token, NULL));

    jv_sse_close(&s[0]);
    double end = mono_ms() + WAIT_MS;
    for (;;) {
        assert_int_equal(jv_sse_open(&s[0], a.node.url, "/v1/watch",
                                     a.admin_token, NULL, 0, WAIT_MS),
                         0);
        if (s[0].status == 200)
            break;
        assert_int_equal(s[0].status, 503);
        jv_sse_close(&s[0]);
        if (mono_ms() > end)
            fail_msg("a closed stream's place never came free");
        usleep(50 * 1000);
    }
    for (int i = 0; i < 4; i++)
        jv_sse_close(&s[i]);
    api_cleanup(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_local_events),
        cmocka_unit_test(test_idle_commits),
        cmocka_unit_test(test_filters_and_roles),
        cmocka_unit_test(test_resume),
        cmocka_unit_test(test_expired),
        cmocka_unit_test(test_lagged),
        cmocka_unit_test(test_stream_limits),
        cmocka_unit_test(test_job_progress),
        cmocka_unit_test(test_job_stop),
    };
    assert_int_equal(jv_http_global_init(), 0);
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    jv_http_global_fini();
    return rc;
}
