/*
 * rcache.h - answers of single-key reads (a counter, a config key, an
 * archive key), kept in memory while the database cannot have moved.
 *
 * A dashboard that polls the same keys asks the database the same
 * question thousands of times between two writes; each answer costs a
 * hand-over to a reader thread and back. This keeps the rendered answer
 * and serves it on the loop, as long as it is still what a read would say:
 *
 *   - answers are of a few kinds (counters, config, archive), each with
 *     a version of its own;
 *   - the node calls jv_rcache_moved() with the kinds whose data may have
 *     changed (after every writer job: those of its requests; after every
 *     job of its own that changes the data: all), and `quiet` says
 *     whether a change of a kind may be under way (a write of it queued
 *     or committing, such a job running);
 *   - a read takes a ticket (its kind's version) before it is submitted,
 *     and its answer is kept only if its kind did not move before it
 *     ended;
 *   - an answer is served only while its kind is quiet, at the version it
 *     was read at.
 *
 * Why that is exactly the database's state: a commit that changed the
 * kind and landed after the read either has been observed (the version
 * moved: not served) or has not (not quiet: not served); and one that
 * landed before the read is in it. So read-your-writes holds (an
 * acknowledged write moved the cache before its answer went out) and
 * reads never go back in time. Answers read while not quiet are not kept:
 * they could only be served after a move, which makes them out of date.
 * Kinds apart: metrics written without pause do not keep config answers
 * from being served.
 *
 * Memory: at most `budget` bytes of entries (key, answer and a small
 * header), and a table of budget / 32 bytes; a slot per hash of the key
 * (keyed SipHash: a client cannot aim keys at one slot), a colliding
 * answer replaces the slot's, and room is made by dropping entries in
 * turn. A budget of 0 turns it off.
 *
 * Loop thread only.
 */
#ifndef JV_RCACHE_H
#define JV_RCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "types.h"

typedef struct jv_rcache jv_rcache;

/* The kinds of answers: kind k is bit 1 << k of a mask. */
enum {
    JV_RC_COUNTER,
    JV_RC_CONFIG,
    JV_RC_ARCHIVE,
    JV_RC_KINDS
};
#define JV_RC_ALL ((1u << JV_RC_KINDS) - 1)

/* True while no change to the data of `kind` can be under way. */
typedef bool (*jv_rcache_quiet_fn)(void *arg, unsigned kind);

typedef struct {
    uint64_t hits;    /* answered from memory */
    uint64_t misses;  /* looked up and read from the database */
    uint64_t entries; /* held now (some may be out of date) */
    uint64_t bytes;   /* held now, of the budget */
} jv_rcache_stats;

/* budget: bytes of entries, 0 = off. */
jv_err jv_rcache_new(uint64_t budget, jv_rcache_quiet_fn quiet, void *arg,
                     jv_rcache **out);
void jv_rcache_free(jv_rcache *rc); /* accepts NULL */

/* Drops every entry and takes a new budget (a reload). */
jv_err jv_rcache_resize(jv_rcache *rc, uint64_t budget);

/* The data of the kinds in `kinds` (a mask) may have changed: nothing
 * held of them is served any more. */
void jv_rcache_moved(jv_rcache *rc, unsigned kinds);

/* The answer for (kind, key) when one is held and current; *text stays
 * valid until the next call on rc. A miss is counted. */
bool jv_rcache_get(jv_rcache *rc, unsigned kind, jv_str key, jv_str *text);

/* Before a read of kind: its ticket, 0 when its answer could not be
 * kept. */
uint64_t jv_rcache_ticket(const jv_rcache *rc, unsigned kind);

/* After the read: keeps its answer if ticket still stands (nothing moved
 * since, quiet). A failure to allocate only leaves it out. */
void jv_rcache_put(jv_rcache *rc, uint64_t ticket, unsigned kind, jv_str key,
                   const void *text, size_t len);

void jv_rcache_stats_get(const jv_rcache *rc, jv_rcache_stats *out);

#endif
