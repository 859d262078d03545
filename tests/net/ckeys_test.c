/*
 * ckeys_test.c - cluster API keys on three real nodes.
 *
 * A cluster key created on one node works on every node once replicated;
 * its role holds everywhere (a reader key writes nowhere, only an admin
 * creates cluster keys); a revocation stops it on every node, also on a
 * node that was stopped or cut off (the fault switch of jarvisd
 * --test-faults) while it happened, when the revocation reaches a node
 * before the key itself does, and on a node restored from a backup taken
 * before it revoked the key. Every wait polls a condition.
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

typedef struct {
    char id[32];
    char key[128];
} ckey;

/* The status of `method path` on node i with bearer cred; 0 if no
 * answer. (jv_cluster_http presents the node's admin key: it is swapped
 * for cred during the call.) */
static long status_with(size_t i, const char *cred, const char *method,
                        const char *path, const char *body)
{
    jv_http_resp r;
    char saved[sizeof C.node[i].t.admin_key];
    long st = 0;
    memcpy(saved, C.node[i].t.admin_key, sizeof saved);
    snprintf(C.node[i].t.admin_key, sizeof saved, "%s", cred);
    if (jv_cluster_http(&C, i, method, path, body, &r) == 0)
        st = r.status;
    memcpy(C.node[i].t.admin_key, saved, sizeof saved);
    jv_http_resp_fini(&r);
    return st;
}

/* Polls until node i answers GET /v1/status with cred by `want` (200 or
 * 401), within the convergence deadline. */
static void wait_status(size_t i, const char *cred, long want, const char *what)
{
    double end = jv_cluster_now_ms() + nt_ms(30000);
    long st;
    while ((st = status_with(i, cred, "GET", "/v1/status", NULL)) != want) {
        if (jv_cluster_now_ms() > end)
            NT_FAIL(&C, "%s: node %zu answers %ld, not %ld", what, i, st, want);
        jv_cluster_sleep_ms(50);
    }
}

static ckey create(size_t i, const char *name, const char *role)
{
    char body[256];
    ckey k;
    snprintf(body, sizeof body,
             "{\"name\":\"%s\",\"role\":\"%s\",\"scope\":\"cluster\"}", name,
             role);
    json_t *j = nt_req(&C, i, 201, "POST", body, "/v1/keys");
    NT_CHECK(&C, strcmp(json_string_value(json_object_get(j, "scope")),
                        "cluster") == 0);
    snprintf(k.id, sizeof k.id, "%s",
             json_string_value(json_object_get(j, "id")));
    snprintf(k.key, sizeof k.key, "%s",
             json_string_value(json_object_get(j, "key")));
    json_decref(j);
    return k;
}

/* Node i blocks every other node (ids and addresses); the others block
 * it: a partition of i alone, both directions. */
static void isolate(size_t i)
{
    char body[1024];
    size_t at = (size_t)snprintf(body, sizeof body, "{\"block\":[");
    bool first = true;
    for (size_t k = 0; k < C.n; k++) {
        if (k == i)
            continue;
        at +=
            (size_t)snprintf(body + at, sizeof body - at, "%s\"%s\",\"%s\"",
                             first ? "" : ",", C.node[k].id, C.node[k].listen);
        first = false;
    }
    snprintf(body + at, sizeof body - at, "]}");
    json_decref(nt_req(&C, i, 204, "POST", body, "/v1/debug/faults"));
    for (size_t k = 0; k < C.n; k++) {
        if (k == i)
            continue;
        snprintf(body, sizeof body, "{\"block\":[\"%s\",\"%s\"]}", C.node[i].id,
                 C.node[i].listen);
        json_decref(nt_req(&C, k, 204, "POST", body, "/v1/debug/faults"));
    }
}

static void heal(void)
{
    for (size_t k = 0; k < C.n; k++)
        json_decref(nt_req(&C, k, 204, "POST", "{\"unblock_all\":true}",
                           "/v1/debug/faults"));
}

/* The entry of key id in node i's GET /v1/keys (a new reference). */
static json_t *listed(size_t i, const char *id)
{
    json_t *all = nt_req(&C, i, 200, "GET", NULL, "/v1/keys"), *k, *out = NULL;
    size_t at;
    json_array_foreach(json_object_get(all, "keys"), at, k)
    {
        if (strcmp(json_string_value(json_object_get(k, "id")), id) == 0)
            out = json_incref(k);
    }
    json_decref(all);
    return out;
}

static void start(void)
{
    static char *const flags[] = {"--sync-interval", "300", "--test-faults",
                                  NULL};
    jv_cluster_opts o = {.n = 3, .flags = flags};
    NT_OK(&C, jv_cluster_init(&C, &o));
    NT_OK(&C, jv_cluster_start_all(&C));
}

static void test_keys_work_everywhere_with_their_role(void **state)
{
    (void)state;
    start();
    ckey admin = create(0, "ops", "admin");
    ckey reader = create(0, "dash", "reader");
    ckey writer = create(0, "ingest", "writer");
    for (size_t i = 0; i < C.n; i++) {
        wait_status(i, admin.key, 200, "admin cluster key");
        wait_status(i, reader.key, 200, "reader cluster key");
        wait_status(i, writer.key, 200, "writer cluster key");
    }
    for (size_t i = 0; i < C.n; i++) {
        /* The reader reads and writes nowhere. */
        NT_CHECK(&C, status_with(i, reader.key, "PUT", "/v1/config/app/x",
                                 "{\"value\":\"one\"}") == 403);
        NT_CHECK(&C, status_with(i, reader.key, "GET", "/v1/counters", NULL) ==
                         200);
        /* The writer writes, and is no admin: no cluster keys. */
        NT_CHECK(&C, status_with(i, writer.key, "PUT", "/v1/config/app/x",
                                 "{\"value\":\"two\"}") == 200);
        NT_CHECK(&C, status_with(i, writer.key, "POST", "/v1/keys",
                                 "{\"name\":\"sneak\",\"role\":\"admin\","
                                 "\"scope\":\"cluster\"}") == 403);
        NT_CHECK(&C, status_with(i, reader.key, "POST", "/v1/keys",
                                 "{\"name\":\"sneak\",\"role\":\"admin\","
                                 "\"scope\":\"cluster\"}") == 403);
        /* The admin key administers every node: it lists keys, and makes
         * a node key there. */
        NT_CHECK(&C, status_with(i, admin.key, "GET", "/v1/keys", NULL) == 200);
        char body[128];
        snprintf(body, sizeof body,
                 "{\"name\":\"local-%zu\",\"role\":"
                 "\"reader\"}",
                 i);
        NT_CHECK(&C,
                 status_with(i, admin.key, "POST", "/v1/keys", body) == 201);
    }
    /* Nobody tried to make "sneak": no node lists it. */
    for (size_t i = 0; i < C.n; i++) {
        json_t *all = nt_req(&C, i, 200, "GET", NULL, "/v1/keys"), *k;
        size_t at, cluster = 0;
        json_array_foreach(json_object_get(all, "keys"), at, k)
        {
            NT_CHECK(&C, strcmp(json_string_value(json_object_get(k, "name")),
                                "sneak") != 0);
            cluster += strcmp(json_string_value(json_object_get(k, "scope")),
                              "cluster") == 0;
        }
        NT_CHECK(&C, cluster == 3);
        json_decref(all);
    }
    /* diff --node A --node B with node 0's own admin key: node B refuses
     * it, and the message names B. With the cluster admin key both
     * answer. */
    char a_url[300], b_url[300];
    snprintf(a_url, sizeof a_url, "%s", C.node[0].t.url);
    snprintf(b_url, sizeof b_url, "%s", C.node[1].t.url);
    jv_proc_result r;
    NT_OK(&C, jv_cluster_ctl(&C, 0, &r, "diff", "--node", a_url, "--node",
                             b_url, (char *)NULL));
    NT_CHECK(&C, r.status == 3);
    NT_CHECK(&C, strstr(r.err, "node B") != NULL);
    NT_CHECK(&C, strstr(r.err, b_url) != NULL);
    jv_proc_result_fini(&r);
    nt_converge(&C, NULL, 0, nt_ms(30000));
    char saved[sizeof C.node[0].t.admin_key];
    memcpy(saved, C.node[0].t.admin_key, sizeof saved);
    snprintf(C.node[0].t.admin_key, sizeof saved, "%s", admin.key);
    int rc = jv_cluster_ctl(&C, 0, &r, "diff", "--node", a_url, "--node", b_url,
                            (char *)NULL);
    memcpy(C.node[0].t.admin_key, saved, sizeof saved);
    NT_OK(&C, rc);
    if (r.status != 0)
        NT_FAIL(&C, "diff with the cluster key: exit %d: %s%s", r.status, r.out,
                r.err);
    jv_proc_result_fini(&r);

    /* Node 1 lists the key with the node that made it. */
    json_t *e = listed(1, admin.id);
    NT_CHECK(&C, e != NULL);
    NT_CHECK(&C, strcmp(json_string_value(json_object_get(e, "origin")),
                        C.node[0].id) == 0);
    json_decref(e);
}

static void test_revocation_reaches_stopped_and_cut_nodes(void **state)
{
    (void)state;
    start();
    ckey a = create(0, "alpha", "writer");
    ckey b = create(1, "bravo", "reader");
    for (size_t i = 0; i < C.n; i++) {
        wait_status(i, a.key, 200, "alpha");
        wait_status(i, b.key, 200, "bravo");
    }
    /* A session made with alpha on node 1. */
    char body[256];
    snprintf(body, sizeof body, "{\"api_key\":\"%s\"}", a.key);
    json_t *s = nt_req(&C, 1, 201, "POST", body, "/v1/sessions");
    char token[160];
    snprintf(token, sizeof token, "%s",
             json_string_value(json_object_get(s, "token")));
    json_decref(s);
    wait_status(1, token, 200, "alpha's session");

    /* Node 2 stopped while node 0 revokes alpha. */
    NT_CHECK(&C, jv_cluster_stop(&C, 2) == 0);
    json_decref(nt_req(&C, 0, 204, "DELETE", NULL, "/v1/keys/%s", a.id));
    wait_status(0, a.key, 401, "alpha revoked");
    wait_status(1, a.key, 401, "alpha revoked");
    wait_status(1, token, 401, "alpha's session revoked");
    NT_OK(&C, jv_cluster_start(&C, 2));
    wait_status(2, a.key, 401, "alpha revoked after restart");

    /* Node 2 cut off while node 1 revokes bravo: it cannot know yet. */
    isolate(2);
    json_decref(nt_req(&C, 1, 204, "DELETE", NULL, "/v1/keys/%s", b.id));
    wait_status(0, b.key, 401, "bravo revoked");
    wait_status(1, b.key, 401, "bravo revoked");
    NT_CHECK(&C, status_with(2, b.key, "GET", "/v1/status", NULL) == 200);
    heal();
    wait_status(2, b.key, 401, "bravo revoked after the partition");
    json_t *e = listed(2, b.id);
    NT_CHECK(&C, e != NULL && !json_is_null(json_object_get(e, "revoked_at")));
    json_decref(e);
    /* Revoked stays revoked: a second revoke finds no active key. */
    json_decref(nt_req(&C, 0, 404, "DELETE", NULL, "/v1/keys/%s", b.id));
}

static void test_revocation_before_its_key(void **state)
{
    (void)state;
    start();
    isolate(2);
    ckey k = create(0, "early", "admin");
    wait_status(1, k.key, 200, "early on node 1");
    /* Node 2 has not seen the key; an admin there revokes its id. */
    NT_CHECK(&C, status_with(2, k.key, "GET", "/v1/status", NULL) == 401);
    json_decref(nt_req(&C, 2, 404, "DELETE", NULL, "/v1/keys/%s", k.id));
    json_decref(
        nt_req(&C, 2, 204, "DELETE", NULL, "/v1/keys/%s?scope=cluster", k.id));
    heal();
    wait_status(0, k.key, 401, "early revoked on its own node");
    wait_status(1, k.key, 401, "early revoked");
    /* Node 2 gets the key after its revocation: it stays revoked. */
    nt_converge(&C, NULL, 0, nt_ms(30000));
    for (size_t i = 0; i < C.n; i++) {
        NT_CHECK(&C, status_with(i, k.key, "GET", "/v1/status", NULL) == 401);
        json_t *e = listed(i, k.id);
        NT_CHECK(&C, e != NULL);
        NT_CHECK(&C, !json_is_null(json_object_get(e, "revoked_at")));
        json_decref(e);
    }
    /* After a restart too (the cache is rebuilt from the store). */
    NT_CHECK(&C, jv_cluster_stop(&C, 2) == 0);
    NT_OK(&C, jv_cluster_start(&C, 2));
    NT_CHECK(&C, status_with(2, k.key, "GET", "/v1/status", NULL) == 401);
}

/* Node 2 revokes a key after a backup, then is restored from that backup:
 * the restored node holds the key unrevoked, and gets its own revocation
 * back from its peers. */
static void test_revocation_survives_restore(void **state)
{
    (void)state;
    start();
    ckey k = create(0, "restored", "writer");
    for (size_t i = 0; i < C.n; i++)
        wait_status(i, k.key, 200, "key before the backup");
    json_t *j =
        nt_req(&C, 2, 201, "POST", "{\"path\":\"k-backup.db\"}", "/v1/backup");
    char backup[700];
    snprintf(backup, sizeof backup, "%s",
             json_string_value(json_object_get(j, "path")));
    json_decref(j);
    json_decref(nt_req(&C, 2, 204, "DELETE", NULL, "/v1/keys/%s", k.id));
    for (size_t i = 0; i < C.n; i++)
        wait_status(i, k.key, 401, "revoked before the restore");
    NT_OK(&C, jv_cluster_stop(&C, 2));
    jv_proc_result pr;
    NT_OK(&C, jv_cluster_ctl(&C, 2, &pr, "restore", backup, "--data-dir",
                             C.node[2].t.dir, (char *)NULL));
    if (pr.status != 0)
        NT_FAIL(&C, "jarvisctl restore exited %d: %s", pr.status, pr.err);
    jv_proc_result_fini(&pr);
    NT_OK(&C, jv_cluster_start(&C, 2));
    wait_status(2, k.key, 401, "revoked again after the restore");
    json_t *e = listed(2, k.id);
    NT_CHECK(&C, e != NULL && !json_is_null(json_object_get(e, "revoked_at")));
    json_decref(e);
    for (size_t i = 0; i < 2; i++)
        NT_CHECK(&C, status_with(i, k.key, "GET", "/v1/status", NULL) == 401);
}

static int teardown(void **state)
{
    (void)state;
    jv_cluster_fini(&C);
    memset(&C, 0, sizeof C);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_keys_work_everywhere_with_their_role,
                                  teardown),
        cmocka_unit_test_teardown(test_revocation_reaches_stopped_and_cut_nodes,
                                  teardown),
        cmocka_unit_test_teardown(test_revocation_before_its_key, teardown),
        cmocka_unit_test_teardown(test_revocation_survives_restore, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
