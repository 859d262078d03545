#include "metrics.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

typedef struct jv_metric_series series;
typedef struct family family;

struct jv_metric_series {
    family *fam;
    char *labels;
    uint64_t hash;
    double value;     /* counter, gauge; histogram sum */
    uint64_t count;   /* histogram */
    uint64_t *bucket; /* histogram: cumulative at render, per bucket here */
    series *next;     /* in its family, creation order */
};

struct family {
    const char *name;
    const char *help;
    jv_metric_type type;
    double *bounds;
    size_t nbounds;
    series *first, *last;
    family *next;
};

struct jv_metrics {
    family *first, *last;
    series **table; /* open addressing on hash(name, labels) */
    size_t cap, n;
};

static uint64_t fnv(const char *a, const char *b)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *a; a++)
        h = (h ^ (uint8_t)*a) * 0x100000001b3ull;
    h = (h ^ 0xff) * 0x100000001b3ull;
    for (; *b; b++)
        h = (h ^ (uint8_t)*b) * 0x100000001b3ull;
    return h;
}

jv_metrics *jv_metrics_new(void)
{
    return jv_calloc(1, sizeof(jv_metrics));
}

void jv_metrics_free(jv_metrics *m)
{
    if (!m)
        return;
    for (family *f = m->first, *fn; f; f = fn) {
        fn = f->next;
        for (series *s = f->first, *sn; s; s = sn) {
            sn = s->next;
            jv_free(s->labels);
            jv_free(s->bucket);
            jv_free(s);
        }
        jv_free(f->bounds);
        jv_free(f);
    }
    jv_free(m->table);
    jv_free(m);
}

static family *find_family(const jv_metrics *m, const char *name)
{
    for (family *f = m->first; f; f = f->next)
        if (strcmp(f->name, name) == 0)
            return f;
    return NULL;
}

jv_err jv_metrics_declare(jv_metrics *m, const char *name, jv_metric_type type,
                          const char *help, const double *buckets,
                          size_t nbuckets)
{
    if (find_family(m, name))
        return JV_EEXIST;
    family *f = jv_calloc(1, sizeof(*f));
    if (!f)
        return JV_ENOMEM;
    f->name = name;
    f->help = help;
    f->type = type;
    if (type == JV_METRIC_HISTOGRAM && nbuckets) {
        f->bounds = jv_calloc(nbuckets, sizeof(double));
        if (!f->bounds) {
            jv_free(f);
            return JV_ENOMEM;
        }
        memcpy(f->bounds, buckets, nbuckets * sizeof(double));
        f->nbounds = nbuckets;
    }
    if (m->last)
        m->last->next = f;
    else
        m->first = f;
    m->last = f;
    return JV_OK;
}

static jv_err grow(jv_metrics *m)
{
    size_t cap = m->cap ? m->cap * 2 : 64;
    series **t = jv_calloc(cap, sizeof(*t));
    if (!t)
        return JV_ENOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        series *s = m->table[i];
        if (!s)
            continue;
        size_t j = (size_t)s->hash & (cap - 1);
        while (t[j])
            j = (j + 1) & (cap - 1);
        t[j] = s;
    }
    jv_free(m->table);
    m->table = t;
    m->cap = cap;
    return JV_OK;
}

static series *lookup(const jv_metrics *m, const char *name, const char *labels,
                      uint64_t h)
{
    if (!m->cap)
        return NULL;
    for (size_t j = (size_t)h & (m->cap - 1); m->table[j];
         j = (j + 1) & (m->cap - 1)) {
        series *s = m->table[j];
        if (s->hash == h && strcmp(s->fam->name, name) == 0 &&
            strcmp(s->labels, labels) == 0)
            return s;
    }
    return NULL;
}

static series *get_series(jv_metrics *m, const char *name, const char *labels,
                          jv_metric_type type)
{
    if (!labels)
        labels = "";
    uint64_t h = fnv(name, labels);
    series *s = lookup(m, name, labels, h);
    if (s)
        return s->fam->type == type ? s : NULL;
    family *f = find_family(m, name);
    if (!f || f->type != type)
        return NULL;
    if ((m->n + 1) * 2 > m->cap && grow(m) != JV_OK)
        return NULL;
    s = jv_calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->labels = jv_strndup(labels, strlen(labels));
    if (f->nbounds)
        s->bucket = jv_calloc(f->nbounds, sizeof(uint64_t));
    if (!s->labels || (f->nbounds && !s->bucket)) {
        jv_free(s->labels);
        jv_free(s);
        return NULL;
    }
    s->fam = f;
    s->hash = h;
    size_t j = (size_t)h & (m->cap - 1);
    while (m->table[j])
        j = (j + 1) & (m->cap - 1);
    m->table[j] = s;
    m->n++;
    if (f->last)
        f->last->next = s;
    else
        f->first = s;
    f->last = s;
    return s;
}

jv_metric_series *jv_metrics_series(jv_metrics *m, const char *name,
                                    const char *labels)
{
    family *f = find_family(m, name);
    return f ? get_series(m, name, labels, f->type) : NULL;
}

static void observe(series *s, double value)
{
    s->value += value;
    s->count++;
    for (size_t i = 0; i < s->fam->nbounds; i++) {
        if (value <= s->fam->bounds[i]) {
            s->bucket[i]++;
            break;
        }
    }
}

void jv_metrics_series_add(jv_metric_series *s, double by)
{
    if (s && s->fam->type != JV_METRIC_HISTOGRAM)
        s->value += by;
}

void jv_metrics_series_observe(jv_metric_series *s, double value)
{
    if (s && s->fam->type == JV_METRIC_HISTOGRAM)
        observe(s, value);
}

void jv_metrics_add(jv_metrics *m, const char *name, const char *labels,
                    double by)
{
    series *s = get_series(m, name, labels, JV_METRIC_COUNTER);
    if (!s)
        s = get_series(m, name, labels, JV_METRIC_GAUGE);
    if (s)
        s->value += by;
}

void jv_metrics_set(jv_metrics *m, const char *name, const char *labels,
                    double value)
{
    series *s = get_series(m, name, labels, JV_METRIC_GAUGE);
    if (s)
        s->value = value;
}

void jv_metrics_observe(jv_metrics *m, const char *name, const char *labels,
                        double value)
{
    series *s = get_series(m, name, labels, JV_METRIC_HISTOGRAM);
    if (s)
        observe(s, value);
}

double jv_metrics_get(const jv_metrics *m, const char *name, const char *labels)
{
    if (!labels)
        labels = "";
    series *s = lookup(m, name, labels, fnv(name, labels));
    return s ? s->value : 0;
}

static void put(jv_buf *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void put(jv_buf *out, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof(tmp)) {
        jv_buf_append(out, tmp, (size_t)n);
        return;
    }
    if (jv_buf_reserve(out, (size_t)n + 1) != JV_OK)
        return;
    va_start(ap, fmt);
    vsnprintf((char *)out->data + out->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    out->len += (size_t)n;
}

/* The shortest of %.15g and %.17g that reads back as v: 0.1 stays "0.1",
 * and a time since the epoch keeps its milliseconds. */
static void put_exact(jv_buf *out, double v)
{
    char s[32];
    snprintf(s, sizeof s, "%.15g", v);
    if (strtod(s, NULL) != v)
        snprintf(s, sizeof s, "%.17g", v);
    put(out, "%s", s);
}

static void put_number(jv_buf *out, double v)
{
    if (isinf(v))
        put(out, v > 0 ? "+Inf" : "-Inf");
    else if (v == (double)(int64_t)v && fabs(v) < 9e15)
        put(out, "%lld", (long long)v);
    else
        put_exact(out, v);
}

static void put_labels(jv_buf *out, const char *labels, const char *extra)
{
    bool any = labels && *labels;
    if (!any && !extra)
        return;
    put(out, "{%s%s%s}", any ? labels : "", any && extra ? "," : "",
        extra ? extra : "");
}

jv_err jv_metrics_render(const jv_metrics *m, jv_buf *out)
{
    static const char *types[] = {"counter", "gauge", "histogram"};
    for (family *f = m->first; f; f = f->next) {
        put(out, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name,
            types[f->type]);
        for (series *s = f->first; s; s = s->next) {
            if (f->type != JV_METRIC_HISTOGRAM) {
                put(out, "%s", f->name);
                put_labels(out, s->labels, NULL);
                put(out, " ");
                put_number(out, s->value);
                put(out, "\n");
                continue;
            }
            uint64_t cum = 0;
            char le[64];
            for (size_t i = 0; i < f->nbounds; i++) {
                cum += s->bucket[i];
                snprintf(le, sizeof(le), "le=\"%g\"", f->bounds[i]);
                put(out, "%s_bucket", f->name);
                put_labels(out, s->labels, le);
                put(out, " %llu\n", (unsigned long long)cum);
            }
            put(out, "%s_bucket", f->name);
            put_labels(out, s->labels, "le=\"+Inf\"");
            put(out, " %llu\n%s_sum", (unsigned long long)s->count, f->name);
            put_labels(out, s->labels, NULL);
            put(out, " ");
            put_number(out, s->value);
            put(out, "\n%s_count", f->name);
            put_labels(out, s->labels, NULL);
            put(out, " %llu\n", (unsigned long long)s->count);
        }
    }
    return jv_buf_err(out);
}

void jv_metrics_escape(const char *value, char *out, size_t outlen)
{
    size_t j = 0;
    for (const char *p = value; *p && j + 3 < outlen; p++) {
        if (*p == '\\' || *p == '"') {
            out[j++] = '\\';
            out[j++] = *p;
        } else if (*p == '\n') {
            out[j++] = '\\';
            out[j++] = 'n';
        } else {
            out[j++] = *p;
        }
    }
    out[j] = '\0';
}
