/*
 * snapshot.c - snapshots, the base, compaction and installs (snapshot.h).
 *
 * The encoder reads each replicated table in primary-key order and writes
 * its rows in the canonical encoding; the decoder is strict and calls a
 * row callback, which is NULL for a check and the join for an install.
 * Joining is the CRDT join, table by table, in one transaction: counters
 * take the greater shares, audit and successions are unions, config and
 * trust keep the LWW winner, cluster keys keep the same winners as
 * apply.c, and the archive is the OR-Set join: an entry stays if both
 * sides have it or the other side's context has not seen its dot, and the
 * contexts are united and folded as apply.c keeps them.
 */
#include "snapshot.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "apply.h"
#include "query.h"
#include "store_int.h"

static const uint8_t magic[7] = {'J', 'V', 'S', 'N', 'A', 'P', 1};
static const char sig_domain[] = "jarvis/snapshot/v1";

enum {
    T_VV = 1,
    T_CTX,
    T_CLOUD,
    T_ARCHIVE,
    T_COUNTER,
    T_AUDIT,
    T_CONFIG,
    T_TRUST,
    T_SUCC,
    T_CKEY,
    T_CKEY_REV,
    T_COUNT
};

static const struct {
    const char *name;
    const char *types;
    const char *sql;
} tables[T_COUNT] = {
    [T_VV] = {"vv", "IiI", "SELECT origin, seq, hash FROM vv ORDER BY origin"},
    [T_CTX] = {"ctx", "Ii", "SELECT replica, seq FROM ctx ORDER BY replica"},
    [T_CLOUD] = {"ctx_cloud", "Ii",
                 "SELECT replica, n FROM ctx_cloud ORDER BY replica, n"},
    [T_ARCHIVE] = {"archive", "tIiit",
                   "SELECT key, replica, n, stamp, value FROM archive "
                   "ORDER BY key, replica, n"},
    [T_COUNTER] = {"counter", "tIii",
                   "SELECT name, replica, p, n FROM counter "
                   "ORDER BY name, replica"},
    [T_AUDIT] = {"audit", "iIitttt",
                 "SELECT time_ms, origin, seq, actor, action, target, detail "
                 "FROM audit ORDER BY time_ms, origin, seq"},
    [T_CONFIG] = {"config", "ttiI",
                  "SELECT key, value, stamp, replica FROM config ORDER BY key"},
    [T_TRUST] = {"trust", "IiiIt",
                 "SELECT node, trusted, stamp, set_by, name FROM trust "
                 "ORDER BY node"},
    [T_SUCC] = {"succession", "IIiiS",
                "SELECT old, new, last_seq, time_ms, sig FROM succession "
                "ORDER BY old"},
    [T_CKEY] = {"cluster_key", "tttbitI",
                "SELECT id, name, role, hash, created_ms, created_by, origin "
                "FROM cluster_key ORDER BY id"},
    [T_CKEY_REV] = {"cluster_key_revoked", "titI",
                    "SELECT id, revoked_ms, revoked_by, origin FROM "
                    "cluster_key_revoked ORDER BY id"},
};

#define MAX_COLS 7

/* One decoded column: an integer, or bytes borrowed from the encoding. */
typedef struct {
    char type;
    uint64_t i;
    const uint8_t *p;
    size_t n;
} col;

/* -- digest and signature ------------------------------------------------- */

void jv_snap_digest(const uint8_t *enc, size_t len, uint8_t out[JV_HASH_LEN])
{
    crypto_generichash(out, JV_HASH_LEN, enc, len, NULL, 0);
}

static void sig_msg(const uint8_t digest[JV_HASH_LEN],
                    uint8_t m[sizeof(sig_domain) - 1 + JV_HASH_LEN])
{
    memcpy(m, sig_domain, sizeof(sig_domain) - 1);
    memcpy(m + sizeof(sig_domain) - 1, digest, JV_HASH_LEN);
}

void jv_snap_sign(const uint8_t digest[JV_HASH_LEN], const jv_keypair *kp,
                  uint8_t sig[JV_SIG_LEN])
{
    uint8_t m[sizeof(sig_domain) - 1 + JV_HASH_LEN];
    sig_msg(digest, m);
    crypto_sign_detached(sig, NULL, m, sizeof(m), kp->sk);
}

jv_err jv_snap_verify_sig(const uint8_t digest[JV_HASH_LEN],
                          const uint8_t sig[JV_SIG_LEN], const jv_id *maker)
{
    uint8_t m[sizeof(sig_domain) - 1 + JV_HASH_LEN];
    sig_msg(digest, m);
    return crypto_sign_verify_detached(sig, m, sizeof(m), maker->b) == 0
               ? JV_OK
               : JV_ESIG;
}

/* -- encoding ------------------------------------------------------------- */

static void put_u64(jv_buf *b, uint64_t v)
{
    uint8_t x[8];
    for (int i = 0; i < 8; i++)
        x[i] = (uint8_t)(v >> (56 - 8 * i));
    jv_buf_append(b, x, 8);
}

static void put_u32(jv_buf *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8),
                    (uint8_t)v};
    jv_buf_append(b, x, 4);
}

/* One column of a row read from the database, as its type says. */
static jv_err put_col(jv_store *st, sqlite3_stmt *s, int i, char type,
                      jv_buf *b)
{
    const void *p;
    size_t n;
    if (type == 'i') {
        int64_t v = sqlite3_column_int64(s, i);
        if (sqlite3_column_type(s, i) != SQLITE_INTEGER || v < 0)
            return jv__fail(st, JV_ECORRUPT, "snapshot: column %d: bad integer",
                            i);
        put_u64(b, (uint64_t)v);
        return JV_OK;
    }
    p = type == 't' ? (const void *)sqlite3_column_text(s, i)
                    : sqlite3_column_blob(s, i);
    n = (size_t)sqlite3_column_bytes(s, i);
    size_t want = type == 'I' ? 32 : type == 'S' ? 64 : 0;
    if ((want && n != want) || (type == 'b' && n > 64) ||
        (type == 't' && n > JV_SNAP_MAX_TEXT))
        return jv__fail(st, JV_ECORRUPT, "snapshot: column %d: bad length %zu",
                        i, n);
    if (!want)
        put_u32(b, (uint32_t)n);
    if (n)
        jv_buf_append(b, p, n);
    return JV_OK;
}

static jv_err encode_table(jv_store *st, int t, jv_buf *out)
{
    jv_err err;
    sqlite3_stmt *s = jv__stmt(st, tables[t].sql, &err);
    if (!s)
        return err;
    int rc;
    size_t nc = strlen(tables[t].types);
    uint8_t tag = (uint8_t)t;
    err = JV_OK;
    while (!err && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        jv_buf_append(out, &tag, 1);
        for (size_t i = 0; !err && i < nc; i++)
            err = put_col(st, s, (int)i, tables[t].types[i], out);
        if (!err && jv_buf_err(out))
            err = jv__fail(st, JV_ENOMEM, "snapshot: out of memory");
        if (!err && out->len > JV_SNAP_MAX_BYTES)
            err = jv__fail(st, JV_ETOOBIG, "snapshot: state beyond %u bytes",
                           JV_SNAP_MAX_BYTES);
    }
    if (!err && rc != SQLITE_DONE)
        err = jv__sqlerr(st, rc, "snapshot: read state");
    jv__reset(s);
    return err;
}

jv_err jv_snap_encode(jv_store *st, jv_buf *out)
{
    jv_err err = JV_OK;
    bool own = sqlite3_get_autocommit(st->db);
    if (own && (err = jv__exec(st, "BEGIN")))
        return err;
    jv_buf_append(out, magic, sizeof(magic));
    for (int t = 1; !err && t < T_COUNT; t++)
        err = encode_table(st, t, out);
    uint8_t end = 0;
    jv_buf_append(out, &end, 1);
    if (!err && jv_buf_err(out))
        err = jv__fail(st, JV_ENOMEM, "snapshot: out of memory");
    if (own)
        jv__exec(st, "COMMIT");
    return err;
}

/* -- decoding ------------------------------------------------------------- */

typedef jv_err (*row_fn)(void *arg, int tag, const col *c);

typedef struct {
    const uint8_t *p, *end;
} reader;

static bool get_u64(reader *r, uint64_t *v)
{
    if (r->end - r->p < 8)
        return false;
    uint64_t x = 0;
    for (int i = 0; i < 8; i++)
        x = x << 8 | r->p[i];
    r->p += 8;
    *v = x;
    return true;
}

static const char *get_col(reader *r, char type, col *c)
{
    c->type = type;
    if (type == 'i') {
        if (!get_u64(r, &c->i))
            return "truncated";
        return c->i > (uint64_t)INT64_MAX ? "integer out of range" : NULL;
    }
    size_t n = type == 'I' ? 32 : type == 'S' ? 64 : 0;
    if (!n) {
        if (r->end - r->p < 4)
            return "truncated";
        n = (size_t)r->p[0] << 24 | (size_t)r->p[1] << 16 |
            (size_t)r->p[2] << 8 | r->p[3];
        r->p += 4;
        if (n > (type == 'b' ? 64u : JV_SNAP_MAX_TEXT))
            return "length beyond its bound";
    }
    if ((size_t)(r->end - r->p) < n)
        return "truncated";
    c->p = r->p;
    c->n = n;
    r->p += n;
    if (type == 't' && !jv_str_valid_utf8((jv_str){(const char *)c->p, n}))
        return "text not UTF-8";
    return NULL;
}

/* Strict: magic, tags in order, every column within bounds, the end mark
 * and nothing after it. fn (may be NULL) gets each row. *why: the reason
 * of a JV_EDECODE. */
static jv_err decode(const uint8_t *enc, size_t len, row_fn fn, void *arg,
                     const char **why)
{
    reader r = {enc, enc + len};
    int last = 1;
    *why = NULL;
    if (len > JV_SNAP_MAX_BYTES) {
        *why = "beyond the size bound";
        return JV_ETOOBIG;
    }
    if (len < sizeof(magic) || memcmp(enc, magic, sizeof(magic)) != 0) {
        *why = len < sizeof(magic) ? "truncated" : "not a snapshot (magic)";
        return JV_EDECODE;
    }
    r.p += sizeof(magic);
    for (;;) {
        if (r.p == r.end) {
            *why = "truncated (no end mark)";
            return JV_EDECODE;
        }
        int tag = *r.p++;
        if (tag == 0)
            break;
        if (tag >= T_COUNT || tag < last) {
            *why = "bad or out-of-order table tag";
            return JV_EDECODE;
        }
        last = tag;
        col c[MAX_COLS];
        const char *ty = tables[tag].types;
        for (size_t i = 0; ty[i]; i++)
            if ((*why = get_col(&r, ty[i], &c[i])))
                return JV_EDECODE;
        jv_err err;
        if (fn && (err = fn(arg, tag, c)))
            return err;
    }
    if (r.p != r.end) {
        *why = "bytes after the end mark";
        return JV_EDECODE;
    }
    return JV_OK;
}

static jv_err vv_row(void *arg, int tag, const col *c)
{
    jv_vv *F = arg;
    jv_id id;
    if (tag != T_VV)
        return JV_OK;
    memcpy(id.b, c[0].p, JV_ID_LEN);
    if (c[1].i == 0)
        return JV_EDECODE;
    return jv_vv_set(F, &id, c[1].i);
}

jv_err jv_snap_check(const uint8_t *enc, size_t len, jv_vv *F, char *msg,
                     size_t msglen)
{
    const char *why = NULL;
    jv_vv tmp;
    jv_vv_init(&tmp);
    jv_err err = decode(enc, len, vv_row, &tmp, &why);
    if (err && msg)
        snprintf(msg, msglen, "snapshot: %s",
                 why                 ? why
                 : err == JV_EDECODE ? "vector entry of seq 0"
                                     : jv_strerror(err));
    if (!err && F) {
        jv_vv_fini(F);
        *F = tmp;
    } else {
        jv_vv_fini(&tmp);
    }
    return err;
}

/* -- join ----------------------------------------------------------------- */

static const char sql_tmp_create[] =
    "CREATE TEMP TABLE IF NOT EXISTS snap_ctx(replica BLOB PRIMARY KEY, "
    "seq INTEGER) WITHOUT ROWID;"
    "CREATE TEMP TABLE IF NOT EXISTS snap_cloud(replica BLOB, n INTEGER, "
    "PRIMARY KEY (replica, n)) WITHOUT ROWID;"
    "CREATE TEMP TABLE IF NOT EXISTS snap_dots(replica BLOB, n INTEGER, "
    "PRIMARY KEY (replica, n)) WITHOUT ROWID;"
    "DELETE FROM temp.snap_ctx; DELETE FROM temp.snap_cloud;"
    "DELETE FROM temp.snap_dots;";
static const char sql_tmp_ctx[] = "INSERT INTO temp.snap_ctx VALUES (?1, ?2)";
static const char sql_tmp_cloud[] =
    "INSERT OR IGNORE INTO temp.snap_cloud VALUES (?1, ?2)";
static const char sql_tmp_dot[] =
    "INSERT OR IGNORE INTO temp.snap_dots VALUES (?2, ?3)";
/* An entry of theirs stays unless our context has seen its dot. Its span
 * (apply.c, archive_span_of) is made first; the entry's id is its dot. */
static const char sql_j_archive_span[] =
    "INSERT INTO archive_span(replica, hi) VALUES (?2, ?3 >> 40) "
    "ON CONFLICT DO NOTHING";
static const char sql_j_archive[] =
    "INSERT OR IGNORE INTO archive_entry(id, key, stamp, value) "
    "SELECT ((SELECT span FROM archive_span WHERE replica = ?2 AND "
    "hi = (?3 >> 40)) << 40) | (?3 & 1099511627775), ?1, ?4, ?5 "
    "WHERE NOT EXISTS (SELECT 1 FROM ctx "
    "WHERE replica = ?2 AND seq >= ?3) AND NOT EXISTS (SELECT 1 FROM "
    "ctx_cloud WHERE replica = ?2 AND n = ?3)";
/* An entry of ours goes if their context has seen its dot and they do not
 * have it: removed there. The entries of a span with n <= seq are a range
 * of ids. */
static const char sql_j_archive_del[] =
    "DELETE FROM archive_entry WHERE id IN ("
    " SELECT a.id FROM temp.snap_ctx c JOIN archive_span s"
    "  ON s.replica = c.replica AND (s.hi << 40) <= c.seq"
    "  JOIN archive_entry a ON a.id BETWEEN (s.span << 40)"
    "   AND (s.span << 40) + min(1099511627775, c.seq - (s.hi << 40))"
    "  WHERE NOT EXISTS (SELECT 1 FROM temp.snap_dots d"
    "   WHERE d.replica = s.replica"
    "   AND d.n = ((s.hi << 40) | (a.id & 1099511627775)))"
    " UNION ALL"
    " SELECT a.id FROM temp.snap_cloud c JOIN archive_span s"
    "  ON s.replica = c.replica AND s.hi = (c.n >> 40)"
    "  JOIN archive_entry a ON a.id = ((s.span << 40) | (c.n & 1099511627775))"
    "  WHERE NOT EXISTS (SELECT 1 FROM temp.snap_dots d"
    "   WHERE d.replica = c.replica AND d.n = c.n))";
static const char sql_j_ctx[] =
    "INSERT INTO ctx(replica, seq) SELECT replica, seq FROM temp.snap_ctx "
    "WHERE true ON CONFLICT(replica) DO UPDATE SET "
    "seq = max(seq, excluded.seq)";
static const char sql_j_cloud[] =
    "INSERT OR IGNORE INTO ctx_cloud(replica, n) SELECT replica, n FROM "
    "temp.snap_cloud";
static const char sql_j_touched[] =
    "SELECT replica FROM temp.snap_ctx UNION SELECT replica FROM "
    "temp.snap_cloud";
static const char sql_ctx_seq[] = "SELECT seq FROM ctx WHERE replica = ?1";
static const char sql_cloud_after[] =
    "SELECT n FROM ctx_cloud WHERE replica = ?1 AND n > ?2 ORDER BY n";
static const char sql_cloud_fold[] =
    "DELETE FROM ctx_cloud WHERE replica = ?1 AND n <= ?2";
static const char sql_ctx_put[] =
    "INSERT INTO ctx(replica, seq) VALUES (?1, ?2) "
    "ON CONFLICT(replica) DO UPDATE SET seq = excluded.seq";

static const char sql_j_counter[] =
    "INSERT INTO counter(name, replica, p, n) VALUES (?1, ?2, ?3, ?4) "
    "ON CONFLICT(name, replica) DO UPDATE SET "
    "p = max(p, excluded.p), n = max(n, excluded.n)";
static const char sql_j_audit[] =
    "INSERT OR IGNORE INTO audit(time_ms, origin, seq, actor, action, "
    "target, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
static const char sql_j_minute[] =
    "INSERT OR IGNORE INTO audit_minute(field, value, minute) "
    "VALUES (?1, ?2, ?3)";
static const char sql_j_config[] =
    "INSERT INTO config(key, value, stamp, replica) VALUES (?1, ?2, ?3, ?4) "
    "ON CONFLICT(key) DO UPDATE SET value = excluded.value, "
    "stamp = excluded.stamp, replica = excluded.replica "
    "WHERE excluded.stamp > config.stamp OR (excluded.stamp = config.stamp "
    "AND jv_lww_after(excluded.stamp, excluded.replica, excluded.value, "
    "config.stamp, config.replica, config.value))";
static const char sql_j_trust[] =
    "INSERT INTO trust(node, trusted, stamp, set_by, name) "
    "VALUES (?1, ?2, ?3, ?4, ?5) "
    "ON CONFLICT(node) DO UPDATE SET trusted = excluded.trusted, "
    "stamp = excluded.stamp, set_by = excluded.set_by, name = excluded.name "
    "WHERE (excluded.stamp, excluded.set_by, excluded.trusted, excluded.name) "
    "> (trust.stamp, trust.set_by, trust.trusted, trust.name)";
static const char sql_j_succ[] =
    "INSERT INTO succession(old, new, last_seq, time_ms, sig) "
    "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING";
static const char sql_j_ckey[] =
    "INSERT INTO cluster_key(id, name, role, hash, created_ms, created_by, "
    "origin) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
    "ON CONFLICT(id) DO UPDATE SET name = excluded.name, "
    "role = excluded.role, hash = excluded.hash, "
    "created_ms = excluded.created_ms, created_by = excluded.created_by, "
    "origin = excluded.origin "
    "WHERE (excluded.origin, excluded.created_ms, excluded.hash, "
    "excluded.role, excluded.name, excluded.created_by) < "
    "(cluster_key.origin, cluster_key.created_ms, cluster_key.hash, "
    "cluster_key.role, cluster_key.name, cluster_key.created_by)";
static const char sql_j_ckey_rev[] =
    "INSERT INTO cluster_key_revoked(id, revoked_ms, revoked_by, origin) "
    "VALUES (?1, ?2, ?3, ?4) "
    "ON CONFLICT(id) DO UPDATE SET revoked_ms = excluded.revoked_ms, "
    "revoked_by = excluded.revoked_by, origin = excluded.origin "
    "WHERE (excluded.revoked_ms, excluded.origin, excluded.revoked_by) < "
    "(cluster_key_revoked.revoked_ms, cluster_key_revoked.origin, "
    "cluster_key_revoked.revoked_by)";
static const char sql_j_ckey_differs[] =
    "SELECT 1 FROM cluster_key WHERE id = ?1 AND (name, role, hash, "
    "created_ms, created_by, origin) <> (?2, ?3, ?4, ?5, ?6, ?7)";
/* As apply.c: two different adds of one id revoke it. */
static const char sql_j_ckey_conflict[] =
    "INSERT INTO cluster_key_revoked(id, revoked_ms, revoked_by, origin) "
    "VALUES (?1, 0, 'conflicting adds', zeroblob(32)) "
    "ON CONFLICT(id) DO UPDATE SET revoked_ms = excluded.revoked_ms, "
    "revoked_by = excluded.revoked_by, origin = excluded.origin "
    "WHERE (excluded.revoked_ms, excluded.origin, excluded.revoked_by) < "
    "(cluster_key_revoked.revoked_ms, cluster_key_revoked.origin, "
    "cluster_key_revoked.revoked_by)";
static const char sql_vv_get[] = "SELECT seq, hash FROM vv WHERE origin = ?1";
static const char sql_vv_put[] =
    "INSERT INTO vv(origin, seq, hash) VALUES (?1, ?2, ?3) "
    "ON CONFLICT(origin) DO UPDATE SET seq = excluded.seq, "
    "hash = excluded.hash";
static const char sql_batch_at[] =
    "SELECT hash FROM batch WHERE origin = ?1 AND last_seq = ?2";
static const char sql_cut_at[] =
    "SELECT hash FROM cut WHERE origin = ?1 AND seq = ?2";

static const char *const join_sql[T_COUNT] = {
    [T_CTX] = sql_tmp_ctx,       [T_CLOUD] = sql_tmp_cloud,
    [T_ARCHIVE] = sql_j_archive, [T_COUNTER] = sql_j_counter,
    [T_AUDIT] = sql_j_audit,     [T_CONFIG] = sql_j_config,
    [T_TRUST] = sql_j_trust,     [T_SUCC] = sql_j_succ,
    [T_CKEY] = sql_j_ckey,       [T_CKEY_REV] = sql_j_ckey_rev,
};

typedef struct {
    jv_store *st;
    bool archive_done;
} join_ctx;

static void bind_cols(sqlite3_stmt *s, const col *c, const char *types)
{
    for (int i = 0; types[i]; i++) {
        if (types[i] == 'i')
            sqlite3_bind_int64(s, i + 1, (int64_t)c[i].i);
        else if (types[i] == 't')
            sqlite3_bind_text(s, i + 1, (const char *)c[i].p, (int)c[i].n,
                              SQLITE_STATIC);
        else
            sqlite3_bind_blob(s, i + 1, c[i].p, (int)c[i].n, SQLITE_STATIC);
    }
}

static jv_err run_cols(jv_store *st, const char *sql, const col *c,
                       const char *types, const char *what)
{
    jv_err err;
    sqlite3_stmt *s = jv__stmt(st, sql, &err);
    if (!s)
        return err;
    bind_cols(s, c, types);
    return jv__run(st, s, what);
}

/* Whether a hash read by sql (bound to origin, seq) is `hash`; *found
 * false when there is no row. */
static jv_err hash_at(jv_store *st, const char *sql, const jv_id *o,
                      uint64_t seq, const uint8_t *hash, bool *found,
                      bool *same)
{
    jv_err err;
    sqlite3_stmt *s = jv__stmt(st, sql, &err);
    if (!s)
        return err;
    jv__bind_id(s, 1, o);
    jv__bind_u64(s, 2, seq);
    int rc = sqlite3_step(s);
    *found = rc == SQLITE_ROW;
    if (*found)
        *same = sqlite3_column_bytes(s, 0) == JV_HASH_LEN &&
                memcmp(sqlite3_column_blob(s, 0), hash, JV_HASH_LEN) == 0;
    err = rc == SQLITE_ROW || rc == SQLITE_DONE
              ? JV_OK
              : jv__sqlerr(st, rc, "snapshot: read log");
    jv__reset(s);
    return err;
}

/* Raises vv[origin] to the snapshot's entry; the same sequence number with
 * another hash is an equivocation of the origin (or a lying maker). */
static jv_err join_vv(jv_store *st, const col *c)
{
    jv_id o;
    jv_err err;
    memcpy(o.b, c[0].p, JV_ID_LEN);
    sqlite3_stmt *s = jv__stmt(st, sql_vv_get, &err);
    if (!s)
        return err;
    jv__bind_id(s, 1, &o);
    int rc = sqlite3_step(s);
    uint64_t have = 0;
    bool same = true, found = false;
    if (rc == SQLITE_ROW) {
        have = jv__col_u64(s, 0);
        if (have == c[1].i)
            same = sqlite3_column_bytes(s, 1) == JV_HASH_LEN &&
                   memcmp(sqlite3_column_blob(s, 1), c[2].p, JV_HASH_LEN) == 0;
    }
    err = rc == SQLITE_ROW || rc == SQLITE_DONE
              ? JV_OK
              : jv__sqlerr(st, rc, "snapshot: read version vector");
    jv__reset(s);
    if (err)
        return err;
    if (have > c[1].i) {
        if ((err =
                 hash_at(st, sql_batch_at, &o, c[1].i, c[2].p, &found, &same)))
            return err;
        if (!found &&
            (err = hash_at(st, sql_cut_at, &o, c[1].i, c[2].p, &found, &same)))
            return err;
    }
    if (!same)
        return jv__fail(st, JV_EEQUIVOCATE,
                        "snapshot: its vector names another batch than ours "
                        "at the same sequence number");
    if ((err = jv__replica_seen(st, &o)))
        return err;
    if (have >= c[1].i)
        return JV_OK;
    return run_cols(st, sql_vv_put, c, "IiI", "snapshot: write vector");
}

static jv_err join_audit(jv_store *st, const col *c)
{
    jv_err err = run_cols(st, sql_j_audit, c, tables[T_AUDIT].types,
                          "snapshot: join audit");
    for (int f = 0; !err && f < 2; f++) {
        col m[3] = {{'i', (uint64_t)f, NULL, 0},
                    c[3 + f],
                    {'i', c[0].i / JV_AUDIT_MINUTE_MS, NULL, 0}};
        err = run_cols(st, sql_j_minute, m, "iti", "snapshot: join audit");
    }
    return err;
}

/* Folds one replica's context after the union: cloud dots at or below the
 * compact part go, contiguous ones join it (as apply.c keeps it). */
static jv_err fold_one(jv_store *st, const jv_id *r)
{
    jv_err err;
    sqlite3_stmt *s = jv__stmt(st, sql_ctx_seq, &err);
    if (!s)
        return err;
    jv__bind_id(s, 1, r);
    int rc = sqlite3_step(s);
    uint64_t seq = rc == SQLITE_ROW ? jv__col_u64(s, 0) : 0, was = seq;
    jv__reset(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return jv__sqlerr(st, rc, "snapshot: read context");
    if (!(s = jv__stmt(st, sql_cloud_after, &err)))
        return err;
    jv__bind_id(s, 1, r);
    jv__bind_u64(s, 2, 0);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        uint64_t n = jv__col_u64(s, 0);
        if (n <= seq)
            continue;
        if (n != seq + 1)
            break;
        seq = n;
    }
    jv__reset(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return jv__sqlerr(st, rc, "snapshot: read context");
    if (!(s = jv__stmt(st, sql_cloud_fold, &err)))
        return err;
    jv__bind_id(s, 1, r);
    jv__bind_u64(s, 2, seq);
    if ((err = jv__run(st, s, "snapshot: fold context")))
        return err;
    if (seq == was)
        return JV_OK;
    if (!(s = jv__stmt(st, sql_ctx_put, &err)))
        return err;
    jv__bind_id(s, 1, r);
    jv__bind_u64(s, 2, seq);
    return jv__run(st, s, "snapshot: write context");
}

/* After the archive rows: drop ours that they removed, unite contexts. */
static jv_err join_archive_end(jv_store *st)
{
    jv_err err;
    if ((err = jv__exec(st, sql_j_archive_del)) ||
        (err = jv__exec(st, sql_j_ctx)) || (err = jv__exec(st, sql_j_cloud)))
        return err;
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(st->db, sql_j_touched, -1, &s, NULL);
    if (rc != SQLITE_OK)
        return jv__sqlerr(st, rc, "snapshot: read context");
    while (!err && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        jv_id r;
        if (!(err = jv__col_id(st, s, 0, &r)))
            err = fold_one(st, &r);
    }
    if (!err && rc != SQLITE_DONE)
        err = jv__sqlerr(st, rc, "snapshot: read context");
    sqlite3_finalize(s);
    return err;
}

static jv_err join_row(void *arg, int tag, const col *c)
{
    join_ctx *j = arg;
    jv_store *st = j->st;
    jv_err err;
    if (tag > T_ARCHIVE && !j->archive_done) {
        j->archive_done = true;
        if ((err = join_archive_end(st)))
            return err;
    }
    switch (tag) {
    case T_VV:
        return join_vv(st, c);
    case T_AUDIT:
        return join_audit(st, c);
    case T_ARCHIVE:
        if ((err = run_cols(st, sql_tmp_dot, c, tables[tag].types,
                            "snapshot: join archive")) ||
            (err = run_cols(st, sql_j_archive_span, c, tables[tag].types,
                            "snapshot: join archive")))
            return err;
        break;
    case T_CKEY: {
        sqlite3_stmt *d = jv__stmt(st, sql_j_ckey_differs, &err);
        if (!d)
            return err;
        bind_cols(d, c, tables[tag].types);
        int rc = sqlite3_step(d);
        jv__reset(d);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            return jv__sqlerr(st, rc, "snapshot: read cluster keys");
        if (rc == SQLITE_ROW && (err = run_cols(st, sql_j_ckey_conflict, c, "t",
                                                "snapshot: join cluster keys")))
            return err;
        break;
    }
    case T_TRUST: {
        jv_id node;
        memcpy(node.b, c[0].p, JV_ID_LEN);
        if ((err = jv__replica_seen(st, &node)))
            return err;
        break;
    }
    default:
        break;
    }
    return run_cols(st, join_sql[tag], c, tables[tag].types, "snapshot: join");
}

static jv_err exec_multi(jv_store *st, const char *sql)
{
    int rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? JV_OK : jv__sqlerr(st, rc, "snapshot");
}

/* The join inside an open transaction. */
static jv_err join_in_tx(jv_store *st, const uint8_t *enc, size_t len)
{
    const char *why;
    jv_err err;
    join_ctx j = {st, false};
    st->trust_gen++; /* a state may carry trust entries and successions */
    if ((err = exec_multi(st, sql_tmp_create)))
        return err;
    err = decode(enc, len, join_row, &j, &why);
    if (err == JV_EDECODE || err == JV_ETOOBIG)
        return jv__fail(st, err, "snapshot: %s", why ? why : "malformed");
    if (!err && !j.archive_done)
        err = join_archive_end(st);
    return err;
}

jv_err jv_store_snap_join(jv_store *st, const uint8_t *enc, size_t len)
{
    jv__tx tx;
    jv_err err;
    if ((err = jv__tx_begin(st, &tx)))
        return err;
    if ((err = join_in_tx(st, enc, len))) {
        jv__tx_rollback(st, &tx);
        return err;
    }
    return jv__tx_commit(st, &tx);
}

/* -- the base ------------------------------------------------------------- */

static const char sql_base_get[] =
    "SELECT gen, maker, made_ms, digest, sig, bytes FROM base WHERE id = 0";
static const char sql_chunks[] =
    "SELECT data FROM base_chunk WHERE gen = ?1 ORDER BY n";
static const char sql_cut_all[] = "SELECT origin, seq FROM cut ORDER BY origin";

static jv_err read_info(jv_store *st, jv_snap_info *info)
{
    jv_err err;
    sqlite3_stmt *s = jv__stmt(st, sql_base_get, &err);
    if (!s)
        return err;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        memset(info, 0, sizeof(*info));
        info->gen = jv__col_u64(s, 0);
        err = jv__col_id(st, s, 1, &info->maker);
        info->made_ms = jv__col_u64(s, 2);
        if (!err && (sqlite3_column_bytes(s, 3) != JV_HASH_LEN ||
                     sqlite3_column_bytes(s, 4) != JV_SIG_LEN))
            err = jv__fail(st, JV_ECORRUPT, "base: bad digest or signature");
        if (!err) {
            memcpy(info->digest, sqlite3_column_blob(s, 3), JV_HASH_LEN);
            memcpy(info->sig, sqlite3_column_blob(s, 4), JV_SIG_LEN);
        }
        info->bytes = jv__col_u64(s, 5);
    } else if (rc == SQLITE_DONE) {
        err = JV_ENOTFOUND;
    } else {
        err = jv__sqlerr(st, rc, "base: read");
    }
    jv__reset(s);
    return err;
}

static jv_err read_chunks(jv_store *st, uint64_t gen, jv_buf *enc)
{
    jv_err err;
    sqlite3_stmt *s = jv__stmt(st, sql_chunks, &err);
    if (!s)
        return err;
    jv__bind_u64(s, 1, gen);
    int rc;
    jv_buf_reset(enc);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        jv_buf_append(enc, sqlite3_column_blob(s, 0),
                      (size_t)sqlite3_column_bytes(s, 0));
    err = rc == SQLITE_DONE ? JV_OK : jv__sqlerr(st, rc, "base: read chunks");
    jv__reset(s);
    if (!err && jv_buf_err(enc))
        err = jv__fail(st, JV_ENOMEM, "base: out of memory");
    return err;
}

jv_err jv_store_base_get(jv_store *st, jv_snap_info *info, jv_buf *enc)
{
    jv_err err = JV_OK;
    bool own = sqlite3_get_autocommit(st->db);
    if (own && (err = jv__exec(st, "BEGIN")))
        return err;
    err = read_info(st, info);
    if (!err && enc)
        err = read_chunks(st, info->gen, enc);
    if (own)
        jv__exec(st, "COMMIT");
    return err;
}

static const char sql_chunk_get[] =
    "SELECT data FROM base_chunk WHERE gen = ?1 AND n = ?2";

jv_err jv_store_base_chunk(jv_store *st, uint64_t gen, uint64_t n, jv_buf *out)
{
    jv_err err;
    sqlite3_stmt *s = jv__stmt(st, sql_chunk_get, &err);
    if (!s)
        return err;
    jv__bind_u64(s, 1, gen);
    jv__bind_u64(s, 2, n);
    int rc = sqlite3_step(s);
    jv_buf_reset(out);
    if (rc == SQLITE_ROW) {
        err = jv_buf_append(out, sqlite3_column_blob(s, 0),
                            (size_t)sqlite3_column_bytes(s, 0));
    } else {
        err = rc == SQLITE_DONE ? JV_ENOTFOUND
                                : jv__sqlerr(st, rc, "base: read chunk");
    }
    jv__reset(s);
    return err;
}

jv_err jv_store_cut_get(jv_store *st, jv_vv *out)
{
    jv_err err;
    sqlite3_stmt *s = jv__stmt(st, sql_cut_all, &err);
    if (!s)
        return err;
    int rc;
    jv_vv_clear(out);
    err = JV_OK;
    while (!err && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        jv_id o;
        if (!(err = jv__col_id(st, s, 0, &o)))
            err = jv_vv_set(out, &o, jv__col_u64(s, 1));
    }
    if (!err && rc != SQLITE_DONE)
        err = jv__sqlerr(st, rc, "base: read cut");
    jv__reset(s);
    return err;
}

/* -- scratch databases ---------------------------------------------------- */

static void unlink_db(const char *path)
{
    static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
    char p[4096];
    for (size_t i = 0; i < sizeof(sfx) / sizeof(*sfx); i++) {
        snprintf(p, sizeof(p), "%s%s", path, sfx[i]);
        unlink(p);
    }
}

typedef struct {
    char path[4096];
    jv_store *st;
} scratch;

static jv_err scratch_open(jv_store *st, scratch *sc)
{
    const char *dir = getenv("TMPDIR");
    char msg[256];
    jv_err err;
    snprintf(sc->path, sizeof(sc->path), "%s/jarvis-snapshot-XXXXXX",
             dir && *dir ? dir : "/tmp");
    int fd = mkstemp(sc->path);
    if (fd < 0) {
        sc->path[0] = '\0';
        return jv__fail(st, JV_EIO, "snapshot: scratch file: %s",
                        strerror(errno));
    }
    close(fd);
    jv_store_opts o;
    jv_store_opts_default(&o);
    o.create = true;
    o.cache_kib = 4096;
    if ((err = jv_store_open(sc->path, &o, &sc->st, msg, sizeof(msg))))
        return jv__fail(st, err, "snapshot: scratch database: %s", msg);
    sqlite3_exec(sc->st->db, "PRAGMA synchronous = OFF", NULL, NULL, NULL);
    return JV_OK;
}

static void scratch_close(scratch *sc)
{
    jv_store_close(sc->st);
    sc->st = NULL;
    if (sc->path[0])
        unlink_db(sc->path);
    sc->path[0] = '\0';
}

/* A scratch database holding st's base (empty when there is none);
 * *gen: the base's generation (0: none). */
static jv_err scratch_with_base(jv_store *st, scratch *sc, uint64_t *gen)
{
    jv_snap_info info;
    jv_buf enc;
    jv_err err;
    jv_buf_init(&enc);
    *gen = 0;
    if ((err = scratch_open(st, sc)))
        goto out;
    err = jv_store_base_get(st, &info, &enc);
    if (err == JV_ENOTFOUND) {
        err = JV_OK;
        goto out;
    }
    if (err)
        goto out;
    *gen = info.gen;
    if ((err = jv_store_snap_join(sc->st, enc.data, enc.len)))
        err =
            jv__fail(st, err, "base: cannot load: %s", jv_store_errmsg(sc->st));
out:
    jv_buf_fini(&enc);
    return err;
}

/* -- recording a base ----------------------------------------------------- */

static const char sql_chunk_put[] =
    "INSERT INTO base_chunk(gen, n, data) VALUES (?1, ?2, ?3)";
static const char sql_chunk_drop_gen[] =
    "DELETE FROM base_chunk WHERE gen = ?1";
static const char sql_base_put[] =
    "INSERT INTO base(id, gen, maker, made_ms, digest, sig, bytes) "
    "VALUES (0, ?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(id) DO UPDATE SET "
    "gen = excluded.gen, maker = excluded.maker, made_ms = excluded.made_ms, "
    "digest = excluded.digest, sig = excluded.sig, bytes = excluded.bytes";
static const char sql_cut_clear[] = "DELETE FROM cut";
static const char sql_cut_put[] =
    "INSERT INTO cut(origin, seq, hash) VALUES (?1, ?2, ?3)";
static const char sql_vv_rows[] = "SELECT origin, seq, hash FROM vv";

/* Writes the encoding as chunks of generation gen, a few per
 * transaction, so that the node's writer never waits long. */
static jv_err write_chunks(jv_store *st, uint64_t gen, const jv_buf *enc)
{
    jv_err err;
    jv__tx tx;
    sqlite3_stmt *s;
    if ((err = jv__tx_begin(st, &tx)))
        return err;
    if (!(s = jv__stmt(st, sql_chunk_drop_gen, &err)))
        goto fail;
    jv__bind_u64(s, 1, gen);
    if ((err = jv__run(st, s, "base: drop chunks")))
        goto fail;
    for (size_t off = 0, n = 0; off < enc->len; off += JV_SNAP_CHUNK, n++) {
        size_t len =
            enc->len - off < JV_SNAP_CHUNK ? enc->len - off : JV_SNAP_CHUNK;
        if (!(s = jv__stmt(st, sql_chunk_put, &err)))
            goto fail;
        jv__bind_u64(s, 1, gen);
        jv__bind_u64(s, 2, n);
        sqlite3_bind_blob(s, 3, enc->data + off, (int)len, SQLITE_STATIC);
        if ((err = jv__run(st, s, "base: write chunk")))
            goto fail;
        if (n % 4 == 3) {
            if ((err = jv__tx_commit(st, &tx)) || (err = jv__tx_begin(st, &tx)))
                return err;
        }
    }
    return jv__tx_commit(st, &tx);
fail:
    jv__tx_rollback(st, &tx);
    return err;
}

/* Inside a transaction: the base is still generation `expect` (else
 * JV_EBUSY), then becomes `info` with the scratch's vector as its cut. */
static jv_err switch_base(jv_store *st, uint64_t expect,
                          const jv_snap_info *info, jv_store *sc)
{
    jv_snap_info cur;
    jv_err err = read_info(st, &cur);
    if (err && err != JV_ENOTFOUND)
        return err;
    if ((err ? 0 : cur.gen) != expect)
        return jv__fail(st, JV_EBUSY, "base: changed while building");
    sqlite3_stmt *s = jv__stmt(st, sql_base_put, &err);
    if (!s)
        return err;
    jv__bind_u64(s, 1, info->gen);
    jv__bind_id(s, 2, &info->maker);
    jv__bind_u64(s, 3, info->made_ms);
    sqlite3_bind_blob(s, 4, info->digest, JV_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_blob(s, 5, info->sig, JV_SIG_LEN, SQLITE_STATIC);
    jv__bind_u64(s, 6, info->bytes);
    if ((err = jv__run(st, s, "base: write")) ||
        (err = jv__exec(st, sql_cut_clear)))
        return err;
    sqlite3_stmt *v = NULL;
    int rc = sqlite3_prepare_v2(sc->db, sql_vv_rows, -1, &v, NULL);
    if (rc != SQLITE_OK)
        return jv__fail(st, jv__rc_err(rc), "base: read scratch vector");
    while (!err && (rc = sqlite3_step(v)) == SQLITE_ROW) {
        if (!(s = jv__stmt(st, sql_cut_put, &err)))
            break;
        sqlite3_bind_value(s, 1, sqlite3_column_value(v, 0));
        sqlite3_bind_value(s, 2, sqlite3_column_value(v, 1));
        sqlite3_bind_value(s, 3, sqlite3_column_value(v, 2));
        err = jv__run(st, s, "base: write cut");
    }
    if (!err && rc != SQLITE_DONE)
        err = jv__fail(st, jv__rc_err(rc), "base: read scratch vector");
    sqlite3_finalize(v);
    return err;
}

/* Encodes the scratch, signs it, writes it as generation gen + 1 and
 * switches to it; join (may be NULL) is joined into st in the same
 * transaction as the switch. */
static jv_err record_base(jv_store *st, const jv_keypair *kp, uint64_t gen,
                          scratch *sc, const uint8_t *join, size_t joinlen,
                          uint64_t *bytes)
{
    jv_snap_info info;
    jv_buf enc;
    jv__tx tx;
    jv_err err;
    jv_buf_init(&enc);
    memset(&info, 0, sizeof(info));
    if ((err = jv_snap_encode(sc->st, &enc))) {
        err = jv__fail(st, err, "base: encode: %s", jv_store_errmsg(sc->st));
        goto out;
    }
    info.gen = gen + 1;
    info.maker = kp->pk;
    info.made_ms = jv__now_ms(st);
    info.bytes = enc.len;
    jv_snap_digest(enc.data, enc.len, info.digest);
    jv_snap_sign(info.digest, kp, info.sig);
    if ((err = write_chunks(st, info.gen, &enc)))
        goto out;
    if ((err = jv__tx_begin(st, &tx)))
        goto out;
    if (join)
        err = join_in_tx(st, join, joinlen);
    if (!err)
        err = switch_base(st, gen, &info, sc->st);
    if (err)
        jv__tx_rollback(st, &tx);
    else
        err = jv__tx_commit(st, &tx);
    if (!err && bytes)
        *bytes = enc.len;
out:
    jv_buf_fini(&enc);
    return err;
}

/* -- sweeping ------------------------------------------------------------- */

static const char sql_sweep_batches[] =
    "DELETE FROM batch WHERE rowid IN (SELECT b.rowid FROM cut c "
    "JOIN batch b ON b.origin = c.origin AND b.last_seq <= c.seq LIMIT ?1)";
static const char sql_sweep_chunks[] =
    "DELETE FROM base_chunk WHERE rowid IN (SELECT rowid FROM base_chunk "
    "WHERE gen <> coalesce((SELECT gen FROM base WHERE id = 0), -1) "
    "LIMIT ?1)";

static jv_err sweep_one(jv_store *st, const char *sql, size_t max, uint64_t *n)
{
    jv_err err;
    jv__tx tx;
    if ((err = jv__tx_begin(st, &tx)))
        return err;
    sqlite3_stmt *s = jv__stmt(st, sql, &err);
    if (s) {
        jv__bind_u64(s, 1, max);
        err = jv__run(st, s, "base: sweep");
    }
    if (err) {
        jv__tx_rollback(st, &tx);
        return err;
    }
    *n = (uint64_t)sqlite3_changes(st->db);
    return jv__tx_commit(st, &tx);
}

jv_err jv_store_compact_sweep(jv_store *st, size_t max, uint64_t *deleted)
{
    uint64_t n = 0;
    jv_err err;
    if (deleted)
        *deleted = 0;
    do {
        if ((err = sweep_one(st, sql_sweep_batches, max, &n)))
            return err;
        if (deleted)
            *deleted += n;
    } while (n == max);
    do {
        if ((err = sweep_one(st, sql_sweep_chunks, max, &n)))
            return err;
    } while (n == max);
    return JV_OK;
}

/* -- compaction ----------------------------------------------------------- */

static const char sql_target[] =
    "SELECT last_seq FROM batch WHERE origin = ?1 AND last_seq <= ?2 "
    "AND hlc <= ?3 ORDER BY last_seq DESC LIMIT 1";

#define SWEEP_MAX    256
#define FOLD_BATCHES 512
#define FOLD_BYTES   (8u << 20)

/* Per origin, how far the cut moves: the last batch of the log at or
 * below the frontier and stamped at or before max_hlc. */
static jv_err targets(jv_store *st, const jv_vv *frontier, uint64_t max_hlc,
                      const jv_vv *cut, jv_vv *out)
{
    jv_err err = JV_OK;
    for (size_t i = 0; !err && i < frontier->n; i++) {
        const jv_vv_entry *e = &frontier->v[i];
        sqlite3_stmt *s = jv__stmt(st, sql_target, &err);
        if (!s)
            return err;
        jv__bind_id(s, 1, &e->id);
        jv__bind_u64(s, 2, e->seq);
        jv__bind_u64(s, 3, max_hlc > INT64_MAX ? INT64_MAX : max_hlc);
        int rc = sqlite3_step(s);
        uint64_t seq = rc == SQLITE_ROW ? jv__col_u64(s, 0) : 0;
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            err = jv__sqlerr(st, rc, "compact: read log");
        jv__reset(s);
        if (!err && seq > jv_vv_get(cut, &e->id))
            err = jv_vv_set(out, &e->id, seq);
    }
    return err;
}

/* Batches read from the log for one apply into the scratch. */
typedef struct {
    jv_store *st;
    uint64_t upto;
    jv_buf bytes;
    size_t off[FOLD_BATCHES], len[FOLD_BATCHES];
    size_t n;
    uint64_t last;
} fold_chunk;

static jv_err fold_row(void *arg, const jv_log_row *row)
{
    fold_chunk *f = arg;
    if (row->last_seq > f->upto || f->n == FOLD_BATCHES)
        return JV_OK;
    f->off[f->n] = f->bytes.len;
    f->len[f->n] = row->len;
    jv_buf_append(&f->bytes, row->body, row->len);
    jv_buf_append(&f->bytes, row->sig, JV_SIG_LEN);
    jv_buf_append(&f->bytes, row->hash, JV_HASH_LEN);
    f->n++;
    f->last = row->last_seq;
    return jv_buf_err(&f->bytes) ? JV_ENOMEM : JV_OK;
}

static jv_err fold_apply(fold_chunk *f, jv_store *sc, uint64_t *folded)
{
    jv_store_batch sb[FOLD_BATCHES];
    jv_batch bt[FOLD_BATCHES];
    jv_err res[FOLD_BATCHES];
    size_t k = 0;
    jv_err err = JV_OK;
    for (size_t i = 0; i < f->n && !err; i++) {
        const uint8_t *p = f->bytes.data + f->off[i];
        if (jv_batch_decode(p, f->len[i], &bt[k]) != JV_OK) {
            err = jv__fail(f->st, JV_ECORRUPT,
                           "compact: a logged batch does "
                           "not decode (run verify)");
            break;
        }
        sb[k] = (jv_store_batch){p, f->len[i], p + f->len[i],
                                 p + f->len[i] + JV_SIG_LEN, &bt[k]};
        k++;
    }
    if (!err && k && (err = jv_store_apply(sc, sb, k, 0, res, NULL)))
        err = jv__fail(f->st, err, "compact: fold: %s", jv_store_errmsg(sc));
    for (size_t i = 0; !err && i < k; i++)
        if (res[i] != JV_OK)
            err = jv__fail(f->st, JV_EBUSY, "compact: fold: batch %zu: %s", i,
                           jv_strerror(res[i]));
    for (size_t i = 0; i < k; i++)
        jv_batch_fini(&bt[i]);
    *folded += k;
    return err;
}

/* Applies the log's batches of each origin in (cut, target] to the
 * scratch. */
static jv_err fold(jv_store *st, jv_store *sc, const jv_vv *cut,
                   const jv_vv *target, uint64_t *folded)
{
    fold_chunk *f = jv_calloc(1, sizeof(*f));
    jv_err err = JV_OK;
    if (!f)
        return jv__fail(st, JV_ENOMEM, "compact: out of memory");
    f->st = st;
    jv_buf_init(&f->bytes);
    for (size_t i = 0; !err && i < target->n; i++) {
        const jv_vv_entry *e = &target->v[i];
        uint64_t pos = jv_vv_get(cut, &e->id);
        while (!err && pos < e->seq) {
            f->n = 0;
            f->upto = e->seq;
            jv_buf_reset(&f->bytes);
            if ((err = jv_store_log_after(st, &e->id, pos, FOLD_BATCHES,
                                          FOLD_BYTES, fold_row, f)))
                break;
            if (f->n == 0) {
                err = jv__fail(st, JV_EBUSY, "compact: log changed");
                break;
            }
            err = fold_apply(f, sc, folded);
            pos = f->last;
        }
    }
    jv_buf_fini(&f->bytes);
    jv_free(f);
    return err;
}

jv_err jv_store_compact(jv_store *st, const jv_keypair *kp,
                        const jv_vv *frontier, uint64_t max_hlc,
                        jv_compact_stats *out)
{
    jv_vv cut, target;
    scratch sc = {{0}, NULL};
    uint64_t gen = 0;
    jv_compact_stats stats = {0};
    jv_err err;
    jv_vv_init(&cut);
    jv_vv_init(&target);
    /* Leftovers of a round a crash interrupted first. */
    if ((err = jv_store_compact_sweep(st, SWEEP_MAX, &stats.deleted)))
        goto out;
    if ((err = jv_store_cut_get(st, &cut)) ||
        (err = targets(st, frontier, max_hlc, &cut, &target)))
        goto out;
    if (target.n == 0)
        goto out;
    if ((err = scratch_with_base(st, &sc, &gen)) ||
        (err = fold(st, sc.st, &cut, &target, &stats.folded)) ||
        (err = record_base(st, kp, gen, &sc, NULL, 0, &stats.base_bytes)))
        goto out;
    stats.built = true;
    uint64_t n = 0;
    err = jv_store_compact_sweep(st, SWEEP_MAX, &n);
    stats.deleted += n;
out:
    scratch_close(&sc);
    jv_vv_fini(&cut);
    jv_vv_fini(&target);
    if (out)
        *out = stats;
    return err;
}

/* -- installing a peer's snapshot ----------------------------------------- */

jv_err jv_store_snap_install(jv_store *st, const jv_keypair *kp,
                             const uint8_t *enc, size_t len,
                             const jv_snap_info *info, char *msg, size_t msglen)
{
    uint8_t digest[JV_HASH_LEN];
    scratch sc = {{0}, NULL};
    uint64_t gen = 0;
    bool trusted = false;
    jv_err err;
    if (msg && msglen)
        msg[0] = '\0';
    jv_snap_digest(enc, len, digest);
    if (len != info->bytes ||
        sodium_memcmp(digest, info->digest, JV_HASH_LEN) != 0) {
        err = jv__fail(st, JV_EDECODE,
                       "snapshot: digest does not match (tampered or cut "
                       "short)");
        goto out;
    }
    if ((err = jv_snap_verify_sig(digest, info->sig, &info->maker))) {
        jv__fail(st, err, "snapshot: bad signature");
        goto out;
    }
    if ((err = jv_store_is_trusted(st, &info->maker, &trusted)))
        goto out;
    if (!trusted) {
        err = jv__fail(st, JV_EUNTRUSTED, "snapshot: maker is not trusted");
        goto out;
    }
    if ((err = jv_snap_check(enc, len, NULL, st->errmsg, sizeof(st->errmsg))))
        goto out;
    if ((err = scratch_with_base(st, &sc, &gen)))
        goto out;
    if ((err = jv_store_snap_join(sc.st, enc, len))) {
        jv__fail(st, err, "snapshot: %s", jv_store_errmsg(sc.st));
        goto out;
    }
    if ((err = record_base(st, kp, gen, &sc, enc, len, NULL)))
        goto out;
    err = jv_store_compact_sweep(st, SWEEP_MAX, NULL);
out:
    scratch_close(&sc);
    if (err && msg)
        snprintf(msg, msglen, "%s", st->errmsg);
    return err;
}
