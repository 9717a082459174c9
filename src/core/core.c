#include "core/util.h"
#include "core/rng.h"
#include "gemmnet/gemmnet.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif
#include <cblas.h>

_Noreturn void gn_assert_fail(const char *what, const char *file, int line)
{
    fprintf(stderr, "gemmnet: internal error: %s:%d: assertion '%s' failed\n", file, line, what);
    abort();
}

/* Buffers from this size on (activation arenas, weights and their gradients, convolution
 * workspaces) are placed on 2 MiB boundaries and offered to the kernel for transparent huge
 * pages (Linux's default policy is "madvise": only regions that ask get them). The passes
 * over them stream through many rows at once (a Winograd block writes 36), where 4 KiB
 * pages cost a TLB miss per row. */
#define GN_HUGE_MIN ((size_t)4 << 20)
#define GN_HUGE_ALIGN ((size_t)2 << 20)

void *gn_alloc(size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size) return NULL;
    size_t n = count * size;
    n = (n + 63) & ~(size_t)63;
    if (n == 0) n = 64;
    void *p;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (n >= GN_HUGE_MIN && n <= SIZE_MAX - GN_HUGE_ALIGN) {
        n = (n + GN_HUGE_ALIGN - 1) & ~(GN_HUGE_ALIGN - 1);
        p = aligned_alloc(GN_HUGE_ALIGN, n);
        if (p) madvise(p, n, MADV_HUGEPAGE); /* advice only: without it, 4 KiB pages */
    } else
#endif
        p = aligned_alloc(64, n);
    if (p) memset(p, 0, n);
    return p;
}

void gn_free(void *p) { free(p); }

void gn_parallel_slices(size_t n, size_t min_n, void (*fn)(void *arg, size_t a, size_t b),
                        void *arg)
{
#ifdef _OPENMP
    if (n >= min_n && omp_get_max_threads() > 1 && !omp_in_parallel()) {
#pragma omp parallel
        {
            size_t t = (size_t)omp_get_thread_num(), nt = (size_t)omp_get_num_threads();
            size_t per = (n + nt - 1) / nt, a = t * per, b = a + per < n ? a + per : n;
            if (a < b) fn(arg, a, b);
        }
        return;
    }
#else
    (void)min_n;
#endif
    if (n) fn(arg, 0, n);
}

static void zero_slice(void *p, size_t a, size_t b)
{
    memset((float *)p + a, 0, (b - a) * sizeof(float));
}

void gn_zero_floats(float *p, size_t n)
{
    /* One thread writes about 23 GB/s on the development machine, two about 50: a big buffer
     * (a layer's gradient at batch 64, the 47 MB of ResNet-18's weight gradients) is cut
     * into one contiguous slice per thread. */
    gn_parallel_slices(n, (size_t)1 << 18, zero_slice, p);
}

char *gn_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

double gn_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

double gn_rng_normal(gn_rng *r)
{
    double u1 = gn_rng_uniform(r), u2 = gn_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

int gn_err_set(gn_err *err, int code, const char *fmt, ...)
{
    if (!err) return code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return code;
}

int gn_err_wrap(gn_err *err, const char *fmt, ...)
{
    if (!err) return GN_EINVAL;
    char prefix[512], old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    snprintf(err->msg, sizeof err->msg, "%.500s: %.500s", prefix, old);
    return err->code;
}

const char *gn_status_name(int code)
{
    static const char *const names[] = {"ok", "out of memory", "I/O error", "bad format",
                                        "config error", "shape mismatch", "invalid argument",
                                        "not supported", "loss is not finite", "interrupted"};
    if (code < 0 || code >= (int)(sizeof names / sizeof names[0])) return "unknown error";
    return names[code];
}

static int g_threads = 0;

void gn_set_threads(int n)
{
#ifdef _OPENMP
    if (n <= 0) n = omp_get_num_procs();
    omp_set_num_threads(n);
#else
    n = 1;
#endif
    g_threads = n;
    openblas_set_num_threads(n);
}

int gn_get_threads(void)
{
    if (g_threads > 0) return g_threads;
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

int gn_process_cpus(cpu_set_t *set)
{
    CPU_ZERO(set);
#ifdef _OPENMP
    if (omp_get_proc_bind() != omp_proc_bind_false) {
        for (int p = 0, np = omp_get_num_places(); p < np; p++) {
            int n = omp_get_place_num_procs(p), *ids = n > 0 ? malloc(sizeof(int) * n) : NULL;
            if (!ids) continue;
            omp_get_place_proc_ids(p, ids);
            for (int i = 0; i < n; i++)
                if (ids[i] >= 0 && ids[i] < CPU_SETSIZE) CPU_SET(ids[i], set);
            free(ids);
        }
        if (CPU_COUNT(set) > 0) return CPU_COUNT(set);
    }
#endif
    if (sched_getaffinity(0, sizeof *set, set) == 0 && CPU_COUNT(set) > 0) return CPU_COUNT(set);
    CPU_ZERO(set); /* no mask to read: every online processor */
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) n = 1;
    for (long i = 0; i < n && i < CPU_SETSIZE; i++) CPU_SET((int)i, set);
    return CPU_COUNT(set);
}

const char *gn_blas_core_note(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    const char *env = getenv("OPENBLAS_CORETYPE"), *core = openblas_get_corename();
    if (!env || !*env || !core) return NULL;
    /* OpenBLAS's cores with AVX2 at most, on a CPU (and OS) that runs AVX-512 */
    static const char *const avx2_cores[] = {"Haswell", "Zen", "Sandybridge", "Nehalem",
                                             "Core2", "Penryn", "Dunnington", "Atom"};
    int older = 0;
    for (size_t i = 0; i < sizeof avx2_cores / sizeof avx2_cores[0]; i++)
        older |= !strcmp(core, avx2_cores[i]);
    __builtin_cpu_init();
    if (!older || !__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") ||
        !__builtin_cpu_supports("avx512dq") || !__builtin_cpu_supports("avx512vl"))
        return NULL;
    static char buf[256];
    snprintf(buf, sizeof buf,
             "OPENBLAS_CORETYPE=%s holds OpenBLAS to its %s kernels on a CPU with AVX-512; "
             "unset, OpenBLAS picks kernels for this CPU (2x the sgemm rate on the development "
             "machine, docs/performance.md)",
             env, core);
    return buf;
#else
    return NULL;
#endif
}

const char *gn_blas_info(void)
{
    static char buf[160];
    const char *cfg = openblas_get_config();
    int par = openblas_get_parallel();
    snprintf(buf, sizeof buf, "%s (%s)", cfg ? cfg : "OpenBLAS",
             par == 0 ? "sequential" : par == 1 ? "pthreads" : par == 2 ? "openmp" : "?");
    return buf;
}
