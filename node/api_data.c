/*
 * api_data.c - the replicated data: counters, audit log, configuration,
 * archive, and several writes at once.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "api_int.h"
#include "audit.h"
#include "log.h"
#include "timefmt.h"

#define MAX_SAFE_INT ((json_int_t)1 << 53)

static jv_str cap_str(api_ctx *c, int i)
{
    return (jv_str){(const char *)c->cap[i].data, c->cap[i].len};
}

/* A name or key from the path: 1..max bytes of UTF-8 without NUL. */
static int path_name(api_ctx *c, size_t max, const char *what, jv_str *out)
{
    jv_str s = cap_str(c, 0);
    if (s.n == 0 || s.n > max || !jv_str_valid_utf8(s)) {
        api_error(c, 400, "bad_request",
                  "%s must be 1 to %zu bytes of UTF-8 without NUL", what, max);
        return -1;
    }
    *out = s;
    return 0;
}

/* A counter total: a JSON number when |total| <= 2^53 (exact in every
 * JSON reader), else its exact decimal text as a string (docs/api.md). */
static json_t *count_json(const jv_count *c)
{
    int64_t v;
    if (jv_count_i64(c, -MAX_SAFE_INT, MAX_SAFE_INT, &v) == JV_OK)
        return json_integer((json_int_t)v);
    char text[JV_COUNT_TEXT];
    size_t n = jv_count_format(c, text);
    return json_stringn_nocheck(text, n);
}

/* -- counters ------------------------------------------------------------- */

static json_t *counter_result(jv_str name, const jv_count *total)
{
    return json_pack("{s:o,s:o}", "name", api_jstr(name), "total",
                     count_json(total));
}

/* Fills an intent for "add by to name"; 0 or answered 400. */
static int counter_intent(api_ctx *c, json_t *by_json, jv_str name,
                          jv_intent *in)
{
    json_int_t by = 1;
    if (by_json && !json_is_null(by_json)) {
        if (!json_is_integer(by_json)) {
            api_error(c, 400, "invalid_field", "'by' must be an integer");
            return -1;
        }
        by = json_integer_value(by_json);
        if (by == 0 || by > MAX_SAFE_INT || by < -MAX_SAFE_INT) {
            api_error(c, 400, "invalid_field",
                      "'by' must be a non-zero integer within +/-2^53");
            return -1;
        }
    }
    in->op.kind = JV_OP_COUNTER;
    in->op.counter.name = name;
    in->by = (int64_t)by;
    return 0;
}

static void incr_done(jv_write_req *r)
{
    api_ctx *c = r->arg;
    if (!api_write_ok(c))
        return;
    api_reply(c, 200,
              counter_result(c->intents[0].op.counter.name,
                             &c->intents[0].res.counter_total));
}

void api_counter_incr(api_ctx *c)
{
    jv_str name;
    if (path_name(c, JV_OP_MAX_NAME, "a counter name", &name))
        return;
    jv_intent *in = api_intents(c, 1);
    if (!in) {
        api_fail(c, JV_ENOMEM, "increment");
        return;
    }
    json_t *by = c->body ? json_object_get(c->body, "by") : NULL;
    if (counter_intent(c, by, name, in))
        return;
    api_submit(c, incr_done);
}

typedef struct {
    json_t *arr;
    jv_count total;
} shares_acc;

/* One replica's share: increments and decrements are at most 2^63 - 1
 * (what one origin can sign), exact JSON integers; its value follows the
 * rule of totals (count_json). */
static jv_err add_share(void *arg, const jv_counter_share *s)
{
    shares_acc *a = arg;
    jv_count one = {{0, 0}, {0, 0}};
    jv_count_add(&one, s->p, s->n);
    jv_count_add(&a->total, s->p, s->n);
    json_array_append_new(
        a->arr, json_pack("{s:o,s:I,s:I,s:o}", "replica", api_id(&s->replica),
                          "increments", (json_int_t)s->p, "decrements",
                          (json_int_t)s->n, "value", count_json(&one)));
    return JV_OK;
}

static void shares_free(void *arg)
{
    shares_acc *a = arg;
    json_decref(a->arr);
    jv_free(a);
}

static jv_err counter_read(jv_store *st, api_ctx *c)
{
    shares_acc *a = c->extra;
    jv_err err = jv_store_counter_get(st, cap_str(c, 0), add_share, a);
    if (err)
        return err;
    json_t *arr = a->arr;
    a->arr = NULL; /* the answer takes it */
    return api_render(c, json_pack("{s:o,s:o,s:o}", "name",
                                   api_jstr(cap_str(c, 0)), "total",
                                   count_json(&a->total), "shares", arr));
}

static void counter_read_done(api_ctx *c, jv_err err, const char *msg)
{
    api_reply_rendered(c, err, msg, "counter");
}

void api_counter_get(api_ctx *c)
{
    jv_str name;
    if (path_name(c, JV_OP_MAX_NAME, "a counter name", &name) ||
        api_cached(c, JV_RC_COUNTER))
        return;
    shares_acc *a = jv_calloc(1, sizeof(*a));
    if (!a || !(a->arr = json_array())) {
        jv_free(a);
        api_fail(c, JV_ENOMEM, "counter");
        return;
    }
    c->extra = a;
    c->extra_free = shares_free;
    api_read(c, counter_read, counter_read_done);
}

/* Takes up to limit rows of one batch, as JSON text into out; one row
 * more tells whether more follow. next is the cursor of the last row
 * taken (audit: its position). */
typedef struct {
    size_t limit, got;
    jv_buf next;
    jv_buf *out;
    size_t full; /* out's length at which the batch takes no more rows */
    bool *first;
    jv_audit_query cur; /* audit: the last row taken, as a cursor */
} page_acc;

static bool page_take(page_acc *a, jv_str key)
{
    if (a->got++ < a->limit) {
        jv_buf_reset(&a->next);
        jv_buf_append(&a->next, key.p, key.n);
        return true;
    }
    return false;
}

static void page_put(page_acc *a, json_t *row)
{
    if (!*a->first)
        jv_buf_append(a->out, ",", 1);
    *a->first = false;
    api_put_json(a->out, row);
    /* A piece's worth: the rows after this one wait for the next batch,
     * as if the batch had been that long. */
    if (a->out->len >= a->full)
        a->limit = a->got;
}

static jv_err add_counter(void *arg, const jv_counter_row *r)
{
    page_acc *a = arg;
    if (!page_take(a, r->name))
        return JV_OK;
    page_put(a, counter_result(r->name, &r->total));
    return jv_buf_err(a->out);
}

/* prefix and paging parameters shared by the list routes. */
static int list_params(api_ctx *c, jv_buf *prefix, jv_buf *cursor,
                       size_t *limit)
{
    jv_err err = api_query(c, "prefix", prefix);
    if (err == JV_EINVAL)
        return -1;
    if (err == JV_ENOTFOUND)
        jv_buf_reset(prefix);
    if (api_paging(c, limit, cursor))
        return -1;
    return 0;
}

static jv_str buf_str(const jv_buf *b)
{
    return (jv_str){b->len ? (const char *)b->data : "", b->len};
}

/* The list routes: prefix, cursor and limit, then one page of rows. */
typedef jv_err (*page_fill)(jv_store *st, jv_str prefix, jv_str after,
                            size_t limit, page_acc *a);

/*
 * A page is streamed as the client reads it (http.h): its rows are read
 * in batches of PAGE_BATCH rows or a piece's worth of bytes, each after
 * the last row sent, so that a page of large rows is never whole in
 * memory. The bytes are those of the
 * whole page encoded at once: {"<field>":[rows],"next_cursor":...}. Each
 * batch reads its own snapshot, as separate pages do.
 *
 * The reads run on a reader thread (api_read, readers.h), one piece at a
 * time into `ready`: the first before the answer starts (so that a
 * storage error is answered with its status), each next one when the
 * server pulls for it (the client has taken the previous one, within the
 * stream budget), behind every new request's read. While a read runs,
 * only the reader thread touches the stream's rows and `ready`.
 */
#define PAGE_BATCH 32

typedef struct page_stream page_stream;
/* Reads up to n rows into a (a->limit rows taken, one more seen). */
typedef jv_err (*page_batch)(page_stream *p, size_t n, page_acc *a);

struct page_stream {
    jv_node *node;
    page_batch batch;
    page_fill fill;
    const char *field;
    jv_buf prefix, after; /* list routes: after is the last key sent */
    jv_audit_query q;     /* audit: the query, its cursor moving on */
    jv_buf actor, action; /* borrowed by q */
    size_t left;          /* rows of the page still to send */
    size_t row_bytes;     /* average encoded row of the last batch */
    int phase;            /* 0 head, 1 rows, 2 tail, 3 done */
    bool first, more;
    jv_buf next; /* next_cursor text when more */
    /* the reads */
    jv_store *st; /* the reader's connection, during a read */
    jv_read_job job;
    jv_buf ready; /* read, not yet taken by the client */
    jv_err err;
    api_ctx *c;         /* until the answer starts */
    jv_http_stream *hs; /* waiting for the read under way */
    bool busy, over;    /* a read is under way; the answer is over */
    const char *what;
};

static void page_stream_free(page_stream *p)
{
    if (!p)
        return;
    jv_buf_fini(&p->prefix);
    jv_buf_fini(&p->after);
    jv_buf_fini(&p->actor);
    jv_buf_fini(&p->action);
    jv_buf_fini(&p->next);
    jv_buf_fini(&p->ready);
    jv_free(p);
}

static page_stream *page_stream_new(api_ctx *c, const char *field)
{
    page_stream *p = jv_calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->node = c->node;
    p->field = field;
    p->first = true;
    jv_buf_init(&p->prefix);
    jv_buf_init(&p->after);
    jv_buf_init(&p->actor);
    jv_buf_init(&p->action);
    jv_buf_init(&p->next);
    jv_buf_init(&p->ready);
    return p;
}

static jv_err page_rows(page_stream *p, jv_buf *out)
{
    size_t take = p->left < PAGE_BATCH ? p->left : PAGE_BATCH;
    /* Rows that fill a piece, as far as the last batch tells: large rows
     * are not read from the database only to wait for the next batch. */
    if (p->row_bytes && JV_HTTP_CHUNK / p->row_bytes + 1 < take)
        take = JV_HTTP_CHUNK / p->row_bytes + 1;
    size_t start = out->len;
    page_acc a = {.limit = take,
                  .out = out,
                  .full = out->len + JV_HTTP_CHUNK,
                  .first = &p->first};
    jv_buf_init(&a.next);
    jv_err err = p->batch(p, take + 1, &a);
    if (!err && a.got > 0 && a.got >= a.limit) {
        jv_buf_reset(&p->next);
        jv_buf_append(&p->next, a.next.data, a.next.len);
        jv_buf_reset(&p->after);
        jv_buf_append(&p->after, a.next.data, a.next.len);
        p->q.has_cursor = true;
        p->q.cursor_time_ms = a.cur.cursor_time_ms;
        p->q.cursor_id = a.cur.cursor_id;
    }
    jv_buf_fini(&a.next);
    if (err)
        return err;
    if (a.got)
        p->row_bytes =
            (out->len - start) / (a.got < a.limit ? a.got : a.limit) + 1;
    if (a.got > a.limit) { /* more rows follow this batch */
        p->left -= a.limit;
        p->more = p->left == 0;
        if (p->left == 0)
            p->phase = 2;
    } else {
        p->more = false;
        p->phase = 2;
    }
    return jv_buf_err(out);
}

/* One step of the page into out: its head, a batch of rows, or its tail. */
static jv_err page_step(page_stream *p, jv_buf *out, bool *end)
{
    *end = false;
    switch (p->phase) {
    case 0:
        jv_buf_append(out, "{", 1);
        api_put_json(out, json_string(p->field));
        jv_buf_append(out, ":[", 2);
        p->phase = p->left ? 1 : 2;
        return jv_buf_err(out);
    case 1:
        return page_rows(p, out);
    default:
        jv_buf_append(out, "],\"next_cursor\":", 16);
        if (p->more)
            api_put_json(out, json_stringn_nocheck((const char *)p->next.data,
                                                   p->next.len));
        else
            jv_buf_append(out, "null", 4);
        jv_buf_append(out, "}", 1);
        p->phase = 3;
        *end = true;
        return jv_buf_err(out);
    }
}

/* Reader thread: steps until a piece's worth is ready or the page ends. */
static jv_err page_read(jv_store *st, void *arg)
{
    page_stream *p = arg;
    bool end = false;
    jv_err err = JV_OK;
    p->st = st;
    /* The tail (a few bytes) goes with the last rows: a short page is one
     * piece, and never waits behind other streams for its end. */
    while (!err && !end && (p->ready.len < JV_HTTP_CHUNK || p->phase == 2))
        err = page_step(p, &p->ready, &end);
    p->st = NULL;
    return err;
}

static void page_read_done(void *arg, jv_err err, const char *msg);

static jv_err page_submit(page_stream *p)
{
    p->job.fn = page_read;
    p->job.done = page_read_done;
    p->job.arg = p;
    p->job.later = p->c == NULL; /* past the first piece */
    jv_err err = jv_readers_submit(p->node->readers, &p->job);
    p->busy = err == JV_OK;
    return err;
}

static jv_http_pull page_pull(void *arg, jv_http_stream *hs, jv_buf *out)
{
    page_stream *p = arg;
    if (p->busy) {
        p->hs = hs;
        return JV_HTTP_WAIT;
    }
    if (p->err)
        return JV_HTTP_ABORT;
    if (p->ready.len) {
        /* The next piece is read when the server asks for it: when the
         * client has taken this one and the stream budget allows. */
        jv_buf_append(out, p->ready.data, p->ready.len);
        jv_buf_reset(&p->ready);
        return p->phase == 3 ? JV_HTTP_END : JV_HTTP_MORE;
    }
    if (p->phase == 3)
        return JV_HTTP_END;
    if (page_submit(p) != JV_OK)
        return JV_HTTP_ABORT;
    p->hs = hs;
    return JV_HTTP_WAIT;
}

static void page_end(void *arg, bool complete)
{
    page_stream *p = arg;
    (void)complete;
    p->over = true;
    p->hs = NULL;
    if (!p->busy)
        page_stream_free(p);
}

/* Loop thread: a piece was read. The first one starts the answer. */
static void page_read_done(void *arg, jv_err err, const char *msg)
{
    page_stream *p = arg;
    p->busy = false;
    if (p->over) {
        page_stream_free(p);
        return;
    }
    if (p->c) {
        api_ctx *c = p->c;
        p->c = NULL;
        if (err) {
            api_fail_msg(c, err, p->what, msg);
            page_stream_free(p);
        } else {
            api_reply_stream(c, 200, page_pull, page_end, p);
        }
        return;
    }
    if (err) {
        jv_warn("api", "a page was cut short: %s (%s)", jv_strerror(err), msg);
        p->err = err;
    }
    if (p->hs) {
        jv_http_stream *hs = p->hs;
        p->hs = NULL;
        jv_http_stream_resume(hs);
    }
}

/* Reads the head and first piece off the loop, then answers; the rest
 * streams. Takes p. */
static void page_answer(api_ctx *c, page_stream *p, const char *what)
{
    p->c = c;
    p->what = what;
    if (page_submit(p) != JV_OK) {
        page_stream_free(p);
        api_error(c, 503, "shutting_down", "the node is stopping");
    }
}

static jv_err list_batch(page_stream *p, size_t n, page_acc *a)
{
    return p->fill(p->st, buf_str(&p->prefix), buf_str(&p->after), n, a);
}

static void list_route(api_ctx *c, const char *field, const char *what,
                       page_fill fill)
{
    page_stream *p = page_stream_new(c, field);
    if (!p) {
        api_fail(c, JV_ENOMEM, what);
        return;
    }
    if (list_params(c, &p->prefix, &p->after, &p->left)) {
        page_stream_free(p);
        return;
    }
    p->fill = fill;
    p->batch = list_batch;
    page_answer(c, p, what);
}

static jv_err fill_counters(jv_store *st, jv_str prefix, jv_str after,
                            size_t limit, page_acc *a)
{
    return jv_store_counter_list(st, prefix, after, limit, add_counter, a);
}

void api_counter_list(api_ctx *c)
{
    list_route(c, "counters", "counters", fill_counters);
}

/* -- audit ---------------------------------------------------------------- */

static json_t *audit_json(const jv_id *origin, uint64_t seq, uint64_t time_ms,
                          jv_str actor, jv_str action, jv_str target,
                          jv_str detail)
{
    char hex[JV_ID_HEX], id[JV_ID_HEX + 24];
    jv_id_hex(origin, hex);
    snprintf(id, sizeof(id), "%s:%" PRIu64, hex, seq);
    return json_pack("{s:s,s:s,s:I,s:o,s:I,s:o,s:o,s:o,s:o}", "id", id,
                     "origin", hex, "seq", (json_int_t)seq, "time",
                     api_time(time_ms), "time_ms", (json_int_t)time_ms, "actor",
                     api_jstr(actor), "action", api_jstr(action), "target",
                     api_jstr(target), "detail", api_jstr(detail));
}

/* Reads the fields from obj in place: a refusal answers and frees c, so
 * nothing of c may be touched (or swapped in and out) around the reads. */
static int audit_intent(api_ctx *c, json_t *obj, jv_intent *in)
{
    jv_str action, target, detail;
    if (api_field_str_in(c, obj, "action", true, 1, JV_AUDIT_MAX_ACTION,
                         &action) ||
        api_field_str_in(c, obj, "target", false, 0, JV_AUDIT_MAX_TARGET,
                         &target) ||
        api_field_str_in(c, obj, "detail", false, 0, JV_AUDIT_MAX_DETAIL,
                         &detail))
        return -1;
    if (api_audit_intent(c, in, "", "", "")) {
        api_fail(c, JV_ENOMEM, "audit");
        return -1;
    }
    in->op.audit.action = action;
    in->op.audit.target = target;
    in->op.audit.detail = detail;
    return 0;
}

static json_t *audit_result(api_ctx *c, const jv_intent *in)
{
    jv_id self;
    memcpy(&self, &c->node->origin.pk, sizeof(self));
    return audit_json(&self, in->res.seq, in->op.audit.time_ms,
                      in->op.audit.actor, in->op.audit.action,
                      in->op.audit.target, in->op.audit.detail);
}

static void audit_done(jv_write_req *r)
{
    api_ctx *c = r->arg;
    if (!api_write_ok(c))
        return;
    api_reply(c, 201, audit_result(c, &c->intents[0]));
}

void api_audit_append(api_ctx *c)
{
    if (!c->body) {
        api_error(c, 400, "invalid_json", "a JSON object body is required");
        return;
    }
    jv_intent *in = api_intents(c, 1);
    if (!in) {
        api_fail(c, JV_ENOMEM, "audit");
        return;
    }
    if (audit_intent(c, c->body, in))
        return;
    api_submit(c, audit_done);
}

static jv_err add_audit(void *arg, const jv_audit_row *r)
{
    page_acc *a = arg;
    if (a->got++ >= a->limit)
        return JV_OK;
    char hex[JV_ID_HEX], next[JV_ID_HEX + 48];
    jv_id_hex(&r->id.id, hex);
    int n = snprintf(next, sizeof(next), "%" PRIu64 "-%s-%" PRIu64, r->time_ms,
                     hex, r->id.n);
    jv_buf_reset(&a->next);
    jv_buf_append(&a->next, next, (size_t)n);
    a->cur.cursor_time_ms = r->time_ms;
    a->cur.cursor_id = r->id;
    page_put(a, audit_json(&r->id.id, r->id.n, r->time_ms, r->actor, r->action,
                           r->target, r->detail));
    return jv_buf_err(a->out);
}

static jv_err audit_batch(page_stream *p, size_t n, page_acc *a)
{
    p->q.limit = n;
    return jv_store_audit_query(p->st, &p->q, add_audit, a);
}

/* A time bound parameter; 0 or answered 400. */
static int time_param(api_ctx *c, const char *name, jv_buf *tmp, uint64_t *out)
{
    jv_err err = api_query(c, name, tmp);
    if (err == JV_ENOTFOUND)
        return 0;
    if (err)
        return -1;
    if (jv_parse_time(api_cstr(tmp), out) != JV_OK) {
        api_error(c, 400, "bad_request",
                  "'%s' must be RFC 3339 or milliseconds since the epoch",
                  name);
        return -1;
    }
    return 0;
}

static int parse_audit_cursor(const char *s, jv_audit_query *q)
{
    char hex[JV_ID_HEX];
    unsigned long long t, seq;
    int used = 0;
    if (sscanf(s, "%llu-%64[0-9a-f]-%llu%n", &t, hex, &seq, &used) != 3 ||
        s[used] != '\0' || strlen(hex) != 64)
        return -1;
    if (jv_id_from_hex(hex, 64, &q->cursor_id.id) != JV_OK)
        return -1;
    q->has_cursor = true;
    q->cursor_time_ms = t;
    q->cursor_id.n = seq;
    return 0;
}

void api_audit_query(api_ctx *c)
{
    jv_buf since, until, order, cursor;
    page_stream *p = page_stream_new(c, "entries");
    jv_buf_init(&since);
    jv_buf_init(&until);
    jv_buf_init(&order);
    jv_buf_init(&cursor);
    if (!p) {
        api_fail(c, JV_ENOMEM, "audit");
        goto out;
    }
    jv_audit_query *q = &p->q;
    if (time_param(c, "since", &since, &q->since_ms) ||
        time_param(c, "until", &until, &q->until_ms))
        goto out;
    jv_err err = api_query(c, "actor", &p->actor);
    if (err == JV_EINVAL)
        goto out;
    if (!err)
        q->actor = buf_str(&p->actor);
    if ((err = api_query(c, "action", &p->action)) == JV_EINVAL)
        goto out;
    if (!err)
        q->action = buf_str(&p->action);
    if ((err = api_query(c, "order", &order)) == JV_EINVAL)
        goto out;
    if (!err) {
        if (!strcmp(api_cstr(&order), "desc")) {
            q->newest_first = true;
        } else if (strcmp(api_cstr(&order), "asc")) {
            api_error(c, 400, "bad_request", "order must be asc or desc");
            goto out;
        }
    }
    if (api_paging(c, &p->left, &cursor))
        goto out;
    if (cursor.len > 0 && parse_audit_cursor(api_cstr(&cursor), q)) {
        api_error(c, 400, "bad_request", "cursor is not one this API gave");
        goto out;
    }
    p->batch = audit_batch;
    page_answer(c, p, "audit");
    p = NULL;
out:
    page_stream_free(p);
    jv_buf_fini(&since);
    jv_buf_fini(&until);
    jv_buf_fini(&order);
    jv_buf_fini(&cursor);
}

/* -- configuration -------------------------------------------------------- */

static json_t *config_json(jv_str key, jv_str value, const jv_id *replica,
                           uint64_t stamp)
{
    return json_pack("{s:o,s:o,s:o,s:I,s:o}", "key", api_jstr(key), "value",
                     api_value(value), "set_by", api_id(replica), "stamp",
                     (json_int_t)stamp, "set_at", api_time(jv_hlc_ms(stamp)));
}

/* Fills the config intent and its audit entry (two slots). */
static int config_intents(api_ctx *c, jv_str key, json_t *obj, jv_intent *in)
{
    jv_str value;
    if (api_field_value(c, obj, "config", &value))
        return -1;
    in[0].op.kind = JV_OP_CONFIG;
    in[0].op.config.key = key;
    in[0].op.config.value = value;
    char *target = jv_strndup(key.p, key.n);
    if (!target || !api_own(c, target) ||
        api_audit_intent(c, &in[1], "config.set", target, value.p)) {
        api_fail(c, JV_ENOMEM, "config");
        return -1;
    }
    in[0].op.config.stamp = api_stamp(c);
    return 0;
}

static json_t *config_result(api_ctx *c, const jv_intent *in)
{
    return config_json(in->op.config.key, in->op.config.value,
                       &c->node->origin.pk, in->op.config.stamp);
}

static void config_done(jv_write_req *r)
{
    api_ctx *c = r->arg;
    if (!api_write_ok(c))
        return;
    api_reply(c, 200, config_result(c, &c->intents[0]));
}

void api_config_set(api_ctx *c)
{
    jv_str key;
    if (path_name(c, JV_OP_MAX_KEY, "a config key", &key))
        return;
    if (!c->body) {
        api_error(c, 400, "invalid_json", "a JSON object body is required");
        return;
    }
    jv_intent *in = api_intents(c, 2);
    if (!in) {
        api_fail(c, JV_ENOMEM, "config");
        return;
    }
    if (config_intents(c, key, c->body, in))
        return;
    api_submit(c, config_done);
}

static jv_err one_config(void *arg, const jv_config_row *r)
{
    *(json_t **)arg = config_json(r->key, r->value, &r->replica, r->stamp);
    return JV_OK;
}

/* A single-entry read's answer, held by the context until it is sent. */
static void json_slot_free(void *arg)
{
    json_t **slot = arg;
    json_decref(*slot);
    jv_free(slot);
}

static int json_slot(api_ctx *c, const char *what)
{
    json_t **slot = jv_calloc(2, sizeof(*slot));
    if (!slot) {
        api_fail(c, JV_ENOMEM, what);
        return -1;
    }
    c->extra = slot;
    c->extra_free = json_slot_free;
    return 0;
}

/* On the reader: renders the slot's value (taking it). */
static jv_err json_slot_render(api_ctx *c)
{
    json_t **slot = c->extra, *out = slot[0];
    slot[0] = NULL;
    return api_render(c, out);
}

static jv_err config_read(jv_store *st, api_ctx *c)
{
    jv_err err = jv_store_config_get(st, cap_str(c, 0), one_config, c->extra);
    return err ? err : json_slot_render(c);
}

static void config_read_done(api_ctx *c, jv_err err, const char *msg)
{
    api_reply_rendered(c, err, msg, "config key");
}

void api_config_get(api_ctx *c)
{
    jv_str key;
    if (path_name(c, JV_OP_MAX_KEY, "a config key", &key) ||
        api_cached(c, JV_RC_CONFIG) || json_slot(c, "config key"))
        return;
    api_read(c, config_read, config_read_done);
}

static jv_err add_config(void *arg, const jv_config_row *r)
{
    page_acc *a = arg;
    if (page_take(a, r->key))
        page_put(a, config_json(r->key, r->value, &r->replica, r->stamp));
    return jv_buf_err(a->out);
}

static jv_err fill_config(jv_store *st, jv_str prefix, jv_str after,
                          size_t limit, page_acc *a)
{
    return jv_store_config_list(st, prefix, after, limit, add_config, a);
}

void api_config_list(api_ctx *c)
{
    list_route(c, "config", "config", fill_config);
}

/* -- archive -------------------------------------------------------------- */

static json_t *archive_json(jv_str key, jv_str value, const jv_id *by,
                            uint64_t stamp, size_t nvalues)
{
    return json_pack("{s:o,s:o,s:o,s:I,s:o,s:I}", "key", api_jstr(key), "value",
                     api_value(value), "added_by", api_id(by), "stamp",
                     (json_int_t)stamp, "added_at", api_time(jv_hlc_ms(stamp)),
                     "values", (json_int_t)nvalues);
}

static int archive_add_intent(api_ctx *c, jv_str key, json_t *obj,
                              jv_intent *in)
{
    jv_str value;
    if (api_field_value(c, obj, "archive", &value))
        return -1;
    in->op.kind = JV_OP_ARCHIVE_ADD;
    in->op.add.key = key;
    in->op.add.value = value;
    in->op.add.stamp = api_stamp(c);
    return 0;
}

static json_t *archive_result(api_ctx *c, const jv_intent *in)
{
    /* The add replaced every value of the key this node had seen: the
     * entry as GET gives it now, its one value in "all". */
    json_t *e = archive_json(in->op.add.key, in->op.add.value,
                             &c->node->origin.pk, in->op.add.stamp, 1);
    json_t *one = json_pack(
        "[{s:o,s:o,s:I,s:o}]", "value", api_value(in->op.add.value), "added_by",
        api_id(&c->node->origin.pk), "stamp", (json_int_t)in->op.add.stamp,
        "added_at", api_time(jv_hlc_ms(in->op.add.stamp)));
    if (!e || !one) {
        json_decref(e);
        json_decref(one);
        return NULL;
    }
    if (json_object_set_new(e, "all", one) != 0) { /* one is released */
        json_decref(e);
        return NULL;
    }
    return e;
}

static void archive_add_done(jv_write_req *r)
{
    api_ctx *c = r->arg;
    if (!api_write_ok(c))
        return;
    api_reply(c, 200, archive_result(c, &c->intents[0]));
}

void api_archive_add(api_ctx *c)
{
    jv_str key;
    if (path_name(c, JV_OP_MAX_KEY, "an archive key", &key))
        return;
    if (!c->body) {
        api_error(c, 400, "invalid_json", "a JSON object body is required");
        return;
    }
    jv_intent *in = api_intents(c, 1);
    if (!in) {
        api_fail(c, JV_ENOMEM, "archive");
        return;
    }
    if (archive_add_intent(c, key, c->body, in))
        return;
    api_submit(c, archive_add_done);
}

static void archive_rm_done(jv_write_req *r)
{
    api_ctx *c = r->arg;
    if (!api_write_ok(c))
        return;
    api_reply_empty(c, 204);
}

void api_archive_rm(api_ctx *c)
{
    jv_str key;
    if (path_name(c, JV_OP_MAX_KEY, "an archive key", &key))
        return;
    jv_intent *in = api_intents(c, 1);
    if (!in) {
        api_fail(c, JV_ENOMEM, "archive");
        return;
    }
    in->op.kind = JV_OP_ARCHIVE_RM;
    in->op.rm.key = key;
    api_submit(c, archive_rm_done);
}

static jv_err one_archive(void *arg, const jv_archive_row *r)
{
    *(json_t **)arg =
        archive_json(r->key, r->value, &r->dot.id, r->stamp, r->nvalues);
    return JV_OK;
}

/* Appends one of the key's values to the "all" array. */
static jv_err all_archive(void *arg, const jv_archive_value *v)
{
    json_t *j =
        json_pack("{s:o,s:o,s:I,s:o}", "value", api_value(v->value), "added_by",
                  api_id(&v->dot.id), "stamp", (json_int_t)v->stamp, "added_at",
                  api_time(jv_hlc_ms(v->stamp)));
    return j && json_array_append_new(arg, j) == 0 ? JV_OK : JV_ENOMEM;
}

static jv_err archive_read(jv_store *st, api_ctx *c)
{
    json_t **slot = c->extra, *all = NULL;
    jv_str key = cap_str(c, 0);
    /* Two statements, one state: a commit between them would pair the
     * latest value of one state with the values of another. */
    jv_err err = jv_store_read_begin(st);
    if (err)
        return err;
    err = jv_store_archive_get(st, key, one_archive, &slot[0]);
    /* Every value, not only the latest: after concurrent adds a reader
     * sees all that the key holds, as the export shows them. */
    if (!err && !(all = json_array()))
        err = JV_ENOMEM;
    if (!err)
        err = jv_store_archive_key_values(st, key, all_archive, all);
    jv_store_read_end(st);
    if (!err && json_object_set_new(slot[0], "all", all) != 0)
        err = JV_ENOMEM;
    else if (err)
        json_decref(all);
    return err ? err : json_slot_render(c);
}

static void archive_read_done(api_ctx *c, jv_err err, const char *msg)
{
    api_reply_rendered(c, err, msg, "archive entry");
}

void api_archive_get(api_ctx *c)
{
    jv_str key;
    if (path_name(c, JV_OP_MAX_KEY, "an archive key", &key) ||
        api_cached(c, JV_RC_ARCHIVE) || json_slot(c, "archive entry"))
        return;
    api_read(c, archive_read, archive_read_done);
}

static jv_err add_archive(void *arg, const jv_archive_row *r)
{
    page_acc *a = arg;
    if (page_take(a, r->key))
        page_put(a, archive_json(r->key, r->value, &r->dot.id, r->stamp,
                                 r->nvalues));
    return jv_buf_err(a->out);
}

static jv_err fill_archive(jv_store *st, jv_str prefix, jv_str after,
                           size_t limit, page_acc *a)
{
    return jv_store_archive_list(st, prefix, after, limit, add_archive, a);
}

void api_archive_list(api_ctx *c)
{
    list_route(c, "entries", "archive", fill_archive);
}

/* -- several writes at once ----------------------------------------------- */

#define BATCH_MAX_OPS 1000

typedef enum {
    B_COUNTER,
    B_AUDIT,
    B_CONFIG,
    B_ADD,
    B_RM
} bop;

typedef struct {
    bop *kind;  /* per op */
    size_t *at; /* per op: its first intent */
    size_t nops;
} batch_map;

static void batch_map_free(void *p)
{
    batch_map *m = p;
    if (!m)
        return;
    jv_free(m->kind);
    jv_free(m->at);
    jv_free(m);
}

static void batch_done(jv_write_req *r)
{
    api_ctx *c = r->arg;
    batch_map *m = c->extra;
    if (c->wr.err) {
        api_fail_commit(c);
        return;
    }
    if (c->wr.group.result) {
        /* Report the op, not the intent, that failed. */
        size_t op = 0;
        for (size_t i = 0; i < m->nops; i++)
            if (m->at[i] <= c->wr.group.failed_index)
                op = i;
        char what[48];
        snprintf(what, sizeof(what), "op %zu", op);
        api_fail(c, c->wr.group.result, what);
        return;
    }
    json_t *results = json_array();
    for (size_t i = 0; i < m->nops; i++) {
        const jv_intent *in = &c->intents[m->at[i]];
        json_t *o = NULL;
        switch (m->kind[i]) {
        case B_COUNTER:
            o = counter_result(in->op.counter.name, &in->res.counter_total);
            break;
        case B_AUDIT:
            o = audit_result(c, in);
            break;
        case B_CONFIG:
            o = config_result(c, in);
            break;
        case B_ADD:
            o = archive_result(c, in);
            break;
        case B_RM:
            o = json_pack("{s:o,s:b}", "key", api_jstr(in->op.rm.key),
                          "removed", 1);
            break;
        }
        json_array_append_new(results, o);
    }
    api_reply(c, 200, json_pack("{s:o}", "results", results));
}

/* A key or name field of an op; 0 or answered 400 (naming the op). */
static int op_name(api_ctx *c, json_t *op, const char *field, size_t max,
                   jv_str *out)
{
    json_t *v = json_object_get(op, field);
    jv_str s = {v && json_is_string(v) ? json_string_value(v) : NULL,
                v && json_is_string(v) ? json_string_length(v) : 0};
    if (!s.p || s.n == 0 || s.n > max || !jv_str_valid_utf8(s)) {
        api_error(c, 400, "invalid_field",
                  "'%s' must be a string of 1 to %zu bytes", field, max);
        return -1;
    }
    *out = s;
    return 0;
}

void api_batch(api_ctx *c)
{
    json_t *ops = c->body ? json_object_get(c->body, "ops") : NULL;
    size_t n = ops && json_is_array(ops) ? json_array_size(ops) : 0;
    if (!ops || !json_is_array(ops) || n == 0 || n > BATCH_MAX_OPS) {
        api_error(c, 400, "invalid_field",
                  "'ops' must be an array of 1 to %d writes", BATCH_MAX_OPS);
        return;
    }
    batch_map *m = jv_calloc(1, sizeof(*m));
    if (m) {
        c->extra = m;
        c->extra_free = batch_map_free;
        m->kind = jv_calloc(n, sizeof(*m->kind));
        m->at = jv_calloc(n, sizeof(*m->at));
    }
    /* config.set needs two intents (the register and its audit entry). */
    jv_intent *in = api_intents(c, 2 * n);
    if (!m || !m->kind || !m->at || !in) {
        api_fail(c, JV_ENOMEM, "batch");
        return;
    }
    m->nops = n;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *op = json_array_get(ops, i);
        const char *name = json_is_object(op)
                               ? json_string_value(json_object_get(op, "op"))
                               : NULL;
        jv_str key;
        m->at[i] = k;
        /* Every error from here on names op i. */
        c->op_at = i + 1;
        if (!name) {
            api_error(c, 400, "invalid_field",
                      "must be an object with an 'op' string");
            return;
        }
        if (!strcmp(name, "counter.increment")) {
            m->kind[i] = B_COUNTER;
            if (op_name(c, op, "name", JV_OP_MAX_NAME, &key) ||
                counter_intent(c, json_object_get(op, "by"), key, &in[k++]))
                return;
        } else if (!strcmp(name, "audit.append")) {
            m->kind[i] = B_AUDIT;
            if (audit_intent(c, op, &in[k++]))
                return;
        } else if (!strcmp(name, "config.set")) {
            m->kind[i] = B_CONFIG;
            if (op_name(c, op, "key", JV_OP_MAX_KEY, &key) ||
                config_intents(c, key, op, &in[k]))
                return;
            k += 2;
        } else if (!strcmp(name, "archive.add")) {
            m->kind[i] = B_ADD;
            if (op_name(c, op, "key", JV_OP_MAX_KEY, &key) ||
                archive_add_intent(c, key, op, &in[k++]))
                return;
        } else if (!strcmp(name, "archive.remove")) {
            m->kind[i] = B_RM;
            if (op_name(c, op, "key", JV_OP_MAX_KEY, &key))
                return;
            in[k].op.kind = JV_OP_ARCHIVE_RM;
            in[k++].op.rm.key = key;
        } else {
            api_error(c, 400, "invalid_field", "unknown op '%s'", name);
            return;
        }
    }
    c->op_at = 0;
    c->nintents = k;
    api_submit(c, batch_done);
}
