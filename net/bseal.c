#include "bseal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sodium.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"

static const uint8_t magic[8] = {'J', 'V', 'B', 'K', 'E', 'N', 'C', '1'};

#define SS_HEADER crypto_secretstream_xchacha20poly1305_HEADERBYTES
#define SS_ABYTES crypto_secretstream_xchacha20poly1305_ABYTES
#define WRAPPED   (crypto_box_SEALBYTES + JV_BSEAL_KEY_LEN)
#define PASSBLOCK (crypto_pwhash_SALTBYTES + 16)
/* Header sizes by mode, the stream header included. */
#define HEAD_KEY  (9 + WRAPPED + SS_HEADER)
#define HEAD_PASS (9 + PASSBLOCK + SS_HEADER)
#define HEAD_MAX  (HEAD_KEY > HEAD_PASS ? HEAD_KEY : HEAD_PASS)

void jv_bseal_key_wipe(jv_bseal_key *k)
{
    sodium_memzero(k, sizeof(*k));
}

void jv_bseal_keygen(uint8_t pk[JV_BSEAL_KEY_LEN], uint8_t sk[JV_BSEAL_KEY_LEN])
{
    crypto_box_keypair(pk, sk);
}

void jv_bseal_public(const uint8_t sk[JV_BSEAL_KEY_LEN],
                     uint8_t pk[JV_BSEAL_KEY_LEN])
{
    crypto_scalarmult_base(pk, sk);
}

jv_err jv_bseal_parse_key(const char *text, size_t len,
                          uint8_t out[JV_BSEAL_KEY_LEN])
{
    size_t i = 0;
    while (i < len) {
        size_t e = i;
        while (e < len && text[e] != '\n')
            e++;
        size_t a = i, b = e;
        while (a < b && (text[a] == ' ' || text[a] == '\t'))
            a++;
        while (b > a && (text[b - 1] == ' ' || text[b - 1] == '\t' ||
                         text[b - 1] == '\r'))
            b--;
        if (a < b && text[a] != '#') {
            size_t got = 0;
            if (b - a != 2 * JV_BSEAL_KEY_LEN ||
                sodium_hex2bin(out, JV_BSEAL_KEY_LEN, text + a, b - a, NULL,
                               &got, NULL) != 0 ||
                got != JV_BSEAL_KEY_LEN)
                return JV_EINVAL;
            return JV_OK;
        }
        i = e + 1;
    }
    return JV_EINVAL;
}

bool jv_bseal_is_sealed(const uint8_t *buf, size_t n)
{
    return n >= sizeof(magic) && memcmp(buf, magic, sizeof(magic)) == 0;
}

/* -- I/O ------------------------------------------------------------------ */

static jv_err write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return JV_EIO;
        p += w;
        n -= (size_t)w;
    }
    return JV_OK;
}

/* Reads up to n bytes (fewer only at the end of the file). */
static jv_err read_full(int fd, uint8_t *p, size_t n, size_t *got)
{
    *got = 0;
    while (*got < n) {
        ssize_t r = read(fd, p + *got, n - *got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return JV_EIO;
        if (r == 0)
            break;
        *got += (size_t)r;
    }
    return JV_OK;
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* The data key from a passphrase and the head's salt and limits. */
static jv_err pass_key(const char *pass, const uint8_t *block,
                       uint8_t key[JV_BSEAL_KEY_LEN])
{
    uint64_t ops = get64(block + crypto_pwhash_SALTBYTES);
    uint64_t mem = get64(block + crypto_pwhash_SALTBYTES + 8);
    /* Bounded, so that a forged head cannot ask for any memory. */
    if (ops < crypto_pwhash_OPSLIMIT_MIN ||
        ops > crypto_pwhash_OPSLIMIT_SENSITIVE ||
        mem < crypto_pwhash_MEMLIMIT_MIN ||
        mem > crypto_pwhash_MEMLIMIT_SENSITIVE)
        return JV_EDECODE;
    if (crypto_pwhash(key, JV_BSEAL_KEY_LEN, pass, strlen(pass), block, ops,
                      (size_t)mem, crypto_pwhash_ALG_ARGON2ID13) != 0)
        return JV_ENOMEM;
    return JV_OK;
}

/* -- sealing -------------------------------------------------------------- */

/* Builds the head (all but the stream header) and the data key. */
static jv_err seal_head(const jv_bseal_key *k, uint8_t *head, size_t *hlen,
                        uint8_t key[JV_BSEAL_KEY_LEN])
{
    memcpy(head, magic, 8);
    head[8] = (uint8_t)k->mode;
    if (k->mode == JV_BSEAL_MODE_KEY) {
        crypto_secretstream_xchacha20poly1305_keygen(key);
        if (crypto_box_seal(head + 9, key, JV_BSEAL_KEY_LEN, k->pk) != 0)
            return JV_EINVAL;
        *hlen = 9 + WRAPPED;
        return JV_OK;
    }
    if (k->mode != JV_BSEAL_MODE_PASS || !k->pass[0])
        return JV_EINVAL;
    uint8_t *b = head + 9;
    randombytes_buf(b, crypto_pwhash_SALTBYTES);
    put64(b + crypto_pwhash_SALTBYTES, crypto_pwhash_OPSLIMIT_INTERACTIVE);
    put64(b + crypto_pwhash_SALTBYTES + 8, crypto_pwhash_MEMLIMIT_INTERACTIVE);
    *hlen = 9 + PASSBLOCK;
    return pass_key(k->pass, b, key);
}

jv_err jv_bseal_encrypt(int in_fd, int out_fd, const jv_bseal_key *k)
{
    uint8_t head[HEAD_MAX], key[JV_BSEAL_KEY_LEN];
    uint8_t *in = NULL, *out = NULL;
    size_t hlen, got;
    crypto_secretstream_xchacha20poly1305_state st;
    jv_err err;
    if ((err = seal_head(k, head, &hlen, key)))
        goto out;
    crypto_secretstream_xchacha20poly1305_init_push(&st, head + hlen, key);
    hlen += SS_HEADER;
    in = jv_malloc(JV_BSEAL_CHUNK);
    out = jv_malloc(JV_BSEAL_CHUNK + SS_ABYTES);
    if (!in || !out) {
        err = JV_ENOMEM;
        goto out;
    }
    if ((err = write_all(out_fd, head, hlen)))
        goto out;
    /* One chunk ahead, so that the last one gets the FINAL tag. */
    if ((err = read_full(in_fd, in, JV_BSEAL_CHUNK, &got)))
        goto out;
    bool first = true;
    for (;;) {
        uint8_t peek;
        size_t more = 0;
        if (got == JV_BSEAL_CHUNK && (err = read_full(in_fd, &peek, 1, &more)))
            goto out;
        uint8_t tag =
            more ? 0 : crypto_secretstream_xchacha20poly1305_TAG_FINAL;
        unsigned long long clen;
        crypto_secretstream_xchacha20poly1305_push(&st, out, &clen, in, got,
                                                   first ? head : NULL,
                                                   first ? hlen : 0, tag);
        first = false;
        if ((err = write_all(out_fd, out, (size_t)clen)))
            goto out;
        if (!more)
            break;
        in[0] = peek;
        if ((err = read_full(in_fd, in + 1, JV_BSEAL_CHUNK - 1, &got)))
            goto out;
        got++;
    }
    err = JV_OK;
out:
    sodium_memzero(key, sizeof(key));
    sodium_memzero(&st, sizeof(st));
    if (in)
        sodium_memzero(in, JV_BSEAL_CHUNK);
    jv_free(in);
    jv_free(out);
    return err;
}

/* -- opening -------------------------------------------------------------- */

/* Reads and checks the head, derives the data key. */
static jv_err open_head(int fd, const jv_bseal_key *k, uint8_t *head,
                        size_t *hlen, uint8_t key[JV_BSEAL_KEY_LEN])
{
    size_t got;
    jv_err err;
    if ((err = read_full(fd, head, 9, &got)))
        return err;
    if (got < 9 || !jv_bseal_is_sealed(head, got))
        return JV_EDECODE;
    if (head[8] != JV_BSEAL_MODE_KEY && head[8] != JV_BSEAL_MODE_PASS)
        return JV_EDECODE;
    if (head[8] != k->mode)
        return JV_EPERM;
    size_t want = (head[8] == JV_BSEAL_MODE_KEY ? HEAD_KEY : HEAD_PASS) - 9;
    if ((err = read_full(fd, head + 9, want, &got)))
        return err;
    if (got < want)
        return JV_ETRUNC;
    *hlen = 9 + want;
    if (head[8] == JV_BSEAL_MODE_KEY)
        return crypto_box_seal_open(key, head + 9, WRAPPED, k->pk, k->sk) == 0
                   ? JV_OK
                   : JV_ECRYPTO;
    return pass_key(k->pass, head + 9, key);
}

jv_err jv_bseal_decrypt(int in_fd, int out_fd, const jv_bseal_key *k)
{
    uint8_t head[HEAD_MAX], key[JV_BSEAL_KEY_LEN];
    uint8_t *in = NULL, *out = NULL;
    size_t hlen = 0, got;
    crypto_secretstream_xchacha20poly1305_state st;
    jv_err err;
    memset(&st, 0, sizeof(st));
    if ((err = open_head(in_fd, k, head, &hlen, key)))
        goto out;
    if (crypto_secretstream_xchacha20poly1305_init_pull(
            &st, head + hlen - SS_HEADER, key) != 0) {
        err = JV_EDECODE;
        goto out;
    }
    in = jv_malloc(JV_BSEAL_CHUNK + SS_ABYTES);
    out = jv_malloc(JV_BSEAL_CHUNK);
    if (!in || !out) {
        err = JV_ENOMEM;
        goto out;
    }
    for (bool first = true;; first = false) {
        unsigned char tag = 0;
        unsigned long long mlen;
        if ((err = read_full(in_fd, in, JV_BSEAL_CHUNK + SS_ABYTES, &got)))
            goto out;
        if (got < SS_ABYTES) {
            err = JV_ETRUNC;
            goto out;
        }
        if (crypto_secretstream_xchacha20poly1305_pull(
                &st, out, &mlen, &tag, in, got, first ? head : NULL,
                first ? hlen : 0) != 0) {
            /* The first chunk fails under a wrong passphrase too. */
            err = first && k->mode == JV_BSEAL_MODE_PASS ? JV_ECRYPTO
                                                         : JV_ECORRUPT;
            goto out;
        }
        if ((err = write_all(out_fd, out, (size_t)mlen)))
            goto out;
        if (tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL)
            break;
        if (got < JV_BSEAL_CHUNK + SS_ABYTES) {
            err = JV_ETRUNC; /* a short chunk that is not the last one */
            goto out;
        }
    }
    uint8_t extra;
    if ((err = read_full(in_fd, &extra, 1, &got)))
        goto out;
    err = got ? JV_ETRAILING : JV_OK;
out:
    sodium_memzero(key, sizeof(key));
    sodium_memzero(&st, sizeof(st));
    if (out)
        sodium_memzero(out, JV_BSEAL_CHUNK);
    jv_free(in);
    jv_free(out);
    return err;
}

const char *jv_bseal_strerror(jv_err err)
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

#define SMALL_FILE 4096

/* A small text file (key or passphrase) into buf, NUL-terminated. */
static jv_err read_small(const char *path, char *buf, size_t len, char *why,
                         size_t whylen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd < 0 ? -1 : read(fd, buf, len - 1);
    if (n < 0) {
        snprintf(why, whylen, "cannot read %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return JV_EIO;
    }
    close(fd);
    buf[n] = '\0';
    return JV_OK;
}

jv_err jv_bseal_read_pass(const char *path, char out[JV_BSEAL_MAX_PASS + 1],
                          char *why, size_t whylen)
{
    char buf[SMALL_FILE];
    jv_err err = read_small(path, buf, sizeof buf, why, whylen);
    if (err)
        return err;
    size_t n = strcspn(buf, "\r\n");
    if (n >= 8 && n <= JV_BSEAL_MAX_PASS) {
        memcpy(out, buf, n);
        out[n] = '\0';
    } else {
        snprintf(why, whylen,
                 "the passphrase (first line of %s) must have 8 to %d bytes",
                 path, JV_BSEAL_MAX_PASS);
        err = JV_EINVAL;
    }
    sodium_memzero(buf, sizeof buf);
    return err;
}

jv_err jv_bseal_read_key(const char *path, bool want_secret,
                         uint8_t out[JV_BSEAL_KEY_LEN], char *why,
                         size_t whylen)
{
    char buf[SMALL_FILE];
    jv_err err = read_small(path, buf, sizeof buf, why, whylen);
    if (err)
        return err;
    bool secret = strstr(buf, "secret key") != NULL;
    err = jv_bseal_parse_key(buf, strlen(buf), out);
    sodium_memzero(buf, sizeof buf);
    if (err)
        snprintf(why, whylen,
                 "%s holds no backup key (jarvisctl backup-key makes one)",
                 path);
    else if (secret != want_secret) {
        snprintf(why, whylen,
                 want_secret ? "%s is a public key; opening needs the secret "
                               "key file"
                             : "%s is the secret key; encrypt to its .pub "
                               "file and keep the secret off the node's host",
                 path);
        sodium_memzero(out, JV_BSEAL_KEY_LEN);
        err = JV_EINVAL;
    }
    return err;
}

jv_err jv_bseal_open_key(const char *key_file, const char *pass_file,
                         jv_bseal_key *k, char *why, size_t whylen)
{
    memset(k, 0, sizeof(*k));
    if (pass_file) {
        k->mode = JV_BSEAL_MODE_PASS;
        return jv_bseal_read_pass(pass_file, k->pass, why, whylen);
    }
    k->mode = JV_BSEAL_MODE_KEY;
    jv_err err = jv_bseal_read_key(key_file, true, k->sk, why, whylen);
    if (err == JV_OK)
        jv_bseal_public(k->sk, k->pk);
    return err;
}

jv_err jv_bseal_open_file(const char *src, const char *dest,
                          const jv_bseal_key *k, char *why, size_t whylen)
{
    char tmp[4096];
    int in = -1, out = -1;
    jv_err err = JV_EIO;
    if (dest && snprintf(tmp, sizeof tmp, "%s.tmp%ld", dest, (long)getpid()) >=
                    (int)sizeof tmp) {
        snprintf(why, whylen, "%s: path too long", dest);
        return JV_EINVAL;
    }
    if ((in = open(src, O_RDONLY | O_CLOEXEC)) < 0) {
        snprintf(why, whylen, "cannot read %s: %s", src, strerror(errno));
        goto out;
    }
    out = dest ? open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)
               : open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (out < 0) {
        snprintf(why, whylen, "cannot create %s: %s", dest ? tmp : "/dev/null",
                 strerror(errno));
        goto out;
    }
    if ((err = jv_bseal_decrypt(in, out, k))) {
        snprintf(why, whylen, "%s: %s; nothing written", src,
                 jv_bseal_strerror(err));
        goto out;
    }
    if (dest && (fsync(out) != 0 || link(tmp, dest) != 0)) {
        err = errno == EEXIST ? JV_EEXIST : JV_EIO;
        snprintf(why, whylen, "cannot write %s: %s", dest,
                 errno == EEXIST ? "it exists" : strerror(errno));
    }
out:
    if (in >= 0)
        close(in);
    if (out >= 0) {
        close(out);
        if (dest)
            unlink(tmp);
    }
    return err;
}
