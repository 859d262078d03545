/*
 * cmd_config.c - config ls, get, set: the node's last-writer-wins
 * configuration registers, with who set each one and when.
 */
#include <stdio.h>
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
    int rc = jvc_list_prefixed(ctx, argc, argv, "/v1/config", "config", &list,
                               &prefix);
    if (rc != 0 || list == NULL)
        return rc;
    static const char *const h[] = {"KEY", "VALUE", "SET BY", "SET AT"};
    if ((t = jvc_table_new(4, h)) == NULL) {
        rc = jvc_oom();
        goto out;
    }
    jvc_table_max_width(t, 1, VALUE_CHARS);
    size_t i;
    json_t *it;
    json_array_foreach(list, i, it)
    {
        char by[JVC_SHORT_ID + 1], at[64];
        char *value = jvc_json_compact(json_object_get(it, "value"));
        const char *row[4] = {
            jvc_str(it, "key", "?"), value,
            jvc_short_id(jvc_str(it, "set_by", "-"), by, sizeof by),
            jvc_time_human(json_object_get(it, "set_at"), at, sizeof at)};
        bool ok = value != NULL && jvc_table_add(t, row);
        jv_free(value);
        if (!ok) {
            rc = jvc_oom();
            goto out;
        }
    }
out:
    rc = jvc_table_end(t, rc,
                       prefix ? "no configuration keys with that prefix"
                              : "no configuration keys");
    json_decref(list);
    return rc;
}

const jvc_cmd jvc_cmd_config_ls = {
    .group = "config",
    .name = "ls",
    .args = "[--prefix PREFIX]",
    .summary = "List configuration keys, values, who set them and when",
    .help = "Options:\n"
            "  -p, --prefix PREFIX  only keys that start with PREFIX\n"
            "\n"
            "Values are shown as JSON, cut at 50 characters; 'config get'\n"
            "or --json shows them whole.\n",
    .run = run_ls,
};

/* Prints one register as "field  value" lines. */
static int print_register(const json_t *j)
{
    static const char *const h[2] = {"", ""};
    char at[64], stamp[32];
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
        {"set by", jvc_str(j, "set_by", "-")},
        {"set at", jvc_time_human(json_object_get(j, "set_at"), at, sizeof at)},
        {"stamp", jvc_int_text(j, "stamp", stamp, sizeof stamp)}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if (!jvc_table_add(t, rows[i])) {
            rc = jvc_oom();
            goto out;
        }
    if (!jvc_table_print(t, stdout))
        rc = jvc_oom();
out:
    jvc_table_free(t);
    jv_free(value);
    return rc;
}

static int run_get(jvc_ctx *ctx, int argc, char **argv)
{
    jvc_client *c;
    jvc_resp r = {0};
    char *pos[1], *key = NULL, *path = NULL, *what = NULL;
    int npos, rc;
    if ((rc = jvc_parse_args(ctx->cmd, argc, argv, NULL, 0, pos, 1, 1,
                             &npos)) != 0 ||
        (rc = jvc_ctx_client(ctx, &c)) != 0)
        return rc;
    if ((key = jvc_escape(pos[0], true)) == NULL ||
        (path = jvc_strf("/v1/config/%s", key)) == NULL ||
        (what = jvc_strf("config get %s", pos[0])) == NULL) {
        rc = jvc_oom();
        goto out;
    }
    if ((rc = jvc_call(c, what, "GET", path, NULL, &r)) != 0)
        goto out;
    rc = ctx->g->json ? jvc_print_json(r.json) : print_register(r.json);
out:
    jvc_resp_fini(&r);
    jv_free(key);
    jv_free(path);
    jv_free(what);
    return rc;
}

const jvc_cmd jvc_cmd_config_get = {
    .group = "config",
    .name = "get",
    .args = "KEY",
    .summary = "Show a configuration key's value, who set it and when",
    .help = "'set by' is the replica whose write won; 'set at' the physical\n"
            "time of its hybrid logical clock stamp. Exits 1 if the key is\n"
            "unset.\n",
    .run = run_get,
};

static int run_set(jvc_ctx *ctx, int argc, char **argv)
{
    jvc_client *c;
    jvc_resp r = {0};
    json_t *body = NULL;
    char *pos[2], *key = NULL, *path = NULL, *what = NULL;
    bool as_string = false;
    int npos, rc;
    const jvc_opt opts[] = {{"string", 's', NULL, &as_string}};
    if ((rc = jvc_parse_args(ctx->cmd, argc, argv, opts, 1, pos, 2, 2,
                             &npos)) != 0 ||
        (rc = jvc_ctx_client(ctx, &c)) != 0)
        return rc;
    json_t *value = jvc_value_arg(pos[1], as_string);
    if (value == NULL || (body = json_pack("{s:o}", "value", value)) == NULL ||
        (key = jvc_escape(pos[0], true)) == NULL ||
        (path = jvc_strf("/v1/config/%s", key)) == NULL ||
        (what = jvc_strf("config set %s", pos[0])) == NULL) {
        rc = jvc_oom();
        goto out;
    }
    if ((rc = jvc_call(c, what, "PUT", path, body, &r)) != 0)
        goto out;
    rc = ctx->g->json ? jvc_print_json(r.json) : print_register(r.json);
out:
    json_decref(body);
    jvc_resp_fini(&r);
    jv_free(key);
    jv_free(path);
    jv_free(what);
    return rc;
}

const jvc_cmd jvc_cmd_config_set = {
    .group = "config",
    .name = "set",
    .args = "[--string] KEY VALUE",
    .summary = "Set a configuration key",
    .help = "Options:\n"
            "  -s, --string  store VALUE as a JSON string even if it parses\n"
            "                as JSON\n"
            "\n"
            "VALUE is stored as the JSON it parses as (42, true, null,\n"
            "'{\"a\":1}', '\"quoted\"'); anything else is stored as a string:\n"
            "'config set db/url postgres://db:5432'. A VALUE that looks\n"
            "like an option goes after '--': 'config set -- motd --quiet'.\n",
    .run = run_set,
};
