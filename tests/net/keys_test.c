/*
 * keys_test.c - rotating the cluster key without downtime, exactly as
 * docs/operations.md says: a new key from `jarvisctl cluster-key`, added
 * as the second line of every node's key file (reload with SIGHUP), then
 * moved to the first line (reload), then the old line removed (reload),
 * one node at a time. After every single reload, writes on every node
 * reach all the others and no node has refused a message. At the end a
 * node that holds only the old key is refused by all of them
 * (refused_messages_total{reason="unknown_key"}) and refuses them in
 * turn, while the others keep converging.
 *
 * A request made while its peer is down waits for a connection, sealed
 * under the key of that moment. If the sending key changes meanwhile, the
 * node takes it back and sends it again under the new key: a peer that
 * comes up with the new key only refuses nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "keyring.h"
#include "nettest.h"

static jv_cluster C;
static jv_rng R;
static const size_t live[] = {0, 1, 2}; /* node 3 comes at the end */

static double refused(size_t i)
{
    double v = jv_cluster_metric_sum(
        &C, i, "jarvis_repl_refused_messages_total", NULL);
    if (v < 0)
        NT_FAIL(&C, "no metrics from node %zu: %s", i, C.err);
    return v;
}

/* A write on each of the first n nodes, all converged, nothing refused
 * anywhere. */
static void traffic(size_t n, const char *step)
{
    for (size_t i = 0; i < n; i++)
        json_decref(nt_req(&C, i, 200, "POST", "{}",
                           "/v1/counters/rotation/increment"));
    double t0 = jv_cluster_now_ms();
    nt_converge(&C, live, n, nt_ms(15000));
    for (size_t i = 0; i < n; i++)
        if (refused(i) != 0)
            NT_FAIL(&C, "%s: node %zu refused %.0f messages", step, i,
                    refused(i));
    printf("%-44s writes converged in %4.0f ms, nothing refused\n", step,
           jv_cluster_now_ms() - t0);
}

/* The key line of a file jarvisctl cluster-key wrote. */
static void traffic_flows(const char *step)
{
    traffic(3, step);
}

static void read_key(const char *path, char out[65])
{
    char line[256];
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    out[0] = '\0';
    while (fgets(line, sizeof line, f) != NULL)
        if (line[0] != '#' && strlen(line) >= 64) {
            memcpy(out, line, 64);
            out[64] = '\0';
            break;
        }
    fclose(f);
    assert_int_equal(strlen(out), 64);
}

static void test_rotation_without_downtime(void **state)
{
    (void)state;
    static char *const flags[] = {"--sync-interval", "300", NULL};
    char oldk[65], newk[65], step[96];
    jv_cluster_opts o = {.n = 4, .key_per_node = true, .flags = flags};
    o.seed = jv_rng_next(&R);
    NT_OK(&C, jv_cluster_init(&C, &o));
    for (size_t i = 0; i < 3; i++)
        NT_OK(&C, jv_cluster_start(&C, i));
    traffic_flows("before the rotation");
    read_key(C.key_file, oldk);

    /* 1. A new key. */
    jv_proc_result r;
    NT_OK(&C, jv_cluster_ctl(&C, 0, &r, "cluster-key", (char *)NULL));
    NT_CHECK(&C, r.status == 0 && strlen(r.out) == 65);
    memcpy(newk, r.out, 64);
    newk[64] = '\0';
    jv_proc_result_fini(&r);
    NT_CHECK(&C, strcmp(newk, oldk) != 0);

    /* 2. Second line everywhere; 3. first line; 4. the old one gone. */
    const char *second[] = {oldk, newk}, *first[] = {newk, oldk},
               *only[] = {newk};
    const char *const *sets[] = {second, first, only};
    const size_t counts[] = {2, 2, 1};
    const char *names[] = {"new key second", "new key first",
                           "old key removed"};
    for (size_t s = 0; s < 3; s++)
        for (size_t i = 0; i < 3; i++) {
            NT_OK(&C, jv_cluster_set_keys(&C, i, sets[s], counts[s]));
            snprintf(step, sizeof step, "%s, node %zu reloaded", names[s], i);
            traffic_flows(step);
        }

    /* Node 3 still has only the old key: refused both ways. */
    NT_OK(&C, jv_cluster_start(&C, 3));
    double t0 = jv_cluster_now_ms();
    for (;;) {
        double sum = 0;
        for (size_t i = 0; i < 3; i++)
            sum += nt_metric(&C, i,
                             "jarvis_repl_refused_messages_total{"
                             "reason=\"unknown_key\"}");
        double own = nt_metric(&C, 3,
                               "jarvis_repl_refused_messages_total{"
                               "reason=\"unknown_key\"}");
        if (sum > 0 && own > 0) {
            printf("a node with the old key only: %.0f of its messages "
                   "refused, %.0f refused by it (unknown_key)\n",
                   sum, own);
            break;
        }
        if (jv_cluster_now_ms() - t0 > nt_ms(15000))
            NT_FAIL(&C, "old-key messages not refused (%.0f, %.0f)", sum, own);
        jv_cluster_sleep_ms(100);
    }
    json_decref(
        nt_req(&C, 3, 200, "POST", "{}", "/v1/counters/stale/increment"));
    jv_cluster_sleep_ms(nt_ms(1500));
    json_decref(nt_req(&C, 0, 404, "GET", NULL, "/v1/counters/stale"));
    json_decref(nt_req(&C, 3, 404, "GET", NULL, "/v1/counters/rotation"));
    for (size_t i = 0; i < 3; i++)
        json_decref(nt_req(&C, i, 200, "POST", "{}",
                           "/v1/counters/rotation/increment"));
    nt_converge(&C, live, 3, nt_ms(15000));

    /* Given the new key, it joins. */
    NT_OK(&C, jv_cluster_set_keys(&C, 3, only, 1));
    nt_converge(&C, NULL, 0, nt_ms(30000));
}

static bool log_has(size_t i, const char *needle)
{
    char line[2048];
    bool found = false;
    FILE *f = fopen(C.node[i].t.log, "r");
    while (f != NULL && !found && fgets(line, sizeof line, f) != NULL)
        found = strstr(line, needle) != NULL;
    if (f != NULL)
        fclose(f);
    return found;
}

static void test_rotation_while_a_peer_is_down(void **state)
{
    (void)state;
    /* Node 0's first request to node 1 waits for node 1 for a minute. */
    static char *const flags[] = {"--peer-timeout", "60000", NULL};
    char oldk[65], newk[65];
    jv_cluster_opts o = {.n = 2, .key_per_node = true, .flags = flags};
    o.seed = jv_rng_next(&R);
    NT_OK(&C, jv_cluster_init(&C, &o));
    NT_OK(&C, jv_cluster_start(&C, 0));
    read_key(C.key_file, oldk);
    jv_proc_result r;
    NT_OK(&C, jv_cluster_ctl(&C, 0, &r, "cluster-key", (char *)NULL));
    NT_CHECK(&C, r.status == 0 && strlen(r.out) == 65);
    memcpy(newk, r.out, 64);
    newk[64] = '\0';
    jv_proc_result_fini(&r);

    /* The request is made (sealed under the old key) and waits. */
    const char *out = "jarvis_repl_bytes_total{direction=\"out\"}";
    double t0 = jv_cluster_now_ms();
    while (nt_metric(&C, 0, out) <= 0) {
        if (jv_cluster_now_ms() - t0 > nt_ms(30000))
            NT_FAIL(&C, "node 0 sent no request to node 1");
        jv_cluster_sleep_ms(20);
    }
    const char *second[] = {oldk, newk}, *first[] = {newk, oldk},
               *only[] = {newk};
    NT_OK(&C, jv_cluster_set_keys(&C, 0, second, 2));
    NT_OK(&C, jv_cluster_set_keys(&C, 0, first, 2));
    NT_CHECK(&C, log_has(0, "sent again under the new key"));

    /* Node 1 comes up having done every step: the new key only. */
    NT_OK(&C, jv_cluster_set_keys(&C, 1, only, 1));
    NT_OK(&C, jv_cluster_start(&C, 1));
    const char *ok = "jarvis_repl_exchanges_total{outcome=\"ok\"}";
    t0 = jv_cluster_now_ms();
    while (nt_metric(&C, 0, ok) <= 0) {
        if (jv_cluster_now_ms() - t0 > nt_ms(30000))
            NT_FAIL(&C, "node 0 got no answer from node 1");
        jv_cluster_sleep_ms(50);
    }
    traffic(2, "node 1 up with the new key only");
}

/* -- the documented procedure: jarvisctl cluster-key add/promote/retire -- */

static void fingerprint(const char *key, char fp[9])
{
    jv_keyring one;
    char msg[64];
    assert_int_equal(jv_keyring_parse(key, strlen(key), &one, msg, sizeof msg),
                     JV_OK);
    jv_keyring_id_hex(&one, 0, fp);
    jv_keyring_wipe(&one);
}

static char *slurp(const char *path)
{
    static char buf[4096];
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* `jarvisctl cluster-key SUB FILE ARG` on node i's key file: exit code
 * `want`; on success it names the fingerprints and never the key. */
static void key_cmd(size_t i, const char *sub, const char *arg, int want,
                    const char *expect)
{
    jv_proc_result r;
    NT_OK(&C, jv_cluster_ctl(&C, i, &r, "cluster-key", sub, C.node[i].key_file,
                             arg, (char *)NULL));
    if (r.status != want || (expect && !strstr(r.out, expect)))
        NT_FAIL(&C, "cluster-key %s on node %zu: exit %d (want %d): %s%s", sub,
                i, r.status, want, r.out, r.err);
    if (strlen(arg) == 64 && strstr(r.out, arg))
        NT_FAIL(&C, "cluster-key %s printed the key itself", sub);
    jv_proc_result_fini(&r);
    struct stat st;
    NT_CHECK(&C,
             stat(C.node[i].key_file, &st) == 0 && (st.st_mode & 0777) == 0600);
}

static void expect_send_key(size_t i, const char *fp)
{
    json_t *st = nt_req(&C, i, 200, "GET", NULL, "/v1/status");
    const char *send = json_string_value(
        json_object_get(json_object_get(st, "cluster_keys"), "send"));
    if (!send || strcmp(send, fp) != 0)
        NT_FAIL(&C, "node %zu sends under %s, not %s", i, send ? send : "-",
                fp);
    json_decref(st);
    char line[64];
    snprintf(line, sizeof line, "cluster keys: send %s", fp);
    NT_CHECK(&C, log_has(i, line));
}

/* Node i's peer entry for node k's address: its STATE. */
static bool peer_state_is(size_t i, size_t k, const char *want)
{
    json_t *j = nt_req(&C, i, 200, "GET", NULL, "/v1/peers"), *p;
    size_t at;
    bool ok = false;
    json_array_foreach(json_object_get(j, "peers"), at, p)
    {
        const char *s = json_string_value(json_object_get(p, "state"));
        if (strcmp(json_string_value(json_object_get(p, "address")),
                   C.node[k].listen) == 0)
            ok = s && strcmp(s, want) == 0;
    }
    json_decref(j);
    return ok;
}

static void test_rotation_by_the_commands(void **state)
{
    (void)state;
    static char *const flags[] = {"--sync-interval", "300", NULL};
    char oldk[65], newk[65], oldfp[9], newfp[9], step[96];
    jv_cluster_opts o = {.n = 4, .key_per_node = true, .flags = flags};
    o.seed = jv_rng_next(&R);
    NT_OK(&C, jv_cluster_init(&C, &o));
    for (size_t i = 0; i < 3; i++)
        NT_OK(&C, jv_cluster_start(&C, i));
    traffic_flows("before the rotation");
    read_key(C.key_file, oldk);
    fingerprint(oldk, oldfp);
    expect_send_key(0, oldfp);

    /* 1. A new key (docs/operations.md: "Rotating the cluster key"). */
    jv_proc_result r;
    NT_OK(&C, jv_cluster_ctl(&C, 0, &r, "cluster-key", (char *)NULL));
    NT_CHECK(&C, r.status == 0 && strlen(r.out) == 65);
    memcpy(newk, r.out, 64);
    newk[64] = '\0';
    jv_proc_result_fini(&r);
    fingerprint(newk, newfp);

    /* 2. add on every node, one at a time, each reloaded. */
    for (size_t i = 0; i < 3; i++) {
        key_cmd(i, "add", newk, 0, newfp);
        NT_OK(&C, jv_cluster_reload_keys(&C, i));
        expect_send_key(i, oldfp);
        snprintf(step, sizeof step, "add: node %zu reloaded", i);
        traffic_flows(step);
    }
    /* Refused, and the file unchanged: the same key again, retiring the
     * key that sends, promoting a key the file lacks. */
    char before[4096];
    snprintf(before, sizeof before, "%s", slurp(C.node[0].key_file));
    key_cmd(0, "add", newk, 1, NULL);
    key_cmd(0, "retire", oldfp, 1, NULL);
    key_cmd(0, "promote", "0badf00d", 1, NULL);
    /* Neither a fingerprint nor a key: a usage error. */
    key_cmd(0, "retire", "zzzz", 2, NULL);
    key_cmd(0, "promote", "0badf00", 2, NULL);
    NT_CHECK(&C, strcmp(before, slurp(C.node[0].key_file)) == 0);

    /* 3. promote on every node; 4. retire the old key on every node. */
    for (size_t i = 0; i < 3; i++) {
        key_cmd(i, "promote", newfp, 0, newfp);
        NT_OK(&C, jv_cluster_reload_keys(&C, i));
        expect_send_key(i, newfp);
        snprintf(step, sizeof step, "promote: node %zu reloaded", i);
        traffic_flows(step);
    }
    for (size_t i = 0; i < 3; i++) {
        key_cmd(i, "retire", oldfp, 0, newfp);
        NT_OK(&C, jv_cluster_reload_keys(&C, i));
        snprintf(step, sizeof step, "retire: node %zu reloaded", i);
        traffic_flows(step);
    }
    NT_CHECK(&C, strstr(slurp(C.node[0].key_file), oldk) == NULL);

    /* A node with the old key only is shown as such, both ways, within
     * seconds: no timeouts to wait for, a notice answers every request. */
    NT_OK(&C, jv_cluster_start(&C, 3));
    double t0 = jv_cluster_now_ms();
    while (!(peer_state_is(3, 0, "key mismatch") &&
             peer_state_is(3, 1, "key mismatch") &&
             peer_state_is(0, 3, "key mismatch"))) {
        if (jv_cluster_now_ms() - t0 > nt_ms(10000))
            NT_FAIL(&C, "the old-key node is not shown as a key mismatch");
        jv_cluster_sleep_ms(50);
    }
    printf("old-key node shown as \"key mismatch\" both ways in %.0f ms\n",
           jv_cluster_now_ms() - t0);
    snprintf(step, sizeof step, "it does not accept our key %s (it accepts %s)",
             oldfp, newfp);
    NT_CHECK(&C, log_has(3, step));
    json_t *h = nt_req(&C, 3, 200, "GET", NULL, "/v1/health");
    const char *why = json_string_value(json_object_get(
        json_object_get(json_object_get(h, "components"), "replication"),
        "reason"));
    NT_CHECK(&C, why && strstr(why, "key mismatch") != NULL);
    NT_CHECK(&C, strcmp(json_string_value(json_object_get(h, "status")),
                        "healthy") != 0);
    json_decref(h);
    /* The others go on (their refusals of node 3 counted, not failing). */
    for (size_t i = 0; i < 3; i++)
        json_decref(nt_req(&C, i, 200, "POST", "{}",
                           "/v1/counters/rotation/increment"));
    nt_converge(&C, live, 3, nt_ms(15000));
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
        cmocka_unit_test_teardown(test_rotation_without_downtime, teardown),
        cmocka_unit_test_teardown(test_rotation_while_a_peer_is_down, teardown),
        cmocka_unit_test_teardown(test_rotation_by_the_commands, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
