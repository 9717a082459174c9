/* Shared by the fast kernels (conv.c, winograd.c): the OpenMP thread id, and the profiling
 * clock of `gemmnet bench --layers`. t, when not NULL, gets seconds added: t[0] for data
 * movement (im2col/col2im, Winograd transforms), t[1] for sgemm. In a parallel loop each thread
 * adds into its own pair, and kprof_merge averages the pairs over the threads afterwards. */
#ifndef GN_KERNELS_KPROF_H
#define GN_KERNELS_KPROF_H

#include "core/util.h"
#ifdef _OPENMP
#include <omp.h>
#endif

/* Per-thread pairs a kernel keeps on its stack; loops use at most this many threads. */
#define KPROF_MAX_THREADS 256

static inline int kernel_thread_id(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* The start of a lap: now, or 0 when not profiling. */
static inline double kprof_now(const double *t) { return t ? gn_now() : 0; }

/* t[i] += the time since *since, which moves to now. */
static inline void kprof_lap(double *t, int i, double *since)
{
    if (!t) return;
    double now = gn_now();
    t[i] += now - *since;
    *since = now;
}

/* prof += the per-thread pairs of nt threads, averaged (wall-clock equivalents). */
static inline void kprof_merge(double *prof, double part[][2], int nt)
{
    if (!prof) return;
    for (int i = 0; i < nt && i < KPROF_MAX_THREADS; i++) {
        prof[0] += part[i][0] / nt;
        prof[1] += part[i][1] / nt;
    }
}

#endif
