#include "auth.h"

#include <sodium.h>
#include <string.h>

#include "alloc.h"
#include "datadir.h"
#include "local.h"
#include "query.h"

typedef struct {
    char id[24];
    char name[72];
    jv_role role;
    uint8_t hash[32];
    bool revoked;
    bool cluster;
    double tokens;
    uint64_t refill_ms;
} key_ent;

typedef struct {
    char id[24];
    char key_id[24];
    jv_role role;
    uint8_t hash[32];
    uint64_t expires_ms;
    bool revoked;
} sess_ent;

/* Open-addressing map from id to entry; ids are random, so a plain
 * string hash spreads them well. Deleted slots keep a tombstone. */
typedef struct {
    void **slot;
    size_t cap, used, live;
} idmap;

#define TOMB ((void *)1)

struct jv_auth {
    idmap keys, sessions;
    double rate, burst;
};

static uint64_t hash_id(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
    return h;
}

/* Both entry types start with their id. */
static const char *ent_id(void *e)
{
    return (const char *)e;
}

static void *map_get(const idmap *m, const char *id)
{
    if (!m->cap)
        return NULL;
    for (size_t i = (size_t)hash_id(id) & (m->cap - 1), n = 0; n < m->cap;
         i = (i + 1) & (m->cap - 1), n++) {
        void *e = m->slot[i];
        if (!e)
            return NULL;
        if (e != TOMB && strcmp(ent_id(e), id) == 0)
            return e;
    }
    return NULL;
}

static jv_err map_put(idmap *m, void *ent);

static jv_err map_rehash(idmap *m, size_t cap)
{
    idmap n = {jv_calloc(cap, sizeof(void *)), cap, 0, 0};
    if (!n.slot)
        return JV_ENOMEM;
    for (size_t i = 0; i < m->cap; i++)
        if (m->slot[i] && m->slot[i] != TOMB)
            map_put(&n, m->slot[i]);
    jv_free(m->slot);
    *m = n;
    return JV_OK;
}

static jv_err map_put(idmap *m, void *ent)
{
    if ((m->used + 1) * 4 >= m->cap * 3) {
        size_t cap = m->cap ? m->cap : 64;
        while ((m->live + 1) * 2 >= cap)
            cap *= 2;
        jv_err err = map_rehash(m, cap);
        if (err)
            return err;
    }
    size_t i = (size_t)hash_id(ent_id(ent)) & (m->cap - 1);
    while (m->slot[i] && m->slot[i] != TOMB)
        i = (i + 1) & (m->cap - 1);
    if (!m->slot[i])
        m->used++;
    m->slot[i] = ent;
    m->live++;
    return JV_OK;
}

static void map_fini(idmap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->slot[i] && m->slot[i] != TOMB)
            jv_free(m->slot[i]);
    jv_free(m->slot);
    memset(m, 0, sizeof(*m));
}

const char *jv_role_name(jv_role r)
{
    switch (r) {
    case JV_ROLE_READER:
        return "reader";
    case JV_ROLE_WRITER:
        return "writer";
    case JV_ROLE_ADMIN:
        return "admin";
    default:
        return "none";
    }
}

jv_err jv_role_parse(jv_str s, jv_role *out)
{
    for (jv_role r = JV_ROLE_READER; r <= JV_ROLE_ADMIN; r++) {
        if (jv_str_eq(s, jv_str_c(jv_role_name(r)))) {
            *out = r;
            return JV_OK;
        }
    }
    return JV_EINVAL;
}

jv_auth *jv_auth_new(uint64_t rate, uint64_t burst)
{
    jv_auth *a = jv_calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->rate = (double)rate;
    a->burst = (double)(burst ? burst : rate);
    return a;
}

void jv_auth_free(jv_auth *a)
{
    if (!a)
        return;
    map_fini(&a->keys);
    map_fini(&a->sessions);
    jv_free(a);
}

static void copy_str(char *dst, size_t cap, jv_str s)
{
    size_t n = s.n < cap - 1 ? s.n : cap - 1;
    memcpy(dst, s.p, n);
    dst[n] = '\0';
}

static jv_err load_key(void *arg, const jv_key_row *k)
{
    jv_role role;
    char id[24], name[72];
    if (jv_role_parse(k->role, &role) != JV_OK)
        return JV_OK; /* a row we cannot use grants nothing */
    copy_str(id, sizeof(id), k->id);
    copy_str(name, sizeof(name), k->name);
    return jv_auth_key_put(arg, id, name, role, k->hash, k->revoked_ms != 0);
}

static jv_err load_session(void *arg, const jv_session_row *s)
{
    jv_role role;
    char id[24], key_id[24];
    if (jv_role_parse(s->role, &role) != JV_OK)
        return JV_OK;
    copy_str(id, sizeof(id), s->id);
    copy_str(key_id, sizeof(key_id), s->key_id);
    return jv_auth_session_put(arg, id, key_id, role, s->token_hash,
                               s->expires_ms);
}

/* The cluster keys as read: copies, so that a thread of the store's can
 * read them and the loop take them later. */
typedef struct {
    char id[24], name[72];
    jv_role role;
    uint8_t hash[32];
    bool revoked;
} ckey_copy;

struct jv_auth_ckeys {
    size_t n, cap;
    ckey_copy *v;
};

static jv_err copy_ckey(void *arg, const jv_ckey_row *k)
{
    jv_auth_ckeys *ks = arg;
    jv_role role;
    if (k->id.n >= sizeof(ks->v->id) || jv_role_parse(k->role, &role) != JV_OK)
        return JV_OK; /* not an id or role we hand out: grants nothing */
    if (ks->n == ks->cap) {
        size_t cap = ks->cap ? 2 * ks->cap : 16;
        ckey_copy *v = jv_reallocarray(ks->v, cap, sizeof(*v));
        if (!v)
            return JV_ENOMEM;
        ks->v = v;
        ks->cap = cap;
    }
    ckey_copy *c = &ks->v[ks->n++];
    copy_str(c->id, sizeof(c->id), k->id);
    copy_str(c->name, sizeof(c->name), k->name);
    c->role = role;
    memcpy(c->hash, k->hash, sizeof(c->hash));
    c->revoked = k->revoked;
    return JV_OK;
}

jv_err jv_auth_ckeys_read(jv_store *st, jv_auth_ckeys **out)
{
    jv_auth_ckeys *ks = jv_calloc(1, sizeof(*ks));
    if (!ks)
        return JV_ENOMEM;
    jv_err err = jv_store_ckey_list(st, copy_ckey, ks);
    if (err) {
        jv_auth_ckeys_free(ks);
        return err;
    }
    *out = ks;
    return JV_OK;
}

jv_err jv_auth_ckeys_take(jv_auth *a, const jv_auth_ckeys *ks)
{
    for (size_t i = 0; i < ks->n; i++) {
        const ckey_copy *c = &ks->v[i];
        jv_err err =
            jv_auth_ckey_put(a, c->id, c->name, c->role, c->hash, c->revoked);
        if (err)
            return err;
        if (c->revoked)
            jv_auth_key_revoke(a, c->id); /* and its sessions */
    }
    return JV_OK;
}

void jv_auth_ckeys_free(jv_auth_ckeys *ks)
{
    if (!ks)
        return;
    jv_free(ks->v);
    jv_free(ks);
}

jv_err jv_auth_load(jv_auth *a, jv_store *st, uint64_t now_ms)
{
    jv_auth_ckeys *ks = NULL;
    jv_err err = jv_store_key_list(st, load_key, a);
    if (!err)
        err = jv_auth_ckeys_read(st, &ks);
    if (!err)
        err = jv_auth_ckeys_take(a, ks);
    jv_auth_ckeys_free(ks);
    if (err)
        return err;
    return jv_store_session_list(st, now_ms, load_session, a);
}

static void fill_key(jv_principal *p, const key_ent *k)
{
    p->role = k->role;
    p->cluster = k->cluster;
    memcpy(p->key_id, k->id, sizeof(p->key_id));
    memcpy(p->key_name, k->name, sizeof(p->key_name));
}

static jv_err check_credential(jv_auth *a, jv_str cred, uint64_t now_ms,
                               bool allow_session, jv_principal *out)
{
    char kind, id[24];
    uint8_t hash[32];
    jv_principal p;
    memset(&p, 0, sizeof(p));
    if (jv_api_secret_parse(cred, &kind, id, hash) != JV_OK)
        return JV_EAUTH;
    if (kind == 'k') {
        key_ent *k = map_get(&a->keys, id);
        if (!k || sodium_memcmp(k->hash, hash, 32) != 0 || k->revoked)
            return JV_EAUTH;
        fill_key(&p, k);
    } else {
        sess_ent *s = allow_session ? map_get(&a->sessions, id) : NULL;
        if (!s || sodium_memcmp(s->hash, hash, 32) != 0 || s->revoked ||
            s->expires_ms <= now_ms)
            return JV_EAUTH;
        key_ent *k = map_get(&a->keys, s->key_id);
        if (!k || k->revoked)
            return JV_EAUTH;
        fill_key(&p, k);
        p.role = s->role < k->role ? s->role : k->role;
        p.is_session = true;
        memcpy(p.session_id, s->id, sizeof(p.session_id));
    }
    *out = p;
    return JV_OK;
}

jv_err jv_auth_check(jv_auth *a, jv_str header, uint64_t now_ms,
                     jv_principal *out)
{
    static const char bearer[] = "Bearer ";
    size_t bl = sizeof(bearer) - 1;
    if (header.n <= bl || strncasecmp(header.p, bearer, bl) != 0)
        return JV_EAUTH;
    jv_str cred = {header.p + bl, header.n - bl};
    while (cred.n && cred.p[0] == ' ')
        cred.p++, cred.n--;
    while (cred.n && cred.p[cred.n - 1] == ' ')
        cred.n--;
    return check_credential(a, cred, now_ms, true, out);
}

jv_err jv_auth_check_key(jv_auth *a, jv_str key, jv_principal *out)
{
    return check_credential(a, key, 0, false, out);
}

jv_err jv_auth_rate(jv_auth *a, const char *key_id, uint64_t now_ms,
                    uint64_t *retry_ms)
{
    if (a->rate <= 0)
        return JV_OK;
    key_ent *k = map_get(&a->keys, key_id);
    if (!k)
        return JV_OK;
    if (now_ms > k->refill_ms) {
        k->tokens += (double)(now_ms - k->refill_ms) * a->rate / 1000.0;
        if (k->tokens > a->burst)
            k->tokens = a->burst;
        k->refill_ms = now_ms;
    } else if (now_ms < k->refill_ms) {
        /* The wall clock was set back (a clock that ran fast set right):
         * refill from the new time on, or the bucket would stay empty
         * until the clock passed the old time again. */
        k->refill_ms = now_ms;
    }
    if (k->tokens >= 1.0) {
        k->tokens -= 1.0;
        return JV_OK;
    }
    if (retry_ms)
        *retry_ms = (uint64_t)((1.0 - k->tokens) * 1000.0 / a->rate) + 1;
    return JV_ELIMIT;
}

static jv_err key_put(jv_auth *a, const char *id, const char *name,
                      jv_role role, const uint8_t hash[32], bool revoked,
                      bool cluster)
{
    key_ent *k = map_get(&a->keys, id);
    bool fresh = !k;
    if (k && cluster && !k->cluster)
        return JV_OK; /* the id is a local key's */
    if (k && cluster && k->revoked)
        return JV_OK; /* remove-wins */
    if (fresh) {
        k = jv_calloc(1, sizeof(*k));
        if (!k)
            return JV_ENOMEM;
        snprintf(k->id, sizeof(k->id), "%s", id);
        k->tokens = a->burst;
    }
    snprintf(k->name, sizeof(k->name), "%s", name);
    k->role = role;
    memcpy(k->hash, hash, 32);
    k->revoked = revoked;
    k->cluster = cluster;
    if (fresh) {
        jv_err err = map_put(&a->keys, k);
        if (err) {
            jv_free(k);
            return err;
        }
    }
    return JV_OK;
}

jv_err jv_auth_key_put(jv_auth *a, const char *id, const char *name,
                       jv_role role, const uint8_t hash[32], bool revoked)
{
    return key_put(a, id, name, role, hash, revoked, false);
}

jv_err jv_auth_ckey_put(jv_auth *a, const char *id, const char *name,
                        jv_role role, const uint8_t hash[32], bool revoked)
{
    return key_put(a, id, name, role, hash, revoked, true);
}

bool jv_auth_key_known(const jv_auth *a, const char *id, bool *cluster)
{
    key_ent *k = map_get(&a->keys, id);
    if (cluster)
        *cluster = k && k->cluster;
    return k != NULL;
}

bool jv_auth_ckey_named(const jv_auth *a, const char *name)
{
    for (size_t i = 0; i < a->keys.cap; i++) {
        key_ent *k = a->keys.slot[i];
        if (k && (void *)k != TOMB && k->cluster && !k->revoked &&
            strcmp(k->name, name) == 0)
            return true;
    }
    return false;
}

bool jv_auth_key_exists(const jv_auth *a, const char *id)
{
    key_ent *k = map_get(&a->keys, id);
    return k && !k->revoked;
}

const char *jv_auth_key_name(const jv_auth *a, const char *id)
{
    key_ent *k = map_get(&a->keys, id);
    return k ? k->name : NULL;
}

void jv_auth_key_revoke(jv_auth *a, const char *id)
{
    key_ent *k = map_get(&a->keys, id);
    if (k)
        k->revoked = true;
    for (size_t i = 0; i < a->sessions.cap; i++) {
        sess_ent *s = a->sessions.slot[i];
        if (s && (void *)s != TOMB && strcmp(s->key_id, id) == 0)
            s->revoked = true;
    }
}

jv_err jv_auth_session_put(jv_auth *a, const char *id, const char *key_id,
                           jv_role role, const uint8_t hash[32],
                           uint64_t expires_ms)
{
    sess_ent *s = map_get(&a->sessions, id);
    bool fresh = !s;
    if (fresh) {
        s = jv_calloc(1, sizeof(*s));
        if (!s)
            return JV_ENOMEM;
        snprintf(s->id, sizeof(s->id), "%s", id);
    }
    snprintf(s->key_id, sizeof(s->key_id), "%s", key_id);
    s->role = role;
    memcpy(s->hash, hash, 32);
    s->expires_ms = expires_ms;
    if (fresh) {
        jv_err err = map_put(&a->sessions, s);
        if (err) {
            jv_free(s);
            return err;
        }
    }
    return JV_OK;
}

bool jv_auth_session_exists(const jv_auth *a, const char *id, uint64_t now_ms)
{
    sess_ent *s = map_get(&a->sessions, id);
    return s && !s->revoked && s->expires_ms > now_ms;
}

void jv_auth_session_revoke(jv_auth *a, const char *id)
{
    sess_ent *s = map_get(&a->sessions, id);
    if (s)
        s->revoked = true;
}

size_t jv_auth_sweep(jv_auth *a, uint64_t now_ms)
{
    for (size_t i = 0; i < a->sessions.cap; i++) {
        sess_ent *s = a->sessions.slot[i];
        if (!s || (void *)s == TOMB)
            continue;
        if (s->revoked || s->expires_ms <= now_ms) {
            jv_free(s);
            a->sessions.slot[i] = TOMB;
            a->sessions.live--;
        }
    }
    /* Many tombstones slow lookups; rebuild when they dominate. */
    if (a->sessions.used > 2 * a->sessions.live + 64)
        map_rehash(&a->sessions, a->sessions.cap);
    return a->sessions.live;
}

void jv_auth_set_rate(jv_auth *a, uint64_t rate, uint64_t burst)
{
    a->rate = (double)rate;
    a->burst = (double)(burst ? burst : rate);
    /* A smaller bucket applies at once: no key keeps more than it holds. */
    for (size_t i = 0; i < a->keys.cap; i++) {
        key_ent *k = a->keys.slot[i];
        if (k && (void *)k != TOMB && k->tokens > a->burst)
            k->tokens = a->burst;
    }
}
