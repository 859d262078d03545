/*
 * rcache.c - the read cache (contract in rcache.h).
 *
 * Entries carry the version of their kind they were read at;
 * jv_rcache_moved() bumps versions, so moving is O(1) and an out-of-date
 * entry is only found stale when looked up, replaced, or dropped to make
 * room.
 */
#include "rcache.h"

#include <sodium.h>
#include <string.h>

#include "alloc.h"

/* A slot for every so many bytes of budget: answers are a few hundred. */
#define BYTES_PER_SLOT 256
#define MIN_SLOTS      16
#define MAX_SLOTS      (1u << 20)
/* No single answer takes more than this share of the budget, nor more
 * than MAX_ENTRY: a huge archive value is read from the database. */
#define ENTRY_SHARE 16
#define MAX_ENTRY   (64u * 1024)

typedef struct {
    uint64_t ver;
    size_t size; /* what it counts against the budget */
    size_t keylen, len;
    uint8_t kind;
    unsigned char data[]; /* key, then answer */
} entry;

struct jv_rcache {
    entry **slots;
    size_t nslots; /* a power of two; 0 when off */
    size_t hand;   /* the next slot dropped to make room */
    uint64_t budget, max_entry;
    uint64_t ver[JV_RC_KINDS]; /* from 1: a ticket of 0 is none */
    unsigned char hkey[crypto_shorthash_KEYBYTES];
    jv_rcache_quiet_fn quiet;
    void *arg;
    jv_rcache_stats stats;
};

static void drop(jv_rcache *rc, size_t i)
{
    entry *e = rc->slots[i];
    if (!e)
        return;
    rc->stats.bytes -= e->size;
    rc->stats.entries--;
    jv_free(e);
    rc->slots[i] = NULL;
}

static void drop_all(jv_rcache *rc)
{
    for (size_t i = 0; i < rc->nslots; i++)
        drop(rc, i);
    jv_free(rc->slots);
    rc->slots = NULL;
    rc->nslots = 0;
}

jv_err jv_rcache_resize(jv_rcache *rc, uint64_t budget)
{
    drop_all(rc);
    rc->budget = budget;
    rc->hand = 0;
    rc->max_entry = budget / ENTRY_SHARE;
    if (rc->max_entry > MAX_ENTRY)
        rc->max_entry = MAX_ENTRY;
    if (budget == 0)
        return JV_OK;
    size_t want = budget / BYTES_PER_SLOT, n = MIN_SLOTS;
    while (n < want && n < MAX_SLOTS)
        n *= 2;
    if (!(rc->slots = jv_calloc(n, sizeof(*rc->slots)))) {
        rc->budget = 0;
        return JV_ENOMEM;
    }
    rc->nslots = n;
    return JV_OK;
}

jv_err jv_rcache_new(uint64_t budget, jv_rcache_quiet_fn quiet, void *arg,
                     jv_rcache **out)
{
    jv_rcache *rc = jv_calloc(1, sizeof(*rc));
    if (!rc)
        return JV_ENOMEM;
    for (unsigned k = 0; k < JV_RC_KINDS; k++)
        rc->ver[k] = 1;
    rc->quiet = quiet;
    rc->arg = arg;
    crypto_shorthash_keygen(rc->hkey);
    jv_err err = jv_rcache_resize(rc, budget);
    if (err) {
        jv_free(rc);
        return err;
    }
    *out = rc;
    return JV_OK;
}

void jv_rcache_free(jv_rcache *rc)
{
    if (!rc)
        return;
    drop_all(rc);
    sodium_memzero(rc->hkey, sizeof(rc->hkey));
    jv_free(rc);
}

void jv_rcache_moved(jv_rcache *rc, unsigned kinds)
{
    for (unsigned k = 0; k < JV_RC_KINDS; k++)
        if (kinds & (1u << k))
            rc->ver[k]++;
}

/* The slot of (kind, key): one key's kinds land apart. */
static size_t slot_of(const jv_rcache *rc, unsigned kind, jv_str key)
{
    unsigned char h[crypto_shorthash_BYTES];
    uint64_t v;
    crypto_shorthash(h, (const unsigned char *)key.p, key.n, rc->hkey);
    memcpy(&v, h, sizeof(v));
    v ^= kind * UINT64_C(0x9e3779b97f4a7c15);
    return (size_t)(v & (rc->nslots - 1));
}

static bool same_key(const entry *e, unsigned kind, jv_str key)
{
    return e->kind == kind && e->keylen == key.n &&
           (key.n == 0 || memcmp(e->data, key.p, key.n) == 0);
}

bool jv_rcache_get(jv_rcache *rc, unsigned kind, jv_str key, jv_str *text)
{
    if (!rc->nslots || kind >= JV_RC_KINDS)
        return false;
    entry *e = rc->slots[slot_of(rc, kind, key)];
    if (e && e->ver == rc->ver[kind] && same_key(e, kind, key) &&
        rc->quiet(rc->arg, kind)) {
        rc->stats.hits++;
        *text = (jv_str){(const char *)e->data + e->keylen, e->len};
        return true;
    }
    rc->stats.misses++;
    return false;
}

uint64_t jv_rcache_ticket(const jv_rcache *rc, unsigned kind)
{
    return rc->nslots && kind < JV_RC_KINDS && rc->quiet(rc->arg, kind)
               ? rc->ver[kind]
               : 0;
}

void jv_rcache_put(jv_rcache *rc, uint64_t ticket, unsigned kind, jv_str key,
                   const void *text, size_t len)
{
    size_t size = sizeof(entry) + key.n + len;
    if (!ticket || kind >= JV_RC_KINDS || ticket != rc->ver[kind] ||
        !rc->nslots || size > rc->max_entry || !rc->quiet(rc->arg, kind))
        return;
    size_t i = slot_of(rc, kind, key);
    drop(rc, i);
    /* Room, by dropping entries in turn; size <= max_entry <= budget, so
     * one round of the slots always makes enough. */
    while (rc->stats.bytes + size > rc->budget) {
        drop(rc, rc->hand);
        rc->hand = (rc->hand + 1) & (rc->nslots - 1);
    }
    entry *e = jv_malloc(size);
    if (!e)
        return;
    e->ver = ticket;
    e->size = size;
    e->keylen = key.n;
    e->len = len;
    e->kind = (uint8_t)kind;
    if (key.n)
        memcpy(e->data, key.p, key.n);
    if (len)
        memcpy(e->data + key.n, text, len);
    rc->slots[i] = e;
    rc->stats.bytes += size;
    rc->stats.entries++;
}

void jv_rcache_stats_get(const jv_rcache *rc, jv_rcache_stats *out)
{
    *out = rc->stats;
}
