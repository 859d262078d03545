/*
 * store.h - one node's SQLite database: open, schema, identity, metadata.
 *
 * A jv_store is one SQLite connection to the node's database file (WAL
 * mode). It is not thread-safe: one thread uses it at a time. A node opens
 * two on the same file: a writer (on the commit thread) and a reader (on the
 * loop thread); in WAL mode readers never block the writer.
 *
 * Schema changes are numbered migrations applied through PRAGMA
 * user_version, each in one transaction. A file that is not SQLite, is
 * another application's database (application_id), is damaged, or was made
 * by a newer version is refused at open with a message that says which; it
 * is never written to.
 *
 * Nothing outside storage/ writes SQL.
 */
#ifndef JV_STORE_H
#define JV_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "types.h"

typedef struct jv_store jv_store;

/* SQLite's PRAGMA synchronous, in WAL mode:
 *   NORMAL: a committed transaction survives a crash of the process (kill -9)
 *           but the last transactions may be lost on power loss or OS crash.
 *   FULL:   also survives power loss (fsync on every commit).
 *   EXTRA:  as FULL in WAL mode (SQLite's extra directory sync concerns
 *           rollback journals only). */
typedef enum {
    JV_SYNC_NORMAL = 1,
    JV_SYNC_FULL = 2,
    JV_SYNC_EXTRA = 3,
} jv_sync;

typedef struct {
    jv_sync sync;        /* default JV_SYNC_NORMAL */
    int cache_kib;       /* page cache per connection; default 8192 */
    int busy_timeout_ms; /* wait for the other connection; default 5000 */
    bool create;         /* create file and schema when missing */
    bool readonly;
    bool checked;           /* this process opened and checked the file
                               already: skip PRAGMA quick_check (the header,
                               application id and version are still read) */
    bool manual_checkpoint; /* commits never checkpoint the WAL; the owner
                               calls jv_store_checkpoint() elsewhere */
} jv_store_opts;

/* Current schema version (the number of the last migration). */
#define JV_STORE_SCHEMA_VERSION 7

void jv_store_opts_default(jv_store_opts *o);

/* Process-wide SQLite settings, once, before any store is opened: no
 * memory statistics, whose one global mutex every allocation of every
 * connection would take (about 5 % of the writes a node answers).
 * JV_ESTATE once SQLite has started: it then runs as it is, slower. */
jv_err jv_store_process_init(void);

/* Opens the database at path: with o->create, a missing (or empty) file is
 * created with the whole schema; an existing database of an older schema
 * is migrated in one transaction unless o->readonly (then JV_ESTATE).
 * Before anything is written, the file is checked: its header, its
 * application_id and user_version, the presence of every table, and
 * PRAGMA quick_check (see docs/storage.md for what open and verify check).
 * The path ":memory:" opens a private in-memory database (no WAL), gone
 * at close: for tests.
 * On failure *out is NULL and msg (if not NULL) holds a one-line reason:
 *   JV_ENOTFOUND  file missing and !create
 *   JV_EFOREIGN   not SQLite, or another application's database
 *   JV_ECORRUPT   damaged (header or pages)
 *   JV_EVERSION   schema newer than JV_STORE_SCHEMA_VERSION
 *   JV_ESTORAGE / JV_EIO / JV_EBUSY  other SQLite failures
 * Blocks on disk I/O. */
jv_err jv_store_open(const char *path, const jv_store_opts *o, jv_store **out,
                     char *msg, size_t msglen);
/* Closes the connection (checkpointing the WAL if it is the last one).
 * Accepts NULL. */
void jv_store_close(jv_store *st);

/* The message of the last failure on this connection; never NULL. */
const char *jv_store_errmsg(const jv_store *st);
/* The version of the SQLite library the store runs on ("3.40.1"). */
const char *jv_store_sqlite_version(void);

/* Records the node's own replica id on first use; later calls must pass
 * the same id (JV_EINVAL otherwise: the data dir's key file and database
 * belong to different nodes). */
jv_err jv_store_set_self(jv_store *st, const jv_id *self);
/* JV_ENOTFOUND when no id is recorded yet. */
jv_err jv_store_get_self(jv_store *st, jv_id *out);
/* Records a new origin id for this database, whatever it had: only for a
 * restored copy before it is installed, whose node signs from then on
 * under a new origin that carries on for the old one (JV_OP_SUCCESSION,
 * docs/protocol.md "A restored node"). */
jv_err jv_store_replace_self(jv_store *st, const jv_id *self);
/* Node-local: the origins this node signed under before its current one
 * (32 bytes each), so that it trusts its own earlier batches whatever the
 * successions it knows yet. */
#define JV_META_OWN_ORIGINS "own_origins"
#define JV_OWN_ORIGINS_MAX  64

/* Set in a database restored from a backup, until the node has caught up
 * with its peers (for its health report only: it writes at once): the
 * origin id it carried on from (32 bytes). */
#define JV_META_RESTORED "restored"

/* Small node-local metadata values (not replicated). A get copies at most
 * cap bytes into buf and sets *len to the value's length; JV_ENOTFOUND if
 * unset. */
jv_err jv_store_meta_set(jv_store *st, const char *key, const void *val,
                         size_t len);
jv_err jv_store_meta_get(jv_store *st, const char *key, void *buf, size_t cap,
                         size_t *len);

/* Copies what the write-ahead log holds back into the database without
 * blocking writers or readers (SQLITE_CHECKPOINT_PASSIVE). frames (may be
 * NULL) receives the frames in the log and checkpointed the frames done;
 * the log starts over once a checkpoint has caught up with it. Blocks on
 * disk I/O and fsync: not on an event loop. */
jv_err jv_store_checkpoint(jv_store *st, uint64_t *frames,
                           uint64_t *checkpointed);

/* Moves whenever this connection writes an entry of the trust list or a
 * succession (committed or not): a reader of trustview.h's view reads it
 * again then. */
uint64_t jv_store_trust_gen(const jv_store *st);

/* A read snapshot: every read on st between the two calls sees the
 * database as it was at the first read after begin (a deferred
 * transaction; in WAL mode it blocks no writer). For long reads made of
 * several queries, such as an export. Pairs nest: inside an outer pair
 * (a reader thread running several jobs in one snapshot) an inner one
 * does nothing. */
jv_err jv_store_read_begin(jv_store *st);
void jv_store_read_end(jv_store *st);

typedef struct {
    uint64_t file_bytes; /* page_count * page_size of the main file */
    uint64_t wal_bytes;  /* size of the -wal file (0 if none) */
    uint64_t batches;    /* batches in the log */
    uint64_t log_bytes;  /* their bodies' bytes, as signed */
    uint64_t ops;        /* operations in the log */
    uint64_t held;       /* batches held aside */
    uint64_t max_hlc;    /* greatest batch stamp in the log: a restarted
                            node's clock starts above it */
} jv_store_stats;

jv_err jv_store_stats_get(jv_store *st, jv_store_stats *out);

/* Batches stamped more than max_skew_ms ahead of this machine's clock
 * are held aside by jv_store_apply (reason clock_skew, JV_ESKEW) and
 * applied by a later call once they are within it; 0 (the default): no
 * check. Also what jv_store_held_list reports as clock_skew. Call on the
 * thread that owns st. */
void jv_store_set_max_skew(jv_store *st, uint64_t max_skew_ms);

/* The clock st reads (held batches' ages and skew, bookkeeping stamps)
 * instead of the wall clock: now(arg) in milliseconds since the epoch.
 * The simulator gives each node a virtual clock this way. */
void jv_store_set_clock(jv_store *st, uint64_t (*now)(void *arg), void *arg);

/* Tests only: shifts the wall clock every store reads by ms (a node
 * started with a test clock offset). Any thread. */
void jv_store_test_clock_offset(int64_t ms);

#endif
