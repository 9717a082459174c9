/* Learning-rate schedules (darknet's policies and meaning, plus cosine) and the SGD step. */
#include "gemmnet/train.h"
#include "gemmnet/net.h"
#include "core/rng.h"
#include "core/util.h"

#include <math.h>

double gn_schedule_lr(const gn_schedule *s, int64_t iter)
{
    if (iter < 0) iter = 0;
    if (s->burn_in > 0 && iter < s->burn_in)
        return s->lr * pow((double)iter / (double)s->burn_in, s->power);
    double t = (double)iter;
    switch (s->policy) {
    case GN_POLICY_CONSTANT: return s->lr;
    case GN_POLICY_STEP: return s->lr * pow(s->scale, (double)(iter / (s->step > 0 ? s->step : 1)));
    case GN_POLICY_STEPS: {
        double lr = s->lr;
        for (int i = 0; i < s->n_steps; i++) {
            if (s->steps[i] > iter) break;
            lr *= s->scales[i];
        }
        return lr;
    }
    case GN_POLICY_EXP: return s->lr * pow(s->gamma, t);
    case GN_POLICY_POLY: {
        double f = s->max_batches > 0 ? 1.0 - t / (double)s->max_batches : 1.0;
        return s->lr * pow(f > 0 ? f : 0.0, s->power);
    }
    case GN_POLICY_SIGMOID: return s->lr / (1.0 + exp(s->gamma * (t - (double)s->step)));
    case GN_POLICY_RANDOM: {
        gn_rng r = gn_rng_make(gn_rng_key(s->seed, (uint64_t)iter, 0x5eed));
        return s->lr * pow(gn_rng_uniform(&r), s->power);
    }
    case GN_POLICY_COSINE: {
        double f = s->max_batches > 0 ? t / (double)s->max_batches : 0.0;
        if (f > 1) f = 1;
        return s->lr_min + 0.5 * (s->lr - s->lr_min) * (1.0 + cos(3.141592653589793 * f));
    }
    }
    return s->lr;
}

/* The step on [0, n), and with consume the gradients zeroed as they are read: a plain loop
 * that GCC turns into vector code (the condition is the same for every i). */
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

/* parameters [lo, s->hi): their step, gradients zeroed */
static void fused_range(gn_sgd_fused *s, size_t lo)
{
    if (lo >= s->hi) return;
    gn_net *net = s->net;
    sgd(net->params + lo, s->velocity + lo, net->grads + lo, s->hi - lo, s->lr, s->momentum,
        s->decay, s->nesterov, 1);
    s->hi = lo;
}

void gn_sgd_on_backward(void *user, int layer)
{
    gn_sgd_fused *s = user;
    fused_range(s, (size_t)(s->net->layers[layer].grads - s->net->grads));
}

void gn_sgd_fused_finish(gn_sgd_fused *s) { fused_range(s, 0); }
