/*
 * data_test.c - jarvisctl's data commands against a real jarvisd:
 * status, health, counters, audit (with --follow), config, archive,
 * peers, export and diff. Every --json output is parsed and checked.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ctl.h"
#include "http_client.h"

static ctl_ctx C;
static jv_test_node N;
static char self_id[80];

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int setup(void **state)
{
    (void)state;
    ctl_init(&C);
    if (jv_http_global_init() != 0)
        return -1;
    if (jv_test_node_start(&N, NULL) != 0)
        return -1;
    C.node = N.url;
    C.key = N.admin_key;
    char path[700];
    snprintf(path, sizeof path, "%s/node.id", N.dir);
    FILE *f = fopen(path, "r");
    if (f == NULL || fscanf(f, "%79s", self_id) != 1)
        return -1;
    fclose(f);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int st = jv_test_node_stop(&N);
    jv_test_node_cleanup(&N);
    ctl_fini(&C);
    /* SIGTERM must end the node cleanly. */
    return st == 0 ? 0 : -1;
}

/* Runs a command with --json, expects `code`, returns the parsed JSON. */
/* Runs jarvisctl --json with the arguments (at most 8), expects `code`,
 * returns the parsed output. */
static json_t *json_cmd(int code, ...)
{
    const char *a[9] = {NULL};
    va_list ap;
    va_start(ap, code);
    for (size_t i = 0; i < 8 && (a[i] = va_arg(ap, const char *)) != NULL; i++)
        ;
    va_end(ap);
    jv_proc_result r;
    CTL(&C, &r, "--json", a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]);
    CTL_EXPECT(&r, code);
    json_t *j = ctl_json(&r);
    jv_proc_result_fini(&r);
    return j;
}
#define JSON_CMD(code, ...) json_cmd((code), __VA_ARGS__, (char *)NULL)

static void test_status_health(void **state)
{
    (void)state;
    json_t *j = JSON_CMD(0, "status");
    assert_string_equal(json_string_value(json_object_get(j, "node_id")),
                        self_id);
    assert_string_equal(json_string_value(json_object_get(j, "version")),
                        JV_VERSION);
    assert_true(json_is_integer(json_object_get(j, "uptime_seconds")));
    assert_true(json_is_object(json_object_get(j, "version_vector")));
    assert_true(json_is_array(json_object_get(j, "peers")));
    json_decref(j);

    jv_proc_result r;
    CTL(&C, &r, "status");
    CTL_EXPECT(&r, 0);
    assert_true(ctl_has(r.out, self_id));
    assert_true(ctl_has(r.out, "Version vector:"));
    assert_true(ctl_has(r.out, "Peers:"));
    assert_true(ctl_has(r.out, "uptime"));
    jv_proc_result_fini(&r);

    j = JSON_CMD(0, "health");
    json_int_t score = json_integer_value(json_object_get(j, "score"));
    assert_true(score >= 80 && score <= 100);
    assert_string_equal(json_string_value(json_object_get(j, "status")),
                        "healthy");
    assert_non_null(
        json_object_get(json_object_get(j, "components"), "storage"));
    json_decref(j);

    CTL(&C, &r, "health");
    CTL_EXPECT(&r, 0);
    assert_true(ctl_has(r.out, "healthy (score "));
    assert_true(ctl_has(r.out, "COMPONENT"));
    assert_true(ctl_has(r.out, "storage"));
    jv_proc_result_fini(&r);
}

static void test_counters(void **state)
{
    (void)state;
    json_t *j = JSON_CMD(0, "counters", "incr", "requests", "5");
    assert_int_equal(json_integer_value(json_object_get(j, "total")), 5);
    json_decref(j);
    /* A negative BY is a value, not an option. */
    j = JSON_CMD(0, "counters", "incr", "requests", "-2");
    assert_int_equal(json_integer_value(json_object_get(j, "total")), 3);
    json_decref(j);
    j = JSON_CMD(0, "counters", "incr", "web/hits c");
    assert_int_equal(json_integer_value(json_object_get(j, "total")), 1);
    json_decref(j);

    j = JSON_CMD(0, "counters", "get", "requests");
    assert_string_equal(json_string_value(json_object_get(j, "name")),
                        "requests");
    assert_int_equal(json_integer_value(json_object_get(j, "total")), 3);
    json_t *share = json_array_get(json_object_get(j, "shares"), 0);
    assert_string_equal(json_string_value(json_object_get(share, "replica")),
                        self_id);
    assert_int_equal(json_integer_value(json_object_get(share, "increments")),
                     5);
    assert_int_equal(json_integer_value(json_object_get(share, "decrements")),
                     2);
    json_decref(j);

    /* A name with "/" and a space survives the trip through the path. */
    j = JSON_CMD(0, "counters", "get", "web/hits c");
    assert_int_equal(json_integer_value(json_object_get(j, "total")), 1);
    json_decref(j);

    j = JSON_CMD(0, "counters", "ls");
    json_t *list = json_object_get(j, "counters");
    assert_int_equal(json_array_size(list), 2);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(list, 0), "name")),
        "requests");
    json_decref(j);
    j = JSON_CMD(0, "counters", "ls", "--prefix", "web/");
    list = json_object_get(j, "counters");
    assert_int_equal(json_array_size(list), 1);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(list, 0), "name")),
        "web/hits c");
    json_decref(j);

    jv_proc_result r;
    CTL(&C, &r, "counters", "ls");
    CTL_EXPECT(&r, 0);
    assert_true(ctl_has(r.out, "NAME"));
    assert_true(ctl_has(r.out, "TOTAL"));
    assert_true(ctl_has(r.out, "requests"));
    jv_proc_result_fini(&r);
    CTL(&C, &r, "counters", "get", "requests");
    CTL_EXPECT(&r, 0);
    assert_true(ctl_has(r.out, "requests = 3"));
    assert_true(ctl_has(r.out, "REPLICA"));
    jv_proc_result_fini(&r);

    /* Operation failed: a counter nobody touched. */
    CTL(&C, &r, "counters", "get", "never-touched");
    CTL_EXPECT(&r, 1);
    assert_true(ctl_has(r.err, "not_found"));
    assert_string_equal(r.out, "");
    jv_proc_result_fini(&r);
}

/* Entries come oldest first. */
static void check_order(json_t *entries)
{
    const char *prev = "";
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e)
    {
        const char *t = json_string_value(json_object_get(e, "time"));
        assert_non_null(t);
        assert_true(strcmp(prev, t) <= 0);
        prev = t;
    }
}

static void test_audit(void **state)
{
    (void)state;
    json_t *j = JSON_CMD(0, "audit", "add", "deploy", "--target=web-1",
                         "--detail=v2.3.1");
    assert_string_equal(json_string_value(json_object_get(j, "action")),
                        "deploy");
    assert_string_equal(json_string_value(json_object_get(j, "actor")),
                        "admin");
    assert_string_equal(json_string_value(json_object_get(j, "target")),
                        "web-1");
    assert_string_equal(json_string_value(json_object_get(j, "origin")),
                        self_id);
    json_decref(j);
    j = JSON_CMD(0, "audit", "add", "restart", "-t", "web-2");
    json_decref(j);

    j = JSON_CMD(0, "audit", "tail", "-n", "1");
    json_t *entries = json_object_get(j, "entries");
    assert_int_equal(json_array_size(entries), 1);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(entries, 0), "action")),
                        "restart");
    json_decref(j);

    j = JSON_CMD(0, "audit", "tail", "-n", "2");
    entries = json_object_get(j, "entries");
    assert_int_equal(json_array_size(entries), 2);
    check_order(entries);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(entries, 1), "action")),
                        "restart");
    json_decref(j);

    j = JSON_CMD(0, "audit", "query", "--action", "deploy");
    entries = json_object_get(j, "entries");
    assert_int_equal(json_array_size(entries), 1);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(entries, 0), "detail")),
                        "v2.3.1");
    json_decref(j);

    j = JSON_CMD(0, "audit", "query", "--actor", "admin", "--since", "1h");
    entries = json_object_get(j, "entries");
    assert_true(json_array_size(entries) >= 2);
    check_order(entries);
    json_decref(j);

    /* An empty range: before 1970 + 1 ms, or from the far future. */
    j = JSON_CMD(0, "audit", "query", "--until", "1");
    assert_int_equal(json_array_size(json_object_get(j, "entries")), 0);
    json_decref(j);
    j = JSON_CMD(0, "audit", "query", "--since", "2999-01-01T00:00:00Z");
    assert_int_equal(json_array_size(json_object_get(j, "entries")), 0);
    json_decref(j);

    jv_proc_result r;
    CTL(&C, &r, "audit", "tail");
    CTL_EXPECT(&r, 0);
    assert_true(ctl_has(r.out, "TIME"));
    assert_true(ctl_has(r.out, "ACTION"));
    assert_true(ctl_has(r.out, "deploy"));
    assert_true(ctl_has(r.out, " UTC")); /* local time, TZ=UTC here */
    jv_proc_result_fini(&r);
}

/* Follows the log, adds entries, stops it with sig: exit 0, and every new
 * entry printed once, as one JSON object per line. */
/* The follower's output so far (malloc'd). */
static char *slurp_log(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf = calloc(1, 1 << 20);
    assert_non_null(buf);
    if (f != NULL) {
        size_t n = fread(buf, 1, (1 << 20) - 1, f);
        buf[n] = '\0';
        fclose(f);
    }
    return buf;
}

static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *q = hay; (q = strstr(q, needle)) != NULL; q++)
        n++;
    return n;
}

/* Waits (at most 60 s) until the file holds want n times. */
static void wait_printed(const char *path, const char *want, int n)
{
    double t0 = now_ms();
    for (;;) {
        char *out = slurp_log(path);
        int k = count_of(out, want);
        free(out);
        if (k >= n)
            return;
        if (now_ms() - t0 > 60000)
            fail_msg("the follower did not print '%s' x%d in 60 s", want, n);
        sleep_ms(50);
    }
}

/* Streams the node has opened (GET /v1/watch answered 200). */
static double watch_opens(void)
{
    static const char series[] = "jarvis_requests_total{route=\"/v1/watch\","
                                 "method=\"GET\",status=\"200\"} ";
    jv_http_client c;
    jv_http_resp r;
    double v = 0;
    assert_int_equal(jv_http_client_init(&c, N.url), 0);
    assert_int_equal(jv_http_do(&c, "GET", "/metrics", NULL, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    const char *p = strstr(r.body, series);
    if (p != NULL)
        v = strtod(p + strlen(series), NULL);
    jv_http_resp_fini(&r);
    jv_http_client_fini(&c);
    return v;
}

static void wait_watch_opens(double n)
{
    double t0 = now_ms();
    while (watch_opens() < n) {
        if (now_ms() - t0 > 60000)
            fail_msg("the follower opened no change stream in 60 s");
        sleep_ms(50);
    }
}

static void follow_with(int sig, const char *action)
{
    jv_proc p;
    jv_proc_result r;
    char log[700];
    snprintf(log, sizeof log, "%s/%s.log", C.home, action);
    double opens = watch_opens();
    CTL_SPAWN_LOG(&C, &p, log, "audit", "tail", "-n", "0", "--follow",
                  "--json");
    /* Its stream is open: what comes from now on is printed. */
    wait_watch_opens(opens + 1);
    /* The key came from the environment: a process listing shows none of
     * it. */
    char path[64], cmdline[4096];
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)p.pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(cmdline, 1, sizeof cmdline - 1, f);
    fclose(f);
    assert_true(n > 0);
    for (size_t i = 0; i < n; i++)
        if (cmdline[i] == '\0')
            cmdline[i] = ' ';
    cmdline[n] = '\0';
    assert_true(ctl_has(cmdline, "--follow"));
    assert_false(ctl_has(cmdline, N.admin_key));
    json_t *j = JSON_CMD(0, "audit", "add", action);
    json_decref(j);
    j = JSON_CMD(0, "audit", "add", action, "--detail", "second");
    json_decref(j);
    wait_printed(log, "\"second\"", 1);
    jv_proc_signal(&p, sig);
    assert_int_equal(jv_proc_wait(&p, 15000, &r), 0);
    CTL_EXPECT(&r, 0);
    jv_proc_result_fini(&r);
    size_t seen = 0;
    char *out = slurp_log(log);
    for (char *line = out; *line;) {
        char *end = strchr(line, '\n');
        assert_non_null(end);
        *end = '\0';
        json_t *e = json_loads(line, 0, NULL);
        assert_non_null(e);
        assert_string_equal(json_string_value(json_object_get(e, "action")),
                            action);
        json_decref(e);
        seen++;
        line = end + 1;
    }
    assert_int_equal(seen, 2);
    free(out);
}

static void test_audit_follow(void **state)
{
    (void)state;
    follow_with(SIGINT, "follow-int");
    follow_with(SIGTERM, "follow-term");

    /* Human form: the last entries first, then the new ones. */
    jv_proc p;
    jv_proc_result r;
    char log[700];
    snprintf(log, sizeof log, "%s/human.log", C.home);
    CTL_SPAWN_LOG(&C, &p, log, "audit", "tail", "-n", "1", "-f");
    wait_printed(log, "follow-term", 1); /* it has listed the last entry */
    json_t *j = JSON_CMD(0, "audit", "add", "follow-human");
    json_decref(j);
    wait_printed(log, "follow-human", 1);
    jv_proc_signal(&p, SIGINT);
    assert_int_equal(jv_proc_wait(&p, 15000, &r), 0);
    CTL_EXPECT(&r, 0);
    jv_proc_result_fini(&r);
    char *out = slurp_log(log);
    assert_true(ctl_has(out, "TIME"));
    free(out);
}

static void test_config(void **state)
{
    (void)state;
    json_t *j = JSON_CMD(0, "config", "set", "db/url", "postgres://db:5432");
    assert_string_equal(json_string_value(json_object_get(j, "key")), "db/url");
    assert_string_equal(json_string_value(json_object_get(j, "value")),
                        "postgres://db:5432");
    json_decref(j);

    /* Values that parse as JSON are JSON; --string keeps them text. */
    j = JSON_CMD(0, "config", "set", "limits/n", "42");
    assert_int_equal(json_integer_value(json_object_get(j, "value")), 42);
    json_decref(j);
    j = JSON_CMD(0, "config", "set", "--string", "limits/s", "42");
    assert_string_equal(json_string_value(json_object_get(j, "value")), "42");
    json_decref(j);
    j = JSON_CMD(0, "config", "set", "feature/x", "{\"on\":true,\"n\":[1,2]}");
    assert_true(
        json_is_true(json_object_get(json_object_get(j, "value"), "on")));
    json_decref(j);

    j = JSON_CMD(0, "config", "get", "db/url");
    assert_string_equal(json_string_value(json_object_get(j, "set_by")),
                        self_id);
    const char *at = json_string_value(json_object_get(j, "set_at"));
    assert_non_null(at);
    assert_true(at[strlen(at) - 1] == 'Z'); /* RFC 3339 in JSON */
    assert_true(json_is_integer(json_object_get(j, "stamp")));
    json_decref(j);

    j = JSON_CMD(0, "config", "ls");
    assert_int_equal(json_array_size(json_object_get(j, "config")), 4);
    json_decref(j);
    j = JSON_CMD(0, "config", "ls", "--prefix", "limits/");
    assert_int_equal(json_array_size(json_object_get(j, "config")), 2);
    json_decref(j);

    jv_proc_result r;
    CTL(&C, &r, "config", "get", "db/url");
    CTL_EXPECT(&r, 0);
    assert_true(ctl_has(r.out, "\"postgres://db:5432\""));
    assert_true(ctl_has(r.out, "set by"));
    assert_true(ctl_has(r.out, self_id));
    assert_true(ctl_has(r.out, " UTC"));
    jv_proc_result_fini(&r);
    CTL(&C, &r, "config", "ls");
    CTL_EXPECT(&r, 0);
    assert_true(ctl_has(r.out, "SET BY"));
    assert_true(ctl_has(r.out, "feature/x"));
    jv_proc_result_fini(&r);

    CTL(&C, &r, "config", "get", "no/such/key");
    CTL_EXPECT(&r, 1);
    assert_true(ctl_has(r.err, "no/such/key"));
    jv_proc_result_fini(&r);
}

static void test_archive(void **state)
{
    (void)state;
    json_t *j =
        JSON_CMD(0, "archive", "add", "reports/2026-11", "{\"rows\":12}");
    assert_int_equal(json_integer_value(
                         json_object_get(json_object_get(j, "value"), "rows")),
                     12);
    json_decref(j);
    j = JSON_CMD(0, "archive", "add", "reports/2026-12", "pending");
    json_decref(j);
    j = JSON_CMD(0, "archive", "add", "other", "true");
    json_decref(j);

    j = JSON_CMD(0, "archive", "get", "reports/2026-12");
    assert_string_equal(json_string_value(json_object_get(j, "value")),
                        "pending");
    assert_string_equal(json_string_value(json_object_get(j, "added_by")),
                        self_id);
    assert_int_equal(json_integer_value(json_object_get(j, "values")), 1);
    assert_int_equal(json_array_size(json_object_get(j, "all")), 1);
    json_decref(j);

    j = JSON_CMD(0, "archive", "ls", "--prefix", "reports/");
    json_t *entries = json_object_get(j, "entries");
    assert_int_equal(json_array_size(entries), 2);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(entries, 0), "key")),
        "reports/2026-11");
    json_decref(j);

    j = JSON_CMD(0, "archive", "rm", "other");
    assert_true(json_is_true(json_object_get(j, "removed")));
    json_decref(j);

    jv_proc_result r;
    CTL(&C, &r, "archive", "rm", "other");
    CTL_EXPECT(&r, 1);
    assert_true(ctl_has(r.err, "archive rm other"));
    assert_true(ctl_has(r.err, "404"));
    /* The node's own message names the key, not the route. */
    assert_true(ctl_has(r.err, "/v1/archive/other: not found"));
    assert_false(ctl_has(r.err, "{*}"));
    jv_proc_result_fini(&r);
    /* A single value: no table of concurrent values. */
    CTL(&C, &r, "archive", "get", "reports/2026-12");
    CTL_EXPECT(&r, 0);
    assert_true(ctl_has(r.out, "pending"));
    assert_false(ctl_has(r.out, "concurrent values"));
    jv_proc_result_fini(&r);
    CTL(&C, &r, "archive", "get", "other");
    CTL_EXPECT(&r, 1);
    jv_proc_result_fini(&r);
    CTL(&C, &r, "archive", "ls");
    CTL_EXPECT(&r, 0);
    assert_true(ctl_has(r.out, "ADDED BY"));
    assert_true(ctl_has(r.out, "reports/2026-11"));
    assert_false(ctl_has(r.out, "other"));
    jv_proc_result_fini(&r);
}

static void test_peers(void **state)
{
    (void)state;
    json_t *j = JSON_CMD(0, "peers", "ls");
    assert_int_equal(json_array_size(json_object_get(j, "peers")), 0);
    json_decref(j);

    jv_proc_result r;
    CTL(&C, &r, "peers", "ls");
    CTL_EXPECT(&r, 0);
    assert_string_equal(r.out, "no peers\n");
    jv_proc_result_fini(&r);

    /* A peer nobody answers at: added, listed, refused twice, removed.
     * (peers_test replicates between two real nodes.) */
    j = JSON_CMD(0, "peers", "add", "tcp://127.0.0.1:9");
    assert_string_equal(json_string_value(json_object_get(j, "address")),
                        "tcp://127.0.0.1:9");
    json_decref(j);
    j = JSON_CMD(0, "peers", "ls");
    assert_string_equal(
        json_string_value(json_object_get(
            json_array_get(json_object_get(j, "peers"), 0), "address")),
        "tcp://127.0.0.1:9");
    json_decref(j);
    CTL(&C, &r, "peers", "ls");
    CTL_EXPECT(&r, 0);
    assert_true(ctl_has(r.out, "ADDRESS"));
    assert_true(ctl_has(r.out, "THEY LACK"));
    assert_true(ctl_has(r.out, "tcp://127.0.0.1:9"));
    jv_proc_result_fini(&r);
    CTL(&C, &r, "peers", "add", "tcp://127.0.0.1:9");
    CTL_EXPECT(&r, 1);
    assert_true(ctl_has(r.err, "409"));
    jv_proc_result_fini(&r);
    CTL(&C, &r, "peers", "add", "not-an-address");
    CTL_EXPECT(&r, 1);
    assert_true(ctl_has(r.err, "400"));
    jv_proc_result_fini(&r);
    CTL(&C, &r, "peers", "rm", "tcp://127.0.0.1:9");
    CTL_EXPECT(&r, 0);
    assert_string_equal(r.out, "removed peer tcp://127.0.0.1:9\n");
    jv_proc_result_fini(&r);
    CTL(&C, &r, "peers", "rm", "tcp://127.0.0.1:9");
    CTL_EXPECT(&r, 1);
    assert_true(ctl_has(r.err, "hint:"));
    jv_proc_result_fini(&r);
    j = JSON_CMD(0, "peers", "ls");
    assert_int_equal(json_array_size(json_object_get(j, "peers")), 0);
    json_decref(j);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = malloc(1 << 20);
    assert_non_null(buf);
    *len = fread(buf, 1, (1 << 20) - 1, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

static void test_export_diff(void **state)
{
    (void)state;
    jv_proc_result r1, r2;
    char f1[700], f2[700];
    snprintf(f1, sizeof f1, "%s/e1.json", C.home);
    snprintf(f2, sizeof f2, "%s/e2.json", C.home);

    CTL(&C, &r1, "export");
    CTL_EXPECT(&r1, 0);
    json_t *j = ctl_json(&r1);
    assert_string_equal(json_string_value(json_object_get(j, "format")),
                        "jarvis-export/1");
    assert_non_null(
        json_object_get(json_object_get(j, "counters"), "requests"));
    assert_non_null(json_object_get(json_object_get(j, "config"), "db/url"));
    /* Only the replicated state. */
    assert_null(json_object_get(j, "keys"));
    assert_null(json_object_get(j, "sessions"));
    assert_null(json_object_get(j, "peers"));
    json_decref(j);

    /* Deterministic and unchanged: -o writes the same bytes. */
    CTL(&C, &r2, "export", "-o", f1);
    CTL_EXPECT(&r2, 0);
    assert_string_equal(r2.out, "");
    jv_proc_result_fini(&r2);
    size_t len;
    char *bytes = slurp(f1, &len);
    assert_int_equal(len, r1.out_len);
    assert_memory_equal(bytes, r1.out, len);
    free(bytes);
    jv_proc_result_fini(&r1);

    CTL(&C, &r1, "diff", f1, "--node", N.url);
    CTL_EXPECT(&r1, 0);
    assert_string_equal(r1.out, "identical\n");
    jv_proc_result_fini(&r1);
    CTL(&C, &r1, "diff", "--node", N.url, "--node", N.url);
    CTL_EXPECT(&r1, 0);
    jv_proc_result_fini(&r1);

    /* One change of each kind shows up under that kind. */
    json_decref(JSON_CMD(0, "counters", "incr", "requests"));
    json_decref(JSON_CMD(0, "config", "set", "db/url", "changed"));
    json_decref(JSON_CMD(0, "archive", "add", "new/entry", "1"));
    CTL(&C, &r1, "export", "--output", f2);
    CTL_EXPECT(&r1, 0);
    jv_proc_result_fini(&r1);

    CTL(&C, &r1, "diff", f1, f2, "--json");
    CTL_EXPECT(&r1, 1);
    j = ctl_json(&r1);
    json_t *kinds = json_object_get(j, "kinds");
    assert_true(json_is_false(json_object_get(j, "identical")));
    assert_int_equal(json_array_size(json_object_get(
                         json_object_get(kinds, "counters"), "different")),
                     1);
    assert_int_equal(json_array_size(json_object_get(
                         json_object_get(kinds, "config"), "different")),
                     1);
    assert_int_equal(json_array_size(json_object_get(
                         json_object_get(kinds, "archive"), "only_b")),
                     1);
    /* Every kind is listed, changed or not. */
    assert_non_null(json_object_get(kinds, "audit"));
    assert_non_null(json_object_get(kinds, "trust"));
    json_decref(j);
    jv_proc_result_fini(&r1);

    CTL(&C, &r1, "diff", f1, f2);
    CTL_EXPECT(&r1, 1);
    assert_true(ctl_has(r1.out, "A: "));
    assert_true(ctl_has(r1.out, "> B only new/entry: 1"));
    assert_true(ctl_has(r1.out, "~ A db/url: \"postgres://db:5432\""));
    assert_true(ctl_has(r1.out, "~ B db/url: \"changed\""));
    jv_proc_result_fini(&r1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_health),
        cmocka_unit_test(test_counters),
        cmocka_unit_test(test_audit),
        cmocka_unit_test(test_audit_follow),
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_archive),
        cmocka_unit_test(test_peers),
        cmocka_unit_test(test_export_diff),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
