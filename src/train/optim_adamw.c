/* AdamW as torch.optim.AdamW writes it (decoupled weight decay; amsgrad optional):
 *   w *= 1 - lr*decay;  m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g*g;  (amsgrad: vmax = max(vmax, v))
 *   w += -(lr/(1 - b1^t)) * (m / (sqrt(v or vmax)/sqrt(1 - b2^t) + eps))
 * with t the steps taken, this one included. State: exp_avg (m), exp_avg_sq (v), and with
 * amsgrad max_exp_avg_sq (vmax). */
#include "gemmnet/optim.h"
#include "gemmnet/net.h"
#include "core/util.h"

#include <math.h>

/* w, m, v, dw, vmax: (n); vmax only read and written when amsgrad */
static void adamw_range(float *restrict w, float *restrict m, float *restrict v,
                        float *restrict vmax, float *restrict dw, size_t n, float keep, float b1,
                        float omb1, float b2, float omb2, float eps, float step_size,
                        float bc2_sqrt, int amsgrad, int consume)
{
    for (size_t i = 0; i < n; i++) {
        float g = dw[i];
        w[i] *= keep;
        m[i] = m[i] * b1 + omb1 * g;
        v[i] = v[i] * b2 + omb2 * g * g;
        float s = v[i];
        if (amsgrad) {
            if (vmax[i] < s) vmax[i] = s;
            s = vmax[i];
        }
        float denom = sqrtf(s) / bc2_sqrt + eps;
        w[i] += -step_size * (m[i] / denom);
        if (consume) dw[i] = 0.0f;
    }
}

typedef struct adamw_args {
    const gn_optim *o;
    size_t lo;
    float keep, step_size, bc2_sqrt;
    int consume;
} adamw_args;

static void adamw_slice(void *arg, size_t a, size_t b)
{
    const adamw_args *x = arg;
    const gn_optim *o = x->o;
    size_t at = x->lo + a;
    adamw_range(o->net->params + at, o->state[0] + at, o->state[1] + at,
                o->h.amsgrad ? o->state[2] + at : NULL, o->net->grads + at, b - a, x->keep,
                (float)o->h.beta1, (float)(1.0 - o->h.beta1), (float)o->h.beta2,
                (float)(1.0 - o->h.beta2), (float)o->h.eps, x->step_size, x->bc2_sqrt,
                o->h.amsgrad, x->consume);
}

static void adamw_step(const gn_optim *o, size_t lo, size_t hi, float lr, float decay,
                       int consume)
{
    /* the scalars as PyTorch forms them: in double, then rounded once to float */
    adamw_args x = {o, lo, (float)(1.0 - (double)lr * (double)decay),
                    (float)((double)lr / o->bc1), (float)o->bc2_sqrt, consume};
    gn_parallel_slices(hi - lo, (size_t)1 << 15, adamw_slice, &x);
}

const gn_optim_ops gn_optim_adamw_ops = {
    .name = "adamw",
    .n_state = 2,
    .state_names = {"exp_avg", "exp_avg_sq"},
    .step = adamw_step,
};

const gn_optim_ops gn_optim_amsgrad_ops = {
    .name = "adamw",
    .n_state = 3,
    .state_names = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"},
    .step = adamw_step,
};
