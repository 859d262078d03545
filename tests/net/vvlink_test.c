/* vvlink_test.c - vectors sent as differences (net/vvlink.c): whatever
 * the network does (loss, reordering, restarts), a receiver either makes
 * the sender's vector whole exactly or says it lacks the base. */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "alloc.h"
#include "testutil.h"
#include "vvlink.h"

static void set(jv_vv *vv, unsigned id, uint64_t seq)
{
    jv_id i = jv_test_id(id);
    assert_int_equal(jv_vv_set(vv, &i, seq), JV_OK);
}

/* One node of the schedule: its table, its vector, its stamps. */
typedef struct {
    jv_id id;
    jv_vvlinks *t;
    jv_vv vv;
    uint64_t stamp;
    bool asking; /* a request of its is out (REQ/REP: one at a time) */
} node;

typedef struct {
    unsigned from;
    bool reply;
    uint64_t stamp, base, heard;
    jv_vv have; /* as sent: whole or a difference (the ids the base lacks) */
    jv_vv_ref *refs; /* version 4: the base's entries by place */
    size_t nrefs;
    jv_vv whole; /* what the receiver must make of it */
} msg;

/* At most a request and a reply each way. */
#define INFLIGHT 4

typedef struct {
    node n[2];
    msg q[INFLIGHT];
    size_t nq;
    bool v3; /* differences by id only, as to a node of version 3 */
    unsigned sent, based, took, refused, refs;
} world;

/* n[from] sends to the other what repl.c sends: its vector as a
 * difference from the base vvlink offers, or whole. */
static void send_one(world *w, unsigned from, bool reply)
{
    node *a = &w->n[from], *b = &w->n[!from];
    msg *m = &w->q[w->nq++];
    jv_vv base;
    jv_vv_init(&base);
    jv_vv_init(&m->have);
    jv_vv_init(&m->whole);
    m->from = from;
    m->reply = reply;
    a->asking |= !reply;
    m->stamp = ++a->stamp;
    assert_int_equal(jv_vvlinks_base(a->t, &b->id, &m->base, &base, &m->heard),
                     JV_OK);
    m->refs = NULL;
    m->nrefs = 0;
    if (!m->base || (w->v3 ? jv_vv_diff(&a->vv, &base, &m->have)
                           : jv_vv_diff_refs(&a->vv, &base, &m->refs, &m->nrefs,
                                             &m->have)) != JV_OK) {
        m->base = 0;
        assert_int_equal(jv_vv_copy(&m->have, &a->vv), JV_OK);
    }
    w->refs += (unsigned)m->nrefs;
    w->based += m->base != 0;
    assert_int_equal(jv_vv_copy(&m->whole, &a->vv), JV_OK);
    assert_int_equal(jv_vvlinks_sent(a->t, &b->id, m->stamp, &a->vv), JV_OK);
    w->sent++;
    jv_vv_fini(&base);
}

/* Gone: delivered, or lost. A reply delivered or either lost ends the
 * exchange (a lost one by the requester's timeout). */
static void drop_at(world *w, size_t i, bool ends)
{
    msg *m = &w->q[i];
    if (ends || m->reply)
        w->n[m->reply ? !m->from : m->from].asking = false;
    jv_vv_fini(&w->q[i].have);
    jv_vv_fini(&w->q[i].whole);
    jv_free(w->q[i].refs);
    w->q[i] = w->q[--w->nq];
}

/* The message at i arrives. */
static void deliver(world *w, size_t i, uint64_t seed)
{
    msg *m = &w->q[i];
    node *a = &w->n[m->from], *b = &w->n[!m->from];
    jv_err err = jv_vvlinks_took(b->t, &a->id, m->stamp, m->base, m->heard,
                                 m->refs, m->nrefs, &m->have);
    if (err == JV_OK) {
        if (!jv_vv_equal(&m->have, &m->whole))
            fail_msg("seed %" PRIu64 ": a vector made whole wrong", seed);
        w->took++;
        bool answer = !m->reply;
        unsigned from = m->from;
        drop_at(w, i, false);
        if (answer)
            send_one(w, !from, true);
        return;
    } else {
        assert_int_equal(err, JV_ENOTFOUND);
        assert_true(m->base != 0); /* a whole vector is always taken */
        /* As repl.c does: both forget, the next message goes whole. */
        jv_vvlinks_forget(b->t, &a->id);
        jv_vvlinks_forget(a->t, &b->id);
        w->refused++;
    }
    drop_at(w, i, true); /* refused: answered with a refusal */
}

static void node_init(node *n, unsigned i)
{
    n->id = jv_test_id(i);
    assert_int_equal(jv_vvlinks_new(4, &n->t), JV_OK);
    jv_vv_init(&n->vv);
    n->stamp = 0;
}

static void node_fini(node *n)
{
    jv_vvlinks_free(n->t);
    jv_vv_fini(&n->vv);
}

/* One schedule: the two nodes' vectors grow (now and then one goes back,
 * as a restored node's does), they send each other messages that are
 * delivered in any order, lost or duplicated, and restart (losing what
 * they kept). lossy: whether any of that but reordering happens. */
static void schedule(uint64_t seed, bool lossy, world *w)
{
    jv_rng rng;
    jv_rng_seed(&rng, seed);
    memset(w, 0, sizeof(*w));
    w->v3 = seed % 4 == 0;
    node_init(&w->n[0], 1);
    node_init(&w->n[1], 2);
    for (unsigned step = 0; step < 400; step++) {
        unsigned k = (unsigned)jv_rng_below(&rng, 100);
        node *x = &w->n[jv_rng_below(&rng, 2)];
        if (k < 30) {
            set(&x->vv, 10 + (unsigned)jv_rng_below(&rng, 60),
                1 + jv_rng_below(&rng, 1000));
        } else if (k < 60 && !x->asking) {
            send_one(w, (unsigned)(x - w->n), false);
        } else if (k < 90 && w->nq) {
            deliver(w, (size_t)jv_rng_below(&rng, w->nq), seed);
        } else if (lossy && k < 94 && w->nq) {
            drop_at(w, (size_t)jv_rng_below(&rng, w->nq), true);
        } else if (lossy && k < 96 && x->vv.n) {
            x->vv.n--; /* restored from an older backup: an id is gone */
        } else if (lossy && k < 97) {
            /* A restart: what it kept is gone (its stamps go on). */
            jv_vvlinks_free(x->t);
            assert_int_equal(jv_vvlinks_new(4, &x->t), JV_OK);
        }
    }
    while (w->nq)
        deliver(w, 0, seed);
    node_fini(&w->n[0]);
    node_fini(&w->n[1]);
}

static void test_schedules(void **state)
{
    (void)state;
    uint64_t seed = jv_test_seed();
    world w;
    unsigned sent[2] = {0}, based[2] = {0}, refused[2] = {0}, refs = 0;
    for (unsigned run = 0; run < 2000; run++) {
        bool lossy = run % 2;
        schedule(seed + run, lossy, &w);
        sent[lossy] += w.sent, based[lossy] += w.based;
        refused[lossy] += w.refused;
        refs += w.refs;
    }
    printf("vvlink: reordered: %u messages, %u as differences, %u refused "
           "(base not kept); lossy: %u, %u, %u; %u entries by place\n",
           sent[0], based[0], refused[0], sent[1], based[1], refused[1], refs);
    assert_true(refs > 0);
    /* Differences are the rule, a refused base the exception: with
     * nothing lost, only a message overtaken by more than the receiver
     * keeps is. */
    assert_true(based[0] > sent[0] * 9 / 10);
    assert_true(refused[0] < based[0] / 200);
    assert_true(based[1] > sent[1] / 2);
    assert_true(refused[1] < based[1] / 10);
}

/* On a reliable link in order, every message after the first of each
 * side is a difference, and none is refused. */
static void test_in_order(void **state)
{
    (void)state;
    world w;
    memset(&w, 0, sizeof(w));
    node_init(&w.n[0], 1);
    node_init(&w.n[1], 2);
    for (unsigned i = 0; i < 50; i++) {
        set(&w.n[i % 2].vv, 10 + i, i + 1);
        send_one(&w, i % 2, false);
        deliver(&w, 0, 0); /* the request, which is answered */
        deliver(&w, 0, 0);
    }
    /* Only the first three go whole: A's first request, B's reply to it,
     * and B's first request (A's request named none of B's messages). */
    assert_int_equal(w.sent, 100);
    assert_int_equal(w.based, 97);
    assert_int_equal(w.refused, 0);
    assert_int_equal(w.took, 100);
    node_fini(&w.n[0]);
    node_fini(&w.n[1]);
}

/* Room for `max` nodes: the least recently used is forgotten, and a
 * message based on what it kept is refused. */
static void test_room(void **state)
{
    (void)state;
    jv_vvlinks *t;
    jv_vv v, base;
    uint64_t stamp, heard;
    jv_id a = jv_test_id(1), b = jv_test_id(2), c = jv_test_id(3);
    jv_vv_init(&v);
    jv_vv_init(&base);
    assert_int_equal(jv_vvlinks_new(2, &t), JV_OK);
    set(&v, 5, 1);
    assert_int_equal(jv_vvlinks_took(t, &a, 10, 0, 0, NULL, 0, &v), JV_OK);
    assert_int_equal(jv_vvlinks_took(t, &b, 10, 0, 0, NULL, 0, &v), JV_OK);
    assert_int_equal(jv_vvlinks_base(t, &a, &stamp, &base, &heard), JV_OK);
    assert_int_equal(heard, 10);
    heard = 0; /* without a base: what was heard only */
    assert_int_equal(jv_vvlinks_base(t, &a, &stamp, NULL, &heard), JV_OK);
    assert_int_equal(heard, 10);
    assert_int_equal(stamp, 0);
    assert_int_equal(jv_vvlinks_took(t, &c, 10, 0, 0, NULL, 0, &v), JV_OK);
    assert_int_equal(jv_vvlinks_count(t), 2);
    /* b was the least recently used. */
    assert_int_equal(jv_vvlinks_took(t, &b, 11, 10, 0, NULL, 0, &v),
                     JV_ENOTFOUND);
    assert_int_equal(jv_vvlinks_took(t, &a, 11, 10, 0, NULL, 0, &v), JV_OK);
    /* Forgotten: nothing to base on either way. */
    jv_vvlinks_forget(t, &a);
    assert_int_equal(jv_vvlinks_base(t, &a, &stamp, &base, &heard), JV_OK);
    assert_int_equal(stamp, 0);
    assert_int_equal(heard, 0);
    assert_int_equal(jv_vvlinks_took(t, &a, 12, 11, 0, NULL, 0, &v),
                     JV_ENOTFOUND);
    jv_vvlinks_free(t);
    jv_vv_fini(&v);
    jv_vv_fini(&base);
}

/* A difference that would make the vector longer than any decoder takes
 * is refused, and the base kept as it was. */
static void test_too_long(void **state)
{
    (void)state;
    jv_vvlinks *t;
    jv_vv big, d;
    jv_id a = jv_test_id(1);
    jv_vv_init(&big);
    jv_vv_init(&d);
    for (unsigned i = 0; i < JV_VV_MAX_ENTRIES; i++)
        set(&big, 100 + i, 1);
    assert_int_equal(jv_vvlinks_new(4, &t), JV_OK);
    assert_int_equal(jv_vvlinks_took(t, &a, 10, 0, 0, NULL, 0, &big), JV_OK);
    set(&d, 99999, 1);
    assert_int_equal(jv_vvlinks_took(t, &a, 11, 10, 0, NULL, 0, &d),
                     JV_ETOOBIG);
    assert_int_equal(d.n, 1); /* untouched */
    jv_vv_clear(&d);
    set(&d, 100, 2);
    assert_int_equal(jv_vvlinks_took(t, &a, 12, 10, 0, NULL, 0, &d), JV_OK);
    assert_int_equal(d.n, JV_VV_MAX_ENTRIES);
    jv_vvlinks_free(t);
    jv_vv_fini(&big);
    jv_vv_fini(&d);
}

/* Entries by place: each names the base's entry at its place; a place
 * the base does not have, or a seq of 0, is refused as a base not kept
 * (the sender then sends the whole), and what was kept stays. */
static void test_refs(void **state)
{
    (void)state;
    jv_vvlinks *t;
    jv_vv v, d, want, base;
    uint64_t stamp, heard;
    jv_id a = jv_test_id(1);
    jv_vv_init(&v);
    jv_vv_init(&d);
    jv_vv_init(&want);
    jv_vv_init(&base);
    assert_int_equal(jv_vvlinks_new(4, &t), JV_OK);
    set(&v, 5, 1);
    set(&v, 7, 3);
    set(&v, 9, 4);
    assert_int_equal(jv_vvlinks_took(t, &a, 10, 0, 0, NULL, 0, &v), JV_OK);
    /* The sender's split: 7 and 9 move (places 1 and 2), 8 is new. */
    assert_int_equal(jv_vv_copy(&want, &v), JV_OK);
    set(&want, 7, 30);
    set(&want, 9, 40);
    set(&want, 8, 1);
    jv_vv_ref *refs;
    size_t nrefs;
    assert_int_equal(jv_vv_diff_refs(&want, &v, &refs, &nrefs, &d), JV_OK);
    assert_int_equal(nrefs, 2);
    assert_int_equal(refs[0].idx, 1);
    assert_int_equal(refs[0].seq, 30);
    assert_int_equal(refs[1].idx, 2);
    assert_int_equal(d.n, 1);
    jv_vv_ref bad[2] = {{.idx = 1, .seq = 30}, {.idx = 3, .seq = 1}};
    jv_vv_ref zero[1] = {{.idx = 0, .seq = 0}};
    assert_int_equal(jv_vvlinks_took(t, &a, 11, 10, 0, bad, 2, &d),
                     JV_ENOTFOUND);
    assert_int_equal(jv_vvlinks_took(t, &a, 11, 10, 0, zero, 1, &d),
                     JV_ENOTFOUND);
    assert_int_equal(jv_vvlinks_took(t, &a, 11, 0, 0, refs, nrefs, &d),
                     JV_EINVAL); /* places with no base */
    assert_int_equal(d.n, 1);    /* untouched */
    assert_int_equal(jv_vvlinks_took(t, &a, 11, 10, 0, refs, nrefs, &d), JV_OK);
    assert_true(jv_vv_equal(&d, &want));
    /* And kept whole: the next may be based on it. */
    assert_int_equal(jv_vvlinks_base(t, &a, &stamp, NULL, &heard), JV_OK);
    assert_int_equal(heard, 11);
    jv_free(refs);
    jv_vvlinks_free(t);
    jv_vv_fini(&v);
    jv_vv_fini(&d);
    jv_vv_fini(&want);
    jv_vv_fini(&base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_in_order), cmocka_unit_test(test_schedules),
        cmocka_unit_test(test_room),     cmocka_unit_test(test_too_long),
        cmocka_unit_test(test_refs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
