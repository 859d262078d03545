#include "diff.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "gcounter.h"
#include "output.h"

/* Adds key -> value to map (a JSON object used as a map). */
static int put(json_t *map, const char *key, json_t *value)
{
    return json_object_set(map, key, value);
}

/* Turns one kind of an export into a map from item key to value. */
static json_t *flatten(const char *kind, json_t *v)
{
    json_t *map = json_object();
    const char *k;
    json_t *x;
    size_t i;
    if (map == NULL)
        return NULL;
    if (strcmp(kind, "audit") == 0 && json_is_array(v)) {
        json_array_foreach(v, i, x)
        {
            char *key =
                jvc_strf("%s:%" JSON_INTEGER_FORMAT, jvc_str(x, "origin", "?"),
                         json_integer_value(json_object_get(x, "seq")));
            int err = key ? put(map, key, x) : -1;
            jv_free(key);
            if (err != 0)
                goto fail;
        }
        return map;
    }
    if (strcmp(kind, "archive_context") == 0 && json_is_object(v)) {
        json_object_foreach(v, k, x)
        {
            if (json_is_object(x)) {
                const char *r;
                json_t *n;
                json_object_foreach(x, r, n)
                {
                    char *mk = jvc_strf("%s/%s", k, r);
                    int err = mk ? put(map, mk, n) : -1;
                    jv_free(mk);
                    if (err != 0)
                        goto fail;
                }
            } else if (json_is_array(x)) {
                size_t j;
                json_t *e;
                json_array_foreach(x, j, e)
                {
                    char *c = jvc_json_compact(e);
                    char *mk = c ? jvc_strf("%s/%s", k, c) : NULL;
                    int err = mk ? put(map, mk, e) : -1;
                    jv_free(c);
                    jv_free(mk);
                    if (err != 0)
                        goto fail;
                }
            } else if (put(map, k, x) != 0) {
                goto fail;
            }
        }
        return map;
    }
    if (json_is_object(v)) {
        json_object_foreach(v, k, x)
        {
            if (put(map, k, x) != 0)
                goto fail;
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, x)
        {
            char *c = jvc_json_compact(x);
            int err = c ? put(map, c, x) : -1;
            jv_free(c);
            if (err != 0)
                goto fail;
        }
    } else if (v != NULL && put(map, "", v) != 0) {
        goto fail;
    }
    return map;
fail:
    json_decref(map);
    return NULL;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The keys of the objects a and b (either may be NULL), sorted and
 * without duplicates; *n receives how many. jv_malloc'd array of borrowed
 * strings. */
static const char **union_keys(json_t *a, json_t *b, size_t *n)
{
    size_t cap = json_object_size(a) + json_object_size(b), m = 0;
    const char **keys = jv_calloc(cap ? cap : 1, sizeof *keys);
    const char *k;
    json_t *v;
    if (keys == NULL)
        return NULL;
    json_object_foreach(a, k, v) keys[m++] = k;
    json_object_foreach(b, k, v) keys[m++] = k;
    qsort(keys, m, sizeof *keys, cmp_str);
    size_t u = 0;
    for (size_t i = 0; i < m; i++)
        if (u == 0 || strcmp(keys[u - 1], keys[i]) != 0)
            keys[u++] = keys[i];
    *n = u;
    return keys;
}

/* Compares two maps; appends to the kind's three lists. */
static int compare_maps(json_t *ma, json_t *mb, json_t *out, bool *identical)
{
    size_t n;
    const char **keys = union_keys(ma, mb, &n);
    if (keys == NULL)
        return -1;
    int err = 0;
    json_t *only_a = json_object_get(out, "only_a");
    json_t *only_b = json_object_get(out, "only_b");
    json_t *diff = json_object_get(out, "different");
    for (size_t i = 0; i < n && err == 0; i++) {
        json_t *va = json_object_get(ma, keys[i]);
        json_t *vb = json_object_get(mb, keys[i]);
        if (va != NULL && vb != NULL && json_equal(va, vb))
            continue;
        *identical = false;
        if (vb == NULL)
            err = json_array_append_new(
                only_a, json_pack("{s:s,s:O}", "key", keys[i], "value", va));
        else if (va == NULL)
            err = json_array_append_new(
                only_b, json_pack("{s:s,s:O}", "key", keys[i], "value", vb));
        else
            err = json_array_append_new(
                diff,
                json_pack("{s:s,s:O,s:O}", "key", keys[i], "a", va, "b", vb));
    }
    jv_free(keys);
    return err;
}

json_t *jvc_export_diff(json_t *a, json_t *b)
{
    json_t *res = json_object(), *kinds = json_object();
    const char **names = NULL;
    bool identical = true;
    size_t n;
    if (res == NULL || kinds == NULL || (names = union_keys(a, b, &n)) == NULL)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        /* The format is no data kind: listed only when it differs. */
        if (strcmp(names[i], "format") == 0 &&
            json_equal(json_object_get(a, "format"),
                       json_object_get(b, "format")))
            continue;
        json_t *ma = flatten(names[i], json_object_get(a, names[i]));
        json_t *mb = flatten(names[i], json_object_get(b, names[i]));
        json_t *k =
            json_pack("{s:[],s:[],s:[]}", "only_a", "only_b", "different");
        int err = ma == NULL || mb == NULL || k == NULL ||
                  compare_maps(ma, mb, k, &identical) != 0 ||
                  json_object_set(kinds, names[i], k) != 0;
        json_decref(ma);
        json_decref(mb);
        json_decref(k);
        if (err)
            goto fail;
    }
    if (json_object_set_new(res, "identical", json_boolean(identical)) != 0 ||
        json_object_set(res, "kinds", kinds) != 0)
        goto fail;
    json_decref(kinds);
    jv_free(names);
    return res;
fail:
    json_decref(kinds);
    json_decref(res);
    jv_free(names);
    return NULL;
}

/* The exact total of an exported counter's shares (each share is at most
 * 2^63 - 1; the sum may not fit in 64 bits). */
static char *counter_summary(json_t *v)
{
    jv_count total = {{0, 0}, {0, 0}};
    char text[JV_COUNT_TEXT];
    const char *r;
    json_t *share;
    json_object_foreach(v, r, share)
    {
        json_int_t p = json_integer_value(json_object_get(share, "p"));
        json_int_t n = json_integer_value(json_object_get(share, "n"));
        jv_count_add(&total, p > 0 ? (uint64_t)p : 0, n > 0 ? (uint64_t)n : 0);
    }
    jv_count_format(&total, text);
    return jvc_strf("total %s over %zu replica%s", text, json_object_size(v),
                    json_object_size(v) == 1 ? "" : "s");
}

static char *audit_summary(const json_t *v)
{
    char when[64];
    const json_t *t = json_object_get(v, "time_ms");
    if (json_is_integer(t))
        jvc_time_local(json_integer_value(t), when, sizeof when);
    else
        snprintf(when, sizeof when, "-");
    return jvc_strf("%s %s %s %s", when, jvc_str(v, "actor", "-"),
                    jvc_str(v, "action", "-"), jvc_str(v, "target", ""));
}

static char *register_summary(const json_t *v)
{
    char id[JVC_SHORT_ID + 1];
    char *val = jvc_json_compact(json_object_get(v, "value"));
    char *s =
        val ? jvc_strf("%s (by %s, stamp %" JSON_INTEGER_FORMAT ")", val,
                       jvc_short_id(jvc_str(v, "replica", "-"), id, sizeof id),
                       json_integer_value(json_object_get(v, "stamp")))
            : NULL;
    jv_free(val);
    return s;
}

static char *archive_summary(json_t *v)
{
    json_t *vals = json_array();
    size_t i;
    json_t *x;
    if (vals == NULL)
        return NULL;
    json_array_foreach(v, i, x)
    {
        json_array_append(vals, json_object_get(x, "value"));
    }
    char *c = jvc_json_compact(
        json_array_size(vals) == 1 ? json_array_get(vals, 0) : vals);
    json_decref(vals);
    return c;
}

char *jvc_diff_summary(const char *kind, json_t *value)
{
    if (strcmp(kind, "counters") == 0 && json_is_object(value))
        return counter_summary(value);
    if (strcmp(kind, "audit") == 0 && json_is_object(value))
        return audit_summary(value);
    if (strcmp(kind, "config") == 0 && json_is_object(value))
        return register_summary(value);
    if (strcmp(kind, "archive") == 0 && json_is_array(value))
        return archive_summary(value);
    return jvc_json_compact(value);
}
