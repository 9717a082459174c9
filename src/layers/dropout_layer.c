/* [dropout]: inverted dropout. x:(N,D) -> y:(N,D).
 *
 * Training: y = x * m / (1 - p) with m = 0 with probability p, else 1. Evaluation: y = x.
 * Key: probability = p (default 0.5, 0 <= p < 1).
 * The mask is a pure function of (ctx->seed, ctx->step, layer index, element index n*D + j), so
 * it does not depend on threads; backward recomputes it instead of keeping it (no memory), which
 * needs the same ctx (seed, step, train) in forward and backward.
 * FLOPs per image: D forward (one multiply per element), D backward; evaluation is a copy. */
#include "layers/layer.h"
#include "core/rng.h"

#include <string.h>

typedef struct dropout {
    double p;
    uint64_t threshold; /* drop when the element's 53-bit draw is below this */
    float scale;        /* 1 / (1 - p) */
} dropout;

static int dropout_parse(gn_layer *l, struct gn_cfg_section *s, gn_err *err)
{
    dropout *d = calloc(1, sizeof *d);
    if (!d) return gn_err_set(err, GN_ENOMEM, "out of memory");
    l->impl = d;
    int rc;
    if ((rc = gn_cfg_float(s, "probability", 0.5, 0.0, 1.0, &d->p, err))) return rc;
    if (d->p >= 1.0)
        return gn_cfg_error(gn_cfg_kv_find(s, "probability"), s, err, GN_ECONFIG,
                            "must be below 1 (1 would drop everything)");
    d->threshold = (uint64_t)(d->p * 0x1.0p53);
    d->scale = (float)(1.0 / (1.0 - d->p));
    return GN_OK;
}

static int dropout_plan(gn_layer *l, gn_err *err)
{
    (void)err;
    l->out = l->in[0];
    l->flops = (double)gn_shape_size(l->out);
    l->flops_bwd = l->flops;
    return GN_OK;
}

/* Element i's draw: the i-th output of a splitmix64 sequence started at key, computed
 * directly so that any thread can compute any element. */
static inline int dropout_keep(uint64_t base, size_t i, uint64_t threshold)
{
    return (gn_mix64(base + (uint64_t)i * 0x9e3779b97f4a7c15ull) >> 11) >= threshold;
}

static uint64_t dropout_base(const gn_layer *l, const gn_ctx *ctx)
{
    return gn_mix64(gn_rng_key(ctx->seed, ctx->step, (uint64_t)l->index));
}

// x:(n) -> y:(n), y = keep(i) ? x*scale : 0
static void dropout_apply(float *restrict y, const float *restrict x, size_t n, uint64_t base,
                          uint64_t threshold, float scale)
{
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) y[i] = dropout_keep(base, i, threshold) ? x[i] * scale : 0.0f;
}

// dy:(n) -> dx:(n) +=
static void dropout_apply_back(float *restrict dx, const float *restrict dy, size_t n,
                               uint64_t base, uint64_t threshold, float scale)
{
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++)
        if (dropout_keep(base, i, threshold)) dx[i] += dy[i] * scale;
}

static void dropout_forward(gn_layer *l, const gn_ctx *ctx)
{
    dropout *d = l->impl;
    size_t n = (size_t)ctx->batch * gn_shape_size(l->out);
    if (!ctx->train || d->p == 0) {
        memcpy(l->y, l->x[0], n * sizeof(float));
        return;
    }
    dropout_apply(l->y, l->x[0], n, dropout_base(l, ctx), d->threshold, d->scale);
}

static void dropout_backward(gn_layer *l, const gn_ctx *ctx)
{
    dropout *d = l->impl;
    if (!l->dx[0]) return;
    size_t n = (size_t)ctx->batch * gn_shape_size(l->out);
    if (!ctx->train || d->p == 0) {
        for (size_t i = 0; i < n; i++) l->dx[0][i] += l->dy[i];
        return;
    }
    dropout_apply_back(l->dx[0], l->dy, n, dropout_base(l, ctx), d->threshold, d->scale);
}

static void dropout_destroy(gn_layer *l)
{
    free(l->impl);
    l->impl = NULL;
}

const gn_layer_ops gn_dropout_ops = {
    .section = "dropout",
    .parse = dropout_parse,
    .plan = dropout_plan,
    .forward = dropout_forward,
    .backward = dropout_backward,
    .destroy = dropout_destroy,
};
