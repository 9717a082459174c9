/* The fast convolution kernels against their naive twins (conv2d_forward_ref,
 * conv2d_backward_ref), checkasm style: awkward and random shapes, both parallel strategies,
 * guard values around every output buffer, backward accumulating onto non-zero values, and a
 * second identical call giving bit-identical results. Both the per-image path and the batched
 * path (chunks of images through one GEMM, partial last chunks included) are forced in turn. */
#include "kernel_util.h"
#include "core/rng.h"
#include "core/util.h"
#include "kernels/conv.h"
#include "kernels/im2col.h"

#include <string.h>

static void check_shape(conv2d_shape s, int threads, int with_bias, int with_dx, gn_rng *r)
{
    char name[160];
    snprintf(name, sizeof name,
             "N%d C%d %dx%d K%d %dx%d stride %d pad %d groups %d, %d threads, bias %d dx %d, "
             "algo %d chunk %d",
             s.N, s.C, s.H, s.W, s.K, s.R, s.S, s.stride, s.pad, s.groups, threads, with_bias,
             with_dx, s.algo, s.chunk);
    if (conv2d_shape_finish(&s)) {
        CHECK_MSG(0, "%s: invalid shape", name);
        return;
    }
    size_t nx = (size_t)s.N * s.C * s.H * s.W, ny = (size_t)s.N * s.K * s.P * s.Q;
    size_t nw = (size_t)s.K * (s.C / s.groups) * s.R * s.S, nb = (size_t)s.K;
    size_t nws = conv2d_ws_floats(&s, threads);
    float *x = guarded(nx), *w = guarded(nw), *b = guarded(nb), *dy = guarded(ny);
    float *y = guarded(ny), *yr = guarded(ny), *ws = guarded(nws);
    float *dx = guarded(nx), *dxr = guarded(nx), *dw = guarded(nw), *dwr = guarded(nw);
    float *db = guarded(nb), *dbr = guarded(nb);
    fill(x, nx, r);
    fill(w, nw, r);
    fill(b, nb, r);
    fill(dy, ny, r);
    /* Backward adds: start from the same non-zero values. */
    fill(dx, nx, r);
    fill(dw, nw, r);
    fill(db, nb, r);
    memcpy(dxr, dx, nx * sizeof *dx);
    memcpy(dwr, dw, nw * sizeof *dw);
    memcpy(dbr, db, nb * sizeof *db);
    float *base_dx = guarded(nx), *base_dw = guarded(nw), *base_db = guarded(nb);
    memcpy(base_dx, dx, nx * sizeof *dx);
    memcpy(base_dw, dw, nw * sizeof *dw);
    memcpy(base_db, db, nb * sizeof *db);

    conv2d_forward(y, x, w, with_bias ? b : NULL, ws, &s, threads);
    conv2d_forward_ref(yr, x, w, with_bias ? b : NULL, &s);
    double ey = max_err(y, yr, ny);
    CHECK_MSG(ey <= 1e-4, "%s: forward error %.3e", name, ey);
    CHECK_MSG(guards_ok(y, ny), "%s: forward wrote outside y", name);
    CHECK_MSG(guards_ok(ws, nws), "%s: forward wrote outside its workspace", name);

    conv2d_backward(with_dx ? dx : NULL, dw, with_bias ? db : NULL, dy, x, w, ws, &s, threads);
    conv2d_backward_ref(with_dx ? dxr : NULL, dwr, with_bias ? dbr : NULL, dy, x, w, &s);
    double edx = max_err(dx, dxr, nx), edw = max_err(dw, dwr, nw), edb = max_err(db, dbr, nb);
    CHECK_MSG(edx <= 1e-4, "%s: dx error %.3e", name, edx);
    CHECK_MSG(edw <= 1e-4, "%s: dw error %.3e", name, edw);
    CHECK_MSG(edb <= 1e-4, "%s: db error %.3e", name, edb);
    CHECK_MSG(guards_ok(dx, nx) && guards_ok(dw, nw) && guards_ok(db, nb),
              "%s: backward wrote outside dx, dw or db", name);
    CHECK_MSG(guards_ok(ws, nws), "%s: backward wrote outside its workspace", name);
    CHECK_MSG(guards_ok(x, nx) && guards_ok(w, nw) && guards_ok(dy, ny), "%s: inputs", name);
    /* Determinism: the same call again, onto the same starting values, is bit-identical. */
    float *y2 = guarded(ny), *dx2 = guarded(nx), *dw2 = guarded(nw), *db2 = guarded(nb);
    memcpy(dx2, base_dx, nx * sizeof *dx);
    memcpy(dw2, base_dw, nw * sizeof *dw);
    memcpy(db2, base_db, nb * sizeof *db);
    conv2d_forward(y2, x, w, with_bias ? b : NULL, ws, &s, threads);
    conv2d_backward(with_dx ? dx2 : NULL, dw2, with_bias ? db2 : NULL, dy, x, w, ws, &s,
                    threads);
    CHECK_MSG(!memcmp(y, y2, ny * sizeof *y) && !memcmp(dx, dx2, nx * sizeof *dx) &&
                  !memcmp(dw, dw2, nw * sizeof *dw) && !memcmp(db, db2, nb * sizeof *db),
              "%s: a second run differs", name);
    unguard(y2);
    unguard(dx2);
    unguard(dw2);
    unguard(db2);
    if (getenv("GN_VERBOSE"))
        printf("%-80s y %.1e dx %.1e dw %.1e db %.1e\n", name, ey, edx, edw, edb);

    float *all[] = {x, w, b, dy, y, yr, ws, dx, dxr, dw, dwr, db, dbr, base_dx, base_dw, base_db};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) unguard(all[i]);
}

/* col2im_strided on a matrix stored transposed gives col2im_ld's bits: the same sums in the
 * same order (maps up to 8x8 through the offset table, larger ones row by row). */
static void check_col2im_strided(gn_rng *r)
{
    static const int shapes[][7] = {/* C H W R stride pad P(=Q) */
                                    {3, 4, 4, 3, 1, 1, 4},
                                    {2, 9, 9, 3, 2, 1, 5},
                                    {2, 12, 12, 3, 1, 1, 12},
                                    {3, 11, 11, 5, 2, 2, 6}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const int *f = shapes[i];
        int C = f[0], H = f[1], W = f[2], R = f[3], st = f[4], pad = f[5], P = f[6];
        size_t rows = (size_t)C * R * R, cols = (size_t)P * P, nx = (size_t)C * H * W;
        float *col = guarded(rows * cols), *colt = guarded(rows * cols);
        float *a = guarded(nx), *b = guarded(nx);
        fill(col, rows * cols, r);
        for (size_t y = 0; y < rows; y++)
            for (size_t x = 0; x < cols; x++) colt[x * rows + y] = col[y * cols + x];
        fill(a, nx, r);
        memcpy(b, a, nx * sizeof *a);
        col2im_ld(a, col, (int)cols, C, H, W, R, R, st, pad, P, P);
        col2im_strided(b, colt, 1, rows, C, H, W, R, R, st, pad, P, P);
        CHECK_MSG(!memcmp(a, b, nx * sizeof *a) && guards_ok(b, nx),
                  "col2im_strided C%d %dx%d %dx%d/%d pad %d differs from col2im_ld", C, H, W, R,
                  R, st, pad);
        unguard(col);
        unguard(colt);
        unguard(a);
        unguard(b);
    }
}

int main(void)
{
    int maxt = kernel_util_max_threads();
    int tcount[3] = {1, 2, maxt > 2 ? maxt : 3};
    /* N C H W K R S stride pad groups */
    static const int fixed[][10] = {
        {2, 3, 8, 8, 4, 1, 1, 1, 0, 1},  /* 1x1 direct */
        {3, 5, 7, 5, 6, 1, 1, 2, 0, 1},  /* 1x1 stride 2 (im2col path) */
        {2, 3, 7, 5, 4, 1, 1, 1, 1, 1},  /* 1x1 padded */
        {2, 3, 9, 9, 4, 3, 3, 2, 1, 1},  /* 3x3 stride 2 pad 1 */
        {3, 4, 7, 5, 5, 3, 3, 1, 1, 1},  /* odd, non-square */
        {2, 2, 11, 6, 3, 5, 5, 1, 2, 1}, /* 5x5 pad 2 */
        {2, 3, 6, 7, 2, 5, 5, 3, 0, 1},  /* 5x5 stride 3, no pad */
        {4, 4, 6, 6, 6, 3, 3, 1, 1, 2},  /* groups 2 */
        {3, 6, 5, 7, 6, 3, 3, 2, 1, 6},  /* depthwise, stride 2 */
        {2, 4, 5, 5, 8, 3, 3, 1, 1, 4},  /* depthwise, multiplier 2 */
        {2, 4, 6, 6, 4, 1, 1, 1, 0, 2},  /* grouped 1x1 direct */
        {1, 3, 4, 4, 2, 4, 4, 1, 0, 1},  /* kernel = image */
        {5, 1, 3, 3, 1, 3, 3, 1, 2, 1},  /* padding larger than needed */
        {2, 3, 8, 8, 4, 7, 7, 2, 3, 1},  /* 7x7 stride 2 (a ResNet stem, small) */
        {5, 8, 12, 10, 12, 3, 3, 1, 1, 1}, /* a little larger: several images per thread */
    };
    gn_rng r = gn_rng_make(gn_rng_key(2024, 1, 1));
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        const int *f = fixed[i];
        conv2d_shape s = {.N = f[0], .C = f[1], .H = f[2], .W = f[3], .K = f[4], .R = f[5],
                          .S = f[6], .stride = f[7], .pad = f[8], .groups = f[9],
                          .algo = CONV2D_PER_IMAGE};
        check_shape(s, 1, (int)(i % 2), 1, &r);
        check_shape(s, maxt, (int)(i % 2), 1, &r);
        check_shape(s, tcount[2], 1, 0, &r);
        /* One image: with several threads this takes the multithreaded-sgemm path. */
        s.N = 1;
        check_shape(s, maxt, 1, 1, &r);
        /* Batched: 1, 3 and 7 images in chunks of 2 or 3 (partial last chunks) or as many as
         * the workspace budget allows. */
        static const int batches[] = {1, 3, 7}, chunks[] = {0, 2, 3};
        s.algo = CONV2D_BATCHED;
        for (int bi = 0; bi < 3; bi++)
            for (int ci = 0; ci < 3; ci++) {
                s.N = batches[bi];
                s.chunk = chunks[ci];
                check_shape(s, tcount[(bi + ci) % 3], (int)((i + ci) % 2), bi != 1, &r);
            }
        /* Automatic choice (small maps: batched). */
        s.algo = CONV2D_AUTO;
        s.chunk = 0;
        s.N = 4;
        check_shape(s, maxt, 1, 1, &r);
    }
    /* Batched chunks of more than 256 columns (the forward GEMM as is) and of fewer
     * (transposed) in one call: 20 images of 4x4, chunks of 17 and 3. */
    for (int ci = 0; ci < 2; ci++) {
        conv2d_shape s = {.N = 20, .C = 3, .H = 4, .W = 4, .K = 5, .R = 3, .S = 3, .stride = 1,
                          .pad = 1, .groups = 1, .algo = CONV2D_BATCHED, .chunk = ci ? 17 : 0};
        check_shape(s, maxt, ci, 1, &r);
    }
    check_col2im_strided(&r);
    /* Random awkward shapes. */
    for (int i = 0; i < 40; i++) {
        conv2d_shape s;
        s.groups = 1 + (int)gn_rng_below(&r, 3);
        s.C = s.groups * (1 + (int)gn_rng_below(&r, 3));
        s.K = s.groups * (1 + (int)gn_rng_below(&r, 4));
        s.R = 1 + (int)gn_rng_below(&r, 5);
        s.S = s.R;
        s.stride = 1 + (int)gn_rng_below(&r, 3);
        s.pad = (int)gn_rng_below(&r, (uint64_t)s.R);
        s.H = s.R + (int)gn_rng_below(&r, 9);
        s.W = s.R + (int)gn_rng_below(&r, 9);
        s.N = 1 + (int)gn_rng_below(&r, 4);
        s.algo = (int)gn_rng_below(&r, 3);
        s.chunk = (int)gn_rng_below(&r, 3);
        check_shape(s, tcount[gn_rng_below(&r, 3)], (int)gn_rng_below(&r, 2),
                    (int)(gn_rng_below(&r, 4) != 0), &r);
    }
    /* conv2d_shape_finish refuses what cannot work. */
    /* The chunk size stays within the batch and the workspace budget. */
    conv2d_shape big = {.N = 128, .C = 512, .H = 4, .W = 4, .K = 512, .R = 3, .S = 3,
                        .stride = 2, .pad = 1, .groups = 1};
    CHECK(conv2d_shape_finish(&big) == 0 && conv2d_is_batched(&big));
    int nbig = conv2d_chunk_images(&big);
    CHECK(nbig >= 1 && nbig < 128);
    CHECK(conv2d_ws_floats(&big, 2) <= ((size_t)2 << 20) + 64);
    big.chunk = 5;
    CHECK(conv2d_chunk_images(&big) == 5);
    big.N = 3;
    CHECK(conv2d_chunk_images(&big) == 3);
    conv2d_shape bad = {.N = 1, .C = 3, .H = 4, .W = 4, .K = 4, .R = 3, .S = 3, .stride = 1,
                        .pad = 0, .groups = 2};
    CHECK(conv2d_shape_finish(&bad) != 0);
    bad.groups = 1;
    bad.H = 2;
    CHECK(conv2d_shape_finish(&bad) != 0);
    bad.pad = 1;
    CHECK(conv2d_shape_finish(&bad) == 0 && bad.P == 2 && bad.Q == 4);
    return check_exit();
}
