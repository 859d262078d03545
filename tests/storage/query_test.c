/*
 * query_test.c - every read, with paging and prefix edge cases (empty
 * prefix, bytes 0xff, '%' and '_' which LIKE would misread), audit filters
 * and cursors in both orders, and the bounds of log chunks.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hlc.h"
#include "storetest.h"
#include "testutil.h"

static const uint8_t zero[JV_HASH_LEN];

typedef struct {
    char *dir;
    jv_store *st;
    jv_keypair node, a, b;
} fx;

static uint64_t hlc_at(uint64_t ms)
{
    return jv_hlc_make(ms, 0);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    f->dir = st_mkdtemp();
    char *p = st_path(f->dir, "node.db");
    f->st = st_open(p);
    free(p);
    st_keypair(&f->node, 20);
    st_keypair(&f->a, 21);
    st_keypair(&f->b, 22);
    assert_int_equal(jv_store_set_self(f->st, &f->node.pk), JV_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    jv_store_close(f->st);
    st_rmdir(f->dir);
    free(f);
    return 0;
}

/* Collected names or keys, in the order received. */
typedef struct {
    char items[64][64];
    uint64_t vals[64];
    size_t n;
} names;

static void names_add(names *c, jv_str s, uint64_t v)
{
    assert_true(c->n < 64 && s.n < 64);
    memcpy(c->items[c->n], s.p, s.n);
    c->items[c->n][s.n] = '\0';
    c->vals[c->n++] = v;
}

static jv_err counter_cb(void *arg, const jv_counter_row *r)
{
    int64_t v = 0;
    assert_int_equal(jv_count_i64(&r->total, INT64_MIN, INT64_MAX, &v), JV_OK);
    names_add(arg, r->name, (uint64_t)v);
    return JV_OK;
}

static jv_err config_cb(void *arg, const jv_config_row *r)
{
    names_add(arg, r->key, r->stamp);
    return JV_OK;
}

static jv_err archive_cb(void *arg, const jv_archive_row *r)
{
    names_add(arg, r->key, r->nvalues);
    return JV_OK;
}

static void commit(fx *f, jv_intent *in, size_t n, uint64_t ms)
{
    assert_int_equal(st_commit(f->st, &f->node, hlc_at(ms), in, n, NULL),
                     JV_OK);
}

/* Names used for every prefix listing: LIKE metacharacters, multibyte
 * UTF-8, and neighbours of each. */
static const char *const tricky[] = {
    "a",
    "a%",
    "a%b",
    "a_",
    "a_b",
    "aXb",
    "ab",
    "a\\",
    "b",
    "a\xc3\xa9",
    "a\xc3\xa9z",
    "\xc3\xa9",
    "\xf0\x9f\x98\x80",
    "z",
};
#define NTRICKY (sizeof(tricky) / sizeof(*tricky))

/* The expected listing: names starting with prefix, sorted bytewise. */
static size_t expect_prefix(const char *prefix, size_t plen,
                            const char *out[NTRICKY])
{
    size_t n = 0;
    for (size_t i = 0; i < NTRICKY; i++)
        if (strlen(tricky[i]) >= plen && memcmp(tricky[i], prefix, plen) == 0)
            out[n++] = tricky[i];
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(out[j - 1], out[j]) > 0; j--) {
            const char *t = out[j];
            out[j] = out[j - 1];
            out[j - 1] = t;
        }
    return n;
}

typedef jv_err (*lister)(jv_store *, jv_str, jv_str, size_t, void *, names *);

static jv_err list_counters(jv_store *st, jv_str p, jv_str after, size_t limit,
                            void *unused, names *out)
{
    (void)unused;
    return jv_store_counter_list(st, p, after, limit, counter_cb, out);
}

static jv_err list_config(jv_store *st, jv_str p, jv_str after, size_t limit,
                          void *unused, names *out)
{
    (void)unused;
    return jv_store_config_list(st, p, after, limit, config_cb, out);
}

static jv_err list_archive(jv_store *st, jv_str p, jv_str after, size_t limit,
                           void *unused, names *out)
{
    (void)unused;
    return jv_store_archive_list(st, p, after, limit, archive_cb, out);
}

/* Lists every prefix edge case in one go and in pages of every size. */
static void check_prefixes(jv_store *st, lister list)
{
    static const struct {
        const char *p;
        size_t n;
    } prefixes[] = {
        {"", 0},          {"a", 1},        {"a%", 2},   {"a_", 2},
        {"a\\", 2},       {"a\xc3", 2},    {"\xc3", 1}, {"a\xff", 2},
        {"\xff", 1},      {"\xff\xff", 2}, {"zz", 2},   {"\xf0\x9f", 2},
        {"a\xc3\xa9", 3},
    };
    for (size_t k = 0; k < sizeof(prefixes) / sizeof(*prefixes); k++) {
        const char *want[NTRICKY];
        size_t nwant = expect_prefix(prefixes[k].p, prefixes[k].n, want);
        jv_str prefix = {prefixes[k].p, prefixes[k].n};
        names all = {0};
        assert_int_equal(list(st, prefix, jv_str_c(""), 0, NULL, &all), JV_OK);
        assert_int_equal(all.n, nwant);
        for (size_t i = 0; i < nwant; i++)
            assert_string_equal(all.items[i], want[i]);
        for (size_t page = 1; page <= 4; page++) {
            names got = {0};
            char cursor[64] = "";
            for (;;) {
                names one = {0};
                assert_int_equal(
                    list(st, prefix, jv_str_c(cursor), page, NULL, &one),
                    JV_OK);
                assert_true(one.n <= page);
                for (size_t i = 0; i < one.n; i++)
                    names_add(&got, jv_str_c(one.items[i]), one.vals[i]);
                if (one.n < page)
                    break;
                strcpy(cursor, one.items[one.n - 1]);
            }
            assert_int_equal(got.n, nwant);
            for (size_t i = 0; i < nwant; i++)
                assert_string_equal(got.items[i], want[i]);
        }
        /* A cursor before the prefix starts at the prefix. */
        names early = {0};
        assert_int_equal(list(st, prefix, jv_str_c("\x01"), 0, NULL, &early),
                         JV_OK);
        assert_int_equal(early.n, nwant);
    }
}

static void test_counters(void **state)
{
    fx *f = *state;
    jv_intent in[NTRICKY];
    for (size_t i = 0; i < NTRICKY; i++)
        in[i] = st_counter(tricky[i], (int64_t)i + 1);
    commit(f, in, NTRICKY, 10);
    /* A second replica's shares of "a". */
    jv_op op = {.kind = JV_OP_COUNTER};
    op.counter.name = jv_str_c("a");
    op.counter.p = 10;
    op.counter.n = 4;
    st_batch b;
    st_batch_make(&b, &f->a, 1, zero, hlc_at(10), &op, 1);
    assert_int_equal(st_apply1(f->st, &b, 0), JV_OK);

    names c = {0};
    assert_int_equal(jv_store_counter_list(f->st, jv_str_c("a"), jv_str_c(""),
                                           1, counter_cb, &c),
                     JV_OK);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.vals[0], 1 + 10 - 4);
    check_prefixes(f->st, list_counters);
    st_batch_fini(&b);
}

typedef struct {
    jv_counter_share s[4];
    size_t n;
} shares;

static jv_err share_cb(void *arg, const jv_counter_share *s)
{
    shares *c = arg;
    c->s[c->n++] = *s;
    return JV_OK;
}

static jv_err stop_cb(void *arg, const jv_counter_share *s)
{
    (void)s;
    (*(int *)arg)++;
    return JV_ELIMIT;
}

static void test_counter_shares(void **state)
{
    fx *f = *state;
    jv_intent in = st_counter("hits", 7);
    commit(f, &in, 1, 10);
    jv_op op = {.kind = JV_OP_COUNTER};
    op.counter.name = jv_str_c("hits");
    op.counter.p = 3;
    st_batch b;
    st_batch_make(&b, &f->a, 1, zero, hlc_at(10), &op, 1);
    assert_int_equal(st_apply1(f->st, &b, 0), JV_OK);
    shares c = {0};
    assert_int_equal(
        jv_store_counter_get(f->st, jv_str_c("hits"), share_cb, &c), JV_OK);
    assert_int_equal(c.n, 2);
    assert_true(jv_id_cmp(&c.s[0].replica, &c.s[1].replica) < 0);
    uint64_t sum = c.s[0].p + c.s[1].p;
    assert_int_equal(sum, 10);
    assert_int_equal(
        jv_store_counter_get(f->st, jv_str_c("nope"), share_cb, &c),
        JV_ENOTFOUND);
    /* A callback's code stops the scan and comes back. */
    int calls = 0;
    assert_int_equal(
        jv_store_counter_get(f->st, jv_str_c("hits"), stop_cb, &calls),
        JV_ELIMIT);
    assert_int_equal(calls, 1);
    st_batch_fini(&b);
}

/* -- audit ---------------------------------------------------------------- */

enum {
    NAUDIT = 24
};

typedef struct {
    uint64_t time;
    uint64_t seq;
    const char *actor, *action;
} audit_exp;

typedef struct {
    uint64_t seq[NAUDIT + 1];
    uint64_t time[NAUDIT + 1];
    jv_dot id[NAUDIT + 1];
    size_t n;
} audit_got;

static jv_err audit_cb(void *arg, const jv_audit_row *r)
{
    audit_got *g = arg;
    assert_true(g->n < NAUDIT + 1);
    g->seq[g->n] = r->id.n;
    g->time[g->n] = r->time_ms;
    g->id[g->n] = r->id;
    g->n++;
    return JV_OK;
}

static int exp_cmp(const void *a, const void *b)
{
    const audit_exp *x = a, *y = b;
    if (x->time != y->time)
        return x->time < y->time ? -1 : 1;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

static void test_audit(void **state)
{
    fx *f = *state;
    audit_exp e[NAUDIT];
    jv_intent in[NAUDIT];
    static const char *const actors[] = {"alice", "bob", "carol"};
    static const char *const actions[] = {"read", "write"};
    for (size_t i = 0; i < NAUDIT; i++) {
        e[i].time = 100 + (i * 7) % 5 * 10; /* repeats: ties on time */
        e[i].seq = i + 1;
        e[i].actor = actors[i % 3];
        e[i].action = actions[i % 2];
        in[i] = st_audit(e[i].time, e[i].actor, e[i].action, "t", "d");
    }
    commit(f, in, NAUDIT, 1000);
    qsort(e, NAUDIT, sizeof(*e), exp_cmp);

    struct {
        uint64_t since, until;
        const char *actor, *action;
    } qs[] = {
        {0, 0, "", ""},          {110, 0, "", ""},      {0, 130, "", ""},
        {110, 130, "", ""},      {0, 0, "bob", ""},     {0, 0, "", "write"},
        {0, 0, "carol", "read"}, {120, 0, "alice", ""}, {0, 0, "nobody", ""},
        {140, 110, "", ""},
    };
    for (size_t q = 0; q < sizeof(qs) / sizeof(*qs); q++) {
        for (int desc = 0; desc < 2; desc++) {
            /* Expected rows in the chosen order. */
            uint64_t want[NAUDIT];
            size_t nwant = 0;
            for (size_t k = 0; k < NAUDIT; k++) {
                size_t i = desc ? NAUDIT - 1 - k : k;
                if (e[i].time < qs[q].since ||
                    (qs[q].until && e[i].time >= qs[q].until))
                    continue;
                if (*qs[q].actor && strcmp(e[i].actor, qs[q].actor))
                    continue;
                if (*qs[q].action && strcmp(e[i].action, qs[q].action))
                    continue;
                want[nwant++] = e[i].seq;
            }
            for (size_t page = 0; page <= 5; page += 2) {
                jv_audit_query aq = {
                    .since_ms = qs[q].since,
                    .until_ms = qs[q].until,
                    .actor = jv_str_c(qs[q].actor),
                    .action = jv_str_c(qs[q].action),
                    .newest_first = desc,
                    .limit = page,
                };
                audit_got all = {0};
                for (;;) {
                    audit_got one = {0};
                    assert_int_equal(
                        jv_store_audit_query(f->st, &aq, audit_cb, &one),
                        JV_OK);
                    for (size_t i = 0; i < one.n; i++) {
                        all.seq[all.n++] = one.seq[i];
                        assert_memory_equal(one.id[i].id.b, f->node.pk.b,
                                            JV_ID_LEN);
                    }
                    if (page == 0 || one.n < page)
                        break;
                    aq.has_cursor = true;
                    aq.cursor_time_ms = one.time[one.n - 1];
                    aq.cursor_id = one.id[one.n - 1];
                }
                assert_int_equal(all.n, nwant);
                for (size_t i = 0; i < nwant; i++)
                    assert_int_equal(all.seq[i], want[i]);
            }
        }
    }
    /* A cursor outside the time bounds does not widen them. */
    for (int desc = 0; desc < 2; desc++) {
        jv_audit_query aq = {
            .since_ms = desc ? 0 : 120,
            .until_ms = desc ? 120 : 0,
            .newest_first = desc,
            .has_cursor = true,
            .cursor_time_ms = desc ? 140 : 100,
            .cursor_id = {f->node.pk, 1},
        };
        audit_got g = {0};
        assert_int_equal(jv_store_audit_query(f->st, &aq, audit_cb, &g), JV_OK);
        size_t nwant = 0;
        for (size_t i = 0; i < NAUDIT; i++)
            nwant += desc ? e[i].time < 120 : e[i].time >= 120;
        assert_int_equal(g.n, nwant);
        for (size_t i = 0; i < g.n; i++)
            assert_true(desc ? g.time[i] < 120 : g.time[i] >= 120);
    }
    audit_got scan = {0};
    assert_int_equal(jv_store_audit_scan(f->st, audit_cb, &scan), JV_OK);
    assert_int_equal(scan.n, NAUDIT);
    for (size_t i = 0; i < NAUDIT; i++)
        assert_int_equal(scan.seq[i], e[i].seq); /* by (time, origin, seq) */
}

/* Filters walk the minutes each actor and action occur in: entries spread
 * over hours, random bounds inside minutes, both orders, every page size,
 * against a model. */
enum {
    NSPREAD = 300,
    NSPREAD_QUERIES = 300
};

typedef struct {
    uint64_t seq[NSPREAD];
    uint64_t time[NSPREAD];
    jv_dot id[NSPREAD];
    size_t n;
} spread_got;

static jv_err spread_cb(void *arg, const jv_audit_row *r)
{
    spread_got *g = arg;
    assert_true(g->n < NSPREAD);
    g->seq[g->n] = r->id.n;
    g->time[g->n] = r->time_ms;
    g->id[g->n] = r->id;
    g->n++;
    return JV_OK;
}

static void test_audit_across_minutes(void **state)
{
    fx *f = *state;
    static audit_exp e[NSPREAD];
    static jv_intent in[NSPREAD];
    static const char *const actors[] = {"alice", "bob", "carol", "dave"};
    static const char *const actions[] = {"read", "write", "deploy"};
    const uint64_t span = 3 * 3600 * 1000;
    jv_rng rng;
    jv_rng_seed(&rng, jv_test_seed() ^ 0xa0d17);
    for (size_t i = 0; i < NSPREAD; i++) {
        /* Every fifth entry shares its predecessor's time: ties. */
        e[i].time = i % 5 == 4 ? e[i - 1].time : jv_rng_below(&rng, span);
        e[i].seq = i + 1;
        e[i].actor = actors[jv_rng_below(&rng, 4)];
        e[i].action = actions[jv_rng_below(&rng, 3)];
        in[i] = st_audit(e[i].time, e[i].actor, e[i].action, "t", "d");
    }
    commit(f, in, NSPREAD, span + 1000);
    qsort(e, NSPREAD, sizeof(*e), exp_cmp);

    static const size_t pages[] = {0, 1, 7, 50};
    for (size_t q = 0; q < NSPREAD_QUERIES; q++) {
        uint64_t since =
            jv_rng_chance(&rng, 1, 2) ? jv_rng_below(&rng, span) : 0;
        uint64_t until =
            jv_rng_chance(&rng, 1, 2) ? jv_rng_below(&rng, span) : 0;
        const char *actor =
            jv_rng_chance(&rng, 2, 3) ? actors[jv_rng_below(&rng, 4)] : "";
        const char *action =
            jv_rng_chance(&rng, 1, 2) ? actions[jv_rng_below(&rng, 3)] : "";
        bool desc = jv_rng_chance(&rng, 1, 2);
        size_t page = pages[jv_rng_below(&rng, 4)];
        uint64_t want[NSPREAD];
        size_t nwant = 0;
        for (size_t k = 0; k < NSPREAD; k++) {
            size_t i = desc ? NSPREAD - 1 - k : k;
            if (e[i].time < since || (until && e[i].time >= until) ||
                (*actor && strcmp(e[i].actor, actor)) ||
                (*action && strcmp(e[i].action, action)))
                continue;
            want[nwant++] = e[i].seq;
        }
        jv_audit_query aq = {
            .since_ms = since,
            .until_ms = until,
            .actor = jv_str_c(actor),
            .action = jv_str_c(action),
            .newest_first = desc,
            .limit = page,
        };
        spread_got all = {0};
        for (;;) {
            spread_got one = {0};
            assert_int_equal(jv_store_audit_query(f->st, &aq, spread_cb, &one),
                             JV_OK);
            assert_true(page == 0 || one.n <= page);
            for (size_t i = 0; i < one.n; i++)
                all.seq[all.n++] = one.seq[i];
            if (page == 0 || one.n < page)
                break;
            aq.has_cursor = true;
            aq.cursor_time_ms = one.time[one.n - 1];
            aq.cursor_id = one.id[one.n - 1];
        }
        if (all.n != nwant)
            fail_msg("query %zu (since %llu until %llu actor '%s' action "
                     "'%s' %s page %zu): %zu rows, want %zu",
                     q, (unsigned long long)since, (unsigned long long)until,
                     actor, action, desc ? "desc" : "asc", page, all.n, nwant);
        for (size_t i = 0; i < nwant; i++)
            assert_int_equal(all.seq[i], want[i]);
    }
}

/* -- config and archive --------------------------------------------------- */

typedef struct {
    char value[64];
    uint64_t stamp;
    jv_id replica;
} config_one;

static jv_err config_one_cb(void *arg, const jv_config_row *r)
{
    config_one *c = arg;
    snprintf(c->value, sizeof(c->value), "%.*s", (int)r->value.n, r->value.p);
    c->stamp = r->stamp;
    c->replica = r->replica;
    return JV_OK;
}

static void test_config(void **state)
{
    fx *f = *state;
    jv_intent in[NTRICKY];
    for (size_t i = 0; i < NTRICKY; i++)
        in[i] = st_config(tricky[i], "true", hlc_at(10) + i);
    commit(f, in, NTRICKY, 20);
    config_one c = {0};
    assert_int_equal(
        jv_store_config_get(f->st, jv_str_c("a%b"), config_one_cb, &c), JV_OK);
    assert_string_equal(c.value, "true");
    assert_int_equal(c.stamp, hlc_at(10) + 2);
    assert_memory_equal(c.replica.b, f->node.pk.b, JV_ID_LEN);
    assert_int_equal(
        jv_store_config_get(f->st, jv_str_c("a%"), config_one_cb, &c), JV_OK);
    assert_int_equal(
        jv_store_config_get(f->st, jv_str_c("nope"), config_one_cb, &c),
        JV_ENOTFOUND);
    check_prefixes(f->st, list_config);
}

typedef struct {
    char value[64];
    uint64_t stamp;
    jv_dot dot;
    size_t nvalues;
} archive_one;

static jv_err archive_one_cb(void *arg, const jv_archive_row *r)
{
    archive_one *a = arg;
    snprintf(a->value, sizeof(a->value), "%.*s", (int)r->value.n, r->value.p);
    a->stamp = r->stamp;
    a->dot = r->dot;
    a->nvalues = r->nvalues;
    return JV_OK;
}

static jv_op op_add(const char *key, const char *value, uint64_t stamp,
                    uint64_t dot_n)
{
    jv_op op = {.kind = JV_OP_ARCHIVE_ADD};
    op.add.key = jv_str_c(key);
    op.add.value = jv_str_c(value);
    op.add.stamp = stamp;
    op.add.dot_n = dot_n;
    return op;
}

typedef struct {
    jv_dot d[8];
    size_t n;
} dots;

static jv_err dot_cb(void *arg, const jv_dot *d)
{
    dots *c = arg;
    c->d[c->n++] = *d;
    return JV_OK;
}

static void test_archive(void **state)
{
    fx *f = *state;
    jv_intent in[NTRICKY];
    for (size_t i = 0; i < NTRICKY; i++)
        in[i] = st_add(tricky[i], "\"v\"", hlc_at(10));
    commit(f, in, NTRICKY, 20);
    check_prefixes(f->st, list_archive);

    /* Concurrent adds of "a" by A and B (neither saw ours): three live
     * values; the one shown has the greatest (stamp, dot). A's dots skip
     * ahead (3 before 1 and 2) to exercise the causal context's cloud. */
    jv_op oa[3] = {op_add("a", "\"from-a\"", hlc_at(30), 3),
                   op_add("x", "\"x1\"", hlc_at(30), 1),
                   op_add("x", "\"x2\"", hlc_at(30), 2)};
    jv_op ob = op_add("a", "\"from-b\"", hlc_at(30), 1);
    st_batch ba, bb;
    st_batch_make(&ba, &f->a, 1, zero, hlc_at(30), oa, 1);
    st_batch_make(&bb, &f->b, 1, zero, hlc_at(30), &ob, 1);
    assert_int_equal(st_apply1(f->st, &ba, 0), JV_OK);
    assert_int_equal(st_apply1(f->st, &bb, 0), JV_OK);
    archive_one a = {0};
    assert_int_equal(
        jv_store_archive_get(f->st, jv_str_c("a"), archive_one_cb, &a), JV_OK);
    assert_int_equal(a.nvalues, 3);
    assert_int_equal(a.stamp, hlc_at(30));
    const jv_id *top = jv_id_cmp(&f->a.pk, &f->b.pk) > 0 ? &f->a.pk : &f->b.pk;
    assert_memory_equal(a.dot.id.b, top->b, JV_ID_LEN);
    assert_string_equal(a.value, top == &f->a.pk ? "\"from-a\"" : "\"from-b\"");

    jv_vv vv;
    jv_vv_init(&vv);
    dots cloud = {0};
    assert_int_equal(jv_store_archive_context(f->st, &vv, dot_cb, &cloud),
                     JV_OK);
    assert_int_equal(jv_vv_get(&vv, &f->a.pk), 0);
    assert_int_equal(jv_vv_get(&vv, &f->b.pk), 1);
    assert_int_equal(jv_vv_get(&vv, &f->node.pk), NTRICKY);
    assert_int_equal(cloud.n, 1);
    assert_int_equal(cloud.d[0].n, 3);
    /* Dots 1 and 2 arrive: the cloud folds into the vector. */
    st_batch ba2;
    st_batch_make(&ba2, &f->a, 2, ba.hash, hlc_at(31), oa + 1, 2);
    assert_int_equal(st_apply1(f->st, &ba2, 0), JV_OK);
    cloud.n = 0;
    assert_int_equal(jv_store_archive_context(f->st, &vv, dot_cb, &cloud),
                     JV_OK);
    assert_int_equal(jv_vv_get(&vv, &f->a.pk), 3);
    assert_int_equal(cloud.n, 0);

    /* Our remove covers the three values we saw. */
    in[0] = st_rm("a");
    commit(f, in, 1, 40);
    assert_int_equal(
        jv_store_archive_get(f->st, jv_str_c("a"), archive_one_cb, &a),
        JV_ENOTFOUND);
    jv_vv_fini(&vv);
    st_batch_fini(&ba);
    st_batch_fini(&ba2);
    st_batch_fini(&bb);
}

/* -- log, vector, held, replicas ------------------------------------------ */

typedef struct {
    uint64_t first[32], last[32];
    size_t len[32];
    size_t n;
    jv_store *reenter;
    jv_err reenter_err;
} log_got;

static jv_err log_cb(void *arg, const jv_log_row *r)
{
    log_got *g = arg;
    g->first[g->n] = r->first_seq;
    g->last[g->n] = r->last_seq;
    g->len[g->n] = r->len;
    g->n++;
    if (g->reenter) {
        log_got inner = {0};
        g->reenter_err =
            jv_store_log_after(g->reenter, &r->origin, 0, 0, 0, log_cb, &inner);
    }
    return JV_OK;
}

static void test_log_after(void **state)
{
    fx *f = *state;
    /* Ten batches of A: batch i holds i+1 ops with values of growing size,
     * so bodies have distinct lengths. */
    st_batch b[10];
    const uint8_t *prev = zero;
    uint64_t seq = 1;
    char val[600];
    memset(val, 'v', sizeof(val));
    val[sizeof(val) - 1] = '\0';
    for (int i = 0; i < 10; i++) {
        jv_op ops[10];
        for (int k = 0; k <= i; k++) {
            ops[k] = (jv_op){.kind = JV_OP_CONFIG};
            ops[k].config.key = jv_str_c("k");
            ops[k].config.value = (jv_str){val, (size_t)(50 * (i + 1))};
            ops[k].config.stamp = hlc_at(50);
        }
        st_batch_make(&b[i], &f->a, seq, prev, hlc_at(50), ops,
                      (uint32_t)i + 1);
        assert_int_equal(st_apply1(f->st, &b[i], 0), JV_OK);
        prev = b[i].hash;
        seq += (uint64_t)i + 1;
    }
    /* seqs: [1], [2,3], [4..6], [7..10], [11..15], ... [46..55] */
    log_got g = {0};
    assert_int_equal(jv_store_log_after(f->st, &f->a.pk, 0, 0, 0, log_cb, &g),
                     JV_OK);
    assert_int_equal(g.n, 10);
    memset(&g, 0, sizeof(g));
    /* After seq 5: the batch holding 6 comes first. */
    assert_int_equal(jv_store_log_after(f->st, &f->a.pk, 5, 3, 0, log_cb, &g),
                     JV_OK);
    assert_int_equal(g.n, 3);
    assert_int_equal(g.first[0], 4);
    assert_int_equal(g.first[2], 11);
    memset(&g, 0, sizeof(g));
    assert_int_equal(jv_store_log_after(f->st, &f->a.pk, 6, 0, 0, log_cb, &g),
                     JV_OK);
    assert_int_equal(g.first[0], 7);
    assert_int_equal(g.n, 7);
    /* Byte bounds: the first batch always, then only what fits. */
    size_t l7 = b[3].body.len, l8 = b[4].body.len;
    memset(&g, 0, sizeof(g));
    assert_int_equal(jv_store_log_after(f->st, &f->a.pk, 6, 0, 1, log_cb, &g),
                     JV_OK);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.len[0], l7);
    memset(&g, 0, sizeof(g));
    assert_int_equal(
        jv_store_log_after(f->st, &f->a.pk, 6, 0, l7 + l8, log_cb, &g), JV_OK);
    assert_int_equal(g.n, 2);
    memset(&g, 0, sizeof(g));
    assert_int_equal(
        jv_store_log_after(f->st, &f->a.pk, 6, 0, l7 + l8 - 1, log_cb, &g),
        JV_OK);
    assert_int_equal(g.n, 1);
    memset(&g, 0, sizeof(g));
    assert_int_equal(jv_store_log_after(f->st, &f->a.pk, 55, 0, 0, log_cb, &g),
                     JV_OK);
    assert_int_equal(g.n, 0);
    assert_int_equal(jv_store_log_after(f->st, &f->b.pk, 0, 0, 0, log_cb, &g),
                     JV_OK);
    assert_int_equal(g.n, 0);

    /* A callback that calls back into the same store is refused, not
     * corrupted. */
    memset(&g, 0, sizeof(g));
    g.reenter = f->st;
    assert_int_equal(jv_store_log_after(f->st, &f->a.pk, 50, 0, 0, log_cb, &g),
                     JV_OK);
    assert_int_equal(g.reenter_err, JV_ESTATE);

    jv_vv vv;
    jv_vv_init(&vv);
    assert_int_equal(jv_store_vv(f->st, &vv), JV_OK);
    assert_int_equal(vv.n, 1);
    assert_int_equal(jv_vv_get(&vv, &f->a.pk), 55);
    uint64_t s;
    uint8_t h[JV_HASH_LEN];
    assert_int_equal(jv_store_origin_head(f->st, &f->b.pk, &s, h), JV_OK);
    assert_int_equal(s, 0);
    assert_memory_equal(h, zero, JV_HASH_LEN);
    jv_vv_fini(&vv);
    for (int i = 0; i < 10; i++)
        st_batch_fini(&b[i]);
}

typedef struct {
    jv_held_row r[4];
    size_t n;
} held_got;

static jv_err held_cb(void *arg, const jv_held_row *r)
{
    held_got *g = arg;
    g->r[g->n++] = *r;
    return JV_OK;
}

typedef struct {
    jv_id id[8];
    char name[8][16];
    uint64_t seq[8];
    size_t n;
} replica_got;

static jv_err replica_cb(void *arg, const jv_replica_row *r)
{
    replica_got *g = arg;
    g->id[g->n] = r->id;
    snprintf(g->name[g->n], 16, "%.*s", (int)r->name.n, r->name.p);
    g->seq[g->n] = r->seq;
    g->n++;
    return JV_OK;
}

static jv_err trust_cb(void *arg, const jv_trust_row *r)
{
    replica_got *g = arg;
    g->id[g->n] = r->node;
    snprintf(g->name[g->n], 16, "%.*s", (int)r->name.n, r->name.p);
    g->seq[g->n] = r->trusted;
    g->n++;
    return JV_OK;
}

static void test_held_replicas_trust(void **state)
{
    fx *f = *state;
    jv_op op = {.kind = JV_OP_COUNTER};
    op.counter.name = jv_str_c("c");
    op.counter.p = 1;
    st_batch ga, gb;
    uint8_t somewhere[JV_HASH_LEN];
    memset(somewhere, 0x11, sizeof(somewhere));
    st_batch_make(&ga, &f->a, 3, somewhere, hlc_at(5), &op, 1);
    st_batch_make(&gb, &f->b, 1, zero, hlc_at(5), &op, 1);
    assert_int_equal(st_apply1(f->st, &ga, 0), JV_EGAP);
    assert_int_equal(st_apply1(f->st, &gb, JV_APPLY_REQUIRE_TRUST),
                     JV_EUNTRUSTED);
    held_got h = {0};
    assert_int_equal(jv_store_held_list(f->st, held_cb, &h), JV_OK);
    assert_int_equal(h.n, 2);
    for (size_t i = 0; i < 2; i++) {
        bool is_a = jv_id_eq(&h.r[i].origin, &f->a.pk);
        assert_int_equal(h.r[i].reason, is_a ? JV_EGAP : JV_EUNTRUSTED);
        assert_int_equal(h.r[i].first_seq, is_a ? 3 : 1);
        assert_int_equal(h.r[i].len, is_a ? ga.body.len : gb.body.len);
    }

    jv_intent in = st_trust(&f->a.pk, true, hlc_at(6), "alpha");
    commit(f, &in, 1, 6);
    replica_got r = {0};
    assert_int_equal(jv_store_replica_list(f->st, replica_cb, &r), JV_OK);
    assert_int_equal(r.n, 3); /* self, A (held, trusted), B (held) */
    for (size_t i = 0; i < r.n; i++) {
        if (i)
            assert_true(jv_id_cmp(&r.id[i - 1], &r.id[i]) < 0);
        if (jv_id_eq(&r.id[i], &f->a.pk))
            assert_string_equal(r.name[i], "alpha");
        if (jv_id_eq(&r.id[i], &f->node.pk))
            assert_int_equal(r.seq[i], 1);
    }
    replica_got t = {0};
    assert_int_equal(jv_store_trust_list(f->st, trust_cb, &t), JV_OK);
    assert_int_equal(t.n, 1);
    assert_string_equal(t.name[0], "alpha");
    assert_int_equal(t.seq[0], 1);
    st_batch_fini(&ga);
    st_batch_fini(&gb);
}

/* -- callbacks that stop, damaged rows, damaged schema -------------------- */

/* A callback that counts its calls and stops the scan with JV_ECLOSED (as
 * the node's does when the client has gone). */
#define STOPPER(fn, T)                      \
    static jv_err fn(void *arg, const T *r) \
    {                                       \
        (void)r;                            \
        (*(int *)arg)++;                    \
        return JV_ECLOSED;                  \
    }
STOPPER(stop_share, jv_counter_share)
STOPPER(stop_counter, jv_counter_row)
STOPPER(stop_audit, jv_audit_row)
STOPPER(stop_config, jv_config_row)
STOPPER(stop_archive, jv_archive_row)
STOPPER(stop_value, jv_archive_value)
STOPPER(stop_log, jv_log_row)
STOPPER(stop_held, jv_held_row)
STOPPER(stop_replica, jv_replica_row)
STOPPER(stop_trust, jv_trust_row)
STOPPER(stop_dot, jv_dot)

/* At least two rows in every listing: two names of counters (one with a
 * share from origin A), audit entries, config keys, archive keys, two
 * batches of this node, two held batches of B, replicas and trust rows,
 * and two dots in the causal context's cloud. */
static void fill_everything(fx *f)
{
    jv_intent in[10] = {
        st_counter("c/1", 1),
        st_counter("c/2", 2),
        st_audit(10, "admin", "put", "x", ""),
        st_audit(10, "admin", "put", "y", ""),
        st_config("k/1", "1", hlc_at(10)),
        st_config("k/2", "2", hlc_at(10)),
        st_add("a/1", "\"one\"", hlc_at(10)),
        st_add("a/2", "\"two\"", hlc_at(10)),
        st_trust(&f->a.pk, true, hlc_at(10), "alpha"),
        st_trust(&f->b.pk, false, hlc_at(10), "beta"),
    };
    commit(f, in, 10, 10);
    in[0] = st_counter("c/1", 1);
    commit(f, in, 1, 11);

    jv_op op = {.kind = JV_OP_COUNTER};
    op.counter.name = jv_str_c("c/1");
    op.counter.p = 5;
    /* A's archive values with dots 3 and 5: ahead of the gap at 1 and 2,
     * they go to the cloud. */
    jv_op ops[3] = {
        op, {.kind = JV_OP_ARCHIVE_ADD}, {.kind = JV_OP_ARCHIVE_ADD}};
    for (int i = 1; i < 3; i++) {
        ops[i].add.key = jv_str_c(i == 1 ? "a/3" : "a/5");
        ops[i].add.value = jv_str_c("0");
        ops[i].add.stamp = hlc_at(12);
        ops[i].add.dot_n = i == 1 ? 3 : 5;
    }
    st_batch a1, b3, b5;
    uint8_t somewhere[JV_HASH_LEN];
    memset(somewhere, 0x22, sizeof(somewhere));
    st_batch_make(&a1, &f->a, 1, zero, hlc_at(12), ops, 3);
    st_batch_make(&b3, &f->b, 3, somewhere, hlc_at(12), &op, 1);
    st_batch_make(&b5, &f->b, 5, somewhere, hlc_at(13), &op, 1);
    assert_int_equal(st_apply1(f->st, &a1, 0), JV_OK);
    assert_int_equal(st_apply1(f->st, &b3, 0), JV_EGAP);
    assert_int_equal(st_apply1(f->st, &b5, 0), JV_EGAP);
    st_batch_fini(&a1);
    st_batch_fini(&b3);
    st_batch_fini(&b5);
}

/* A callback's error ends the scan at once and is what the call returns;
 * the statement is left reusable (the same call then runs again). */
static void test_callback_error_stops(void **state)
{
    fx *f = *state;
    fill_everything(f);
    jv_str none = jv_str_c("");
    jv_audit_query all = {0}, by_actor = {0};
    by_actor.actor = jv_str_c("admin");
    jv_vv vv;
    jv_vv_init(&vv);
    for (int round = 0; round < 2; round++) {
        int n[15] = {0};
        assert_int_equal(
            jv_store_counter_get(f->st, jv_str_c("c/1"), stop_share, &n[0]),
            JV_ECLOSED);
        assert_int_equal(
            jv_store_counter_list(f->st, none, none, 0, stop_counter, &n[1]),
            JV_ECLOSED);
        assert_int_equal(jv_store_audit_query(f->st, &all, stop_audit, &n[2]),
                         JV_ECLOSED);
        assert_int_equal(
            jv_store_audit_query(f->st, &by_actor, stop_audit, &n[3]),
            JV_ECLOSED);
        assert_int_equal(jv_store_audit_scan(f->st, stop_audit, &n[4]),
                         JV_ECLOSED);
        assert_int_equal(
            jv_store_config_get(f->st, jv_str_c("k/1"), stop_config, &n[5]),
            JV_ECLOSED);
        assert_int_equal(
            jv_store_config_list(f->st, none, none, 0, stop_config, &n[6]),
            JV_ECLOSED);
        assert_int_equal(
            jv_store_archive_get(f->st, jv_str_c("a/1"), stop_archive, &n[7]),
            JV_ECLOSED);
        assert_int_equal(
            jv_store_archive_list(f->st, none, none, 0, stop_archive, &n[8]),
            JV_ECLOSED);
        assert_int_equal(jv_store_archive_values(f->st, stop_value, &n[9]),
                         JV_ECLOSED);
        assert_int_equal(jv_store_archive_key_values(f->st, jv_str_c("a/2"),
                                                     stop_value, &n[10]),
                         JV_ECLOSED);
        assert_int_equal(
            jv_store_log_after(f->st, &f->node.pk, 0, 0, 0, stop_log, &n[11]),
            JV_ECLOSED);
        assert_int_equal(jv_store_log_scan(f->st, stop_log, &n[12]),
                         JV_ECLOSED);
        assert_int_equal(jv_store_held_list(f->st, stop_held, &n[13]),
                         JV_ECLOSED);
        assert_int_equal(jv_store_replica_list(f->st, stop_replica, &n[14]),
                         JV_ECLOSED);
        for (size_t i = 0; i < sizeof(n) / sizeof(*n); i++)
            assert_int_equal(n[i], 1);
        int t = 0, d = 0;
        assert_int_equal(jv_store_trust_list(f->st, stop_trust, &t),
                         JV_ECLOSED);
        assert_int_equal(t, 1);
        assert_int_equal(jv_store_archive_context(f->st, &vv, stop_dot, &d),
                         JV_ECLOSED);
        assert_int_equal(d, 1);
    }
    jv_vv_fini(&vv);
    /* A cursor at or past the end of the prefix's range: nothing, at once. */
    names got = {0};
    assert_int_equal(jv_store_counter_list(f->st, jv_str_c("c/"),
                                           jv_str_c("c0"), 0, counter_cb, &got),
                     JV_OK);
    assert_int_equal(jv_store_config_list(f->st, jv_str_c("k/"),
                                          jv_str_c("k/\xff"), 0, config_cb,
                                          &got),
                     JV_OK);
    assert_int_equal(got.n, 0);
}

/* Runs SQL on a second, raw connection to the store's file: another
 * program (or a bad disk) damaging the database under a running node. */
static void raw_exec(fx *f, const char *sql)
{
    char *path = st_path(f->dir, "node.db");
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
        fail_msg("%s: %s", sql, err);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    free(path);
}

static jv_err never(void *arg, const void *r)
{
    (void)r;
    fail_msg("%s: a damaged row was passed on", (const char *)arg);
    return JV_OK;
}
#define NEVER(fn, T)                        \
    static jv_err fn(void *arg, const T *r) \
    {                                       \
        return never(arg, r);               \
    }
NEVER(never_share, jv_counter_share)
NEVER(never_audit, jv_audit_row)
NEVER(never_config, jv_config_row)
NEVER(never_archive, jv_archive_row)
NEVER(never_value, jv_archive_value)
NEVER(never_log, jv_log_row)
NEVER(never_held, jv_held_row)
NEVER(never_replica, jv_replica_row)
NEVER(never_trust, jv_trust_row)
NEVER(never_dot, jv_dot)

static void check_corrupt(fx *f, jv_err err, const char *needle, int line)
{
    if (err != JV_ECORRUPT)
        fail_msg("line %d: %s, not ECORRUPT", line, jv_errname(err));
    if (!strstr(jv_store_errmsg(f->st), needle))
        fail_msg("line %d: message \"%s\" does not say \"%s\"", line,
                 jv_store_errmsg(f->st), needle);
}
#define expect_corrupt(f, err, needle) check_corrupt(f, err, needle, __LINE__)

/* Ids, hashes and signatures of the wrong size (a damaged row) are
 * reported as damage, never handed to the callback as if valid. */
static void test_damaged_rows(void **state)
{
    fx *f = *state;
    fill_everything(f);
    raw_exec(f, "UPDATE counter SET replica = x'0102' WHERE name = 'c/2';"
                "UPDATE audit SET origin = x'01' WHERE target = 'x';"
                "UPDATE config SET replica = x'' WHERE key = 'k/1';"
                "UPDATE archive_span SET replica = x'0a' WHERE span = "
                "(SELECT id >> 40 FROM archive_entry WHERE key = 'a/1');"
                "UPDATE held SET origin = x'0b';"
                "UPDATE trust SET set_by = x'0c';"
                "UPDATE ctx_cloud SET replica = x'0d' WHERE n = 3;");
    const char *id = "replica id of";
    jv_audit_query q = {0};
    jv_vv vv;
    jv_vv_init(&vv);
    expect_corrupt(
        f, jv_store_counter_get(f->st, jv_str_c("c/2"), never_share, "share"),
        id);
    expect_corrupt(f, jv_store_audit_query(f->st, &q, never_audit, "audit"),
                   id);
    expect_corrupt(
        f, jv_store_config_get(f->st, jv_str_c("k/1"), never_config, "config"),
        id);
    expect_corrupt(
        f,
        jv_store_archive_get(f->st, jv_str_c("a/1"), never_archive, "archive"),
        id);
    expect_corrupt(f,
                   jv_store_archive_key_values(f->st, jv_str_c("a/1"),
                                               never_value, "value"),
                   id);
    expect_corrupt(f, jv_store_held_list(f->st, never_held, "held"), id);
    expect_corrupt(f, jv_store_trust_list(f->st, never_trust, "trust"), id);
    expect_corrupt(f, jv_store_archive_context(f->st, &vv, never_dot, "dot"),
                   id);

    /* The log: a hash cut short, then an origin; the head of the version
     * vector, then its origin; and the vector of the causal context. */
    raw_exec(f, "UPDATE batch SET hash = substr(hash, 1, 31)");
    expect_corrupt(f, jv_store_log_scan(f->st, never_log, "log"),
                   "bad hash or signature size");
    raw_exec(f, "UPDATE batch SET origin = x'0e'");
    expect_corrupt(f, jv_store_log_scan(f->st, never_log, "log"), id);
    uint64_t seq = 9;
    uint8_t hash[JV_HASH_LEN];
    raw_exec(f, "UPDATE vv SET hash = x'ff'");
    expect_corrupt(f, jv_store_origin_head(f->st, &f->node.pk, &seq, hash),
                   "bad hash");
    raw_exec(f, "UPDATE vv SET origin = substr(origin, 1, 5);"
                "UPDATE ctx SET replica = x'10'");
    expect_corrupt(f, jv_store_vv(f->st, &vv), id);
    expect_corrupt(f, jv_store_archive_context(f->st, &vv, NULL, NULL), id);
    raw_exec(f, "UPDATE replica SET id = substr(id, 1, 7)");
    expect_corrupt(f, jv_store_replica_list(f->st, never_replica, "replica"),
                   id);
    jv_vv_fini(&vv);
}

static void check_missing(fx *f, jv_err err, int line)
{
    if (err != JV_ESTORAGE)
        fail_msg("line %d: %s, not ESTORAGE", line, jv_errname(err));
    if (!strstr(jv_store_errmsg(f->st), "no such table"))
        fail_msg("line %d: message \"%s\"", line, jv_store_errmsg(f->st));
}
#define expect_missing(f, err) check_missing(f, err, __LINE__)

/* Tables dropped under a running node (open checked them): every read
 * fails with the database's own words, and nothing is passed on. */
static void test_tables_gone(void **state)
{
    fx *f = *state;
    raw_exec(f, "DROP TABLE counter; DROP TABLE audit; DROP TABLE config;"
                "DROP VIEW archive; DROP TABLE archive_entry;"
                "DROP TABLE archive_span; DROP TABLE ctx; DROP TABLE vv;"
                "DROP TABLE batch; DROP TABLE held; DROP TABLE trust;"
                "DROP TABLE replica; DROP TABLE audit_minute");
    jv_str none = jv_str_c("");
    jv_audit_query q = {0}, by_action = {0};
    by_action.action = jv_str_c("put");
    jv_vv vv;
    jv_vv_init(&vv);
    uint64_t seq;
    uint8_t hash[JV_HASH_LEN];
    bool trusted = true;
    expect_missing(
        f, jv_store_counter_get(f->st, jv_str_c("c"), never_share, "share"));
    expect_missing(
        f, jv_store_counter_list(f->st, none, none, 0, counter_cb, NULL));
    expect_missing(f, jv_store_audit_query(f->st, &q, never_audit, "audit"));
    expect_missing(
        f, jv_store_audit_query(f->st, &by_action, never_audit, "audit"));
    expect_missing(f, jv_store_audit_scan(f->st, never_audit, "audit"));
    expect_missing(
        f, jv_store_config_get(f->st, jv_str_c("k"), never_config, "config"));
    expect_missing(
        f, jv_store_config_list(f->st, none, none, 0, never_config, "config"));
    expect_missing(f, jv_store_archive_get(f->st, jv_str_c("a"), never_archive,
                                           "archive"));
    expect_missing(f, jv_store_archive_list(f->st, none, none, 0, never_archive,
                                            "archive"));
    expect_missing(f, jv_store_archive_values(f->st, never_value, "value"));
    expect_missing(f, jv_store_archive_key_values(f->st, jv_str_c("a"),
                                                  never_value, "value"));
    expect_missing(f, jv_store_archive_context(f->st, &vv, never_dot, "dot"));
    expect_missing(f, jv_store_vv(f->st, &vv));
    expect_missing(f, jv_store_origin_head(f->st, &f->a.pk, &seq, hash));
    expect_missing(
        f, jv_store_log_after(f->st, &f->a.pk, 0, 0, 0, never_log, "log"));
    expect_missing(f, jv_store_log_scan(f->st, never_log, "log"));
    expect_missing(f, jv_store_held_list(f->st, never_held, "held"));
    expect_missing(f, jv_store_replica_list(f->st, never_replica, "replica"));
    expect_missing(f, jv_store_trust_list(f->st, never_trust, "trust"));
    expect_missing(f, jv_store_is_trusted(f->st, &f->a.pk, &trusted));
    assert_false(trusted);
    /* Only the causal context's cloud gone: its vector is still read. */
    raw_exec(f, "CREATE TABLE ctx(replica BLOB PRIMARY KEY NOT NULL, seq "
                "INTEGER NOT NULL) WITHOUT ROWID; DROP TABLE ctx_cloud");
    expect_missing(f, jv_store_archive_context(f->st, &vv, never_dot, "dot"));
    assert_int_equal(jv_store_archive_context(f->st, &vv, NULL, NULL), JV_OK);
    jv_vv_fini(&vv);
}

int main(void)
{
    jv_test_seed();
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_counters),
        T(test_counter_shares),
        T(test_audit),
        T(test_audit_across_minutes),
        T(test_config),
        T(test_archive),
        T(test_log_after),
        T(test_held_replicas_trust),
        T(test_callback_error_stops),
        T(test_damaged_rows),
        T(test_tables_gone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
