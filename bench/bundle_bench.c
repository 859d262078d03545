/*
 * bundle_bench.c - carrying 1,000,000 operations by bundle, against the
 * catch-up over the network in the same run.
 *
 * Three real nodes: A and B peers of each other, C connected to nobody.
 * B and C are down while A takes N operations (POST /v1/batch, 1000 per
 * request, the mix of repl_bench); then `jarvisctl bundle create --all`
 * on A, `jarvisctl bundle apply` on C (operations per second of each,
 * the bundle's size), and B started: the time until its vector equals A's
 * gives the network's catch-up rate.
 *
 * Usage: bundle_bench [--ops N]   (default 1000000)
 * Binaries are taken from $JV_BIN_DIR, else from this program's directory.
 * Not a test: it prints figures.
 */
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster.h"
#include "testutil.h"

enum {
    A,
    B,
    C_
};

static jv_rng rng;

static void die(jv_cluster *c, const char *what)
{
    fprintf(stderr, "bundle_bench: %s: %s\n", what, c ? c->err : "");
    if (c) {
        jv_cluster_dump_logs(c);
        jv_cluster_fini(c);
    }
    exit(1);
}

/* n operations that do not coalesce (jv_cluster_batch_body). */
static char *batch_body(unsigned long long base, unsigned n)
{
    char *b = jv_cluster_batch_body(&rng, base, n, false);
    if (!b)
        die(NULL, "out of memory");
    return b;
}

static long long seq_of(jv_cluster *c, size_t i, size_t of)
{
    json_t *vv = jv_cluster_vv(c, i);
    if (!vv)
        die(c, "GET /v1/status");
    long long s = json_integer_value(json_object_get(vv, c->node[of].id));
    json_decref(vv);
    return s;
}

static void ctl(jv_cluster *c, size_t i, const char *a, const char *b,
                const char *d, const char *e, const char *f, const char *g)
{
    jv_proc_result r;
    if (jv_cluster_ctl(c, i, &r, "--timeout", "600", a, b, d, e, f, g,
                       (char *)NULL) != 0 ||
        r.status != 0) {
        fprintf(stderr, "jarvisctl %s %s: %s\n", a, b, r.err ? r.err : "");
        die(c, "jarvisctl failed");
    }
    jv_proc_result_fini(&r);
}

int main(int argc, char **argv)
{
    unsigned long long total = 1000000;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--ops") && i + 1 < argc)
            total = strtoull(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: bundle_bench [--ops N]\n");
            return 2;
        }
    }
    if (total < 1000)
        return 2;
    if (jv_cluster_bin_dir_default() != 0)
        die(NULL, "set JV_BIN_DIR to the directory of jarvisd");
    jv_rng_seed(&rng, jv_test_seed());
    static jv_cluster c;
    jv_cluster_opts o = {.n = 3};
    size_t pa = B, pb = A;
    if (jv_cluster_init(&c, &o) || jv_cluster_write_config(&c, A, &pa, 1) ||
        jv_cluster_write_config(&c, B, &pb, 1) ||
        jv_cluster_write_config(&c, C_, NULL, 0) || jv_cluster_start(&c, A) ||
        jv_cluster_start(&c, C_))
        die(&c, "start");
    printf("bundle_bench: %llu operations, real jarvisd processes, %ld "
           "cores\n",
           total, sysconf(_SC_NPROCESSORS_ONLN));

    double t0 = jv_cluster_now_ms();
    for (unsigned long long done = 0; done < total; done += 1000) {
        unsigned n = total - done < 1000 ? (unsigned)(total - done) : 1000;
        char *body = batch_body(done, n);
        jv_http_resp r;
        if (jv_cluster_http(&c, A, "POST", "/v1/batch", body, &r) ||
            r.status != 200)
            die(&c, "a write failed");
        jv_http_resp_fini(&r);
        free(body);
    }
    double wrote = jv_cluster_now_ms() - t0;
    long long ops = seq_of(&c, A, A);
    printf("   written on A: %lld operations in %.1f s (%.0f ops/s)\n", ops,
           wrote / 1000, (double)ops / (wrote / 1000));

    char file[700];
    snprintf(file, sizeof file, "%s/all.bundle", c.root);
    t0 = jv_cluster_now_ms();
    ctl(&c, A, "bundle", "create", "-o", file, "--all", NULL);
    double made = jv_cluster_now_ms() - t0;
    struct stat sb;
    if (stat(file, &sb) != 0)
        die(&c, "no bundle");
    t0 = jv_cluster_now_ms();
    ctl(&c, C_, "bundle", "apply", file, NULL, NULL, NULL);
    double applied = jv_cluster_now_ms() - t0;
    if (seq_of(&c, C_, A) != seq_of(&c, A, A))
        die(&c, "C lacks some of A's operations after the bundle");
    printf("   bundle of everything: %.1f MB (%.1f bytes/operation)\n",
           (double)sb.st_size / 1e6, (double)sb.st_size / (double)ops);
    printf("   created in %.1f s (%.0f ops/s), applied on C in %.1f s "
           "(%.0f ops/s)\n",
           made / 1000, (double)ops / (made / 1000), applied / 1000,
           (double)ops / (applied / 1000));

    t0 = jv_cluster_now_ms();
    if (jv_cluster_start(&c, B))
        die(&c, "start B");
    while (seq_of(&c, B, A) < seq_of(&c, A, A)) {
        if (jv_cluster_now_ms() - t0 > 600000)
            die(&c, "B did not catch up");
        jv_cluster_sleep_ms(20);
    }
    double caught = jv_cluster_now_ms() - t0;
    printf("   network catch-up of B: %.1f s from its start (%.0f ops/s)\n",
           caught / 1000, (double)ops / (caught / 1000));
    jv_cluster_fini(&c);
    return 0;
}
