/*
 * vv.h - version vectors: replica id -> greatest sequence number seen.
 *
 * Entries are kept sorted by id with seq > 0 (a missing entry means 0), so
 * two equal vectors have equal arrays and equal encodings. The same map with
 * pointwise-max join is also the state of a G-Counter (gcounter.h).
 *
 * Canonical encoding: an array of [id (bin 32), seq (uint)] pairs, sorted by
 * id, seq >= 1. The decoder refuses unsorted or duplicate ids and zero seqs.
 *
 * Not thread-safe; one owner. Functions that fail leave their output as it
 * was.
 */
#ifndef JV_VV_H
#define JV_VV_H

#include "mp.h"
#include "types.h"

typedef struct {
    jv_id id;
    uint64_t seq;
} jv_vv_entry;

typedef struct {
    jv_vv_entry *v; /* sorted by id, seq > 0 */
    size_t n;
    size_t cap;
} jv_vv;

typedef enum {
    JV_VV_EQUAL,
    JV_VV_BEFORE,    /* a < b: b has seen everything a has, and more */
    JV_VV_AFTER,     /* a > b */
    JV_VV_CONCURRENT /* each has seen something the other has not */
} jv_vv_order;

/* A run of sequence numbers (from, to] of one replica. */
typedef struct {
    jv_id id;
    uint64_t from; /* exclusive */
    uint64_t to;   /* inclusive */
} jv_vv_range;

/* Bound on entries a decoder accepts (replicas in one cluster). */
#define JV_VV_MAX_ENTRIES 4096

void jv_vv_init(jv_vv *vv);
void jv_vv_fini(jv_vv *vv); /* accepts NULL; leaves an empty vector */
void jv_vv_clear(jv_vv *vv);
jv_err jv_vv_copy(jv_vv *dst, const jv_vv *src);

uint64_t jv_vv_get(const jv_vv *vv, const jv_id *id);
/* Sets id's entry to seq exactly (seq 0 removes it). */
jv_err jv_vv_set(jv_vv *vv, const jv_id *id, uint64_t seq);
/* Sets id's entry to max(current, seq). */
jv_err jv_vv_raise(jv_vv *vv, const jv_id *id, uint64_t seq);
/* Pointwise max into dst. On failure dst is unchanged. */
jv_err jv_vv_merge(jv_vv *dst, const jv_vv *src);
/* The entries of vv that differ from base's (new ids, other seqs), so that
 * jv_vv_patch(base, diff) gives vv back: into out (replaced). JV_ESTATE
 * when base has an id vv lacks, which no difference can say. */
jv_err jv_vv_diff(const jv_vv *vv, const jv_vv *base, jv_vv *out);
/* Sets every id of diff to its seq in dst. On failure dst is unchanged. */
jv_err jv_vv_patch(jv_vv *dst, const jv_vv *diff);

/* An entry of a difference named by its place in the base (ids sorted)
 * instead of by its 32-byte id, which both sides hold already: a few
 * bytes instead of about 40 on the wire. */
typedef struct {
    uint32_t idx;
    uint64_t seq;
} jv_vv_ref;

/* jv_vv_diff split in two: the entries whose id base has, as references
 * into base (ascending idx) in *refs (jv_malloc'd, NULL when *nrefs is 0;
 * free with jv_free), and those it lacks in rest (replaced). */
jv_err jv_vv_diff_refs(const jv_vv *vv, const jv_vv *base, jv_vv_ref **refs,
                       size_t *nrefs, jv_vv *rest);
/* Sets dst's entry at each ref's idx to its seq: dst a copy of the base
 * the refs were made against, so that the places are the same. JV_ENOTFOUND
 * (dst unchanged) when an idx is not in dst or a seq is 0. */
jv_err jv_vv_patch_refs(jv_vv *dst, const jv_vv_ref *refs, size_t n);

jv_vv_order jv_vv_compare(const jv_vv *a, const jv_vv *b);
bool jv_vv_equal(const jv_vv *a, const jv_vv *b);

/* What `have` lacks compared with `other`: one range (have[id], other[id]]
 * for every id where other is ahead, sorted by id. *out is allocated with
 * jv_malloc (free with jv_free; NULL when *n == 0). */
jv_err jv_vv_lacks(const jv_vv *have, const jv_vv *other, jv_vv_range **out,
                   size_t *n);
/* Total number of sequence numbers `have` lacks compared with `other`
 * (saturates at UINT64_MAX). */
uint64_t jv_vv_missing(const jv_vv *have, const jv_vv *other);

void jv_vv_encode(const jv_vv *vv, jv_mpw *w);
/* The bytes jv_vv_encode writes. */
size_t jv_vv_encoded_len(const jv_vv *vv);
/* Decodes one vector at the reader's position into out (replacing it) on
 * success; out untouched on failure. */
jv_err jv_vv_decode(jv_mpr *r, jv_vv *out);

#endif
