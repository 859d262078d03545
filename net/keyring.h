/*
 * keyring.h - the cluster key: encryption and authentication of all peer
 * traffic with XChaCha20-Poly1305 (libsodium's IETF construction).
 *
 * A keyring holds up to JV_KEYRING_MAX keys. The first one seals what this
 * node sends; every key opens what it receives. To rotate without
 * downtime (as memberlist does): add the new key second on every node,
 * then make it first on every node, then remove the old one.
 *
 * Frames:
 *   sealed:    0x01 | key id (4) | nonce (24) | ciphertext + tag (16)
 *   plaintext: 0x00 | message            (only between nodes without keys)
 * The key id is the first 4 bytes of BLAKE2b-256("jarvis/key-id" || key);
 * the header (type, key id, nonce) is authenticated as associated data.
 *
 * Key file: one key per line as 64 hex digits, '#' comments and blank
 * lines ignored, the first key primary. It must not be readable by group
 * or others (like an ssh key); an ACL that adds only our own user (a
 * systemd credential) is fine.
 *
 * Pure except jv_keyring_load (reads a file) and the random nonces.
 */
#ifndef JV_KEYRING_H
#define JV_KEYRING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "types.h"

#define JV_KEYRING_MAX   8
#define JV_KEY_LEN       32
#define JV_KEY_ID_LEN    4
#define JV_SEAL_HEADER   (1 + JV_KEY_ID_LEN + 24)
#define JV_SEAL_OVERHEAD (JV_SEAL_HEADER + 16)

typedef struct {
    uint8_t key[JV_KEY_LEN];
    uint8_t id[JV_KEY_ID_LEN];
} jv_ring_key;

typedef struct {
    jv_ring_key k[JV_KEYRING_MAX]; /* k[0] seals */
    size_t n;
} jv_keyring;

/* Parses key file text. JV_EINVAL (with the line number in msg) on a bad
 * line, no key, more than JV_KEYRING_MAX keys or a duplicate. */
jv_err jv_keyring_parse(const char *text, size_t len, jv_keyring *out,
                        char *msg, size_t msglen);
/* Reads and parses a key file; JV_EPERM if group/other may read it. */
jv_err jv_keyring_load(const char *path, jv_keyring *out, char *msg,
                       size_t msglen);
void jv_keyring_wipe(jv_keyring *r);
/* A new random key as 64 hex digits and a NUL. */
jv_err jv_keyring_generate_hex(char out[2 * JV_KEY_LEN + 1]);
/* The key id of k[i] as 8 hex digits and a NUL, for logs and metrics. */
void jv_keyring_id_hex(const jv_keyring *r, size_t i, char out[9]);

/* "send 1a2b3c4d, accept 1a2b3c4d 5e6f7a8b" (or "none: plaintext"): the
 * key ids of the ring, for logs. The ids are fingerprints: they travel in
 * clear in every frame and say nothing of the keys. */
void jv_keyring_describe(const jv_keyring *r, char *out, size_t outlen);
/* The key id a sealed frame names, as 8 hex digits; false for another
 * frame. */
bool jv_frame_key_hex(const uint8_t *frame, size_t n, char out[9]);

/* Notices: the unsealed answer to a frame this node cannot take, so that
 * its sender can show why instead of timing out. They carry nothing
 * secret (key ids travel in clear in every frame anyway) and prove
 * nothing: anyone on the path could forge one, so a notice only ever
 * changes what is shown and logged, never what is trusted or sent.
 *   key:     0x02 | 1 | n (1 byte) | n key ids: sealed under a key it lacks
 *                                   (n = 0: it has no cluster key)
 *   version: 0x02 | 2 | version (2 bytes, big endian): a message of another
 *                                   protocol version */
#define JV_FRAME_NOTICE 0x02
typedef enum {
    JV_NOTICE_KEY = 1,
    JV_NOTICE_VERSION = 2,
} jv_notice_kind;

typedef struct {
    jv_notice_kind kind;
    size_t nids;
    char ids[JV_KEYRING_MAX][9]; /* hex */
    unsigned version;
} jv_notice;

jv_err jv_notice_key(const jv_keyring *r, jv_buf *out);
jv_err jv_notice_version(unsigned version, jv_buf *out);
/* JV_ENOTFOUND if the frame is no notice, JV_EDECODE if it is a bad one. */
jv_err jv_notice_parse(const uint8_t *frame, size_t n, jv_notice *out);

/* Appends the frame of msg to out: sealed under r->k[0], or plaintext when
 * r is NULL or empty. */
jv_err jv_seal(const jv_keyring *r, const uint8_t *msg, size_t n, jv_buf *out);

/* Opens a frame into out (replacing its content). Errors, each counted
 * separately by the caller:
 *   JV_ENOTFOUND  sealed under a key id this ring does not hold
 *   JV_ECRYPTO    the tag does not verify (tampered, or a forged id)
 *   JV_EPERM      plaintext while this node has keys, or sealed while it
 *                 has none
 *   JV_EDECODE    too short, or an unknown frame type */
jv_err jv_open(const jv_keyring *r, const uint8_t *frame, size_t n,
               jv_buf *out);

#endif
