/* The direct depthwise kernels against the im2col + per-group sgemm path they replace, on
 * MobileNetV2's depthwise layers: forward + backward (data and weights) milliseconds per call,
 * median of rounds that alternate the two. `meson test -C build --benchmark bench_depthwise`
 * or directly: bench_depthwise [N [threads [size]]] (default 32 images, 2 threads, 112 px).
 * With one thread the times are the process's CPU time, which a busy machine does not inflate. */
#include "core/util.h"
#include "gemmnet/gemmnet.h"
#include "kernels/conv.h"
#include "kernels/depthwise.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static float *alloc_filled(size_t n, unsigned seed)
{
    float *p = gn_alloc(n > 0 ? n : 1, sizeof *p);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    for (size_t i = 0; i < n; i++) p[i] = (float)((i * 2654435761u + seed) % 1000) / 500.0f - 1;
    return p;
}

/* CPU seconds of the process: with one thread a measure that other processes on a shared
 * machine do not inflate (wall time does). */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static int use_cpu_time;

/* one forward + backward (dx and dw) call; seconds */
static double step(conv2d_shape *s, int algo, float *y, const float *x, const float *w,
                   float *dx, float *dw, const float *dy, float *ws, int threads)
{
    s->algo = algo;
    double t0 = use_cpu_time ? cpu_now() : gn_now();
    conv2d_forward(y, x, w, NULL, ws, s, threads);
    conv2d_backward(dx, dw, NULL, dy, x, w, ws, s, threads);
    return (use_cpu_time ? cpu_now() : gn_now()) - t0;
}

int main(int argc, char **argv)
{
    int N = argc > 1 ? atoi(argv[1]) : 32, threads = argc > 2 ? atoi(argv[2]) : 2;
    int size = argc > 3 ? atoi(argv[3]) : 112;
#ifdef _OPENMP
    omp_set_num_threads(threads);
#endif
    /* MobileNetV2's depthwise layers: channels, input map (in units of size/32), stride */
    static const int layers[][3] = {{32, 16, 1},  {96, 16, 2}, {144, 8, 1}, {144, 8, 2},
                                    {192, 4, 1},  {192, 4, 2}, {384, 2, 1}, {576, 2, 1},
                                    {576, 2, 2},  {960, 1, 1}};
    static const int count[] = {1, 1, 1, 1, 2, 1, 4, 2, 1, 3}; /* layers of that shape */
    use_cpu_time = threads == 1;
    printf("depthwise 3x3, %d images, %d threads, %d px: ms per forward + backward (%s)\n", N,
           threads, size, use_cpu_time ? "CPU time" : "wall time");
    printf("%6s %9s %6s %10s %10s %8s\n", "C", "map", "stride", "im2col", "direct", "speedup");
    double tot_old = 0, tot_new = 0;
    for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++) {
        int C = layers[i][0], H = layers[i][1] * size / 32;
        if (H < 1) H = 1;
        conv2d_shape s = {.N = N, .C = C, .H = H, .W = H, .K = C, .R = 3, .S = 3,
                          .stride = layers[i][2], .pad = 1, .groups = C};
        if (conv2d_shape_finish(&s)) return 1;
        size_t nx = (size_t)N * C * H * H, ny = (size_t)N * C * s.P * s.Q, nw = (size_t)C * 9;
        s.algo = CONV2D_PER_IMAGE;
        size_t nws = conv2d_ws_floats(&s, threads);
        s.algo = CONV2D_BATCHED;
        if (conv2d_ws_floats(&s, threads) > nws) nws = conv2d_ws_floats(&s, threads);
        float *x = alloc_filled(nx, 1), *w = alloc_filled(nw, 2), *dy = alloc_filled(ny, 3);
        float *y = alloc_filled(ny, 4), *dx = alloc_filled(nx, 5), *dw = alloc_filled(nw, 6);
        float *ws = alloc_filled(nws, 7);
        /* the generic path as the layer would take it: batched for small maps */
        s.algo = CONV2D_AUTO;
        int generic = conv2d_is_batched(&s) ? CONV2D_BATCHED : CONV2D_PER_IMAGE;
        double told[7], tnew[7];
        step(&s, generic, y, x, w, dx, dw, dy, ws, threads);
        step(&s, CONV2D_AUTO, y, x, w, dx, dw, dy, ws, threads);
        for (int r = 0; r < 7; r++) {
            if (r % 2) {
                told[r] = step(&s, generic, y, x, w, dx, dw, dy, ws, threads);
                tnew[r] = step(&s, CONV2D_AUTO, y, x, w, dx, dw, dy, ws, threads);
            } else {
                tnew[r] = step(&s, CONV2D_AUTO, y, x, w, dx, dw, dy, ws, threads);
                told[r] = step(&s, generic, y, x, w, dx, dw, dy, ws, threads);
            }
        }
        qsort(told, 7, sizeof *told, cmp_double);
        qsort(tnew, 7, sizeof *tnew, cmp_double);
        char map[32];
        snprintf(map, sizeof map, "%dx%d", H, H);
        printf("%6d %9s %6d %10.2f %10.2f %7.1fx   (x%d in the net)\n", C, map, s.stride,
               1e3 * told[3], 1e3 * tnew[3], told[3] / tnew[3], count[i]);
        tot_old += count[i] * told[3];
        tot_new += count[i] * tnew[3];
        gn_free(x);
        gn_free(w);
        gn_free(dy);
        gn_free(y);
        gn_free(dx);
        gn_free(dw);
        gn_free(ws);
    }
    printf("all 17 depthwise layers: im2col %.1f ms, direct %.1f ms per step (%.1fx)\n",
           1e3 * tot_old, 1e3 * tot_new, tot_old / tot_new);
    return 0;
}
