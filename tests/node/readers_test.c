/* readers_test.c - the reader pool (node/readers.c) on a real loop: jobs
 * submitted in bursts from timer callbacks (not I/O) all run, each once;
 * those run together in one snapshot still see every write committed
 * before they were submitted (read-your-writes), and a job that opens a
 * snapshot of its own inside one works; continuations run too; stopping
 * runs what is queued. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "readers.h"
#include "storetest.h"

#define ROUNDS 60
#define PER    40 /* jobs per round: more than one thread's batch */

typedef struct tctx tctx;

typedef struct {
    jv_read_job job;
    tctx *t;
    int want;    /* rows committed before it was submitted */
    int seen[2]; /* rows read (twice when nested) */
    bool nested, ran, done;
} tjob;

struct tctx {
    uv_loop_t loop;
    uv_timer_t tick, watchdog;
    jv_readers *rd;
    jv_store *w;
    jv_keypair kp;
    tjob jobs[ROUNDS * PER + 1];
    int round, dones, stopped;
    bool timed_out;
};

static jv_err count_row(void *arg, const jv_config_row *r)
{
    (void)r;
    (*(int *)arg)++;
    return JV_OK;
}

static int rows(jv_store *st)
{
    int n = 0;
    if (jv_store_config_list(st, jv_str_c(""), jv_str_c(""), 0, count_row,
                             &n) != JV_OK)
        return -1;
    return n;
}

static jv_err job_run(jv_store *st, void *arg)
{
    tjob *j = arg;
    j->ran = true;
    if (!j->nested) {
        j->seen[0] = j->seen[1] = rows(st);
        return JV_OK;
    }
    jv_err err = jv_store_read_begin(st);
    if (err)
        return err;
    j->seen[0] = rows(st);
    j->seen[1] = rows(st);
    jv_store_read_end(st);
    return JV_OK;
}

static void job_done(void *arg, jv_err err, const char *msg)
{
    tjob *j = arg;
    if (err)
        fail_msg("a read failed: %s", msg);
    if (j->done)
        fail_msg("a job's done ran twice");
    j->done = true;
    j->t->dones++;
}

static void submit(tctx *t, tjob *j, int want, bool nested, bool later)
{
    j->t = t;
    j->want = want;
    j->nested = nested;
    j->job = (jv_read_job){
        .fn = job_run, .done = job_done, .arg = j, .later = later};
    assert_int_equal(jv_readers_submit(t->rd, &j->job), JV_OK);
}

static void stopped(void *arg)
{
    tctx *t = arg;
    t->stopped++;
    uv_close((uv_handle_t *)&t->watchdog, NULL);
}

/* One round: a write committed, then a burst of reads that must see it;
 * the last round stops the pool with its reads still queued. */
static void on_tick(uv_timer_t *h)
{
    tctx *t = h->data;
    char key[32];
    snprintf(key, sizeof key, "k/%03d", t->round);
    jv_intent in = st_config(key, "\"v\"", 100);
    assert_int_equal(
        st_commit(t->w, &t->kp, 1000 + (uint64_t)t->round, &in, 1, NULL),
        JV_OK);
    int want = t->round + 1;
    for (int i = 0; i < PER; i++)
        submit(t, &t->jobs[t->round * PER + i], want, i % 7 == 0, i == PER - 1);
    if (++t->round == ROUNDS) {
        uv_close((uv_handle_t *)&t->tick, NULL);
        jv_readers_stop(t->rd, stopped, t);
    }
}

static void on_watchdog(uv_timer_t *h)
{
    tctx *t = h->data;
    t->timed_out = true;
    uv_stop(&t->loop);
}

static void test_bursts(void **state)
{
    (void)state;
    char *dir = st_mkdtemp(), *path = st_path(dir, "jarvis.db"), msg[256];
    tctx *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    st_keypair(&t->kp, 1);
    t->w = st_open(path);
    assert_int_equal(jv_store_set_self(t->w, &t->kp.pk), JV_OK);
    assert_int_equal(uv_loop_init(&t->loop), 0);
    assert_int_equal(jv_readers_new(&t->loop, "test-readers", path,
                                    JV_SYNC_NORMAL, 0, 2, &t->rd, msg,
                                    sizeof msg),
                     JV_OK);
    uv_timer_init(&t->loop, &t->tick);
    uv_timer_init(&t->loop, &t->watchdog);
    t->tick.data = t->watchdog.data = t;
    uv_timer_start(&t->tick, on_tick, 0, 1);
    uv_timer_start(&t->watchdog, on_watchdog, 30000, 0);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    if (t->timed_out)
        fail_msg("reads still queued after 30 s: %d of %d done", t->dones,
                 ROUNDS * PER);
    assert_int_equal(t->stopped, 1);
    assert_int_equal(t->dones, ROUNDS * PER);
    for (int i = 0; i < ROUNDS * PER; i++) {
        tjob *j = &t->jobs[i];
        assert_true(j->ran && j->done);
        if (j->seen[0] < j->want)
            fail_msg("job %d saw %d rows, %d were committed before it", i,
                     j->seen[0], j->want);
        /* One snapshot inside a job's own pair, batched or not. */
        assert_int_equal(j->seen[0], j->seen[1]);
    }
    /* After stop: refused, and done is not called. */
    tjob late;
    memset(&late, 0, sizeof late);
    late.job = (jv_read_job){.fn = job_run, .done = job_done, .arg = &late};
    assert_int_equal(jv_readers_submit(NULL, &late.job), JV_ECLOSED);
    assert_int_equal(uv_loop_close(&t->loop), 0);
    jv_store_close(t->w);
    free(t);
    free(path);
    st_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bursts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
