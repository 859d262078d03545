/*
 * cmd_peers.c - peers ls, add, rm.
 *
 * The peer fields come from the replication protocol (docs/protocol.md).
 * Peers described the way replicating nodes do ("address", "reachable",
 * "lacks_from_us", ...) get a table that says how far behind each one is;
 * any other shape is shown field by field, one column each.
 */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "args.h"
#include "client.h"
#include "output.h"
#include "table.h"

/* "-" for null or absent, the number otherwise. */
static const char *count_text(const json_t *p, const char *key, char *out,
                              size_t outlen)
{
    const json_t *v = json_object_get(p, key);
    if (!json_is_integer(v))
        return "-";
    snprintf(out, outlen, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    return out;
}

/* "-" for null or absent, else a size ("12.5 KiB"). */
static const char *bytes_text(const json_t *p, const char *key, char *out,
                              size_t outlen)
{
    const json_t *v = json_object_get(p, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return "-";
    jvc_bytes_human((uint64_t)json_integer_value(v), out, outlen);
    return out;
}

bool jvc_print_peers(json_t *peers)
{
    if (json_object_get(json_array_get(peers, 0), "address") == NULL)
        return jvc_table_print_objects(peers, stdout);
    /* THEY LACK: operations of ours the peer has not applied (its lag);
     * WE LACK: the reverse. "-" until the peer has told its vector.
     * BYTES IN / OUT: peer messages exchanged since the node started. */
    static const char *const h[] = {
        "ADDRESS", "NODE",     "STATE",     "LAST CONTACT", "THEY LACK",
        "WE LACK", "BYTES IN", "BYTES OUT", "FAILURES",     "LAST ERROR"};
    jvc_table *t = jvc_table_new(10, h);
    if (t == NULL)
        return false;
    for (size_t k = 4; k < 9; k++)
        jvc_table_right(t, k);
    jvc_table_max_width(t, 9, 60);
    bool ok = true;
    size_t i;
    json_t *p;
    json_array_foreach(peers, i, p)
    {
        char id[JVC_SHORT_ID + 1], seen[64], lack[32], wlack[32], fail[32];
        char bin[32], bout[32];
        const json_t *reach = json_object_get(p, "reachable");
        bool self = json_is_true(json_object_get(p, "self"));
        const char *row[10] = {
            jvc_str(p, "address", "?"),
            jvc_short_id(jvc_str(p, "node_id", "-"), id, sizeof id),
            self ? "this node"
            /* Why it cannot be reached ("unreachable", "key
             * mismatch", ...), from nodes that say. */
            : json_is_string(json_object_get(p, "state"))
                ? jvc_str(p, "state", "-")
            : json_is_boolean(reach) ? (json_is_true(reach) ? "yes" : "no")
                                     : "-",
            jvc_time_human(json_object_get(p, "last_contact"), seen,
                           sizeof seen),
            count_text(p, "lacks_from_us", lack, sizeof lack),
            count_text(p, "we_lack", wlack, sizeof wlack),
            bytes_text(p, "bytes_in", bin, sizeof bin),
            bytes_text(p, "bytes_out", bout, sizeof bout),
            count_text(p, "failures", fail, sizeof fail),
            jvc_str(p, "last_error", "-")};
        if (!jvc_table_add(t, row)) {
            ok = false;
            break;
        }
    }
    ok = ok && jvc_table_print(t, stdout);
    jvc_table_free(t);
    return ok;
}

static int run_ls(jvc_ctx *ctx, int argc, char **argv)
{
    jvc_resp r = {0};
    bool printed;
    int rc = jvc_show(ctx, argc, argv, "/v1/peers", &r, &printed);
    if (rc != 0 || printed)
        goto out;
    json_t *peers = json_object_get(r.json, "peers");
    if (json_array_size(peers) == 0)
        puts("no peers");
    else if (!jvc_print_peers(peers))
        rc = jvc_oom();
out:
    jvc_resp_fini(&r);
    return rc;
}

const jvc_cmd jvc_cmd_peers_ls = {
    .group = "peers",
    .name = "ls",
    .args = "",
    .summary = "List the node's peers and how far behind each one is",
    .help = "STATE: reachable; with no connection to it, what connecting\n"
            "gets: connection refused (its process stopped), connection\n"
            "closed, connection timed out, host unreachable...; unreachable\n"
            "(connected, but an exchange failed); key mismatch (it does not\n"
            "accept our cluster key, or we lack its); incompatible version N\n"
            "(protocol versions that cannot talk); this node.\n"
            "THEY LACK counts the operations this node has that the peer has\n"
            "not applied yet (its lag), WE LACK the reverse; '-' until the\n"
            "peer has sent its version vector. --json gives every field.\n",
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
