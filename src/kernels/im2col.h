/* im2col / col2im: unfold the receptive fields of one image into the columns of a matrix, so a
 * convolution becomes one matrix product, and fold such a matrix back (adding overlaps).
 *
 * Shape letters: C channels, H x W input, R x S kernel, P x Q output, pad zero padding on every
 * side, stride the step. Row (c, r, s) of the column matrix, column (p, q), holds
 * x[c, p*stride - pad + r, q*stride - pad + s], or 0 outside the image.
 * The row order (c, r, s) is the order of a PyTorch weight [K, C, R, S] flattened per filter. */
#ifndef GN_KERNELS_IM2COL_H
#define GN_KERNELS_IM2COL_H

#include <stddef.h>

/* x:(C,H,W) -> col:(C*R*S, P*Q) (overwritten) */
void im2col(float *restrict col, const float *restrict x, int C, int H, int W, int R, int S,
            int stride, int pad, int P, int Q);

/* col:(C*R*S, P*Q) -> dx:(C,H,W) += the sum of every column entry at the pixel it came from */
void col2im(float *restrict dx, const float *restrict col, int C, int H, int W, int R, int S,
            int stride, int pad, int P, int Q);

/* The same with a row stride: row i of the column matrix starts at col + i*ld (ld >= P*Q), so
 * several images can be unfolded side by side into one (C*R*S, nb*P*Q) matrix; the entries
 * between P*Q and ld of each row are not touched. */
void im2col_ld(float *restrict col, int ld, const float *restrict x, int C, int H, int W, int R,
               int S, int stride, int pad, int P, int Q);
void col2im_ld(float *restrict dx, const float *restrict col, int ld, int C, int H, int W, int R,
               int S, int stride, int pad, int P, int Q);
/* ... and with a column stride as well: entry (row i, column j) at col[i*ld + j*cs], so the
 * matrix may be stored transposed, (P*Q, C*R*S) with ld 1 and cs C*R*S. The sums run in
 * col2im_ld's order. */
void col2im_strided(float *restrict dx, const float *restrict col, size_t ld, size_t cs, int C,
                    int H, int W, int R, int S, int stride, int pad, int P, int Q);

#endif
