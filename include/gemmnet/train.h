/* Training: learning-rate schedules, SGD, and the training loop with evaluation, checkpoints
 * and exact resume. */
#ifndef GEMMNET_TRAIN_H
#define GEMMNET_TRAIN_H

#include <stddef.h>
#include <stdint.h>

struct gn_cfg;
struct gn_err;

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
    int64_t max_batches;
    uint64_t seed;       /* for the random policy */
} gn_schedule;

/* The learning rate for iteration iter (0-based: the iteration about to run). */
double gn_schedule_lr(const gn_schedule *s, int64_t iter);

/* One SGD step over n parameters, as PyTorch writes it:
 *   g = dw + decay*w;  v = momentum*v + g;  w -= lr * (nesterov ? g + momentum*v : v) */
void gn_sgd_step(float *restrict w, float *restrict v, const float *restrict dw, size_t n,
                 float lr, float momentum, float decay, int nesterov);

typedef struct gn_train_opts {
    int batch;           /* images per iteration (the SGD batch) */
    int subdivisions;    /* mini-batches per iteration (gradient accumulation) */
    int64_t max_batches; /* iterations; 0 = from epochs */
    int epochs;
    gn_schedule sched;
    double momentum, decay;
    int nesterov;
    uint64_t seed;
    /* [train] */
    int log_every;       /* log line every N iterations when not on a terminal */
    /* [eval] */
    int64_t eval_every;  /* iterations; 0 = never (unless eval_epoch) */
    int eval_epoch;      /* evaluate at the end of every epoch */
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

#endif
