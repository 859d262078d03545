/* orset_test.c - the add-wins OR-Set and its causal context
 * (crdt/orset.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "alloc.h"
#include "crdt_test.h"
#include "orset.h"

static jv_id id_of(uint8_t b)
{
    jv_id id;
    memset(id.b, b, sizeof(id.b));
    return id;
}

static jv_dot dot(uint8_t id, uint64_t n)
{
    jv_dot d = {id_of(id), n};
    return d;
}

static void snap(const void *t, jv_buf *out)
{
    jv_buf_reset(out);
    assert_int_equal(jv_orset_encode(t, out), JV_OK);
}

static jv_err decode(const void *p, size_t n, void *out)
{
    return jv_orset_decode(p, n, out);
}

static jv_err add(jv_orset *s, uint8_t replica, const char *key,
                  const char *value, uint64_t stamp, jv_orset *delta, jv_dot *d)
{
    jv_id id = id_of(replica);
    return jv_orset_add(s, &id, jv_str_c(key), value, strlen(value), stamp,
                        delta, d);
}

static const char *shown(const jv_orset *s, const char *key)
{
    static char buf[64];
    const jv_orset_entry *e = jv_orset_get(s, jv_str_c(key));
    if (!e)
        return NULL;
    const jv_orset_val *v = jv_orset_entry_value(e);
    assert_true(v->len < sizeof(buf));
    memcpy(buf, v->value, v->len);
    buf[v->len] = '\0';
    return buf;
}

static size_t encoded_size(const jv_orset *s)
{
    jv_buf b;
    jv_buf_init(&b);
    snap(s, &b);
    size_t n = b.len;
    jv_buf_fini(&b);
    return n;
}

static void test_dotctx(void **state)
{
    (void)state;
    jv_dotctx c;
    jv_dotctx_init(&c);
    jv_id a = id_of(1), b = id_of(2), z = id_of(9);
    jv_dot d;
    assert_int_equal(jv_dotctx_max(&c, &a), 0);
    d = dot(1, 1);
    assert_int_equal(jv_dotctx_add(&c, &d), JV_OK);
    assert_int_equal(jv_vv_get(&c.compact, &a), 1);
    assert_int_equal(c.ncloud, 0);
    d = dot(1, 3);
    assert_int_equal(jv_dotctx_add(&c, &d), JV_OK);
    d = dot(1, 5);
    assert_int_equal(jv_dotctx_add(&c, &d), JV_OK);
    d = dot(2, 4);
    assert_int_equal(jv_dotctx_add(&c, &d), JV_OK);
    assert_int_equal(jv_dotctx_add(&c, &d), JV_OK); /* again: no change */
    assert_int_equal(c.ncloud, 3);
    assert_int_equal(jv_dotctx_max(&c, &a), 5);
    assert_int_equal(jv_dotctx_max(&c, &b), 4);
    assert_int_equal(jv_dotctx_max(&c, &z), 0);
    d = dot(1, 2);
    assert_false(jv_dotctx_contains(&c, &d));
    d = dot(1, 3);
    assert_true(jv_dotctx_contains(&c, &d));
    /* Filling the gap folds the run that follows into the vector. */
    d = dot(1, 2);
    assert_int_equal(jv_dotctx_add(&c, &d), JV_OK);
    assert_int_equal(jv_vv_get(&c.compact, &a), 3);
    assert_int_equal(c.ncloud, 2);
    d = dot(1, 4);
    assert_int_equal(jv_dotctx_add(&c, &d), JV_OK);
    assert_int_equal(jv_vv_get(&c.compact, &a), 5);
    assert_int_equal(c.ncloud, 1);
    assert_int_equal(jv_dotctx_max(&c, &a), 5);
    for (uint64_t n = 1; n <= 3; n++) {
        d = dot(2, n);
        assert_int_equal(jv_dotctx_add(&c, &d), JV_OK);
    }
    assert_int_equal(jv_vv_get(&c.compact, &b), 4);
    assert_int_equal(c.ncloud, 0);
    d = dot(1, 0);
    assert_int_equal(jv_dotctx_add(&c, &d), JV_EINVAL);
    jv_dotctx_fini(&c);
    jv_dotctx_fini(NULL);
}

static void test_add_and_get(void **state)
{
    (void)state;
    jv_orset s, d;
    jv_dot got;
    jv_orset_init(&s);
    jv_orset_init(&d);
    assert_null(jv_orset_get(&s, jv_str_c("k")));
    assert_int_equal(add(&s, 1, "k", "v1", 10, &d, &got), JV_OK);
    jv_dot want = dot(1, 1);
    assert_int_equal(jv_dot_cmp(&got, &want), 0);
    assert_string_equal(shown(&s, "k"), "v1");
    /* The delta: the new tuple, and a context of its dot. */
    assert_int_equal(d.n, 1);
    assert_int_equal(d.e[0].nv, 1);
    assert_true(jv_dotctx_contains(&d.ctx, &want));
    /* A second add by the same replica replaces what it saw. */
    assert_int_equal(add(&s, 1, "k", "v2", 5, &d, &got), JV_OK);
    want = dot(1, 2);
    assert_int_equal(jv_dot_cmp(&got, &want), 0);
    const jv_orset_entry *e = jv_orset_get(&s, jv_str_c("k"));
    assert_int_equal(e->nv, 1);
    assert_string_equal(shown(&s, "k"), "v2");
    /* ... and its delta covers the replaced dot. */
    want = dot(1, 1);
    assert_true(jv_dotctx_contains(&d.ctx, &want));
    assert_int_equal(add(&s, 1, "a", "", 1, &d, NULL), JV_OK);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.e[0].key, "a");
    assert_null(jv_orset_get(&s, jv_str_c("a"))->v[0].value);
    jv_orset_fini(&s);
    jv_orset_fini(&d);
    jv_orset_fini(NULL);
}

static void test_add_refuses(void **state)
{
    (void)state;
    jv_orset s, d;
    jv_id id = id_of(1);
    jv_orset_init(&s);
    jv_orset_init(&d);
    char *big = malloc(JV_ORSET_MAX_VALUE + 1);
    assert_non_null(big);
    memset(big, 'x', JV_ORSET_MAX_VALUE + 1);
    jv_str key = {big, JV_ORSET_MAX_KEY};
    assert_int_equal(jv_orset_add(&s, &id, key, "v", 1, 1, &d, NULL), JV_OK);
    key.n++;
    assert_int_equal(jv_orset_add(&s, &id, key, "v", 1, 1, &d, NULL),
                     JV_EINVAL);
    assert_int_equal(jv_orset_add(&s, &id, jv_str_c("v"), big,
                                  JV_ORSET_MAX_VALUE, 1, &d, NULL),
                     JV_OK);
    assert_int_equal(jv_orset_add(&s, &id, jv_str_c("v"), big,
                                  JV_ORSET_MAX_VALUE + 1, 1, &d, NULL),
                     JV_EINVAL);
    jv_str empty = {"", 0}, nul = {"a\0", 2}, bad = {"\xc0\x80", 2};
    assert_int_equal(jv_orset_add(&s, &id, empty, "v", 1, 1, &d, NULL),
                     JV_EINVAL);
    assert_int_equal(jv_orset_add(&s, &id, nul, "v", 1, 1, &d, NULL),
                     JV_EINVAL);
    assert_int_equal(jv_orset_add(&s, &id, bad, "v", 1, 1, &d, NULL),
                     JV_EINVAL);
    assert_int_equal(jv_orset_add(&s, &id, jv_str_c("x"), NULL, 1, 1, &d, NULL),
                     JV_EINVAL);
    assert_int_equal(s.n, 2);
    assert_int_equal(d.e[0].v[0].len, JV_ORSET_MAX_VALUE);
    free(big);
    jv_orset_fini(&s);
    jv_orset_fini(&d);
}

static void test_remove(void **state)
{
    (void)state;
    jv_orset s, d;
    jv_buf before, after;
    jv_dot got;
    jv_orset_init(&s);
    jv_orset_init(&d);
    jv_buf_init(&before);
    jv_buf_init(&after);
    assert_int_equal(add(&s, 1, "k", "v", 1, &d, NULL), JV_OK);
    snap(&d, &before);
    assert_int_equal(jv_orset_remove(&s, jv_str_c("nope"), &d), JV_ENOTFOUND);
    snap(&d, &after);
    assert_true(jt_buf_eq(&before, &after));
    assert_int_equal(jv_orset_remove(&s, jv_str_c("k"), &d), JV_OK);
    assert_null(jv_orset_get(&s, jv_str_c("k")));
    assert_int_equal(s.n, 0);
    /* The delta is a context only: the dots the remove saw. */
    assert_int_equal(d.n, 0);
    jv_dot want = dot(1, 1);
    assert_true(jv_dotctx_contains(&d.ctx, &want));
    assert_int_equal(jv_orset_remove(&s, jv_str_c("k"), &d), JV_ENOTFOUND);
    /* Dots keep counting after a remove. */
    assert_int_equal(add(&s, 1, "k", "w", 1, &d, &got), JV_OK);
    want = dot(1, 2);
    assert_int_equal(jv_dot_cmp(&got, &want), 0);
    jv_orset_fini(&s);
    jv_orset_fini(&d);
    jv_buf_fini(&before);
    jv_buf_fini(&after);
}

static void exchange(jv_orset *x, jv_orset *y)
{
    assert_int_equal(jv_orset_join(x, y), JV_OK);
    assert_int_equal(jv_orset_join(y, x), JV_OK);
    assert_true(jv_orset_equal(x, y));
}

static void test_concurrent_adds(void **state)
{
    (void)state;
    jv_orset x, y, d;
    jv_orset_init(&x);
    jv_orset_init(&y);
    jv_orset_init(&d);
    assert_int_equal(add(&x, 1, "k", "x", 7, &d, NULL), JV_OK);
    assert_int_equal(add(&y, 2, "k", "y", 7, &d, NULL), JV_OK);
    exchange(&x, &y);
    /* Both survive; the one shown has the greatest (stamp, dot). */
    assert_int_equal(jv_orset_get(&x, jv_str_c("k"))->nv, 2);
    assert_string_equal(shown(&x, "k"), "y");
    assert_int_equal(add(&y, 2, "k", "old", 6, &d, NULL), JV_OK);
    assert_int_equal(jv_orset_join(&x, &d), JV_OK);
    /* y's new add observed both, so it replaced both, even though its
     * stamp is lower. */
    assert_int_equal(jv_orset_get(&x, jv_str_c("k"))->nv, 1);
    assert_string_equal(shown(&x, "k"), "old");
    jv_orset_fini(&x);
    jv_orset_fini(&y);
    jv_orset_fini(&d);
}

/* (d) A remove concurrent with an add of the same key loses; a remove that
 * saw the add wins. */
static void test_add_wins(void **state)
{
    (void)state;
    jv_orset x, y, dx, dy;
    jv_orset_init(&x);
    jv_orset_init(&y);
    jv_orset_init(&dx);
    jv_orset_init(&dy);
    assert_int_equal(add(&x, 1, "k", "first", 1, &dx, NULL), JV_OK);
    exchange(&x, &y);
    assert_int_equal(add(&x, 1, "k", "again", 2, &dx, NULL), JV_OK);
    assert_int_equal(jv_orset_remove(&y, jv_str_c("k"), &dy), JV_OK);
    assert_int_equal(jv_orset_join(&x, &dy), JV_OK);
    assert_int_equal(jv_orset_join(&y, &dx), JV_OK);
    assert_true(jv_orset_equal(&x, &y));
    assert_string_equal(shown(&x, "k"), "again");
    assert_int_equal(jv_orset_get(&x, jv_str_c("k"))->nv, 1);

    assert_int_equal(jv_orset_remove(&y, jv_str_c("k"), &dy), JV_OK);
    assert_int_equal(jv_orset_join(&x, &dy), JV_OK);
    assert_null(jv_orset_get(&x, jv_str_c("k")));
    assert_true(jv_orset_equal(&x, &y));
    jv_orset_fini(&x);
    jv_orset_fini(&y);
    jv_orset_fini(&dx);
    jv_orset_fini(&dy);
}

/* (d) No tombstones: many add/remove cycles of one key leave a state no
 * bigger than a few cycles do; a replica that gets the deltas in reverse
 * order holds them in its cloud only until the gaps close. */
static void test_context_stays_bounded(void **state)
{
    (void)state;
    enum {
        CYCLES = 1000
    };
    jv_orset s, late;
    jv_orset *deltas = calloc(2 * CYCLES, sizeof(*deltas));
    assert_non_null(deltas);
    jv_orset_init(&s);
    jv_orset_init(&late);
    size_t size_first = 0;
    for (int i = 0; i < CYCLES; i++) {
        jv_orset_init(&deltas[2 * i]);
        jv_orset_init(&deltas[2 * i + 1]);
        assert_int_equal(
            add(&s, 3, "key", "value", (uint64_t)i, &deltas[2 * i], NULL),
            JV_OK);
        assert_int_equal(
            jv_orset_remove(&s, jv_str_c("key"), &deltas[2 * i + 1]), JV_OK);
        if (i == 0)
            size_first = encoded_size(&s);
    }
    assert_int_equal(s.ctx.ncloud, 0);
    assert_int_equal(s.ctx.compact.n, 1);
    /* Only the vector's counter grew: 1 to 1000 takes 2 more bytes. */
    assert_true(encoded_size(&s) <= size_first + 2);

    size_t peak = 0;
    for (int i = 2 * CYCLES - 1; i >= 0; i--) {
        assert_int_equal(jv_orset_join(&late, &deltas[i]), JV_OK);
        if (late.ctx.ncloud > peak)
            peak = late.ctx.ncloud;
    }
    assert_true(peak >= CYCLES - 1);
    assert_int_equal(late.ctx.ncloud, 0);
    assert_true(jv_orset_equal(&late, &s));
    for (int i = 0; i < 2 * CYCLES; i++)
        jv_orset_fini(&deltas[i]);
    free(deltas);
    jv_orset_fini(&s);
    jv_orset_fini(&late);
}

/* Two states that disagree on a dot's content (an origin that reused a
 * dot): the join drops both, in either order, instead of depending on it. */
static void test_conflicting_dot(void **state)
{
    (void)state;
    jv_orset x, y, xy, yx, d;
    jv_orset_init(&x);
    jv_orset_init(&y);
    jv_orset_init(&xy);
    jv_orset_init(&yx);
    jv_orset_init(&d);
    assert_int_equal(add(&x, 1, "k", "one", 1, &d, NULL), JV_OK);
    assert_int_equal(add(&y, 1, "k", "two", 1, &d, NULL), JV_OK);
    assert_int_equal(add(&y, 2, "other", "o", 1, &d, NULL), JV_OK);
    assert_int_equal(jv_orset_join(&xy, &x), JV_OK);
    assert_int_equal(jv_orset_join(&xy, &y), JV_OK);
    assert_int_equal(jv_orset_join(&yx, &y), JV_OK);
    assert_int_equal(jv_orset_join(&yx, &x), JV_OK);
    assert_true(jv_orset_equal(&xy, &yx));
    assert_null(jv_orset_get(&xy, jv_str_c("k")));
    assert_string_equal(shown(&xy, "other"), "o");
    jv_orset_fini(&x);
    jv_orset_fini(&y);
    jv_orset_fini(&xy);
    jv_orset_fini(&yx);
    jv_orset_fini(&d);
}

static void test_encoding_layout(void **state)
{
    (void)state;
    jv_orset s, d, back;
    jv_buf b;
    jv_orset_init(&s);
    jv_orset_init(&d);
    jv_orset_init(&back);
    jv_buf_init(&b);
    assert_int_equal(add(&s, 0x11, "k", "v", 5, &d, NULL), JV_OK);
    snap(&s, &b);
    uint8_t want[128], *p = want;
    memcpy(p, "\x92\x91\x92\xa1k\x91\x94\xc4\x20", 9);
    p += 9;
    memset(p, 0x11, 32);
    p += 32;
    memcpy(p, "\x01\x05\xc4\x01v\x92\x91\x92\xc4\x20", 10);
    p += 10;
    memset(p, 0x11, 32);
    p += 32;
    memcpy(p, "\x01\x90", 2);
    p += 2;
    assert_int_equal(b.len, (size_t)(p - want));
    assert_memory_equal(b.data, want, b.len);
    assert_int_equal(jv_orset_decode(b.data, b.len, &back), JV_OK);
    assert_true(jv_orset_equal(&s, &back));

    /* A state with a cloud round-trips too. */
    jv_dot far = dot(0x22, 5);
    assert_int_equal(jv_dotctx_add(&s.ctx, &far), JV_OK);
    snap(&s, &b);
    assert_int_equal(jv_orset_decode(b.data, b.len, &back), JV_OK);
    assert_true(jv_orset_equal(&s, &back));
    assert_int_equal(back.ctx.ncloud, 1);
    jv_orset_fini(&s);
    jv_orset_fini(&d);
    jv_orset_fini(&back);
    jv_buf_fini(&b);
}

/* Writers for hand-made encodings. */
static void w_key(jv_mpw *w, const char *key, size_t keylen, uint32_t nvals)
{
    jv_mpw_array(w, 2);
    jv_mpw_str(w, key, keylen);
    jv_mpw_array(w, nvals);
}

static void w_val(jv_mpw *w, uint8_t id, uint64_t n)
{
    jv_id i = id_of(id);
    jv_mpw_array(w, 4);
    jv_mpw_id(w, &i);
    jv_mpw_u64(w, n);
    jv_mpw_u64(w, 1);
    jv_mpw_bin(w, "v", 1);
}

/* A context: vector {1: top1} (if top1) and a cloud of dots of id 1. */
static void w_ctx(jv_mpw *w, uint64_t top1, const uint64_t *cloud,
                  uint32_t ncloud)
{
    jv_id i = id_of(1);
    jv_mpw_array(w, 2);
    jv_mpw_array(w, top1 ? 1 : 0);
    if (top1) {
        jv_mpw_array(w, 2);
        jv_mpw_id(w, &i);
        jv_mpw_u64(w, top1);
    }
    jv_mpw_array(w, ncloud);
    for (uint32_t k = 0; k < ncloud; k++) {
        jv_dot d = {i, cloud[k]};
        jv_mpw_dot(w, &d);
    }
}

static void test_decode_refuses(void **state)
{
    (void)state;
    jv_orset t, d;
    jv_buf b;
    jv_mpw w;
    jv_orset_init(&t);
    jv_orset_init(&d);
    jv_buf_init(&b);
    assert_int_equal(add(&t, 5, "t", "t", 1, &d, NULL), JV_OK);

    /* A good one: two keys, a cloud. */
    static const uint64_t c7[] = {7}, c79[] = {7, 9}, c97[] = {9, 7};
    static const uint64_t c3[] = {3}, c4[] = {4}, c77[] = {7, 7};
    static const uint64_t c1[] = {1}, c0[] = {0};
    jv_mpw_init(&w, &b);
    jv_mpw_array(&w, 2);
    jv_mpw_array(&w, 2);
    w_key(&w, "a", 1, 2);
    w_val(&w, 1, 1);
    w_val(&w, 1, 7);
    w_key(&w, "b", 1, 1);
    w_val(&w, 1, 2);
    w_ctx(&w, 2, c79, 2);
    jv_orset ok;
    jv_orset_init(&ok);
    assert_int_equal(jv_orset_decode(b.data, b.len, &ok), JV_OK);
    assert_int_equal(ok.n, 2);
    jv_orset_fini(&ok);
    jt_prefixes_refused(decode, b.data, b.len, &t, snap);
    jt_trailing_refused(decode, b.data, b.len, &t, snap);

    char big[JV_ORSET_MAX_KEY + 1];
    memset(big, 'k', sizeof(big));
#define REFUSE(want, ...)                                  \
    do {                                                   \
        jv_buf_reset(&b);                                  \
        jv_mpw_init(&w, &b);                               \
        jv_mpw_array(&w, 2);                               \
        __VA_ARGS__;                                       \
        jt_refused(decode, b.data, b.len, &t, snap, want); \
    } while (0)
    /* Keys unsorted, duplicated, empty, not UTF-8, too long; no values. */
    REFUSE(JV_ENONCANON, jv_mpw_array(&w, 2); w_key(&w, "b", 1, 1);
           w_val(&w, 1, 1); w_key(&w, "a", 1, 1); w_val(&w, 1, 2);
           w_ctx(&w, 2, NULL, 0));
    REFUSE(JV_ENONCANON, jv_mpw_array(&w, 2); w_key(&w, "a", 1, 1);
           w_val(&w, 1, 1); w_key(&w, "a", 1, 1); w_val(&w, 1, 2);
           w_ctx(&w, 2, NULL, 0));
    REFUSE(JV_EDECODE, jv_mpw_array(&w, 1); w_key(&w, "", 0, 1);
           w_val(&w, 1, 1); w_ctx(&w, 1, NULL, 0));
    REFUSE(JV_EDECODE, jv_mpw_array(&w, 1); w_key(&w, "\xfe", 1, 1);
           w_val(&w, 1, 1); w_ctx(&w, 1, NULL, 0));
    REFUSE(JV_ETOOBIG, jv_mpw_array(&w, 1); w_key(&w, big, sizeof(big), 1);
           w_val(&w, 1, 1); w_ctx(&w, 1, NULL, 0));
    REFUSE(JV_ENONCANON, jv_mpw_array(&w, 1); w_key(&w, "a", 1, 0);
           w_ctx(&w, 1, NULL, 0); jt_raw(&b, "\0\0\0\0\0\0\0\0\0\0", 10));
    /* Dots unsorted or repeated within a key, repeated across keys, zero,
     * or not covered by the context. */
    REFUSE(JV_ENONCANON, jv_mpw_array(&w, 1); w_key(&w, "a", 1, 2);
           w_val(&w, 1, 2); w_val(&w, 1, 1); w_ctx(&w, 2, NULL, 0));
    REFUSE(JV_ENONCANON, jv_mpw_array(&w, 1); w_key(&w, "a", 1, 2);
           w_val(&w, 1, 1); w_val(&w, 1, 1); w_ctx(&w, 2, NULL, 0));
    REFUSE(JV_EDECODE, jv_mpw_array(&w, 2); w_key(&w, "a", 1, 1);
           w_val(&w, 1, 1); w_key(&w, "b", 1, 1); w_val(&w, 1, 1);
           w_ctx(&w, 2, NULL, 0));
    REFUSE(JV_EDECODE, jv_mpw_array(&w, 1); w_key(&w, "a", 1, 1);
           w_val(&w, 1, 0); w_ctx(&w, 2, NULL, 0));
    REFUSE(JV_EDECODE, jv_mpw_array(&w, 1); w_key(&w, "a", 1, 1);
           w_val(&w, 1, 3); w_ctx(&w, 2, NULL, 0));
    REFUSE(JV_EDECODE, jv_mpw_array(&w, 1); w_key(&w, "a", 1, 1);
           w_val(&w, 1, 8); w_ctx(&w, 2, c7, 1));
    REFUSE(JV_EDECODE, jv_mpw_array(&w, 1); w_key(&w, "a", 1, 1);
           w_val(&w, 2, 1); w_ctx(&w, 2, NULL, 0));
    /* Clouds unsorted, repeating a dot, holding a dot the vector covers
     * or would absorb, or a zero. */
    REFUSE(JV_ENONCANON, jv_mpw_array(&w, 0); w_ctx(&w, 2, c97, 2));
    REFUSE(JV_ENONCANON, jv_mpw_array(&w, 0); w_ctx(&w, 2, c77, 2));
    REFUSE(JV_ENONCANON, jv_mpw_array(&w, 0); w_ctx(&w, 3, c3, 1));
    REFUSE(JV_ENONCANON, jv_mpw_array(&w, 0); w_ctx(&w, 3, c4, 1));
    REFUSE(JV_ENONCANON, jv_mpw_array(&w, 0); w_ctx(&w, 0, c1, 1));
    REFUSE(JV_EDECODE, jv_mpw_array(&w, 0); w_ctx(&w, 2, c0, 1));
    /* The vector inside the context is held to its own rules. */
    REFUSE(JV_ENONCANON, jv_mpw_array(&w, 0); jv_mpw_array(&w, 2);
           jv_mpw_array(&w, 1); jv_mpw_array(&w, 2); jv_id i = id_of(1);
           jv_mpw_id(&w, &i); jv_mpw_u64(&w, 0); jv_mpw_array(&w, 0));
    /* Wrong shapes: no context, a value of three fields, a map. */
    REFUSE(JV_ETRUNC, jv_mpw_array(&w, 0));
    REFUSE(JV_ETYPE, jv_mpw_array(&w, 1); w_key(&w, "a", 1, 1);
           jv_mpw_array(&w, 3); jv_id i = id_of(1); jv_mpw_id(&w, &i);
           jv_mpw_u64(&w, 1); jv_mpw_u64(&w, 1); w_ctx(&w, 1, NULL, 0));
    REFUSE(JV_ETYPE, jt_byte(&b, 0x80); w_ctx(&w, 1, NULL, 0));
    /* Caps. */
    REFUSE(JV_ETOOBIG, jv_mpw_array(&w, JV_ORSET_MAX_ENTRIES + 1));
    REFUSE(JV_ETOOBIG, jv_mpw_array(&w, 1);
           w_key(&w, "a", 1, JV_ORSET_MAX_VALUES + 1); jt_raw(&b, big, 64));
    REFUSE(JV_ETOOBIG, jv_mpw_array(&w, 0); jv_mpw_array(&w, 2);
           jv_mpw_array(&w, 0); jv_mpw_array(&w, JV_ORSET_MAX_CLOUD + 1));
#undef REFUSE
    static const uint8_t huge[] = {0x92, 0xdd, 0xff, 0xff, 0xff, 0xff};
    jv_alloc_fail_after(0);
    assert_int_equal(jv_orset_decode(huge, sizeof(huge), &t), JV_ETOOBIG);
    assert_int_equal(jv_alloc_failed_count(), 0);
    jv_alloc_fail_reset();
    assert_string_equal(shown(&t, "t"), "t");
    jv_orset_fini(&t);
    jv_orset_fini(&d);
    jv_buf_fini(&b);
}

/* ---- allocation failures ---------------------------------------------- */

typedef struct {
    jv_orset *s, *src, *delta;
    uint8_t replica;
    const char *key;
    const jv_buf *bytes;
    jv_dotctx *ctx;
    jv_dot dot;
} ctx;

static jv_err call_add(void *p)
{
    ctx *c = p;
    return add(c->s, c->replica, c->key, "value", 9, c->delta, NULL);
}

static jv_err call_remove(void *p)
{
    ctx *c = p;
    return jv_orset_remove(c->s, jv_str_c(c->key), c->delta);
}

static jv_err call_join(void *p)
{
    ctx *c = p;
    return jv_orset_join(c->s, c->src);
}

static jv_err call_decode(void *p)
{
    ctx *c = p;
    return jv_orset_decode(c->bytes->data, c->bytes->len, c->s);
}

static jv_err call_ctx_add(void *p)
{
    ctx *c = p;
    return jv_dotctx_add(c->ctx, &c->dot);
}

static void ctx_snap(const void *t, jv_buf *out)
{
    /* A context alone, encoded as the context of an empty set. */
    jv_orset s;
    jv_orset_init(&s);
    s.ctx = *(const jv_dotctx *)t;
    snap(&s, out);
}

static void test_alloc_failures(void **state)
{
    (void)state;
    jv_orset s, src, d, tmp;
    jv_buf bytes;
    char key[32];
    jv_orset_init(&s);
    jv_orset_init(&src);
    jv_orset_init(&d);
    jv_orset_init(&tmp);
    jv_buf_init(&bytes);
    /* Shared history, then divergence: src adds, re-adds and removes keys
     * s holds, and adds keys s lacks. */
    for (int i = 0; i < 30; i++) {
        snprintf(key, sizeof(key), "k%02d", i);
        assert_int_equal(add(&s, 1, key, "s", 1, &d, NULL), JV_OK);
    }
    assert_int_equal(jv_orset_join(&src, &s), JV_OK);
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof(key), "k%02d", i);
        if (i % 3 == 0)
            assert_int_equal(jv_orset_remove(&src, jv_str_c(key), &d),
                             i < 30 ? JV_OK : JV_ENOTFOUND);
        else
            assert_int_equal(add(&src, 2, key, "src", 2, &d, NULL), JV_OK);
        if (i % 4 == 0)
            assert_int_equal(add(&s, 1, key, "s2", 3, &d, NULL), JV_OK);
    }
    /* A cloud on s: dots of a replica it has not heard from in order. */
    jv_dot far = dot(7, 10);
    assert_int_equal(jv_dotctx_add(&s.ctx, &far), JV_OK);
    far = dot(7, 12);
    assert_int_equal(jv_dotctx_add(&src.ctx, &far), JV_OK);
    while (s.n < s.cap) {
        snprintf(key, sizeof(key), "z%02zu", s.n);
        assert_int_equal(add(&s, 1, key, "fill", 1, &d, NULL), JV_OK);
    }

    ctx c = {&s, &src, &d, 1, "new", &bytes, NULL, {{{0}}, 0}};
    assert_true(jt_alloc_loop(call_add, &c, snap, &s) > 0);
    c.key = "k01";
    assert_true(jt_alloc_loop(call_add, &c, snap, &s) > 0);
    c.key = "k02";
    assert_true(jt_alloc_loop(call_add, &c, snap, &d) > 0);
    c.key = "k05";
    assert_true(jt_alloc_loop(call_remove, &c, snap, &s) > 0);
    c.key = "k07";
    assert_true(jt_alloc_loop(call_remove, &c, snap, &d) > 0);

    /* A join that inserts, replaces, removes keys and grows the context. */
    assert_true(jt_alloc_loop(call_join, &c, snap, &s) > 0);
    assert_null(jv_orset_get(&s, jv_str_c("k03")));
    assert_string_equal(shown(&s, "k01"), "value");
    assert_string_equal(shown(&s, "k04"), "s2");
    assert_int_equal(jv_orset_get(&s, jv_str_c("k08"))->nv, 2);
    assert_string_equal(shown(&s, "k31"), "src");
    /* s removed k05, src re-added it concurrently: the add wins. */
    assert_string_equal(shown(&s, "k05"), "src");
    jv_orset_fini(&tmp);
    jv_orset_init(&tmp);
    assert_int_equal(jv_orset_join(&tmp, &src), JV_OK);
    assert_int_equal(jv_orset_join(&tmp, &s), JV_OK);
    assert_true(jv_orset_equal(&tmp, &s));

    snap(&src, &bytes);
    assert_true(jt_alloc_loop(call_decode, &c, snap, &s) > 0);
    assert_true(jv_orset_equal(&s, &src));

    jv_dotctx cx;
    jv_dotctx_init(&cx);
    c.ctx = &cx;
    c.dot = dot(4, 1);
    assert_true(jt_alloc_loop(call_ctx_add, &c, ctx_snap, &cx) > 0);
    c.dot = dot(4, 5);
    assert_true(jt_alloc_loop(call_ctx_add, &c, ctx_snap, &cx) > 0);
    assert_int_equal(cx.ncloud, 1);
    jv_dotctx_fini(&cx);

    jv_orset_fini(&s);
    jv_orset_fini(&src);
    jv_orset_fini(&d);
    jv_orset_fini(&tmp);
    jv_buf_fini(&bytes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dotctx),
        cmocka_unit_test(test_add_and_get),
        cmocka_unit_test(test_add_refuses),
        cmocka_unit_test(test_remove),
        cmocka_unit_test(test_concurrent_adds),
        cmocka_unit_test(test_add_wins),
        cmocka_unit_test(test_context_stays_bounded),
        cmocka_unit_test(test_conflicting_dot),
        cmocka_unit_test(test_encoding_layout),
        cmocka_unit_test(test_decode_refuses),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
