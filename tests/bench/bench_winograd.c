/* Winograd against im2col on ResNet-18's 3x3 shapes (docs/performance.md, "Winograd").
 *   bench_winograd error [CxH ...]   float32 error of forward, dx and dw against the double-precision
 *                          naive twins, one image, inputs and dy N(0,1), He-scaled weights
 *   bench_winograd time [N [threads [CxH ...]]]   forward and backward ms per call (median of 5)
 * Shapes are C=K channels x an HxH map (default: ResNet-18's 3x3 stages at 224 px).
 * A measuring tool, not a test: run with `meson test -C build --benchmark` or directly. */
#include "core/rng.h"
#include "core/util.h"
#include "kernels/conv.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* C=K and the map side: ResNet-18's 3x3 stride-1 stages at 224 px (the default list) */
typedef struct shape {
    int C, H;
} shape;
static const shape default_shapes[] = {{64, 56}, {128, 28}, {256, 14}, {512, 7}};
#define NDEFAULT (int)(sizeof default_shapes / sizeof default_shapes[0])
static const int algos[] = {0, 2, 4};

/* 64-byte aligned, as gemmnet's own buffers (gn_alloc) */
static float *alloc_floats(size_t n)
{
    float *p = aligned_alloc(64, ((n ? n : 1) * sizeof *p + 63) & ~(size_t)63);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return p;
}

static void normal(float *p, size_t n, double sd, gn_rng *r)
{
    for (size_t i = 0; i < n; i++) {
        double u = gn_rng_uniform(r), v = gn_rng_uniform(r);
        p[i] = (float)(sd * sqrt(-2 * log(1 - u)) * cos(6.283185307179586 * v));
    }
}

/* max |a - b| and max |b| */
static void diff(const float *a, const float *b, size_t n, double *abs_e, double *big)
{
    *abs_e = *big = 0;
    for (size_t i = 0; i < n; i++) {
        *abs_e = fmax(*abs_e, fabs((double)a[i] - b[i]));
        *big = fmax(*big, fabs((double)b[i]));
    }
}

typedef struct bufs {
    conv2d_shape s;
    size_t nx, ny, nw;
    float *x, *w, *dy, *y, *dx, *dw, *ws;
} bufs;

static bufs make(int N, int C, int H, int threads, gn_rng *r)
{
    bufs b = {.s = {.N = N, .C = C, .H = H, .W = H, .K = C, .R = 3, .S = 3, .stride = 1,
                    .pad = 1, .groups = 1}};
    conv2d_shape_finish(&b.s);
    b.nx = (size_t)N * C * H * H;
    b.ny = b.nx;
    b.nw = (size_t)C * C * 9;
    b.x = alloc_floats(b.nx);
    b.w = alloc_floats(b.nw);
    b.dy = alloc_floats(b.ny);
    b.y = alloc_floats(b.ny);
    b.dx = alloc_floats(b.nx);
    b.dw = alloc_floats(b.nw);
    size_t nws = 0;
    for (int a = 0; a < 3; a++) {
        conv2d_shape t = b.s;
        t.winograd = algos[a];
        size_t n = conv2d_ws_floats(&t, threads);
        if (n > nws) nws = n;
    }
    b.ws = alloc_floats(nws);
    normal(b.x, b.nx, 1.0, r);
    normal(b.w, b.nw, sqrt(2.0 / (9.0 * C)), r);
    normal(b.dy, b.ny, 1.0, r);
    return b;
}

static void release(bufs *b)
{
    float *all[] = {b->x, b->w, b->dy, b->y, b->dx, b->dw, b->ws};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(all[i]);
}

static int run_error(const shape *shapes, int nshapes)
{
    gn_rng r = gn_rng_make(gn_rng_key(7, 7, 7));
    printf("| shape | algorithm | y max abs | y max rel | dx max abs | dx max rel | dw max abs | "
           "dw max rel |\n|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < nshapes; i++) {
        bufs b = make(1, shapes[i].C, shapes[i].H, 1, &r);
        float *yr = alloc_floats(b.ny), *dxr = alloc_floats(b.nx), *dwr = alloc_floats(b.nw);
        conv2d_forward_ref(yr, b.x, b.w, NULL, &b.s);
        memset(dxr, 0, b.nx * sizeof *dxr);
        memset(dwr, 0, b.nw * sizeof *dwr);
        conv2d_backward_ref(dxr, dwr, NULL, b.dy, b.x, b.w, &b.s);
        for (int a = 0; a < 3; a++) {
            b.s.winograd = algos[a];
            conv2d_forward(b.y, b.x, b.w, NULL, b.ws, &b.s, 1);
            memset(b.dx, 0, b.nx * sizeof *b.dx);
            memset(b.dw, 0, b.nw * sizeof *b.dw);
            conv2d_backward(b.dx, b.dw, NULL, b.dy, b.x, b.w, b.ws, &b.s, 1);
            double e[3], big[3];
            diff(b.y, yr, b.ny, &e[0], &big[0]);
            diff(b.dx, dxr, b.nx, &e[1], &big[1]);
            diff(b.dw, dwr, b.nw, &e[2], &big[2]);
            printf("| C=K=%d %dx%d | %s |", b.s.C, b.s.H, b.s.W,
                   algos[a] ? (algos[a] == 2 ? "F(2x2,3x3)" : "F(4x4,3x3)") : "im2col");
            for (int j = 0; j < 3; j++) printf(" %.1e | %.1e |", e[j], e[j] / big[j]);
            printf("\n");
        }
        free(yr);
        free(dxr);
        free(dwr);
        release(&b);
    }
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int run_time(int N, int threads, const shape *shapes, int nshapes)
{
    gn_rng r = gn_rng_make(gn_rng_key(8, 8, 8));
    printf("N=%d, %d threads: ms per call, median of 5 after 1 untimed (forward / backward with\n"
           "dx; the transforms or im2col/col2im in each, mean ms, and their share of both)\n", N,
           threads);
    for (int i = 0; i < nshapes; i++) {
        bufs b = make(N, shapes[i].C, shapes[i].H, threads, &r);
        printf("C=K=%3d %2dx%-2d\n", b.s.C, b.s.H, b.s.W);
        for (int a = 0; a < 3; a++) {
            b.s.winograd = algos[a];
            double tf[5], tb[5], pf[2] = {0, 0}, pb[2] = {0, 0};
            /* one untimed call first: the workspace's pages are touched, OpenBLAS warmed */
            conv2d_forward(b.y, b.x, b.w, NULL, b.ws, &b.s, threads);
            conv2d_backward(b.dx, b.dw, NULL, b.dy, b.x, b.w, b.ws, &b.s, threads);
            for (int k = 0; k < 5; k++) {
                double t0 = gn_now();
                conv2d_forward_prof(b.y, b.x, b.w, NULL, b.ws, &b.s, threads, pf);
                double t1 = gn_now();
                conv2d_backward_prof(b.dx, b.dw, NULL, b.dy, b.x, b.w, b.ws, &b.s, threads, pb);
                tf[k] = t1 - t0;
                tb[k] = gn_now() - t1;
            }
            qsort(tf, 5, sizeof *tf, cmp_double);
            qsort(tb, 5, sizeof *tb, cmp_double);
            printf("    %s %7.2f / %7.2f (transforms %5.2f / %5.2f, %.0f%%)",
                   algos[a] ? (algos[a] == 2 ? "F2" : "F4") : "im2col", 1e3 * tf[2], 1e3 * tb[2],
                   1e3 * pf[0] / 5, 1e3 * pb[0] / 5,
                   100 * (pf[0] + pb[0]) / (pf[0] + pf[1] + pb[0] + pb[1]));
            printf("\n");
        }
        release(&b);
    }
    return 0;
}

/* "CxH" arguments from argv[first] on, else the default list */
static int parse_shapes(int argc, char **argv, int first, shape *out, int max)
{
    int n = 0;
    for (int i = first; i < argc && n < max; i++) {
        shape sh;
        if (sscanf(argv[i], "%dx%d", &sh.C, &sh.H) != 2 || sh.C < 1 || sh.H < 1) {
            fprintf(stderr, "bench_winograd: '%s' is not CxH (channels x map side)\n", argv[i]);
            exit(2);
        }
        out[n++] = sh;
    }
    if (n) return n;
    memcpy(out, default_shapes, sizeof default_shapes);
    return NDEFAULT;
}

int main(int argc, char **argv)
{
    shape list[32];
    if (argc >= 2 && !strcmp(argv[1], "error"))
        return run_error(list, parse_shapes(argc, argv, 2, list, 32));
    if (argc >= 2 && !strcmp(argv[1], "time"))
        return run_time(argc >= 3 ? atoi(argv[2]) : 16, argc >= 4 ? atoi(argv[3]) : 2, list,
                        parse_shapes(argc, argv, 4, list, 32));
    fprintf(stderr, "usage: bench_winograd error [CxH ...] | time [N [threads [CxH ...]]]\n");
    return 2;
}
