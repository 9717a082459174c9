/* SGD with momentum (and Nesterov), as PyTorch writes it:
 *   g = dw + decay*w;  v = momentum*v + g;  w -= lr * (nesterov ? g + momentum*v : v)
 * The optimizer table's step, and the older gn_sgd_step / gn_sgd_fused calls (gemmnet bench). */
#include "gemmnet/optim.h"
#include "gemmnet/train.h"
#include "gemmnet/net.h"
#include "core/util.h"

/* The step on [0, n), and with consume the gradients zeroed as they are read: a plain loop
 * that GCC turns into vector code (the condition is the same for every i).
 * w, v, dw: (n) */
static void sgd_range(float *restrict w, float *restrict v, float *restrict dw, size_t n,
                      float lr, float momentum, float decay, int nesterov, int consume)
{
    for (size_t i = 0; i < n; i++) {
        float g = dw[i] + decay * w[i];
        float vi = momentum * v[i] + g;
        v[i] = vi;
        w[i] -= lr * (nesterov ? g + momentum * vi : vi);
        if (consume) dw[i] = 0.0f;
    }
}

typedef struct sgd_args {
    float *w, *v, *dw;
    float lr, momentum, decay;
    int nesterov, consume;
} sgd_args;

static void sgd_slice(void *arg, size_t a, size_t b)
{
    const sgd_args *g = arg;
    sgd_range(g->w + a, g->v + a, g->dw + a, b - a, g->lr, g->momentum, g->decay, g->nesterov,
              g->consume);
}

/* ... cut into one contiguous slice per thread when n is large */
static void sgd(float *w, float *v, float *dw, size_t n, float lr, float momentum, float decay,
                int nesterov, int consume)
{
    sgd_args g = {w, v, dw, lr, momentum, decay, nesterov, consume};
    gn_parallel_slices(n, (size_t)1 << 16, sgd_slice, &g);
}

static void sgd_step(const gn_optim *o, size_t lo, size_t hi, float lr, float decay, int consume)
{
    sgd(o->net->params + lo, o->state[0] + lo, o->net->grads + lo, hi - lo, lr, o->h.momentum,
        decay, o->h.nesterov, consume);
}

const gn_optim_ops gn_optim_sgd_ops = {
    .name = "sgd",
    .n_state = 1,
    .state_names = {"momentum"},
    .step = sgd_step,
};

/* ---- the standalone calls ---- */

void gn_sgd_step(float *restrict w, float *restrict v, const float *restrict dw, size_t n,
                 float lr, float momentum, float decay, int nesterov)
{
    sgd(w, v, (float *)dw, n, lr, momentum, decay, nesterov, 0);
}

void gn_sgd_fused_begin(gn_sgd_fused *s, gn_net *net, float *velocity, float lr, float momentum,
                        float decay, int nesterov, gn_ctx *ctx)
{
    *s = (gn_sgd_fused){.net = net, .velocity = velocity, .lr = lr, .momentum = momentum,
                        .decay = decay, .nesterov = nesterov, .hi = net->n_params};
    ctx->on_backward = gn_sgd_on_backward;
    ctx->hook_user = s;
}

/* parameters [lo, s->hi): their step, gradients zeroed, layer by layer from the top: each
 * with its own learning rate (lr * lr_mult), a frozen layer's left alone (it has no
 * gradients: backward skips it, see gn_net_backward_from) */
static void fused_range(gn_sgd_fused *s, size_t lo)
{
    gn_net *net = s->net;
    for (int i = net->n_layers - 1; i >= 0 && s->hi > lo; i--) {
        const gn_layer *l = &net->layers[i];
        size_t a = (size_t)(l->grads - net->grads), b = GN_MIN(a + l->n_params, s->hi);
        if (b <= a || a < lo) continue;
        if (!l->frozen)
            sgd(net->params + a, s->velocity + a, net->grads + a, b - a, s->lr * l->lr_mult,
                s->momentum, s->decay, s->nesterov, 1);
        s->hi = a;
    }
    s->hi = GN_MIN(s->hi, lo);
}

void gn_sgd_on_backward(void *user, int layer)
{
    gn_sgd_fused *s = user;
    fused_range(s, (size_t)(s->net->layers[layer].grads - s->net->grads));
}

void gn_sgd_fused_finish(gn_sgd_fused *s) { fused_range(s, 0); }
