/*
 * ui_browser_test.c - the dashboard in a real headless Chromium against a
 * real cluster of two jarvisd processes (tests/support/cluster.h).
 *
 * This program starts the cluster, waits until the two nodes reach each
 * other, and runs dashboard_test.mjs (puppeteer-core driving Debian's
 * chromium; tests/ui/setup.sh installed it under the build dir) with the
 * nodes' addresses and admin keys in its environment. The script does the
 * scenario of docs/dashboard.md ("Tests") and saves the screenshots under
 * $JV_UI_SHOTS; its exit status is the test's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cluster.h"

extern char **environ;

static jv_cluster C;

/* Both nodes see each other reachable. */
static bool reachable(void)
{
    for (size_t i = 0; i < C.n; i++) {
        json_t *c = jv_cluster_get_json(&C, i, "/v1/cluster");
        json_t *m = json_object_get(c, "members");
        size_t k, up = 0;
        json_t *e;
        json_array_foreach(m, k, e) up +=
            json_is_true(json_object_get(e, "reachable"));
        json_decref(c);
        if (up != C.n)
            return false;
    }
    return true;
}

static char *envf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *envf(const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof buf);
    char *s = strdup(buf);
    assert_non_null(s);
    return s;
}

static void test_dashboard(void **state)
{
    (void)state;
    const char *dir = getenv("JV_UI_DIR"), *shots = getenv("JV_UI_SHOTS");
    if (!dir || !shots)
        fail_msg("JV_UI_DIR and JV_UI_SHOTS must be set (ctest does)");
    static char *const flags[] = {"--sync-interval", "300", NULL};
    jv_cluster_opts o = {.n = 2, .flags = flags};
    if (jv_cluster_init(&C, &o) != 0 || jv_cluster_start_all(&C) != 0)
        fail_msg("cluster: %s", C.err);
    double t0 = jv_cluster_now_ms();
    while (!reachable()) {
        if (jv_cluster_now_ms() - t0 > 60000) {
            jv_cluster_dump_logs(&C);
            fail_msg("the two nodes did not reach each other in 60 s");
        }
        jv_cluster_sleep_ms(100);
    }

    /* Our environment (PATH, HOME...) and the test's own values. */
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 8, sizeof(char *));
    assert_non_null(env);
    memcpy(env, environ, n * sizeof(char *));
    char *own[] = {
        envf("JV_UI_URL_A=%s", C.node[0].t.url),
        envf("JV_UI_URL_B=%s", C.node[1].t.url),
        envf("JV_UI_ADMIN_A=%s", C.node[0].t.admin_key),
        envf("JV_UI_ADMIN_B=%s", C.node[1].t.admin_key),
        envf("JV_UI_SHOTS=%s", shots),
    };
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        env[n++] = own[i];
    char *script = envf("%s/dashboard_test.mjs", dir);
    char *argv[] = {"/usr/bin/env", "node", script, NULL};
    jv_proc_result r;
    int rc = jv_proc_run(argv, env, 900000, &r);
    printf("%s", r.out ? r.out : "");
    fprintf(stderr, "%s", r.err ? r.err : "");
    int status = r.status;
    bool timed_out = r.timed_out;
    /* Released before any assertion: a failure jumps out of the test. */
    jv_proc_result_fini(&r);
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        free(own[i]);
    free(script);
    free(env);
    if (rc != 0 || status != 0) {
        jv_cluster_dump_logs(&C);
        fail_msg("dashboard_test.mjs: exit %d%s", status,
                 timed_out ? " (timed out)" : "");
    }
    jv_cluster_fini(&C);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dashboard),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    jv_cluster_fini(&C);
    return rc;
}
