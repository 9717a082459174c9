/* Per-image vs batched convolution on ResNet-18 layer shapes: forward + backward time of each
 * path, to set the rule in conv2d_is_batched (CONV_BATCH_MAX_PQ). Run through
 * `meson test -C build --benchmark bench_conv` or directly: bench_conv [N [threads]]. */
#include "core/util.h"
#include "gemmnet/gemmnet.h"
#include "kernels/conv.h"

#include <stdio.h>
#include <stdlib.h>

static double run(conv2d_shape s, int threads, float *x, float *w, float *y, float *dx,
                  float *dw, float *ws)
{
    double best = 1e30;
    for (int it = 0; it < 4; it++) {
        double t0 = gn_now();
        conv2d_forward(y, x, w, NULL, ws, &s, threads);
        conv2d_backward(dx, dw, NULL, y, x, w, ws, &s, threads);
        double t = gn_now() - t0;
        if (it > 0 && t < best) best = t;
    }
    return best;
}

int main(int argc, char **argv)
{
    int N = argc > 1 ? atoi(argv[1]) : 16, threads = argc > 2 ? atoi(argv[2]) : 2;
    gn_set_threads(threads);
    /* C H K R stride pad */
    static const int shapes[][6] = {
        {64, 56, 64, 3, 1, 1},   {128, 28, 128, 3, 1, 1}, {256, 14, 256, 3, 1, 1},
        {512, 7, 512, 3, 1, 1},  {64, 56, 128, 1, 2, 0},  {128, 28, 256, 1, 2, 0},
        {256, 14, 512, 1, 2, 0}, {64, 16, 64, 3, 1, 1},   {128, 8, 128, 3, 1, 1},
        {256, 4, 256, 3, 1, 1},  {512, 2, 512, 3, 1, 1},  {64, 16, 128, 3, 2, 1},
        {64, 16, 128, 1, 2, 0},  {128, 8, 256, 1, 2, 0},  {256, 4, 512, 1, 2, 0},
        {64, 32, 64, 1, 1, 0},   {256, 8, 256, 1, 1, 0},
    };
    printf("N %d, %d threads: GFLOP/s of forward + backward (3 GEMMs)\n", N, threads);
    printf("%-28s %6s %10s %10s %8s\n", "shape (C HxW -> K RxR/s)", "PQ", "per-image", "batched",
           "ratio");
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const int *f = shapes[i];
        conv2d_shape s = {.N = N, .C = f[0], .H = f[1], .W = f[1], .K = f[2], .R = f[3],
                          .S = f[3], .stride = f[4], .pad = f[5], .groups = 1};
        if (conv2d_shape_finish(&s)) return 1;
        size_t nx = (size_t)N * s.C * s.H * s.W, ny = (size_t)N * s.K * s.P * s.Q;
        size_t nw = (size_t)s.K * s.C * s.R * s.S;
        conv2d_shape sb = s, sp = s;
        sb.algo = CONV2D_BATCHED;
        sp.algo = CONV2D_PER_IMAGE;
        size_t nws = conv2d_ws_floats(&sb, threads), nwp = conv2d_ws_floats(&sp, threads);
        if (nwp > nws) nws = nwp;
        float *x = calloc(nx, 4), *y = calloc(ny, 4), *dx = calloc(nx, 4), *w = calloc(nw, 4);
        float *dw = calloc(nw, 4), *ws = calloc(nws, 4);
        if (!x || !y || !dx || !w || !dw || !ws) return 2;
        for (size_t j = 0; j < nx; j++) x[j] = (float)(j % 7) - 3;
        for (size_t j = 0; j < nw; j++) w[j] = (float)(j % 5) * 0.01f;
        double flop = 6.0 * N * s.K * s.C * s.R * s.S * s.P * s.Q;
        double tp = run(sp, threads, x, w, y, dx, dw, ws);
        double tb = run(sb, threads, x, w, y, dx, dw, ws);
        char name[64];
        snprintf(name, sizeof name, "%d %dx%d -> %d %dx%d/%d", s.C, s.H, s.W, s.K, s.R, s.S,
                 s.stride);
        printf("%-28s %6d %10.1f %10.1f %8.2f\n", name, s.P * s.Q, flop / tp * 1e-9,
               flop / tb * 1e-9, tp / tb);
        free(x);
        free(y);
        free(dx);
        free(w);
        free(dw);
        free(ws);
    }
    return 0;
}
