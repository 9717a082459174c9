/* [connected]: a fully connected (linear) layer, y = act(x W^T + b).
 *
 * x:(N,K) w:(M,K) b:(M) -> y:(N,M), where K = C*H*W of the input and M = output.
 * Backward (the lecture's linear module):
 *   dL/dx_in = dL/dx_out W        -> dx:(N,K) += dy:(N,M) w:(M,K)
 *   dL/dW    = dL/dx_out^T x_in   -> dw:(M,K) += dy^T:(M,N) x:(N,K)
 *   dL/db    = sum over N of dy
 * Keys: output, activation, bias (default 1), init_weights / init_bias (explicit row-major
 * values, for small worked examples). */
#include "layers/layer.h"
#include "layers/describe.h"
#include "kernels/activation.h"

#include <cblas.h>
#include <string.h>

typedef struct connected {
    int outputs;
    int has_bias;
    gn_act act;
    gn_param *w, *b;
    float *init_w, *init_b;
} connected;

static int connected_parse(gn_layer *l, struct gn_cfg_section *s, gn_err *err)
{
    connected *c = calloc(1, sizeof *c);
    if (!c) return gn_err_set(err, GN_ENOMEM, "out of memory");
    l->impl = c;
    int rc;
    if ((rc = gn_cfg_int(s, "output", 1, 1, 1 << 24, &c->outputs, err))) return rc;
    if ((rc = gn_cfg_bool(s, "bias", 1, &c->has_bias, err))) return rc;
    if ((rc = layer_parse_act(s, GN_ACT_LINEAR, &c->act, err))) return rc;
    int bn;
    if ((rc = gn_cfg_bool(s, "batch_normalize", 0, &bn, err))) return rc;
    if (bn)
        return gn_cfg_error(gn_cfg_kv_find(s, "batch_normalize"), s, err, GN_ENOTSUP,
                            "batch norm inside [connected] is not supported; add a "
                            "[batchnorm] layer after it");
    /* Read now so an unknown-key check does not flag them; values are checked in plan. */
    gn_cfg_kv *kw = gn_cfg_kv_find(s, "init_weights"), *kb = gn_cfg_kv_find(s, "init_bias");
    if (kw) kw->used = 1;
    if (kb) kb->used = 1;
    return GN_OK;
}

static int connected_plan(gn_layer *l, gn_err *err)
{
    connected *c = l->impl;
    int k = (int)gn_shape_size(l->in[0]);
    l->out = (gn_shape){c->outputs, 1, 1};
    l->n_par = 0;
    l->n_params = l->n_state = 0;
    c->w = layer_add_param(l, "weight", 1, 2, c->outputs, k, 0, 0);
    c->b = c->has_bias ? layer_add_param(l, "bias", 1, 1, c->outputs, 0, 0, 0) : NULL;
    l->flops = 2.0 * k * c->outputs;
    l->flops_bwd = 2.0 * l->flops;
    int given, rc;
    free(c->init_w);
    free(c->init_b);
    c->init_w = c->init_b = NULL;
    if ((rc = layer_parse_init_list(l, l->sec, "init_weights", c->w->count, &c->init_w, &given,
                                    err)))
        return rc;
    if (c->b && (rc = layer_parse_init_list(l, l->sec, "init_bias", c->b->count, &c->init_b,
                                            &given, err)))
        return rc;
    return GN_OK;
}

static void connected_init(gn_layer *l, uint64_t seed)
{
    connected *c = l->impl;
    float *w = layer_param(l, c->w);
    if (c->init_w)
        memcpy(w, c->init_w, c->w->count * sizeof *w);
    else
        layer_init_uniform(w, c->w->count, layer_init_bound(c->w->shape[1], c->act), seed,
                           l->index, 0);
    if (c->b) {
        float *b = layer_param(l, c->b);
        if (c->init_b)
            memcpy(b, c->init_b, c->b->count * sizeof *b);
        else
            memset(b, 0, c->b->count * sizeof *b);
    }
}

static void connected_forward(gn_layer *l, const gn_ctx *ctx)
{
    connected *c = l->impl;
    int n = ctx->batch, m = c->outputs, k = c->w->shape[1];
    const float *w = layer_param(l, c->w);
    if (c->b) {
        const float *b = layer_param(l, c->b);
        for (int i = 0; i < n; i++) memcpy(l->y + (size_t)i * m, b, (size_t)m * sizeof(float));
    }
    double t0 = ctx->prof ? gn_now() : 0;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, m, k, 1.0f, l->x[0], k, w, k,
                c->b ? 1.0f : 0.0f, l->y, m);
    if (ctx->prof) ctx->prof->gemm += gn_now() - t0;
    act_forward(l->y, (size_t)n * m, c->act);
}

static void connected_backward(gn_layer *l, const gn_ctx *ctx)
{
    connected *c = l->impl;
    int n = ctx->batch, m = c->outputs, k = c->w->shape[1];
    act_backward(l->dy, l->y, (size_t)n * m, c->act);
    double t0 = ctx->prof ? gn_now() : 0;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, k, n, 1.0f, l->dy, m, l->x[0], k,
                1.0f, layer_grad(l, c->w), k);
    if (ctx->prof) ctx->prof->gemm += gn_now() - t0;
    if (c->b) {
        float *db = layer_grad(l, c->b);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < m; j++) db[j] += l->dy[(size_t)i * m + j];
    }
    if (l->dx[0]) {
        t0 = ctx->prof ? gn_now() : 0;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, k, m, 1.0f, l->dy, m,
                    layer_param(l, c->w), k, 1.0f, l->dx[0], k);
        if (ctx->prof) ctx->prof->gemm += gn_now() - t0;
    }
}

static void connected_destroy(gn_layer *l)
{
    connected *c = l->impl;
    if (!c) return;
    free(c->init_w);
    free(c->init_b);
    free(c);
    l->impl = NULL;
}

static void connected_describe(const gn_layer *l, gn_layer_desc *d)
{
    const connected *c = l->impl;
    layer_desc_init(d);
    d->act = c->act;
}

const gn_layer_ops gn_connected_ops = {
    .section = "connected",
    .parse = connected_parse,
    .plan = connected_plan,
    .init = connected_init,
    .forward = connected_forward,
    .backward = connected_backward,
    .destroy = connected_destroy,
    .describe = connected_describe,
};
