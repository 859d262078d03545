/*
 * procstat.h - this process as the kernel sees it (Linux /proc), for the
 * standard process_* metrics.
 */
#ifndef JV_PROCSTAT_H
#define JV_PROCSTAT_H

#include <stdint.h>

#include "types.h"

typedef struct {
    double cpu_seconds;      /* user + system time */
    double start_time;       /* seconds since the Unix epoch */
    uint64_t resident_bytes; /* resident set */
    uint64_t virtual_bytes;  /* address space */
    uint64_t open_fds;
    uint64_t max_fds; /* the soft RLIMIT_NOFILE */
} jv_procstat;

/* Reads /proc/self/stat, /proc/stat's boot time and /proc/self/fd.
 * JV_EIO when /proc cannot be read (then *out is zeroed). Blocking, but
 * only on procfs, which answers from memory. */
jv_err jv_procstat_get(jv_procstat *out);

#endif
