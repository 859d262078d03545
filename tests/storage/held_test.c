/*
 * held_test.c - the held-aside area cannot be taken by untrusted data:
 *
 *   - an untrusted origin holds at most its share, and untrusted origins
 *     together at most theirs (JV_HELD_UNTRUSTED_*): the next are dropped
 *     (JV_ETOOBIG);
 *   - one trusted origin holds at most JV_HELD_ORIGIN_MAX_BATCHES;
 *   - when the whole area is full, a trusted origin's out-of-order batch
 *     evicts the oldest untrusted ones and is held;
 *   - untrusted batches expire after JV_HELD_UNTRUSTED_TTL_MS; trusted
 *     ones stay, and are released when their gap fills;
 *   - a batch stamped beyond the clock-skew bound is held (JV_ESKEW, and
 *     the batches after it behind it), not refused, and applied by a call
 *     with no batches once the clock has come within the bound.
 *
 * Counts are checked with small batches, the full area by bytes with
 * batches of about a MiB (the checks are the same for both bounds), so
 * that the test stays quick.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "apply.h"
#include "hlc.h"
#include "query.h"
#include "storetest.h"
#include "testutil.h"

static const uint8_t zero[JV_HASH_LEN];

/* Batches seq first..last of kp's chain (a counter op each); the chain's
 * earlier links are made and thrown away, so that the ones returned link
 * as they would in reality. */
/* Batches seq first..last of kp's chain; the chain's earlier links are
 * made and thrown away, so that the ones returned link as they would in
 * reality. With `big`, each batch carries BIG_OPS config values of
 * BIG_VALUE bytes (about a MiB), else one counter op. */
#define BIG_OPS   16
#define BIG_VALUE 60000

static st_batch *chain_of(const jv_keypair *kp, uint64_t first, uint64_t last,
                          bool big)
{
    st_batch *out = calloc(last - first + 1, sizeof(*out));
    static char value[BIG_VALUE + 3];
    static char keys[BIG_OPS][16];
    jv_op ops[BIG_OPS];
    st_batch cur;
    uint8_t ph[JV_HASH_LEN];
    assert_non_null(out);
    memset(value, 'v', sizeof(value) - 1);
    value[0] = value[BIG_VALUE + 1] = '"';
    value[BIG_VALUE + 2] = '\0';
    memcpy(ph, zero, JV_HASH_LEN);
    for (uint64_t s = 1; s <= last; s++) {
        uint32_t n = big ? BIG_OPS : 1;
        for (uint32_t k = 0; k < n; k++) {
            memset(&ops[k], 0, sizeof(ops[k]));
            if (big) {
                snprintf(keys[k], sizeof(keys[k]), "k%u", k);
                ops[k].kind = JV_OP_CONFIG;
                ops[k].config.key = jv_str_c(keys[k]);
                ops[k].config.value = jv_str_c(value);
                ops[k].config.stamp = jv_hlc_make(1000 + s, 0);
            } else {
                ops[k].kind = JV_OP_COUNTER;
                ops[k].counter.name = jv_str_c("held");
                ops[k].counter.p = s;
            }
        }
        st_batch *b = s >= first ? &out[s - first] : &cur;
        st_batch_make(b, kp, s, ph, jv_hlc_make(1000 + s, 0), ops, n);
        memcpy(ph, b->hash, JV_HASH_LEN);
        if (s < first)
            st_batch_fini(&cur);
    }
    return out;
}

static st_batch *chain(const jv_keypair *kp, uint64_t first, uint64_t last)
{
    return chain_of(kp, first, last, false);
}

static void chain_free(st_batch *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        st_batch_fini(&b[i]);
    free(b);
}

/* Applies n batches in chunks; counts each result. */
typedef struct {
    size_t ok, gap, untrusted, toobig, other;
} tally;

static tally apply_all(jv_store *st, st_batch *b, size_t n)
{
    tally t = {0};
    enum {
        CHUNK = 512
    };
    jv_store_batch sb[CHUNK];
    jv_err res[CHUNK];
    for (size_t i = 0; i < n; i += CHUNK) {
        size_t k = n - i < CHUNK ? n - i : CHUNK;
        for (size_t j = 0; j < k; j++)
            sb[j] = st_sb(&b[i + j]);
        assert_int_equal(
            jv_store_apply(st, sb, k, JV_APPLY_REQUIRE_TRUST, res, NULL),
            JV_OK);
        for (size_t j = 0; j < k; j++) {
            switch (res[j]) {
            case JV_OK:
                t.ok++;
                break;
            case JV_EGAP:
                t.gap++;
                break;
            case JV_EUNTRUSTED:
                t.untrusted++;
                break;
            case JV_ETOOBIG:
                t.toobig++;
                break;
            default:
                t.other++;
                break;
            }
        }
    }
    return t;
}

typedef struct {
    size_t gap, untrusted;
} held_count;

static jv_err count_held(void *arg, const jv_held_row *r)
{
    held_count *c = arg;
    if (r->reason == JV_EGAP)
        c->gap++;
    else
        c->untrusted++;
    return JV_OK;
}

static held_count held(jv_store *st)
{
    held_count c = {0};
    assert_int_equal(jv_store_held_list(st, count_held, &c), JV_OK);
    return c;
}

static void raw_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
        fail_msg("%s: %s", sql, err);
    sqlite3_close(db);
}

typedef struct {
    char *dir, *db;
    jv_store *st;
    jv_keypair self, u1, u2, t[4]; /* t[]: trusted */
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    f->dir = st_mkdtemp();
    f->db = st_path(f->dir, "node.db");
    f->st = st_open(f->db);
    st_keypair(&f->self, 1);
    st_keypair(&f->u1, 2);
    st_keypair(&f->u2, 3);
    for (int i = 0; i < 4; i++)
        st_keypair(&f->t[i], (uint8_t)(10 + i));
    assert_int_equal(jv_store_set_self(f->st, &f->self.pk), JV_OK);
    for (int i = 0; i < 4; i++) {
        jv_intent in =
            st_trust(&f->t[i].pk, true, jv_hlc_make(500 + i, 0), "t");
        assert_int_equal(
            st_commit(f->st, &f->self, jv_hlc_make(500 + i, 0), &in, 1, NULL),
            JV_OK);
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    jv_store_close(f->st);
    st_rmdir(f->dir);
    free(f->db);
    free(f);
    return 0;
}

/* An untrusted origin fills the untrusted share and no more; another gets
 * nothing; a trusted origin's out-of-order batch is still held. */
static void test_untrusted_share(void **state)
{
    fx *f = *state;
    const size_t U = JV_HELD_UNTRUSTED_MAX_BATCHES;
    st_batch *ub = chain(&f->u1, 1, U + 100);
    tally r = apply_all(f->st, ub, U + 100);
    assert_int_equal(r.untrusted, U);
    assert_int_equal(r.toobig, 100);
    chain_free(ub, U + 100);
    ub = chain(&f->u2, 1, 50);
    r = apply_all(f->st, ub, 50);
    assert_int_equal(r.toobig, 50);
    chain_free(ub, 50);
    st_batch *tb = chain(&f->t[0], 2, 3);
    r = apply_all(f->st, tb, 2);
    assert_int_equal(r.gap, 2);
    chain_free(tb, 2);
}

/* One trusted origin holds at most its share. */
static void test_origin_share(void **state)
{
    fx *f = *state;
    const size_t O = JV_HELD_ORIGIN_MAX_BATCHES;
    st_batch *tb = chain(&f->t[0], 2, O + 2);
    tally r = apply_all(f->st, tb, O + 1);
    assert_int_equal(r.gap, O);
    assert_int_equal(r.toobig, 1);
    /* The others still have theirs. */
    st_batch *t1 = chain(&f->t[1], 2, 2);
    r = apply_all(f->st, t1, 1);
    assert_int_equal(r.gap, 1);
    chain_free(t1, 1);
    /* Kept whole: seq 1 releases the whole share. */
    st_batch *first = chain(&f->t[0], 1, 1);
    r = apply_all(f->st, first, 1);
    assert_int_equal(r.ok, 1);
    uint64_t seq;
    uint8_t hh[JV_HASH_LEN];
    assert_int_equal(jv_store_origin_head(f->st, &f->t[0].pk, &seq, hh), JV_OK);
    assert_int_equal(seq, O + 1);
    chain_free(first, 1);
    chain_free(tb, O + 1);
}

/* The whole area full (by bytes, with batches of about a MiB): a trusted
 * origin's batch takes the place of the oldest untrusted ones; a day
 * later the untrusted ones are gone and the trusted ones stay. */
static void test_full_area(void **state)
{
    fx *f = *state;
    enum {
        N = 24
    }; /* batches per origin: more than a 16 MiB share */
    st_batch *ub = chain_of(&f->u1, 1, N, true);
    tally r = apply_all(f->st, ub, N);
    size_t u = r.untrusted;
    assert_true(u > 0 && r.toobig > 0);
    assert_true(u * ub[0].body.len <= JV_HELD_UNTRUSTED_MAX_BYTES);
    st_batch *tb[4];
    size_t held_t = 0;
    for (int i = 0; i < 3; i++) {
        tb[i] = chain_of(&f->t[i], 2, N + 1, true);
        r = apply_all(f->st, tb[i], N);
        assert_true(r.gap > 0 && r.toobig > 0);
        held_t += r.gap;
    }
    held_count h = held(f->st);
    assert_int_equal(h.untrusted, u);
    /* Full or nearly: a fourth trusted origin gets its batches in, at the
     * untrusted ones' expense. */
    tb[3] = chain_of(&f->t[3], 2, N + 1, true);
    r = apply_all(f->st, tb[3], 8);
    assert_int_equal(r.gap, 8);
    held_t += 8;
    h = held(f->st);
    assert_true(h.untrusted < u);
    assert_int_equal(h.gap, held_t);

    raw_exec(f->db, "UPDATE held SET held_ms = 1 WHERE reason = "
                    "'untrusted'");
    r = apply_all(f->st, tb[3] + 8, 1);
    assert_int_equal(r.gap, 1);
    h = held(f->st);
    assert_int_equal(h.untrusted, 0);
    assert_int_equal(h.gap, held_t + 1);
    chain_free(ub, N);
    for (int i = 0; i < 4; i++)
        chain_free(tb[i], N);
}

/* Counts held batches of each reason. */
static jv_err count_skew(void *arg, const jv_held_row *r)
{
    size_t *c = arg;
    c[r->reason == JV_EGAP ? 0 : r->reason == JV_ESKEW ? 1 : 2]++;
    return JV_OK;
}

static void test_clock_skew(void **state)
{
    fx *f = *state;
    uint64_t now = (uint64_t)time(NULL) * 1000;
    uint64_t seq;
    uint8_t head[JV_HASH_LEN];
    st_batch b[2];
    jv_op op;
    jv_apply_stats stats;
    size_t c[3] = {0};

    jv_store_set_max_skew(f->st, 60000);
    /* Seq 1 signed ten minutes ahead, seq 2 on time after it. */
    for (int i = 0; i < 2; i++) {
        memset(&op, 0, sizeof(op));
        op.kind = JV_OP_COUNTER;
        op.counter.name = jv_str_c("skew");
        op.counter.p = (uint64_t)i + 1;
        st_batch_make(&b[i], &f->t[0], (uint64_t)i + 1, i ? b[0].hash : zero,
                      jv_hlc_make(i ? now : now + 600000, 0), &op, 1);
    }
    assert_int_equal(st_apply1(f->st, &b[0], JV_APPLY_REQUIRE_TRUST), JV_ESKEW);
    assert_int_equal(st_apply1(f->st, &b[1], JV_APPLY_REQUIRE_TRUST), JV_EGAP);
    assert_int_equal(jv_store_held_list(f->st, count_skew, c), JV_OK);
    assert_int_equal(c[0], 1); /* seq 2 waits behind seq 1 */
    assert_int_equal(c[1], 1);
    /* Sent again: already held. */
    assert_int_equal(st_apply1(f->st, &b[0], JV_APPLY_REQUIRE_TRUST), JV_EDUP);
    /* A re-check while it is still ahead moves nothing. */
    assert_int_equal(
        jv_store_apply(f->st, NULL, 0, JV_APPLY_REQUIRE_TRUST, NULL, &stats),
        JV_OK);
    assert_int_equal(stats.released, 0);
    assert_int_equal(jv_store_origin_head(f->st, &f->t[0].pk, &seq, head),
                     JV_OK);
    assert_int_equal(seq, 0);
    /* Ten minutes on, both apply, in order. */
    jv_store_test_clock_offset(600000);
    assert_int_equal(
        jv_store_apply(f->st, NULL, 0, JV_APPLY_REQUIRE_TRUST, NULL, &stats),
        JV_OK);
    jv_store_test_clock_offset(0);
    assert_int_equal(stats.released, 2);
    assert_int_equal(jv_store_origin_head(f->st, &f->t[0].pk, &seq, head),
                     JV_OK);
    assert_int_equal(seq, 2);
    assert_memory_equal(head, b[1].hash, JV_HASH_LEN);
    memset(c, 0, sizeof(c));
    assert_int_equal(jv_store_held_list(f->st, count_skew, c), JV_OK);
    assert_int_equal(c[0] + c[1] + c[2], 0);
    /* No bound (0): nothing is held for its stamp. */
    jv_store_set_max_skew(f->st, 0);
    memset(&op, 0, sizeof(op));
    op.kind = JV_OP_COUNTER;
    op.counter.name = jv_str_c("skew");
    op.counter.p = 9;
    st_batch late;
    st_batch_make(&late, &f->t[0], 3, b[1].hash, jv_hlc_make(now + 3600000, 0),
                  &op, 1);
    assert_int_equal(st_apply1(f->st, &late, JV_APPLY_REQUIRE_TRUST), JV_OK);
    st_batch_fini(&late);
    st_batch_fini(&b[0]);
    st_batch_fini(&b[1]);
}

/* A batch held for its stamp whose origin loses trust meanwhile is held
 * as untrusted from then on: not applied when its stamp comes within the
 * bound, and applied once the origin is trusted again. */
static void test_skewed_then_distrusted(void **state)
{
    fx *f = *state;
    uint64_t now = (uint64_t)time(NULL) * 1000;
    uint64_t seq;
    uint8_t head[JV_HASH_LEN];
    size_t c[3] = {0};
    jv_apply_stats stats;
    jv_op op = {.kind = JV_OP_COUNTER};
    op.counter.name = jv_str_c("skew");
    op.counter.p = 1;
    st_batch b;
    st_batch_make(&b, &f->t[0], 1, zero, jv_hlc_make(now + 600000, 0), &op, 1);
    jv_store_set_max_skew(f->st, 60000);
    assert_int_equal(st_apply1(f->st, &b, JV_APPLY_REQUIRE_TRUST), JV_ESKEW);

    jv_intent in = st_trust(&f->t[0].pk, false, jv_hlc_make(700, 0), "t");
    assert_int_equal(
        st_commit(f->st, &f->self, jv_hlc_make(700, 0), &in, 1, NULL), JV_OK);
    jv_store_test_clock_offset(600000);
    assert_int_equal(
        jv_store_apply(f->st, NULL, 0, JV_APPLY_REQUIRE_TRUST, NULL, &stats),
        JV_OK);
    assert_int_equal(stats.released, 0);
    assert_int_equal(jv_store_held_list(f->st, count_skew, c), JV_OK);
    assert_int_equal(c[2], 1); /* untrusted now, not skewed */
    assert_int_equal(c[0] + c[1], 0);
    assert_int_equal(jv_store_origin_head(f->st, &f->t[0].pk, &seq, head),
                     JV_OK);
    assert_int_equal(seq, 0);

    in = st_trust(&f->t[0].pk, true, jv_hlc_make(800, 0), "t");
    assert_int_equal(
        st_commit(f->st, &f->self, jv_hlc_make(800, 0), &in, 1, NULL), JV_OK);
    jv_store_test_clock_offset(0);
    assert_int_equal(jv_store_origin_head(f->st, &f->t[0].pk, &seq, head),
                     JV_OK);
    assert_int_equal(seq, 1);
    assert_memory_equal(head, b.hash, JV_HASH_LEN);
    jv_store_set_max_skew(f->st, 0);
    st_batch_fini(&b);
}

int main(void)
{
    jv_test_seed();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_untrusted_share, setup, teardown),
        cmocka_unit_test_setup_teardown(test_origin_share, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_area, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clock_skew, setup, teardown),
        cmocka_unit_test_setup_teardown(test_skewed_then_distrusted, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
