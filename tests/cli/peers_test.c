/*
 * peers_test.c - two real nodes driven only through jarvisctl: prepared
 * with `init` (which gives their ids before they run), made to trust each
 * other, paired with `peers add`; their exports differ (`diff` exits 1)
 * until they converge, then `diff` says identical and the export bytes
 * are equal, and `status` and `peers ls` show each peer with no lag.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ctl.h"

#define CONVERGE_MS 30000

static ctl_ctx C;
static jv_test_node A, B;

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* jarvisctl --json ARGS against node n, expecting code. */
static json_t *on(jv_test_node *n, int code, const char *a, const char *b,
                  const char *c, const char *d)
{
    jv_proc_result r;
    C.node = n->url;
    C.key = n->admin_key;
    CTL(&C, &r, "--json", a, b, c, d);
    C.node = C.key = NULL;
    CTL_EXPECT(&r, code);
    json_t *j = ctl_json(&r);
    jv_proc_result_fini(&r);
    return j;
}

static void export_to(jv_test_node *n, const char *path)
{
    jv_proc_result r;
    C.node = n->url;
    C.key = n->admin_key;
    CTL(&C, &r, "export", "-o", path);
    C.node = C.key = NULL;
    CTL_EXPECT(&r, 0);
    jv_proc_result_fini(&r);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = malloc(1 << 20);
    assert_non_null(buf);
    *len = fread(buf, 1, (1 << 20) - 1, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

static void init_dir(jv_test_node *n, char id[80])
{
    jv_proc_result r;
    assert_int_equal(jv_test_node_prepare(n), 0);
    CTL(&C, &r, "init", n->dir, "--json");
    CTL_EXPECT(&r, 0);
    json_t *j = ctl_json(&r);
    snprintf(id, 80, "%s", json_string_value(json_object_get(j, "node_id")));
    json_decref(j);
    jv_proc_result_fini(&r);
    assert_int_equal(strlen(id), 64);
}

static void test_two_nodes_converge(void **state)
{
    (void)state;
    char ida[80], idb[80], la[64], lb[64], fa[700], fb[700];
    init_dir(&A, ida);
    init_dir(&B, idb);
    /* Port 0: each node takes a free port and says which in its status
     * (a port picked here could be taken by another test meanwhile). */
    char *extra_a[] = {
        "--listen", "tcp://127.0.0.1:0", "--trust", idb, "--name", "a", NULL};
    char *extra_b[] = {
        "--listen", "tcp://127.0.0.1:0", "--trust", ida, "--name", "b", NULL};
    assert_int_equal(jv_test_node_restart(&A, extra_a), 0);
    assert_int_equal(jv_test_node_restart(&B, extra_b), 0);

    /* The ids init printed are the ids the nodes run with. */
    json_t *j = on(&A, 0, "status", NULL, NULL, NULL);
    assert_string_equal(json_string_value(json_object_get(j, "node_id")), ida);
    snprintf(la, sizeof la, "%s",
             json_string_value(json_object_get(j, "peer_address")));
    json_decref(j);
    j = on(&B, 0, "status", NULL, NULL, NULL);
    snprintf(lb, sizeof lb, "%s",
             json_string_value(json_object_get(j, "peer_address")));
    json_decref(j);
    assert_true(strncmp(la, "tcp://127.0.0.1:", 16) == 0 &&
                strncmp(lb, "tcp://127.0.0.1:", 16) == 0);

    json_decref(on(&A, 0, "counters", "incr", "hits", "5"));
    json_decref(on(&A, 0, "config", "set", "db/url", "postgres://a"));
    json_decref(on(&B, 0, "counters", "incr", "hits", "2"));
    json_decref(on(&B, 0, "archive", "add", "reports/b", "{\"rows\":1}"));
    /* Concurrent adds of one key: once converged it holds both values. */
    json_decref(on(&A, 0, "archive", "add", "shared", "\"from-a\""));
    json_decref(on(&B, 0, "archive", "add", "shared", "\"from-b\""));

    /* Apart: the exports differ, kind by kind. */
    snprintf(fa, sizeof fa, "%s/a.json", C.home);
    snprintf(fb, sizeof fb, "%s/b.json", C.home);
    export_to(&A, fa);
    export_to(&B, fb);
    jv_proc_result r;
    CTL(&C, &r, "diff", "--json", fa, fb);
    CTL_EXPECT(&r, 1);
    j = ctl_json(&r);
    json_t *kinds = json_object_get(j, "kinds");
    assert_int_equal(json_array_size(json_object_get(
                         json_object_get(kinds, "counters"), "different")),
                     1);
    assert_int_equal(json_array_size(json_object_get(
                         json_object_get(kinds, "config"), "only_a")),
                     1);
    assert_int_equal(json_array_size(json_object_get(
                         json_object_get(kinds, "archive"), "only_b")),
                     1);
    assert_int_equal(json_array_size(json_object_get(
                         json_object_get(kinds, "archive"), "different")),
                     1);
    json_decref(j);
    jv_proc_result_fini(&r);

    /* Paired both ways. */
    j = on(&A, 0, "peers", "add", lb, NULL);
    assert_string_equal(json_string_value(json_object_get(j, "address")), lb);
    json_decref(j);
    json_decref(on(&B, 0, "peers", "add", la, NULL));

    /* Converged: diff says identical and the bytes are equal. */
    int rc = -1;
    for (int waited = 0; waited < CONVERGE_MS && rc != 0; waited += 250) {
        sleep_ms(250);
        export_to(&A, fa);
        export_to(&B, fb);
        CTL(&C, &r, "diff", fa, fb);
        rc = r.status;
        if (rc == 0)
            assert_string_equal(r.out, "identical\n");
        jv_proc_result_fini(&r);
    }
    if (rc != 0) {
        jv_test_node_dump_log(&A);
        jv_test_node_dump_log(&B);
    }
    assert_int_equal(rc, 0);
    size_t na, nb;
    char *ba = slurp(fa, &na), *bb = slurp(fb, &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(ba, bb, na);
    free(ba);
    free(bb);

    j = on(&B, 0, "counters", "get", "hits", NULL);
    assert_int_equal(json_integer_value(json_object_get(j, "total")), 7);
    assert_int_equal(json_array_size(json_object_get(j, "shares")), 2);
    json_decref(j);

    /* Each side sees the other, with nothing lacking once it told its
     * vector (anti-entropy runs every second). */
    bool settled = false;
    for (int waited = 0; waited < CONVERGE_MS && !settled; waited += 250) {
        j = on(&A, 0, "status", NULL, NULL, NULL);
        json_t *p = json_array_get(json_object_get(j, "peers"), 0);
        settled =
            p != NULL && json_is_integer(json_object_get(p, "lacks_from_us")) &&
            json_integer_value(json_object_get(p, "lacks_from_us")) == 0 &&
            json_is_true(json_object_get(p, "reachable"));
        if (settled)
            assert_string_equal(
                json_string_value(json_object_get(p, "node_id")), idb);
        json_decref(j);
        if (!settled)
            sleep_ms(250);
    }
    assert_true(settled);
    C.node = A.url;
    C.key = A.admin_key;
    CTL(&C, &r, "peers", "ls");
    CTL_EXPECT(&r, 0);
    assert_true(ctl_has(r.out, lb));
    assert_true(ctl_has(r.out, "STATE"));
    assert_true(ctl_has(r.out, "reachable"));
    assert_false(ctl_has(r.out, "unreachable"));
    jv_proc_result_fini(&r);
    /* members: both nodes in one listing, converged. */
    CTL(&C, &r, "members");
    CTL_EXPECT(&r, 0);
    assert_true(ctl_has(r.out, lb));
    assert_true(ctl_has(r.out, "this node"));
    assert_true(ctl_has(r.out, "cluster converged"));
    jv_proc_result_fini(&r);
    j = on(&A, 0, "members", NULL, NULL, NULL);
    json_t *ms = json_object_get(j, "members");
    assert_int_equal(json_array_size(ms), 2);
    assert_true(json_is_true(json_object_get(j, "converged")));
    json_t *mb = json_array_get(ms, 1);
    assert_string_equal(json_string_value(json_object_get(mb, "node_id")), idb);
    assert_string_equal(json_string_value(json_object_get(mb, "sync")),
                        "converged");
    assert_int_equal(
        json_integer_value(json_object_get(mb, "protocol_version")), 4);
    assert_true(json_is_object(json_object_get(mb, "version_vector")));
    json_decref(j);
    C.node = A.url;
    C.key = A.admin_key;
    CTL(&C, &r, "status");
    CTL_EXPECT(&r, 0);
    assert_true(ctl_has(r.out, lb));
    assert_true(ctl_has(r.out, "(this node)"));
    jv_proc_result_fini(&r);

    /* archive get shows every concurrent value, not only the newest. */
    CTL(&C, &r, "archive", "get", "shared");
    CTL_EXPECT(&r, 0);
    assert_true(ctl_has(r.out, "2 concurrent values"));
    assert_true(ctl_has(r.out, "\"from-a\""));
    assert_true(ctl_has(r.out, "\"from-b\""));
    assert_true(ctl_has(r.out, ida));
    assert_true(ctl_has(r.out, idb));
    jv_proc_result_fini(&r);
    C.node = C.key = NULL;
    j = on(&B, 0, "archive", "get", "shared", NULL);
    assert_int_equal(json_integer_value(json_object_get(j, "values")), 2);
    assert_int_equal(json_array_size(json_object_get(j, "all")), 2);
    json_decref(j);
    C.node = A.url;
    C.key = A.admin_key;

    /* trust ls lists this node once, though the replicated list (B
     * trusts A) names it too. */
    char short_a[13];
    snprintf(short_a, sizeof short_a, "%.12s", ida);
    for (int waited = 0;; waited += 250) {
        j = on(&A, 0, "trust", "ls", NULL, NULL);
        bool has_a = false;
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(j, "trust"), i, e)
        {
            has_a |= strcmp(json_string_value(json_object_get(e, "node_id")),
                            ida) == 0;
        }
        json_decref(j);
        if (has_a)
            break;
        assert_true(waited < CONVERGE_MS);
        sleep_ms(250);
    }
    C.node = A.url;
    C.key = A.admin_key;
    CTL(&C, &r, "trust", "ls");
    CTL_EXPECT(&r, 0);
    /* Rows start with the NODE column (SET BY may name A again). */
    int rows_a = 0;
    for (const char *l = r.out; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : l)
        rows_a += strncmp(l, short_a, strlen(short_a)) == 0;
    assert_int_equal(rows_a, 1);
    assert_true(ctl_has(r.out, "(this node)"));
    jv_proc_result_fini(&r);

    /* A name outlives trust rm, and a trust add without --name. */
    CTL(&C, &r, "trust", "add", idb, "--name", "bee");
    CTL_EXPECT(&r, 0);
    jv_proc_result_fini(&r);
    CTL(&C, &r, "trust", "rm", idb);
    CTL_EXPECT(&r, 0);
    jv_proc_result_fini(&r);
    C.node = C.key = NULL;
    j = on(&A, 0, "trust", "ls", NULL, NULL);
    size_t ti;
    json_t *te;
    bool named = false;
    json_array_foreach(json_object_get(j, "trust"), ti, te)
    {
        if (strcmp(json_string_value(json_object_get(te, "node_id")), idb))
            continue;
        assert_false(json_is_true(json_object_get(te, "trusted")));
        assert_string_equal(json_string_value(json_object_get(te, "name")),
                            "bee");
        named = true;
    }
    assert_true(named);
    json_decref(j);
    C.node = A.url;
    C.key = A.admin_key;
    CTL(&C, &r, "trust", "add", idb);
    CTL_EXPECT(&r, 0);
    assert_true(ctl_has(r.out, "as bee"));
    jv_proc_result_fini(&r);

    /* Removed: listed no more. */
    CTL(&C, &r, "peers", "rm", lb);
    CTL_EXPECT(&r, 0);
    jv_proc_result_fini(&r);
    C.node = C.key = NULL;
    j = on(&A, 0, "peers", "ls", NULL, NULL);
    assert_int_equal(json_array_size(json_object_get(j, "peers")), 0);
    json_decref(j);

    assert_int_equal(jv_test_node_stop(&A), 0);
    assert_int_equal(jv_test_node_stop(&B), 0);
}

static int setup(void **state)
{
    (void)state;
    ctl_init(&C);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    jv_test_node_cleanup(&A);
    jv_test_node_cleanup(&B);
    ctl_fini(&C);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_nodes_converge),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
