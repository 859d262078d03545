/*
 * metrics.h - a small Prometheus registry rendered in text format 0.0.4.
 *
 * Families are declared once (name, type, help, and buckets for
 * histograms); series are created on first use, keyed by their rendered
 * label set ("route=\"/v1/status\",status=\"200\""). Lookup is by hash, so
 * recording on the request path is cheap.
 *
 * Not thread-safe: the node records and renders on its loop thread only.
 */
#ifndef JV_METRICS_H
#define JV_METRICS_H

#include <stddef.h>

#include "types.h"

typedef struct jv_metrics jv_metrics;

typedef enum {
    JV_METRIC_COUNTER,
    JV_METRIC_GAUGE,
    JV_METRIC_HISTOGRAM,
} jv_metric_type;

jv_metrics *jv_metrics_new(void);
void jv_metrics_free(jv_metrics *m); /* accepts NULL */

/* Declares a family. For histograms, `buckets` holds nbuckets ascending
 * upper bounds (+Inf is implicit). name and help must outlive m. */
jv_err jv_metrics_declare(jv_metrics *m, const char *name, jv_metric_type type,
                          const char *help, const double *buckets,
                          size_t nbuckets);

/* Records into the series of `labels` (NULL or "" for none) of a declared
 * family; an undeclared name or a type mismatch is a programming error
 * and is ignored. Out of memory drops the sample. */
void jv_metrics_add(jv_metrics *m, const char *name, const char *labels,
                    double by);
void jv_metrics_set(jv_metrics *m, const char *name, const char *labels,
                    double value);
void jv_metrics_observe(jv_metrics *m, const char *name, const char *labels,
                        double value);

/* A series' handle, for the hot path: look it up once, record through it
 * without formatting labels or hashing. Valid as long as m. NULL if the
 * family is not declared (or memory ran out). */
typedef struct jv_metric_series jv_metric_series;
jv_metric_series *jv_metrics_series(jv_metrics *m, const char *name,
                                    const char *labels);
void jv_metrics_series_add(jv_metric_series *s, double by);
void jv_metrics_series_observe(jv_metric_series *s, double value);

/* The value of a counter or gauge series (0 if it does not exist). */
double jv_metrics_get(const jv_metrics *m, const char *name,
                      const char *labels);

/* Appends the whole registry in text format, families in declaration
 * order, series in creation order. */
jv_err jv_metrics_render(const jv_metrics *m, jv_buf *out);

/* Escapes a label value (backslash, quote, newline) into out, NUL-ended;
 * truncates to outlen. */
void jv_metrics_escape(const char *value, char *out, size_t outlen);

#endif
