/*
 * cmd_bundle.c - bundle create, vector, apply, inspect: batches carried by
 * hand between nodes that never connect (docs/operations.md, "Air-gapped
 * sites"; the format is in docs/protocol.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "args.h"
#include "bundle.h"
#include "client.h"
#include "output.h"

#define MAX_FILE (4ull << 30)

/* The whole file into *out (jv_malloc'd). */
static int read_file(const char *path, uint8_t **out, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    uint8_t *p = NULL;
    if (fd < 0 || fstat(fd, &st) != 0) {
        jvc_err("cannot read %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return JVC_EXIT_FAIL;
    }
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > MAX_FILE) {
        jvc_err("%s is not a regular file of at most 4 GiB", path);
        close(fd);
        return JVC_EXIT_FAIL;
    }
    size_t n = (size_t)st.st_size, got = 0;
    if ((p = jv_malloc(n ? n : 1)) == NULL) {
        close(fd);
        return jvc_oom();
    }
    while (got < n) {
        ssize_t r = read(fd, p + got, n - got);
        if (r <= 0) {
            jvc_err("cannot read %s: %s", path,
                    r < 0 ? strerror(errno) : "file shrank");
            close(fd);
            jv_free(p);
            return JVC_EXIT_FAIL;
        }
        got += (size_t)r;
    }
    close(fd);
    *out = p;
    *len = n;
    return JVC_EXIT_OK;
}

/* Writes data to path through a temporary file (mode 0600), so that a
 * failed write leaves no half bundle under the name. */
static int write_file(const char *path, const void *data, size_t len)
{
    char *tmp = jvc_strf("%s.tmp%ld", path, (long)getpid());
    if (tmp == NULL)
        return jvc_oom();
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    bool ok = fd >= 0;
    size_t done = 0;
    while (ok && done < len) {
        ssize_t w = write(fd, (const char *)data + done, len - done);
        ok = w > 0;
        done += ok ? (size_t)w : 0;
    }
    ok = ok && fsync(fd) == 0;
    if (fd >= 0)
        ok = close(fd) == 0 && ok;
    ok = ok && rename(tmp, path) == 0;
    if (!ok) {
        jvc_err("cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
    }
    jv_free(tmp);
    return ok ? JVC_EXIT_OK : JVC_EXIT_FAIL;
}

/* -- create --------------------------------------------------------------- */

/* The vector of a file `bundle vector` wrote, compact, for since=. */
static char *vector_arg(const char *path)
{
    json_error_t e;
    json_t *f = json_load_file(path, 0, &e);
    json_t *v = f ? json_object_get(f, "version_vector") : NULL;
    char *s = NULL;
    if (!json_is_object(v))
        jvc_err("%s is not a vector file (jarvisctl bundle vector writes "
                "one)%s%s",
                path, f ? "" : ": ", f ? "" : e.text);
    else
        s = jvc_json_compact(v);
    json_decref(f);
    return s;
}

static int run_create(jvc_ctx *ctx, int argc, char **argv)
{
    const char *out = NULL, *for_id = NULL, *since = NULL, *to = NULL;
    bool all = false;
    int npos, rc;
    jvc_client *cl;
    jvc_resp r = {0};
    char *vec = NULL;
    jv_buf path;
    const jvc_opt opts[] = {{"output", 'o', &out, NULL},
                            {"for", 0, &for_id, NULL},
                            {"since", 0, &since, NULL},
                            {"all", 0, NULL, &all},
                            {"to", 0, &to, NULL}};
    if ((rc = jvc_parse_args(ctx->cmd, argc, argv, opts, 5, NULL, 0, 0, &npos)))
        return rc;
    if (!out)
        return jvc_usage_error(ctx->cmd, "-o FILE is required");
    if ((for_id != NULL) + (since != NULL) + all != 1)
        return jvc_usage_error(ctx->cmd,
                               "give exactly one of --for, --since, --all");
    if (since && (vec = vector_arg(since)) == NULL)
        return JVC_EXIT_FAIL;
    jv_buf_init(&path);
    jv_buf_append(&path, "/v1/bundles", 11);
    if (for_id)
        jvc_query_add(&path, "for", for_id);
    if (vec)
        jvc_query_add(&path, "since", vec);
    if (all)
        jvc_query_add(&path, "all", "1");
    if (to)
        jvc_query_add(&path, "to", to);
    jv_buf_append(&path, "", 1);
    jv_free(vec);
    if (jv_buf_err(&path)) {
        rc = jvc_oom();
        goto out;
    }
    if ((rc = jvc_ctx_client(ctx, &cl)) ||
        (rc = jvc_http_bytes(cl, "GET", (const char *)path.data, NULL, 0, NULL,
                             &r)))
        goto out;
    if (r.status != 200) {
        rc = jvc_fail(cl, "bundle create", &r);
        goto out;
    }
    if ((rc = write_file(out, r.body, r.len)))
        goto out;
    if (ctx->g->json) {
        json_t *o =
            json_pack("{s:s,s:I}", "file", out, "bytes", (json_int_t)r.len);
        rc = jvc_print_json(o);
        json_decref(o);
    } else {
        char sz[32];
        jvc_bytes_human(r.len, sz, sizeof sz);
        printf("wrote %s (%s), sealed %s\n", out, sz,
               to ? "to that node" : "under the cluster key");
    }
out:
    jvc_resp_fini(&r);
    jv_buf_fini(&path);
    return rc;
}

const jvc_cmd jvc_cmd_bundle_create = {
    .group = "bundle",
    .name = "create",
    .args = "-o FILE (--for NODE_ID | --since VECTOR_FILE | --all) "
            "[--to NODE_ID]",
    .summary = "Write the batches another node lacks to a signed bundle",
    .help = "  -o, --output FILE     where to write the bundle (mode 0600)\n"
            "  --for NODE_ID         what that node lacks, as far as this\n"
            "                        node learnt from its bundles\n"
            "  --since VECTOR_FILE   what a node lacks by the vector file it\n"
            "                        wrote (jarvisctl bundle vector)\n"
            "  --all                 every batch this node holds\n"
            "  --to NODE_ID          seal to that node's key (only it opens\n"
            "                        the bundle; readers may do this);\n"
            "                        default: the cluster key (admin)\n"
            "The node signs the bundle; batches keep their origins'\n"
            "signatures. When the target lacks batches this node has\n"
            "compacted (--log-retention), the bundle carries this node's\n"
            "base snapshot, then the batches after it; --all always does\n"
            "on a node with a base.\n",
    .run = run_create,
};

/* -- vector --------------------------------------------------------------- */

static int run_vector(jvc_ctx *ctx, int argc, char **argv)
{
    const char *out = NULL;
    int npos, rc;
    jvc_client *cl;
    jvc_resp r = {0};
    const jvc_opt opts[] = {{"output", 'o', &out, NULL}};
    if ((rc = jvc_parse_args(ctx->cmd, argc, argv, opts, 1, NULL, 0, 0, &npos)))
        return rc;
    if (!out)
        return jvc_usage_error(ctx->cmd, "-o FILE is required");
    if ((rc = jvc_ctx_client(ctx, &cl)) ||
        (rc = jvc_call(cl, "bundle vector", "GET", "/v1/status", NULL, &r)))
        goto out;
    json_t *v = json_pack(
        "{s:O,s:O,s:O}", "node_id", json_object_get(r.json, "node_id"),
        "written_at", json_object_get(r.json, "started_at"), "version_vector",
        json_object_get(r.json, "version_vector"));
    char *text = v ? json_dumps(v, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
    json_decref(v);
    if (!text) {
        rc = jvc_oom();
        goto out;
    }
    rc = write_file(out, text, strlen(text));
    free(text);
    if (!rc && !ctx->g->json)
        printf("wrote %s: this node's version vector; carry it to the node "
               "that makes the bundle (bundle create --since %s)\n",
               out, out);
out:
    jvc_resp_fini(&r);
    return rc;
}

const jvc_cmd jvc_cmd_bundle_vector = {
    .group = "bundle",
    .name = "vector",
    .args = "-o FILE",
    .summary = "Write this node's version vector, for bundle create --since",
    .help = NULL,
    .run = run_vector,
};

/* -- apply ---------------------------------------------------------------- */

static void show_progress(void *arg, uint64_t sent, uint64_t total)
{
    uint64_t *last = arg;
    if (total == 0 || sent == *last)
        return;
    *last = sent;
    char a[32], b[32];
    jvc_bytes_human(sent, a, sizeof a);
    jvc_bytes_human(total, b, sizeof b);
    fprintf(stderr, "\rsent %s of %s (%u%%)  ", a, b,
            (unsigned)(sent * 100 / total));
    if (sent == total)
        fprintf(stderr, "\rsent %s; the node is checking and applying it\n", b);
}

static void print_counts(const json_t *o)
{
    printf(
        "applied %s, already present %s, held aside %lld (gap %s, "
        "untrusted origin %s)",
        jvc_int_text(o, "applied", (char[24]){0}, 24),
        jvc_int_text(o, "already_present", (char[24]){0}, 24),
        (long long)(json_integer_value(json_object_get(o, "held_gap")) +
                    json_integer_value(json_object_get(o, "held_untrusted"))),
        jvc_int_text(o, "held_gap", (char[24]){0}, 24),
        jvc_int_text(o, "held_untrusted", (char[24]){0}, 24));
    static const char *const refused[] = {
        "refused_broken_link",   "refused_equivocation", "dropped_held_full",
        "refused_bad_signature", "refused_malformed",    "refused_clock_skew"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        json_int_t n = json_integer_value(json_object_get(o, refused[i]));
        if (n)
            printf(", %s %lld", refused[i], (long long)n);
    }
    printf("\n");
}

/* The snapshot a bundle carries (docs/protocol.md, "Bundle format"):
 * who made it, how big, how many origins it covers. */
static void print_snapshot(const json_t *sn, const char *lead)
{
    char id[JVC_SHORT_ID + 1], sz[32];
    if (!json_is_object(sn))
        return;
    jvc_bytes_human((uint64_t)json_integer_value(json_object_get(sn, "bytes")),
                    sz, sizeof sz);
    printf("%smade by %s, %s, a vector of %s origins, %s\n", lead,
           jvc_short_id(jvc_str(sn, "maker", "?"), id, sizeof id), sz,
           jvc_int_text(sn, "origins", (char[24]){0}, 24),
           json_is_true(json_object_get(sn, "new_here"))
               ? "covering batches new here"
               : "nothing new here");
}

static int run_apply(jvc_ctx *ctx, int argc, char **argv)
{
    char *pos[1];
    int npos, rc;
    uint8_t *data = NULL;
    size_t len = 0;
    jvc_client *cl;
    jvc_resp r = {0};
    uint64_t last = 0;
    if ((rc = jvc_parse_args(ctx->cmd, argc, argv, NULL, 0, pos, 1, 1, &npos)))
        return rc;
    if ((rc = read_file(pos[0], &data, &len)))
        return rc;
    jvc_progress prog = {show_progress, &last};
    bool tty = isatty(STDERR_FILENO) && !ctx->g->json && len >= (1u << 20);
    if ((rc = jvc_ctx_client(ctx, &cl)) ||
        (rc = jvc_http_bytes(cl, "POST", "/v1/bundles", data, len,
                             tty ? &prog : NULL, &r)))
        goto out;
    if (r.status != 200 || !r.json) {
        rc = jvc_fail(cl, "bundle apply", &r);
        goto out;
    }
    if (ctx->g->json) {
        rc = jvc_print_json(r.json);
        goto out;
    }
    char id[JVC_SHORT_ID + 1];
    printf("bundle made by %s: %s batches\n",
           jvc_short_id(jvc_str(r.json, "maker", "?"), id, sizeof id),
           jvc_int_text(r.json, "batches", (char[24]){0}, 24));
    print_snapshot(json_object_get(r.json, "snapshot"),
                   "snapshot installed first (verified, joined): ");
    print_counts(r.json);
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(r.json, "origins"), i, o)
    {
        printf("  %s: ",
               jvc_short_id(jvc_str(o, "origin", "?"), id, sizeof id));
        print_counts(o);
    }
out:
    jv_free(data);
    jvc_resp_fini(&r);
    return rc;
}

const jvc_cmd jvc_cmd_bundle_apply = {
    .group = "bundle",
    .name = "apply",
    .args = "FILE",
    .summary = "Apply a bundle's batches as if they came from a peer",
    .help = "The node checks the whole bundle first (its maker's signature,\n"
            "that it trusts the maker, the seal, every batch's origin\n"
            "signature) and refuses it whole, changing nothing, if any check\n"
            "fails. Then every batch is applied as a peer's would be, in one\n"
            "pass: applied, already present, or held aside (a gap, an\n"
            "untrusted origin). A snapshot the bundle carries (its maker\n"
            "had compacted batches this node lacked) is verified and\n"
            "joined first, as a peer's is; if it is refused, nothing is\n"
            "applied. Applying a bundle twice changes nothing.\n"
            "Needs the admin role; the node's max-bundle bounds the size.\n",
    .run = run_apply,
};

/* -- inspect -------------------------------------------------------------- */

static void print_local(const char *file, size_t len, const jv_bundle_head *h,
                        bool sig_ok)
{
    char maker[JV_ID_HEX], t[64], sz[32];
    jv_id_hex(&h->maker, maker);
    jvc_time_local((int64_t)h->created_ms, t, sizeof t);
    jvc_bytes_human(len, sz, sizeof sz);
    printf("%s: Jarvis bundle, %s\n", file, sz);
    printf("  made by     %s\n  made at     %s\n", maker, t);
    if (h->flags & JV_BUNDLE_F_TARGET) {
        jv_id_hex(&h->target, maker);
        printf("  made for    %s\n", maker);
    }
    if (h->seal == JV_BUNDLE_SEAL_RECIPIENT) {
        jv_id_hex(&h->recipient, maker);
        printf("  sealed to   %s\n", maker);
    } else {
        printf("  sealed      under cluster key %02x%02x%02x%02x\n",
               h->key_id[0], h->key_id[1], h->key_id[2], h->key_id[3]);
    }
    printf("  signature   %s\n", sig_ok ? "valid (complete, untampered)"
                                        : "INVALID: damaged or tampered");
}

static void print_remote(const json_t *o)
{
    char id[JVC_SHORT_ID + 1];
    printf("  maker       %s by this node\n",
           json_is_true(json_object_get(o, "maker_trusted")) ? "trusted"
                                                             : "NOT trusted");
    printf("  opens here  %s\n",
           json_is_true(json_object_get(o, "can_open")) ? "yes" : "no");
    const char *problem = jvc_str(o, "problem", NULL);
    if (problem)
        printf("  problem     %s\n", problem);
    json_t *sn = json_object_get(o, "snapshot");
    if (json_is_object(sn)) {
        print_snapshot(sn, "  snapshot    ");
        printf("              signature %s, maker %s by this node\n",
               json_is_true(json_object_get(sn, "signature_valid")) ? "valid"
                                                                    : "INVALID",
               json_is_true(json_object_get(sn, "maker_trusted"))
                   ? "trusted"
                   : "NOT trusted");
    }
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(o, "origins"), i, e)
    {
        printf("  origin %s: %s batches, %s operations, seq %s-%s, %s new "
               "here\n",
               jvc_short_id(jvc_str(e, "origin", "?"), id, sizeof id),
               jvc_int_text(e, "batches", (char[24]){0}, 24),
               jvc_int_text(e, "operations", (char[24]){0}, 24),
               jvc_int_text(e, "first_seq", (char[24]){0}, 24),
               jvc_int_text(e, "last_seq", (char[24]){0}, 24),
               jvc_int_text(e, "new_here", (char[24]){0}, 24));
    }
}

static int run_inspect(jvc_ctx *ctx, int argc, char **argv)
{
    char *pos[1];
    int npos, rc;
    uint8_t *data = NULL;
    size_t len = 0;
    jvc_client *cl;
    jvc_resp r = {0};
    jv_bundle_head h;
    if ((rc = jvc_parse_args(ctx->cmd, argc, argv, NULL, 0, pos, 1, 1, &npos)))
        return rc;
    if ((rc = read_file(pos[0], &data, &len)))
        return rc;
    jv_err err = jv_bundle_parse_head(data, len, &h);
    if (err) {
        jvc_err("%s: %s", pos[0],
                err == JV_ETRUNC ? "the bundle is truncated: copy it again"
                                 : "not a Jarvis bundle, or damaged");
        rc = JVC_EXIT_FAIL;
        goto out;
    }
    bool sig_ok = jv_bundle_verify(data, len, &h) == JV_OK;
    if (!ctx->g->json)
        print_local(pos[0], len, &h, sig_ok);
    /* Opening needs the node's keys: ask it, without applying. */
    if ((rc = jvc_ctx_client(ctx, &cl)) ||
        (rc = jvc_http_bytes(cl, "POST", "/v1/bundles/inspect", data, len, NULL,
                             &r)))
        goto out;
    if (r.status != 200 || !r.json) {
        rc = jvc_fail(cl, "bundle inspect", &r);
        goto out;
    }
    if (ctx->g->json)
        rc = jvc_print_json(r.json);
    else
        print_remote(r.json);
    if (!rc && !sig_ok)
        rc = JVC_EXIT_FAIL;
out:
    jv_free(data);
    jvc_resp_fini(&r);
    return rc;
}

const jvc_cmd jvc_cmd_bundle_inspect = {
    .group = "bundle",
    .name = "inspect",
    .args = "FILE",
    .summary = "Show who made a bundle, for whom, what it holds",
    .help = "Reads the bundle's head here (maker, time, target, seal,\n"
            "signature), then asks the node, which opens it without\n"
            "applying anything: whether it trusts the maker and can open\n"
            "the seal, and the batches per origin (and how many are new\n"
            "there). Exit status 1 when the signature is invalid.\n",
    .run = run_inspect,
};
