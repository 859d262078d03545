/*
 * crash_test.c - the durability promise of JV_SYNC_NORMAL under kill -9.
 *
 * A child process commits local batches in a loop and, after each commit
 * returns, writes the committed last sequence number to a pipe. The parent
 * kills it with SIGKILL after a random delay, reopens the same database,
 * and checks: every reported sequence number is present (the version
 * vector is at least the last one reported), integrity_check passes, and
 * the log verifies (signatures, links, replay). Many rounds on one file.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backup.h"
#include "hlc.h"
#include "storetest.h"
#include "testutil.h"

#define ROUNDS 24

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The child: commit until killed. Never returns; no cmocka here. */
static void child(const char *path, const jv_keypair *kp, int round, int fd,
                  uint64_t seed)
{
    jv_store_opts o;
    jv_store *st = NULL;
    char msg[256];
    jv_rng rng;
    jv_rng_seed(&rng, seed);
    jv_store_opts_default(&o);
    o.sync = JV_SYNC_NORMAL;
    if (jv_store_open(path, &o, &st, msg, sizeof(msg)) != JV_OK) {
        fprintf(stderr, "child: open: %s\n", msg);
        _exit(3);
    }
    for (uint64_t i = 1;; i++) {
        uint64_t ms = 1000 + (uint64_t)round * 1000000 + i;
        char key[32], val[64];
        snprintf(key, sizeof(key), "k/%llu",
                 (unsigned long long)jv_rng_below(&rng, 300));
        snprintf(val, sizeof(val), "{\"round\":%d,\"i\":%llu}", round,
                 (unsigned long long)i);
        jv_intent in[4] = {
            st_counter("commits", 1),
            st_audit(ms, "crash", "commit", key, val),
            st_add(key, val, jv_hlc_make(ms, 0)),
            st_config("last", val, jv_hlc_make(ms, 0)),
        };
        size_t n = 1 + (size_t)jv_rng_below(&rng, 4);
        jv_write_group g = {.intents = in, .n = n};
        jv_commit_info ci;
        if (jv_store_commit_local(st, kp, jv_hlc_make(ms, 0), &g, 1, &ci) !=
                JV_OK ||
            g.result != JV_OK) {
            fprintf(stderr, "child: commit: %s\n", jv_store_errmsg(st));
            _exit(4);
        }
        /* Reported only after the commit returned. */
        if (write(fd, &ci.last_seq, sizeof(ci.last_seq)) !=
            (ssize_t)sizeof(ci.last_seq))
            _exit(5);
    }
}

/* Reads what the child reported; returns false at end of file. */
static bool drain(int fd, uint64_t *max, uint64_t *count, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r = poll(&p, 1, timeout_ms);
    if (r <= 0)
        return true;
    uint64_t v[512];
    ssize_t n = read(fd, v, sizeof(v));
    if (n == 0)
        return false;
    if (n < 0)
        return errno == EINTR;
    /* Writes of 8 bytes to a pipe are atomic: whole values only. */
    assert_int_equal(n % (ssize_t)sizeof(uint64_t), 0);
    for (ssize_t i = 0; i < n / (ssize_t)sizeof(uint64_t); i++) {
        assert_true(v[i] > *max);
        *max = v[i];
        (*count)++;
    }
    return true;
}

static void test_kill9(void **state)
{
    (void)state;
    char *dir = st_mkdtemp();
    char *path = st_path(dir, "node.db");
    jv_keypair kp;
    jv_rng rng;
    uint64_t seed = jv_test_seed();
    jv_rng_seed(&rng, seed);
    st_keypair(&kp, 60);
    jv_store *st = st_open(path);
    assert_int_equal(jv_store_set_self(st, &kp.pk), JV_OK);
    jv_store_close(st);

    uint64_t reported = 0, commits = 0, t0 = now_ms();
    for (int round = 0; round < ROUNDS; round++) {
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        fflush(stdout);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            child(path, &kp, round, fds[1], jv_rng_next(&rng));
        }
        close(fds[1]);
        uint64_t delay = 5 + jv_rng_below(&rng, 120);
        uint64_t until = now_ms() + delay, got = 0, round_max = reported;
        while (now_ms() < until)
            if (!drain(fds[0], &round_max, &got, (int)(until - now_ms())))
                break;
        assert_int_equal(kill(pid, SIGKILL), 0);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
            fail_msg("round %d: child ended on its own (status %d)", round,
                     status);
        while (drain(fds[0], &round_max, &got, 1000))
            ;
        close(fds[0]);
        reported = round_max;
        commits += got;

        jv_store_opts o;
        jv_store_opts_default(&o);
        st = st_open_opts(path, &o);
        jv_vv vv;
        jv_vv_init(&vv);
        assert_int_equal(jv_store_vv(st, &vv), JV_OK);
        uint64_t have = jv_vv_get(&vv, &kp.pk);
        if (have < reported)
            fail_msg("round %d: reported seq %llu committed, found %llu", round,
                     (unsigned long long)reported, (unsigned long long)have);
        jv_verify_report r;
        assert_int_equal(jv_store_verify(st, &r), JV_OK);
        if (!jv_verify_ok(&r))
            fail_msg("round %d: verify: integrity %s, sig %llu link %llu "
                     "enc %llu vv %d state %d %s",
                     round, r.integrity_msg,
                     (unsigned long long)r.bad_signatures,
                     (unsigned long long)r.bad_links,
                     (unsigned long long)r.bad_encodings, r.vv_matches,
                     r.state_matches, r.state_msg);
        assert_true(r.integrity_ok);
        printf("  round %2d: killed after %3llu ms, %4llu commits reported, "
               "seq %llu reported, %llu present\n",
               round, (unsigned long long)delay, (unsigned long long)got,
               (unsigned long long)reported, (unsigned long long)have);
        /* What was committed but not yet reported counts from now on. */
        reported = have;
        jv_vv_fini(&vv);
        jv_store_close(st);
    }
    printf("  %d kills, %llu commits reported, %.1f s\n", ROUNDS,
           (unsigned long long)commits, (double)(now_ms() - t0) / 1000.0);
    assert_true(commits > 0);
    free(path);
    st_rmdir(dir);
}

int main(void)
{
    jv_test_seed();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill9),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
