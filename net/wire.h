/*
 * wire.h - the messages peers exchange (inside keyring.h's frames).
 *
 *   message = format (1 byte) | payload
 *     format 0: payload is body || sig
 *     format 1: payload is body || sig compressed with zstd (used when the
 *               body is larger than the caller's threshold and compression
 *               actually saves bytes)
 *   body = [version, type, from (bin 32), to (bin 32), stamp, echo, refused,
 *           from_addr (str), have (vv), batches, more, budget, base, heard]
 *   sig  = Ed25519(from's node key, BLAKE2b-256("jarvis/sync/v2" || body))
 *     version   JV_WIRE_VERSION (4); versions 3 (`have` without refs)
 *               and 2 (the same body without base and heard: its vectors
 *               are whole) are decoded too, and encoded on demand, so that
 *               nodes of each can talk while a cluster is upgraded; any
 *               other version (or version 1, which had no such field) is
 *               JV_EVERSION
 *     type      1 SYNC (request), 2 SYNC_REPLY
 *     from      the sender's replica id (its Ed25519 public key: the key
 *               the signature is checked against)
 *     to        the recipient's replica id, zeros when the sender does not
 *               know it yet (a first contact): binds the message to one
 *               recipient, so that it cannot be replayed to another node
 *     stamp     the sender's message counter: strictly increasing over all
 *               the messages it sends, derived from its wall clock in
 *               microseconds (a receiver refuses a request whose stamp is
 *               not above the last one it accepted from that sender, or
 *               too far from its own clock)
 *     echo      reply: the stamp of the request it answers (0 in requests),
 *               so an old reply cannot pass for the answer to a new request
 *     refused   reply: 0, or why the request was refused (jv_refusal)
 *     from_addr the address the sender listens on for peers ("" if none)
 *     have      the sender's version vector, counting batches it holds
 *               aside as well as applied ones: "do not send me these";
 *               when base is not 0, only the entries that differ from the
 *               vector of the message named by base (vvlink.h). In
 *               version 4 it is [refs, vv]: refs a flat array of unsigned
 *               integers, gap and seq in turn, naming entries of the base
 *               vector by place (the k-th names place p(k) = p(k-1) + 1 +
 *               gap, p(-1) = -1), empty when base is 0; vv the entries
 *               whose ids the base lacks (or the whole vector). Versions 2
 *               and 3: the vv alone
 *     batches   array of [body (bin), sig (bin 64)]: signed batches exactly
 *               as their origin made them
 *     more      reply: the responder had more the requester lacks
 *     budget    request: how many bytes of batches the reply may carry
 *     base      the stamp of an earlier message of the sender's to the
 *               same recipient that `have` differs from; 0: `have` whole
 *     heard     the stamp of the recipient's newest message whose vector
 *               the sender keeps (0: none), for the recipient to base its
 *               next messages on
 *
 * The signature covers the exact bytes of the body as sent: a receiver
 * checks it over the bytes it received (jv_msg_verify), never over a
 * re-encoding. It is one signature and one check per message whatever it
 * carries (the hash, not the body, is signed).
 *
 * Decoding is strict (crdt/mp.h): every count is bounded by the bytes left
 * and by the limits below; a zstd payload is refused if its declared or
 * actual size exceeds max_plain. A decoded message borrows from the buffer
 * it was decoded from (or from `scratch` when decompressed).
 */
#ifndef JV_WIRE_H
#define JV_WIRE_H

#include "batch.h"
#include "vv.h"

/* The protocol version: 2 since messages are signed by their sender, 3
 * since their vectors may be differences, 4 since a difference names the
 * base's entries by place. */
#define JV_WIRE_VERSION     4
#define JV_WIRE_VERSION_MIN 2 /* the oldest decoded (and encoded) */
#define JV_WIRE_MAX_BATCHES 65536
#define JV_WIRE_MAX_ADDR    512

typedef enum {
    JV_MSG_SYNC = 1,
    JV_MSG_SYNC_REPLY = 2,
    JV_MSG_SNAP = 3,       /* request: a chunk of the responder's snapshot */
    JV_MSG_SNAP_REPLY = 4, /* a chunk of it, in place of a SYNC_REPLY when
                              the requester lacks compacted batches */
} jv_msg_type;

/* Snapshots (storage/snapshot.h) travel in chunks: types 3 and 4 carry one
 * more body field at the end (the 15th; the 13th in version 2):
 *   SNAP        [digest (bin 32), offset]     zeros: the current one
 *   SNAP_REPLY  [maker (bin 32), made_ms, digest (bin 32), sig (bin 64),
 *                total, offset, data (bin)]
 * offset + len(data) <= total <= JV_WIRE_SNAP_MAX, len(data) <=
 * JV_WIRE_SNAP_CHUNK; offsets are multiples of JV_WIRE_SNAP_CHUNK. */
#define JV_WIRE_SNAP_CHUNK (256u << 10)
#define JV_WIRE_SNAP_MAX   (256u << 20)

typedef struct {
    jv_id maker;
    uint64_t made_ms;
    uint8_t digest[JV_HASH_LEN];
    uint8_t sig[JV_SIG_LEN];
    uint64_t total;
    uint64_t offset;
    const uint8_t *data; /* borrowed */
    size_t len;
} jv_wire_snap;

/* Why a responder refused a request (a reply's `refused`). A refusal
 * reply carries no vector and no batches. */
typedef enum {
    JV_REFUSED_NONE = 0,
    JV_REFUSED_PROOF = 1,     /* the signature does not verify */
    JV_REFUSED_STALE = 2,     /* stamp not fresh: a replay, or a bad clock */
    JV_REFUSED_UNTRUSTED = 3, /* the sender is not on the trust list */
    JV_REFUSED_RECIPIENT = 4, /* addressed to another node, or to none */
    JV_REFUSED_CLAIM = 5,     /* its vector claims more of the responder's
                                 own log than the responder has */
    JV_REFUSED_BASE = 6,      /* its vector's base is not kept here: send
                                 it whole (version 3) */
    JV_REFUSED_MAX = 6
} jv_refusal;

typedef struct {
    const uint8_t *body;
    size_t len;
    const uint8_t *sig; /* JV_SIG_LEN */
} jv_wire_batch;

typedef struct {
    unsigned version; /* decode: 2 to 4; encode: 0 for JV_WIRE_VERSION */
    jv_msg_type type;
    jv_id from;
    jv_id to; /* zeros: not known to the sender */
    uint64_t stamp;
    uint64_t echo;
    jv_refusal refused;
    jv_str from_addr;
    jv_vv have;
    /* Version 4, base not 0: entries of the base vector by place (the rest
     * of the difference is in have); allocated by decode, borrowed on
     * encode. */
    jv_vv_ref *refs;
    size_t nrefs;
    jv_wire_batch *batches; /* allocated by decode; borrowed on encode */
    size_t nbatches;
    bool more;
    uint64_t budget;
    uint64_t base, heard; /* version 3; 0 in version 2 */
    jv_wire_snap snap;    /* types 3 and 4 only */
    /* Decode's allocation behind `batches`, the only array jv_msg_fini
     * frees: a caller that points `batches` at its own array to encode
     * keeps it. */
    jv_wire_batch *owned;
    jv_vv_ref *refs_owned;
    /* Decode: the signature received and the hash it must sign. Encode
     * without a key pair: the signature written as is. */
    uint8_t sig[JV_SIG_LEN];
    uint8_t hash[JV_HASH_LEN];
} jv_msg;

void jv_msg_init(jv_msg *m);
/* Frees `have` and what decode allocated; leaves an empty message. */
void jv_msg_fini(jv_msg *m);

/* Appends the message to out, signed with kp (whose public key must be
 * m->from), compressing with zstd when the body is over compress_min bytes
 * and that makes it smaller. kp NULL writes m->sig as it is: for
 * re-encoding a decoded message, and for tests that forge one. *raw_len
 * (may be NULL) receives the uncompressed size of body and signature. */
jv_err jv_msg_encode(const jv_msg *m, const jv_keypair *kp, size_t compress_min,
                     jv_buf *out, size_t *raw_len);

/* Decodes p[0..n) into out (initialised by the caller; replaced on
 * success, untouched on failure): JV_EVERSION for a message of another
 * protocol version, the decoder's errors otherwise. A compressed payload
 * is inflated into scratch, never beyond max_plain bytes (JV_ETOOBIG).
 * The signature is not checked here (jv_msg_verify). */
jv_err jv_msg_decode(const uint8_t *p, size_t n, size_t max_plain,
                     jv_buf *scratch, jv_msg *out);

/* Whether p[0..n), as jv_msg_decode takes it, carries a zstd payload:
 * decoding it inflates. */
bool jv_msg_compressed(const uint8_t *p, size_t n);

/* The protocol version of a message jv_msg_decode refused with
 * JV_EVERSION (1 for a body without the field), for logs and for the
 * notice that tells its sender; 0 when it cannot be read. */
unsigned jv_msg_peek_version(const uint8_t *p, size_t n, size_t max_plain,
                             jv_buf *scratch);

/* JV_ESIG unless the decoded message's signature is its `from`'s over the
 * bytes received. One Ed25519 check (tens of microseconds). */
jv_err jv_msg_verify(const jv_msg *m);

/* The encoded size of one batch inside a message's array, for budgeting. */
size_t jv_wire_batch_cost(size_t body_len);

/* The bytes a message of `version` (0: ours) spends on its vector: the
 * places (version 4 on) and the entries by id. A sender weighs a
 * difference against the whole vector with it. */
size_t jv_wire_have_cost(unsigned version, const jv_vv_ref *refs, size_t nrefs,
                         const jv_vv *vv);

#endif
