/*
 * store_test.c - opening, identity, metadata, and every refusal at open
 * (each leaving the file byte-for-byte as it was), migrations.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
                     19); /* 17, and the two of cluster keys */
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

int main(void)
{
    jv_test_seed();
    const struct CMUnitTest tests[] = {
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
        cmocka_unit_test_setup_teardown(test_failed_migration_changes_nothing,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_table_is_damage, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
