/*
 * diff.h - what differs between two exports (GET /v1/export), per data
 * kind.
 *
 * Each kind is seen as a map from an item's key to its value:
 *   counters         name -> {replica: {p, n}}
 *   audit            "origin:seq" -> entry
 *   config           key -> register
 *   archive          key -> values
 *   archive_context  "vector/<replica>" -> n, "cloud/<dot>" -> dot
 *   trust, others    member -> value (objects), element -> element
 *                    (arrays, as a set), "" -> value (anything else)
 * and two maps are compared key by key. Pure: no I/O.
 */
#ifndef JVC_DIFF_H
#define JVC_DIFF_H

#include <jansson.h>

/* The structured difference of exports a and b (new reference, NULL on
 * ENOMEM):
 *   {"identical": bool,
 *    "kinds": {"<kind>": {"only_a":    [{"key":k,"value":v}],
 *                         "only_b":    [{"key":k,"value":v}],
 *                         "different": [{"key":k,"a":va,"b":vb}]}}}
 * Every kind present in either export is listed, in name order, with
 * empty lists when it matches; items are in key order. */
json_t *jvc_export_diff(json_t *a, json_t *b);

/* A one-line human summary of an item of `kind` ("total 42",
 * "2026-... ci deploy web-1"), jv_malloc'd; NULL on ENOMEM. */
char *jvc_diff_summary(const char *kind, json_t *value);

#endif
