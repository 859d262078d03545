/*
 * readers.c - reader threads with connections of their own (contract in
 * readers.h).
 *
 * One mutex guards both lists: the queue (jobs waiting for a thread,
 * oldest first) and the done list (jobs run, waiting for the loop). A
 * thread takes the oldest jobs, up to READ_BATCH of them, runs them
 * without the lock in one read snapshot, puts them on the done list and
 * wakes the loop once; the loop's async callback takes the whole done list
 * at once and calls each done in the order the jobs ended. Under load
 * that is one wake-up, one lock round and one snapshot (SQLite's read
 * locks are system calls) for many requests instead of one each: those,
 * not the queries, were most of a read's cost. Nor does the loop wake a
 * thread per job: jobs submitted during one turn of the loop wake the
 * threads they need once, just before the loop polls again (a prepare
 * handle), so the requests read in one turn go out together; a thread
 * that leaves jobs behind wakes another.
 * Connections are opened at start on the caller's thread (SQLite's
 * connections may move between threads; each is used by one thread at a
 * time) and closed after the threads have been joined.
 */
#include "readers.h"

#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "log.h"

/* Jobs one thread takes at once: enough to share a wake-up among the
 * requests of a busy loop iteration, few enough that the other threads
 * get their share. */
#define READ_BATCH 16

typedef struct {
    jv_readers *rd;
    jv_store *st;
    uv_thread_t thread;
    bool started;
} reader_thread;

struct jv_readers {
    uv_loop_t *loop;
    char name[32];
    uv_mutex_t mu;
    uv_cond_t cv;
    uv_async_t async;
    uv_prepare_t prepare;
    int open_handles; /* async and prepare, until both are closed */
    /* under mu */
    jv_read_job *q_head, *q_tail; /* new requests' reads */
    jv_read_job *l_head, *l_tail; /* continuations (job->later) */
    jv_read_job *d_head, *d_tail;
    size_t queued;  /* q and l */
    unsigned idle;  /* threads waiting on cv */
    unsigned wakes; /* signals sent that no thread has woken by yet */
    bool stopping;
    /* loop thread */
    bool kick; /* jobs were queued since the last prepare */
    size_t pending;
    void (*stopped)(void *);
    void *stopped_arg;
    unsigned n;
    reader_thread *t;
};

/* The oldest job, continuations last. Under mu. */
static jv_read_job *take(jv_readers *rd)
{
    jv_read_job **head = rd->q_head ? &rd->q_head : &rd->l_head;
    jv_read_job **tail = rd->q_head ? &rd->q_tail : &rd->l_tail;
    jv_read_job *j = *head;
    if (j) {
        *head = j->next;
        if (!*head)
            *tail = NULL;
        j->next = NULL;
        rd->queued--;
    }
    return j;
}

/* Up to READ_BATCH new requests' jobs, in order, as a list (*n of them);
 * else one continuation. Under mu. */
static jv_read_job *take_batch(jv_readers *rd, size_t *n)
{
    jv_read_job *first = take(rd), *last = first;
    *n = first != NULL;
    if (!first || first->later)
        return first;
    while (*n < READ_BATCH && rd->q_head) {
        last->next = take(rd);
        last = last->next;
        (*n)++;
    }
    return first;
}

/* Wakes a waiting thread, unless every waiting one is woken already.
 * Under mu. */
static void wake(jv_readers *rd)
{
    if (rd->idle > rd->wakes) {
        rd->wakes++;
        uv_cond_signal(&rd->cv);
    }
}

/* Before the loop polls: a thread for every batch queued this turn, as
 * many as wait. */
static void on_prepare(uv_prepare_t *h)
{
    jv_readers *rd = h->data;
    if (!rd->kick)
        return;
    rd->kick = false;
    uv_mutex_lock(&rd->mu);
    for (size_t n = 0; n < rd->queued; n += READ_BATCH)
        wake(rd);
    uv_mutex_unlock(&rd->mu);
}

static void run_one(reader_thread *t, jv_read_job *j)
{
    j->err = j->fn(t->st, j->arg);
    j->msg[0] = '\0';
    if (j->err)
        snprintf(j->msg, sizeof(j->msg), "%s", jv_store_errmsg(t->st));
}

/* Runs the list; several jobs share one read snapshot, which begins after
 * all of them were submitted (read-your-writes holds). A snapshot that
 * cannot begin leaves each job to its own. */
static void run_batch(reader_thread *t, jv_read_job *list, size_t n)
{
    bool snap = n > 1 && jv_store_read_begin(t->st) == JV_OK;
    for (jv_read_job *j = list; j; j = j->next)
        run_one(t, j);
    if (snap)
        jv_store_read_end(t->st);
}

static void reader_main(void *arg)
{
    reader_thread *t = arg;
    jv_readers *rd = t->rd;
    uv_mutex_lock(&rd->mu);
    for (;;) {
        while (!rd->q_head && !rd->l_head && !rd->stopping) {
            rd->idle++;
            uv_cond_wait(&rd->cv, &rd->mu);
            rd->idle--;
            if (rd->wakes)
                rd->wakes--;
        }
        size_t n;
        jv_read_job *list = take_batch(rd, &n), *last = list;
        if (!list)
            break; /* stopping, and nothing left to run */
        if (rd->queued)
            wake(rd); /* more than one thread's share */
        uv_mutex_unlock(&rd->mu);

        run_batch(t, list, n);
        while (last->next)
            last = last->next;

        uv_mutex_lock(&rd->mu);
        if (rd->d_tail)
            rd->d_tail->next = list;
        else
            rd->d_head = list;
        rd->d_tail = last;
        uv_async_send(&rd->async);
    }
    uv_mutex_unlock(&rd->mu);
}

/* Calls done for every job that has ended. Loop thread. */
static void deliver(jv_readers *rd)
{
    uv_mutex_lock(&rd->mu);
    jv_read_job *j = rd->d_head;
    rd->d_head = rd->d_tail = NULL;
    uv_mutex_unlock(&rd->mu);
    while (j) {
        jv_read_job *next = j->next;
        rd->pending--;
        j->done(j->arg, j->err, j->msg); /* may free j */
        j = next;
    }
}

static void on_async(uv_async_t *a)
{
    deliver(a->data);
}

static void close_all(jv_readers *rd)
{
    for (unsigned i = 0; i < rd->n; i++)
        jv_store_close(rd->t[i].st);
    jv_free(rd->t);
    uv_cond_destroy(&rd->cv);
    uv_mutex_destroy(&rd->mu);
}

static void on_closed(uv_handle_t *h)
{
    jv_readers *rd = h->data;
    if (--rd->open_handles)
        return;
    void (*stopped)(void *) = rd->stopped;
    void *arg = rd->stopped_arg;
    close_all(rd);
    jv_free(rd);
    if (stopped)
        stopped(arg);
}

/* Joins the threads started so far (after telling them to stop). */
static void join_all(jv_readers *rd)
{
    uv_mutex_lock(&rd->mu);
    rd->stopping = true;
    uv_cond_broadcast(&rd->cv);
    uv_mutex_unlock(&rd->mu);
    for (unsigned i = 0; i < rd->n; i++)
        if (rd->t[i].started)
            uv_thread_join(&rd->t[i].thread);
}

static jv_err open_conns(jv_readers *rd, const char *db_path, jv_sync sync,
                         uint64_t max_skew_ms, char *msg, size_t msglen)
{
    jv_store_opts o;
    jv_store_opts_default(&o);
    o.sync = sync;
    o.checked = true;
    for (unsigned i = 0; i < rd->n; i++) {
        rd->t[i].rd = rd;
        jv_err err = jv_store_open(db_path, &o, &rd->t[i].st, msg, msglen);
        if (err)
            return err;
        jv_store_set_max_skew(rd->t[i].st, max_skew_ms);
    }
    return JV_OK;
}

jv_err jv_readers_new(uv_loop_t *loop, const char *name, const char *db_path,
                      jv_sync sync, uint64_t max_skew_ms, unsigned nthreads,
                      jv_readers **out, char *msg, size_t msglen)
{
    jv_err err;
    if (!loop || !db_path || !out || nthreads == 0)
        return JV_EINVAL;
    jv_readers *rd = jv_calloc(1, sizeof(*rd));
    reader_thread *t = jv_calloc(nthreads, sizeof(*t));
    if (!rd || !t) {
        jv_free(rd);
        jv_free(t);
        snprintf(msg, msglen, "out of memory");
        return JV_ENOMEM;
    }
    rd->loop = loop;
    snprintf(rd->name, sizeof(rd->name), "%s", name ? name : "readers");
    rd->n = nthreads;
    rd->t = t;
    uv_mutex_init(&rd->mu);
    uv_cond_init(&rd->cv);
    if ((err = open_conns(rd, db_path, sync, max_skew_ms, msg, msglen)))
        goto fail;
    for (unsigned i = 0; i < nthreads; i++) {
        if (uv_thread_create(&t[i].thread, reader_main, &t[i]) != 0) {
            snprintf(msg, msglen, "cannot start a %s thread", rd->name);
            err = JV_ENOMEM;
            goto fail;
        }
        t[i].started = true;
    }
    uv_async_init(loop, &rd->async, on_async);
    rd->async.data = rd;
    uv_prepare_init(loop, &rd->prepare);
    rd->prepare.data = rd;
    uv_prepare_start(&rd->prepare, on_prepare);
    rd->open_handles = 2;
    *out = rd;
    return JV_OK;
fail:
    join_all(rd);
    close_all(rd);
    jv_free(rd);
    return err;
}

jv_err jv_readers_submit(jv_readers *rd, jv_read_job *job)
{
    if (!rd)
        return JV_ECLOSED;
    uv_mutex_lock(&rd->mu);
    if (rd->stopping) {
        uv_mutex_unlock(&rd->mu);
        return JV_ECLOSED;
    }
    jv_read_job **head = job->later ? &rd->l_head : &rd->q_head;
    jv_read_job **tail = job->later ? &rd->l_tail : &rd->q_tail;
    job->next = NULL;
    if (*tail)
        (*tail)->next = job;
    else
        *head = job;
    *tail = job;
    rd->queued++; /* a thread is woken at the next prepare */
    uv_mutex_unlock(&rd->mu);
    rd->kick = true;
    rd->pending++;
    return JV_OK;
}

size_t jv_readers_pending(const jv_readers *rd)
{
    return rd ? rd->pending : 0;
}

void jv_readers_stop(jv_readers *rd, void (*stopped)(void *), void *arg)
{
    if (!rd)
        return;
    rd->stopped = stopped;
    rd->stopped_arg = arg;
    /* The threads run what is queued before they return. */
    join_all(rd);
    deliver(rd);
    if (rd->pending)
        jv_warn(rd->name, "%zu jobs never ended", rd->pending);
    uv_close((uv_handle_t *)&rd->async, on_closed);
    uv_close((uv_handle_t *)&rd->prepare, on_closed);
}
