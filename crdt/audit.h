/*
 * audit.h - the audit log: a grow-only set of immutable entries.
 *
 * Each entry is identified by the dot of the operation that appended it
 * (origin replica, sequence number), which no other entry shares. Join is
 * set union. Two entries with one id but different content can only come
 * from an origin that signed two different operations for one sequence
 * number; join then keeps the one whose content orders first (time, then
 * actor, action, target, detail, bytewise), so join stays commutative even
 * against such input.
 *
 * Canonical encoding: an array of entries sorted by id, each
 * [origin (bin 32), seq, time_ms, actor, action, target, detail] with the
 * four texts as str. The decoder refuses unsorted or duplicate ids, zero
 * sequence numbers, texts over the limits below or not valid UTF-8, and
 * more than JV_AUDIT_MAX_ENTRIES entries (the encoder refuses such a set
 * with JV_ETOOBIG rather than write what cannot be read back).
 *
 * Not thread-safe; one owner. A failed call leaves its outputs unchanged.
 */
#ifndef JV_AUDIT_H
#define JV_AUDIT_H

#include "mp.h"

#define JV_AUDIT_MAX_ACTOR  256
#define JV_AUDIT_MAX_ACTION 256
#define JV_AUDIT_MAX_TARGET 1024
#define JV_AUDIT_MAX_DETAIL 16384
/* Entries in one encoded set (a whole-state export; logs travel as
 * batches). */
#define JV_AUDIT_MAX_ENTRIES (1u << 20)

typedef struct {
    jv_dot id;
    uint64_t time_ms;
    /* NUL-terminated, valid UTF-8 without NUL bytes. Owned by the set: the
     * four share one allocation, released by jv_audit_fini() only. */
    char *actor;
    char *action;
    char *target;
    char *detail;
} jv_audit_entry;

typedef struct {
    jv_audit_entry *e; /* sorted by id */
    size_t n;
    size_t cap;
} jv_audit;

void jv_audit_init(jv_audit *s);
void jv_audit_fini(jv_audit *s); /* accepts NULL */
/* Appends the entry with the given id (n >= 1). Texts are copied; they must
 * be valid UTF-8 within the limits above (JV_EINVAL otherwise). delta is
 * replaced with the one-entry set. Appending an id already present changes
 * nothing in s and returns the entry s holds for it as delta (so that s
 * joined with delta is still s, whatever texts were passed). */
jv_err jv_audit_append(jv_audit *s, const jv_dot *id, uint64_t time_ms,
                       jv_str actor, jv_str action, jv_str target,
                       jv_str detail, jv_audit *delta);
const jv_audit_entry *jv_audit_find(const jv_audit *s, const jv_dot *id);
jv_err jv_audit_join(jv_audit *dst, const jv_audit *src);
bool jv_audit_equal(const jv_audit *a, const jv_audit *b);
jv_err jv_audit_encode(const jv_audit *s, jv_buf *out);
jv_err jv_audit_decode(const void *p, size_t n, jv_audit *out);

#endif
