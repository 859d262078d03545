/*
 * simq.h - the simulator's time: one queue of events, one seeded random
 * stream, nothing else that moves.
 *
 * Events run in (time, order of scheduling): two events at the same
 * microsecond run in the order they were made, so a run depends on the
 * seed alone. An event's function decides itself whether it still
 * matters (its node may have crashed since).
 */
#ifndef JV_SIMQ_H
#define JV_SIMQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "rng.h"

typedef void (*jv_simq_fn)(void *arg);

typedef struct {
    uint64_t at_us, order;
    jv_simq_fn fn;
    void *arg;
} jv_simq_ev;

typedef struct {
    uint64_t now_us;
    uint64_t order;
    uint64_t ran;
    jv_simq_ev *heap;
    size_t n, cap;
    jv_rng rng;
} jv_simq;

void jv_simq_init(jv_simq *q, uint64_t seed);
void jv_simq_fini(jv_simq *q);

/* fn(arg) at now + delay_us. */
jv_err jv_simq_at(jv_simq *q, uint64_t delay_us, jv_simq_fn fn, void *arg);

/* Runs the next event due at or before until_us (time moves to it):
 * true, or false when there is none (time moves to until_us). */
bool jv_simq_step(jv_simq *q, uint64_t until_us);

/* Random: 64 bits; below n (n > 0); uniform in [0, 1); exponential with
 * the given mean. */
uint64_t jv_simq_u64(jv_simq *q);
uint64_t jv_simq_below(jv_simq *q, uint64_t n);
double jv_simq_unit(jv_simq *q);
uint64_t jv_simq_exp(jv_simq *q, double mean);

#endif
