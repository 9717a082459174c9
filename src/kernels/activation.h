/* Pointwise activations. Every derivative is computed from the output y, so forward can work in
 * place and backward needs nothing else.
 * Shapes: y:(n) dy:(n) */
#ifndef GN_KERNELS_ACTIVATION_H
#define GN_KERNELS_ACTIVATION_H

#include <math.h>
#include <stddef.h>
#include "gemmnet/net.h"

/* f(v) for one value: the expressions act_forward uses. */
static inline float act_one(float v, gn_act a)
{
    switch (a) {
    case GN_ACT_RELU: return v > 0 ? v : 0;
    case GN_ACT_LEAKY: return v > 0 ? v : 0.1f * v;
    case GN_ACT_LOGISTIC: return 1.0f / (1.0f + expf(-v));
    case GN_ACT_TANH: return tanhf(v);
    case GN_ACT_RAMP: return v > 0 ? 1.1f * v : 0.1f * v;
    case GN_ACT_RELU6: return v > 0 ? (v < 6 ? v : 6) : 0;
    case GN_ACT_LINEAR: break;
    }
    return v;
}

/* y = f(y), in place */
void act_forward(float *restrict y, size_t n, gn_act a);
/* dy *= f'(x), expressed through y = f(x) */
void act_backward(float *restrict dy, const float *restrict y, size_t n, gn_act a);

#endif
