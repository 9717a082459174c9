/* Evaluation over a validation split: loss, top-1, top-5, confusion matrix; optionally with
 * the mirrored image too (test-time augmentation). */
#include "gemmnet/gemmnet.h"
#include "gemmnet/data.h"
#include "gemmnet/train.h"
#include "core/util.h"

#include <string.h>

/* Mirrors the first n images of net->input left to right (every row of every channel). */
static void flip_input(gn_net *net, int n)
{
    const int W = net->in.w;
    const size_t rows = (size_t)n * (size_t)net->in.c * (size_t)net->in.h;
    for (size_t r = 0; r < rows; r++) {
        float *x = net->input + r * (size_t)W;
        for (int a = 0, b = W - 1; a < b; a++, b--) {
            float t = x[a];
            x[a] = x[b];
            x[b] = t;
        }
    }
}

double gn_eval_forward(gn_net *net, const gn_ctx *ctx, int tta, float *mean, const float **out)
{
    gn_ctx c = *ctx;
    double loss = gn_net_forward(net, &c);
    *out = gn_net_output(net);
    if (tta != GN_TTA_FLIP) return loss;
    const size_t nk = (size_t)ctx->batch * (size_t)net->n_classes;
    memcpy(mean, *out, nk * sizeof(float));
    flip_input(net, ctx->batch);
    loss = 0.5 * (loss + gn_net_forward(net, &c));
    const float *p = gn_net_output(net);
    for (size_t i = 0; i < nk; i++) mean[i] = 0.5f * (mean[i] + p[i]);
    *out = mean;
    return loss;
}

int gn_evaluate(gn_net *net, gn_loader *val, int want_confusion, int tta, gn_eval_result *r,
                gn_err *err)
{
    memset(r, 0, sizeof *r);
    int k = gn_loader_classes(val);
    int classify = k > 0;
    r->classes = k;
    r->top1 = r->top5 = classify ? 0 : -1;
    if (classify && k != net->n_classes)
        return gn_err_set(err, GN_ESHAPE, "the validation data has %d classes, the network "
                          "outputs %d", k, net->n_classes);
    if (classify && want_confusion) {
        r->confusion = gn_alloc((size_t)k * (size_t)k, sizeof(int64_t));
        if (!r->confusion) return gn_err_set(err, GN_ENOMEM, "out of memory");
    }
    /* the mean of the two views' outputs, batch x k */
    float *mean = NULL;
    if (classify && tta == GN_TTA_FLIP) {
        mean = gn_alloc((size_t)net->batch * (size_t)k, sizeof(float));
        if (!mean) return gn_err_set(err, GN_ENOMEM, "out of memory");
    }
    int rc = gn_loader_seek(val, 0, 0);
    if (rc) {
        gn_free(mean);
        return gn_err_set(err, rc, "cannot rewind the validation data");
    }
    double loss_sum = 0;
    int64_t hit1 = 0, hit5 = 0;
    for (;;) {
        int n = 0;
        rc = gn_loader_next(val, net->input, classify ? net->labels : NULL,
                            classify ? NULL : net->targets, &n, err);
        if (rc || n == 0) break;
        gn_ctx ctx = gn_net_ctx(net, 0);
        ctx.batch = n;
        ctx.loss_scale = 1.0f / (float)n;
        const float *p = NULL;
        loss_sum += gn_eval_forward(net, &ctx, mean ? tta : GN_TTA_NONE, mean, &p) * n;
        r->images += n;
        if (!classify) continue;
        for (int i = 0; i < n; i++) {
            const float *pi = p + (size_t)i * (size_t)k;
            int label = net->labels[i];
            if (label < 0 || label >= k) continue;
            /* rank of the true class: how many classes score higher (ties: lower index first) */
            int above = 0, best = 0;
            for (int j = 0; j < k; j++) {
                if (pi[j] > pi[label] || (pi[j] == pi[label] && j < label)) above++;
                if (pi[j] > pi[best]) best = j;
            }
            hit1 += above == 0;
            hit5 += above < 5;
            if (r->confusion) r->confusion[(size_t)label * (size_t)k + (size_t)best]++;
        }
    }
    gn_free(mean);
    if (rc) return rc;
    if (r->images) {
        r->loss = loss_sum / (double)r->images;
        if (classify) {
            r->top1 = (double)hit1 / (double)r->images;
            r->top5 = (double)hit5 / (double)r->images;
        }
    }
    return GN_OK;
}

void gn_eval_result_free(gn_eval_result *r)
{
    gn_free(r->confusion);
    r->confusion = NULL;
}
