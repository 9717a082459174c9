/* The direct depthwise kernels (depthwise_forward, depthwise_backward) against the naive
 * twins (conv2d_forward_ref, conv2d_backward_ref), checkasm style: awkward shapes (1x1, 3x3 and
 * 5x5, stride 1, 2 and 3, padding 0..3, maps smaller than the kernel, odd and non-square, one
 * channel and three), guard values around every output, backward adding onto non-zero values,
 * and results bit-identical for 1, 2 and 3 threads (each channel sums its images in order).
 * conv2d_forward / conv2d_backward must route such shapes here. */
#include "kernel_util.h"
#include "core/rng.h"
#include "kernels/conv.h"
#include "kernels/depthwise.h"

#include <string.h>

typedef struct result {
    float *y, *dx, *dw;
} result;

static void check_shape(conv2d_shape s, int with_bias, int with_dx, gn_rng *r)
{
    char name[160];
    snprintf(name, sizeof name, "N%d C%d %dx%d %dx%d stride %d pad %d, bias %d dx %d", s.N, s.C,
             s.H, s.W, s.R, s.S, s.stride, s.pad, with_bias, with_dx);
    s.K = s.groups = s.C;
    if (conv2d_shape_finish(&s)) {
        CHECK_MSG(0, "%s: invalid shape", name);
        return;
    }
    CHECK_MSG(conv2d_is_depthwise(&s), "%s: not taken as depthwise", name);
    size_t nx = (size_t)s.N * s.C * s.H * s.W, ny = (size_t)s.N * s.C * s.P * s.Q;
    size_t nw = (size_t)s.C * s.R * s.S, nb = (size_t)s.C;
    float *x = guarded(nx), *w = guarded(nw), *b = guarded(nb), *dy = guarded(ny);
    float *yr = guarded(ny), *dxr = guarded(nx), *dwr = guarded(nw), *dbr = guarded(nb);
    float *dx0 = guarded(nx), *dw0 = guarded(nw);
    fill(x, nx, r);
    fill(w, nw, r);
    fill(b, nb, r);
    fill(dy, ny, r);
    fill(dx0, nx, r); /* backward adds: every run starts from these values */
    fill(dw0, nw, r);
    memcpy(dxr, dx0, nx * sizeof *dx0);
    memcpy(dwr, dw0, nw * sizeof *dw0);
    for (size_t i = 0; i < nb; i++) dbr[i] = 0;
    conv2d_forward_ref(yr, x, w, with_bias ? b : NULL, &s);
    conv2d_backward_ref(with_dx ? dxr : NULL, dwr, dbr, dy, x, w, &s);

    result first = {0};
    static const int threads[] = {1, 2, 3};
    for (int t = 0; t < 3; t++) {
        size_t nws = conv2d_ws_floats(&s, threads[t]);
        float *y = guarded(ny), *dx = guarded(nx), *dw = guarded(nw), *ws = guarded(nws);
        memcpy(dx, dx0, nx * sizeof *dx);
        memcpy(dw, dw0, nw * sizeof *dw);
        /* the direct calls once, conv2d's dispatch the other times */
        if (t == 1) {
            CHECK_MSG(depthwise_ws_floats(&s, threads[t]) == nws, "%s: workspace size", name);
            depthwise_forward(y, x, w, with_bias ? b : NULL, ws, &s, threads[t]);
            depthwise_backward(with_dx ? dx : NULL, dw, dy, x, w, ws, &s, threads[t]);
        } else {
            conv2d_forward(y, x, w, with_bias ? b : NULL, ws, &s, threads[t]);
            conv2d_backward(with_dx ? dx : NULL, dw, NULL, dy, x, w, ws, &s, threads[t]);
        }
        double ey = max_err(y, yr, ny), edx = max_err(dx, dxr, nx), edw = max_err(dw, dwr, nw);
        CHECK_MSG(ey <= 1e-5, "%s, %d threads: forward error %.3e", name, threads[t], ey);
        CHECK_MSG(edx <= 1e-5, "%s, %d threads: dx error %.3e", name, threads[t], edx);
        CHECK_MSG(edw <= 1e-5, "%s, %d threads: dw error %.3e", name, threads[t], edw);
        CHECK_MSG(guards_ok(y, ny) && guards_ok(dx, nx) && guards_ok(dw, nw),
                  "%s, %d threads: wrote outside y, dx or dw", name, threads[t]);
        CHECK_MSG(guards_ok(x, nx) && guards_ok(w, nw) && guards_ok(dy, ny) && guards_ok(b, nb),
                  "%s: inputs", name);
        CHECK_MSG(guards_ok(ws, nws), "%s, %d threads: wrote outside its workspace", name,
                  threads[t]);
        unguard(ws);
        if (!with_dx)
            CHECK_MSG(!memcmp(dx, dx0, nx * sizeof *dx), "%s: dx written though NULL", name);
        if (getenv("GN_VERBOSE"))
            printf("%-60s %d threads: y %.1e dx %.1e dw %.1e\n", name, threads[t], ey, edx, edw);
        if (t == 0) {
            first = (result){y, dx, dw};
            continue;
        }
        CHECK_MSG(!memcmp(y, first.y, ny * sizeof *y) && !memcmp(dx, first.dx, nx * sizeof *dx) &&
                      !memcmp(dw, first.dw, nw * sizeof *dw),
                  "%s: %d threads differ from 1 thread", name, threads[t]);
        unguard(y);
        unguard(dx);
        unguard(dw);
    }
    unguard(first.y);
    unguard(first.dx);
    unguard(first.dw);
    float *all[] = {x, w, b, dy, yr, dxr, dwr, dbr, dx0, dw0};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) unguard(all[i]);
}

int main(void)
{
    /* N C H W R(=S) stride pad */
    static const int fixed[][7] = {
        {2, 3, 8, 8, 3, 1, 1},    /* MobileNetV2's 3x3, stride 1 */
        {2, 4, 9, 7, 3, 2, 1},    /* stride 2, odd and non-square */
        {3, 5, 8, 10, 3, 2, 1},   /* stride 2, even */
        {1, 1, 5, 5, 3, 1, 1},    /* one channel, one image */
        {2, 3, 7, 5, 1, 1, 0},    /* 1x1 */
        {2, 3, 7, 5, 1, 2, 1},    /* 1x1 stride 2 padded */
        {2, 2, 11, 6, 5, 1, 2},   /* 5x5 pad 2 */
        {2, 3, 6, 7, 5, 3, 0},    /* 5x5 stride 3, no pad */
        {2, 3, 2, 2, 3, 1, 1},    /* map smaller than the kernel */
        {1, 2, 1, 1, 3, 1, 1},    /* 1x1 map (MobileNetV2 at 32 px has 1x1 maps) */
        {2, 3, 3, 9, 3, 1, 3},    /* padding larger than needed */
        {2, 2, 5, 4, 3, 1, 0},    /* no padding */
        {4, 7, 20, 19, 3, 1, 1},  /* wide enough for the vector loops, 2 channels a thread */
        {2, 5, 21, 23, 3, 2, 1},  /* the same, stride 2 */
        {2, 3, 4, 4, 4, 2, 1},    /* even kernel */
        {2, 3, 40, 37, 3, 2, 1},  /* stride 2 on a large map: row-wise, not the wide layout */
        {1, 2, 50, 47, 5, 3, 2},  /* the same, 5x5 stride 3 */
    };
    gn_rng r = gn_rng_make(gn_rng_key(2026, 12, 5));
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        const int *f = fixed[i];
        conv2d_shape s = {.N = f[0], .C = f[1], .H = f[2], .W = f[3], .R = f[4], .S = f[4],
                          .stride = f[5], .pad = f[6]};
        check_shape(s, (int)(i % 2), 1, &r);
        check_shape(s, (int)(i % 2 == 0), 0, &r);
    }
    for (int i = 0; i < 40; i++) {
        conv2d_shape s = {0};
        s.N = 1 + (int)gn_rng_below(&r, 3);
        s.C = 1 + (int)gn_rng_below(&r, 6);
        s.R = s.S = 1 + (int)gn_rng_below(&r, 5);
        s.stride = 1 + (int)gn_rng_below(&r, 3);
        s.pad = (int)gn_rng_below(&r, (uint64_t)s.R + 1);
        s.H = 1 + (int)gn_rng_below(&r, 13);
        s.W = 1 + (int)gn_rng_below(&r, 13);
        if (s.H + 2 * s.pad < s.R || s.W + 2 * s.pad < s.S) continue;
        check_shape(s, (int)gn_rng_below(&r, 2), (int)(gn_rng_below(&r, 4) != 0), &r);
    }
    /* Not depthwise: a channel multiplier, or grouped with several channels per group. */
    conv2d_shape m = {.N = 1, .C = 4, .H = 5, .W = 5, .K = 8, .R = 3, .S = 3, .stride = 1,
                      .pad = 1, .groups = 4};
    CHECK(!conv2d_is_depthwise(&m));
    m.K = 4;
    m.groups = 2;
    CHECK(!conv2d_is_depthwise(&m));
    return check_exit();
}
