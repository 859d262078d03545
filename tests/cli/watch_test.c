/*
 * watch_test.c - `jarvisctl watch` follows a node across a restart
 * (retries, says so once, resumes: every change once, in order), prints
 * human lines; `jarvisctl dev cluster up 3` starts a cluster that
 * converges, refuses a second `up` on the same folder, `status` shows it
 * and `down` stops it.
 *
 * Followers write to a file the test reads while they run; every wait
 * polls with a deadline.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
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
static jv_test_node N;
static char listen_addr[64], log_path[700], dev_dir[600];
static char *extra[8];

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

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf = calloc(1, 1 << 20);
    assert_non_null(buf);
    if (f != NULL) {
        size_t n = fread(buf, 1, (1 << 20) - 1, f);
        buf[n] = '\0';
        fclose(f);
    }
    return buf;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *q = hay; (q = strstr(q, needle)) != NULL; q++)
        n++;
    return n;
}

/* Polls the follower's output until it holds want at least n times. */
static void wait_for_n(const char *want, int n)
{
    for (int waited = 0;; waited += 100) {
        char *out = slurp(log_path);
        bool found = count(out, want) >= n;
        if (!found && waited >= DEADLINE_MS)
            fprintf(stderr, "never saw '%s' x%d in:\n%s\n", want, n, out);
        free(out);
        if (found)
            return;
        assert_true(waited < DEADLINE_MS);
        sleep_ms(100);
    }
}

static void incr(int by)
{
    jv_proc_result r;
    char b[16];
    snprintf(b, sizeof b, "%d", by);
    C.key = N.admin_key;
    C.node = N.url;
    CTL(&C, &r, "counters", "incr", "w", b);
    CTL_EXPECT(&r, 0);
    jv_proc_result_fini(&r);
}

static void test_watch_restart(void **state)
{
    (void)state;
    jv_proc p, h;
    jv_proc_result r;
    char human[700];
    snprintf(listen_addr, sizeof listen_addr, "127.0.0.1:%d", free_port());
    extra[0] = "--api-listen";
    extra[1] = listen_addr;
    extra[2] = NULL;
    assert_int_equal(jv_test_node_start(&N, extra), 0);
    C.node = N.url;
    C.key = N.admin_key;
    snprintf(log_path, sizeof log_path, "%s/watch.log", C.home);
    snprintf(human, sizeof human, "%s/human.log", C.home);
    CTL_SPAWN_LOG(&C, &p, log_path, "--json", "watch", "--kind", "counter",
                  "--cursor", "0");
    CTL_SPAWN_LOG(&C, &h, human, "watch", "--prefix", "w", "--cursor", "0");
    /* From the log's start (--cursor 0): no race with the connect. */
    incr(1);
    wait_for_n("\"delta\":1,", 1);

    assert_int_equal(jv_test_node_stop(&N), 0);
    wait_for_n("retrying until it answers", 1);
    assert_int_equal(jv_test_node_restart(&N, extra), 0);
    incr(2); /* before the follower is back: must not be lost */
    wait_for_n("answers again", 1);
    incr(3);
    wait_for_n("\"delta\":3,", 1);

    jv_proc_signal(&p, SIGINT);
    assert_int_equal(jv_proc_wait(&p, 20000, &r), 0);
    CTL_EXPECT(&r, 0);
    jv_proc_result_fini(&r);

    char *out = slurp(log_path);
    /* Each once, in order. */
    const char *d1 = strstr(out, "\"delta\":1,"),
               *d2 = strstr(out, "\"delta\":2,"),
               *d3 = strstr(out, "\"delta\":3,");
    assert_non_null(d1);
    assert_non_null(d2);
    assert_non_null(d3);
    assert_true(d1 < d2 && d2 < d3);
    assert_int_equal(count(out, "\"kind\":\"counter\""), 3);
    assert_int_equal(count(out, "retrying until"), 1);
    free(out);

    /* The human stream: one line per change. */
    snprintf(log_path, sizeof log_path, "%s", human);
    wait_for_n("+3", 1);
    jv_proc_signal(&h, SIGTERM);
    assert_int_equal(jv_proc_wait(&h, 20000, &r), 0);
    CTL_EXPECT(&r, 0);
    jv_proc_result_fini(&r);
    out = slurp(human);
    assert_int_equal(count(out, "counter  w  +"), 3);
    free(out);
    jv_test_node_cleanup(&N);
}

/* node i's API address from cluster.json. */
static void node_api(int i, char *out, size_t outlen)
{
    char path[700];
    snprintf(path, sizeof path, "%s/cluster.json", dev_dir);
    json_t *j = json_load_file(path, 0, NULL);
    assert_non_null(j);
    json_t *n = json_array_get(json_object_get(j, "nodes"), (size_t)i);
    snprintf(out, outlen, "%s", json_string_value(json_object_get(n, "api")));
    json_decref(j);
}

static void test_dev_cluster(void **state)
{
    (void)state;
    jv_proc_result r;
    char key[256], api[3][128], path[700];
    snprintf(dev_dir, sizeof dev_dir, "%s/dev", C.home);
    C.key = NULL;
    C.node = NULL;
    CTL(&C, &r, "dev", "cluster", "up", "3", "--dir", dev_dir);
    CTL_EXPECT(&r, 0);
    assert_true(ctl_has(r.out, "dashboard http://127.0.0.1:"));
    assert_true(ctl_has(r.out, "jarvisctl watch"));
    jv_proc_result_fini(&r);

    /* A second cluster in the same folder is refused. */
    CTL(&C, &r, "dev", "cluster", "up", "2", "--dir", dev_dir);
    CTL_EXPECT(&r, 1);
    assert_true(ctl_has(r.err, "running dev cluster"));
    jv_proc_result_fini(&r);

    CTL(&C, &r, "dev", "cluster", "status", "--dir", dev_dir);
    CTL_EXPECT(&r, 0);
    assert_int_equal(count(r.out, " running"), 3);
    jv_proc_result_fini(&r);

    /* One cluster key for all: a write on node 1 reaches the others. */
    snprintf(path, sizeof path, "%s/api.key", dev_dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(key, sizeof key, f));
    fclose(f);
    key[strcspn(key, "\n")] = '\0';
    for (int i = 0; i < 3; i++)
        node_api(i, api[i], sizeof api[i]);
    C.key = key;
    C.node = api[0];
    CTL(&C, &r, "counters", "incr", "dev", "7");
    CTL_EXPECT(&r, 0);
    jv_proc_result_fini(&r);
    for (int i = 1; i < 3; i++) {
        C.node = api[i];
        for (int waited = 0;; waited += 200) {
            CTL(&C, &r, "--json", "counters", "get", "dev");
            bool ok = r.status == 0 && ctl_has(r.out, "\"total\": 7");
            if (!ok && waited >= DEADLINE_MS)
                fprintf(stderr, "node %d: %s %s\n", i + 1, r.out, r.err);
            jv_proc_result_fini(&r);
            if (ok)
                break;
            assert_true(waited < DEADLINE_MS);
            sleep_ms(200);
        }
    }

    C.key = NULL;
    C.node = NULL;
    CTL(&C, &r, "dev", "cluster", "down", "--dir", dev_dir);
    CTL_EXPECT(&r, 0);
    assert_int_equal(count(r.out, " stopped"), 3);
    jv_proc_result_fini(&r);
    CTL(&C, &r, "dev", "cluster", "status", "--dir", dev_dir);
    CTL_EXPECT(&r, 0);
    assert_int_equal(count(r.out, " stopped"), 3);
    jv_proc_result_fini(&r);
    dev_dir[0] = '\0';
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
    if (dev_dir[0]) { /* a failed test leaves nothing running */
        jv_proc_result r;
        C.key = C.node = NULL;
        CTL(&C, &r, "dev", "cluster", "down", "--dir", dev_dir);
        jv_proc_result_fini(&r);
    }
    jv_test_node_cleanup(&N);
    ctl_fini(&C);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_watch_restart),
        cmocka_unit_test(test_dev_cluster),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
