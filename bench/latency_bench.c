/*
 * latency_bench.c - how long a node takes to answer reads while it works
 * for others: real jarvisd processes (tests/support/cluster.h), node 0
 * loaded with N operations (POST /v1/batch, 1000 per request: audit
 * entries, archive adds, counter increments), then one client reading
 * GET /v1/counters/bench from node 0 over one keep-alive connection, one
 * request after another (with the read cache off, --read-cache 0, so
 * that each read goes to a reader thread and the database, as reads of
 * changing data do), in four phases of the same run:
 *
 *   idle      nothing else happens (the baseline), 5 s;
 *   catch-up  node 1, started empty, fetches all N operations from node 0
 *             (node 0 selects, compresses and sends them), until their
 *             version vectors are equal; node 1 stands in for a peer on
 *             another machine, so it runs at nice 19: its own applying
 *             would otherwise take the cores node 0 and the client share;
 *   backup    POST /v1/backup on node 0, again and again until 5 s
 *             have passed (the files removed after the phase);
 *   verify    POST /v1/verify on node 0 (a replay of the whole log into a
 *             scratch database), until it answers;
 *   receiving the other side of a catch-up: node 2, started empty, fetches
 *             all N operations from nodes 0 and 1 (which now run at nice
 *             19, standing in for peers elsewhere), and the client reads
 *             a counter of node 2's own (GET /v1/counters/mine, written
 *             once at its start) until node 2's vector equals node 0's:
 *             what opening, checking and applying peers' replies costs
 *             the node's own clients.
 *
 * Printed per phase: its duration, the reads made, their p50, p99 and
 * p99.9 latency and the longest read (ms, measured by the client around
 * each request: a stall of the node's loop shows there first, since few
 * reads wait for it), and p99 over the idle p99. Goals: p99 within 2x idle and
 * p99.9 under 5 ms in every phase. Both nodes and the client share this
 * machine's cores.
 *
 * Usage: latency_bench [--ops N] (default 1,000,000) [--quick] (100,000)
 * Binaries are taken from $JV_BIN_DIR, else from this program's directory.
 * Not a test: it prints figures.
 */
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cluster.h"
#include "testutil.h"

#define PER_REQUEST 1000
#define MAX_SAMPLES (4u << 20)

static jv_cluster C;
static jv_rng rng;

static void die(const char *what)
{
    fprintf(stderr, "latency_bench: %s: %s\n", what, C.err);
    jv_cluster_dump_logs(&C);
    jv_cluster_fini(&C);
    exit(1);
}

/* -- the reader ------------------------------------------------------------ */

typedef struct {
    char url[700], auth[400];
    atomic_bool stop;
    double *ms; /* one latency per read of the phase */
    size_t n;
    long failed;
} reader;

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
}

static void *reader_main(void *arg)
{
    reader *rd = arg;
    CURL *e = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, rd->auth);
    if (!e || !h) {
        rd->failed++;
        goto out;
    }
    curl_easy_setopt(e, CURLOPT_URL, rd->url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    while (!atomic_load(&rd->stop) && rd->n < MAX_SAMPLES) {
        long status = 0;
        double t0 = jv_cluster_now_ms();
        CURLcode rc = curl_easy_perform(e);
        double t1 = jv_cluster_now_ms();
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
        if (rc != CURLE_OK || status != 200)
            rd->failed++;
        else
            rd->ms[rd->n++] = t1 - t0;
    }
out:
    curl_slist_free_all(h);
    if (e)
        curl_easy_cleanup(e);
    return NULL;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(const double *v, size_t n, double p)
{
    size_t k = (size_t)((double)n * p / 100.0);
    return n ? v[k < n ? k : n - 1] : 0;
}

/* -- the phases ------------------------------------------------------------ */

typedef enum {
    IDLE,
    CATCHUP,
    BACKUP,
    VERIFY,
    RECEIVE
} phase;

static const char *const names[] = {"idle", "catch-up", "backup", "verify",
                                    "receiving"};

/* POST that must succeed; its JSON answer (NULL when it has none). */
static json_t *post_json(size_t i, const char *path, const char *body)
{
    jv_http_resp r;
    if (jv_cluster_http(&C, i, "POST", path, body, &r) != 0 ||
        r.status / 100 != 2) {
        fprintf(stderr, "POST %s: %ld %.300s\n", path, r.status,
                r.body ? r.body : "");
        jv_http_resp_fini(&r);
        die("a request failed");
    }
    json_t *j = r.len ? json_loadb(r.body, r.len, 0, NULL) : NULL;
    jv_http_resp_fini(&r);
    return j;
}

static void post(size_t i, const char *path, const char *body)
{
    json_decref(post_json(i, path, body));
}

/* Backups of node 0 one after another for at least `ms` (a single one
 * takes a fraction of a second on a fast disk: too few reads for a p99).
 * Their files are removed after the phase (backups_remove): removing
 * one is work of the client's machine, not the node's. */
#define MAX_BACKUPS 1000
static char *backup_file[MAX_BACKUPS];
static unsigned backups_made;
static double backup_mib;

static void backups_for(double ms)
{
    double t0 = jv_cluster_now_ms();
    while (backups_made == 0 ||
           (jv_cluster_now_ms() - t0 < ms && backups_made < MAX_BACKUPS)) {
        char body[64];
        snprintf(body, sizeof body, "{\"path\":\"latency-bench-%u.db\"}",
                 backups_made);
        json_t *j = post_json(0, "/v1/backup", body);
        const char *file = json_string_value(json_object_get(j, "path"));
        if (file == NULL || !(backup_file[backups_made] = strdup(file)))
            die("a backup said no file");
        backup_mib =
            (double)json_integer_value(json_object_get(j, "bytes")) / (1 << 20);
        backups_made++;
        json_decref(j);
    }
}

static void backups_remove(void)
{
    for (unsigned k = 0; k < backups_made; k++) {
        if (unlink(backup_file[k]) != 0)
            perror(backup_file[k]);
        free(backup_file[k]);
    }
}

static bool vv_equal(size_t i, size_t k)
{
    json_t *a = jv_cluster_vv(&C, i), *b = jv_cluster_vv(&C, k);
    bool eq = a && b && json_equal(a, b);
    json_decref(a);
    json_decref(b);
    return eq;
}

/* Waits (30 minutes at most) until node i's vector equals node 0's. */
static void catch_up(size_t i, double t0)
{
    while (!vv_equal(0, i)) {
        if (jv_cluster_now_ms() - t0 > 1800000)
            die(i == 1 ? "node 1 never caught up" : "node 2 never caught up");
        jv_cluster_sleep_ms(20);
    }
}

/* What the phase does while the reader reads; returns when it is over. */
static void work(phase p)
{
    double t0 = jv_cluster_now_ms();
    switch (p) {
    case IDLE:
        jv_cluster_sleep_ms(5000);
        break;
    case CATCHUP: {
        /* Node 1 stands in for a peer on another machine: its applying
         * runs at nice 19 (inherited from this thread at the fork; the
         * reading thread keeps its own), so that what is measured is what
         * serving the catch-up costs node 0, not two nodes on two cores. */
        int was = getpriority(PRIO_PROCESS, 0);
        (void)setpriority(PRIO_PROCESS, 0, 19);
        int rc = jv_cluster_start(&C, 1);
        (void)setpriority(PRIO_PROCESS, 0, was);
        if (rc != 0)
            die("cannot start node 1");
        catch_up(1, t0);
        break;
    }
    case RECEIVE:
        catch_up(2, t0);
        break;
    case BACKUP:
        backups_for(5000);
        break;
    case VERIFY:
        post(0, "/v1/verify", "{}");
        break;
    }
}

/* The client reads node i's counter `name`. */
static void read_from(reader *rd, size_t i, const char *name)
{
    snprintf(rd->url, sizeof rd->url, "%s/v1/counters/%s", C.node[i].t.url,
             name);
    snprintf(rd->auth, sizeof rd->auth, "Authorization: Bearer %s",
             C.node[i].t.admin_key);
}

/* Every thread of process pid at nice `nice` (Linux keeps one per
 * thread; threads started later inherit their creator's). */
static void renice(pid_t pid, int nice)
{
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%d/task", (int)pid);
    DIR *d = opendir(dir);
    struct dirent *e;
    if (!d)
        die("cannot list a node's threads");
    while ((e = readdir(d)) != NULL) {
        int tid = atoi(e->d_name);
        /* ESRCH: the thread ended meanwhile. */
        if (tid > 0 && setpriority(PRIO_PROCESS, (id_t)tid, nice) != 0 &&
            errno != ESRCH)
            die("cannot renice a node's thread");
    }
    closedir(d);
}

/* Before the receiving phase's reads: nodes 0 and 1 step back (nice 19,
 * as peers on other machines), node 2 starts and writes its own counter,
 * and the client turns to it. */
static void receive_prepare(reader *rd)
{
    for (size_t i = 0; i < 2; i++)
        renice(C.node[i].t.proc.pid, 19);
    if (jv_cluster_start(&C, 2) != 0)
        die("cannot start node 2");
    post(2, "/v1/counters/mine/increment", "{\"by\":1}");
    read_from(rd, 2, "mine");
}

static void run_phase(reader *rd, phase p, double *idle_p99)
{
    pthread_t th;
    if (p == RECEIVE)
        receive_prepare(rd);
    rd->n = 0;
    rd->failed = 0;
    atomic_store(&rd->stop, false);
    if (pthread_create(&th, NULL, reader_main, rd) != 0)
        die("pthread_create");
    double t0 = jv_cluster_now_ms();
    work(p);
    double secs = (jv_cluster_now_ms() - t0) / 1000.0;
    atomic_store(&rd->stop, true);
    pthread_join(th, NULL);
    qsort(rd->ms, rd->n, sizeof(rd->ms[0]), cmp_d);
    double p50 = pct(rd->ms, rd->n, 50), p99 = pct(rd->ms, rd->n, 99),
           p999 = pct(rd->ms, rd->n, 99.9), top = rd->n ? rd->ms[rd->n - 1] : 0;
    if (p == IDLE)
        *idle_p99 = p99;
    double ratio = *idle_p99 > 0 ? p99 / *idle_p99 : 0;
    printf("%-9s %8.1f %9zu %7ld %8.3f %8.3f %9.3f %8.2f %8.2f  %s\n", names[p],
           secs, rd->n, rd->failed, p50, p99, p999, top, ratio,
           p == IDLE                    ? "(baseline)"
           : ratio <= 2.0 && p999 < 5.0 ? "goal met"
                                        : "goal missed");
    if (p == BACKUP) {
        printf("          (%u backups of %.0f MiB each)\n", backups_made,
               backup_mib);
        backups_remove();
    }
    fflush(stdout);
}

/* -- loading node 0 -------------------------------------------------------- */

static void load(unsigned long long ops)
{
    double t0 = jv_cluster_now_ms();
    for (unsigned long long base = 0; base < ops; base += PER_REQUEST) {
        char *body = jv_cluster_batch_body(&rng, base, PER_REQUEST, false);
        if (body == NULL)
            die("out of memory");
        post(0, "/v1/batch", body);
        free(body);
    }
    post(0, "/v1/counters/bench/increment", "{\"by\":1}");
    printf("node 0 loaded with %llu operations in %.1f s\n", ops,
           (jv_cluster_now_ms() - t0) / 1000.0);
}

int main(int argc, char **argv)
{
    unsigned long long ops = 1000000;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            ops = 100000;
        else if (strcmp(argv[i], "--ops") == 0 && i + 1 < argc)
            ops = strtoull(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: latency_bench [--ops N] [--quick]\n");
            return 2;
        }
    }
    if (ops < PER_REQUEST || curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
        return 2;
    if (jv_cluster_bin_dir_default() != 0) {
        fprintf(stderr, "latency_bench: set JV_BIN_DIR to jarvisd's dir\n");
        return 2;
    }
    jv_rng_seed(&rng, jv_test_seed());
    /* Every read from the database, on a reader thread: the read cache
     * would answer this one key from memory and measure nothing. */
    static char *const flags[] = {"--rate-limit", "0", "--read-cache", "0",
                                  NULL};
    jv_cluster_opts o = {.n = 3, .flags = flags};
    o.seed = jv_rng_next(&rng);
    if (jv_cluster_init(&C, &o) != 0 || jv_cluster_start(&C, 0) != 0)
        die("cannot start node 0");
    load(ops);

    static reader rd;
    rd.ms = malloc(MAX_SAMPLES * sizeof(double));
    if (rd.ms == NULL)
        die("out of memory");
    read_from(&rd, 0, "bench");
    printf("\n%-9s %8s %9s %7s %8s %8s %9s %8s %8s\n", "phase", "secs", "reads",
           "failed", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "p99/idle");
    double idle_p99 = 0;
    for (phase p = IDLE; p <= RECEIVE; p++)
        run_phase(&rd, p, &idle_p99);
    printf("\ngoals: p99 within 2x idle and p99.9 under 5 ms in every "
           "phase\n");
    free(rd.ms);
    jv_cluster_fini(&C);
    curl_global_cleanup();
    return 0;
}
