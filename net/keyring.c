#include "keyring.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "alloc.h"

#define FRAME_PLAIN  0x00
#define FRAME_SEALED 0x01
#define NONCE_LEN    crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_LEN      crypto_aead_xchacha20poly1305_ietf_ABYTES

/* A key file holds a handful of 64-digit lines; anything much larger is not
 * one, and reading it whole into memory would be unbounded. */
#define KEYFILE_MAX_BYTES 65536

_Static_assert(JV_KEY_LEN == crypto_aead_xchacha20poly1305_ietf_KEYBYTES,
               "keyring keys are XChaCha20-Poly1305 keys");
_Static_assert(JV_SEAL_HEADER == 1 + JV_KEY_ID_LEN + NONCE_LEN,
               "sealed frame header layout");
_Static_assert(JV_SEAL_OVERHEAD == JV_SEAL_HEADER + TAG_LEN,
               "sealed frame overhead");

__attribute__((format(printf, 3, 4))) static void say(char *msg, size_t msglen,
                                                      const char *fmt, ...)
{
    va_list ap;
    if (!msg || msglen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, msglen, fmt, ap);
    va_end(ap);
}

static void key_id(const uint8_t key[JV_KEY_LEN], uint8_t id[JV_KEY_ID_LEN])
{
    static const char domain[] = "jarvis/key-id";
    crypto_generichash_state st;
    uint8_t h[32];
    crypto_generichash_init(&st, NULL, 0, sizeof(h));
    crypto_generichash_update(&st, (const uint8_t *)domain, sizeof(domain) - 1);
    crypto_generichash_update(&st, key, JV_KEY_LEN);
    crypto_generichash_final(&st, h, sizeof(h));
    memcpy(id, h, JV_KEY_ID_LEN);
    sodium_memzero(&st, sizeof(st));
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

jv_err jv_keyring_parse(const char *text, size_t len, jv_keyring *out,
                        char *msg, size_t msglen)
{
    jv_keyring tmp;
    jv_err err = JV_EINVAL;
    size_t pos = 0;
    unsigned line = 0;

    memset(&tmp, 0, sizeof(tmp));
    if (sodium_init() < 0) {
        say(msg, msglen, "libsodium failed to initialise");
        err = JV_ESTATE;
        goto out;
    }
    while (pos < len) {
        const char *p = text + pos, *nl = memchr(p, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - p) : len - pos;
        pos += n + (nl ? 1 : 0);
        line++;
        /* Surrounding blanks (and the CR of a CRLF file) are forgiven;
         * inside the line only the key itself may appear. */
        while (n && is_blank(*p))
            p++, n--;
        while (n && is_blank(p[n - 1]))
            n--;
        if (n == 0 || p[0] == '#')
            continue;
        if (tmp.n == JV_KEYRING_MAX) {
            say(msg, msglen, "line %u: more than %d keys", line,
                JV_KEYRING_MAX);
            goto out;
        }
        jv_ring_key *k = &tmp.k[tmp.n];
        if (n != 2 * JV_KEY_LEN || jv_unhex(p, n, k->key, JV_KEY_LEN)) {
            say(msg, msglen, "line %u: expected a key of %d hex digits", line,
                2 * JV_KEY_LEN);
            goto out;
        }
        key_id(k->key, k->id);
        for (size_t i = 0; i < tmp.n; i++) {
            /* Frames name their key by id, so two keys sharing an id would
             * make one of them unusable: refused like a duplicate. */
            if (sodium_memcmp(tmp.k[i].key, k->key, JV_KEY_LEN) == 0 ||
                memcmp(tmp.k[i].id, k->id, JV_KEY_ID_LEN) == 0) {
                say(msg, msglen, "line %u: duplicate of key %zu", line, i + 1);
                goto out;
            }
        }
        tmp.n++;
    }
    if (tmp.n == 0) {
        say(msg, msglen, "no key (%u lines)", line);
        goto out;
    }
    jv_keyring_wipe(out);
    *out = tmp;
    err = JV_OK;
out:
    sodium_memzero(&tmp, sizeof(tmp));
    return err;
}

static uint32_t le_bytes(const unsigned char *p, size_t n)
{
    uint32_t v = 0;
    while (n--)
        v = v << 8 | p[n];
    return v;
}

/* A systemd credential (LoadCredential=) is a file of mode 0400 that the
 * service's user reads through an ACL entry, where the file system has
 * ACLs: its mode then shows the ACL mask, 0440. Group bits are harmless
 * when every entry that grants anything beyond the owner names this
 * process's own user. Linux stores an access ACL as a version word (2) and
 * entries of tag, permissions (16 bits each) and id (32), little-endian. */
static bool acl_grants_only_us(int fd)
{
    unsigned char acl[4 + 8 * 32];
    ssize_t n = fgetxattr(fd, "system.posix_acl_access", acl, sizeof(acl));
    if (n < 4 || (n - 4) % 8 != 0 || le_bytes(acl, 4) != 2)
        return false;
    for (const unsigned char *e = acl + 4; e < acl + n; e += 8) {
        uint32_t tag = le_bytes(e, 2), perm = le_bytes(e + 2, 2);
        if (tag == 0x01 || tag == 0x10) /* owner, mask */
            continue;
        if (perm && !(tag == 0x02 && le_bytes(e + 4, 4) == geteuid()))
            return false;
    }
    return true;
}

jv_err jv_keyring_load(const char *path, jv_keyring *out, char *msg,
                       size_t msglen)
{
    jv_err err = JV_EIO;
    char *text = NULL, detail[128] = "";
    size_t len = 0;
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

    if (fd < 0) {
        err = errno == ENOENT   ? JV_ENOTFOUND
              : errno == EACCES ? JV_EPERM
                                : JV_EIO;
        say(msg, msglen, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) != 0) {
        say(msg, msglen, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        err = JV_EINVAL;
        say(msg, msglen, "%s: not a regular file", path);
        goto out;
    }
    /* Checked on the open descriptor, so the file read is the one judged. */
    if ((st.st_mode & S_IRWXO) ||
        ((st.st_mode & S_IRWXG) && !acl_grants_only_us(fd))) {
        err = JV_EPERM;
        say(msg, msglen,
            "%s: group or others may access it (mode %04o); "
            "run chmod 600 %s",
            path, (unsigned)(st.st_mode & 07777), path);
        goto out;
    }
    if (st.st_size > KEYFILE_MAX_BYTES) {
        err = JV_EINVAL;
        say(msg, msglen, "%s: larger than %d bytes", path, KEYFILE_MAX_BYTES);
        goto out;
    }
    /* One byte more than the limit detects a file that grew meanwhile. */
    if (!(text = jv_malloc(KEYFILE_MAX_BYTES + 1))) {
        err = JV_ENOMEM;
        say(msg, msglen, "%s: out of memory", path);
        goto out;
    }
    for (;;) {
        ssize_t r = read(fd, text + len, KEYFILE_MAX_BYTES + 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            say(msg, msglen, "%s: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len > KEYFILE_MAX_BYTES) {
            err = JV_EINVAL;
            say(msg, msglen, "%s: larger than %d bytes", path,
                KEYFILE_MAX_BYTES);
            goto out;
        }
    }
    err = jv_keyring_parse(text, len, out, detail, sizeof(detail));
    if (err)
        say(msg, msglen, "%s: %s", path, detail);
out:
    if (text) {
        sodium_memzero(text, KEYFILE_MAX_BYTES + 1);
        jv_free(text);
    }
    if (fd >= 0)
        close(fd);
    return err;
}

void jv_keyring_wipe(jv_keyring *r)
{
    if (r)
        sodium_memzero(r, sizeof(*r));
}

jv_err jv_keyring_generate_hex(char out[2 * JV_KEY_LEN + 1])
{
    uint8_t key[JV_KEY_LEN];
    if (sodium_init() < 0)
        return JV_ESTATE;
    crypto_aead_xchacha20poly1305_ietf_keygen(key);
    jv_hex(key, JV_KEY_LEN, out);
    sodium_memzero(key, sizeof(key));
    return JV_OK;
}

void jv_keyring_id_hex(const jv_keyring *r, size_t i, char out[9])
{
    if (i >= r->n) {
        out[0] = '\0';
        return;
    }
    jv_hex(r->k[i].id, JV_KEY_ID_LEN, out);
}

jv_err jv_seal(const jv_keyring *r, const uint8_t *msg, size_t n, jv_buf *out)
{
    jv_err err;
    if (!r || r->n == 0) {
        uint8_t type = FRAME_PLAIN;
        if (n == SIZE_MAX)
            return JV_ETOOBIG;
        if ((err = jv_buf_reserve(out, n + 1)))
            return err;
        jv_buf_append(out, &type, 1);
        return jv_buf_append(out, msg, n);
    }
    if (n > crypto_aead_xchacha20poly1305_ietf_MESSAGEBYTES_MAX ||
        n > SIZE_MAX - JV_SEAL_OVERHEAD)
        return JV_ETOOBIG;
    if (sodium_init() < 0)
        return JV_ESTATE;
    if ((err = jv_buf_reserve(out, n + JV_SEAL_OVERHEAD)))
        return err;
    uint8_t *h = out->data + out->len;
    unsigned long long clen = 0;
    h[0] = FRAME_SEALED;
    memcpy(h + 1, r->k[0].id, JV_KEY_ID_LEN);
    randombytes_buf(h + 1 + JV_KEY_ID_LEN, NONCE_LEN);
    /* The header travels in clear but is authenticated: a frame cannot be
     * moved under another key id or nonce without failing the tag. */
    crypto_aead_xchacha20poly1305_ietf_encrypt(
        h + JV_SEAL_HEADER, &clen, msg, n, h, JV_SEAL_HEADER, NULL,
        h + 1 + JV_KEY_ID_LEN, r->k[0].key);
    out->len += JV_SEAL_HEADER + (size_t)clen;
    return JV_OK;
}

jv_err jv_open(const jv_keyring *r, const uint8_t *frame, size_t n, jv_buf *out)
{
    bool keyed = r && r->n > 0;
    const jv_ring_key *k = NULL;
    unsigned long long mlen = 0;
    jv_err err;

    jv_buf_reset(out);
    if (n < 1)
        return JV_EDECODE;
    if (frame[0] == FRAME_PLAIN) {
        /* Accepting plaintext on a keyed node would let anyone on the
         * network skip the cluster key altogether. */
        if (keyed)
            return JV_EPERM;
        return jv_buf_append(out, frame + 1, n - 1);
    }
    if (frame[0] != FRAME_SEALED)
        return JV_EDECODE;
    if (!keyed)
        return JV_EPERM;
    if (n < JV_SEAL_OVERHEAD)
        return JV_EDECODE;
    for (size_t i = 0; i < r->n && !k; i++)
        if (memcmp(r->k[i].id, frame + 1, JV_KEY_ID_LEN) == 0)
            k = &r->k[i];
    if (!k)
        return JV_ENOTFOUND;
    if ((err = jv_buf_reserve(out, n - JV_SEAL_OVERHEAD)))
        return err;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(
            out->data, &mlen, NULL, frame + JV_SEAL_HEADER, n - JV_SEAL_HEADER,
            frame, JV_SEAL_HEADER, frame + 1 + JV_KEY_ID_LEN, k->key) != 0)
        return JV_ECRYPTO;
    out->len = (size_t)mlen;
    return JV_OK;
}

void jv_keyring_describe(const jv_keyring *r, char *out, size_t outlen)
{
    char id[9];
    size_t at;
    if (!r || !r->n) {
        snprintf(out, outlen, "none: plaintext");
        return;
    }
    jv_keyring_id_hex(r, 0, id);
    at = (size_t)snprintf(out, outlen, "send %s, accept", id);
    for (size_t i = 0; i < r->n && at < outlen; i++) {
        jv_keyring_id_hex(r, i, id);
        at += (size_t)snprintf(out + at, outlen - at, " %s", id);
    }
}

bool jv_frame_key_hex(const uint8_t *frame, size_t n, char out[9])
{
    out[0] = '\0';
    if (n < JV_SEAL_OVERHEAD || frame[0] != FRAME_SEALED)
        return false;
    jv_hex(frame + 1, JV_KEY_ID_LEN, out);
    return true;
}

jv_err jv_notice_key(const jv_keyring *r, jv_buf *out)
{
    uint8_t h[3] = {JV_FRAME_NOTICE, JV_NOTICE_KEY, 0};
    size_t n = r ? r->n : 0;
    h[2] = (uint8_t)n;
    jv_buf_reset(out);
    jv_buf_append(out, h, sizeof(h));
    for (size_t i = 0; i < n; i++)
        jv_buf_append(out, r->k[i].id, JV_KEY_ID_LEN);
    return jv_buf_err(out);
}

jv_err jv_notice_version(unsigned version, jv_buf *out)
{
    uint8_t h[4] = {JV_FRAME_NOTICE, JV_NOTICE_VERSION, (uint8_t)(version >> 8),
                    (uint8_t)version};
    jv_buf_reset(out);
    return jv_buf_append(out, h, sizeof(h));
}

jv_err jv_notice_parse(const uint8_t *frame, size_t n, jv_notice *out)
{
    memset(out, 0, sizeof(*out));
    if (n < 1 || frame[0] != JV_FRAME_NOTICE)
        return JV_ENOTFOUND;
    if (n == 4 && frame[1] == JV_NOTICE_VERSION) {
        out->kind = JV_NOTICE_VERSION;
        out->version = (unsigned)frame[2] << 8 | frame[3];
        return JV_OK;
    }
    if (n < 3 || frame[1] != JV_NOTICE_KEY || frame[2] > JV_KEYRING_MAX ||
        n != 3 + (size_t)frame[2] * JV_KEY_ID_LEN)
        return JV_EDECODE;
    out->kind = JV_NOTICE_KEY;
    out->nids = frame[2];
    for (size_t i = 0; i < out->nids; i++)
        jv_hex(frame + 3 + i * JV_KEY_ID_LEN, JV_KEY_ID_LEN, out->ids[i]);
    return JV_OK;
}
