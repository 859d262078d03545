#include "alloc.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* -1: injection off. Otherwise the number of allocations still allowed. */
static _Atomic long fail_countdown = -1;
static _Atomic long fail_count = 0;

static int injected_failure(void)
{
    long left = atomic_load(&fail_countdown);
    while (left >= 0) {
        if (left == 0) {
            atomic_fetch_add(&fail_count, 1);
            return 1;
        }
        if (atomic_compare_exchange_weak(&fail_countdown, &left, left - 1))
            return 0;
    }
    return 0;
}

void *jv_malloc(size_t size)
{
    if (injected_failure())
        return NULL;
    return malloc(size ? size : 1);
}

void *jv_calloc(size_t n, size_t size)
{
    if (injected_failure())
        return NULL;
    if (n == 0 || size == 0)
        return calloc(1, 1);
    return calloc(n, size);
}

void *jv_realloc(void *p, size_t size)
{
    if (injected_failure())
        return NULL;
    return realloc(p, size ? size : 1);
}

void *jv_reallocarray(void *p, size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    return jv_realloc(p, n * size);
}

void jv_free(void *p)
{
    free(p);
}

char *jv_strndup(const char *s, size_t n)
{
    char *d = jv_malloc(n + 1);
    if (!d)
        return NULL;
    if (n)
        memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

void jv_alloc_fail_after(long n)
{
    atomic_store(&fail_count, 0);
    atomic_store(&fail_countdown, n < 0 ? -1 : n);
}

void jv_alloc_fail_reset(void)
{
    atomic_store(&fail_countdown, -1);
}

long jv_alloc_failed_count(void)
{
    return atomic_load(&fail_count);
}
