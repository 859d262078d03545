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
 *     ones stay, and are released when their gap fills.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "hlc.h"
#include "query.h"
#include "storetest.h"
#include "testutil.h"

static const uint8_t zero[JV_HASH_LEN];

/* Batches seq first..last of kp's chain (a counter op each); the chain's
 * earlier links are made and thrown away, so that the ones returned link
 * as they would in reality. */
static st_batch *chain(const jv_keypair *kp, uint64_t first, uint64_t last)
{
    st_batch *out = calloc(last - first + 1, sizeof(*out));
    st_batch prev, cur;
    uint8_t ph[JV_HASH_LEN];
    memcpy(ph, zero, JV_HASH_LEN);
    assert_non_null(out);
    for (uint64_t s = 1; s <= last; s++) {
        jv_op op = {.kind = JV_OP_COUNTER};
        op.counter.name = jv_str_c("held");
        op.counter.p = s;
        st_batch *b = s >= first ? &out[s - first] : &cur;
        st_batch_make(b, kp, s, ph, jv_hlc_make(1000 + s, 0), &op, 1);
        memcpy(ph, b->hash, JV_HASH_LEN);
        if (s < first)
            st_batch_fini(&cur);
    }
    (void)prev;
    return out;
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

static void test_untrusted_cannot_crowd_out(void **state)
{
    (void)state;
    char *dir = st_mkdtemp();
    char *db = st_path(dir, "node.db");
    jv_store *st = st_open(db);
    jv_keypair self, u1, u2, t[4];
    st_keypair(&self, 1);
    st_keypair(&u1, 2);
    st_keypair(&u2, 3);
    for (int i = 0; i < 4; i++)
        st_keypair(&t[i], (uint8_t)(10 + i));
    assert_int_equal(jv_store_set_self(st, &self.pk), JV_OK);
    for (int i = 0; i < 4; i++) {
        jv_intent in = st_trust(&t[i].pk, true, jv_hlc_make(500 + i, 0), "t");
        assert_int_equal(
            st_commit(st, &self, jv_hlc_make(500 + i, 0), &in, 1, NULL), JV_OK);
    }

    /* Untrusted origins: one fills the untrusted share and no more... */
    const size_t U = JV_HELD_UNTRUSTED_MAX_BATCHES;
    st_batch *ub = chain(&u1, 1, U + 100);
    tally r = apply_all(st, ub, U + 100);
    assert_int_equal(r.untrusted, U);
    assert_int_equal(r.toobig, 100);
    chain_free(ub, U + 100);
    /* ...and then another one gets nothing. */
    ub = chain(&u2, 1, 50);
    r = apply_all(st, ub, 50);
    assert_int_equal(r.toobig, 50);
    chain_free(ub, 50);

    /* Trusted origins' out-of-order batches (seq 1 missing) are held,
     * each up to its share. Three shares fill the rest of the area. */
    const size_t O = JV_HELD_ORIGIN_MAX_BATCHES;
    _Static_assert(JV_HELD_UNTRUSTED_MAX_BATCHES +
                           3 * JV_HELD_ORIGIN_MAX_BATCHES ==
                       JV_HELD_MAX_BATCHES,
                   "the test fills the area exactly");
    st_batch *tb[3];
    for (int i = 0; i < 3; i++) {
        tb[i] = chain(&t[i], 2, O + 2);
        r = apply_all(st, tb[i], O + 1);
        assert_int_equal(r.gap, O);
        assert_int_equal(r.toobig, 1);
    }
    held_count h = held(st);
    assert_int_equal(h.untrusted, U);
    assert_int_equal(h.gap, 3 * O);

    /* The area is full: a trusted origin's batch still gets in, in place
     * of the oldest untrusted ones. */
    st_batch *t4 = chain(&t[3], 2, 21);
    r = apply_all(st, t4, 10);
    assert_int_equal(r.gap, 10);
    h = held(st);
    assert_true(h.untrusted <= U - 10);
    assert_int_equal(h.gap, 3 * O + 10);

    /* A day later the untrusted ones are gone; trusted ones stay. */
    raw_exec(db, "UPDATE held SET held_ms = 1 WHERE reason = 'untrusted'");
    r = apply_all(st, t4 + 10, 1);
    assert_int_equal(r.gap, 1);
    h = held(st);
    assert_int_equal(h.untrusted, 0);
    assert_int_equal(h.gap, 3 * O + 11);

    /* The trusted ones were kept whole: seq 1 releases a whole share. */
    st_batch *first = chain(&t[0], 1, 1);
    r = apply_all(st, first, 1);
    assert_int_equal(r.ok, 1);
    uint64_t seq;
    uint8_t hh[JV_HASH_LEN];
    assert_int_equal(jv_store_origin_head(st, &t[0].pk, &seq, hh), JV_OK);
    assert_int_equal(seq, O + 1);
    chain_free(first, 1);

    chain_free(t4, 20);
    for (int i = 0; i < 3; i++)
        chain_free(tb[i], O + 1);
    jv_store_close(st);
    st_rmdir(dir);
    free(db);
}

int main(void)
{
    jv_test_seed();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_untrusted_cannot_crowd_out),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
