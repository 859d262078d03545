/*
 * timefmt.h - RFC 3339 times: formatting and parsing. Pure functions, any
 * thread. Shared by the API, the logs and replication, so none of them
 * reaches into another for it.
 */
#ifndef JV_TIMEFMT_H
#define JV_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Formats ms since the epoch as RFC 3339 UTC with milliseconds
 * ("2026-11-21T09:30:00.125Z") into out (at least 32 bytes). */
void jv_rfc3339(uint64_t ms, char *out, size_t outlen);
/* Parses RFC 3339 (Z or +hh:mm offset, optional fraction) or a plain
 * integer of milliseconds. JV_EINVAL otherwise. */
jv_err jv_parse_time(const char *s, uint64_t *ms);

#endif
