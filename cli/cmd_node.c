/*
 * cmd_node.c - the node as a whole: status, health, backup, verify, export.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "args.h"
#include "client.h"
#include "output.h"
#include "table.h"

/* Adds a "field  value" row. */
static bool kv(jvc_table *t, const char *k, const char *v)
{
    const char *row[2] = {k, v};
    return jvc_table_add(t, row);
}

static jvc_table *kv_table(void)
{
    static const char *const h[2] = {"", ""};
    jvc_table *t = jvc_table_new(2, h);
    if (t != NULL)
        jvc_table_hide_header(t);
    return t;
}

/* Prints the version vector, marking this node's own entry. */
static bool print_vv(json_t *vv, const char *self)
{
    static const char *const h[] = {"ORIGIN", "APPLIED", ""};
    jvc_table *t = jvc_table_new(3, h);
    if (t == NULL)
        return false;
    jvc_table_right(t, 1);
    const char *origin;
    json_t *seq;
    bool ok = true;
    json_object_foreach(vv, origin, seq)
    {
        char id[JVC_SHORT_ID + 1], n[32];
        snprintf(n, sizeof n, "%" JSON_INTEGER_FORMAT, json_integer_value(seq));
        const char *row[3] = {jvc_short_id(origin, id, sizeof id), n,
                              self && strcmp(origin, self) == 0 ? "(this node)"
                                                                : ""};
        ok = ok && jvc_table_add(t, row);
    }
    if (ok && jvc_table_rows(t) == 0)
        puts("none");
    else if (ok)
        ok = jvc_table_print(t, stdout);
    jvc_table_free(t);
    return ok;
}

/* "send 1a2b3c4d, accept 1a2b3c4d 5e6f7a8b": fingerprints, never keys. */
static const char *keys_text(const json_t *keys, char *out, size_t outlen)
{
    size_t i, at;
    const json_t *k;
    if (!json_is_object(keys))
        return "none (plaintext peer traffic)";
    at = (size_t)snprintf(out, outlen, "send %s, accept",
                          jvc_str(keys, "send", "?"));
    json_array_foreach(json_object_get(keys, "accept"), i, k)
    {
        if (at < outlen && json_is_string(k))
            at += (size_t)snprintf(out + at, outlen - at, " %s",
                                   json_string_value(k));
    }
    return out;
}

/* Names of a JSON array of strings, comma-separated, appended to out. */
static void join_names(const json_t *a, char *out, size_t outlen)
{
    size_t i, len = strlen(out);
    const json_t *v;
    json_array_foreach(a, i, v)
    {
        if (len >= outlen)
            break;
        len += (size_t)snprintf(out + len, outlen - len, "%s%s", i ? ", " : "",
                                json_is_string(v) ? json_string_value(v) : "?");
    }
}

/* The last settings reload (SIGHUP) in one line. */
static const char *reload_text(const json_t *r, char *out, size_t outlen)
{
    char at[64];
    if (!json_is_object(r))
        return "none since start";
    jvc_time_human(json_object_get(r, "at"), at, sizeof at);
    const char *err = jvc_str(r, "error", NULL);
    if (err) {
        snprintf(out, outlen, "%s, failed: %s", at, err);
        return out;
    }
    const json_t *ch = json_object_get(r, "changed");
    const json_t *rs = json_object_get(r, "restart_needed");
    snprintf(out, outlen, "%s, %s", at,
             json_array_size(ch) ? "applied " : "nothing changed");
    join_names(ch, out, outlen);
    if (json_array_size(rs)) {
        size_t len = strlen(out);
        if (len < outlen)
            snprintf(out + len, outlen - len, "; restart needed for ");
        join_names(rs, out, outlen);
    }
    return out;
}

/* "p50 12 ms, p99 340 ms (last 512 batches)", or "none applied yet". */
static const char *delay_text(const json_t *d, char *out, size_t outlen)
{
    char p50[32], p99[32], n[32];
    if (!json_is_object(d)) {
        snprintf(out, outlen, "no batch from a peer applied yet");
        return out;
    }
    snprintf(out, outlen, "p50 %s ms, p99 %s ms (last %s batches)",
             jvc_int_text(d, "p50_ms", p50, sizeof p50),
             jvc_int_text(d, "p99_ms", p99, sizeof p99),
             jvc_int_text(d, "samples", n, sizeof n));
    return out;
}

static int run_status(jvc_ctx *ctx, int argc, char **argv)
{
    jvc_resp r = {0};
    jvc_table *t = NULL;
    bool printed;
    int rc = jvc_show(ctx, argc, argv, "/v1/status", &r, &printed);
    if (rc != 0 || printed)
        goto out;
    jvc_client *c; /* made by jvc_show: for the URL shown */
    if ((rc = jvc_ctx_client(ctx, &c)) != 0)
        goto out;
    json_t *j = r.json;
    const char *self = jvc_str(j, "node_id", NULL);
    char started[64], up[64], db[32], held[32], keys[160], reload[512],
        delay[128];
    const json_t *upv = json_object_get(j, "uptime_seconds");
    jvc_duration_human(json_is_integer(upv) ? json_integer_value(upv) : 0, up,
                       sizeof up);
    jvc_bytes_human(
        (uint64_t)json_integer_value(json_object_get(j, "database_bytes")), db,
        sizeof db);
    jvc_time_human(json_object_get(j, "started_at"), started, sizeof started);
    rc = JVC_EXIT_FAIL;
    if ((t = kv_table()) == NULL || !kv(t, "node", self ? self : "-") ||
        !kv(t, "name", jvc_str(j, "name", "-")) ||
        !kv(t, "version", jvc_str(j, "version", "-")) ||
        !kv(t, "url", jvc_client_url(c)) || !kv(t, "started", started) ||
        !kv(t, "uptime", up) || !kv(t, "database", db) ||
        !kv(t, "held batches",
            jvc_int_text(j, "held_batches", held, sizeof held)) ||
        !kv(t, "replication delay",
            delay_text(json_object_get(j, "replication_delay"), delay,
                       sizeof delay)) ||
        !kv(t, "cluster keys",
            keys_text(json_object_get(j, "cluster_keys"), keys, sizeof keys)) ||
        !kv(t, "settings reload",
            reload_text(json_object_get(j, "reload"), reload, sizeof reload)))
        goto oom;
    if (!jvc_table_print(t, stdout))
        goto oom;
    puts("\nVersion vector:");
    if (!print_vv(json_object_get(j, "version_vector"), self))
        goto oom;
    puts("\nPeers:");
    json_t *peers = json_object_get(j, "peers");
    if (json_array_size(peers) == 0)
        puts("none");
    else if (!jvc_print_peers(peers))
        goto oom;
    rc = JVC_EXIT_OK;
    goto out;
oom:
    rc = jvc_oom();
out:
    jvc_table_free(t);
    jvc_resp_fini(&r);
    return rc;
}

const jvc_cmd jvc_cmd_status = {
    .group = "status",
    .args = "",
    .summary = "Show the node's id, version, uptime, version vector and "
               "peers",
    .help = "The version vector says, for every origin, up to which sequence\n"
            "number this node has applied its operations; each peer's row\n"
            "shows how far behind it is.\n",
    .run = run_status,
};

static int run_health(jvc_ctx *ctx, int argc, char **argv)
{
    jvc_client *c;
    jvc_resp r = {0};
    jvc_table *t = NULL;
    char *pos[1];
    int npos, rc;
    if ((rc = jvc_parse_args(ctx->cmd, argc, argv, NULL, 0, pos, 0, 0,
                             &npos)) != 0 ||
        (rc = jvc_ctx_client(ctx, &c)) != 0)
        return rc;
    if ((rc = jvc_http(c, "GET", "/v1/health", NULL, &r)) != 0)
        goto out;
    /* An unhealthy node may answer its report with a 503: still a report. */
    const char *status = jvc_str(r.json, "status", NULL);
    if (status == NULL ||
        !json_is_object(json_object_get(r.json, "components"))) {
        rc = r.status >= 200 && r.status < 300
                 ? (jvc_err("health: the node's answer is not a health "
                            "report"),
                    JVC_EXIT_FAIL)
                 : jvc_fail(c, "health", &r);
        goto out;
    }
    if (ctx->g->json) {
        rc = jvc_print_json(r.json);
    } else {
        char score[32];
        printf("%s (score %s)\n", status,
               jvc_int_text(r.json, "score", score, sizeof score));
        static const char *const h[] = {"COMPONENT", "STATUS", "SCORE",
                                        "REASON"};
        if ((t = jvc_table_new(4, h)) == NULL) {
            rc = jvc_oom();
            goto out;
        }
        jvc_table_right(t, 2);
        const char *name;
        const json_t *comp;
        json_object_foreach(json_object_get(r.json, "components"), name, comp)
        {
            const char *row[4] = {
                name, jvc_str(comp, "status", "-"),
                jvc_int_text(comp, "score", score, sizeof score),
                jvc_str(comp, "reason", "")};
            if (!jvc_table_add(t, row)) {
                rc = jvc_oom();
                goto out;
            }
        }
        if (!jvc_table_print(t, stdout)) {
            rc = jvc_oom();
            goto out;
        }
    }
    /* Anything but healthy fails, so that a script or a probe that
     * checks the exit code sees a node that reaches no peer. */
    if (strcmp(status, "healthy") != 0) {
        jvc_err("the node is %s; see the components above", status);
        rc = rc == JVC_EXIT_OK ? JVC_EXIT_FAIL : rc;
    }
out:
    jvc_table_free(t);
    jvc_resp_fini(&r);
    return rc;
}

const jvc_cmd jvc_cmd_health = {
    .group = "health",
    .args = "",
    .summary = "Show the health score and each component's status",
    .help = "Exits 0 only when the node is healthy (score 80 or more); 1 when\n"
            "it is degraded (40 to 79: a peer unreachable, or none reachable\n"
            "for less than 5 minutes) or unhealthy (below 40); the reason is\n"
            "on stderr and in the REASON column.\n",
    .run = run_health,
};

static int run_backup(jvc_ctx *ctx, int argc, char **argv)
{
    jvc_client *c;
    jvc_resp r = {0};
    char *pos[1], *path = NULL;
    int npos, rc;
    json_t *body = NULL;
    const char *to = NULL, *pass = NULL;
    const jvc_opt opts[] = {{"encrypt-to", 0, &to, NULL},
                            {"passphrase-file", 0, &pass, NULL}};
    if ((rc = jvc_parse_args(ctx->cmd, argc, argv, opts, 2, pos, 1, 1,
                             &npos)) != 0)
        return rc;
    /* Passed as given: the node puts a relative name in its backup dir
     * and refuses any place outside it. */
    path = jvc_strf("%s", pos[0]);
    if (path == NULL)
        return jvc_oom();
    if ((rc = jvc_ctx_client(ctx, &c)) != 0)
        goto out;
    body = json_pack("{s:s}", "path", path);
    if (body == NULL) {
        rc = jvc_oom();
        goto out;
    }
    if ((to || pass) && (rc = jvc_backup_seal_args(ctx->cmd, to, pass, body)))
        goto out;
    if ((rc = jvc_call(c, "backup", "POST", "/v1/backup", body, &r)) != 0)
        goto out;
    if (ctx->g->json) {
        rc = jvc_print_json(r.json);
    } else {
        char size[32];
        jvc_bytes_human(
            (uint64_t)json_integer_value(json_object_get(r.json, "bytes")),
            size, sizeof size);
        printf("backup written to %s on the node's host (%s)\n",
               jvc_str(r.json, "path", path), size);
    }
out:
    json_decref(body);
    jvc_resp_fini(&r);
    jv_free(path);
    return rc;
}

const jvc_cmd jvc_cmd_backup = {
    .group = "backup",
    .args = "FILE [--encrypt-to KEYFILE | --passphrase-file FILE]",
    .summary = "Write a consistent copy of the node's database to FILE",
    .help =
        "FILE is written by the node, on the node's host, into its\n"
        "backup dir (jarvisd --backup-dir, default DATA_DIR/backups):\n"
        "a plain name is taken there; an absolute path must lie inside\n"
        "it. The node refuses to overwrite an existing file (also when\n"
        "another backup to it is under way), and prints where it wrote.\n"
        "Restore a backup with 'jarvisd restore FILE' while the node\n"
        "is stopped.\n"
        "  --encrypt-to KEYFILE      encrypt it to a backup public key\n"
        "                            (KEYFILE.pub of jarvisctl backup-key)\n"
        "  --passphrase-file FILE    encrypt it under the passphrase in\n"
        "                            FILE (its first line; Argon2id)\n"
        "Open an encrypted backup with 'jarvisctl backup-open'.\n",
    .run = run_backup,
};

static int run_verify(jvc_ctx *ctx, int argc, char **argv)
{
    jvc_client *c;
    jvc_resp r = {0};
    jvc_table *t = NULL;
    char *pos[1];
    int npos, rc;
    if ((rc = jvc_parse_args(ctx->cmd, argc, argv, NULL, 0, pos, 0, 0,
                             &npos)) != 0 ||
        (rc = jvc_ctx_client(ctx, &c)) != 0)
        return rc;
    if ((rc = jvc_call(c, "verify", "POST", "/v1/verify", NULL, &r)) != 0)
        goto out;
    const json_t *j = r.json;
    bool ok = json_is_true(json_object_get(j, "ok"));
    if (ctx->g->json) {
        rc = jvc_print_json(j);
    } else {
        static const char *const ints[][2] = {
            {"batches", "batches"},     {"ops", "operations"},
            {"origins", "origins"},     {"bad_signatures", "bad signatures"},
            {"bad_links", "bad links"}, {"bad_encodings", "bad encodings"}};
        char n[32];
        if ((t = kv_table()) == NULL ||
            !kv(t, "result", ok ? "ok" : "FAILED") ||
            !kv(t, "integrity", jvc_str(j, "integrity", "-")))
            goto oom;
        for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
            if (!kv(t, ints[i][1], jvc_int_text(j, ints[i][0], n, sizeof n)))
                goto oom;
        if (!kv(t, "version vector",
                json_is_true(json_object_get(j, "vv_matches"))
                    ? "matches the log"
                    : "DIFFERS from the log") ||
            !kv(t, "state",
                json_is_true(json_object_get(j, "state_matches"))
                    ? "equals a replay of the log"
                    : "DIFFERS from a replay of the log"))
            goto oom;
        const char *detail = jvc_str(j, "detail", "");
        if (detail[0] != '\0' && !kv(t, "detail", detail))
            goto oom;
        /* Compacted history: the state up to the cut rests on the base. */
        if (json_is_true(json_object_get(j, "base")) &&
            !kv(t, "base",
                json_is_true(json_object_get(j, "base_ok"))
                    ? "signed snapshot checks (log checked from its cut)"
                    : jvc_str(j, "base_detail", "FAILS its checks")))
            goto oom;
        if (!jvc_table_print(t, stdout))
            goto oom;
    }
    if (!ok) {
        jvc_err("verify found problems in the node's data");
        rc = rc == JVC_EXIT_OK ? JVC_EXIT_FAIL : rc;
    }
    goto out;
oom:
    rc = jvc_oom();
out:
    jvc_table_free(t);
    jvc_resp_fini(&r);
    return rc;
}

const jvc_cmd jvc_cmd_verify = {
    .group = "verify",
    .args = "",
    .summary = "Check the node's database: integrity, signatures, links, "
               "state equals replay",
    .help = "Runs on the node: SQLite's integrity check, every batch's\n"
            "signature and link to its origin's previous batch, the version\n"
            "vector against the log, and the materialized state against a\n"
            "replay of the log. Exits 1 when any check fails.\n",
    .run = run_verify,
};

/* Writes the bytes to path through a temporary file, so that a failed
 * export never leaves half a file under the name asked for. */
static int write_file(const char *path, const char *data, size_t len)
{
    int rc = JVC_EXIT_FAIL;
    char *tmp = jvc_strf("%s.tmp", path);
    FILE *f = NULL;
    if (tmp == NULL)
        return jvc_oom();
    if ((f = fopen(tmp, "w")) == NULL) {
        jvc_err("export: cannot create %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (fwrite(data, 1, len, f) != len || fflush(f) != 0 ||
        fsync(fileno(f)) != 0) {
        jvc_err("export: cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (fclose(f) != 0) {
        f = NULL;
        jvc_err("export: cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    f = NULL;
    if (rename(tmp, path) != 0) {
        jvc_err("export: cannot rename %s to %s: %s", tmp, path,
                strerror(errno));
        goto out;
    }
    rc = JVC_EXIT_OK;
out:
    if (f != NULL)
        fclose(f);
    if (rc != JVC_EXIT_OK)
        unlink(tmp);
    jv_free(tmp);
    return rc;
}

static int run_export(jvc_ctx *ctx, int argc, char **argv)
{
    jvc_client *c;
    jvc_resp r = {0};
    char *pos[1];
    const char *out_path = NULL;
    int npos, rc;
    const jvc_opt opts[] = {{"output", 'o', &out_path, NULL}};
    if ((rc = jvc_parse_args(ctx->cmd, argc, argv, opts, 1, pos, 0, 0,
                             &npos)) != 0 ||
        (rc = jvc_ctx_client(ctx, &c)) != 0)
        return rc;
    if ((rc = jvc_call(c, "export", "GET", "/v1/export", NULL, &r)) != 0)
        goto out;
    /* The bytes exactly as the node sent them: converged nodes give
     * identical bytes, and re-encoding could change them. */
    if (out_path != NULL) {
        rc = write_file(out_path, r.body, r.len);
    } else if (fwrite(r.body, 1, r.len, stdout) != r.len) {
        jvc_err("export: cannot write to standard output");
        rc = JVC_EXIT_FAIL;
    }
out:
    jvc_resp_fini(&r);
    return rc;
}

const jvc_cmd jvc_cmd_export = {
    .group = "export",
    .args = "[-o FILE]",
    .summary = "Print the whole replicated state as deterministic JSON",
    .help = "Options:\n"
            "  -o, --output FILE  write to FILE instead of standard output\n"
            "\n"
            "Only the replicated state (counters, audit, config, archive,\n"
            "trust), not sessions, keys or peers. Two nodes that have\n"
            "converged export identical bytes; compare exports with\n"
            "'jarvisctl diff A.json B.json'. The output is JSON with or\n"
            "without --json, and the bytes are the node's, unchanged.\n",
    .run = run_export,
};
