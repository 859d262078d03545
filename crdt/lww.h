/*
 * lww.h - last-writer-wins registers, and a map of them (configuration).
 *
 * A register holds a value with the HLC stamp of the write and the replica
 * that wrote it. Registers are totally ordered by (stamp, replica id, value
 * bytes); join keeps the greater. The replica id breaks stamp ties, and the
 * value bytes break the tie no honest replica can produce (one replica, one
 * stamp, two values), so the winner never depends on arrival order.
 *
 * The map joins key by key. Canonical encoding: an array of
 * [key (str), value (bin), stamp, replica (bin 32)] sorted by key bytes; the
 * decoder refuses unsorted or duplicate keys, keys that are empty, not
 * valid UTF-8 or over JV_LWW_MAX_KEY, values over JV_LWW_MAX_VALUE, and
 * more than JV_LWW_MAX_ENTRIES entries (which the encoder refuses to write,
 * JV_ETOOBIG).
 *
 * Not thread-safe; one owner. A failed call leaves its outputs unchanged.
 */
#ifndef JV_LWW_H
#define JV_LWW_H

#include "mp.h"

#define JV_LWW_MAX_KEY   1024
#define JV_LWW_MAX_VALUE 65536
/* Keys in one encoded map. */
#define JV_LWW_MAX_ENTRIES (1u << 20)

typedef struct {
    uint64_t stamp;
    jv_id replica;
    uint8_t *value; /* owned; may be NULL when len == 0 */
    size_t len;
} jv_lww_reg;

typedef struct {
    char *key; /* owned, NUL-terminated; no NUL inside */
    size_t keylen;
    jv_lww_reg reg;
} jv_lww_entry;

typedef struct {
    jv_lww_entry *e; /* sorted by key bytes */
    size_t n;
    size_t cap;
} jv_lwwmap;

/* <0, 0, >0 as a orders before, equal to, after b. */
int jv_lww_cmp(const jv_lww_reg *a, const jv_lww_reg *b);
/* The same order on registers given as parts (the one place it is
 * written: storage's SQL calls it too, see storage/apply.c). */
int jv_lww_order(uint64_t a_stamp, const jv_id *a_replica, jv_str a_value,
                 uint64_t b_stamp, const jv_id *b_replica, jv_str b_value);

void jv_lwwmap_init(jv_lwwmap *m);
void jv_lwwmap_fini(jv_lwwmap *m); /* accepts NULL */
/* Writes key := value stamped (stamp, self). delta is replaced with the
 * one-key map holding that register; s is joined with it, so a stamp that
 * does not beat the current register changes nothing in s. Key: 1..1024
 * bytes of valid UTF-8 without NUL (it is encoded as a msgpack str); value
 * at most 64 KiB, NULL only when len is 0 (JV_EINVAL otherwise). */
jv_err jv_lwwmap_set(jv_lwwmap *m, jv_str key, const void *value, size_t len,
                     uint64_t stamp, const jv_id *self, jv_lwwmap *delta);
const jv_lww_reg *jv_lwwmap_get(const jv_lwwmap *m, jv_str key);
jv_err jv_lwwmap_join(jv_lwwmap *dst, const jv_lwwmap *src);
bool jv_lwwmap_equal(const jv_lwwmap *a, const jv_lwwmap *b);
jv_err jv_lwwmap_encode(const jv_lwwmap *m, jv_buf *out);
jv_err jv_lwwmap_decode(const void *p, size_t n, jv_lwwmap *out);

#endif
