/* Pooling kernels (see pool.h). Parallel loops run over the N*C planes, which are independent
 * in both directions, so every thread writes its own planes. */
#include "kernels/pool.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static inline int imax(int a, int b) { return a > b ? a : b; }
static inline int imin(int a, int b) { return a < b ? a : b; }

/* Max pooling goes through a copy of each plane framed with -inf, rows and columns from -O to
 * the last window's end: every window then lies inside the frame, and a whole row of outputs
 * runs as one loop over q (vectorizable, even on ResNet's 16-wide maps at 64 px) with no edge
 * cases. Each output starts at -inf with the index of its window's first pixel inside the image
 * and takes, element by element in row-major window order, a value above its best (or the
 * first NaN). A frame cell never wins (-inf is not above anything, nor NaN), so indices stay
 * in the image, ties go to the first maximum, and a window of -inf pixels answers its first.
 * With stride 2 each frame row is stored as its even columns, then its odd ones, so the
 * window's columns 2q, 2q+1, 2q+2 are even[q], odd[q], even[q+1]: unit-stride loads. */
typedef struct pool_frame {
    float *buf;
    int Hp, Wp; /* frame rows, floats per frame row: input row h is frame row h + O */
    int half;   /* stride 2: the odd columns start here in a row (else 0) */
    int Qv;     /* outputs per row rounded up to whole vectors (the frame is that wide) */
    float *yrow;    /* Qv outputs of the row at work */
    int32_t *irow;  /* and their indices */
} pool_frame;

/* Outputs per row are computed in whole vectors of this many lanes, the extra ones from frame
 * cells alone and never stored: no remainder loops on rows like 28 or 56 outputs. */
#define POOL_VEC 16

/* d[a..b) = -inf */
static inline void fill_neg_inf(float *d, int a, int b)
{
    for (int c = a; c < b; c++) d[c] = -INFINITY;
}

/* Each frame row: -inf on the frame cells, the image row on the rest (each cell written once). */
static void frame_fill(pool_frame *f, const float *restrict xp, int H, int W, int O)
{
    for (int r = 0; r < f->Hp; r++) {
        float *dst = f->buf + (size_t)r * f->Wp;
        int h = r - O;
        if (h < 0 || h >= H) {
            fill_neg_inf(dst, 0, f->Wp);
            continue;
        }
        const float *row = xp + (size_t)h * W; /* frame column c is row[c - O] */
        int c1 = imin(O + W, f->Wp);           /* image columns: frame [O, c1) */
        if (!f->half) {
            fill_neg_inf(dst, 0, O);
            memcpy(dst + O, row, (size_t)(c1 - O) * sizeof(float));
            fill_neg_inf(dst, c1, f->Wp);
            continue;
        }
        for (int par = 0; par < 2; par++) { /* frame column c = 2j + par: image j in [j0, j1) */
            float *d = dst + par * f->half;
            int j0 = (O - par + 1) / 2, j1 = imax(j0, (c1 - par + 1) / 2);
            fill_neg_inf(d, 0, j0);
            for (int j = j0; j < j1; j++) d[j] = row[2 * j + par - O];
            fill_neg_inf(d, j1, f->half);
        }
    }
}

/* The running maximum of a row of outputs against one window element per output */
static inline void take_max(float *restrict yr, int32_t *restrict ir, const float *restrict v,
                            int vs, int Q, int32_t i0, int is)
{
    for (int q = 0; q < Q; q++) {
        float x = v[q * vs], best = yr[q];
        int take = (x > best) | ((x != x) & (best == best));
        yr[q] = take ? x : best;
        ir[q] = take ? i0 + q * is : ir[q];
    }
}

/* Output row p from the frame into f->yrow/irow (Qv outputs, the first Q real); K, S constant
 * in the specialised copies. */
static inline void maxpool_frame_row(const pool_frame *f, int W, int p, int K, int S, int O)
{
    float *restrict yr = f->yrow;
    int32_t *restrict ir = f->irow;
    int h0 = p * S - O, hv = imax(h0, 0), Qv = f->Qv;
    for (int q = 0; q < Qv; q++) {
        yr[q] = -INFINITY;
        ir[q] = hv * W + imax(q * S - O, 0);
    }
    for (int r = 0; r < K; r++) {
        const float *row = f->buf + (size_t)(p * S + r) * f->Wp;
        int hw = (h0 + r) * W - O; /* + frame column = index in the plane */
        for (int s = 0; s < K; s++) {
            if (f->half) /* S == 2: column 2q + s */
                take_max(yr, ir, row + (s & 1) * f->half + (s >> 1), 1, Qv, hw + s, 2);
            else
                take_max(yr, ir, row + s, S, Qv, hw + s, S);
        }
    }
}

void maxpool_forward(float *restrict y, int32_t *restrict idx, const float *restrict x, int N,
                     int C, int H, int W, int P, int Q, int K, int S, int O)
{
    const ptrdiff_t planes = (ptrdiff_t)N * C;
    pool_frame f0 = {.Hp = (P - 1) * S + K, .Qv = (Q + POOL_VEC - 1) / POOL_VEC * POOL_VEC};
    f0.Wp = (f0.Qv - 1) * S + K;
    if (S == 2) { /* an even row length, half of it for each parity */
        f0.Wp += f0.Wp & 1;
        f0.half = f0.Wp / 2;
    }
#pragma omp parallel if (planes * P * Q * K * K > 65536)
    {
        pool_frame f = f0;
        f.buf = malloc(((size_t)f.Hp * f.Wp + f.Qv) * sizeof(float));
        f.irow = malloc((size_t)f.Qv * sizeof(int32_t));
        f.yrow = f.buf ? f.buf + (size_t)f.Hp * f.Wp : NULL;
#pragma omp for schedule(static)
        for (ptrdiff_t pl = 0; pl < planes; pl++) {
            float *yp = y + pl * P * Q;
            int32_t *ip = idx + pl * P * Q;
            if (!f.buf || !f.irow) { /* no memory for the frame: the same results, slowly */
                maxpool_forward_ref(yp, ip, x + pl * H * W, 1, 1, H, W, P, Q, K, S, O);
                continue;
            }
            frame_fill(&f, x + pl * H * W, H, W, O);
            for (int p = 0; p < P; p++) {
                /* Constant window and stride for the common cases (ResNet's 3x3/2, VGG's
                 * 2x2/2). */
                if (K == 3 && S == 2)
                    maxpool_frame_row(&f, W, p, 3, 2, O);
                else if (K == 2 && S == 2)
                    maxpool_frame_row(&f, W, p, 2, 2, O);
                else
                    maxpool_frame_row(&f, W, p, K, S, O);
                memcpy(yp + p * Q, f.yrow, (size_t)Q * sizeof(float));
                memcpy(ip + p * Q, f.irow, (size_t)Q * sizeof(int32_t));
            }
        }
        free(f.buf);
        free(f.irow);
    }
}

void maxpool_forward_ref(float *restrict y, int32_t *restrict idx, const float *restrict x, int N,
                         int C, int H, int W, int P, int Q, int K, int S, int O)
{
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (int p = 0; p < P; p++)
                for (int q = 0; q < Q; q++) {
                    int best_i = -1;
                    float best = 0;
                    for (int r = 0; r < K; r++)
                        for (int s = 0; s < K; s++) {
                            int h = p * S - O + r, w = q * S - O + s;
                            if (h < 0 || h >= H || w < 0 || w >= W) continue;
                            float v = x[(((size_t)n * C + c) * H + h) * W + w];
                            if (best_i < 0 || v > best || (v != v && best == best)) {
                                best = v;
                                best_i = h * W + w;
                            }
                        }
                    size_t o = (((size_t)n * C + c) * P + p) * Q + q;
                    y[o] = best;
                    idx[o] = best_i;
                }
}

void maxpool_backward(float *restrict dx, const float *restrict dy, const int32_t *restrict idx,
                      int N, int C, int H, int W, int P, int Q)
{
    const ptrdiff_t planes = (ptrdiff_t)N * C;
#pragma omp parallel for schedule(static) if (planes * P * Q > 65536)
    for (ptrdiff_t pl = 0; pl < planes; pl++) {
        float *dxp = dx + pl * H * W;
        const float *dyp = dy + pl * P * Q;
        const int32_t *ip = idx + pl * P * Q;
        for (int o = 0; o < P * Q; o++) dxp[ip[o]] += dyp[o];
    }
}

void avgpool_forward(float *restrict y, const float *restrict x, int N, int C, int H, int W,
                     int P, int Q, int K, int S, int O)
{
    const ptrdiff_t planes = (ptrdiff_t)N * C;
    const float scale = 1.0f / (float)(K * K);
#pragma omp parallel for schedule(static) if (planes * P * Q * K * K > 65536)
    for (ptrdiff_t pl = 0; pl < planes; pl++) {
        const float *xp = x + pl * H * W;
        float *yp = y + pl * P * Q;
        for (int p = 0; p < P; p++) {
            int h0 = imax(p * S - O, 0), h1 = imin(p * S - O + K, H);
            for (int q = 0; q < Q; q++) {
                int w0 = imax(q * S - O, 0), w1 = imin(q * S - O + K, W);
                float sum = 0;
                for (int h = h0; h < h1; h++)
                    for (int w = w0; w < w1; w++) sum += xp[(ptrdiff_t)h * W + w];
                yp[p * Q + q] = sum * scale;
            }
        }
    }
}

void avgpool_forward_ref(float *restrict y, const float *restrict x, int N, int C, int H, int W,
                         int P, int Q, int K, int S, int O)
{
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (int p = 0; p < P; p++)
                for (int q = 0; q < Q; q++) {
                    float sum = 0;
                    for (int r = 0; r < K; r++)
                        for (int s = 0; s < K; s++) {
                            int h = p * S - O + r, w = q * S - O + s;
                            if (h < 0 || h >= H || w < 0 || w >= W) continue;
                            sum += x[(((size_t)n * C + c) * H + h) * W + w];
                        }
                    y[(((size_t)n * C + c) * P + p) * Q + q] = sum * (1.0f / (float)(K * K));
                }
}

void avgpool_backward(float *restrict dx, const float *restrict dy, int N, int C, int H, int W,
                      int P, int Q, int K, int S, int O)
{
    const ptrdiff_t planes = (ptrdiff_t)N * C;
    const float scale = 1.0f / (float)(K * K);
#pragma omp parallel for schedule(static) if (planes * P * Q * K * K > 65536)
    for (ptrdiff_t pl = 0; pl < planes; pl++) {
        float *dxp = dx + pl * H * W;
        const float *dyp = dy + pl * P * Q;
        for (int p = 0; p < P; p++) {
            int h0 = imax(p * S - O, 0), h1 = imin(p * S - O + K, H);
            for (int q = 0; q < Q; q++) {
                int w0 = imax(q * S - O, 0), w1 = imin(q * S - O + K, W);
                float g = dyp[p * Q + q] * scale;
                for (int h = h0; h < h1; h++)
                    for (int w = w0; w < w1; w++) dxp[(ptrdiff_t)h * W + w] += g;
            }
        }
    }
}

void avgpool_global_forward(float *restrict y, const float *restrict x, int N, int C, int HW)
{
    const ptrdiff_t planes = (ptrdiff_t)N * C;
#pragma omp parallel for schedule(static) if (planes * HW > 65536)
    for (ptrdiff_t pl = 0; pl < planes; pl++) {
        const float *xp = x + pl * HW;
        float sum = 0;
        for (int i = 0; i < HW; i++) sum += xp[i];
        y[pl] = sum / (float)HW;
    }
}

void avgpool_global_backward(float *restrict dx, const float *restrict dy, int N, int C, int HW)
{
    const ptrdiff_t planes = (ptrdiff_t)N * C;
#pragma omp parallel for schedule(static) if (planes * HW > 65536)
    for (ptrdiff_t pl = 0; pl < planes; pl++) {
        float *dxp = dx + pl * HW;
        float g = dy[pl] / (float)HW;
        for (int i = 0; i < HW; i++) dxp[i] += g;
    }
}
