/*
 * watch_bench.c - what change streams cost the writer: one real jarvisd
 * (tests/support/cluster.h), W client threads writing as fast as the node
 * takes it (POST /v1/batch, 100 operations per request: audit entries,
 * archive adds, counter increments), in alternating phases of the same
 * run:
 *
 *   baseline  nobody watches;
 *   watchers  200 streams (GET /v1/watch, every kind) open and read by
 *             one client thread as fast as it can; a stream cut off as
 *             "lagged" is opened again at once from the cursor it was
 *             given (Last-Event-ID), as a real client resumes.
 *
 * Printed per phase: operations committed per second (what the node
 * acknowledged), and for the watcher phases the events received, the
 * streams cut off and the bytes read; then the watchers' throughput over
 * the baseline's (goal: at least 0.90, i.e. under 10 % cost): the median
 * of the rounds' ratios (each round is a baseline phase and a watcher
 * phase back to back, so that other load on the machine weighs on both
 * alike) and the ratio of the means. The node and the clients share this
 * machine's cores.
 *
 * Usage: watch_bench [--secs S] (default 5 per phase) [--rounds R]
 * (default 5) [--watchers N] (default 200) [--writers W] (default 4)
 * [--quick] (3 rounds of 3 s phases)
 * [--query Q] (the streams' query string, e.g. kind=node: what the
 * machinery costs when the streams' clients are not sent every change)
 * Binaries are taken from $JV_BIN_DIR, else from this program's directory.
 * Not a test: it prints figures.
 */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster.h"
#include "sse.h"
#include "testutil.h"

#define PER_REQUEST  100
#define MAX_WATCHERS 1000

static jv_cluster C;
static atomic_bool stop_writing, stop_watching;
static atomic_ullong ops_done;
static char auth[400];
static char watch_path[600] = "/v1/watch";

static void die(const char *what)
{
    fprintf(stderr, "watch_bench: %s: %s\n", what, C.err);
    jv_cluster_dump_logs(&C);
    jv_cluster_fini(&C);
    exit(1);
}

static size_t discard(char *p, size_t s, size_t n, void *a)
{
    (void)p, (void)a;
    return s * n;
}

typedef struct {
    unsigned id;
    unsigned long long seed;
    long failed;
} writer_arg;

static void *writer(void *p)
{
    writer_arg *w = p;
    jv_rng rng;
    char url[700];
    jv_rng_seed(&rng, w->seed);
    snprintf(url, sizeof url, "%s/v1/batch", C.node[0].t.url);
    CURL *e = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, auth);
    h = curl_slist_append(h, "Content-Type: application/json");
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    unsigned long long base = (unsigned long long)w->id << 40;
    while (!atomic_load(&stop_writing)) {
        char *body = jv_cluster_batch_body(&rng, base, PER_REQUEST, false);
        base += PER_REQUEST;
        long status = 0;
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
        if (curl_easy_perform(e) == CURLE_OK)
            curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
        if (status == 200)
            atomic_fetch_add(&ops_done, PER_REQUEST);
        else
            w->failed++;
        free(body);
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
    return NULL;
}

typedef struct {
    size_t n;
    unsigned long long events, reopened, bytes;
    long failed;
} watch_arg;

#define LAGGED   "event: lagged\ndata: {\"cursor\":\""
#define TAIL_MAX 64 /* a stream's last bytes: the mark may span two reads */

typedef struct {
    char tail[TAIL_MAX];
    size_t tail_len;
} carry;

static int open_one(jv_sse *s, const char *last_id)
{
    if (jv_sse_open(s, C.node[0].t.url, watch_path, C.node[0].t.admin_key,
                    last_id, 0, 30000) != 0 ||
        s->status != 200) {
        jv_sse_close(s);
        return -1;
    }
    return 0;
}

/* The cursor of a "lagged" event in what was read (with the bytes kept
 * from the read before), into id; false when there is none. */
static bool lagged_cursor(carry *cy, const char *buf, size_t got, char *id,
                          size_t idlen)
{
    char scan[TAIL_MAX * 2 + 1];
    size_t head = got < TAIL_MAX ? got : TAIL_MAX;
    bool found = false;
    /* The mark is near the end of a stream's output: the tail suffices. */
    memcpy(scan, cy->tail, cy->tail_len);
    memcpy(scan + cy->tail_len, buf + got - head, head);
    size_t n = cy->tail_len + head;
    scan[n] = 0;
    const char *m = memmem(scan, n, LAGGED, sizeof(LAGGED) - 1);
    if (m) {
        const char *v = m + sizeof(LAGGED) - 1,
                   *q = memchr(v, '"', n - (size_t)(v - scan));
        if (q && (size_t)(q - v) < idlen) {
            memcpy(id, v, (size_t)(q - v));
            id[q - v] = 0;
            found = true;
        }
    }
    size_t keep = n < TAIL_MAX ? n : TAIL_MAX;
    memmove(cy->tail, scan + n - keep, keep);
    cy->tail_len = keep;
    return found;
}

/* Reads every stream as fast as it can; counts events by their id lines
 * (cheap: no parsing beyond that). A stream cut off as lagged ends its
 * answer, then the node closes the connection; the mark in the text comes
 * first, with the cursor to resume from. */
static void *watchers(void *p)
{
    watch_arg *a = p;
    jv_sse *s = calloc(a->n, sizeof(*s));
    carry *cy = calloc(a->n, sizeof(*cy));
    struct pollfd *pf = calloc(a->n, sizeof(*pf));
    char *buf = malloc(1 << 16);
    char id[32];
    for (size_t i = 0; i < a->n; i++)
        if (open_one(&s[i], NULL) != 0)
            a->failed++;
    while (!atomic_load(&stop_watching)) {
        for (size_t i = 0; i < a->n; i++)
            pf[i] = (struct pollfd){s[i].fd, POLLIN, 0};
        if (poll(pf, a->n, 100) <= 0)
            continue;
        for (size_t i = 0; i < a->n; i++) {
            if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t got = read(s[i].fd, buf, 1 << 16);
            bool lagged = got > 0 && lagged_cursor(&cy[i], buf, (size_t)got, id,
                                                   sizeof id);
            if (got > 0) {
                a->bytes += (unsigned long long)got;
                for (const char *q = buf, *end = buf + got;
                     (q = memmem(q, (size_t)(end - q), "\nid:", 4)) != NULL;
                     q += 4)
                    a->events++;
            }
            if (got <= 0 || lagged) {
                jv_sse_close(&s[i]);
                cy[i].tail_len = 0;
                a->reopened++;
                if (open_one(&s[i], lagged ? id : NULL) != 0)
                    a->failed++;
            }
        }
    }
    for (size_t i = 0; i < a->n; i++)
        jv_sse_close(&s[i]);
    free(cy);
    free(s);
    free(pf);
    free(buf);
    return NULL;
}

static double phase(int secs, size_t nwriters, size_t nwatch, watch_arg *wa)
{
    pthread_t wt[16], rt;
    writer_arg w[16];
    static unsigned round;
    memset(wa, 0, sizeof(*wa));
    wa->n = nwatch;
    atomic_store(&stop_watching, false);
    if (nwatch && pthread_create(&rt, NULL, watchers, wa) != 0)
        die("thread");
    if (nwatch) /* let the streams open before measuring */
        jv_cluster_sleep_ms(1000);
    atomic_store(&stop_writing, false);
    atomic_store(&ops_done, 0);
    for (size_t i = 0; i < nwriters; i++) {
        w[i] = (writer_arg){round * 16 + (unsigned)i + 1,
                            jv_test_seed() + round * 16 + i, 0};
        if (pthread_create(&wt[i], NULL, writer, &w[i]) != 0)
            die("thread");
    }
    round++;
    double t0 = jv_cluster_now_ms();
    jv_cluster_sleep_ms(secs * 1000L);
    unsigned long long ops = atomic_load(&ops_done);
    double t1 = jv_cluster_now_ms();
    atomic_store(&stop_writing, true);
    for (size_t i = 0; i < nwriters; i++)
        pthread_join(wt[i], NULL);
    atomic_store(&stop_watching, true);
    if (nwatch)
        pthread_join(rt, NULL);
    return (double)ops / ((t1 - t0) / 1000.0);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#define MAX_ROUNDS 50

int main(int argc, char **argv)
{
    int secs = 5, rounds = 5;
    size_t nwatch = 200, nwriters = 4;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick"))
            secs = 3, rounds = 3;
        else if (!strcmp(argv[i], "--secs") && i + 1 < argc)
            secs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--watchers") && i + 1 < argc)
            nwatch = (size_t)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--query") && i + 1 < argc)
            snprintf(watch_path, sizeof watch_path, "/v1/watch?%s", argv[++i]);
        else if (!strcmp(argv[i], "--writers") && i + 1 < argc)
            nwriters = (size_t)atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: watch_bench [--secs S] [--rounds R] "
                            "[--watchers N] [--writers W] [--query Q] "
                            "[--quick]\n");
            return 2;
        }
    }
    if (secs < 1 || rounds < 1 || rounds > MAX_ROUNDS ||
        nwatch > MAX_WATCHERS || nwriters < 1 || nwriters > 16) {
        fprintf(stderr, "watch_bench: out of range\n");
        return 2;
    }
    curl_global_init(CURL_GLOBAL_ALL);
    if (jv_cluster_bin_dir_default() != 0) {
        fprintf(stderr, "watch_bench: set JV_BIN_DIR to jarvisd's dir\n");
        return 2;
    }
    static char *const flags[] = {"--rate-limit", "0", NULL};
    jv_cluster_opts o = {.n = 1, .flags = flags, .no_peers = true};
    if (jv_cluster_init(&C, &o) != 0 || jv_cluster_start(&C, 0) != 0)
        die("cannot start the node");
    snprintf(auth, sizeof auth, "Authorization: Bearer %s",
             C.node[0].t.admin_key);

    printf("\nstreams ask for %s\n", watch_path);
    printf("\n%-9s %5s %8s %10s %12s %10s %10s %6s\n", "phase", "round",
           "streams", "ops/s", "events/s", "MiB/s", "cut off", "ratio");
    double base = 0, with = 0, ratio[MAX_ROUNDS];
    watch_arg wa;
    for (int r = 0; r < rounds; r++) {
        double b = phase(secs, nwriters, 0, &wa);
        printf("%-9s %5d %8d %10.0f\n", "baseline", r + 1, 0, b);
        double w = phase(secs, nwriters, nwatch, &wa);
        ratio[r] = w / b;
        printf("%-9s %5d %8zu %10.0f %12.0f %10.1f %10llu %6.3f\n", "watchers",
               r + 1, nwatch, w, (double)wa.events / secs,
               (double)wa.bytes / secs / (1 << 20), wa.reopened, ratio[r]);
        fflush(stdout);
        base += b, with += w;
    }
    qsort(ratio, (size_t)rounds, sizeof(*ratio), cmp_double);
    double med = rounds % 2 ? ratio[rounds / 2]
                            : (ratio[rounds / 2 - 1] + ratio[rounds / 2]) / 2;
    printf("\nwriter throughput with %zu streams / without: median of %d "
           "rounds %.3f; means %.0f / %.0f ops/s = %.3f (goal: at least "
           "0.90)\n",
           nwatch, rounds, med, with / rounds, base / rounds, with / base);
    jv_cluster_fini(&C);
    curl_global_cleanup();
    return 0;
}
