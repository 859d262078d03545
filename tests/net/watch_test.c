/*
 * watch_test.c - GET /v1/watch on a cluster of two real jarvisd
 * (docs/api.md "Change streams"): the events of both nodes' writes reach
 * node 0's stream once each, in per-origin order, and node 0 says when
 * its peer goes away.
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
#include "sse.h"

#define WAIT_MS (30000 * JV_TIME_SCALE)

typedef struct {
    char id[32];
    char event[32];
    json_t *data;
} ev;

static const char *str(const json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? v : "";
}

/* The next event (pings skipped), ids strictly growing. */
static void next_ev(jv_cluster *c, jv_sse *s, ev *out, uint64_t *last)
{
    for (;;) {
        jv_sse_event e;
        int r = jv_sse_next(s, &e, WAIT_MS);
        if (r != 1)
            NT_FAIL(c, "no event came (%d)", r);
        if (e.comment) {
            jv_sse_event_fini(&e);
            continue;
        }
        snprintf(out->id, sizeof(out->id), "%s", e.id);
        snprintf(out->event, sizeof(out->event), "%s", e.event);
        out->data = json_loads(e.data, 0, NULL);
        jv_sse_event_fini(&e);
        NT_CHECK(c, out->data != NULL);
        uint64_t id = strtoull(out->id, NULL, 10);
        NT_CHECK(c, id > *last);
        *last = id;
        return;
    }
}

static void test_peer_events(void **state)
{
    (void)state;
    jv_cluster c;
    jv_cluster_opts o = {.n = 2};
    char *flags[] = {"--sync-interval", "200", NULL};
    o.flags = flags;
    memset(&c, 0, sizeof(c));
    NT_OK(&c, jv_cluster_init(&c, &o));
    NT_OK(&c, jv_cluster_start_all(&c));
    jv_sse s;
    NT_OK(&c, jv_sse_open(&s, c.node[0].t.url, "/v1/watch?kind=counter,node",
                          c.node[0].t.admin_key, NULL, 0, WAIT_MS));
    NT_CHECK(&c, s.status == 200);
    const int n = 30;
    for (int i = 1; i <= n; i++) {
        jv_http_resp r;
        char path[64], body[32];
        snprintf(path, sizeof(path), "/v1/counters/%s/increment",
                 i % 2 ? "p1" : "p2");
        snprintf(body, sizeof(body), "{\"by\":%d}", i);
        /* Alternate writers: node 1's changes reach node 0 by sync. */
        assert_int_equal(
            jv_cluster_http(&c, (size_t)(i % 3 == 0), "POST", path, body, &r),
            0);
        assert_int_equal(r.status, 200);
        jv_http_resp_fini(&r);
    }
    /* Each write once: per origin, seqs grow; deltas sum to the writes. */
    long long sum = 0;
    int got = 0;
    json_int_t seq[2] = {0, 0};
    uint64_t last = 0;
    while (got < n) {
        ev e;
        next_ev(&c, &s, &e, &last);
        if (!strcmp(e.event, "counter")) {
            int who = !strcmp(str(e.data, "origin"), c.node[1].id);
            json_int_t q = json_integer_value(json_object_get(e.data, "seq"));
            assert_true(q > seq[who]);
            seq[who] = q;
            sum += json_integer_value(json_object_get(e.data, "delta"));
            got++;
        }
        json_decref(e.data);
    }
    assert_int_equal(sum, (long long)n * (n + 1) / 2);
    assert_true(seq[1] > 0);
    /* Node 1 goes away: node 0 says so. Only a peer node 0 has reached
     * can become unreachable: node 1's pushes may have brought all of its
     * writes before node 0's own first exchange with it succeeded. */
    double until = jv_cluster_now_ms() + WAIT_MS;
    for (bool up = false; !up; jv_cluster_sleep_ms(20)) {
        json_t *p = nt_peer(&c, 0, c.node[1].listen);
        up = json_is_true(json_object_get(p, "reachable"));
        json_decref(p);
        NT_CHECK(&c, up || jv_cluster_now_ms() < until);
    }
    assert_int_equal(jv_cluster_stop(&c, 1), 0);
    until = jv_cluster_now_ms() + WAIT_MS;
    for (;;) {
        ev e;
        NT_CHECK(&c, jv_cluster_now_ms() < until); /* pings do not count */
        next_ev(&c, &s, &e, &last);
        bool down = !strcmp(e.event, "node") &&
                    !strcmp(str(e.data, "event"), "peer_unreachable");
        NT_CHECK(&c, strcmp(e.event, "counter") != 0); /* no duplicates */
        json_decref(e.data);
        if (down)
            break;
    }
    jv_sse_close(&s);
    jv_cluster_fini(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_peer_events),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
