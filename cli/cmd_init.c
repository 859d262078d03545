/*
 * cmd_init.c - the commands that need no running node: cluster-key, and
 * `init` and `restore`, which work on a stopped node's data dir.
 *
 * jarvisctl is a client of the API and links none of the node's storage
 * code: `init` and `restore` are aliases that run `jarvisd init|restore`
 * (the binary that owns the data dir) with the same arguments. jarvisd is
 * looked for next to jarvisctl's own executable first (an install, a
 * build tree), then on PATH.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "args.h"
#include "client.h"
#include "keyring.h"
#include "output.h"

/* <directory of our executable>/jarvisd, if it is there and executable. */
static bool jarvisd_beside_us(char *out, size_t outlen)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return false;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash == NULL)
        return false;
    *slash = '\0';
    return (size_t)snprintf(out, outlen, "%s/jarvisd", self) < outlen &&
           access(out, X_OK) == 0;
}

/* Runs `jarvisd GROUP ARGS... [--data-dir DIR] [--json]`: the global
 * flags jarvisctl took off the line go back on it. Returns only on
 * failure. */
static int exec_jarvisd(jvc_ctx *ctx, int argc, char **argv)
{
    char path[PATH_MAX];
    const char **args = jv_calloc((size_t)argc + 6, sizeof *args);
    if (args == NULL)
        return jvc_oom();
    int n = 0;
    args[n++] = "jarvisd";
    args[n++] = ctx->cmd->group;
    for (int i = 0; i < argc; i++)
        args[n++] = argv[i];
    if (ctx->g->data_dir != NULL) {
        args[n++] = "--data-dir";
        args[n++] = ctx->g->data_dir;
    }
    if (ctx->g->json)
        args[n++] = "--json";
    args[n] = NULL;
    /* exec takes char *const[] for historical reasons; it writes nothing. */
    union {
        const char **c;
        char *const *m;
    } u = {.c = args};
    fflush(NULL);
    if (jarvisd_beside_us(path, sizeof path))
        execv(path, u.m);
    else
        execvp("jarvisd", u.m);
    jvc_err("%s: cannot run jarvisd: %s", ctx->cmd->group, strerror(errno));
    fprintf(stderr, "hint: jarvisd does this work; it is looked for next to "
                    "jarvisctl, then on PATH\n");
    jv_free(args);
    return JVC_EXIT_FAIL;
}

const jvc_cmd jvc_cmd_init = {
    .group = "init",
    .args = "DIR",
    .summary = "Prepare a data dir without starting a node (runs "
               "'jarvisd init')",
    .help = "Runs 'jarvisd init DIR', which creates DIR and its missing\n"
            "parents (mode 0700), the node's Ed25519 identity (node.key,\n"
            "node.id), its database, and the first admin API key, written\n"
            "once to DIR/admin.key (mode 0600). Running it again on a\n"
            "prepared dir changes nothing. Refuses while a node runs on\n"
            "DIR. Needs no node and no credential.\n",
    .run = exec_jarvisd,
};

const jvc_cmd jvc_cmd_restore = {
    .group = "restore",
    .args = "FILE [--data-dir DIR] [--force]",
    .summary = "Replace a stopped node's database with a backup (runs "
               "'jarvisd restore')",
    .help = "Options:\n"
            "  --data-dir DIR  the data dir to restore into (default:\n"
            "                  $JARVIS_DATA_DIR, else the default data dir)\n"
            "  --force         restore a backup made by another node\n"
            "\n"
            "Runs 'jarvisd restore FILE'. Offline: refuses while a node runs\n"
            "on the data dir. FILE is checked first (a Jarvis database,\n"
            "integrity, signatures, state equals replay); a bad backup\n"
            "changes nothing. The old database is replaced atomically. The\n"
            "restored node signs under a new origin that carries on for its\n"
            "old one (needs the data dir's node.key) and accepts writes at\n"
            "once; 'jarvisctl health' says degraded until it has caught up\n"
            "with every peer.\n",
    .run = exec_jarvisd,
};

/* A new cluster key: one line of 64 hex digits, to a new file of mode 0600
 * or to stdout. */
static int run_cluster_key(jvc_ctx *ctx, int argc, char **argv)
{
    const char *out = NULL;
    char *pos[1], hex[2 * JV_KEY_LEN + 1];
    int npos, rc, fd;
    const jvc_opt opts[] = {{"output", 'o', &out, NULL}};
    if ((rc = jvc_parse_args(ctx->cmd, argc, argv, opts, 1, pos, 0, 0,
                             &npos)) != 0)
        return rc;
    if (jv_keyring_generate_hex(hex) != JV_OK) {
        jvc_err("cluster-key: cannot make a random key");
        return JVC_EXIT_FAIL;
    }
    if (!out && ctx->g->json) {
        json_t *j = json_pack("{s:s}", "key", hex);
        rc = j ? jvc_print_json(j) : jvc_oom();
        json_decref(j);
        return rc;
    }
    if (!out) {
        printf("%s\n", hex);
        return JVC_EXIT_OK;
    }
    fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        jvc_err("cluster-key: cannot create %s: %s", out, strerror(e));
        /* The file is edited only by the rotation's commands, which check
         * what they write (docs/operations.md). */
        if (e == EEXIST)
            fprintf(stderr,
                    "hint: to rotate keys, add a new one to it: jarvisctl "
                    "cluster-key | jarvisctl cluster-key add %s "
                    "(docs/operations.md)\n",
                    out);
        return JVC_EXIT_FAIL;
    }
    char text[128];
    int n = snprintf(text, sizeof text,
                     "# Jarvis cluster key: the first line seals, every line "
                     "opens\n%s\n",
                     hex);
    bool ok = write(fd, text, (size_t)n) == n && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok) {
        jvc_err("cluster-key: cannot write %s: %s", out, strerror(errno));
        unlink(out);
        return JVC_EXIT_FAIL;
    }
    if (ctx->g->json) {
        json_t *j = json_pack("{s:s,s:s}", "path", out, "mode", "0600");
        rc = j ? jvc_print_json(j) : jvc_oom();
        json_decref(j);
        return rc;
    }
    printf("wrote a new cluster key to %s (mode 0600); give every node the "
           "same file with --cluster-key-file\n",
           out);
    return JVC_EXIT_OK;
}

const jvc_cmd jvc_cmd_cluster_key = {
    .group = "cluster-key",
    .args = "[-o FILE]",
    .summary = "Make a new cluster key (offline)",
    .help =
        "  -o, --output FILE  write it to a new file of mode 0600 instead\n"
        "                     of printing it\n"
        "\n"
        "Every node of a cluster gets the same key file\n"
        "(jarvisd --cluster-key-file); peer traffic is encrypted and\n"
        "authenticated with it (XChaCha20-Poly1305). --json prints\n"
        "{\"key\": HEX}, or {\"path\": FILE, \"mode\": \"0600\"} with -o.\n",
    .run = run_cluster_key,
};
