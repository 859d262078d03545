/*
 * batch.h - operations and signed batches.
 *
 * A local write is an operation; an origin numbers its operations 1, 2, 3...
 * without gaps. A batch carries consecutive operations of one origin:
 *
 *   body = [1, origin (bin 32), first_seq, prev (bin 32), hlc, [op, ...]]
 *   hash = BLAKE2b-256("jarvis/batch/v1" || body)
 *   sig  = Ed25519_sign(origin's secret key, hash)
 *
 * `prev` is the hash of the origin's previous batch (zeros for the first),
 * so an origin's log is a hash chain: a gap, a reordering or a rewrite is
 * detected by whoever applies it. `hlc` is the creation stamp, at least
 * every stamp inside. Since the signature covers the hash of the exact body
 * bytes, a relay forwards the bytes unchanged and every receiver checks the
 * origin's own signature; the hash identifies the batch (deduplication).
 *
 * Operations (the seq of ops[i] is first_seq + i):
 *   [0, name, p, n]                            counter: origin's P and N
 *                                              shares of `name` after the op
 *                                              (a PN-Counter delta)
 *   [1, time_ms, actor, action, target, detail]  audit entry, id (origin, seq)
 *   [2, key, value, stamp]                     config register set (LWW)
 *   [3, key, value, stamp, dot_n, [[id, n]..]] archive add of dot
 *                                              (origin, dot_n) covering the
 *                                              observed dots listed
 *   [4, key, [[id, n]..]]                      archive remove of observed dots
 *   [5, node (bin 32), trusted, stamp, name]   trust list entry (LWW per node)
 *   [6, old (bin 32), last_seq, time_ms, sig (bin 64)]
 *                                              succession: this origin
 *                                              carries on for `old` (see
 *                                              below)
 *   [7, id, name, role, hash (bin 32), time_ms, by]
 *                                              cluster API key: id, label,
 *                                              role, BLAKE2b hash of its
 *                                              secret (never the secret),
 *                                              when and by whom (a key name)
 *   [8, id, time_ms, by]                       revocation of cluster API key
 *                                              id (remove-wins: it beats the
 *                                              key whatever the order)
 * Names, keys and texts are str (valid UTF-8, no NUL); values are str holding
 * JSON text; dot lists are sorted and free of duplicates. Every integer is at
 * most JV_INT_MAX.
 *
 * All functions are pure and thread-safe on distinct arguments.
 */
#ifndef JV_BATCH_H
#define JV_BATCH_H

#include "mp.h"

#define JV_BATCH_VERSION   1
#define JV_BATCH_MAX_OPS   4096
#define JV_BATCH_MAX_BYTES (4u << 20)
#define JV_OP_MAX_NAME     256  /* counter names */
#define JV_OP_MAX_KEY      1024 /* config and archive keys */
#define JV_OP_MAX_VALUE    65536
#define JV_OP_MAX_REMOVES  1024
#define JV_OP_MAX_KEY_ID   64 /* cluster API key ids */
#define JV_OP_MAX_ROLE     16
#define JV_OP_KEY_HASH_LEN 32
/* Every sequence number, dot, stamp and counter share fits in a signed
 * 64-bit integer, so that storage can keep it as one. */
#define JV_INT_MAX INT64_MAX

typedef enum {
    JV_OP_COUNTER = 0,
    JV_OP_AUDIT = 1,
    JV_OP_CONFIG = 2,
    JV_OP_ARCHIVE_ADD = 3,
    JV_OP_ARCHIVE_RM = 4,
    JV_OP_TRUST = 5,
    JV_OP_SUCCESSION = 6,
    JV_OP_KEY_ADD = 7,
    JV_OP_KEY_REVOKE = 8,
} jv_op_kind;

#define JV_OP_KIND_COUNT 9

typedef struct {
    jv_op_kind kind;
    union {
        struct {
            jv_str name;
            uint64_t p, n;
        } counter;
        struct {
            uint64_t time_ms;
            jv_str actor, action, target, detail;
        } audit;
        struct {
            jv_str key, value;
            uint64_t stamp;
        } config;
        struct {
            jv_str key, value;
            uint64_t stamp;
            uint64_t dot_n;        /* the new dot is (origin, dot_n) */
            const jv_dot *removes; /* sorted, unique */
            size_t nremoves;
        } add;
        struct {
            jv_str key;
            const jv_dot *removes; /* sorted, unique, at least one */
            size_t nremoves;
        } rm;
        struct {
            jv_id node;
            bool trusted;
            uint64_t stamp;
            jv_str name;
        } trust;
        struct {
            jv_id old;         /* the origin this one carries on for */
            uint64_t last_seq; /* old's last sequence number the new
                                  origin's node held when it took over */
            uint64_t time_ms;
            uint8_t sig[JV_SIG_LEN]; /* old's key: jv_succession_sign */
        } succ;
        struct {
            jv_str id, name, role;
            uint8_t hash[JV_OP_KEY_HASH_LEN];
            uint64_t time_ms;
            jv_str by;
        } key_add;
        struct {
            jv_str id;
            uint64_t time_ms;
            jv_str by;
        } key_revoke;
    };
} jv_op;

typedef struct {
    jv_id origin;
    uint64_t first_seq;
    uint8_t prev[JV_HASH_LEN];
    uint64_t hlc;
    jv_op *ops;
    uint32_t nops;
    jv_dot *owned_dots; /* decoded batches only: backing of dot lists */
} jv_batch;

/* The header fields, read without decoding the operations. */
typedef struct {
    jv_id origin;
    uint64_t first_seq;
    uint64_t last_seq;
    uint32_t nops;
    uint8_t prev[JV_HASH_LEN];
    uint64_t hlc;
} jv_batch_head;

/* Secret key material; wipe with jv_keypair_wipe() when done. */
typedef struct {
    jv_id pk;
    uint8_t sk[64];
} jv_keypair;

static inline uint64_t jv_batch_last_seq(const jv_batch *b)
{
    return b->first_seq + b->nops - 1;
}

/* Checks one operation against the limits and rules above, as the decoder
 * does (strings UTF-8, sizes, sorted dot lists, stamps <= hlc). */
jv_err jv_op_validate(const jv_op *op, uint64_t hlc);

/* Appends the canonical body of b to out. Every op is validated first
 * (JV_EINVAL); JV_ETOOBIG past JV_BATCH_MAX_BYTES; JV_ENOMEM. On any
 * failure out is as it was (length and error flag). */
jv_err jv_batch_encode(const jv_batch *b, jv_buf *out);

/* Reads the header of a body: cheap, for dropping duplicates before any
 * signature work. Checks the header's own rules only. */
jv_err jv_batch_peek(const void *body, size_t len, jv_batch_head *h);

/* Strict decode of a whole body into out. Strings and dot lists borrow from
 * `body` (which must outlive out) or from memory owned by out; release with
 * jv_batch_fini(). out untouched on failure. */
jv_err jv_batch_decode(const void *body, size_t len, jv_batch *out);
void jv_batch_fini(jv_batch *b); /* for decoded batches; accepts NULL */

void jv_batch_hash(const void *body, size_t len, uint8_t out[JV_HASH_LEN]);
void jv_batch_sign(const uint8_t hash[JV_HASH_LEN], const jv_keypair *kp,
                   uint8_t sig[JV_SIG_LEN]);
/* JV_ESIG unless sig is origin's signature of hash. */
jv_err jv_batch_verify_sig(const uint8_t hash[JV_HASH_LEN],
                           const uint8_t sig[JV_SIG_LEN], const jv_id *origin);

/* Where a batch stands against its origin's applied sequence number and the
 * hash of its last applied batch:
 *   JV_OK    it is the next one (first_seq == applied + 1, prev matches)
 *   JV_EDUP  already applied (last_seq <= applied)
 *   JV_EGAP  starts beyond applied + 1 (hold it until the gap fills)
 *   JV_ELINK overlaps the applied ones, or prev does not match */
jv_err jv_batch_check_chain(const jv_batch_head *h, uint64_t applied,
                            const uint8_t last_hash[JV_HASH_LEN]);

/* Everything a receiver checks, cheapest first: header and chain (so a
 * duplicate costs no signature work), signature over the hash of the exact
 * bytes, then a strict decode into out. hash_out (may be NULL) receives
 * the batch hash. */
jv_err jv_batch_verify(const void *body, size_t len,
                       const uint8_t sig[JV_SIG_LEN], uint64_t applied,
                       const uint8_t last_hash[JV_HASH_LEN], jv_batch *out,
                       uint8_t hash_out[JV_HASH_LEN]);

/* Succession (a node restored from a backup signs under a new origin):
 *   sig = Ed25519_sign(old's secret key,
 *         BLAKE2b-256("jarvis/succession/v1" || old || new ||
 *                     last_seq (8, big endian) || time_ms (8, big endian)))
 * A succession op is only ever the first op of its origin's first batch
 * (first_seq 1), names another origin than its own, and its signature is
 * checked by jv_batch_decode (JV_ESIG): nobody but the holder of old's key
 * can make an origin carry on for old. */
void jv_succession_sign(const jv_keypair *old, const jv_id *new_origin,
                        uint64_t last_seq, uint64_t time_ms,
                        uint8_t sig[JV_SIG_LEN]);
jv_err jv_succession_verify(const jv_op *op, const jv_id *new_origin);

/* A new random key pair (libsodium). */
jv_err jv_keypair_generate(jv_keypair *kp);
/* Rebuilds the pair from a 64-byte libsodium secret key, checking that
 * its public half matches. */
jv_err jv_keypair_from_secret(jv_keypair *kp, const uint8_t sk[64]);
void jv_keypair_wipe(jv_keypair *kp);

#endif
