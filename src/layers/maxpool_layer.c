/* [maxpool]: max pooling, darknet's semantics.
 *
 * x:(N,C,H,W) -> y:(N,C,P,Q) with P = (H + padding - size)/stride + 1 (Q likewise); the window
 * of output (p, q) starts at (p*stride - padding/2, q*stride - padding/2). Positions outside the
 * image are ignored (never taken as 0). PyTorch's MaxPool2d(k, s, p) is size=k, stride=s,
 * padding=2p. Keys: size (default 1), stride (default size), padding (default size-1, at most
 * 2*(size-1) so that every window overlaps the image).
 * Backward: the gradient of each output goes to its maximum; ties go to the first maximum in
 * row-major window order. The argmax of each output is kept in l->save as int32 plane indexes
 * (the save slice is only ever accessed as int32 by this layer).
 * FLOPs per image: size*size comparisons per output forward, one add per output backward. */
#include "layers/layer.h"
#include "layers/describe.h"
#include "kernels/pool.h"

_Static_assert(sizeof(int32_t) == sizeof(float), "argmax indexes are stored in float slots");

typedef struct maxpool {
    int size, stride, padding;
} maxpool;

static int maxpool_parse(gn_layer *l, struct gn_cfg_section *s, gn_err *err)
{
    maxpool *m = calloc(1, sizeof *m);
    if (!m) return gn_err_set(err, GN_ENOMEM, "out of memory");
    l->impl = m;
    int rc;
    if ((rc = gn_cfg_int(s, "size", 1, 1, 1024, &m->size, err))) return rc;
    if ((rc = gn_cfg_int(s, "stride", m->size, 1, 1024, &m->stride, err))) return rc;
    if ((rc = gn_cfg_int(s, "padding", m->size - 1, 0, 2 * (m->size - 1), &m->padding, err)))
        return rc;
    return GN_OK;
}

static int maxpool_plan(gn_layer *l, gn_err *err)
{
    maxpool *m = l->impl;
    gn_shape in = l->in[0];
    if (in.h + m->padding < m->size || in.w + m->padding < m->size)
        return gn_cfg_error(NULL, l->sec, err, GN_ESHAPE,
                            "window %dx%d does not fit the input %dx%dx%d (C x H x W) with "
                            "padding %d", m->size, m->size, in.c, in.h, in.w, m->padding);
    l->out = (gn_shape){in.c, (in.h + m->padding - m->size) / m->stride + 1,
                        (in.w + m->padding - m->size) / m->stride + 1};
    size_t n_out = gn_shape_size(l->out);
    l->save_floats = (size_t)l->batch * n_out;
    l->flops = (double)n_out * m->size * m->size;
    l->flops_bwd = (double)n_out;
    l->bwd_ignores_x = 1; /* backward scatters through the saved argmax indexes */
    return GN_OK;
}

static void maxpool_forward_layer(gn_layer *l, const gn_ctx *ctx)
{
    maxpool *m = l->impl;
    gn_shape in = l->in[0];
    maxpool_forward(l->y, (int32_t *)l->save, l->x[0], ctx->batch, in.c, in.h, in.w, l->out.h,
                    l->out.w, m->size, m->stride, m->padding / 2);
}

static void maxpool_backward_layer(gn_layer *l, const gn_ctx *ctx)
{
    if (!l->dx[0]) return;
    gn_shape in = l->in[0];
    maxpool_backward(l->dx[0], l->dy, (const int32_t *)l->save, ctx->batch, in.c, in.h, in.w,
                     l->out.h, l->out.w);
}

static void maxpool_destroy(gn_layer *l)
{
    free(l->impl);
    l->impl = NULL;
}

/* The window of output p starts padding/2 before p*stride: padding/2 rows before the image,
 * the rest of the total padding after it. */
static void maxpool_describe(const gn_layer *l, gn_layer_desc *d)
{
    const maxpool *m = l->impl;
    layer_desc_init(d);
    d->size = m->size;
    d->stride = m->stride;
    d->pad_begin = m->padding / 2;
    d->pad_end = m->padding - m->padding / 2;
}

const gn_layer_ops gn_maxpool_ops = {
    .section = "maxpool",
    .parse = maxpool_parse,
    .plan = maxpool_plan,
    .forward = maxpool_forward_layer,
    .backward = maxpool_backward_layer,
    .destroy = maxpool_destroy,
    .describe = maxpool_describe,
};
