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
#include "kernels/kprof.h"

#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

int conv2d_is_depthwise(const conv2d_shape *s) { return s->groups == s->C && s->K == s->C; }

int conv2d_takes_depthwise(const conv2d_shape *s)
{
    return s->algo == CONV2D_AUTO && conv2d_is_depthwise(s);
}

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

#define DOT_LANES 16

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
    int i0 = 0, i1 = Q, qa[3], qb[3];
    if (S == 3)
        for (int s = 0; s < 3; s++) {
            tap_range(s, st, pad, W, Q, &qa[s], &qb[s]);
            if (qa[s] > i0) i0 = qa[s];
            if (qb[s] < i1) i1 = qb[s];
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
                    for (int q = qa[s]; q < qb[s] && q < i0; q++)
                        yr[q] += wr[s] * xr[q * st - pad + s];
                    for (int q = qa[s] > i1 ? qa[s] : i1; q < qb[s]; q++)
                        yr[q] += wr[s] * xr[q * st - pad + s];
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

/* dw[0..2] += the three dots of a 3-wide kernel row over n interior columns: sum over q of
 * d[q] * x[q*st + s], s = 0, 1, 2, in DOT_LANES partial sums each */
GN_INLINE void dot3(float *restrict dw, const float *restrict d, const float *restrict x, int n,
                    int st)
{
    float a0[DOT_LANES] = {0}, a1[DOT_LANES] = {0}, a2[DOT_LANES] = {0};
    int q = 0;
    if (st == 1) {
        for (; q + DOT_LANES <= n; q += DOT_LANES)
            for (int l = 0; l < DOT_LANES; l++) {
                float v = d[q + l];
                a0[l] += v * x[q + l];
                a1[l] += v * x[q + l + 1];
                a2[l] += v * x[q + l + 2];
            }
    } else {
        for (; q + DOT_LANES <= n; q += DOT_LANES)
            for (int l = 0; l < DOT_LANES; l++) {
                float v = d[q + l];
                const float *xs = x + (size_t)(q + l) * st;
                a0[l] += v * xs[0];
                a1[l] += v * xs[1];
                a2[l] += v * xs[2];
            }
    }
    for (int l = 0; q < n; q++, l++) {
        const float *xs = x + (size_t)q * st;
        a0[l] += d[q] * xs[0];
        a1[l] += d[q] * xs[1];
        a2[l] += d[q] * xs[2];
    }
    float s0 = 0, s1 = 0, s2 = 0;
    for (int l = 0; l < DOT_LANES; l++) {
        s0 += a0[l];
        s1 += a1[l];
        s2 += a2[l];
    }
    dw[0] += s0;
    dw[1] += s1;
    dw[2] += s2;
}

/* ---- the padded, wide, phase-split layout ----
 * The plane is zero-padded to Hp x Wp (Hp = H + 2 pad, Wp = W + 2 pad) and split into
 * stride x stride phase planes of Hq x Wq (Hq = ceil(Hp/stride), Wq likewise):
 *   x_ab[i, j] = xp[i*stride + a, j*stride + b]
 * so that tap (r, s) of output (p, q) is x_ab[p + r/stride, q + s/stride] with a = r%stride,
 * b = s%stride: a stride-1 read in one phase plane. The output is computed on the "wide" grid
 * u = p*Wq + q, q in [0, Wq) (the extra columns are computed and dropped), so each tap is one
 * contiguous loop over all P*Wq positions, edges included:
 *   y_w[u] = b + sum_{r,s} w[r,s] x_ab[u + (r/stride)*Wq + s/stride]
 * and backward runs the same loops the other way round:
 *   dw[r,s] += sum_u dy_w[u] x_ab[u + ...]       (dy_w: dy with zeros in the extra columns)
 *   dx_ab[u + ...] += w[r,s] dy_w[u], then dx += dx_ab gathered back
 * With stride 1 there is one phase, the padded plane itself. Small maps (7x7, 3x3) gain most:
 * row-wise code spends its time on edges there. */

typedef struct wide_geom {
    int st, Hp, Wp, Hq, Wq;
    size_t phase; /* floats per phase plane, rounded up to a 64-byte line */
    size_t yw;    /* floats of y_w (dy_w), with margins of zeros on both sides of dy_w */
    size_t front; /* where dy_w starts in that buffer: (R-1)*Wq + S-1 zeros before it */
} wide_geom;

/* Per-thread slices and phase planes start on a 64-byte line. */
static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }

static wide_geom wide_of(const conv2d_shape *s)
{
    wide_geom g = {.st = s->stride, .Hp = s->H + 2 * s->pad, .Wp = s->W + 2 * s->pad};
    g.Hq = (g.Hp + g.st - 1) / g.st;
    g.Wq = (g.Wp + g.st - 1) / g.st;
    /* the last row's extra columns read up to (S-1)/stride past the plane */
    g.phase = round16((size_t)g.Hq * g.Wq + (size_t)s->S);
    g.front = (size_t)(s->R - 1) * g.Wq + (size_t)(s->S - 1);
    g.yw = round16(g.front + ((size_t)s->P + (size_t)s->R) * g.Wq);
    return g;
}

/* x phases, y_w, dx phases */
static size_t wide_slice(const conv2d_shape *s)
{
    wide_geom g = wide_of(s);
    return 2 * (size_t)g.st * g.st * g.phase + g.yw;
}

/* Which layout a shape takes. Measured with bench_depthwise (1 thread, CPU time, MobileNetV2
 * at 112 px, 16 images): at stride 1 the wide layout beats row-wise code everywhere, most on
 * small maps (192 x 14x14: 2.8 against 7.3 ms, 384 x 7x7: 2.1 against 5.3 ms); at stride 2 its
 * phase split costs about what it saves, and on large maps (96 x 56x56 -> 28x28: 14.7 against
 * 11.6 ms) row-wise code wins, on small ones (192 x 14x14 -> 7x7: 1.4 against 2.4 ms) not. */
#define WIDE_MAX_STRIDED_PQ 256

static int takes_wide(const conv2d_shape *s)
{
    return s->stride == 1 || s->P * s->Q <= WIDE_MAX_STRIDED_PQ;
}

size_t depthwise_ws_floats(const conv2d_shape *s, int threads)
{
    return takes_wide(s) ? (size_t)(threads > 1 ? threads : 1) * wide_slice(s) : 0;
}

/* The phase plane holding tap (r, s), and the tap's offset in it. */
GN_INLINE const float *tap_ptr(const float *ph, const wide_geom *g, int r, int s)
{
    return ph + (size_t)((r % g->st) * g->st + s % g->st) * g->phase +
           (size_t)(r / g->st) * g->Wq + (size_t)(s / g->st);
}

/* x:(H,W) -> the st*st phase planes of its zero-padded copy */
static void split_plane(float *restrict ph, const float *restrict x, const conv2d_shape *s,
                        const wide_geom *g)
{
    int st = g->st, pad = s->pad;
    memset(ph, 0, (size_t)st * st * g->phase * sizeof *ph);
    if (st == 1) {
        for (int h = 0; h < s->H; h++)
            memcpy(ph + (size_t)(h + pad) * g->Wq + pad, x + (size_t)h * s->W,
                   (size_t)s->W * sizeof *ph);
        return;
    }
    /* phase (a, b), row i: input row i*st + a - pad, columns j*st + b - pad */
    for (int a = 0; a < st; a++)
        for (int b = 0; b < st; b++) {
            float *pl = ph + (size_t)(a * st + b) * g->phase;
            int j0 = (pad - b + st - 1) / st, j1 = (s->W - 1 + pad - b) / st + 1;
            if (pad - b < 0) j0 = 0;
            if (j1 > g->Wq) j1 = g->Wq;
            for (int i = 0; i < g->Hq; i++) {
                int h = i * st + a - pad;
                if (h < 0 || h >= s->H) continue;
                const float *xr = x + (size_t)h * s->W;
                float *pr = pl + (size_t)i * g->Wq;
                for (int j = j0; j < j1; j++) pr[j] = xr[j * st + b - pad];
            }
        }
}

/* dx:(H,W) += the inside of the padded plane whose phase planes are ph */
static void gather_plane(float *restrict dx, const float *restrict ph, const conv2d_shape *s,
                         const wide_geom *g)
{
    int st = g->st, pad = s->pad;
    if (st == 1) {
        for (int h = 0; h < s->H; h++) {
            const float *src = ph + (size_t)(h + pad) * g->Wq + pad;
            float *dr = dx + (size_t)h * s->W;
            for (int j = 0; j < s->W; j++) dr[j] += src[j];
        }
        return;
    }
    for (int a = 0; a < st; a++)
        for (int b = 0; b < st; b++) {
            const float *pl = ph + (size_t)(a * st + b) * g->phase;
            int j0 = (pad - b + st - 1) / st, j1 = (s->W - 1 + pad - b) / st + 1;
            if (pad - b < 0) j0 = 0;
            if (j1 > g->Wq) j1 = g->Wq;
            for (int i = 0; i < g->Hq; i++) {
                int h = i * st + a - pad;
                if (h < 0 || h >= s->H) continue;
                float *dr = dx + (size_t)h * s->W;
                const float *pr = pl + (size_t)i * g->Wq;
                for (int j = j0; j < j1; j++) dr[j * st + b - pad] += pr[j];
            }
        }
}

static void forward_wide(float *restrict y, const float *restrict x, const float *restrict w,
                         float bias, float *restrict ws, const conv2d_shape *s)
{
    wide_geom g = wide_of(s);
    float *ph = ws, *restrict yw = ws + (size_t)g.st * g.st * g.phase;
    int n = s->P * g.Wq, R = s->R, S = s->S;
    split_plane(ph, x, s, &g);
    if (R == 3 && S == 3) {
        const float *t0 = tap_ptr(ph, &g, 0, 0), *t1 = tap_ptr(ph, &g, 0, 1);
        const float *t2 = tap_ptr(ph, &g, 0, 2), *t3 = tap_ptr(ph, &g, 1, 0);
        const float *t4 = tap_ptr(ph, &g, 1, 1), *t5 = tap_ptr(ph, &g, 1, 2);
        const float *t6 = tap_ptr(ph, &g, 2, 0), *t7 = tap_ptr(ph, &g, 2, 1);
        const float *t8 = tap_ptr(ph, &g, 2, 2);
        float w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3], w4 = w[4], w5 = w[5];
        float w6 = w[6], w7 = w[7], w8 = w[8];
        for (int u = 0; u < n; u++)
            yw[u] = bias + w0 * t0[u] + w1 * t1[u] + w2 * t2[u] + w3 * t3[u] + w4 * t4[u] +
                    w5 * t5[u] + w6 * t6[u] + w7 * t7[u] + w8 * t8[u];
    } else {
        for (int u = 0; u < n; u++) yw[u] = bias;
        for (int r = 0; r < R; r++)
            for (int k = 0; k < S; k++) axpy(yw, tap_ptr(ph, &g, r, k), w[r * S + k], n, 1);
    }
    for (int p = 0; p < s->P; p++)
        memcpy(y + (size_t)p * s->Q, yw + (size_t)p * g.Wq, (size_t)s->Q * sizeof *y);
}

static void backward_wide(float *restrict dx, float *restrict dw, const float *restrict dy,
                          const float *restrict x, const float *restrict w, float *restrict ws,
                          const conv2d_shape *s)
{
    wide_geom g = wide_of(s);
    size_t nph = (size_t)g.st * g.st * g.phase;
    float *ph = ws, *buf = ws + nph, *dph = buf + g.yw, *dyw = buf + g.front;
    int n = s->P * g.Wq, R = s->R, S = s->S;
    split_plane(ph, x, s, &g);
    /* dy_w, with zeros in the extra columns and in the margins around it */
    memset(buf, 0, g.yw * sizeof *buf);
    for (int p = 0; p < s->P; p++)
        memcpy(dyw + (size_t)p * g.Wq, dy + (size_t)p * s->Q, (size_t)s->Q * sizeof *dyw);
    for (int r = 0; r < R; r++) {
        if (S == 3 && g.st == 1) { /* the three taps are neighbours */
            dot3(dw + r * 3, dyw, tap_ptr(ph, &g, r, 0), n, 1);
            continue;
        }
        for (int k = 0; k < S; k++) dw[r * S + k] += dot(dyw, tap_ptr(ph, &g, r, k), n, 1);
    }
    if (!dx) return;
    if (g.st == 1 && R == 3 && S == 3) {
        /* The transposed convolution as one pass over the padded plane, reading dy_w at the
         * nine tap offsets (the margins make every read valid):
         *   dxp[v] = sum_{r,s} w[r,s] dy_w[v - r*Wq - s] */
        int Wq = g.Wq, m = g.Hp * Wq;
        const float *e0 = dyw, *e3 = dyw - Wq, *e6 = dyw - 2 * Wq;
        float w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3], w4 = w[4], w5 = w[5];
        float w6 = w[6], w7 = w[7], w8 = w[8];
        for (int v = 0; v < m; v++)
            dph[v] = w0 * e0[v] + w1 * e0[v - 1] + w2 * e0[v - 2] + w3 * e3[v] +
                     w4 * e3[v - 1] + w5 * e3[v - 2] + w6 * e6[v] + w7 * e6[v - 1] +
                     w8 * e6[v - 2];
        gather_plane(dx, dph, s, &g);
        return;
    }
    memset(dph, 0, nph * sizeof *dph);
    for (int r = 0; r < R; r++)
        for (int k = 0; k < S; k++)
            axpy_scatter(dph + (tap_ptr(ph, &g, r, k) - ph), dyw, w[r * S + k], n, 1);
    gather_plane(dx, dph, s, &g);
}

void depthwise_forward(float *restrict y, const float *restrict x, const float *restrict w,
                       const float *restrict b, float *restrict ws, const conv2d_shape *s,
                       int threads)
{
    GN_ASSERT(conv2d_is_depthwise(s));
    int C = s->C, RS = s->R * s->S, nt = plane_threads(threads);
    size_t xs = (size_t)s->H * s->W, ys = (size_t)s->P * s->Q;
    size_t slice = takes_wide(s) ? wide_slice(s) : 0;
    (void)nt; /* read by the pragma only */
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int i = 0; i < s->N * C; i++) {
        int c = i % C;
        if (slice)
            forward_wide(y + (size_t)i * ys, x + (size_t)i * xs, w + (size_t)c * RS,
                         b ? b[c] : 0.0f, ws + (size_t)kernel_thread_id() * slice, s);
        else
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
    /* 3-wide kernels: the columns where all three taps are inside, as in forward_plane */
    int i0 = 0, i1 = Q, qa[3], qb[3];
    if (S == 3)
        for (int s = 0; s < 3; s++) {
            tap_range(s, st, pad, W, Q, &qa[s], &qb[s]);
            if (qa[s] > i0) i0 = qa[s];
            if (qb[s] < i1) i1 = qb[s];
        }
    for (int p = 0; p < P; p++) {
        const float *dyr = dy + (size_t)p * Q;
        for (int r = 0; r < R; r++) {
            int h = p * st - pad + r;
            if (h < 0 || h >= H) continue;
            const float *xr = x + (size_t)h * W;
            float *dxr = dx ? dx + (size_t)h * W : NULL;
            if (S == 3 && i1 > i0) {
                int off = i0 * st - pad, n = i1 - i0; /* tap 0 of column i0 */
                dot3(dw + r * 3, dyr + i0, xr + off, n, st);
                if (dxr)
                    for (int s = 0; s < 3; s++)
                        axpy_scatter(dxr + off + s, dyr + i0, w[r * 3 + s], n, st);
                /* the edge columns, tap by tap */
                for (int s = 0; s < 3; s++) {
                    float ws = w[r * 3 + s], acc = 0;
                    for (int pass = 0; pass < 2; pass++) {
                        int a = pass ? (qa[s] > i1 ? qa[s] : i1) : qa[s];
                        int b = pass ? qb[s] : (qb[s] < i0 ? qb[s] : i0);
                        for (int q = a; q < b; q++) {
                            int j = q * st - pad + s;
                            acc += dyr[q] * xr[j];
                            if (dxr) dxr[j] += ws * dyr[q];
                        }
                    }
                    dw[r * 3 + s] += acc;
                }
                continue;
            }
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
                        const float *restrict x, const float *restrict w, float *restrict ws,
                        const conv2d_shape *s, int threads)
{
    GN_ASSERT(conv2d_is_depthwise(s));
    int C = s->C, RS = s->R * s->S, nt = plane_threads(threads);
    size_t xs = (size_t)s->H * s->W, ys = (size_t)s->P * s->Q;
    size_t slice = takes_wide(s) ? wide_slice(s) : 0;
    (void)nt; /* read by the pragma only */
    /* One channel per iteration: its dw filter and its dx planes are written by nobody else,
     * and the images are summed in order. */
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int c = 0; c < C; c++)
        for (int n = 0; n < s->N; n++) {
            size_t i = (size_t)n * C + c;
            if (slice)
                backward_wide(dx ? dx + i * xs : NULL, dw + (size_t)c * RS, dy + i * ys,
                              x + i * xs, w + (size_t)c * RS,
                              ws + (size_t)kernel_thread_id() * slice, s);
            else
                backward_plane(dx ? dx + i * xs : NULL, dw + (size_t)c * RS, dy + i * ys,
                               x + i * xs, w + (size_t)c * RS, s);
        }
}
