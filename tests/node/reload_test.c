/*
 * reload_test.c - SIGHUP reloads the settings (docs/operations.md,
 * "Reloading settings"): a real jarvisd started with a config file; the
 * file is edited and the node signalled; each change is checked by its
 * effect (a body over the old max-body accepted, debug lines in the log,
 * peers and trust, session lifetime, rate limit, the read cache turned off
 * and on), settings that need a restart are named in the log and in GET
 * /v1/status, flags keep winning over the file, and a file that no
 * longer parses changes nothing.
 *
 * Every wait polls GET /v1/status for the reload's time, never a fixed
 * sleep.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sys/stat.h>

#include "apitest.h"

#define WAIT_MS 20000

static api_node N;
static char conf[600];

/* Random-looking but fixed node ids for the trust lines. */
#define TRUST_A \
    "a100000000000000000000000000000000000000000000000000000000000001"
#define TRUST_B \
    "b200000000000000000000000000000000000000000000000000000000000002"

static void write_conf(const char *text)
{
    char tmp[640];
    snprintf(tmp, sizeof tmp, "%s.tmp", conf);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(rename(tmp, conf), 0);
}

/* GET /v1/status; NULL on a 429 (the rate limit under test). */
static json_t *status_or_null(void)
{
    jv_http_resp r;
    API_REQ(&N, &r, "GET", "/v1/status", N.admin_token, NULL);
    json_t *j = NULL;
    if (r.status == 200 && r.json)
        j = json_incref(r.json);
    else if (r.status != 429)
        fail_msg("GET /v1/status: %ld %s", r.status, r.body);
    jv_http_resp_fini(&r);
    return j;
}

/* SIGHUP, then the status's "reload" once its time is not `prev` (the
 * caller's reference). prev is updated. */
static json_t *reload(char *prev, size_t prevlen)
{
    /* The reload's time has millisecond resolution: one in the same
     * millisecond as the previous would show as no reload at all. */
    uint64_t prev_ms;
    if (prev[0] && api_parse_time(prev, &prev_ms))
        while (api_now_ms() <= prev_ms + 1)
            api_sleep_ms(1);
    jv_proc_signal(&N.node.proc, SIGHUP);
    uint64_t end = api_now_ms() + WAIT_MS;
    while (api_now_ms() < end) {
        json_t *s = status_or_null();
        json_t *r = s ? json_object_get(s, "reload") : NULL;
        if (r && json_is_object(r) && strcmp(api_str(r, "at"), prev) != 0) {
            snprintf(prev, prevlen, "%s", api_str(r, "at"));
            API_FIELDS(r, "at", "changed", "restart_needed", "error");
            uint64_t ms;
            assert_true(api_parse_time(api_str(r, "at"), &ms));
            json_incref(r);
            json_decref(s);
            return r;
        }
        json_decref(s);
        api_sleep_ms(20);
    }
    jv_test_node_dump_log(&N.node);
    fail_msg("no reload shown in GET /v1/status");
    return NULL;
}

static bool has(const json_t *arr, const char *name)
{
    size_t i;
    const json_t *v;
    json_array_foreach(arr, i,
                       v) if (json_is_string(v) &&
                              !strcmp(json_string_value(v), name)) return true;
    return false;
}

/* The names of arr, sorted by the caller's expectation: exactly these. */
static void names_are(const json_t *arr, const char *const *want, size_t n)
{
    if (json_array_size(arr) != n) {
        char *t = json_dumps(arr, JSON_COMPACT);
        fail_msg("expected %zu names, got %s", n, t);
    }
    for (size_t i = 0; i < n; i++)
        if (!has(arr, want[i]))
            fail_msg("%s missing", want[i]);
}

static bool log_has(const char *needle)
{
    FILE *f = fopen(N.node.log, "r");
    char line[2048];
    bool found = false;
    assert_non_null(f);
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

static size_t log_count(const char *needle)
{
    FILE *f = fopen(N.node.log, "r");
    char line[2048];
    size_t k = 0;
    assert_non_null(f);
    while (fgets(line, sizeof line, f))
        k += strstr(line, needle) != NULL;
    fclose(f);
    return k;
}

/* PUT /v1/config/big with a body of about `bytes`: the status. */
static long put_big(size_t bytes)
{
    char *body = malloc(bytes + 64);
    assert_non_null(body);
    int k = snprintf(body, 64, "{\"value\":\"");
    memset(body + k, 'x', bytes);
    snprintf(body + k + bytes, 64, "\"}");
    jv_http_resp r;
    API_REQ(&N, &r, "PUT", "/v1/config/big", N.admin_token, body);
    long st = r.status;
    jv_http_resp_fini(&r);
    free(body);
    return st;
}

static bool peer_listed(const char *addr)
{
    json_t *j = API_OK(&N, 200, "GET", "/v1/peers", N.admin_token, NULL);
    size_t i;
    json_t *p;
    bool found = false;
    json_array_foreach(json_object_get(j, "peers"), i, p) found =
        found || !strcmp(api_str(p, "address"), addr);
    json_decref(j);
    return found;
}

static bool trusted(const char *id)
{
    json_t *j = API_OK(&N, 200, "GET", "/v1/trust", N.admin_token, NULL);
    size_t i;
    json_t *t;
    bool found = false;
    json_array_foreach(json_object_get(j, "trust"), i, t) found =
        found || (!strcmp(api_str(t, "node_id"), id) &&
                  json_is_true(json_object_get(t, "trusted")));
    json_decref(j);
    return found;
}

/* Does a new session of `key` live `secs` (the default ttl)? Its expiry
 * is the node's clock at the request plus the ttl. */
static bool session_lives(const char *key, uint64_t secs)
{
    char body[300];
    uint64_t exp;
    snprintf(body, sizeof body, "{\"api_key\":\"%s\"}", key);
    uint64_t before = api_now_ms();
    json_t *j = API_OK(&N, 201, "POST", "/v1/sessions", NULL, body);
    uint64_t after = api_now_ms();
    assert_true(api_parse_time(api_str(j, "expires_at"), &exp));
    json_decref(j);
    /* A second either way for the clocks' rounding. */
    return exp + 1000 >= before + secs * 1000 &&
           exp <= after + secs * 1000 + 1000;
}

/* 429s among `n` quick requests of a reader key. */
static int throttled(const char *key, int n)
{
    int k = 0;
    for (int i = 0; i < n; i++) {
        jv_http_resp r;
        API_REQ(&N, &r, "GET", "/v1/counters/x", key, NULL);
        assert_true(r.status == 404 || r.status == 429); /* never counted */
        k += r.status == 429;
        jv_http_resp_fini(&r);
    }
    return k;
}

#define BASE                                                         \
    "# jarvisd.conf under test\n"                                    \
    "api-listen = 127.0.0.1:1\n" /* the flag wins: never a change */ \
    "peer = tcp://127.0.0.1:9\n"

static const char conf0[] = BASE "log-level = info\n"
                                 "max-body = 4k\n"
                                 "rate-limit = 1000\n"
                                 "peer = tcp://127.0.0.1:10\n"
                                 "trust = " TRUST_A "\n";

/* Everything reloadable changed, and sync, which needs a restart. */
#define CONF1                          \
    BASE "log-level = debug\n"         \
         "max-body = 16k\n"            \
         "rate-limit = 1000\n"         \
         "session-ttl = 120\n"         \
         "sync = full\n"               \
         "peer = tcp://127.0.0.1:11\n" \
         "trust = " TRUST_B "\n"
/* conf1 also names the peer the API added (:13), and conf1b no longer. */
static const char conf1[] = CONF1 "peer = tcp://127.0.0.1:13\n";
static const char conf1b[] = CONF1;

static void test_reload(void **state)
{
    (void)state;
    char root[512], at[64] = "", reader[160];
    api_tmpdir("jvreload", root, sizeof root);
    snprintf(conf, sizeof conf, "%s/jarvisd.conf", root);
    write_conf(conf0);
    char *args[] = {(char *)"--config", conf, NULL};
    api_start(&N, args);

    /* Before any reload: null, and the settings of the file. */
    json_t *s = API_OK(&N, 200, "GET", "/v1/status", N.admin_token, NULL);
    assert_true(json_is_null(json_object_get(s, "reload")));
    json_decref(s);
    assert_int_equal(put_big(8 * 1024), 413);
    assert_true(peer_listed("tcp://127.0.0.1:9"));
    assert_true(peer_listed("tcp://127.0.0.1:10"));
    assert_false(peer_listed("tcp://127.0.0.1:11"));
    assert_true(trusted(TRUST_A));
    assert_false(trusted(TRUST_B));
    assert_true(session_lives(N.node.admin_key, 3600));
    api_key(&N, "limited", "reader", reader, NULL);
    assert_int_equal(throttled(reader, 12), 0);
    assert_false(log_has("DEBUG"));
    /* A peer added through the API is not the file's: a reload keeps it. */
    json_decref(API_OK(&N, 201, "POST", "/v1/peers", N.admin_token,
                       "{\"addr\":\"tcp://127.0.0.1:13\"}"));

    /* Everything at once. */
    write_conf(conf1);
    json_t *r = reload(at, sizeof at);
    static const char *const changed1[] = {"log-level", "max-body", "peers",
                                           "trust", "session-ttl"};
    names_are(json_object_get(r, "changed"), changed1, 5);
    static const char *const restart1[] = {"sync"};
    names_are(json_object_get(r, "restart_needed"), restart1, 1);
    assert_true(json_is_null(json_object_get(r, "error")));
    json_decref(r);
    assert_true(log_has("sync changed: restart to apply"));
    assert_false(log_has("api-listen changed"));
    /* max-body: a body the old bound refused is taken. */
    assert_int_equal(put_big(8 * 1024), 200);
    assert_int_equal(put_big(20 * 1024), 413);
    /* log-level debug: requests are logged from now on. */
    size_t debug_lines = log_count("DEBUG api: GET /v1/peers");
    assert_true(peer_listed("tcp://127.0.0.1:9"));
    assert_true(log_count("DEBUG api: GET /v1/peers") > debug_lines);
    /* peers: the new one dialled, the dropped one gone, the API's kept. */
    assert_true(peer_listed("tcp://127.0.0.1:11"));
    assert_false(peer_listed("tcp://127.0.0.1:10"));
    assert_true(peer_listed("tcp://127.0.0.1:13"));
    /* The file drops the peer the API added: still the operator's. */
    write_conf(conf1b);
    r = reload(at, sizeof at);
    assert_true(json_is_null(json_object_get(r, "error")));
    json_decref(r);
    assert_true(peer_listed("tcp://127.0.0.1:13"));
    assert_true(log_has("peer tcp://127.0.0.1:13 no longer configured; kept"));
    assert_true(peer_listed("tcp://127.0.0.1:11"));
    /* trust: the new line bootstraps (through the writer: poll); the
     * dropped line revokes nothing. */
    uint64_t end = api_now_ms() + WAIT_MS;
    while (!trusted(TRUST_B) && api_now_ms() < end)
        api_sleep_ms(20);
    assert_true(trusted(TRUST_B));
    assert_true(trusted(TRUST_A));
    assert_true(session_lives(N.node.admin_key, 120));

    /* A file that no longer parses: nothing changes, the node serves. */
    write_conf(BASE "log-level = info\nmax-body = 4k\nthis is not a setting\n");
    r = reload(at, sizeof at);
    assert_int_equal(json_array_size(json_object_get(r, "changed")), 0);
    assert_int_equal(json_array_size(json_object_get(r, "restart_needed")), 0);
    const char *err = api_str(r, "error");
    assert_non_null(strstr(err, "jarvisd.conf:6"));
    json_decref(r);
    assert_true(log_has("settings not reloaded"));
    assert_int_equal(put_big(8 * 1024), 200);
    debug_lines = log_count("DEBUG api: GET /v1/peers");
    assert_true(peer_listed("tcp://127.0.0.1:11"));
    assert_true(log_count("DEBUG api: GET /v1/peers") > debug_lines);
    /* A bad peer address is refused as a whole, too. */
    write_conf(BASE "peer = http://nope\n");
    r = reload(at, sizeof at);
    assert_non_null(strstr(api_str(r, "error"), "http://nope"));
    json_decref(r);
    assert_true(peer_listed("tcp://127.0.0.1:11"));

    /* The rate limit, last: lower, so 429 comes sooner. The same file
     * otherwise: sync still needs its restart. */
    write_conf(BASE "log-level = debug\nmax-body = 16k\nsession-ttl = 120\n"
                    "sync = full\npeer = tcp://127.0.0.1:11\n"
                    "trust = " TRUST_B "\nrate-limit = 1\nrate-burst = 3\n");
    r = reload(at, sizeof at);
    static const char *const changed2[] = {"rate-limit", "rate-burst"};
    names_are(json_object_get(r, "changed"), changed2, 2);
    names_are(json_object_get(r, "restart_needed"), restart1, 1);
    json_decref(r);
    /* 3 tokens and 1 a second: 12 quick requests cannot all pass. */
    assert_true(throttled(reader, 12) > 0);
    api_cleanup(&N);
}

static double cache_lookups(const char *result)
{
    jv_http_resp r;
    API_REQ(&N, &r, "GET", "/metrics", NULL, NULL);
    assert_int_equal(r.status, 200);
    double v = api_metric(
        r.body,
        api_fmt("jarvis_read_cache_lookups_total{result=\"%s\"}", result));
    jv_http_resp_fini(&r);
    return v;
}

/* read-cache: turned off by a reload (lookups stop: every read goes to
 * the database), and on again. */
static void test_reload_read_cache(void **state)
{
    (void)state;
    char root[512], at[64] = "";
    api_tmpdir("jvreload", root, sizeof root);
    snprintf(conf, sizeof conf, "%s/jarvisd.conf", root);
    write_conf("read-cache = 64k\n");
    char *args[] = {(char *)"--config", conf, NULL};
    api_start(&N, args);
    json_decref(API_OK(&N, 200, "POST", "/v1/counters/c/increment",
                       N.admin_token, "{}"));
    /* Phases: on (64k), off, on again (1M). */
    for (int phase = 0; phase < 3; phase++) {
        double hits = cache_lookups("hit"), misses = cache_lookups("miss");
        for (int i = 0; i < 10; i++)
            json_decref(
                API_OK(&N, 200, "GET", "/v1/counters/c", N.admin_token, NULL));
        double looked =
            cache_lookups("hit") - hits + cache_lookups("miss") - misses;
        assert_true(looked == (phase == 1 ? 0 : 10));
        if (phase == 2)
            break;
        write_conf(phase == 0 ? "read-cache = 0\n" : "read-cache = 1M\n");
        json_t *r = reload(at, sizeof at);
        static const char *const changed[] = {"read-cache"};
        names_are(json_object_get(r, "changed"), changed, 1);
        json_decref(r);
    }
    api_cleanup(&N);
}

/* jarvisd with every setting but the data dir from the config file (the
 * harness's starts pass --api-listen, which would win over the file). */
static void start_from_file(void)
{
    char bin[512], path[700];
    memset(&N, 0, sizeof N);
    assert_int_equal(jv_test_node_prepare(&N.node), 0);
    assert_true(jv_bin_path("jarvisd", bin, sizeof bin));
    char *argv[] = {
        bin, (char *)"--data-dir", N.node.dir, (char *)"--config", conf, NULL};
    assert_int_equal(jv_proc_spawn(&N.node.proc, argv, NULL, N.node.log), 0);
    N.node.running = true;
    snprintf(path, sizeof path, "%s/api.addr", N.node.dir);
    uint64_t end = api_now_ms() + WAIT_MS;
    FILE *f = NULL;
    while (!(f = fopen(path, "r")) && api_now_ms() < end)
        api_sleep_ms(20);
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%255s", N.node.url), 1);
    fclose(f);
    snprintf(path, sizeof path, "%s/admin.key", N.node.dir);
    assert_non_null(f = fopen(path, "r"));
    assert_int_equal(fscanf(f, "%255s", N.node.admin_key), 1);
    fclose(f);
    assert_int_equal(jv_http_client_init(&N.http, N.node.url), 0);
    char body[400];
    snprintf(body, sizeof body, "{\"api_key\":\"%s\"}", N.node.admin_key);
    json_t *j = API_OK(&N, 201, "POST", "/v1/sessions", NULL, body);
    snprintf(N.admin_token, sizeof N.admin_token, "%s", api_str(j, "token"));
    json_decref(j);
}

/* A setting only the file gives (no flag wins over it) that needs a
 * restart: named in the log, in the status and in jarvisctl status; the
 * node goes on where it was. */
static void test_restart_needed(void **state)
{
    (void)state;
    char root[512], at[64] = "", ctl[512], url[256];
    api_tmpdir("jvreload", root, sizeof root);
    snprintf(conf, sizeof conf, "%s/jarvisd.conf", root);
    write_conf("api-listen = 127.0.0.1:0\nlisten = off\nname = one\n");
    start_from_file();
    snprintf(url, sizeof url, "%s", N.node.url);

    write_conf("api-listen = 127.0.0.1:1\nlisten = off\nname = two\n");
    json_t *r = reload(at, sizeof at);
    static const char *const changed[] = {"name"};
    static const char *const restart[] = {"api-listen"};
    names_are(json_object_get(r, "changed"), changed, 1);
    names_are(json_object_get(r, "restart_needed"), restart, 1);
    json_decref(r);
    assert_true(log_has("api-listen changed: restart to apply"));
    /* Still served where it was; the name is the new one. */
    json_t *s = API_OK(&N, 200, "GET", "/v1/status", N.admin_token, NULL);
    assert_string_equal(api_str(s, "name"), "two");
    json_decref(s);
    FILE *f;
    char addr[300], path[700];
    snprintf(path, sizeof path, "%s/api.addr", N.node.dir);
    assert_non_null(f = fopen(path, "r"));
    assert_int_equal(fscanf(f, "%255s", addr), 1);
    fclose(f);
    assert_string_equal(addr, url);

    /* jarvisctl status: one line for it. */
    jv_proc_result pr;
    assert_true(jv_bin_path("jarvisctl", ctl, sizeof ctl));
    char *argv[] = {ctl,
                    (char *)"--node",
                    url,
                    (char *)"--api-key",
                    N.node.admin_key,
                    (char *)"status",
                    NULL};
    assert_int_equal(jv_proc_run(argv, NULL, 20000, &pr), 0);
    assert_int_equal(pr.status, 0);
    const char *line = strstr(pr.out, "settings reload");
    if (!line || !strstr(line, "applied name; restart needed for api-listen"))
        fail_msg("jarvisctl status: %s", pr.out);
    jv_proc_result_fini(&pr);
    api_cleanup(&N);
}

/* jarvisctl cluster-key ARGS... on a key file: must exit 0. */
static void key_cmd(char *a1, char *a2, char *a3)
{
    char ctl[512];
    jv_proc_result pr;
    assert_true(jv_bin_path("jarvisctl", ctl, sizeof ctl));
    char *argv[] = {ctl, (char *)"cluster-key", a1, a2, a3, NULL};
    assert_int_equal(jv_proc_run(argv, NULL, 20000, &pr), 0);
    if (pr.status != 0)
        fail_msg("jarvisctl cluster-key %s: %s", a1, pr.err);
    jv_proc_result_fini(&pr);
}

/* The cluster key file is read again on SIGHUP, after the settings: the
 * status's reload names it among what was applied when its keys changed
 * (not otherwise), and a file that does not load is the reload's error,
 * the keys in use kept. */
static void test_key_file(void **state)
{
    (void)state;
    char root[512], at[64] = "", kf[600], text[900];
    api_tmpdir("jvreload", root, sizeof root);
    snprintf(conf, sizeof conf, "%s/jarvisd.conf", root);
    snprintf(kf, sizeof kf, "%s/cluster.key", root);
    key_cmd((char *)"-o", kf, NULL);
    snprintf(text, sizeof text,
             "api-listen = 127.0.0.1:0\nlisten = off\ncluster-key-file = "
             "%s\n",
             kf);
    write_conf(text);
    start_from_file();

    json_t *r = reload(at, sizeof at);
    assert_int_equal(json_array_size(json_object_get(r, "changed")), 0);
    json_decref(r);

    key_cmd((char *)"add", kf,
            (char *)"ab00000000000000000000000000000000000000000000000000000000"
                    "0000cd");
    r = reload(at, sizeof at);
    static const char *const keys[] = {"cluster-key-file"};
    names_are(json_object_get(r, "changed"), keys, 1);
    assert_true(json_is_null(json_object_get(r, "error")));
    json_decref(r);

    assert_int_equal(chmod(kf, 0644), 0);
    r = reload(at, sizeof at);
    const char *err = json_string_value(json_object_get(r, "error"));
    if (!err || !strstr(err, "cluster key file") || !strstr(err, "kept"))
        fail_msg("reload error: %s", err ? err : "null");
    json_decref(r);
    json_t *s = API_OK(&N, 200, "GET", "/v1/status", N.admin_token, NULL);
    json_t *ck = json_object_get(s, "cluster_keys");
    assert_int_equal(json_array_size(json_object_get(ck, "accept")), 2);
    json_decref(s);
    api_cleanup(&N);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reload),
        cmocka_unit_test(test_reload_read_cache),
        cmocka_unit_test(test_restart_needed),
        cmocka_unit_test(test_key_file),
    };
    assert_int_equal(jv_http_global_init(), 0);
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    jv_http_global_fini();
    return rc;
}
