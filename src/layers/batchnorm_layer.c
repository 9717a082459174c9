/* [batchnorm]: batch normalization on its own, PyTorch's BatchNorm2d (or BatchNorm1d for a
 * vector input (C,1,1)): y = gamma * (x - mean) / sqrt(var + eps) + beta per channel, with batch
 * statistics over (N,H,W) in training and the running statistics in evaluation; eps 1e-5,
 * momentum 0.1 (see kernels/batchnorm.h). No keys; output shape = input shape; no activation.
 * Parameters: bn.weight [C] (1), bn.bias [C] (0); state bn.running_mean [C] (0),
 * bn.running_var [C] (1). save: xhat (N,C,H,W) then 1/std (C). A frozen layer
 * (gn_layer.frozen, fine-tuning) uses and keeps its running statistics even in training. */
#include "layers/layer.h"
#include "layers/describe.h"
#include "kernels/batchnorm.h"

#include <string.h>

#define BN_EPS 1e-5f
#define BN_MOMENTUM 0.1f

typedef struct batchnorm {
    gn_param *gamma, *beta, *rmean, *rvar;
} batchnorm;

static int bn_parse(gn_layer *l, struct gn_cfg_section *s, gn_err *err)
{
    (void)s;
    batchnorm *b = calloc(1, sizeof *b);
    if (!b) return gn_err_set(err, GN_ENOMEM, "out of memory");
    l->impl = b;
    return GN_OK;
}

static int bn_plan(gn_layer *l, gn_err *err)
{
    (void)err;
    batchnorm *b = l->impl;
    int C = l->in[0].c;
    l->out = l->in[0];
    l->n_par = 0;
    l->n_params = l->n_state = 0;
    b->gamma = layer_add_param(l, "bn.weight", 1, 1, C, 0, 0, 0);
    b->beta = layer_add_param(l, "bn.bias", 1, 1, C, 0, 0, 0);
    b->rmean = layer_add_param(l, "bn.running_mean", 0, 1, C, 0, 0, 0);
    b->rvar = layer_add_param(l, "bn.running_var", 0, 1, C, 0, 0, 0);
    size_t n = gn_shape_size(l->out);
    l->save_floats = (size_t)l->batch * n + (size_t)C;
    l->recomputable = 1; /* y = gamma xhat + beta */
    l->flops = 5.0 * (double)n;
    l->flops_bwd = 8.0 * (double)n;
    return GN_OK;
}

static void bn_init(gn_layer *l, uint64_t seed)
{
    (void)seed;
    batchnorm *b = l->impl;
    float *g = layer_param(l, b->gamma), *be = layer_param(l, b->beta);
    float *rm = layer_param(l, b->rmean), *rv = layer_param(l, b->rvar);
    for (size_t k = 0; k < b->gamma->count; k++) {
        g[k] = 1.0f;
        be[k] = 0.0f;
        rm[k] = 0.0f;
        rv[k] = 1.0f;
    }
}

static void bn_forward(gn_layer *l, const gn_ctx *ctx)
{
    batchnorm *b = l->impl;
    int C = l->out.c, HW = l->out.h * l->out.w;
    size_t n = (size_t)ctx->batch * gn_shape_size(l->out);
    float *xhat = l->save, *istd = l->save + (size_t)l->batch * gn_shape_size(l->out);
    memcpy(l->y, l->x[0], n * sizeof(float));
    /* a frozen layer stays in evaluation mode while the rest of the net trains */
    if (ctx->train && !l->frozen)
        batchnorm_forward_train(l->y, xhat, istd, layer_param(l, b->rmean),
                                layer_param(l, b->rvar), layer_param(l, b->gamma),
                                layer_param(l, b->beta), ctx->batch, C, HW, BN_EPS,
                                BN_MOMENTUM, GN_ACT_LINEAR);
    else
        batchnorm_forward_eval(l->y, xhat, istd, layer_param(l, b->rmean),
                               layer_param(l, b->rvar), layer_param(l, b->gamma),
                               layer_param(l, b->beta), ctx->batch, C, HW, BN_EPS,
                               GN_ACT_LINEAR);
}

static void bn_recompute(gn_layer *l, const gn_ctx *ctx)
{
    batchnorm *b = l->impl;
    batchnorm_apply(l->y, l->save, layer_param(l, b->gamma), layer_param(l, b->beta), ctx->batch,
                    l->out.c, l->out.h * l->out.w, GN_ACT_LINEAR);
}

static void bn_backward(gn_layer *l, const gn_ctx *ctx)
{
    batchnorm *b = l->impl;
    int C = l->out.c, HW = l->out.h * l->out.w;
    float *xhat = l->save, *istd = l->save + (size_t)l->batch * gn_shape_size(l->out);
    batchnorm_backward(l->dx[0], layer_grad(l, b->gamma), layer_grad(l, b->beta), l->dy, xhat,
                       istd, layer_param(l, b->gamma), ctx->batch, C, HW,
                       ctx->train && !l->frozen, 1);
}

static void bn_destroy(gn_layer *l)
{
    free(l->impl);
    l->impl = NULL;
}

static void bn_describe(const gn_layer *l, gn_layer_desc *d)
{
    (void)l;
    layer_desc_init(d);
    d->bn = 1;
    d->bn_eps = BN_EPS;
}

const gn_layer_ops gn_batchnorm_ops = {
    .section = "batchnorm",
    .parse = bn_parse,
    .plan = bn_plan,
    .init = bn_init,
    .forward = bn_forward,
    .backward = bn_backward,
    .recompute = bn_recompute,
    .destroy = bn_destroy,
    .describe = bn_describe,
};
