/*
 * jsonout_test.c - node/jsonout.c writes what jansson's json_dumpb(v,
 * JSON_COMPACT | JSON_ENCODE_ANY) writes, byte for byte, and refuses what
 * it refuses or writes as broken JSON: random trees of every kind of value,
 * with strings of plain ASCII, of characters to escape, of UTF-8, of invalid
 * UTF-8 and with NUL bytes, as values and as keys, integers at the edges,
 * reals. The seed is printed (JV_SEED replays it; JV_SCHEDULES sets the number
 * of trees).
 */
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "jsonout.h"
#include "testutil.h"

static jv_rng rng;

/* A string of one of several kinds; *n its length. */
static size_t random_text(char *s, size_t cap)
{
    static const char *const pieces[] = {
        "a",    "Z",    "0",    " ",   "/",    "\"",
        "\\",   "\n",   "\t",   "\b",  "\f",   "\r",
        "\x01", "\x1f", "\x7f", "é",   "€",    "\xf0\x9f\x98\x80",
        "\xff", "\xc3", "\0",   "key", "name", "~",
        "{",    "}",    ":",    ","};
    size_t npieces = sizeof pieces / sizeof *pieces;
    unsigned kind = (unsigned)jv_rng_below(&rng, 4);
    size_t len = (size_t)jv_rng_below(&rng, 24), n = 0;
    for (size_t i = 0; i < len; i++) {
        /* kind 0: plain ASCII only, the fast path. */
        size_t k = kind == 0 ? (size_t)jv_rng_below(&rng, 5)
                             : (size_t)jv_rng_below(&rng, npieces);
        if (kind == 0 && k == 4)
            k = 21 + (size_t)jv_rng_below(&rng, 7);
        const char *p = pieces[k];
        size_t pl = k == 20 ? 1 : strlen(p);
        if (n + pl > cap)
            break;
        memcpy(s + n, p, pl);
        n += pl;
    }
    return n;
}

static json_t *random_value(unsigned depth)
{
    char text[128];
    unsigned kind = (unsigned)jv_rng_below(&rng, depth < 5 ? 9 : 7);
    switch (kind) {
    case 0:
        return json_null();
    case 1:
        return json_boolean((int)jv_rng_below(&rng, 2));
    case 2: {
        static const json_int_t edges[] = {
            0, -1, 1, 9, 10, -10, INT64_MAX, INT64_MIN, INT64_MIN + 1};
        if (jv_rng_below(&rng, 3) == 0)
            return json_integer(edges[jv_rng_below(&rng, 9)]);
        return json_integer((json_int_t)jv_rng_next(&rng) >>
                            jv_rng_below(&rng, 64));
    }
    case 3: {
        static const double edges[] = {
            0.0, -0.0, 1.0, 0.1, 1e300, -1e-300, DBL_MAX, DBL_MIN, 123456789.0};
        if (jv_rng_below(&rng, 2) == 0)
            return json_real(edges[jv_rng_below(&rng, 9)]);
        return json_real((double)(int64_t)jv_rng_next(&rng) /
                         (double)(1 + jv_rng_below(&rng, 1000000)));
    }
    case 4:
    case 5:
    case 6:
        /* nocheck: invalid UTF-8 and NUL bytes too, which jansson
         * refuses to write. */
        return json_stringn_nocheck(text, random_text(text, sizeof text));
    case 7: {
        json_t *a = json_array();
        unsigned n = (unsigned)jv_rng_below(&rng, 6);
        for (unsigned i = 0; i < n; i++)
            json_array_append_new(a, random_value(depth + 1));
        return a;
    }
    default: {
        json_t *o = json_object();
        unsigned n = (unsigned)jv_rng_below(&rng, 6);
        for (unsigned i = 0; i < n; i++) {
            size_t kl = random_text(text, sizeof text);
            json_object_setn_new_nocheck(o, text, kl, random_value(depth + 1));
        }
        return o;
    }
    }
}

/* True when an object in v has a key jansson cannot write as a string. */
static bool has_bad_key(json_t *v)
{
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            if (has_bad_key(json_array_get(v, i)))
                return true;
    } else if (json_is_object(v)) {
        for (void *it = json_object_iter(v); it;
             it = json_object_iter_next(v, it)) {
            json_t *k = json_stringn_nocheck(json_object_iter_key(it),
                                             json_object_iter_key_len(it));
            assert_non_null(k);
            size_t n = json_dumpb(k, NULL, 0, JSON_ENCODE_ANY);
            json_decref(k);
            if (n == 0 || has_bad_key(json_object_iter_value(it)))
                return true;
        }
    }
    return false;
}

/* False when v is refused. */
static bool check_same(json_t *v, uint64_t schedule)
{
    const size_t flags = JSON_COMPACT | JSON_ENCODE_ANY;
    size_t want_len = json_dumpb(v, NULL, 0, flags);
    char *want = want_len ? malloc(want_len) : NULL;
    if (want_len) {
        assert_non_null(want);
        assert_int_equal(json_dumpb(v, want, want_len, flags), want_len);
    }
    /* For a key that is not valid UTF-8, jansson writes what it escaped of
     * it, with no closing quote (it does not check how a key's writing
     * went), and goes on: broken text, which must be refused instead. */
    if (has_bad_key(v))
        want_len = 0;
    jv_buf got;
    jv_buf_init(&got);
    jv_err err = jv_json_write(&got, v);
    if (want_len == 0) {
        if (err != JV_EINVAL)
            fprintf(stderr, "schedule %llu: jansson refused, we wrote %.*s\n",
                    (unsigned long long)schedule, (int)got.len,
                    (const char *)got.data);
        assert_int_equal(err, JV_EINVAL);
    } else {
        if (err != JV_OK || got.len != want_len ||
            memcmp(got.data, want, want_len) != 0)
            fprintf(stderr, "schedule %llu:\n want %.*s\n got  %.*s\n",
                    (unsigned long long)schedule, (int)want_len, want,
                    (int)got.len, (const char *)got.data);
        assert_int_equal(err, JV_OK);
        assert_int_equal(got.len, want_len);
        assert_memory_equal(got.data, want, want_len);
    }
    free(want);
    jv_buf_fini(&got);
    return err == JV_OK;
}

static void test_same_as_jansson(void **state)
{
    (void)state;
    uint64_t seed = jv_test_seed(), n = jv_test_schedules(20000);
    unsigned refused = 0;
    for (uint64_t i = 0; i < n; i++) {
        jv_rng_seed(&rng, seed + i);
        json_t *v = random_value(0);
        assert_non_null(v);
        refused += !check_same(v, i);
        json_decref(v);
    }
    /* Both sides of the check were exercised. */
    printf("%llu trees, %u refused\n", (unsigned long long)n, refused);
    if (n >= 1000)
        assert_true(refused > 0 && refused < n);
}

/* What the API writes most: an answer built as the handlers build them. */
static void test_answer(void **state)
{
    (void)state;
    json_t *v =
        json_pack("{s:s,s:I,s:[{s:s,s:I,s:I}],s:b,s:n,s:f}", "name", "bench",
                  "total", (json_int_t)1234567, "shares", "replica", "204080d4",
                  "increments", (json_int_t)1234567, "decrements",
                  (json_int_t)0, "ok", 1, "none", "ratio", 0.5);
    assert_non_null(v);
    check_same(v, 0);
    jv_buf b;
    jv_buf_init(&b);
    assert_int_equal(jv_json_write(&b, v), JV_OK);
    const char want[] = "{\"name\":\"bench\",\"total\":1234567,\"shares\":[{"
                        "\"replica\":\"204080d4\",\"increments\":1234567,"
                        "\"decrements\":0}],\"ok\":true,\"none\":null,"
                        "\"ratio\":0.5}";
    assert_int_equal(b.len, sizeof want - 1);
    assert_memory_equal(b.data, want, sizeof want - 1);
    jv_buf_fini(&b);
    json_decref(v);
}

/* A full buffer stays full: the error, not a partial answer as success. */
static void test_buffer_error(void **state)
{
    (void)state;
    jv_buf b;
    jv_buf_init(&b);
    b.err = 1;
    json_t *v = json_pack("{s:[i,f,s]}", "a", 1, 2.5, "\x01");
    assert_int_equal(jv_json_write(&b, v), JV_ENOMEM);
    assert_int_equal(jv_json_write(&b, NULL), JV_EINVAL);
    json_decref(v);
    jv_buf_fini(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_as_jansson),
        cmocka_unit_test(test_answer),
        cmocka_unit_test(test_buffer_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
