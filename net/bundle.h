/*
 * bundle.h - signed, sealed bundles of batches, carried by hand between
 * nodes that never connect (air-gapped sites).
 *
 * A bundle is one file:
 *
 *   head (JV_BUNDLE_HEAD_LEN bytes, fixed layout, big-endian integers)
 *     magic "JVBUNDLE" | version (1) | seal (1) | flags (2) | maker (32) |
 *     created_ms (8) | target (32) | recipient (32) | key id (4) |
 *     wrapped key (80) | nonce (24) | sealed_len (8)
 *   sealed (sealed_len bytes): XChaCha20-Poly1305(key, nonce, payload,
 *     associated data = head)
 *   sig (64): Ed25519(maker, BLAKE2b-256("jarvis/bundle/v1" || head ||
 *     sealed))
 *
 * seal 1 (cluster): key = the cluster key named by key id (as frames name
 * it, keyring.h); recipient and wrapped key are zeros. seal 2 (recipient):
 * key = a random data key, wrapped = crypto_box_seal(data key, the
 * recipient's Ed25519 key converted to X25519); key id is zeros. Only the
 * recipient's secret key opens it.
 *
 * The signature covers the sealed bytes, so anyone can check who made a
 * bundle and that it is whole before opening it; the maker id is inside
 * the authenticated head, so a re-signer cannot claim another's bundle
 * without also holding the key that opens it (and then it has made a new
 * bundle of its own, whose batches still carry their origins' signatures).
 *
 * payload = zstd frame (content size declared) of the msgpack
 *   [1, against (vector), maker_vv (vector), [[body, sig], ...]]
 * or, when the bundle carries the maker's base snapshot (the target lacks
 * batches the maker compacted):
 *   [2, against, maker_vv, [maker, made_ms, digest, sig, encoding],
 *    [[body, sig], ...]]
 * against: the vector the bundle was made against (empty: everything);
 * maker_vv: the maker's applied vector when it made the bundle (the reader
 * learns what the maker holds); the snapshot exactly as peers send it
 * (storage/snapshot.h: its maker signs the digest of the encoding), to be
 * installed before the batches; batches exactly as signed by their
 * origins, sorted by origin then sequence, never overlapping. A bundle
 * without a snapshot is always written as payload 1, so it reads where
 * bundles were read before.
 *
 * Pure apart from random numbers; thread-safe on distinct arguments.
 */
#ifndef JV_BUNDLE_H
#define JV_BUNDLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "keyring.h"
#include "vv.h"

#define JV_BUNDLE_VERSION     1
#define JV_BUNDLE_HEAD_LEN    232
#define JV_BUNDLE_SIG_LEN     64
#define JV_BUNDLE_WRAPPED_LEN 80 /* crypto_box_SEALBYTES + 32 */
#define JV_BUNDLE_OVERHEAD    (JV_BUNDLE_HEAD_LEN + 16 + JV_BUNDLE_SIG_LEN)
#define JV_BUNDLE_MAX_BATCHES (1u << 20)
#define JV_BUNDLE_MAX_SNAP    (256u << 20) /* JV_SNAP_MAX_BYTES */

#define JV_BUNDLE_SEAL_CLUSTER   1
#define JV_BUNDLE_SEAL_RECIPIENT 2

#define JV_BUNDLE_F_TARGET 0x1u /* target holds a node id */

typedef struct {
    uint8_t version;
    uint8_t seal;
    uint16_t flags;
    jv_id maker;
    uint64_t created_ms;
    jv_id target; /* whose vector it was made against (F_TARGET) */
    jv_id recipient;
    uint8_t key_id[JV_KEY_ID_LEN];
    uint8_t wrapped[JV_BUNDLE_WRAPPED_LEN];
    uint8_t nonce[24];
    uint64_t sealed_len;
} jv_bundle_head;

/* One batch inside; pointers borrow the opened payload. */
typedef struct {
    const uint8_t *body;
    size_t len;
    const uint8_t *sig; /* JV_SIG_LEN */
    jv_batch_head h;
} jv_bundle_batch;

/* A snapshot inside: its envelope as peers send it, and its encoding
 * (borrowed; checked only by the store's install, snapshot.h). */
typedef struct {
    jv_id maker;
    uint64_t made_ms;
    uint8_t digest[JV_HASH_LEN];
    uint8_t sig[JV_SIG_LEN];
    const uint8_t *enc;
    size_t len;
} jv_bundle_snap;

typedef struct {
    jv_vv against;
    jv_vv maker_vv;
    bool has_snap;
    jv_bundle_snap snap;
    jv_bundle_batch *batches;
    size_t n;
} jv_bundle_content;

/* -- making --------------------------------------------------------------- */

/* Collects batches (in order: origin, then sequence) into a payload. */
typedef struct {
    jv_buf items; /* msgpack of each [body, sig] */
    size_t n;
    const jv_bundle_snap *snap; /* borrowed until jv_bundle_make */
} jv_bundle_builder;

void jv_bundle_builder_init(jv_bundle_builder *b);
void jv_bundle_builder_fini(jv_bundle_builder *b);
jv_err jv_bundle_builder_add(jv_bundle_builder *b, const uint8_t *body,
                             size_t len, const uint8_t sig[JV_SIG_LEN]);
/* The snapshot the batches follow (NULL: none); s and its encoding must
 * outlive jv_bundle_make. JV_ETOOBIG past JV_BUNDLE_MAX_SNAP. */
jv_err jv_bundle_builder_snap(jv_bundle_builder *b, const jv_bundle_snap *s);

/* Seals and signs: h gives seal, maker (kp->pk), created_ms, flags and
 * target (and recipient for seal 2); the rest is filled in. seal 1 needs
 * a keyring with a key (JV_ENOTFOUND otherwise). Appends the bundle to
 * out. */
jv_err jv_bundle_make(jv_bundle_builder *b, const jv_vv *against,
                      const jv_vv *maker_vv, const jv_bundle_head *h,
                      const jv_keyring *ring, const jv_keypair *kp,
                      jv_buf *out);

/* -- reading -------------------------------------------------------------- */

/* Strictly parses the head of a whole bundle file: magic, version, known
 * seal and flags, zero fields where the seal has none, and the exact
 * length (a truncated or extended file is JV_ETRUNC / JV_ETRAILING). */
jv_err jv_bundle_parse_head(const uint8_t *data, size_t len, jv_bundle_head *h);

/* JV_ESIG unless the bundle carries its maker's signature. */
jv_err jv_bundle_verify(const uint8_t *data, size_t len,
                        const jv_bundle_head *h);

/* Whether this node could open it: JV_OK, or JV_ENOTFOUND (a cluster key
 * it does not hold, or sealed to another node). self may be NULL. */
jv_err jv_bundle_can_open(const jv_bundle_head *h, const jv_keyring *ring,
                          const jv_id *self);

/* Opens the seal and inflates the payload into plain (replaced); at most
 * max_plain bytes. kp is this node's pair (seal 2). Errors: JV_ENOTFOUND
 * (see can_open), JV_ECRYPTO (tag), JV_ETOOBIG, JV_EDECODE. */
jv_err jv_bundle_open(const uint8_t *data, size_t len, const jv_bundle_head *h,
                      const jv_keyring *ring, const jv_keypair *kp,
                      size_t max_plain, jv_buf *plain);

/* Strict decode of a payload: structure, bounds, the snapshot's envelope
 * (its encoding is left to the store's install), each batch header
 * (jv_batch_peek) and the order. JV_EVERSION for a payload version it
 * does not know. Borrows plain. */
jv_err jv_bundle_decode(const uint8_t *plain, size_t len,
                        jv_bundle_content *out);
void jv_bundle_content_fini(jv_bundle_content *c);

#endif
