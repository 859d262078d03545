/*
 * api_storage_test.c - 503 storage_unavailable: jarvisd runs under a
 * file-size limit (RLIMIT_FSIZE; it ignores SIGXFSZ) and is written to
 * until its database cannot grow. The refused write must be answered 503
 * with the JSON error and leave nothing behind (export unchanged, the key
 * absent, no audit entry), while reads, /health and a clean SIGTERM keep
 * working; a restart without the limit finds every acknowledged write and
 * a log that verifies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "apitest.h"

#define LIMIT_BYTES (1u << 20)
#define VALUE_BYTES 60000
#define MAX_WRITES  200

static char *big_body(void)
{
    char *b = malloc(VALUE_BYTES + 32);
    assert_non_null(b);
    int k = snprintf(b, 32, "{\"value\":\"");
    memset(b + k, 'v', VALUE_BYTES);
    memcpy(b + k + VALUE_BYTES, "\"}", 3);
    return b;
}

/* Sends the write made by make(i) for i = 0, 1, ... until one is refused
 * with 503; checks that one's answer and that the export did not move.
 * Returns how many were acknowledged first. */
static int write_until_refused(api_node *a, const char *method,
                               const char *(*path)(int),
                               const char *(*body)(int))
{
    for (int i = 0; i < MAX_WRITES; i++) {
        size_t l0, l1;
        char *before = api_export(a, &l0);
        jv_http_resp r;
        API_REQ(a, &r, method, path(i), a->admin_token, body(i));
        if (r.status == 503) {
            API_CHECK_ERROR(&r, 503, "storage_unavailable");
            printf("write %d refused: %s\n", i, r.body);
            jv_http_resp_fini(&r);
            char *after = api_export(a, &l1);
            assert_int_equal(l0, l1);
            assert_memory_equal(before, after, l0);
            free(before);
            free(after);
            return i;
        }
        if (r.status != 200)
            fail_msg("write %d: %ld %.300s", i, r.status, r.body);
        jv_http_resp_fini(&r);
        free(before);
    }
    fail_msg("%d writes of %d bytes fit under a %u-byte file limit", MAX_WRITES,
             VALUE_BYTES, LIMIT_BYTES);
    return -1;
}

static char *value_body;

static const char *config_path(int i)
{
    return api_fmt("/v1/config/full/%03d", i);
}

static const char *config_body(int i)
{
    (void)i;
    return value_body;
}

static const char *batch_path(int i)
{
    (void)i;
    return "/v1/batch";
}

/* A counter, an audit entry and a big archive value, all or none. */
static char *batch_buf;

static const char *batch_body(int i)
{
    size_t n = VALUE_BYTES + 300;
    free(batch_buf);
    char *b = batch_buf = malloc(n);
    assert_non_null(b);
    int k = snprintf(b, n,
                     "{\"ops\":[{\"op\":\"counter.increment\",\"name\":"
                     "\"full-c\"},{\"op\":\"audit.append\",\"action\":"
                     "\"full\",\"target\":\"%d\"},{\"op\":\"archive.add\","
                     "\"key\":\"full/%03d\",\"value\":\"",
                     i, i);
    memset(b + k, 'a', VALUE_BYTES);
    memcpy(b + (size_t)k + VALUE_BYTES, "\"}]}", 5);
    return b;
}

static void test_disk_full(void **state)
{
    (void)state;
    api_node S;
    value_body = big_body();
    api_prepare(&S);
    S.node.fsize_limit = LIMIT_BYTES;
    api_restart(&S, NULL);

    int ok = write_until_refused(&S, "PUT", config_path, config_body);
    assert_true(ok > 0);
    /* The refused key is absent, every acknowledged one is there. */
    API_ERR_ONLY(&S, 404, "not_found", "GET", config_path(ok), S.admin_token,
                 NULL);
    for (int i = 0; i < ok; i++) {
        json_t *j = API_OK(&S, 200, "GET", config_path(i), S.admin_token, NULL);
        assert_int_equal(strlen(api_str(j, "value")), VALUE_BYTES);
        json_decref(j);
    }
    /* No audit entry for it either. */
    json_t *j = API_OK(&S, 200, "GET", "/v1/audit?action=config.set&limit=1000",
                       S.admin_token, NULL);
    json_t *entries = json_object_get(j, "entries");
    assert_int_equal(json_array_size(entries), ok);
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e)
    {
        assert_string_not_equal(api_str(e, "target"), config_path(ok) + 11);
    }
    json_decref(j);

    /* The node serves on: liveness, reads, and a health report that
     * names the storage. */
    j = API_OK(&S, 200, "GET", "/health", NULL, NULL);
    assert_string_equal(api_str(j, "status"), "ok");
    json_decref(j);
    json_decref(API_OK(&S, 200, "GET", "/v1/status", S.admin_token, NULL));
    j = API_OK(&S, 200, "GET", "/v1/health", S.admin_token, NULL);
    json_t *storage =
        json_object_get(json_object_get(j, "components"), "storage");
    assert_string_equal(api_str(storage, "status"), "unhealthy");
    assert_true(API_INT(j, "score") < 80);
    assert_string_not_equal(api_str(j, "status"), "healthy");
    json_decref(j);
    jv_http_resp r;
    API_REQ(&S, &r, "GET", "/metrics", NULL, NULL);
    assert_true(api_metric(r.body, "jarvis_commit_errors_total") >= 1);
    jv_http_resp_fini(&r);

    /* A batch is refused as a whole as well. */
    int ok2 = write_until_refused(&S, "POST", batch_path, batch_body);
    API_ERR_ONLY(&S, 404, "not_found", "GET",
                 api_fmt("/v1/archive/full/%03d", ok2), S.admin_token, NULL);
    if (ok2 == 0)
        API_ERR_ONLY(&S, 404, "not_found", "GET", "/v1/counters/full-c",
                     S.admin_token, NULL);
    else {
        j = API_OK(&S, 200, "GET", "/v1/counters/full-c", S.admin_token, NULL);
        assert_int_equal(API_INT(j, "total"), ok2);
        json_decref(j);
    }

    /* SIGTERM still ends it cleanly. */
    size_t l0, l1;
    char *before = api_export(&S, &l0);
    assert_int_equal(api_stop(&S), 0);

    /* Without the limit: everything acknowledged, nothing refused. */
    S.node.fsize_limit = 0;
    api_restart(&S, NULL);
    char *after = api_export(&S, &l1);
    assert_int_equal(l0, l1);
    assert_memory_equal(before, after, l0);
    free(before);
    free(after);
    API_ERR_ONLY(&S, 404, "not_found", "GET", config_path(ok), S.admin_token,
                 NULL);
    j = API_OK(&S, 200, "POST", "/v1/verify", S.admin_token, NULL);
    assert_true(json_is_true(json_object_get(j, "ok")));
    json_decref(j);
    /* And writes work again. */
    json_decref(
        API_OK(&S, 200, "PUT", config_path(ok), S.admin_token, value_body));
    assert_int_equal(api_stop(&S), 0);
    api_cleanup(&S);
    free(value_body);
    free(batch_buf);
    batch_buf = NULL;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_disk_full),
    };
    if (jv_http_global_init() != 0)
        return 1;
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    jv_http_global_fini();
    return rc;
}
