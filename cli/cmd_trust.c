/*
 * cmd_trust.c - trust ls, add, rm: the cluster's replicated trust list.
 *
 * A node applies batches only from origins on its trust list (and its
 * own); the list is replicated like the configuration, so one `trust add`
 * on any trusted node reaches every node (docs/protocol.md).
 */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "args.h"
#include "client.h"
#include "output.h"
#include "table.h"

static int run_ls(jvc_ctx *ctx, int argc, char **argv)
{
    jvc_resp r = {0};
    jvc_table *t = NULL;
    bool printed;
    int rc = jvc_show(ctx, argc, argv, "/v1/trust", &r, &printed);
    if (rc != 0 || printed)
        goto out;
    static const char *const h[] = {"NODE", "TRUSTED", "NAME", "SET BY",
                                    "SET AT"};
    if ((t = jvc_table_new(5, h)) == NULL) {
        rc = jvc_oom();
        goto out;
    }
    const char *self = jvc_str(r.json, "self", "");
    char sid[JVC_SHORT_ID + 1], mine[JVC_SHORT_ID + 16];
    snprintf(mine, sizeof mine, "%s (this node)",
             jvc_short_id(self, sid, sizeof sid));
    /* The node is listed once, first, whether or not the replicated list
     * names it too (then with that entry's name and stamp). */
    const json_t *own = NULL;
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(r.json, "trust"), i, e)
    {
        if (strcmp(jvc_str(e, "node_id", ""), self) == 0)
            own = e;
    }
    char oby[JVC_SHORT_ID + 1], oat[64];
    const char *first[5] = {
        mine, "yes", own ? jvc_str(own, "name", "") : "",
        own ? jvc_short_id(jvc_str(own, "set_by", "?"), oby, sizeof oby) : "",
        own ? jvc_time_human(json_object_get(own, "set_at"), oat, sizeof oat)
            : ""};
    bool ok = jvc_table_add(t, first);
    json_array_foreach(json_object_get(r.json, "trust"), i, e)
    {
        if (e == own)
            continue;
        char id[JVC_SHORT_ID + 1], by[JVC_SHORT_ID + 1], at[64];
        const char *row[5] = {
            jvc_short_id(jvc_str(e, "node_id", "?"), id, sizeof id),
            json_is_true(json_object_get(e, "trusted")) ? "yes" : "no",
            jvc_str(e, "name", ""),
            jvc_short_id(jvc_str(e, "set_by", "?"), by, sizeof by),
            jvc_time_human(json_object_get(e, "set_at"), at, sizeof at)};
        ok = ok && jvc_table_add(t, row);
    }
    if (!ok || !jvc_table_print(t, stdout))
        rc = jvc_oom();
out:
    jvc_table_free(t);
    jvc_resp_fini(&r);
    return rc;
}

const jvc_cmd jvc_cmd_trust_ls = {
    .group = "trust",
    .name = "ls",
    .args = "",
    .summary = "List the nodes whose batches this node accepts",
    .help = "The trust list is replicated: every node shows the same one\n"
            "once they have converged. This node always trusts itself and\n"
            "is listed first, once. A name set with 'trust add --name'\n"
            "stays through 'trust rm' and a later 'trust add' without one.\n"
            "--json gives full node ids and stamps.\n",
    .run = run_ls,
};

/* True for 64 hex digits. */
static bool node_id_ok(const char *s)
{
    if (strlen(s) != 64)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') ||
              (*p >= 'A' && *p <= 'F')))
            return false;
    return true;
}

static int trust_request(jvc_ctx *ctx, bool add, const char *id,
                         const char *name)
{
    jvc_client *c;
    jvc_resp r = {0};
    json_t *body = NULL;
    char *path = NULL, *what = NULL;
    int rc;
    if ((rc = jvc_ctx_client(ctx, &c)) != 0)
        return rc;
    if ((what = jvc_strf("trust %s %.16s", add ? "add" : "rm", id)) == NULL ||
        (add ? (body = json_pack("{s:s,s:s}", "node_id", id, "name",
                                 name ? name : "")) == NULL
             : (path = jvc_strf("/v1/trust/%s", id)) == NULL)) {
        rc = jvc_oom();
        goto out;
    }
    if ((rc = jvc_call(c, what, add ? "POST" : "DELETE",
                       add ? "/v1/trust" : path, body, &r)) != 0)
        goto out;
    if (ctx->g->json) {
        json_t *o = r.json ? json_incref(r.json)
                           : json_pack("{s:s,s:b}", "node_id", id, "trusted",
                                       add ? 1 : 0);
        rc = o ? jvc_print_json(o) : jvc_oom();
        json_decref(o);
    } else {
        /* The name the node keeps, which may be one set earlier. */
        const char *shown = r.json ? jvc_str(r.json, "name", "") : "";
        printf("%s node %s%s%s\n", add ? "trusted" : "no longer trusting", id,
               *shown ? " as " : "", shown);
    }
out:
    json_decref(body);
    jvc_resp_fini(&r);
    jv_free(path);
    jv_free(what);
    return rc;
}

static int run_add(jvc_ctx *ctx, int argc, char **argv)
{
    const char *name = NULL;
    char *pos[1];
    int npos, rc;
    const jvc_opt opts[] = {{"name", 'n', &name, NULL}};
    if ((rc = jvc_parse_args(ctx->cmd, argc, argv, opts, 1, pos, 1, 1,
                             &npos)) != 0)
        return rc;
    if (!node_id_ok(pos[0]))
        return jvc_usage_error(ctx->cmd,
                               "NODE_ID is 64 hex digits ('jarvisctl status' "
                               "on that node shows it), not '%s'",
                               pos[0]);
    return trust_request(ctx, true, pos[0], name);
}

const jvc_cmd jvc_cmd_trust_add = {
    .group = "trust",
    .name = "add",
    .args = "NODE_ID [--name NAME]",
    .summary = "Accept batches from a node, on every node of the cluster",
    .help = "  -n, --name NAME   a name to show for the node\n"
            "Batches of that node held aside until now are applied at once.\n",
    .run = run_add,
};

static int run_rm(jvc_ctx *ctx, int argc, char **argv)
{
    char *pos[1];
    int npos, rc;
    if ((rc = jvc_parse_args(ctx->cmd, argc, argv, NULL, 0, pos, 1, 1,
                             &npos)) != 0)
        return rc;
    if (!node_id_ok(pos[0]))
        return jvc_usage_error(ctx->cmd, "NODE_ID is 64 hex digits, not '%s'",
                               pos[0]);
    return trust_request(ctx, false, pos[0], NULL);
}

const jvc_cmd jvc_cmd_trust_rm = {
    .group = "trust",
    .name = "rm",
    .args = "NODE_ID",
    .summary = "Stop accepting new batches from a node",
    .help = "What the node wrote before stays: removing trust does not undo\n"
            "applied operations, it holds the node's later batches aside.\n",
    .run = run_rm,
};
