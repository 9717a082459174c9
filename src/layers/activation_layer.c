/* [activation]: y = f(x) elementwise, x:(N,D) -> y:(N,D). Key: activation (default linear).
 * Backward: dx += dy * f'(x), with f' computed from y (kernels/activation.h); like [connected],
 * it scales l->dy in place first.
 * FLOPs per image: D forward, D backward (one operation per element). */
#include "layers/layer.h"
#include "layers/describe.h"
#include "kernels/activation.h"

#include <string.h>

typedef struct activation {
    gn_act act;
} activation;

static int activation_parse(gn_layer *l, struct gn_cfg_section *s, gn_err *err)
{
    activation *a = calloc(1, sizeof *a);
    if (!a) return gn_err_set(err, GN_ENOMEM, "out of memory");
    l->impl = a;
    return layer_parse_act(s, GN_ACT_LINEAR, &a->act, err);
}

static int activation_plan(gn_layer *l, gn_err *err)
{
    (void)err;
    l->out = l->in[0];
    l->flops = (double)gn_shape_size(l->out);
    l->flops_bwd = l->flops;
    return GN_OK;
}

static void activation_forward(gn_layer *l, const gn_ctx *ctx)
{
    activation *a = l->impl;
    size_t n = (size_t)ctx->batch * gn_shape_size(l->out);
    memcpy(l->y, l->x[0], n * sizeof(float));
    act_forward(l->y, n, a->act);
}

static void activation_backward(gn_layer *l, const gn_ctx *ctx)
{
    activation *a = l->impl;
    if (!l->dx[0]) return;
    size_t n = (size_t)ctx->batch * gn_shape_size(l->out);
    act_backward(l->dy, l->y, n, a->act);
    float *restrict dx = l->dx[0];
    const float *restrict dy = l->dy;
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) dx[i] += dy[i];
}

static void activation_destroy(gn_layer *l)
{
    free(l->impl);
    l->impl = NULL;
}

static void activation_describe(const gn_layer *l, gn_layer_desc *d)
{
    const activation *a = l->impl;
    layer_desc_init(d);
    d->act = a->act;
}

const gn_layer_ops gn_activation_ops = {
    .section = "activation",
    .parse = activation_parse,
    .plan = activation_plan,
    .forward = activation_forward,
    .backward = activation_backward,
    .destroy = activation_destroy,
    .describe = activation_describe,
};
