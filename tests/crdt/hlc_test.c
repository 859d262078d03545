/* hlc_test.c - the hybrid logical clock (crdt/hlc.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hlc.h"

static uint64_t now(jv_hlc *c, uint64_t wall)
{
    uint64_t st = 0;
    assert_int_equal(jv_hlc_now(c, wall, &st), JV_OK);
    return st;
}

static void test_layout(void **state)
{
    (void)state;
    uint64_t st = jv_hlc_make(0x123456789abcull, 0x4321);
    assert_int_equal(st, 0x123456789abc4321ull);
    assert_int_equal(jv_hlc_ms(st), 0x123456789abcull);
    assert_int_equal(jv_hlc_logical(st), 0x4321);
    assert_int_equal(jv_hlc_ms(jv_hlc_make(JV_HLC_MAX_MS, 0xffff)),
                     JV_HLC_MAX_MS);
}

static void test_now_follows_wall_clock(void **state)
{
    (void)state;
    jv_hlc c;
    jv_hlc_init(&c, 1000);
    assert_int_equal(c.last, 0);
    assert_int_equal(now(&c, 5), jv_hlc_make(5, 0));
    assert_int_equal(now(&c, 9), jv_hlc_make(9, 0));
    assert_int_equal(c.last, jv_hlc_make(9, 0));
}

static void test_now_counts_when_clock_stalls_or_steps_back(void **state)
{
    (void)state;
    jv_hlc c;
    jv_hlc_init(&c, 1000);
    assert_int_equal(now(&c, 100), jv_hlc_make(100, 0));
    assert_int_equal(now(&c, 100), jv_hlc_make(100, 1));
    assert_int_equal(now(&c, 100), jv_hlc_make(100, 2));
    /* A step back of the wall clock does not move the stamps back. */
    assert_int_equal(now(&c, 40), jv_hlc_make(100, 3));
    assert_int_equal(now(&c, 101), jv_hlc_make(101, 0));
}

static void test_logical_counter_carries(void **state)
{
    (void)state;
    jv_hlc c;
    jv_hlc_init(&c, 0);
    jv_hlc_seed(&c, jv_hlc_make(10, 0xffff));
    /* Exhausted counter: the millisecond part moves one ahead. */
    assert_int_equal(now(&c, 10), jv_hlc_make(11, 0));
    assert_int_equal(now(&c, 10), jv_hlc_make(11, 1));
}

static void test_overflow_leaves_clock(void **state)
{
    (void)state;
    jv_hlc c;
    uint64_t st = 77;
    jv_hlc_init(&c, 10);
    assert_int_equal(jv_hlc_now(&c, JV_HLC_MAX_MS + 1, &st), JV_EOVERFLOW);
    assert_int_equal(c.last, 0);
    assert_int_equal(st, 77);
    assert_int_equal(now(&c, JV_HLC_MAX_MS), jv_hlc_make(JV_HLC_MAX_MS, 0));
    jv_hlc_seed(&c, UINT64_MAX);
    assert_int_equal(jv_hlc_now(&c, 5, &st), JV_EOVERFLOW);
    assert_int_equal(c.last, UINT64_MAX);
    assert_int_equal(st, 77);
}

static void test_seed_only_raises(void **state)
{
    (void)state;
    jv_hlc c;
    jv_hlc_init(&c, 10);
    jv_hlc_seed(&c, jv_hlc_make(500, 3));
    assert_int_equal(c.last, jv_hlc_make(500, 3));
    jv_hlc_seed(&c, jv_hlc_make(400, 0));
    assert_int_equal(c.last, jv_hlc_make(500, 3));
    /* Seeding skips the skew check: stamps this node persisted itself. */
    jv_hlc_seed(&c, jv_hlc_make(900000, 0));
    assert_int_equal(c.last, jv_hlc_make(900000, 0));
    assert_int_equal(now(&c, 1), jv_hlc_make(900000, 1));
}

static void test_skew_bound_is_inclusive(void **state)
{
    (void)state;
    jv_hlc c;
    jv_hlc_init(&c, 100);
    uint64_t wall = 1000;
    assert_int_equal(jv_hlc_check(&c, wall, jv_hlc_make(1100, 0xffff)), JV_OK);
    assert_int_equal(jv_hlc_check(&c, wall, jv_hlc_make(1101, 0)), JV_ESKEW);
    assert_int_equal(jv_hlc_check(&c, wall, jv_hlc_make(3, 0)), JV_OK);

    jv_hlc zero;
    jv_hlc_init(&zero, 0);
    assert_int_equal(jv_hlc_check(&zero, wall, jv_hlc_make(1000, 9)), JV_OK);
    assert_int_equal(jv_hlc_check(&zero, wall, jv_hlc_make(1001, 0)), JV_ESKEW);
}

static void test_skew_bound_saturates(void **state)
{
    (void)state;
    jv_hlc c;
    jv_hlc_init(&c, UINT64_MAX);
    assert_int_equal(jv_hlc_check(&c, 1000, UINT64_MAX), JV_OK);
    jv_hlc_init(&c, 5);
    assert_int_equal(jv_hlc_check(&c, UINT64_MAX - 2, UINT64_MAX), JV_OK);
}

static void test_observe(void **state)
{
    (void)state;
    jv_hlc c;
    jv_hlc_init(&c, 100);
    assert_int_equal(now(&c, 1000), jv_hlc_make(1000, 0));

    /* Too far ahead: refused, clock untouched. */
    jv_hlc before = c;
    assert_int_equal(jv_hlc_observe(&c, 1000, jv_hlc_make(1101, 0)), JV_ESKEW);
    assert_memory_equal(&before, &c, sizeof(c));

    /* Within the bound: adopted, and the next stamp is past it. */
    assert_int_equal(jv_hlc_observe(&c, 1000, jv_hlc_make(1100, 7)), JV_OK);
    assert_int_equal(c.last, jv_hlc_make(1100, 7));
    assert_int_equal(now(&c, 1000), jv_hlc_make(1100, 8));

    /* An older remote stamp does not pull the clock back. */
    assert_int_equal(jv_hlc_observe(&c, 1000, jv_hlc_make(10, 0)), JV_OK);
    assert_int_equal(c.last, jv_hlc_make(1100, 8));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_now_follows_wall_clock),
        cmocka_unit_test(test_now_counts_when_clock_stalls_or_steps_back),
        cmocka_unit_test(test_logical_counter_carries),
        cmocka_unit_test(test_overflow_leaves_clock),
        cmocka_unit_test(test_seed_only_raises),
        cmocka_unit_test(test_skew_bound_is_inclusive),
        cmocka_unit_test(test_skew_bound_saturates),
        cmocka_unit_test(test_observe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
