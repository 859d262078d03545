/*
 * readers.h - a small pool of threads that read the database for the loop.
 *
 * The loop thread never runs SQL or compression for a request: it hands a
 * job to a pool, and the job's `done` runs back on the loop. Each thread
 * of a pool owns a database connection of its own, opened once at start
 * (WAL: readers never wait for the writer, nor it for them), so a job
 * costs a queue push and a wake-up, not an open.
 *
 *   loop: jv_readers_submit() --[queue, mutex, cond]--> thread: fn(st, arg)
 *   loop: done(arg, err, msg) <--[done list, uv_async_t]-- thread
 *
 * Read-your-writes: a write is acknowledged after its commit has
 * returned, and every job's statements begin after it was submitted, so
 * a read submitted after an acknowledgement sees that write.
 *
 * Order: jobs start in the order submitted (those marked `later` after
 * every other waiting job), but several run at once (one
 * per thread) and may end in any order. Callers that need an order (one
 * keep-alive connection's answers) get it from holding their next request
 * until the answer: http.h does.
 *
 * Threading: new, submit and stop on the loop thread; fn on a pool
 * thread (it must not touch loop state); done on the loop thread.
 */
#ifndef JV_READERS_H
#define JV_READERS_H

#include <stddef.h>
#include <uv.h>

#include "store.h"

typedef struct jv_readers jv_readers;

/* Runs on a pool thread with its connection; the return value goes to
 * done. */
typedef jv_err (*jv_read_fn)(jv_store *st, void *arg);
/* Runs on the loop thread. msg: the connection's message when err is not
 * JV_OK (valid during the call only). */
typedef void (*jv_read_done)(void *arg, jv_err err, const char *msg);

/* A job, embedded in the caller's object; the caller keeps it alive until
 * done has run. */
typedef struct jv_read_job {
    jv_read_fn fn;
    jv_read_done done;
    void *arg;
    /* A continuation (the next piece of a streamed answer): runs only when
     * no other job waits, so that hundreds of streams never delay a new
     * request's read. */
    bool later;
    /* private */
    struct jv_read_job *next;
    jv_err err;
    char msg[160];
} jv_read_job;

/* Starts nthreads threads, each opening db_path (which must exist and have
 * been checked by this process) with `sync` and max_skew_ms (what
 * jv_store_held_list reports, store.h). name goes to the log. On failure
 * nothing is left running and msg says why. */
jv_err jv_readers_new(uv_loop_t *loop, const char *name, const char *db_path,
                      jv_sync sync, uint64_t max_skew_ms, unsigned nthreads,
                      jv_readers **out, char *msg, size_t msglen);

/* Queues job (fn, done, arg set by the caller). JV_ECLOSED once stopping
 * (or rd NULL): then done is not called. */
jv_err jv_readers_submit(jv_readers *rd, jv_read_job *job);

/* Jobs submitted whose done has not run yet. */
size_t jv_readers_pending(const jv_readers *rd);

/* Stops taking jobs, lets the queued ones run (their done is called),
 * joins the threads, closes the connections and the wake-up handle, then
 * calls stopped(arg) on the loop. Frees the pool. */
void jv_readers_stop(jv_readers *rd, void (*stopped)(void *), void *arg);

#endif
