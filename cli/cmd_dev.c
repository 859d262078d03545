/*
 * cmd_dev.c - dev cluster up|down|status: a local cluster in one command.
 *
 * `up N` makes, under one folder (--dir, default $TMPDIR/jarvis-dev-UID):
 * a fresh cluster key, N data dirs (jarvisd init), one configuration file
 * per node (free loopback ports for the API and the peers, every node a
 * peer of every other, every node trusted), then starts each jarvisd in
 * the background with its log in its dir, waits until each serves
 * /health, makes one admin cluster API key (replicated: it works on every
 * node) and writes it to DIR/api.key (0600). cluster.json records what
 * `status` and `down` need. It is what docs/operations.md tells an
 * operator to do, done for one machine.
 *
 * A folder that holds a running dev cluster is refused; one that holds a
 * stopped one is replaced; any other non-empty folder is refused.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include "alloc.h"
#include "args.h"
#include "client.h"
#include "keyring.h"
#include "output.h"

#define DEV_MAX      16
#define READY_MS     30000
#define STOP_MS      30000
#define CLUSTER_JSON "cluster.json"

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void default_dir(char *out, size_t outlen)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(out, outlen, "%s/jarvis-dev-%u", tmp && *tmp ? tmp : "/tmp",
             (unsigned)getuid());
}

static bool jarvisd_path(char *out, size_t outlen)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            if ((size_t)snprintf(out, outlen, "%s/jarvisd", self) < outlen &&
                access(out, X_OK) == 0)
                return true;
        }
    }
    const char *path = getenv("PATH");
    while (path && *path) {
        size_t l = strcspn(path, ":");
        if ((size_t)snprintf(out, outlen, "%.*s/jarvisd", (int)l, path) <
                outlen &&
            access(out, X_OK) == 0)
            return true;
        path += l + (path[l] == ':');
    }
    return false;
}

/* A loopback port free right now. */
static int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof a;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;
    if (fd < 0)
        return -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* Runs argv, its stdout into out (NUL-terminated); true on exit 0. */
static bool run_capture(const char *const argv[], char *out, size_t outlen)
{
    /* exec takes char *const[] for historical reasons; it writes nothing. */
    union {
        const char *const *c;
        char *const *m;
    } u = {.c = argv};
    int p[2];
    if (pipe(p) != 0)
        return false;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return false;
    }
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        execv(argv[0], u.m);
        _exit(127);
    }
    close(p[1]);
    size_t at = 0;
    ssize_t n;
    while ((n = read(p[0], out + at, outlen - 1 - at)) > 0)
        at += (size_t)n;
    out[at] = '\0';
    close(p[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* Starts argv in the background, detached (its own session, not our
 * child), stdout and stderr appended to log. Its pid, or -1. */
static pid_t daemonise(const char *const argv[], const char *log)
{
    union {
        const char *const *c;
        char *const *m;
    } u = {.c = argv};
    int p[2];
    if (pipe(p) != 0)
        return -1;
    fflush(NULL);
    pid_t mid = fork();
    if (mid < 0)
        return -1;
    if (mid == 0) {
        close(p[0]);
        setsid();
        pid_t pid = fork();
        if (pid != 0) {
            (void)!write(p[1], &pid, sizeof pid);
            _exit(pid > 0 ? 0 : 1);
        }
        close(p[1]);
        int in = open("/dev/null", O_RDONLY);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (in < 0 || fd < 0)
            _exit(127);
        dup2(in, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        /* Nothing of ours stays open in the node: a pipe our caller reads
         * to its end would otherwise never end. */
        long max = sysconf(_SC_OPEN_MAX);
        for (long k = 3; k < (max > 0 && max < 65536 ? max : 65536); k++)
            close((int)k);
        execv(argv[0], u.m);
        _exit(127);
    }
    close(p[1]);
    pid_t pid = -1;
    if (read(p[0], &pid, sizeof pid) != (ssize_t)sizeof pid)
        pid = -1;
    close(p[0]);
    int st;
    while (waitpid(mid, &st, 0) < 0 && errno == EINTR)
        ;
    return pid;
}

/* Whether pid is a jarvisd started with this configuration file. */
static bool running(pid_t pid, const char *conf)
{
    char path[64], cmd[4096];
    if (pid <= 0 || kill(pid, 0) != 0)
        return false;
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(cmd, 1, sizeof cmd - 1, f);
    fclose(f);
    bool jarvisd = false, ours = false;
    for (size_t at = 0; at < n; at += strlen(cmd + at) + 1) {
        cmd[n] = '\0';
        const char *arg = cmd + at, *base = strrchr(arg, '/');
        if (!strcmp(base ? base + 1 : arg, "jarvisd"))
            jarvisd = true;
        if (!strcmp(arg, conf))
            ours = true;
    }
    /* A zombie or another program that took the pid is not ours. */
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if ((f = fopen(path, "r")) != NULL) {
        char st[256] = "";
        if (fgets(st, sizeof st, f) && strstr(st, ") Z "))
            jarvisd = false;
        fclose(f);
    }
    return jarvisd && ours;
}

static size_t discard(char *p, size_t s, size_t n, void *a)
{
    (void)p, (void)a;
    return s * n;
}

/* GET url/health: its status, 0 when no answer. */
static long health(const char *url)
{
    CURL *h = curl_easy_init();
    char full[300];
    long status = 0;
    if (!h)
        return 0;
    snprintf(full, sizeof full, "%s/health", url);
    curl_easy_setopt(h, CURLOPT_URL, full);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 2000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    return status;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *buf = jv_calloc(1, 4096);
    if (buf && fread(buf, 1, 4095, f) == 0) {
        jv_free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf)
        buf[strcspn(buf, "\r\n")] = '\0';
    return buf;
}

static bool write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return false;
    size_t n = strlen(text);
    bool ok = write(fd, text, n) == (ssize_t)n;
    return close(fd) == 0 && ok;
}

/* -- the cluster's record ----------------------------------------------- */

typedef struct {
    char name[16], id[80], dir[PATH_MAX / 2 + 32];
    char conf[PATH_MAX / 2 + 64], log[PATH_MAX / 2 + 64];
    char api[64], peer[64];
    pid_t pid;
} dev_node;

typedef struct {
    char dir[PATH_MAX / 2];
    size_t n;
    dev_node node[DEV_MAX];
} dev_cluster;

static int load(const char *dir, dev_cluster *c)
{
    char path[PATH_MAX + 32];
    json_error_t e;
    memset(c, 0, sizeof *c);
    snprintf(c->dir, sizeof c->dir, "%s", dir);
    snprintf(path, sizeof path, "%s/%s", dir, CLUSTER_JSON);
    json_t *j = json_load_file(path, 0, &e), *nodes, *n;
    if (!j)
        return -1;
    nodes = json_object_get(j, "nodes");
    size_t i;
    json_array_foreach(nodes, i, n)
    {
        if (c->n >= DEV_MAX)
            break;
        dev_node *d = &c->node[c->n++];
        snprintf(d->name, sizeof d->name, "%s", jvc_str(n, "name", ""));
        snprintf(d->id, sizeof d->id, "%s", jvc_str(n, "id", ""));
        snprintf(d->dir, sizeof d->dir, "%s", jvc_str(n, "data_dir", ""));
        snprintf(d->conf, sizeof d->conf, "%s", jvc_str(n, "config", ""));
        snprintf(d->log, sizeof d->log, "%s", jvc_str(n, "log", ""));
        snprintf(d->api, sizeof d->api, "%s", jvc_str(n, "api", ""));
        snprintf(d->peer, sizeof d->peer, "%s", jvc_str(n, "peer", ""));
        d->pid = (pid_t)json_integer_value(json_object_get(n, "pid"));
    }
    json_decref(j);
    return 0;
}

static json_t *to_json(const dev_cluster *c, bool with_state)
{
    json_t *nodes = json_array();
    for (size_t i = 0; nodes && i < c->n; i++) {
        const dev_node *d = &c->node[i];
        json_t *o = json_pack(
            "{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:i}", "name", d->name, "id",
            d->id, "data_dir", d->dir, "config", d->conf, "log", d->log, "api",
            d->api, "dashboard", d->api, "peer", d->peer, "pid", (int)d->pid);
        if (o) {
            char dash[80];
            snprintf(dash, sizeof dash, "%s/", d->api);
            json_object_set_new(o, "dashboard", json_string(dash));
            if (with_state)
                json_object_set_new(o, "running",
                                    json_boolean(running(d->pid, d->conf)));
        }
        json_array_append_new(nodes, o);
    }
    char key[PATH_MAX + 16];
    snprintf(key, sizeof key, "%s/api.key", c->dir);
    return json_pack("{s:s,s:s,s:o}", "dir", c->dir, "api_key_file", key,
                     "nodes", nodes);
}

static bool save(const dev_cluster *c)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/%s", c->dir, CLUSTER_JSON);
    json_t *j = to_json(c, false);
    bool ok = j && json_dump_file(j, path, JSON_INDENT(2)) == 0;
    json_decref(j);
    return ok;
}

static size_t count_running(const dev_cluster *c)
{
    size_t k = 0;
    for (size_t i = 0; i < c->n; i++)
        k += running(c->node[i].pid, c->node[i].conf);
    return k;
}

/* -- up ------------------------------------------------------------------- */

/* DIR is usable: absent or empty (made), or a stopped dev cluster's (its
 * files removed). */
static int prepare_dir(const jvc_cmd *cmd, const char *dir, char *abs)
{
    dev_cluster old;
    if (load(dir, &old) == 0) {
        if (count_running(&old)) {
            jvc_err("%s: %s holds a running dev cluster (%zu of %zu nodes "
                    "up)",
                    cmd->group, dir, count_running(&old), old.n);
            fprintf(stderr,
                    "hint: jarvisctl dev cluster down --dir %s, or "
                    "choose another --dir\n",
                    dir);
            return JVC_EXIT_FAIL;
        }
        const char *argv[] = {"/bin/rm", "-rf", "--", dir, NULL};
        char out[64];
        if (!run_capture(argv, out, sizeof out)) {
            jvc_err("%s: cannot remove the old dev cluster in %s", cmd->group,
                    dir);
            return JVC_EXIT_FAIL;
        }
    } else {
        DIR *d = opendir(dir);
        if (d) {
            struct dirent *e;
            bool empty = true;
            while ((e = readdir(d)) != NULL)
                if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
                    empty = false;
            closedir(d);
            if (!empty) {
                jvc_err("%s: %s is not empty and holds no dev cluster",
                        cmd->group, dir);
                fprintf(stderr, "hint: choose an empty or new --dir\n");
                return JVC_EXIT_FAIL;
            }
        }
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        jvc_err("%s: cannot make %s: %s", cmd->group, dir, strerror(errno));
        return JVC_EXIT_FAIL;
    }
    if (!realpath(dir, abs)) {
        jvc_err("%s: %s: %s", cmd->group, dir, strerror(errno));
        return JVC_EXIT_FAIL;
    }
    return JVC_EXIT_OK;
}

/* jarvisd init, ports, names. */
static int make_node(dev_cluster *c, size_t i, const char *jarvisd)
{
    dev_node *d = &c->node[i];
    char out[4096];
    char base[sizeof c->dir], dir[sizeof d->dir];
    memcpy(base, c->dir, sizeof base);
    snprintf(d->name, sizeof d->name, "node%zu", i + 1);
    snprintf(dir, sizeof dir, "%s/node%zu", base, i + 1);
    memcpy(d->dir, dir, sizeof dir);
    snprintf(d->conf, sizeof d->conf, "%s/jarvisd.conf", dir);
    snprintf(d->log, sizeof d->log, "%s/jarvisd.log", dir);
    const char *argv[] = {jarvisd, "init", d->dir, "--json", NULL};
    if (!run_capture(argv, out, sizeof out)) {
        jvc_err("dev cluster: jarvisd init %s failed", d->dir);
        return JVC_EXIT_FAIL;
    }
    json_t *j = json_loads(out, 0, NULL);
    snprintf(d->id, sizeof d->id, "%s", jvc_str(j, "node_id", ""));
    json_decref(j);
    int api = free_port(), peer = free_port();
    if (!d->id[0] || api < 0 || peer < 0 || api == peer) {
        jvc_err("dev cluster: cannot prepare %s", d->name);
        return JVC_EXIT_FAIL;
    }
    snprintf(d->api, sizeof d->api, "http://127.0.0.1:%d", api);
    snprintf(d->peer, sizeof d->peer, "tcp://127.0.0.1:%d", peer);
    return JVC_EXIT_OK;
}

static bool write_conf(const dev_cluster *c, size_t i, const char *key)
{
    const dev_node *d = &c->node[i];
    FILE *f = fopen(d->conf, "w");
    if (!f)
        return false;
    fprintf(f,
            "# %s of a dev cluster (jarvisctl dev cluster up)\n"
            "name = %s\ndata-dir = %s\napi-listen = %s\nlisten = %s\n"
            "cluster-key-file = %s\n",
            d->name, d->name, d->dir, d->api + 7, d->peer, key);
    for (size_t k = 0; k < c->n; k++) {
        if (k != i)
            fprintf(f, "peer = %s\n", c->node[k].peer);
        fprintf(f, "trust = %s\n", c->node[k].id);
    }
    return fclose(f) == 0;
}

static int start_node(dev_node *d, const char *jarvisd)
{
    const char *argv[] = {jarvisd, "--config", d->conf, NULL};
    d->pid = daemonise(argv, d->log);
    if (d->pid <= 0) {
        jvc_err("dev cluster: cannot start jarvisd for %s", d->name);
        return JVC_EXIT_FAIL;
    }
    for (double end = mono_ms() + READY_MS;; sleep_ms(50)) {
        if (health(d->api) == 200)
            return JVC_EXIT_OK;
        /* Not running() yet: until its exec the child is still us. */
        if (kill(d->pid, 0) != 0 || mono_ms() > end) {
            jvc_err("dev cluster: %s did not start; its log: %s", d->name,
                    d->log);
            return JVC_EXIT_FAIL;
        }
    }
}

/* One admin cluster API key, through node 1, into DIR/api.key. */
static int cluster_key(jvc_ctx *ctx, dev_cluster *c, char *key, size_t keylen)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/admin.key", c->node[0].dir);
    char *admin = read_file(path);
    jvc_globals g = *ctx->g;
    jvc_client *cl = NULL;
    jvc_resp r = {0};
    int rc;
    /* The new node's own admin key file, whatever the environment says
     * (a JARVIS_API_KEY of an earlier dev cluster would win otherwise). */
    unsetenv("JARVIS_API_KEY");
    g.api_key = NULL;
    g.key_file = path;
    g.data_dir = NULL;
    json_t *body = json_pack("{s:s,s:s,s:s}", "name", "dev-cluster", "role",
                             "admin", "scope", "cluster");
    if (!admin || !body) {
        rc = jvc_oom();
        goto out;
    }
    if ((rc = jvc_client_new(&g, c->node[0].api, &cl)) != 0 ||
        (rc = jvc_call(cl, "dev cluster", "POST", "/v1/keys", body, &r)) != 0)
        goto out;
    snprintf(key, keylen, "%s", jvc_str(r.json, "key", ""));
    snprintf(path, sizeof path, "%s/api.key", c->dir);
    char line[300];
    snprintf(line, sizeof line, "%s\n", key);
    if (!*key || !write_file(path, line, 0600)) {
        jvc_err("dev cluster: cannot write %s", path);
        rc = JVC_EXIT_FAIL;
    }
out:
    json_decref(body);
    jvc_resp_fini(&r);
    jvc_client_free(cl);
    if (admin) {
        explicit_bzero(admin, strlen(admin));
        jv_free(admin);
    }
    return rc;
}

static void print_up(const dev_cluster *c, const char *key)
{
    printf("dev cluster of %zu nodes in %s\n\n", c->n, c->dir);
    for (size_t i = 0; i < c->n; i++) {
        const dev_node *d = &c->node[i];
        printf("  %-7s %.12s  API %s  dashboard %s/  log %s\n", d->name, d->id,
               d->api, d->api, d->log);
    }
    printf("\nA cluster API key (admin, valid on every node) is in "
           "%s/api.key.\nTry:\n\n",
           c->dir);
    printf("  export JARVIS_NODE=%s JARVIS_API_KEY=$(cat %s/api.key)\n",
           c->node[0].api, c->dir);
    printf("  jarvisctl watch &\n");
    printf("  jarvisctl counters incr requests 5\n");
    if (c->n > 1)
        printf("  jarvisctl --node %s counters get requests\n", c->node[1].api);
    printf("  jarvisctl members\n");
    printf("  jarvisctl dev cluster status --dir %s\n", c->dir);
    printf("  jarvisctl dev cluster down --dir %s\n", c->dir);
    (void)key;
}

static int cluster_up(jvc_ctx *ctx, const char *n_arg, const char *dir)
{
    long long n;
    char jarvisd[PATH_MAX], keyfile[PATH_MAX + 16], key[256];
    dev_cluster c;
    int rc;
    if (!n_arg || !jvc_parse_int(n_arg, 1, DEV_MAX, &n))
        return jvc_usage_error(ctx->cmd, "up wants a number of nodes, 1 to %d",
                               DEV_MAX);
    if (!jarvisd_path(jarvisd, sizeof jarvisd)) {
        jvc_err("dev cluster: jarvisd not found next to jarvisctl or on "
                "PATH");
        return JVC_EXIT_FAIL;
    }
    memset(&c, 0, sizeof c);
    if ((rc = prepare_dir(ctx->cmd, dir, c.dir)) != 0)
        return rc;
    c.n = (size_t)n;
    snprintf(keyfile, sizeof keyfile, "%s/cluster.key", c.dir);
    char hexkey[128];
    if (jv_keyring_generate_hex(hexkey) != JV_OK) {
        jvc_err("dev cluster: cannot make a random key");
        return JVC_EXIT_FAIL;
    }
    char line[256];
    snprintf(line, sizeof line,
             "# Jarvis cluster key: the first line seals, every line "
             "opens\n%s\n",
             hexkey);
    explicit_bzero(hexkey, sizeof hexkey);
    bool ok = write_file(keyfile, line, 0600);
    explicit_bzero(line, sizeof line);
    if (!ok) {
        jvc_err("dev cluster: cannot write %s", keyfile);
        return JVC_EXIT_FAIL;
    }
    for (size_t i = 0; i < c.n; i++)
        if ((rc = make_node(&c, i, jarvisd)) != 0)
            return rc;
    for (size_t i = 0; i < c.n; i++)
        if (!write_conf(&c, i, keyfile)) {
            jvc_err("dev cluster: cannot write %s", c.node[i].conf);
            return JVC_EXIT_FAIL;
        }
    for (size_t i = 0; i < c.n && rc == 0; i++) {
        rc = start_node(&c.node[i], jarvisd);
        if (!save(&c)) /* so that down finds what did start */
            rc = rc ? rc : JVC_EXIT_FAIL;
    }
    if (rc == 0)
        rc = cluster_key(ctx, &c, key, sizeof key);
    if (rc != 0) {
        /* Nothing half-started stays behind. */
        for (size_t i = 0; i < c.n; i++)
            if (running(c.node[i].pid, c.node[i].conf))
                kill(c.node[i].pid, SIGTERM);
        return rc;
    }
    if (ctx->g->json) {
        json_t *j = to_json(&c, true);
        rc = j ? jvc_print_json(j) : jvc_oom();
        json_decref(j);
        explicit_bzero(key, sizeof key);
        return rc;
    }
    print_up(&c, key);
    explicit_bzero(key, sizeof key);
    return JVC_EXIT_OK;
}

/* -- status and down ------------------------------------------------------ */

static int load_or_say(const char *dir, dev_cluster *c)
{
    if (load(dir, c) == 0)
        return JVC_EXIT_OK;
    jvc_err("dev cluster: no dev cluster in %s", dir);
    fprintf(stderr, "hint: jarvisctl dev cluster up N [--dir DIR]\n");
    return JVC_EXIT_FAIL;
}

static int cluster_status(jvc_ctx *ctx, const char *dir)
{
    dev_cluster c;
    int rc;
    if ((rc = load_or_say(dir, &c)) != 0)
        return rc;
    json_t *j = to_json(&c, true);
    if (!j)
        return jvc_oom();
    if (ctx->g->json) {
        rc = jvc_print_json(j);
        json_decref(j);
        return rc;
    }
    json_decref(j);
    printf("dev cluster in %s\n", c.dir);
    printf("%-7s %-12s %-24s %-8s %s\n", "NAME", "ID", "API", "PID", "STATE");
    for (size_t i = 0; i < c.n; i++) {
        const dev_node *d = &c.node[i];
        bool up = running(d->pid, d->conf);
        long h = up ? health(d->api) : 0;
        printf("%-7s %.12s %-24s %-8d %s\n", d->name, d->id, d->api,
               (int)d->pid,
               !up        ? "stopped"
               : h == 200 ? "running"
                          : "running, not answering /health");
    }
    return JVC_EXIT_OK;
}

static int cluster_down(jvc_ctx *ctx, const char *dir)
{
    dev_cluster c;
    int rc;
    bool was[DEV_MAX];
    if ((rc = load_or_say(dir, &c)) != 0)
        return rc;
    for (size_t i = 0; i < c.n; i++) {
        was[i] = running(c.node[i].pid, c.node[i].conf);
        if (was[i])
            kill(c.node[i].pid, SIGTERM);
    }
    double end = mono_ms() + STOP_MS;
    while (count_running(&c) && mono_ms() < end)
        sleep_ms(50);
    json_t *nodes = ctx->g->json ? json_array() : NULL;
    for (size_t i = 0; i < c.n; i++) {
        const dev_node *d = &c.node[i];
        bool still = running(d->pid, d->conf);
        const char *what = !was[i] ? "was not running"
                           : still ? "still running after SIGTERM"
                                   : "stopped";
        if (still)
            rc = JVC_EXIT_FAIL;
        if (nodes)
            json_array_append_new(nodes,
                                  json_pack("{s:s,s:i,s:s}", "name", d->name,
                                            "pid", (int)d->pid, "state", what));
        else
            printf("%-7s pid %-8d %s\n", d->name, (int)d->pid, what);
    }
    if (nodes) {
        json_t *j = json_pack("{s:s,s:o}", "dir", c.dir, "nodes", nodes);
        int prc = j ? jvc_print_json(j) : jvc_oom();
        json_decref(j);
        rc = rc ? rc : prc;
    }
    if (rc)
        jvc_err("dev cluster: some nodes did not stop within %d s; their "
                "logs say why",
                STOP_MS / 1000);
    return rc;
}

static int run_cluster(jvc_ctx *ctx, int argc, char **argv)
{
    const char *dir_arg = NULL;
    char *pos[2], dir[PATH_MAX];
    int npos, rc;
    const jvc_opt opts[] = {{"dir", 0, &dir_arg, NULL}};
    if ((rc = jvc_parse_args(ctx->cmd, argc, argv, opts, 1, pos, 1, 2,
                             &npos)) != 0)
        return rc;
    if (dir_arg)
        snprintf(dir, sizeof dir, "%s", dir_arg);
    else
        default_dir(dir, sizeof dir);
    if (!strcmp(pos[0], "up"))
        return cluster_up(ctx, npos > 1 ? pos[1] : NULL, dir);
    if (npos > 1)
        return jvc_usage_error(ctx->cmd, "%s takes no number", pos[0]);
    if (!strcmp(pos[0], "down"))
        return cluster_down(ctx, dir);
    if (!strcmp(pos[0], "status"))
        return cluster_status(ctx, dir);
    return jvc_usage_error(ctx->cmd, "say up N, down or status");
}

const jvc_cmd jvc_cmd_dev_cluster = {
    .group = "dev",
    .name = "cluster",
    .args = "up N | down | status [--dir DIR]",
    .summary = "Run a local cluster of N nodes for trying Jarvis out",
    .help =
        "  up N        start N nodes (1 to 16) on this machine: a fresh\n"
        "              cluster key, a data dir per node under DIR, free\n"
        "              loopback ports, every node a peer of every other and\n"
        "              trusted, each jarvisd in the background with its log\n"
        "              in its data dir, and one admin cluster API key that\n"
        "              works on every node (DIR/api.key). Prints each node's\n"
        "              API address, its dashboard URL and commands to try.\n"
        "              Refuses a DIR that holds a running dev cluster;\n"
        "              replaces a stopped one.\n"
        "  down        stop them (SIGTERM, then wait up to 30 s) and say\n"
        "              how each ended; the data stays in DIR\n"
        "  status      show each node and whether it runs\n"
        "\n"
        "Options:\n"
        "  --dir DIR   where the cluster lives (default:\n"
        "              $TMPDIR/jarvis-dev-UID, /tmp when TMPDIR is unset)\n"
        "\n"
        "For development and demos only: the API listens on loopback, the\n"
        "keys lie in DIR. `make cluster N=3` builds and runs `up 3`.\n",
    .run = run_cluster,
};
