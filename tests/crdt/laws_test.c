/*
 * laws_test.c - property tests: the lattice laws and convergence of every
 * CRDT type, on random schedules.
 *
 * A schedule picks 3-5 replicas and interleaves a handful of random
 * mutations (each producing a delta, shipped as bytes) with deliveries of
 * those deltas to the other replicas in random order, with duplicates and
 * with losses that are resent at the end. For every type it checks
 *   (a) join is commutative, associative and idempotent on the states the
 *       schedule reached,
 *   (b) once every replica has every delta, all encodings are identical,
 *   (c) a delta does what the full state does: S join delta == S' (the
 *       mutated state), (T join S) join delta == T join S', and the join of
 *       every producer's full state equals the converged state,
 *   (g) every reached state survives encode/decode/encode byte for byte,
 * and that the converged state is what a simple model of the operations
 * predicts; plus per type: OR-Set add-wins and an empty context cloud after
 * delivery (d), LWW ties independent of arrival order (e), and the HLC's
 * monotonicity and skew bound (f).
 *
 * Schedule i runs from seed  base + i * 0x9e3779b97f4a7c15  (base printed
 * at start). A failure prints the schedule and how to replay it:
 *   JV_SEED=<base> JV_SCHEDULES=<i+1>   reruns schedules 0..i
 *   JV_SCHEDULE=<i> (with JV_SEED)      runs schedule i alone
 */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "audit.h"
#include "gcounter.h"
#include "hlc.h"
#include "lww.h"
#include "orset.h"
#include "testutil.h"
#include "vv.h"

#define DEFAULT_SCHEDULES 10000
#define MAX_REP           5
#define MAX_OPS           8
#define MAX_OBS           8
#define NKEYS             3

/* One operation as the model sees it. */
typedef struct {
    unsigned rep;
    int kind; /* per type: 0 = grow/add/set/append, 1 = remove */
    int64_t amount;
    uint64_t stamp;
    char key[2];
    uint8_t val[4];
    size_t vlen;
    jv_dot dot;               /* OR-Set add, audit id */
    jv_dot observed[MAX_OBS]; /* OR-Set: dots of key the replica saw */
    size_t nobs;
    bool effective; /* audit: the id was new at the replica */
    char text[4][4];
} op_rec;

typedef struct {
    const char *type;
    uint64_t index, seed;
    jv_rng rng;
    unsigned nrep;
    jv_id ids[MAX_REP];
    uint64_t seq[MAX_REP]; /* audit: next sequence number */
    op_rec ops[MAX_OPS];
    size_t nops;
} sched;

typedef struct {
    const char *name;
    size_t size;
    void (*init)(void *s);
    void (*fini)(void *s);
    jv_err (*join)(void *dst, const void *src);
    jv_err (*encode)(const void *s, jv_buf *out);
    jv_err (*decode)(const void *p, size_t n, void *out);
    bool (*equal)(const void *a, const void *b);
    /* One random mutation by replica r; fills delta and sc->ops[nops]
     * (the caller counts it). JV_ENOTFOUND: nothing to do, no delta. */
    jv_err (*mutate)(sched *sc, unsigned r, void *s, void *delta);
    /* The converged state against the model of sc->ops. */
    void (*check)(sched *sc, const void *s);
} crdt_type;

static uint64_t lww_ties; /* tie-breaks the LWW schedules exercised */

static uint64_t schedule_seed(uint64_t base, uint64_t i)
{
    return base + i * 0x9e3779b97f4a7c15ull;
}

static void fail_at(const sched *sc, const char *what, const char *file,
                    int line)
{
    uint64_t base = jv_test_seed();
    print_error("%s: schedule %" PRIu64 " (seed %" PRIu64 ") failed: %s\n"
                "replay: JV_SEED=%" PRIu64 " JV_SCHEDULE=%" PRIu64
                "  (or JV_SCHEDULES=%" PRIu64 ")\n",
                sc->type, sc->index, sc->seed, what, base, sc->index,
                sc->index + 1);
    _fail(file, line);
}

#define CHECK(sc, cond)                               \
    do {                                              \
        if (!(cond))                                  \
            fail_at((sc), #cond, __FILE__, __LINE__); \
    } while (0)

#define CHECK_OK(sc, expr)                                     \
    do {                                                       \
        jv_err e_ = (expr);                                    \
        if (e_ != JV_OK)                                       \
            fail_at((sc), jv_errname(e_), __FILE__, __LINE__); \
    } while (0)

static uint64_t below(sched *sc, uint64_t n)
{
    return jv_rng_below(&sc->rng, n);
}

/* ---- generic state helpers --------------------------------------------- */

static void *state_new(const crdt_type *t)
{
    void *s = malloc(t->size);
    assert_non_null(s);
    t->init(s);
    return s;
}

static void state_free(const crdt_type *t, void *s)
{
    if (!s)
        return;
    t->fini(s);
    free(s);
}

static void encode(const crdt_type *t, sched *sc, const void *s, jv_buf *b)
{
    jv_buf_reset(b);
    CHECK_OK(sc, t->encode(s, b));
}

static void *decode_new(const crdt_type *t, sched *sc, const jv_buf *b)
{
    void *s = state_new(t);
    CHECK_OK(sc, t->decode(b->data, b->len, s));
    return s;
}

/* (g) A copy through the encoding, checking the round trip. */
static void *copy(const crdt_type *t, sched *sc, const void *s)
{
    jv_buf a, b;
    jv_buf_init(&a);
    jv_buf_init(&b);
    encode(t, sc, s, &a);
    void *c = decode_new(t, sc, &a);
    CHECK(sc, t->equal(s, c));
    encode(t, sc, c, &b);
    CHECK(sc, a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
    jv_buf_fini(&a);
    jv_buf_fini(&b);
    return c;
}

static bool same(const crdt_type *t, sched *sc, const void *x, const void *y)
{
    jv_buf a, b;
    jv_buf_init(&a);
    jv_buf_init(&b);
    encode(t, sc, x, &a);
    encode(t, sc, y, &b);
    bool eq = a.len == b.len && memcmp(a.data, b.data, a.len) == 0;
    CHECK(sc, eq == t->equal(x, y));
    jv_buf_fini(&a);
    jv_buf_fini(&b);
    return eq;
}

static void *joined(const crdt_type *t, sched *sc, const void *x, const void *y)
{
    void *r = copy(t, sc, x);
    CHECK_OK(sc, t->join(r, y));
    return r;
}

/* (a) on three reached states. */
static void check_lattice(const crdt_type *t, sched *sc, const void *a,
                          const void *b, const void *c)
{
    void *ab = joined(t, sc, a, b), *ba = joined(t, sc, b, a);
    CHECK(sc, same(t, sc, ab, ba));
    void *ab_c = joined(t, sc, ab, c), *bc = joined(t, sc, b, c);
    void *a_bc = joined(t, sc, a, bc);
    CHECK(sc, same(t, sc, ab_c, a_bc));
    void *aa = joined(t, sc, a, a);
    CHECK(sc, same(t, sc, aa, a));
    /* Joining a state with itself in place changes nothing either. */
    CHECK_OK(sc, t->join(aa, aa));
    CHECK(sc, same(t, sc, aa, a));
    /* A join is an upper bound: joining either side again is a no-op. */
    void *ab_a = joined(t, sc, ab, a);
    CHECK(sc, same(t, sc, ab_a, ab));
    state_free(t, ab);
    state_free(t, ba);
    state_free(t, ab_c);
    state_free(t, bc);
    state_free(t, a_bc);
    state_free(t, aa);
    state_free(t, ab_a);
}

/* ---- the schedule ------------------------------------------------------ */

enum {
    PENDING,
    LOST,
    DONE
};

typedef struct {
    size_t op;
    unsigned target;
    int state;
} msg;

static void deliver(const crdt_type *t, sched *sc, void **rep,
                    const jv_buf *deltas, const msg *m)
{
    void *d = decode_new(t, sc, &deltas[m->op]);
    CHECK_OK(sc, t->join(rep[m->target], d));
    state_free(t, d);
}

static void run_schedule(const crdt_type *t, uint64_t base, uint64_t index)
{
    sched sc_, *sc = &sc_;
    memset(sc, 0, sizeof(*sc));
    sc->type = t->name;
    sc->index = index;
    sc->seed = schedule_seed(base, index);
    jv_rng_seed(&sc->rng, sc->seed);
    sc->nrep = 3 + (unsigned)below(sc, 3);
    unsigned first = (unsigned)below(sc, 1000);
    for (unsigned i = 0; i < sc->nrep; i++)
        sc->ids[i] = jv_test_id(first + i);

    void *rep[MAX_REP], *snap[MAX_OPS];
    jv_buf deltas[MAX_OPS];
    msg msgs[MAX_OPS * MAX_REP];
    size_t nmsgs = 0, want_ops = 1 + below(sc, MAX_OPS), tries = 0;
    for (unsigned i = 0; i < sc->nrep; i++)
        rep[i] = state_new(t);
    for (size_t i = 0; i < MAX_OPS; i++)
        jv_buf_init(&deltas[i]);

    while (sc->nops < want_ops || tries < 4 * MAX_OPS) {
        size_t pending = 0;
        for (size_t i = 0; i < nmsgs; i++)
            pending += msgs[i].state == PENDING;
        bool op_now = sc->nops < want_ops &&
                      (pending == 0 || jv_rng_chance(&sc->rng, 1, 2));
        if (op_now) {
            unsigned r = (unsigned)below(sc, sc->nrep);
            void *before = copy(t, sc, rep[r]);
            void *delta = state_new(t);
            jv_err err = t->mutate(sc, r, rep[r], delta);
            tries++;
            if (err == JV_ENOTFOUND) {
                CHECK(sc, same(t, sc, before, rep[r]));
                state_free(t, before);
                state_free(t, delta);
                continue;
            }
            CHECK_OK(sc, err);
            size_t k = sc->nops++;
            /* (c) S join delta == S' */
            void *s_d = joined(t, sc, before, delta);
            CHECK(sc, same(t, sc, s_d, rep[r]));
            /* (c) for any T: (T join S) join delta == T join S' */
            unsigned o = (unsigned)below(sc, sc->nrep);
            void *ts = joined(t, sc, rep[o], before);
            CHECK_OK(sc, t->join(ts, delta));
            void *ts2 = joined(t, sc, rep[o], rep[r]);
            CHECK(sc, same(t, sc, ts, ts2));
            encode(t, sc, delta, &deltas[k]);
            snap[k] = copy(t, sc, rep[r]);
            for (unsigned i = 0; i < sc->nrep; i++)
                if (i != r)
                    msgs[nmsgs++] = (msg){k, i, PENDING};
            state_free(t, before);
            state_free(t, delta);
            state_free(t, s_d);
            state_free(t, ts);
            state_free(t, ts2);
        } else if (pending) {
            size_t pick = below(sc, pending), i = 0;
            for (;; i++)
                if (msgs[i].state == PENDING && pick-- == 0)
                    break;
            tries++;
            if (jv_rng_chance(&sc->rng, 1, 6)) {
                msgs[i].state = LOST;
                continue;
            }
            deliver(t, sc, rep, deltas, &msgs[i]);
            /* Sometimes the network repeats itself. */
            if (!jv_rng_chance(&sc->rng, 1, 4))
                msgs[i].state = DONE;
            void *c = copy(t, sc, rep[msgs[i].target]);
            state_free(t, c);
        } else {
            break;
        }
    }

    /* (a) on states reached mid-way: replicas and producers' snapshots. */
    {
        const void *pool[MAX_REP + MAX_OPS];
        size_t np = 0;
        for (unsigned i = 0; i < sc->nrep; i++)
            pool[np++] = rep[i];
        for (size_t i = 0; i < sc->nops; i++)
            pool[np++] = snap[i];
        check_lattice(t, sc, pool[below(sc, np)], pool[below(sc, np)],
                      pool[below(sc, np)]);
    }

    /* Resend what was lost, then deliver everything in random order, some
     * of it twice. */
    size_t order[MAX_OPS * MAX_REP * 2], no = 0;
    for (size_t i = 0; i < nmsgs; i++) {
        if (msgs[i].state == DONE)
            continue;
        order[no++] = i;
        if (jv_rng_chance(&sc->rng, 1, 5))
            order[no++] = i;
    }
    jv_rng_shuffle(&sc->rng, order, no, sizeof(order[0]));
    for (size_t i = 0; i < no; i++)
        deliver(t, sc, rep, deltas, &msgs[order[i]]);

    /* (b) convergence */
    for (unsigned i = 1; i < sc->nrep; i++)
        CHECK(sc, same(t, sc, rep[0], rep[i]));
    /* (c) the deltas add up to the join of the full states. */
    void *full = state_new(t);
    for (size_t i = 0; i < sc->nops; i++)
        CHECK_OK(sc, t->join(full, snap[i]));
    CHECK(sc, same(t, sc, full, rep[0]));
    void *c = copy(t, sc, rep[0]);
    t->check(sc, c);

    state_free(t, c);
    state_free(t, full);
    for (size_t i = 0; i < sc->nops; i++)
        state_free(t, snap[i]);
    for (unsigned i = 0; i < sc->nrep; i++)
        state_free(t, rep[i]);
    for (size_t i = 0; i < MAX_OPS; i++)
        jv_buf_fini(&deltas[i]);
}

/* Runs the schedules of one property; returns how many ran. */
static uint64_t run_all(const char *name,
                        void (*one)(const void *, uint64_t, uint64_t),
                        const void *arg)
{
    uint64_t base = jv_test_seed(), n = jv_test_schedules(DEFAULT_SCHEDULES);
    const char *only = getenv("JV_SCHEDULE");
    uint64_t from = 0;
    if (only && *only) {
        from = strtoull(only, NULL, 0);
        n = from + 1;
    }
    for (uint64_t i = from; i < n; i++)
        one(arg, base, i);
    printf("%s: %" PRIu64 " schedules passed\n", name, n - from);
    return n - from;
}

static void type_schedule(const void *t, uint64_t base, uint64_t i)
{
    run_schedule(t, base, i);
}

/* ---- version vector ---------------------------------------------------- */

static void vv_init_(void *s)
{
    jv_vv_init(s);
}
static void vv_fini_(void *s)
{
    jv_vv_fini(s);
}
static jv_err vv_join_(void *d, const void *s)
{
    return jv_vv_merge(d, s);
}
static jv_err vv_encode_(const void *s, jv_buf *b)
{
    jv_mpw w;
    jv_mpw_init(&w, b);
    jv_vv_encode(s, &w);
    return jv_mpw_err(&w);
}
static jv_err vv_decode_(const void *p, size_t n, void *out)
{
    jv_mpr r;
    jv_vv tmp;
    jv_vv_init(&tmp);
    jv_mpr_init(&r, p, n);
    jv_err err = jv_vv_decode(&r, &tmp);
    if (err == JV_OK)
        err = jv_mpr_end(&r);
    if (err == JV_OK)
        err = jv_vv_copy(out, &tmp);
    jv_vv_fini(&tmp);
    return err;
}
static bool vv_equal_(const void *a, const void *b)
{
    return jv_vv_equal(a, b);
}
static jv_err vv_mutate(sched *sc, unsigned r, void *s, void *delta)
{
    op_rec *op = &sc->ops[sc->nops];
    uint64_t cur = jv_vv_get(s, &sc->ids[r]);
    op->rep = r;
    op->amount = 1 + (int64_t)below(sc, 3);
    jv_err err = jv_vv_raise(s, &sc->ids[r], cur + (uint64_t)op->amount);
    if (err == JV_OK)
        err = jv_vv_set(delta, &sc->ids[r], cur + (uint64_t)op->amount);
    return err;
}
static void vv_check(sched *sc, const void *s)
{
    const jv_vv *vv = s;
    size_t active = 0;
    for (unsigned r = 0; r < sc->nrep; r++) {
        uint64_t want = 0;
        for (size_t i = 0; i < sc->nops; i++)
            if (sc->ops[i].rep == r)
                want += (uint64_t)sc->ops[i].amount;
        CHECK(sc, jv_vv_get(vv, &sc->ids[r]) == want);
        active += want > 0;
    }
    CHECK(sc, vv->n == active);
}

static const crdt_type vv_type = {
    "vv",       sizeof(jv_vv), vv_init_,  vv_fini_,  vv_join_,
    vv_encode_, vv_decode_,    vv_equal_, vv_mutate, vv_check,
};

/* ---- G-Counter --------------------------------------------------------- */

static void gc_init(void *s)
{
    jv_gcounter_init(s);
}
static void gc_fini(void *s)
{
    jv_gcounter_fini(s);
}
static jv_err gc_join(void *d, const void *s)
{
    return jv_gcounter_join(d, s);
}
static jv_err gc_encode(const void *s, jv_buf *b)
{
    return jv_gcounter_encode(s, b);
}
static jv_err gc_decode(const void *p, size_t n, void *out)
{
    return jv_gcounter_decode(p, n, out);
}
static bool gc_equal(const void *a, const void *b)
{
    return jv_gcounter_equal(a, b);
}
static jv_err gc_mutate(sched *sc, unsigned r, void *s, void *delta)
{
    op_rec *op = &sc->ops[sc->nops];
    op->rep = r;
    op->amount = 1 + (int64_t)below(sc, 5);
    return jv_gcounter_inc(s, &sc->ids[r], (uint64_t)op->amount, delta);
}
static void gc_check(sched *sc, const void *s)
{
    uint64_t total = 0, value;
    for (unsigned r = 0; r < sc->nrep; r++) {
        uint64_t want = 0;
        for (size_t i = 0; i < sc->nops; i++)
            if (sc->ops[i].rep == r)
                want += (uint64_t)sc->ops[i].amount;
        CHECK(sc, jv_gcounter_get(s, &sc->ids[r]) == want);
        total += want;
    }
    CHECK_OK(sc, jv_gcounter_value(s, &value));
    CHECK(sc, value == total);
}

static const crdt_type gc_type = {
    "gcounter", sizeof(jv_gcounter), gc_init,  gc_fini,   gc_join,
    gc_encode,  gc_decode,           gc_equal, gc_mutate, gc_check,
};

/* ---- PN-Counter -------------------------------------------------------- */

static void pn_init(void *s)
{
    jv_pncounter_init(s);
}
static void pn_fini(void *s)
{
    jv_pncounter_fini(s);
}
static jv_err pn_join(void *d, const void *s)
{
    return jv_pncounter_join(d, s);
}
static jv_err pn_encode(const void *s, jv_buf *b)
{
    return jv_pncounter_encode(s, b);
}
static jv_err pn_decode(const void *p, size_t n, void *out)
{
    return jv_pncounter_decode(p, n, out);
}
static bool pn_equal(const void *a, const void *b)
{
    return jv_pncounter_equal(a, b);
}
static jv_err pn_mutate(sched *sc, unsigned r, void *s, void *delta)
{
    op_rec *op = &sc->ops[sc->nops];
    op->rep = r;
    op->amount = (int64_t)below(sc, 9) - 4;
    if (op->amount == 0)
        op->amount = 5;
    return jv_pncounter_add(s, &sc->ids[r], op->amount, delta);
}
static void pn_check(sched *sc, const void *s)
{
    const jv_pncounter *c = s;
    int64_t total = 0, value;
    for (unsigned r = 0; r < sc->nrep; r++) {
        uint64_t p = 0, n = 0;
        for (size_t i = 0; i < sc->nops; i++) {
            if (sc->ops[i].rep != r)
                continue;
            if (sc->ops[i].amount > 0)
                p += (uint64_t)sc->ops[i].amount;
            else
                n += (uint64_t)-sc->ops[i].amount;
        }
        CHECK(sc, jv_gcounter_get(&c->p, &sc->ids[r]) == p);
        CHECK(sc, jv_gcounter_get(&c->n, &sc->ids[r]) == n);
        total += (int64_t)p - (int64_t)n;
    }
    CHECK_OK(sc, jv_pncounter_value(c, &value));
    CHECK(sc, value == total);
}

static const crdt_type pn_type = {
    "pncounter", sizeof(jv_pncounter),
    pn_init,     pn_fini,
    pn_join,     pn_encode,
    pn_decode,   pn_equal,
    pn_mutate,   pn_check,
};

/* ---- audit set --------------------------------------------------------- */

static void au_init(void *s)
{
    jv_audit_init(s);
}
static void au_fini(void *s)
{
    jv_audit_fini(s);
}
static jv_err au_join(void *d, const void *s)
{
    return jv_audit_join(d, s);
}
static jv_err au_encode(const void *s, jv_buf *b)
{
    return jv_audit_encode(s, b);
}
static jv_err au_decode(const void *p, size_t n, void *out)
{
    return jv_audit_decode(p, n, out);
}
static bool au_equal(const void *a, const void *b)
{
    return jv_audit_equal(a, b);
}
static void random_text(sched *sc, char out[4])
{
    size_t n = below(sc, 4);
    for (size_t i = 0; i < n; i++)
        out[i] = (char)('a' + below(sc, 2));
    out[n] = '\0';
}
static jv_err au_mutate(sched *sc, unsigned r, void *s, void *delta)
{
    op_rec *op = &sc->ops[sc->nops];
    op->rep = r;
    op->stamp = below(sc, 3);
    for (int f = 0; f < 4; f++)
        random_text(sc, op->text[f]);
    /* Mostly new entries; sometimes an id that exists somewhere already,
     * with other content: a replayed append, or an origin that signed two
     * entries for one sequence number. Join must still agree everywhere. */
    op->dot.id = sc->ids[r];
    if (sc->seq[r] && jv_rng_chance(&sc->rng, 1, 6)) {
        unsigned o = (unsigned)below(sc, sc->nrep);
        if (sc->seq[o] == 0)
            o = r;
        op->dot.id = sc->ids[o];
        op->dot.n = 1 + below(sc, sc->seq[o]);
    } else {
        op->dot.n = ++sc->seq[r];
    }
    op->effective = jv_audit_find(s, &op->dot) == NULL;
    jv_err err = jv_audit_append(s, &op->dot, op->stamp, jv_str_c(op->text[0]),
                                 jv_str_c(op->text[1]), jv_str_c(op->text[2]),
                                 jv_str_c(op->text[3]), delta);
    if (err == JV_OK && !op->effective) {
        /* The delta is the entry the replica already had. */
        const jv_audit *d = delta;
        CHECK(sc, d->n == 1 && jv_dot_cmp(&d->e[0].id, &op->dot) == 0);
    }
    return err;
}
static int text_cmp(const op_rec *a, const op_rec *b)
{
    if (a->stamp != b->stamp)
        return a->stamp < b->stamp ? -1 : 1;
    for (int f = 0; f < 4; f++) {
        int c = jv_str_cmp(jv_str_c(a->text[f]), jv_str_c(b->text[f]));
        if (c)
            return c;
    }
    return 0;
}
static void au_check(sched *sc, const void *s)
{
    const jv_audit *a = s;
    size_t ids = 0;
    for (size_t i = 0; i < sc->nops; i++) {
        const op_rec *op = &sc->ops[i], *best = NULL;
        bool first = true;
        for (size_t j = 0; j < sc->nops; j++) {
            if (!sc->ops[j].effective ||
                jv_dot_cmp(&sc->ops[j].dot, &op->dot) != 0)
                continue;
            if (j < i)
                first = false;
            if (!best || text_cmp(&sc->ops[j], best) < 0)
                best = &sc->ops[j];
        }
        if (!first || !best)
            continue;
        ids++;
        /* An id carries the content that orders first among those that
         * were ever appended for it. */
        const jv_audit_entry *e = jv_audit_find(a, &op->dot);
        CHECK(sc, e != NULL);
        CHECK(sc, e->time_ms == best->stamp);
        CHECK(sc, strcmp(e->actor, best->text[0]) == 0);
        CHECK(sc, strcmp(e->action, best->text[1]) == 0);
        CHECK(sc, strcmp(e->target, best->text[2]) == 0);
        CHECK(sc, strcmp(e->detail, best->text[3]) == 0);
    }
    CHECK(sc, a->n == ids);
}

static const crdt_type au_type = {
    "audit",   sizeof(jv_audit), au_init,  au_fini,   au_join,
    au_encode, au_decode,        au_equal, au_mutate, au_check,
};

/* ---- LWW map ----------------------------------------------------------- */

static void lw_init(void *s)
{
    jv_lwwmap_init(s);
}
static void lw_fini(void *s)
{
    jv_lwwmap_fini(s);
}
static jv_err lw_join(void *d, const void *s)
{
    return jv_lwwmap_join(d, s);
}
static jv_err lw_encode(const void *s, jv_buf *b)
{
    return jv_lwwmap_encode(s, b);
}
static jv_err lw_decode(const void *p, size_t n, void *out)
{
    return jv_lwwmap_decode(p, n, out);
}
static bool lw_equal(const void *a, const void *b)
{
    return jv_lwwmap_equal(a, b);
}
static void random_key(sched *sc, char key[2])
{
    key[0] = (char)('a' + below(sc, NKEYS));
    key[1] = '\0';
}
static void random_val(sched *sc, op_rec *op)
{
    op->vlen = below(sc, 3);
    for (size_t i = 0; i < op->vlen; i++)
        op->val[i] = (uint8_t)below(sc, 3);
}
static jv_err lw_mutate(sched *sc, unsigned r, void *s, void *delta)
{
    op_rec *op = &sc->ops[sc->nops];
    op->rep = r;
    /* Few stamps, so that equal stamps from different replicas (and even
     * from one) are common. */
    op->stamp = 1 + below(sc, 3);
    random_key(sc, op->key);
    random_val(sc, op);
    return jv_lwwmap_set(s, jv_str_c(op->key), op->val, op->vlen, op->stamp,
                         &sc->ids[r], delta);
}
static jv_lww_reg op_reg(const sched *sc, op_rec *op)
{
    jv_lww_reg g = {op->stamp, sc->ids[op->rep], op->val, op->vlen};
    return g;
}
static void lw_check(sched *sc, const void *s)
{
    const jv_lwwmap *m = s;
    size_t keys = 0;
    for (int k = 0; k < NKEYS; k++) {
        char key[2] = {(char)('a' + k), 0};
        op_rec *best = NULL;
        for (size_t i = 0; i < sc->nops; i++) {
            op_rec *op = &sc->ops[i];
            if (strcmp(op->key, key) != 0)
                continue;
            jv_lww_reg g = op_reg(sc, op), b;
            if (best)
                b = op_reg(sc, best);
            if (!best || jv_lww_cmp(&g, &b) > 0)
                best = op;
        }
        const jv_lww_reg *got = jv_lwwmap_get(m, jv_str_c(key));
        if (!best) {
            CHECK(sc, got == NULL);
            continue;
        }
        keys++;
        /* (e) The winner is the greatest (stamp, replica, value) whatever
         * the order the writes arrived in. */
        jv_lww_reg want = op_reg(sc, best);
        CHECK(sc, got != NULL && jv_lww_cmp(got, &want) == 0);
        for (size_t i = 0; i < sc->nops; i++)
            if (sc->ops[i].rep != best->rep &&
                strcmp(sc->ops[i].key, key) == 0 &&
                sc->ops[i].stamp == best->stamp)
                lww_ties++;
    }
    CHECK(sc, m->n == keys);
}

static const crdt_type lw_type = {
    "lww",     sizeof(jv_lwwmap), lw_init,  lw_fini,   lw_join,
    lw_encode, lw_decode,         lw_equal, lw_mutate, lw_check,
};

/* ---- OR-Set ------------------------------------------------------------ */

static void or_init(void *s)
{
    jv_orset_init(s);
}
static void or_fini(void *s)
{
    jv_orset_fini(s);
}
static jv_err or_join(void *d, const void *s)
{
    return jv_orset_join(d, s);
}
static jv_err or_encode(const void *s, jv_buf *b)
{
    return jv_orset_encode(s, b);
}
static jv_err or_decode(const void *p, size_t n, void *out)
{
    return jv_orset_decode(p, n, out);
}
static bool or_equal(const void *a, const void *b)
{
    return jv_orset_equal(a, b);
}
static jv_err or_mutate(sched *sc, unsigned r, void *s, void *delta)
{
    op_rec *op = &sc->ops[sc->nops];
    op->rep = r;
    random_key(sc, op->key);
    const jv_orset_entry *e = jv_orset_get(s, jv_str_c(op->key));
    op->nobs = 0;
    if (e) {
        if (e->nv > MAX_OBS)
            return JV_ETOOBIG;
        for (size_t i = 0; i < e->nv; i++)
            op->observed[op->nobs++] = e->v[i].dot;
    }
    if (jv_rng_chance(&sc->rng, 2, 5)) {
        op->kind = 1;
        jv_err err = jv_orset_remove(s, jv_str_c(op->key), delta);
        CHECK(sc, (err == JV_ENOTFOUND) == (e == NULL));
        return err;
    }
    op->kind = 0;
    op->stamp = below(sc, 3);
    random_val(sc, op);
    jv_err err = jv_orset_add(s, &sc->ids[r], jv_str_c(op->key), op->val,
                              op->vlen, op->stamp, delta, &op->dot);
    if (err == JV_OK) {
        CHECK(sc, jv_id_eq(&op->dot.id, &sc->ids[r]));
        /* The new value is the only one this replica now holds for key. */
        e = jv_orset_get(s, jv_str_c(op->key));
        CHECK(sc, e && e->nv == 1 && jv_dot_cmp(&e->v[0].dot, &op->dot) == 0);
    }
    return err;
}
static void or_check(sched *sc, const void *s)
{
    const jv_orset *o = s;
    size_t live = 0, total = 0;
    /* Model: an add survives unless an operation observed it. */
    for (size_t i = 0; i < sc->nops; i++) {
        const op_rec *op = &sc->ops[i];
        if (op->kind != 0)
            continue;
        bool removed = false;
        for (size_t j = 0; j < sc->nops && !removed; j++)
            for (size_t k = 0; k < sc->ops[j].nobs; k++)
                if (jv_dot_cmp(&sc->ops[j].observed[k], &op->dot) == 0)
                    removed = true;
        const jv_orset_entry *e = jv_orset_get(o, jv_str_c(op->key));
        const jv_orset_val *v = NULL;
        for (size_t k = 0; e && k < e->nv; k++)
            if (jv_dot_cmp(&e->v[k].dot, &op->dot) == 0)
                v = &e->v[k];
        CHECK(sc, (v != NULL) == !removed);
        if (v) {
            live++;
            CHECK(sc,
                  v->stamp == op->stamp && v->len == op->vlen &&
                      (v->len == 0 || memcmp(v->value, op->val, v->len) == 0));
        }
    }
    for (size_t i = 0; i < o->n; i++)
        total += o->e[i].nv;
    CHECK(sc, total == live);
    /* (d) No tombstones: once everything is delivered the context is a
     * version vector, one entry per replica that added something. */
    CHECK(sc, o->ctx.ncloud == 0);
    CHECK(sc, o->ctx.compact.n <= sc->nrep);
    for (unsigned r = 0; r < sc->nrep; r++) {
        uint64_t adds = 0;
        for (size_t i = 0; i < sc->nops; i++)
            adds += sc->ops[i].kind == 0 && sc->ops[i].rep == r;
        CHECK(sc, jv_vv_get(&o->ctx.compact, &sc->ids[r]) == adds);
    }
}

static const crdt_type or_type = {
    "orset",   sizeof(jv_orset), or_init,  or_fini,   or_join,
    or_encode, or_decode,        or_equal, or_mutate, or_check,
};

/* (d) add wins, directly: two replicas share a key; one removes it while
 * the other re-adds it; whatever order the deltas cross in, the key stays,
 * with the re-added value, at both. */
static void add_wins_schedule(const void *arg, uint64_t base, uint64_t index)
{
    (void)arg;
    sched sc_, *sc = &sc_;
    memset(sc, 0, sizeof(*sc));
    sc->type = "orset add-wins";
    sc->index = index;
    sc->seed = schedule_seed(base ^ 0xadd0000001ull, index);
    jv_rng_seed(&sc->rng, sc->seed);
    jv_id a = jv_test_id(0), b = jv_test_id(1 + (unsigned)below(sc, 5));
    jv_orset x, y, dx, dy, tmp;
    jv_orset_init(&x);
    jv_orset_init(&y);
    jv_orset_init(&dx);
    jv_orset_init(&dy);
    jv_orset_init(&tmp);
    jv_str key = jv_str_c("k");
    /* Some shared history on the key, by either side. */
    size_t rounds = 1 + below(sc, 3);
    for (size_t i = 0; i < rounds; i++) {
        jv_orset *who = jv_rng_chance(&sc->rng, 1, 2) ? &x : &y;
        const jv_id *id = who == &x ? &a : &b;
        CHECK_OK(
            sc, jv_orset_add(who, id, key, "old", 3, below(sc, 5), &tmp, NULL));
        CHECK_OK(sc, jv_orset_join(&x, who));
        CHECK_OK(sc, jv_orset_join(&y, who));
    }
    jv_dot d;
    uint64_t stamp = below(sc, 5);
    CHECK_OK(sc, jv_orset_add(&x, &a, key, "new", 3, stamp, &dx, &d));
    CHECK_OK(sc, jv_orset_remove(&y, key, &dy));
    CHECK(sc, jv_orset_get(&y, key) == NULL);
    if (jv_rng_chance(&sc->rng, 1, 2)) {
        CHECK_OK(sc, jv_orset_join(&x, &dy));
        CHECK_OK(sc, jv_orset_join(&y, &dx));
    } else {
        CHECK_OK(sc, jv_orset_join(&y, &dx));
        CHECK_OK(sc, jv_orset_join(&x, &dy));
    }
    CHECK(sc, jv_orset_equal(&x, &y));
    const jv_orset_entry *e = jv_orset_get(&x, key);
    CHECK(sc, e != NULL && e->nv == 1);
    CHECK(sc, jv_dot_cmp(&e->v[0].dot, &d) == 0 && e->v[0].len == 3 &&
                  memcmp(e->v[0].value, "new", 3) == 0);
    CHECK(sc, x.ctx.ncloud == 0);
    jv_orset_fini(&x);
    jv_orset_fini(&y);
    jv_orset_fini(&dx);
    jv_orset_fini(&dy);
    jv_orset_fini(&tmp);
}

/* ---- HLC --------------------------------------------------------------- */

/* (f) Random walks of the wall clock, with stalls and steps back, mixed with
 * remote stamps near and beyond the skew bound. */
static void hlc_schedule(const void *arg, uint64_t base, uint64_t index)
{
    (void)arg;
    sched sc_, *sc = &sc_;
    memset(sc, 0, sizeof(*sc));
    sc->type = "hlc";
    sc->index = index;
    sc->seed = schedule_seed(base ^ 0x41c0000001ull, index);
    jv_rng_seed(&sc->rng, sc->seed);
    uint64_t skew = below(sc, 3) * 500, wall = 1 + below(sc, 1ull << 42);
    uint64_t prev = 0;
    jv_hlc c;
    jv_hlc_init(&c, skew);
    size_t steps = 8 + below(sc, 24);
    for (size_t i = 0; i < steps; i++) {
        switch (below(sc, 4)) {
        case 0:
            wall += below(sc, 3); /* stall or crawl */
            break;
        case 1:
            wall -= below(sc, wall < 2000 ? wall : 2000); /* step back */
            break;
        default:
            wall += below(sc, 50);
        }
        if (jv_rng_chance(&sc->rng, 1, 3)) {
            /* A remote stamp: behind, near, or past the bound. */
            uint64_t span = 2 * skew + 40, off = below(sc, span);
            uint64_t ms = wall + off > skew ? wall + off - skew : 0;
            uint64_t remote = jv_hlc_make(ms, (uint16_t)below(sc, 1u << 16));
            jv_hlc before = c;
            jv_err err = jv_hlc_observe(&c, wall, remote);
            CHECK(sc, err == jv_hlc_check(&c, wall, remote));
            if (ms > wall + skew) {
                CHECK(sc, err == JV_ESKEW);
                CHECK(sc, memcmp(&before, &c, sizeof(c)) == 0);
            } else {
                CHECK(sc, err == JV_OK);
                CHECK(sc,
                      c.last == (remote > before.last ? remote : before.last));
            }
            continue;
        }
        uint64_t st;
        uint64_t last = c.last;
        CHECK_OK(sc, jv_hlc_now(&c, wall, &st));
        /* Never backwards, ahead of everything seen, and never behind the
         * wall clock. */
        CHECK(sc, st > prev && st > last);
        CHECK(sc, jv_hlc_ms(st) >= wall);
        CHECK(sc, c.last == st);
        prev = st;
    }
}

/* ---- tests ------------------------------------------------------------- */

static void test_vv(void **state)
{
    (void)state;
    run_all(vv_type.name, type_schedule, &vv_type);
}

static void test_gcounter(void **state)
{
    (void)state;
    run_all(gc_type.name, type_schedule, &gc_type);
}

static void test_pncounter(void **state)
{
    (void)state;
    run_all(pn_type.name, type_schedule, &pn_type);
}

static void test_audit(void **state)
{
    (void)state;
    run_all(au_type.name, type_schedule, &au_type);
}

static void test_lww(void **state)
{
    (void)state;
    lww_ties = 0;
    uint64_t n = run_all(lw_type.name, type_schedule, &lw_type);
    /* The tie rule was exercised, not just present. */
    if (n >= 100)
        assert_true(lww_ties > 0);
    printf("lww: %" PRIu64 " stamp ties resolved\n", lww_ties);
}

static void test_orset(void **state)
{
    (void)state;
    run_all(or_type.name, type_schedule, &or_type);
}

static void test_orset_add_wins(void **state)
{
    (void)state;
    run_all("orset add-wins", add_wins_schedule, NULL);
}

static void test_hlc(void **state)
{
    (void)state;
    run_all("hlc", hlc_schedule, NULL);
}

int main(void)
{
    jv_test_seed();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vv),
        cmocka_unit_test(test_gcounter),
        cmocka_unit_test(test_pncounter),
        cmocka_unit_test(test_audit),
        cmocka_unit_test(test_lww),
        cmocka_unit_test(test_orset),
        cmocka_unit_test(test_orset_add_wins),
        cmocka_unit_test(test_hlc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
