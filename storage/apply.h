/*
 * apply.h - changing replicated state: batches from peers, and the node's
 * own writes.
 *
 * Every call here is one SQLite transaction: the log of signed batches, the
 * materialized state of the four data types and the version vector change
 * together or not at all. A failed call (JV_ESTORAGE, JV_EIO, JV_ENOMEM...)
 * changes nothing.
 *
 * Materialized state per kind (what applying an operation does):
 *   counter  shares[name][origin] = (max(p), max(n))        PN-Counter join
 *   audit    insert entry (origin, seq) if absent            grow-only set
 *   config   register[key] = greater of (stamp, replica, value)      LWW
 *   archive  add: insert (key, dot) unless the dot is in the causal context;
 *            delete entries whose dots the op covers; add the op's dots to
 *            the context (compact vector + cloud)         OR-Set delta join
 *   trust    register[node] = greater of (stamp, replica, trusted, name)
 *   cluster  key add: insert (id, ...) if absent (of two contents for one
 *   keys     id the smaller tuple stays); revoke: insert id into the
 *            revocations if absent (the earliest stays). A key is usable
 *            while its id has no revocation: remove-wins, any order.
 *
 * Blocking: disk I/O (and fsync, depending on jv_sync). Call on the thread
 * that owns the connection; never on an event loop.
 */
#ifndef JV_APPLY_H
#define JV_APPLY_H

#include "batch.h"
#include "gcounter.h"
#include "store.h"

/* A batch received from the network, already strictly decoded and its
 * signature verified by the caller (jv_batch_verify); the store re-checks
 * its place in the origin's chain. Nothing here is copied beyond the
 * call. */
typedef struct {
    const uint8_t *body;
    size_t len;
    const uint8_t *sig;  /* JV_SIG_LEN bytes */
    const uint8_t *hash; /* JV_HASH_LEN bytes: jv_batch_hash(body) */
    const jv_batch *batch;
} jv_store_batch;

/* Hold batches of origins that are not on the trust list (and not this
 * node) instead of applying them. */
#define JV_APPLY_REQUIRE_TRUST 0x1u
/* For the writer: a request with no batches and this flag calls
 * jv_store_apply with none, to apply held batches that have become
 * applicable with time (their stamp is now within the skew bound). */
#define JV_APPLY_RECHECK 0x2u

/* Bounds of the held-aside area; past them a batch is dropped
 * (JV_ETOOBIG) and anti-entropy fetches it again later. The whole area: */
#define JV_HELD_MAX_BATCHES 16384
#define JV_HELD_MAX_BYTES   (64u << 20)
/* One origin's share, so that no origin takes the area alone: */
#define JV_HELD_ORIGIN_MAX_BATCHES 4096
#define JV_HELD_ORIGIN_MAX_BYTES   (16u << 20)
/* Batches of untrusted origins, all together; they never crowd out a
 * trusted origin's: when the area is full, the oldest untrusted ones make
 * room for a trusted origin's batch. They expire after a day: an origin
 * nobody trusted by then is sent again by anti-entropy if it ever is. */
#define JV_HELD_UNTRUSTED_MAX_BATCHES 4096
#define JV_HELD_UNTRUSTED_MAX_BYTES   (16u << 20)
#define JV_HELD_UNTRUSTED_TTL_MS      (24ull * 3600 * 1000)

typedef struct {
    size_t applied;  /* batches applied, released ones included */
    size_t released; /* held batches applied because a gap filled, their
                        origin became trusted or their stamp came within
                        the skew bound */
    uint64_t ops;    /* operations applied */
    uint64_t keys;   /* ... of which cluster API key adds and revocations */
} jv_apply_stats;

/* Applies n batches in one transaction. results[i] (caller's array of n):
 *   JV_OK          applied
 *   JV_EDUP        already applied, or already held: nothing changed
 *   JV_EGAP        held aside until its origin's gap fills
 *   JV_EUNTRUSTED  held aside until its origin is trusted
 *   JV_ESKEW       held aside until its stamp is within the clock-skew
 *                  bound (jv_store_set_max_skew)
 *   JV_ELINK       refused: does not chain onto the origin's log
 *   JV_EEQUIVOCATE refused: the origin already has a different batch for
 *                  these sequence numbers
 *   JV_ETOOBIG     dropped: the held-aside area is full
 *   JV_EINVAL      dropped: the jv_store_batch lacks a field or ops
 * After the given batches, held batches that have become applicable (gap
 * filled, origin now trusted) are applied in the same transaction.
 * Returns JV_OK when the transaction committed (see results), or the
 * storage error that rolled it back. stats may be NULL. */
jv_err jv_store_apply(jv_store *st, const jv_store_batch *b, size_t n,
                      unsigned flags, jv_err *results, jv_apply_stats *stats);

/* A local write before it becomes an operation. `op` holds the fields the
 * caller knows (see batch.h); the store computes the rest from current
 * state inside the transaction:
 *   JV_OP_COUNTER      caller: counter.name and `by` (!= 0; < 0 decrements)
 *                      store:  counter.p / counter.n = new totals of self
 *                      (each at most 2^63 - 1: JV_EOVERFLOW beyond; the
 *                      counter's total has no bound)
 *   JV_OP_AUDIT        caller: all fields (time_ms <= the batch stamp)
 *   JV_OP_CONFIG       caller: all fields (stamp from the node's HLC)
 *   JV_OP_ARCHIVE_ADD  caller: key, value, stamp
 *                      store:  dot_n (next archive dot of self), removes
 *                              (the key's dots currently present)
 *   JV_OP_ARCHIVE_RM   caller: key; store: removes (JV_ENOTFOUND if none)
 *   JV_OP_TRUST        caller: all fields
 *   JV_OP_KEY_ADD, JV_OP_KEY_REVOKE  caller: all fields
 * After the call `res` holds what the caller may report back. */
typedef struct {
    jv_op op;
    int64_t by;
    struct {
        jv_count counter_total; /* counter: node's view of the total
                                   after (exact, see gcounter.h) */
        jv_dot dot;             /* archive add: the new dot */
        uint64_t seq;           /* the operation's sequence number in the
                                   log (numbered after coalescing; an audit
                                   entry's id is (self, seq)); 0 if
                                   coalesced away */
    } res;
} jv_intent;

/* Runs inside a write group's savepoint: node-local changes (keys,
 * sessions, peers) that must commit atomically with the group's
 * operations. A non-OK return drops the whole group. */
typedef jv_err (*jv_local_fn)(jv_store *st, void *arg);

/* The writes of one request: all applied, or none. */
typedef struct {
    jv_intent *intents;
    size_t n;
    jv_local_fn local; /* optional; runs before the intents */
    void *local_arg;
    jv_err result;       /* out: JV_OK or why the group was dropped */
    size_t failed_index; /* out: the intent that failed (if result != OK
                            and local succeeded) */
} jv_write_group;

typedef struct {
    uint64_t first_seq; /* sequence numbers of the new operations */
    uint64_t last_seq;  /* (0, 0 when every group was dropped) */
    size_t nbatches;    /* batches created */
    size_t nops;        /* operations after coalescing */
    size_t groups_ok;
    uint64_t released_keys; /* cluster key operations of held batches a
                               trust written here released */
} jv_commit_info;

/* Turns the groups into operations of this node (kp->pk must be the
 * store's self id), coalesces what it can (several counter changes of one
 * name, several sets of one config key, in the same commit: only the last
 * is kept, since each carries the full register or share), splits them
 * into batches of at most JV_BATCH_MAX_OPS / JV_BATCH_MAX_BYTES, signs
 * each, and appends them to the log with the state changes, all in one
 * transaction. `hlc` stamps the batches and must be >= every stamp in the
 * intents. Each group succeeds or fails on its own (savepoints); a group
 * that fails changes nothing. The sequence numbers are durable (per
 * jv_sync) before this returns, and nothing is signed that is not
 * committed: a crash can never make the node reuse a sequence number for
 * different content. Returns JV_OK when the transaction committed. */
jv_err jv_store_commit_local(jv_store *st, const jv_keypair *kp, uint64_t hlc,
                             jv_write_group *groups, size_t ngroups,
                             jv_commit_info *info);

#endif
