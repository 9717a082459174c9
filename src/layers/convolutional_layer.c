/* [convolutional]: 2-D convolution, then optional batch normalization, then an activation —
 * darknet's layer, with PyTorch's Conv2d(bias=!batch_normalize) + BatchNorm2d + act semantics.
 *
 * x:(N,C,H,W) w:(K,C/G,R,R) -> y:(N,K,P,Q), P = (H + 2*pad - R)/stride + 1 (Q likewise).
 * Keys (darknet): filters (K, default 1), size (R, default 1), stride (default 1),
 *   pad (1: padding = size/2, and it wins over padding=), padding (explicit, default 0),
 *   groups (G, default 1; must divide filters and input channels), batch_normalize (0/1),
 *   activation (default logistic, as darknet), winograd (auto, 0, 2 or 4; default
 *   [net] winograd=): 3x3 stride-1 ungrouped layers run Winograd F(2x2,3x3) or F(4x4,3x3)
 *   (winograd.h); auto picks F(4x4) or im2col by shape (winograd_auto).
 *   Refused with GN_ENOTSUP: dilation other than 1, binary, xnor, flipped, and stride_x /
 *   stride_y different from stride.
 * Parameters: weight [K, C/G, R, R]; without batch norm bias [K]; with it bn.weight [K],
 *   bn.bias [K] and the state bn.running_mean [K], bn.running_var [K].
 * save: with batch norm, xhat (N,K,P,Q) then 1/std (K) for backward.
 * A frozen layer (gn_layer.frozen, fine-tuning) normalizes with its running statistics, as
 * in evaluation, and leaves them unchanged. */
#include "layers/layer.h"
#include "layers/describe.h"
#include "kernels/activation.h"
#include "kernels/batchnorm.h"
#include "kernels/conv.h"
#include "kernels/winograd.h"

#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define BN_EPS 1e-5f
#define BN_MOMENTUM 0.1f
#define CONV_PAR_MIN_MACS 1048576.0

typedef struct convolutional {
    int filters, size, stride, padding, groups, bn;
    int winograd;    /* WINOGRAD_AUTO, 0, 2 or 4: see conv2d_shape */
    gn_act act;
    conv2d_shape sh; /* planned, N = the planned batch */
    int threads;     /* the workspace is sized for this many */
    gn_param *w, *b, *gamma, *beta, *rmean, *rvar;
} convolutional;

/* A darknet key gemmnet does not implement: an error unless it has its harmless value. */
static int refuse_unless(struct gn_cfg_section *s, const char *key, int harmless, gn_err *err)
{
    gn_cfg_kv *kv = gn_cfg_kv_find(s, key);
    if (!kv) return GN_OK;
    int v, rc;
    if ((rc = gn_cfg_int(s, key, harmless, -(1 << 30), 1 << 30, &v, err))) return rc;
    if (v != harmless)
        return gn_cfg_error(kv, s, err, GN_ENOTSUP,
                            "is not supported by gemmnet's [convolutional] (only %s=%d)", key,
                            harmless);
    return GN_OK;
}

static int conv_parse(gn_layer *l, struct gn_cfg_section *s, gn_err *err)
{
    convolutional *c = calloc(1, sizeof *c);
    if (!c) return gn_err_set(err, GN_ENOMEM, "out of memory");
    l->impl = c;
    int rc, pad;
    if ((rc = gn_cfg_int(s, "filters", 1, 1, 1 << 20, &c->filters, err))) return rc;
    if ((rc = gn_cfg_int(s, "size", 1, 1, 1024, &c->size, err))) return rc;
    if ((rc = gn_cfg_int(s, "stride", 1, 1, 1024, &c->stride, err))) return rc;
    if ((rc = gn_cfg_int(s, "pad", 0, 0, 1 << 20, &pad, err))) return rc;
    if ((rc = gn_cfg_int(s, "padding", 0, 0, 1024, &c->padding, err))) return rc;
    if (pad) c->padding = c->size / 2; /* darknet: pad wins */
    if ((rc = gn_cfg_int(s, "groups", 1, 1, 1 << 20, &c->groups, err))) return rc;
    if ((rc = gn_cfg_bool(s, "batch_normalize", 0, &c->bn, err))) return rc;
    if ((rc = layer_parse_act(s, GN_ACT_LOGISTIC, &c->act, err))) return rc;
    if ((rc = layer_parse_winograd(s, l->winograd, &c->winograd, err))) return rc;
    if ((rc = refuse_unless(s, "dilation", 1, err))) return rc;
    if ((rc = refuse_unless(s, "binary", 0, err))) return rc;
    if ((rc = refuse_unless(s, "xnor", 0, err))) return rc;
    if ((rc = refuse_unless(s, "flipped", 0, err))) return rc;
    if ((rc = refuse_unless(s, "stride_x", c->stride, err))) return rc;
    if ((rc = refuse_unless(s, "stride_y", c->stride, err))) return rc;
    return GN_OK;
}

static int conv_plan(gn_layer *l, gn_err *err)
{
    convolutional *c = l->impl;
    gn_shape in = l->in[0];
    if (c->filters % c->groups || in.c % c->groups)
        return gn_cfg_error(gn_cfg_kv_find(l->sec, "groups"), l->sec, err, GN_ECONFIG,
                            "groups=%d must divide both filters (%d) and the input channels "
                            "(%d)", c->groups, c->filters, in.c);
    c->sh = (conv2d_shape){.N = l->batch, .C = in.c, .H = in.h, .W = in.w, .K = c->filters,
                           .R = c->size, .S = c->size, .stride = c->stride,
                           .pad = c->padding, .groups = c->groups, .winograd = c->winograd};
    if (conv2d_shape_finish(&c->sh))
        return gn_cfg_error(NULL, l->sec, err, GN_ESHAPE,
                            "a %dx%d kernel with padding %d does not fit the %dx%dx%d input",
                            c->size, c->size, c->padding, in.c, in.h, in.w);
    if (c->winograd == WINOGRAD_AUTO) c->sh.winograd = winograd_auto(&c->sh);
    const conv2d_shape *sh = &c->sh;
    l->out = (gn_shape){sh->K, sh->P, sh->Q};
    l->n_par = 0;
    l->n_params = l->n_state = 0;
    c->w = layer_add_param(l, "weight", 1, 4, sh->K, sh->C / sh->groups, sh->R, sh->S);
    c->b = c->gamma = c->beta = c->rmean = c->rvar = NULL;
    if (!c->bn) {
        c->b = layer_add_param(l, "bias", 1, 1, sh->K, 0, 0, 0);
    } else {
        c->gamma = layer_add_param(l, "bn.weight", 1, 1, sh->K, 0, 0, 0);
        c->beta = layer_add_param(l, "bn.bias", 1, 1, sh->K, 0, 0, 0);
        c->rmean = layer_add_param(l, "bn.running_mean", 0, 1, sh->K, 0, 0, 0);
        c->rvar = layer_add_param(l, "bn.running_var", 0, 1, sh->K, 0, 0, 0);
    }
    double macs = (double)sh->K * (sh->C / sh->groups) * sh->R * sh->S * sh->P * sh->Q;
    /* Threads for the loop over images. Small layers (under ~1M multiply-adds per batch, some
     * 50 us) stay on one thread: forking costs more than it saves there. */
    c->threads = 1;
#ifdef _OPENMP
    if (macs * l->batch >= CONV_PAR_MIN_MACS) c->threads = omp_get_max_threads();
#endif
    l->ws_floats = conv2d_ws_floats(sh, c->threads);
    size_t outn = gn_shape_size(l->out);
    l->save_floats = c->bn ? (size_t)l->batch * outn + (size_t)sh->K : 0;
    l->recomputable = c->bn; /* y = act(gamma xhat + beta) */
    l->flops = 2.0 * macs + (c->bn ? 4.0 : 1.0) * (double)outn +
               (c->act != GN_ACT_LINEAR ? (double)outn : 0.0);
    l->flops_bwd = 4.0 * macs + (c->bn ? 8.0 : 1.0) * (double)outn;
    return GN_OK;
}

static void conv_init(gn_layer *l, uint64_t seed)
{
    convolutional *c = l->impl;
    int fan_in = c->w->shape[1] * c->w->shape[2] * c->w->shape[3];
    layer_init_uniform(layer_param(l, c->w), c->w->count, layer_init_bound(fan_in, c->act),
                       seed, l->index, 0);
    if (c->b) memset(layer_param(l, c->b), 0, c->b->count * sizeof(float));
    if (c->bn) {
        float *g = layer_param(l, c->gamma), *be = layer_param(l, c->beta);
        float *rm = layer_param(l, c->rmean), *rv = layer_param(l, c->rvar);
        for (int k = 0; k < c->filters; k++) {
            g[k] = 1.0f;
            be[k] = 0.0f;
            rm[k] = 0.0f;
            rv[k] = 1.0f;
        }
    }
}

static void conv_forward(gn_layer *l, const gn_ctx *ctx)
{
    convolutional *c = l->impl;
    conv2d_shape sh = c->sh;
    sh.N = ctx->batch;
    double prof[2] = {0, 0};
    conv2d_forward_prof(l->y, l->x[0], layer_param(l, c->w), c->b ? layer_param(l, c->b) : NULL,
                        ctx->ws, &sh, c->threads, ctx->prof ? prof : NULL);
    if (ctx->prof) {
        ctx->prof->im2col += prof[0];
        ctx->prof->gemm += prof[1];
    }
    int PQ = sh.P * sh.Q;
    if (!c->bn) {
        act_forward(l->y, (size_t)sh.N * sh.K * PQ, c->act);
        return;
    }
    /* batch norm with the activation folded in: one pass less over y */
    float *xhat = l->save, *istd = l->save + (size_t)l->batch * sh.K * PQ;
    /* a frozen layer's batch norm stays in evaluation mode while the rest of the net trains */
    if (ctx->train && !l->frozen)
        batchnorm_forward_train(l->y, xhat, istd, layer_param(l, c->rmean),
                                layer_param(l, c->rvar), layer_param(l, c->gamma),
                                layer_param(l, c->beta), sh.N, sh.K, PQ, BN_EPS, BN_MOMENTUM,
                                c->act);
    else
        batchnorm_forward_eval(l->y, xhat, istd, layer_param(l, c->rmean),
                               layer_param(l, c->rvar), layer_param(l, c->gamma),
                               layer_param(l, c->beta), sh.N, sh.K, PQ, BN_EPS, c->act);
}

/* Rebuilds y from the saved xhat (GN_NET_RECOMPUTE): forward's last step again. */
static void conv_recompute(gn_layer *l, const gn_ctx *ctx)
{
    convolutional *c = l->impl;
    GN_ASSERT(c->bn);
    int PQ = c->sh.P * c->sh.Q;
    batchnorm_apply(l->y, l->save, layer_param(l, c->gamma), layer_param(l, c->beta), ctx->batch,
                    c->sh.K, PQ, c->act);
}

static void conv_backward(gn_layer *l, const gn_ctx *ctx)
{
    convolutional *c = l->impl;
    conv2d_shape sh = c->sh;
    sh.N = ctx->batch;
    int PQ = sh.P * sh.Q;
    /* dy becomes dL/d(pre-activation), then dL/d(conv output), in place. With batch norm the
     * activation's derivative comes from xhat, not y: y may be gone (GN_NET_RECOMPUTE). */
    if (c->bn) {
        float *xhat = l->save, *istd = l->save + (size_t)l->batch * sh.K * PQ;
        batchnorm_act_backward(l->dy, xhat, layer_param(l, c->gamma), layer_param(l, c->beta),
                               sh.N, sh.K, PQ, c->act);
        batchnorm_backward(l->dy, layer_grad(l, c->gamma), layer_grad(l, c->beta), l->dy, xhat,
                           istd, layer_param(l, c->gamma), sh.N, sh.K, PQ,
                           ctx->train && !l->frozen, 0);
    } else {
        act_backward(l->dy, l->y, (size_t)sh.N * sh.K * PQ, c->act);
    }
    double prof[2] = {0, 0};
    conv2d_backward_prof(l->dx[0], layer_grad(l, c->w), c->b ? layer_grad(l, c->b) : NULL, l->dy,
                         l->x[0], layer_param(l, c->w), ctx->ws, &sh, c->threads,
                         ctx->prof ? prof : NULL);
    if (ctx->prof) {
        ctx->prof->im2col += prof[0];
        ctx->prof->gemm += prof[1];
    }
}

static void conv_destroy(gn_layer *l)
{
    free(l->impl);
    l->impl = NULL;
}

static void conv_describe(const gn_layer *l, gn_layer_desc *d)
{
    const convolutional *c = l->impl;
    layer_desc_init(d);
    d->act = c->act;
    d->size = c->size;
    d->stride = c->stride;
    d->pad_begin = d->pad_end = c->padding;
    d->groups = c->groups;
    d->bn = c->bn;
    d->bn_eps = BN_EPS;
}

const gn_layer_ops gn_convolutional_ops = {
    .section = "convolutional",
    .parse = conv_parse,
    .plan = conv_plan,
    .init = conv_init,
    .forward = conv_forward,
    .backward = conv_backward,
    .recompute = conv_recompute,
    .destroy = conv_destroy,
    .describe = conv_describe,
};
