/*
 * snapshot.h - bounded history: the state as of a version vector (a
 * snapshot), the node's base, compaction of the log into it, and
 * installing a snapshot received from a peer.
 *
 * A snapshot is the canonical encoding of every replicated table (below),
 * read in primary-key order, so two nodes with the same state at the same
 * vector produce the same bytes. Its digest is BLAKE2b-256 over those
 * bytes; its maker signs
 *
 *     Ed25519(maker, "jarvis/snapshot/v1" || digest)
 *
 * and since the encoding opens with the vector F (its `vv` section: per
 * origin the sequence number and hash of the last batch covered), the
 * signature covers (F, state).
 *
 * Encoding (integers big endian):
 *
 *     "JVSNAP" 0x01
 *     rows, each: tag (1 byte, never decreasing) then its columns
 *     0x00 (end), and nothing after it
 *
 *     tag  table                columns
 *      1   vv                   origin I, seq i, hash I
 *      2   ctx                  replica I, seq i
 *      3   ctx_cloud            replica I, n i
 *      4   archive              key t, replica I, n i, stamp i, value t
 *      5   counter              name t, replica I, p i, n i
 *      6   audit                time_ms i, origin I, seq i, actor t,
 *                               action t, target t, detail t
 *      7   config               key t, value t, stamp i, replica I
 *      8   trust                node I, trusted i, stamp i, set_by I, name t
 *      9   succession           old I, new I, last_seq i, time_ms i, sig S
 *     10   cluster_key          id t, name t, role t, hash b, created_ms i,
 *                               created_by t, origin I
 *     11   cluster_key_revoked  id t, revoked_ms i, revoked_by t, origin I
 *
 *     i: 8 bytes, 0 .. 2^63-1   I: 32 bytes   S: 64 bytes
 *     t: length (4 bytes, at most JV_SNAP_MAX_TEXT) + UTF-8
 *     b: length (4 bytes, at most 64) + bytes
 *
 * audit_minute is derived from audit when a snapshot is joined.
 *
 * The base: a snapshot kept in the database (tables base, base_chunk,
 * cut) whose vector is the cut; batches at or below the cut are covered by
 * it and are deleted. The state tables are never changed by compaction.
 *
 * Blocking: disk I/O. Call on the thread that owns the connection, never
 * on an event loop. Compaction and installs take their own connection
 * (a second writer): each transaction is short except the install's join,
 * which is as long as the snapshot.
 */
#ifndef JV_SNAPSHOT_H
#define JV_SNAPSHOT_H

#include "batch.h"
#include "store.h"
#include "vv.h"

#define JV_SNAP_MAX_TEXT  65536
#define JV_SNAP_MAX_BYTES (256u << 20) /* an encoding this node accepts */
#define JV_SNAP_CHUNK     (256u << 10) /* base_chunk rows, wire chunks */

/* A snapshot's envelope: who made it, what it covers. */
typedef struct {
    jv_id maker;
    uint64_t made_ms;
    uint8_t digest[JV_HASH_LEN];
    uint8_t sig[JV_SIG_LEN];
    uint64_t bytes; /* length of the encoding */
    uint64_t gen;   /* base only: the generation of its chunks */
} jv_snap_info;

void jv_snap_digest(const uint8_t *enc, size_t len, uint8_t out[JV_HASH_LEN]);
void jv_snap_sign(const uint8_t digest[JV_HASH_LEN], const jv_keypair *kp,
                  uint8_t sig[JV_SIG_LEN]);
/* JV_ESIG unless sig is maker's signature of digest. */
jv_err jv_snap_verify_sig(const uint8_t digest[JV_HASH_LEN],
                          const uint8_t sig[JV_SIG_LEN], const jv_id *maker);

/* Strict decode without writing anything: JV_EINVAL (and a reason in msg)
 * for anything but a well-formed encoding. F (may be NULL) receives its
 * vector. Any thread; pure. */
jv_err jv_snap_check(const uint8_t *enc, size_t len, jv_vv *F, char *msg,
                     size_t msglen);

/* The canonical encoding of st's replicated state (one read snapshot),
 * appended to out. */
jv_err jv_snap_encode(jv_store *st, jv_buf *out);

/* The base (JV_ENOTFOUND when there is none). enc (may be NULL) receives
 * its encoding (replacing what it held). */
jv_err jv_store_base_get(jv_store *st, jv_snap_info *info, jv_buf *enc);
/* Chunk n (of JV_SNAP_CHUNK bytes, the last shorter) of the base's
 * generation gen, into out (replacing it); JV_ENOTFOUND when there is
 * none (a newer generation replaced it). */
jv_err jv_store_base_chunk(jv_store *st, uint64_t gen, uint64_t n, jv_buf *out);
/* The cut, as a vector (empty when there is no base). */
jv_err jv_store_cut_get(jv_store *st, jv_vv *out);

typedef struct {
    bool built;          /* a new base was recorded */
    uint64_t folded;     /* batches folded into it */
    uint64_t deleted;    /* batches deleted (at or below the cut) */
    uint64_t base_bytes; /* the base's encoding */
} jv_compact_stats;

/* One round of compaction. The new cut is, per origin of `frontier`, the
 * last batch in the log at or below frontier[origin] stamped at or before
 * max_hlc (batches past it are kept). If that moves the cut: the old base
 * is loaded into a scratch database, the batches between the cuts are
 * applied to it through jv_store_apply, and its encoding, signed with kp,
 * becomes the new base (chunks written in small transactions, then one
 * short transaction switches base and cut). Then batches at or below the
 * cut are deleted, at most 256 per transaction, and chunks of older
 * generations too. A crash at any point leaves either the old base or the
 * new one, each consistent with the log; what is left over is deleted by
 * the next round. JV_EBUSY: the base changed under the round (an install);
 * nothing was recorded. */
jv_err jv_store_compact(jv_store *st, const jv_keypair *kp,
                        const jv_vv *frontier, uint64_t max_hlc,
                        jv_compact_stats *out);

/* Installs a snapshot received from a peer: checks that digest(enc) is
 * info->digest, that info->sig is info->maker's signature of it, that
 * the maker is trusted (jv_store_is_trusted) and that enc decodes
 * strictly; any failure refuses it with nothing applied:
 *   JV_EINVAL      malformed or truncated (digest or encoding)
 *   JV_ESIG        bad signature
 *   JV_EUNTRUSTED  maker not trusted
 *   JV_EEQUIVOCATE its vector names a batch this node has with another hash
 * Then builds the new base (old base joined with the snapshot, signed with
 * kp) and, in one transaction, joins the snapshot into the state (a CRDT
 * join: nothing this node has is lost, its unsynced writes included),
 * raises the version vector to it, and records the new base and cut.
 * Batches covered are deleted afterwards; held batches that now apply are
 * left to the next jv_store_apply. msg: a one-line reason on failure. */
jv_err jv_store_snap_install(jv_store *st, const jv_keypair *kp,
                             const uint8_t *enc, size_t len,
                             const jv_snap_info *info, char *msg,
                             size_t msglen);

/* Joins the snapshot (already checked) into st's state and raises its
 * version vector, inside the caller's transaction or one of its own. For
 * scratch databases (verify, compaction) and tests. */
jv_err jv_store_snap_join(jv_store *st, const uint8_t *enc, size_t len);

/* Deletes batches at or below the cut and chunks of old generations, at
 * most `max` rows per transaction, until none is left. */
jv_err jv_store_compact_sweep(jv_store *st, size_t max, uint64_t *deleted);

#endif
