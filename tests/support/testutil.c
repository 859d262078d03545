#include "testutil.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int jv_rng_chance(jv_rng *r, unsigned num, unsigned den)
{
    return jv_rng_below(r, den) < num;
}

void jv_rng_bytes(jv_rng *r, void *p, size_t n)
{
    uint8_t *b = p;
    while (n) {
        uint64_t x = jv_rng_next(r);
        size_t k = n < 8 ? n : 8;
        memcpy(b, &x, k);
        b += k;
        n -= k;
    }
}

void jv_rng_shuffle(jv_rng *r, void *base, size_t n, size_t size)
{
    uint8_t *a = base, tmp[256];
    if (size > sizeof(tmp))
        abort();
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)jv_rng_below(r, i);
        memcpy(tmp, a + (i - 1) * size, size);
        memcpy(a + (i - 1) * size, a + j * size, size);
        memcpy(a + j * size, tmp, size);
    }
}

uint64_t jv_test_seed(void)
{
    static uint64_t seed;
    static int done;
    if (!done) {
        const char *env = getenv("JV_SEED");
        if (env && *env) {
            seed = strtoull(env, NULL, 0);
        } else {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            uint64_t x = (uint64_t)ts.tv_sec * 1000000007ull ^
                         (uint64_t)ts.tv_nsec ^ (uint64_t)getpid() << 32;
            seed = jv_rng_mix(&x);
        }
        printf("seed: %" PRIu64 " (replay with JV_SEED=%" PRIu64 ")\n", seed,
               seed);
        fflush(stdout);
        done = 1;
    }
    return seed;
}

uint64_t jv_test_schedules(uint64_t def)
{
    const char *env = getenv("JV_SCHEDULES");
    if (env && *env) {
        uint64_t n = strtoull(env, NULL, 0);
        if (n > 0)
            return n;
    }
    return def;
}

jv_id jv_test_id(unsigned i)
{
    jv_id id;
    uint64_t x = 0x5eed0000u + i;
    for (size_t k = 0; k < JV_ID_LEN; k += 8) {
        uint64_t v = jv_rng_mix(&x);
        memcpy(id.b + k, &v, 8);
    }
    return id;
}
