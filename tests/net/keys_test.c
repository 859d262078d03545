/*
 * keys_test.c - rotating the cluster key without downtime, exactly as
 * docs/operations.md says: a new key from `jarvisctl cluster-key`, added
 * as the second line of every node's key file (reload with SIGHUP), then
 * moved to the first line (reload), then the old line removed (reload),
 * one node at a time. After every single reload, writes on every node
 * reach all the others and no node has refused a message. At the end a
 * node that holds only the old key is refused by all of them
 * (refused_messages_total{reason="unknown_key"}) and refuses them in
 * turn, while the others keep converging.
 *
 * A request made while its peer is down waits for a connection, sealed
 * under the key of that moment. If the sending key changes meanwhile, the
 * node takes it back and sends it again under the new key: a peer that
 * comes up with the new key only refuses nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nettest.h"

static jv_cluster C;
static jv_rng R;
static const size_t live[] = {0, 1, 2}; /* node 3 comes at the end */

static double refused(size_t i)
{
    double v = jv_cluster_metric_sum(
        &C, i, "jarvis_repl_refused_messages_total", NULL);
    if (v < 0)
        NT_FAIL(&C, "no metrics from node %zu: %s", i, C.err);
    return v;
}

/* A write on each of the first n nodes, all converged, nothing refused
 * anywhere. */
static void traffic(size_t n, const char *step)
{
    for (size_t i = 0; i < n; i++)
        json_decref(nt_req(&C, i, 200, "POST", "{}",
                           "/v1/counters/rotation/increment"));
    double t0 = jv_cluster_now_ms();
    nt_converge(&C, live, n, nt_ms(15000));
    for (size_t i = 0; i < n; i++)
        if (refused(i) != 0)
            NT_FAIL(&C, "%s: node %zu refused %.0f messages", step, i,
                    refused(i));
    printf("%-44s writes converged in %4.0f ms, nothing refused\n", step,
           jv_cluster_now_ms() - t0);
}

/* The key line of a file jarvisctl cluster-key wrote. */
static void traffic_flows(const char *step)
{
    traffic(3, step);
}

static void read_key(const char *path, char out[65])
{
    char line[256];
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    out[0] = '\0';
    while (fgets(line, sizeof line, f) != NULL)
        if (line[0] != '#' && strlen(line) >= 64) {
            memcpy(out, line, 64);
            out[64] = '\0';
            break;
        }
    fclose(f);
    assert_int_equal(strlen(out), 64);
}

static void test_rotation_without_downtime(void **state)
{
    (void)state;
    static char *const flags[] = {"--sync-interval", "300", NULL};
    char oldk[65], newk[65], step[96];
    jv_cluster_opts o = {.n = 4, .key_per_node = true, .flags = flags};
    o.seed = jv_rng_next(&R);
    NT_OK(&C, jv_cluster_init(&C, &o));
    for (size_t i = 0; i < 3; i++)
        NT_OK(&C, jv_cluster_start(&C, i));
    traffic_flows("before the rotation");
    read_key(C.key_file, oldk);

    /* 1. A new key. */
    jv_proc_result r;
    NT_OK(&C, jv_cluster_ctl(&C, 0, &r, "cluster-key", (char *)NULL));
    NT_CHECK(&C, r.status == 0 && strlen(r.out) == 65);
    memcpy(newk, r.out, 64);
    newk[64] = '\0';
    jv_proc_result_fini(&r);
    NT_CHECK(&C, strcmp(newk, oldk) != 0);

    /* 2. Second line everywhere; 3. first line; 4. the old one gone. */
    const char *second[] = {oldk, newk}, *first[] = {newk, oldk},
               *only[] = {newk};
    const char *const *sets[] = {second, first, only};
    const size_t counts[] = {2, 2, 1};
    const char *names[] = {"new key second", "new key first",
                           "old key removed"};
    for (size_t s = 0; s < 3; s++)
        for (size_t i = 0; i < 3; i++) {
            NT_OK(&C, jv_cluster_set_keys(&C, i, sets[s], counts[s]));
            snprintf(step, sizeof step, "%s, node %zu reloaded", names[s], i);
            traffic_flows(step);
        }

    /* Node 3 still has only the old key: refused both ways. */
    NT_OK(&C, jv_cluster_start(&C, 3));
    double t0 = jv_cluster_now_ms();
    for (;;) {
        double sum = 0;
        for (size_t i = 0; i < 3; i++)
            sum += nt_metric(&C, i,
                             "jarvis_repl_refused_messages_total{"
                             "reason=\"unknown_key\"}");
        double own = nt_metric(&C, 3,
                               "jarvis_repl_refused_messages_total{"
                               "reason=\"unknown_key\"}");
        if (sum > 0 && own > 0) {
            printf("a node with the old key only: %.0f of its messages "
                   "refused, %.0f refused by it (unknown_key)\n",
                   sum, own);
            break;
        }
        if (jv_cluster_now_ms() - t0 > nt_ms(15000))
            NT_FAIL(&C, "old-key messages not refused (%.0f, %.0f)", sum, own);
        jv_cluster_sleep_ms(100);
    }
    json_decref(
        nt_req(&C, 3, 200, "POST", "{}", "/v1/counters/stale/increment"));
    jv_cluster_sleep_ms(nt_ms(1500));
    json_decref(nt_req(&C, 0, 404, "GET", NULL, "/v1/counters/stale"));
    json_decref(nt_req(&C, 3, 404, "GET", NULL, "/v1/counters/rotation"));
    for (size_t i = 0; i < 3; i++)
        json_decref(nt_req(&C, i, 200, "POST", "{}",
                           "/v1/counters/rotation/increment"));
    nt_converge(&C, live, 3, nt_ms(15000));

    /* Given the new key, it joins. */
    NT_OK(&C, jv_cluster_set_keys(&C, 3, only, 1));
    nt_converge(&C, NULL, 0, nt_ms(30000));
}

static bool log_has(size_t i, const char *needle)
{
    char line[2048];
    bool found = false;
    FILE *f = fopen(C.node[i].t.log, "r");
    while (f != NULL && !found && fgets(line, sizeof line, f) != NULL)
        found = strstr(line, needle) != NULL;
    if (f != NULL)
        fclose(f);
    return found;
}

static void test_rotation_while_a_peer_is_down(void **state)
{
    (void)state;
    /* Node 0's first request to node 1 waits for node 1 for a minute. */
    static char *const flags[] = {"--peer-timeout", "60000", NULL};
    char oldk[65], newk[65];
    jv_cluster_opts o = {.n = 2, .key_per_node = true, .flags = flags};
    o.seed = jv_rng_next(&R);
    NT_OK(&C, jv_cluster_init(&C, &o));
    NT_OK(&C, jv_cluster_start(&C, 0));
    read_key(C.key_file, oldk);
    jv_proc_result r;
    NT_OK(&C, jv_cluster_ctl(&C, 0, &r, "cluster-key", (char *)NULL));
    NT_CHECK(&C, r.status == 0 && strlen(r.out) == 65);
    memcpy(newk, r.out, 64);
    newk[64] = '\0';
    jv_proc_result_fini(&r);

    /* The request is made (sealed under the old key) and waits. */
    const char *out = "jarvis_repl_bytes_total{direction=\"out\"}";
    double t0 = jv_cluster_now_ms();
    while (nt_metric(&C, 0, out) <= 0) {
        if (jv_cluster_now_ms() - t0 > nt_ms(30000))
            NT_FAIL(&C, "node 0 sent no request to node 1");
        jv_cluster_sleep_ms(20);
    }
    const char *second[] = {oldk, newk}, *first[] = {newk, oldk},
               *only[] = {newk};
    NT_OK(&C, jv_cluster_set_keys(&C, 0, second, 2));
    NT_OK(&C, jv_cluster_set_keys(&C, 0, first, 2));
    NT_CHECK(&C, log_has(0, "sent again under the new key"));

    /* Node 1 comes up having done every step: the new key only. */
    NT_OK(&C, jv_cluster_set_keys(&C, 1, only, 1));
    NT_OK(&C, jv_cluster_start(&C, 1));
    const char *ok = "jarvis_repl_exchanges_total{outcome=\"ok\"}";
    t0 = jv_cluster_now_ms();
    while (nt_metric(&C, 0, ok) <= 0) {
        if (jv_cluster_now_ms() - t0 > nt_ms(30000))
            NT_FAIL(&C, "node 0 got no answer from node 1");
        jv_cluster_sleep_ms(50);
    }
    traffic(2, "node 1 up with the new key only");
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
        cmocka_unit_test_teardown(test_rotation_without_downtime, teardown),
        cmocka_unit_test_teardown(test_rotation_while_a_peer_is_down, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
