/* gcounter_test.c - G-Counter and PN-Counter (crdt/gcounter.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "alloc.h"
#include "crdt_test.h"
#include "gcounter.h"

static jv_id id_of(uint8_t b)
{
    jv_id id;
    memset(id.b, b, sizeof(id.b));
    return id;
}

static void gsnap(const void *t, jv_buf *out)
{
    jv_buf_reset(out);
    assert_int_equal(jv_gcounter_encode(t, out), JV_OK);
}

static void pnsnap(const void *t, jv_buf *out)
{
    jv_buf_reset(out);
    assert_int_equal(jv_pncounter_encode(t, out), JV_OK);
}

static jv_err gdecode(const void *p, size_t n, void *out)
{
    return jv_gcounter_decode(p, n, out);
}

static jv_err pndecode(const void *p, size_t n, void *out)
{
    return jv_pncounter_decode(p, n, out);
}

static uint64_t gvalue(const jv_gcounter *c)
{
    uint64_t v = 0;
    assert_int_equal(jv_gcounter_value(c, &v), JV_OK);
    return v;
}

static int64_t pnvalue(const jv_pncounter *c)
{
    int64_t v = 0;
    assert_int_equal(jv_pncounter_value(c, &v), JV_OK);
    return v;
}

static void test_gcounter_inc(void **state)
{
    (void)state;
    jv_gcounter c, d;
    jv_id a = id_of(1), b = id_of(2);
    jv_gcounter_init(&c);
    jv_gcounter_init(&d);
    assert_int_equal(gvalue(&c), 0);
    assert_int_equal(jv_gcounter_inc(&c, &a, 3, &d), JV_OK);
    assert_int_equal(jv_gcounter_inc(&c, &b, 4, &d), JV_OK);
    assert_int_equal(jv_gcounter_inc(&c, &a, 2, &d), JV_OK);
    assert_int_equal(gvalue(&c), 9);
    assert_int_equal(jv_gcounter_get(&c, &a), 5);
    assert_int_equal(jv_gcounter_get(&c, &b), 4);
    /* The delta is the new share alone, not the increment. */
    assert_int_equal(d.v.n, 1);
    assert_int_equal(jv_gcounter_get(&d, &a), 5);
    assert_int_equal(jv_gcounter_inc(&c, &a, 0, &d), JV_EINVAL);
    jv_gcounter_fini(&c);
    jv_gcounter_fini(&d);
    jv_gcounter_fini(NULL);
}

static void test_gcounter_delta_is_full_state(void **state)
{
    (void)state;
    jv_gcounter x, y, d, full;
    jv_id a = id_of(1), b = id_of(2);
    jv_gcounter_init(&x);
    jv_gcounter_init(&y);
    jv_gcounter_init(&d);
    jv_gcounter_init(&full);
    assert_int_equal(jv_gcounter_inc(&x, &a, 3, &d), JV_OK);
    assert_int_equal(jv_gcounter_inc(&y, &b, 1, &d), JV_OK);
    assert_int_equal(jv_gcounter_join(&full, &y), JV_OK);
    assert_int_equal(jv_gcounter_join(&y, &x), JV_OK);
    assert_int_equal(jv_gcounter_inc(&x, &a, 4, &d), JV_OK);
    /* y already has x's old state; the delta brings it where x's full
     * state would. */
    assert_int_equal(jv_gcounter_join(&y, &d), JV_OK);
    assert_int_equal(jv_gcounter_join(&full, &x), JV_OK);
    assert_true(jv_gcounter_equal(&y, &full));
    assert_int_equal(gvalue(&y), 8);
    /* Duplicates do not count twice. */
    assert_int_equal(jv_gcounter_join(&y, &d), JV_OK);
    assert_int_equal(gvalue(&y), 8);
    jv_gcounter_fini(&x);
    jv_gcounter_fini(&y);
    jv_gcounter_fini(&d);
    jv_gcounter_fini(&full);
}

static void test_gcounter_overflow(void **state)
{
    (void)state;
    jv_gcounter c, d;
    jv_id a = id_of(1), b = id_of(2);
    jv_gcounter_init(&c);
    jv_gcounter_init(&d);
    assert_int_equal(jv_gcounter_inc(&c, &a, UINT64_MAX - 1, &d), JV_OK);
    assert_int_equal(jv_gcounter_inc(&c, &a, 1, &d), JV_OK);
    assert_int_equal(jv_gcounter_inc(&c, &a, 1, &d), JV_EOVERFLOW);
    assert_int_equal(jv_gcounter_get(&c, &a), UINT64_MAX);
    assert_int_equal(jv_gcounter_get(&d, &a), UINT64_MAX);
    assert_int_equal(gvalue(&c), UINT64_MAX);
    /* Two shares whose sum does not fit. */
    assert_int_equal(jv_gcounter_inc(&c, &b, 1, &d), JV_OK);
    uint64_t v = 42;
    assert_int_equal(jv_gcounter_value(&c, &v), JV_EOVERFLOW);
    assert_int_equal(v, 42);
    jv_gcounter_fini(&c);
    jv_gcounter_fini(&d);
}

static void test_gcounter_encoding(void **state)
{
    (void)state;
    jv_gcounter c, d, back;
    jv_buf b, vb;
    jv_id a = id_of(7);
    jv_gcounter_init(&c);
    jv_gcounter_init(&d);
    jv_gcounter_init(&back);
    jv_buf_init(&b);
    jv_buf_init(&vb);
    assert_int_equal(jv_gcounter_inc(&c, &a, 1000, &d), JV_OK);
    gsnap(&c, &b);
    /* A G-Counter is encoded exactly as its vector. */
    jv_mpw w;
    jv_mpw_init(&w, &vb);
    jv_vv_encode(&c.v, &w);
    assert_true(jt_buf_eq(&b, &vb));
    assert_int_equal(b.data[0], 0x91);
    assert_int_equal(jv_gcounter_decode(b.data, b.len, &back), JV_OK);
    assert_true(jv_gcounter_equal(&c, &back));

    /* Appending keeps what the buffer held. */
    jv_buf_reset(&vb);
    jt_raw(&vb, "xy", 2);
    assert_int_equal(jv_gcounter_encode(&c, &vb), JV_OK);
    assert_int_equal(vb.len, 2 + b.len);
    assert_memory_equal(vb.data + 2, b.data, b.len);

    jv_gcounter t;
    jv_gcounter_init(&t);
    assert_int_equal(jv_gcounter_inc(&t, &a, 5, &d), JV_OK);
    jt_prefixes_refused(gdecode, b.data, b.len, &t, gsnap);
    jt_trailing_refused(gdecode, b.data, b.len, &t, gsnap);
    /* Two entries cannot fit in two bytes. */
    jt_refused(gdecode, "\x92\x90\x90", 3, &t, gsnap, JV_ETRUNC);
    jt_refused(gdecode, "\xc0", 1, &t, gsnap, JV_ETYPE);
    assert_int_equal(jv_gcounter_get(&t, &a), 5);
    jv_gcounter_fini(&t);
    jv_gcounter_fini(&c);
    jv_gcounter_fini(&d);
    jv_gcounter_fini(&back);
    jv_buf_fini(&b);
    jv_buf_fini(&vb);
}

static void test_pncounter_add(void **state)
{
    (void)state;
    jv_pncounter c, d;
    jv_id a = id_of(1), b = id_of(2);
    jv_pncounter_init(&c);
    jv_pncounter_init(&d);
    assert_int_equal(pnvalue(&c), 0);
    assert_int_equal(jv_pncounter_add(&c, &a, 10, &d), JV_OK);
    assert_int_equal(jv_pncounter_add(&c, &b, -3, &d), JV_OK);
    /* The delta carries the changed share only. */
    assert_int_equal(d.p.v.n, 0);
    assert_int_equal(d.n.v.n, 1);
    assert_int_equal(jv_gcounter_get(&d.n, &b), 3);
    assert_int_equal(jv_pncounter_add(&c, &a, -4, &d), JV_OK);
    assert_int_equal(jv_gcounter_get(&d.n, &a), 4);
    assert_int_equal(d.p.v.n, 0);
    assert_int_equal(jv_pncounter_add(&c, &a, 2, &d), JV_OK);
    assert_int_equal(jv_gcounter_get(&d.p, &a), 12);
    assert_int_equal(d.n.v.n, 0);
    assert_int_equal(pnvalue(&c), 5);
    assert_int_equal(jv_pncounter_add(&c, &a, 0, &d), JV_EINVAL);
    jv_pncounter_fini(&c);
    jv_pncounter_fini(&d);
    jv_pncounter_fini(NULL);
}

static void test_pncounter_extremes(void **state)
{
    (void)state;
    jv_pncounter c, d;
    jv_id a = id_of(1), b = id_of(2);
    int64_t v = 7;
    jv_pncounter_init(&c);
    jv_pncounter_init(&d);
    assert_int_equal(jv_pncounter_add(&c, &a, INT64_MIN, &d), JV_OK);
    assert_int_equal(jv_gcounter_get(&c.n, &a), (uint64_t)1 << 63);
    assert_int_equal(pnvalue(&c), INT64_MIN);
    assert_int_equal(jv_pncounter_add(&c, &b, -1, &d), JV_OK);
    assert_int_equal(jv_pncounter_value(&c, &v), JV_EOVERFLOW);
    assert_int_equal(v, 7);
    assert_int_equal(jv_pncounter_add(&c, &b, INT64_MAX, &d), JV_OK);
    assert_int_equal(pnvalue(&c), -2);
    assert_int_equal(jv_pncounter_add(&c, &a, INT64_MAX, &d), JV_OK);
    assert_int_equal(jv_pncounter_add(&c, &a, INT64_MAX, &d), JV_OK);
    /* A share that would wrap is refused, the counter untouched. */
    assert_int_equal(jv_pncounter_add(&c, &a, 3, &d), JV_EOVERFLOW);
    assert_int_equal(jv_gcounter_get(&c.p, &a), UINT64_MAX - 1);
    /* P = (2^64 - 2) + (2^63 - 1) does not fit in 64 bits. */
    assert_int_equal(jv_pncounter_value(&c, &v), JV_EOVERFLOW);

    jv_pncounter e;
    jv_pncounter_init(&e);
    assert_int_equal(jv_pncounter_add(&e, &a, INT64_MAX, &d), JV_OK);
    assert_int_equal(pnvalue(&e), INT64_MAX);
    assert_int_equal(jv_pncounter_add(&e, &b, 1, &d), JV_OK);
    assert_int_equal(jv_pncounter_value(&e, &v), JV_EOVERFLOW);
    assert_int_equal(jv_pncounter_add(&e, &b, -1, &d), JV_OK);
    assert_int_equal(pnvalue(&e), INT64_MAX);
    jv_pncounter_fini(&e);
    jv_pncounter_fini(&c);
    jv_pncounter_fini(&d);
}

static void test_pncounter_join_and_encoding(void **state)
{
    (void)state;
    jv_pncounter x, y, d, back;
    jv_buf bx, by;
    jv_id a = id_of(1), b = id_of(2);
    jv_pncounter_init(&x);
    jv_pncounter_init(&y);
    jv_pncounter_init(&d);
    jv_pncounter_init(&back);
    jv_buf_init(&bx);
    jv_buf_init(&by);
    assert_int_equal(jv_pncounter_add(&x, &a, 5, &d), JV_OK);
    assert_int_equal(jv_pncounter_add(&x, &a, -2, &d), JV_OK);
    assert_int_equal(jv_pncounter_add(&y, &b, -7, &d), JV_OK);
    assert_int_equal(jv_pncounter_join(&x, &y), JV_OK);
    assert_int_equal(jv_pncounter_join(&y, &x), JV_OK);
    assert_true(jv_pncounter_equal(&x, &y));
    assert_int_equal(pnvalue(&x), -4);
    pnsnap(&x, &bx);
    pnsnap(&y, &by);
    assert_true(jt_buf_eq(&bx, &by));
    /* [P, N]: a two-element array of two vectors. */
    assert_int_equal(bx.data[0], 0x92);
    assert_int_equal(bx.data[1], 0x91);
    assert_int_equal(jv_pncounter_decode(bx.data, bx.len, &back), JV_OK);
    assert_true(jv_pncounter_equal(&x, &back));

    jv_pncounter t;
    jv_pncounter_init(&t);
    assert_int_equal(jv_pncounter_add(&t, &b, 9, &d), JV_OK);
    jt_prefixes_refused(pndecode, bx.data, bx.len, &t, pnsnap);
    jt_trailing_refused(pndecode, bx.data, bx.len, &t, pnsnap);
    jt_refused(pndecode, "\x91\x90", 2, &t, pnsnap, JV_ETYPE);
    jt_refused(pndecode, "\x93\x90\x90\x90", 4, &t, pnsnap, JV_ETYPE);
    jt_refused(pndecode, "\x90", 1, &t, pnsnap, JV_ETYPE);
    /* A G-Counter is not a PN-Counter. */
    jv_gcounter g;
    jv_buf gb;
    jv_gcounter_init(&g);
    jv_buf_init(&gb);
    assert_int_equal(jv_gcounter_inc(&g, &a, 2, &g), JV_OK);
    gsnap(&g, &gb);
    jt_refused(pndecode, gb.data, gb.len, &t, pnsnap, JV_OK);
    jv_gcounter_fini(&g);
    jv_buf_fini(&gb);
    jv_pncounter_fini(&t);

    jv_pncounter_fini(&x);
    jv_pncounter_fini(&y);
    jv_pncounter_fini(&d);
    jv_pncounter_fini(&back);
    jv_buf_fini(&bx);
    jv_buf_fini(&by);
}

/* ---- allocation failures ---------------------------------------------- */

typedef struct {
    jv_gcounter *g, *gsrc, *gdelta;
    jv_pncounter *pn, *pnsrc, *pndelta;
    jv_id id;
    int64_t by;
    const jv_buf *bytes;
} ctx;

static jv_err call_inc(void *p)
{
    ctx *c = p;
    return jv_gcounter_inc(c->g, &c->id, (uint64_t)c->by, c->gdelta);
}

static jv_err call_gjoin(void *p)
{
    ctx *c = p;
    return jv_gcounter_join(c->g, c->gsrc);
}

static jv_err call_gdecode(void *p)
{
    ctx *c = p;
    return jv_gcounter_decode(c->bytes->data, c->bytes->len, c->g);
}

static jv_err call_add(void *p)
{
    ctx *c = p;
    return jv_pncounter_add(c->pn, &c->id, c->by, c->pndelta);
}

static jv_err call_pnjoin(void *p)
{
    ctx *c = p;
    return jv_pncounter_join(c->pn, c->pnsrc);
}

static jv_err call_pndecode(void *p)
{
    ctx *c = p;
    return jv_pncounter_decode(c->bytes->data, c->bytes->len, c->pn);
}

static void test_alloc_failures(void **state)
{
    (void)state;
    jv_gcounter g, gsrc, gd;
    jv_pncounter pn, pnsrc, pnd;
    jv_buf bytes;
    jv_gcounter_init(&g);
    jv_gcounter_init(&gsrc);
    jv_gcounter_init(&gd);
    jv_pncounter_init(&pn);
    jv_pncounter_init(&pnsrc);
    jv_pncounter_init(&pnd);
    jv_buf_init(&bytes);
    for (uint8_t i = 0; i < 20; i++) {
        jv_id id = id_of(i);
        assert_int_equal(jv_gcounter_inc(i % 2 ? &g : &gsrc, &id, i + 1u, &gd),
                         JV_OK);
        assert_int_equal(jv_pncounter_add(i % 2 ? &pn : &pnsrc, &id,
                                          i % 3 ? i : -i - 1, &pnd),
                         JV_OK);
    }
    ctx c = {&g, &gsrc, &gd, &pn, &pnsrc, &pnd, id_of(0xf0), 3, &bytes};

    /* The delta and the share both need memory; the delta's old content
     * must survive a failure too. */
    assert_true(jt_alloc_loop(call_inc, &c, gsnap, &g) > 0);
    assert_int_equal(jv_gcounter_get(&gd, &c.id), 3);
    c.id = id_of(0xf1);
    assert_true(jt_alloc_loop(call_inc, &c, gsnap, &gd) > 0);
    assert_true(jt_alloc_loop(call_gjoin, &c, gsnap, &g) > 0);
    assert_int_equal(jv_gcounter_get(&g, &(jv_id){{0}}), 1);
    gsnap(&gsrc, &bytes);
    assert_true(jt_alloc_loop(call_gdecode, &c, gsnap, &g) > 0);
    assert_true(jv_gcounter_equal(&g, &gsrc));

    c.id = id_of(0xf2);
    c.by = -5;
    assert_true(jt_alloc_loop(call_add, &c, pnsnap, &pn) > 0);
    c.id = id_of(0xf3);
    assert_true(jt_alloc_loop(call_add, &c, pnsnap, &pnd) > 0);
    assert_true(jt_alloc_loop(call_pnjoin, &c, pnsnap, &pn) > 0);
    pnsnap(&pnsrc, &bytes);
    assert_true(jt_alloc_loop(call_pndecode, &c, pnsnap, &pn) > 0);
    assert_true(jv_pncounter_equal(&pn, &pnsrc));

    jv_gcounter_fini(&g);
    jv_gcounter_fini(&gsrc);
    jv_gcounter_fini(&gd);
    jv_pncounter_fini(&pn);
    jv_pncounter_fini(&pnsrc);
    jv_pncounter_fini(&pnd);
    jv_buf_fini(&bytes);
}

/* An encoder's failure leaves the caller's buffer as it was. */
static void test_encode_failure_keeps_buffer(void **state)
{
    (void)state;
    jv_gcounter g, d;
    jv_buf b;
    jv_gcounter_init(&g);
    jv_gcounter_init(&d);
    jv_buf_init(&b);
    for (uint8_t i = 0; i < 50; i++) {
        jv_id id = id_of(i);
        assert_int_equal(jv_gcounter_inc(&g, &id, 1, &d), JV_OK);
    }
    jt_raw(&b, "abc", 3);
    jv_alloc_fail_after(0);
    assert_int_equal(jv_gcounter_encode(&g, &b), JV_ENOMEM);
    jv_alloc_fail_reset();
    assert_int_equal(b.len, 3);
    assert_int_equal(jv_buf_err(&b), JV_OK);
    assert_memory_equal(b.data, "abc", 3);
    assert_int_equal(jv_gcounter_encode(&g, &b), JV_OK);
    assert_true(b.len > 3 + 50 * 36);
    jv_gcounter_fini(&g);
    jv_gcounter_fini(&d);
    jv_buf_fini(&b);
}

static const char *fmt(const jv_count *c, char buf[JV_COUNT_TEXT])
{
    size_t n = jv_count_format(c, buf);
    assert_int_equal(n, strlen(buf));
    return buf;
}

/* Exact totals: 128-bit sums of shares, shown in decimal, and an int64
 * only within the bounds asked for. */
static void test_count_exact(void **state)
{
    (void)state;
    char t[JV_COUNT_TEXT];
    int64_t v = 7;
    jv_count c = {{0, 0}, {0, 0}};
    assert_string_equal(fmt(&c, t), "0");
    assert_int_equal(jv_count_i64(&c, 0, 0, &v), JV_OK);
    assert_int_equal(v, 0);

    /* Two nodes' 1000 increments of 2^53: 2^63 + 2^63 = 2^64 ... */
    const uint64_t share = 1000ull << 53;
    jv_count_add(&c, share, 0);
    jv_count_add(&c, share, 0);
    assert_string_equal(fmt(&c, t), "18014398509481984000");
    assert_int_equal(jv_count_i64(&c, INT64_MIN, INT64_MAX, &v), JV_EOVERFLOW);
    assert_int_equal(v, 0);
    /* ... and a decrement share brings it back into range. */
    jv_count_add(&c, 0, share);
    assert_int_equal(jv_count_i64(&c, INT64_MIN, INT64_MAX, &v), JV_OK);
    assert_true(v == (int64_t)share);
    assert_int_equal(jv_count_i64(&c, -(1ll << 53), 1ll << 53, &v),
                     JV_EOVERFLOW);

    /* The JSON-safe bounds are inclusive, on both sides. */
    jv_count d = {{0, 0}, {0, 0}};
    jv_count_add(&d, 0, 1ull << 53);
    assert_string_equal(fmt(&d, t), "-9007199254740992");
    assert_int_equal(jv_count_i64(&d, -(1ll << 53), 1ll << 53, &v), JV_OK);
    assert_true(v == -(1ll << 53));
    jv_count_add(&d, 0, 1);
    assert_int_equal(jv_count_i64(&d, -(1ll << 53), 1ll << 53, &v),
                     JV_EOVERFLOW);
    /* INT64_MIN exactly, and one below it. */
    jv_count e = {{0, 0}, {0, 0}};
    jv_count_add(&e, 0, (uint64_t)INT64_MAX);
    jv_count_add(&e, 0, 1);
    assert_int_equal(jv_count_i64(&e, INT64_MIN, INT64_MAX, &v), JV_OK);
    assert_true(v == INT64_MIN);
    assert_string_equal(fmt(&e, t), "-9223372036854775808");
    jv_count_add(&e, 0, 1);
    assert_int_equal(jv_count_i64(&e, INT64_MIN, INT64_MAX, &v), JV_EOVERFLOW);

    /* Near the top: 2^64 shares of 2^64 - 1 would be 2^128 - 2^64; here
     * the carry across words and the 39-digit text. */
    jv_count big = {{UINT64_MAX, 0}, {0, 0}};
    jv_count_add(&big, UINT64_MAX, 0);
    assert_string_equal(fmt(&big, t),
                        "340282366920938463463374607431768211455");
    jv_count neg = {{0, 0}, {UINT64_MAX, UINT64_MAX}};
    assert_string_equal(fmt(&neg, t),
                        "-340282366920938463463374607431768211455");
    assert_true(jv_count_cmp(&neg, &big) < 0);
    assert_true(jv_count_cmp(&big, &neg) > 0);
    assert_int_equal(jv_count_cmp(&big, &big), 0);
    assert_true(jv_count_cmp(&c, &d) > 0);
    /* Equal totals from different shares compare equal. */
    jv_count x = {{0, 0}, {0, 0}}, y = {{0, 0}, {0, 0}};
    jv_count_add(&x, 10, 3);
    jv_count_add(&y, 7, 0);
    assert_int_equal(jv_count_cmp(&x, &y), 0);
}

/* The PN-Counter's exact total equals its value where that fits, and
 * exists where it does not. */
static void test_pncounter_count(void **state)
{
    (void)state;
    jv_pncounter a, b, d;
    jv_pncounter_init(&a);
    jv_pncounter_init(&b);
    jv_pncounter_init(&d);
    jv_id r1 = id_of(1), r2 = id_of(2);
    char t[JV_COUNT_TEXT];
    jv_count c;
    assert_int_equal(jv_pncounter_add(&a, &r1, INT64_MAX, &d), JV_OK);
    assert_int_equal(jv_pncounter_add(&b, &r2, INT64_MAX, &d), JV_OK);
    assert_int_equal(jv_pncounter_add(&b, &r2, -5, &d), JV_OK);
    assert_int_equal(jv_pncounter_join(&a, &b), JV_OK);
    int64_t v;
    assert_int_equal(jv_pncounter_value(&a, &v), JV_EOVERFLOW);
    jv_pncounter_count(&a, &c);
    assert_string_equal(fmt(&c, t), "18446744073709551609");
    jv_pncounter_fini(&a);
    jv_pncounter_fini(&b);
    jv_pncounter_fini(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gcounter_inc),
        cmocka_unit_test(test_gcounter_delta_is_full_state),
        cmocka_unit_test(test_gcounter_overflow),
        cmocka_unit_test(test_gcounter_encoding),
        cmocka_unit_test(test_pncounter_add),
        cmocka_unit_test(test_pncounter_extremes),
        cmocka_unit_test(test_pncounter_join_and_encoding),
        cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_encode_failure_keeps_buffer),
        cmocka_unit_test(test_count_exact),
        cmocka_unit_test(test_pncounter_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
