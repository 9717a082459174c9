/* The network: a graph of layers built from a config, planned once, then run forward and
 * backward over mini-batches.
 *
 * Memory: all trainable parameters live in one flat buffer (net->params), their gradients in a
 * second of the same layout (net->grads), and non-trainable state such as batch-norm running
 * statistics in a third (net->state). Each layer's parameters are a contiguous slice, described
 * by gn_param entries with PyTorch's names and shapes. Activations and their gradients are
 * planned before the first step.
 *
 * Shapes are NCHW, float32. A vector input of n values is (C=n, H=1, W=1). */
#ifndef GEMMNET_NET_H
#define GEMMNET_NET_H

#include <stddef.h>
#include <stdint.h>

struct gn_err;
struct gn_cfg;
struct gn_cfg_section;
struct gn_layer_desc;

#define GN_MAX_INPUTS 16
#define GN_MAX_PARAMS 8

typedef struct gn_shape {
    int c, h, w;
} gn_shape;

static inline size_t gn_shape_size(gn_shape s) { return (size_t)s.c * (size_t)s.h * (size_t)s.w; }

typedef enum gn_act {
    GN_ACT_LINEAR,
    GN_ACT_RELU,
    GN_ACT_LEAKY, /* slope 0.1, as darknet */
    GN_ACT_LOGISTIC,
    GN_ACT_TANH,
    GN_ACT_RAMP,  /* darknet's ramp: x*(x>0) + 0.1x, i.e. 1.1x above 0, 0.1x below */
    GN_ACT_RELU6, /* min(max(x, 0), 6), as torch.nn.ReLU6 (MobileNetV2) */
} gn_act;

/* One named tensor of a layer: a slice of net->params (trainable) or net->state. */
typedef struct gn_param {
    char name[32];  /* "weight", "bias", "bn.weight", "bn.running_mean", ... */
    int trainable;  /* 1: in params/grads/momentum; 0: in state */
    size_t offset;  /* in floats, from the start of the layer's slice of that buffer */
    size_t count;
    int ndim;
    int shape[4];   /* PyTorch's shape: conv [out,in/groups,kh,kw], linear [out,in] */
} gn_param;

/* Where time goes inside a layer, for `gemmnet bench --layers`. When ctx->prof is non-NULL, a
 * kernel that wants its parts seen adds the wall-clock seconds of those parts here (timed
 * outside parallel regions, so threads never race on the sums); the profiler reads them
 * around each layer call. Everything not listed is "the rest". */
typedef struct gn_prof {
    double im2col; /* im2col and col2im */
    double gemm;   /* cblas_sgemm calls */
} gn_prof;

/* What a forward or backward call may need beyond the layer itself. */
typedef struct gn_ctx {
    int batch;          /* images in this mini-batch (<= the planned batch) */
    int train;          /* 1: training mode (batch statistics, dropout); 0: evaluation */
    float loss_scale;   /* the loss gradient is multiplied by this (1/batch by default) */
    float *ws;          /* scratch shared by all layers, net->ws_floats long */
    uint64_t seed;      /* for layers that draw random numbers (dropout) */
    uint64_t step;      /* iteration, mixed into seed */
    gn_prof *prof;      /* NULL unless profiling */
    /* Backward hook (NULL: none): gn_net_backward_from calls on_backward(hook_user, i) right
     * after layer i's backward, in descending i. From then on the gradients of layers >= i
     * (their slices of net->grads) are final for this pass, so data-parallel training starts
     * their allreduce here while the earlier layers still compute. */
    void (*on_backward)(void *hook_user, int layer);
    void *hook_user;
    /* The classification loss ([softmax], docs/recipes.md). soft_targets: read the targets
     * (batch x classes, each row a distribution: mixup/cutmix) instead of the labels.
     * label_smoothing e: every target t becomes (1 - e) t + e/C (PyTorch's label_smoothing).
     * The trainer sets them for training; evaluation leaves both 0. */
    int soft_targets;
    float label_smoothing;
} gn_ctx;

typedef struct gn_layer gn_layer;

/* One table per layer type. */
typedef struct gn_layer_ops {
    const char *section; /* the cfg section name that selects this type */
    /* Reads the section's keys (every key it knows), fills the layer's inputs (in_idx). */
    int (*parse)(gn_layer *l, struct gn_cfg_section *s, struct gn_err *err);
    /* Given l->in[] shapes and l->batch: sets l->out, the parameter list, ws/save sizes, FLOPs. */
    int (*plan)(gn_layer *l, struct gn_err *err);
    /* Initial values of parameters and state (He/Xavier as PyTorch does). */
    void (*init)(gn_layer *l, uint64_t seed);
    void (*forward)(gn_layer *l, const gn_ctx *ctx);
    /* Adds dL/dx into l->dx[i] (where non-NULL) and dL/dW into l->grads. */
    void (*backward)(gn_layer *l, const gn_ctx *ctx);
    /* Optional: rewrites l->y for ctx->batch images, bit for bit as the last forward wrote it,
     * from what the layer saved (l->save) and its parameters; only called for layers whose
     * plan set recomputable (see GN_NET_RECOMPUTE). Such a layer's backward must not read its
     * own y: it is rebuilt only for consumers whose backward reads it. */
    void (*recompute)(gn_layer *l, const gn_ctx *ctx);
    void (*destroy)(gn_layer *l);
    /* Optional: the layer's settings as plain numbers (src/layers/describe.h), read by the
     * exporters (src/interop) after it was planned. */
    void (*describe)(const gn_layer *l, struct gn_layer_desc *d);
} gn_layer_ops;

struct gn_layer {
    const gn_layer_ops *ops;
    int index;
    struct gn_cfg_section *sec; /* its config section (keys, and file:line for messages) */

    int n_in;
    int in_idx[GN_MAX_INPUTS]; /* producing layer, or -1 for the net's input */
    gn_shape in[GN_MAX_INPUTS];
    gn_shape out;
    int batch;                 /* planned (maximum) mini-batch */
    int winograd;              /* [net] winograd= (0, 2 or 4): default for [convolutional] */
    /* Fine-tuning (docs/fine-tuning.md): a frozen layer runs no backward for its parameters,
     * takes no optimizer step, and its batch norm stays in evaluation mode; lr_mult scales the
     * learning rate of its parameters (1 by default). Set by the net from the config. */
    int frozen;
    float lr_mult;

    /* Wired by the net (or by a test, to run one layer alone). */
    const float *x[GN_MAX_INPUTS]; /* inputs, batch x in[i] */
    float *dx[GN_MAX_INPUTS];      /* their gradients; NULL where none is needed */
    float *y;                      /* output, batch x out */
    float *dy;                     /* gradient of the loss with respect to y */
    int last_use;                  /* highest index of a layer reading y (own index if none) */
    size_t dy_off;                 /* where dy lives in net->dacts (shared, see gn_net) */
    size_t y_off;                  /* where y lives in net->acts */
    int recomputable;              /* set by plan: ops->recompute can rebuild y */
    int transient;                 /* y is only kept while needed (GN_NET_RECOMPUTE) */
    int can_view;                  /* set by plan: y would equal x[0] (a one-input route) */
    int bwd_ignores_x;             /* set by plan: backward does not read the inputs' values */
    int rebuild_at;                /* transient: the backward step that rebuilds y (the last
                                    * consumer that reads it in backward), -1: none needs it */
    int read_until;                /* transient: the first such consumer (y dies after it) */
    int view_of;                   /* -1, or the layer whose y and dy this one shares
                                    * (GN_NET_RECOMPUTE); the net skips its forward and
                                    * backward */
    float *params, *grads;         /* this layer's slices of the flat buffers */
    float *state;
    float *save;                   /* private memory kept from forward for backward */

    gn_param par[GN_MAX_PARAMS];
    int n_par;
    size_t n_params;    /* trainable floats */
    size_t n_state;     /* non-trainable floats */
    size_t ws_floats;   /* scratch needed during forward/backward */
    size_t save_floats; /* private memory needed */
    double flops;       /* forward FLOPs per image (2 per multiply-add) */
    double flops_bwd;   /* backward FLOPs per image (data + weights) */

    /* Loss layers ([softmax], [cost]): targets set by the net before forward. */
    int is_loss;
    const int *labels;    /* class per image (softmax) */
    const float *targets; /* batch x out values (cost) */
    double loss;          /* mean over the batch, set by forward */

    void *impl; /* the layer type's own settings, owned by the layer */
};

/* The registry: the ops for a section name, or NULL. */
const gn_layer_ops *gn_layer_ops_find(const char *section);
/* The section names of every layer type (up to max of them); returns how many there are. */
size_t gn_layer_section_names(const char **names, size_t max);

/* Activations, shared by every layer that folds one in. */
int gn_act_parse(const char *name, gn_act *out);
const char *gn_act_name(gn_act a);

typedef struct gn_net {
    struct gn_cfg *cfg; /* not owned */
    int n_layers;
    gn_layer *layers;
    gn_shape in;
    int batch;          /* planned mini-batch */
    int loss_layer;     /* index of the last loss layer, or -1 */
    int n_classes;      /* outputs of the loss layer */

    float *params, *grads, *state;
    size_t n_params, n_state;
    unsigned flags;        /* GN_NET_* given to gn_net_plan_flags / gn_net_build_flags */
    /* Activation arena: every layer's y, n_acts floats. Without GN_NET_RECOMPUTE each y has
     * its own place, one after the other. With it, a recomputable layer's y is transient: it
     * lives in forward until its last consumer ran and again in backward from that consumer's
     * step (where it is rebuilt) to its own, sharing memory with buffers of other times. */
    float *acts;
    size_t n_acts;
    /* Gradient arena. A layer's dy is only alive in backward from its last consumer's backward
     * (which starts writing it) down to its own (which reads it last), so layers whose
     * lifetimes do not overlap share memory (dy_off); backward zeroes each dy just before its
     * first writer. n_dacts is the planned size, well under n_acts for deep nets. With
     * GN_NET_RECOMPUTE outputs and gradients are planned into one arena on one time axis:
     * dacts is acts and n_dacts is 0. */
    float *dacts;
    size_t n_dacts;
    float *ws;
    size_t ws_floats;
    float *save;
    size_t n_save;

    float *input;    /* batch x in, filled by the caller */
    float *dinput;   /* gradient w.r.t. the input (visualization), when asked for */
    int *labels;     /* batch */
    float *targets;  /* batch x n_classes, for regression losses */
    double flops;    /* forward FLOPs per image */
    double flops_bwd;
    uint64_t seen;   /* images the weights were trained on (darknet's `seen`; 0: unknown) */
} gn_net;

/* Flags for gn_net_plan_flags / gn_net_build_flags. GN_NET_RECOMPUTE: training memory saver.
 * Outputs of layers that can rebuild them (convolutions with batch norm: y = act(gamma xhat +
 * beta) from the saved xhat) are not kept between forward and backward; backward rebuilds each
 * just before the first consumer whose backward reads it (none for a max pool or a shortcut:
 * gn_layer.bwd_ignores_x), and the layer's own backward works from xhat. Outputs and gradients
 * are planned into one arena. A layer whose output is a copy of its input (a one-input [route])
 * becomes a view: it shares its input's y and dy and does no work. Results are bit-identical;
 * the cost is one pointwise pass per rebuilt output. Such a y is readable only while forward
 * still needs it, so visualization, tests that inspect inner layers, gn_net_zero_dacts and
 * gn_net_backward_from an inner layer need nets built without it. The last layer and the loss
 * layer always keep their output. The config can refuse it: [net] recompute=0 (default 1). */
#define GN_NET_RECOMPUTE 1u

/* Parses the layer sections of cfg (and net.width/height/channels/inputs), plans shapes for a
 * mini-batch of `batch` images, checks the planned memory against the limit (gn_net_check_memory:
 * GN_ENOMEM with the numbers, before anything large is allocated), allocates every buffer once,
 * and initializes the parameters from seed. cfg must outlive the net. */
int gn_net_build(gn_net **out, struct gn_cfg *cfg, int batch, uint64_t seed, struct gn_err *err);
void gn_net_free(gn_net **net);
/* Only the first half of gn_net_build: parses and plans every layer (shapes, sizes, FLOPs) but
 * allocates no buffers, so the memory a batch needs can be judged before committing to it.
 * Such a net can only be inspected and freed. */
int gn_net_plan(gn_net **out, struct gn_cfg *cfg, int batch, struct gn_err *err);
/* gn_net_plan / gn_net_build with GN_NET_* flags (the plain ones pass 0). */
int gn_net_plan_flags(gn_net **out, struct gn_cfg *cfg, int batch, unsigned flags,
                      struct gn_err *err);
int gn_net_build_flags(gn_net **out, struct gn_cfg *cfg, int batch, uint64_t seed,
                       unsigned flags, struct gn_err *err);
/* The memory limit for one net, in bytes: the environment variable GEMMNET_MAX_MEM (MiB, or with
 * a K/M/G suffix: 512M, 2G) if set and valid, else MemAvailable from /proc/meminfo; 0 if
 * neither is known (no check). */
double gn_net_memory_limit(void);
/* GN_ENOMEM "needs X MiB for batch B, the machine has Y MiB available" if the planned buffers of
 * net (a plan or a built net; with_momentum adds the SGD momentum) exceed gn_net_memory_limit. */
int gn_net_check_memory(const gn_net *net, int with_momentum, struct gn_err *err);
/* The same with extra_bytes more that the caller will allocate besides the net (training: the
 * data loaders' rings), named in the message as extra_what. */
int gn_net_check_memory_plus(const gn_net *net, int with_momentum, double extra_bytes,
                             const char *extra_what, struct gn_err *err);

/* Forward over the first ctx->batch images of net->input; returns the loss (0 without a loss
 * layer). */
double gn_net_forward(gn_net *net, const gn_ctx *ctx);
/* Backward from the loss layer; accumulates into net->grads (zero them with gn_net_zero_grads). */
void gn_net_backward(gn_net *net, const gn_ctx *ctx);
void gn_net_zero_grads(gn_net *net);
/* Backward from an arbitrary layer (visualization: the gradient of one unit with respect to
 * the input). The caller writes the seed into net->layers[layer].dy (every other dy is zeroed
 * here when its lifetime starts), then calls this; layers after `layer` are not run.
 * gn_net_zero_dacts zeroes the whole gradient arena (and dinput); not for nets built with
 * GN_NET_RECOMPUTE, whose gradients share memory with outputs (an assertion). */
void gn_net_zero_dacts(gn_net *net);
void gn_net_backward_from(gn_net *net, const gn_ctx *ctx, int layer);
/* A default context for the planned batch. */
gn_ctx gn_net_ctx(gn_net *net, int train);
/* The output of the last layer (batch x out). */
const float *gn_net_output(const gn_net *net);
gn_shape gn_net_out_shape(const gn_net *net);
/* Allocates net->dinput and wires it, so backward also gives dL/d(input) (visualization). */
int gn_net_enable_dinput(gn_net *net, struct gn_err *err);
/* Copies the flat buffers in and out: a layer's parameter p as a tensor. */
float *gn_param_data(const gn_layer *l, const gn_param *p);
/* "layers.<index>.<name>" for parameter p of layer l. */
void gn_param_full_name(const gn_layer *l, const gn_param *p, char *buf, size_t n);

/* Central finite differences against backward, for one wired layer: the loss is
 * L = sum_j r_j y_j (double) with fixed random r, or the layer's own loss for loss layers.
 * Checks up to max_checks elements of each input and each trainable parameter; points where
 * the difference quotient moves with the step size (ReLU at 0, pooling ties) are skipped. */
typedef struct gn_gradcheck {
    double max_err_dx;  /* worst |a - n| / max(|a|, |n|, 1e-2) over inputs */
    double max_err_dw;  /* same over parameters */
    int checked, skipped;
} gn_gradcheck;

int gn_gradcheck_layer(gn_layer *l, const gn_ctx *ctx, int max_checks, uint64_t seed,
                       gn_gradcheck *r, struct gn_err *err);

#endif
