#include "rng.h"

uint64_t jv_rng_mix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void jv_rng_seed(jv_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = jv_rng_mix(&seed);
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
