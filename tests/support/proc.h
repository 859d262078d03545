/*
 * proc.h - integration tests' processes: run a program and capture what
 * it prints, start a real jarvisd on a fresh data dir and stop it.
 *
 * Everything is made to run beside other tests (ctest -j): every node gets
 * its own temporary directory (mkdtemp under $TMPDIR, else /tmp) and asks
 * for port 0, then reads the address it bound from <data-dir>/api.addr.
 * Binaries come from $JV_BIN_DIR, which ctest sets (tests/CMakeLists.txt).
 *
 * Blocking; single-threaded tests only (fork without exec-safe care for
 * other threads).
 */
#ifndef JV_PROC_H
#define JV_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* A running child. */
typedef struct {
    pid_t pid;
    int out_fd; /* read ends of its stdout/stderr pipes, -1 if not piped */
    int err_fd;
    bool reaped;
    int wstatus;
} jv_proc;

/* What a finished child left. */
typedef struct {
    int status;    /* exit code, or 128 + signal number if killed */
    bool signaled; /* killed by a signal */
    bool timed_out;
    char *out; /* stdout, NUL-terminated (malloc'd) */
    size_t out_len;
    char *err; /* stderr, NUL-terminated (malloc'd) */
    size_t err_len;
} jv_proc_result;

/* Starts argv[0] (a path) with argv and exactly the environment env
 * (NULL-terminated "NAME=value" strings; NULL: inherit ours). With log
 * NULL, stdout and stderr are piped for jv_proc_wait(); else both are
 * appended to the file log. stdin is /dev/null. 0, or -1 with errno. */
int jv_proc_spawn(jv_proc *p, char *const argv[], char *const env[],
                  const char *log);
/* jv_proc_spawn in the network namespace of the file netns (a path such
 * as /proc/<pid>/fd/<n>; NULL or "": ours), entered before the exec. */
int jv_proc_spawn_ns(jv_proc *p, char *const argv[], char *const env[],
                     const char *log, const char *netns);

/* Sends sig to the child (if it has not been reaped). */
void jv_proc_signal(jv_proc *p, int sig);

/* Collects the child's output and waits for it to exit, at most
 * timeout_ms; past that it is killed (SIGKILL) and r->timed_out is set.
 * r is filled in every case; release it with jv_proc_result_fini(). 0, or
 * -1 on a system error. */
int jv_proc_wait(jv_proc *p, int timeout_ms, jv_proc_result *r);

/* spawn + wait. */
int jv_proc_run(char *const argv[], char *const env[], int timeout_ms,
                jv_proc_result *r);

void jv_proc_result_fini(jv_proc_result *r);

/* $JV_BIN_DIR/name into out; false if JV_BIN_DIR is unset or too long. */
bool jv_bin_path(const char *name, char *out, size_t outlen);

/* A jarvisd under test. */
typedef struct {
    jv_proc proc;
    bool running;
    char root[512];      /* temporary directory holding the rest */
    char dir[600];       /* the data dir, <root>/data */
    char log[600];       /* jarvisd's stdout and stderr, <root>/jarvisd.log */
    char url[256];       /* the API address, as api.addr gives it */
    char admin_key[256]; /* the first admin key, from admin.key */
    /* Set between jv_test_node_prepare() and jv_test_node_restart(): the
     * largest file jarvisd may write (RLIMIT_FSIZE, bytes); 0: no limit. */
    unsigned long long fsize_limit;
    /* Set after jv_test_node_prepare(): the network namespace jarvisd
     * runs in (see jv_proc_spawn_ns); "": the test's own. */
    char netns[128];
} jv_test_node;

/* Makes a fresh temporary root and starts jarvisd on <root>/data with
 * --api-listen 127.0.0.1:0, no config file (not the host's default) and
 * the extra arguments (NULL-terminated, may be NULL; --config FILE there
 * is read), then waits up to 20 s for api.addr and GET /health == 200.
 * On failure prints why (and the node's log) to stderr and returns -1. */
int jv_test_node_start(jv_test_node *n, char *const extra[]);

/* Makes the temporary root and names the paths, without starting
 * anything: for tests that prepare the data dir first (jarvisctl init),
 * then start the node with jv_test_node_restart(). */
int jv_test_node_prepare(jv_test_node *n);

/* Starts jarvisd on the node's data dir (after a prepare or a stop). */
int jv_test_node_restart(jv_test_node *n, char *const extra[]);

/* SIGTERM, then waits up to 20 s. Returns jarvisd's exit status (128 +
 * signal if killed, -1 if it had to be killed after the wait). */
int jv_test_node_stop(jv_test_node *n);

/* jv_test_node_stop with another signal (SIGKILL: a crash; 0: none, only
 * wait for an exit already under way). May be called while other threads
 * of the test talk to the node. */
int jv_test_node_kill(jv_test_node *n, int sig);

/* Stops the node if it still runs (SIGTERM; SIGKILL if it hangs) and
 * removes its temporary root. */
void jv_test_node_cleanup(jv_test_node *n);

/* Prints the node's log to stderr (for failing tests). */
void jv_test_node_dump_log(const jv_test_node *n);

/* A fresh temporary directory (mkdtemp) with this prefix into out. */
int jv_test_tmpdir(const char *prefix, char *out, size_t outlen);
/* rm -rf path. */
void jv_test_rmtree(const char *path);

#endif
