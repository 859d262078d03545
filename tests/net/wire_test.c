/* wire_test.c - peer messages (net/wire.c): round trips, compression, a
 * strict decoder, zstd bombs, and a mutation fuzz loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zstd.h>

#include "alloc.h"
#include "batch.h"
#include "testutil.h"
#include "wire.h"

#define NO_COMPRESSION SIZE_MAX
#define MiB            (1u << 20)

/* A message plus the storage its batches point into. */
typedef struct {
    jv_msg m;
    uint8_t *store;
    jv_wire_batch *arr;
    char addr[64];
} sample;

static void sample_fini(sample *s)
{
    s->m.batches = NULL; /* ours, not decode's: fini leaves it alone */
    jv_msg_fini(&s->m);
    free(s->store);
    free(s->arr);
}

/* nb batches of bodies up to maxlen bytes; text bodies compress, random
 * ones do not. */
static void sample_make(sample *s, jv_rng *rng, size_t nb, size_t maxlen,
                        bool text)
{
    static const char words[] = "counter requests.total config/feature/x "
                                "archive/2024/05/report.pdf audit login ";
    size_t total = 0;
    memset(s, 0, sizeof(*s));
    jv_msg_init(&s->m);
    s->m.type = jv_rng_chance(rng, 1, 2) ? JV_MSG_SYNC : JV_MSG_SYNC_REPLY;
    jv_rng_bytes(rng, s->m.from.b, JV_ID_LEN);
    if (jv_rng_chance(rng, 3, 4))
        jv_rng_bytes(rng, s->m.to.b, JV_ID_LEN);
    s->m.stamp = jv_rng_next(rng);
    s->m.echo = jv_rng_chance(rng, 1, 2) ? jv_rng_next(rng) : 0;
    s->m.refused = (jv_refusal)jv_rng_below(rng, JV_REFUSED_MAX + 1);
    jv_rng_bytes(rng, s->m.sig, JV_SIG_LEN);
    if (jv_rng_chance(rng, 3, 4)) {
        snprintf(s->addr, sizeof(s->addr), "tcp://10.0.%u.%u:7946",
                 (unsigned)jv_rng_below(rng, 256),
                 (unsigned)jv_rng_below(rng, 256));
        s->m.from_addr = jv_str_c(s->addr);
    }
    size_t nvv = (size_t)jv_rng_below(rng, 6);
    for (size_t i = 0; i < nvv; i++) {
        jv_id id = jv_test_id((unsigned)i);
        assert_int_equal(
            jv_vv_set(&s->m.have, &id, 1 + jv_rng_below(rng, 1ull << 40)),
            JV_OK);
    }
    s->arr = calloc(nb ? nb : 1, sizeof(*s->arr));
    size_t *lens = calloc(nb ? nb : 1, sizeof(size_t));
    for (size_t i = 0; i < nb; i++)
        total += lens[i] = (size_t)jv_rng_below(rng, maxlen + 1);
    s->store = malloc(total + nb * JV_SIG_LEN + 1);
    uint8_t *p = s->store;
    for (size_t i = 0; i < nb; i++) {
        s->arr[i].body = p;
        s->arr[i].len = lens[i];
        if (text)
            for (size_t k = 0; k < lens[i]; k++)
                p[k] = (uint8_t)words[(k + i) % (sizeof(words) - 1)];
        else
            jv_rng_bytes(rng, p, lens[i]);
        p += lens[i];
        s->arr[i].sig = p;
        jv_rng_bytes(rng, p, JV_SIG_LEN);
        p += JV_SIG_LEN;
    }
    free(lens);
    s->m.batches = s->arr;
    s->m.nbatches = nb;
    s->m.more = jv_rng_chance(rng, 1, 2);
    s->m.budget = jv_rng_below(rng, 4) ? jv_rng_next(rng) : 0;
}

static void assert_msg_equal(const jv_msg *a, const jv_msg *b)
{
    assert_int_equal(a->type, b->type);
    assert_memory_equal(a->from.b, b->from.b, JV_ID_LEN);
    assert_memory_equal(a->to.b, b->to.b, JV_ID_LEN);
    assert_int_equal(a->stamp, b->stamp);
    assert_int_equal(a->echo, b->echo);
    assert_int_equal(a->refused, b->refused);
    assert_memory_equal(a->sig, b->sig, JV_SIG_LEN);
    assert_true(jv_str_eq(a->from_addr, b->from_addr));
    assert_true(jv_vv_equal(&a->have, &b->have));
    assert_int_equal(a->nbatches, b->nbatches);
    for (size_t i = 0; i < a->nbatches; i++) {
        assert_int_equal(a->batches[i].len, b->batches[i].len);
        if (a->batches[i].len)
            assert_memory_equal(a->batches[i].body, b->batches[i].body,
                                a->batches[i].len);
        assert_memory_equal(a->batches[i].sig, b->batches[i].sig, JV_SIG_LEN);
    }
    assert_int_equal(a->more, b->more);
    assert_int_equal(a->budget, b->budget);
    assert_int_equal(a->base, b->base);
    assert_int_equal(a->heard, b->heard);
    assert_int_equal(a->nrefs, b->nrefs);
    for (size_t i = 0; i < a->nrefs; i++) {
        assert_int_equal(a->refs[i].idx, b->refs[i].idx);
        assert_int_equal(a->refs[i].seq, b->refs[i].seq);
    }
}

static bool inside(const void *p, const jv_buf *b)
{
    const uint8_t *q = p;
    return q >= b->data && q < b->data + b->len;
}

static void test_round_trip(void **state)
{
    (void)state;
    jv_rng rng;
    jv_buf enc, scratch;
    jv_msg out;
    size_t raw;
    jv_rng_seed(&rng, jv_test_seed());
    jv_buf_init(&enc);
    jv_buf_init(&scratch);
    jv_msg_init(&out);

    /* Every field, explicitly. */
    sample s;
    sample_make(&s, &rng, 3, 300, false);
    s.m.type = JV_MSG_SYNC_REPLY;
    s.m.from_addr = jv_str_c("tcp://[2001:db8::7]:7946");
    s.m.more = true;
    s.m.budget = UINT64_MAX;
    s.m.base = 1733500000123456;
    s.m.heard = UINT64_MAX;
    assert_int_equal(jv_msg_encode(&s.m, NULL, NO_COMPRESSION, &enc, &raw),
                     JV_OK);
    assert_int_equal(enc.data[0], 0);
    assert_int_equal(raw, enc.len - 1);
    assert_int_equal(jv_msg_decode(enc.data, enc.len, MiB, &scratch, &out),
                     JV_OK);
    assert_msg_equal(&out, &s.m);
    /* Batches are borrowed from the input, not copied. */
    for (size_t i = 0; i < out.nbatches; i++) {
        assert_true(inside(out.batches[i].sig, &enc));
        if (out.batches[i].len)
            assert_true(inside(out.batches[i].body, &enc));
    }
    sample_fini(&s);

    /* Empty: no vv entries, no batches, no address. A decode replaces what
     * out held before. */
    jv_msg empty;
    jv_msg_init(&empty);
    empty.type = JV_MSG_SYNC;
    jv_buf_reset(&enc);
    assert_int_equal(jv_msg_encode(&empty, NULL, NO_COMPRESSION, &enc, NULL),
                     JV_OK);
    assert_int_equal(jv_msg_decode(enc.data, enc.len, MiB, &scratch, &out),
                     JV_OK);
    assert_msg_equal(&out, &empty);
    assert_int_equal(out.have.n, 0);
    assert_null(out.batches);

    /* Many batches: fixarray, array16 and array32 headers. */
    static const size_t counts[] = {15, 16, 1000, 65535, JV_WIRE_MAX_BATCHES};
    for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
        sample_make(&s, &rng, counts[c], 8, false);
        jv_buf_reset(&enc);
        assert_int_equal(jv_msg_encode(&s.m, NULL, NO_COMPRESSION, &enc, NULL),
                         JV_OK);
        assert_int_equal(
            jv_msg_decode(enc.data, enc.len, 64 * MiB, &scratch, &out), JV_OK);
        assert_msg_equal(&out, &s.m);
        sample_fini(&s);
    }

    /* Encoding refuses what decoding would. */
    sample_make(&s, &rng, 2, 8, false);
    jv_buf_reset(&enc);
    s.m.type = 5;
    assert_int_equal(jv_msg_encode(&s.m, NULL, 0, &enc, NULL), JV_EINVAL);
    s.m.type = JV_MSG_SYNC;
    s.m.from_addr = jv_str_c("\xc3\x28");
    assert_int_equal(jv_msg_encode(&s.m, NULL, 0, &enc, NULL), JV_EINVAL);
    char longaddr[JV_WIRE_MAX_ADDR + 2];
    memset(longaddr, 'a', sizeof(longaddr) - 1);
    longaddr[sizeof(longaddr) - 1] = '\0';
    s.m.from_addr = jv_str_c(longaddr);
    assert_int_equal(jv_msg_encode(&s.m, NULL, 0, &enc, NULL), JV_EINVAL);
    s.m.from_addr.n = JV_WIRE_MAX_ADDR;
    assert_int_equal(jv_msg_encode(&s.m, NULL, 0, &enc, NULL), JV_OK);
    jv_buf_reset(&enc);
    s.m.nbatches = JV_WIRE_MAX_BATCHES + 1;
    assert_int_equal(jv_msg_encode(&s.m, NULL, 0, &enc, NULL), JV_ETOOBIG);
    s.m.nbatches = 2;
    s.arr[1].len = JV_BATCH_MAX_BYTES + 1;
    assert_int_equal(jv_msg_encode(&s.m, NULL, 0, &enc, NULL), JV_ETOOBIG);
    assert_int_equal(enc.len, 0);
    sample_fini(&s);

    jv_msg_fini(&out);
    jv_buf_fini(&enc);
    jv_buf_fini(&scratch);
}

static void test_compression(void **state)
{
    (void)state;
    jv_rng rng;
    jv_buf enc, scratch;
    jv_msg out;
    size_t raw;
    sample s;
    jv_rng_seed(&rng, jv_test_seed() + 1);
    jv_buf_init(&enc);
    jv_buf_init(&scratch);
    jv_msg_init(&out);

    /* Compressible, above the threshold: zstd, and smaller. */
    sample_make(&s, &rng, 20, 5000, true);
    assert_int_equal(jv_msg_encode(&s.m, NULL, 1024, &enc, &raw), JV_OK);
    assert_int_equal(enc.data[0], 1);
    assert_true(jv_msg_compressed(enc.data, enc.len));
    assert_true(enc.len < raw / 4);
    assert_int_equal(jv_msg_decode(enc.data, enc.len, MiB, &scratch, &out),
                     JV_OK);
    assert_msg_equal(&out, &s.m);
    for (size_t i = 0; i < out.nbatches; i++)
        assert_true(inside(out.batches[i].sig, &scratch));
    assert_int_equal(scratch.len, raw);
    /* The limit is exact: the plain size passes, one byte less does not. */
    assert_int_equal(jv_msg_decode(enc.data, enc.len, raw, &scratch, &out),
                     JV_OK);
    assert_int_equal(jv_msg_decode(enc.data, enc.len, raw - 1, &scratch, &out),
                     JV_ETOOBIG);

    /* Same body, threshold not exceeded (body == compress_min): plain. */
    size_t plain_raw = raw;
    jv_buf_reset(&enc);
    assert_int_equal(jv_msg_encode(&s.m, NULL, plain_raw, &enc, &raw), JV_OK);
    assert_int_equal(raw, plain_raw);
    assert_int_equal(enc.data[0], 0);
    assert_false(jv_msg_compressed(enc.data, enc.len));
    assert_false(jv_msg_compressed(enc.data, 0));
    assert_int_equal(enc.len, raw + 1);
    jv_buf_reset(&enc);
    assert_int_equal(jv_msg_encode(&s.m, NULL, plain_raw - 1, &enc, &raw),
                     JV_OK);
    assert_int_equal(enc.data[0], 1);
    sample_fini(&s);

    /* Incompressible, above the threshold: zstd would not save, so plain. */
    sample_make(&s, &rng, 20, 5000, false);
    jv_buf_reset(&enc);
    assert_int_equal(jv_msg_encode(&s.m, NULL, 16, &enc, &raw), JV_OK);
    assert_int_equal(enc.data[0], 0);
    assert_int_equal(enc.len, raw + 1);
    sample_fini(&s);

    jv_msg_fini(&out);
    jv_buf_fini(&enc);
    jv_buf_fini(&scratch);
}

static void test_batch_cost(void **state)
{
    (void)state;
    static const size_t lens[] = {0, 1, 200, 255, 256, 65535, 65536, 300000};
    static const uint8_t sig[JV_SIG_LEN];
    uint8_t *body = calloc(1, 300000);
    jv_buf a, b;
    jv_buf_init(&a);
    jv_buf_init(&b);
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        jv_wire_batch arr[2] = {{body, 5, sig}, {body, lens[i], sig}};
        jv_msg m;
        jv_msg_init(&m);
        m.type = JV_MSG_SYNC_REPLY;
        m.batches = arr;
        m.nbatches = 1;
        jv_buf_reset(&a);
        jv_buf_reset(&b);
        assert_int_equal(jv_msg_encode(&m, NULL, NO_COMPRESSION, &a, NULL),
                         JV_OK);
        m.nbatches = 2;
        assert_int_equal(jv_msg_encode(&m, NULL, NO_COMPRESSION, &b, NULL),
                         JV_OK);
        assert_int_equal(b.len - a.len, jv_wire_batch_cost(lens[i]));
        m.batches = NULL;
        jv_msg_fini(&m);
    }
    free(body);
    jv_buf_fini(&a);
    jv_buf_fini(&b);
}

static jv_err decode_buf(const jv_buf *b, size_t max_plain)
{
    jv_buf scratch;
    jv_msg out;
    jv_buf_init(&scratch);
    jv_msg_init(&out);
    jv_err err = jv_msg_decode(b->data, b->len, max_plain, &scratch, &out);
    jv_msg_fini(&out);
    jv_buf_fini(&scratch);
    return err;
}

static void test_truncated(void **state)
{
    (void)state;
    jv_rng rng;
    jv_buf enc, part;
    sample s;
    jv_rng_seed(&rng, jv_test_seed() + 2);
    jv_buf_init(&enc);
    jv_buf_init(&part);
    for (int compressed = 0; compressed < 2; compressed++) {
        sample_make(&s, &rng, 6, 400, compressed);
        if (s.m.have.n == 0) {
            jv_id id = jv_test_id(1);
            jv_vv_set(&s.m.have, &id, 300);
        }
        jv_buf_reset(&enc);
        assert_int_equal(jv_msg_encode(&s.m, NULL,
                                       compressed ? 64 : NO_COMPRESSION, &enc,
                                       NULL),
                         JV_OK);
        assert_int_equal(enc.data[0], compressed);
        assert_int_equal(decode_buf(&enc, MiB), JV_OK);
        for (size_t n = 0; n < enc.len; n++) {
            jv_buf_reset(&part);
            jv_buf_append(&part, enc.data, n);
            if (decode_buf(&part, MiB) == JV_OK)
                fail_msg("a prefix of %zu of %zu bytes decoded", n, enc.len);
        }
        /* And one byte more is trailing garbage. */
        jv_buf_append(&enc, "x", 1);
        assert_int_equal(decode_buf(&enc, MiB), JV_ETRAILING);
        sample_fini(&s);
    }
    jv_buf_fini(&enc);
    jv_buf_fini(&part);
}

/* Hand-written bodies: a valid one, with exactly one field made wrong. */
enum fault {
    OK_BODY,
    ELEVEN_FIELDS,
    THIRTEEN_FIELDS,
    VERSION_1,
    VERSION_OTHER, /* 5 */
    TO_SHORT,
    STAMP_NIL,
    REFUSED_SIX,
    MSG_SIG_MISSING,
    MSG_SIG_63,
    MSG_SIG_65,
    TYPE_STR,
    TYPE_ZERO,
    TYPE_THREE,
    TYPE_NONCANON,
    FROM_SHORT,
    FROM_STR,
    ADDR_BIN,
    ADDR_UTF8,
    ADDR_NUL,
    ADDR_LONG,
    HAVE_MAP,
    HAVE_UNSORTED,
    BATCHES_NIL,
    BATCH_THREE,
    BATCH_BODY_STR,
    SIG_EMPTY,
    SIG_63,
    SIG_65,
    MORE_INT,
    BUDGET_BOOL,
    BUDGET_NEG,
    FAULT_COUNT
};

static void craft(jv_buf *out, enum fault f)
{
    static const uint8_t sig[JV_SIG_LEN + 1];
    jv_id id = jv_test_id(7), a = jv_test_id(1), b = jv_test_id(2);
    jv_mpw w;
    jv_buf_reset(out);
    jv_buf_append(out, "\0", 1); /* format: plain */
    jv_mpw_init(&w, out);
    jv_mpw_array(&w, f == ELEVEN_FIELDS     ? 11
                     : f == THIRTEEN_FIELDS ? 13
                     : f == VERSION_1       ? 7
                                            : 12);
    /* Version 2's body (which version 3 nodes still read). */
    jv_mpw_u64(&w, f == VERSION_1 ? 1 : f == VERSION_OTHER ? 5 : 2);
    if (f == TYPE_STR)
        jv_mpw_str(&w, "1", 1);
    else if (f == TYPE_NONCANON)
        jv_buf_append(out, "\xcc\x01", 2);
    else
        jv_mpw_u64(&w, f == TYPE_ZERO ? 0 : f == TYPE_THREE ? 3 : 1);
    if (f == FROM_SHORT)
        jv_mpw_bin(&w, id.b, JV_ID_LEN - 1);
    else if (f == FROM_STR)
        jv_mpw_str(&w, (const char *)id.b, JV_ID_LEN);
    else
        jv_mpw_id(&w, &id);
    if (f == TO_SHORT)
        jv_mpw_bin(&w, a.b, JV_ID_LEN - 1);
    else
        jv_mpw_id(&w, &a);
    if (f == STAMP_NIL)
        jv_mpw_nil(&w);
    else
        jv_mpw_u64(&w, 1234);
    jv_mpw_u64(&w, 0);
    jv_mpw_u64(&w, f == REFUSED_SIX ? 6 : 0);
    if (f == ADDR_BIN)
        jv_mpw_bin(&w, "tcp://a:1", 9);
    else if (f == ADDR_UTF8)
        jv_mpw_str(&w, "tcp://\xff:1", 9);
    else if (f == ADDR_NUL)
        jv_mpw_str(&w, "tcp://a\0:1", 10);
    else if (f == ADDR_LONG) {
        char s[JV_WIRE_MAX_ADDR + 1];
        memset(s, 'a', sizeof(s));
        jv_mpw_str(&w, s, sizeof(s));
    } else
        jv_mpw_str(&w, "tcp://a:1", 9);
    if (f == HAVE_MAP) {
        jv_buf_append(out, "\x80", 1);
    } else {
        jv_mpw_array(&w, 2);
        jv_mpw_array(&w, 2);
        jv_mpw_id(&w, jv_id_cmp(&a, &b) < 0 ? (f == HAVE_UNSORTED ? &b : &a)
                                            : (f == HAVE_UNSORTED ? &a : &b));
        jv_mpw_u64(&w, 5);
        jv_mpw_array(&w, 2);
        jv_mpw_id(&w, jv_id_cmp(&a, &b) < 0 ? (f == HAVE_UNSORTED ? &a : &b)
                                            : (f == HAVE_UNSORTED ? &b : &a));
        jv_mpw_u64(&w, 9);
    }
    if (f == BATCHES_NIL) {
        jv_mpw_nil(&w);
    } else {
        jv_mpw_array(&w, 1);
        jv_mpw_array(&w, f == BATCH_THREE ? 3 : 2);
        if (f == BATCH_BODY_STR)
            jv_mpw_str(&w, "body", 4);
        else
            jv_mpw_bin(&w, "body", 4);
        jv_mpw_bin(&w, sig,
                   f == SIG_EMPTY ? 0
                   : f == SIG_63  ? 63
                   : f == SIG_65  ? 65
                                  : JV_SIG_LEN);
        if (f == BATCH_THREE)
            jv_mpw_nil(&w);
    }
    if (f == MORE_INT)
        jv_mpw_u64(&w, 1);
    else
        jv_mpw_bool(&w, false);
    if (f == BUDGET_BOOL)
        jv_mpw_bool(&w, true);
    else if (f == BUDGET_NEG)
        jv_buf_append(out, "\xff", 1); /* negative fixint -1 */
    else
        jv_mpw_u64(&w, 1000);
    if (f == THIRTEEN_FIELDS)
        jv_mpw_nil(&w);
    /* The message signature after the body. */
    if (f != MSG_SIG_MISSING)
        jv_buf_append(out, sig,
                      f == MSG_SIG_63   ? 63
                      : f == MSG_SIG_65 ? 65
                                        : JV_SIG_LEN);
    assert_int_equal(jv_mpw_err(&w), JV_OK);
}

static void test_strict(void **state)
{
    (void)state;
    jv_buf b, scratch;
    jv_msg out;
    jv_buf_init(&b);
    jv_buf_init(&scratch);
    jv_msg_init(&out);

    craft(&b, OK_BODY);
    assert_int_equal(jv_msg_decode(b.data, b.len, MiB, &scratch, &out), JV_OK);
    assert_int_equal(out.nbatches, 1);
    assert_int_equal(out.have.n, 2);
    for (int f = OK_BODY + 1; f < FAULT_COUNT; f++) {
        jv_msg keep = out;
        craft(&b, (enum fault)f);
        jv_err err = jv_msg_decode(b.data, b.len, MiB, &scratch, &out);
        if (err == JV_OK)
            fail_msg("fault %d decoded", f);
        /* Another protocol version is named as such, with its number
         * (for the log and the notice that tells its sender). */
        if ((f == VERSION_1 || f == VERSION_OTHER) != (err == JV_EVERSION))
            fail_msg("fault %d: %s", f, jv_errname(err));
        if (f == VERSION_1 || f == VERSION_OTHER)
            assert_int_equal(jv_msg_peek_version(b.data, b.len, MiB, &scratch),
                             f == VERSION_1 ? 1 : 5);
        /* A failed decode leaves out as it was. */
        assert_memory_equal(&keep, &out, sizeof(out));
    }

    /* An unknown format byte, and an empty input. */
    craft(&b, OK_BODY);
    b.data[0] = 2;
    assert_int_equal(decode_buf(&b, MiB), JV_EDECODE);
    assert_int_equal(jv_msg_decode(b.data, 0, MiB, &scratch, &out), JV_ETRUNC);

    jv_msg_fini(&out);
    jv_buf_fini(&b);
    jv_buf_fini(&scratch);
}

/* A plain message of `fields` fields and `version` into out, up to its
 * `have`: a SYNC_REPLY (type 2) from node 3 to itself, stamp 1, nothing
 * refused, no address. */
static void craft_head(jv_mpw *w, jv_buf *out, uint32_t fields,
                       uint64_t version, uint64_t type)
{
    jv_id id = jv_test_id(3);
    jv_buf_reset(out);
    jv_buf_append(out, "\0", 1);
    jv_mpw_init(w, out);
    jv_mpw_array(w, fields);
    jv_mpw_u64(w, version);
    jv_mpw_u64(w, type);
    jv_mpw_id(w, &id);
    jv_mpw_id(w, &id);
    jv_mpw_u64(w, 1);
    jv_mpw_u64(w, 0);
    jv_mpw_u64(w, 0);
    jv_mpw_str(w, "", 0);
}

/* A body whose batch array header is `hdr` (claiming any count), followed
 * by one real batch and the last two fields. */
static void craft_count(jv_buf *out, const uint8_t *hdr, size_t hdrlen)
{
    static const uint8_t sig[JV_SIG_LEN];
    jv_mpw w;
    craft_head(&w, out, 12, 2, 2);
    jv_mpw_array(&w, 0); /* empty vv: no allocation of its own */
    jv_buf_append(out, hdr, hdrlen);
    jv_mpw_array(&w, 2);
    jv_mpw_bin(&w, "x", 1);
    jv_mpw_bin(&w, sig, JV_SIG_LEN);
    jv_mpw_bool(&w, true);
    jv_mpw_u64(&w, 0);
    jv_buf_append(out, sig, JV_SIG_LEN); /* the message signature */
}

static void test_counts(void **state)
{
    (void)state;
    static const struct {
        const char *hdr;
        size_t len;
        jv_err want;
    } cases[] = {
        {"\xdd\xff\xff\xff\xff", 5, JV_ETOOBIG}, /* 2^32 - 1 */
        {"\xdd\x00\x01\x00\x01", 5, JV_ETOOBIG}, /* the limit + 1 */
        {"\xdd\x00\x01\x00\x00", 5, JV_ETRUNC},  /* the limit, few bytes */
        {"\xdc\xff\xff", 3, JV_ETRUNC},
        {"\xdc\x00\x10", 3, JV_ETRUNC},
        {"\x92", 1, JV_ETRUNC},
    };
    jv_buf b;
    jv_buf_init(&b);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        craft_count(&b, (const uint8_t *)cases[i].hdr, cases[i].len);
        /* Any allocation would now fail and be counted: a refusal that
         * comes before allocating leaves the count at zero. */
        jv_alloc_fail_after(0);
        jv_err err = decode_buf(&b, MiB);
        long failed = jv_alloc_failed_count();
        jv_alloc_fail_reset();
        assert_int_equal(err, cases[i].want);
        assert_int_equal(failed, 0);
    }
    /* The honest header decodes. */
    craft_count(&b, (const uint8_t *)"\x91", 1);
    assert_int_equal(decode_buf(&b, MiB), JV_OK);

    /* A batch body over JV_BATCH_MAX_BYTES. */
    jv_buf big;
    jv_buf_init(&big);
    jv_mpw w;
    jv_id id = jv_test_id(3);
    uint8_t *body = calloc(1, JV_BATCH_MAX_BYTES + 1);
    static const uint8_t sig[JV_SIG_LEN];
    jv_buf_append(&big, "\0", 1);
    jv_mpw_init(&w, &big);
    jv_mpw_array(&w, 12);
    jv_mpw_u64(&w, 2);
    jv_mpw_u64(&w, 2);
    jv_mpw_id(&w, &id);
    jv_mpw_id(&w, &id);
    jv_mpw_u64(&w, 1);
    jv_mpw_u64(&w, 0);
    jv_mpw_u64(&w, 0);
    jv_mpw_str(&w, "", 0);
    jv_mpw_array(&w, 0);
    jv_mpw_array(&w, 1);
    jv_mpw_array(&w, 2);
    jv_mpw_bin(&w, body, JV_BATCH_MAX_BYTES + 1);
    jv_mpw_bin(&w, sig, JV_SIG_LEN);
    jv_mpw_bool(&w, true);
    jv_mpw_u64(&w, 0);
    assert_int_equal(decode_buf(&big, 64 * MiB), JV_ETOOBIG);
    free(body);
    jv_buf_fini(&big);
    jv_buf_fini(&b);
}

/* format byte 1 + a zstd frame of `n` zero bytes, with or without the
 * content size in its header, with a window of 2^wlog (0: zstd's choice). */
static void zstd_zeros(jv_buf *out, size_t n, bool declare, int wlog)
{
    uint8_t *src = calloc(1, n);
    size_t bound = ZSTD_compressBound(n);
    ZSTD_CCtx *c = ZSTD_createCCtx();
    jv_buf_reset(out);
    jv_buf_reserve(out, bound + 1);
    out->data[0] = 1;
    assert_false(ZSTD_isError(
        ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, declare ? 1 : 0)));
    assert_false(
        ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_windowLog, wlog)));
    size_t got = ZSTD_compress2(c, out->data + 1, bound, src, n);
    assert_false(ZSTD_isError(got));
    out->len = got + 1;
    unsigned long long cs = ZSTD_getFrameContentSize(out->data + 1, got);
    if (declare)
        assert_int_equal(cs, n);
    else
        assert_true(cs == ZSTD_CONTENTSIZE_UNKNOWN);
    ZSTD_freeCCtx(c);
    free(src);
}

static void test_zstd_bombs(void **state)
{
    (void)state;
    jv_buf bomb, scratch;
    jv_msg out;
    jv_buf_init(&bomb);
    jv_buf_init(&scratch);
    jv_msg_init(&out);

    /* 64 MiB of zeros fit in a few KiB; the limit is 1 MiB. Declared, the
     * size alone refuses it. Undeclared with a large window, the window
     * does (it would need 64 MiB of memory). Undeclared with a window that
     * fits the limit, only the output bound can stop it. */
    static const struct {
        bool declare;
        int wlog;
        const char *what;
    } bombs[] = {
        {true, 0, "declared size"},
        {false, 0, "no size, 64 MiB window"},
        {false, 16, "no size, 64 KiB window"},
    };
    for (size_t i = 0; i < sizeof(bombs) / sizeof(bombs[0]); i++) {
        zstd_zeros(&bomb, 64 * MiB, bombs[i].declare, bombs[i].wlog);
        assert_true(bomb.len < 16384);
        jv_buf_fini(&scratch);
        jv_buf_init(&scratch);
        assert_int_equal(
            jv_msg_decode(bomb.data, bomb.len, MiB, &scratch, &out),
            JV_ETOOBIG);
        /* Never more room than the limit. */
        assert_true(scratch.cap <= MiB);
        if (bombs[i].declare)
            assert_int_equal(scratch.cap, 0);
        if (bombs[i].wlog)
            assert_int_equal(scratch.cap, MiB); /* filled to the bound */
        printf("zstd bomb (%s): %zu bytes inflating to 64 MiB refused, "
               "scratch capacity %zu\n",
               bombs[i].what, bomb.len, scratch.cap);
    }

    /* A frame that declares less than it holds: the declared size is the
     * bound, and the lie is caught. */
    zstd_zeros(&bomb, MiB, true, 0);
    const uint8_t *f = bomb.data + 1;
    unsigned fhd = f[4], fcs_flag = fhd >> 6, single = (fhd >> 5) & 1;
    static const size_t did_size[] = {0, 1, 2, 4};
    size_t off = 5 + (single ? 0 : 1) + did_size[fhd & 3];
    assert_int_equal(fcs_flag, 2); /* 4-byte content size */
    bomb.data[1 + off] = 0xe8;     /* 1000, little-endian */
    bomb.data[2 + off] = 0x03;
    bomb.data[3 + off] = 0;
    bomb.data[4 + off] = 0;
    jv_buf_fini(&scratch);
    jv_buf_init(&scratch);
    assert_int_not_equal(
        jv_msg_decode(bomb.data, bomb.len, 4 * MiB, &scratch, &out), JV_OK);
    assert_true(scratch.cap <= 1000);

    /* A skippable frame is not a message. */
    static const uint8_t skip[] = {1, 0x50, 0x2a, 0x4d, 0x18, 4, 0,
                                   0, 0,    1,    2,    3,    4};
    assert_int_equal(jv_msg_decode(skip, sizeof(skip), MiB, &scratch, &out),
                     JV_EDECODE);

    jv_msg_fini(&out);
    jv_buf_fini(&bomb);
    jv_buf_fini(&scratch);
}

static void test_zstd_frames(void **state)
{
    (void)state;
    jv_rng rng;
    jv_buf enc, bad, scratch;
    jv_msg out;
    sample s;
    size_t raw;
    jv_rng_seed(&rng, jv_test_seed() + 3);
    jv_buf_init(&enc);
    jv_buf_init(&bad);
    jv_buf_init(&scratch);
    jv_msg_init(&out);
    sample_make(&s, &rng, 10, 2000, true);
    assert_int_equal(jv_msg_encode(&s.m, NULL, 0, &enc, &raw), JV_OK);
    assert_int_equal(enc.data[0], 1);

    /* Garbage after the frame, or a second frame. */
    jv_buf_append(&bad, enc.data, enc.len);
    jv_buf_append(&bad, "\0", 1);
    assert_int_equal(decode_buf(&bad, MiB), JV_ETRAILING);
    jv_buf_reset(&bad);
    jv_buf_append(&bad, enc.data, enc.len);
    jv_buf_append(&bad, enc.data + 1, enc.len - 1);
    assert_int_equal(decode_buf(&bad, MiB), JV_ETRAILING);

    /* A frame without its size inflates within the same exact bound. */
    uint8_t *plain = malloc(raw);
    jv_buf pl;
    jv_buf_init(&pl);
    assert_int_equal(jv_msg_encode(&s.m, NULL, NO_COMPRESSION, &pl, NULL),
                     JV_OK);
    memcpy(plain, pl.data + 1, raw);
    ZSTD_CCtx *c = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 0);
    jv_buf_reset(&bad);
    jv_buf_reserve(&bad, ZSTD_compressBound(raw) + 1);
    bad.data[0] = 1;
    size_t got =
        ZSTD_compress2(c, bad.data + 1, ZSTD_compressBound(raw), plain, raw);
    assert_false(ZSTD_isError(got));
    bad.len = got + 1;
    assert_true(ZSTD_getFrameContentSize(bad.data + 1, got) ==
                ZSTD_CONTENTSIZE_UNKNOWN);
    assert_int_equal(jv_msg_decode(bad.data, bad.len, raw, &scratch, &out),
                     JV_OK);
    assert_msg_equal(&out, &s.m);
    assert_int_equal(jv_msg_decode(bad.data, bad.len, raw - 1, &scratch, &out),
                     JV_ETOOBIG);
    ZSTD_freeCCtx(c);

    /* A frame whose content is not a message body. */
    uint8_t junk[4000];
    memset(junk, 'j', sizeof(junk));
    jv_buf_reset(&bad);
    jv_buf_reserve(&bad, ZSTD_compressBound(sizeof(junk)) + 1);
    bad.data[0] = 1;
    got = ZSTD_compress(bad.data + 1, ZSTD_compressBound(sizeof(junk)), junk,
                        sizeof(junk), 1);
    bad.len = got + 1;
    assert_int_equal(decode_buf(&bad, MiB), JV_ETYPE);

    free(plain);
    jv_buf_fini(&pl);
    sample_fini(&s);
    jv_msg_fini(&out);
    jv_buf_fini(&enc);
    jv_buf_fini(&bad);
    jv_buf_fini(&scratch);
}

static void mutate(jv_rng *rng, jv_buf *b)
{
    size_t pos = b->len ? (size_t)jv_rng_below(rng, b->len) : 0;
    uint8_t x = (uint8_t)jv_rng_next(rng);
    switch (jv_rng_below(rng, 5)) {
    case 0: /* flip a bit */
        if (b->len)
            b->data[pos] ^= (uint8_t)(1u << (x & 7));
        break;
    case 1: /* overwrite a byte */
        if (b->len)
            b->data[pos] = x;
        break;
    case 2: /* insert a byte */
        jv_buf_reserve(b, 1);
        memmove(b->data + pos + 1, b->data + pos, b->len - pos);
        b->data[pos] = x;
        b->len++;
        break;
    case 3: /* delete a byte */
        if (b->len) {
            memmove(b->data + pos, b->data + pos + 1, b->len - pos - 1);
            b->len--;
        }
        break;
    default: /* truncate */
        b->len = pos;
        break;
    }
}

static void test_fuzz(void **state)
{
    (void)state;
    enum {
        SEEDS = 8
    };
    uint64_t seed = jv_test_seed() + 4;
    uint64_t iters = jv_test_schedules(20000);
    jv_rng rng;
    jv_buf seeds[SEEDS], b, scratch, again;
    jv_msg out;
    uint64_t decoded = 0;
    jv_rng_seed(&rng, seed);
    jv_buf_init(&b);
    jv_buf_init(&scratch);
    jv_buf_init(&again);
    jv_msg_init(&out);
    for (int i = 0; i < SEEDS; i++) {
        sample s;
        sample_make(&s, &rng, (size_t)jv_rng_below(&rng, 5), 120, i & 1);
        jv_buf_init(&seeds[i]);
        assert_int_equal(jv_msg_encode(&s.m, NULL, i & 1 ? 32 : NO_COMPRESSION,
                                       &seeds[i], NULL),
                         JV_OK);
        sample_fini(&s);
    }
    for (uint64_t it = 0; it < iters; it++) {
        const jv_buf *from = &seeds[jv_rng_below(&rng, SEEDS)];
        jv_buf_reset(&b);
        jv_buf_append(&b, from->data, from->len);
        unsigned nmut = 1 + (unsigned)jv_rng_below(&rng, 3);
        for (unsigned k = 0; k < nmut; k++)
            mutate(&rng, &b);
        if (jv_msg_decode(b.data, b.len, 64 * 1024, &scratch, &out) != JV_OK)
            continue;
        decoded++;
        /* The reader only accepts canonical forms, so what decodes
         * re-encodes to the very bytes it came from. */
        jv_buf_reset(&again);
        assert_int_equal(
            jv_msg_encode(&out, NULL, NO_COMPRESSION, &again, NULL), JV_OK);
        if (b.data[0] == 0) {
            assert_int_equal(again.len, b.len);
            assert_memory_equal(again.data, b.data, b.len);
        } else {
            assert_int_equal(again.len, scratch.len + 1);
            assert_memory_equal(again.data + 1, scratch.data, scratch.len);
        }
    }
    printf("fuzz: %llu mutants, %llu still decoded and re-encoded exactly\n",
           (unsigned long long)iters, (unsigned long long)decoded);
    for (int i = 0; i < SEEDS; i++)
        jv_buf_fini(&seeds[i]);
    jv_msg_fini(&out);
    jv_buf_fini(&b);
    jv_buf_fini(&scratch);
    jv_buf_fini(&again);
}

/* Figures: bytes on the wire per operation for realistic batches. */
static void test_figures(void **state)
{
    (void)state;
    enum {
        BATCHES = 100,
        OPS = 50
    };
    static uint8_t sigs[BATCHES][JV_SIG_LEN];
    jv_buf bodies[BATCHES], enc;
    jv_wire_batch arr[BATCHES];
    jv_op ops[OPS];
    char names[OPS][32];
    jv_msg m;
    size_t raw;
    jv_buf_init(&enc);
    jv_msg_init(&m);
    for (int i = 0; i < BATCHES; i++) {
        jv_batch b;
        memset(&b, 0, sizeof(b));
        b.origin = jv_test_id((unsigned)i % 4);
        b.first_seq = 1 + (uint64_t)i * OPS;
        b.hlc = 1700000000000ull << 16;
        memset(b.prev, i, sizeof(b.prev));
        for (int k = 0; k < OPS; k++) {
            snprintf(names[k], sizeof(names[k]), "http.requests.%d", k % 7);
            memset(&ops[k], 0, sizeof(ops[k]));
            ops[k].kind = JV_OP_COUNTER;
            ops[k].counter.name = jv_str_c(names[k]);
            ops[k].counter.p = 1000 + (uint64_t)(i * OPS + k);
            ops[k].counter.n = 0;
        }
        b.ops = ops;
        b.nops = OPS;
        jv_buf_init(&bodies[i]);
        assert_int_equal(jv_batch_encode(&b, &bodies[i]), JV_OK);
        memset(sigs[i], 0xa5 ^ i, JV_SIG_LEN);
        arr[i].body = bodies[i].data;
        arr[i].len = bodies[i].len;
        arr[i].sig = sigs[i];
    }
    m.type = JV_MSG_SYNC_REPLY;
    m.batches = arr;
    m.nbatches = BATCHES;
    assert_int_equal(jv_msg_encode(&m, NULL, 4096, &enc, &raw), JV_OK);
    printf("wire: %d batches x %d counter ops: body %zu bytes (%.1f B/op), "
           "on the wire %zu bytes (%.1f B/op, zstd %s)\n",
           BATCHES, OPS, raw, (double)raw / (BATCHES * OPS), enc.len,
           (double)enc.len / (BATCHES * OPS), enc.data[0] ? "on" : "off");
    assert_true(enc.len < raw);
    m.batches = NULL;
    jv_msg_fini(&m);
    for (int i = 0; i < BATCHES; i++)
        jv_buf_fini(&bodies[i]);
    jv_buf_fini(&enc);
}

/* Signed messages: the sender's signature verifies over the bytes
 * received, compressed or not; any change to the body, a signature by
 * another key, or a `from` naming another node does not. */
static void test_signature(void **state)
{
    (void)state;
    jv_keypair kp, other;
    jv_rng rng;
    sample s;
    jv_buf enc, scratch;
    jv_msg out;
    jv_rng_seed(&rng, jv_test_seed() + 9);
    assert_int_equal(jv_keypair_generate(&kp), JV_OK);
    assert_int_equal(jv_keypair_generate(&other), JV_OK);
    jv_buf_init(&enc);
    jv_buf_init(&scratch);
    jv_msg_init(&out);
    for (int compressed = 0; compressed < 2; compressed++) {
        /* Enough text that zstd shrinks the message, whatever the seed:
         * the encoder sends it plain otherwise. */
        for (size_t text = 0; text < 400; sample_fini(&s)) {
            sample_make(&s, &rng, 3, 400, true);
            text = 0;
            for (size_t i = 0; i < s.m.nbatches; i++)
                text += s.arr[i].len;
            if (text >= 400)
                break;
        }
        s.m.from = kp.pk;
        jv_buf_reset(&enc);
        assert_int_equal(jv_msg_encode(&s.m, &kp,
                                       compressed ? 16 : NO_COMPRESSION, &enc,
                                       NULL),
                         JV_OK);
        assert_int_equal(enc.data[0], compressed);
        assert_int_equal(jv_msg_decode(enc.data, enc.len, MiB, &scratch, &out),
                         JV_OK);
        assert_int_equal(jv_msg_verify(&out), JV_OK);
        /* Re-encoding the decoded message gives the same bytes. */
        jv_buf again;
        jv_buf_init(&again);
        assert_int_equal(jv_msg_encode(&out, NULL,
                                       compressed ? 16 : NO_COMPRESSION, &again,
                                       NULL),
                         JV_OK);
        assert_int_equal(again.len, enc.len);
        assert_memory_equal(again.data, enc.data, enc.len);
        jv_buf_fini(&again);
        /* Signed by another key than from's: refused by encode, and a
         * forged one (written as is) does not verify. */
        jv_buf_reset(&enc);
        assert_int_equal(jv_msg_encode(&s.m, &other, 0, &enc, NULL), JV_EINVAL);
        memcpy(s.m.sig, out.sig, JV_SIG_LEN);
        s.m.stamp++; /* the old signature over a new stamp */
        jv_buf_reset(&enc);
        assert_int_equal(jv_msg_encode(&s.m, NULL, NO_COMPRESSION, &enc, NULL),
                         JV_OK);
        assert_int_equal(jv_msg_decode(enc.data, enc.len, MiB, &scratch, &out),
                         JV_OK);
        assert_int_equal(jv_msg_verify(&out), JV_ESIG);
        /* Every single byte of a signed body matters. */
        jv_buf_reset(&enc);
        assert_int_equal(jv_msg_encode(&s.m, &kp, NO_COMPRESSION, &enc, NULL),
                         JV_OK);
        size_t changed = 0;
        for (size_t i = 1; i < enc.len; i++) {
            enc.data[i] ^= 0x01;
            if (jv_msg_decode(enc.data, enc.len, MiB, &scratch, &out) ==
                JV_OK) {
                assert_int_equal(jv_msg_verify(&out), JV_ESIG);
                changed++;
            }
            enc.data[i] ^= 0x01;
        }
        assert_true(changed > 0);
        sample_fini(&s);
    }
    jv_msg_fini(&out);
    jv_buf_fini(&enc);
    jv_buf_fini(&scratch);
    jv_keypair_wipe(&kp);
    jv_keypair_wipe(&other);
}

/* Version 3 says base and heard; version 2 (the body without them) is
 * still read, and written on demand, for nodes of both in one cluster;
 * what version 2 cannot say is refused before it is sent, and a body
 * whose length is not its version's is refused. */
static void test_versions(void **state)
{
    (void)state;
    jv_rng rng;
    jv_buf enc, scratch;
    jv_msg out;
    sample s;
    jv_rng_seed(&rng, jv_test_seed());
    jv_buf_init(&enc);
    jv_buf_init(&scratch);
    jv_msg_init(&out);
    sample_make(&s, &rng, 2, 50, false);
    s.m.type = JV_MSG_SYNC;
    s.m.refused = JV_REFUSED_NONE; /* the sample's is random: 6 is not v2 */

    assert_int_equal(jv_msg_encode(&s.m, NULL, NO_COMPRESSION, &enc, NULL),
                     JV_OK);
    assert_int_equal(enc.data[1], 0x9e); /* fixarray of 14 */
    assert_int_equal(enc.data[2], JV_WIRE_VERSION);
    assert_int_equal(decode_buf(&enc, MiB), JV_OK);
    assert_int_equal(jv_msg_decode(enc.data, enc.len, MiB, &scratch, &out),
                     JV_OK);
    assert_int_equal(out.version, JV_WIRE_VERSION);

    s.m.version = 3;
    jv_buf_reset(&enc);
    assert_int_equal(jv_msg_encode(&s.m, NULL, NO_COMPRESSION, &enc, NULL),
                     JV_OK);
    assert_int_equal(enc.data[2], 3);
    assert_int_equal(jv_msg_decode(enc.data, enc.len, MiB, &scratch, &out),
                     JV_OK);
    assert_int_equal(out.version, 3);
    assert_msg_equal(&out, &s.m);

    s.m.version = 2;
    jv_buf_reset(&enc);
    assert_int_equal(jv_msg_encode(&s.m, NULL, NO_COMPRESSION, &enc, NULL),
                     JV_OK);
    assert_int_equal(enc.data[1], 0x9c); /* fixarray of 12 */
    assert_int_equal(enc.data[2], 2);
    assert_int_equal(jv_msg_decode(enc.data, enc.len, MiB, &scratch, &out),
                     JV_OK);
    assert_int_equal(out.version, 2);
    assert_msg_equal(&out, &s.m);
    /* Version 2's body under version 3's number, and the other way. */
    enc.data[2] = 3;
    assert_int_equal(decode_buf(&enc, MiB), JV_EDECODE);
    s.m.version = 0;
    jv_buf_reset(&enc);
    assert_int_equal(jv_msg_encode(&s.m, NULL, NO_COMPRESSION, &enc, NULL),
                     JV_OK);
    enc.data[2] = 2;
    assert_int_equal(decode_buf(&enc, MiB), JV_EDECODE);

    /* What version 2 cannot say. */
    s.m.version = 2;
    s.m.base = 5;
    assert_int_equal(jv_msg_encode(&s.m, NULL, NO_COMPRESSION, &enc, NULL),
                     JV_EINVAL);
    s.m.base = 0;
    s.m.heard = 5;
    assert_int_equal(jv_msg_encode(&s.m, NULL, NO_COMPRESSION, &enc, NULL),
                     JV_EINVAL);
    s.m.heard = 0;
    s.m.type = JV_MSG_SYNC_REPLY;
    s.m.refused = JV_REFUSED_BASE;
    assert_int_equal(jv_msg_encode(&s.m, NULL, NO_COMPRESSION, &enc, NULL),
                     JV_EINVAL);
    s.m.version = 1;
    s.m.refused = JV_REFUSED_NONE;
    assert_int_equal(jv_msg_encode(&s.m, NULL, NO_COMPRESSION, &enc, NULL),
                     JV_EINVAL);
    /* Version 3 can. */
    s.m.version = 0;
    s.m.refused = JV_REFUSED_BASE;
    jv_buf_reset(&enc);
    assert_int_equal(jv_msg_encode(&s.m, NULL, NO_COMPRESSION, &enc, NULL),
                     JV_OK);
    assert_int_equal(jv_msg_decode(enc.data, enc.len, MiB, &scratch, &out),
                     JV_OK);
    assert_int_equal(out.refused, JV_REFUSED_BASE);
    sample_fini(&s);
    jv_msg_fini(&out);
    jv_buf_fini(&enc);
    jv_buf_fini(&scratch);
}

/* A version 4 request whose `have` is [refs, vv], refs the flat list
 * given (gap, seq, ...), based on `base`, nothing else. */
static void craft_refs(jv_buf *out, const uint64_t *flat, uint32_t n,
                       uint64_t base)
{
    static const uint8_t sig[JV_SIG_LEN];
    jv_mpw w;
    craft_head(&w, out, 14, 4, 1);
    jv_mpw_array(&w, 2);
    jv_mpw_array(&w, n);
    for (uint32_t i = 0; i < n; i++)
        jv_mpw_u64(&w, flat[i]);
    jv_mpw_array(&w, 0); /* the vv: no new ids */
    jv_mpw_array(&w, 0); /* batches */
    jv_mpw_bool(&w, false);
    jv_mpw_u64(&w, 0);
    jv_mpw_u64(&w, base);
    jv_mpw_u64(&w, 0);
    jv_buf_append(out, sig, JV_SIG_LEN);
    assert_int_equal(jv_mpw_err(&w), JV_OK);
}

/* Version 4 names the base's entries by place: they travel as gaps and
 * come back as the same places; version 3 cannot say them, nor can a
 * message without a base; a decoder refuses an odd list, a seq of 0, a
 * place beyond any vector, and places with no base. */
static void test_refs(void **state)
{
    (void)state;
    jv_rng rng;
    jv_buf enc, scratch;
    jv_msg out;
    sample s;
    jv_vv_ref refs[3] = {{0, 5}, {1, 300}, {200, 70000}};
    jv_rng_seed(&rng, jv_test_seed());
    jv_buf_init(&enc);
    jv_buf_init(&scratch);
    jv_msg_init(&out);
    sample_make(&s, &rng, 1, 50, false);
    s.m.refs = refs;
    s.m.nrefs = 3;
    s.m.base = 9;
    assert_int_equal(jv_msg_encode(&s.m, NULL, NO_COMPRESSION, &enc, NULL),
                     JV_OK);
    assert_int_equal(jv_msg_decode(enc.data, enc.len, MiB, &scratch, &out),
                     JV_OK);
    assert_msg_equal(&out, &s.m);
    /* What cannot be said. */
    s.m.version = 3;
    assert_int_equal(jv_msg_encode(&s.m, NULL, NO_COMPRESSION, &enc, NULL),
                     JV_EINVAL);
    s.m.version = 0;
    s.m.base = 0;
    assert_int_equal(jv_msg_encode(&s.m, NULL, NO_COMPRESSION, &enc, NULL),
                     JV_EINVAL);
    s.m.base = 9;
    refs[1].idx = 0; /* not ascending */
    assert_int_equal(jv_msg_encode(&s.m, NULL, NO_COMPRESSION, &enc, NULL),
                     JV_EINVAL);
    refs[1].idx = 1;
    refs[2].idx = JV_VV_MAX_ENTRIES; /* a place no decoder takes */
    assert_int_equal(jv_msg_encode(&s.m, NULL, NO_COMPRESSION, &enc, NULL),
                     JV_EINVAL);
    refs[2].idx = 200;
    refs[2].seq = 0;
    assert_int_equal(jv_msg_encode(&s.m, NULL, NO_COMPRESSION, &enc, NULL),
                     JV_EINVAL);
    s.m.refs = NULL; /* the sample's own fini must not free ours */
    s.m.nrefs = 0;
    /* What a decoder refuses. */
    const uint64_t ok[] = {0, 5, 0, 300, 198, 70000};
    craft_refs(&enc, ok, 6, 9);
    assert_int_equal(jv_msg_decode(enc.data, enc.len, MiB, &scratch, &out),
                     JV_OK);
    assert_int_equal(out.nrefs, 3);
    assert_int_equal(out.refs[2].idx, 200);
    craft_refs(&enc, ok, 6, 0);
    assert_int_equal(decode_buf(&enc, MiB), JV_EDECODE);
    craft_refs(&enc, ok, 5, 9);
    assert_int_equal(decode_buf(&enc, MiB), JV_EDECODE);
    const uint64_t zero[] = {3, 0};
    craft_refs(&enc, zero, 2, 9);
    assert_int_equal(decode_buf(&enc, MiB), JV_EDECODE);
    const uint64_t far[] = {0, 1, JV_VV_MAX_ENTRIES - 1, 1};
    craft_refs(&enc, far, 4, 9);
    assert_int_equal(decode_buf(&enc, MiB), JV_EDECODE);
    const uint64_t huge[] = {UINT64_MAX, 1};
    craft_refs(&enc, huge, 2, 9);
    assert_int_equal(decode_buf(&enc, MiB), JV_EDECODE);
    sample_fini(&s);
    jv_msg_fini(&out);
    jv_buf_fini(&enc);
    jv_buf_fini(&scratch);
}

/* The encoded length of one message: its vector as `refs` (version 4)
 * and `have`, or whole as `have`. */
static size_t plain_len(sample *s, unsigned version, jv_vv_ref *refs,
                        size_t nrefs, const jv_vv *have)
{
    jv_buf enc;
    size_t len = 0;
    jv_vv keep = s->m.have;
    jv_buf_init(&enc);
    s->m.version = version;
    s->m.refs = refs;
    s->m.nrefs = nrefs;
    s->m.have = *have;
    assert_int_equal(jv_msg_encode(&s->m, NULL, NO_COMPRESSION, &enc, &len),
                     JV_OK);
    s->m.have = keep;
    s->m.refs = NULL;
    s->m.nrefs = 0;
    s->m.version = 0;
    jv_buf_fini(&enc);
    return len;
}

/* jv_wire_have_cost is what the vector takes in a message, in versions 4
 * and 3 (so that a sender weighs a difference against the whole by what
 * each really costs), random places, seqs of every width and ids; and a
 * vector whose every entry moved since the base, which the entries'
 * count would send whole, is far shorter as places. */
static void test_have_cost(void **state)
{
    (void)state;
    jv_rng rng;
    sample s;
    jv_vv_ref refs[300];
    jv_vv none, vv;
    jv_rng_seed(&rng, jv_test_seed());
    sample_make(&s, &rng, 1, 50, false);
    s.m.base = 9;
    jv_vv_init(&none);
    jv_vv_init(&vv);
    for (int round = 0; round < 200; round++) {
        size_t n = (size_t)jv_rng_below(&rng, 300), k = 0;
        uint32_t idx = 0;
        for (size_t i = 0; i < n && idx < JV_VV_MAX_ENTRIES - 300; i++) {
            idx += (uint32_t)jv_rng_below(&rng,
                                          jv_rng_chance(&rng, 1, 8) ? 300 : 3);
            refs[k].idx = idx++;
            refs[k++].seq =
                1 + (jv_rng_next(&rng) >> (1 + jv_rng_below(&rng, 63)));
        }
        jv_vv_clear(&vv);
        size_t ids = (size_t)jv_rng_below(&rng, 20);
        for (size_t i = 0; i < ids; i++) {
            jv_id id = jv_test_id((unsigned)(round * 20 + (int)i));
            assert_int_equal(
                jv_vv_set(&vv, &id,
                          1 + (jv_rng_next(&rng) >> (1 + i * 3 % 63))),
                JV_OK);
        }
        size_t empty4 = plain_len(&s, 4, NULL, 0, &none),
               empty3 = plain_len(&s, 3, NULL, 0, &none);
        assert_int_equal(plain_len(&s, 4, refs, k, &vv) - empty4,
                         jv_wire_have_cost(4, refs, k, &vv) -
                             jv_wire_have_cost(4, NULL, 0, &none));
        assert_int_equal(plain_len(&s, 0, refs, k, &vv) - empty4,
                         jv_wire_have_cost(0, refs, k, &vv) -
                             jv_wire_have_cost(0, NULL, 0, &none));
        assert_int_equal(plain_len(&s, 3, NULL, 0, &vv) - empty3,
                         jv_wire_have_cost(3, NULL, 0, &vv) -
                             jv_wire_have_cost(3, NULL, 0, &none));
        /* The rest of a message is the same in both versions, and a
         * version 3 vector is only its entries (vv_test): no constant
         * is missed. */
        assert_int_equal(plain_len(&s, 4, refs, k, &vv) -
                             jv_wire_have_cost(4, refs, k, &vv),
                         empty3 - jv_vv_encoded_len(&none));
    }
    /* 64 origins, each with news since the base. */
    jv_vv_clear(&vv);
    for (uint32_t i = 0; i < 64; i++) {
        jv_id id = jv_test_id(i);
        assert_int_equal(jv_vv_set(&vv, &id, 1000 + i), JV_OK);
        refs[i].idx = i;
        refs[i].seq = 1000 + i;
    }
    assert_true(4 * jv_wire_have_cost(4, refs, 64, &none) <
                jv_wire_have_cost(4, NULL, 0, &vv));
    sample_fini(&s);
    jv_vv_fini(&none);
    jv_vv_fini(&vv);
}

/* The version of a refused message, read for the log and the notice:
 * from a plain or a compressed body; 0 for what cannot be read (another
 * format, nothing, a frame that does not inflate, a body that is not an
 * array, a version that is not a number or too big). */
static void test_peek_version(void **state)
{
    (void)state;
    jv_buf b, z, scratch;
    jv_mpw w;
    jv_buf_init(&b);
    jv_buf_init(&z);
    jv_buf_init(&scratch);
    craft(&b, VERSION_OTHER);
    assert_int_equal(jv_msg_peek_version(b.data, b.len, MiB, &scratch), 5);
    size_t cap = ZSTD_compressBound(b.len - 1);
    assert_int_equal(jv_buf_reserve(&z, cap + 1), JV_OK);
    z.data[0] = 1;
    size_t got = ZSTD_compress(z.data + 1, cap, b.data + 1, b.len - 1, 3);
    assert_false(ZSTD_isError(got));
    z.len = got + 1;
    assert_int_equal(jv_msg_peek_version(z.data, z.len, MiB, &scratch), 5);
    /* Beyond the inflation bound, or damaged: unreadable. */
    assert_int_equal(jv_msg_peek_version(z.data, z.len, 8, &scratch), 0);
    z.data[1] ^= 0xff;
    assert_int_equal(jv_msg_peek_version(z.data, z.len, MiB, &scratch), 0);
    b.data[0] = 2;
    assert_int_equal(jv_msg_peek_version(b.data, b.len, MiB, &scratch), 0);
    assert_int_equal(jv_msg_peek_version(b.data, 0, MiB, &scratch), 0);

    jv_buf_reset(&b);
    jv_buf_append(&b, "\0", 1);
    jv_mpw_init(&w, &b);
    jv_mpw_u64(&w, 3); /* not an array */
    assert_int_equal(jv_msg_peek_version(b.data, b.len, MiB, &scratch), 0);
    jv_buf_reset(&b);
    jv_buf_append(&b, "\0", 1);
    jv_mpw_array(&w, 12);
    jv_mpw_u64(&w, 65536);
    assert_int_equal(jv_msg_peek_version(b.data, b.len, MiB, &scratch), 0);
    jv_buf_reset(&b);
    jv_buf_append(&b, "\0", 1);
    jv_mpw_array(&w, 12);
    jv_mpw_str(&w, "3", 1);
    assert_int_equal(jv_msg_peek_version(b.data, b.len, MiB, &scratch), 0);
    jv_buf_fini(&b);
    jv_buf_fini(&z);
    jv_buf_fini(&scratch);
}

/* Snapshot chunks (types 3 and 4): round trip, signature over them, and
 * strict bounds on both sides. */
static void test_snap_messages(void **state)
{
    (void)state;
    jv_keypair kp;
    jv_msg m, out;
    jv_buf enc, scratch;
    static uint8_t data[1000];
    assert_int_equal(jv_keypair_generate(&kp), JV_OK);
    jv_msg_init(&m);
    jv_msg_init(&out);
    jv_buf_init(&enc);
    jv_buf_init(&scratch);
    memset(data, 0x5a, sizeof(data));
    m.type = JV_MSG_SNAP_REPLY;
    m.from = kp.pk;
    m.stamp = 7;
    m.snap.maker = kp.pk;
    m.snap.made_ms = 1234;
    memset(m.snap.digest, 1, JV_HASH_LEN);
    memset(m.snap.sig, 2, JV_SIG_LEN);
    m.snap.total = 5000;
    m.snap.offset = 4000;
    m.snap.data = data;
    m.snap.len = sizeof(data);
    assert_int_equal(jv_msg_encode(&m, &kp, 0, &enc, NULL), JV_OK);
    assert_int_equal(jv_msg_decode(enc.data, enc.len, 1 << 20, &scratch, &out),
                     JV_OK);
    assert_int_equal(jv_msg_verify(&out), JV_OK);
    assert_int_equal(out.type, JV_MSG_SNAP_REPLY);
    assert_int_equal(out.snap.total, 5000);
    assert_int_equal(out.snap.offset, 4000);
    assert_int_equal(out.snap.made_ms, 1234);
    assert_int_equal(out.snap.len, sizeof(data));
    assert_memory_equal(out.snap.data, data, sizeof(data));
    assert_memory_equal(out.snap.digest, m.snap.digest, JV_HASH_LEN);
    assert_memory_equal(out.snap.sig, m.snap.sig, JV_SIG_LEN);
    /* Every cut of it is refused. */
    for (size_t n = 0; n < enc.len; n++)
        assert_int_not_equal(
            jv_msg_decode(enc.data, n, 1 << 20, &scratch, &out), JV_OK);
    /* A chunk past its total is refused when encoding. */
    m.snap.offset = 4001;
    jv_buf_reset(&enc);
    assert_int_equal(jv_msg_encode(&m, &kp, 0, &enc, NULL), JV_EINVAL);
    m.snap.offset = 0;
    m.snap.total = (uint64_t)JV_WIRE_SNAP_MAX + 1;
    assert_int_equal(jv_msg_encode(&m, &kp, 0, &enc, NULL), JV_EINVAL);
    /* A request: digest and offset. */
    jv_msg_init(&m);
    m.type = JV_MSG_SNAP;
    m.from = kp.pk;
    memset(m.snap.digest, 3, JV_HASH_LEN);
    m.snap.offset = 262144;
    jv_buf_reset(&enc);
    assert_int_equal(jv_msg_encode(&m, &kp, 0, &enc, NULL), JV_OK);
    assert_int_equal(jv_msg_decode(enc.data, enc.len, 1 << 20, &scratch, &out),
                     JV_OK);
    assert_int_equal(out.type, JV_MSG_SNAP);
    assert_int_equal(out.snap.offset, 262144);
    assert_memory_equal(out.snap.digest, m.snap.digest, JV_HASH_LEN);
    jv_msg_fini(&out);
    jv_msg_fini(&m);
    jv_buf_fini(&enc);
    jv_buf_fini(&scratch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signature),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_compression),
        cmocka_unit_test(test_batch_cost),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_strict),
        cmocka_unit_test(test_counts),
        cmocka_unit_test(test_zstd_bombs),
        cmocka_unit_test(test_zstd_frames),
        cmocka_unit_test(test_fuzz),
        cmocka_unit_test(test_figures),
        cmocka_unit_test(test_peek_version),
        cmocka_unit_test(test_refs),
        cmocka_unit_test(test_have_cost),
        cmocka_unit_test(test_versions),
        cmocka_unit_test(test_snap_messages),
    };
    jv_test_seed();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
