/* A layer's settings as plain numbers, for writers of other formats (src/interop): each layer
 * file fills the fields its type has through the optional gn_layer_ops.describe, so the
 * settings' meaning stays in that one file. Fields a type does not have keep the defaults of
 * layer_desc_init. */
#ifndef GN_LAYERS_DESCRIBE_H
#define GN_LAYERS_DESCRIBE_H

#include "gemmnet/net.h"

typedef struct gn_layer_desc {
    gn_act act;        /* applied last ([convolutional], [connected], [shortcut], [activation]) */
    int size, stride;  /* kernel or window side, square; size 0: global ([avgpool]) */
    /* Rows (and columns) added before the first and after the last input row. [maxpool]:
     * ignored positions (never the maximum); [convolutional], [avgpool]: zeros (an average
     * divides by size*size, zeros included). */
    int pad_begin, pad_end;
    int groups;        /* [convolutional]: channel groups; [softmax]: slices normalized alone */
    int bn;            /* [convolutional]: batch norm between the convolution and act */
    float bn_eps;      /* batch norm: y = gamma (x - mean) / sqrt(var + eps) + beta */
    float alpha, beta; /* [shortcut]: y = act(alpha x0 + beta x1) (same shapes) */
    double temperature; /* [softmax]: y = softmax(x / T) */
    float scale, shift; /* [crop]: y = scale x + shift on the window (evaluation: the centre) */
} gn_layer_desc;

static inline void layer_desc_init(gn_layer_desc *d)
{
    *d = (gn_layer_desc){.act = GN_ACT_LINEAR, .size = 1, .stride = 1, .groups = 1,
                         .alpha = 1.0f, .beta = 1.0f, .temperature = 1.0,
                         .scale = 1.0f};
}

#endif
