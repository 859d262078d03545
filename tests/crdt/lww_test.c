/* lww_test.c - LWW registers and the LWW map (crdt/lww.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "alloc.h"
#include "crdt_test.h"
#include "lww.h"

static jv_id id_of(uint8_t b)
{
    jv_id id;
    memset(id.b, b, sizeof(id.b));
    return id;
}

static void snap(const void *t, jv_buf *out)
{
    jv_buf_reset(out);
    assert_int_equal(jv_lwwmap_encode(t, out), JV_OK);
}

static jv_err decode(const void *p, size_t n, void *out)
{
    return jv_lwwmap_decode(p, n, out);
}

static jv_err set(jv_lwwmap *m, const char *key, const char *value,
                  uint64_t stamp, uint8_t replica, jv_lwwmap *delta)
{
    jv_id id = id_of(replica);
    return jv_lwwmap_set(m, jv_str_c(key), value, strlen(value), stamp, &id,
                         delta);
}

static void assert_value(const jv_lwwmap *m, const char *key, const char *value)
{
    const jv_lww_reg *r = jv_lwwmap_get(m, jv_str_c(key));
    assert_non_null(r);
    assert_int_equal(r->len, strlen(value));
    if (r->len)
        assert_memory_equal(r->value, value, r->len);
}

static void test_register_order(void **state)
{
    (void)state;
    jv_lww_reg a = {5, id_of(1), (uint8_t *)"b", 1};
    jv_lww_reg b = a;
    assert_int_equal(jv_lww_cmp(&a, &b), 0);
    b.stamp = 6;
    assert_true(jv_lww_cmp(&a, &b) < 0 && jv_lww_cmp(&b, &a) > 0);
    /* Equal stamps: the replica id decides, over any value. */
    b = a;
    b.replica = id_of(2);
    b.value = (uint8_t *)"a";
    assert_true(jv_lww_cmp(&a, &b) < 0 && jv_lww_cmp(&b, &a) > 0);
    /* Equal stamp and replica: the value bytes, a prefix first. */
    b = a;
    b.value = (uint8_t *)"c";
    assert_true(jv_lww_cmp(&a, &b) < 0);
    b.value = (uint8_t *)"ba";
    b.len = 2;
    assert_true(jv_lww_cmp(&a, &b) < 0 && jv_lww_cmp(&b, &a) > 0);
    b.value = NULL;
    b.len = 0;
    assert_true(jv_lww_cmp(&b, &a) < 0);
}

static void test_set_and_get(void **state)
{
    (void)state;
    jv_lwwmap m, d;
    jv_lwwmap_init(&m);
    jv_lwwmap_init(&d);
    assert_null(jv_lwwmap_get(&m, jv_str_c("a")));
    assert_int_equal(set(&m, "b", "1", 10, 1, &d), JV_OK);
    assert_int_equal(set(&m, "a", "2", 10, 1, &d), JV_OK);
    assert_int_equal(set(&m, "ab", "3", 10, 1, &d), JV_OK);
    assert_int_equal(m.n, 3);
    assert_string_equal(m.e[0].key, "a");
    assert_string_equal(m.e[1].key, "ab");
    assert_string_equal(m.e[2].key, "b");
    assert_value(&m, "ab", "3");
    /* The delta is the one-key map of the write. */
    assert_int_equal(d.n, 1);
    assert_string_equal(d.e[0].key, "ab");
    assert_int_equal(d.e[0].reg.stamp, 10);

    /* A newer stamp replaces, an older one does not (but still is the
     * delta: joining it anywhere is harmless). */
    assert_int_equal(set(&m, "a", "new", 11, 1, &d), JV_OK);
    assert_value(&m, "a", "new");
    assert_int_equal(set(&m, "a", "old", 9, 1, &d), JV_OK);
    assert_value(&m, "a", "new");
    assert_int_equal(d.e[0].reg.stamp, 9);
    /* A tie goes to the greater replica id. */
    assert_int_equal(set(&m, "a", "by2", 11, 2, &d), JV_OK);
    assert_value(&m, "a", "by2");
    assert_int_equal(set(&m, "a", "by0", 11, 0, &d), JV_OK);
    assert_value(&m, "a", "by2");
    /* An empty value owns no memory. */
    assert_int_equal(set(&m, "e", "", 1, 1, &d), JV_OK);
    assert_null(jv_lwwmap_get(&m, jv_str_c("e"))->value);
    assert_value(&m, "e", "");
    jv_lwwmap_fini(&m);
    jv_lwwmap_fini(&d);
    jv_lwwmap_fini(NULL);
}

static void test_set_refuses(void **state)
{
    (void)state;
    jv_lwwmap m, d;
    jv_id id = id_of(1);
    jv_lwwmap_init(&m);
    jv_lwwmap_init(&d);
    assert_int_equal(set(&m, "k", "v", 1, 1, &d), JV_OK);
    char *big = malloc(JV_LWW_MAX_VALUE + 1);
    assert_non_null(big);
    memset(big, 'k', JV_LWW_MAX_VALUE + 1);
    jv_str key = {big, JV_LWW_MAX_KEY};
    assert_int_equal(jv_lwwmap_set(&m, key, "v", 1, 1, &id, &d), JV_OK);
    key.n++;
    assert_int_equal(jv_lwwmap_set(&m, key, "v", 1, 1, &id, &d), JV_EINVAL);
    assert_int_equal(
        jv_lwwmap_set(&m, jv_str_c("v"), big, JV_LWW_MAX_VALUE, 1, &id, &d),
        JV_OK);
    assert_int_equal(
        jv_lwwmap_set(&m, jv_str_c("w"), big, JV_LWW_MAX_VALUE + 1, 1, &id, &d),
        JV_EINVAL);
    jv_str empty = {"", 0}, nul = {"a\0b", 3}, bad = {"\xe2\x82", 2};
    assert_int_equal(jv_lwwmap_set(&m, empty, "v", 1, 1, &id, &d), JV_EINVAL);
    assert_int_equal(jv_lwwmap_set(&m, nul, "v", 1, 1, &id, &d), JV_EINVAL);
    assert_int_equal(jv_lwwmap_set(&m, bad, "v", 1, 1, &id, &d), JV_EINVAL);
    assert_int_equal(jv_lwwmap_set(&m, jv_str_c("x"), NULL, 3, 1, &id, &d),
                     JV_EINVAL);
    assert_int_equal(m.n, 3);
    assert_int_equal(d.e[0].reg.len, JV_LWW_MAX_VALUE);
    free(big);
    jv_lwwmap_fini(&m);
    jv_lwwmap_fini(&d);
}

/* (e) Two replicas write one key with one stamp: each side ends with the
 * same winner, whichever write it saw first. */
static void test_ties_ignore_arrival_order(void **state)
{
    (void)state;
    jv_lwwmap x, y, dx, dy;
    jv_buf bx, by;
    jv_lwwmap_init(&x);
    jv_lwwmap_init(&y);
    jv_lwwmap_init(&dx);
    jv_lwwmap_init(&dy);
    jv_buf_init(&bx);
    jv_buf_init(&by);
    assert_int_equal(set(&x, "k", "from-9", 42, 9, &dx), JV_OK);
    assert_int_equal(set(&y, "k", "from-3", 42, 3, &dy), JV_OK);
    assert_int_equal(jv_lwwmap_join(&x, &dy), JV_OK);
    assert_int_equal(jv_lwwmap_join(&y, &dx), JV_OK);
    snap(&x, &bx);
    snap(&y, &by);
    assert_true(jt_buf_eq(&bx, &by));
    assert_value(&x, "k", "from-9");
    jv_lwwmap_fini(&x);
    jv_lwwmap_fini(&y);
    jv_lwwmap_fini(&dx);
    jv_lwwmap_fini(&dy);
    jv_buf_fini(&bx);
    jv_buf_fini(&by);
}

static void test_join_many_keys(void **state)
{
    (void)state;
    jv_lwwmap a, b, ab, ba, d;
    jv_lwwmap_init(&a);
    jv_lwwmap_init(&b);
    jv_lwwmap_init(&ab);
    jv_lwwmap_init(&ba);
    jv_lwwmap_init(&d);
    char key[8];
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof(key), "k%03d", i);
        if (i % 2 == 0)
            assert_int_equal(set(&a, key, "a", (uint64_t)i, 1, &d), JV_OK);
        if (i % 3 == 0)
            assert_int_equal(set(&b, key, "b", (uint64_t)(300 - i), 2, &d),
                             JV_OK);
    }
    assert_int_equal(jv_lwwmap_join(&ab, &a), JV_OK);
    assert_int_equal(jv_lwwmap_join(&ab, &b), JV_OK);
    assert_int_equal(jv_lwwmap_join(&ba, &b), JV_OK);
    assert_int_equal(jv_lwwmap_join(&ba, &a), JV_OK);
    assert_true(jv_lwwmap_equal(&ab, &ba));
    assert_int_equal(ab.n, 150 + 100 - 50);
    for (int i = 0; i < 300; i += 6) {
        snprintf(key, sizeof(key), "k%03d", i);
        assert_value(&ab, key, i > 150 ? "a" : "b");
    }
    for (size_t i = 1; i < ab.n; i++)
        assert_true(strcmp(ab.e[i - 1].key, ab.e[i].key) < 0);
    jv_lwwmap_fini(&a);
    jv_lwwmap_fini(&b);
    jv_lwwmap_fini(&ab);
    jv_lwwmap_fini(&ba);
    jv_lwwmap_fini(&d);
}

static void test_encoding_layout(void **state)
{
    (void)state;
    jv_lwwmap m, d, back;
    jv_buf b;
    jv_lwwmap_init(&m);
    jv_lwwmap_init(&d);
    jv_lwwmap_init(&back);
    jv_buf_init(&b);
    assert_int_equal(set(&m, "k", "{}", 0x10000, 0xcd, &d), JV_OK);
    snap(&m, &b);
    uint8_t want[64], *p = want;
    memcpy(p, "\x91\x94\xa1k\xc4\x02{}\xce\x00\x01\x00\x00\xc4\x20", 15);
    p += 15;
    memset(p, 0xcd, 32);
    p += 32;
    assert_int_equal(b.len, (size_t)(p - want));
    assert_memory_equal(b.data, want, b.len);
    assert_int_equal(jv_lwwmap_decode(b.data, b.len, &back), JV_OK);
    assert_true(jv_lwwmap_equal(&m, &back));
    jv_lwwmap_fini(&m);
    jv_lwwmap_fini(&d);
    jv_lwwmap_fini(&back);
    jv_buf_fini(&b);
}

static void entry(jv_mpw *w, const char *key, size_t keylen, size_t vlen)
{
    static const uint8_t zeros[16];
    jv_id id = id_of(1);
    jv_mpw_array(w, 4);
    jv_mpw_str(w, key, keylen);
    jv_mpw_bin(w, zeros, vlen);
    jv_mpw_u64(w, 3);
    jv_mpw_id(w, &id);
}

static void test_decode_refuses(void **state)
{
    (void)state;
    jv_lwwmap t, d;
    jv_buf b;
    jv_mpw w;
    jv_lwwmap_init(&t);
    jv_lwwmap_init(&d);
    jv_buf_init(&b);
    assert_int_equal(set(&t, "t", "t", 1, 1, &d), JV_OK);

    jv_mpw_init(&w, &b);
    jv_mpw_array(&w, 2);
    entry(&w, "a", 1, 0);
    entry(&w, "b", 1, 3);
    jt_prefixes_refused(decode, b.data, b.len, &t, snap);
    jt_trailing_refused(decode, b.data, b.len, &t, snap);

    char *big = calloc(1, JV_LWW_MAX_VALUE + 1);
    assert_non_null(big);
    memset(big, 'k', JV_LWW_MAX_KEY + 1);
#define REFUSE(want, ...)                                  \
    do {                                                   \
        jv_buf_reset(&b);                                  \
        jv_mpw_init(&w, &b);                               \
        __VA_ARGS__;                                       \
        jt_refused(decode, b.data, b.len, &t, snap, want); \
    } while (0)
    REFUSE(JV_ENONCANON, jv_mpw_array(&w, 2); entry(&w, "b", 1, 0);
           entry(&w, "a", 1, 0));
    REFUSE(JV_ENONCANON, jv_mpw_array(&w, 2); entry(&w, "ab", 2, 0);
           entry(&w, "a", 1, 0));
    REFUSE(JV_ENONCANON, jv_mpw_array(&w, 2); entry(&w, "a", 1, 0);
           entry(&w, "a", 1, 1));
    REFUSE(JV_EDECODE, jv_mpw_array(&w, 1); entry(&w, "", 0, 2));
    REFUSE(JV_EDECODE, jv_mpw_array(&w, 1); entry(&w, "a\0", 2, 0));
    REFUSE(JV_EDECODE, jv_mpw_array(&w, 1); entry(&w, "\xff", 1, 0));
    REFUSE(JV_ETOOBIG, jv_mpw_array(&w, 1);
           entry(&w, big, JV_LWW_MAX_KEY + 1, 0));
    REFUSE(JV_ETOOBIG, jv_mpw_array(&w, 1); jv_mpw_array(&w, 4);
           jv_mpw_str(&w, "k", 1); jv_mpw_bin(&w, big, JV_LWW_MAX_VALUE + 1);
           jv_mpw_u64(&w, 1); jv_id i = id_of(1); jv_mpw_id(&w, &i));
    REFUSE(JV_ETOOBIG, jv_mpw_array(&w, JV_LWW_MAX_ENTRIES + 1));
    /* A str value, a bin key, a missing field. */
    REFUSE(JV_ETYPE, jv_mpw_array(&w, 1); jv_mpw_array(&w, 4);
           jv_mpw_str(&w, "k", 1); jv_mpw_str(&w, "v", 1); jv_mpw_u64(&w, 1);
           jv_id i = id_of(1); jv_mpw_id(&w, &i));
    REFUSE(JV_ETYPE, jv_mpw_array(&w, 1); jv_mpw_array(&w, 4);
           jv_mpw_bin(&w, "k", 1); jv_mpw_bin(&w, "v", 1); jv_mpw_u64(&w, 1);
           jv_id i = id_of(1); jv_mpw_id(&w, &i));
    REFUSE(JV_ETYPE, jv_mpw_array(&w, 1); jv_mpw_array(&w, 3);
           jv_mpw_str(&w, "k", 1); jv_mpw_bin(&w, "v", 1); jv_id i = id_of(1);
           jv_mpw_id(&w, &i); jv_mpw_u64(&w, 1));
    /* A bin16 header for a two-byte value. */
    REFUSE(JV_ENONCANON, jv_mpw_array(&w, 1); jv_mpw_array(&w, 4);
           jv_mpw_str(&w, "k", 1); jt_raw(&b, "\xc5\x00\x02xy", 5);
           jv_mpw_u64(&w, 1); jv_id i = id_of(1); jv_mpw_id(&w, &i));
#undef REFUSE
    static const uint8_t huge[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    jv_alloc_fail_after(0);
    assert_int_equal(jv_lwwmap_decode(huge, sizeof(huge), &t), JV_ETOOBIG);
    assert_int_equal(jv_alloc_failed_count(), 0);
    jv_alloc_fail_reset();
    assert_value(&t, "t", "t");
    assert_int_equal(t.n, 1);
    free(big);
    jv_lwwmap_fini(&t);
    jv_lwwmap_fini(&d);
    jv_buf_fini(&b);
}

/* ---- allocation failures ---------------------------------------------- */

typedef struct {
    jv_lwwmap *m, *src, *delta;
    const char *key;
    uint64_t stamp;
    const jv_buf *bytes;
} ctx;

static jv_err call_set(void *p)
{
    ctx *c = p;
    return set(c->m, c->key, "value", c->stamp, 4, c->delta);
}

static jv_err call_join(void *p)
{
    ctx *c = p;
    return jv_lwwmap_join(c->m, c->src);
}

static jv_err call_decode(void *p)
{
    ctx *c = p;
    return jv_lwwmap_decode(c->bytes->data, c->bytes->len, c->m);
}

static void test_alloc_failures(void **state)
{
    (void)state;
    jv_lwwmap m, src, d;
    jv_buf bytes;
    char key[32];
    jv_lwwmap_init(&m);
    jv_lwwmap_init(&src);
    jv_lwwmap_init(&d);
    jv_buf_init(&bytes);
    for (int i = 0; i < 60; i++) {
        snprintf(key, sizeof(key), "k%02d", i);
        if (i % 2)
            assert_int_equal(set(&m, key, "m", 5, 1, &d), JV_OK);
        if (i % 3)
            assert_int_equal(set(&src, key, "s", (uint64_t)i % 10, 2, &d),
                             JV_OK);
    }
    while (m.n < m.cap) {
        snprintf(key, sizeof(key), "z%02zu", m.n);
        assert_int_equal(set(&m, key, "fill", 1, 1, &d), JV_OK);
    }
    ctx c = {&m, &src, &d, "new", 3, &bytes};
    /* A new key, a newer register for a known key, and into the delta. */
    assert_true(jt_alloc_loop(call_set, &c, snap, &m) > 0);
    c.key = "k01";
    c.stamp = 99;
    assert_true(jt_alloc_loop(call_set, &c, snap, &m) > 0);
    assert_value(&m, "k01", "value");
    c.key = "k03";
    assert_true(jt_alloc_loop(call_set, &c, snap, &d) > 0);
    /* Inserts and replacements together. */
    assert_true(jt_alloc_loop(call_join, &c, snap, &m) > 0);
    assert_value(&m, "k07", "s");
    assert_value(&m, "k02", "s");
    assert_value(&m, "k03", "value");
    assert_value(&m, "k09", "m");
    snap(&src, &bytes);
    assert_true(jt_alloc_loop(call_decode, &c, snap, &m) > 0);
    assert_true(jv_lwwmap_equal(&m, &src));
    jv_lwwmap_fini(&m);
    jv_lwwmap_fini(&src);
    jv_lwwmap_fini(&d);
    jv_buf_fini(&bytes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_register_order),
        cmocka_unit_test(test_set_and_get),
        cmocka_unit_test(test_set_refuses),
        cmocka_unit_test(test_ties_ignore_arrival_order),
        cmocka_unit_test(test_join_many_keys),
        cmocka_unit_test(test_encoding_layout),
        cmocka_unit_test(test_decode_refuses),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
