/*
 * output.h - what jarvisctl prints: JSON for scripts, and the small
 * formatting helpers of the human output (times in local time, sizes,
 * durations, shortened ids, text made safe for a terminal).
 *
 * Times: the node speaks RFC 3339 in UTC; --json output passes its strings
 * through unchanged, human output shows local time.
 */
#ifndef JVC_OUTPUT_H
#define JVC_OUTPUT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Prints v as indented JSON and a newline on stdout. Returns an exit code
 * (JVC_EXIT_FAIL if stdout cannot be written). */
int jvc_print_json(const json_t *v);

/* Flushes stdout; JVC_EXIT_FAIL with a message if writing failed (a full
 * disk, a closed pipe). Call last. */
int jvc_finish_stdout(int rc);

/* Parses an RFC 3339 date-time ("2026-11-21T09:30:00.125Z",
 * "...+01:00") into milliseconds since the Unix epoch. */
bool jvc_time_parse(const char *s, int64_t *ms);
/* Formats ms since the epoch as RFC 3339 UTC with milliseconds. */
void jvc_time_rfc3339(int64_t ms, char *out, size_t outlen);
/* Formats ms since the epoch in local time: "2026-11-21 10:30:00 CET". */
void jvc_time_local(int64_t ms, char *out, size_t outlen);
/* The node's RFC 3339 string in local time; "-" for NULL/null; the string
 * itself if it does not parse. Result in out. */
const char *jvc_time_human(const json_t *v, char *out, size_t outlen);

/* Parses a time argument: RFC 3339, milliseconds since the epoch, or a
 * duration before now ("90s", "15m", "2h", "7d"). */
bool jvc_time_arg(const char *s, int64_t now_ms, int64_t *ms);

/* "14.0 MiB", "512 B". */
void jvc_bytes_human(uint64_t n, char *out, size_t outlen);
/* "1d 2h 3m 4s", "5s". */
void jvc_duration_human(int64_t seconds, char *out, size_t outlen);

/* A replica or key id shortened for humans (first 12 characters). */
#define JVC_SHORT_ID 12
const char *jvc_short_id(const char *id, char *out, size_t outlen);

/* JSON value in one line (strings quoted), jv_malloc'd; NULL on ENOMEM. */
char *jvc_json_compact(const json_t *v);
/* A value argument: the JSON it parses as (any JSON value), else the
 * argument as a JSON string; always a string when as_string. NULL on
 * ENOMEM. */
json_t *jvc_value_arg(const char *s, bool as_string);

/* A string field of obj, or def when absent or not a string. */
const char *jvc_str(const json_t *obj, const char *key, const char *def);
/* An integer field as text ("-" when absent or not a number). */
const char *jvc_int_text(const json_t *obj, const char *key, char *out,
                         size_t outlen);

/* Copies s into out for a terminal: control characters (ESC, newlines,
 * ...) become "\xNN"-style escapes so that data from the network cannot
 * drive the terminal; at most max_chars characters are kept (UTF-8 aware),
 * a cut one ends in "...". max_chars 0 means no limit. Result is
 * jv_malloc'd; NULL on ENOMEM. */
char *jvc_sanitize(const char *s, size_t max_chars);
/* Number of characters (UTF-8 code points) of s. */
size_t jvc_display_width(const char *s);

/* printf into a new jv_malloc'd string; NULL on ENOMEM. */
char *jvc_strf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Reports an allocation failure; returns JVC_EXIT_FAIL. */
int jvc_oom(void);

/* printf to stderr prefixed with "jarvisctl: ". */
void jvc_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
