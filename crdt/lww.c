#include "lww.h"

#include <string.h>

#include "alloc.h"
#include "internal.h"

/* Smallest encoding of one entry: fixarray, a one-byte fixstr key, an empty
 * bin8 value, a fixint stamp, a bin8 replica id. */
#define ENTRY_MIN_BYTES (1 + 2 + 2 + 1 + 2 + JV_ID_LEN)

int jv_lww_order(uint64_t a_stamp, const jv_id *a_replica, jv_str a_value,
                 uint64_t b_stamp, const jv_id *b_replica, jv_str b_value)
{
    if (a_stamp != b_stamp)
        return a_stamp < b_stamp ? -1 : 1;
    int c = jv_id_cmp(a_replica, b_replica);
    if (c)
        return c;
    return jv_str_cmp(a_value, b_value);
}

int jv_lww_cmp(const jv_lww_reg *a, const jv_lww_reg *b)
{
    jv_str va = {(const char *)a->value, a->len};
    jv_str vb = {(const char *)b->value, b->len};
    return jv_lww_order(a->stamp, &a->replica, va, b->stamp, &b->replica, vb);
}

static bool key_ok(jv_str key)
{
    return key.n >= 1 && key.n <= JV_LWW_MAX_KEY && jv_str_valid_utf8(key);
}

static jv_str entry_key(const jv_lww_entry *e)
{
    jv_str k = {e->key, e->keylen};
    return k;
}

static int key_vs_entry(const void *key, const void *elem)
{
    return jv_str_cmp(*(const jv_str *)key, entry_key(elem));
}

/* A copy of `len` bytes, or NULL for none: empty values own nothing. */
static jv_err dup_bytes(const void *p, size_t len, uint8_t **out)
{
    *out = NULL;
    if (len == 0)
        return JV_OK;
    if (!(*out = jv_malloc(len)))
        return JV_ENOMEM;
    memcpy(*out, p, len);
    return JV_OK;
}

static jv_err reg_copy(jv_lww_reg *dst, const jv_lww_reg *src)
{
    jv_err err = dup_bytes(src->value, src->len, &dst->value);
    if (err)
        return err;
    dst->stamp = src->stamp;
    dst->replica = src->replica;
    dst->len = src->len;
    return JV_OK;
}

static jv_err entry_copy(jv_lww_entry *dst, const jv_lww_entry *src)
{
    char *key = jv_strndup(src->key, src->keylen);
    if (!key)
        return JV_ENOMEM;
    jv_err err = reg_copy(&dst->reg, &src->reg);
    if (err) {
        jv_free(key);
        return err;
    }
    dst->key = key;
    dst->keylen = src->keylen;
    return JV_OK;
}

static void entry_free(jv_lww_entry *e)
{
    jv_free(e->key);
    jv_free(e->reg.value);
}

static jv_err reserve(jv_lwwmap *m, size_t want)
{
    if (want <= m->cap)
        return JV_OK;
    size_t cap = m->cap ? m->cap : 8;
    while (cap < want)
        cap *= 2;
    jv_lww_entry *e = jv_reallocarray(m->e, cap, sizeof(*e));
    if (!e)
        return JV_ENOMEM;
    m->e = e;
    m->cap = cap;
    return JV_OK;
}

void jv_lwwmap_init(jv_lwwmap *m)
{
    m->e = NULL;
    m->n = 0;
    m->cap = 0;
}

void jv_lwwmap_fini(jv_lwwmap *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++)
        entry_free(&m->e[i]);
    jv_free(m->e);
    jv_lwwmap_init(m);
}

jv_err jv_lwwmap_set(jv_lwwmap *m, jv_str key, const void *value, size_t len,
                     uint64_t stamp, const jv_id *self, jv_lwwmap *delta)
{
    if (!key_ok(key) || len > JV_LWW_MAX_VALUE || (len && !value))
        return JV_EINVAL;
    jv_lwwmap tmp;
    jv_lww_entry e = {.keylen = key.n,
                      .reg = {.stamp = stamp, .replica = *self, .len = len}};
    jv_err err;
    jv_lwwmap_init(&tmp);
    if ((err = reserve(&tmp, 1)))
        goto fail;
    if (!(e.key = jv_strndup(key.p, key.n))) {
        err = JV_ENOMEM;
        goto fail;
    }
    if ((err = dup_bytes(value, len, &e.reg.value))) {
        jv_free(e.key);
        goto fail;
    }
    tmp.e[tmp.n++] = e;
    /* The write is the join with its own delta: a stamp that does not beat
     * the register leaves m as it is. */
    if ((err = jv_lwwmap_join(m, &tmp)))
        goto fail;
    jv_lwwmap_fini(delta);
    *delta = tmp;
    return JV_OK;
fail:
    jv_lwwmap_fini(&tmp);
    return err;
}

const jv_lww_reg *jv_lwwmap_get(const jv_lwwmap *m, jv_str key)
{
    size_t i =
        jv__lower_bound(m->e, m->n, sizeof(*m->e), 0, &key, key_vs_entry);
    if (i < m->n && key_vs_entry(&key, &m->e[i]) == 0)
        return &m->e[i].reg;
    return NULL;
}

/* Whether dst takes src's entry e: the key is new, or e's register beats
 * dst's. *pos is where e's key is, or goes, in dst. */
static bool takes(const jv_lwwmap *dst, size_t *pos, const jv_lww_entry *e,
                  bool *is_new)
{
    jv_str k = entry_key(e);
    *pos = jv__lower_bound(dst->e, dst->n, sizeof(*dst->e), *pos, &k,
                           key_vs_entry);
    *is_new = *pos == dst->n || key_vs_entry(&k, &dst->e[*pos]) != 0;
    return *is_new || jv_lww_cmp(&e->reg, &dst->e[*pos].reg) > 0;
}

/* A register dst takes from src; for a key dst already has, `e.key`
 * borrows src's key and only the register is owned. */
typedef struct {
    jv_lww_entry e;
    bool is_new;
} pending;

jv_err jv_lwwmap_join(jv_lwwmap *dst, const jv_lwwmap *src)
{
    pending *p = NULL;
    size_t want = 0, added = 0, np = 0, pos = 0;
    bool is_new;
    jv_err err = JV_OK;

    for (size_t j = 0; j < src->n; j++) {
        if (takes(dst, &pos, &src->e[j], &is_new)) {
            want++;
            added += is_new;
        }
    }
    if (want == 0)
        return JV_OK;

    /* Copy everything dst takes, and make room, before touching dst. */
    if (!(p = jv_malloc(want * sizeof(*p)))) {
        err = JV_ENOMEM;
        goto fail;
    }
    pos = 0;
    for (size_t j = 0; j < src->n; j++) {
        const jv_lww_entry *e = &src->e[j];
        if (!takes(dst, &pos, e, &is_new))
            continue;
        if (is_new) {
            err = entry_copy(&p[np].e, e);
        } else {
            p[np].e.key = e->key;
            p[np].e.keylen = e->keylen;
            err = reg_copy(&p[np].e.reg, &e->reg);
        }
        if (err)
            goto fail;
        p[np++].is_new = is_new;
    }
    if ((err = reserve(dst, dst->n + added)))
        goto fail;

    /* Merge from the back; p is sorted by key like dst. */
    size_t i = dst->n, k = dst->n + added, t = np;
    while (t > 0) {
        pending *q = &p[t - 1];
        if (!q->is_new) {
            jv_str key = entry_key(&q->e);
            while (key_vs_entry(&key, &dst->e[i - 1]) != 0)
                dst->e[--k] = dst->e[--i];
            jv_free(dst->e[i - 1].reg.value);
            dst->e[i - 1].reg = q->e.reg;
            dst->e[--k] = dst->e[--i];
        } else {
            jv_str key = entry_key(&q->e);
            while (i > 0 && key_vs_entry(&key, &dst->e[i - 1]) < 0)
                dst->e[--k] = dst->e[--i];
            dst->e[--k] = q->e;
        }
        t--;
    }
    dst->n += added;
    jv_free(p);
    return JV_OK;
fail:
    for (size_t j = 0; j < np; j++) {
        if (p[j].is_new)
            jv_free(p[j].e.key);
        jv_free(p[j].e.reg.value);
    }
    jv_free(p);
    return err;
}

bool jv_lwwmap_equal(const jv_lwwmap *a, const jv_lwwmap *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++) {
        jv_str ka = entry_key(&a->e[i]);
        if (key_vs_entry(&ka, &b->e[i]) != 0 ||
            jv_lww_cmp(&a->e[i].reg, &b->e[i].reg) != 0)
            return false;
    }
    return true;
}

jv_err jv_lwwmap_encode(const jv_lwwmap *m, jv_buf *out)
{
    size_t mark;
    jv_mpw w;
    jv_err err = jv__enc_begin(out, &mark);
    if (err)
        return err;
    /* Never write what our own decoder would refuse. */
    if (m->n > JV_LWW_MAX_ENTRIES)
        return JV_ETOOBIG;
    jv_mpw_init(&w, out);
    jv_mpw_array(&w, (uint32_t)m->n);
    for (size_t i = 0; i < m->n; i++) {
        const jv_lww_entry *e = &m->e[i];
        jv_mpw_array(&w, 4);
        jv_mpw_str(&w, e->key, e->keylen);
        jv_mpw_bin(&w, e->reg.value, e->reg.len);
        jv_mpw_u64(&w, e->reg.stamp);
        jv_mpw_id(&w, &e->reg.replica);
    }
    return jv__enc_end(out, mark, JV_OK);
}

static jv_err read_entry(jv_mpr *r, jv_lww_entry *e)
{
    jv_str key;
    const uint8_t *value;
    size_t len;
    jv_err err;
    if ((err = jv_mpr_array_n(r, 4)) ||
        (err = jv_mpr_str(r, &key, JV_LWW_MAX_KEY)) ||
        (err = jv_mpr_bin(r, &value, &len, JV_LWW_MAX_VALUE)) ||
        (err = jv_mpr_u64(r, &e->reg.stamp)) ||
        (err = jv_mpr_id(r, &e->reg.replica)))
        return err;
    if (!key_ok(key))
        return JV_EDECODE;
    if (!(e->key = jv_strndup(key.p, key.n)))
        return JV_ENOMEM;
    e->keylen = key.n;
    if ((err = dup_bytes(value, len, &e->reg.value))) {
        jv_free(e->key);
        return err;
    }
    e->reg.len = len;
    return JV_OK;
}

jv_err jv_lwwmap_decode(const void *p, size_t n, jv_lwwmap *out)
{
    jv_mpr r;
    jv_lwwmap tmp;
    uint32_t count;
    jv_err err;
    jv_lwwmap_init(&tmp);
    jv_mpr_init(&r, p, n);
    if ((err =
             jv__mpr_count(&r, &count, JV_LWW_MAX_ENTRIES, ENTRY_MIN_BYTES)) ||
        (err = reserve(&tmp, count)))
        goto fail;
    for (uint32_t i = 0; i < count; i++) {
        if ((err = read_entry(&r, &tmp.e[i])))
            goto fail;
        tmp.n++;
        if (i) {
            jv_str prev = entry_key(&tmp.e[i - 1]);
            if (key_vs_entry(&prev, &tmp.e[i]) >= 0) {
                err = JV_ENONCANON;
                goto fail;
            }
        }
    }
    if ((err = jv_mpr_end(&r)))
        goto fail;
    jv_lwwmap_fini(out);
    *out = tmp;
    return JV_OK;
fail:
    jv_lwwmap_fini(&tmp);
    return err;
}
