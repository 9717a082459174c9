/* The training loop: mini-batches from the loader, forward/backward with gradient accumulation
 * over subdivisions, the optimizer's step (gemmnet/optim.h; folded into backward when there is
 * one mini-batch on one rank), evaluation, metrics, and checkpoints that let a run resume
 * exactly where it stopped.
 *
 * gn_train reads as its steps: setup (claim_out_dir, setup_ranks, the memory check, the net,
 * setup_data, setup_outputs, start_point), then per iteration: iteration() = forward_backward per mini-batch (fetch,
 * forward, backward), reduce (data-parallel), the optimizer's update; then log_progress,
 * maybe_evaluate, maybe_checkpoint; finish at the end.
 *
 * Exact resume: every random choice is a pure function of (seed, counters) - the data order
 * and augmentation of (seed, epoch, sample), dropout of (seed, step) - so a checkpoint needs
 * only the weights, batch-norm statistics, momentum, the iteration and the loader's position.
 * For the same thread count the resumed run performs the same arithmetic in the same order.
 *
 * Data-parallel (gemmnet/dist.h, docs/distributed.md): every rank runs this loop on its share
 * of each global batch; gradients are summed over ranks in buckets started from the backward
 * hook, so communication overlaps the rest of the backward pass. Each rank scales the loss
 * gradient by 1/global batch, so the sum is the single-process mean gradient. Rank 0 alone
 * writes checkpoints, metrics and log lines; decisions that must agree (stop, checkpoint by
 * time, non-finite loss) travel in one small allreduce per iteration. */
#include "gemmnet/gemmnet.h"
#include "gemmnet/checkpoint.h"
#include "gemmnet/data.h"
#include "gemmnet/dist.h"
#include "gemmnet/interop.h"
#include "gemmnet/optim.h"
#include "gemmnet/train.h"
#include "core/util.h"
#include "train/rundir.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct trainer {
    gn_cfg *cfg;
    const gn_train_args *args;
    gn_train_opts o;
    gn_data_opts d;
    gn_net *net;
    gn_loader *train, *val;
    gn_optim *opt;
    gn_ema *ema;         /* NULL: no EMA of the weights */
    int mini;            /* images per mini-batch (on this rank) */
    int global;          /* images per iteration over all ranks */
    int rank, nranks;
    size_t bucket;       /* gradient floats per allreduce bucket */
    size_t grad_hi;      /* grads[grad_hi..n_params) are already being summed */
    int grad_rc;         /* first error of the backward hook */
    int grads_zero;      /* net->grads are all zero (the folded SGD step left them so) */
    double t_wait;       /* seconds spent waiting for the gradient sums after backward */
    int has_val;         /* a validation split is configured (the same on every rank) */
    int val_sharded;     /* each rank evaluates its share (else rank 0 evaluates it all) */
    gn_err grad_err;
    int classify;
    int64_t iter;        /* iterations done */
    int64_t iters_per_epoch;
    double smooth_loss;
    double best;         /* best validation top-1 (or -loss for regression); -inf if none */
    double last_save;    /* gn_now() of the last checkpoint */
    char *cfg_text;
    char net_hash[32];
    FILE *metrics;
    char path_last[4096], path_best[4096], path_metrics[4096 + 16];
    int resumed;         /* this run started from a checkpoint */
    /* this run's progress, for the log lines and the result */
    double t_start, t_train, t_log, t_progress; /* gn_now() values; t_train: seconds training */
    int64_t images_run, images_log;             /* since the start, since the last log row */
    double wait_log;                            /* loader wait seconds at the last log row */
    int64_t epoch_prev;                         /* the loader's epoch after the last iteration */
    gn_eval_result last_eval;
    int64_t last_eval_iter;                     /* -1: none yet */
    gn_rundir rundir;      /* the locked output directory */
    gn_train_args run_args; /* args with out_dir = rundir.dir */
} trainer;

/* What one iteration leaves for the steps after it. */
typedef struct iter_result {
    float lr;            /* the learning rate it used */
    double loss;         /* mean over its mini-batches (and ranks) */
    int stop;            /* data-parallel: a stop was requested on some rank */
    int ckpt_due;        /* data-parallel: rank 0's clock says a timed checkpoint is due */
    double t0;           /* gn_now() when it began */
    double grad_norm;    /* with clip_grad_norm: the gradients' norm before clipping */
} iter_result;

static void logf_(const trainer *t, int kind, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static void logf_(const trainer *t, int kind, const char *fmt, ...)
{
    if (!t->args->log || (t->rank && kind != GN_LOG_WARN)) return;
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (t->rank) {
        char b2[2100];
        snprintf(b2, sizeof b2, "rank %d: %s", t->rank, buf);
        t->args->log(t->args->user, kind, b2);
        return;
    }
    t->args->log(t->args->user, kind, buf);
}

static void join(char *out, size_t n, const char *dir, const char *name)
{
    int len = snprintf(out, n, "%s/%s", dir, name);
    GN_ASSERT(len >= 0 && (size_t)len < n); /* gn_rundir_claim refuses longer directory names */
}

/* ---- checkpoints ---- */

static char *class_names(const trainer *t)
{
    int k = t->classify ? gn_loader_classes(t->train) : 0;
    size_t len = 1;
    for (int i = 0; i < k; i++) len += strlen(gn_loader_class_name(t->train, i)) + 1;
    char *s = malloc(len), *p = s;
    if (!s) return NULL;
    *p = 0;
    for (int i = 0; i < k; i++) p += sprintf(p, "%s%s", i ? "\n" : "", gn_loader_class_name(t->train, i));
    return s;
}

/* The training state beside the weights: the optimizer's buffers and the EMA. x: room for
 * GN_OPTIM_MAX_STATE + 2 entries; returns how many. */
static int training_extras(const trainer *t, gn_ckpt_extra *x, char names[][48])
{
    int n = 0;
    for (int i = 0; i < t->opt->ops->n_state; i++) {
        snprintf(names[i], 48, "optimizer.%s", t->opt->ops->state_names[i]);
        x[n++] = (gn_ckpt_extra){names[i], t->opt->state[i], 0};
    }
    if (t->ema) {
        x[n++] = (gn_ckpt_extra){"ema", t->ema->params, 0};
        x[n++] = (gn_ckpt_extra){"ema", t->ema->state, 1};
    }
    return n;
}

/* ema_weights: the file holds the EMA as the network's weights and no training state (a best
 * checkpoint with [checkpoint] best=ema). */
static int save_checkpoint(trainer *t, const char *path, int ema_weights, gn_err *err)
{
    char iter[32], epoch[32], cursor[32], seed[32], best[64], smooth[64], lr[64], threads[16];
    char ranks[16], steps[32], ema_updates[32], seen[32], max_batches[32];
    snprintf(steps, sizeof steps, "%" PRId64, t->opt->steps);
    snprintf(ema_updates, sizeof ema_updates, "%" PRId64, t->ema ? t->ema->updates : 0);
    snprintf(ranks, sizeof ranks, "%d", t->nranks);
    snprintf(seen, sizeof seen, "%" PRIu64, t->net->seen);
    snprintf(max_batches, sizeof max_batches, "%" PRId64, t->o.max_batches);
    int64_t e, b;
    gn_loader_position(t->train, &e, &b);
    snprintf(iter, sizeof iter, "%" PRId64, t->iter);
    snprintf(epoch, sizeof epoch, "%" PRId64, e);
    snprintf(cursor, sizeof cursor, "%" PRId64, b);
    snprintf(seed, sizeof seed, "%" PRIu64, t->o.seed);
    snprintf(best, sizeof best, "%.17g", t->best);
    snprintf(smooth, sizeof smooth, "%.17g", t->smooth_loss);
    snprintf(lr, sizeof lr, "%.17g", gn_schedule_lr(&t->o.sched, t->iter));
    snprintf(threads, sizeof threads, "%d", gn_get_threads());
    char *classes = class_names(t);
    if (!classes) return gn_err_set(err, GN_ENOMEM, "out of memory");
    const gn_kv meta[] = {
        {"gemmnet_version", GN_VERSION},
        {"iteration", iter},
        {"max_batches", max_batches},
        {"seen", seen},
        {"input_convention", t->d.darknet_input ? "darknet" : "gemmnet"},
        {"epoch", epoch},
        {"batch_in_epoch", cursor},
        {"seed", seed},
        {"rng", "counter-based: every draw is a function of (seed, epoch, sample) or (seed, step)"},
        {"lr", lr},
        {"best_metric", best},
        {"smoothed_loss", smooth},
        {"threads", threads},
        {"ranks", ranks},
        {"net_hash", t->net_hash},
        {"config", t->cfg_text},
        {"classes", classes},
        {"optimizer", t->opt->ops->name},
        {"optimizer_steps", steps},
        {"weights", ema_weights ? "ema" : "model"},
        {"ema_updates", ema_updates}, /* last: left out without an EMA */
    };
    int n_meta = (int)(sizeof meta / sizeof meta[0]) - (t->ema ? 0 : 1);
    gn_ckpt_extra x[GN_OPTIM_MAX_STATE + 2];
    char names[GN_OPTIM_MAX_STATE][48];
    int n_x = ema_weights ? 0 : training_extras(t, x, names);
    if (ema_weights) gn_ema_swap(t->ema);
    int rc = gn_ckpt_save_extra(path, t->net, x, n_x, meta, n_meta, err);
    if (ema_weights) gn_ema_swap(t->ema);
    free(classes);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Keeps the newest `keep` numbered checkpoints ckpt-<iteration>.safetensors. */
static void prune_numbered(trainer *t)
{
    DIR *d = opendir(t->args->out_dir);
    if (!d) return;
    char *names[4096];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 4096) {
        size_t len = strlen(e->d_name);
        if (!strncmp(e->d_name, "ckpt-", 5) && len > 17 &&
            !strcmp(e->d_name + len - 12, ".safetensors")) {
            if (!(names[n] = gn_strdup(e->d_name))) break;
            n++;
        }
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    for (int i = 0; i < n; i++) {
        if (i < n - t->o.ckpt_keep) {
            char p[4096 + 300];
            snprintf(p, sizeof p, "%s/%s", t->args->out_dir, names[i]);
            unlink(p);
        }
        free(names[i]);
    }
}

/* Temporary files of a run that was killed while writing a checkpoint (the checkpoint they
 * would have replaced is intact). */
static void remove_stale_temps(trainer *t)
{
    DIR *d = opendir(t->args->out_dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".safetensors.tmp.")) {
            char p[4096 + 300];
            snprintf(p, sizeof p, "%s/%s", t->args->out_dir, e->d_name);
            if (unlink(p) == 0) logf_(t, GN_LOG_INFO, "removed %s, left by an interrupted run", p);
        }
    closedir(d);
}

/* Writes last (and a numbered and/or best checkpoint). With on_error=continue a failure is a
 * warning, except for the final checkpoint (final != 0): with no later save point to retry at,
 * the trained weights would be lost, so that is an error either way. */
static int checkpoint(trainer *t, int improved, int numbered, int final, gn_err *err)
{
    int rc = save_checkpoint(t, t->path_last, 0, err);
    if (!rc && numbered && t->o.ckpt_keep > 0) {
        char name[64], p[4200];
        snprintf(name, sizeof name, "ckpt-%08" PRId64 ".safetensors", t->iter);
        join(p, sizeof p, t->args->out_dir, name);
        rc = save_checkpoint(t, p, 0, err);
        if (!rc) prune_numbered(t);
    }
    if (!rc && improved) rc = save_checkpoint(t, t->path_best, t->o.best_ema, err);
    if (rc) {
        if (t->o.ckpt_on_error == 0) return gn_err_wrap(err, "checkpoint at iteration %" PRId64
                                                        " failed; the previous one is intact",
                                                        t->iter);
        if (final)
            return gn_err_wrap(err, "the final checkpoint (iteration %" PRId64 ") failed; the "
                               "previous one is intact", t->iter);
        logf_(t, GN_LOG_WARN, "checkpoint at iteration %" PRId64 " failed (%s); the previous "
              "one is intact; retrying at the next checkpoint", t->iter, err->msg);
        return GN_OK;
    }
    t->last_save = gn_now();
    return GN_OK;
}

/* ---- metrics.csv ---- */

static const char *metrics_header = "iter,epoch,loss,lr,img_per_s,data_wait,val_loss,val_top1,val_top5\n";

/* Opens metrics.csv for appending; when resuming, drops rows after the resumed iteration. */
static int open_metrics(trainer *t, int resumed, gn_err *err)
{
    if (resumed) {
        FILE *f = fopen(t->path_metrics, "r");
        if (f) {
            char tmp[4200];
            snprintf(tmp, sizeof tmp, "%s.tmp", t->path_metrics);
            FILE *o = fopen(tmp, "w");
            if (!o) {
                fclose(f);
                return gn_err_set(err, GN_EIO, "cannot write %s: %s", tmp, strerror(errno));
            }
            char line[1024];
            int first = 1;
            while (fgets(line, sizeof line, f)) {
                long long it = 0;
                if (first || (sscanf(line, "%lld,", &it) == 1 && it <= t->iter)) fputs(line, o);
                first = 0;
            }
            fclose(f);
            if (fclose(o) || rename(tmp, t->path_metrics))
                return gn_err_set(err, GN_EIO, "cannot rewrite %s", t->path_metrics);
            t->metrics = fopen(t->path_metrics, "a");
            if (!t->metrics) return gn_err_set(err, GN_EIO, "cannot open %s", t->path_metrics);
            return GN_OK;
        }
    }
    t->metrics = fopen(t->path_metrics, "w");
    if (!t->metrics)
        return gn_err_set(err, GN_EIO, "cannot write %s: %s", t->path_metrics, strerror(errno));
    fputs(metrics_header, t->metrics);
    fflush(t->metrics);
    return GN_OK;
}

static double epoch_now(const trainer *t)
{
    int64_t e, b;
    gn_loader_position(t->train, &e, &b);
    int64_t bpe = gn_loader_batches_per_epoch(t->train);
    return (double)e + (bpe ? (double)b / (double)bpe : 0.0);
}

/* ---- setup ---- */

static int check_outputs(trainer *t, gn_err *err)
{
    gn_shape out = gn_net_out_shape(t->net);
    int n_out = (int)gn_shape_size(out);
    if (t->net->loss_layer < 0)
        return gn_err_set(err, GN_ECONFIG, "%s: the network has no loss layer: end it with "
                          "[softmax] (classification) or [cost] (regression)", t->cfg->path);
    int k = gn_loader_classes(t->train);
    t->classify = k > 0;
    if (t->classify && k != n_out)
        return gn_err_set(err, GN_ESHAPE, "the training data has %d classes but the network "
                          "outputs %d values: set the last [connected] output=%d (or filters=)",
                          k, n_out, k);
    if (!t->classify && t->d.targets != n_out)
        return gn_err_set(err, GN_ESHAPE, "the data has %d targets but the network outputs %d "
                          "values", t->d.targets, n_out);
    return GN_OK;
}

/* The planning-time memory check for the whole run: the net with its momentum, and the
 * loaders' rings of prefetched batches (train, and val when there is one), before any of them
 * is allocated. */
static int check_memory(trainer *t, unsigned flags, gn_err *err)
{
    gn_net *plan = NULL;
    int rc = gn_net_plan_flags(&plan, t->cfg, t->mini, flags, err);
    if (rc) return rc;
    double ring = gn_loader_planned_bytes(&t->d, t->mini);
    if (gn_loader_has_split(&t->d, GN_SPLIT_VAL)) ring *= 2; /* val: the same batch and ring */
    rc = gn_net_check_memory_plus(plan, 1, ring, "the data loaders' prefetch rings", err);
    gn_net_free(&plan);
    return rc;
}

static void report_config_changes(trainer *t, const char *old)
{
    /* Lines of the resolved configs that differ: hyperparameters changed for the resumed run. */
    int shown = 0;
    const char *p = t->cfg_text;
    while (*p && shown < 20) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        char line[512];
        if (len && len < sizeof line && p[0] != '[') {
            memcpy(line, p, len);
            line[len] = 0;
            const char *q = strstr(old, line);
            int found = q && (q == old || q[-1] == '\n') && (q[len] == '\n' || q[len] == 0);
            if (!found) {
                logf_(t, GN_LOG_WARN, "changed since the checkpoint (used now): %s", line);
                shown++;
            }
        }
        p = nl ? nl + 1 : p + len;
    }
}

static int resume(trainer *t, const char *path, gn_err *err)
{
    gn_ckpt *c = NULL;
    int rc = gn_ckpt_open(&c, path, err);
    if (rc) return gn_err_wrap(err, "cannot resume from %s", path);
    const char *hash = gn_ckpt_meta(c, "net_hash");
    const char *it = gn_ckpt_meta(c, "iteration"), *ep = gn_ckpt_meta(c, "epoch");
    const char *cur = gn_ckpt_meta(c, "batch_in_epoch");
    if (!hash || !it || !ep || !cur) {
        rc = gn_err_set(err, GN_EFORMAT, "%s has no training state (iteration, epoch, cursor, "
                        "net_hash): use --weights to start from its weights", path);
        goto done;
    }
    if (strcmp(hash, t->net_hash)) {
        const char *old = gn_ckpt_meta(c, "config");
        rc = gn_err_set(err, GN_ECONFIG, "%s was written for another network (network hash %s, "
                        "this config's is %s); resuming it with this config is refused%s",
                        path, hash, t->net_hash,
                        old ? ": compare the layer sections with the config stored in the "
                              "checkpoint's metadata" : "");
        goto done;
    }
    const char *weights = gn_ckpt_meta(c, "weights");
    if (weights && !strcmp(weights, "ema")) {
        rc = gn_err_set(err, GN_ECONFIG, "%s holds the EMA of the weights ([checkpoint] "
                        "best=ema) and no training state: resume from last.safetensors, or start "
                        "from these weights with --weights", path);
        goto done;
    }
    const char *opt = gn_ckpt_meta(c, "optimizer");
    if (!opt) opt = "sgd"; /* checkpoints before there was a choice */
    if (strcmp(opt, t->opt->ops->name)) {
        rc = gn_err_set(err, GN_ECONFIG, "%s was written by a run with optimizer=%s, this "
                        "config has optimizer=%s: resuming would start the optimizer's state "
                        "afresh; refused (use --weights to start from its weights)", path, opt,
                        t->opt->ops->name);
        goto done;
    }
    const char *ema_updates = gn_ckpt_meta(c, "ema_updates");
    gn_ckpt_extra x[GN_OPTIM_MAX_STATE + 2];
    char names[GN_OPTIM_MAX_STATE][48];
    int n_x = training_extras(t, x, names);
    if (t->ema && !ema_updates) n_x -= 2; /* EMA switched on now: it starts below */
    if ((rc = gn_ckpt_load_extra(c, t->net, x, n_x, GN_CKPT_STRICT, err))) goto done;
    const char *steps = gn_ckpt_meta(c, "optimizer_steps");
    t->iter = strtoll(it, NULL, 10);
    t->opt->steps = steps ? strtoll(steps, NULL, 10) : t->iter;
    if (t->ema && ema_updates) {
        t->ema->updates = strtoll(ema_updates, NULL, 10);
    } else if (t->ema) {
        gn_ema_reset(t->ema);
        logf_(t, GN_LOG_WARN, "%s has no EMA of the weights: the EMA starts from its weights "
              "now", path);
    }
    const char *seen = gn_ckpt_meta(c, "seen");
    if (seen) t->net->seen = strtoull(seen, NULL, 10);
    int64_t e = strtoll(ep, NULL, 10), b = strtoll(cur, NULL, 10);
    const char *best = gn_ckpt_meta(c, "best_metric"), *sm = gn_ckpt_meta(c, "smoothed_loss");
    if (best) t->best = strtod(best, NULL);
    if (sm) t->smooth_loss = strtod(sm, NULL);
    const char *threads = gn_ckpt_meta(c, "threads");
    if (threads && atoi(threads) != gn_get_threads())
        logf_(t, GN_LOG_WARN, "the checkpoint was written with %s threads, this run uses %d: "
              "the result will not be bit-identical to an uninterrupted run", threads,
              gn_get_threads());
    const char *ranks = gn_ckpt_meta(c, "ranks");
    int ck_ranks = ranks ? atoi(ranks) : 1;
    if (ck_ranks != t->nranks)
        logf_(t, GN_LOG_WARN, "the checkpoint was written by %d rank%s, this run has %d: %s",
              ck_ranks, ck_ranks == 1 ? "" : "s", t->nranks,
              t->o.batch_per_rank ? "the global batch, and with it the data order, changes"
                                  : "each rank's share of the batch (batch-norm statistics, "
                                    "dropout masks) changes");
    const char *old = gn_ckpt_meta(c, "config");
    if (old) report_config_changes(t, old);
    if ((rc = gn_loader_seek(t->train, e, b))) {
        rc = gn_err_set(err, rc, "cannot seek the training data to epoch %" PRId64 " batch %"
                        PRId64, e, b);
        goto done;
    }
    logf_(t, GN_LOG_INFO, "resumed from %s at iteration %" PRId64 " (epoch %" PRId64 ", batch %"
          PRId64 ")", path, t->iter, e, b);
done:
    gn_ckpt_close(&c);
    return rc;
}

/* Fine-tuning: which layers are frozen (stopbackward=, train.freeze=) and which have their
 * own learning rate (lr_mult=). */
static void log_finetune(trainer *t)
{
    const gn_net *net = t->net;
    size_t frozen_params = 0;
    int n_frozen = 0;
    for (int i = 0; i < net->n_layers; i++)
        if (net->layers[i].frozen) {
            n_frozen++;
            frozen_params += net->layers[i].n_params;
        }
    if (n_frozen)
        logf_(t, GN_LOG_INFO, "frozen: %d of %d layers (%zu parameters: no backward, no update, "
              "batch norm in evaluation mode); %zu parameters train", n_frozen, net->n_layers,
              frozen_params, net->n_params - frozen_params);
    for (int i = 0; i < net->n_layers; i++)
        if (net->layers[i].lr_mult != 1.0f && net->layers[i].n_params && !net->layers[i].frozen)
            logf_(t, GN_LOG_INFO, "layer %d [%s]: learning rate x %g (lr_mult)", i,
                  net->layers[i].ops->section, (double)net->layers[i].lr_mult);
}

/* Whether gn_ckpt_load_net skipped the tensor `name` (its line starts with "name: "). */
static int was_skipped(const gn_ckpt *c, const char *name)
{
    size_t n = strlen(name);
    for (int i = 0; i < gn_ckpt_n_skipped(c); i++) {
        const char *s = gn_ckpt_skipped(c, i);
        if (!strncmp(s, name, n) && s[n] == ':') return 1;
    }
    return 0;
}

/* --weights with --skip-mismatch: per layer, the tensors taken from the file and those that
 * kept this network's initialization (their shapes differ; for a darknet file, the layers from
 * first_missing on, where the file ended), with their shapes. */
static void list_reloaded(trainer *t, const gn_ckpt *c, int first_missing)
{
    int counts[2] = {0, 0};
    for (int i = 0; i < t->net->n_layers; i++) {
        const gn_layer *l = &t->net->layers[i];
        for (int skipped = 0; skipped < 2; skipped++) {
            char line[1024] = "";
            size_t len = 0;
            for (int j = 0; j < l->n_par; j++) {
                const gn_param *p = &l->par[j];
                char name[160];
                gn_param_full_name(l, p, name, sizeof name);
                int was = was_skipped(c, name) || (first_missing >= 0 && i >= first_missing);
                if (was != skipped) continue;
                counts[skipped]++;
                char shape[64] = "";
                for (int d = 0, k = 0; d < p->ndim; d++)
                    k += snprintf(shape + k, sizeof shape - (size_t)k, "%s%d", d ? "," : "",
                                  p->shape[d]);
                if (len < sizeof line)
                    len += (size_t)snprintf(line + len, sizeof line - len, "%s %s [%s]",
                                            len ? "," : "", p->name, shape);
            }
            if (len)
                logf_(t, GN_LOG_INFO, "--weights: layer %d [%s] %s:%s", i, l->ops->section,
                      skipped ? "re-initialised" : "reloaded", line);
        }
    }
    logf_(t, GN_LOG_INFO, "--weights: %d tensors reloaded, %d re-initialised", counts[0],
          counts[1]);
}

static int load_weights(trainer *t, gn_err *err)
{
    gn_ckpt *c = NULL;
    gn_darknet_info dk;
    gn_weights_kind kind;
    int rc = gn_weights_load(t->net, t->args->weights,
                             t->args->skip_mismatch ? GN_CKPT_SKIP_MISMATCH : GN_CKPT_STRICT, &c,
                             &kind, &dk, err);
    if (!rc) {
        for (int i = 0; i < gn_ckpt_n_skipped(c); i++)
            logf_(t, GN_LOG_WARN, "--weights: %s", gn_ckpt_skipped(c, i));
        if (kind == GN_WEIGHTS_DARKNET && dk.first_missing >= 0)
            logf_(t, GN_LOG_WARN, "--weights: the darknet file ends before layer %d; layers %d "
                  "to %d keep their initialization", dk.first_missing, dk.first_missing,
                  t->net->n_layers - 1);
        if (t->args->skip_mismatch)
            list_reloaded(t, c, kind == GN_WEIGHTS_DARKNET ? dk.first_missing : -1);
        logf_(t, GN_LOG_INFO, "weights from %s", t->args->weights);
    } else {
        gn_err_wrap(err, "--weights %s", t->args->weights);
    }
    gn_ckpt_close(&c);
    return rc;
}

static void free_trainer(trainer *t)
{
    if (t->metrics) fclose(t->metrics);
    gn_loader_free(&t->train);
    gn_loader_free(&t->val);
    gn_optim_free(&t->opt);
    gn_ema_free(&t->ema);
    gn_net_free(&t->net);
    free(t->cfg_text);
    gn_rundir_release(&t->rundir);
}

static void drain_failures(trainer *t, gn_loader *l)
{
    const char *f;
    while ((f = gn_loader_pop_failure(l))) logf_(t, GN_LOG_WARN, "skipped %s", f);
}

/* ---- data-parallel helpers ---- */

/* The backward hook: once layers >= layer have their final gradients, starts summing them over
 * ranks in buckets of at least t->bucket floats, in reverse layer order. */
static void on_backward(void *user, int layer)
{
    trainer *t = user;
    size_t lo = (size_t)(t->net->layers[layer].grads - t->net->grads);
    if (!t->grad_rc && t->grad_hi - lo >= t->bucket) {
        t->grad_rc = gn_dist_isum_f32(t->net->grads + lo, t->grad_hi - lo, &t->grad_err);
        t->grad_hi = lo;
    }
    gn_dist_progress();
}

/* Fine-tuning freezes a prefix of the layers: where the rest starts in net->params (trainable)
 * or net->state. Frozen layers have no gradients to sum and statistics that must stay as they
 * are (an average of equal values over 3 ranks need not give the same bits). */
static size_t unfrozen_from(const gn_net *net, int trainable)
{
    for (int i = 0; i < net->n_layers; i++)
        if (!net->layers[i].frozen)
            return trainable ? (size_t)(net->layers[i].params - net->params)
                             : (size_t)(net->layers[i].state - net->state);
    return trainable ? net->n_params : net->n_state;
}

/* sync_bn: every rank's non-trainable state (batch-norm running mean and variance) becomes
 * the average over ranks; frozen layers' stay as they are. */
static int sync_state(trainer *t, gn_err *err)
{
    size_t lo = unfrozen_from(t->net, 0), n = t->net->n_state - lo;
    if (t->nranks == 1 || !t->o.sync_bn || !n) return GN_OK;
    float inv = 1.0f / (float)t->nranks;
    for (int k = 0; k < (t->ema ? 2 : 1); k++) {
        float *s = (k ? t->ema->state : t->net->state) + lo;
        int rc = gn_dist_sum_f32(s, n, "sync_bn (MPI_Allreduce)", err);
        if (rc) return rc;
        for (size_t i = 0; i < n; i++) s[i] *= inv;
    }
    return GN_OK;
}

/* Rank 0's weights, state and optimizer state to every rank. */
static int bcast_model(trainer *t, gn_err *err)
{
    if (t->nranks == 1) return GN_OK;
    int rc = gn_dist_bcast_f32(t->net->params, t->net->n_params, 0, "weights (MPI_Bcast)", err);
    for (int i = 0; !rc && i < t->opt->ops->n_state; i++)
        rc = gn_dist_bcast_f32(t->opt->state[i], t->net->n_params, 0,
                               "optimizer state (MPI_Bcast)", err);
    if (!rc && t->net->n_state)
        rc = gn_dist_bcast_f32(t->net->state, t->net->n_state, 0, "state (MPI_Bcast)", err);
    if (!rc && t->ema)
        rc = gn_dist_bcast_f32(t->ema->params, t->net->n_params, 0, "EMA (MPI_Bcast)", err);
    if (!rc && t->ema && t->net->n_state)
        rc = gn_dist_bcast_f32(t->ema->state, t->net->n_state, 0, "EMA (MPI_Bcast)", err);
    return rc;
}

/* record: log it and add a metrics row (not for a run resumed after its end). */
static int evaluate(trainer *t, gn_eval_result *r, int record, int *improved, gn_err *err)
{
    double t0 = gn_now();
    int rc = sync_state(t, err);
    if (rc) return rc;
    if (!t->val) {
        /* a rank other than 0 when rank 0 evaluates the whole (small) validation set */
        memset(r, 0, sizeof *r);
        long long imp = 0;
        if ((rc = gn_dist_bcast_i64(&imp, 1, 0, "evaluation result (MPI_Bcast)", err))) return rc;
        *improved = (int)imp;
        return GN_OK;
    }
    int swap = t->ema && t->o.ema_eval;
    if (swap) gn_ema_swap(t->ema);
    rc = gn_evaluate(t->net, t->val, 0, t->o.eval_tta, r, err);
    if (swap) gn_ema_swap(t->ema);
    drain_failures(t, t->val);
    if (rc) return rc;
    if (t->val_sharded) {
        /* each rank evaluated its shard of the validation set: sum the counts */
        double v[4] = {r->loss * (double)r->images, r->top1 * (double)r->images,
                       r->top5 * (double)r->images, (double)r->images};
        if ((rc = gn_dist_sum_f64(v, 4, "evaluation (MPI_Allreduce)", err))) return rc;
        r->images = (int64_t)v[3];
        r->loss = v[3] > 0 ? v[0] / v[3] : 0;
        if (t->classify) {
            r->top1 = v[3] > 0 ? v[1] / v[3] : 0;
            r->top5 = v[3] > 0 ? v[2] / v[3] : 0;
        }
    }
    double metric = t->classify ? r->top1 : -r->loss;
    *improved = metric > t->best;
    if (t->nranks > 1 && !t->val_sharded) {
        long long imp = *improved;
        if ((rc = gn_dist_bcast_i64(&imp, 1, 0, "evaluation result (MPI_Bcast)", err))) return rc;
    }
    if (!record) return GN_OK;
    if (*improved) t->best = metric;
    if (!t->metrics) return GN_OK; /* ranks other than 0 */
    if (t->classify)
        logf_(t, GN_LOG_INFO, "eval at iteration %" PRId64 ": loss %.4f  top1 %.2f%%  top5 "
              "%.2f%%  (%" PRId64 " images, %.1fs)%s%s%s", t->iter, r->loss, 100 * r->top1,
              100 * r->top5, r->images, gn_now() - t0, swap ? "  (EMA)" : "",
              t->o.eval_tta == GN_TTA_FLIP ? "  (flip TTA)" : "", *improved ? "  best so far" : "");
    else
        logf_(t, GN_LOG_INFO, "eval at iteration %" PRId64 ": loss %.6f (%" PRId64 " rows)%s%s",
              t->iter, r->loss, r->images, swap ? "  (EMA)" : "",
              *improved ? "  best so far" : "");
    fprintf(t->metrics, "%" PRId64 ",%.4f,,%.6g,,,%.6f,", t->iter, epoch_now(t),
            gn_schedule_lr(&t->o.sched, t->iter), r->loss);
    if (t->classify)
        fprintf(t->metrics, "%.4f,%.4f\n", 100 * r->top1, 100 * r->top5);
    else
        fprintf(t->metrics, ",\n");
    fflush(t->metrics);
    return GN_OK;
}

static void format_eta(double s, char *buf, size_t n)
{
    if (!(s >= 0) || s > 1e8) {
        snprintf(buf, n, "?");
        return;
    }
    int h = (int)(s / 3600), m = (int)(fmod(s, 3600) / 60), sec = (int)fmod(s, 60);
    if (h) snprintf(buf, n, "%dh%02dm", h, m);
    else snprintf(buf, n, "%dm%02ds", m, sec);
}

/* ---- setup ---- */

/* Locks the output directory, refuses another run's, or picks a fresh default name
 * (rundir.h): at once, before the data is scanned. From here on t->args->out_dir is the
 * directory chosen. */
static int claim_out_dir(trainer *t, gn_train_result *res, gn_err *err)
{
    int rc = gn_rundir_claim_run(&t->rundir, t->args, t->rank, err);
    if (rc) return rc;
    if (strcmp(t->rundir.dir, t->args->out_dir))
        logf_(t, GN_LOG_INFO, "%s is in use or holds another run: training into %s",
              t->args->out_dir, t->rundir.dir);
    t->run_args = *t->args;
    t->run_args.out_dir = t->rundir.dir;
    t->args = &t->run_args;
    memcpy(res->out_dir, t->rundir.dir, sizeof res->out_dir);
    return GN_OK;
}

/* The images per mini-batch on this rank and per iteration over all ranks. */
static int setup_ranks(trainer *t, gn_err *err)
{
    t->mini = t->o.batch / t->o.subdivisions;
    t->global = t->o.batch;
    if (t->nranks == 1) return GN_OK;
    if (t->o.batch_per_rank) {
        t->global = t->o.batch * t->nranks;
    } else if (t->o.batch % (t->nranks * t->o.subdivisions)) {
        return gn_err_set(err, GN_ECONFIG, "%s: batch=%d is the global batch and must be "
                          "divisible by ranks (%d) x subdivisions (%d); or set [train] "
                          "batch_per_rank=1", t->cfg->path, t->o.batch, t->nranks,
                          t->o.subdivisions);
    } else {
        t->mini = t->o.batch / t->nranks / t->o.subdivisions;
    }
    t->bucket = (size_t)(t->o.bucket_mb * 1e6 / sizeof(float));
    if (t->bucket < 1) t->bucket = 1;
    return gn_dist_set_timeout(t->o.mpi_timeout, err);
}

/* The training and validation loaders, each rank on its shard; the iterations to run. */
static int setup_data(trainer *t, gn_err *err)
{
    int rc;
    if (!gn_loader_has_split(&t->d, GN_SPLIT_TRAIN))
        return gn_err_set(err, GN_ECONFIG, "%s: no training data: set [data] train=DIR (a "
                          "folder of class folders, a list file or a .csv), e.g. --set "
                          "data.train=DIR", t->cfg->path);
    for (const char *w = t->d.aug.warning; *w && !t->rank;) { /* darknet keys not honoured */
        int n = (int)strcspn(w, "\n");
        logf_(t, GN_LOG_WARN, "%.*s", n, w);
        w += n + (w[n] == '\n');
    }
    if ((rc = gn_loader_create(&t->train, &t->d, GN_SPLIT_TRAIN, t->mini, t->o.seed, err)))
        return rc;
    if (gn_loader_has_split(&t->d, GN_SPLIT_VAL) &&
        (rc = gn_loader_create(&t->val, &t->d, GN_SPLIT_VAL, t->mini, t->o.seed, err)))
        return rc;
    t->has_val = t->val != NULL;
    if (t->nranks > 1) {
        if (gn_loader_set_shard(t->train, t->rank, t->nranks))
            return gn_err_set(err, GN_ECONFIG, "the training data has %" PRId64 " images, "
                              "fewer than one global batch of %d", gn_loader_size(t->train),
                              t->global);
        /* too small a validation set for every rank to get a share: rank 0 evaluates it all */
        if (t->val) {
            t->val_sharded = gn_loader_set_shard(t->val, t->rank, t->nranks) == GN_OK;
            if (!t->val_sharded && t->rank) gn_loader_free(&t->val);
        }
    }
    if ((rc = check_outputs(t, err))) return rc;
    t->iters_per_epoch = gn_loader_size(t->train) / t->global;
    if (t->iters_per_epoch < 1)
        return gn_err_set(err, GN_ECONFIG, "the training data has %" PRId64 " images, fewer "
                          "than one batch of %d", gn_loader_size(t->train), t->global);
    if (!t->o.max_batches) t->o.max_batches = (int64_t)t->o.epochs * t->iters_per_epoch;
    t->o.sched.max_batches = t->o.max_batches;
    if (t->o.warmup_epochs > 0)
        t->o.sched.warmup = (int64_t)llround(t->o.warmup_epochs * (double)t->iters_per_epoch);
    return GN_OK;
}

/* The optimizer, the output directory and its paths, and the opening log lines. */
static int setup_outputs(trainer *t, gn_train_result *res, gn_err *err)
{
    int rc;
    gn_optim_opts oo = {.kind = (gn_optim_kind)t->o.optimizer, .decay = (float)t->o.decay,
                        .norm_decay = (float)t->o.norm_decay,
                        .bias_decay = (float)t->o.bias_decay, .momentum = (float)t->o.momentum,
                        .nesterov = t->o.nesterov, .beta1 = t->o.beta1, .beta2 = t->o.beta2,
                        .eps = t->o.eps, .amsgrad = t->o.amsgrad};
    if ((rc = gn_optim_create(&t->opt, t->net, &oo, err))) return rc;
    if (t->o.ema_decay > 0 && (rc = gn_ema_create(&t->ema, t->net, t->o.ema_decay,
                                                  t->o.ema_every, t->o.ema_warmup, err)))
        return rc;
    t->cfg_text = gn_cfg_dump(t->cfg);
    if (!t->cfg_text) return gn_err_set(err, GN_ENOMEM, "out of memory");
    snprintf(t->net_hash, sizeof t->net_hash, "%016" PRIx64, gn_cfg_net_hash(t->cfg));
    /* --overwrite: the old run goes only now that this one has everything it needs */
    if ((rc = gn_rundir_replace(&t->rundir, err))) return rc;
    const char *out_dir = t->args->out_dir;
    if (t->rank == 0) remove_stale_temps(t);
    join(t->path_last, sizeof t->path_last, out_dir, "last.safetensors");
    join(t->path_best, sizeof t->path_best, out_dir, "best.safetensors");
    join(t->path_metrics, sizeof t->path_metrics, out_dir, "metrics.csv");
    memcpy(res->last_path, t->path_last, sizeof res->last_path);
    memcpy(res->best_path, t->path_best, sizeof res->best_path);

    logf_(t, GN_LOG_INFO, "network: %d layers, %zu parameters, %.3f GFLOP per image forward; "
          "batch %d (%d x %d), %d threads, %s", t->net->n_layers, t->net->n_params,
          t->net->flops / 1e9, t->o.batch, t->o.subdivisions, t->mini, gn_get_threads(),
          gn_blas_info());
    log_finetune(t);
    if (t->nranks > 1)
        logf_(t, GN_LOG_INFO, "data-parallel: %d ranks, global batch %d = %d ranks x %d "
              "subdivisions x %d images; gradient buckets of %.3g MB; mpi_timeout %gs",
              t->nranks, t->global, t->nranks, t->o.subdivisions, t->mini, t->o.bucket_mb,
              t->o.mpi_timeout);
    logf_(t, GN_LOG_INFO, "data: %" PRId64 " training images%s, %d classes; %" PRId64
          " iterations (%" PRId64 " per epoch)", gn_loader_size(t->train),
          t->val ? "" : " (no validation split)", gn_loader_classes(t->train), t->o.max_batches,
          t->iters_per_epoch);
    if (t->val) logf_(t, GN_LOG_INFO, "validation: %" PRId64 " images", gn_loader_size(t->val));
    if (t->o.optimizer != GN_OPTIM_SGD || t->ema || t->o.clip_grad_norm > 0 ||
        t->o.sched.warmup > 0)
        logf_(t, GN_LOG_INFO, "optimizer %s%s; weight decay %g (batch norm %g, biases %g)%s; "
              "warm-up %" PRId64 " iterations; gradient clipping %s; EMA %s", t->opt->ops->name,
              t->o.amsgrad ? " (amsgrad)" : "", t->o.decay, t->o.norm_decay, t->o.bias_decay,
              t->net->n_layers && t->opt->n_groups > 1 ? ", per group" : "",
              t->o.sched.warmup, t->o.clip_grad_norm > 0 ? "on" : "off",
              t->ema ? (t->o.ema_eval ? "on, evaluated" : "on") : "off");
    return GN_OK;
}

/* Where the run starts: a checkpoint (--resume), given weights (--weights) or the
 * initialization; then the same model on every rank, metrics.csv, and the clocks. */
static int start_point(trainer *t, gn_train_result *res, gn_err *err)
{
    int rc;
    const char *rpath = t->args->resume;
    if (rpath && !strcmp(rpath, "auto")) {
        /* rank 0 decides: other nodes may not see its output directory */
        long long found = access(t->path_last, F_OK) == 0;
        if ((rc = gn_dist_bcast_i64(&found, 1, 0, "--resume auto (MPI_Bcast)", err))) return rc;
        rpath = found ? t->path_last : NULL;
        if (!rpath) logf_(t, GN_LOG_INFO, "--resume auto: no %s yet, starting fresh", t->path_last);
    }
    if (rpath) {
        if ((rc = resume(t, rpath, err))) return rc;
        t->resumed = 1;
    } else if (t->args->weights) {
        if ((rc = load_weights(t, err))) return rc;
    }
    if (t->ema && !t->resumed) gn_ema_reset(t->ema); /* the EMA starts as the weights */
    /* the same starting point on every rank (after a resume: rank 0's copy, byte for byte) */
    if ((rc = bcast_model(t, err))) return rc;
    if (t->rank == 0 && (rc = open_metrics(t, t->resumed, err))) return rc;
    res->start_iter = t->iter;
    t->last_save = gn_now();

    t->t_start = gn_now();
    t->t_log = gn_now();
    gn_loader_stats st0;
    gn_loader_get_stats(t->train, &st0);
    t->wait_log = st0.wait_s;
    int64_t dummy;
    gn_loader_position(t->train, &t->epoch_prev, &dummy);
    t->last_eval_iter = -1;
    return GN_OK;
}

/* ---- one iteration: fetch, forward and backward per mini-batch, reduce, update ---- */

/* The error for a non-finite loss, naming the last good checkpoint. */
static int nonfinite_error(const trainer *t, double l, float lr, gn_err *err)
{
    const char *last = access(t->path_last, F_OK) == 0 ? t->path_last : "(none yet)";
    if (t->nranks > 1)
        return gn_err_set(err, GN_ENAN, "the loss became non-finite at iteration %" PRId64
                          " (learning rate %g) on at least one rank: training stopped; the last "
                          "good checkpoint is %s (try a lower learning_rate or burn_in)",
                          t->iter, lr, last);
    return gn_err_set(err, GN_ENAN, "the loss became %s at iteration %" PRId64 " (learning "
                      "rate %g): training stopped; the last good checkpoint is %s (try a lower "
                      "learning_rate or burn_in)", isnan(l) ? "NaN" : "infinite", t->iter, lr,
                      last);
}

/* Mini-batch s of the iteration: its images from the loader, forward, and backward adding into
 * net->grads. fold: the optimizer step runs inside this backward (one mini-batch on one rank).
 * On the last mini-batch of a data-parallel run the gradient allreduce starts from the backward
 * hook. *loss: this mini-batch's mean loss. */
static int forward_backward(trainer *t, int s, float lr, int fold, double *loss, gn_err *err)
{
    int n = 0;
    /* mixup/cutmix: the loader's soft targets go to the loss (docs/recipes.md) */
    int soft = t->classify && gn_loader_soft_targets(t->train);
    int rc = gn_loader_next(t->train, t->net->input, t->classify ? t->net->labels : NULL,
                            t->classify && !soft ? NULL : t->net->targets, &n, err);
    drain_failures(t, t->train);
    if (rc) return rc;
    GN_ASSERT(n == t->mini);
    gn_ctx ctx = gn_net_ctx(t->net, 1);
    ctx.loss_scale = 1.0f / (float)t->global;
    ctx.soft_targets = soft;
    ctx.label_smoothing = (float)t->o.label_smoothing;
    /* ranks draw different dropout masks for their different images */
    ctx.seed = t->o.seed + (uint64_t)t->rank * 0x9E3779B97F4A7C15ull;
    ctx.step = (uint64_t)(t->iter * t->o.subdivisions + s);
    double l = gn_net_forward(t->net, &ctx);
    *loss = l;
    if (t->nranks > 1) {
        /* a non-finite loss is judged after the reduce, so every rank stops together */
        if (s == t->o.subdivisions - 1) {
            /* the last mini-batch: sum gradients over ranks while backward runs */
            ctx.on_backward = on_backward;
            ctx.hook_user = t;
            t->grad_hi = t->net->n_params;
            t->grad_rc = 0;
        }
    } else if (!isfinite(l)) {
        return nonfinite_error(t, l, lr, err);
    }
    if (fold) gn_optim_fused_begin(t->opt, lr, &ctx);
    gn_net_backward(t->net, &ctx);
    if (fold) {
        gn_optim_fused_finish(t->opt);
        t->grads_zero = 1;
    }
    return GN_OK;
}

/* Data-parallel: waits for the gradient sums, and agrees over ranks on the loss (their mean),
 * a non-finite loss anywhere, a stop request anywhere and rank 0's checkpoint clock. */
static int reduce(trainer *t, iter_result *r, int nonfinite, gn_err *err)
{
    int rc = t->grad_rc;
    if (rc) *err = t->grad_err;
    /* the frozen layers' gradients are zero on every rank: not sent */
    size_t lo = unfrozen_from(t->net, 1);
    if (!rc && t->grad_hi > lo) rc = gn_dist_isum_f32(t->net->grads + lo, t->grad_hi - lo, err);
    double tw = gn_now();
    if (!rc) rc = gn_dist_wait_all("gradient allreduce (MPI_Iallreduce)", err);
    t->t_wait += gn_now() - tw;
    if (rc) return rc;
    double v[4] = {r->loss / t->nranks, nonfinite, r->stop,
                   t->rank == 0 && t->o.ckpt_minutes > 0 &&
                       gn_now() - t->last_save >= 60 * t->o.ckpt_minutes};
    if ((rc = gn_dist_sum_f64(v, 4, "loss and flags (MPI_Allreduce)", err))) return rc;
    r->loss = v[0];
    r->stop = v[2] > 0;
    r->ckpt_due = v[3] > 0;
    if (v[1] > 0 || !isfinite(r->loss)) return nonfinite_error(t, r->loss, r->lr, err);
    return GN_OK;
}

static int iteration(trainer *t, iter_result *r, gn_err *err)
{
    memset(r, 0, sizeof *r);
    r->t0 = gn_now();
    r->lr = (float)gn_schedule_lr(&t->o.sched, t->iter);
    /* One mini-batch on one rank: the step runs inside backward, each layer's as soon as its
     * gradients are final, zeroing them as it goes; else after the last backward (and the
     * allreduce). */
    int fold = t->nranks == 1 && t->o.subdivisions == 1 && t->o.clip_grad_norm <= 0;
    if (!t->grads_zero) gn_net_zero_grads(t->net);
    t->grads_zero = 0;
    int nonfinite = 0, rc;
    for (int s = 0; s < t->o.subdivisions; s++) {
        double l;
        if ((rc = forward_backward(t, s, r->lr, fold, &l, err))) return rc;
        nonfinite |= !isfinite(l);
        r->loss += l / t->o.subdivisions;
    }
    r->stop = t->args->stop && *t->args->stop;
    if (t->nranks > 1 && (rc = reduce(t, r, nonfinite, err))) return rc;
    /* clipping needs every gradient (after the sum over ranks): the step cannot be folded */
    if (t->o.clip_grad_norm > 0) r->grad_norm = gn_optim_clip_grad_norm(t->opt, t->o.clip_grad_norm);
    if (!fold) gn_optim_step(t->opt, r->lr);
    t->iter++;
    if (t->ema) gn_ema_after_step(t->ema, t->iter);
    t->net->seen += (uint64_t)t->global;
    t->images_run += t->global;
    t->images_log += t->global;
    t->smooth_loss = t->iter == 1 || t->smooth_loss == 0 ? r->loss
                                                         : 0.95 * t->smooth_loss + 0.05 * r->loss;
    return GN_OK;
}

/* ---- after each iteration: log, evaluate, checkpoint ---- */

/* The progress line (a live status line on a terminal) and, every log_every iterations, a row
 * of metrics.csv. */
static void log_progress(trainer *t, const iter_result *r, gn_train_result *res, double now)
{
    const gn_train_args *args = t->args;
    int log_now = t->iter % t->o.log_every == 0 || t->iter == t->o.max_batches;
    if (!log_now && !(args->progress_interactive && now - t->t_progress > 0.25)) return;
    gn_loader_stats st;
    gn_loader_get_stats(t->train, &st);
    double dt = now - t->t_log;
    double ips = dt > 0 ? t->images_log / dt : 0;
    double wait = dt > 0 ? (st.wait_s - t->wait_log) / dt : 0;
    double per_iter = t->t_train / (double)(t->iter - res->start_iter);
    char eta[32], gnorm[48] = "";
    format_eta(per_iter * (double)(t->o.max_batches - t->iter), eta, sizeof eta);
    if (t->o.clip_grad_norm > 0) snprintf(gnorm, sizeof gnorm, "  grad norm %.3g", r->grad_norm);
    logf_(t, log_now && !args->progress_interactive ? GN_LOG_INFO : GN_LOG_PROGRESS,
          "epoch %.2f  iter %" PRId64 "/%" PRId64 "  loss %.4f  lr %.3g%s  %.1f img/s  "
          "data wait %.0f%%  eta %s", epoch_now(t), t->iter, t->o.max_batches,
          t->smooth_loss, r->lr, gnorm, ips, 100 * wait, eta);
    t->t_progress = now;
    if (log_now && t->metrics) {
        fprintf(t->metrics, "%" PRId64 ",%.4f,%.6f,%.6g,%.2f,%.4f,,,\n", t->iter,
                epoch_now(t), r->loss, r->lr, ips, wait);
        fflush(t->metrics);
        t->t_log = now;
        t->images_log = 0;
        t->wait_log = st.wait_s;
    }
}

/* Evaluates when [eval] says so (every N iterations, at an epoch's end) and at the end. */
static int maybe_evaluate(trainer *t, int *improved, gn_err *err)
{
    int64_t epoch_cur, b;
    gn_loader_position(t->train, &epoch_cur, &b);
    *improved = 0;
    int at_end = t->iter == t->o.max_batches, rc = GN_OK;
    if (t->has_val && ((t->o.eval_every && t->iter % t->o.eval_every == 0) ||
                       (t->o.eval_epoch && epoch_cur != t->epoch_prev) || at_end)) {
        if ((rc = evaluate(t, &t->last_eval, 1, improved, err))) return rc;
        t->last_eval_iter = t->iter;
    }
    t->epoch_prev = epoch_cur;
    return GN_OK;
}

/* Checkpoints when due (every N iterations, by the clock, at the end, a better evaluation, a
 * stop request); *stopped when the run stops here on request. */
static int maybe_checkpoint(trainer *t, const iter_result *r, int improved, double now,
                            int *stopped, gn_err *err)
{
    int rc;
    int at_end = t->iter == t->o.max_batches;
    int stop = t->nranks > 1 ? r->stop : t->args->stop && *t->args->stop;
    int scheduled = at_end || (t->o.ckpt_every && t->iter % t->o.ckpt_every == 0) ||
                    (t->nranks > 1 ? r->ckpt_due
                                   : t->o.ckpt_minutes > 0 &&
                                         now - t->last_save >= 60 * t->o.ckpt_minutes);
    if (scheduled || stop || improved) {
        if ((rc = sync_state(t, err))) return rc;
        if (t->rank == 0 && (rc = checkpoint(t, improved, scheduled, at_end, err))) return rc;
    }
    *stopped = stop && !at_end;
    if (*stopped)
        logf_(t, GN_LOG_INFO, "stopped at iteration %" PRId64 "; checkpoint %s (continue "
              "with --resume auto)", t->iter, t->path_last);
    return GN_OK;
}

/* ---- the end ---- */

/* The closing checkpoint (for a run of no iterations), curves, and the result. */
static int finish(trainer *t, int rc, gn_train_result *res, gn_err *err)
{
    if (t->iter == t->o.max_batches && res->start_iter == t->iter && !t->resumed) {
        /* max_batches = 0 iterations: still leave a checkpoint */
        int rc2;
        if ((rc2 = sync_state(t, err))) return rc2;
        if (t->rank == 0 && (rc2 = checkpoint(t, 0, 1, 1, err))) return rc2;
    }
    if (t->rank == 0) {
        fflush(t->metrics);
        gn_err perr = {0};
        if (gn_plot_metrics(t->args->out_dir, &perr))
            logf_(t, GN_LOG_WARN, "curves.svg not written: %s", perr.msg);
    }
    if (t->nranks > 1 && t->iter > res->start_iter)
        logf_(t, GN_LOG_INFO, "data-parallel: %.1f ms per iteration waiting for the gradient "
              "allreduce after backward (communication not hidden by the overlap, plus waiting "
              "for slower ranks)", 1e3 * t->t_wait / (double)(t->iter - res->start_iter));
    res->iters = t->iter;
    res->epochs = epoch_now(t);
    res->train_loss = t->smooth_loss;
    res->seconds = gn_now() - t->t_start;
    res->img_per_s = t->t_train > 0 ? (double)t->images_run / t->t_train : 0;
    if (t->last_eval_iter >= 0 || (t->has_val && rc == GN_OK && t->iter == t->o.max_batches)) {
        if (t->last_eval_iter < 0) {
            int improved = 0;
            int rc2 = evaluate(t, &t->last_eval, 0, &improved, err);
            if (rc2) return rc2;
        }
        res->has_val = 1;
        res->val = t->last_eval;
    }
    gn_loader_stats st;
    gn_loader_get_stats(t->train, &st);
    res->bad_files = st.failed_files;
    if (t->val) { /* its warnings are printed too: the count names them all */
        gn_loader_get_stats(t->val, &st);
        res->bad_files += st.failed_files;
    }
    return rc;
}

int gn_train(gn_cfg *cfg, const gn_train_args *args, gn_train_result *res, gn_err *err)
{
    trainer tr, *t = &tr;
    memset(t, 0, sizeof *t);
    memset(res, 0, sizeof *res);
    t->rundir.fd = -1;
    t->cfg = cfg;
    t->args = args;
    t->best = -INFINITY;
    int rc;
    t->rank = gn_dist_rank();
    t->nranks = gn_dist_size();
    gn_set_threads(args->threads);
    if ((rc = gn_train_opts_parse(&t->o, cfg, err))) goto done;
    if ((rc = gn_data_opts_parse(&t->d, cfg, err))) goto done;
    if ((rc = gn_weights_input_convention(&t->d, args->weights, err))) goto done;
    gn_train_accept_darknet_keys(cfg);
    if ((rc = claim_out_dir(t, res, err))) goto done;
    if ((rc = setup_ranks(t, err))) goto done;
    if ((rc = check_memory(t, GN_NET_RECOMPUTE, err))) goto done;
    if ((rc = gn_net_build_flags(&t->net, cfg, t->mini, t->o.seed, GN_NET_RECOMPUTE, err))) goto done;
    if ((rc = gn_cfg_check_all_unused(cfg, err))) goto done;
    if ((rc = setup_data(t, err))) goto done;
    if ((rc = setup_outputs(t, res, err))) goto done;
    if ((rc = start_point(t, res, err))) goto done;

    while (t->iter < t->o.max_batches) {
        iter_result r;
        if ((rc = iteration(t, &r, err))) goto done;
        double now = gn_now();
        t->t_train += now - r.t0;
        log_progress(t, &r, res, now);
        int improved, stopped;
        if ((rc = maybe_evaluate(t, &improved, err))) goto done;
        if ((rc = maybe_checkpoint(t, &r, improved, now, &stopped, err))) goto done;
        if (stopped) {
            rc = GN_EINTR;
            break;
        }
    }
    rc = finish(t, rc, res, err);
done:
    free_trainer(t);
    return rc;
}
