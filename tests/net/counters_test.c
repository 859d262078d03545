/*
 * counters_test.c - one counter whose total leaves 64 bits must break
 * nothing.
 *
 * What a writer could do to a cluster: two nodes cut off from each other
 * (the transport's fault switch, jarvisd --test-faults) each accept 1,000
 * increments of 2^53 on one counter. Each node's own total stays in range
 * (1000 * 2^53 < 2^63); once they sync, the total is 2000 * 2^53, beyond
 * every 64-bit type. On both nodes every read route (the counter, the
 * list, the export), `jarvisctl counters ls` / `get` / `export`, writes to
 * the counter and verify must work, with the documented value: the exact
 * total as a decimal string beyond +/-2^53 (docs/api.md), a JSON number
 * within.
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

/* 2000 * 2^53 and 1000 * 2^53. */
static const char big_total[] = "18014398509481984000";
static const json_int_t share = (json_int_t)1000 << 53;

static const char *total_text(json_t *o)
{
    return json_string_value(json_object_get(o, "total"));
}

/* Node i blocks node k (id and address). */
static void cut(size_t i, size_t k)
{
    char body[512];
    snprintf(body, sizeof body, "{\"block\":[\"%s\",\"%s\"]}", C.node[k].id,
             C.node[k].listen);
    json_decref(nt_req(&C, i, 204, "POST", body, "/v1/debug/faults"));
}

/* 1,000 changes of `by` to counter big on node i, 100 to a POST
 * /v1/batch. */
static void thousand_changes(size_t i, json_int_t by)
{
    for (int r = 0; r < 10; r++) {
        json_t *ops = json_array();
        for (int k = 0; k < 100; k++)
            json_array_append_new(ops, json_pack("{s:s,s:s,s:I}", "op",
                                                 "counter.increment", "name",
                                                 "big", "by", by));
        json_t *body = json_pack("{s:o}", "ops", ops);
        char *text = json_dumps(body, JSON_COMPACT);
        json_decref(body);
        json_decref(nt_req(&C, i, 200, "POST", text, "/v1/batch"));
        free(text);
    }
}

/* Every read route of node i answers 200 with the exact total. */
static void check_reads(size_t i, const char *want)
{
    json_t *one = nt_req(&C, i, 200, "GET", NULL, "/v1/counters/big");
    NT_CHECK(&C, total_text(one) && strcmp(total_text(one), want) == 0);
    json_t *shares = json_object_get(one, "shares");
    NT_CHECK(&C, json_array_size(shares) == 2);
    for (size_t k = 0; k < 2; k++) {
        json_t *s = json_array_get(shares, k);
        NT_CHECK(&C,
                 json_integer_value(json_object_get(s, "increments")) == share);
    }
    json_decref(one);

    json_t *list = nt_req(&C, i, 200, "GET", NULL, "/v1/counters");
    json_t *rows = json_object_get(list, "counters");
    NT_CHECK(&C, json_array_size(rows) == 2);
    json_t *b = json_array_get(rows, 0), *s = json_array_get(rows, 1);
    NT_CHECK(&C,
             strcmp(json_string_value(json_object_get(b, "name")), "big") == 0);
    NT_CHECK(&C, total_text(b) && strcmp(total_text(b), want) == 0);
    /* Its neighbour is untouched, and still a number. */
    NT_CHECK(&C, json_integer_value(json_object_get(s, "total")) == 7);
    json_decref(list);

    json_t *ex = nt_req(&C, i, 200, "GET", NULL, "/v1/export");
    json_t *big = json_object_get(json_object_get(ex, "counters"), "big");
    NT_CHECK(&C, json_object_size(big) == 2);
    json_decref(ex);
}

/* jarvisctl against node i: exits 0 and prints want. */
static void check_ctl(size_t i, const char *want, const char *cmd,
                      const char *arg)
{
    jv_proc_result r;
    NT_OK(&C, jv_cluster_ctl(&C, i, &r, "counters", cmd, arg, NULL));
    if (r.status != 0 || !r.out || !strstr(r.out, want))
        NT_FAIL(&C, "jarvisctl counters %s: status %d, out: %s, err: %s", cmd,
                (int)r.status, r.out ? r.out : "", r.err ? r.err : "");
    jv_proc_result_fini(&r);
}

static void test_wide_total_breaks_nothing(void **state)
{
    (void)state;
    static char *const flags[] = {"--sync-interval", "300", "--test-faults",
                                  NULL};
    jv_cluster_opts o = {.n = 2, .flags = flags};
    NT_OK(&C, jv_cluster_init(&C, &o));
    NT_OK(&C, jv_cluster_start_all(&C));
    json_decref(nt_req(&C, 0, 200, "POST", "{\"by\":7}",
                       "/v1/counters/small/increment"));
    nt_converge(&C, NULL, 0, nt_ms(30000));

    cut(0, 1);
    cut(1, 0);
    for (size_t i = 0; i < C.n; i++) {
        thousand_changes(i, (json_int_t)1 << 53);
        json_t *one = nt_req(&C, i, 200, "GET", NULL, "/v1/counters/big");
        NT_CHECK(&C, total_text(one) &&
                         strcmp(total_text(one), "9007199254740992000") == 0);
        json_decref(one);
    }
    for (size_t i = 0; i < C.n; i++)
        json_decref(nt_req(&C, i, 204, "POST", "{\"unblock_all\":true}",
                           "/v1/debug/faults"));
    nt_converge(&C, NULL, 0, nt_ms(30000));

    for (size_t i = 0; i < C.n; i++) {
        check_reads(i, big_total);
        check_ctl(i, big_total, "ls", NULL);
        check_ctl(i, big_total, "get", "big");
        char *ex;
        size_t len;
        NT_OK(&C, jv_cluster_export(&C, i, &ex, &len));
        NT_CHECK(&C, strstr(ex, "\"big\"") != NULL);
        free(ex);
        json_t *v = nt_req(&C, i, 200, "POST", "{}", "/v1/verify");
        NT_CHECK(&C, json_is_true(json_object_get(v, "ok")));
        json_decref(v);
    }

    /* The counter stays writable; the answer is the exact new total, and a
     * total back within 2^53 is a number again. */
    json_t *w =
        nt_req(&C, 0, 200, "POST", "{\"by\":-5}", "/v1/counters/big/increment");
    NT_CHECK(&C, strcmp(total_text(w), "18014398509481983995") == 0);
    json_decref(w);
    nt_converge(&C, NULL, 0, nt_ms(30000));
    check_reads(1, "18014398509481983995");
    for (size_t i = 0; i < C.n; i++)
        thousand_changes(i, -((json_int_t)1 << 53));
    nt_converge(&C, NULL, 0, nt_ms(30000));
    json_t *one = nt_req(&C, 1, 200, "GET", NULL, "/v1/counters/big");
    NT_CHECK(&C, json_integer_value(json_object_get(one, "total")) == -5);
    json_decref(one);
    check_ctl(1, "-5", "get", "big");
    printf("total 2000 * 2^53 = %s read, listed, exported and verified on "
           "both nodes\n",
           big_total);
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
        cmocka_unit_test_teardown(test_wide_total_breaks_nothing, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
