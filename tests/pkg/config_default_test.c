/*
 * config_default_test.c - the config file jarvisd reads when none is named
 * (node/config.c, built here with JV_DEFAULT_CONFIG inside the build tree):
 * read when present, skipped when absent, never when --config '' or an
 * empty JARVIS_CONFIG says none; a file named explicitly must exist.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

#define MISSING JV_DEFAULT_CONFIG ".missing"

/* jv_config_load on argv (NULL-terminated, program name first). */
static jv_err load(jv_config *c, char **argv, char *msg, size_t len)
{
    int argc = 0;
    jv_config_action action;
    while (argv[argc])
        argc++;
    msg[0] = '\0';
    return jv_config_load(c, argc, argv, stdout, &action, msg, len);
}

static void write_default(const char *text)
{
    char dir[sizeof(JV_DEFAULT_CONFIG)];
    snprintf(dir, sizeof dir, "%s", JV_DEFAULT_CONFIG);
    *strrchr(dir, '/') = '\0';
    mkdir(dir, 0700);
    FILE *f = fopen(JV_DEFAULT_CONFIG, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    /* ctest sets JARVIS_CONFIG= for every test; this one needs it unset. */
    unsetenv("JARVIS_CONFIG");
    unlink(JV_DEFAULT_CONFIG);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unsetenv("JARVIS_CONFIG");
    unlink(JV_DEFAULT_CONFIG);
    return 0;
}

static void test_absent_default_is_skipped(void **state)
{
    (void)state;
    char msg[256];
    jv_config c;
    char *argv[] = {"jarvisd", NULL};
    assert_int_equal(load(&c, argv, msg, sizeof msg), JV_OK);
    assert_null(c.config_path);
    assert_string_equal(c.listen, "auto");
    jv_config_fini(&c);
}

static void test_present_default_is_read(void **state)
{
    (void)state;
    char msg[256];
    jv_config c;
    char *argv[] = {"jarvisd", NULL};
    write_default("name = from-default\npeer = tcp://alpha:7411\n");
    assert_int_equal(load(&c, argv, msg, sizeof msg), JV_OK);
    assert_string_equal(c.name, "from-default");
    assert_int_equal(c.peers.n, 1);
    assert_non_null(c.config_path);
    assert_string_equal(c.config_path, JV_DEFAULT_CONFIG);
    jv_config_fini(&c);

    /* Flags still win over it. */
    char *flag[] = {"jarvisd", "--name", "from-flag", NULL};
    assert_int_equal(load(&c, flag, msg, sizeof msg), JV_OK);
    assert_string_equal(c.name, "from-flag");
    jv_config_fini(&c);
}

static void test_empty_name_reads_none(void **state)
{
    (void)state;
    char msg[256];
    jv_config c;
    write_default("name = from-default\n");

    char *flag[] = {"jarvisd", "--config", "", NULL};
    assert_int_equal(load(&c, flag, msg, sizeof msg), JV_OK);
    assert_string_not_equal(c.name, "from-default");
    assert_null(c.config_path);
    jv_config_fini(&c);

    char *eq[] = {"jarvisd", "--config=", NULL};
    assert_int_equal(load(&c, eq, msg, sizeof msg), JV_OK);
    assert_string_not_equal(c.name, "from-default");
    jv_config_fini(&c);

    setenv("JARVIS_CONFIG", "", 1);
    char *none[] = {"jarvisd", NULL};
    assert_int_equal(load(&c, none, msg, sizeof msg), JV_OK);
    assert_string_not_equal(c.name, "from-default");
    assert_null(c.config_path);
    jv_config_fini(&c);
}

static void test_named_file_must_exist(void **state)
{
    (void)state;
    char msg[256];
    jv_config c;
    write_default("name = from-default\n");

    char *flag[] = {"jarvisd", "--config", MISSING, NULL};
    assert_int_equal(load(&c, flag, msg, sizeof msg), JV_EIO);
    assert_non_null(strstr(msg, MISSING));
    jv_config_fini(&c);

    setenv("JARVIS_CONFIG", MISSING, 1);
    char *none[] = {"jarvisd", NULL};
    assert_int_equal(load(&c, none, msg, sizeof msg), JV_EIO);
    assert_non_null(strstr(msg, MISSING));
    jv_config_fini(&c);
}

static void test_bad_default_is_an_error(void **state)
{
    (void)state;
    char msg[256];
    jv_config c;
    char *argv[] = {"jarvisd", NULL};
    write_default("no-such-setting = 1\n");
    assert_int_equal(load(&c, argv, msg, sizeof msg), JV_EINVAL);
    assert_non_null(strstr(msg, JV_DEFAULT_CONFIG ":1"));
    jv_config_fini(&c);
}

static void test_help_names_the_default(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    jv_config_usage(f);
    fclose(f);
    assert_non_null(strstr(text, "default: " JV_DEFAULT_CONFIG));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_absent_default_is_skipped, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_present_default_is_read, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_empty_name_reads_none, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_named_file_must_exist, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bad_default_is_an_error, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_help_names_the_default, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
