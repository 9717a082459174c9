/* The optimizers (gemmnet/optim.h) against PyTorch: SGD and AdamW (amsgrad too) over 3 steps
 * with parameter groups (lr_mult, weight decay of norm layers and biases, frozen layers),
 * clip_grad_norm_, the EMA update, and the linear warm-up, read from tests/ref/optim.safetensors
 * (written by tests/ref/gen_optim.py; see it for the tensor names).
 *
 * Error per tensor: max|a - b| / max(max|b|, 1e-3) <= 1e-6. Frozen parameters must keep their
 * bits, their optimizer state must stay zero, and the step folded into backward must give the
 * same bits as the plain step. Every tensor of the file must be used. Also: bad values of the
 * optimizer keys are refused with file:line and the key. */
#include "check.h"
#include "ref/ref_reader.h"
#include "gemmnet/gemmnet.h"
#include "gemmnet/optim.h"
#include "gemmnet/train.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define TOL 1e-6

static ref_file *F;
static char *used;
static double worst; /* the largest relative error seen in a case */

static const ref_tensor *get(const char *c, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static const ref_tensor *get(const char *c, const char *fmt, ...)
{
    char key[256], suffix[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(suffix, sizeof suffix, fmt, ap);
    va_end(ap);
    snprintf(key, sizeof key, "%s/%s", c, suffix);
    const ref_tensor *t = ref_find(F, key);
    CHECK_MSG(t != NULL, "the reference has no tensor %s", key);
    if (t) used[t - F->t] = 1;
    return t;
}

static double meta_num(const char *c, const char *key)
{
    char k[256];
    snprintf(k, sizeof k, "%s/%s", c, key);
    const char *s = ref_meta(F, k);
    CHECK_MSG(s != NULL, "no metadata %s", k);
    return s ? strtod(s, NULL) : 0;
}

/* up to max comma-separated numbers of metadata key; returns the count */
static int meta_list(const char *c, const char *key, double *out, int max)
{
    char k[256];
    snprintf(k, sizeof k, "%s/%s", c, key);
    const char *s = ref_meta(F, k);
    int n = 0;
    while (s && *s && n < max) {
        char *end;
        out[n++] = strtod(s, &end);
        s = *end == ',' ? end + 1 : end;
        if (end == s && *s) break;
    }
    return n;
}

static void compare(const char *c, const char *what, const float *a, const ref_tensor *t,
                    size_t n)
{
    if (!t) return;
    CHECK_MSG(t->count == n, "%s: %s has %zu values, gemmnet %zu", c, what, t->count, n);
    if (t->count != n) return;
    double num = 0, den = 1e-3;
    for (size_t i = 0; i < n; i++) {
        double b = ref_f32_at(t, i), d = fabs((double)a[i] - b);
        if (!(d <= num)) num = d;
        if (fabs(b) > den) den = fabs(b);
    }
    CHECK_MSG(num / den <= TOL, "%s: %s: relative error %.3e > %.0e", c, what, num / den, TOL);
    if (num / den > worst) worst = num / den;
}

static void copy_in(float *dst, const ref_tensor *t, size_t n)
{
    if (!t || t->count != n) {
        CHECK_MSG(0, "tensor of %zu values expected", n);
        return;
    }
    for (size_t i = 0; i < n; i++) dst[i] = ref_f32_at(t, i);
}

/* Runs an optimizer case on net; fused: the step folded into a (simulated) backward. The
 * parameters after the last step go to out (n_params floats) for the fused/plain comparison. */
static void run_optim(gn_net *net, const char *c, int fused, float *out)
{
    double frozen[8], mult[8], lrs[8];
    int n_frozen = meta_list(c, "frozen", frozen, 8);
    int n_mult = meta_list(c, "lr_mult", mult, 8);
    int steps = (int)meta_num(c, "steps");
    CHECK(meta_list(c, "lrs", lrs, 8) == steps && n_mult >= 1 && n_mult <= net->n_layers);
    for (int i = 0; i < net->n_layers; i++) {
        net->layers[i].frozen = 0;
        net->layers[i].lr_mult = i < n_mult ? (float)mult[i] : 1.0f;
    }
    for (int k = 0; k < n_frozen; k++) net->layers[(int)frozen[k]].frozen = 1;
    char k[256];
    snprintf(k, sizeof k, "%s/optimizer", c);
    const char *kind = ref_meta(F, k);
    gn_optim_opts h = {
        .kind = kind && !strcmp(kind, "adamw") ? GN_OPTIM_ADAMW : GN_OPTIM_SGD,
        .decay = (float)meta_num(c, "decay"),
        .norm_decay = (float)meta_num(c, "norm_decay"),
        .bias_decay = (float)meta_num(c, "bias_decay"),
        .momentum = (float)meta_num(c, "momentum"),
        .nesterov = (int)meta_num(c, "nesterov"),
        .beta1 = meta_num(c, "beta1"),
        .beta2 = meta_num(c, "beta2"),
        .eps = meta_num(c, "eps"),
        .amsgrad = (int)meta_num(c, "amsgrad"),
    };
    double clip = meta_num(c, "clip");
    gn_optim *o = NULL;
    gn_err err = {0};
    CHECK_MSG(gn_optim_create(&o, net, &h, &err) == GN_OK, "%s", err.msg);
    if (!o) return;
    char name[128];
    for (int i = 0; i < net->n_layers; i++) {
        gn_layer *l = &net->layers[i];
        for (int j = 0; j < l->n_par; j++)
            if (l->par[j].trainable) {
                gn_param_full_name(l, &l->par[j], name, sizeof name);
                copy_in(gn_param_data(l, &l->par[j]), get(c, "init.%s", name), l->par[j].count);
            }
    }
    float *init = malloc(net->n_params * sizeof *init);
    if (init) memcpy(init, net->params, net->n_params * sizeof *init);
    for (int s = 0; s < steps; s++) {
        for (int i = 0; i < net->n_layers; i++) {
            gn_layer *l = &net->layers[i];
            for (int j = 0; j < l->n_par; j++)
                if (l->par[j].trainable) {
                    gn_param_full_name(l, &l->par[j], name, sizeof name);
                    /* frozen layers get gradients too: they must be ignored */
                    copy_in(l->grads + l->par[j].offset, get(c, "step%d.grad.%s", s, name),
                            l->par[j].count);
                }
        }
        if (clip > 0) {
            float norm = (float)gn_optim_clip_grad_norm(o, clip);
            char what[64];
            snprintf(what, sizeof what, "step%d.norm", s);
            compare(c, what, &norm, get(c, "step%d.norm", s), 1);
        }
        if (fused) {
            gn_ctx ctx = gn_net_ctx(net, 1);
            gn_optim_fused_begin(o, (float)lrs[s], &ctx);
            for (int i = net->n_layers - 1; i >= 0; i--) ctx.on_backward(ctx.hook_user, i);
            gn_optim_fused_finish(o);
            for (size_t i = 0; i < net->n_params; i++)
                if (net->grads[i] != 0.0f) {
                    CHECK_MSG(0, "%s: the folded step left gradient %zu non-zero", c, i);
                    break;
                }
        } else {
            gn_optim_step(o, (float)lrs[s]);
        }
        for (int i = 0; i < net->n_layers; i++) {
            gn_layer *l = &net->layers[i];
            for (int j = 0; j < l->n_par; j++) {
                const gn_param *p = &l->par[j];
                if (!p->trainable) continue;
                gn_param_full_name(l, p, name, sizeof name);
                char what[160];
                snprintf(what, sizeof what, "step%d.param.%s", s, name);
                compare(c, what, gn_param_data(l, p), get(c, "%s", what), p->count);
                if (l->frozen && init) {
                    size_t at = (size_t)(l->params - net->params) + p->offset;
                    CHECK_MSG(!memcmp(init + at, net->params + at, p->count * sizeof(float)),
                              "%s: frozen %s changed", c, name);
                }
            }
        }
    }
    for (int b = 0; b < o->ops->n_state; b++)
        for (int i = 0; i < net->n_layers; i++) {
            gn_layer *l = &net->layers[i];
            for (int j = 0; j < l->n_par; j++) {
                const gn_param *p = &l->par[j];
                if (!p->trainable) continue;
                gn_param_full_name(l, p, name, sizeof name);
                const float *st = o->state[b] + (l->params - net->params) + p->offset;
                if (l->frozen) {
                    for (size_t q = 0; q < p->count; q++)
                        if (st[q] != 0.0f) {
                            CHECK_MSG(0, "%s: frozen %s has %s state", c, name,
                                      o->ops->state_names[b]);
                            break;
                        }
                    continue;
                }
                char what[160];
                snprintf(what, sizeof what, "state.%s.%s", o->ops->state_names[b], name);
                compare(c, what, st, get(c, "%s", what), p->count);
            }
        }
    CHECK(o->steps == steps);
    printf("  %-14s %s, %d steps%s: worst relative error %.2e\n", c,
           fused ? "folded into backward" : "after backward", steps, clip > 0 ? ", clipped" : "",
           worst);
    worst = 0;
    if (out) memcpy(out, net->params, net->n_params * sizeof *out);
    free(init);
    gn_optim_free(&o);
    CHECK(o == NULL);
}

static void run_ema(gn_net *net, const char *c)
{
    int steps = (int)meta_num(c, "steps");
    char name[128];
    for (int i = 0; i < net->n_layers; i++) {
        gn_layer *l = &net->layers[i];
        l->frozen = 0;
        for (int j = 0; j < l->n_par; j++) {
            gn_param_full_name(l, &l->par[j], name, sizeof name);
            copy_in(gn_param_data(l, &l->par[j]), get(c, "init.%s", name), l->par[j].count);
        }
    }
    gn_ema *e = NULL;
    gn_err err = {0};
    CHECK_MSG(gn_ema_create(&e, net, meta_num(c, "decay"), (int)meta_num(c, "every"),
                            (int)meta_num(c, "warmup"), &err) == GN_OK, "%s", err.msg);
    if (!e) return;
    for (int s = 0; s < steps; s++) {
        for (int i = 0; i < net->n_layers; i++) {
            gn_layer *l = &net->layers[i];
            for (int j = 0; j < l->n_par; j++) {
                gn_param_full_name(l, &l->par[j], name, sizeof name);
                copy_in(gn_param_data(l, &l->par[j]), get(c, "step%d.model.%s", s, name),
                        l->par[j].count);
            }
        }
        gn_ema_after_step(e, s + 1);
        for (int i = 0; i < net->n_layers; i++) {
            gn_layer *l = &net->layers[i];
            for (int j = 0; j < l->n_par; j++) {
                const gn_param *p = &l->par[j];
                gn_param_full_name(l, p, name, sizeof name);
                const float *v = p->trainable
                                     ? e->params + (l->params - net->params) + p->offset
                                     : e->state + (l->state - net->state) + p->offset;
                char what[160];
                snprintf(what, sizeof what, "step%d.ema.%s", s, name);
                compare(c, what, v, get(c, "%s", what), p->count);
            }
        }
    }
    printf("  %-14s EMA, %d steps, %" PRId64 " updates: worst relative error %.2e\n", c, steps,
           e->updates, worst);
    worst = 0;
    /* swap exchanges EMA and weights */
    float w0 = net->params[0], e0 = e->params[0];
    gn_ema_swap(e);
    CHECK(net->params[0] == e0 && e->params[0] == w0);
    gn_ema_swap(e);
    gn_ema_free(&e);
}

/* A frozen layer's EMA stays the exact copy of its (unchanging) weights. */
static void ema_frozen(gn_net *net)
{
    for (size_t i = 0; i < net->n_params; i++) net->params[i] = 0.1f * (float)(i % 7) - 0.3f;
    net->layers[0].frozen = 1;
    gn_ema *e = NULL;
    gn_err err = {0};
    CHECK(gn_ema_create(&e, net, 0.9, 1, 0, &err) == GN_OK);
    if (!e) return;
    for (int s = 1; s <= 5; s++) {
        for (size_t i = net->layers[0].n_params; i < net->n_params; i++) net->params[i] += 0.01f;
        gn_ema_after_step(e, s);
    }
    CHECK(!memcmp(e->params, net->params, net->layers[0].n_params * sizeof(float)));
    CHECK(e->params[net->n_params - 1] != net->params[net->n_params - 1]);
    net->layers[0].frozen = 0;
    gn_ema_free(&e);
    /* out of range values refused */
    CHECK(gn_ema_create(&e, net, 1.5, 1, 0, &err) == GN_EINVAL && e == NULL);
    CHECK(gn_ema_create(&e, net, 0.9, 0, 0, &err) == GN_EINVAL && e == NULL);
}

static void warmup(void)
{
    const ref_tensor *t = get("warmup", "lrs");
    if (!t) return;
    gn_schedule s;
    memset(&s, 0, sizeof s);
    s.policy = GN_POLICY_COSINE;
    s.lr = 0.1;
    s.max_batches = 12;
    s.warmup = 5;
    s.warmup_start = 0.1;
    float lr[12];
    for (int i = 0; i < 12; i++) lr[i] = (float)gn_schedule_lr(&s, i);
    compare("warmup", "lrs", lr, t, 12);
    printf("  %-14s LinearLR(0.1, 5) chained with cosine: %zu learning rates\n", "warmup",
           t->count);
}

/* Bad values: refused with the config's file:line and the key. */
static void expect_refused(const char *text, const char *key)
{
    gn_cfg *cfg = NULL;
    gn_err err = {0};
    gn_train_opts o;
    int rc = gn_cfg_parse(&cfg, text, "bad.cfg", &err);
    if (rc == GN_OK) rc = gn_train_opts_parse(&o, cfg, &err);
    CHECK_MSG(rc == GN_ECONFIG, "'%s' gave %s (%s)", key, gn_status_name(rc), err.msg);
    CHECK_MSG(strstr(err.msg, "bad.cfg:") && strstr(err.msg, key), "message '%s' lacks "
              "bad.cfg:line or %s", err.msg, key);
    printf("  refused: %s\n", err.msg);
    gn_cfg_free(&cfg);
}

static void bad_values(void)
{
    expect_refused("[net]\n[train]\noptimizer=adam\n", "optimizer");
    expect_refused("[net]\ndecay=-0.1\n", "decay");
    expect_refused("[net]\n[train]\nnorm_decay=-1\n", "norm_decay");
    expect_refused("[net]\n[train]\nbias_decay=-1e-4\n", "bias_decay");
    expect_refused("[net]\n[train]\nema_decay=1.5\n", "ema_decay");
    expect_refused("[net]\n[train]\nema_decay=-0.5\n", "ema_decay");
    expect_refused("[net]\n[train]\nema_decay=0.99\nema_every=0\n", "ema_every");
    expect_refused("[net]\n[train]\nema_every=4\n", "ema_every");
    expect_refused("[net]\n[train]\noptimizer=adamw\nbeta1=1\n", "beta1");
    expect_refused("[net]\n[train]\nbeta2=0.99\n", "beta2");
    expect_refused("[net]\n[train]\nclip_grad_norm=-1\n", "clip_grad_norm");
    expect_refused("[net]\n[train]\nwarmup=10\nwarmup_epochs=1\n", "warmup_epochs");
    expect_refused("[net]\n[train]\nwarmup=10\nwarmup_start=0\n", "warmup_start");
    expect_refused("[net]\n[checkpoint]\nbest=ema\n", "best");
    /* and good ones accepted, with PyTorch's AdamW default weight decay */
    gn_cfg *cfg = NULL;
    gn_err err = {0};
    gn_train_opts o;
    CHECK(gn_cfg_parse(&cfg, "[net]\n[train]\noptimizer=adamw\nema_decay=0.999\n", "ok.cfg",
                       &err) == GN_OK);
    CHECK_MSG(cfg && gn_train_opts_parse(&o, cfg, &err) == GN_OK, "%s", err.msg);
    CHECK(o.optimizer == GN_OPTIM_ADAMW && o.decay == 0.01 && o.norm_decay == 0.01 &&
          o.ema_eval == 1 && o.best_ema == 1 && o.beta2 == 0.999);
    gn_cfg_free(&cfg);
}

int main(void)
{
    const char *root = getenv("GN_SOURCE_ROOT");
    CHECK_MSG(root != NULL, "GN_SOURCE_ROOT is not set (meson test sets it)");
    if (!root) return check_exit();
    char path[4096], msg[512];
    snprintf(path, sizeof path, "%s/tests/ref/optim.safetensors", root);
    if (ref_file_open(&F, path, msg, sizeof msg)) {
        CHECK_MSG(0, "%s", msg);
        return check_exit();
    }
    used = calloc((size_t)F->n + 1, 1);
    const char *text = ref_meta(F, "cfg"), *list = ref_meta(F, "cases");
    CHECK(text && list && used);
    gn_cfg *cfg = NULL;
    gn_net *net = NULL;
    gn_err err = {0};
    if (!text || !list || !used || gn_cfg_parse(&cfg, text, "optim.cfg", &err) ||
        gn_net_build(&net, cfg, 2, 1, &err)) {
        CHECK_MSG(0, "%s", err.msg);
        goto done;
    }
    float *plain = malloc(net->n_params * sizeof *plain);
    float *folded = malloc(net->n_params * sizeof *folded);
    char *names = strdup(list);
    int cases = 0;
    for (char *save = NULL, *c = names ? strtok_r(names, ",", &save) : NULL; c;
         c = strtok_r(NULL, ",", &save), cases++) {
        char k[256];
        snprintf(k, sizeof k, "%s/kind", c);
        const char *kind = ref_meta(F, k);
        if (kind && !strcmp(kind, "ema")) {
            run_ema(net, c);
            continue;
        }
        run_optim(net, c, 0, plain);
        run_optim(net, c, 1, folded);
        CHECK_MSG(plain && folded && !memcmp(plain, folded, net->n_params * sizeof *plain),
                  "%s: the step folded into backward differs from the plain step", c);
    }
    CHECK(cases == 9);
    free(names);
    free(plain);
    free(folded);
    warmup();
    ema_frozen(net);
    for (int i = 0; i < F->n; i++) CHECK_MSG(used[i], "tensor %s was not used", F->t[i].name);
    bad_values();
done:
    gn_net_free(&net);
    gn_cfg_free(&cfg);
    free(used);
    ref_file_close(&F);
    return check_exit();
}
