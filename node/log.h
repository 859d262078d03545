/*
 * log.h - one line per event on stderr:
 *
 *   2026-11-21T09:30:00.125Z INFO  api: listening on 127.0.0.1:7410
 *
 * The level is process-wide, set once at start. Lines are written with one
 * write(2) each, so lines from several threads never interleave.
 */
#ifndef JV_LOG_H
#define JV_LOG_H

#include "err.h"

typedef enum {
    JV_LOG_DEBUG = 0,
    JV_LOG_INFO = 1,
    JV_LOG_WARN = 2,
    JV_LOG_ERROR = 3,
} jv_log_level;

void jv_log_set_level(jv_log_level level);
jv_log_level jv_log_get_level(void);
/* "debug", "info", "warn", "error"; JV_EINVAL otherwise. */
jv_err jv_log_parse_level(const char *s, jv_log_level *out);

#if defined(__GNUC__)
#define JV_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define JV_PRINTF(a, b)
#endif

/* Logs "component: message". Any thread. Newlines in the message are
 * replaced so an event stays one line. */
void jv_log(jv_log_level level, const char *component, const char *fmt, ...)
    JV_PRINTF(3, 4);

#define jv_debug(c, ...) jv_log(JV_LOG_DEBUG, c, __VA_ARGS__)
#define jv_info(c, ...)  jv_log(JV_LOG_INFO, c, __VA_ARGS__)
#define jv_warn(c, ...)  jv_log(JV_LOG_WARN, c, __VA_ARGS__)
#define jv_error(c, ...) jv_log(JV_LOG_ERROR, c, __VA_ARGS__)

#endif
