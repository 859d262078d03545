/*
 * crdt_test.h - checks the unit tests of crdt/ share: the allocation-failure
 * loop and the "refused, target untouched" check for decoders.
 *
 * A target is compared through its encoding (a `snap` function), so "left
 * unchanged" means byte-identical export, the same standard replicas are
 * held to.
 */
#ifndef JV_CRDT_TEST_H
#define JV_CRDT_TEST_H

#include <stdbool.h>
#include <stddef.h>

#include "mp.h"

/* Writes the canonical encoding of target into out (replacing it). */
typedef void (*jt_snap_fn)(const void *target, jv_buf *out);
/* The call under test, on whatever ctx holds. */
typedef jv_err (*jt_call_fn)(void *ctx);
/* A decoder of the common shape. */
typedef jv_err (*jt_decode_fn)(const void *p, size_t n, void *out);

/* Calls fn(ctx) with allocations failing after k = 0, 1, 2, ... successful
 * ones, until it succeeds. Every failure must be JV_ENOMEM and leave
 * snap(target) as it was. Returns how many calls failed (so a test can
 * assert the call did allocate). */
long jt_alloc_loop(jt_call_fn fn, void *ctx, jt_snap_fn snap,
                   const void *target);

/* Decoding p[0..n) into target must fail (with `want`, unless want is
 * JV_OK, meaning any error), leave target's encoding unchanged, and, with
 * allocation disabled, still fail the same way: the refusal needs no
 * memory. Returns the error. */
jv_err jt_refused(jt_decode_fn dec, const void *p, size_t n, void *target,
                  jt_snap_fn snap, jv_err want);

/* Every proper prefix of a valid encoding is refused. */
void jt_prefixes_refused(jt_decode_fn dec, const void *p, size_t n,
                         void *target, jt_snap_fn snap);

/* The same bytes with junk appended are refused with JV_ETRAILING. */
void jt_trailing_refused(jt_decode_fn dec, const void *p, size_t n,
                         void *target, jt_snap_fn snap);

/* Appends raw bytes (for hand-made, possibly malformed encodings). */
void jt_raw(jv_buf *b, const void *p, size_t n);
void jt_byte(jv_buf *b, unsigned byte);

bool jt_buf_eq(const jv_buf *a, const jv_buf *b);

#endif
