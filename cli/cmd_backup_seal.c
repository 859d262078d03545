/*
 * cmd_backup_seal.c - encrypted backups: backup-key makes a backup key
 * pair, backup-open opens (or only checks) an encrypted backup, and the
 * options of `backup` that ask the node for one (net/bseal.h).
 *
 * Both commands work offline, without a node: the secret key and the
 * passphrase never reach the node that writes the backup.
 */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "args.h"
#include "bseal.h"
#include "client.h"
#include "output.h"

/* Reports why a key or passphrase file was refused. */
static bool loaded(jv_err err, const char *why)
{
    if (err)
        jvc_err("%s", why);
    return err == JV_OK;
}

static bool read_pass(const char *path, char out[JV_BSEAL_MAX_PASS + 1])
{
    char why[512];
    return loaded(jv_bseal_read_pass(path, out, why, sizeof why), why);
}

static bool read_key(const char *path, bool want_secret,
                     uint8_t out[JV_BSEAL_KEY_LEN])
{
    char why[512];
    return loaded(jv_bseal_read_key(path, want_secret, out, why, sizeof why),
                  why);
}

int jvc_backup_seal_args(const jvc_cmd *cmd, const char *to, const char *pass,
                         json_t *body)
{
    if (to && pass)
        return jvc_usage_error(cmd, "give --encrypt-to or --passphrase-file, "
                                    "not both");
    if (to) {
        uint8_t pk[JV_BSEAL_KEY_LEN];
        char hex[2 * JV_BSEAL_KEY_LEN + 1];
        if (!read_key(to, false, pk))
            return JVC_EXIT_FAIL;
        sodium_bin2hex(hex, sizeof hex, pk, sizeof pk);
        return json_object_set_new(body, "encrypt_to", json_string(hex))
                   ? jvc_oom()
                   : JVC_EXIT_OK;
    }
    char p[JV_BSEAL_MAX_PASS + 1];
    if (!read_pass(pass, p))
        return JVC_EXIT_FAIL;
    int rc = json_object_set_new(body, "passphrase", json_string(p))
                 ? jvc_oom()
                 : JVC_EXIT_OK;
    sodium_memzero(p, sizeof p);
    return rc;
}

/* -- backup-key ----------------------------------------------------------- */

static bool write_new(const char *path, mode_t mode, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        jvc_err("cannot create %s: %s", path,
                errno == EEXIST ? "it exists" : strerror(errno));
        return false;
    }
    size_t n = strlen(text);
    bool ok = write(fd, text, n) == (ssize_t)n && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok) {
        jvc_err("cannot write %s: %s", path, strerror(errno));
        unlink(path);
    }
    return ok;
}

static int run_key(jvc_ctx *ctx, int argc, char **argv)
{
    const char *out = NULL;
    int npos, rc;
    const jvc_opt opts[] = {{"output", 'o', &out, NULL}};
    if ((rc = jvc_parse_args(ctx->cmd, argc, argv, opts, 1, NULL, 0, 0, &npos)))
        return rc;
    if (!out)
        return jvc_usage_error(ctx->cmd, "-o FILE is required");
    uint8_t pk[JV_BSEAL_KEY_LEN], sk[JV_BSEAL_KEY_LEN];
    char hex[2 * JV_BSEAL_KEY_LEN + 1], text[256];
    char *pub = jvc_strf("%s.pub", out);
    if (!pub)
        return jvc_oom();
    jv_bseal_keygen(pk, sk);
    sodium_bin2hex(hex, sizeof hex, sk, sizeof sk);
    snprintf(text, sizeof text,
             "# jarvis backup secret key: keep it off the node's host\n%s\n",
             hex);
    rc = JVC_EXIT_FAIL;
    if (write_new(out, 0600, text)) {
        sodium_bin2hex(hex, sizeof hex, pk, sizeof pk);
        snprintf(text, sizeof text, "# jarvis backup public key\n%s\n", hex);
        if (write_new(pub, 0644, text))
            rc = JVC_EXIT_OK;
        else
            unlink(out);
    }
    sodium_memzero(sk, sizeof sk);
    sodium_memzero(text, sizeof text);
    if (!rc && !ctx->g->json)
        printf("wrote %s (secret, mode 0600) and %s (public: give it to "
               "'jarvisctl backup --encrypt-to')\n",
               out, pub);
    jv_free(pub);
    return rc;
}

const jvc_cmd jvc_cmd_backup_key = {
    .group = "backup-key",
    .args = "-o FILE",
    .summary = "Make a key pair for encrypted backups (offline)",
    .help = "Writes FILE, the secret key (mode 0600; refused if it\n"
            "exists), and FILE.pub, the public key. Backups encrypted to\n"
            "FILE.pub (jarvisctl backup --encrypt-to FILE.pub) open only\n"
            "with FILE: keep it away from the node's host.\n",
    .run = run_key,
};

/* -- backup-open ---------------------------------------------------------- */

static int run_open(jvc_ctx *ctx, int argc, char **argv)
{
    const char *out = NULL, *key = NULL, *pass = NULL;
    char *pos[1];
    int npos, rc;
    jv_bseal_key k;
    const jvc_opt opts[] = {{"output", 'o', &out, NULL},
                            {"key", 0, &key, NULL},
                            {"passphrase-file", 0, &pass, NULL}};
    if ((rc = jvc_parse_args(ctx->cmd, argc, argv, opts, 3, pos, 1, 1, &npos)))
        return rc;
    if ((key != NULL) == (pass != NULL))
        return jvc_usage_error(ctx->cmd,
                               "give exactly one of --key, --passphrase-file");
    char why[512];
    jv_err err = jv_bseal_open_key(key, pass, &k, why, sizeof why);
    if (!err)
        err = jv_bseal_open_file(pos[0], out, &k, why, sizeof why);
    jv_bseal_key_wipe(&k);
    if (err)
        jvc_err("%s", why);
    rc = err ? JVC_EXIT_FAIL : JVC_EXIT_OK;
    if (!rc && !ctx->g->json) {
        if (out)
            printf("opened %s into %s: restore it with 'jarvisctl restore "
                   "%s' while the node is stopped\n",
                   pos[0], out, out);
        else
            printf("%s is intact and opens with this %s\n", pos[0],
                   key ? "key" : "passphrase");
    }
    return rc;
}

const jvc_cmd jvc_cmd_backup_open = {
    .group = "backup-open",
    .args = "FILE [-o OUT] (--key KEYFILE | --passphrase-file FILE)",
    .summary = "Open (or check) an encrypted backup (offline)",
    .help = "  -o, --output OUT          write the opened database there\n"
            "                            (refused if it exists); without\n"
            "                            it, only check that FILE is intact\n"
            "                            and opens with this key\n"
            "  --key KEYFILE             the secret key of backup-key\n"
            "  --passphrase-file FILE    the passphrase (its first line)\n"
            "A wrong key, or a file damaged anywhere, is refused and OUT is\n"
            "never created. Then 'jarvisctl restore OUT' restores it.\n",
    .run = run_open,
};
