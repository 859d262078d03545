/*
 * client.h - talking to a node's session API (libcurl + jansson): which
 * node, which credential, one request, and what a failure means for the
 * exit code.
 *
 * Node: --node URL, else $JARVIS_NODE, else the address in
 * <data-dir>/api.addr (the running node writes it), else
 * http://127.0.0.1:7410. "HOST:PORT", "http(s)://..." and
 * "unix:/path/api.sock" are accepted.
 *
 * Credential, sent as "Authorization: Bearer <key>": --api-key (with a
 * warning: it shows in process listings), else $JARVIS_API_KEY, else the
 * file --key-file, else <data-dir>/admin.key. The data dir is --data-dir,
 * else $JARVIS_DATA_DIR, else jv_datadir_default(). The credential is
 * wiped from memory when the client is freed. A key from
 * <data-dir>/admin.key goes only to the node running on that data dir (it
 * holds the lock), at the address in its api.addr: otherwise
 * JVC_EXIT_UNREACHABLE ("node not running (DIR)"), or JVC_EXIT_USAGE when
 * --node or $JARVIS_NODE names another address.
 *
 * Every function prints its own failures on stderr ("jarvisctl: ...", what
 * went wrong and what to do) and returns an exit code from cli.h.
 */
#ifndef JVC_CLIENT_H
#define JVC_CLIENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli.h"
#include "types.h"

/* The data directory the flags select (see above). false, with a message
 * printed, if there is none. */
bool jvc_data_dir(const jvc_globals *g, char *out, size_t outlen);

/* A client for `node` (NULL: resolve as above) with the credential the
 * flags select. */
int jvc_client_new(const jvc_globals *g, const char *node, jvc_client **out);
/* Accepts NULL. */
void jvc_client_free(jvc_client *c);
/* The node's URL as shown to the user. */
const char *jvc_client_url(const jvc_client *c);

typedef struct {
    long status;      /* HTTP status */
    char *body;       /* raw body, NUL-terminated (jv_malloc'd) */
    size_t len;       /* body length without the NUL */
    json_t *json;     /* the body parsed, NULL if empty or not JSON */
    long retry_after; /* Retry-After in seconds, -1 if absent */
} jvc_resp;

/* Releases r's body and JSON and zeroes it; accepts a zeroed r. */
void jvc_resp_fini(jvc_resp *r);

/* Sends one request: path is "/v1/..." with its query, already encoded;
 * body (may be NULL) is sent as JSON. JVC_EXIT_OK once any HTTP answer
 * arrived (read r->status); JVC_EXIT_UNREACHABLE when the node could not
 * be reached or did not answer in time. r must be zeroed or finished. */
int jvc_http(jvc_client *c, const char *method, const char *path,
             const json_t *body, jvc_resp *r);

/* A transfer's progress (curl's xferinfo callback), for long uploads. */
typedef struct {
    void (*fn)(void *arg, uint64_t sent, uint64_t total); /* bytes up */
    void *arg;
} jvc_progress;

/* jvc_http() with a binary body (application/octet-stream); progress may
 * be NULL. The answer's body may be binary too (r->body, r->len). */
int jvc_http_bytes(jvc_client *c, const char *method, const char *path,
                   const void *data, size_t len, const jvc_progress *progress,
                   jvc_resp *r);

/* A streamed GET (Server-Sent Events, GET /v1/watch): while the answer is
 * 200 its body goes to sink(arg, bytes, n) as it arrives (sink returns
 * false to end the transfer: then JVC_EXIT_OK); any other answer is kept
 * in r as jvc_http() keeps it. No overall timeout: the transfer ends when
 * the node closes it, when nothing arrived for idle_s seconds, or when
 * stop(arg) (polled about once a second) says so. last_event_id (may be
 * NULL) is sent as Last-Event-ID. JVC_EXIT_UNREACHABLE when the node
 * could not be reached, or the stream broke or stalled. */
typedef struct {
    bool (*sink)(void *arg, const char *p, size_t n);
    bool (*stop)(void *arg);
    void *arg;
    long idle_s;
    const char *last_event_id;
} jvc_stream_opts;
int jvc_http_stream(jvc_client *c, const char *path, const jvc_stream_opts *o,
                    jvc_resp *r);
/* With quiet, an unreachable node is no message: jvc_http() returns
 * JVC_EXIT_UNREACHABLE and jvc_client_error() says why (for a caller that
 * retries, such as audit tail --follow). */
void jvc_client_quiet(jvc_client *c, bool quiet);
const char *jvc_client_error(const jvc_client *c);

/* jvc_http(), then: a 2xx answer is JVC_EXIT_OK (with a JSON body unless
 * 204); any other one is reported by jvc_fail(). `what` names the
 * operation for messages ("counters get requests"). */
int jvc_call(jvc_client *c, const char *what, const char *method,
             const char *path, const json_t *body, jvc_resp *r);

/* Reports a non-2xx answer: the node's error message, the status and a
 * hint. Returns JVC_EXIT_AUTH for 401 and 403, JVC_EXIT_FAIL otherwise. */
int jvc_fail(const jvc_client *c, const char *what, const jvc_resp *r);

/* GETs every page of a list route: path (with or without a query) gets
 * limit and cursor added; the arrays under `field` are concatenated into
 * *out (a new reference). At most `max` items (0: all). */
int jvc_get_all(jvc_client *c, const char *what, const char *path,
                const char *field, size_t max, json_t **out);

/* The `ls [--prefix PREFIX]` commands: parses that option, GETs every page
 * of route (e.g. "/v1/config") and, with --json, prints {field: [...]}
 * itself. Otherwise *list receives the items (a new reference) for the
 * command's table and *prefix the option (NULL when absent). Returns an
 * exit code; *list is NULL when there is nothing left to print. */
int jvc_list_prefixed(jvc_ctx *ctx, int argc, char **argv, const char *route,
                      const char *field, json_t **list, const char **prefix);

/* A command without arguments that shows one GET: parses (no arguments),
 * makes the client, calls path, and with --json prints the body itself
 * (*printed true). Otherwise r holds the answer for the command to show.
 * Returns an exit code; release r with jvc_resp_fini() either way. */
int jvc_show(jvc_ctx *ctx, int argc, char **argv, const char *path, jvc_resp *r,
             bool *printed);

/* DELETE route/ID for the command's single ID argument (a revoke): prints
 * {"id": ID, "revoked": true} with --json, else "revoked NOUN ID" and the
 * suffix. Returns an exit code. */
int jvc_revoke_by_id(jvc_ctx *ctx, int argc, char **argv, const char *route,
                     const char *noun, const char *suffix);
/* The same for an ID already parsed, with query (or NULL) appended to the
 * path ("?scope=cluster"). */
int jvc_revoke(jvc_ctx *ctx, const char *route, const char *id_arg,
               const char *query, const char *noun, const char *suffix);

/* Percent-encodes s for a path segment ("/" kept when keep_slash, so that
 * config keys read naturally in paths). jv_malloc'd; NULL on ENOMEM. */
char *jvc_escape(const char *s, bool keep_slash);

/* Appends "?name=value" (or "&..." after the first) to b, value
 * percent-encoded. Errors are sticky in b (jv_buf_err). */
void jvc_query_add(jv_buf *b, const char *name, const char *value);

#endif
