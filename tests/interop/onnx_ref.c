/* gemmnet's side of the ONNX check (test_onnx.sh): builds CONFIG at its own size for a batch of
 * 2 with random weights and non-trivial batch-norm state, writes them as a checkpoint, writes a
 * random input, runs one forward pass in evaluation mode and writes the output.
 *
 * usage: onnx_ref CONFIG DIR
 * writes DIR/weights.safetensors, DIR/input.f32 (2 x C x H x W), DIR/gemmnet.f32 (2 x D),
 * DIR/dims (the line "2 C H W D"). Deep nets with random weights give huge logits, and a
 * saturated softmax (one class 1, the rest 0) would hide errors, so the last convolution or
 * connected layer before the softmax (when what follows it commutes with a positive scale) is
 * scaled to bring the logits' spread down to about 1.5.
 * Exit 0; 77 with the reason on stdout when gemmnet refuses the config or it is not a
 * classifier (no [softmax]); 1 on any other failure. */
#include "gemmnet/checkpoint.h"
#include "gemmnet/data.h"
#include "gemmnet/gemmnet.h"
#include "gemmnet/train.h"
#include "core/rng.h"
#include "layers/describe.h"

#include <math.h>

#include <stdio.h>
#include <string.h>

static int write_floats(const char *dir, const char *name, const float *p, size_t n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(p, sizeof *p, n, f) == n;
    if (f && fclose(f)) ok = 0;
    if (!ok) fprintf(stderr, "onnx_ref: cannot write %s\n", path);
    return ok;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* The layer whose output reaches the softmax s only through layers that commute with a
 * positive scale (pooling, dropout, one-input routes), if it is a convolution or connected
 * layer whose activation does too (f(a x) = a f(x) for a > 0: linear, relu, leaky, ramp);
 * else -1. */
static int logit_layer(const gn_net *net, int s)
{
    int p = net->layers[s].in_idx[0];
    while (p >= 0) {
        const gn_layer *l = &net->layers[p];
        const char *sec = l->ops->section;
        if (!strcmp(sec, "convolutional") || !strcmp(sec, "connected")) {
            gn_layer_desc d;
            l->ops->describe(l, &d);
            const char *act = gn_act_name(d.act);
            int homogeneous = !strcmp(act, "linear") || !strcmp(act, "relu") ||
                              !strcmp(act, "leaky") || !strcmp(act, "ramp");
            return homogeneous ? p : -1;
        }
        if (strcmp(sec, "avgpool") && strcmp(sec, "maxpool") && strcmp(sec, "dropout") &&
            !(!strcmp(sec, "route") && l->n_in == 1))
            return -1;
        p = l->in_idx[0];
    }
    return -1;
}

/* Multiplies the output of layer p by f: its batch-norm scale and shift, or else its weight
 * and bias. */
static void scale_layer(gn_net *net, int p, float f)
{
    gn_layer *l = &net->layers[p];
    int bn = 0;
    for (int k = 0; k < l->n_par; k++) bn |= !strcmp(l->par[k].name, "bn.weight");
    for (int k = 0; k < l->n_par; k++) {
        const gn_param *q = &l->par[k];
        int hit = bn ? !strcmp(q->name, "bn.weight") || !strcmp(q->name, "bn.bias")
                     : !strcmp(q->name, "weight") || !strcmp(q->name, "bias");
        float *v = gn_param_data(l, q);
        for (size_t j = 0; hit && j < q->count; j++) v[j] *= f;
    }
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: onnx_ref CONFIG DIR\n");
        return 1;
    }
    const char *dir = argv[2];
    gn_err err = {0};
    gn_cfg *cfg = NULL;
    gn_net *net = NULL;
    gn_train_opts to;
    gn_data_opts d;
    int rc = gn_cfg_load(&cfg, argv[1], &err);
    if (!rc) rc = gn_train_opts_parse(&to, cfg, &err);
    if (!rc) rc = gn_data_opts_parse(&d, cfg, &err);
    if (cfg) gn_train_accept_darknet_keys(cfg);
    if (!rc) rc = gn_net_build(&net, cfg, 2, 11, &err);
    if (!rc) rc = gn_cfg_check_all_unused(cfg, &err);
    if (rc) {
        printf("gemmnet refuses it: %s\n", err.msg);
        gn_net_free(&net);
        gn_cfg_free(&cfg);
        return 77;
    }
    int classifier = 0;
    for (int i = 0; i < net->n_layers; i++)
        classifier |= !strcmp(net->layers[i].ops->section, "softmax");
    if (!classifier) {
        printf("not a classifier (no [softmax] layer)\n");
        gn_net_free(&net);
        gn_cfg_free(&cfg);
        return 77;
    }

    /* Batch-norm state and affine parameters away from their initial 0/1, so that an exporter
     * that dropped or misplaced any of them is seen. Variances stay near 1 so deep nets keep
     * their activations in range. */
    gn_rng r = gn_rng_make(2026);
    for (int i = 0; i < net->n_layers; i++) {
        gn_layer *l = &net->layers[i];
        for (int k = 0; k < l->n_par; k++) {
            const gn_param *p = &l->par[k];
            float *v = gn_param_data(l, p);
            double lo = 0, hi = 0;
            if (ends_with(p->name, "running_mean")) lo = -0.2, hi = 0.2;
            else if (ends_with(p->name, "running_var")) lo = 0.5, hi = 1.5;
            else if (ends_with(p->name, "bn.weight")) lo = 0.6, hi = 1.4;
            else if (ends_with(p->name, "bias")) lo = -0.1, hi = 0.1;
            else continue;
            for (size_t j = 0; j < p->count; j++)
                v[j] = (float)(lo + (hi - lo) * gn_rng_uniform(&r));
        }
    }
    size_t nin = 2 * gn_shape_size(net->in);
    for (size_t k = 0; k < nin; k++) net->input[k] = (float)(4 * gn_rng_uniform(&r) - 2);
    gn_ctx ctx = gn_net_ctx(net, 0);
    ctx.batch = 2;
    int s = -1;
    for (int i = 0; i < net->n_layers; i++)
        if (!strcmp(net->layers[i].ops->section, "softmax")) s = i;
    int p = logit_layer(net, s);
    if (p >= 0) {
        gn_net_forward(net, &ctx);
        const gn_layer *sl = &net->layers[s];
        size_t n = 2 * gn_shape_size(sl->in[0]);
        double sum = 0, sq = 0;
        for (size_t k = 0; k < n; k++) {
            sum += sl->x[0][k];
            sq += (double)sl->x[0][k] * sl->x[0][k];
        }
        double sd = sqrt(fmax(sq / n - (sum / n) * (sum / n), 0));
        if (sd > 1.5) scale_layer(net, p, (float)(1.5 / sd));
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/weights.safetensors", dir);
    rc = gn_ckpt_save(path, net, NULL, NULL, 0, &err);
    if (rc) {
        fprintf(stderr, "onnx_ref: %s\n", err.msg);
        return 1;
    }

    gn_net_forward(net, &ctx);
    gn_shape os = gn_net_out_shape(net);
    size_t D = gn_shape_size(os);
    int ok = write_floats(dir, "input.f32", net->input, nin) &&
             write_floats(dir, "gemmnet.f32", gn_net_output(net), 2 * D);
    snprintf(path, sizeof path, "%s/dims", dir);
    FILE *f = fopen(path, "w");
    ok = ok && f && fprintf(f, "2 %d %d %d %zu\n", net->in.c, net->in.h, net->in.w, D) > 0;
    if (f && fclose(f)) ok = 0;
    gn_net_free(&net);
    gn_cfg_free(&cfg);
    return ok ? 0 : 1;
}
