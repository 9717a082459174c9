/* Internal helpers shared by every part: the assert macro, aligned allocation, small math. */
#ifndef GN_UTIL_H
#define GN_UTIL_H

#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Programmer mistakes (never bad input): print file and line, then abort. */
#define GN_ASSERT(cond)                                                                     \
    do {                                                                                    \
        if (!(cond)) gn_assert_fail(#cond, __FILE__, __LINE__);                             \
    } while (0)

_Noreturn void gn_assert_fail(const char *what, const char *file, int line);

/* A static function the compiler must inline: a kernel written once with a parameter that each
 * caller passes as a constant, so every copy is specialised. */
#if defined(__GNUC__)
#define GN_INLINE static inline __attribute__((always_inline))
#else
#define GN_INLINE static inline
#endif

/* 64-byte aligned, zero-filled; NULL on failure or overflow. Free with gn_free. */
void *gn_alloc(size_t count, size_t size);
void gn_free(void *p);
/* fn(arg, a, b) over [0, n) in one contiguous slice [a, b) per OpenMP thread when n >= min_n
 * (outside a parallel region), else fn(arg, 0, n) once: for passes over big buffers whose
 * elements are independent, so the result does not depend on the thread count. */
void gn_parallel_slices(size_t n, size_t min_n, void (*fn)(void *arg, size_t a, size_t b),
                        void *arg);
/* p[0..n) = 0, a large buffer by all OpenMP threads (a slice each). */
void gn_zero_floats(float *p, size_t n);

/* The CPUs this process may run on, in *set; returns how many (at least 1: every online
 * processor when the affinity mask cannot be read). With OpenMP
 * binding threads (OMP_PROC_BIND, or OMP_PLACES), libgomp binds the main thread to one place,
 * and every thread or process the main thread starts inherits that place alone: then this is
 * the union of OpenMP's places (the CPUs the process started with), else the calling thread's
 * own affinity mask. Threads that are not OpenMP's (the data loader's decoders) and the
 * processes `gemmnet bench` starts take this set, so they do not all crowd one core. */
int gn_process_cpus(cpu_set_t *set);

char *gn_strdup(const char *s);
/* Seconds from a monotonic clock. */
double gn_now(void);

/* A file written atomically: gn_atomic_open creates "<path>.tmp.<pid>" (O_EXCL; a stale one of
 * this pid is replaced) and gives its FILE in a->f, to write through gn_atomic_write (1 while
 * every write so far succeeded) or stdio. gn_atomic_commit reports a failed write, flushes,
 * fsyncs, closes and renames it over path, then fsyncs the directory (EINVAL/ENOTSUP there are
 * no failure); on any failure before the rename it removes the temporary file. gn_atomic_abort
 * removes it (a no-op on a zeroed, committed or failed one). path must outlive the handle. */
struct gn_err;
typedef struct gn_atomic_file {
    FILE *f;
    const char *path;
    char *tmp; /* "<path>.tmp.<pid>" */
    char *dir; /* path's directory, for its fsync */
    int failed; /* a gn_atomic_write failed */
} gn_atomic_file;

int gn_atomic_open(gn_atomic_file *a, const char *path, struct gn_err *err);
int gn_atomic_write(gn_atomic_file *a, const void *p, size_t n);
int gn_atomic_commit(gn_atomic_file *a, struct gn_err *err);
void gn_atomic_abort(gn_atomic_file *a);

#define GN_MIN(a, b) ((a) < (b) ? (a) : (b))
#define GN_MAX(a, b) ((a) > (b) ? (a) : (b))

#endif
