/*
 * cmd_sessions.c - sessions ls, revoke (admin).
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
    int rc = jvc_show(ctx, argc, argv, "/v1/sessions", &r, &printed);
    if (rc != 0 || printed)
        goto out;
    static const char *const h[] = {"ID",   "KEY",     "KEY NAME",
                                    "ROLE", "CREATED", "EXPIRES"};
    if ((t = jvc_table_new(6, h)) == NULL) {
        rc = jvc_oom();
        goto out;
    }
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(r.json, "sessions"), i, s)
    {
        char created[64], expires[64];
        const char *row[6] = {jvc_str(s, "id", "?"),
                              jvc_str(s, "key_id", "?"),
                              jvc_str(s, "key_name", "?"),
                              jvc_str(s, "role", "?"),
                              jvc_time_human(json_object_get(s, "created_at"),
                                             created, sizeof created),
                              jvc_time_human(json_object_get(s, "expires_at"),
                                             expires, sizeof expires)};
        if (!jvc_table_add(t, row)) {
            rc = jvc_oom();
            goto out;
        }
    }
out:
    rc = jvc_table_end(t, rc, "no active sessions");
    jvc_resp_fini(&r);
    return rc;
}

const jvc_cmd jvc_cmd_sessions_ls = {
    .group = "sessions",
    .name = "ls",
    .args = "",
    .summary = "List active sessions",
    .help = "Sessions are made by exchanging an API key for a token\n"
            "(POST /v1/sessions). jarvisctl itself sends the API key and\n"
            "makes none.\n",
    .run = run_ls,
};

static int run_revoke(jvc_ctx *ctx, int argc, char **argv)
{
    return jvc_revoke_by_id(ctx, argc, argv, "/v1/sessions", "session", "");
}

const jvc_cmd jvc_cmd_sessions_revoke = {
    .group = "sessions",
    .name = "revoke",
    .args = "ID",
    .summary = "Revoke a session at once",
    .help = "ID is the session's id as 'sessions ls' shows it (s_...). Exits\n"
            "1 if there is no such session.\n",
    .run = run_revoke,
};
