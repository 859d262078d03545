/*
 * fuzz_batch.c - batch bodies: header peek and strict decode. A body the
 * decoder accepts must encode back to exactly the same bytes (one byte
 * form per batch: deduplication by hash depends on it).
 */
#include <sodium.h>
#include <string.h>

#include "batch.h"
#include "fuzz.h"
#include "hlc.h"
#include "testutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    jv_batch_head h;
    jv_batch b;
    jv_err peeked = jv_batch_peek(data, size, &h);
    if (jv_batch_decode(data, size, &b) != JV_OK)
        return 0;
    JV_FUZZ_CHECK(peeked == JV_OK);
    JV_FUZZ_CHECK(h.first_seq == b.first_seq && h.nops == b.nops);
    JV_FUZZ_CHECK(h.last_seq == jv_batch_last_seq(&b));
    jv_buf out;
    jv_buf_init(&out);
    JV_FUZZ_CHECK(jv_batch_encode(&b, &out) == JV_OK);
    JV_FUZZ_CHECK(out.len == size && memcmp(out.data, data, size) == 0);
    jv_buf_fini(&out);
    jv_batch_fini(&b);
    return 0;
}

size_t jv_fuzz_seeds(jv_buf *seeds, size_t max)
{
    jv_id o = jv_test_id(1), other = jv_test_id(2);
    jv_dot rm[2] = {{o, 3}, {other, 9}};
    if (jv_dot_cmp(&rm[0], &rm[1]) > 0) { /* dot lists are sorted */
        jv_dot t = rm[0];
        rm[0] = rm[1];
        rm[1] = t;
    }
    jv_op ops[JV_OP_KIND_COUNT];
    memset(ops, 0, sizeof(ops));
    ops[0].kind = JV_OP_COUNTER;
    ops[0].counter.name = jv_str_c("requests");
    ops[0].counter.p = 300;
    ops[0].counter.n = 2;
    ops[1].kind = JV_OP_AUDIT;
    ops[1].audit.time_ms = 1000;
    ops[1].audit.actor = jv_str_c("admin");
    ops[1].audit.action = jv_str_c("deploy");
    ops[1].audit.target = jv_str_c("web-1");
    ops[1].audit.detail = jv_str_c("v2.3.1 \xc3\xa9");
    ops[2].kind = JV_OP_CONFIG;
    ops[2].config.key = jv_str_c("db/url");
    ops[2].config.value = jv_str_c("\"postgres://db\"");
    ops[2].config.stamp = jv_hlc_make(1500, 1);
    ops[3].kind = JV_OP_ARCHIVE_ADD;
    ops[3].add.key = jv_str_c("reports/1");
    ops[3].add.value = jv_str_c("{\"rows\":12}");
    ops[3].add.stamp = jv_hlc_make(1500, 2);
    ops[3].add.dot_n = 4;
    ops[3].add.removes = rm;
    ops[3].add.nremoves = 2;
    ops[4].kind = JV_OP_ARCHIVE_RM;
    ops[4].rm.key = jv_str_c("reports/0");
    ops[4].rm.removes = rm;
    ops[4].rm.nremoves = 1;
    ops[5].kind = JV_OP_TRUST;
    ops[5].trust.node = other;
    ops[5].trust.trusted = true;
    ops[5].trust.stamp = jv_hlc_make(1500, 3);
    ops[5].trust.name = jv_str_c("bravo");
    ops[6].kind = JV_OP_KEY_ADD;
    ops[6].key_add.id = jv_str_c("k_00112233aabb");
    ops[6].key_add.name = jv_str_c("ci");
    ops[6].key_add.role = jv_str_c("reader");
    memset(ops[6].key_add.hash, 0x3c, sizeof(ops[6].key_add.hash));
    ops[6].key_add.time_ms = 1900;
    ops[6].key_add.by = jv_str_c("admin");
    ops[7].kind = JV_OP_KEY_REVOKE;
    ops[7].key_revoke.id = jv_str_c("k_00112233aabb");
    ops[7].key_revoke.time_ms = 1950;
    ops[7].key_revoke.by = jv_str_c("admin");
    size_t n = 0;
    uint8_t prev[JV_HASH_LEN];
    memset(prev, 0xab, sizeof(prev));
    /* Each kind alone, then all of them in one batch. */
    for (uint32_t k = 0; k <= JV_OP_KIND_COUNT && n < max; k++) {
        jv_batch b = {
            .origin = o, .first_seq = 40, .hlc = jv_hlc_make(2000, 0)};
        memcpy(b.prev, prev, sizeof(prev));
        b.ops = k < JV_OP_KIND_COUNT ? &ops[k] : ops;
        b.nops = k < JV_OP_KIND_COUNT ? 1 : JV_OP_KIND_COUNT;
        if (jv_batch_encode(&b, &seeds[n]) == JV_OK)
            n++;
    }
    /* A succession opening origin `fresh`, signed by a fixed key. */
    jv_keypair old, fresh;
    uint8_t seed[crypto_sign_SEEDBYTES];
    memset(seed, 7, sizeof(seed));
    crypto_sign_seed_keypair(old.pk.b, old.sk, seed);
    memset(seed, 8, sizeof(seed));
    crypto_sign_seed_keypair(fresh.pk.b, fresh.sk, seed);
    jv_op succ[2] = {{.kind = JV_OP_SUCCESSION}, ops[2]};
    succ[0].succ.old = old.pk;
    succ[0].succ.last_seq = 12;
    succ[0].succ.time_ms = 1000;
    jv_succession_sign(&old, &fresh.pk, 12, 1000, succ[0].succ.sig);
    jv_batch sb = {.origin = fresh.pk,
                   .first_seq = 1,
                   .hlc = jv_hlc_make(2000, 0),
                   .ops = succ,
                   .nops = 2};
    if (n < max && jv_batch_encode(&sb, &seeds[n]) == JV_OK)
        n++;
    return n;
}
