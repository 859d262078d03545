#include "batch.h"

#include <sodium.h>
#include <string.h>

#include "alloc.h"
#include "audit.h"
#include "hlc.h"
#include "internal.h"

static const uint8_t zero_hash[JV_HASH_LEN];
static const char hash_domain[] = "jarvis/batch/v1";
static const char succ_domain[] = "jarvis/succession/v1";

/* A text field: at most max bytes, valid UTF-8, no NUL; non-empty if
 * required. */
static bool text_ok(jv_str s, size_t max, bool required)
{
    if (s.n > max || (required && s.n == 0))
        return false;
    return jv_str_valid_utf8(s);
}

static bool dots_ok(const jv_dot *d, size_t n, bool required)
{
    if (n > JV_OP_MAX_REMOVES || (required && n == 0))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (d[i].n == 0 || d[i].n > JV_INT_MAX)
            return false;
        if (i && jv_dot_cmp(&d[i - 1], &d[i]) >= 0)
            return false;
    }
    return true;
}

static bool stamp_ok(uint64_t stamp, uint64_t hlc)
{
    return stamp >= 1 && stamp <= hlc;
}

jv_err jv_op_validate(const jv_op *op, uint64_t hlc)
{
    bool ok = false;
    switch (op->kind) {
    case JV_OP_COUNTER:
        ok = text_ok(op->counter.name, JV_OP_MAX_NAME, true) &&
             op->counter.p <= JV_INT_MAX && op->counter.n <= JV_INT_MAX;
        break;
    case JV_OP_AUDIT:
        ok = op->audit.time_ms <= jv_hlc_ms(hlc) &&
             text_ok(op->audit.actor, JV_AUDIT_MAX_ACTOR, true) &&
             text_ok(op->audit.action, JV_AUDIT_MAX_ACTION, true) &&
             text_ok(op->audit.target, JV_AUDIT_MAX_TARGET, false) &&
             text_ok(op->audit.detail, JV_AUDIT_MAX_DETAIL, false);
        break;
    case JV_OP_CONFIG:
        ok = text_ok(op->config.key, JV_OP_MAX_KEY, true) &&
             text_ok(op->config.value, JV_OP_MAX_VALUE, true) &&
             stamp_ok(op->config.stamp, hlc);
        break;
    case JV_OP_ARCHIVE_ADD:
        ok = text_ok(op->add.key, JV_OP_MAX_KEY, true) &&
             text_ok(op->add.value, JV_OP_MAX_VALUE, true) &&
             stamp_ok(op->add.stamp, hlc) && op->add.dot_n >= 1 &&
             op->add.dot_n <= JV_INT_MAX &&
             dots_ok(op->add.removes, op->add.nremoves, false);
        break;
    case JV_OP_ARCHIVE_RM:
        ok = text_ok(op->rm.key, JV_OP_MAX_KEY, true) &&
             dots_ok(op->rm.removes, op->rm.nremoves, true);
        break;
    case JV_OP_TRUST:
        ok = !jv_id_is_zero(&op->trust.node) &&
             stamp_ok(op->trust.stamp, hlc) &&
             text_ok(op->trust.name, JV_OP_MAX_NAME, false);
        break;
    case JV_OP_SUCCESSION:
        ok = !jv_id_is_zero(&op->succ.old) && op->succ.last_seq <= JV_INT_MAX &&
             op->succ.time_ms <= jv_hlc_ms(hlc);
        break;
    case JV_OP_KEY_ADD:
        ok = text_ok(op->key_add.id, JV_OP_MAX_KEY_ID, true) &&
             text_ok(op->key_add.name, JV_OP_MAX_NAME, true) &&
             text_ok(op->key_add.role, JV_OP_MAX_ROLE, true) &&
             op->key_add.time_ms <= jv_hlc_ms(hlc) &&
             text_ok(op->key_add.by, JV_OP_MAX_NAME, false);
        break;
    case JV_OP_KEY_REVOKE:
        ok = text_ok(op->key_revoke.id, JV_OP_MAX_KEY_ID, true) &&
             op->key_revoke.time_ms <= jv_hlc_ms(hlc) &&
             text_ok(op->key_revoke.by, JV_OP_MAX_NAME, false);
        break;
    }
    return ok ? JV_OK : JV_EINVAL;
}

static void write_dots(jv_mpw *w, const jv_dot *d, size_t n)
{
    jv_mpw_array(w, (uint32_t)n);
    for (size_t i = 0; i < n; i++)
        jv_mpw_dot(w, &d[i]);
}

static void write_op(jv_mpw *w, const jv_op *op)
{
    switch (op->kind) {
    case JV_OP_COUNTER:
        jv_mpw_array(w, 4);
        jv_mpw_u64(w, op->kind);
        jv_mpw_jstr(w, op->counter.name);
        jv_mpw_u64(w, op->counter.p);
        jv_mpw_u64(w, op->counter.n);
        break;
    case JV_OP_AUDIT:
        jv_mpw_array(w, 6);
        jv_mpw_u64(w, op->kind);
        jv_mpw_u64(w, op->audit.time_ms);
        jv_mpw_jstr(w, op->audit.actor);
        jv_mpw_jstr(w, op->audit.action);
        jv_mpw_jstr(w, op->audit.target);
        jv_mpw_jstr(w, op->audit.detail);
        break;
    case JV_OP_CONFIG:
        jv_mpw_array(w, 4);
        jv_mpw_u64(w, op->kind);
        jv_mpw_jstr(w, op->config.key);
        jv_mpw_jstr(w, op->config.value);
        jv_mpw_u64(w, op->config.stamp);
        break;
    case JV_OP_ARCHIVE_ADD:
        jv_mpw_array(w, 6);
        jv_mpw_u64(w, op->kind);
        jv_mpw_jstr(w, op->add.key);
        jv_mpw_jstr(w, op->add.value);
        jv_mpw_u64(w, op->add.stamp);
        jv_mpw_u64(w, op->add.dot_n);
        write_dots(w, op->add.removes, op->add.nremoves);
        break;
    case JV_OP_ARCHIVE_RM:
        jv_mpw_array(w, 3);
        jv_mpw_u64(w, op->kind);
        jv_mpw_jstr(w, op->rm.key);
        write_dots(w, op->rm.removes, op->rm.nremoves);
        break;
    case JV_OP_TRUST:
        jv_mpw_array(w, 5);
        jv_mpw_u64(w, op->kind);
        jv_mpw_id(w, &op->trust.node);
        jv_mpw_bool(w, op->trust.trusted);
        jv_mpw_u64(w, op->trust.stamp);
        jv_mpw_jstr(w, op->trust.name);
        break;
    case JV_OP_SUCCESSION:
        jv_mpw_array(w, 5);
        jv_mpw_u64(w, op->kind);
        jv_mpw_id(w, &op->succ.old);
        jv_mpw_u64(w, op->succ.last_seq);
        jv_mpw_u64(w, op->succ.time_ms);
        jv_mpw_bin(w, op->succ.sig, JV_SIG_LEN);
        break;
    case JV_OP_KEY_ADD:
        jv_mpw_array(w, 7);
        jv_mpw_u64(w, op->kind);
        jv_mpw_jstr(w, op->key_add.id);
        jv_mpw_jstr(w, op->key_add.name);
        jv_mpw_jstr(w, op->key_add.role);
        jv_mpw_bin(w, op->key_add.hash, JV_OP_KEY_HASH_LEN);
        jv_mpw_u64(w, op->key_add.time_ms);
        jv_mpw_jstr(w, op->key_add.by);
        break;
    case JV_OP_KEY_REVOKE:
        jv_mpw_array(w, 4);
        jv_mpw_u64(w, op->kind);
        jv_mpw_jstr(w, op->key_revoke.id);
        jv_mpw_u64(w, op->key_revoke.time_ms);
        jv_mpw_jstr(w, op->key_revoke.by);
        break;
    }
}

/* A succession op only as the first op of an origin's first batch, and
 * for another origin. */
static bool placement_ok(const jv_id *origin, uint64_t first_seq,
                         const jv_op *ops, uint32_t nops)
{
    for (uint32_t i = 0; i < nops; i++)
        if (ops[i].kind == JV_OP_SUCCESSION &&
            (i != 0 || first_seq != 1 || jv_id_eq(&ops[i].succ.old, origin)))
            return false;
    return true;
}

static bool head_ok(uint64_t first_seq, uint64_t nops, uint64_t hlc,
                    const uint8_t *prev)
{
    if (hlc == 0 || hlc > JV_INT_MAX)
        return false;
    if (first_seq == 0 || nops == 0 || nops > JV_BATCH_MAX_OPS)
        return false;
    if (first_seq > JV_INT_MAX - nops + 1)
        return false;
    /* The first batch of an origin links to nothing. */
    if (first_seq == 1 && memcmp(prev, zero_hash, JV_HASH_LEN) != 0)
        return false;
    return true;
}

jv_err jv_batch_encode(const jv_batch *b, jv_buf *out)
{
    if (!head_ok(b->first_seq, b->nops, b->hlc, b->prev))
        return JV_EINVAL;
    for (uint32_t i = 0; i < b->nops; i++)
        if (jv_op_validate(&b->ops[i], b->hlc) != JV_OK)
            return JV_EINVAL;
    if (!placement_ok(&b->origin, b->first_seq, b->ops, b->nops))
        return JV_EINVAL;

    size_t start;
    jv_mpw w;
    jv_err err = jv__enc_begin(out, &start);
    if (err)
        return err;
    jv_mpw_init(&w, out);
    jv_mpw_array(&w, 6);
    jv_mpw_u64(&w, JV_BATCH_VERSION);
    jv_mpw_id(&w, &b->origin);
    jv_mpw_u64(&w, b->first_seq);
    jv_mpw_bin(&w, b->prev, JV_HASH_LEN);
    jv_mpw_u64(&w, b->hlc);
    jv_mpw_array(&w, b->nops);
    for (uint32_t i = 0; i < b->nops; i++)
        write_op(&w, &b->ops[i]);
    err = jv_mpw_err(&w);
    if (err == JV_OK && out->len - start > JV_BATCH_MAX_BYTES)
        err = JV_ETOOBIG;
    return jv__enc_end(out, start, err);
}

/* Reads the header up to and including the ops array count. */
static jv_err read_head(jv_mpr *r, jv_batch_head *h)
{
    uint64_t version;
    uint32_t nops;
    jv_err err;
    if ((err = jv_mpr_array_n(r, 6)) || (err = jv_mpr_u64(r, &version)))
        return err;
    if (version != JV_BATCH_VERSION)
        return JV_EDECODE;
    if ((err = jv_mpr_id(r, &h->origin)) ||
        (err = jv_mpr_u64(r, &h->first_seq)) ||
        (err = jv_mpr_bin_fixed(r, h->prev, JV_HASH_LEN)) ||
        (err = jv_mpr_u64(r, &h->hlc)) ||
        (err = jv_mpr_array(r, &nops, JV_BATCH_MAX_OPS)))
        return err;
    if (!head_ok(h->first_seq, nops, h->hlc, h->prev))
        return JV_EDECODE;
    h->nops = nops;
    h->last_seq = h->first_seq + nops - 1;
    return JV_OK;
}

jv_err jv_batch_peek(const void *body, size_t len, jv_batch_head *h)
{
    jv_mpr r;
    jv_batch_head tmp;
    if (len > JV_BATCH_MAX_BYTES)
        return JV_ETOOBIG;
    jv_mpr_init(&r, body, len);
    jv_err err = read_head(&r, &tmp);
    if (err == JV_OK)
        *h = tmp;
    return err;
}

/* Growable array of dots backing every dot list of one decoded batch. */
typedef struct {
    jv_dot *d;
    size_t n, cap;
} dot_arena;

static jv_err read_dots(jv_mpr *r, dot_arena *a, size_t *count)
{
    uint32_t n;
    jv_err err = jv_mpr_array(r, &n, JV_OP_MAX_REMOVES);
    if (err)
        return err;
    if (a->n + n > a->cap) {
        size_t cap = a->cap ? a->cap : 16;
        while (cap < a->n + n)
            cap *= 2;
        jv_dot *d = jv_reallocarray(a->d, cap, sizeof(*d));
        if (!d)
            return JV_ENOMEM;
        a->d = d;
        a->cap = cap;
    }
    for (uint32_t i = 0; i < n; i++)
        if ((err = jv_mpr_dot(r, &a->d[a->n + i])))
            return err;
    a->n += n;
    *count = n;
    return JV_OK;
}

/* Decodes one op; its dot list (if any) is appended to the arena and the
 * op's pointer fixed up later, since the arena may move. */
static jv_err read_op(jv_mpr *r, jv_op *op, dot_arena *a)
{
    uint32_t n;
    uint64_t kind;
    jv_err err;
    if ((err = jv_mpr_array(r, &n, 8)))
        return err;
    if (n == 0)
        return JV_EDECODE;
    if ((err = jv_mpr_u64(r, &kind)))
        return err;
    static const uint32_t arity[JV_OP_KIND_COUNT] = {4, 6, 4, 6, 3, 5, 5, 7, 4};
    if (kind >= JV_OP_KIND_COUNT)
        return JV_EDECODE;
    if (n != arity[kind])
        return JV_ETYPE;
    op->kind = (jv_op_kind)kind;
    switch (op->kind) {
    case JV_OP_COUNTER:
        if ((err = jv_mpr_str(r, &op->counter.name, JV_OP_MAX_NAME)) ||
            (err = jv_mpr_u64(r, &op->counter.p)) ||
            (err = jv_mpr_u64(r, &op->counter.n)))
            return err;
        break;
    case JV_OP_AUDIT:
        if ((err = jv_mpr_u64(r, &op->audit.time_ms)) ||
            (err = jv_mpr_str(r, &op->audit.actor, JV_AUDIT_MAX_ACTOR)) ||
            (err = jv_mpr_str(r, &op->audit.action, JV_AUDIT_MAX_ACTION)) ||
            (err = jv_mpr_str(r, &op->audit.target, JV_AUDIT_MAX_TARGET)) ||
            (err = jv_mpr_str(r, &op->audit.detail, JV_AUDIT_MAX_DETAIL)))
            return err;
        break;
    case JV_OP_CONFIG:
        if ((err = jv_mpr_str(r, &op->config.key, JV_OP_MAX_KEY)) ||
            (err = jv_mpr_str(r, &op->config.value, JV_OP_MAX_VALUE)) ||
            (err = jv_mpr_u64(r, &op->config.stamp)))
            return err;
        break;
    case JV_OP_ARCHIVE_ADD:
        if ((err = jv_mpr_str(r, &op->add.key, JV_OP_MAX_KEY)) ||
            (err = jv_mpr_str(r, &op->add.value, JV_OP_MAX_VALUE)) ||
            (err = jv_mpr_u64(r, &op->add.stamp)) ||
            (err = jv_mpr_u64(r, &op->add.dot_n)) ||
            (err = read_dots(r, a, &op->add.nremoves)))
            return err;
        op->add.removes = NULL;
        break;
    case JV_OP_ARCHIVE_RM:
        if ((err = jv_mpr_str(r, &op->rm.key, JV_OP_MAX_KEY)) ||
            (err = read_dots(r, a, &op->rm.nremoves)))
            return err;
        op->rm.removes = NULL;
        break;
    case JV_OP_TRUST:
        if ((err = jv_mpr_id(r, &op->trust.node)) ||
            (err = jv_mpr_bool(r, &op->trust.trusted)) ||
            (err = jv_mpr_u64(r, &op->trust.stamp)) ||
            (err = jv_mpr_str(r, &op->trust.name, JV_OP_MAX_NAME)))
            return err;
        break;
    case JV_OP_SUCCESSION:
        if ((err = jv_mpr_id(r, &op->succ.old)) ||
            (err = jv_mpr_u64(r, &op->succ.last_seq)) ||
            (err = jv_mpr_u64(r, &op->succ.time_ms)) ||
            (err = jv_mpr_bin_fixed(r, op->succ.sig, JV_SIG_LEN)))
            return err;
        break;
    case JV_OP_KEY_ADD:
        if ((err = jv_mpr_str(r, &op->key_add.id, JV_OP_MAX_KEY_ID)) ||
            (err = jv_mpr_str(r, &op->key_add.name, JV_OP_MAX_NAME)) ||
            (err = jv_mpr_str(r, &op->key_add.role, JV_OP_MAX_ROLE)) ||
            (err = jv_mpr_bin_fixed(r, op->key_add.hash, JV_OP_KEY_HASH_LEN)) ||
            (err = jv_mpr_u64(r, &op->key_add.time_ms)) ||
            (err = jv_mpr_str(r, &op->key_add.by, JV_OP_MAX_NAME)))
            return err;
        break;
    case JV_OP_KEY_REVOKE:
        if ((err = jv_mpr_str(r, &op->key_revoke.id, JV_OP_MAX_KEY_ID)) ||
            (err = jv_mpr_u64(r, &op->key_revoke.time_ms)) ||
            (err = jv_mpr_str(r, &op->key_revoke.by, JV_OP_MAX_NAME)))
            return err;
        break;
    }
    return JV_OK;
}

jv_err jv_batch_decode(const void *body, size_t len, jv_batch *out)
{
    jv_mpr r;
    jv_batch_head h;
    dot_arena a = {0};
    jv_op *ops = NULL;
    size_t *dot_off = NULL;
    jv_err err;

    if (len > JV_BATCH_MAX_BYTES)
        return JV_ETOOBIG;
    jv_mpr_init(&r, body, len);
    if ((err = read_head(&r, &h)))
        return err;
    ops = jv_calloc(h.nops, sizeof(*ops));
    dot_off = jv_calloc(h.nops, sizeof(*dot_off));
    if (!ops || !dot_off) {
        err = JV_ENOMEM;
        goto fail;
    }
    for (uint32_t i = 0; i < h.nops; i++) {
        dot_off[i] = a.n;
        if ((err = read_op(&r, &ops[i], &a)))
            goto fail;
    }
    if ((err = jv_mpr_end(&r)))
        goto fail;
    for (uint32_t i = 0; i < h.nops; i++) {
        if (ops[i].kind == JV_OP_ARCHIVE_ADD && ops[i].add.nremoves)
            ops[i].add.removes = a.d + dot_off[i];
        else if (ops[i].kind == JV_OP_ARCHIVE_RM)
            ops[i].rm.removes = ops[i].rm.nremoves ? a.d + dot_off[i] : NULL;
        if (jv_op_validate(&ops[i], h.hlc) != JV_OK) {
            err = JV_EDECODE;
            goto fail;
        }
    }
    if (!placement_ok(&h.origin, h.first_seq, ops, h.nops)) {
        err = JV_EDECODE;
        goto fail;
    }
    /* Only old's key makes an origin carry on for old. */
    if (ops[0].kind == JV_OP_SUCCESSION &&
        (err = jv_succession_verify(&ops[0], &h.origin)))
        goto fail;
    jv_free(dot_off);
    out->origin = h.origin;
    out->first_seq = h.first_seq;
    memcpy(out->prev, h.prev, JV_HASH_LEN);
    out->hlc = h.hlc;
    out->ops = ops;
    out->nops = h.nops;
    out->owned_dots = a.d;
    return JV_OK;
fail:
    jv_free(dot_off);
    jv_free(ops);
    jv_free(a.d);
    return err;
}

void jv_batch_fini(jv_batch *b)
{
    if (!b)
        return;
    jv_free(b->ops);
    jv_free(b->owned_dots);
    b->ops = NULL;
    b->owned_dots = NULL;
    b->nops = 0;
}

void jv_batch_hash(const void *body, size_t len, uint8_t out[JV_HASH_LEN])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, JV_HASH_LEN);
    crypto_generichash_update(&st, (const uint8_t *)hash_domain,
                              sizeof(hash_domain) - 1);
    crypto_generichash_update(&st, body, len);
    crypto_generichash_final(&st, out, JV_HASH_LEN);
}

void jv_batch_sign(const uint8_t hash[JV_HASH_LEN], const jv_keypair *kp,
                   uint8_t sig[JV_SIG_LEN])
{
    crypto_sign_detached(sig, NULL, hash, JV_HASH_LEN, kp->sk);
}

jv_err jv_batch_verify_sig(const uint8_t hash[JV_HASH_LEN],
                           const uint8_t sig[JV_SIG_LEN], const jv_id *origin)
{
    if (crypto_sign_verify_detached(sig, hash, JV_HASH_LEN, origin->b) != 0)
        return JV_ESIG;
    return JV_OK;
}

jv_err jv_batch_check_chain(const jv_batch_head *h, uint64_t applied,
                            const uint8_t last_hash[JV_HASH_LEN])
{
    if (h->last_seq <= applied)
        return JV_EDUP;
    if (h->first_seq > applied + 1)
        return JV_EGAP;
    if (h->first_seq <= applied)
        return JV_ELINK;
    const uint8_t *want = applied ? last_hash : zero_hash;
    if (sodium_memcmp(h->prev, want, JV_HASH_LEN) != 0)
        return JV_ELINK;
    return JV_OK;
}

jv_err jv_batch_verify(const void *body, size_t len,
                       const uint8_t sig[JV_SIG_LEN], uint64_t applied,
                       const uint8_t last_hash[JV_HASH_LEN], jv_batch *out,
                       uint8_t hash_out[JV_HASH_LEN])
{
    jv_batch_head h;
    uint8_t hash[JV_HASH_LEN];
    jv_err err;
    if ((err = jv_batch_peek(body, len, &h)) ||
        (err = jv_batch_check_chain(&h, applied, last_hash)))
        return err;
    jv_batch_hash(body, len, hash);
    if ((err = jv_batch_verify_sig(hash, sig, &h.origin)) ||
        (err = jv_batch_decode(body, len, out)))
        return err;
    if (hash_out)
        memcpy(hash_out, hash, JV_HASH_LEN);
    return JV_OK;
}

static void succ_hash(const jv_id *old, const jv_id *new_origin,
                      uint64_t last_seq, uint64_t time_ms,
                      uint8_t out[JV_HASH_LEN])
{
    crypto_generichash_state st;
    uint8_t be[16];
    for (int i = 0; i < 8; i++) {
        be[i] = (uint8_t)(last_seq >> (56 - 8 * i));
        be[8 + i] = (uint8_t)(time_ms >> (56 - 8 * i));
    }
    crypto_generichash_init(&st, NULL, 0, JV_HASH_LEN);
    crypto_generichash_update(&st, (const uint8_t *)succ_domain,
                              sizeof(succ_domain) - 1);
    crypto_generichash_update(&st, old->b, JV_ID_LEN);
    crypto_generichash_update(&st, new_origin->b, JV_ID_LEN);
    crypto_generichash_update(&st, be, sizeof(be));
    crypto_generichash_final(&st, out, JV_HASH_LEN);
}

void jv_succession_sign(const jv_keypair *old, const jv_id *new_origin,
                        uint64_t last_seq, uint64_t time_ms,
                        uint8_t sig[JV_SIG_LEN])
{
    uint8_t h[JV_HASH_LEN];
    succ_hash(&old->pk, new_origin, last_seq, time_ms, h);
    crypto_sign_detached(sig, NULL, h, JV_HASH_LEN, old->sk);
}

jv_err jv_succession_verify(const jv_op *op, const jv_id *new_origin)
{
    uint8_t h[JV_HASH_LEN];
    if (op->kind != JV_OP_SUCCESSION)
        return JV_EINVAL;
    succ_hash(&op->succ.old, new_origin, op->succ.last_seq, op->succ.time_ms,
              h);
    if (crypto_sign_verify_detached(op->succ.sig, h, JV_HASH_LEN,
                                    op->succ.old.b) != 0)
        return JV_ESIG;
    return JV_OK;
}

jv_err jv_keypair_generate(jv_keypair *kp)
{
    if (sodium_init() < 0)
        return JV_ESTATE;
    crypto_sign_keypair(kp->pk.b, kp->sk);
    return JV_OK;
}

jv_err jv_keypair_from_secret(jv_keypair *kp, const uint8_t sk[64])
{
    jv_keypair tmp;
    uint8_t seed[crypto_sign_SEEDBYTES];
    jv_err err = JV_OK;
    if (sodium_init() < 0)
        return JV_ESTATE;
    /* Re-derive the pair from the seed half: a file whose public half does
     * not belong to its seed is damaged. */
    crypto_sign_ed25519_sk_to_seed(seed, sk);
    crypto_sign_seed_keypair(tmp.pk.b, tmp.sk, seed);
    if (sodium_memcmp(tmp.sk, sk, 64) != 0)
        err = JV_EINVAL;
    else
        *kp = tmp;
    sodium_memzero(seed, sizeof(seed));
    sodium_memzero(&tmp, sizeof(tmp));
    return err;
}

void jv_keypair_wipe(jv_keypair *kp)
{
    sodium_memzero(kp, sizeof(*kp));
}
