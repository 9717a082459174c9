/* The optimizer driver (gemmnet/optim.h): state buffers, parameter groups (lr_mult, weight
 * decay per kind of tensor, frozen layers), and the step over the whole parameter buffer or,
 * folded into backward, over each layer's range as its gradients become final; gradient
 * clipping by global norm. The arithmetic itself is the ops table's (optim_sgd.c,
 * optim_adamw.c). */
#include "gemmnet/gemmnet.h"
#include "gemmnet/optim.h"
#include "core/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const gn_optim_ops *ops_of(const gn_optim_opts *h)
{
    switch (h->kind) {
    case GN_OPTIM_SGD: return &gn_optim_sgd_ops;
    case GN_OPTIM_ADAMW: return h->amsgrad ? &gn_optim_amsgrad_ops : &gn_optim_adamw_ops;
    }
    return NULL;
}

/* "bias" and "bn.bias" are biases; other "bn." tensors are batch norm's weights. */
static float decay_of(const gn_optim_opts *h, const char *name)
{
    size_t n = strlen(name);
    if (!strcmp(name, "bias") || (n > 5 && !strcmp(name + n - 5, ".bias"))) return h->bias_decay;
    if (!strncmp(name, "bn.", 3)) return h->norm_decay;
    return h->decay;
}

static int cmp_group(const void *a, const void *b)
{
    const gn_optim_group *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* One group per trainable tensor, sorted, then neighbours with the same settings merged. */
static int make_groups(gn_optim *o)
{
    gn_net *net = o->net;
    int n = 0;
    for (int i = 0; i < net->n_layers; i++)
        for (int j = 0; j < net->layers[i].n_par; j++) n += net->layers[i].par[j].trainable;
    o->groups = calloc((size_t)(n ? n : 1), sizeof *o->groups);
    if (!o->groups) return GN_ENOMEM;
    int k = 0;
    for (int i = 0; i < net->n_layers; i++) {
        const gn_layer *l = &net->layers[i];
        for (int j = 0; j < l->n_par; j++) {
            const gn_param *p = &l->par[j];
            if (!p->trainable) continue;
            size_t lo = (size_t)(l->params - net->params) + p->offset;
            o->groups[k++] = (gn_optim_group){lo, lo + p->count, l->lr_mult,
                                              decay_of(&o->h, p->name), l->frozen != 0};
        }
    }
    qsort(o->groups, (size_t)k, sizeof *o->groups, cmp_group);
    int m = 0;
    for (int i = 0; i < k; i++) {
        gn_optim_group *g = &o->groups[i];
        if (m && o->groups[m - 1].hi == g->lo && o->groups[m - 1].lr_mult == g->lr_mult &&
            o->groups[m - 1].decay == g->decay && o->groups[m - 1].frozen == g->frozen)
            o->groups[m - 1].hi = g->hi;
        else
            o->groups[m++] = *g;
    }
    o->n_groups = m;
    return GN_OK;
}

int gn_optim_create(gn_optim **out, gn_net *net, const gn_optim_opts *h, gn_err *err)
{
    *out = NULL;
    const gn_optim_ops *ops = ops_of(h);
    if (!ops) return gn_err_set(err, GN_EINVAL, "unknown optimizer %d", (int)h->kind);
    gn_optim *o = calloc(1, sizeof *o);
    if (!o) return gn_err_set(err, GN_ENOMEM, "out of memory");
    o->ops = ops;
    o->net = net;
    o->h = *h;
    if (make_groups(o)) {
        gn_optim_free(&o);
        return gn_err_set(err, GN_ENOMEM, "out of memory");
    }
    for (int i = 0; i < ops->n_state; i++)
        if (!(o->state[i] = gn_alloc(net->n_params ? net->n_params : 1, sizeof(float)))) {
            gn_optim_free(&o);
            return gn_err_set(err, GN_ENOMEM, "out of memory for the optimizer's %s",
                              ops->state_names[i]);
        }
    *out = o;
    return GN_OK;
}

void gn_optim_free(gn_optim **po)
{
    gn_optim *o = *po;
    if (!o) return;
    for (int i = 0; i < GN_OPTIM_MAX_STATE; i++) gn_free(o->state[i]);
    free(o->groups);
    free(o);
    *po = NULL;
}

/* parameters [lo, o->hi) take the step in progress, group by group */
static void step_range(gn_optim *o, size_t lo, int consume)
{
    if (lo >= o->hi) return;
    for (int i = 0; i < o->n_groups; i++) {
        const gn_optim_group *g = &o->groups[i];
        size_t a = g->lo > lo ? g->lo : lo, b = g->hi < o->hi ? g->hi : o->hi;
        if (a >= b) continue;
        if (g->frozen) {
            if (consume) memset(o->net->grads + a, 0, (b - a) * sizeof(float));
            continue;
        }
        o->ops->step(o, a, b, o->lr * g->lr_mult, g->decay, consume);
    }
    o->hi = lo;
}

static void begin(gn_optim *o, float lr)
{
    o->lr = lr;
    o->hi = o->net->n_params;
    o->steps++;
    o->bc1 = 1.0 - pow(o->h.beta1, (double)o->steps);
    o->bc2_sqrt = sqrt(1.0 - pow(o->h.beta2, (double)o->steps));
}

void gn_optim_step(gn_optim *o, float lr)
{
    begin(o, lr);
    step_range(o, 0, 0);
}

static void on_backward(void *user, int layer)
{
    gn_optim *o = user;
    step_range(o, (size_t)(o->net->layers[layer].grads - o->net->grads), 1);
}

void gn_optim_fused_begin(gn_optim *o, float lr, gn_ctx *ctx)
{
    begin(o, lr);
    ctx->on_backward = on_backward;
    ctx->hook_user = o;
}

void gn_optim_fused_finish(gn_optim *o) { step_range(o, 0, 1); }

/* ---- clipping ---- */

/* sum of x[i]^2 in double; x: (n) */
static double sumsq(const float *restrict x, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)x[i] * (double)x[i];
    return s;
}

/* x[i] *= c; x: (n) */
static void scale(float *restrict x, size_t n, float c)
{
    for (size_t i = 0; i < n; i++) x[i] *= c;
}

/* Blocks of a fixed size, summed in order: the same bits for any thread count. */
#define CLIP_BLOCK ((size_t)1 << 16)

double gn_optim_clip_grad_norm(gn_optim *o, double max_norm)
{
    double total = 0;
    float *g = o->net->grads;
    for (int i = 0; i < o->n_groups; i++) {
        const gn_optim_group *gr = &o->groups[i];
        if (gr->frozen) continue;
        size_t n = gr->hi - gr->lo, nb = (n + CLIP_BLOCK - 1) / CLIP_BLOCK;
        double part[64];
        /* at most 64 blocks at once, so the partial sums need no allocation */
        for (size_t b0 = 0; b0 < nb; b0 += 64) {
            long cnt = (long)(nb - b0 < 64 ? nb - b0 : 64);
#pragma omp parallel for schedule(static) if (cnt > 1)
            for (long b = 0; b < cnt; b++) {
                size_t a = gr->lo + (b0 + (size_t)b) * CLIP_BLOCK;
                size_t e = a + CLIP_BLOCK < gr->hi ? a + CLIP_BLOCK : gr->hi;
                part[b] = sumsq(g + a, e - a);
            }
            for (long b = 0; b < cnt; b++) total += part[b];
        }
    }
    double norm = sqrt(total);
    float coef = (float)(max_norm / (norm + 1e-6));
    if (coef < 1.0f)
        for (int i = 0; i < o->n_groups; i++) {
            const gn_optim_group *gr = &o->groups[i];
            if (!gr->frozen) scale(g + gr->lo, gr->hi - gr->lo, coef);
        }
    return norm;
}
