/*
 * store.c - opening a node's database: refusing what is not ours, migrating
 * what is older, and the helpers every storage module shares.
 *
 * Opening goes in three steps, so that a file we refuse is never written:
 *
 *   1. read the 100-byte header ourselves: not "SQLite format 3" means not
 *      SQLite (JV_EFOREIGN); impossible page size or payload fractions, or
 *      a size that is not a whole number of pages, mean damage (JV_ECORRUPT);
 *   2. inspect through a read-only connection (which never writes the main
 *      file: no hot-journal rollback, no checkpoint on close): the
 *      application_id, user_version, whether any table exists, and
 *      PRAGMA quick_check (every page and b-tree, without the index
 *      cross-check that makes integrity_check slow);
 *   3. only then open the real connection, migrate an older schema in one
 *      transaction, check that every table of the schema exists, and switch
 *      to WAL.
 *
 * jv_store_verify (backup.c) is the deep check: integrity_check, every
 * signature and link of the log, and a replay of the log.
 */
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "hlc.h"

/* -- schema --------------------------------------------------------------- */

/*
 * Migration k (1-based) is migrations[k - 1]; a database at user_version v
 * runs migrations v+1..JV_STORE_SCHEMA_VERSION in one transaction. A new
 * schema version is one more entry here and one more in the version macro.
 * The tables are described in docs/storage.md.
 */
static const char *const migrations[] = {
    /* 1: the whole schema */
    "CREATE TABLE meta ("
    "  key TEXT PRIMARY KEY NOT NULL,"
    "  value BLOB NOT NULL"
    ") WITHOUT ROWID;"

    "CREATE TABLE replica ("
    "  id BLOB PRIMARY KEY NOT NULL,"
    "  first_seen_ms INTEGER NOT NULL"
    ") WITHOUT ROWID;"

    /* The signed log, bodies exactly as received. Small columns first:
     * reading them never walks the body's overflow pages. */
    "CREATE TABLE batch ("
    "  origin BLOB NOT NULL,"
    "  first_seq INTEGER NOT NULL,"
    "  last_seq INTEGER NOT NULL,"
    "  hlc INTEGER NOT NULL,"
    "  hash BLOB NOT NULL,"
    "  sig BLOB NOT NULL,"
    "  body BLOB NOT NULL"
    ");"
    "CREATE UNIQUE INDEX batch_origin_seq ON batch(origin, last_seq);"
    "CREATE UNIQUE INDEX batch_hash ON batch(hash);"
    /* Running totals of the log, kept by triggers in the transaction that
     * changes it: statistics never scan the log. */
    "CREATE TABLE log_stats ("
    "  id INTEGER PRIMARY KEY CHECK (id = 0),"
    "  batches INTEGER NOT NULL,"
    "  bytes INTEGER NOT NULL"
    ");"
    "INSERT INTO log_stats VALUES (0, 0, 0);"
    "CREATE TRIGGER batch_added AFTER INSERT ON batch BEGIN "
    "  UPDATE log_stats SET batches = batches + 1,"
    "    bytes = bytes + length(NEW.body) WHERE id = 0;"
    "END;"
    "CREATE TRIGGER batch_removed AFTER DELETE ON batch BEGIN "
    "  UPDATE log_stats SET batches = batches - 1,"
    "    bytes = bytes - length(OLD.body) WHERE id = 0;"
    "END;"

    "CREATE TABLE vv ("
    "  origin BLOB PRIMARY KEY NOT NULL,"
    "  seq INTEGER NOT NULL,"
    "  hash BLOB NOT NULL"
    ") WITHOUT ROWID;"

    "CREATE TABLE held ("
    "  origin BLOB NOT NULL,"
    "  first_seq INTEGER NOT NULL,"
    "  last_seq INTEGER NOT NULL,"
    "  hlc INTEGER NOT NULL,"
    "  reason TEXT NOT NULL CHECK (reason IN ('gap', 'untrusted')),"
    "  len INTEGER NOT NULL,"
    "  hash BLOB NOT NULL UNIQUE,"
    "  sig BLOB NOT NULL,"
    "  body BLOB NOT NULL"
    ");"
    "CREATE INDEX held_origin ON held(origin, first_seq);"

    "CREATE TABLE counter ("
    "  name TEXT NOT NULL,"
    "  replica BLOB NOT NULL,"
    "  p INTEGER NOT NULL,"
    "  n INTEGER NOT NULL,"
    "  PRIMARY KEY (name, replica)"
    ") WITHOUT ROWID;"

    /* Clustered by time: the table itself serves time ranges. Filters by
     * actor or action use audit_minute, a posting list of the minutes in
     * which each actor and action occur: adding an entry costs one lookup
     * there (the row is almost always present already) instead of a
     * b-tree insert per filter, which halved apply throughput. A query
     * range-scans the table within each listed minute. */
    "CREATE TABLE audit ("
    "  time_ms INTEGER NOT NULL,"
    "  origin BLOB NOT NULL,"
    "  seq INTEGER NOT NULL,"
    "  actor TEXT NOT NULL,"
    "  action TEXT NOT NULL,"
    "  target TEXT NOT NULL,"
    "  detail TEXT NOT NULL,"
    "  PRIMARY KEY (time_ms, origin, seq)"
    ") WITHOUT ROWID;"
    "CREATE TABLE audit_minute ("
    "  field INTEGER NOT NULL CHECK (field IN (0, 1)),"
    "  value TEXT NOT NULL,"
    "  minute INTEGER NOT NULL,"
    "  PRIMARY KEY (field, value, minute)"
    ") WITHOUT ROWID;"
    "CREATE TABLE config ("
    "  key TEXT PRIMARY KEY NOT NULL,"
    "  value TEXT NOT NULL,"
    "  stamp INTEGER NOT NULL,"
    "  replica BLOB NOT NULL"
    ") WITHOUT ROWID;"

    "CREATE TABLE archive ("
    "  key TEXT NOT NULL,"
    "  replica BLOB NOT NULL,"
    "  n INTEGER NOT NULL,"
    "  stamp INTEGER NOT NULL,"
    "  value TEXT NOT NULL,"
    "  PRIMARY KEY (key, replica, n)"
    ") WITHOUT ROWID;"
    "CREATE UNIQUE INDEX archive_dot ON archive(replica, n);"

    "CREATE TABLE ctx ("
    "  replica BLOB PRIMARY KEY NOT NULL,"
    "  seq INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE TABLE ctx_cloud ("
    "  replica BLOB NOT NULL,"
    "  n INTEGER NOT NULL,"
    "  PRIMARY KEY (replica, n)"
    ") WITHOUT ROWID;"

    "CREATE TABLE trust ("
    "  node BLOB PRIMARY KEY NOT NULL,"
    "  trusted INTEGER NOT NULL,"
    "  stamp INTEGER NOT NULL,"
    "  set_by BLOB NOT NULL,"
    "  name TEXT NOT NULL"
    ") WITHOUT ROWID;"

    "CREATE TABLE api_key ("
    "  id TEXT PRIMARY KEY NOT NULL,"
    "  name TEXT NOT NULL UNIQUE,"
    "  role TEXT NOT NULL CHECK (role IN ('admin', 'writer', 'reader')),"
    "  hash BLOB NOT NULL UNIQUE,"
    "  created_ms INTEGER NOT NULL,"
    "  revoked_ms INTEGER NOT NULL"
    ");"
    "CREATE TABLE session ("
    "  id TEXT PRIMARY KEY NOT NULL,"
    "  key_id TEXT NOT NULL,"
    "  role TEXT NOT NULL CHECK (role IN ('admin', 'writer', 'reader')),"
    "  token_hash BLOB NOT NULL UNIQUE,"
    "  created_ms INTEGER NOT NULL,"
    "  expires_ms INTEGER NOT NULL,"
    "  revoked_ms INTEGER NOT NULL"
    ");"
    "CREATE INDEX session_key ON session(key_id);"
    "CREATE INDEX session_created ON session(created_ms, id);"
    "CREATE TABLE peer ("
    "  addr TEXT PRIMARY KEY NOT NULL,"
    "  node BLOB,"
    "  added_ms INTEGER NOT NULL,"
    "  source TEXT NOT NULL"
    ");",
    /* 2: when each batch was held aside (node's wall clock, ms), so that
     * batches of untrusted origins expire. Rows from before: 0, the
     * oldest. */
    "ALTER TABLE held ADD COLUMN held_ms INTEGER NOT NULL DEFAULT 0;"
    /* The bounds are checked on every batch held: these indexes answer
     * the usage sums without reading the batches' bodies. */
    "CREATE INDEX held_reason ON held(reason, held_ms, len);"
    "DROP INDEX held_origin;"
    "CREATE INDEX held_origin ON held(origin, first_seq, len);",
    /* 3: successions (an origin carrying on for another one, signed by
     * the other's key: a node restored from a backup). One successor per
     * old origin, one predecessor per new one. */
    "CREATE TABLE succession ("
    "  old BLOB PRIMARY KEY NOT NULL,"
    "  new BLOB NOT NULL UNIQUE,"
    "  last_seq INTEGER NOT NULL,"
    "  time_ms INTEGER NOT NULL,"
    "  sig BLOB NOT NULL"
    ") WITHOUT ROWID;",
    /* 4: cluster API keys, a remove-wins set: grow-only adds and grow-only
     * revocations, a key usable while it has no revocation. Only the hash
     * of a key's secret is kept, as for the node-local api_key. */
    "CREATE TABLE cluster_key ("
    "  id TEXT PRIMARY KEY NOT NULL,"
    "  name TEXT NOT NULL,"
    "  role TEXT NOT NULL,"
    "  hash BLOB NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  created_by TEXT NOT NULL,"
    "  origin BLOB NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE TABLE cluster_key_revoked ("
    "  id TEXT PRIMARY KEY NOT NULL,"
    "  revoked_ms INTEGER NOT NULL,"
    "  revoked_by TEXT NOT NULL,"
    "  origin BLOB NOT NULL"
    ") WITHOUT ROWID;",
    /* 5: bounded history (snapshot.h). The base: the state as of the
     * vector in `cut`, as its canonical encoding cut in chunks, signed
     * by its maker. Batches at or below the cut are covered by it and
     * are deleted in slices; chunks of another generation than the
     * base's are leftovers of an interrupted build. */
    "CREATE TABLE base ("
    "  id INTEGER PRIMARY KEY CHECK (id = 0),"
    "  gen INTEGER NOT NULL,"
    "  maker BLOB NOT NULL,"
    "  made_ms INTEGER NOT NULL,"
    "  digest BLOB NOT NULL,"
    "  sig BLOB NOT NULL,"
    "  bytes INTEGER NOT NULL"
    ");"
    "CREATE TABLE base_chunk ("
    "  gen INTEGER NOT NULL,"
    "  n INTEGER NOT NULL,"
    "  data BLOB NOT NULL"
    ");"
    "CREATE UNIQUE INDEX base_chunk_gen ON base_chunk(gen, n);"
    "CREATE TABLE cut ("
    "  origin BLOB PRIMARY KEY NOT NULL,"
    "  seq INTEGER NOT NULL,"
    "  hash BLOB NOT NULL"
    ") WITHOUT ROWID;",
    /* 6: change-stream cursors are batch rowids (node/watch.h). The
     * largest rowid ever deleted is kept in meta, so that a cursor before
     * it is known to be expired, and a batch inserted after the newest
     * ones were deleted never takes a rowid a cursor already named. */
    "CREATE TRIGGER batch_deleted_max AFTER DELETE ON batch "
    "WHEN OLD.rowid > coalesce((SELECT value FROM meta"
    "  WHERE key = 'batch_deleted_max'), 0) BEGIN "
    "  INSERT OR REPLACE INTO meta (key, value)"
    "    VALUES ('batch_deleted_max', OLD.rowid);"
    "END;"
    "CREATE TRIGGER batch_rowid_guard AFTER INSERT ON batch "
    "WHEN NEW.rowid <= (SELECT value FROM meta"
    "  WHERE key = 'batch_deleted_max') BEGIN "
    "  UPDATE batch SET rowid = (SELECT value FROM meta"
    "    WHERE key = 'batch_deleted_max') + 1 WHERE rowid = NEW.rowid;"
    "END;",
    /* 7: archive entries in a rowid table whose rowid is the dot: span <<
     * 40 | (n mod 2^40), where a span numbers the dots (replica, n) with
     * one n >> 40. A peer's adds then append (SQLite's cheap path, for
     * rowid tables only) instead of splitting two b-trees keyed by blobs,
     * and a remove finds its entry by rowid. The view `archive` shows the
     * entries as before, for every reader. */
    "CREATE TABLE archive_span ("
    "  span INTEGER PRIMARY KEY CHECK (span BETWEEN 1 AND 8388607),"
    "  replica BLOB NOT NULL,"
    "  hi INTEGER NOT NULL,"
    "  UNIQUE (replica, hi)"
    ");"
    "CREATE TABLE archive_entry ("
    "  id INTEGER PRIMARY KEY,"
    "  key TEXT NOT NULL,"
    "  stamp INTEGER NOT NULL,"
    "  value TEXT NOT NULL"
    ");"
    "INSERT INTO archive_span(replica, hi) SELECT DISTINCT replica, n >> 40"
    "  FROM archive ORDER BY 1, 2;"
    "INSERT INTO archive_entry(id, key, stamp, value)"
    "  SELECT (s.span << 40) | (a.n & 1099511627775), a.key, a.stamp, a.value"
    "  FROM archive a JOIN archive_span s"
    "    ON s.replica = a.replica AND s.hi = a.n >> 40 ORDER BY 1;"
    "DROP TABLE archive;"
    "CREATE INDEX archive_key ON archive_entry(key);"
    "CREATE VIEW archive(key, replica, n, stamp, value) AS"
    "  SELECT e.key, s.replica, (s.hi << 40) | (e.id & 1099511627775),"
    "    e.stamp, e.value"
    "  FROM archive_entry e JOIN archive_span s ON s.span = e.id >> 40;",
};

_Static_assert(sizeof(migrations) / sizeof(migrations[0]) ==
                   JV_STORE_SCHEMA_VERSION,
               "one migration per schema version");

/* Every table the current schema has; a database of ours missing one is
 * damaged. */
static const char *const schema_tables[] = {
    "meta",       "replica",       "batch",
    "vv",         "held",          "counter",
    "audit",      "audit_minute",  "config",
    "archive",    "archive_entry", "archive_span",
    "ctx",        "ctx_cloud",     "trust",
    "api_key",    "session",       "peer",
    "succession", "cluster_key",   "cluster_key_revoked",
    "base",       "base_chunk",    "cut",
};

/* -- errors and statements ------------------------------------------------ */

jv_err jv__fail(jv_store *st, jv_err err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->errmsg, sizeof(st->errmsg), fmt, ap);
    va_end(ap);
    return err;
}

jv_err jv__rc_err(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
        return JV_OK;
    case SQLITE_NOMEM:
        return JV_ENOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return JV_EBUSY;
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
        return JV_EIO;
    case SQLITE_CORRUPT:
        return JV_ECORRUPT;
    case SQLITE_NOTADB:
        return JV_EFOREIGN;
    default:
        return JV_ESTORAGE;
    }
}

jv_err jv__sqlerr(jv_store *st, int rc, const char *what)
{
    const char *m = st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc);
    return jv__fail(st, jv__rc_err(rc), "%s: %s", what, m);
}

/* Pointer hash for the statement cache (the keys are static addresses). */
static size_t slot_hash(const char *sql, size_t cap)
{
    uintptr_t x = (uintptr_t)sql;
    x ^= x >> 17;
    x *= (uintptr_t)0x9e3779b97f4a7c15ull;
    return (size_t)(x >> 7) & (cap - 1);
}

static jv_err slots_grow(jv_store *st)
{
    size_t cap = st->capslots ? st->capslots * 2 : 64;
    jv__stmt_slot *n = jv_calloc(cap, sizeof(*n));
    if (!n)
        return JV_ENOMEM;
    for (size_t i = 0; i < st->capslots; i++) {
        if (!st->slots[i].sql)
            continue;
        size_t h = slot_hash(st->slots[i].sql, cap);
        while (n[h].sql)
            h = (h + 1) & (cap - 1);
        n[h] = st->slots[i];
    }
    jv_free(st->slots);
    st->slots = n;
    st->capslots = cap;
    return JV_OK;
}

sqlite3_stmt *jv__stmt(jv_store *st, const char *sql, jv_err *errp)
{
    jv_err err;
    if (st->nslots * 2 >= st->capslots && (err = slots_grow(st))) {
        jv__fail(st, err, "statement cache: %s", jv_strerror(err));
        goto fail;
    }
    size_t h = slot_hash(sql, st->capslots);
    while (st->slots[h].sql && st->slots[h].sql != sql)
        h = (h + 1) & (st->capslots - 1);
    jv__stmt_slot *slot = &st->slots[h];
    if (slot->sql) {
        if (sqlite3_stmt_busy(slot->stmt)) {
            err = jv__fail(st, JV_ESTATE,
                           "statement already running (a row callback "
                           "called back into the same store)");
            goto fail;
        }
        return slot->stmt;
    }
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s,
                                NULL);
    if (rc != SQLITE_OK) {
        err = jv__sqlerr(st, rc, "prepare");
        goto fail;
    }
    slot->sql = sql;
    slot->stmt = s;
    st->nslots++;
    return s;
fail:
    if (errp)
        *errp = err;
    return NULL;
}

void jv__reset(sqlite3_stmt *s)
{
    if (!s)
        return;
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
}

jv_err jv__run(jv_store *st, sqlite3_stmt *s, const char *what)
{
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        ;
    jv_err err = rc == SQLITE_DONE ? JV_OK : jv__sqlerr(st, rc, what);
    jv__reset(s);
    return err;
}

jv_err jv__exec(jv_store *st, const char *sql)
{
    jv_err err;
    sqlite3_stmt *s = jv__stmt(st, sql, &err);
    if (!s)
        return err;
    return jv__run(st, s, sql);
}

static const char sql_begin[] = "BEGIN IMMEDIATE";
static const char sql_commit[] = "COMMIT";
static const char sql_savepoint[] = "SAVEPOINT jv";
static const char sql_release[] = "RELEASE jv";

static int undo_step(jv_store *st, int i);

jv_err jv__tx_begin(jv_store *st, jv__tx *tx)
{
    tx->nested = st->tx_depth > 0;
    if (!tx->nested) {
        st->minute_memo[0].valid = st->minute_memo[1].valid = false;
        /* A rollback that failed (out of memory) left a transaction open:
         * nesting into it would make this one a savepoint that never
         * commits, and report success for writes that the next rollback
         * or close drops. End it now. */
        if (!sqlite3_get_autocommit(st->db)) {
            int rc = undo_step(st, 0);
            if (rc != SQLITE_OK)
                return jv__sqlerr(st, rc, "roll back a failed transaction");
        }
    }
    jv_err err = jv__exec(st, tx->nested ? sql_savepoint : sql_begin);
    if (!err)
        st->tx_depth++;
    return err;
}

jv_err jv__tx_commit(jv_store *st, jv__tx *tx)
{
    jv_err err = jv__exec(st, tx->nested ? sql_release : sql_commit);
    if (err)
        jv__tx_rollback(st, tx);
    else
        st->tx_depth--;
    return err;
}

/* Runs one of the statements prepared at open for undoing. */
static int undo_step(jv_store *st, int i)
{
    static const char *const sql[] = {"ROLLBACK", "ROLLBACK TO jv",
                                      "RELEASE jv"};
    if (!st->undo[i])
        return sqlite3_exec(st->db, sql[i], NULL, NULL, NULL);
    int rc = sqlite3_step(st->undo[i]);
    sqlite3_reset(st->undo[i]);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

void jv__tx_rollback(jv_store *st, jv__tx *tx)
{
    if (st->tx_depth > 0)
        st->tx_depth--;
    /* Rows the memo describes may be undone here. */
    st->minute_memo[0].valid = st->minute_memo[1].valid = false;
    /* Through statements prepared at open, not the statement cache:
     * undoing must not depend on an allocation succeeding. After some
     * errors (I/O, full disk) SQLite has already rolled the whole
     * transaction back, and there is nothing left to undo. Should this
     * fail all the same, the next top-level jv__tx_begin rolls back. */
    if (sqlite3_get_autocommit(st->db))
        return;
    if (!tx->nested) {
        undo_step(st, 0);
    } else if (undo_step(st, 1) == SQLITE_OK) {
        undo_step(st, 2);
    }
}

static jv_err prepare_undo(jv_store *st)
{
    static const char *const sql[] = {"ROLLBACK", "ROLLBACK TO jv",
                                      "RELEASE jv"};
    for (int i = 0; i < 3; i++) {
        int rc = sqlite3_prepare_v3(
            st->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &st->undo[i], NULL);
        if (rc != SQLITE_OK)
            return jv__sqlerr(st, rc, "prepare");
    }
    return JV_OK;
}

int jv__bind_str(sqlite3_stmt *s, int i, jv_str v)
{
    /* An empty string must bind as '' (not NULL): p may be NULL. */
    return sqlite3_bind_text(s, i, v.n ? v.p : "", (int)v.n, SQLITE_STATIC);
}

int jv__bind_id(sqlite3_stmt *s, int i, const jv_id *id)
{
    return sqlite3_bind_blob(s, i, id->b, JV_ID_LEN, SQLITE_STATIC);
}

int jv__bind_u64(sqlite3_stmt *s, int i, uint64_t v)
{
    /* Everything stored fits in int64 (batch rules); clamp the rest, which
     * only query bounds can produce. */
    return sqlite3_bind_int64(s, i, v > INT64_MAX ? INT64_MAX : (int64_t)v);
}

jv_str jv__col_str(sqlite3_stmt *s, int i)
{
    jv_str r;
    r.p = (const char *)sqlite3_column_text(s, i);
    r.n = (size_t)sqlite3_column_bytes(s, i);
    if (!r.p)
        r.p = "";
    return r;
}

jv_err jv__col_id(jv_store *st, sqlite3_stmt *s, int i, jv_id *out)
{
    const void *p = sqlite3_column_blob(s, i);
    if (!p || sqlite3_column_bytes(s, i) != JV_ID_LEN)
        return jv__fail(st, JV_ECORRUPT, "stored replica id of %d bytes",
                        sqlite3_column_bytes(s, i));
    memcpy(out->b, p, JV_ID_LEN);
    return JV_OK;
}

uint64_t jv__col_u64(sqlite3_stmt *s, int i)
{
    int64_t v = sqlite3_column_int64(s, i);
    return v < 0 ? 0 : (uint64_t)v;
}

/* Tests only (jv_store_test_clock_offset): a clock shifted on purpose. */
static _Atomic int64_t test_offset_ms;

void jv_store_test_clock_offset(int64_t ms)
{
    test_offset_ms = ms;
}

void jv_store_set_max_skew(jv_store *st, uint64_t max_skew_ms)
{
    st->max_skew_ms = max_skew_ms;
}

void jv_store_set_clock(jv_store *st, uint64_t (*now)(void *arg), void *arg)
{
    st->clock = now;
    st->clock_arg = arg;
}

uint64_t jv__now_ms(const jv_store *st)
{
    if (st->clock)
        return st->clock(st->clock_arg);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    int64_t off = test_offset_ms;
    return off < 0 && (uint64_t)-off > ms ? 0 : ms + (uint64_t)off;
}

bool jv__beyond_skew(const jv_store *st, uint64_t hlc)
{
    uint64_t now = jv__now_ms(st);
    return st->max_skew_ms && jv_hlc_ms(hlc) > now + st->max_skew_ms;
}

/* -- opening -------------------------------------------------------------- */

void jv_store_opts_default(jv_store_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->sync = JV_SYNC_NORMAL;
    o->cache_kib = 8192;
    o->busy_timeout_ms = 5000;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

/* Step 1: the file header, read without SQLite. The size checks only hold
 * when no WAL is pending: a checkpoint interrupted by a crash may have
 * written page 1 before the pages that extend the file, and recovery from
 * the WAL completes it. */
static jv_err check_header(jv_store *st, const char *path, off_t size,
                           bool wal_pending)
{
    static const char magic[16] = "SQLite format 3";
    uint8_t h[100];
    jv_err err = JV_OK;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return jv__fail(st, errno == EACCES ? JV_EPERM : JV_EIO, "%s: %s", path,
                        strerror(errno));
    ssize_t got = size >= 100 ? pread(fd, h, sizeof(h), 0) : 0;
    if (got < 0) {
        err = jv__fail(st, JV_EIO, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (got < (ssize_t)sizeof(h) || memcmp(h, magic, sizeof(magic)) != 0) {
        err = jv__fail(st, JV_EFOREIGN,
                       "%s: not an SQLite database (no SQLite header)", path);
        goto out;
    }
    uint32_t page = (uint32_t)h[16] << 8 | h[17];
    if (page == 1)
        page = 65536;
    if (page < 512 || page > 65536 || (page & (page - 1)) != 0) {
        err = jv__fail(st, JV_ECORRUPT,
                       "%s: damaged SQLite header (page size %u)", path, page);
        goto out;
    }
    if (h[18] < 1 || h[18] > 2 || h[19] < 1 || h[19] > 2 || h[21] != 64 ||
        h[22] != 32 || h[23] != 32) {
        err = jv__fail(st, JV_ECORRUPT,
                       "%s: damaged SQLite header (format bytes)", path);
        goto out;
    }
    if (wal_pending)
        goto out;
    if (size % (off_t)page != 0) {
        err = jv__fail(st, JV_ECORRUPT,
                       "%s: damaged (size %lld is not a whole number of "
                       "%u-byte pages)",
                       path, (long long)size, page);
        goto out;
    }
    /* The header's own page count is valid when its change counter matches
     * "version valid for"; a file shorter than that lost pages. */
    uint32_t npages = be32(h + 28);
    if (be32(h + 24) == be32(h + 92) && npages != 0 &&
        (off_t)npages * page > size) {
        err = jv__fail(st, JV_ECORRUPT,
                       "%s: damaged (truncated: %u pages expected, %lld "
                       "present)",
                       path, npages, (long long)(size / (off_t)page));
        goto out;
    }
out:
    close(fd);
    return err;
}

/* A jv_err for a failure while inspecting: SQLite's "not a database" and
 * "malformed" are about the file, not about the process. */
static jv_err inspect_fail(jv_store *st, sqlite3 *db, int rc, const char *path)
{
    jv_err err = jv__rc_err(rc);
    if (err == JV_EFOREIGN)
        err = JV_ECORRUPT; /* the header said SQLite: the rest is damaged */
    return jv__fail(st, err, "%s: %s", path,
                    err == JV_ECORRUPT ? "damaged database (SQLite: "
                                         "database disk image is malformed)"
                                       : sqlite3_errmsg(db));
}

static int pragma_int(sqlite3 *db, const char *sql, int64_t *out)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            *out = sqlite3_column_int64(s, 0);
            rc = SQLITE_OK;
        } else if (rc == SQLITE_DONE) {
            *out = 0;
            rc = SQLITE_OK;
        }
    }
    sqlite3_finalize(s);
    return rc;
}

static bool wal_pending(const char *path)
{
    char wal[4096];
    struct stat sb;
    int n = snprintf(wal, sizeof(wal), "%s-wal", path);
    if (n < 0 || (size_t)n >= sizeof(wal))
        return true; /* cannot tell: skip the checks that depend on it */
    return stat(wal, &sb) == 0 && sb.st_size > 0;
}

static jv_err check_tables(jv_store *st, sqlite3 *db, const char *path);

typedef struct {
    int64_t app_id;
    int64_t version;
    int64_t ntables;
} file_info;

/* Step 2: what the file is, through a read-only connection. */
static jv_err inspect(jv_store *st, const char *path, bool quick_check,
                      int busy_ms, file_info *fi)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    jv_err err = JV_OK;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
    if (rc != SQLITE_OK) {
        err = inspect_fail(st, db, rc, path);
        goto out;
    }
    /* Another connection (the node's own, when a second one opens for an
     * export or a verify) may hold a lock for a moment: wait as the store's
     * connections do, rather than fail at once. */
    sqlite3_busy_timeout(db, busy_ms);
    if ((rc = pragma_int(db, "PRAGMA application_id", &fi->app_id)) ||
        (rc = pragma_int(db, "PRAGMA user_version", &fi->version)) ||
        (rc = pragma_int(db,
                         "SELECT count(*) FROM sqlite_schema WHERE type IN "
                         "('table', 'index', 'view', 'trigger')",
                         &fi->ntables))) {
        err = inspect_fail(st, db, rc, path);
        goto out;
    }
    if (fi->app_id != JV_STORE_APP_ID &&
        !(fi->app_id == 0 && fi->ntables == 0 && fi->version == 0)) {
        if (fi->app_id != 0)
            err = jv__fail(st, JV_EFOREIGN,
                           "%s: another application's SQLite database "
                           "(application_id 0x%08llx, Jarvis uses 0x%08x)",
                           path, (unsigned long long)(uint32_t)fi->app_id,
                           JV_STORE_APP_ID);
        else
            err = jv__fail(st, JV_EFOREIGN,
                           "%s: another application's SQLite database (%lld "
                           "schema objects and no application_id)",
                           path, (long long)fi->ntables);
        goto out;
    }
    if (fi->version > JV_STORE_SCHEMA_VERSION) {
        err = jv__fail(st, JV_EVERSION,
                       "%s: schema version %lld is newer than this build's "
                       "%d: use a newer Jarvis",
                       path, (long long)fi->version, JV_STORE_SCHEMA_VERSION);
        goto out;
    }
    if (fi->version == JV_STORE_SCHEMA_VERSION &&
        (err = check_tables(st, db, path)))
        goto out;
    if (quick_check) {
        rc = sqlite3_prepare_v2(db, "PRAGMA quick_check(1)", -1, &s, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_step(s);
        if (rc != SQLITE_ROW) {
            err = inspect_fail(st, db, rc, path);
            goto out;
        }
        const char *res = (const char *)sqlite3_column_text(s, 0);
        if (!res || strcmp(res, "ok") != 0) {
            err = jv__fail(st, JV_ECORRUPT, "%s: damaged database (%s)", path,
                           res ? res : "quick_check failed");
            /* One line: SQLite's report spans several. */
            for (char *c = st->errmsg; *c; c++)
                if (*c == '\n')
                    *c = ' ';
            goto out;
        }
    }
out:
    sqlite3_finalize(s);
    sqlite3_close(db);
    return err;
}

/* Runs the migrations after `from` in one transaction. Re-reads the version
 * inside the transaction: another process may have migrated meanwhile. */
static jv_err migrate(jv_store *st)
{
    jv__tx tx;
    int64_t v = 0;
    jv_err err;
    if ((err = jv__tx_begin(st, &tx)))
        return err;
    int rc = pragma_int(st->db, "PRAGMA user_version", &v);
    if (rc != SQLITE_OK) {
        err = jv__sqlerr(st, rc, "read schema version");
        goto fail;
    }
    for (int64_t k = v; k < JV_STORE_SCHEMA_VERSION; k++) {
        rc = sqlite3_exec(st->db, migrations[k], NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
            err = jv__fail(st, jv__rc_err(rc), "%s: migration %lld failed: %s",
                           st->path, (long long)k + 1, sqlite3_errmsg(st->db));
            goto fail;
        }
    }
    char sql[96];
    snprintf(sql, sizeof(sql),
             "PRAGMA application_id = %d; PRAGMA user_version = %d",
             JV_STORE_APP_ID, JV_STORE_SCHEMA_VERSION);
    rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        err = jv__sqlerr(st, rc, "set schema version");
        goto fail;
    }
    return jv__tx_commit(st, &tx);
fail:
    jv__tx_rollback(st, &tx);
    return err;
}

/* Every table of the current schema must exist in a database of ours. */
static jv_err check_tables(jv_store *st, sqlite3 *db, const char *path)
{
    sqlite3_stmt *s = NULL;
    jv_err err = JV_OK;
    int rc = sqlite3_prepare_v2(
        db,
        "SELECT 1 FROM sqlite_schema WHERE type IN ('table', 'view') "
        "AND name = ?",
        -1, &s, NULL);
    if (rc != SQLITE_OK)
        return inspect_fail(st, db, rc, path);
    for (size_t i = 0; i < sizeof(schema_tables) / sizeof(*schema_tables);
         i++) {
        sqlite3_bind_text(s, 1, schema_tables[i], -1, SQLITE_STATIC);
        rc = sqlite3_step(s);
        sqlite3_reset(s);
        if (rc == SQLITE_DONE) {
            err = jv__fail(st, JV_ECORRUPT,
                           "%s: damaged database (table %s is missing)", path,
                           schema_tables[i]);
            break;
        }
        if (rc != SQLITE_ROW) {
            err = inspect_fail(st, db, rc, path);
            break;
        }
    }
    sqlite3_finalize(s);
    return err;
}

static jv_err set_pragmas(jv_store *st, const jv_store_opts *o)
{
    static const char *const sync_name[] = {"NORMAL", "NORMAL", "FULL",
                                            "EXTRA"};
    char sql[256];
    int sync = o->sync >= JV_SYNC_NORMAL && o->sync <= JV_SYNC_EXTRA
                   ? (int)o->sync
                   : JV_SYNC_NORMAL;
    int cache = o->cache_kib > 0 ? o->cache_kib : 8192;
    snprintf(sql, sizeof(sql),
             "PRAGMA cache_size = -%d; PRAGMA temp_store = MEMORY;"
             "PRAGMA foreign_keys = OFF; PRAGMA trusted_schema = OFF;"
             "PRAGMA synchronous = %s",
             cache, sync_name[sync]);
    sqlite3_busy_timeout(st->db,
                         o->busy_timeout_ms > 0 ? o->busy_timeout_ms : 5000);
    int rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return jv__sqlerr(st, rc, "configure connection");
    /* A checkpoint fsyncs the database: run inside a commit it is the
     * commit's worst latency, so a node does it on another thread. */
    if (o->manual_checkpoint)
        sqlite3_wal_autocheckpoint(st->db, 0);
    return JV_OK;
}

static jv_err set_wal(jv_store *st)
{
    sqlite3_stmt *s = NULL;
    jv_err err = JV_OK;
    int rc =
        sqlite3_prepare_v2(st->db, "PRAGMA journal_mode = WAL", -1, &s, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        err = jv__sqlerr(st, rc, "switch to WAL");
    } else {
        const char *mode = (const char *)sqlite3_column_text(s, 0);
        if (!mode || strcmp(mode, "wal") != 0)
            err = jv__fail(st, JV_ESTORAGE, "%s: cannot use WAL (mode %s)",
                           st->path, mode ? mode : "?");
    }
    sqlite3_finalize(s);
    return err;
}

jv_err jv_store_process_init(void)
{
    return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) == SQLITE_OK ? JV_OK
                                                                   : JV_ESTATE;
}

jv_err jv_store_open(const char *path, const jv_store_opts *o, jv_store **out,
                     char *msg, size_t msglen)
{
    jv_store_opts def;
    file_info fi = {0};
    struct stat sb;
    jv_err err;
    *out = NULL;
    if (!o) {
        jv_store_opts_default(&def);
        o = &def;
    }
    jv_store *st = jv_calloc(1, sizeof(*st));
    if (!st) {
        if (msg && msglen)
            snprintf(msg, msglen, "%s", jv_strerror(JV_ENOMEM));
        return JV_ENOMEM;
    }
    st->readonly = o->readonly;
    if (!(st->path = jv_strndup(path, strlen(path)))) {
        err = jv__fail(st, JV_ENOMEM, "%s", jv_strerror(JV_ENOMEM));
        goto fail;
    }

    /* ":memory:" is a private database that lives as long as the
     * connection (tests): nothing on disk to inspect, no WAL. */
    bool mem = strcmp(path, ":memory:") == 0;
    bool exists = !mem && stat(path, &sb) == 0;
    if (!mem && !exists && errno != ENOENT) {
        err = jv__fail(st, errno == EACCES ? JV_EPERM : JV_EIO, "%s: %s", path,
                       strerror(errno));
        goto fail;
    }
    if (!exists && (!o->create || o->readonly)) {
        err = jv__fail(st, JV_ENOTFOUND, "%s: no such database", path);
        goto fail;
    }
    if (exists && !S_ISREG(sb.st_mode)) {
        err = jv__fail(st, JV_EFOREIGN, "%s: not a regular file", path);
        goto fail;
    }
    /* An empty file is what mkstemp() gives: nothing to lose, a fresh
     * database. Anything else is inspected before it is opened for
     * writing. */
    if (exists && sb.st_size > 0) {
        if ((err = check_header(st, path, sb.st_size, wal_pending(path))) ||
            (err = inspect(st, path, !o->checked,
                           o->busy_timeout_ms > 0 ? o->busy_timeout_ms : 5000,
                           &fi)))
            goto fail;
    }
    bool fresh = fi.app_id != JV_STORE_APP_ID;
    if (fresh && !o->create) {
        err = jv__fail(st, JV_ENOTFOUND,
                       "%s: empty database and create not requested", path);
        goto fail;
    }
    if (fi.version < JV_STORE_SCHEMA_VERSION && o->readonly) {
        err = jv__fail(st, JV_ESTATE,
                       "%s: schema version %lld needs migrating to %d; open "
                       "it writable",
                       path, (long long)fi.version, JV_STORE_SCHEMA_VERSION);
        goto fail;
    }

    int flags = o->readonly ? SQLITE_OPEN_READONLY
                            : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    int rc = sqlite3_open_v2(path, &st->db, flags | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        err = jv__sqlerr(st, rc, path);
        goto fail;
    }
    sqlite3_extended_result_codes(st->db, 1);
    if ((err = prepare_undo(st)) || (err = jv__apply_functions(st)) ||
        (err = set_pragmas(st, o)))
        goto fail;
    if (!o->readonly) {
        /* The migration runs in whatever journal mode the file is in, so
         * that a failed one leaves the file as it was; WAL comes after. */
        if (fi.version < JV_STORE_SCHEMA_VERSION && (err = migrate(st)))
            goto fail;
        if (!mem && (err = set_wal(st)))
            goto fail;
    }
    if ((err = check_tables(st, st->db, path)))
        goto fail;
    *out = st;
    return JV_OK;
fail:
    if (msg && msglen)
        snprintf(msg, msglen, "%s", st->errmsg);
    jv_store_close(st);
    return err;
}

void jv_store_close(jv_store *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->capslots; i++)
        sqlite3_finalize(st->slots[i].stmt);
    for (int i = 0; i < 3; i++)
        sqlite3_finalize(st->undo[i]);
    jv_free(st->slots);
    sqlite3_close(st->db);
    jv_free(st->path);
    jv_free(st);
}

const char *jv_store_sqlite_version(void)
{
    return sqlite3_libversion();
}

const char *jv_store_errmsg(const jv_store *st)
{
    return st ? st->errmsg : "no store";
}

/* -- identity and metadata ------------------------------------------------ */

static const char sql_meta_get[] = "SELECT value FROM meta WHERE key = ?1";
static const char sql_meta_set[] =
    "INSERT INTO meta(key, value) VALUES (?1, ?2) "
    "ON CONFLICT(key) DO UPDATE SET value = excluded.value";
static const char sql_replica_add[] =
    "INSERT INTO replica(id, first_seen_ms) VALUES (?1, ?2) "
    "ON CONFLICT(id) DO NOTHING";

static const char self_key[] = "self";

jv_err jv__replica_seen(jv_store *st, const jv_id *id)
{
    jv_err err;
    sqlite3_stmt *s = jv__stmt(st, sql_replica_add, &err);
    if (!s)
        return err;
    jv__bind_id(s, 1, id);
    jv__bind_u64(s, 2, jv__now_ms(st));
    return jv__run(st, s, "record replica");
}

jv_err jv__self(jv_store *st, jv_id *out)
{
    if (!st->have_self) {
        jv_err err;
        sqlite3_stmt *s = jv__stmt(st, sql_meta_get, &err);
        if (!s)
            return err;
        sqlite3_bind_text(s, 1, self_key, -1, SQLITE_STATIC);
        int rc = sqlite3_step(s);
        err = JV_OK;
        if (rc == SQLITE_ROW) {
            /* Quietly: "no id yet" is an answer, not a failure. */
            if (sqlite3_column_bytes(s, 0) != JV_ID_LEN)
                err = jv__fail(st, JV_ECORRUPT, "stored node id of %d bytes",
                               sqlite3_column_bytes(s, 0));
            else
                memcpy(st->self.b, sqlite3_column_blob(s, 0), JV_ID_LEN);
        } else if (rc == SQLITE_DONE) {
            err = JV_ENOTFOUND;
        } else {
            err = jv__sqlerr(st, rc, "read node id");
        }
        jv__reset(s);
        if (err)
            return err;
        st->have_self = true;
    }
    *out = st->self;
    return JV_OK;
}

jv_err jv_store_get_self(jv_store *st, jv_id *out)
{
    jv_err err = jv__self(st, out);
    if (err == JV_ENOTFOUND)
        jv__fail(st, err, "this node's id is not recorded yet");
    return err;
}

jv_err jv_store_set_self(jv_store *st, const jv_id *self)
{
    jv_id cur;
    jv__tx tx;
    jv_err err = jv__self(st, &cur);
    if (err == JV_OK) {
        if (!jv_id_eq(&cur, self))
            return jv__fail(st, JV_EINVAL,
                            "this database belongs to another node id");
        return JV_OK;
    }
    if (err != JV_ENOTFOUND)
        return err;
    if ((err = jv__tx_begin(st, &tx)))
        return err;
    if ((err = jv_store_meta_set(st, self_key, self->b, JV_ID_LEN)) ||
        (err = jv__replica_seen(st, self)))
        goto fail;
    if ((err = jv__tx_commit(st, &tx)))
        return err; /* rolled back by jv__tx_commit */
    st->self = *self;
    st->have_self = true;
    return JV_OK;
fail:
    jv__tx_rollback(st, &tx);
    return err;
}

jv_err jv_store_meta_set(jv_store *st, const char *key, const void *val,
                         size_t len)
{
    jv_err err;
    sqlite3_stmt *s = jv__stmt(st, sql_meta_set, &err);
    if (!s)
        return err;
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_blob(s, 2, len ? val : "", (int)len, SQLITE_STATIC);
    return jv__run(st, s, "write metadata");
}

jv_err jv_store_meta_get(jv_store *st, const char *key, void *buf, size_t cap,
                         size_t *len)
{
    jv_err err;
    sqlite3_stmt *s = jv__stmt(st, sql_meta_get, &err);
    if (!s)
        return err;
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        size_t n = (size_t)sqlite3_column_bytes(s, 0);
        const void *p = sqlite3_column_blob(s, 0);
        if (n && p)
            memcpy(buf, p, n < cap ? n : cap);
        *len = n;
        err = JV_OK;
    } else if (rc == SQLITE_DONE) {
        err = jv__fail(st, JV_ENOTFOUND, "no metadata value %s", key);
    } else {
        err = jv__sqlerr(st, rc, "read metadata");
    }
    jv__reset(s);
    return err;
}

/* -- checkpoints ---------------------------------------------------------- */

jv_err jv_store_checkpoint(jv_store *st, uint64_t *frames,
                           uint64_t *checkpointed)
{
    int log = 0, done = 0;
    int rc = sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_PASSIVE,
                                       &log, &done);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY)
        return jv__sqlerr(st, rc, "checkpoint");
    if (frames)
        *frames = log > 0 ? (uint64_t)log : 0;
    if (checkpointed)
        *checkpointed = done > 0 ? (uint64_t)done : 0;
    return JV_OK;
}

uint64_t jv_store_trust_gen(const jv_store *st)
{
    return st->trust_gen;
}

jv_err jv_store_read_begin(jv_store *st)
{
    if (st->read_depth) {
        st->read_depth++;
        return JV_OK;
    }
    jv_err err = jv__exec(st, "BEGIN DEFERRED");
    if (!err)
        st->read_depth = 1;
    return err;
}

void jv_store_read_end(jv_store *st)
{
    if (st->read_depth && --st->read_depth == 0)
        jv__exec(st, "COMMIT");
}

/* -- statistics ----------------------------------------------------------- */

static const char sql_stats[] =
    "SELECT (SELECT page_count FROM pragma_page_count()) * "
    "       (SELECT page_size FROM pragma_page_size()),"
    "       (SELECT batches FROM log_stats),"
    "       (SELECT bytes FROM log_stats),"
    "       (SELECT coalesce(sum(seq), 0) FROM vv),"
    "       (SELECT count(*) FROM held),"
    /* An origin's stamps only grow: its last batch has its greatest. */
    "       (SELECT coalesce(max(b.hlc), 0) FROM vv"
    "          JOIN batch b ON b.origin = vv.origin AND b.last_seq = vv.seq)";

jv_err jv_store_stats_get(jv_store *st, jv_store_stats *out)
{
    jv_err err;
    jv_store_stats r = {0};
    sqlite3_stmt *s = jv__stmt(st, sql_stats, &err);
    if (!s)
        return err;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        r.file_bytes = jv__col_u64(s, 0);
        r.batches = jv__col_u64(s, 1);
        r.log_bytes = jv__col_u64(s, 2);
        /* An origin's log holds exactly its operations 1..vv[origin]. */
        r.ops = jv__col_u64(s, 3);
        r.held = jv__col_u64(s, 4);
        r.max_hlc = jv__col_u64(s, 5);
        err = JV_OK;
    } else {
        err = jv__sqlerr(st, rc, "read statistics");
    }
    jv__reset(s);
    if (err)
        return err;
    size_t plen = strlen(st->path);
    char *wal = jv_malloc(plen + 5);
    if (!wal)
        return jv__fail(st, JV_ENOMEM, "%s", jv_strerror(JV_ENOMEM));
    memcpy(wal, st->path, plen);
    memcpy(wal + plen, "-wal", 5);
    struct stat sb;
    if (stat(wal, &sb) == 0)
        r.wal_bytes = (uint64_t)sb.st_size;
    jv_free(wal);
    *out = r;
    return JV_OK;
}

jv_err jv_store_replace_self(jv_store *st, const jv_id *self)
{
    jv__tx tx;
    jv_err err;
    if ((err = jv__tx_begin(st, &tx)))
        return err;
    if ((err = jv_store_meta_set(st, self_key, self->b, JV_ID_LEN)) ||
        (err = jv__replica_seen(st, self))) {
        jv__tx_rollback(st, &tx);
        return err;
    }
    if ((err = jv__tx_commit(st, &tx)))
        return err; /* rolled back by jv__tx_commit */
    st->self = *self;
    st->have_self = true;
    return JV_OK;
}
