/* vv_test.c - version vectors (crdt/vv.c). */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "alloc.h"
#include "crdt_test.h"
#include "testutil.h"
#include "vv.h"

/* An id whose every byte is b: ids order as their bytes do. */
static jv_id id_of(uint8_t b)
{
    jv_id id;
    memset(id.b, b, sizeof(id.b));
    return id;
}

static void set(jv_vv *vv, uint8_t id, uint64_t seq)
{
    jv_id i = id_of(id);
    assert_int_equal(jv_vv_set(vv, &i, seq), JV_OK);
}

static uint64_t get(const jv_vv *vv, uint8_t id)
{
    jv_id i = id_of(id);
    return jv_vv_get(vv, &i);
}

static void snap(const void *target, jv_buf *out)
{
    jv_mpw w;
    jv_buf_reset(out);
    jv_mpw_init(&w, out);
    jv_vv_encode(target, &w);
    assert_int_equal(jv_mpw_err(&w), JV_OK);
}

/* A whole input holding one vector. */
static jv_err decode_all(const void *p, size_t n, void *out)
{
    jv_mpr r;
    jv_vv tmp;
    jv_vv_init(&tmp);
    jv_mpr_init(&r, p, n);
    jv_err err = jv_vv_decode(&r, &tmp);
    if (err == JV_OK)
        err = jv_mpr_end(&r);
    if (err == JV_OK) {
        jv_vv_fini(out);
        *(jv_vv *)out = tmp;
        return JV_OK;
    }
    jv_vv_fini(&tmp);
    return err;
}

static void assert_sorted(const jv_vv *vv)
{
    for (size_t i = 0; i < vv->n; i++) {
        assert_true(vv->v[i].seq > 0);
        if (i)
            assert_true(jv_id_cmp(&vv->v[i - 1].id, &vv->v[i].id) < 0);
    }
}

static void test_set_get_raise(void **state)
{
    (void)state;
    jv_vv vv;
    jv_vv_init(&vv);
    assert_int_equal(get(&vv, 1), 0);
    set(&vv, 5, 10);
    set(&vv, 1, 3);
    set(&vv, 9, 7);
    set(&vv, 3, 1);
    assert_int_equal(vv.n, 4);
    assert_sorted(&vv);
    assert_int_equal(get(&vv, 5), 10);
    assert_int_equal(get(&vv, 4), 0);
    set(&vv, 5, 2); /* set is exact, it may lower */
    assert_int_equal(get(&vv, 5), 2);
    jv_id i5 = id_of(5);
    assert_int_equal(jv_vv_raise(&vv, &i5, 1), JV_OK);
    assert_int_equal(get(&vv, 5), 2);
    assert_int_equal(jv_vv_raise(&vv, &i5, 8), JV_OK);
    assert_int_equal(get(&vv, 5), 8);
    /* Zero removes; a missing entry means zero. */
    set(&vv, 3, 0);
    assert_int_equal(vv.n, 3);
    assert_int_equal(get(&vv, 3), 0);
    set(&vv, 4, 0);
    assert_int_equal(vv.n, 3);
    assert_sorted(&vv);
    jv_vv_clear(&vv);
    assert_int_equal(vv.n, 0);
    jv_vv_fini(&vv);
    jv_vv_fini(&vv); /* leaves an empty vector: safe twice */
    jv_vv_fini(NULL);
}

static void test_merge(void **state)
{
    (void)state;
    jv_vv a, b;
    jv_vv_init(&a);
    jv_vv_init(&b);
    set(&a, 1, 5);
    set(&a, 3, 1);
    set(&a, 7, 9);
    set(&b, 0, 2);
    set(&b, 3, 4);
    set(&b, 7, 2);
    set(&b, 8, 1);
    assert_int_equal(jv_vv_merge(&a, &b), JV_OK);
    assert_sorted(&a);
    assert_int_equal(a.n, 5);
    assert_int_equal(get(&a, 0), 2);
    assert_int_equal(get(&a, 1), 5);
    assert_int_equal(get(&a, 3), 4);
    assert_int_equal(get(&a, 7), 9);
    assert_int_equal(get(&a, 8), 1);
    /* Merging again, or with itself, changes nothing. */
    jv_vv c;
    jv_vv_init(&c);
    assert_int_equal(jv_vv_copy(&c, &a), JV_OK);
    assert_int_equal(jv_vv_merge(&a, &b), JV_OK);
    assert_int_equal(jv_vv_merge(&a, &a), JV_OK);
    assert_true(jv_vv_equal(&a, &c));
    jv_vv_fini(&a);
    jv_vv_fini(&b);
    jv_vv_fini(&c);
}

/* A difference says every new id and changed seq, and only those; what
 * it cannot say (an id gone) is refused. */
static void test_diff_patch(void **state)
{
    (void)state;
    jv_vv base, vv, d;
    jv_vv_init(&base);
    jv_vv_init(&vv);
    jv_vv_init(&d);
    set(&base, 1, 5);
    set(&base, 3, 1);
    set(&base, 7, 9);
    assert_int_equal(jv_vv_copy(&vv, &base), JV_OK);
    set(&vv, 0, 2);  /* new, first */
    set(&vv, 3, 4);  /* changed */
    set(&vv, 9, 1);  /* new, last */
    set(&d, 42, 42); /* replaced, not added to */
    assert_int_equal(jv_vv_diff(&vv, &base, &d), JV_OK);
    assert_sorted(&d);
    assert_int_equal(d.n, 3);
    assert_int_equal(get(&d, 0), 2);
    assert_int_equal(get(&d, 3), 4);
    assert_int_equal(get(&d, 9), 1);
    assert_int_equal(jv_vv_patch(&base, &d), JV_OK);
    assert_true(jv_vv_equal(&base, &vv));
    /* The same vector: nothing to say. A lower seq is said as it is. */
    assert_int_equal(jv_vv_diff(&vv, &vv, &d), JV_OK);
    assert_int_equal(d.n, 0);
    set(&vv, 7, 2);
    assert_int_equal(jv_vv_diff(&vv, &base, &d), JV_OK);
    assert_int_equal(d.n, 1);
    assert_int_equal(get(&d, 7), 2);
    /* An id of the base that the vector lacks cannot be said. */
    set(&vv, 1, 0);
    assert_int_equal(jv_vv_diff(&vv, &base, &d), JV_ESTATE);
    jv_vv_fini(&base);
    jv_vv_fini(&vv);
    jv_vv_fini(&d);
}

/* patch(base, diff(vv, base)) == vv for random vectors (ids from a small
 * set, so that they overlap), and the difference is never longer. */
static void test_diff_patch_random(void **state)
{
    (void)state;
    uint64_t seed = jv_test_seed();
    jv_rng rng;
    jv_vv base, vv, d, back;
    jv_vv_init(&base);
    jv_vv_init(&vv);
    jv_vv_init(&d);
    jv_vv_init(&back);
    for (unsigned run = 0; run < 5000; run++) {
        jv_rng_seed(&rng, seed + run);
        jv_vv_clear(&base);
        jv_vv_clear(&vv);
        for (uint8_t id = 0; id < 40; id++) {
            uint64_t b = jv_rng_below(&rng, 3) ? 0 : 1 + jv_rng_below(&rng, 9);
            set(&base, id, b);
            /* Every id of base stays; some move (up or down), some come. */
            uint64_t v = jv_rng_below(&rng, 4) ? b : 1 + jv_rng_below(&rng, 9);
            set(&vv, id, b && !v ? b : v);
        }
        assert_int_equal(jv_vv_diff(&vv, &base, &d), JV_OK);
        assert_sorted(&d);
        assert_true(d.n <= vv.n);
        assert_int_equal(jv_vv_copy(&back, &base), JV_OK);
        assert_int_equal(jv_vv_patch(&back, &d), JV_OK);
        if (!jv_vv_equal(&back, &vv))
            fail_msg("run %u (seed %" PRIu64 "): patch(diff) differs", run,
                     seed + run);
    }
    jv_vv_fini(&base);
    jv_vv_fini(&vv);
    jv_vv_fini(&d);
    jv_vv_fini(&back);
}

static void test_compare(void **state)
{
    (void)state;
    jv_vv a, b;
    jv_vv_init(&a);
    jv_vv_init(&b);
    assert_int_equal(jv_vv_compare(&a, &b), JV_VV_EQUAL);
    set(&b, 2, 1);
    assert_int_equal(jv_vv_compare(&a, &b), JV_VV_BEFORE);
    assert_int_equal(jv_vv_compare(&b, &a), JV_VV_AFTER);
    set(&a, 2, 1);
    assert_int_equal(jv_vv_compare(&a, &b), JV_VV_EQUAL);
    assert_true(jv_vv_equal(&a, &b));
    set(&a, 1, 4);
    set(&b, 3, 4);
    assert_int_equal(jv_vv_compare(&a, &b), JV_VV_CONCURRENT);
    assert_false(jv_vv_equal(&a, &b));
    set(&b, 1, 5);
    set(&a, 3, 4);
    assert_int_equal(jv_vv_compare(&a, &b), JV_VV_BEFORE);
    set(&a, 2, 2);
    assert_int_equal(jv_vv_compare(&a, &b), JV_VV_CONCURRENT);
    jv_vv_fini(&a);
    jv_vv_fini(&b);
}

static void test_lacks_and_missing(void **state)
{
    (void)state;
    jv_vv have, other;
    jv_vv_range *r = (jv_vv_range *)&have; /* must be replaced */
    size_t n = 99;
    jv_vv_init(&have);
    jv_vv_init(&other);
    assert_int_equal(jv_vv_lacks(&have, &other, &r, &n), JV_OK);
    assert_null(r);
    assert_int_equal(n, 0);
    set(&have, 1, 10);
    set(&have, 2, 5);
    set(&other, 1, 4);
    set(&other, 2, 9);
    set(&other, 3, 2);
    assert_int_equal(jv_vv_lacks(&have, &other, &r, &n), JV_OK);
    assert_int_equal(n, 2);
    jv_id i2 = id_of(2), i3 = id_of(3);
    assert_true(jv_id_eq(&r[0].id, &i2));
    assert_int_equal(r[0].from, 5);
    assert_int_equal(r[0].to, 9);
    assert_true(jv_id_eq(&r[1].id, &i3));
    assert_int_equal(r[1].from, 0);
    assert_int_equal(r[1].to, 2);
    jv_free(r);
    assert_int_equal(jv_vv_missing(&have, &other), 6);
    assert_int_equal(jv_vv_missing(&other, &have), 6);
    set(&other, 4, UINT64_MAX);
    set(&other, 5, 3);
    assert_int_equal(jv_vv_missing(&have, &other), UINT64_MAX);
    jv_vv_fini(&have);
    jv_vv_fini(&other);
}

static void test_encoding_layout(void **state)
{
    (void)state;
    jv_vv vv;
    jv_buf b;
    jv_vv_init(&vv);
    jv_buf_init(&b);
    snap(&vv, &b);
    assert_int_equal(b.len, 1);
    assert_int_equal(b.data[0], 0x90);

    jv_id id;
    for (int i = 0; i < JV_ID_LEN; i++)
        id.b[i] = (uint8_t)(i + 1);
    assert_int_equal(jv_vv_set(&vv, &id, 300), JV_OK);
    snap(&vv, &b);
    uint8_t want[1 + 1 + 2 + JV_ID_LEN + 3];
    want[0] = 0x91;
    want[1] = 0x92;
    want[2] = 0xc4;
    want[3] = JV_ID_LEN;
    memcpy(want + 4, id.b, JV_ID_LEN);
    want[36] = 0xcd;
    want[37] = 0x01;
    want[38] = 0x2c;
    assert_int_equal(b.len, sizeof(want));
    assert_memory_equal(b.data, want, sizeof(want));

    jv_vv back;
    jv_vv_init(&back);
    assert_int_equal(decode_all(b.data, b.len, &back), JV_OK);
    assert_true(jv_vv_equal(&vv, &back));
    jv_vv_fini(&back);
    jv_vv_fini(&vv);
    jv_buf_fini(&b);
}

/* jv_vv_encoded_len is what jv_vv_encode writes: seqs of every width
 * msgpack has, and counts on both sides of each array header's step (16
 * entries; 65536 is past JV_VV_MAX_ENTRIES). */
static void test_encoded_len(void **state)
{
    (void)state;
    static const uint64_t seqs[] = {1,         127,        128,
                                    255,       256,        65535,
                                    65536,     UINT32_MAX, 1ull + UINT32_MAX,
                                    UINT64_MAX};
    static const size_t counts[] = {0, 1, 15, 16, 17, 255, 1000};
    jv_rng rng;
    jv_buf b;
    jv_rng_seed(&rng, jv_test_seed());
    jv_buf_init(&b);
    for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
        jv_vv vv;
        jv_vv_init(&vv);
        for (size_t i = 0; i < counts[c]; i++) {
            jv_id id = jv_test_id((unsigned)i);
            size_t k =
                (size_t)jv_rng_below(&rng, sizeof(seqs) / sizeof(seqs[0]));
            assert_int_equal(jv_vv_set(&vv, &id, seqs[k]), JV_OK);
        }
        snap(&vv, &b);
        assert_int_equal(jv_vv_encoded_len(&vv), b.len);
        jv_vv_fini(&vv);
    }
    jv_buf_fini(&b);
}

/* The target every malformed input must leave alone. */
static void target(jv_vv *t)
{
    jv_vv_init(t);
    set(t, 0x42, 17);
}

static void entry(jv_mpw *w, uint8_t id, uint64_t seq)
{
    jv_id i = id_of(id);
    jv_mpw_array(w, 2);
    jv_mpw_id(w, &i);
    jv_mpw_u64(w, seq);
}

static void test_decode_refuses(void **state)
{
    (void)state;
    jv_vv t;
    jv_buf b;
    jv_mpw w;
    target(&t);
    jv_buf_init(&b);

    /* A good three-entry vector: every prefix and any trailing byte. */
    jv_mpw_init(&w, &b);
    jv_mpw_array(&w, 3);
    entry(&w, 1, 1);
    entry(&w, 2, 200);
    entry(&w, 3, 1ull << 40);
    jv_vv ok;
    jv_vv_init(&ok);
    assert_int_equal(decode_all(b.data, b.len, &ok), JV_OK);
    assert_int_equal(ok.n, 3);
    jv_vv_fini(&ok);
    jt_prefixes_refused(decode_all, b.data, b.len, &t, snap);
    jt_trailing_refused(decode_all, b.data, b.len, &t, snap);

#define REFUSE(want, ...)                                      \
    do {                                                       \
        jv_buf_reset(&b);                                      \
        jv_mpw_init(&w, &b);                                   \
        __VA_ARGS__;                                           \
        jt_refused(decode_all, b.data, b.len, &t, snap, want); \
    } while (0)

    /* Unsorted, duplicate, zero. */
    REFUSE(JV_ENONCANON, jv_mpw_array(&w, 2); entry(&w, 2, 1); entry(&w, 1, 1));
    REFUSE(JV_ENONCANON, jv_mpw_array(&w, 2); entry(&w, 2, 1); entry(&w, 2, 1));
    REFUSE(JV_ENONCANON, jv_mpw_array(&w, 1); entry(&w, 2, 0));
    /* Wrong types: a map, an entry of three, a str id, a short id, a
     * negative or boolean seq. */
    REFUSE(JV_ETYPE, jt_byte(&b, 0x80));
    REFUSE(JV_ETYPE, jv_mpw_array(&w, 1); jv_mpw_array(&w, 3);
           jv_id i = id_of(1); jv_mpw_id(&w, &i); jv_mpw_u64(&w, 1);
           jv_mpw_u64(&w, 1));
    REFUSE(JV_ETYPE, jv_mpw_array(&w, 1); jv_mpw_array(&w, 2);
           jv_mpw_str(&w, "0123456789abcdef0123456789abcdef", 32);
           jv_mpw_u64(&w, 1));
    REFUSE(JV_ETYPE, jv_mpw_array(&w, 1); jv_mpw_array(&w, 2);
           jv_mpw_bin(&w, "0123456789abcdef0123456789abcde", 31);
           jv_mpw_u64(&w, 300));
    REFUSE(JV_ETYPE, jv_mpw_array(&w, 1); jv_mpw_array(&w, 2);
           jv_id i = id_of(1); jv_mpw_id(&w, &i); jt_byte(&b, 0xff));
    REFUSE(JV_ETYPE, jv_mpw_array(&w, 1); jv_mpw_array(&w, 2);
           jv_id i = id_of(1); jv_mpw_id(&w, &i); jv_mpw_bool(&w, true));
    /* Non-canonical: a seq of 5 in a uint8, an array16 of one entry. */
    REFUSE(JV_ENONCANON, jv_mpw_array(&w, 1); jv_mpw_array(&w, 2);
           jv_id i = id_of(1); jv_mpw_id(&w, &i); jt_byte(&b, 0xcc);
           jt_byte(&b, 5));
    REFUSE(JV_ENONCANON, jt_byte(&b, 0xdc); jt_byte(&b, 0); jt_byte(&b, 1);
           entry(&w, 1, 1));
    /* Counts: over the cap, and more than the bytes could hold. */
    REFUSE(JV_ETOOBIG, jv_mpw_array(&w, JV_VV_MAX_ENTRIES + 1));
    REFUSE(JV_ETRUNC, jv_mpw_array(&w, 3); entry(&w, 1, 1);
           jt_raw(&b, "\0\0\0\0\0\0\0\0", 8));
#undef REFUSE

    /* 2^32-1 entries claimed in five bytes: refused before any allocation
     * (jt_refused also runs it with allocation disabled). */
    static const uint8_t huge[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    jv_alloc_fail_after(0);
    assert_int_equal(decode_all(huge, sizeof(huge), &t), JV_ETOOBIG);
    assert_int_equal(jv_alloc_failed_count(), 0);
    jv_alloc_fail_reset();
    jt_refused(decode_all, huge, sizeof(huge), &t, snap, JV_ETOOBIG);

    assert_int_equal(get(&t, 0x42), 17);
    jv_vv_fini(&t);
    jv_buf_fini(&b);
}

/* ---- allocation failures ---------------------------------------------- */

typedef struct {
    jv_vv *dst;
    const jv_vv *src;
    jv_id id;
    uint64_t seq;
    const jv_buf *bytes;
    jv_vv_range *ranges;
    size_t nranges;
} ctx;

static jv_err call_set(void *p)
{
    ctx *c = p;
    return jv_vv_set(c->dst, &c->id, c->seq);
}

static jv_err call_merge(void *p)
{
    ctx *c = p;
    return jv_vv_merge(c->dst, c->src);
}

static jv_err call_copy(void *p)
{
    ctx *c = p;
    return jv_vv_copy(c->dst, c->src);
}

static jv_err call_decode(void *p)
{
    ctx *c = p;
    return decode_all(c->bytes->data, c->bytes->len, c->dst);
}

static jv_err call_lacks(void *p)
{
    ctx *c = p;
    return jv_vv_lacks(c->dst, c->src, &c->ranges, &c->nranges);
}

static void test_alloc_failures(void **state)
{
    (void)state;
    jv_vv a, b;
    jv_buf bytes;
    jv_vv_init(&a);
    jv_vv_init(&b);
    jv_buf_init(&bytes);
    for (uint8_t i = 0; i < 40; i += 2)
        set(&a, i, i + 1u);
    for (uint8_t i = 1; i < 60; i += 3)
        set(&b, i, 100);
    ctx c = {.dst = &a, .src = &b, .id = id_of(0xee), .seq = 4};

    /* Inserting into a full vector must grow it. */
    while (a.n < a.cap)
        set(&a, (uint8_t)(0x80 + a.n), 1);
    assert_true(jt_alloc_loop(call_set, &c, snap, &a) > 0);
    assert_int_equal(get(&a, 0xee), 4);

    while (a.n < a.cap)
        set(&a, (uint8_t)(0x80 + a.n), 1);
    assert_true(jt_alloc_loop(call_merge, &c, snap, &a) > 0);
    assert_int_equal(get(&a, 1), 100);
    assert_int_equal(get(&a, 2), 3);

    jv_vv empty;
    jv_vv_init(&empty);
    c.dst = &empty;
    c.src = &a;
    assert_true(jt_alloc_loop(call_copy, &c, snap, &empty) > 0);
    assert_true(jv_vv_equal(&empty, &a));
    jv_vv_fini(&empty);

    jv_vv target;
    jv_vv_init(&target);
    set(&target, 9, 9);
    snap(&a, &bytes);
    c.dst = &target;
    c.bytes = &bytes;
    assert_true(jt_alloc_loop(call_decode, &c, snap, &target) > 0);
    assert_true(jv_vv_equal(&target, &a));

    jv_vv none;
    jv_vv_init(&none);
    c.dst = &none;
    c.src = &a;
    assert_true(jt_alloc_loop(call_lacks, &c, snap, &none) > 0);
    assert_int_equal(c.nranges, a.n);
    jv_free(c.ranges);

    jv_vv_fini(&target);
    jv_vv_fini(&a);
    jv_vv_fini(&b);
    jv_buf_fini(&bytes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_get_raise),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_diff_patch),
        cmocka_unit_test(test_diff_patch_random),
        cmocka_unit_test(test_compare),
        cmocka_unit_test(test_lacks_and_missing),
        cmocka_unit_test(test_encoding_layout),
        cmocka_unit_test(test_encoded_len),
        cmocka_unit_test(test_decode_refuses),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
