/*
 * orset.h - add-wins observed-remove set of keyed entries (the archive).
 *
 * Delta-state OR-Set with a causal context (Almeida, Shoker, Baquero,
 * "Delta State Replicated Data Types", 2018):
 *
 *   state = (E, C)   E: live (key, dot, stamp, value) tuples
 *                    C: every dot this replica has seen, added or removed
 *
 *   (E1,C1) join (E2,C2) = ((E1 & E2) | (E1 - C2) | (E2 - C1),  C1 | C2)
 *
 * add(k, v) by r creates the dot (r, next) and, in the same delta, covers
 * the dots of k that r observed: delta = ({(k, d, v)}, {d} | observed(k)).
 * remove(k) covers the observed dots: delta = ({}, observed(k)). A remove
 * only covers what it saw, so an add concurrent with it survives: add wins.
 *
 * No tombstones: a removed entry leaves only its dot in C, and C is kept
 * compact as a version vector plus a "cloud" of dots not yet contiguous
 * with it. A dot enters the cloud only when it is seen before its
 * predecessors of the same replica; once they arrive it is folded into the
 * vector. So C is bounded by the number of replicas plus the dots in
 * flight, not by the number of removes.
 *
 * A key may hold several live values after concurrent adds; the value shown
 * is the one with the greatest (stamp, dot).
 *
 * Canonical encoding: [entries, context] where entries is an array sorted by
 * key of [key (str), values] and values an array sorted by dot of
 * [replica (bin 32), n, stamp, value (bin)]; context is
 * [vector (vv.h encoding), cloud (array of [replica, n] sorted, each n
 * greater than vector[replica] + 1)]. The decoder refuses anything else
 * (unsorted, duplicates, empty value lists, keys that are empty, not valid
 * UTF-8 or too long, a dot held by two values, live dots not covered by
 * the context, uncompacted clouds, counts over the caps below); the encoder
 * refuses (JV_ETOOBIG) a set over the caps rather than write what cannot be
 * read back.
 *
 * Not thread-safe; one owner. A failed call leaves its outputs unchanged.
 */
#ifndef JV_ORSET_H
#define JV_ORSET_H

#include "vv.h"

#define JV_ORSET_MAX_KEY   1024
#define JV_ORSET_MAX_VALUE 65536
/* Caps of one encoding: keys; live values of one key (concurrent adds, at
 * most one per replica in a reachable state); dots in the cloud. */
#define JV_ORSET_MAX_ENTRIES (1u << 20)
#define JV_ORSET_MAX_VALUES  JV_VV_MAX_ENTRIES
#define JV_ORSET_MAX_CLOUD   (1u << 20)

typedef struct {
    jv_vv compact; /* every dot (id, n) with n <= compact[id] is seen */
    jv_dot *cloud; /* sorted; every n > compact[id] + 1 */
    size_t ncloud;
    size_t capcloud;
} jv_dotctx;

typedef struct {
    jv_dot dot;
    uint64_t stamp;
    uint8_t *value; /* owned; may be NULL when len == 0 */
    size_t len;
} jv_orset_val;

typedef struct {
    char *key; /* owned, NUL-terminated; no NUL inside */
    size_t keylen;
    jv_orset_val *v; /* sorted by dot; nv >= 1 */
    size_t nv;
} jv_orset_entry;

typedef struct {
    jv_orset_entry *e; /* sorted by key bytes */
    size_t n;
    size_t cap;
    jv_dotctx ctx;
} jv_orset;

void jv_dotctx_init(jv_dotctx *c);
void jv_dotctx_fini(jv_dotctx *c); /* accepts NULL */
bool jv_dotctx_contains(const jv_dotctx *c, const jv_dot *d);
/* Adds d (n >= 1, JV_EINVAL otherwise), folding the cloud into the vector
 * where it becomes contiguous. */
jv_err jv_dotctx_add(jv_dotctx *c, const jv_dot *d);
/* The greatest n of `id` seen (vector or cloud); 0 if none. */
uint64_t jv_dotctx_max(const jv_dotctx *c, const jv_id *id);

void jv_orset_init(jv_orset *s);
void jv_orset_fini(jv_orset *s); /* accepts NULL */
/* Adds (key, value) with a new dot (self, jv_dotctx_max(self) + 1) stamped
 * `stamp`, replacing the values of key this replica observed. delta is
 * replaced with the delta described above. Key 1..1024 bytes of valid UTF-8
 * without NUL, value at most 64 KiB and NULL only when len is 0 (JV_EINVAL
 * otherwise); JV_EOVERFLOW if self's dots are exhausted. If `dot_out` is
 * not NULL it receives the new dot. */
jv_err jv_orset_add(jv_orset *s, const jv_id *self, jv_str key,
                    const void *value, size_t len, uint64_t stamp,
                    jv_orset *delta, jv_dot *dot_out);
/* Removes the values of key this replica observed. JV_ENOTFOUND (no
 * delta) when key has none. */
jv_err jv_orset_remove(jv_orset *s, jv_str key, jv_orset *delta);
const jv_orset_entry *jv_orset_get(const jv_orset *s, jv_str key);
/* The value shown for an entry: greatest (stamp, dot). */
const jv_orset_val *jv_orset_entry_value(const jv_orset_entry *e);
jv_err jv_orset_join(jv_orset *dst, const jv_orset *src);
bool jv_orset_equal(const jv_orset *a, const jv_orset *b);
jv_err jv_orset_encode(const jv_orset *s, jv_buf *out);
jv_err jv_orset_decode(const void *p, size_t n, jv_orset *out);

#endif
