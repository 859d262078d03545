/*
 * auth_test.c - the API keys' rate limit (node/auth.c) follows the wall
 * clock the node runs on, also when that clock is set back: a node whose
 * clock ran 5 minutes fast and was set right kept every key it had
 * emptied at 429 for those 5 minutes (found by tests/net/nemesis_test.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "auth.h"

#define T0 1800000000000ull /* some wall-clock time, in ms */

/* Spends what the bucket holds at `now`; how many requests passed. */
static unsigned drain(jv_auth *a, uint64_t now)
{
    unsigned n = 0;
    uint64_t retry;
    while (jv_auth_rate(a, "k_1", now, &retry) == JV_OK)
        n++;
    return n;
}

static jv_auth *limited(void)
{
    static const uint8_t hash[32] = {1};
    jv_auth *a = jv_auth_new(10, 20); /* 10 per second, bursts of 20 */
    assert_non_null(a);
    assert_int_equal(
        jv_auth_key_put(a, "k_1", "ci", JV_ROLE_WRITER, hash, false), JV_OK);
    return a;
}

static void test_refills_with_time(void **state)
{
    (void)state;
    jv_auth *a = limited();
    assert_int_equal(drain(a, T0), 20);
    uint64_t retry = 0;
    assert_int_equal(jv_auth_rate(a, "k_1", T0, &retry), JV_ELIMIT);
    assert_true(retry > 0 && retry <= 101);
    assert_int_equal(drain(a, T0 + 1000), 10);
    assert_int_equal(drain(a, T0 + 60000), 20); /* never beyond the burst */
    /* Keys the node does not know are not its to limit. */
    assert_int_equal(jv_auth_rate(a, "k_2", T0, NULL), JV_OK);
    jv_auth_free(a);
}

static void test_clock_set_back(void **state)
{
    (void)state;
    jv_auth *a = limited();
    uint64_t fast = T0 + 300000; /* the clock ran 5 minutes fast */
    assert_int_equal(drain(a, fast), 20);
    /* Set right: one second later on the new clock the key has had one
     * second's tokens, not none until the old time comes round again. */
    assert_int_equal(drain(a, T0), 0);
    assert_int_equal(drain(a, T0 + 1000), 10);
    assert_int_equal(drain(a, T0 + 3000), 20);
    jv_auth_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refills_with_time),
        cmocka_unit_test(test_clock_set_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
