#include "reload.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "local.h"
#include "log.h"
#include "rcache.h"
#include "repl.h"
#include "timefmt.h"
#include "transport.h"
#include "watch.h"

#define MAX_NAMES 48

typedef struct jv_reload jv_reload;

struct jv_reload {
    jv_config *cfg; /* the settings in use, when a reload made them */
    uint64_t at_ms; /* the last reload; 0: none yet */
    const char *changed[MAX_NAMES];
    size_t nchanged;
    const char *restart[MAX_NAMES];
    size_t nrestart;
    char error[512];
};

typedef struct {
    const char *name; /* the setting's name, as in the config file */
    size_t off;
} field;

#define F(n, f)                   \
    {                             \
        n, offsetof(jv_config, f) \
    }

/* Applied by the module that uses them (see apply_live). */
static const field rate_fields[] = {F("rate-limit", rate_limit),
                                    F("rate-burst", rate_burst)};
static const field http_fields[] = {
    F("max-body", max_body),
    F("max-conns", max_conns),
    F("max-conns-per-addr", max_conns_per_addr),
    F("idle-timeout", idle_timeout_ms),
    F("idle-timeout-busy", idle_busy_ms),
    F("header-timeout", header_timeout_ms),
    F("request-timeout", request_timeout_ms),
    F("send-timeout", send_timeout_ms),
    F("stream-buffer", stream_buffer),
};
static const field repl_fields[] = {F("sync-interval", sync_interval_ms),
                                    F("fanout", fanout),
                                    F("peer-timeout", peer_timeout_ms)};
static const field cache_fields[] = {F("read-cache", read_cache)};
/* Read from n->cfg where used: the swap applies them. */
static const field read_fields[] = {F("session-ttl", session_ttl),
                                    F("log-retention", log_retention_s),
                                    F("peer-horizon", peer_horizon_s)};

/* Taken once at start. */
static const field restart_u64[] = {F("max-clock-skew", max_skew_ms),
                                    F("max-message", max_message)};
static const field restart_str[] = {
    F("data-dir", data_dir), F("api-listen", api_listen), F("listen", listen),
    F("backup-dir", backup_dir)};
static const field restart_bool[] = {F("insecure", insecure),
                                     F("insecure-api", insecure_api),
                                     F("test-faults", test_faults)};

#define NF(a) (sizeof(a) / sizeof((a)[0]))

static void note(const char **names, size_t *n, const char *name)
{
    if (*n < MAX_NAMES)
        names[(*n)++] = name;
}

static bool str_eq(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static bool in_list(const jv_strlist *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i], s) == 0)
            return true;
    return false;
}

static bool lists_differ(const jv_strlist *a, const jv_strlist *b)
{
    for (size_t i = 0; i < a->n; i++)
        if (!in_list(b, a->v[i]))
            return true;
    for (size_t i = 0; i < b->n; i++)
        if (!in_list(a, b->v[i]))
            return true;
    return false;
}

/* Notes every field of f that differs; true if any does. */
static bool diff_u64(jv_reload *st, const jv_config *a, const jv_config *b,
                     const field *f, size_t nf)
{
    bool any = false;
    for (size_t i = 0; i < nf; i++) {
        uint64_t x, y;
        memcpy(&x, (const char *)a + f[i].off, sizeof(x));
        memcpy(&y, (const char *)b + f[i].off, sizeof(y));
        if (x != y) {
            note(st->changed, &st->nchanged, f[i].name);
            any = true;
        }
    }
    return any;
}

static void needs_restart(jv_reload *st, const char *name)
{
    jv_warn("node", "%s changed: restart to apply", name);
    note(st->restart, &st->nrestart, name);
}

/* c's value of a string setting becomes old's (a copy). */
static jv_err keep_str(char **v, const char *o)
{
    char *d = o ? jv_strndup(o, strlen(o)) : NULL;
    if (o && !d)
        return JV_ENOMEM;
    jv_free(*v);
    *v = d;
    return JV_OK;
}

/* Settings taken once at start: a new value is named and put back to the
 * one in use, so that c says what runs. */
static jv_err keep_running(jv_reload *st, const jv_config *old, jv_config *c)
{
    jv_err err = JV_OK;
    for (size_t i = 0; i < NF(restart_str) && !err; i++) {
        const char *o =
            *(char *const *)((const char *)old + restart_str[i].off);
        char **v = (char **)((char *)c + restart_str[i].off);
        if (str_eq(o, *v))
            continue;
        needs_restart(st, restart_str[i].name);
        err = keep_str(v, o);
    }
    for (size_t i = 0; i < NF(restart_u64); i++) {
        const uint64_t *o =
            (const uint64_t *)((const char *)old + restart_u64[i].off);
        uint64_t *v = (uint64_t *)((char *)c + restart_u64[i].off);
        if (*o != *v) {
            needs_restart(st, restart_u64[i].name);
            *v = *o;
        }
    }
    for (size_t i = 0; i < NF(restart_bool); i++) {
        const bool *o = (const bool *)((const char *)old + restart_bool[i].off);
        bool *v = (bool *)((char *)c + restart_bool[i].off);
        if (*o != *v) {
            needs_restart(st, restart_bool[i].name);
            *v = *o;
        }
    }
    if (old->sync != c->sync) {
        needs_restart(st, "sync");
        c->sync = old->sync;
    }
    /* With a key file or without decides the listener and whether peer
     * traffic is sealed at all: only another file is a reload. */
    if (!err && !old->cluster_key_file != !c->cluster_key_file) {
        needs_restart(st, "cluster-key-file");
        err = keep_str(&c->cluster_key_file, old->cluster_key_file);
    }
    return err;
}

static jv_err apply_live(jv_node *n, jv_reload *st, const jv_config *c,
                         char *msg, size_t msglen)
{
    const jv_config *old = n->cfg;
    if (old->log_level != c->log_level) {
        jv_log_set_level(c->log_level);
        note(st->changed, &st->nchanged, "log-level");
    }
    if (!str_eq(old->name, c->name))
        note(st->changed, &st->nchanged, "name");
    if (!str_eq(old->cluster_key_file, c->cluster_key_file))
        note(st->changed, &st->nchanged, "cluster-key-file");
    diff_u64(st, old, c, read_fields, NF(read_fields));
    if (diff_u64(st, old, c, rate_fields, NF(rate_fields)))
        jv_auth_set_rate(n->auth, c->rate_limit, c->rate_burst);
    if (diff_u64(st, old, c, repl_fields, NF(repl_fields)) && n->repl)
        jv_repl_set_tuning(n->repl, c->fanout, c->sync_interval_ms,
                           c->peer_timeout_ms);
    if (diff_u64(st, old, c, http_fields, NF(http_fields)) && n->http) {
        jv_http_opts ho;
        jv_http_opts_default(&ho);
        jv_node_api_limits(c, &ho);
        if (jv_http_set_limits(n->http, &ho) != JV_OK) {
            snprintf(msg, msglen, "the session API refused its new limits");
            return JV_EINVAL;
        }
        jv_watch_set_limits(n->watch, &ho);
    }
    /* Last, so that a failure leaves nothing above unapplied; the old
     * size is taken back then (it was held a moment ago). */
    if (diff_u64(st, old, c, cache_fields, NF(cache_fields)) &&
        jv_rcache_resize(n->rcache, c->read_cache) != JV_OK) {
        if (jv_rcache_resize(n->rcache, old->read_cache) == JV_OK)
            snprintf(msg, msglen,
                     "no memory for a read cache of %" PRIu64
                     " bytes: it keeps %" PRIu64,
                     c->read_cache, old->read_cache);
        else /* reads go to the database, as with read-cache 0 */
            snprintf(msg, msglen,
                     "no memory for a read cache of %" PRIu64
                     " bytes, nor of %" PRIu64 " again: it is off",
                     c->read_cache, old->read_cache);
        return JV_EINVAL;
    }
    return JV_OK;
}

/* -- peers ---------------------------------------------------------------- */

typedef struct {
    jv_write_req wr;
    uint64_t now_ms;
    size_t n;
    struct {
        char *addr;
        bool add;
    } op[];
} peer_store;

static jv_err store_peers(jv_store *st, void *arg)
{
    peer_store *p = arg;
    for (size_t i = 0; i < p->n; i++) {
        jv_err err;
        if (p->op[i].add) {
            jv_peer_row row = {.addr = jv_str_c(p->op[i].addr),
                               .added_ms = p->now_ms,
                               .source = jv_str_c("config")};
            err = jv_store_peer_add(st, &row);
        } else {
            err = jv_store_peer_remove(st, jv_str_c(p->op[i].addr));
            if (err == JV_ENOTFOUND)
                err = JV_OK;
        }
        if (err)
            return err;
    }
    return JV_OK;
}

static void peer_store_free(peer_store *p)
{
    for (size_t i = 0; i < p->n; i++)
        jv_free(p->op[i].addr);
    jv_free(p);
}

static void peers_stored(jv_write_req *r)
{
    if (r->err || r->group.result)
        jv_warn("repl",
                "cannot store the reloaded peers (they apply until "
                "a restart): %s",
                jv_strerror(r->err ? r->err : r->group.result));
    peer_store_free(r->arg);
}

static jv_err queue_op(peer_store *p, const char *addr, bool add)
{
    char *d = jv_strndup(addr, strlen(addr));
    if (!d)
        return JV_ENOMEM;
    p->op[p->n].addr = d;
    p->op[p->n++].add = add;
    return JV_OK;
}

/* The configured peers become c's: new ones are dialled, dropped ones
 * forgotten (unless added through the API too); the store follows, so
 * that a restart starts from the same set. */
static jv_err apply_peers(jv_node *n, jv_reload *st, const jv_config *c)
{
    const jv_strlist *was = &n->cfg->peers, *now = &c->peers;
    peer_store *p =
        jv_calloc(1, sizeof(*p) + (was->n + now->n) * sizeof(p->op[0]));
    jv_err err = JV_OK;
    if (!p)
        return JV_ENOMEM;
    for (size_t i = 0; i < now->n && !err; i++) {
        const char *a = now->v[i];
        if (in_list(was, a))
            continue;
        jv_err e = jv_repl_peer_add(n->repl, a);
        if (e == JV_EEXIST) {
            jv_info("repl", "configured peer %s is known already", a);
        } else if (e) {
            jv_warn("repl", "cannot add configured peer %s: %s", a,
                    jv_strerror(e));
        } else {
            err = queue_op(p, a, true); /* jv_repl_peer_add logged it */
        }
    }
    for (size_t i = 0; i < was->n && !err; i++) {
        const char *a = was->v[i];
        if (in_list(now, a))
            continue;
        if (jv_node_api_peer(n, a)) { /* the operator's, not the file's */
            jv_info("repl",
                    "peer %s no longer configured; kept: it was added "
                    "through the API (jarvisctl peers rm)",
                    a);
            continue;
        }
        jv_repl_peer_remove(n->repl, a);
        err = queue_op(p, a, false);
    }
    if (lists_differ(was, now))
        note(st->changed, &st->nchanged, "peers");
    if (err || !p->n) {
        peer_store_free(p);
        return err;
    }
    p->now_ms = jv_now_ms();
    p->wr.group.local = store_peers;
    p->wr.group.local_arg = p;
    p->wr.done = peers_stored;
    p->wr.arg = p;
    jv_writer_submit(n->writer, &p->wr);
    return JV_OK;
}

/* -- trust ---------------------------------------------------------------- */

/* New trust lines bootstrap their ids as at start; a removed line changes
 * nothing (trust is replicated data: jarvisctl trust rm). */
static jv_err apply_trust(jv_node *n, jv_reload *st, const jv_config *c,
                          char *msg, size_t msglen)
{
    const jv_strlist *was = &n->cfg->trust, *now = &c->trust;
    jv_strlist add = {jv_calloc(now->n + 1, sizeof(char *)), 0};
    jv_err err = JV_OK;
    if (!add.v)
        return JV_ENOMEM;
    for (size_t i = 0; i < now->n; i++)
        if (!in_list(was, now->v[i]))
            add.v[add.n++] = now->v[i];
    if (lists_differ(was, now))
        note(st->changed, &st->nchanged, "trust");
    if (add.n)
        err = jv_node_trust_bootstrap(n, &add, msg, msglen);
    jv_free(add.v);
    return err;
}

/* What the node could not take: checked before anything changes. */
static jv_err check_lists(const jv_config *c, char *msg, size_t msglen)
{
    for (size_t i = 0; i < c->peers.n; i++)
        if (jv_transport_addr_check(c->peers.v[i])) {
            snprintf(msg, msglen, "peer %s: not a tcp:// or ipc:// address",
                     c->peers.v[i]);
            return JV_EINVAL;
        }
    for (size_t i = 0; i < c->trust.n; i++) {
        jv_id id;
        if (jv_id_from_hex(c->trust.v[i], strlen(c->trust.v[i]), &id)) {
            snprintf(msg, msglen, "trust %s: not a node id (64 hex digits)",
                     c->trust.v[i]);
            return JV_EINVAL;
        }
    }
    return JV_OK;
}

/* -- reload --------------------------------------------------------------- */

static void log_outcome(const jv_config *c, const jv_reload *st)
{
    char list[512] = "", more[512] = "";
    size_t len = 0;
    for (size_t i = 0; i < st->nchanged && len < sizeof(list); i++)
        len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s",
                                i ? ", " : "", st->changed[i]);
    len = 0;
    for (size_t i = 0; i < st->nrestart && len < sizeof(more); i++)
        len += (size_t)snprintf(more + len, sizeof(more) - len, "%s%s",
                                i ? ", " : "", st->restart[i]);
    jv_info("node", "SIGHUP: settings reloaded from %s: %s%s%s%s",
            c->config_path ? c->config_path : "flags and environment only",
            st->nchanged ? "applied " : "nothing to apply", list,
            st->nrestart ? "; restart needed for " : "", more);
}

static jv_reload *state(jv_node *n)
{
    if (!n->reload)
        n->reload = jv_calloc(1, sizeof(*n->reload));
    return n->reload;
}

void jv_reload_settings(jv_node *n)
{
    jv_reload *st = state(n);
    jv_config *c = jv_calloc(1, sizeof(*c));
    char msg[512] = "out of memory";
    jv_err err = JV_ENOMEM;
    if (n->stopping || !st || !c) {
        jv_free(c);
        if (!n->stopping)
            jv_error("node", "SIGHUP: cannot reload the settings: %s", msg);
        return;
    }
    st->at_ms = jv_now_ms();
    st->nchanged = st->nrestart = 0;
    st->error[0] = '\0';
    if ((err = jv_config_reload(c, n->cfg, msg, sizeof(msg))) ||
        (err = check_lists(c, msg, sizeof(msg))) ||
        (err = keep_running(st, n->cfg, c))) {
        if (err == JV_ENOMEM)
            snprintf(msg, sizeof(msg), "out of memory");
        st->nchanged = st->nrestart = 0;
        jv_error("node",
                 "SIGHUP: settings not reloaded, all kept as they "
                 "were: %s",
                 msg);
        snprintf(st->error, sizeof(st->error), "%s", msg);
        jv_config_fini(c);
        jv_free(c);
        return;
    }
    if ((err = apply_live(n, st, c, msg, sizeof(msg))) ||
        (n->repl && (err = apply_peers(n, st, c))) ||
        (err = apply_trust(n, st, c, msg, sizeof(msg)))) {
        if (err == JV_ENOMEM)
            snprintf(msg, sizeof(msg), "out of memory");
        jv_error("node", "SIGHUP: settings reloaded in part: %s", msg);
        snprintf(st->error, sizeof(st->error), "%s", msg);
    }
    /* From here on c is the settings in use; the ones a reload made
     * before are freed (those of the command line belong to main). */
    n->cfg = c;
    if (st->cfg) {
        jv_config_fini(st->cfg);
        jv_free(st->cfg);
    }
    st->cfg = c;
    if (!st->error[0])
        log_outcome(c, st);
}

void jv_reload_keys(jv_node *n, bool changed, const char *error)
{
    jv_reload *st = n->reload;
    if (!st)
        return;
    if (error) {
        if (!st->error[0])
            snprintf(st->error, sizeof(st->error),
                     "cluster key file: %s; the keys in use are kept", error);
        return;
    }
    for (size_t i = 0; i < st->nchanged; i++)
        if (!strcmp(st->changed[i], "cluster-key-file"))
            return;
    if (changed)
        note(st->changed, &st->nchanged, "cluster-key-file");
}

static json_t *names_json(const char *const *names, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, json_string(names[i]));
    return a;
}

json_t *jv_reload_json(const jv_node *n)
{
    const jv_reload *st = n->reload;
    char at[40];
    if (!st || !st->at_ms)
        return json_null();
    jv_rfc3339(st->at_ms, at, sizeof(at));
    return json_pack("{s:s,s:o,s:o,s:o}", "at", at, "changed",
                     names_json(st->changed, st->nchanged), "restart_needed",
                     names_json(st->restart, st->nrestart), "error",
                     st->error[0] ? json_string(st->error) : json_null());
}

void jv_reload_free(jv_node *n)
{
    if (!n->reload)
        return;
    if (n->reload->cfg) {
        jv_config_fini(n->reload->cfg);
        jv_free(n->reload->cfg);
    }
    jv_free(n->reload);
    n->reload = NULL;
}
