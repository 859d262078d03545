/*
 * cmd_clusterkey.c - cluster-key add, promote, retire: the steps of a key
 * rotation (docs/operations.md), each an edit of the key file that means
 * one thing whatever the file's comments and blank lines.
 *
 * The file is checked before and after the edit as jarvisd reads it
 * (keyring.h), written to a temporary file in the same directory with the
 * original mode (at most 0600) and owner, synced, and renamed over the old
 * one: a node reloading meanwhile reads the old file or the new one,
 * never half of one. Keys are named by their fingerprint (the key id that
 * travels in clear in every frame); a key itself is never printed.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "args.h"
#include "keyring.h"
#include "output.h"

#define KEYFILE_MAX (64 * 1024)
#define MAX_LINES   512

typedef struct {
    char *text; /* the file, lines split in place */
    char *line[MAX_LINES];
    bool is_key[MAX_LINES];
    char fp[MAX_LINES][9]; /* fingerprint of a key line */
    size_t n;
    struct stat st;
} keyfile;

/* The fingerprint of one key given as 64 hex digits; false if it is not
 * one. */
static bool key_fp(const char *s, size_t len, char fp[9])
{
    jv_keyring one;
    char msg[64];
    while (len &&
           (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r'))
        len--;
    while (len && (*s == ' ' || *s == '\t')) {
        s++;
        len--;
    }
    if (len != 2 * JV_KEY_LEN ||
        jv_keyring_parse(s, len, &one, msg, sizeof msg))
        return false;
    jv_keyring_id_hex(&one, 0, fp);
    jv_keyring_wipe(&one);
    return true;
}

static void keyfile_free(keyfile *f)
{
    if (f->text) {
        sodium_memzero(f->text, KEYFILE_MAX + 1);
        jv_free(f->text);
    }
    memset(f, 0, sizeof *f);
}

/* Reads and checks path: it must load as jarvisd would load it. */
static int keyfile_read(const char *path, keyfile *f)
{
    jv_keyring ring;
    char msg[256];
    memset(f, 0, sizeof *f);
    if (jv_keyring_load(path, &ring, msg, sizeof msg) != JV_OK) {
        jvc_err("cluster-key: %s", msg);
        return JVC_EXIT_FAIL;
    }
    jv_keyring_wipe(&ring);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t got = -1;
    if (fd >= 0 && fstat(fd, &f->st) == 0 &&
        (f->text = jv_calloc(1, KEYFILE_MAX + 1)) != NULL)
        got = read(fd, f->text, KEYFILE_MAX);
    if (fd >= 0)
        close(fd);
    if (got < 0) {
        jvc_err("cluster-key: cannot read %s: %s", path, strerror(errno));
        return JVC_EXIT_FAIL;
    }
    char *s = f->text;
    for (; *s && f->n < MAX_LINES; f->n++) {
        char *nl = strchr(s, '\n');
        if (nl)
            *nl = '\0';
        f->line[f->n] = s;
        f->is_key[f->n] = key_fp(s, strlen(s), f->fp[f->n]);
        s = nl ? nl + 1 : s + strlen(s);
    }
    /* Rewriting it would drop what was not read: refuse instead. */
    if (*s || got == KEYFILE_MAX) {
        jvc_err("cluster-key: %s has more than %d lines or %d bytes", path,
                MAX_LINES - 1, KEYFILE_MAX - 1);
        return JVC_EXIT_FAIL;
    }
    return JVC_EXIT_OK;
}

/* Index of the first key line, or of the one named by a fingerprint or a
 * key; -1 if none. */
static int find_key(const keyfile *f, const char *which)
{
    char fp[9];
    if (which && strlen(which) != 8 && key_fp(which, strlen(which), fp))
        which = fp;
    for (size_t i = 0; i < f->n; i++)
        if (f->is_key[i] && (!which || strcasecmp(f->fp[i], which) == 0))
            return (int)i;
    return -1;
}

static size_t nkeys(const keyfile *f)
{
    size_t n = 0;
    for (size_t i = 0; i < f->n; i++)
        n += f->is_key[i];
    return n;
}

/* Joins the lines into buf (KEYFILE_MAX + 1 bytes); false if too long. */
static bool keyfile_text(const keyfile *f, char *buf, size_t *len)
{
    size_t at = 0;
    for (size_t i = 0; i < f->n; i++) {
        size_t l = strlen(f->line[i]);
        if (at + l + 1 > KEYFILE_MAX)
            return false;
        memcpy(buf + at, f->line[i], l);
        at += l;
        buf[at++] = '\n';
    }
    buf[at] = '\0';
    *len = at;
    return true;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Writes text over path atomically: temp file, same mode (at most 0600)
 * and owner, fsync, rename, fsync of the directory. */
static int replace_file(const char *path, const keyfile *f, const char *text,
                        size_t len)
{
    char *tmp = jvc_strf("%s.XXXXXX", path), *dir = jvc_strf("%s", path);
    int fd = -1, rc = JVC_EXIT_FAIL;
    if (!tmp || !dir) {
        rc = jvc_oom();
        goto out;
    }
    if ((fd = mkstemp(tmp)) < 0) {
        jvc_err("cluster-key: cannot create a file next to %s: %s", path,
                strerror(errno));
        goto out;
    }
    /* The owner stays (a file jarvisd reads as its own user); only root
     * may give it away, and anyone else already owns it. */
    if ((fchown(fd, f->st.st_uid, f->st.st_gid) != 0 && errno != EPERM) ||
        fchmod(fd, f->st.st_mode & 0600) != 0 || write_all(fd, text, len) ||
        fsync(fd) != 0 || close(fd) != 0) {
        jvc_err("cluster-key: cannot write %s: %s", tmp, strerror(errno));
        fd = -2;
        unlink(tmp);
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        jvc_err("cluster-key: cannot replace %s: %s", path, strerror(errno));
        unlink(tmp);
        goto out;
    }
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    rc = JVC_EXIT_OK;
out:
    if (fd >= 0)
        close(fd);
    jv_free(tmp);
    jv_free(dir);
    return rc;
}

/* Checks the edited file loads, writes it, prints the fingerprints. */
static int commit(jvc_ctx *ctx, const char *path, const keyfile *f,
                  const char *did)
{
    char *buf = jv_calloc(1, KEYFILE_MAX + 1), msg[256], desc[128];
    jv_keyring ring;
    size_t len = 0;
    int rc;
    if (!buf)
        return jvc_oom();
    if (!keyfile_text(f, buf, &len)) {
        jvc_err("cluster-key: %s would grow too large", path);
        rc = JVC_EXIT_FAIL;
        goto out;
    }
    if (jv_keyring_parse(buf, len, &ring, msg, sizeof msg) != JV_OK) {
        jvc_err("cluster-key: refusing to write %s: %s", path, msg);
        rc = JVC_EXIT_FAIL;
        goto out;
    }
    if ((rc = replace_file(path, f, buf, len)) != JVC_EXIT_OK)
        goto out;
    jv_keyring_describe(&ring, desc, sizeof desc);
    if (ctx->g->json) {
        char id[9];
        json_t *accept = json_array();
        for (size_t i = 0; i < ring.n; i++) {
            jv_keyring_id_hex(&ring, i, id);
            json_array_append_new(accept, json_string(id));
        }
        jv_keyring_id_hex(&ring, 0, id);
        json_t *o = json_pack("{s:s,s:s,s:s,s:o}", "file", path, "did", did,
                              "send", id, "accept", accept);
        rc = o ? jvc_print_json(o) : jvc_oom();
        json_decref(o);
    } else {
        /* The unit's node holds a copy of the key file made at start: a
         * reload there cannot pass the edit on (docs/operations.md). */
        printf("%s: %s\ncluster keys: %s\nnext: reload the node (kill "
               "-HUP its pid; under systemd: systemctl restart jarvisd)\n",
               path, did, desc);
    }
    jv_keyring_wipe(&ring);
out:
    sodium_memzero(buf, KEYFILE_MAX + 1);
    jv_free(buf);
    return rc;
}

/* The new key: the argument, or one line on stdin ("-" or none), so that
 * it need not show in process listings. */
static bool read_new_key(const char *arg, char out[2 * JV_KEY_LEN + 2])
{
    if (arg && strcmp(arg, "-") != 0) {
        if (strlen(arg) != 2 * JV_KEY_LEN)
            return false;
        memcpy(out, arg, 2 * JV_KEY_LEN + 1);
        return true;
    }
    char line[256];
    if (!fgets(line, sizeof line, stdin))
        return false;
    line[strcspn(line, "\r\n")] = '\0';
    bool ok = strlen(line) == 2 * JV_KEY_LEN;
    if (ok)
        memcpy(out, line, 2 * JV_KEY_LEN + 1);
    sodium_memzero(line, sizeof line);
    return ok;
}

static int run_add(jvc_ctx *ctx, int argc, char **argv)
{
    char *pos[2], key[2 * JV_KEY_LEN + 2], fp[9], did[64];
    int npos, rc, first;
    keyfile f;
    if ((rc = jvc_parse_args(ctx->cmd, argc, argv, NULL, 0, pos, 1, 2,
                             &npos)) != 0)
        return rc;
    if (!read_new_key(npos > 1 ? pos[1] : NULL, key) ||
        !key_fp(key, strlen(key), fp)) {
        sodium_memzero(key, sizeof key);
        return jvc_usage_error(ctx->cmd, "KEY must be 64 hex digits "
                                         "(jarvisctl cluster-key makes one)");
    }
    if ((rc = keyfile_read(pos[0], &f)) != JVC_EXIT_OK)
        goto out;
    rc = JVC_EXIT_FAIL;
    if (find_key(&f, fp) >= 0)
        jvc_err("cluster-key: %s holds key %s already", pos[0], fp);
    else if (nkeys(&f) >= JV_KEYRING_MAX || f.n >= MAX_LINES)
        jvc_err("cluster-key: %s holds %d keys already: retire one first",
                pos[0], JV_KEYRING_MAX);
    else if ((first = find_key(&f, NULL)) >= 0) {
        /* Right after the sending key: accepted, never sending. */
        memmove(&f.line[first + 2], &f.line[first + 1],
                (f.n - (size_t)first - 1) * sizeof f.line[0]);
        f.line[first + 1] = key;
        f.n++;
        snprintf(did, sizeof did, "added key %s (accepted, not sending)", fp);
        rc = commit(ctx, pos[0], &f, did);
    }
out:
    keyfile_free(&f);
    sodium_memzero(key, sizeof key);
    return rc;
}

/* A fingerprint (8 hex digits) or a key (64). */
static bool key_name_ok(const char *s)
{
    size_t n = strspn(s, "0123456789abcdefABCDEF");
    return s[n] == '\0' && (n == 8 || n == 64);
}

/* promote (make it the sending key) or retire (remove it) the key named
 * by a fingerprint or the key itself. */
static int run_change(jvc_ctx *ctx, int argc, char **argv, bool promote)
{
    char *pos[2], fp[9], did[96];
    int npos, rc, at, first;
    keyfile f;
    if ((rc = jvc_parse_args(ctx->cmd, argc, argv, NULL, 0, pos, 2, 2,
                             &npos)) != 0)
        return rc;
    if (!key_name_ok(pos[1]))
        return jvc_usage_error(ctx->cmd,
                               "'%s' is neither a fingerprint (8 "
                               "hex digits) nor a key (64)",
                               pos[1]);
    if ((rc = keyfile_read(pos[0], &f)) != JVC_EXIT_OK)
        goto out;
    rc = JVC_EXIT_FAIL;
    first = find_key(&f, NULL);
    if ((at = find_key(&f, pos[1])) < 0) {
        jvc_err("cluster-key: %s holds no key %s", pos[0], pos[1]);
        goto out;
    }
    snprintf(fp, sizeof fp, "%s", f.fp[at]);
    if (promote && at == first) {
        jvc_err("cluster-key: %s is the sending key already", fp);
        goto out;
    }
    if (!promote && at == first) {
        jvc_err("cluster-key: %s is the sending key: promote another key "
                "first, on every node",
                fp);
        goto out;
    }
    char *line = f.line[at];
    memmove(&f.line[at], &f.line[at + 1],
            (f.n - (size_t)at - 1) * sizeof f.line[0]);
    f.n--;
    if (promote) {
        memmove(&f.line[first + 1], &f.line[first],
                (f.n - (size_t)first) * sizeof f.line[0]);
        f.line[first] = line;
        f.n++;
        snprintf(did, sizeof did, "key %s now sends; the others still open",
                 fp);
    } else {
        snprintf(did, sizeof did, "retired key %s", fp);
    }
    rc = commit(ctx, pos[0], &f, did);
out:
    keyfile_free(&f);
    return rc;
}

static int run_promote(jvc_ctx *ctx, int argc, char **argv)
{
    return run_change(ctx, argc, argv, true);
}

static int run_retire(jvc_ctx *ctx, int argc, char **argv)
{
    return run_change(ctx, argc, argv, false);
}

const jvc_cmd jvc_cmd_cluster_key_add = {
    .group = "cluster-key",
    .name = "add",
    .args = "FILE [KEY|-]",
    .summary = "Rotation step 2: add a key that opens but does not send",
    .help = "KEY is read from stdin when absent or '-' (a key on the command\n"
            "line shows in process listings). The key goes right after the\n"
            "sending key; the file is rewritten atomically with its mode and\n"
            "owner. Refused if the key is there already or the file holds 8.\n"
            "Prints the fingerprints; then reload the node (SIGHUP).\n",
    .run = run_add,
};

const jvc_cmd jvc_cmd_cluster_key_promote = {
    .group = "cluster-key",
    .name = "promote",
    .args = "FILE FINGERPRINT|KEY",
    .summary = "Rotation step 3: make a key the one this node sends under",
    .help = "Do it only once every node has the key (step 2 done and\n"
            "reloaded everywhere). The old sending key still opens.\n"
            "Steps as in docs/operations.md (step 1: jarvisctl cluster-key).\n",
    .run = run_promote,
};

const jvc_cmd jvc_cmd_cluster_key_retire = {
    .group = "cluster-key",
    .name = "retire",
    .args = "FILE FINGERPRINT|KEY",
    .summary = "Rotation step 4: remove a key that no longer sends",
    .help = "Refused for the sending key (promote another one first), so the\n"
            "file never ends up without a key.\n",
    .run = run_retire,
};
