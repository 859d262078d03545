/*
 * cmd_archive.c - archive ls, get, add, rm: the node's add-wins set of
 * keyed entries.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "args.h"
#include "client.h"
#include "output.h"
#include "table.h"

#define VALUE_CHARS 50

static int run_ls(jvc_ctx *ctx, int argc, char **argv)
{
    json_t *list = NULL;
    jvc_table *t = NULL;
    const char *prefix = NULL;
    int rc = jvc_list_prefixed(ctx, argc, argv, "/v1/archive", "entries", &list,
                               &prefix);
    if (rc != 0 || list == NULL)
        return rc;
    static const char *const h[] = {"KEY", "VALUE", "VALUES", "ADDED BY",
                                    "ADDED AT"};
    if ((t = jvc_table_new(5, h)) == NULL) {
        rc = jvc_oom();
        goto out;
    }
    jvc_table_max_width(t, 1, VALUE_CHARS);
    jvc_table_right(t, 2);
    size_t i;
    json_t *it;
    json_array_foreach(list, i, it)
    {
        char by[JVC_SHORT_ID + 1], at[64], n[32];
        char *value = jvc_json_compact(json_object_get(it, "value"));
        const char *row[5] = {
            jvc_str(it, "key", "?"), value,
            jvc_int_text(it, "values", n, sizeof n),
            jvc_short_id(jvc_str(it, "added_by", "-"), by, sizeof by),
            jvc_time_human(json_object_get(it, "added_at"), at, sizeof at)};
        bool ok = value != NULL && jvc_table_add(t, row);
        jv_free(value);
        if (!ok) {
            rc = jvc_oom();
            goto out;
        }
    }
out:
    rc = jvc_table_end(t, rc,
                       prefix ? "no archive entries with that prefix"
                              : "no archive entries");
    json_decref(list);
    return rc;
}

const jvc_cmd jvc_cmd_archive_ls = {
    .group = "archive",
    .name = "ls",
    .args = "[--prefix PREFIX]",
    .summary = "List archive entries",
    .help = "Options:\n"
            "  -p, --prefix PREFIX  only keys that start with PREFIX\n"
            "\n"
            "VALUE is the latest value of the key (cut at 50 characters);\n"
            "VALUES counts the values it holds after concurrent adds on\n"
            "different nodes.\n",
    .run = run_ls,
};

static int cmp_stamp_desc(const void *a, const void *b)
{
    json_int_t x = json_integer_value(
                   json_object_get(*(json_t *const *)a, "stamp")),
               y = json_integer_value(
                   json_object_get(*(json_t *const *)b, "stamp"));
    return x < y ? 1 : x > y ? -1 : 0;
}

/* After concurrent adds a key holds several values: all of them, newest
 * first, as a table under the entry. */
static int print_all_values(const json_t *all)
{
    static const char *const h[] = {"VALUE", "ADDED BY", "ADDED AT", "STAMP"};
    size_t n = json_array_size(all);
    int rc = JVC_EXIT_OK;
    json_t **v = jv_calloc(n ? n : 1, sizeof *v);
    jvc_table *t = jvc_table_new(4, h);
    if (v == NULL || t == NULL) {
        rc = jvc_oom();
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        v[i] = json_array_get(all, i);
    qsort(v, n, sizeof *v, cmp_stamp_desc);
    for (size_t i = 0; i < n && rc == JVC_EXIT_OK; i++) {
        char at[64], stamp[32];
        char *value = jvc_json_compact(json_object_get(v[i], "value"));
        const char *row[4] = {
            value, jvc_str(v[i], "added_by", "-"),
            jvc_time_human(json_object_get(v[i], "added_at"), at, sizeof at),
            jvc_int_text(v[i], "stamp", stamp, sizeof stamp)};
        if (value == NULL || !jvc_table_add(t, row))
            rc = jvc_oom();
        jv_free(value);
    }
    printf("\n%zu concurrent values, newest first:\n", n);
    if (rc == JVC_EXIT_OK && !jvc_table_print(t, stdout))
        rc = jvc_oom();
out:
    jvc_table_free(t);
    jv_free(v);
    return rc;
}

static int print_entry(const json_t *j)
{
    static const char *const h[2] = {"", ""};
    char at[64], stamp[32], n[32];
    int rc = JVC_EXIT_OK;
    char *value = jvc_json_compact(json_object_get(j, "value"));
    jvc_table *t = jvc_table_new(2, h);
    if (value == NULL || t == NULL) {
        rc = jvc_oom();
        goto out;
    }
    jvc_table_hide_header(t);
    const char *rows[][2] = {
        {"key", jvc_str(j, "key", "?")},
        {"value", value},
        {"values", jvc_int_text(j, "values", n, sizeof n)},
        {"added by", jvc_str(j, "added_by", "-")},
        {"added at",
         jvc_time_human(json_object_get(j, "added_at"), at, sizeof at)},
        {"stamp", jvc_int_text(j, "stamp", stamp, sizeof stamp)}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if (!jvc_table_add(t, rows[i])) {
            rc = jvc_oom();
            goto out;
        }
    if (!jvc_table_print(t, stdout))
        rc = jvc_oom();
    const json_t *all = json_object_get(j, "all");
    if (rc == JVC_EXIT_OK && json_array_size(all) > 1)
        rc = print_all_values(all);
out:
    jvc_table_free(t);
    jv_free(value);
    return rc;
}

/* One request on /v1/archive/KEY; prints the entry it answers with. */
static int key_request(jvc_ctx *ctx, const char *verb, const char *method,
                       const char *key_arg, const json_t *body)
{
    jvc_client *c;
    jvc_resp r = {0};
    char *key = NULL, *path = NULL, *what = NULL;
    int rc;
    if ((rc = jvc_ctx_client(ctx, &c)) != 0)
        return rc;
    if ((key = jvc_escape(key_arg, true)) == NULL ||
        (path = jvc_strf("/v1/archive/%s", key)) == NULL ||
        (what = jvc_strf("archive %s %s", verb, key_arg)) == NULL) {
        rc = jvc_oom();
        goto out;
    }
    if ((rc = jvc_call(c, what, method, path, body, &r)) != 0)
        goto out;
    if (r.status == 204) {
        if (ctx->g->json) {
            json_t *o = json_pack("{s:s,s:b}", "key", key_arg, "removed", 1);
            rc = o ? jvc_print_json(o) : jvc_oom();
            json_decref(o);
        } else {
            printf("removed %s\n", key_arg);
        }
    } else {
        rc = ctx->g->json ? jvc_print_json(r.json) : print_entry(r.json);
    }
out:
    jvc_resp_fini(&r);
    jv_free(key);
    jv_free(path);
    jv_free(what);
    return rc;
}

static int run_get(jvc_ctx *ctx, int argc, char **argv)
{
    char *pos[1];
    int npos, rc;
    if ((rc = jvc_parse_args(ctx->cmd, argc, argv, NULL, 0, pos, 1, 1,
                             &npos)) != 0)
        return rc;
    return key_request(ctx, "get", "GET", pos[0], NULL);
}

const jvc_cmd jvc_cmd_archive_get = {
    .group = "archive",
    .name = "get",
    .args = "KEY",
    .summary = "Show an archive entry",
    .help = "After concurrent adds on different nodes a key holds several\n"
            "values until one is overwritten: 'value' is the latest, and\n"
            "all of them are listed below it, newest first. Exits 1 if the\n"
            "key is absent.\n",
    .run = run_get,
};

static int run_add(jvc_ctx *ctx, int argc, char **argv)
{
    char *pos[2];
    bool as_string = false;
    int npos, rc;
    const jvc_opt opts[] = {{"string", 's', NULL, &as_string}};
    if ((rc = jvc_parse_args(ctx->cmd, argc, argv, opts, 1, pos, 2, 2,
                             &npos)) != 0)
        return rc;
    json_t *value = jvc_value_arg(pos[1], as_string);
    json_t *body = value ? json_pack("{s:o}", "value", value) : NULL;
    if (body == NULL)
        return jvc_oom();
    rc = key_request(ctx, "add", "PUT", pos[0], body);
    json_decref(body);
    return rc;
}

const jvc_cmd jvc_cmd_archive_add = {
    .group = "archive",
    .name = "add",
    .args = "[--string] KEY VALUE",
    .summary = "Add an archive entry (replacing the values this node has "
               "seen)",
    .help = "Options:\n"
            "  -s, --string  store VALUE as a JSON string even if it parses\n"
            "                as JSON\n"
            "\n"
            "VALUE is stored as the JSON it parses as, else as a string (as\n"
            "for 'config set').\n",
    .run = run_add,
};

static int run_rm(jvc_ctx *ctx, int argc, char **argv)
{
    char *pos[1];
    int npos, rc;
    if ((rc = jvc_parse_args(ctx->cmd, argc, argv, NULL, 0, pos, 1, 1,
                             &npos)) != 0)
        return rc;
    return key_request(ctx, "rm", "DELETE", pos[0], NULL);
}

const jvc_cmd jvc_cmd_archive_rm = {
    .group = "archive",
    .name = "rm",
    .args = "KEY",
    .summary = "Remove an archive entry",
    .help = "Removes the values of KEY this node has seen; an add on another\n"
            "node that this one had not seen yet survives (add-wins). Exits\n"
            "1 if the key is absent.\n",
    .run = run_rm,
};
