/*
 * down_test.c - a peer that stops is shown as such at once, with why:
 *
 *   - three nodes with a 60 s exchange timeout (so that no timeout can be
 *     what tells): node 1 stopped with SIGTERM, then killed with SIGKILL,
 *     is "connection refused" (or "connection closed") on the other two
 *     within seconds, in GET /v1/peers, jarvisctl peers ls, jarvisctl
 *     members and the health reason, with one log line for the change;
 *     restarted, it is "reachable" again well within the timeout;
 *   - a peer address nobody listens on is "connection refused" from the
 *     start, and its retries log nothing more.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "nettest.h"

static jv_cluster C;
static jv_rng R;

static const char *peer_state(size_t i, const char *addr, char *out,
                              size_t outlen)
{
    json_t *p = nt_peer(&C, i, addr);
    snprintf(out, outlen, "%s",
             p ? json_string_value(json_object_get(p, "state")) : "absent");
    json_decref(p);
    return out;
}

static bool is_down(const char *st)
{
    return strcmp(st, "connection refused") == 0 ||
           strcmp(st, "connection closed") == 0;
}

/* Waits until node i shows addr in a state that `want` accepts; the time
 * it took (ms). */
static double wait_state(size_t i, const char *addr, bool (*want)(const char *),
                         int limit_ms)
{
    char st[128];
    double t0 = jv_cluster_now_ms();
    while (!want(peer_state(i, addr, st, sizeof st))) {
        if (jv_cluster_now_ms() - t0 > limit_ms)
            NT_FAIL(&C, "node %zu shows %s as \"%s\" after %.0f ms", i, addr,
                    st, jv_cluster_now_ms() - t0);
        jv_cluster_sleep_ms(20);
    }
    return jv_cluster_now_ms() - t0;
}

static bool is_reachable(const char *st)
{
    return strcmp(st, "reachable") == 0;
}

/* The output of `jarvisctl a [b]` on node i (b may be NULL); its exit
 * status in *rc. The caller frees. */
static char *ctl(size_t i, int *rc, const char *a, const char *b)
{
    jv_proc_result r;
    NT_OK(&C, jv_cluster_ctl(&C, i, &r, a, b, (char *)NULL));
    char *out = strdup(r.out ? r.out : "");
    *rc = r.status;
    jv_proc_result_fini(&r);
    return out;
}

/* The line of `text` that mentions `addr`, and whether it also says
 * `what`. */
static bool line_says(const char *text, const char *addr, const char *what)
{
    const char *at = strstr(text, addr);
    if (!at)
        return false;
    const char *start = at, *end = strchr(at, '\n');
    while (start > text && start[-1] != '\n')
        start--;
    size_t n = end ? (size_t)(end - start) : strlen(start);
    char line[1024];
    snprintf(line, sizeof line, "%.*s", (int)n, start);
    return strstr(line, what) != NULL;
}

/* How many lines of node i's log say "peer <addr> unreachable". */
static int unreachable_lines(size_t i, const char *addr)
{
    char needle[128], line[2048];
    int n = 0;
    snprintf(needle, sizeof needle, "peer %s unreachable", addr);
    FILE *f = fopen(C.node[i].t.log, "r");
    assert_non_null(f);
    while (fgets(line, sizeof line, f))
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

/* Node 1 goes (SIGTERM, or SIGKILL): nodes 0 and 2 say so at once and
 * why, everywhere; back, it is reachable again. */
static void stop_and_back(bool kill)
{
    const char *a1 = C.node[1].listen;
    char st[128];
    int before = unreachable_lines(0, a1), rc;

    double t0 = jv_cluster_now_ms();
    if (kill)
        jv_cluster_kill(&C, 1);
    else
        NT_CHECK(&C, jv_cluster_stop(&C, 1) == 0);
    double stopped = jv_cluster_now_ms() - t0;
    double d0 = wait_state(0, a1, is_down, nt_ms(5000));
    double d2 = wait_state(2, a1, is_down, nt_ms(5000));
    printf("%s: node 1 shown as \"%s\" after %.0f ms on node 0, %.0f ms on "
           "node 2 (stopping took %.0f ms; exchange timeout 60000 ms)\n",
           kill ? "SIGKILL" : "SIGTERM", peer_state(0, a1, st, sizeof st),
           stopped + d0, stopped + d2, stopped);

    json_t *p = nt_peer(&C, 0, a1);
    char *dump = p ? json_dumps(p, JSON_COMPACT) : NULL;
    printf("node 0's entry: %s\n", dump ? dump : "(none)");
    free(dump);
    NT_CHECK(&C, p && json_is_false(json_object_get(p, "reachable")));
    NT_CHECK(&C,
             p && is_down(json_string_value(json_object_get(p, "last_error"))));
    NT_CHECK(&C, p && json_is_string(json_object_get(p, "unreachable_since")));
    json_decref(p);

    char *out = ctl(0, &rc, "peers", "ls");
    if (!line_says(out, a1, "connection "))
        printf("peers ls:\n%s", out);
    NT_CHECK(&C, rc == 0 && line_says(out, a1, "connection "));
    free(out);
    out = ctl(0, &rc, "members", NULL);
    if (!line_says(out, a1, "connection "))
        printf("members:\n%s", out);
    NT_CHECK(&C, line_says(out, a1, "connection "));
    free(out);
    out = ctl(0, &rc, "--json", "health");
    json_t *h = json_loads(out, 0, NULL);
    const char *why = json_string_value(json_object_get(
        json_object_get(json_object_get(h, "components"), "replication"),
        "reason"));
    printf("health: %s\n", why ? why : "(none)");
    NT_CHECK(&C, why && line_says(why, a1, "(connection "));
    json_decref(h);
    free(out);
    /* One line for the change; two if it was seen "closed" (the process
     * exiting, its listening socket still there) and then "refused". */
    int lines = unreachable_lines(0, a1) - before;
    printf("log lines saying it is unreachable: %d\n", lines);
    NT_CHECK(&C, lines == 1 || lines == 2);

    NT_OK(&C, jv_cluster_start(&C, 1));
    t0 = jv_cluster_now_ms();
    wait_state(0, a1, is_reachable, nt_ms(20000));
    wait_state(2, a1, is_reachable, nt_ms(20000));
    printf("back: reachable again %.0f ms after it served /health\n",
           jv_cluster_now_ms() - t0);
}

static void test_stopped_peer_shown_at_once(void **state)
{
    (void)state;
    static char *const flags[] = {"--peer-timeout", "60000", NULL};
    jv_cluster_opts o = {.n = 3, .flags = flags};
    o.seed = jv_rng_next(&R);
    NT_OK(&C, jv_cluster_init(&C, &o));
    NT_OK(&C, jv_cluster_start_all(&C));
    json_decref(nt_req(&C, 0, 200, "POST", "{}", "/v1/counters/a/increment"));
    nt_converge(&C, NULL, 0, nt_ms(30000));
    for (size_t i = 0; i < 3; i += 2)
        wait_state(i, C.node[1].listen, is_reachable, nt_ms(20000));

    stop_and_back(false);
    stop_and_back(true);

    /* And it syncs: a write made while it was away reaches it. */
    json_decref(nt_req(&C, 0, 200, "POST", "{}", "/v1/counters/a/increment"));
    nt_converge(&C, NULL, 0, nt_ms(30000));
}

/* A port of 127.0.0.1 that nothing listens on. */
static int dead_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static bool is_refused(const char *st)
{
    return strcmp(st, "connection refused") == 0;
}

static void test_absent_peer_refused(void **state)
{
    (void)state;
    /* A short timeout: the exchanges with it fail and are retried, and
     * the retries must log nothing more. */
    static char *const flags[] = {"--peer-timeout", "500", "--sync-interval",
                                  "200", NULL};
    char absent[64];
    jv_cluster_opts o = {.n = 1, .flags = flags, .no_peers = true};
    o.seed = jv_rng_next(&R);
    NT_OK(&C, jv_cluster_init(&C, &o));
    snprintf(absent, sizeof absent, "tcp://127.0.0.1:%d", dead_port());
    FILE *f = fopen(C.node[0].conf, "a");
    assert_non_null(f);
    fprintf(f, "peer = %s\n", absent);
    fclose(f);
    NT_OK(&C, jv_cluster_start(&C, 0));
    double t = wait_state(0, absent, is_refused, nt_ms(5000));
    printf("absent peer shown as \"connection refused\" %.0f ms after the "
           "node served /health\n",
           t);
    double t0 = jv_cluster_now_ms();
    while (nt_metric(&C, 0, "jarvis_repl_exchanges_total{outcome=\"failed\"}") <
           3) {
        if (jv_cluster_now_ms() - t0 > nt_ms(30000))
            NT_FAIL(&C, "exchanges with the absent peer are not retried");
        jv_cluster_sleep_ms(50);
    }
    char st[128];
    NT_CHECK(&C, is_refused(peer_state(0, absent, st, sizeof st)));
    NT_CHECK(&C, unreachable_lines(0, absent) == 1);
}

static int teardown(void **state)
{
    (void)state;
    jv_cluster_fini(&C);
    return 0;
}

int main(void)
{
    jv_rng_seed(&R, jv_test_seed());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_stopped_peer_shown_at_once, teardown),
        cmocka_unit_test_teardown(test_absent_peer_refused, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
