#include "simcheck.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "backup.h"
#include "model.h"
#include "query.h"
#include "sim_int.h"
#include "snapshot.h"

void jv__simcheck_acked(jv_sim *w, unsigned idx, uint64_t seq)
{
    if (seq > w->acked[idx])
        w->acked[idx] = seq;
}

/* -- lag: commit on the origin to apply on each node ------------------------
 */

typedef struct {
    uint64_t last_seq, at_us;
} commit_at;

void jv__simcheck_committed(jv_sim *w, unsigned idx, uint64_t last_seq)
{
    simnode *n = &w->nodes[idx];
    if (n->ncommits == n->commitcap) {
        size_t cap = n->commitcap ? n->commitcap * 2 : 64;
        commit_at *c = jv_reallocarray(n->commits, cap, sizeof(commit_at));
        if (!c)
            abort(); /* the simulator has no way to go on */
        n->commits = c;
        n->commitcap = cap;
    }
    commit_at *c = n->commits;
    c[n->ncommits++] = (commit_at){last_seq, w->q.now_us};
}

int jv__simcheck_cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, sizeof(jv_id));
}

void jv__simcheck_applied(jv_sim *w, const jv_id *origin, uint64_t last_seq)
{
    const jv_sim_key *k =
        bsearch(origin, w->byid, w->cap, sizeof(*k), jv__simcheck_cmp_id);
    if (!k)
        return;
    simnode *n = &w->nodes[k->idx];
    const commit_at *c = n->commits;
    size_t lo = 0, hi = n->ncommits;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c[mid].last_seq < last_seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == n->ncommits || c[lo].last_seq != last_seq)
        return; /* the founding batch */
    uint64_t ms = (w->q.now_us - c[lo].at_us) / 1000;
    w->lag[ms < JV_SIM_LAG_BUCKETS ? ms : JV_SIM_LAG_BUCKETS - 1]++;
    w->s.lag_samples++;
    if (ms > w->s.lag_max_ms)
        w->s.lag_max_ms = ms;
}

uint64_t jv__simcheck_lag(const jv_sim *w, double p)
{
    if (!w->lag || !w->s.lag_samples)
        return 0;
    uint64_t want = (uint64_t)((double)w->s.lag_samples * p), seen = 0;
    for (size_t i = 0; i < JV_SIM_LAG_BUCKETS; i++)
        if ((seen += w->lag[i]) > want)
            return i;
    return JV_SIM_LAG_BUCKETS;
}

/* Origins whose batches n lacks (against node 0 or the best holder). */
static void lacks(jv_sim *w, simnode *n, size_t *at)
{
    jv_vv mine, best;
    jv_vv_init(&mine);
    jv_vv_init(&best);
    if (jv_store_vv(n->st, &mine))
        goto out;
    for (size_t i = 0; i < w->n; i++) {
        jv_vv v;
        jv_vv_init(&v);
        if (&w->nodes[i] != n && !jv_store_vv(w->nodes[i].st, &v))
            jv_vv_merge(&best, &v);
        jv_vv_fini(&v);
    }
    *at += (size_t)snprintf(w->why + *at, sizeof(w->why) - *at, "; it lacks");
    for (size_t k = 0; k < w->cap && *at < sizeof(w->why); k++) {
        uint64_t h = jv_vv_get(&mine, &w->keys[k].pk),
                 b = jv_vv_get(&best, &w->keys[k].pk);
        if (b > h)
            *at += (size_t)snprintf(w->why + *at, sizeof(w->why) - *at,
                                    " node %zu's %" PRIu64 "..%" PRIu64, k,
                                    h + 1, b);
    }
out:
    jv_vv_fini(&mine);
    jv_vv_fini(&best);
}

const char *jv__simcheck_behind(jv_sim *w)
{
    size_t at = 0, shown = 0, behind = 0;
    w->why[0] = 0;
    for (size_t i = 0; i < w->n; i++) {
        simnode *n = &w->nodes[i];
        if (n->up && n->batches == w->s.batches)
            continue;
        behind++;
        if (shown < 4 && at < sizeof(w->why)) {
            at += (size_t)snprintf(w->why + at, sizeof(w->why) - at,
                                   "%snode %zu holds %" PRIu64 " of %" PRIu64
                                   " batches%s",
                                   shown ? ", " : "", i, n->batches,
                                   w->s.batches, n->up ? "" : " (down)");
            shown++;
        }
    }
    if (behind > shown && at < sizeof(w->why))
        at += (size_t)snprintf(w->why + at, sizeof(w->why) - at,
                               " and %zu more", behind - shown);
    for (size_t i = 0; i < w->n && at < sizeof(w->why); i++) {
        jv_store_stats st;
        simnode *n = &w->nodes[i];
        if (n->batches != w->s.batches && !jv_store_stats_get(n->st, &st)) {
            at += (size_t)snprintf(
                w->why + at, sizeof(w->why) - at,
                "; node %zu holds %" PRIu64 " aside; its peers:", i, st.held);
            for (size_t k = 0; k < n->npeers && at < sizeof(w->why); k++)
                at += (size_t)snprintf(w->why + at, sizeof(w->why) - at, " %u",
                                       n->peers[k]);
            lacks(w, n, &at);
            break;
        }
    }
    return w->why;
}

static jv_err state_digest(simnode *n, uint8_t out[32])
{
    jv_buf b;
    jv_buf_init(&b);
    jv_err err = jv_snap_encode(n->st, &b);
    if (!err)
        crypto_generichash(out, 32, b.data, b.len, NULL, 0);
    jv_buf_fini(&b);
    return err;
}

/* Every node holds what node 0 holds, and that covers every
 * acknowledged write. */
static jv_err check_vectors(jv_sim *w, char *msg, size_t msglen)
{
    jv_vv v0, v;
    jv_err err = JV_OK;
    jv_vv_init(&v0);
    jv_vv_init(&v);
    if (jv_store_vv(w->nodes[0].st, &v0)) {
        snprintf(msg, msglen, "cannot read node 0's vector");
        err = JV_ESTORAGE;
    }
    for (size_t i = 0; !err && i < w->cap; i++) {
        uint64_t have = jv_vv_get(&v0, &w->keys[i].pk);
        if (w->acked[i] > have) {
            snprintf(msg, msglen,
                     "acknowledged write lost: node %zu acknowledged "
                     "sequence %" PRIu64 ", node 0 holds %" PRIu64,
                     i, w->acked[i], have);
            err = JV_ESTATE;
        }
    }
    for (size_t i = 1; !err && i < w->n; i++) {
        if (jv_store_vv(w->nodes[i].st, &v)) {
            snprintf(msg, msglen, "cannot read node %zu's vector", i);
            err = JV_ESTORAGE;
        } else if (!jv_vv_equal(&v, &v0)) {
            snprintf(msg, msglen, "node %zu's vector differs from node 0's", i);
            err = JV_ESTATE;
        }
    }
    jv_vv_fini(&v0);
    jv_vv_fini(&v);
    return err;
}

static jv_err check_node(jv_sim *w, size_t i, char *msg, size_t msglen)
{
    jv_verify_report r;
    jv_err err = jv_store_verify(w->nodes[i].st, &r);
    if (err) {
        snprintf(msg, msglen, "node %zu: cannot verify: %s", i,
                 jv_strerror(err));
        return err;
    }
    if (!jv_verify_ok(&r)) {
        snprintf(msg, msglen,
                 "node %zu does not verify: %" PRIu64
                 " bad signatures, %" PRIu64
                 " broken links, vector %s, state %s %s",
                 i, r.bad_signatures, r.bad_links, r.vv_matches ? "ok" : "off",
                 r.state_matches ? "ok" : "off", r.state_msg);
        return JV_ESTATE;
    }
    if ((err = jv_store_model_check(w->nodes[i].st, msg, msglen))) {
        char why[256];
        snprintf(why, sizeof(why), "%s", msg);
        snprintf(msg, msglen, "node %zu against the crdt/ models: %s", i, why);
    }
    return err;
}

jv_err jv__simcheck_end(jv_sim *w, char *msg, size_t msglen)
{
    uint8_t d0[32], d[32];
    if (w->broken[0]) {
        snprintf(msg, msglen, "%s", w->broken);
        return JV_ESTATE;
    }
    jv_err err = check_vectors(w, msg, msglen);
    if (err)
        return err;
    if ((err = state_digest(&w->nodes[0], d0))) {
        snprintf(msg, msglen, "cannot encode node 0's state");
        return err;
    }
    memcpy(w->s.digest, d0, sizeof(d0));
    for (size_t i = 1; i < w->n; i++) {
        if ((err = state_digest(&w->nodes[i], d))) {
            snprintf(msg, msglen, "cannot encode node %zu's state", i);
            return err;
        }
        if (memcmp(d, d0, sizeof(d))) {
            snprintf(msg, msglen,
                     "node %zu's state differs from node 0's (same vector)", i);
            return JV_ESTATE;
        }
    }
    /* The states are one: a full check of two nodes says it of all (and
     * of every node when there are few). */
    for (size_t i = 0; w->o.verify && i<w->n; i += w->n> 16 ? w->n - 1 : 1)
        if ((err = check_node(w, i, msg, msglen)))
            return err;
    return JV_OK;
}
