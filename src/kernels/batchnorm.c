/* Batch normalization kernels, with the activation that follows folded in. Glossary in
 * batchnorm.h. Channels run in parallel; within a channel every sum goes in a fixed order:
 * eight interleaved double partial sums (so the loop runs at memory speed instead of one
 * dependent add per value) added together in index order. Planes of fewer than BN_SMALL_HW
 * values go through chunks of whole channels instead ("small planes" below). */
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

/* v = act(ga xh + be) over n values: the one expression y is computed with from xhat, so
 * batchnorm_apply rebuilds it bit for bit. The switch is outside the loops so the common ones
 * vectorize; each case is act_one's expression. GA and BE: scalars, or per-value arrays (the
 * chunks of small planes, below). */
#define AFFINE_ACT(v, xh, n, GA, BE, act)                                                  \
    switch (act) {                                                                         \
    case GN_ACT_LINEAR:                                                                    \
        for (int i = 0; i < (n); i++) (v)[i] = (GA) * (xh)[i] + (BE);                      \
        break;                                                                             \
    case GN_ACT_RELU:                                                                      \
        for (int i = 0; i < (n); i++) {                                                    \
            float u = (GA) * (xh)[i] + (BE);                                               \
            (v)[i] = u > 0 ? u : 0;                                                        \
        }                                                                                  \
        break;                                                                             \
    case GN_ACT_LEAKY:                                                                     \
        for (int i = 0; i < (n); i++) {                                                    \
            float u = (GA) * (xh)[i] + (BE);                                               \
            (v)[i] = u > 0 ? u : 0.1f * u;                                                 \
        }                                                                                  \
        break;                                                                             \
    case GN_ACT_RELU6:                                                                     \
        for (int i = 0; i < (n); i++) {                                                    \
            float u = (GA) * (xh)[i] + (BE);                                               \
            (v)[i] = u > 0 ? (u < 6 ? u : 6) : 0;                                          \
        }                                                                                  \
        break;                                                                             \
    default:                                                                               \
        for (int i = 0; i < (n); i++) (v)[i] = act_one((GA) * (xh)[i] + (BE), act);        \
        break;                                                                             \
    }

static void affine_act(float *restrict v, const float *restrict xh, int n, float ga, float be,
                       gn_act act)
{
    AFFINE_ACT(v, xh, n, ga, be, act)
}

static void affine_act_e(float *restrict v, const float *restrict xh, int n,
                         const float *restrict ga, const float *restrict be, gn_act act)
{
    AFFINE_ACT(v, xh, n, ga[i], be[i], act)
}

/* One channel of one image: xh = (v - mean) istd, then v = act(gamma xh + beta). */
static void normalize_plane(float *restrict v, float *restrict xh, int n, float mean, float is,
                            float ga, float be, gn_act act)
{
    for (int i = 0; i < n; i++) xh[i] = (v[i] - mean) * is;
    affine_act(v, xh, n, ga, be, act);
}

/* d *= act'(y) for n values, y = act(ga xh + be) rebuilt as AFFINE_ACT does; each case is
 * act_backward's expression. GA and BE as in AFFINE_ACT. */
#define ACT_GRAD(d, xh, n, GA, BE, act)                                                    \
    switch (act) {                                                                         \
    case GN_ACT_LINEAR:                                                                    \
        break;                                                                             \
    case GN_ACT_RELU:                                                                      \
        for (int i = 0; i < (n); i++) {                                                    \
            float u = (GA) * (xh)[i] + (BE), y = u > 0 ? u : 0;                            \
            (d)[i] = y > 0 ? (d)[i] : 0;                                                   \
        }                                                                                  \
        break;                                                                             \
    case GN_ACT_LEAKY:                                                                     \
        for (int i = 0; i < (n); i++) {                                                    \
            float u = (GA) * (xh)[i] + (BE), y = u > 0 ? u : 0.1f * u;                     \
            (d)[i] = y > 0 ? (d)[i] : 0.1f * (d)[i];                                       \
        }                                                                                  \
        break;                                                                             \
    case GN_ACT_LOGISTIC:                                                                  \
        for (int i = 0; i < (n); i++) {                                                    \
            float y = act_one((GA) * (xh)[i] + (BE), act);                                 \
            (d)[i] *= y * (1.0f - y);                                                      \
        }                                                                                  \
        break;                                                                             \
    case GN_ACT_TANH:                                                                      \
        for (int i = 0; i < (n); i++) {                                                    \
            float y = act_one((GA) * (xh)[i] + (BE), act);                                 \
            (d)[i] *= 1.0f - y * y;                                                        \
        }                                                                                  \
        break;                                                                             \
    case GN_ACT_RAMP:                                                                      \
        for (int i = 0; i < (n); i++) {                                                    \
            float u = (GA) * (xh)[i] + (BE);                                               \
            (d)[i] = u > 0 ? 1.1f * (d)[i] : 0.1f * (d)[i];                                \
        }                                                                                  \
        break;                                                                             \
    case GN_ACT_RELU6:                                                                     \
        for (int i = 0; i < (n); i++) {                                                    \
            float u = (GA) * (xh)[i] + (BE), y = u > 0 ? (u < 6 ? u : 6) : 0;              \
            (d)[i] = y > 0 && y < 6 ? (d)[i] : 0;                                          \
        }                                                                                  \
        break;                                                                             \
    }

static void act_grad_plane(float *restrict d, const float *restrict xh, int n, float ga, float be,
                           gn_act act)
{
    ACT_GRAD(d, xh, n, ga, be, act)
}

static void act_grad_e(float *restrict d, const float *restrict xh, int n,
                       const float *restrict ga, const float *restrict be, gn_act act)
{
    ACT_GRAD(d, xh, n, ga[i], be[i], act)
}

/* ---- small planes ----
 * With fewer than BN_SMALL_HW values per plane (ResNet's 7x7 .. 1x1 stages) a loop per plane
 * is mostly overhead. These kernels run over chunks of whole channels instead: one contiguous
 * run of nc*HW values per image (at most BN_CHUNK), with each channel's numbers spread out per
 * value. A channel's sum is then, in order over its HW positions, each position's sum over the
 * images (a different fixed order than the large-plane one, equally independent of threads). */
#define BN_SMALL_HW 64
#define BN_CHUNK 512

typedef struct bn_chunk {
    int c0, nc, len; /* channels c0 .. c0+nc-1, len = nc*HW values per image */
} bn_chunk;

static int bn_nchunks(int C, int HW)
{
    int kc = BN_CHUNK / HW;
    return (C + kc - 1) / kc;
}

static bn_chunk bn_chunk_at(int ch, int C, int HW)
{
    int kc = BN_CHUNK / HW;
    bn_chunk k = {ch * kc, C - ch * kc < kc ? C - ch * kc : kc, 0};
    k.len = k.nc * HW;
    return k;
}

/* e[c*HW + i] = perc[c] */
static void spread(float *restrict e, const float *restrict perc, int nc, int HW)
{
    for (int c = 0; c < nc; c++)
        for (int i = 0; i < HW; i++) e[c * HW + i] = perc[c];
}

/* channel c's total of acc, position by position */
static double chan_total(const double *acc, int c, int HW)
{
    double t = 0;
    for (int i = 0; i < HW; i++) t += acc[c * HW + i];
    return t;
}

/* The per-channel numbers of a chunk, spread per value. */
typedef struct bn_spread {
    float mean[BN_CHUNK], is[BN_CHUNK], ga[BN_CHUNK], be[BN_CHUNK];
} bn_spread;

/* xh = (v - mean) is, v = act(ga xh + be) over chunk k's values of every image; mean, is,
 * gamma and beta per channel of the chunk (spread per value here) */
static void normalize_chunk(float *y, float *restrict xhat, const float *mean, const float *is,
                            const float *gamma, const float *beta, bn_chunk k, int N, int HW,
                            size_t cs, gn_act act)
{
    bn_spread sp;
    spread(sp.mean, mean, k.nc, HW);
    spread(sp.is, is, k.nc, HW);
    spread(sp.ga, gamma, k.nc, HW);
    spread(sp.be, beta, k.nc, HW);
    size_t off = (size_t)k.c0 * HW;
    for (int n = 0; n < N; n++) {
        float *v = y + n * cs + off, *xh = xhat + n * cs + off;
        for (int j = 0; j < k.len; j++) xh[j] = (v[j] - sp.mean[j]) * sp.is[j];
        affine_act_e(v, xh, k.len, sp.ga, sp.be, act);
    }
}

static void forward_train_small(float *y, float *restrict xhat, float *restrict istd,
                                float *restrict run_mean, float *restrict run_var,
                                const float *restrict gamma, const float *restrict beta, int N,
                                int C, int HW, float eps, float momentum, gn_act act)
{
    size_t cs = (size_t)C * HW;
    double m = (double)N * HW;
    int nch = bn_nchunks(C, HW);
#pragma omp parallel for schedule(static) if (m * C > BN_PAR_MIN && nch > 1)
    for (int ch = 0; ch < nch; ch++) {
        bn_chunk k = bn_chunk_at(ch, C, HW);
        size_t off = (size_t)k.c0 * HW;
        double acc[BN_CHUNK], mean_d[BN_CHUNK];
        float cm[BN_CHUNK], ci[BN_CHUNK];
        for (int j = 0; j < k.len; j++) acc[j] = 0;
        for (int n = 0; n < N; n++) {
            const float *v = y + n * cs + off;
            for (int j = 0; j < k.len; j++) acc[j] += v[j];
        }
        for (int c = 0; c < k.nc; c++) {
            double mean = chan_total(acc, c, HW) / m;
            for (int i = 0; i < HW; i++) mean_d[c * HW + i] = mean;
            cm[c] = (float)mean;
        }
        for (int j = 0; j < k.len; j++) acc[j] = 0;
        for (int n = 0; n < N; n++) {
            const float *v = y + n * cs + off;
            for (int j = 0; j < k.len; j++) {
                double d = v[j] - mean_d[j];
                acc[j] += d * d;
            }
        }
        for (int c = 0; c < k.nc; c++) {
            int g = k.c0 + c;
            double ss = chan_total(acc, c, HW), var = ss / m, mean = mean_d[c * HW];
            ci[c] = istd[g] = (float)(1.0 / sqrt(var + eps));
            double unbiased = m > 1 ? ss / (m - 1) : var;
            run_mean[g] = (float)((1.0 - momentum) * run_mean[g] + momentum * mean);
            run_var[g] = (float)((1.0 - momentum) * run_var[g] + momentum * unbiased);
        }
        normalize_chunk(y, xhat, cm, ci, gamma + k.c0, beta + k.c0, k, N, HW, cs, act);
    }
}

static void forward_eval_small(float *y, float *restrict xhat, float *restrict istd,
                               const float *restrict run_mean, const float *restrict run_var,
                               const float *restrict gamma, const float *restrict beta, int N,
                               int C, int HW, float eps, gn_act act)
{
    size_t cs = (size_t)C * HW;
    int nch = bn_nchunks(C, HW);
#pragma omp parallel for schedule(static) if ((double)N * HW * C > BN_PAR_MIN && nch > 1)
    for (int ch = 0; ch < nch; ch++) {
        bn_chunk k = bn_chunk_at(ch, C, HW);
        float ci[BN_CHUNK];
        for (int c = 0; c < k.nc; c++)
            ci[c] = istd[k.c0 + c] = (float)(1.0 / sqrt((double)run_var[k.c0 + c] + eps));
        normalize_chunk(y, xhat, run_mean + k.c0, ci, gamma + k.c0, beta + k.c0, k, N, HW, cs,
                        act);
    }
}

static void apply_small(float *restrict y, const float *restrict xhat, const float *restrict gamma,
                        const float *restrict beta, int N, int C, int HW, gn_act act,
                        int grad)
{
    size_t cs = (size_t)C * HW;
    int nch = bn_nchunks(C, HW);
#pragma omp parallel for schedule(static) if ((double)N * HW * C > BN_PAR_MIN && nch > 1)
    for (int ch = 0; ch < nch; ch++) {
        bn_chunk k = bn_chunk_at(ch, C, HW);
        size_t off = (size_t)k.c0 * HW;
        float ga[BN_CHUNK], be[BN_CHUNK];
        spread(ga, gamma + k.c0, k.nc, HW);
        spread(be, beta + k.c0, k.nc, HW);
        for (int n = 0; n < N; n++) {
            if (grad)
                act_grad_e(y + n * cs + off, xhat + n * cs + off, k.len, ga, be, act);
            else
                affine_act_e(y + n * cs + off, xhat + n * cs + off, k.len, ga, be, act);
        }
    }
}

static void backward_small(float *dx, float *restrict dgamma, float *restrict dbeta,
                           const float *dy, const float *restrict xhat,
                           const float *restrict istd, const float *restrict gamma, int N,
                           int C, int HW, int train, int accumulate)
{
    size_t cs = (size_t)C * HW;
    double m = (double)N * HW;
    int nch = bn_nchunks(C, HW);
#pragma omp parallel for schedule(static) if (m * C > BN_PAR_MIN && nch > 1)
    for (int ch = 0; ch < nch; ch++) {
        bn_chunk k = bn_chunk_at(ch, C, HW);
        size_t off = (size_t)k.c0 * HW;
        double sd[BN_CHUNK], sdx[BN_CHUNK];
        for (int j = 0; j < k.len; j++) sd[j] = sdx[j] = 0;
        for (int n = 0; n < N; n++) {
            const float *d = dy + n * cs + off, *xh = xhat + n * cs + off;
            for (int j = 0; j < k.len; j++) {
                sd[j] += d[j];
                sdx[j] += (double)d[j] * xh[j];
            }
        }
        float kk[BN_CHUNK], md[BN_CHUNK], mx[BN_CHUNK];
        for (int c = 0; c < k.nc; c++) {
            int g = k.c0 + c;
            double sdy = chan_total(sd, c, HW), sdyx = chan_total(sdx, c, HW);
            dbeta[g] += (float)sdy;
            dgamma[g] += (float)sdyx;
            kk[c] = gamma[g] * istd[g];
            md[c] = train ? (float)(sdy / m) : 0.0f;
            mx[c] = train ? (float)(sdyx / m) : 0.0f;
        }
        if (!dx) continue;
        /* as in batchnorm_backward, with k, mean(dy), mean(dy xhat) spread per value */
        float ke[BN_CHUNK], mde[BN_CHUNK], mxe[BN_CHUNK];
        spread(ke, kk, k.nc, HW);
        spread(mde, md, k.nc, HW);
        spread(mxe, mx, k.nc, HW);
        for (int n = 0; n < N; n++) {
            const float *d = dy + n * cs + off, *xh = xhat + n * cs + off;
            float *out = dx + n * cs + off;
            if (accumulate)
                for (int j = 0; j < k.len; j++) out[j] += ke[j] * (d[j] - mde[j] - xh[j] * mxe[j]);
            else
                for (int j = 0; j < k.len; j++) out[j] = ke[j] * (d[j] - mde[j] - xh[j] * mxe[j]);
        }
    }
}

/* ---- the kernels ---- */

void batchnorm_forward_train(float *y, float *restrict xhat, float *restrict istd,
                             float *restrict run_mean, float *restrict run_var,
                             const float *restrict gamma, const float *restrict beta, int N,
                             int C, int HW, float eps, float momentum, gn_act act)
{
    if (HW < BN_SMALL_HW) {
        forward_train_small(y, xhat, istd, run_mean, run_var, gamma, beta, N, C, HW, eps,
                            momentum, act);
        return;
    }
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
    if (HW < BN_SMALL_HW) {
        forward_eval_small(y, xhat, istd, run_mean, run_var, gamma, beta, N, C, HW, eps, act);
        return;
    }
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
    if (HW < BN_SMALL_HW) {
        apply_small(y, xhat, gamma, beta, N, C, HW, act, 0);
        return;
    }
    size_t cs = (size_t)C * HW;
#pragma omp parallel for schedule(static) if ((double)N * HW * C > BN_PAR_MIN && C > 1)
    for (int c = 0; c < C; c++) {
        for (int n = 0; n < N; n++)
            affine_act(y + n * cs + (size_t)c * HW, xhat + n * cs + (size_t)c * HW, HW, gamma[c],
                       beta[c], act);
    }
}

void batchnorm_act_backward(float *restrict dy, const float *restrict xhat,
                            const float *restrict gamma, const float *restrict beta, int N, int C,
                            int HW, gn_act act)
{
    if (act == GN_ACT_LINEAR) return;
    if (HW < BN_SMALL_HW) {
        apply_small(dy, xhat, gamma, beta, N, C, HW, act, 1);
        return;
    }
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
    if (HW < BN_SMALL_HW) {
        backward_small(dx, dgamma, dbeta, dy, xhat, istd, gamma, N, C, HW, train, accumulate);
        return;
    }
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
