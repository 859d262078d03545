#include "testutil.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void jv_rng_seed(jv_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t jv_rng_next(jv_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t jv_rng_below(jv_rng *r, uint64_t n)
{
    /* Lemire's rejection keeps the distribution uniform. */
    uint64_t limit = -n % n, x;
    do
        x = jv_rng_next(r);
    while (x < limit);
    return x % n;
}

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
            seed = splitmix(&x);
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
        uint64_t v = splitmix(&x);
        memcpy(id.b + k, &v, 8);
    }
    return id;
}
