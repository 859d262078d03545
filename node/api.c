/*
 * api.c - route matching, credentials, and what every handler shares.
 *
 * A request becomes an api_ctx that lives until its answer: at once for
 * reads, after the writer thread's commit for writes. api_reply*() and
 * api_error() answer, record the request's metrics and free the context;
 * a handler answers exactly once on every path.
 */
#include "api_int.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "audit.h"
#include "jsonout.h"
#include "log.h"
#include "rcache.h"
#include "repl.h"
#include "watch.h"
#include "timefmt.h"
#include "ui.h"

#define R_NONE  JV_ROLE_NONE
#define R_READ  JV_ROLE_READER
#define R_WRITE JV_ROLE_WRITER
#define R_ADMIN JV_ROLE_ADMIN

static const api_route routes[] = {
    {"GET", "/health", R_NONE, api_health_live},
    {"GET", "/metrics", R_NONE, api_metrics},
    {"GET", "/v1/health", R_READ, api_health},
    {"GET", "/v1/status", R_READ, api_status},
    {"POST", "/v1/sessions", R_NONE, api_session_create},
    {"DELETE", "/v1/sessions/current", R_READ, api_session_end},
    {"GET", "/v1/sessions", R_ADMIN, api_session_list},
    {"DELETE", "/v1/sessions/{}", R_ADMIN, api_session_revoke},
    {"POST", "/v1/keys", R_ADMIN, api_key_create},
    {"GET", "/v1/keys", R_ADMIN, api_key_list},
    {"DELETE", "/v1/keys/{}", R_ADMIN, api_key_revoke},
    {"POST", "/v1/counters/{}/increment", R_WRITE, api_counter_incr},
    {"GET", "/v1/counters/{}", R_READ, api_counter_get},
    {"GET", "/v1/counters", R_READ, api_counter_list},
    {"POST", "/v1/audit", R_WRITE, api_audit_append},
    {"GET", "/v1/audit", R_READ, api_audit_query},
    {"PUT", "/v1/config/{*}", R_WRITE, api_config_set},
    {"GET", "/v1/config/{*}", R_READ, api_config_get},
    {"GET", "/v1/config", R_READ, api_config_list},
    {"PUT", "/v1/archive/{*}", R_WRITE, api_archive_add},
    {"GET", "/v1/archive/{*}", R_READ, api_archive_get},
    {"DELETE", "/v1/archive/{*}", R_WRITE, api_archive_rm},
    {"GET", "/v1/archive", R_READ, api_archive_list},
    {"POST", "/v1/batch", R_WRITE, api_batch},
    {"GET", "/v1/export", R_READ, api_export},
    {"POST", "/v1/backup", R_ADMIN, api_backup},
    {"POST", "/v1/verify", R_ADMIN, api_verify},
    {"GET", "/v1/peers", R_READ, api_peers_list},
    {"GET", "/v1/cluster", R_READ, api_cluster},
    {"POST", "/v1/peers", R_ADMIN, api_peer_add},
    {"DELETE", "/v1/peers/{*}", R_ADMIN, api_peer_remove},
    {"GET", "/v1/trust", R_READ, api_trust_list},
    {"POST", "/v1/trust", R_ADMIN, api_trust_add},
    {"DELETE", "/v1/trust/{}", R_ADMIN, api_trust_remove},
    {"POST", "/v1/debug/faults", R_ADMIN, api_faults},
    /* Readers may make a bundle only sealed to a node (checked inside). */
    {"GET", "/v1/watch", R_READ, api_watch},
    {"GET", "/v1/bundles", R_READ, api_bundle_create},
    {"POST", "/v1/bundles", R_ADMIN, api_bundle_apply},
    {"POST", "/v1/bundles/inspect", R_READ, api_bundle_inspect},
};

#define NROUTES (sizeof(routes) / sizeof(routes[0]))

static const double latency_buckets[] = {0.0001, 0.00025, 0.0005, 0.001,
                                         0.0025, 0.005,   0.01,   0.025,
                                         0.05,   0.1,     0.25,   1.0};

jv_err jv_api_declare_metrics(jv_metrics *m)
{
    jv_err err;
    if ((err = jv_metrics_declare(m, "jarvis_requests_total", JV_METRIC_COUNTER,
                                  "API requests by route, method and status",
                                  NULL, 0)) ||
        (err = jv_metrics_declare(
             m, "jarvis_request_duration_seconds", JV_METRIC_HISTOGRAM,
             "API request latency by route, from first byte to answer",
             latency_buckets,
             sizeof(latency_buckets) / sizeof(latency_buckets[0]))) ||
        (err = jv_metrics_declare(
             m, "jarvis_rate_limited_total", JV_METRIC_COUNTER,
             "requests refused by a key's rate limit", NULL, 0)))
        return err;
    return JV_OK;
}

/* -- answers -------------------------------------------------------------- */

static void ctx_free(api_ctx *c)
{
    for (int i = 0; i < API_MAX_CAPS; i++)
        jv_buf_fini(&c->cap[i]);
    if (c->body)
        json_decref(c->body);
    for (size_t i = 0; i < c->nowned; i++)
        jv_free(c->owned[i]);
    jv_free(c->owned);
    jv_free(c->intents);
    if (c->extra_free)
        c->extra_free(c->extra);
    jv_buf_fini(&c->text);
    jv_free(c);
}

/* Series handles per route (and per status seen), so that recording a
 * request formats no labels and hashes nothing. Loop thread only. */
#define STATUS_SLOTS 8

typedef struct {
    int status;
    const char *method;
    jv_metric_series *requests;
} status_slot;

typedef struct {
    jv_metric_series *latency;
    status_slot slot[STATUS_SLOTS];
} route_series;

void jv_api_free(jv_node *n)
{
    jv_free(n->api_series);
    n->api_series = NULL;
}

static void record(api_ctx *c, int status)
{
    jv_node *n = c->node;
    size_t ri = c->route ? (size_t)(c->route - routes) : NROUTES;
    const char *route = c->route ? c->route->pattern : "unmatched";
    const char *method = jv_http_method(c->req);
    char labels[256];
    if (!n->api_series) /* one slot per route, the last for unmatched */
        n->api_series = jv_calloc(NROUTES + 1, sizeof(route_series));
    route_series scratch,
        *rs = n->api_series ? &((route_series *)n->api_series)[ri] : &scratch;
    if (rs == &scratch)
        memset(&scratch, 0, sizeof(scratch));
    if (!rs->latency) {
        snprintf(labels, sizeof(labels), "route=\"%s\"", route);
        rs->latency = jv_metrics_series(
            n->metrics, "jarvis_request_duration_seconds", labels);
    }
    jv_metric_series *req = NULL;
    status_slot *free_slot = NULL;
    for (size_t i = 0; i < STATUS_SLOTS && !req; i++) {
        status_slot *sl = &rs->slot[i];
        if (!sl->requests && !free_slot)
            free_slot = sl;
        else if (sl->requests && sl->status == status &&
                 strcmp(sl->method, method) == 0)
            req = sl->requests;
    }
    if (!req) {
        snprintf(labels, sizeof(labels),
                 "route=\"%s\",method=\"%s\",status=\"%d\"", route, method,
                 status);
        req = jv_metrics_series(n->metrics, "jarvis_requests_total", labels);
        /* http-parser's method names are static strings. */
        if (free_slot && req)
            *free_slot = (status_slot){status, method, req};
    }
    double secs = (double)(uv_hrtime() - jv_http_start_ns(c->req)) / 1e9;
    jv_metrics_series_add(req, 1);
    jv_metrics_series_observe(rs->latency, secs);
    if (status >= 500)
        n->api_errors_window++;
    /* The route, not the path: paths carry keys and names. */
    jv_debug("api", "%s %s: %d in %.3f ms", method, route, status, secs * 1000);
}

void api_reply_raw(api_ctx *c, int status, const char *type,
                   const char *headers, const void *body, size_t len)
{
    record(c, status);
    jv_http_respond(c->req, status, type, headers, body, len);
    ctx_free(c);
}

void api_reply(api_ctx *c, int status, json_t *body)
{
    /* A failed render (an error's answer after a read's) starts over. */
    jv_buf_fini(&c->text);
    jv_buf_init(&c->text);
    if (api_render(c, body) != JV_OK) {
        static const char oom[] =
            "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";
        api_reply_raw(c, 500, "application/json", NULL, oom, sizeof(oom) - 1);
        return;
    }
    api_reply_raw(c, status, "application/json", NULL, c->text.data,
                  c->text.len);
}

void api_reply_stream(api_ctx *c, int status, jv_http_pull_fn pull,
                      jv_http_end_fn end, void *arg)
{
    api_reply_stream_type(c, status, "application/json", NULL, pull, end, arg);
}

void api_reply_stream_type(api_ctx *c, int status, const char *type,
                           const char *headers, jv_http_pull_fn pull,
                           jv_http_end_fn end, void *arg)
{
    record(c, status);
    jv_http_respond_stream(c->req, status, type, headers, pull, end, arg);
    ctx_free(c);
}

jv_err api_detach(api_ctx *c, int status, const char *type, const char *headers,
                  jv_buf *head, int *fd, bool *is_unix, bool *chunked)
{
    record(c, status);
    jv_err err = jv_http_detach(c->req, status, type, headers, head, fd,
                                is_unix, chunked);
    ctx_free(c);
    return err;
}

void api_put_json(jv_buf *out, json_t *v)
{
    if (jv_json_write(out, v) != JV_OK)
        out->err = 1;
    json_decref(v);
}

void api_reply_empty(api_ctx *c, int status)
{
    api_reply_raw(c, status, NULL, NULL, NULL, 0);
}

static void error_with_headers(api_ctx *c, int status, const char *code,
                               const char *headers, const char *message)
{
    json_t *o =
        json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!text) {
        api_reply_raw(c, status, "application/json", headers,
                      "{\"error\":{\"code\":\"internal\",\"message\":\"\"}}",
                      41);
        return;
    }
    api_reply_raw(c, status, "application/json", headers, text, strlen(text));
    free(text);
}

void api_error(api_ctx *c, int status, const char *code, const char *fmt, ...)
{
    char message[512];
    size_t at = 0;
    va_list ap;
    if (c->op_at)
        at = (size_t)snprintf(message, sizeof(message),
                              "op %zu: ", c->op_at - 1);
    va_start(ap, fmt);
    vsnprintf(message + at, sizeof(message) - at, fmt, ap);
    va_end(ap);
    /* json_pack refuses invalid UTF-8; a message quoting user input is cut
     * back to its valid prefix. */
    size_t len = strlen(message);
    while (len && !jv_str_valid_utf8((jv_str){message, len}))
        message[--len] = '\0';
    error_with_headers(c, status, code,
                       status == 401 ? "WWW-Authenticate: Bearer\r\n" : NULL,
                       message);
}

void api_rate_limited(api_ctx *c, uint64_t retry_ms)
{
    char hdr[64];
    snprintf(hdr, sizeof(hdr), "Retry-After: %" PRIu64 "\r\n",
             (retry_ms + 999) / 1000);
    jv_metrics_add(c->node->metrics, "jarvis_rate_limited_total", NULL, 1);
    error_with_headers(c, 429, "rate_limited", hdr,
                       "rate limit of this key exceeded");
}

/* api_fail with the storage message that goes with err. */
static void fail_with(api_ctx *c, jv_err err, const char *what,
                      const char *store_msg)
{
    switch (err) {
    case JV_ENOTFOUND:
        api_error(c, 404, "not_found", "%s: not found", what);
        break;
    case JV_EEXIST:
        api_error(c, 409, "conflict", "%s: already exists", what);
        break;
    case JV_EINVAL:
    case JV_EOVERFLOW:
    case JV_ETOOBIG:
        api_error(c, 400, "invalid_field", "%s: %s", what, jv_strerror(err));
        break;
    case JV_ECLOSED:
        api_error(c, 503, "shutting_down", "%s: the node is stopping", what);
        break;
    case JV_ESTORAGE:
    case JV_EIO:
    case JV_EBUSY:
    case JV_ECORRUPT:
        api_error(c, 503, "storage_unavailable", "%s: %s%s%s%s", what,
                  jv_strerror(err), store_msg[0] ? " (" : "", store_msg,
                  store_msg[0] ? ")" : "");
        break;
    default:
        api_error(c, 500, "internal", "%s: %s", what, jv_strerror(err));
        break;
    }
}

void api_fail(api_ctx *c, jv_err err, const char *what)
{
    /* SQLite's words come from the connection that failed, on its own
     * thread: with the job (api_fail_msg), never from the loop. */
    fail_with(c, err, what, "");
}

void api_fail_msg(api_ctx *c, jv_err err, const char *what,
                  const char *store_msg)
{
    fail_with(c, err, what, store_msg ? store_msg : "");
}

/* -- reads off the loop --------------------------------------------------- */

static jv_err read_run(jv_store *st, void *arg)
{
    api_ctx *c = arg;
    return c->read_fn(st, c);
}

static void read_done(void *arg, jv_err err, const char *msg)
{
    api_ctx *c = arg;
    c->read_done(c, err, msg);
}

void api_read(api_ctx *c, api_read_fn fn, api_read_done done)
{
    c->read_fn = fn;
    c->read_done = done;
    c->job.fn = read_run;
    c->job.done = read_done;
    c->job.arg = c;
    if (!c->node->readers ||
        jv_readers_submit(c->node->readers, &c->job) != JV_OK)
        api_error(c, 503, "shutting_down", "the node is stopping");
}

jv_err api_render(api_ctx *c, json_t *v)
{
    /* Room for most answers at once, not four doublings from 64 bytes. */
    jv_err err = v ? jv_buf_reserve(&c->text, 512) : JV_ENOMEM;
    if (err == JV_OK)
        err = jv_json_write(&c->text, v);
    json_decref(v);
    /* What the node builds is valid: a refusal can only be memory. */
    return err == JV_OK ? JV_OK : JV_ENOMEM;
}

static jv_str cache_key(const api_ctx *c)
{
    return (jv_str){(const char *)c->cap[0].data, c->cap[0].len};
}

bool api_cached(api_ctx *c, unsigned kind)
{
    jv_rcache *rc = c->node->rcache;
    jv_str text;
    if (jv_rcache_get(rc, kind, cache_key(c), &text)) {
        api_reply_raw(c, 200, "application/json", NULL, text.p, text.n);
        return true;
    }
    c->cache_kind = kind;
    c->cache_ticket = jv_rcache_ticket(rc, kind);
    return false;
}

void api_reply_rendered(api_ctx *c, jv_err err, const char *msg,
                        const char *what)
{
    if (err) {
        api_fail_msg(c, err, what, msg);
        return;
    }
    if (c->cache_ticket)
        jv_rcache_put(c->node->rcache, c->cache_ticket, c->cache_kind,
                      cache_key(c), c->text.data, c->text.len);
    /* The context, and the text with it, is freed once the answer has
     * been copied for the connection. */
    api_reply_raw(c, 200, "application/json", NULL, c->text.data, c->text.len);
}

/* -- request parts -------------------------------------------------------- */

jv_err api_query(api_ctx *c, const char *name, jv_buf *buf)
{
    jv_buf_reset(buf);
    jv_err err = jv_http_query_param(jv_http_query(c->req), name, buf);
    if (err == JV_ENOTFOUND)
        return err;
    if (err ||
        !jv_str_valid_utf8((jv_str){(const char *)buf->data, buf->len})) {
        api_error(c, 400, "bad_request", "query parameter '%s' is not valid",
                  name);
        return JV_EINVAL;
    }
    return JV_OK;
}

jv_err api_paging(api_ctx *c, size_t *limit, jv_buf *cursor)
{
    jv_buf tmp;
    jv_buf_init(&tmp);
    *limit = 100;
    jv_err err = api_query(c, "limit", &tmp);
    if (err == JV_OK) {
        char *end;
        unsigned long v = strtoul(api_cstr(&tmp), &end, 10);
        if (*end || v == 0 || v > 1000 || api_cstr(&tmp)[0] == '-') {
            jv_buf_fini(&tmp);
            api_error(c, 400, "bad_request",
                      "limit must be an integer from 1 to 1000");
            return JV_EINVAL;
        }
        *limit = v;
    } else if (err == JV_EINVAL) {
        jv_buf_fini(&tmp);
        return err;
    }
    jv_buf_fini(&tmp);
    err = api_query(c, "cursor", cursor);
    if (err == JV_ENOTFOUND) {
        jv_buf_reset(cursor);
        return JV_OK;
    }
    return err;
}

int api_field_str(api_ctx *c, const char *name, bool required, size_t min,
                  size_t max, jv_str *out)
{
    return api_field_str_in(c, c->body, name, required, min, max, out);
}

int api_field_str_in(api_ctx *c, json_t *obj, const char *name, bool required,
                     size_t min, size_t max, jv_str *out)
{
    json_t *v = obj ? json_object_get(obj, name) : NULL;
    if (!v || json_is_null(v)) {
        if (required) {
            api_error(c, 400, "invalid_field", "field '%s' is required", name);
            return -1;
        }
        *out = (jv_str){"", 0};
        return 0;
    }
    if (!json_is_string(v)) {
        api_error(c, 400, "invalid_field", "field '%s' must be a string", name);
        return -1;
    }
    jv_str s = {json_string_value(v), json_string_length(v)};
    if (s.n < min || s.n > max || !jv_str_valid_utf8(s)) {
        api_error(c, 400, "invalid_field",
                  "field '%s' must be %zu to %zu bytes of UTF-8 without NUL",
                  name, min, max);
        return -1;
    }
    *out = s;
    return 0;
}

int api_field_value(api_ctx *c, json_t *obj, const char *where, jv_str *out)
{
    json_t *v = obj ? json_object_get(obj, "value") : NULL;
    if (!v) {
        api_error(c, 400, "invalid_field", "%s: field 'value' is required",
                  where);
        return -1;
    }
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text) {
        api_error(c, 500, "internal", "cannot encode the value");
        return -1;
    }
    size_t len = strlen(text);
    /* jansson's allocation is freed with free(); copy into ours. */
    char *own = jv_strndup(text, len);
    free(text);
    if (!own || !api_own(c, own)) {
        api_error(c, 500, "internal", "out of memory");
        return -1;
    }
    if (len > JV_OP_MAX_VALUE) {
        api_error(c, 400, "invalid_field",
                  "%s: value is %zu bytes encoded, more than %u", where, len,
                  JV_OP_MAX_VALUE);
        return -1;
    }
    *out = (jv_str){own, len};
    return 0;
}

char *api_own(api_ctx *c, char *s)
{
    char **o = jv_reallocarray(c->owned, c->nowned + 1, sizeof(char *));
    if (!o) {
        jv_free(s);
        return NULL;
    }
    c->owned = o;
    o[c->nowned++] = s;
    return s;
}

jv_intent *api_intents(api_ctx *c, size_t n)
{
    jv_free(c->intents);
    c->intents = jv_calloc(n, sizeof(jv_intent));
    c->nintents = c->intents ? n : 0;
    return c->intents;
}

uint64_t api_stamp(api_ctx *c)
{
    uint64_t s = 0;
    if (jv_hlc_now(&c->node->hlc, jv_now_ms(), &s) != JV_OK)
        s = c->node->hlc.last;
    return s;
}

jv_err api_audit_intent(api_ctx *c, jv_intent *slot, const char *action,
                        const char *target, const char *detail)
{
    /* Texts quoting user input are cut to the entry's limits on a
     * character boundary, so the entry stays valid UTF-8. */
    jv_str ts = jv_str_c(target), ds = jv_str_c(detail);
    char *t = jv_strndup(target, jv_utf8_cut(ts, JV_AUDIT_MAX_TARGET));
    char *d = jv_strndup(detail, jv_utf8_cut(ds, JV_AUDIT_MAX_DETAIL));
    char *a =
        jv_strndup(c->who.key_name[0] ? c->who.key_name : "anonymous",
                   strlen(c->who.key_name[0] ? c->who.key_name : "anonymous"));
    if (!api_own(c, t) || !api_own(c, d) || !api_own(c, a)) {
        if (!t || !d || !a) {
            jv_free(t);
            jv_free(d);
            jv_free(a);
        }
        return JV_ENOMEM;
    }
    memset(slot, 0, sizeof(*slot));
    slot->op.kind = JV_OP_AUDIT;
    slot->op.audit.time_ms = jv_now_ms();
    slot->op.audit.actor = jv_str_c(a);
    slot->op.audit.action = jv_str_c(action);
    slot->op.audit.target = jv_str_c(t);
    slot->op.audit.detail = jv_str_c(d);
    /* The stamp of the batch must not be behind the audit time. */
    uint64_t now_stamp = api_stamp(c);
    if (jv_hlc_ms(now_stamp) < slot->op.audit.time_ms)
        slot->op.audit.time_ms = jv_hlc_ms(now_stamp);
    return JV_OK;
}

void api_submit(api_ctx *c, jv_write_cb done)
{
    if (c->node->stopping) {
        api_error(c, 503, "shutting_down", "the node is stopping");
        return;
    }
    jv_repl_clock ck;
    if (c->nintents && c->node->repl &&
        (jv_repl_clock_get(c->node->repl, &ck), ck.skewed)) {
        /* Its peers would hold the batch aside (stamped beyond the bound)
         * or could not be reached at all (their freshness check). */
        char msg[256];
        snprintf(msg, sizeof(msg),
                 "this node's clock is %+" PRId64 " ms off its peers' "
                 "(median of %zu; next stamp %+" PRId64 " ms), beyond "
                 "--max-clock-skew: writes resume when the clock is set "
                 "right",
                 ck.offset_ms, ck.peers, ck.ahead_ms);
        jv_metrics_add(c->node->metrics,
                       "jarvis_clock_skew_refused_writes_total", NULL, 1);
        api_error(c, 503, "clock_skew", "%s", msg);
        return;
    }
    c->wr.group.intents = c->intents;
    c->wr.group.n = c->nintents;
    c->wr.done = done;
    c->wr.arg = c;
    jv_writer_submit(c->node->writer, &c->wr);
}

void api_fail_commit(api_ctx *c)
{
    /* The commit ran on the writer's connection, not the reader's: its
     * message came back with the request. */
    fail_with(c, c->wr.err, "commit", c->wr.errmsg);
}

bool api_write_ok(api_ctx *c)
{
    if (c->wr.err) {
        api_fail_commit(c);
        return false;
    }
    if (c->wr.group.result) {
        char what[320];
        const char *brace = strchr(c->route->pattern, '{');
        if (c->nintents > 1)
            snprintf(what, sizeof(what), "op %zu", c->wr.group.failed_index);
        else if (brace && c->cap[0].len) /* name the key, not "{*}" */
            snprintf(what, sizeof(what), "%.*s%.256s",
                     (int)(brace - c->route->pattern), c->route->pattern,
                     (const char *)c->cap[0].data);
        else
            snprintf(what, sizeof(what), "%s", c->route->pattern);
        api_fail(c, c->wr.group.result, what);
        return false;
    }
    return true;
}

/* -- JSON pieces ---------------------------------------------------------- */

json_t *api_time(uint64_t ms)
{
    char buf[40];
    jv_rfc3339(ms, buf, sizeof(buf));
    return json_string(buf);
}

json_t *api_id(const jv_id *id)
{
    char hex[JV_ID_HEX];
    jv_id_hex(id, hex);
    return json_string(hex);
}

json_t *api_jstr(jv_str s)
{
    return json_stringn_nocheck(s.p ? s.p : "", s.n);
}

json_t *api_value(jv_str text)
{
    json_error_t e;
    json_t *v = json_loadb(text.p, text.n, JSON_DECODE_ANY, &e);
    return v ? v : api_jstr(text);
}

/* -- dispatch ------------------------------------------------------------- */

/* Matches path against pattern, capturing "{}" (one segment) and "{*}" (the
 * rest, at least one segment) as raw text. */
static bool match(const char *pattern, jv_str path, jv_str caps[API_MAX_CAPS])
{
    const char *p = pattern, *s = path.p, *end = path.p + path.n;
    int ncap = 0;
    while (*p) {
        if (p[0] == '{' && p[1] == '*') {
            if (s >= end)
                return false;
            caps[ncap++] = (jv_str){s, (size_t)(end - s)};
            return true;
        }
        if (p[0] == '{') {
            const char *seg = s;
            while (s < end && *s != '/')
                s++;
            if (s == seg)
                return false;
            caps[ncap++] = (jv_str){seg, (size_t)(s - seg)};
            p += 2;
            continue;
        }
        if (s >= end || *s != *p)
            return false;
        s++;
        p++;
    }
    return s == end;
}

/* 403 naming the role the route needs, also as a field for clients:
 * {"error":{"code":"forbidden","message":...,"required_role":"admin"}}. */
static void forbidden(api_ctx *c, const char *method)
{
    char message[256];
    const char *need = jv_role_name(c->route->role);
    snprintf(message, sizeof(message),
             "role '%s' may not %s %s: it needs the %s role",
             jv_role_name(c->who.role), method, c->route->pattern, need);
    json_t *o = json_pack("{s:{s:s,s:s,s:s}}", "error", "code", "forbidden",
                          "message", message, "required_role", need);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!text) {
        api_error(c, 403, "forbidden", "%s", message);
        return;
    }
    api_reply_raw(c, 403, "application/json", NULL, text, strlen(text));
    free(text);
}

void jv_api_handle(void *arg, jv_http_req *req)
{
    jv_node *n = arg;
    /* The dashboard's files: no credentials, no route table. */
    if (jv_ui_owns(jv_http_path(req))) {
        jv_ui_serve(req);
        return;
    }
    api_ctx *c = jv_calloc(1, sizeof(*c));
    if (!c) {
        static const char oom[] =
            "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";
        jv_http_respond(req, 500, "application/json", NULL, oom,
                        sizeof(oom) - 1);
        return;
    }
    c->node = n;
    c->req = req;
    for (int i = 0; i < API_MAX_CAPS; i++)
        jv_buf_init(&c->cap[i]);

    jv_str path = jv_http_path(req), caps[API_MAX_CAPS] = {{0}};
    const char *method = jv_http_method(req);
    char allow[128] = "";
    for (size_t i = 0; i < NROUTES; i++) {
        jv_str tmp[API_MAX_CAPS] = {{0}};
        /* Without --test-faults the fault switch is no route at all: 404
         * for every method, before credentials are asked for. */
        if (routes[i].fn == api_faults && !n->cfg->test_faults)
            continue;
        if (!match(routes[i].pattern, path, tmp))
            continue;
        if (strcmp(routes[i].method, method) == 0) {
            c->route = &routes[i];
            memcpy(caps, tmp, sizeof(caps));
            break;
        }
        if (!strstr(allow, routes[i].method)) {
            size_t l = strlen(allow);
            snprintf(allow + l, sizeof(allow) - l, "%s%s", l ? ", " : "",
                     routes[i].method);
        }
    }
    if (!c->route) {
        if (*allow) {
            char hdr[160];
            snprintf(hdr, sizeof(hdr), "Allow: %s\r\n", allow);
            error_with_headers(c, 405, "method_not_allowed", hdr,
                               "method not allowed on this route");
        } else {
            api_error(c, 404, "not_found", "no such route");
        }
        return;
    }
    for (int i = 0; i < API_MAX_CAPS; i++) {
        if (!caps[i].p)
            break;
        if (jv_http_unescape(caps[i], &c->cap[i]) != JV_OK) {
            api_error(c, 400, "bad_request", "bad percent-encoding in path");
            return;
        }
    }

    uint64_t now = jv_now_ms();
    if (c->route->role != JV_ROLE_NONE) {
        if (jv_auth_check(n->auth, jv_http_header(req, "Authorization"), now,
                          &c->who) != JV_OK) {
            api_error(c, 401, "unauthorized",
                      "a valid API key or session token is required "
                      "(Authorization: Bearer ...)");
            return;
        }
        c->authed = true;
        if (c->who.role < c->route->role) {
            forbidden(c, method);
            return;
        }
        uint64_t retry = 0;
        if (jv_auth_rate(n->auth, c->who.key_id, now, &retry) != JV_OK) {
            api_rate_limited(c, retry);
            return;
        }
    }

    size_t blen;
    const uint8_t *body = jv_http_body(req, &blen);
    /* Bundles are binary bodies, read by their handlers. */
    bool raw =
        c->route->fn == api_bundle_apply || c->route->fn == api_bundle_inspect;
    if (blen && !raw) {
        json_error_t e;
        c->body =
            json_loadb((const char *)body, blen, JSON_REJECT_DUPLICATES, &e);
        if (!c->body || !json_is_object(c->body)) {
            api_error(c, 400, "invalid_json",
                      c->body ? "the body must be a JSON object"
                              : "the body is not JSON: %s",
                      e.text);
            return;
        }
    }
    c->route->fn(c);
}
