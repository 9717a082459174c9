/* [avgpool]: average pooling.
 *
 * Without keys (darknet): global average pooling, x:(N,C,H,W) -> y:(N,C,1,1), y = mean of each
 * channel plane.
 * gemmnet extension: with size=K, local average pooling, stride (default K), padding (default 0,
 * added on every side, at most K/2 as in PyTorch): P = (H + 2*padding - K)/stride + 1 (Q
 * likewise). Every output divides by K*K, padded positions counting as zeros: PyTorch's
 * AvgPool2d(K, stride, padding) with its defaults (count_include_pad=True, ceil_mode=False).
 * FLOPs per image: one add per window element plus one multiply per output, forward and
 * backward alike. */
#include "layers/layer.h"
#include "layers/describe.h"
#include "kernels/pool.h"

typedef struct avgpool {
    int global;
    int size, stride, padding;
} avgpool;

static int avgpool_parse(gn_layer *l, struct gn_cfg_section *s, gn_err *err)
{
    avgpool *a = calloc(1, sizeof *a);
    if (!a) return gn_err_set(err, GN_ENOMEM, "out of memory");
    l->impl = a;
    a->global = !gn_cfg_has(s, "size");
    if (a->global) {
        static const char *const local_keys[] = {"stride", "padding", NULL};
        for (int i = 0; local_keys[i]; i++)
            if (gn_cfg_has(s, local_keys[i]))
                return gn_cfg_error(gn_cfg_kv_find(s, local_keys[i]), s, err, GN_ECONFIG,
                                    "only local average pooling (size=...) takes this key; "
                                    "without size, [avgpool] averages each whole channel");
        return GN_OK;
    }
    int rc;
    if ((rc = gn_cfg_int(s, "size", 1, 1, 1024, &a->size, err))) return rc;
    if ((rc = gn_cfg_int(s, "stride", a->size, 1, 1024, &a->stride, err))) return rc;
    if ((rc = gn_cfg_int(s, "padding", 0, 0, a->size / 2, &a->padding, err))) return rc;
    return GN_OK;
}

static int avgpool_plan(gn_layer *l, gn_err *err)
{
    avgpool *a = l->impl;
    gn_shape in = l->in[0];
    l->bwd_ignores_x = 1; /* backward spreads dy over the windows */
    if (a->global) {
        l->out = (gn_shape){in.c, 1, 1};
        l->flops = (double)gn_shape_size(in) + in.c;
        l->flops_bwd = l->flops;
        return GN_OK;
    }
    if (in.h + 2 * a->padding < a->size || in.w + 2 * a->padding < a->size)
        return gn_cfg_error(NULL, l->sec, err, GN_ESHAPE,
                            "window %dx%d does not fit the input %dx%dx%d (C x H x W) with "
                            "padding %d", a->size, a->size, in.c, in.h, in.w, a->padding);
    l->out = (gn_shape){in.c, (in.h + 2 * a->padding - a->size) / a->stride + 1,
                        (in.w + 2 * a->padding - a->size) / a->stride + 1};
    l->flops = (double)gn_shape_size(l->out) * (a->size * a->size + 1);
    l->flops_bwd = l->flops;
    return GN_OK;
}

static void avgpool_forward_layer(gn_layer *l, const gn_ctx *ctx)
{
    avgpool *a = l->impl;
    gn_shape in = l->in[0];
    if (a->global)
        avgpool_global_forward(l->y, l->x[0], ctx->batch, in.c, in.h * in.w);
    else
        avgpool_forward(l->y, l->x[0], ctx->batch, in.c, in.h, in.w, l->out.h, l->out.w,
                        a->size, a->stride, a->padding);
}

static void avgpool_backward_layer(gn_layer *l, const gn_ctx *ctx)
{
    avgpool *a = l->impl;
    gn_shape in = l->in[0];
    if (!l->dx[0]) return;
    if (a->global)
        avgpool_global_backward(l->dx[0], l->dy, ctx->batch, in.c, in.h * in.w);
    else
        avgpool_backward(l->dx[0], l->dy, ctx->batch, in.c, in.h, in.w, l->out.h, l->out.w,
                         a->size, a->stride, a->padding);
}

static void avgpool_destroy(gn_layer *l)
{
    free(l->impl);
    l->impl = NULL;
}

static void avgpool_describe(const gn_layer *l, gn_layer_desc *d)
{
    const avgpool *a = l->impl;
    layer_desc_init(d);
    d->size = a->global ? 0 : a->size;
    d->stride = a->global ? 1 : a->stride;
    d->pad_begin = d->pad_end = a->global ? 0 : a->padding;
}

const gn_layer_ops gn_avgpool_ops = {
    .section = "avgpool",
    .parse = avgpool_parse,
    .plan = avgpool_plan,
    .forward = avgpool_forward_layer,
    .backward = avgpool_backward_layer,
    .destroy = avgpool_destroy,
    .describe = avgpool_describe,
};
