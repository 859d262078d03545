/*
 * testutil.h - what every test program shares: a seeded random generator
 * whose seed is printed (so a failing run can be replayed), and the knobs
 * that property tests read from the environment.
 *
 *   JV_SEED=<n>        replay one seed (the default is time-based, printed)
 *   JV_SCHEDULES=<n>   run n random schedules instead of the default
 */
#ifndef JV_TESTUTIL_H
#define JV_TESTUTIL_H

#include <stdint.h>
#include <stddef.h>

#include "rng.h"
#include "types.h"
/* True with probability num/den. */
int jv_rng_chance(jv_rng *r, unsigned num, unsigned den);
void jv_rng_bytes(jv_rng *r, void *p, size_t n);
void jv_rng_shuffle(jv_rng *r, void *base, size_t n, size_t size);

/* The run's base seed: JV_SEED if set, else derived from time and pid.
 * Printed once to stdout as "seed: <n> (replay with JV_SEED=<n>)". */
uint64_t jv_test_seed(void);
/* JV_SCHEDULES if set, else `def`. */
uint64_t jv_test_schedules(uint64_t def);

/* A deterministic replica id for index i (distinct for distinct i). */
jv_id jv_test_id(unsigned i);

#endif
