/*
 * rcache_test.c - the read cache (node/rcache.c) against a model of the
 * database it stands in front of: random schedules of writes of one kind
 * or of all that are queued, land in the database and are observed
 * (jv_rcache_moved) at different times, reads of every kind whose
 * snapshot is taken anywhere between their ticket and their end, lookups,
 * budgets and reloads. What must hold:
 *
 *   - a hit is exactly what the database holds at that instant;
 *   - an answer taken while nothing of its kind moved is served at once
 *     after, whatever other kinds have under way (the cache is not merely
 *     always empty);
 *   - the bytes held never pass the budget, and the figures add up.
 *
 * The seed is printed (JV_SEED replays it; JV_SCHEDULES sets the number of
 * schedules).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "rcache.h"
#include "testutil.h"

#define NKEYS  16
#define NREADS 6
#define NWRITE 4 /* writes pending at once, at most */
#define STEPS  300

typedef struct {
    char text[700]; /* what the database holds */
    size_t len;
} key_state;

/* A write: queued, then landed in the database, then observed. */
typedef struct {
    unsigned kinds; /* what it changes */
    bool landed;
} write_slot;

typedef struct {
    key_state keys[JV_RC_KINDS][NKEYS];
    write_slot writes[NWRITE]; /* oldest first */
    int nwrites;
    unsigned gen;
} model;

typedef struct {
    bool busy;
    int key;
    unsigned kind;
    uint64_t ticket;
    char text[700];
    size_t len;
    bool taken; /* its snapshot is taken */
} read_slot;

static jv_rng rng;

/* No write of kind pending (queued, or landed and not observed). */
static bool pending_none(const model *m, unsigned kind)
{
    for (int i = 0; i < m->nwrites; i++)
        if (m->writes[i].kinds & (1u << kind))
            return false;
    return true;
}

static bool model_quiet(void *arg, unsigned kind)
{
    return pending_none(arg, kind);
}

static jv_str key_name(int k, char *buf)
{
    int n = snprintf(buf, 16, "k%d", k);
    return (jv_str){buf, (size_t)n};
}

static void new_text(model *m, unsigned kind, int k)
{
    key_state *s = &m->keys[kind][k];
    /* Mostly small answers; some too big for the smallest budgets. */
    size_t pad = jv_rng_below(&rng, 8) == 0 ? 300 + jv_rng_below(&rng, 380)
                                            : jv_rng_below(&rng, 40);
    int n = snprintf(s->text, sizeof s->text,
                     "{\"kind\":%u,\"k\":%d,\"gen\":%u,", kind, k, ++m->gen);
    memset(s->text + n, 'x', pad);
    s->len = (size_t)n + pad;
}

static void check_stats(const jv_rcache *rc, uint64_t budget)
{
    jv_rcache_stats st;
    jv_rcache_stats_get(rc, &st);
    assert_true(st.bytes <= budget);
    assert_true(st.entries == 0 || st.bytes > 0);
}

static void step_read(jv_rcache *rc, model *m, read_slot *r)
{
    char kb[16];
    if (!r->busy) {
        r->busy = true;
        r->taken = false;
        r->key = (int)jv_rng_below(&rng, NKEYS);
        r->kind = (unsigned)jv_rng_below(&rng, JV_RC_KINDS);
        r->ticket = jv_rcache_ticket(rc, r->kind);
    }
    const key_state *s = &m->keys[r->kind][r->key];
    if (!r->taken || jv_rng_below(&rng, 3) == 0) {
        /* A reader's snapshot: whatever the database holds when it
         * begins, which may be after writes landed. */
        memcpy(r->text, s->text, s->len);
        r->len = s->len;
        r->taken = true;
    }
    if (jv_rng_below(&rng, 2) == 0) {
        jv_rcache_put(rc, r->ticket, r->kind, key_name(r->key, kb), r->text,
                      r->len);
        r->busy = false;
    }
}

/* A write of some kinds is queued; a pending one lands (the database
 * moves before the loop knows); or the oldest landed one is observed
 * (moved, then no longer pending). */
static void step_write(jv_rcache *rc, model *m)
{
    unsigned what = (unsigned)jv_rng_below(&rng, 3);
    if (what == 0 && m->nwrites < NWRITE) {
        unsigned kinds = jv_rng_below(&rng, 4) == 0
                             ? JV_RC_ALL
                             : 1u << jv_rng_below(&rng, JV_RC_KINDS);
        m->writes[m->nwrites++] = (write_slot){kinds, false};
    } else if (what == 1 && m->nwrites > 0) {
        write_slot *w = &m->writes[jv_rng_below(&rng, (uint64_t)m->nwrites)];
        for (unsigned k = 0; k < JV_RC_KINDS; k++)
            if (w->kinds & (1u << k))
                new_text(m, k, (int)jv_rng_below(&rng, NKEYS));
        w->landed = true;
    } else if (m->nwrites > 0 && m->writes[0].landed) {
        jv_rcache_moved(rc, m->writes[0].kinds);
        memmove(m->writes, m->writes + 1,
                (size_t)(--m->nwrites) * sizeof m->writes[0]);
    }
}

static void step_get(jv_rcache *rc, const model *m)
{
    char kb[16];
    int k = (int)jv_rng_below(&rng, NKEYS);
    unsigned kind = (unsigned)jv_rng_below(&rng, JV_RC_KINDS);
    jv_str text;
    if (jv_rcache_get(rc, kind, key_name(k, kb), &text)) {
        const key_state *s = &m->keys[kind][k];
        assert_int_equal(text.n, s->len);
        assert_memory_equal(text.p, s->text, text.n);
    }
}

/* Its kind quiet, a fresh ticket, a put: the next lookup answers it,
 * whatever other kinds have pending. */
static void step_fresh(jv_rcache *rc, const model *m, uint64_t budget)
{
    char kb[16];
    unsigned kind = (unsigned)jv_rng_below(&rng, JV_RC_KINDS);
    if (!pending_none(m, kind))
        return;
    int k = (int)jv_rng_below(&rng, NKEYS);
    const key_state *s = &m->keys[kind][k];
    uint64_t t = jv_rcache_ticket(rc, kind);
    assert_true(budget == 0 || t != 0);
    jv_rcache_put(rc, t, kind, key_name(k, kb), s->text, s->len);
    jv_str text;
    bool hit = jv_rcache_get(rc, kind, key_name(k, kb), &text);
    /* The header and key are well under 64 bytes. */
    bool fits = budget && s->len + 64 <= budget / 16;
    if (fits)
        assert_true(hit);
    if (hit)
        assert_memory_equal(text.p, s->text, s->len);
}

static void run_schedule(uint64_t seed)
{
    static const uint64_t budgets[] = {0, 2048, 4096, 16384, 1 << 20};
    model m;
    read_slot reads[NREADS];
    jv_rcache *rc;
    jv_rng_seed(&rng, seed);
    memset(&m, 0, sizeof m);
    memset(reads, 0, sizeof reads);
    for (unsigned kind = 0; kind < JV_RC_KINDS; kind++)
        for (int k = 0; k < NKEYS; k++)
            new_text(&m, kind, k);
    uint64_t budget = budgets[jv_rng_below(&rng, 5)];
    assert_int_equal(jv_rcache_new(budget, model_quiet, &m, &rc), JV_OK);
    for (int i = 0; i < STEPS; i++) {
        switch (jv_rng_below(&rng, 16)) {
        case 0:
        case 1:
        case 2:
            step_write(rc, &m);
            break;
        case 3:
        case 4:
        case 5:
        case 6:
        case 7:
            step_read(rc, &m, &reads[jv_rng_below(&rng, NREADS)]);
            break;
        case 8:
            step_fresh(rc, &m, budget);
            break;
        case 9:
            if (jv_rng_below(&rng, 8) == 0) {
                budget = budgets[jv_rng_below(&rng, 5)];
                assert_int_equal(jv_rcache_resize(rc, budget), JV_OK);
            } else {
                /* a move with nothing changed */
                jv_rcache_moved(rc, (unsigned)jv_rng_below(&rng, 8));
            }
            break;
        default:
            step_get(rc, &m);
            break;
        }
        check_stats(rc, budget);
    }
    jv_rcache_free(rc);
}

static void test_schedules(void **state)
{
    (void)state;
    uint64_t seed = jv_test_seed(), n = jv_test_schedules(5000);
    for (uint64_t i = 0; i < n; i++)
        run_schedule(seed + i);
    printf("%llu schedules of %d steps\n", (unsigned long long)n, STEPS);
}

/* For the cases below: the kinds with a write under way, as a mask. */
static bool mask_quiet(void *arg, unsigned kind)
{
    return !(*(const unsigned *)arg & (1u << kind));
}

/* The plain cases, by name: a hit, a move, a write under way, a stale
 * ticket, a key of another kind, kinds moving apart, a budget of 0, and
 * the counters. */
static void test_cases(void **state)
{
    (void)state;
    unsigned busy = 0;
    jv_rcache *rc;
    jv_str t;
    const unsigned C = JV_RC_COUNTER, G = JV_RC_CONFIG;
    const jv_str key = {"name", 4}, other = {"namf", 4};
    assert_int_equal(jv_rcache_new(4096, mask_quiet, &busy, &rc), JV_OK);
    assert_false(jv_rcache_get(rc, C, key, &t));
    uint64_t tk = jv_rcache_ticket(rc, C);
    assert_true(tk != 0);
    jv_rcache_put(rc, tk, C, key, "{\"v\":1}", 7);
    assert_true(jv_rcache_get(rc, C, key, &t));
    assert_int_equal(t.n, 7);
    assert_memory_equal(t.p, "{\"v\":1}", 7);
    assert_false(jv_rcache_get(rc, G, key, &t));
    assert_false(jv_rcache_get(rc, C, other, &t));

    /* Another kind written, and moved: the counter's answer stands. */
    busy = 1u << G;
    assert_true(jv_rcache_get(rc, C, key, &t));
    assert_int_equal(jv_rcache_ticket(rc, G), 0);
    jv_rcache_moved(rc, 1u << G);
    busy = 0;
    assert_true(jv_rcache_get(rc, C, key, &t));

    busy = 1u << C; /* a write queued: nothing is served, nothing taken */
    assert_false(jv_rcache_get(rc, C, key, &t));
    assert_int_equal(jv_rcache_ticket(rc, C), 0);
    jv_rcache_moved(rc, 1u << C);
    busy = 0;
    assert_false(jv_rcache_get(rc, C, key, &t));

    tk = jv_rcache_ticket(rc, C);
    jv_rcache_moved(rc, JV_RC_ALL); /* the answer may be older than this */
    jv_rcache_put(rc, tk, C, key, "{\"v\":2}", 7);
    assert_false(jv_rcache_get(rc, C, key, &t));

    tk = jv_rcache_ticket(rc, C);
    busy = 1u << C; /* a write began during the read */
    jv_rcache_put(rc, tk, C, key, "{\"v\":2}", 7);
    busy = 0;
    assert_false(jv_rcache_get(rc, C, key, &t));

    char big[300];
    memset(big, 'x', sizeof big); /* over a sixteenth of 4096 */
    jv_rcache_put(rc, jv_rcache_ticket(rc, C), C, key, big, sizeof big);
    assert_false(jv_rcache_get(rc, C, key, &t));

    jv_rcache_stats st;
    jv_rcache_stats_get(rc, &st);
    assert_int_equal(st.hits, 3);
    assert_int_equal(st.misses, 8);
    assert_int_equal(st.entries, 1); /* the first answer, out of date */
    assert_true(st.bytes > 7 && st.bytes < 100);

    assert_int_equal(jv_rcache_resize(rc, 0), JV_OK);
    jv_rcache_stats_get(rc, &st);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.bytes, 0);
    assert_int_equal(jv_rcache_ticket(rc, C), 0);
    jv_rcache_put(rc, 1, C, key, "{}", 2);
    assert_false(jv_rcache_get(rc, C, key, &t));
    jv_rcache_free(rc);
}

/* Many keys through a small budget: the bytes held stay under it, and
 * the keys put last are still there. */
static void test_budget(void **state)
{
    (void)state;
    unsigned busy = 0;
    jv_rcache *rc;
    char kb[16], text[100];
    jv_str t;
    memset(text, 'y', sizeof text);
    assert_int_equal(jv_rcache_new(8192, mask_quiet, &busy, &rc), JV_OK);
    for (int k = 0; k < 5000; k++) {
        int n = snprintf(kb, sizeof kb, "key-%d", k);
        jv_rcache_put(rc, jv_rcache_ticket(rc, JV_RC_ARCHIVE), JV_RC_ARCHIVE,
                      (jv_str){kb, (size_t)n}, text, sizeof text);
        check_stats(rc, 8192);
    }
    jv_rcache_stats st;
    jv_rcache_stats_get(rc, &st);
    assert_true(st.bytes > 8192 / 2);
    assert_true(jv_rcache_get(rc, JV_RC_ARCHIVE, (jv_str){"key-4999", 8}, &t));
    jv_rcache_free(rc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_budget),
        cmocka_unit_test(test_schedules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
