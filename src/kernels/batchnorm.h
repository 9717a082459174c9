/* Batch normalization over (N, H, W) per channel, as PyTorch's BatchNorm1d/2d.
 *
 * Shape letters: N images, C channels, HW = H*W values per image and channel; M = N*HW.
 *   training:   mean, var = biased batch statistics over the M values of a channel
 *               xhat = (x - mean) / sqrt(var + eps);  y = gamma * xhat + beta
 *               running_mean = (1 - momentum) running_mean + momentum mean
 *               running_var  = (1 - momentum) running_var  + momentum var * M/(M-1)
 *   evaluation: the same with the running statistics, which stay as they are.
 * Forward keeps xhat and istd = 1/sqrt(var + eps) for backward. Every channel is reduced in a
 * fixed order (double accumulators), so results do not depend on the thread count. */
#ifndef GN_KERNELS_BATCHNORM_H
#define GN_KERNELS_BATCHNORM_H

#include "kernels/activation.h"

/* y:(N,C,HW) in place (in: x, out: act(gamma xhat + beta)); xhat:(N,C,HW) istd:(C) saved;
 * running stats:(C) updated */
void batchnorm_forward_train(float *y, float *restrict xhat, float *restrict istd,
                             float *restrict run_mean, float *restrict run_var,
                             const float *restrict gamma, const float *restrict beta, int N,
                             int C, int HW, float eps, float momentum, gn_act act);
/* y:(N,C,HW) in place; xhat, istd saved; running stats:(C) read */
void batchnorm_forward_eval(float *y, float *restrict xhat, float *restrict istd,
                            const float *restrict run_mean, const float *restrict run_var,
                            const float *restrict gamma, const float *restrict beta, int N,
                            int C, int HW, float eps, gn_act act);
/* xhat:(N,C,HW) gamma, beta:(C) -> y:(N,C,HW) = act(gamma xhat + beta): the last step of
 * forward, for rebuilding y from the saved xhat; bit-identical to what forward wrote. */
void batchnorm_apply(float *restrict y, const float *restrict xhat, const float *restrict gamma,
                     const float *restrict beta, int N, int C, int HW, gn_act act);
/* dy:(N,C,HW) *= act'(u) in place, u = gamma xhat + beta: the activation's backward worked
 * out from xhat instead of the stored output, bit for bit as act_backward(dy, y) with the y
 * forward wrote (the same expressions), so backward does not need y kept. */
void batchnorm_act_backward(float *restrict dy, const float *restrict xhat,
                            const float *restrict gamma, const float *restrict beta, int N, int C,
                            int HW, gn_act act);
/* dy:(N,C,HW) xhat:(N,C,HW) istd:(C) gamma:(C) -> dgamma, dbeta:(C) +=, and
 * dx:(N,C,HW) (+= when accumulate, else =; dx may be NULL, and may be dy itself when
 * accumulate is 0). dy is the gradient of gamma xhat + beta: the activation's backward
 * (act_backward) comes first. train: the full gradient through the batch statistics; else the
 * affine part only (the running statistics are constants). */
void batchnorm_backward(float *dx, float *restrict dgamma, float *restrict dbeta,
                        const float *dy, const float *restrict xhat,
                        const float *restrict istd, const float *restrict gamma, int N, int C,
                        int HW, int train, int accumulate);

#endif
