#include "nettest.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#ifndef JV_TIME_SCALE
#define JV_TIME_SCALE 1
#endif

int nt_ms(int ms)
{
    const char *env = getenv("JV_TIME_SCALE");
    int scale = env != NULL && atoi(env) > 0 ? atoi(env) : JV_TIME_SCALE;
    return ms * scale;
}

void nt_fail(jv_cluster *c, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    char msg[2048];
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    jv_cluster_dump_logs(c);
    fprintf(stderr, "%s:%d: %s\n", file, line, msg);
    fail_msg("%s:%d: %s", file, line, msg);
    abort(); /* fail_msg does not return; the compiler cannot know */
}

void nt_ok(jv_cluster *c, int rc, const char *what, const char *file, int line)
{
    if (rc != 0)
        nt_fail(c, file, line, "%s failed: %s", what, c->err);
}

json_t *nt_req(jv_cluster *c, size_t i, long status, const char *method,
               const char *body, const char *pathfmt, ...)
{
    char path[2048];
    va_list ap;
    jv_http_resp r;
    va_start(ap, pathfmt);
    vsnprintf(path, sizeof path, pathfmt, ap);
    va_end(ap);
    if (jv_cluster_http(c, i, method, path, body, &r) != 0)
        nt_fail(c, __FILE__, __LINE__, "%s %s on node %zu: %s", method, path, i,
                c->err);
    if (r.status != status) {
        char got[600];
        long st = r.status;
        snprintf(got, sizeof got, "%.500s", r.body);
        jv_http_resp_fini(&r);
        nt_fail(c, __FILE__, __LINE__, "%s %s on node %zu: %ld, not %ld: %s",
                method, path, i, st, status, got);
    }
    json_t *j = r.len ? json_loadb(r.body, r.len, 0, NULL) : NULL;
    jv_http_resp_fini(&r);
    return j;
}

double nt_metric(jv_cluster *c, size_t i, const char *series)
{
    double v = jv_cluster_metric(c, i, series);
    if (v < 0)
        nt_fail(c, __FILE__, __LINE__, "no metrics from node %zu: %s", i,
                c->err);
    return v;
}

json_t *nt_peer(jv_cluster *c, size_t i, const char *addr)
{
    json_t *j = nt_req(c, i, 200, "GET", NULL, "/v1/peers");
    json_t *found = NULL, *p;
    size_t k;
    json_array_foreach(json_object_get(j, "peers"), k, p)
    {
        const char *a = json_string_value(json_object_get(p, "address"));
        if (a != NULL && strcmp(a, addr) == 0)
            found = json_incref(p);
    }
    json_decref(j);
    return found;
}

void nt_converge(jv_cluster *c, const size_t *which, size_t n, int timeout_ms)
{
    if (jv_cluster_wait_converged(c, which, n, timeout_ms, NULL) != 0)
        nt_fail(c, __FILE__, __LINE__, "%s", c->err);
}

static void one_write(jv_cluster *c, size_t i, jv_rng *rng, nt_expect *e)
{
    char body[512];
    unsigned k = (unsigned)jv_rng_below(rng, NT_COUNTERS);
    int64_t by;
    switch (jv_rng_below(rng, 6)) {
    case 0:
        by = (int64_t)jv_rng_below(rng, 150) - 50;
        if (by == 0)
            by = 7;
        snprintf(body, sizeof body, "{\"by\":%lld}", (long long)by);
        json_decref(
            nt_req(c, i, 200, "POST", body, "/v1/counters/c%u/increment", k));
        e->counter[k] += by;
        break;
    case 1:
        snprintf(body, sizeof body,
                 "{\"action\":\"nt.write\",\"target\":\"node%zu\","
                 "\"detail\":\"%llu\"}",
                 i, (unsigned long long)jv_rng_next(rng));
        json_decref(nt_req(c, i, 201, "POST", body, "/v1/audit"));
        e->audits++;
        break;
    case 2:
        snprintf(body, sizeof body, "{\"value\":{\"from\":%zu,\"v\":%llu}}", i,
                 (unsigned long long)jv_rng_below(rng, 1000000));
        json_decref(nt_req(c, i, 200, "PUT", body, "/v1/config/k%u", k));
        break;
    case 3:
        snprintf(body, sizeof body, "{\"value\":\"%llu from %zu\"}",
                 (unsigned long long)jv_rng_below(rng, 1000000), i);
        json_decref(nt_req(c, i, 200, "PUT", body, "/v1/archive/a%u", k));
        break;
    case 4: {
        jv_http_resp r;
        char path[64];
        snprintf(path, sizeof path, "/v1/archive/a%u", k);
        NT_OK(c, jv_cluster_http(c, i, "DELETE", path, NULL, &r));
        if (r.status != 204 && r.status != 404)
            NT_FAIL(c, "DELETE %s: %ld %s", path, r.status, r.body);
        long st = r.status;
        jv_http_resp_fini(&r);
        if (st == 404)
            return; /* nothing to remove: no operation */
        break;
    }
    default:
        by = (int64_t)jv_rng_below(rng, 20) + 1;
        snprintf(body, sizeof body,
                 "{\"ops\":["
                 "{\"op\":\"counter.increment\",\"name\":\"c%u\",\"by\":%lld},"
                 "{\"op\":\"audit.append\",\"action\":\"nt.write\","
                 "\"target\":\"batch\"},"
                 "{\"op\":\"config.set\",\"key\":\"k%u\",\"value\":%llu},"
                 "{\"op\":\"archive.add\",\"key\":\"b%u\",\"value\":[%zu]}]}",
                 k, (long long)by, (k + 1) % NT_COUNTERS,
                 (unsigned long long)jv_rng_below(rng, 1000), k, i);
        json_decref(nt_req(c, i, 200, "POST", body, "/v1/batch"));
        e->counter[k] += by;
        e->audits++;
        break;
    }
    e->writes++;
}

void nt_random_writes(jv_cluster *c, size_t i, jv_rng *rng, unsigned n,
                      nt_expect *e)
{
    for (unsigned w = 0; w < n; w++)
        one_write(c, i, rng, e);
}

void nt_check_expect(jv_cluster *c, size_t i, const nt_expect *e)
{
    for (unsigned k = 0; k < NT_COUNTERS; k++) {
        jv_http_resp r;
        char path[64];
        snprintf(path, sizeof path, "/v1/counters/c%u", k);
        NT_OK(c, jv_cluster_http(c, i, "GET", path, NULL, &r));
        json_t *j = r.status == 200 ? json_loadb(r.body, r.len, 0, NULL) : NULL;
        long st = r.status;
        jv_http_resp_fini(&r);
        if (st == 404 && e->counter[k] == 0) {
            json_decref(j);
            continue; /* never touched, or never by a batch that got here */
        }
        if (j == NULL)
            NT_FAIL(c, "GET %s on node %zu: %ld", path, i, st);
        long long total = json_integer_value(json_object_get(j, "total"));
        json_decref(j);
        if (total != e->counter[k])
            NT_FAIL(c, "node %zu: counter c%u is %lld, expected %lld", i, k,
                    total, (long long)e->counter[k]);
    }
    uint64_t audits = 0;
    char cursor[256] = "";
    for (;;) {
        json_t *j = nt_req(c, i, 200, "GET", NULL,
                           "/v1/audit?action=nt.write&limit=1000%s%s",
                           cursor[0] ? "&cursor=" : "", cursor);
        audits += json_array_size(json_object_get(j, "entries"));
        const char *next = json_string_value(json_object_get(j, "next_cursor"));
        if (next == NULL) {
            json_decref(j);
            break;
        }
        snprintf(cursor, sizeof cursor, "%s", next);
        json_decref(j);
    }
    if (audits != e->audits)
        NT_FAIL(c, "node %zu: %llu audit entries, expected %llu", i,
                (unsigned long long)audits, (unsigned long long)e->audits);
}

/* Drops every audit entry of action node.restore from an export. */
static void drop_restores(json_t *x)
{
    json_t *audit = json_object_get(x, "audit");
    for (size_t i = json_array_size(audit); i-- > 0;) {
        const char *act = json_string_value(
            json_object_get(json_array_get(audit, i), "action"));
        if (act && strcmp(act, "node.restore") == 0)
            json_array_remove(audit, i);
    }
}

bool nt_export_same_but_restores(const char *a, size_t alen, const char *b,
                                 size_t blen)
{
    json_t *x = json_loadb(a, alen, 0, NULL), *y = json_loadb(b, blen, 0, NULL);
    bool same = false;
    if (x && y) {
        drop_restores(x);
        drop_restores(y);
        same = json_equal(x, y);
    }
    json_decref(x);
    json_decref(y);
    return same;
}
