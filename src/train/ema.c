/* The exponential moving average of the weights (gemmnet/optim.h): timm's ModelEmaV2 update over
 * parameters and batch-norm running statistics, with the warm-up d = min(decay, (1+n)/(10+n))
 * (TensorFlow's ExponentialMovingAverage with num_updates, timm's ModelEma warm-up). */
#include "gemmnet/gemmnet.h"
#include "gemmnet/optim.h"
#include "core/util.h"

#include <stdlib.h>
#include <string.h>

/* ema = d*ema + (1-d)*x; ema, x: (n) */
static void ema_range(float *restrict ema, const float *restrict x, size_t n, float d, float omd)
{
    for (size_t i = 0; i < n; i++) ema[i] = d * ema[i] + omd * x[i];
}

/* a <-> b; a, b: (n) */
static void swap_range(float *restrict a, float *restrict b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float t = a[i];
        a[i] = b[i];
        b[i] = t;
    }
}

int gn_ema_create(gn_ema **out, gn_net *net, double decay, int every, int warmup, gn_err *err)
{
    *out = NULL;
    if (!(decay >= 0 && decay <= 1) || every < 1)
        return gn_err_set(err, GN_EINVAL, "EMA decay %g (must be in [0,1]) or interval %d", decay,
                          every);
    gn_ema *e = calloc(1, sizeof *e);
    if (!e) return gn_err_set(err, GN_ENOMEM, "out of memory");
    e->net = net;
    e->decay = decay;
    e->every = every;
    e->warmup = warmup;
    e->params = gn_alloc(net->n_params ? net->n_params : 1, sizeof(float));
    e->state = gn_alloc(net->n_state ? net->n_state : 1, sizeof(float));
    if (!e->params || !e->state) {
        gn_ema_free(&e);
        return gn_err_set(err, GN_ENOMEM, "out of memory for the EMA of the weights");
    }
    gn_ema_reset(e);
    *out = e;
    return GN_OK;
}

void gn_ema_free(gn_ema **pe)
{
    gn_ema *e = *pe;
    if (!e) return;
    gn_free(e->params);
    gn_free(e->state);
    free(e);
    *pe = NULL;
}

void gn_ema_reset(gn_ema *e)
{
    if (e->net->n_params) memcpy(e->params, e->net->params, e->net->n_params * sizeof(float));
    if (e->net->n_state) memcpy(e->state, e->net->state, e->net->n_state * sizeof(float));
    e->updates = 0;
}

double gn_ema_decay_now(const gn_ema *e)
{
    if (!e->warmup) return e->decay;
    double n = (double)e->updates, w = (1.0 + n) / (10.0 + n);
    return w < e->decay ? w : e->decay;
}

void gn_ema_after_step(gn_ema *e, int64_t step)
{
    if (step % e->every) return;
    double d = gn_ema_decay_now(e);
    const gn_net *net = e->net;
    for (int i = 0; i < net->n_layers; i++) {
        const gn_layer *l = &net->layers[i];
        /* a frozen layer's weights do not change: its EMA stays their exact copy */
        if (l->frozen) continue;
        float dd = (float)d, omd = (float)(1.0 - d);
        if (l->n_params)
            ema_range(e->params + (l->params - net->params), l->params, l->n_params, dd, omd);
        if (l->n_state)
            ema_range(e->state + (l->state - net->state), l->state, l->n_state, dd, omd);
    }
    e->updates++;
}

void gn_ema_swap(gn_ema *e)
{
    swap_range(e->params, e->net->params, e->net->n_params);
    swap_range(e->state, e->net->state, e->net->n_state);
}
