/*
 * restore_test.c - a node restored from a backup rejoins:
 *
 *   - it published operations after the backup was taken; restored, it
 *     lacks them, so it refuses local writes (503 catching_up) while it
 *     has not caught up with every peer (one of them is kept stopped),
 *     serves reads meanwhile, and fetches its own operations back;
 *   - once the last peer is back it accepts writes again, numbered after
 *     the ones it had published (no sequence number is reused: no peer
 *     refuses an equivocation), and all converge;
 *   - restored and restarted at once, while every peer still remembers
 *     the vector it had before (and so leaves out its own operations for
 *     a while), it still waits for them before it writes.
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

static json_int_t own_seq(size_t i)
{
    json_t *vv = jv_cluster_vv(&C, i);
    NT_CHECK(&C, vv != NULL);
    json_int_t s = json_integer_value(json_object_get(vv, C.node[i].id));
    json_decref(vv);
    return s;
}

static long try_write(size_t i)
{
    jv_http_resp r;
    NT_OK(&C, jv_cluster_http(&C, i, "POST", "/v1/counters/after/increment",
                              "{}", &r));
    long st = r.status;
    if (st == 503)
        NT_CHECK(&C, strstr(r.body, "catching_up") != NULL);
    jv_http_resp_fini(&r);
    return st;
}

/* A backup of node i into its backup dir; its path into out. */
static void take_backup(size_t i, char *out, size_t cap)
{
    json_t *j =
        nt_req(&C, i, 201, "POST", "{\"path\":\"r-backup.db\"}", "/v1/backup");
    snprintf(out, cap, "%s", json_string_value(json_object_get(j, "path")));
    json_decref(j);
    NT_CHECK(&C, out[0] == '/');
}

static void test_restored_node_rejoins(void **state)
{
    (void)state;
    /* A short exchange timeout: what a node remembers of a peer's
     * vector lasts one to two of them (docs/protocol.md). */
    static char *const flags[] = {"--sync-interval", "300", "--peer-timeout",
                                  "2000", NULL};
    enum {
        A,
        B,
        R_
    };
    nt_expect e;
    memset(&e, 0, sizeof e);
    jv_cluster_opts o = {.n = 3, .flags = flags};
    o.seed = jv_rng_next(&R);
    NT_OK(&C, jv_cluster_init(&C, &o));
    NT_OK(&C, jv_cluster_start_all(&C));
    nt_random_writes(&C, R_, &R, 20, &e);
    nt_converge(&C, NULL, 0, nt_ms(30000));

    char backup[700];
    take_backup(R_, backup, sizeof backup);
    json_int_t at_backup = own_seq(R_);

    /* Published after the backup: the others hold these. */
    for (size_t i = 0; i < C.n; i++)
        nt_random_writes(&C, i, &R, 20, &e);
    nt_converge(&C, NULL, 0, nt_ms(30000));
    json_int_t published = own_seq(R_);
    NT_CHECK(&C, published > at_backup);

    NT_OK(&C, jv_cluster_stop(&C, R_));
    NT_OK(&C, jv_cluster_stop(&C, B));
    jv_proc_result pr;
    NT_OK(&C, jv_cluster_ctl(&C, R_, &pr, "restore", backup, "--data-dir",
                             C.node[R_].t.dir, (char *)NULL));
    if (pr.status != 0)
        NT_FAIL(&C, "jarvisctl restore exited %d: %s", pr.status, pr.err);
    jv_proc_result_fini(&pr);
    NT_OK(&C, jv_cluster_start(&C, R_));

    /* B is away: R cannot know what B holds of its own, so it refuses
     * writes; it reads, and gets its own operations back from A. */
    NT_CHECK(&C, try_write(R_) == 503);
    double t0 = jv_cluster_now_ms();
    while (own_seq(R_) < published) {
        if (jv_cluster_now_ms() - t0 > nt_ms(30000))
            NT_FAIL(&C,
                    "the restored node never got its own operations "
                    "back from A (%lld of %lld)",
                    (long long)own_seq(R_), (long long)published);
        jv_cluster_sleep_ms(100);
    }
    NT_CHECK(&C, own_seq(R_) == published);
    jv_cluster_sleep_ms(nt_ms(1500)); /* a few fence checks (every 1 s) */
    NT_CHECK(&C, try_write(R_) == 503);
    json_decref(nt_req(&C, R_, 200, "GET", NULL, "/v1/counters"));
    json_t *h = nt_req(&C, R_, 200, "GET", NULL, "/v1/health");
    const char *why = json_string_value(json_object_get(
        json_object_get(json_object_get(h, "components"), "replication"),
        "reason"));
    NT_CHECK(&C, why != NULL && strstr(why, "restored") != NULL);
    json_decref(h);

    /* B back: writes resume, numbered after what R had published. */
    NT_OK(&C, jv_cluster_start(&C, B));
    t0 = jv_cluster_now_ms();
    long st;
    while ((st = try_write(R_)) == 503) {
        if (jv_cluster_now_ms() - t0 > nt_ms(30000))
            NT_FAIL(&C, "the restored node still refuses writes");
        jv_cluster_sleep_ms(100);
    }
    NT_CHECK(&C, st == 200);
    printf("restored node accepted writes %.0f ms after its last peer came "
           "back\n",
           jv_cluster_now_ms() - t0);
    NT_CHECK(&C, own_seq(R_) == published + 1);
    nt_random_writes(&C, R_, &R, 10, &e);
    nt_converge(&C, NULL, 0, nt_ms(30000));
    for (size_t i = 0; i < C.n; i++) {
        nt_check_expect(&C, i, &e);
        NT_CHECK(&C, nt_metric(&C, i,
                               "jarvis_repl_batches_total{result="
                               "\"refused_equivocation\"}") == 0);
        NT_CHECK(&C, nt_metric(&C, i,
                               "jarvis_repl_batches_total{result="
                               "\"refused_broken_link\"}") == 0);
    }
    json_t *v = nt_req(&C, R_, 200, "POST", "{}", "/v1/verify");
    NT_CHECK(&C, json_is_true(json_object_get(v, "ok")));
    json_decref(v);
}

static void test_restored_at_once(void **state)
{
    (void)state;
    /* Peers remember a vector for one to two exchange timeouts: 6 to 12 s
     * here, far longer than the restart. */
    static char *const flags[] = {"--sync-interval", "300", "--peer-timeout",
                                  "6000", NULL};
    enum {
        R_ = 2
    };
    nt_expect e;
    memset(&e, 0, sizeof e);
    jv_cluster_opts o = {.n = 3, .flags = flags};
    o.seed = jv_rng_next(&R);
    NT_OK(&C, jv_cluster_init(&C, &o));
    NT_OK(&C, jv_cluster_start_all(&C));
    nt_random_writes(&C, R_, &R, 10, &e);
    nt_converge(&C, NULL, 0, nt_ms(30000));
    char backup[700];
    take_backup(R_, backup, sizeof backup);
    nt_random_writes(&C, R_, &R, 15, &e);
    nt_converge(&C, NULL, 0, nt_ms(30000));
    json_int_t published = own_seq(R_);

    NT_OK(&C, jv_cluster_stop(&C, R_));
    jv_proc_result pr;
    NT_OK(&C, jv_cluster_ctl(&C, R_, &pr, "restore", backup, "--data-dir",
                             C.node[R_].t.dir, (char *)NULL));
    NT_CHECK(&C, pr.status == 0);
    jv_proc_result_fini(&pr);
    NT_OK(&C, jv_cluster_start(&C, R_));
    NT_CHECK(&C, own_seq(R_) < published);
    double t0 = jv_cluster_now_ms();
    long st;
    while ((st = try_write(R_)) == 503) {
        if (jv_cluster_now_ms() - t0 > nt_ms(40000))
            NT_FAIL(&C, "the restored node still refuses writes");
        jv_cluster_sleep_ms(100);
    }
    NT_CHECK(&C, st == 200);
    /* The write that passed the fence came after every published one. */
    NT_CHECK(&C, own_seq(R_) == published + 1);
    printf("restored at once: writes accepted after %.0f ms\n",
           jv_cluster_now_ms() - t0);
    nt_converge(&C, NULL, 0, nt_ms(30000));
    for (size_t i = 0; i < C.n; i++) {
        nt_check_expect(&C, i, &e);
        NT_CHECK(&C, nt_metric(&C, i,
                               "jarvis_repl_batches_total{result="
                               "\"refused_equivocation\"}") == 0);
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
    jv_rng_seed(&R, jv_test_seed());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_restored_node_rejoins, teardown),
        cmocka_unit_test_teardown(test_restored_at_once, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
