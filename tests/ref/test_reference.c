/* gemmnet against PyTorch: forward outputs, loss, dL/d(input), every parameter gradient, batch
 * norm running statistics and SGD updates, read from the reference files that
 * tests/ref/gen_reference.py wrote with PyTorch (see that script for the tensor names).
 *
 * Usage: test_reference GROUP... ; each GROUP is $GN_SOURCE_ROOT/tests/ref/GROUP.safetensors,
 * whose metadata lists its cases. For each case the net is built from the cfg stored in the
 * file, every parameter and state tensor is loaded from "layers.<i>.<name>", and for each step:
 * forward (loss, every layer's output), backward (dinput, grads), state, and the SGD update
 * (v = mu*v + g + wd*w; w -= lr*v, as torch.optim.SGD) written here by hand (the change -lr*v
 * and the new parameters are both compared). A case may set the loss's label smoothing
 * (metadata label_smoothing) and give mixed soft targets (tensor soft_targets).
 *
 * Error per tensor: max|a - b| / max(max|b|, 1e-3), must be <= 1e-4. Every tensor of a case in
 * the file must be compared; one left over is a failure too. */
#include "check.h"
#include "ref_reader.h"
#include "gemmnet/gemmnet.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TOL 1e-4

typedef struct ref_case {
    const ref_file *f;
    const char *name;
    char *used; /* per tensor of f: compared or loaded */
    int failures;
} ref_case;

static const ref_tensor *case_tensor(ref_case *c, const char *suffix)
{
    char key[256];
    snprintf(key, sizeof key, "%s/%s", c->name, suffix);
    const ref_tensor *t = ref_find(c->f, key);
    if (t) c->used[t - c->f->t] = 1;
    return t;
}

static const char *case_meta(ref_case *c, const char *key)
{
    char k[256];
    snprintf(k, sizeof k, "%s/%s", c->name, key);
    return ref_meta(c->f, k);
}

static double rel_err(const float *a, const ref_tensor *t)
{
    double num = 0, den = 1e-3;
    for (size_t i = 0; i < t->count; i++) {
        double b = ref_f32_at(t, i), d = fabs((double)a[i] - b);
        if (!isfinite(a[i])) return INFINITY;
        if (d > num) num = d;
        if (fabs(b) > den) den = fabs(b);
    }
    return num / den;
}

/* Compares n floats of a with the case's tensor `what`; a missing tensor is a failure. */
static void compare(ref_case *c, const char *what, const float *a, size_t n)
{
    const ref_tensor *t = case_tensor(c, what);
    int before = check_failures_;
    CHECK_MSG(t != NULL, "%s: the reference has no tensor %s", c->name, what);
    if (!t) goto done;
    CHECK_MSG(t->count == n, "%s: %s has %zu values, gemmnet %zu", c->name, what, t->count, n);
    if (t->count != n) goto done;
    double e = rel_err(a, t);
    printf("  %-26s %-36s %.2e%s\n", c->name, what, e, e <= TOL ? "" : "  <-- MISMATCH");
    CHECK_MSG(e <= TOL, "%s: %s: relative error %.3e > %.0e", c->name, what, e, TOL);
done:
    c->failures += check_failures_ - before;
}

static int same_shape(const ref_tensor *t, const gn_param *p)
{
    if (t->ndim != p->ndim) return 0;
    for (int d = 0; d < p->ndim; d++)
        if (t->shape[d] != p->shape[d]) return 0;
    return 1;
}

static double meta_num(ref_case *c, const char *key, double def)
{
    const char *s = case_meta(c, key);
    if (!s) return def;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    CHECK_MSG(errno == 0 && end != s && *end == 0, "%s: metadata %s = '%s' is not a number",
              c->name, key, s);
    return v;
}

static void run_case(const ref_file *f, const char *name)
{
    ref_case c = {.f = f, .name = name};
    gn_err err = {0};
    gn_cfg *cfg = NULL;
    gn_net *net = NULL;
    float *mom = NULL, *delta = NULL;
    char what[128], full[96];
    int before = check_failures_;
    printf("%s\n", name);
    c.used = calloc((size_t)f->n + 1, 1);
    const char *cfg_text = case_meta(&c, "cfg");
    int batch = (int)meta_num(&c, "batch", 0), train = (int)meta_num(&c, "train", 1);
    int steps = (int)meta_num(&c, "steps", 1);
    double lr = meta_num(&c, "lr", 0), mu = meta_num(&c, "momentum", 0);
    double wd = meta_num(&c, "decay", 0);
    CHECK(c.used != NULL);
    CHECK_MSG(cfg_text && batch >= 1 && steps >= 1, "%s: metadata cfg/batch/steps missing", name);
    if (!c.used || !cfg_text || batch < 1 || steps < 1) goto done;
    if (gn_cfg_parse(&cfg, cfg_text, name, &err) || gn_net_build(&net, cfg, batch, 1, &err) ||
        gn_net_enable_dinput(net, &err)) {
        CHECK_MSG(0, "%s: %s", name, err.msg);
        goto done;
    }

    /* Parameters and state, by gemmnet's names, in PyTorch's shapes. */
    for (int i = 0; i < net->n_layers; i++) {
        gn_layer *l = &net->layers[i];
        for (int k = 0; k < l->n_par; k++) {
            gn_param *p = &l->par[k];
            gn_param_full_name(l, p, full, sizeof full);
            const ref_tensor *t = case_tensor(&c, full);
            CHECK_MSG(t && same_shape(t, p), "%s: %s: %s", name, full,
                      t ? "the shapes differ" : "not in the reference");
            if (!t || !same_shape(t, p)) goto done;
            float *d = gn_param_data(l, p);
            for (size_t j = 0; j < p->count; j++) d[j] = ref_f32_at(t, j);
        }
    }
    const ref_tensor *tin = case_tensor(&c, "input");
    size_t nin = (size_t)batch * gn_shape_size(net->in);
    CHECK_MSG(tin && tin->count == nin, "%s: input missing or not %zu values", name, nin);
    if (!tin || tin->count != nin) goto done;
    for (size_t j = 0; j < nin; j++) net->input[j] = ref_f32_at(tin, j);
    const ref_tensor *tl = case_tensor(&c, "labels");
    if (tl) {
        CHECK(tl->count == (size_t)batch);
        for (int j = 0; j < batch && (size_t)j < tl->count; j++) net->labels[j] = ref_i32_at(tl, j);
    }
    /* Mixed targets (mixup/cutmix) and label smoothing: the loss's settings in gn_ctx. */
    const ref_tensor *ts = case_tensor(&c, "soft_targets");
    if (ts) {
        size_t nt = (size_t)batch * (size_t)net->n_classes;
        CHECK(ts->count == nt);
        for (size_t j = 0; j < nt && j < ts->count; j++) net->targets[j] = ref_f32_at(ts, j);
    }
    const ref_tensor *tt = case_tensor(&c, "targets");
    if (tt) {
        size_t nt = (size_t)batch * (size_t)net->n_classes;
        CHECK(tt->count == nt);
        for (size_t j = 0; j < nt && j < tt->count; j++) net->targets[j] = ref_f32_at(tt, j);
    }
    mom = calloc(net->n_params + 1, sizeof *mom);
    delta = calloc(net->n_params + 1, sizeof *delta);
    CHECK(mom && delta);
    if (!mom || !delta) goto done;

    gn_ctx ctx = gn_net_ctx(net, train);
    ctx.soft_targets = ts != NULL;
    ctx.label_smoothing = (float)meta_num(&c, "label_smoothing", 0);
    for (int s = 0; s < steps; s++) {
        gn_net_zero_grads(net);
        float loss = (float)gn_net_forward(net, &ctx);
        snprintf(what, sizeof what, "step%d.loss", s);
        compare(&c, what, &loss, 1);
        for (int i = 0; i < net->n_layers; i++) {
            gn_layer *l = &net->layers[i];
            if (!strcmp(l->ops->section, "cost")) continue; /* y = x, not stored */
            snprintf(what, sizeof what, "step%d.y.%d", s, i);
            compare(&c, what, l->y, (size_t)batch * gn_shape_size(l->out));
        }
        gn_net_backward(net, &ctx);
        snprintf(what, sizeof what, "step%d.dinput", s);
        compare(&c, what, net->dinput, nin);
        for (int i = 0; i < net->n_layers; i++) {
            gn_layer *l = &net->layers[i];
            for (int k = 0; k < l->n_par; k++) {
                gn_param *p = &l->par[k];
                gn_param_full_name(l, p, full, sizeof full);
                snprintf(what, sizeof what, "step%d.%s.%s", s, p->trainable ? "grad" : "state",
                         full);
                compare(&c, what, p->trainable ? l->grads + p->offset : gn_param_data(l, p),
                        p->count);
            }
        }
        if (lr <= 0) continue;
        /* torch.optim.SGD (dampening 0, no Nesterov), over every trainable float. The change
         * is kept apart and compared too: beside w, a wrong weight decay would be invisible. */
        for (size_t j = 0; j < net->n_params; j++) {
            mom[j] = (float)mu * mom[j] + net->grads[j] + (float)wd * net->params[j];
            delta[j] = -(float)lr * mom[j];
            net->params[j] += delta[j];
        }
        for (int i = 0; i < net->n_layers; i++) {
            gn_layer *l = &net->layers[i];
            size_t base = (size_t)(l->params - net->params);
            for (int k = 0; k < l->n_par; k++) {
                gn_param *p = &l->par[k];
                if (!p->trainable) continue;
                gn_param_full_name(l, p, full, sizeof full);
                snprintf(what, sizeof what, "step%d.update.%s", s, full);
                compare(&c, what, delta + base + p->offset, p->count);
                snprintf(what, sizeof what, "step%d.param.%s", s, full);
                compare(&c, what, gn_param_data(l, p), p->count);
            }
        }
    }

    /* Everything the reference holds for this case must have been looked at. */
    size_t plen = strlen(name);
    for (int j = 0; j < f->n; j++)
        if (!strncmp(f->t[j].name, name, plen) && f->t[j].name[plen] == '/')
            CHECK_MSG(c.used[j], "%s: reference tensor %s was not checked", name, f->t[j].name);
done:
    c.failures = check_failures_ - before;
    printf("%s: %s\n", name, c.failures ? "FAILED" : "ok");
    free(mom);
    free(delta);
    free(c.used);
    gn_net_free(&net);
    gn_cfg_free(&cfg);
}

int main(int argc, char **argv)
{
    const char *root = getenv("GN_SOURCE_ROOT");
    CHECK_MSG(argc > 1, "usage: %s GROUP...", argv[0]);
    CHECK_MSG(root != NULL, "GN_SOURCE_ROOT is not set (meson test sets it)");
    if (argc < 2 || !root) return check_exit();
    int cases = 0;
    for (int g = 1; g < argc; g++) {
        char path[4096], msg[512];
        ref_file *f = NULL;
        snprintf(path, sizeof path, "%s/tests/ref/%s.safetensors", root, argv[g]);
        if (ref_file_open(&f, path, msg, sizeof msg)) {
            CHECK_MSG(0, "%s", msg);
            continue;
        }
        const char *list = ref_meta(f, "cases");
        CHECK_MSG(list && *list, "%s: no cases in the metadata", path);
        char *names = list ? strdup(list) : NULL;
        for (char *save = NULL, *n = names ? strtok_r(names, ",", &save) : NULL; n;
             n = strtok_r(NULL, ",", &save)) {
            run_case(f, n);
            cases++;
        }
        free(names);
        ref_file_close(&f);
    }
    CHECK_MSG(cases > 0, "no case was run");
    return check_exit();
}
