/*
 * trustview.c - the trust list's decisions, read once (trustview.h).
 *
 * jv_store_is_trusted says yes only for an id that appears somewhere: an
 * entry of the trust list, either side of a succession, this node's id or
 * one of its earlier origins. The view asks it about each of those ids
 * and answers no for every other, which is the store's answer too.
 */
#include "trustview.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "store_int.h"

typedef struct {
    jv_id id;
    bool trusted;
    bool has_entry;
    jv_trust_row row; /* when has_entry; row.name is name */
    char *name;
} fact;

struct jv_trustview {
    fact *v;
    size_t n, cap;
    size_t entries;
};

static jv_err add_fact(jv_trustview *v, const jv_id *id, fact **out)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 16;
        fact *nv = jv_reallocarray(v->v, cap, sizeof(*nv));
        if (!nv)
            return JV_ENOMEM;
        v->v = nv;
        v->cap = cap;
    }
    fact *f = &v->v[v->n++];
    memset(f, 0, sizeof(*f));
    f->id = *id;
    if (out)
        *out = f;
    return JV_OK;
}

static jv_err add_entry(void *arg, const jv_trust_row *r)
{
    jv_trustview *v = arg;
    fact *f;
    char *name = jv_strndup(r->name.p ? r->name.p : "", r->name.n);
    if (!name)
        return JV_ENOMEM;
    jv_err err = add_fact(v, &r->node, &f);
    if (err) {
        jv_free(name);
        return err;
    }
    f->has_entry = true;
    f->name = name;
    f->row = *r;
    f->row.name = (jv_str){name, r->name.n};
    v->entries++;
    return JV_OK;
}

static const char sql_succ_all[] = "SELECT old, new FROM succession";

static jv_err add_successions(jv_store *st, jv_trustview *v)
{
    jv_err err;
    sqlite3_stmt *s = jv__stmt(st, sql_succ_all, &err);
    if (!s)
        return err;
    int rc;
    err = JV_OK;
    while (!err && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        jv_id old, new;
        if (!(err = jv__col_id(st, s, 0, &old)) &&
            !(err = jv__col_id(st, s, 1, &new)) &&
            !(err = add_fact(v, &old, NULL)))
            err = add_fact(v, &new, NULL);
    }
    if (!err && rc != SQLITE_DONE)
        err = jv__sqlerr(st, rc, "read successions");
    jv__reset(s);
    return err;
}

static jv_err add_own(jv_store *st, jv_trustview *v)
{
    uint8_t ids[JV_OWN_ORIGINS_MAX * JV_ID_LEN];
    size_t len = 0;
    jv_id id;
    jv_err err = jv__self(st, &id);
    if (err == JV_OK)
        err = add_fact(v, &id, NULL);
    if (err && err != JV_ENOTFOUND)
        return err;
    err = jv_store_meta_get(st, JV_META_OWN_ORIGINS, ids, sizeof(ids), &len);
    if (err == JV_ENOTFOUND)
        return JV_OK;
    for (size_t i = 0; !err && i + JV_ID_LEN <= len && i < sizeof(ids);
         i += JV_ID_LEN) {
        memcpy(id.b, ids + i, JV_ID_LEN);
        err = add_fact(v, &id, NULL);
    }
    return err;
}

static int by_id(const void *a, const void *b)
{
    const fact *x = a, *y = b;
    int c = jv_id_cmp(&x->id, &y->id);
    /* An entry first among equal ids: it is the one kept. */
    return c ? c : (int)y->has_entry - (int)x->has_entry;
}

/* Sorts by id and keeps one fact per id. */
static void dedupe(jv_trustview *v)
{
    size_t w = 0;
    if (v->n)
        qsort(v->v, v->n, sizeof(*v->v), by_id);
    for (size_t i = 0; i < v->n; i++)
        if (!w || !jv_id_eq(&v->v[w - 1].id, &v->v[i].id))
            v->v[w++] = v->v[i];
    v->n = w;
}

static jv_err read_all(jv_store *st, jv_trustview *v)
{
    jv_err err;
    if ((err = jv_store_trust_list(st, add_entry, v)) ||
        (err = add_successions(st, v)) || (err = add_own(st, v)))
        return err;
    dedupe(v);
    for (size_t i = 0; i < v->n && !err; i++)
        err = jv_store_is_trusted(st, &v->v[i].id, &v->v[i].trusted);
    return err;
}

jv_err jv_trustview_read(jv_store *st, jv_trustview **out)
{
    jv_trustview *v = jv_calloc(1, sizeof(*v));
    jv_err err;
    *out = NULL;
    if (!v)
        return JV_ENOMEM;
    if ((err = jv_store_read_begin(st)))
        goto fail;
    err = read_all(st, v);
    jv_store_read_end(st);
    if (err)
        goto fail;
    *out = v;
    return JV_OK;
fail:
    jv_trustview_free(v);
    return err;
}

void jv_trustview_free(jv_trustview *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->n; i++)
        jv_free(v->v[i].name);
    jv_free(v->v);
    jv_free(v);
}

static const fact *find(const jv_trustview *v, const jv_id *id)
{
    size_t lo = 0, hi = v ? v->n : 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = jv_id_cmp(&v->v[mid].id, id);
        if (!c)
            return &v->v[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

bool jv_trustview_trusted(const jv_trustview *v, const jv_id *id)
{
    const fact *f = find(v, id);
    return f && f->trusted;
}

const jv_trust_row *jv_trustview_entry(const jv_trustview *v, const jv_id *id)
{
    const fact *f = find(v, id);
    return f && f->has_entry ? &f->row : NULL;
}

jv_err jv_trustview_each(const jv_trustview *v, jv_trust_cb cb, void *arg)
{
    jv_err err = JV_OK;
    for (size_t i = 0; v && i < v->n && !err; i++)
        if (v->v[i].has_entry)
            err = cb(arg, &v->v[i].row);
    return err;
}

size_t jv_trustview_entries(const jv_trustview *v)
{
    return v ? v->entries : 0;
}
