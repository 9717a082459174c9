/* [shortcut]: a residual connection, darknet's semantics. Inputs: x0 = the previous layer
 * (in_idx[0]), x1 = the layer named by `from` (in_idx[1]). The output has x0's shape.
 *
 * Same shapes: y = act(alpha*x0 + beta*x1).
 * Different shapes (darknet's shortcut_cpu): per axis, stride = W1/W0 and sample = W0/W1 (each
 * at least 1; H likewise), and for k < min(C0,C1), j < min(H0,H1), i < min(W0,W1):
 *   t = x0[k, j*sample_h, i*sample_w]
 *   y[k, j*sample_h, i*sample_w] = alpha*t + beta*x1[k, j*stride_h, i*stride_w]
 * and every other position of y is x0 unchanged (alpha does not apply there), then act.
 * Backward routes the gradient along the same mapping.
 * Keys: from (required; negative is relative), activation (default linear), alpha, beta
 * (default 1). FLOPs per image: 3 per mapped element (two multiplies, one add) forward and
 * backward, plus one per output for a non-linear activation. */
#include "layers/layer.h"
#include "layers/describe.h"
#include "kernels/activation.h"

#include <string.h>

typedef struct shortcut {
    gn_act act;
    float alpha, beta;
    int stride_h, stride_w, sample_h, sample_w;
    int minc, minh, minw;
} shortcut;

static int shortcut_parse(gn_layer *l, struct gn_cfg_section *s, gn_err *err)
{
    shortcut *sc = calloc(1, sizeof *sc);
    if (!sc) return gn_err_set(err, GN_ENOMEM, "out of memory");
    l->impl = sc;
    int rc, from, target;
    double alpha, beta;
    if (!gn_cfg_has(s, "from"))
        return gn_cfg_error(NULL, s, err, GN_ECONFIG, "missing key 'from' (the layer to add)");
    if ((rc = gn_cfg_int(s, "from", 0, -(1 << 20), 1 << 20, &from, err))) return rc;
    if ((rc = layer_resolve_index(l, s, "from", from, &target, err))) return rc;
    if ((rc = layer_parse_act(s, GN_ACT_LINEAR, &sc->act, err))) return rc;
    if ((rc = gn_cfg_float(s, "alpha", 1.0, -1e6, 1e6, &alpha, err))) return rc;
    if ((rc = gn_cfg_float(s, "beta", 1.0, -1e6, 1e6, &beta, err))) return rc;
    sc->alpha = (float)alpha;
    sc->beta = (float)beta;
    l->n_in = 2;
    l->in_idx[0] = l->index - 1;
    l->in_idx[1] = target;
    return GN_OK;
}

static int shortcut_plan(gn_layer *l, gn_err *err)
{
    shortcut *sc = l->impl;
    gn_shape a = l->in[0], b = l->in[1];
    l->out = a;
    sc->stride_w = GN_MAX(b.w / a.w, 1);
    sc->stride_h = GN_MAX(b.h / a.h, 1);
    sc->sample_w = GN_MAX(a.w / b.w, 1);
    sc->sample_h = GN_MAX(a.h / b.h, 1);
    sc->minc = GN_MIN(a.c, b.c);
    sc->minh = GN_MIN(a.h, b.h);
    sc->minw = GN_MIN(a.w, b.w);
    double mapped = (double)sc->minc * sc->minh * sc->minw;
    l->flops = 3.0 * mapped + (sc->act != GN_ACT_LINEAR ? (double)gn_shape_size(a) : 0.0);
    l->flops_bwd = l->flops;
    l->bwd_ignores_x = 1; /* backward needs dy and its own y (the activation) only */
    (void)err;
    return GN_OK;
}

/* Index of mapped element (k, j, i) in x0/y and in x1 for one image. */
static inline size_t sc_out_index(const shortcut *sc, gn_shape a, int k, int j, int i)
{
    return ((size_t)k * a.h + (size_t)j * sc->sample_h) * a.w + (size_t)i * sc->sample_w;
}
static inline size_t sc_add_index(const shortcut *sc, gn_shape b, int k, int j, int i)
{
    return ((size_t)k * b.h + (size_t)j * sc->stride_h) * b.w + (size_t)i * sc->stride_w;
}

static void shortcut_forward(gn_layer *l, const gn_ctx *ctx)
{
    shortcut *sc = l->impl;
    gn_shape a = l->in[0], b = l->in[1];
    size_t da = gn_shape_size(a), db = gn_shape_size(b);
    int n = ctx->batch;
    if (da == db && a.c == b.c && a.h == b.h) {
        const float *x0 = l->x[0], *x1 = l->x[1];
        float al = sc->alpha, be = sc->beta;
        size_t total = (size_t)n * da;
#pragma omp parallel for schedule(static) if (total > 65536)
        for (size_t i = 0; i < total; i++) l->y[i] = al * x0[i] + be * x1[i];
    } else {
        memcpy(l->y, l->x[0], (size_t)n * da * sizeof(float));
#pragma omp parallel for schedule(static) if ((size_t)n * da > 65536)
        for (int m = 0; m < n; m++) {
            float *y = l->y + (size_t)m * da;
            const float *x1 = l->x[1] + (size_t)m * db;
            for (int k = 0; k < sc->minc; k++)
                for (int j = 0; j < sc->minh; j++)
                    for (int i = 0; i < sc->minw; i++) {
                        size_t o = sc_out_index(sc, a, k, j, i);
                        y[o] = sc->alpha * y[o] + sc->beta * x1[sc_add_index(sc, b, k, j, i)];
                    }
        }
    }
    act_forward(l->y, (size_t)n * da, sc->act);
}

static void shortcut_backward(gn_layer *l, const gn_ctx *ctx)
{
    shortcut *sc = l->impl;
    gn_shape a = l->in[0], b = l->in[1];
    size_t da = gn_shape_size(a), db = gn_shape_size(b);
    int n = ctx->batch;
    act_backward(l->dy, l->y, (size_t)n * da, sc->act);
    const float *dy = l->dy;
    size_t total = (size_t)n * da;
    int same = da == db && a.c == b.c && a.h == b.h;
    /* dx[0] and dx[1] may be the same buffer (from=-1): two separate passes, each parallel
     * over disjoint elements (or images). */
    if (l->dx[0]) {
        float *dx0 = l->dx[0];
        float al = sc->alpha;
        if (al == 1.0f) {
#pragma omp parallel for simd schedule(static) if (total > 65536)
            for (size_t i = 0; i < total; i++) dx0[i] += dy[i];
        } else if (same) {
#pragma omp parallel for simd schedule(static) if (total > 65536)
            for (size_t i = 0; i < total; i++) dx0[i] += al * dy[i];
        } else {
            /* alpha applies to mapped positions only: add dy everywhere, then the rest. */
            for (size_t i = 0; i < (size_t)n * da; i++) dx0[i] += dy[i];
            for (int m = 0; m < n; m++)
                for (int k = 0; k < sc->minc; k++)
                    for (int j = 0; j < sc->minh; j++)
                        for (int i = 0; i < sc->minw; i++) {
                            size_t o = (size_t)m * da + sc_out_index(sc, a, k, j, i);
                            dx0[o] += (sc->alpha - 1.0f) * dy[o];
                        }
        }
    }
    if (l->dx[1] && same) {
        float *dx1 = l->dx[1];
        float be = sc->beta;
#pragma omp parallel for simd schedule(static) if (total > 65536)
        for (size_t i = 0; i < total; i++) dx1[i] += be * dy[i];
    } else if (l->dx[1]) {
        float *dx1 = l->dx[1];
#pragma omp parallel for schedule(static) if (total > 65536)
        for (int m = 0; m < n; m++)
            for (int k = 0; k < sc->minc; k++)
                for (int j = 0; j < sc->minh; j++)
                    for (int i = 0; i < sc->minw; i++)
                        dx1[(size_t)m * db + sc_add_index(sc, b, k, j, i)] +=
                            sc->beta * dy[(size_t)m * da + sc_out_index(sc, a, k, j, i)];
    }
}

static void shortcut_destroy(gn_layer *l)
{
    free(l->impl);
    l->impl = NULL;
}

static void shortcut_describe(const gn_layer *l, gn_layer_desc *d)
{
    const shortcut *sc = l->impl;
    layer_desc_init(d);
    d->act = sc->act;
    d->alpha = sc->alpha;
    d->beta = sc->beta;
}

const gn_layer_ops gn_shortcut_ops = {
    .section = "shortcut",
    .parse = shortcut_parse,
    .plan = shortcut_plan,
    .forward = shortcut_forward,
    .backward = shortcut_backward,
    .destroy = shortcut_destroy,
    .describe = shortcut_describe,
};
