/* Looking inside a trained net: images that excite a unit (activation maximization), deep
 * dream, and saliency maps. All of it uses the backward pass that trains the weights, run from an
 * arbitrary layer down to the input pixels (gn_net_backward_from with gn_net_enable_dinput).
 *
 * The network is run with ctx.train = 0 (batch norm on its running statistics, dropout off) on
 * image 0 of its batch. Parameters and state are never written; backward does accumulate into
 * net->grads, which callers that also train must zero before their next step.
 *
 * Images are the net's input tensors: C x H x W floats, normalized as the data pipeline
 * normalizes them ((pixel/255 - mean) / std per channel). */
#ifndef GEMMNET_VIZ_H
#define GEMMNET_VIZ_H

#include "gemmnet/gemmnet.h"

typedef enum gn_viz_objective {
    /* the mean of channel `unit` of the layer's output (element `unit` of a vector output) */
    GN_VIZ_UNIT = 0,
    /* deep dream: 1/2 ||layer output||^2 */
    GN_VIZ_DREAM = 1,
} gn_viz_objective;

typedef struct gn_viz_opts {
    int steps;          /* gradient steps per octave */
    float lr;           /* step size, in normalized input units per unit of mean |gradient| */
    float l2;           /* weight of the 1/2 ||x||^2 penalty (pulls towards the mean colour) */
    float tv;           /* weight of the total variation sum of squared neighbour differences */
    int jitter;         /* roll the image by up to this many pixels each step (0: off) */
    int octaves;        /* scales, each octave_scale times the previous; the last is the input */
    float octave_scale;
    float init_std;     /* noise of the starting image (normalized units), visualize only */
    uint64_t seed;
    float mean[3], std[3]; /* the data normalization: sets the valid pixel range for clipping */
} gn_viz_opts;

/* steps 64, lr 0.05, l2 0.01, tv 0.05, jitter 2, octaves 3 of 1.4, init_std 0.1, seed 1, ImageNet
 * mean/std (callers with a config copy gn_data_opts' mean and std). */
void gn_viz_opts_default(gn_viz_opts *o);

/* The objective per step (its value before the step), caller-owned: values[cap]. */
typedef struct gn_viz_trace {
    double *values;
    int cap;
    int n;
} gn_viz_trace;

/* The layer whose output holds the class scores: the input of the last [softmax] layer, or the
 * last layer when there is none. */
int gn_viz_score_layer(const gn_net *net);

/* Gradient ascent on the input image for objective obj of layer `layer` (unit: the channel or
 * element for GN_VIZ_UNIT; ignored for GN_VIZ_DREAM). start: NULL to begin from noise, or an
 * image of the input's shape (deep dream: the ascent then keeps the start's details at every
 * octave and amplifies on top of them). Each step: the objective's gradient is divided by its
 * mean absolute value, the regularizers' gradients are added, the image moves lr along the sum
 * and is clipped to the valid pixel range. Octaves: the image is optimized as a smaller picture,
 * upsampled bilinearly to the input size before the net sees it (the gradient goes through the
 * upsampling's adjoint), then enlarged for the next octave. From noise, when the first gradient
 * is exactly zero (a ReLU unit the noise leaves off), the noise is drawn again 4, 16, 64 and 256
 * times stronger (then clipped) before giving up. img (C x H x W) receives the result;
 * trace (may be NULL) the objective per step (steps * octaves values, as many as fit). */
int gn_viz_ascent(gn_net *net, int layer, gn_viz_objective obj, int unit, const gn_viz_opts *o,
                  const float *start, float *img, gn_viz_trace *trace, struct gn_err *err);

/* The objective's value and its gradient with respect to the input (grad: C x H x W, may be
 * NULL) at image x, for GN_VIZ_UNIT or GN_VIZ_DREAM. */
int gn_viz_input_grad(gn_net *net, int layer, gn_viz_objective obj, int unit, const float *x,
                      float *grad, double *value, struct gn_err *err);

/* Saliency: map (H x W) = max over colour channels of |d score_cls / d pixel| for image x.
 * cls < 0: the predicted class (arg max of the scores at x); *cls_out (may be NULL) receives the
 * class used. smooth > 0: SmoothGrad, the gradient averaged over `smooth` copies of x plus
 * Gaussian noise of standard deviation noise * (max(x) - min(x)), before |.| and the maximum. */
int gn_viz_saliency(gn_net *net, const float *x, int cls, int smooth, float noise, uint64_t seed,
                    float *map, int *cls_out, struct gn_err *err);

/* ---- pictures ---- */

/* Resamples each of c planes of src (sh x sw) to dst (dh x dw): bilinear when enlarging, a
 * triangle filter as wide as the shrink factor (area-like) when shrinking. */
int gn_viz_resize(float *dst, int dh, int dw, const float *src, int sh, int sw, int c);
/* The adjoint (transpose) of gn_viz_resize: dsrc (sh x sw) = R^T ddst (dh x dw). */
int gn_viz_resize_adjoint(float *dsrc, int sh, int sw, const float *ddst, int dh, int dw, int c);

/* An input image (c = 1 or 3 planes of h x w) to 8-bit RGB of oh x ow: resampled, the
 * normalization undone, clipped to 0..255 (gray is repeated in all three channels). */
int gn_viz_render(unsigned char *rgb, int oh, int ow, const float *x, int c, int h, int w,
                  const float mean[3], const float std[3]);
/* A map (h x w, >= 0) to a "hot" colour map of oh x ow (black, red, yellow, white), scaled so
 * its 99.5th percentile is full scale. under (oh x ow RGB, may be NULL): blend the map over it
 * (overlay: the picture in gray at 60% brightness, covered by the colour map in proportion to
 * its value). */
int gn_viz_heatmap(unsigned char *rgb, int oh, int ow, const float *map, int h, int w,
                   const unsigned char *under);
/* n tiles of th x tw RGB into a grid of `cols` columns with `gap` pixels of white between
 * them: out is (rows*th + (rows-1)*gap) x (cols*tw + (cols-1)*gap), rows = ceil(n/cols). */
void gn_viz_grid_size(int n, int th, int tw, int gap, int cols, int *oh, int *ow);
void gn_viz_grid(unsigned char *out, const unsigned char *const *tiles, int n, int th, int tw,
                 int gap, int cols);

/* Writes 8-bit RGB as an uncompressed PNG (zlib stored blocks; lossless, about 3 bytes a pixel). */
int gn_viz_write_png(const char *path, const unsigned char *rgb, int w, int h,
                     struct gn_err *err);
/* PNG when path ends in ".png" (any case), else JPEG of quality 92. */
int gn_viz_save_rgb(const char *path, const unsigned char *rgb, int w, int h,
                    struct gn_err *err);

#endif
