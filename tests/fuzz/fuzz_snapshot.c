/*
 * fuzz_snapshot.c - the snapshot decoder (storage/snapshot.h). What
 * jv_snap_check accepts must join into an empty store (or be refused as an
 * equivocation: one origin twice in its vector with two hashes); the
 * state that join leaves encodes to bytes the check accepts, and joining
 * those again changes nothing (the join is idempotent).
 */
#include <string.h>

#include "apply.h"
#include "fuzz.h"
#include "snapshot.h"
#include "testutil.h"

static bool snap_seed(jv_store *st, jv_buf *out)
{
    return jv_snap_encode(st, out) == JV_OK;
}

static jv_store *fresh(void)
{
    jv_store_opts o;
    jv_store *st = NULL;
    jv_store_opts_default(&o);
    o.create = true;
    JV_FUZZ_CHECK(jv_store_open(":memory:", &o, &st, NULL, 0) == JV_OK);
    return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (jv_snap_check(data, size, NULL, NULL, 0) != JV_OK)
        return 0;
    jv_store *st = fresh();
    jv_err err = jv_store_snap_join(st, data, size);
    JV_FUZZ_CHECK(err == JV_OK || err == JV_EEQUIVOCATE);
    if (err == JV_OK) {
        jv_buf a, b;
        jv_buf_init(&a);
        jv_buf_init(&b);
        JV_FUZZ_CHECK(jv_snap_encode(st, &a) == JV_OK);
        JV_FUZZ_CHECK(jv_snap_check(a.data, a.len, NULL, NULL, 0) == JV_OK);
        JV_FUZZ_CHECK(jv_store_snap_join(st, a.data, a.len) == JV_OK);
        JV_FUZZ_CHECK(jv_snap_encode(st, &b) == JV_OK);
        JV_FUZZ_CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
        jv_buf_fini(&a);
        jv_buf_fini(&b);
    }
    jv_store_close(st);
    return 0;
}

/* The state of a store after writes of every kind, one commit each. */
size_t jv_fuzz_seeds(jv_buf *seeds, size_t max)
{
    jv_keypair kp;
    size_t n = 0;
    if (max < 2 || jv_keypair_generate(&kp) != JV_OK)
        return 0;
    jv_store *st = fresh();
    JV_FUZZ_CHECK(snap_seed(st, &seeds[n++]));
    JV_FUZZ_CHECK(jv_store_set_self(st, &kp.pk) == JV_OK);
    jv_intent in[6];
    memset(in, 0, sizeof(in));
    in[0].op.kind = JV_OP_COUNTER;
    in[0].op.counter.name = jv_str_c("hits");
    in[0].by = 3;
    in[1].op.kind = JV_OP_AUDIT;
    in[1].op.audit.time_ms = 5;
    in[1].op.audit.actor = jv_str_c("a");
    in[1].op.audit.action = jv_str_c("put");
    in[1].op.audit.target = jv_str_c("t");
    in[1].op.audit.detail = jv_str_c("{}");
    in[2].op.kind = JV_OP_CONFIG;
    in[2].op.config.key = jv_str_c("k");
    in[2].op.config.value = jv_str_c("\"v\"");
    in[2].op.config.stamp = 1u << 16;
    in[3].op.kind = JV_OP_ARCHIVE_ADD;
    in[3].op.add.key = jv_str_c("doc");
    in[3].op.add.value = jv_str_c("{\"x\":1}");
    in[3].op.add.stamp = 1u << 16;
    in[4].op.kind = JV_OP_ARCHIVE_ADD;
    in[4].op.add.key = jv_str_c("doc2");
    in[4].op.add.value = jv_str_c("2");
    in[4].op.add.stamp = 1u << 16;
    in[5].op.kind = JV_OP_TRUST;
    in[5].op.trust.node = kp.pk;
    in[5].op.trust.trusted = true;
    in[5].op.trust.stamp = 1u << 16;
    in[5].op.trust.name = jv_str_c("me");
    jv_write_group g = {.intents = in, .n = 6};
    jv_commit_info ci;
    JV_FUZZ_CHECK(jv_store_commit_local(st, &kp, 1u << 16, &g, 1, &ci) ==
                  JV_OK);
    JV_FUZZ_CHECK(snap_seed(st, &seeds[n++]));
    jv_store_close(st);
    jv_keypair_wipe(&kp);
    return n;
}
