/*
 * datadir_test.c - a restore signs its succession with the key the data
 * dir's database signs under, or not at all (docs/operations.md):
 *
 *   - restored once: origin.key names a new origin;
 *   - origin.key deleted by hand, then restored again: refused (it would
 *     sign a second successor of the node's identity, which every peer
 *     refuses as an equivocation), the database and key files unchanged;
 *   - origin.key replaced by another valid key: refused likewise;
 *   - origin.key put back: the restore works.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "backup.h"
#include "batch.h"
#include "datadir.h"
#include "store.h"

static char dir[] = "/tmp/jv_datadir_XXXXXX";

static void path_of(const char *name, char *out, size_t cap)
{
    assert_int_equal(jv_datadir_path(dir, name, out, cap), JV_OK);
}

/* The database's origin, the data dir opened as at a start. */
static jv_id db_origin(void)
{
    char db[4096];
    jv_store_opts o;
    jv_store *st = NULL;
    jv_id self;
    path_of(JV_DATADIR_DB, db, sizeof db);
    jv_store_opts_default(&o);
    o.readonly = true;
    assert_int_equal(jv_store_open(db, &o, &st, NULL, 0), JV_OK);
    assert_int_equal(jv_store_get_self(st, &self), JV_OK);
    jv_store_close(st);
    return self;
}

static void read_file(const char *path, char *buf, size_t cap, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    *n = fread(buf, 1, cap, f);
    fclose(f);
}

static void write_file(const char *path, const char *buf, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, n, f), n);
    fclose(f);
}

static void test_restore_needs_its_origin_key(void **state)
{
    (void)state;
    char msg[512], backup[4096], origin[4096], other[4096];
    char saved[256], stranger[256];
    size_t nsaved = 0, nstranger = 0;
    jv_keypair node, org;
    jv_store *st = NULL;
    jv_datadir_info info;
    assert_non_null(mkdtemp(dir));
    memset(&info, 0, sizeof info);
    assert_int_equal(
        jv_datadir_prepare(dir, NULL, &node, &org, &st, &info, msg, sizeof msg),
        JV_OK);
    path_of("b.db", backup, sizeof backup);
    assert_int_equal(jv_store_backup(st, backup), JV_OK);
    jv_store_close(st);
    jv_keypair_wipe(&org);

    /* Restored once: a new origin, in origin.key. */
    assert_int_equal(jv_datadir_restore(dir, backup, msg, sizeof msg), JV_OK);
    path_of(JV_DATADIR_ORIGIN, origin, sizeof origin);
    read_file(origin, saved, sizeof saved, &nsaved);
    jv_id first = db_origin();
    assert_false(jv_id_eq(&first, &node.pk));

    /* A careless admin deletes origin.key: the node key would sign a
     * second successor of the identity. */
    assert_int_equal(unlink(origin), 0);
    msg[0] = '\0';
    assert_int_equal(jv_datadir_restore(dir, backup, msg, sizeof msg),
                     JV_EINVAL);
    assert_non_null(strstr(msg, "restore refused"));
    assert_non_null(strstr(msg, JV_DATADIR_ORIGIN));
    jv_id now = db_origin();
    assert_true(jv_id_eq(&now, &first));
    assert_int_not_equal(access(origin, F_OK), 0);

    /* Replaced by another valid key (another data dir's). */
    char dir2[] = "/tmp/jv_datadir2_XXXXXX";
    jv_keypair node2;
    assert_non_null(mkdtemp(dir2));
    assert_int_equal(jv_datadir_prepare(dir2, NULL, &node2, NULL, NULL, &info,
                                        msg, sizeof msg),
                     JV_OK);
    assert_int_equal(jv_datadir_path(dir2, JV_DATADIR_KEY, other, sizeof other),
                     JV_OK);
    read_file(other, stranger, sizeof stranger, &nstranger);
    write_file(origin, stranger, nstranger);
    assert_int_equal(chmod(origin, 0600), 0);
    assert_int_equal(jv_datadir_restore(dir, backup, msg, sizeof msg),
                     JV_EINVAL);
    now = db_origin();
    assert_true(jv_id_eq(&now, &first));

    /* Put back: the restore carries on for the origin it signed under. */
    write_file(origin, saved, nsaved);
    assert_int_equal(jv_datadir_restore(dir, backup, msg, sizeof msg), JV_OK);
    now = db_origin();
    assert_false(jv_id_eq(&now, &first));
    assert_false(jv_id_eq(&now, &node.pk));
    jv_keypair_wipe(&node);
    jv_keypair_wipe(&node2);

    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s %s", dir, dir2);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_restore_needs_its_origin_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
