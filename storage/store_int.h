/*
 * store_int.h - what the storage modules share and nothing else sees: the
 * connection struct, the prepared-statement cache, transaction helpers and
 * the translation of SQLite result codes into jv_err.
 *
 * Statements are cached per connection, keyed by the address of their SQL
 * text (each module keeps its SQL in static const arrays next to the code
 * that uses it), prepared once with SQLITE_PREPARE_PERSISTENT and reset
 * with their bindings cleared after each use. A statement is never used by
 * two scans at once: asking for one that is still running (a row callback
 * calling back into the same store) is refused with JV_ESTATE.
 */
#ifndef JV_STORE_INT_H
#define JV_STORE_INT_H

#include <sqlite3.h>

#include "store.h"

/* "JRVS": PRAGMA application_id of every Jarvis database. */
#define JV_STORE_APP_ID 0x4A525653

typedef struct {
    const char *sql; /* key: the address of a static SQL text */
    sqlite3_stmt *stmt;
} jv__stmt_slot;

/* The last audit_minute row this connection wrote for one field (actor or
 * action): entries of one batch nearly always repeat it, and skipping the
 * statement then is most of what the posting list costs. Valid only
 * inside the transaction that wrote it. */
typedef struct {
    bool valid;
    uint64_t minute;
    size_t len;
    char value[256];
} jv__minute_memo;

struct jv_store {
    sqlite3 *db;
    char *path;
    bool readonly;
    bool have_self;
    jv_id self;
    jv__stmt_slot *slots; /* open addressing, power-of-two capacity */
    size_t nslots, capslots;
    char errmsg[256];
    jv__minute_memo minute_memo[2];
    /* Transactions open through jv__tx_begin: whether a new one nests
     * comes from here, not from SQLite's autocommit flag, which a
     * rollback that failed (out of memory) leaves off. */
    unsigned tx_depth;
    unsigned read_depth; /* jv_store_read_begin pairs open */
    /* ROLLBACK, ROLLBACK TO jv, RELEASE jv: prepared at open, so that
     * undoing needs no allocation when memory has run out. */
    sqlite3_stmt *undo[3];
    uint64_t max_skew_ms;         /* 0: batch stamps are not checked */
    uint64_t (*clock)(void *arg); /* jv_store_set_clock; NULL: the wall's */
    void *clock_arg;
    uint64_t trust_gen; /* jv_store_trust_gen */
};

/* The cached statement for sql (prepared on first use). NULL on failure,
 * with the reason in st->errmsg (and *err when err is not NULL). */
sqlite3_stmt *jv__stmt(jv_store *st, const char *sql, jv_err *err);
/* Resets s and clears its bindings; accepts NULL. */
void jv__reset(sqlite3_stmt *s);

/* Records a failure: sets st->errmsg and returns err. */
jv_err jv__fail(jv_store *st, jv_err err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Translates an SQLite result code and records "what: sqlite's message". */
jv_err jv__sqlerr(jv_store *st, int rc, const char *what);
/* The jv_err for an SQLite result code, without touching any message. */
jv_err jv__rc_err(int rc);

/* Steps s to completion (a statement that returns no rows) and resets it. */
jv_err jv__run(jv_store *st, sqlite3_stmt *s, const char *what);
/* Runs one cached statement without parameters (BEGIN, COMMIT...). */
jv_err jv__exec(jv_store *st, const char *sql);

/* A write transaction that nests: BEGIN IMMEDIATE at the top level, a
 * SAVEPOINT inside an open transaction (so the local.h writes can run on
 * their own or inside a commit_local group). A top-level begin first rolls
 * back what a failed rollback left open, so a new transaction never
 * silently becomes a savepoint of a dead one. */
typedef struct {
    bool nested;
} jv__tx;

jv_err jv__tx_begin(jv_store *st, jv__tx *tx);
jv_err jv__tx_commit(jv_store *st, jv__tx *tx);
/* Undoes everything since jv__tx_begin; keeps st->errmsg. */
void jv__tx_rollback(jv_store *st, jv__tx *tx);

/* Binding helpers; they return SQLite codes. */
int jv__bind_str(sqlite3_stmt *s, int i, jv_str v);
int jv__bind_id(sqlite3_stmt *s, int i, const jv_id *id);
int jv__bind_u64(sqlite3_stmt *s, int i, uint64_t v);

/* Column helpers. A stored id of the wrong length reads as JV_ECORRUPT. */
jv_str jv__col_str(sqlite3_stmt *s, int i);
jv_err jv__col_id(jv_store *st, sqlite3_stmt *s, int i, jv_id *out);
uint64_t jv__col_u64(sqlite3_stmt *s, int i);

/* Whether a batch stamp is further ahead of this machine's clock than
 * jv_store_set_max_skew allows: such a batch is held aside (reason
 * clock_skew) until it is not. */
bool jv__beyond_skew(const jv_store *st, uint64_t hlc);

/* This store's clock in milliseconds since the epoch: the wall clock, or
 * the one set by jv_store_set_clock. */
uint64_t jv__now_ms(const jv_store *st);

/* The self id, read once from the meta table. */
jv_err jv__self(jv_store *st, jv_id *out);

/* Adds id to the known replicas (first seen now) unless already there. */
jv_err jv__replica_seen(jv_store *st, const jv_id *id);

/* Registers the SQL functions the apply statements call (apply.c): the
 * merge rules that live in crdt/. Every connection gets them at open. */
jv_err jv__apply_functions(jv_store *st);

/* The granularity of the audit filters' posting list (audit_minute). */
#define JV_AUDIT_MINUTE_MS 60000u

#endif
