/*
 * http_client.h - a small blocking HTTP/1.1 client for integration tests.
 *
 * jv_http_do() goes through libcurl, with one kept-alive connection per
 * client: method, path, an optional bearer credential and an optional body
 * (sent as application/json). The answer keeps the status, the body (and
 * its JSON when it parses), and the raw header block, from which
 * jv_http_resp_header() picks single headers (Allow, Retry-After...).
 *
 * jv_http_raw() sends bytes exactly as given on a fresh TCP connection and
 * reads one answer: for requests libcurl would refuse to send (malformed
 * request lines, blanks in header names, oversized headers).
 *
 * Threads: one jv_http_client per thread. jv_http_global_init() must run
 * once, from the main thread, before any client is made (libcurl's global
 * initialisation is not thread-safe).
 */
#ifndef JV_HTTP_CLIENT_H
#define JV_HTTP_CLIENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* One answer. Every field is set by a call (status 0 and error when no
 * answer came); release it with jv_http_resp_fini(). */
typedef struct {
    long status;     /* HTTP status, 0 when there was no answer */
    char *body;      /* NUL-terminated, never NULL after a call */
    size_t body_len; /* bytes of body, without the NUL */
    char *headers;   /* the final answer's header lines, NUL-terminated */
    json_t *json;    /* the body as JSON when it parses, else NULL */
    int transport;   /* libcurl's CURLcode (0: an answer came) */
    bool not_sent;   /* the request certainly did not reach the server:
                        no connection, and no byte of it written on a
                        connection that died (libcurl then retries) */
    char error[256]; /* why there was no answer; "" when there was */
} jv_http_resp;

typedef struct {
    void *curl;     /* CURL *, kept for its connection cache */
    char base[256]; /* "http://127.0.0.1:PORT", no trailing slash */
    long timeout_ms;
} jv_http_client;

/* curl_global_init(); once, before any thread. 0 or -1. */
int jv_http_global_init(void);
void jv_http_global_fini(void);

/* base_url as api.addr gives it ("http://127.0.0.1:PORT"). The timeout of
 * each request defaults to 10 s. 0 or -1. */
int jv_http_client_init(jv_http_client *c, const char *base_url);
void jv_http_client_fini(jv_http_client *c); /* accepts a zeroed client */

/* Sends `method path` (path starts with '/' and may carry a query) with
 * "Authorization: Bearer <bearer>" when bearer is not NULL, and the body
 * when body is not NULL (len bytes; Content-Type: application/json).
 * Blocks until the answer or the timeout. Returns 0 when an answer came,
 * -1 otherwise (r->error says why); r is filled in both cases. */
int jv_http_do(jv_http_client *c, const char *method, const char *path,
               const char *bearer, const char *body, size_t len,
               jv_http_resp *r);

/* jv_http_do with a JSON body (borrowed; NULL: none), compact encoding. */
int jv_http_json(jv_http_client *c, const char *method, const char *path,
                 const char *bearer, const json_t *body, jv_http_resp *r);

/* Sends the bytes on a new connection to base_url's host and port, reads
 * one answer (to its Content-Length, or until the server closes), and
 * fills r as jv_http_do does. 0, or -1 when nothing parseable came. */
int jv_http_raw(const char *base_url, const void *req, size_t len,
                int timeout_ms, jv_http_resp *r);

/* The value of the first header called name (case-insensitive), without
 * surrounding blanks, copied into out; NULL when absent or too long. */
const char *jv_http_resp_header(const jv_http_resp *r, const char *name,
                                char *out, size_t outlen);

void jv_http_resp_fini(jv_http_resp *r); /* accepts a zeroed answer */

/* Percent-encodes s[0..n) for a path or query: everything but unreserved
 * characters (A-Z a-z 0-9 - . _ ~), and '/' too unless keep_slash.
 * Returns a malloc'd string, or NULL when out of memory. */
char *jv_http_escape(const char *s, size_t n, bool keep_slash);

#endif
