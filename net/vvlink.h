/*
 * vvlink.h - version vectors sent as differences (docs/protocol.md,
 * "Vectors as differences").
 *
 * Every message carries its sender's version vector, about 40 bytes per
 * origin: with a thousand writing nodes, 40 KB on every message whatever
 * it carries. So a message may carry only the entries that changed since
 * an earlier message of its sender to the same recipient, its `base`,
 * named by that message's stamp. Each node keeps, per node it talks with:
 *   - the vectors of its last JV_VVLINK_OUT messages to it, and which of
 *     them the other says it holds (the `heard` of its newest message);
 *   - the vectors of the last JV_VVLINK_IN messages it took from it, the
 *     newest of which it names as `heard` in what it sends back.
 * A message is based on the one the recipient last said it holds; a
 * recipient that no longer holds it (it restarted, or forgot the sender
 * for room) says so, and the next message carries the whole vector.
 *
 * Not thread-safe: the loop's. At most `max` nodes are kept (the least
 * recently used one is forgotten for room).
 */
#ifndef JV_VVLINK_H
#define JV_VVLINK_H

#include <stddef.h>
#include <stdint.h>

#include "types.h"
#include "vv.h"

#define JV_VVLINK_OUT 3
#define JV_VVLINK_IN  4

typedef struct jv_vvlinks jv_vvlinks;

jv_err jv_vvlinks_new(size_t max, jv_vvlinks **out);
void jv_vvlinks_free(jv_vvlinks *t); /* accepts NULL */

/* What the next message to `to` may be based on: *stamp (0: nothing, the
 * whole vector goes; base is then left empty) and that message's vector
 * copied into base; *heard: the newest stamp of to's messages whose vector
 * is kept here (0: none). base NULL: *heard only (a message whose vector
 * goes whole). */
jv_err jv_vvlinks_base(jv_vvlinks *t, const jv_id *to, uint64_t *stamp,
                       jv_vv *base, uint64_t *heard);

/* A message stamped `stamp` with the vector `vv` (whole, as the sender
 * holds it) went to `to`: a later one may be based on it. */
jv_err jv_vvlinks_sent(jv_vvlinks *t, const jv_id *to, uint64_t stamp,
                       const jv_vv *vv);

/* A proven message from `from`, stamped `stamp`, based on `base` (0: its
 * vector is whole) and naming `heard`: its difference, refs (entries of
 * the base by place) and *vv (the others), is made whole into *vv and kept
 * for later messages to be based on. JV_ENOTFOUND when the base is not
 * kept here or a ref names no place of it (everything is left as it was);
 * JV_ETOOBIG when the whole would have more than JV_VV_MAX_ENTRIES. */
jv_err jv_vvlinks_took(jv_vvlinks *t, const jv_id *from, uint64_t stamp,
                       uint64_t base, uint64_t heard, const jv_vv_ref *refs,
                       size_t nrefs, jv_vv *vv);

/* Forgets what is kept for id: neither side's next message is based on
 * anything before. */
void jv_vvlinks_forget(jv_vvlinks *t, const jv_id *id);

/* How many nodes are kept (tests). */
size_t jv_vvlinks_count(const jv_vvlinks *t);

#endif
