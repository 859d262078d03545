/*
 * ui.h - the web dashboard's static files (docs/dashboard.md).
 *
 * The files of node/ui/ are compiled into the binary at build time
 * (cmake/JvEmbed.cmake writes them into a generated C source): the node
 * serves them at "/" (index.html) and under "/ui/<name>", and reads
 * nothing from disk or the network for them. The dashboard itself talks
 * to the session API like any other client.
 *
 * Every answer, 404 and 405 included, carries the security headers
 * (a strict Content-Security-Policy, nosniff, no referrer, no framing).
 * A name is looked up exactly in the table: there is no file system
 * behind it, so "..", "%2e%2e" or "//" can only miss (404).
 *
 * Loop thread only.
 */
#ifndef JV_UI_H
#define JV_UI_H

#include <stdbool.h>
#include <stddef.h>

#include "http.h"

/* One embedded file (the generated table). */
typedef struct {
    const char *name; /* "app.js": no folder */
    const unsigned char *data;
    size_t len;
    const char *etag; /* quoted, as sent */
} jv_ui_file;

extern const jv_ui_file jv_ui_files[];
extern const size_t jv_ui_nfiles;

/* The headers every dashboard answer carries, each line ending in
 * "\r\n". */
extern const char jv_ui_security_headers[];

/* True when the path (still percent-encoded) is the dashboard's: "/",
 * "/ui" or anything under "/ui/". */
bool jv_ui_owns(jv_str path);

/* Answers a request jv_ui_owns() claimed: 200 (or 304 on a matching
 * If-None-Match) for GET and HEAD of a known file, 404 for any other
 * name, 405 for other methods. Frees the request. */
void jv_ui_serve(jv_http_req *req);

/* The embedded file of that name, or NULL. */
const jv_ui_file *jv_ui_find(const char *name, size_t len);

#endif
