/*
 * fuzz_cli.c - jarvisctl's human output of what a node answers: any JSON
 * value rendered as the CLI renders lists of objects (jarvisctl peers), as
 * a field/value table with width limits, and through the time and value
 * helpers. No crash, and nothing in the output that drives a terminal:
 * it must be valid UTF-8 without C0 controls (but the newline ending each
 * line), DEL, or C1 controls, whatever bytes the node sent.
 */
#define _GNU_SOURCE /* open_memstream */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "fuzz.h"
#include "output.h"
#include "table.h"

/* Valid UTF-8, no control character but '\n'. */
static void check_terminal_safe(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        if (c < 0x80) {
            JV_FUZZ_CHECK(c >= 0x20 || c == '\n');
            JV_FUZZ_CHECK(c != 0x7f);
            i++;
            continue;
        }
        size_t len = c >= 0xc2 && c <= 0xdf   ? 2
                     : c >= 0xe0 && c <= 0xef ? 3
                     : c >= 0xf0 && c <= 0xf4 ? 4
                                              : 0;
        JV_FUZZ_CHECK(len != 0 && i + len <= n);
        for (size_t k = 1; k < len; k++)
            JV_FUZZ_CHECK((p[i + k] & 0xc0) == 0x80);
        /* U+0080..U+009F are the C1 controls (CSI is U+009B). */
        JV_FUZZ_CHECK(!(c == 0xc2 && p[i + 1] <= 0x9f));
        i += len;
    }
}

/* Each field of obj as a "field  value" row, values cut at 40 characters
 * (the layout of jarvisctl status and the show commands). */
static void field_table(json_t *obj, FILE *f)
{
    static const char *const hdr[] = {"FIELD", "VALUE"};
    jvc_table *t = jvc_table_new(2, hdr);
    if (!t)
        return;
    jvc_table_max_width(t, 1, 40);
    jvc_table_right(t, 0);
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        char tbuf[64], nbuf[32];
        char *compact = NULL;
        const char *cell;
        if (json_is_string(v))
            cell = jvc_time_human(v, tbuf, sizeof(tbuf));
        else if (json_is_integer(v))
            cell = jvc_int_text(obj, key, nbuf, sizeof(nbuf));
        else
            cell = compact = jvc_json_compact(v);
        const char *row[2] = {key, cell};
        bool ok = jvc_table_add(t, row);
        jv_free(compact);
        if (!ok)
            break;
    }
    jvc_table_print(t, f);
    jvc_table_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t e;
    json_t *v = json_loadb((const char *)data, size,
                           JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    if (!v)
        return 0;
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    JV_FUZZ_CHECK(f != NULL);
    if (json_is_array(v)) {
        /* false only when out of memory */
        JV_FUZZ_CHECK(jvc_table_print_objects(v, f));
        size_t i;
        json_t *o;
        json_array_foreach(v, i, o) if (json_is_object(o)) field_table(o, f);
    } else if (json_is_object(v)) {
        json_t *arr = json_array();
        JV_FUZZ_CHECK(arr && json_array_append(arr, v) == 0);
        JV_FUZZ_CHECK(jvc_table_print_objects(arr, f));
        json_decref(arr);
        field_table(v, f);
    } else if (json_is_string(v)) {
        char *s = jvc_sanitize(json_string_value(v), 0);
        char *cut = jvc_sanitize(json_string_value(v), 7);
        JV_FUZZ_CHECK(s && cut);
        fprintf(f, "%s\n%s\n", s, cut);
        jv_free(s);
        jv_free(cut);
    }
    JV_FUZZ_CHECK(fclose(f) == 0);
    check_terminal_safe((const uint8_t *)out, len);
    free(out);
    json_decref(v);
    return 0;
}

size_t jv_fuzz_seeds(jv_buf *seeds, size_t max)
{
    static const char *const s[] = {
        "[{\"addr\":\"tcp://10.0.0.2:7411\",\"node\":\"3f0a9c\","
        "\"reachable\":true,\"last_seen_at\":\"2026-11-21T09:30:00.125Z\","
        "\"source\":\"config\"},{\"addr\":\"tcp://b:7411\",\"node\":null,"
        "\"reachable\":false,\"rtt_ms\":12}]",
        "{\"node\":\"abc\",\"uptime_s\":3600,\"db_bytes\":14680064,"
        "\"started_at\":\"2026-11-21T09:30:00+01:00\",\"vv\":{\"a\":1},"
        "\"peers\":[1,2.5,\"x\"]}",
        "[{\"name\":\"\\u001b[31mred\\u001b[0m\",\"value\":\"a\\tb\\nc\"},"
        "{\"name\":\"\\u009b2J\",\"detail\":\"\\u0000nul\",\"x\":\"\\u007f\"}]",
        "\"caf\\u00e9 \\u2603 \\ud83d\\ude00 and a long tail of text\"",
        "[{\"key\":\"doc/1\",\"value\":{\"n\":[1,{\"deep\":null}]},"
        "\"updated_at\":\"not a time\"}]",
        "{\"\\u001b]0;title\\u0007\":\"x\",\"ok\":true}",
    };
    size_t n = sizeof(s) / sizeof(*s);
    for (size_t i = 0; i < n && i < max; i++)
        jv_buf_append(&seeds[i], s[i], strlen(s[i]));
    return n < max ? n : max;
}
