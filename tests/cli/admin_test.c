/*
 * admin_test.c - jarvisctl's admin commands against a real jarvisd: keys,
 * sessions, roles and refused credentials (exit 3), backup, verify, the
 * default credential and address from the data dir, and an offline
 * restore of a backup.
 */
#include <curl/curl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "ctl.h"

static ctl_ctx C;
static jv_test_node N;

static int setup(void **state)
{
    (void)state;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    ctl_init(&C);
    if (jv_test_node_start(&N, NULL) != 0)
        return -1;
    C.node = N.url;
    C.key = N.admin_key;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int st = N.running ? jv_test_node_stop(&N) : 0;
    jv_test_node_cleanup(&N);
    ctl_fini(&C);
    curl_global_cleanup();
    return st == 0 ? 0 : -1;
}

/* Runs jarvisctl --json with the arguments (at most 8), expects `code`,
 * returns the parsed output. */
static json_t *json_cmd(int code, ...)
{
    const char *a[9] = {NULL};
    va_list ap;
    va_start(ap, code);
    for (size_t i = 0; i < 8 && (a[i] = va_arg(ap, const char *)) != NULL; i++)
        ;
    va_end(ap);
    jv_proc_result r;
    CTL(&C, &r, "--json", a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]);
    CTL_EXPECT(&r, code);
    json_t *j = ctl_json(&r);
    jv_proc_result_fini(&r);
    return j;
}
#define JSON_CMD(code, ...) json_cmd((code), __VA_ARGS__, (char *)NULL)

/* Runs a command as `key`, expects code; returns stderr (malloc'd). */
static char *as_key(const char *key, int code, const char *a, const char *b,
                    const char *c, const char *d)
{
    jv_proc_result r;
    const char *saved = C.key;
    C.key = key;
    CTL(&C, &r, a, b, c, d);
    C.key = saved;
    CTL_EXPECT(&r, code);
    char *err = strdup(r.err);
    jv_proc_result_fini(&r);
    return err;
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    char *buf = arg;
    size_t have = strlen(buf), len = size * n;
    if (have + len >= 4096)
        return 0;
    memcpy(buf + have, p, len);
    buf[have + len] = '\0';
    return len;
}

/* A session made the way a script makes one: POST /v1/sessions. */
static json_t *make_session(const char *key)
{
    char url[512], body[512], answer[4096] = "";
    long status = 0;
    snprintf(url, sizeof url, "%s/v1/sessions", N.url);
    snprintf(body, sizeof body, "{\"api_key\":\"%s\"}", key);
    CURL *h = curl_easy_init();
    assert_non_null(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, answer);
    assert_int_equal(curl_easy_perform(h), CURLE_OK);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    assert_int_equal(status, 201);
    json_t *j = json_loads(answer, 0, NULL);
    assert_non_null(j);
    return j;
}

static void test_keys_and_roles(void **state)
{
    (void)state;
    json_t *j = JSON_CMD(0, "keys", "create", "ci", "--role", "writer");
    const char *writer = json_string_value(json_object_get(j, "key"));
    const char *writer_id = json_string_value(json_object_get(j, "id"));
    assert_non_null(writer);
    assert_int_equal(strncmp(writer, "jvk_", 4), 0);
    assert_int_equal(strncmp(writer_id, "k_", 2), 0);
    assert_string_equal(json_string_value(json_object_get(j, "role")),
                        "writer");
    char wkey[256], wid[64];
    snprintf(wkey, sizeof wkey, "%s", writer);
    snprintf(wid, sizeof wid, "%s", writer_id);
    json_decref(j);

    j = JSON_CMD(0, "keys", "create", "ro", "-r", "reader");
    char rkey[256];
    snprintf(rkey, sizeof rkey, "%s",
             json_string_value(json_object_get(j, "key")));
    json_decref(j);

    /* Human form: the key once, with a warning to store it. */
    jv_proc_result r;
    CTL(&C, &r, "keys", "create", "ops", "--role", "admin");
    CTL_EXPECT(&r, 0);
    assert_true(ctl_has(r.out, "jvk_"));
    assert_true(ctl_has(r.err, "shown only this once"));
    jv_proc_result_fini(&r);

    j = JSON_CMD(0, "keys", "ls");
    json_t *keys = json_object_get(j, "keys");
    bool found = false;
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k)
    {
        assert_null(json_object_get(k, "key")); /* never the secret */
        if (strcmp(json_string_value(json_object_get(k, "name")), "ci") == 0) {
            found = true;
            assert_true(json_is_null(json_object_get(k, "revoked_at")));
        }
    }
    assert_true(found);
    json_decref(j);
    CTL(&C, &r, "keys", "ls");
    CTL_EXPECT(&r, 0);
    assert_true(ctl_has(r.out, "ROLE"));
    assert_true(ctl_has(r.out, wid));
    jv_proc_result_fini(&r);

    /* Name taken: the node refuses, operation failed. */
    CTL(&C, &r, "keys", "create", "ci", "--role", "reader");
    CTL_EXPECT(&r, 1);
    assert_true(ctl_has(r.err, "409"));
    jv_proc_result_fini(&r);

    /* Roles: the writer writes data, but may not manage keys (3). */
    free(as_key(wkey, 0, "counters", "incr", "by-writer", NULL));
    char *err = as_key(wkey, 3, "keys", "ls", NULL, NULL);
    assert_true(ctl_has(err, "403"));
    assert_true(ctl_has(err, "role"));
    free(err);
    /* The reader reads, and may not write. */
    free(as_key(rkey, 0, "counters", "get", "by-writer", NULL));
    free(as_key(rkey, 0, "status", NULL, NULL, NULL));
    err = as_key(rkey, 3, "counters", "incr", "by-reader", NULL);
    assert_true(ctl_has(err, "forbidden"));
    free(err);
    free(as_key(rkey, 3, "verify", NULL, NULL, NULL));
    free(as_key(rkey, 3, "backup", "/tmp/never-written.db", NULL, NULL));

    /* A wrong key: 401, exit 3, with a hint naming where it came from. */
    err = as_key("jvk_k_000000000000_wrong", 3, "status", NULL, NULL, NULL);
    assert_true(ctl_has(err, "401"));
    assert_true(ctl_has(err, "JARVIS_API_KEY"));
    free(err);

    /* Revoked: the key stops working at once. */
    j = JSON_CMD(0, "keys", "revoke", wid);
    assert_true(json_is_true(json_object_get(j, "revoked")));
    json_decref(j);
    free(as_key(wkey, 3, "counters", "get", "by-writer", NULL));
    CTL(&C, &r, "keys", "revoke", "k_000000000000");
    CTL_EXPECT(&r, 1);
    jv_proc_result_fini(&r);

    /* Each key admin action left an audit entry. */
    j = JSON_CMD(0, "audit", "query", "--action", "key.create");
    assert_true(json_array_size(json_object_get(j, "entries")) >= 4);
    json_decref(j);
    j = JSON_CMD(0, "audit", "query", "--action", "key.revoke");
    assert_int_equal(json_array_size(json_object_get(j, "entries")), 1);
    json_decref(j);
}

static void test_sessions(void **state)
{
    (void)state;
    json_t *s = make_session(N.admin_key);
    char id[128];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(s, "id")));
    json_decref(s);

    json_t *j = JSON_CMD(0, "sessions", "ls");
    bool found = false;
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(j, "sessions"), i, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "id")), id) == 0) {
            found = true;
            assert_string_equal(json_string_value(json_object_get(e, "role")),
                                "admin");
        }
    }
    assert_true(found);
    json_decref(j);

    jv_proc_result r;
    CTL(&C, &r, "sessions", "ls");
    CTL_EXPECT(&r, 0);
    assert_true(ctl_has(r.out, id));
    assert_true(ctl_has(r.out, "EXPIRES"));
    jv_proc_result_fini(&r);

    CTL(&C, &r, "sessions", "revoke", id);
    CTL_EXPECT(&r, 0);
    assert_true(ctl_has(r.out, "revoked session"));
    jv_proc_result_fini(&r);
    CTL(&C, &r, "sessions", "revoke", id);
    CTL_EXPECT(&r, 1);
    jv_proc_result_fini(&r);
}

/* Without --node or a key, jarvisctl finds both in the data dir. */
static void test_defaults_from_data_dir(void **state)
{
    (void)state;
    jv_proc_result r;
    const char *node = C.node, *key = C.key;
    C.node = NULL;
    C.key = NULL;
    CTL(&C, &r, "--data-dir", N.dir, "--json", "status");
    CTL_EXPECT(&r, 0);
    json_decref(ctl_json(&r));
    jv_proc_result_fini(&r);

    C.data_dir = N.dir;
    CTL(&C, &r, "health");
    CTL_EXPECT(&r, 0);
    jv_proc_result_fini(&r);
    C.data_dir = NULL;

    char keyfile[700];
    snprintf(keyfile, sizeof keyfile, "%s/admin.key", N.dir);
    C.node = node;
    CTL(&C, &r, "--key-file", keyfile, "keys", "ls");
    CTL_EXPECT(&r, 0);
    jv_proc_result_fini(&r);
    CTL(&C, &r, "--api-key", key, "keys", "ls");
    CTL_EXPECT(&r, 0);
    assert_true(ctl_has(r.err, "process listings"));
    jv_proc_result_fini(&r);
    C.key = key;
}

static void test_backup_verify_restore(void **state)
{
    (void)state;
    char backup[PATH_MAX + 32], dir[PATH_MAX], outside[700];
    struct stat sb;
    /* A plain name is a file in the node's backup dir. */
    assert_non_null(realpath(N.dir, dir));
    snprintf(backup, sizeof backup, "%s/backups/node.db", dir);

    json_decref(JSON_CMD(0, "counters", "incr", "kept", "7"));
    json_t *j = JSON_CMD(0, "backup", "node.db");
    assert_string_equal(json_string_value(json_object_get(j, "path")), backup);
    assert_true(json_integer_value(json_object_get(j, "bytes")) > 0);
    json_decref(j);
    assert_int_equal(stat(backup, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);

    jv_proc_result r;
    CTL(&C, &r, "backup", backup);
    CTL_EXPECT(&r, 1); /* exists */
    assert_true(ctl_has(r.err, "409"));
    jv_proc_result_fini(&r);
    /* Anywhere else: refused, nothing written. */
    snprintf(outside, sizeof outside, "%s/elsewhere.db", C.home);
    CTL(&C, &r, "backup", outside);
    CTL_EXPECT(&r, 1);
    assert_true(ctl_has(r.err, "backup dir"));
    jv_proc_result_fini(&r);
    assert_int_equal(stat(outside, &sb), -1);

    j = JSON_CMD(0, "verify");
    assert_true(json_is_true(json_object_get(j, "ok")));
    assert_string_equal(json_string_value(json_object_get(j, "integrity")),
                        "ok");
    assert_true(json_integer_value(json_object_get(j, "batches")) >= 1);
    assert_int_equal(json_integer_value(json_object_get(j, "bad_signatures")),
                     0);
    assert_true(json_is_true(json_object_get(j, "state_matches")));
    json_decref(j);
    CTL(&C, &r, "verify");
    CTL_EXPECT(&r, 0);
    assert_true(ctl_has(r.out, "equals a replay of the log"));
    jv_proc_result_fini(&r);

    /* Written after the backup: gone once it is restored. */
    json_decref(JSON_CMD(0, "counters", "incr", "lost"));

    CTL(&C, &r, "restore", backup, "--data-dir", N.dir);
    CTL_EXPECT(&r, 1); /* the node runs */
    assert_true(ctl_has(r.err, "a node is running"));
    jv_proc_result_fini(&r);

    assert_int_equal(jv_test_node_stop(&N), 0);
    CTL(&C, &r, "restore", backup, "--data-dir", N.dir, "--json");
    CTL_EXPECT(&r, 0);
    j = ctl_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "restored_from")),
                        backup);
    json_decref(j);
    jv_proc_result_fini(&r);

    assert_int_equal(jv_test_node_restart(&N, NULL), 0);
    C.node = N.url; /* a new port */
    j = JSON_CMD(0, "counters", "get", "kept");
    assert_int_equal(json_integer_value(json_object_get(j, "total")), 7);
    json_decref(j);
    CTL(&C, &r, "counters", "get", "lost");
    CTL_EXPECT(&r, 1);
    jv_proc_result_fini(&r);
}

/* A node on a Unix socket, found by --node unix:... or through api.addr. */
static void test_unix_socket(void **state)
{
    (void)state;
    jv_test_node u;
    char listen[600], url[620];
    snprintf(listen, sizeof listen, "unix:%s/api.sock", C.home);
    char *extra[] = {"--api-listen", listen, NULL};
    assert_int_equal(jv_test_node_start(&u, extra), 0);
    assert_string_equal(u.url, listen);

    jv_proc_result r;
    const char *node = C.node, *key = C.key;
    C.key = u.admin_key;
    snprintf(url, sizeof url, "%s", listen);
    C.node = url;
    CTL(&C, &r, "--json", "status");
    CTL_EXPECT(&r, 0);
    json_decref(ctl_json(&r));
    jv_proc_result_fini(&r);

    C.node = NULL;
    C.key = NULL;
    CTL(&C, &r, "--data-dir", u.dir, "counters", "incr", "over-unix");
    CTL_EXPECT(&r, 0);
    assert_string_equal(r.out, "over-unix = 1\n");
    jv_proc_result_fini(&r);
    C.node = node;
    C.key = key;

    assert_int_equal(jv_test_node_stop(&u), 0);
    jv_test_node_cleanup(&u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_and_roles),
        cmocka_unit_test(test_sessions),
        cmocka_unit_test(test_defaults_from_data_dir),
        cmocka_unit_test(test_unix_socket),
        cmocka_unit_test(test_backup_verify_restore),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
