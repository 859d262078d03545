/*
 * api_errors_test.c - every error of docs/api.md's table against a real
 * jarvisd: 400 (bad_request, invalid_json, invalid_field), 401, 403, 404,
 * 405 with Allow, 413 over --max-body, 429 with Retry-After over
 * --rate-limit, 431. Each answer must have its status and exactly the
 * body {"error":{"code","message"}}, and nothing may be applied: the
 * export is compared byte for byte before and after every refused
 * request (API_ERR). 503 storage_unavailable is api_storage_test.c's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "apitest.h"

static api_node N;
static char writer[160], reader[160], writer_tok[160];

static int setup(void **state)
{
    (void)state;
    api_start(&N, NULL);
    api_key(&N, "err-writer", "writer", writer, NULL);
    api_key(&N, "err-reader", "reader", reader, NULL);
    api_session(&N, writer, 0, writer_tok, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int st = api_stop(&N);
    api_cleanup(&N);
    return st == 0 ? 0 : -1;
}

/* A string of n copies of ch (malloc'd). */
static char *filled(size_t n, char ch)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, ch, n);
    s[n] = '\0';
    return s;
}

/* -- 400 ------------------------------------------------------------------ */

static void test_invalid_json(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "not json",
        "{\"action\":",
        "[{\"action\":\"deploy\"}]",
        "\"deploy\"",
        "42",
        "null",
        "{\"action\":\"a\",\"action\":\"b\"}",
        "{\"action\":\"\xff\xfe\"}",
        "{\"action\":\"a\\u0000b\"}",
        "{\"action\":\"deploy\"} trailing",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++)
        API_ERR(&N, 400, "invalid_json", "POST", "/v1/audit", writer,
                bodies[i]);
    API_ERR(&N, 400, "invalid_json", "PUT", "/v1/config/ij", writer,
            "[\"value\",1]");
    API_ERR(&N, 400, "invalid_json", "PUT", "/v1/config/ij", writer,
            "{\"value\":1,\"value\":2}");
    API_ERR(&N, 400, "invalid_json", "PUT", "/v1/archive/ij", writer, "1");
    API_ERR(&N, 400, "invalid_json", "POST", "/v1/counters/ij/increment",
            writer, "{\"by\":}");
    API_ERR(&N, 400, "invalid_json", "POST", "/v1/batch", writer,
            "[{\"op\":\"counter.increment\",\"name\":\"ij\"}]");
    API_ERR(&N, 400, "invalid_json", "POST", "/v1/sessions", NULL, "api_key");
    API_ERR(&N, 400, "invalid_json", "POST", "/v1/keys", N.admin_token,
            "{\"name\":\"x\",\"role\":\"reader\",\"name\":\"y\"}");
    /* Routes that need a body refuse none at all. */
    API_ERR(&N, 400, "invalid_json", "PUT", "/v1/config/ij", writer, NULL);
    API_ERR(&N, 400, "invalid_json", "POST", "/v1/audit", writer, NULL);
    API_ERR(&N, 400, "invalid_json", "POST", "/v1/sessions", NULL, NULL);
}

static void test_invalid_field(void **state)
{
    (void)state;
    const char *w = writer;
    /* Audit fields: required, strings, within their lengths. */
    char *s257 = filled(257, 'a'), *s1025 = filled(1025, 't'),
         *s16385 = filled(16385, 'd');
    API_ERR(&N, 400, "invalid_field", "POST", "/v1/audit", w, "{}");
    API_ERR(&N, 400, "invalid_field", "POST", "/v1/audit", w,
            "{\"target\":\"x\"}");
    API_ERR(&N, 400, "invalid_field", "POST", "/v1/audit", w, "{\"action\":5}");
    API_ERR(&N, 400, "invalid_field", "POST", "/v1/audit", w,
            "{\"action\":\"\"}");
    API_ERR(&N, 400, "invalid_field", "POST", "/v1/audit", w,
            "{\"action\":[\"deploy\"]}");
    API_ERR(&N, 400, "invalid_field", "POST", "/v1/audit", w,
            "{\"action\":\"a\",\"target\":7}");
    API_ERR(&N, 400, "invalid_field", "POST", "/v1/audit", w,
            "{\"action\":\"a\",\"detail\":{}}");
    API_ERR(&N, 400, "invalid_field", "POST", "/v1/audit", w,
            api_fmt("{\"action\":\"%s\"}", s257));
    char *body = malloc(20000);
    assert_non_null(body);
    snprintf(body, 20000, "{\"action\":\"a\",\"target\":\"%s\"}", s1025);
    API_ERR(&N, 400, "invalid_field", "POST", "/v1/audit", w, body);
    snprintf(body, 20000, "{\"action\":\"a\",\"detail\":\"%s\"}", s16385);
    API_ERR(&N, 400, "invalid_field", "POST", "/v1/audit", w, body);
    /* The limits themselves are accepted. */
    s257[256] = '\0';
    s1025[1024] = '\0';
    s16385[16384] = '\0';
    snprintf(body, 20000,
             "{\"action\":\"%s\",\"target\":\"%s\",\"detail\":\"%s\"}", s257,
             s1025, s16385);
    json_t *j = API_OK(&N, 201, "POST", "/v1/audit", w, body);
    assert_string_equal(api_str(j, "detail"), s16385);
    json_decref(j);
    free(body);
    free(s257);
    free(s1025);
    free(s16385);

    /* by: a non-zero integer, |by| <= 2^53. */
    static const char *const bys[] = {"\"5\"",
                                      "1.5",
                                      "0",
                                      "true",
                                      "9007199254740993",
                                      "-9007199254740993",
                                      "1e3",
                                      "[1]",
                                      "9223372036854775807"};
    for (size_t i = 0; i < sizeof bys / sizeof bys[0]; i++)
        API_ERR(&N, 400, "invalid_field", "POST", "/v1/counters/if-c/increment",
                w, api_fmt("{\"by\":%s}", bys[i]));
    API_ERR(&N, 404, "not_found", "GET", "/v1/counters/if-c", w, NULL);

    /* Values: required, at most 64 KiB once encoded. */
    API_ERR(&N, 400, "invalid_field", "PUT", "/v1/config/if-k", w, "{}");
    API_ERR(&N, 400, "invalid_field", "PUT", "/v1/archive/if-k", w,
            "{\"val\":1}");
    char *big = filled(65535, 'v');
    char *vb = malloc(65600);
    assert_non_null(vb);
    snprintf(vb, 65600, "{\"value\":\"%s\"}", big); /* 65537 encoded */
    API_ERR(&N, 400, "invalid_field", "PUT", "/v1/config/if-k", w, vb);
    API_ERR(&N, 400, "invalid_field", "PUT", "/v1/archive/if-k", w, vb);
    /* 65534 characters and the quotes: exactly 64 KiB, accepted. */
    big[65534] = '\0';
    snprintf(vb, 65600, "{\"value\":\"%s\"}", big);
    j = API_OK(&N, 200, "PUT", "/v1/config/if-k", w, vb);
    assert_int_equal(strlen(api_str(j, "value")), 65534);
    json_decref(j);
    free(vb);
    free(big);

    /* Sessions: the key is a string; ttl_seconds an integer 1..604800. */
    API_ERR(&N, 400, "invalid_field", "POST", "/v1/sessions", NULL, "{}");
    API_ERR(&N, 400, "invalid_field", "POST", "/v1/sessions", NULL,
            "{\"api_key\":5}");
    static const char *const ttls[] = {"0", "-1", "604801", "\"60\"", "1.5"};
    for (size_t i = 0; i < sizeof ttls / sizeof ttls[0]; i++)
        API_ERR(&N, 400, "invalid_field", "POST", "/v1/sessions", NULL,
                api_fmt("{\"api_key\":\"%s\",\"ttl_seconds\":%s}", writer,
                        ttls[i]));

    /* Keys: a name of 1-64 of [A-Za-z0-9._-], a known role. */
    char *n65 = filled(65, 'k');
    const char *bad_keys[] = {
        "{\"role\":\"reader\"}",
        "{\"name\":\"x\"}",
        "{\"name\":\"\",\"role\":\"reader\"}",
        "{\"name\":\"has space\",\"role\":\"reader\"}",
        "{\"name\":\"sl/ash\",\"role\":\"reader\"}",
        "{\"name\":\"ok\",\"role\":\"root\"}",
        "{\"name\":\"ok\",\"role\":\"Admin\"}",
        "{\"name\":7,\"role\":\"reader\"}",
        api_fmt("{\"name\":\"%s\",\"role\":\"reader\"}", n65),
    };
    for (size_t i = 0; i < sizeof bad_keys / sizeof bad_keys[0]; i++)
        API_ERR(&N, 400, "invalid_field", "POST", "/v1/keys", N.admin_token,
                bad_keys[i]);
    n65[64] = '\0';
    char k64[160];
    api_key(&N, n65, "reader", k64, NULL);
    free(n65);

    /* Names too long inside a body are fields out of range. */
    char *n257 = filled(257, 'n');
    API_ERR(&N, 400, "invalid_field", "POST", "/v1/batch", w,
            api_fmt("{\"ops\":[{\"op\":\"counter.increment\",\"name\":"
                    "\"%s\"}]}",
                    n257));
    free(n257);

    /* Backup: a file in the backup dir, nowhere else. */
    API_ERR(&N, 400, "invalid_field", "POST", "/v1/backup", N.admin_token,
            "{\"path\":\"/tmp/backup.db\"}");
    API_ERR(&N, 400, "invalid_field", "POST", "/v1/backup", N.admin_token,
            "{\"path\":\"../backup.db\"}");
    API_ERR(&N, 400, "invalid_field", "POST", "/v1/backup", N.admin_token,
            "{\"path\":\"..\"}");
    API_ERR(&N, 400, "invalid_field", "POST", "/v1/backup", N.admin_token,
            "{\"path\":42}");
}

static void test_bad_request(void **state)
{
    (void)state;
    const char *r = reader;
    /* Paging parameters. */
    static const char *const limits[] = {
        "0", "abc", "1001", "-1", "", "1x", "1.5", "99999999999999999999"};
    static const char *const lists[] = {"/v1/counters", "/v1/config",
                                        "/v1/archive", "/v1/audit"};
    for (size_t l = 0; l < sizeof lists / sizeof lists[0]; l++) {
        for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++)
            API_ERR(&N, 400, "bad_request", "GET",
                    api_fmt("%s?limit=%s", lists[l], limits[i]), r, NULL);
        /* Query values must decode to UTF-8. */
        API_ERR(&N, 400, "bad_request", "GET",
                api_fmt("%s?cursor=%%FF", lists[l]), r, NULL);
        API_ERR(&N, 400, "bad_request", "GET",
                api_fmt("%s?limit=%%zz", lists[l]), r, NULL);
        json_decref(API_OK(&N, 200, "GET", api_fmt("%s?limit=1000", lists[l]),
                           r, NULL));
    }
    API_ERR(&N, 400, "bad_request", "GET", "/v1/counters?prefix=%C3%28", r,
            NULL);
    /* The audit's own parameters. */
    static const char *const audit[] = {
        "cursor=garbage",
        "cursor=1-abc-2",
        "cursor=12-" /* a cursor with no id */,
        "since=garbage",
        "since=2026-13-01T00:00:00Z",
        "since=2026-11-21T09:30:00",
        "since=2026-11-21",
        "until=yesterday",
        "until=-5",
        "order=up",
        "order=",
        "order=DESC",
    };
    for (size_t i = 0; i < sizeof audit / sizeof audit[0]; i++)
        API_ERR(&N, 400, "bad_request", "GET",
                api_fmt("/v1/audit?%s", audit[i]), r, NULL);

    /* Bad paths: names and keys that are not 1..max bytes of UTF-8
     * without NUL, or do not decode. */
    char *n257 = filled(257, 'n'), *k1025 = filled(1025, 'k');
    const char *paths[][2] = {
        {"POST", api_fmt("/v1/counters/%s/increment", n257)},
        {"GET", api_fmt("/v1/counters/%s", n257)},
        {"POST", "/v1/counters/%FF/increment"},
        {"POST", "/v1/counters/a%00b/increment"},
        {"POST", "/v1/counters/%G1/increment"},
        {"POST", "/v1/counters/%/increment"},
        {"GET", "/v1/config/%C3%28"},
        {"GET", "/v1/archive/%ED%A0%80"}, /* a UTF-16 surrogate */
        {"DELETE", "/v1/archive/%C0%AF"}, /* an overlong '/' */
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        API_ERR(&N, 400, "bad_request", paths[i][0], paths[i][1], writer, NULL);
    const char *body = "{\"value\":1}";
    char *kp = malloc(1100);
    assert_non_null(kp);
    snprintf(kp, 1100, "/v1/config/%s", k1025);
    API_ERR(&N, 400, "bad_request", "PUT", kp, writer, body);
    snprintf(kp, 1100, "/v1/archive/%s", k1025);
    API_ERR(&N, 400, "bad_request", "PUT", kp, writer, body);
    /* 1024 bytes is the longest key. */
    k1025[1024] = '\0';
    snprintf(kp, 1100, "/v1/config/%s", k1025);
    json_decref(API_OK(&N, 200, "PUT", kp, writer, body));
    free(kp);
    free(n257);
    free(k1025);

    /* Ending "the current session" with an API key. */
    API_ERR(&N, 400, "bad_request", "DELETE", "/v1/sessions/current", writer,
            NULL);
}

/* Malformed HTTP, on a raw socket: the server answers and closes. */
static void raw_error(const char *req, size_t len, int status, const char *code)
{
    jv_http_resp r;
    char conn[64];
    size_t l0, l1;
    char *before = api_export(&N, &l0);
    if (jv_http_raw(N.node.url, req, len, 20000, &r) != 0)
        fail_msg("no answer to a raw request: %s", r.error);
    API_CHECK_ERROR(&r, status, code);
    assert_non_null(jv_http_resp_header(&r, "Connection", conn, sizeof conn));
    assert_string_equal(conn, "close");
    jv_http_resp_fini(&r);
    char *after = api_export(&N, &l1);
    assert_int_equal(l0, l1);
    assert_memory_equal(before, after, l0);
    free(before);
    free(after);
}

static void test_malformed_http(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "GARBAGE\r\n\r\n",
        "GET http://example.com/health HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /health HTTP/1.1\r\nBad Header: x\r\n\r\n",
        "GET /health HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
        ("POST /v1/audit HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: "
         "6\r\n\r\nhello!"),
        "POST /v1/audit HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        raw_error(bad[i], strlen(bad[i]), 400, "bad_request");

    /* Request headers over 16 KiB: 431. */
    size_t n = 20000;
    char *big = malloc(n + 200);
    assert_non_null(big);
    int k = snprintf(big, 200, "GET /health HTTP/1.1\r\nX-Fill: ");
    memset(big + k, 'f', n);
    memcpy(big + k + n, "\r\n\r\n", 5);
    raw_error(big, strlen(big), 431, "headers_too_large");
    free(big);

    /* A well-formed raw request is served (the raw client is right). */
    static const char ok[] = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
    jv_http_resp r;
    assert_int_equal(jv_http_raw(N.node.url, ok, strlen(ok), 5000, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(api_str(r.json, "status"), "ok");
    jv_http_resp_fini(&r);
}

/* A request that does not arrive whole within the node's request timeout
 * (10 s, not configurable) is answered 408 and its connection closed. */
static void test_request_timeout(void **state)
{
    (void)state;
    static const char part[] = "POST /v1/audit HTTP/1.1\r\nHost: x\r\n"
                               "Content-Length: 20\r\n\r\n{\"action\":";
    uint64_t t0 = api_now_ms();
    raw_error(part, strlen(part), 408, "request_timeout");
    uint64_t waited = api_now_ms() - t0;
    assert_true(waited >= 9000 && waited < 20000);
}

/* -- 401, 403, 404 -------------------------------------------------------- */

/* 401 with a WWW-Authenticate challenge. */
static void unauthorized(const char *method, const char *path, const char *cred,
                         const char *body)
{
    jv_http_resp r;
    char ch[64];
    API_ERR(&N, 401, "unauthorized", method, path, cred, body);
    API_REQ(&N, &r, method, path, cred, body);
    API_CHECK_ERROR(&r, 401, "unauthorized");
    assert_non_null(jv_http_resp_header(&r, "WWW-Authenticate", ch, sizeof ch));
    assert_string_equal(ch, "Bearer");
    jv_http_resp_fini(&r);
}

static void test_unauthorized(void **state)
{
    (void)state;
    /* A credential with one character of its secret changed, and the key
     * presented as a session token. */
    char wrong_key[160], wrong_tok[160], as_session[160];
    snprintf(wrong_key, sizeof wrong_key, "%s", writer);
    wrong_key[strlen(wrong_key) - 1] ^= 1;
    snprintf(wrong_tok, sizeof wrong_tok, "%s", writer_tok);
    wrong_tok[strlen(wrong_tok) - 1] ^= 1;
    snprintf(as_session, sizeof as_session, "jvs_%s", writer + 4);
    const char *creds[] = {NULL,
                           "",
                           "garbage",
                           "jvk_",
                           "jvk_0000_0000",
                           "jvk_k_nonexistent_AAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                           wrong_key,
                           wrong_tok,
                           as_session};
    for (size_t i = 0; i < sizeof creds / sizeof creds[0]; i++) {
        unauthorized("GET", "/v1/status", creds[i], NULL);
        unauthorized("POST", "/v1/counters/un-c/increment", creds[i], NULL);
        unauthorized("POST", "/v1/batch", creds[i],
                     "{\"ops\":[{\"op\":\"audit.append\",\"action\":\"x\"}]}");
    }
    /* Another scheme than Bearer. */
    jv_http_resp r;
    const char *basic =
        api_fmt("GET /v1/status HTTP/1.1\r\nHost: x\r\nAuthorization: Basic "
                "%s\r\n\r\n",
                writer);
    assert_int_equal(jv_http_raw(N.node.url, basic, strlen(basic), 5000, &r),
                     0);
    API_CHECK_ERROR(&r, 401, "unauthorized");
    jv_http_resp_fini(&r);

    /* Sessions are made from API keys only. */
    API_ERR(&N, 401, "unauthorized", "POST", "/v1/sessions", NULL,
            api_fmt("{\"api_key\":\"%s\"}", wrong_key));
    API_ERR(&N, 401, "unauthorized", "POST", "/v1/sessions", NULL,
            api_fmt("{\"api_key\":\"%s\"}", writer_tok));
    API_ERR(&N, 401, "unauthorized", "POST", "/v1/sessions", NULL,
            "{\"api_key\":\"jvk_nope\"}");
    /* /health and /metrics need nothing. */
    json_decref(API_OK(&N, 200, "GET", "/health", NULL, NULL));
    API_REQ(&N, &r, "GET", "/metrics", NULL, NULL);
    assert_int_equal(r.status, 200);
    jv_http_resp_fini(&r);
}

static void test_forbidden(void **state)
{
    (void)state;
    static const char *const writes[][3] = {
        {"POST", "/v1/counters/fb/increment", "{\"by\":1}"},
        {"POST", "/v1/audit", "{\"action\":\"x\"}"},
        {"PUT", "/v1/config/fb", "{\"value\":1}"},
        {"PUT", "/v1/archive/fb", "{\"value\":1}"},
        {"DELETE", "/v1/archive/fb", NULL},
        {"POST", "/v1/batch",
         "{\"ops\":[{\"op\":\"counter.increment\",\"name\":\"fb\"}]}"},
    };
    for (size_t i = 0; i < sizeof writes / sizeof writes[0]; i++)
        API_ERR(&N, 403, "forbidden", writes[i][0], writes[i][1], reader,
                writes[i][2]);
    static const char *const admin[][3] = {
        {"POST", "/v1/keys", "{\"name\":\"fb\",\"role\":\"admin\"}"},
        {"GET", "/v1/keys", NULL},
        {"GET", "/v1/sessions", NULL},
        {"POST", "/v1/backup", "{\"path\":\"/tmp/jv-forbidden.db\"}"},
        {"POST", "/v1/verify", NULL},
    };
    for (size_t i = 0; i < sizeof admin / sizeof admin[0]; i++) {
        API_ERR(&N, 403, "forbidden", admin[i][0], admin[i][1], writer,
                admin[i][2]);
        API_ERR(&N, 403, "forbidden", admin[i][0], admin[i][1], writer_tok,
                admin[i][2]);
    }
    /* The answer names the role the route needs, not a guess. */
    jv_http_resp r;
    API_REQ(&N, &r, "POST", "/v1/audit", reader, "{\"action\":\"x\"}");
    const json_t *e = json_object_get(r.json, "error");
    assert_string_equal(api_str(e, "required_role"), "writer");
    assert_non_null(strstr(api_str(e, "message"), "needs the writer role"));
    jv_http_resp_fini(&r);
    API_REQ(&N, &r, "GET", "/v1/keys", writer, NULL);
    e = json_object_get(r.json, "error");
    assert_string_equal(api_str(e, "required_role"), "admin");
    assert_non_null(strstr(api_str(e, "message"), "needs the admin role"));
    jv_http_resp_fini(&r);
}

static void test_not_found(void **state)
{
    (void)state;
    static const char *const routes[][2] = {
        /* "/" and "/ui/..." are the dashboard's (tests/node/ui_test.c). */
        {"GET", "/index.html"},
        {"GET", "/uix"},
        {"GET", "/v1"},
        {"GET", "/v1/"},
        {"GET", "/v2/status"},
        {"GET", "/v1/statuses"},
        {"GET", "/v1/status/"},
        {"GET", "/healthz"},
        {"GET", "/v1/counters/"},
        {"POST", "/v1/counters/a/b/increment"},
        {"POST", "/v1/counters/a/increment/more"},
        {"GET", "/v1/config/"},
        {"GET", "/v1/nope"},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        API_ERR(&N, 404, "not_found", routes[i][0], routes[i][1], N.admin_token,
                NULL);
        /* Routing comes before credentials. */
        API_ERR(&N, 404, "not_found", routes[i][0], routes[i][1], NULL, NULL);
    }
    static const char *const absent[][2] = {
        {"GET", "/v1/counters/nf-absent"},
        {"GET", "/v1/config/nf-absent"},
        {"GET", "/v1/archive/nf-absent"},
        {"DELETE", "/v1/archive/nf-absent"},
        {"DELETE", "/v1/sessions/s_000000000000"},
        {"DELETE", "/v1/sessions/not-an-id-and-far-too-long-to-be-one"},
        {"DELETE", "/v1/keys/k_000000000000"},
        {"DELETE", "/v1/keys/not-an-id-and-far-too-long-to-be-one"},
    };
    for (size_t i = 0; i < sizeof absent / sizeof absent[0]; i++)
        API_ERR(&N, 404, "not_found", absent[i][0], absent[i][1], N.admin_token,
                NULL);
}

/* -- 405 ------------------------------------------------------------------ */

/* Fails unless the Allow list has exactly the methods in want
 * (space-separated). */
static void check_allow(const char *method, const char *path, const char *want)
{
    jv_http_resp r;
    char allow[256], w[256];
    API_ERR(&N, 405, "method_not_allowed", method, path, N.admin_token, NULL);
    API_REQ(&N, &r, method, path, NULL, NULL);
    API_CHECK_ERROR(&r, 405, "method_not_allowed");
    if (!jv_http_resp_header(&r, "Allow", allow, sizeof allow))
        fail_msg("%s %s: 405 without Allow", method, path);
    jv_http_resp_fini(&r);
    size_t nw = 0, na = 0;
    snprintf(w, sizeof w, "%s", want);
    for (char *save = NULL, *t = strtok_r(w, " ", &save); t;
         t = strtok_r(NULL, " ", &save)) {
        nw++;
        /* Each wanted method is a whole item of the list. */
        char copy[256], *save2 = NULL;
        bool found = false;
        snprintf(copy, sizeof copy, "%s", allow);
        for (char *a = strtok_r(copy, ", ", &save2); a;
             a = strtok_r(NULL, ", ", &save2))
            found |= strcmp(a, t) == 0;
        if (!found)
            fail_msg("%s %s: Allow '%s' lacks %s", method, path, allow, t);
    }
    for (char *save = NULL, *a = strtok_r(allow, ", ", &save); a;
         a = strtok_r(NULL, ", ", &save))
        na++;
    if (na != nw)
        fail_msg("%s %s: Allow has %zu methods, want '%s'", method, path, na,
                 want);
}

static void test_method_not_allowed(void **state)
{
    (void)state;
    check_allow("PUT", "/health", "GET");
    check_allow("POST", "/metrics", "GET");
    check_allow("DELETE", "/v1/status", "GET");
    check_allow("PUT", "/v1/sessions", "POST GET");
    check_allow("GET", "/v1/sessions/current", "DELETE");
    check_allow("GET", "/v1/sessions/s_123", "DELETE");
    check_allow("PUT", "/v1/keys", "POST GET");
    check_allow("GET", "/v1/keys/k_123", "DELETE");
    check_allow("GET", "/v1/counters/c/increment", "POST");
    check_allow("DELETE", "/v1/counters/c", "GET");
    check_allow("POST", "/v1/counters", "GET");
    check_allow("DELETE", "/v1/audit", "POST GET");
    check_allow("PATCH", "/v1/config/a/b", "PUT GET");
    check_allow("POST", "/v1/config/a", "PUT GET");
    check_allow("POST", "/v1/archive/a/b", "PUT GET DELETE");
    check_allow("GET", "/v1/batch", "POST");
    check_allow("POST", "/v1/export", "GET");
    check_allow("GET", "/v1/backup", "POST");
    check_allow("GET", "/v1/verify", "POST");
    check_allow("PUT", "/v1/peers", "GET POST");
    check_allow("PUT", "/v1/trust", "GET POST");
}

/* -- 413, 429 ------------------------------------------------------------- */

static void test_payload_too_large(void **state)
{
    (void)state;
    api_node L;
    char *extra[] = {(char *)"--max-body", (char *)"1k", NULL};
    api_start(&L, extra);
    /* {"action":"x","detail":"ddd..."}: 26 bytes around the detail. */
    char body[2100];
    for (size_t len = 1023; len <= 1025; len++) {
        size_t d = len - 26;
        int k = snprintf(body, sizeof body, "{\"action\":\"x\",\"detail\":\"");
        memset(body + k, 'd', d);
        memcpy(body + (size_t)k + d, "\"}", 3);
        assert_int_equal(strlen(body), len);
        if (len <= 1024) {
            json_decref(
                API_OK(&L, 201, "POST", "/v1/audit", L.admin_token, body));
            continue;
        }
        API_ERR(&L, 413, "payload_too_large", "POST", "/v1/audit",
                L.admin_token, body);
        jv_http_resp r;
        char conn[32];
        API_REQ(&L, &r, "POST", "/v1/audit", L.admin_token, body);
        API_CHECK_ERROR(&r, 413, "payload_too_large");
        assert_non_null(
            jv_http_resp_header(&r, "Connection", conn, sizeof conn));
        assert_string_equal(conn, "close");
        jv_http_resp_fini(&r);
    }
    /* Far over, and chunked without a length up front. */
    char *huge = filled(100000, ' ');
    memcpy(huge, "{\"action\":\"x\"}", 14);
    API_ERR(&L, 413, "payload_too_large", "PUT", "/v1/config/big",
            L.admin_token, huge);
    free(huge);
    size_t l0, l1;
    char *before = api_export(&L, &l0);
    char req[4096];
    int k = snprintf(req, sizeof req,
                     "POST /v1/audit HTTP/1.1\r\nHost: x\r\nAuthorization: "
                     "Bearer %s\r\nTransfer-Encoding: chunked\r\n\r\n",
                     L.admin_token);
    for (int i = 0; i < 3; i++)
        k += snprintf(req + k, sizeof req - (size_t)k, "200\r\n%0512d\r\n", 0);
    k += snprintf(req + k, sizeof req - (size_t)k, "0\r\n\r\n");
    jv_http_resp r;
    assert_int_equal(jv_http_raw(L.node.url, req, (size_t)k, 5000, &r), 0);
    API_CHECK_ERROR(&r, 413, "payload_too_large");
    jv_http_resp_fini(&r);
    char *after = api_export(&L, &l1);
    assert_int_equal(l0, l1);
    assert_memory_equal(before, after, l0);
    free(before);
    free(after);
    assert_int_equal(api_stop(&L), 0);
    api_cleanup(&L);
}

static double rate_limited_total(api_node *a)
{
    jv_http_resp r;
    API_REQ(a, &r, "GET", "/metrics", NULL, NULL);
    assert_int_equal(r.status, 200);
    double v = api_metric(r.body, "jarvis_rate_limited_total");
    jv_http_resp_fini(&r);
    return v;
}

static long retry_after(const jv_http_resp *r)
{
    char ra[32], *end;
    if (!jv_http_resp_header(r, "Retry-After", ra, sizeof ra))
        fail_msg("429 without Retry-After");
    long v = strtol(ra, &end, 10);
    assert_true(*end == '\0' && end != ra);
    return v;
}

static void test_rate_limited(void **state)
{
    (void)state;
    api_node Q;
    char *extra[] = {(char *)"--rate-limit", (char *)"1",
                     (char *)"--rate-burst", (char *)"3", NULL};
    char w[160], rd[160];
    api_start(&Q, extra);
    /* The admin key spent one token on its session, two on these. */
    api_key(&Q, "rl-writer", "writer", w, NULL);
    api_key(&Q, "rl-reader", "reader", rd, NULL);
    double limited0 = rate_limited_total(&Q);

    /* A burst of 3, then 429 with Retry-After, nothing applied. */
    for (int i = 1; i <= 3; i++) {
        json_t *j =
            API_OK(&Q, 200, "POST", "/v1/counters/rl/increment", w, NULL);
        assert_int_equal(API_INT(j, "total"), i);
        json_decref(j);
    }
    jv_http_resp r;
    API_REQ(&Q, &r, "POST", "/v1/counters/rl/increment", w, NULL);
    API_CHECK_ERROR(&r, 429, "rate_limited");
    long ra = retry_after(&r);
    assert_true(ra >= 1 && ra <= 2);
    jv_http_resp_fini(&r);
    /* The key's sessions share its bucket: refused too, and with a
     * well-formed body. */
    API_REQ(&Q, &r, "POST", "/v1/sessions", NULL,
            api_fmt("{\"api_key\":\"%s\"}", w));
    API_CHECK_ERROR(&r, 429, "rate_limited");
    ra = retry_after(&r);
    assert_true(ra >= 1 && ra <= 2);
    jv_http_resp_fini(&r);
    /* Other keys have their own buckets. */
    json_t *j = API_OK(&Q, 200, "GET", "/v1/counters/rl", rd, NULL);
    assert_int_equal(API_INT(j, "total"), 3);
    json_decref(j);
    assert_true(rate_limited_total(&Q) == limited0 + 2);

    /* After Retry-After, the key works again. */
    api_sleep_ms(ra * 1000 + 50);
    j = API_OK(&Q, 200, "POST", "/v1/counters/rl/increment", w, NULL);
    assert_int_equal(API_INT(j, "total"), 4);
    json_decref(j);
    j = API_OK(&Q, 200, "GET", "/v1/counters/rl", rd, NULL);
    assert_int_equal(API_INT(j, "total"), 4);
    json_decref(j);
    assert_int_equal(api_stop(&Q), 0);
    api_cleanup(&Q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_invalid_json),
        cmocka_unit_test(test_invalid_field),
        cmocka_unit_test(test_bad_request),
        cmocka_unit_test(test_malformed_http),
        cmocka_unit_test(test_request_timeout),
        cmocka_unit_test(test_unauthorized),
        cmocka_unit_test(test_forbidden),
        cmocka_unit_test(test_not_found),
        cmocka_unit_test(test_method_not_allowed),
        cmocka_unit_test(test_payload_too_large),
        cmocka_unit_test(test_rate_limited),
    };
    if (jv_http_global_init() != 0)
        return 1;
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    jv_http_global_fini();
    return rc;
}
