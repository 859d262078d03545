/*
 * bseal.h - encrypted backup files: a database copy sealed so that only a
 * backup key (or a passphrase) opens it, for backups that leave the host.
 *
 * File:
 *   magic "JVBKENC1" (8) | mode (1) | key block | stream header (24) |
 *   chunks
 *   mode 1 (key): key block = crypto_box_seal(data key, backup public key)
 *                 (80 bytes); the backup key pair is X25519
 *                 (jv_bseal_keygen), its secret kept off the host
 *   mode 2 (passphrase): key block = salt (16) | opslimit (8) |
 *                 memlimit (8), big-endian; data key = Argon2id13
 *                 (crypto_pwhash) of the passphrase
 *   chunks: libsodium secretstream (XChaCha20-Poly1305) of the database in
 *   pieces of JV_BSEAL_CHUNK bytes, each + 17 bytes; the first one
 *   authenticates everything before it as associated data, the last one
 *   carries the FINAL tag. A flipped byte fails its chunk, a truncated
 *   file lacks the FINAL tag, trailing bytes are refused.
 *
 * Decryption writes only to the descriptor it is given; callers write to
 * a temporary file and keep it only when jv_bseal_decrypt returned JV_OK,
 * so that nothing damaged is ever used. A wrong key or passphrase fails
 * before anything is written.
 *
 * Blocking file I/O; thread-safe on distinct arguments.
 */
#ifndef JV_BSEAL_H
#define JV_BSEAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "types.h"

#define JV_BSEAL_KEY_LEN  32
#define JV_BSEAL_CHUNK    (64 * 1024)
#define JV_BSEAL_MAX_PASS 1024

#define JV_BSEAL_MODE_KEY  1
#define JV_BSEAL_MODE_PASS 2

typedef struct {
    int mode;
    uint8_t pk[JV_BSEAL_KEY_LEN];     /* mode 1: the backup public key */
    uint8_t sk[JV_BSEAL_KEY_LEN];     /* mode 1, to open: its secret */
    char pass[JV_BSEAL_MAX_PASS + 1]; /* mode 2, NUL-terminated */
} jv_bseal_key;

void jv_bseal_key_wipe(jv_bseal_key *k);

/* A new backup key pair (X25519). */
void jv_bseal_keygen(uint8_t pk[JV_BSEAL_KEY_LEN],
                     uint8_t sk[JV_BSEAL_KEY_LEN]);
/* Parses a key file: the first line that is not blank or a '#' comment,
 * 64 hex digits. JV_EINVAL otherwise. */
jv_err jv_bseal_parse_key(const char *text, size_t len,
                          uint8_t out[JV_BSEAL_KEY_LEN]);
/* The public key of a secret one. */
void jv_bseal_public(const uint8_t sk[JV_BSEAL_KEY_LEN],
                     uint8_t pk[JV_BSEAL_KEY_LEN]);

/* True when buf (the first bytes of a file) starts like a sealed backup. */
bool jv_bseal_is_sealed(const uint8_t *buf, size_t n);

/* Reads in_fd to its end and writes the sealed file to out_fd (not
 * synced). JV_EIO on a read or write failure, JV_EINVAL on a bad key. */
jv_err jv_bseal_encrypt(int in_fd, int out_fd, const jv_bseal_key *k);

/* Opens a sealed file from in_fd into out_fd (not synced). Errors:
 * JV_EDECODE (not a sealed backup, or a damaged head), JV_EPERM (mode
 * does not match the key given), JV_ECRYPTO (wrong key or passphrase,
 * nothing written), JV_ECORRUPT (a chunk does not verify: damaged or
 * tampered with), JV_ETRUNC (the end is missing), JV_ETRAILING, JV_EIO. */
jv_err jv_bseal_decrypt(int in_fd, int out_fd, const jv_bseal_key *k);

/* What an error of jv_bseal_decrypt means, for a person. */
const char *jv_bseal_strerror(jv_err err);

/* -- files -----------------------------------------------------------------
 * Each writes why it failed (naming the file) into why. */

/* The key of a key file: the secret one (want_secret) of `backup-key`, or
 * its .pub; a file of the other kind is refused (JV_EINVAL). */
jv_err jv_bseal_read_key(const char *path, bool want_secret,
                         uint8_t out[JV_BSEAL_KEY_LEN], char *why,
                         size_t whylen);
/* A passphrase: the first line of the file, 8 to JV_BSEAL_MAX_PASS bytes. */
jv_err jv_bseal_read_pass(const char *path, char out[JV_BSEAL_MAX_PASS + 1],
                          char *why, size_t whylen);
/* The key to open with: a secret key file, or a passphrase file (exactly
 * one of them non-NULL). Wipe it with jv_bseal_key_wipe. */
jv_err jv_bseal_open_key(const char *key_file, const char *pass_file,
                         jv_bseal_key *k, char *why, size_t whylen);
/* Opens the sealed file src into dest (mode 0600) through a temporary
 * next to it, linked as dest only once all of it verified: JV_EEXIST if
 * dest exists, and nothing is left behind on any failure. dest NULL only
 * checks that src is intact and opens with k. */
jv_err jv_bseal_open_file(const char *src, const char *dest,
                          const jv_bseal_key *k, char *why, size_t whylen);

#endif
