/*
 * api_node.c - the node itself: health, metrics, status, sessions, API
 * keys, export, backup, verify, peers.
 */
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "api_int.h"
#include "backup.h"
#include "datadir.h"
#include "local.h"
#include "rcache.h"
#include "reload.h"
#include "repl.h"
#include "procstat.h"
#include "sealed_backup.h"
#include "watch.h"
#include "wire.h"

/* -- liveness, metrics, health -------------------------------------------- */

/* The store's figures for metrics, health and status, read on a reader
 * thread (api_read); the answer is made on the loop from them. A failed
 * read is itself a figure (health shows it), so the read never fails. */
typedef struct {
    jv_err err;
    char msg[160];
    jv_store_stats st;
    jv_held_counts held; /* batches held aside, by reason (not for status):
                            zero when held_err */
    jv_err held_err;
    bool want_vv, want_held;
    jv_vv vv;
    void (*then)(api_ctx *c);
} store_figures;

static void figures_free(void *arg)
{
    store_figures *f = arg;
    jv_vv_fini(&f->vv);
    jv_free(f);
}

static jv_err figures_read(jv_store *st, api_ctx *c)
{
    store_figures *f = c->extra;
    f->err = jv_store_stats_get(st, &f->st);
    /* Its own error: the counts missing do not make the store unreadable. */
    if (f->want_held && (f->held_err = jv_store_held_counts(st, &f->held)))
        memset(&f->held, 0, sizeof(f->held));
    if (!f->err && f->want_vv)
        f->err = jv_store_vv(st, &f->vv);
    if (f->err)
        snprintf(f->msg, sizeof(f->msg), "%s", jv_store_errmsg(st));
    return JV_OK;
}

static void figures_done(api_ctx *c, jv_err err, const char *msg)
{
    store_figures *f = c->extra;
    (void)err;
    (void)msg;
    f->then(c);
}

/* Reads the figures, then calls then(c) on the loop with c->extra
 * holding them. */
static void with_figures(api_ctx *c, bool want_vv, bool want_held,
                         void (*then)(api_ctx *c))
{
    store_figures *f = jv_calloc(1, sizeof(*f));
    if (!f) {
        api_fail(c, JV_ENOMEM, "figures");
        return;
    }
    jv_vv_init(&f->vv);
    f->want_vv = want_vv;
    f->want_held = want_held;
    f->then = then;
    c->extra = f;
    c->extra_free = figures_free;
    api_read(c, figures_read, figures_done);
}

void api_health_live(api_ctx *c)
{
    if (c->node->stopping)
        api_reply(c, 503, json_pack("{s:s}", "status", "stopping"));
    else
        api_reply(c, 200, json_pack("{s:s}", "status", "ok"));
}

static uint64_t resident_bytes(void)
{
    jv_procstat ps;
    return jv_procstat_get(&ps) == JV_OK ? ps.resident_bytes : 0;
}

/* The process_* family every Prometheus client library exports. */
static void process_metrics(jv_metrics *m)
{
    jv_procstat ps;
    if (jv_procstat_get(&ps))
        return;
    /* A counter only grows: add what the kernel counted since. */
    double shown = jv_metrics_get(m, "process_cpu_seconds_total", NULL);
    if (ps.cpu_seconds > shown)
        jv_metrics_add(m, "process_cpu_seconds_total", NULL,
                       ps.cpu_seconds - shown);
    jv_metrics_set(m, "process_open_fds", NULL, (double)ps.open_fds);
    if (ps.max_fds)
        jv_metrics_set(m, "process_max_fds", NULL, (double)ps.max_fds);
    jv_metrics_set(m, "process_resident_memory_bytes", NULL,
                   (double)ps.resident_bytes);
    jv_metrics_set(m, "process_virtual_memory_bytes", NULL,
                   (double)ps.virtual_bytes);
    jv_metrics_set(m, "process_start_time_seconds", NULL, ps.start_time);
    jv_metrics_set(m, "jarvis_resident_bytes", NULL, (double)ps.resident_bytes);
}

/* The counter families kept as running counts by their modules: what
 * each count gained since the last scrape. */
static void counts_metrics(jv_node *n)
{
    static const char closed[] = "jarvis_api_connections_closed_total",
                      lookups[] = "jarvis_read_cache_lookups_total";
    static jv_http_stats hs0; /* loop thread: the counts at the last scrape */
    static jv_rcache_stats cs0;
    jv_http_stats hs;
    jv_rcache_stats cs;
    jv_http_stats_get(n->http, &hs);
    jv_rcache_stats_get(n->rcache, &cs);
    const struct {
        const char *name, *labels;
        uint64_t now, was;
    } d[] = {
        {closed, "reason=\"evicted\"", hs.evicted, hs0.evicted},
        {closed, "reason=\"refused\"", hs.refused, hs0.refused},
        {closed, "reason=\"timeout\"", hs.timed_out, hs0.timed_out},
        {lookups, "result=\"hit\"", cs.hits, cs0.hits},
        {lookups, "result=\"miss\"", cs.misses, cs0.misses},
    };
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++)
        jv_metrics_add(n->metrics, d[i].name, d[i].labels,
                       (double)(d[i].now - d[i].was));
    hs0 = hs;
    cs0 = cs;
    jv_metrics_set(n->metrics, "jarvis_read_cache_bytes", NULL,
                   (double)cs.bytes);
}

static void metrics_answer(api_ctx *c)
{
    jv_node *n = c->node;
    store_figures *f = c->extra;
    jv_store_stats st = f->st;
    if (f->err == JV_OK) {
        jv_metrics_set(n->metrics, "jarvis_database_bytes", NULL,
                       (double)(st.file_bytes + st.wal_bytes));
        jv_metrics_set(n->metrics, "jarvis_log_batches", NULL,
                       (double)st.batches);
        jv_metrics_set(n->metrics, "jarvis_held_batches", NULL,
                       (double)st.held);
    }
    jv_metrics_set(n->metrics, "jarvis_sessions", NULL,
                   (double)jv_auth_sweep(n->auth, jv_now_ms()));
    process_metrics(n->metrics);
    jv_metrics_set(n->metrics, "jarvis_api_connections", NULL,
                   (double)jv_http_conns(n->http));
    counts_metrics(n);
    jv_metrics_set(n->metrics, "jarvis_uptime_seconds", NULL,
                   (double)(jv_now_ms() - n->started_ms) / 1000.0);
    jv_repl_update_metrics(n->repl, f->held_err ? NULL : &f->held);
    jv_buf out;
    jv_buf_init(&out);
    jv_err err = jv_metrics_render(n->metrics, &out);
    if (err) {
        jv_buf_fini(&out);
        api_fail(c, err, "metrics");
        return;
    }
    api_reply_raw(c, 200, "text/plain; version=0.0.4; charset=utf-8", NULL,
                  out.data, out.len);
    jv_buf_fini(&out);
}

static json_t *component(int score, const char *reason)
{
    const char *status = score >= 80   ? "ok"
                         : score >= 40 ? "degraded"
                                       : "unhealthy";
    return json_pack("{s:s,s:i,s:s}", "status", status, "score", score,
                     "reason", reason);
}

#define JV_ISOLATED_UNHEALTHY_MS (5 * 60 * 1000)

/* The clock against the peers', and batches held for their stamp (held
 * NULL: the counts could not be read). */
static int clock_health(jv_node *n, const jv_held_counts *held, char *why,
                        size_t whylen)
{
    jv_repl_clock ck;
    jv_held_counts none = {0};
    const jv_held_counts *c = held ? held : &none;
    uint64_t gap = c->gap, untrusted = c->untrusted, skew = c->clock_skew;
    int score = 100;
    jv_repl_clock_get(n->repl, &ck);
    if (!ck.peers)
        snprintf(why, whylen, "not measured yet (no peer answered)");
    else
        snprintf(why, whylen,
                 "%+" PRId64 " ms off the median of %zu peers (next stamp "
                 "%+" PRId64 " ms, bound %" PRIu64 " ms)%s",
                 ck.offset_ms, ck.peers, ck.ahead_ms, n->cfg->max_skew_ms,
                 ck.skewed ? ": clock_skew, local writes refused until the "
                             "clock is set right"
                           : "");
    if (ck.skewed)
        score = 50;
    size_t len = strlen(why);
    if (skew) {
        snprintf(why + len, whylen - len,
                 "; %" PRIu64 " batches held for a stamp beyond the bound "
                 "(applied once within it)",
                 skew);
        score = score < 70 ? score : 70;
    }
    len = strlen(why);
    if (gap || untrusted)
        snprintf(why + len, whylen - len,
                 "; held: %" PRIu64 " gap, %" PRIu64 " untrusted", gap,
                 untrusted);
    len = strlen(why);
    if (!held)
        snprintf(why + len, whylen - len,
                 "; the held batches could not be read");
    return score;
}

void api_metrics(api_ctx *c)
{
    with_figures(c, false, true, metrics_answer);
}

static void health_answer(api_ctx *c)
{
    jv_node *n = c->node;
    store_figures *f = c->extra;
    uint64_t now = jv_now_ms();
    char why[768];
    int s_storage = 100, s_api = 100, s_repl = 100, s_mem = 100;
    jv_store_stats st;
    json_t *comps = json_object();

    /* storage: can we read, did the last commit work? */
    st = f->st;
    if (f->err != JV_OK) {
        s_storage = 0;
        snprintf(why, sizeof(why), "database unreadable: %s", f->msg);
    } else if (n->last_commit_err && now - n->last_commit_err_ms < 60000) {
        s_storage = n->last_commit_ms > n->last_commit_err_ms ? 60 : 0;
        snprintf(why, sizeof(why), "a commit failed %" PRIu64 " s ago: %s",
                 (now - n->last_commit_err_ms) / 1000,
                 jv_strerror(n->last_commit_err));
    } else {
        snprintf(why, sizeof(why), "%.1f MiB, %" PRIu64 " batches, %s",
                 (double)(st.file_bytes + st.wal_bytes) / 1048576.0, st.batches,
                 n->last_commit_ms ? "commits succeed" : "no commit yet");
    }
    json_object_set_new(comps, "storage", component(s_storage, why));

    uint64_t errs = n->api_errors_window + n->api_errors_last;
    s_api = n->stopping ? 0 : errs == 0 ? 100 : errs < 10 ? 70 : 30;
    snprintf(why, sizeof(why),
             "%zu connections, %" PRIu64 " server errors in the last minutes%s",
             jv_http_conns(n->http), errs, n->stopping ? ", stopping" : "");
    json_object_set_new(comps, "api", component(s_api, why));

    char why_repl[256];
    s_repl = jv_repl_health(n->repl, why_repl, sizeof(why_repl));
    if (n->catching_up) {
        size_t of = 0, done = jv_repl_caught_up_n(n->repl, &of);
        s_repl = s_repl < 50 ? s_repl : 50;
        snprintf(why_repl + strlen(why_repl),
                 sizeof(why_repl) - strlen(why_repl),
                 "; restored from a backup, catching up on its old origin's "
                 "operations (%zu of %zu peers done)",
                 done, of);
    }
    int s_clock =
        clock_health(n, f->held_err ? NULL : &f->held, why, sizeof(why));
    if (s_clock < s_repl)
        s_repl = s_clock; /* a skewed clock stops this node's writes */
    json_object_set_new(comps, "replication", component(s_repl, why_repl));
    json_object_set_new(comps, "clock", component(s_clock, why));

    uint64_t rss = resident_bytes();
    s_mem = rss < (512ull << 20) ? 100 : rss < (2048ull << 20) ? 60 : 20;
    snprintf(why, sizeof(why), "resident %.1f MiB", (double)rss / 1048576.0);
    json_object_set_new(comps, "memory", component(s_mem, why));

    /* Storage weighs most: a node that cannot commit is not serving. */
    int score = (40 * s_storage + 20 * s_api + 25 * s_repl + 15 * s_mem) / 100;
    int lowest = s_storage < s_api ? s_storage : s_api;
    if (lowest == 0 && score > 39)
        score = 39;
    /* A node that reaches none of its peers serves only its own writes:
     * degraded at once, unhealthy once that lasts (docs/api.md). */
    uint64_t isolated = jv_repl_isolated_ms(n->repl);
    if (isolated && score > 79)
        score = 79;
    if (isolated >= JV_ISOLATED_UNHEALTHY_MS && score > 39)
        score = 39;
    /* Writes work, but its state may lack what it had published after
     * the backup: degraded until every peer has given that back (or the
     * peers that never will are removed). */
    if (n->catching_up && score > 79)
        score = 79;
    const char *status = score >= 80   ? "healthy"
                         : score >= 40 ? "degraded"
                                       : "unhealthy";
    api_reply(c, 200,
              json_pack("{s:i,s:s,s:o}", "score", score, "status", status,
                        "components", comps));
}

void api_health(api_ctx *c)
{
    with_figures(c, false, true, health_answer);
}

/* -- status --------------------------------------------------------------- */

/* From origin commit to apply here, over the last batches from peers;
 * null until one was applied. */
static json_t *delay_json(const jv_repl *r)
{
    jv_repl_delay d;
    jv_repl_delay_get(r, &d);
    if (!d.samples)
        return json_null();
    return json_pack("{s:I,s:I,s:I,s:I}", "samples", (json_int_t)d.samples,
                     "p50_ms", (json_int_t)d.p50_ms, "p99_ms",
                     (json_int_t)d.p99_ms, "max_ms", (json_int_t)d.max_ms);
}

static void status_answer(api_ctx *c)
{
    jv_node *n = c->node;
    store_figures *f = c->extra;
    const jv_store_stats st = f->st;
    if (f->err) {
        api_fail_msg(c, f->err, "status", f->msg);
        return;
    }
    json_t *vvj = json_object();
    for (size_t i = 0; i < f->vv.n; i++) {
        char hex[JV_ID_HEX];
        jv_id_hex(&f->vv.v[i].id, hex);
        json_object_set_new(vvj, hex, json_integer((json_int_t)f->vv.v[i].seq));
    }
    uint64_t now = jv_now_ms();
    json_t *peers = jv_repl_peers_json(n->repl);
    json_t *keys = json_null();
    if (n->ring.n) {
        char id[9];
        json_t *accept = json_array();
        for (size_t i = 0; i < n->ring.n; i++) {
            jv_keyring_id_hex(&n->ring, i, id);
            json_array_append_new(accept, json_string(id));
        }
        jv_keyring_id_hex(&n->ring, 0, id);
        keys = json_pack("{s:s,s:o}", "send", id, "accept", accept);
    }
    /* The log's figures: what every operation costs once encoded and
     * signed (bytes are the batch bodies, signatures not included). */
    json_t *log = json_pack("{s:I,s:I,s:I}", "batches", (json_int_t)st.batches,
                            "operations", (json_int_t)st.ops, "bytes",
                            (json_int_t)st.log_bytes);
    json_t *out = json_pack(
        "{s:s,s:s,s:s,s:s,s:o,s:I,s:I,s:o,s:o,s:I,s:o,s:o,s:i}", "node_id",
        n->self_hex, "name", n->cfg->name, "peer_address", n->peer_bound,
        "version", JV_VERSION, "started_at", api_time(n->started_ms),
        "uptime_seconds", (json_int_t)((now - n->started_ms) / 1000),
        "database_bytes", (json_int_t)(st.file_bytes + st.wal_bytes), "log",
        log, "version_vector", vvj, "held_batches", (json_int_t)st.held,
        "peers", peers, "cluster_keys", keys, "protocol_version",
        JV_WIRE_VERSION);
    if (out) {
        /* The origin its batches are signed under: node_id's, or a newer
         * one since a restore (docs/protocol.md "A restored node"). */
        char origin[JV_ID_HEX];
        jv_id_hex(&n->origin.pk, origin);
        json_object_set_new(out, "origin", json_string(origin));
        json_object_set_new(out, "reload", jv_reload_json(n));
        json_object_set_new(out, "replication_delay", delay_json(n->repl));
    }
    api_reply(c, 200, out);
}

void api_status(api_ctx *c)
{
    with_figures(c, true, false, status_answer);
}

/* -- sessions ------------------------------------------------------------- */

typedef struct {
    jv_api_secret secret;
    char key_id[24];
    jv_role role;
    uint64_t now_ms;
    uint64_t expires_ms;
    char target[64];
} session_new;

static jv_err insert_session(jv_store *st, void *arg)
{
    session_new *s = arg;
    jv_session_row row = {
        .id = jv_str_c(s->secret.id),
        .key_id = jv_str_c(s->key_id),
        .role = jv_str_c(jv_role_name(s->role)),
        .token_hash = s->secret.hash,
        .created_ms = s->now_ms,
        .expires_ms = s->expires_ms,
    };
    return jv_store_session_insert(st, &row);
}

static void session_created(jv_write_req *r)
{
    api_ctx *c = r->arg;
    session_new *s = c->extra;
    if (!api_write_ok(c))
        return;
    jv_auth_session_put(c->node->auth, s->secret.id, s->key_id, s->role,
                        s->secret.hash, s->expires_ms);
    api_reply(c, 201,
              json_pack("{s:s,s:s,s:s,s:s,s:s,s:o}", "id", s->secret.id,
                        "token", s->secret.text, "role", jv_role_name(s->role),
                        "key_id", s->key_id, "key_name", c->who.key_name,
                        "expires_at", api_time(s->expires_ms)));
}

static void free_secretive(void *p)
{
    if (p) {
        sodium_memzero(p, sizeof(session_new));
        jv_free(p);
    }
}

void api_session_create(api_ctx *c)
{
    jv_node *n = c->node;
    jv_str key;
    if (!c->body) {
        api_error(c, 400, "invalid_json", "a JSON object body is required");
        return;
    }
    if (api_field_str(c, "api_key", true, 1, 256, &key))
        return;
    uint64_t ttl = n->cfg->session_ttl;
    json_t *t = json_object_get(c->body, "ttl_seconds");
    if (t && !json_is_null(t)) {
        if (!json_is_integer(t) || json_integer_value(t) < 1 ||
            json_integer_value(t) > 604800) {
            api_error(c, 400, "invalid_field",
                      "ttl_seconds must be an integer from 1 to 604800");
            return;
        }
        ttl = (uint64_t)json_integer_value(t);
    }
    if (jv_auth_check_key(n->auth, key, &c->who) != JV_OK) {
        api_error(c, 401, "unauthorized", "unknown or revoked API key");
        return;
    }
    uint64_t now = jv_now_ms(), retry;
    if (jv_auth_rate(n->auth, c->who.key_id, now, &retry) != JV_OK) {
        api_rate_limited(c, retry);
        return;
    }
    session_new *s = jv_calloc(1, sizeof(*s));
    jv_intent *in = api_intents(c, 1);
    if (!s || !in || jv_api_secret_new("s", &s->secret) != JV_OK) {
        jv_free(s);
        api_fail(c, JV_ENOMEM, "session");
        return;
    }
    c->extra = s;
    c->extra_free = free_secretive;
    memcpy(s->key_id, c->who.key_id, sizeof(s->key_id));
    s->role = c->who.role;
    s->now_ms = now;
    s->expires_ms = now + ttl * 1000;
    snprintf(s->target, sizeof(s->target), "session/%s", s->secret.id);
    char detail[160];
    snprintf(detail, sizeof(detail), "key %s, role %s, ttl %" PRIu64 " s",
             c->who.key_id, jv_role_name(s->role), ttl);
    if (api_audit_intent(c, in, "session.create", s->target, detail)) {
        api_fail(c, JV_ENOMEM, "session");
        return;
    }
    c->wr.group.local = insert_session;
    c->wr.group.local_arg = s;
    api_submit(c, session_created);
}

typedef struct {
    char id[24];
    uint64_t now_ms;
    bool is_key;
    bool last_admin; /* refused: the last active admin key */
} revoke_ctx;

/* On the writer thread, in the request's transaction: the check and the
 * revocation cannot be split by a concurrent revoke of another admin key. */
static jv_err revoke_row(jv_store *st, void *arg)
{
    revoke_ctx *r = arg;
    jv_err err;
    if (!r->is_key)
        return jv_store_session_revoke(st, jv_str_c(r->id), r->now_ms);
    if ((err = jv_store_key_last_admin(st, jv_str_c(r->id), &r->last_admin)))
        return err;
    if (r->last_admin)
        return JV_EINVAL; /* a refusal of this group, not a storage fault */
    return jv_store_key_revoke(st, jv_str_c(r->id), r->now_ms);
}

static void revoked(jv_write_req *w)
{
    api_ctx *c = w->arg;
    revoke_ctx *r = c->extra;
    if (r->last_admin && c->wr.group.result == JV_EINVAL && !c->wr.err) {
        api_error(c, 409, "conflict",
                  "%s is the last active admin key: revoking it would lock "
                  "every admin out; create another admin key first",
                  r->id);
        return;
    }
    if (!api_write_ok(c))
        return;
    if (r->is_key)
        jv_auth_key_revoke(c->node->auth, r->id);
    else
        jv_auth_session_revoke(c->node->auth, r->id);
    api_reply_empty(c, 204);
}

/* Revokes a key or session (its row and the cache) with an audit entry. */
static void revoke_entry(api_ctx *c, const char *id, bool is_key,
                         const char *detail)
{
    revoke_ctx *r = jv_calloc(1, sizeof(*r));
    jv_intent *in = api_intents(c, 1);
    char target[48];
    if (!r || !in) {
        jv_free(r);
        api_fail(c, JV_ENOMEM, "revoke");
        return;
    }
    c->extra = r;
    c->extra_free = jv_free;
    snprintf(r->id, sizeof(r->id), "%s", id);
    r->now_ms = jv_now_ms();
    r->is_key = is_key;
    snprintf(target, sizeof(target), "%s/%s", is_key ? "key" : "session", id);
    if (api_audit_intent(c, in, is_key ? "key.revoke" : "session.revoke",
                         target, detail)) {
        api_fail(c, JV_ENOMEM, "revoke");
        return;
    }
    c->wr.group.local = revoke_row;
    c->wr.group.local_arg = r;
    api_submit(c, revoked);
}

void api_session_end(api_ctx *c)
{
    if (!c->who.is_session) {
        api_error(c, 400, "bad_request",
                  "this request was made with an API key, not a session "
                  "token: there is no session to end");
        return;
    }
    char id[24];
    memcpy(id, c->who.session_id, sizeof(id));
    revoke_entry(c, id, false, "ended by its holder");
}

static const char *cap0(api_ctx *c)
{
    return c->cap[0].len ? (const char *)c->cap[0].data : "";
}

void api_session_revoke(api_ctx *c)
{
    const char *id = cap0(c);
    if (strlen(id) >= 24 ||
        !jv_auth_session_exists(c->node->auth, id, jv_now_ms())) {
        api_error(c, 404, "not_found", "no active session '%s'", id);
        return;
    }
    revoke_entry(c, id, false, "revoked by an admin");
}

/* An admin list, read on a reader thread into JSON; the loop answers
 * with it. */
typedef struct {
    json_t *arr;
    uint64_t now_ms;
} list_acc;

static void list_free(void *arg)
{
    list_acc *a = arg;
    json_decref(a->arr);
    jv_free(a);
}

static jv_err list_append(list_acc *a, json_t *o)
{
    return o && json_array_append_new(a->arr, o) == 0 ? JV_OK : JV_ENOMEM;
}

/* Starts the list's read; fn fills c->extra's array. */
static void list_start(api_ctx *c, api_read_fn fn, api_read_done done)
{
    list_acc *a = jv_calloc(1, sizeof(*a));
    if (!a || !(a->arr = json_array())) {
        jv_free(a);
        api_fail(c, JV_ENOMEM, "list");
        return;
    }
    a->now_ms = jv_now_ms();
    c->extra = a;
    c->extra_free = list_free;
    api_read(c, fn, done);
}

/* Reader thread: the rows, key names left for the loop. */
static jv_err add_session(void *arg, const jv_session_row *s)
{
    return list_append(
        arg, json_pack("{s:o,s:o,s:s,s:o,s:o,s:o}", "id", api_jstr(s->id),
                       "key_id", api_jstr(s->key_id), "key_name", "", "role",
                       api_jstr(s->role), "created_at", api_time(s->created_ms),
                       "expires_at", api_time(s->expires_ms)));
}

static jv_err sessions_read(jv_store *st, api_ctx *c)
{
    list_acc *a = c->extra;
    return jv_store_session_list(st, a->now_ms, add_session, a);
}

/* Loop: a cluster key revoked elsewhere leaves its sessions' rows here;
 * they no longer work, so they are not listed. */
static void sessions_done(api_ctx *c, jv_err err, const char *msg)
{
    list_acc *a = c->extra;
    json_t *out = json_array();
    size_t i;
    json_t *row;
    if (err || !out) {
        json_decref(out);
        api_fail_msg(c, err ? err : JV_ENOMEM, "sessions", msg);
        return;
    }
    json_array_foreach(a->arr, i, row)
    {
        const char *key_id = json_string_value(json_object_get(row, "key_id"));
        if (!jv_auth_key_exists(c->node->auth, key_id))
            continue;
        const char *name = jv_auth_key_name(c->node->auth, key_id);
        json_object_set_new(row, "key_name", json_string(name ? name : ""));
        json_array_append(out, row);
    }
    api_reply(c, 200, json_pack("{s:o}", "sessions", out));
}

void api_session_list(api_ctx *c)
{
    list_start(c, sessions_read, sessions_done);
}

/* -- API keys ------------------------------------------------------------- */

/* Two scopes: a node key lives in this node's api_key table only; a
 * cluster key is replicated data (a JV_OP_KEY_ADD operation in this node's
 * signed log, applied by every node that trusts it), revoked by a
 * JV_OP_KEY_REVOKE that wins over it everywhere. Both carry only the hash
 * of the secret. */
typedef struct {
    jv_api_secret secret;
    char name[72];
    jv_role role;
    uint64_t now_ms;
    bool cluster;
} key_new;

static jv_err insert_key(jv_store *st, void *arg)
{
    key_new *k = arg;
    jv_key_row row = {
        .id = jv_str_c(k->secret.id),
        .name = jv_str_c(k->name),
        .role = jv_str_c(jv_role_name(k->role)),
        .hash = k->secret.hash,
        .created_ms = k->now_ms,
    };
    return jv_store_key_insert(st, &row);
}

static void key_created(jv_write_req *r)
{
    api_ctx *c = r->arg;
    key_new *k = c->extra;
    if (c->wr.group.result == JV_EEXIST && !c->wr.err) {
        api_error(c, 409, "conflict", "a key named '%s' exists", k->name);
        return;
    }
    if (!api_write_ok(c))
        return;
    if (k->cluster)
        jv_auth_ckey_put(c->node->auth, k->secret.id, k->name, k->role,
                         k->secret.hash, false);
    else
        jv_auth_key_put(c->node->auth, k->secret.id, k->name, k->role,
                        k->secret.hash, false);
    api_reply(c, 201,
              json_pack("{s:s,s:s,s:s,s:s,s:s,s:o}", "id", k->secret.id, "name",
                        k->name, "role", jv_role_name(k->role), "scope",
                        k->cluster ? "cluster" : "node", "key", k->secret.text,
                        "created_at", api_time(k->now_ms)));
}

static void free_key_new(void *p)
{
    if (p) {
        sodium_memzero(p, sizeof(key_new));
        jv_free(p);
    }
}

static bool name_ok(jv_str s)
{
    if (s.n < 1 || s.n > 64)
        return false;
    for (size_t i = 0; i < s.n; i++) {
        char ch = s.p[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
            return false;
    }
    return true;
}

/* The body's "scope": "node" (the default) or "cluster". */
static int key_scope(api_ctx *c, bool *cluster)
{
    jv_str scope;
    if (api_field_str(c, "scope", false, 1, 16, &scope))
        return -1;
    if (!scope.n)
        scope = jv_str_c("node");
    *cluster = jv_str_eq(scope, jv_str_c("cluster"));
    if (!*cluster && !jv_str_eq(scope, jv_str_c("node"))) {
        api_error(c, 400, "invalid_field", "scope must be node or cluster");
        return -1;
    }
    return 0;
}

/* The replicated operation of a new cluster key; its strings live in k
 * and in c (the principal's name), both until the reply. */
static void key_add_intent(api_ctx *c, key_new *k, jv_intent *in)
{
    memset(in, 0, sizeof(*in));
    in->op.kind = JV_OP_KEY_ADD;
    in->op.key_add.id = jv_str_c(k->secret.id);
    in->op.key_add.name = jv_str_c(k->name);
    in->op.key_add.role = jv_str_c(jv_role_name(k->role));
    memcpy(in->op.key_add.hash, k->secret.hash, JV_OP_KEY_HASH_LEN);
    in->op.key_add.time_ms = k->now_ms;
    in->op.key_add.by = jv_str_c(c->who.key_name);
}

/* Wall-clock milliseconds no later than the batch stamp will be. */
static uint64_t op_time(api_ctx *c)
{
    uint64_t now = jv_now_ms(), stamp_ms = jv_hlc_ms(api_stamp(c));
    return now < stamp_ms ? now : stamp_ms;
}

static int key_fields(api_ctx *c, jv_str *name, jv_role *role, bool *cluster)
{
    jv_str role_s;
    if (!c->body) {
        api_error(c, 400, "invalid_json", "a JSON object body is required");
        return -1;
    }
    if (api_field_str(c, "name", true, 1, 64, name) ||
        api_field_str(c, "role", true, 1, 16, &role_s) || key_scope(c, cluster))
        return -1;
    if (!name_ok(*name)) {
        api_error(c, 400, "invalid_field",
                  "name must be 1 to 64 characters of A-Z a-z 0-9 . _ -");
        return -1;
    }
    if (jv_role_parse(role_s, role) != JV_OK) {
        api_error(c, 400, "invalid_field",
                  "role must be admin, writer or reader");
        return -1;
    }
    return 0;
}

void api_key_create(api_ctx *c)
{
    jv_str name;
    jv_role role;
    bool cluster;
    if (key_fields(c, &name, &role, &cluster))
        return;
    key_new *k = jv_calloc(1, sizeof(*k));
    jv_intent *in = api_intents(c, cluster ? 2 : 1);
    if (!k || !in || jv_api_secret_new("k", &k->secret) != JV_OK) {
        jv_free(k);
        api_fail(c, JV_ENOMEM, "key");
        return;
    }
    c->extra = k;
    c->extra_free = free_key_new;
    snprintf(k->name, sizeof(k->name), "%.*s", (int)name.n, name.p);
    k->role = role;
    k->cluster = cluster;
    k->now_ms = cluster ? op_time(c) : jv_now_ms();
    /* Names of cluster keys are unique as far as this node knows: two
     * nodes may still give one name at once, ids tell them apart. */
    if (cluster && jv_auth_ckey_named(c->node->auth, k->name)) {
        api_error(c, 409, "conflict", "a cluster key named '%s' exists",
                  k->name);
        return;
    }
    char target[48], detail[128];
    snprintf(target, sizeof(target), "key/%s", k->secret.id);
    snprintf(detail, sizeof(detail), "name %s, role %s, scope %s", k->name,
             jv_role_name(role), cluster ? "cluster" : "node");
    if (api_audit_intent(c, in, "key.create", target, detail)) {
        api_fail(c, JV_ENOMEM, "key");
        return;
    }
    if (cluster) {
        key_add_intent(c, k, &in[1]);
    } else {
        c->wr.group.local = insert_key;
        c->wr.group.local_arg = k;
    }
    api_submit(c, key_created);
}

/* Reader thread, as the session list. */
static jv_err add_key(void *arg, const jv_key_row *k)
{
    return list_append(
        arg,
        json_pack("{s:o,s:o,s:o,s:s,s:o,s:o}", "id", api_jstr(k->id), "name",
                  api_jstr(k->name), "role", api_jstr(k->role), "scope", "node",
                  "created_at", api_time(k->created_ms), "revoked_at",
                  k->revoked_ms ? api_time(k->revoked_ms) : json_null()));
}

static jv_err add_ckey(void *arg, const jv_ckey_row *k)
{
    return list_append(
        arg,
        json_pack(
            "{s:o,s:o,s:o,s:s,s:o,s:o,s:o,s:o,s:o}", "id", api_jstr(k->id),
            "name", api_jstr(k->name), "role", api_jstr(k->role), "scope",
            "cluster", "created_at", api_time(k->created_ms), "created_by",
            api_jstr(k->created_by), "origin", api_id(&k->origin), "revoked_at",
            k->revoked ? api_time(k->revoked_ms) : json_null(), "revoked_by",
            k->revoked ? api_jstr(k->revoked_by) : json_null()));
}

static jv_err keys_read(jv_store *st, api_ctx *c)
{
    jv_err err = jv_store_key_list(st, add_key, c->extra);
    return err ? err : jv_store_ckey_list(st, add_ckey, c->extra);
}

static void keys_done(api_ctx *c, jv_err err, const char *msg)
{
    list_acc *a = c->extra;
    if (err) {
        api_fail_msg(c, err, "keys", msg);
        return;
    }
    api_reply(c, 200, json_pack("{s:O}", "keys", a->arr));
}

void api_key_list(api_ctx *c)
{
    list_start(c, keys_read, keys_done);
}

typedef struct {
    char id[24];
} ckey_revoke;

static void ckey_revoked(jv_write_req *w)
{
    api_ctx *c = w->arg;
    ckey_revoke *r = c->extra;
    if (!api_write_ok(c))
        return;
    /* A revocation of a key not seen yet has nothing to mark here: it
     * is in the store, and the key is revoked when it arrives. */
    jv_auth_key_revoke(c->node->auth, r->id);
    api_reply_empty(c, 204);
}

/* Revokes a cluster key everywhere: a replicated revocation with an audit
 * entry, in one write group. */
static void ckey_revoke_submit(api_ctx *c, const char *id)
{
    ckey_revoke *r = jv_calloc(1, sizeof(*r));
    jv_intent *in = api_intents(c, 2);
    char target[48];
    if (!r || !in) {
        jv_free(r);
        api_fail(c, JV_ENOMEM, "revoke");
        return;
    }
    c->extra = r;
    c->extra_free = jv_free;
    snprintf(r->id, sizeof(r->id), "%s", id);
    snprintf(target, sizeof(target), "key/%s", id);
    if (api_audit_intent(c, in, "key.revoke", target,
                         "cluster key, revoked on every node with its "
                         "sessions")) {
        api_fail(c, JV_ENOMEM, "revoke");
        return;
    }
    in[1].op.kind = JV_OP_KEY_REVOKE;
    in[1].op.key_revoke.id = jv_str_c(r->id);
    in[1].op.key_revoke.time_ms = op_time(c);
    in[1].op.key_revoke.by = jv_str_c(c->who.key_name);
    api_submit(c, ckey_revoked);
}

/* ?scope=cluster: revoke the id as a cluster key even if this node has
 * not seen the key yet (a leaked key's id, from another node). */
static int revoke_scope(api_ctx *c, bool *force_cluster)
{
    jv_buf v;
    jv_buf_init(&v);
    *force_cluster = false;
    jv_err err = api_query(c, "scope", &v);
    int rc = 0;
    if (err == JV_OK) {
        *force_cluster = strcmp(api_cstr(&v), "cluster") == 0;
        if (!*force_cluster && strcmp(api_cstr(&v), "node") != 0) {
            api_error(c, 400, "bad_request", "scope must be node or cluster");
            rc = -1;
        }
    } else if (err != JV_ENOTFOUND) {
        rc = -1; /* answered */
    }
    jv_buf_fini(&v);
    return rc;
}

static bool ckey_id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n < 3 || n >= 24 || id[0] != 'k' || id[1] != '_')
        return false;
    for (size_t i = 2; i < n; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return false;
    return true;
}

void api_key_revoke(api_ctx *c)
{
    const char *id = cap0(c);
    bool cluster = false, force = false;
    if (revoke_scope(c, &force))
        return;
    bool known =
        strlen(id) < 24 && jv_auth_key_known(c->node->auth, id, &cluster);
    if (force && known && !cluster) {
        api_error(c, 409, "conflict",
                  "'%s' is a key of this node only, not a cluster key", id);
        return;
    }
    if (force) {
        if (!ckey_id_ok(id)) {
            api_error(c, 400, "invalid_field",
                      "'%s' is not a key id (k_ and hex digits)", id);
            return;
        }
        ckey_revoke_submit(c, id);
        return;
    }
    if (!known || !jv_auth_key_exists(c->node->auth, id)) {
        api_error(c, 404, "not_found", "no active key '%s'", id);
        return;
    }
    if (cluster)
        ckey_revoke_submit(c, id);
    else
        revoke_entry(c, id, true, "revoked by an admin, with its sessions");
}

/* -- export --------------------------------------------------------------- */

/* The export is produced off the loop, on a thread and a database
 * connection of its own, inside one read transaction (a consistent
 * snapshot): object keys in byte order, arrays in a fixed order, so that
 * two converged nodes give the same bytes. It streams: the thread hands
 * pieces of JV_HTTP_CHUNK bytes to the loop and waits while EXPORT_AHEAD
 * of them are not yet taken by the client, so an export holds a few
 * pieces of memory however large it is and however slowly it is read.
 *
 *   thread: rows -> out -> ex_flush() --[queue, mutex]--> export_pull()
 *           (waits on cv while full)       async wakes the loop ^
 */
#define EXPORT_AHEAD 2
/* Exports running at once; each holds a thread and a connection. */
#define EXPORT_MAX 4

typedef struct {
    api_ctx *c; /* until answered */
    jv_node *node;
    uv_thread_t thread;
    uv_async_t async;
    uv_mutex_t mu;
    uv_cond_t cv;
    /* under mu */
    jv_buf q[EXPORT_AHEAD]; /* produced, not yet taken */
    size_t qhead, qlen;
    bool produced; /* the last piece is in q */
    bool done, cancel;
    jv_err err;
    /* loop thread */
    jv_http_stream *hs; /* waiting for a piece */
    bool answered, over, closing;
    /* export thread */
    jv_buf out;
    jv_store *st;
    bool first;
    jv_str open_key; /* archive: the key whose value list is open */
    jv_buf keybuf;
} export_job;

static unsigned exports_running; /* loop thread */

/* Hands the piece in out to the loop once it is full; JV_ECLOSED when the
 * client is gone. Export thread. */
static jv_err ex_flush(export_job *e, bool last)
{
    jv_err err = jv_buf_err(&e->out);
    if (err || (!last && e->out.len < JV_HTTP_CHUNK))
        return err;
    uv_mutex_lock(&e->mu);
    while (e->qlen == EXPORT_AHEAD && !e->cancel)
        uv_cond_wait(&e->cv, &e->mu);
    if (e->cancel) {
        uv_mutex_unlock(&e->mu);
        return JV_ECLOSED;
    }
    e->q[(e->qhead + e->qlen++) % EXPORT_AHEAD] = e->out;
    e->produced = last;
    uv_mutex_unlock(&e->mu);
    jv_buf_init(&e->out);
    uv_async_send(&e->async);
    return JV_OK;
}

static void put(jv_buf *b, const char *s)
{
    jv_buf_append(b, s, strlen(s));
}

static void put_json(jv_buf *b, json_t *v)
{
    char *t = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    json_decref(v);
    if (!t) {
        b->err = 1;
        return;
    }
    put(b, t);
    free(t);
}

static void put_key(export_job *e, jv_str key)
{
    if (!e->first)
        put(&e->out, ",");
    e->first = false;
    put_json(&e->out, api_jstr(key));
    put(&e->out, ":");
}

static jv_err ex_share(void *arg, const jv_counter_share *s)
{
    export_job *e = arg;
    char hex[JV_ID_HEX];
    jv_id_hex(&s->replica, hex);
    if (!e->first)
        put(&e->out, ",");
    e->first = false;
    put_json(&e->out, json_string(hex));
    put(&e->out, ":");
    put_json(&e->out, json_pack("{s:I,s:I}", "n", (json_int_t)s->n, "p",
                                (json_int_t)s->p));
    return ex_flush(e, false);
}

/* Counter names first, shares after: a row callback may not query the
 * store it is called from. The names come a page at a time (inside the
 * export's read transaction), so that a million counters never have
 * their names in memory at once. */
#define EX_NAMES_PAGE 1024

typedef struct {
    jv_buf names; /* each name followed by a NUL */
    size_t n;
} name_list;

static jv_err collect_name(void *arg, const jv_counter_row *r)
{
    name_list *l = arg;
    jv_buf_append(&l->names, r->name.p, r->name.n);
    jv_buf_append(&l->names, "", 1);
    l->n++;
    return jv_buf_err(&l->names);
}

/* One page of counters after `after` (replaced by the page's last name). */
static jv_err ex_counter_page(export_job *e, jv_buf *after, size_t *got)
{
    name_list l = {{0}, 0};
    jv_str none = {"", 0};
    jv_buf_init(&l.names);
    jv_str from = {after->len ? (const char *)after->data : "", after->len};
    jv_err err = jv_store_counter_list(e->st, none, from, EX_NAMES_PAGE,
                                       collect_name, &l);
    const char *p = (const char *)l.names.data;
    for (size_t i = 0; !err && i < l.n; i++) {
        jv_str name = jv_str_c(p);
        put_key(e, name);
        put(&e->out, "{");
        e->first = true;
        err = jv_store_counter_get(e->st, name, ex_share, e);
        put(&e->out, "}");
        e->first = false;
        if (!err)
            err = ex_flush(e, false);
        if (i + 1 == l.n) {
            jv_buf_reset(after);
            jv_buf_append(after, name.p, name.n);
        }
        p += name.n + 1;
    }
    *got = l.n;
    jv_buf_fini(&l.names);
    return err ? err : jv_buf_err(after);
}

static jv_err ex_counters(export_job *e)
{
    jv_buf after;
    size_t got = EX_NAMES_PAGE;
    jv_err err = JV_OK;
    jv_buf_init(&after);
    while (!err && got == EX_NAMES_PAGE)
        err = ex_counter_page(e, &after, &got);
    jv_buf_fini(&after);
    return err ? err : jv_buf_err(&e->out);
}

static jv_err ex_audit(void *arg, const jv_audit_row *r)
{
    export_job *e = arg;
    if (!e->first)
        put(&e->out, ",");
    e->first = false;
    put_json(&e->out,
             json_pack("{s:o,s:o,s:o,s:o,s:I,s:o,s:I}", "action",
                       api_jstr(r->action), "actor", api_jstr(r->actor),
                       "detail", api_jstr(r->detail), "origin",
                       api_id(&r->id.id), "seq", (json_int_t)r->id.n, "target",
                       api_jstr(r->target), "time_ms", (json_int_t)r->time_ms));
    return ex_flush(e, false);
}

static jv_err ex_config(void *arg, const jv_config_row *r)
{
    export_job *e = arg;
    put_key(e, r->key);
    put_json(&e->out,
             json_pack("{s:o,s:I,s:o}", "replica", api_id(&r->replica), "stamp",
                       (json_int_t)r->stamp, "value", api_value(r->value)));
    return ex_flush(e, false);
}

static jv_err ex_archive(void *arg, const jv_archive_value *v)
{
    export_job *e = arg;
    if (!e->open_key.p || !jv_str_eq(e->open_key, v->key)) {
        if (e->open_key.p)
            put(&e->out, "]");
        put_key(e, v->key);
        put(&e->out, "[");
        jv_buf_reset(&e->keybuf);
        jv_buf_append(&e->keybuf, v->key.p, v->key.n);
        e->open_key = (jv_str){(const char *)e->keybuf.data, v->key.n};
    } else {
        put(&e->out, ",");
    }
    put_json(&e->out,
             json_pack("{s:I,s:o,s:I,s:o}", "n", (json_int_t)v->dot.n,
                       "replica", api_id(&v->dot.id), "stamp",
                       (json_int_t)v->stamp, "value", api_value(v->value)));
    return ex_flush(e, false);
}

static jv_err ex_cloud(void *arg, const jv_dot *d)
{
    export_job *e = arg;
    if (!e->first)
        put(&e->out, ",");
    e->first = false;
    put_json(&e->out, json_pack("{s:I,s:o}", "n", (json_int_t)d->n, "replica",
                                api_id(&d->id)));
    return ex_flush(e, false);
}

static jv_err ex_trust(void *arg, const jv_trust_row *t)
{
    export_job *e = arg;
    char hex[JV_ID_HEX];
    jv_id_hex(&t->node, hex);
    put_key(e, jv_str_c(hex));
    put_json(&e->out,
             json_pack("{s:o,s:o,s:I,s:b}", "name", api_jstr(t->name), "set_by",
                       api_id(&t->set_by), "stamp", (json_int_t)t->stamp,
                       "trusted", t->trusted ? 1 : 0));
    return ex_flush(e, false);
}

static jv_err export_run(jv_store *st, void *arg)
{
    export_job *e = arg;
    jv_vv vv;
    jv_err err;
    jv_str none = {"", 0};
    e->st = st;
    jv_vv_init(&vv);
    if ((err = jv_store_read_begin(st)))
        return err;

    put(&e->out, "{\"archive\":{");
    e->first = true;
    if ((err = jv_store_archive_values(st, ex_archive, e)))
        goto out;
    if (e->open_key.p)
        put(&e->out, "]");
    put(&e->out, "},\"archive_context\":{\"cloud\":[");
    e->first = true;
    if ((err = jv_store_archive_context(st, &vv, ex_cloud, e)))
        goto out;
    put(&e->out, "],\"vector\":{");
    e->first = true;
    for (size_t i = 0; i < vv.n; i++) {
        char hex[JV_ID_HEX], num[24];
        jv_id_hex(&vv.v[i].id, hex);
        put_key(e, jv_str_c(hex));
        snprintf(num, sizeof(num), "%" PRIu64, vv.v[i].seq);
        put(&e->out, num);
    }
    put(&e->out, "}},\"audit\":[");
    e->first = true;
    if ((err = jv_store_audit_scan(st, ex_audit, e)))
        goto out;
    put(&e->out, "],\"config\":{");
    e->first = true;
    if ((err = jv_store_config_list(st, none, none, 0, ex_config, e)))
        goto out;
    put(&e->out, "},\"counters\":{");
    e->first = true;
    if ((err = ex_counters(e)))
        goto out;
    put(&e->out, "},\"format\":\"jarvis-export/1\",\"trust\":{");
    e->first = true;
    if ((err = jv_store_trust_list(st, ex_trust, e)))
        goto out;
    put(&e->out, "}}\n");
    err = ex_flush(e, true);
out:
    jv_store_read_end(st);
    jv_vv_fini(&vv);
    return err;
}

static void export_thread(void *arg)
{
    export_job *e = arg;
    jv_store_opts o;
    jv_store *st = NULL;
    char msg[256];
    jv_store_opts_default(&o);
    o.sync = e->node->sync;
    o.checked = true;
    jv_err err = jv_store_open(e->node->db_path, &o, &st, msg, sizeof(msg));
    if (err)
        jv_warn("storage", "cannot open a connection for an export: %s", msg);
    else
        err = export_run(st, e);
    if (err && err != JV_ECLOSED)
        jv_warn("api", "export failed: %s (%s)", jv_strerror(err),
                st ? jv_store_errmsg(st) : msg);
    jv_store_close(st);
    uv_mutex_lock(&e->mu);
    e->done = true;
    e->err = err;
    uv_mutex_unlock(&e->mu);
    uv_async_send(&e->async);
}

static void export_free(uv_handle_t *h)
{
    export_job *e = h->data;
    for (size_t i = 0; i < EXPORT_AHEAD; i++)
        jv_buf_fini(&e->q[i]);
    jv_buf_fini(&e->out);
    jv_buf_fini(&e->keybuf);
    uv_cond_destroy(&e->cv);
    uv_mutex_destroy(&e->mu);
    e->node->offloop--;
    jv_free(e);
}

/* Once the thread has ended and the answer is over. Loop thread. */
static void export_maybe_free(export_job *e)
{
    uv_mutex_lock(&e->mu);
    bool done = e->done;
    uv_mutex_unlock(&e->mu);
    if (!done || !e->over || e->closing)
        return;
    e->closing = true;
    uv_thread_join(&e->thread); /* it has returned or is returning */
    exports_running--;
    uv_close((uv_handle_t *)&e->async, export_free);
}

static jv_http_pull export_pull(void *arg, jv_http_stream *hs, jv_buf *out)
{
    export_job *e = arg;
    jv_http_pull r;
    uv_mutex_lock(&e->mu);
    if (e->qlen) {
        jv_buf *b = &e->q[e->qhead];
        jv_buf_append(out, b->data, b->len);
        jv_buf_fini(b);
        e->qhead = (e->qhead + 1) % EXPORT_AHEAD;
        e->qlen--;
        uv_cond_signal(&e->cv);
        r = e->qlen == 0 && e->produced ? JV_HTTP_END : JV_HTTP_MORE;
    } else if (e->produced || e->done) {
        r = e->produced ? JV_HTTP_END : JV_HTTP_ABORT;
    } else {
        e->hs = hs;
        r = JV_HTTP_WAIT;
    }
    uv_mutex_unlock(&e->mu);
    return r;
}

static void export_end(void *arg, bool complete)
{
    export_job *e = arg;
    (void)complete;
    e->over = true;
    e->hs = NULL;
    uv_mutex_lock(&e->mu);
    e->cancel = true;
    uv_cond_signal(&e->cv);
    uv_mutex_unlock(&e->mu);
    export_maybe_free(e);
}

/* The thread produced a piece or ended. The answer starts with the first
 * piece, so that an export that fails at once is answered with an error
 * status; later failures cut the answer short. */
static void export_wake(uv_async_t *a)
{
    export_job *e = a->data;
    uv_mutex_lock(&e->mu);
    bool have = e->qlen > 0, done = e->done;
    jv_err err = e->err;
    uv_mutex_unlock(&e->mu);
    if (!e->answered) {
        if (!have && !done)
            return;
        e->answered = true;
        if (!have && err) {
            e->over = true;
            api_fail(e->c, err, "export");
        } else {
            api_reply_stream(e->c, 200, export_pull, export_end, e);
        }
        e->c = NULL;
    } else if (e->hs) {
        jv_http_stream *hs = e->hs;
        e->hs = NULL;
        jv_http_stream_resume(hs);
    }
    export_maybe_free(e);
}

void api_export(api_ctx *c)
{
    jv_node *n = c->node;
    if (n->stopping) {
        api_error(c, 503, "shutting_down", "the node is stopping");
        return;
    }
    if (exports_running >= EXPORT_MAX) {
        api_error(c, 503, "busy",
                  "%d exports are running; retry when one has ended",
                  EXPORT_MAX);
        return;
    }
    export_job *e = jv_calloc(1, sizeof(*e));
    if (!e) {
        api_fail(c, JV_ENOMEM, "export");
        return;
    }
    e->c = c;
    e->node = n;
    jv_buf_init(&e->out);
    jv_buf_init(&e->keybuf);
    uv_mutex_init(&e->mu);
    uv_cond_init(&e->cv);
    uv_async_init(n->loop, &e->async, export_wake);
    e->async.data = e;
    n->offloop++;
    exports_running++;
    if (uv_thread_create(&e->thread, export_thread, e) != 0) {
        e->done = e->over = true;
        e->closing = true;
        exports_running--;
        uv_close((uv_handle_t *)&e->async, export_free);
        api_fail(c, JV_ENOMEM, "export");
    }
}

/* -- backup and verify ---------------------------------------------------- */

/* A running backup's or verify's progress on the change streams: the
 * job's thread stores the figures (jv_progress), a timer on the loop reads
 * them every PROGRESS_MS and sends a `running` event when they changed
 * and the total is known. The loop only reads two atomics. */
#define PROGRESS_MS 200

typedef struct {
    uv_timer_t timer;
    jv_progress prog;
    jv_node *node;
    const char *what; /* "backup" or "verify" */
    uint64_t sent_done, sent_total;
} job_progress;

static void progress_tick(uv_timer_t *t)
{
    job_progress *jp = t->data;
    uint64_t done, total;
    jv_progress_get(&jp->prog, &done, &total);
    if (!total || (done == jp->sent_done && total == jp->sent_total))
        return;
    jp->sent_done = done;
    jp->sent_total = total;
    jv_watch_job(jp->node->watch, jp->what, "running", done, total);
}

static void progress_closed(uv_handle_t *h)
{
    jv_free(h->data);
}

/* Starts the timer of a job that was queued. */
static void progress_start(job_progress *jp)
{
    uv_timer_init(jp->node->loop, &jp->timer);
    jp->timer.data = jp;
    uv_timer_start(&jp->timer, progress_tick, PROGRESS_MS, PROGRESS_MS);
}

/* The job has ended (its thread no longer writes): the last figures go
 * out unless they were sent, then the timer closes and frees jp. Reads
 * them into *done and *total for the final event. */
static void progress_end(job_progress *jp, uint64_t *done, uint64_t *total)
{
    progress_tick(&jp->timer);
    jv_progress_get(&jp->prog, done, total);
    uv_timer_stop(&jp->timer);
    uv_close((uv_handle_t *)&jp->timer, progress_closed);
}

typedef struct {
    api_ctx *c;
    char path[PATH_MAX];
    char why[256]; /* the storage's message on failure */
    jv_verify_report rep;
    json_t *result;
    jv_bseal_key *seal; /* an encrypted backup: under this key */
    job_progress *jp;   /* while the job runs; then its timer's */
} maint_job;

static void maint_audited(jv_write_req *r)
{
    api_ctx *c = r->arg;
    maint_job *m = c->extra;
    int status = c->route->fn == api_backup ? 201 : 200;
    json_t *res = m->result;
    m->result = NULL;
    /* The check or copy is done either way; a failed audit commit shows in
     * the node's health, not in this answer. */
    api_reply(c, status, res);
}

/* The job's done callback runs before the context can go (the answer
 * waits for it), so jp has been handed to its timer's close by then. */
static void maint_free(void *p)
{
    maint_job *m = p;
    if (!m)
        return;
    if (m->result)
        json_decref(m->result);
    if (m->seal) {
        jv_bseal_key_wipe(m->seal);
        jv_free(m->seal);
    }
    jv_free(m);
}

/* Queues run for m with its progress; the `running` event with the total
 * not known yet (0 of 0) goes out at once. */
static jv_err maint_start(jv_node *n, maint_job *m, const char *what,
                          jv_offloop_fn run, jv_offloop_done done)
{
    job_progress *jp = jv_calloc(1, sizeof(*jp));
    if (!jp)
        return JV_ENOMEM;
    jv_progress_init(&jp->prog);
    jp->node = n;
    jp->what = what;
    m->jp = jp;
    jv_err err = jv_node_offloop(n, run, done, m);
    if (err) {
        m->jp = NULL;
        jv_free(jp);
        return err;
    }
    progress_start(jp);
    jv_watch_job(n->watch, what, "running", 0, 0);
    return JV_OK;
}

/* Ends m's progress and sends the job's last event: done with the final
 * figures, or failed with those reached. */
static void maint_end(jv_node *n, maint_job *m, const char *what, jv_err err)
{
    uint64_t done, total;
    progress_end(m->jp, &done, &total);
    m->jp = NULL;
    jv_watch_job(n->watch, what, err ? "failed" : "done", done, total);
}

/* Leaves the audit entry for a finished backup or verify, then answers. */
static void maint_finish(api_ctx *c, const char *action, const char *target,
                         const char *detail)
{
    jv_intent *in = api_intents(c, 1);
    if (!in || api_audit_intent(c, in, action, target, detail)) {
        maint_job *m = c->extra;
        json_t *res = m->result;
        m->result = NULL;
        api_reply(c, c->route->fn == api_backup ? 201 : 200, res);
        return;
    }
    api_submit(c, maint_audited);
}

static jv_err backup_run(jv_store *st, void *arg)
{
    maint_job *m = arg;
    if (m->seal)
        return jv_sealed_backup(st, m->path, m->seal, &m->jp->prog, m->why,
                                sizeof(m->why));
    jv_err err = jv_store_backup_progress(st, m->path, &m->jp->prog);
    if (err)
        snprintf(m->why, sizeof(m->why), "%s", jv_store_errmsg(st));
    return err;
}

static void backup_done(jv_node *n, jv_err err, void *arg)
{
    maint_job *m = arg;
    api_ctx *c = m->c;
    maint_end(n, m, "backup", err);
    if (err == JV_EEXIST) {
        api_error(c, 409, "conflict", "%s exists; choose a new file", m->path);
        return;
    }
    if (err) {
        /* The path was checked before: what fails now is the disk. */
        api_error(c, 503, "storage_unavailable", "backup to %s failed: %s",
                  m->path, m->why[0] ? m->why : jv_strerror(err));
        return;
    }
    struct stat sb;
    json_int_t bytes = stat(m->path, &sb) == 0 ? (json_int_t)sb.st_size : 0;
    m->result = json_pack("{s:s,s:I}", "path", m->path, "bytes", bytes);
    if (m->seal)
        json_object_set_new(m->result, "encrypted",
                            json_string(m->seal->mode == JV_BSEAL_MODE_KEY
                                            ? "key"
                                            : "passphrase"));
    char detail[64];
    snprintf(detail, sizeof(detail), "%lld bytes", (long long)bytes);
    maint_finish(c, "backup", m->path, detail);
}

/* Where a backup named `name` goes: inside the backup dir `base`
 * (resolved). A relative name is taken inside it; an absolute one must
 * lie inside it once its directory is resolved (.., symlinks). The file
 * name itself must be a plain name (jv_store_backup never follows or
 * replaces what is there). On a refusal, why says it for a 400. */
static bool backup_target(const char *base, jv_str name, char *out,
                          size_t outlen, char *why, size_t whylen)
{
    char joined[PATH_MAX], dir[PATH_MAX], real[PATH_MAX];
    int n = name.p[0] == '/'
                ? snprintf(joined, sizeof(joined), "%.*s", (int)name.n, name.p)
                : snprintf(joined, sizeof(joined), "%s/%.*s", base, (int)name.n,
                           name.p);
    if (n < 0 || (size_t)n >= sizeof(joined)) {
        snprintf(why, whylen, "path too long");
        return false;
    }
    char *slash = strrchr(joined, '/');
    const char *file = slash + 1;
    if (!*file || !strcmp(file, ".") || !strcmp(file, "..")) {
        snprintf(why, whylen, "path must name a file");
        return false;
    }
    snprintf(dir, sizeof(dir), "%.*s", (int)(slash - joined), joined);
    if (!realpath(dir[0] ? dir : "/", real)) {
        /* Two paths of PATH_MAX would not fit: each is cut to half. */
        snprintf(why, whylen,
                 "directory %.2000s does not exist in the backup dir %.2000s",
                 dir, base);
        return false;
    }
    size_t bl = strlen(base);
    if (bl > 1 && (strncmp(real, base, bl) != 0 ||
                   (real[bl] != '\0' && real[bl] != '/'))) {
        snprintf(why, whylen,
                 "backups go only into the backup dir %s (--backup-dir); "
                 "give a file name there",
                 base);
        return false;
    }
    n = snprintf(out, outlen, "%s/%s", real, file);
    if (n < 0 || (size_t)n >= outlen) {
        snprintf(why, whylen, "path too long");
        return false;
    }
    return true;
}

/* "encrypt_to" (a backup public key, 64 hex digits) or "passphrase":
 * an encrypted backup. 0 when fine, else answered. */
static int backup_seal_fields(api_ctx *c, maint_job *m)
{
    jv_str to, pass;
    if (api_field_str(c, "encrypt_to", false, 64, 64, &to) ||
        api_field_str(c, "passphrase", false, 8, JV_BSEAL_MAX_PASS, &pass))
        return -1;
    if (!to.n && !pass.n)
        return 0;
    if (to.n && pass.n) {
        api_error(c, 400, "invalid_field",
                  "give encrypt_to or passphrase, not both");
        return -1;
    }
    if (!(m->seal = jv_calloc(1, sizeof(*m->seal)))) {
        api_fail(c, JV_ENOMEM, "backup");
        return -1;
    }
    m->seal->mode = to.n ? JV_BSEAL_MODE_KEY : JV_BSEAL_MODE_PASS;
    if (pass.n) {
        memcpy(m->seal->pass, pass.p, pass.n);
        return 0;
    }
    if (jv_bseal_parse_key(to.p, to.n, m->seal->pk)) {
        api_error(c, 400, "invalid_field",
                  "encrypt_to must be a backup public key: 64 hex digits "
                  "(jarvisctl backup-key makes one)");
        return -1;
    }
    return 0;
}

void api_backup(api_ctx *c)
{
    jv_str path;
    char why[PATH_MAX + 128];
    if (!c->body) {
        api_error(c, 400, "invalid_json", "a JSON object body is required");
        return;
    }
    if (api_field_str(c, "path", true, 1, PATH_MAX - 64, &path))
        return;
    if (memchr(path.p, '\0', path.n)) {
        api_error(c, 400, "invalid_field", "path holds a NUL byte");
        return;
    }
    maint_job *m = jv_calloc(1, sizeof(*m));
    if (!m) {
        api_fail(c, JV_ENOMEM, "backup");
        return;
    }
    c->extra = m;
    c->extra_free = maint_free;
    m->c = c;
    if (!backup_target(c->node->backup_dir, path, m->path, sizeof(m->path), why,
                       sizeof(why))) {
        api_error(c, 400, "invalid_field", "%s", why);
        return;
    }
    if (backup_seal_fields(c, m))
        return;
    jv_err err = maint_start(c->node, m, "backup", backup_run, backup_done);
    if (err)
        api_fail(c, err, "backup");
}

static jv_err verify_run(jv_store *st, void *arg)
{
    maint_job *m = arg;
    return jv_store_verify_progress(st, &m->rep, &m->jp->prog);
}

static void verify_done(jv_node *n, jv_err err, void *arg)
{
    maint_job *m = arg;
    api_ctx *c = m->c;
    jv_verify_report *r = &m->rep;
    maint_end(n, m, "verify", err);
    if (err) {
        api_fail(c, err, "verify");
        return;
    }
    bool ok = jv_verify_ok(r);
    m->result = json_pack(
        "{s:b,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:b,s:b,s:s}", "ok", ok, "integrity",
        r->integrity_ok ? "ok" : r->integrity_msg, "batches",
        (json_int_t)r->batches, "ops", (json_int_t)r->ops, "origins",
        (json_int_t)r->origins, "bad_signatures", (json_int_t)r->bad_signatures,
        "bad_links", (json_int_t)r->bad_links, "bad_encodings",
        (json_int_t)r->bad_encodings, "vv_matches", r->vv_matches,
        "state_matches", r->state_matches, "detail", r->state_msg);
    if (m->result) {
        /* Bounded history: the base and what is covered by it. */
        json_object_set_new(m->result, "base", json_boolean(r->base));
        json_object_set_new(m->result, "base_ok", json_boolean(r->base_ok));
        json_object_set_new(m->result, "base_bytes",
                            json_integer((json_int_t)r->base_bytes));
        json_object_set_new(m->result, "compacted",
                            json_integer((json_int_t)r->compacted));
        if (r->base_msg[0])
            json_object_set_new(m->result, "base_detail",
                                json_string(r->base_msg));
    }
    char detail[128];
    snprintf(detail, sizeof(detail), "%s: %" PRIu64 " batches checked",
             ok ? "ok" : "problems found", r->batches);
    maint_finish(c, "verify", "database", detail);
}

void api_verify(api_ctx *c)
{
    maint_job *m = jv_calloc(1, sizeof(*m));
    if (!m) {
        api_fail(c, JV_ENOMEM, "verify");
        return;
    }
    c->extra = m;
    c->extra_free = maint_free;
    m->c = c;
    jv_err err = maint_start(c->node, m, "verify", verify_run, verify_done);
    if (err)
        api_fail(c, err, "verify");
}
