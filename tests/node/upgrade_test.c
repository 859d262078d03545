/*
 * upgrade_test.c - a data dir written by release 0.1.0 opens on this
 * release: it migrates, verifies, and serves the same export.
 *
 * tests/fixtures/datadir-0.1.0 was made by jarvisd 0.1.0 (two nodes,
 * alpha and beta, trusting each other and synced, with writes of every
 * kind: counters up and down and one at 2^53, audit entries with UTF-8,
 * config sets of both nodes on one key, archive values added concurrently
 * on one key, an add then remove, API keys, peers). export.json is what
 * alpha's 0.1.0 answered to GET /v1/export; this is its data dir.
 *
 * And the way back (docs/operations.md, "Upgrading a cluster"): a data dir
 * of a newer schema than the build's, which is what an older release
 * finds after an upgrade migrated it, is refused at start with a reason
 * and left as it was. jarvisd --version names the schema it writes and
 * the peer protocol it speaks.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "apitest.h"
#include "store.h"
#include "wire.h"

static const char *const files[] = {"jarvis.db", "node.id", "node.key",
                                    "admin.key", "cluster.key"};

static void fixture_path(const char *name, char *out, size_t len)
{
    const char *src = getenv("JV_SOURCE_DIR");
    assert_non_null(src);
    assert_true((size_t)snprintf(out, len, "%s/tests/fixtures/datadir-0.1.0/%s",
                                 src, name) < len);
}

static void copy_in(const char *name, const char *dir)
{
    char from[1024], to[1024], buf[65536];
    fixture_path(name, from, sizeof(from));
    assert_true((size_t)snprintf(to, sizeof(to), "%s/%s", dir, name) <
                sizeof(to));
    int in = open(from, O_RDONLY | O_CLOEXEC);
    assert_true(in >= 0);
    int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    assert_true(out >= 0);
    ssize_t n;
    while ((n = read(in, buf, sizeof(buf))) > 0)
        assert_int_equal(write(out, buf, (size_t)n), n);
    assert_int_equal(n, 0);
    close(in);
    close(out);
}

static int user_version(const char *db_path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    int v = -1;
    assert_int_equal(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL),
                     SQLITE_OK);
    assert_int_equal(
        sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL), SQLITE_OK);
    if (sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

/* Opening the test's admin session is an admin action, so the node added
 * its audit entry after alpha's last operation (seq 17) of the fixture. */
static void drop_new_sessions(json_t *audit)
{
    for (size_t i = json_array_size(audit); i-- > 0;) {
        json_t *e = json_array_get(audit, i);
        if (strcmp(json_string_value(json_object_get(e, "action")),
                   "session.create") == 0 &&
            json_integer_value(json_object_get(e, "seq")) > 17)
            json_array_remove(audit, i);
    }
}

static void test_opens_migrates_verifies_same_export(void **state)
{
    (void)state;
    api_node a;
    char db[1024], key[1024], path[1024];
    memset(&a, 0, sizeof(a));
    api_prepare(&a);
    assert_true(mkdir(a.node.dir, 0700) == 0 || errno == EEXIST);
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        copy_in(files[i], a.node.dir);
    snprintf(db, sizeof(db), "%s/jarvis.db", a.node.dir);
    snprintf(key, sizeof(key), "%s/cluster.key", a.node.dir);
    assert_int_equal(user_version(db), 1);

    char *const extra[] = {"--cluster-key-file", key, "--listen",
                           "tcp://127.0.0.1:0", NULL};
    api_restart(&a, extra);

    /* The same state, byte for byte in meaning: every kind, every value,
     * the archive's concurrent values and its causal context. */
    json_error_t jerr;
    fixture_path("export.json", path, sizeof(path));
    json_t *want = json_load_file(path, 0, &jerr);
    assert_non_null(want);
    json_t *got = API_OK(&a, 200, "GET", "/v1/export", a.admin_token, NULL);
    drop_new_sessions(json_object_get(got, "audit"));
    if (!json_equal(want, got)) {
        char *g = json_dumps(got, JSON_SORT_KEYS | JSON_INDENT(1));
        fprintf(stderr, "export after the upgrade differs:\n%s\n", g);
        free(g);
        fail();
    }
    json_decref(got);

    json_t *v = API_OK(&a, 200, "POST", "/v1/verify", a.admin_token, NULL);
    assert_true(json_is_true(json_object_get(v, "ok")));
    json_decref(v);

    /* Writes work on the migrated database and count on top of the old. */
    json_t *c = API_OK(&a, 200, "POST", "/v1/counters/requests/increment",
                       a.admin_token, "{\"by\":1}");
    json_decref(c);
    c = API_OK(&a, 200, "GET", "/v1/counters/requests", a.admin_token, NULL);
    assert_int_equal(json_integer_value(json_object_get(c, "total")), 11);
    json_decref(c);

    assert_int_equal(api_stop(&a), 0);
    assert_int_equal(user_version(db), JV_STORE_SCHEMA_VERSION);
    json_decref(want);
    api_cleanup(&a);
}

static void set_user_version(const char *db_path, int v)
{
    sqlite3 *db = NULL;
    char sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v);
    assert_int_equal(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

/* The whole file, malloc'd; its length in *len. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    char *p = malloc((size_t)n + 1);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return p;
}

static void test_newer_schema_refused_unchanged(void **state)
{
    (void)state;
    api_node a;
    char db[1024], key[1024], bin[512], want[160];
    memset(&a, 0, sizeof(a));
    api_prepare(&a);
    assert_true(mkdir(a.node.dir, 0700) == 0 || errno == EEXIST);
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        copy_in(files[i], a.node.dir);
    snprintf(db, sizeof(db), "%s/jarvis.db", a.node.dir);
    snprintf(key, sizeof(key), "%s/cluster.key", a.node.dir);
    char *const extra[] = {"--cluster-key-file", key, "--listen",
                           "tcp://127.0.0.1:0", NULL};
    /* Migrated by this build, then marked as a newer release's. */
    api_restart(&a, extra);
    assert_int_equal(api_stop(&a), 0);
    set_user_version(db, JV_STORE_SCHEMA_VERSION + 1);
    size_t n0, n1;
    char *before = slurp(db, &n0);

    jv_proc_result r;
    assert_true(jv_bin_path("jarvisd", bin, sizeof(bin)));
    char *const argv[] = {bin,
                          "--config",
                          "",
                          "--data-dir",
                          a.node.dir,
                          "--listen",
                          "tcp://127.0.0.1:0",
                          "--api-listen",
                          "127.0.0.1:0",
                          "--cluster-key-file",
                          key,
                          NULL};
    assert_int_equal(jv_proc_run(argv, NULL, 20000, &r), 0);
    snprintf(want, sizeof(want),
             "schema version %d is newer than this build's %d: use a newer "
             "Jarvis",
             JV_STORE_SCHEMA_VERSION + 1, JV_STORE_SCHEMA_VERSION);
    printf("jarvisd on a newer data dir: exit %d: %s", r.status, r.err);
    assert_false(r.timed_out);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, want));
    jv_proc_result_fini(&r);

    char *after = slurp(db, &n1);
    assert_int_equal(n0, n1);
    assert_memory_equal(before, after, n0);
    free(before);
    free(after);
    assert_int_equal(user_version(db), JV_STORE_SCHEMA_VERSION + 1);
    api_cleanup(&a);
}

static void test_version_names_protocol_and_schema(void **state)
{
    (void)state;
    char bin[512], want[160];
    jv_proc_result r;
    assert_true(jv_bin_path("jarvisd", bin, sizeof(bin)));
    char *const argv[] = {bin, "--version", NULL};
    assert_int_equal(jv_proc_run(argv, NULL, 20000, &r), 0);
    snprintf(want, sizeof(want),
             "jarvisd %s (peer protocol %d, data dir schema %d)\n", JV_VERSION,
             JV_WIRE_VERSION, JV_STORE_SCHEMA_VERSION);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, want);
    jv_proc_result_fini(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_opens_migrates_verifies_same_export),
        cmocka_unit_test(test_newer_schema_refused_unchanged),
        cmocka_unit_test(test_version_names_protocol_and_schema),
    };
    jv_http_global_init();
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    jv_http_global_fini();
    return rc;
}
