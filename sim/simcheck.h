/*
 * simcheck.h - what every simulation must end with (sim.h lists it), and
 * the record of acknowledged writes it is checked against.
 */
#ifndef JV_SIMCHECK_H
#define JV_SIMCHECK_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "types.h"

typedef struct jv_sim jv_sim;

/* A write of node idx was acknowledged: sequence numbers up to seq. */
void jv__simcheck_acked(jv_sim *w, unsigned idx, uint64_t seq);

/* Lag: a batch of node idx committed now, holding sequence numbers up to
 * last_seq / applied on some node now; the lag's quantile p (0..1), ms. */
#define JV_SIM_LAG_BUCKETS 60000 /* 1 ms each; the last holds the rest */
void jv__simcheck_committed(jv_sim *w, unsigned idx, uint64_t last_seq);
void jv__simcheck_applied(jv_sim *w, const jv_id *origin, uint64_t last_seq);
uint64_t jv__simcheck_lag(const jv_sim *w, double p);
/* Orders node ids (jv_sim_key by id). */
int jv__simcheck_cmp_id(const void *a, const void *b);

/* Which nodes lack batches, in a line (for a run that did not converge). */
const char *jv__simcheck_behind(jv_sim *w);

/* The checks on the converged world: JV_OK, or JV_ESTATE with msg. Fills
 * the stats' digest. */
jv_err jv__simcheck_end(jv_sim *w, char *msg, size_t msglen);

#endif
