/*
 * cmd_audit.c - audit tail, query, add.
 *
 * `audit tail --follow` follows the node's change stream (watch.h, GET
 * /v1/watch?kind=audit): once the stream has started, the newest entries
 * are listed (a second connection), and every entry the stream brings
 * that the listing did not show is printed as it comes, in the order the
 * node applied them. The stream's cursor resumes it after the node was
 * unreachable, rate limited us or could not serve (watch.h retries with
 * backoff instead of exiting). If the node's log no longer holds that
 * cursor, the entries since the newest time shown are read again (a
 * poll, dropping those already shown at that millisecond). SIGINT or
 * SIGTERM ends it with exit 0.
 */
#include <curl/curl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "args.h"
#include "client.h"
#include "output.h"
#include "table.h"
#include "watch.h"

#define TAIL_DEFAULT 10
#define TAIL_MAX     100000
#define DETAIL_CHARS 60

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Widths of a --follow stream's columns: every poll prints a table of
 * its own, and its rows must line up with the first one's header. TIME
 * is as wide as the local time format makes it; longer cells are cut. */
static const size_t follow_width[] = {23, 16, 16, 24, 40, 0};

static jvc_table *entry_table(bool stream)
{
    static const char *const h[] = {"TIME",   "ACTOR",  "ACTION",
                                    "TARGET", "DETAIL", "ID"};
    jvc_table *t = jvc_table_new(6, h);
    if (t == NULL)
        return NULL;
    jvc_table_max_width(t, 4, DETAIL_CHARS);
    /* A cut cell keeps max characters and ends in "...". */
    for (size_t i = 1; stream && i < 6; i++) {
        jvc_table_min_width(t, i, follow_width[i] ? follow_width[i] + 3 : 0);
        jvc_table_max_width(t, i, follow_width[i]);
    }
    if (stream)
        jvc_table_min_width(t, 0, follow_width[0]);
    return t;
}

static bool add_entry(jvc_table *t, const json_t *e)
{
    char when[64], id[JVC_SHORT_ID + 32], origin[JVC_SHORT_ID + 1];
    snprintf(id, sizeof id, "%s:%" JSON_INTEGER_FORMAT,
             jvc_short_id(jvc_str(e, "origin", "?"), origin, sizeof origin),
             json_integer_value(json_object_get(e, "seq")));
    const char *row[6] = {
        jvc_time_human(json_object_get(e, "time"), when, sizeof when),
        jvc_str(e, "actor", "-"),
        jvc_str(e, "action", "-"),
        jvc_str(e, "target", ""),
        jvc_str(e, "detail", ""),
        id};
    return jvc_table_add(t, row);
}

/* Prints entries (oldest first): a table, or one compact JSON object per
 * line when `lines` (the --follow --json stream); a --follow table has
 * fixed column widths. */
static int print_entries(json_t *entries, bool json, bool lines, bool header)
{
    int rc = JVC_EXIT_OK;
    size_t i;
    json_t *e;
    if (json && !lines) {
        json_t *o = json_pack("{s:O}", "entries", entries);
        rc = o ? jvc_print_json(o) : jvc_oom();
        json_decref(o);
        return rc;
    }
    if (json) {
        json_array_foreach(entries, i, e)
        {
            char *s = jvc_json_compact(e);
            if (s == NULL)
                return jvc_oom();
            puts(s);
            jv_free(s);
        }
        return JVC_EXIT_OK;
    }
    jvc_table *t = entry_table(lines);
    if (t == NULL)
        return jvc_oom();
    if (!header)
        jvc_table_hide_header(t);
    json_array_foreach(entries, i, e)
    {
        if (!add_entry(t, e)) {
            rc = jvc_oom();
            break;
        }
    }
    if (rc == JVC_EXIT_OK && (jvc_table_rows(t) > 0 || header) &&
        !jvc_table_print(t, stdout))
        rc = jvc_oom();
    jvc_table_free(t);
    return rc;
}

/* Builds "/v1/audit?..." with the filters given. */
static char *audit_path(const char *order, const char *since, const char *until,
                        const char *actor, const char *action)
{
    jv_buf b;
    jv_buf_init(&b);
    jv_buf_append(&b, "/v1/audit", 9);
    const char *names[] = {"order", "since", "until", "actor", "action"};
    const char *vals[] = {order, since, until, actor, action};
    for (size_t i = 0; i < 5; i++)
        if (vals[i] != NULL)
            jvc_query_add(&b, names[i], vals[i]);
    jv_buf_append(&b, "", 1);
    if (jv_buf_err(&b) != JV_OK) {
        jv_buf_fini(&b);
        return NULL;
    }
    return (char *)b.data;
}

static int64_t entry_ms(const json_t *e)
{
    int64_t ms;
    return jvc_time_parse(jvc_str(e, "time", NULL), &ms) ? ms : INT64_MIN;
}

/* Remembers the newest time shown and the ids shown at that time. */
typedef struct {
    int64_t last_ms;
    json_t *ids_at_last; /* object used as a set */
} follow_state;

static bool seen(follow_state *s, const json_t *e)
{
    int64_t t = entry_ms(e);
    return t < s->last_ms ||
           (t == s->last_ms &&
            json_object_get(s->ids_at_last, jvc_str(e, "id", "")) != NULL);
}

static int remember(follow_state *s, const json_t *e)
{
    int64_t t = entry_ms(e);
    if (t > s->last_ms) {
        s->last_ms = t;
        json_object_clear(s->ids_at_last);
    }
    if (t == s->last_ms &&
        json_object_set_new(s->ids_at_last, jvc_str(e, "id", ""),
                            json_true()) != 0)
        return jvc_oom();
    return JVC_EXIT_OK;
}

/* Prints the entries of one page not shown yet, and remembers them. */
static int show_fresh(jvc_ctx *ctx, follow_state *s, const json_t *items)
{
    int rc = JVC_EXIT_OK;
    json_t *fresh = json_array();
    size_t i;
    json_t *e;
    if (fresh == NULL)
        return jvc_oom();
    json_array_foreach(items, i, e)
    {
        if (seen(s, e))
            continue;
        if (json_array_append(fresh, e) != 0) {
            rc = jvc_oom();
            break;
        }
        if ((rc = remember(s, e)) != JVC_EXIT_OK)
            break;
    }
    if (rc == JVC_EXIT_OK)
        rc = print_entries(fresh, ctx->g->json, true, false);
    json_decref(fresh);
    if (rc == JVC_EXIT_OK && fflush(stdout) != 0)
        rc = jvc_finish_stdout(JVC_EXIT_OK);
    return rc;
}

#define POLL_RETRY (-1)

/* One poll: every page of the entries at or after the newest time shown,
 * each printed as it comes, so that a poll cut short resumes where it
 * stopped. POLL_RETRY (with *why and *wait_s, -1 if the node named no
 * time) when the node is unreachable, rate limits us or cannot serve
 * now; else an exit code. */
static int poll_once(jvc_ctx *ctx, jvc_client *c, follow_state *s,
                     const char *actor, const char *action, char *why,
                     size_t whylen, long *wait_s)
{
    char since[32], *path = NULL, *cursor = NULL;
    jvc_resp r = {0};
    jv_buf url;
    int rc;
    jv_buf_init(&url);
    snprintf(since, sizeof since, "%" PRId64,
             s->last_ms == INT64_MIN ? 0 : s->last_ms);
    if ((path = audit_path("asc", since, NULL, actor, action)) == NULL)
        return jvc_oom();
    for (;;) {
        jv_buf_reset(&url);
        jv_buf_append(&url, path, strlen(path));
        if (cursor != NULL)
            jvc_query_add(&url, "cursor", cursor);
        jv_buf_append(&url, "", 1);
        jvc_resp_fini(&r);
        if (jv_buf_err(&url) != JV_OK) {
            rc = jvc_oom();
            break;
        }
        rc = jvc_http(c, "GET", (const char *)url.data, NULL, &r);
        if (rc == JVC_EXIT_UNREACHABLE) {
            snprintf(why, whylen, "cannot reach the node: %s",
                     jvc_client_error(c));
            *wait_s = -1;
            rc = POLL_RETRY;
            break;
        }
        if (rc != JVC_EXIT_OK)
            break;
        if (r.status == 429 || r.status >= 500) {
            snprintf(why, whylen, "%s (HTTP %ld)",
                     r.status == 429 ? "rate limited" : "the node cannot serve",
                     r.status);
            *wait_s = r.retry_after;
            rc = POLL_RETRY;
            break;
        }
        const json_t *items = json_object_get(r.json, "entries");
        if (r.status < 200 || r.status > 299 || !json_is_array(items)) {
            rc = jvc_fail(c, "audit tail", &r);
            break;
        }
        if ((rc = show_fresh(ctx, s, items)) != JVC_EXIT_OK)
            break;
        const char *next = jvc_str(r.json, "next_cursor", NULL);
        if (next == NULL)
            break;
        jv_free(cursor);
        if ((cursor = jvc_strf("%s", next)) == NULL) {
            rc = jvc_oom();
            break;
        }
    }
    jvc_resp_fini(&r);
    jv_buf_fini(&url);
    jv_free(cursor);
    jv_free(path);
    return rc;
}

/* An audit event of the stream as a GET /v1/audit item. */
static json_t *entry_of(const json_t *d)
{
    const char *origin = jvc_str(d, "origin", "");
    json_int_t seq = json_integer_value(json_object_get(d, "seq"));
    int64_t ms;
    char id[160];
    snprintf(id, sizeof id, "%s:%" JSON_INTEGER_FORMAT, origin, seq);
    if (!jvc_time_parse(jvc_str(d, "time", NULL), &ms))
        ms = 0;
    return json_pack(
        "{s:s,s:s,s:I,s:s,s:I,s:s,s:s,s:s,s:s}", "id", id, "origin", origin,
        "seq", seq, "time", jvc_str(d, "time", ""), "time_ms", (json_int_t)ms,
        "actor", jvc_str(d, "actor", ""), "action", jvc_str(d, "action", ""),
        "target", jvc_str(d, "target", ""), "detail", jvc_str(d, "detail", ""));
}

typedef struct {
    jvc_ctx *ctx;
    jvc_client *lister; /* the listing's own connection */
    follow_state *s;
    const char *actor, *action;
    long long n;
    json_t *listed; /* ids the listing showed (a set) */
    char *path;     /* the listing's route */
} tail_follow;

/* The newest n entries, newest first, into *out (a new reference).
 * POLL_RETRY (with why and *wait_s) when the node is unreachable, rate
 * limits us or cannot serve now; else an exit code. */
static int list_newest(tail_follow *t, json_t **out, char *why, size_t whylen,
                       long *wait_s)
{
    char *cursor = NULL;
    jvc_resp r = {0};
    jv_buf url;
    int rc = JVC_EXIT_OK;
    json_t *all = json_array();
    jv_buf_init(&url);
    *wait_s = -1;
    while (all && json_array_size(all) < (size_t)t->n) {
        jv_buf_reset(&url);
        jv_buf_append(&url, t->path, strlen(t->path));
        if (cursor)
            jvc_query_add(&url, "cursor", cursor);
        jv_buf_append(&url, "", 1);
        jvc_resp_fini(&r);
        if (jv_buf_err(&url)) {
            rc = jvc_oom();
            break;
        }
        rc = jvc_http(t->lister, "GET", (const char *)url.data, NULL, &r);
        if (rc == JVC_EXIT_UNREACHABLE) {
            snprintf(why, whylen, "cannot reach the node: %s",
                     jvc_client_error(t->lister));
            rc = POLL_RETRY;
            break;
        }
        if (rc != JVC_EXIT_OK)
            break;
        if (r.status == 429 || r.status >= 500) {
            snprintf(why, whylen, "%s (HTTP %ld)",
                     r.status == 429 ? "rate limited" : "the node cannot serve",
                     r.status);
            *wait_s = r.retry_after;
            rc = POLL_RETRY;
            break;
        }
        json_t *items = json_object_get(r.json, "entries");
        if (r.status != 200 || !json_is_array(items)) {
            rc = jvc_fail(t->lister, "audit tail", &r);
            break;
        }
        size_t i;
        json_t *e;
        json_array_foreach(items, i, e)
        {
            if (json_array_size(all) < (size_t)t->n)
                json_array_append(all, e);
        }
        const char *next = jvc_str(r.json, "next_cursor", NULL);
        jv_free(cursor);
        cursor = next ? jvc_strf("%s", next) : NULL;
        if (!cursor)
            break;
    }
    if (!all && rc == JVC_EXIT_OK)
        rc = jvc_oom();
    if (rc == JVC_EXIT_OK)
        *out = all;
    else
        json_decref(all);
    jvc_resp_fini(&r);
    jv_buf_fini(&url);
    jv_free(cursor);
    return rc;
}

/* The stream started: list the newest entries now, so that nothing
 * written meanwhile falls between the listing and the stream. A node
 * that cannot answer the listing yet is retried as the stream is. */
static int tail_start(void *arg, const char *cursor)
{
    tail_follow *t = arg;
    json_t *list = NULL, *ordered = json_array();
    int rc = JVC_EXIT_OK;
    long backoff = 0;
    bool said = false;
    (void)cursor;
    if (!ordered)
        return jvc_oom();
    while (t->n > 0) {
        char why[CURL_ERROR_SIZE + 64];
        long wait_s;
        rc = list_newest(t, &list, why, sizeof why, &wait_s);
        if (rc != POLL_RETRY)
            break;
        if (!said)
            jvc_err("audit tail: %s; retrying until it answers", why);
        said = true;
        backoff = backoff ? (backoff < 30 ? backoff * 2 : 30) : 1;
        if (!jvc_watch_pause(wait_s >= 1 ? wait_s : backoff)) {
            rc = JVC_EXIT_OK;
            goto out;
        }
    }
    if (said && rc == JVC_EXIT_OK)
        jvc_err("audit tail: the node answers again; following on");
    if (rc != JVC_EXIT_OK)
        goto out;
    if (t->n > 0) {
        /* Newest first from the node; shown oldest first, like tail(1). */
        for (size_t i = json_array_size(list); i-- > 0;) {
            json_t *e = json_array_get(list, i);
            if (json_array_append(ordered, e) != 0 ||
                json_object_set_new(t->listed, jvc_str(e, "id", ""),
                                    json_true()) != 0 ||
                (rc = remember(t->s, e)) != 0) {
                rc = rc ? rc : jvc_oom();
                goto out;
            }
        }
    }
    rc = print_entries(ordered, t->ctx->g->json, true, true);
    if (rc == JVC_EXIT_OK && fflush(stdout) != 0)
        rc = jvc_finish_stdout(JVC_EXIT_OK);
out:
    json_decref(list);
    json_decref(ordered);
    return rc;
}

static int tail_event(void *arg, const jvc_watch_event *e)
{
    tail_follow *t = arg;
    if (strcmp(e->event, "audit") != 0 || !e->json)
        return JVC_EXIT_OK;
    if ((t->actor && strcmp(jvc_str(e->json, "actor", ""), t->actor)) ||
        (t->action && strcmp(jvc_str(e->json, "action", ""), t->action)))
        return JVC_EXIT_OK;
    json_t *entry = entry_of(e->json), *one = json_array();
    int rc = JVC_EXIT_OK;
    if (!entry || !one || json_array_append(one, entry) != 0) {
        rc = jvc_oom();
    } else if (!json_object_get(t->listed, jvc_str(entry, "id", ""))) {
        if ((rc = remember(t->s, entry)) == JVC_EXIT_OK)
            rc = print_entries(one, t->ctx->g->json, true, false);
        if (rc == JVC_EXIT_OK && fflush(stdout) != 0)
            rc = jvc_finish_stdout(JVC_EXIT_OK);
    }
    json_decref(entry);
    json_decref(one);
    return rc;
}

/* The stream's cursor expired: read what came since the newest time
 * shown (watch.h said so on stderr). */
static int tail_expired(void *arg)
{
    tail_follow *t = arg;
    char why[CURL_ERROR_SIZE + 64];
    long wait_s;
    int rc = poll_once(t->ctx, t->lister, t->s, t->actor, t->action, why,
                       sizeof why, &wait_s);
    if (rc == POLL_RETRY) {
        jvc_err("audit tail: %s; some entries may not be shown", why);
        rc = JVC_EXIT_OK;
    }
    return rc;
}

/* Follows until SIGINT or SIGTERM (watch.h): a node that restarts, rate
 * limits us or cannot serve for a while is waited for, said once on
 * stderr, and followed again from where the stream stopped: nothing is
 * shown twice or skipped. */
static int follow(jvc_ctx *ctx, jvc_client *c, tail_follow *t)
{
    jvc_watch w;
    int rc;
    memset(&w, 0, sizeof w);
    w.who = "audit tail";
    w.kinds = "audit";
    w.on_event = tail_event;
    w.on_start = tail_start;
    w.on_expired = tail_expired;
    w.arg = t;
    rc = jvc_client_new(ctx->g, ctx->g->n_nodes > 0 ? ctx->g->nodes[0] : NULL,
                        &t->lister);
    if (rc != JVC_EXIT_OK)
        return rc;
    jvc_client_quiet(t->lister, true);
    return jvc_watch_run(c, &w);
}

static int run_tail(jvc_ctx *ctx, int argc, char **argv)
{
    jvc_client *c;
    json_t *list = NULL, *ordered = NULL;
    const char *n_arg = NULL, *actor = NULL, *action = NULL;
    bool follow_flag = false;
    char *pos[1], *path = NULL;
    int npos, rc;
    long long n = TAIL_DEFAULT;
    follow_state st = {INT64_MIN, NULL};
    const jvc_opt opts[] = {{"lines", 'n', &n_arg, NULL},
                            {"follow", 'f', NULL, &follow_flag},
                            {"actor", 0, &actor, NULL},
                            {"action", 0, &action, NULL}};
    if ((rc = jvc_parse_args(ctx->cmd, argc, argv, opts, 4, pos, 0, 0,
                             &npos)) != 0)
        return rc;
    if (n_arg != NULL && !jvc_parse_int(n_arg, 0, TAIL_MAX, &n))
        return jvc_usage_error(ctx->cmd, "-n wants a number from 0 to %d",
                               TAIL_MAX);
    if ((rc = jvc_ctx_client(ctx, &c)) != 0)
        return rc;
    if ((path = audit_path("desc", NULL, NULL, actor, action)) == NULL ||
        (ordered = json_array()) == NULL ||
        (st.ids_at_last = json_object()) == NULL) {
        rc = jvc_oom();
        goto out;
    }
    if (follow_flag) {
        /* -n 0 --follow: only what comes from now on. */
        tail_follow t = {ctx, NULL, &st, actor, action, n, json_object(), path};
        rc = t.listed ? follow(ctx, c, &t) : jvc_oom();
        json_decref(t.listed);
        jvc_client_free(t.lister);
        goto out;
    }
    if (n > 0) {
        if ((rc = jvc_get_all(c, "audit tail", path, "entries", (size_t)n,
                              &list)) != 0)
            goto out;
        /* Newest first from the node; shown oldest first, like tail(1). */
        for (size_t i = json_array_size(list); i-- > 0;)
            if (json_array_append(ordered, json_array_get(list, i)) != 0) {
                rc = jvc_oom();
                goto out;
            }
    }
    for (size_t i = 0; i < json_array_size(ordered); i++)
        if ((rc = remember(&st, json_array_get(ordered, i))) != 0)
            goto out;
    if ((rc = print_entries(ordered, ctx->g->json, follow_flag, true)) != 0)
        goto out;
out:
    json_decref(st.ids_at_last);
    json_decref(list);
    json_decref(ordered);
    jv_free(path);
    return rc;
}

const jvc_cmd jvc_cmd_audit_tail = {
    .group = "audit",
    .name = "tail",
    .args = "[-n N] [--follow] [--actor NAME] [--action ACTION]",
    .summary = "Show the newest audit entries, oldest first",
    .help = "Options:\n"
            "  -n, --lines N      how many entries (default 10)\n"
            "  -f, --follow       keep printing new entries as the node\n"
            "                     applies them (its change stream) until\n"
            "                     interrupted; exits 0 on SIGINT or\n"
            "                     SIGTERM. A node that restarts or rate\n"
            "                     limits is retried with backoff, and the\n"
            "                     stream goes on where it stopped\n"
            "  --actor NAME       only entries by this actor (key name)\n"
            "  --action ACTION    only entries with this action\n"
            "\n"
            "With --json: {\"entries\":[...]}; with --json --follow, one JSON\n"
            "object per line, so that a script can read them as they come.\n",
    .run = run_tail,
};

static int run_query(jvc_ctx *ctx, int argc, char **argv)
{
    jvc_client *c;
    json_t *list = NULL;
    const char *since = NULL, *until = NULL, *actor = NULL, *action = NULL,
               *limit = NULL;
    char *pos[1], *path = NULL;
    char since_ms[32], until_ms[32];
    int npos, rc;
    long long max = 0;
    const jvc_opt opts[] = {{"since", 0, &since, NULL},
                            {"until", 0, &until, NULL},
                            {"actor", 0, &actor, NULL},
                            {"action", 0, &action, NULL},
                            {"limit", 'n', &limit, NULL}};
    if ((rc = jvc_parse_args(ctx->cmd, argc, argv, opts, 5, pos, 0, 0,
                             &npos)) != 0)
        return rc;
    /* The node takes milliseconds or RFC 3339; durations are ours, so
     * every form is turned into milliseconds here. */
    const char *raw[2] = {since, until};
    char *conv[2] = {since_ms, until_ms};
    for (size_t i = 0; i < 2; i++) {
        int64_t ms;
        if (raw[i] == NULL)
            continue;
        if (!jvc_time_arg(raw[i], now_ms(), &ms))
            return jvc_usage_error(
                ctx->cmd,
                "--%s: '%s' is not a time (RFC 3339 such as "
                "2026-11-21T09:30:00Z, milliseconds since 1970, or a "
                "duration ago such as 15m, 2h, 7d)",
                i == 0 ? "since" : "until", raw[i]);
        snprintf(conv[i], 32, "%" PRId64, ms);
    }
    if (limit != NULL && !jvc_parse_int(limit, 1, 1000000000, &max))
        return jvc_usage_error(ctx->cmd, "--limit wants a positive number");
    if ((rc = jvc_ctx_client(ctx, &c)) != 0)
        return rc;
    if ((path = audit_path(NULL, since ? since_ms : NULL,
                           until ? until_ms : NULL, actor, action)) == NULL) {
        rc = jvc_oom();
        goto out;
    }
    if ((rc = jvc_get_all(c, "audit query", path, "entries", (size_t)max,
                          &list)) != 0)
        goto out;
    if (!ctx->g->json && json_array_size(list) == 0)
        puts("no matching entries");
    else
        rc = print_entries(list, ctx->g->json, false, true);
out:
    json_decref(list);
    jv_free(path);
    return rc;
}

const jvc_cmd jvc_cmd_audit_query = {
    .group = "audit",
    .name = "query",
    .args = "[--since T] [--until T] [--actor NAME] [--action ACTION] "
            "[--limit N]",
    .summary = "Find audit entries by time range, actor and action",
    .help = "Options:\n"
            "  --since T        entries at or after T\n"
            "  --until T        entries before T\n"
            "  --actor NAME     only entries by this actor (key name)\n"
            "  --action ACTION  only entries with this action\n"
            "  -n, --limit N    at most N entries (default: all)\n"
            "\n"
            "T is an RFC 3339 time (2026-11-21T09:30:00Z), milliseconds since\n"
            "1970, or a duration before now: 90s, 15m, 2h, 7d. Oldest first.\n",
    .run = run_query,
};

static int run_add(jvc_ctx *ctx, int argc, char **argv)
{
    jvc_client *c;
    jvc_resp r = {0};
    json_t *body = NULL;
    const char *target = NULL, *detail = NULL;
    char *pos[1];
    int npos, rc;
    const jvc_opt opts[] = {{"target", 't', &target, NULL},
                            {"detail", 'd', &detail, NULL}};
    if ((rc = jvc_parse_args(ctx->cmd, argc, argv, opts, 2, pos, 1, 1,
                             &npos)) != 0 ||
        (rc = jvc_ctx_client(ctx, &c)) != 0)
        return rc;
    body = json_pack("{s:s}", "action", pos[0]);
    if (body == NULL ||
        (target &&
         json_object_set_new(body, "target", json_string(target)) != 0) ||
        (detail &&
         json_object_set_new(body, "detail", json_string(detail)) != 0)) {
        rc = jvc_oom();
        goto out;
    }
    if ((rc = jvc_call(c, "audit add", "POST", "/v1/audit", body, &r)) != 0)
        goto out;
    if (ctx->g->json) {
        rc = jvc_print_json(r.json);
    } else {
        json_t *one = json_pack("[O]", r.json);
        rc = one ? print_entries(one, false, false, true) : jvc_oom();
        json_decref(one);
    }
out:
    json_decref(body);
    jvc_resp_fini(&r);
    return rc;
}

const jvc_cmd jvc_cmd_audit_add = {
    .group = "audit",
    .name = "add",
    .args = "ACTION [--target TARGET] [--detail DETAIL]",
    .summary = "Append an entry to the audit log",
    .help = "Options:\n"
            "  -t, --target TARGET  what the action was done to\n"
            "  -d, --detail DETAIL  free text\n"
            "\n"
            "The actor is the name of the API key used.\n",
    .run = run_add,
};
