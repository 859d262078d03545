#include "audit.h"

#include <string.h>

#include "alloc.h"
#include "internal.h"

/* Smallest encoding of one entry: fixarray, bin8 id, two fixints, four
 * empty fixstr. */
#define ENTRY_MIN_BYTES (1 + 2 + JV_ID_LEN + 1 + 1 + 4)

/* The four texts of an entry live in one allocation, in field order, each
 * NUL-terminated; `actor` points at its start and owns it. One allocation
 * per entry keeps joins cheap and failure handling simple. */
typedef struct {
    jv_str t[4];
} texts;

static texts entry_texts(const jv_audit_entry *e)
{
    texts t = {{jv_str_c(e->actor), jv_str_c(e->action), jv_str_c(e->target),
                jv_str_c(e->detail)}};
    return t;
}

static bool texts_ok(const texts *t)
{
    static const size_t max[4] = {JV_AUDIT_MAX_ACTOR, JV_AUDIT_MAX_ACTION,
                                  JV_AUDIT_MAX_TARGET, JV_AUDIT_MAX_DETAIL};
    for (int i = 0; i < 4; i++)
        if (t->t[i].n > max[i] || !jv_str_valid_utf8(t->t[i]))
            return false;
    return true;
}

static jv_err entry_make(jv_audit_entry *e, const jv_dot *id, uint64_t time_ms,
                         const texts *t)
{
    size_t total = 0;
    for (int i = 0; i < 4; i++)
        total += t->t[i].n + 1;
    char *block = jv_malloc(total), *p = block;
    if (!block)
        return JV_ENOMEM;
    char **field[4] = {&e->actor, &e->action, &e->target, &e->detail};
    for (int i = 0; i < 4; i++) {
        if (t->t[i].n)
            memcpy(p, t->t[i].p, t->t[i].n);
        p[t->t[i].n] = '\0';
        *field[i] = p;
        p += t->t[i].n + 1;
    }
    e->id = *id;
    e->time_ms = time_ms;
    return JV_OK;
}

static jv_err entry_copy(jv_audit_entry *dst, const jv_audit_entry *src)
{
    texts t = entry_texts(src);
    return entry_make(dst, &src->id, src->time_ms, &t);
}

static void entry_free(jv_audit_entry *e)
{
    jv_free(e->actor);
}

/* Orders the content of two entries of one id: time, then the texts. */
static int content_cmp(const jv_audit_entry *a, const jv_audit_entry *b)
{
    if (a->time_ms != b->time_ms)
        return a->time_ms < b->time_ms ? -1 : 1;
    /* strcmp orders texts without NUL bytes as jv_str_cmp() does (bytes
     * unsigned, a prefix first), without measuring them first. */
    const char *fa[4] = {a->actor, a->action, a->target, a->detail};
    const char *fb[4] = {b->actor, b->action, b->target, b->detail};
    for (int i = 0; i < 4; i++) {
        int c = strcmp(fa[i], fb[i]);
        if (c)
            return c;
    }
    return 0;
}

static int dot_vs_entry(const void *key, const void *elem)
{
    return jv_dot_cmp(key, &((const jv_audit_entry *)elem)->id);
}

static size_t find(const jv_audit *s, const jv_dot *id)
{
    return jv__lower_bound(s->e, s->n, sizeof(*s->e), 0, id, dot_vs_entry);
}

static jv_err reserve(jv_audit *s, size_t want)
{
    if (want <= s->cap)
        return JV_OK;
    size_t cap = s->cap ? s->cap : 8;
    while (cap < want)
        cap *= 2;
    jv_audit_entry *e = jv_reallocarray(s->e, cap, sizeof(*e));
    if (!e)
        return JV_ENOMEM;
    s->e = e;
    s->cap = cap;
    return JV_OK;
}

void jv_audit_init(jv_audit *s)
{
    s->e = NULL;
    s->n = 0;
    s->cap = 0;
}

void jv_audit_fini(jv_audit *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        entry_free(&s->e[i]);
    jv_free(s->e);
    jv_audit_init(s);
}

/* Replaces *dst with a set holding a copy of e alone. */
static jv_err set_single(jv_audit *dst, const jv_audit_entry *e)
{
    jv_audit tmp;
    jv_audit_init(&tmp);
    jv_err err = reserve(&tmp, 1);
    if (err == JV_OK && (err = entry_copy(&tmp.e[0], e)) == JV_OK)
        tmp.n = 1;
    if (err) {
        jv_audit_fini(&tmp);
        return err;
    }
    jv_audit_fini(dst);
    *dst = tmp;
    return JV_OK;
}

jv_err jv_audit_append(jv_audit *s, const jv_dot *id, uint64_t time_ms,
                       jv_str actor, jv_str action, jv_str target,
                       jv_str detail, jv_audit *delta)
{
    texts t = {{actor, action, target, detail}};
    if (id->n == 0 || !texts_ok(&t))
        return JV_EINVAL;
    size_t i = find(s, id);
    if (i < s->n && jv_dot_cmp(&s->e[i].id, id) == 0)
        return set_single(delta, &s->e[i]);

    jv_audit_entry e;
    jv_err err;
    if ((err = entry_make(&e, id, time_ms, &t)))
        return err;
    if ((err = reserve(s, s->n + 1)) || (err = set_single(delta, &e))) {
        entry_free(&e);
        return err;
    }
    memmove(s->e + i + 1, s->e + i, (s->n - i) * sizeof(*s->e));
    s->e[i] = e;
    s->n++;
    return JV_OK;
}

const jv_audit_entry *jv_audit_find(const jv_audit *s, const jv_dot *id)
{
    size_t i = find(s, id);
    if (i < s->n && jv_dot_cmp(&s->e[i].id, id) == 0)
        return &s->e[i];
    return NULL;
}

/* Whether src's entry e goes into dst: its id is new there, or dst holds
 * other content for it that orders after e's (see audit.h). */
static bool takes(const jv_audit *dst, size_t *pos, const jv_audit_entry *e)
{
    *pos = jv__lower_bound(dst->e, dst->n, sizeof(*dst->e), *pos, &e->id,
                           dot_vs_entry);
    if (*pos == dst->n || jv_dot_cmp(&dst->e[*pos].id, &e->id) != 0)
        return true;
    return content_cmp(e, &dst->e[*pos]) < 0;
}

jv_err jv_audit_join(jv_audit *dst, const jv_audit *src)
{
    jv_audit_entry *copies = NULL;
    size_t ncopies = 0, want = 0, added = 0, pos = 0;
    jv_err err = JV_OK;

    for (size_t j = 0; j < src->n; j++) {
        if (takes(dst, &pos, &src->e[j])) {
            want++;
            if (pos == dst->n || jv_dot_cmp(&dst->e[pos].id, &src->e[j].id))
                added++;
        }
    }
    if (want == 0)
        return JV_OK;

    /* Copy everything dst takes, and make room, before touching dst. */
    copies = jv_malloc(want * sizeof(*copies));
    if (!copies) {
        err = JV_ENOMEM;
        goto fail;
    }
    pos = 0;
    for (size_t j = 0; j < src->n; j++) {
        if (!takes(dst, &pos, &src->e[j]))
            continue;
        if ((err = entry_copy(&copies[ncopies], &src->e[j])))
            goto fail;
        ncopies++;
    }
    if ((err = reserve(dst, dst->n + added)))
        goto fail;

    /* Merge from the back; copies are sorted by id like dst. */
    size_t i = dst->n, k = dst->n + added, t = ncopies;
    while (t > 0) {
        int c = i > 0 ? jv_dot_cmp(&dst->e[i - 1].id, &copies[t - 1].id) : -1;
        if (c > 0) {
            dst->e[--k] = dst->e[--i];
        } else {
            if (c == 0)
                entry_free(&dst->e[--i]);
            dst->e[--k] = copies[--t];
        }
    }
    dst->n += added;
    jv_free(copies);
    return JV_OK;
fail:
    for (size_t j = 0; j < ncopies; j++)
        entry_free(&copies[j]);
    jv_free(copies);
    return err;
}

bool jv_audit_equal(const jv_audit *a, const jv_audit *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (jv_dot_cmp(&a->e[i].id, &b->e[i].id) != 0 ||
            content_cmp(&a->e[i], &b->e[i]) != 0)
            return false;
    return true;
}

jv_err jv_audit_encode(const jv_audit *s, jv_buf *out)
{
    size_t mark;
    jv_mpw w;
    jv_err err = jv__enc_begin(out, &mark);
    if (err)
        return err;
    /* Never write what our own decoder would refuse. */
    if (s->n > JV_AUDIT_MAX_ENTRIES)
        return JV_ETOOBIG;
    jv_mpw_init(&w, out);
    jv_mpw_array(&w, (uint32_t)s->n);
    for (size_t i = 0; i < s->n; i++) {
        const jv_audit_entry *e = &s->e[i];
        texts t = entry_texts(e);
        jv_mpw_array(&w, 7);
        jv_mpw_id(&w, &e->id.id);
        jv_mpw_u64(&w, e->id.n);
        jv_mpw_u64(&w, e->time_ms);
        for (int f = 0; f < 4; f++)
            jv_mpw_jstr(&w, t.t[f]);
    }
    return jv__enc_end(out, mark, JV_OK);
}

static jv_err read_entry(jv_mpr *r, jv_audit_entry *e)
{
    static const size_t max[4] = {JV_AUDIT_MAX_ACTOR, JV_AUDIT_MAX_ACTION,
                                  JV_AUDIT_MAX_TARGET, JV_AUDIT_MAX_DETAIL};
    jv_dot id;
    uint64_t time_ms;
    texts t;
    jv_err err;
    if ((err = jv_mpr_array_n(r, 7)) || (err = jv_mpr_id(r, &id.id)) ||
        (err = jv_mpr_u64(r, &id.n)) || (err = jv_mpr_u64(r, &time_ms)))
        return err;
    for (int f = 0; f < 4; f++)
        if ((err = jv_mpr_str(r, &t.t[f], max[f])))
            return err;
    if (id.n == 0 || !texts_ok(&t))
        return JV_EDECODE;
    return entry_make(e, &id, time_ms, &t);
}

jv_err jv_audit_decode(const void *p, size_t n, jv_audit *out)
{
    jv_mpr r;
    jv_audit tmp;
    uint32_t count;
    jv_err err;
    jv_audit_init(&tmp);
    jv_mpr_init(&r, p, n);
    if ((err = jv__mpr_count(&r, &count, JV_AUDIT_MAX_ENTRIES,
                             ENTRY_MIN_BYTES)) ||
        (err = reserve(&tmp, count)))
        goto fail;
    for (uint32_t i = 0; i < count; i++) {
        if ((err = read_entry(&r, &tmp.e[i])))
            goto fail;
        tmp.n++;
        if (i && jv_dot_cmp(&tmp.e[i - 1].id, &tmp.e[i].id) >= 0) {
            err = JV_ENONCANON;
            goto fail;
        }
    }
    if ((err = jv_mpr_end(&r)))
        goto fail;
    jv_audit_fini(out);
    *out = tmp;
    return JV_OK;
fail:
    jv_audit_fini(&tmp);
    return err;
}
