#include "vvlink.h"

#include <string.h>

#include "alloc.h"

typedef struct {
    uint64_t stamp; /* 0: empty */
    jv_vv vv;
} slot;

typedef struct {
    jv_id id;
    uint64_t touched;        /* for the least recently used */
    slot out[JV_VVLINK_OUT]; /* our messages to it */
    slot in[JV_VVLINK_IN];   /* its messages to us */
    uint64_t acked;          /* which of ours it last said it holds */
    uint64_t last_in;        /* its newest message taken */
} link;

struct jv_vvlinks {
    link *v;
    size_t n, max;
    uint64_t tick;
};

jv_err jv_vvlinks_new(size_t max, jv_vvlinks **out)
{
    jv_vvlinks *t = jv_calloc(1, sizeof(*t));
    if (!t || !(t->v = jv_calloc(max ? max : 1, sizeof(*t->v)))) {
        jv_free(t);
        return JV_ENOMEM;
    }
    t->max = max ? max : 1;
    *out = t;
    return JV_OK;
}

static void link_clear(link *l)
{
    for (size_t i = 0; i < JV_VVLINK_OUT; i++) {
        jv_vv_fini(&l->out[i].vv);
        l->out[i].stamp = 0;
    }
    for (size_t i = 0; i < JV_VVLINK_IN; i++) {
        jv_vv_fini(&l->in[i].vv);
        l->in[i].stamp = 0;
    }
    l->acked = l->last_in = 0;
}

void jv_vvlinks_free(jv_vvlinks *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        link_clear(&t->v[i]);
    jv_free(t->v);
    jv_free(t);
}

size_t jv_vvlinks_count(const jv_vvlinks *t)
{
    return t->n;
}

static link *find(jv_vvlinks *t, const jv_id *id)
{
    for (size_t i = 0; i < t->n; i++)
        if (jv_id_eq(&t->v[i].id, id)) {
            t->v[i].touched = ++t->tick;
            return &t->v[i];
        }
    return NULL;
}

/* id's entry, made (in the least recently used one's place when full). */
static link *find_add(jv_vvlinks *t, const jv_id *id)
{
    link *l = find(t, id);
    if (l)
        return l;
    if (t->n < t->max) {
        l = &t->v[t->n++];
    } else {
        l = &t->v[0];
        for (size_t i = 1; i < t->n; i++)
            if (t->v[i].touched < l->touched)
                l = &t->v[i];
        link_clear(l);
    }
    l->id = *id;
    l->touched = ++t->tick;
    return l;
}

static slot *slot_of(slot *s, size_t n, uint64_t stamp)
{
    for (size_t i = 0; stamp && i < n; i++)
        if (s[i].stamp == stamp)
            return &s[i];
    return NULL;
}

/* The slot a new entry replaces: an empty one, else the oldest that is not
 * `keep`; NULL if the new one (stamped `stamp`) would be the oldest. */
static slot *slot_free(slot *s, size_t n, uint64_t stamp, uint64_t keep)
{
    slot *old = NULL;
    for (size_t i = 0; i < n; i++) {
        if (!s[i].stamp)
            return &s[i];
        if (s[i].stamp != keep && (!old || s[i].stamp < old->stamp))
            old = &s[i];
    }
    return old && old->stamp < stamp ? old : NULL;
}

jv_err jv_vvlinks_base(jv_vvlinks *t, const jv_id *to, uint64_t *stamp,
                       jv_vv *base, uint64_t *heard)
{
    link *l = find(t, to);
    *stamp = *heard = 0;
    if (base)
        jv_vv_clear(base);
    if (!l)
        return JV_OK;
    for (size_t i = 0; i < JV_VVLINK_IN; i++)
        if (l->in[i].stamp > *heard)
            *heard = l->in[i].stamp;
    slot *s = base ? slot_of(l->out, JV_VVLINK_OUT, l->acked) : NULL;
    if (!s)
        return JV_OK;
    jv_err err = jv_vv_copy(base, &s->vv);
    if (!err)
        *stamp = s->stamp;
    return err;
}

jv_err jv_vvlinks_sent(jv_vvlinks *t, const jv_id *to, uint64_t stamp,
                       const jv_vv *vv)
{
    link *l = find_add(t, to);
    slot *s = slot_free(l->out, JV_VVLINK_OUT, stamp, l->acked);
    if (!s || slot_of(l->out, JV_VVLINK_OUT, stamp))
        return JV_OK;
    jv_err err = jv_vv_copy(&s->vv, vv);
    s->stamp = err ? 0 : stamp;
    return err;
}

jv_err jv_vvlinks_took(jv_vvlinks *t, const jv_id *from, uint64_t stamp,
                       uint64_t base, uint64_t heard, const jv_vv_ref *refs,
                       size_t nrefs, jv_vv *vv)
{
    link *l = base ? find(t, from) : find_add(t, from);
    jv_vv whole;
    jv_err err;
    jv_vv_init(&whole);
    if (!base && nrefs)
        return JV_EINVAL; /* places in no base */
    if (base) {
        slot *b = l ? slot_of(l->in, JV_VVLINK_IN, base) : NULL;
        if (!b)
            return JV_ENOTFOUND;
        /* The places first: they are the base's, before any id is added. */
        if ((err = jv_vv_copy(&whole, &b->vv)) ||
            (err = jv_vv_patch_refs(&whole, refs, nrefs)) ||
            (err = jv_vv_patch(&whole, vv)))
            goto out;
        if (whole.n > JV_VV_MAX_ENTRIES) {
            err = JV_ETOOBIG;
            goto out;
        }
        jv_vv vs = *vv;
        *vv = whole;
        whole = vs;
    }
    slot *s = slot_free(l->in, JV_VVLINK_IN, stamp, 0);
    if (s && !slot_of(l->in, JV_VVLINK_IN, stamp)) {
        err = jv_vv_copy(&s->vv, vv);
        s->stamp = err ? 0 : stamp;
        if (err)
            goto out;
    }
    if (stamp > l->last_in) {
        l->last_in = stamp;
        l->acked = heard;
    }
    err = JV_OK;
out:
    jv_vv_fini(&whole);
    return err;
}

void jv_vvlinks_forget(jv_vvlinks *t, const jv_id *id)
{
    link *l = find(t, id);
    if (l)
        link_clear(l);
}
