/* Pooling kernels (see pool.h). Parallel loops run over the N*C planes, which are independent
 * in both directions, so every thread writes its own planes. */
#include "kernels/pool.h"

#include <stddef.h>

static inline int imax(int a, int b) { return a > b ? a : b; }
static inline int imin(int a, int b) { return a < b ? a : b; }

/* The outputs [qa, qb) of one row whose windows lie inside the image columns, window rows
 * [h0, h1). Element by element of the window across the whole row, so the outputs' compare
 * chains run side by side (and vectorize) instead of one 9-long dependency chain per output;
 * each output still sees its window in row-major order, so the first maximum wins a tie. */
static inline void maxpool_row_inner(float *restrict yr, int32_t *restrict ir,
                                     const float *restrict xp, int W, int h0, int h1, int qa,
                                     int qb, int K, int S, int O)
{
    for (int q = qa; q < qb; q++) {
        yr[q] = xp[(ptrdiff_t)h0 * W + q * S - O];
        ir[q] = h0 * W + q * S - O;
    }
    for (int h = h0; h < h1; h++) {
        const float *row = xp + (ptrdiff_t)h * W;
        for (int s = 0; s < K; s++)
            for (int q = qa; q < qb; q++) {
                float v = row[q * S - O + s], best = yr[q];
                int take = (v > best) | ((v != v) & (best == best));
                yr[q] = take ? v : best;
                ir[q] = take ? h * W + q * S - O + s : ir[q];
            }
    }
}

/* One output (p, q) whatever its window: clipped to the image, branch-free selection. */
static inline void maxpool_one(float *restrict yo, int32_t *restrict io, const float *restrict xp,
                               int W, int h0, int h1, int q, int K, int S, int O)
{
    int w0 = imax(q * S - O, 0), w1 = imin(q * S - O + K, W);
    int best_i = h0 * W + w0;
    float best = xp[best_i];
    for (int h = h0; h < h1; h++) {
        const float *row = xp + (ptrdiff_t)h * W;
        for (int w = w0; w < w1; w++) {
            float v = row[w];
            int take = (v > best) | ((v != v) & (best == best));
            best = take ? v : best;
            best_i = take ? h * W + w : best_i;
        }
    }
    *yo = best;
    *io = best_i;
}

void maxpool_forward(float *restrict y, int32_t *restrict idx, const float *restrict x, int N,
                     int C, int H, int W, int P, int Q, int K, int S, int O)
{
    const ptrdiff_t planes = (ptrdiff_t)N * C;
    /* Outputs [qa, qb) have windows inside the image columns: the row loop takes them. */
    int qa = imin((O + S - 1) / S, Q);
    int qb = W + O - K < 0 ? 0 : imin((W + O - K) / S + 1, Q);
    if (qb < qa) qb = qa;
#pragma omp parallel for schedule(static) if (planes * P * Q * K * K > 65536)
    for (ptrdiff_t pl = 0; pl < planes; pl++) {
        const float *xp = x + pl * H * W;
        float *yp = y + pl * P * Q;
        int32_t *ip = idx + pl * P * Q;
        for (int p = 0; p < P; p++) {
            /* The window clipped to the image once per row of outputs. */
            int h0 = imax(p * S - O, 0), h1 = imin(p * S - O + K, H);
            float *yr = yp + p * Q;
            int32_t *ir = ip + p * Q;
            for (int q = 0; q < qa; q++) maxpool_one(yr + q, ir + q, xp, W, h0, h1, q, K, S, O);
            /* Constant window and stride for the common cases (ResNet's 3x3/2, VGG's 2x2/2). */
            if (K == 3 && S == 2)
                maxpool_row_inner(yr, ir, xp, W, h0, h1, qa, qb, 3, 2, O);
            else if (K == 2 && S == 2)
                maxpool_row_inner(yr, ir, xp, W, h0, h1, qa, qb, 2, 2, O);
            else
                maxpool_row_inner(yr, ir, xp, W, h0, h1, qa, qb, K, S, O);
            for (int q = qb; q < Q; q++) maxpool_one(yr + q, ir + q, xp, W, h0, h1, q, K, S, O);
        }
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
