/* check.c - what a failed harness check does, in both builds. */
#include <stdio.h>
#include <stdlib.h>

#include "fuzz.h"

_Noreturn void jv_fuzz_fail(const char *file, int line, const char *what)
{
    fprintf(stderr, "%s:%d: check failed: %s\n", file, line, what);
    abort();
}
