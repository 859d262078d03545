/*
 * cmd_peers.c - peers ls, add, rm.
 *
 * The peer fields depend on the replication protocol (docs/protocol.md),
 * so `peers ls` shows whatever fields the node gives, one column each.
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
    jvc_client *c;
    jvc_resp r = {0};
    char *pos[1];
    int npos, rc;
    if ((rc = jvc_parse_args(ctx->cmd, argc, argv, NULL, 0, pos, 0, 0,
                             &npos)) != 0 ||
        (rc = jvc_ctx_client(ctx, &c)) != 0)
        return rc;
    if ((rc = jvc_call(c, "peers ls", "GET", "/v1/peers", NULL, &r)) != 0)
        goto out;
    json_t *peers = json_object_get(r.json, "peers");
    if (ctx->g->json)
        rc = jvc_print_json(r.json);
    else if (json_array_size(peers) == 0)
        puts("no peers");
    else if (!jvc_table_print_objects(peers, stdout))
        rc = jvc_oom();
out:
    jvc_resp_fini(&r);
    return rc;
}

const jvc_cmd jvc_cmd_peers_ls = {
    .group = "peers",
    .name = "ls",
    .args = "",
    .summary = "List the node's peers",
    .run = run_ls,
};

/* POST /v1/peers or DELETE /v1/peers/ADDR. A node without replication has
 * no such route: say that, rather than "not found". */
static int peer_request(jvc_ctx *ctx, bool add, const char *addr)
{
    jvc_client *c;
    jvc_resp r = {0};
    json_t *body = NULL;
    char *esc = NULL, *path = NULL, *what = NULL;
    int rc;
    if ((rc = jvc_ctx_client(ctx, &c)) != 0)
        return rc;
    if ((what = jvc_strf("peers %s %s", add ? "add" : "rm", addr)) == NULL ||
        (add ? (body = json_pack("{s:s}", "addr", addr)) == NULL
             : ((esc = jvc_escape(addr, false)) == NULL ||
                (path = jvc_strf("/v1/peers/%s", esc)) == NULL))) {
        rc = jvc_oom();
        goto out;
    }
    if ((rc = jvc_http(c, add ? "POST" : "DELETE", add ? "/v1/peers" : path,
                       body, &r)) != 0)
        goto out;
    if (r.status < 200 || r.status > 299) {
        rc = jvc_fail(c, what, &r);
        if (r.status == 405 || (add && r.status == 404))
            fprintf(stderr, "hint: this node does not manage peers through "
                            "its API (its version has no replication); "
                            "start jarvisd with --peer ADDR instead\n");
        else if (r.status == 404)
            fprintf(stderr,
                    "hint: '%s' is not one of the node's peers "
                    "('jarvisctl peers ls'), or this node's "
                    "version has no replication\n",
                    addr);
        goto out;
    }
    if (ctx->g->json) {
        json_t *o = r.json ? json_incref(r.json)
                           : json_pack("{s:s,s:b}", "addr", addr,
                                       add ? "added" : "removed", 1);
        rc = o ? jvc_print_json(o) : jvc_oom();
        json_decref(o);
    } else {
        printf("%s peer %s\n", add ? "added" : "removed", addr);
    }
out:
    json_decref(body);
    jvc_resp_fini(&r);
    jv_free(esc);
    jv_free(path);
    jv_free(what);
    return rc;
}

static int run_add(jvc_ctx *ctx, int argc, char **argv)
{
    char *pos[1];
    int npos, rc;
    if ((rc = jvc_parse_args(ctx->cmd, argc, argv, NULL, 0, pos, 1, 1,
                             &npos)) != 0)
        return rc;
    return peer_request(ctx, true, pos[0]);
}

const jvc_cmd jvc_cmd_peers_add = {
    .group = "peers",
    .name = "add",
    .args = "ADDR",
    .summary = "Add a peer (tcp://HOST:PORT)",
    .help = "Needs a node with replication; an older node answers that it\n"
            "has no such route, and jarvisctl exits 1.\n",
    .run = run_add,
};

static int run_rm(jvc_ctx *ctx, int argc, char **argv)
{
    char *pos[1];
    int npos, rc;
    if ((rc = jvc_parse_args(ctx->cmd, argc, argv, NULL, 0, pos, 1, 1,
                             &npos)) != 0)
        return rc;
    return peer_request(ctx, false, pos[0]);
}

const jvc_cmd jvc_cmd_peers_rm = {
    .group = "peers",
    .name = "rm",
    .args = "ADDR",
    .summary = "Remove a peer",
    .help = "Exits 1 if ADDR is not a peer of the node.\n",
    .run = run_rm,
};
