/*
 * rcache_test.c - the read cache (node/rcache.c) against a model of the
 * database it stands in front of: random schedules of writes that begin,
 * land in the database and are observed (jv_rcache_moved) at different
 * times, reads whose snapshot is taken anywhere between their ticket and
 * their end, lookups, budgets and reloads. What must hold:
 *
 *   - a hit is exactly what the database holds at that instant;
 *   - an answer taken while nothing moved is served at once after
 *     (the cache is not merely always empty);
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

#define NKEYS  24
#define NREADS 6
#define STEPS  300

typedef struct {
    char text[2][700]; /* [0]: in the database; [1]: a write not landed */
    size_t len[2];
} key_state;

typedef struct {
    key_state keys[NKEYS];
    int writing;  /* writes begun, not yet observed */
    bool landing; /* ... of which one changed the database already */
    unsigned gen;
} model;

typedef struct {
    bool busy;
    int key;
    uint8_t kind;
    uint64_t ticket;
    char text[700];
    size_t len;
    bool taken; /* its snapshot is taken */
} read_slot;

static jv_rng rng;

static bool model_quiet(void *arg)
{
    return ((model *)arg)->writing == 0;
}

static jv_str key_name(int k, char *buf)
{
    int n = snprintf(buf, 16, "k%d", k);
    return (jv_str){buf, (size_t)n};
}

static void new_text(model *m, int k)
{
    key_state *s = &m->keys[k];
    /* Mostly small answers; some too big for the smallest budgets. */
    size_t pad = jv_rng_below(&rng, 8) == 0 ? 300 + jv_rng_below(&rng, 380)
                                            : jv_rng_below(&rng, 40);
    int n = snprintf(s->text[1], sizeof s->text[1], "{\"k\":%d,\"gen\":%u,", k,
                     ++m->gen);
    memset(s->text[1] + n, 'x', pad);
    s->len[1] = (size_t)n + pad;
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
        r->kind = (uint8_t)(1 + jv_rng_below(&rng, 2));
        r->ticket = jv_rcache_ticket(rc);
    }
    const key_state *s = &m->keys[r->key];
    if (!r->taken || jv_rng_below(&rng, 3) == 0) {
        /* A reader's snapshot: whatever the database holds when it
         * begins, which may be after writes landed. */
        memcpy(r->text, s->text[0], s->len[0]);
        r->len = s->len[0];
        r->taken = true;
    }
    if (jv_rng_below(&rng, 2) == 0) {
        jv_rcache_put(rc, r->ticket, r->kind, key_name(r->key, kb), r->text,
                      r->len);
        r->busy = false;
    }
}

static void step_write(jv_rcache *rc, model *m)
{
    unsigned what = (unsigned)jv_rng_below(&rng, 3);
    if (what == 0 || (m->writing == 0 && what != 2)) {
        m->writing++; /* queued */
    } else if (what == 1 && m->writing > 0 && !m->landing) {
        /* The commit lands: the database moves before the loop knows. */
        int k = (int)jv_rng_below(&rng, NKEYS);
        new_text(m, k);
        key_state *s = &m->keys[k];
        memcpy(s->text[0], s->text[1], s->len[1]);
        s->len[0] = s->len[1];
        m->landing = true;
    } else if (m->writing > 0) {
        jv_rcache_moved(rc); /* observed, before writing drops */
        m->writing--;
        m->landing = false;
    }
}

static void step_get(jv_rcache *rc, const model *m)
{
    char kb[16];
    int k = (int)jv_rng_below(&rng, NKEYS);
    uint8_t kind = (uint8_t)(1 + jv_rng_below(&rng, 2));
    jv_str text;
    if (jv_rcache_get(rc, kind, key_name(k, kb), &text)) {
        const key_state *s = &m->keys[k];
        assert_int_equal(text.n, s->len[0]);
        assert_memory_equal(text.p, s->text[0], text.n);
    }
}

/* Quiet, a fresh ticket, a put: the next lookup answers it. */
static void step_fresh(jv_rcache *rc, const model *m, uint64_t budget)
{
    char kb[16];
    if (m->writing)
        return;
    int k = (int)jv_rng_below(&rng, NKEYS);
    const key_state *s = &m->keys[k];
    uint64_t t = jv_rcache_ticket(rc);
    assert_true(budget == 0 || t != 0);
    jv_rcache_put(rc, t, 3, key_name(k, kb), s->text[0], s->len[0]);
    jv_str text;
    bool hit = jv_rcache_get(rc, 3, key_name(k, kb), &text);
    /* The header and key are well under 64 bytes. */
    bool fits = budget && s->len[0] + 64 <= budget / 16;
    if (fits)
        assert_true(hit);
    if (hit)
        assert_memory_equal(text.p, s->text[0], s->len[0]);
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
    for (int k = 0; k < NKEYS; k++) {
        new_text(&m, k);
        memcpy(m.keys[k].text[0], m.keys[k].text[1], m.keys[k].len[1]);
        m.keys[k].len[0] = m.keys[k].len[1];
    }
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
                jv_rcache_moved(rc); /* a move with nothing changed */
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

/* The plain cases, by name: a hit, a move, a write under way, a stale
 * ticket, a key of another kind, a budget of 0, and the counters. */
static void test_cases(void **state)
{
    (void)state;
    model m;
    jv_rcache *rc;
    jv_str t;
    const jv_str key = {"name", 4}, other = {"namf", 4};
    memset(&m, 0, sizeof m);
    assert_int_equal(jv_rcache_new(4096, model_quiet, &m, &rc), JV_OK);
    assert_false(jv_rcache_get(rc, 1, key, &t));
    uint64_t tk = jv_rcache_ticket(rc);
    assert_true(tk != 0);
    jv_rcache_put(rc, tk, 1, key, "{\"v\":1}", 7);
    assert_true(jv_rcache_get(rc, 1, key, &t));
    assert_int_equal(t.n, 7);
    assert_memory_equal(t.p, "{\"v\":1}", 7);
    assert_false(jv_rcache_get(rc, 2, key, &t));
    assert_false(jv_rcache_get(rc, 1, other, &t));

    m.writing = 1; /* a write queued: nothing is served, nothing taken */
    assert_false(jv_rcache_get(rc, 1, key, &t));
    assert_int_equal(jv_rcache_ticket(rc), 0);
    jv_rcache_moved(rc);
    m.writing = 0;
    assert_false(jv_rcache_get(rc, 1, key, &t));

    tk = jv_rcache_ticket(rc);
    jv_rcache_moved(rc); /* the read's answer may be older than this */
    jv_rcache_put(rc, tk, 1, key, "{\"v\":2}", 7);
    assert_false(jv_rcache_get(rc, 1, key, &t));

    tk = jv_rcache_ticket(rc);
    m.writing = 1; /* a write began during the read */
    jv_rcache_put(rc, tk, 1, key, "{\"v\":2}", 7);
    m.writing = 0;
    assert_false(jv_rcache_get(rc, 1, key, &t));

    char big[300];
    memset(big, 'x', sizeof big); /* over a sixteenth of 4096 */
    jv_rcache_put(rc, jv_rcache_ticket(rc), 1, key, big, sizeof big);
    assert_false(jv_rcache_get(rc, 1, key, &t));

    jv_rcache_stats st;
    jv_rcache_stats_get(rc, &st);
    assert_int_equal(st.hits, 1);
    assert_int_equal(st.misses, 8);
    assert_int_equal(st.entries, 1); /* the first answer, out of date */
    assert_true(st.bytes > 7 && st.bytes < 100);

    assert_int_equal(jv_rcache_resize(rc, 0), JV_OK);
    jv_rcache_stats_get(rc, &st);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.bytes, 0);
    assert_int_equal(jv_rcache_ticket(rc), 0);
    jv_rcache_put(rc, 1, 1, key, "{}", 2);
    assert_false(jv_rcache_get(rc, 1, key, &t));
    jv_rcache_free(rc);
}

/* Many keys through a small budget: the bytes held stay under it, and
 * the keys put last are still there. */
static void test_budget(void **state)
{
    (void)state;
    model m;
    jv_rcache *rc;
    char kb[16], text[100];
    jv_str t;
    memset(&m, 0, sizeof m);
    memset(text, 'y', sizeof text);
    assert_int_equal(jv_rcache_new(8192, model_quiet, &m, &rc), JV_OK);
    for (int k = 0; k < 5000; k++) {
        int n = snprintf(kb, sizeof kb, "key-%d", k);
        jv_rcache_put(rc, jv_rcache_ticket(rc), 1, (jv_str){kb, (size_t)n},
                      text, sizeof text);
        check_stats(rc, 8192);
    }
    jv_rcache_stats st;
    jv_rcache_stats_get(rc, &st);
    assert_true(st.bytes > 8192 / 2);
    assert_true(jv_rcache_get(rc, 1, (jv_str){"key-4999", 8}, &t));
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
