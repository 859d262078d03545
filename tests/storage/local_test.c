/*
 * local_test.c - API keys, sessions and peers: uniqueness, revocation,
 * expiry, purging, peer upserts; alone and inside a commit group.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hlc.h"
#include "local.h"
#include "storetest.h"
#include "testutil.h"

typedef struct {
    char *dir;
    jv_store *st;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    f->dir = st_mkdtemp();
    char *p = st_path(f->dir, "node.db");
    f->st = st_open(p);
    free(p);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    jv_store_close(f->st);
    st_rmdir(f->dir);
    free(f);
    return 0;
}

typedef struct {
    char id[8][32];
    char role[8][16];
    uint64_t revoked[8];
    uint64_t expires[8];
    size_t n;
} rows;

static jv_err key_cb(void *arg, const jv_key_row *k)
{
    rows *r = arg;
    snprintf(r->id[r->n], 32, "%.*s", (int)k->id.n, k->id.p);
    snprintf(r->role[r->n], 16, "%.*s", (int)k->role.n, k->role.p);
    r->revoked[r->n] = k->revoked_ms;
    r->n++;
    return JV_OK;
}

static jv_err session_cb(void *arg, const jv_session_row *s)
{
    rows *r = arg;
    snprintf(r->id[r->n], 32, "%.*s", (int)s->id.n, s->id.p);
    snprintf(r->role[r->n], 16, "%.*s", (int)s->role.n, s->role.p);
    r->revoked[r->n] = s->revoked_ms;
    r->expires[r->n] = s->expires_ms;
    r->n++;
    return JV_OK;
}

static jv_key_row key(const char *id, const char *name, const char *role,
                      const uint8_t *hash, uint64_t created)
{
    jv_key_row k = {jv_str_c(id), jv_str_c(name), jv_str_c(role),
                    hash,         created,        0};
    return k;
}

static void test_keys(void **state)
{
    fx *f = *state;
    uint8_t h1[JV_TOKEN_HASH_LEN], h2[JV_TOKEN_HASH_LEN], h3[JV_TOKEN_HASH_LEN];
    memset(h1, 1, sizeof(h1));
    memset(h2, 2, sizeof(h2));
    memset(h3, 3, sizeof(h3));
    jv_key_row k = key("k1", "ops", "admin", h1, 100);
    assert_int_equal(jv_store_key_insert(f->st, &k), JV_OK);
    k = key("k2", "ci", "writer", h2, 200);
    assert_int_equal(jv_store_key_insert(f->st, &k), JV_OK);
    k = key("k1", "other", "reader", h3, 300); /* id taken */
    assert_int_equal(jv_store_key_insert(f->st, &k), JV_EEXIST);
    k = key("k3", "ci", "reader", h3, 300); /* name taken */
    assert_int_equal(jv_store_key_insert(f->st, &k), JV_EEXIST);
    k = key("k3", "dash", "root", h3, 300); /* no such role */
    assert_int_equal(jv_store_key_insert(f->st, &k), JV_EINVAL);

    rows r = {0};
    assert_int_equal(jv_store_key_list(f->st, key_cb, &r), JV_OK);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.id[0], "k1");
    assert_string_equal(r.id[1], "k2");
    memset(&r, 0, sizeof(r));
    assert_int_equal(jv_store_key_by_hash(f->st, h2, key_cb, &r), JV_OK);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.role[0], "writer");
    assert_int_equal(jv_store_key_by_hash(f->st, h3, key_cb, &r), JV_ENOTFOUND);
    assert_int_equal(jv_store_key_get(f->st, jv_str_c("zz"), key_cb, &r),
                     JV_ENOTFOUND);

    /* Revoking keeps the first time and revokes the key's sessions. */
    jv_session_row s = {
        jv_str_c("s1"), jv_str_c("k1"), jv_str_c("admin"), h3, 100, 10000, 0};
    assert_int_equal(jv_store_session_insert(f->st, &s), JV_OK);
    assert_int_equal(jv_store_key_revoke(f->st, jv_str_c("k1"), 500), JV_OK);
    assert_int_equal(jv_store_key_revoke(f->st, jv_str_c("k1"), 900), JV_OK);
    assert_int_equal(jv_store_key_revoke(f->st, jv_str_c("nope"), 900),
                     JV_ENOTFOUND);
    memset(&r, 0, sizeof(r));
    assert_int_equal(jv_store_key_get(f->st, jv_str_c("k1"), key_cb, &r),
                     JV_OK);
    assert_int_equal(r.revoked[0], 500);
    memset(&r, 0, sizeof(r));
    assert_int_equal(jv_store_session_by_hash(f->st, h3, session_cb, &r),
                     JV_OK);
    assert_int_equal(r.revoked[0], 500);
}

static void test_sessions(void **state)
{
    fx *f = *state;
    uint8_t h[4][JV_TOKEN_HASH_LEN];
    for (int i = 0; i < 4; i++)
        memset(h[i], 10 + i, JV_TOKEN_HASH_LEN);
    jv_session_row s[4] = {
        {jv_str_c("s1"), jv_str_c("k"), jv_str_c("reader"), h[0], 10, 100, 0},
        {jv_str_c("s2"), jv_str_c("k"), jv_str_c("writer"), h[1], 20, 300, 0},
        {jv_str_c("s3"), jv_str_c("k"), jv_str_c("admin"), h[2], 30, 400, 0},
        {jv_str_c("s4"), jv_str_c("k"), jv_str_c("admin"), h[3], 5, 500, 0},
    };
    for (int i = 0; i < 4; i++)
        assert_int_equal(jv_store_session_insert(f->st, &s[i]), JV_OK);
    assert_int_equal(jv_store_session_insert(f->st, &s[0]), JV_EEXIST);
    assert_int_equal(jv_store_session_revoke(f->st, jv_str_c("s3"), 150),
                     JV_OK);
    assert_int_equal(jv_store_session_revoke(f->st, jv_str_c("s3"), 250),
                     JV_OK);
    assert_int_equal(jv_store_session_revoke(f->st, jv_str_c("zz"), 250),
                     JV_ENOTFOUND);

    /* At 200: s1 expired, s3 revoked; by created time: s4, s2. */
    rows r = {0};
    assert_int_equal(jv_store_session_list(f->st, 200, session_cb, &r), JV_OK);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.id[0], "s4");
    assert_string_equal(r.id[1], "s2");
    memset(&r, 0, sizeof(r));
    assert_int_equal(jv_store_session_by_hash(f->st, h[2], session_cb, &r),
                     JV_OK);
    assert_int_equal(r.revoked[0], 150);

    /* Purge before 160: s1 (expired at 100) and s3 (revoked at 150). */
    assert_int_equal(jv_store_session_purge(f->st, 160), JV_OK);
    memset(&r, 0, sizeof(r));
    assert_int_equal(jv_store_session_list(f->st, 0, session_cb, &r), JV_OK);
    assert_int_equal(r.n, 2);
    assert_int_equal(jv_store_session_by_hash(f->st, h[0], session_cb, &r),
                     JV_ENOTFOUND);
}

typedef struct {
    char addr[8][64];
    char source[8][16];
    bool has_node[8];
    jv_id node[8];
    uint64_t added[8];
    size_t n;
} peers;

static jv_err peer_cb(void *arg, const jv_peer_row *p)
{
    peers *r = arg;
    snprintf(r->addr[r->n], 64, "%.*s", (int)p->addr.n, p->addr.p);
    snprintf(r->source[r->n], 16, "%.*s", (int)p->source.n, p->source.p);
    r->has_node[r->n] = p->node != NULL;
    if (p->node)
        r->node[r->n] = *p->node;
    r->added[r->n] = p->added_ms;
    r->n++;
    return JV_OK;
}

static void test_peers(void **state)
{
    fx *f = *state;
    jv_id n1 = jv_test_id(1), n2 = jv_test_id(2);
    jv_peer_row p = {jv_str_c("tcp://10.0.0.2:7000"), NULL, 100,
                     jv_str_c("flag")};
    assert_int_equal(jv_store_peer_add(f->st, &p), JV_OK);
    p = (jv_peer_row){jv_str_c("ipc:///tmp/a"), &n1, 200, jv_str_c("api")};
    assert_int_equal(jv_store_peer_add(f->st, &p), JV_OK);
    /* Re-adding keeps the node and source when the new ones are empty. */
    p = (jv_peer_row){jv_str_c("ipc:///tmp/a"), NULL, 300, jv_str_c("")};
    assert_int_equal(jv_store_peer_add(f->st, &p), JV_OK);
    p = (jv_peer_row){jv_str_c("tcp://10.0.0.2:7000"), &n2, 400,
                      jv_str_c("config")};
    assert_int_equal(jv_store_peer_add(f->st, &p), JV_OK);

    peers r = {0};
    assert_int_equal(jv_store_peer_list(f->st, peer_cb, &r), JV_OK);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.addr[0], "ipc:///tmp/a");
    assert_true(r.has_node[0]);
    assert_memory_equal(r.node[0].b, n1.b, JV_ID_LEN);
    assert_string_equal(r.source[0], "api");
    assert_int_equal(r.added[0], 200);
    assert_string_equal(r.source[1], "config");
    assert_memory_equal(r.node[1].b, n2.b, JV_ID_LEN);

    assert_int_equal(
        jv_store_peer_set_node(f->st, jv_str_c("ipc:///tmp/a"), &n2), JV_OK);
    assert_int_equal(jv_store_peer_set_node(f->st, jv_str_c("nope"), &n2),
                     JV_ENOTFOUND);
    assert_int_equal(
        jv_store_peer_remove(f->st, jv_str_c("tcp://10.0.0.2:7000")), JV_OK);
    assert_int_equal(
        jv_store_peer_remove(f->st, jv_str_c("tcp://10.0.0.2:7000")),
        JV_ENOTFOUND);
    memset(&r, 0, sizeof(r));
    assert_int_equal(jv_store_peer_list(f->st, peer_cb, &r), JV_OK);
    assert_int_equal(r.n, 1);
    assert_memory_equal(r.node[0].b, n2.b, JV_ID_LEN);
    p = (jv_peer_row){jv_str_c(""), NULL, 1, jv_str_c("api")};
    assert_int_equal(jv_store_peer_add(f->st, &p), JV_EINVAL);
}

/* Inside a commit group: the key and its audit entry commit together, and
 * a key whose audit entry is invalid is not kept. */
typedef struct {
    const char *id, *name;
    uint8_t hash[JV_TOKEN_HASH_LEN];
} new_key;

static jv_err add_key(jv_store *st, void *arg)
{
    new_key *k = arg;
    jv_key_row row = key(k->id, k->name, "admin", k->hash, 1);
    return jv_store_key_insert(st, &row);
}

static void test_in_commit_group(void **state)
{
    fx *f = *state;
    jv_keypair kp;
    st_keypair(&kp, 30);
    assert_int_equal(jv_store_set_self(f->st, &kp.pk), JV_OK);
    new_key k1 = {"k1", "one", {0}}, k2 = {"k2", "two", {0}},
            k3 = {"k3", "one", {0}};
    memset(k1.hash, 1, JV_TOKEN_HASH_LEN);
    memset(k2.hash, 2, JV_TOKEN_HASH_LEN);
    memset(k3.hash, 3, JV_TOKEN_HASH_LEN);
    jv_intent a1 = st_audit(1, "admin", "key.create", "k1", "");
    jv_intent a2 = st_audit(999999, "admin", "key.create", "k2", "");
    jv_intent a3 = st_audit(1, "admin", "key.create", "k3", "");
    jv_write_group g[3] = {
        {.intents = &a1, .n = 1, .local = add_key, .local_arg = &k1},
        {.intents = &a2, .n = 1, .local = add_key, .local_arg = &k2},
        {.intents = &a3, .n = 1, .local = add_key, .local_arg = &k3},
    };
    jv_commit_info ci;
    assert_int_equal(
        jv_store_commit_local(f->st, &kp, jv_hlc_make(10, 0), g, 3, &ci),
        JV_OK);
    assert_int_equal(g[0].result, JV_OK);
    assert_int_equal(g[1].result, JV_EINVAL); /* audit time past the stamp */
    assert_int_equal(g[2].result, JV_EEXIST); /* name "one" taken */
    assert_int_equal(ci.nops, 1);
    rows r = {0};
    assert_int_equal(jv_store_key_list(f->st, key_cb, &r), JV_OK);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.id[0], "k1");
}

/* Runs SQL on a second, raw connection to the store's file (another
 * program, or a bad disk, under a running node). */
static void raw_exec(fx *f, const char *sql)
{
    char *path = st_path(f->dir, "node.db");
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
        fail_msg("%s: %s", sql, err);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    free(path);
}

static bool last_admin(fx *f, const char *id)
{
    bool last = true;
    assert_int_equal(jv_store_key_last_admin(f->st, jv_str_c(id), &last),
                     JV_OK);
    return last;
}

/* The guard against locking everyone out: only the one active admin key
 * is the last; writers, revoked keys and unknown ids never are. */
static void test_last_admin(void **state)
{
    fx *f = *state;
    uint8_t h[4][JV_TOKEN_HASH_LEN];
    for (int i = 0; i < 4; i++)
        memset(h[i], 40 + i, JV_TOKEN_HASH_LEN);
    jv_key_row k = key("a1", "first", "admin", h[0], 1);
    assert_int_equal(jv_store_key_insert(f->st, &k), JV_OK);
    k = key("w1", "ci", "writer", h[1], 2);
    assert_int_equal(jv_store_key_insert(f->st, &k), JV_OK);
    assert_true(last_admin(f, "a1"));
    assert_false(last_admin(f, "w1"));
    assert_false(last_admin(f, "nope"));
    k = key("a2", "second", "admin", h[2], 3);
    assert_int_equal(jv_store_key_insert(f->st, &k), JV_OK);
    assert_false(last_admin(f, "a1"));
    assert_false(last_admin(f, "a2"));
    assert_int_equal(jv_store_key_revoke(f->st, jv_str_c("a1"), 10), JV_OK);
    assert_false(last_admin(f, "a1")); /* revoked: not an active admin */
    assert_true(last_admin(f, "a2"));
}

static jv_err stop_key(void *arg, const jv_key_row *k)
{
    (void)k;
    (*(int *)arg)++;
    return JV_ECLOSED;
}

static jv_err stop_session(void *arg, const jv_session_row *s)
{
    (void)s;
    (*(int *)arg)++;
    return JV_ECLOSED;
}

static jv_err stop_peer(void *arg, const jv_peer_row *p)
{
    (void)p;
    (*(int *)arg)++;
    return JV_ECLOSED;
}

/* A callback's error ends the listing and is returned; stored hashes and
 * node ids of the wrong size are damage (ECORRUPT), never passed on. */
static void test_stop_and_damage(void **state)
{
    fx *f = *state;
    uint8_t h[2][JV_TOKEN_HASH_LEN];
    memset(h[0], 50, JV_TOKEN_HASH_LEN);
    memset(h[1], 51, JV_TOKEN_HASH_LEN);
    jv_id n1 = jv_test_id(1);
    for (int i = 0; i < 2; i++) {
        char id[8], name[8];
        snprintf(id, sizeof(id), "k%d", i);
        snprintf(name, sizeof(name), "n%d", i);
        jv_key_row k = key(id, name, "reader", h[i], 1);
        assert_int_equal(jv_store_key_insert(f->st, &k), JV_OK);
        jv_session_row s = {
            jv_str_c(id), jv_str_c(id), jv_str_c("reader"), h[i], 1, 100, 0};
        assert_int_equal(jv_store_session_insert(f->st, &s), JV_OK);
        jv_peer_row p = {jv_str_c(i ? "tcp://b:1" : "tcp://a:1"), &n1, 1,
                         jv_str_c("api")};
        assert_int_equal(jv_store_peer_add(f->st, &p), JV_OK);
    }
    int n[3] = {0};
    assert_int_equal(jv_store_key_list(f->st, stop_key, &n[0]), JV_ECLOSED);
    assert_int_equal(jv_store_session_list(f->st, 0, stop_session, &n[1]),
                     JV_ECLOSED);
    assert_int_equal(jv_store_peer_list(f->st, stop_peer, &n[2]), JV_ECLOSED);
    for (int i = 0; i < 3; i++)
        assert_int_equal(n[i], 1);

    raw_exec(f, "UPDATE api_key SET hash = x'0102' WHERE id = 'k0';"
                "UPDATE session SET token_hash = x'' WHERE id = 'k0';"
                "UPDATE peer SET node = x'03' WHERE addr = 'tcp://a:1'");
    rows r = {0};
    peers pr = {0};
    assert_int_equal(jv_store_key_get(f->st, jv_str_c("k0"), key_cb, &r),
                     JV_ECORRUPT);
    assert_non_null(strstr(jv_store_errmsg(f->st), "hash of bad size"));
    assert_int_equal(jv_store_session_list(f->st, 0, session_cb, &r),
                     JV_ECORRUPT);
    assert_non_null(strstr(jv_store_errmsg(f->st), "hash of bad size"));
    assert_int_equal(jv_store_peer_list(f->st, peer_cb, &pr), JV_ECORRUPT);
    assert_int_equal(r.n, 0);
    assert_int_equal(pr.n, 0);
    /* The sound rows are still read. */
    assert_int_equal(jv_store_key_get(f->st, jv_str_c("k1"), key_cb, &r),
                     JV_OK);
    assert_int_equal(jv_store_session_by_hash(f->st, h[1], session_cb, &r),
                     JV_OK);
    assert_int_equal(r.n, 2);
}

/* Revoking a key revokes its sessions in the same transaction: when the
 * second half fails, the key stays active too. Every call on a table that
 * is gone fails with the database's words. */
static void test_tables_gone(void **state)
{
    fx *f = *state;
    uint8_t h[JV_TOKEN_HASH_LEN];
    memset(h, 60, sizeof(h));
    jv_key_row k = key("k1", "ops", "admin", h, 1);
    assert_int_equal(jv_store_key_insert(f->st, &k), JV_OK);
    raw_exec(f, "DROP TABLE session");
    assert_int_equal(jv_store_key_revoke(f->st, jv_str_c("k1"), 99),
                     JV_ESTORAGE);
    rows r = {0};
    assert_int_equal(jv_store_key_get(f->st, jv_str_c("k1"), key_cb, &r),
                     JV_OK);
    assert_int_equal(r.revoked[0], 0);
    assert_true(last_admin(f, "k1"));

    raw_exec(f, "DROP TABLE api_key; DROP TABLE peer");
    jv_session_row s = {
        jv_str_c("s1"), jv_str_c("k1"), jv_str_c("admin"), h, 1, 100, 0};
    jv_peer_row p = {jv_str_c("tcp://a:1"), NULL, 1, jv_str_c("api")};
    bool last;
    jv_id n1 = jv_test_id(1);
    peers pr = {0};
    jv_err got[] = {
        jv_store_key_insert(f->st, &k),
        jv_store_key_revoke(f->st, jv_str_c("k2"), 1),
        jv_store_key_last_admin(f->st, jv_str_c("k1"), &last),
        jv_store_key_get(f->st, jv_str_c("k1"), key_cb, &r),
        jv_store_key_by_hash(f->st, h, key_cb, &r),
        jv_store_key_list(f->st, key_cb, &r),
        jv_store_session_insert(f->st, &s),
        jv_store_session_revoke(f->st, jv_str_c("s1"), 1),
        jv_store_session_by_hash(f->st, h, session_cb, &r),
        jv_store_session_list(f->st, 0, session_cb, &r),
        jv_store_session_purge(f->st, 1),
        jv_store_peer_add(f->st, &p),
        jv_store_peer_remove(f->st, p.addr),
        jv_store_peer_set_node(f->st, p.addr, &n1),
        jv_store_peer_list(f->st, peer_cb, &pr),
    };
    for (size_t i = 0; i < sizeof(got) / sizeof(*got); i++)
        if (got[i] != JV_ESTORAGE)
            fail_msg("call %zu: %s", i, jv_errname(got[i]));
}

/* A store opened read-only refuses every local write (SQLite's "read-only
 * database"), and the file keeps what it had. */
static void test_readonly_writes_refused(void **state)
{
    fx *f = *state;
    uint8_t h[JV_TOKEN_HASH_LEN];
    memset(h, 70, sizeof(h));
    jv_key_row k = key("k1", "ops", "admin", h, 1);
    assert_int_equal(jv_store_key_insert(f->st, &k), JV_OK);
    jv_store_close(f->st);
    char *path = st_path(f->dir, "node.db");
    jv_store_opts o;
    jv_store_opts_default(&o);
    o.readonly = true;
    f->st = st_open_opts(path, &o);
    free(path);
    k = key("k2", "two", "reader", h, 2);
    h[0] = 1;
    jv_session_row s = {
        jv_str_c("s1"), jv_str_c("k1"), jv_str_c("admin"), h, 1, 100, 0};
    jv_peer_row p = {jv_str_c("tcp://a:1"), NULL, 1, jv_str_c("api")};
    assert_int_equal(jv_store_key_insert(f->st, &k), JV_ESTORAGE);
    assert_non_null(strstr(jv_store_errmsg(f->st), "readonly"));
    assert_int_equal(jv_store_key_revoke(f->st, jv_str_c("k1"), 5),
                     JV_ESTORAGE);
    assert_int_equal(jv_store_session_insert(f->st, &s), JV_ESTORAGE);
    assert_int_equal(jv_store_peer_add(f->st, &p), JV_ESTORAGE);
    rows r = {0};
    assert_int_equal(jv_store_key_list(f->st, key_cb, &r), JV_OK);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.revoked[0], 0);
}

int main(void)
{
    jv_test_seed();
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_keys),        T(test_sessions),
        T(test_peers),       T(test_in_commit_group),
        T(test_last_admin),  T(test_stop_and_damage),
        T(test_tables_gone), T(test_readonly_writes_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
