/*
 * hold_test.c - the hint "holding batches of origin ...: jarvisctl trust
 * add ..." is for holds that last. Node B pairs with A and C, which it
 * does not trust yet: both their batches are held. B is told to trust A
 * at once (as a joining node learns the trust list a moment after the
 * data); C stays untrusted. B's log then names C, after HOLD_LOG_MS
 * (node/repl.c) of holding, and never A.
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

#define DEADLINE_MS 60000

static ctl_ctx C;
static jv_test_node A, B, Cn;

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof a;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* jarvisctl --json ARGS against node n, expecting exit 0. */
static json_t *on(jv_test_node *n, const char *a, const char *b, const char *c,
                  const char *d)
{
    jv_proc_result r;
    C.node = n->url;
    C.key = n->admin_key;
    CTL(&C, &r, "--json", a, b, c, d);
    C.node = C.key = NULL;
    CTL_EXPECT(&r, 0);
    json_t *j = ctl_json(&r);
    jv_proc_result_fini(&r);
    return j;
}

static void start(jv_test_node *n, char id[80], char listen[64])
{
    jv_proc_result r;
    assert_int_equal(jv_test_node_prepare(n), 0);
    CTL(&C, &r, "init", n->dir, "--json");
    CTL_EXPECT(&r, 0);
    json_t *j = ctl_json(&r);
    snprintf(id, 80, "%s", json_string_value(json_object_get(j, "node_id")));
    json_decref(j);
    jv_proc_result_fini(&r);
    snprintf(listen, 64, "tcp://127.0.0.1:%d", free_port());
    char *extra[] = {"--listen", listen, "--sync-interval", "200", NULL};
    assert_int_equal(jv_test_node_restart(n, extra), 0);
}

static char *read_log(const jv_test_node *n)
{
    FILE *f = fopen(n->log, "r");
    char *buf = calloc(1, 1 << 20);
    assert_non_null(buf);
    if (f != NULL) {
        buf[fread(buf, 1, (1 << 20) - 1, f)] = '\0';
        fclose(f);
    }
    return buf;
}

static void test_hint_only_when_the_hold_lasts(void **state)
{
    (void)state;
    char ida[80], idb[80], idc[80], la[64], lb[64], lc[64];
    char hint_a[64], hint_c[64];
    start(&A, ida, la);
    start(&B, idb, lb);
    start(&Cn, idc, lc);
    json_decref(on(&A, "audit", "add", "from-a", NULL));
    json_decref(on(&Cn, "audit", "add", "from-c", NULL));

    /* B pulls from both; neither is trusted on B yet. */
    json_decref(on(&B, "peers", "add", la, NULL));
    json_decref(on(&B, "peers", "add", lc, NULL));
    for (int waited = 0;; waited += 50) {
        json_t *j = on(&B, "status", NULL, NULL, NULL);
        json_int_t held =
            json_integer_value(json_object_get(j, "held_batches"));
        json_decref(j);
        if (held >= 2)
            break;
        assert_true(waited < DEADLINE_MS);
        sleep_ms(50);
    }
    /* A is trusted a moment later: its hold ends at once. */
    json_decref(on(&B, "trust", "add", ida, NULL));

    /* C's hold lasts: B says how to end it, naming C. */
    snprintf(hint_a, sizeof hint_a, "origin %.16s", ida);
    snprintf(hint_c, sizeof hint_c, "origin %.16s", idc);
    char *log = NULL;
    for (int waited = 0;; waited += 100) {
        free(log);
        log = read_log(&B);
        if (strstr(log, hint_c) != NULL)
            break;
        if (waited >= DEADLINE_MS)
            jv_test_node_dump_log(&B);
        assert_true(waited < DEADLINE_MS);
        sleep_ms(100);
    }
    const char *line = strstr(log, hint_c);
    assert_non_null(strstr(line, "jarvisctl trust add"));
    assert_non_null(strstr(line, idc));
    /* ... and never A, whose hold was short. */
    if (strstr(log, hint_a) != NULL)
        jv_test_node_dump_log(&B);
    assert_null(strstr(log, hint_a));
    free(log);

    /* A's entry reached B; C's is still held. */
    json_t *j = on(&B, "audit", "query", "--action", "from-a");
    assert_int_equal(json_array_size(json_object_get(j, "entries")), 1);
    json_decref(j);
    j = on(&B, "audit", "query", "--action", "from-c");
    assert_int_equal(json_array_size(json_object_get(j, "entries")), 0);
    json_decref(j);
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
    jv_test_node_cleanup(&Cn);
    ctl_fini(&C);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hint_only_when_the_hold_lasts),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
