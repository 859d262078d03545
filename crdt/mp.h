/*
 * mp.h - canonical msgpack: msgpack-c's packer for writing, a strict
 * cursor reader for reading.
 *
 * Writing goes through msgpack-c's packer, which always picks the smallest
 * encoding of a value; so a value has exactly one byte form ("canonical").
 *
 * Reading does not use msgpack-c's unpacker: msgpack-c 4.0.0 allocates
 * count x 24 bytes for a container before reading its elements, and builds a
 * generic object tree we would walk again anyway. The reader below follows
 * the schema the caller expects, allocates nothing, and refuses
 *   - a short input                          (JV_ETRUNC),
 *   - a type other than the one expected     (JV_ETYPE),
 *   - a non-minimal encoding of a value      (JV_ENONCANON),
 *   - a length over the caller's bound, or a container count larger than
 *     the bytes that remain                  (JV_ETOOBIG / JV_ETRUNC).
 * Nesting is bounded by construction: decoders follow a fixed schema and
 * never recurse on data. Floats, ext and maps never occur in our formats and
 * are refused as JV_ETYPE.
 *
 * On error the reader's position is unspecified; decoders build into
 * temporaries and only touch their output on success.
 */
#ifndef JV_MP_H
#define JV_MP_H

#include <msgpack.h>

#include "types.h"

typedef struct {
    msgpack_packer pk;
    jv_buf *buf; /* borrowed; receives the bytes */
} jv_mpw;

/* Appends to `buf` (not owned). Errors are sticky in buf->err. */
void jv_mpw_init(jv_mpw *w, jv_buf *buf);
void jv_mpw_array(jv_mpw *w, uint32_t n);
void jv_mpw_u64(jv_mpw *w, uint64_t v);
void jv_mpw_bool(jv_mpw *w, bool v);
void jv_mpw_nil(jv_mpw *w);
void jv_mpw_str(jv_mpw *w, const char *p, size_t n);
void jv_mpw_jstr(jv_mpw *w, jv_str s);
void jv_mpw_bin(jv_mpw *w, const void *p, size_t n);
void jv_mpw_id(jv_mpw *w, const jv_id *id);
void jv_mpw_dot(jv_mpw *w, const jv_dot *d); /* [id, n] */
/* JV_OK, or JV_ENOMEM if any append failed since the buffer was reset. */
jv_err jv_mpw_err(const jv_mpw *w);
/* The bytes jv_mpw_u64 and jv_mpw_array write, to weigh an encoding
 * before making it. */
size_t jv_mp_u64_len(uint64_t v);
size_t jv_mp_array_len(uint32_t n);

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
} jv_mpr;

void jv_mpr_init(jv_mpr *r, const void *buf, size_t len);
size_t jv_mpr_left(const jv_mpr *r);
/* JV_ETRAILING when bytes remain. */
jv_err jv_mpr_end(const jv_mpr *r);

/* An array header; *n is checked against the bytes left (every element
 * takes at least one byte) and against max. */
jv_err jv_mpr_array(jv_mpr *r, uint32_t *n, uint32_t max);
/* An array header of exactly n elements. */
jv_err jv_mpr_array_n(jv_mpr *r, uint32_t n);
jv_err jv_mpr_u64(jv_mpr *r, uint64_t *v);
jv_err jv_mpr_bool(jv_mpr *r, bool *v);
jv_err jv_mpr_nil(jv_mpr *r);
/* True if the next value is nil (does not consume). */
bool jv_mpr_is_nil(const jv_mpr *r);
/* A str of at most maxlen bytes; s borrows from the input. The reader does
 * not check UTF-8; callers that need it use jv_str_valid_utf8(). */
jv_err jv_mpr_str(jv_mpr *r, jv_str *s, size_t maxlen);
/* A bin of at most maxlen bytes, borrowed from the input. */
jv_err jv_mpr_bin(jv_mpr *r, const uint8_t **p, size_t *n, size_t maxlen);
/* A bin of exactly n bytes, copied into out. */
jv_err jv_mpr_bin_fixed(jv_mpr *r, void *out, size_t n);
jv_err jv_mpr_id(jv_mpr *r, jv_id *id);
jv_err jv_mpr_dot(jv_mpr *r, jv_dot *d); /* [id, n], n >= 1 */
/* Skips one complete value of any allowed type, at most `depth` levels
 * deep. For forward-compatible message fields. */
jv_err jv_mpr_skip(jv_mpr *r, unsigned depth);

#endif
