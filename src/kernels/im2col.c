/* Glossary: C channels, H x W input, R x S kernel, P x Q output. See im2col.h. */
#include "kernels/im2col.h"
#include "core/util.h"

#include <string.h>

/* The output columns q whose input column q*stride - pad + s lies inside [0, W): [*q0, *q1). */
static inline void valid_range(int s, int stride, int pad, int W, int Q, int *q0, int *q1)
{
    int off = s - pad; /* input column of q = q*stride + off */
    int lo = off >= 0 ? 0 : (-off + stride - 1) / stride;
    int hi = W - off <= 0 ? 0 : (W - off + stride - 1) / stride;
    if (hi > Q) hi = Q;
    if (lo > hi) lo = hi;
    *q0 = lo;
    *q1 = hi;
}

void im2col(float *restrict col, const float *restrict x, int C, int H, int W, int R, int S,
            int stride, int pad, int P, int Q)
{
    im2col_ld(col, P * Q, x, C, H, W, R, S, stride, pad, P, Q);
}

void col2im(float *restrict dx, const float *restrict col, int C, int H, int W, int R, int S,
            int stride, int pad, int P, int Q)
{
    col2im_ld(dx, col, P * Q, C, H, W, R, S, stride, pad, P, Q);
}

/* Small output maps (ResNet-18's 7x7, 4x4 and 2x2 stages) have rows of a few floats, where a
 * memcpy or loop per output row costs more than the floats it moves. There, one table gives
 * for every kernel offset (r, s) and output pixel the input pixel it reads (-1: padding), the
 * same for every channel, and each row is one gather (im2col) or scatter-add (col2im) over the
 * P*Q pixels. Entry (r*S + s)*PQ + p*Q + q. */
#define IM2COL_TABLE_MAX_PQ 64
#define IM2COL_TABLE_MAX 4096 /* ints: R*S*P*Q, a 7x7 kernel on an 8x8 map */

static int use_table(int R, int S, int P, int Q)
{
    return P * Q <= IM2COL_TABLE_MAX_PQ && R * S * P * Q <= IM2COL_TABLE_MAX;
}

static void make_table(int *restrict t, int H, int W, int R, int S, int stride, int pad, int P,
                       int Q)
{
    for (int r = 0; r < R; r++)
        for (int s = 0; s < S; s++)
            for (int p = 0; p < P; p++)
                for (int q = 0; q < Q; q++) {
                    int ih = p * stride - pad + r, iw = q * stride - pad + s;
                    *t++ = ih >= 0 && ih < H && iw >= 0 && iw < W ? ih * W + iw : -1;
                }
}

void im2col_ld(float *restrict col, int ld, const float *restrict x, int C, int H, int W, int R,
               int S, int stride, int pad, int P, int Q)
{
    if (use_table(R, S, P, Q)) {
        int tab[IM2COL_TABLE_MAX], RS = R * S, PQ = P * Q;
        make_table(tab, H, W, R, S, stride, pad, P, Q);
        for (int c = 0; c < C; c++) {
            const float *xc = x + (size_t)c * H * W;
            for (int rs = 0; rs < RS; rs++) {
                float *row = col + ((size_t)c * RS + rs) * ld;
                const int *t = tab + rs * PQ;
                for (int i = 0; i < PQ; i++) row[i] = t[i] >= 0 ? xc[t[i]] : 0.0f;
            }
        }
        return;
    }
    for (int c = 0; c < C; c++) {
        const float *xc = x + (size_t)c * H * W;
        for (int r = 0; r < R; r++)
            for (int s = 0; s < S; s++) {
                float *row = col + ((size_t)(c * R + r) * S + s) * ld;
                int q0, q1;
                valid_range(s, stride, pad, W, Q, &q0, &q1);
                for (int p = 0; p < P; p++) {
                    float *out = row + (size_t)p * Q;
                    int ih = p * stride - pad + r;
                    if (ih < 0 || ih >= H || q0 >= q1) {
                        memset(out, 0, (size_t)Q * sizeof *out);
                        continue;
                    }
                    const float *in = xc + (size_t)ih * W;
                    int off = s - pad;
                    for (int q = 0; q < q0; q++) out[q] = 0;
                    if (stride == 1)
                        memcpy(out + q0, in + q0 + off, (size_t)(q1 - q0) * sizeof *out);
                    else
                        for (int q = q0; q < q1; q++) out[q] = in[q * stride + off];
                    for (int q = q1; q < Q; q++) out[q] = 0;
                }
            }
    }
}

/* col2im_ld and col2im_strided: entry (row i, column j) at col[i*ld + j*cs]; inlined into
 * each, so col2im_ld's cs is the constant 1 */
GN_INLINE void col2im_any(float *restrict dx, const float *restrict col, size_t ld, size_t cs,
                          int C, int H, int W, int R, int S, int stride, int pad, int P, int Q)
{
    if (use_table(R, S, P, Q)) {
        /* Each pixel gathers its sums in the order of the loops below: (r, s), then (p, q). */
        int tab[IM2COL_TABLE_MAX], RS = R * S, PQ = P * Q;
        make_table(tab, H, W, R, S, stride, pad, P, Q);
        for (int c = 0; c < C; c++) {
            float *dxc = dx + (size_t)c * H * W;
            for (int rs = 0; rs < RS; rs++) {
                const float *row = col + ((size_t)c * RS + rs) * ld;
                const int *t = tab + rs * PQ;
                for (int i = 0; i < PQ; i++)
                    if (t[i] >= 0) dxc[t[i]] += row[i * cs];
            }
        }
        return;
    }
    for (int c = 0; c < C; c++) {
        float *dxc = dx + (size_t)c * H * W;
        for (int r = 0; r < R; r++)
            for (int s = 0; s < S; s++) {
                const float *row = col + ((size_t)(c * R + r) * S + s) * ld;
                int q0, q1;
                valid_range(s, stride, pad, W, Q, &q0, &q1);
                if (q0 >= q1) continue;
                for (int p = 0; p < P; p++) {
                    int ih = p * stride - pad + r;
                    if (ih < 0 || ih >= H) continue;
                    const float *in = row + (size_t)p * Q * cs;
                    float *out = dxc + (size_t)ih * W;
                    int off = s - pad;
                    if (stride == 1)
                        for (int q = q0; q < q1; q++) out[q + off] += in[q * cs];
                    else
                        for (int q = q0; q < q1; q++) out[q * stride + off] += in[q * cs];
                }
            }
    }
}

void col2im_ld(float *restrict dx, const float *restrict col, int ld, int C, int H, int W, int R,
               int S, int stride, int pad, int P, int Q)
{
    col2im_any(dx, col, (size_t)ld, 1, C, H, W, R, S, stride, pad, P, Q);
}

void col2im_strided(float *restrict dx, const float *restrict col, size_t ld, size_t cs, int C,
                    int H, int W, int R, int S, int stride, int pad, int P, int Q)
{
    col2im_any(dx, col, ld, cs, C, H, W, R, S, stride, pad, P, Q);
}
