/*
 * ui_test.c - the dashboard's static files as a real jarvisd serves them
 * (docs/dashboard.md): every file of node/ui/ byte for byte with its
 * Content-Type, the security headers on every answer (404 and 405
 * included), ETag and 304, HEAD, and nothing but the embedded files
 * whatever the path tries (.., percent-encoded dots, doubled slashes, NUL).
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

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* The headers docs/dashboard.md promises on every dashboard answer. */
static void check_security_headers(const jv_http_resp *r, const char *what)
{
    char v[512];
    const char *csp =
        jv_http_resp_header(r, "Content-Security-Policy", v, sizeof v);
    if (!csp || !strstr(csp, "default-src 'self'") ||
        !strstr(csp, "script-src 'self'") || !strstr(csp, "style-src 'self'") ||
        !strstr(csp, "frame-ancestors 'none'") ||
        !strstr(csp, "object-src 'none'") || strstr(csp, "unsafe"))
        fail_msg("%s: CSP is %s", what, csp ? csp : "(none)");
    const char *nosniff =
        jv_http_resp_header(r, "X-Content-Type-Options", v, sizeof v);
    if (!nosniff || strcmp(nosniff, "nosniff") != 0)
        fail_msg("%s: no nosniff", what);
    const char *rp = jv_http_resp_header(r, "Referrer-Policy", v, sizeof v);
    if (!rp || strcmp(rp, "no-referrer") != 0)
        fail_msg("%s: Referrer-Policy %s", what, rp ? rp : "(none)");
    const char *xfo = jv_http_resp_header(r, "X-Frame-Options", v, sizeof v);
    if (!xfo || strcmp(xfo, "DENY") != 0)
        fail_msg("%s: X-Frame-Options %s", what, xfo ? xfo : "(none)");
}

static void check_file(const char *path, const char *file, const char *type)
{
    char src[1024], v[256];
    snprintf(src, sizeof src, "%s/node/ui/%s", getenv("JV_SOURCE_DIR"), file);
    size_t len;
    char *want = read_file(src, &len);
    jv_http_resp r = {0};
    API_REQ(&N, &r, "GET", path, NULL, NULL);
    if (r.status != 200)
        fail_msg("GET %s: %ld", path, r.status);
    const char *ct = jv_http_resp_header(&r, "Content-Type", v, sizeof v);
    if (!ct || strcmp(ct, type) != 0)
        fail_msg("GET %s: Content-Type %s, want %s", path, ct ? ct : "-", type);
    if (r.body_len != len || memcmp(r.body, want, len) != 0)
        fail_msg("GET %s: not the bytes of node/ui/%s", path, file);
    check_security_headers(&r, path);
    const char *cc = jv_http_resp_header(&r, "Cache-Control", v, sizeof v);
    assert_non_null(cc);
    assert_string_equal(cc, "no-cache");
    assert_non_null(jv_http_resp_header(&r, "ETag", v, sizeof v));
    assert_true(v[0] == '"' && strlen(v) > 2 && v[strlen(v) - 1] == '"');
    jv_http_resp_fini(&r);
    free(want);
}

static void setup_node(void)
{
    if (!N.node.running)
        api_start(&N, NULL);
}

static void test_files_and_types(void **state)
{
    (void)state;
    setup_node();
    check_file("/", "index.html", "text/html; charset=utf-8");
    check_file("/ui", "index.html", "text/html; charset=utf-8");
    check_file("/ui/", "index.html", "text/html; charset=utf-8");
    check_file("/ui/index.html", "index.html", "text/html; charset=utf-8");
    check_file("/?x=1", "index.html", "text/html; charset=utf-8");
    check_file("/ui/app.js", "app.js", "text/javascript; charset=utf-8");
    check_file("/ui/app.css", "app.css", "text/css; charset=utf-8");
    check_file("/ui/favicon.svg", "favicon.svg", "image/svg+xml");
}

/* The page must work under its own CSP: no inline script or style, no
 * handler attributes, nothing from another origin. */
static void test_no_inline_code(void **state)
{
    (void)state;
    setup_node();
    jv_http_resp r = {0};
    API_REQ(&N, &r, "GET", "/", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_null(strstr(r.body, "<style"));
    assert_null(strstr(r.body, " style="));
    assert_null(strstr(r.body, " onclick"));
    assert_null(strstr(r.body, " onload"));
    assert_null(strstr(r.body, "http://"));
    assert_null(strstr(r.body, "https://"));
    /* Every script has a src of this origin. */
    for (const char *p = r.body; (p = strstr(p, "<script")); p++)
        assert_true(strncmp(p, "<script src=\"/ui/", 17) == 0);
    jv_http_resp_fini(&r);
    /* And the script never parses data as HTML. */
    API_REQ(&N, &r, "GET", "/ui/app.js", NULL, NULL);
    assert_null(strstr(r.body, "innerHTML"));
    assert_null(strstr(r.body, "outerHTML"));
    assert_null(strstr(r.body, "insertAdjacentHTML"));
    assert_null(strstr(r.body, "document.write"));
    assert_null(strstr(r.body, "eval("));
    jv_http_resp_fini(&r);
}

static void raw(const char *req, jv_http_resp *r)
{
    memset(r, 0, sizeof *r);
    if (jv_http_raw(N.node.url, req, strlen(req), 10000, r) != 0)
        fail_msg("no answer to %s", req);
}

static void test_etag_and_head(void **state)
{
    (void)state;
    setup_node();
    char etag[128], len[32], req[512];
    jv_http_resp r = {0};
    API_REQ(&N, &r, "GET", "/ui/app.js", NULL, NULL);
    assert_non_null(jv_http_resp_header(&r, "ETag", etag, sizeof etag));
    size_t full = r.body_len;
    jv_http_resp_fini(&r);

    snprintf(req, sizeof req,
             "GET /ui/app.js HTTP/1.1\r\nHost: x\r\nIf-None-Match: %s\r\n"
             "Connection: close\r\n\r\n",
             etag);
    raw(req, &r);
    assert_int_equal(r.status, 304);
    assert_int_equal(r.body_len, 0);
    check_security_headers(&r, "304");
    jv_http_resp_fini(&r);

    /* Another tag: the file again. */
    raw("GET /ui/app.js HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"0\"\r\n"
        "Connection: close\r\n\r\n",
        &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, full);
    jv_http_resp_fini(&r);

    /* The tags differ from file to file. */
    char other[128];
    API_REQ(&N, &r, "GET", "/ui/app.css", NULL, NULL);
    assert_non_null(jv_http_resp_header(&r, "ETag", other, sizeof other));
    assert_string_not_equal(etag, other);
    jv_http_resp_fini(&r);

    raw("HEAD /ui/app.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 0);
    assert_non_null(jv_http_resp_header(&r, "Content-Length", len, sizeof len));
    assert_int_equal(strtoull(len, NULL, 10), full);
    jv_http_resp_fini(&r);
}

static void test_not_found_and_traversal(void **state)
{
    (void)state;
    setup_node();
    static const char *const paths[] = {
        "/ui/nope.js",
        "/ui/../v1/status",
        "/ui/../../../../etc/passwd",
        "/ui/%2e%2e/%2e%2e/etc/passwd",
        "/ui/..%2f..%2fetc%2fpasswd",
        "/ui/%2e%2e%2fv1%2fstatus",
        "/ui//app.js",
        "/ui/./app.js",
        "/ui/app.js/",
        "/ui/app.js%00",
        "/ui/app.js%00.css",
        "/ui/APP.JS",
        "/ui/app%2ejs",
        "/ui/.",
        "/ui/..",
        "/ui/ui/app.js",
        "/ui/node/ui/app.js",
        "/ui/\\..\\app.js",
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        char req[512];
        jv_http_resp r;
        snprintf(req, sizeof req,
                 "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                 paths[i]);
        raw(req, &r);
        /* A path http-parser refuses is 400; anything it takes is looked
         * up exactly and missed. */
        if (r.status != 404 && r.status != 400)
            fail_msg("GET %s: %ld %s", paths[i], r.status, r.body);
        if (r.status == 404) {
            API_CHECK_ERROR(&r, 404, "not_found");
            check_security_headers(&r, paths[i]);
        }
        assert_null(strstr(r.body, "node_id"));
        assert_null(strstr(r.body, "root:"));
        jv_http_resp_fini(&r);
    }
}

static void test_methods_and_neighbours(void **state)
{
    (void)state;
    setup_node();
    jv_http_resp r = {0};
    static const char *const methods[] = {"POST", "PUT", "DELETE"};
    for (size_t i = 0; i < 3; i++) {
        API_REQ(&N, &r, methods[i], "/ui/app.js", NULL, "{}");
        API_CHECK_ERROR(&r, 405, "method_not_allowed");
        char allow[64];
        assert_non_null(jv_http_resp_header(&r, "Allow", allow, sizeof allow));
        assert_string_equal(allow, "GET, HEAD");
        check_security_headers(&r, "405");
        jv_http_resp_fini(&r);
    }
    /* "/uix" is no dashboard path: the API's own 404. */
    API_REQ(&N, &r, "GET", "/uix", NULL, NULL);
    API_CHECK_ERROR(&r, 404, "not_found");
    char v[256];
    assert_null(
        jv_http_resp_header(&r, "Content-Security-Policy", v, sizeof v));
    jv_http_resp_fini(&r);
    /* The API is untouched: credentials still needed. */
    API_REQ(&N, &r, "GET", "/v1/status", NULL, NULL);
    API_CHECK_ERROR(&r, 401, "unauthorized");
    jv_http_resp_fini(&r);
    API_REQ(&N, &r, "GET", "/health", NULL, NULL);
    assert_int_equal(r.status, 200);
    jv_http_resp_fini(&r);
    api_cleanup(&N);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_files_and_types),
        cmocka_unit_test(test_no_inline_code),
        cmocka_unit_test(test_etag_and_head),
        cmocka_unit_test(test_not_found_and_traversal),
        cmocka_unit_test(test_methods_and_neighbours),
    };
    if (jv_http_global_init() != 0)
        return 1;
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    jv_http_global_fini();
    return rc;
}
