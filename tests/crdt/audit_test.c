/* audit_test.c - the audit log's grow-only set (crdt/audit.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "alloc.h"
#include "audit.h"
#include "crdt_test.h"

static jv_dot dot(uint8_t id, uint64_t n)
{
    jv_dot d;
    memset(d.id.b, id, sizeof(d.id.b));
    d.n = n;
    return d;
}

static void snap(const void *t, jv_buf *out)
{
    jv_buf_reset(out);
    assert_int_equal(jv_audit_encode(t, out), JV_OK);
}

static jv_err decode(const void *p, size_t n, void *out)
{
    return jv_audit_decode(p, n, out);
}

static jv_err append(jv_audit *s, jv_dot id, uint64_t t, const char *actor,
                     const char *detail, jv_audit *delta)
{
    return jv_audit_append(s, &id, t, jv_str_c(actor), jv_str_c("set"),
                           jv_str_c("config/x"), jv_str_c(detail), delta);
}

static void test_append_and_find(void **state)
{
    (void)state;
    jv_audit s, d;
    jv_audit_init(&s);
    jv_audit_init(&d);
    assert_int_equal(append(&s, dot(2, 1), 100, "alice", "v=1", &d), JV_OK);
    assert_int_equal(append(&s, dot(1, 5), 90, "bob", "", &d), JV_OK);
    assert_int_equal(append(&s, dot(2, 2), 110, "alice", "v=2", &d), JV_OK);
    assert_int_equal(s.n, 3);
    /* Sorted by id, whatever the order of appends. */
    jv_dot q = dot(1, 5);
    assert_int_equal(jv_dot_cmp(&s.e[0].id, &q), 0);
    q = dot(2, 2);
    const jv_audit_entry *e = jv_audit_find(&s, &q);
    assert_non_null(e);
    assert_int_equal(e->time_ms, 110);
    assert_string_equal(e->actor, "alice");
    assert_string_equal(e->action, "set");
    assert_string_equal(e->target, "config/x");
    assert_string_equal(e->detail, "v=2");
    q = dot(2, 3);
    assert_null(jv_audit_find(&s, &q));
    /* The delta is the one new entry. */
    assert_int_equal(d.n, 1);
    q = dot(2, 2);
    assert_int_equal(jv_dot_cmp(&d.e[0].id, &q), 0);
    assert_string_equal(d.e[0].detail, "v=2");
    jv_audit_fini(&s);
    jv_audit_fini(&d);
    jv_audit_fini(NULL);
}

static void test_append_existing_id(void **state)
{
    (void)state;
    jv_audit s, d;
    jv_buf before, after;
    jv_audit_init(&s);
    jv_audit_init(&d);
    jv_buf_init(&before);
    jv_buf_init(&after);
    assert_int_equal(append(&s, dot(1, 1), 100, "alice", "first", &d), JV_OK);
    snap(&s, &before);
    /* Other content for a known id changes nothing, and the delta is the
     * entry the set holds, so that joining it anywhere agrees with s. */
    assert_int_equal(append(&s, dot(1, 1), 1, "aaa", "other", &d), JV_OK);
    snap(&s, &after);
    assert_true(jt_buf_eq(&before, &after));
    assert_int_equal(d.n, 1);
    assert_int_equal(d.e[0].time_ms, 100);
    assert_string_equal(d.e[0].detail, "first");
    jv_audit_fini(&s);
    jv_audit_fini(&d);
    jv_buf_fini(&before);
    jv_buf_fini(&after);
}

static void test_append_refuses(void **state)
{
    (void)state;
    jv_audit s, d;
    jv_audit_init(&s);
    jv_audit_init(&d);
    assert_int_equal(append(&s, dot(1, 1), 1, "a", "x", &d), JV_OK);
    char *big = malloc(JV_AUDIT_MAX_DETAIL + 2);
    assert_non_null(big);
    memset(big, 'x', JV_AUDIT_MAX_DETAIL + 1);
    jv_str at[4] = {{big, JV_AUDIT_MAX_ACTOR},
                    {big, JV_AUDIT_MAX_ACTION},
                    {big, JV_AUDIT_MAX_TARGET},
                    {big, JV_AUDIT_MAX_DETAIL}};
    jv_dot id = dot(3, 1);
    /* Each text at its limit is fine, one byte more is not. */
    for (int f = 0; f < 4; f++) {
        jv_str t[4] = {jv_str_c("a"), jv_str_c("b"), jv_str_c("c"),
                       jv_str_c("d")};
        t[f] = at[f];
        id.n++;
        assert_int_equal(
            jv_audit_append(&s, &id, 1, t[0], t[1], t[2], t[3], &d), JV_OK);
        t[f].n++;
        id.n++;
        assert_int_equal(
            jv_audit_append(&s, &id, 1, t[0], t[1], t[2], t[3], &d), JV_EINVAL);
    }
    jv_str ok = jv_str_c("ok"), nul = {"a\0b", 3}, bad = {"\xc3\x28", 2};
    id.n++;
    assert_int_equal(jv_audit_append(&s, &id, 1, nul, ok, ok, ok, &d),
                     JV_EINVAL);
    assert_int_equal(jv_audit_append(&s, &id, 1, ok, ok, bad, ok, &d),
                     JV_EINVAL);
    id.n = 0;
    assert_int_equal(jv_audit_append(&s, &id, 1, ok, ok, ok, ok, &d),
                     JV_EINVAL);
    /* Refused appends left nothing behind; the last good one is the delta. */
    assert_int_equal(s.n, 5);
    assert_int_equal(d.n, 1);
    assert_int_equal(strlen(d.e[0].detail), JV_AUDIT_MAX_DETAIL);
    free(big);
    jv_audit_fini(&s);
    jv_audit_fini(&d);
}

static void test_join(void **state)
{
    (void)state;
    jv_audit a, b, ab, ba, d;
    jv_buf x, y;
    jv_audit_init(&a);
    jv_audit_init(&b);
    jv_audit_init(&ab);
    jv_audit_init(&ba);
    jv_audit_init(&d);
    jv_buf_init(&x);
    jv_buf_init(&y);
    assert_int_equal(append(&a, dot(1, 1), 10, "a", "", &d), JV_OK);
    assert_int_equal(append(&a, dot(1, 3), 30, "a", "", &d), JV_OK);
    assert_int_equal(append(&b, dot(1, 2), 20, "b", "", &d), JV_OK);
    assert_int_equal(append(&b, dot(1, 3), 30, "a", "", &d), JV_OK);
    /* Conflicting content for one id (an origin that equivocated): the
     * content that orders first wins, on either side. */
    assert_int_equal(append(&a, dot(5, 1), 50, "zed", "", &d), JV_OK);
    assert_int_equal(append(&b, dot(5, 1), 50, "amy", "", &d), JV_OK);
    assert_int_equal(append(&a, dot(6, 1), 70, "x", "", &d), JV_OK);
    assert_int_equal(append(&b, dot(6, 1), 60, "y", "", &d), JV_OK);
    assert_int_equal(jv_audit_join(&ab, &a), JV_OK);
    assert_int_equal(jv_audit_join(&ab, &b), JV_OK);
    assert_int_equal(jv_audit_join(&ba, &b), JV_OK);
    assert_int_equal(jv_audit_join(&ba, &a), JV_OK);
    snap(&ab, &x);
    snap(&ba, &y);
    assert_true(jt_buf_eq(&x, &y));
    assert_true(jv_audit_equal(&ab, &ba));
    assert_int_equal(ab.n, 5);
    jv_dot q = dot(5, 1);
    assert_string_equal(jv_audit_find(&ab, &q)->actor, "amy");
    q = dot(6, 1);
    assert_int_equal(jv_audit_find(&ab, &q)->time_ms, 60);
    /* Idempotent, also with itself. */
    assert_int_equal(jv_audit_join(&ab, &a), JV_OK);
    assert_int_equal(jv_audit_join(&ab, &ab), JV_OK);
    snap(&ab, &y);
    assert_true(jt_buf_eq(&x, &y));
    assert_false(jv_audit_equal(&a, &ab));
    jv_audit_fini(&a);
    jv_audit_fini(&b);
    jv_audit_fini(&ab);
    jv_audit_fini(&ba);
    jv_audit_fini(&d);
    jv_buf_fini(&x);
    jv_buf_fini(&y);
}

static void test_encoding_layout(void **state)
{
    (void)state;
    jv_audit s, d, back;
    jv_buf b;
    jv_audit_init(&s);
    jv_audit_init(&d);
    jv_audit_init(&back);
    jv_buf_init(&b);
    jv_dot id = dot(0xab, 7);
    assert_int_equal(jv_audit_append(&s, &id, 1000, jv_str_c("al"),
                                     jv_str_c("rm"), jv_str_c(""),
                                     jv_str_c("d"), &d),
                     JV_OK);
    snap(&s, &b);
    uint8_t want[64], *p = want;
    *p++ = 0x91;
    *p++ = 0x97;
    *p++ = 0xc4;
    *p++ = 32;
    memset(p, 0xab, 32);
    p += 32;
    *p++ = 0x07;
    *p++ = 0xcd;
    *p++ = 0x03;
    *p++ = 0xe8;
    memcpy(p,
           "\xa2"
           "al"
           "\xa2"
           "rm"
           "\xa0"
           "\xa1"
           "d",
           9);
    p += 9;
    assert_int_equal(b.len, (size_t)(p - want));
    assert_memory_equal(b.data, want, b.len);
    assert_int_equal(jv_audit_decode(b.data, b.len, &back), JV_OK);
    assert_true(jv_audit_equal(&s, &back));
    jv_audit_fini(&s);
    jv_audit_fini(&d);
    jv_audit_fini(&back);
    jv_buf_fini(&b);
}

static void entry(jv_mpw *w, jv_dot id, const char *actor, size_t actorlen,
                  const char *detail)
{
    jv_mpw_array(w, 7);
    jv_mpw_id(w, &id.id);
    jv_mpw_u64(w, id.n);
    jv_mpw_u64(w, 5);
    jv_mpw_str(w, actor, actorlen);
    jv_mpw_str(w, "act", 3);
    jv_mpw_str(w, "tgt", 3);
    jv_mpw_str(w, detail, strlen(detail));
}

static void test_decode_refuses(void **state)
{
    (void)state;
    jv_audit t, d;
    jv_buf b;
    jv_mpw w;
    jv_audit_init(&t);
    jv_audit_init(&d);
    jv_buf_init(&b);
    assert_int_equal(append(&t, dot(9, 9), 9, "t", "t", &d), JV_OK);

    jv_mpw_init(&w, &b);
    jv_mpw_array(&w, 2);
    entry(&w, dot(1, 1), "a", 1, "x");
    entry(&w, dot(1, 2), "b", 1, "y");
    jv_audit ok;
    jv_audit_init(&ok);
    assert_int_equal(jv_audit_decode(b.data, b.len, &ok), JV_OK);
    assert_int_equal(ok.n, 2);
    jv_audit_fini(&ok);
    jt_prefixes_refused(decode, b.data, b.len, &t, snap);
    jt_trailing_refused(decode, b.data, b.len, &t, snap);

    char big[JV_AUDIT_MAX_ACTOR + 1];
    memset(big, 'a', sizeof(big));
#define REFUSE(want, ...)                                  \
    do {                                                   \
        jv_buf_reset(&b);                                  \
        jv_mpw_init(&w, &b);                               \
        __VA_ARGS__;                                       \
        jt_refused(decode, b.data, b.len, &t, snap, want); \
    } while (0)
    REFUSE(JV_ENONCANON, jv_mpw_array(&w, 2); entry(&w, dot(1, 2), "a", 1, "");
           entry(&w, dot(1, 1), "a", 1, ""));
    REFUSE(JV_ENONCANON, jv_mpw_array(&w, 2); entry(&w, dot(1, 2), "a", 1, "");
           entry(&w, dot(1, 2), "a", 1, ""));
    REFUSE(JV_EDECODE, jv_mpw_array(&w, 1); entry(&w, dot(1, 0), "a", 1, ""));
    REFUSE(JV_EDECODE, jv_mpw_array(&w, 1);
           entry(&w, dot(1, 1), "a\xff", 2, ""));
    REFUSE(JV_EDECODE, jv_mpw_array(&w, 1);
           entry(&w, dot(1, 1), "a\0b", 3, ""));
    REFUSE(JV_ETOOBIG, jv_mpw_array(&w, 1);
           entry(&w, dot(1, 1), big, sizeof(big), ""));
    REFUSE(JV_ETOOBIG, jv_mpw_array(&w, JV_AUDIT_MAX_ENTRIES + 1));
    /* Wrong arity, and a bin where a text belongs. */
    REFUSE(JV_ETYPE, jv_mpw_array(&w, 1); jv_mpw_array(&w, 6);
           jv_id i = dot(1, 1).id; jv_mpw_id(&w, &i); jv_mpw_u64(&w, 1);
           jv_mpw_u64(&w, 1); jv_mpw_str(&w, "", 0); jv_mpw_str(&w, "", 0);
           jv_mpw_str(&w, "0123456789", 10));
    REFUSE(JV_ETYPE, jv_mpw_array(&w, 1); jv_mpw_array(&w, 7);
           jv_id i = dot(1, 1).id; jv_mpw_id(&w, &i); jv_mpw_u64(&w, 1);
           jv_mpw_u64(&w, 1); jv_mpw_bin(&w, "", 0); jv_mpw_str(&w, "", 0);
           jv_mpw_str(&w, "", 0); jv_mpw_str(&w, "0123", 4));
    /* A non-minimal str8 for a 3-byte text. */
    REFUSE(JV_ENONCANON, jv_mpw_array(&w, 1); jv_mpw_array(&w, 7);
           jv_id i = dot(1, 1).id; jv_mpw_id(&w, &i); jv_mpw_u64(&w, 1);
           jv_mpw_u64(&w, 1); jt_raw(&b,
                                     "\xd9\x03"
                                     "abc",
                                     5);
           jv_mpw_str(&w, "", 0); jv_mpw_str(&w, "", 0); jv_mpw_str(&w, "", 0));
#undef REFUSE
    static const uint8_t huge[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    jv_alloc_fail_after(0);
    assert_int_equal(jv_audit_decode(huge, sizeof(huge), &t), JV_ETOOBIG);
    assert_int_equal(jv_alloc_failed_count(), 0);
    jv_alloc_fail_reset();
    /* 1000 entries claimed with bytes for far fewer. */
    static const uint8_t many[64] = {0xdc, 0x03, 0xe8};
    jt_refused(decode, many, sizeof(many), &t, snap, JV_ETRUNC);

    assert_int_equal(t.n, 1);
    jv_audit_fini(&t);
    jv_audit_fini(&d);
    jv_buf_fini(&b);
}

/* ---- allocation failures ---------------------------------------------- */

typedef struct {
    jv_audit *s, *src, *delta;
    jv_dot id;
    const jv_buf *bytes;
} ctx;

static jv_err call_append(void *p)
{
    ctx *c = p;
    return append(c->s, c->id, 77, "carol", "detail", c->delta);
}

static jv_err call_join(void *p)
{
    ctx *c = p;
    return jv_audit_join(c->s, c->src);
}

static jv_err call_decode(void *p)
{
    ctx *c = p;
    return jv_audit_decode(c->bytes->data, c->bytes->len, c->s);
}

static void test_alloc_failures(void **state)
{
    (void)state;
    jv_audit s, src, d;
    jv_buf bytes;
    jv_audit_init(&s);
    jv_audit_init(&src);
    jv_audit_init(&d);
    jv_buf_init(&bytes);
    for (uint64_t i = 1; i <= 40; i++) {
        assert_int_equal(append(&s, dot(1, 2 * i), i, "s", "", &d), JV_OK);
        assert_int_equal(append(&src, dot(1, 3 * i), i, "r", "", &d), JV_OK);
    }
    while (s.n < s.cap)
        assert_int_equal(append(&s, dot(2, s.n), 1, "fill", "", &d), JV_OK);
    ctx c = {&s, &src, &d, dot(1, 1), &bytes};

    assert_true(jt_alloc_loop(call_append, &c, snap, &s) > 0);
    c.id = dot(1, 5);
    assert_true(jt_alloc_loop(call_append, &c, snap, &d) > 0);
    assert_string_equal(d.e[0].actor, "carol");

    /* New ids, and ids whose content src orders first ("r" < "s"). */
    assert_true(jt_alloc_loop(call_join, &c, snap, &s) > 0);
    jv_dot q = dot(1, 6);
    assert_string_equal(jv_audit_find(&s, &q)->actor, "r");
    q = dot(1, 9);
    assert_non_null(jv_audit_find(&s, &q));

    snap(&src, &bytes);
    assert_true(jt_alloc_loop(call_decode, &c, snap, &s) > 0);
    assert_true(jv_audit_equal(&s, &src));

    jv_audit_fini(&s);
    jv_audit_fini(&src);
    jv_audit_fini(&d);
    jv_buf_fini(&bytes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_and_find),
        cmocka_unit_test(test_append_existing_id),
        cmocka_unit_test(test_append_refuses),
        cmocka_unit_test(test_join),
        cmocka_unit_test(test_encoding_layout),
        cmocka_unit_test(test_decode_refuses),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
