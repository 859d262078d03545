/*
 * follow_test.c - `jarvisctl audit tail --follow` rides out node
 * restarts: it retries with backoff instead of exiting (4 before), says
 * so once per outage on stderr, and resumes its change stream where it
 * was: every entry written before, during and after each outage is
 * printed exactly once, in order. The human stream's rows line up with
 * its header. (The stream makes no requests while it runs, so a rate
 * limit only meets it when it connects: the same retry path.)
 *
 * The follower writes to a file (stdout and stderr) that the test reads
 * while it runs; every wait polls that file with a deadline.
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
static char listen_addr[64], log_path[700];
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

/* The follower's output so far (malloc'd). */
static char *slurp_log(void)
{
    FILE *f = fopen(log_path, "r");
    char *buf = calloc(1, 1 << 20);
    assert_non_null(buf);
    if (f != NULL) {
        size_t n = fread(buf, 1, (1 << 20) - 1, f);
        buf[n] = '\0';
        fclose(f);
    }
    return buf;
}

/* Polls the follower's output until it contains want. */
static void wait_for(const char *want)
{
    for (int waited = 0;; waited += 100) {
        char *out = slurp_log();
        bool found = strstr(out, want) != NULL;
        if (!found && waited >= DEADLINE_MS)
            fprintf(stderr, "never saw '%s' in:\n%s\n", want, out);
        free(out);
        if (found)
            return;
        assert_true(waited < DEADLINE_MS);
        sleep_ms(100);
    }
}

/* audit add ACTION with the admin key; a 429 of our own (the node's
 * rate limit is low on purpose) is retried. */
static void add_with(const char *action, const char *detail)
{
    for (int waited = 0;; waited += 200) {
        jv_proc_result r;
        C.key = N.admin_key;
        CTL(&C, &r, "audit", "add", action, "--detail", detail);
        bool limited = r.status == 1 && ctl_has(r.err, "429");
        if (!limited)
            CTL_EXPECT(&r, 0);
        jv_proc_result_fini(&r);
        if (!limited)
            return;
        assert_true(waited < DEADLINE_MS);
        sleep_ms(200);
    }
}

static void add(const char *action)
{
    add_with(action, "");
}

/* Waits until the follower said n times that it is retrying. */
static void wait_said(int n)
{
    for (int waited = 0;; waited += 100) {
        char *out = slurp_log();
        int said = 0;
        for (const char *q = out; (q = strstr(q, "retrying until")) != NULL;
             q++)
            said++;
        free(out);
        if (said >= n)
            return;
        assert_true(waited < DEADLINE_MS);
        sleep_ms(100);
    }
}

static void start_node(void)
{
    snprintf(listen_addr, sizeof listen_addr, "127.0.0.1:%d", free_port());
    int i = 0;
    extra[i++] = "--api-listen";
    extra[i++] = listen_addr;
    /* Two requests a second per key: the test can exhaust it at will. */
    extra[i++] = "--rate-limit";
    extra[i++] = "2";
    extra[i++] = "--rate-burst";
    extra[i++] = "2";
    extra[i] = NULL;
    assert_int_equal(jv_test_node_start(&N, extra), 0);
    C.node = N.url;
}

/* A reader key for the follower, so that its rate limit is its own. */
static void reader_key(char *out, size_t outlen)
{
    jv_proc_result r;
    for (int waited = 0;; waited += 200) {
        C.key = N.admin_key;
        CTL(&C, &r, "--json", "keys", "create", "follower", "--role", "reader");
        if (r.status == 0)
            break;
        jv_proc_result_fini(&r);
        assert_true(waited < DEADLINE_MS);
        sleep_ms(200);
    }
    json_t *j = ctl_json(&r);
    snprintf(out, outlen, "%s", json_string_value(json_object_get(j, "key")));
    json_decref(j);
    jv_proc_result_fini(&r);
}

/* The actions of the JSON lines the follower printed, in order. */
static size_t stream_actions(const char *out, char actions[][32], size_t max,
                             json_t *ids)
{
    size_t n = 0;
    for (const char *l = out; *l;) {
        const char *end = strchr(l, '\n');
        if (end == NULL)
            break;
        if (*l == '{') {
            json_t *e = json_loadb(l, (size_t)(end - l), 0, NULL);
            assert_non_null(e);
            const char *id = json_string_value(json_object_get(e, "id"));
            assert_non_null(id);
            /* No entry twice. */
            assert_null(json_object_get(ids, id));
            json_object_set_new(ids, id, json_true());
            assert_true(n < max);
            snprintf(actions[n++], 32, "%s",
                     json_string_value(json_object_get(e, "action")));
            json_decref(e);
        }
        l = end + 1;
    }
    return n;
}

static void test_follow_survives(void **state)
{
    (void)state;
    char key[256];
    jv_proc p;
    jv_proc_result r;
    start_node();
    reader_key(key, sizeof key);
    snprintf(log_path, sizeof log_path, "%s/follow.log", C.home);
    /* -n 1 shows "ready" first: the follower runs before e1 is added. */
    add("ready");
    C.key = key;
    CTL_SPAWN_LOG(&C, &p, log_path, "--json", "audit", "tail", "-n", "1",
                  "--follow");
    wait_for("\"ready\"");

    add("e1");
    wait_for("\"e1\"");
    add("e2");
    wait_for("\"e2\"");

    /* The node restarts on the same address: the follower waits for it
     * instead of exiting 4. */
    assert_int_equal(jv_test_node_stop(&N), 0);
    wait_for("retrying until it answers");
    assert_int_equal(jv_test_node_restart(&N, extra), 0);
    add("e3"); /* before the follower is back: must not be lost */
    wait_for("answers again");
    add("e4");
    wait_for("\"e4\"");

    /* A second restart: the stream resumes again. */
    assert_int_equal(jv_test_node_stop(&N), 0);
    wait_said(2);
    assert_int_equal(jv_test_node_restart(&N, extra), 0);
    add("e5");
    wait_for("\"e5\"");
    add("e6");
    wait_for("\"e6\"");

    jv_proc_signal(&p, SIGINT);
    assert_int_equal(jv_proc_wait(&p, 20000, &r), 0);
    CTL_EXPECT(&r, 0);
    jv_proc_result_fini(&r);

    /* Each entry once, in order, nothing else of ours. */
    char *out = slurp_log();
    char actions[64][32];
    json_t *ids = json_object();
    size_t n = stream_actions(out, actions, 64, ids);
    json_decref(ids);
    const char *want[] = {"e1", "e2", "e3", "e4", "e5", "e6"};
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (actions[i][0] != 'e' || strlen(actions[i]) != 2)
            continue; /* the node's own entries (key.create...) */
        assert_true(k < 6);
        assert_string_equal(actions[i], want[k]);
        k++;
    }
    assert_int_equal(k, 6);
    /* Said once per outage: two restarts. */
    int said = 0;
    for (const char *q = out; (q = strstr(q, "retrying until")) != NULL; q++)
        said++;
    assert_int_equal(said, 2);
    free(out);
}

/* The human stream: every row's columns start where the header's do,
 * though each poll prints a table of its own. */
static void test_follow_columns(void **state)
{
    (void)state;
    jv_proc p;
    jv_proc_result r;
    snprintf(log_path, sizeof log_path, "%s/human.log", C.home);
    C.key = N.admin_key;
    add("short");
    CTL_SPAWN_LOG(&C, &p, log_path, "audit", "tail", "-n", "1", "--follow");
    wait_for("short");
    add("a-much-longer-action-name");
    wait_for("a-much-longer");
    add_with("x", "a detail that is quite a bit longer than the others are");
    wait_for("quite a bit");
    jv_proc_signal(&p, SIGINT);
    assert_int_equal(jv_proc_wait(&p, 20000, &r), 0);
    CTL_EXPECT(&r, 0);
    jv_proc_result_fini(&r);

    char *out = slurp_log();
    char *hdr = strstr(out, "TIME");
    assert_non_null(hdr);
    size_t col[2];
    const char *names[] = {"ACTION", "ID"};
    for (size_t i = 0; i < 2; i++) {
        const char *h = strstr(hdr, names[i]);
        assert_non_null(h);
        col[i] = (size_t)(h - hdr);
    }
    int rows = 0;
    for (char *l = strchr(hdr, '\n') + 1; *l;) {
        char *end = strchr(l, '\n');
        assert_non_null(end);
        size_t len = (size_t)(end - l);
        if (strncmp(l, "20", 2) == 0) { /* a row starts with its time */
            for (size_t i = 0; i < 2; i++) {
                assert_true(len > col[i]);
                if (!(l[col[i] - 1] == ' ' && l[col[i] - 2] == ' ' &&
                      l[col[i]] != ' '))
                    fprintf(stderr, "misaligned %s:\n%s\n", names[i], out);
                assert_true(l[col[i] - 1] == ' ' && l[col[i] - 2] == ' ');
                assert_true(l[col[i]] != ' ');
            }
            rows++;
        }
        l = end + 1;
    }
    assert_int_equal(rows, 3);
    free(out);
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
    jv_test_node_cleanup(&N);
    ctl_fini(&C);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_follow_survives),
        cmocka_unit_test(test_follow_columns),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
