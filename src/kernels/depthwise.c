/* Depthwise convolution on the planes directly. Glossary and layouts in depthwise.h.
 *
 * Everything is done a row at a time. For output row p and kernel row r the input row is
 * h = p*stride - pad + r (skipped when outside the map); for kernel column s the output columns
 * whose input column q*stride - pad + s lies inside the row are one interval [q0, q1), computed
 * once (tap_range), so the loops over q have no bounds tests:
 *   forward   y[p, q]              += w[r, s] * x[h, q*stride - pad + s]
 *   data      dx[h, q*stride-pad+s] += w[r, s] * dy[p, q]
 *   weights   dw[r, s]             += sum_q dy[p, q] * x[h, q*stride - pad + s]
 * For 3-wide kernels the forward adds the three taps of a kernel row in one pass over the
 * columns where all three are inside (one load and store of y instead of three). */
#include "kernels/depthwise.h"
#include "core/util.h"

#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

int conv2d_is_depthwise(const conv2d_shape *s) { return s->groups == s->C && s->K == s->C; }

/* Threads for the loop over planes or channels: at most `threads`, at most OpenMP's. */
static int plane_threads(int threads)
{
#ifdef _OPENMP
    int t = omp_get_max_threads();
    return threads < t ? (threads > 1 ? threads : 1) : t;
#else
    (void)threads;
    return 1;
#endif
}

/* Output columns [*q0, *q1) whose input column q*st - pad + s is in [0, W). */
static void tap_range(int s, int st, int pad, int W, int Q, int *q0, int *q1)
{
    int lo = pad - s, hi = W - 1 + pad - s; /* q*st must lie in [lo, hi] */
    int a = lo > 0 ? (lo + st - 1) / st : 0;
    int b = hi < 0 ? 0 : hi / st + 1;
    if (b > Q) b = Q;
    *q0 = a;
    *q1 = b > a ? b : a;
}

/* y[q] += a * x[q*st] for q in [0, n) */
GN_INLINE void axpy(float *restrict y, const float *restrict x, float a, int n, int st)
{
    if (st == 1)
        for (int q = 0; q < n; q++) y[q] += a * x[q];
    else
        for (int q = 0; q < n; q++) y[q] += a * x[(size_t)q * st];
}

/* x[q*st] += a * y[q] for q in [0, n) */
GN_INLINE void axpy_scatter(float *restrict x, const float *restrict y, float a, int n,
                                   int st)
{
    if (st == 1)
        for (int q = 0; q < n; q++) x[q] += a * y[q];
    else
        for (int q = 0; q < n; q++) x[(size_t)q * st] += a * y[q];
}

#define DOT_LANES 8

/* sum over q in [0, n) of d[q] * x[q*st], in DOT_LANES partial sums (vectorizes, and the
 * order is fixed) */
GN_INLINE float dot(const float *restrict d, const float *restrict x, int n, int st)
{
    float acc[DOT_LANES] = {0};
    int q = 0;
    if (st == 1) {
        for (; q + DOT_LANES <= n; q += DOT_LANES)
            for (int l = 0; l < DOT_LANES; l++) acc[l] += d[q + l] * x[q + l];
    } else {
        for (; q + DOT_LANES <= n; q += DOT_LANES)
            for (int l = 0; l < DOT_LANES; l++) acc[l] += d[q + l] * x[(size_t)(q + l) * st];
    }
    for (int l = 0; q < n; q++, l++) acc[l] += d[q] * x[(size_t)q * st];
    float sum = 0;
    for (int l = 0; l < DOT_LANES; l++) sum += acc[l];
    return sum;
}

/* One plane: x:(H,W) w:(R,S) -> y:(P,Q) = conv + bias */
static void forward_plane(float *restrict y, const float *restrict x, const float *restrict w,
                          float bias, const conv2d_shape *sh)
{
    int H = sh->H, W = sh->W, R = sh->R, S = sh->S, st = sh->stride, pad = sh->pad;
    int P = sh->P, Q = sh->Q;
    /* Columns where all three taps of a 3-wide kernel row are inside: the intersection. */
    int i0 = 0, i1 = Q;
    if (S == 3)
        for (int s = 0; s < 3; s++) {
            int a, b;
            tap_range(s, st, pad, W, Q, &a, &b);
            if (a > i0) i0 = a;
            if (b < i1) i1 = b;
        }
    for (int p = 0; p < P; p++) {
        float *restrict yr = y + (size_t)p * Q;
        for (int q = 0; q < Q; q++) yr[q] = bias;
        for (int r = 0; r < R; r++) {
            int h = p * st - pad + r;
            if (h < 0 || h >= H) continue;
            /* tap s of output column q reads xr[q*st - pad + s] */
            const float *xr = x + (size_t)h * W;
            const float *wr = w + (size_t)r * S;
            if (S == 3 && i1 > i0) {
                float w0 = wr[0], w1 = wr[1], w2 = wr[2];
                const float *xi = xr + ((size_t)i0 * st - (size_t)pad); /* column i0, tap 0 */
                float *yi = yr + i0;
                int n = i1 - i0;
                if (st == 1) {
                    for (int q = 0; q < n; q++) yi[q] += w0 * xi[q] + w1 * xi[q + 1] + w2 * xi[q + 2];
                } else {
                    for (int q = 0; q < n; q++) {
                        const float *xs = xi + (size_t)q * st;
                        yi[q] += w0 * xs[0] + w1 * xs[1] + w2 * xs[2];
                    }
                }
                /* the edge columns, tap by tap */
                for (int s = 0; s < 3; s++) {
                    int a, b;
                    tap_range(s, st, pad, W, Q, &a, &b);
                    for (int q = a; q < b && q < i0; q++) yr[q] += wr[s] * xr[q * st - pad + s];
                    for (int q = a > i1 ? a : i1; q < b; q++) yr[q] += wr[s] * xr[q * st - pad + s];
                }
                continue;
            }
            for (int s = 0; s < S; s++) {
                int a, b;
                tap_range(s, st, pad, W, Q, &a, &b);
                if (b > a) axpy(yr + a, xr + (a * st - pad + s), wr[s], b - a, st);
            }
        }
    }
}

void depthwise_forward(float *restrict y, const float *restrict x, const float *restrict w,
                       const float *restrict b, const conv2d_shape *s, int threads)
{
    GN_ASSERT(conv2d_is_depthwise(s));
    int C = s->C, RS = s->R * s->S, nt = plane_threads(threads);
    size_t xs = (size_t)s->H * s->W, ys = (size_t)s->P * s->Q;
    (void)nt; /* read by the pragma only */
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int i = 0; i < s->N * C; i++) {
        int c = i % C;
        forward_plane(y + (size_t)i * ys, x + (size_t)i * xs, w + (size_t)c * RS,
                      b ? b[c] : 0.0f, s);
    }
}

/* One plane of one image: dx:(H,W) += conv^T(dy, w) (if dx), dw:(R,S) += dy * x */
static void backward_plane(float *restrict dx, float *restrict dw, const float *restrict dy,
                           const float *restrict x, const float *restrict w,
                           const conv2d_shape *sh)
{
    int H = sh->H, W = sh->W, R = sh->R, S = sh->S, st = sh->stride, pad = sh->pad;
    int P = sh->P, Q = sh->Q;
    for (int p = 0; p < P; p++) {
        const float *dyr = dy + (size_t)p * Q;
        for (int r = 0; r < R; r++) {
            int h = p * st - pad + r;
            if (h < 0 || h >= H) continue;
            const float *xr = x + (size_t)h * W;
            float *dxr = dx ? dx + (size_t)h * W : NULL;
            for (int s = 0; s < S; s++) {
                int a, b;
                tap_range(s, st, pad, W, Q, &a, &b);
                if (b <= a) continue;
                int off = a * st - pad + s; /* the input column of output column a */
                dw[r * S + s] += dot(dyr + a, xr + off, b - a, st);
                if (dxr) axpy_scatter(dxr + off, dyr + a, w[r * S + s], b - a, st);
            }
        }
    }
}

void depthwise_backward(float *restrict dx, float *restrict dw, const float *restrict dy,
                        const float *restrict x, const float *restrict w, const conv2d_shape *s,
                        int threads)
{
    GN_ASSERT(conv2d_is_depthwise(s));
    int C = s->C, RS = s->R * s->S, nt = plane_threads(threads);
    size_t xs = (size_t)s->H * s->W, ys = (size_t)s->P * s->Q;
    (void)nt; /* read by the pragma only */
    /* One channel per iteration: its dw filter and its dx planes are written by nobody else,
     * and the images are summed in order. */
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int c = 0; c < C; c++)
        for (int n = 0; n < s->N; n++) {
            size_t i = (size_t)n * C + c;
            backward_plane(dx ? dx + i * xs : NULL, dw + (size_t)c * RS, dy + i * ys,
                           x + i * xs, w + (size_t)c * RS, s);
        }
}
