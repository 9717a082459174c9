/* GN_NET_RECOMPUTE: a net that rebuilds batch-norm outputs during backward instead of keeping
 * them trains bit for bit like one that keeps everything, and needs less activation memory.
 * Also checks its activation plan: no two outputs alive at the same step share memory, and
 * one-input routes (ResNet-18's projection branches) become views of their input. */
#include "check.h"
#include "gemmnet/gemmnet.h"
#include "core/rng.h"

#include <string.h>

/* Forward and backward twice, with a plain gradient step between; returns the net. */
static gn_net *run(gn_cfg *cfg, int batch, unsigned flags, double loss[2])
{
    gn_err err = {0};
    gn_net *net = NULL;
    if (gn_net_build_flags(&net, cfg, batch, 11, flags, &err)) {
        CHECK_MSG(0, "%s", err.msg);
        return NULL;
    }
    gn_rng rng = gn_rng_make(gn_rng_key(3, 4, 5));
    size_t nin = (size_t)batch * gn_shape_size(net->in);
    for (size_t i = 0; i < nin; i++) net->input[i] = 2.0f * (float)gn_rng_uniform(&rng) - 1.0f;
    for (int i = 0; i < batch; i++) net->labels[i] = i % net->n_classes;
    gn_ctx ctx = gn_net_ctx(net, 1);
    for (int step = 0; step < 2; step++) {
        gn_net_zero_grads(net);
        loss[step] = gn_net_forward(net, &ctx);
        gn_net_backward(net, &ctx);
        if (step == 0)
            for (size_t i = 0; i < net->n_params; i++) net->params[i] -= 0.05f * net->grads[i];
    }
    return net;
}

/* Output lifetimes as net.h describes them, computed here on their own: forward until the last
 * consumer; a transient output again in backward from the last to the first consumer whose
 * backward reads it; the output and the loss layer's to the end. */
static int alive(const gn_net *net, const gn_layer *l, int t)
{
    int n = net->n_layers, i = l->index, u = l->last_use;
    if (i == n - 1 || i == net->loss_layer) return t >= i; /* read after the step */
    if (!l->transient) return t >= i && t <= 2 * n - 1 - i;
    if (t >= i && t <= u) return 1;
    int hi = -1, lo = -1;
    for (int j = i + 1; j <= u; j++)
        for (int k = 0; k < net->layers[j].n_in; k++)
            if (net->layers[j].in_idx[k] == i && !net->layers[j].bwd_ignores_x) {
                if (lo < 0) lo = j;
                hi = j;
            }
    return lo >= 0 && t >= 2 * n - 1 - hi && t <= 2 * n - 1 - lo;
}

/* Gradient lifetimes: backward, from the last consumer's step to the layer's own. */
static int alive_dy(const gn_net *net, const gn_layer *l, int t)
{
    int n = net->n_layers;
    return t >= 2 * n - 1 - l->last_use && t <= 2 * n - 1 - l->index;
}

static void check_plan(const gn_net *net, const char *name, int views_wanted)
{
    int bad = 0, transient = 0, n = net->n_layers;
    CHECK_MSG(net->dacts == net->acts && net->n_dacts == 0,
              "%s: outputs and gradients are not one arena", name);
    /* buffers 0..n-1: outputs, n..2n-1: gradients */
    for (int a = 0; a < 2 * n; a++) {
        const gn_layer *la = &net->layers[a % n];
        size_t sa = (size_t)net->batch * gn_shape_size(la->out);
        const float *pa = a < n ? la->y : la->dy;
        if (a < n) transient += la->transient;
        if (la->view_of >= 0) { /* shares the viewed layer's buffers, which outlive its readers */
            const gn_layer *r = &net->layers[la->view_of];
            if (a < n)
                CHECK_MSG(la->y == r->y && la->dy == r->dy && r->last_use >= la->last_use &&
                              !r->transient && r->view_of < 0,
                          "%s: layer %d is a bad view of layer %d", name, a, la->view_of);
            continue;
        }
        if (pa < net->acts || pa + sa > net->acts + net->n_acts) bad++;
        for (int b = 0; b < a; b++) {
            const gn_layer *lb = &net->layers[b % n];
            if (lb->view_of >= 0) continue;
            size_t sb = (size_t)net->batch * gn_shape_size(lb->out);
            const float *pb = b < n ? lb->y : lb->dy;
            if (!(pa < pb + sb && pb < pa + sa)) continue;
            for (int t = 0; t < 2 * n; t++) {
                int x = a < n ? alive(net, la, t) : alive_dy(net, la, t);
                int y = b < n ? alive(net, lb, t) : alive_dy(net, lb, t);
                if (x && y) {
                    if (bad++ < 5)
                        printf("%s: %s of layer %d and %s of layer %d share memory at step %d\n",
                               name, b < n ? "y" : "dy", b % n, a < n ? "y" : "dy", a % n, t);
                    break;
                }
            }
        }
    }
    CHECK_MSG(bad == 0, "%s: %d misplaced buffers", name, bad);
    CHECK_MSG(transient > 0, "%s: no layer was made transient", name);
    if (views_wanted) {
        int views = 0;
        for (int i = 0; i < n; i++) views += net->layers[i].view_of >= 0;
        CHECK_MSG(views > 0, "%s: no one-input route became a view", name);
    }
}

/* size > 0: a config file whose input is set to size x size; else cfg text. */
static void compare(const char *name, const char *path_or_text, int size, int batch)
{
    gn_err err = {0};
    gn_cfg *cfg = NULL;
    int rc = size ? gn_cfg_load(&cfg, path_or_text, &err)
                  : gn_cfg_parse(&cfg, path_or_text, name, &err);
    if (!rc && size) {
        char w[32], h[32];
        snprintf(w, sizeof w, "net.width=%d", size);
        snprintf(h, sizeof h, "net.height=%d", size);
        rc = gn_cfg_set(cfg, w, 1, &err);
        if (!rc) rc = gn_cfg_set(cfg, h, 2, &err);
    }
    CHECK_MSG(rc == GN_OK, "%s: %s", name, err.msg);
    if (rc) return;
    double la[2], lb[2];
    gn_net *keep = run(cfg, batch, 0, la), *re = run(cfg, batch, GN_NET_RECOMPUTE, lb);
    if (keep && re) {
        check_plan(re, name, strstr(name, "quickstart") == NULL);
        CHECK_MSG(la[0] == lb[0] && la[1] == lb[1], "%s: losses %.9g %.9g vs %.9g %.9g", name,
                  la[0], la[1], lb[0], lb[1]);
        CHECK_MSG(!memcmp(keep->grads, re->grads, keep->n_params * sizeof(float)),
                  "%s: gradients differ with GN_NET_RECOMPUTE", name);
        CHECK_MSG(!memcmp(keep->state, re->state, keep->n_state * sizeof(float)),
                  "%s: batch-norm statistics differ with GN_NET_RECOMPUTE", name);
        /* the output is read after the step (accuracy) */
        const float *ya = gn_net_output(keep), *yb = gn_net_output(re);
        CHECK_MSG(!memcmp(ya, yb, (size_t)batch * gn_shape_size(gn_net_out_shape(re)) * 4),
                  "%s: the output after backward differs with GN_NET_RECOMPUTE", name);
        double mk = (keep->n_acts + keep->n_dacts) * 4.0 / 1048576.0,
               mr = (re->n_acts + re->n_dacts) * 4.0 / 1048576.0;
        printf("%-22s loss %.6f -> %.6f, outputs and gradients %.2f MiB -> %.2f MiB\n", name,
               la[0], la[1], mk, mr);
        CHECK_MSG(mr < mk, "%s: no activation memory saved", name);
    }
    gn_net_free(&keep);
    gn_net_free(&re);
    gn_cfg_free(&cfg);
}

int main(int argc, char **argv)
{
    CHECK(argc == 2);
    if (argc != 2) return check_exit();
    gn_set_threads(2);
    /* Every kind of consumer of a transient output: a convolution, a max pool, a shortcut (also
     * from a later block), a route of two layers, a standalone batch norm, a layer read by two
     * others, and one-input routes (a view of a view). */
    compare("mixed graph",
            "[net]\nwidth=9\nheight=7\nchannels=3\n"
            "[convolutional]\nfilters=6\nsize=3\npad=1\nbatch_normalize=1\nactivation=relu\n"
            "[maxpool]\nsize=2\nstride=2\n"
            "[convolutional]\nfilters=6\nsize=3\npad=1\nbatch_normalize=1\nactivation=leaky\n"
            "[convolutional]\nfilters=6\nsize=1\nbatch_normalize=1\nactivation=linear\n"
            "[shortcut]\nfrom=-3\nactivation=relu\n"
            "[route]\nlayers=-1\n[route]\nlayers=-1\n"
            "[convolutional]\nfilters=4\nsize=3\npad=1\nbatch_normalize=1\nactivation=tanh\n"
            "[batchnorm]\n"
            "[route]\nlayers=-1,-2\n"
            "[convolutional]\nfilters=5\nsize=1\nactivation=linear\n"
            "[avgpool]\n[softmax]\n",
            0, 3);
    char path[1024];
    /* The shipped configs, at a small input to keep it quick: the graphs are the real ones. */
    snprintf(path, sizeof path, "%s/resnet18.cfg", argv[1]);
    compare("resnet18.cfg at 32 px", path, 32, 2);
    snprintf(path, sizeof path, "%s/quickstart.cfg", argv[1]);
    compare("quickstart.cfg", path, 32, 4);
    return check_exit();
}
