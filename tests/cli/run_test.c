/*
 * run_test.c - `make run`'s script (scripts/run-node.sh) prints its banner
 * only once the node answers, with the address it really serves, and no
 * build chatter; Ctrl-C (here SIGINT to the script) stops the node
 * cleanly. The script is given the built binaries (no build) and a
 * temporary data dir.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "ctl.h"

#define DEADLINE_MS 60000

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf = calloc(1, 1 << 20);
    assert_non_null(buf);
    if (f != NULL) {
        buf[fread(buf, 1, (1 << 20) - 1, f)] = '\0';
        fclose(f);
    }
    return buf;
}

static void test_banner_once_up(void **state)
{
    (void)state;
    ctl_ctx C;
    ctl_init(&C);
    char script[700], bindir[600], data[700], log[700], addr_path[800];
    char env_bin[700], env_data[800], env_home[700], env_path[1100];
    const char *src = getenv("JV_SOURCE_DIR"), *bins = getenv("JV_BIN_DIR");
    assert_non_null(src);
    assert_non_null(bins);
    snprintf(script, sizeof script, "%s/scripts/run-node.sh", src);
    snprintf(bindir, sizeof bindir, "%s", bins);
    snprintf(data, sizeof data, "%s/parent/data", C.home);
    snprintf(log, sizeof log, "%s/run.log", C.home);
    snprintf(env_bin, sizeof env_bin, "JARVIS_RUN_BIN_DIR=%s", bindir);
    snprintf(env_data, sizeof env_data, "JARVIS_RUN_DATA_DIR=%s", data);
    snprintf(env_home, sizeof env_home, "HOME=%s", C.home);
    const char *path = getenv("PATH");
    snprintf(env_path, sizeof env_path, "PATH=%s",
             path ? path : "/usr/bin:/bin");
    char *env[] = {env_bin,
                   env_data,
                   env_home,
                   env_path,
                   "JARVISD_FLAGS=--api-listen 127.0.0.1:0 --listen off",
                   "JARVIS_CONFIG=",
                   NULL};
    char *argv[] = {"/bin/bash", script, NULL};
    jv_proc p;
    jv_proc_result r;
    assert_int_equal(jv_proc_spawn(&p, argv, env, log), 0);

    char *out = NULL;
    for (int waited = 0;; waited += 100) {
        free(out);
        out = slurp(log);
        if (strstr(out, "jarvisd is running"))
            break;
        if (waited >= DEADLINE_MS)
            fprintf(stderr, "no banner:\n%s\n", out);
        assert_true(waited < DEADLINE_MS);
        sleep_ms(100);
    }
    /* The node said it started before the banner, which names the
     * address it serves: it answers there at once. */
    const char *started = strstr(out, "started, data in");
    const char *banner = strstr(out, "jarvisd is running");
    assert_non_null(started);
    assert_true(started < banner);
    assert_null(strstr(out, "Built target"));
    snprintf(addr_path, sizeof addr_path, "%s/api.addr", data);
    char *addr = slurp(addr_path);
    addr[strcspn(addr, "\n")] = '\0';
    assert_true(addr[0] != '\0');
    assert_non_null(strstr(banner, addr));
    free(addr);
    free(out);
    C.data_dir = data;
    CTL(&C, &r, "health");
    CTL_EXPECT(&r, 0);
    jv_proc_result_fini(&r);

    jv_proc_signal(&p, SIGINT);
    assert_int_equal(jv_proc_wait(&p, 30000, &r), 0);
    out = slurp(log);
    if (r.status != 0)
        fprintf(stderr, "run-node.sh exited %d:\n%s\n", r.status, out);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(out, "stopped"));
    free(out);
    jv_proc_result_fini(&r);
    ctl_fini(&C);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_banner_once_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
