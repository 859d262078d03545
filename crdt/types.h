/*
 * types.h - the small value types every layer shares: replica ids, dots,
 * borrowed strings, growable byte buffers.
 */
#ifndef JV_TYPES_H
#define JV_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define JV_ID_LEN   32 /* Ed25519 public key */
#define JV_HASH_LEN 32 /* BLAKE2b-256 */
#define JV_SIG_LEN  64 /* Ed25519 detached signature */
#define JV_ID_HEX   (2 * JV_ID_LEN + 1)

/* A replica id: the replica's Ed25519 public key. */
typedef struct {
    uint8_t b[JV_ID_LEN];
} jv_id;

/* An event of one replica: (replica, n), n >= 1. */
typedef struct {
    jv_id id;
    uint64_t n;
} jv_dot;

/* A borrowed byte string; not owned, not NUL-terminated. */
typedef struct {
    const char *p;
    size_t n;
} jv_str;

/* A growable byte buffer. `err` is sticky: once an append fails every later
 * append is a no-op and jv_buf_err() reports JV_ENOMEM. */
typedef struct {
    uint8_t *data;
    size_t len;
    size_t cap;
    int err;
} jv_buf;

int jv_id_cmp(const jv_id *a, const jv_id *b);
bool jv_id_eq(const jv_id *a, const jv_id *b);
bool jv_id_is_zero(const jv_id *id);
/* Lower-case hex, NUL-terminated, into out[JV_ID_HEX]. */
void jv_id_hex(const jv_id *id, char out[JV_ID_HEX]);
/* Parses exactly 64 hex digits (either case). JV_EINVAL otherwise. */
jv_err jv_id_from_hex(const char *s, size_t n, jv_id *out);

/* Orders by id, then n. */
int jv_dot_cmp(const jv_dot *a, const jv_dot *b);

jv_str jv_str_c(const char *s); /* from a NUL-terminated string */
bool jv_str_eq(jv_str a, jv_str b);
/* memcmp order, shorter first on a common prefix. */
int jv_str_cmp(jv_str a, jv_str b);
/* True when s contains no NUL byte and is valid UTF-8. */
bool jv_str_valid_utf8(jv_str s);
/* The length of s cut to at most max bytes without splitting a UTF-8
 * sequence (s itself valid UTF-8). */
size_t jv_utf8_cut(jv_str s, size_t max);

/* Hex of n bytes into out (2n+1 bytes, NUL-terminated). */
void jv_hex(const uint8_t *p, size_t n, char *out);
/* Parses exactly 2*n hex digits from s[0..slen) into out[n]. */
jv_err jv_unhex(const char *s, size_t slen, uint8_t *out, size_t n);

void jv_buf_init(jv_buf *b);
void jv_buf_fini(jv_buf *b);
void jv_buf_reset(jv_buf *b); /* len = 0, keeps the allocation */
jv_err jv_buf_reserve(jv_buf *b, size_t extra);
jv_err jv_buf_append(jv_buf *b, const void *p, size_t n);
jv_err jv_buf_err(const jv_buf *b);

#endif
