/* Batch normalization kernels. Glossary in batchnorm.h. Channels run in parallel; within a
 * channel every sum goes in a fixed order. */
#include "kernels/batchnorm.h"

#include <math.h>
#include <stddef.h>

#define BN_PAR_MIN 32768 /* below this many values an OpenMP region costs more than it saves */

void batchnorm_forward_train(float *y, float *restrict xhat, float *restrict istd,
                             float *restrict run_mean, float *restrict run_var,
                             const float *restrict gamma, const float *restrict beta, int N,
                             int C, int HW, float eps, float momentum)
{
    size_t cs = (size_t)C * HW;
    double m = (double)N * HW;
#pragma omp parallel for schedule(static) if (m * C > BN_PAR_MIN && C > 1)
    for (int c = 0; c < C; c++) {
        double sum = 0;
        for (int n = 0; n < N; n++) {
            const float *v = y + n * cs + (size_t)c * HW;
            for (int i = 0; i < HW; i++) sum += v[i];
        }
        double mean = sum / m, ss = 0;
        for (int n = 0; n < N; n++) {
            const float *v = y + n * cs + (size_t)c * HW;
            for (int i = 0; i < HW; i++) {
                double d = v[i] - mean;
                ss += d * d;
            }
        }
        double var = ss / m;
        float is = (float)(1.0 / sqrt(var + eps)), fm = (float)mean;
        istd[c] = is;
        float ga = gamma[c], be = beta[c];
        for (int n = 0; n < N; n++) {
            float *v = y + n * cs + (size_t)c * HW;
            float *xh = xhat + n * cs + (size_t)c * HW;
            for (int i = 0; i < HW; i++) {
                xh[i] = (v[i] - fm) * is;
                v[i] = ga * xh[i] + be;
            }
        }
        double unbiased = m > 1 ? ss / (m - 1) : var;
        run_mean[c] = (float)((1.0 - momentum) * run_mean[c] + momentum * mean);
        run_var[c] = (float)((1.0 - momentum) * run_var[c] + momentum * unbiased);
    }
}

void batchnorm_forward_eval(float *y, float *restrict xhat, float *restrict istd,
                            const float *restrict run_mean, const float *restrict run_var,
                            const float *restrict gamma, const float *restrict beta, int N,
                            int C, int HW, float eps)
{
    size_t cs = (size_t)C * HW;
#pragma omp parallel for schedule(static) if ((double)N * HW * C > BN_PAR_MIN && C > 1)
    for (int c = 0; c < C; c++) {
        float is = (float)(1.0 / sqrt((double)run_var[c] + eps)), fm = run_mean[c];
        istd[c] = is;
        float ga = gamma[c], be = beta[c];
        for (int n = 0; n < N; n++) {
            float *v = y + n * cs + (size_t)c * HW;
            float *xh = xhat + n * cs + (size_t)c * HW;
            for (int i = 0; i < HW; i++) {
                xh[i] = (v[i] - fm) * is;
                v[i] = ga * xh[i] + be;
            }
        }
    }
}

void batchnorm_apply(float *restrict y, const float *restrict xhat, const float *restrict gamma,
                     const float *restrict beta, int N, int C, int HW)
{
    size_t cs = (size_t)C * HW;
    /* The same expression as the forward kernels' last loop, on the same float xhat. */
#pragma omp parallel for schedule(static) if ((double)N * HW * C > BN_PAR_MIN && C > 1)
    for (int c = 0; c < C; c++) {
        float ga = gamma[c], be = beta[c];
        for (int n = 0; n < N; n++) {
            float *v = y + n * cs + (size_t)c * HW;
            const float *xh = xhat + n * cs + (size_t)c * HW;
            for (int i = 0; i < HW; i++) v[i] = ga * xh[i] + be;
        }
    }
}

void batchnorm_backward(float *dx, float *restrict dgamma, float *restrict dbeta,
                        const float *dy, const float *restrict xhat,
                        const float *restrict istd, const float *restrict gamma, int N, int C,
                        int HW, int train, int accumulate)
{
    size_t cs = (size_t)C * HW;
    double m = (double)N * HW;
#pragma omp parallel for schedule(static) if (m * C > BN_PAR_MIN && C > 1)
    for (int c = 0; c < C; c++) {
        double sdy = 0, sdyx = 0;
        for (int n = 0; n < N; n++) {
            const float *d = dy + n * cs + (size_t)c * HW;
            const float *xh = xhat + n * cs + (size_t)c * HW;
            for (int i = 0; i < HW; i++) {
                sdy += d[i];
                sdyx += (double)d[i] * xh[i];
            }
        }
        dbeta[c] += (float)sdy;
        dgamma[c] += (float)sdyx;
        if (!dx) continue;
        /* train: dx = gamma istd (dy - mean(dy) - xhat mean(dy xhat)); eval: gamma istd dy */
        float k = gamma[c] * istd[c];
        float mdy = train ? (float)(sdy / m) : 0.0f, mdyx = train ? (float)(sdyx / m) : 0.0f;
        for (int n = 0; n < N; n++) {
            const float *d = dy + n * cs + (size_t)c * HW;
            const float *xh = xhat + n * cs + (size_t)c * HW;
            float *o = dx + n * cs + (size_t)c * HW;
            if (accumulate)
                for (int i = 0; i < HW; i++) o[i] += k * (d[i] - mdy - xh[i] * mdyx);
            else
                for (int i = 0; i < HW; i++) o[i] = k * (d[i] - mdy - xh[i] * mdyx);
        }
    }
}
