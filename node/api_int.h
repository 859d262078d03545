/*
 * api_int.h - what the API's handler files share (private to node/).
 */
#ifndef JV_API_INT_H
#define JV_API_INT_H

#include <jansson.h>

#include "api.h"
#include "query.h"
#include "rcache.h"
#include "readers.h"

typedef struct api_ctx api_ctx;
typedef void (*api_fn)(api_ctx *c);
/* A read on a reader thread (readers.h): st is that thread's connection;
 * it may read c's request and fill what c->extra holds, nothing else. */
typedef jv_err (*api_read_fn)(jv_store *st, api_ctx *c);
/* Back on the loop: err from api_read_fn, msg the storage's message. */
typedef void (*api_read_done)(api_ctx *c, jv_err err, const char *msg);

typedef struct {
    const char *method;
    const char *pattern; /* "{}" one segment, "{*}" the rest; metrics label */
    jv_role role;        /* JV_ROLE_NONE: no credentials needed */
    api_fn fn;
} api_route;

#define API_MAX_CAPS 2

/* One request from match to answer. Freed by the answer. */
struct api_ctx {
    jv_node *node;
    jv_http_req *req;
    const api_route *route;
    jv_principal who;
    bool authed;
    jv_buf cap[API_MAX_CAPS]; /* decoded path captures, NUL-terminated */
    json_t *body;             /* parsed body (an object) or NULL */

    /* For writes: the request to the writer, its intents, and the texts
     * they borrow (freed with the context). */
    jv_write_req wr;
    jv_intent *intents;
    size_t nintents;
    char **owned;
    size_t nowned;
    void *extra;
    void (*extra_free)(void *);
    /* While POST /v1/batch reads its ops: 1 + the index of the op being
     * read, so that every error names it; 0 otherwise. */
    size_t op_at;
    /* A read off the loop (api_read). */
    jv_read_job job;
    api_read_fn read_fn;
    api_read_done read_done;
    jv_buf text; /* the answer's JSON text (api_render) */
    /* A single-key read whose answer may be kept (api_cached): its kind,
     * the key being the first capture, and the cache's ticket (0: not). */
    unsigned cache_kind;
    uint64_t cache_ticket;
};

/* A GET of one key (the first capture) of a kind of rcache.h (JV_RC_*):
 * answers from the read cache and returns true when it holds the answer;
 * else notes what the read's answer would be kept as (api_reply_rendered
 * keeps it) and returns false. */
bool api_cached(api_ctx *c, unsigned kind);

/* Answers with a JSON body (stolen) and frees the context. */
void api_reply(api_ctx *c, int status, json_t *body);
/* Answers with no body (204) and frees the context. */
void api_reply_empty(api_ctx *c, int status);
/* Answers with raw bytes. */
void api_reply_raw(api_ctx *c, int status, const char *type,
                   const char *headers, const void *body, size_t len);
/* Answers with a JSON body produced by pull() as the client reads it
 * (jv_http_respond_stream) and frees the context; end() frees arg. */
void api_reply_stream(api_ctx *c, int status, jv_http_pull_fn pull,
                      jv_http_end_fn end, void *arg);
/* The same with another Content-Type and extra header lines (each ending
 * in "\r\n"; may be NULL). */
void api_reply_stream_type(api_ctx *c, int status, const char *type,
                           const char *headers, jv_http_pull_fn pull,
                           jv_http_end_fn end, void *arg);
/* Hands the connection over (jv_http_detach) and frees the context. */
jv_err api_detach(api_ctx *c, int status, const char *type, const char *headers,
                  jv_buf *head, int *fd, bool *is_unix, bool *chunked);
/* Appends v (stolen) as compact JSON; a failure is left in out's error. */
void api_put_json(jv_buf *out, json_t *v);
/* Answers {"error":{"code","message"}} and frees the context. */
void api_error(api_ctx *c, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Answers 429 rate_limited with Retry-After (retry_ms rounded up to
 * seconds) and counts it in jarvis_rate_limited_total. */
void api_rate_limited(api_ctx *c, uint64_t retry_ms);
/* Answers the error a jv_err stands for (404 for JV_ENOTFOUND, 503 for
 * storage failures...). what says what was being done. */
void api_fail(api_ctx *c, jv_err err, const char *what);
/* The same with the message of the connection that failed (a reader's). */
void api_fail_msg(api_ctx *c, jv_err err, const char *what,
                  const char *store_msg);
/* Runs fn on a reader thread, then done on the loop thread; the request
 * stays unanswered meanwhile (done answers it). When the node is stopping,
 * answers 503 at once instead. */
void api_read(api_ctx *c, api_read_fn fn, api_read_done done);
/* Renders v (taken; NULL counts as out of memory) as the answer's JSON
 * text. In an api_read_fn, on the reader thread, so that the loop only
 * sends it; api_reply renders with it on the loop. */
jv_err api_render(api_ctx *c, json_t *v);
/* Back on the loop: answers what api_render rendered, or the error (what:
 * the thing read, for its message). */
void api_reply_rendered(api_ctx *c, jv_err err, const char *msg,
                        const char *what);

/* Reads a query parameter into buf (decoded, NUL-terminated): JV_OK,
 * JV_ENOTFOUND, or JV_EINVAL (after answering 400). */
jv_err api_query(api_ctx *c, const char *name, jv_buf *buf);
/* limit (default 100, at most 1000) and cursor query parameters. On
 * JV_EINVAL the request was answered. */
jv_err api_paging(api_ctx *c, size_t *limit, jv_buf *cursor);

/* A decoded buffer as a C string ("" when empty). */
static inline const char *api_cstr(const jv_buf *b)
{
    return b->len ? (const char *)b->data : "";
}

/* Body fields: 0 when fine, or the request was answered 400 (and c is
 * freed). */
int api_field_str(api_ctx *c, const char *name, bool required, size_t min,
                  size_t max, jv_str *out);
/* The same for a member of obj (an op of a batch), borrowed from the
 * body. */
int api_field_str_in(api_ctx *c, json_t *obj, const char *name, bool required,
                     size_t min, size_t max, jv_str *out);
int api_field_value(api_ctx *c, json_t *obj, const char *where, jv_str *out);

/* Keeps s (jv_malloc'd) until the context is freed. NULL on failure. */
char *api_own(api_ctx *c, char *s);
/* Allocates n intents on the context (zeroed). */
jv_intent *api_intents(api_ctx *c, size_t n);
/* Adds a config.set / key.create style audit intent for this request's
 * principal (after the intents already there). */
jv_err api_audit_intent(api_ctx *c, jv_intent *slot, const char *action,
                        const char *target, const char *detail);
/* Stamps from the node's clock. */
uint64_t api_stamp(api_ctx *c);

/* Submits c->wr (group over c->intents) to the writer; done runs on the
 * loop after the commit. */
void api_submit(api_ctx *c, jv_write_cb done);
/* Answers the error of a failed commit (c->wr.err) with the writer's
 * storage message. */
void api_fail_commit(api_ctx *c);
/* Common completion check: answers and returns false when the commit or
 * the group failed. */
bool api_write_ok(api_ctx *c);

/* Text and id helpers for responses. */
json_t *api_time(uint64_t ms);
json_t *api_id(const jv_id *id);
json_t *api_jstr(jv_str s);
/* The JSON value stored as text; a JSON string if it does not parse. */
json_t *api_value(jv_str text);

/* Handlers. */
void api_health_live(api_ctx *c);
void api_metrics(api_ctx *c);
void api_health(api_ctx *c);
void api_status(api_ctx *c);
void api_session_create(api_ctx *c);
void api_session_end(api_ctx *c);
void api_session_list(api_ctx *c);
void api_session_revoke(api_ctx *c);
void api_key_create(api_ctx *c);
void api_key_list(api_ctx *c);
void api_key_revoke(api_ctx *c);
void api_counter_incr(api_ctx *c);
void api_counter_get(api_ctx *c);
void api_counter_list(api_ctx *c);
void api_audit_append(api_ctx *c);
void api_audit_query(api_ctx *c);
void api_config_set(api_ctx *c);
void api_config_get(api_ctx *c);
void api_config_list(api_ctx *c);
void api_archive_add(api_ctx *c);
void api_archive_get(api_ctx *c);
void api_archive_rm(api_ctx *c);
void api_archive_list(api_ctx *c);
void api_batch(api_ctx *c);
void api_export(api_ctx *c);
void api_backup(api_ctx *c);
void api_verify(api_ctx *c);
void api_peers_list(api_ctx *c);
void api_cluster(api_ctx *c);
void api_peer_add(api_ctx *c);
void api_peer_remove(api_ctx *c);
void api_trust_list(api_ctx *c);
void api_trust_add(api_ctx *c);
void api_trust_remove(api_ctx *c);
void api_faults(api_ctx *c);
void api_bundle_create(api_ctx *c);
void api_bundle_apply(api_ctx *c);
void api_bundle_inspect(api_ctx *c);

#endif
