/*
 * crdt_bench.c - throughput of the CRDT core: full-state joins and delta
 * applications per second for every type, and batch encode / decode /
 * sign / verify per second.
 *
 * States have a realistic size: 16 replicas; the audit set, LWW map and
 * OR-Set hold about 1,000 keys or entries; a counter is one metric (16
 * shares). A join merges a peer's state that differs from the target in
 * about 10% of its keys. A delta application joins the delta of one
 * mutation (decoded beforehand) into a state of that size.
 *
 * Baseline, measured in the same run with the same shapes and the same
 * timing loops: the naive structure a program without CRDT metadata would
 * keep. Counters and the version vector: a plain array of uint64 indexed
 * by replica number (no 32-byte replica ids), a join is the slot-wise max
 * and a delta one slot's max. Audit set, LWW map and OR-Set: a plain
 * open-addressing hash table of key -> value bytes (no stamps, replica
 * ids, dots or tombstones; a remove clears the slot's value), a join
 * upserts every entry of the peer's table (about 10% differ, as above:
 * the peer's value wins, since there is nothing to order them by) and a
 * delta upserts one key (audit: a new entry id -> its row). The naive
 * side cannot converge under concurrent writes; it shows what the CRDT
 * metadata and rules cost. Targets are prepared outside the clock on both
 * sides (decode of the encoded state for the CRDT, memcpy for the naive).
 *
 * Each figure runs for at least MIN_SECONDS; the whole run takes some
 * seconds. Usage: crdt_bench [min_seconds]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "batch.h"
#include "gcounter.h"
#include "hlc.h"
#include "lww.h"
#include "orset.h"
#include "vv.h"

#define REPLICAS 16
#define KEYS     1000
#define COPIES   64   /* targets prepared per timed round of joins */
#define DELTAS   4096 /* deltas applied per timed round */

static double min_seconds = 0.4;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void check(jv_err err, const char *what)
{
    if (err != JV_OK) {
        fprintf(stderr, "crdt_bench: %s: %s\n", what, jv_strerror(err));
        exit(1);
    }
}

static uint64_t rng_state = 0x243f6a8885a308d3ull;

static uint64_t rnd(uint64_t n)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (z ^ (z >> 31)) % n;
}

static jv_id replica[REPLICAS];

static void key_of(unsigned k, char out[16])
{
    snprintf(out, 16, "key/%05u", k);
}

/* ---- one table row per type ------------------------------------------- */

typedef struct {
    const char *name;
    const char *size;
    size_t state_size;
    void (*init)(void *s);
    void (*fini)(void *s);
    jv_err (*join)(void *dst, const void *src);
    jv_err (*encode)(const void *s, jv_buf *out);
    jv_err (*decode)(const void *p, size_t n, void *out);
    /* Fills s with the common base state. */
    void (*base)(void *s);
    /* One random mutation of s by replica r, its delta into delta. */
    void (*mutate)(void *s, unsigned r, void *delta);
} type;

static void *alloc_state(const type *t)
{
    void *s = malloc(t->state_size);
    if (!s) {
        fprintf(stderr, "crdt_bench: out of memory\n");
        exit(1);
    }
    t->init(s);
    return s;
}

static void free_state(const type *t, void *s)
{
    t->fini(s);
    free(s);
}

static void copy_into(const type *t, const jv_buf *enc, void *s)
{
    check(t->decode(enc->data, enc->len, s), "decode");
}

typedef struct {
    double joins, deltas;
    size_t bytes;
} result;

static result run_type(const type *t)
{
    result res;
    jv_buf enc_a, enc_b, enc_d;
    jv_buf_init(&enc_a);
    jv_buf_init(&enc_b);
    jv_buf_init(&enc_d);

    /* A: the base; B: A moved on by other replicas (about 10% of keys). */
    void *a = alloc_state(t), *b = alloc_state(t), *tmp = alloc_state(t);
    t->base(a);
    check(t->encode(a, &enc_a), "encode");
    copy_into(t, &enc_a, b);
    for (unsigned i = 0; i < KEYS / 10; i++)
        t->mutate(b, (unsigned)rnd(REPLICAS), tmp);
    check(t->encode(b, &enc_b), "encode");
    res.bytes = enc_a.len;

    /* Full-state joins: B into fresh copies of A. */
    void **targets = malloc(COPIES * sizeof(*targets));
    for (int i = 0; i < COPIES; i++)
        targets[i] = alloc_state(t);
    double spent = 0;
    uint64_t joins = 0;
    while (spent < min_seconds) {
        for (int i = 0; i < COPIES; i++)
            copy_into(t, &enc_a, targets[i]);
        double t0 = now();
        for (int i = 0; i < COPIES; i++)
            check(t->join(targets[i], b), "join");
        spent += now() - t0;
        joins += COPIES;
    }
    res.joins = (double)joins / spent;

    /* Deltas: produced by random replicas on a copy of A, shipped as
     * bytes, decoded once, then applied in order to another copy of A. */
    void **deltas = malloc(DELTAS * sizeof(*deltas));
    void *producer = alloc_state(t);
    copy_into(t, &enc_a, producer);
    for (int i = 0; i < DELTAS; i++) {
        deltas[i] = alloc_state(t);
        t->mutate(producer, (unsigned)rnd(REPLICAS), tmp);
        jv_buf_reset(&enc_d);
        check(t->encode(tmp, &enc_d), "encode");
        copy_into(t, &enc_d, deltas[i]);
    }
    spent = 0;
    uint64_t applied = 0;
    void *target = alloc_state(t);
    while (spent < min_seconds) {
        copy_into(t, &enc_a, target);
        double t0 = now();
        for (int i = 0; i < DELTAS; i++)
            check(t->join(target, deltas[i]), "delta join");
        spent += now() - t0;
        applied += DELTAS;
    }
    res.deltas = (double)applied / spent;

    for (int i = 0; i < DELTAS; i++)
        free_state(t, deltas[i]);
    for (int i = 0; i < COPIES; i++)
        free_state(t, targets[i]);
    free(deltas);
    free(targets);
    free_state(t, target);
    free_state(t, producer);
    free_state(t, a);
    free_state(t, b);
    free_state(t, tmp);
    jv_buf_fini(&enc_a);
    jv_buf_fini(&enc_b);
    jv_buf_fini(&enc_d);
    return res;
}

/* ---- naive baseline --------------------------------------------------- */

typedef struct {
    uint8_t used;
    uint8_t vlen;
    char key[22];
    char value[72];
} nentry;

typedef struct {
    size_t cap, n;
    nentry *e;
} ntable;

static void nt_init(ntable *t, size_t cap)
{
    t->cap = cap;
    t->n = 0;
    t->e = calloc(cap, sizeof(*t->e));
    if (t->e == NULL) {
        fprintf(stderr, "crdt_bench: out of memory\n");
        exit(1);
    }
}

static void nt_copy(ntable *dst, const ntable *src)
{
    memcpy(dst->e, src->e, src->cap * sizeof(*src->e));
    dst->n = src->n;
}

/* FNV-1a; linear probing; never more than half full here. */
static nentry *nt_slot(ntable *t, const char *key)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *p = key; *p; p++)
        h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
    for (size_t i = h & (t->cap - 1);; i = (i + 1) & (t->cap - 1))
        if (!t->e[i].used || strcmp(t->e[i].key, key) == 0)
            return &t->e[i];
}

static void nt_put(ntable *t, const char *key, const char *v, size_t vlen)
{
    nentry *e = nt_slot(t, key);
    if (!e->used) {
        e->used = 1;
        strcpy(e->key, key);
        t->n++;
    } else if (e->vlen == vlen && memcmp(e->value, v, vlen) == 0) {
        return;
    }
    memcpy(e->value, v, vlen);
    e->vlen = (uint8_t)vlen;
}

static void nt_join(ntable *dst, const ntable *src)
{
    for (size_t i = 0; i < src->cap; i++)
        if (src->e[i].used)
            nt_put(dst, src->e[i].key, src->e[i].value, src->e[i].vlen);
}

typedef struct {
    char key[22];
    char value[72];
    uint8_t vlen;
} nput;

/* The key of mutation i of a naive table (audit: a new entry id). */
static void naive_key(bool audit, unsigned i, char out[22])
{
    if (audit)
        snprintf(out, 22, "r%02u/%08u", i % REPLICAS, i);
    else
        snprintf(out, 22, "key/%05u", (unsigned)rnd(KEYS));
}

static void naive_value(const char *value, unsigned i, nput *p)
{
    p->vlen = (uint8_t)snprintf(p->value, sizeof(p->value), "%s%u", value, i);
}

static double naive_rate_joins(const ntable *a, const ntable *b)
{
    ntable targets[COPIES];
    for (int i = 0; i < COPIES; i++)
        nt_init(&targets[i], a->cap);
    double spent = 0;
    uint64_t joins = 0;
    while (spent < min_seconds) {
        for (int i = 0; i < COPIES; i++)
            nt_copy(&targets[i], a);
        double t0 = now();
        for (int i = 0; i < COPIES; i++)
            nt_join(&targets[i], b);
        spent += now() - t0;
        joins += COPIES;
    }
    for (int i = 0; i < COPIES; i++)
        free(targets[i].e);
    return (double)joins / spent;
}

/* Joins/s and deltas/s of a naive table of KEYS entries. */
static void naive_table(bool audit, const char *value, double *joins,
                        double *deltas)
{
    ntable a, b, target;
    nput *puts = malloc(DELTAS * sizeof(*puts));
    nt_init(&a, 4096);
    nt_init(&b, 4096);
    nt_init(&target, 16384);
    unsigned serial = 0;
    for (unsigned k = 0; k < KEYS; k++) {
        nput p;
        if (audit)
            naive_key(true, serial++, p.key);
        else
            snprintf(p.key, sizeof(p.key), "key/%05u", k);
        naive_value(value, k, &p);
        nt_put(&a, p.key, p.value, p.vlen);
    }
    nt_copy(&b, &a);
    for (unsigned i = 0; i < KEYS / 10; i++) {
        nput p;
        naive_key(audit, serial++, p.key);
        naive_value(value, KEYS + i, &p);
        nt_put(&b, p.key, p.value, p.vlen);
    }
    *joins = naive_rate_joins(&a, &b);
    for (unsigned i = 0; i < DELTAS; i++) {
        naive_key(audit, serial++, puts[i].key);
        naive_value(value, 2 * KEYS + i, &puts[i]);
    }
    double spent = 0;
    uint64_t applied = 0;
    while (spent < min_seconds) {
        memset(target.e, 0, target.cap * sizeof(*target.e));
        for (size_t i = 0; i < a.cap; i++)
            if (a.e[i].used)
                nt_put(&target, a.e[i].key, a.e[i].value, a.e[i].vlen);
        double t0 = now();
        for (unsigned i = 0; i < DELTAS; i++)
            nt_put(&target, puts[i].key, puts[i].value, puts[i].vlen);
        spent += now() - t0;
        applied += DELTAS;
    }
    *deltas = (double)applied / spent;
    free(a.e);
    free(b.e);
    free(target.e);
    free(puts);
}

/* Joins/s and deltas/s of a plain array of n uint64 slots. */
static void naive_array(unsigned n, double *joins, double *deltas)
{
    uint64_t a[2 * REPLICAS], b[2 * REPLICAS], t[COPIES][2 * REPLICAS];
    struct {
        unsigned slot;
        uint64_t v;
    } *d = malloc(DELTAS * sizeof(*d));
    for (unsigned i = 0; i < n; i++)
        a[i] = b[i] = 1000 + rnd(1000);
    for (unsigned i = 0; i < KEYS / 10; i++)
        b[rnd(n)] += 1;
    double spent = 0;
    uint64_t count = 0;
    while (spent < min_seconds) {
        for (int c = 0; c < COPIES; c++)
            memcpy(t[c], a, n * sizeof(a[0]));
        double t0 = now();
        for (int c = 0; c < COPIES; c++)
            for (unsigned i = 0; i < n; i++)
                t[c][i] = t[c][i] > b[i] ? t[c][i] : b[i];
        spent += now() - t0;
        count += COPIES;
    }
    /* Keeps the joins from being optimised away. */
    if (t[0][0] == 0)
        printf(" ");
    *joins = (double)count / spent;
    uint64_t p[2 * REPLICAS];
    memcpy(p, a, sizeof(p));
    for (unsigned i = 0; i < DELTAS; i++) {
        d[i].slot = (unsigned)rnd(n);
        d[i].v = ++p[d[i].slot];
    }
    spent = 0;
    count = 0;
    while (spent < min_seconds) {
        memcpy(t[0], a, n * sizeof(a[0]));
        double t0 = now();
        for (unsigned i = 0; i < DELTAS; i++)
            if (d[i].v > t[0][d[i].slot])
                t[0][d[i].slot] = d[i].v;
        spent += now() - t0;
        count += DELTAS;
    }
    if (t[0][0] == 0)
        printf(" ");
    *deltas = (double)count / spent;
    free(d);
}

/* The naive figures of types[i] (same order). */
static void naive_for(const char *name, double *joins, double *deltas)
{
    if (!strcmp(name, "pncounter"))
        naive_array(2 * REPLICAS, joins, deltas);
    else if (!strcmp(name, "audit"))
        naive_table(true, "key/00042 {\"from\":\"1\",\"to\":\"2\"}", joins,
                    deltas);
    else if (!strcmp(name, "lww map"))
        naive_table(false, "{\"limit\":1000,\"enabled\":true}", joins, deltas);
    else if (!strcmp(name, "orset"))
        naive_table(false, "{\"size\":4096,\"sha\":\"0123456789ab\"}", joins,
                    deltas);
    else
        naive_array(REPLICAS, joins, deltas);
}

/* ---- version vector --------------------------------------------------- */

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
static jv_err vv_encode_(const void *s, jv_buf *out)
{
    jv_mpw w;
    jv_mpw_init(&w, out);
    jv_vv_encode(s, &w);
    return jv_mpw_err(&w);
}
static jv_err vv_decode_(const void *p, size_t n, void *out)
{
    jv_mpr r;
    jv_mpr_init(&r, p, n);
    jv_err err = jv_vv_decode(&r, out);
    return err ? err : jv_mpr_end(&r);
}
static void vv_base(void *s)
{
    for (unsigned r = 0; r < REPLICAS; r++)
        check(jv_vv_set(s, &replica[r], 1000 + rnd(1000)), "vv");
}
static void vv_mutate(void *s, unsigned r, void *delta)
{
    uint64_t seq = jv_vv_get(s, &replica[r]) + 1 + rnd(4);
    check(jv_vv_set(s, &replica[r], seq), "vv");
    jv_vv_clear(delta);
    check(jv_vv_set(delta, &replica[r], seq), "vv");
}

/* ---- counters --------------------------------------------------------- */

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
static jv_err gc_encode(const void *s, jv_buf *out)
{
    return jv_gcounter_encode(s, out);
}
static jv_err gc_decode(const void *p, size_t n, void *out)
{
    return jv_gcounter_decode(p, n, out);
}
static void gc_mutate(void *s, unsigned r, void *delta)
{
    check(jv_gcounter_inc(s, &replica[r], 1 + rnd(10), delta), "inc");
}
static void gc_base(void *s)
{
    jv_gcounter d;
    jv_gcounter_init(&d);
    for (unsigned r = 0; r < REPLICAS; r++)
        check(jv_gcounter_inc(s, &replica[r], 1 + rnd(1u << 20), &d), "inc");
    jv_gcounter_fini(&d);
}

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
static jv_err pn_encode(const void *s, jv_buf *out)
{
    return jv_pncounter_encode(s, out);
}
static jv_err pn_decode(const void *p, size_t n, void *out)
{
    return jv_pncounter_decode(p, n, out);
}
static void pn_mutate(void *s, unsigned r, void *delta)
{
    int64_t by = (int64_t)rnd(20) - 10;
    check(jv_pncounter_add(s, &replica[r], by ? by : 1, delta), "add");
}
static void pn_base(void *s)
{
    jv_pncounter d;
    jv_pncounter_init(&d);
    for (unsigned r = 0; r < REPLICAS; r++) {
        check(jv_pncounter_add(s, &replica[r], 1 + (int64_t)rnd(1000), &d),
              "add");
        check(jv_pncounter_add(s, &replica[r], -1 - (int64_t)rnd(1000), &d),
              "add");
    }
    jv_pncounter_fini(&d);
}

/* ---- audit set -------------------------------------------------------- */

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
static jv_err au_encode(const void *s, jv_buf *out)
{
    return jv_audit_encode(s, out);
}
static jv_err au_decode(const void *p, size_t n, void *out)
{
    return jv_audit_decode(p, n, out);
}
static uint64_t au_seq[REPLICAS];
static void au_mutate(void *s, unsigned r, void *delta)
{
    char target[16];
    key_of((unsigned)rnd(KEYS), target);
    jv_dot id = {replica[r], ++au_seq[r]};
    check(jv_audit_append(s, &id, 1700000000000ull + id.n, jv_str_c("admin"),
                          jv_str_c("config.set"), jv_str_c(target),
                          jv_str_c("{\"from\":\"1\",\"to\":\"2\"}"), delta),
          "append");
}
static void au_base(void *s)
{
    jv_audit d;
    jv_audit_init(&d);
    for (unsigned i = 0; i < KEYS; i++)
        au_mutate(s, i % REPLICAS, &d);
    jv_audit_fini(&d);
}

/* ---- LWW map ---------------------------------------------------------- */

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
static jv_err lw_encode(const void *s, jv_buf *out)
{
    return jv_lwwmap_encode(s, out);
}
static jv_err lw_decode(const void *p, size_t n, void *out)
{
    return jv_lwwmap_decode(p, n, out);
}
static uint64_t lw_clock = 1;
static void lw_mutate(void *s, unsigned r, void *delta)
{
    char key[16];
    key_of((unsigned)rnd(KEYS), key);
    static const char value[] = "{\"limit\":1000,\"enabled\":true}";
    check(jv_lwwmap_set(s, jv_str_c(key), value, sizeof(value) - 1,
                        jv_hlc_make(1700000000000ull, 0) + lw_clock++,
                        &replica[r], delta),
          "set");
}
static void lw_base(void *s)
{
    jv_lwwmap d;
    jv_lwwmap_init(&d);
    char key[16];
    static const char value[] = "{\"limit\":500,\"enabled\":false}";
    for (unsigned k = 0; k < KEYS; k++) {
        key_of(k, key);
        check(jv_lwwmap_set(s, jv_str_c(key), value, sizeof(value) - 1,
                            lw_clock++, &replica[k % REPLICAS], &d),
              "set");
    }
    jv_lwwmap_fini(&d);
}

/* ---- OR-Set ----------------------------------------------------------- */

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
static jv_err or_encode(const void *s, jv_buf *out)
{
    return jv_orset_encode(s, out);
}
static jv_err or_decode(const void *p, size_t n, void *out)
{
    return jv_orset_decode(p, n, out);
}
static void or_mutate(void *s, unsigned r, void *delta)
{
    char key[16];
    static const char value[] = "{\"size\":4096,\"sha\":\"0123456789ab\"}";
    key_of((unsigned)rnd(KEYS), key);
    if (rnd(4) == 0 && jv_orset_get(s, jv_str_c(key))) {
        check(jv_orset_remove(s, jv_str_c(key), delta), "remove");
        return;
    }
    check(jv_orset_add(s, &replica[r], jv_str_c(key), value, sizeof(value) - 1,
                       lw_clock++, delta, NULL),
          "add");
}
static void or_base(void *s)
{
    jv_orset d;
    jv_orset_init(&d);
    char key[16];
    static const char value[] = "{\"size\":1024,\"sha\":\"ba9876543210\"}";
    for (unsigned k = 0; k < KEYS; k++) {
        key_of(k, key);
        check(jv_orset_add(s, &replica[k % REPLICAS], jv_str_c(key), value,
                           sizeof(value) - 1, lw_clock++, &d, NULL),
              "add");
    }
    jv_orset_fini(&d);
}

static const type types[] = {
    {"vv", "16 entries", sizeof(jv_vv), vv_init_, vv_fini_, vv_join_,
     vv_encode_, vv_decode_, vv_base, vv_mutate},
    {"gcounter", "16 shares", sizeof(jv_gcounter), gc_init, gc_fini, gc_join,
     gc_encode, gc_decode, gc_base, gc_mutate},
    {"pncounter", "2x16 shares", sizeof(jv_pncounter), pn_init, pn_fini,
     pn_join, pn_encode, pn_decode, pn_base, pn_mutate},
    {"audit", "1000 entries", sizeof(jv_audit), au_init, au_fini, au_join,
     au_encode, au_decode, au_base, au_mutate},
    {"lww map", "1000 keys", sizeof(jv_lwwmap), lw_init, lw_fini, lw_join,
     lw_encode, lw_decode, lw_base, lw_mutate},
    {"orset", "1000 keys", sizeof(jv_orset), or_init, or_fini, or_join,
     or_encode, or_decode, or_base, or_mutate},
};

/* ---- batches ---------------------------------------------------------- */

typedef struct {
    double encode, decode, sign, verify;
    size_t bytes;
} batch_result;

static batch_result run_batch(uint32_t nops, const jv_keypair *kp)
{
    batch_result res;
    jv_op *ops = calloc(nops, sizeof(*ops));
    char(*keys)[16] = calloc(nops, sizeof(*keys));
    for (uint32_t i = 0; i < nops; i++) {
        key_of(i, keys[i]);
        ops[i].kind = JV_OP_CONFIG;
        ops[i].config.key = jv_str_c(keys[i]);
        ops[i].config.value = jv_str_c("{\"limit\":1000,\"enabled\":true}");
        ops[i].config.stamp = jv_hlc_make(1700000000000ull, (uint16_t)i);
    }
    jv_batch b;
    memset(&b, 0, sizeof(b));
    b.origin = kp->pk;
    b.first_seq = 1;
    b.hlc = jv_hlc_make(1700000000001ull, 0);
    b.ops = ops;
    b.nops = nops;
    jv_buf body;
    jv_buf_init(&body);
    check(jv_batch_encode(&b, &body), "batch encode");
    res.bytes = body.len;
    uint8_t hash[JV_HASH_LEN], sig[JV_SIG_LEN], zero[JV_HASH_LEN] = {0};
    jv_batch_hash(body.data, body.len, hash);
    jv_batch_sign(hash, kp, sig);

    /* Enough rounds for min_seconds, sized by a first estimate. */
    uint64_t n = 0;
    double spent = 0, t0;
    while (spent < min_seconds / 2) {
        t0 = now();
        jv_buf_reset(&body);
        check(jv_batch_encode(&b, &body), "batch encode");
        spent += now() - t0;
        n++;
    }
    res.encode = (double)n / spent;
    for (n = 0, spent = 0; spent < min_seconds / 2; n++) {
        jv_batch out;
        t0 = now();
        check(jv_batch_decode(body.data, body.len, &out), "batch decode");
        spent += now() - t0;
        jv_batch_fini(&out);
    }
    res.decode = (double)n / spent;
    for (n = 0, spent = 0; spent < min_seconds / 2; n++) {
        t0 = now();
        jv_batch_hash(body.data, body.len, hash);
        jv_batch_sign(hash, kp, sig);
        spent += now() - t0;
    }
    res.sign = (double)n / spent;
    for (n = 0, spent = 0; spent < min_seconds / 2; n++) {
        jv_batch out;
        t0 = now();
        check(jv_batch_verify(body.data, body.len, sig, 0, zero, &out, NULL),
              "batch verify");
        spent += now() - t0;
        jv_batch_fini(&out);
    }
    res.verify = (double)n / spent;
    jv_buf_fini(&body);
    free(ops);
    free(keys);
    return res;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        min_seconds = strtod(argv[1], NULL);
    if (min_seconds <= 0)
        min_seconds = 0.4;
    for (unsigned r = 0; r < REPLICAS; r++)
        for (size_t k = 0; k < JV_ID_LEN; k++)
            replica[r].b[k] = (uint8_t)rnd(256);

    double t_start = now();
    printf("CRDT joins and delta applications (%d replicas)\n\n", REPLICAS);
    printf("%-10s %-13s %8s %12s %12s %6s %12s %12s %6s\n", "type", "state",
           "bytes", "joins/s", "naive", "ratio", "deltas/s", "naive", "ratio");
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        result r = run_type(&types[i]);
        double nj, nd;
        naive_for(types[i].name, &nj, &nd);
        printf("%-10s %-13s %8zu %12.0f %12.0f %6.3f %12.0f %12.0f %6.3f\n",
               types[i].name, types[i].size, r.bytes, r.joins, nj, r.joins / nj,
               r.deltas, nd, r.deltas / nd);
        fflush(stdout);
    }
    printf("\nnaive: the same joins and deltas on plain arrays (counters, "
           "vv) or a plain hash\ntable key -> value (audit, lww map, orset) "
           "without CRDT metadata; ratio = CRDT / naive.\n");

    jv_keypair kp;
    check(jv_keypair_generate(&kp), "keypair");
    printf("\nBatches (config ops; verify = chain + hash + Ed25519 + "
           "decode)\n\n");
    printf("%-6s %9s %12s %12s %12s %12s %14s\n", "ops", "bytes", "encode/s",
           "decode/s", "sign/s", "verify/s", "verified op/s");
    static const uint32_t sizes[] = {1, 1024};
    for (size_t i = 0; i < 2; i++) {
        batch_result r = run_batch(sizes[i], &kp);
        printf("%-6u %9zu %12.0f %12.0f %12.0f %12.0f %14.0f\n", sizes[i],
               r.bytes, r.encode, r.decode, r.sign, r.verify,
               r.verify * sizes[i]);
        fflush(stdout);
    }
    jv_keypair_wipe(&kp);
    printf("\ntotal %.1f s\n", now() - t_start);
    return 0;
}
