#include "orset.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "internal.h"

/* Smallest encodings, for bounding counts against the input's size. */
#define DOT_MIN_BYTES   (1 + 2 + JV_ID_LEN + 1)         /* [id, n] */
#define VAL_MIN_BYTES   (1 + 2 + JV_ID_LEN + 1 + 1 + 2) /* [id, n, t, ""] */
#define ENTRY_MIN_BYTES (1 + 2 + 1 + VAL_MIN_BYTES)     /* [key, [val]] */

/* ---- causal context ---------------------------------------------------- */

void jv_dotctx_init(jv_dotctx *c)
{
    jv_vv_init(&c->compact);
    c->cloud = NULL;
    c->ncloud = 0;
    c->capcloud = 0;
}

void jv_dotctx_fini(jv_dotctx *c)
{
    if (!c)
        return;
    jv_vv_fini(&c->compact);
    jv_free(c->cloud);
    jv_dotctx_init(c);
}

/* Index of the first cloud dot >= d. */
static size_t cloud_find(const jv_dotctx *c, const jv_dot *d)
{
    size_t lo = 0, hi = c->ncloud;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (jv_dot_cmp(&c->cloud[mid], d) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static jv_err cloud_reserve(jv_dotctx *c, size_t want)
{
    if (want <= c->capcloud)
        return JV_OK;
    size_t cap = c->capcloud ? c->capcloud : 4;
    while (cap < want)
        cap *= 2;
    jv_dot *d = jv_reallocarray(c->cloud, cap, sizeof(*d));
    if (!d)
        return JV_ENOMEM;
    c->cloud = d;
    c->capcloud = cap;
    return JV_OK;
}

bool jv_dotctx_contains(const jv_dotctx *c, const jv_dot *d)
{
    if (d->n <= jv_vv_get(&c->compact, &d->id))
        return true;
    size_t i = cloud_find(c, d);
    return i < c->ncloud && jv_dot_cmp(&c->cloud[i], d) == 0;
}

jv_err jv_dotctx_add(jv_dotctx *c, const jv_dot *d)
{
    if (d->n == 0)
        return JV_EINVAL;
    uint64_t top = jv_vv_get(&c->compact, &d->id);
    if (d->n <= top)
        return JV_OK;
    size_t i = cloud_find(c, d);
    if (i < c->ncloud && jv_dot_cmp(&c->cloud[i], d) == 0)
        return JV_OK;
    if (d->n == top + 1) {
        /* d closes the gap before the cloud's run of this replica (which
         * starts at i): the vector absorbs d and that run. */
        size_t j = i;
        uint64_t next = d->n;
        while (j < c->ncloud && jv_id_eq(&c->cloud[j].id, &d->id) &&
               c->cloud[j].n == next + 1)
            next++, j++;
        jv_err err = jv_vv_set(&c->compact, &d->id, next);
        if (err)
            return err;
        if (j > i) {
            memmove(c->cloud + i, c->cloud + j,
                    (c->ncloud - j) * sizeof(*c->cloud));
            c->ncloud -= j - i;
        }
        return JV_OK;
    }
    jv_err err = cloud_reserve(c, c->ncloud + 1);
    if (err)
        return err;
    memmove(c->cloud + i + 1, c->cloud + i,
            (c->ncloud - i) * sizeof(*c->cloud));
    c->cloud[i] = *d;
    c->ncloud++;
    return JV_OK;
}

uint64_t jv_dotctx_max(const jv_dotctx *c, const jv_id *id)
{
    uint64_t top = jv_vv_get(&c->compact, id);
    jv_dot probe = {*id, UINT64_MAX};
    size_t i = cloud_find(c, &probe);
    if (i < c->ncloud && jv_id_eq(&c->cloud[i].id, id))
        return UINT64_MAX;
    if (i > 0 && jv_id_eq(&c->cloud[i - 1].id, id) && c->cloud[i - 1].n > top)
        top = c->cloud[i - 1].n;
    return top;
}

/* Joining b into a happens in two steps so that the OR-Set join can make
 * every allocation before it changes anything: ctx_reserve() grows a's
 * capacity (content unchanged), then ctx_union() cannot fail. */
static jv_err ctx_reserve(jv_dotctx *a, const jv_dotctx *b)
{
    jv_err err = jv__vv_reserve_merge(&a->compact, &b->compact);
    if (err == JV_OK)
        err = cloud_reserve(a, a->ncloud + b->ncloud);
    return err;
}

/* Drops cloud dots the vector covers and folds the ones that became
 * contiguous with it. Only raises ids already in the vector: a cloud dot
 * has n >= 2, so it can only fold onto an entry >= 1. */
static void ctx_compact(jv_dotctx *c)
{
    size_t w = 0, r = 0;
    while (r < c->ncloud) {
        jv_id id = c->cloud[r].id;
        uint64_t top0 = jv_vv_get(&c->compact, &id), top = top0;
        for (; r < c->ncloud && jv_id_eq(&c->cloud[r].id, &id); r++) {
            uint64_t n = c->cloud[r].n;
            if (n <= top)
                continue;
            if (n == top + 1) {
                top = n;
                continue;
            }
            c->cloud[w++] = c->cloud[r];
        }
        if (top != top0)
            (void)jv_vv_set(&c->compact, &id, top);
    }
    c->ncloud = w;
}

static void ctx_union(jv_dotctx *a, const jv_dotctx *b)
{
    /* Cannot fail: ctx_reserve() made the room. */
    (void)jv_vv_merge(&a->compact, &b->compact);
    size_t i = a->ncloud, j = b->ncloud, k = i + j;
    while (j > 0) {
        int c = i > 0 ? jv_dot_cmp(&a->cloud[i - 1], &b->cloud[j - 1]) : -1;
        if (c > 0) {
            a->cloud[--k] = a->cloud[--i];
        } else {
            if (c == 0)
                i--;
            a->cloud[--k] = b->cloud[--j];
        }
    }
    /* Duplicates leave a hole between the untouched prefix [0, i) and the
     * merged tail [k, end). */
    size_t end = a->ncloud + b->ncloud;
    if (k > i)
        memmove(a->cloud + i, a->cloud + k, (end - k) * sizeof(*a->cloud));
    a->ncloud = end - (k - i);
    ctx_compact(a);
}

static bool ctx_equal(const jv_dotctx *a, const jv_dotctx *b)
{
    if (!jv_vv_equal(&a->compact, &b->compact) || a->ncloud != b->ncloud)
        return false;
    for (size_t i = 0; i < a->ncloud; i++)
        if (jv_dot_cmp(&a->cloud[i], &b->cloud[i]) != 0)
            return false;
    return true;
}

/* ---- entries ----------------------------------------------------------- */

static bool key_ok(jv_str key)
{
    return key.n >= 1 && key.n <= JV_ORSET_MAX_KEY && jv_str_valid_utf8(key);
}

static jv_str entry_key(const jv_orset_entry *e)
{
    jv_str k = {e->key, e->keylen};
    return k;
}

static int key_vs_entry(const void *key, const void *elem)
{
    return jv_str_cmp(*(const jv_str *)key, entry_key(elem));
}

static size_t find_key(const jv_orset *s, jv_str key)
{
    return jv__lower_bound(s->e, s->n, sizeof(*s->e), 0, &key, key_vs_entry);
}

static bool val_same(const jv_orset_val *a, const jv_orset_val *b)
{
    return jv_dot_cmp(&a->dot, &b->dot) == 0 && a->stamp == b->stamp &&
           a->len == b->len &&
           (a->len == 0 || memcmp(a->value, b->value, a->len) == 0);
}

static jv_err val_copy(jv_orset_val *dst, const jv_orset_val *src)
{
    *dst = *src;
    dst->value = NULL;
    if (src->len) {
        if (!(dst->value = jv_malloc(src->len)))
            return JV_ENOMEM;
        memcpy(dst->value, src->value, src->len);
    }
    return JV_OK;
}

static void entry_free(jv_orset_entry *e)
{
    for (size_t i = 0; i < e->nv; i++)
        jv_free(e->v[i].value);
    jv_free(e->v);
    jv_free(e->key);
}

static jv_err reserve(jv_orset *s, size_t want)
{
    if (want <= s->cap)
        return JV_OK;
    size_t cap = s->cap ? s->cap : 8;
    while (cap < want)
        cap *= 2;
    jv_orset_entry *e = jv_reallocarray(s->e, cap, sizeof(*e));
    if (!e)
        return JV_ENOMEM;
    s->e = e;
    s->cap = cap;
    return JV_OK;
}

void jv_orset_init(jv_orset *s)
{
    s->e = NULL;
    s->n = 0;
    s->cap = 0;
    jv_dotctx_init(&s->ctx);
}

void jv_orset_fini(jv_orset *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        entry_free(&s->e[i]);
    jv_free(s->e);
    jv_dotctx_fini(&s->ctx);
    jv_orset_init(s);
}

const jv_orset_entry *jv_orset_get(const jv_orset *s, jv_str key)
{
    size_t i = find_key(s, key);
    if (i < s->n && key_vs_entry(&key, &s->e[i]) == 0)
        return &s->e[i];
    return NULL;
}

const jv_orset_val *jv_orset_entry_value(const jv_orset_entry *e)
{
    const jv_orset_val *best = NULL;
    for (size_t i = 0; i < e->nv; i++)
        if (!best || e->v[i].stamp > best->stamp ||
            (e->v[i].stamp == best->stamp &&
             jv_dot_cmp(&e->v[i].dot, &best->dot) > 0))
            best = &e->v[i];
    return best;
}

/* ---- join -------------------------------------------------------------- */

/* A join's view of one side's context, with a filter of the replicas the
 * context names (one bit per value of an id's first byte). A delta names
 * one or two replicas, so the filter settles most of the target's values
 * with one bit test instead of two searches. */
typedef struct {
    const jv_dotctx *ctx;
    uint64_t bits[4];
} seen;

static void seen_mark(seen *s, const jv_id *id)
{
    s->bits[id->b[0] >> 6] |= UINT64_C(1) << (id->b[0] & 63);
}

static void seen_init(seen *s, const jv_dotctx *c)
{
    s->ctx = c;
    memset(s->bits, 0, sizeof(s->bits));
    for (size_t i = 0; i < c->compact.n; i++)
        seen_mark(s, &c->compact.v[i].id);
    for (size_t i = 0; i < c->ncloud; i++)
        seen_mark(s, &c->cloud[i].id);
}

static bool seen_has(const seen *s, const jv_dot *d)
{
    uint8_t b = d->id.b[0];
    if (!(s->bits[b >> 6] >> (b & 63) & 1))
        return false;
    return jv_dotctx_contains(s->ctx, d);
}

/* The values one key keeps, following (E1 & E2) | (E1 - C2) | (E2 - C1):
 * a value of dst stays unless src's context covers it and src does not
 * hold it too; a value of src arrives unless dst's context covers it. Both
 * lists are sorted by dot, and so is the result. With out == NULL only
 * counts. *changed tells whether the result differs from dst's list. */
static size_t join_values(const jv_orset_val *dv, size_t nd, const seen *dctx,
                          const jv_orset_val *sv, size_t ns, const seen *sctx,
                          jv_orset_val *out, bool *changed)
{
    size_t i = 0, j = 0, k = 0;
    *changed = false;
    while (i < nd || j < ns) {
        int c;
        if (i == nd)
            c = 1;
        else if (j == ns)
            c = -1;
        else
            c = jv_dot_cmp(&dv[i].dot, &sv[j].dot);
        if (c == 0 && val_same(&dv[i], &sv[j])) {
            if (out)
                out[k] = dv[i];
            k++, i++, j++;
            continue;
        }
        if (c <= 0) {
            if (!seen_has(sctx, &dv[i].dot)) {
                if (out)
                    out[k] = dv[i];
                k++;
            } else {
                *changed = true;
            }
            i++;
        }
        if (c >= 0) {
            if (!seen_has(dctx, &sv[j].dot)) {
                if (out)
                    out[k] = sv[j];
                k++;
                *changed = true;
            }
            j++;
        }
    }
    return k;
}

/* How one key changes in a join. */
typedef struct {
    size_t di;       /* its index in dst, or SIZE_MAX for a new key */
    size_t sj;       /* its index in src, or SIZE_MAX */
    char *key;       /* a new key's copy */
    jv_orset_val *v; /* the values after the join; NULL when nv == 0 */
    size_t nv;
} plan;

/* Whether dst's old list for p holds this dot: such values are shared
 * with dst (not copied), every other value of p->v is p's own copy. */
static bool from_dst(const jv_orset *dst, const plan *p, const jv_dot *d)
{
    if (p->di == SIZE_MAX)
        return false;
    const jv_orset_entry *e = &dst->e[p->di];
    for (size_t i = 0; i < e->nv; i++)
        if (jv_dot_cmp(&e->v[i].dot, d) == 0)
            return true;
    return false;
}

static void plan_free(const jv_orset *dst, plan *p)
{
    for (size_t i = 0; i < p->nv; i++)
        if (!from_dst(dst, p, &p->v[i].dot))
            jv_free(p->v[i].value);
    jv_free(p->v);
    jv_free(p->key);
}

/* Fills p->v (and p->key for a new key) with copies of what src brings. */
static jv_err plan_build(const jv_orset *dst, const jv_orset *src,
                         const seen *ds, const seen *ss, plan *p)
{
    const jv_orset_entry *d = p->di != SIZE_MAX ? &dst->e[p->di] : NULL;
    const jv_orset_entry *s = p->sj != SIZE_MAX ? &src->e[p->sj] : NULL;
    bool changed;
    size_t nv = join_values(d ? d->v : NULL, d ? d->nv : 0, ds, s ? s->v : NULL,
                            s ? s->nv : 0, ss, NULL, &changed);
    p->nv = 0;
    if (p->di == SIZE_MAX) {
        const jv_orset_entry *fresh = &src->e[p->sj];
        if (!(p->key = jv_strndup(fresh->key, fresh->keylen)))
            return JV_ENOMEM;
    }
    if (nv == 0)
        return JV_OK;
    if (!(p->v = jv_malloc(nv * sizeof(*p->v))))
        return JV_ENOMEM;
    join_values(d ? d->v : NULL, d ? d->nv : 0, ds, s ? s->v : NULL,
                s ? s->nv : 0, ss, p->v, &changed);
    /* p->v borrows src's bytes for now; copy them one by one, counting
     * only the finished ones so that plan_free() frees just those. */
    for (size_t i = 0; i < nv; i++) {
        if (from_dst(dst, p, &p->v[i].dot)) {
            p->nv++;
            continue;
        }
        jv_orset_val copy;
        if (val_copy(&copy, &p->v[i]))
            return JV_ENOMEM;
        p->v[i] = copy;
        p->nv++;
    }
    return JV_OK;
}

static jv_err plans_push(plan **ps, size_t *n, size_t *cap, size_t di,
                         size_t sj)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 8;
        plan *p = jv_reallocarray(*ps, c, sizeof(*p));
        if (!p)
            return JV_ENOMEM;
        *ps = p;
        *cap = c;
    }
    plan *p = &(*ps)[(*n)++];
    p->di = di;
    p->sj = sj;
    p->key = NULL;
    p->v = NULL;
    p->nv = 0;
    return JV_OK;
}

/* Changes nothing that could fail: every allocation is done. */
static void commit(jv_orset *dst, const jv_orset *src, plan *ps, size_t np,
                   size_t nadded)
{
    size_t removed = 0;
    for (size_t t = 0; t < np; t++) {
        plan *p = &ps[t];
        if (p->di == SIZE_MAX)
            continue;
        jv_orset_entry *e = &dst->e[p->di];
        /* Free what dst loses: old values the new list does not share. */
        for (size_t i = 0, k = 0; i < e->nv; i++) {
            while (k < p->nv && jv_dot_cmp(&p->v[k].dot, &e->v[i].dot) < 0)
                k++;
            if (k == p->nv || jv_dot_cmp(&p->v[k].dot, &e->v[i].dot) != 0)
                jv_free(e->v[i].value);
        }
        jv_free(e->v);
        e->v = p->v;
        e->nv = p->nv;
        if (e->nv == 0) {
            jv_free(e->key);
            e->key = NULL;
            removed++;
        }
    }
    if (removed) {
        size_t w = 0;
        for (size_t i = 0; i < dst->n; i++)
            if (dst->e[i].nv)
                dst->e[w++] = dst->e[i];
        dst->n = w;
    }
    /* New keys, sorted like dst: merge from the back. (A new key is only
     * planned when src brings it a value, so none of them is empty.) */
    size_t i = dst->n, k = dst->n + nadded, t = np;
    while (t > 0) {
        plan *p = &ps[t - 1];
        if (p->di != SIZE_MAX) {
            t--;
            continue;
        }
        jv_str key = {p->key, src->e[p->sj].keylen};
        while (i > 0 && key_vs_entry(&key, &dst->e[i - 1]) < 0)
            dst->e[--k] = dst->e[--i];
        jv_orset_entry *e = &dst->e[--k];
        e->key = p->key;
        e->keylen = key.n;
        e->v = p->v;
        e->nv = p->nv;
        t--;
    }
    dst->n += nadded;
    ctx_union(&dst->ctx, &src->ctx);
}

jv_err jv_orset_join(jv_orset *dst, const jv_orset *src)
{
    plan *ps = NULL;
    size_t np = 0, cap = 0, nadded = 0, i = 0, j = 0;
    jv_err err = JV_OK;

    if (dst == src)
        return JV_OK;
    seen ds, ss;
    seen_init(&ds, &dst->ctx);
    seen_init(&ss, &src->ctx);
    /* Find the keys that change. Every key of dst is visited, since src's
     * context may remove values of keys src does not hold; the keys of
     * src are found by galloping, so that the keys in between cost no
     * key comparison. */
    while (i < dst->n || j < src->n) {
        size_t stop = dst->n;
        jv_str skey;
        if (j < src->n) {
            skey = entry_key(&src->e[j]);
            stop = jv__lower_bound(dst->e, dst->n, sizeof(*dst->e), i, &skey,
                                   key_vs_entry);
        }
        for (; i < stop; i++) {
            const jv_orset_entry *d = &dst->e[i];
            bool changed = false;
            for (size_t k = 0; k < d->nv && !changed; k++)
                changed = seen_has(&ss, &d->v[k].dot);
            if (changed && (err = plans_push(&ps, &np, &cap, i, SIZE_MAX)))
                goto fail;
        }
        if (j == src->n)
            break;
        bool both = i < dst->n && key_vs_entry(&skey, &dst->e[i]) == 0;
        const jv_orset_entry *d = both ? &dst->e[i] : NULL, *s = &src->e[j];
        bool changed;
        join_values(d ? d->v : NULL, d ? d->nv : 0, &ds, s->v, s->nv, &ss, NULL,
                    &changed);
        if (changed) {
            if ((err = plans_push(&ps, &np, &cap, both ? i : SIZE_MAX, j)))
                goto fail;
            nadded += !both;
        }
        i += both;
        j++;
    }

    /* Make every allocation before changing anything. */
    for (size_t t = 0; t < np; t++)
        if ((err = plan_build(dst, src, &ds, &ss, &ps[t])))
            goto fail;
    if ((err = reserve(dst, dst->n + nadded)) ||
        (err = ctx_reserve(&dst->ctx, &src->ctx)))
        goto fail;
    commit(dst, src, ps, np, nadded);
    jv_free(ps);
    return JV_OK;
fail:
    for (size_t t = 0; t < np; t++)
        plan_free(dst, &ps[t]);
    jv_free(ps);
    return err;
}

/* ---- mutators ---------------------------------------------------------- */

/* A delta holding only the context made of the dots of key's current
 * values (what this replica observed), plus `extra` if not NULL. */
static jv_err observed_ctx(const jv_orset *s, jv_str key, const jv_dot *extra,
                           jv_dotctx *out)
{
    const jv_orset_entry *e = jv_orset_get(s, key);
    jv_err err;
    if (e)
        for (size_t i = 0; i < e->nv; i++)
            if ((err = jv_dotctx_add(out, &e->v[i].dot)))
                return err;
    if (extra && (err = jv_dotctx_add(out, extra)))
        return err;
    return JV_OK;
}

jv_err jv_orset_add(jv_orset *s, const jv_id *self, jv_str key,
                    const void *value, size_t len, uint64_t stamp,
                    jv_orset *delta, jv_dot *dot_out)
{
    if (!key_ok(key) || len > JV_ORSET_MAX_VALUE || (len && !value))
        return JV_EINVAL;
    uint64_t top = jv_dotctx_max(&s->ctx, self);
    if (top == UINT64_MAX)
        return JV_EOVERFLOW;
    jv_dot dot = {*self, top + 1};
    jv_orset tmp;
    jv_orset_entry *e;
    jv_orset_val v = {dot, stamp, (uint8_t *)NULL, len};
    jv_err err;

    jv_orset_init(&tmp);
    if ((err = reserve(&tmp, 1)))
        goto fail;
    e = &tmp.e[0];
    e->key = NULL;
    e->keylen = key.n;
    e->nv = 0;
    if (!(e->v = jv_malloc(sizeof(*e->v))))
        goto nomem;
    tmp.n = 1;
    if (!(e->key = jv_strndup(key.p, key.n)))
        goto nomem;
    if (len) {
        if (!(v.value = jv_malloc(len)))
            goto nomem;
        memcpy(v.value, value, len);
    }
    e->v[0] = v;
    e->nv = 1;
    /* The delta covers what this replica saw of key, so the join below
     * replaces those values, and a concurrent add elsewhere survives. */
    if ((err = observed_ctx(s, key, &dot, &tmp.ctx)) ||
        (err = jv_orset_join(s, &tmp)))
        goto fail;
    jv_orset_fini(delta);
    *delta = tmp;
    if (dot_out)
        *dot_out = dot;
    return JV_OK;
nomem:
    err = JV_ENOMEM;
fail:
    jv_orset_fini(&tmp);
    return err;
}

jv_err jv_orset_remove(jv_orset *s, jv_str key, jv_orset *delta)
{
    if (!jv_orset_get(s, key))
        return JV_ENOTFOUND;
    jv_orset tmp;
    jv_err err;
    jv_orset_init(&tmp);
    if ((err = observed_ctx(s, key, NULL, &tmp.ctx)) ||
        (err = jv_orset_join(s, &tmp))) {
        jv_orset_fini(&tmp);
        return err;
    }
    jv_orset_fini(delta);
    *delta = tmp;
    return JV_OK;
}

bool jv_orset_equal(const jv_orset *a, const jv_orset *b)
{
    if (a->n != b->n || !ctx_equal(&a->ctx, &b->ctx))
        return false;
    for (size_t i = 0; i < a->n; i++) {
        const jv_orset_entry *x = &a->e[i], *y = &b->e[i];
        jv_str kx = entry_key(x);
        if (key_vs_entry(&kx, y) != 0 || x->nv != y->nv)
            return false;
        for (size_t k = 0; k < x->nv; k++)
            if (!val_same(&x->v[k], &y->v[k]))
                return false;
    }
    return true;
}

/* ---- encoding ---------------------------------------------------------- */

jv_err jv_orset_encode(const jv_orset *s, jv_buf *out)
{
    size_t mark;
    jv_mpw w;
    jv_err err = jv__enc_begin(out, &mark);
    if (err)
        return err;
    /* Never write what our own decoder would refuse. */
    if (s->n > JV_ORSET_MAX_ENTRIES || s->ctx.ncloud > JV_ORSET_MAX_CLOUD ||
        s->ctx.compact.n > JV_VV_MAX_ENTRIES)
        return JV_ETOOBIG;
    for (size_t i = 0; i < s->n; i++)
        if (s->e[i].nv > JV_ORSET_MAX_VALUES)
            return JV_ETOOBIG;
    jv_mpw_init(&w, out);
    jv_mpw_array(&w, 2);
    jv_mpw_array(&w, (uint32_t)s->n);
    for (size_t i = 0; i < s->n; i++) {
        const jv_orset_entry *e = &s->e[i];
        jv_mpw_array(&w, 2);
        jv_mpw_str(&w, e->key, e->keylen);
        jv_mpw_array(&w, (uint32_t)e->nv);
        for (size_t k = 0; k < e->nv; k++) {
            const jv_orset_val *v = &e->v[k];
            jv_mpw_array(&w, 4);
            jv_mpw_id(&w, &v->dot.id);
            jv_mpw_u64(&w, v->dot.n);
            jv_mpw_u64(&w, v->stamp);
            jv_mpw_bin(&w, v->value, v->len);
        }
    }
    jv_mpw_array(&w, 2);
    jv_vv_encode(&s->ctx.compact, &w);
    jv_mpw_array(&w, (uint32_t)s->ctx.ncloud);
    for (size_t i = 0; i < s->ctx.ncloud; i++)
        jv_mpw_dot(&w, &s->ctx.cloud[i]);
    return jv__enc_end(out, mark, JV_OK);
}

static jv_err read_val(jv_mpr *r, jv_orset_val *v)
{
    const uint8_t *p;
    jv_err err;
    if ((err = jv_mpr_array_n(r, 4)) || (err = jv_mpr_id(r, &v->dot.id)) ||
        (err = jv_mpr_u64(r, &v->dot.n)) || (err = jv_mpr_u64(r, &v->stamp)) ||
        (err = jv_mpr_bin(r, &p, &v->len, JV_ORSET_MAX_VALUE)))
        return err;
    if (v->dot.n == 0)
        return JV_EDECODE;
    v->value = NULL;
    if (v->len) {
        if (!(v->value = jv_malloc(v->len)))
            return JV_ENOMEM;
        memcpy(v->value, p, v->len);
    }
    return JV_OK;
}

/* Reads one [key, values] into e; prev is the previous key (NULL for the
 * first). On failure e owns nothing. */
static jv_err read_entry(jv_mpr *r, const jv_orset_entry *prev,
                         jv_orset_entry *e)
{
    jv_str key;
    uint32_t nv;
    jv_err err;
    if ((err = jv_mpr_array_n(r, 2)) ||
        (err = jv_mpr_str(r, &key, JV_ORSET_MAX_KEY)))
        return err;
    if (!key_ok(key))
        return JV_EDECODE;
    if (prev && key_vs_entry(&key, prev) <= 0)
        return JV_ENONCANON;
    if ((err = jv__mpr_count(r, &nv, JV_ORSET_MAX_VALUES, VAL_MIN_BYTES)))
        return err;
    if (nv == 0)
        return JV_ENONCANON; /* a key without values is absent */
    e->keylen = key.n;
    e->nv = 0;
    e->v = jv_malloc(nv * sizeof(*e->v));
    e->key = jv_strndup(key.p, key.n);
    if (!e->v || !e->key) {
        err = JV_ENOMEM;
        goto fail;
    }
    for (uint32_t k = 0; k < nv; k++) {
        if ((err = read_val(r, &e->v[k])))
            goto fail;
        e->nv++;
        if (k && jv_dot_cmp(&e->v[k - 1].dot, &e->v[k].dot) >= 0) {
            err = JV_ENONCANON;
            goto fail;
        }
    }
    return JV_OK;
fail:
    entry_free(e);
    return err;
}

static jv_err read_ctx(jv_mpr *r, jv_dotctx *c)
{
    uint32_t n;
    jv_err err;
    if ((err = jv_mpr_array_n(r, 2)) || (err = jv_vv_decode(r, &c->compact)) ||
        (err = jv__mpr_count(r, &n, JV_ORSET_MAX_CLOUD, DOT_MIN_BYTES)) ||
        (err = cloud_reserve(c, n)))
        return err;
    for (uint32_t i = 0; i < n; i++) {
        jv_dot d;
        if ((err = jv_mpr_dot(r, &d)))
            return err;
        /* Sorted, and never a dot the vector covers or could absorb. */
        if ((i && jv_dot_cmp(&c->cloud[i - 1], &d) >= 0) ||
            d.n - 1 <= jv_vv_get(&c->compact, &d.id))
            return JV_ENONCANON;
        c->cloud[c->ncloud++] = d;
    }
    return JV_OK;
}

static int dot_qcmp(const void *a, const void *b)
{
    return jv_dot_cmp(a, b);
}

/* Every live dot is covered by the context and belongs to one value. */
static jv_err check_dots(const jv_orset *s, size_t total)
{
    jv_dot *all;
    size_t k = 0;
    jv_err err = JV_OK;
    if (total == 0)
        return JV_OK;
    if (!(all = jv_malloc(total * sizeof(*all))))
        return JV_ENOMEM;
    for (size_t i = 0; i < s->n; i++) {
        for (size_t j = 0; j < s->e[i].nv; j++) {
            const jv_dot *d = &s->e[i].v[j].dot;
            if (!jv_dotctx_contains(&s->ctx, d))
                err = JV_EDECODE;
            all[k++] = *d;
        }
    }
    if (err == JV_OK) {
        qsort(all, total, sizeof(*all), dot_qcmp);
        for (size_t i = 1; i < total; i++)
            if (jv_dot_cmp(&all[i - 1], &all[i]) == 0)
                err = JV_EDECODE;
    }
    jv_free(all);
    return err;
}

jv_err jv_orset_decode(const void *p, size_t n, jv_orset *out)
{
    jv_mpr r;
    jv_orset tmp;
    uint32_t count;
    size_t total = 0;
    jv_err err;
    jv_orset_init(&tmp);
    jv_mpr_init(&r, p, n);
    if ((err = jv_mpr_array_n(&r, 2)) ||
        (err = jv__mpr_count(&r, &count, JV_ORSET_MAX_ENTRIES,
                             ENTRY_MIN_BYTES)) ||
        (err = reserve(&tmp, count)))
        goto fail;
    for (uint32_t i = 0; i < count; i++) {
        if ((err = read_entry(&r, i ? &tmp.e[i - 1] : NULL, &tmp.e[i])))
            goto fail;
        total += tmp.e[i].nv;
        tmp.n++;
    }
    if ((err = read_ctx(&r, &tmp.ctx)) || (err = jv_mpr_end(&r)) ||
        (err = check_dots(&tmp, total)))
        goto fail;
    jv_orset_fini(out);
    *out = tmp;
    return JV_OK;
fail:
    jv_orset_fini(&tmp);
    return err;
}
