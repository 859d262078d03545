/*
 * cmd_members.c - members: the whole cluster as one node sees it
 * (GET /v1/cluster), like `consul members`.
 */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "args.h"
#include "client.h"
#include "output.h"
#include "table.h"

/* "1a2b3c4d:12 5e6f7a8b:7": each origin's short id and sequence. */
static const char *vector_text(json_t *vv, char *out, size_t outlen)
{
    const char *id;
    json_t *seq;
    size_t at = 0;
    if (!json_is_object(vv) || json_object_size(vv) == 0)
        return "-";
    out[0] = '\0';
    json_object_foreach(vv, id, seq)
    {
        if (at >= outlen)
            break;
        at += (size_t)snprintf(out + at, outlen - at,
                               "%s%.8s:%" JSON_INTEGER_FORMAT, at ? " " : "",
                               id, json_integer_value(seq));
    }
    return out;
}

static const char *int_or_dash(const json_t *m, const char *key, char *out,
                               size_t outlen)
{
    const json_t *v = json_object_get(m, key);
    if (!json_is_integer(v))
        return "-";
    snprintf(out, outlen, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    return out;
}

static bool print_members(const json_t *members)
{
    /* THEY LACK / WE LACK as in peers ls; KEY is the fingerprint of the
     * cluster key the node last sealed a message with (this node: the
     * one it sends under); PROTO its protocol version. */
    static const char *const h[] = {
        "NODE",  "NAME",      "ADDRESS", "STATE", "KEY",
        "PROTO", "THEY LACK", "WE LACK", "SYNC",  "VERSION VECTOR"};
    jvc_table *t = jvc_table_new(10, h);
    if (t == NULL)
        return false;
    jvc_table_right(t, 5);
    jvc_table_right(t, 6);
    jvc_table_right(t, 7);
    jvc_table_max_width(t, 9, 60);
    bool ok = true;
    size_t i;
    json_t *m;
    json_array_foreach(members, i, m)
    {
        char id[JVC_SHORT_ID + 1], proto[16], they[32], we[32], vv[256];
        const char *row[10] = {
            jvc_short_id(jvc_str(m, "node_id", "-"), id, sizeof id),
            jvc_str(m, "name", "-"),
            jvc_str(m, "address", "-")[0] ? jvc_str(m, "address", "-") : "-",
            jvc_str(m, "state", "-"),
            jvc_str(m, "key", "-"),
            int_or_dash(m, "protocol_version", proto, sizeof proto),
            int_or_dash(m, "lacks_from_us", they, sizeof they),
            int_or_dash(m, "we_lack", we, sizeof we),
            jvc_str(m, "sync", "-"),
            vector_text(json_object_get(m, "version_vector"), vv, sizeof vv)};
        if (!(ok = jvc_table_add(t, row)))
            break;
    }
    ok = ok && jvc_table_print(t, stdout);
    jvc_table_free(t);
    return ok;
}

static int run_members(jvc_ctx *ctx, int argc, char **argv)
{
    jvc_resp r = {0};
    bool printed;
    int rc = jvc_show(ctx, argc, argv, "/v1/cluster", &r, &printed);
    if (rc != 0 || printed)
        goto out;
    const json_t *members = json_object_get(r.json, "members");
    if (!json_is_array(members)) {
        jvc_err("members: the node's answer has no member list");
        rc = JVC_EXIT_FAIL;
    } else if (!print_members(members)) {
        rc = jvc_oom();
    } else {
        puts(json_is_true(json_object_get(r.json, "converged"))
                 ? "cluster converged: every peer reachable, nothing lacking"
                 : "cluster not converged: see STATE and SYNC above");
    }
out:
    jvc_resp_fini(&r);
    return rc;
}

const jvc_cmd jvc_cmd_members = {
    .group = "members",
    .args = "",
    .summary = "Every known node, its state, key, version vector and lag",
    .help = "One row per node as this node last saw it: this node first, then\n"
            "each peer. STATE: as in peers ls (reachable, connection\n"
            "refused...). KEY: fingerprint of the cluster key it sealed\n"
            "with. SYNC: converged, N operations apart, or unknown (no\n"
            "vector yet). --json gives every field.\n",
    .run = run_members,
};
