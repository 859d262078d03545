/*
 * trustview_test.c - the in-memory trust view (trustview.h) against the
 * store it was read from: on random schedules of trust decisions,
 * successions (chains, loops, refused second successors) and earlier own
 * origins, the view answers every id as jv_store_is_trusted does and
 * lists the same entries as jv_store_trust_list.
 *
 *   JV_SEED=<n>       replay a run (the seed is printed)
 *   JV_SCHEDULES=<n>  how many schedules (default 400)
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hlc.h"
#include "storetest.h"
#include "testutil.h"
#include "trustview.h"

enum {
    NKEYS = 7
};

static const uint8_t zero[JV_HASH_LEN];

typedef struct {
    jv_store *st;
    jv_keypair k[NKEYS]; /* k[0] is the store's own node */
    bool has_log[NKEYS]; /* a first batch of k[i] was applied */
    jv_rng rng;
    uint64_t step;
} sched;

/* An id the schedule's keys or a stranger's. */
static jv_id pick_id(sched *s)
{
    if (jv_rng_chance(&s->rng, 1, 8))
        return jv_test_id(100 + (unsigned)jv_rng_below(&s->rng, 3));
    return s->k[jv_rng_below(&s->rng, NKEYS)].pk;
}

static void step_trust(sched *s)
{
    static const char *const names[] = {"", "alpha", "beta"};
    jv_id id = pick_id(s);
    /* Few stamps, so that decisions meet at equal stamps too. */
    uint64_t stamp = jv_hlc_make(1000 + jv_rng_below(&s->rng, 6), 0);
    jv_intent in = st_trust(&id, jv_rng_chance(&s->rng, 2, 3), stamp,
                            names[jv_rng_below(&s->rng, 3)]);
    uint64_t gen = jv_store_trust_gen(s->st);
    assert_int_equal(st_commit(s->st, &s->k[0], jv_hlc_make(5000 + s->step, 0),
                               &in, 1, NULL),
                     JV_OK);
    assert_true(jv_store_trust_gen(s->st) != gen);
}

/* k[nw] carries on for old (its first batch), signed by old's key. A
 * second successor of old is refused; a loop or a chain may form. */
static void step_succession(sched *s)
{
    size_t nw = 1 + jv_rng_below(&s->rng, NKEYS - 1);
    size_t old = jv_rng_below(&s->rng, NKEYS);
    if (s->has_log[nw] || old == nw)
        return;
    uint64_t ms = 2000 + s->step;
    jv_op op = {.kind = JV_OP_SUCCESSION};
    op.succ.old = s->k[old].pk;
    op.succ.last_seq = 3;
    op.succ.time_ms = ms;
    jv_succession_sign(&s->k[old], &s->k[nw].pk, 3, ms, op.succ.sig);
    st_batch b;
    st_batch_make(&b, &s->k[nw], 1, zero, jv_hlc_make(ms, 0), &op, 1);
    uint64_t gen = jv_store_trust_gen(s->st);
    jv_err err = st_apply1(s->st, &b, 0);
    assert_true(err == JV_OK || err == JV_EEQUIVOCATE);
    if (err == JV_OK)
        assert_true(jv_store_trust_gen(s->st) != gen);
    s->has_log[nw] = err == JV_OK;
    st_batch_fini(&b);
}

static void step_own(sched *s)
{
    uint8_t ids[NKEYS * JV_ID_LEN];
    size_t n = 0;
    for (size_t i = 1; i < NKEYS; i++)
        if (jv_rng_chance(&s->rng, 1, 4))
            memcpy(ids + JV_ID_LEN * n++, s->k[i].pk.b, JV_ID_LEN);
    assert_int_equal(
        jv_store_meta_set(s->st, JV_META_OWN_ORIGINS, ids, n * JV_ID_LEN),
        JV_OK);
}

typedef struct {
    jv_trust_row rows[64];
    char names[64][16];
    size_t n;
} rows;

static jv_err take_row(void *arg, const jv_trust_row *r)
{
    rows *t = arg;
    assert_true(t->n < 64 && r->name.n < 16);
    t->rows[t->n] = *r;
    memcpy(t->names[t->n], r->name.p, r->name.n);
    t->names[t->n][r->name.n] = '\0';
    t->n++;
    return JV_OK;
}

static void check_id(sched *s, const jv_trustview *v, const rows *want,
                     const jv_id *id)
{
    bool t = false;
    assert_int_equal(jv_store_is_trusted(s->st, id, &t), JV_OK);
    assert_int_equal(jv_trustview_trusted(v, id), t);
    const jv_trust_row *e = jv_trustview_entry(v, id);
    const jv_trust_row *w = NULL;
    for (size_t i = 0; i < want->n; i++)
        if (jv_id_eq(&want->rows[i].node, id))
            w = &want->rows[i];
    assert_int_equal(e != NULL, w != NULL);
    if (e)
        assert_int_equal(e->stamp, w->stamp);
}

/* The view read now says what the store says. */
static void check(sched *s)
{
    jv_trustview *v = NULL;
    rows want = {0}, got = {0};
    assert_int_equal(jv_trustview_read(s->st, &v), JV_OK);
    assert_int_equal(jv_store_trust_list(s->st, take_row, &want), JV_OK);
    assert_int_equal(jv_trustview_each(v, take_row, &got), JV_OK);
    assert_int_equal(got.n, want.n);
    assert_int_equal(jv_trustview_entries(v), want.n);
    for (size_t i = 0; i < want.n; i++) {
        assert_true(jv_id_eq(&got.rows[i].node, &want.rows[i].node));
        assert_true(jv_id_eq(&got.rows[i].set_by, &want.rows[i].set_by));
        assert_int_equal(got.rows[i].trusted, want.rows[i].trusted);
        assert_int_equal(got.rows[i].stamp, want.rows[i].stamp);
        assert_string_equal(got.names[i], want.names[i]);
    }
    for (size_t i = 0; i < NKEYS; i++)
        check_id(s, v, &want, &s->k[i].pk);
    for (unsigned i = 100; i < 104; i++) {
        jv_id id = jv_test_id(i);
        check_id(s, v, &want, &id);
    }
    jv_trustview_free(v);
}

static void run_schedule(uint64_t seed)
{
    sched s;
    memset(&s, 0, sizeof(s));
    jv_rng_seed(&s.rng, seed);
    s.st = st_open(":memory:");
    uint8_t first = (uint8_t)(1 + jv_rng_below(&s.rng, 200));
    for (size_t i = 0; i < NKEYS; i++)
        st_keypair(&s.k[i], (uint8_t)(first + i));
    assert_int_equal(jv_store_set_self(s.st, &s.k[0].pk), JV_OK);
    check(&s);
    uint64_t steps = 1 + jv_rng_below(&s.rng, 24);
    for (s.step = 0; s.step < steps; s.step++) {
        uint64_t what = jv_rng_below(&s.rng, 10);
        if (what < 5)
            step_trust(&s);
        else if (what < 9)
            step_succession(&s);
        else
            step_own(&s);
        check(&s);
    }
    jv_store_close(s.st);
}

static void test_random_schedules(void **state)
{
    (void)state;
    uint64_t base = jv_test_seed(), n = jv_test_schedules(400);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t seed = base + i * 0x9e3779b97f4a7c15ull;
        run_schedule(seed);
    }
}

/* An empty store: nothing but this node itself is trusted. */
static void test_empty(void **state)
{
    (void)state;
    jv_store *st = st_open(":memory:");
    jv_keypair self;
    jv_trustview *v = NULL;
    st_keypair(&self, 1);
    assert_int_equal(jv_store_set_self(st, &self.pk), JV_OK);
    assert_int_equal(jv_trustview_read(st, &v), JV_OK);
    assert_true(jv_trustview_trusted(v, &self.pk));
    jv_id other = jv_test_id(7);
    assert_false(jv_trustview_trusted(v, &other));
    assert_null(jv_trustview_entry(v, &self.pk));
    assert_int_equal(jv_trustview_entries(v), 0);
    jv_trustview_free(v);
    jv_store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_random_schedules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
