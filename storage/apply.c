/*
 * apply.c - the only code that changes replicated state.
 *
 * Remote batches (jv_store_apply) and local writes (jv_store_commit_local)
 * end in the same place: apply_op() changes the materialized state for one
 * operation, apply_batch() adds a batch to the log, applies its operations
 * and moves the version vector. Verification replays the log through the
 * same code, so "materialized state == replay of the log" is a property of
 * this file alone.
 *
 * Where a remote batch goes:
 *
 *     hash in log or held ----------------------------> EDUP
 *     chain (jv_batch_check_chain against vv):
 *        already covered, other hash ------------------> EEQUIVOCATE
 *        overlap or wrong prev ------------------------> ELINK
 *     untrusted origin (JV_APPLY_REQUIRE_TRUST) ------> held 'untrusted'
 *     starts past applied + 1 ------------------------> held 'gap'
 *     stamped beyond the clock-skew bound ------------> held (clock_skew)
 *     otherwise --------------------------------------> applied
 *
 * After the given batches, held batches whose origin's gap has filled or
 * who became trusted are applied in the same transaction (release()), and
 * so are those whose stamp has come within the skew bound: a call with no
 * batches re-checks them. A batch held for its stamp is stored with the
 * reason 'gap' (the column's CHECK predates clock_skew; it waits like a
 * gap, for time instead of data) and reported as clock_skew while its
 * stamp is beyond the bound (jv_store_held_list).
 *
 * The OR-Set causal context is read and written through a small per-call
 * cache (ctx_cache): an archive add would otherwise cost three statements
 * on the ctx table for one row it changes. The cache is flushed before
 * every commit or savepoint release and dropped on rollback.
 */
#include "apply.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "lww.h"
#include "query.h"
#include "store_int.h"

/* -- causal context cache ------------------------------------------------- */

typedef struct {
    jv_id id;
    uint64_t seq; /* compact part: every n <= seq is seen */
    bool cloud;   /* ctx_cloud may hold dots of id */
    bool dirty;   /* seq differs from the ctx table */
} ctx_ent;

typedef struct {
    ctx_ent *e;
    size_t n, cap;
    /* The last archive span looked up or made (archive_span_of): a peer's
     * batch adds dots of one span. Dropped with the rest on rollback. */
    jv_id span_id;
    uint64_t span_hi;
    int64_t span;
} ctx_cache;

static const char sql_ctx_get[] = "SELECT seq FROM ctx WHERE replica = ?1";
static const char sql_ctx_put[] =
    "INSERT INTO ctx(replica, seq) VALUES (?1, ?2) "
    "ON CONFLICT(replica) DO UPDATE SET seq = excluded.seq";
static const char sql_cloud_any[] =
    "SELECT EXISTS (SELECT 1 FROM ctx_cloud WHERE replica = ?1)";
static const char sql_cloud_has[] =
    "SELECT 1 FROM ctx_cloud WHERE replica = ?1 AND n = ?2";
static const char sql_cloud_add[] =
    "INSERT INTO ctx_cloud(replica, n) VALUES (?1, ?2) "
    "ON CONFLICT DO NOTHING";
static const char sql_cloud_after[] =
    "SELECT n FROM ctx_cloud WHERE replica = ?1 AND n > ?2 ORDER BY n";
static const char sql_cloud_fold[] =
    "DELETE FROM ctx_cloud WHERE replica = ?1 AND n <= ?2";
static const char sql_cloud_max[] =
    "SELECT max(n) FROM ctx_cloud WHERE replica = ?1";

static void ctx_drop(ctx_cache *cc)
{
    cc->n = 0;
    cc->span = 0;
}

static void ctx_fini(ctx_cache *cc)
{
    jv_free(cc->e);
    cc->e = NULL;
    cc->n = cc->cap = 0;
}

/* Runs a one-row, one-column query keyed by id (and n when n != 0). */
static jv_err query_u64(jv_store *st, const char *sql, const jv_id *id,
                        uint64_t n, bool *found, uint64_t *v)
{
    jv_err err;
    sqlite3_stmt *s = jv__stmt(st, sql, &err);
    if (!s)
        return err;
    jv__bind_id(s, 1, id);
    if (n)
        jv__bind_u64(s, 2, n);
    int rc = sqlite3_step(s);
    err = JV_OK;
    *found = rc == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL;
    if (rc == SQLITE_ROW)
        *v = jv__col_u64(s, 0);
    else if (rc != SQLITE_DONE)
        err = jv__sqlerr(st, rc, "read causal context");
    jv__reset(s);
    return err;
}

static jv_err ctx_get(jv_store *st, ctx_cache *cc, const jv_id *id,
                      ctx_ent **out)
{
    for (size_t i = 0; i < cc->n; i++) {
        if (jv_id_eq(&cc->e[i].id, id)) {
            *out = &cc->e[i];
            return JV_OK;
        }
    }
    if (cc->n == cc->cap) {
        size_t cap = cc->cap ? cc->cap * 2 : 8;
        ctx_ent *e = jv_reallocarray(cc->e, cap, sizeof(*e));
        if (!e)
            return jv__fail(st, JV_ENOMEM, "causal context: out of memory");
        cc->e = e;
        cc->cap = cap;
    }
    ctx_ent ent = {.id = *id};
    bool found;
    uint64_t v = 0, any = 0;
    jv_err err;
    if ((err = query_u64(st, sql_ctx_get, id, 0, &found, &v)))
        return err;
    ent.seq = found ? v : 0;
    if ((err = query_u64(st, sql_cloud_any, id, 0, &found, &any)))
        return err;
    ent.cloud = any != 0;
    cc->e[cc->n] = ent;
    *out = &cc->e[cc->n++];
    return JV_OK;
}

static jv_err ctx_contains(jv_store *st, ctx_cache *cc, const jv_dot *d,
                           bool *in)
{
    ctx_ent *e;
    uint64_t v;
    jv_err err = ctx_get(st, cc, &d->id, &e);
    if (err)
        return err;
    if (d->n <= e->seq || !e->cloud) {
        *in = d->n <= e->seq;
        return JV_OK;
    }
    return query_u64(st, sql_cloud_has, &d->id, d->n, in, &v);
}

/* After e->seq grew: cloud dots that became contiguous join the compact
 * part, so the cloud only ever holds dots seen ahead of a gap. */
static jv_err ctx_fold(jv_store *st, ctx_ent *e)
{
    jv_err err;
    if (!e->cloud)
        return JV_OK;
    sqlite3_stmt *s = jv__stmt(st, sql_cloud_after, &err);
    if (!s)
        return err;
    uint64_t seq = e->seq;
    int rc;
    jv__bind_id(s, 1, &e->id);
    jv__bind_u64(s, 2, seq);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW && jv__col_u64(s, 0) == seq + 1)
        seq++;
    err = rc == SQLITE_ROW || rc == SQLITE_DONE
              ? JV_OK
              : jv__sqlerr(st, rc, "read causal context");
    jv__reset(s);
    if (err || seq == e->seq)
        return err;
    e->seq = seq;
    if (!(s = jv__stmt(st, sql_cloud_fold, &err)))
        return err;
    jv__bind_id(s, 1, &e->id);
    jv__bind_u64(s, 2, seq);
    if ((err = jv__run(st, s, "fold causal context")))
        return err;
    uint64_t any = 0;
    bool found;
    if ((err = query_u64(st, sql_cloud_any, &e->id, 0, &found, &any)))
        return err;
    e->cloud = any != 0;
    return JV_OK;
}

static jv_err ctx_add(jv_store *st, ctx_cache *cc, const jv_dot *d)
{
    ctx_ent *e;
    jv_err err = ctx_get(st, cc, &d->id, &e);
    if (err || d->n <= e->seq)
        return err;
    if (d->n == e->seq + 1) {
        e->seq = d->n;
        e->dirty = true;
        return ctx_fold(st, e);
    }
    sqlite3_stmt *s = jv__stmt(st, sql_cloud_add, &err);
    if (!s)
        return err;
    jv__bind_id(s, 1, &d->id);
    jv__bind_u64(s, 2, d->n);
    if ((err = jv__run(st, s, "add to causal context")))
        return err;
    e->cloud = true;
    return JV_OK;
}

/* The greatest n of id seen, compact or cloud. */
static jv_err ctx_max(jv_store *st, ctx_cache *cc, const jv_id *id,
                      uint64_t *out)
{
    ctx_ent *e;
    bool found;
    uint64_t v = 0;
    jv_err err = ctx_get(st, cc, id, &e);
    if (err)
        return err;
    *out = e->seq;
    if (e->cloud) {
        if ((err = query_u64(st, sql_cloud_max, id, 0, &found, &v)))
            return err;
        if (found && v > *out)
            *out = v;
    }
    return JV_OK;
}

static jv_err ctx_flush(jv_store *st, ctx_cache *cc)
{
    jv_err err;
    for (size_t i = 0; i < cc->n; i++) {
        ctx_ent *e = &cc->e[i];
        if (!e->dirty)
            continue;
        sqlite3_stmt *s = jv__stmt(st, sql_ctx_put, &err);
        if (!s)
            return err;
        jv__bind_id(s, 1, &e->id);
        jv__bind_u64(s, 2, e->seq);
        if ((err = jv__run(st, s, "write causal context")))
            return err;
        e->dirty = false;
    }
    return JV_OK;
}

/* -- operations ----------------------------------------------------------- */

static const char sql_counter_put[] =
    "INSERT INTO counter(name, replica, p, n) VALUES (?1, ?2, ?3, ?4) "
    "ON CONFLICT(name, replica) DO UPDATE SET "
    "p = max(p, excluded.p), n = max(n, excluded.n)";
static const char sql_audit_add[] =
    "INSERT INTO audit(origin, seq, time_ms, actor, action, target, detail) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
static const char sql_audit_minute[] =
    "INSERT OR IGNORE INTO audit_minute(field, value, minute) "
    "VALUES (?1, ?2, ?3)";

/* Lists the entry's minute under its actor (field 0) and action (1). */
static jv_err audit_minutes(jv_store *st, const jv_op *op)
{
    const jv_str v[2] = {op->audit.actor, op->audit.action};
    uint64_t minute = op->audit.time_ms / JV_AUDIT_MINUTE_MS;
    jv_err err;
    for (int f = 0; f < 2; f++) {
        jv__minute_memo *m = &st->minute_memo[f];
        if (m->valid && m->minute == minute && m->len == v[f].n &&
            memcmp(m->value, v[f].p, v[f].n) == 0)
            continue;
        sqlite3_stmt *s = jv__stmt(st, sql_audit_minute, &err);
        if (!s)
            return err;
        sqlite3_bind_int(s, 1, f);
        jv__bind_str(s, 2, v[f]);
        jv__bind_u64(s, 3, minute);
        if ((err = jv__run(st, s, "audit"))) {
            m->valid = false;
            return err;
        }
        m->valid = v[f].n <= sizeof(m->value);
        if (m->valid) {
            m->minute = minute;
            m->len = v[f].n;
            memcpy(m->value, v[f].p, v[f].n);
        }
    }
    return JV_OK;
}
/* LWW: the register that jv_lww_order (crdt/lww.c) orders after wins. The
 * order compares stamps first; the SQL decides that common case itself,
 * since calling the function makes SQLite load every argument column (the
 * value included) on every conflict, about 10% of a remote config apply.
 * Equal stamps, the subtle case, go to the function. storage_prop_config
 * ties the two. */
static const char sql_config_put[] =
    "INSERT INTO config(key, value, stamp, replica) VALUES (?1, ?2, ?3, ?4) "
    "ON CONFLICT(key) DO UPDATE SET value = excluded.value, "
    "stamp = excluded.stamp, replica = excluded.replica "
    "WHERE excluded.stamp > config.stamp OR (excluded.stamp = config.stamp "
    "AND jv_lww_after(excluded.stamp, excluded.replica, excluded.value, "
    "config.stamp, config.replica, config.value))";
/* An archive entry's id is its dot: span << 40 | (n mod 2^40), the span
 * numbering (replica, n >> 40) in archive_span (migration 7). */
#define ARCHIVE_LO_BITS 40
#define ARCHIVE_LO_MASK ((UINT64_C(1) << ARCHIVE_LO_BITS) - 1)
static const char sql_span_get[] =
    "SELECT span FROM archive_span WHERE replica = ?1 AND hi = ?2";
static const char sql_span_add[] =
    "INSERT INTO archive_span(replica, hi) VALUES (?1, ?2)";
static const char sql_archive_add[] =
    "INSERT INTO archive_entry(id, key, stamp, value) "
    "VALUES (?1, ?2, ?3, ?4)";
/* The id of dot (?1, ?2), NULL (no entry) when its span is unknown. */
#define ARCHIVE_DOT_ID                                                     \
    "(((SELECT span FROM archive_span WHERE replica = ?1 AND hi = (?2 >> " \
    "40)) << 40) | (?2 & 1099511627775))"
static const char sql_archive_del[] =
    "DELETE FROM archive_entry WHERE id = " ARCHIVE_DOT_ID;
static const char sql_archive_del_other[] =
    "DELETE FROM archive_entry WHERE id = " ARCHIVE_DOT_ID
    " AND NOT (key = ?3 AND stamp = ?4 AND value = ?5)";
/* LWW: the greater (stamp, replica id, trusted, name) wins. */
static const char sql_succ_put[] =
    "INSERT INTO succession(old, new, last_seq, time_ms, sig) "
    "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING";
static const char sql_trust_put[] =
    "INSERT INTO trust(node, trusted, stamp, set_by, name) "
    "VALUES (?1, ?2, ?3, ?4, ?5) "
    "ON CONFLICT(node) DO UPDATE SET trusted = excluded.trusted, "
    "stamp = excluded.stamp, set_by = excluded.set_by, name = excluded.name "
    "WHERE (excluded.stamp, excluded.set_by, excluded.trusted, excluded.name) "
    "> (trust.stamp, trust.set_by, trust.trusted, trust.name)";

/* Cluster API keys, a remove-wins set: a key row is added once and never
 * changed by an honest origin (ids are random); two adds of one id with
 * different content (an origin that signed what it should not, or a
 * collision) keep the smaller tuple, so every order of arrival ends with
 * the same row, and revoke the key: else a trusted origin could change
 * the role of a key it did not make (its hash is replicated), a reader
 * key becoming an admin one. That revocation is a constant row (time 0,
 * no origin, by "conflicting adds"), the same whichever add came second.
 * A revocation keeps the earliest (time, origin, by) likewise. Neither
 * table looks at the other: whether a key is usable is decided when
 * reading (a key with a revocation row is revoked), so a revocation that
 * arrives first still wins when its key comes. */
static const char sql_ckey_differs[] =
    "SELECT 1 FROM cluster_key WHERE id = ?1 AND (name, role, hash, "
    "created_ms, created_by, origin) <> (?2, ?3, ?4, ?5, ?6, ?7)";
static const char sql_ckey_add[] =
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
static const char sql_ckey_revoke[] =
    "INSERT INTO cluster_key_revoked(id, revoked_ms, revoked_by, origin) "
    "VALUES (?1, ?2, ?3, ?4) "
    "ON CONFLICT(id) DO UPDATE SET revoked_ms = excluded.revoked_ms, "
    "revoked_by = excluded.revoked_by, origin = excluded.origin "
    "WHERE (excluded.revoked_ms, excluded.origin, excluded.revoked_by) < "
    "(cluster_key_revoked.revoked_ms, cluster_key_revoked.origin, "
    "cluster_key_revoked.revoked_by)";

/* A register from three SQL arguments (stamp, replica, value); false for
 * a replica that is not an id. */
static bool lww_arg(sqlite3_value **v, uint64_t *stamp, jv_id *replica,
                    jv_str *value)
{
    if (sqlite3_value_bytes(v[1]) != JV_ID_LEN)
        return false;
    *stamp = (uint64_t)sqlite3_value_int64(v[0]);
    memcpy(replica->b, sqlite3_value_blob(v[1]), JV_ID_LEN);
    value->n = (size_t)sqlite3_value_bytes(v[2]);
    value->p = value->n ? sqlite3_value_blob(v[2]) : "";
    return true;
}

/* jv_lww_after(a_stamp, a_replica, a_value, b_stamp, b_replica, b_value):
 * 1 when register a orders after register b. The SQL calls the rule the
 * CRDT laws are proven on rather than restating it. */
static void lww_after(sqlite3_context *ctx, int argc, sqlite3_value **v)
{
    uint64_t as, bs;
    jv_id ar, br;
    jv_str av, bv;
    (void)argc;
    if (!lww_arg(v, &as, &ar, &av) || !lww_arg(v + 3, &bs, &br, &bv)) {
        sqlite3_result_error(ctx, "jv_lww_after: replica is not an id", -1);
        return;
    }
    sqlite3_result_int(ctx, jv_lww_order(as, &ar, av, bs, &br, bv) > 0);
}

jv_err jv__apply_functions(jv_store *st)
{
    int rc = sqlite3_create_function_v2(st->db, "jv_lww_after", 6,
                                        SQLITE_UTF8 | SQLITE_DETERMINISTIC |
                                            SQLITE_INNOCUOUS,
                                        NULL, lww_after, NULL, NULL, NULL);
    return rc == SQLITE_OK ? JV_OK : jv__sqlerr(st, rc, "register functions");
}

/* -- rows written together ---------------------------------------------- */

/*
 * The operations of a batch that each insert or upsert one row (counter,
 * audit, config, and archive adds whose dot is new) are written by
 * multi-row INSERTs: one statement of 64 rows costs far less than 64 of
 * one (each execution opens and closes its cursors and its statement),
 * about 40% of an archive apply. SQLite handles the rows of one statement
 * one after the other, each seeing the ones before (two upserts of a key
 * in one batch end as they would one by one), and a failing row fails the
 * whole apply as before. The rows of a kind wait in a row_buf until 64
 * are there, until the batch ends, or until a statement that depends on
 * them runs: archive deletes flush the pending archive rows first.
 * Nothing reads these tables while a batch is applied (local commits,
 * which read them, apply one by one).
 */
enum {
    RB_COUNTER,
    RB_AUDIT,
    RB_CONFIG,
    RB_ARCHIVE,
    RB_KINDS,
    RB_ROWS = 64
};

typedef struct {
    const jv_op *op;
    uint64_t seq; /* audit: the entry's sequence number; archive: its id */
} rb_row;

typedef struct {
    const jv_id *origin; /* of every row (one batch) */
    rb_row rows[RB_KINDS][RB_ROWS];
    size_t n[RB_KINDS];
} row_buf;

/* The VALUES of 1, 4, 16 and 64 rows of c parameters. */
#define RB_X4(r) r "," r "," r "," r
#define RB_SIZES(head, row, tail)                                         \
    {                                                                     \
        head row tail, head RB_X4(row) tail, head RB_X4(RB_X4(row)) tail, \
            head RB_X4(RB_X4(RB_X4(row))) tail                            \
    }
#define RB_ROW4 "(?,?,?,?)"
#define RB_ROW7 "(?,?,?,?,?,?,?)"

static const size_t rb_size[4] = {1, 4, 16, 64};
static const char *const rb_sql[RB_KINDS][4] = {
    RB_SIZES("INSERT OR FAIL INTO counter(name, replica, p, n) VALUES ",
             RB_ROW4,
             " ON CONFLICT(name, replica) DO UPDATE SET "
             "p = max(p, excluded.p), n = max(n, excluded.n)"),
    RB_SIZES("INSERT OR FAIL INTO audit(origin, seq, time_ms, actor, action, "
             "target, detail) VALUES ",
             RB_ROW7, ""),
    /* See sql_config_put for the WHERE. */
    RB_SIZES("INSERT OR FAIL INTO config(key, value, stamp, replica) VALUES ",
             RB_ROW4,
             " ON CONFLICT(key) DO UPDATE SET value = excluded.value, "
             "stamp = excluded.stamp, replica = excluded.replica "
             "WHERE excluded.stamp > config.stamp OR (excluded.stamp = "
             "config.stamp AND jv_lww_after(excluded.stamp, "
             "excluded.replica, excluded.value, config.stamp, "
             "config.replica, config.value))"),
    RB_SIZES("INSERT OR FAIL INTO archive_entry(id, key, stamp, value) VALUES ",
             RB_ROW4, ""),
};
static const char *const rb_what[RB_KINDS] = {"counter", "audit", "config",
                                              "archive add"};

/* Binds row r of kind k at parameter i (1-based); returns the next. */
static int rb_bind(sqlite3_stmt *s, int i, int k, const jv_id *origin,
                   const rb_row *r)
{
    const jv_op *op = r->op;
    switch (k) {
    case RB_COUNTER:
        jv__bind_str(s, i, op->counter.name);
        jv__bind_id(s, i + 1, origin);
        jv__bind_u64(s, i + 2, op->counter.p);
        jv__bind_u64(s, i + 3, op->counter.n);
        return i + 4;
    case RB_AUDIT:
        jv__bind_id(s, i, origin);
        jv__bind_u64(s, i + 1, r->seq);
        jv__bind_u64(s, i + 2, op->audit.time_ms);
        jv__bind_str(s, i + 3, op->audit.actor);
        jv__bind_str(s, i + 4, op->audit.action);
        jv__bind_str(s, i + 5, op->audit.target);
        jv__bind_str(s, i + 6, op->audit.detail);
        return i + 7;
    case RB_CONFIG:
        jv__bind_str(s, i, op->config.key);
        jv__bind_str(s, i + 1, op->config.value);
        jv__bind_u64(s, i + 2, op->config.stamp);
        jv__bind_id(s, i + 3, origin);
        return i + 4;
    default:
        jv__bind_u64(s, i, r->seq);
        jv__bind_str(s, i + 1, op->add.key);
        jv__bind_u64(s, i + 2, op->add.stamp);
        jv__bind_str(s, i + 3, op->add.value);
        return i + 4;
    }
}

/* Writes the pending rows of kind k, in order, largest statements first. */
static jv_err rb_flush_kind(jv_store *st, row_buf *rb, int k)
{
    size_t done = 0, n = rb->n[k];
    jv_err err = JV_OK;
    rb->n[k] = 0;
    for (int z = 3; z >= 0 && !err; z--) {
        while (n - done >= rb_size[z]) {
            sqlite3_stmt *s = jv__stmt(st, rb_sql[k][z], &err);
            if (!s)
                return err;
            for (size_t j = 0, i = 1; j < rb_size[z]; j++)
                i = (size_t)rb_bind(s, (int)i, k, rb->origin,
                                    &rb->rows[k][done + j]);
            if ((err = jv__run(st, s, rb_what[k])))
                return err;
            done += rb_size[z];
        }
    }
    return err;
}

static jv_err rb_flush(jv_store *st, row_buf *rb)
{
    jv_err err = JV_OK;
    for (int k = 0; k < RB_KINDS && !err; k++)
        err = rb_flush_kind(st, rb, k);
    return err;
}

/* Queues the row of op (kind k); writes a full statement's worth. */
static jv_err rb_add(jv_store *st, row_buf *rb, int k, const jv_op *op,
                     uint64_t seq)
{
    rb->rows[k][rb->n[k]++] = (rb_row){op, seq};
    return rb->n[k] == RB_ROWS ? rb_flush_kind(st, rb, k) : JV_OK;
}

/* Deletes the entry with dot d, after the archive rows still pending. */
static jv_err archive_del(jv_store *st, row_buf *rb, const jv_dot *d)
{
    jv_err err;
    if (rb && (err = rb_flush_kind(st, rb, RB_ARCHIVE)))
        return err;
    sqlite3_stmt *s = jv__stmt(st, sql_archive_del, &err);
    if (!s)
        return err;
    jv__bind_id(s, 1, &d->id);
    jv__bind_u64(s, 2, d->n);
    return jv__run(st, s, "archive remove");
}

/* The span of the dots (id, n) with n >> 40 == hi, made if new: at most
 * 2^23 - 1 spans (the CHECK on archive_span), so that ids stay positive.
 * An honest replica's dots all have hi 0: one span per replica. */
static jv_err archive_span_of(jv_store *st, ctx_cache *cc, const jv_id *id,
                              uint64_t hi, int64_t *span)
{
    int64_t v = 0;
    jv_err err;
    if (cc->span && cc->span_hi == hi && jv_id_eq(&cc->span_id, id)) {
        *span = cc->span;
        return JV_OK;
    }
    sqlite3_stmt *s = jv__stmt(st, sql_span_get, &err);
    if (!s)
        return err;
    jv__bind_id(s, 1, id);
    jv__bind_u64(s, 2, hi);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    err = rc == SQLITE_ROW || rc == SQLITE_DONE
              ? JV_OK
              : jv__sqlerr(st, rc, "read archive spans");
    jv__reset(s);
    if (err)
        return err;
    if (!v) {
        if (!(s = jv__stmt(st, sql_span_add, &err)))
            return err;
        jv__bind_id(s, 1, id);
        jv__bind_u64(s, 2, hi);
        if ((err = jv__run(st, s, "archive span")))
            return err;
        v = sqlite3_last_insert_rowid(st->db);
    }
    cc->span_id = *id;
    cc->span_hi = hi;
    cc->span = *span = v;
    return JV_OK;
}

/*
 * The delta join of an add (key, value, stamp) with dot d covering the dots
 * R: Ed = {(key, d, stamp, value)}, Cd = {d} + R, and
 *     E' = {e in E : dot(e) not in Cd, or e == the new entry}
 *          + {the new entry, if d not in C}
 *     C' = C + Cd.
 * Dots are unique in E (a dot enters E only when it is not yet in C), so
 * "dot(e) == d" selects at most one entry, and for honest origins none.
 */
static jv_err apply_add(jv_store *st, ctx_cache *cc, row_buf *rb,
                        const jv_id *origin, const jv_op *op)
{
    jv_dot d = {*origin, op->add.dot_n};
    bool in;
    jv_err err;
    if ((err = ctx_contains(st, cc, &d, &in)))
        return err;
    for (size_t i = 0; i < op->add.nremoves; i++) {
        if (jv_dot_cmp(&op->add.removes[i], &d) == 0)
            continue; /* handled below, with the "same entry" exception */
        if ((err = archive_del(st, rb, &op->add.removes[i])))
            return err;
    }
    sqlite3_stmt *s;
    if (in) {
        if ((rb && (err = rb_flush_kind(st, rb, RB_ARCHIVE))) ||
            !(s = jv__stmt(st, sql_archive_del_other, &err)))
            return err;
        jv__bind_id(s, 1, origin);
        jv__bind_u64(s, 2, d.n);
        jv__bind_str(s, 3, op->add.key);
        jv__bind_u64(s, 4, op->add.stamp);
        jv__bind_str(s, 5, op->add.value);
        if ((err = jv__run(st, s, "archive add")))
            return err;
    } else {
        int64_t span = 0;
        if ((err = archive_span_of(st, cc, origin, d.n >> ARCHIVE_LO_BITS,
                                   &span)))
            return err;
        uint64_t id =
            (uint64_t)span << ARCHIVE_LO_BITS | (d.n & ARCHIVE_LO_MASK);
        if (rb) {
            if ((err = rb_add(st, rb, RB_ARCHIVE, op, id)))
                return err;
        } else {
            if (!(s = jv__stmt(st, sql_archive_add, &err)))
                return err;
            jv__bind_u64(s, 1, id);
            jv__bind_str(s, 2, op->add.key);
            jv__bind_u64(s, 3, op->add.stamp);
            jv__bind_str(s, 4, op->add.value);
            if ((err = jv__run(st, s, "archive add")))
                return err;
        }
    }
    if ((err = ctx_add(st, cc, &d)))
        return err;
    for (size_t i = 0; i < op->add.nremoves; i++)
        if ((err = ctx_add(st, cc, &op->add.removes[i])))
            return err;
    return JV_OK;
}

static void bind_ckey(sqlite3_stmt *s, const jv_id *origin, const jv_op *op)
{
    jv__bind_str(s, 1, op->key_add.id);
    jv__bind_str(s, 2, op->key_add.name);
    jv__bind_str(s, 3, op->key_add.role);
    sqlite3_bind_blob(s, 4, op->key_add.hash, JV_OP_KEY_HASH_LEN,
                      SQLITE_STATIC);
    jv__bind_u64(s, 5, op->key_add.time_ms);
    jv__bind_str(s, 6, op->key_add.by);
    jv__bind_id(s, 7, origin);
}

/* A second add of a known cluster key id with other content revokes the
 * key (see sql_ckey_add). */
static jv_err ckey_conflict(jv_store *st, const jv_id *origin, const jv_op *op)
{
    static const jv_id none;
    jv_err err;
    sqlite3_stmt *s = jv__stmt(st, sql_ckey_differs, &err);
    if (!s)
        return err;
    bind_ckey(s, origin, op);
    int rc = sqlite3_step(s);
    err = rc == SQLITE_ROW || rc == SQLITE_DONE
              ? JV_OK
              : jv__sqlerr(st, rc, "read cluster keys");
    jv__reset(s);
    if (err || rc == SQLITE_DONE)
        return err;
    if (!(s = jv__stmt(st, sql_ckey_revoke, &err)))
        return err;
    jv__bind_str(s, 1, op->key_add.id);
    jv__bind_u64(s, 2, 0);
    jv__bind_str(s, 3, jv_str_c("conflicting adds"));
    jv__bind_id(s, 4, &none);
    return jv__run(st, s, "cluster key revocation");
}

/* One operation of `origin` with sequence number seq into the materialized
 * state (see apply.h for what each kind does). With rb (whose origin is
 * `origin`), rows that can wait join it; without, everything is written
 * now. */
static jv_err apply_op(jv_store *st, ctx_cache *cc, row_buf *rb,
                       const jv_id *origin, uint64_t seq, const jv_op *op)
{
    sqlite3_stmt *s = NULL;
    jv_err err = JV_OK;
    switch (op->kind) {
    case JV_OP_COUNTER:
        if (rb)
            return rb_add(st, rb, RB_COUNTER, op, seq);
        if (!(s = jv__stmt(st, sql_counter_put, &err)))
            return err;
        jv__bind_str(s, 1, op->counter.name);
        jv__bind_id(s, 2, origin);
        jv__bind_u64(s, 3, op->counter.p);
        jv__bind_u64(s, 4, op->counter.n);
        return jv__run(st, s, "counter");
    case JV_OP_AUDIT:
        if (rb) {
            if ((err = rb_add(st, rb, RB_AUDIT, op, seq)))
                return err;
            return audit_minutes(st, op);
        }
        if (!(s = jv__stmt(st, sql_audit_add, &err)))
            return err;
        jv__bind_id(s, 1, origin);
        jv__bind_u64(s, 2, seq);
        jv__bind_u64(s, 3, op->audit.time_ms);
        jv__bind_str(s, 4, op->audit.actor);
        jv__bind_str(s, 5, op->audit.action);
        jv__bind_str(s, 6, op->audit.target);
        jv__bind_str(s, 7, op->audit.detail);
        if ((err = jv__run(st, s, "audit")))
            return err;
        return audit_minutes(st, op);
    case JV_OP_CONFIG:
        if (rb)
            return rb_add(st, rb, RB_CONFIG, op, seq);
        if (!(s = jv__stmt(st, sql_config_put, &err)))
            return err;
        jv__bind_str(s, 1, op->config.key);
        jv__bind_str(s, 2, op->config.value);
        jv__bind_u64(s, 3, op->config.stamp);
        jv__bind_id(s, 4, origin);
        return jv__run(st, s, "config");
    case JV_OP_ARCHIVE_ADD:
        return apply_add(st, cc, rb, origin, op);
    case JV_OP_ARCHIVE_RM:
        for (size_t i = 0; i < op->rm.nremoves; i++)
            if ((err = archive_del(st, rb, &op->rm.removes[i])) ||
                (err = ctx_add(st, cc, &op->rm.removes[i])))
                return err;
        return JV_OK;
    case JV_OP_TRUST:
        st->trust_gen++;
        if (!(s = jv__stmt(st, sql_trust_put, &err)))
            return err;
        jv__bind_id(s, 1, &op->trust.node);
        sqlite3_bind_int(s, 2, op->trust.trusted ? 1 : 0);
        jv__bind_u64(s, 3, op->trust.stamp);
        jv__bind_id(s, 4, origin);
        jv__bind_str(s, 5, op->trust.name);
        if ((err = jv__run(st, s, "trust")))
            return err;
        return jv__replica_seen(st, &op->trust.node);
    case JV_OP_SUCCESSION:
        /* apply_one refused a second successor of old beforehand. */
        st->trust_gen++;
        if (!(s = jv__stmt(st, sql_succ_put, &err)))
            return err;
        jv__bind_id(s, 1, &op->succ.old);
        jv__bind_id(s, 2, origin);
        jv__bind_u64(s, 3, op->succ.last_seq);
        jv__bind_u64(s, 4, op->succ.time_ms);
        sqlite3_bind_blob(s, 5, op->succ.sig, JV_SIG_LEN, SQLITE_STATIC);
        return jv__run(st, s, "succession");
    case JV_OP_KEY_ADD:
        if ((err = ckey_conflict(st, origin, op)))
            return err;
        if (!(s = jv__stmt(st, sql_ckey_add, &err)))
            return err;
        bind_ckey(s, origin, op);
        return jv__run(st, s, "cluster key");
    case JV_OP_KEY_REVOKE:
        if (!(s = jv__stmt(st, sql_ckey_revoke, &err)))
            return err;
        jv__bind_str(s, 1, op->key_revoke.id);
        jv__bind_u64(s, 2, op->key_revoke.time_ms);
        jv__bind_str(s, 3, op->key_revoke.by);
        jv__bind_id(s, 4, origin);
        return jv__run(st, s, "cluster key revocation");
    }
    return jv__fail(st, JV_EINVAL, "unknown operation kind %d", (int)op->kind);
}

/* -- the log -------------------------------------------------------------- */

static const char sql_batch_has[] = "SELECT 1 FROM batch WHERE hash = ?1";
static const char sql_cut_of[] = "SELECT seq, hash FROM cut WHERE origin = ?1";

/* Whether a batch whose sequence numbers are applied is covered by the
 * base: at or below the origin's cut, and the cut's own batch if it ends
 * there. */
static jv_err below_cut(jv_store *st, const jv_batch_head *h,
                        const uint8_t *hash, bool *covered)
{
    jv_err err;
    sqlite3_stmt *s = jv__stmt(st, sql_cut_of, &err);
    if (!s)
        return err;
    jv__bind_id(s, 1, &h->origin);
    int rc = sqlite3_step(s);
    *covered = false;
    if (rc == SQLITE_ROW) {
        uint64_t seq = jv__col_u64(s, 0);
        *covered =
            h->last_seq < seq ||
            (h->last_seq == seq && sqlite3_column_bytes(s, 1) == JV_HASH_LEN &&
             memcmp(sqlite3_column_blob(s, 1), hash, JV_HASH_LEN) == 0);
    }
    err = rc == SQLITE_ROW || rc == SQLITE_DONE
              ? JV_OK
              : jv__sqlerr(st, rc, "read cut");
    jv__reset(s);
    return err;
}
static const char sql_batch_add[] =
    "INSERT INTO batch(origin, first_seq, last_seq, hlc, hash, sig, body) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
static const char sql_vv_put[] =
    "INSERT INTO vv(origin, seq, hash) VALUES (?1, ?2, ?3) "
    "ON CONFLICT(origin) DO UPDATE SET seq = excluded.seq, "
    "hash = excluded.hash";

static jv_err head_put(jv_store *st, const jv_id *origin, uint64_t seq,
                       const uint8_t hash[JV_HASH_LEN])
{
    jv_err err;
    sqlite3_stmt *s = jv__stmt(st, sql_vv_put, &err);
    if (!s)
        return err;
    jv__bind_id(s, 1, origin);
    jv__bind_u64(s, 2, seq);
    sqlite3_bind_blob(s, 3, hash, JV_HASH_LEN, SQLITE_STATIC);
    return jv__run(st, s, "write version vector");
}

/* True when the query keyed by one blob returns a row. */
static jv_err exists_blob(jv_store *st, const char *sql, const void *key,
                          int len, bool *out)
{
    jv_err err;
    *out = false; /* defined on every path, also when the lookup fails */
    sqlite3_stmt *s = jv__stmt(st, sql, &err);
    if (!s)
        return err;
    sqlite3_bind_blob(s, 1, key, len, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    err = JV_OK;
    *out = rc == SQLITE_ROW;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        err = jv__sqlerr(st, rc, "lookup");
    jv__reset(s);
    return err;
}

/* Cluster key operations in a batch: the node reloads its credentials
 * when a commit applied any. */
static uint64_t key_ops(const jv_batch *bt)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < bt->nops; i++)
        n += bt->ops[i].kind == JV_OP_KEY_ADD ||
             bt->ops[i].kind == JV_OP_KEY_REVOKE;
    return n;
}

/* Appends the batch to the log, applies its operations and moves the
 * version vector. The caller has checked that it chains. */
static jv_err apply_batch(jv_store *st, ctx_cache *cc, const jv_store_batch *b,
                          bool new_origin)
{
    const jv_batch *bt = b->batch;
    jv_err err;
    sqlite3_stmt *s = jv__stmt(st, sql_batch_add, &err);
    if (!s)
        return err;
    jv__bind_id(s, 1, &bt->origin);
    jv__bind_u64(s, 2, bt->first_seq);
    jv__bind_u64(s, 3, jv_batch_last_seq(bt));
    jv__bind_u64(s, 4, bt->hlc);
    sqlite3_bind_blob(s, 5, b->hash, JV_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_blob(s, 6, b->sig, JV_SIG_LEN, SQLITE_STATIC);
    sqlite3_bind_blob64(s, 7, b->len ? (const void *)b->body : "", b->len,
                        SQLITE_STATIC);
    if ((err = jv__run(st, s, "append to log")))
        return err;
    row_buf rb;
    rb.origin = &bt->origin;
    memset(rb.n, 0, sizeof(rb.n));
    for (uint32_t i = 0; i < bt->nops; i++)
        if ((err = apply_op(st, cc, &rb, &bt->origin, bt->first_seq + i,
                            &bt->ops[i])))
            return err;
    if ((err = rb_flush(st, &rb)))
        return err;
    if ((err = head_put(st, &bt->origin, jv_batch_last_seq(bt), b->hash)))
        return err;
    if (new_origin)
        return jv__replica_seen(st, &bt->origin);
    return JV_OK;
}

/* -- held aside ----------------------------------------------------------- */

static const char sql_held_has[] = "SELECT 1 FROM held WHERE hash = ?1";
static const char sql_held_any[] = "SELECT EXISTS (SELECT 1 FROM held)";
static const char sql_held_usage[] =
    "SELECT count(*), coalesce(sum(len), 0) FROM held";
static const char sql_held_usage_origin[] =
    "SELECT count(*), coalesce(sum(len), 0) FROM held WHERE origin = ?1";
static const char sql_held_usage_untrusted[] =
    "SELECT count(*), coalesce(sum(len), 0) FROM held "
    "WHERE reason = 'untrusted'";
static const char sql_held_expire[] =
    "DELETE FROM held WHERE reason = 'untrusted' AND held_ms < ?1";
static const char sql_held_evict[] =
    "DELETE FROM held WHERE rowid IN (SELECT rowid FROM held "
    "WHERE reason = 'untrusted' ORDER BY held_ms, rowid LIMIT ?1)";
static const char sql_held_add[] =
    "INSERT INTO held(origin, first_seq, last_seq, hlc, reason, len, hash, "
    "sig, body, held_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
/* Origins with a held batch that might now apply: it starts at or before
 * the next expected sequence number. */
static const char sql_held_origins[] =
    "SELECT DISTINCT h.origin FROM held h LEFT JOIN vv v "
    "ON v.origin = h.origin WHERE h.first_seq <= coalesce(v.seq, 0) + 1 "
    "ORDER BY h.origin";
static const char sql_held_next[] =
    "SELECT rowid, reason, hash, sig, body FROM held "
    "WHERE origin = ?1 AND first_seq <= ?2 ORDER BY first_seq, rowid LIMIT 1";
static const char sql_held_del[] = "DELETE FROM held WHERE rowid = ?1";
static const char sql_held_reason[] =
    "UPDATE held SET reason = ?2 WHERE rowid = ?1";

static const char reason_gap[] = "gap";
static const char reason_untrusted[] = "untrusted";

static jv_err held_any(jv_store *st, bool *out)
{
    jv_err err;
    sqlite3_stmt *s = jv__stmt(st, sql_held_any, &err);
    if (!s)
        return err;
    int rc = sqlite3_step(s);
    err = rc == SQLITE_ROW ? JV_OK : jv__sqlerr(st, rc, "read held batches");
    *out = rc == SQLITE_ROW && sqlite3_column_int(s, 0) != 0;
    jv__reset(s);
    return err;
}

/* Count and bytes of the held batches a usage statement selects (origin
 * bound as ?1 when given). */
static jv_err held_usage(jv_store *st, const char *sql, const jv_id *origin,
                         uint64_t *count, uint64_t *bytes)
{
    jv_err err;
    sqlite3_stmt *s = jv__stmt(st, sql, &err);
    if (!s)
        return err;
    if (origin)
        jv__bind_id(s, 1, origin);
    int rc = sqlite3_step(s);
    *count = *bytes = 0;
    if (rc == SQLITE_ROW) {
        *count = jv__col_u64(s, 0);
        *bytes = jv__col_u64(s, 1);
    }
    jv__reset(s);
    return rc == SQLITE_ROW ? JV_OK : jv__sqlerr(st, rc, "read held batches");
}

static bool over(uint64_t count, uint64_t bytes, size_t len, uint64_t max_count,
                 uint64_t max_bytes)
{
    return count + 1 > max_count || bytes + len > max_bytes;
}

/* Whether b fits in the held area (*fits), after expiring untrusted
 * batches past their age and, for a trusted origin's batch, evicting the
 * oldest untrusted ones while the whole area is full. */
static jv_err held_room(jv_store *st, const jv_store_batch *b, bool untrusted,
                        bool *fits)
{
    uint64_t now = jv__now_ms(st), count, bytes;
    jv_err err;
    sqlite3_stmt *s;
    *fits = false;
    if (!(s = jv__stmt(st, sql_held_expire, &err)))
        return err;
    jv__bind_u64(s, 1,
                 now > JV_HELD_UNTRUSTED_TTL_MS ? now - JV_HELD_UNTRUSTED_TTL_MS
                                                : 0);
    if ((err = jv__run(st, s, "expire held batches")))
        return err;
    if ((err = held_usage(st, sql_held_usage_origin, &b->batch->origin, &count,
                          &bytes)))
        return err;
    if (over(count, bytes, b->len, JV_HELD_ORIGIN_MAX_BATCHES,
             JV_HELD_ORIGIN_MAX_BYTES))
        return JV_OK;
    if (untrusted) {
        if ((err = held_usage(st, sql_held_usage_untrusted, NULL, &count,
                              &bytes)))
            return err;
        if (over(count, bytes, b->len, JV_HELD_UNTRUSTED_MAX_BATCHES,
                 JV_HELD_UNTRUSTED_MAX_BYTES))
            return JV_OK;
    }
    for (;;) {
        uint64_t ucount, ubytes;
        if ((err = held_usage(st, sql_held_usage, NULL, &count, &bytes)))
            return err;
        if (!over(count, bytes, b->len, JV_HELD_MAX_BATCHES,
                  JV_HELD_MAX_BYTES)) {
            *fits = true;
            return JV_OK;
        }
        if (untrusted)
            return JV_OK;
        if ((err = held_usage(st, sql_held_usage_untrusted, NULL, &ucount,
                              &ubytes)))
            return err;
        if (ucount == 0)
            return JV_OK;
        if (!(s = jv__stmt(st, sql_held_evict, &err)))
            return err;
        sqlite3_bind_int64(s, 1, 16);
        if ((err = jv__run(st, s, "evict held batches")))
            return err;
    }
}

/* Holds b aside; *res is the batch's result (reason, or JV_ETOOBIG when
 * there is no room for it, see apply.h). */
static jv_err hold(jv_store *st, const jv_store_batch *b, jv_err reason,
                   jv_err *res)
{
    const jv_batch *bt = b->batch;
    jv_err err;
    bool fits;
    sqlite3_stmt *s;
    if ((err = held_room(st, b, reason == JV_EUNTRUSTED, &fits)))
        return err;
    if (!fits) {
        *res = JV_ETOOBIG;
        return JV_OK;
    }
    if (!(s = jv__stmt(st, sql_held_add, &err)))
        return err;
    jv__bind_id(s, 1, &bt->origin);
    jv__bind_u64(s, 2, bt->first_seq);
    jv__bind_u64(s, 3, jv_batch_last_seq(bt));
    jv__bind_u64(s, 4, bt->hlc);
    sqlite3_bind_text(s, 5,
                      reason == JV_EUNTRUSTED ? reason_untrusted : reason_gap,
                      -1, SQLITE_STATIC);
    jv__bind_u64(s, 6, b->len);
    sqlite3_bind_blob(s, 7, b->hash, JV_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_blob(s, 8, b->sig, JV_SIG_LEN, SQLITE_STATIC);
    sqlite3_bind_blob64(s, 9, b->len ? (const void *)b->body : "", b->len,
                        SQLITE_STATIC);
    jv__bind_u64(s, 10, jv__now_ms(st));
    if ((err = jv__run(st, s, "hold batch")) ||
        (err = jv__replica_seen(st, &bt->origin)))
        return err;
    *res = reason;
    return JV_OK;
}

static jv_err held_del(jv_store *st, int64_t rowid)
{
    jv_err err;
    sqlite3_stmt *s = jv__stmt(st, sql_held_del, &err);
    if (!s)
        return err;
    sqlite3_bind_int64(s, 1, rowid);
    return jv__run(st, s, "release held batch");
}

static jv_err held_mark_untrusted(jv_store *st, int64_t rowid)
{
    jv_err err;
    sqlite3_stmt *s = jv__stmt(st, sql_held_reason, &err);
    if (!s)
        return err;
    sqlite3_bind_int64(s, 1, rowid);
    sqlite3_bind_text(s, 2, reason_untrusted, -1, SQLITE_STATIC);
    return jv__run(st, s, "update held batch");
}

/* Whether bt may be applied as far as trust goes. A batch that opens an
 * origin with a succession (a restored node's new origin) stands as the
 * old origin does; *conflict when old already has another successor:
 * one old origin has at most one successor, whoever signed a second. */
static jv_err batch_trusted(jv_store *st, const jv_batch *bt, unsigned flags,
                            bool *trusted, bool *conflict)
{
    jv_id other;
    jv_err err;
    *trusted = true;
    *conflict = false;
    bool succ = bt->nops && bt->ops[0].kind == JV_OP_SUCCESSION;
    if (succ) {
        err = jv_store_successor(st, &bt->ops[0].succ.old, &other);
        if (err == JV_OK && !jv_id_eq(&other, &bt->origin)) {
            *conflict = true;
            *trusted = false;
            return JV_OK;
        }
        if (err && err != JV_ENOTFOUND)
            return err;
    }
    if (!(flags & JV_APPLY_REQUIRE_TRUST))
        return JV_OK;
    if ((err = jv_store_is_trusted(st, &bt->origin, trusted)) || *trusted ||
        !succ)
        return err;
    return jv_store_is_trusted(st, &bt->ops[0].succ.old, trusted);
}

/* Applies, in chain order, the held batches of one origin that have become
 * applicable, and drops those that never can (already covered, or not
 * linking). Stops at the first that still waits. */
static jv_err release_origin(jv_store *st, ctx_cache *cc, const jv_id *origin,
                             unsigned flags, jv_apply_stats *stats,
                             bool *progress)
{
    jv_err err = JV_OK;
    sqlite3_stmt *s = NULL;
    jv_batch bt = {0};
    for (;;) {
        uint64_t seq;
        uint8_t hash[JV_HASH_LEN];
        if ((err = jv_store_origin_head(st, origin, &seq, hash)))
            goto out;
        /* vv rows come only from applied batches, so seq 0 means none. */
        bool found = seq > 0;
        if (!(s = jv__stmt(st, sql_held_next, &err)))
            goto out;
        jv__bind_id(s, 1, origin);
        jv__bind_u64(s, 2, seq + 1);
        int rc = sqlite3_step(s);
        if (rc == SQLITE_DONE)
            goto out;
        if (rc != SQLITE_ROW) {
            err = jv__sqlerr(st, rc, "read held batches");
            goto out;
        }
        /* The row's blobs stay valid until s is reset: apply straight from
         * them. */
        int64_t rowid = sqlite3_column_int64(s, 0);
        bool was_untrusted = strcmp((const char *)sqlite3_column_text(s, 1),
                                    reason_untrusted) == 0;
        jv_store_batch b = {
            .body = sqlite3_column_blob(s, 4),
            .len = (size_t)sqlite3_column_bytes(s, 4),
            .sig = sqlite3_column_blob(s, 3),
            .hash = sqlite3_column_blob(s, 2),
            .batch = &bt,
        };
        jv_batch_head h;
        jv_err c = JV_ELINK, dec = JV_EDECODE;
        if (sqlite3_column_bytes(s, 2) == JV_HASH_LEN &&
            sqlite3_column_bytes(s, 3) == JV_SIG_LEN)
            dec = jv_batch_decode(b.body, b.len, &bt);
        if (dec == JV_ENOMEM) {
            /* Not the batch's fault: it stays held. */
            err = jv__fail(st, dec, "release: out of memory");
            goto out;
        }
        if (dec == JV_OK) {
            h.origin = bt.origin;
            h.first_seq = bt.first_seq;
            h.last_seq = jv_batch_last_seq(&bt);
            h.nops = bt.nops;
            memcpy(h.prev, bt.prev, JV_HASH_LEN);
            h.hlc = bt.hlc;
            c = jv_id_eq(&bt.origin, origin)
                    ? jv_batch_check_chain(&h, seq, hash)
                    : JV_ELINK;
        }
        bool trusted = true, conflict = false;
        if (c == JV_OK &&
            (err = batch_trusted(st, &bt, flags, &trusted, &conflict)))
            goto out;
        if (c == JV_OK && trusted && jv__beyond_skew(st, bt.hlc))
            goto out; /* stays held until its stamp is within the bound */
        if (c == JV_OK && trusted) {
            if ((err = apply_batch(st, cc, &b, !found)))
                goto out;
            stats->applied++;
            stats->released++;
            stats->ops += bt.nops;
            stats->keys += key_ops(&bt);
        }
        jv__reset(s);
        s = NULL;
        jv_batch_fini(&bt);
        if (c == JV_EGAP)
            goto out; /* cannot happen for the first at seq + 1; be safe */
        if (c == JV_OK && !trusted) {
            if (!was_untrusted)
                err = held_mark_untrusted(st, rowid);
            goto out;
        }
        if ((err = held_del(st, rowid)))
            goto out;
        *progress = true;
    }
out:
    jv__reset(s);
    jv_batch_fini(&bt);
    return err;
}

/* Applies every held batch that has become applicable, until nothing
 * moves (an applied batch can fill a gap or trust an origin). */
static jv_err release(jv_store *st, ctx_cache *cc, unsigned flags,
                      jv_apply_stats *stats)
{
    jv_id *origins = NULL;
    size_t n = 0, cap = 0;
    jv_err err = JV_OK;
    bool progress = true, any;
    while (progress) {
        progress = false;
        if ((err = held_any(st, &any)) || !any)
            break;
        sqlite3_stmt *s = jv__stmt(st, sql_held_origins, &err);
        if (!s)
            break;
        int rc;
        n = 0;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
            if (n == cap) {
                size_t ncap = cap ? cap * 2 : 16;
                jv_id *o = jv_reallocarray(origins, ncap, sizeof(*o));
                if (!o) {
                    err = jv__fail(st, JV_ENOMEM, "release: out of memory");
                    break;
                }
                origins = o;
                cap = ncap;
            }
            if ((err = jv__col_id(st, s, 0, &origins[n])))
                break;
            n++;
        }
        if (!err && rc != SQLITE_DONE)
            err = jv__sqlerr(st, rc, "read held batches");
        jv__reset(s);
        if (err)
            break;
        for (size_t i = 0; i < n && !err; i++)
            err = release_origin(st, cc, &origins[i], flags, stats, &progress);
        if (err)
            break;
    }
    jv_free(origins);
    return err;
}

/* -- jv_store_apply ------------------------------------------------------- */

/* Decides and does what happens to one batch; *res is its result. Returns
 * only storage failures. */
static jv_err apply_one(jv_store *st, ctx_cache *cc, const jv_store_batch *b,
                        unsigned flags, bool *held_nonempty,
                        jv_apply_stats *stats, jv_err *res)
{
    const jv_batch *bt = b->batch;
    uint64_t seq;
    uint8_t hash[JV_HASH_LEN];
    bool found, dup, trusted = true;
    jv_err err;

    if (!bt || !b->hash || !b->sig || (!b->body && b->len) || bt->nops == 0 ||
        bt->first_seq == 0) {
        *res = JV_EINVAL;
        return JV_OK;
    }
    if ((err = exists_blob(st, sql_batch_has, b->hash, JV_HASH_LEN, &dup)))
        return err;
    if (!dup && *held_nonempty &&
        (err = exists_blob(st, sql_held_has, b->hash, JV_HASH_LEN, &dup)))
        return err;
    if (dup) {
        *res = JV_EDUP;
        return JV_OK;
    }
    if ((err = jv_store_origin_head(st, &bt->origin, &seq, hash)))
        return err;
    found = seq > 0;
    jv_batch_head h = {
        .origin = bt->origin,
        .first_seq = bt->first_seq,
        .last_seq = jv_batch_last_seq(bt),
        .nops = bt->nops,
        .hlc = bt->hlc,
    };
    memcpy(h.prev, bt->prev, JV_HASH_LEN);
    jv_err c = jv_batch_check_chain(&h, seq, hash);
    if (c == JV_EDUP) {
        /* Its sequence numbers are applied but its hash is not in the log:
         * the origin signed two different batches for them, unless they
         * are covered by the base (snapshot.h), whose cut keeps only the
         * hash of its last batch per origin: below it, a batch that is no
         * longer in the log cannot be told from the one that was. */
        bool covered = false;
        if ((err = below_cut(st, &h, b->hash, &covered)))
            return err;
        *res = covered ? JV_EDUP : JV_EEQUIVOCATE;
        return JV_OK;
    }
    if (c == JV_ELINK) {
        *res = JV_ELINK;
        return JV_OK;
    }
    bool conflict = false;
    if ((err = batch_trusted(st, bt, flags, &trusted, &conflict)))
        return err;
    if (conflict) {
        /* A second successor of one origin: refused like two batches for
         * one sequence number (the old origin's key signed both). */
        *res = JV_EEQUIVOCATE;
        return JV_OK;
    }
    if (!trusted || c == JV_EGAP || jv__beyond_skew(st, bt->hlc)) {
        jv_err why = !trusted       ? JV_EUNTRUSTED
                     : c == JV_EGAP ? JV_EGAP
                                    : JV_ESKEW;
        if ((err = hold(st, b, why, res)))
            return err;
        if (*res != JV_ETOOBIG)
            *held_nonempty = true;
        return JV_OK;
    }
    if ((err = apply_batch(st, cc, b, !found)))
        return err;
    stats->applied++;
    stats->ops += bt->nops;
    stats->keys += key_ops(bt);
    *res = JV_OK;
    return JV_OK;
}

jv_err jv_store_apply(jv_store *st, const jv_store_batch *b, size_t n,
                      unsigned flags, jv_err *results, jv_apply_stats *stats)
{
    jv_apply_stats s = {0};
    ctx_cache cc = {0};
    jv__tx tx;
    bool held_nonempty = false;
    jv_err err;
    if (n && (!b || !results))
        return jv__fail(st, JV_EINVAL, "apply: no batches or no results");
    if (st->readonly)
        return jv__fail(st, JV_EPERM, "apply: store opened read-only");
    if ((err = jv__tx_begin(st, &tx)))
        return err;
    if ((err = held_any(st, &held_nonempty)))
        goto fail;
    for (size_t i = 0; i < n; i++)
        if ((err = apply_one(st, &cc, &b[i], flags, &held_nonempty, &s,
                             &results[i])))
            goto fail;
    if (held_nonempty && (err = release(st, &cc, flags, &s)))
        goto fail;
    if ((err = ctx_flush(st, &cc)))
        goto fail;
    if ((err = jv__tx_commit(st, &tx)))
        goto fail_done; /* rolled back by jv__tx_commit */
    ctx_fini(&cc);
    if (stats)
        *stats = s;
    return JV_OK;
fail:
    jv__tx_rollback(st, &tx);
fail_done:
    ctx_fini(&cc);
    for (size_t i = 0; i < n; i++)
        results[i] = err;
    return err;
}

/* -- jv_store_commit_local ------------------------------------------------ */

/* Every share of a counter, self's marked: self's share and the total in
 * one read. */
static const char sql_counter_shares[] =
    "SELECT replica = ?2, p, n FROM counter WHERE name = ?1";
static const char sql_archive_dots[] =
    "SELECT replica, n FROM archive WHERE key = ?1 ORDER BY replica, n";

/* An operation made from an intent, waiting for its sequence number. */
typedef struct {
    jv_op op;
    jv_intent *intent;
    jv_dot *dots; /* owned: the op's removes */
    size_t pos;   /* order of creation, for coalescing */
    bool dropped; /* coalesced away */
} pend;

typedef struct {
    pend *p;
    size_t n, cap;
} pend_list;

static void pend_truncate(pend_list *l, size_t n)
{
    while (l->n > n)
        jv_free(l->p[--l->n].dots);
}

static void pend_fini(pend_list *l)
{
    pend_truncate(l, 0);
    jv_free(l->p);
}

/* Failures that end the whole call rather than one write group: every
 * error SQLite can give (jv__rc_err), and ours that mean the same. */
static bool fatal(jv_err e)
{
    return e == JV_ENOMEM || e == JV_ESTORAGE || e == JV_EIO || e == JV_EBUSY ||
           e == JV_ECORRUPT || e == JV_EFOREIGN || e == JV_ESTATE ||
           e == JV_EPERM;
}

/* Self's current share of a counter, and the exact total of every
 * replica's. */
typedef struct {
    uint64_t self_p, self_n; /* self's share */
    jv_count total;          /* every share, self's included */
} counter_view;

static jv_err counter_read(jv_store *st, jv_str name, const jv_id *self,
                           counter_view *v)
{
    jv_err err;
    sqlite3_stmt *s = jv__stmt(st, sql_counter_shares, &err);
    if (!s)
        return err;
    jv__bind_str(s, 1, name);
    jv__bind_id(s, 2, self);
    memset(v, 0, sizeof(*v));
    int rc;
    err = JV_OK;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        uint64_t sp = jv__col_u64(s, 1), sn = jv__col_u64(s, 2);
        if (sqlite3_column_int(s, 0)) {
            v->self_p = sp;
            v->self_n = sn;
        } else {
            jv_count_add(&v->total, sp, sn);
        }
    }
    if (rc != SQLITE_DONE)
        err = jv__sqlerr(st, rc, "read counter");
    jv__reset(s);
    return err;
}

/* The dots of key currently live, sorted; *out owned by the caller. */
static jv_err archive_dots(jv_store *st, jv_str key, jv_dot **out, size_t *n)
{
    jv_err err;
    sqlite3_stmt *s = jv__stmt(st, sql_archive_dots, &err);
    if (!s)
        return err;
    jv__bind_str(s, 1, key);
    jv_dot *d = NULL;
    size_t cnt = 0, cap = 0;
    int rc;
    err = JV_OK;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (cnt == JV_OP_MAX_REMOVES) {
            err = jv__fail(st, JV_ETOOBIG,
                           "archive key has more than %d live values",
                           JV_OP_MAX_REMOVES);
            break;
        }
        if (cnt == cap) {
            size_t ncap = cap ? cap * 2 : 4;
            jv_dot *nd = jv_reallocarray(d, ncap, sizeof(*nd));
            if (!nd) {
                err = jv__fail(st, JV_ENOMEM, "archive: out of memory");
                break;
            }
            d = nd;
            cap = ncap;
        }
        if ((err = jv__col_id(st, s, 0, &d[cnt].id)))
            break;
        d[cnt++].n = jv__col_u64(s, 1);
    }
    if (!err && rc != SQLITE_DONE && rc != SQLITE_ROW)
        err = jv__sqlerr(st, rc, "read archive");
    jv__reset(s);
    if (err) {
        jv_free(d);
        return err;
    }
    *out = d;
    *n = cnt;
    return JV_OK;
}

/* Makes the operation for one intent from current state, and applies it
 * (audit entries wait for their final sequence number). */
static jv_err make_op(jv_store *st, ctx_cache *cc, const jv_id *self,
                      uint64_t hlc, jv_intent *in, pend *pd)
{
    jv_op *op = &pd->op;
    jv_err err;
    *op = in->op;
    switch (op->kind) {
    case JV_OP_COUNTER: {
        counter_view v;
        if (in->by == 0)
            return jv__fail(st, JV_EINVAL, "counter change of 0");
        if ((err = counter_read(st, op->counter.name, self, &v)))
            return err;
        /* -(by + 1) + 1 is |by| without overflow for INT64_MIN. */
        uint64_t by =
            in->by > 0 ? (uint64_t)in->by : (uint64_t)(-(in->by + 1)) + 1;
        uint64_t *share = in->by > 0 ? &v.self_p : &v.self_n;
        /* Only this node's own share is bounded (what one origin can
         * sign); the total is exact in 128 bits whatever the others hold,
         * so a busy cluster never makes a counter unwritable. */
        if (by > (uint64_t)INT64_MAX - *share)
            return jv__fail(
                st, JV_EOVERFLOW,
                "counter %.*s: this node's share would exceed "
                "2^63 - 1",
                (int)(op->counter.name.n > 64 ? 64 : op->counter.name.n),
                op->counter.name.p);
        *share += by;
        op->counter.p = v.self_p;
        op->counter.n = v.self_n;
        jv_count_add(&v.total, v.self_p, v.self_n);
        in->res.counter_total = v.total;
        break;
    }
    case JV_OP_ARCHIVE_ADD: {
        uint64_t max;
        if ((err = ctx_max(st, cc, self, &max)))
            return err;
        if (max >= (uint64_t)JV_INT_MAX)
            return jv__fail(st, JV_EOVERFLOW, "archive dots exhausted");
        op->add.dot_n = max + 1;
        if ((err = archive_dots(st, op->add.key, &pd->dots, &op->add.nremoves)))
            return err;
        op->add.removes = pd->dots;
        break;
    }
    case JV_OP_ARCHIVE_RM:
        if ((err = archive_dots(st, op->rm.key, &pd->dots, &op->rm.nremoves)))
            return err;
        if (op->rm.nremoves == 0)
            return jv__fail(st, JV_ENOTFOUND, "archive key %.*s not found",
                            (int)(op->rm.key.n > 64 ? 64 : op->rm.key.n),
                            op->rm.key.p ? op->rm.key.p : "");
        op->rm.removes = pd->dots;
        break;
    case JV_OP_AUDIT:
    case JV_OP_CONFIG:
    case JV_OP_TRUST:
    case JV_OP_SUCCESSION:
    case JV_OP_KEY_ADD:
    case JV_OP_KEY_REVOKE:
        break;
    default:
        return jv__fail(st, JV_EINVAL, "unknown operation kind %d",
                        (int)op->kind);
    }
    if (jv_op_validate(op, hlc) != JV_OK)
        return jv__fail(st, JV_EINVAL,
                        "invalid %s operation (sizes, UTF-8, or a stamp "
                        "above the batch stamp)",
                        op->kind == JV_OP_COUNTER      ? "counter"
                        : op->kind == JV_OP_AUDIT      ? "audit"
                        : op->kind == JV_OP_CONFIG     ? "config"
                        : op->kind == JV_OP_TRUST      ? "trust"
                        : op->kind == JV_OP_SUCCESSION ? "succession"
                        : op->kind == JV_OP_KEY_ADD ||
                                op->kind == JV_OP_KEY_REVOKE
                            ? "cluster key"
                            : "archive");
    if (op->kind == JV_OP_AUDIT)
        return JV_OK;
    if ((err = apply_op(st, cc, NULL, self, 0, op)))
        return err;
    if (op->kind == JV_OP_ARCHIVE_ADD) {
        in->res.dot.id = *self;
        in->res.dot.n = op->add.dot_n;
    }
    return JV_OK;
}

/* Makes g's local step and the ops of its intents, into pl. */
static jv_err make_ops(jv_store *st, ctx_cache *cc, const jv_id *self,
                       uint64_t hlc, jv_write_group *g, pend_list *pl,
                       size_t *pos)
{
    jv_err err = g->local ? g->local(st, g->local_arg) : JV_OK;
    g->failed_index = 0;
    for (size_t i = 0; !err && i < g->n; i++) {
        if (pl->n == pl->cap) {
            size_t cap = pl->cap ? pl->cap * 2 : 64;
            pend *np = jv_reallocarray(pl->p, cap, sizeof(*np));
            if (!np)
                return jv__fail(st, JV_ENOMEM, "commit: out of memory");
            pl->p = np;
            pl->cap = cap;
        }
        pend *pd = &pl->p[pl->n];
        memset(pd, 0, sizeof(*pd));
        pd->intent = &g->intents[i];
        pd->pos = (*pos)++;
        pl->n++;
        if ((err = make_op(st, cc, self, hlc, &g->intents[i], pd)))
            g->failed_index = i;
    }
    return err;
}

/* A group of one counter change needs no savepoint: its own failures
 * (a change of 0, an overflow) come before its only write, one UPSERT,
 * and a failure of that is a storage failure, which rolls the whole
 * commit back. An increment costs two statements fewer (SAVEPOINT,
 * RELEASE). */
static bool one_statement(const jv_write_group *g)
{
    return g->n == 1 && !g->local && g->intents[0].op.kind == JV_OP_COUNTER;
}

/* Runs one write group inside its own savepoint (unless one_statement).
 * A group-level failure (invalid intent, missing key...) rolls the group
 * back and is recorded in g->result; a storage failure is returned. */
static jv_err run_group(jv_store *st, ctx_cache *cc, const jv_id *self,
                        uint64_t hlc, jv_write_group *g, pend_list *pl,
                        size_t *pos)
{
    jv__tx tx;
    size_t mark = pl->n;
    bool sp = !one_statement(g);
    jv_err gerr;
    if (sp && (gerr = jv__tx_begin(st, &tx)))
        return gerr;
    gerr = make_ops(st, cc, self, hlc, g, pl, pos);
    if (!gerr)
        gerr = ctx_flush(st, cc);
    if (!gerr) {
        /* jv__tx_commit rolls the savepoint back itself when it fails. */
        if (!sp || (gerr = jv__tx_commit(st, &tx)) == JV_OK) {
            g->result = JV_OK;
            return JV_OK;
        }
    } else if (sp) {
        jv__tx_rollback(st, &tx);
    }
    ctx_drop(cc);
    pend_truncate(pl, mark);
    for (size_t i = 0; i < g->n; i++)
        memset(&g->intents[i].res, 0, sizeof(g->intents[i].res));
    g->result = gerr;
    return fatal(gerr) ? gerr : JV_OK;
}

static const jv_str *pend_key(const pend *p)
{
    return p->op.kind == JV_OP_COUNTER ? &p->op.counter.name
                                       : &p->op.config.key;
}

static int pend_cmp(const void *a, const void *b)
{
    const pend *x = *(const pend *const *)a, *y = *(const pend *const *)b;
    if (x->op.kind != y->op.kind)
        return x->op.kind < y->op.kind ? -1 : 1;
    int c = jv_str_cmp(*pend_key(x), *pend_key(y));
    if (c)
        return c;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

/* Config registers order as in LWW (all are self's). */
static int config_cmp(const pend *x, const pend *y, const jv_id *self)
{
    return jv_lww_order(x->op.config.stamp, self, x->op.config.value,
                        y->op.config.stamp, self, y->op.config.value);
}

/* Keeps one operation per counter name (the last: self's shares only grow)
 * and per config key (the LWW winner, the last among equals), so that the
 * state already applied equals the replay of what is kept. */
static jv_err coalesce(jv_store *st, const jv_id *self, pend_list *pl)
{
    size_t m = 0;
    for (size_t i = 0; i < pl->n; i++)
        if (pl->p[i].op.kind == JV_OP_COUNTER ||
            pl->p[i].op.kind == JV_OP_CONFIG)
            m++;
    if (m < 2)
        return JV_OK;
    pend **v = jv_calloc(m, sizeof(*v));
    if (!v)
        return jv__fail(st, JV_ENOMEM, "commit: out of memory");
    m = 0;
    for (size_t i = 0; i < pl->n; i++)
        if (pl->p[i].op.kind == JV_OP_COUNTER ||
            pl->p[i].op.kind == JV_OP_CONFIG)
            v[m++] = &pl->p[i];
    qsort(v, m, sizeof(*v), pend_cmp);
    for (size_t i = 0; i < m;) {
        size_t j = i + 1, keep = i;
        while (j < m && v[j]->op.kind == v[i]->op.kind &&
               jv_str_eq(*pend_key(v[j]), *pend_key(v[i])))
            j++;
        for (size_t k = i + 1; k < j; k++)
            if (v[k]->op.kind == JV_OP_COUNTER ||
                config_cmp(v[k], v[keep], self) >= 0)
                keep = k;
        for (size_t k = i; k < j; k++)
            v[k]->dropped = k != keep;
        i = j;
    }
    jv_free(v);
    return JV_OK;
}

/* An upper bound of an operation's encoded size, to cut batches before
 * JV_BATCH_MAX_BYTES without encoding twice. */
static size_t op_bound(const jv_op *op)
{
    const size_t str = 5, num = 9, dot = 1 + 34 + 9, arr = 5;
    switch (op->kind) {
    case JV_OP_COUNTER:
        return arr + num + str + op->counter.name.n + 2 * num;
    case JV_OP_AUDIT:
        return arr + 2 * num + 4 * str + op->audit.actor.n +
               op->audit.action.n + op->audit.target.n + op->audit.detail.n;
    case JV_OP_CONFIG:
        return arr + 2 * num + 2 * str + op->config.key.n + op->config.value.n;
    case JV_OP_ARCHIVE_ADD:
        return arr + 3 * num + 2 * str + op->add.key.n + op->add.value.n + arr +
               op->add.nremoves * dot;
    case JV_OP_ARCHIVE_RM:
        return arr + num + str + op->rm.key.n + arr + op->rm.nremoves * dot;
    case JV_OP_TRUST:
        return arr + 2 * num + 1 + 34 + str + op->trust.name.n;
    case JV_OP_SUCCESSION:
        return arr + 3 * num + 34 + 66;
    case JV_OP_KEY_ADD:
        return arr + 2 * num + 4 * str + 34 + op->key_add.id.n +
               op->key_add.name.n + op->key_add.role.n + op->key_add.by.n;
    case JV_OP_KEY_REVOKE:
        return arr + 2 * num + 2 * str + op->key_revoke.id.n +
               op->key_revoke.by.n;
    }
    return JV_BATCH_MAX_BYTES;
}

/* Encodes, signs and logs ops[0..n) as batches of self chained onto
 * (*seq, prev); advances both. */
static jv_err write_batches(jv_store *st, const jv_keypair *kp, uint64_t hlc,
                            jv_op *ops, size_t n, uint64_t *seq,
                            uint8_t prev[JV_HASH_LEN], size_t *nbatches)
{
    /* Header: array, version, origin, first_seq, prev, hlc, ops array. */
    const size_t head_bound = 1 + 1 + 34 + 9 + 34 + 9 + 5;
    jv_buf body;
    jv_err err = JV_OK;
    jv_buf_init(&body);
    for (size_t i = 0; i < n;) {
        size_t j = i, bytes = head_bound;
        while (j < n && j - i < JV_BATCH_MAX_OPS &&
               bytes + op_bound(&ops[j]) <= JV_BATCH_MAX_BYTES)
            bytes += op_bound(&ops[j++]);
        if (j == i)
            j = i + 1; /* cannot fit: let the encoder say JV_ETOOBIG */
        jv_batch b = {
            .origin = kp->pk,
            .first_seq = *seq + 1,
            .hlc = hlc,
            .ops = &ops[i],
            .nops = (uint32_t)(j - i),
        };
        memcpy(b.prev, prev, JV_HASH_LEN);
        jv_buf_reset(&body);
        if ((err = jv_batch_encode(&b, &body))) {
            err = jv__fail(st, err, "encode batch: %s", jv_strerror(err));
            break;
        }
        uint8_t hash[JV_HASH_LEN], sig[JV_SIG_LEN];
        jv_batch_hash(body.data, body.len, hash);
        jv_batch_sign(hash, kp, sig);
        sqlite3_stmt *s = jv__stmt(st, sql_batch_add, &err);
        if (!s)
            break;
        jv__bind_id(s, 1, &b.origin);
        jv__bind_u64(s, 2, b.first_seq);
        jv__bind_u64(s, 3, jv_batch_last_seq(&b));
        jv__bind_u64(s, 4, b.hlc);
        sqlite3_bind_blob(s, 5, hash, JV_HASH_LEN, SQLITE_STATIC);
        sqlite3_bind_blob(s, 6, sig, JV_SIG_LEN, SQLITE_STATIC);
        sqlite3_bind_blob64(s, 7, body.data, body.len, SQLITE_STATIC);
        if ((err = jv__run(st, s, "append to log")))
            break;
        *seq = jv_batch_last_seq(&b);
        memcpy(prev, hash, JV_HASH_LEN);
        (*nbatches)++;
        i = j;
    }
    jv_buf_fini(&body);
    return err;
}

/* Refuses a commit that cannot be this node's, before any transaction,
 * and clears the groups' results. */
static jv_err commit_check(jv_store *st, const jv_keypair *kp, uint64_t hlc,
                           jv_write_group *groups, size_t ngroups, jv_id *self)
{
    jv_err err;
    if (ngroups && !groups)
        return jv__fail(st, JV_EINVAL, "commit: no groups");
    if (st->readonly)
        return jv__fail(st, JV_EPERM, "commit: store opened read-only");
    if (hlc == 0 || hlc > JV_INT_MAX)
        return jv__fail(st, JV_EINVAL, "commit: batch stamp out of range");
    if ((err = jv__self(st, self)))
        return err == JV_ENOTFOUND
                   ? jv__fail(st, JV_ESTATE, "commit: node id not set")
                   : err;
    if (!jv_id_eq(self, &kp->pk))
        return jv__fail(st, JV_EINVAL, "commit: key pair is not this node's");
    for (size_t g = 0; g < ngroups; g++) {
        groups[g].result = JV_OK;
        groups[g].failed_index = 0;
        for (size_t i = 0; i < groups[g].n; i++)
            memset(&groups[g].intents[i].res, 0,
                   sizeof(groups[g].intents[i].res));
    }
    return JV_OK;
}

/* Gives the operations that survived coalescing their final sequence
 * numbers after head, applies the audit entries (identified by them),
 * signs the batches and moves the head. */
static jv_err number_and_sign(jv_store *st, ctx_cache *cc, const jv_keypair *kp,
                              uint64_t hlc, const jv_id *self, pend_list *pl,
                              uint64_t head, uint8_t prev[JV_HASH_LEN],
                              jv_commit_info *ci, bool *any_trust)
{
    jv_op *ops = NULL;
    size_t nops = 0, k = 0;
    jv_err err = JV_OK;
    for (size_t i = 0; i < pl->n; i++)
        nops += !pl->p[i].dropped;
    if (!nops)
        return JV_OK;
    if (head > (uint64_t)JV_INT_MAX - nops)
        return jv__fail(st, JV_EOVERFLOW, "sequence numbers exhausted");
    if (!(ops = jv_calloc(nops, sizeof(*ops))))
        return jv__fail(st, JV_ENOMEM, "commit: out of memory");
    for (size_t i = 0; i < pl->n; i++) {
        pend *pd = &pl->p[i];
        if (pd->dropped)
            continue;
        uint64_t seq = head + 1 + k;
        pd->intent->res.seq = seq;
        if (pd->op.kind == JV_OP_AUDIT &&
            (err = apply_op(st, cc, NULL, self, seq, &pd->op)))
            goto out;
        *any_trust |= pd->op.kind == JV_OP_TRUST;
        ops[k++] = pd->op;
    }
    ci->first_seq = head + 1;
    if ((err = write_batches(st, kp, hlc, ops, nops, &head, prev,
                             &ci->nbatches)) ||
        (err = head_put(st, self, head, prev)))
        goto out;
    ci->last_seq = head;
    ci->nops = nops;
out:
    jv_free(ops);
    return err;
}

jv_err jv_store_commit_local(jv_store *st, const jv_keypair *kp, uint64_t hlc,
                             jv_write_group *groups, size_t ngroups,
                             jv_commit_info *info)
{
    jv_commit_info ci = {0};
    ctx_cache cc = {0};
    pend_list pl = {0};
    jv_apply_stats rs = {0};
    jv__tx tx;
    jv_id self;
    uint64_t head;
    uint8_t prev[JV_HASH_LEN];
    bool any_trust = false;
    size_t pos = 0;
    jv_err err;

    if ((err = commit_check(st, kp, hlc, groups, ngroups, &self)))
        return err;
    if ((err = jv__tx_begin(st, &tx)))
        return err;
    if ((err = jv_store_origin_head(st, &self, &head, prev)))
        goto fail;
    for (size_t g = 0; g < ngroups; g++) {
        if ((err = run_group(st, &cc, &self, hlc, &groups[g], &pl, &pos)))
            goto fail;
        if (groups[g].result == JV_OK)
            ci.groups_ok++;
    }
    if ((err = coalesce(st, &self, &pl)) ||
        (err = number_and_sign(st, &cc, kp, hlc, &self, &pl, head, prev, &ci,
                               &any_trust)))
        goto fail;
    /* A trust written here may release batches held for their origin. */
    if (any_trust && (err = release(st, &cc, JV_APPLY_REQUIRE_TRUST, &rs)))
        goto fail;
    ci.released_keys = rs.keys;
    if ((err = ctx_flush(st, &cc)))
        goto fail;
    if ((err = jv__tx_commit(st, &tx)))
        goto fail_done; /* rolled back by jv__tx_commit */
    if (info)
        *info = ci;
    err = JV_OK;
    goto out;
fail:
    jv__tx_rollback(st, &tx);
fail_done:
    for (size_t g = 0; g < ngroups; g++) {
        if (groups[g].result == JV_OK)
            groups[g].result = err;
        for (size_t i = 0; i < groups[g].n; i++)
            memset(&groups[g].intents[i].res, 0,
                   sizeof(groups[g].intents[i].res));
    }
out:
    pend_fini(&pl);
    ctx_fini(&cc);
    return err;
}
