/* Fast convolution: im2col + cblas_sgemm. Glossary and layouts in conv.h.
 *
 * Per image, with col = im2col(x_n):(C*R*S, P*Q) and, for group g, the slices
 * w_g:(Kg, Cg*R*S), col_g:(Cg*R*S, P*Q), y_g:(Kg, P*Q):
 *   forward   y_g   = w_g col_g (+ b)
 *   weights   dw_g += dy_g col_g^T
 *   data      col_g = w_g^T dy_g, then dx_n += col2im(col)
 * A 1x1 stride-1 unpadded convolution uses x_n itself as col and writes dx_n directly.
 *
 * The batched path does the same for a chunk of nb images at once: col_cat:(C*R*S, nb*P*Q)
 * holds the images' column matrices side by side (image i in columns [i*PQ, (i+1)*PQ)),
 * y_cat:(K, nb*P*Q) likewise, so
 *   forward   y_cat_g = w_g col_cat_g, then scattered to y:(nb,K,P,Q) (+ b)
 *   weights   dw_g   += dy_cat_g col_cat_g^T, dy_cat gathered from dy:(nb,K,P,Q)
 *   data      col_cat_g = w_g^T dy_cat_g, then dx_n += col2im(image n's columns)
 * For a 1x1 stride-1 unpadded convolution the "im2col" is a plain gather of the planes. With one
 * group the data GEMM writes col_cat^T = dy_cat^T w instead (col2im_strided reads it), and
 * chunks of few columns compute y_cat^T = col_cat^T w^T (CONV_BATCH_T_MAX_COLS). */
#include "kernels/conv.h"
#include "kernels/depthwise.h"
#include "kernels/im2col.h"
#include "kernels/kprof.h"
#include "kernels/winograd.h"
#include "core/util.h"

#include <cblas.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

int conv2d_shape_finish(conv2d_shape *s)
{
    if (s->N < 1 || s->C < 1 || s->H < 1 || s->W < 1 || s->K < 1 || s->R < 1 || s->S < 1 ||
        s->stride < 1 || s->pad < 0 || s->groups < 1 || s->C % s->groups ||
        s->K % s->groups)
        return -1;
    int hp = s->H + 2 * s->pad - s->R, wp = s->W + 2 * s->pad - s->S;
    if (hp < 0 || wp < 0) return -1;
    s->P = hp / s->stride + 1;
    s->Q = wp / s->stride + 1;
    return 0;
}

int conv2d_is_direct(const conv2d_shape *s)
{
    return s->R == 1 && s->S == 1 && s->stride == 1 && s->pad == 0;
}

/* Per-thread slices are rounded up to 16 floats so each starts on a 64-byte line. */
static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }

static size_t col_floats(const conv2d_shape *s)
{
    return conv2d_is_direct(s) ? 0 : round16((size_t)s->C * s->R * s->S * s->P * s->Q);
}

static size_t dw_floats(const conv2d_shape *s)
{
    return round16((size_t)s->K * (s->C / s->groups) * s->R * s->S);
}

/* Batching pays while per-image GEMMs are thin. Measured with tests/bench/bench_conv on
 * ResNet-18 shapes, 2 threads (docs/performance.md): at P*Q = 4 one GEMM per chunk is 1.6-2.7x
 * faster than the loop over images, at 16 about even (0.8-1.25x), from 49 up the loop over
 * images (single-threaded sgemm, im2col hot in cache) wins or ties. */
#define CONV_BATCH_MAX_PQ 16
/* The batched path runs its data GEMM transposed, col_cat^T = dy_cat^T w, and its forward
 * GEMM too, y_cat^T = col_cat^T w^T, in chunks of at most this many columns (nb*P*Q): there
 * OpenBLAS is faster with the few columns as rows. `bench_conv gemm 2`, GFLOP/s as is ->
 * transposed, K x columns x C*R*S: 512 x 128 x 4608 (ResNet-18's 512x4x4 at batch 8) forward
 * 154 -> 171, data 158 -> 194; 512 x 32 x 4608: 95 -> 124, 96 -> 147; 512 x 256 x 4608:
 * 168 -> 180, 180 -> 196; from 400 columns on the forward loses 3-5% transposed (512 x 408 x
 * 4608: 174 -> 169), the data GEMM still gains 5-8% (177 -> 187). */
#define CONV_BATCH_T_MAX_COLS 256
/* Column matrix plus output matrix of one chunk: at most this many floats (8 MiB). */
#define CONV_BATCH_BUDGET_FLOATS ((size_t)2 << 20)

int conv2d_is_batched(const conv2d_shape *s)
{
    if (s->algo == CONV2D_BATCHED) return 1;
    if (s->algo == CONV2D_PER_IMAGE) return 0;
    return s->N > 1 && s->P * s->Q <= CONV_BATCH_MAX_PQ;
}

/* Floats of col_cat plus y_cat per image of a chunk. */
static size_t batch_floats_per_image(const conv2d_shape *s)
{
    return ((size_t)s->C * s->R * s->S + (size_t)s->K) * s->P * s->Q;
}

int conv2d_chunk_images(const conv2d_shape *s)
{
    size_t nb = CONV_BATCH_BUDGET_FLOATS / batch_floats_per_image(s);
    if (s->chunk > 0 && (size_t)s->chunk < nb) nb = (size_t)s->chunk;
    if (nb > (size_t)s->N) nb = (size_t)s->N;
    return nb < 1 ? 1 : (int)nb;
}

static size_t batch_ws_floats(const conv2d_shape *s)
{
    size_t cols = (size_t)conv2d_chunk_images(s) * s->P * s->Q;
    return round16((size_t)s->C * s->R * s->S * cols) + round16((size_t)s->K * cols);
}

size_t conv2d_ws_floats(const conv2d_shape *s, int threads)
{
    if (winograd_applies(s)) return winograd_ws_floats(s, s->winograd, threads);
    if (conv2d_takes_depthwise(s)) return depthwise_ws_floats(s, threads);
    if (conv2d_is_batched(s)) {
        /* A smaller batch than planned may be a single image: images in turn then. */
        size_t nb = batch_ws_floats(s), n1 = col_floats(s);
        return nb > n1 ? nb : n1;
    }
    return threads <= 1 ? col_floats(s) : (size_t)threads * (col_floats(s) + dw_floats(s));
}

/* Threads for an OpenMP loop over images: 1 means "images in turn, multithreaded sgemm". */
static int loop_threads(const conv2d_shape *s, int threads)
{
#ifdef _OPENMP
    int t = omp_get_max_threads();
    if (t > threads) t = threads;
    return t > 1 && s->N >= t ? t : 1;
#else
    (void)s;
    (void)threads;
    return 1;
#endif
}

/* x:(C,H,W) -> y:(K,P,Q) for one image */
static void forward_image(float *restrict y, const float *restrict x, const float *restrict w,
                          const float *restrict b, float *restrict col, const conv2d_shape *s,
                          double *t)
{
    double t0 = kprof_now(t);
    int G = s->groups, Kg = s->K / G, PQ = s->P * s->Q, CRS = s->C / G * s->R * s->S;
    const float *cm = x;
    if (!conv2d_is_direct(s)) {
        im2col(col, x, s->C, s->H, s->W, s->R, s->S, s->stride, s->pad, s->P, s->Q);
        cm = col;
    }
    kprof_lap(t, 0, &t0);
    if (b)
        for (int k = 0; k < s->K; k++)
            for (int i = 0; i < PQ; i++) y[(size_t)k * PQ + i] = b[k];
    t0 = kprof_now(t);
    for (int g = 0; g < G; g++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Kg, PQ, CRS, 1.0f,
                    w + (size_t)g * Kg * CRS, CRS, cm + (size_t)g * CRS * PQ, PQ,
                    b ? 1.0f : 0.0f, y + (size_t)g * Kg * PQ, PQ);
    kprof_lap(t, 1, &t0);
}

/* Threads for the copy loops of the batched path (im2col, scatter, gather, col2im over the
 * images of a chunk): they run between the sgemm calls, never around one. */
static int copy_threads(const conv2d_shape *s, int threads, int nb)
{
#ifdef _OPENMP
    int t = omp_get_max_threads();
    if (t > threads) t = threads;
    /* Forking costs a few microseconds: only for chunks of some size. */
    size_t work = (size_t)nb * s->C * s->R * s->S * s->P * s->Q;
    return t > 1 && nb > 1 && work >= 32768 ? t : 1;
#else
    (void)s;
    (void)threads;
    (void)nb;
    return 1;
#endif
}

/* Image i of a chunk -> its columns of col_cat:(C*R*S, ld), ld = nb*PQ. */
static void unfold_image(float *restrict col, int ld, const float *restrict x,
                         const conv2d_shape *s)
{
    int PQ = s->P * s->Q;
    if (conv2d_is_direct(s)) {
        for (int c = 0; c < s->C; c++)
            memcpy(col + (size_t)c * ld, x + (size_t)c * PQ, (size_t)PQ * sizeof *col);
    } else {
        im2col_ld(col, ld, x, s->C, s->H, s->W, s->R, s->S, s->stride, s->pad, s->P, s->Q);
    }
}

/* The batched path's shape and workspace: chunks of nb images; col_cat:(C*R*S, nb*PQ) at the
 * start of ws, then the K-row matrix (y_cat in forward, dy_cat in backward); G groups of Kg
 * filters over CRS = C/G*R*S column rows. */
typedef struct batch_geom {
    int G, Kg, PQ, CRS, nb;
    size_t xs, ys; /* floats per image of x and of y */
    float *col, *cat;
} batch_geom;

static batch_geom batch_geom_of(const conv2d_shape *s, float *ws)
{
    batch_geom g = {.G = s->groups, .PQ = s->P * s->Q, .nb = conv2d_chunk_images(s)};
    g.Kg = s->K / g.G;
    g.CRS = s->C / g.G * s->R * s->S;
    g.xs = (size_t)s->C * s->H * s->W;
    g.ys = (size_t)s->K * g.PQ;
    g.col = ws;
    g.cat = ws + round16((size_t)s->C * s->R * s->S * g.nb * g.PQ);
    return g;
}

/* Does a chunk of ld columns run its forward (data) GEMM transposed? (One group only.) */
static int transposed(const batch_geom *bg, int ld, int data)
{
    return bg->G == 1 && (data || ld <= CONV_BATCH_T_MAX_COLS);
}

/* x:(N,C,H,W) -> y:(N,K,P,Q), chunks of nb images through one sgemm per group. */
static void forward_batched(float *restrict y, const float *restrict x, const float *restrict w,
                            const float *restrict b, float *restrict ws, const conv2d_shape *s,
                            int threads, double *t)
{
    batch_geom bg = batch_geom_of(s, ws);
    int G = bg.G, Kg = bg.Kg, PQ = bg.PQ, CRS = bg.CRS, nb = bg.nb;
    size_t xs = bg.xs, ys = bg.ys;
    float *col = bg.col, *ycat = bg.cat;
    for (int n0 = 0; n0 < s->N; n0 += nb) {
        int m = s->N - n0 < nb ? s->N - n0 : nb, ld = m * PQ, nt = copy_threads(s, threads, m);
        (void)nt; /* read by the pragmas only */
        double t0 = kprof_now(t);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
        for (int i = 0; i < m; i++)
            unfold_image(col + (size_t)i * PQ, ld, x + (n0 + i) * xs, s);
        kprof_lap(t, 0, &t0);
        int tr = transposed(&bg, ld, 0);
        if (tr) /* y_cat^T:(ld, K), one group */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasTrans, ld, Kg, CRS, 1.0f, col, ld, w, CRS,
                        0.0f, ycat, Kg);
        else
            for (int g = 0; g < G; g++)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Kg, ld, CRS, 1.0f,
                            w + (size_t)g * Kg * CRS, CRS, col + (size_t)g * CRS * ld, ld, 0.0f,
                            ycat + (size_t)g * Kg * ld, ld);
        kprof_lap(t, 1, &t0);
        /* entry (k, column j) of y_cat */
        size_t rs = tr ? 1 : (size_t)ld, cs = tr ? (size_t)s->K : 1;
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
        for (int i = 0; i < m; i++) {
            float *yi = y + (n0 + i) * ys;
            for (int k = 0; k < s->K; k++) {
                const float *src = ycat + k * rs + (size_t)i * PQ * cs;
                float *dst = yi + (size_t)k * PQ, bk = b ? b[k] : 0.0f;
                for (int j = 0; j < PQ; j++) dst[j] = src[j * cs] + bk;
            }
        }
        kprof_lap(t, 0, &t0);
    }
}

/* dw += dy x (chunked, as forward_batched), and dx += conv^T(dy, w) if dx. */
static void backward_batched(float *restrict dx, float *restrict dw, const float *restrict dy,
                             const float *restrict x, const float *restrict w,
                             float *restrict ws, const conv2d_shape *s, int threads, double *t)
{
    batch_geom bg = batch_geom_of(s, ws);
    int G = bg.G, Kg = bg.Kg, PQ = bg.PQ, CRS = bg.CRS, nb = bg.nb, direct = conv2d_is_direct(s);
    size_t xs = bg.xs, ys = bg.ys;
    float *col = bg.col, *dycat = bg.cat;
    for (int n0 = 0; n0 < s->N; n0 += nb) {
        int m = s->N - n0 < nb ? s->N - n0 : nb, ld = m * PQ, nt = copy_threads(s, threads, m);
        (void)nt; /* read by the pragmas only */
        double t0 = kprof_now(t);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
        for (int i = 0; i < m; i++) {
            unfold_image(col + (size_t)i * PQ, ld, x + (n0 + i) * xs, s);
            const float *dyi = dy + (n0 + i) * ys;
            for (int k = 0; k < s->K; k++)
                memcpy(dycat + (size_t)k * ld + (size_t)i * PQ, dyi + (size_t)k * PQ,
                       (size_t)PQ * sizeof *dycat);
        }
        kprof_lap(t, 0, &t0);
        for (int g = 0; g < G; g++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Kg, CRS, ld, 1.0f,
                        dycat + (size_t)g * Kg * ld, ld, col + (size_t)g * CRS * ld, ld, 1.0f,
                        dw + (size_t)g * Kg * CRS, CRS);
        if (!dx) {
            kprof_lap(t, 1, &t0);
            continue;
        }
        int tr = transposed(&bg, ld, 1);
        if (tr) /* col_cat^T:(ld, CRS), one group */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ld, CRS, Kg, 1.0f, dycat, ld, w,
                        CRS, 0.0f, col, CRS);
        else
            for (int g = 0; g < G; g++)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, CRS, ld, Kg, 1.0f,
                            w + (size_t)g * Kg * CRS, CRS, dycat + (size_t)g * Kg * ld, ld, 0.0f,
                            col + (size_t)g * CRS * ld, ld);
        kprof_lap(t, 1, &t0);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
        for (int i = 0; i < m; i++) {
            float *dxi = dx + (n0 + i) * xs;
            if (tr) { /* image i's columns: rows i*PQ .. of col_cat^T */
                col2im_strided(dxi, col + (size_t)i * PQ * CRS, 1, (size_t)CRS, s->C, s->H,
                               s->W, s->R, s->S, s->stride, s->pad, s->P, s->Q);
                continue;
            }
            const float *ci = col + (size_t)i * PQ;
            if (direct) {
                for (int c = 0; c < s->C; c++) {
                    const float *src = ci + (size_t)c * ld;
                    float *dst = dxi + (size_t)c * PQ;
                    for (int j = 0; j < PQ; j++) dst[j] += src[j];
                }
            } else {
                col2im_ld(dxi, ci, ld, s->C, s->H, s->W, s->R, s->S, s->stride, s->pad, s->P,
                          s->Q);
            }
        }
        kprof_lap(t, 0, &t0);
    }
}

void conv2d_forward(float *restrict y, const float *restrict x, const float *restrict w,
                    const float *restrict b, float *restrict ws, const conv2d_shape *s,
                    int threads)
{
    conv2d_forward_prof(y, x, w, b, ws, s, threads, NULL);
}

void conv2d_forward_prof(float *restrict y, const float *restrict x, const float *restrict w,
                         const float *restrict b, float *restrict ws, const conv2d_shape *s,
                         int threads, double *prof)
{
    if (winograd_applies(s)) {
        winograd_forward_prof(y, x, w, b, ws, s, threads, prof);
        return;
    }
    if (conv2d_takes_depthwise(s)) {
        depthwise_forward(y, x, w, b, ws, s, threads);
        return;
    }
    size_t xs = (size_t)s->C * s->H * s->W, ys = (size_t)s->K * s->P * s->Q;
    if (conv2d_is_batched(s)) {
        forward_batched(y, x, w, b, ws, s, threads, prof);
        return;
    }
    int nt = loop_threads(s, threads);
    if (nt == 1) {
        for (int n = 0; n < s->N; n++) forward_image(y + n * ys, x + n * xs, w, b, ws, s, prof);
        return;
    }
    size_t slice = col_floats(s) + dw_floats(s);
    double part[KPROF_MAX_THREADS][2] = {{0}};
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int n = 0; n < s->N; n++) {
        int id = kernel_thread_id();
        forward_image(y + n * ys, x + n * xs, w, b, ws + (size_t)id * slice, s,
                      prof && id < KPROF_MAX_THREADS ? part[id] : NULL);
    }
    kprof_merge(prof, part, nt);
}

/* One image: dw += dy col^T, then (if dx) dx += col2im(w^T dy). col is overwritten. */
static void backward_image(float *restrict dx, float *restrict dw, const float *restrict dy,
                           const float *restrict x, const float *restrict w,
                           float *restrict col, const conv2d_shape *s, double *t)
{
    double t0 = kprof_now(t);
    int G = s->groups, Kg = s->K / G, PQ = s->P * s->Q, CRS = s->C / G * s->R * s->S;
    int direct = conv2d_is_direct(s);
    const float *cm = x;
    if (!direct) {
        im2col(col, x, s->C, s->H, s->W, s->R, s->S, s->stride, s->pad, s->P, s->Q);
        cm = col;
    }
    kprof_lap(t, 0, &t0);
    for (int g = 0; g < G; g++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Kg, CRS, PQ, 1.0f,
                    dy + (size_t)g * Kg * PQ, PQ, cm + (size_t)g * CRS * PQ, PQ, 1.0f,
                    dw + (size_t)g * Kg * CRS, CRS);
    kprof_lap(t, 1, &t0);
    if (!dx) return;
    /* direct: dx itself is the column matrix, so accumulate into it (beta 1). */
    float *out = direct ? dx : col;
    for (int g = 0; g < G; g++)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, CRS, PQ, Kg, 1.0f,
                    w + (size_t)g * Kg * CRS, CRS, dy + (size_t)g * Kg * PQ, PQ,
                    direct ? 1.0f : 0.0f, out + (size_t)g * CRS * PQ, PQ);
    kprof_lap(t, 1, &t0);
    if (!direct) col2im(dx, col, s->C, s->H, s->W, s->R, s->S, s->stride, s->pad, s->P, s->Q);
    kprof_lap(t, 0, &t0);
}

void conv2d_backward(float *restrict dx, float *restrict dw, float *restrict db,
                     const float *restrict dy, const float *restrict x,
                     const float *restrict w, float *restrict ws, const conv2d_shape *s,
                     int threads)
{
    conv2d_backward_prof(dx, dw, db, dy, x, w, ws, s, threads, NULL);
}

void conv2d_backward_prof(float *restrict dx, float *restrict dw, float *restrict db,
                          const float *restrict dy, const float *restrict x,
                          const float *restrict w, float *restrict ws, const conv2d_shape *s,
                          int threads, double *prof)
{
    if (winograd_applies(s)) {
        winograd_backward_prof(dx, dw, db, dy, x, w, ws, s, threads, prof);
        return;
    }
    size_t xs = (size_t)s->C * s->H * s->W, ys = (size_t)s->K * s->P * s->Q;
    int PQ = s->P * s->Q;
    size_t nw = (size_t)s->K * (s->C / s->groups) * s->R * s->S;
    int nt = loop_threads(s, threads);
    if (db) {
        /* Each k sums its images in order: deterministic whatever the thread count. */
#pragma omp parallel for schedule(static) if (nt > 1 && (size_t)s->N * ys > 65536)
        for (int k = 0; k < s->K; k++) {
            float acc = 0;
            for (int n = 0; n < s->N; n++) {
                const float *d = dy + n * ys + (size_t)k * PQ;
                float a = 0;
                for (int i = 0; i < PQ; i++) a += d[i];
                acc += a;
            }
            db[k] += acc;
        }
    }
    if (conv2d_takes_depthwise(s)) {
        depthwise_backward(dx, dw, dy, x, w, ws, s, threads);
        return;
    }
    if (conv2d_is_batched(s)) {
        backward_batched(dx, dw, dy, x, w, ws, s, threads, prof);
        return;
    }
    if (nt == 1) {
        for (int n = 0; n < s->N; n++)
            backward_image(dx ? dx + n * xs : NULL, dw, dy + n * ys, x + n * xs, w, ws, s,
                           prof);
        return;
    }
    size_t cf = col_floats(s), slice = cf + dw_floats(s);
    double part[KPROF_MAX_THREADS][2] = {{0}};
#pragma omp parallel num_threads(nt)
    {
        int id = kernel_thread_id();
        float *mine = ws + (size_t)id * slice;
        double *pt = prof && id < KPROF_MAX_THREADS ? part[id] : NULL;
        memset(mine + cf, 0, nw * sizeof(float));
#pragma omp for schedule(static)
        for (int n = 0; n < s->N; n++)
            backward_image(dx ? dx + n * xs : NULL, mine + cf, dy + n * ys, x + n * xs, w,
                           mine, s, pt);
        /* The implicit barrier above: every partial is complete. Sum them in thread order. */
#pragma omp for schedule(static)
        for (size_t i = 0; i < nw; i++) {
            float acc = 0;
            for (int t = 0; t < nt; t++) acc += ws[(size_t)t * slice + cf + i];
            dw[i] += acc;
        }
    }
    kprof_merge(prof, part, nt);
}
