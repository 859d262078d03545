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
