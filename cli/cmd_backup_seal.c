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

#define SMALL_FILE 4096

/* A small text file (key or passphrase) into buf, NUL-terminated. */
static bool read_small(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        jvc_err("cannot read %s: %s", path, strerror(errno));
        return false;
    }
    ssize_t n = read(fd, buf, len - 1);
    close(fd);
    if (n < 0) {
        jvc_err("cannot read %s: %s", path, strerror(errno));
        return false;
    }
    buf[n] = '\0';
    return true;
}

static bool read_pass(const char *path, char out[JV_BSEAL_MAX_PASS + 1])
{
    char buf[SMALL_FILE];
    if (!read_small(path, buf, sizeof buf))
        return false;
    size_t n = strcspn(buf, "\r\n");
    bool ok = n >= 8 && n <= JV_BSEAL_MAX_PASS;
    if (ok)
        memcpy(out, buf, n), out[n] = '\0';
    else
        jvc_err("the passphrase (first line of %s) must have 8 to %d bytes",
                path, JV_BSEAL_MAX_PASS);
    sodium_memzero(buf, sizeof buf);
    return ok;
}

static bool read_key(const char *path, bool want_secret,
                     uint8_t out[JV_BSEAL_KEY_LEN])
{
    char buf[SMALL_FILE];
    if (!read_small(path, buf, sizeof buf))
        return false;
    bool secret = strstr(buf, "secret key") != NULL;
    bool ok = jv_bseal_parse_key(buf, strlen(buf), out) == JV_OK;
    sodium_memzero(buf, sizeof buf);
    if (!ok)
        jvc_err("%s holds no backup key (jarvisctl backup-key makes one)",
                path);
    else if (secret != want_secret)
        jvc_err(want_secret ? "%s is a public key; opening needs the secret "
                              "key file"
                            : "%s is the secret key; encrypt to its .pub file "
                              "and keep the secret off the node's host",
                path);
    return ok && secret == want_secret;
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

static const char *open_error(jv_err err)
{
    switch (err) {
    case JV_EDECODE:
        return "not an encrypted Jarvis backup, or its head is damaged";
    case JV_EPERM:
        return "it was encrypted the other way (key or passphrase)";
    case JV_ECRYPTO:
        return "wrong key or passphrase";
    case JV_ECORRUPT:
        return "damaged or tampered with (a part does not verify)";
    case JV_ETRUNC:
        return "truncated: the end is missing";
    case JV_ETRAILING:
        return "bytes follow its end";
    default:
        return jv_strerror(err);
    }
}

static bool open_key(const char *key, const char *pass, jv_bseal_key *k)
{
    memset(k, 0, sizeof *k);
    if (pass) {
        k->mode = JV_BSEAL_MODE_PASS;
        return read_pass(pass, k->pass);
    }
    k->mode = JV_BSEAL_MODE_KEY;
    if (!read_key(key, true, k->sk))
        return false;
    jv_bseal_public(k->sk, k->pk);
    return true;
}

/* Opens src into a temporary next to out (or /dev/null: a check), linked
 * as out only once all of it verified. */
static int open_into(const char *src, const char *out, const jv_bseal_key *k)
{
    char *tmp = out ? jvc_strf("%s.tmp%ld", out, (long)getpid()) : NULL;
    int in = open(src, O_RDONLY | O_CLOEXEC), dst = -1, rc = JVC_EXIT_FAIL;
    if (out && !tmp)
        rc = jvc_oom();
    else if (in < 0)
        jvc_err("cannot read %s: %s", src, strerror(errno));
    else if ((dst =
                  out ? open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)
                      : open("/dev/null", O_WRONLY | O_CLOEXEC)) < 0)
        jvc_err("cannot create %s: %s", out ? tmp : "/dev/null",
                strerror(errno));
    else {
        jv_err err = jv_bseal_decrypt(in, dst, k);
        if (err)
            jvc_err("%s: %s; nothing written", src, open_error(err));
        else if (out && (fsync(dst) != 0 || link(tmp, out) != 0))
            jvc_err("cannot write %s: %s", out,
                    errno == EEXIST ? "it exists" : strerror(errno));
        else
            rc = JVC_EXIT_OK;
    }
    if (in >= 0)
        close(in);
    if (dst >= 0)
        close(dst);
    if (tmp && dst >= 0)
        unlink(tmp);
    jv_free(tmp);
    return rc;
}

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
    if (!open_key(key, pass, &k)) {
        jv_bseal_key_wipe(&k);
        return JVC_EXIT_FAIL;
    }
    rc = open_into(pos[0], out, &k);
    jv_bseal_key_wipe(&k);
    if (!rc && !ctx->g->json) {
        if (out)
            printf("opened %s into %s: restore it with 'jarvisctl restore "
                   "%s' while the node is stopped\n",
                   pos[0], out, out);
        else
            printf("%s is intact and opens with this key\n", pos[0]);
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
