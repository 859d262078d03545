/*
 * auth.h - who is calling: API keys, session tokens, roles, rate limits.
 *
 * Credentials look like "jvk_<id>_<secret>" (API key) and
 * "jvs_<id>_<secret>" (session token). The id finds the record; the
 * BLAKE2b hash of the secret is compared in constant time with the stored
 * hash. Only hashes are kept, in the database and here.
 *
 * This is the loop thread's cache of the node-local key and session tables
 * and of the replicated cluster keys: loaded at start, updated by the API
 * after each committed change, and (cluster keys) reloaded after a commit
 * applied peers' key operations. A cluster key is found and checked
 * exactly as a local one; once revoked it stays revoked (remove-wins), and
 * an id held by a local key is never taken over by a cluster key. Rate
 * limits are token buckets per API key (a session spends its key's
 * tokens).
 *
 * Not thread-safe: loop thread only.
 */
#ifndef JV_AUTH_H
#define JV_AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "store.h"

typedef enum {
    JV_ROLE_NONE = 0,
    JV_ROLE_READER = 1,
    JV_ROLE_WRITER = 2,
    JV_ROLE_ADMIN = 3,
} jv_role;

const char *jv_role_name(jv_role r);
jv_err jv_role_parse(jv_str s, jv_role *out);

typedef struct jv_auth jv_auth;

typedef struct {
    jv_role role;
    bool is_session;
    bool cluster; /* the key is a cluster key (replicated) */
    char key_id[24];
    char key_name[72];
    char session_id[24]; /* when is_session */
} jv_principal;

/* rate: tokens per second per key (0: no limit); burst: bucket size. */
jv_auth *jv_auth_new(uint64_t rate, uint64_t burst);
void jv_auth_free(jv_auth *a); /* accepts NULL */
/* New rate and burst (a settings reload), for every key from its next
 * request on; a key's tokens beyond the new burst are dropped. */
void jv_auth_set_rate(jv_auth *a, uint64_t rate, uint64_t burst);

/* Loads every key and every live session from the store. */
jv_err jv_auth_load(jv_auth *a, jv_store *st, uint64_t now_ms);

/* Checks an Authorization header value ("Bearer <credential>").
 * JV_EAUTH for a missing, malformed, unknown, revoked or expired
 * credential. */
jv_err jv_auth_check(jv_auth *a, jv_str header, uint64_t now_ms,
                     jv_principal *out);
/* Checks a bare API key (not a session token), as POST /v1/sessions
 * presents it. */
jv_err jv_auth_check_key(jv_auth *a, jv_str key, jv_principal *out);

/* Spends one token of the key's bucket. JV_ELIMIT when empty, with the
 * milliseconds until a token is back. */
jv_err jv_auth_rate(jv_auth *a, const char *key_id, uint64_t now_ms,
                    uint64_t *retry_ms);

/* Cache updates, after the matching change committed. */
jv_err jv_auth_key_put(jv_auth *a, const char *id, const char *name,
                       jv_role role, const uint8_t hash[32], bool revoked);
/* A cluster key (or its revocation): never replaces a local key of the
 * same id, and never makes a revoked cluster key usable again. */
jv_err jv_auth_ckey_put(jv_auth *a, const char *id, const char *name,
                        jv_role role, const uint8_t hash[32], bool revoked);
/* Every cluster key as the store holds it, read on any thread (the
 * writer's, after peers' key operations were applied) and taken into the
 * cache on the loop: newly revoked ones take their sessions with them. */
typedef struct jv_auth_ckeys jv_auth_ckeys;
jv_err jv_auth_ckeys_read(jv_store *st, jv_auth_ckeys **out);
jv_err jv_auth_ckeys_take(jv_auth *a, const jv_auth_ckeys *ks);
void jv_auth_ckeys_free(jv_auth_ckeys *ks);
bool jv_auth_key_exists(const jv_auth *a, const char *id);
/* *cluster: the key is a cluster key. False if unknown. */
bool jv_auth_key_known(const jv_auth *a, const char *id, bool *cluster);
/* An active cluster key holds this name. */
bool jv_auth_ckey_named(const jv_auth *a, const char *name);
/* The key's name, or NULL if unknown. */
const char *jv_auth_key_name(const jv_auth *a, const char *id);
/* Revokes the key and every session made with it. */
void jv_auth_key_revoke(jv_auth *a, const char *id);
jv_err jv_auth_session_put(jv_auth *a, const char *id, const char *key_id,
                           jv_role role, const uint8_t hash[32],
                           uint64_t expires_ms);
bool jv_auth_session_exists(const jv_auth *a, const char *id, uint64_t now_ms);
void jv_auth_session_revoke(jv_auth *a, const char *id);
/* Forgets expired and revoked sessions; returns how many are live. */
size_t jv_auth_sweep(jv_auth *a, uint64_t now_ms);

#endif
