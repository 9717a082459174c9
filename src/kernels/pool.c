/* Pooling kernels (see pool.h). Parallel loops run over the N*C planes, which are independent
 * in both directions, so every thread writes its own planes. */
#include "kernels/pool.h"

#include <stddef.h>

static inline int imax(int a, int b) { return a > b ? a : b; }
static inline int imin(int a, int b) { return a < b ? a : b; }

void maxpool_forward(float *restrict y, int32_t *restrict idx, const float *restrict x, int N,
                     int C, int H, int W, int P, int Q, int K, int S, int O)
{
    const ptrdiff_t planes = (ptrdiff_t)N * C;
#pragma omp parallel for schedule(static) if (planes * P * Q * K * K > 65536)
    for (ptrdiff_t pl = 0; pl < planes; pl++) {
        const float *xp = x + pl * H * W;
        float *yp = y + pl * P * Q;
        int32_t *ip = idx + pl * P * Q;
        for (int p = 0; p < P; p++) {
            /* The window clipped to the image once per row of outputs: no test per element. */
            int h0 = imax(p * S - O, 0), h1 = imin(p * S - O + K, H);
            for (int q = 0; q < Q; q++) {
                int w0 = imax(q * S - O, 0), w1 = imin(q * S - O + K, W);
                int best_i = h0 * W + w0;
                float best = xp[best_i];
                /* Branch-free selection: on real data the comparison is unpredictable. */
                for (int h = h0; h < h1; h++) {
                    const float *row = xp + (ptrdiff_t)h * W;
                    for (int w = w0; w < w1; w++) {
                        float v = row[w];
                        int take = (v > best) | ((v != v) & (best == best));
                        best = take ? v : best;
                        best_i = take ? h * W + w : best_i;
                    }
                }
                yp[p * Q + q] = best;
                ip[p * Q + q] = best_i;
            }
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
