/*
 * http_test.c - the HTTP/1.1 server's helpers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "http.h"

static void test_unescape_and_query(void **state)
{
    jv_buf b;
    (void)state;
    jv_buf_init(&b);

    assert_int_equal(jv_http_unescape(jv_str_c("a%20b%2Fc+d"), &b), JV_OK);
    assert_string_equal((char *)b.data, "a b/c+d");
    assert_int_equal(b.len, 7);
    assert_int_equal(jv_http_unescape(jv_str_c("%41%6a%6A"), &b), JV_OK);
    assert_string_equal((char *)b.data, "Ajj");
    assert_int_equal(jv_http_unescape(jv_str_c(""), &b), JV_OK);
    assert_int_equal(b.len, 0);
    assert_string_equal((char *)b.data, "");
    const char *bad[] = {"%", "%4", "abc%", "%zz", "%g0", "%0g", "a%00b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(jv_http_unescape(jv_str_c(bad[i]), &b), JV_EINVAL);
    jv_str nul = {"a\0b", 3};
    assert_int_equal(jv_http_unescape(nul, &b), JV_EINVAL);
    /* Replaces, does not append. */
    assert_int_equal(jv_http_unescape(jv_str_c("x"), &b), JV_OK);
    assert_int_equal(jv_http_unescape(jv_str_c("yz"), &b), JV_OK);
    assert_string_equal((char *)b.data, "yz");

    jv_str q = jv_str_c("a=1&b=two+words&c=%2B&empty=&flag&x%20y=3&a=2&"
                        "bad=%zz&nul=%00&p%2=4");
    assert_int_equal(jv_http_query_param(q, "a", &b), JV_OK);
    assert_string_equal((char *)b.data, "1");
    assert_int_equal(jv_http_query_param(q, "b", &b), JV_OK);
    assert_string_equal((char *)b.data, "two words");
    assert_int_equal(jv_http_query_param(q, "c", &b), JV_OK);
    assert_string_equal((char *)b.data, "+");
    assert_int_equal(jv_http_query_param(q, "empty", &b), JV_OK);
    assert_int_equal(b.len, 0);
    assert_int_equal(jv_http_query_param(q, "flag", &b), JV_OK);
    assert_int_equal(b.len, 0);
    assert_int_equal(jv_http_query_param(q, "x y", &b), JV_OK);
    assert_string_equal((char *)b.data, "3");
    assert_int_equal(jv_http_query_param(q, "bad", &b), JV_EINVAL);
    assert_int_equal(jv_http_query_param(q, "nul", &b), JV_EINVAL);
    /* Not found: out keeps what it had. */
    assert_int_equal(jv_http_query_param(q, "a", &b), JV_OK);
    assert_int_equal(jv_http_query_param(q, "missing", &b), JV_ENOTFOUND);
    assert_int_equal(jv_http_query_param(q, "x%20y", &b), JV_ENOTFOUND);
    assert_string_equal((char *)b.data, "1");
    assert_int_equal(jv_http_query_param(q, "fla", &b), JV_ENOTFOUND);
    /* A key that does not decode matches nothing. */
    assert_int_equal(jv_http_query_param(q, "p%2", &b), JV_ENOTFOUND);
    assert_int_equal(jv_http_query_param(jv_str_c(""), "a", &b), JV_ENOTFOUND);
    assert_int_equal(jv_http_query_param(jv_str_c("&&a=5&"), "a", &b), JV_OK);
    assert_string_equal((char *)b.data, "5");

    assert_string_equal(jv_http_reason(200), "OK");
    assert_string_equal(jv_http_reason(404), "Not Found");
    assert_string_equal(jv_http_reason(431), "Request Header Fields Too Large");
    assert_string_equal(jv_http_reason(203), "Non-Authoritative Information");
    assert_string_equal(jv_http_reason(299), "Unknown");
    jv_buf_fini(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unescape_and_query),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
