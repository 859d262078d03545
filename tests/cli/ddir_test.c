/*
 * ddir_test.c - jarvisctl finds the same default data dir, and the same
 * files in it, as jarvisd does (cli/ddir.c mirrors node/datadir.c, which
 * jarvisctl does not link).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "datadir.h"
#include "ddir.h"

static void same_default(void)
{
    char a[4096], b[4096];
    assert_int_equal(jv_datadir_default(a, sizeof a), JV_OK);
    assert_int_equal(jvc_ddir_default(b, sizeof b), JV_OK);
    assert_string_equal(a, b);
    /* Both refuse a buffer that is too small. */
    assert_int_equal(jv_datadir_default(a, 4), JV_ETOOBIG);
    assert_int_equal(jvc_ddir_default(b, 4), JV_ETOOBIG);
}

static void test_defaults(void **state)
{
    (void)state;
    setenv("HOME", "/home/someone", 1);
    unsetenv("JARVIS_DATA_DIR");
    unsetenv("XDG_DATA_HOME");
    same_default();
    setenv("XDG_DATA_HOME", "/xdg", 1);
    same_default();
    setenv("JARVIS_DATA_DIR", "/srv/jarvis", 1);
    same_default();
    char b[64];
    assert_int_equal(jvc_ddir_default(b, sizeof b), JV_OK);
    assert_string_equal(b, "/srv/jarvis");
    setenv("JARVIS_DATA_DIR", "", 1);
    unsetenv("HOME");
    same_default();
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(JVC_DDIR_ADMINKEY, JV_DATADIR_ADMINKEY);
    assert_string_equal(JVC_DDIR_APIADDR, JV_DATADIR_APIADDR);
    assert_string_equal(JVC_DDIR_LOCK, JV_DATADIR_LOCK);
}

static void test_locked(void **state)
{
    (void)state;
    char dir[] = "/tmp/jv_ddir_XXXXXX";
    char msg[256];
    int fd = -1;
    assert_non_null(mkdtemp(dir));
    assert_false(jvc_ddir_locked(dir));
    assert_int_equal(jv_datadir_lock(dir, &fd, msg, sizeof msg), JV_OK);
    assert_true(jvc_ddir_locked(dir));
    jv_datadir_unlock(fd);
    assert_false(jvc_ddir_locked(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, JV_DATADIR_LOCK);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_locked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
