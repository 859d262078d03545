/*
 * cmd_diff.c - diff A.json B.json / diff --node URL --node URL: compares two
 * exports per data kind (the comparison itself is diff.c's).
 */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "args.h"
#include "client.h"
#include "diff.h"
#include "output.h"

#define SUMMARY_CHARS 100

typedef struct {
    const char *label; /* file name or node URL */
    json_t *doc;
} source;

static int load_file(const char *path, source *s)
{
    json_error_t e;
    s->label = strcmp(path, "-") == 0 ? "standard input" : path;
    s->doc = strcmp(path, "-") == 0 ? json_loadf(stdin, 0, &e)
                                    : json_load_file(path, 0, &e);
    if (s->doc == NULL) {
        /* jansson says "unable to open ..." for a missing file, and where
         * the JSON breaks otherwise. */
        jvc_err("diff: %s: %s", s->label, e.text);
        return JVC_EXIT_USAGE;
    }
    return JVC_EXIT_OK;
}

/* Node `which` ('A' or 'B'): a refusal names the node, since both are
 * asked with one credential and either may refuse it. */
static int load_node(const jvc_globals *g, const char *url, char which,
                     source *s)
{
    jvc_client *c = NULL;
    jvc_resp r = {0};
    char *what = NULL;
    int rc = jvc_client_new(g, url, &c);
    if (rc != JVC_EXIT_OK) {
        jvc_err("diff: node %c (%s) cannot be asked", which, url);
        return rc;
    }
    s->label = url;
    if ((what = jvc_strf("diff: export of node %c (%s)", which, url)) == NULL) {
        rc = jvc_oom();
        goto out;
    }
    if ((rc = jvc_call(c, what, "GET", "/v1/export", NULL, &r)) == JVC_EXIT_OK)
        s->doc = json_incref(r.json);
out:
    jv_free(what);
    jvc_resp_fini(&r);
    jvc_client_free(c);
    return rc;
}

static bool is_export(const json_t *doc)
{
    const char *f = jvc_str(doc, "format", NULL);
    return json_is_object(doc) && f != NULL &&
           strncmp(f, "jarvis-export/", 14) == 0;
}

static int print_item(const char *mark, const char *kind, const json_t *item,
                      const char *field)
{
    char *sum = jvc_diff_summary(kind, json_object_get(item, field));
    char *safe_sum = sum ? jvc_sanitize(sum, SUMMARY_CHARS) : NULL;
    const char *key = jvc_str(item, "key", "");
    /* Audit entries are "origin:seq": the origin shortened, as elsewhere. */
    char short_key[64];
    const char *colon = strrchr(key, ':');
    if (strcmp(kind, "audit") == 0 && colon != NULL &&
        colon - key > JVC_SHORT_ID) {
        snprintf(short_key, sizeof short_key, "%.*s%.40s", JVC_SHORT_ID, key,
                 colon);
        key = short_key;
    }
    char *safe_key = jvc_sanitize(key, SUMMARY_CHARS);
    int rc = JVC_EXIT_OK;
    if (safe_sum == NULL || safe_key == NULL)
        rc = jvc_oom();
    else
        printf("  %s %s: %s\n", mark, safe_key, safe_sum);
    jv_free(sum);
    jv_free(safe_sum);
    jv_free(safe_key);
    return rc;
}

static int print_human(const json_t *d, const source *a, const source *b)
{
    int rc = JVC_EXIT_OK;
    printf("A: %s\nB: %s\n", a->label, b->label);
    const char *kind;
    json_t *k;
    json_object_foreach(json_object_get(d, "kinds"), kind, k)
    {
        const json_t *oa = json_object_get(k, "only_a");
        const json_t *ob = json_object_get(k, "only_b");
        const json_t *df = json_object_get(k, "different");
        size_t na = json_array_size(oa), nb = json_array_size(ob),
               nd = json_array_size(df);
        if (na + nb + nd == 0) {
            printf("%s: identical\n", kind);
            continue;
        }
        printf("%s: %zu only in A, %zu only in B, %zu different\n", kind, na,
               nb, nd);
        size_t i;
        json_t *it;
        json_array_foreach(oa, i, it)
        {
            if ((rc = print_item("< A only", kind, it, "value")) != 0)
                return rc;
        }
        json_array_foreach(ob, i, it)
        {
            if ((rc = print_item("> B only", kind, it, "value")) != 0)
                return rc;
        }
        json_array_foreach(df, i, it)
        {
            if ((rc = print_item("~ A", kind, it, "a")) != 0 ||
                (rc = print_item("~ B", kind, it, "b")) != 0)
                return rc;
        }
    }
    return rc;
}

static int run_diff(jvc_ctx *ctx, int argc, char **argv)
{
    source src[2] = {{NULL, NULL}, {NULL, NULL}};
    json_t *d = NULL;
    char *pos[2];
    int npos, rc;
    if ((rc = jvc_parse_args(ctx->cmd, argc, argv, NULL, 0, pos, 0, 2,
                             &npos)) != 0)
        return rc;
    size_t nnodes = ctx->g->n_nodes;
    if (nnodes + (size_t)npos != 2)
        return jvc_usage_error(ctx->cmd, "give two exports: two files, two "
                                         "--node URLs, or one of each");
    /* Nodes first, then files: "diff --node URL saved.json" compares the
     * node (A) with the file (B). */
    for (size_t i = 0; i < 2; i++) {
        rc = i < nnodes
                 ? load_node(ctx->g, ctx->g->nodes[i], (char)('A' + i), &src[i])
                 : load_file(pos[i - nnodes], &src[i]);
        if (rc != JVC_EXIT_OK)
            goto out;
        if (!is_export(src[i].doc)) {
            jvc_err("diff: %s is not a Jarvis export (no \"format\": "
                    "\"jarvis-export/...\"); make one with 'jarvisctl "
                    "export'",
                    src[i].label);
            rc = JVC_EXIT_USAGE;
            goto out;
        }
    }
    if ((d = jvc_export_diff(src[0].doc, src[1].doc)) == NULL) {
        rc = jvc_oom();
        goto out;
    }
    bool same = json_is_true(json_object_get(d, "identical"));
    if (ctx->g->json) {
        json_t *labels =
            json_pack("{s:s,s:s}", "a", src[0].label, "b", src[1].label);
        if (labels == NULL || json_object_set_new(d, "sources", labels) != 0) {
            rc = jvc_oom();
            goto out;
        }
        rc = jvc_print_json(d);
    } else if (same) {
        puts("identical");
    } else {
        rc = print_human(d, &src[0], &src[1]);
    }
    if (rc == JVC_EXIT_OK && !same)
        rc = JVC_EXIT_FAIL; /* like diff(1): 1 means "they differ" */
out:
    json_decref(d);
    json_decref(src[0].doc);
    json_decref(src[1].doc);
    return rc;
}

const jvc_cmd jvc_cmd_diff = {
    .group = "diff",
    .args = "A.json B.json | --node URL --node URL | --node URL FILE",
    .summary = "Show what differs between two exports, per data kind",
    .help = "Compares two exports ('jarvisctl export'), read from files ('-'\n"
            "for standard input) or fetched from nodes, kind by kind:\n"
            "counters, audit, config, archive, archive_context, trust.\n"
            "Each differing item is listed as only in A, only in B, or\n"
            "different. With --json, a structured diff:\n"
            "  {\"identical\":false,\"sources\":{\"a\":..,\"b\":..},\n"
            "   \"kinds\":{\"config\":{\"only_a\":[{\"key\",\"value\"}],\n"
            "   \"only_b\":[..],\"different\":[{\"key\",\"a\",\"b\"}]},..}}\n"
            "\n"
            "Both nodes are asked with the same credential: a cluster key\n"
            "('keys create --cluster') works on both; with node keys, export\n"
            "each to a file and compare the files. When a node refuses, the\n"
            "message names it (A or B, and its address).\n"
            "\n"
            "Exit status, as for diff(1): 0 identical, 1 differences found;\n"
            "2 when an input cannot be read or is not an export; 3 and 4 as\n"
            "for every command.\n",
    .run = run_diff,
};
