/*
 * writer_after_test.c - what the loop learns from the store after a
 * writer job (jv_writer_read_after, writer.h): the applied vector when a
 * job changed more than this node's log, a new trust view when the job
 * wrote trust or a request asked for one, and a view asked for but not
 * read (a failed read) read at the next job, whatever that job is.
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

/* A plain write reads nothing: its own sequence says all. */
static void test_plain_write(void **state)
{
    fx *f = *state;
    jv_write_req r;
    jv_intent in = st_counter("c", 1);
    local_req(&r, &in);
    run(f, &r);
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
    jv_intent c = st_counter("c", 1);
    local_req(&p, &c);
    run(f, &p);
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
    jv_alloc_fail_after(0);
    jv_writer_read_after(f->st, &r, &f->a);
    jv_alloc_fail_reset();
    assert_null(f->a.trust);
    assert_int_equal(f->a.err, JV_ENOMEM);
    assert_true(f->a.dirty);

    jv_write_req p;
    jv_intent c = st_counter("c", 1);
    local_req(&p, &c);
    run(f, &p);
    assert_non_null(f->a.trust);
    assert_int_equal(f->a.err, JV_OK);
    assert_false(f->a.dirty);
    assert_true(jv_trustview_trusted(f->a.trust, &f->self.pk));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_plain_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trust_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reread_retried, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
