/* Depthwise convolution: one filter per channel (groups = C = K), as MobileNetV2's 3x3 layers.
 *
 * Shape letters as in conv.h: N images, C channels (= K filters = G groups), H x W input,
 * R x S kernel, P x Q output.
 *   x:(N,C,H,W) w:(C,1,R,S) b:(C) -> y:(N,C,P,Q)
 *   y[n,c,p,q] = b[c] + sum_{r,s} w[c,r,s] x[n,c, p*stride - pad + r, q*stride - pad + s]
 *
 * im2col + one sgemm per group turns each channel into a 1-row GEMM (a GEMV in disguise) after
 * copying R*S times the input; these kernels work on the planes directly. Stride 1 (13 of
 * MobileNetV2's 17 depthwise layers): the plane is copied once into a zero-padded buffer and
 * every tap is one contiguous loop over the whole output, edges included (depthwise.c). Other
 * strides: a row at a time, the valid output columns of each tap computed once, so the inner
 * loops have no bounds tests. conv2d_forward and
 * conv2d_backward call them for every depthwise shape (conv2d_is_depthwise) unless the shape's
 * algo forces an im2col path (CONV2D_PER_IMAGE or CONV2D_BATCHED: tests and benchmarks).
 *
 * Parallelism (STYLE rule 8): an OpenMP loop over planes (forward) or channels (backward) with
 * at most `threads` threads, no sgemm inside; each iteration writes only its own plane of y, or
 * its channel's dx planes and dw filter (summing the images in order), so results are
 * bit-identical for any thread count.
 * The naive twins are conv2d_forward_ref / conv2d_backward_ref (conv_ref.c, any groups). */
#ifndef GN_KERNELS_DEPTHWISE_H
#define GN_KERNELS_DEPTHWISE_H

#include "kernels/conv.h"

/* 1 when groups = C = K: the shapes depthwise_forward/backward take. */
int conv2d_is_depthwise(const conv2d_shape *s);

/* 1 when conv2d_forward/backward run a shape here: depthwise, with algo CONV2D_AUTO. */
int conv2d_takes_depthwise(const conv2d_shape *s);

/* Scratch for up to `threads` threads (floats): stride-1 shapes take the padded layout
 * (depthwise.c), one padded plane, one gradient plane and one output row block each. */
size_t depthwise_ws_floats(const conv2d_shape *s, int threads);

/* y = conv(x, w) + b (b may be NULL); ws: depthwise_ws_floats(s, threads) floats */
void depthwise_forward(float *restrict y, const float *restrict x, const float *restrict w,
                       const float *restrict b, float *restrict ws, const conv2d_shape *s,
                       int threads);
/* dx += conv^T(dy, w) (dx may be NULL: skipped), dw += dy * x; the bias gradient is
 * conv2d_backward's (a sum of dy per channel, whatever the grouping) */
void depthwise_backward(float *restrict dx, float *restrict dw, const float *restrict dy,
                        const float *restrict x, const float *restrict w, float *restrict ws,
                        const conv2d_shape *s, int threads);

#endif
