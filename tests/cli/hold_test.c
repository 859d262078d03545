/*
 * hold_test.c - the hint "holding batches of origin ...: jarvisctl trust
 * add ..." is for holds that last. Hub A takes the batches of C and D,
 * then removes its trust in both; B, trusted by A and trusting A, pulls
 * them through A and holds both (their origins are not trusted there).
 * B is told to trust C at once (as a joining node learns the trust list a
 * moment after the data); D stays held. B's log then names D, after
 * HOLD_LOG_MS (node/repl.c) of holding, and never C.
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
static jv_test_node A, B, Cn, D;

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

/* Polls until node n's audit log has an entry with action `action`. */
static void wait_entry(jv_test_node *n, const char *action)
{
    for (int waited = 0;; waited += 50) {
        json_t *j = on(n, "audit", "query", "--action", action);
        size_t got = json_array_size(json_object_get(j, "entries"));
        json_decref(j);
        if (got > 0)
            return;
        if (waited >= DEADLINE_MS)
            jv_test_node_dump_log(n);
        assert_true(waited < DEADLINE_MS);
        sleep_ms(50);
    }
}

static size_t entries(jv_test_node *n, const char *action)
{
    json_t *j = on(n, "audit", "query", "--action", action);
    size_t got = json_array_size(json_object_get(j, "entries"));
    json_decref(j);
    return got;
}

static void test_hint_only_when_the_hold_lasts(void **state)
{
    (void)state;
    char ida[80], idb[80], idc[80], idd[80], la[64], lb[64], lc[64], ld[64];
    char hint_c[64], hint_d[64];
    start(&A, ida, la);
    start(&B, idb, lb);
    start(&Cn, idc, lc);
    start(&D, idd, ld);

    /* A takes C's and D's writes, then trusts neither any more. */
    json_decref(on(&A, "trust", "add", idc, NULL));
    json_decref(on(&A, "trust", "add", idd, NULL));
    json_decref(on(&Cn, "trust", "add", ida, NULL));
    json_decref(on(&D, "trust", "add", ida, NULL));
    json_decref(on(&Cn, "audit", "add", "from-c", NULL));
    json_decref(on(&D, "audit", "add", "from-d", NULL));
    json_decref(on(&Cn, "peers", "add", la, NULL));
    json_decref(on(&D, "peers", "add", la, NULL));
    wait_entry(&A, "from-c");
    wait_entry(&A, "from-d");
    json_decref(on(&A, "trust", "rm", idc, NULL));
    json_decref(on(&A, "trust", "rm", idd, NULL));

    /* B pulls from A: C's and D's batches come, and are held. */
    json_decref(on(&A, "trust", "add", idb, NULL));
    json_decref(on(&B, "trust", "add", ida, NULL));
    json_decref(on(&B, "peers", "add", la, NULL));
    for (int waited = 0;; waited += 50) {
        json_t *j = on(&B, "status", NULL, NULL, NULL);
        json_int_t held =
            json_integer_value(json_object_get(j, "held_batches"));
        json_decref(j);
        if (held >= 2)
            break;
        if (waited >= DEADLINE_MS)
            jv_test_node_dump_log(&B);
        assert_true(waited < DEADLINE_MS);
        sleep_ms(50);
    }
    /* C is trusted a moment later: its hold ends at once. */
    json_decref(on(&B, "trust", "add", idc, NULL));

    /* D's hold lasts: B says how to end it, naming D. */
    snprintf(hint_c, sizeof hint_c, "origin %.16s", idc);
    snprintf(hint_d, sizeof hint_d, "origin %.16s", idd);
    char *log = NULL;
    for (int waited = 0;; waited += 100) {
        free(log);
        log = read_log(&B);
        if (strstr(log, hint_d) != NULL)
            break;
        if (waited >= DEADLINE_MS)
            jv_test_node_dump_log(&B);
        assert_true(waited < DEADLINE_MS);
        sleep_ms(100);
    }
    const char *line = strstr(log, hint_d);
    assert_non_null(strstr(line, "jarvisctl trust add"));
    assert_non_null(strstr(line, idd));
    /* ... and never C, whose hold was short. */
    if (strstr(log, hint_c) != NULL)
        jv_test_node_dump_log(&B);
    assert_null(strstr(log, hint_c));
    free(log);

    /* C's entry reached B; D's is still held. */
    wait_entry(&B, "from-c");
    assert_int_equal(entries(&B, "from-d"), 0);
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
    jv_test_node_cleanup(&D);
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
