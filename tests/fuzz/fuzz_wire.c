/*
 * fuzz_wire.c - peer messages: the strict decoder with zstd inflation
 * bounded. A message it accepts re-encodes and decodes to the same fields.
 * Seeds: versions 4 (with and without entries by place), 3 and 2.
 */
#include <string.h>

#include "batch.h"
#include "fuzz.h"
#include "testutil.h"
#include "wire.h"

#define MAX_PLAIN (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    jv_msg m, again;
    jv_buf scratch, scratch2, enc;
    jv_msg_init(&m);
    jv_msg_init(&again);
    jv_buf_init(&scratch);
    jv_buf_init(&scratch2);
    jv_buf_init(&enc);
    if (jv_msg_decode(data, size, MAX_PLAIN, &scratch, &m) != JV_OK)
        goto out;
    JV_FUZZ_CHECK(m.type == JV_MSG_SYNC || m.type == JV_MSG_SYNC_REPLY);
    JV_FUZZ_CHECK(jv_msg_encode(&m, NULL, SIZE_MAX, &enc, NULL) == JV_OK);
    JV_FUZZ_CHECK(jv_msg_decode(enc.data, enc.len, MAX_PLAIN, &scratch2,
                                &again) == JV_OK);
    JV_FUZZ_CHECK(again.type == m.type && again.more == m.more &&
                  again.budget == m.budget);
    JV_FUZZ_CHECK(jv_id_eq(&again.from, &m.from));
    JV_FUZZ_CHECK(jv_id_eq(&again.to, &m.to));
    JV_FUZZ_CHECK(again.stamp == m.stamp && again.echo == m.echo &&
                  again.refused == m.refused);
    JV_FUZZ_CHECK(memcmp(again.sig, m.sig, JV_SIG_LEN) == 0 &&
                  memcmp(again.hash, m.hash, JV_HASH_LEN) == 0);
    JV_FUZZ_CHECK(jv_str_eq(again.from_addr, m.from_addr));
    JV_FUZZ_CHECK(jv_vv_equal(&again.have, &m.have));
    JV_FUZZ_CHECK(again.version == m.version && again.base == m.base &&
                  again.heard == m.heard && again.nrefs == m.nrefs);
    for (size_t i = 0; i < m.nrefs; i++)
        JV_FUZZ_CHECK(again.refs[i].idx == m.refs[i].idx &&
                      again.refs[i].seq == m.refs[i].seq);
    JV_FUZZ_CHECK(again.nbatches == m.nbatches);
    for (size_t i = 0; i < m.nbatches; i++) {
        JV_FUZZ_CHECK(again.batches[i].len == m.batches[i].len);
        JV_FUZZ_CHECK(memcmp(again.batches[i].body, m.batches[i].body,
                             m.batches[i].len) == 0);
        JV_FUZZ_CHECK(
            memcmp(again.batches[i].sig, m.batches[i].sig, JV_SIG_LEN) == 0);
    }
out:
    jv_msg_fini(&m);
    jv_msg_fini(&again);
    jv_buf_fini(&scratch);
    jv_buf_fini(&scratch2);
    jv_buf_fini(&enc);
    return 0;
}

size_t jv_fuzz_seeds(jv_buf *seeds, size_t max)
{
    static uint8_t body[3][2048], sig[JV_SIG_LEN];
    jv_wire_batch wb[3];
    jv_msg m;
    size_t n = 0;
    for (size_t i = 0; i < 3; i++) {
        /* Repetitive bodies, so that the big seed compresses. */
        memset(body[i], (int)('a' + i), sizeof(body[i]));
        wb[i] =
            (jv_wire_batch){body[i], i == 2 ? sizeof(body[i]) : 40 + i, sig};
    }
    memset(sig, 7, sizeof(sig));
    jv_msg_init(&m);
    m.from = jv_test_id(1);
    m.from_addr = jv_str_c("tcp://127.0.0.1:7411");
    m.to = jv_test_id(3);
    m.stamp = 1764000000000000ull;
    jv_id peer = jv_test_id(2);
    jv_vv_set(&m.have, &m.from, 12);
    jv_vv_set(&m.have, &peer, 3);
    m.budget = 4u << 20;
    for (size_t k = 0; k <= 3 && n < max; k++) {
        m.type = k % 2 ? JV_MSG_SYNC_REPLY : JV_MSG_SYNC;
        m.more = k == 1;
        m.batches = wb;
        m.nbatches = k;
        /* k == 3 carries the big body: compressed. */
        if (jv_msg_encode(&m, NULL, k == 3 ? 64 : SIZE_MAX, &seeds[n], NULL) ==
            JV_OK)
            n++;
    }
    /* A difference with entries by place, and the older versions. */
    jv_vv_ref refs[2] = {{0, 13}, {5, 4}};
    m.base = 1764000000000001ull;
    m.heard = 1763999999999999ull;
    m.refs = refs;
    m.nrefs = 2;
    for (unsigned v = 4; v >= 2 && n < max; v--) {
        m.version = v;
        if (v < 4)
            m.nrefs = 0;
        if (v == 2)
            m.base = m.heard = 0;
        if (jv_msg_encode(&m, NULL, SIZE_MAX, &seeds[n], NULL) == JV_OK)
            n++;
    }
    m.refs = NULL;
    m.nrefs = 0;
    m.batches = NULL;
    m.nbatches = 0;
    jv_msg_fini(&m);
    return n;
}
