/*
 * cmd_keys.c - keys create, ls, revoke (admin).
 */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "args.h"
#include "client.h"
#include "output.h"
#include "table.h"

static int run_create(jvc_ctx *ctx, int argc, char **argv)
{
    jvc_client *c;
    jvc_resp r = {0};
    json_t *body = NULL;
    jvc_table *t = NULL;
    const char *role = NULL, *name = NULL;
    bool cluster = false;
    char *pos[1];
    int npos, rc;
    const jvc_opt opts[] = {{"role", 'r', &role, NULL},
                            {"name", 'n', &name, NULL},
                            {"cluster", 0, NULL, &cluster}};
    if ((rc = jvc_parse_args(ctx->cmd, argc, argv, opts, 3, pos, 0, 1,
                             &npos)) != 0)
        return rc;
    if ((name != NULL) == (npos == 1))
        return jvc_usage_error(ctx->cmd, "give the key's name once: NAME or "
                                         "--name NAME");
    if (name == NULL)
        name = pos[0];
    if (role == NULL)
        return jvc_usage_error(ctx->cmd, "--role is required (admin, writer "
                                         "or reader)");
    if (strcmp(role, "admin") != 0 && strcmp(role, "writer") != 0 &&
        strcmp(role, "reader") != 0)
        return jvc_usage_error(ctx->cmd,
                               "--role must be admin, writer or reader, not "
                               "'%s'",
                               role);
    if ((rc = jvc_ctx_client(ctx, &c)) != 0)
        return rc;
    if ((body = json_pack("{s:s,s:s,s:s}", "name", name, "role", role, "scope",
                          cluster ? "cluster" : "node")) == NULL) {
        rc = jvc_oom();
        goto out;
    }
    if ((rc = jvc_call(c, "keys create", "POST", "/v1/keys", body, &r)) != 0)
        goto out;
    if (ctx->g->json) {
        rc = jvc_print_json(r.json);
    } else {
        static const char *const h[2] = {"", ""};
        if ((t = jvc_table_new(2, h)) == NULL) {
            rc = jvc_oom();
            goto out;
        }
        jvc_table_hide_header(t);
        char at[64];
        const char *rows[][2] = {
            {"id", jvc_str(r.json, "id", "?")},
            {"name", jvc_str(r.json, "name", "?")},
            {"role", jvc_str(r.json, "role", "?")},
            {"scope", jvc_str(r.json, "scope", "node")},
            {"created", jvc_time_human(json_object_get(r.json, "created_at"),
                                       at, sizeof at)},
            {"key", jvc_str(r.json, "key", "?")}};
        for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
            if (!jvc_table_add(t, rows[i])) {
                rc = jvc_oom();
                goto out;
            }
        if (!jvc_table_print(t, stdout)) {
            rc = jvc_oom();
            goto out;
        }
    }
    jvc_err("the key is shown only this once: store it now");
out:
    jvc_table_free(t);
    json_decref(body);
    jvc_resp_fini(&r);
    return rc;
}

const jvc_cmd jvc_cmd_keys_create = {
    .group = "keys",
    .name = "create",
    .args =
        "NAME --role ROLE [--cluster] | --name NAME --role ROLE [--cluster]",
    .summary = "Create an API key and print it (once)",
    .help = "Options:\n"
            "  -r, --role ROLE  admin, writer or reader (required)\n"
            "  -n, --name NAME  the key's name (instead of NAME)\n"
            "      --cluster    a cluster key: replicated to every node that\n"
            "                   trusts this one, usable on all of them, and\n"
            "                   revoked on all of them by 'keys revoke'\n"
            "                   (needs an admin key; see docs/operations.md)\n"
            "\n"
            "Without --cluster the key is this node's only (scope node), as\n"
            "is the admin key of 'jarvisctl init': keep one for recovery.\n"
            "NAME is 1-64 characters of A-Z a-z 0-9 . _ - and becomes the\n"
            "actor of the audit entries written with the key. The node keeps\n"
            "only a hash: the key cannot be shown again. Roles: reader reads,\n"
            "writer also writes data, admin may do everything.\n",
    .run = run_create,
};

static int run_ls(jvc_ctx *ctx, int argc, char **argv)
{
    jvc_resp r = {0};
    jvc_table *t = NULL;
    bool printed;
    int rc = jvc_show(ctx, argc, argv, "/v1/keys", &r, &printed);
    if (rc != 0 || printed)
        goto out;
    static const char *const h[] = {"ID",    "NAME",    "ROLE",
                                    "SCOPE", "CREATED", "REVOKED"};
    if ((t = jvc_table_new(6, h)) == NULL) {
        rc = jvc_oom();
        goto out;
    }
    size_t i;
    json_t *k;
    json_array_foreach(json_object_get(r.json, "keys"), i, k)
    {
        char created[64], revoked[64];
        const char *row[6] = {jvc_str(k, "id", "?"),
                              jvc_str(k, "name", "?"),
                              jvc_str(k, "role", "?"),
                              jvc_str(k, "scope", "node"),
                              jvc_time_human(json_object_get(k, "created_at"),
                                             created, sizeof created),
                              jvc_time_human(json_object_get(k, "revoked_at"),
                                             revoked, sizeof revoked)};
        if (!jvc_table_add(t, row)) {
            rc = jvc_oom();
            goto out;
        }
    }
out:
    rc = jvc_table_end(t, rc, "no keys");
    jvc_resp_fini(&r);
    return rc;
}

const jvc_cmd jvc_cmd_keys_ls = {
    .group = "keys",
    .name = "ls",
    .args = "",
    .summary = "List API keys (never the keys themselves)",
    .help = "SCOPE is node (this node's own key) or cluster (a replicated\n"
            "key, usable on every node). REVOKED is '-' while the key is\n"
            "active.\n",
    .run = run_ls,
};

static int run_revoke(jvc_ctx *ctx, int argc, char **argv)
{
    bool cluster = false;
    char *pos[1];
    int npos, rc;
    const jvc_opt opts[] = {{"cluster", 0, NULL, &cluster}};
    if ((rc = jvc_parse_args(ctx->cmd, argc, argv, opts, 1, pos, 1, 1,
                             &npos)) != 0)
        return rc;
    return jvc_revoke(
        ctx, "/v1/keys", pos[0], cluster ? "?scope=cluster" : NULL, "key",
        cluster ? " and its sessions, on every node" : " and its sessions");
}

const jvc_cmd jvc_cmd_keys_revoke = {
    .group = "keys",
    .name = "revoke",
    .args = "ID [--cluster]",
    .summary = "Revoke an API key and every session made with it",
    .help = "ID is the key's id as 'keys ls' shows it (k_...). A node key\n"
            "is revoked on this node; a cluster key on every node, as its\n"
            "revocation replicates, and for good: it wins over the key\n"
            "whatever arrives first. Exits 1 if there is no such active key.\n"
            "\n"
            "Options:\n"
            "      --cluster  revoke ID as a cluster key even if this node\n"
            "                 has not received the key yet (a leaked key's\n"
            "                 id, seen on another node)\n",
    .run = run_revoke,
};
