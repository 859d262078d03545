#include "wire.h"

#include <sodium.h>
#include <string.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "alloc.h"
#include "batch.h"

#define FORMAT_PLAIN 0
#define FORMAT_ZSTD  1
#define BODY_FIELDS  14
#define V2_FIELDS    12 /* version 2: without base and heard */
/* Version 1's body: [type, from, from_addr, have, batches, more, budget]. */
#define V1_FIELDS 7

static const char sig_domain[] = "jarvis/sync/v2";

/* zstd's own default level: several hundred MB/s on one core, and most of
 * what the higher levels would save on msgpack full of hashes and keys. */
#define ZSTD_LEVEL 3

/* The smallest encoded batch: [bin8 "", bin8 sig]. Bounds how many batches
 * the bytes that remain can hold before anything is allocated. */
#define BATCH_MIN_BYTES (1 + 2 + 2 + JV_SIG_LEN)

/* Window sizes a decoder accepts, as powers of two: zstd's own lower bound
 * and its default upper one. */
#define WINDOW_LOG_MIN 10
#define WINDOW_LOG_MAX 27

void jv_msg_init(jv_msg *m)
{
    memset(m, 0, sizeof(*m));
    jv_vv_init(&m->have);
}

void jv_msg_fini(jv_msg *m)
{
    if (!m)
        return;
    jv_vv_fini(&m->have);
    jv_free(m->owned);
    jv_free(m->refs_owned);
    jv_msg_init(m);
}

size_t jv_wire_batch_cost(size_t body_len)
{
    size_t hdr = body_len <= 0xff ? 2 : body_len <= 0xffff ? 3 : 5;
    /* fixarray(2), bin header, body, bin8 header of the signature, sig */
    return 1 + hdr + body_len + 2 + JV_SIG_LEN;
}

size_t jv_wire_have_cost(unsigned version, const jv_vv_ref *refs, size_t nrefs,
                         const jv_vv *vv)
{
    size_t n = jv_vv_encoded_len(vv);
    if (version && version < 4)
        return n;
    /* [[gap, seq, ...], vv], as encode_refs writes it. */
    n += 1 + jv_mp_array_len((uint32_t)(2 * nrefs));
    for (size_t i = 0; i < nrefs; i++) {
        uint32_t prev = i ? refs[i - 1].idx + 1 : 0;
        n += jv_mp_u64_len(refs[i].idx - prev) + jv_mp_u64_len(refs[i].seq);
    }
    return n;
}

/* What the decoder would refuse is refused here too, so that a node never
 * sends a message its peers must drop. */
static jv_err check_msg(const jv_msg *m, const jv_keypair *kp)
{
    if (m->type < JV_MSG_SYNC || m->type > JV_MSG_SNAP_REPLY)
        return JV_EINVAL;
    if (m->type == JV_MSG_SNAP_REPLY &&
        (m->snap.len > JV_WIRE_SNAP_CHUNK || m->snap.total > JV_WIRE_SNAP_MAX ||
         m->snap.offset > m->snap.total ||
         m->snap.len > m->snap.total - m->snap.offset ||
         (m->snap.len && !m->snap.data)))
        return JV_EINVAL;
    if (kp && !jv_id_eq(&kp->pk, &m->from))
        return JV_EINVAL;
    unsigned v = m->version ? m->version : JV_WIRE_VERSION;
    if (v < JV_WIRE_VERSION_MIN || v > JV_WIRE_VERSION)
        return JV_EINVAL;
    if (v == 2 && (m->base || m->heard || m->refused > JV_REFUSED_CLAIM))
        return JV_EINVAL; /* what version 2 cannot say */
    if (m->nrefs &&
        (v < 4 || !m->base || !m->refs || m->nrefs > JV_VV_MAX_ENTRIES))
        return JV_EINVAL; /* references need version 4 and a base */
    for (size_t i = 0; i < m->nrefs; i++)
        if (m->refs[i].seq == 0 || m->refs[i].idx >= JV_VV_MAX_ENTRIES ||
            (i && m->refs[i].idx <= m->refs[i - 1].idx))
            return JV_EINVAL;
    if ((unsigned)m->refused > JV_REFUSED_MAX)
        return JV_EINVAL;
    if (m->from_addr.n > JV_WIRE_MAX_ADDR ||
        (m->from_addr.n && !jv_str_valid_utf8(m->from_addr)))
        return JV_EINVAL;
    if (m->nbatches > JV_WIRE_MAX_BATCHES)
        return JV_ETOOBIG;
    if (m->nbatches && !m->batches)
        return JV_EINVAL;
    for (size_t i = 0; i < m->nbatches; i++) {
        const jv_wire_batch *b = &m->batches[i];
        if (b->len > JV_BATCH_MAX_BYTES)
            return JV_ETOOBIG;
        if ((b->len && !b->body) || !b->sig)
            return JV_EINVAL;
    }
    return JV_OK;
}

/* The hash a message's signature signs: of the body's exact bytes. */
static void msg_hash(const uint8_t *body, size_t len, uint8_t out[JV_HASH_LEN])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, JV_HASH_LEN);
    crypto_generichash_update(&st, (const uint8_t *)sig_domain,
                              sizeof(sig_domain) - 1);
    crypto_generichash_update(&st, body, len);
    crypto_generichash_final(&st, out, JV_HASH_LEN);
}

jv_err jv_msg_verify(const jv_msg *m)
{
    /* The same Ed25519 check as a batch's: the domain of the hash keeps a
     * message signature from ever passing for a batch signature. */
    return jv_batch_verify_sig(m->hash, m->sig, &m->from);
}

/* Version 4's [refs, ...: gaps between places and seqs, flat, so that an
 * entry of a base of up to 128 ids costs its seq and one byte. */
static void encode_refs(jv_mpw *w, const jv_msg *m)
{
    jv_mpw_array(w, 2);
    jv_mpw_array(w, (uint32_t)(2 * m->nrefs));
    for (size_t i = 0; i < m->nrefs; i++) {
        uint32_t prev = i ? m->refs[i - 1].idx + 1 : 0;
        jv_mpw_u64(w, m->refs[i].idx - prev);
        jv_mpw_u64(w, m->refs[i].seq);
    }
}

jv_err jv_msg_encode(const jv_msg *m, const jv_keypair *kp, size_t compress_min,
                     jv_buf *out, size_t *raw_len)
{
    const size_t start = out->len;
    const uint8_t plain = FORMAT_PLAIN;
    uint8_t *packed = NULL;
    size_t body_len;
    jv_mpw w;
    jv_err err;

    if ((err = check_msg(m, kp)))
        return err;
    if ((err = jv_buf_append(out, &plain, 1)))
        goto fail;
    jv_mpw_init(&w, out);
    bool snap = m->type == JV_MSG_SNAP || m->type == JV_MSG_SNAP_REPLY;
    unsigned version = m->version ? m->version : JV_WIRE_VERSION;
    bool v2 = version == 2;
    jv_mpw_array(&w, (v2 ? V2_FIELDS : BODY_FIELDS) + snap);
    jv_mpw_u64(&w, version);
    jv_mpw_u64(&w, (uint64_t)m->type);
    jv_mpw_id(&w, &m->from);
    jv_mpw_id(&w, &m->to);
    jv_mpw_u64(&w, m->stamp);
    jv_mpw_u64(&w, m->echo);
    jv_mpw_u64(&w, (uint64_t)m->refused);
    jv_mpw_jstr(&w, m->from_addr);
    if (version >= 4)
        encode_refs(&w, m);
    jv_vv_encode(&m->have, &w);
    jv_mpw_array(&w, (uint32_t)m->nbatches);
    for (size_t i = 0; i < m->nbatches; i++) {
        jv_mpw_array(&w, 2);
        jv_mpw_bin(&w, m->batches[i].body, m->batches[i].len);
        jv_mpw_bin(&w, m->batches[i].sig, JV_SIG_LEN);
    }
    jv_mpw_bool(&w, m->more);
    jv_mpw_u64(&w, m->budget);
    if (!v2) {
        jv_mpw_u64(&w, m->base);
        jv_mpw_u64(&w, m->heard);
    }
    if (m->type == JV_MSG_SNAP) {
        jv_mpw_array(&w, 2);
        jv_mpw_bin(&w, m->snap.digest, JV_HASH_LEN);
        jv_mpw_u64(&w, m->snap.offset);
    } else if (m->type == JV_MSG_SNAP_REPLY) {
        jv_mpw_array(&w, 7);
        jv_mpw_id(&w, &m->snap.maker);
        jv_mpw_u64(&w, m->snap.made_ms);
        jv_mpw_bin(&w, m->snap.digest, JV_HASH_LEN);
        jv_mpw_bin(&w, m->snap.sig, JV_SIG_LEN);
        jv_mpw_u64(&w, m->snap.total);
        jv_mpw_u64(&w, m->snap.offset);
        jv_mpw_bin(&w, m->snap.data, m->snap.len);
    }
    if ((err = jv_mpw_err(&w)))
        goto fail;
    if (kp) {
        uint8_t hash[JV_HASH_LEN], sig[JV_SIG_LEN];
        msg_hash(out->data + start + 1, out->len - start - 1, hash);
        jv_batch_sign(hash, kp, sig);
        err = jv_buf_append(out, sig, JV_SIG_LEN);
    } else {
        err = jv_buf_append(out, m->sig, JV_SIG_LEN);
    }
    if (err)
        goto fail;

    body_len = out->len - start - 1;
    if (body_len > compress_min) {
        size_t bound = ZSTD_compressBound(body_len), c;
        if (ZSTD_isError(bound) || !(packed = jv_malloc(bound))) {
            err = JV_ENOMEM;
            goto fail;
        }
        c = ZSTD_compress(packed, bound, out->data + start + 1, body_len,
                          ZSTD_LEVEL);
        /* Kept only when it saves bytes: random-looking bodies (signatures,
         * already compressed values) would otherwise grow. */
        if (!ZSTD_isError(c) && c < body_len) {
            out->data[start] = FORMAT_ZSTD;
            memcpy(out->data + start + 1, packed, c);
            out->len = start + 1 + c;
        }
    }
    if (raw_len)
        *raw_len = body_len;
    err = JV_OK;
    goto out;
fail:
    out->len = start;
out:
    jv_free(packed);
    return err;
}

/* Sets b's capacity to exactly cap bytes (never rounded up, so that the
 * bound on decompressed bytes is also a bound on memory). */
static jv_err buf_set_cap(jv_buf *b, size_t cap)
{
    uint8_t *d;
    if (cap <= b->cap)
        return JV_OK;
    if (!(d = jv_realloc(b->data, cap)))
        return JV_ENOMEM;
    b->data = d;
    b->cap = cap;
    return JV_OK;
}

static int window_log(size_t max_plain)
{
    int wlog = WINDOW_LOG_MIN;
    while (wlog < WINDOW_LOG_MAX && ((size_t)1 << wlog) < max_plain)
        wlog++;
    return wlog;
}

/* Inflates one zstd frame src[0..n) into out, writing at most `limit`
 * bytes. A frame's declared size is checked before any work; a frame that
 * declares none, or lies, is stopped by the output bound itself: the
 * streaming decoder is never given room past the limit. */
static jv_err inflate(const uint8_t *src, size_t n, size_t max_plain,
                      jv_buf *out)
{
    ZSTD_DCtx *d = NULL;
    ZSTD_inBuffer in = {src, n, 0};
    ZSTD_outBuffer o = {NULL, 0, 0};
    unsigned long long declared;
    size_t limit = max_plain, ret;
    jv_err err;

    jv_buf_reset(out);
    /* One plain zstd frame only: skippable frames and other magic numbers
     * have no business in our messages. */
    if (n < 4 ||
        ((uint32_t)src[0] | (uint32_t)src[1] << 8 | (uint32_t)src[2] << 16 |
         (uint32_t)src[3] << 24) != ZSTD_MAGICNUMBER)
        return JV_EDECODE;
    declared = ZSTD_getFrameContentSize(src, n);
    if (declared == ZSTD_CONTENTSIZE_ERROR)
        return JV_EDECODE;
    if (declared != ZSTD_CONTENTSIZE_UNKNOWN) {
        if (declared > max_plain)
            return JV_ETOOBIG;
        limit = (size_t)declared;
    }
    /* Room grows with the output actually produced, so a small message
     * costs a small buffer whatever the limit. */
    o.size = limit < 65536 ? limit : 65536;
    if ((err = buf_set_cap(out, o.size ? o.size : 1)))
        return err;
    o.dst = out->data;
    if (!(d = ZSTD_createDCtx()))
        return JV_ENOMEM;
    if (ZSTD_isError(ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax,
                                            window_log(max_plain)))) {
        err = JV_ENOMEM;
        goto out;
    }
    for (;;) {
        size_t in_before = in.pos, out_before = o.pos;
        if (o.pos == o.size && o.size < limit) {
            size_t grow = o.size > limit - o.size ? limit : 2 * o.size;
            if ((err = buf_set_cap(out, grow)))
                goto out;
            o.dst = out->data;
            o.size = grow;
        }
        ret = ZSTD_decompressStream(d, &o, &in);
        if (ZSTD_isError(ret)) {
            /* A window over windowLogMax asks for more memory than the
             * limit allows: a size refusal, not a malformed frame. */
            err = ZSTD_getErrorCode(ret) ==
                          ZSTD_error_frameParameter_windowTooLarge
                      ? JV_ETOOBIG
                      : JV_EDECODE;
            goto out;
        }
        if (ret == 0)
            break; /* the frame is complete and checked */
        if (in.pos == in_before && o.pos == out_before) {
            /* No progress: either the frame wants to write past the
             * limit, or it wants input that is not there. */
            err = o.pos == o.size
                      ? (declared != ZSTD_CONTENTSIZE_UNKNOWN ? JV_EDECODE
                                                              : JV_ETOOBIG)
                      : JV_ETRUNC;
            goto out;
        }
    }
    if (in.pos != in.size) {
        err = JV_ETRAILING;
        goto out;
    }
    out->len = o.pos;
    err = JV_OK;
out:
    ZSTD_freeDCtx(d);
    return err;
}

/* The head of the body: version, type, sender, recipient, freshness. */
static jv_err parse_head(jv_mpr *r, jv_msg *m)
{
    uint64_t version, type, refused;
    uint32_t fields;
    jv_err err;

    if ((err = jv_mpr_array(r, &fields, BODY_FIELDS + V1_FIELDS)))
        return err;
    /* Version 1 had no version field: its 7-field body is told apart by
     * its length, so that an old peer is named as such in the refusal. */
    if (fields == V1_FIELDS)
        return JV_EVERSION;
    if ((err = jv_mpr_u64(r, &version)))
        return err;
    if (version < JV_WIRE_VERSION_MIN || version > JV_WIRE_VERSION)
        return JV_EVERSION;
    m->version = (unsigned)version;
    if ((err = jv_mpr_u64(r, &type)))
        return err;
    if (type < JV_MSG_SYNC || type > JV_MSG_SNAP_REPLY)
        return JV_EDECODE;
    if (fields != (version == 2 ? V2_FIELDS : BODY_FIELDS) +
                      (type >= JV_MSG_SNAP ? 1u : 0u))
        return JV_EDECODE;
    m->type = (jv_msg_type)type;
    if ((err = jv_mpr_id(r, &m->from)) || (err = jv_mpr_id(r, &m->to)) ||
        (err = jv_mpr_u64(r, &m->stamp)) || (err = jv_mpr_u64(r, &m->echo)) ||
        (err = jv_mpr_u64(r, &refused)))
        return err;
    if (refused > (version == 2 ? JV_REFUSED_CLAIM : JV_REFUSED_MAX))
        return JV_EDECODE;
    m->refused = (jv_refusal)refused;
    return JV_OK;
}

/* The snapshot field of types 3 and 4 (wire.h), strictly. */
static jv_err parse_snap(jv_mpr *r, jv_msg *m)
{
    jv_wire_snap *s = &m->snap;
    jv_err err;
    if (m->type == JV_MSG_SNAP) {
        if ((err = jv_mpr_array_n(r, 2)) ||
            (err = jv_mpr_bin_fixed(r, s->digest, JV_HASH_LEN)) ||
            (err = jv_mpr_u64(r, &s->offset)))
            return err;
        return JV_OK;
    }
    if ((err = jv_mpr_array_n(r, 7)) || (err = jv_mpr_id(r, &s->maker)) ||
        (err = jv_mpr_u64(r, &s->made_ms)) ||
        (err = jv_mpr_bin_fixed(r, s->digest, JV_HASH_LEN)) ||
        (err = jv_mpr_bin_fixed(r, s->sig, JV_SIG_LEN)) ||
        (err = jv_mpr_u64(r, &s->total)) || (err = jv_mpr_u64(r, &s->offset)) ||
        (err = jv_mpr_bin(r, &s->data, &s->len, JV_WIRE_SNAP_CHUNK)))
        return err;
    if (s->total > JV_WIRE_SNAP_MAX || s->offset > s->total ||
        s->len > s->total - s->offset)
        return JV_EDECODE;
    return JV_OK;
}

/* Version 4's [refs, ... (encode_refs), up to the vv. Each ref is at
 * least two bytes: the count is checked against what is left before it
 * sizes an allocation. */
static jv_err parse_refs(jv_mpr *r, jv_msg *m)
{
    uint32_t n;
    jv_err err;
    if ((err = jv_mpr_array_n(r, 2)) ||
        (err = jv_mpr_array(r, &n, 2 * JV_VV_MAX_ENTRIES)))
        return err;
    if (n % 2)
        return JV_EDECODE;
    if (n > jv_mpr_left(r))
        return JV_ETRUNC;
    if (!n)
        return JV_OK;
    if (!(m->refs_owned = jv_malloc(n / 2 * sizeof(*m->refs_owned))))
        return JV_ENOMEM;
    m->refs = m->refs_owned;
    uint64_t next = 0; /* the least place the next ref may name */
    for (uint32_t i = 0; i < n / 2; i++) {
        uint64_t gap, seq;
        if ((err = jv_mpr_u64(r, &gap)) || (err = jv_mpr_u64(r, &seq)))
            return err;
        if (seq == 0 || gap >= JV_VV_MAX_ENTRIES - next)
            return JV_EDECODE;
        m->refs[i] = (jv_vv_ref){.idx = (uint32_t)(next + gap), .seq = seq};
        next += gap + 1;
        m->nrefs = i + 1;
    }
    return JV_OK;
}

static jv_err parse_body(const uint8_t *p, size_t n, jv_msg *m)
{
    jv_mpr r;
    uint32_t nb;
    jv_err err;

    jv_mpr_init(&r, p, n);
    if ((err = parse_head(&r, m)) ||
        (err = jv_mpr_str(&r, &m->from_addr, JV_WIRE_MAX_ADDR)))
        return err;
    if (!jv_str_valid_utf8(m->from_addr))
        return JV_EDECODE;
    if ((m->version >= 4 && (err = parse_refs(&r, m))) ||
        (err = jv_vv_decode(&r, &m->have)) ||
        (err = jv_mpr_array(&r, &nb, JV_WIRE_MAX_BATCHES)))
        return err;
    /* Checked before the allocation it sizes: a header cannot claim more
     * batches than the bytes after it could hold. */
    if (nb > jv_mpr_left(&r) / BATCH_MIN_BYTES)
        return JV_ETRUNC;
    if (nb) {
        if (!(m->owned = jv_calloc(nb, sizeof(*m->owned))))
            return JV_ENOMEM;
        m->batches = m->owned;
    }
    for (uint32_t i = 0; i < nb; i++) {
        jv_wire_batch *b = &m->owned[i];
        size_t siglen;
        if ((err = jv_mpr_array_n(&r, 2)) ||
            (err = jv_mpr_bin(&r, &b->body, &b->len, JV_BATCH_MAX_BYTES)) ||
            (err = jv_mpr_bin(&r, &b->sig, &siglen, JV_SIG_LEN)))
            return err;
        if (siglen != JV_SIG_LEN)
            return JV_EDECODE;
        m->nbatches = i + 1;
    }
    if ((err = jv_mpr_bool(&r, &m->more)) || (err = jv_mpr_u64(&r, &m->budget)))
        return err;
    if (m->version > 2 &&
        ((err = jv_mpr_u64(&r, &m->base)) || (err = jv_mpr_u64(&r, &m->heard))))
        return err;
    if (m->nrefs && !m->base)
        return JV_EDECODE; /* places in no base */
    if (m->type >= JV_MSG_SNAP && (err = parse_snap(&r, m)))
        return err;
    /* Exactly the signature after the body. */
    if (jv_mpr_left(&r) < JV_SIG_LEN)
        return JV_ETRUNC;
    if (jv_mpr_left(&r) > JV_SIG_LEN)
        return JV_ETRAILING;
    memcpy(m->sig, p + n - JV_SIG_LEN, JV_SIG_LEN);
    msg_hash(p, n - JV_SIG_LEN, m->hash);
    return JV_OK;
}

unsigned jv_msg_peek_version(const uint8_t *p, size_t n, size_t max_plain,
                             jv_buf *scratch)
{
    const uint8_t *body = p + 1;
    size_t len = n ? n - 1 : 0;
    uint32_t fields;
    uint64_t version;
    jv_mpr r;
    if (n < 1 || (p[0] != FORMAT_PLAIN && p[0] != FORMAT_ZSTD))
        return 0;
    if (p[0] == FORMAT_ZSTD) {
        if (inflate(p + 1, n - 1, max_plain, scratch))
            return 0;
        body = scratch->data;
        len = scratch->len;
    }
    jv_mpr_init(&r, body, len);
    if (jv_mpr_array(&r, &fields, 4096))
        return 0;
    if (fields == V1_FIELDS)
        return 1;
    if (jv_mpr_u64(&r, &version) || version > 65535)
        return 0;
    return (unsigned)version;
}

bool jv_msg_compressed(const uint8_t *p, size_t n)
{
    return n > 0 && p[0] == FORMAT_ZSTD;
}

jv_err jv_msg_decode(const uint8_t *p, size_t n, size_t max_plain,
                     jv_buf *scratch, jv_msg *out)
{
    const uint8_t *body;
    size_t len;
    jv_msg tmp;
    jv_err err;

    if (n < 1)
        return JV_ETRUNC;
    switch (p[0]) {
    case FORMAT_PLAIN:
        body = p + 1;
        len = n - 1;
        break;
    case FORMAT_ZSTD:
        if ((err = inflate(p + 1, n - 1, max_plain, scratch)))
            return err;
        body = scratch->data;
        len = scratch->len;
        break;
    default:
        return JV_EDECODE;
    }
    jv_msg_init(&tmp);
    if ((err = parse_body(body, len, &tmp))) {
        jv_msg_fini(&tmp);
        return err;
    }
    jv_msg_fini(out);
    *out = tmp;
    return JV_OK;
}
