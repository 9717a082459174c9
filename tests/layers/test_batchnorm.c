/* Batch normalization: the kernel's gradients against a double-precision reference,
 * [batchnorm] finite-difference checks (training and evaluation, image and vector input; the
 * training cases get 3e-2 for the float rounding explained in test_conv.c), running statistics against hand-computed values, evaluation with the
 * running statistics, and the kernels' in-place and accumulating forms. */
#include "gradcheck_util.h"
#include "kernels/batchnorm.h"

#include <stdlib.h>

static int build(const char *text, gn_cfg **cfg, gn_net **net, int batch, gn_err *err)
{
    *cfg = NULL;
    *net = NULL;
    int rc = gn_cfg_parse(cfg, text, "test.cfg", err);
    if (rc == GN_OK) rc = gn_net_build(net, *cfg, batch, 1, err);
    return rc;
}

/* Running statistics after one training step on known values, and evaluation with them. */
static void running_stats(void)
{
    gn_err err = {0};
    gn_cfg *cfg;
    gn_net *net;
    /* 2 channels, 1x2 pixels, batch 2: 4 values per channel. */
    if (build("[net]\nwidth=2\nheight=1\nchannels=2\n[batchnorm]\n", &cfg, &net, 2, &err)) {
        CHECK_MSG(0, "%s", err.msg);
        gn_cfg_free(&cfg);
        return;
    }
    gn_layer *l = &net->layers[0];
    CHECK(l->n_par == 4 && !strcmp(l->par[0].name, "bn.weight") &&
          !strcmp(l->par[1].name, "bn.bias") && !strcmp(l->par[2].name, "bn.running_mean") &&
          !strcmp(l->par[3].name, "bn.running_var") && l->par[2].trainable == 0);
    /* image 0: c0 = {1, 2}, c1 = {0, 4}; image 1: c0 = {3, 6}, c1 = {-2, 2} */
    const float in[8] = {1, 2, 0, 4, 3, 6, -2, 2};
    memcpy(net->input, in, sizeof in);
    float *gamma = gn_param_data(l, &l->par[0]), *beta = gn_param_data(l, &l->par[1]);
    float *rm = gn_param_data(l, &l->par[2]), *rv = gn_param_data(l, &l->par[3]);
    gamma[0] = 2.0f;
    gamma[1] = 0.5f;
    beta[0] = 1.0f;
    beta[1] = -1.0f;
    gn_ctx ctx = gn_net_ctx(net, 1);
    gn_net_forward(net, &ctx);
    /* c0: mean 3, biased var (4+1+0+9)/4 = 3.5, unbiased 14/3; c1: mean 1, var (1+9+9+1)/4 =
     * 5, unbiased 20/3. */
    CHECK_NEAR(rm[0], 0.1 * 3.0, 1e-6);
    CHECK_NEAR(rv[0], 0.9 + 0.1 * 14.0 / 3.0, 1e-6);
    CHECK_NEAR(rm[1], 0.1 * 1.0, 1e-6);
    CHECK_NEAR(rv[1], 0.9 + 0.1 * 20.0 / 3.0, 1e-6);
    const float *y = gn_net_output(net);
    for (int n = 0; n < 2; n++)
        for (int c = 0; c < 2; c++)
            for (int i = 0; i < 2; i++) {
                double mean = c ? 1.0 : 3.0, var = c ? 5.0 : 3.5, g = c ? 0.5 : 2.0,
                       b = c ? -1.0 : 1.0;
                double x = in[n * 4 + c * 2 + i];
                CHECK_NEAR(y[n * 4 + c * 2 + i], g * (x - mean) / sqrt(var + 1e-5) + b, 1e-5);
            }
    /* A second step: running = 0.9 running + 0.1 batch again. */
    gn_net_forward(net, &ctx);
    CHECK_NEAR(rm[0], 0.9 * 0.3 + 0.1 * 3.0, 1e-6);
    CHECK_NEAR(rv[1], 0.9 * (0.9 + 0.1 * 20.0 / 3.0) + 0.1 * 20.0 / 3.0, 1e-5);
    /* Evaluation uses the running statistics and leaves them alone. */
    float rm0 = rm[0], rv0 = rv[0], rm1 = rm[1], rv1 = rv[1];
    gn_ctx ev = gn_net_ctx(net, 0);
    gn_net_forward(net, &ev);
    CHECK(rm[0] == rm0 && rv[0] == rv0 && rm[1] == rm1 && rv[1] == rv1);
    for (int n = 0; n < 2; n++)
        for (int c = 0; c < 2; c++)
            for (int i = 0; i < 2; i++) {
                double mean = c ? rm1 : rm0, var = c ? rv1 : rv0, g = c ? 0.5 : 2.0,
                       b = c ? -1.0 : 1.0;
                double x = in[n * 4 + c * 2 + i];
                CHECK_NEAR(y[n * 4 + c * 2 + i], g * (x - mean) / sqrt(var + 1e-5) + b, 1e-5);
            }
    /* Batch 1 in evaluation mode works image by image. */
    ev.batch = 1;
    gn_net_forward(net, &ev);
    CHECK_NEAR(y[0], 2.0 * (1.0 - rm0) / sqrt(rv0 + 1e-5) + 1.0, 1e-5);
    gn_net_free(&net);
    gn_cfg_free(&cfg);
}

/* The conv layer's batch norm updates its running statistics the same way. */
static void conv_running_stats(void)
{
    gn_err err = {0};
    gn_cfg *cfg;
    gn_net *net;
    if (build("[net]\nwidth=3\nheight=3\nchannels=1\n[convolutional]\nfilters=1\nsize=1\n"
              "batch_normalize=1\nactivation=linear\n",
              &cfg, &net, 2, &err)) {
        CHECK_MSG(0, "%s", err.msg);
        gn_cfg_free(&cfg);
        return;
    }
    gn_layer *l = &net->layers[0];
    gn_param_data(l, &l->par[0])[0] = 2.0f; /* weight: y = 2x */
    double s = 0, ss = 0;
    for (int i = 0; i < 18; i++) {
        net->input[i] = (float)(i % 7) - 2.0f;
        s += 2.0 * net->input[i];
    }
    double mean = s / 18;
    for (int i = 0; i < 18; i++) ss += (2.0 * net->input[i] - mean) * (2.0 * net->input[i] - mean);
    gn_ctx ctx = gn_net_ctx(net, 1);
    gn_net_forward(net, &ctx);
    CHECK_NEAR(gn_param_data(l, &l->par[3])[0], 0.1 * mean, 1e-6);
    CHECK_NEAR(gn_param_data(l, &l->par[4])[0], 0.9 + 0.1 * ss / 17, 1e-5);
    gn_net_free(&net);
    gn_cfg_free(&cfg);
}

/* The in-place backward (dx = dy) equals the accumulating one onto zeros. */
static void kernel_forms(void)
{
    enum { N = 3, C = 4, HW = 5, T = N * C * HW };
    float x[T], y[T], xhat[T], istd[C], rm[C] = {0}, rv[C] = {1, 1, 1, 1};
    float g[C] = {1.0f, -0.5f, 2.0f, 0.3f}, b[C] = {0.1f, 0.2f, -0.3f, 0.0f};
    gn_rng r = gn_rng_make(gn_rng_key(5, 5, 5));
    for (int i = 0; i < T; i++) x[i] = (float)(3 * gn_rng_uniform(&r) - 1);
    memcpy(y, x, sizeof x);
    batchnorm_forward_train(y, xhat, istd, rm, rv, g, b, N, C, HW, 1e-5f, 0.1f,
                            GN_ACT_LINEAR);
    /* Normalized output: per channel mean beta, and xhat has mean 0 and variance ~1. */
    for (int c = 0; c < C; c++) {
        double m = 0, v = 0;
        for (int n = 0; n < N; n++)
            for (int i = 0; i < HW; i++) m += xhat[(n * C + c) * HW + i];
        m /= N * HW;
        for (int n = 0; n < N; n++)
            for (int i = 0; i < HW; i++) v += pow(xhat[(n * C + c) * HW + i] - m, 2);
        v /= N * HW;
        CHECK_NEAR(m, 0.0, 1e-5);
        CHECK_NEAR(v, 1.0, 1e-3);
    }
    for (int train = 0; train < 2; train++) {
        float dy[T], dx[T], dyi[T], dg1[C] = {0}, db1[C] = {0}, dg2[C] = {0}, db2[C] = {0};
        for (int i = 0; i < T; i++) dy[i] = (float)(2 * gn_rng_uniform(&r) - 1);
        memset(dx, 0, sizeof dx);
        memcpy(dyi, dy, sizeof dy);
        batchnorm_backward(dx, dg1, db1, dy, xhat, istd, g, N, C, HW, train, 1);
        batchnorm_backward(dyi, dg2, db2, dyi, xhat, istd, g, N, C, HW, train, 0);
        CHECK(memcmp(dx, dyi, sizeof dx) == 0);
        CHECK(memcmp(dg1, dg2, sizeof dg1) == 0 && memcmp(db1, db2, sizeof db1) == 0);
        if (train) {
            /* The training gradient sums to 0 over each channel (it goes through the mean). */
            for (int c = 0; c < C; c++) {
                double s = 0;
                for (int n = 0; n < N; n++)
                    for (int i = 0; i < HW; i++) s += dx[(n * C + c) * HW + i];
                CHECK_NEAR(s, 0.0, 1e-5);
            }
        }
    }
}

/* L = sum r * bn(x) in double, training (batch statistics) or evaluation (rm, rv). */
enum { DN = 3, DC = 2, DHW = 5, DT = DN * DC * DHW };
static double bn_loss_double(const double *x, const double *g, const double *b, const double *r,
                             const double *rm, const double *rv, int train)
{
    double L = 0;
    for (int c = 0; c < DC; c++) {
        double mean = rm[c], var = rv[c];
        if (train) {
            mean = var = 0;
            for (int n = 0; n < DN; n++)
                for (int i = 0; i < DHW; i++) mean += x[(n * DC + c) * DHW + i];
            mean /= DN * DHW;
            for (int n = 0; n < DN; n++)
                for (int i = 0; i < DHW; i++) var += pow(x[(n * DC + c) * DHW + i] - mean, 2);
            var /= DN * DHW;
        }
        for (int n = 0; n < DN; n++)
            for (int i = 0; i < DHW; i++) {
                int j = (n * DC + c) * DHW + i;
                L += r[j] * (g[c] * (x[j] - mean) / sqrt(var + 1e-5) + b[c]);
            }
    }
    return L;
}

/* The kernel's gradients against central differences of a double-precision batch norm, to
 * 1e-4: precise where the float layer check (test_conv, above) is limited by rounding. */
static void gradient_double(void)
{
    gn_rng rng = gn_rng_make(gn_rng_key(8, 8, 8));
    double x[DT], r[DT], g[DC] = {1.5, -0.7}, b[DC] = {0.2, -0.1}, rm[DC] = {0.3, -0.2},
                         rv[DC] = {0.8, 1.7};
    float xf[DT], y[DT], xhat[DT], istd[DC], dy[DT], dx[DT], gf[DC], bf[DC], rmf[DC], rvf[DC];
    for (int j = 0; j < DT; j++) {
        xf[j] = (float)(2 * gn_rng_uniform(&rng) - 0.5);
        x[j] = xf[j];
        r[j] = (double)(float)(2 * gn_rng_uniform(&rng) - 1);
        dy[j] = (float)r[j];
    }
    for (int c = 0; c < DC; c++) {
        gf[c] = (float)g[c];
        bf[c] = (float)b[c];
    }
    for (int train = 0; train < 2; train++) {
        for (int c = 0; c < DC; c++) {
            rmf[c] = (float)rm[c];
            rvf[c] = (float)rv[c];
        }
        memcpy(y, xf, sizeof xf);
        if (train)
            batchnorm_forward_train(y, xhat, istd, rmf, rvf, gf, bf, DN, DC, DHW, 1e-5f, 0.1f,
                                    GN_ACT_LINEAR);
        else
            batchnorm_forward_eval(y, xhat, istd, rmf, rvf, gf, bf, DN, DC, DHW, 1e-5f,
                                   GN_ACT_LINEAR);
        float dg[DC] = {0}, db[DC] = {0};
        memset(dx, 0, sizeof dx);
        batchnorm_backward(dx, dg, db, dy, xhat, istd, gf, DN, DC, DHW, train, 1);
        double worst = 0, h = 1e-5;
        for (int j = 0; j < DT; j++) {
            double x0 = x[j];
            x[j] = x0 + h;
            double lp = bn_loss_double(x, g, b, r, rm, rv, train);
            x[j] = x0 - h;
            double lm = bn_loss_double(x, g, b, r, rm, rv, train);
            x[j] = x0;
            double num = (lp - lm) / (2 * h);
            worst = fmax(worst, fabs(dx[j] - num) / fmax(fabs(num), 1e-2));
        }
        for (int c = 0; c < DC; c++) {
            double *ps[2] = {g, b};
            float *an[2] = {dg, db};
            for (int k = 0; k < 2; k++) {
                double v0 = ps[k][c];
                ps[k][c] = v0 + h;
                double lp = bn_loss_double(x, g, b, r, rm, rv, train);
                ps[k][c] = v0 - h;
                double lm = bn_loss_double(x, g, b, r, rm, rv, train);
                ps[k][c] = v0;
                double num = (lp - lm) / (2 * h);
                worst = fmax(worst, fabs(an[k][c] - num) / fmax(fabs(num), 1e-2));
            }
        }
        printf("batchnorm kernel vs double differences, %s: worst %.2e\n",
               train ? "train" : "eval", worst);
        CHECK_MSG(worst <= 1e-4, "batchnorm %s gradient: worst relative error %.3e",
                  train ? "train" : "eval", worst);
    }
}

/* The kernels against a double-precision reference on planes of HW values: small planes run
 * in chunks of whole channels (several chunks, the last partial), large ones plane by plane.
 * Forward (training with a ReLU, then evaluation), the rebuilt output bit for bit, the
 * activation's and the batch norm's backward. */
static void paths_vs_double(int N, int C, int HW)
{
    size_t T = (size_t)N * C * HW;
    float *x = malloc(T * sizeof *x), *y = malloc(T * sizeof *y), *y2 = malloc(T * sizeof *y2),
          *xhat = malloc(T * sizeof *xhat), *dy = malloc(T * sizeof *dy),
          *d = malloc(T * sizeof *d), *dx = malloc(T * sizeof *dx);
    float *g = malloc(C * sizeof *g), *b = malloc(C * sizeof *b), *istd = malloc(C * sizeof *istd),
          *rm = calloc(C, sizeof *rm), *rv = malloc(C * sizeof *rv), *dg = calloc(C, sizeof *dg),
          *db = calloc(C, sizeof *db);
    if (!x || !y || !y2 || !xhat || !dy || !d || !dx || !g || !b || !istd || !rm || !rv || !dg ||
        !db) {
        CHECK_MSG(0, "out of memory");
        goto done;
    }
    gn_rng r = gn_rng_make(gn_rng_key((uint64_t)HW, (uint64_t)C, 9));
    for (size_t i = 0; i < T; i++) {
        x[i] = (float)(3 * gn_rng_uniform(&r) - 1);
        dy[i] = (float)(2 * gn_rng_uniform(&r) - 1);
    }
    for (int c = 0; c < C; c++) {
        g[c] = (float)(gn_rng_uniform(&r) + 0.5);
        b[c] = (float)(gn_rng_uniform(&r) - 0.5);
        rv[c] = 1;
    }
    memcpy(y, x, T * sizeof *y);
    batchnorm_forward_train(y, xhat, istd, rm, rv, g, b, N, C, HW, 1e-5f, 0.1f, GN_ACT_RELU);
    batchnorm_apply(y2, xhat, g, b, N, C, HW, GN_ACT_RELU);
    CHECK_MSG(!memcmp(y, y2, T * sizeof *y), "HW %d: batchnorm_apply is not forward's output", HW);
    memcpy(d, dy, T * sizeof *d);
    batchnorm_act_backward(d, xhat, g, b, N, C, HW, GN_ACT_RELU);
    batchnorm_backward(dx, dg, db, d, xhat, istd, g, N, C, HW, 1, 0);
    double ey = 0, ed = 0, ex = 0, es = 0, big = 0;
    double m = (double)N * HW;
    for (int c = 0; c < C; c++) {
        double mean = 0, var = 0, sd = 0, sdx = 0;
        for (int n = 0; n < N; n++)
            for (int i = 0; i < HW; i++) mean += x[((size_t)n * C + c) * HW + i];
        mean /= m;
        for (int n = 0; n < N; n++)
            for (int i = 0; i < HW; i++) var += pow(x[((size_t)n * C + c) * HW + i] - mean, 2);
        var /= m;
        double is = 1 / sqrt(var + 1e-5);
        es = fmax(es, fabs(rm[c] - 0.1 * mean) + fabs(rv[c] - (0.9 + 0.1 * var * m / (m - 1))));
        for (int pass = 0; pass < 2; pass++)
            for (int n = 0; n < N; n++)
                for (int i = 0; i < HW; i++) {
                    size_t j = ((size_t)n * C + c) * HW + i;
                    double xh = (x[j] - mean) * is, u = g[c] * xh + b[c];
                    double dd = u > 0 ? dy[j] : 0;
                    if (pass == 0) {
                        ey = fmax(ey, fabs(y[j] - (u > 0 ? u : 0)));
                        ed = fmax(ed, fabs(d[j] - dd));
                        sd += dd;
                        sdx += dd * xh;
                    } else {
                        double want = g[c] * is * (dd - sd / m - xh * sdx / m);
                        ex = fmax(ex, fabs(dx[j] - want));
                        big = fmax(big, fabs(want));
                    }
                }
        es = fmax(es, fabs(db[c] - sd) / fmax(1, fabs(sd)) + fabs(dg[c] - sdx) / fmax(1, fabs(sdx)));
    }
    printf("batchnorm N=%d C=%d HW=%d vs double: y %.1e, act grad %.1e, dx %.1e (of %.2g), "
           "stats/param grads %.1e\n", N, C, HW, ey, ed, ex, big, es);
    CHECK_MSG(ey <= 1e-5 && ex <= 1e-4 * fmax(1, big) && es <= 1e-4,
              "HW %d: batchnorm kernels vs double: y %.2e, dx %.2e, statistics %.2e", HW, ey, ex,
              es);
    /* the ReLU mask from float xhat agrees with double's (no value lands on the kink here) */
    CHECK_MSG(ed <= 1e-6, "HW %d: activation gradient off by %.2e", HW, ed);
    /* evaluation with the running statistics just updated */
    memcpy(y2, x, T * sizeof *y2);
    batchnorm_forward_eval(y2, xhat, istd, rm, rv, g, b, N, C, HW, 1e-5f, GN_ACT_LINEAR);
    double ee = 0;
    for (int c = 0; c < C; c++)
        for (int n = 0; n < N; n++)
            for (int i = 0; i < HW; i++) {
                size_t j = ((size_t)n * C + c) * HW + i;
                double want = g[c] * (x[j] - rm[c]) / sqrt((double)rv[c] + 1e-5) + b[c];
                ee = fmax(ee, fabs(y2[j] - want));
            }
    CHECK_MSG(ee <= 1e-5, "HW %d: evaluation forward off by %.2e", HW, ee);
done:
    free(x), free(y), free(y2), free(xhat), free(dy), free(d), free(dx);
    free(g), free(b), free(istd), free(rm), free(rv), free(dg), free(db);
}

int main(void)
{
    paths_vs_double(3, 300, 5); /* small planes, 3 chunks of whole channels */
    paths_vs_double(4, 20, 63); /* the largest small plane */
    paths_vs_double(2, 3, 70);  /* large planes */
    paths_vs_double(5, 700, 1); /* vectors: 2 chunks */
    gradient_double();
    gradcheck_cfg("batchnorm train 3x5x4", "[net]\nwidth=4\nheight=5\nchannels=3\n[batchnorm]\n",
                  2, 0, 1, 3e-2);
    gradcheck_cfg("batchnorm train 1x1 image, batch 4",
                  "[net]\nwidth=1\nheight=1\nchannels=3\n[batchnorm]\n", 4, 0, 1, 3e-2);
    gradcheck_cfg("batchnorm eval", "[net]\nwidth=3\nheight=3\nchannels=2\n[batchnorm]\n", 2, 0,
                  0, 1e-2);
    gradcheck_cfg("batchnorm1d train (vector)", "[net]\ninputs=6\n[batchnorm]\n", 5, 0, 1, 3e-2);
    gradcheck_cfg("batchnorm1d eval (vector)", "[net]\ninputs=6\n[batchnorm]\n", 3, 0, 0, 1e-2);
    gradcheck_cfg("batchnorm after connected",
                  "[net]\ninputs=5\n[connected]\noutput=4\nactivation=tanh\n[batchnorm]\n", 3, 1,
                  1, 3e-2);
    gradcheck_cfg("batchnorm after conv",
                  "[net]\nwidth=5\nheight=4\nchannels=2\n[convolutional]\nfilters=3\nsize=3\n"
                  "pad=1\nactivation=relu\n[batchnorm]\n",
                  2, 1, 1, 3e-2);
    running_stats();
    conv_running_stats();
    kernel_forms();
    return check_exit();
}
