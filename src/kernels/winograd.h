/* Winograd convolution F(m x m, 3x3) for 3x3, stride-1, ungrouped layers (Lavin & Gray 2015),
 * m = 2 (tiles of alpha = 4) or m = 4 (alpha = 6). Same layouts and semantics as conv.h:
 *   x:(N,C,H,W) w:(K,C,3,3) b:(K) -> y:(N,K,P,Q), P = H + 2*pad - 2, Q = W + 2*pad - 2
 *
 * The output is cut into tH x tW tiles of m x m (tH = ceil(P/m), tW = ceil(Q/m)); tile (i,j)
 * reads the alpha x alpha input patch at row i*m - pad, column j*m - pad (zero outside the
 * image) and writes only the outputs that exist. With T tiles in a chunk of images and the
 * alpha^2 positions xi of a transformed tile:
 *   forward  U[xi]:(K,C) = (G g G^T)[xi],  V[xi]:(C,T) = (B^T d B)[xi]
 *            M[xi]:(K,T) = U[xi] V[xi],    y = A^T M A (+ b)
 *   data     Mbar[xi]:(K,T) = (A dy A^T)[xi],  dV[xi]:(C,T) = U[xi]^T Mbar[xi],
 *            dx += overlap-add of B dV B^T over the patches (the adjoint of the forward)
 *   weights  dU[xi]:(K,C) += Mbar[xi] V[xi]^T,  dw += G^T dU G
 * Each product is one cblas_sgemm per xi. In forward and the data pass, chunks of images go
 * through an OpenMP loop (single-threaded sgemm inside, per-thread workspace) when there are
 * enough tiles for every thread; otherwise the chunks go in turn through multithreaded sgemm,
 * with the transforms in OpenMP loops over channels. Backward computes dV and dU in the same
 * pass over the chunks (dU partials per thread, summed in thread order), except on wide layers
 * (K*C >= 256*512): a data pass, then a weight pass with its chunks in turn into one dU. A run
 * repeats bit for bit for a given thread count.
 *
 * The shape's `winograd` field picks m; winograd_applies() says whether these kernels can run
 * the shape. The _prof variants add seconds spent in transforms to prof[0] and in sgemm to
 * prof[1] (prof may be NULL). */
#ifndef GN_KERNELS_WINOGRAD_H
#define GN_KERNELS_WINOGRAD_H

#include "kernels/conv.h"

#include <stddef.h>

/* s->winograd is 2 or 4, 3x3 kernel, stride 1, groups 1, pad 0..2. */
int winograd_applies(const conv2d_shape *s);
/* `winograd=auto` in a cfg (layer_parse_winograd): the layer picks the algorithm per shape
 * with winograd_auto(). */
#define WINOGRAD_AUTO (-1)
/* The algorithm for a finished shape (its N: the batch the layer was built for), where
 * Winograd can run: of F(4x4,3x3) and F(2x2,3x3), the one with the larger positive balance,
 * per filter x channel pair, of the multiplies it saves over im2col across the batch,
 * N (9 P Q - alpha^2 tiles), less WINOGRAD_AUTO_WEIGHT_COST alpha^2 for its alpha^2 transformed
 * weights (built in forward and again in backward, their gradient summed and transformed back,
 * all streamed by the GEMMs: a cost per step that the batch does not share out); im2col (0)
 * when neither balance is positive. Large batches get F(4x4) on maps from 3x3 and F(2x2) on 2x2
 * maps; small batches keep im2col on the small maps, where the weights outweigh the images.
 * docs/performance.md, "Winograd". */
#define WINOGRAD_AUTO_WEIGHT_COST 60.0
/* ... and only with at least this many input channels for F(4x4), WINOGRAD_AUTO_MIN_C_F2 for
 * F(2x2): below them the GEMMs are too thin to pay for the transforms. Measured with
 * `bench_winograd time N 2 CxH` (vectorized transforms, C=K, forward + backward): F(4x4) beats
 * im2col from C=8 (1.2-1.4x at 8, 1.4-1.7x at 16, 1.5-3.4x at 32, batch 16 and 128), loses at
 * C=1 and ties at C=4; F(2x2) is slower than or even with im2col at C=8 and 16 and on 28x28 and
 * 56x56 maps at C=32 (docs/performance.md, "Winograd"). 16, not 8, keeps a margin: the
 * win at 8 is small and was measured on C=K shapes only. */
#define WINOGRAD_AUTO_MIN_C 16
#define WINOGRAD_AUTO_MIN_C_F2 64
int winograd_auto(const conv2d_shape *s);
/* Scratch for up to `threads` threads (floats), tile size m (2 or 4). */
size_t winograd_ws_floats(const conv2d_shape *s, int m, int threads);

/* y = conv(x, w) + b (b may be NULL); ws: winograd_ws_floats(s, s->winograd, threads) */
void winograd_forward_prof(float *restrict y, const float *restrict x, const float *restrict w,
                           const float *restrict b, float *restrict ws, const conv2d_shape *s,
                           int threads, double *prof);
/* dx += conv^T(dy, w) (dx may be NULL), dw += dy * x, db += sum of dy (db may be NULL) */
void winograd_backward_prof(float *restrict dx, float *restrict dw, float *restrict db,
                            const float *restrict dy, const float *restrict x,
                            const float *restrict w, float *restrict ws, const conv2d_shape *s,
                            int threads, double *prof);

#endif
