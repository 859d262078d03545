/*
 * hlc.h - hybrid logical clock.
 *
 * A stamp is 64 bits: the high 48 are physical milliseconds since the Unix
 * epoch, the low 16 a logical counter. Stamps issued by one clock strictly
 * increase, whatever the wall clock does (it may stall or step back). A
 * remote stamp more than max_skew_ms ahead of the local wall clock is
 * refused (JV_ESKEW) and never adopted, so one node with a wild clock
 * cannot drag every other clock into the future.
 *
 * The wall clock is passed in: this module reads no clock itself.
 * Not thread-safe; one owner.
 */
#ifndef JV_HLC_H
#define JV_HLC_H

#include <stdint.h>

#include "err.h"

#define JV_HLC_LOGICAL_BITS 16
#define JV_HLC_MAX_MS       ((UINT64_C(1) << 48) - 1)

typedef struct {
    uint64_t last;        /* greatest stamp issued or observed */
    uint64_t max_skew_ms; /* how far ahead a remote stamp may be */
} jv_hlc;

static inline uint64_t jv_hlc_make(uint64_t ms, uint16_t logical)
{
    return ms << JV_HLC_LOGICAL_BITS | logical;
}
static inline uint64_t jv_hlc_ms(uint64_t stamp)
{
    return stamp >> JV_HLC_LOGICAL_BITS;
}
static inline uint16_t jv_hlc_logical(uint64_t stamp)
{
    return (uint16_t)(stamp & 0xffff);
}

void jv_hlc_init(jv_hlc *c, uint64_t max_skew_ms);

/* Raises c->last to at least `stamp` without any skew check: for seeding a
 * clock from stamps this node already persisted (so a restart never goes
 * backwards). */
void jv_hlc_seed(jv_hlc *c, uint64_t stamp);

/* A new stamp for a local event: greater than every stamp issued or
 * observed. When the logical counter is exhausted, the physical part moves
 * one millisecond ahead. JV_EOVERFLOW if wall_ms or the result does not fit
 * in 48 bits (clock untouched). */
jv_err jv_hlc_now(jv_hlc *c, uint64_t wall_ms, uint64_t *out);

/* Checks a remote stamp against the skew bound without changing anything:
 * JV_ESKEW when jv_hlc_ms(remote) > wall_ms + max_skew_ms. */
jv_err jv_hlc_check(const jv_hlc *c, uint64_t wall_ms, uint64_t remote);

/* Merges a remote stamp (receive event): refuses it as jv_hlc_check() does,
 * leaving the clock untouched; otherwise c->last = max(c->last, remote). */
jv_err jv_hlc_observe(jv_hlc *c, uint64_t wall_ms, uint64_t remote);

#endif
