/*
 * jsonout.c - see jsonout.h.
 */
#include "jsonout.h"

#include <stdbool.h>
#include <string.h>

#define FLAGS (JSON_COMPACT | JSON_ENCODE_ANY)

/* A value written by jansson, for the cases this module leaves to it. */
static jv_err put_by_jansson(jv_buf *out, const json_t *v)
{
    size_t room = 64;
    for (;;) {
        jv_err err = jv_buf_reserve(out, room);
        if (err != JV_OK)
            return err;
        size_t n = json_dumpb(v, (char *)out->data + out->len,
                              out->cap - out->len, FLAGS);
        if (n == 0)
            return JV_EINVAL;
        if (n <= out->cap - out->len) {
            out->len += n;
            return JV_OK;
        }
        room = n;
    }
}

/* True when s goes between quotes as it is: printable ASCII, no '"' and no
 * '\\' (jansson escapes '/' only when asked to). */
static bool plain(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c > 0x7e || c == '"' || c == '\\')
            return false;
    }
    return true;
}

static jv_err put_string(jv_buf *out, const char *s, size_t n)
{
    if (!plain(s, n)) {
        json_t *t = json_stringn_nocheck(s, n);
        if (!t)
            return JV_ENOMEM;
        jv_err err = put_by_jansson(out, t);
        json_decref(t);
        return err;
    }
    jv_err err = jv_buf_reserve(out, n + 2);
    if (err != JV_OK)
        return err;
    out->data[out->len++] = '"';
    memcpy(out->data + out->len, s, n);
    out->len += n;
    out->data[out->len++] = '"';
    return JV_OK;
}

static jv_err put_integer(jv_buf *out, json_int_t v)
{
    char tmp[24], *p = tmp + sizeof tmp;
    /* Negated as unsigned, so the most negative value works too. */
    unsigned long long u =
        v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    return jv_buf_append(out, p, (size_t)(tmp + sizeof tmp - p));
}

static jv_err put_object(jv_buf *out, json_t *o)
{
    jv_err err = jv_buf_append(out, "{", 1);
    bool first = true;
    for (void *it = json_object_iter(o); it && err == JV_OK;
         it = json_object_iter_next(o, it)) {
        if (!first)
            err = jv_buf_append(out, ",", 1);
        first = false;
        if (err == JV_OK)
            err = put_string(out, json_object_iter_key(it),
                             json_object_iter_key_len(it));
        if (err == JV_OK)
            err = jv_buf_append(out, ":", 1);
        if (err == JV_OK)
            err = jv_json_write(out, json_object_iter_value(it));
    }
    return err == JV_OK ? jv_buf_append(out, "}", 1) : err;
}

static jv_err put_array(jv_buf *out, json_t *v)
{
    jv_err err = jv_buf_append(out, "[", 1);
    size_t n = json_array_size(v);
    for (size_t i = 0; i < n && err == JV_OK; i++) {
        if (i > 0)
            err = jv_buf_append(out, ",", 1);
        if (err == JV_OK)
            err = jv_json_write(out, json_array_get(v, i));
    }
    return err == JV_OK ? jv_buf_append(out, "]", 1) : err;
}

jv_err jv_json_write(jv_buf *out, json_t *v)
{
    if (!v)
        return JV_EINVAL;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return put_object(out, v);
    case JSON_ARRAY:
        return put_array(out, v);
    case JSON_STRING:
        return put_string(out, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        return put_integer(out, json_integer_value(v));
    case JSON_TRUE:
        return jv_buf_append(out, "true", 4);
    case JSON_FALSE:
        return jv_buf_append(out, "false", 5);
    case JSON_NULL:
        return jv_buf_append(out, "null", 4);
    default: /* JSON_REAL */
        return put_by_jansson(out, v);
    }
}
