/*
 * output_test.c - jarvisctl's formatting parts without a node: times,
 * sizes, terminal-safe text, value arguments, tables, and the export
 * diff.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "alloc.h"
#include "diff.h"
#include "output.h"
#include "table.h"

static void test_time_parse(void **state)
{
    (void)state;
    int64_t ms;
    assert_true(jvc_time_parse("1970-01-01T00:00:00Z", &ms));
    assert_int_equal(ms, 0);
    assert_true(jvc_time_parse("2026-11-21T09:30:00.125Z", &ms));
    assert_int_equal(ms, 1795253400125LL);
    /* Offsets and fractions longer than milliseconds. */
    assert_true(jvc_time_parse("2026-11-21T10:30:00.1259+01:00", &ms));
    assert_int_equal(ms, 1795253400125LL);
    assert_true(jvc_time_parse("2000-02-29T23:59:59-00:30", &ms));
    assert_int_equal(ms, (951868799LL + 1800) * 1000);
    const char *bad[] = {"",
                         "2026-11-21",
                         "2026-11-21T09:30:00",
                         "2026-13-01T00:00:00Z",
                         "2026-11-21T24:00:00Z",
                         "2026-11-21T09:30:00.Z",
                         "2026-11-21T09:30:00Zjunk",
                         "2026-11-21T09:30:00+0100",
                         "26-11-21T09:30:00Z"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(jvc_time_parse(bad[i], &ms));
}

static void test_time_format(void **state)
{
    (void)state;
    char buf[64];
    jvc_time_rfc3339(1795253400125LL, buf, sizeof buf);
    assert_string_equal(buf, "2026-11-21T09:30:00.125Z");
    jvc_time_rfc3339(-1, buf, sizeof buf);
    assert_string_equal(buf, "1969-12-31T23:59:59.999Z");
    /* Local time follows TZ. */
    setenv("TZ", "UTC", 1);
    tzset();
    jvc_time_local(1795253400125LL, buf, sizeof buf);
    assert_string_equal(buf, "2026-11-21 09:30:00 UTC");
    setenv("TZ", "EST5", 1);
    tzset();
    jvc_time_local(1795253400125LL, buf, sizeof buf);
    assert_string_equal(buf, "2026-11-21 04:30:00 EST");
    json_t *s = json_string("2026-11-21T09:30:00.125Z");
    assert_string_equal(jvc_time_human(s, buf, sizeof buf),
                        "2026-11-21 04:30:00 EST");
    json_decref(s);
    assert_string_equal(jvc_time_human(NULL, buf, sizeof buf), "-");
    s = json_string("not a time");
    assert_string_equal(jvc_time_human(s, buf, sizeof buf), "not a time");
    json_decref(s);
    setenv("TZ", "UTC", 1);
    tzset();
}

static void test_time_arg(void **state)
{
    (void)state;
    int64_t ms, now = 1795253400125LL;
    assert_true(jvc_time_arg("1795253400125", now, &ms));
    assert_int_equal(ms, 1795253400125LL);
    assert_true(jvc_time_arg("90s", now, &ms));
    assert_int_equal(ms, now - 90000);
    assert_true(jvc_time_arg("15m", now, &ms));
    assert_int_equal(ms, now - 900000);
    assert_true(jvc_time_arg("2h", now, &ms));
    assert_int_equal(ms, now - 7200000);
    assert_true(jvc_time_arg("7d", now, &ms));
    assert_int_equal(ms, now - 7 * 86400000LL);
    assert_true(jvc_time_arg("2026-11-21T09:30:00Z", now, &ms));
    assert_int_equal(ms, 1795253400000LL);
    assert_false(jvc_time_arg("", now, &ms));
    assert_false(jvc_time_arg("5w", now, &ms));
    assert_false(jvc_time_arg("h", now, &ms));
    assert_false(jvc_time_arg("yesterday", now, &ms));
}

static void test_sizes_durations(void **state)
{
    (void)state;
    char buf[32];
    jvc_bytes_human(0, buf, sizeof buf);
    assert_string_equal(buf, "0 B");
    jvc_bytes_human(1023, buf, sizeof buf);
    assert_string_equal(buf, "1023 B");
    jvc_bytes_human(14680064, buf, sizeof buf);
    assert_string_equal(buf, "14.0 MiB");
    jvc_bytes_human(1536, buf, sizeof buf);
    assert_string_equal(buf, "1.5 KiB");
    jvc_duration_human(5, buf, sizeof buf);
    assert_string_equal(buf, "5s");
    jvc_duration_human(3605, buf, sizeof buf);
    assert_string_equal(buf, "1h 0m 5s");
    jvc_duration_human(90061, buf, sizeof buf);
    assert_string_equal(buf, "1d 1h 1m");
    jvc_duration_human(-3, buf, sizeof buf);
    assert_string_equal(buf, "0s");
}

static void test_sanitize(void **state)
{
    (void)state;
    char *s = jvc_sanitize("plain text", 0);
    assert_string_equal(s, "plain text");
    jv_free(s);
    /* Escape sequences from the network never reach the terminal. */
    s = jvc_sanitize("red\x1b[31m\r\nbell\x07\x7f", 0);
    assert_string_equal(s, "red\\x1b[31m\\x0d\\nbell\\x07\\x7f");
    jv_free(s);
    /* U+009B (CSI) as UTF-8 is escaped too; other UTF-8 is kept. */
    s = jvc_sanitize("a\xc2\x9b"
                     "b h\xc3\xa9",
                     0);
    assert_string_equal(s, "a\\u009bb h\xc3\xa9");
    jv_free(s);
    /* Cut by characters, not bytes. */
    s = jvc_sanitize("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 2);
    assert_string_equal(s, "\xc3\xa9\xc3\xa9...");
    jv_free(s);
    s = jvc_sanitize("abc", 3);
    assert_string_equal(s, "abc");
    jv_free(s);
    assert_int_equal(jvc_display_width("h\xc3\xa9llo"), 5);
}

static char *render(const jvc_table *t);

/* Bidirectional overrides and isolates (U+202A..U+202E, U+2066..U+2069)
 * reorder what a terminal shows: a name could make a table lie. They are
 * escaped like controls; their neighbours (U+2029, U+202F, U+2065,
 * U+206A) and other UTF-8 are kept. */
static void test_sanitize_bidi(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"a\xe2\x80\xaa"
         "b",
         "a\\u202ab"},
        {"\xe2\x80\xae"
         "evil",
         "\\u202eevil"},
        {"x\xe2\x81\xa6y\xe2\x81\xa9", "x\\u2066y\\u2069"},
        {"\xe2\x80\xab\xe2\x80\xac\xe2\x80\xad\xe2\x81\xa7\xe2\x81\xa8",
         "\\u202b\\u202c\\u202d\\u2067\\u2068"},
        {"\xe2\x80\xa9\xe2\x80\xaf\xe2\x81\xa5\xe2\x81\xaa\xe2\x82\xac",
         "\xe2\x80\xa9\xe2\x80\xaf\xe2\x81\xa5\xe2\x81\xaa\xe2\x82\xac"},
        /* A truncated sequence at the end is copied, not read past. */
        {"a\xe2\x80", "a\xe2\x80"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        char *s = jvc_sanitize(cases[i].in, 0);
        assert_non_null(s);
        assert_string_equal(s, cases[i].out);
        jv_free(s);
    }
    /* Counted as one character each when cutting. */
    char *s = jvc_sanitize("\xe2\x80\xae\xe2\x80\xae"
                           "abc",
                           2);
    assert_string_equal(s, "\\u202e\\u202e...");
    jv_free(s);
    /* In a table too. */
    static const char *const h[] = {"NAME"};
    jvc_table *t = jvc_table_new(1, h);
    assert_non_null(t);
    const char *r1[] = {"admin\xe2\x80\xae"
                        "txt.exe"};
    assert_true(jvc_table_add(t, r1));
    char *out = render(t);
    assert_string_equal(out, "NAME\n"
                             "admin\\u202etxt.exe\n");
    free(out);
    jvc_table_free(t);
}

static void test_value_arg(void **state)
{
    (void)state;
    struct {
        const char *arg;
        bool as_string;
        const char *json;
    } cases[] = {
        {"42", false, "42"},
        {"-5", false, "-5"},
        {"true", false, "true"},
        {"null", false, "null"},
        {"{\"a\":[1,2]}", false, "{\"a\": [1, 2]}"},
        {"\"quoted\"", false, "\"quoted\""},
        {"postgres://db:5432", false, "\"postgres://db:5432\""},
        {"{broken", false, "\"{broken\""},
        {"42", true, "\"42\""},
        {"", false, "\"\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *v = jvc_value_arg(cases[i].arg, cases[i].as_string);
        json_t *want = json_loads(cases[i].json, JSON_DECODE_ANY, NULL);
        assert_non_null(v);
        assert_non_null(want);
        assert_true(json_equal(v, want));
        json_decref(v);
        json_decref(want);
    }
}

/* Prints t into a string (malloc'd). */
static char *render(const jvc_table *t)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    assert_true(jvc_table_print(t, f));
    fclose(f);
    return buf;
}

static void test_table(void **state)
{
    (void)state;
    static const char *const h[] = {"NAME", "TOTAL", "NOTE"};
    jvc_table *t = jvc_table_new(3, h);
    assert_non_null(t);
    jvc_table_right(t, 1);
    jvc_table_max_width(t, 2, 5);
    const char *r1[] = {"requests", "42", ""};
    const char *r2[] = {"h\xc3\xa9", "7", "a long note"};
    const char *r3[] = {"esc\x1b", NULL, "x"};
    assert_true(jvc_table_add(t, r1));
    assert_true(jvc_table_add(t, r2));
    assert_true(jvc_table_add(t, r3));
    assert_int_equal(jvc_table_rows(t), 3);
    char *out = render(t);
    assert_string_equal(out, "NAME      TOTAL  NOTE\n"
                             "requests     42\n"
                             "h\xc3\xa9            7  a lon...\n"
                             "esc\\x1b       -  x\n");
    free(out);
    jvc_table_hide_header(t);
    out = render(t);
    assert_string_equal(out, "requests  42\n"
                             "h\xc3\xa9         7  a lon...\n"
                             "esc\\x1b    -  x\n");
    free(out);
    jvc_table_free(t);
    jvc_table_free(NULL);
}

static void test_table_objects(void **state)
{
    (void)state;
    json_t *arr = json_loads(
        "[{\"addr\":\"tcp://a:1\",\"lag\":3},"
        "{\"addr\":\"tcp://b:1\",\"seen_at\":\"2026-11-21T09:30:00.000Z\","
        "\"vv\":{\"x\":1}}]",
        0, NULL);
    assert_non_null(arr);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_true(jvc_table_print_objects(arr, f));
    fclose(f);
    assert_string_equal(buf, "ADDR       LAG  SEEN_AT                  VV\n"
                             "tcp://a:1  3    -                        -\n"
                             "tcp://b:1  -    2026-11-21 09:30:00 UTC  "
                             "{\"x\":1}\n");
    free(buf);
    json_decref(arr);
}

#define ID_A "aa00000000000000000000000000000000000000000000000000000000000000"
#define ID_B "bb00000000000000000000000000000000000000000000000000000000000000"

static json_t *export_doc(const char *extra_counter, const char *config_value,
                          bool extra_audit)
{
    json_t *doc = json_pack(
        "{s:s, s:{s:{s:{s:i,s:i}}}, s:[{s:s,s:i,s:I,s:s,s:s,s:s,s:s}],"
        " s:{s:{s:s,s:I,s:s}}, s:{s:[{s:s,s:i,s:I,s:o}]},"
        " s:{s:{s:i},s:[]}, s:{}}",
        "format", "jarvis-export/1", "counters", "requests", ID_A, "p", 45, "n",
        3, "audit", "origin", ID_A, "seq", 1, "time_ms",
        (json_int_t)1795253400125LL, "actor", "ci", "action", "deploy",
        "target", "web-1", "detail", "", "config", "db/url", "value",
        config_value, "stamp", (json_int_t)118423905239040001LL, "replica",
        ID_A, "archive", "reports/1", "replica", ID_A, "n", 3, "stamp",
        (json_int_t)1, "value", json_pack("{s:b}", "ok", 1), "archive_context",
        "vector", ID_A, 3, "cloud", "trust");
    assert_non_null(doc);
    if (extra_counter != NULL)
        json_object_set_new(json_object_get(doc, "counters"), extra_counter,
                            json_pack("{s:{s:i,s:i}}", ID_B, "p", 1, "n", 0));
    if (extra_audit)
        json_array_append_new(
            json_object_get(doc, "audit"),
            json_pack("{s:s,s:i,s:I,s:s,s:s,s:s,s:s}", "origin", ID_B, "seq", 1,
                      "time_ms", (json_int_t)1795253400200LL, "actor", "ops",
                      "action", "restart", "target", "db", "detail", ""));
    return doc;
}

static size_t count(json_t *d, const char *kind, const char *list)
{
    return json_array_size(json_object_get(
        json_object_get(json_object_get(d, "kinds"), kind), list));
}

static void test_diff(void **state)
{
    (void)state;
    json_t *a = export_doc(NULL, "postgres://a", false);
    json_t *a2 = export_doc(NULL, "postgres://a", false);
    json_t *b = export_doc("hits", "postgres://b", true);

    json_t *d = jvc_export_diff(a, a2);
    assert_non_null(d);
    assert_true(json_is_true(json_object_get(d, "identical")));
    /* Every kind is listed; the equal format is not a kind. */
    const char *kinds[] = {"archive", "archive_context", "audit",
                           "config",  "counters",        "trust"};
    assert_int_equal(json_object_size(json_object_get(d, "kinds")), 6);
    for (size_t i = 0; i < 6; i++)
        assert_non_null(json_object_get(json_object_get(d, "kinds"), kinds[i]));
    json_decref(d);

    d = jvc_export_diff(a, b);
    assert_non_null(d);
    assert_true(json_is_false(json_object_get(d, "identical")));
    assert_int_equal(count(d, "counters", "only_b"), 1);
    assert_int_equal(count(d, "counters", "only_a"), 0);
    assert_int_equal(count(d, "config", "different"), 1);
    assert_int_equal(count(d, "audit", "only_b"), 1);
    assert_int_equal(count(d, "archive", "different"), 0);
    json_t *item = json_array_get(
        json_object_get(json_object_get(json_object_get(d, "kinds"), "audit"),
                        "only_b"),
        0);
    assert_string_equal(json_string_value(json_object_get(item, "key")),
                        ID_B ":1");
    item = json_array_get(
        json_object_get(json_object_get(json_object_get(d, "kinds"), "config"),
                        "different"),
        0);
    assert_string_equal(json_string_value(json_object_get(item, "key")),
                        "db/url");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(item, "a"), "value")),
        "postgres://a");
    json_decref(d);

    /* Swapping the sides swaps only_a and only_b. */
    d = jvc_export_diff(b, a);
    assert_int_equal(count(d, "counters", "only_a"), 1);
    assert_int_equal(count(d, "audit", "only_a"), 1);
    json_decref(d);

    /* A context vector entry that moved shows as different. */
    json_object_set_new(
        json_object_get(json_object_get(a2, "archive_context"), "vector"), ID_A,
        json_integer(4));
    d = jvc_export_diff(a, a2);
    assert_int_equal(count(d, "archive_context", "different"), 1);
    json_decref(d);

    /* Summaries for humans. */
    char *s = jvc_diff_summary(
        "counters",
        json_object_get(json_object_get(a, "counters"), "requests"));
    assert_string_equal(s, "total 42 over 1 replica");
    jv_free(s);
    /* Shares whose sum leaves 64 bits: the exact total (docs/api.md). */
    json_t *wide = json_pack("{s:{s:I,s:I},s:{s:I,s:I}}", ID_A, "p",
                             (json_int_t)INT64_MAX, "n", (json_int_t)0, ID_B,
                             "p", (json_int_t)INT64_MAX, "n", (json_int_t)1);
    s = jvc_diff_summary("counters", wide);
    assert_string_equal(s, "total 18446744073709551613 over 2 replicas");
    jv_free(s);
    json_decref(wide);
    s = jvc_diff_summary(
        "config", json_object_get(json_object_get(a, "config"), "db/url"));
    assert_string_equal(s, "\"postgres://a\" (by aa0000000000, stamp "
                           "118423905239040001)");
    jv_free(s);
    s = jvc_diff_summary(
        "archive", json_object_get(json_object_get(a, "archive"), "reports/1"));
    assert_string_equal(s, "{\"ok\":true}");
    jv_free(s);
    s = jvc_diff_summary("audit",
                         json_array_get(json_object_get(a, "audit"), 0));
    assert_string_equal(s, "2026-11-21 09:30:00 UTC ci deploy web-1");
    jv_free(s);

    json_decref(a);
    json_decref(a2);
    json_decref(b);
}

/* Every allocation failure is reported, never a crash or a leak. */
static void test_diff_alloc_failures(void **state)
{
    (void)state;
    json_t *a = export_doc(NULL, "x", false);
    json_t *b = export_doc("hits", "y", true);
    for (long n = 0;; n++) {
        jv_alloc_fail_after(n);
        json_t *d = jvc_export_diff(a, b);
        long failed = jv_alloc_failed_count();
        jv_alloc_fail_reset();
        if (failed == 0) {
            assert_non_null(d);
            json_decref(d);
            break;
        }
        json_decref(d);
        assert_true(n < 10000);
    }
    json_decref(a);
    json_decref(b);
}

/* Tables under allocation failures: refused cleanly at every point. */
static void test_table_alloc_failures(void **state)
{
    (void)state;
    static const char *const h[] = {"A", "B"};
    const char *row[] = {"x\x1by", "long value"};
    for (long n = 0;; n++) {
        jv_alloc_fail_after(n);
        bool ok = false;
        jvc_table *t = jvc_table_new(2, h);
        if (t != NULL) {
            jvc_table_max_width(t, 1, 4);
            ok = true;
            for (int i = 0; i < 40 && ok; i++)
                ok = jvc_table_add(t, row);
            FILE *f = fopen("/dev/null", "w");
            ok = ok && jvc_table_print(t, f);
            fclose(f);
        }
        jvc_table_free(t);
        long failed = jv_alloc_failed_count();
        jv_alloc_fail_reset();
        if (failed == 0) {
            assert_true(ok);
            break;
        }
        assert_false(ok);
        assert_true(n < 10000);
    }
}

int main(void)
{
    setenv("TZ", "UTC", 1);
    tzset();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_parse),
        cmocka_unit_test(test_time_format),
        cmocka_unit_test(test_time_arg),
        cmocka_unit_test(test_sizes_durations),
        cmocka_unit_test(test_sanitize),
        cmocka_unit_test(test_sanitize_bidi),
        cmocka_unit_test(test_value_arg),
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_table_objects),
        cmocka_unit_test(test_diff),
        cmocka_unit_test(test_diff_alloc_failures),
        cmocka_unit_test(test_table_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
