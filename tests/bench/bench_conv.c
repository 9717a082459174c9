/* Per-image vs batched convolution on ResNet-18 layer shapes: forward + backward time of each
 * path, to set the rule in conv2d_is_batched (CONV_BATCH_MAX_PQ). Run through
 * `meson test -C build --benchmark bench_conv` or directly: bench_conv [N [threads]].
 * `bench_conv gemm [threads]` times the batched path's forward and data GEMMs as they are and
 * transposed, to set CONV_BATCH_T_MAX_COLS. */
#include "core/util.h"
#include "gemmnet/gemmnet.h"
#include "kernels/conv.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* GFLOP/s, median of 7 calls after one untimed: the forward GEMM y_cat = w col_cat
 * (K x cols, depth CRS) or the data GEMM col_cat = w^T dy_cat (CRS x cols, depth K), as is or
 * transposed (the result stored transposed) */
static double gemm_rate(int data, int tr, int K, int cols, int CRS, const float *w,
                        const float *in, float *out)
{
    double t[7];
    for (int it = -1; it < 7; it++) {
        double t0 = gn_now();
        if (!data && !tr)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, K, cols, CRS, 1.0f, w, CRS,
                        in, cols, 0.0f, out, cols);
        else if (!data)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasTrans, cols, K, CRS, 1.0f, in, cols, w,
                        CRS, 0.0f, out, K);
        else if (!tr)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, CRS, cols, K, 1.0f, w, CRS, in,
                        cols, 0.0f, out, cols);
        else
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, cols, CRS, K, 1.0f, in, cols, w,
                        CRS, 0.0f, out, CRS);
        if (it >= 0) t[it] = gn_now() - t0;
    }
    qsort(t, 7, sizeof t[0], cmp_double);
    return 2.0 * K * cols * CRS / t[3] * 1e-9;
}

static int bench_gemm(int threads)
{
    gn_set_threads(threads);
    /* K, columns (images x P*Q of a chunk), C*R*S: ResNet-18's 4x4 and 2x2 stages at batch 2 to
     * 128 (112 px batch 8: 512 x 128 x 4608); last, one of the 16 GEMMs per pass that F(2x2)
     * would run there (512 x 32 tiles x 512 channels) */
    static const int shapes[][3] = {{512, 32, 4608},  {512, 128, 4608}, {512, 128, 2304},
                                    {256, 128, 2304}, {512, 256, 4608}, {512, 400, 2304},
                                    {512, 400, 4608}, {512, 408, 4608}, {256, 816, 2304},
                                    {512, 32, 512}};
    printf("%d threads: GFLOP/s, median of 7 (forward y = w col, data col = w^T dy)\n", threads);
    printf("%-22s %10s %10s %10s %10s\n", "K x cols x CRS", "fwd", "fwd^T", "data", "data^T");
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        int K = shapes[i][0], cols = shapes[i][1], CRS = shapes[i][2];
        size_t big = (size_t)CRS * cols > (size_t)K * cols ? (size_t)CRS * cols : (size_t)K * cols;
        float *w = malloc((size_t)K * CRS * 4), *in = malloc(big * 4), *out = malloc(big * 4);
        if (!w || !in || !out) return 2;
        for (size_t j = 0; j < (size_t)K * CRS; j++) w[j] = (float)(j % 5) * 0.01f;
        for (size_t j = 0; j < big; j++) in[j] = (float)(j % 7) - 3;
        char name[32];
        snprintf(name, sizeof name, "%d x %d x %d", K, cols, CRS);
        printf("%-22s %10.1f %10.1f %10.1f %10.1f\n", name,
               gemm_rate(0, 0, K, cols, CRS, w, in, out), gemm_rate(0, 1, K, cols, CRS, w, in, out),
               gemm_rate(1, 0, K, cols, CRS, w, in, out), gemm_rate(1, 1, K, cols, CRS, w, in, out));
        free(w);
        free(in);
        free(out);
    }
    return 0;
}

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
    if (argc > 1 && !strcmp(argv[1], "gemm")) return bench_gemm(argc > 2 ? atoi(argv[2]) : 2);
    int N = argc > 1 ? atoi(argv[1]) : 16, threads = argc > 2 ? atoi(argv[2]) : 2;
    gn_set_threads(threads);
    /* C H K R stride pad */
    static const int shapes[][6] = {
        {64, 56, 64, 3, 1, 1},   {128, 28, 128, 3, 1, 1}, {256, 14, 256, 3, 1, 1},
        {512, 7, 512, 3, 1, 1},  {64, 56, 128, 1, 2, 0},  {128, 28, 256, 1, 2, 0},
        {256, 14, 512, 1, 2, 0}, {64, 16, 64, 3, 1, 1},   {128, 8, 128, 3, 1, 1},
        {256, 4, 256, 3, 1, 1},  {512, 2, 512, 3, 1, 1},  {64, 16, 128, 3, 2, 1},
        {64, 16, 128, 1, 2, 0},  {128, 8, 256, 1, 2, 0},  {256, 4, 512, 1, 2, 0},
        {64, 32, 64, 1, 1, 0},   {256, 8, 256, 1, 1, 0},  {64, 28, 128, 3, 2, 1},
        {128, 14, 256, 3, 2, 1}, {256, 7, 512, 3, 2, 1},  {64, 28, 128, 1, 2, 0},
        {128, 14, 256, 1, 2, 0}, {256, 7, 512, 1, 2, 0},
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
