/*
 * writer_after_test.c - what the loop learns from the store after a
 * writer job (jv_writer_read_after, writer.h): the applied vector when a
 * job changed more than this node's log, a new trust view when the job
 * wrote trust or a request asked for one, the cluster keys after a job
 * that applied peers' key operations, and a view or a vector due but not
 * read (a failed read) read at the next job, whatever that job is; and
 * this node's newest sequence number, published by the writer thread
 * before the loop hears of the commit.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>

#include <cmocka.h>

#include "alloc.h"
#include "hlc.h"
#include "storetest.h"
#include "testutil.h"
#include "writer.h"

typedef struct {
    jv_store *st;
    jv_keypair self;
    jv_writer_after a;
    uint64_t ms;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    f->st = st_open(":memory:");
    st_keypair(&f->self, 1);
    assert_int_equal(jv_store_set_self(f->st, &f->self.pk), JV_OK);
    jv_vv_init(&f->a.vv);
    f->a.trust_gen = jv_store_trust_gen(f->st);
    f->ms = 1000;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    jv_trustview_free(f->a.trust);
    jv_auth_ckeys_free(f->a.ckeys);
    jv_vv_fini(&f->a.vv);
    jv_store_close(f->st);
    free(f);
    return 0;
}

/* Runs one job of req on the store, then reads what follows it. */
static void run(fx *f, jv_write_req *req)
{
    jv_trustview_free(f->a.trust);
    f->a.trust = NULL;
    jv_writer_run(f->st, &f->self, jv_hlc_make(f->ms++, 0), req);
    assert_int_equal(req->err, JV_OK);
    jv_writer_read_after(f->st, req, &f->a);
}

static void local_req(jv_write_req *r, jv_intent *in)
{
    memset(r, 0, sizeof(*r));
    r->group.intents = in;
    r->group.n = 1;
}

/* What follows job r, read with no memory to allocate: it fails. */
static void read_after_failing(fx *f, const jv_write_req *r)
{
    jv_alloc_fail_after(0);
    jv_writer_read_after(f->st, r, &f->a);
    jv_alloc_fail_reset();
    assert_int_equal(f->a.err, JV_ENOMEM);
}

/* A plain write: one counter increment. */
static void counter_write(fx *f, jv_write_req *r, jv_intent *in)
{
    *in = st_counter("c", 1);
    local_req(r, in);
    run(f, r);
}

/* A plain write reads nothing: its own sequence says all. */
static void test_plain_write(void **state)
{
    fx *f = *state;
    jv_write_req r;
    jv_intent in;
    counter_write(f, &r, &in);
    assert_true(jv_writer_own_seq(&r) > 0);
    assert_false(f->a.vv_read);
    assert_null(f->a.trust);
    assert_int_equal(f->a.err, JV_OK);
}

/* A trust write: the vector and a view that has it. */
static void test_trust_write(void **state)
{
    fx *f = *state;
    jv_write_req r;
    jv_id other = jv_test_id(3);
    jv_intent in = st_trust(&other, true, jv_hlc_make(900, 0), "three");
    bool before = true;
    local_req(&r, &in);
    assert_int_equal(jv_store_is_trusted(f->st, &other, &before), JV_OK);
    assert_false(before);
    run(f, &r);
    assert_int_equal(jv_writer_own_seq(&r), 0);
    assert_true(f->a.vv_read);
    jv_vv want;
    jv_vv_init(&want);
    assert_int_equal(jv_store_vv(f->st, &want), JV_OK);
    assert_true(jv_vv_get(&f->a.vv, &f->self.pk) > 0);
    assert_int_equal(jv_vv_get(&f->a.vv, &f->self.pk),
                     jv_vv_get(&want, &f->self.pk));
    jv_vv_fini(&want);
    assert_non_null(f->a.trust);
    assert_true(jv_trustview_trusted(f->a.trust, &other));
    assert_string_equal(jv_trustview_entry(f->a.trust, &other)->name.p,
                        "three");
    /* The next plain write brings no view: nothing moved. */
    jv_write_req p;
    jv_intent c;
    counter_write(f, &p, &c);
    assert_null(f->a.trust);
}

/* Asked for a view (a snapshot installed elsewhere), the read fails: the
 * next job, a plain write, reads it. */
static void test_reread_retried(void **state)
{
    fx *f = *state;
    jv_write_req r;
    memset(&r, 0, sizeof(r));
    r.apply_flags = JV_APPLY_RECHECK;
    r.reread_trust = true;
    jv_writer_run(f->st, &f->self, jv_hlc_make(f->ms++, 0), &r);
    assert_int_equal(r.err, JV_OK);
    /* Room for the vector, none for the view. */
    assert_int_equal(jv_store_vv(f->st, &f->a.vv), JV_OK);
    read_after_failing(f, &r);
    assert_null(f->a.trust);
    assert_true(f->a.dirty);

    jv_write_req p;
    jv_intent c;
    counter_write(f, &p, &c);
    assert_non_null(f->a.trust);
    assert_int_equal(f->a.err, JV_OK);
    assert_false(f->a.dirty);
    assert_true(jv_trustview_trusted(f->a.trust, &f->self.pk));
}

/* A peer's batch adding a cluster key brings the keys; a plain write after
 * it brings none. */
/* A trusted peer's batch adding cluster key kCluster0001, applied in one
 * job of jv_writer_run (nothing read after it). */
static void peer_key_job(fx *f, st_batch *b, jv_remote_batch *rb,
                         jv_write_req *r)
{
    jv_keypair other;
    st_keypair(&other, 2);
    jv_write_req t;
    jv_intent tin = st_trust(&other.pk, true, jv_hlc_make(900, 0), "two");
    local_req(&t, &tin);
    run(f, &t);
    assert_null(f->a.ckeys);

    jv_op op = {.kind = JV_OP_KEY_ADD};
    op.key_add.id = jv_str_c("kCluster0001");
    op.key_add.name = jv_str_c("svc");
    op.key_add.role = jv_str_c("writer");
    memset(op.key_add.hash, 7, JV_OP_KEY_HASH_LEN);
    op.key_add.time_ms = 950;
    op.key_add.by = jv_str_c("admin");
    uint8_t prev[JV_HASH_LEN] = {0};
    st_batch_make(b, &other, 1, prev, jv_hlc_make(950, 0), &op, 1);
    *rb = (jv_remote_batch){.body = b->body.data, .len = b->body.len};
    memcpy(rb->sig, b->sig, JV_SIG_LEN);
    memset(r, 0, sizeof(*r));
    r->remote = rb;
    r->nremote = 1;
    jv_writer_run(f->st, &f->self, jv_hlc_make(f->ms++, 0), r);
    assert_int_equal(r->err, JV_OK);
    assert_int_equal(rb->result, JV_OK);
    assert_int_equal(r->stats.keys, 1);
}

/* A peer's batch adding a cluster key brings the keys; a plain write after
 * it brings none. */
static void test_peer_keys(void **state)
{
    fx *f = *state;
    jv_keypair other;
    st_keypair(&other, 2);
    st_batch b;
    jv_remote_batch rb;
    jv_write_req r;
    peer_key_job(f, &b, &rb, &r);
    jv_writer_read_after(f->st, &r, &f->a);
    assert_non_null(f->a.ckeys);
    assert_true(f->a.vv_read);
    assert_int_equal(jv_vv_get(&f->a.vv, &other.pk), 1);
    /* The loop takes them: the key is known as a cluster key. */
    jv_auth *auth = jv_auth_new(0, 0);
    assert_non_null(auth);
    bool cluster = false;
    assert_false(jv_auth_key_known(auth, "kCluster0001", &cluster));
    assert_int_equal(jv_auth_ckeys_take(auth, f->a.ckeys), JV_OK);
    assert_true(jv_auth_key_known(auth, "kCluster0001", &cluster));
    assert_true(cluster);
    jv_auth_free(auth);
    jv_auth_ckeys_free(f->a.ckeys);
    f->a.ckeys = NULL;

    jv_write_req p;
    jv_intent c;
    counter_write(f, &p, &c);
    assert_null(f->a.ckeys);
    assert_false(f->a.vv_read);
    st_batch_fini(&b);
}

/* The keys could not be read after a job that applied a peer's key
 * operation: the next job, a plain write, reads them. */
static void test_keys_retried(void **state)
{
    fx *f = *state;
    st_batch b;
    jv_remote_batch rb;
    jv_write_req r;
    peer_key_job(f, &b, &rb, &r);
    /* Room for the vector (read first), none for the keys. */
    assert_int_equal(jv_store_vv(f->st, &f->a.vv), JV_OK);
    read_after_failing(f, &r);
    assert_null(f->a.ckeys);
    assert_true(f->a.ckeys_due);

    jv_write_req p;
    jv_intent c;
    counter_write(f, &p, &c);
    assert_non_null(f->a.ckeys);
    assert_false(f->a.ckeys_due);
    jv_auth *auth = jv_auth_new(0, 0);
    bool cluster = false;
    assert_int_equal(jv_auth_ckeys_take(auth, f->a.ckeys), JV_OK);
    assert_true(jv_auth_key_known(auth, "kCluster0001", &cluster));
    jv_auth_free(auth);
    st_batch_fini(&b);
}

/* The vector could not be read after a job that needed it: the next job,
 * a plain write that needs none, reads it. */
static void test_vector_retried(void **state)
{
    fx *f = *state;
    jv_write_req c1;
    jv_intent in1;
    counter_write(f, &c1, &in1);
    jv_write_req r;
    memset(&r, 0, sizeof(r));
    r.apply_flags = JV_APPLY_RECHECK;
    jv_writer_run(f->st, &f->self, jv_hlc_make(f->ms++, 0), &r);
    assert_int_equal(r.err, JV_OK);
    /* No room for the vector. */
    jv_vv_fini(&f->a.vv);
    jv_vv_init(&f->a.vv);
    read_after_failing(f, &r);
    assert_false(f->a.vv_read);
    assert_true(f->a.vv_due);

    jv_write_req p;
    jv_intent c;
    counter_write(f, &p, &c);
    assert_true(f->a.vv_read);
    assert_false(f->a.vv_due);
    assert_int_equal(jv_vv_get(&f->a.vv, &f->self.pk), jv_writer_own_seq(&p));
    assert_int_equal(jv_writer_own_head(&p, &f->a, &f->self.pk),
                     jv_writer_own_seq(&p));
}

/* -- the writer thread: this node's head is published before the loop
 * hears of the commit ------------------------------------------------- */

typedef struct {
    jv_writer *w;
    uint64_t head_seen; /* jv_writer_committed_head in the observer */
    uint64_t own_seq;
    int done, stopped;
} thread_fx;

static void on_job(void *arg, const jv_writer_job *j)
{
    thread_fx *t = arg;
    t->head_seen = jv_writer_committed_head(t->w);
    t->own_seq = j->own_seq;
    jv_trustview_free(j->trust);
    jv_auth_ckeys_free(j->ckeys);
}

static void on_done(jv_write_req *r)
{
    thread_fx *t = r->arg;
    assert_int_equal(r->err, JV_OK);
    t->done++;
}

static void on_stopped(void *arg)
{
    ((thread_fx *)arg)->stopped = 1;
}

static void test_committed_head(void **state)
{
    fx *f = *state;
    uv_loop_t loop;
    jv_hlc clock;
    thread_fx t = {0};
    assert_int_equal(uv_loop_init(&loop), 0);
    jv_hlc_init(&clock, 60000);
    assert_int_equal(jv_writer_start(&loop, f->st, &f->self, &clock, &t.w),
                     JV_OK);
    jv_writer_observe(t.w, on_job, &t);
    assert_int_equal(jv_writer_committed_head(t.w), 0);
    for (int k = 1; k <= 3; k++) {
        jv_write_req r;
        jv_intent in = st_counter("c", 1);
        local_req(&r, &in);
        r.done = on_done;
        r.arg = &t;
        jv_writer_submit(t.w, &r);
        while (t.done < k)
            uv_run(&loop, UV_RUN_ONCE);
        assert_int_equal(r.info.last_seq, (uint64_t)k);
        assert_int_equal(t.own_seq, (uint64_t)k);
        assert_int_equal(t.head_seen, (uint64_t)k);
        assert_int_equal(jv_writer_committed_head(t.w), (uint64_t)k);
    }
    jv_writer_stop(t.w, on_stopped, &t);
    while (!t.stopped)
        uv_run(&loop, UV_RUN_ONCE);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_plain_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trust_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reread_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_peer_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vector_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_committed_head, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
