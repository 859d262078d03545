/*
 * prop_test.c - the storage path against the CRDT model.
 *
 * storage/apply.c decides merges in SQL (counter shares by max, the LWW
 * order through jv_lww_after, the OR-Set's dots and causal context in
 * tables); crdt/ holds the types whose laws tests/crdt/laws_test.c proves.
 * This suite ties the two: random schedules drive the real storage path
 * and every store's state must be exactly what the crdt/ types make of the
 * same operations.
 *
 * A schedule opens 3-5 in-memory stores (one node id each) and interleaves
 *   - writes: random intents of every kind (counter increments and
 *     decrements, some of 2^62 so totals leave 64 bits; audit appends;
 *     config sets with stamps drawn from 3 values, so LWW ties happen;
 *     archive adds and removes), one or two per jv_store_commit_local,
 *     mostly of the schedule's type;
 *   - deliveries: a random handful of the batches made so far (with
 *     duplicates, any order, so gaps are held aside and released later;
 *     what is not picked is lost until the end) through one
 *     jv_store_apply call;
 *   - trust: stores that require trusted origins hold other origins'
 *     batches until they write a trust entry for them;
 *   - a check of one store, mid-schedule, against the model of the batches
 *     its vector covers (partial states: a remove before its add...);
 *   - in one schedule of 64: compaction of a store's whole log into its
 *     base, and one store's signed snapshot installed into another (a
 *     CRDT join), at random and once before the end.
 * At the end every store trusts every origin and is sent every batch
 * (resend after loss), must hold nothing aside and have every batch, and
 * is compared with the model of all batches: every counter total (exact,
 * 128 bits) and share, the audit set entry by entry, every LWW register
 * (value, stamp, writer), every live OR-Set value, the value shown per key
 * and the causal context (vector and cloud). The OR-Set is also checked
 * without the model: a value is live iff no operation covers its dot
 * (add wins over every remove that did not observe it).
 *
 * The run prints how often the interesting cases happened (LWW ties, gaps
 * released, untrusted batches released, removes applied before their add,
 * adds that survived a concurrent remove, totals beyond 64 bits) and fails
 * if any never did.
 *
 * Schedule i of type t runs from seed  base + i * 0x9e3779b97f4a7c15 ^ salt
 * (base printed). A failure prints how to replay it:
 *   JV_SEED=<base> JV_SCHEDULE=<i>     that schedule alone
 *   JV_SCHEDULES=<n>                   n schedules per type (default 10000;
 *                                      DEFAULT_SCHEDULES_SAN under ASan)
 */
#include "storetest.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backup.h"
#include "snapshot.h"
#include "gcounter.h"
#include "lww.h"
#include "model.h"
#include "orset.h"
#include "store_int.h"
#include "testutil.h"

#if defined(__SANITIZE_ADDRESS__)
#define JV_PROP_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define JV_PROP_SANITIZED 1
#endif
#endif

#define DEFAULT_SCHEDULES     10000
#define DEFAULT_SCHEDULES_SAN 1000
#define MAX_REP               5
#define MAX_POOL              96
#define MAX_EVENTS            11

enum {
    T_COUNTER,
    T_AUDIT,
    T_CONFIG,
    T_ARCHIVE,
    T_N
};
static const char *const type_names[T_N] = {"counter", "audit", "config",
                                            "archive"};

/* How often the cases worth proving happened, over the whole run. */
static struct {
    uint64_t lww_ties, gaps_released, trust_released, rm_before_add,
        add_survived, wide_totals, dups, checks, compactions, snapshots;
} seen;

typedef struct {
    jv_store *st;
    jv_keypair kp;
    bool require_trust;
} rep;

typedef struct {
    int type;
    uint64_t index, seed;
    jv_rng rng;
    unsigned nrep;
    rep r[MAX_REP];
    st_batch pool[MAX_POOL];
    /* Per pool batch: each origin's applied seq at its writer when it was
     * written (what the write had seen). */
    uint64_t seen_at[MAX_POOL][MAX_REP];
    size_t npool;
    uint64_t hlc;
} sched;

static jv_keypair node_keys[MAX_REP];
static uint64_t schedules_run;

static void fail_at(const sched *sc, const char *what, const char *file,
                    int line)
{
    print_error("%s: schedule %" PRIu64 " (seed %" PRIu64 ") failed: %s\n"
                "replay: JV_SEED=%" PRIu64 " JV_SCHEDULE=%" PRIu64 "\n",
                type_names[sc->type], sc->index, sc->seed, what, jv_test_seed(),
                sc->index);
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

static bool chance(sched *sc, unsigned num, unsigned den)
{
    return jv_rng_chance(&sc->rng, num, den);
}

/* Index of the replica with id, or MAX_REP. */
static unsigned rep_of(const sched *sc, const jv_id *id)
{
    for (unsigned i = 0; i < sc->nrep; i++)
        if (jv_id_eq(&sc->r[i].kp.pk, id))
            return i;
    return MAX_REP;
}

/* ---- the model (storage/model.h) --------------------------------------- */

static void model_batch(const sched *sc, jv_model *m, const jv_batch *b)
{
    CHECK_OK(sc, jv_model_batch(m, b));
}

typedef struct {
    const sched *sc;
    jv_model *m;
    size_t n;
} log_model;

static jv_err model_log_row(void *arg, const jv_log_row *r)
{
    log_model *lm = arg;
    jv_batch b;
    memset(&b, 0, sizeof(b));
    CHECK_OK(lm->sc, jv_batch_decode(r->body, r->len, &b));
    model_batch(lm->sc, lm->m, &b);
    jv_batch_fini(&b);
    lm->n++;
    return JV_OK;
}

/* The store against the model: the first difference fails the schedule
 * with what it is. */
static void compare(const sched *sc, jv_store *st, const jv_model *m)
{
    char msg[512];
    jv_err err = jv_model_compare(st, m, msg, sizeof(msg));
    if (err != JV_OK)
        fail_at(sc, msg, __FILE__, __LINE__);
    for (size_t i = 0; i < m->nc; i++) {
        jv_count total;
        int64_t small;
        jv_pncounter_count(&m->c[i].pn, &total);
        if (jv_count_i64(&total, INT64_MIN, INT64_MAX, &small) != JV_OK)
            seen.wide_totals++;
    }
    seen.checks++;
}

/* The model of the batches st has applied. Read from its log, or, since
 * compaction deletes batches the base covers and a snapshot join brings
 * state without them, from the pool: every batch made whose sequence
 * numbers st's version vector covers. Both are checked to agree on what
 * the log still holds. Returns how many batches that is. */
static size_t check_store(const sched *sc, jv_store *st)
{
    jv_model m;
    jv_vv vv;
    size_t n = 0;
    jv_model_init(&m);
    jv_vv_init(&vv);
    log_model lm = {sc, NULL, 0};
    jv_model none;
    jv_model_init(&none);
    lm.m = &none;
    CHECK_OK(sc, jv_store_log_scan(st, model_log_row, &lm));
    jv_model_fini(&none);
    CHECK_OK(sc, jv_store_vv(st, &vv));
    for (size_t i = 0; i < sc->npool; i++) {
        const jv_batch *b = &sc->pool[i].dec;
        if (jv_batch_last_seq(b) > jv_vv_get(&vv, &b->origin))
            continue;
        model_batch(sc, &m, b);
        n++;
    }
    CHECK(sc, lm.n <= n);
    compare(sc, st, &m);
    jv_model_fini(&m);
    jv_vv_fini(&vv);
    return n;
}

/* ---- events -------------------------------------------------------------- */

#define STAMP(i) (((uint64_t)200000 + (i)) << 16)

static const char *const counter_names[] = {"a", "b"};
static const char *const keys[] = {"k", "m"};
static const char *const values[] = {"1", "2", "\"x\""};
static const char *const actors[] = {"al", "bo"};

typedef struct {
    sched *sc;
    unsigned writer;
} collect_ctx;

static jv_err collect(void *arg, const jv_log_row *r)
{
    collect_ctx *cc = arg;
    sched *sc = cc->sc;
    CHECK(sc, sc->npool < MAX_POOL);
    st_batch_from_row(&sc->pool[sc->npool], r);
    bool adds = false;
    for (uint32_t k = 0; k < sc->pool[sc->npool].dec.nops; k++)
        adds |= sc->pool[sc->npool].dec.ops[k].kind == JV_OP_ARCHIVE_ADD;
    for (unsigned i = 0; adds && i < sc->nrep; i++) {
        uint8_t h[JV_HASH_LEN];
        CHECK_OK(sc, jv_store_origin_head(sc->r[cc->writer].st, &sc->r[i].kp.pk,
                                          &sc->seen_at[sc->npool][i], h));
    }
    sc->npool++;
    return JV_OK;
}

/* Commits the intents at replica w and adds the batches made to the pool.
 * Failures a write group may have (remove of an absent key, a share at its
 * bound) leave no batch. */
static void commit(sched *sc, unsigned w, jv_intent *in, size_t n)
{
    rep *r = &sc->r[w];
    jv_write_group g = {.intents = in, .n = n};
    jv_commit_info ci;
    sc->hlc++;
    CHECK_OK(sc, jv_store_commit_local(r->st, &r->kp, sc->hlc, &g, 1, &ci));
    if (g.result != JV_OK && g.result != JV_ENOTFOUND &&
        g.result != JV_EOVERFLOW)
        fail_at(sc, jv_store_errmsg(r->st), __FILE__, __LINE__);
    if (g.result != JV_OK) {
        CHECK(sc, ci.nbatches == 0);
        return;
    }
    CHECK(sc, ci.nbatches == 1);
    collect_ctx cc = {sc, w};
    CHECK_OK(sc, jv_store_log_after(r->st, &r->kp.pk, ci.first_seq - 1, 16,
                                    (size_t)1 << 30, collect, &cc));
}

static jv_intent random_intent(sched *sc, int kind)
{
    switch (kind) {
    case T_COUNTER: {
        int64_t by =
            chance(sc, 1, 4) ? (int64_t)1 << 62 : (int64_t)(1 + below(sc, 5));
        return st_counter(counter_names[below(sc, 2)],
                          chance(sc, 1, 3) ? -by : by);
    }
    case T_AUDIT:
        return st_audit(1 + below(sc, 3) * 60000, actors[below(sc, 2)],
                        actors[below(sc, 2)], "t", chance(sc, 1, 2) ? "" : "d");
    case T_CONFIG:
        return st_config(keys[below(sc, 2)], values[below(sc, 3)],
                         STAMP(below(sc, 3)));
    default:
        if (chance(sc, 1, 3))
            return st_rm(keys[below(sc, 2)]);
        return st_add(keys[below(sc, 2)], values[below(sc, 3)],
                      STAMP(below(sc, 3)));
    }
}

static void write_event(sched *sc)
{
    jv_intent in[2];
    size_t n = chance(sc, 1, 4) ? 2 : 1;
    for (size_t i = 0; i < n; i++)
        in[i] = random_intent(sc, chance(sc, 3, 4) ? sc->type
                                                   : (int)below(sc, T_N));
    commit(sc, (unsigned)below(sc, sc->nrep), in, n);
}

static jv_err count_held(void *arg, const jv_held_row *r)
{
    (void)r;
    (*(size_t *)arg)++;
    return JV_OK;
}

/* Replica w trusts the n others: the batches it held for them are
 * released. */
static void trust(sched *sc, unsigned w, const unsigned *other, size_t n)
{
    jv_intent in[MAX_REP];
    for (size_t i = 0; i < n; i++)
        in[i] = st_trust(&sc->r[other[i]].kp.pk, true, sc->hlc + 1, "peer");
    size_t before = 0, after = 0;
    CHECK_OK(sc, jv_store_held_list(sc->r[w].st, count_held, &before));
    commit(sc, w, in, n);
    CHECK_OK(sc, jv_store_held_list(sc->r[w].st, count_held, &after));
    seen.trust_released += before - after;
}

/* A replica that requires trust trusts one more origin. */
static void trust_event(sched *sc)
{
    unsigned w = (unsigned)below(sc, sc->nrep);
    unsigned o = (unsigned)below(sc, sc->nrep);
    bool t;
    if (!sc->r[w].require_trust || o == w)
        return;
    CHECK_OK(sc, jv_store_is_trusted(sc->r[w].st, &sc->r[o].kp.pk, &t));
    if (!t)
        trust(sc, w, &o, 1);
}

/* The pool's archive add with dot d: its index and seq, or false. */
static bool add_of(const sched *sc, const jv_dot *d, size_t *at, uint64_t *seq)
{
    for (size_t i = 0; i < sc->npool; i++) {
        const jv_batch *b = &sc->pool[i].dec;
        if (!jv_id_eq(&b->origin, &d->id))
            continue;
        for (uint32_t k = 0; k < b->nops; k++)
            if (b->ops[k].kind == JV_OP_ARCHIVE_ADD &&
                b->ops[k].add.dot_n == d->n) {
                *at = i;
                *seq = b->first_seq + k;
                return true;
            }
    }
    return false;
}

/* Counts removes that a store applied before the add they cover. */
static void note_early_removes(sched *sc, jv_store *st, const jv_batch *b)
{
    for (uint32_t k = 0; k < b->nops; k++) {
        const jv_op *op = &b->ops[k];
        const jv_dot *rm = op->kind == JV_OP_ARCHIVE_RM    ? op->rm.removes
                           : op->kind == JV_OP_ARCHIVE_ADD ? op->add.removes
                                                           : NULL;
        size_t n = op->kind == JV_OP_ARCHIVE_RM    ? op->rm.nremoves
                   : op->kind == JV_OP_ARCHIVE_ADD ? op->add.nremoves
                                                   : 0;
        for (size_t i = 0; i < n && rm; i++) {
            size_t at;
            uint64_t seq, head;
            uint8_t h[JV_HASH_LEN];
            if (!add_of(sc, &rm[i], &at, &seq))
                continue;
            CHECK_OK(sc, jv_store_origin_head(st, &rm[i].id, &head, h));
            seen.rm_before_add += head < seq;
        }
    }
}

/* Sends a batch list to replica t in one jv_store_apply call. */
static void send_to(sched *sc, unsigned t, const size_t *idx, size_t n)
{
    jv_store_batch sb[16] = {{0}};
    jv_err res[16];
    jv_apply_stats stats;
    rep *r = &sc->r[t];
    CHECK(sc, n <= 16);
    for (size_t i = 0; i < n; i++)
        sb[i] = st_sb(&sc->pool[idx[i]]);
    CHECK_OK(sc, jv_store_apply(r->st, sb, n,
                                r->require_trust ? JV_APPLY_REQUIRE_TRUST : 0,
                                res, &stats));
    for (size_t i = 0; i < n; i++) {
        CHECK(sc, res[i] == JV_OK || res[i] == JV_EDUP || res[i] == JV_EGAP ||
                      res[i] == JV_EUNTRUSTED);
        CHECK(sc, res[i] != JV_EUNTRUSTED || r->require_trust);
        seen.dups += res[i] == JV_EDUP;
        if (res[i] == JV_OK)
            note_early_removes(sc, r->st, sb[i].batch);
    }
    seen.gaps_released += stats.released;
}

/* Compaction of one store (its whole log, as if every peer held it):
 * its state must not change. */
static void compact_event(sched *sc)
{
    rep *r = &sc->r[below(sc, sc->nrep)];
    jv_vv vv;
    jv_compact_stats cs;
    jv_vv_init(&vv);
    CHECK_OK(sc, jv_store_vv(r->st, &vv));
    CHECK_OK(sc, jv_store_compact(r->st, &r->kp, &vv, INT64_MAX, &cs));
    seen.compactions += cs.built;
    jv_vv_fini(&vv);
}

/* One store's state, as its signed snapshot, installed into another that
 * trusts it: a CRDT join with whatever the other holds. */
static void snapshot_event(sched *sc)
{
    unsigned s = (unsigned)below(sc, sc->nrep);
    unsigned t = (s + 1 + (unsigned)below(sc, sc->nrep - 1)) % sc->nrep;
    bool trusted;
    CHECK_OK(sc, jv_store_is_trusted(sc->r[t].st, &sc->r[s].kp.pk, &trusted));
    if (!trusted)
        trust(sc, t, &s, 1); /* an untrusted maker is refused (snapshot_test) */
    jv_buf enc;
    jv_snap_info info;
    char msg[256];
    jv_buf_init(&enc);
    CHECK_OK(sc, jv_snap_encode(sc->r[s].st, &enc));
    memset(&info, 0, sizeof(info));
    info.maker = sc->r[s].kp.pk;
    info.bytes = enc.len;
    jv_snap_digest(enc.data, enc.len, info.digest);
    jv_snap_sign(info.digest, &sc->r[s].kp, info.sig);
    jv_err err = jv_store_snap_install(sc->r[t].st, &sc->r[t].kp, enc.data,
                                       enc.len, &info, msg, sizeof(msg));
    if (err)
        fail_at(sc, msg, __FILE__, __LINE__);
    seen.snapshots++;
    jv_buf_fini(&enc);
}

static void deliver_event(sched *sc)
{
    if (sc->npool == 0)
        return;
    size_t idx[8], n = 1 + below(sc, 8);
    for (size_t i = 0; i < n; i++)
        idx[i] = below(sc, sc->npool);
    send_to(sc, (unsigned)below(sc, sc->nrep), idx, n);
}

/* Every store trusts every origin and gets every batch, in random order
 * and chunks, until nothing is held and every log is complete. */
static void converge(sched *sc)
{
    for (unsigned w = 0; w < sc->nrep; w++) {
        if (!sc->r[w].require_trust)
            continue;
        unsigned other[MAX_REP];
        size_t n = 0;
        for (unsigned o = 0; o < sc->nrep; o++) {
            bool t;
            CHECK_OK(sc, jv_store_is_trusted(sc->r[w].st, &sc->r[o].kp.pk, &t));
            if (!t)
                other[n++] = o;
        }
        if (n)
            trust(sc, w, other, n);
    }
    size_t order[MAX_POOL];
    for (unsigned t = 0; t < sc->nrep; t++) {
        for (int round = 0;; round++) {
            CHECK(sc, round < 3);
            /* What t lacks (lost, or held and sent again), and a few it
             * has: duplicates. */
            jv_vv vv;
            jv_vv_init(&vv);
            CHECK_OK(sc, jv_store_vv(sc->r[t].st, &vv));
            size_t n = 0, missing = 0;
            for (size_t i = 0; i < sc->npool; i++) {
                bool lacks = jv_batch_last_seq(&sc->pool[i].dec) >
                             jv_vv_get(&vv, &sc->pool[i].dec.origin);
                missing += lacks;
                if (lacks || chance(sc, 1, 8))
                    order[n++] = i;
            }
            jv_vv_fini(&vv);
            if (missing == 0)
                break;
            jv_rng_shuffle(&sc->rng, order, n, sizeof(order[0]));
            for (size_t i = 0; i < n;) {
                size_t k = 1 + below(sc, 16);
                if (k > n - i)
                    k = n - i;
                send_to(sc, t, &order[i], k);
                i += k;
            }
        }
    }
}

/* ---- the independent OR-Set check --------------------------------------- */

static bool covered(const sched *sc, const jv_dot *d)
{
    for (size_t i = 0; i < sc->npool; i++) {
        const jv_batch *b = &sc->pool[i].dec;
        for (uint32_t k = 0; k < b->nops; k++) {
            const jv_op *op = &b->ops[k];
            const jv_dot *rm =
                op->kind == JV_OP_ARCHIVE_RM ? op->rm.removes : op->add.removes;
            size_t n = op->kind == JV_OP_ARCHIVE_RM    ? op->rm.nremoves
                       : op->kind == JV_OP_ARCHIVE_ADD ? op->add.nremoves
                                                       : 0;
            for (size_t j = 0; j < n; j++)
                if (jv_dot_cmp(&rm[j], d) == 0)
                    return true;
        }
    }
    return false;
}

/* A remove of key in the pool that the add at pool[at] had not seen and
 * that did not see the add: they are concurrent. */
static bool concurrent_remove(const sched *sc, size_t at, jv_str key)
{
    for (size_t i = 0; i < sc->npool; i++) {
        const jv_batch *b = &sc->pool[i].dec;
        unsigned o = rep_of(sc, &b->origin);
        if (jv_id_eq(&b->origin, &sc->pool[at].dec.origin))
            continue;
        for (uint32_t k = 0; k < b->nops; k++)
            if (b->ops[k].kind == JV_OP_ARCHIVE_RM &&
                jv_str_eq(b->ops[k].rm.key, key) &&
                sc->seen_at[at][o] < b->first_seq + k)
                return true;
    }
    return false;
}

/* Add wins, without the model: every add's value is live iff no operation
 * covers its dot. */
static void check_add_wins(sched *sc)
{
    jv_model m;
    jv_model_init(&m);
    for (size_t i = 0; i < sc->npool; i++)
        model_batch(sc, &m, &sc->pool[i].dec);
    for (size_t i = 0; i < sc->npool; i++) {
        const jv_batch *b = &sc->pool[i].dec;
        for (uint32_t k = 0; k < b->nops; k++) {
            if (b->ops[k].kind != JV_OP_ARCHIVE_ADD)
                continue;
            jv_dot d = {b->origin, b->ops[k].add.dot_n};
            bool live = false;
            const jv_orset_entry *e = jv_orset_get(&m.os, b->ops[k].add.key);
            for (size_t j = 0; e && j < e->nv; j++)
                live |= jv_dot_cmp(&e->v[j].dot, &d) == 0;
            CHECK(sc, live == !covered(sc, &d));
            if (live && concurrent_remove(sc, i, b->ops[k].add.key))
                seen.add_survived++;
        }
    }
    jv_model_fini(&m);
}

/* LWW ties: two registers of one key with one stamp from two writers. */
static void count_ties(sched *sc)
{
    for (size_t i = 0; i < sc->npool; i++)
        for (size_t j = i + 1; j < sc->npool; j++) {
            const jv_batch *a = &sc->pool[i].dec, *b = &sc->pool[j].dec;
            if (jv_id_eq(&a->origin, &b->origin))
                continue;
            for (uint32_t x = 0; x < a->nops; x++)
                for (uint32_t y = 0; y < b->nops; y++)
                    seen.lww_ties +=
                        a->ops[x].kind == JV_OP_CONFIG &&
                        b->ops[y].kind == JV_OP_CONFIG &&
                        a->ops[x].config.stamp == b->ops[y].config.stamp &&
                        jv_str_eq(a->ops[x].config.key, b->ops[y].config.key);
        }
}

/* ---- schedules ----------------------------------------------------------- */

/* One in-memory store per node key, opened once: preparing the schema and
 * the statements again for every schedule would cost more than the
 * schedule. Between schedules every replicated table is emptied (the node
 * id stays), which leaves the store as a fresh one of that node. */
static jv_store *stores[MAX_REP];

static const char *const wipe_sql[] = {
    "DELETE FROM replica",
    "DELETE FROM batch",
    "DELETE FROM vv",
    "DELETE FROM held",
    "DELETE FROM counter",
    "DELETE FROM audit",
    "DELETE FROM audit_minute",
    "DELETE FROM config",
    "DELETE FROM archive_entry",
    "DELETE FROM archive_span",
    "DELETE FROM ctx",
    "DELETE FROM ctx_cloud",
    "DELETE FROM trust",
    "DELETE FROM base",
    "DELETE FROM base_chunk",
    "DELETE FROM cut",
    "DELETE FROM succession",
};

static jv_store *open_mem(const jv_id *self)
{
    jv_store_opts o;
    jv_store *st = NULL;
    char msg[256];
    jv_store_opts_default(&o);
    o.create = true;
    jv_err err = jv_store_open(":memory:", &o, &st, msg, sizeof(msg));
    if (err)
        fail_msg("open :memory:: %s", msg);
    assert_int_equal(jv_store_set_self(st, self), JV_OK);
    return st;
}

static jv_store *fresh_store(const sched *sc, unsigned key)
{
    jv_store *st = stores[key];
    jv__tx tx;
    CHECK_OK(sc, jv__tx_begin(st, &tx));
    for (size_t i = 0; i < sizeof(wipe_sql) / sizeof(wipe_sql[0]); i++)
        CHECK_OK(sc, jv__exec(st, wipe_sql[i]));
    CHECK_OK(sc, jv__tx_commit(st, &tx));
    return st;
}

static void run_schedule(int type, uint64_t base, uint64_t index)
{
    static const uint64_t salt[T_N] = {0, 0xa0d17ull << 32, 0xc0f1ull << 32,
                                       0xa4c1ull << 32};
    sched *sc = calloc(1, sizeof(*sc));
    assert_non_null(sc);
    sc->type = type;
    sc->index = index;
    sc->seed = (base + index * 0x9e3779b97f4a7c15ull) ^ salt[type];
    jv_rng_seed(&sc->rng, sc->seed);
    sc->nrep = 3 + (unsigned)below(sc, 3);
    sc->hlc = STAMP(3);
    unsigned perm[MAX_REP] = {0, 1, 2, 3, 4};
    jv_rng_shuffle(&sc->rng, perm, MAX_REP, sizeof(perm[0]));
    for (unsigned i = 0; i < sc->nrep; i++) {
        sc->r[i].kp = node_keys[perm[i]];
        sc->r[i].require_trust = chance(sc, 1, 4);
        sc->r[i].st = fresh_store(sc, perm[i]);
    }
    /* One schedule in 64 mixes in compactions and snapshot installs: each
     * makes scratch databases, which is slow. */
    bool mixed = index % 64 == 0;
    size_t events = 4 + below(sc, MAX_EVENTS - 3);
    size_t mid = below(sc, events);
    for (size_t e = 0; e < events; e++) {
        uint64_t x = below(sc, 10);
        if (x < 5)
            write_event(sc);
        else if (x < 9)
            deliver_event(sc);
        else if (mixed && chance(sc, 1, 2))
            chance(sc, 1, 2) ? compact_event(sc) : snapshot_event(sc);
        else
            trust_event(sc);
        if (e == mid)
            check_store(sc, sc->r[below(sc, sc->nrep)].st);
    }
    if (mixed) {
        compact_event(sc);
        snapshot_event(sc);
    }
    converge(sc);
    for (unsigned i = 0; i < sc->nrep; i++)
        CHECK(sc, check_store(sc, sc->r[i].st) == sc->npool);
    if (index % 1024 == 0) {
        /* Now and then: the materialized state is the replay of the log
         * (verify replays it into a scratch database: slow). */
        jv_verify_report vr;
        CHECK_OK(sc, jv_store_verify(sc->r[below(sc, sc->nrep)].st, &vr));
        CHECK(sc, jv_verify_ok(&vr));
    }
    check_add_wins(sc);
    count_ties(sc);
    for (size_t i = 0; i < sc->npool; i++)
        st_batch_fini(&sc->pool[i]);
    free(sc);
}

static void run_type(int type)
{
    uint64_t base = jv_test_seed();
#ifdef JV_PROP_SANITIZED
    uint64_t n = jv_test_schedules(DEFAULT_SCHEDULES_SAN);
#else
    uint64_t n = jv_test_schedules(DEFAULT_SCHEDULES);
#endif
    uint64_t from = 0;
    const char *only = getenv("JV_SCHEDULE");
    if (only && *only) {
        from = strtoull(only, NULL, 0);
        n = from + 1;
    }
    for (uint64_t i = from; i < n; i++)
        run_schedule(type, base, i);
    printf("%s: %" PRIu64 " schedules passed\n", type_names[type], n - from);
    schedules_run += n - from;
}

/* The types to run: all, or the one named on the command line (CTest runs
 * one process per type, so that they can run side by side). */
static bool run_types[T_N] = {true, true, true, true};

static void test_schedules(void **state)
{
    int type = (int)(intptr_t)*state;
    if (run_types[type])
        run_type(type);
    else
        skip();
}

/* Every case the suite is meant to prove happened (in a run of the default
 * length: a short replay need not show them). */
static void test_cases_seen(void **state)
{
    (void)state;
    printf("seen: %" PRIu64 " store checks, %" PRIu64 " LWW ties, %" PRIu64
           " held batches released, %" PRIu64
           " released by a new trust, %" PRIu64 " duplicates, %" PRIu64
           " removes applied before their add, %" PRIu64
           " adds that survived a concurrent remove, %" PRIu64
           " totals beyond 64 bits, %" PRIu64 " compactions, %" PRIu64
           " snapshot installs\n",
           seen.checks, seen.lww_ties, seen.gaps_released, seen.trust_released,
           seen.dups, seen.rm_before_add, seen.add_survived, seen.wide_totals,
           seen.compactions, seen.snapshots);
    if (schedules_run < 1000)
        return;
    assert_true(seen.compactions > 0);
    assert_true(seen.snapshots > 0);
    assert_true(seen.gaps_released > 0);
    assert_true(seen.trust_released > 0);
    assert_true(seen.dups > 0);
    if (run_types[T_COUNTER])
        assert_true(seen.wide_totals > 0);
    if (run_types[T_CONFIG])
        assert_true(seen.lww_ties > 0);
    if (run_types[T_ARCHIVE]) {
        assert_true(seen.rm_before_add > 0);
        assert_true(seen.add_survived > 0);
    }
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        int t = 0;
        while (t < T_N && strcmp(argv[1], type_names[t]) != 0)
            t++;
        if (t == T_N) {
            fprintf(stderr, "usage: %s [counter|audit|config|archive]\n",
                    argv[0]);
            return 2;
        }
        for (int i = 0; i < T_N; i++)
            run_types[i] = i == t;
    }
    jv_test_seed();
    for (uint8_t i = 0; i < MAX_REP; i++) {
        st_keypair(&node_keys[i], (uint8_t)(0x51 + i));
        stores[i] = open_mem(&node_keys[i].pk);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate(test_schedules, (void *)(intptr_t)T_COUNTER),
        cmocka_unit_test_prestate(test_schedules, (void *)(intptr_t)T_AUDIT),
        cmocka_unit_test_prestate(test_schedules, (void *)(intptr_t)T_CONFIG),
        cmocka_unit_test_prestate(test_schedules, (void *)(intptr_t)T_ARCHIVE),
        cmocka_unit_test(test_cases_seen),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    for (int i = 0; i < MAX_REP; i++)
        jv_store_close(stores[i]);
    return rc;
}
