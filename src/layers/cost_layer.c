/* [cost]: a regression loss against per-image targets. y = x (passed through, so a later
 * layer could still read it), loss = mean over the batch of the per-image loss.
 *   type=sse: 1/2 ||x - t||^2   (the lecture's Euclidean loss; dL/dx = x - t)
 *   type=l1:  ||x - t||_1       (dL/dx = sign(x - t))
 * x:(N,D) t:(N,D) -> y:(N,D). Keys: type, scale (multiplies the loss, default 1). */
#include "layers/layer.h"

#include <math.h>
#include <string.h>

enum { COST_SSE, COST_L1 };

typedef struct cost {
    int type;
    double scale;
} cost;

static int cost_parse(gn_layer *l, struct gn_cfg_section *s, gn_err *err)
{
    static const char *const types[] = {"sse", "l1", NULL};
    cost *c = calloc(1, sizeof *c);
    if (!c) return gn_err_set(err, GN_ENOMEM, "out of memory");
    l->impl = c;
    l->is_loss = 1;
    int rc;
    if ((rc = gn_cfg_enum(s, "type", types, COST_SSE, &c->type, err))) return rc;
    if ((rc = gn_cfg_float(s, "scale", 1.0, 0.0, 1e9, &c->scale, err))) return rc;
    return GN_OK;
}

static int cost_plan(gn_layer *l, gn_err *err)
{
    (void)err;
    l->out = l->in[0];
    l->flops = 3.0 * (double)gn_shape_size(l->in[0]);
    l->flops_bwd = l->flops;
    return GN_OK;
}

static void cost_forward(gn_layer *l, const gn_ctx *ctx)
{
    cost *c = l->impl;
    size_t d = gn_shape_size(l->out), n = (size_t)ctx->batch * d;
    memcpy(l->y, l->x[0], n * sizeof(float));
    l->loss = 0;
    if (!l->targets || ctx->batch == 0) return;
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        double e = (double)l->x[0][i] - (double)l->targets[i];
        sum += c->type == COST_SSE ? 0.5 * e * e : fabs(e);
    }
    l->loss = c->scale * sum / ctx->batch;
}

static void cost_backward(gn_layer *l, const gn_ctx *ctx)
{
    cost *c = l->impl;
    if (!l->dx[0] || !l->targets) return;
    size_t n = (size_t)ctx->batch * gn_shape_size(l->out);
    float g = (float)(c->scale * ctx->loss_scale);
    for (size_t i = 0; i < n; i++) {
        float e = l->x[0][i] - l->targets[i];
        l->dx[0][i] += g * (c->type == COST_SSE ? e : (float)((e > 0) - (e < 0))) + l->dy[i];
    }
}

static void cost_destroy(gn_layer *l)
{
    free(l->impl);
    l->impl = NULL;
}

const gn_layer_ops gn_cost_ops = {
    .section = "cost",
    .parse = cost_parse,
    .plan = cost_plan,
    .forward = cost_forward,
    .backward = cost_backward,
    .destroy = cost_destroy,
};
