#include "changes.h"

#include "store_int.h"

static const char sql_bounds[] =
    "SELECT coalesce((SELECT max(rowid) FROM batch), 0),"
    " coalesce((SELECT value FROM meta WHERE key = 'batch_deleted_max'), 0)";
static const char sql_from[] =
    "SELECT rowid, origin, first_seq, hlc, body FROM batch"
    " WHERE rowid >= ?1 ORDER BY rowid LIMIT ?2";
static const char sql_origin_before[] =
    "SELECT rowid, origin, first_seq, hlc, body FROM batch"
    " WHERE origin = ?1 AND last_seq < ?2 ORDER BY last_seq DESC LIMIT ?3";
static const char sql_begin[] = "BEGIN";
static const char sql_end[] = "COMMIT";

jv_err jv_changes_bounds(jv_store *st, int64_t *newest, int64_t *deleted_max)
{
    jv_err err;
    sqlite3_stmt *s = jv__stmt(st, sql_bounds, &err);
    if (!s)
        return err;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *newest = sqlite3_column_int64(s, 0);
        *deleted_max = sqlite3_column_int64(s, 1);
        if (*newest < *deleted_max)
            *newest = *deleted_max;
        err = JV_OK;
    } else {
        err = jv__sqlerr(st, rc, "read log bounds");
    }
    jv__reset(s);
    return err;
}

static jv_err scan(jv_store *st, sqlite3_stmt *s, jv_change_cb cb, void *arg)
{
    jv_err err = JV_OK;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        jv_change_row r;
        r.rowid = sqlite3_column_int64(s, 0);
        if ((err = jv__col_id(st, s, 1, &r.origin)))
            break;
        r.first_seq = jv__col_u64(s, 2);
        r.hlc = jv__col_u64(s, 3);
        r.body = sqlite3_column_blob(s, 4);
        r.len = (size_t)sqlite3_column_bytes(s, 4);
        if (!r.body)
            r.body = (const uint8_t *)"";
        if ((err = cb(arg, &r)))
            break;
    }
    if (!err && rc != SQLITE_DONE && rc != SQLITE_ROW)
        err = jv__sqlerr(st, rc, "read log");
    jv__reset(s);
    return err == JV_ECLOSED ? JV_OK : err;
}

jv_err jv_changes_from(jv_store *st, int64_t from, size_t limit,
                       jv_change_cb cb, void *arg)
{
    jv_err err;
    sqlite3_stmt *s = jv__stmt(st, sql_from, &err);
    if (!s)
        return err;
    sqlite3_bind_int64(s, 1, from);
    sqlite3_bind_int64(s, 2, limit > INT64_MAX ? INT64_MAX : (int64_t)limit);
    return scan(st, s, cb, arg);
}

jv_err jv_changes_origin_before(jv_store *st, const jv_id *origin,
                                uint64_t before_seq, size_t limit,
                                jv_change_cb cb, void *arg)
{
    jv_err err;
    sqlite3_stmt *s = jv__stmt(st, sql_origin_before, &err);
    if (!s)
        return err;
    jv__bind_id(s, 1, origin);
    jv__bind_u64(s, 2, before_seq);
    sqlite3_bind_int64(s, 3, limit > INT64_MAX ? INT64_MAX : (int64_t)limit);
    return scan(st, s, cb, arg);
}

jv_err jv_changes_begin(jv_store *st)
{
    return jv__exec(st, sql_begin);
}

void jv_changes_end(jv_store *st)
{
    (void)jv__exec(st, sql_end);
}
