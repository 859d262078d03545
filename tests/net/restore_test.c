/*
 * restore_test.c - a node restored from a backup writes at once, whatever
 * its peers' state, and never signs two batches for one (origin, seq):
 *
 *   - three nodes; A is backed up, writes more, then one peer (D) stops
 *     for good and A is restored from the backup: A accepts writes within
 *     seconds (under a new origin, carrying on for its old one), the
 *     surviving peer B takes them, and A's old-origin writes published
 *     after the backup come back to A from B;
 *   - meanwhile A's health says degraded (restored, catching up) and
 *     `jarvisctl health` fails, until the dead peer is removed (which A
 *     now accepts): then it is healthy;
 *   - no node refuses an equivocation or a broken link, the exports of A
 *     and B are equal and verify is ok on both;
 *   - a succession not signed by the old origin's key (a forger holding a
 *     member's key), and a second successor of A's old origin (signed by
 *     that key), are both refused by B and change nothing;
 *   - restored and restarted at once, while every peer still remembers
 *     its vector from before, it writes at once too;
 *   - restored twice from one backup without running in between, then
 *     again after running (from before both restores): each restore
 *     carries on for the origin it signed under last (carrying the
 *     successions no peer has seen yet), and every origin's writes come
 *     back to it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <cmocka.h>

#include "batch.h"
#include "bundle.h"
#include "hlc.h"
#include "nettest.h"

static jv_cluster C;
static jv_rng R;

static json_int_t seq_of(size_t i, const char *origin)
{
    json_t *vv = jv_cluster_vv(&C, i);
    NT_CHECK(&C, vv != NULL);
    json_int_t s = json_integer_value(json_object_get(vv, origin));
    json_decref(vv);
    return s;
}

static long try_write(size_t i)
{
    jv_http_resp r;
    NT_OK(&C, jv_cluster_http(&C, i, "POST", "/v1/counters/after/increment",
                              "{}", &r));
    long st = r.status;
    jv_http_resp_fini(&r);
    return st;
}

/* Polls until node i accepts a write; the milliseconds it took. */
static double wait_writable(size_t i, int deadline_ms)
{
    double t0 = jv_cluster_now_ms();
    long st;
    while ((st = try_write(i)) != 200) {
        if (jv_cluster_now_ms() - t0 > deadline_ms)
            NT_FAIL(&C, "the restored node still refuses writes (%ld)", st);
        jv_cluster_sleep_ms(50);
    }
    return jv_cluster_now_ms() - t0;
}

/* A backup of node i into its backup dir; its path into out. */
static void take_backup(size_t i, char *out, size_t cap)
{
    json_t *j =
        nt_req(&C, i, 201, "POST", "{\"path\":\"r-backup.db\"}", "/v1/backup");
    snprintf(out, cap, "%s", json_string_value(json_object_get(j, "path")));
    json_decref(j);
    NT_CHECK(&C, out[0] == '/');
}

static void restore(size_t i, const char *backup)
{
    jv_proc_result pr;
    NT_OK(&C, jv_cluster_ctl(&C, i, &pr, "restore", backup, "--data-dir",
                             C.node[i].t.dir, (char *)NULL));
    if (pr.status != 0)
        NT_FAIL(&C, "jarvisctl restore exited %d: %s", pr.status, pr.err);
    jv_proc_result_fini(&pr);
}

static char *status_origin(size_t i)
{
    json_t *s = nt_req(&C, i, 200, "GET", NULL, "/v1/status");
    const char *o = json_string_value(json_object_get(s, "origin"));
    NT_CHECK(&C, o != NULL && strlen(o) == 64);
    char *r = strdup(o);
    json_decref(s);
    return r;
}

static json_t *health(size_t i, const char **status, const char **why)
{
    json_t *h = nt_req(&C, i, 200, "GET", NULL, "/v1/health");
    *status = json_string_value(json_object_get(h, "status"));
    *why = json_string_value(json_object_get(
        json_object_get(json_object_get(h, "components"), "replication"),
        "reason"));
    NT_CHECK(&C, *status != NULL && *why != NULL);
    return h;
}

static int ctl_status(size_t i, ...)
{
    jv_proc_result pr;
    char *argv[8];
    va_list ap;
    size_t n = 0;
    va_start(ap, i);
    while (n < 7 && (argv[n] = va_arg(ap, char *)) != NULL)
        n++;
    va_end(ap);
    argv[n] = NULL;
    int rc = n == 1 ? jv_cluster_ctl(&C, i, &pr, argv[0], (char *)NULL)
             : n == 2
                 ? jv_cluster_ctl(&C, i, &pr, argv[0], argv[1], (char *)NULL)
                 : jv_cluster_ctl(&C, i, &pr, argv[0], argv[1], argv[2],
                                  (char *)NULL);
    NT_OK(&C, rc);
    int st = pr.status;
    jv_proc_result_fini(&pr);
    return st;
}

static void node_key(size_t i, jv_keypair *kp)
{
    char path[800];
    uint8_t sk[64];
    snprintf(path, sizeof path, "%s/node.key", C.node[i].t.dir);
    FILE *f = fopen(path, "rb");
    NT_CHECK(&C, f != NULL);
    NT_CHECK(&C, fread(sk, 1, 64, f) == 64);
    fclose(f);
    NT_CHECK(&C, jv_keypair_from_secret(kp, sk) == JV_OK);
}

static uint64_t wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

/* A bundle made by `maker` for node `to` holding the first batch of a
 * fresh origin: a succession for `old`, signed by `signer`, and a config
 * write. Written to path. */
static void forged_bundle(const jv_keypair *maker, size_t to, const jv_id *old,
                          const jv_keypair *signer, const char *path)
{
    jv_keypair fresh;
    NT_CHECK(&C, jv_keypair_generate(&fresh) == JV_OK);
    uint64_t now = wall_ms();
    jv_op ops[2];
    memset(ops, 0, sizeof ops);
    ops[0].kind = JV_OP_SUCCESSION;
    ops[0].succ.old = *old;
    ops[0].succ.last_seq = 1;
    ops[0].succ.time_ms = now;
    jv_succession_sign(signer, &fresh.pk, 1, now, ops[0].succ.sig);
    ops[1].kind = JV_OP_CONFIG;
    ops[1].config.key = jv_str_c("forged");
    ops[1].config.value = jv_str_c("1");
    ops[1].config.stamp = jv_hlc_make(now, 0);
    jv_batch b;
    memset(&b, 0, sizeof b);
    b.origin = fresh.pk;
    b.first_seq = 1;
    b.hlc = jv_hlc_make(now, 0);
    b.ops = ops;
    b.nops = 2;
    jv_buf body, out;
    jv_buf_init(&body);
    jv_buf_init(&out);
    NT_CHECK(&C, jv_batch_encode(&b, &body) == JV_OK);
    uint8_t hash[JV_HASH_LEN], sig[JV_SIG_LEN];
    jv_batch_hash(body.data, body.len, hash);
    jv_batch_sign(hash, &fresh, sig);

    jv_bundle_builder bb;
    jv_bundle_builder_init(&bb);
    NT_CHECK(&C, jv_bundle_builder_add(&bb, body.data, body.len, sig) == JV_OK);
    jv_bundle_head h;
    memset(&h, 0, sizeof h);
    h.seal = JV_BUNDLE_SEAL_RECIPIENT;
    h.maker = maker->pk;
    h.created_ms = now;
    NT_CHECK(&C, jv_id_from_hex(C.node[to].id, 64, &h.recipient) == JV_OK);
    jv_vv none;
    jv_vv_init(&none);
    jv_keyring ring;
    memset(&ring, 0, sizeof ring);
    NT_CHECK(&C, jv_bundle_make(&bb, &none, &none, &h, &ring, maker, &out) ==
                     JV_OK);
    FILE *f = fopen(path, "wb");
    NT_CHECK(&C, f != NULL);
    NT_CHECK(&C, fwrite(out.data, 1, out.len, f) == out.len);
    fclose(f);
    jv_vv_fini(&none);
    jv_bundle_builder_fini(&bb);
    jv_buf_fini(&body);
    jv_buf_fini(&out);
    jv_keypair_wipe(&fresh);
}

/* Applies the bundle at path on node i: refused as a whole (counted NULL:
 * 422 naming a bad signature), or applied with nothing applied and its one
 * batch counted under `counted`. */
static void bundle_refused(size_t i, const char *path, const char *counted)
{
    jv_proc_result pr;
    NT_OK(&C, jv_cluster_ctl(&C, i, &pr, "--json", "bundle", "apply", path,
                             (char *)NULL));
    if (!counted) {
        if (pr.status == 0 || !strstr(pr.err, "bad signature") ||
            !strstr(pr.err, "bad_batch"))
            NT_FAIL(&C, "forged bundle not refused: %d %s %s", pr.status,
                    pr.out, pr.err);
    } else {
        json_t *j = pr.status == 0 ? json_loads(pr.out, 0, NULL) : NULL;
        if (!j || json_integer_value(json_object_get(j, "applied")) != 0 ||
            json_integer_value(json_object_get(j, counted)) != 1)
            NT_FAIL(&C, "bundle not refused as %s: %d %s %s", counted,
                    pr.status, pr.out, pr.err);
        json_decref(j);
    }
    jv_proc_result_fini(&pr);
}

/* A config key that must not exist on node i. */
static void no_config(size_t i, const char *key)
{
    jv_http_resp r;
    char path[128];
    snprintf(path, sizeof path, "/v1/config/%s", key);
    NT_OK(&C, jv_cluster_http(&C, i, "GET", path, NULL, &r));
    NT_CHECK(&C, r.status == 404);
    jv_http_resp_fini(&r);
}

static void no_conflicts(const size_t *which, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        size_t i = which[k];
        NT_CHECK(&C, nt_metric(&C, i,
                               "jarvis_repl_batches_total{result="
                               "\"refused_equivocation\"}") == 0);
        NT_CHECK(&C, nt_metric(&C, i,
                               "jarvis_repl_batches_total{result="
                               "\"refused_broken_link\"}") == 0);
        json_t *v = nt_req(&C, i, 200, "POST", "{}", "/v1/verify");
        NT_CHECK(&C, json_is_true(json_object_get(v, "ok")));
        json_decref(v);
    }
}

static void test_restore_with_a_peer_gone(void **state)
{
    (void)state;
    static char *const flags[] = {"--sync-interval", "300", "--peer-timeout",
                                  "2000", NULL};
    enum {
        A,
        B,
        D
    };
    nt_expect e;
    memset(&e, 0, sizeof e);
    jv_cluster_opts o = {.n = 3, .flags = flags};
    o.seed = jv_rng_next(&R);
    NT_OK(&C, jv_cluster_init(&C, &o));
    NT_OK(&C, jv_cluster_start_all(&C));
    nt_random_writes(&C, A, &R, 20, &e);
    nt_converge(&C, NULL, 0, nt_ms(30000));

    char backup[700];
    take_backup(A, backup, sizeof backup);
    const char *old = C.node[A].id;
    json_int_t at_backup = seq_of(A, old);

    /* Published after the backup: B and D hold these. */
    for (size_t i = 0; i < C.n; i++)
        nt_random_writes(&C, i, &R, 20, &e);
    nt_converge(&C, NULL, 0, nt_ms(30000));
    json_int_t published = seq_of(A, old);
    NT_CHECK(&C, published > at_backup);

    /* D goes for good; A is restored. */
    NT_OK(&C, jv_cluster_stop(&C, D));
    NT_OK(&C, jv_cluster_stop(&C, A));
    restore(A, backup);
    NT_OK(&C, jv_cluster_start(&C, A));

    /* Writes at once, under a new origin. */
    double took = wait_writable(A, nt_ms(5000));
    printf("restored node accepted writes after %.0f ms\n", took);
    char *neu = status_origin(A);
    NT_CHECK(&C, strcmp(neu, old) != 0);
    unsigned before = e.writes;
    nt_random_writes(&C, A, &R, 10, &e);
    /* The surviving peer takes them; A gets its old origin's back. */
    size_t alive[] = {A, B};
    nt_converge(&C, alive, 2, nt_ms(30000));
    NT_CHECK(&C, seq_of(A, old) == published);
    NT_CHECK(&C, seq_of(B, old) == published);
    NT_CHECK(&C, seq_of(B, neu) == seq_of(A, neu));
    /* The succession, the write that found A writable, then at least one
     * operation per write (a config set is audited too). */
    NT_CHECK(&C, seq_of(A, neu) >= 2 + (json_int_t)(e.writes - before));
    for (size_t k = 0; k < 2; k++)
        nt_check_expect(&C, alive[k], &e);
    no_conflicts(alive, 2);

    /* Degraded while D, which never comes back, is still a peer. */
    const char *status, *why;
    json_t *h = health(A, &status, &why);
    if (strcmp(status, "degraded") != 0 || !strstr(why, "restored"))
        NT_FAIL(&C, "health says %s: %s", status, why);
    json_decref(h);
    NT_CHECK(&C, ctl_status(A, "health", NULL) != 0);
    /* Removing it is a write, accepted: then A has caught up. */
    NT_CHECK(&C, ctl_status(A, "peers", "rm", C.node[D].listen, NULL) == 0);
    double t0 = jv_cluster_now_ms();
    for (;;) {
        h = health(A, &status, &why);
        bool done = strcmp(status, "healthy") == 0 && !strstr(why, "restored");
        json_decref(h);
        if (done)
            break;
        if (jv_cluster_now_ms() - t0 > nt_ms(30000))
            NT_FAIL(&C, "still not healthy: %s: %s", status, why);
        jv_cluster_sleep_ms(100);
    }
    NT_CHECK(&C, ctl_status(A, "health", NULL) == 0);

    /* Forged: a succession for A's old origin signed by D's key (a member,
     * not the old origin), made into a bundle by D. */
    char path[800];
    jv_keypair dk, ak;
    jv_id old_id;
    node_key(D, &dk);
    node_key(A, &ak);
    NT_CHECK(&C, jv_id_from_hex(old, 64, &old_id) == JV_OK);
    snprintf(path, sizeof path, "%s/forged.bundle", C.root);
    forged_bundle(&dk, B, &old_id, &dk, path);
    bundle_refused(B, path, NULL);
    /* A second successor of A's old origin, signed by its real key: one
     * old origin has one successor. */
    snprintf(path, sizeof path, "%s/second.bundle", C.root);
    forged_bundle(&dk, B, &old_id, &ak, path);
    bundle_refused(B, path, "refused_equivocation");
    jv_keypair_wipe(&dk);
    jv_keypair_wipe(&ak);
    no_config(B, "forged");
    nt_converge(&C, alive, 2, nt_ms(30000));
    for (size_t k = 0; k < 2; k++)
        nt_check_expect(&C, alive[k], &e);
    NT_CHECK(&C, seq_of(B, neu) == seq_of(A, neu));
    free(neu);
}

static void test_restored_at_once(void **state)
{
    (void)state;
    /* Peers remember a vector for one to two exchange timeouts: 6 to 12 s
     * here, far longer than the restart. */
    static char *const flags[] = {"--sync-interval", "300", "--peer-timeout",
                                  "6000", NULL};
    enum {
        R_ = 2
    };
    nt_expect e;
    memset(&e, 0, sizeof e);
    jv_cluster_opts o = {.n = 3, .flags = flags};
    o.seed = jv_rng_next(&R);
    NT_OK(&C, jv_cluster_init(&C, &o));
    NT_OK(&C, jv_cluster_start_all(&C));
    nt_random_writes(&C, R_, &R, 10, &e);
    nt_converge(&C, NULL, 0, nt_ms(30000));
    char backup[700];
    take_backup(R_, backup, sizeof backup);
    nt_random_writes(&C, R_, &R, 15, &e);
    nt_converge(&C, NULL, 0, nt_ms(30000));
    const char *old = C.node[R_].id;
    json_int_t published = seq_of(R_, old);

    NT_OK(&C, jv_cluster_stop(&C, R_));
    restore(R_, backup);
    NT_OK(&C, jv_cluster_start(&C, R_));
    double took = wait_writable(R_, nt_ms(5000));
    printf("restored at once: writes accepted after %.0f ms\n", took);
    nt_random_writes(&C, R_, &R, 5, &e);
    nt_converge(&C, NULL, 0, nt_ms(30000));
    NT_CHECK(&C, seq_of(R_, old) == published);
    for (size_t i = 0; i < C.n; i++)
        nt_check_expect(&C, i, &e);
    size_t all[] = {0, 1, 2};
    no_conflicts(all, 3);
}

static void test_restored_twice(void **state)
{
    (void)state;
    static char *const flags[] = {"--sync-interval", "300", "--peer-timeout",
                                  "2000", NULL};
    nt_expect e;
    memset(&e, 0, sizeof e);
    jv_cluster_opts o = {.n = 2, .flags = flags};
    o.seed = jv_rng_next(&R);
    NT_OK(&C, jv_cluster_init(&C, &o));
    NT_OK(&C, jv_cluster_start_all(&C));
    nt_random_writes(&C, 0, &R, 10, &e);
    nt_converge(&C, NULL, 0, nt_ms(30000));
    char backup[700];
    take_backup(0, backup, sizeof backup);
    const char *first = C.node[0].id;
    nt_random_writes(&C, 0, &R, 10, &e);
    nt_converge(&C, NULL, 0, nt_ms(30000));
    json_int_t n1 = seq_of(0, first);

    /* Restored, and restored again before it ever ran: the peer has never
     * seen the first restore's succession. */
    NT_OK(&C, jv_cluster_stop(&C, 0));
    restore(0, backup);
    restore(0, backup);
    NT_OK(&C, jv_cluster_start(&C, 0));
    wait_writable(0, nt_ms(5000));
    char *second = status_origin(0);
    unsigned before = e.writes;
    nt_random_writes(&C, 0, &R, 10, &e);
    nt_converge(&C, NULL, 0, nt_ms(30000));
    json_int_t n2 = seq_of(0, second);
    NT_CHECK(&C, n2 >= 2 + (json_int_t)(e.writes - before));
    NT_CHECK(&C, seq_of(1, second) == n2);
    json_t *hb = nt_req(&C, 1, 200, "GET", NULL, "/v1/status");
    NT_CHECK(&C, json_integer_value(json_object_get(hb, "held_batches")) == 0);
    json_decref(hb);

    /* Again from the same backup, which knows nothing of `second`. */
    NT_OK(&C, jv_cluster_stop(&C, 0));
    restore(0, backup);
    NT_OK(&C, jv_cluster_start(&C, 0));
    wait_writable(0, nt_ms(5000));
    char *third = status_origin(0);
    NT_CHECK(&C, strcmp(third, second) != 0 && strcmp(third, first) != 0);
    nt_random_writes(&C, 0, &R, 10, &e);
    nt_converge(&C, NULL, 0, nt_ms(30000));
    NT_CHECK(&C, seq_of(0, first) == n1);
    NT_CHECK(&C, seq_of(0, second) == n2);
    for (size_t i = 0; i < C.n; i++) {
        NT_CHECK(&C, seq_of(i, third) == seq_of(0, third));
        nt_check_expect(&C, i, &e);
        hb = nt_req(&C, i, 200, "GET", NULL, "/v1/status");
        NT_CHECK(&C,
                 json_integer_value(json_object_get(hb, "held_batches")) == 0);
        json_decref(hb);
    }
    size_t all[] = {0, 1};
    no_conflicts(all, 2);
    free(second);
    free(third);
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
        cmocka_unit_test_teardown(test_restore_with_a_peer_gone, teardown),
        cmocka_unit_test_teardown(test_restored_at_once, teardown),
        cmocka_unit_test_teardown(test_restored_twice, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
