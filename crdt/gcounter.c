#include "gcounter.h"

#include "internal.h"

void jv_gcounter_init(jv_gcounter *c)
{
    jv_vv_init(&c->v);
}

void jv_gcounter_fini(jv_gcounter *c)
{
    if (c)
        jv_vv_fini(&c->v);
}

jv_err jv_gcounter_value(const jv_gcounter *c, uint64_t *out)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < c->v.n; i++) {
        if (c->v.v[i].seq > UINT64_MAX - sum)
            return JV_EOVERFLOW;
        sum += c->v.v[i].seq;
    }
    *out = sum;
    return JV_OK;
}

uint64_t jv_gcounter_get(const jv_gcounter *c, const jv_id *replica)
{
    return jv_vv_get(&c->v, replica);
}

/* Raises self's share in c by `by` and makes `delta` hold the new share
 * alone. Both are built before either is touched. */
static jv_err share_add(jv_gcounter *c, const jv_id *self, uint64_t by,
                        jv_gcounter *delta)
{
    uint64_t cur = jv_vv_get(&c->v, self);
    if (by > UINT64_MAX - cur)
        return JV_EOVERFLOW;
    jv_gcounter tmp;
    jv_gcounter_init(&tmp);
    jv_err err = jv_vv_set(&tmp.v, self, cur + by);
    if (err == JV_OK)
        err = jv_vv_set(&c->v, self, cur + by);
    if (err) {
        jv_gcounter_fini(&tmp);
        return err;
    }
    jv_gcounter_fini(delta);
    *delta = tmp;
    return JV_OK;
}

jv_err jv_gcounter_inc(jv_gcounter *c, const jv_id *self, uint64_t by,
                       jv_gcounter *delta)
{
    if (by == 0)
        return JV_EINVAL;
    return share_add(c, self, by, delta);
}

jv_err jv_gcounter_join(jv_gcounter *dst, const jv_gcounter *src)
{
    return jv_vv_merge(&dst->v, &src->v);
}

bool jv_gcounter_equal(const jv_gcounter *a, const jv_gcounter *b)
{
    return jv_vv_equal(&a->v, &b->v);
}

static jv_err write_counter(const jv_gcounter *c, jv_mpw *w)
{
    /* Never write what our own decoder would refuse. */
    if (c->v.n > JV_VV_MAX_ENTRIES)
        return JV_ETOOBIG;
    jv_vv_encode(&c->v, w);
    return JV_OK;
}

jv_err jv_gcounter_encode(const jv_gcounter *c, jv_buf *out)
{
    size_t mark;
    jv_mpw w;
    jv_err err = jv__enc_begin(out, &mark);
    if (err)
        return err;
    jv_mpw_init(&w, out);
    err = write_counter(c, &w);
    return jv__enc_end(out, mark, err);
}

jv_err jv_gcounter_decode(const void *p, size_t n, jv_gcounter *out)
{
    jv_mpr r;
    jv_gcounter tmp;
    jv_gcounter_init(&tmp);
    jv_mpr_init(&r, p, n);
    jv_err err = jv_vv_decode(&r, &tmp.v);
    if (err == JV_OK)
        err = jv_mpr_end(&r);
    if (err) {
        jv_gcounter_fini(&tmp);
        return err;
    }
    jv_gcounter_fini(out);
    *out = tmp;
    return JV_OK;
}

void jv_pncounter_init(jv_pncounter *c)
{
    jv_gcounter_init(&c->p);
    jv_gcounter_init(&c->n);
}

void jv_pncounter_fini(jv_pncounter *c)
{
    if (!c)
        return;
    jv_gcounter_fini(&c->p);
    jv_gcounter_fini(&c->n);
}

jv_err jv_pncounter_value(const jv_pncounter *c, int64_t *out)
{
    uint64_t p, n;
    jv_err err;
    if ((err = jv_gcounter_value(&c->p, &p)) ||
        (err = jv_gcounter_value(&c->n, &n)))
        return err;
    if (p >= n) {
        if (p - n > (uint64_t)INT64_MAX)
            return JV_EOVERFLOW;
        *out = (int64_t)(p - n);
    } else {
        uint64_t d = n - p;
        if (d > (uint64_t)INT64_MAX + 1)
            return JV_EOVERFLOW;
        /* -(d) without forming +2^63 as an int64_t. */
        *out = -(int64_t)(d - 1) - 1;
    }
    return JV_OK;
}

jv_err jv_pncounter_add(jv_pncounter *c, const jv_id *self, int64_t by,
                        jv_pncounter *delta)
{
    if (by == 0)
        return JV_EINVAL;
    jv_pncounter tmp;
    jv_pncounter_init(&tmp);
    jv_err err;
    if (by > 0)
        err = share_add(&c->p, self, (uint64_t)by, &tmp.p);
    else
        err = share_add(&c->n, self, (uint64_t)(-(by + 1)) + 1, &tmp.n);
    if (err)
        return err;
    jv_pncounter_fini(delta);
    *delta = tmp;
    return JV_OK;
}

jv_err jv_pncounter_join(jv_pncounter *dst, const jv_pncounter *src)
{
    /* Room for N's merge first: then P's merge is the only step that can
     * fail, and it fails before anything visible has changed. */
    jv_err err;
    if ((err = jv__vv_reserve_merge(&dst->n.v, &src->n.v)) ||
        (err = jv_vv_merge(&dst->p.v, &src->p.v)))
        return err;
    return jv_vv_merge(&dst->n.v, &src->n.v);
}

bool jv_pncounter_equal(const jv_pncounter *a, const jv_pncounter *b)
{
    return jv_gcounter_equal(&a->p, &b->p) && jv_gcounter_equal(&a->n, &b->n);
}

jv_err jv_pncounter_encode(const jv_pncounter *c, jv_buf *out)
{
    size_t mark;
    jv_mpw w;
    jv_err err = jv__enc_begin(out, &mark);
    if (err)
        return err;
    jv_mpw_init(&w, out);
    jv_mpw_array(&w, 2);
    if ((err = write_counter(&c->p, &w)) == JV_OK)
        err = write_counter(&c->n, &w);
    return jv__enc_end(out, mark, err);
}

jv_err jv_pncounter_decode(const void *p, size_t n, jv_pncounter *out)
{
    jv_mpr r;
    jv_pncounter tmp;
    jv_err err;
    jv_pncounter_init(&tmp);
    jv_mpr_init(&r, p, n);
    if ((err = jv_mpr_array_n(&r, 2)) || (err = jv_vv_decode(&r, &tmp.p.v)) ||
        (err = jv_vv_decode(&r, &tmp.n.v)) || (err = jv_mpr_end(&r))) {
        jv_pncounter_fini(&tmp);
        return err;
    }
    jv_pncounter_fini(out);
    *out = tmp;
    return JV_OK;
}

/* -- exact totals --------------------------------------------------------- */

static void u128_add(jv_u128 *a, jv_u128 b)
{
    uint64_t lo = a->lo + b.lo;
    a->hi += b.hi + (lo < a->lo);
    a->lo = lo;
}

static int u128_cmp(jv_u128 a, jv_u128 b)
{
    if (a.hi != b.hi)
        return a.hi < b.hi ? -1 : 1;
    return (a.lo > b.lo) - (a.lo < b.lo);
}

/* a - b for a >= b. */
static jv_u128 u128_sub(jv_u128 a, jv_u128 b)
{
    jv_u128 r = {a.hi - b.hi - (a.lo < b.lo), a.lo - b.lo};
    return r;
}

/* The total as a sign and a magnitude. */
static jv_u128 magnitude(const jv_count *c, bool *neg)
{
    *neg = u128_cmp(c->p, c->n) < 0;
    return *neg ? u128_sub(c->n, c->p) : u128_sub(c->p, c->n);
}

void jv_count_add(jv_count *c, uint64_t p, uint64_t n)
{
    u128_add(&c->p, (jv_u128){0, p});
    u128_add(&c->n, (jv_u128){0, n});
}

void jv_pncounter_count(const jv_pncounter *pn, jv_count *out)
{
    jv_count c = {{0, 0}, {0, 0}};
    for (size_t i = 0; i < pn->p.v.n; i++)
        jv_count_add(&c, pn->p.v.v[i].seq, 0);
    for (size_t i = 0; i < pn->n.v.n; i++)
        jv_count_add(&c, 0, pn->n.v.v[i].seq);
    *out = c;
}

int jv_count_cmp(const jv_count *a, const jv_count *b)
{
    /* a.p - a.n vs b.p - b.n  <=>  a.p + b.n vs b.p + a.n; each side is a
     * sum of two values below 2^127 (see gcounter.h), so it fits. */
    jv_u128 l = a->p, r = b->p;
    u128_add(&l, b->n);
    u128_add(&r, a->n);
    return u128_cmp(l, r);
}

jv_err jv_count_i64(const jv_count *c, int64_t lo, int64_t hi, int64_t *out)
{
    bool neg;
    jv_u128 m = magnitude(c, &neg);
    /* -(lo + 1) + 1 is |lo| without overflow for INT64_MIN. */
    uint64_t lim = neg ? (uint64_t)(-(lo + 1)) + 1 : (uint64_t)hi;
    if (m.hi != 0 || m.lo > lim)
        return JV_EOVERFLOW;
    *out = neg ? (m.lo == 0 ? 0 : -(int64_t)(m.lo - 1) - 1) : (int64_t)m.lo;
    return JV_OK;
}

/* Divides m by 10 in place, returning the remainder: long division on
 * 32-bit limbs, so that no step needs more than 64 bits. */
static unsigned u128_div10(jv_u128 *m)
{
    uint32_t limb[4] = {(uint32_t)(m->hi >> 32), (uint32_t)m->hi,
                        (uint32_t)(m->lo >> 32), (uint32_t)m->lo};
    uint64_t rem = 0;
    for (int i = 0; i < 4; i++) {
        uint64_t cur = (rem << 32) | limb[i];
        limb[i] = (uint32_t)(cur / 10);
        rem = cur % 10;
    }
    m->hi = (uint64_t)limb[0] << 32 | limb[1];
    m->lo = (uint64_t)limb[2] << 32 | limb[3];
    return (unsigned)rem;
}

size_t jv_count_format(const jv_count *c, char buf[JV_COUNT_TEXT])
{
    bool neg;
    jv_u128 m = magnitude(c, &neg);
    char tmp[JV_COUNT_TEXT];
    size_t n = 0, len = 0;
    do
        tmp[n++] = (char)('0' + u128_div10(&m));
    while (m.hi || m.lo);
    if (neg)
        buf[len++] = '-';
    while (n)
        buf[len++] = tmp[--n];
    buf[len] = '\0';
    return len;
}
