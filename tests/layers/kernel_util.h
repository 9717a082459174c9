/* Helpers for the kernel tests (checkasm style): buffers with guard values on both sides,
 * random fills, the worst relative error, and the thread count. */
#ifndef GN_TEST_KERNEL_UTIL_H
#define GN_TEST_KERNEL_UTIL_H

#include "check.h"
#include "core/rng.h"

#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* Threads an OpenMP loop may use here (1 without OpenMP). */
static inline int kernel_util_max_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

#define GUARD 64
static const float guard_val = -12345.25f;

/* n floats with GUARD guard values on each side; returns the start of the usable part,
 * 64-byte aligned as gemmnet's own buffers (gn_alloc): kernels that take a faster path on
 * aligned rows (Winograd's streamed U) take it here too. */
static inline float *guarded(size_t n)
{
    float *p = aligned_alloc(64, ((n + 2 * GUARD) * sizeof *p + 63) & ~(size_t)63);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    for (size_t i = 0; i < n + 2 * GUARD; i++) p[i] = guard_val;
    return p + GUARD;
}

static inline int guards_ok(const float *p, size_t n)
{
    for (int i = 1; i <= GUARD; i++)
        if (p[-i] != guard_val || p[n + (size_t)i - 1] != guard_val) return 0;
    return 1;
}

static inline void unguard(float *p)
{
    if (p) free(p - GUARD);
}

static inline void fill(float *p, size_t n, gn_rng *r)
{
    for (size_t i = 0; i < n; i++) p[i] = (float)(2 * gn_rng_uniform(r) - 1);
}

/* worst |a - b| / max(|b|, 1) */
static inline double max_err(const float *a, const float *b, size_t n)
{
    double w = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]) / fmax(fabs((double)b[i]), 1.0);
        if (!(e <= w)) w = e; /* NaN counts as worst */
    }
    return w;
}

#endif
