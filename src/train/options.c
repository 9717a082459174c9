/* The training settings of a config: darknet's [net] keys, and gemmnet's [train], [eval] and
 * [checkpoint] sections. */
#include "gemmnet/gemmnet.h"
#include "gemmnet/optim.h"
#include "gemmnet/train.h"

#include <string.h>

void gn_train_accept_darknet_keys(gn_cfg *cfg)
{
    /* Keys of darknet's [net] that have no effect in gemmnet (recurrent nets, its image
     * counter); augmentation keys are taken by the data module. */
    static const char *const ignored[] = {"time_steps", "seen", NULL};
    gn_cfg_accept(gn_cfg_section_find(cfg, "net"), ignored);
}

int gn_train_opts_parse(gn_train_opts *o, gn_cfg *cfg, gn_err *err)
{
    static const char *const policies[] = {"constant", "step", "steps", "exp", "poly",
                                           "sigmoid", "random", "cosine", NULL};
    static const char *const on_error[] = {"stop", "continue", NULL};
    static const char *const optimizers[] = {"sgd", "adamw", NULL}; /* gn_optim_kind's order */
    static const char *const best_names[] = {"model", "ema", NULL};
    static const char *const tta_names[] = {"none", "flip", NULL}; /* GN_TTA_* */
    memset(o, 0, sizeof *o);
    gn_cfg_section *net = gn_cfg_section_find(cfg, "net");
    gn_cfg_section *tr = gn_cfg_section_find(cfg, "train");
    gn_cfg_section *ev = gn_cfg_section_find(cfg, "eval");
    gn_cfg_section *ck = gn_cfg_section_find(cfg, "checkpoint");
    gn_schedule *s = &o->sched;
    int rc, pol, n, adam, seed;
    double step_f;
#define TRY(x) if ((rc = (x))) return rc
    TRY(gn_cfg_int(net, "batch", 1, 1, 1 << 20, &o->batch, err));
    TRY(gn_cfg_int(net, "subdivisions", 1, 1, 1 << 20, &o->subdivisions, err));
    if (o->batch % o->subdivisions)
        return gn_cfg_error(gn_cfg_kv_find(net, "subdivisions"), net, err, GN_ECONFIG,
                            "batch=%d is not divisible by subdivisions=%d", o->batch,
                            o->subdivisions);
    TRY(gn_cfg_i64(net, "max_batches", 0, 0, INT64_MAX / 2, &o->max_batches, err));
    TRY(gn_cfg_int(net, "epochs", 0, 0, 1 << 24, &o->epochs, err));
    if (o->max_batches && o->epochs)
        return gn_cfg_error(gn_cfg_kv_find(net, "epochs"), net, err, GN_ECONFIG,
                            "give max_batches or epochs, not both");
    TRY(gn_cfg_float(net, "learning_rate", 0.001, 0, 1e6, &s->lr, err));
    TRY(gn_cfg_float(net, "learning_rate_min", 0, 0, 1e6, &s->lr_min, err));
    TRY(gn_cfg_enum(tr, "optimizer", optimizers, GN_OPTIM_SGD, &o->optimizer, err));
    TRY(gn_cfg_float(net, "momentum", 0.9, 0, 1, &o->momentum, err));
    /* AdamW's default weight decay is PyTorch's */
    TRY(gn_cfg_float(net, "decay", o->optimizer == GN_OPTIM_ADAMW ? 0.01 : 0.0001, 0, 1,
                     &o->decay, err));
    TRY(gn_cfg_float(tr, "norm_decay", o->decay, 0, 1, &o->norm_decay, err));
    TRY(gn_cfg_float(tr, "bias_decay", o->decay, 0, 1, &o->bias_decay, err));
    TRY(gn_cfg_float(tr, "beta1", 0.9, 0, 0.999999, &o->beta1, err));
    TRY(gn_cfg_float(tr, "beta2", 0.999, 0, 0.999999999, &o->beta2, err));
    TRY(gn_cfg_float(tr, "eps", 1e-8, 0, 1, &o->eps, err));
    TRY(gn_cfg_bool(tr, "amsgrad", 0, &o->amsgrad, err));
    if (o->optimizer != GN_OPTIM_ADAMW) {
        static const char *const adam_keys[] = {"beta1", "beta2", "eps", "amsgrad", NULL};
        for (int i = 0; adam_keys[i]; i++)
            if (gn_cfg_has(tr, adam_keys[i]))
                return gn_cfg_error(gn_cfg_kv_find(tr, adam_keys[i]), tr, err, GN_ECONFIG,
                                    "%s is a setting of optimizer=adamw, and this config "
                                    "trains with SGD", adam_keys[i]);
    }
    TRY(gn_cfg_float(tr, "clip_grad_norm", 0, 0, 1e30, &o->clip_grad_norm, err));
    TRY(gn_cfg_float(tr, "ema_decay", 0, 0, 1, &o->ema_decay, err));
    TRY(gn_cfg_int(tr, "ema_every", 1, 1, 1 << 30, &o->ema_every, err));
    TRY(gn_cfg_bool(tr, "ema_warmup", 0, &o->ema_warmup, err));
    TRY(gn_cfg_bool(tr, "ema_eval", o->ema_decay > 0, &o->ema_eval, err));
    TRY(gn_cfg_enum(ck, "best", best_names, o->ema_eval, &o->best_ema, err));
    if (o->ema_decay == 0) {
        static const char *const ema_keys[] = {"ema_every", "ema_warmup", "ema_eval", NULL};
        for (int i = 0; ema_keys[i]; i++)
            if (gn_cfg_has(tr, ema_keys[i]))
                return gn_cfg_error(gn_cfg_kv_find(tr, ema_keys[i]), tr, err, GN_ECONFIG,
                                    "%s needs the EMA of the weights: set ema_decay (e.g. "
                                    "0.9998)", ema_keys[i]);
        if (o->best_ema)
            return gn_cfg_error(gn_cfg_kv_find(ck, "best"), ck, err, GN_ECONFIG,
                                "best=ema needs the EMA of the weights: set [train] ema_decay");
    }
    TRY(gn_cfg_i64(tr, "warmup", 0, 0, INT64_MAX / 2, &s->warmup, err));
    TRY(gn_cfg_float(tr, "warmup_epochs", 0, 0, 1e9, &o->warmup_epochs, err));
    if (s->warmup && o->warmup_epochs > 0)
        return gn_cfg_error(gn_cfg_kv_find(tr, "warmup_epochs"), tr, err, GN_ECONFIG,
                            "give warmup (iterations) or warmup_epochs, not both");
    TRY(gn_cfg_float(tr, "warmup_start", 0.01, 1e-12, 1, &s->warmup_start, err));
    TRY(gn_cfg_bool(net, "nesterov", 0, &o->nesterov, err));
    if (o->nesterov && o->momentum <= 0)
        return gn_cfg_error(gn_cfg_kv_find(net, "nesterov"), net, err, GN_ECONFIG,
                            "Nesterov momentum needs momentum > 0");
    TRY(gn_cfg_bool(net, "adam", 0, &adam, err));
    if (adam)
        return gn_cfg_error(gn_cfg_kv_find(net, "adam"), net, err, GN_ENOTSUP,
                            "darknet's Adam is not supported; for torch's AdamW set [train] "
                            "optimizer=adamw");
    TRY(gn_cfg_enum(net, "policy", policies, GN_POLICY_CONSTANT, &pol, err));
    s->policy = (gn_policy)pol;
    TRY(gn_cfg_float(net, "gamma", 1, -1e6, 1e6, &s->gamma, err));
    TRY(gn_cfg_float(net, "power", 4, 0, 1e3, &s->power, err));
    TRY(gn_cfg_float(net, "scale", 1, 0, 1e6, &s->scale, err));
    TRY(gn_cfg_float(net, "step", 1, 1, 1e15, &step_f, err));
    s->step = (int64_t)step_f;
    TRY(gn_cfg_i64(net, "burn_in", 0, 0, INT64_MAX / 2, &s->burn_in, err));
    int steps[GN_MAX_STEPS];
    TRY(gn_cfg_int_list(net, "steps", steps, GN_MAX_STEPS, &s->n_steps, err));
    for (int i = 0; i < s->n_steps; i++) s->steps[i] = steps[i];
    TRY(gn_cfg_float_list(net, "scales", s->scales, GN_MAX_STEPS, &n, err));
    if (s->policy == GN_POLICY_STEPS && n != s->n_steps)
        return gn_cfg_error(gn_cfg_kv_find(net, gn_cfg_has(net, "scales") ? "scales" : "policy"),
                            net, err, GN_ECONFIG, "policy=steps needs as many scales (%d) as "
                            "steps (%d)", n, s->n_steps);
    for (int i = 1; i < s->n_steps; i++)
        if (s->steps[i] < s->steps[i - 1])
            return gn_cfg_error(gn_cfg_kv_find(net, "steps"), net, err, GN_ECONFIG,
                                "steps must not decrease");
    TRY(gn_cfg_int(tr, "seed", 1, 0, 2147483647, &seed, err));
    o->seed = (uint64_t)seed;
    s->seed = o->seed;
    TRY(gn_cfg_int(tr, "log_every", 10, 1, 1 << 30, &o->log_every, err));
    TRY(gn_cfg_float(tr, "label_smoothing", 0, 0, 1, &o->label_smoothing, err));
    TRY(gn_cfg_bool(tr, "batch_per_rank", 0, &o->batch_per_rank, err));
    TRY(gn_cfg_bool(tr, "sync_bn", 0, &o->sync_bn, err));
    TRY(gn_cfg_float(tr, "mpi_timeout", 600, 0, 1e9, &o->mpi_timeout, err));
    TRY(gn_cfg_float(tr, "bucket_mb", 8, 0.001, 1e6, &o->bucket_mb, err));
    TRY(gn_cfg_i64(ev, "every", 0, 0, INT64_MAX / 2, &o->eval_every, err));
    TRY(gn_cfg_bool(ev, "epoch", ev && !gn_cfg_has(ev, "every"), &o->eval_epoch, err));
    TRY(gn_cfg_enum(ev, "tta", tta_names, GN_TTA_NONE, &o->eval_tta, err));
    TRY(gn_cfg_i64(ck, "every", 0, 0, INT64_MAX / 2, &o->ckpt_every, err));
    TRY(gn_cfg_float(ck, "minutes", 0, 0, 1e9, &o->ckpt_minutes, err));
    TRY(gn_cfg_int(ck, "keep", 3, 0, 1 << 20, &o->ckpt_keep, err));
    TRY(gn_cfg_enum(ck, "on_error", on_error, 0, &o->ckpt_on_error, err));
#undef TRY
    if (!o->max_batches && !o->epochs) o->epochs = 1;
    return GN_OK;
}
