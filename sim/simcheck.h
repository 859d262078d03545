/*
 * simcheck.h - what every simulation must end with (sim.h lists it), and
 * the record of acknowledged writes it is checked against.
 */
#ifndef JV_SIMCHECK_H
#define JV_SIMCHECK_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct jv_sim jv_sim;

/* A write of node idx was acknowledged: sequence numbers up to seq. */
void jv__simcheck_acked(jv_sim *w, unsigned idx, uint64_t seq);

/* Which nodes lack batches, in a line (for a run that did not converge). */
const char *jv__simcheck_behind(jv_sim *w);

/* The checks on the converged world: JV_OK, or JV_ESTATE with msg. Fills
 * the stats' digest. */
jv_err jv__simcheck_end(jv_sim *w, char *msg, size_t msglen);

#endif
