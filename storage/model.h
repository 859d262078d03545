/*
 * model.h - a store's replicated state checked against the crdt/ types.
 *
 * storage/apply.c merges in SQL; crdt/ holds the types whose laws
 * tests/crdt/laws_test.c proves. A jv_model is the four crdt/ types fed
 * with the operations of batches:
 *   counter ops       a PN-Counter per name (two G-Counters of shares)
 *   audit ops         the audit set, entry id (origin, seq of the op)
 *   config ops        the LWW map (stamp, then writer, then value)
 *   archive add / rm  the OR-Set (dots, values, causal context)
 * Trust, succession and cluster key ops touch none of these tables and
 * are skipped. jv_model_compare then reads a store's materialized state
 * and reports the first place it differs from the model, so any program
 * (the property test, a simulator) can check any store.
 *
 * Pure in-memory; blocking only where a jv_store is read (disk reads).
 * A jv_model belongs to one thread at a time.
 */
#ifndef JV_MODEL_H
#define JV_MODEL_H

#include "audit.h"
#include "batch.h"
#include "gcounter.h"
#include "lww.h"
#include "orset.h"
#include "store.h"

typedef struct {
    char *name; /* owned, NUL-terminated; namelen bytes (no NUL inside) */
    size_t namelen;
    jv_pncounter pn;
} jv_model_counter;

typedef struct {
    jv_model_counter *c; /* sorted by name bytes */
    size_t nc;
    size_t capc;
    jv_audit au;
    jv_lwwmap lw;
    jv_orset os;
} jv_model;

void jv_model_init(jv_model *m);
void jv_model_fini(jv_model *m); /* accepts NULL; leaves an empty model */

/* Feeds every operation of b (a decoded or built batch; only borrowed) to
 * the model. Any number of counter names of any length. Batches may come
 * in any order and more than once: every type is a join. JV_ENOMEM (the
 * model then holds part of b: fini it). */
jv_err jv_model_batch(jv_model *m, const jv_batch *b);

/* The counter called name, or NULL if no op named it. Valid until the
 * next jv_model_batch or jv_model_fini. */
const jv_pncounter *jv_model_counter_get(const jv_model *m, jv_str name);

/* Compares st's materialized state with m: every counter (exact total,
 * and each replica's shares), every audit entry, every config register
 * (value, stamp, writer), every live archive value, the value shown per
 * key and its number of live values, and the causal context (vector and
 * cloud). JV_OK when they agree; JV_ESTATE with the first difference
 * (which table, which name or key, what the store holds vs the model) in
 * msg; another code (and its cause in msg) when st cannot be read. msg
 * is always NUL-terminated when msglen > 0; msg may be NULL if msglen is
 * 0. Reads st in one read snapshot (jv_store_read_begin), so must not be
 * called inside another read snapshot or transaction of st. */
jv_err jv_model_compare(jv_store *st, const jv_model *m, char *msg,
                        size_t msglen);

/* Feeds every batch of st's log (jv_store_log_scan) to the crdt/
 * models (gcounter/pncounter, audit, lww map, or-set) and compares
 * st's materialized state with them: counters and their shares,
 * audit entries, config registers, archive entries, values and
 * causal context. JV_OK when they agree; JV_ESTATE with the first
 * difference in msg; another code when st cannot be read. Only for a
 * store whose log holds every batch it applied (no base): a log that
 * does not cover st's version vector is reported as JV_ESTATE. */
jv_err jv_store_model_check(jv_store *st, char *msg, size_t msglen);

#endif
