/* Finite-difference gradient checks (see gn_gradcheck_layer in net.h). */
#include "gemmnet/gemmnet.h"
#include "core/rng.h"
#include "core/util.h"

#include <math.h>
#include <string.h>

static double layer_loss(gn_layer *l, const gn_ctx *ctx, const double *r, size_t ny)
{
    l->ops->forward(l, ctx);
    if (l->is_loss) return l->loss;
    double s = 0;
    for (size_t j = 0; j < ny; j++) s += r[j] * (double)l->y[j];
    return s;
}

static double rel_err(double a, double n)
{
    return fabs(a - n) / fmax(fmax(fabs(a), fabs(n)), 1e-2);
}

/* Checks up to max_checks entries of v (length n) against analytic gradient g. */
static void check_vector(gn_layer *l, const gn_ctx *ctx, const double *r, size_t ny, float *v,
                         const float *g, size_t n, int max_checks, gn_rng *rng, double *worst,
                         gn_gradcheck *res)
{
    size_t step = n > (size_t)max_checks ? n / (size_t)max_checks : 1;
    size_t start = step > 1 ? gn_rng_below(rng, step) : 0;
    for (size_t i = start; i < n; i += step) {
        float v0 = v[i];
        double h = 2e-3 * fmax(1.0, fabs(v0));
        double num[2];
        for (int k = 0; k < 2; k++) {
            double e = k ? h / 2 : h;
            v[i] = (float)(v0 + e);
            double eps_up = (double)v[i] - v0;
            double lp = layer_loss(l, ctx, r, ny);
            v[i] = (float)(v0 - e);
            double eps_dn = v0 - (double)v[i];
            double lm = layer_loss(l, ctx, r, ny);
            num[k] = (lp - lm) / (eps_up + eps_dn);
        }
        v[i] = v0;
        /* A kink between the two step sizes: the quotient depends on the step. */
        if (fabs(num[0] - num[1]) > 0.02 * fmax(fabs(num[0]), fabs(num[1])) + 2e-3) {
            res->skipped++;
            continue;
        }
        double e = rel_err((double)g[i], num[0]);
        if (e > *worst) *worst = e;
        res->checked++;
    }
}

int gn_gradcheck_layer(gn_layer *l, const gn_ctx *ctx, int max_checks, uint64_t seed,
                       gn_gradcheck *res, gn_err *err)
{
    memset(res, 0, sizeof *res);
    size_t ny = (size_t)ctx->batch * gn_shape_size(l->out);
    double *r = malloc(ny * sizeof *r);
    float *dy = malloc(ny * sizeof *dy);
    float *dw = gn_alloc(l->n_params, sizeof(float));
    float *dx[GN_MAX_INPUTS] = {0};
    int rc = GN_OK;
    if (!r || !dy || !dw) {
        rc = gn_err_set(err, GN_ENOMEM, "out of memory");
        goto done;
    }
    gn_rng rng = gn_rng_make(gn_rng_key(seed, (uint64_t)l->index, 7));
    for (size_t j = 0; j < ny; j++) {
        r[j] = l->is_loss ? 0.0 : 2.0 * gn_rng_uniform(&rng) - 1.0;
        dy[j] = (float)r[j];
    }
    /* Analytic gradients. */
    l->ops->forward(l, ctx);
    memcpy(l->dy, dy, ny * sizeof *dy);
    if (l->n_params) memset(l->grads, 0, l->n_params * sizeof(float));
    for (int k = 0; k < l->n_in; k++)
        if (l->dx[k]) memset(l->dx[k], 0, (size_t)ctx->batch * gn_shape_size(l->in[k]) * 4);
    l->ops->backward(l, ctx);
    if (l->n_params) memcpy(dw, l->grads, l->n_params * sizeof(float));
    for (int k = 0; k < l->n_in; k++) {
        if (!l->dx[k]) continue;
        size_t n = (size_t)ctx->batch * gn_shape_size(l->in[k]);
        dx[k] = malloc(n * sizeof(float));
        if (!dx[k]) {
            rc = gn_err_set(err, GN_ENOMEM, "out of memory");
            goto done;
        }
        memcpy(dx[k], l->dx[k], n * sizeof(float));
    }
    /* Numeric gradients. */
    for (int k = 0; k < l->n_in; k++) {
        if (!dx[k]) continue;
        /* The same buffer may feed two inputs (a route of one layer twice): check it once. */
        int dup = 0;
        for (int j = 0; j < k; j++) dup |= l->x[j] == l->x[k];
        if (dup) continue;
        check_vector(l, ctx, r, ny, (float *)l->x[k], dx[k],
                     (size_t)ctx->batch * gn_shape_size(l->in[k]), max_checks, &rng,
                     &res->max_err_dx, res);
    }
    for (int p = 0; p < l->n_par; p++) {
        const gn_param *pp = &l->par[p];
        if (!pp->trainable) continue;
        check_vector(l, ctx, r, ny, l->params + pp->offset, dw + pp->offset, pp->count,
                     max_checks, &rng, &res->max_err_dw, res);
    }
    l->ops->forward(l, ctx);
done:
    for (int k = 0; k < GN_MAX_INPUTS; k++) free(dx[k]);
    free(r);
    free(dy);
    gn_free(dw);
    return rc;
}
