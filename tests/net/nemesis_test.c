/*
 * nemesis_test.c - a seeded nemesis against a real cluster: five jarvisd
 * processes set up as docs/operations.md says (tests/support/cluster.h),
 * client threads writing every kind of data through the API to random
 * nodes, and, meanwhile, faults on a schedule drawn from one seed:
 *
 *   - partitions into random halves and minorities through the fault
 *     switch (POST /v1/debug/faults), one-way (only one side blocks) and
 *     flapping links;
 *   - the same below the application, where network namespaces can be
 *     made: each node runs in a namespace of its own, its peer interface
 *     on a bridge; a link is taken down with `ip link` (TCP connections
 *     stay open, half-open), or the packets from one node to another are
 *     sent to a MAC address nobody has (a permanent neighbour entry): a
 *     silent one-way drop, both ways for a partition;
 *   - SIGKILL and restart of random nodes, one while it catches up after
 *     an isolation and one while it writes a backup;
 *   - SIGSTOP/SIGCONT pauses longer than the peer timeout;
 *   - a clock 5 minutes fast or slow on one node (the test clock offset).
 *
 * Every request is recorded as acknowledged, refused (an answer that is
 * not a success, or no connection at all) or unknown (timeout, reset).
 * At the end everything heals and the checker asks: the nodes converge
 * (identical exports) within a bound; every acknowledged increment is
 * counted and the totals stay within acknowledged + unknown; every
 * acknowledged audit entry is there exactly once and none that was never
 * written (or refused); each config key holds a value written to it, the
 * same everywhere; add-wins: a key added on one side of a partition and
 * removed on the other is present, a key removed with nothing concurrent
 * is absent (each partition sets up one of each, see probe_*); no node
 * exited unless the nemesis killed it; verify passes on every node.
 *
 * Usage: nemesis_test [SECONDS [links|nodes|all]] (default 20 all).
 * JV_NEMESIS_SEED=<n> replays a schedule (the seed is printed first; the
 * schedule is printed as it runs). Thread timing is not replayed, only
 * the faults and the writes' choices.
 *
 * Namespaces: the test first moves itself into a network namespace of its
 * own (unshare), which holds the bridge; the nodes' namespaces have no
 * name and are held by file descriptors of the test. Nothing is made in
 * the host's namespace, nothing can collide with a parallel run, and
 * everything goes when the test's processes do, however the test ends.
 *
 * The clock bound is raised to 270 s (--max-clock-skew) so that a 5 min
 * skew is 30 s beyond it: with the default 60 s, a batch a fast node
 * signs in the moment before it learns its offset is held by design for
 * 4 minutes (docs/protocol.md, Clocks), longer than a schedule.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <curl/curl.h>

#include "nettest.h"

#define NN       5  /* nodes */
#define NCLIENT  4  /* client threads */
#define NCTR     4  /* counters nemc0.. */
#define NCFG     4  /* config keys nemk0.. */
#define NARC     6  /* archive keys nema0.. */
#define NPROBE   64 /* add-wins probes at most */
#define PEER_MS  2000
#define SKEW_MS  300000
#define BOUND_MS "270000"

static jv_cluster C;

/* -- schedule output ------------------------------------------------------ */

static double T0;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;
    printf("[%6.1fs] ", (jv_cluster_now_ms() - T0) / 1000.0);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

/* -- network namespaces ---------------------------------------------------- */

static struct {
    bool on;
    char why[256]; /* why not */
    int fd[NN];    /* each node's namespace */
    char path[NN][64];
    char api[NN][32]; /* "10.98.<k>.2:0" */
} NS;

/* Runs argv (whitespace-separated words of cmd) in node k's namespace (k
 * < 0: the test's own); 0 if it exited 0. */
static int run_cmd(int k, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int run_cmd(int k, const char *fmt, ...)
{
    char cmd[512], nsarg[96];
    char *argv[40];
    size_t a = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (k >= 0) {
        snprintf(nsarg, sizeof nsarg, "--net=%s", NS.path[k]);
        argv[a++] = (char *)"/usr/bin/nsenter";
        argv[a++] = nsarg;
        argv[a++] = (char *)"--";
    }
    for (char *s = strtok(cmd, " "); s && a < 38; s = strtok(NULL, " "))
        argv[a++] = s;
    argv[a] = NULL;
    char full[96];
    if (argv[0][0] != '/') {
        snprintf(full, sizeof full, "/usr/sbin/%s", argv[0]);
        if (access(full, X_OK) != 0)
            snprintf(full, sizeof full, "/sbin/%s", argv[0]);
        argv[0] = full;
    }
    jv_proc_result r;
    if (jv_proc_run(argv, NULL, 20000, &r) != 0)
        return -1;
    int st = r.status;
    if (st != 0)
        fprintf(stderr, "ns %d: %s: exit %d: %s", k, fmt, st, r.err);
    jv_proc_result_fini(&r);
    return st == 0 ? 0 : -1;
}

static int ns_setup_one(int k)
{
    pid_t me = getpid();
    int hub = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    if (hub < 0 || unshare(CLONE_NEWNET) != 0)
        return -1;
    NS.fd[k] = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (setns(hub, CLONE_NEWNET) != 0)
        abort(); /* stuck in the node's namespace: nothing would work */
    close(hub);
    if (NS.fd[k] < 0)
        return -1;
    snprintf(NS.path[k], sizeof NS.path[k], "/proc/%ld/fd/%d", (long)me,
             NS.fd[k]);
    snprintf(NS.api[k], sizeof NS.api[k], "10.98.%d.2:0", k);
    if (run_cmd(-1, "ip link add h%d type veth peer name eth0 netns %s", k,
                NS.path[k]) ||
        run_cmd(-1, "ip link set h%d master br0 up", k) ||
        run_cmd(-1, "ip link add a%d type veth peer name api netns %s", k,
                NS.path[k]) ||
        run_cmd(-1, "ip addr add 10.98.%d.1/24 dev a%d", k, k) ||
        run_cmd(-1, "ip link set a%d up", k) ||
        run_cmd(k, "ip link set lo up") ||
        run_cmd(k, "ip addr add 10.99.0.%d/24 dev eth0", k + 1) ||
        run_cmd(k, "ip link set eth0 up") ||
        run_cmd(k, "ip addr add 10.98.%d.2/24 dev api", k) ||
        run_cmd(k, "ip link set api up"))
        return -1;
    return 0;
}

/* Moves the test into a namespace of its own (before any thread), then
 * makes the nodes'. On failure NS.on stays false with the reason. */
static void ns_fini(void);

static const char *ns_try(void)
{
    if (run_cmd(-1, "ip link set lo up") != 0)
        return "ip link set lo up failed";
    if (run_cmd(-1, "ip link add br0 type bridge") ||
        run_cmd(-1, "ip link set br0 up"))
        return "cannot make a bridge";
    for (int k = 0; k < NN; k++)
        if (ns_setup_one(k) != 0)
            return "cannot make a node's namespace";
    return NULL;
}

static void ns_setup(void)
{
    const char *why;
    for (int k = 0; k < NN; k++)
        NS.fd[k] = -1;
    if (getenv("JV_NEMESIS_NO_NETNS") != NULL) {
        snprintf(NS.why, sizeof NS.why, "JV_NEMESIS_NO_NETNS is set");
        return;
    }
    if (access("/usr/bin/nsenter", X_OK) != 0 ||
        (access("/usr/sbin/ip", X_OK) != 0 && access("/sbin/ip", X_OK) != 0)) {
        snprintf(NS.why, sizeof NS.why, "no nsenter or ip (iproute2)");
        return;
    }
    int host = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    if (host < 0 || unshare(CLONE_NEWNET) != 0) {
        snprintf(NS.why, sizeof NS.why, "unshare(CLONE_NEWNET): %s",
                 strerror(errno));
        if (host >= 0)
            close(host);
        return;
    }
    /* In a namespace of our own from here on; on failure, back to the
     * one we came from (what was made goes with the abandoned one). */
    if ((why = ns_try()) != NULL) {
        snprintf(NS.why, sizeof NS.why, "%s", why);
        ns_fini();
        if (setns(host, CLONE_NEWNET) != 0)
            abort();
    } else {
        NS.on = true;
    }
    close(host);
}

static void ns_fini(void)
{
    for (int k = 0; k < NN; k++)
        if (NS.fd[k] >= 0) {
            close(NS.fd[k]);
            NS.fd[k] = -1;
        }
    NS.on = false;
}

/* -- client threads -------------------------------------------------------- */

enum {
    ACK,
    REFUSED,
    UNKNOWN
};
enum {
    OP_INC,
    OP_AUDIT,
    OP_CFG,
    OP_ADD,
    OP_DEL,
    OP_BATCH,
    OP_KINDS
};
static const char *const op_name[] = {"increment", "audit",  "config",
                                      "add",       "remove", "batch"};

typedef struct {
    uint8_t kind, outcome, seen, node;
    int16_t status;        /* the answer's HTTP status, 0 if none */
    float at;              /* seconds into the schedule it was sent */
    uint8_t ctr, cfg, arc; /* keys used */
    int16_t by;
} op_rec;

typedef struct {
    unsigned id;
    pthread_t th;
    jv_rng rng;
    op_rec *ops;
    size_t n, cap;
    CURL *http[NN]; /* kept alive, one per node */
    unsigned long count[OP_KINDS][3];
    unsigned long status[600]; /* refusals by HTTP status */
} client;

static struct {
    pthread_mutex_t mu;
    char url[NN][256];
    char key[NN][256];
    atomic_bool stop;
    client cl[NCLIENT];
    bool started;
    int timeout_ms;
} W = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void publish_url(size_t k)
{
    pthread_mutex_lock(&W.mu);
    snprintf(W.url[k], sizeof W.url[k], "%s", C.node[k].t.url);
    snprintf(W.key[k], sizeof W.key[k], "%s", C.node[k].t.admin_key);
    pthread_mutex_unlock(&W.mu);
}

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
}

/* Notes that bytes of the request went out: libcurl resends a request
 * whose reused connection died before any answer on a fresh connection,
 * so a failed connect alone does not prove that nothing was sent (the
 * node may have committed the first one and died before answering). */
static int on_debug(CURL *h, curl_infotype type, char *data, size_t size,
                    void *arg)
{
    (void)h;
    (void)data;
    (void)size;
    if (arg != NULL &&
        (type == CURLINFO_HEADER_OUT || type == CURLINFO_DATA_OUT))
        *(bool *)arg = true;
    return 0;
}

/* One request on the kept-alive handle *h (made when NULL): ACK for an
 * answer 2xx, REFUSED for any other answer or no connection at all,
 * UNKNOWN when a request may have reached the node but got no answer.
 * The status into *status (0 without an answer). */
static int request(CURL **h, const char *url, const char *key,
                   const char *method, const char *path, const char *body,
                   long timeout_ms, long *status)
{
    char full[512], auth[320];
    struct curl_slist *hd = NULL;
    *status = 0;
    if (*h == NULL && (*h = curl_easy_init()) == NULL)
        return REFUSED;
    CURL *e = *h;
    snprintf(full, sizeof full, "%s%s", url, path);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
    hd = curl_slist_append(hd, auth);
    hd = curl_slist_append(hd, "Content-Type: application/json");
    hd = curl_slist_append(hd, "Expect:");
    curl_easy_setopt(e, CURLOPT_URL, full);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body ? body : "");
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)(body ? strlen(body) : 0));
    bool sent = false;
    curl_easy_setopt(e, CURLOPT_VERBOSE, 1L);
    curl_easy_setopt(e, CURLOPT_DEBUGFUNCTION, on_debug);
    curl_easy_setopt(e, CURLOPT_DEBUGDATA, &sent);
    CURLcode rc = curl_easy_perform(e);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(e, CURLOPT_DEBUGDATA, NULL);
    curl_slist_free_all(hd);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
        return *status >= 200 && *status < 300 ? ACK : REFUSED;
    }
    /* A connection that could not be made, with no byte sent before on
     * a reused one, carried nothing; any other failure may come after
     * the node had the request. */
    return rc == CURLE_COULDNT_CONNECT && !sent ? REFUSED : UNKNOWN;
}

/* The op's body and path; its keys are recorded in o. */
static void make_op(client *c, op_rec *o, size_t seq, const char **method,
                    char *path, size_t plen, char *body, size_t blen)
{
    static const unsigned weight[OP_KINDS] = {25, 20, 15, 15, 10, 15};
    unsigned x = (unsigned)jv_rng_below(&c->rng, 100), kind = 0;
    while (x >= weight[kind])
        x -= weight[kind++];
    o->kind = (uint8_t)kind;
    o->ctr = (uint8_t)jv_rng_below(&c->rng, NCTR);
    o->cfg = (uint8_t)jv_rng_below(&c->rng, NCFG);
    o->arc = (uint8_t)jv_rng_below(&c->rng, NARC);
    o->by = (int16_t)(jv_rng_below(&c->rng, 9) + 1);
    *method = "POST";
    body[0] = '\0';
    switch (kind) {
    case OP_INC:
        snprintf(path, plen, "/v1/counters/nemc%u/increment", o->ctr);
        snprintf(body, blen, "{\"by\":%d}", o->by);
        break;
    case OP_AUDIT:
        snprintf(path, plen, "/v1/audit");
        snprintf(body, blen,
                 "{\"action\":\"nemesis.write\",\"target\":\"t%u\","
                 "\"detail\":\"t%u-%zu\"}",
                 c->id, c->id, seq);
        break;
    case OP_CFG:
        *method = "PUT";
        snprintf(path, plen, "/v1/config/nemk%u", o->cfg);
        snprintf(body, blen, "{\"value\":\"t%u-%zu\"}", c->id, seq);
        break;
    case OP_ADD:
        *method = "PUT";
        snprintf(path, plen, "/v1/archive/nema%u", o->arc);
        snprintf(body, blen, "{\"value\":\"t%u-%zu\"}", c->id, seq);
        break;
    case OP_DEL:
        *method = "DELETE";
        snprintf(path, plen, "/v1/archive/nema%u", o->arc);
        break;
    default:
        snprintf(path, plen, "/v1/batch");
        snprintf(body, blen,
                 "{\"ops\":[{\"op\":\"counter.increment\",\"name\":"
                 "\"nemc%u\",\"by\":%d},{\"op\":\"audit.append\",\"action\":"
                 "\"nemesis.write\",\"target\":\"t%u\",\"detail\":"
                 "\"t%u-%zu\"},{\"op\":\"config.set\",\"key\":\"nemk%u\","
                 "\"value\":\"t%u-%zu\"},{\"op\":\"archive.add\",\"key\":"
                 "\"nema%u\",\"value\":\"t%u-%zu\"}]}",
                 o->ctr, o->by, c->id, c->id, seq, o->cfg, c->id, seq, o->arc,
                 c->id, seq);
        break;
    }
}

static void one_op(client *c)
{
    char path[128], body[768], key[256];
    const char *method;
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 4096;
        op_rec *p = realloc(c->ops, cap * sizeof *p);
        if (p == NULL)
            abort();
        c->ops = p;
        c->cap = cap;
    }
    size_t seq = c->n;
    op_rec *o = &c->ops[seq];
    memset(o, 0, sizeof *o);
    make_op(c, o, seq, &method, path, sizeof path, body, sizeof body);
    size_t k = (size_t)jv_rng_below(&c->rng, NN);
    char url[256];
    long st;
    pthread_mutex_lock(&W.mu);
    snprintf(url, sizeof url, "%s", W.url[k]);
    snprintf(key, sizeof key, "%s", W.key[k]);
    pthread_mutex_unlock(&W.mu);
    o->node = (uint8_t)k;
    o->at = (float)((jv_cluster_now_ms() - T0) / 1000.0);
    o->outcome = (uint8_t)request(&c->http[k], url, key, method, path,
                                  body[0] ? body : NULL, W.timeout_ms, &st);
    o->status = (int16_t)st;
    if (o->outcome == REFUSED)
        c->status[st > 0 && st < 600 ? st : 0]++;
    c->count[o->kind][o->outcome]++;
    c->n++;
}

static void *client_main(void *arg)
{
    client *c = arg;
    while (!atomic_load(&W.stop)) {
        one_op(c);
        jv_cluster_sleep_ms((long)jv_rng_below(&c->rng, 8));
    }
    for (size_t k = 0; k < NN; k++)
        if (c->http[k] != NULL)
            curl_easy_cleanup(c->http[k]);
    return NULL;
}

static void clients_start(uint64_t seed)
{
    W.timeout_ms = nt_ms(5000);
    atomic_store(&W.stop, false);
    for (unsigned i = 0; i < NCLIENT; i++) {
        client *c = &W.cl[i];
        memset(c, 0, sizeof *c);
        c->id = i;
        jv_rng_seed(&c->rng, seed * 31 + i + 1);
        if (pthread_create(&c->th, NULL, client_main, c) != 0)
            NT_FAIL(&C, "cannot start a client thread");
    }
    W.started = true;
}

static void clients_stop(void)
{
    if (!W.started)
        return;
    atomic_store(&W.stop, true);
    for (unsigned i = 0; i < NCLIENT; i++)
        pthread_join(W.cl[i].th, NULL);
    W.started = false;
}

static void clients_free(void)
{
    for (unsigned i = 0; i < NCLIENT; i++) {
        free(W.cl[i].ops);
        W.cl[i].ops = NULL;
        W.cl[i].n = W.cl[i].cap = 0;
    }
}

/* -- the nodes ------------------------------------------------------------- */

/* Fails if a node the nemesis did not kill has exited. */
static void check_alive(void)
{
    for (size_t k = 0; k < NN; k++) {
        jv_test_node *t = &C.node[k].t;
        int ws;
        if (!t->running || waitpid(t->proc.pid, &ws, WNOHANG) != t->proc.pid)
            continue;
        t->proc.reaped = true;
        t->running = false;
        NT_FAIL(&C, "node %zu exited by itself (%s %d)", k,
                WIFEXITED(ws) ? "status" : "signal",
                WIFEXITED(ws) ? WEXITSTATUS(ws) : WTERMSIG(ws));
    }
}

/* SIGKILL and reap; a node that had exited by itself before is a
 * failure, not hidden by the kill. */
static void kill_node(size_t k)
{
    jv_test_node *t = &C.node[k].t;
    int ws = 0;
    if (!t->running)
        NT_FAIL(&C, "node %zu is not running", k);
    kill(t->proc.pid, SIGKILL);
    while (waitpid(t->proc.pid, &ws, 0) < 0 && errno == EINTR)
        ;
    t->proc.reaped = true;
    t->running = false;
    if (!WIFSIGNALED(ws) || WTERMSIG(ws) != SIGKILL)
        NT_FAIL(&C, "node %zu had exited by itself (%s %d)", k,
                WIFEXITED(ws) ? "status" : "signal",
                WIFEXITED(ws) ? WEXITSTATUS(ws) : WTERMSIG(ws));
}

static void node_start(size_t k)
{
    NT_OK(&C, jv_cluster_start(&C, k));
    publish_url(k);
}

/* -- fault state ----------------------------------------------------------- */

static struct {
    bool block[NN][NN];  /* fault switch: node i blocks node j */
    bool poison[NN][NN]; /* namespaces: i's packets to j are dropped */
    bool down[NN];       /* namespaces: node k's peer link is down */
    int skewed;          /* the node with a clock offset, -1 none */
    bool fast_seen;      /* a clock ran fast in this schedule */
} F = {.skewed = -1};

/* The nemesis' and the checker's own requests. They share the node's
 * admin key with the clients, whose load may pass its rate limit: a
 * 429 is waited out (the limit is not what is tested here). */
static int nem_http(size_t k, const char *method, const char *path,
                    const char *body, jv_http_resp *r)
{
    double t0 = jv_cluster_now_ms();
    for (;;) {
        int rc = jv_cluster_http(&C, k, method, path, body, r);
        if (rc != 0 || r->status != 429 ||
            jv_cluster_now_ms() - t0 > nt_ms(30000))
            return rc;
        jv_http_resp_fini(r);
        jv_cluster_sleep_ms(100);
    }
}

static void faults_post(size_t k, const char *body)
{
    jv_http_resp r;
    NT_OK(&C, nem_http(k, "POST", "/v1/debug/faults", body, &r));
    long st = r.status;
    jv_http_resp_fini(&r);
    if (st != 204)
        NT_FAIL(&C, "POST /v1/debug/faults %s on node %zu: %ld", body, k, st);
}

/* Node k's blocks, as F.block says (they do not survive a restart). */
static void apply_blocks(size_t k)
{
    char body[2048];
    size_t at = (size_t)snprintf(body, sizeof body,
                                 "{\"unblock_all\":true,\"block\":[");
    bool first = true;
    for (size_t j = 0; j < NN; j++)
        if (F.block[k][j]) {
            at += (size_t)snprintf(body + at, sizeof body - at,
                                   "%s\"%s\",\"%s\"", first ? "" : ",",
                                   C.node[j].id, C.node[j].listen);
            first = false;
        }
    snprintf(body + at, sizeof body - at, "]}");
    faults_post(k, body);
}

static void set_poison(size_t i, size_t j, bool on)
{
    if (F.poison[i][j] == on)
        return;
    int rc = on ? run_cmd((int)i,
                          "ip neigh replace 10.99.0.%zu lladdr "
                          "02:00:00:00:00:ee dev eth0 nud permanent",
                          j + 1)
                : run_cmd((int)i, "ip neigh del 10.99.0.%zu dev eth0", j + 1);
    if (rc != 0)
        NT_FAIL(&C, "cannot %s the link %zu -> %zu", on ? "cut" : "restore", i,
                j);
    F.poison[i][j] = on;
}

static void set_down(size_t k, bool down)
{
    if (F.down[k] == down)
        return;
    if (run_cmd(-1, "ip link set h%zu %s", k, down ? "down" : "up") != 0)
        NT_FAIL(&C, "cannot take node %zu's link %s", k, down ? "down" : "up");
    F.down[k] = down;
}

static void set_skew(size_t k, long long ms)
{
    char body[96];
    snprintf(body, sizeof body, "{\"clock_offset_ms\":%lld}", ms);
    faults_post(k, body);
    F.skewed = ms ? (int)k : -1;
    F.fast_seen |= ms > 0;
}

static void heal_all(void)
{
    memset(F.block, 0, sizeof F.block);
    for (size_t k = 0; k < NN; k++)
        faults_post(k, "{\"unblock_all\":true}");
    for (size_t i = 0; i < NN; i++) {
        set_down(i, false);
        for (size_t j = 0; j < NN; j++)
            set_poison(i, j, false);
    }
    if (F.skewed >= 0)
        set_skew((size_t)F.skewed, 0);
}

/* -- add-wins probes ------------------------------------------------------- */

typedef struct {
    char key[32];
    bool present; /* expected: present with "readded", else absent */
} probe;

static probe P[NPROBE];
static size_t NP;
static unsigned probe_seq;

/* A write through the nemesis' own connection: the status, 0 if none. */
static long put_archive(size_t k, const char *key, const char *value)
{
    char path[96], body[96];
    jv_http_resp r;
    snprintf(path, sizeof path, "/v1/archive/%s", key);
    snprintf(body, sizeof body, "{\"value\":\"%s\"}", value);
    long st = nem_http(k, "PUT", path, body, &r) == 0 ? r.status : 0;
    jv_http_resp_fini(&r);
    return st;
}

static long del_archive(size_t k, const char *key)
{
    char path[96];
    jv_http_resp r;
    snprintf(path, sizeof path, "/v1/archive/%s", key);
    long st = nem_http(k, "DELETE", path, NULL, &r) == 0 ? r.status : 0;
    jv_http_resp_fini(&r);
    return st;
}

/* Waits until node k has key (whatever its values); false past 20 s. */
static bool wait_seen(size_t k, const char *key)
{
    char path[96];
    snprintf(path, sizeof path, "/v1/archive/%s", key);
    double t0 = jv_cluster_now_ms();
    while (jv_cluster_now_ms() - t0 < nt_ms(20000)) {
        jv_http_resp r;
        long st = nem_http(k, "GET", path, NULL, &r) == 0 ? r.status : 0;
        jv_http_resp_fini(&r);
        if (st == 200)
            return true;
        jv_cluster_sleep_ms(20);
    }
    return false;
}

/* Before a cut between a (one side) and b (the other): both probe keys
 * added on a and seen on b. */
static bool probe_prepare(size_t a, size_t b, char *aw, char *rm)
{
    unsigned n = probe_seq++;
    snprintf(aw, 32, "nemaw%u", n);
    snprintf(rm, 32, "nemrm%u", n);
    if (NP + 2 > NPROBE || put_archive(a, aw, "first") != 200 ||
        put_archive(a, rm, "first") != 200 || !wait_seen(b, aw) ||
        !wait_seen(b, rm)) {
        say("  probe %u not set up (a write failed or did not reach node "
            "%zu)",
            n, b);
        return false;
    }
    return true;
}

/* After the cut: b removes both keys, a2 (a's side) adds aw again. */
static void probe_cut(size_t b, size_t a2, const char *aw, const char *rm)
{
    long d1 = del_archive(b, aw), add = put_archive(a2, aw, "readded");
    long d2 = del_archive(b, rm);
    if (d1 == 204 && add == 200) {
        snprintf(P[NP].key, sizeof P[NP].key, "%s", aw);
        P[NP++].present = true;
    }
    if (d2 == 204) {
        snprintf(P[NP].key, sizeof P[NP].key, "%s", rm);
        P[NP++].present = false;
    }
    say("  add-wins probe: %s removed on %zu (%ld) and added on %zu (%ld); "
        "%s removed on %zu (%ld)",
        aw, b, d1, a2, add, rm, b, d2);
}

/* -- the nemesis' actions ---------------------------------------------------
 */

typedef enum {
    A_PART_APP,
    A_PART_NET,
    A_ONEWAY_APP,
    A_ONEWAY_NET,
    A_FLAP_APP,
    A_FLAP_NET,
    A_LINK_DOWN,
    A_KILL,
    A_KILL_CATCHUP,
    A_KILL_BACKUP,
    A_PAUSE,
    A_SKEW,
    A_HEAL,
    A_KINDS
} action;

static const char *const action_name[] = {"partition (fault switch)",
                                          "partition (namespaces)",
                                          "one-way (fault switch)",
                                          "one-way (namespaces)",
                                          "flapping (fault switch)",
                                          "flapping (namespaces)",
                                          "link down (namespaces)",
                                          "kill",
                                          "kill mid-catch-up",
                                          "kill mid-backup",
                                          "pause",
                                          "clock skew",
                                          "heal"};

static bool needs_ns(action a)
{
    return a == A_PART_NET || a == A_ONEWAY_NET || a == A_FLAP_NET ||
           a == A_LINK_DOWN;
}

static jv_rng N; /* the nemesis' own generator */

/* A random split: side[k] true for one side, of 1 or 2 nodes (a minority
 * or a half of five); the description into out. */
static void random_split(bool side[NN], char *out, size_t cap)
{
    size_t idx[NN] = {0, 1, 2, 3, 4}, m = 1 + (size_t)jv_rng_below(&N, 2);
    jv_rng_shuffle(&N, idx, NN, sizeof idx[0]);
    memset(side, 0, NN * sizeof side[0]);
    for (size_t i = 0; i < m; i++)
        side[idx[i]] = true;
    size_t at = (size_t)snprintf(out, cap, "{");
    for (int s = 1; s >= 0; s--) {
        for (size_t k = 0; k < NN; k++)
            if (side[k] == (bool)s)
                at += (size_t)snprintf(out + at, cap - at, "%zu", k);
        at += (size_t)snprintf(out + at, cap - at, s ? "} | {" : "}");
    }
}

static size_t pick_in(const bool side[NN], bool want)
{
    for (;;) {
        size_t k = (size_t)jv_rng_below(&N, NN);
        if (side[k] == want)
            return k;
    }
}

/* Waits until node i no longer shows node j as reachable: a cut below
 * the application that nobody notices would test nothing. */
static void wait_cut_seen(size_t i, size_t j)
{
    double t0 = jv_cluster_now_ms();
    char st[128] = "";
    for (;;) {
        json_t *p = nt_peer(&C, i, C.node[j].listen);
        const char *s = p ? json_string_value(json_object_get(p, "state")) : 0;
        snprintf(st, sizeof st, "%s", s ? s : "absent");
        json_decref(p);
        if (strcmp(st, "reachable") != 0)
            break;
        if (jv_cluster_now_ms() - t0 > nt_ms(30000))
            NT_FAIL(&C, "node %zu still shows node %zu reachable after the cut",
                    i, j);
        jv_cluster_sleep_ms(50);
    }
    say("  node %zu shows node %zu as \"%s\" after %.0f ms", i, j, st,
        jv_cluster_now_ms() - t0);
}

static void act_partition(bool net)
{
    bool side[NN];
    char desc[64], aw[32], rm[32];
    heal_all();
    random_split(side, desc, sizeof desc);
    size_t a = pick_in(side, true), b = pick_in(side, false);
    size_t a2 = pick_in(side, true);
    bool probing = probe_prepare(a, b, aw, rm);
    for (size_t i = 0; i < NN; i++)
        for (size_t j = 0; j < NN; j++)
            if (side[i] != side[j]) {
                if (net)
                    set_poison(i, j, true);
                else
                    F.block[i][j] = true;
            }
    if (!net)
        for (size_t i = 0; i < NN; i++)
            apply_blocks(i);
    say("%s %s", action_name[net ? A_PART_NET : A_PART_APP], desc);
    if (probing)
        probe_cut(b, a2, aw, rm);
    if (net)
        wait_cut_seen(a, b);
}

static void act_oneway(bool net)
{
    size_t i = (size_t)jv_rng_below(&N, NN);
    size_t j = (i + 1 + (size_t)jv_rng_below(&N, NN - 1)) % NN;
    if (net) {
        set_poison(i, j, true);
    } else {
        F.block[i][j] = true;
        apply_blocks(i);
    }
    say("%s %zu -/-> %zu", action_name[net ? A_ONEWAY_NET : A_ONEWAY_APP], i,
        j);
}

static void act_flap(bool net)
{
    size_t i = (size_t)jv_rng_below(&N, NN), j;
    unsigned times = 3 + (unsigned)jv_rng_below(&N, 5);
    j = (i + 1 + (size_t)jv_rng_below(&N, NN - 1)) % NN;
    bool was_i = F.block[i][j], was_j = F.block[j][i];
    bool was_down = net && F.down[i];
    if (net)
        say("%s: node %zu's peer link, %u times", action_name[A_FLAP_NET], i,
            times);
    else
        say("%s: link %zu <-> %zu, %u times", action_name[A_FLAP_APP], i, j,
            times);
    for (unsigned t = 0; t < times; t++) {
        bool cut = t % 2 == 0;
        if (net) {
            set_down(i, cut);
        } else {
            F.block[i][j] = cut || was_i;
            F.block[j][i] = cut || was_j;
            apply_blocks(i);
            apply_blocks(j);
        }
        jv_cluster_sleep_ms(150 + (long)jv_rng_below(&N, 700));
    }
    if (net) {
        set_down(i, was_down);
    } else {
        F.block[i][j] = was_i;
        F.block[j][i] = was_j;
        apply_blocks(i);
        apply_blocks(j);
    }
}

static void act_link_down(void)
{
    size_t k = (size_t)jv_rng_below(&N, NN);
    set_down(k, true);
    say("%s: node %zu's peer link", action_name[A_LINK_DOWN], k);
}

/* After a restart: the node's blocks again; its clock is right. */
static void restarted(size_t k)
{
    apply_blocks(k);
    if (F.skewed == (int)k)
        F.skewed = -1;
}

static void act_kill(void)
{
    size_t k = (size_t)jv_rng_below(&N, NN);
    long down_ms = (long)jv_rng_below(&N, 1500);
    say("kill node %zu, restart after %ld ms", k, down_ms);
    kill_node(k);
    jv_cluster_sleep_ms(down_ms);
    node_start(k);
    restarted(k);
}

/* The version vector of node k as origin -> seq. */
static json_t *vv_of(size_t k)
{
    json_t *vv = jv_cluster_vv(&C, k);
    if (vv == NULL)
        NT_FAIL(&C, "no status from node %zu: %s", k, C.err);
    return vv;
}

/* Node k's vector, kept in a slot reused by the next call. */
static json_t *vv_of_keep(size_t k)
{
    static json_t *kept;
    json_decref(kept);
    kept = vv_of(k);
    return kept;
}

/* Batches b has that a lacks. */
static long long behind(json_t *a, json_t *b)
{
    const char *o;
    json_t *v;
    long long d = 0;
    json_object_foreach(b, o, v)
    {
        json_int_t x = json_integer_value(v);
        json_int_t y = json_integer_value(json_object_get(a, o));
        d += x > y ? x - y : 0;
    }
    return d;
}

/* Kills node k at a random moment of the first 400 ms of its catch-up
 * from j (since `start`): a batch set arrives in one exchange and is
 * applied in one commit, so there is no partial state to wait for; the
 * kill lands before, during or after that exchange. What k had, into the
 * schedule's output. */
static void kill_while_catching_up(size_t k, size_t j, json_t *start)
{
    json_t *ref = vv_of(j);
    long ms = (long)jv_rng_below(&N, 400);
    jv_cluster_sleep_ms(ms);
    json_t *now = vv_of(k);
    long long got = behind(start, now), left = behind(now, ref);
    kill_node(k);
    say("  killed node %zu %ld ms into its catch-up: %s (%lld batches "
        "received, %lld of node %zu's lacking)",
        k, ms,
        left == 0 ? "caught up"
        : got > 0 ? "part way"
                  : "nothing yet",
        got, left, j);
    json_decref(ref);
    json_decref(now);
}

/* Node k cut off while the others take writes, then let back in and
 * killed while it catches up; restarted, and killed again at the start of
 * its second catch-up if it is not over yet. */
static void act_kill_catchup(void)
{
    size_t k = (size_t)jv_rng_below(&N, NN), j = (k + 1) % NN;
    long iso_ms = 1500 + (long)jv_rng_below(&N, 2500);
    for (size_t i = 0; i < NN; i++)
        if (i != k)
            F.block[k][i] = F.block[i][k] = true;
    for (size_t i = 0; i < NN; i++)
        apply_blocks(i);
    say("kill mid-catch-up: node %zu isolated for %ld ms", k, iso_ms);
    jv_cluster_sleep_ms(iso_ms);
    json_t *start = vv_of(k);
    for (size_t i = 0; i < NN; i++)
        F.block[k][i] = F.block[i][k] = false;
    for (size_t i = 0; i < NN; i++)
        if (i != k)
            apply_blocks(i);
    apply_blocks(k);
    kill_while_catching_up(k, j, start);
    json_decref(start);
    node_start(k);
    restarted(k);
    start = vv_of(k);
    if (behind(start, vv_of_keep(j)) > 0)
        kill_while_catching_up(k, j, start);
    json_decref(start);
    if (!C.node[k].t.running) {
        jv_cluster_sleep_ms((long)jv_rng_below(&N, 500));
        node_start(k);
        restarted(k);
    }
}

typedef struct {
    char url[256], key[256], name[64];
    long status;
    atomic_bool done;
} backup_job;

static void *backup_main(void *arg)
{
    backup_job *b = arg;
    CURL *h = NULL;
    char body[128];
    snprintf(body, sizeof body, "{\"path\":\"%s\"}", b->name);
    request(&h, b->url, b->key, "POST", "/v1/backup", body, 30000, &b->status);
    if (h != NULL)
        curl_easy_cleanup(h);
    atomic_store(&b->done, true);
    return NULL;
}

/* Whether node k's backup `name` is being written (its temporary,
 * <name>.<random>.tmp, is there). */
static bool backup_under_way(size_t k, const char *name)
{
    char pat[800];
    glob_t g;
    snprintf(pat, sizeof pat, "%s/backups/%s.*.tmp", C.node[k].t.dir, name);
    bool found = glob(pat, 0, NULL, &g) == 0 && g.gl_pathc > 0;
    globfree(&g);
    return found;
}

static void act_kill_backup(void)
{
    static unsigned seq;
    size_t k = (size_t)jv_rng_below(&N, NN);
    backup_job b;
    pthread_t th;
    memset(&b, 0, sizeof b);
    snprintf(b.url, sizeof b.url, "%s", C.node[k].t.url);
    snprintf(b.key, sizeof b.key, "%s", C.node[k].t.admin_key);
    snprintf(b.name, sizeof b.name, "nemesis-%u.db", seq++);
    if (pthread_create(&th, NULL, backup_main, &b) != 0)
        NT_FAIL(&C, "cannot start the backup thread");
    double t0 = jv_cluster_now_ms();
    bool seen = false;
    while (!(seen = backup_under_way(k, b.name)) && !atomic_load(&b.done) &&
           jv_cluster_now_ms() - t0 < 5000)
        jv_cluster_sleep_ms(1);
    kill_node(k);
    pthread_join(th, NULL);
    say("kill mid-backup: node %zu, %s (backup answered %ld)", k,
        seen && b.status == 0 ? "while its backup was written"
                              : "(backup not caught under way)",
        b.status);
    jv_cluster_sleep_ms((long)jv_rng_below(&N, 500));
    node_start(k);
    restarted(k);
}

static void act_pause(void)
{
    size_t k = (size_t)jv_rng_below(&N, NN);
    long ms = PEER_MS + 500 + (long)jv_rng_below(&N, 2500);
    say("pause node %zu for %ld ms (peer timeout %d ms)", k, ms, PEER_MS);
    kill(C.node[k].t.proc.pid, SIGSTOP);
    jv_cluster_sleep_ms(ms);
    kill(C.node[k].t.proc.pid, SIGCONT);
}

static void act_skew(void)
{
    size_t k = (size_t)jv_rng_below(&N, NN);
    long long ms = jv_rng_below(&N, 2) ? SKEW_MS : -SKEW_MS;
    if (F.skewed >= 0)
        set_skew((size_t)F.skewed, 0);
    set_skew(k, ms);
    say("clock skew: node %zu runs %+lld s", k, ms / 1000);
}

static void act(action a)
{
    switch (a) {
    case A_PART_APP:
    case A_PART_NET:
        act_partition(a == A_PART_NET);
        break;
    case A_ONEWAY_APP:
    case A_ONEWAY_NET:
        act_oneway(a == A_ONEWAY_NET);
        break;
    case A_FLAP_APP:
    case A_FLAP_NET:
        act_flap(a == A_FLAP_NET);
        break;
    case A_LINK_DOWN:
        act_link_down();
        break;
    case A_KILL:
        act_kill();
        break;
    case A_KILL_CATCHUP:
        act_kill_catchup();
        break;
    case A_KILL_BACKUP:
        act_kill_backup();
        break;
    case A_PAUSE:
        act_pause();
        break;
    case A_SKEW:
        act_skew();
        break;
    default:
        heal_all();
        say("heal");
        break;
    }
}

/* The kinds of a mode: "links", "nodes" or "all". A partition through the
 * fault switch is in every mode: it sets up the add-wins probes. */
static size_t kinds_of(const char *mode, action *out)
{
    size_t n = 0;
    for (int a = 0; a < A_KINDS; a++) {
        bool link = a <= A_LINK_DOWN, node = a >= A_KILL && a <= A_SKEW;
        bool in = strcmp(mode, "all") == 0 || a == A_PART_APP || a == A_HEAL ||
                  (strcmp(mode, "links") == 0 && link) ||
                  (strcmp(mode, "nodes") == 0 && node);
        if (!in)
            continue;
        if (needs_ns((action)a) && !NS.on)
            continue;
        out[n++] = (action)a;
    }
    return n;
}

/* Rounds of every kind in a random order (the first a partition), each
 * followed by a quiet gap, until `seconds` have passed and one whole
 * round ran. */
static void run_schedule(const char *mode, double seconds)
{
    action kinds[A_KINDS];
    size_t n = kinds_of(mode, kinds);
    double end = jv_cluster_now_ms() + seconds * 1000;
    for (unsigned round = 0;; round++) {
        jv_rng_shuffle(&N, kinds, n, sizeof kinds[0]);
        for (size_t i = 0; i < n; i++)
            if (round == 0 && kinds[i] == A_PART_APP) {
                kinds[i] = kinds[0];
                kinds[0] = A_PART_APP;
            }
        for (size_t i = 0; i < n; i++) {
            if (round > 0 && jv_cluster_now_ms() >= end)
                return;
            act(kinds[i]);
            check_alive();
            jv_cluster_sleep_ms(300 + (long)jv_rng_below(&N, 1500));
            check_alive();
        }
        if (jv_cluster_now_ms() >= end)
            return;
    }
}

/* -- the checker ------------------------------------------------------------
 */

/* The op a value "t<i>-<seq>" names, or NULL. */
static op_rec *op_named(const char *v)
{
    unsigned t;
    size_t seq;
    char tail;
    if (v == NULL || sscanf(v, "t%u-%zu%c", &t, &seq, &tail) != 2 ||
        t >= NCLIENT || seq >= W.cl[t].n)
        return NULL;
    return &W.cl[t].ops[seq];
}

static json_t *get_json(size_t k, const char *path, long *status)
{
    jv_http_resp r;
    NT_OK(&C, nem_http(k, "GET", path, NULL, &r));
    *status = r.status;
    json_t *j = json_loadb(r.body, r.len, 0, NULL);
    jv_http_resp_fini(&r);
    return j;
}

static void check_counters(void)
{
    for (unsigned c = 0; c < NCTR; c++) {
        long long acked = 0, unknown = 0;
        for (unsigned t = 0; t < NCLIENT; t++)
            for (size_t s = 0; s < W.cl[t].n; s++) {
                op_rec *o = &W.cl[t].ops[s];
                if ((o->kind == OP_INC || o->kind == OP_BATCH) && o->ctr == c)
                    acked += o->outcome == ACK ? o->by : 0,
                        unknown += o->outcome == UNKNOWN ? o->by : 0;
            }
        char path[64];
        long st;
        snprintf(path, sizeof path, "/v1/counters/nemc%u", c);
        json_t *j = get_json(0, path, &st);
        long long total =
            st == 200 ? json_integer_value(json_object_get(j, "total")) : 0;
        json_decref(j);
        if ((st != 200 && st != 404) || total < acked ||
            total > acked + unknown)
            NT_FAIL(&C,
                    "counter nemc%u is %lld (status %ld): acknowledged %lld, "
                    "unknown %lld",
                    c, total, st, acked, unknown);
        printf("counter nemc%u = %lld: acknowledged %lld, unknown %lld\n", c,
               total, acked, unknown);
    }
}

static void check_audit(void)
{
    char cursor[256] = "", path[400];
    size_t entries = 0;
    for (;;) {
        long st;
        snprintf(path, sizeof path,
                 "/v1/audit?action=nemesis.write&limit=1000%s%s",
                 cursor[0] ? "&cursor=" : "", cursor);
        json_t *j = get_json(0, path, &st);
        json_t *e;
        size_t i;
        if (st != 200)
            NT_FAIL(&C, "GET %s: %ld", path, st);
        json_array_foreach(json_object_get(j, "entries"), i, e)
        {
            const char *d = json_string_value(json_object_get(e, "detail"));
            op_rec *o = op_named(d);
            if (o == NULL || (o->kind != OP_AUDIT && o->kind != OP_BATCH))
                NT_FAIL(&C, "audit entry %s was never written", d ? d : "?");
            if (o->outcome == REFUSED)
                NT_FAIL(&C,
                        "audit entry %s is there, but was refused (node %u, "
                        "status %d, sent at %.1f s)",
                        d, o->node, o->status, (double)o->at);
            if (++o->seen > 1)
                NT_FAIL(&C, "audit entry %s is there twice", d);
            entries++;
        }
        const char *next = json_string_value(json_object_get(j, "next_cursor"));
        snprintf(cursor, sizeof cursor, "%s", next ? next : "");
        json_decref(j);
        if (next == NULL)
            break;
    }
    size_t acked = 0;
    for (unsigned t = 0; t < NCLIENT; t++)
        for (size_t s = 0; s < W.cl[t].n; s++) {
            op_rec *o = &W.cl[t].ops[s];
            if ((o->kind == OP_AUDIT || o->kind == OP_BATCH) &&
                o->outcome == ACK) {
                acked++;
                if (o->seen != 1)
                    NT_FAIL(&C,
                            "acknowledged audit entry t%u-%zu (node %u, sent "
                            "at %.1f s) is missing",
                            t, s, o->node, (double)o->at);
            }
        }
    printf("audit: %zu entries, %zu acknowledged all there once\n", entries,
           acked);
}

/* A written (not refused) op of one of the kinds, with key `key`. */
static bool written(const char *v, int k1, int k2, bool cfg, unsigned key)
{
    op_rec *o = op_named(v);
    return o != NULL && (o->kind == k1 || o->kind == k2) &&
           o->outcome != REFUSED && (cfg ? o->cfg : o->arc) == key;
}

static void check_config_archive(void)
{
    for (unsigned c = 0; c < NCFG; c++) {
        char path[64];
        long st;
        bool acked = false;
        for (unsigned t = 0; t < NCLIENT; t++)
            for (size_t s = 0; s < W.cl[t].n; s++) {
                op_rec *o = &W.cl[t].ops[s];
                acked |= (o->kind == OP_CFG || o->kind == OP_BATCH) &&
                         o->cfg == c && o->outcome == ACK;
            }
        snprintf(path, sizeof path, "/v1/config/nemk%u", c);
        json_t *j = get_json(0, path, &st);
        const char *v = json_string_value(json_object_get(j, "value"));
        if (st == 404 ? acked
                      : st != 200 || !written(v, OP_CFG, OP_BATCH, true, c))
            NT_FAIL(&C, "config nemk%u: %ld %s, not a value written to it", c,
                    st, v ? v : "");
        json_decref(j);
    }
    for (unsigned a = 0; a < NARC; a++) {
        char path[64];
        long st;
        json_t *e;
        size_t i;
        snprintf(path, sizeof path, "/v1/archive/nema%u", a);
        json_t *j = get_json(0, path, &st);
        if (st != 200 && st != 404)
            NT_FAIL(&C, "GET %s: %ld", path, st);
        json_array_foreach(json_object_get(j, "all"), i, e)
        {
            const char *v = json_string_value(json_object_get(e, "value"));
            if (!written(v, OP_ADD, OP_BATCH, false, a))
                NT_FAIL(&C, "archive nema%u holds %s, never added to it", a,
                        v ? v : "?");
        }
        json_decref(j);
    }
}

static void check_probes(void)
{
    for (size_t p = 0; p < NP; p++)
        for (size_t k = 0; k < NN; k++) {
            char path[96];
            long st;
            snprintf(path, sizeof path, "/v1/archive/%.31s", P[p].key);
            json_t *j = get_json(k, path, &st);
            json_t *all = json_object_get(j, "all");
            bool ok = P[p].present
                          ? st == 200 && json_array_size(all) == 1 &&
                                strcmp(json_string_value(json_object_get(
                                           json_array_get(all, 0), "value")),
                                       "readded") == 0
                          : st == 404;
            char *dump = j ? json_dumps(j, JSON_COMPACT) : NULL;
            if (!ok)
                NT_FAIL(&C, "node %zu: %s should be %s: %ld %s", k, P[p].key,
                        P[p].present ? "present (add-wins)" : "absent", st,
                        dump ? dump : "");
            free(dump);
            json_decref(j);
        }
    size_t present = 0;
    for (size_t p = 0; p < NP; p++)
        present += P[p].present;
    printf("add-wins: %zu concurrent add/remove present, %zu removed "
           "absent, on every node\n",
           present, NP - present);
}

/* No node refused or dropped a batch (a bad signature, a broken link, an
 * equivocation: what a kill at the wrong moment could cause), and no
 * message was refused but as stale (clocks apart). Counted since each
 * node's last start. */
static void check_refusals(void)
{
    for (size_t k = 0; k < NN; k++) {
        double b = jv_cluster_metric_sum(&C, k, "jarvis_repl_batches_total",
                                         "refused_");
        double d = jv_cluster_metric_sum(&C, k, "jarvis_repl_batches_total",
                                         "dropped_");
        double all = jv_cluster_metric_sum(
            &C, k, "jarvis_repl_refused_messages_total", NULL);
        double stale = jv_cluster_metric_sum(
            &C, k, "jarvis_repl_refused_messages_total", "\"stale\"");
        if (b < 0 || d < 0 || all < 0 || stale < 0)
            NT_FAIL(&C, "no metrics from node %zu: %s", k, C.err);
        if (b != 0 || d != 0 || all != stale)
            NT_FAIL(&C,
                    "node %zu refused %.0f and dropped %.0f batches, and "
                    "refused %.0f messages not stale",
                    k, b, d, all - stale);
    }
}

/* jarvisctl verify on every node. Verify leaves an audit entry, a
 * write: a node whose hybrid clock still runs ahead after a fast clock
 * refuses it (503 clock_skew) until the lead is within the bound. */
static void check_verify(void)
{
    double slowest = 0;
    for (size_t k = 0; k < NN; k++) {
        double t0 = jv_cluster_now_ms();
        for (;;) {
            jv_proc_result r;
            double t1 = jv_cluster_now_ms();
            /* A whole log's replay on a busy machine may pass jarvisctl's
             * default 10 s; the helper allows 60 s per run. */
            NT_OK(&C, jv_cluster_ctl(&C, k, &r, "--timeout", "55", "verify",
                                     (char *)NULL));
            int st = r.status;
            bool skew = strstr(r.err, "clock_skew") != NULL;
            if (st != 0 && (!skew || jv_cluster_now_ms() - t0 > nt_ms(60000)))
                NT_FAIL(&C, "jarvisctl verify on node %zu exited %d: %s%s", k,
                        st, r.out, r.err);
            jv_proc_result_fini(&r);
            if (st == 0) {
                double took = jv_cluster_now_ms() - t1;
                slowest = took > slowest ? took : slowest;
                break;
            }
            jv_cluster_sleep_ms(500);
        }
    }
    printf("verify: passed on every node (the slowest took %.0f ms)\n",
           slowest);
}

static void print_counts(void)
{
    unsigned long tot[3] = {0}, status[600] = {0};
    for (int k = 0; k < OP_KINDS; k++) {
        unsigned long s[3] = {0};
        for (unsigned t = 0; t < NCLIENT; t++)
            for (int o = 0; o < 3; o++)
                s[o] += W.cl[t].count[k][o];
        printf("%-9s acknowledged %6lu refused %6lu unknown %4lu\n", op_name[k],
               s[0], s[1], s[2]);
        for (int o = 0; o < 3; o++)
            tot[o] += s[o];
    }
    for (unsigned t = 0; t < NCLIENT; t++)
        for (int s = 0; s < 600; s++)
            status[s] += W.cl[t].status[s];
    printf("all       acknowledged %6lu refused %6lu unknown %4lu; refusals:",
           tot[0], tot[1], tot[2]);
    for (int s = 0; s < 600; s++)
        if (status[s])
            printf(" %s%d: %lu", s ? "" : "no connection", s ? s : 0,
                   status[s]);
    printf("\n");
}

/* -- the test -------------------------------------------------------------- */

static double SECONDS = 20;
static const char *MODE = "all";

static uint64_t nemesis_seed(void)
{
    const char *s = getenv("JV_NEMESIS_SEED");
    uint64_t seed = s && *s ? strtoull(s, NULL, 10)
                            : (uint64_t)time(NULL) * 1000003u ^
                                  (uint64_t)getpid() << 16 ^
                                  (uint64_t)jv_cluster_now_ms();
    printf("nemesis seed: %llu (replay with JV_NEMESIS_SEED=%llu)\n",
           (unsigned long long)seed, (unsigned long long)seed);
    return seed;
}

static void cluster_up(uint64_t seed)
{
    static char *const flags[] = {"--sync-interval", "300",
                                  "--peer-timeout",  "2000",
                                  "--test-faults",   "--max-clock-skew",
                                  BOUND_MS,          NULL};
    jv_cluster_opts o = {.n = NN, .flags = flags, .seed = seed};
    NT_OK(&C, jv_cluster_init(&C, &o));
    if (NS.on) {
        /* Peers on the bridge, the API on the node's own link: a veth
         * pair between the node and this test only, hence plain text. */
        for (size_t k = 0; k < NN; k++) {
            snprintf(C.node[k].listen, sizeof C.node[k].listen,
                     "tcp://10.99.0.%zu:%d", k + 1, C.node[k].port);
            snprintf(C.node[k].t.netns, sizeof C.node[k].t.netns, "%s",
                     NS.path[k]);
            C.node[k].flags[0] = (char *)"--api-listen";
            C.node[k].flags[1] = NS.api[k];
            C.node[k].flags[2] = (char *)"--insecure-api";
            C.node[k].flags[3] = NULL;
        }
        size_t all[NN] = {0, 1, 2, 3, 4};
        for (size_t k = 0; k < NN; k++)
            NT_OK(&C, jv_cluster_write_config(&C, k, all, NN));
    }
    for (size_t k = 0; k < NN; k++)
        node_start(k);
}

static void test_nemesis(void **state)
{
    (void)state;
    T0 = jv_cluster_now_ms();
    ns_setup(); /* before any thread */
    uint64_t seed = nemesis_seed();
    jv_rng_seed(&N, seed);
    if (NS.on)
        printf("network namespaces: on (one per node, bridged)\n");
    else
        printf("network namespaces: off, faults below the application "
               "skipped: %s\n",
               NS.why);
    printf("schedule: %.0f s, faults: %s\n", SECONDS, MODE);
    NT_CHECK(&C, curl_global_init(CURL_GLOBAL_DEFAULT) == 0);
    cluster_up(seed);
    clients_start(seed);
    T0 = jv_cluster_now_ms();
    run_schedule(MODE, SECONDS);
    say("clients stop");
    clients_stop();
    check_alive();
    for (size_t k = 0; k < NN; k++)
        kill(C.node[k].t.proc.pid, SIGCONT);
    heal_all();
    say("healed");
    /* A batch a fast node signed before it knew is held 30 s beyond the
     * bound's edge (SKEW_MS - BOUND_MS). */
    int bound = nt_ms(60000) + (F.fast_seen ? 40000 : 0);
    double took = 0;
    if (jv_cluster_wait_converged(&C, NULL, 0, bound, &took) != 0)
        NT_FAIL(&C, "%s", C.err);
    say("converged (vectors equal after %.0f ms; bound %d ms)", took, bound);
    print_counts();
    check_alive();
    check_counters();
    check_audit();
    check_config_archive();
    check_probes();
    check_refusals();
    check_verify();
    check_alive();
    say("passed");
}

static int teardown(void **state)
{
    (void)state;
    clients_stop();
    for (size_t k = 0; k < NN && k < C.n; k++)
        if (C.node[k].t.running)
            kill(C.node[k].t.proc.pid, SIGCONT);
    jv_cluster_fini(&C);
    clients_free();
    ns_fini();
    return 0;
}

int main(int argc, char **argv)
{
    const char *s = getenv("JV_NEMESIS_SECONDS");
    if (argc > 1)
        SECONDS = atof(argv[1]);
    if (s && *s)
        SECONDS = atof(s);
    if (argc > 2)
        MODE = argv[2];
    if (SECONDS <= 0 || (strcmp(MODE, "all") && strcmp(MODE, "links") &&
                         strcmp(MODE, "nodes"))) {
        fprintf(stderr, "usage: nemesis_test [SECONDS [links|nodes|all]]\n");
        return 2;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_nemesis, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
