/*
 * api_files_test.c - what a real jarvisd writes on its host:
 *
 *   - started with umask 000, every file in its data dir (database, WAL,
 *     keys, lock, api.addr, backups) is 0600 and every directory 0700;
 *     so is what `jarvisctl init` makes;
 *   - POST /v1/backup writes only into the backup dir (--backup-dir,
 *     default DATA_DIR/backups): a path outside it, through .. or through
 *     a symlink, is 400 and creates nothing; files it did not make
 *     (NAME.tmp, -wal, -journal) are left alone; an existing name, even a
 *     symlink, is 409 and untouched;
 *   - four backups to one name at once: one 201, three 409, one good
 *     backup (it verifies).
 */
#include <dirent.h>
#include <limits.h>
#include <pthread.h>
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

#include "apitest.h"
#include "backup.h"

/* Every entry under path: files 0600, directories 0700. Returns how many
 * files were checked. */
static size_t check_modes(const char *path)
{
    size_t files = 0;
    DIR *d = opendir(path);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char p[PATH_MAX];
        struct stat sb;
        snprintf(p, sizeof p, "%s/%s", path, e->d_name);
        assert_int_equal(lstat(p, &sb), 0);
        if (S_ISDIR(sb.st_mode)) {
            if ((sb.st_mode & 0777) != 0700)
                fail_msg("%s: mode %o, expected 700", p, sb.st_mode & 0777);
            files += check_modes(p);
        } else if (S_ISREG(sb.st_mode)) {
            if ((sb.st_mode & 0777) != 0600)
                fail_msg("%s: mode %o, expected 600", p, sb.st_mode & 0777);
            files++;
        }
    }
    closedir(d);
    return files;
}

static bool exists(const char *p)
{
    struct stat sb;
    return lstat(p, &sb) == 0;
}

static void test_modes_whatever_the_umask(void **state)
{
    (void)state;
    api_node M;
    mode_t old = umask(0);
    api_start(&M, NULL);
    umask(old);
    json_decref(API_OK(&M, 200, "POST", "/v1/counters/m/increment",
                       M.admin_token, "{}"));
    json_decref(API_OK(&M, 201, "POST", "/v1/backup", M.admin_token,
                       "{\"path\":\"m.db\"}"));
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/jarvis.db-wal", M.node.dir);
    assert_true(exists(p)); /* checked while the node runs */
    struct stat sb;
    assert_int_equal(stat(M.node.dir, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
    /* jarvis.db, -wal, -shm, node.key, node.id, admin.key, jarvisd.lock,
     * api.addr, backups/m.db at least. */
    assert_true(check_modes(M.node.dir) >= 9);
    assert_int_equal(api_stop(&M), 0);

    /* jarvisctl init sets no umask: its files get explicit modes. */
    char bin[600], dir[PATH_MAX];
    jv_proc_result r;
    assert_true(jv_bin_path("jarvisctl", bin, sizeof bin));
    snprintf(dir, sizeof dir, "%s/by-init", M.node.root);
    char *argv[] = {bin, "init", dir, NULL};
    old = umask(0);
    int rc = jv_proc_run(argv, NULL, 30000, &r);
    umask(old);
    assert_int_equal(rc, 0);
    assert_int_equal(r.status, 0);
    jv_proc_result_fini(&r);
    assert_int_equal(stat(dir, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
    /* jarvis.db, node.key, node.id, admin.key at least. */
    assert_true(check_modes(dir) >= 4);
    api_cleanup(&M);
}

static void write_file(const char *p, const char *text)
{
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static void expect_file(const char *p, const char *text)
{
    char buf[128] = "";
    FILE *f = fopen(p, "r");
    if (!f)
        fail_msg("%s is gone", p);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    assert_string_equal(buf, text);
}

static void backup_refused(api_node *a, const char *path, const char *what)
{
    jv_http_resp r;
    API_REQ(a, &r, "POST", "/v1/backup", a->admin_token,
            api_fmt("{\"path\":\"%s\"}", path));
    API_CHECK_ERROR(&r, 400, "invalid_field");
    if (what && !strstr(r.body, what))
        fail_msg("%s: '%s' does not say '%s'", path, r.body, what);
    jv_http_resp_fini(&r);
}

static void test_backup_confined(void **state)
{
    (void)state;
    api_node M;
    char out[PATH_MAX], bk[PATH_MAX], p[PATH_MAX + 64], q[PATH_MAX + 64];
    api_start(&M, NULL);
    api_tmpdir("jvoutside", out, sizeof out);
    assert_non_null(realpath(M.node.dir, bk));
    strcat(bk, "/backups");
    struct stat sb;
    assert_int_equal(stat(bk, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);

    /* Outside: refused, nothing made there. */
    snprintf(p, sizeof p, "%s/authorized_keys", out);
    backup_refused(&M, p, "backup dir");
    assert_false(exists(p));
    backup_refused(&M, "../escape.db", "backup dir");
    snprintf(p, sizeof p, "%s/../escape.db", bk);
    assert_false(exists(p));
    snprintf(p, sizeof p, "%s/../../x.db", bk);
    backup_refused(&M, p, "backup dir");
    /* Through a symlink to a directory outside. */
    snprintf(p, sizeof p, "%s/out", bk);
    assert_int_equal(symlink(out, p), 0);
    backup_refused(&M, "out/via-link.db", "backup dir");
    snprintf(p, sizeof p, "%s/via-link.db", out);
    assert_false(exists(p));

    /* Files the node did not make are left as they are. */
    static const char *const theirs[] = {
        "pre.db.tmp", "pre.db.tmp-wal", "pre.db.tmp-journal", "pre.db-journal"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s", bk, theirs[i]);
        write_file(p, theirs[i]);
    }
    snprintf(p, sizeof p, "%s/pre.db", bk);
    json_t *b = API_OK(&M, 201, "POST", "/v1/backup", M.admin_token,
                       api_fmt("{\"path\":\"%s\"}", p));
    assert_string_equal(api_str(b, "path"), p);
    json_decref(b);
    assert_int_equal(stat(p, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    for (size_t i = 0; i < 4; i++) {
        snprintf(q, sizeof q, "%s/%s", bk, theirs[i]);
        expect_file(q, theirs[i]);
    }
    /* An existing name, even a dangling symlink, is 409 and untouched. */
    API_ERR(&M, 409, "conflict", "POST", "/v1/backup", M.admin_token,
            "{\"path\":\"pre.db\"}");
    snprintf(p, sizeof p, "%s/planted", out);
    snprintf(q, sizeof q, "%s/link.db", bk);
    assert_int_equal(symlink(p, q), 0);
    API_ERR(&M, 409, "conflict", "POST", "/v1/backup", M.admin_token,
            "{\"path\":\"link.db\"}");
    assert_false(exists(p));
    /* No temporary left behind by any of this. */
    DIR *d = opendir(bk);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n > 4 && !strcmp(e->d_name + n - 4, ".tmp") &&
            strcmp(e->d_name, "pre.db.tmp") != 0)
            fail_msg("left behind: %s", e->d_name);
    }
    closedir(d);
    assert_int_equal(api_stop(&M), 0);
    api_cleanup(&M);
}

typedef struct {
    const char *url, *token, *body;
    long status;
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    jv_http_client c = {0};
    jv_http_resp resp = {0};
    if (jv_http_client_init(&c, r->url) == 0 &&
        jv_http_do(&c, "POST", "/v1/backup", r->token, r->body, strlen(r->body),
                   &resp) == 0)
        r->status = resp.status;
    jv_http_resp_fini(&resp);
    jv_http_client_fini(&c);
    return NULL;
}

static void test_backup_concurrent(void **state)
{
    (void)state;
    api_node M;
    char bk[PATH_MAX], p[PATH_MAX + 64], body[64];
    api_tmpdir("jvbackups", bk, sizeof bk);
    char *extra[] = {"--backup-dir", bk, NULL};
    api_start(&M, extra);
    for (int i = 0; i < 50; i++)
        json_decref(API_OK(&M, 200, "PUT", api_fmt("/v1/config/c%d", i),
                           M.admin_token, "{\"value\":\"some text\"}"));
    for (int round = 0; round < 3; round++) {
        enum {
            N = 4
        };
        racer rs[N];
        pthread_t t[N];
        snprintf(body, sizeof body, "{\"path\":\"same-%d.db\"}", round);
        for (int i = 0; i < N; i++) {
            rs[i] = (racer){M.node.url, M.admin_token, body, 0};
            assert_int_equal(pthread_create(&t[i], NULL, race, &rs[i]), 0);
        }
        int created = 0, conflict = 0;
        for (int i = 0; i < N; i++) {
            assert_int_equal(pthread_join(t[i], NULL), 0);
            created += rs[i].status == 201;
            conflict += rs[i].status == 409;
        }
        if (created != 1 || conflict != N - 1)
            fail_msg("round %d: %d created, %d conflicts", round, created,
                     conflict);
        /* The one written is a good backup, in the configured dir. */
        snprintf(p, sizeof p, "%s/same-%d.db", bk, round);
        jv_store *st = NULL;
        jv_store_opts o;
        jv_store_opts_default(&o);
        o.readonly = true;
        char msg[256];
        if (jv_store_open(p, &o, &st, msg, sizeof msg) != JV_OK)
            fail_msg("%s: %s", p, msg);
        jv_verify_report rep;
        assert_int_equal(jv_store_verify(st, &rep), JV_OK);
        assert_true(jv_verify_ok(&rep));
        jv_store_close(st);
    }
    assert_int_equal(api_stop(&M), 0);
    api_cleanup(&M);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_modes_whatever_the_umask),
        cmocka_unit_test(test_backup_confined),
        cmocka_unit_test(test_backup_concurrent),
    };
    if (jv_http_global_init() != 0)
        return 1;
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    jv_http_global_fini();
    return rc;
}
