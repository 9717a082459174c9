/* 2-D convolution (cross-correlation, as PyTorch's Conv2d), with groups.
 *
 * Shape letters: N images, C input channels, H x W input, K filters (output channels),
 * R x S kernel, P x Q output, G groups (Cg = C/G inputs and Kg = K/G filters per group).
 *   x:(N,C,H,W) w:(K,Cg,R,S) b:(K) -> y:(N,K,P,Q)
 *   P = (H + 2*pad - R)/stride + 1, Q = (W + 2*pad - S)/stride + 1
 *
 * The fast kernels unfold each image with im2col and call cblas_sgemm once per group; a 1x1
 * convolution with stride 1 and no padding skips im2col (the image already is the column
 * matrix). With more than one thread and at least as many images as threads, an OpenMP loop
 * runs over the images (single-threaded sgemm inside, per-thread workspace and weight-gradient
 * partials summed in thread order); otherwise the images go one after the other through
 * multithreaded sgemm. Small feature maps (few output pixels per image, so per-image GEMMs
 * are thin) take the batched path instead: chunks of images are unfolded side by side into one
 * column matrix, one multithreaded sgemm per chunk and group, and the (K, nb*P*Q) result is
 * scattered to NCHW (backward gathers dy the same way). The chunk size comes from a bounded
 * workspace. Either way a run repeats bit for bit for a given thread count. Depthwise shapes
 * (groups = C = K) go to depthwise.h's direct kernels instead (a padded plane per thread), unless
 * algo forces one of the paths above.
 * The _ref twins are plain loops, for the tests. */
#ifndef GN_KERNELS_CONV_H
#define GN_KERNELS_CONV_H

#include <stddef.h>

/* Which path the fast kernels take; CONV2D_AUTO chooses by shape (see conv2d_is_batched). */
enum { CONV2D_AUTO = 0, CONV2D_PER_IMAGE = 1, CONV2D_BATCHED = 2 };

typedef struct conv2d_shape {
    int N, C, H, W;
    int K, R, S;
    int stride, pad, groups;
    int P, Q;
    /* Algorithm: 0 im2col + sgemm; 2 or 4 Winograd F(2x2,3x3) or F(4x4,3x3) (winograd.h)
     * where the shape qualifies (3x3, stride 1, groups 1, pad <= 2), else im2col. */
    int winograd;
    /* Overrides for tests and measurements; 0 (the default) means automatic. algo: a
     * CONV2D_* value; chunk: at most this many images per batched chunk. */
    int algo, chunk;
} conv2d_shape;

/* Fills P and Q from the others; returns 0, or -1 when the shape is invalid (empty output,
 * channels not divisible by groups, non-positive sizes). */
int conv2d_shape_finish(conv2d_shape *s);
/* 1x1, stride 1, no padding: no im2col needed. */
int conv2d_is_direct(const conv2d_shape *s);
/* 1 when the fast kernels take the batched path for this shape. */
int conv2d_is_batched(const conv2d_shape *s);
/* Images per chunk on the batched path (1..N). */
int conv2d_chunk_images(const conv2d_shape *s);
/* Scratch the fast kernels need for up to `threads` threads (floats). */
size_t conv2d_ws_floats(const conv2d_shape *s, int threads);

/* y = conv(x, w) + b (b may be NULL); ws: conv2d_ws_floats(s, threads) floats */
void conv2d_forward(float *restrict y, const float *restrict x, const float *restrict w,
                    const float *restrict b, float *restrict ws, const conv2d_shape *s,
                    int threads);
/* dx += conv^T(dy, w) (dx may be NULL: skipped), dw += dy * x, db += sum of dy (db may be
 * NULL) */
void conv2d_backward(float *restrict dx, float *restrict dw, float *restrict db,
                     const float *restrict dy, const float *restrict x,
                     const float *restrict w, float *restrict ws, const conv2d_shape *s,
                     int threads);

/* The same, adding the seconds spent in im2col/col2im to prof[0] and in sgemm to prof[1]
 * (prof may be NULL), for `gemmnet bench --layers`. In the loop over images the per-thread
 * times are averaged over the threads. */
void conv2d_forward_prof(float *restrict y, const float *restrict x, const float *restrict w,
                         const float *restrict b, float *restrict ws, const conv2d_shape *s,
                         int threads, double *prof);
void conv2d_backward_prof(float *restrict dx, float *restrict dw, float *restrict db,
                          const float *restrict dy, const float *restrict x,
                          const float *restrict w, float *restrict ws, const conv2d_shape *s,
                          int threads, double *prof);

void conv2d_forward_ref(float *restrict y, const float *restrict x, const float *restrict w,
                        const float *restrict b, const conv2d_shape *s);
void conv2d_backward_ref(float *restrict dx, float *restrict dw, float *restrict db,
                         const float *restrict dy, const float *restrict x,
                         const float *restrict w, const conv2d_shape *s);

#endif
