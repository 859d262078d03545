/*
 * ctl.h - running the real jarvisctl from tests, in a controlled
 * environment: PATH, TZ=UTC, HOME pointing at an empty temporary directory
 * (so that no default data dir or key of the machine is picked up), the
 * sanitizer options of the test run, and only the JARVIS_* variables the
 * test sets.
 */
#ifndef JV_CTL_H
#define JV_CTL_H

#include <jansson.h>
#include <stdbool.h>

#include "proc.h"

typedef struct {
    char home[512];       /* temporary HOME, removed by ctl_fini() */
    const char *node;     /* JARVIS_NODE, or NULL */
    const char *key;      /* JARVIS_API_KEY, or NULL */
    const char *data_dir; /* JARVIS_DATA_DIR, or NULL */
} ctl_ctx;

/* Makes the temporary HOME. Fails the test on error. */
void ctl_init(ctl_ctx *c);
void ctl_fini(ctl_ctx *c);

/* Runs jarvisctl with the arguments (NULL-terminated), at most 30 s. */
void ctl_run(ctl_ctx *c, jv_proc_result *r, ...);
#define CTL(c, r, ...) ctl_run((c), (r), __VA_ARGS__, (char *)NULL)

/* Starts jarvisctl in the background (for --follow). */
void ctl_spawn(ctl_ctx *c, jv_proc *p, ...);
#define CTL_SPAWN(c, p, ...) ctl_spawn((c), (p), __VA_ARGS__, (char *)NULL)

/* The same with its stdout and stderr appended to the file log, which the
 * test can read while it runs. */
void ctl_spawn_log(ctl_ctx *c, jv_proc *p, const char *log, ...);
#define CTL_SPAWN_LOG(c, p, log, ...) \
    ctl_spawn_log((c), (p), (log), __VA_ARGS__, (char *)NULL)

/* Fails the test, printing what jarvisctl printed, unless it exited with
 * `code`. */
#define CTL_EXPECT(r, code) ctl_expect((r), (code), __FILE__, __LINE__)
void ctl_expect(const jv_proc_result *r, int code, const char *file, int line);

/* Parses stdout as JSON; fails the test if it does not parse. */
json_t *ctl_json(const jv_proc_result *r);

/* True if haystack contains needle. */
bool ctl_has(const char *haystack, const char *needle);

#endif
