/*
 * bundle_compact_test.c - bundles and bounded history: a bundle whose
 * target lacks batches its maker compacted carries the maker's base
 * snapshot, installed at the target exactly as a peer's would be.
 *
 * A and C are peers with --log-retention 0; B never connects to either
 * (no peer lines) and is behind their --peer-horizon, so it holds nothing
 * back: A's log empties into its base. Then:
 *   - B writes of its own; bundles from A with a tampered, an
 *     untrusted-maker and a truncated snapshot (test faults) are each
 *     refused whole, B's export unchanged;
 *   - the honest bundle carries the base and the batches after its cut:
 *     B installs it (a join: its own writes survive), B's bundle back to
 *     A carries B's writes, and A and B end with identical exports; B's
 *     verify passes from the base it now has;
 *   - applying the bundle again changes nothing;
 *   - a second round (A writes and compacts again; --for B from what A
 *     learnt of B's bundle) converges the same way;
 *   - --all from a node with a base always carries it; inspect shows it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nettest.h"

static jv_cluster C;
static jv_rng R;

enum {
    A,
    B,
    CC
};

static char path_buf[16][700];
static unsigned path_next;

static const char *file(const char *name)
{
    char *p = path_buf[path_next++ % 16];
    snprintf(p, sizeof path_buf[0], "%s/%s", C.root, name);
    return p;
}

/* jarvisctl on node i with a[] (NULL-ended): exit `want`, saying
 * must_say if not NULL; stdout (malloc'd) into out if not NULL. */
static void ctl_v(size_t i, int want, char **out, const char *must_say,
                  const char *const *a)
{
    size_t n = 0;
    while (a[n])
        n++;
    NT_CHECK(&C, n <= 8);
    jv_proc_result r;
#define ARG(k) (n > (k) ? a[k] : NULL)
    NT_OK(&C, jv_cluster_ctl(&C, i, &r, ARG(0), ARG(1), ARG(2), ARG(3), ARG(4),
                             ARG(5), ARG(6), ARG(7), (char *)NULL));
#undef ARG
    if (r.status != want ||
        (must_say && !strstr(r.err, must_say) && !strstr(r.out, must_say))) {
        char why[1200];
        int st = r.status;
        snprintf(why, sizeof why, "%.500s | %.500s", r.out, r.err);
        jv_proc_result_fini(&r);
        NT_FAIL(&C, "jarvisctl %s %s on node %zu: exit %d, not %d (%s)", a[0],
                n > 1 ? a[1] : "", i, st, want, why);
    }
    if (out) {
        *out = r.out;
        r.out = NULL;
    }
    jv_proc_result_fini(&r);
}

#define CTL(i, want, out, say, ...) \
    ctl_v((i), (want), (out), (say), (const char *const[]){__VA_ARGS__, NULL})

static json_t *ctl_json(size_t i, const char *cmd, const char *f)
{
    char *out;
    CTL(i, 0, &out, NULL, "--json", "bundle", cmd, f);
    json_t *j = json_loads(out, 0, NULL);
    free(out);
    NT_CHECK(&C, j != NULL);
    return j;
}

static json_int_t field(const json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

static char *export_of(size_t i, size_t *len)
{
    char *e;
    NT_OK(&C, jv_cluster_export(&C, i, &e, len));
    return e;
}

static void increments(size_t i, const char *name, int n)
{
    for (int k = 0; k < n; k++)
        json_decref(nt_req(&C, i, 200, "POST", "{\"by\":1}",
                           "/v1/counters/%s/increment", name));
}

static void check_total(size_t i, const char *name, long long want)
{
    json_t *o = nt_req(&C, i, 200, "GET", NULL, "/v1/counters/%s", name);
    json_int_t got = json_integer_value(json_object_get(o, "total"));
    if (got != want)
        NT_FAIL(&C, "node %zu: %s = %lld, want %lld", i, name, (long long)got,
                want);
    json_decref(o);
}

/* Polls until node i's log holds no batch (all folded into its base). */
static void wait_log_empty(size_t i)
{
    double end = jv_cluster_now_ms() + nt_ms(60000);
    for (;;) {
        double b = nt_metric(&C, i, "jarvis_log_batches");
        if (b == 0)
            return;
        if (jv_cluster_now_ms() > end)
            NT_FAIL(&C, "node %zu: %.0f batches stay in its log", i, b);
        jv_cluster_sleep_ms(100);
    }
}

static void set_snap_fault(size_t i, const char *mode)
{
    char body[64];
    snprintf(body, sizeof(body), "{\"snapshot\":\"%s\"}", mode);
    json_decref(nt_req(&C, i, 204, "POST", body, "/v1/debug/faults"));
}

/* The bundle's snapshot as inspect at node i reports it (null: none). */
static json_t *inspect_snap(size_t i, const char *f, bool *would_apply)
{
    json_t *in = ctl_json(i, "inspect", f);
    json_t *s = json_incref(json_object_get(in, "snapshot"));
    if (would_apply)
        *would_apply = json_is_true(json_object_get(in, "would_apply"));
    json_decref(in);
    NT_CHECK(&C, s != NULL);
    return s;
}

/* A bundle from A made with snapshot fault `mode` is refused by B with
 * nothing applied, and inspect there says why. */
static void refused(const char *mode, const char *vec, const char *say)
{
    const char *f = file("faulted.bundle");
    size_t l0, l1;
    set_snap_fault(A, mode);
    CTL(A, 0, NULL, NULL, "bundle", "create", "-o", f, "--since", vec);
    set_snap_fault(A, "none");
    bool would = true;
    json_t *s = inspect_snap(B, f, &would);
    NT_CHECK(&C, json_is_object(s) && !would);
    json_decref(s);
    char *e0 = export_of(B, &l0);
    CTL(B, 1, NULL, say, "bundle", "apply", f);
    char *e1 = export_of(B, &l1);
    NT_CHECK(&C, l0 == l1 && !memcmp(e0, e1, l0));
    free(e0);
    free(e1);
    json_decref(nt_req(&C, B, 404, "GET", NULL, "/v1/counters/hits"));
}

static void check_verify(size_t i)
{
    json_t *v = nt_req(&C, i, 200, "POST", "{}", "/v1/verify");
    if (!json_is_true(json_object_get(v, "ok"))) {
        char *s = json_dumps(v, 0);
        NT_FAIL(&C, "node %zu: verify: %s", i, s);
    }
    json_decref(v);
}

static void test_bundle_carries_snapshot(void **state)
{
    (void)state;
    static char *const flags[] = {
        "--sync-interval", "200", "--log-retention", "0",
        "--peer-horizon",  "2",   "--test-faults",   NULL};
    jv_cluster_opts o = {.n = 3, .no_peers = true, .flags = flags};
    o.seed = jv_rng_next(&R);
    NT_OK(&C, jv_cluster_init(&C, &o));
    size_t pa = CC, pc = A;
    NT_OK(&C, jv_cluster_write_config(&C, A, &pa, 1));
    NT_OK(&C, jv_cluster_write_config(&C, CC, &pc, 1));
    NT_OK(&C, jv_cluster_start_all(&C));

    /* A and C write and compact; B, never heard from, holds nothing
     * back. */
    nt_expect e = {0};
    nt_random_writes(&C, A, &R, 20, &e);
    nt_random_writes(&C, CC, &R, 20, &e);
    increments(A, "hits", 30);
    increments(CC, "hits", 30);
    size_t ac[] = {A, CC};
    nt_converge(&C, ac, 2, nt_ms(60000));
    wait_log_empty(A);

    /* B's own writes, made before anything arrives. */
    increments(B, "local", 7);
    json_decref(nt_req(&C, B, 200, "PUT", "{\"value\":\"from-b\"}",
                       "/v1/config/site/b"));
    const char *vec = file("b-vector.json");
    CTL(B, 0, NULL, NULL, "bundle", "vector", "-o", vec);

    /* Lying makers first: each refused whole. */
    refused("flip", vec, "snapshot");
    refused("untrusted", vec, "not trusted");
    refused("truncate", vec, "snapshot");

    /* The honest bundle: the base, then the batches after its cut. */
    const char *f1 = file("ab1.bundle");
    CTL(A, 0, NULL, NULL, "bundle", "create", "-o", f1, "--since", vec);
    json_t *sn = inspect_snap(B, f1, NULL);
    NT_CHECK(&C, json_is_object(sn));
    NT_CHECK(&C, !strcmp(json_string_value(json_object_get(sn, "maker")),
                         C.node[A].id));
    NT_CHECK(&C, field(sn, "origins") >= 2 && field(sn, "bytes") > 0);
    NT_CHECK(&C, json_is_true(json_object_get(sn, "signature_valid")) &&
                     json_is_true(json_object_get(sn, "maker_trusted")) &&
                     json_is_true(json_object_get(sn, "new_here")));
    json_decref(sn);
    json_t *s = ctl_json(B, "apply", f1);
    sn = json_object_get(s, "snapshot");
    NT_CHECK(&C, json_is_object(sn) &&
                     json_is_true(json_object_get(sn, "new_here")));
    json_decref(s);
    check_total(B, "hits", 60);
    check_total(B, "local", 7);

    /* Back to A (B learnt A's vector from its bundle): B's writes. */
    const char *f2 = file("ba1.bundle");
    CTL(B, 0, NULL, NULL, "bundle", "create", "-o", f2, "--for", C.node[A].id);
    s = ctl_json(A, "apply", f2);
    NT_CHECK(&C, field(s, "applied") > 0 && field(s, "held_gap") == 0);
    NT_CHECK(&C, json_is_null(json_object_get(s, "snapshot")));
    json_decref(s);
    size_t ab[] = {A, B};
    nt_converge(&C, ab, 2, nt_ms(30000));
    nt_check_expect(&C, B, &e);
    check_total(A, "local", 7);
    check_verify(B);

    /* Twice: nothing changes. */
    size_t l0, l1;
    char *e0 = export_of(B, &l0);
    s = ctl_json(B, "apply", f1);
    NT_CHECK(&C, field(s, "applied") == 0);
    sn = json_object_get(s, "snapshot");
    NT_CHECK(&C, json_is_object(sn) &&
                     json_is_false(json_object_get(sn, "new_here")));
    json_decref(s);
    char *e1 = export_of(B, &l1);
    NT_CHECK(&C, l0 == l1 && !memcmp(e0, e1, l0));
    free(e0);
    free(e1);

    /* A second round: A compacts past what B holds again. */
    increments(A, "hits", 15);
    increments(B, "local", 3);
    nt_converge(&C, ac, 2, nt_ms(60000));
    wait_log_empty(A);
    const char *f3 = file("ab2.bundle");
    CTL(A, 0, NULL, NULL, "bundle", "create", "-o", f3, "--for", C.node[B].id);
    sn = inspect_snap(B, f3, NULL);
    NT_CHECK(&C, json_is_object(sn) &&
                     json_is_true(json_object_get(sn, "new_here")));
    json_decref(sn);
    char *human;
    CTL(B, 0, &human, "snapshot installed first", "bundle", "apply", f3);
    printf("%s", human);
    free(human);
    CTL(B, 0, NULL, NULL, "bundle", "create", "-o", f2, "--for", C.node[A].id);
    json_decref(ctl_json(A, "apply", f2));
    nt_converge(&C, ab, 2, nt_ms(30000));
    check_total(B, "hits", 75);
    check_total(A, "local", 10);
    check_total(B, "local", 10);
    check_verify(A);
    check_verify(B);

    /* --all from a node with a base carries it. */
    const char *f4 = file("all.bundle");
    CTL(A, 0, NULL, NULL, "bundle", "create", "-o", f4, "--all");
    sn = inspect_snap(B, f4, NULL);
    NT_CHECK(&C, json_is_object(sn));
    json_decref(sn);
    CTL(B, 0, &human, "snapshot", "bundle", "inspect", f4);
    printf("%s", human);
    free(human);
}

static int teardown(void **state)
{
    (void)state;
    jv_cluster_fini(&C);
    return 0;
}

int main(void)
{
    jv_rng_seed(&R, jv_test_seed());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_bundle_carries_snapshot, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
