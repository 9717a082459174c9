/* Winograd F(2x2,3x3) and F(4x4,3x3) (kernels/winograd.h, reached through conv2d_forward /
 * conv2d_backward with shape.winograd = m) against the naive twins conv2d_forward_ref /
 * conv2d_backward_ref: awkward shapes (3 channels, 5 filters, odd and non-square maps, a 1x1
 * input, pad 0, 1 and 2, batch 1 and 3, partial edge tiles), one thread and several (both the
 * loop over chunks and the multithreaded-sgemm path), guard values around every buffer, backward
 * accumulating onto non-zero values, a second call bit-identical. The planes have 1 to 90
 * tiles, so the transforms' blocks of 16 tiles come full (rows read and written in place) and
 * partial (through a copy), with interior and edge tiles in both. Also: with winograd = 0 a
 * qualifying shape still goes the old way, bit for bit (im2col + one sgemm per image).
 *
 * Winograd rounds differently from the direct sum: the transforms scale values by up to ~10
 * (F(4x4): entries 4, 5 and 8 in B^T and A^T) before they cancel, so the float32 error grows
 * with m. The measured worst errors are printed; the tolerances leave about 10x headroom. */
#include "kernel_util.h"
#include "core/util.h"
#include "kernels/conv.h"
#include "kernels/im2col.h"
#include "kernels/winograd.h"

#include <cblas.h>
#include <string.h>

/* max |fast - ref| / max(max |ref|, 1): the error against the scale of the whole tensor (an
 * entry of dw that happens to be near 0 carries the rounding of its large neighbours) */
static double scaled_err(const float *a, const float *b, size_t n)
{
    double e = 0, big = 1;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= e)) e = d; /* NaN counts as worst */
        big = fmax(big, fabs((double)b[i]));
    }
    return e / big;
}

/* Inputs uniform in (-1, 1). */
static double tol_for(int m) { return m == 2 ? 1e-5 : 6e-5; }

static double worst[5]; /* by m */

static void check_wino(conv2d_shape s, int threads, int with_bias, int with_dx, gn_rng *r)
{
    char name[160];
    snprintf(name, sizeof name, "F(%dx%d) N%d C%d %dx%d K%d pad %d, %d threads, bias %d dx %d",
             s.winograd, s.winograd, s.N, s.C, s.H, s.W, s.K, s.pad, threads, with_bias,
             with_dx);
    if (conv2d_shape_finish(&s) || !winograd_applies(&s)) {
        CHECK_MSG(0, "%s: not a Winograd shape", name);
        return;
    }
    size_t nx = (size_t)s.N * s.C * s.H * s.W, ny = (size_t)s.N * s.K * s.P * s.Q;
    size_t nw = (size_t)s.K * s.C * 9, nb = (size_t)s.K;
    size_t nws = conv2d_ws_floats(&s, threads);
    CHECK_MSG(nws == winograd_ws_floats(&s, s.winograd, threads), "%s: workspace size", name);
    float *x = guarded(nx), *w = guarded(nw), *b = guarded(nb), *dy = guarded(ny);
    float *y = guarded(ny), *yr = guarded(ny), *ws = guarded(nws), *y2 = guarded(ny);
    float *dx = guarded(nx), *dxr = guarded(nx), *dx2 = guarded(nx);
    float *dw = guarded(nw), *dwr = guarded(nw), *dw2 = guarded(nw);
    float *db = guarded(nb), *dbr = guarded(nb), *db2 = guarded(nb);
    fill(x, nx, r);
    fill(w, nw, r);
    fill(b, nb, r);
    fill(dy, ny, r);
    fill(dx, nx, r); /* backward adds onto these */
    fill(dw, nw, r);
    fill(db, nb, r);
    memcpy(dxr, dx, nx * sizeof *dx);
    memcpy(dx2, dx, nx * sizeof *dx);
    memcpy(dwr, dw, nw * sizeof *dw);
    memcpy(dw2, dw, nw * sizeof *dw);
    memcpy(dbr, db, nb * sizeof *db);
    memcpy(db2, db, nb * sizeof *db);
    const float *bias = with_bias ? b : NULL;

    conv2d_forward(y, x, w, bias, ws, &s, threads);
    conv2d_forward_ref(yr, x, w, bias, &s);
    conv2d_backward(with_dx ? dx : NULL, dw, with_bias ? db : NULL, dy, x, w, ws, &s, threads);
    conv2d_backward_ref(with_dx ? dxr : NULL, dwr, with_bias ? dbr : NULL, dy, x, w, &s);
    double ey = scaled_err(y, yr, ny), edx = scaled_err(dx, dxr, nx), edw = scaled_err(dw, dwr, nw);
    double edb = scaled_err(db, dbr, nb), tol = tol_for(s.winograd);
    CHECK_MSG(ey <= tol, "%s: forward error %.3e", name, ey);
    CHECK_MSG(edx <= tol, "%s: dx error %.3e", name, edx);
    CHECK_MSG(edw <= tol, "%s: dw error %.3e", name, edw);
    CHECK_MSG(edb <= 1e-5, "%s: db error %.3e", name, edb);
    double e = fmax(fmax(ey, edx), edw);
    if (!(e <= worst[s.winograd])) worst[s.winograd] = e;
    CHECK_MSG(guards_ok(y, ny), "%s: forward wrote outside y", name);
    CHECK_MSG(guards_ok(dx, nx) && guards_ok(dw, nw) && guards_ok(db, nb),
              "%s: backward wrote outside dx, dw or db", name);
    CHECK_MSG(guards_ok(ws, nws), "%s: wrote outside the workspace", name);
    CHECK_MSG(guards_ok(x, nx) && guards_ok(w, nw) && guards_ok(dy, ny) && guards_ok(b, nb),
              "%s: inputs", name);

    conv2d_forward(y2, x, w, bias, ws, &s, threads);
    conv2d_backward(with_dx ? dx2 : NULL, dw2, with_bias ? db2 : NULL, dy, x, w, ws, &s,
                    threads);
    CHECK_MSG(!memcmp(y, y2, ny * sizeof *y) && !memcmp(dx, dx2, nx * sizeof *dx) &&
                  !memcmp(dw, dw2, nw * sizeof *dw) && !memcmp(db, db2, nb * sizeof *db),
              "%s: a second run differs", name);
    if (getenv("GN_VERBOSE"))
        printf("%-70s y %.1e dx %.1e dw %.1e db %.1e\n", name, ey, edx, edw, edb);
    float *all[] = {x, w, b, dy, y, yr, ws, y2, dx, dxr, dx2, dw, dwr, dw2, db, dbr, db2};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) unguard(all[i]);
}

/* winograd = 0 on a shape Winograd could run: conv2d_forward is the old im2col path, equal bit
 * for bit to im2col + bias + one sgemm per image written out here. */
static void check_off_is_old_path(gn_rng *r)
{
    conv2d_shape s = {.N = 2, .C = 3, .H = 7, .W = 9, .K = 5, .R = 3, .S = 3, .stride = 1,
                      .pad = 1, .groups = 1, .winograd = 0};
    CHECK(conv2d_shape_finish(&s) == 0 && !winograd_applies(&s));
    int PQ = s.P * s.Q, CRS = s.C * 9;
    size_t nx = (size_t)s.N * s.C * s.H * s.W, ny = (size_t)s.N * s.K * PQ;
    float *x = guarded(nx), *w = guarded((size_t)s.K * CRS), *b = guarded((size_t)s.K);
    float *y = guarded(ny), *yo = guarded(ny), *ws = guarded(conv2d_ws_floats(&s, 1));
    float *col = guarded((size_t)CRS * PQ);
    fill(x, nx, r);
    fill(w, (size_t)s.K * CRS, r);
    fill(b, (size_t)s.K, r);
    conv2d_forward(y, x, w, b, ws, &s, 1);
    for (int n = 0; n < s.N; n++) {
        float *yn = yo + (size_t)n * s.K * PQ;
        im2col(col, x + (size_t)n * s.C * s.H * s.W, s.C, s.H, s.W, 3, 3, 1, 1, s.P, s.Q);
        for (int k = 0; k < s.K; k++)
            for (int i = 0; i < PQ; i++) yn[(size_t)k * PQ + i] = b[k];
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s.K, PQ, CRS, 1.0f, w, CRS, col,
                    PQ, 1.0f, yn, PQ);
    }
    CHECK_MSG(!memcmp(y, yo, ny * sizeof *y), "winograd=0 is not the old im2col path");
    /* The same shape with winograd = 4 goes another way: the results differ (slightly). */
    s.winograd = 4;
    float *ws4 = guarded(conv2d_ws_floats(&s, 1));
    conv2d_forward(y, x, w, b, ws4, &s, 1);
    CHECK_MSG(memcmp(y, yo, ny * sizeof *y) != 0, "winograd=4 gave the im2col bits");
    CHECK_MSG(scaled_err(y, yo, ny) <= tol_for(4), "winograd=4 is far from im2col");
    float *all[] = {x, w, b, y, yo, ws, col, ws4};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) unguard(all[i]);
}

int main(void)
{
    int maxt = kernel_util_max_threads();
    int tcount[2] = {1, maxt > 1 ? maxt : 2};
    /* N C H W K pad */
    static const int fixed[][6] = {
        {1, 3, 7, 9, 5, 1},    /* odd, non-square, partial tiles */
        {3, 3, 7, 9, 5, 0},    /* no padding */
        {3, 3, 1, 1, 5, 1},    /* 1x1 input */
        {1, 2, 1, 1, 3, 2},    /* 1x1 input, pad 2: 3x3 output */
        {3, 4, 6, 5, 2, 2},    /* pad 2 */
        {2, 1, 4, 4, 1, 1},    /* one channel, one filter */
        {3, 5, 20, 17, 4, 1},  /* several threads: the loop over chunks for m = 2 */
        {4, 6, 24, 24, 7, 1},  /* ... and for m = 4 */
        {3, 2, 30, 31, 3, 1},  /* one image per chunk, several chunks in turn */
        {2, 16, 9, 9, 12, 1},  /* more channels than filters and back */
        {2, 512, 4, 4, 256, 1}, /* wide (K*C >= 256*512): a data pass, then the weight pass in
                                 * turn; U over 8 MiB, written with non-temporal stores */
    };
    gn_rng r = gn_rng_make(gn_rng_key(2025, 3, 3));
    for (int m = 2; m <= 4; m += 2)
        for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
            const int *f = fixed[i];
            conv2d_shape s = {.N = f[0], .C = f[1], .H = f[2], .W = f[3], .K = f[4], .R = 3,
                              .S = 3, .stride = 1, .pad = f[5], .groups = 1, .winograd = m};
            for (int t = 0; t < 2; t++) check_wino(s, tcount[t], (int)(i % 2), 1, &r);
            check_wino(s, tcount[1], 1, 0, &r);
        }
#ifdef _OPENMP
    /* Four threads on five images, F(2x2) 8x8 (16 tiles each): chunks of two images, three
     * chunks for four threads, so one thread writes no dU partial (left out of the sum). */
    omp_set_num_threads(4);
    conv2d_shape few = {.N = 5, .C = 3, .H = 8, .W = 8, .K = 4, .R = 3, .S = 3, .stride = 1,
                        .pad = 1, .groups = 1, .winograd = 2};
    check_wino(few, 4, 0, 1, &r);
    omp_set_num_threads(maxt);
#endif
    /* Random shapes. */
    for (int i = 0; i < 30; i++) {
        conv2d_shape s = {.R = 3, .S = 3, .stride = 1, .groups = 1};
        s.winograd = gn_rng_below(&r, 2) ? 4 : 2;
        s.C = 1 + (int)gn_rng_below(&r, 6);
        s.K = 1 + (int)gn_rng_below(&r, 6);
        s.pad = (int)gn_rng_below(&r, 3);
        s.H = (s.pad ? 1 : 3) + (int)gn_rng_below(&r, 12);
        s.W = (s.pad ? 1 : 3) + (int)gn_rng_below(&r, 12);
        s.N = 1 + (int)gn_rng_below(&r, 4);
        check_wino(s, tcount[gn_rng_below(&r, 2)], (int)gn_rng_below(&r, 2),
                   (int)(gn_rng_below(&r, 4) != 0), &r);
    }
    /* Shapes Winograd does not take. */
    conv2d_shape no[] = {
        {.N = 1, .C = 2, .H = 8, .W = 8, .K = 2, .R = 3, .S = 3, .stride = 2, .pad = 1,
         .groups = 1, .winograd = 4},
        {.N = 1, .C = 2, .H = 8, .W = 8, .K = 2, .R = 3, .S = 3, .stride = 1, .pad = 1,
         .groups = 2, .winograd = 4},
        {.N = 1, .C = 2, .H = 8, .W = 8, .K = 2, .R = 5, .S = 5, .stride = 1, .pad = 2,
         .groups = 1, .winograd = 2},
        {.N = 1, .C = 2, .H = 8, .W = 8, .K = 2, .R = 3, .S = 3, .stride = 1, .pad = 1,
         .groups = 1, .winograd = 3},
    };
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) CHECK(!winograd_applies(&no[i]));
    check_off_is_old_path(&r);
    printf("worst error max |fast - ref| / max(max |ref|, 1): F(2x2,3x3) %.2e (tolerance %.0e), "
           "F(4x4,3x3) %.2e (tolerance %.0e)\n",
           worst[2], tol_for(2), worst[4], tol_for(4));
    return check_exit();
}
