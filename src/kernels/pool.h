/* Pooling kernels: max and average pooling over square windows, and global average pooling.
 *
 * Shape letters: N images, C channels, H x W input, P x Q output, K window size (K x K),
 * S stride, O offset: the window of output (p, q) starts at input row p*S - O, column q*S - O.
 * Window positions outside the H x W image are skipped (max pooling ignores them; average
 * pooling still divides by K*K, i.e. they count as zeros, PyTorch's count_include_pad=True).
 * Callers guarantee every window overlaps the image.
 *
 * Max pooling records, per output, the index (h*W + w) of its maximum within the input plane;
 * ties go to the first maximum in row-major window order; a NaN wins and propagates.
 * Backward kernels accumulate (dx += ...). */
#ifndef GN_KERNELS_POOL_H
#define GN_KERNELS_POOL_H

#include <stdint.h>

// x:(N,C,H,W) -> y:(N,C,P,Q) idx:(N,C,P,Q)
void maxpool_forward(float *restrict y, int32_t *restrict idx, const float *restrict x, int N,
                     int C, int H, int W, int P, int Q, int K, int S, int O);
void maxpool_forward_ref(float *restrict y, int32_t *restrict idx, const float *restrict x, int N,
                         int C, int H, int W, int P, int Q, int K, int S, int O);
// dy:(N,C,P,Q) idx:(N,C,P,Q) -> dx:(N,C,H,W) +=
void maxpool_backward(float *restrict dx, const float *restrict dy, const int32_t *restrict idx,
                      int N, int C, int H, int W, int P, int Q);

// x:(N,C,H,W) -> y:(N,C,P,Q), each output the window sum / (K*K)
void avgpool_forward(float *restrict y, const float *restrict x, int N, int C, int H, int W,
                     int P, int Q, int K, int S, int O);
void avgpool_forward_ref(float *restrict y, const float *restrict x, int N, int C, int H, int W,
                         int P, int Q, int K, int S, int O);
// dy:(N,C,P,Q) -> dx:(N,C,H,W) +=
void avgpool_backward(float *restrict dx, const float *restrict dy, int N, int C, int H, int W,
                      int P, int Q, int K, int S, int O);

// x:(N,C,HW) -> y:(N,C), the mean of each plane
void avgpool_global_forward(float *restrict y, const float *restrict x, int N, int C, int HW);
// dy:(N,C) -> dx:(N,C,HW) +=
void avgpool_global_backward(float *restrict dx, const float *restrict dy, int N, int C, int HW);

#endif
