/*
 * alloc.h - every heap allocation of the project goes through here, so that
 * tests can make the N-th allocation fail and check that nothing is
 * half-done (the way SQLite tests its malloc failures).
 */
#ifndef JV_ALLOC_H
#define JV_ALLOC_H

#include <stddef.h>

/* Like malloc/calloc/realloc/free; NULL on failure (or injected failure).
 * jv_reallocarray() refuses n * size overflow. jv_free(NULL) does nothing.
 * Any thread. */
void *jv_malloc(size_t size);
void *jv_calloc(size_t n, size_t size);
void *jv_realloc(void *p, size_t size);
void *jv_reallocarray(void *p, size_t n, size_t size);
void jv_free(void *p);

/* A NUL-terminated copy of the first n bytes of s (s need not be
 * terminated). NULL on failure. */
char *jv_strndup(const char *s, size_t n);

/* Test hook, process-wide: after `n` more successful allocations, every
 * allocation fails until jv_alloc_fail_reset(). n < 0 disables injection.
 * This counter is the only global state of the pure core, and only tests
 * set it. */
void jv_alloc_fail_after(long n);
void jv_alloc_fail_reset(void);
/* How many allocations were refused by injection since the last reset. */
long jv_alloc_failed_count(void);

#endif
