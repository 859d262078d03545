#include "bundle.h"

#include <sodium.h>
#include <string.h>
#include <zstd.h>

#include "alloc.h"

static const uint8_t magic[8] = {'J', 'V', 'B', 'U', 'N', 'D', 'L', 'E'};
static const char sig_domain[] = "jarvis/bundle/v1";

#define ZSTD_LEVEL 3

/* -- head ----------------------------------------------------------------- */

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

static void head_encode(const jv_bundle_head *h,
                        uint8_t out[JV_BUNDLE_HEAD_LEN])
{
    uint8_t *p = out;
    memcpy(p, magic, 8), p += 8;
    *p++ = h->version;
    *p++ = h->seal;
    *p++ = (uint8_t)(h->flags >> 8);
    *p++ = (uint8_t)h->flags;
    memcpy(p, h->maker.b, JV_ID_LEN), p += JV_ID_LEN;
    put64(p, h->created_ms), p += 8;
    memcpy(p, h->target.b, JV_ID_LEN), p += JV_ID_LEN;
    memcpy(p, h->recipient.b, JV_ID_LEN), p += JV_ID_LEN;
    memcpy(p, h->key_id, JV_KEY_ID_LEN), p += JV_KEY_ID_LEN;
    memcpy(p, h->wrapped, JV_BUNDLE_WRAPPED_LEN), p += JV_BUNDLE_WRAPPED_LEN;
    memcpy(p, h->nonce, 24), p += 24;
    put64(p, h->sealed_len);
}

static bool all_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

jv_err jv_bundle_parse_head(const uint8_t *data, size_t len, jv_bundle_head *h)
{
    const uint8_t *p = data;
    jv_bundle_head t;
    if (len < JV_BUNDLE_HEAD_LEN + JV_BUNDLE_SIG_LEN)
        return len >= 8 && memcmp(data, magic, 8) != 0 ? JV_EDECODE : JV_ETRUNC;
    if (memcmp(p, magic, 8) != 0)
        return JV_EDECODE;
    p += 8;
    memset(&t, 0, sizeof(t));
    t.version = *p++;
    t.seal = *p++;
    t.flags = (uint16_t)(p[0] << 8 | p[1]);
    p += 2;
    if (t.version != JV_BUNDLE_VERSION)
        return JV_EVERSION;
    if ((t.seal != JV_BUNDLE_SEAL_CLUSTER &&
         t.seal != JV_BUNDLE_SEAL_RECIPIENT) ||
        (t.flags & ~JV_BUNDLE_F_TARGET))
        return JV_EDECODE;
    memcpy(t.maker.b, p, JV_ID_LEN), p += JV_ID_LEN;
    t.created_ms = get64(p), p += 8;
    memcpy(t.target.b, p, JV_ID_LEN), p += JV_ID_LEN;
    memcpy(t.recipient.b, p, JV_ID_LEN), p += JV_ID_LEN;
    memcpy(t.key_id, p, JV_KEY_ID_LEN), p += JV_KEY_ID_LEN;
    memcpy(t.wrapped, p, JV_BUNDLE_WRAPPED_LEN), p += JV_BUNDLE_WRAPPED_LEN;
    memcpy(t.nonce, p, 24), p += 24;
    t.sealed_len = get64(p);
    if (t.created_ms > JV_INT_MAX ||
        (!(t.flags & JV_BUNDLE_F_TARGET) && !all_zero(t.target.b, JV_ID_LEN)))
        return JV_EDECODE;
    if (t.seal == JV_BUNDLE_SEAL_CLUSTER
            ? !all_zero(t.recipient.b, JV_ID_LEN) ||
                  !all_zero(t.wrapped, JV_BUNDLE_WRAPPED_LEN)
            : !all_zero(t.key_id, JV_KEY_ID_LEN))
        return JV_EDECODE;
    size_t body = len - JV_BUNDLE_HEAD_LEN - JV_BUNDLE_SIG_LEN;
    if (t.sealed_len < crypto_aead_xchacha20poly1305_ietf_ABYTES)
        return JV_EDECODE;
    if (t.sealed_len > body)
        return JV_ETRUNC;
    if (t.sealed_len < body)
        return JV_ETRAILING;
    *h = t;
    return JV_OK;
}

/* -- signature ------------------------------------------------------------ */

static void bundle_hash(const uint8_t *signed_part, size_t n,
                        uint8_t out[JV_HASH_LEN])
{
    crypto_generichash_state s;
    crypto_generichash_init(&s, NULL, 0, JV_HASH_LEN);
    crypto_generichash_update(&s, (const uint8_t *)sig_domain,
                              sizeof(sig_domain) - 1);
    crypto_generichash_update(&s, signed_part, n);
    crypto_generichash_final(&s, out, JV_HASH_LEN);
}

jv_err jv_bundle_verify(const uint8_t *data, size_t len,
                        const jv_bundle_head *h)
{
    uint8_t hash[JV_HASH_LEN];
    size_t signed_len = JV_BUNDLE_HEAD_LEN + (size_t)h->sealed_len;
    if (signed_len + JV_BUNDLE_SIG_LEN != len)
        return JV_EINVAL;
    bundle_hash(data, signed_len, hash);
    if (crypto_sign_verify_detached(data + signed_len, hash, sizeof(hash),
                                    h->maker.b) != 0)
        return JV_ESIG;
    return JV_OK;
}

/* -- keys ----------------------------------------------------------------- */

static const uint8_t *ring_key(const jv_keyring *ring, const uint8_t id[4])
{
    for (size_t i = 0; ring && i < ring->n; i++)
        if (memcmp(ring->k[i].id, id, JV_KEY_ID_LEN) == 0)
            return ring->k[i].key;
    return NULL;
}

jv_err jv_bundle_can_open(const jv_bundle_head *h, const jv_keyring *ring,
                          const jv_id *self)
{
    if (h->seal == JV_BUNDLE_SEAL_CLUSTER)
        return ring_key(ring, h->key_id) ? JV_OK : JV_ENOTFOUND;
    return self && jv_id_eq(self, &h->recipient) ? JV_OK : JV_ENOTFOUND;
}

/* The data key of a recipient-sealed bundle, unwrapped with kp. */
static jv_err unwrap(const jv_bundle_head *h, const jv_keypair *kp,
                     uint8_t key[JV_KEY_LEN])
{
    uint8_t xpk[crypto_box_PUBLICKEYBYTES], xsk[crypto_box_SECRETKEYBYTES];
    jv_err err = JV_ECRYPTO;
    if (crypto_sign_ed25519_pk_to_curve25519(xpk, kp->pk.b) != 0 ||
        crypto_sign_ed25519_sk_to_curve25519(xsk, kp->sk) != 0)
        goto out;
    if (crypto_box_seal_open(key, h->wrapped, JV_BUNDLE_WRAPPED_LEN, xpk,
                             xsk) == 0)
        err = JV_OK;
out:
    sodium_memzero(xsk, sizeof(xsk));
    return err;
}

/* One zstd frame with its content size declared, inflated into exactly
 * that many bytes (at most max_plain). */
static jv_err inflate(const uint8_t *src, size_t n, size_t max_plain,
                      jv_buf *out)
{
    unsigned long long declared = ZSTD_getFrameContentSize(src, n);
    if (declared == ZSTD_CONTENTSIZE_ERROR ||
        declared == ZSTD_CONTENTSIZE_UNKNOWN)
        return JV_EDECODE;
    if (declared > max_plain)
        return JV_ETOOBIG;
    size_t frame = ZSTD_findFrameCompressedSize(src, n);
    if (ZSTD_isError(frame))
        return JV_EDECODE;
    if (frame != n)
        return JV_ETRAILING;
    jv_buf_reset(out);
    if (jv_buf_reserve(out, declared ? (size_t)declared : 1))
        return JV_ENOMEM;
    size_t got = ZSTD_decompress(out->data, (size_t)declared, src, n);
    if (ZSTD_isError(got) || got != declared)
        return JV_EDECODE;
    out->len = got;
    return JV_OK;
}

jv_err jv_bundle_open(const uint8_t *data, size_t len, const jv_bundle_head *h,
                      const jv_keyring *ring, const jv_keypair *kp,
                      size_t max_plain, jv_buf *plain)
{
    uint8_t key[JV_KEY_LEN];
    uint8_t *packed = NULL;
    unsigned long long plen = 0;
    jv_err err;
    if ((size_t)h->sealed_len + JV_BUNDLE_OVERHEAD - 16 != len)
        return JV_EINVAL;
    if ((err = jv_bundle_can_open(h, ring, kp ? &kp->pk : NULL)))
        return err;
    if (h->seal == JV_BUNDLE_SEAL_CLUSTER) {
        const uint8_t *k = ring_key(ring, h->key_id);
        if (!k)
            return JV_ENOTFOUND;
        memcpy(key, k, JV_KEY_LEN);
    } else if ((err = unwrap(h, kp, key))) {
        return err;
    }
    packed = jv_malloc((size_t)h->sealed_len);
    if (!packed) {
        err = JV_ENOMEM;
        goto out;
    }
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(
            packed, &plen, NULL, data + JV_BUNDLE_HEAD_LEN, h->sealed_len, data,
            JV_BUNDLE_HEAD_LEN, h->nonce, key) != 0) {
        err = JV_ECRYPTO;
        goto out;
    }
    err = inflate(packed, (size_t)plen, max_plain, plain);
out:
    sodium_memzero(key, sizeof(key));
    jv_free(packed);
    return err;
}

/* -- making --------------------------------------------------------------- */

void jv_bundle_builder_init(jv_bundle_builder *b)
{
    jv_buf_init(&b->items);
    b->n = 0;
    b->snap = NULL;
}

void jv_bundle_builder_fini(jv_bundle_builder *b)
{
    jv_buf_fini(&b->items);
    b->n = 0;
    b->snap = NULL;
}

jv_err jv_bundle_builder_snap(jv_bundle_builder *b, const jv_bundle_snap *s)
{
    if (s && (s->len == 0 || s->len > JV_BUNDLE_MAX_SNAP))
        return s->len ? JV_ETOOBIG : JV_EINVAL;
    b->snap = s;
    return JV_OK;
}

jv_err jv_bundle_builder_add(jv_bundle_builder *b, const uint8_t *body,
                             size_t len, const uint8_t sig[JV_SIG_LEN])
{
    jv_mpw w;
    if (b->n >= JV_BUNDLE_MAX_BATCHES)
        return JV_ETOOBIG;
    jv_mpw_init(&w, &b->items);
    jv_mpw_array(&w, 2);
    jv_mpw_bin(&w, body, len);
    jv_mpw_bin(&w, sig, JV_SIG_LEN);
    if (jv_mpw_err(&w))
        return JV_ENOMEM;
    b->n++;
    return JV_OK;
}

static jv_err payload(jv_bundle_builder *b, const jv_vv *against,
                      const jv_vv *maker_vv, jv_buf *out)
{
    jv_mpw w;
    const jv_bundle_snap *s = b->snap;
    jv_mpw_init(&w, out);
    jv_mpw_array(&w, s ? 5 : 4);
    jv_mpw_u64(&w, s ? 2 : 1);
    jv_vv_encode(against, &w);
    jv_vv_encode(maker_vv, &w);
    if (s) {
        jv_mpw_array(&w, 5);
        jv_mpw_bin(&w, s->maker.b, JV_ID_LEN);
        jv_mpw_u64(&w, s->made_ms);
        jv_mpw_bin(&w, s->digest, JV_HASH_LEN);
        jv_mpw_bin(&w, s->sig, JV_SIG_LEN);
        jv_mpw_bin(&w, s->enc, s->len);
    }
    jv_mpw_array(&w, (uint32_t)b->n);
    if (jv_mpw_err(&w) || jv_buf_append(out, b->items.data, b->items.len))
        return JV_ENOMEM;
    return JV_OK;
}

/* Compresses plain into a zstd frame that declares its size. */
static jv_err deflate(const jv_buf *plain, jv_buf *out)
{
    size_t bound = ZSTD_compressBound(plain->len);
    if (ZSTD_isError(bound) || jv_buf_reserve(out, bound))
        return JV_ENOMEM;
    size_t c = ZSTD_compress(out->data + out->len, bound, plain->data,
                             plain->len, ZSTD_LEVEL);
    if (ZSTD_isError(c))
        return JV_ENOMEM;
    out->len += c;
    return JV_OK;
}

/* Picks the key for h->seal, filling key id or wrapped key. */
static jv_err seal_key(jv_bundle_head *h, const jv_keyring *ring,
                       uint8_t key[JV_KEY_LEN])
{
    if (h->seal == JV_BUNDLE_SEAL_CLUSTER) {
        if (!ring || ring->n == 0)
            return JV_ENOTFOUND;
        memcpy(key, ring->k[0].key, JV_KEY_LEN);
        memcpy(h->key_id, ring->k[0].id, JV_KEY_ID_LEN);
        memset(h->recipient.b, 0, JV_ID_LEN);
        memset(h->wrapped, 0, sizeof(h->wrapped));
        return JV_OK;
    }
    if (h->seal != JV_BUNDLE_SEAL_RECIPIENT)
        return JV_EINVAL;
    uint8_t xpk[crypto_box_PUBLICKEYBYTES];
    if (crypto_sign_ed25519_pk_to_curve25519(xpk, h->recipient.b) != 0)
        return JV_EINVAL;
    crypto_aead_xchacha20poly1305_ietf_keygen(key);
    memset(h->key_id, 0, JV_KEY_ID_LEN);
    if (crypto_box_seal(h->wrapped, key, JV_KEY_LEN, xpk) != 0)
        return JV_ECRYPTO;
    return JV_OK;
}

jv_err jv_bundle_make(jv_bundle_builder *b, const jv_vv *against,
                      const jv_vv *maker_vv, const jv_bundle_head *hin,
                      const jv_keyring *ring, const jv_keypair *kp, jv_buf *out)
{
    jv_bundle_head h = *hin;
    uint8_t key[JV_KEY_LEN];
    jv_buf plain, packed;
    size_t start = out->len;
    jv_err err;
    jv_buf_init(&plain);
    jv_buf_init(&packed);
    h.version = JV_BUNDLE_VERSION;
    h.maker = kp->pk;
    if (!(h.flags & JV_BUNDLE_F_TARGET))
        memset(h.target.b, 0, JV_ID_LEN);
    if ((err = seal_key(&h, ring, key)))
        goto out;
    randombytes_buf(h.nonce, sizeof(h.nonce));
    if ((err = payload(b, against, maker_vv, &plain)) ||
        (err = deflate(&plain, &packed)))
        goto out;
    h.sealed_len = packed.len + crypto_aead_xchacha20poly1305_ietf_ABYTES;
    if (jv_buf_reserve(out, JV_BUNDLE_HEAD_LEN + (size_t)h.sealed_len +
                                JV_BUNDLE_SIG_LEN)) {
        err = JV_ENOMEM;
        goto out;
    }
    uint8_t *p = out->data + start;
    head_encode(&h, p);
    crypto_aead_xchacha20poly1305_ietf_encrypt(
        p + JV_BUNDLE_HEAD_LEN, NULL, packed.data, packed.len, p,
        JV_BUNDLE_HEAD_LEN, NULL, h.nonce, key);
    size_t signed_len = JV_BUNDLE_HEAD_LEN + (size_t)h.sealed_len;
    uint8_t hash[JV_HASH_LEN];
    bundle_hash(p, signed_len, hash);
    crypto_sign_detached(p + signed_len, NULL, hash, sizeof(hash), kp->sk);
    out->len = start + signed_len + JV_BUNDLE_SIG_LEN;
    err = JV_OK;
out:
    sodium_memzero(key, sizeof(key));
    jv_buf_fini(&plain);
    jv_buf_fini(&packed);
    return err;
}

/* -- payload -------------------------------------------------------------- */

void jv_bundle_content_fini(jv_bundle_content *c)
{
    if (!c)
        return;
    jv_vv_fini(&c->against);
    jv_vv_fini(&c->maker_vv);
    jv_free(c->batches);
    c->batches = NULL;
    c->n = 0;
}

/* Batches sorted by origin, then sequence, never overlapping. */
static bool in_order(const jv_batch_head *prev, const jv_batch_head *h)
{
    int c = memcmp(prev->origin.b, h->origin.b, JV_ID_LEN);
    return c < 0 || (c == 0 && h->first_seq > prev->last_seq);
}

static jv_err decode_batches(jv_mpr *r, jv_bundle_content *c)
{
    uint32_t n;
    jv_err err;
    if ((err = jv_mpr_array(r, &n, JV_BUNDLE_MAX_BATCHES)))
        return err;
    /* Each item takes at least 2 + 2 + 66 bytes: bound n by what is left
     * before allocating. */
    if ((size_t)n > jv_mpr_left(r) / 70)
        return JV_ETRUNC;
    c->batches = n ? jv_calloc(n, sizeof(*c->batches)) : NULL;
    if (n && !c->batches)
        return JV_ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        jv_bundle_batch *b = &c->batches[i];
        size_t siglen;
        if ((err = jv_mpr_array_n(r, 2)) ||
            (err = jv_mpr_bin(r, &b->body, &b->len, JV_BATCH_MAX_BYTES)) ||
            (err = jv_mpr_bin(r, &b->sig, &siglen, JV_SIG_LEN)))
            return err;
        if (siglen != JV_SIG_LEN)
            return JV_EDECODE;
        if ((err = jv_batch_peek(b->body, b->len, &b->h)))
            return err;
        if (i > 0 && !in_order(&c->batches[i - 1].h, &b->h))
            return JV_EDECODE;
        c->n = i + 1;
    }
    return JV_OK;
}

/* The snapshot's envelope, exact sizes and bounds; its encoding is
 * checked by the store when it installs it. */
static jv_err decode_snap(jv_mpr *r, jv_bundle_snap *s)
{
    jv_err err;
    if ((err = jv_mpr_array_n(r, 5)) ||
        (err = jv_mpr_bin_fixed(r, s->maker.b, JV_ID_LEN)) ||
        (err = jv_mpr_u64(r, &s->made_ms)) ||
        (err = jv_mpr_bin_fixed(r, s->digest, JV_HASH_LEN)) ||
        (err = jv_mpr_bin_fixed(r, s->sig, JV_SIG_LEN)) ||
        (err = jv_mpr_bin(r, &s->enc, &s->len, JV_BUNDLE_MAX_SNAP)))
        return err;
    if (s->made_ms > JV_INT_MAX || s->len == 0)
        return JV_EDECODE;
    return JV_OK;
}

jv_err jv_bundle_decode(const uint8_t *plain, size_t len,
                        jv_bundle_content *out)
{
    jv_mpr r;
    jv_bundle_content c;
    uint64_t version;
    uint32_t n;
    jv_err err;
    memset(&c, 0, sizeof(c));
    jv_vv_init(&c.against);
    jv_vv_init(&c.maker_vv);
    jv_mpr_init(&r, plain, len);
    if ((err = jv_mpr_array(&r, &n, 5)))
        goto fail;
    if (n < 4) {
        err = JV_EDECODE;
        goto fail;
    }
    if ((err = jv_mpr_u64(&r, &version)))
        goto fail;
    if (version != 1 && version != 2) {
        err = JV_EVERSION;
        goto fail;
    }
    /* Payload 2 carries a snapshot before the batches. */
    c.has_snap = version == 2;
    if (n != (c.has_snap ? 5u : 4u)) {
        err = JV_EDECODE;
        goto fail;
    }
    if ((err = jv_vv_decode(&r, &c.against)) ||
        (err = jv_vv_decode(&r, &c.maker_vv)) ||
        (c.has_snap && (err = decode_snap(&r, &c.snap))) ||
        (err = decode_batches(&r, &c)) || (err = jv_mpr_end(&r)))
        goto fail;
    *out = c;
    return JV_OK;
fail:
    jv_bundle_content_fini(&c);
    return err;
}
