/* Training: learning-rate schedules, SGD, and the training loop with evaluation, checkpoints
 * and exact resume. */
#ifndef GEMMNET_TRAIN_H
#define GEMMNET_TRAIN_H

#include <stddef.h>
#include <stdint.h>

struct gn_cfg;
struct gn_err;
struct gn_net;
struct gn_ctx;

/* darknet's policies (same names and meaning) plus cosine. */
typedef enum gn_policy {
    GN_POLICY_CONSTANT,
    GN_POLICY_STEP,    /* lr * scale^(floor(iter/step)) */
    GN_POLICY_STEPS,   /* lr * product of scales[i] for every steps[i] <= iter */
    GN_POLICY_EXP,     /* lr * gamma^iter */
    GN_POLICY_POLY,    /* lr * (1 - iter/max_batches)^power */
    GN_POLICY_SIGMOID, /* lr / (1 + exp(gamma*(iter - step))) */
    GN_POLICY_RANDOM,  /* lr * u^power, u uniform from (seed, iter) */
    GN_POLICY_COSINE,  /* lr_min + (lr - lr_min)/2 * (1 + cos(pi*iter/max_batches)) */
} gn_policy;

#define GN_MAX_STEPS 64

typedef struct gn_schedule {
    gn_policy policy;
    double lr, lr_min, gamma, power, scale;
    int64_t step;
    int64_t steps[GN_MAX_STEPS];
    float scales[GN_MAX_STEPS];
    int n_steps;
    int64_t burn_in;     /* warm-up: lr * (iter/burn_in)^power for iter < burn_in (darknet) */
    int64_t warmup;      /* linear warm-up (torch's LinearLR): the policy's lr times
                          * start + (1 - start) * iter/warmup for iter < warmup */
    double warmup_start;

    int64_t max_batches;
    uint64_t seed;       /* for the random policy */
} gn_schedule;

/* The learning rate for iteration iter (0-based: the iteration about to run). */
double gn_schedule_lr(const gn_schedule *s, int64_t iter);

/* One SGD step over n parameters, as PyTorch writes it:
 *   g = dw + decay*w;  v = momentum*v + g;  w -= lr * (nesterov ? g + momentum*v : v) */
void gn_sgd_step(float *restrict w, float *restrict v, const float *restrict dw, size_t n,
                 float lr, float momentum, float decay, int nesterov);

/* The same step folded into backward, for a step of one mini-batch on one rank: as each layer's
 * gradients become final (gn_ctx.on_backward), its parameters take the step above and its
 * gradients are zeroed in the same pass. gn_sgd_fused_begin sets the hook in ctx; call
 * gn_net_backward with it, then gn_sgd_fused_finish. The arithmetic per parameter is
 * gn_sgd_step's; afterwards every gradient is zero, so the next step needs no
 * gn_net_zero_grads (one pass over the 47 MB of ResNet-18's gradients less per step). */
typedef struct gn_sgd_fused {
    struct gn_net *net;
    float *velocity;
    float lr, momentum, decay;
    int nesterov;
    size_t hi; /* parameters [hi, n_params) have taken their step */
} gn_sgd_fused;
void gn_sgd_fused_begin(gn_sgd_fused *s, struct gn_net *net, float *velocity, float lr,
                        float momentum, float decay, int nesterov, struct gn_ctx *ctx);
void gn_sgd_on_backward(void *user, int layer);
void gn_sgd_fused_finish(gn_sgd_fused *s);

typedef struct gn_train_opts {
    int batch;           /* images per iteration (the SGD batch) */
    int subdivisions;    /* mini-batches per iteration (gradient accumulation) */
    int64_t max_batches; /* iterations; 0 = from epochs */
    int epochs;
    gn_schedule sched;
    double momentum, decay;
    int nesterov;
    /* [train] optimizer and recipe elements (docs/training.md, gemmnet/optim.h) */
    int optimizer;                 /* gn_optim_kind */
    double beta1, beta2, eps;      /* AdamW */
    int amsgrad;
    double norm_decay, bias_decay; /* weight decay of batch-norm weights / of biases */
    double warmup_epochs;          /* warm-up in epochs (turned into sched.warmup) */
    double clip_grad_norm;         /* 0: off */
    double ema_decay;              /* 0: no EMA of the weights */
    int ema_every, ema_warmup, ema_eval;
    int best_ema;                  /* [checkpoint] best=ema: best.safetensors holds the EMA */
    uint64_t seed;
    /* [train] */
    int log_every;       /* log line every N iterations when not on a terminal */
    double label_smoothing; /* the training loss's (PyTorch's label_smoothing; docs/recipes.md) */
    /* [train], data-parallel (docs/distributed.md); no effect in a single process */
    int batch_per_rank;  /* 0: batch is the global batch split over ranks; 1: per rank */
    int sync_bn;         /* 1: average non-trainable state over ranks before eval/checkpoint */
    double mpi_timeout;  /* seconds one collective may wait before the job is aborted; 0 off */
    double bucket_mb;    /* gradient allreduce bucket size in MB */
    /* [eval] */
    int64_t eval_every;  /* iterations; 0 = never (unless eval_epoch) */
    int eval_epoch;      /* evaluate at the end of every epoch */
    int eval_tta;        /* GN_TTA_NONE or GN_TTA_FLIP (gn_evaluate) */
    /* [checkpoint] */
    int64_t ckpt_every;  /* iterations; 0 = off */
    double ckpt_minutes; /* 0 = off */
    int ckpt_keep;       /* numbered checkpoints kept */
    int ckpt_on_error;   /* 0 stop, 1 continue (and retry at the next save point) */
} gn_train_opts;

/* Reads the training keys of [net] (darknet's) and gemmnet's [train], [eval], [checkpoint]. */
int gn_train_opts_parse(gn_train_opts *o, struct gn_cfg *cfg, struct gn_err *err);
/* Accepts (marks read) darknet [net] keys gemmnet ignores, so shipped darknet configs load. */
void gn_train_accept_darknet_keys(struct gn_cfg *cfg);

/* ---- the training loop ---- */

struct gn_loader;

enum { GN_LOG_INFO, GN_LOG_WARN, GN_LOG_PROGRESS };

typedef struct gn_train_args {
    const char *out_dir;      /* checkpoints, metrics.csv, curves.svg */
    const char *resume;       /* NULL, "auto" (DIR/last.safetensors if present) or a path */
    const char *weights;      /* start from these weights (fine-tuning) */
    int skip_mismatch;        /* with weights: skip tensors whose shape differs */
    int overwrite;            /* replace the run out_dir holds (else such a run is refused) */
    int out_default;          /* out_dir is a default name: if it is in use or holds a run,
                               * train into the first free out_dir-2, out_dir-3, ... */
    int threads;              /* 0: all cores */
    int progress_interactive; /* 1: GN_LOG_PROGRESS lines are a live status line */
    /* Where messages go (the library never prints): kind is GN_LOG_*. */
    void (*log)(void *user, int kind, const char *line);
    void *user;
    /* Polled between iterations; when non-zero the run checkpoints and returns GN_EINTR. */
    volatile int *stop;
} gn_train_args;

typedef struct gn_eval_result {
    int64_t images;
    double loss;
    double top1, top5;   /* fractions; < 0 when not a classification net */
    int classes;
    int64_t *confusion;  /* classes x classes (true row, predicted column), or NULL */
} gn_eval_result;

typedef struct gn_train_result {
    int64_t iters;       /* iterations done in total (including before a resume) */
    int64_t start_iter;
    double epochs;       /* epochs done, fractional */
    double train_loss;   /* smoothed */
    int has_val;
    gn_eval_result val;
    double img_per_s;    /* training images per second over this run */
    double seconds;
    int64_t bad_files;   /* unreadable images skipped, training and validation (this rank) */
    char last_path[4096];
    char best_path[4096];
    char out_dir[4096];  /* the directory used (out_dir, or out_dir-N with out_default) */
} gn_train_result;

/* Trains the network cfg describes (the config's [net], [data], [train], [eval] and
 * [checkpoint]); see docs/training.md. Returns GN_EINTR after a clean stop on request. The
 * output directory is locked for the run, and one holding another run is refused unless the
 * run resumes or overwrites it (src/train/rundir.h). */
int gn_train(struct gn_cfg *cfg, const gn_train_args *args, gn_train_result *res,
             struct gn_err *err);

/* Test-time augmentation of gn_evaluate and `gemmnet predict` ([eval] tta=). */
enum { GN_TTA_NONE, GN_TTA_FLIP };
/* Forward over the first ctx->batch images of net->input, with tta: returns the loss and sets
 * *out to the net's outputs (batch x n_classes). GN_TTA_FLIP also runs the images mirrored left
 * to right (net->input is left mirrored): *out is then mean, the mean of the two outputs (the
 * caller's buffer of net->batch x n_classes floats), and the loss the mean of the two losses. */
double gn_eval_forward(struct gn_net *net, const struct gn_ctx *ctx, int tta, float *mean,
                      const float **out);
/* Evaluates net over one pass of a validation loader (evaluation mode). With want_confusion
 * the result holds a confusion matrix (free with gn_eval_result_free). With GN_TTA_FLIP a
 * classifier also sees every image mirrored left to right: top-1, top-5 and the confusion
 * matrix come from the mean of the two outputs, the loss is the mean of the two losses. */
int gn_evaluate(struct gn_net *net, struct gn_loader *val, int want_confusion, int tta,
                gn_eval_result *r, struct gn_err *err);
void gn_eval_result_free(gn_eval_result *r);

/* Writes DIR/curves.svg from DIR/metrics.csv: loss and accuracy against iterations. */
int gn_plot_metrics(const char *dir, struct gn_err *err);

#endif
