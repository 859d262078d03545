/*
 * ui.c - serves the dashboard's embedded files (ui.h).
 *
 * Caching: file names carry no content hash, so every answer says
 * "no-cache" (the browser keeps the file but asks again) with a strong
 * ETag from the file's SHA-256; a matching If-None-Match gets 304
 * without a body. A new build changes the tags, so no browser keeps an
 * old file past a reload.
 */
#include "ui.h"

#include <stdio.h>
#include <string.h>

/* No inline script or style anywhere (the files have none), no other
 * origin, no framing, no plugins, forms post only here. */
const char jv_ui_security_headers[] =
    "Content-Security-Policy: default-src 'self'; script-src 'self'; "
    "style-src 'self'; img-src 'self'; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'\r\n"
    "X-Content-Type-Options: nosniff\r\n"
    "X-Frame-Options: DENY\r\n"
    "Referrer-Policy: no-referrer\r\n"
    "Cross-Origin-Opener-Policy: same-origin\r\n"
    "Cross-Origin-Resource-Policy: same-origin\r\n"
    "Permissions-Policy: camera=(), microphone=(), geolocation=(), "
    "payment=(), usb=()\r\n";

static const struct {
    const char *ext;
    const char *type;
} types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".svg", "image/svg+xml"},
    {".json", "application/json"},
    {".png", "image/png"},
    {".txt", "text/plain; charset=utf-8"},
};

static const char *type_of(const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        size_t e = strlen(types[i].ext);
        if (n > e && strcmp(name + n - e, types[i].ext) == 0)
            return types[i].type;
    }
    /* nosniff keeps a browser from guessing anything else. */
    return "application/octet-stream";
}

bool jv_ui_owns(jv_str path)
{
    if (path.n == 1 && path.p[0] == '/')
        return true;
    return path.n >= 3 && memcmp(path.p, "/ui", 3) == 0 &&
           (path.n == 3 || path.p[3] == '/');
}

const jv_ui_file *jv_ui_find(const char *name, size_t len)
{
    for (size_t i = 0; i < jv_ui_nfiles; i++)
        if (strlen(jv_ui_files[i].name) == len &&
            memcmp(jv_ui_files[i].name, name, len) == 0)
            return &jv_ui_files[i];
    return NULL;
}

static void error(jv_http_req *req, int status, const char *extra,
                  const char *code, const char *message)
{
    char headers[1024], body[256];
    snprintf(headers, sizeof(headers), "%sCache-Control: no-store\r\n%s",
             extra ? extra : "", jv_ui_security_headers);
    int n = snprintf(body, sizeof(body),
                     "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", code,
                     message);
    jv_http_respond(req, status, "application/json", headers, body, (size_t)n);
}

/* If-None-Match holds the tag (alone, in a list, or "*"). */
static bool etag_matches(jv_str inm, const char *etag)
{
    size_t el = strlen(etag);
    if (inm.n == 1 && inm.p[0] == '*')
        return true;
    for (size_t i = 0; i + el <= inm.n; i++)
        if (memcmp(inm.p + i, etag, el) == 0)
            return true;
    return false;
}

void jv_ui_serve(jv_http_req *req)
{
    const char *method = jv_http_method(req);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        error(req, 405, "Allow: GET, HEAD\r\n", "method_not_allowed",
              "the dashboard's files are read-only");
        return;
    }
    jv_str path = jv_http_path(req);
    const jv_ui_file *f = NULL;
    /* "/", "/ui" and "/ui/" are the page itself. */
    if (path.n <= 4)
        f = jv_ui_find("index.html", 10);
    else
        f = jv_ui_find(path.p + 4, path.n - 4);
    if (!f) {
        error(req, 404, NULL, "not_found", "no such file");
        return;
    }
    char headers[1024];
    snprintf(headers, sizeof(headers),
             "ETag: %s\r\nCache-Control: no-cache\r\n%s", f->etag,
             jv_ui_security_headers);
    if (etag_matches(jv_http_header(req, "If-None-Match"), f->etag)) {
        jv_http_respond(req, 304, NULL, headers, NULL, 0);
        return;
    }
    jv_http_respond(req, 200, type_of(f->name), headers, f->data, f->len);
}
