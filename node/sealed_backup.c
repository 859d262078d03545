#include "sealed_backup.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "backup.h"

/* dest + "." + what + "-" + 16 random hex digits. */
static void temp_name(const char *dest, const char *what, char *out, size_t len)
{
    uint8_t r[8];
    char hex[17];
    randombytes_buf(r, sizeof(r));
    sodium_bin2hex(hex, sizeof(hex), r, sizeof(r));
    snprintf(out, len, "%s.%s-%s", dest, what, hex);
}

static void sync_dir(const char *path)
{
    char copy[PATH_MAX];
    snprintf(copy, sizeof(copy), "%s", path);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

jv_err jv_sealed_backup(jv_store *st, const char *dest, const jv_bseal_key *k,
                        jv_progress *p, char *why, size_t whylen)
{
    char plain[PATH_MAX + 64], sealed[PATH_MAX + 64];
    int in = -1, out = -1;
    bool have_plain = false, have_sealed = false;
    jv_err err;
    if (access(dest, F_OK) == 0)
        return JV_EEXIST;
    temp_name(dest, "plain", plain, sizeof(plain));
    temp_name(dest, "sealed", sealed, sizeof(sealed));
    if ((err = jv_store_backup_progress(st, plain, p))) {
        snprintf(why, whylen, "%s", jv_store_errmsg(st));
        goto out;
    }
    have_plain = true;
    in = open(plain, O_RDONLY | O_CLOEXEC);
    out = open(sealed, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    have_sealed = out >= 0;
    if (in < 0 || out < 0) {
        snprintf(why, whylen, "cannot open a temporary file: %s",
                 strerror(errno));
        err = JV_EIO;
        goto out;
    }
    if ((err = jv_bseal_encrypt(in, out, k)) || fsync(out) != 0) {
        snprintf(why, whylen, "cannot write the encrypted copy: %s",
                 err ? jv_strerror(err) : strerror(errno));
        err = err ? err : JV_EIO;
        goto out;
    }
    /* link() refuses an existing dest: a concurrent backup keeps its
     * file. */
    if (link(sealed, dest) != 0) {
        err = errno == EEXIST ? JV_EEXIST : JV_EIO;
        snprintf(why, whylen, "%s", strerror(errno));
        goto out;
    }
    sync_dir(dest);
    err = JV_OK;
out:
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    if (have_plain)
        unlink(plain);
    if (have_sealed)
        unlink(sealed);
    return err;
}
