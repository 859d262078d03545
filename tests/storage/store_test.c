/*
 * store_test.c - opening, identity, metadata, and every refusal at open
 * (each leaving the file byte-for-byte as it was), migrations.
 */
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storetest.h"
#include "testutil.h"

#define APP_ID 0x4A525653

typedef struct {
    char *dir;
    char *db;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    f->dir = st_mkdtemp();
    f->db = st_path(f->dir, "node.db");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    st_rmdir(f->dir);
    free(f->db);
    free(f);
    return 0;
}

/* Runs SQL on a raw connection (the test plays another program). */
static void raw_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
        fail_msg("%s: %s", sql, err);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static int64_t raw_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

/* Opens path (create) expecting `want`; checks that the message names the
 * problem and that the file is unchanged. */
static void expect_refused(const char *path, jv_err want, const char *needle)
{
    size_t n0, n1;
    uint8_t *before = st_read_file(path, &n0);
    jv_store_opts o;
    jv_store_opts_default(&o);
    o.create = true;
    jv_store *st = (jv_store *)0x1;
    char msg[256] = "";
    jv_err err = jv_store_open(path, &o, &st, msg, sizeof(msg));
    printf("  refused %s: %s\n", jv_errname(err), msg);
    assert_int_equal(err, want);
    assert_null(st);
    assert_non_null(strstr(msg, needle));
    uint8_t *after = st_read_file(path, &n1);
    assert_int_equal(n0, n1);
    assert_memory_equal(before, after, n0);
    free(before);
    free(after);
}

/* A closed store with some content, its WAL folded into the main file. */
static void make_store(const char *path, int adds)
{
    jv_keypair kp;
    st_keypair(&kp, 1);
    jv_store *st = st_open(path);
    assert_int_equal(jv_store_set_self(st, &kp.pk), JV_OK);
    char key[32], val[64];
    for (int i = 0; i < adds; i++) {
        snprintf(key, sizeof(key), "k/%04d", i);
        snprintf(val, sizeof(val), "\"value number %d with padding\"", i);
        jv_intent in = st_add(key, val, 100);
        /* Growing stamps, as the node's clock gives them. */
        assert_int_equal(st_commit(st, &kp, 1000 + (uint64_t)i, &in, 1, NULL),
                         JV_OK);
    }
    jv_store_close(st);
}

/* Runs first: SQLite has not started in this process yet. */
static void test_process_init(void **state)
{
    (void)state;
    jv_keypair a;
    sqlite3_int64 used = -1, high = -1;
    st_keypair(&a, 1);
    assert_int_equal(jv_store_process_init(), JV_OK);
    jv_store *st = st_open(":memory:");
    assert_int_equal(jv_store_set_self(st, &a.pk), JV_OK);
    /* Allocations are no longer counted, so they take no global mutex. */
    assert_int_equal(
        sqlite3_status64(SQLITE_STATUS_MEMORY_USED, &used, &high, 0),
        SQLITE_OK);
    assert_int_equal(used, 0);
    jv_store_close(st);
    /* SQLite has started: too late, and said so. */
    assert_int_equal(jv_store_process_init(), JV_ESTATE);
}

static void test_create_reopen(void **state)
{
    fx *f = *state;
    jv_keypair a, b;
    jv_id got;
    st_keypair(&a, 1);
    st_keypair(&b, 2);

    jv_store_opts o;
    jv_store_opts_default(&o);
    jv_store *st = (jv_store *)0x1;
    char msg[256];
    assert_int_equal(jv_store_open(f->db, &o, &st, msg, sizeof(msg)),
                     JV_ENOTFOUND);
    assert_null(st);
    assert_int_equal(access(f->db, F_OK), -1); /* nothing created */

    st = st_open(f->db);
    assert_int_equal(jv_store_get_self(st, &got), JV_ENOTFOUND);
    assert_int_equal(jv_store_set_self(st, &a.pk), JV_OK);
    assert_int_equal(jv_store_set_self(st, &a.pk), JV_OK);
    assert_int_equal(jv_store_meta_set(st, "greeting", "hello", 5), JV_OK);
    jv_store_close(st);

    /* Reopen without create: same identity and metadata. */
    st = st_open_opts(f->db, &o);
    assert_int_equal(jv_store_get_self(st, &got), JV_OK);
    assert_memory_equal(got.b, a.pk.b, JV_ID_LEN);
    char buf[3];
    size_t len = 0;
    assert_int_equal(jv_store_meta_get(st, "greeting", buf, sizeof(buf), &len),
                     JV_OK);
    assert_int_equal(len, 5);
    assert_memory_equal(buf, "hel", 3); /* truncated to cap */
    assert_int_equal(jv_store_meta_get(st, "nothing", buf, 3, &len),
                     JV_ENOTFOUND);
    /* A key file of another node does not belong with this database. */
    assert_int_equal(jv_store_set_self(st, &b.pk), JV_EINVAL);
    assert_non_null(strstr(jv_store_errmsg(st), "another node"));

    jv_store_stats s;
    assert_int_equal(jv_store_stats_get(st, &s), JV_OK);
    assert_true(s.file_bytes > 0);
    assert_int_equal(s.batches, 0);
    assert_int_equal(s.max_hlc, 0);
    jv_store_close(st);

    assert_int_equal(raw_int(f->db, "PRAGMA application_id"), APP_ID);
    assert_int_equal(raw_int(f->db, "PRAGMA user_version"),
                     JV_STORE_SCHEMA_VERSION);
    jv_store_close(NULL);
}

static void test_stats_and_readonly(void **state)
{
    fx *f = *state;
    jv_keypair kp;
    st_keypair(&kp, 1);
    make_store(f->db, 3);
    jv_store_opts o;
    jv_store_opts_default(&o);
    o.readonly = true;
    jv_store *st = st_open_opts(f->db, &o);
    jv_store_stats s;
    assert_int_equal(jv_store_stats_get(st, &s), JV_OK);
    assert_int_equal(s.batches, 3);
    assert_int_equal(s.ops, 3);
    assert_int_equal(s.held, 0);
    assert_int_equal(s.log_bytes,
                     (uint64_t)raw_int(f->db, "SELECT sum(length(body)) "
                                              "FROM batch"));
    /* A restarted node seeds its clock above every stamp it logged. */
    assert_int_equal(s.max_hlc, 1002);
    jv_intent in = st_counter("c", 1);
    jv_write_group g = {.intents = &in, .n = 1};
    jv_commit_info ci;
    assert_int_equal(jv_store_commit_local(st, &kp, 1000, &g, 1, &ci),
                     JV_EPERM);
    jv_store_close(st);
}

/* A node's writer commits without checkpointing; a checkpoint made on
 * another connection catches up with the log, which then starts over. */
static void test_manual_checkpoint(void **state)
{
    fx *f = *state;
    jv_keypair kp;
    st_keypair(&kp, 1);
    jv_store_opts o;
    jv_store_opts_default(&o);
    o.create = true;
    o.manual_checkpoint = true;
    jv_store *w = st_open_opts(f->db, &o);
    assert_int_equal(jv_store_set_self(w, &kp.pk), JV_OK);
    const int commits = 1500; /* beyond SQLite's 1000-page autocheckpoint */
    for (int i = 0; i < commits; i++) {
        jv_intent in = st_counter("c", 1);
        assert_int_equal(st_commit(w, &kp, 1000 + (uint64_t)i, &in, 1, NULL),
                         JV_OK);
    }
    jv_store_stats s;
    assert_int_equal(jv_store_stats_get(w, &s), JV_OK);
    assert_true(s.wal_bytes > 1000 * 4096ull);

    jv_store_opts co;
    jv_store_opts_default(&co);
    co.checked = true;
    jv_store *c = st_open_opts(f->db, &co);
    assert_int_equal(jv_store_stats_get(c, &s), JV_OK);
    assert_int_equal(s.batches, (uint64_t)commits);
    uint64_t frames = 0, done = 0;
    assert_int_equal(jv_store_checkpoint(c, &frames, &done), JV_OK);
    assert_true(frames > 1000);
    assert_int_equal(done, frames);

    jv_intent in = st_counter("c", 1);
    assert_int_equal(st_commit(w, &kp, 1000 + (uint64_t)commits, &in, 1, NULL),
                     JV_OK);
    assert_int_equal(jv_store_checkpoint(c, &frames, &done), JV_OK);
    assert_true(frames < 16);
    assert_int_equal(done, frames);
    jv_store_close(c);
    jv_store_close(w);
}

static void test_empty_file_is_fresh(void **state)
{
    fx *f = *state;
    st_write_file(f->db, "", 0);
    jv_store *st = st_open(f->db);
    jv_keypair kp;
    st_keypair(&kp, 1);
    assert_int_equal(jv_store_set_self(st, &kp.pk), JV_OK);
    jv_store_close(st);
    assert_int_equal(raw_int(f->db, "PRAGMA application_id"), APP_ID);
}

static void test_newer_version_refused(void **state)
{
    fx *f = *state;
    make_store(f->db, 2);
    char sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA user_version = %d",
             JV_STORE_SCHEMA_VERSION + 1);
    raw_exec(f->db, sql);
    expect_refused(f->db, JV_EVERSION, "newer");
}

static void test_foreign_app_id_refused(void **state)
{
    fx *f = *state;
    raw_exec(f->db, "PRAGMA application_id = 305419896;"
                    "CREATE TABLE t(x); INSERT INTO t VALUES (1)");
    expect_refused(f->db, JV_EFOREIGN, "application_id");
}

static void test_foreign_no_app_id_refused(void **state)
{
    fx *f = *state;
    raw_exec(f->db, "CREATE TABLE customers(name TEXT);"
                    "INSERT INTO customers VALUES ('x')");
    expect_refused(f->db, JV_EFOREIGN, "another application");
}

static void test_not_sqlite_refused(void **state)
{
    fx *f = *state;
    char text[4096];
    for (size_t i = 0; i < sizeof(text); i++)
        text[i] = (char)('a' + i % 26);
    st_write_file(f->db, text, sizeof(text));
    expect_refused(f->db, JV_EFOREIGN, "not an SQLite database");
    st_write_file(f->db, "tiny", 4);
    expect_refused(f->db, JV_EFOREIGN, "not an SQLite database");
}

static void test_corrupt_header_refused(void **state)
{
    fx *f = *state;
    make_store(f->db, 2);
    size_t n;
    uint8_t *p = st_read_file(f->db, &n);
    p[16] = 0x00;
    p[17] = 0x03; /* page size 3 */
    st_write_file(f->db, p, n);
    expect_refused(f->db, JV_ECORRUPT, "page size");

    p[16] = 0x10;
    p[17] = 0x00;
    p[21] = 0x07; /* max payload fraction must be 64 */
    st_write_file(f->db, p, n);
    expect_refused(f->db, JV_ECORRUPT, "header");

    p[21] = 64;
    st_write_file(f->db, p, n - 1000); /* not whole pages */
    expect_refused(f->db, JV_ECORRUPT, "damaged");
    free(p);
}

static void test_corrupt_pages_refused(void **state)
{
    fx *f = *state;
    jv_rng rng;
    jv_rng_seed(&rng, jv_test_seed());
    make_store(f->db, 200);
    size_t n;
    uint8_t *p = st_read_file(f->db, &n);
    size_t page = (size_t)p[16] << 8 | p[17];
    size_t pages = n / page;
    assert_true(pages > 8);
    /* Garbage over every page but the first (which holds the schema): any
     * b-tree page of ours is among them. */
    size_t victim = 2 + (size_t)jv_rng_below(&rng, pages - 2);
    printf("  damaging page %zu of %zu\n", victim, pages);
    jv_rng_bytes(&rng, p + (victim - 1) * page, page);
    st_write_file(f->db, p, n);
    expect_refused(f->db, JV_ECORRUPT, "damaged");
    free(p);
}

static void test_fresh_version_zero_migrated(void **state)
{
    fx *f = *state;
    /* Ours by application_id, at version 0, no tables: an "older" file. */
    raw_exec(f->db, "PRAGMA application_id = 1246910035");
    assert_int_equal(raw_int(f->db, "PRAGMA user_version"), 0);
    jv_store *st = st_open(f->db);
    jv_keypair kp;
    st_keypair(&kp, 1);
    assert_int_equal(jv_store_set_self(st, &kp.pk), JV_OK);
    jv_intent in = st_counter("hits", 2);
    assert_int_equal(st_commit(st, &kp, 1000, &in, 1, NULL), JV_OK);
    jv_store_close(st);
    assert_int_equal(raw_int(f->db, "PRAGMA user_version"),
                     JV_STORE_SCHEMA_VERSION);
    assert_int_equal(raw_int(f->db, "SELECT count(*) FROM sqlite_schema "
                                    "WHERE type = 'table'"),
                     24); /* 17, succession, the two of cluster keys,
                             the three of bounded history, and the archive's
                             entries and spans for its table (a view) */
}

/* Replica ids 2 and 3 as SQL blobs. */
#define ID_ZEROS \
    "00000000000000000000000000000000000000000000000000000000000000"
#define ID2 "x'" ID_ZEROS "02'"
#define ID3 "x'" ID_ZEROS "03'"

/* The archive as schema 6 kept it: a table clustered by (key, replica, n)
 * and a unique index by dot. Turns a store of ours back into that. */
static const char archive_v6[] =
    "CREATE TABLE archive_v6 (key TEXT NOT NULL, replica BLOB NOT NULL,"
    "  n INTEGER NOT NULL, stamp INTEGER NOT NULL, value TEXT NOT NULL,"
    "  PRIMARY KEY (key, replica, n)) WITHOUT ROWID;"
    "INSERT INTO archive_v6 SELECT key, replica, n, stamp, value FROM archive;"
    "DROP VIEW archive; DROP TABLE archive_entry; DROP TABLE archive_span;"
    "ALTER TABLE archive_v6 RENAME TO archive;"
    "CREATE UNIQUE INDEX archive_dot ON archive(replica, n);"
    /* Values of other replicas, with dots at and beyond 2^40 (another
     * span of the same replica) up to the largest a batch may carry. */
    "INSERT INTO archive VALUES"
    "  ('k/0003', " ID2 ", 5, 7, '\"other\"'),"
    "  ('k/0003', " ID2 ", 1099511627779, 8, '\"far\"'),"
    "  ('k/0004', " ID3 ", 1099511627775, 9, '\"edge\"'),"
    "  ('zz', " ID3 ", 9223372036854775807, 10, '\"last\"');"
    "PRAGMA user_version = 6;";

/* One archive value per line: key, replica (hex), n, stamp, value. */
static void put_value(char **out, size_t *len, jv_str key, const jv_id *id,
                      uint64_t n, uint64_t stamp, jv_str value)
{
    char hex[2 * JV_ID_LEN + 1], line[512];
    for (size_t i = 0; i < JV_ID_LEN; i++)
        snprintf(hex + 2 * i, 3, "%02X", id->b[i]);
    int k = snprintf(line, sizeof(line), "%.*s %s %llu %llu %.*s\n", (int)key.n,
                     key.p, hex, (unsigned long long)n,
                     (unsigned long long)stamp, (int)value.n, value.p);
    assert_true(k > 0 && (size_t)k < sizeof(line));
    *out = realloc(*out, *len + (size_t)k + 1);
    assert_non_null(*out);
    memcpy(*out + *len, line, (size_t)k + 1);
    *len += (size_t)k;
}

typedef struct {
    char *text;
    size_t len;
} lines;

static jv_err value_line(void *arg, const jv_archive_value *v)
{
    lines *l = arg;
    put_value(&l->text, &l->len, v->key, &v->dot.id, v->dot.n, v->stamp,
              v->value);
    return JV_OK;
}

/* The archive of a schema 6 file, read by SQL, in the store's order. */
static char *raw_archive(const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    lines l = {NULL, 0};
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT key, replica, n, stamp, value "
                                        "FROM archive ORDER BY key, replica, n",
                                        -1, &s, NULL),
                     SQLITE_OK);
    while (sqlite3_step(s) == SQLITE_ROW) {
        jv_id id;
        assert_int_equal(sqlite3_column_bytes(s, 1), JV_ID_LEN);
        memcpy(id.b, sqlite3_column_blob(s, 1), JV_ID_LEN);
        jv_str key = {(const char *)sqlite3_column_text(s, 0),
                      (size_t)sqlite3_column_bytes(s, 0)};
        jv_str value = {(const char *)sqlite3_column_text(s, 4),
                        (size_t)sqlite3_column_bytes(s, 4)};
        put_value(&l.text, &l.len, key, &id,
                  (uint64_t)sqlite3_column_int64(s, 2),
                  (uint64_t)sqlite3_column_int64(s, 3), value);
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
    return l.text;
}

static bool archive_has(jv_store *st, const char *key)
{
    lines l = {NULL, 0};
    assert_int_equal(
        jv_store_archive_key_values(st, jv_str_c(key), value_line, &l), JV_OK);
    free(l.text);
    return l.len > 0;
}

/* Migration 7 moves the archive into a table keyed by dot: every entry of
 * a schema 6 file comes out exactly as it was, in the same order, and
 * removes and adds work on the moved entries. */
static void test_archive_migrated_exactly(void **state)
{
    fx *f = *state;
    make_store(f->db, 12);
    raw_exec(f->db, archive_v6);
    char *want = raw_archive(f->db);
    assert_non_null(strstr(want, " 9223372036854775807 10 \"last\"\n"));

    jv_store *st = st_open(f->db);
    lines got = {NULL, 0};
    assert_int_equal(jv_store_archive_values(st, value_line, &got), JV_OK);
    assert_non_null(got.text);
    assert_string_equal(got.text, want);
    /* Spans: the node's, two of replica 2 and two of replica 3. */
    jv_store_close(st);
    assert_int_equal(raw_int(f->db, "PRAGMA user_version"),
                     JV_STORE_SCHEMA_VERSION);
    assert_int_equal(raw_int(f->db, "SELECT count(*) FROM archive_span"), 5);
    assert_int_equal(raw_int(f->db, "SELECT count(*) FROM sqlite_schema "
                                    "WHERE name = 'archive_dot'"),
                     0);

    /* A remove names the dots it saw, the moved ones beyond 2^40 too. */
    jv_keypair kp;
    st_keypair(&kp, 1);
    st = st_open(f->db);
    assert_true(archive_has(st, "k/0003"));
    jv_intent in = st_rm("k/0003");
    assert_int_equal(st_commit(st, &kp, 5000, &in, 1, NULL), JV_OK);
    assert_false(archive_has(st, "k/0003"));
    in = st_rm("zz");
    assert_int_equal(st_commit(st, &kp, 5001, &in, 1, NULL), JV_OK);
    assert_false(archive_has(st, "zz"));
    in = st_add("k/0100", "\"new\"", 5002);
    assert_int_equal(st_commit(st, &kp, 5002, &in, 1, NULL), JV_OK);
    assert_true(archive_has(st, "k/0100"));
    assert_true(archive_has(st, "k/0004"));
    jv_store_close(st);
    free(got.text);
    free(want);
}

static void test_failed_migration_changes_nothing(void **state)
{
    fx *f = *state;
    /* Version 0 of ours, but a table in the way of migration 1: the
     * migration fails halfway and must leave nothing behind. */
    raw_exec(f->db, "PRAGMA application_id = 1246910035;"
                    "CREATE TABLE audit(x); INSERT INTO audit VALUES (7)");
    expect_refused(f->db, JV_ESTORAGE, "migration 1");
    assert_int_equal(raw_int(f->db, "SELECT count(*) FROM sqlite_schema"), 1);
    assert_int_equal(raw_int(f->db, "PRAGMA user_version"), 0);
}

static void test_missing_table_is_damage(void **state)
{
    fx *f = *state;
    make_store(f->db, 1);
    raw_exec(f->db, "DROP TABLE peer");
    expect_refused(f->db, JV_ECORRUPT, "peer");
}

/* Opens path with o, expecting `want` and a message that says `needle`. */
static void expect_open(const char *path, const jv_store_opts *o, jv_err want,
                        const char *needle)
{
    jv_store *st = (jv_store *)0x1;
    char msg[256] = "";
    jv_err err = jv_store_open(path, o, &st, msg, sizeof(msg));
    printf("  %s: %s\n", jv_errname(err), msg);
    assert_int_equal(err, want);
    assert_null(st);
    assert_non_null(strstr(msg, needle));
}

/* What is at the path is not a database to open (a directory, a path
 * through a regular file), or not one to create or migrate without being
 * asked to: refused, and nothing is written. */
static void test_open_refusals(void **state)
{
    fx *f = *state;
    jv_store_opts o;
    jv_store_opts_default(&o);
    o.create = true;
    char *sub = st_path(f->dir, "sub");
    assert_int_equal(mkdir(sub, 0700), 0);
    expect_open(sub, &o, JV_EFOREIGN, "not a regular file");
    st_write_file(f->db, "", 0);
    char *through = st_path(f->db, "x.db"); /* node.db is a file */
    expect_open(through, &o, JV_EIO, "Not a directory");

    /* An empty file is a fresh database only when creating. */
    o.create = false;
    expect_open(f->db, &o, JV_ENOTFOUND, "create not requested");
    expect_open(f->db, NULL, JV_ENOTFOUND, "create not requested");
    /* An older schema migrates only on a writable open. */
    raw_exec(f->db, "PRAGMA application_id = 1246910035");
    size_t n0, n1;
    uint8_t *before = st_read_file(f->db, &n0);
    o.readonly = true;
    expect_open(f->db, &o, JV_ESTATE, "open it writable");
    uint8_t *after = st_read_file(f->db, &n1);
    assert_int_equal(n0, n1);
    assert_memory_equal(before, after, n0);
    /* Default options open what exists. */
    jv_store *st = NULL;
    assert_int_equal(jv_store_open(f->db, NULL, &st, NULL, 0), JV_OK);
    jv_store_close(st);
    free(before);
    free(after);
    free(sub);
    free(through);
}

/* A file cut short by whole pages (the header's page count says more),
 * a header whose page size field says 65536 (the value 1), and one that
 * only SQLite finds wrong. */
static void test_truncated_refused(void **state)
{
    fx *f = *state;
    make_store(f->db, 100);
    size_t n;
    uint8_t *p = st_read_file(f->db, &n);
    size_t page = (size_t)p[16] << 8 | p[17];
    assert_true(n / page > 4);
    st_write_file(f->db, p, n - 2 * page);
    expect_refused(f->db, JV_ECORRUPT, "truncated");
    p[16] = 0x00;
    p[17] = 0x01;
    st_write_file(f->db, p, n);
    expect_refused(f->db, JV_ECORRUPT, "65536-byte pages");
    /* A header this check passes (512-byte pages) but SQLite rejects as
     * not a database (255 reserved bytes a page leave too little room):
     * the header said SQLite, so the file is damaged, not foreign. */
    p[16] = 0x02;
    p[17] = 0x00;
    p[20] = 255;
    st_write_file(f->db, p, n);
    expect_refused(f->db, JV_ECORRUPT, "damaged database");
    free(p);
}

/* A node id of the wrong size in the metadata is damage: reported, and
 * no commit is signed under it. */
static void test_damaged_self_refused(void **state)
{
    fx *f = *state;
    make_store(f->db, 1);
    raw_exec(f->db, "UPDATE meta SET value = x'0102' WHERE key = 'self'");
    jv_store *st = st_open(f->db);
    jv_keypair kp;
    jv_id got;
    st_keypair(&kp, 1);
    assert_int_equal(jv_store_get_self(st, &got), JV_ECORRUPT);
    assert_non_null(strstr(jv_store_errmsg(st), "node id of 2 bytes"));
    assert_int_equal(jv_store_set_self(st, &kp.pk), JV_ECORRUPT);
    jv_intent in = st_counter("hits", 1);
    jv_write_group g = {.intents = &in, .n = 1};
    jv_commit_info ci;
    assert_int_equal(jv_store_commit_local(st, &kp, 5000, &g, 1, &ci),
                     JV_ECORRUPT);
    jv_store_close(st);
    assert_int_equal(raw_int(f->db, "SELECT count(*) FROM batch"), 1);
}

static jv_err count_config(void *arg, const jv_config_row *r)
{
    (void)r;
    (*(int *)arg)++;
    return JV_OK;
}

static int config_rows(jv_store *st)
{
    int n = 0;
    jv_err err = jv_store_config_list(st, jv_str_c(""), jv_str_c(""), 0,
                                      count_config, &n);
    assert_int_equal(err, JV_OK);
    return n;
}

/* Between jv_store_read_begin and _end the reader sees one snapshot, even
 * while another connection commits; after, it sees the commit. */
static void test_read_snapshot(void **state)
{
    fx *f = *state;
    make_store(f->db, 0);
    jv_keypair kp;
    st_keypair(&kp, 1);
    jv_store *w = st_open(f->db), *r = st_open(f->db);
    jv_intent in = st_config("a", "1", 100);
    assert_int_equal(st_commit(w, &kp, 1000, &in, 1, NULL), JV_OK);
    assert_int_equal(jv_store_read_begin(r), JV_OK);
    assert_int_equal(config_rows(r), 1);
    in = st_config("b", "2", 100);
    assert_int_equal(st_commit(w, &kp, 1001, &in, 1, NULL), JV_OK);
    assert_int_equal(config_rows(w), 2);
    assert_int_equal(config_rows(r), 1);
    jv_store_read_end(r);
    assert_int_equal(config_rows(r), 2);
    /* Pairs nest: an inner pair neither starts nor ends the snapshot. */
    assert_int_equal(jv_store_read_begin(r), JV_OK);
    assert_int_equal(config_rows(r), 2);
    assert_int_equal(jv_store_read_begin(r), JV_OK);
    in = st_config("c", "3", 100);
    assert_int_equal(st_commit(w, &kp, 1002, &in, 1, NULL), JV_OK);
    assert_int_equal(config_rows(r), 2);
    jv_store_read_end(r);
    assert_int_equal(config_rows(r), 2);
    jv_store_read_end(r);
    assert_int_equal(config_rows(r), 3);
    jv_store_read_end(r); /* one too many: nothing happens */
    assert_int_equal(config_rows(r), 3);
    jv_store_close(r);
    jv_store_close(w);
}

/* Another program holding the write lock: a write waits the busy timeout,
 * then reports EBUSY and changes nothing; once the lock is gone, the same
 * write succeeds. Statistics on a log_stats table gone: an error. */
static void test_busy_then_free(void **state)
{
    fx *f = *state;
    make_store(f->db, 0);
    raw_exec(f->db, "DELETE FROM meta WHERE key = 'self'");
    jv_store_opts o;
    jv_store_opts_default(&o);
    o.busy_timeout_ms = 20;
    jv_store *st = st_open_opts(f->db, &o);
    jv_keypair kp;
    jv_id got;
    st_keypair(&kp, 1);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(jv_store_set_self(st, &kp.pk), JV_EBUSY);
    assert_int_equal(jv_store_get_self(st, &got), JV_ENOTFOUND);
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(jv_store_set_self(st, &kp.pk), JV_OK);
    assert_int_equal(jv_store_get_self(st, &got), JV_OK);
    assert_memory_equal(got.b, kp.pk.b, JV_ID_LEN);

    jv_store_stats s;
    assert_int_equal(jv_store_stats_get(st, &s), JV_OK);
    assert_int_equal(sqlite3_exec(db, "DROP TABLE log_stats", NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(jv_store_stats_get(st, &s), JV_ESTORAGE);
    assert_non_null(strstr(jv_store_errmsg(st), "log_stats"));
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    jv_store_close(st);
}

static void *release_later(void *arg)
{
    sqlite3 *db = arg;
    usleep(300 * 1000);
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(db);
    return NULL;
}

/* A second connection opened while another holds the database for a
 * moment (the node's, when an export or a verify opens its own) waits the
 * busy timeout from its first read on, the header checks included, and
 * opens once the lock is gone. */
static void test_open_waits_for_a_lock(void **state)
{
    fx *f = *state;
    make_store(f->db, 0);
    sqlite3 *db = NULL;
    pthread_t th;
    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "PRAGMA locking_mode = EXCLUSIVE;"
                                  "BEGIN EXCLUSIVE;"
                                  "SELECT count(*) FROM meta",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(pthread_create(&th, NULL, release_later, db), 0);
    jv_store_opts o;
    jv_store_opts_default(&o);
    o.checked = true; /* as the node's second connections open */
    jv_store *st = NULL;
    char msg[256] = "";
    jv_err err = jv_store_open(f->db, &o, &st, msg, sizeof(msg));
    assert_int_equal(pthread_join(th, NULL), 0);
    if (err)
        fail_msg("open while locked: %s (%s)", jv_strerror(err), msg);
    jv_store_close(st);
}

/* Recording the node id writes the metadata row and the replica row in
 * one transaction: when the second fails, the first is not kept. With the
 * metadata gone, reads and writes of it fail. */
static void test_set_self_atomic(void **state)
{
    fx *f = *state;
    jv_store *st = st_open(f->db);
    jv_keypair kp;
    jv_id got;
    st_keypair(&kp, 1);
    raw_exec(f->db, "DROP TABLE replica");
    assert_int_equal(jv_store_set_self(st, &kp.pk), JV_ESTORAGE);
    assert_int_equal(jv_store_get_self(st, &got), JV_ENOTFOUND);
    raw_exec(f->db, "DROP TABLE meta");
    assert_int_equal(jv_store_set_self(st, &kp.pk), JV_ESTORAGE);
    char buf[8];
    size_t len;
    assert_int_equal(jv_store_meta_get(st, "self", buf, sizeof(buf), &len),
                     JV_ESTORAGE);
    assert_non_null(strstr(jv_store_errmsg(st), "no such table"));
    jv_store_close(st);
}

int main(void)
{
    jv_test_seed();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_process_init),
        cmocka_unit_test_setup_teardown(test_create_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stats_and_readonly, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_manual_checkpoint, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_empty_file_is_fresh, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_newer_version_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_foreign_app_id_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_foreign_no_app_id_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_not_sqlite_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_header_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_pages_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_fresh_version_zero_migrated, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_archive_migrated_exactly, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_failed_migration_changes_nothing,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_table_is_damage, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_open_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_damaged_self_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_read_snapshot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_busy_then_free, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_waits_for_a_lock, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_set_self_atomic, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
