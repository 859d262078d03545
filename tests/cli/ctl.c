#include "ctl.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define MAX_ARGS 64
#define MAX_ENV  16
#define RUN_MS   30000

void ctl_init(ctl_ctx *c)
{
    memset(c, 0, sizeof *c);
    assert_int_equal(jv_test_tmpdir("jvhome", c->home, sizeof c->home), 0);
}

void ctl_fini(ctl_ctx *c)
{
    jv_test_rmtree(c->home);
}

/* Fills argv and env (static storage of the caller) from the list. */
static void build(ctl_ctx *c, va_list ap, char **argv, char **env,
                  char bufs[][1024])
{
    static char bin[512];
    size_t a = 0, e = 0, b = 0;
    assert_true(jv_bin_path("jarvisctl", bin, sizeof bin));
    argv[a++] = bin;
    char *s;
    while ((s = va_arg(ap, char *)) != NULL) {
        assert_true(a < MAX_ARGS - 1);
        argv[a++] = s;
    }
    argv[a] = NULL;
    const char *path = getenv("PATH");
    snprintf(bufs[b], 1024, "PATH=%s", path ? path : "/usr/bin:/bin");
    env[e++] = bufs[b++];
    snprintf(bufs[b], 1024, "HOME=%s", c->home);
    env[e++] = bufs[b++];
    env[e++] = (char *)"TZ=UTC";
    env[e++] = (char *)"LC_ALL=C";
    static const char *const pass[] = {"ASAN_OPTIONS", "UBSAN_OPTIONS",
                                       "LSAN_OPTIONS", "TMPDIR"};
    for (size_t i = 0; i < sizeof pass / sizeof pass[0]; i++) {
        const char *v = getenv(pass[i]);
        if (v != NULL) {
            snprintf(bufs[b], 1024, "%s=%s", pass[i], v);
            env[e++] = bufs[b++];
        }
    }
    const char *names[] = {"JARVIS_NODE", "JARVIS_API_KEY", "JARVIS_DATA_DIR"};
    const char *vals[] = {c->node, c->key, c->data_dir};
    for (size_t i = 0; i < 3; i++)
        if (vals[i] != NULL) {
            snprintf(bufs[b], 1024, "%s=%s", names[i], vals[i]);
            env[e++] = bufs[b++];
        }
    env[e] = NULL;
}

void ctl_run(ctl_ctx *c, jv_proc_result *r, ...)
{
    char *argv[MAX_ARGS], *env[MAX_ENV];
    char bufs[MAX_ENV][1024];
    va_list ap;
    va_start(ap, r);
    build(c, ap, argv, env, bufs);
    va_end(ap);
    assert_int_equal(jv_proc_run(argv, env, RUN_MS, r), 0);
    assert_false(r->timed_out);
}

void ctl_spawn(ctl_ctx *c, jv_proc *p, ...)
{
    char *argv[MAX_ARGS], *env[MAX_ENV];
    char bufs[MAX_ENV][1024];
    va_list ap;
    va_start(ap, p);
    build(c, ap, argv, env, bufs);
    va_end(ap);
    assert_int_equal(jv_proc_spawn(p, argv, env, NULL), 0);
}

void ctl_spawn_log(ctl_ctx *c, jv_proc *p, const char *log, ...)
{
    char *argv[MAX_ARGS], *env[MAX_ENV];
    char bufs[MAX_ENV][1024];
    va_list ap;
    va_start(ap, log);
    build(c, ap, argv, env, bufs);
    va_end(ap);
    assert_int_equal(jv_proc_spawn(p, argv, env, log), 0);
}

void ctl_expect(const jv_proc_result *r, int code, const char *file, int line)
{
    if (r->status == code && !r->signaled)
        return;
    fprintf(stderr,
            "%s:%d: jarvisctl exited %d%s, expected %d\n--- stdout ---\n%s"
            "--- stderr ---\n%s--------------\n",
            file, line, r->status, r->signaled ? " (signal)" : "", code, r->out,
            r->err);
    fail();
}

json_t *ctl_json(const jv_proc_result *r)
{
    json_error_t e;
    json_t *j = json_loads(r->out, JSON_DECODE_ANY, &e);
    if (j == NULL) {
        fprintf(stderr, "stdout is not JSON (%s):\n%s\n", e.text, r->out);
        fail();
    }
    return j;
}

bool ctl_has(const char *haystack, const char *needle)
{
    return haystack != NULL && strstr(haystack, needle) != NULL;
}
