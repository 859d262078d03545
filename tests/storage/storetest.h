/*
 * storetest.h - what the storage tests share: scratch directories, signed
 * batches built by hand (as a remote origin would), and a full export of a
 * store's replicated state through the query API, for comparing stores
 * byte for byte.
 *
 * Failures abort the test through cmocka's assertions.
 */
#ifndef JV_STORETEST_H
#define JV_STORETEST_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>

#include "apply.h"
#include "batch.h"
#include "query.h"
#include "store.h"

/* A fresh directory under TMPDIR (or /tmp); removed with st_rmdir. */
char *st_mkdtemp(void);
void st_rmdir(char *dir); /* removes the tree and frees dir */
/* dir/name into a static-free heap string (free with free()). */
char *st_path(const char *dir, const char *name);

/* Opens (creating) a store; asserts success. */
jv_store *st_open(const char *path);
jv_store *st_open_opts(const char *path, const jv_store_opts *o);

/* A signed batch owned by the test. */
typedef struct {
    jv_buf body;
    uint8_t hash[JV_HASH_LEN];
    uint8_t sig[JV_SIG_LEN];
    jv_batch dec; /* decoded from body */
} st_batch;

/* Encodes ops as origin kp's batch starting at first_seq after prev, signs
 * it, and decodes it back (as a receiver would). */
void st_batch_make(st_batch *b, const jv_keypair *kp, uint64_t first_seq,
                   const uint8_t prev[JV_HASH_LEN], uint64_t hlc, jv_op *ops,
                   uint32_t nops);
/* A copy of a stored log row (body, signature, hash), decoded. */
void st_batch_from_row(st_batch *b, const jv_log_row *r);
void st_batch_fini(st_batch *b);
jv_store_batch st_sb(const st_batch *b);

/* Applies one batch alone and returns its result (asserting that the
 * transaction itself committed). */
jv_err st_apply1(jv_store *st, const st_batch *b, unsigned flags);

/* Every replicated table, rendered as text in a stable order: counters
 * with their shares, audit, config, archive values, causal context, trust,
 * cluster API keys,
 * version vector with head hashes, the log (hashes). With `held`, also the
 * held-aside batches. NUL-terminated; free with free(). */
char *st_export(jv_store *st, bool held);

/* Reads a whole file; *len receives its size. free() the result. */
uint8_t *st_read_file(const char *path, size_t *len);
void st_write_file(const char *path, const void *p, size_t len);

/* A local commit of one group with the given intents; asserts that the
 * transaction committed and returns the group's result. */
jv_err st_commit(jv_store *st, const jv_keypair *kp, uint64_t hlc,
                 jv_intent *in, size_t n, jv_commit_info *info);

/* Intent builders (strings borrowed). */
jv_intent st_counter(const char *name, int64_t by);
jv_intent st_audit(uint64_t time_ms, const char *actor, const char *action,
                   const char *target, const char *detail);
jv_intent st_config(const char *key, const char *value, uint64_t stamp);
jv_intent st_add(const char *key, const char *value, uint64_t stamp);
jv_intent st_rm(const char *key);
jv_intent st_trust(const jv_id *node, bool trusted, uint64_t stamp,
                   const char *name);

/* The keypair derived from a seed byte: deterministic ids in tests. */
void st_keypair(jv_keypair *kp, uint8_t seed);

#endif
