/* Optimizers behind one small interface, as layers are behind gn_layer_ops; gradient clipping
 * by global norm; the EMA of the weights.
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
 * (SGD: "optimizer.momentum.layers.3.weight", the name checkpoints have always used).
 *
 * Parameter groups, as PyTorch's param_groups: each trainable tensor takes the step with
 * lr * its layer's lr_mult and its own weight decay: norm_decay for batch-norm weights
 * ("bn.weight"), bias_decay for biases ("bias", "bn.bias"), decay for the rest; a frozen
 * layer's tensors take no step at all (parameters, state and, with consume, their gradients
 * only zeroed). */
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
    GN_OPTIM_ADAMW, /* torch.optim.AdamW: w *= 1 - lr*decay; m = b1*m + (1-b1)*g;
                     * v = b2*v + (1-b2)*g*g; (amsgrad: vmax = max(vmax, v), used for v)
                     * w -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps), t = steps taken */
} gn_optim_kind;

/* Hyperparameters other than the learning rate (which each step is given). */
typedef struct gn_optim_opts {
    gn_optim_kind kind;
    float decay;      /* weight decay */
    float norm_decay; /* weight decay of batch-norm weights */
    float bias_decay; /* weight decay of biases (batch norm's too) */
    float momentum;   /* SGD */
    int nesterov;     /* SGD */
    double beta1, beta2, eps; /* AdamW (double as Python's floats; rounded where PyTorch does) */
    int amsgrad;             /* AdamW */
} gn_optim_opts;

typedef struct gn_optim gn_optim;

/* A run of parameters [lo, hi) of the flat buffer that share their learning-rate multiplier,
 * weight decay and frozenness. */
typedef struct gn_optim_group {
    size_t lo, hi;
    float lr_mult, decay;
    int frozen;
} gn_optim_group;

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
    int64_t steps;    /* steps taken (AdamW's bias correction; saved in checkpoints) */
    gn_optim_group *groups;
    int n_groups;
    /* the step in progress (set by gn_optim_step / gn_optim_fused_begin) */
    float lr;
    size_t hi;        /* folded step: parameters [hi, n_params) have taken it */
    double bc1, bc2_sqrt; /* AdamW: 1 - b1^t and sqrt(1 - b2^t) for this step's t */
};

extern const gn_optim_ops gn_optim_sgd_ops, gn_optim_adamw_ops, gn_optim_amsgrad_ops;

/* Allocates the optimizer for net with its state zeroed; the groups are taken from the layers'
 * lr_mult and frozen as they are now. */
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

/* torch.nn.utils.clip_grad_norm_: the L2 norm of every non-frozen gradient together (summed in
 * double in a fixed order); when above max_norm the gradients are multiplied by
 * max_norm / (norm + 1e-6). Returns the norm before clipping. */
double gn_optim_clip_grad_norm(gn_optim *o, double max_norm);

/* ---- the exponential moving average of the weights ---- */

/* After every `every` optimizer steps: for every parameter and state tensor (batch-norm running
 * statistics included, as timm's ModelEmaV2),
 *   ema = d*ema + (1 - d)*x,  d = warmup ? min(decay, (1 + n)/(10 + n)) : decay
 * where n is the number of EMA updates before this one. Starts as a copy of the weights. A
 * frozen layer's tensors are left as they are (their copy stays exact). */
typedef struct gn_ema {
    struct gn_net *net;
    float *params, *state; /* laid out as net->params and net->state */
    double decay;
    int every, warmup;
    int64_t updates;       /* EMA updates done (saved in checkpoints) */
} gn_ema;

int gn_ema_create(gn_ema **out, struct gn_net *net, double decay, int every, int warmup,
                  struct gn_err *err);
void gn_ema_free(gn_ema **e);
/* The EMA := the net's current weights and state (the start; updates = 0). */
void gn_ema_reset(gn_ema *e);
/* The decay the next update uses. */
double gn_ema_decay_now(const gn_ema *e);
/* Called after optimizer step number `step` (1-based): updates when step % every == 0. */
void gn_ema_after_step(gn_ema *e, int64_t step);
/* Exchanges the EMA with the net's weights and state (evaluate with the EMA, then swap back). */
void gn_ema_swap(gn_ema *e);

#endif
