/*
 * apitest.h - what the session API tests share (tests/node/api_*_test.c).
 *
 * An api_node is a real jarvisd (tests/support/proc.h) on its own
 * temporary data dir, port 0 and no peer listener, with an HTTP client
 * and a session token of its first admin key. Requests go through
 * API_OK / API_ERR, which fail the test (with the request and the answer
 * printed) unless the answer has the expected status and, for errors,
 * exactly the documented body {"error":{"code":…,"message":…}}.
 *
 * docs/api.md is the specification these helpers check against; nothing
 * here knows the implementation beyond the wire.
 *
 * Single-threaded use (cmocka's assertions jump out of the test), except
 * jv_http_* calls on a client of one's own.
 */
#ifndef JV_APITEST_H
#define JV_APITEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http_client.h"
#include "proc.h"

typedef struct {
    jv_test_node node;
    jv_http_client http;
    char node_id[80];      /* the node's replica id (64 hex digits) */
    char admin_token[160]; /* a session token of the first admin key */
} api_node;

/* Starts jarvisd with --listen off --name apitest and the extra arguments
 * (NULL-terminated, may be NULL) and opens an admin session. Fails the
 * test on error. */
void api_start(api_node *a, char *const extra[]);
/* Prepares the data dir without starting (set a->node.fsize_limit, then
 * api_restart()). */
void api_prepare(api_node *a);
/* Starts jarvisd again on the same data dir (after api_stop or
 * api_prepare); the port changes, the admin token is kept when it is
 * still valid (else a new session is opened). */
void api_restart(api_node *a, char *const extra[]);
/* SIGTERM; returns jarvisd's exit status (0 when it stopped cleanly). */
int api_stop(api_node *a);
/* Stops if running and removes the temporary directory (at the latest
 * when the program exits, if a failure skipped this). */
void api_cleanup(api_node *a);

/* A temporary directory (jv_test_tmpdir), removed at exit if the test
 * does not remove it first. Fails the test on error. */
void api_tmpdir(const char *prefix, char *out, size_t outlen);

/* One request; fails the test when no answer came. body is JSON text or
 * NULL. r must be released with jv_http_resp_fini(). */
void api_req_at(const char *file, int line, api_node *a, jv_http_resp *r,
                const char *method, const char *path, const char *cred,
                const char *body);
#define API_REQ(a, r, method, path, cred, body) \
    api_req_at(__FILE__, __LINE__, (a), (r), (method), (path), (cred), (body))

/* Expects `status` (2xx), Content-Type application/json unless 204;
 * returns the parsed body (the caller's reference; NULL for 204). */
json_t *api_ok_at(const char *file, int line, api_node *a, int status,
                  const char *method, const char *path, const char *cred,
                  const char *body);
#define API_OK(a, status, method, path, cred, body)                        \
    api_ok_at(__FILE__, __LINE__, (a), (status), (method), (path), (cred), \
              (body))

/* Expects the error answer `status` with `code` (see api_check_error);
 * with `unchanged`, also that the export is byte-identical before and
 * after (nothing was applied). */
void api_err_at(const char *file, int line, api_node *a, bool unchanged,
                int status, const char *code, const char *method,
                const char *path, const char *cred, const char *body);
#define API_ERR(a, status, code, method, path, cred, body)                \
    api_err_at(__FILE__, __LINE__, (a), true, (status), (code), (method), \
               (path), (cred), (body))
/* The same without the export comparison (for a node that cannot export,
 * or when the error itself must not be preceded by another request). */
#define API_ERR_ONLY(a, status, code, method, path, cred, body)            \
    api_err_at(__FILE__, __LINE__, (a), false, (status), (code), (method), \
               (path), (cred), (body))

/* Checks an error answer: the status, Content-Type application/json, and
 * a body that is exactly {"error":{"code":code,"message":<non-empty>}}. */
void api_check_error_at(const char *file, int line, const jv_http_resp *r,
                        int status, const char *code);
#define API_CHECK_ERROR(r, status, code) \
    api_check_error_at(__FILE__, __LINE__, (r), (status), (code))

/* Decodes a chunked body (RFC 9112 7.1) in place: its length decoded, or
 * SIZE_MAX when it is malformed or incomplete. */
size_t api_dechunk(char *body, size_t len);

/* GET /v1/export with the admin token: the bytes (malloc'd). */
char *api_export(api_node *a, size_t *len);

/* A new API key of that role: its key text and id (caller's buffers of
 * at least 160 and 32 bytes; id may be NULL). */
void api_key(api_node *a, const char *name, const char *role, char *key,
             char *id);
/* A new session for an API key (ttl 0: the default): its token and id. */
void api_session(api_node *a, const char *key, int ttl, char *token, char *id);

/* printf into one of a few rotating static buffers (4 KiB): for short
 * paths and bodies built inline. */
const char *api_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Percent-encodes s (every byte but unreserved ones; '/' kept when
 * keep_slash) into one of the rotating buffers of api_fmt. */
const char *api_esc(const char *s, bool keep_slash);

/* The string member (or "" when absent or not a string). */
const char *api_str(const json_t *obj, const char *key);
/* The integer member; fails the test when absent or not an integer. */
json_int_t api_int_at(const char *file, int line, const json_t *obj,
                      const char *key);
#define API_INT(obj, key) api_int_at(__FILE__, __LINE__, (obj), (key))
/* Fails unless obj is an object with exactly these members (a
 * NULL-terminated list of names). */
void api_fields_at(const char *file, int line, const json_t *obj, ...);
#define API_FIELDS(obj, ...) \
    api_fields_at(__FILE__, __LINE__, (obj), __VA_ARGS__, (const char *)NULL)

/* Parses "YYYY-MM-DDTHH:MM:SS.mmmZ" exactly (the API's time format);
 * false when s is anything else. */
bool api_parse_time(const char *s, uint64_t *ms);
/* Formats ms as the API does. out: at least 32 bytes. */
void api_format_time(uint64_t ms, char *out);
/* Wall-clock milliseconds since the epoch. */
uint64_t api_now_ms(void);
void api_sleep_ms(long ms);

/* One value of the Prometheus text: the sample whose name and labels are
 * exactly `series` ("jarvis_sessions", "name{a=\"b\"}"); 0 when absent
 * (a counter not yet touched), -1 when the text is not parseable there. */
double api_metric(const char *text, const char *series);

#endif
