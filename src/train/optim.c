/* The optimizer driver (gemmnet/optim.h): state buffers, and the step over the whole parameter
 * buffer or, folded into backward, over each layer's range as its gradients become final. The
 * arithmetic itself is the ops table's (optim_sgd.c). */
#include "gemmnet/gemmnet.h"
#include "gemmnet/optim.h"
#include "core/util.h"

#include <stdlib.h>

static const gn_optim_ops *ops_of(gn_optim_kind k)
{
    switch (k) {
    case GN_OPTIM_SGD: return &gn_optim_sgd_ops;
    }
    return NULL;
}

int gn_optim_create(gn_optim **out, gn_net *net, const gn_optim_opts *h, gn_err *err)
{
    *out = NULL;
    const gn_optim_ops *ops = ops_of(h->kind);
    if (!ops) return gn_err_set(err, GN_EINVAL, "unknown optimizer %d", (int)h->kind);
    gn_optim *o = calloc(1, sizeof *o);
    if (!o) return gn_err_set(err, GN_ENOMEM, "out of memory");
    o->ops = ops;
    o->net = net;
    o->h = *h;
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
    free(o);
    *po = NULL;
}

/* parameters [lo, o->hi) take the step in progress, layer by layer from the top, each with
 * its learning rate times lr_mult; a frozen layer's are left alone (fine-tuning: backward
 * skips such layers, so they have no gradients). Adjacent layers with the same settings go in
 * one call (all of them when nothing is frozen and every lr_mult is 1). */
static void step_range(gn_optim *o, size_t lo, int consume)
{
    const gn_net *net = o->net;
    size_t hi = o->hi;
    for (int i = net->n_layers - 1; i >= 0 && hi > lo;) {
        const gn_layer *l = &net->layers[i];
        size_t a = (size_t)(l->grads - net->grads);
        if (a >= hi || !l->n_params) {
            i--;
            continue;
        }
        /* extend down over layers with the same settings */
        int j = i - 1;
        while (j >= 0 && (!net->layers[j].n_params ||
                          (net->layers[j].frozen == l->frozen &&
                           net->layers[j].lr_mult == l->lr_mult))) {
            if (net->layers[j].n_params) a = (size_t)(net->layers[j].grads - net->grads);
            j--;
        }
        if (a < lo) a = lo;
        if (!l->frozen) o->ops->step(o, a, hi, o->lr * l->lr_mult, o->h.decay, consume);
        hi = a;
        i = j;
    }
    o->hi = lo < o->hi ? lo : o->hi;
}

void gn_optim_step(gn_optim *o, float lr)
{
    o->lr = lr;
    o->hi = o->net->n_params;
    step_range(o, 0, 0);
}

static void on_backward(void *user, int layer)
{
    gn_optim *o = user;
    step_range(o, (size_t)(o->net->layers[layer].grads - o->net->grads), 1);
}

void gn_optim_fused_begin(gn_optim *o, float lr, gn_ctx *ctx)
{
    o->lr = lr;
    o->hi = o->net->n_params;
    ctx->on_backward = on_backward;
    ctx->hook_user = o;
}

void gn_optim_fused_finish(gn_optim *o) { step_range(o, 0, 1); }
