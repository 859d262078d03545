/* batch_test.c - operations, signed batches and the hash chain
 * (crdt/batch.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "alloc.h"
#include "audit.h"
#include "batch.h"
#include "crdt_test.h"
#include "hlc.h"

static const uint8_t zero_hash[JV_HASH_LEN];
static char *big; /* BIG bytes of 'a', for length limits */
#define BIG (JV_OP_MAX_VALUE + 16)

static jv_id id_of(uint8_t b)
{
    jv_id id;
    memset(id.b, b, sizeof(id.b));
    return id;
}

static jv_str sized(size_t n)
{
    jv_str s = {big, n};
    return s;
}

static const jv_dot two_dots[2] = {{{{1}}, 1}, {{{1}}, 2}};
static const jv_dot one_dot[1] = {{{{2}}, 7}};

#define HLC jv_hlc_make(2000, 5)

/* The kinds that may stand anywhere in a batch (a succession opens an
 * origin's first batch only: test_succession). */
#define ANY_KINDS (JV_OP_KIND_COUNT - 1)

/* One operation of every kind, all valid under HLC. */
static void every_kind(jv_op ops[ANY_KINDS])
{
    memset(ops, 0, ANY_KINDS * sizeof(*ops));
    ops[0].kind = JV_OP_COUNTER;
    ops[0].counter.name = jv_str_c("requests");
    ops[0].counter.p = 1000;
    ops[0].counter.n = 3;
    ops[1].kind = JV_OP_AUDIT;
    ops[1].audit.time_ms = 1999;
    ops[1].audit.actor = jv_str_c("admin");
    ops[1].audit.action = jv_str_c("config.set");
    ops[1].audit.target = jv_str_c("limits/max");
    ops[1].audit.detail = jv_str_c("{\"old\":1,\"new\":2}");
    ops[2].kind = JV_OP_CONFIG;
    ops[2].config.key = jv_str_c("limits/max");
    ops[2].config.value = jv_str_c("2");
    ops[2].config.stamp = HLC - 1;
    ops[3].kind = JV_OP_ARCHIVE_ADD;
    ops[3].add.key = jv_str_c("docs/a");
    ops[3].add.value = jv_str_c("{\"size\":10}");
    ops[3].add.stamp = HLC;
    ops[3].add.dot_n = 3;
    ops[3].add.removes = two_dots;
    ops[3].add.nremoves = 2;
    ops[4].kind = JV_OP_ARCHIVE_RM;
    ops[4].rm.key = jv_str_c("docs/b");
    ops[4].rm.removes = one_dot;
    ops[4].rm.nremoves = 1;
    ops[5].kind = JV_OP_TRUST;
    ops[5].trust.node = id_of(0x77);
    ops[5].trust.trusted = true;
    ops[5].trust.stamp = 1;
    ops[5].trust.name = jv_str_c("node-7");
    ops[6].kind = JV_OP_KEY_ADD;
    ops[6].key_add.id = jv_str_c("k_0123456789ab");
    ops[6].key_add.name = jv_str_c("deploy");
    ops[6].key_add.role = jv_str_c("writer");
    memset(ops[6].key_add.hash, 0x5c, JV_OP_KEY_HASH_LEN);
    ops[6].key_add.time_ms = 1998;
    ops[6].key_add.by = jv_str_c("admin");
    ops[7].kind = JV_OP_KEY_REVOKE;
    ops[7].key_revoke.id = jv_str_c("k_0123456789ab");
    ops[7].key_revoke.time_ms = 2000;
    ops[7].key_revoke.by = jv_str_c("admin");
}

static jv_batch make(const jv_id *origin, uint64_t first, const uint8_t *prev,
                     jv_op *ops, uint32_t nops)
{
    jv_batch b;
    memset(&b, 0, sizeof(b));
    b.origin = *origin;
    b.first_seq = first;
    memcpy(b.prev, prev, JV_HASH_LEN);
    b.hlc = HLC;
    b.ops = ops;
    b.nops = nops;
    return b;
}

static void encode_ok(const jv_batch *b, jv_buf *out)
{
    jv_buf_reset(out);
    assert_int_equal(jv_batch_encode(b, out), JV_OK);
}

static void assert_str(jv_str a, jv_str b)
{
    assert_int_equal(a.n, b.n);
    if (a.n)
        assert_memory_equal(a.p, b.p, a.n);
}

static void assert_dots(const jv_dot *a, const jv_dot *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        assert_int_equal(jv_dot_cmp(&a[i], &b[i]), 0);
}

static void assert_op(const jv_op *a, const jv_op *b)
{
    assert_int_equal(a->kind, b->kind);
    switch (a->kind) {
    case JV_OP_COUNTER:
        assert_str(a->counter.name, b->counter.name);
        assert_int_equal(a->counter.p, b->counter.p);
        assert_int_equal(a->counter.n, b->counter.n);
        break;
    case JV_OP_AUDIT:
        assert_int_equal(a->audit.time_ms, b->audit.time_ms);
        assert_str(a->audit.actor, b->audit.actor);
        assert_str(a->audit.action, b->audit.action);
        assert_str(a->audit.target, b->audit.target);
        assert_str(a->audit.detail, b->audit.detail);
        break;
    case JV_OP_CONFIG:
        assert_str(a->config.key, b->config.key);
        assert_str(a->config.value, b->config.value);
        assert_int_equal(a->config.stamp, b->config.stamp);
        break;
    case JV_OP_ARCHIVE_ADD:
        assert_str(a->add.key, b->add.key);
        assert_str(a->add.value, b->add.value);
        assert_int_equal(a->add.stamp, b->add.stamp);
        assert_int_equal(a->add.dot_n, b->add.dot_n);
        assert_int_equal(a->add.nremoves, b->add.nremoves);
        assert_dots(a->add.removes, b->add.removes, a->add.nremoves);
        break;
    case JV_OP_ARCHIVE_RM:
        assert_str(a->rm.key, b->rm.key);
        assert_int_equal(a->rm.nremoves, b->rm.nremoves);
        assert_dots(a->rm.removes, b->rm.removes, a->rm.nremoves);
        break;
    case JV_OP_TRUST:
        assert_true(jv_id_eq(&a->trust.node, &b->trust.node));
        assert_int_equal(a->trust.trusted, b->trust.trusted);
        assert_int_equal(a->trust.stamp, b->trust.stamp);
        assert_str(a->trust.name, b->trust.name);
        break;
    case JV_OP_SUCCESSION:
        assert_true(jv_id_eq(&a->succ.old, &b->succ.old));
        assert_int_equal(a->succ.last_seq, b->succ.last_seq);
        assert_int_equal(a->succ.time_ms, b->succ.time_ms);
        assert_memory_equal(a->succ.sig, b->succ.sig, JV_SIG_LEN);
        break;
    case JV_OP_KEY_ADD:
        assert_str(a->key_add.id, b->key_add.id);
        assert_str(a->key_add.name, b->key_add.name);
        assert_str(a->key_add.role, b->key_add.role);
        assert_memory_equal(a->key_add.hash, b->key_add.hash,
                            JV_OP_KEY_HASH_LEN);
        assert_int_equal(a->key_add.time_ms, b->key_add.time_ms);
        assert_str(a->key_add.by, b->key_add.by);
        break;
    case JV_OP_KEY_REVOKE:
        assert_str(a->key_revoke.id, b->key_revoke.id);
        assert_int_equal(a->key_revoke.time_ms, b->key_revoke.time_ms);
        assert_str(a->key_revoke.by, b->key_revoke.by);
        break;
    }
}

static void test_round_trip_every_kind(void **state)
{
    (void)state;
    jv_op ops[ANY_KINDS];
    jv_buf body, again;
    jv_batch out;
    jv_batch_head h;
    jv_id origin = id_of(0x10);
    every_kind(ops);
    jv_buf_init(&body);
    jv_buf_init(&again);
    uint8_t prev[JV_HASH_LEN];
    memset(prev, 0xee, sizeof(prev));
    jv_batch b = make(&origin, 41, prev, ops, ANY_KINDS);
    encode_ok(&b, &body);

    assert_int_equal(jv_batch_peek(body.data, body.len, &h), JV_OK);
    assert_true(jv_id_eq(&h.origin, &origin));
    assert_int_equal(h.first_seq, 41);
    assert_int_equal(h.last_seq, 41 + ANY_KINDS - 1);
    assert_int_equal(h.nops, ANY_KINDS);
    assert_int_equal(h.hlc, HLC);
    assert_memory_equal(h.prev, prev, JV_HASH_LEN);

    assert_int_equal(jv_batch_decode(body.data, body.len, &out), JV_OK);
    assert_true(jv_id_eq(&out.origin, &origin));
    assert_int_equal(out.first_seq, 41);
    assert_int_equal(jv_batch_last_seq(&out), 41 + ANY_KINDS - 1);
    assert_int_equal(out.hlc, HLC);
    assert_memory_equal(out.prev, prev, JV_HASH_LEN);
    assert_int_equal(out.nops, ANY_KINDS);
    for (uint32_t i = 0; i < out.nops; i++)
        assert_op(&out.ops[i], &ops[i]);
    /* The canonical form: re-encoding the decoded batch gives the bytes. */
    encode_ok(&out, &again);
    assert_true(jt_buf_eq(&body, &again));
    jv_batch_fini(&out);
    jv_batch_fini(&out);
    jv_batch_fini(NULL);

    /* Each kind alone, and an add without removes. */
    for (int k = 0; k < ANY_KINDS; k++) {
        b = make(&origin, 1, zero_hash, &ops[k], 1);
        encode_ok(&b, &body);
        assert_int_equal(jv_batch_decode(body.data, body.len, &out), JV_OK);
        assert_op(&out.ops[0], &ops[k]);
        jv_batch_fini(&out);
    }
    ops[3].add.nremoves = 0;
    ops[3].add.removes = NULL;
    b = make(&origin, 1, zero_hash, &ops[3], 1);
    encode_ok(&b, &body);
    assert_int_equal(jv_batch_decode(body.data, body.len, &out), JV_OK);
    assert_op(&out.ops[0], &ops[3]);
    jv_batch_fini(&out);
    jv_buf_fini(&body);
    jv_buf_fini(&again);
}

/* A signed batch: body, its hash, the origin's signature. */
typedef struct {
    jv_buf body;
    uint8_t hash[JV_HASH_LEN];
    uint8_t sig[JV_SIG_LEN];
    uint64_t last;
} signed_batch;

static void sign(signed_batch *s, const jv_keypair *kp, uint64_t first,
                 const uint8_t *prev, jv_op *ops, uint32_t nops)
{
    jv_batch b = make(&kp->pk, first, prev, ops, nops);
    jv_buf_init(&s->body);
    encode_ok(&b, &s->body);
    jv_batch_hash(s->body.data, s->body.len, s->hash);
    jv_batch_sign(s->hash, kp, s->sig);
    s->last = first + nops - 1;
}

static jv_err verify(const signed_batch *s, const uint8_t *sig,
                     uint64_t applied, const uint8_t *last_hash)
{
    jv_batch out, before;
    uint8_t hash[JV_HASH_LEN];
    memset(&out, 0x5c, sizeof(out));
    before = out;
    memset(hash, 0x5c, sizeof(hash));
    jv_err err = jv_batch_verify(s->body.data, s->body.len, sig, applied,
                                 last_hash, &out, hash);
    if (err == JV_OK) {
        assert_memory_equal(hash, s->hash, JV_HASH_LEN);
        jv_batch_fini(&out);
    } else {
        /* Nothing is handed out on failure. */
        assert_memory_equal(&out, &before, sizeof(out));
        for (size_t i = 0; i < JV_HASH_LEN; i++)
            assert_int_equal(hash[i], 0x5c);
    }
    return err;
}

static void test_sign_verify_chain(void **state)
{
    (void)state;
    jv_keypair kp, other;
    jv_op ops[ANY_KINDS];
    signed_batch b1, b2, b3, b_gap, b_overlap, b_badlink;
    assert_int_equal(jv_keypair_generate(&kp), JV_OK);
    assert_int_equal(jv_keypair_generate(&other), JV_OK);
    every_kind(ops);
    sign(&b1, &kp, 1, zero_hash, ops, 3);
    sign(&b2, &kp, 4, b1.hash, ops + 3, 3);
    sign(&b3, &kp, 7, b2.hash, ops, 2);
    sign(&b_gap, &kp, 10, b3.hash, ops, 1);
    sign(&b_overlap, &kp, 6, b2.hash, ops, 3);
    uint8_t wrong[JV_HASH_LEN];
    memcpy(wrong, b2.hash, JV_HASH_LEN);
    wrong[5] ^= 1;
    sign(&b_badlink, &kp, 7, wrong, ops, 2);

    /* The chain, in order. */
    assert_int_equal(verify(&b1, b1.sig, 0, zero_hash), JV_OK);
    assert_int_equal(verify(&b2, b2.sig, b1.last, b1.hash), JV_OK);
    assert_int_equal(verify(&b3, b3.sig, b2.last, b2.hash), JV_OK);
    /* Out of order or replayed: held, dropped, refused. */
    assert_int_equal(verify(&b2, b2.sig, 0, zero_hash), JV_EGAP);
    assert_int_equal(verify(&b_gap, b_gap.sig, b3.last, b3.hash), JV_EGAP);
    assert_int_equal(verify(&b1, b1.sig, b3.last, b3.hash), JV_EDUP);
    assert_int_equal(verify(&b2, b2.sig, b2.last, b2.hash), JV_EDUP);
    assert_int_equal(verify(&b_overlap, b_overlap.sig, b2.last, b2.hash),
                     JV_ELINK);
    assert_int_equal(verify(&b_badlink, b_badlink.sig, b2.last, b2.hash),
                     JV_ELINK);
    assert_int_equal(verify(&b2, b2.sig, b1.last, b3.hash), JV_ELINK);
    /* A duplicate is dropped before any signature work: even a garbage
     * signature gets EDUP, not ESIG. */
    uint8_t junk[JV_SIG_LEN] = {0};
    assert_int_equal(verify(&b1, junk, b1.last, b1.hash), JV_EDUP);

    /* Bad signatures: a flipped bit, another key's, another batch's. */
    uint8_t sig[JV_SIG_LEN];
    memcpy(sig, b1.sig, JV_SIG_LEN);
    sig[10] ^= 0x40;
    assert_int_equal(verify(&b1, sig, 0, zero_hash), JV_ESIG);
    jv_batch_sign(b1.hash, &other, sig);
    assert_int_equal(verify(&b1, sig, 0, zero_hash), JV_ESIG);
    assert_int_equal(verify(&b1, b3.sig, 0, zero_hash), JV_ESIG);
    assert_int_equal(jv_batch_verify_sig(b1.hash, b1.sig, &kp.pk), JV_OK);
    assert_int_equal(jv_batch_verify_sig(b1.hash, b1.sig, &other.pk), JV_ESIG);

    /* Any body byte changed after signing is caught. */
    for (size_t i = 0; i < b1.body.len; i++) {
        b1.body.data[i] ^= 0x01;
        assert_int_not_equal(verify(&b1, b1.sig, 0, zero_hash), JV_OK);
        b1.body.data[i] ^= 0x01;
    }
    /* In particular a byte inside an operation's text: the header still
     * reads, so it is the signature that refuses it. */
    size_t at = b1.body.len - 3;
    b1.body.data[at] ^= 0x01;
    assert_int_equal(verify(&b1, b1.sig, 0, zero_hash), JV_ESIG);
    b1.body.data[at] ^= 0x01;
    assert_int_equal(verify(&b1, b1.sig, 0, zero_hash), JV_OK);

    jv_buf_fini(&b1.body);
    jv_buf_fini(&b2.body);
    jv_buf_fini(&b3.body);
    jv_buf_fini(&b_gap.body);
    jv_buf_fini(&b_overlap.body);
    jv_buf_fini(&b_badlink.body);
    jv_keypair_wipe(&kp);
    jv_keypair_wipe(&other);
}

static void test_check_chain(void **state)
{
    (void)state;
    uint8_t last[JV_HASH_LEN], other[JV_HASH_LEN];
    memset(last, 1, sizeof(last));
    memset(other, 2, sizeof(other));
    jv_batch_head h;
    memset(&h, 0, sizeof(h));
    h.first_seq = 1;
    h.last_seq = 4;
    assert_int_equal(jv_batch_check_chain(&h, 0, other), JV_OK);
    memcpy(h.prev, last, JV_HASH_LEN);
    assert_int_equal(jv_batch_check_chain(&h, 0, last), JV_ELINK);
    h.first_seq = 5;
    h.last_seq = 5;
    assert_int_equal(jv_batch_check_chain(&h, 4, last), JV_OK);
    assert_int_equal(jv_batch_check_chain(&h, 4, other), JV_ELINK);
    assert_int_equal(jv_batch_check_chain(&h, 3, last), JV_EGAP);
    assert_int_equal(jv_batch_check_chain(&h, 5, last), JV_EDUP);
    assert_int_equal(jv_batch_check_chain(&h, 9, last), JV_EDUP);
    h.last_seq = 8;
    assert_int_equal(jv_batch_check_chain(&h, 6, last), JV_ELINK);
}

static void test_first_batch_links_to_nothing(void **state)
{
    (void)state;
    jv_op ops[ANY_KINDS];
    jv_buf body;
    jv_id origin = id_of(3);
    uint8_t prev[JV_HASH_LEN] = {0};
    prev[31] = 1;
    every_kind(ops);
    jv_buf_init(&body);
    jt_raw(&body, "keep", 4);
    jv_batch b = make(&origin, 1, prev, ops, 1);
    assert_int_equal(jv_batch_encode(&b, &body), JV_EINVAL);
    assert_int_equal(body.len, 4);
    /* The same body made by hand is refused by peek and decode. */
    b.first_seq = 2;
    jv_buf_reset(&body);
    encode_ok(&b, &body);
    jv_batch_head h;
    assert_int_equal(jv_batch_peek(body.data, body.len, &h), JV_OK);
    /* first_seq 2 is the fixint 0x02 right after the 34-byte origin. */
    assert_int_equal(body.data[1 + 1 + 34], 0x02);
    body.data[1 + 1 + 34] = 0x01;
    assert_int_equal(jv_batch_peek(body.data, body.len, &h), JV_EDECODE);
    jv_batch out;
    assert_int_equal(jv_batch_decode(body.data, body.len, &out), JV_EDECODE);
    jv_buf_fini(&body);
}

/* ---- hand-made bodies ------------------------------------------------- */

typedef struct {
    uint64_t version;
    jv_id origin;
    uint64_t first_seq;
    uint8_t prev[JV_HASH_LEN];
    uint64_t hlc;
} head;

static head good_head(void)
{
    head h;
    memset(&h, 0, sizeof(h));
    h.version = JV_BATCH_VERSION;
    h.origin = id_of(9);
    h.first_seq = 1;
    h.hlc = HLC;
    return h;
}

static void w_head(jv_mpw *w, const head *h, uint32_t nops)
{
    jv_mpw_array(w, 6);
    jv_mpw_u64(w, h->version);
    jv_mpw_id(w, &h->origin);
    jv_mpw_u64(w, h->first_seq);
    jv_mpw_bin(w, h->prev, JV_HASH_LEN);
    jv_mpw_u64(w, h->hlc);
    jv_mpw_array(w, nops);
}

static void w_dots(jv_mpw *w, const jv_dot *d, size_t n)
{
    jv_mpw_array(w, (uint32_t)n);
    for (size_t i = 0; i < n; i++)
        jv_mpw_dot(w, &d[i]);
}

/* Writes any op, valid or not, the way the format lays it out. */
static void w_op(jv_mpw *w, const jv_op *op)
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
        w_dots(w, op->add.removes, op->add.nremoves);
        break;
    case JV_OP_ARCHIVE_RM:
        jv_mpw_array(w, 3);
        jv_mpw_u64(w, op->kind);
        jv_mpw_jstr(w, op->rm.key);
        w_dots(w, op->rm.removes, op->rm.nremoves);
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

/* Decoding must fail with `want` (any error if JV_OK) and leave out as it
 * was; returns the error. */
static jv_err refused_at(const jv_buf *body, jv_err want, int line)
{
    jv_batch out, before;
    memset(&out, 0xa5, sizeof(out));
    before = out;
    jv_err err = jv_batch_decode(body->data, body->len, &out);
    assert_int_not_equal(err, JV_OK);
    if (want != JV_OK && err != want)
        fail_msg("line %d: decode: %s, want %s", line, jv_errname(err),
                 jv_errname(want));
    assert_memory_equal(&out, &before, sizeof(out));
    return err;
}
#define refused(body, want) refused_at((body), (want), __LINE__)

/* One op that breaks one rule: encode refuses it (JV_EINVAL, buffer
 * unchanged), the decoder refuses a body carrying it with dec_err. */
static void bad_op(const jv_op *op, jv_err dec_err)
{
    jv_buf body;
    jv_mpw w;
    jv_id origin = id_of(9);
    jv_op copy = *op;
    jv_batch b = make(&origin, 1, zero_hash, &copy, 1);
    jv_buf_init(&body);
    jt_raw(&body, "x", 1);
    assert_int_equal(jv_batch_encode(&b, &body), JV_EINVAL);
    assert_int_equal(body.len, 1);
    assert_int_equal(jv_op_validate(op, HLC), JV_EINVAL);
    jv_buf_reset(&body);
    jv_mpw_init(&w, &body);
    head h = good_head();
    w_head(&w, &h, 1);
    w_op(&w, op);
    refused(&body, dec_err);
    jv_buf_fini(&body);
}

/* One op right at a limit: it encodes and decodes back. */
static void edge_op(const jv_op *op)
{
    jv_buf body;
    jv_batch out;
    jv_id origin = id_of(9);
    jv_op copy = *op;
    jv_batch b = make(&origin, 1, zero_hash, &copy, 1);
    jv_buf_init(&body);
    encode_ok(&b, &body);
    assert_int_equal(jv_batch_decode(body.data, body.len, &out), JV_OK);
    assert_op(&out.ops[0], op);
    jv_batch_fini(&out);
    jv_buf_fini(&body);
}

/* UTF-8 as RFC 3629 has it, without NUL, one byte at a time: what
 * jv_str_valid_utf8 (which reads ASCII a word at a time) must agree with. */
static bool utf8_ref(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint8_t c = p[i];
        size_t len = c == 0               ? 0
                     : c < 0x80           ? 1
                     : (c & 0xe0) == 0xc0 ? 2
                     : (c & 0xf0) == 0xe0 ? 3
                     : (c & 0xf8) == 0xf0 ? 4
                                          : 0;
        if (len == 0 || n - i < len)
            return false;
        uint32_t cp = len == 1 ? c : c & (0x7f >> len);
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (p[i + k] & 0x3f);
        }
        static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += len;
    }
    return true;
}

static void utf8_agree(const uint8_t *p, size_t n)
{
    jv_str s = {(const char *)p, n};
    if (jv_str_valid_utf8(s) != utf8_ref(p, n))
        fail_msg("jv_str_valid_utf8 says %d for %zu bytes (first %02x)",
                 jv_str_valid_utf8(s), n, n ? p[0] : 0);
}

/* Every placement of a NUL, a stray byte or a sequence in ASCII text of
 * 0..40 bytes (across the word boundaries), then random texts. */
static void test_utf8_validation(void **state)
{
    (void)state;
    static const char *const seqs[] = {"\x00",
                                       "\x80",
                                       "\xc3",
                                       "\xff",
                                       "\xc3\xa9",
                                       "\xe2\x82\xac",
                                       "\xf0\x9f\x98\x80",
                                       "\xe2\x82",
                                       "\xc0\x80",
                                       "\xed\xa0\x80",
                                       "\xf4\x90\x80\x80",
                                       "\x7f"};
    static const size_t seq_len[] = {1, 1, 1, 1, 2, 3, 4, 2, 2, 3, 4, 1};
    uint8_t buf[64];
    for (size_t n = 0; n <= 40; n++) {
        memset(buf, 'a', n);
        utf8_agree(buf, n);
        for (size_t q = 0; q < sizeof(seqs) / sizeof(*seqs); q++)
            for (size_t at = 0; at + seq_len[q] <= n; at++) {
                memset(buf, 'a', n);
                memcpy(buf + at, seqs[q], seq_len[q]);
                utf8_agree(buf, n);
            }
    }
    assert_false(jv_str_valid_utf8((jv_str){"abcdefg\0ijklmnop", 16}));
    assert_true(jv_str_valid_utf8((jv_str){"abcdefgh\xc3\xa9jklmnop", 17}));
    uint64_t x = 0x9e3779b97f4a7c15u;
    for (int r = 0; r < 200000; r++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t n = x % 33;
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            /* Mostly ASCII, so that long valid runs happen. */
            buf[i] = x % 8 ? (uint8_t)(0x20 + x % 0x5f) : (uint8_t)(x >> 8);
        }
        utf8_agree(buf, n);
    }
}

static void test_op_limits(void **state)
{
    (void)state;
    jv_op ops[ANY_KINDS], op;
    every_kind(ops);
    jv_str bad_utf8 = {"a\xc3", 2}, nul = {"a\0b", 3};

    /* Counter names: 1..256 bytes of UTF-8. */
    op = ops[0];
    op.counter.name = sized(JV_OP_MAX_NAME);
    edge_op(&op);
    op.counter.name = sized(JV_OP_MAX_NAME + 1);
    bad_op(&op, JV_ETOOBIG);
    op.counter.name = sized(0);
    bad_op(&op, JV_EDECODE);
    op.counter.name = bad_utf8;
    bad_op(&op, JV_EDECODE);
    op.counter.name = nul;
    bad_op(&op, JV_EDECODE);

    /* Audit texts at and past their limits; time within the batch's. */
    const size_t max[4] = {JV_AUDIT_MAX_ACTOR, JV_AUDIT_MAX_ACTION,
                           JV_AUDIT_MAX_TARGET, JV_AUDIT_MAX_DETAIL};
    for (int f = 0; f < 4; f++) {
        op = ops[1];
        jv_str *field[4] = {&op.audit.actor, &op.audit.action, &op.audit.target,
                            &op.audit.detail};
        *field[f] = sized(max[f]);
        edge_op(&op);
        *field[f] = sized(max[f] + 1);
        bad_op(&op, JV_ETOOBIG);
        *field[f] = bad_utf8;
        bad_op(&op, JV_EDECODE);
    }
    op = ops[1];
    op.audit.actor = sized(0);
    bad_op(&op, JV_EDECODE);
    op = ops[1];
    op.audit.target = sized(0);
    op.audit.detail = sized(0);
    edge_op(&op);
    op.audit.time_ms = jv_hlc_ms(HLC);
    edge_op(&op);
    op.audit.time_ms = jv_hlc_ms(HLC) + 1;
    bad_op(&op, JV_EDECODE);

    /* Config: key 1..1024, value 1..65536, stamp 1..hlc. */
    op = ops[2];
    op.config.key = sized(JV_OP_MAX_KEY);
    op.config.value = sized(JV_OP_MAX_VALUE);
    op.config.stamp = HLC;
    edge_op(&op);
    op.config.key = sized(JV_OP_MAX_KEY + 1);
    bad_op(&op, JV_ETOOBIG);
    op = ops[2];
    op.config.value = sized(JV_OP_MAX_VALUE + 1);
    bad_op(&op, JV_ETOOBIG);
    op = ops[2];
    op.config.value = sized(0);
    bad_op(&op, JV_EDECODE);
    op = ops[2];
    op.config.key = bad_utf8;
    bad_op(&op, JV_EDECODE);
    op = ops[2];
    op.config.stamp = 0;
    bad_op(&op, JV_EDECODE);
    op.config.stamp = HLC + 1;
    bad_op(&op, JV_EDECODE);

    /* Archive add and remove: dot lists sorted, unique, n >= 1, at most
     * 1024; a remove needs one. */
    jv_dot *dots = calloc(JV_OP_MAX_REMOVES + 1, sizeof(*dots));
    assert_non_null(dots);
    for (size_t i = 0; i <= JV_OP_MAX_REMOVES; i++)
        dots[i] = (jv_dot){id_of(4), i + 1};
    op = ops[3];
    op.add.removes = dots;
    op.add.nremoves = JV_OP_MAX_REMOVES;
    edge_op(&op);
    op.add.nremoves = JV_OP_MAX_REMOVES + 1;
    bad_op(&op, JV_ETOOBIG);
    op = ops[3];
    op.add.dot_n = 0;
    bad_op(&op, JV_EDECODE);
    op = ops[3];
    op.add.stamp = HLC + 1;
    bad_op(&op, JV_EDECODE);
    op = ops[3];
    op.add.value = sized(JV_OP_MAX_VALUE + 1);
    bad_op(&op, JV_ETOOBIG);
    jv_dot unsorted[2] = {{id_of(4), 2}, {id_of(4), 1}};
    jv_dot dup[2] = {{id_of(4), 2}, {id_of(4), 2}};
    jv_dot zero[1] = {{id_of(4), 0}};
    op = ops[3];
    op.add.removes = unsorted;
    op.add.nremoves = 2;
    bad_op(&op, JV_EDECODE);
    op.add.removes = dup;
    bad_op(&op, JV_EDECODE);
    op = ops[4];
    op.rm.removes = dots;
    op.rm.nremoves = JV_OP_MAX_REMOVES;
    edge_op(&op);
    op.rm.nremoves = JV_OP_MAX_REMOVES + 1;
    bad_op(&op, JV_ETOOBIG);
    op.rm.nremoves = 0;
    bad_op(&op, JV_EDECODE);
    op.rm.removes = unsorted;
    op.rm.nremoves = 2;
    bad_op(&op, JV_EDECODE);
    op.rm.removes = zero;
    op.rm.nremoves = 1;
    bad_op(&op, JV_EDECODE);
    op = ops[4];
    op.rm.key = sized(0);
    bad_op(&op, JV_EDECODE);
    free(dots);

    /* Trust: a real node, a stamp, a name of at most 256 (may be empty). */
    op = ops[5];
    op.trust.name = sized(0);
    op.trust.trusted = false;
    edge_op(&op);
    op.trust.name = sized(JV_OP_MAX_NAME);
    edge_op(&op);
    op.trust.name = sized(JV_OP_MAX_NAME + 1);
    bad_op(&op, JV_ETOOBIG);
    op = ops[5];
    op.trust.node = id_of(0);
    bad_op(&op, JV_EDECODE);
    op = ops[5];
    op.trust.stamp = 0;
    bad_op(&op, JV_EDECODE);

    /* Cluster keys: an id of 1..64 bytes, a name, a role of 1..16, a time
     * not after the batch stamp; `by` may be empty. */
    op = ops[6];
    op.key_add.id = sized(JV_OP_MAX_KEY_ID);
    op.key_add.role = sized(JV_OP_MAX_ROLE);
    op.key_add.by = sized(0);
    edge_op(&op);
    op.key_add.id = sized(JV_OP_MAX_KEY_ID + 1);
    bad_op(&op, JV_ETOOBIG);
    op = ops[6];
    op.key_add.role = sized(JV_OP_MAX_ROLE + 1);
    bad_op(&op, JV_ETOOBIG);
    op = ops[6];
    op.key_add.id = sized(0);
    bad_op(&op, JV_EDECODE);
    op = ops[6];
    op.key_add.name = sized(0);
    bad_op(&op, JV_EDECODE);
    op = ops[6];
    op.key_add.time_ms = jv_hlc_ms(HLC) + 1;
    bad_op(&op, JV_EDECODE);
    op = ops[7];
    op.key_revoke.by = sized(0);
    edge_op(&op);
    op.key_revoke.id = sized(0);
    bad_op(&op, JV_EDECODE);
    op = ops[7];
    op.key_revoke.time_ms = jv_hlc_ms(HLC) + 1;
    bad_op(&op, JV_EDECODE);
}

static void test_batch_limits(void **state)
{
    (void)state;
    jv_op ops[ANY_KINDS];
    jv_buf body;
    jv_batch out;
    jv_id origin = id_of(1);
    every_kind(ops);
    jv_buf_init(&body);

    /* Operation counts: 1..4096. */
    jv_op *many = calloc(JV_BATCH_MAX_OPS + 1, sizeof(*many));
    assert_non_null(many);
    for (size_t i = 0; i <= JV_BATCH_MAX_OPS; i++)
        many[i] = ops[0];
    jv_batch b = make(&origin, 1, zero_hash, many, JV_BATCH_MAX_OPS);
    encode_ok(&b, &body);
    assert_int_equal(jv_batch_decode(body.data, body.len, &out), JV_OK);
    assert_int_equal(out.nops, JV_BATCH_MAX_OPS);
    jv_batch_fini(&out);
    b.nops = JV_BATCH_MAX_OPS + 1;
    assert_int_equal(jv_batch_encode(&b, &body), JV_EINVAL);
    b.nops = 0;
    assert_int_equal(jv_batch_encode(&b, &body), JV_EINVAL);
    jv_mpw w;
    head h = good_head();
    jv_buf_reset(&body);
    jv_mpw_init(&w, &body);
    w_head(&w, &h, JV_BATCH_MAX_OPS + 1);
    for (size_t i = 0; i <= JV_BATCH_MAX_OPS; i++)
        w_op(&w, &ops[0]);
    refused(&body, JV_ETOOBIG);
    jv_buf_reset(&body);
    w_head(&w, &h, 0);
    refused(&body, JV_EDECODE);
    free(many);

    /* Sequence numbers: from 1, and the last must not wrap. */
    b = make(&origin, 0, zero_hash, ops, 1);
    assert_int_equal(jv_batch_encode(&b, &body), JV_EINVAL);
    uint8_t prev[JV_HASH_LEN];
    memset(prev, 1, sizeof(prev));
    /* ... and stays within a signed 64-bit integer (storage keeps it as
     * one). */
    b = make(&origin, JV_INT_MAX, prev, ops, 1);
    encode_ok(&b, &body);
    assert_int_equal(jv_batch_decode(body.data, body.len, &out), JV_OK);
    assert_int_equal(jv_batch_last_seq(&out), JV_INT_MAX);
    jv_batch_fini(&out);
    b.nops = 2;
    assert_int_equal(jv_batch_encode(&b, &body), JV_EINVAL);
    b = make(&origin, (uint64_t)JV_INT_MAX + 1, prev, ops, 1);
    assert_int_equal(jv_batch_encode(&b, &body), JV_EINVAL);
    h.first_seq = JV_INT_MAX;
    memset(h.prev, 1, sizeof(h.prev));
    jv_buf_reset(&body);
    w_head(&w, &h, 2);
    w_op(&w, &ops[0]);
    w_op(&w, &ops[0]);
    refused(&body, JV_EDECODE);
    h = good_head();
    h.first_seq = 0;
    jv_buf_reset(&body);
    w_head(&w, &h, 1);
    w_op(&w, &ops[0]);
    refused(&body, JV_EDECODE);

    /* Bytes: at most 4 MiB, whatever the op count. */
    jv_op fat = ops[2];
    fat.config.value = sized(JV_OP_MAX_VALUE);
    jv_op *fats = calloc(64, sizeof(*fats));
    assert_non_null(fats);
    for (int i = 0; i < 64; i++)
        fats[i] = fat;
    b = make(&origin, 1, zero_hash, fats, 63);
    encode_ok(&b, &body);
    assert_true(body.len <= JV_BATCH_MAX_BYTES);
    b.nops = 64;
    jv_buf_reset(&body);
    jt_raw(&body, "kept", 4);
    assert_int_equal(jv_batch_encode(&b, &body), JV_ETOOBIG);
    assert_int_equal(body.len, 4);
    uint8_t *huge = calloc(1, JV_BATCH_MAX_BYTES + 1);
    assert_non_null(huge);
    assert_int_equal(jv_batch_decode(huge, JV_BATCH_MAX_BYTES + 1, &out),
                     JV_ETOOBIG);
    jv_batch_head hh;
    assert_int_equal(jv_batch_peek(huge, JV_BATCH_MAX_BYTES + 1, &hh),
                     JV_ETOOBIG);
    free(huge);
    free(fats);
    jv_buf_fini(&body);
}

static jv_err decode_into(const void *p, size_t n, void *out)
{
    return jv_batch_decode(p, n, out);
}

static void batch_snap(const void *t, jv_buf *out)
{
    /* A batch that must not change is compared as raw struct bytes. */
    jv_buf_reset(out);
    jt_raw(out, t, sizeof(jv_batch));
}

static void test_truncated_and_trailing(void **state)
{
    (void)state;
    jv_op ops[ANY_KINDS];
    jv_buf body;
    jv_id origin = id_of(1);
    every_kind(ops);
    jv_buf_init(&body);
    jv_batch b = make(&origin, 1, zero_hash, ops, ANY_KINDS);
    encode_ok(&b, &body);
    jv_batch target;
    memset(&target, 0x3c, sizeof(target));
    jt_prefixes_refused(decode_into, body.data, body.len, &target, batch_snap);
    jt_trailing_refused(decode_into, body.data, body.len, &target, batch_snap);
    /* peek needs the whole header; a body cut inside it is refused. */
    jv_batch_head h;
    for (size_t k = 0; k < 1 + 1 + 34 + 1 + 34 + 5 + 1; k++)
        assert_int_not_equal(jv_batch_peek(body.data, k, &h), JV_OK);
    jv_buf_fini(&body);
}

static void test_wrong_types(void **state)
{
    (void)state;
    jv_op ops[ANY_KINDS];
    jv_buf body;
    jv_mpw w;
    every_kind(ops);
    jv_buf_init(&body);
    head h = good_head();
    jv_id id = id_of(1);
    static const uint8_t prev[JV_HASH_LEN];
#define REFUSE(want, ...)       \
    do {                        \
        jv_buf_reset(&body);    \
        jv_mpw_init(&w, &body); \
        __VA_ARGS__;            \
        refused(&body, want);   \
    } while (0)
#define HEAD_FIELDS(version, origin, first, prv, hlc) \
    jv_mpw_array(&w, 6);                              \
    version;                                          \
    origin;                                           \
    first;                                            \
    prv;                                              \
    hlc;                                              \
    jv_mpw_array(&w, 1);                              \
    w_op(&w, &ops[0])

    REFUSE(JV_ETYPE, jt_byte(&body, 0x86));
    REFUSE(JV_ETYPE, jv_mpw_array(&w, 5); jt_raw(&body, "\1\0\0\0\0\0\0", 7));
    REFUSE(JV_ETYPE, jv_mpw_array(&w, 7); jt_raw(&body, "\1\0\0\0\0\0\0", 7));
    REFUSE(JV_EDECODE, h.version = 2; w_head(&w, &h, 1); w_op(&w, &ops[0]);
           h.version = 1);
    REFUSE(JV_ETYPE, HEAD_FIELDS(jv_mpw_str(&w, "1", 1), jv_mpw_id(&w, &id),
                                 jv_mpw_u64(&w, 1), jv_mpw_bin(&w, prev, 32),
                                 jv_mpw_u64(&w, HLC)));
    REFUSE(JV_ETYPE,
           HEAD_FIELDS(jv_mpw_u64(&w, 1), jv_mpw_str(&w, (char *)id.b, 32),
                       jv_mpw_u64(&w, 1), jv_mpw_bin(&w, prev, 32),
                       jv_mpw_u64(&w, HLC)));
    REFUSE(JV_ETYPE, HEAD_FIELDS(jv_mpw_u64(&w, 1), jv_mpw_bin(&w, id.b, 31),
                                 jv_mpw_u64(&w, 1), jv_mpw_bin(&w, prev, 32),
                                 jv_mpw_u64(&w, HLC)));
    REFUSE(JV_ETYPE,
           HEAD_FIELDS(jv_mpw_u64(&w, 1), jv_mpw_id(&w, &id),
                       jv_mpw_bin(&w, "\1", 1), jv_mpw_bin(&w, prev, 32),
                       jv_mpw_u64(&w, HLC)));
    REFUSE(JV_ENONCANON,
           HEAD_FIELDS(jv_mpw_u64(&w, 1), jv_mpw_id(&w, &id),
                       jt_raw(&body, "\xcc\x01", 2), jv_mpw_bin(&w, prev, 32),
                       jv_mpw_u64(&w, HLC)));
    REFUSE(JV_ETOOBIG,
           HEAD_FIELDS(jv_mpw_u64(&w, 1), jv_mpw_id(&w, &id), jv_mpw_u64(&w, 1),
                       jv_mpw_bin(&w, big, 33), jv_mpw_u64(&w, HLC)));
    REFUSE(JV_ETYPE,
           HEAD_FIELDS(jv_mpw_u64(&w, 1), jv_mpw_id(&w, &id), jv_mpw_u64(&w, 1),
                       jv_mpw_bin(&w, prev, 31), jv_mpw_u64(&w, HLC)));
    REFUSE(JV_ETYPE,
           HEAD_FIELDS(jv_mpw_u64(&w, 1), jv_mpw_id(&w, &id), jv_mpw_u64(&w, 1),
                       jv_mpw_bin(&w, prev, 32), jv_mpw_bool(&w, true)));
    /* The op list and the ops themselves. */
    REFUSE(JV_ETYPE, w_head(&w, &h, 1); body.data[body.len - 1] = 0x81;
           jv_mpw_u64(&w, 1); w_op(&w, &ops[0]));
    REFUSE(JV_ETYPE, w_head(&w, &h, 1); jv_mpw_u64(&w, 0));
    REFUSE(JV_EDECODE, w_head(&w, &h, 1); jv_mpw_array(&w, 0));
    REFUSE(JV_EDECODE, w_head(&w, &h, 1); jv_mpw_array(&w, 4);
           jv_mpw_u64(&w, JV_OP_KIND_COUNT); jv_mpw_u64(&w, 0);
           jv_mpw_u64(&w, 0); jv_mpw_u64(&w, 0));
    REFUSE(JV_ETYPE, w_head(&w, &h, 1); jv_mpw_array(&w, 5);
           jv_mpw_u64(&w, JV_OP_COUNTER); jv_mpw_str(&w, "n", 1);
           jv_mpw_u64(&w, 0); jv_mpw_u64(&w, 0); jv_mpw_u64(&w, 0));
    REFUSE(JV_ETYPE, w_head(&w, &h, 1); jv_mpw_array(&w, 4);
           jv_mpw_str(&w, "0", 1); jv_mpw_str(&w, "n", 1); jv_mpw_u64(&w, 0);
           jv_mpw_u64(&w, 0));
    REFUSE(JV_ETYPE, w_head(&w, &h, 1); jv_mpw_array(&w, 4);
           jv_mpw_u64(&w, JV_OP_COUNTER); jv_mpw_str(&w, "n", 1);
           jv_mpw_str(&w, "1", 1); jv_mpw_u64(&w, 0));
    REFUSE(JV_ETYPE, w_head(&w, &h, 1); jv_mpw_array(&w, 4);
           jv_mpw_u64(&w, JV_OP_COUNTER); jv_mpw_bin(&w, "n", 1);
           jv_mpw_u64(&w, 1); jv_mpw_u64(&w, 0));
    REFUSE(JV_ETYPE, w_head(&w, &h, 1); jv_mpw_array(&w, 5);
           jv_mpw_u64(&w, JV_OP_TRUST); jv_mpw_id(&w, &id); jv_mpw_u64(&w, 1);
           jv_mpw_u64(&w, 1); jv_mpw_str(&w, "", 0));
    REFUSE(JV_ETYPE, w_head(&w, &h, 1); jv_mpw_array(&w, 3);
           jv_mpw_u64(&w, JV_OP_ARCHIVE_RM); jv_mpw_str(&w, "k", 1);
           jv_mpw_array(&w, 1); jv_mpw_id(&w, &id));
    REFUSE(JV_ETYPE, w_head(&w, &h, 1); jv_mpw_array(&w, 3);
           jv_mpw_u64(&w, JV_OP_ARCHIVE_RM); jv_mpw_str(&w, "k", 1);
           jv_mpw_array(&w, 1); jv_mpw_array(&w, 3); jv_mpw_id(&w, &id);
           jv_mpw_u64(&w, 1); jv_mpw_u64(&w, 1));
    /* Fewer ops than the header promised, with bytes to spare. */
    REFUSE(JV_OK, w_head(&w, &h, 3); w_op(&w, &ops[0]);
           jt_raw(&body, "\xc0\xc0\xc0", 3));
#undef HEAD_FIELDS
#undef REFUSE
    jv_buf_fini(&body);
}

typedef struct {
    const jv_buf *body;
    jv_batch *out;
} dctx;

static jv_err call_decode(void *p)
{
    dctx *c = p;
    return jv_batch_decode(c->body->data, c->body->len, c->out);
}

static void test_decode_alloc_failures(void **state)
{
    (void)state;
    jv_op ops[ANY_KINDS * 3];
    jv_buf body;
    jv_id origin = id_of(1);
    every_kind(ops);
    every_kind(ops + ANY_KINDS);
    every_kind(ops + 2 * ANY_KINDS);
    jv_buf_init(&body);
    /* Several dot lists, so that the decoder's dot arena has to grow. */
    jv_dot *dots = calloc(40, sizeof(*dots));
    assert_non_null(dots);
    for (size_t i = 0; i < 40; i++)
        dots[i] = (jv_dot){id_of(2), i + 1};
    ops[4].rm.removes = dots;
    ops[4].rm.nremoves = 40;
    jv_batch b = make(&origin, 1, zero_hash, ops, ANY_KINDS * 3);
    encode_ok(&b, &body);
    jv_batch out;
    memset(&out, 0x77, sizeof(out));
    dctx c = {&body, &out};
    assert_true(jt_alloc_loop(call_decode, &c, batch_snap, &out) >= 3);
    assert_int_equal(out.nops, ANY_KINDS * 3);
    for (uint32_t i = 0; i < out.nops; i++)
        assert_op(&out.ops[i], &ops[i]);
    jv_batch_fini(&out);
    free(dots);
    jv_buf_fini(&body);
}

typedef struct {
    const jv_batch *b;
    jv_buf *out;
} ectx;

static jv_err call_encode(void *p)
{
    ectx *c = p;
    return jv_batch_encode(c->b, c->out);
}

static void buf_snap(const void *t, jv_buf *out)
{
    const jv_buf *b = t;
    jv_buf_reset(out);
    jt_raw(out, b->data, b->len);
    /* A buffer left failed would refuse every later append. */
    jt_byte(out, (unsigned)b->err);
}

static void test_encode_alloc_failures(void **state)
{
    (void)state;
    jv_op ops[ANY_KINDS];
    jv_buf out, want;
    jv_id origin = id_of(1);
    every_kind(ops);
    jv_buf_init(&out);
    jv_buf_init(&want);
    jt_raw(&out, "prefix", 6);
    jv_batch b = make(&origin, 1, zero_hash, ops, ANY_KINDS);
    encode_ok(&b, &want);
    ectx c = {&b, &out};
    assert_true(jt_alloc_loop(call_encode, &c, buf_snap, &out) > 0);
    assert_int_equal(out.len, 6 + want.len);
    assert_memory_equal(out.data, "prefix", 6);
    assert_memory_equal(out.data + 6, want.data, want.len);
    jv_buf_fini(&out);
    jv_buf_fini(&want);
}

/* The hash is BLAKE2b-256 of the domain string and the exact body. */
static void test_hash_domain(void **state)
{
    (void)state;
    jv_op ops[ANY_KINDS];
    jv_buf body, joined;
    jv_id origin = id_of(1);
    every_kind(ops);
    jv_buf_init(&body);
    jv_buf_init(&joined);
    jv_batch b = make(&origin, 1, zero_hash, ops, 2);
    encode_ok(&b, &body);
    jt_raw(&joined, "jarvis/batch/v1", 15);
    jt_raw(&joined, body.data, body.len);
    uint8_t want[JV_HASH_LEN], got[JV_HASH_LEN], plain[JV_HASH_LEN];
    crypto_generichash(want, sizeof(want), joined.data, joined.len, NULL, 0);
    crypto_generichash(plain, sizeof(plain), body.data, body.len, NULL, 0);
    jv_batch_hash(body.data, body.len, got);
    assert_memory_equal(got, want, JV_HASH_LEN);
    assert_memory_not_equal(got, plain, JV_HASH_LEN);
    jv_buf_fini(&body);
    jv_buf_fini(&joined);
}

static void test_keypairs(void **state)
{
    (void)state;
    jv_keypair kp, back;
    assert_int_equal(jv_keypair_generate(&kp), JV_OK);
    assert_false(jv_id_is_zero(&kp.pk));
    assert_int_equal(jv_keypair_from_secret(&back, kp.sk), JV_OK);
    assert_true(jv_id_eq(&kp.pk, &back.pk));
    assert_memory_equal(kp.sk, back.sk, sizeof(kp.sk));
    /* A secret key whose public half is not its own. */
    uint8_t sk[64];
    memcpy(sk, kp.sk, sizeof(sk));
    sk[40] ^= 1;
    memset(&back, 0x11, sizeof(back));
    assert_int_equal(jv_keypair_from_secret(&back, sk), JV_EINVAL);
    assert_int_equal(back.sk[0], 0x11);
    jv_keypair_wipe(&kp);
    static const uint8_t zeros[sizeof(kp)];
    assert_memory_equal(&kp, zeros, sizeof(kp));
}

/* A succession opens its origin's first batch, signed by the old
 * origin's key over (old, new, last_seq, time): any other key, any other
 * new origin or field, any other place is refused. */
static void test_succession(void **state)
{
    (void)state;
    jv_keypair old, neu, other;
    jv_buf body;
    jv_batch out;
    assert_int_equal(jv_keypair_generate(&old), JV_OK);
    assert_int_equal(jv_keypair_generate(&neu), JV_OK);
    assert_int_equal(jv_keypair_generate(&other), JV_OK);
    jv_buf_init(&body);
    jv_op ops[2];
    memset(ops, 0, sizeof(ops));
    ops[0].kind = JV_OP_SUCCESSION;
    ops[0].succ.old = old.pk;
    ops[0].succ.last_seq = 17;
    ops[0].succ.time_ms = 1500;
    jv_succession_sign(&old, &neu.pk, 17, 1500, ops[0].succ.sig);
    ops[1].kind = JV_OP_CONFIG;
    ops[1].config.key = jv_str_c("k");
    ops[1].config.value = jv_str_c("1");
    ops[1].config.stamp = 1;

    jv_batch b = make(&neu.pk, 1, zero_hash, ops, 2);
    encode_ok(&b, &body);
    assert_int_equal(jv_batch_decode(body.data, body.len, &out), JV_OK);
    assert_op(&out.ops[0], &ops[0]);
    assert_int_equal(jv_succession_verify(&out.ops[0], &neu.pk), JV_OK);
    assert_int_equal(jv_succession_verify(&out.ops[0], &other.pk), JV_ESIG);
    jv_batch_fini(&out);

    /* Signed by a key that is not old's: refused by the decoder. */
    jv_succession_sign(&other, &neu.pk, 17, 1500, ops[0].succ.sig);
    encode_ok(&b, &body);
    assert_int_equal(jv_batch_decode(body.data, body.len, &out), JV_ESIG);
    /* Old's signature, but a field changed after signing. */
    jv_succession_sign(&old, &neu.pk, 17, 1500, ops[0].succ.sig);
    ops[0].succ.last_seq = 18;
    encode_ok(&b, &body);
    assert_int_equal(jv_batch_decode(body.data, body.len, &out), JV_ESIG);
    ops[0].succ.last_seq = 17;
    /* Replayed into another origin's batch. */
    b = make(&other.pk, 1, zero_hash, ops, 2);
    encode_ok(&b, &body);
    assert_int_equal(jv_batch_decode(body.data, body.len, &out), JV_ESIG);

    /* Out of place: not first, not at seq 1, or naming its own origin. */
    uint8_t prev[JV_HASH_LEN];
    memset(prev, 0xee, sizeof(prev));
    b = make(&neu.pk, 5, prev, ops, 2);
    jv_buf_reset(&body);
    assert_int_equal(jv_batch_encode(&b, &body), JV_EINVAL);
    jv_op swapped[2] = {ops[1], ops[0]};
    b = make(&neu.pk, 1, zero_hash, swapped, 2);
    assert_int_equal(jv_batch_encode(&b, &body), JV_EINVAL);
    jv_mpw w;
    jv_buf_reset(&body);
    jv_mpw_init(&w, &body);
    jv_mpw_array(&w, 6);
    jv_mpw_u64(&w, 1);
    jv_mpw_id(&w, &neu.pk);
    jv_mpw_u64(&w, 1);
    jv_mpw_bin(&w, zero_hash, JV_HASH_LEN);
    jv_mpw_u64(&w, HLC);
    jv_mpw_array(&w, 2);
    w_op(&w, &swapped[0]);
    w_op(&w, &swapped[1]);
    assert_int_equal(jv_batch_decode(body.data, body.len, &out), JV_EDECODE);
    ops[0].succ.old = neu.pk;
    b = make(&neu.pk, 1, zero_hash, ops, 2);
    assert_int_equal(jv_batch_encode(&b, &body), JV_EINVAL);
    jv_buf_fini(&body);
    jv_keypair_wipe(&old);
    jv_keypair_wipe(&neu);
    jv_keypair_wipe(&other);
}

int main(void)
{
    big = malloc(BIG);
    assert_non_null(big);
    memset(big, 'a', BIG);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_every_kind),
        cmocka_unit_test(test_sign_verify_chain),
        cmocka_unit_test(test_check_chain),
        cmocka_unit_test(test_first_batch_links_to_nothing),
        cmocka_unit_test(test_utf8_validation),
        cmocka_unit_test(test_op_limits),
        cmocka_unit_test(test_batch_limits),
        cmocka_unit_test(test_truncated_and_trailing),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_decode_alloc_failures),
        cmocka_unit_test(test_encode_alloc_failures),
        cmocka_unit_test(test_hash_domain),
        cmocka_unit_test(test_keypairs),
        cmocka_unit_test(test_succession),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    free(big);
    return rc;
}
