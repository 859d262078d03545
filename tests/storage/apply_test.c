/*
 * apply_test.c - remote batches (order, duplicates, gaps, trust, links,
 * equivocation, group commit, atomicity under injected failures) and local
 * commits (every kind, savepoint isolation, coalescing, splitting), and the
 * convergence property over three stores.
 */
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "alloc.h"
#include "backup.h"
#include "hlc.h"
#include "local.h"
#include "snapshot.h"
#include "storetest.h"
#include "testutil.h"

static const uint8_t zero[JV_HASH_LEN];

typedef struct {
    char *dir;
    char *db;
    jv_store *st;
    jv_keypair node; /* this store's own key */
    jv_keypair a, b; /* two remote origins */
} fx;

static uint64_t hlc_at(uint64_t ms)
{
    return jv_hlc_make(ms, 0);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    f->dir = st_mkdtemp();
    f->db = st_path(f->dir, "node.db");
    f->st = st_open(f->db);
    st_keypair(&f->node, 10);
    st_keypair(&f->a, 11);
    st_keypair(&f->b, 12);
    assert_int_equal(jv_store_set_self(f->st, &f->node.pk), JV_OK);
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

static jv_op op_counter(const char *name, uint64_t p, uint64_t n)
{
    jv_op op = {.kind = JV_OP_COUNTER};
    op.counter.name = jv_str_c(name);
    op.counter.p = p;
    op.counter.n = n;
    return op;
}

static jv_op op_audit(uint64_t t, const char *actor, const char *action)
{
    jv_op op = {.kind = JV_OP_AUDIT};
    op.audit.time_ms = t;
    op.audit.actor = jv_str_c(actor);
    op.audit.action = jv_str_c(action);
    op.audit.target = jv_str_c("tgt");
    op.audit.detail = jv_str_c("");
    return op;
}

static jv_op op_config(const char *key, const char *value, uint64_t stamp)
{
    jv_op op = {.kind = JV_OP_CONFIG};
    op.config.key = jv_str_c(key);
    op.config.value = jv_str_c(value);
    op.config.stamp = stamp;
    return op;
}

static jv_op op_trust(const jv_id *node, bool trusted, uint64_t stamp)
{
    jv_op op = {.kind = JV_OP_TRUST};
    op.trust.node = *node;
    op.trust.trusted = trusted;
    op.trust.stamp = stamp;
    op.trust.name = jv_str_c("peer");
    return op;
}

/* A chain of n one-op counter batches of kp: value i at seq i. */
static st_batch *chain(const jv_keypair *kp, size_t n, const char *name)
{
    st_batch *b = calloc(n, sizeof(*b));
    const uint8_t *prev = zero;
    for (size_t i = 0; i < n; i++) {
        jv_op op = op_counter(name, i + 1, 0);
        st_batch_make(&b[i], kp, i + 1, prev, hlc_at(1000 + i), &op, 1);
        prev = b[i].hash;
    }
    return b;
}

static void chain_free(st_batch *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        st_batch_fini(&b[i]);
    free(b);
}

static uint64_t head_of(jv_store *st, const jv_id *id)
{
    uint64_t seq;
    uint8_t h[JV_HASH_LEN];
    assert_int_equal(jv_store_origin_head(st, id, &seq, h), JV_OK);
    return seq;
}

typedef struct {
    jv_count total;
    size_t count;
} sum_ctx;

static jv_err sum_cb(void *arg, const jv_counter_row *r)
{
    sum_ctx *c = arg;
    c->total = r->total;
    c->count++;
    return JV_OK;
}

static int64_t count_of(const jv_count *c)
{
    int64_t v = 0;
    assert_int_equal(jv_count_i64(c, INT64_MIN, INT64_MAX, &v), JV_OK);
    return v;
}

static int64_t total(jv_store *st, const char *name)
{
    sum_ctx c = {0};
    assert_int_equal(
        jv_store_counter_list(st, jv_str_c(name), jv_str_c(""), 1, sum_cb, &c),
        JV_OK);
    assert_int_equal(c.count, 1);
    return count_of(&c.total);
}

static void assert_verified(jv_store *st)
{
    jv_verify_report r;
    assert_int_equal(jv_store_verify(st, &r), JV_OK);
    if (!jv_verify_ok(&r))
        fail_msg("verify: integrity %s, sig %llu link %llu enc %llu vv %d "
                 "state %d %s",
                 r.integrity_msg, (unsigned long long)r.bad_signatures,
                 (unsigned long long)r.bad_links,
                 (unsigned long long)r.bad_encodings, r.vv_matches,
                 r.state_matches, r.state_msg);
}

/* -- remote batches ------------------------------------------------------- */

static void test_in_order(void **state)
{
    fx *f = *state;
    st_batch *b = chain(&f->a, 3, "hits");
    for (int i = 0; i < 3; i++)
        assert_int_equal(st_apply1(f->st, &b[i], 0), JV_OK);
    assert_int_equal(head_of(f->st, &f->a.pk), 3);
    assert_int_equal(total(f->st, "hits"), 3);
    uint64_t seq;
    uint8_t h[JV_HASH_LEN];
    assert_int_equal(jv_store_origin_head(f->st, &f->a.pk, &seq, h), JV_OK);
    assert_memory_equal(h, b[2].hash, JV_HASH_LEN);
    /* A malformed hand-over is dropped, not applied. */
    jv_store_batch broken = st_sb(&b[0]);
    broken.batch = NULL;
    jv_err res;
    assert_int_equal(jv_store_apply(f->st, &broken, 1, 0, &res, NULL), JV_OK);
    assert_int_equal(res, JV_EINVAL);
    assert_verified(f->st);
    chain_free(b, 3);
}

static void test_duplicate_changes_nothing(void **state)
{
    fx *f = *state;
    st_batch *b = chain(&f->a, 3, "hits");
    assert_int_equal(st_apply1(f->st, &b[0], 0), JV_OK);
    assert_int_equal(st_apply1(f->st, &b[2], 0), JV_EGAP);
    char *before = st_export(f->st, true);
    assert_int_equal(st_apply1(f->st, &b[0], 0), JV_EDUP); /* in the log */
    assert_int_equal(st_apply1(f->st, &b[2], 0), JV_EDUP); /* held */
    char *after = st_export(f->st, true);
    assert_string_equal(before, after);

    /* Twice in one call: the second copy is a duplicate of the first. */
    jv_store_batch sb[2] = {st_sb(&b[1]), st_sb(&b[1])};
    jv_err res[2];
    jv_apply_stats s;
    assert_int_equal(jv_store_apply(f->st, sb, 2, 0, res, &s), JV_OK);
    assert_int_equal(res[0], JV_OK);
    assert_int_equal(res[1], JV_EDUP);
    assert_int_equal(s.applied, 2); /* b[1], and b[2] released */
    assert_int_equal(s.released, 1);
    free(before);
    free(after);
    chain_free(b, 3);
}

static void test_gap_held_then_released(void **state)
{
    fx *f = *state;
    st_batch *b = chain(&f->a, 4, "hits");
    char *empty = st_export(f->st, false);
    assert_int_equal(st_apply1(f->st, &b[3], 0), JV_EGAP);
    assert_int_equal(st_apply1(f->st, &b[1], 0), JV_EGAP);
    assert_int_equal(st_apply1(f->st, &b[2], 0), JV_EGAP);
    char *held = st_export(f->st, false);
    assert_string_equal(empty, held); /* held batches change no state */
    jv_store_stats ss;
    assert_int_equal(jv_store_stats_get(f->st, &ss), JV_OK);
    assert_int_equal(ss.held, 3);

    jv_store_batch sb = st_sb(&b[0]);
    jv_err res;
    jv_apply_stats s;
    assert_int_equal(jv_store_apply(f->st, &sb, 1, 0, &res, &s), JV_OK);
    assert_int_equal(res, JV_OK);
    assert_int_equal(s.applied, 4);
    assert_int_equal(s.released, 3);
    assert_int_equal(s.ops, 4);
    assert_int_equal(head_of(f->st, &f->a.pk), 4);
    assert_int_equal(total(f->st, "hits"), 4);
    assert_int_equal(jv_store_stats_get(f->st, &ss), JV_OK);
    assert_int_equal(ss.held, 0);
    assert_verified(f->st);
    free(empty);
    free(held);
    chain_free(b, 4);
}

static void test_untrusted_held_then_released(void **state)
{
    fx *f = *state;
    st_batch *a = chain(&f->a, 2, "from-a");
    bool t;
    assert_int_equal(jv_store_is_trusted(f->st, &f->node.pk, &t), JV_OK);
    assert_true(t); /* self */
    assert_int_equal(jv_store_is_trusted(f->st, &f->a.pk, &t), JV_OK);
    assert_false(t);
    assert_int_equal(st_apply1(f->st, &a[0], JV_APPLY_REQUIRE_TRUST),
                     JV_EUNTRUSTED);
    assert_int_equal(st_apply1(f->st, &a[1], JV_APPLY_REQUIRE_TRUST),
                     JV_EUNTRUSTED);
    assert_int_equal(head_of(f->st, &f->a.pk), 0);

    /* B is trusted by a local write; B's batch trusts A: applying it
     * releases A's batches in the same call. */
    jv_intent in = st_trust(&f->b.pk, true, hlc_at(900), "b");
    assert_int_equal(st_commit(f->st, &f->node, hlc_at(900), &in, 1, NULL),
                     JV_OK);
    jv_op op = op_trust(&f->a.pk, true, hlc_at(950));
    st_batch bb;
    st_batch_make(&bb, &f->b, 1, zero, hlc_at(950), &op, 1);
    jv_store_batch sb = st_sb(&bb);
    jv_err res;
    jv_apply_stats s;
    assert_int_equal(
        jv_store_apply(f->st, &sb, 1, JV_APPLY_REQUIRE_TRUST, &res, &s), JV_OK);
    assert_int_equal(res, JV_OK);
    assert_int_equal(s.released, 2);
    assert_int_equal(head_of(f->st, &f->a.pk), 2);
    assert_int_equal(total(f->st, "from-a"), 2);
    assert_int_equal(jv_store_is_trusted(f->st, &f->a.pk, &t), JV_OK);
    assert_true(t);
    assert_verified(f->st);
    st_batch_fini(&bb);
    chain_free(a, 2);
}

static void test_untrusted_released_by_local_trust(void **state)
{
    fx *f = *state;
    st_batch *a = chain(&f->a, 1, "from-a");
    assert_int_equal(st_apply1(f->st, &a[0], JV_APPLY_REQUIRE_TRUST),
                     JV_EUNTRUSTED);
    jv_intent in = st_trust(&f->a.pk, true, hlc_at(900), "a");
    assert_int_equal(st_commit(f->st, &f->node, hlc_at(900), &in, 1, NULL),
                     JV_OK);
    assert_int_equal(head_of(f->st, &f->a.pk), 1);
    /* Distrust again: new batches are held once more. */
    st_batch next;
    jv_op op = op_counter("from-a", 5, 0);
    st_batch_make(&next, &f->a, 2, a[0].hash, hlc_at(2000), &op, 1);
    in = st_trust(&f->a.pk, false, hlc_at(901), "a");
    assert_int_equal(st_commit(f->st, &f->node, hlc_at(901), &in, 1, NULL),
                     JV_OK);
    assert_int_equal(st_apply1(f->st, &next, JV_APPLY_REQUIRE_TRUST),
                     JV_EUNTRUSTED);
    /* Without the flag, the held batch applies on the next call. */
    jv_apply_stats s;
    assert_int_equal(jv_store_apply(f->st, NULL, 0, 0, NULL, &s), JV_OK);
    assert_int_equal(s.released, 1);
    assert_int_equal(total(f->st, "from-a"), 5);
    st_batch_fini(&next);
    chain_free(a, 1);
}

static void test_broken_link_refused(void **state)
{
    fx *f = *state;
    st_batch *b = chain(&f->a, 2, "hits");
    assert_int_equal(st_apply1(f->st, &b[0], 0), JV_OK);
    char *before = st_export(f->st, true);
    /* Next in sequence, but linked to something else. */
    st_batch bad;
    uint8_t wrong[JV_HASH_LEN];
    memset(wrong, 0x5a, sizeof(wrong));
    jv_op op = op_counter("hits", 9, 0);
    st_batch_make(&bad, &f->a, 2, wrong, hlc_at(1100), &op, 1);
    assert_int_equal(st_apply1(f->st, &bad, 0), JV_ELINK);
    st_batch_fini(&bad);
    /* Overlapping what is applied. */
    jv_op ops[2] = {op_counter("hits", 1, 0), op_counter("hits", 2, 0)};
    st_batch_make(&bad, &f->a, 1, zero, hlc_at(1100), ops, 2);
    assert_int_equal(st_apply1(f->st, &bad, 0), JV_ELINK);
    char *after = st_export(f->st, true);
    assert_string_equal(before, after);
    assert_int_equal(st_apply1(f->st, &b[1], 0), JV_OK);
    st_batch_fini(&bad);
    free(before);
    free(after);
    chain_free(b, 2);
}

static void test_equivocation_refused(void **state)
{
    fx *f = *state;
    st_batch *b = chain(&f->a, 1, "hits");
    assert_int_equal(st_apply1(f->st, &b[0], 0), JV_OK);
    char *before = st_export(f->st, true);
    st_batch other;
    jv_op op = op_counter("hits", 1000, 0);
    st_batch_make(&other, &f->a, 1, zero, hlc_at(1000), &op, 1);
    assert_int_equal(st_apply1(f->st, &other, 0), JV_EEQUIVOCATE);
    char *after = st_export(f->st, true);
    assert_string_equal(before, after);
    st_batch_fini(&other);
    free(before);
    free(after);
    chain_free(b, 1);
}

static void test_group_of_many(void **state)
{
    fx *f = *state;
    jv_rng rng;
    jv_rng_seed(&rng, jv_test_seed() ^ 1);
    enum {
        N = 150
    };
    st_batch *a = chain(&f->a, N, "a"), *b = chain(&f->b, N, "b");
    jv_store_batch sb[2 * N];
    jv_err res[2 * N];
    for (size_t i = 0; i < N; i++) {
        sb[i] = st_sb(&a[i]);
        sb[N + i] = st_sb(&b[i]);
    }
    jv_rng_shuffle(&rng, sb, 2 * N, sizeof(sb[0]));
    jv_apply_stats s;
    assert_int_equal(jv_store_apply(f->st, sb, 2 * N, 0, res, &s), JV_OK);
    assert_int_equal(s.applied, 2 * N);
    assert_int_equal(s.ops, 2 * N);
    for (size_t i = 0; i < 2 * N; i++)
        assert_true(res[i] == JV_OK || res[i] == JV_EGAP);
    assert_int_equal(head_of(f->st, &f->a.pk), N);
    assert_int_equal(head_of(f->st, &f->b.pk), N);
    assert_int_equal(total(f->st, "a"), N);
    assert_verified(f->st);
    chain_free(a, N);
    chain_free(b, N);
}

/* -- one batch of many operations ---------------------------------------- */

static int dot_cmp_cb(const void *a, const void *b)
{
    return jv_dot_cmp(a, b);
}

/* None, or up to 8 removes, sorted and distinct: dots this origin (self) added
 * earlier in the batch, of any key, and sometimes one of another origin
 * not seen yet. */
static size_t many_removes(jv_rng *rng, const jv_id *self, const jv_id *other,
                           const uint64_t *dots, size_t nd, jv_dot *rm)
{
    size_t n = 0, k = 0;
    if (jv_rng_chance(rng, 1, 2))
        return 0; /* runs of adds wait in one multi-row statement */
    if (jv_rng_chance(rng, 1, 4))
        rm[n++] = (jv_dot){*other, 1 + jv_rng_below(rng, 4)};
    for (size_t j = 0; j < nd && n < 8; j++)
        if (jv_rng_chance(rng, 1, 6))
            rm[n++] = (jv_dot){*self, dots[j]};
    qsort(rm, n, sizeof(*rm), dot_cmp_cb);
    for (size_t j = 0; j < n; j++)
        if (k == 0 || jv_dot_cmp(&rm[k - 1], &rm[j]) != 0)
            rm[k++] = rm[j];
    return k;
}

/* A random operation of origin self for the batch-versus-one-by-one test:
 * mostly of kind `main` (0 counter, 1 audit, 2 config, 3 archive), on few
 * names and keys (upserts of one key in one batch, LWW ties), archive adds
 * and removes that remove dots added earlier in the batch or not seen yet,
 * and adds that reuse a dot (only a faulty origin does). dots[], *nd: the
 * archive dots added so far; rm: room for the op's removes. */
static jv_op many_op(jv_rng *rng, int main, const jv_id *self,
                     const jv_id *other, uint64_t *dots, size_t *nd, jv_dot *rm,
                     uint64_t i)
{
    static const char *const names[] = {"c/a", "c/b", "c/c"};
    static const char *const keys[] = {"k/a", "k/b", "k/c"};
    static const char *const vals[] = {"\"x\"", "\"y\"", "1", "2"};
    static const char *const actors[] = {"al", "bo"};
    int kind = jv_rng_chance(rng, 2, 3) ? main : (int)jv_rng_below(rng, 5);
    jv_op op = {0};
    if (kind == 0)
        return op_counter(names[jv_rng_below(rng, 3)], jv_rng_below(rng, 50),
                          jv_rng_below(rng, 50));
    if (kind == 1)
        return op_audit(6000000 + jv_rng_below(rng, 180000),
                        actors[jv_rng_below(rng, 2)],
                        jv_rng_chance(rng, 1, 2) ? "set" : "rm");
    if (kind == 2)
        return op_config(keys[jv_rng_below(rng, 3)], vals[jv_rng_below(rng, 4)],
                         hlc_at(1000 + jv_rng_below(rng, 3)));
    size_t nrm = many_removes(rng, self, other, dots, *nd, rm);
    if (kind == 4 && nrm > 0) {
        op.kind = JV_OP_ARCHIVE_RM;
        op.rm.key = jv_str_c(keys[jv_rng_below(rng, 3)]);
        op.rm.removes = rm;
        op.rm.nremoves = nrm;
        return op;
    }
    op.kind = JV_OP_ARCHIVE_ADD;
    op.add.key = jv_str_c(keys[jv_rng_below(rng, 3)]);
    op.add.value = jv_str_c(vals[jv_rng_below(rng, 4)]);
    op.add.stamp = hlc_at(1000 + jv_rng_below(rng, 3));
    op.add.dot_n = *nd && jv_rng_chance(rng, 1, 10)
                       ? dots[jv_rng_below(rng, *nd)]
                       : 1000 + i;
    dots[(*nd)++] = op.add.dot_n;
    op.add.removes = rm;
    op.add.nremoves = nrm;
    return op;
}

/* The store's snapshot encoding without its vector (whose head hash tells
 * one batch from many); *len its length. */
static uint8_t *state_of(jv_store *st, size_t *len)
{
    /* "JVSNAP" 0x01, then one vv row (tag 1, origin, seq, hash). */
    const size_t skip = 7 + 1 + JV_ID_LEN + 8 + JV_HASH_LEN;
    jv_buf b;
    jv_buf_init(&b);
    assert_int_equal(jv_snap_encode(st, &b), JV_OK);
    assert_true(b.len > skip);
    assert_int_equal(b.data[7], 1);
    assert_int_not_equal(b.data[skip], 1); /* one origin only */
    *len = b.len - skip;
    uint8_t *out = malloc(*len);
    memcpy(out, b.data + skip, *len);
    jv_buf_fini(&b);
    return out;
}

/* Hundreds of operations in one batch (written by multi-row statements,
 * apply.c's row_buf) leave exactly the state the same operations leave
 * one batch each, whatever their mix: upserts of one key, LWW ties, adds
 * and removes of dots added earlier in the batch, a reused dot. */
static void test_many_ops_one_batch(void **state)
{
    fx *f = *state;
    jv_rng rng;
    jv_rng_seed(&rng, jv_test_seed() ^ 2);
    enum {
        N = 300
    };
    for (int round = 0; round < 20; round++) {
        jv_op *ops = calloc(N, sizeof(*ops));
        jv_dot *rm = calloc(N * 8, sizeof(*rm));
        uint64_t dots[N];
        size_t nd = 0;
        for (size_t i = 0; i < N; i++)
            ops[i] = many_op(&rng, round % 4, &f->a.pk, &f->b.pk, dots, &nd,
                             &rm[i * 8], i);
        jv_store *one = st_open(":memory:"), *many = st_open(":memory:");
        st_batch big;
        st_batch_make(&big, &f->a, 1, zero, hlc_at(10000000), ops, N);
        assert_int_equal(st_apply1(one, &big, 0), JV_OK);
        const uint8_t *prev = zero;
        st_batch *b = calloc(N, sizeof(*b));
        for (size_t i = 0; i < N; i++) {
            st_batch_make(&b[i], &f->a, i + 1, prev, hlc_at(10000000), &ops[i],
                          1);
            assert_int_equal(st_apply1(many, &b[i], 0), JV_OK);
            prev = b[i].hash;
        }
        size_t n1, n2;
        uint8_t *s1 = state_of(one, &n1), *s2 = state_of(many, &n2);
        assert_int_equal(n1, n2);
        assert_memory_equal(s1, s2, n1);
        assert_verified(one);
        free(s1);
        free(s2);
        for (size_t i = 0; i < N; i++)
            st_batch_fini(&b[i]);
        free(b);
        st_batch_fini(&big);
        jv_store_close(one);
        jv_store_close(many);
        free(ops);
        free(rm);
    }
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

static void test_atomic_on_storage_failure(void **state)
{
    fx *f = *state;
    enum {
        N = 8
    };
    st_batch b[N];
    const uint8_t *prev = zero;
    for (int i = 0; i < N; i++) {
        jv_op ops[2] = {op_counter("c", (uint64_t)i + 1, 0),
                        op_audit(10, i == 5 ? "boom" : "ok", "act")};
        st_batch_make(&b[i], &f->a, 2 * (uint64_t)i + 1, prev, hlc_at(1000),
                      ops, 2);
        prev = b[i].hash;
    }
    assert_int_equal(st_apply1(f->st, &b[0], 0), JV_OK);
    assert_int_equal(st_apply1(f->st, &b[7], 0), JV_EGAP);
    char *before = st_export(f->st, true);
    /* Another program's trigger makes the 6th batch's audit insert fail
     * deep inside the transaction. */
    raw_exec(f->db, "CREATE TRIGGER boom BEFORE INSERT ON audit "
                    "WHEN NEW.actor = 'boom' "
                    "BEGIN SELECT RAISE(ABORT, 'injected failure'); END");
    jv_store_batch sb[N - 2];
    jv_err res[N - 2];
    for (int i = 0; i < N - 2; i++)
        sb[i] = st_sb(&b[i + 1]);
    jv_err err = jv_store_apply(f->st, sb, N - 2, 0, res, NULL);
    assert_int_equal(err, JV_ESTORAGE);
    assert_non_null(strstr(jv_store_errmsg(f->st), "injected failure"));
    char *after = st_export(f->st, true);
    assert_string_equal(before, after);
    raw_exec(f->db, "DROP TRIGGER boom");
    jv_apply_stats s;
    assert_int_equal(jv_store_apply(f->st, sb, N - 2, 0, res, &s), JV_OK);
    assert_int_equal(s.applied, N - 1);
    assert_int_equal(head_of(f->st, &f->a.pk), 2 * N);
    assert_verified(f->st);
    for (int i = 0; i < N; i++)
        st_batch_fini(&b[i]);
    free(before);
    free(after);
}

/* A full disk: every file write past a size limit fails (RLIMIT_FSIZE,
 * with SIGXFSZ ignored), so SQLite's write to the WAL fails halfway through
 * a large batch. */
static void test_atomic_on_full_disk(void **state)
{
    fx *f = *state;
    enum {
        M = 40
    };
    char *big = malloc(60 * 1024 + 3);
    big[0] = '"';
    memset(big + 1, 'y', 60 * 1024);
    strcpy(big + 60 * 1024 + 1, "\"");
    jv_op ops[M];
    char keys[M][16];
    for (int i = 0; i < M; i++) {
        snprintf(keys[i], sizeof(keys[i]), "big/%02d", i);
        ops[i] = (jv_op){.kind = JV_OP_ARCHIVE_ADD};
        ops[i].add.key = jv_str_c(keys[i]);
        ops[i].add.value = jv_str_c(big);
        ops[i].add.stamp = hlc_at(1000);
        ops[i].add.dot_n = (uint64_t)i + 1;
    }
    st_batch b;
    st_batch_make(&b, &f->a, 1, zero, hlc_at(1000), ops, M);
    char *before = st_export(f->st, true);

    struct stat sb;
    off_t biggest = 0;
    char *wal = st_path(f->dir, "node.db-wal");
    if (stat(f->db, &sb) == 0 && sb.st_size > biggest)
        biggest = sb.st_size;
    if (stat(wal, &sb) == 0 && sb.st_size > biggest)
        biggest = sb.st_size;
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = (rlim_t)biggest + 256 * 1024; /* < the 2.4 MB batch */
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    jv_store_batch one = st_sb(&b);
    jv_err res;
    jv_err err = jv_store_apply(f->st, &one, 1, 0, &res, NULL);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, prev);
    printf("  full disk: %s (%s)\n", jv_errname(err), jv_store_errmsg(f->st));
    assert_true(err == JV_EIO);
    char *after = st_export(f->st, true);
    assert_string_equal(before, after);
    /* With room again, the same batch applies. */
    assert_int_equal(st_apply1(f->st, &b, 0), JV_OK);
    assert_verified(f->st);
    free(wal);
    free(before);
    free(after);
    free(big);
    st_batch_fini(&b);
}

/* Every allocation of a commit and of an apply failing in turn: each
 * failure leaves the store exactly as it was. */
static void test_atomic_on_alloc_failure(void **state)
{
    fx *f = *state;
    jv_intent pre = st_add("k", "\"v0\"", hlc_at(500));
    assert_int_equal(st_commit(f->st, &f->node, hlc_at(500), &pre, 1, NULL),
                     JV_OK);
    st_batch *a = chain(&f->a, 3, "a");
    assert_int_equal(st_apply1(f->st, &a[2], 0), JV_EGAP);
    assert_int_equal(st_apply1(f->st, &a[1], 0), JV_EGAP);

    char *before = st_export(f->st, true);
    long failures = 0;
    for (long n = 0;; n++) {
        jv_intent in[5] = {
            st_counter("c", 3),
            st_add("k", "\"v1\"", hlc_at(600)),
            st_audit(600, "me", "did", "it", "all"),
            st_add("k2", "\"w\"", hlc_at(600)),
            st_rm("k2"),
        };
        jv_write_group g = {.intents = in, .n = 5};
        jv_commit_info ci;
        jv_alloc_fail_after(n);
        jv_err err =
            jv_store_commit_local(f->st, &f->node, hlc_at(600), &g, 1, &ci);
        long refused = jv_alloc_failed_count();
        jv_alloc_fail_reset();
        if (err == JV_OK && refused == 0) {
            assert_int_equal(g.result, JV_OK);
            break;
        }
        assert_int_equal(err, JV_ENOMEM);
        char *now = st_export(f->st, true);
        assert_string_equal(before, now);
        free(now);
        failures++;
    }
    printf("  commit: %ld allocation failure points\n", failures);
    assert_true(failures > 0);
    free(before);

    before = st_export(f->st, true);
    failures = 0;
    for (long n = 0;; n++) {
        jv_store_batch sb = st_sb(&a[0]);
        jv_err res;
        jv_apply_stats s;
        jv_alloc_fail_after(n);
        jv_err err = jv_store_apply(f->st, &sb, 1, 0, &res, &s);
        long refused = jv_alloc_failed_count();
        jv_alloc_fail_reset();
        if (err == JV_OK && refused == 0) {
            assert_int_equal(s.released, 2);
            break;
        }
        assert_int_equal(err, JV_ENOMEM);
        char *now = st_export(f->st, true);
        assert_string_equal(before, now);
        free(now);
        failures++;
    }
    printf("  apply: %ld allocation failure points\n", failures);
    assert_true(failures > 0);
    assert_verified(f->st);
    free(before);
    chain_free(a, 3);
}

/* -- local commits -------------------------------------------------------- */

static void test_local_counters(void **state)
{
    fx *f = *state;
    jv_intent in[3] = {st_counter("c", 5), st_counter("c", -2),
                       st_counter("d", INT64_MIN)};
    jv_commit_info ci;
    assert_int_equal(st_commit(f->st, &f->node, hlc_at(100), in, 2, &ci),
                     JV_OK);
    assert_int_equal(count_of(&in[0].res.counter_total), 5);
    assert_int_equal(count_of(&in[1].res.counter_total), 3);
    /* Both changes of one counter coalesce into one operation. */
    assert_int_equal(ci.nops, 1);
    assert_int_equal(in[0].res.seq, 0);
    assert_int_equal(in[1].res.seq, 1);
    assert_int_equal(total(f->st, "c"), 3);

    /* A remote share adds to the total. */
    jv_op op = op_counter("c", 10, 1);
    st_batch b;
    st_batch_make(&b, &f->a, 1, zero, hlc_at(100), &op, 1);
    assert_int_equal(st_apply1(f->st, &b, 0), JV_OK);
    assert_int_equal(total(f->st, "c"), 12);
    in[0] = st_counter("c", 1);
    assert_int_equal(st_commit(f->st, &f->node, hlc_at(101), in, 1, NULL),
                     JV_OK);
    assert_int_equal(count_of(&in[0].res.counter_total), 13);

    /* INT64_MIN decrements by 2^63 - 1 + 1: over the share limit. */
    assert_int_equal(st_commit(f->st, &f->node, hlc_at(102), &in[2], 1, NULL),
                     JV_EOVERFLOW);
    in[2] = st_counter("d", INT64_MAX);
    assert_int_equal(st_commit(f->st, &f->node, hlc_at(102), &in[2], 1, NULL),
                     JV_OK);
    in[2] = st_counter("d", 1);
    assert_int_equal(st_commit(f->st, &f->node, hlc_at(103), &in[2], 1, NULL),
                     JV_EOVERFLOW);
    in[2] = st_counter("d", 0);
    assert_int_equal(st_commit(f->st, &f->node, hlc_at(103), &in[2], 1, NULL),
                     JV_EINVAL);
    /* A second replica's share pushes the sum past 64 bits: the total
     * stays exact, readable, and the counter stays writable. */
    op = op_counter("d", (uint64_t)INT64_MAX, 0);
    st_batch b2;
    st_batch_make(&b2, &f->a, 2, b.hash, hlc_at(104), &op, 1);
    assert_int_equal(st_apply1(f->st, &b2, 0), JV_OK);
    sum_ctx c = {0};
    char text[JV_COUNT_TEXT];
    assert_int_equal(jv_store_counter_list(f->st, jv_str_c("d"), jv_str_c(""),
                                           0, sum_cb, &c),
                     JV_OK);
    jv_count_format(&c.total, text);
    assert_string_equal(text, "18446744073709551614");
    in[2] = st_counter("d", -3);
    assert_int_equal(st_commit(f->st, &f->node, hlc_at(105), &in[2], 1, NULL),
                     JV_OK);
    jv_count_format(&in[2].res.counter_total, text);
    assert_string_equal(text, "18446744073709551611");
    assert_verified(f->st);
    st_batch_fini(&b);
    st_batch_fini(&b2);
}

/* Requests of one counter change each (groups without a savepoint of
 * their own, apply.c's one_statement): one that fails among them leaves
 * nothing, and the others commit in the same batch. */
static void test_local_counter_groups(void **state)
{
    fx *f = *state;
    jv_intent in[4] = {st_counter("g", 2), st_counter("g", 0),
                       st_counter("g", 3), st_counter("h", -1)};
    jv_write_group g[4];
    memset(g, 0, sizeof(g));
    for (size_t i = 0; i < 4; i++) {
        g[i].intents = &in[i];
        g[i].n = 1;
    }
    jv_commit_info ci;
    assert_int_equal(
        jv_store_commit_local(f->st, &f->node, hlc_at(100), g, 4, &ci), JV_OK);
    assert_int_equal(g[0].result, JV_OK);
    assert_int_equal(g[1].result, JV_EINVAL);
    assert_int_equal(g[2].result, JV_OK);
    assert_int_equal(g[3].result, JV_OK);
    assert_int_equal(ci.groups_ok, 3);
    assert_int_equal(ci.nops, 2); /* g's two changes coalesce */
    assert_int_equal(count_of(&in[0].res.counter_total), 2);
    assert_int_equal(count_of(&in[1].res.counter_total), 0);
    assert_int_equal(count_of(&in[2].res.counter_total), 5);
    assert_int_equal(total(f->st, "g"), 5);
    assert_int_equal(total(f->st, "h"), -1);
    assert_verified(f->st);
}

typedef struct {
    jv_audit_row rows[8];
    char actors[8][32];
    size_t n;
} audit_seen;

static jv_err audit_cb(void *arg, const jv_audit_row *r)
{
    audit_seen *a = arg;
    if (a->n < 8) {
        a->rows[a->n] = *r;
        snprintf(a->actors[a->n], 32, "%.*s", (int)r->actor.n, r->actor.p);
    }
    a->n++;
    return JV_OK;
}

static void test_local_audit_config_trust(void **state)
{
    fx *f = *state;
    jv_intent in[4] = {
        st_audit(100, "alice", "login", "", ""),
        st_config("log.level", "\"info\"", hlc_at(100)),
        st_audit(100, "bob", "logout", "x", "y"),
        st_trust(&f->a.pk, true, hlc_at(100), "node-a"),
    };
    jv_commit_info ci;
    assert_int_equal(st_commit(f->st, &f->node, hlc_at(100), in, 4, &ci),
                     JV_OK);
    assert_int_equal(ci.first_seq, 1);
    assert_int_equal(ci.last_seq, 4);
    assert_int_equal(ci.nbatches, 1);
    assert_int_equal(in[2].res.seq, 3);
    audit_seen a = {0};
    assert_int_equal(jv_store_audit_scan(f->st, audit_cb, &a), JV_OK);
    assert_int_equal(a.n, 2);
    assert_int_equal(a.rows[1].id.n, 3); /* the entry's id is its seq */
    assert_string_equal(a.actors[1], "bob");
    assert_memory_equal(a.rows[1].id.id.b, f->node.pk.b, JV_ID_LEN);

    /* Time beyond the batch stamp is refused. */
    in[0] = st_audit(200, "alice", "late", "", "");
    assert_int_equal(st_commit(f->st, &f->node, hlc_at(150), in, 1, NULL),
                     JV_EINVAL);

    /* LWW: a later stamp wins, an earlier one loses, a tie goes to the
     * greater replica id. */
    jv_op op = op_config("log.level", "\"debug\"", hlc_at(50));
    st_batch b1, b2;
    st_batch_make(&b1, &f->a, 1, zero, hlc_at(50), &op, 1);
    assert_int_equal(st_apply1(f->st, &b1, 0), JV_OK);
    char *exp1 = st_export(f->st, false);
    assert_non_null(strstr(exp1, " 22696e666f22 ")); /* "info" stays */
    op = op_config("log.level", "\"trace\"", hlc_at(100));
    st_batch_make(&b2, &f->a, 2, b1.hash, hlc_at(100), &op, 1);
    assert_int_equal(st_apply1(f->st, &b2, 0), JV_OK);
    bool a_greater = jv_id_cmp(&f->a.pk, &f->node.pk) > 0;
    jv_intent want = st_config("x", a_greater ? "\"trace\"" : "\"info\"", 1);
    char hex[64];
    jv_hex((const uint8_t *)want.op.config.value.p, want.op.config.value.n,
           hex);
    char *exp2 = st_export(f->st, false);
    assert_non_null(strstr(exp2, hex));

    bool t;
    assert_int_equal(jv_store_is_trusted(f->st, &f->a.pk, &t), JV_OK);
    assert_true(t);
    assert_verified(f->st);
    free(exp1);
    free(exp2);
    st_batch_fini(&b1);
    st_batch_fini(&b2);
}

typedef struct {
    size_t n;
    size_t nvalues;
    uint64_t dot_n;
} arch_seen;

static jv_err arch_cb(void *arg, const jv_archive_row *r)
{
    arch_seen *a = arg;
    a->n++;
    a->nvalues = r->nvalues;
    a->dot_n = r->dot.n;
    return JV_OK;
}

static void test_local_archive(void **state)
{
    fx *f = *state;
    jv_intent in[2] = {st_add("doc/1", "\"one\"", hlc_at(10)),
                       st_add("doc/1", "\"uno\"", hlc_at(11))};
    assert_int_equal(st_commit(f->st, &f->node, hlc_at(11), in, 2, NULL),
                     JV_OK);
    assert_int_equal(in[0].res.dot.n, 1);
    assert_int_equal(in[1].res.dot.n, 2);
    arch_seen a = {0};
    assert_int_equal(
        jv_store_archive_get(f->st, jv_str_c("doc/1"), arch_cb, &a), JV_OK);
    assert_int_equal(a.nvalues, 1); /* the second add covered the first */
    assert_int_equal(a.dot_n, 2);

    /* A concurrent add by A (it never saw dot 2) survives our remove. */
    jv_op op = {.kind = JV_OP_ARCHIVE_ADD};
    op.add.key = jv_str_c("doc/1");
    op.add.value = jv_str_c("\"eins\"");
    op.add.stamp = hlc_at(12);
    op.add.dot_n = 1;
    st_batch b;
    st_batch_make(&b, &f->a, 1, zero, hlc_at(12), &op, 1);
    assert_int_equal(st_apply1(f->st, &b, 0), JV_OK);
    in[0] = st_rm("doc/1");
    assert_int_equal(st_commit(f->st, &f->node, hlc_at(13), in, 1, NULL),
                     JV_OK);
    memset(&a, 0, sizeof(a));
    assert_int_equal(
        jv_store_archive_get(f->st, jv_str_c("doc/1"), arch_cb, &a),
        JV_ENOTFOUND);

    /* Removing an absent key drops the whole group. */
    jv_intent g[2] = {st_add("doc/2", "\"two\"", hlc_at(14)), st_rm("nope")};
    char *before = st_export(f->st, true);
    jv_write_group grp = {.intents = g, .n = 2};
    jv_commit_info ci;
    assert_int_equal(
        jv_store_commit_local(f->st, &f->node, hlc_at(14), &grp, 1, &ci),
        JV_OK);
    assert_int_equal(grp.result, JV_ENOTFOUND);
    assert_int_equal(grp.failed_index, 1);
    assert_int_equal(ci.nops, 0);
    assert_int_equal(ci.first_seq, 0);
    char *after = st_export(f->st, true);
    assert_string_equal(before, after);
    assert_verified(f->st);
    free(before);
    free(after);
    st_batch_fini(&b);
}

static jv_err local_key(jv_store *st, void *arg)
{
    uint8_t hash[JV_TOKEN_HASH_LEN];
    memset(hash, *(int *)arg, sizeof(hash));
    jv_key_row k = {jv_str_c(*(int *)arg == 1 ? "k1" : "k2"),
                    jv_str_c(*(int *)arg == 1 ? "first" : "second"),
                    jv_str_c("admin"),
                    hash,
                    1,
                    0};
    return jv_store_key_insert(st, &k);
}

static jv_err local_fail(jv_store *st, void *arg)
{
    (void)st;
    (void)arg;
    return JV_EAUTH;
}

static jv_err key_count_cb(void *arg, const jv_key_row *k)
{
    (void)k;
    (*(size_t *)arg)++;
    return JV_OK;
}

static void test_savepoint_isolation(void **state)
{
    fx *f = *state;
    int one = 1, two = 2;
    jv_intent g1[2] = {st_counter("c", 1), st_audit(1, "a", "g1", "", "")};
    jv_intent g2[2] = {st_add("x", "\"x\"", hlc_at(5)), st_rm("missing")};
    jv_intent g3[1] = {st_audit(1, "a", "g3", "", "")};
    jv_intent g4[1] = {st_counter("c", 100)};
    jv_intent g5[1] = {st_counter("c", 1000)};
    jv_write_group groups[5] = {
        {.intents = g1, .n = 2, .local = local_key, .local_arg = &one},
        {.intents = g2, .n = 2},
        {.intents = g3, .n = 1},
        /* the local write fails: its intents are not applied */
        {.intents = g4, .n = 1, .local = local_fail},
        /* the intent fails: its local write is undone */
        {.intents = g5, .n = 0, .local = local_key, .local_arg = &two},
    };
    g5[0] = st_counter("c", 0);
    groups[4].n = 1;
    jv_commit_info ci;
    assert_int_equal(
        jv_store_commit_local(f->st, &f->node, hlc_at(10), groups, 5, &ci),
        JV_OK);
    assert_int_equal(groups[0].result, JV_OK);
    assert_int_equal(groups[1].result, JV_ENOTFOUND);
    assert_int_equal(groups[2].result, JV_OK);
    assert_int_equal(groups[3].result, JV_EAUTH);
    assert_int_equal(groups[4].result, JV_EINVAL);
    assert_int_equal(ci.groups_ok, 2);
    assert_int_equal(ci.nops, 3);
    assert_int_equal(ci.first_seq, 1);
    assert_int_equal(ci.last_seq, 3);
    assert_int_equal(g3[0].res.seq, 3);
    assert_int_equal(g2[0].res.seq, 0);
    assert_int_equal(total(f->st, "c"), 1);
    size_t keys = 0;
    assert_int_equal(jv_store_key_list(f->st, key_count_cb, &keys), JV_OK);
    assert_int_equal(keys, 1);
    /* The failed group's archive add left no dot behind: the next add
     * takes dot 1. */
    jv_intent in = st_add("y", "\"y\"", hlc_at(11));
    assert_int_equal(st_commit(f->st, &f->node, hlc_at(11), &in, 1, NULL),
                     JV_OK);
    assert_int_equal(in.res.dot.n, 1);
    assert_verified(f->st);
}

/* Applies every batch of src's log to dst. */
static void copy_log(jv_store *src, jv_store *dst);

static void test_coalescing_converges(void **state)
{
    fx *f = *state;
    jv_intent in[7] = {
        st_counter("c", 1),
        st_config("k", "\"1\"", hlc_at(20)),
        st_counter("c", 2),
        st_audit(20, "a", "between", "", ""),
        st_config("k", "\"3\"", hlc_at(22)),
        st_config("k", "\"2\"", hlc_at(21)), /* older: loses to "3" */
        st_counter("c", -4),
    };
    jv_commit_info ci;
    assert_int_equal(st_commit(f->st, &f->node, hlc_at(30), in, 7, &ci), JV_OK);
    assert_int_equal(ci.nops, 3); /* c, audit, k */
    assert_int_equal(in[0].res.seq, 0);
    assert_int_equal(in[1].res.seq, 0);
    assert_int_equal(in[5].res.seq, 0);
    assert_int_equal(in[3].res.seq, 1);
    assert_int_equal(in[4].res.seq, 2);
    assert_int_equal(in[6].res.seq, 3);
    assert_int_equal(count_of(&in[6].res.counter_total), -1);
    assert_int_equal(total(f->st, "c"), -1);
    assert_verified(f->st);

    char *other = st_path(f->dir, "other.db");
    jv_store *st2 = st_open(other);
    copy_log(f->st, st2);
    char *e1 = st_export(f->st, true), *e2 = st_export(st2, true);
    assert_string_equal(e1, e2);
    assert_non_null(strstr(e2, "2233")); /* "3" in hex: the LWW winner */
    jv_store_close(st2);
    free(e1);
    free(e2);
    free(other);
}

static void test_batch_splitting(void **state)
{
    fx *f = *state;
    enum {
        N = 5000
    };
    jv_intent *in = calloc(N, sizeof(*in));
    for (size_t i = 0; i < N; i++)
        in[i] = st_audit(1, "bulk", "insert", "", "");
    jv_commit_info ci;
    assert_int_equal(st_commit(f->st, &f->node, hlc_at(1), in, N, &ci), JV_OK);
    assert_int_equal(ci.nbatches, 2);
    assert_int_equal(ci.nops, N);
    assert_int_equal(in[N - 1].res.seq, N);

    /* By bytes: 100 values of 60 KiB are more than 4 MiB. */
    enum {
        M = 100
    };
    char *big = malloc(60 * 1024 + 3);
    big[0] = '"';
    memset(big + 1, 'x', 60 * 1024);
    big[60 * 1024 + 1] = '"';
    big[60 * 1024 + 2] = '\0';
    char keys[M][16];
    for (size_t i = 0; i < M; i++) {
        snprintf(keys[i], sizeof(keys[i]), "big/%03zu", i);
        in[i] = st_add(keys[i], big, hlc_at(2));
    }
    assert_int_equal(st_commit(f->st, &f->node, hlc_at(2), in, M, &ci), JV_OK);
    assert_int_equal(ci.nbatches, 2);
    assert_int_equal(ci.nops, M);

    char *other = st_path(f->dir, "other.db");
    jv_store *st2 = st_open(other);
    copy_log(f->st, st2);
    char *e1 = st_export(f->st, true), *e2 = st_export(st2, true);
    assert_string_equal(e1, e2);
    assert_verified(f->st);
    jv_store_close(st2);
    free(e1);
    free(e2);
    free(other);
    free(big);
    free(in);
}

/* Equal stamps from two replicas: the winner must not depend on which
 * batch arrives first. */
static void test_lww_ties_any_order(void **state)
{
    fx *f = *state;
    uint64_t stamp = hlc_at(700);
    jv_id x = jv_test_id(9);
    jv_op oa[2] = {op_config("k", "\"from-a\"", stamp),
                   op_trust(&x, true, stamp)};
    jv_op ob[2] = {op_config("k", "\"from-b\"", stamp),
                   op_trust(&x, false, stamp)};
    oa[1].trust.name = jv_str_c("named-by-a");
    st_batch ba, bb;
    st_batch_make(&ba, &f->a, 1, zero, stamp, oa, 2);
    st_batch_make(&bb, &f->b, 1, zero, stamp, ob, 2);
    char *other = st_path(f->dir, "other.db");
    jv_store *st2 = st_open(other);
    assert_int_equal(st_apply1(f->st, &ba, 0), JV_OK);
    assert_int_equal(st_apply1(f->st, &bb, 0), JV_OK);
    assert_int_equal(st_apply1(st2, &bb, 0), JV_OK);
    assert_int_equal(st_apply1(st2, &ba, 0), JV_OK);
    char *e1 = st_export(f->st, false), *e2 = st_export(st2, false);
    assert_string_equal(e1, e2);
    /* The greater replica id wins both registers. */
    bool a_wins = jv_id_cmp(&f->a.pk, &f->b.pk) > 0;
    char hex[64];
    jv_str v = jv_str_c(a_wins ? "\"from-a\"" : "\"from-b\"");
    jv_hex((const uint8_t *)v.p, v.n, hex);
    assert_non_null(strstr(e1, hex));
    bool t;
    assert_int_equal(jv_store_is_trusted(f->st, &x, &t), JV_OK);
    assert_int_equal(t, a_wins);
    jv_store_close(st2);
    free(e1);
    free(e2);
    free(other);
    st_batch_fini(&ba);
    st_batch_fini(&bb);
}

/* -- cluster API keys: a remove-wins set ----------------------------------- */

static jv_op op_key_add(const char *id, const char *role, uint8_t hash_byte,
                        uint64_t t)
{
    jv_op op = {.kind = JV_OP_KEY_ADD};
    op.key_add.id = jv_str_c(id);
    op.key_add.name = jv_str_c("svc");
    op.key_add.role = jv_str_c(role);
    memset(op.key_add.hash, hash_byte, JV_OP_KEY_HASH_LEN);
    op.key_add.time_ms = t;
    op.key_add.by = jv_str_c("admin");
    return op;
}

static jv_op op_key_revoke(const char *id, uint64_t t)
{
    jv_op op = {.kind = JV_OP_KEY_REVOKE};
    op.key_revoke.id = jv_str_c(id);
    op.key_revoke.time_ms = t;
    op.key_revoke.by = jv_str_c("admin");
    return op;
}

typedef struct {
    const char *id;
    bool found, revoked;
    char role[16];
    uint8_t hash0;
} ckey_probe;

static jv_err probe_cb(void *arg, const jv_ckey_row *k)
{
    ckey_probe *p = arg;
    if (!jv_str_eq(k->id, jv_str_c(p->id)))
        return JV_OK;
    p->found = true;
    p->revoked = k->revoked;
    snprintf(p->role, sizeof(p->role), "%.*s", (int)k->role.n, k->role.p);
    p->hash0 = k->hash[0];
    return JV_OK;
}

static ckey_probe probe(jv_store *st, const char *id)
{
    ckey_probe p = {.id = id};
    assert_int_equal(jv_store_ckey_list(st, probe_cb, &p), JV_OK);
    return p;
}

/* Keys K, L and M from origin a; from b two revocations of K (the second
 * a harmless duplicate) in two batches; from c an add of L's id with other
 * content (an origin that signs what it should not: here it makes a
 * reader key an admin one) and an add of K. In every one of the 24 orders
 * of the four batches, each batch then delivered again: K is revoked
 * everywhere, L too (two contents for one id), M is not, the rows are the
 * same bytes, and the log replays to the same state (verify). */
static void test_cluster_keys_remove_wins_any_order(void **state)
{
    fx *f = *state;
    jv_keypair c;
    st_keypair(&c, 13);
    jv_op a1[3] = {op_key_add("k_aa", "admin", 0x11, 1000),
                   op_key_add("k_bb", "reader", 0x22, 1000),
                   op_key_add("k_dd", "reader", 0x66, 1000)};
    jv_op b1[1] = {op_key_revoke("k_aa", 1100)};
    jv_op b2[1] = {op_key_revoke("k_aa", 1200)};
    jv_op c1[2] = {op_key_add("k_bb", "admin", 0x33, 1050),
                   op_key_add("k_aa", "writer", 0x44, 900)};
    st_batch bt[4];
    st_batch_make(&bt[0], &f->a, 1, zero, hlc_at(1000), a1, 3);
    st_batch_make(&bt[1], &f->b, 1, zero, hlc_at(1100), b1, 1);
    st_batch_make(&bt[2], &f->b, 2, bt[1].hash, hlc_at(1200), b2, 1);
    st_batch_make(&bt[3], &c, 1, zero, hlc_at(1050), c1, 2);
    char *first = NULL;
    size_t orders = 0;
    for (int p = 0; p < 256; p++) {
        int ord[4] = {p & 3, (p >> 2) & 3, (p >> 4) & 3, (p >> 6) & 3};
        if (ord[0] == ord[1] || ord[0] == ord[2] || ord[0] == ord[3] ||
            ord[1] == ord[2] || ord[1] == ord[3] || ord[2] == ord[3])
            continue;
        char name[32];
        snprintf(name, sizeof(name), "order%d.db", p);
        char *path = st_path(f->dir, name);
        jv_store *st = st_open(path);
        for (int i = 0; i < 4; i++) {
            jv_err r = st_apply1(st, &bt[ord[i]], 0);
            /* b's second batch before its first waits for the gap. */
            assert_true(r == JV_OK || r == JV_EGAP);
        }
        for (int i = 0; i < 4; i++)
            assert_int_equal(st_apply1(st, &bt[ord[i]], 0), JV_EDUP);
        ckey_probe k = probe(st, "k_aa"), l = probe(st, "k_bb"),
                   m = probe(st, "k_dd");
        assert_true(k.found && k.revoked);
        assert_true(l.found && l.revoked);
        assert_true(m.found && !m.revoked);
        /* Of two contents for one id, the smaller (origin, ...) stays. */
        bool a_first = jv_id_cmp(&f->a.pk, &c.pk) < 0;
        assert_string_equal(l.role, a_first ? "reader" : "admin");
        assert_int_equal(l.hash0, a_first ? 0x22 : 0x33);
        char *e = st_export(st, true);
        if (!first)
            first = e;
        else {
            assert_string_equal(first, e);
            free(e);
        }
        assert_verified(st);
        jv_store_close(st);
        free(path);
        orders++;
    }
    assert_int_equal(orders, 24);
    /* A revocation alone is known (it waits for its key), and grants
     * nothing: the list shows no key for it. */
    jv_op r1[1] = {op_key_revoke("k_cc", 1300)};
    st_batch br;
    st_batch_make(&br, &c, 3, bt[3].hash, hlc_at(1300), r1, 1);
    assert_int_equal(st_apply1(f->st, &br, 0), JV_EGAP);
    assert_int_equal(st_apply1(f->st, &bt[3], 0), JV_OK); /* releases br */
    assert_int_equal(head_of(f->st, &c.pk), 3);
    bool known;
    assert_int_equal(jv_store_ckey_known(f->st, jv_str_c("k_cc"), &known),
                     JV_OK);
    assert_true(known);
    assert_false(probe(f->st, "k_cc").found);
    jv_op a2[1] = {op_key_add("k_cc", "admin", 0x55, 1400)};
    st_batch ba;
    st_batch_make(&ba, &f->a, 4, bt[0].hash, hlc_at(1400), a2, 1);
    assert_int_equal(st_apply1(f->st, &bt[0], 0), JV_OK);
    assert_int_equal(st_apply1(f->st, &ba, 0), JV_OK);
    ckey_probe cc = probe(f->st, "k_cc");
    assert_true(cc.found && cc.revoked);
    assert_int_equal(jv_store_ckey_known(f->st, jv_str_c("k_zz"), &known),
                     JV_OK);
    assert_false(known);
    assert_verified(f->st);
    free(first);
    st_batch_fini(&br);
    st_batch_fini(&ba);
    for (int i = 0; i < 4; i++)
        st_batch_fini(&bt[i]);
}

/* A trusted origin re-adds another origin's reader key with the same
 * hash (every node has it) and role admin, its origin chosen to sort
 * first: the key is revoked, in both orders, rather than made admin. */
static void test_cluster_key_role_hijack(void **state)
{
    fx *f = *state;
    jv_keypair lo, hi;
    st_keypair(&lo, 30);
    st_keypair(&hi, 31);
    if (jv_id_cmp(&hi.pk, &lo.pk) < 0) {
        jv_keypair t = lo;
        lo = hi;
        hi = t;
    }
    jv_op honest = op_key_add("k_ee", "reader", 0x77, 1000);
    jv_op hijack = op_key_add("k_ee", "admin", 0x77, 1000);
    st_batch h, x;
    st_batch_make(&h, &hi, 1, zero, hlc_at(1000), &honest, 1);
    st_batch_make(&x, &lo, 1, zero, hlc_at(1001), &hijack, 1);
    for (int order = 0; order < 2; order++) {
        char name[32];
        snprintf(name, sizeof(name), "hijack%d.db", order);
        char *path = st_path(f->dir, name);
        jv_store *st = st_open(path);
        assert_int_equal(st_apply1(st, order ? &x : &h, 0), JV_OK);
        assert_int_equal(st_apply1(st, order ? &h : &x, 0), JV_OK);
        ckey_probe k = probe(st, "k_ee");
        assert_true(k.found);
        assert_true(k.revoked);
        assert_verified(st);
        jv_store_close(st);
        free(path);
    }
    st_batch_fini(&h);
    st_batch_fini(&x);
}

/* The node's own cluster key writes go through the same path: an add and
 * a revocation committed locally are replicated operations (in the log,
 * replayed by verify). */
static void test_cluster_keys_local(void **state)
{
    fx *f = *state;
    jv_intent in[2];
    memset(in, 0, sizeof(in));
    in[0].op = op_key_add("k_01", "writer", 0x66, 1000);
    assert_int_equal(st_commit(f->st, &f->node, hlc_at(1000), in, 1, NULL),
                     JV_OK);
    ckey_probe p = probe(f->st, "k_01");
    assert_true(p.found && !p.revoked);
    in[1].op = op_key_revoke("k_01", 1001);
    assert_int_equal(st_commit(f->st, &f->node, hlc_at(1001), &in[1], 1, NULL),
                     JV_OK);
    p = probe(f->st, "k_01");
    assert_true(p.found && p.revoked);
    /* A stamp above the batch's is refused and changes nothing. */
    jv_intent bad = {0};
    bad.op = op_key_revoke("k_02", 5000);
    assert_int_not_equal(
        st_commit(f->st, &f->node, hlc_at(1002), &bad, 1, NULL), JV_OK);
    bool known = true;
    assert_int_equal(jv_store_ckey_known(f->st, jv_str_c("k_02"), &known),
                     JV_OK);
    assert_false(known);
    assert_verified(f->st);
}

/* -- convergence ---------------------------------------------------------- */

typedef struct {
    st_batch *b;
    size_t n, cap;
} batch_set;

static jv_err collect_cb(void *arg, const jv_log_row *r)
{
    batch_set *s = arg;
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->b = realloc(s->b, s->cap * sizeof(*s->b));
        assert_non_null(s->b);
    }
    st_batch_from_row(&s->b[s->n++], r);
    return JV_OK;
}

static void set_free(batch_set *s)
{
    for (size_t i = 0; i < s->n; i++)
        st_batch_fini(&s->b[i]);
    free(s->b);
    memset(s, 0, sizeof(*s));
}

/* Applies the batches of s to dst in a random order, with duplicates, in
 * chunks of random size; the last `drop` of the shuffled deliveries are
 * lost on the way. */
static void deliver_some(jv_rng *rng, const batch_set *s, jv_store *dst,
                         size_t drop)
{
    size_t n = s->n + s->n / 3;
    if (n == 0)
        return;
    jv_store_batch *sb = calloc(n, sizeof(*sb));
    jv_err *res = calloc(n, sizeof(*res));
    for (size_t i = 0; i < n; i++)
        sb[i] = st_sb(&s->b[i < s->n ? i : jv_rng_below(rng, s->n)]);
    jv_rng_shuffle(rng, sb, n, sizeof(*sb));
    n -= drop < n ? drop : n;
    for (size_t i = 0; i < n;) {
        size_t k = 1 + (size_t)jv_rng_below(rng, 16);
        if (k > n - i)
            k = n - i;
        jv_err err = jv_store_apply(dst, sb + i, k, 0, res, NULL);
        if (err)
            fail_msg("deliver: %s", jv_store_errmsg(dst));
        for (size_t j = 0; j < k; j++)
            assert_true(res[j] == JV_OK || res[j] == JV_EDUP ||
                        res[j] == JV_EGAP);
        i += k;
    }
    free(sb);
    free(res);
}

static void deliver(jv_rng *rng, const batch_set *s, jv_store *dst)
{
    deliver_some(rng, s, dst, 0);
}

static void copy_log(jv_store *src, jv_store *dst)
{
    batch_set s = {0};
    jv_rng rng;
    jv_rng_seed(&rng, 7);
    assert_int_equal(jv_store_log_scan(src, collect_cb, &s), JV_OK);
    deliver(&rng, &s, dst);
    set_free(&s);
}

static const char *const keys[] = {"a", "b", "c", "d/1", "d/2"};

static void random_commit(jv_rng *rng, jv_store *st, const jv_keypair *kp,
                          const jv_keypair *all, uint64_t *clock)
{
    jv_intent in[6];
    char vals[6][32];
    size_t n = 1 + (size_t)jv_rng_below(rng, 6);
    uint64_t hlc = hlc_at(++*clock);
    /* Stamps from a few coarse values, so that different replicas write
     * with equal stamps and ties must be broken the same way everywhere. */
    uint64_t lo = *clock > 1003 ? *clock - 3 : 1000;
    for (size_t i = 0; i < n; i++) {
        uint64_t stamp = hlc_at(lo + jv_rng_below(rng, *clock - lo + 1));
        const char *key = keys[jv_rng_below(rng, 5)];
        snprintf(vals[i], sizeof(vals[i]), "%llu",
                 (unsigned long long)jv_rng_below(rng, 1000));
        switch (jv_rng_below(rng, 7)) {
        case 0:
            in[i] = st_counter(key, (int64_t)jv_rng_below(rng, 20) - 10);
            if (in[i].by == 0)
                in[i].by = 1;
            break;
        case 1:
            in[i] = st_audit(*clock, "actor", key, vals[i], "");
            break;
        case 2:
            in[i] = st_config(key, vals[i], stamp);
            break;
        case 3:
        case 4:
            in[i] = st_add(key, vals[i], stamp);
            break;
        case 5:
            in[i] = st_rm(key);
            break;
        default:
            in[i] = st_trust(&all[jv_rng_below(rng, 3)].pk,
                             jv_rng_below(rng, 2), stamp, key);
            break;
        }
    }
    /* Every intent its own group: a remove of an absent key drops only
     * itself. */
    jv_write_group g[6];
    for (size_t i = 0; i < n; i++)
        g[i] = (jv_write_group){.intents = &in[i], .n = 1};
    jv_commit_info ci;
    if (jv_store_commit_local(st, kp, hlc, g, n, &ci))
        fail_msg("commit: %s", jv_store_errmsg(st));
}

static void test_convergence(void **state)
{
    fx *f = *state;
    uint64_t base = jv_test_seed();
    uint64_t schedules = jv_test_schedules(10);
    for (uint64_t sched = 0; sched < schedules; sched++) {
        jv_rng rng;
        jv_rng_seed(&rng, base + sched);
        jv_keypair kp[3];
        jv_store *st[3];
        char name[32];
        for (int i = 0; i < 3; i++) {
            st_keypair(&kp[i], (uint8_t)(40 + i));
            snprintf(name, sizeof(name), "conv-%llu-%d.db",
                     (unsigned long long)sched, i);
            char *p = st_path(f->dir, name);
            st[i] = st_open(p);
            free(p);
            assert_int_equal(jv_store_set_self(st[i], &kp[i].pk), JV_OK);
        }
        uint64_t clock = 1000;
        for (int round = 0; round < 12; round++) {
            for (int k = 0; k < 6; k++) {
                int i = (int)jv_rng_below(&rng, 3);
                random_commit(&rng, st[i], &kp[i], kp, &clock);
            }
            /* Partial gossip: one store tells one other. */
            int from = (int)jv_rng_below(&rng, 3);
            int to = (from + 1 + (int)jv_rng_below(&rng, 2)) % 3;
            batch_set s = {0};
            assert_int_equal(jv_store_log_scan(st[from], collect_cb, &s),
                             JV_OK);
            /* Some deliveries are lost: what depends on them is held. */
            deliver_some(&rng, &s, st[to], (size_t)jv_rng_below(&rng, 4));
            set_free(&s);
        }
        /* Full exchange until everyone has everything. */
        for (int pass = 0; pass < 2; pass++) {
            for (int from = 0; from < 3; from++) {
                batch_set s = {0};
                assert_int_equal(jv_store_log_scan(st[from], collect_cb, &s),
                                 JV_OK);
                for (int to = 0; to < 3; to++)
                    if (to != from)
                        deliver(&rng, &s, st[to]);
                set_free(&s);
            }
        }
        char *e[3];
        for (int i = 0; i < 3; i++) {
            jv_store_stats ss;
            assert_int_equal(jv_store_stats_get(st[i], &ss), JV_OK);
            assert_int_equal(ss.held, 0);
            e[i] = st_export(st[i], true);
        }
        if (strcmp(e[0], e[1]) != 0 || strcmp(e[0], e[2]) != 0)
            fail_msg("schedule %llu diverged:\n--- 0\n%s\n--- 1\n%s\n--- 2\n%s",
                     (unsigned long long)sched, e[0], e[1], e[2]);
        for (int i = 0; i < 3; i++) {
            assert_verified(st[i]);
            free(e[i]);
            jv_store_close(st[i]);
        }
    }
}

/* Calls that cannot be right are refused before anything is written, each
 * with its reason, and the store is as it was. */
static void test_bad_calls_refused(void **state)
{
    fx *f = *state;
    jv_intent in = st_counter("c", 1);
    assert_int_equal(st_commit(f->st, &f->node, hlc_at(100), &in, 1, NULL),
                     JV_OK);
    char *before = st_export(f->st, true);
    jv_write_group g = {.intents = &in, .n = 1};
    jv_commit_info ci;
    struct {
        const jv_keypair *kp;
        uint64_t hlc;
        jv_write_group *groups;
        const char *why;
    } bad[] = {
        {&f->node, hlc_at(200), NULL, "no groups"},
        {&f->node, 0, &g, "stamp out of range"},
        {&f->node, (uint64_t)INT64_MAX + 1, &g, "stamp out of range"},
        {&f->a, hlc_at(200), &g, "not this node's"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        assert_int_equal(jv_store_commit_local(f->st, bad[i].kp, bad[i].hlc,
                                               bad[i].groups, 1, &ci),
                         JV_EINVAL);
        assert_non_null(strstr(jv_store_errmsg(f->st), bad[i].why));
    }
    /* An intent of no known kind drops its group only. */
    jv_intent odd[2] = {st_counter("c", 1), st_counter("d", 1)};
    odd[1].op.kind = (jv_op_kind)77;
    g.intents = odd;
    g.n = 2;
    assert_int_equal(
        jv_store_commit_local(f->st, &f->node, hlc_at(200), &g, 1, &ci), JV_OK);
    assert_int_equal(g.result, JV_EINVAL);
    assert_int_equal(g.failed_index, 1);
    assert_int_equal(ci.nops, 0);
    jv_err res;
    jv_apply_stats as;
    assert_int_equal(jv_store_apply(f->st, NULL, 1, 0, &res, &as), JV_EINVAL);
    char *after = st_export(f->st, true);
    assert_string_equal(before, after);
    free(before);
    free(after);

    /* A store without its node id signs nothing. */
    char *other = st_path(f->dir, "other.db");
    jv_store *st = st_open(other);
    g.intents = &in;
    g.n = 1;
    assert_int_equal(
        jv_store_commit_local(st, &f->node, hlc_at(200), &g, 1, &ci),
        JV_ESTATE);
    assert_non_null(strstr(jv_store_errmsg(st), "node id not set"));
    jv_store_close(st);
    free(other);
}

/* A read-only store applies nothing. */
static void test_readonly_apply_refused(void **state)
{
    fx *f = *state;
    jv_op op = op_counter("c", 1, 1);
    st_batch b;
    st_batch_make(&b, &f->a, 1, zero, hlc_at(100), &op, 1);
    jv_store_close(f->st);
    jv_store_opts o;
    jv_store_opts_default(&o);
    o.readonly = true;
    f->st = st_open_opts(f->db, &o);
    jv_store_batch sb = st_sb(&b);
    jv_err res = JV_OK;
    jv_apply_stats as;
    assert_int_equal(jv_store_apply(f->st, &sb, 1, 0, &res, &as), JV_EPERM);
    assert_non_null(strstr(jv_store_errmsg(f->st), "read-only"));
    uint64_t seq = 1;
    uint8_t head[JV_HASH_LEN];
    assert_int_equal(jv_store_origin_head(f->st, &f->a.pk, &seq, head), JV_OK);
    assert_int_equal(seq, 0);
    st_batch_fini(&b);
}

/* A local write to an archive key names every live value it replaces, at
 * most JV_OP_MAX_REMOVES in one operation: a key that concurrent adds
 * (here one origin's, never removing) took past that is refused as too
 * big, with nothing written, rather than half replaced. */
static void test_archive_too_many_live_values(void **state)
{
    fx *f = *state;
    size_t n = JV_OP_MAX_REMOVES + 1;
    jv_op *ops = calloc(n, sizeof(*ops));
    for (size_t i = 0; i < n; i++) {
        ops[i].kind = JV_OP_ARCHIVE_ADD;
        ops[i].add.key = jv_str_c("crowded");
        ops[i].add.value = jv_str_c("1");
        ops[i].add.stamp = hlc_at(100);
        ops[i].add.dot_n = i + 1;
    }
    st_batch b;
    st_batch_make(&b, &f->a, 1, zero, hlc_at(100), ops, (uint32_t)n);
    assert_int_equal(st_apply1(f->st, &b, 0), JV_OK);
    char *before = st_export(f->st, true);
    jv_intent in[2] = {st_add("crowded", "\"mine\"", hlc_at(200)),
                       st_rm("crowded")};
    for (int i = 0; i < 2; i++) {
        jv_write_group g = {.intents = &in[i], .n = 1};
        jv_commit_info ci;
        assert_int_equal(
            jv_store_commit_local(f->st, &f->node, hlc_at(200), &g, 1, &ci),
            JV_OK);
        assert_int_equal(g.result, JV_ETOOBIG);
        assert_non_null(strstr(jv_store_errmsg(f->st), "live values"));
    }
    char *after = st_export(f->st, true);
    assert_string_equal(before, after);
    free(before);
    free(after);
    st_batch_fini(&b);
    free(ops);
}

/* The first batch of origin kp: a succession for old (signed by signer),
 * then a counter share. */
static void succ_batch(st_batch *b, const jv_keypair *kp, const jv_id *old,
                       const jv_keypair *signer, uint64_t ms)
{
    jv_op ops[2] = {{.kind = JV_OP_SUCCESSION}, op_counter("from-new", 1, 0)};
    ops[0].succ.old = *old;
    ops[0].succ.last_seq = 7;
    ops[0].succ.time_ms = ms;
    jv_succession_sign(signer, &kp->pk, 7, ms, ops[0].succ.sig);
    st_batch_make(b, kp, 1, zero, hlc_at(ms), ops, 2);
}

static bool trusted(jv_store *st, const jv_id *id)
{
    bool t = false;
    assert_int_equal(jv_store_is_trusted(st, id, &t), JV_OK);
    return t;
}

/* A succession makes its origin stand as the old one does (trusted while
 * it is, held while it is not); a second successor of one origin is
 * refused; a node's earlier origins stay trusted by it. */
static void test_succession(void **state)
{
    fx *f = *state;
    jv_keypair c, d, e;
    st_keypair(&c, 13);
    st_keypair(&d, 14);
    st_keypair(&e, 15);
    jv_intent in = st_trust(&f->a.pk, true, hlc_at(900), "a");
    assert_int_equal(st_commit(f->st, &f->node, hlc_at(900), &in, 1, NULL),
                     JV_OK);
    assert_false(trusted(f->st, &f->b.pk));

    /* b carries on for a: applied at once, and b is trusted from then. */
    st_batch b1, b2, c1, d1;
    succ_batch(&b1, &f->b, &f->a.pk, &f->a, 1000);
    assert_int_equal(st_apply1(f->st, &b1, JV_APPLY_REQUIRE_TRUST), JV_OK);
    assert_true(trusted(f->st, &f->b.pk));
    jv_id got;
    assert_int_equal(jv_store_successor(f->st, &f->a.pk, &got), JV_OK);
    assert_true(jv_id_eq(&got, &f->b.pk));
    assert_int_equal(jv_store_predecessor(f->st, &f->b.pk, &got), JV_OK);
    assert_true(jv_id_eq(&got, &f->a.pk));
    jv_op op = op_counter("from-new", 2, 0);
    st_batch_make(&b2, &f->b, 3, b1.hash, hlc_at(1001), &op, 1);
    assert_int_equal(st_apply1(f->st, &b2, JV_APPLY_REQUIRE_TRUST), JV_OK);
    assert_int_equal(head_of(f->st, &f->b.pk), 3);

    /* A second successor of a, signed by a's own key: refused, nothing
     * changes. */
    char *before = st_export(f->st, true);
    succ_batch(&c1, &c, &f->a.pk, &f->a, 1002);
    assert_int_equal(st_apply1(f->st, &c1, JV_APPLY_REQUIRE_TRUST),
                     JV_EEQUIVOCATE);
    assert_int_equal(st_apply1(f->st, &c1, 0), JV_EEQUIVOCATE);
    char *after = st_export(f->st, true);
    assert_string_equal(before, after);
    assert_false(trusted(f->st, &c.pk));
    assert_int_equal(jv_store_predecessor(f->st, &c.pk, &got), JV_ENOTFOUND);

    /* The successor's standing follows the old origin's. */
    in = st_trust(&f->a.pk, false, hlc_at(1100), "a");
    assert_int_equal(st_commit(f->st, &f->node, hlc_at(1100), &in, 1, NULL),
                     JV_OK);
    assert_false(trusted(f->st, &f->b.pk));

    /* d carries on for e, not trusted (yet): held, then released when e
     * is trusted. */
    succ_batch(&d1, &d, &e.pk, &e, 1200);
    assert_int_equal(st_apply1(f->st, &d1, JV_APPLY_REQUIRE_TRUST),
                     JV_EUNTRUSTED);
    assert_int_equal(head_of(f->st, &d.pk), 0);
    in = st_trust(&e.pk, true, hlc_at(1300), "e");
    assert_int_equal(st_commit(f->st, &f->node, hlc_at(1300), &in, 1, NULL),
                     JV_OK);
    assert_int_equal(head_of(f->st, &d.pk), 2);
    assert_true(trusted(f->st, &d.pk));

    /* This node's earlier origins are its own. */
    assert_false(trusted(f->st, &c.pk));
    assert_int_equal(
        jv_store_meta_set(f->st, JV_META_OWN_ORIGINS, c.pk.b, JV_ID_LEN),
        JV_OK);
    assert_true(trusted(f->st, &c.pk));
    assert_verified(f->st);
    free(before);
    free(after);
    st_batch_fini(&b1);
    st_batch_fini(&b2);
    st_batch_fini(&c1);
    st_batch_fini(&d1);
}

/* Successions made by whoever holds several keys: a loop (p carries on
 * for q, q for p) and a chain longer than any restore history. Trust
 * decisions still end: a loop with no entry is not trusted, and a chain
 * stands as its first origin only within the bound of 64 links. */
static void test_succession_loop_and_long_chain(void **state)
{
    fx *f = *state;
    enum {
        LONG = 70
    };
    jv_keypair p, q, *k = calloc(LONG, sizeof(*k));
    st_batch p1, q1, *kb = calloc(LONG, sizeof(*kb));
    assert_non_null(k);
    assert_non_null(kb);
    st_keypair(&p, 21);
    st_keypair(&q, 22);
    succ_batch(&p1, &p, &q.pk, &q, 1000);
    succ_batch(&q1, &q, &p.pk, &p, 1000);
    assert_int_equal(st_apply1(f->st, &p1, 0), JV_OK);
    assert_int_equal(st_apply1(f->st, &q1, 0), JV_OK);
    assert_false(trusted(f->st, &p.pk));
    assert_false(trusted(f->st, &q.pk));

    for (int i = 0; i < LONG; i++) {
        st_keypair(&k[i], (uint8_t)(100 + i));
        if (i)
            succ_batch(&kb[i], &k[i], &k[i - 1].pk, &k[i - 1], 2000);
    }
    jv_intent in = st_trust(&k[0].pk, true, hlc_at(1500), "k0");
    assert_int_equal(st_commit(f->st, &f->node, hlc_at(1500), &in, 1, NULL),
                     JV_OK);
    for (int i = 1; i < LONG; i++) {
        jv_err r = st_apply1(f->st, &kb[i], JV_APPLY_REQUIRE_TRUST);
        if (i <= 64)
            assert_int_equal(r, JV_OK);
        else if (i > 65) /* 65 stands on 64, which is within the bound */
            assert_int_equal(r, JV_EUNTRUSTED);
    }
    assert_true(trusted(f->st, &k[64].pk));
    assert_false(trusted(f->st, &k[65].pk));
    assert_false(trusted(f->st, &k[LONG - 1].pk));
    st_batch_fini(&p1);
    st_batch_fini(&q1);
    for (int i = 1; i < LONG; i++)
        st_batch_fini(&kb[i]);
    free(kb);
    free(k);
}

int main(void)
{
    jv_test_seed();
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_in_order),
        T(test_duplicate_changes_nothing),
        T(test_gap_held_then_released),
        T(test_untrusted_held_then_released),
        T(test_untrusted_released_by_local_trust),
        T(test_broken_link_refused),
        T(test_equivocation_refused),
        T(test_succession),
        T(test_succession_loop_and_long_chain),
        T(test_cluster_key_role_hijack),
        T(test_group_of_many),
        T(test_many_ops_one_batch),
        T(test_atomic_on_storage_failure),
        T(test_atomic_on_full_disk),
        T(test_atomic_on_alloc_failure),
        T(test_local_counters),
        T(test_local_counter_groups),
        T(test_local_audit_config_trust),
        T(test_local_archive),
        T(test_savepoint_isolation),
        T(test_coalescing_converges),
        T(test_lww_ties_any_order),
        T(test_cluster_keys_remove_wins_any_order),
        T(test_cluster_keys_local),
        T(test_batch_splitting),
        T(test_convergence),
        T(test_bad_calls_refused),
        T(test_readonly_apply_refused),
        T(test_archive_too_many_live_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
