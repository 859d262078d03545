/*
 * model_test.c - storage/model.h: a store that applied random writes of
 * every kind agrees with the crdt/ models of its log, and a store whose
 * tables were changed behind its back does not, with a message that names
 * what differs.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hlc.h"
#include "model.h"
#include "storetest.h"
#include "testutil.h"

static uint64_t hlc_at(uint64_t ms)
{
    return jv_hlc_make(ms, 0);
}

static void expect_agree(jv_store *st)
{
    char msg[512] = "";
    jv_err err = jv_store_model_check(st, msg, sizeof(msg));
    if (err != JV_OK)
        fail_msg("model check: %s: %s", jv_errname(err), msg);
}

/* More counter names than the old test model held, some long. */
static const char *const names[] = {"a",
                                    "b",
                                    "visits",
                                    "c/4",
                                    "a-counter-name-well-beyond-eight-bytes",
                                    "e",
                                    "f/with/slashes"};
static const char *const keys[] = {"k", "site/title", "m", "doc/1", "doc/2"};
static const char *const values[] = {"1", "\"x\"", "{\"a\":[1,2]}", "null",
                                     "\"\""};

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* One random intent of kind k (0..4); strings borrowed from the tables. */
static jv_intent random_intent(jv_rng *r, unsigned k, uint64_t ms)
{
    const char *key = keys[jv_rng_below(r, N(keys))];
    const char *val = values[jv_rng_below(r, N(values))];
    int64_t by = (int64_t)jv_rng_below(r, 999) - 400; /* never 0 */
    switch (k) {
    case 0:
        return st_counter(names[jv_rng_below(r, N(names))], by ? by : 600);
    case 1:
        return st_audit(ms - jv_rng_below(r, 100), "alice", "login", key, val);
    case 2:
        return st_config(key, val, hlc_at(ms));
    case 3:
        return st_add(key, val, hlc_at(ms));
    default:
        return st_rm(key);
    }
}

/* Random local groups of every kind; the check after each commit. */
static void test_random_writes_agree(void **state)
{
    (void)state;
    jv_rng r;
    jv_rng_seed(&r, jv_test_seed());
    jv_store *st = st_open(":memory:");
    jv_keypair kp, other;
    st_keypair(&kp, 40);
    st_keypair(&other, 41);
    assert_int_equal(jv_store_set_self(st, &kp.pk), JV_OK);
    expect_agree(st);
    unsigned committed = 0;
    for (unsigned g = 0; g < 60; g++) {
        uint64_t ms = 1000000 + g * 10;
        jv_intent in[3];
        size_t n = 1 + jv_rng_below(&r, 3);
        for (size_t i = 0; i < n; i++)
            in[i] = random_intent(&r, (unsigned)((g + i) % 5), ms);
        jv_err err = st_commit(st, &kp, hlc_at(ms), in, n, NULL);
        /* A remove of a key with no live value is refused, and the whole
         * group with it. */
        assert_true(err == JV_OK || err == JV_ENOTFOUND);
        committed += err == JV_OK;
        expect_agree(st);
    }
    assert_true(committed > 20);
    /* Another origin's batch: a counter op of 0 and 0 (a share row of
     * zeros in the store), one with shares, a config set and an add. */
    jv_op ops[4];
    memset(ops, 0, sizeof(ops));
    ops[0].kind = ops[1].kind = JV_OP_COUNTER;
    ops[0].counter.name = jv_str_c("visits");
    ops[1].counter.name = jv_str_c("remote");
    ops[1].counter.p = 7;
    ops[1].counter.n = 3;
    ops[2].kind = JV_OP_CONFIG;
    ops[2].config.key = jv_str_c("k");
    ops[2].config.value = jv_str_c("\"theirs\"");
    ops[2].config.stamp = hlc_at(1500000);
    ops[3].kind = JV_OP_ARCHIVE_ADD;
    ops[3].add.key = jv_str_c("doc/9");
    ops[3].add.value = jv_str_c("9");
    ops[3].add.stamp = hlc_at(1500000);
    ops[3].add.dot_n = 1;
    static const uint8_t zero[JV_HASH_LEN];
    st_batch b;
    st_batch_make(&b, &other, 1, zero, hlc_at(1500000), ops, 4);
    assert_int_equal(st_apply1(st, &b, 0), JV_OK);
    st_batch_fini(&b);
    expect_agree(st);
    /* A trust op is in the log but not in the four tables. */
    jv_intent t = st_trust(&other.pk, true, hlc_at(2000000), "other");
    assert_int_equal(st_commit(st, &kp, hlc_at(2000000), &t, 1, NULL), JV_OK);
    expect_agree(st);
    jv_store_close(st);
}

/* The lower-level pieces: a model built from the log's batches agrees,
 * every counter name is there, and a model that lacks a batch does not. */
static jv_err to_model(void *arg, const jv_log_row *row)
{
    jv_model *m = arg;
    jv_batch b;
    memset(&b, 0, sizeof(b));
    assert_int_equal(jv_batch_decode(row->body, row->len, &b), JV_OK);
    jv_err err = jv_model_batch(m, &b);
    jv_batch_fini(&b);
    return err;
}

static jv_err first_only(void *arg, const jv_log_row *row)
{
    jv_model *m = arg;
    return m->nc || m->au.n ? JV_OK : to_model(arg, row);
}

static void test_model_pieces(void **state)
{
    (void)state;
    jv_store *st = st_open(":memory:");
    jv_keypair kp;
    st_keypair(&kp, 42);
    assert_int_equal(jv_store_set_self(st, &kp.pk), JV_OK);
    for (size_t i = 0; i < N(names); i++) {
        jv_intent in = st_counter(names[i], (int64_t)i + 1);
        assert_int_equal(st_commit(st, &kp, hlc_at(5000 + i), &in, 1, NULL),
                         JV_OK);
    }
    jv_model m;
    char msg[512];
    jv_model_init(&m);
    assert_int_equal(jv_store_log_scan(st, to_model, &m), JV_OK);
    assert_int_equal(m.nc, N(names));
    for (size_t i = 0; i < N(names); i++) {
        const jv_pncounter *pn = jv_model_counter_get(&m, jv_str_c(names[i]));
        assert_non_null(pn);
        assert_int_equal(jv_gcounter_get(&pn->p, &kp.pk), i + 1);
    }
    assert_null(jv_model_counter_get(&m, jv_str_c("nope")));
    assert_int_equal(jv_model_compare(st, &m, msg, sizeof(msg)), JV_OK);
    jv_model_fini(&m);
    /* A model of the first batch only: the store has counters it lacks. */
    assert_int_equal(jv_store_log_scan(st, first_only, &m), JV_OK);
    assert_int_equal(m.nc, 1);
    assert_int_equal(jv_model_compare(st, &m, msg, sizeof(msg)), JV_ESTATE);
    assert_non_null(strstr(msg, "the store has it, the model has none"));
    jv_model_fini(&m);
    jv_store_close(st);
}

/* ---- damage behind the store's back ------------------------------------- */

typedef struct {
    const char *sql;
    const char *expect; /* in the message */
} damage;

static const damage damages[] = {
    {"UPDATE counter SET p = p + 1 WHERE name = 'visits'",
     "counter \"visits\": store total 4, model total 3"},
    {"UPDATE counter SET p = p + 1, n = n + 1 WHERE name = 'visits'",
     "counter \"visits\" share of "},
    {"DELETE FROM counter WHERE name = 'visits'",
     "counter \"visits\": the model has it, the store has none"},
    {"UPDATE config SET value = '\"evil\"' WHERE key = 'site/title'",
     "config \"site/title\": store \"\"evil\"\""},
    {"UPDATE config SET stamp = stamp + 1 WHERE key = 'site/title'",
     "config \"site/title\""},
    {"DELETE FROM archive_entry WHERE key = 'doc/1'",
     "archive \"doc/1\": the model has it, the store has none"},
    {"UPDATE archive_entry SET value = '2' WHERE key = 'doc/1'",
     "archive \"doc/1\" shows: store \"2\""},
    {"DELETE FROM audit WHERE target = 'door'", "audit entry ("},
    {"UPDATE audit SET detail = 'forged' WHERE target = 'door'",
     "store detail \"forged\", model \"opened\""},
    {"DELETE FROM ctx", "archive context: store vector "},
};

static void raw_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
        fail_msg("%s: %s", sql, err);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static void fill(jv_store *st, const jv_keypair *kp)
{
    jv_intent a[] = {st_counter("visits", 5),
                     st_counter("visits", -2),
                     st_audit(9000, "alice", "open", "door", "opened"),
                     st_config("site/title", "\"Home\"", hlc_at(9000)),
                     st_add("doc/1", "1", hlc_at(9000)),
                     st_add("doc/2", "\"two\"", hlc_at(9000))};
    for (size_t i = 0; i < N(a); i++)
        assert_int_equal(st_commit(st, kp, hlc_at(9000 + i), &a[i], 1, NULL),
                         JV_OK);
}

static void test_damage_found(void **state)
{
    (void)state;
    jv_keypair kp;
    st_keypair(&kp, 43);
    for (size_t i = 0; i < N(damages); i++) {
        char *dir = st_mkdtemp();
        char *path = st_path(dir, "node.db");
        jv_store *st = st_open(path);
        assert_int_equal(jv_store_set_self(st, &kp.pk), JV_OK);
        fill(st, &kp);
        expect_agree(st);
        raw_exec(path, damages[i].sql);
        char msg[512] = "";
        jv_err err = jv_store_model_check(st, msg, sizeof(msg));
        if (err != JV_ESTATE || !strstr(msg, damages[i].expect))
            fail_msg("after %s: %s \"%s\", want ESTATE with \"%s\"",
                     damages[i].sql, jv_errname(err), msg, damages[i].expect);
        print_message("%s\n  %s\n", damages[i].sql, msg);
        jv_store_close(st);
        free(path);
        st_rmdir(dir);
    }
}

/* A log that lacks a batch the store applied is no model of it. */
static void test_log_must_cover(void **state)
{
    (void)state;
    jv_keypair kp;
    st_keypair(&kp, 44);
    char *dir = st_mkdtemp();
    char *path = st_path(dir, "node.db");
    jv_store *st = st_open(path);
    assert_int_equal(jv_store_set_self(st, &kp.pk), JV_OK);
    fill(st, &kp);
    raw_exec(path, "DELETE FROM batch WHERE first_seq = 1");
    char msg[512] = "";
    assert_int_equal(jv_store_model_check(st, msg, sizeof(msg)), JV_ESTATE);
    assert_non_null(strstr(msg, "log holds 5 of origin"));
    jv_store_close(st);
    free(path);
    st_rmdir(dir);
}

int main(void)
{
    jv_test_seed();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_writes_agree),
        cmocka_unit_test(test_model_pieces),
        cmocka_unit_test(test_damage_found),
        cmocka_unit_test(test_log_must_cover),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
