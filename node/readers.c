/*
 * readers.c - reader threads with connections of their own (contract in
 * readers.h).
 *
 * One mutex guards both lists: the queue (jobs waiting for a thread,
 * oldest first) and the done list (jobs run, waiting for the loop). A
 * thread takes the oldest job, runs it without the lock, puts it on the
 * done list and wakes the loop; the loop's async callback takes the whole
 * done list at once and calls each done in the order the jobs ended.
 * Connections are opened at start on the caller's thread (SQLite's
 * connections may move between threads; each is used by one thread at a
 * time) and closed after the threads have been joined.
 */
#include "readers.h"

#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "log.h"

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
    /* under mu */
    jv_read_job *q_head, *q_tail; /* new requests' reads */
    jv_read_job *l_head, *l_tail; /* continuations (job->later) */
    jv_read_job *d_head, *d_tail;
    bool stopping;
    /* loop thread */
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
    }
    return j;
}

static void reader_main(void *arg)
{
    reader_thread *t = arg;
    jv_readers *rd = t->rd;
    uv_mutex_lock(&rd->mu);
    for (;;) {
        while (!rd->q_head && !rd->l_head && !rd->stopping)
            uv_cond_wait(&rd->cv, &rd->mu);
        jv_read_job *j = take(rd);
        if (!j)
            break; /* stopping, and nothing left to run */
        uv_mutex_unlock(&rd->mu);

        j->err = j->fn(t->st, j->arg);
        j->msg[0] = '\0';
        if (j->err)
            snprintf(j->msg, sizeof(j->msg), "%s", jv_store_errmsg(t->st));
        j->next = NULL;

        uv_mutex_lock(&rd->mu);
        if (rd->d_tail)
            rd->d_tail->next = j;
        else
            rd->d_head = j;
        rd->d_tail = j;
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
    uv_cond_signal(&rd->cv);
    uv_mutex_unlock(&rd->mu);
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
}
