/*
 * simhost.c - a simulated node's jv_repl_host: its clock, its timer, its
 * writer and reader "threads" as events on the world's queue, and the
 * network (transport.h's contract over latency, loss, duplication,
 * reordering and partitions).
 *
 * Every event checks whether it still matters when it comes due: a
 * crashed node's events find its generation moved on and do nothing.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "sim_int.h"
#include "simcheck.h"

#define EPOCH_MS 1798761600000ull /* 2027-01-01, the virtual clocks' zero */

static void *must(void *p)
{
    if (!p)
        abort(); /* the simulator has no way to go on */
    return p;
}

static void at(jv_sim *w, uint64_t delay_us, jv_simq_fn fn, void *arg)
{
    if (jv_simq_at(&w->q, delay_us, fn, arg))
        abort();
}

/* -- clock, timer ---------------------------------------------------------- */

uint64_t jv__sim_clock(simnode *n)
{
    int64_t t = (int64_t)n->w->q.now_us;
    t += t / 1000000 * n->drift_ppm + t % 1000000 * n->drift_ppm / 1000000;
    t += n->skew_us;
    return EPOCH_MS + (t > 0 ? (uint64_t)t / 1000 : 0);
}

static uint64_t h_now(void *ctx)
{
    return jv__sim_clock(ctx);
}

typedef struct {
    simnode *n;
    uint64_t gen, tgen;
} tick;

static void on_tick(void *arg)
{
    tick *t = arg;
    simnode *n = t->n;
    bool due = n->gen == t->gen && n->timer_gen == t->tgen && n->tfn;
    jv_free(t);
    if (due) {
        void (*fn)(void *) = n->tfn;
        n->tfn = NULL;
        fn(n->targ);
    }
}

static void h_timer_start(void *ctx, uint64_t delay_ms, void (*fn)(void *),
                          void *arg)
{
    simnode *n = ctx;
    tick *t = must(jv_malloc(sizeof(*t)));
    *t = (tick){n, n->gen, ++n->timer_gen};
    n->tfn = fn;
    n->targ = arg;
    at(n->w, delay_ms * 1000, on_tick, t);
}

static void h_timer_stop(void *ctx)
{
    simnode *n = ctx;
    n->timer_gen++;
    n->tfn = NULL;
}

/* A small delay for a thread's turn, in microseconds. */
static uint64_t turn(jv_sim *w)
{
    return 100 + jv_simq_below(&w->q, 900);
}

/* A step of a job that reads no store: a thread's wake-up and tens of
 * microseconds of CPU. */
static uint64_t light_turn(jv_sim *w)
{
    return 10 + jv_simq_below(&w->q, 90);
}

/* -- the writer ------------------------------------------------------------ */

typedef struct {
    simnode *n;
    uint64_t gen;
} nref;

static nref *ref(simnode *n)
{
    nref *r = must(jv_malloc(sizeof(*r)));
    *r = (nref){n, n->gen};
    return r;
}

static simnode *deref(void *arg)
{
    nref *r = arg;
    simnode *n = r->n->gen == r->gen ? r->n : NULL;
    jv_free(r);
    return n;
}

static void writer_done(void *arg);

/* What the job put in n's log: its own batches (one commit for all the
 * local groups) and the peers' it applied. */
static void count_commit(simnode *n, jv_write_req *job)
{
    jv_sim *w = n->w;
    for (jv_write_req *r = job; r; r = r->next) {
        if (!r->err && (r->group.n || r->group.local) && r->info.nbatches) {
            n->batches += r->info.nbatches;
            w->s.batches += r->info.nbatches;
            jv__simcheck_committed(w, n->idx, r->info.last_seq);
            break; /* every local request shares the commit's info */
        }
    }
    for (jv_write_req *r = job; r; r = r->next) {
        if (r->err)
            continue;
        n->batches += r->stats.applied;
        for (size_t i = 0; i < r->nremote; i++) {
            jv_batch_head h;
            if (r->remote[i].result == JV_OK &&
                jv_batch_peek(r->remote[i].body, r->remote[i].len, &h) == JV_OK)
                jv__simcheck_applied(w, &h.origin, h.last_seq);
        }
    }
    /* During the run: no node holds more batches than were ever made
     * (a batch applied twice, or one counted that no commit made). */
    if (n->batches > w->s.batches && !w->broken[0])
        snprintf(w->broken, sizeof(w->broken),
                 "node %u holds %" PRIu64 " batches of the %" PRIu64
                 " ever committed, at %.3f s",
                 n->idx, n->batches, w->s.batches, (double)w->q.now_us / 1e6);
}

static void writer_run(void *arg)
{
    simnode *n = deref(arg);
    if (!n)
        return;
    jv_write_req *job = n->wq;
    n->wq = n->wq_tail = NULL;
    uint64_t hlc;
    jv_err err = jv_hlc_now(&n->node.hlc, jv__sim_clock(n), &hlc);
    if (err)
        for (jv_write_req *r = job; r; r = r->next)
            r->err = err;
    else
        jv_writer_run(n->st, &n->node.origin, hlc, job);
    jv_trustview_free(n->after.trust); /* a crash lost the last ones */
    jv_auth_ckeys_free(n->after.ckeys);
    n->after.trust = NULL;
    n->after.ckeys = NULL;
    jv_writer_read_after(n->st, job, &n->after);
    uint64_t head = jv_writer_own_head(job, &n->after, &n->node.origin.pk);
    if (head > n->own_head)
        n->own_head = head;
    count_commit(n, job);
    n->wdone = job;
    at(n->w, turn(n->w), writer_done, ref(n));
}

static void writer_kick(simnode *n)
{
    if (n->wrunning || !n->wq)
        return;
    n->wrunning = true;
    at(n->w, turn(n->w), writer_run, ref(n));
}

static void call_done(jv_write_req *job)
{
    while (job) {
        jv_write_req *next = job->next;
        job->next = NULL;
        job->done(job);
        job = next;
    }
}

static void writer_done(void *arg)
{
    simnode *n = deref(arg);
    if (!n)
        return;
    jv_write_req *job = n->wdone;
    bool local = false;
    n->wdone = NULL;
    n->wrunning = false;
    for (jv_write_req *r = job; r; r = r->next)
        local |= !r->err && r->info.nops;
    /* As the node's observer does: the trust view and the vector move,
     * and news of ours goes out, before the requests hear back. */
    if (n->after.trust) {
        jv_trustview_free(n->node.trust);
        n->node.trust = n->after.trust;
        n->after.trust = NULL;
    }
    jv_auth_ckeys_free(n->after.ckeys); /* the simulator keeps no keys */
    n->after.ckeys = NULL;
    if (n->repl)
        jv_repl_committed(n->repl, n->after.vv_read ? &n->after.vv : NULL,
                          jv_writer_own_seq(job), local);
    call_done(job);
    writer_kick(n);
}

static uint64_t h_own_committed(void *ctx)
{
    simnode *n = ctx;
    return n->own_head;
}

static void h_write(void *ctx, jv_write_req *req)
{
    simnode *n = ctx;
    if (!n->up) {
        fprintf(stderr, "jarvis-sim: node %u wrote while down\n", n->idx);
        abort();
    }
    req->next = NULL;
    if (n->wq_tail)
        n->wq_tail->next = req;
    else
        n->wq = req;
    n->wq_tail = req;
    writer_kick(n);
}

void jv__simhost_write(simnode *n, jv_write_req *req)
{
    h_write(n, req);
}

/* -- readers and the off-loop pool ----------------------------------------- */

static void job_unlink(simjob *j)
{
    simnode *n = j->n;
    if (j->prev)
        j->prev->next = j->next;
    else
        n->jobs = j->next;
    if (j->next)
        j->next->prev = j->prev;
}

static void h_write(void *ctx, jv_write_req *req);

static void refresh_done(jv_write_req *r)
{
    jv_free(r);
}

static void job_finish(simjob *j, jv_err err, const char *msg)
{
    if (j->kind == J_READ) {
        j->read->done(j->read->arg, err, msg);
        return;
    }
    j->odone(&j->n->node, err, j->oarg);
    if (!j->n->up) /* failed by a crash */
        return;
    /* As the node's host does after a job that changed the data. */
    jv_write_req *r = must(jv_calloc(1, sizeof(*r)));
    r->apply_flags = JV_APPLY_REQUIRE_TRUST | JV_APPLY_RECHECK;
    r->reread_trust = true;
    r->done = refresh_done;
    h_write(j->n, r);
}

static void job_step(void *arg)
{
    simjob *j = arg;
    if (j->n->gen != j->gen) {
        jv_free(j); /* failed by the crash already */
        return;
    }
    if (!j->ran) {
        j->ran = true;
        j->err = j->kind == J_READ ? j->read->fn(j->n->st, j->read->arg)
                                   : j->ofn(j->n->st, j->oarg);
        at(j->n->w, j->light ? light_turn(j->n->w) : turn(j->n->w), job_step,
           j);
        return;
    }
    job_unlink(j);
    job_finish(j, j->err, j->err ? jv_store_errmsg(j->n->st) : "");
    jv_free(j);
}

static simjob *job_new(simnode *n)
{
    simjob *j = must(jv_calloc(1, sizeof(*j)));
    j->n = n;
    j->gen = n->gen;
    j->next = n->jobs;
    if (n->jobs)
        n->jobs->prev = j;
    n->jobs = j;
    return j;
}

/* A read job; light: one that reads no store (h_open). */
static jv_err read_job(simnode *n, jv_read_job *job, bool light)
{
    simjob *j = job_new(n);
    j->kind = J_READ;
    j->read = job;
    j->light = light;
    at(n->w, light ? light_turn(n->w) : turn(n->w), job_step, j);
    return JV_OK;
}

static jv_err h_read(void *ctx, jv_read_job *job)
{
    return read_job(ctx, job, false);
}

static jv_err h_open(void *ctx, jv_read_job *job)
{
    return read_job(ctx, job, true);
}

static jv_err h_offloop(void *ctx, jv_offloop_fn fn, jv_offloop_done done,
                        void *arg)
{
    simnode *n = ctx;
    simjob *j = job_new(n);
    j->kind = J_OFFLOOP;
    j->ofn = fn;
    j->odone = done;
    j->oarg = arg;
    at(n->w, turn(n->w), job_step, j);
    return JV_OK;
}

/* Called with n->gen moved on already. */
void jv__simhost_crash(simnode *n)
{
    /* What the writer queued or committed without telling anyone: the
     * requests hear of a failure (a committed one stays committed, as on
     * a disk). The jobs' events die with the generation. */
    jv_write_req *q = n->wq, *d = n->wdone;
    n->wq = n->wq_tail = n->wdone = NULL;
    n->wrunning = false;
    for (jv_write_req *r = d; r; r = r->next)
        r->err = JV_ECLOSED;
    for (jv_write_req *r = q; r; r = r->next)
        r->err = JV_ECLOSED;
    call_done(d);
    call_done(q);
    while (n->jobs) {
        simjob *j = n->jobs; /* its event, still due, frees it */
        job_unlink(j);
        job_finish(j, JV_ECLOSED, "the node crashed");
    }
}

static void h_peer_seen(void *ctx, const char *addr, const jv_id *id,
                        bool reachable)
{
    (void)ctx;
    (void)addr;
    (void)id;
    (void)reachable;
}

/* -- the network ----------------------------------------------------------- */

static bool link_ok(jv_sim *w, unsigned from, unsigned to)
{
    if (!w->partition)
        return true;
    unsigned a = w->nodes[from].side, b = w->nodes[to].side;
    return w->asymmetric ? !(a == 0 && b == 1) : a == b;
}

static uint64_t latency(jv_sim *w)
{
    /* A floor, then a long tail: most messages within a few ms, some
     * much later (which also reorders them). */
    return w->o.lat_min_us + jv_simq_exp(&w->q, (double)w->o.lat_mean_us);
}

typedef struct {
    jv_sim *w;
    jv_tpeer *p;
    uint64_t req;
    unsigned to;
    bool reply;
    size_t len;
    uint8_t data[];
} packet;

static void deliver(void *arg);

/* Sends len bytes over from -> to: counted, then lost, or delivered once
 * or twice. */
static void transmit(jv_sim *w, unsigned from, const packet *tmpl,
                     const uint8_t *msg)
{
    w->s.messages++;
    w->s.msg_bytes += tmpl->len;
    w->nodes[from].sent_bytes += tmpl->len;
    w->nodes[from].sent_msgs++;
    if (tmpl->to >= w->n || !link_ok(w, from, tmpl->to) ||
        jv_simq_unit(&w->q) < w->loss) {
        w->s.dropped++;
        return;
    }
    unsigned copies = jv_simq_unit(&w->q) < w->dup ? 2 : 1;
    w->s.duplicated += copies - 1;
    for (unsigned c = 0; c < copies; c++) {
        packet *k = must(jv_malloc(sizeof(*k) + tmpl->len));
        *k = *tmpl;
        memcpy(k->data, msg, tmpl->len);
        at(w, latency(w), deliver, k);
    }
}

static void deliver_request(packet *k)
{
    simnode *n = &k->w->nodes[k->to];
    jv_transport *t = n->tp;
    if (!n->up || !t || t->closed) {
        jv_free(k); /* nobody listens: the requester times out */
        return;
    }
    jv_inbound *in = must(jv_calloc(1, sizeof(*in)));
    in->t = t;
    in->from = k->p;
    in->req = k->req;
    in->pkt = k;
    in->next = t->ins;
    if (t->ins)
        t->ins->prev = in;
    t->ins = in;
    t->cbs.on_request(t->cbs.arg, in, k->data, k->len);
}

static void deliver(void *arg)
{
    packet *k = arg;
    if (!k->reply) {
        deliver_request(k);
        return;
    }
    jv_tpeer *p = k->p;
    if (p->t && !p->t->closed && p->req == k->req) {
        p->req = 0;
        p->t->cbs.on_reply(p->t->cbs.arg, p, JV_OK, k->data, k->len);
    }
    jv_free(k);
}

typedef struct {
    jv_tpeer *p;
    uint64_t req;
    const char *why; /* on_link: NULL up */
    bool link;
} pev;

static void peer_event(void *arg)
{
    pev *e = arg;
    jv_tpeer *p = e->p;
    if (p->t && !p->t->closed) {
        if (e->link)
            p->t->cbs.on_link(p->t->cbs.arg, p, e->why);
        else if (p->req == e->req) {
            p->req = 0;
            p->t->cbs.on_reply(p->t->cbs.arg, p, JV_ETIMEDOUT, NULL, 0);
        }
    }
    jv_free(e);
}

static void peer_later(jv_sim *w, uint64_t delay_us, pev e)
{
    pev *c = must(jv_malloc(sizeof(*c)));
    *c = e;
    at(w, delay_us, peer_event, c);
}

void jv__simhost_link(simnode *n, bool up)
{
    jv_sim *w = n->w;
    for (jv_tpeer *p = w->tpeers; p; p = p->next)
        if (p->t && p->to == n->idx)
            peer_later(w, latency(w),
                       (pev){p, 0, up ? NULL : "connection closed", true});
}

static jv_err h_tp_new(void *ctx, const jv_transport_opts *o,
                       const jv_transport_cbs *cbs, jv_transport **out)
{
    simnode *n = ctx;
    (void)o;
    jv_transport *t = jv_calloc(1, sizeof(*t));
    if (!t)
        return JV_ENOMEM;
    t->n = n;
    t->cbs = *cbs;
    n->tp = t;
    *out = t;
    return JV_OK;
}

static jv_err h_tp_listen(jv_transport *t, const char *addr, char *bound,
                          size_t boundlen)
{
    (void)addr;
    snprintf(bound, boundlen, "%s", t->n->addr);
    return JV_OK;
}

static unsigned find_node(jv_sim *w, const char *addr)
{
    unsigned i;
    return sscanf(addr, "tcp://sim-%u:7000", &i) == 1 && i < w->n ? i
                                                                  : UINT32_MAX;
}

static jv_err h_tp_peer_new(jv_transport *t, const char *addr, void *user,
                            jv_tpeer **out)
{
    jv_sim *w = t->n->w;
    jv_tpeer *p = jv_calloc(1, sizeof(*p));
    if (!p)
        return JV_ENOMEM;
    p->t = t;
    p->to = find_node(w, addr);
    p->user = user;
    p->next = w->tpeers;
    w->tpeers = p;
    bool up = p->to < w->n && w->nodes[p->to].up;
    peer_later(w, latency(w),
               (pev){p, 0, up ? NULL : "connection refused", true});
    *out = p;
    return JV_OK;
}

static void *h_tp_user(const jv_tpeer *p)
{
    return p->user;
}

static void h_tp_peer_free(jv_tpeer *p)
{
    if (p)
        p->t = NULL; /* kept until the world ends: events may name it */
}

static jv_err h_tp_send(jv_tpeer *p, const uint8_t *msg, size_t len,
                        uint64_t timeout_ms)
{
    jv_sim *w = p->t->n->w;
    if (p->req)
        return JV_EBUSY;
    if (!p->t->n->up)
        return JV_ECLOSED;
    p->req = ++w->next_req;
    packet k = {w, p, p->req, p->to, false, len};
    transmit(w, p->t->n->idx, &k, msg);
    peer_later(w, timeout_ms * 1000, (pev){p, p->req, NULL, false});
    return JV_OK;
}

static void in_free(jv_inbound *in)
{
    jv_transport *t = in->t;
    if (in->prev)
        in->prev->next = in->next;
    else
        t->ins = in->next;
    if (in->next)
        in->next->prev = in->prev;
    jv_free(in->pkt);
    jv_free(in);
}

static void h_tp_reply(jv_inbound *in, const uint8_t *msg, size_t len)
{
    jv_transport *t = in->t;
    jv_sim *w = t->n->w;
    /* Back to the requester's node, if it still has that peer. */
    unsigned to = in->from->t ? in->from->t->n->idx : UINT32_MAX;
    packet k = {w, in->from, in->req, to, true, len};
    if (t->n->up) /* a crashing node's jobs end without a word */
        transmit(w, t->n->idx, &k, msg);
    in_free(in);
}

static void h_tp_drop(jv_inbound *in)
{
    in_free(in);
}

static bool h_tp_recall(jv_tpeer *p)
{
    (void)p;
    return false; /* a simulated request is on the wire at once */
}

typedef struct {
    void (*done)(void *);
    void *arg;
} later;

static void run_later(void *arg)
{
    later l = *(later *)arg;
    jv_free(arg);
    l.done(l.arg);
}

static void call_later(jv_sim *w, void (*done)(void *), void *arg)
{
    if (!done)
        return;
    later *l = must(jv_malloc(sizeof(*l)));
    *l = (later){done, arg};
    at(w, 0, run_later, l);
}

static void h_tp_close(jv_transport *t, void (*done)(void *), void *arg)
{
    jv_sim *w = t->n->w;
    while (t->ins)
        in_free(t->ins);
    if (t->n->tp == t)
        t->n->tp = NULL;
    jv_free(t);
    call_later(w, done, arg);
}

static void h_tp_kill_listener(jv_transport *t)
{
    (void)t;
}

static void h_fini(void *ctx, void (*done)(void *), void *arg)
{
    simnode *n = ctx;
    h_timer_stop(n);
    call_later(n->w, done, arg);
}

void jv__simhost_make(simnode *n, jv_repl_host *out)
{
    *out = (jv_repl_host){
        .ctx = n,
        .seed = jv_simq_u64(&n->w->q),
        .now_ms = h_now,
        .timer_start = h_timer_start,
        .timer_stop = h_timer_stop,
        .write = h_write,
        .own_committed = h_own_committed,
        .read = h_read,
        .open = h_open,
        .offloop = h_offloop,
        .peer_seen = h_peer_seen,
        .tp_new = h_tp_new,
        .tp_listen = h_tp_listen,
        .tp_peer_new = h_tp_peer_new,
        .tp_user = h_tp_user,
        .tp_peer_free = h_tp_peer_free,
        .tp_send = h_tp_send,
        .tp_reply = h_tp_reply,
        .tp_drop = h_tp_drop,
        .tp_recall = h_tp_recall,
        .tp_close = h_tp_close,
        .tp_kill_listener = h_tp_kill_listener,
        .fini = h_fini,
    };
}

void jv__simhost_free_peers(jv_sim *w)
{
    while (w->tpeers) {
        jv_tpeer *p = w->tpeers;
        w->tpeers = p->next;
        jv_free(p);
    }
}
