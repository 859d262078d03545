/*
 * internal.h - helpers shared by the CRDT modules; not part of the API.
 *
 * Encoders append to a caller's buffer and, when they fail, must leave it as
 * it was (length and error flag), so they bracket their writes with
 * jv__enc_begin()/jv__enc_end(). Decoders bound every element count twice:
 * by a documented cap, and by the smallest encoding one element can have,
 * so that a few bytes can never make us allocate much.
 */
#ifndef JV_INTERNAL_H
#define JV_INTERNAL_H

#include "mp.h"
#include "vv.h"

static inline jv_err jv__enc_begin(const jv_buf *out, size_t *mark)
{
    /* A buffer that already failed stays failed (jv_buf's rule). */
    if (out->err)
        return JV_ENOMEM;
    *mark = out->len;
    return JV_OK;
}

static inline jv_err jv__enc_end(jv_buf *out, size_t mark, jv_err err)
{
    if (err == JV_OK)
        err = jv_buf_err(out);
    if (err) {
        out->len = mark;
        out->err = 0;
    }
    return err;
}

/* An array header of at most max elements, each of which needs at least
 * min_bytes of input. */
static inline jv_err jv__mpr_count(jv_mpr *r, uint32_t *n, uint32_t max,
                                   size_t min_bytes)
{
    uint32_t got;
    jv_err err = jv_mpr_array(r, &got, max);
    if (err)
        return err;
    if (got > jv_mpr_left(r) / min_bytes)
        return JV_ETRUNC;
    *n = got;
    return JV_OK;
}

/* Grows dst's capacity so that merging src into it cannot fail; dst's
 * content is unchanged either way. */
jv_err jv__vv_reserve_merge(jv_vv *dst, const jv_vv *src);

typedef int (*jv__cmp_fn)(const void *key, const void *elem);

/* The first index in [from, n) whose element is not less than key, found by
 * galloping from `from`: joins visit keys in order, so the next position is
 * usually close to the previous one and a small delta costs O(log n), a
 * full-state join O(n). */
static inline size_t jv__lower_bound(const void *base, size_t n, size_t size,
                                     size_t from, const void *key,
                                     jv__cmp_fn cmp)
{
    const char *b = base;
    if (from >= n || cmp(key, b + from * size) <= 0)
        return from;
    size_t lo = from, hi = from + 1, step = 1;
    while (hi < n && cmp(key, b + hi * size) > 0) {
        lo = hi;
        step *= 2;
        hi = n - lo > step ? lo + step : n;
    }
    /* b[lo] < key, and hi == n or b[hi] >= key. */
    lo++;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cmp(key, b + mid * size) > 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

#endif
