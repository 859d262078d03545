/*
 * rng.h - xoshiro256**, seeded by splitmix64: a small, fast generator that
 * gives the same stream on every machine. For seeded tests and the
 * simulator, never for keys or nonces (libsodium's randombytes is).
 */
#ifndef JV_RNG_H
#define JV_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t s[4];
} jv_rng;

/* One splitmix64 step: advances *x and returns a well-mixed value. */
uint64_t jv_rng_mix(uint64_t *x);
void jv_rng_seed(jv_rng *r, uint64_t seed);
uint64_t jv_rng_next(jv_rng *r);
/* Uniform in [0, n); n > 0. */
uint64_t jv_rng_below(jv_rng *r, uint64_t n);

#endif
