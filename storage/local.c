/*
 * local.c - API keys, sessions and peers: node-local, never replicated.
 *
 * Every write runs through jv__tx: its own transaction when called alone,
 * a savepoint when called inside jv_store_commit_local's write group, so
 * that it commits (or not) with the group's audit entries.
 */
#include "local.h"

#include <string.h>

#include "store_int.h"

static bool role_ok(jv_str role)
{
    return jv_str_eq(role, jv_str_c("admin")) ||
           jv_str_eq(role, jv_str_c("writer")) ||
           jv_str_eq(role, jv_str_c("reader"));
}

/* Runs one write statement in its own (possibly nested) transaction; a
 * constraint failure (a taken id or name) is JV_EEXIST, and a statement
 * that matched no row is JV_ENOTFOUND when need_row is set. */
static jv_err write_one(jv_store *st, sqlite3_stmt *s, const char *what,
                        bool need_row)
{
    jv__tx tx;
    jv_err err;
    if ((err = jv__tx_begin(st, &tx))) {
        jv__reset(s);
        return err;
    }
    int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) {
        err = JV_OK;
        if (need_row && sqlite3_changes(st->db) == 0)
            err = jv__fail(st, JV_ENOTFOUND, "%s: not found", what);
    } else if ((rc & 0xff) == SQLITE_CONSTRAINT) {
        err = jv__fail(st, JV_EEXIST, "%s: %s", what, sqlite3_errmsg(st->db));
    } else {
        err = jv__sqlerr(st, rc, what);
    }
    jv__reset(s);
    if (err) {
        jv__tx_rollback(st, &tx);
        return err;
    }
    return jv__tx_commit(st, &tx);
}

/* -- API keys ------------------------------------------------------------- */

#define KEY_SELECT \
    "SELECT id, name, role, hash, created_ms, revoked_ms FROM api_key "
static const char sql_key_insert[] =
    "INSERT INTO api_key(id, name, role, hash, created_ms, revoked_ms) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
static const char sql_key_revoke[] =
    "UPDATE api_key SET revoked_ms = CASE WHEN revoked_ms = 0 THEN ?2 "
    "ELSE revoked_ms END WHERE id = ?1";
static const char sql_key_sessions_revoke[] =
    "UPDATE session SET revoked_ms = ?2 WHERE key_id = ?1 AND revoked_ms = 0";
static const char sql_key_get[] = KEY_SELECT "WHERE id = ?1";
static const char sql_key_by_hash[] = KEY_SELECT "WHERE hash = ?1";
static const char sql_key_list[] = KEY_SELECT "ORDER BY created_ms, id";

jv_err jv_store_key_insert(jv_store *st, const jv_key_row *k)
{
    jv_err err;
    if (!k->id.n || !k->name.n || !k->hash || !role_ok(k->role))
        return jv__fail(st, JV_EINVAL,
                        "key: id, name, hash and a role of admin, writer "
                        "or reader are required");
    sqlite3_stmt *s = jv__stmt(st, sql_key_insert, &err);
    if (!s)
        return err;
    jv__bind_str(s, 1, k->id);
    jv__bind_str(s, 2, k->name);
    jv__bind_str(s, 3, k->role);
    sqlite3_bind_blob(s, 4, k->hash, JV_TOKEN_HASH_LEN, SQLITE_STATIC);
    jv__bind_u64(s, 5, k->created_ms);
    jv__bind_u64(s, 6, k->revoked_ms);
    return write_one(st, s, "insert key", false);
}

jv_err jv_store_key_revoke(jv_store *st, jv_str id, uint64_t now_ms)
{
    jv__tx tx;
    jv_err err;
    sqlite3_stmt *s;
    if ((err = jv__tx_begin(st, &tx)))
        return err;
    if (!(s = jv__stmt(st, sql_key_revoke, &err)))
        goto fail;
    jv__bind_str(s, 1, id);
    jv__bind_u64(s, 2, now_ms);
    if ((err = write_one(st, s, "revoke key", true)))
        goto fail;
    if (!(s = jv__stmt(st, sql_key_sessions_revoke, &err)))
        goto fail;
    jv__bind_str(s, 1, id);
    jv__bind_u64(s, 2, now_ms);
    if ((err = write_one(st, s, "revoke the key's sessions", false)))
        goto fail;
    return jv__tx_commit(st, &tx);
fail:
    jv__tx_rollback(st, &tx);
    return err;
}

static const char sql_key_last_admin[] =
    "SELECT EXISTS (SELECT 1 FROM api_key WHERE id = ?1 AND role = 'admin' "
    "AND revoked_ms = 0) AND NOT EXISTS (SELECT 1 FROM api_key WHERE id != ?1 "
    "AND role = 'admin' AND revoked_ms = 0)";

jv_err jv_store_key_last_admin(jv_store *st, jv_str id, bool *last)
{
    jv_err err;
    sqlite3_stmt *s = jv__stmt(st, sql_key_last_admin, &err);
    if (!s)
        return err;
    jv__bind_str(s, 1, id);
    int rc = sqlite3_step(s);
    *last = rc == SQLITE_ROW && sqlite3_column_int(s, 0) != 0;
    err = rc == SQLITE_ROW ? JV_OK : jv__sqlerr(st, rc, "read keys");
    jv__reset(s);
    return err;
}

static jv_err key_rows(jv_store *st, sqlite3_stmt *s, jv_key_cb cb, void *arg,
                       size_t *rows)
{
    int rc;
    jv_err err = JV_OK;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        jv_key_row k;
        k.id = jv__col_str(s, 0);
        k.name = jv__col_str(s, 1);
        k.role = jv__col_str(s, 2);
        k.hash = sqlite3_column_blob(s, 3);
        if (!k.hash || sqlite3_column_bytes(s, 3) != JV_TOKEN_HASH_LEN) {
            err = jv__fail(st, JV_ECORRUPT, "key: stored hash of bad size");
            break;
        }
        k.created_ms = jv__col_u64(s, 4);
        k.revoked_ms = jv__col_u64(s, 5);
        (*rows)++;
        if ((err = cb(arg, &k)))
            break;
    }
    if (!err && rc != SQLITE_DONE && rc != SQLITE_ROW)
        err = jv__sqlerr(st, rc, "read keys");
    jv__reset(s);
    return err;
}

jv_err jv_store_key_get(jv_store *st, jv_str id, jv_key_cb cb, void *arg)
{
    jv_err err;
    size_t rows = 0;
    sqlite3_stmt *s = jv__stmt(st, sql_key_get, &err);
    if (!s)
        return err;
    jv__bind_str(s, 1, id);
    if ((err = key_rows(st, s, cb, arg, &rows)))
        return err;
    return rows ? JV_OK : jv__fail(st, JV_ENOTFOUND, "no such key");
}

jv_err jv_store_key_by_hash(jv_store *st, const uint8_t *hash, jv_key_cb cb,
                            void *arg)
{
    jv_err err;
    size_t rows = 0;
    sqlite3_stmt *s = jv__stmt(st, sql_key_by_hash, &err);
    if (!s)
        return err;
    sqlite3_bind_blob(s, 1, hash, JV_TOKEN_HASH_LEN, SQLITE_STATIC);
    if ((err = key_rows(st, s, cb, arg, &rows)))
        return err;
    return rows ? JV_OK : jv__fail(st, JV_ENOTFOUND, "no such key");
}

jv_err jv_store_key_list(jv_store *st, jv_key_cb cb, void *arg)
{
    jv_err err;
    size_t rows = 0;
    sqlite3_stmt *s = jv__stmt(st, sql_key_list, &err);
    if (!s)
        return err;
    return key_rows(st, s, cb, arg, &rows);
}

/* -- sessions ------------------------------------------------------------- */

#define SESSION_SELECT                                              \
    "SELECT id, key_id, role, token_hash, created_ms, expires_ms, " \
    "revoked_ms FROM session "
static const char sql_session_insert[] =
    "INSERT INTO session(id, key_id, role, token_hash, created_ms, "
    "expires_ms, revoked_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
static const char sql_session_revoke[] =
    "UPDATE session SET revoked_ms = CASE WHEN revoked_ms = 0 THEN ?2 "
    "ELSE revoked_ms END WHERE id = ?1";
static const char sql_session_list[] =
    SESSION_SELECT "WHERE revoked_ms = 0 AND expires_ms > ?1 "
                   "ORDER BY created_ms, id";
static const char sql_session_by_hash[] =
    SESSION_SELECT "WHERE token_hash = ?1";
static const char sql_session_purge[] =
    "DELETE FROM session WHERE expires_ms < ?1 "
    "OR (revoked_ms != 0 AND revoked_ms < ?1)";

jv_err jv_store_session_insert(jv_store *st, const jv_session_row *se)
{
    jv_err err;
    if (!se->id.n || !se->key_id.n || !se->token_hash || !role_ok(se->role))
        return jv__fail(st, JV_EINVAL,
                        "session: id, key id, token hash and a role of "
                        "admin, writer or reader are required");
    sqlite3_stmt *s = jv__stmt(st, sql_session_insert, &err);
    if (!s)
        return err;
    jv__bind_str(s, 1, se->id);
    jv__bind_str(s, 2, se->key_id);
    jv__bind_str(s, 3, se->role);
    sqlite3_bind_blob(s, 4, se->token_hash, JV_TOKEN_HASH_LEN, SQLITE_STATIC);
    jv__bind_u64(s, 5, se->created_ms);
    jv__bind_u64(s, 6, se->expires_ms);
    jv__bind_u64(s, 7, se->revoked_ms);
    return write_one(st, s, "insert session", false);
}

jv_err jv_store_session_revoke(jv_store *st, jv_str id, uint64_t now_ms)
{
    jv_err err;
    sqlite3_stmt *s = jv__stmt(st, sql_session_revoke, &err);
    if (!s)
        return err;
    jv__bind_str(s, 1, id);
    jv__bind_u64(s, 2, now_ms);
    return write_one(st, s, "revoke session", true);
}

static jv_err session_rows(jv_store *st, sqlite3_stmt *s, jv_session_cb cb,
                           void *arg, size_t *rows)
{
    int rc;
    jv_err err = JV_OK;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        jv_session_row r;
        r.id = jv__col_str(s, 0);
        r.key_id = jv__col_str(s, 1);
        r.role = jv__col_str(s, 2);
        r.token_hash = sqlite3_column_blob(s, 3);
        if (!r.token_hash || sqlite3_column_bytes(s, 3) != JV_TOKEN_HASH_LEN) {
            err = jv__fail(st, JV_ECORRUPT, "session: stored hash of bad size");
            break;
        }
        r.created_ms = jv__col_u64(s, 4);
        r.expires_ms = jv__col_u64(s, 5);
        r.revoked_ms = jv__col_u64(s, 6);
        (*rows)++;
        if ((err = cb(arg, &r)))
            break;
    }
    if (!err && rc != SQLITE_DONE && rc != SQLITE_ROW)
        err = jv__sqlerr(st, rc, "read sessions");
    jv__reset(s);
    return err;
}

jv_err jv_store_session_list(jv_store *st, uint64_t now_ms, jv_session_cb cb,
                             void *arg)
{
    jv_err err;
    size_t rows = 0;
    sqlite3_stmt *s = jv__stmt(st, sql_session_list, &err);
    if (!s)
        return err;
    jv__bind_u64(s, 1, now_ms);
    return session_rows(st, s, cb, arg, &rows);
}

jv_err jv_store_session_by_hash(jv_store *st, const uint8_t *token_hash,
                                jv_session_cb cb, void *arg)
{
    jv_err err;
    size_t rows = 0;
    sqlite3_stmt *s = jv__stmt(st, sql_session_by_hash, &err);
    if (!s)
        return err;
    sqlite3_bind_blob(s, 1, token_hash, JV_TOKEN_HASH_LEN, SQLITE_STATIC);
    if ((err = session_rows(st, s, cb, arg, &rows)))
        return err;
    return rows ? JV_OK : jv__fail(st, JV_ENOTFOUND, "no such session");
}

jv_err jv_store_session_purge(jv_store *st, uint64_t cutoff_ms)
{
    jv_err err;
    sqlite3_stmt *s = jv__stmt(st, sql_session_purge, &err);
    if (!s)
        return err;
    jv__bind_u64(s, 1, cutoff_ms);
    return write_one(st, s, "purge sessions", false);
}

/* -- peers ---------------------------------------------------------------- */

static const char sql_peer_add[] =
    "INSERT INTO peer(addr, node, added_ms, source) VALUES (?1, ?2, ?3, ?4) "
    "ON CONFLICT(addr) DO UPDATE SET "
    "node = coalesce(excluded.node, peer.node), "
    "source = CASE WHEN excluded.source = '' THEN peer.source "
    "ELSE excluded.source END";
static const char sql_peer_remove[] = "DELETE FROM peer WHERE addr = ?1";
static const char sql_peer_set_node[] =
    "UPDATE peer SET node = ?2 WHERE addr = ?1";
static const char sql_peer_list[] =
    "SELECT addr, node, added_ms, source FROM peer ORDER BY addr";

jv_err jv_store_peer_add(jv_store *st, const jv_peer_row *p)
{
    jv_err err;
    if (!p->addr.n)
        return jv__fail(st, JV_EINVAL, "peer: address required");
    sqlite3_stmt *s = jv__stmt(st, sql_peer_add, &err);
    if (!s)
        return err;
    jv__bind_str(s, 1, p->addr);
    if (p->node)
        jv__bind_id(s, 2, p->node);
    jv__bind_u64(s, 3, p->added_ms);
    jv__bind_str(s, 4, p->source);
    return write_one(st, s, "add peer", false);
}

jv_err jv_store_peer_remove(jv_store *st, jv_str addr)
{
    jv_err err;
    sqlite3_stmt *s = jv__stmt(st, sql_peer_remove, &err);
    if (!s)
        return err;
    jv__bind_str(s, 1, addr);
    return write_one(st, s, "remove peer", true);
}

jv_err jv_store_peer_set_node(jv_store *st, jv_str addr, const jv_id *node)
{
    jv_err err;
    sqlite3_stmt *s = jv__stmt(st, sql_peer_set_node, &err);
    if (!s)
        return err;
    jv__bind_str(s, 1, addr);
    if (node)
        jv__bind_id(s, 2, node);
    return write_one(st, s, "set peer node", true);
}

jv_err jv_store_peer_list(jv_store *st, jv_peer_cb cb, void *arg)
{
    jv_err err;
    sqlite3_stmt *s = jv__stmt(st, sql_peer_list, &err);
    if (!s)
        return err;
    int rc;
    err = JV_OK;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        jv_peer_row p;
        jv_id node;
        p.addr = jv__col_str(s, 0);
        p.node = NULL;
        if (sqlite3_column_type(s, 1) != SQLITE_NULL) {
            if ((err = jv__col_id(st, s, 1, &node)))
                break;
            p.node = &node;
        }
        p.added_ms = jv__col_u64(s, 2);
        p.source = jv__col_str(s, 3);
        if ((err = cb(arg, &p)))
            break;
    }
    if (!err && rc != SQLITE_DONE && rc != SQLITE_ROW)
        err = jv__sqlerr(st, rc, "read peers");
    jv__reset(s);
    return err;
}
