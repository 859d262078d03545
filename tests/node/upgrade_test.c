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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_opens_migrates_verifies_same_export),
    };
    jv_http_global_init();
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    jv_http_global_fini();
    return rc;
}
