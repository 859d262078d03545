/*
 * cmd_watch.c - watch: the node's changes as they happen (GET /v1/watch,
 * followed by watch.h).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "args.h"
#include "client.h"
#include "output.h"
#include "watch.h"

static const char *const kinds[] = {"counter", "audit", "config", "archive",
                                    "node"};

/* Checks a --kind list (comma-separated names). */
static bool kinds_ok(const char *list)
{
    const char *p = list;
    for (;;) {
        size_t n = strcspn(p, ",");
        bool ok = false;
        for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
            ok = ok || (strlen(kinds[i]) == n && !strncmp(p, kinds[i], n));
        if (!ok)
            return false;
        if (!p[n])
            return true;
        p += n + 1;
    }
}

/* JSON text of a member, compact ("" when absent). */
static char *member_text(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!v)
        return jvc_strf("%s", "");
    char *s = jvc_json_compact(v);
    return s ? s : jvc_strf("%s", "");
}

/* One human line: TIME KIND KEY WHAT (ORIGIN:SEQ). */
static int print_human(const jvc_watch_event *e)
{
    const json_t *d = e->json;
    char when[64], origin[JVC_SHORT_ID + 1], what[512];
    const char *key = "";
    char *v = NULL;
    jvc_time_human(json_object_get(d, "time"), when, sizeof when);
    jvc_short_id(jvc_str(d, "origin", "?"), origin, sizeof origin);
    if (!strcmp(e->event, "counter")) {
        key = jvc_str(d, "name", "");
        json_t *delta = json_object_get(d, "delta");
        if (json_is_integer(delta))
            snprintf(what, sizeof what, "%+" JSON_INTEGER_FORMAT,
                     json_integer_value(delta));
        else
            snprintf(what, sizeof what, "changed");
    } else if (!strcmp(e->event, "config")) {
        key = jvc_str(d, "key", "");
        v = member_text(d, "value");
        snprintf(what, sizeof what, "= %s", v ? v : "");
    } else if (!strcmp(e->event, "archive")) {
        key = jvc_str(d, "key", "");
        v = member_text(d, "value");
        snprintf(what, sizeof what, "%s%s%s", jvc_str(d, "op", ""),
                 json_object_get(d, "value") ? " " : "", v ? v : "");
    } else if (!strcmp(e->event, "audit")) {
        key = jvc_str(d, "target", "");
        snprintf(what, sizeof what, "%s by %s%s%s", jvc_str(d, "action", ""),
                 jvc_str(d, "actor", ""), *jvc_str(d, "detail", "") ? ": " : "",
                 jvc_str(d, "detail", ""));
    } else {
        const char *ev = jvc_str(d, "event", "");
        key = jvc_str(d, "addr", jvc_str(d, "peer", ""));
        if (json_object_get(d, "state"))
            snprintf(what, sizeof what,
                     "%s %s (%" JSON_INTEGER_FORMAT "/%" JSON_INTEGER_FORMAT
                     ")",
                     ev, jvc_str(d, "state", ""),
                     json_integer_value(json_object_get(d, "done")),
                     json_integer_value(json_object_get(d, "total")));
        else if (json_object_get(d, "trusted"))
            snprintf(what, sizeof what, "%s: %s", ev,
                     json_is_true(json_object_get(d, "trusted")) ? "trusted"
                                                                 : "untrusted");
        else
            snprintf(what, sizeof what, "%s", ev);
    }
    printf("%s  %-7s  %s  %s  (%s:%" JSON_INTEGER_FORMAT ")\n", when, e->event,
           *key ? key : "-", what, origin,
           json_integer_value(json_object_get(d, "seq")));
    jv_free(v);
    return JVC_EXIT_OK;
}

typedef struct {
    bool json;
} watch_args;

static int on_event(void *arg, const jvc_watch_event *e)
{
    watch_args *a = arg;
    if (!e->json)
        return JVC_EXIT_OK; /* not ours to show */
    if (a->json)
        puts(e->data);
    else
        print_human(e);
    if (fflush(stdout) != 0)
        return jvc_finish_stdout(JVC_EXIT_OK);
    return JVC_EXIT_OK;
}

static int on_expired(void *arg)
{
    (void)arg;
    /* Nothing to re-read for a plain watch: the message said it. */
    return JVC_EXIT_OK;
}

static int run_watch(jvc_ctx *ctx, int argc, char **argv)
{
    jvc_client *c;
    const char *kind = NULL, *prefix = NULL, *cursor = NULL;
    char *pos[1];
    int npos, rc;
    const jvc_opt opts[] = {{"kind", 'k', &kind, NULL},
                            {"prefix", 'p', &prefix, NULL},
                            {"cursor", 0, &cursor, NULL}};
    if ((rc = jvc_parse_args(ctx->cmd, argc, argv, opts, 3, pos, 0, 0,
                             &npos)) != 0)
        return rc;
    if (kind && !kinds_ok(kind))
        return jvc_usage_error(ctx->cmd,
                               "--kind wants counter, audit, config, archive "
                               "or node (comma-separated)");
    if (cursor && (!*cursor || strspn(cursor, "0123456789") != strlen(cursor) ||
                   strlen(cursor) > 20))
        return jvc_usage_error(ctx->cmd, "--cursor wants an event id");
    if ((rc = jvc_ctx_client(ctx, &c)) != 0)
        return rc;
    watch_args a = {ctx->g->json};
    jvc_watch w;
    memset(&w, 0, sizeof w);
    w.who = "watch";
    w.kinds = kind;
    w.prefix = prefix;
    if (cursor)
        snprintf(w.cursor, sizeof w.cursor, "%s", cursor);
    w.on_event = on_event;
    w.on_expired = on_expired;
    w.arg = &a;
    return jvc_watch_run(c, &w);
}

const jvc_cmd jvc_cmd_watch = {
    .group = "watch",
    .name = NULL,
    .args = "[--kind K[,K...]] [--prefix P] [--cursor ID]",
    .summary = "Print the node's changes as they happen",
    .help =
        "Options:\n"
        "  -k, --kind K       only these kinds: counter, audit, config,\n"
        "                     archive, node (comma-separated; default all)\n"
        "  -p, --prefix P     only counters, config and archive keys and\n"
        "                     audit targets starting with P\n"
        "  --cursor ID        start after this event (an id --json\n"
        "                     printed) instead of now\n"
        "\n"
        "Prints one line per change, local or replicated: time, kind,\n"
        "key, what changed, and origin:seq. With --json, one JSON object\n"
        "per line (docs/api.md, \"Change streams\"). Runs until SIGINT or\n"
        "SIGTERM (exit 0). When the node restarts or cannot be reached it\n"
        "retries with backoff and resumes where it stopped, nothing lost\n"
        "or repeated; if the node's log no longer holds that point it says\n"
        "so and goes on from the present.\n",
    .run = run_watch,
};
