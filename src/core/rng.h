/* Counter-based random numbers: every draw is a pure function of (key, counter), so results do
 * not depend on thread timing or on how work is split. Keys are derived by mixing, e.g.
 * gn_rng_key(seed, epoch, sample). */
#ifndef GN_RNG_H
#define GN_RNG_H

#include <stdint.h>

static inline uint64_t gn_mix64(uint64_t z)
{
    /* splitmix64's finalizer */
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline uint64_t gn_rng_key(uint64_t a, uint64_t b, uint64_t c)
{
    return gn_mix64(gn_mix64(gn_mix64(a) ^ b) ^ c);
}

/* A small sequential generator seeded from a key; state is one word, so it is easy to save. */
typedef struct gn_rng {
    uint64_t s;
} gn_rng;

static inline gn_rng gn_rng_make(uint64_t key) { gn_rng r = {gn_mix64(key)}; return r; }

static inline uint64_t gn_rng_u64(gn_rng *r)
{
    r->s += 0x9e3779b97f4a7c15ull;
    uint64_t z = r->s;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static inline double gn_rng_uniform(gn_rng *r) { return (double)(gn_rng_u64(r) >> 11) * 0x1.0p-53; }

/* Uniform integer in [0, n). */
static inline uint64_t gn_rng_below(gn_rng *r, uint64_t n)
{
    return n ? (uint64_t)(gn_rng_uniform(r) * (double)n) % n : 0;
}

/* Standard normal (Box-Muller). */
double gn_rng_normal(gn_rng *r);

#endif
