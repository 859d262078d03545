/*
 * settings_test.c - jarvisd refuses bad settings at start: every numeric
 * setting out of its documented range (flag, config file, environment),
 * and a session API on a non-loopback address without --insecure-api
 * (docs/operations.md). Each refusal is exit status 2 with a message
 * naming the setting, and leaves no data dir behind. An address another
 * process listens on fails the start (exit 1) with "address in use".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "apitest.h"

/* Runs jarvisd on a fresh data dir with args (NULL-terminated) and env
 * (NULL or a NULL-terminated list added to the environment). */
static void run(char *const args[], char *const env[], jv_proc_result *r,
                char *dir, size_t dirlen)
{
    char root[512], bin[512];
    char *argv[32];
    size_t a = 0;
    api_tmpdir("jvset", root, sizeof root);
    snprintf(dir, dirlen, "%s/data", root);
    assert_true(jv_bin_path("jarvisd", bin, sizeof bin));
    argv[a++] = bin;
    argv[a++] = (char *)"--data-dir";
    argv[a++] = dir;
    argv[a++] = (char *)"--listen";
    argv[a++] = (char *)"off";
    for (size_t i = 0; args[i] && a < 31; i++)
        argv[a++] = args[i];
    argv[a] = NULL;
    assert_int_equal(jv_proc_run(argv, env, 20000, r), 0);
    assert_false(r->timed_out);
}

/* Expects the refusal: status 2, the message naming `what`, and no data
 * dir made. */
static void refused(char *const args[], char *const env[], const char *what,
                    const char *also)
{
    jv_proc_result r;
    char dir[600];
    struct stat st;
    run(args, env, &r, dir, sizeof dir);
    if (r.status != 2 || !strstr(r.err, what) || (also && !strstr(r.err, also)))
        fail_msg("%s: expected exit 2 naming '%s'%s%s, got %d: %s", args[0],
                 what, also ? " and " : "", also ? also : "", r.status, r.err);
    assert_int_not_equal(stat(dir, &st), 0);
    jv_proc_result_fini(&r);
}

#define ARGS(...) ((char *const[]){__VA_ARGS__, NULL})

static void test_numbers_out_of_range(void **state)
{
    (void)state;
    /* The reported wrap: now + ttl * 1000 overflowed. */
    refused(ARGS("--session-ttl", "18446744073709551"), NULL, "session-ttl",
            "1 to 604800");
    refused(ARGS("--session-ttl", "0"), NULL, "session-ttl", "1 to 604800");
    refused(ARGS("--session-ttl", "604801"), NULL, "session-ttl", NULL);
    refused(ARGS("--session-ttl", "-1"), NULL, "session-ttl", NULL);
    refused(ARGS("--session-ttl", "99999999999999999999999"), NULL,
            "session-ttl", NULL);
    refused(ARGS("--max-body", "0"), NULL, "max-body", NULL);
    refused(ARGS("--max-body", "1G"), NULL, "max-body", NULL);
    refused(ARGS("--sync-interval", "9"), NULL, "sync-interval", NULL);
    refused(ARGS("--peer-timeout", "3600001"), NULL, "peer-timeout", NULL);
    refused(ARGS("--max-clock-skew", "0"), NULL, "max-clock-skew", NULL);
    refused(ARGS("--max-message", "1M"), NULL, "max-message", NULL);
    refused(ARGS("--fanout", "1001"), NULL, "fanout", NULL);
    refused(ARGS("--rate-limit", "1000001"), NULL, "rate-limit", NULL);
    refused(ARGS("--rate-burst", "10000001"), NULL, "rate-burst", NULL);
    refused(ARGS("--max-conns", "1000001"), NULL, "max-conns", NULL);
    refused(ARGS("--max-conns-per-addr", "1000001"), NULL, "max-conns-per-addr",
            NULL);
    refused(ARGS("--idle-timeout", "99"), NULL, "idle-timeout", NULL);
    refused(ARGS("--idle-timeout-busy", "0"), NULL, "idle-timeout-busy", NULL);
    refused(ARGS("--header-timeout", "0"), NULL, "header-timeout", NULL);
    refused(ARGS("--request-timeout", "3600001"), NULL, "request-timeout",
            NULL);
    refused(ARGS("--send-timeout", "0"), NULL, "send-timeout", NULL);
    refused(ARGS("--stream-buffer", "1k"), NULL, "stream-buffer", NULL);
    refused(ARGS("--stream-buffer", "5G"), NULL, "stream-buffer", NULL);
    /* The same ranges from the environment and from a config file. */
    refused(ARGS("--name", "x"), ARGS("JARVIS_SEND_TIMEOUT=5"),
            "JARVIS_SEND_TIMEOUT", "100 to 3600000");
    char root[512], conf[600];
    api_tmpdir("jvsetconf", root, sizeof root);
    snprintf(conf, sizeof conf, "%s/jarvisd.conf", root);
    FILE *f = fopen(conf, "w");
    assert_non_null(f);
    fprintf(f, "# limits\nsession-ttl = 3600\nheader-timeout = 50\n");
    fclose(f);
    refused(ARGS("--config", conf), NULL, "jarvisd.conf:3", "header-timeout");
}

/* The bounds themselves are accepted, and a session made with the longest
 * TTL works (the wrapped one was 401 on first use). */
static void test_bounds_accepted(void **state)
{
    (void)state;
    api_node N;
    char *extra[] = {(char *)"--session-ttl",
                     (char *)"604800",
                     (char *)"--max-conns",
                     (char *)"16",
                     (char *)"--send-timeout",
                     (char *)"100",
                     (char *)"--stream-buffer",
                     (char *)"1M",
                     NULL};
    api_start(&N, extra);
    json_t *j = API_OK(&N, 200, "GET", "/v1/status", N.admin_token, NULL);
    json_decref(j);
    assert_int_equal(api_stop(&N), 0);
    api_cleanup(&N);
}

static void test_api_listen_not_loopback(void **state)
{
    (void)state;
    refused(ARGS("--api-listen", "0.0.0.0:0"), NULL, "0.0.0.0:0",
            "--insecure-api");
    refused(ARGS("--api-listen", "[::]:0"), NULL, "[::]:0", "--insecure-api");
    refused(ARGS("--name", "x"), ARGS("JARVIS_API_LISTEN=0.0.0.0:0"),
            "0.0.0.0:0", "--insecure-api");
    /* With --insecure-api it serves. */
    api_node N;
    char *extra[] = {(char *)"--api-listen", (char *)"0.0.0.0:0",
                     (char *)"--insecure-api", NULL};
    api_start(&N, extra);
    json_decref(API_OK(&N, 200, "GET", "/health", NULL, NULL));
    assert_int_equal(api_stop(&N), 0);
    api_cleanup(&N);
}

/* A port another process listens on: the start fails (exit 1) and says
 * so, for the session API and for the peer listener. */
static void test_address_in_use(void **state)
{
    (void)state;
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(fd, 1), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    char api[64], peer[80], dir[600];
    snprintf(api, sizeof api, "127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
    snprintf(peer, sizeof peer, "tcp://%s", api);
    char *const runs[][5] = {{(char *)"--api-listen", api, NULL},
                             {(char *)"--api-listen", (char *)"127.0.0.1:0",
                              (char *)"--listen", peer, NULL}};
    for (size_t i = 0; i < 2; i++) {
        jv_proc_result r;
        run(runs[i], NULL, &r, dir, sizeof dir);
        if (r.status != 1 || !strstr(r.err, "address in use") ||
            !strstr(r.err, api))
            fail_msg("expected exit 1, '%s: address in use', got %d: %s", api,
                     r.status, r.err);
        jv_proc_result_fini(&r);
    }
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbers_out_of_range),
        cmocka_unit_test(test_bounds_accepted),
        cmocka_unit_test(test_api_listen_not_loopback),
        cmocka_unit_test(test_address_in_use),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
