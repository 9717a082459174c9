/* [crop]: darknet's crop layer. A crop_height x crop_width window of each input image, mapped
 * y = scale * x + trans: scale 2, trans -1 (darknet's 0..1 pixels become -1..1), or with
 * noadjust=1 scale 1, trans 0.
 *
 * x:(N,C,H,W) -> y:(N,C,h,w), h = crop_height <= H, w = crop_width <= W.
 * Evaluation: the centre window, offset ((H-h)/2, (W-w)/2) rounded down, as darknet.
 * Training: for each image its own offset, uniform in [0, H-h] x [0, W-w], and with flip=1 a
 *   horizontal flip with probability 1/2 (the window read right to left), drawn from
 *   (ctx->seed, ctx->step, layer index, image) so that backward finds them again and threads do
 *   not matter. darknet draws one offset and one flip per batch from rand().
 * Keys: crop_height, crop_width (default 1, as darknet), flip (default 0), noadjust (default 0).
 *   angle, saturation, exposure, shift are accepted and have no effect: darknet's CPU forward
 *   ignores them as well (only its GPU build applies them); [net]'s augmentation keys and
 *   [data] are where gemmnet's colour augmentation lives.
 * Backward: dx[window] += scale * dy, through the same offsets and flips.
 * No parameters. FLOPs per image: 2 per output (forward), 1 per output (backward). */
#include "layers/layer.h"
#include "layers/describe.h"
#include "core/rng.h"

#include <string.h>

typedef struct crop {
    int h, w;     /* the window */
    int flip;
    float scale, trans;
} crop;

/* Where image n's window starts and whether it is flipped. */
typedef struct crop_place {
    int dy, dx, flip;
} crop_place;

static crop_place crop_where(const gn_layer *l, const crop *c, const gn_ctx *ctx, int n)
{
    gn_shape in = l->in[0];
    crop_place p = {(in.h - c->h) / 2, (in.w - c->w) / 2, 0};
    if (!ctx->train) return p;
    gn_rng r = gn_rng_make(gn_rng_key(gn_rng_key(ctx->seed, ctx->step, (uint64_t)l->index),
                                      0x63726f70u /* "crop" */, (uint64_t)n));
    p.dy = (int)gn_rng_below(&r, (uint64_t)(in.h - c->h + 1));
    p.dx = (int)gn_rng_below(&r, (uint64_t)(in.w - c->w + 1));
    p.flip = c->flip && (gn_rng_u64(&r) >> 63);
    return p;
}

// x:(C,H,W) -> y:(C,h,w), y[c][i][j] = scale * x[c][dy+i][flip ? dx+w-1-j : dx+j] + trans
static void crop_forward_image(float *restrict y, const float *restrict x, int C, int H, int W,
                               int h, int w, crop_place p, float scale, float trans)
{
    for (int c = 0; c < C; c++)
        for (int i = 0; i < h; i++) {
            const float *row = x + ((size_t)c * H + p.dy + i) * W + p.dx;
            float *out = y + ((size_t)c * h + i) * w;
            if (p.flip)
                for (int j = 0; j < w; j++) out[j] = scale * row[w - 1 - j] + trans;
            else
                for (int j = 0; j < w; j++) out[j] = scale * row[j] + trans;
        }
}

// dy:(C,h,w) -> dx:(C,H,W) += scale * dy at the window (the transpose of crop_forward_image)
static void crop_backward_image(float *restrict dx, const float *restrict dy, int C, int H, int W,
                                int h, int w, crop_place p, float scale)
{
    for (int c = 0; c < C; c++)
        for (int i = 0; i < h; i++) {
            float *row = dx + ((size_t)c * H + p.dy + i) * W + p.dx;
            const float *g = dy + ((size_t)c * h + i) * w;
            if (p.flip)
                for (int j = 0; j < w; j++) row[w - 1 - j] += scale * g[j];
            else
                for (int j = 0; j < w; j++) row[j] += scale * g[j];
        }
}

static int crop_parse(gn_layer *l, struct gn_cfg_section *s, gn_err *err)
{
    crop *c = calloc(1, sizeof *c);
    if (!c) return gn_err_set(err, GN_ENOMEM, "out of memory");
    l->impl = c;
    int rc, noadjust;
    if ((rc = gn_cfg_int(s, "crop_height", 1, 1, 1 << 16, &c->h, err))) return rc;
    if ((rc = gn_cfg_int(s, "crop_width", 1, 1, 1 << 16, &c->w, err))) return rc;
    if ((rc = gn_cfg_bool(s, "flip", 0, &c->flip, err))) return rc;
    if ((rc = gn_cfg_bool(s, "noadjust", 0, &noadjust, err))) return rc;
    c->scale = noadjust ? 1.0f : 2.0f;
    c->trans = noadjust ? 0.0f : -1.0f;
    static const char *const ignored[] = {"angle", "saturation", "exposure", "shift", NULL};
    gn_cfg_accept(s, ignored);
    return GN_OK;
}

static int crop_plan(gn_layer *l, gn_err *err)
{
    crop *c = l->impl;
    gn_shape in = l->in[0];
    if (c->h > in.h || c->w > in.w)
        return gn_cfg_error(gn_cfg_kv_find(l->sec, c->h > in.h ? "crop_height" : "crop_width"),
                            l->sec, err, GN_ESHAPE,
                            "a %dx%d crop does not fit the %dx%d input (height x width)", c->h,
                            c->w, in.h, in.w);
    l->out = (gn_shape){in.c, c->h, c->w};
    l->bwd_ignores_x = 1;
    l->flops = 2.0 * (double)gn_shape_size(l->out);
    l->flops_bwd = (double)gn_shape_size(l->out);
    return GN_OK;
}

static void crop_forward(gn_layer *l, const gn_ctx *ctx)
{
    crop *c = l->impl;
    gn_shape in = l->in[0];
    size_t isz = gn_shape_size(in), osz = gn_shape_size(l->out);
#pragma omp parallel for schedule(static) if (ctx->batch > 1 && osz * ctx->batch > 65536)
    for (int n = 0; n < ctx->batch; n++)
        crop_forward_image(l->y + n * osz, l->x[0] + n * isz, in.c, in.h, in.w, c->h, c->w,
                           crop_where(l, c, ctx, n), c->scale, c->trans);
}

static void crop_backward(gn_layer *l, const gn_ctx *ctx)
{
    crop *c = l->impl;
    if (!l->dx[0]) return;
    gn_shape in = l->in[0];
    size_t isz = gn_shape_size(in), osz = gn_shape_size(l->out);
#pragma omp parallel for schedule(static) if (ctx->batch > 1 && osz * ctx->batch > 65536)
    for (int n = 0; n < ctx->batch; n++)
        crop_backward_image(l->dx[0] + n * isz, l->dy + n * osz, in.c, in.h, in.w, c->h, c->w,
                            crop_where(l, c, ctx, n), c->scale);
}

static void crop_destroy(gn_layer *l)
{
    free(l->impl);
    l->impl = NULL;
}

/* The evaluation window is the centre one: ((H-h)/2, (W-w)/2), from l->in[0] and l->out. */
static void crop_describe(const gn_layer *l, gn_layer_desc *d)
{
    const crop *c = l->impl;
    layer_desc_init(d);
    d->scale = c->scale;
    d->shift = c->trans;
}

const gn_layer_ops gn_crop_ops = {
    .section = "crop",
    .parse = crop_parse,
    .plan = crop_plan,
    .forward = crop_forward,
    .backward = crop_backward,
    .destroy = crop_destroy,
    .describe = crop_describe,
};
