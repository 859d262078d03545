/*
 * partition_test.c - four nodes cut in two halves with the transport's
 * fault switch (jarvisd --test-faults: each side blocks the other's node
 * ids and addresses, both directions). Both halves keep writing,
 * including a remove of one archive key on one side while the other side
 * adds it again, and sets of one config key on both sides. While cut,
 * each half converges on its own and the halves differ; once healed, all
 * four converge: the archive key is there (add-wins), with the value the
 * other side added, and the config key holds the same value everywhere:
 * the write with the greater (stamp, replica).
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

/* Node i blocks every node of the other half (ids and addresses). */
static void cut(size_t i, size_t lo, size_t hi)
{
    char body[1024];
    size_t at = (size_t)snprintf(body, sizeof body, "{\"block\":[");
    for (size_t k = lo; k < hi; k++)
        at +=
            (size_t)snprintf(body + at, sizeof body - at, "%s\"%s\",\"%s\"",
                             k > lo ? "," : "", C.node[k].id, C.node[k].listen);
    snprintf(body + at, sizeof body - at, "]}");
    json_decref(nt_req(&C, i, 204, "POST", body, "/v1/debug/faults"));
}

/* GET /v1/config/shared/setting on node i. */
static json_t *setting(size_t i)
{
    return nt_req(&C, i, 200, "GET", NULL, "/v1/config/shared/setting");
}

static void test_partition_heals(void **state)
{
    (void)state;
    static char *const flags[] = {"--sync-interval", "300", "--test-faults",
                                  NULL};
    const size_t left[] = {0, 1}, right[] = {2, 3};
    nt_expect e;
    memset(&e, 0, sizeof e);
    jv_cluster_opts o = {.n = 4, .flags = flags};
    o.seed = jv_rng_next(&R);
    NT_OK(&C, jv_cluster_init(&C, &o));
    NT_OK(&C, jv_cluster_start_all(&C));

    json_decref(nt_req(&C, 0, 200, "PUT", "{\"value\":\"original\"}",
                       "/v1/archive/shared/doc"));
    json_decref(nt_req(&C, 0, 200, "PUT", "{\"value\":\"before\"}",
                       "/v1/config/shared/setting"));
    nt_converge(&C, NULL, 0, nt_ms(30000));

    /* Cut: 0 and 1 | 2 and 3. */
    cut(0, 2, 4);
    cut(1, 2, 4);
    cut(2, 0, 2);
    cut(3, 0, 2);

    /* Both sides write; the concurrent remove and add of one key and the
     * concurrent sets of one config key go to different halves. */
    for (unsigned round = 0; round < 6; round++)
        for (size_t i = 0; i < C.n; i++)
            nt_random_writes(&C, i, &R, 5, &e);
    json_decref(nt_req(&C, 0, 204, "DELETE", NULL, "/v1/archive/shared/doc"));
    json_decref(nt_req(&C, 2, 200, "PUT", "{\"value\":\"added again\"}",
                       "/v1/archive/shared/doc"));
    json_decref(nt_req(&C, 1, 200, "PUT", "{\"value\":\"left\"}",
                       "/v1/config/shared/setting"));
    json_decref(nt_req(&C, 3, 200, "PUT", "{\"value\":\"right\"}",
                       "/v1/config/shared/setting"));
    for (size_t i = 0; i < C.n; i++)
        nt_random_writes(&C, i, &R, 5, &e);

    /* Each half converges on its own; the halves differ. */
    nt_converge(&C, left, 2, nt_ms(30000));
    nt_converge(&C, right, 2, nt_ms(30000));
    json_decref(nt_req(&C, 1, 404, "GET", NULL, "/v1/archive/shared/doc"));
    json_t *doc = nt_req(&C, 3, 200, "GET", NULL, "/v1/archive/shared/doc");
    NT_CHECK(&C, strcmp(json_string_value(json_object_get(doc, "value")),
                        "added again") == 0);
    json_decref(doc);
    json_t *l = setting(0), *r = setting(2);
    NT_CHECK(&C, strcmp(json_string_value(json_object_get(l, "value")),
                        "left") == 0);
    NT_CHECK(&C, strcmp(json_string_value(json_object_get(r, "value")),
                        "right") == 0);
    /* LWW: the greater stamp wins, the replica id breaks a tie. */
    json_int_t sl = json_integer_value(json_object_get(l, "stamp"));
    json_int_t sr = json_integer_value(json_object_get(r, "stamp"));
    int by = strcmp(json_string_value(json_object_get(l, "set_by")),
                    json_string_value(json_object_get(r, "set_by")));
    const char *winner = sl > sr || (sl == sr && by > 0) ? "left" : "right";
    json_decref(l);
    json_decref(r);
    char *ea, *eb;
    size_t la, lb;
    NT_OK(&C, jv_cluster_export(&C, 0, &ea, &la));
    NT_OK(&C, jv_cluster_export(&C, 2, &eb, &lb));
    NT_CHECK(&C, la != lb || memcmp(ea, eb, la) != 0);
    free(ea);
    free(eb);

    /* Healed: everything converges. */
    for (size_t i = 0; i < C.n; i++)
        json_decref(nt_req(&C, i, 204, "POST", "{\"unblock_all\":true}",
                           "/v1/debug/faults"));
    nt_converge(&C, NULL, 0, nt_ms(30000));
    for (size_t i = 0; i < C.n; i++) {
        doc = nt_req(&C, i, 200, "GET", NULL, "/v1/archive/shared/doc");
        NT_CHECK(&C, strcmp(json_string_value(json_object_get(doc, "value")),
                            "added again") == 0);
        NT_CHECK(&C, json_integer_value(json_object_get(doc, "values")) == 1);
        json_decref(doc);
        json_t *s = setting(i);
        NT_CHECK(&C, strcmp(json_string_value(json_object_get(s, "value")),
                            winner) == 0);
        json_decref(s);
        nt_check_expect(&C, i, &e);
    }
    printf("healed: shared/doc present everywhere, shared/setting = %s "
           "everywhere, %u random writes\n",
           winner, e.writes);
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
        cmocka_unit_test_teardown(test_partition_heals, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
