/*
 * cmd_counters.c - counters ls, get, incr.
 */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "args.h"
#include "gcounter.h"
#include "client.h"
#include "output.h"
#include "table.h"

/* Largest |by| the API accepts: 2^53, exact in a double. */
#define MAX_INCREMENT 9007199254740992LL

/* A total or value as the API gives it: a JSON number within +/-2^53, a
 * string of decimal digits beyond (docs/api.md). Printed as it is. */
static const char *count_text(const json_t *obj, const char *key, char *out,
                              size_t outlen)
{
    const json_t *v = json_object_get(obj, key);
    if (json_is_string(v)) {
        snprintf(out, outlen, "%s", json_string_value(v));
        return out;
    }
    return jvc_int_text(obj, key, out, outlen);
}

static int run_ls(jvc_ctx *ctx, int argc, char **argv)
{
    json_t *list = NULL;
    jvc_table *t = NULL;
    const char *prefix = NULL;
    int rc = jvc_list_prefixed(ctx, argc, argv, "/v1/counters", "counters",
                               &list, &prefix);
    if (rc != 0 || list == NULL)
        return rc;
    static const char *const h[] = {"NAME", "TOTAL"};
    if ((t = jvc_table_new(2, h)) == NULL) {
        rc = jvc_oom();
        goto out;
    }
    jvc_table_right(t, 1);
    size_t i;
    json_t *it;
    json_array_foreach(list, i, it)
    {
        char total[JV_COUNT_TEXT];
        const char *row[2] = {jvc_str(it, "name", "?"),
                              count_text(it, "total", total, sizeof total)};
        if (!jvc_table_add(t, row)) {
            rc = jvc_oom();
            goto out;
        }
    }
out:
    rc = jvc_table_end(t, rc,
                       prefix ? "no counters with that prefix" : "no counters");
    json_decref(list);
    return rc;
}

const jvc_cmd jvc_cmd_counters_ls = {
    .group = "counters",
    .name = "ls",
    .args = "[--prefix PREFIX]",
    .summary = "List counters and their totals",
    .help = "Options:\n"
            "  -p, --prefix PREFIX  only counters whose name starts with "
            "PREFIX\n",
    .run = run_ls,
};

static int run_get(jvc_ctx *ctx, int argc, char **argv)
{
    jvc_client *c;
    jvc_resp r = {0};
    jvc_table *t = NULL;
    char *pos[1], *name = NULL, *path = NULL, *what = NULL;
    int npos, rc;
    if ((rc = jvc_parse_args(ctx->cmd, argc, argv, NULL, 0, pos, 1, 1,
                             &npos)) != 0 ||
        (rc = jvc_ctx_client(ctx, &c)) != 0)
        return rc;
    /* "/" is escaped: the name is one path segment before "/increment". */
    if ((name = jvc_escape(pos[0], false)) == NULL ||
        (path = jvc_strf("/v1/counters/%s", name)) == NULL ||
        (what = jvc_strf("counters get %s", pos[0])) == NULL) {
        rc = jvc_oom();
        goto out;
    }
    if ((rc = jvc_call(c, what, "GET", path, NULL, &r)) != 0)
        goto out;
    if (ctx->g->json) {
        rc = jvc_print_json(r.json);
        goto out;
    }
    char total[JV_COUNT_TEXT];
    printf("%s = %s\n", pos[0],
           count_text(r.json, "total", total, sizeof total));
    static const char *const h[] = {"REPLICA", "INCREMENTS", "DECREMENTS",
                                    "VALUE"};
    if ((t = jvc_table_new(4, h)) == NULL) {
        rc = jvc_oom();
        goto out;
    }
    for (size_t k = 1; k < 4; k++)
        jvc_table_right(t, k);
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(r.json, "shares"), i, s)
    {
        char id[JVC_SHORT_ID + 1], inc[32], dec[32], val[JV_COUNT_TEXT];
        const char *row[4] = {
            jvc_short_id(jvc_str(s, "replica", "?"), id, sizeof id),
            jvc_int_text(s, "increments", inc, sizeof inc),
            jvc_int_text(s, "decrements", dec, sizeof dec),
            count_text(s, "value", val, sizeof val)};
        if (!jvc_table_add(t, row)) {
            rc = jvc_oom();
            goto out;
        }
    }
    if (!jvc_table_print(t, stdout))
        rc = jvc_oom();
out:
    jvc_table_free(t);
    jvc_resp_fini(&r);
    jv_free(name);
    jv_free(path);
    jv_free(what);
    return rc;
}

const jvc_cmd jvc_cmd_counters_get = {
    .group = "counters",
    .name = "get",
    .args = "NAME",
    .summary = "Show a counter's total and each replica's share",
    .help = "Replica ids are shortened to 12 characters; --json gives them\n"
            "in full. Exits 1 when no replica has touched the counter.\n",
    .run = run_get,
};

static int run_incr(jvc_ctx *ctx, int argc, char **argv)
{
    jvc_client *c;
    jvc_resp r = {0};
    json_t *body = NULL;
    char *pos[2], *name = NULL, *path = NULL, *what = NULL;
    int npos, rc;
    long long by = 1;
    if ((rc = jvc_parse_args(ctx->cmd, argc, argv, NULL, 0, pos, 1, 2,
                             &npos)) != 0)
        return rc;
    if (npos == 2 &&
        (!jvc_parse_int(pos[1], -MAX_INCREMENT, MAX_INCREMENT, &by) || by == 0))
        return jvc_usage_error(ctx->cmd,
                               "BY must be a non-zero integer with |BY| <= "
                               "2^53, not '%s'",
                               pos[1]);
    if ((rc = jvc_ctx_client(ctx, &c)) != 0)
        return rc;
    if ((name = jvc_escape(pos[0], false)) == NULL ||
        (path = jvc_strf("/v1/counters/%s/increment", name)) == NULL ||
        (what = jvc_strf("counters incr %s", pos[0])) == NULL ||
        (body = json_pack("{s:I}", "by", (json_int_t)by)) == NULL) {
        rc = jvc_oom();
        goto out;
    }
    if ((rc = jvc_call(c, what, "POST", path, body, &r)) != 0)
        goto out;
    if (ctx->g->json) {
        rc = jvc_print_json(r.json);
    } else {
        char total[JV_COUNT_TEXT];
        printf("%s = %s\n", pos[0],
               count_text(r.json, "total", total, sizeof total));
    }
out:
    json_decref(body);
    jvc_resp_fini(&r);
    jv_free(name);
    jv_free(path);
    jv_free(what);
    return rc;
}

const jvc_cmd jvc_cmd_counters_incr = {
    .group = "counters",
    .name = "incr",
    .args = "NAME [BY]",
    .summary = "Add BY (default 1, negative to decrement) to a counter",
    .help = "BY is a non-zero integer, |BY| <= 2^53. Prints this node's total\n"
            "after the increment.\n",
    .run = run_incr,
};
