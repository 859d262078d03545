#include "writer.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include "alloc.h"
#include "node.h"
#include "query.h"

/* The bits of JV_CHANGES_ALL. */
#define CHANGE_BITS 4
_Static_assert(JV_CHANGES_ALL == (1u << CHANGE_BITS) - 1,
               "CHANGE_BITS counts the bits of JV_CHANGES_ALL");

struct jv_writer {
    uv_loop_t *loop;
    uv_async_t wake; /* writer thread -> loop: a job finished */
    jv_store *st;
    jv_keypair kp;
    jv_hlc *clock;

    /* Loop thread only. */
    jv_write_req *queue, *queue_tail;
    size_t queued;
    bool running; /* a job is with the writer thread */
    bool stopping;
    void (*stop_done)(void *);
    void *stop_arg;
    jv_writer_observer observer;
    void *observer_arg;
    /* Requests queued or committing that may change each JV_CHANGES_
     * bit. */
    size_t pending_bits[CHANGE_BITS];

    /* Shared, under mu. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    jv_write_req *job;  /* handed to the thread */
    jv_write_req *done; /* handed back */
    uint64_t job_hlc;
    jv_writer_after after; /* the thread's, until it hands `done` back */
    bool quit;
    pthread_t thread;
    /* Written by the thread as soon as it commits, read by the loop. */
    _Atomic uint64_t own_head;
};

static uint64_t wall_ms(void)
{
    return jv_now_ms(); /* the node's clock, test offset included */
}

/* Verifies the peers' batches of one request and applies them in one
 * transaction. Signature work is skipped for batches already applied. */
static void run_remote(jv_store *st, jv_write_req *r)
{
    jv_store_batch *sb = jv_calloc(r->nremote, sizeof(*sb));
    jv_batch *decoded = jv_calloc(r->nremote, sizeof(*decoded));
    uint8_t(*hashes)[JV_HASH_LEN] = jv_calloc(r->nremote, JV_HASH_LEN);
    size_t *index = jv_calloc(r->nremote, sizeof(*index));
    jv_err *results = jv_calloc(r->nremote, sizeof(*results));
    size_t n = 0;

    if (!r->nremote) {
        /* JV_APPLY_RECHECK: held batches whose time has come. */
        r->err = jv_store_apply(st, NULL, 0, r->apply_flags, NULL, &r->stats);
        goto out;
    }
    if (!sb || !decoded || !hashes || !index || !results) {
        r->err = JV_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < r->nremote; i++) {
        jv_remote_batch *rb = &r->remote[i];
        jv_batch_head h;
        uint64_t applied;
        uint8_t last[JV_HASH_LEN];
        if ((rb->result = jv_batch_peek(rb->body, rb->len, &h)))
            continue;
        if (jv_store_origin_head(st, &h.origin, &applied, last) == JV_OK &&
            h.last_seq <= applied) {
            rb->result = JV_EDUP;
            continue;
        }
        jv_batch_hash(rb->body, rb->len, hashes[n]);
        if ((rb->result = jv_batch_verify_sig(hashes[n], rb->sig, &h.origin)))
            continue;
        if ((rb->result = jv_batch_decode(rb->body, rb->len, &decoded[n])))
            continue;
        sb[n] = (jv_store_batch){rb->body, rb->len, rb->sig, hashes[n],
                                 &decoded[n]};
        index[n++] = i;
    }
    if (n) {
        r->err = jv_store_apply(st, sb, n, r->apply_flags, results, &r->stats);
        for (size_t k = 0; k < n; k++)
            r->remote[index[k]].result = r->err ? r->err : results[k];
    }
out:
    for (size_t k = 0; decoded && k < n; k++)
        jv_batch_fini(&decoded[k]);
    jv_free(sb);
    jv_free(decoded);
    jv_free(hashes);
    jv_free(index);
    jv_free(results);
}

/* All local groups of the job go into one transaction and one batch. */
static void run_local(jv_store *st, const jv_keypair *kp, jv_write_req *job,
                      uint64_t hlc, uint64_t *ns)
{
    size_t n = 0, k = 0;
    for (jv_write_req *r = job; r; r = r->next)
        if (r->group.n || r->group.local)
            n++;
    if (!n)
        return;
    jv_write_group *groups = jv_calloc(n, sizeof(*groups));
    jv_commit_info info;
    memset(&info, 0, sizeof(info));
    uint64_t t0 = uv_hrtime();
    jv_err err = JV_ENOMEM;
    if (groups) {
        for (jv_write_req *r = job; r; r = r->next)
            if (r->group.n || r->group.local)
                groups[k++] = r->group;
        err = jv_store_commit_local(st, kp, hlc, groups, n, &info);
    }
    *ns += uv_hrtime() - t0;
    k = 0;
    for (jv_write_req *r = job; r; r = r->next) {
        if (!(r->group.n || r->group.local))
            continue;
        if (groups) {
            r->group.result = groups[k].result;
            r->group.failed_index = groups[k].failed_index;
        }
        k++;
        if (err && !r->err)
            r->err = err;
        r->info = info;
        r->job_groups = n;
    }
    jv_free(groups);
}

void jv_writer_run(jv_store *st, const jv_keypair *kp, uint64_t hlc,
                   jv_write_req *job)
{
    uint64_t ns = 0;
    for (jv_write_req *r = job; r; r = r->next) {
        if (!r->nremote && !(r->apply_flags & JV_APPLY_RECHECK))
            continue;
        uint64_t t0 = uv_hrtime();
        run_remote(st, r);
        ns += uv_hrtime() - t0;
    }
    run_local(st, kp, job, hlc, &ns);
    for (jv_write_req *r = job; r; r = r->next) {
        r->commit_ns = ns;
        /* The loop must not read this thread's store: the message
         * travels with the request. */
        if (r->err)
            snprintf(r->errmsg, sizeof(r->errmsg), "%s", jv_store_errmsg(st));
    }
}

/* Only this thread writes it, and it only rises: the loop may read it
 * at any moment. */
static void publish_head(jv_writer *w, uint64_t seq)
{
    if (seq > atomic_load_explicit(&w->own_head, memory_order_relaxed))
        atomic_store_explicit(&w->own_head, seq, memory_order_release);
}

uint64_t jv_writer_committed_head(const jv_writer *w)
{
    return atomic_load_explicit(&w->own_head, memory_order_acquire);
}

static void *thread_main(void *arg)
{
    jv_writer *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->job && !w->quit)
            pthread_cond_wait(&w->cv, &w->mu);
        if (!w->job)
            break;
        jv_write_req *job = w->job;
        uint64_t hlc = w->job_hlc;
        w->job = NULL;
        pthread_mutex_unlock(&w->mu);

        jv_writer_run(w->st, &w->kp, hlc, job);
        publish_head(w, jv_writer_own_head(job, NULL, &w->kp.pk));
        jv_writer_read_after(w->st, job, &w->after);
        publish_head(w, jv_writer_own_head(job, &w->after, &w->kp.pk));

        pthread_mutex_lock(&w->mu);
        w->done = job;
        uv_async_send(&w->wake);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* What r may change (writer.h). */
static unsigned changes_of(const jv_write_req *r)
{
    if (r->nremote || (r->apply_flags & JV_APPLY_RECHECK) || r->group.local)
        return JV_CHANGES_ALL;
    unsigned c = 0;
    for (size_t i = 0; i < r->group.n; i++) {
        switch (r->group.intents[i].op.kind) {
        case JV_OP_COUNTER:
            c |= JV_CHANGES_COUNTERS;
            break;
        case JV_OP_CONFIG:
            c |= JV_CHANGES_CONFIG;
            break;
        case JV_OP_ARCHIVE_ADD:
        case JV_OP_ARCHIVE_RM:
            c |= JV_CHANGES_ARCHIVE;
            break;
        case JV_OP_AUDIT:
        case JV_OP_KEY_ADD:
        case JV_OP_KEY_REVOKE:
            c |= JV_CHANGES_OTHER;
            break;
        default: /* trust releases held batches of any kind */
            return JV_CHANGES_ALL;
        }
    }
    return c;
}

uint64_t jv_writer_own_seq(const jv_write_req *job)
{
    unsigned changes = 0;
    uint64_t seq = 0;
    for (const jv_write_req *r = job; r; r = r->next) {
        changes |= changes_of(r);
        if (!r->err && r->info.nops)
            seq = r->info.last_seq;
    }
    /* A job that may have changed more than our log holds no exact
     * sequence of its own: the vector is to be read again. */
    return changes == JV_CHANGES_ALL ? 0 : seq;
}

uint64_t jv_writer_own_head(const jv_write_req *job, const jv_writer_after *a,
                            const jv_id *self)
{
    uint64_t head = a && a->vv_read ? jv_vv_get(&a->vv, self) : 0;
    for (const jv_write_req *r = job; r; r = r->next)
        if (!r->err && r->info.nops && r->info.last_seq > head)
            head = r->info.last_seq;
    return head;
}

void jv_writer_read_after(jv_store *st, const jv_write_req *job,
                          jv_writer_after *a)
{
    uint64_t gen = jv_store_trust_gen(st);
    /* A snapshot installs on another connection, whose entries this
     * one's generation does not count: the loop asks then. The wish
     * stays until a read succeeds. */
    for (const jv_write_req *r = job; r; r = r->next)
        a->dirty |= r->reread_trust;
    a->err = JV_OK;
    a->vv_read = false;
    if (!jv_writer_own_seq(job) || a->vv_due) {
        a->vv_read = !(a->err = jv_store_vv(st, &a->vv));
        a->vv_due = !a->vv_read;
    }
    /* Peers' key operations, or a snapshot's keys (reread_trust). */
    bool keys = a->ckeys_due;
    for (const jv_write_req *r = job; r; r = r->next)
        keys |= r->stats.keys || r->info.released_keys || r->reread_trust;
    if (keys) {
        jv_err err = jv_auth_ckeys_read(st, &a->ckeys);
        a->ckeys_due = err != JV_OK;
        if (err)
            a->err = err;
    }
    if (gen != a->trust_gen || a->dirty) {
        jv_err err = jv_trustview_read(st, &a->trust);
        if (err) {
            a->err = err;
        } else {
            a->trust_gen = gen;
            a->dirty = false;
        }
    }
}

/* r joins the pending requests, or leaves them (its done callback comes
 * next). */
static void tally(jv_writer *w, const jv_write_req *r, bool joins)
{
    for (unsigned b = 0; b < CHANGE_BITS; b++)
        if (r->changes & (1u << b)) {
            if (joins)
                w->pending_bits[b]++;
            else
                w->pending_bits[b]--;
        }
}

static void dispatch(jv_writer *w)
{
    if (w->running || !w->queue)
        return;
    uint64_t hlc;
    /* Every stamp inside was taken from the same clock before now, so the
     * batch stamp is at least each of them. If the clock cannot move (its
     * 48-bit range is exhausted) the commit fails with that error. */
    jv_err err = jv_hlc_now(w->clock, wall_ms(), &hlc);
    jv_write_req *job = w->queue;
    w->queue = w->queue_tail = NULL;
    w->queued = 0;
    if (err) {
        while (job) {
            jv_write_req *next = job->next;
            job->err = err;
            tally(w, job, false);
            job->done(job);
            job = next;
        }
        return;
    }
    for (jv_write_req *r = job; r; r = r->next) {
        r->err = JV_OK;
        r->errmsg[0] = '\0';
        memset(&r->info, 0, sizeof(r->info));
        memset(&r->stats, 0, sizeof(r->stats));
    }
    w->running = true;
    pthread_mutex_lock(&w->mu);
    w->job = job;
    w->job_hlc = hlc;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void on_closed(uv_handle_t *h)
{
    jv_writer *w = h->data;
    void (*done)(void *) = w->stop_done;
    void *arg = w->stop_arg;
    jv_keypair_wipe(&w->kp);
    jv_vv_fini(&w->after.vv);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    jv_free(w);
    if (done)
        done(arg);
}

static void finish_stop(jv_writer *w)
{
    pthread_mutex_lock(&w->mu);
    w->quit = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    uv_close((uv_handle_t *)&w->wake, on_closed);
}

static void on_wake(uv_async_t *h)
{
    jv_writer *w = h->data;
    pthread_mutex_lock(&w->mu);
    jv_write_req *done = w->done;
    w->done = NULL;
    pthread_mutex_unlock(&w->mu);
    if (!done)
        return;
    unsigned changes = 0;
    for (jv_write_req *r = done; r; r = r->next) {
        changes |= r->changes;
        tally(w, r, false);
    }
    if (w->observer) {
        jv_writer_job j;
        memset(&j, 0, sizeof(j));
        j.changes = changes;
        for (jv_write_req *r = done; r; r = r->next) {
            j.requests++;
            j.commit_ns = r->commit_ns;
            if (r->err && !j.err)
                j.err = r->err;
            if (r->group.n || r->group.local) {
                j.groups++;
                if (r->err || r->group.result)
                    j.groups_failed++;
                j.nops = r->info.nops;
                j.nbatches = r->info.nbatches;
            }
            j.remote_batches += r->nremote;
            j.remote_ops += r->stats.ops;
        }
        j.own_seq = jv_writer_own_seq(done);
        j.vv = w->after.vv_read ? &w->after.vv : NULL;
        j.trust = w->after.trust;
        j.ckeys = w->after.ckeys;
        j.read_err = w->after.err;
        w->after.trust = NULL;
        w->after.ckeys = NULL;
        w->observer(w->observer_arg, &j);
    }
    jv_trustview_free(w->after.trust); /* nobody to take them */
    jv_auth_ckeys_free(w->after.ckeys);
    w->after.trust = NULL;
    w->after.ckeys = NULL;
    /* Only now: a write submitted from here on may start the next job,
     * whose thread fills w->after again. */
    w->running = false;
    while (done) {
        jv_write_req *next = done->next;
        done->next = NULL;
        done->done(done);
        done = next;
    }
    dispatch(w);
    if (w->stopping && !w->running && !w->queue)
        finish_stop(w);
}

jv_err jv_writer_start(uv_loop_t *loop, jv_store *st, const jv_keypair *kp,
                       jv_hlc *clock, jv_writer **out)
{
    jv_writer *w = jv_calloc(1, sizeof(*w));
    if (!w)
        return JV_ENOMEM;
    w->loop = loop;
    w->st = st;
    w->kp = *kp;
    w->clock = clock;
    jv_vv_init(&w->after.vv);
    w->after.trust_gen = jv_store_trust_gen(st);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (uv_async_init(loop, &w->wake, on_wake) != 0)
        goto fail;
    w->wake.data = w;
    if (pthread_create(&w->thread, NULL, thread_main, w) != 0) {
        w->stop_done = NULL;
        uv_close((uv_handle_t *)&w->wake, on_closed);
        return JV_ESTATE;
    }
    *out = w;
    return JV_OK;
fail:
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    jv_keypair_wipe(&w->kp);
    jv_vv_fini(&w->after.vv);
    jv_free(w);
    return JV_ESTATE;
}

void jv_writer_observe(jv_writer *w, jv_writer_observer fn, void *arg)
{
    w->observer = fn;
    w->observer_arg = arg;
}

void jv_writer_submit(jv_writer *w, jv_write_req *r)
{
    r->next = NULL;
    r->changes = changes_of(r);
    tally(w, r, true);
    if (w->queue_tail)
        w->queue_tail->next = r;
    else
        w->queue = r;
    w->queue_tail = r;
    w->queued++;
    dispatch(w);
}

size_t jv_writer_pending_changes(const jv_writer *w, unsigned changes)
{
    size_t n = 0;
    for (unsigned b = 0; b < CHANGE_BITS; b++)
        if (changes & (1u << b))
            n += w->pending_bits[b];
    return n;
}

size_t jv_writer_pending(const jv_writer *w)
{
    size_t n = w->queued;
    if (w->running)
        n++;
    return n;
}

void jv_writer_stop(jv_writer *w, void (*done)(void *), void *arg)
{
    w->stopping = true;
    w->stop_done = done;
    w->stop_arg = arg;
    if (!w->running && !w->queue)
        finish_stop(w);
}
