/* Optimizers behind one small interface, as layers are behind gn_layer_ops.
 *
 * An optimizer owns its state buffers, each laid out as net->params (SGD: the momentum), and
 * takes a step over any range [lo, hi) of the flat parameter buffer: the whole buffer after
 * backward (and the gradient allreduce), or, folded into backward, each layer's range as soon as
 * its gradients are final (gn_optim_fused_begin sets the backward hook). The arithmetic per
 * parameter is the same either way, so both give the same bits.
 *
 *   gn_optim_create -> (gn_optim_step | gn_optim_fused_begin, backward, gn_optim_fused_finish)*
 *   -> gn_optim_free(&o)
 *
 * Checkpoints store state buffer i of a trainable parameter P as "optimizer.<state_names[i]>.P"
 * (SGD: "optimizer.momentum.layers.3.weight", the name checkpoints have always used). */
#ifndef GEMMNET_OPTIM_H
#define GEMMNET_OPTIM_H

#include <stddef.h>
#include <stdint.h>

struct gn_ctx;
struct gn_err;
struct gn_net;

#define GN_OPTIM_MAX_STATE 3

typedef enum gn_optim_kind {
    GN_OPTIM_SGD,   /* g = dw + decay*w; v = momentum*v + g; w -= lr*(nesterov ? g + momentum*v : v) */
} gn_optim_kind;

/* Hyperparameters other than the learning rate (which each step is given). */
typedef struct gn_optim_opts {
    gn_optim_kind kind;
    float decay;      /* weight decay */
    float momentum;   /* SGD */
    int nesterov;     /* SGD */
} gn_optim_opts;

typedef struct gn_optim gn_optim;

typedef struct gn_optim_ops {
    const char *name;
    int n_state;                                  /* state buffers, each net->n_params floats */
    const char *state_names[GN_OPTIM_MAX_STATE];  /* checkpoint names of the buffers */
    /* Parameters [lo, hi) take one step with learning rate lr and weight decay decay; with
     * consume their gradients are zeroed as they are read. Elementwise: any split of a range
     * gives the same bits. */
    void (*step)(const gn_optim *o, size_t lo, size_t hi, float lr, float decay, int consume);
} gn_optim_ops;

struct gn_optim {
    const gn_optim_ops *ops;
    struct gn_net *net;
    gn_optim_opts h;
    float *state[GN_OPTIM_MAX_STATE];
    /* the step in progress (set by gn_optim_step / gn_optim_fused_begin) */
    float lr;
    size_t hi;        /* folded step: parameters [hi, n_params) have taken it */
};

extern const gn_optim_ops gn_optim_sgd_ops;

/* Allocates the optimizer for net with its state zeroed. */
int gn_optim_create(gn_optim **out, struct gn_net *net, const gn_optim_opts *h,
                    struct gn_err *err);
void gn_optim_free(gn_optim **o);

/* One step over every parameter from net->grads (left as they are). */
void gn_optim_step(gn_optim *o, float lr);

/* One step folded into backward (one mini-batch on one rank): sets ctx's backward hook, so each
 * layer's parameters take the step as soon as their gradients are final, zeroing the gradients
 * as they go; call gn_net_backward with ctx, then gn_optim_fused_finish. Afterwards every
 * gradient is zero. */
void gn_optim_fused_begin(gn_optim *o, float lr, struct gn_ctx *ctx);
void gn_optim_fused_finish(gn_optim *o);

#endif
