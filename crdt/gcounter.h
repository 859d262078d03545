/*
 * gcounter.h - grow-only counter and PN-counter.
 *
 * G-Counter state: replica id -> that replica's count; join is pointwise max,
 * value is the sum. PN-Counter: a pair of G-Counters (increments P,
 * decrements N); value P - N.
 *
 * Deltas: an increment by replica r returns the delta {r: new count}, itself
 * a counter state; joining it equals joining the full state that produced it.
 *
 * Canonical encoding: G-Counter as a version vector (vv.h); PN-Counter as
 * the array [P, N].
 *
 * Not thread-safe; one owner. A failed call leaves its outputs unchanged.
 */
#ifndef JV_GCOUNTER_H
#define JV_GCOUNTER_H

#include "vv.h"

typedef struct {
    jv_vv v;
} jv_gcounter;

typedef struct {
    jv_gcounter p;
    jv_gcounter n;
} jv_pncounter;

void jv_gcounter_init(jv_gcounter *c);
void jv_gcounter_fini(jv_gcounter *c); /* accepts NULL */
/* Sum of all shares; JV_EOVERFLOW when it does not fit in 64 bits. */
jv_err jv_gcounter_value(const jv_gcounter *c, uint64_t *out);
/* One replica's share. */
uint64_t jv_gcounter_get(const jv_gcounter *c, const jv_id *replica);
/* Adds by (>= 1) to self's share. delta (initialised by the caller) is
 * replaced with {self: new share}. JV_EINVAL for by == 0, JV_EOVERFLOW if the
 * share would wrap. */
jv_err jv_gcounter_inc(jv_gcounter *c, const jv_id *self, uint64_t by,
                       jv_gcounter *delta);
jv_err jv_gcounter_join(jv_gcounter *dst, const jv_gcounter *src);
bool jv_gcounter_equal(const jv_gcounter *a, const jv_gcounter *b);
jv_err jv_gcounter_encode(const jv_gcounter *c, jv_buf *out);
/* Decodes exactly the n bytes at p (trailing bytes refused) into out,
 * replacing it; out untouched on failure. */
jv_err jv_gcounter_decode(const void *p, size_t n, jv_gcounter *out);

void jv_pncounter_init(jv_pncounter *c);
void jv_pncounter_fini(jv_pncounter *c); /* accepts NULL */
/* P - N; JV_EOVERFLOW when it does not fit in int64_t. */
jv_err jv_pncounter_value(const jv_pncounter *c, int64_t *out);
/* Adds by (!= 0, may be negative) for self: a positive `by` grows self's P
 * share, a negative one its N share. delta is replaced with the changed
 * share only. */
jv_err jv_pncounter_add(jv_pncounter *c, const jv_id *self, int64_t by,
                        jv_pncounter *delta);
jv_err jv_pncounter_join(jv_pncounter *dst, const jv_pncounter *src);
bool jv_pncounter_equal(const jv_pncounter *a, const jv_pncounter *b);
jv_err jv_pncounter_encode(const jv_pncounter *c, jv_buf *out);
jv_err jv_pncounter_decode(const void *p, size_t n, jv_pncounter *out);

/*
 * Exact totals. A share is at most 2^63 - 1 (what one origin can sign), and
 * a cluster may hold any number of origins, so a sum of shares can leave
 * every 64-bit type while each history is valid. A jv_count keeps the sums
 * P and N in 128 bits (two words: no compiler extension): 2^64 shares of
 * 2^63 - 1 still fit, so no merge of valid histories can overflow it, and
 * the total P - N is exact. Readers show it with jv_count_i64() when it
 * fits, and with jv_count_format() in every case.
 */
typedef struct {
    uint64_t hi, lo;
} jv_u128;

typedef struct {
    jv_u128 p; /* sum of the increment shares */
    jv_u128 n; /* sum of the decrement shares */
} jv_count;

/* Longest text of a total: sign and 39 digits, plus NUL. */
#define JV_COUNT_TEXT 41

/* Adds one replica's shares (p, n) to c. Cannot fail. */
void jv_count_add(jv_count *c, uint64_t p, uint64_t n);
/* The total of every share of the PN-Counter. */
void jv_pncounter_count(const jv_pncounter *pn, jv_count *out);
/* <0, 0, >0 as the total of a is below, equal to, above that of b. */
int jv_count_cmp(const jv_count *a, const jv_count *b);
/* P - N as an int64_t when it lies within [lo, hi] (lo <= 0 <= hi);
 * JV_EOVERFLOW (out untouched) otherwise. */
jv_err jv_count_i64(const jv_count *c, int64_t lo, int64_t hi, int64_t *out);
/* P - N in decimal ("-" for a negative total) into buf, NUL-terminated;
 * returns the length. */
size_t jv_count_format(const jv_count *c, char buf[JV_COUNT_TEXT]);

#endif
