/* Naive twins of the convolution kernels: the definition written as nested loops (double
 * accumulators), for the tests. Glossary as in conv.h. */
#include "kernels/conv.h"

void conv2d_forward_ref(float *restrict y, const float *restrict x, const float *restrict w,
                        const float *restrict b, const conv2d_shape *s)
{
    int Cg = s->C / s->groups, Kg = s->K / s->groups;
    for (int n = 0; n < s->N; n++)
        for (int k = 0; k < s->K; k++) {
            int g = k / Kg;
            for (int p = 0; p < s->P; p++)
                for (int q = 0; q < s->Q; q++) {
                    double acc = b ? b[k] : 0.0;
                    for (int c = 0; c < Cg; c++)
                        for (int r = 0; r < s->R; r++)
                            for (int t = 0; t < s->S; t++) {
                                int ih = p * s->stride - s->pad + r;
                                int iw = q * s->stride - s->pad + t;
                                if (ih < 0 || ih >= s->H || iw < 0 || iw >= s->W) continue;
                                double xv = x[(((size_t)n * s->C + g * Cg + c) * s->H + ih) *
                                                  s->W + iw];
                                double wv = w[(((size_t)k * Cg + c) * s->R + r) * s->S + t];
                                acc += xv * wv;
                            }
                    y[(((size_t)n * s->K + k) * s->P + p) * s->Q + q] = (float)acc;
                }
        }
}

void conv2d_backward_ref(float *restrict dx, float *restrict dw, float *restrict db,
                         const float *restrict dy, const float *restrict x,
                         const float *restrict w, const conv2d_shape *s)
{
    int Cg = s->C / s->groups, Kg = s->K / s->groups;
    if (db)
        for (int k = 0; k < s->K; k++) {
            double acc = 0;
            for (int n = 0; n < s->N; n++)
                for (int i = 0; i < s->P * s->Q; i++)
                    acc += dy[((size_t)n * s->K + k) * s->P * s->Q + (size_t)i];
            db[k] += (float)acc;
        }
    /* dw[k,c,r,t] = sum over n,p,q of dy[n,k,p,q] x[n, g*Cg+c, ih, iw] */
    for (int k = 0; k < s->K; k++) {
        int g = k / Kg;
        for (int c = 0; c < Cg; c++)
            for (int r = 0; r < s->R; r++)
                for (int t = 0; t < s->S; t++) {
                    double acc = 0;
                    for (int n = 0; n < s->N; n++)
                        for (int p = 0; p < s->P; p++)
                            for (int q = 0; q < s->Q; q++) {
                                int ih = p * s->stride - s->pad + r;
                                int iw = q * s->stride - s->pad + t;
                                if (ih < 0 || ih >= s->H || iw < 0 || iw >= s->W) continue;
                                acc += (double)dy[(((size_t)n * s->K + k) * s->P + p) * s->Q +
                                                  q] *
                                       x[(((size_t)n * s->C + g * Cg + c) * s->H + ih) * s->W +
                                         iw];
                            }
                    dw[(((size_t)k * Cg + c) * s->R + r) * s->S + t] += (float)acc;
                }
    }
    if (!dx) return;
    /* dx[n,c,ih,iw] = sum over the (k,p,q,r,t) that read it of dy[n,k,p,q] w[k,c',r,t] */
    for (int n = 0; n < s->N; n++)
        for (int c = 0; c < s->C; c++) {
            int g = c / Cg, cg = c % Cg;
            for (int ih = 0; ih < s->H; ih++)
                for (int iw = 0; iw < s->W; iw++) {
                    double acc = 0;
                    for (int kg = 0; kg < Kg; kg++) {
                        int k = g * Kg + kg;
                        for (int r = 0; r < s->R; r++)
                            for (int t = 0; t < s->S; t++) {
                                int ph = ih + s->pad - r, qw = iw + s->pad - t;
                                if (ph < 0 || qw < 0 || ph % s->stride || qw % s->stride)
                                    continue;
                                int p = ph / s->stride, q = qw / s->stride;
                                if (p >= s->P || q >= s->Q) continue;
                                acc += (double)dy[(((size_t)n * s->K + k) * s->P + p) * s->Q +
                                                  q] *
                                       w[(((size_t)k * Cg + cg) * s->R + r) * s->S + t];
                            }
                    }
                    dx[(((size_t)n * s->C + c) * s->H + ih) * s->W + iw] += (float)acc;
                }
        }
}
