#include "crdt_test.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "alloc.h"

bool jt_buf_eq(const jv_buf *a, const jv_buf *b)
{
    return a->len == b->len &&
           (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

long jt_alloc_loop(jt_call_fn fn, void *ctx, jt_snap_fn snap,
                   const void *target)
{
    jv_buf before, after;
    jv_buf_init(&before);
    jv_buf_init(&after);
    snap(target, &before);
    for (long k = 0;; k++) {
        jv_alloc_fail_after(k);
        jv_err err = fn(ctx);
        long refused = jv_alloc_failed_count();
        jv_alloc_fail_reset();
        if (err == JV_OK) {
            jv_buf_fini(&before);
            jv_buf_fini(&after);
            return k;
        }
        assert_int_equal(err, JV_ENOMEM);
        assert_true(refused > 0);
        snap(target, &after);
        assert_true(jt_buf_eq(&before, &after));
        /* A bound, so that a call that never succeeds ends the test. */
        assert_true(k < 100000);
    }
}

jv_err jt_refused(jt_decode_fn dec, const void *p, size_t n, void *target,
                  jt_snap_fn snap, jv_err want)
{
    jv_buf before, after;
    jv_buf_init(&before);
    jv_buf_init(&after);
    snap(target, &before);
    jv_err err = dec(p, n, target);
    assert_int_not_equal(err, JV_OK);
    if (want != JV_OK)
        assert_int_equal(err, want);
    snap(target, &after);
    assert_true(jt_buf_eq(&before, &after));
    /* With every allocation refused, the input is still refused for what
     * it is, not for lack of memory, whenever the refusal comes before the
     * first allocation (always, for counts and headers). */
    jv_alloc_fail_after(0);
    jv_err err0 = dec(p, n, target);
    jv_alloc_fail_reset();
    assert_int_not_equal(err0, JV_OK);
    if (err0 != JV_ENOMEM)
        assert_int_equal(err0, err);
    snap(target, &after);
    assert_true(jt_buf_eq(&before, &after));
    jv_buf_fini(&before);
    jv_buf_fini(&after);
    return err;
}

void jt_prefixes_refused(jt_decode_fn dec, const void *p, size_t n,
                         void *target, jt_snap_fn snap)
{
    for (size_t k = 0; k < n; k++) {
        /* A copy of exactly k bytes, so that ASan sees any read past it. */
        uint8_t *q = jv_malloc(k);
        assert_non_null(q);
        if (k)
            memcpy(q, p, k);
        jt_refused(dec, q, k, target, snap, JV_OK);
        jv_free(q);
    }
}

void jt_trailing_refused(jt_decode_fn dec, const void *p, size_t n,
                         void *target, jt_snap_fn snap)
{
    static const uint8_t junk[] = {0x00, 0xc0, 0x91, 0x00};
    for (size_t extra = 1; extra <= sizeof(junk); extra++) {
        uint8_t *q = jv_malloc(n + extra);
        assert_non_null(q);
        memcpy(q, p, n);
        memcpy(q + n, junk, extra);
        jt_refused(dec, q, n + extra, target, snap, JV_ETRAILING);
        jv_free(q);
    }
}

void jt_raw(jv_buf *b, const void *p, size_t n)
{
    assert_int_equal(jv_buf_append(b, p, n), JV_OK);
}

void jt_byte(jv_buf *b, unsigned byte)
{
    uint8_t c = (uint8_t)byte;
    jt_raw(b, &c, 1);
}
