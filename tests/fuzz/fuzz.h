/*
 * fuzz.h - one harness per decoder, runnable two ways:
 *
 *   - with libFuzzer (cmake -DJV_FUZZ=ON, clang): the harness's
 *     LLVMFuzzerTestOneInput is the fuzzer's target;
 *   - in the test suite: driver.c feeds it valid inputs the harness makes
 *     (jv_fuzz_seeds), random mutations of them, and random bytes, from a
 *     printed seed, under the normal and the sanitizer builds.
 *
 * A harness aborts (assert) when a decoder accepts something it must not
 * (an input that does not re-encode to the same bytes, for canonical
 * formats); crashes, leaks and undefined behaviour are the sanitizers'.
 */
#ifndef JV_FUZZ_H
#define JV_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "types.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Appends up to max valid inputs to seeds[] (each initialised by the
 * caller); returns how many. */
size_t jv_fuzz_seeds(jv_buf *seeds, size_t max);

/* Aborts with a message when cond is false (asserts stay on in every
 * build). */
#define JV_FUZZ_CHECK(cond)                          \
    do {                                             \
        if (!(cond))                                 \
            jv_fuzz_fail(__FILE__, __LINE__, #cond); \
    } while (0)

_Noreturn void jv_fuzz_fail(const char *file, int line, const char *what);

#endif
