/*
 * query.c - reads of replicated state, one row at a time to a callback.
 *
 * Prefix listings are range scans on the key's index, never LIKE: a key
 * starts with prefix exactly when prefix <= key < upper(prefix), where
 * upper() drops trailing 0xff bytes and increments the last byte. Keys are
 * valid UTF-8 and so never contain 0xff; a prefix made only of 0xff bytes
 * has no upper bound, and an empty BLOB stands for "no upper bound" since
 * SQLite orders every TEXT value before every BLOB.
 *
 * Paging cursors become the lower bound of the scan (strict), so a page
 * costs its own rows and not the rows of the pages before it.
 */
#include "query.h"

#include <string.h>

#include "alloc.h"
#include "store_int.h"

/* -- prefix ranges -------------------------------------------------------- */

typedef struct {
    jv_str lo;   /* the scan starts here */
    bool strict; /* lo itself excluded (a cursor) */
    jv_buf hi;   /* exclusive upper bound, when has_hi */
    bool has_hi;
    bool empty; /* nothing can match */
} key_range;

static jv_err range_init(jv_store *st, jv_str prefix, jv_str after,
                         key_range *r)
{
    memset(r, 0, sizeof(*r));
    jv_buf_init(&r->hi);
    size_t n = prefix.n;
    while (n > 0 && (uint8_t)prefix.p[n - 1] == 0xff)
        n--;
    if (n > 0) {
        if (jv_buf_append(&r->hi, prefix.p, n))
            return jv__fail(st, JV_ENOMEM, "query: out of memory");
        r->hi.data[n - 1]++;
        r->has_hi = true;
    }
    if (after.n > 0 && jv_str_cmp(after, prefix) >= 0) {
        r->lo = after;
        r->strict = true;
        jv_str hi = {(const char *)r->hi.data, r->hi.len};
        if (r->has_hi && jv_str_cmp(after, hi) >= 0)
            r->empty = true;
    } else {
        r->lo = prefix;
    }
    return JV_OK;
}

static void range_bind(sqlite3_stmt *s, const key_range *r)
{
    jv__bind_str(s, 1, r->lo);
    if (r->has_hi)
        sqlite3_bind_text(s, 2, (const char *)r->hi.data, (int)r->hi.len,
                          SQLITE_STATIC);
    else
        sqlite3_bind_zeroblob(s, 2, 0);
}

static int64_t limit_of(size_t limit)
{
    return limit == 0 || limit > INT64_MAX ? -1 : (int64_t)limit;
}

/* Common tail of a scan: SQLite's code to jv_err, unless a callback or a
 * row already failed. */
static jv_err scan_end(jv_store *st, sqlite3_stmt *s, int rc, jv_err err,
                       const char *what)
{
    if (!err && rc != SQLITE_DONE && rc != SQLITE_ROW)
        err = jv__sqlerr(st, rc, what);
    jv__reset(s);
    return err;
}

/* -- counters ------------------------------------------------------------- */

static const char sql_counter_get[] =
    "SELECT replica, p, n FROM counter WHERE name = ?1 ORDER BY replica";
static const char sql_counter_list_ge[] =
    "SELECT name, p, n FROM counter WHERE name >= ?1 AND name < ?2 "
    "ORDER BY name, replica";
static const char sql_counter_list_gt[] =
    "SELECT name, p, n FROM counter WHERE name > ?1 AND name < ?2 "
    "ORDER BY name, replica";

jv_err jv_store_counter_get(jv_store *st, jv_str name, jv_share_cb cb,
                            void *arg)
{
    jv_err err;
    sqlite3_stmt *s = jv__stmt(st, sql_counter_get, &err);
    if (!s)
        return err;
    jv__bind_str(s, 1, name);
    int rc;
    size_t rows = 0;
    err = JV_OK;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        jv_counter_share sh;
        if ((err = jv__col_id(st, s, 0, &sh.replica)))
            break;
        sh.p = jv__col_u64(s, 1);
        sh.n = jv__col_u64(s, 2);
        rows++;
        if ((err = cb(arg, &sh)))
            break;
    }
    err = scan_end(st, s, rc, err, "read counter");
    if (!err && rows == 0)
        err = jv__fail(st, JV_ENOTFOUND, "no such counter");
    return err;
}

jv_err jv_store_counter_list(jv_store *st, jv_str prefix, jv_str after,
                             size_t limit, jv_counter_cb cb, void *arg)
{
    key_range r;
    jv_buf name;
    jv_counter_row row = {{NULL, 0}, {{0, 0}, {0, 0}}};
    bool have = false;
    size_t emitted = 0;
    int rc = SQLITE_DONE;
    sqlite3_stmt *s = NULL;
    jv_err err;
    jv_buf_init(&name);
    if ((err = range_init(st, prefix, after, &r)) || r.empty)
        goto out;
    if (!(s = jv__stmt(st, r.strict ? sql_counter_list_gt : sql_counter_list_ge,
                       &err)))
        goto out;
    range_bind(s, &r);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        jv_str n = jv__col_str(s, 0);
        if (have && !jv_str_eq(n, row.name)) {
            if ((err = cb(arg, &row)))
                break;
            have = false;
            if (limit && ++emitted == limit)
                break;
        }
        if (!have) {
            jv_buf_reset(&name);
            if (jv_buf_append(&name, n.p, n.n)) {
                err = jv__fail(st, JV_ENOMEM, "query: out of memory");
                break;
            }
            row.name.p = (const char *)name.data;
            row.name.n = n.n;
            memset(&row.total, 0, sizeof(row.total));
            have = true;
        }
        jv_count_add(&row.total, jv__col_u64(s, 1), jv__col_u64(s, 2));
    }
    if (!err && rc == SQLITE_DONE && have)
        err = cb(arg, &row);
    err = scan_end(st, s, rc, err, "list counters");
out:
    jv_buf_fini(&r.hi);
    jv_buf_fini(&name);
    return err;
}

/* -- audit ---------------------------------------------------------------- */

#define AUDIT_SELECT \
    "SELECT origin, seq, time_ms, actor, action, target, detail FROM audit "
/* Ascending: rows after the bound (?1, ?2, ?3) and before time ?4. */
#define AUDIT_ASC(filter)                                                 \
    AUDIT_SELECT "WHERE " filter "(time_ms, origin, seq) > (?1, ?2, ?3) " \
                 "AND time_ms < ?4 ORDER BY time_ms, origin, seq LIMIT ?7"
/* Descending: rows before the bound (?1, ?2, ?3), at or after time ?4. */
#define AUDIT_DESC(filter)                                                \
    AUDIT_SELECT "WHERE " filter "(time_ms, origin, seq) < (?1, ?2, ?3) " \
                 "AND time_ms >= ?4 "                                     \
                 "ORDER BY time_ms DESC, origin DESC, seq DESC LIMIT ?7"
#define F_ACTOR  "actor = ?5 AND "
#define F_ACTION "action = ?6 AND "

/* [descending][actor given][action given] */
static const char *const sql_audit_q[2][2][2] = {
    {{AUDIT_ASC(""), AUDIT_ASC(F_ACTION)},
     {AUDIT_ASC(F_ACTOR), AUDIT_ASC(F_ACTOR F_ACTION)}},
    {{AUDIT_DESC(""), AUDIT_DESC(F_ACTION)},
     {AUDIT_DESC(F_ACTOR), AUDIT_DESC(F_ACTOR F_ACTION)}},
};
static const char sql_audit_scan[] =
    AUDIT_SELECT "ORDER BY time_ms, origin, seq";

static jv_err audit_rows(jv_store *st, sqlite3_stmt *s, jv_audit_cb cb,
                         void *arg)
{
    int rc;
    jv_err err = JV_OK;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        jv_audit_row r;
        if ((err = jv__col_id(st, s, 0, &r.id.id)))
            break;
        r.id.n = jv__col_u64(s, 1);
        r.time_ms = jv__col_u64(s, 2);
        r.actor = jv__col_str(s, 3);
        r.action = jv__col_str(s, 4);
        r.target = jv__col_str(s, 5);
        r.detail = jv__col_str(s, 6);
        if ((err = cb(arg, &r)))
            break;
    }
    return scan_end(st, s, rc, err, "read audit");
}

/* A row-value bound (t, origin, seq); origin empty and seq -1 stand for
 * "just before time t". */
typedef struct {
    uint64_t t;
    const jv_id *origin;
    uint64_t seq;
} audit_bound;

static void bind_bound(sqlite3_stmt *s, const audit_bound *b)
{
    jv__bind_u64(s, 1, b->t);
    if (b->origin) {
        jv__bind_id(s, 2, b->origin);
        jv__bind_u64(s, 3, b->seq);
    } else {
        sqlite3_bind_zeroblob(s, 2, 0);
        sqlite3_bind_int64(s, 3, -1);
    }
}

/* One scan of the table between the bound and time `t_end` (ascending:
 * rows after the bound, before t_end; descending: rows before the bound,
 * at or after t_end). *rows counts what was handed to cb. */
typedef struct {
    jv_audit_cb cb;
    void *arg;
    size_t rows;
} audit_counter;

static jv_err count_row(void *arg, const jv_audit_row *r)
{
    audit_counter *c = arg;
    c->rows++;
    return c->cb(c->arg, r);
}

static jv_err audit_scan_range(jv_store *st, const jv_audit_query *q,
                               const audit_bound *b, uint64_t t_end,
                               size_t limit, audit_counter *c)
{
    jv_err err;
    sqlite3_stmt *s = jv__stmt(
        st, sql_audit_q[q->newest_first][q->actor.n > 0][q->action.n > 0],
        &err);
    if (!s)
        return err;
    bind_bound(s, b);
    jv__bind_u64(s, 4, t_end);
    if (q->actor.n)
        jv__bind_str(s, 5, q->actor);
    if (q->action.n)
        jv__bind_str(s, 6, q->action);
    sqlite3_bind_int64(s, 7, limit_of(limit));
    return audit_rows(st, s, count_row, c);
}

static const char sql_audit_minutes[2][160] = {
    "SELECT minute FROM audit_minute WHERE field = ?1 AND value = ?2 "
    "AND minute BETWEEN ?3 AND ?4 ORDER BY minute",
    "SELECT minute FROM audit_minute WHERE field = ?1 AND value = ?2 "
    "AND minute BETWEEN ?3 AND ?4 ORDER BY minute DESC",
};

/* A filtered query walks the minutes in which the actor (or the action)
 * occurs, in the query's order, and scans the table within each. */
static jv_err audit_by_minutes(jv_store *st, const jv_audit_query *q,
                               const audit_bound *b, uint64_t since,
                               uint64_t until, audit_counter *c)
{
    jv_err err;
    const uint64_t M = JV_AUDIT_MINUTE_MS;
    bool desc = q->newest_first;
    sqlite3_stmt *ms = jv__stmt(st, sql_audit_minutes[desc], &err);
    if (!ms)
        return err;
    uint64_t lo = (desc ? since : b->t) / M;
    uint64_t hi = (desc ? b->t : until - 1) / M;
    sqlite3_bind_int(ms, 1, q->actor.n ? 0 : 1);
    jv__bind_str(ms, 2, q->actor.n ? q->actor : q->action);
    jv__bind_u64(ms, 3, lo);
    jv__bind_u64(ms, 4, hi);
    int rc;
    err = JV_OK;
    while ((rc = sqlite3_step(ms)) == SQLITE_ROW) {
        uint64_t w0 = jv__col_u64(ms, 0) * M, w1 = w0 + M;
        size_t left = 0;
        if (q->limit) {
            if (c->rows >= q->limit)
                break;
            left = q->limit - c->rows;
        }
        /* The window's edge or the query's bound, whichever is tighter. */
        audit_bound wb = {desc ? w1 : w0, NULL, 0};
        const audit_bound *use =
            desc ? (b->t < w1 ? b : &wb) : (b->t >= w0 ? b : &wb);
        uint64_t end =
            desc ? (since > w0 ? since : w0) : (until < w1 ? until : w1);
        if ((err = audit_scan_range(st, q, use, end, left, c)))
            break;
    }
    return scan_end(st, ms, rc, err, "read audit minutes");
}

jv_err jv_store_audit_query(jv_store *st, const jv_audit_query *q,
                            jv_audit_cb cb, void *arg)
{
    uint64_t since = q->since_ms > INT64_MAX ? INT64_MAX : q->since_ms;
    uint64_t until =
        q->until_ms == 0 || q->until_ms > INT64_MAX ? INT64_MAX : q->until_ms;
    audit_counter c = {cb, arg, 0};
    if (since >= until)
        return JV_OK;
    /* One row-value bound per direction: a row (t, origin, seq) with
     * t >= since is exactly one greater than (since, x'', -1), since every
     * origin is a longer blob than x''; likewise t < until is "less than
     * (until, x'', -1)". The cursor replaces it when it is tighter. */
    audit_bound b = {q->newest_first ? until : since, NULL, 0};
    bool use_cursor =
        q->has_cursor && (q->newest_first ? q->cursor_time_ms < until
                                          : q->cursor_time_ms >= since);
    if (use_cursor)
        b = (audit_bound){q->cursor_time_ms, &q->cursor_id.id, q->cursor_id.n};
    if (q->actor.n || q->action.n)
        return audit_by_minutes(st, q, &b, since, until, &c);
    return audit_scan_range(st, q, &b, q->newest_first ? since : until,
                            q->limit, &c);
}

jv_err jv_store_audit_scan(jv_store *st, jv_audit_cb cb, void *arg)
{
    jv_err err;
    sqlite3_stmt *s = jv__stmt(st, sql_audit_scan, &err);
    if (!s)
        return err;
    return audit_rows(st, s, cb, arg);
}

/* -- configuration -------------------------------------------------------- */

static const char sql_config_get[] =
    "SELECT key, value, stamp, replica FROM config WHERE key = ?1";
static const char sql_config_list_ge[] =
    "SELECT key, value, stamp, replica FROM config "
    "WHERE key >= ?1 AND key < ?2 ORDER BY key LIMIT ?3";
static const char sql_config_list_gt[] =
    "SELECT key, value, stamp, replica FROM config "
    "WHERE key > ?1 AND key < ?2 ORDER BY key LIMIT ?3";

static jv_err config_rows(jv_store *st, sqlite3_stmt *s, jv_config_cb cb,
                          void *arg, size_t *rows)
{
    int rc;
    jv_err err = JV_OK;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        jv_config_row r;
        r.key = jv__col_str(s, 0);
        r.value = jv__col_str(s, 1);
        r.stamp = jv__col_u64(s, 2);
        if ((err = jv__col_id(st, s, 3, &r.replica)))
            break;
        (*rows)++;
        if ((err = cb(arg, &r)))
            break;
    }
    return scan_end(st, s, rc, err, "read config");
}

jv_err jv_store_config_get(jv_store *st, jv_str key, jv_config_cb cb, void *arg)
{
    jv_err err;
    size_t rows = 0;
    sqlite3_stmt *s = jv__stmt(st, sql_config_get, &err);
    if (!s)
        return err;
    jv__bind_str(s, 1, key);
    if ((err = config_rows(st, s, cb, arg, &rows)))
        return err;
    return rows ? JV_OK : jv__fail(st, JV_ENOTFOUND, "no such config key");
}

jv_err jv_store_config_list(jv_store *st, jv_str prefix, jv_str after,
                            size_t limit, jv_config_cb cb, void *arg)
{
    key_range r;
    size_t rows = 0;
    sqlite3_stmt *s = NULL;
    jv_err err;
    if ((err = range_init(st, prefix, after, &r)) || r.empty)
        goto out;
    if (!(s = jv__stmt(st, r.strict ? sql_config_list_gt : sql_config_list_ge,
                       &err)))
        goto out;
    range_bind(s, &r);
    sqlite3_bind_int64(s, 3, limit_of(limit));
    err = config_rows(st, s, cb, arg, &rows);
out:
    jv_buf_fini(&r.hi);
    return err;
}

/* -- archive -------------------------------------------------------------- */

/* The rows shown for keys (archive_rows) do not depend on the order of a
 * key's values, so those queries sort by key alone: the index gives that
 * order, where (replica, n) within a key costs a sort per key (about three
 * times the time of a listing; entries are filed by dot, migration 7).
 * The values themselves are listed in (key, replica, n) order. */
#define ARCHIVE_SELECT "SELECT key, replica, n, stamp, value FROM archive "
static const char sql_archive_get[] = ARCHIVE_SELECT "WHERE key = ?1";
static const char sql_archive_list_ge[] =
    ARCHIVE_SELECT "WHERE key >= ?1 AND key < ?2 ORDER BY key";
static const char sql_archive_list_gt[] =
    ARCHIVE_SELECT "WHERE key > ?1 AND key < ?2 ORDER BY key";
static const char sql_archive_key_values[] =
    ARCHIVE_SELECT "WHERE key = ?1 ORDER BY replica, n";
static const char sql_archive_values[] =
    ARCHIVE_SELECT "ORDER BY key, replica, n";
static const char sql_ctx_scan[] = "SELECT replica, seq FROM ctx "
                                   "ORDER BY replica";
static const char sql_cloud_scan[] = "SELECT replica, n FROM ctx_cloud "
                                     "ORDER BY replica, n";

/* Folds the rows of one key into the row shown for it: the value with the
 * greatest (stamp, dot). Key and value are copied, since the statement
 * moves on before the row is complete. */
typedef struct {
    jv_buf key, value;
    jv_archive_row row;
    bool have;
} archive_acc;

static jv_err archive_rows(jv_store *st, sqlite3_stmt *s, size_t limit,
                           jv_archive_cb cb, void *arg, size_t *keys)
{
    archive_acc a;
    size_t emitted = 0;
    int rc;
    jv_err err = JV_OK;
    memset(&a, 0, sizeof(a));
    jv_buf_init(&a.key);
    jv_buf_init(&a.value);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        jv_str k = jv__col_str(s, 0);
        jv_dot d;
        if ((err = jv__col_id(st, s, 1, &d.id)))
            break;
        d.n = jv__col_u64(s, 2);
        uint64_t stamp = jv__col_u64(s, 3);
        if (a.have && !jv_str_eq(k, a.row.key)) {
            if ((err = cb(arg, &a.row)))
                break;
            a.have = false;
            if (limit && ++emitted == limit)
                break;
        }
        bool better = !a.have || stamp > a.row.stamp ||
                      (stamp == a.row.stamp && jv_dot_cmp(&d, &a.row.dot) > 0);
        if (!a.have) {
            jv_buf_reset(&a.key);
            if (jv_buf_append(&a.key, k.p, k.n)) {
                err = jv__fail(st, JV_ENOMEM, "query: out of memory");
                break;
            }
            a.row.key.p = (const char *)a.key.data;
            a.row.key.n = k.n;
            a.row.nvalues = 0;
            a.have = true;
        }
        a.row.nvalues++;
        if (better) {
            jv_str v = jv__col_str(s, 4);
            jv_buf_reset(&a.value);
            if (jv_buf_append(&a.value, v.p, v.n)) {
                err = jv__fail(st, JV_ENOMEM, "query: out of memory");
                break;
            }
            a.row.value.p = (const char *)a.value.data;
            a.row.value.n = v.n;
            a.row.stamp = stamp;
            a.row.dot = d;
        }
    }
    if (!err && rc == SQLITE_DONE && a.have) {
        emitted++;
        err = cb(arg, &a.row);
    }
    err = scan_end(st, s, rc, err, "read archive");
    if (keys)
        *keys = emitted;
    jv_buf_fini(&a.key);
    jv_buf_fini(&a.value);
    return err;
}

jv_err jv_store_archive_get(jv_store *st, jv_str key, jv_archive_cb cb,
                            void *arg)
{
    jv_err err;
    size_t keys = 0;
    sqlite3_stmt *s = jv__stmt(st, sql_archive_get, &err);
    if (!s)
        return err;
    jv__bind_str(s, 1, key);
    if ((err = archive_rows(st, s, 0, cb, arg, &keys)))
        return err;
    return keys ? JV_OK : jv__fail(st, JV_ENOTFOUND, "no such archive key");
}

jv_err jv_store_archive_list(jv_store *st, jv_str prefix, jv_str after,
                             size_t limit, jv_archive_cb cb, void *arg)
{
    key_range r;
    sqlite3_stmt *s = NULL;
    jv_err err;
    if ((err = range_init(st, prefix, after, &r)) || r.empty)
        goto out;
    if (!(s = jv__stmt(st, r.strict ? sql_archive_list_gt : sql_archive_list_ge,
                       &err)))
        goto out;
    range_bind(s, &r);
    err = archive_rows(st, s, limit, cb, arg, NULL);
out:
    jv_buf_fini(&r.hi);
    return err;
}

static jv_err archive_value_rows(jv_store *st, sqlite3_stmt *s,
                                 jv_archive_value_cb cb, void *arg);

jv_err jv_store_archive_values(jv_store *st, jv_archive_value_cb cb, void *arg)
{
    jv_err err;
    sqlite3_stmt *s = jv__stmt(st, sql_archive_values, &err);
    if (!s)
        return err;
    return archive_value_rows(st, s, cb, arg);
}

jv_err jv_store_archive_key_values(jv_store *st, jv_str key,
                                   jv_archive_value_cb cb, void *arg)
{
    jv_err err;
    sqlite3_stmt *s = jv__stmt(st, sql_archive_key_values, &err);
    if (!s)
        return err;
    jv__bind_str(s, 1, key);
    return archive_value_rows(st, s, cb, arg);
}

static jv_err archive_value_rows(jv_store *st, sqlite3_stmt *s,
                                 jv_archive_value_cb cb, void *arg)
{
    jv_err err;
    int rc;
    err = JV_OK;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        jv_archive_value v;
        v.key = jv__col_str(s, 0);
        if ((err = jv__col_id(st, s, 1, &v.dot.id)))
            break;
        v.dot.n = jv__col_u64(s, 2);
        v.stamp = jv__col_u64(s, 3);
        v.value = jv__col_str(s, 4);
        if ((err = cb(arg, &v)))
            break;
    }
    return scan_end(st, s, rc, err, "read archive");
}

/* Reads (id, seq) rows, sorted by id, into a fresh vector that replaces
 * *out only on success. */
static jv_err read_vector(jv_store *st, const char *sql, jv_vv *out)
{
    jv_vv tmp;
    jv_err err;
    int rc;
    sqlite3_stmt *s = jv__stmt(st, sql, &err);
    if (!s)
        return err;
    jv_vv_init(&tmp);
    err = JV_OK;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        jv_id id;
        uint64_t seq = jv__col_u64(s, 1);
        if ((err = jv__col_id(st, s, 0, &id)))
            break;
        if (seq && (err = jv_vv_set(&tmp, &id, seq))) {
            err = jv__fail(st, err, "version vector: %s", jv_strerror(err));
            break;
        }
    }
    if ((err = scan_end(st, s, rc, err, "read version vector"))) {
        jv_vv_fini(&tmp);
        return err;
    }
    jv_vv_fini(out);
    *out = tmp;
    return JV_OK;
}

jv_err jv_store_archive_context(jv_store *st, jv_vv *vv, jv_dot_cb cb,
                                void *arg)
{
    jv_err err;
    if ((err = read_vector(st, sql_ctx_scan, vv)) || !cb)
        return err;
    sqlite3_stmt *s = jv__stmt(st, sql_cloud_scan, &err);
    if (!s)
        return err;
    int rc;
    err = JV_OK;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        jv_dot d;
        if ((err = jv__col_id(st, s, 0, &d.id)))
            break;
        d.n = jv__col_u64(s, 1);
        if ((err = cb(arg, &d)))
            break;
    }
    return scan_end(st, s, rc, err, "read causal context");
}

/* -- log and version vector ----------------------------------------------- */

static const char sql_vv_scan[] = "SELECT origin, seq FROM vv ORDER BY origin";
static const char sql_vv_head[] = "SELECT seq, hash FROM vv WHERE origin = ?1";
#define LOG_SELECT \
    "SELECT origin, first_seq, last_seq, hlc, hash, sig, body FROM batch "
static const char sql_log_after[] =
    LOG_SELECT "WHERE origin = ?1 AND last_seq > ?2 ORDER BY last_seq LIMIT ?3";
static const char sql_log_scan[] = LOG_SELECT "ORDER BY origin, last_seq";
static const char sql_held_list[] =
    "SELECT origin, first_seq, last_seq, reason, len, hlc FROM held "
    "ORDER BY origin, first_seq, rowid";

jv_err jv_store_vv(jv_store *st, jv_vv *out)
{
    return read_vector(st, sql_vv_scan, out);
}

jv_err jv_store_origin_head(jv_store *st, const jv_id *origin, uint64_t *seq,
                            uint8_t hash[JV_HASH_LEN])
{
    jv_err err;
    sqlite3_stmt *s = jv__stmt(st, sql_vv_head, &err);
    if (!s)
        return err;
    jv__bind_id(s, 1, origin);
    int rc = sqlite3_step(s);
    *seq = 0;
    memset(hash, 0, JV_HASH_LEN);
    err = JV_OK;
    if (rc == SQLITE_ROW) {
        const void *h = sqlite3_column_blob(s, 1);
        if (!h || sqlite3_column_bytes(s, 1) != JV_HASH_LEN) {
            err = jv__fail(st, JV_ECORRUPT, "version vector: bad hash");
        } else {
            *seq = jv__col_u64(s, 0);
            memcpy(hash, h, JV_HASH_LEN);
        }
    }
    return scan_end(st, s, rc, err, "read version vector");
}

/* One log row, borrowing from the statement. */
static jv_err log_row(jv_store *st, sqlite3_stmt *s, jv_log_row *r)
{
    jv_err err;
    if ((err = jv__col_id(st, s, 0, &r->origin)))
        return err;
    r->first_seq = jv__col_u64(s, 1);
    r->last_seq = jv__col_u64(s, 2);
    r->hlc = jv__col_u64(s, 3);
    r->hash = sqlite3_column_blob(s, 4);
    r->sig = sqlite3_column_blob(s, 5);
    if (!r->hash || sqlite3_column_bytes(s, 4) != JV_HASH_LEN || !r->sig ||
        sqlite3_column_bytes(s, 5) != JV_SIG_LEN)
        return jv__fail(st, JV_ECORRUPT, "log: bad hash or signature size");
    r->body = sqlite3_column_blob(s, 6);
    r->len = (size_t)sqlite3_column_bytes(s, 6);
    if (!r->body)
        r->body = (const uint8_t *)"";
    return JV_OK;
}

jv_err jv_store_log_after(jv_store *st, const jv_id *origin, uint64_t after_seq,
                          size_t max_batches, size_t max_bytes, jv_log_cb cb,
                          void *arg)
{
    jv_err err;
    sqlite3_stmt *s = jv__stmt(st, sql_log_after, &err);
    if (!s)
        return err;
    jv__bind_id(s, 1, origin);
    jv__bind_u64(s, 2, after_seq);
    sqlite3_bind_int64(s, 3, limit_of(max_batches));
    size_t given = 0, bytes = 0;
    int rc;
    err = JV_OK;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        jv_log_row r;
        if ((err = log_row(st, s, &r)))
            break;
        if (given && max_bytes &&
            (r.len > max_bytes || bytes > max_bytes - r.len))
            break;
        bytes += r.len;
        given++;
        if ((err = cb(arg, &r)))
            break;
    }
    return scan_end(st, s, rc, err, "read log");
}

jv_err jv_store_log_scan(jv_store *st, jv_log_cb cb, void *arg)
{
    jv_err err;
    sqlite3_stmt *s = jv__stmt(st, sql_log_scan, &err);
    if (!s)
        return err;
    int rc;
    err = JV_OK;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        jv_log_row r;
        if ((err = log_row(st, s, &r)) || (err = cb(arg, &r)))
            break;
    }
    return scan_end(st, s, rc, err, "read log");
}

jv_err jv_store_held_list(jv_store *st, jv_held_cb cb, void *arg)
{
    jv_err err;
    sqlite3_stmt *s = jv__stmt(st, sql_held_list, &err);
    if (!s)
        return err;
    int rc;
    err = JV_OK;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        jv_held_row r;
        if ((err = jv__col_id(st, s, 0, &r.origin)))
            break;
        r.first_seq = jv__col_u64(s, 1);
        r.last_seq = jv__col_u64(s, 2);
        jv_str reason = jv__col_str(s, 3);
        r.reason = jv_str_eq(reason, jv_str_c("gap")) ? JV_EGAP : JV_EUNTRUSTED;
        r.len = (size_t)jv__col_u64(s, 4);
        r.hlc = jv__col_u64(s, 5);
        /* Stored as 'gap' (apply.c): it waits for its stamp. */
        if (r.reason == JV_EGAP && jv__beyond_skew(st, r.hlc))
            r.reason = JV_ESKEW;
        if ((err = cb(arg, &r)))
            break;
    }
    return scan_end(st, s, rc, err, "read held batches");
}

static jv_err count_held(void *arg, const jv_held_row *h)
{
    jv_held_counts *c = arg;
    if (h->reason == JV_EGAP)
        c->gap++;
    else if (h->reason == JV_EUNTRUSTED)
        c->untrusted++;
    else
        c->clock_skew++;
    return JV_OK;
}

jv_err jv_store_held_counts(jv_store *st, jv_held_counts *out)
{
    memset(out, 0, sizeof(*out));
    return jv_store_held_list(st, count_held, out);
}

/* -- replicas and trust --------------------------------------------------- */

static const char sql_replica_list[] =
    "SELECT r.id, coalesce(t.name, ''), coalesce(v.seq, 0), r.first_seen_ms "
    "FROM replica r LEFT JOIN trust t ON t.node = r.id "
    "LEFT JOIN vv v ON v.origin = r.id ORDER BY r.id";
static const char sql_trust_list[] =
    "SELECT node, trusted, stamp, set_by, name FROM trust ORDER BY node";
static const char sql_trusted[] = "SELECT trusted FROM trust WHERE node = ?1";

jv_err jv_store_replica_list(jv_store *st, jv_replica_cb cb, void *arg)
{
    jv_err err;
    sqlite3_stmt *s = jv__stmt(st, sql_replica_list, &err);
    if (!s)
        return err;
    int rc;
    err = JV_OK;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        jv_replica_row r;
        if ((err = jv__col_id(st, s, 0, &r.id)))
            break;
        r.name = jv__col_str(s, 1);
        r.seq = jv__col_u64(s, 2);
        r.first_seen_ms = jv__col_u64(s, 3);
        if ((err = cb(arg, &r)))
            break;
    }
    return scan_end(st, s, rc, err, "read replicas");
}

jv_err jv_store_trust_list(jv_store *st, jv_trust_cb cb, void *arg)
{
    jv_err err;
    sqlite3_stmt *s = jv__stmt(st, sql_trust_list, &err);
    if (!s)
        return err;
    int rc;
    err = JV_OK;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        jv_trust_row r;
        if ((err = jv__col_id(st, s, 0, &r.node)) ||
            (err = jv__col_id(st, s, 3, &r.set_by)))
            break;
        r.trusted = sqlite3_column_int(s, 1) != 0;
        r.stamp = jv__col_u64(s, 2);
        r.name = jv__col_str(s, 4);
        if ((err = cb(arg, &r)))
            break;
    }
    return scan_end(st, s, rc, err, "read trust list");
}

static const char sql_succ_new[] = "SELECT new FROM succession WHERE old = ?1";
static const char sql_succ_old[] = "SELECT old FROM succession WHERE new = ?1";

/* One id looked up by another; JV_ENOTFOUND quietly when there is none. */
static jv_err succ_lookup(jv_store *st, const char *sql, const jv_id *in,
                          jv_id *out)
{
    jv_err err;
    sqlite3_stmt *s = jv__stmt(st, sql, &err);
    if (!s)
        return err;
    jv__bind_id(s, 1, in);
    int rc = sqlite3_step(s);
    err = JV_OK;
    if (rc == SQLITE_ROW)
        err = jv__col_id(st, s, 0, out);
    else if (rc == SQLITE_DONE)
        err = JV_ENOTFOUND;
    else
        err = jv__sqlerr(st, rc, "read successions");
    jv__reset(s);
    return err;
}

jv_err jv_store_successor(jv_store *st, const jv_id *old, jv_id *out)
{
    return succ_lookup(st, sql_succ_new, old, out);
}

jv_err jv_store_predecessor(jv_store *st, const jv_id *id, jv_id *out)
{
    return succ_lookup(st, sql_succ_old, id, out);
}

/* The trust list's word on id: *known false when it has no entry. */
static jv_err trust_entry(jv_store *st, const jv_id *id, bool *known, bool *out)
{
    jv_err err;
    sqlite3_stmt *s = jv__stmt(st, sql_trusted, &err);
    if (!s)
        return err;
    jv__bind_id(s, 1, id);
    int rc = sqlite3_step(s);
    err = JV_OK;
    *known = rc == SQLITE_ROW;
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int(s, 0) != 0;
    return scan_end(st, s, rc, err, "read trust list");
}

/* Chains of successions are short (one link per restore); the bound only
 * stops a loop in a damaged table. */
#define SUCC_MAX_DEPTH 64

/* Whether id is one of this node's earlier origins (store.h). */
static jv_err own_origin(jv_store *st, const jv_id *id, bool *out)
{
    uint8_t ids[JV_OWN_ORIGINS_MAX * JV_ID_LEN];
    size_t len = 0;
    jv_err err =
        jv_store_meta_get(st, JV_META_OWN_ORIGINS, ids, sizeof(ids), &len);
    *out = false;
    if (err == JV_ENOTFOUND)
        return JV_OK;
    if (err)
        return err;
    for (size_t i = 0; i + JV_ID_LEN <= len && i < sizeof(ids); i += JV_ID_LEN)
        if (memcmp(ids + i, id->b, JV_ID_LEN) == 0)
            *out = true;
    return JV_OK;
}

jv_err jv_store_is_trusted(jv_store *st, const jv_id *id, bool *out)
{
    jv_id self, cur, prev;
    bool known = false;
    jv_err err;
    if ((err = own_origin(st, id, out)) || *out)
        return err;
    if (jv__self(st, &self) == JV_OK) {
        /* This node, under its current origin or any earlier one. */
        cur = self;
        for (int i = 0; i <= SUCC_MAX_DEPTH; i++) {
            if (jv_id_eq(&cur, id)) {
                *out = true;
                return JV_OK;
            }
            if ((err = jv_store_predecessor(st, &cur, &prev)) == JV_ENOTFOUND)
                break;
            if (err)
                return err;
            cur = prev;
        }
    }
    /* An entry of its own decides; else an origin that carries on for
     * another stands as that one does (restored nodes, docs/protocol.md). */
    cur = *id;
    for (int i = 0; i <= SUCC_MAX_DEPTH; i++) {
        if ((err = trust_entry(st, &cur, &known, out)))
            return err;
        if (known)
            return JV_OK;
        if (i > 0 && ((err = own_origin(st, &cur, out)) || *out))
            return err;
        if ((err = jv_store_predecessor(st, &cur, &prev)) == JV_ENOTFOUND)
            return JV_OK;
        if (err)
            return err;
        cur = prev;
    }
    return JV_OK;
}

/* -- cluster API keys ----------------------------------------------------- */

static const char sql_ckey_list[] =
    "SELECT k.id, k.name, k.role, k.hash, k.created_ms, k.created_by, "
    "k.origin, r.id IS NOT NULL, coalesce(r.revoked_ms, 0), "
    "coalesce(r.revoked_by, '') FROM cluster_key k "
    "LEFT JOIN cluster_key_revoked r ON r.id = k.id "
    "ORDER BY k.created_ms, k.id";
static const char sql_ckey_known[] =
    "SELECT EXISTS (SELECT 1 FROM cluster_key WHERE id = ?1) OR "
    "EXISTS (SELECT 1 FROM cluster_key_revoked WHERE id = ?1)";

jv_err jv_store_ckey_list(jv_store *st, jv_ckey_cb cb, void *arg)
{
    jv_err err;
    sqlite3_stmt *s = jv__stmt(st, sql_ckey_list, &err);
    if (!s)
        return err;
    int rc;
    err = JV_OK;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        jv_ckey_row k;
        k.id = jv__col_str(s, 0);
        k.name = jv__col_str(s, 1);
        k.role = jv__col_str(s, 2);
        k.hash = sqlite3_column_blob(s, 3);
        if (!k.hash || sqlite3_column_bytes(s, 3) != JV_OP_KEY_HASH_LEN) {
            err = jv__fail(st, JV_ECORRUPT, "cluster key: hash of bad size");
            break;
        }
        k.created_ms = jv__col_u64(s, 4);
        k.created_by = jv__col_str(s, 5);
        if ((err = jv__col_id(st, s, 6, &k.origin)))
            break;
        k.revoked = sqlite3_column_int(s, 7) != 0;
        k.revoked_ms = jv__col_u64(s, 8);
        k.revoked_by = jv__col_str(s, 9);
        if ((err = cb(arg, &k)))
            break;
    }
    return scan_end(st, s, rc, err, "read cluster keys");
}

jv_err jv_store_ckey_known(jv_store *st, jv_str id, bool *exists)
{
    jv_err err;
    *exists = false;
    sqlite3_stmt *s = jv__stmt(st, sql_ckey_known, &err);
    if (!s)
        return err;
    jv__bind_str(s, 1, id);
    int rc = sqlite3_step(s);
    err = JV_OK;
    if (rc == SQLITE_ROW)
        *exists = sqlite3_column_int(s, 0) != 0;
    return scan_end(st, s, rc, err, "read cluster keys");
}
