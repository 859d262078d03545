/*
 * query.h - reading replicated state.
 *
 * Rows are handed to a callback one at a time; every pointer in a row is
 * borrowed and valid only during the callback (copy what you keep). A
 * callback returning non-OK stops the scan and that code is returned. A
 * callback must not call into the same jv_store (the scan's statement is
 * still running: that is refused with JV_ESTATE); use another connection.
 *
 * Paging: list calls take `after` (exclusive cursor: the last key of the
 * previous page; empty = from the start) and `limit` (0 = no limit). Rows
 * come in a stable order, so the caller's cursor is simply the last row it
 * received.
 *
 * Blocking: disk reads, normally served from the page cache. Any thread
 * that owns the connection.
 */
#ifndef JV_QUERY_H
#define JV_QUERY_H

#include "batch.h"
#include "gcounter.h"
#include "store.h"
#include "vv.h"

/* -- counters ------------------------------------------------------------- */

typedef struct {
    jv_id replica;
    uint64_t p; /* the replica's increments */
    uint64_t n; /* the replica's decrements */
} jv_counter_share;

/* A counter and its exact total over every replica's share (jv_count:
 * 128-bit sums, never an overflow however many shares there are). */
typedef struct {
    jv_str name;
    jv_count total;
} jv_counter_row;

typedef jv_err (*jv_share_cb)(void *arg, const jv_counter_share *s);
typedef jv_err (*jv_counter_cb)(void *arg, const jv_counter_row *r);

/* Shares of one counter, by replica id. JV_ENOTFOUND if it has none. */
jv_err jv_store_counter_get(jv_store *st, jv_str name, jv_share_cb cb,
                            void *arg);
/* Counters whose name starts with prefix, by name. */
jv_err jv_store_counter_list(jv_store *st, jv_str prefix, jv_str after,
                             size_t limit, jv_counter_cb cb, void *arg);

/* -- audit ---------------------------------------------------------------- */

typedef struct {
    jv_dot id; /* (origin, seq) */
    uint64_t time_ms;
    jv_str actor, action, target, detail;
} jv_audit_row;

typedef struct {
    uint64_t since_ms; /* inclusive; 0: no lower bound */
    uint64_t until_ms; /* exclusive; 0: no upper bound */
    jv_str actor;      /* exact match; empty: any */
    jv_str action;     /* exact match; empty: any */
    bool newest_first; /* order by (time, origin, seq) descending */
    bool has_cursor;   /* only rows strictly after the cursor row in the
                          chosen order */
    uint64_t cursor_time_ms;
    jv_dot cursor_id;
    size_t limit; /* 0: no limit */
} jv_audit_query;

typedef jv_err (*jv_audit_cb)(void *arg, const jv_audit_row *r);

jv_err jv_store_audit_query(jv_store *st, const jv_audit_query *q,
                            jv_audit_cb cb, void *arg);
/* The whole set by (time, origin, seq), the table's own order: for
 * export and verification. */
jv_err jv_store_audit_scan(jv_store *st, jv_audit_cb cb, void *arg);

/* -- configuration -------------------------------------------------------- */

typedef struct {
    jv_str key;
    jv_str value; /* JSON text */
    uint64_t stamp;
    jv_id replica; /* who set it */
} jv_config_row;

typedef jv_err (*jv_config_cb)(void *arg, const jv_config_row *r);

jv_err jv_store_config_get(jv_store *st, jv_str key, jv_config_cb cb,
                           void *arg); /* JV_ENOTFOUND */
jv_err jv_store_config_list(jv_store *st, jv_str prefix, jv_str after,
                            size_t limit, jv_config_cb cb, void *arg);

/* -- archive -------------------------------------------------------------- */

/* A live key and the value shown for it: the greatest (stamp, dot) among
 * its live values (several after concurrent adds). */
typedef struct {
    jv_str key;
    jv_str value; /* JSON text */
    uint64_t stamp;
    jv_dot dot;
    size_t nvalues; /* live values of the key */
} jv_archive_row;

/* One live (key, dot) value: the raw OR-Set entries. */
typedef struct {
    jv_str key;
    jv_dot dot;
    uint64_t stamp;
    jv_str value;
} jv_archive_value;

typedef jv_err (*jv_archive_cb)(void *arg, const jv_archive_row *r);
typedef jv_err (*jv_archive_value_cb)(void *arg, const jv_archive_value *v);
typedef jv_err (*jv_dot_cb)(void *arg, const jv_dot *d);

jv_err jv_store_archive_get(jv_store *st, jv_str key, jv_archive_cb cb,
                            void *arg); /* JV_ENOTFOUND */
jv_err jv_store_archive_list(jv_store *st, jv_str prefix, jv_str after,
                             size_t limit, jv_archive_cb cb, void *arg);
/* Every live value, by (key, dot). */
jv_err jv_store_archive_values(jv_store *st, jv_archive_value_cb cb, void *arg);
/* Every live value of one key, by dot (none if the key is absent). */
jv_err jv_store_archive_key_values(jv_store *st, jv_str key,
                                   jv_archive_value_cb cb, void *arg);
/* The causal context: the compact vector into *vv (replaced), the cloud
 * dots through cb (sorted). */
jv_err jv_store_archive_context(jv_store *st, jv_vv *vv, jv_dot_cb cb,
                                void *arg);

/* -- log and version vector ----------------------------------------------- */

/* The applied version vector (replaced into *out). */
jv_err jv_store_vv(jv_store *st, jv_vv *out);
/* An origin's applied sequence number and the hash of its last applied
 * batch (0 and zeros when none). */
jv_err jv_store_origin_head(jv_store *st, const jv_id *origin, uint64_t *seq,
                            uint8_t hash[JV_HASH_LEN]);

typedef struct {
    jv_id origin;
    uint64_t first_seq;
    uint64_t last_seq;
    uint64_t hlc;
    const uint8_t *body; /* exactly as signed */
    size_t len;
    const uint8_t *sig;  /* JV_SIG_LEN */
    const uint8_t *hash; /* JV_HASH_LEN */
} jv_log_row;

typedef jv_err (*jv_log_cb)(void *arg, const jv_log_row *r);

/* The origin's batches holding sequence numbers after after_seq, in order,
 * until max_batches or max_bytes (of bodies) is reached; the first batch
 * is always given even if it alone exceeds max_bytes. For anti-entropy. */
jv_err jv_store_log_after(jv_store *st, const jv_id *origin, uint64_t after_seq,
                          size_t max_batches, size_t max_bytes, jv_log_cb cb,
                          void *arg);
/* Every batch, by origin then sequence. */
jv_err jv_store_log_scan(jv_store *st, jv_log_cb cb, void *arg);

/* Batches held aside (gap, untrusted origin, or a stamp beyond the skew
 * bound of jv_store_set_max_skew), by origin then sequence. */
typedef struct {
    jv_id origin;
    uint64_t first_seq;
    uint64_t last_seq;
    jv_err reason; /* JV_EGAP, JV_EUNTRUSTED or JV_ESKEW */
    size_t len;
    uint64_t hlc; /* the batch's stamp */
} jv_held_row;

typedef jv_err (*jv_held_cb)(void *arg, const jv_held_row *r);
jv_err jv_store_held_list(jv_store *st, jv_held_cb cb, void *arg);

/* Held batches by reason, as jv_store_held_list classes them. A scan of
 * the whole held area (up to JV_HELD_MAX_BATCHES rows): not on a loop. */
typedef struct {
    uint64_t gap, untrusted, clock_skew;
} jv_held_counts;
jv_err jv_store_held_counts(jv_store *st, jv_held_counts *out);

/* -- replicas and trust --------------------------------------------------- */

typedef struct {
    jv_id id;
    jv_str name;  /* from the trust list, may be empty */
    uint64_t seq; /* applied sequence number */
    uint64_t first_seen_ms;
} jv_replica_row;

typedef struct {
    jv_id node;
    bool trusted;
    uint64_t stamp;
    jv_id set_by; /* the replica whose write won */
    jv_str name;
} jv_trust_row;

typedef jv_err (*jv_replica_cb)(void *arg, const jv_replica_row *r);
typedef jv_err (*jv_trust_cb)(void *arg, const jv_trust_row *r);

/* Known replicas: this node, every origin seen in the log or held area,
 * every node on the trust list; by id. */
jv_err jv_store_replica_list(jv_store *st, jv_replica_cb cb, void *arg);
jv_err jv_store_trust_list(jv_store *st, jv_trust_cb cb, void *arg);
/* This node is always trusted, under its current origin and every earlier
 * one (see successions). Else an entry of the trust list decides; an
 * origin without one that carries on for another (a succession) is
 * trusted as that other one is. */
jv_err jv_store_is_trusted(jv_store *st, const jv_id *id, bool *out);
/* Successions (batch.h, JV_OP_SUCCESSION): the origin that carries on for
 * old, and the one id carries on for. JV_ENOTFOUND when there is none. */
jv_err jv_store_successor(jv_store *st, const jv_id *old, jv_id *out);
jv_err jv_store_predecessor(jv_store *st, const jv_id *id, jv_id *out);

/* -- cluster API keys ----------------------------------------------------- */

typedef struct {
    jv_str id;
    jv_str name;
    jv_str role;         /* as written; a role the reader does not know
                            grants nothing */
    const uint8_t *hash; /* JV_OP_KEY_HASH_LEN: hash of the secret */
    uint64_t created_ms;
    jv_str created_by; /* the creating principal's key name */
    jv_id origin;      /* the node that created it */
    bool revoked;      /* a revocation of this id exists (it wins) */
    uint64_t revoked_ms;
    jv_str revoked_by;
} jv_ckey_row;

typedef jv_err (*jv_ckey_cb)(void *arg, const jv_ckey_row *k);

/* Every cluster key this node holds, revoked ones too, by creation time
 * then id. (A revocation whose key has not arrived is not listed; it
 * revokes the key when it comes.) */
jv_err jv_store_ckey_list(jv_store *st, jv_ckey_cb cb, void *arg);
/* *exists: the node holds the key or a revocation of it. */
jv_err jv_store_ckey_known(jv_store *st, jv_str id, bool *exists);

#endif
