/*
 * local.h - node-local tables: API keys, sessions, peers.
 *
 * These belong to one node and are never replicated (the audit entries
 * about them are). Keys and session tokens are stored only as hashes; the
 * caller hashes (and compares in constant time).
 *
 * Writes are meant to run inside jv_store_commit_local() through a
 * jv_local_fn, so that they commit atomically with their audit entries;
 * called on their own, each is its own transaction. Same threading and
 * row-callback rules as query.h.
 */
#ifndef JV_LOCAL_H
#define JV_LOCAL_H

#include "store.h"

#define JV_TOKEN_HASH_LEN 32

typedef struct {
    jv_str id;           /* public identifier, unique */
    jv_str name;         /* unique among keys */
    jv_str role;         /* "admin", "writer" or "reader" */
    const uint8_t *hash; /* JV_TOKEN_HASH_LEN */
    uint64_t created_ms;
    uint64_t revoked_ms; /* 0 while active */
} jv_key_row;

typedef jv_err (*jv_key_cb)(void *arg, const jv_key_row *k);

/* JV_EEXIST when the id or the name is taken. */
jv_err jv_store_key_insert(jv_store *st, const jv_key_row *k);
/* JV_ENOTFOUND if no such key; revoking a revoked key keeps the first
 * revocation time and returns JV_OK. Also revokes the key's sessions. */
jv_err jv_store_key_revoke(jv_store *st, jv_str id, uint64_t now_ms);
/* *last: id is an active admin key and no other admin key is active, so
 * revoking it would leave nobody able to manage the node. */
jv_err jv_store_key_last_admin(jv_store *st, jv_str id, bool *last);
jv_err jv_store_key_get(jv_store *st, jv_str id, jv_key_cb cb, void *arg);
jv_err jv_store_key_by_hash(jv_store *st, const uint8_t *hash, jv_key_cb cb,
                            void *arg); /* JV_ENOTFOUND */
jv_err jv_store_key_list(jv_store *st, jv_key_cb cb, void *arg);

typedef struct {
    jv_str id; /* public identifier, unique */
    jv_str key_id;
    jv_str role;
    const uint8_t *token_hash; /* JV_TOKEN_HASH_LEN */
    uint64_t created_ms;
    uint64_t expires_ms;
    uint64_t revoked_ms; /* 0 while active */
} jv_session_row;

typedef jv_err (*jv_session_cb)(void *arg, const jv_session_row *s);

jv_err jv_store_session_insert(jv_store *st, const jv_session_row *s);
/* JV_ENOTFOUND if no such session; keeps the first revocation time. */
jv_err jv_store_session_revoke(jv_store *st, jv_str id, uint64_t now_ms);
/* The session whose token hashes to token_hash (JV_TOKEN_HASH_LEN bytes),
 * whatever its state: the caller checks expiry and revocation. JV_ENOTFOUND
 * if none. */
jv_err jv_store_session_by_hash(jv_store *st, const uint8_t *token_hash,
                                jv_session_cb cb, void *arg);
/* Sessions not revoked and not expired at now_ms, by created time. */
jv_err jv_store_session_list(jv_store *st, uint64_t now_ms, jv_session_cb cb,
                             void *arg);
/* Deletes sessions expired or revoked before cutoff_ms. */
jv_err jv_store_session_purge(jv_store *st, uint64_t cutoff_ms);

typedef struct {
    jv_str addr;       /* "tcp://host:port" or "ipc://path" */
    const jv_id *node; /* NULL until learnt */
    uint64_t added_ms;
    jv_str source; /* "flag", "config" or "api" */
} jv_peer_row;

typedef jv_err (*jv_peer_cb)(void *arg, const jv_peer_row *p);

/* Inserts or updates (source and node kept when the new ones are empty). */
jv_err jv_store_peer_add(jv_store *st, const jv_peer_row *p);
jv_err jv_store_peer_remove(jv_store *st, jv_str addr); /* JV_ENOTFOUND */
jv_err jv_store_peer_set_node(jv_store *st, jv_str addr, const jv_id *node);
jv_err jv_store_peer_list(jv_store *st, jv_peer_cb cb, void *arg);

#endif
