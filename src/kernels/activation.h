/* Pointwise activations. Every derivative is computed from the output y, so forward can work in
 * place and backward needs nothing else.
 * Shapes: y:(n) dy:(n) */
#ifndef GN_KERNELS_ACTIVATION_H
#define GN_KERNELS_ACTIVATION_H

#include <stddef.h>
#include "gemmnet/net.h"

/* y = f(y), in place */
void act_forward(float *restrict y, size_t n, gn_act a);
/* dy *= f'(x), expressed through y = f(x) */
void act_backward(float *restrict dy, const float *restrict y, size_t n, gn_act a);

#endif
