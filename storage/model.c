/*
 * model.c - the crdt/ types fed with batches, and a store compared with
 * them (see model.h).
 *
 * The comparison walks each of the store's tables through query.h and
 * looks every row up in the model; counts (and a mark per model entry
 * where the store could lack one) then catch what the store is missing.
 * The first difference ends the walk: the callback writes the message and
 * returns JV_ESTATE, which stops the scan. A code from the store itself
 * (no message written by a callback) is a read error, reported as such.
 */
#include "model.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "query.h"

/* Longest piece of a value or key quoted in a message. */
#define SHOW 64

/* ---- the model ---------------------------------------------------------- */

void jv_model_init(jv_model *m)
{
    memset(m, 0, sizeof(*m));
    jv_audit_init(&m->au);
    jv_lwwmap_init(&m->lw);
    jv_orset_init(&m->os);
}

void jv_model_fini(jv_model *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nc; i++) {
        jv_free(m->c[i].name);
        jv_pncounter_fini(&m->c[i].pn);
    }
    jv_free(m->c);
    jv_audit_fini(&m->au);
    jv_lwwmap_fini(&m->lw);
    jv_orset_fini(&m->os);
    jv_model_init(m);
}

static jv_str counter_name(const jv_model_counter *c)
{
    return (jv_str){c->name, c->namelen};
}

/* Index of name in m->c, or where it would go (*found false). */
static size_t counter_find(const jv_model *m, jv_str name, bool *found)
{
    size_t lo = 0, hi = m->nc;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = jv_str_cmp(counter_name(&m->c[mid]), name);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

const jv_pncounter *jv_model_counter_get(const jv_model *m, jv_str name)
{
    bool found;
    size_t i = counter_find(m, name, &found);
    return found ? &m->c[i].pn : NULL;
}

/* The counter called name, made (empty) when no op named it yet: a store
 * keeps a row for every (name, replica) that wrote, even 0 and 0. */
static jv_err counter_at(jv_model *m, jv_str name, jv_pncounter **out)
{
    bool found;
    size_t i = counter_find(m, name, &found);
    if (!found) {
        if (m->nc == m->capc) {
            size_t cap = m->capc ? m->capc * 2 : 8;
            jv_model_counter *c = jv_reallocarray(m->c, cap, sizeof(*c));
            if (!c)
                return JV_ENOMEM;
            m->c = c;
            m->capc = cap;
        }
        char *copy = jv_strndup(name.n ? name.p : "", name.n);
        if (!copy)
            return JV_ENOMEM;
        memmove(&m->c[i + 1], &m->c[i], (m->nc - i) * sizeof(*m->c));
        m->c[i].name = copy;
        m->c[i].namelen = name.n;
        jv_pncounter_init(&m->c[i].pn);
        m->nc++;
    }
    *out = &m->c[i].pn;
    return JV_OK;
}

/* The PN-Counter delta of a counter op: {origin: p} and {origin: n}. */
static jv_err counter_op(jv_model *m, const jv_id *origin, const jv_op *op)
{
    jv_pncounter *pn, d;
    jv_err err = counter_at(m, op->counter.name, &pn);
    if (err)
        return err;
    jv_pncounter_init(&d);
    if ((op->counter.p && (err = jv_vv_set(&d.p.v, origin, op->counter.p))) ||
        (op->counter.n && (err = jv_vv_set(&d.n.v, origin, op->counter.n))))
        goto out;
    err = jv_pncounter_join(pn, &d);
out:
    jv_pncounter_fini(&d);
    return err;
}

/* The one tuple an archive add makes, into the delta's single entry. */
static jv_err orset_add_tuple(jv_orset *d, const jv_id *origin, const jv_op *op)
{
    jv_dot dot = {*origin, op->add.dot_n};
    if (!(d->e = jv_calloc(1, sizeof(*d->e))))
        return JV_ENOMEM;
    d->n = d->cap = 1;
    d->e->key = jv_strndup(op->add.key.n ? op->add.key.p : "", op->add.key.n);
    d->e->keylen = op->add.key.n;
    if (!d->e->key || !(d->e->v = jv_calloc(1, sizeof(*d->e->v))))
        return JV_ENOMEM;
    d->e->nv = 1;
    d->e->v->dot = dot;
    d->e->v->stamp = op->add.stamp;
    d->e->v->len = op->add.value.n;
    if (op->add.value.n) {
        if (!(d->e->v->value = jv_malloc(op->add.value.n)))
            return JV_ENOMEM;
        memcpy(d->e->v->value, op->add.value.p, op->add.value.n);
    }
    return jv_dotctx_add(&d->ctx, &dot);
}

/* The OR-Set delta of an archive op: the add's tuple (if any) and the
 * dots it covers in the context. */
static jv_err orset_op(jv_model *m, const jv_id *origin, const jv_op *op)
{
    bool add = op->kind == JV_OP_ARCHIVE_ADD;
    const jv_dot *rm = add ? op->add.removes : op->rm.removes;
    size_t nrm = add ? op->add.nremoves : op->rm.nremoves;
    jv_orset d;
    jv_err err = JV_OK;
    jv_orset_init(&d);
    if (add && (err = orset_add_tuple(&d, origin, op)))
        goto out;
    for (size_t i = 0; i < nrm; i++)
        if ((err = jv_dotctx_add(&d.ctx, &rm[i])))
            goto out;
    err = jv_orset_join(&m->os, &d);
out:
    jv_orset_fini(&d);
    return err;
}

static jv_err audit_op(jv_model *m, const jv_id *origin, uint64_t seq,
                       const jv_op *op)
{
    jv_audit d;
    jv_dot id = {*origin, seq};
    jv_audit_init(&d);
    jv_err err = jv_audit_append(&m->au, &id, op->audit.time_ms,
                                 op->audit.actor, op->audit.action,
                                 op->audit.target, op->audit.detail, &d);
    jv_audit_fini(&d);
    return err;
}

static jv_err config_op(jv_model *m, const jv_id *origin, const jv_op *op)
{
    jv_lwwmap d;
    jv_lwwmap_init(&d);
    jv_err err =
        jv_lwwmap_set(&m->lw, op->config.key, op->config.value.p,
                      op->config.value.n, op->config.stamp, origin, &d);
    jv_lwwmap_fini(&d);
    return err;
}

jv_err jv_model_batch(jv_model *m, const jv_batch *b)
{
    jv_err err = JV_OK;
    for (uint32_t i = 0; i < b->nops && !err; i++) {
        const jv_op *op = &b->ops[i];
        switch (op->kind) {
        case JV_OP_COUNTER:
            err = counter_op(m, &b->origin, op);
            break;
        case JV_OP_AUDIT:
            err = audit_op(m, &b->origin, b->first_seq + i, op);
            break;
        case JV_OP_CONFIG:
            err = config_op(m, &b->origin, op);
            break;
        case JV_OP_ARCHIVE_ADD:
        case JV_OP_ARCHIVE_RM:
            err = orset_op(m, &b->origin, op);
            break;
        case JV_OP_TRUST:
        case JV_OP_SUCCESSION:
        case JV_OP_KEY_ADD:
        case JV_OP_KEY_REVOKE:
            break; /* their tables are not part of the model */
        }
    }
    return err;
}

/* ---- messages ----------------------------------------------------------- */

typedef struct {
    const jv_model *m;
    char *msg;
    size_t msglen;
    bool differs; /* a callback wrote the message */
    size_t n;
    bool *hit;              /* per model entry of the table being walked */
    const jv_pncounter *pn; /* the counter whose shares are walked */
    jv_str cname;
    jv_vv got; /* replicas whose shares the store listed */
} cmp_ctx;

static jv_err differ(cmp_ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static jv_err differ(cmp_ctx *c, const char *fmt, ...)
{
    if (c->msglen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->msg, c->msglen, fmt, ap);
        va_end(ap);
    }
    c->differs = true;
    return JV_ESTATE;
}

/* A quoted, possibly cut, printable copy of s for a message. */
static const char *show(jv_str s, char buf[SHOW + 8])
{
    size_t n = s.n < SHOW ? s.n : SHOW, k = 0;
    buf[k++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s.p[i];
        buf[k++] = ch >= 0x20 && ch != 0x7f ? (char)ch : '?';
    }
    buf[k++] = '"';
    if (s.n > n) {
        memcpy(&buf[k], "...", 3);
        k += 3;
    }
    buf[k] = '\0';
    return buf;
}

static jv_str bytes(const void *p, size_t n)
{
    return (jv_str){n ? (const char *)p : "", n};
}

/* "(origin-hex, n)" */
static const char *show_dot(const jv_dot *d, char buf[JV_ID_HEX + 32])
{
    char hex[JV_ID_HEX];
    jv_id_hex(&d->id, hex);
    snprintf(buf, JV_ID_HEX + 32, "(%s, %" PRIu64 ")", hex, d->n);
    return buf;
}

/* The store's own error, when a read failed and no callback differed. */
static jv_err read_failed(cmp_ctx *c, jv_store *st, jv_err err,
                          const char *what)
{
    if (c->differs)
        return err;
    if (c->msglen)
        snprintf(c->msg, c->msglen, "reading %s: %s (%s)", what,
                 jv_strerror(err), jv_store_errmsg(st));
    return err;
}

/* Marks per model entry; NULL-safe for an empty table. */
static jv_err hits_new(cmp_ctx *c, size_t n)
{
    jv_free(c->hit);
    c->hit = jv_calloc(n ? n : 1, sizeof(*c->hit));
    c->n = 0;
    return c->hit ? JV_OK : JV_ENOMEM;
}

static bool str_is(jv_str s, const void *p, size_t n)
{
    return s.n == n && (n == 0 || memcmp(s.p, p, n) == 0);
}

/* ---- counters ----------------------------------------------------------- */

static jv_err cmp_counter(void *arg, const jv_counter_row *r)
{
    cmp_ctx *c = arg;
    char b1[SHOW + 8], t1[JV_COUNT_TEXT], t2[JV_COUNT_TEXT];
    bool found;
    size_t i = counter_find(c->m, r->name, &found);
    if (!found)
        return differ(c, "counter %s: the store has it, the model has none",
                      show(r->name, b1));
    jv_count want;
    jv_pncounter_count(&c->m->c[i].pn, &want);
    if (jv_count_cmp(&r->total, &want) != 0) {
        jv_count_format(&r->total, t1);
        jv_count_format(&want, t2);
        return differ(c, "counter %s: store total %s, model total %s",
                      show(r->name, b1), t1, t2);
    }
    c->n++;
    return JV_OK;
}

static jv_err cmp_share(void *arg, const jv_counter_share *s)
{
    cmp_ctx *c = arg;
    uint64_t p = jv_gcounter_get(&c->pn->p, &s->replica);
    uint64_t n = jv_gcounter_get(&c->pn->n, &s->replica);
    if (s->p != p || s->n != n) {
        char hex[JV_ID_HEX], b[SHOW + 8];
        jv_id_hex(&s->replica, hex);
        return differ(c,
                      "counter %s share of %s: store p=%" PRIu64 " n=%" PRIu64
                      ", model p=%" PRIu64 " n=%" PRIu64,
                      show(c->cname, b), hex, s->p, s->n, p, n);
    }
    return jv_vv_set(&c->got, &s->replica, 1);
}

/* A replica with a non-zero share in the model that the store did not
 * list (a zero share is the same as none). */
static jv_err shares_missing(cmp_ctx *c)
{
    const jv_gcounter *g[2] = {&c->pn->p, &c->pn->n};
    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; i < g[k]->v.n; i++) {
            const jv_vv_entry *e = &g[k]->v.v[i];
            if (e->seq == 0 || jv_vv_get(&c->got, &e->id))
                continue;
            char hex[JV_ID_HEX], b[SHOW + 8];
            jv_id_hex(&e->id, hex);
            return differ(c,
                          "counter %s share of %s: the store has none, "
                          "model p=%" PRIu64 " n=%" PRIu64,
                          show(c->cname, b), hex,
                          jv_gcounter_get(&c->pn->p, &e->id),
                          jv_gcounter_get(&c->pn->n, &e->id));
        }
    }
    return JV_OK;
}

static jv_err cmp_counters(jv_store *st, cmp_ctx *c)
{
    const jv_model *m = c->m;
    jv_str none = {"", 0};
    char b[SHOW + 8];
    jv_err err;
    c->n = 0;
    if ((err = jv_store_counter_list(st, none, none, 0, cmp_counter, c)))
        return read_failed(c, st, err, "counters");
    for (size_t i = 0; i < m->nc; i++) {
        jv_vv_clear(&c->got);
        c->pn = &m->c[i].pn;
        c->cname = counter_name(&m->c[i]);
        err = jv_store_counter_get(st, counter_name(&m->c[i]), cmp_share, c);
        if (err == JV_ENOTFOUND && !c->differs)
            return differ(c, "counter %s: the model has it, the store has none",
                          show(c->cname, b));
        if (err)
            return read_failed(c, st, err, "counter shares");
        if ((err = shares_missing(c)))
            return err;
    }
    /* Every store counter is in the model and every model counter is in
     * the store (get found it), so the numbers agree. */
    return JV_OK;
}

/* ---- audit -------------------------------------------------------------- */

static jv_err cmp_audit(void *arg, const jv_audit_row *r)
{
    cmp_ctx *c = arg;
    char d[JV_ID_HEX + 32], b1[SHOW + 8], b2[SHOW + 8];
    const jv_audit_entry *e = jv_audit_find(&c->m->au, &r->id);
    if (!e)
        return differ(c,
                      "audit entry %s: the store has it, the model has "
                      "none",
                      show_dot(&r->id, d));
    if (e->time_ms != r->time_ms)
        return differ(
            c, "audit entry %s: store time_ms %" PRIu64 ", model %" PRIu64,
            show_dot(&r->id, d), r->time_ms, e->time_ms);
    const struct {
        const char *name;
        jv_str got;
        const char *want;
    } f[] = {{"actor", r->actor, e->actor},
             {"action", r->action, e->action},
             {"target", r->target, e->target},
             {"detail", r->detail, e->detail}};
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
        if (!str_is(f[i].got, f[i].want, strlen(f[i].want)))
            return differ(c, "audit entry %s: store %s %s, model %s",
                          show_dot(&r->id, d), f[i].name, show(f[i].got, b1),
                          show(jv_str_c(f[i].want), b2));
    c->hit[e - c->m->au.e] = true;
    c->n++;
    return JV_OK;
}

static jv_err cmp_audits(jv_store *st, cmp_ctx *c)
{
    const jv_audit *au = &c->m->au;
    char d[JV_ID_HEX + 32];
    jv_err err;
    if ((err = hits_new(c, au->n)))
        return err;
    if ((err = jv_store_audit_scan(st, cmp_audit, c)))
        return read_failed(c, st, err, "audit entries");
    for (size_t i = 0; i < au->n; i++)
        if (!c->hit[i])
            return differ(c,
                          "audit entry %s: the model has it, the store "
                          "has none",
                          show_dot(&au->e[i].id, d));
    return JV_OK;
}

/* ---- config ------------------------------------------------------------- */

static jv_err cmp_config(void *arg, const jv_config_row *r)
{
    cmp_ctx *c = arg;
    char k[SHOW + 8], b1[SHOW + 8], b2[SHOW + 8];
    char h1[JV_ID_HEX], h2[JV_ID_HEX];
    const jv_lww_reg *g = jv_lwwmap_get(&c->m->lw, r->key);
    if (!g)
        return differ(c, "config %s: the store has it, the model has none",
                      show(r->key, k));
    if (g->stamp != r->stamp || !jv_id_eq(&g->replica, &r->replica) ||
        !str_is(r->value, g->value, g->len)) {
        jv_id_hex(&r->replica, h1);
        jv_id_hex(&g->replica, h2);
        return differ(c,
                      "config %s: store %s (stamp %" PRIu64
                      " by %s), model %s (stamp %" PRIu64 " by %s)",
                      show(r->key, k), show(r->value, b1), r->stamp, h1,
                      show(bytes(g->value, g->len), b2), g->stamp, h2);
    }
    /* jv_lwwmap_get hands out the register inside its entry. */
    const jv_lww_entry *e =
        (const jv_lww_entry *)((const char *)g - offsetof(jv_lww_entry, reg));
    c->hit[e - c->m->lw.e] = true;
    c->n++;
    return JV_OK;
}

static jv_err cmp_configs(jv_store *st, cmp_ctx *c)
{
    const jv_lwwmap *lw = &c->m->lw;
    jv_str none = {"", 0};
    char k[SHOW + 8];
    jv_err err;
    if ((err = hits_new(c, lw->n)))
        return err;
    if ((err = jv_store_config_list(st, none, none, 0, cmp_config, c)))
        return read_failed(c, st, err, "config");
    for (size_t i = 0; i < lw->n; i++)
        if (!c->hit[i])
            return differ(c, "config %s: the model has it, the store has none",
                          show(bytes(lw->e[i].key, lw->e[i].keylen), k));
    return JV_OK;
}

/* ---- archive ------------------------------------------------------------ */

/* The value shown per key: the greatest (stamp, dot) of its live ones. */
static jv_err cmp_archive_row(void *arg, const jv_archive_row *r)
{
    cmp_ctx *c = arg;
    const jv_orset *os = &c->m->os;
    char k[SHOW + 8], d1[JV_ID_HEX + 32], d2[JV_ID_HEX + 32];
    char b1[SHOW + 8], b2[SHOW + 8];
    const jv_orset_entry *e = jv_orset_get(os, r->key);
    if (!e)
        return differ(c, "archive %s: the store has it, the model has none",
                      show(r->key, k));
    if (e->nv != r->nvalues)
        return differ(c,
                      "archive %s: the store has %zu live values, the "
                      "model %zu",
                      show(r->key, k), r->nvalues, e->nv);
    const jv_orset_val *w = jv_orset_entry_value(e);
    if (jv_dot_cmp(&w->dot, &r->dot) != 0 || w->stamp != r->stamp ||
        !str_is(r->value, w->value, w->len))
        return differ(c,
                      "archive %s shows: store %s (stamp %" PRIu64
                      ", dot %s), model %s (stamp %" PRIu64 ", dot %s)",
                      show(r->key, k), show(r->value, b1), r->stamp,
                      show_dot(&r->dot, d1), show(bytes(w->value, w->len), b2),
                      w->stamp, show_dot(&w->dot, d2));
    c->hit[e - os->e] = true;
    c->n++;
    return JV_OK;
}

static jv_err cmp_archive_value(void *arg, const jv_archive_value *v)
{
    cmp_ctx *c = arg;
    char k[SHOW + 8], d[JV_ID_HEX + 32], b1[SHOW + 8], b2[SHOW + 8];
    const jv_orset_entry *e = jv_orset_get(&c->m->os, v->key);
    const jv_orset_val *w = NULL;
    for (size_t i = 0; e && i < e->nv && !w; i++)
        if (jv_dot_cmp(&e->v[i].dot, &v->dot) == 0)
            w = &e->v[i];
    if (!w)
        return differ(c,
                      "archive %s value %s: live in the store, not in the "
                      "model",
                      show(v->key, k), show_dot(&v->dot, d));
    if (w->stamp != v->stamp || !str_is(v->value, w->value, w->len))
        return differ(c,
                      "archive %s value %s: store %s (stamp %" PRIu64
                      "), model %s (stamp %" PRIu64 ")",
                      show(v->key, k), show_dot(&v->dot, d), show(v->value, b1),
                      v->stamp, show(bytes(w->value, w->len), b2), w->stamp);
    c->n++;
    return JV_OK;
}

static jv_err cmp_archives(jv_store *st, cmp_ctx *c)
{
    const jv_orset *os = &c->m->os;
    jv_str none = {"", 0};
    char k[SHOW + 8];
    jv_err err;
    if ((err = hits_new(c, os->n)))
        return err;
    if ((err = jv_store_archive_list(st, none, none, 0, cmp_archive_row, c)))
        return read_failed(c, st, err, "archive keys");
    for (size_t i = 0; i < os->n; i++)
        if (!c->hit[i])
            return differ(c, "archive %s: the model has it, the store has none",
                          show(bytes(os->e[i].key, os->e[i].keylen), k));
    /* Every key agrees on its number of live values and every store value
     * is one of the model's, so the store lacks none of them. */
    c->n = 0;
    if ((err = jv_store_archive_values(st, cmp_archive_value, c)))
        return read_failed(c, st, err, "archive values");
    return JV_OK;
}

/* ---- causal context ----------------------------------------------------- */

static jv_err cmp_cloud(void *arg, const jv_dot *d)
{
    cmp_ctx *c = arg;
    const jv_dotctx *ctx = &c->m->os.ctx;
    char d1[JV_ID_HEX + 32], d2[JV_ID_HEX + 32];
    if (c->n >= ctx->ncloud)
        return differ(c,
                      "archive context: the store's cloud has %s, the "
                      "model's ends",
                      show_dot(d, d1));
    if (jv_dot_cmp(&ctx->cloud[c->n], d) != 0)
        return differ(c,
                      "archive context: the store's cloud has %s where "
                      "the model's has %s",
                      show_dot(d, d1), show_dot(&ctx->cloud[c->n], d2));
    c->n++;
    return JV_OK;
}

/* The first replica whose compact entry differs, into the message. */
static jv_err vv_differs(cmp_ctx *c, const jv_vv *got, const jv_vv *want)
{
    const jv_vv *side[2] = {got, want};
    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; i < side[k]->n; i++) {
            const jv_id *id = &side[k]->v[i].id;
            uint64_t a = jv_vv_get(got, id), b = jv_vv_get(want, id);
            if (a == b)
                continue;
            char hex[JV_ID_HEX];
            jv_id_hex(id, hex);
            return differ(c,
                          "archive context: store vector %s at %" PRIu64
                          ", model at %" PRIu64,
                          hex, a, b);
        }
    }
    return JV_OK;
}

static jv_err cmp_context(jv_store *st, cmp_ctx *c)
{
    const jv_dotctx *ctx = &c->m->os.ctx;
    char d[JV_ID_HEX + 32];
    jv_vv vv;
    jv_err err;
    jv_vv_init(&vv);
    c->n = 0;
    if ((err = jv_store_archive_context(st, &vv, cmp_cloud, c))) {
        err = read_failed(c, st, err, "archive context");
        goto out;
    }
    if (c->n < ctx->ncloud) {
        err = differ(c,
                     "archive context: the model's cloud has %s, the "
                     "store's ends",
                     show_dot(&ctx->cloud[c->n], d));
        goto out;
    }
    err = vv_differs(c, &vv, &ctx->compact);
out:
    jv_vv_fini(&vv);
    return err;
}

/* ---- the whole state ---------------------------------------------------- */

/* The comparison inside the caller's read snapshot. */
static jv_err compare(jv_store *st, const jv_model *m, char *msg, size_t msglen)
{
    cmp_ctx c = {.m = m, .msg = msg, .msglen = msglen};
    jv_err err;
    jv_vv_init(&c.got);
    if (msglen)
        msg[0] = '\0';
    if ((err = cmp_counters(st, &c)) || (err = cmp_audits(st, &c)) ||
        (err = cmp_configs(st, &c)) || (err = cmp_archives(st, &c)) ||
        (err = cmp_context(st, &c)))
        goto out;
out:
    if (err == JV_ENOMEM && !c.differs && msglen)
        snprintf(msg, msglen, "comparing: %s", jv_strerror(err));
    jv_free(c.hit);
    jv_vv_fini(&c.got);
    return err;
}

jv_err jv_model_compare(jv_store *st, const jv_model *m, char *msg,
                        size_t msglen)
{
    jv_err err = jv_store_read_begin(st);
    if (err) {
        if (msglen)
            snprintf(msg, msglen, "reading: %s (%s)", jv_strerror(err),
                     jv_store_errmsg(st));
        return err;
    }
    err = compare(st, m, msg, msglen);
    jv_store_read_end(st);
    return err;
}

/* ---- a store against the model of its own log --------------------------- */

typedef struct {
    jv_model *m;
    jv_vv logged; /* per origin: sequence numbers the log holds */
    jv_err err;   /* a model or decode error (not the store's) */
    char *msg;
    size_t msglen;
} log_ctx;

static jv_err log_row(void *arg, const jv_log_row *r)
{
    log_ctx *l = arg;
    jv_batch b;
    memset(&b, 0, sizeof(b));
    if ((l->err = jv_batch_decode(r->body, r->len, &b))) {
        char hex[JV_ID_HEX];
        jv_id_hex(&r->origin, hex);
        if (l->msglen)
            snprintf(l->msg, l->msglen, "log batch %s from %" PRIu64 ": %s",
                     hex, r->first_seq, jv_strerror(l->err));
        return l->err;
    }
    l->err = jv_model_batch(l->m, &b);
    jv_batch_fini(&b);
    if (l->err)
        return l->err;
    uint64_t had = jv_vv_get(&l->logged, &r->origin);
    return l->err = jv_vv_set(&l->logged, &r->origin,
                              had + (r->last_seq - r->first_seq + 1));
}

/* A log that holds fewer sequence numbers than st applied (compacted
 * into a base, or state joined from a snapshot) is no model of st. */
static jv_err log_covers(jv_store *st, const jv_vv *logged, char *msg,
                         size_t msglen)
{
    jv_vv vv;
    jv_vv_init(&vv);
    jv_err err = jv_store_vv(st, &vv);
    if (err) {
        if (msglen)
            snprintf(msg, msglen, "reading the version vector: %s (%s)",
                     jv_strerror(err), jv_store_errmsg(st));
        goto out;
    }
    for (size_t i = 0; i < vv.n; i++) {
        uint64_t have = jv_vv_get(logged, &vv.v[i].id);
        if (have == vv.v[i].seq)
            continue;
        char hex[JV_ID_HEX];
        jv_id_hex(&vv.v[i].id, hex);
        if (msglen)
            snprintf(msg, msglen,
                     "log holds %" PRIu64 " of origin %s's %" PRIu64
                     " applied sequence numbers (a base or a snapshot "
                     "holds the rest: no model from the log)",
                     have, hex, vv.v[i].seq);
        err = JV_ESTATE;
        goto out;
    }
out:
    jv_vv_fini(&vv);
    return err;
}

jv_err jv_store_model_check(jv_store *st, char *msg, size_t msglen)
{
    jv_model m;
    log_ctx l = {.m = &m, .msg = msg, .msglen = msglen};
    jv_err err;
    if (msglen)
        msg[0] = '\0';
    jv_model_init(&m);
    jv_vv_init(&l.logged);
    /* One snapshot for the log and the state, so a writer on another
     * connection cannot slip a batch in between. */
    if ((err = jv_store_read_begin(st))) {
        if (msglen)
            snprintf(msg, msglen, "reading: %s (%s)", jv_strerror(err),
                     jv_store_errmsg(st));
        goto out;
    }
    err = jv_store_log_scan(st, log_row, &l);
    if (err && !l.err && msglen)
        snprintf(msg, msglen, "reading the log: %s (%s)", jv_strerror(err),
                 jv_store_errmsg(st));
    else if (err == JV_ENOMEM && msglen)
        snprintf(msg, msglen, "building the model: %s", jv_strerror(err));
    if (!err)
        err = log_covers(st, &l.logged, msg, msglen);
    if (!err)
        err = compare(st, &m, msg, msglen);
    jv_store_read_end(st);
out:
    jv_vv_fini(&l.logged);
    jv_model_fini(&m);
    return err;
}
