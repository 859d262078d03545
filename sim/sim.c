#include "sim.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "backup.h"
#include "log.h"
#include "query.h"
#include "sim_int.h"
#include "simcheck.h"
#include "snapshot.h"

#define MAX_SKEW_MS 60000

void jv_sim_opts_default(jv_sim_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->nodes = 8;
    o->duration_ms = 60000;
    o->scenario = "faults";
    o->peers = 4;
    o->fanout = 3;
    o->interval_ms = 1000;
    o->timeout_ms = 2000;
    o->lat_min_us = 500;
    o->lat_mean_us = 2000;
    o->loss = 0.01;
    o->dup = 0.01;
    o->write_rate = 20;
    o->burst = 100;
    o->warmup = 0;
    o->settle_ms = 300000;
    o->verify = true;
}

static void trace(jv_sim *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void trace(jv_sim *w, const char *fmt, ...)
{
    if (!w->o.trace)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(w->o.trace, "%10.3f  ", (double)w->q.now_us / 1e6);
    vfprintf(w->o.trace, fmt, ap);
    fputc('\n', w->o.trace);
    va_end(ap);
}

static void *must(void *p)
{
    if (!p) {
        fprintf(stderr, "jarvis-sim: out of memory\n");
        abort();
    }
    return p;
}

static void later(jv_sim *w, uint64_t delay_us, jv_simq_fn fn, void *arg)
{
    if (jv_simq_at(&w->q, delay_us, fn, arg))
        must(NULL);
}

/* -- nodes ----------------------------------------------------------------- */

static uint64_t store_clock(void *arg)
{
    return jv__sim_clock(arg);
}

static jv_err node_open(simnode *n)
{
    jv_store_opts so;
    jv_store_opts_default(&so);
    so.create = true;
    so.cache_kib = 256;
    jv_err err = jv_store_open(":memory:", &so, &n->st, NULL, 0);
    if (err || (err = jv_store_set_self(n->st, &n->node.kp.pk)))
        return err;
    jv_store_set_max_skew(n->st, MAX_SKEW_MS);
    jv_store_set_clock(n->st, store_clock, n);
    n->node.rst = n->st;
    n->node.cfg = &n->cfg;
    n->cfg.name = n->addr;
    n->cfg.max_skew_ms = MAX_SKEW_MS;
    return JV_OK;
}

static jv_err node_start(simnode *n)
{
    jv_sim *w = n->w;
    jv_store_stats st;
    jv_err err;
    char msg[256];
    jv_metrics_free(n->node.metrics);
    if (!(n->node.metrics = jv_metrics_new()))
        return JV_ENOMEM;
    /* A restarted node's clock starts above every stamp it holds. */
    jv_hlc_init(&n->node.hlc, MAX_SKEW_MS);
    if ((err = jv_store_stats_get(n->st, &st)))
        return err;
    jv_hlc_seed(&n->node.hlc, st.max_hlc);
    /* As the node's start: the trust view from the store, then the
     * writer's jobs keep it. */
    jv_trustview_free(n->node.trust);
    jv_trustview_free(n->after.trust);
    jv_auth_ckeys_free(n->after.ckeys);
    n->node.trust = n->after.trust = NULL;
    n->after.ckeys = NULL;
    if ((err = jv_trustview_read(n->st, &n->node.trust)))
        return err;
    n->after.trust_gen = jv_store_trust_gen(n->st);
    n->after.dirty = n->after.vv_due = false;
    n->own_head = 0; /* a new writer: the vector read at start covers it */
    jv_repl_opts ro = {.listen = n->addr,
                       .fanout = w->o.fanout,
                       .interval_ms = w->o.interval_ms,
                       .max_message = 8u << 20,
                       .timeout_ms = w->o.timeout_ms,
                       .backoff_min_ms = 250,
                       .backoff_max_ms = 30000};
    jv_repl_host host;
    n->up = true;
    jv__simhost_make(n, &host);
    if ((err = jv_repl_start(&n->node, &host, &ro, &n->repl, NULL, 0, msg,
                             sizeof(msg)))) {
        fprintf(stderr, "jarvis-sim: node %u: %s\n", n->idx, msg);
        n->up = false;
        return err;
    }
    n->node.repl = n->repl;
    for (size_t i = 0; i < n->npeers; i++)
        if ((err = jv_repl_peer_add(n->repl, w->nodes[n->peers[i]].addr)))
            return err;
    jv__simhost_link(n, true);
    return JV_OK;
}

static void on_stopped(void *arg)
{
    simnode *n = arg;
    n->repl = NULL;
    n->node.repl = NULL;
}

/* Kills n: what it had not committed is gone; its store stays (disk). */
static void node_crash(simnode *n)
{
    /* A killed process says nothing: its jobs end without logging. */
    jv_log_level was = jv_log_get_level();
    jv_log_set_level((jv_log_level)(JV_LOG_ERROR + 1));
    n->up = false;
    n->gen++;
    jv__simhost_link(n, false);
    jv_repl_stop(n->repl, on_stopped, n);
    jv__simhost_crash(n);
    jv_log_set_level(was);
}

static jv_err node_init(jv_sim *w, unsigned i)
{
    simnode *n = &w->nodes[i];
    n->w = w;
    n->idx = i;
    snprintf(n->addr, sizeof(n->addr), "tcp://sim-%u:7000", i);
    n->node.kp = w->keys[i];
    n->node.origin = w->keys[i];
    jv_id_hex(&n->node.kp.pk, n->node.self_hex);
    /* Clocks a little off, each running a little fast or slow. */
    n->skew_us = (int64_t)jv_simq_below(&w->q, 4000001) - 2000000;
    n->drift_ppm = (int64_t)jv_simq_below(&w->q, 401) - 200;
    return node_open(n);
}

/* Each node dials its ring successor and `peers` others at random. */
static void pick_peers(jv_sim *w, simnode *n, unsigned among)
{
    unsigned want = w->o.peers + 1 < among ? w->o.peers + 1 : among - 1;
    n->peers = must(jv_calloc(want ? want : 1, sizeof(unsigned)));
    n->npeers = 0;
    if (!want)
        return;
    n->peers[n->npeers++] = (n->idx + 1) % among;
    while (n->npeers < want) {
        unsigned c = (unsigned)jv_simq_below(&w->q, among);
        bool dup = c == n->idx;
        for (size_t k = 0; k < n->npeers && !dup; k++)
            dup = n->peers[k] == c;
        if (!dup)
            n->peers[n->npeers++] = c;
    }
}

/* -- the founding batch ---------------------------------------------------- */

typedef struct {
    simnode *to;
    jv_err err;
} carry;

static jv_err carry_row(void *arg, const jv_log_row *row)
{
    carry *c = arg;
    jv_remote_batch rb = {.body = row->body, .len = row->len};
    memcpy(rb.sig, row->sig, JV_SIG_LEN);
    jv_write_req r;
    memset(&r, 0, sizeof(r));
    r.remote = &rb;
    r.nremote = 1;
    jv_writer_run(c->to->st, &c->to->node.origin, 0, &r);
    if (r.err || rb.result)
        c->err = r.err ? r.err : rb.result;
    return JV_OK;
}

/* Node 0 trusts every node (those joining later too) in one commit; the
 * others receive that batch as an operator's bundle would bring it, before
 * they start. Applying it needs no trust of its own. */
static jv_err genesis_make(jv_sim *w)
{
    simnode *f = &w->nodes[0];
    jv_write_req wr;
    jv_intent *in = must(jv_calloc(w->cap, sizeof(*in)));
    for (size_t i = 0; i < w->cap; i++) {
        in[i].op.kind = JV_OP_TRUST;
        in[i].op.trust.node = w->keys[i].pk;
        in[i].op.trust.trusted = true;
        in[i].op.trust.name = jv_str_c("");
        in[i].op.trust.stamp = 1;
    }
    memset(&wr, 0, sizeof(wr));
    wr.group.intents = in;
    wr.group.n = w->cap;
    uint64_t hlc;
    jv_hlc_init(&f->node.hlc, MAX_SKEW_MS);
    jv_err err = jv_hlc_now(&f->node.hlc, jv__sim_clock(f), &hlc);
    if (!err) {
        jv_writer_run(f->st, &f->node.origin, hlc, &wr);
        err = wr.err ? wr.err : wr.group.result;
    }
    jv_free(in);
    if (!err) {
        f->batches = w->genesis = wr.info.nbatches;
        w->s.batches = f->batches;
    }
    return err;
}

static jv_err genesis_carry(jv_sim *w, simnode *to)
{
    carry c = {to, JV_OK};
    jv_err err = jv_store_log_after(w->nodes[0].st, &w->keys[0].pk, 0,
                                    w->genesis, SIZE_MAX, carry_row, &c);
    to->batches = w->genesis;
    return err ? err : c.err;
}

/* -- writes ---------------------------------------------------------------- */

#define MAX_INTENTS 3

typedef struct {
    jv_write_req wr;
    jv_intent in[MAX_INTENTS];
    char text[MAX_INTENTS][2][32];
    simnode *n;
} swrite;

static void write_done(jv_write_req *r)
{
    swrite *sw = (swrite *)r;
    jv_sim *w = sw->n->w;
    if (!r->err && !r->group.result && r->info.last_seq) {
        uint64_t lie = w->o.test_lie && !w->s.acked ? 1000000 : 0;
        jv__simcheck_acked(w, sw->n->idx, r->info.last_seq + lie);
    }
    w->s.acked += !r->err && !r->group.result;
    w->inflight--;
    jv_free(sw);
}

static void fill_intent(jv_sim *w, swrite *sw, size_t i, uint64_t stamp,
                        bool sure)
{
    jv_intent *in = &sw->in[i];
    char *a = sw->text[i][0], *b = sw->text[i][1];
    uint64_t k = jv_simq_below(&w->q, 12), v = jv_simq_u64(&w->q) % 1000000;
    uint64_t kind = jv_simq_below(&w->q, 5);
    /* sure: an audit entry, a configuration key or an archive entry added,
     * never a counter step (refused when 0) or a removal (none when the
     * key is not there). */
    switch (sure ? 1 + kind % 3 : kind) {
    case 0:
        in->op.kind = JV_OP_COUNTER;
        snprintf(a, 32, "c%u", (unsigned)k % 4);
        in->op.counter.name = jv_str_c(a);
        in->by = 1 + (int64_t)(v % 5) - (v % 7 == 0 ? 3 : 0);
        break;
    case 1:
        in->op.kind = JV_OP_AUDIT;
        snprintf(a, 32, "sim.%u", (unsigned)k);
        snprintf(b, 32, "v%" PRIu64, v);
        in->op.audit.time_ms = jv__sim_clock(sw->n);
        in->op.audit.actor = jv_str_c("sim");
        in->op.audit.action = jv_str_c(a);
        in->op.audit.target = jv_str_c(b);
        in->op.audit.detail = jv_str_c("");
        break;
    case 2:
        in->op.kind = JV_OP_CONFIG;
        snprintf(a, 32, "k%u", (unsigned)k);
        snprintf(b, 32, "\"v%" PRIu64 "\"", v);
        in->op.config.key = jv_str_c(a);
        in->op.config.value = jv_str_c(b);
        in->op.config.stamp = stamp;
        break;
    case 3:
        in->op.kind = JV_OP_ARCHIVE_ADD;
        snprintf(a, 32, "a%u", (unsigned)k);
        snprintf(b, 32, "{\"v\":%" PRIu64 "}", v);
        in->op.add.key = jv_str_c(a);
        in->op.add.value = jv_str_c(b);
        in->op.add.stamp = stamp;
        break;
    default:
        in->op.kind = JV_OP_ARCHIVE_RM;
        snprintf(a, 32, "a%u", (unsigned)k);
        in->op.rm.key = jv_str_c(a);
        break;
    }
}

/* One request on node n: one to three operations, all or none. Some make
 * none (an archive key removed that is not there) or are refused whole (a
 * counter step of 0); a `sure` one starts with an operation that is always
 * made, so that it commits unless a later step of 0 fails it (about one
 * in a hundred: over the warm-up's rounds, every node writes). */
static void write_one(jv_sim *w, simnode *n, bool sure)
{
    swrite *sw = must(jv_calloc(1, sizeof(*sw)));
    size_t k = 1 + jv_simq_below(&w->q, MAX_INTENTS);
    uint64_t stamp;
    sw->n = n;
    w->s.writes++;
    if (jv_hlc_now(&n->node.hlc, jv__sim_clock(n), &stamp)) {
        jv_free(sw);
        return;
    }
    w->inflight++;
    for (size_t i = 0; i < k; i++)
        fill_intent(w, sw, i, stamp, sure && i == 0);
    sw->wr.group.intents = sw->in;
    sw->wr.group.n = k;
    sw->wr.done = write_done;
    jv__simhost_write(n, &sw->wr);
}

/* -- faults ---------------------------------------------------------------- */

static uint64_t ms_between(jv_sim *w, uint64_t lo, uint64_t hi)
{
    return (lo + jv_simq_below(&w->q, hi - lo + 1)) * 1000;
}

static void restart(void *arg)
{
    simnode *n = arg;
    if (n->up || n->w->ending)
        return;    /* the heal restarted it already, or the run is over */
    if (n->repl) { /* still stopping */
        later(n->w, 1000, restart, n);
        return;
    }
    trace(n->w, "restart node %u", n->idx);
    if (node_start(n))
        must(NULL);
}

static void crash(jv_sim *w, simnode *n, uint64_t down_us)
{
    if (!n->up || !n->repl)
        return;
    trace(w, "crash node %u for %.1f s", n->idx, (double)down_us / 1e6);
    w->s.crashes++;
    n->restarts++;
    node_crash(n);
    later(w, down_us, restart, n);
}

typedef struct {
    jv_sim *w;
    uint64_t gen;
} net_fault;

static void heal_net(void *arg)
{
    net_fault f = *(net_fault *)arg;
    jv_sim *w = f.w;
    jv_free(arg);
    if (f.gen != w->net_gen || w->healing)
        return; /* another fault of the network came since */
    w->partition = false;
    w->loss = w->o.loss;
    w->dup = w->o.dup;
    trace(w, "network back to its baseline");
}

static void heal_later(jv_sim *w, uint64_t delay_us)
{
    net_fault *f = must(jv_malloc(sizeof(*f)));
    *f = (net_fault){w, ++w->net_gen};
    later(w, delay_us, heal_net, f);
}

static void fault(void *arg)
{
    jv_sim *w = arg;
    if (w->healing)
        return;
    uint64_t r = jv_simq_below(&w->q, 100);
    if (r < 30) {
        unsigned ups = 0;
        for (size_t i = 0; i < w->n; i++)
            ups += w->nodes[i].up;
        simnode *n = &w->nodes[jv_simq_below(&w->q, w->n)];
        if (ups > 1)
            crash(w, n, ms_between(w, 200, 8000));
    } else if (r < 55) {
        w->partition = true;
        w->asymmetric = jv_simq_below(&w->q, 3) == 0;
        for (size_t i = 0; i < w->n; i++)
            w->nodes[i].side = (unsigned)jv_simq_below(&w->q, 2);
        w->s.partitions++;
        trace(w, "%s partition", w->asymmetric ? "one-way" : "two-way");
        heal_later(w, ms_between(w, 500, 10000));
    } else if (r < 75) {
        w->loss = 0.05 + jv_simq_unit(&w->q) * 0.45;
        trace(w, "loss %.0f %%", w->loss * 100);
        heal_later(w, ms_between(w, 500, 5000));
    } else if (r < 85) {
        w->dup = 0.1 + jv_simq_unit(&w->q) * 0.3;
        trace(w, "duplication %.0f %%", w->dup * 100);
        heal_later(w, ms_between(w, 500, 5000));
    } else {
        simnode *n = &w->nodes[jv_simq_below(&w->q, w->n)];
        n->skew_us += (int64_t)jv_simq_below(&w->q, 2000001) - 1000000;
        trace(w, "clock of node %u steps to %+.3f s", n->idx,
              (double)n->skew_us / 1e6);
    }
    later(w, ms_between(w, 300, 4000), fault, w);
}

/* Every simulated minute, 10 % of the nodes restart (each at a random
 * moment of the minute) and 1 % new ones join. */
static void join(void *arg)
{
    jv_sim *w = arg;
    if (w->healing || w->n == w->cap)
        return;
    simnode *n = &w->nodes[w->n];
    unsigned among = (unsigned)w->n;
    w->n++;
    n->joined = true;
    pick_peers(w, n, among + 1); /* its ring successor is node 0 */
    w->s.joins++;
    trace(w, "node %u joins", n->idx);
    if (genesis_carry(w, n) || node_start(n))
        must(NULL);
}

static void churn_one(void *arg)
{
    jv_sim *w = arg;
    if (w->healing)
        return;
    crash(w, &w->nodes[jv_simq_below(&w->q, w->n)], ms_between(w, 1000, 5000));
}

static void churn_minute(void *arg)
{
    jv_sim *w = arg;
    if (w->healing)
        return;
    unsigned restarts = (unsigned)(w->n / 10), joins = (unsigned)(w->n / 100);
    for (unsigned i = 0; i < restarts; i++)
        later(w, ms_between(w, 0, 59999), churn_one, w);
    for (unsigned i = 0; i < joins; i++)
        later(w, ms_between(w, 0, 59999), join, w);
    later(w, 60000000, churn_minute, w);
}

static void writer_tick(void *arg)
{
    jv_sim *w = arg;
    if (w->healing)
        return;
    simnode *n = &w->nodes[jv_simq_below(&w->q, w->n)];
    if (n->up && n->repl)
        write_one(w, n, false);
    later(w, jv_simq_exp(&w->q, 1e6 / w->o.write_rate) + 1, writer_tick, w);
}

/* -- running --------------------------------------------------------------- */

static bool converged(const jv_sim *w)
{
    if (w->inflight)
        return false; /* writes still on their way to a commit */
    for (size_t i = 0; i < w->n; i++)
        if (!w->nodes[i].up || w->nodes[i].batches != w->s.batches)
            return false;
    return true;
}

static void run_until(jv_sim *w, uint64_t until_us)
{
    while (jv_simq_step(&w->q, until_us))
        ;
}

/* Runs until every node holds every batch, checking every 5 ms; false
 * after settle_ms. */
static bool converge(jv_sim *w, uint64_t *took_ms)
{
    uint64_t t0 = w->q.now_us, end = t0 + w->o.settle_ms * 1000;
    while (!converged(w)) {
        if (w->q.now_us >= end)
            return false;
        run_until(w, w->q.now_us + 5000);
    }
    *took_ms = (w->q.now_us - t0) / 1000;
    return true;
}

/* Every fault ends: the network is whole again, every node is up. */
static void heal(jv_sim *w)
{
    w->healing = true;
    w->partition = false;
    w->loss = w->o.loss; /* the baseline stays */
    w->dup = w->o.dup;
    w->net_gen++;
    for (size_t i = 0; i < w->n; i++)
        if (!w->nodes[i].up)
            restart(&w->nodes[i]);
    trace(w, "every fault healed");
}

static jv_err make_keys(jv_sim *w)
{
    w->keys = jv_calloc(w->cap, sizeof(*w->keys));
    w->byid = jv_calloc(w->cap, sizeof(*w->byid));
    w->acked = jv_calloc(w->cap, sizeof(*w->acked));
    w->lag = jv_calloc(JV_SIM_LAG_BUCKETS, sizeof(*w->lag));
    w->nodes = jv_calloc(w->cap, sizeof(*w->nodes));
    if (!w->keys || !w->byid || !w->acked || !w->lag || !w->nodes)
        return JV_ENOMEM;
    for (size_t i = 0; i < w->cap; i++) {
        uint8_t seed[crypto_sign_SEEDBYTES];
        for (size_t k = 0; k < sizeof(seed); k += 8) {
            uint64_t r = jv_simq_u64(&w->q);
            memcpy(seed + k, &r, 8);
        }
        crypto_sign_seed_keypair(w->keys[i].pk.b, w->keys[i].sk, seed);
        w->byid[i] = (jv_sim_key){w->keys[i].pk, (unsigned)i};
    }
    qsort(w->byid, w->cap, sizeof(*w->byid), jv__simcheck_cmp_id);
    return JV_OK;
}

static jv_err setup(jv_sim *w)
{
    jv_err err;
    bool churn = strcmp(w->o.scenario, "churn") == 0;
    uint64_t minutes = (w->o.duration_ms + 59999) / 60000;
    w->n = w->o.nodes;
    w->cap = w->n + (churn ? w->n / 100 * minutes : 0);
    w->loss = w->o.loss;
    w->dup = w->o.dup;
    if ((err = make_keys(w)))
        return err;
    for (size_t i = 0; i < w->cap; i++)
        if ((err = node_init(w, (unsigned)i)))
            return err;
    for (size_t i = 0; i < w->n; i++) {
        w->nodes[i].joined = true;
        pick_peers(w, &w->nodes[i], (unsigned)w->n);
    }
    if ((err = genesis_make(w)))
        return err;
    for (size_t i = 1; i < w->n; i++)
        if ((err = genesis_carry(w, &w->nodes[i])))
            return err;
    for (size_t i = 0; i < w->n; i++)
        if ((err = node_start(&w->nodes[i])))
            return err;
    return JV_OK;
}

typedef struct {
    uint64_t msgs, bytes, raw, dups;
} tally;

static void totals(jv_sim *w, tally *t)
{
    t->msgs = w->s.messages;
    t->bytes = w->s.msg_bytes;
    t->raw = t->dups = 0;
    for (size_t i = 0; i < w->n; i++) {
        jv_metrics *m = w->nodes[i].node.metrics;
        t->raw += (uint64_t)jv_metrics_get(
            m, "jarvis_repl_bytes_uncompressed_total", "direction=\"out\"");
        t->dups += (uint64_t)jv_metrics_get(m, "jarvis_repl_batches_total",
                                            "result=\"duplicate\"");
    }
}

static void gap_write(void *arg)
{
    simnode *n = arg;
    if (n->up)
        write_one(n->w, n, false);
}

/* The i-th write of the burst, on n: now, or burst_gap_ms after the one
 * before (each its own batch then, as a client's requests one after the
 * other are). */
static void burst_write(jv_sim *w, simnode *n, unsigned i)
{
    if (w->o.burst_gap_ms)
        later(w, (uint64_t)i * w->o.burst_gap_ms * 1000, gap_write, n);
    else
        write_one(w, n, false);
}

/* The burst's writes, on random nodes: any, or (`writers`) a random few,
 * the same news for every size of cluster. */
static void burst_writes(jv_sim *w)
{
    if (!w->o.writers || w->o.writers >= w->n) {
        for (unsigned i = 0; i < w->o.burst; i++)
            burst_write(w, &w->nodes[jv_simq_below(&w->q, w->n)], i);
        return;
    }
    size_t k = w->o.writers;
    size_t *who = must(jv_calloc(w->n, sizeof(*who)));
    for (size_t i = 0; i < w->n; i++)
        who[i] = i;
    for (size_t i = 0; i < k; i++) { /* the first k of a shuffle */
        size_t j = i + jv_simq_below(&w->q, w->n - i);
        size_t t = who[i];
        who[i] = who[j];
        who[j] = t;
    }
    for (unsigned i = 0; i < w->o.burst; i++)
        burst_write(w, &w->nodes[who[jv_simq_below(&w->q, k)]], i);
    jv_free(who);
}

/* Burst: rounds in which every node writes once (and commits: a node
 * that has never written has no tree yet, and its first news floods) and
 * all converge, so that the pushes have settled into their trees as in a
 * cluster that has been running. */
static bool warm_up(jv_sim *w)
{
    uint64_t took;
    for (unsigned k = 0; k < w->o.warmup; k++) {
        trace(w, "warm-up round %u", k + 1);
        for (size_t i = 0; i < w->n; i++)
            write_one(w, &w->nodes[i], true);
        if (!converge(w, &took))
            return false;
        run_until(w, w->q.now_us + 2 * w->o.interval_ms * 1000);
    }
    return true;
}

static jv_err scenario(jv_sim *w, char *msg, size_t msglen)
{
    const char *sc = w->o.scenario;
    uint64_t took = 0;
    tally t0, t1;
    if (strcmp(sc, "burst") == 0) {
        /* A quiet cluster first: every node has met its peers. */
        run_until(w, w->q.now_us + 3 * w->o.interval_ms * 1000);
        if (!warm_up(w))
            goto stuck;
        jv_store_stats st0, st1;
        if (jv_store_stats_get(w->nodes[0].st, &st0))
            goto unreadable;
        totals(w, &t0);
        w->healing = true;
        trace(w, "burst of %u writes", w->o.burst);
        burst_writes(w);
        /* Converged is only what has been written: the last write first. */
        run_until(w, w->q.now_us +
                         (uint64_t)w->o.burst * w->o.burst_gap_ms * 1000);
        if (!converge(w, &took))
            goto stuck;
        if (jv_store_stats_get(w->nodes[0].st, &st1))
            goto unreadable;
        w->s.ops = st1.ops - st0.ops;
        w->s.burst_batches = st1.batches - st0.batches;
        w->s.op_bytes = st1.log_bytes - st0.log_bytes +
                        (st1.batches - st0.batches) * JV_SIG_LEN;
    } else if (strcmp(sc, "faults") == 0 || strcmp(sc, "churn") == 0) {
        later(w, 0, writer_tick, w);
        later(w, 0, strcmp(sc, "churn") ? fault : churn_minute, w);
        run_until(w, w->q.now_us + w->o.duration_ms * 1000);
        heal(w);
        totals(w, &t0);
        if (!converge(w, &took))
            goto stuck;
    } else {
        snprintf(msg, msglen, "unknown scenario '%s'", sc);
        return JV_EINVAL;
    }
    w->s.converge_ms = took;
    totals(w, &t1);
    w->s.conv_msgs = t1.msgs - t0.msgs;
    w->s.conv_bytes = t1.bytes - t0.bytes;
    /* Restarts reset the nodes' metrics: none in a burst. */
    w->s.conv_raw_bytes = t1.raw > t0.raw ? t1.raw - t0.raw : 0;
    w->s.conv_dups = t1.dups > t0.dups ? t1.dups - t0.dups : 0;
    trace(w, "converged in %" PRIu64 " ms", took);
    return JV_OK;
unreadable:
    snprintf(msg, msglen, "cannot read node 0's store: %s",
             jv_store_errmsg(w->nodes[0].st));
    return JV_ESTORAGE;
stuck:
    if (w->broken[0])
        snprintf(msg, msglen, "%s", w->broken);
    else
        snprintf(msg, msglen,
                 "no convergence within %" PRIu64 " s of healing: %s",
                 w->o.settle_ms / 1000, jv__simcheck_behind(w));
    return JV_ESTATE;
}

static void teardown(jv_sim *w)
{
    w->ending = true;
    for (size_t i = 0; i < w->n; i++)
        if (w->nodes[i].up)
            node_crash(&w->nodes[i]);
    w->healing = true;
    while (w->q.n)
        run_until(w, UINT64_MAX);
    for (size_t i = 0; w->nodes && i < w->cap; i++) {
        simnode *n = &w->nodes[i];
        jv_store_close(n->st);
        jv_metrics_free(n->node.metrics);
        jv_trustview_free(n->node.trust);
        jv_trustview_free(n->after.trust);
        jv_auth_ckeys_free(n->after.ckeys);
        jv_vv_fini(&n->after.vv);
        jv_free(n->peers);
        jv_free(n->commits);
        jv_keypair_wipe(&n->node.kp);
        jv_keypair_wipe(&n->node.origin);
    }
    jv__simhost_free_peers(w);
    for (size_t i = 0; w->keys && i < w->cap; i++)
        jv_keypair_wipe(&w->keys[i]);
    jv_free(w->nodes);
    jv_free(w->keys);
    jv_free(w->byid);
    jv_free(w->acked);
    jv_free(w->lag);
    jv_simq_fini(&w->q);
}

jv_err jv_sim_run(const jv_sim_opts *o, jv_sim_stats *s, char *msg,
                  size_t msglen)
{
    jv_sim *w = jv_calloc(1, sizeof(*w));
    jv_err err;
    if (!w)
        return JV_ENOMEM;
    w->o = *o;
    snprintf(msg, msglen, "ok");
    jv_simq_init(&w->q, o->seed);
    if ((err = setup(w)))
        snprintf(msg, msglen, "cannot set the simulation up: %s",
                 jv_strerror(err));
    else if (!(err = scenario(w, msg, msglen)))
        err = jv__simcheck_end(w, msg, msglen);
    w->s.events = w->q.ran;
    w->s.sim_ms = w->q.now_us / 1000;
    w->s.lag_p50_ms = jv__simcheck_lag(w, 0.50);
    w->s.lag_p99_ms = jv__simcheck_lag(w, 0.99);
    *s = w->s;
    teardown(w);
    jv_free(w);
    return err;
}
