#include "vv.h"

#include <string.h>

#include "alloc.h"
#include "internal.h"

/* Smallest encoding of one entry: fixarray, bin8 header + 32 bytes, and a
 * positive fixint. */
#define VV_ENTRY_MIN_BYTES (1 + 2 + JV_ID_LEN + 1)

void jv_vv_init(jv_vv *vv)
{
    vv->v = NULL;
    vv->n = 0;
    vv->cap = 0;
}

void jv_vv_fini(jv_vv *vv)
{
    if (!vv)
        return;
    jv_free(vv->v);
    jv_vv_init(vv);
}

void jv_vv_clear(jv_vv *vv)
{
    vv->n = 0;
}

/* Makes room for `want` entries; on failure vv is unchanged. */
static jv_err reserve(jv_vv *vv, size_t want)
{
    if (want <= vv->cap)
        return JV_OK;
    size_t cap = vv->cap ? vv->cap : 4;
    while (cap < want)
        cap *= 2;
    jv_vv_entry *v = jv_reallocarray(vv->v, cap, sizeof(*v));
    if (!v)
        return JV_ENOMEM;
    vv->v = v;
    vv->cap = cap;
    return JV_OK;
}

jv_err jv_vv_copy(jv_vv *dst, const jv_vv *src)
{
    if (dst == src)
        return JV_OK;
    jv_err err = reserve(dst, src->n);
    if (err)
        return err;
    if (src->n)
        memcpy(dst->v, src->v, src->n * sizeof(*src->v));
    dst->n = src->n;
    return JV_OK;
}

/* Index of the first entry whose id is >= id. */
static size_t find(const jv_vv *vv, const jv_id *id)
{
    size_t lo = 0, hi = vv->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (jv_id_cmp(&vv->v[mid].id, id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

uint64_t jv_vv_get(const jv_vv *vv, const jv_id *id)
{
    size_t i = find(vv, id);
    if (i < vv->n && jv_id_eq(&vv->v[i].id, id))
        return vv->v[i].seq;
    return 0;
}

jv_err jv_vv_set(jv_vv *vv, const jv_id *id, uint64_t seq)
{
    size_t i = find(vv, id);
    bool found = i < vv->n && jv_id_eq(&vv->v[i].id, id);
    if (found) {
        if (seq) {
            vv->v[i].seq = seq;
        } else {
            memmove(vv->v + i, vv->v + i + 1, (vv->n - i - 1) * sizeof(*vv->v));
            vv->n--;
        }
        return JV_OK;
    }
    if (seq == 0)
        return JV_OK;
    jv_err err = reserve(vv, vv->n + 1);
    if (err)
        return err;
    memmove(vv->v + i + 1, vv->v + i, (vv->n - i) * sizeof(*vv->v));
    vv->v[i].id = *id;
    vv->v[i].seq = seq;
    vv->n++;
    return JV_OK;
}

jv_err jv_vv_raise(jv_vv *vv, const jv_id *id, uint64_t seq)
{
    if (seq <= jv_vv_get(vv, id))
        return JV_OK;
    return jv_vv_set(vv, id, seq);
}

/* How many ids of src dst lacks. */
static size_t count_new(const jv_vv *dst, const jv_vv *src)
{
    size_t i = 0, j = 0, added = 0;
    while (j < src->n) {
        int c = i < dst->n ? jv_id_cmp(&dst->v[i].id, &src->v[j].id) : 1;
        if (c < 0) {
            i++;
        } else if (c == 0) {
            i++, j++;
        } else {
            added++, j++;
        }
    }
    return added;
}

jv_err jv__vv_reserve_merge(jv_vv *dst, const jv_vv *src)
{
    return reserve(dst, dst->n + count_new(dst, src));
}

/* dst's entries combined with src's: the larger seq of each id, or (patch)
 * src's where src has the id. */
static jv_err combine(jv_vv *dst, const jv_vv *src, bool patch)
{
    /* With no new ids (the usual case once replicas know each other) this
     * is done in place, without allocating. */
    size_t added = count_new(dst, src), i, j;
    jv_err err = reserve(dst, dst->n + added);
    if (err)
        return err;
    /* From the back, so that no dst entry is overwritten before it is
     * read. */
    size_t k = dst->n + added;
    i = dst->n;
    j = src->n;
    while (j > 0) {
        int c = i > 0 ? jv_id_cmp(&dst->v[i - 1].id, &src->v[j - 1].id) : -1;
        if (c > 0) {
            dst->v[--k] = dst->v[--i];
        } else if (c == 0) {
            jv_vv_entry e = dst->v[--i];
            uint64_t s = src->v[--j].seq;
            if (patch || s > e.seq)
                e.seq = s;
            dst->v[--k] = e;
        } else {
            dst->v[--k] = src->v[--j];
        }
    }
    dst->n += added;
    return JV_OK;
}

jv_err jv_vv_merge(jv_vv *dst, const jv_vv *src)
{
    return combine(dst, src, false);
}

jv_err jv_vv_patch(jv_vv *dst, const jv_vv *diff)
{
    return combine(dst, diff, true);
}

jv_err jv_vv_diff(const jv_vv *vv, const jv_vv *base, jv_vv *out)
{
    size_t i = 0, j = 0;
    jv_err err;
    jv_vv_clear(out);
    while (i < vv->n || j < base->n) {
        int c = i == vv->n     ? 1
                : j == base->n ? -1
                               : jv_id_cmp(&vv->v[i].id, &base->v[j].id);
        if (c > 0)
            return JV_ESTATE; /* an id of base that vv lacks */
        if (c < 0 || vv->v[i].seq != base->v[j].seq) {
            if ((err = reserve(out, out->n + 1)))
                return err;
            out->v[out->n++] = vv->v[i];
        }
        i++;
        if (c == 0)
            j++;
    }
    return JV_OK;
}

jv_err jv_vv_diff_refs(const jv_vv *vv, const jv_vv *base, jv_vv_ref **refs,
                       size_t *nrefs, jv_vv *rest)
{
    jv_vv diff;
    jv_vv_ref *out = NULL;
    size_t n = 0, j = 0;
    jv_vv_init(&diff);
    *refs = NULL;
    *nrefs = 0;
    jv_vv_clear(rest);
    jv_err err = jv_vv_diff(vv, base, &diff);
    if (err || !diff.n)
        goto out;
    if (!(out = jv_malloc(diff.n * sizeof(*out)))) {
        err = JV_ENOMEM;
        goto out;
    }
    /* Both sorted: one walk finds each diff entry's place in base. */
    for (size_t i = 0; i < diff.n && !err; i++) {
        const jv_vv_entry *e = &diff.v[i];
        while (j < base->n && jv_id_cmp(&base->v[j].id, &e->id) < 0)
            j++;
        if (j < base->n && jv_id_eq(&base->v[j].id, &e->id))
            out[n++] = (jv_vv_ref){.idx = (uint32_t)j, .seq = e->seq};
        else if (!(err = reserve(rest, rest->n + 1)))
            rest->v[rest->n++] = *e;
    }
out:
    if (err || !n) {
        jv_free(out);
        out = NULL;
        n = 0;
    }
    if (err)
        jv_vv_clear(rest);
    *refs = out;
    *nrefs = n;
    jv_vv_fini(&diff);
    return err;
}

jv_err jv_vv_patch_refs(jv_vv *dst, const jv_vv_ref *refs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (refs[i].idx >= dst->n || refs[i].seq == 0)
            return JV_ENOTFOUND;
    for (size_t i = 0; i < n; i++)
        dst->v[refs[i].idx].seq = refs[i].seq;
    return JV_OK;
}

jv_vv_order jv_vv_compare(const jv_vv *a, const jv_vv *b)
{
    bool a_ahead = false, b_ahead = false;
    size_t i = 0, j = 0;
    while (i < a->n || j < b->n) {
        int c;
        if (i == a->n)
            c = 1;
        else if (j == b->n)
            c = -1;
        else
            c = jv_id_cmp(&a->v[i].id, &b->v[j].id);
        if (c < 0) {
            a_ahead = true, i++;
        } else if (c > 0) {
            b_ahead = true, j++;
        } else {
            if (a->v[i].seq > b->v[j].seq)
                a_ahead = true;
            else if (a->v[i].seq < b->v[j].seq)
                b_ahead = true;
            i++, j++;
        }
        if (a_ahead && b_ahead)
            return JV_VV_CONCURRENT;
    }
    if (a_ahead)
        return JV_VV_AFTER;
    return b_ahead ? JV_VV_BEFORE : JV_VV_EQUAL;
}

bool jv_vv_equal(const jv_vv *a, const jv_vv *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (a->v[i].seq != b->v[i].seq || !jv_id_eq(&a->v[i].id, &b->v[i].id))
            return false;
    return true;
}

jv_err jv_vv_lacks(const jv_vv *have, const jv_vv *other, jv_vv_range **out,
                   size_t *n)
{
    size_t count = 0;
    for (size_t j = 0; j < other->n; j++)
        if (other->v[j].seq > jv_vv_get(have, &other->v[j].id))
            count++;
    jv_vv_range *r = NULL;
    if (count) {
        r = jv_malloc(count * sizeof(*r));
        if (!r)
            return JV_ENOMEM;
        size_t k = 0;
        for (size_t j = 0; j < other->n; j++) {
            uint64_t h = jv_vv_get(have, &other->v[j].id);
            if (other->v[j].seq > h) {
                r[k].id = other->v[j].id;
                r[k].from = h;
                r[k].to = other->v[j].seq;
                k++;
            }
        }
    }
    *out = r;
    *n = count;
    return JV_OK;
}

uint64_t jv_vv_missing(const jv_vv *have, const jv_vv *other)
{
    uint64_t total = 0;
    for (size_t j = 0; j < other->n; j++) {
        uint64_t h = jv_vv_get(have, &other->v[j].id);
        if (other->v[j].seq <= h)
            continue;
        uint64_t d = other->v[j].seq - h;
        total = d > UINT64_MAX - total ? UINT64_MAX : total + d;
    }
    return total;
}

void jv_vv_encode(const jv_vv *vv, jv_mpw *w)
{
    jv_mpw_array(w, (uint32_t)vv->n);
    for (size_t i = 0; i < vv->n; i++) {
        jv_mpw_array(w, 2);
        jv_mpw_id(w, &vv->v[i].id);
        jv_mpw_u64(w, vv->v[i].seq);
    }
}

size_t jv_vv_encoded_len(const jv_vv *vv)
{
    /* An entry: [bin 32, seq], the bin's header two bytes. */
    size_t n = jv_mp_array_len((uint32_t)vv->n);
    for (size_t i = 0; i < vv->n; i++)
        n += jv_mp_array_len(2) + 2 + JV_ID_LEN + jv_mp_u64_len(vv->v[i].seq);
    return n;
}

jv_err jv_vv_decode(jv_mpr *r, jv_vv *out)
{
    jv_vv tmp;
    uint32_t n;
    jv_err err;
    jv_vv_init(&tmp);
    if ((err = jv__mpr_count(r, &n, JV_VV_MAX_ENTRIES, VV_ENTRY_MIN_BYTES)))
        return err;
    if ((err = reserve(&tmp, n)))
        goto fail;
    for (uint32_t i = 0; i < n; i++) {
        jv_vv_entry e;
        if ((err = jv_mpr_array_n(r, 2)) || (err = jv_mpr_id(r, &e.id)) ||
            (err = jv_mpr_u64(r, &e.seq)))
            goto fail;
        /* One form per vector: sorted ids, no explicit zeros. */
        if (e.seq == 0 || (i && jv_id_cmp(&tmp.v[i - 1].id, &e.id) >= 0)) {
            err = JV_ENONCANON;
            goto fail;
        }
        tmp.v[tmp.n++] = e;
    }
    jv_vv_fini(out);
    *out = tmp;
    return JV_OK;
fail:
    jv_vv_fini(&tmp);
    return err;
}
