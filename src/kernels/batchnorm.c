/* Batch normalization kernels, with the activation that follows folded in. Glossary in
 * batchnorm.h. Channels run in parallel; within a channel every sum goes in a fixed order:
 * eight interleaved double partial sums (so the loop runs at memory speed instead of one
 * dependent add per value) added together in index order. */
#include "kernels/batchnorm.h"

#include <math.h>
#include <stddef.h>

#define BN_PAR_MIN 32768 /* below this many values an OpenMP region costs more than it saves */
#define LANES 8

static double lanes_total(const double *acc)
{
    double s = 0;
    for (int j = 0; j < LANES; j++) s += acc[j];
    return s;
}

/* acc[j] += the values of v at positions = j (mod LANES), i.e. in lane order. */
static void sum_lanes(double *restrict acc, const float *restrict v, int n)
{
    int i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++) acc[j] += v[i + j];
    for (; i < n; i++) acc[i % LANES] += v[i];
}

static void sqdev_lanes(double *restrict acc, const float *restrict v, int n, double mean)
{
    int i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++) {
            double d = v[i + j] - mean;
            acc[j] += d * d;
        }
    for (; i < n; i++) {
        double d = v[i] - mean;
        acc[i % LANES] += d * d;
    }
}

/* v = act(ga xh + be) over n values: the one place y is computed from xhat, so batchnorm_apply
 * rebuilds it bit for bit. The switch is outside the loops so the common ones vectorize; each
 * case is act_one's expression. */
static void affine_act(float *restrict v, const float *restrict xh, int n, float ga, float be,
                       gn_act act)
{
    switch (act) {
    case GN_ACT_LINEAR:
        for (int i = 0; i < n; i++) v[i] = ga * xh[i] + be;
        break;
    case GN_ACT_RELU:
        for (int i = 0; i < n; i++) {
            float u = ga * xh[i] + be;
            v[i] = u > 0 ? u : 0;
        }
        break;
    case GN_ACT_LEAKY:
        for (int i = 0; i < n; i++) {
            float u = ga * xh[i] + be;
            v[i] = u > 0 ? u : 0.1f * u;
        }
        break;
    default:
        for (int i = 0; i < n; i++) v[i] = act_one(ga * xh[i] + be, act);
        break;
    }
}

/* One channel of one image: xh = (v - mean) istd, then v = act(gamma xh + beta). */
static void normalize_plane(float *restrict v, float *restrict xh, int n, float mean, float is,
                            float ga, float be, gn_act act)
{
    for (int i = 0; i < n; i++) xh[i] = (v[i] - mean) * is;
    affine_act(v, xh, n, ga, be, act);
}

void batchnorm_forward_train(float *y, float *restrict xhat, float *restrict istd,
                             float *restrict run_mean, float *restrict run_var,
                             const float *restrict gamma, const float *restrict beta, int N,
                             int C, int HW, float eps, float momentum, gn_act act)
{
    size_t cs = (size_t)C * HW;
    double m = (double)N * HW;
#pragma omp parallel for schedule(static) if (m * C > BN_PAR_MIN && C > 1)
    for (int c = 0; c < C; c++) {
        double acc[LANES] = {0};
        for (int n = 0; n < N; n++) sum_lanes(acc, y + n * cs + (size_t)c * HW, HW);
        double mean = lanes_total(acc) / m;
        double sq[LANES] = {0};
        for (int n = 0; n < N; n++) sqdev_lanes(sq, y + n * cs + (size_t)c * HW, HW, mean);
        double ss = lanes_total(sq), var = ss / m;
        float is = (float)(1.0 / sqrt(var + eps));
        istd[c] = is;
        for (int n = 0; n < N; n++)
            normalize_plane(y + n * cs + (size_t)c * HW, xhat + n * cs + (size_t)c * HW, HW,
                            (float)mean, is, gamma[c], beta[c], act);
        double unbiased = m > 1 ? ss / (m - 1) : var;
        run_mean[c] = (float)((1.0 - momentum) * run_mean[c] + momentum * mean);
        run_var[c] = (float)((1.0 - momentum) * run_var[c] + momentum * unbiased);
    }
}

void batchnorm_forward_eval(float *y, float *restrict xhat, float *restrict istd,
                            const float *restrict run_mean, const float *restrict run_var,
                            const float *restrict gamma, const float *restrict beta, int N,
                            int C, int HW, float eps, gn_act act)
{
    size_t cs = (size_t)C * HW;
#pragma omp parallel for schedule(static) if ((double)N * HW * C > BN_PAR_MIN && C > 1)
    for (int c = 0; c < C; c++) {
        float is = (float)(1.0 / sqrt((double)run_var[c] + eps));
        istd[c] = is;
        for (int n = 0; n < N; n++)
            normalize_plane(y + n * cs + (size_t)c * HW, xhat + n * cs + (size_t)c * HW, HW,
                            run_mean[c], is, gamma[c], beta[c], act);
    }
}

void batchnorm_apply(float *restrict y, const float *restrict xhat, const float *restrict gamma,
                     const float *restrict beta, int N, int C, int HW, gn_act act)
{
    size_t cs = (size_t)C * HW;
#pragma omp parallel for schedule(static) if ((double)N * HW * C > BN_PAR_MIN && C > 1)
    for (int c = 0; c < C; c++) {
        for (int n = 0; n < N; n++)
            affine_act(y + n * cs + (size_t)c * HW, xhat + n * cs + (size_t)c * HW, HW, gamma[c],
                       beta[c], act);
    }
}

/* d *= act'(y) for n values, y = act(ga xh + be) rebuilt as affine_act does; each case is
 * act_backward's expression. */
static void act_grad_plane(float *restrict d, const float *restrict xh, int n, float ga, float be,
                           gn_act act)
{
    switch (act) {
    case GN_ACT_LINEAR:
        break;
    case GN_ACT_RELU:
        for (int i = 0; i < n; i++) {
            float u = ga * xh[i] + be, y = u > 0 ? u : 0;
            d[i] = y > 0 ? d[i] : 0;
        }
        break;
    case GN_ACT_LEAKY:
        for (int i = 0; i < n; i++) {
            float u = ga * xh[i] + be, y = u > 0 ? u : 0.1f * u;
            d[i] = y > 0 ? d[i] : 0.1f * d[i];
        }
        break;
    case GN_ACT_LOGISTIC:
        for (int i = 0; i < n; i++) {
            float y = act_one(ga * xh[i] + be, act);
            d[i] *= y * (1.0f - y);
        }
        break;
    case GN_ACT_TANH:
        for (int i = 0; i < n; i++) {
            float y = act_one(ga * xh[i] + be, act);
            d[i] *= 1.0f - y * y;
        }
        break;
    }
}

void batchnorm_act_backward(float *restrict dy, const float *restrict xhat,
                            const float *restrict gamma, const float *restrict beta, int N, int C,
                            int HW, gn_act act)
{
    if (act == GN_ACT_LINEAR) return;
    size_t cs = (size_t)C * HW;
#pragma omp parallel for schedule(static) if ((double)N * HW * C > BN_PAR_MIN && C > 1)
    for (int c = 0; c < C; c++)
        for (int n = 0; n < N; n++)
            act_grad_plane(dy + n * cs + (size_t)c * HW, xhat + n * cs + (size_t)c * HW, HW,
                           gamma[c], beta[c], act);
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
        double sd[LANES] = {0}, sdx[LANES] = {0};
        for (int n = 0; n < N; n++) {
            size_t o = n * cs + (size_t)c * HW;
            const float *d = dy + o, *xh = xhat + o;
            int i = 0;
            for (; i + LANES <= HW; i += LANES)
                for (int j = 0; j < LANES; j++) {
                    sd[j] += d[i + j];
                    sdx[j] += (double)d[i + j] * xh[i + j];
                }
            for (; i < HW; i++) {
                sd[i % LANES] += d[i];
                sdx[i % LANES] += (double)d[i] * xh[i];
            }
        }
        double sdy = lanes_total(sd), sdyx = lanes_total(sdx);
        dbeta[c] += (float)sdy;
        dgamma[c] += (float)sdyx;
        if (!dx) continue;
        /* train: dx = gamma istd (dy - mean(dy) - xhat mean(dy xhat)); eval: gamma istd dy */
        float k = gamma[c] * istd[c];
        float mdy = train ? (float)(sdy / m) : 0.0f, mdyx = train ? (float)(sdyx / m) : 0.0f;
        for (int n = 0; n < N; n++) {
            size_t o = n * cs + (size_t)c * HW;
            const float *d = dy + o, *xh = xhat + o;
            float *out = dx + o;
            if (accumulate)
                for (int i = 0; i < HW; i++) out[i] += k * (d[i] - mdy - xh[i] * mdyx);
            else
                for (int i = 0; i < HW; i++) out[i] = k * (d[i] - mdy - xh[i] * mdyx);
        }
    }
}
