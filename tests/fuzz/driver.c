/*
 * driver.c - runs a harness without libFuzzer: every file of its corpus
 * (tests/fuzz/corpus/<harness>/, under JV_SOURCE_DIR: inputs libFuzzer
 * found, crashes fixed since), its valid seeds, mutations of them (bit
 * flips, byte sets, insertions, deletions, truncations, splices), and
 * random inputs. JV_SEED replays a run; JV_FUZZ_ITERS sets the number of
 * inputs (default 200000). JV_FUZZ_SEEDS_OUT=dir writes the valid seeds
 * there as files and exits: a starting corpus for libFuzzer.
 */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "fuzz.h"
#include "testutil.h"

#define MAX_SEEDS      64
#define FUZZ_MAX_INPUT (64 * 1024)

static void mutate(jv_rng *r, jv_buf *in, const jv_buf *seeds, size_t nseeds)
{
    unsigned rounds = 1 + (unsigned)jv_rng_below(r, 4);
    for (unsigned k = 0; k < rounds; k++) {
        size_t n = in->len;
        switch (jv_rng_below(r, 6)) {
        case 0: /* flip a bit */
            if (n)
                in->data[jv_rng_below(r, n)] ^=
                    (uint8_t)(1u << jv_rng_below(r, 8));
            break;
        case 1: /* set a byte to an interesting value */
            if (n) {
                static const uint8_t v[] = {0x00, 0x7f, 0x80, 0xc0, 0xc4,
                                            0xcc, 0xcf, 0xd9, 0xdc, 0xdd,
                                            0xff, 0x90, 0xa0, 0xc6, 0xdb};
                in->data[jv_rng_below(r, n)] = v[jv_rng_below(r, sizeof(v))];
            }
            break;
        case 2: /* insert random bytes */
            if (n < FUZZ_MAX_INPUT - 8) {
                size_t at = (size_t)jv_rng_below(r, n + 1);
                size_t k2 = 1 + (size_t)jv_rng_below(r, 8);
                jv_buf_reserve(in, k2);
                if (jv_buf_err(in))
                    return;
                memmove(in->data + at + k2, in->data + at, n - at);
                jv_rng_bytes(r, in->data + at, k2);
                in->len += k2;
            }
            break;
        case 3: /* delete a run */
            if (n) {
                size_t at = (size_t)jv_rng_below(r, n);
                size_t k2 = 1 + (size_t)jv_rng_below(r, n - at);
                memmove(in->data + at, in->data + at + k2, n - at - k2);
                in->len -= k2;
            }
            break;
        case 4: /* truncate */
            in->len = (size_t)jv_rng_below(r, n + 1);
            break;
        default: /* splice the tail of another seed */
            if (nseeds) {
                const jv_buf *o = &seeds[jv_rng_below(r, nseeds)];
                size_t at = (size_t)jv_rng_below(r, n + 1);
                size_t from = (size_t)jv_rng_below(r, o->len + 1);
                in->len = at;
                jv_buf_append(in, o->data + from, o->len - from);
            }
            break;
        }
    }
}

#ifndef JV_FUZZ_NAME
#error "JV_FUZZ_NAME: the harness's name, its corpus directory"
#endif

/* Feeds every regular file of the harness's corpus directory; returns how
 * many (0 when the directory does not exist). */
static size_t replay_corpus(void)
{
    const char *src = getenv("JV_SOURCE_DIR");
    char dir[4096], path[4096 + 256];
    size_t n = 0;
    snprintf(dir, sizeof(dir), "%s/tests/fuzz/corpus/%s",
             src && *src ? src : ".", JV_FUZZ_NAME);
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        uint8_t *buf = malloc(FUZZ_MAX_INPUT);
        size_t len = buf ? fread(buf, 1, FUZZ_MAX_INPUT, f) : 0;
        fclose(f);
        if (buf) {
            LLVMFuzzerTestOneInput(len ? buf : (const uint8_t *)"", len);
            n++;
        }
        free(buf);
    }
    closedir(d);
    return n;
}

static int write_seeds(const char *dir, const jv_buf *seeds, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/seed-%02zu", dir, i);
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(seeds[i].data, 1, seeds[i].len, f) != seeds[i].len) {
            fprintf(stderr, "%s: cannot write\n", path);
            if (f)
                fclose(f);
            return 1;
        }
        fclose(f);
    }
    printf("%zu seeds written to %s\n", n, dir);
    return 0;
}

int main(void)
{
    jv_buf seeds[MAX_SEEDS], in;
    jv_rng r;
    uint64_t seed = jv_test_seed();
    uint64_t iters = 200000;
    const char *env = getenv("JV_FUZZ_ITERS");
    if (env && *env)
        iters = strtoull(env, NULL, 0);
    for (size_t i = 0; i < MAX_SEEDS; i++)
        jv_buf_init(&seeds[i]);
    jv_buf_init(&in);
    size_t nseeds = jv_fuzz_seeds(seeds, MAX_SEEDS);
    const char *out = getenv("JV_FUZZ_SEEDS_OUT");
    if (out && *out) {
        int rc = write_seeds(out, seeds, nseeds);
        for (size_t i = 0; i < MAX_SEEDS; i++)
            jv_buf_fini(&seeds[i]);
        jv_buf_fini(&in);
        return rc;
    }
    size_t ncorpus = replay_corpus();
    jv_rng_seed(&r, seed);
    for (size_t i = 0; i < nseeds; i++)
        LLVMFuzzerTestOneInput(seeds[i].data, seeds[i].len);
    for (uint64_t i = 0; i < iters; i++) {
        jv_buf_reset(&in);
        if (nseeds && jv_rng_chance(&r, 9, 10)) {
            const jv_buf *s = &seeds[jv_rng_below(&r, nseeds)];
            jv_buf_append(&in, s->data, s->len);
            mutate(&r, &in, seeds, nseeds);
        } else {
            size_t n = (size_t)jv_rng_below(&r, 256);
            jv_buf_reserve(&in, n);
            if (!jv_buf_err(&in)) {
                jv_rng_bytes(&r, in.data, n);
                in.len = n;
            }
        }
        if (jv_buf_err(&in)) {
            fprintf(stderr, "out of memory\n");
            return 1;
        }
        LLVMFuzzerTestOneInput(in.len ? in.data : (const uint8_t *)"", in.len);
    }
    printf("%zu corpus files, %zu seeds and %" PRIu64
           " generated inputs: no failure\n",
           ncorpus, nseeds, iters);
    for (size_t i = 0; i < MAX_SEEDS; i++)
        jv_buf_fini(&seeds[i]);
    jv_buf_fini(&in);
    return 0;
}
