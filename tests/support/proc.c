#define _GNU_SOURCE /* nftw's FTW_DEPTH and FTW_PHYS */
#include "proc.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NODE_WAIT_MS 20000

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int jv_proc_spawn(jv_proc *p, char *const argv[], char *const env[],
                  const char *log)
{
    return jv_proc_spawn_ns(p, argv, env, log, NULL);
}

int jv_proc_spawn_ns(jv_proc *p, char *const argv[], char *const env[],
                     const char *log, const char *netns)
{
    int out[2] = {-1, -1}, err[2] = {-1, -1};
    memset(p, 0, sizeof *p);
    p->out_fd = p->err_fd = -1;
    if (log == NULL && (pipe(out) != 0 || pipe(err) != 0))
        goto fail;
    pid_t pid = fork();
    if (pid < 0)
        goto fail;
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);
        int o = out[1], e = err[1];
        if (log != NULL) {
            o = e = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (o < 0)
                _exit(126);
        }
        if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(o, 1) < 0 ||
            dup2(e, 2) < 0)
            _exit(126);
        /* A test that dies (a failed assertion, a ctest timeout) must not
         * leave a jarvisd behind. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (netns != NULL && netns[0] != '\0') {
            int ns = open(netns, O_RDONLY | O_CLOEXEC);
            if (ns < 0 || setns(ns, CLONE_NEWNET) != 0)
                _exit(126);
        }
        if (env != NULL)
            execve(argv[0], argv, env);
        else
            execv(argv[0], argv);
        _exit(127);
    }
    if (log == NULL) {
        close(out[1]);
        close(err[1]);
        p->out_fd = out[0];
        p->err_fd = err[0];
    }
    p->pid = pid;
    return 0;
fail:;
    int saved = errno;
    for (int i = 0; i < 2; i++) {
        if (out[i] >= 0)
            close(out[i]);
        if (err[i] >= 0)
            close(err[i]);
    }
    errno = saved;
    return -1;
}

void jv_proc_signal(jv_proc *p, int sig)
{
    if (p->pid > 0 && !p->reaped)
        kill(p->pid, sig);
}

/* Appends what fd has to (*buf, *len); returns false at EOF or error. */
static bool drain(int fd, char **buf, size_t *len, size_t *cap)
{
    char tmp[4096];
    ssize_t n = read(fd, tmp, sizeof tmp);
    if (n < 0 && errno == EINTR)
        return true;
    if (n <= 0)
        return false;
    if (*len + (size_t)n + 1 > *cap) {
        size_t c = *cap ? *cap : 8192;
        while (c < *len + (size_t)n + 1)
            c *= 2;
        char *b = realloc(*buf, c);
        if (b == NULL)
            return false;
        *buf = b;
        *cap = c;
    }
    memcpy(*buf + *len, tmp, (size_t)n);
    *len += (size_t)n;
    (*buf)[*len] = '\0';
    return true;
}

static void set_status(jv_proc_result *r, int ws)
{
    if (WIFEXITED(ws)) {
        r->status = WEXITSTATUS(ws);
    } else if (WIFSIGNALED(ws)) {
        r->signaled = true;
        r->status = 128 + WTERMSIG(ws);
    }
}

int jv_proc_wait(jv_proc *p, int timeout_ms, jv_proc_result *r)
{
    size_t ocap = 0, ecap = 0;
    long long deadline = now_ms() + timeout_ms;
    memset(r, 0, sizeof *r);
    r->status = -1;
    while (p->out_fd >= 0 || p->err_fd >= 0) {
        struct pollfd fds[2] = {{p->out_fd, POLLIN, 0}, {p->err_fd, POLLIN, 0}};
        long long left = deadline - now_ms();
        if (left <= 0) {
            r->timed_out = true;
            kill(p->pid, SIGKILL);
            deadline = now_ms() + 5000; /* collect what is left */
            left = 5000;
        }
        int n = poll(fds, 2, (int)left);
        if (n < 0 && errno != EINTR)
            return -1;
        if (n <= 0)
            continue;
        if (fds[0].revents && !drain(p->out_fd, &r->out, &r->out_len, &ocap)) {
            close(p->out_fd);
            p->out_fd = -1;
        }
        if (fds[1].revents && !drain(p->err_fd, &r->err, &r->err_len, &ecap)) {
            close(p->err_fd);
            p->err_fd = -1;
        }
    }
    while (!p->reaped) {
        pid_t w = waitpid(p->pid, &p->wstatus, WNOHANG);
        if (w == p->pid) {
            p->reaped = true;
            break;
        }
        if (w < 0 && errno != EINTR)
            return -1;
        if (now_ms() >= deadline) {
            r->timed_out = true;
            kill(p->pid, SIGKILL);
            if (waitpid(p->pid, &p->wstatus, 0) == p->pid)
                p->reaped = true;
            break;
        }
        sleep_ms(10);
    }
    if (p->reaped)
        set_status(r, p->wstatus);
    if (r->out == NULL)
        r->out = calloc(1, 1);
    if (r->err == NULL)
        r->err = calloc(1, 1);
    return r->out && r->err ? 0 : -1;
}

int jv_proc_run(char *const argv[], char *const env[], int timeout_ms,
                jv_proc_result *r)
{
    jv_proc p;
    if (jv_proc_spawn(&p, argv, env, NULL) != 0) {
        memset(r, 0, sizeof *r);
        return -1;
    }
    return jv_proc_wait(&p, timeout_ms, r);
}

void jv_proc_result_fini(jv_proc_result *r)
{
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof *r);
}

bool jv_bin_path(const char *name, char *out, size_t outlen)
{
    const char *dir = getenv("JV_BIN_DIR");
    return dir != NULL &&
           (size_t)snprintf(out, outlen, "%s/%s", dir, name) < outlen;
}

int jv_test_tmpdir(const char *prefix, char *out, size_t outlen)
{
    const char *tmp = getenv("TMPDIR");
    if (tmp == NULL || *tmp == '\0')
        tmp = "/tmp";
    if ((size_t)snprintf(out, outlen, "%s/%s.XXXXXX", tmp, prefix) >= outlen)
        return -1;
    return mkdtemp(out) ? 0 : -1;
}

static int rm_one(const char *path, const struct stat *sb, int flag,
                  struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

void jv_test_rmtree(const char *path)
{
    if (path[0] != '\0')
        nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Reads a small file without trailing white space. */
static bool read_line(const char *path, char *out, size_t outlen)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    size_t n = fread(out, 1, outlen - 1, f);
    fclose(f);
    out[n] = '\0';
    while (n > 0 &&
           (out[n - 1] == '\n' || out[n - 1] == ' ' || out[n - 1] == '\r'))
        out[--n] = '\0';
    return n > 0;
}

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
}

/* GET <url>/health == 200. */
static bool healthy(const char *url)
{
    char full[512];
    long status = 0;
    CURL *h = curl_easy_init();
    if (h == NULL)
        return false;
    if (strncmp(url, "unix:", 5) == 0) {
        snprintf(full, sizeof full, "http://localhost/health");
        curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, url + 5);
    } else {
        snprintf(full, sizeof full, "%s/health", url);
    }
    curl_easy_setopt(h, CURLOPT_URL, full);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 2L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    bool ok =
        curl_easy_perform(h) == CURLE_OK &&
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK &&
        status == 200;
    curl_easy_cleanup(h);
    return ok;
}

void jv_test_node_dump_log(const jv_test_node *n)
{
    FILE *f = fopen(n->log, "r");
    char line[1024];
    if (f == NULL)
        return;
    fprintf(stderr, "---- %s ----\n", n->log);
    while (fgets(line, sizeof line, f) != NULL)
        fputs(line, stderr);
    fprintf(stderr, "---- end of log ----\n");
    fclose(f);
}

static int launch(jv_test_node *n, char *const extra[])
{
    char bin[512], addr_path[700], key_path[700];
    char *argv[64];
    size_t a = 0;
    if (!jv_bin_path("jarvisd", bin, sizeof bin)) {
        fprintf(stderr, "JV_BIN_DIR is not set\n");
        return -1;
    }
    snprintf(addr_path, sizeof addr_path, "%s/api.addr", n->dir);
    snprintf(key_path, sizeof key_path, "%s/admin.key", n->dir);
    unlink(addr_path); /* a stale one from the previous run */
    argv[a++] = bin;
    argv[a++] = (char *)"--data-dir";
    argv[a++] = n->dir;
    argv[a++] = (char *)"--api-listen";
    argv[a++] = (char *)"127.0.0.1:0";
    /* No config file, not even the host's default one, unless extra names
     * one (a later --config wins). */
    argv[a++] = (char *)"--config=";
    for (size_t i = 0; extra != NULL && extra[i] != NULL && a < 62; i++)
        argv[a++] = extra[i];
    argv[a] = NULL;
    /* The child inherits the limit; this process keeps its own (the test
     * is single-threaded here, so nothing else writes meanwhile). */
    struct rlimit saved;
    bool limited = n->fsize_limit > 0 && getrlimit(RLIMIT_FSIZE, &saved) == 0;
    if (limited) {
        struct rlimit lim = saved;
        lim.rlim_cur = (rlim_t)n->fsize_limit;
        if (setrlimit(RLIMIT_FSIZE, &lim) != 0) {
            fprintf(stderr, "cannot limit file sizes: %s\n", strerror(errno));
            return -1;
        }
    }
    int spawned = jv_proc_spawn_ns(&n->proc, argv, NULL, n->log, n->netns);
    int spawn_errno = errno;
    if (limited)
        setrlimit(RLIMIT_FSIZE, &saved);
    if (spawned != 0) {
        fprintf(stderr, "cannot start %s: %s\n", bin, strerror(spawn_errno));
        return -1;
    }
    n->running = true;
    long long deadline = now_ms() + NODE_WAIT_MS;
    while (now_ms() < deadline) {
        int ws;
        if (waitpid(n->proc.pid, &ws, WNOHANG) == n->proc.pid) {
            n->proc.reaped = true;
            n->proc.wstatus = ws;
            n->running = false;
            fprintf(stderr, "jarvisd exited during start-up (status %d)\n",
                    WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws));
            jv_test_node_dump_log(n);
            return -1;
        }
        if (read_line(addr_path, n->url, sizeof n->url) && healthy(n->url)) {
            if (!read_line(key_path, n->admin_key, sizeof n->admin_key))
                n->admin_key[0] = '\0';
            return 0;
        }
        sleep_ms(20);
    }
    fprintf(stderr, "jarvisd did not serve /health within %d ms\n",
            NODE_WAIT_MS);
    jv_test_node_dump_log(n);
    return -1;
}

int jv_test_node_prepare(jv_test_node *n)
{
    memset(n, 0, sizeof *n);
    if (jv_test_tmpdir("jvnode", n->root, sizeof n->root) != 0) {
        fprintf(stderr, "cannot make a temporary directory: %s\n",
                strerror(errno));
        return -1;
    }
    snprintf(n->dir, sizeof n->dir, "%s/data", n->root);
    snprintf(n->log, sizeof n->log, "%s/jarvisd.log", n->root);
    return 0;
}

int jv_test_node_start(jv_test_node *n, char *const extra[])
{
    if (jv_test_node_prepare(n) != 0)
        return -1;
    return launch(n, extra);
}

int jv_test_node_restart(jv_test_node *n, char *const extra[])
{
    if (n->running)
        return -1;
    return launch(n, extra);
}

int jv_test_node_stop(jv_test_node *n)
{
    return jv_test_node_kill(n, SIGTERM);
}

/* A node that does not stop is a bug to find: its threads' stacks, where
 * gdb is installed, say where it waits. */
static void dump_stacks(pid_t pid)
{
    char cmd[160];
    snprintf(cmd, sizeof cmd,
             "command -v gdb >/dev/null && timeout 60 gdb -p %ld -batch -nx "
             "-ex 'thread apply all bt' 1>&2 2>/dev/null",
             (long)pid);
    if (system(cmd) == -1)
        fprintf(stderr, "cannot run gdb: %s\n", strerror(errno));
}

int jv_test_node_kill(jv_test_node *n, int sig)
{
    if (!n->running)
        return -1;
    jv_proc_signal(&n->proc, sig);
    long long deadline = now_ms() + NODE_WAIT_MS;
    int ws = 0;
    pid_t w;
    while ((w = waitpid(n->proc.pid, &ws, WNOHANG)) == 0 && now_ms() < deadline)
        sleep_ms(10);
    n->running = false;
    n->proc.reaped = true;
    if (w != n->proc.pid) {
        dump_stacks(n->proc.pid);
        kill(n->proc.pid, SIGKILL);
        waitpid(n->proc.pid, &ws, 0);
        fprintf(stderr, "jarvisd did not stop within %d ms of signal %d\n",
                NODE_WAIT_MS, sig);
        jv_test_node_dump_log(n);
        return -1;
    }
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
}

void jv_test_node_cleanup(jv_test_node *n)
{
    /* SIGTERM, SIGKILL only if it hangs: a node that exits normally
     * writes what an instrumented build collects (make coverage). */
    if (n->running)
        (void)jv_test_node_kill(n, SIGTERM);
    jv_test_rmtree(n->root);
}
