/* [softmax]: softmax and the classification loss (cross-entropy), darknet's layer with
 * PyTorch's loss semantics. x:(N,D) -> y:(N,D), D = C*H*W of the input.
 *
 * Keys: groups (default 1; g splits each image's D values into g equal contiguous slices,
 * each normalized on its own, darknet style), temperature T (default 1): y = softmax(x / T).
 *
 * Loss (when the net gives labels): loss = mean over counted images of -log y[label],
 * computed as a log-sum-exp in double. A label < 0 means "ignore this image" (PyTorch's
 * ignore_index); a label >= D is bad data: the image is ignored too and counted in
 * softmax_bad_labels() (softmax_layer.h). With groups > 1 the label indexes the flat D outputs
 * and the loss reads the slice that contains it.
 * Backward: dx += g * (y - onehot(label)) / T over the label's slice for counted images, with
 * g = ctx->loss_scale * batch / counted: equal to loss_scale (1/batch by default) when no label
 * is ignored, and otherwise rescaled so the gradient is that of the mean over counted images
 * (keeping any extra factor the trainer put in loss_scale). Plus the gradient arriving in
 * l->dy through the softmax Jacobian, dx += y * (dy - sum(y*dy)) / T per slice, so a softmax
 * in the middle of a net is also correct.
 *
 * Soft targets and label smoothing (docs/recipes.md; set per call in gn_ctx by the trainer):
 * with ctx->soft_targets the loss reads l->targets (batch x D, each row a distribution, as
 * mixup and cutmix make them) instead of labels: loss = mean over images of
 * -sum_j t_j log y_j, every image counted, and dx = g * (y * m - t) / T per slice, m the
 * target's mass in the slice (1 for a distribution), so the gradient is exact for any t.
 * ctx->label_smoothing e replaces the target of each slice by (1 - e) t + e m / gs: for a hard
 * label that is PyTorch's CrossEntropyLoss(label_smoothing=e) (ignored images stay out), and for
 * a mixed target it equals timm's mixup target built from smoothed one-hot vectors, since both
 * are linear in t. Evaluation leaves both off.
 * FLOPs per image: 5 per element forward (max, subtract, exp, sum, divide), 4 backward. */
#include "layers/layer.h"
#include "layers/describe.h"
#include "layers/softmax_layer.h"

#include <math.h>

typedef struct softmax {
    int groups;
    double temperature;
    int counted, bad;
} softmax;

extern const gn_layer_ops gn_softmax_ops;

static int softmax_parse(gn_layer *l, struct gn_cfg_section *s, gn_err *err)
{
    softmax *sm = calloc(1, sizeof *sm);
    if (!sm) return gn_err_set(err, GN_ENOMEM, "out of memory");
    l->impl = sm;
    l->is_loss = 1;
    int rc;
    if ((rc = gn_cfg_int(s, "groups", 1, 1, 1 << 28, &sm->groups, err))) return rc;
    if ((rc = gn_cfg_float(s, "temperature", 1.0, 1e-6, 1e6, &sm->temperature, err))) return rc;
    return GN_OK;
}

static int softmax_plan(gn_layer *l, gn_err *err)
{
    softmax *sm = l->impl;
    size_t d = gn_shape_size(l->in[0]);
    if (d % (size_t)sm->groups)
        return gn_cfg_error(gn_cfg_kv_find(l->sec, "groups"), l->sec, err, GN_ESHAPE,
                            "%d groups do not divide the input's %zu values (%dx%dx%d)",
                            sm->groups, d, l->in[0].c, l->in[0].h, l->in[0].w);
    l->out = l->in[0];
    l->flops = 5.0 * (double)d;
    l->flops_bwd = 4.0 * (double)d;
    return GN_OK;
}

// x:(n) -> y:(n), y = softmax(x / t), the sum in double
static void softmax_slice(float *restrict y, const float *restrict x, int n, float inv_t)
{
    float m = x[0];
    for (int j = 1; j < n; j++) m = x[j] > m ? x[j] : m;
    double sum = 0;
    for (int j = 0; j < n; j++) {
        y[j] = expf((x[j] - m) * inv_t);
        sum += y[j];
    }
    float inv = (float)(1.0 / sum);
    for (int j = 0; j < n; j++) y[j] *= inv;
}

// log sum_j exp(x_j / t), x:(n), in double: -log softmax(x / t)_j = lse - x_j / t
static double softmax_lse(const float *x, int n, double t)
{
    double m = x[0];
    for (int j = 1; j < n; j++) m = x[j] > m ? x[j] : m;
    double sum = 0;
    for (int j = 0; j < n; j++) sum += exp(((double)x[j] - m) / t);
    return log(sum) + m / t;
}

// -sum_j t'_j log softmax(x / t)_j, x:(n) tg:(n), t' = (1 - e) tg + e * sum(tg) / n
static double softmax_xent_soft(const float *x, const float *tg, int n, double t, double e)
{
    double lse = softmax_lse(x, n, t), mass = 0, sum = 0;
    for (int j = 0; j < n; j++) mass += tg[j];
    for (int j = 0; j < n; j++)
        sum += ((1 - e) * tg[j] + e * mass / n) * (lse - (double)x[j] / t);
    return sum;
}

// -sum_j t'_j log softmax(x / t)_j, x:(n), t' = (1 - e) onehot(label) + e / n
static double softmax_xent_label(const float *x, int n, int label, double t, double e)
{
    double lse = softmax_lse(x, n, t), mean = 0;
    if (e == 0) return lse - (double)x[label] / t;
    for (int j = 0; j < n; j++) mean += lse - (double)x[j] / t;
    return (1 - e) * (lse - (double)x[label] / t) + e * mean / n;
}

static void softmax_forward(gn_layer *l, const gn_ctx *ctx)
{
    softmax *sm = l->impl;
    int d = (int)gn_shape_size(l->out), gs = d / sm->groups;
    ptrdiff_t slices = (ptrdiff_t)ctx->batch * sm->groups;
    float inv_t = (float)(1.0 / sm->temperature);
    double e = ctx->label_smoothing;
#pragma omp parallel for schedule(static) if (slices * gs > 65536)
    for (ptrdiff_t s = 0; s < slices; s++)
        softmax_slice(l->y + s * gs, l->x[0] + s * gs, gs, inv_t);
    l->loss = 0;
    sm->counted = sm->bad = 0;
    double sum = 0;
    if (ctx->soft_targets && l->targets) {
        for (ptrdiff_t s = 0; s < slices; s++)
            sum += softmax_xent_soft(l->x[0] + s * gs, l->targets + s * gs, gs, sm->temperature, e);
        sm->counted = ctx->batch;
        l->loss = ctx->batch ? sum / ctx->batch : 0;
        return;
    }
    if (!l->labels) return;
    for (int i = 0; i < ctx->batch; i++) {
        int lab = l->labels[i];
        if (lab < 0) continue;
        if (lab >= d) {
            sm->bad++;
            continue;
        }
        int g0 = lab / gs * gs;
        sum += softmax_xent_label(l->x[0] + (size_t)i * d + g0, gs, lab - g0, sm->temperature, e);
        sm->counted++;
    }
    if (sm->counted) l->loss = sum / sm->counted;
}

static void softmax_backward(gn_layer *l, const gn_ctx *ctx)
{
    softmax *sm = l->impl;
    if (!l->dx[0]) return;
    int d = (int)gn_shape_size(l->out), gs = d / sm->groups;
    ptrdiff_t slices = (ptrdiff_t)ctx->batch * sm->groups;
    float inv_t = (float)(1.0 / sm->temperature);
    /* Through the Jacobian: dx = y * (dy - <y, dy>) / T per slice. */
#pragma omp parallel for schedule(static) if (slices * gs > 65536)
    for (ptrdiff_t s = 0; s < slices; s++) {
        const float *y = l->y + s * gs, *dy = l->dy + s * gs;
        float *dx = l->dx[0] + s * gs;
        double dot = 0;
        for (int j = 0; j < gs; j++) dot += (double)y[j] * dy[j];
        for (int j = 0; j < gs; j++) dx[j] += y[j] * (dy[j] - (float)dot) * inv_t;
    }
    int soft = ctx->soft_targets && l->targets;
    if ((!soft && !l->labels) || !sm->counted) return;
    float g = (float)((double)ctx->loss_scale * ctx->batch / sm->counted / sm->temperature);
    float e = ctx->label_smoothing;
    if (soft) {
        /* dx = g (y m - t'), t' = (1 - e) t + e m / gs, m = sum of t over the slice */
        for (ptrdiff_t s = 0; s < slices; s++) {
            const float *y = l->y + s * gs, *tg = l->targets + s * gs;
            float *dx = l->dx[0] + s * gs;
            double mass = 0;
            for (int j = 0; j < gs; j++) mass += tg[j];
            float m = (float)mass, off = e * m / (float)gs;
            for (int j = 0; j < gs; j++) dx[j] += g * (y[j] * m - ((1 - e) * tg[j] + off));
        }
        return;
    }
    for (int i = 0; i < ctx->batch; i++) {
        int lab = l->labels[i];
        if (lab < 0 || lab >= d) continue;
        int g0 = lab / gs * gs;
        const float *y = l->y + (size_t)i * d + g0;
        float *dx = l->dx[0] + (size_t)i * d + g0;
        float off = e / (float)gs;
        for (int j = 0; j < gs; j++) dx[j] += g * (y[j] - off);
        dx[lab - g0] -= g * (1 - e);
    }
}

static void softmax_destroy(gn_layer *l)
{
    free(l->impl);
    l->impl = NULL;
}

int softmax_bad_labels(const gn_layer *l)
{
    return l->ops == &gn_softmax_ops ? ((const softmax *)l->impl)->bad : 0;
}

int softmax_counted(const gn_layer *l)
{
    return l->ops == &gn_softmax_ops ? ((const softmax *)l->impl)->counted : 0;
}

static void softmax_describe(const gn_layer *l, gn_layer_desc *d)
{
    const softmax *sm = l->impl;
    layer_desc_init(d);
    d->groups = sm->groups;
    d->temperature = sm->temperature;
}

const gn_layer_ops gn_softmax_ops = {
    .section = "softmax",
    .parse = softmax_parse,
    .plan = softmax_plan,
    .forward = softmax_forward,
    .backward = softmax_backward,
    .destroy = softmax_destroy,
    .describe = softmax_describe,
};
