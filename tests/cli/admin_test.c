/*
 * admin_test.c - jarvisctl's admin commands against a real jarvisd: keys,
 * sessions, roles and refused credentials (exit 3), backup, verify, the
 * default credential and address from the data dir, and an offline
 * restore of a backup.
 */
#define _GNU_SOURCE /* strcasestr */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
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
    assert_true(ctl_has(err, "use a key with the admin role"));
    free(err);
    /* The reader reads, and may not write. */
    free(as_key(rkey, 0, "counters", "get", "by-writer", NULL));
    free(as_key(rkey, 0, "status", NULL, NULL, NULL));
    err = as_key(rkey, 3, "counters", "incr", "by-reader", NULL);
    assert_true(ctl_has(err, "forbidden"));
    assert_true(ctl_has(err, "use a key with the writer role"));
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
    /* A key that is in the backup, revoked after it was taken. */
    json_t *j = JSON_CMD(0, "keys", "create", "gone-after", "--role", "writer");
    char gkey[256], gid[64];
    snprintf(gkey, sizeof gkey, "%s",
             json_string_value(json_object_get(j, "key")));
    snprintf(gid, sizeof gid, "%s",
             json_string_value(json_object_get(j, "id")));
    json_decref(j);
    j = JSON_CMD(0, "backup", "node.db");
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
    json_decref(JSON_CMD(0, "keys", "revoke", gid));

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
    /* The revocation outlives the restore, although the backup has the
     * key active. */
    free(as_key(gkey, 3, "status", NULL, NULL, NULL));
    j = JSON_CMD(0, "keys", "ls");
    size_t i;
    json_t *row;
    bool seen = false;
    json_t *rows = json_is_array(j) ? j : json_object_get(j, "keys");
    json_array_foreach(rows, i, row)
    {
        if (!strcmp(json_string_value(json_object_get(row, "id")), gid)) {
            seen = true;
            assert_false(json_is_null(json_object_get(row, "revoked_at")));
        }
    }
    assert_true(seen);
    json_decref(j);
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

/* -- a fake node that records what it is sent ------------------------------ */

typedef struct {
    pid_t pid;
    int port;
    char log[700]; /* every request's header block, appended */
} fake_node;

/* Listens on 127.0.0.1:port (0: any free port) in a child process that
 * answers every request 200 {} and logs its headers. False when the port
 * is taken. */
static bool fake_start(fake_node *f, int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port)};
    socklen_t len = sizeof a;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    assert_true(fd >= 0);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 16)) {
        close(fd);
        return false;
    }
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    f->port = ntohs(a.sin_port);
    snprintf(f->log, sizeof f->log, "%s/fake-%d.log", C.home, f->port);
    FILE *lf = fopen(f->log, "w");
    assert_non_null(lf);
    fclose(lf);
    f->pid = fork();
    assert_true(f->pid >= 0);
    if (f->pid == 0) {
        static const char ans[] = "HTTP/1.1 200 OK\r\nContent-Type: "
                                  "application/json\r\nContent-Length: 2\r\n"
                                  "Connection: close\r\n\r\n{}";
        for (;;) {
            int c = accept(fd, NULL, NULL);
            if (c < 0)
                continue;
            char buf[8192];
            size_t n = 0;
            ssize_t k;
            while (n < sizeof buf - 1 &&
                   (k = read(c, buf + n, sizeof buf - 1 - n)) > 0) {
                n += (size_t)k;
                buf[n] = '\0';
                if (strstr(buf, "\r\n\r\n"))
                    break;
            }
            FILE *o = fopen(f->log, "a");
            if (o) {
                fwrite(buf, 1, n, o);
                fclose(o);
            }
            if (write(c, ans, sizeof ans - 1) < 0) {
                /* the client went away: nothing to do */
            }
            close(c);
        }
    }
    close(fd);
    return true;
}

/* Stops it; returns what it logged (malloc'd). */
static char *fake_stop(fake_node *f)
{
    kill(f->pid, SIGKILL);
    waitpid(f->pid, NULL, 0);
    FILE *lf = fopen(f->log, "r");
    assert_non_null(lf);
    char *buf = calloc(1, 65536);
    assert_non_null(buf);
    size_t n = fread(buf, 1, 65535, lf);
    buf[n] = '\0';
    fclose(lf);
    return buf;
}

static bool has_auth(const char *log)
{
    return strcasestr(log, "authorization:") != NULL;
}

/* A data dir's admin key goes only to the node running on that data dir:
 * not to the default address, a stale api.addr, JARVIS_NODE or --node. */
static void test_dir_key_only_to_its_node(void **state)
{
    (void)state;
    jv_proc_result r;
    char dir[700], addr[800], url[64], line[80], keyfile[800];
    const char *node = C.node, *key = C.key;
    snprintf(dir, sizeof dir, "%s/stopped", C.home);
    CTL(&C, &r, "init", dir);
    CTL_EXPECT(&r, 0);
    jv_proc_result_fini(&r);
    C.key = NULL;
    C.node = NULL;

    /* Whatever listens on the default address gets nothing. */
    fake_node def;
    bool have_default = fake_start(&def, 7410);
    if (!have_default)
        printf("  127.0.0.1:7410 is taken: default address not checked\n");
    CTL(&C, &r, "--data-dir", dir, "status");
    CTL_EXPECT(&r, 4);
    assert_true(ctl_has(r.err, "node not running"));
    assert_true(ctl_has(r.err, dir));
    jv_proc_result_fini(&r);
    if (have_default) {
        char *log = fake_stop(&def);
        assert_false(has_auth(log));
        free(log);
    }

    /* A stale api.addr (a node that crashed), JARVIS_NODE, --node. */
    fake_node f;
    assert_true(fake_start(&f, 0));
    snprintf(url, sizeof url, "http://127.0.0.1:%d", f.port);
    snprintf(addr, sizeof addr, "%s/api.addr", dir);
    snprintf(line, sizeof line, "%s\n", url);
    FILE *af = fopen(addr, "w");
    assert_non_null(af);
    fputs(line, af);
    fclose(af);
    CTL(&C, &r, "--data-dir", dir, "status");
    CTL_EXPECT(&r, 4);
    assert_true(ctl_has(r.err, "node not running"));
    jv_proc_result_fini(&r);
    C.node = url;
    CTL(&C, &r, "--data-dir", dir, "status");
    CTL_EXPECT(&r, 4);
    jv_proc_result_fini(&r);
    C.node = NULL;
    CTL(&C, &r, "--data-dir", dir, "--node", url, "status");
    CTL_EXPECT(&r, 4);
    jv_proc_result_fini(&r);
    /* A running node's key goes to it, not to another --node. */
    CTL(&C, &r, "--data-dir", N.dir, "--node", url, "status");
    CTL_EXPECT(&r, 2);
    assert_true(ctl_has(r.err, "goes only to the node running there"));
    jv_proc_result_fini(&r);
    char *log = fake_stop(&f);
    assert_false(has_auth(log));
    free(log);

    /* Named explicitly, the key goes where it is told (and the fake node
     * does see it: the checks above could fail). */
    assert_true(fake_start(&f, 0));
    snprintf(url, sizeof url, "http://127.0.0.1:%d", f.port);
    snprintf(keyfile, sizeof keyfile, "%s/admin.key", dir);
    CTL(&C, &r, "--key-file", keyfile, "--node", url, "status");
    jv_proc_result_fini(&r);
    log = fake_stop(&f);
    assert_true(has_auth(log));
    free(log);
    C.node = node;
    C.key = key;
}

/* keys create --cluster, the SCOPE column, keys revoke of a cluster key
 * and --cluster for an id the node has not seen. */
static void test_cluster_keys_cli(void **state)
{
    (void)state;
    jv_proc_result r;
    json_t *j = JSON_CMD(0, "keys", "create", "--cluster", "--name", "fleet",
                         "--role", "reader");
    assert_string_equal(json_string_value(json_object_get(j, "scope")),
                        "cluster");
    char id[32], key[160];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(j, "id")));
    snprintf(key, sizeof key, "%s",
             json_string_value(json_object_get(j, "key")));
    json_decref(j);
    /* The name once: NAME or --name. */
    CTL(&C, &r, "keys", "create", "two", "--name", "names", "--role", "reader");
    CTL_EXPECT(&r, 2);
    jv_proc_result_fini(&r);
    CTL(&C, &r, "keys", "create", "--role", "reader");
    CTL_EXPECT(&r, 2);
    jv_proc_result_fini(&r);
    /* The human output says the scope. */
    CTL(&C, &r, "keys", "create", "--cluster", "fleet-2", "--role", "writer");
    CTL_EXPECT(&r, 0);
    assert_true(ctl_has(r.out, "cluster"));
    jv_proc_result_fini(&r);
    free(as_key(key, 0, "status", NULL, NULL, NULL));
    free(as_key(key, 3, "counters", "incr", "by-cluster-reader", NULL));
    CTL(&C, &r, "keys", "ls");
    CTL_EXPECT(&r, 0);
    assert_true(ctl_has(r.out, "SCOPE"));
    assert_true(ctl_has(r.out, "cluster"));
    assert_true(ctl_has(r.out, "node"));
    jv_proc_result_fini(&r);
    CTL(&C, &r, "keys", "revoke", id);
    CTL_EXPECT(&r, 0);
    jv_proc_result_fini(&r);
    free(as_key(key, 3, "status", NULL, NULL, NULL));
    /* A cluster key's id not seen here: revoked with --cluster only. */
    CTL(&C, &r, "keys", "revoke", "k_00000000abcd");
    CTL_EXPECT(&r, 1);
    jv_proc_result_fini(&r);
    CTL(&C, &r, "keys", "revoke", "--cluster", "k_00000000abcd");
    CTL_EXPECT(&r, 0);
    assert_true(ctl_has(r.out, "every node"));
    jv_proc_result_fini(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_and_roles),
        cmocka_unit_test(test_cluster_keys_cli),
        cmocka_unit_test(test_sessions),
        cmocka_unit_test(test_defaults_from_data_dir),
        cmocka_unit_test(test_unix_socket),
        cmocka_unit_test(test_backup_verify_restore),
        cmocka_unit_test(test_dir_key_only_to_its_node),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
