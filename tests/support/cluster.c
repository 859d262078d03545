#include "cluster.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

/* Peer ports come from here: below Linux's default ephemeral range
 * (32768-60999), so no outgoing connection can hold one. */
#define PORT_LO 20000
#define PORT_HI 32000

#define CTL_MS  60000
#define HTTP_MS 30000

static void fail_msg(jv_cluster *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void fail_msg(jv_cluster *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
}

char *jv_cluster_batch_body(jv_rng *rng, unsigned long long base, unsigned n,
                            bool config)
{
    size_t cap = (size_t)n * 160 + 32, at = 0;
    char *b = malloc(cap);
    if (b == NULL)
        return NULL;
    at += (size_t)snprintf(b + at, cap - at, "{\"ops\":[");
    for (unsigned k = 0; k < n; k++) {
        unsigned long long id = base + k, x = jv_rng_next(rng);
        const char *sep = k ? "," : "";
        if (id % 3 == 0)
            at += (size_t)snprintf(b + at, cap - at,
                                   "%s{\"op\":\"audit.append\",\"action\":"
                                   "\"deploy\",\"target\":\"svc-%llu\","
                                   "\"detail\":\"%016llx\"}",
                                   sep, id % 1000, x);
        else if (id % 3 == 1)
            at += (size_t)snprintf(b + at, cap - at,
                                   "%s{\"op\":\"%s\",\"key\":"
                                   "\"app/%llu\",\"value\":\"%016llx\"}",
                                   sep, config ? "config.set" : "archive.add",
                                   id, x);
        else
            at += (size_t)snprintf(b + at, cap - at,
                                   "%s{\"op\":\"counter.increment\","
                                   "\"name\":\"hits/%llu\",\"by\":%llu}",
                                   sep, id, x % 1000 + 1);
    }
    snprintf(b + at, cap - at, "]}");
    return b;
}

int jv_cluster_bin_dir_default(void)
{
    char self[PATH_MAX];
    if (getenv("JV_BIN_DIR") != NULL)
        return 0;
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return -1;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash != NULL)
        *slash = '\0';
    return setenv("JV_BIN_DIR", self, 1);
}

double jv_cluster_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

void jv_cluster_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* -- ports ---------------------------------------------------------------- */

static void port_dir(char *out, size_t len)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(out, len, "%s/jarvis-test-ports",
             tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
}

static void port_lock_path(int port, char *out, size_t len)
{
    char dir[512];
    port_dir(dir, sizeof dir);
    snprintf(out, len, "%s/%d", dir, port);
}

/* Claims the lock file of a port; takes back one left by a dead process. */
static bool port_claim(int port)
{
    char path[600], pid[32];
    port_lock_path(port, path, sizeof path);
    for (int attempt = 0; attempt < 2; attempt++) {
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd >= 0) {
            int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
            bool ok = write(fd, pid, (size_t)n) == n;
            close(fd);
            if (!ok)
                unlink(path);
            return ok;
        }
        if (errno != EEXIST)
            return false;
        FILE *f = fopen(path, "r");
        long owner = 0;
        if (f != NULL) {
            if (fscanf(f, "%ld", &owner) != 1)
                owner = 0;
            fclose(f);
        }
        /* A claim being written right now has no pid yet: leave it. */
        if (owner <= 0 || (kill((pid_t)owner, 0) == 0 || errno != ESRCH))
            return false;
        unlink(path);
    }
    return false;
}

static void port_release(int port)
{
    char path[600];
    if (port <= 0)
        return;
    port_lock_path(port, path, sizeof path);
    unlink(path);
}

/* Nothing else is bound or listening there (SO_REUSEADDR like nng's
 * listener, so a TIME_WAIT left by an earlier run does not count). */
static bool port_free(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool ok;
    if (fd < 0)
        return false;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && listen(fd, 1) == 0;
    close(fd);
    return ok;
}

static int pick_port(jv_rng *rng)
{
    char dir[512];
    port_dir(dir, sizeof dir);
    mkdir(dir, 0777);
    for (int tries = 0; tries < 2000; tries++) {
        int port = PORT_LO + (int)jv_rng_below(rng, PORT_HI - PORT_LO);
        if (!port_claim(port))
            continue;
        if (port_free(port))
            return port;
        port_release(port);
    }
    return -1;
}

/* -- processes ------------------------------------------------------------ */

/* jarvisctl with a controlled environment; node < 0: no node. */
static int run_ctl(jv_cluster *c, long node, jv_proc_result *r,
                   char *const args[])
{
    char bin[512], env_buf[12][1100];
    char *argv[64], *env[16];
    size_t a = 0, e = 0;
    memset(r, 0, sizeof *r);
    if (!jv_bin_path("jarvisctl", bin, sizeof bin)) {
        fail_msg(c, "JV_BIN_DIR is not set");
        return -1;
    }
    argv[a++] = bin;
    for (size_t i = 0; args[i] != NULL && a < 62; i++)
        argv[a++] = args[i];
    argv[a] = NULL;
    const char *path = getenv("PATH");
    snprintf(env_buf[e], sizeof env_buf[e], "PATH=%s",
             path ? path : "/usr/bin:/bin");
    env[e] = env_buf[e];
    e++;
    snprintf(env_buf[e], sizeof env_buf[e], "HOME=%s", c->home);
    env[e] = env_buf[e];
    e++;
    static const char *const pass[] = {"ASAN_OPTIONS", "UBSAN_OPTIONS",
                                       "LSAN_OPTIONS", "TMPDIR"};
    for (size_t i = 0; i < sizeof pass / sizeof pass[0]; i++) {
        const char *v = getenv(pass[i]);
        if (v != NULL) {
            snprintf(env_buf[e], sizeof env_buf[e], "%s=%s", pass[i], v);
            env[e] = env_buf[e];
            e++;
        }
    }
    env[e++] = (char *)"TZ=UTC";
    env[e++] = (char *)"LC_ALL=C";
    if (node >= 0) {
        jv_cnode *n = &c->node[node];
        snprintf(env_buf[e], sizeof env_buf[e], "JARVIS_NODE=%s", n->t.url);
        env[e] = env_buf[e];
        e++;
        snprintf(env_buf[e], sizeof env_buf[e], "JARVIS_API_KEY=%s",
                 n->t.admin_key);
        env[e] = env_buf[e];
        e++;
    }
    env[e] = NULL;
    if (jv_proc_run(argv, env, CTL_MS, r) != 0) {
        fail_msg(c, "cannot run %s: %s", bin, strerror(errno));
        return -1;
    }
    if (r->timed_out) {
        fail_msg(c, "jarvisctl %s did not finish within %d ms", args[0],
                 CTL_MS);
        return -1;
    }
    return 0;
}

int jv_cluster_ctl(jv_cluster *c, size_t i, jv_proc_result *r, ...)
{
    char *args[60];
    size_t n = 0;
    va_list ap;
    va_start(ap, r);
    char *s;
    while ((s = va_arg(ap, char *)) != NULL && n < 59)
        args[n++] = s;
    va_end(ap);
    args[n] = NULL;
    return run_ctl(c, (long)i, r, args);
}

static int copy_file(jv_cluster *c, const char *from, const char *to)
{
    char buf[4096];
    size_t n;
    FILE *in = fopen(from, "rb");
    int fd = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    FILE *out = fd >= 0 ? fdopen(fd, "wb") : NULL;
    bool ok = in != NULL && out != NULL;
    while (ok && (n = fread(buf, 1, sizeof buf, in)) > 0)
        ok = fwrite(buf, 1, n, out) == n;
    if (in != NULL)
        fclose(in);
    if (out != NULL)
        ok = fclose(out) == 0 && ok;
    else if (fd >= 0)
        close(fd);
    if (!ok)
        fail_msg(c, "cannot copy %s to %s: %s", from, to, strerror(errno));
    return ok ? 0 : -1;
}

/* Occurrences of needle in node i's log. */
static unsigned log_count(const jv_cluster *c, size_t i, const char *needle)
{
    char line[2048];
    unsigned k = 0;
    FILE *f = fopen(c->node[i].t.log, "r");
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof line, f) != NULL)
        k += strstr(line, needle) != NULL;
    fclose(f);
    return k;
}

int jv_cluster_set_keys(jv_cluster *c, size_t i, const char *const *keys,
                        size_t n)
{
    jv_cnode *nd = &c->node[i];
    char tmp[720];
    if (nd->key_file[0] == '\0') {
        fail_msg(c, "node %zu has no key file of its own (key_per_node)", i);
        return -1;
    }
    snprintf(tmp, sizeof tmp, "%s.tmp", nd->key_file);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (f == NULL) {
        fail_msg(c, "cannot write %s: %s", tmp, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    fprintf(f, "# test cluster keys, the first one seals\n");
    for (size_t k = 0; k < n; k++)
        fprintf(f, "%s\n", keys[k]);
    if (fclose(f) != 0 || rename(tmp, nd->key_file) != 0) {
        fail_msg(c, "cannot write %s: %s", nd->key_file, strerror(errno));
        return -1;
    }
    return jv_cluster_reload_keys(c, i);
}

int jv_cluster_reload_keys(jv_cluster *c, size_t i)
{
    jv_cnode *nd = &c->node[i];
    if (!nd->t.running)
        return 0;
    const char *done = "SIGHUP: reloaded";
    unsigned before = log_count(c, i, done);
    jv_proc_signal(&nd->t.proc, SIGHUP);
    double t0 = jv_cluster_now_ms();
    while (log_count(c, i, done) == before) {
        if (jv_cluster_now_ms() - t0 > 20000) {
            fail_msg(c, "node %zu did not reload its keys", i);
            return -1;
        }
        jv_cluster_sleep_ms(10);
    }
    return 0;
}

/* Reads the id from `jarvisctl init`'s "node id    <hex> (new)" line. */
static bool parse_init(const char *out, char id[65])
{
    const char *p = strstr(out, "node id");
    if (p == NULL)
        return false;
    p += strlen("node id");
    while (*p == ' ')
        p++;
    size_t n = 0;
    while (n < 64 &&
           ((p[n] >= '0' && p[n] <= '9') || (p[n] >= 'a' && p[n] <= 'f')))
        n++;
    if (n != 64)
        return false;
    memcpy(id, p, 64);
    id[64] = '\0';
    return true;
}

int jv_cluster_write_config(jv_cluster *c, size_t i, const size_t *peers,
                            size_t n_peers)
{
    jv_cnode *n = &c->node[i];
    char tmp[720];
    snprintf(tmp, sizeof tmp, "%s.tmp", n->conf);
    FILE *f = fopen(tmp, "w");
    if (f == NULL) {
        fail_msg(c, "cannot write %s: %s", tmp, strerror(errno));
        return -1;
    }
    fprintf(f, "# node %zu of a test cluster, as docs/operations.md says\n", i);
    fprintf(f, "data-dir = %s\n", n->t.dir);
    fprintf(f, "listen = %s\n", n->listen);
    if (n->key_file[0] != '\0')
        fprintf(f, "cluster-key-file = %s\n", n->key_file);
    else if (c->key_file[0] != '\0')
        fprintf(f, "cluster-key-file = %s\n", c->key_file);
    for (size_t k = 0; k < n_peers; k++)
        fprintf(f, "peer = %s\n", c->node[peers[k]].listen);
    for (size_t k = 0; k < c->n; k++)
        fprintf(f, "trust = %s\n", c->node[k].id);
    if (fclose(f) != 0 || rename(tmp, n->conf) != 0) {
        fail_msg(c, "cannot write %s: %s", n->conf, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

int jv_cluster_init(jv_cluster *c, const jv_cluster_opts *o)
{
    jv_proc_result r;
    jv_rng rng;
    memset(c, 0, sizeof *c);
    if (o->n == 0 || o->n > JV_CLUSTER_MAX) {
        fail_msg(c, "a cluster has 1 to %d nodes", JV_CLUSTER_MAX);
        return -1;
    }
    jv_rng_seed(&rng, o->seed ^ (unsigned long long)getpid() << 20 ^
                          (unsigned long long)jv_cluster_now_ms());
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (jv_test_tmpdir("jvcluster", c->root, sizeof c->root) != 0) {
        fail_msg(c, "cannot make a temporary directory: %s", strerror(errno));
        return -1;
    }
    snprintf(c->home, sizeof c->home, "%s/home", c->root);
    if (mkdir(c->home, 0700) != 0) {
        fail_msg(c, "cannot make %s: %s", c->home, strerror(errno));
        return -1;
    }
    size_t nf = 0;
    for (size_t k = 0; o->flags != NULL && o->flags[k] != NULL &&
                       nf < JV_CLUSTER_MAX_FLAGS - 1;
         k++)
        c->flags[nf++] = o->flags[k];
    c->flags[nf] = NULL;

    /* 1. The cluster key. */
    if (!o->no_key) {
        snprintf(c->key_file, sizeof c->key_file, "%s/cluster.key", c->root);
        char *args[] = {"cluster-key", "-o", c->key_file, NULL};
        if (run_ctl(c, -1, &r, args) != 0)
            return -1;
        int st = r.status;
        if (st != 0)
            fail_msg(c, "jarvisctl cluster-key exited %d: %s", st, r.err);
        jv_proc_result_fini(&r);
        if (st != 0)
            return -1;
    }
    /* 2. Each node's data dir, and the id init prints. */
    for (size_t i = 0; i < o->n; i++) {
        jv_cnode *n = &c->node[i];
        if (jv_test_node_prepare(&n->t) != 0) {
            fail_msg(c, "cannot prepare a node directory");
            return -1;
        }
        c->n = i + 1;
        char *args[] = {"init", n->t.dir, NULL};
        if (run_ctl(c, -1, &r, args) != 0)
            return -1;
        bool ok = r.status == 0 && parse_init(r.out, n->id);
        if (!ok)
            fail_msg(c, "jarvisctl init %s exited %d: %s%s", n->t.dir, r.status,
                     r.out, r.err);
        jv_proc_result_fini(&r);
        if (!ok)
            return -1;
        if ((n->port = pick_port(&rng)) < 0) {
            fail_msg(c, "no free port in %d..%d", PORT_LO, PORT_HI);
            return -1;
        }
        snprintf(n->listen, sizeof n->listen, "tcp://127.0.0.1:%d", n->port);
        snprintf(n->conf, sizeof n->conf, "%s/node%zu.conf", c->root, i);
        if (o->key_per_node && !o->no_key) {
            snprintf(n->key_file, sizeof n->key_file, "%s/node%zu.key", c->root,
                     i);
            if (copy_file(c, c->key_file, n->key_file) != 0)
                return -1;
        }
    }
    /* 3. One configuration file per node. */
    for (size_t i = 0; i < o->n; i++) {
        size_t peers[JV_CLUSTER_MAX], np = 0;
        if (!o->no_peers && o->peers_k == 0) {
            for (size_t k = 0; k < o->n; k++)
                peers[np++] = k;
        } else if (!o->no_peers) {
            size_t others[JV_CLUSTER_MAX], no = 0;
            for (size_t k = 0; k < o->n; k++)
                if (k != i)
                    others[no++] = k;
            jv_rng_shuffle(&rng, others, no, sizeof others[0]);
            for (size_t k = 0; k < o->peers_k && k < no; k++)
                peers[np++] = others[k];
        }
        if (jv_cluster_write_config(c, i, peers, np) != 0)
            return -1;
    }
    return 0;
}

int jv_cluster_start(jv_cluster *c, size_t i)
{
    jv_cnode *n = &c->node[i];
    char *argv[2 + 2 * JV_CLUSTER_MAX_FLAGS];
    size_t a = 0;
    argv[a++] = (char *)"--config";
    argv[a++] = n->conf;
    for (size_t k = 0; c->flags[k] != NULL; k++)
        argv[a++] = c->flags[k];
    for (size_t k = 0; k < JV_CLUSTER_MAX_FLAGS && n->flags[k] != NULL; k++)
        argv[a++] = n->flags[k];
    argv[a] = NULL;
    if (jv_test_node_restart(&n->t, argv) != 0) {
        fail_msg(c, "node %zu (%s) did not start; its log is above", i,
                 n->listen);
        return -1;
    }
    return 0;
}

int jv_cluster_start_all(jv_cluster *c)
{
    for (size_t i = 0; i < c->n; i++)
        if (!c->node[i].t.running && jv_cluster_start(c, i) != 0)
            return -1;
    return 0;
}

int jv_cluster_stop(jv_cluster *c, size_t i)
{
    int st = jv_test_node_stop(&c->node[i].t);
    if (st != 0)
        fail_msg(c, "node %zu stopped with status %d", i, st);
    return st;
}

void jv_cluster_kill(jv_cluster *c, size_t i)
{
    jv_cnode *n = &c->node[i];
    if (!n->t.running)
        return;
    kill(n->t.proc.pid, SIGKILL);
    waitpid(n->t.proc.pid, NULL, 0);
    n->t.proc.reaped = true;
    n->t.running = false;
}

bool jv_cluster_running(const jv_cluster *c, size_t i)
{
    return c->node[i].t.running;
}

void jv_cluster_fini(jv_cluster *c)
{
    /* All stop at once; then each is waited for (and removed). */
    for (size_t i = 0; i < c->n; i++)
        if (c->node[i].t.running)
            jv_proc_signal(&c->node[i].t.proc, SIGTERM);
    for (size_t i = 0; i < c->n; i++)
        if (c->node[i].t.running)
            (void)jv_test_node_kill(&c->node[i].t, 0);
    for (size_t i = 0; i < c->n; i++) {
        jv_test_node_cleanup(&c->node[i].t);
        port_release(c->node[i].port);
        c->node[i].port = 0;
    }
    if (c->root[0] != '\0')
        jv_test_rmtree(c->root);
    c->root[0] = '\0';
    c->n = 0;
}

void jv_cluster_dump_logs(const jv_cluster *c)
{
    for (size_t i = 0; i < c->n; i++) {
        fprintf(stderr, "==== node %zu %s %.16s ====\n", i, c->node[i].listen,
                c->node[i].id);
        jv_test_node_dump_log(&c->node[i].t);
    }
}

/* -- HTTP ----------------------------------------------------------------- */

typedef struct {
    char *p;
    size_t len, cap;
} sink;

static size_t collect(char *p, size_t size, size_t nmemb, void *arg)
{
    sink *s = arg;
    size_t n = size * nmemb;
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->len + n + 1)
            cap *= 2;
        char *q = realloc(s->p, cap);
        if (q == NULL)
            return 0;
        s->p = q;
        s->cap = cap;
    }
    memcpy(s->p + s->len, p, n);
    s->len += n;
    s->p[s->len] = '\0';
    return n;
}

int jv_cluster_http(jv_cluster *c, size_t i, const char *method,
                    const char *path, const char *body, jv_http_resp *r)
{
    jv_cnode *n = &c->node[i];
    char url[700], auth[400];
    sink s = {0};
    struct curl_slist *h = NULL;
    memset(r, 0, sizeof *r);
    CURL *e = curl_easy_init();
    if (e == NULL) {
        fail_msg(c, "curl_easy_init failed");
        return -1;
    }
    snprintf(url, sizeof url, "%s%s", n->t.url, path);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", n->t.admin_key);
    h = curl_slist_append(h, auth);
    h = curl_slist_append(h, "Content-Type: application/json");
    h = curl_slist_append(h, "Expect:");
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)HTTP_MS);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &s);
    if (body != NULL) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    CURLcode rc = curl_easy_perform(e);
    if (rc == CURLE_OK)
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->status);
    else
        fail_msg(c, "%s %s on node %zu: %s", method, path, i,
                 curl_easy_strerror(rc));
    curl_easy_cleanup(e);
    curl_slist_free_all(h);
    r->body = s.p ? s.p : calloc(1, 1);
    r->len = s.len;
    return rc == CURLE_OK && r->body != NULL ? 0 : -1;
}

void jv_http_resp_fini(jv_http_resp *r)
{
    free(r->body);
    memset(r, 0, sizeof *r);
}

json_t *jv_cluster_get_json(jv_cluster *c, size_t i, const char *path)
{
    jv_http_resp r;
    json_t *j = NULL;
    if (jv_cluster_http(c, i, "GET", path, NULL, &r) == 0) {
        if (r.status == 200)
            j = json_loadb(r.body, r.len, 0, NULL);
        if (j == NULL)
            fail_msg(c, "GET %s on node %zu: %ld %s", path, i, r.status,
                     r.body);
    }
    jv_http_resp_fini(&r);
    return j;
}

static int get_metrics(jv_cluster *c, size_t i, jv_http_resp *r)
{
    if (jv_cluster_http(c, i, "GET", "/metrics", NULL, r) != 0)
        return -1;
    if (r->status != 200) {
        fail_msg(c, "GET /metrics on node %zu: %ld", i, r->status);
        jv_http_resp_fini(r);
        return -1;
    }
    return 0;
}

double jv_cluster_metric(jv_cluster *c, size_t i, const char *series)
{
    jv_http_resp r;
    double v = 0;
    size_t sl = strlen(series);
    if (get_metrics(c, i, &r) != 0)
        return -1;
    for (char *line = r.body; line != NULL && *line != '\0';) {
        char *nl = strchr(line, '\n');
        if (strncmp(line, series, sl) == 0 && line[sl] == ' ') {
            v = strtod(line + sl + 1, NULL);
            break;
        }
        line = nl ? nl + 1 : NULL;
    }
    jv_http_resp_fini(&r);
    return v;
}

double jv_cluster_metric_sum(jv_cluster *c, size_t i, const char *family,
                             const char *match)
{
    jv_http_resp r;
    double v = 0;
    size_t fl = strlen(family);
    if (get_metrics(c, i, &r) != 0)
        return -1;
    for (char *line = r.body; line != NULL && *line != '\0';) {
        char *nl = strchr(line, '\n');
        if (nl != NULL)
            *nl = '\0';
        if (strncmp(line, family, fl) == 0 &&
            (line[fl] == '{' || line[fl] == ' ')) {
            char *sp = strrchr(line, ' ');
            if (sp != NULL && (match == NULL || strstr(line, match) != NULL))
                v += strtod(sp + 1, NULL);
        }
        line = nl ? nl + 1 : NULL;
    }
    jv_http_resp_fini(&r);
    return v;
}

int jv_cluster_export(jv_cluster *c, size_t i, char **out, size_t *len)
{
    jv_proc_result r;
    *out = NULL;
    *len = 0;
    if (jv_cluster_ctl(c, i, &r, "export", (char *)NULL) != 0)
        return -1;
    if (r.status != 0) {
        fail_msg(c, "jarvisctl export on node %zu exited %d: %s", i, r.status,
                 r.err);
        jv_proc_result_fini(&r);
        return -1;
    }
    *out = r.out;
    *len = r.out_len;
    r.out = NULL;
    jv_proc_result_fini(&r);
    return 0;
}

json_t *jv_cluster_vv(jv_cluster *c, size_t i)
{
    json_t *st = jv_cluster_get_json(c, i, "/v1/status");
    json_t *vv = st ? json_incref(json_object_get(st, "version_vector")) : NULL;
    json_decref(st);
    return vv;
}

/* The first running node of the set, and how many run. */
static size_t running_set(const jv_cluster *c, const size_t *which,
                          size_t nwhich, size_t *idx)
{
    size_t k = 0;
    size_t n = which ? nwhich : c->n;
    for (size_t j = 0; j < n; j++) {
        size_t i = which ? which[j] : j;
        if (i < c->n && c->node[i].t.running)
            idx[k++] = i;
    }
    return k;
}

static bool vectors_equal(jv_cluster *c, const size_t *idx, size_t k, char *why,
                          size_t whylen)
{
    json_t *first = NULL;
    bool eq = true;
    for (size_t j = 0; j < k && eq; j++) {
        json_t *vv = jv_cluster_vv(c, idx[j]);
        if (vv == NULL) {
            snprintf(why, whylen, "node %zu gave no status: %.900s", idx[j],
                     c->err);
            eq = false;
        } else if (first == NULL) {
            first = json_incref(vv);
        } else if (!json_equal(first, vv)) {
            char *a = json_dumps(first, JSON_SORT_KEYS | JSON_COMPACT);
            char *b = json_dumps(vv, JSON_SORT_KEYS | JSON_COMPACT);
            snprintf(why, whylen,
                     "vectors differ: node %zu %.600s, node %zu "
                     "%.600s",
                     idx[0], a ? a : "?", idx[j], b ? b : "?");
            free(a);
            free(b);
            eq = false;
        }
        json_decref(vv);
    }
    json_decref(first);
    return eq;
}

static bool exports_equal(jv_cluster *c, const size_t *idx, size_t k, char *why,
                          size_t whylen)
{
    char *first = NULL, *other = NULL;
    size_t flen = 0, olen = 0;
    bool eq = jv_cluster_export(c, idx[0], &first, &flen) == 0;
    if (!eq)
        snprintf(why, whylen, "%.1200s", c->err);
    for (size_t j = 1; j < k && eq; j++) {
        if (jv_cluster_export(c, idx[j], &other, &olen) != 0) {
            snprintf(why, whylen, "%.1200s", c->err);
            eq = false;
            break;
        }
        if (olen != flen || memcmp(first, other, flen) != 0) {
            size_t at = 0;
            while (at < flen && at < olen && first[at] == other[at])
                at++;
            size_t from = at > 80 ? at - 80 : 0;
            snprintf(why, whylen,
                     "exports differ (node %zu: %zu bytes, node %zu: %zu "
                     "bytes) from byte %zu:\n  %.240s\n  %.240s",
                     idx[0], flen, idx[j], olen, at, first + from,
                     other + from);
            eq = false;
        }
        free(other);
        other = NULL;
    }
    free(first);
    return eq;
}

int jv_cluster_wait_converged(jv_cluster *c, const size_t *which, size_t nwhich,
                              int timeout_ms, double *elapsed_ms)
{
    size_t idx[JV_CLUSTER_MAX];
    size_t k = running_set(c, which, nwhich, idx);
    double t0 = jv_cluster_now_ms(), deadline = t0 + timeout_ms;
    char why[1536] = "";
    bool vv_seen = false;
    if (k == 0) {
        fail_msg(c, "no running node to compare");
        return -1;
    }
    for (;;) {
        if (vectors_equal(c, idx, k, why, sizeof why)) {
            if (!vv_seen && elapsed_ms != NULL)
                *elapsed_ms = jv_cluster_now_ms() - t0;
            vv_seen = true;
            if (exports_equal(c, idx, k, why, sizeof why))
                return 0;
        }
        if (jv_cluster_now_ms() >= deadline)
            break;
        jv_cluster_sleep_ms(vv_seen ? 200 : 20);
    }
    fail_msg(c, "not converged within %d ms: %s", timeout_ms, why);
    return -1;
}
