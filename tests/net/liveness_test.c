/*
 * liveness_test.c - what keeps a cluster going:
 *
 *   - a peer that never answers (a socket that accepts connections and
 *     stays silent) and one that is not there delay no other peer: with a
 *     20 s exchange timeout, every write still reaches the two live peers
 *     in a fraction of that;
 *   - the nng 1.5.2 dead-listener trap (nng #1518): after
 *     POST /v1/debug/faults {"kill_listener":true} nothing can connect,
 *     the node's own probe finds out, re-creates the listener
 *     (jarvis_repl_listener_restarts_total grows), and peers that must
 *     connect afresh reach it again;
 *   - without a cluster key a node refuses to listen on anything but
 *     loopback (exit status 1 and a message saying what to do), unless
 *     started with --insecure.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "nettest.h"

static jv_cluster C;
static jv_rng R;
static int held_fds[2] = {-1, -1};

/* A socket bound to 127.0.0.1 on a port of the kernel's choosing; with
 * listen, connections are accepted by the kernel and never answered. */
static int loopback_socket(bool listening, int *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    if (listening)
        assert_int_equal(listen(fd, 64), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/* Can a new TCP connection be made to 127.0.0.1:port? */
static bool connects(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    bool ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

static json_int_t counter(size_t i, const char *name)
{
    jv_http_resp r;
    char path[128];
    snprintf(path, sizeof path, "/v1/counters/%s", name);
    NT_OK(&C, jv_cluster_http(&C, i, "GET", path, NULL, &r));
    json_t *j = r.status == 200 ? json_loadb(r.body, r.len, 0, NULL) : NULL;
    json_int_t v = j ? json_integer_value(json_object_get(j, "total")) : 0;
    json_decref(j);
    jv_http_resp_fini(&r);
    return v;
}

/* Waits until node i's counter reaches want; the time it took. */
static double reach(size_t i, const char *name, json_int_t want, int limit)
{
    double t0 = jv_cluster_now_ms();
    while (counter(i, name) < want) {
        if (jv_cluster_now_ms() - t0 > limit)
            NT_FAIL(&C, "node %zu never saw %s reach %lld", i, name,
                    (long long)want);
        jv_cluster_sleep_ms(10);
    }
    return jv_cluster_now_ms() - t0;
}

static void test_slow_peer_delays_no_one(void **state)
{
    (void)state;
    static char *const flags[] = {"--sync-interval", "300", "--peer-timeout",
                                  "20000", NULL};
    int silent, absent;
    held_fds[0] = loopback_socket(true, &silent);
    held_fds[1] = loopback_socket(false, &absent);
    jv_cluster_opts o = {.n = 3, .flags = flags};
    o.seed = jv_rng_next(&R);
    NT_OK(&C, jv_cluster_init(&C, &o));
    /* Node 0 also lists the silent peer and the absent one. */
    FILE *f = fopen(C.node[0].conf, "a");
    assert_non_null(f);
    fprintf(f, "peer = tcp://127.0.0.1:%d\npeer = tcp://127.0.0.1:%d\n", silent,
            absent);
    fclose(f);
    NT_OK(&C, jv_cluster_start_all(&C));
    nt_converge(&C, NULL, 0, nt_ms(30000));

    double worst = 0, sum = 0;
    const unsigned writes = 20;
    for (unsigned w = 1; w <= writes; w++) {
        json_decref(
            nt_req(&C, 0, 200, "POST", "{}", "/v1/counters/live/increment"));
        double t1 = reach(1, "live", (json_int_t)w, nt_ms(5000));
        double t2 = reach(2, "live", (json_int_t)w, nt_ms(5000));
        double t = t1 > t2 ? t1 : t2;
        worst = t > worst ? t : worst;
        sum += t;
    }
    /* The silent peer is still being waited for (an exchange lasts up to
     * 20 s), and neither of the dead ones is reachable. */
    char addr[64];
    snprintf(addr, sizeof addr, "tcp://127.0.0.1:%d", silent);
    json_t *p = nt_peer(&C, 0, addr);
    NT_CHECK(&C, p != NULL && !json_is_true(json_object_get(p, "reachable")));
    json_decref(p);
    snprintf(addr, sizeof addr, "tcp://127.0.0.1:%d", absent);
    p = nt_peer(&C, 0, addr);
    NT_CHECK(&C, p != NULL && !json_is_true(json_object_get(p, "reachable")));
    json_decref(p);
    printf("with a silent and an absent peer: %u writes reached both live "
           "peers in %.0f ms on average, %.0f ms at worst (exchange timeout "
           "20000 ms)\n",
           writes, sum / writes, worst);
    NT_CHECK(&C, worst < nt_ms(3000));
}

static const char *peer_state(size_t i, size_t k, char *out, size_t outlen)
{
    json_t *p = nt_peer(&C, i, C.node[k].listen);
    snprintf(out, outlen, "%s",
             p ? json_string_value(json_object_get(p, "state")) : "absent");
    json_decref(p);
    return out;
}

/* jarvisctl health on node 0: its exit status, the replication reason. */
static int health(char *why, size_t whylen)
{
    jv_proc_result r;
    NT_OK(&C, jv_cluster_ctl(&C, 0, &r, "--json", "health", (char *)NULL));
    json_t *j = json_loads(r.out, 0, NULL);
    snprintf(
        why, whylen, "%s: %s", json_string_value(json_object_get(j, "status")),
        json_string_value(json_object_get(
            json_object_get(json_object_get(j, "components"), "replication"),
            "reason")));
    json_decref(j);
    int rc = r.status;
    jv_proc_result_fini(&r);
    return rc;
}

/* A peer that stops is "connection refused" at once (its connection
 * closes, and its address refuses a new one; down_test.c has more); a
 * node that reaches none of its peers is degraded (jarvisctl health
 * fails), and healthy again once the peer is back. */
static void test_stopped_peer_degrades(void **state)
{
    (void)state;
    char st[64], why[1024];
    jv_cluster_opts o = {.n = 2};
    o.seed = jv_rng_next(&R);
    NT_OK(&C, jv_cluster_init(&C, &o));
    NT_OK(&C, jv_cluster_start_all(&C));
    nt_converge(&C, NULL, 0, nt_ms(30000));
    /* Healthy once each has reached the other (converging may come from
     * one side's pushes alone). */
    double t0 = jv_cluster_now_ms();
    while (health(why, sizeof why) != 0) {
        if (jv_cluster_now_ms() - t0 > nt_ms(20000))
            NT_FAIL(&C, "not healthy with both nodes up: %s", why);
        jv_cluster_sleep_ms(50);
    }

    NT_OK(&C, jv_cluster_stop(&C, 1));
    t0 = jv_cluster_now_ms();
    while (strcmp(peer_state(0, 1, st, sizeof st), "connection refused")) {
        if (jv_cluster_now_ms() - t0 > nt_ms(30000))
            NT_FAIL(&C, "a stopped peer is \"%s\" after %.0f ms", st,
                    jv_cluster_now_ms() - t0);
        jv_cluster_sleep_ms(50);
    }
    printf("stopped peer shown as \"connection refused\" after %.0f ms (peer "
           "timeout 10000 ms)\n",
           jv_cluster_now_ms() - t0);
    int rc = health(why, sizeof why);
    printf("health with no peer reachable: exit %d, %s\n", rc, why);
    NT_CHECK(&C, rc == 1);
    NT_CHECK(&C, strstr(why, "degraded: ") == why);
    NT_CHECK(&C, strstr(why, C.node[1].listen) != NULL);
    NT_CHECK(&C, strstr(why, "(connection refused") != NULL);

    NT_OK(&C, jv_cluster_start(&C, 1));
    t0 = jv_cluster_now_ms();
    while ((rc = health(why, sizeof why)) != 0) {
        if (jv_cluster_now_ms() - t0 > nt_ms(30000))
            NT_FAIL(&C, "not healthy again with the peer back: %s", why);
        jv_cluster_sleep_ms(100);
    }
    NT_CHECK(&C, strcmp(peer_state(0, 1, st, sizeof st), "reachable") == 0);
}

static void test_dead_listener_recreated(void **state)
{
    (void)state;
    static char *const flags[] = {"--sync-interval", "300", "--test-faults",
                                  NULL};
    jv_cluster_opts o = {.n = 2, .flags = flags};
    o.seed = jv_rng_next(&R);
    NT_OK(&C, jv_cluster_init(&C, &o));
    NT_OK(&C, jv_cluster_start_all(&C));
    json_decref(nt_req(&C, 0, 200, "POST", "{}", "/v1/counters/a/increment"));
    nt_converge(&C, NULL, 0, nt_ms(30000));
    NT_CHECK(&C, nt_metric(&C, 1, "jarvis_repl_listener_restarts_total") == 0);

    json_decref(nt_req(&C, 1, 204, "POST", "{\"kill_listener\":true}",
                       "/v1/debug/faults"));
    /* Dead: no new connection gets in (until the probe notices). */
    NT_CHECK(&C, !connects(C.node[1].port));
    double t0 = jv_cluster_now_ms();
    while (nt_metric(&C, 1, "jarvis_repl_listener_restarts_total") < 1) {
        if (jv_cluster_now_ms() - t0 > nt_ms(40000))
            NT_FAIL(&C, "the dead listener was never re-created");
        jv_cluster_sleep_ms(100);
    }
    printf("listener re-created %.0f ms after it was killed\n",
           jv_cluster_now_ms() - t0);
    NT_CHECK(&C, connects(C.node[1].port));

    /* Node 0 restarted must dial anew: it reaches node 1 both ways. */
    NT_OK(&C, jv_cluster_stop(&C, 0));
    NT_OK(&C, jv_cluster_start(&C, 0));
    json_decref(nt_req(&C, 0, 200, "POST", "{}", "/v1/counters/a/increment"));
    json_decref(nt_req(&C, 1, 200, "POST", "{}", "/v1/counters/b/increment"));
    reach(1, "a", 2, nt_ms(20000));
    reach(0, "b", 1, nt_ms(20000));
    nt_converge(&C, NULL, 0, nt_ms(30000));
    NT_CHECK(&C, nt_metric(&C, 1, "jarvis_repl_listener_restarts_total") == 1);
}

/* jarvisd on node 0's data dir with extra flags; its result. */
static void run_jarvisd(char *const extra[], jv_proc_result *r)
{
    char bin[512];
    char *argv[32];
    size_t a = 0;
    assert_true(jv_bin_path("jarvisd", bin, sizeof bin));
    argv[a++] = bin;
    argv[a++] = (char *)"--config";
    argv[a++] = C.node[0].conf;
    argv[a++] = (char *)"--api-listen";
    argv[a++] = (char *)"127.0.0.1:0";
    for (size_t k = 0; extra[k] != NULL; k++)
        argv[a++] = extra[k];
    argv[a] = NULL;
    assert_int_equal(jv_proc_run(argv, NULL, nt_ms(20000), r), 0);
    assert_false(r->timed_out);
}

static void test_no_key_no_wide_listener(void **state)
{
    (void)state;
    jv_cluster_opts o = {.n = 1, .no_key = true, .no_peers = true};
    jv_proc_result r;
    char wide[64], tricky[96];
    o.seed = jv_rng_next(&R);
    NT_OK(&C, jv_cluster_init(&C, &o));
    snprintf(wide, sizeof wide, "tcp://0.0.0.0:%d", C.node[0].port);
    /* A name that merely starts like a loopback address. */
    snprintf(tricky, sizeof tricky, "tcp://127.0.0.1.example.net:%d",
             C.node[0].port);
    char *refused[] = {wide, tricky};
    for (size_t k = 0; k < 2; k++) {
        char *extra[] = {"--listen", refused[k], NULL};
        run_jarvisd(extra, &r);
        const char *line = strstr(r.err, "refusing");
        printf("--listen %s without a key: exit %d: %.*s\n", refused[k],
               r.status, line ? (int)strcspn(line, "\n") : 0, line ? line : "");
        NT_CHECK(&C, r.status == 1);
        NT_CHECK(&C, strstr(r.err, "without a cluster key") != NULL);
        NT_CHECK(&C, strstr(r.err, "--insecure") != NULL);
        NT_CHECK(&C, strstr(r.err, "--cluster-key-file") != NULL);
        jv_proc_result_fini(&r);
    }

    /* Loopback needs no key (the configuration file's listen line). */
    NT_OK(&C, jv_cluster_start(&C, 0));
    json_t *st = nt_req(&C, 0, 200, "GET", NULL, "/v1/status");
    NT_CHECK(&C, strcmp(json_string_value(json_object_get(st, "peer_address")),
                        C.node[0].listen) == 0);
    json_decref(st);
    NT_OK(&C, jv_cluster_stop(&C, 0));

    /* --insecure: the operator said so. */
    C.node[0].flags[0] = (char *)"--listen";
    C.node[0].flags[1] = wide;
    C.node[0].flags[2] = (char *)"--insecure";
    C.node[0].flags[3] = NULL;
    NT_OK(&C, jv_cluster_start(&C, 0));
    st = nt_req(&C, 0, 200, "GET", NULL, "/v1/status");
    NT_CHECK(&C, strcmp(json_string_value(json_object_get(st, "peer_address")),
                        wide) == 0);
    json_decref(st);
    NT_OK(&C, jv_cluster_stop(&C, 0));
}

static int teardown(void **state)
{
    (void)state;
    jv_cluster_fini(&C);
    for (int i = 0; i < 2; i++)
        if (held_fds[i] >= 0) {
            close(held_fds[i]);
            held_fds[i] = -1;
        }
    return 0;
}

int main(void)
{
    jv_rng_seed(&R, jv_test_seed());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_slow_peer_delays_no_one, teardown),
        cmocka_unit_test_teardown(test_dead_listener_recreated, teardown),
        cmocka_unit_test_teardown(test_stopped_peer_degrades, teardown),
        cmocka_unit_test_teardown(test_no_key_no_wide_listener, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
