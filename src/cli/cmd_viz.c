/* gemmnet visualize / dream / saliency: pictures of what a trained net responds to. */
#include "cli/commands.h"
#include "cli/common.h"
#include "gemmnet/checkpoint.h"
#include "gemmnet/interop.h"
#include "gemmnet/data.h"
#include "gemmnet/viz.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *visualize_help =
    "usage: gemmnet visualize CONFIG --weights W (--layer L (--unit J | --units A-B) |\n"
    "                         --class K | --classes A-B) --out FILE [--steps N] [--lr X]\n"
    "                         [--l2 X] [--tv X] [--jitter PX] [--octaves N] [--seed S]\n"
    "                         [--size PX] [--set K=V ...] [--threads N]\n\n"
    "Makes an image that excites one unit: gradient ascent on the input, from noise, with L2\n"
    "and total-variation penalties, random jitter and octaves (see docs/visualize.md). The\n"
    "objective is the mean of channel J of layer L's output (element J of a vector layer);\n"
    "--class K is the score of class K before [softmax] (no --layer needed). --units A-B and\n"
    "--classes A-B write one grid of tiles. L may be negative (-1: the last layer). Without\n"
    "--weights the net is randomly initialized. Defaults: --steps 64 (per octave), --lr 0.05,\n"
    "--l2 0.01, --tv 0.05, --jitter 2, --octaves 3, --seed 1, --threads 1, --size: the input\n"
    "enlarged by a whole factor to at least 256 pixels (128 for grid tiles). FILE: PNG if it\n"
    "ends in .png, else JPEG.\n";

static const char *dream_help =
    "usage: gemmnet dream CONFIG --weights W --layer L IMAGE --out FILE [--resolution PX]\n"
    "                     [--steps N] [--lr X] [--l2 X] [--tv X] [--jitter PX] [--octaves N]\n"
    "                     [--seed S] [--size PX] [--set K=V ...] [--threads N]\n\n"
    "Deep dream: gradient ascent on 1/2 ||output of layer L||^2 amplifies what the layer sees\n"
    "in the photo, over octaves (the photo's own details are kept at each scale). The photo is\n"
    "eval-transformed to the net's input size (resize, centre crop); with --resolution PX the\n"
    "whole photo is used instead, its shorter side PX pixels, with the net rebuilt at that size\n"
    "(layers up to L must not depend on the input size: convolutions and pooling do not).\n"
    "Defaults as for visualize, except --steps 32, --lr 0.01, --l2 0, --tv 0.02, --octaves 4.\n";

static const char *saliency_help =
    "usage: gemmnet saliency CONFIG --weights W IMAGE --out FILE [--class K] [--smooth N]\n"
    "                        [--noise X] [--seed S] [--size PX]\n\n"
    "Writes the map of |d score / d pixel| (maximum over colour channels) of class K (default:\n"
    "the predicted class) for the eval-transformed photo to FILE, and the map over the photo to\n"
    "FILE with '-overlay' before the extension. --smooth N: SmoothGrad, the mean map of N copies\n"
    "with Gaussian noise of X times the input's value range (default --noise 0.15).\n";

typedef struct viz_args {
    cli_common c;
    const char *weights, *out, *image;
    int layer, has_layer;
    int unit, unit_hi, cls, cls_hi; /* unit..unit_hi, cls..cls_hi inclusive; -1: not given */
    int size, resolution;
    int smooth;
    float noise;
    gn_viz_opts o;
} viz_args;

static int parse_float(const char *cmd, const char *flag, const char *v, float lo, float *out)
{
    char *end;
    double d = strtod(v, &end);
    if (*end || !(d >= lo) || !isfinite(d)) {
        cli_usage_error(cmd, "bad %s '%s' (a number >= %g)", flag, v, lo);
        return -1;
    }
    *out = (float)d;
    return 0;
}

static int parse_layer(const char *cmd, const char *v, int *out)
{
    char *end;
    long k = strtol(v, &end, 10);
    if (*end || !*v || k < -100000 || k > 100000) {
        cli_usage_error(cmd, "bad --layer '%s'", v);
        return -1;
    }
    *out = (int)k;
    return 0;
}

/* Parses argv for cmd; returns -1 when done with a printed error (exit 2), 1 after --help. */
static int parse_args(const char *cmd, const char *help, int argc, char **argv, viz_args *a)
{
    for (int i = 1; i < argc;) {
        int t = cli_take_common_or_help(&a->c, argc, argv, &i, help);
        if (t == CLI_HELP) return 1;
        if (t == CLI_ERROR) return -1;
        if (t == CLI_TAKEN) continue;
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (f[0] == '-' && f[1] && !v && strcmp(f, "-")) {
            cli_usage_error(cmd, "%s needs a value", f);
            return -1;
        }
        if (!strcmp(f, "--weights")) {
            a->weights = v;
        } else if (!strcmp(f, "--out")) {
            a->out = v;
        } else if (!strcmp(f, "--layer")) {
            bad = parse_layer(cmd, v, &a->layer);
            a->has_layer = 1;
        } else if (!strcmp(f, "--unit")) {
            bad = (a->unit = a->unit_hi = cli_parse_int(cmd, f, v, 0, 1 << 20)) < 0;
        } else if (!strcmp(f, "--units")) {
            if (sscanf(v, "%d-%d", &a->unit, &a->unit_hi) != 2 || a->unit < 0 ||
                a->unit_hi < a->unit || a->unit_hi - a->unit >= 256) {
                cli_usage_error(cmd, "bad --units '%s' (A-B, at most 256 units)", v);
                return -1;
            }
        } else if (!strcmp(f, "--class")) {
            bad = (a->cls = a->cls_hi = cli_parse_int(cmd, f, v, 0, 1 << 20)) < 0;
        } else if (!strcmp(f, "--classes")) {
            if (sscanf(v, "%d-%d", &a->cls, &a->cls_hi) != 2 || a->cls < 0 ||
                a->cls_hi < a->cls || a->cls_hi - a->cls >= 256) {
                cli_usage_error(cmd, "bad --classes '%s' (A-B, at most 256 classes)", v);
                return -1;
            }
        } else if (!strcmp(f, "--steps")) {
            bad = (a->o.steps = cli_parse_int(cmd, f, v, 0, 1 << 20)) < 0;
        } else if (!strcmp(f, "--octaves")) {
            bad = (a->o.octaves = cli_parse_int(cmd, f, v, 1, 16)) < 0;
        } else if (!strcmp(f, "--jitter")) {
            bad = (a->o.jitter = cli_parse_int(cmd, f, v, 0, 4096)) < 0;
        } else if (!strcmp(f, "--seed")) {
            int s = cli_parse_int(cmd, f, v, 0, 1 << 30);
            bad = s < 0;
            a->o.seed = (uint64_t)s;
        } else if (!strcmp(f, "--size")) {
            bad = (a->size = cli_parse_int(cmd, f, v, 1, 8192)) < 0;
        } else if (!strcmp(f, "--resolution")) {
            bad = (a->resolution = cli_parse_int(cmd, f, v, 8, 4096)) < 0;
        } else if (!strcmp(f, "--smooth")) {
            bad = (a->smooth = cli_parse_int(cmd, f, v, 0, 100000)) < 0;
        } else if (!strcmp(f, "--lr")) {
            bad = parse_float(cmd, f, v, 0, &a->o.lr);
        } else if (!strcmp(f, "--l2")) {
            bad = parse_float(cmd, f, v, 0, &a->o.l2);
        } else if (!strcmp(f, "--tv")) {
            bad = parse_float(cmd, f, v, 0, &a->o.tv);
        } else if (!strcmp(f, "--noise")) {
            bad = parse_float(cmd, f, v, 0, &a->noise);
        } else if (f[0] == '-' && f[1]) {
            cli_usage_error(cmd, "unexpected '%s'", f);
            return -1;
        } else {
            if (!a->c.config)
                a->c.config = f;
            else if (!a->image)
                a->image = f;
            else {
                cli_usage_error(cmd, "unexpected '%s'", f);
                return -1;
            }
            i++;
            continue;
        }
        if (bad) return -1;
        i += 2;
    }
    return 0;
}

/* Everything a command needs: config, data normalization, net with its weights. */
typedef struct viz_session {
    gn_cfg *cfg;
    gn_data_opts d;
    gn_net *net;
    gn_loader *names; /* only for the class names of the configured data set, if any */
    int first_skipped; /* at a working resolution: the first layer whose weights did not fit */
} viz_session;

static void session_free(viz_session *s)
{
    gn_loader_free(&s->names);
    gn_net_free(&s->net);
    gn_cfg_free(&s->cfg);
}

/* Loads the config (at a working resolution of work_w x work_h when work_w > 0), builds the net
 * for one image and loads the weights. At a working resolution, tensors whose shape depends on
 * the input size are skipped and s->first_skipped says from which layer on the net is unusable.
 * Returns -1 after printing, or a status with err set. */
static int session_open(viz_session *s, viz_args *a, int work_w, int work_h, gn_err *err)
{
    gn_set_threads(a->c.threads);
    s->first_skipped = 1 << 30;
    if (!(s->cfg = cli_load_config(&a->c))) return -1;
    int rc = GN_OK;
    if (work_w > 0) {
        char set[64];
        snprintf(set, sizeof set, "net.width=%d", work_w);
        rc = gn_cfg_set(s->cfg, set, 0, err);
        snprintf(set, sizeof set, "net.height=%d", work_h);
        if (!rc) rc = gn_cfg_set(s->cfg, set, 0, err);
    }
    if (!rc) rc = gn_data_opts_parse(&s->d, s->cfg, err);
    if (!rc) rc = gn_weights_input_convention(&s->d, a->weights, err);
    if (!rc) rc = gn_net_build(&s->net, s->cfg, 1, 1, err);
    if (rc && work_w > 0) return gn_err_wrap(err, "at the working resolution %dx%d", work_w, work_h);
    if (rc) return rc;
    if (s->net->in.c != 1 && s->net->in.c != 3)
        return gn_err_set(err, GN_ENOTSUP, "%s: the input has %d channels; pictures need 1 or 3",
                          s->cfg->path, s->net->in.c);
    if (a->weights) {
        gn_ckpt *ck = NULL;
        gn_darknet_info dk;
        gn_weights_kind kind;
        rc = gn_weights_load(s->net, a->weights,
                             work_w > 0 ? GN_CKPT_SKIP_MISMATCH : GN_CKPT_STRICT, &ck, &kind,
                             &dk, err);
        if (!rc && kind == GN_WEIGHTS_DARKNET && dk.first_missing >= 0 &&
            dk.first_missing < s->first_skipped)
            s->first_skipped = dk.first_missing;
        for (int i = 0; !rc && i < gn_ckpt_n_skipped(ck); i++) {
            int l;
            if (sscanf(gn_ckpt_skipped(ck, i), "layers.%d.", &l) == 1 && l < s->first_skipped)
                s->first_skipped = l;
        }
        gn_ckpt_close(&ck);
        if (rc) return gn_err_wrap(err, "%s", a->weights);
    } else {
        fprintf(stderr, "gemmnet: no --weights: using a randomly initialized net\n");
    }
    memcpy(a->o.mean, s->d.mean, sizeof a->o.mean);
    memcpy(a->o.std, s->d.std, sizeof a->o.std);
    return GN_OK;
}

/* "star" for class k when the config names a data set whose classes can be listed, else "". */
static const char *class_name(viz_session *s, int k)
{
    if (!s->names && (s->d.train[0] || s->d.val[0])) {
        gn_data_opts o = s->d;
        o.workers = 1;
        o.prefetch = 1;
        gn_err ignored = {0};
        if (gn_loader_create(&s->names, &o, o.train[0] ? GN_SPLIT_TRAIN : GN_SPLIT_VAL, 1, 1,
                             &ignored))
            s->d.train[0] = s->d.val[0] = 0; /* do not try again */
    }
    const char *n = s->names ? gn_loader_class_name(s->names, k) : NULL;
    return n ? n : "";
}

static int resolve_layer(const gn_net *net, int layer, gn_err *err)
{
    int l = layer < 0 ? net->n_layers + layer : layer;
    if (l < 0 || l >= net->n_layers) {
        gn_err_set(err, GN_EINVAL, "--layer %d: the net has layers 0..%d", layer,
                   net->n_layers - 1);
        return -1;
    }
    return l;
}

/* Output size: --size for the shorter side, else the input scaled by a whole factor to at least
 * 256 pixels. */
static void out_size(const gn_net *net, int size, int *oh, int *ow)
{
    int H = net->in.h, W = net->in.w, m = H < W ? H : W;
    if (size > 0) {
        *oh = (int)lround((double)H * size / m);
        *ow = (int)lround((double)W * size / m);
    } else {
        int k = (256 + m - 1) / m;
        *oh = H * k;
        *ow = W * k;
    }
}

static int save_image(const char *path, const float *x, const gn_net *net, const gn_viz_opts *o,
                      int oh, int ow, gn_err *err)
{
    unsigned char *rgb = malloc((size_t)oh * ow * 3);
    if (!rgb) return gn_err_set(err, GN_ENOMEM, "out of memory");
    int rc = gn_viz_render(rgb, oh, ow, x, net->in.c, net->in.h, net->in.w, o->mean, o->std);
    if (rc) gn_err_set(err, rc, "out of memory");
    else rc = gn_viz_save_rgb(path, rgb, ow, oh, err);
    free(rgb);
    return rc;
}

int cmd_visualize(int argc, char **argv)
{
    viz_args a = {0};
    a.c.threads = 1; /* one image at a time: threads cost more than they give */
    a.unit = a.unit_hi = a.cls = a.cls_hi = -1;
    gn_viz_opts_default(&a.o);
    int p = parse_args("visualize", visualize_help, argc, argv, &a);
    if (p) return p > 0 ? 0 : 2;
    if (!a.c.config) return cli_usage_error("visualize", "missing CONFIG");
    if (!a.out) return cli_usage_error("visualize", "missing --out FILE");
    if (a.image) return cli_usage_error("visualize", "unexpected '%s'", a.image);
    if (a.resolution) return cli_usage_error("visualize", "--resolution is for dream");
    if ((a.cls >= 0) == (a.unit >= 0))
        return cli_usage_error("visualize",
                               "give one of --unit J, --units A-B, --class K or --classes A-B");
    if (a.cls < 0 && !a.has_layer) return cli_usage_error("visualize", "missing --layer L");

    gn_err err = {0};
    viz_session s = {0};
    int rc = 1, n = 0;
    unsigned char **tiles = NULL, *grid = NULL;
    float *img = NULL;
    double *vals = NULL;
    int sr = session_open(&s, &a, 0, 0, &err);
    if (sr) {
        if (sr > 0) cli_fail(&err);
        goto done;
    }
    int layer;
    if (a.cls >= 0) {
        layer = a.has_layer ? resolve_layer(s.net, a.layer, &err) : gn_viz_score_layer(s.net);
        a.unit = a.cls;
        a.unit_hi = a.cls_hi;
    } else {
        layer = resolve_layer(s.net, a.layer, &err);
    }
    if (layer < 0) {
        cli_fail(&err);
        goto done;
    }
    n = a.unit_hi - a.unit + 1;
    int oh, ow;
    out_size(s.net, a.size, &oh, &ow);
    gn_viz_trace tr = {0};
    tr.cap = a.o.steps * a.o.octaves;
    img = malloc(sizeof(float) * gn_shape_size(s.net->in));
    vals = malloc(sizeof(double) * (size_t)(tr.cap > 0 ? tr.cap : 1));
    tiles = calloc((size_t)n, sizeof *tiles);
    if (!img || !vals || !tiles) {
        cli_fail(&(gn_err){GN_ENOMEM, "out of memory"});
        goto done;
    }
    tr.values = vals;
    const gn_layer *l = &s.net->layers[layer];
    printf("layer %d (%s, %dx%dx%d), %d step%s x %d octave%s\n", layer, l->ops->section,
           l->out.c, l->out.h, l->out.w, a.o.steps, a.o.steps == 1 ? "" : "s", a.o.octaves,
           a.o.octaves == 1 ? "" : "s");
    for (int u = a.unit; u <= a.unit_hi; u++) {
        if (gn_viz_ascent(s.net, layer, GN_VIZ_UNIT, u, &a.o, NULL, img, &tr, &err)) {
            cli_fail(&err);
            goto done;
        }
        double v1 = 0;
        gn_viz_input_grad(s.net, layer, GN_VIZ_UNIT, u, img, NULL, &v1, &err);
        if (a.cls >= 0 && !a.has_layer)
            printf("class %d%s%s: score %.4g at the first step, %.4g at the end\n", u,
                   *class_name(&s, u) ? " " : "", class_name(&s, u), tr.n ? tr.values[0] : v1,
                   v1);
        else
            printf("unit %d: objective %.4g at the first step, %.4g at the end\n", u,
                   tr.n ? tr.values[0] : v1, v1);
        if (n == 1) {
            if (save_image(a.out, img, s.net, &a.o, oh, ow, &err)) {
                cli_fail(&err);
                goto done;
            }
            continue;
        }
        int th = oh, tw = ow;
        if (!a.size) {
            /* tiles of a grid: at least 128 pixels, not the full single-image size */
            int m = s.net->in.h < s.net->in.w ? s.net->in.h : s.net->in.w, k = (128 + m - 1) / m;
            th = s.net->in.h * k;
            tw = s.net->in.w * k;
        }
        oh = th;
        ow = tw;
        if (!(tiles[u - a.unit] = malloc((size_t)th * tw * 3)) ||
            gn_viz_render(tiles[u - a.unit], th, tw, img, s.net->in.c, s.net->in.h, s.net->in.w,
                          a.o.mean, a.o.std)) {
            cli_fail(&(gn_err){GN_ENOMEM, "out of memory"});
            goto done;
        }
    }
    if (n > 1) {
        int cols = (int)ceil(sqrt((double)n)), gh, gw;
        gn_viz_grid_size(n, oh, ow, 4, cols, &gh, &gw);
        if (!(grid = malloc((size_t)gh * gw * 3))) {
            cli_fail(&(gn_err){GN_ENOMEM, "out of memory"});
            goto done;
        }
        gn_viz_grid(grid, (const unsigned char *const *)tiles, n, oh, ow, 4, cols);
        if (gn_viz_save_rgb(a.out, grid, gw, gh, &err)) {
            cli_fail(&err);
            goto done;
        }
        printf("wrote %s (%d units, %dx%d)\n", a.out, n, gw, gh);
    } else {
        printf("wrote %s (%dx%d)\n", a.out, ow, oh);
    }
    rc = 0;
done:
    for (int i = 0; tiles && i < n; i++) free(tiles[i]);
    free(tiles);
    free(grid);
    free(img);
    free(vals);
    session_free(&s);
    return rc;
}

/* Eval-transforms a decoded photo to the net's input: resize the shorter side to eval_resize,
 * centre crop (at a working resolution the crop is the whole resized photo). */
static int photo_to_input(const unsigned char *rgb, int w, int h, const gn_data_opts *d,
                          const gn_net *net, float *x, gn_err *err)
{
    gn_data_opts o = *d;
    int side = net->in.w < net->in.h ? net->in.w : net->in.h;
    o.channels = net->in.c;
    o.width = net->in.w;
    o.height = net->in.h;
    if (o.eval_resize < side) o.eval_resize = (int)lround(side / 0.875);
    int rc = gn_data_eval_transform(&o, rgb, w, h, x);
    return rc ? gn_err_set(err, rc, "out of memory") : GN_OK;
}

static int load_photo(const char *path, const gn_data_opts *d, const gn_net *net, float *x,
                      gn_err *err)
{
    unsigned char *rgb = NULL;
    int w, h;
    int rc = gn_jpeg_load_rgb(path, &rgb, &w, &h, err);
    if (!rc) rc = photo_to_input(rgb, w, h, d, net, x, err);
    free(rgb);
    return rc;
}

int cmd_dream(int argc, char **argv)
{
    viz_args a = {0};
    a.c.threads = 1; /* one image at a time: threads cost more than they give */
    a.unit = a.unit_hi = a.cls = a.cls_hi = -1;
    gn_viz_opts_default(&a.o);
    a.o.steps = 32;
    a.o.lr = 0.01f;
    a.o.l2 = 0;
    a.o.tv = 0.02f;
    a.o.octaves = 4;
    int p = parse_args("dream", dream_help, argc, argv, &a);
    if (p) return p > 0 ? 0 : 2;
    if (!a.c.config) return cli_usage_error("dream", "missing CONFIG");
    if (!a.image) return cli_usage_error("dream", "missing IMAGE");
    if (!a.out) return cli_usage_error("dream", "missing --out FILE");
    if (!a.has_layer) return cli_usage_error("dream", "missing --layer L");
    if (a.unit >= 0 || a.cls >= 0) return cli_usage_error("dream", "--unit/--class: see visualize");

    gn_err err = {0};
    viz_session s = {0};
    int rc = 1;
    float *x = NULL, *img = NULL;
    double *vals = NULL;
    unsigned char *rgb = NULL;
    int pw = 0, ph = 0, ww = 0, wh = 0;
    if (gn_jpeg_load_rgb(a.image, &rgb, &pw, &ph, &err)) {
        cli_fail(&err);
        goto done;
    }
    if (a.resolution > 0) {
        /* the whole photo, its shorter side at the working resolution (as gn_center_box sizes
         * a resize, so the centre crop is all of it) */
        if (pw <= ph) {
            ww = a.resolution;
            wh = (int)((int64_t)a.resolution * ph / pw);
        } else {
            wh = a.resolution;
            ww = (int)((int64_t)a.resolution * pw / ph);
        }
    }
    int sr = session_open(&s, &a, ww, wh, &err);
    if (sr) {
        if (sr > 0) cli_fail(&err);
        goto done;
    }
    if (a.resolution > 0) s.d.eval_resize = a.resolution;
    int layer = resolve_layer(s.net, a.layer, &err);
    if (layer >= s.first_skipped) {
        err = (gn_err){GN_ESHAPE, ""};
        snprintf(err.msg, sizeof err.msg,
                 "layer %d needs the weights of layer %d, whose shape depends on the input size: "
                 "at --resolution only layers before %d can dream", layer, s.first_skipped,
                 s.first_skipped);
        layer = -1;
    }
    gn_viz_trace tr = {0};
    tr.cap = a.o.steps * a.o.octaves;
    size_t N = gn_shape_size(s.net->in);
    x = malloc(sizeof(float) * N);
    img = malloc(sizeof(float) * N);
    vals = malloc(sizeof(double) * (size_t)(tr.cap > 0 ? tr.cap : 1));
    tr.values = vals;
    if (!x || !img || !vals) err = (gn_err){GN_ENOMEM, "out of memory"};
    if (layer < 0 || !x || !img || !vals ||
        photo_to_input(rgb, pw, ph, &s.d, s.net, x, &err) ||
        gn_viz_ascent(s.net, layer, GN_VIZ_DREAM, 0, &a.o, x, img, &tr, &err)) {
        cli_fail(&err);
        goto done;
    }
    double v0 = 0, v1 = 0;
    gn_viz_input_grad(s.net, layer, GN_VIZ_DREAM, 0, x, NULL, &v0, &err);
    gn_viz_input_grad(s.net, layer, GN_VIZ_DREAM, 0, img, NULL, &v1, &err);
    int oh, ow;
    out_size(s.net, a.size, &oh, &ow);
    if (save_image(a.out, img, s.net, &a.o, oh, ow, &err)) {
        cli_fail(&err);
        goto done;
    }
    printf("layer %d (%s): 1/2 ||y||^2 %.4g on the photo, %.4g on the dream\nwrote %s (%dx%d)\n",
           layer, s.net->layers[layer].ops->section, v0, v1, a.out, ow, oh);
    rc = 0;
done:
    free(rgb);
    free(x);
    free(img);
    free(vals);
    session_free(&s);
    return rc;
}

/* "dir/a.jpg" -> "dir/a-overlay.jpg"; "a" -> "a-overlay". NULL if out of memory. */
static char *overlay_path(const char *path)
{
    const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
    if (!dot || (slash && dot < slash) || dot == path || (slash && dot == slash + 1))
        dot = path + strlen(path);
    size_t n = strlen(path) + 9;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%.*s-overlay%s", (int)(dot - path), path, dot);
    return s;
}

int cmd_saliency(int argc, char **argv)
{
    viz_args a = {0};
    a.c.threads = 1; /* one image at a time: threads cost more than they give */
    a.unit = a.unit_hi = a.cls = a.cls_hi = -1;
    a.noise = 0.15f;
    gn_viz_opts_default(&a.o);
    int p = parse_args("saliency", saliency_help, argc, argv, &a);
    if (p) return p > 0 ? 0 : 2;
    if (!a.c.config) return cli_usage_error("saliency", "missing CONFIG");
    if (!a.image) return cli_usage_error("saliency", "missing IMAGE");
    if (!a.out) return cli_usage_error("saliency", "missing --out FILE");
    if (a.resolution) return cli_usage_error("saliency", "--resolution is for dream");
    if (a.unit >= 0 || a.has_layer)
        return cli_usage_error("saliency", "--unit/--layer: saliency is for class scores");

    gn_err err = {0};
    viz_session s = {0};
    int rc = 1;
    float *x = NULL, *map = NULL;
    unsigned char *photo = NULL, *heat = NULL;
    char *opath = NULL;
    int sr = session_open(&s, &a, 0, 0, &err);
    if (sr) {
        if (sr > 0) cli_fail(&err);
        goto done;
    }
    int oh, ow, cls;
    out_size(s.net, a.size, &oh, &ow);
    size_t N = gn_shape_size(s.net->in), HW = (size_t)s.net->in.h * s.net->in.w;
    x = malloc(sizeof(float) * N);
    map = malloc(sizeof(float) * HW);
    photo = malloc((size_t)oh * ow * 3);
    heat = malloc((size_t)oh * ow * 3);
    opath = overlay_path(a.out);
    if (!x || !map || !photo || !heat || !opath) {
        err = (gn_err){GN_ENOMEM, "out of memory"};
        cli_fail(&err);
        goto done;
    }
    if (load_photo(a.image, &s.d, s.net, x, &err) ||
        gn_viz_saliency(s.net, x, a.cls, a.smooth, a.noise, a.o.seed, map, &cls, &err)) {
        cli_fail(&err);
        goto done;
    }
    int S = gn_viz_score_layer(s.net);
    double score = 0;
    gn_viz_input_grad(s.net, S, GN_VIZ_UNIT, cls, x, NULL, &score, &err);
    if (gn_viz_render(photo, oh, ow, x, s.net->in.c, s.net->in.h, s.net->in.w, a.o.mean,
                      a.o.std) ||
        gn_viz_heatmap(heat, oh, ow, map, s.net->in.h, s.net->in.w, NULL)) {
        cli_fail(&(gn_err){GN_ENOMEM, "out of memory"});
        goto done;
    }
    if (gn_viz_save_rgb(a.out, heat, ow, oh, &err) ||
        gn_viz_heatmap(heat, oh, ow, map, s.net->in.h, s.net->in.w, photo) ||
        gn_viz_save_rgb(opath, heat, ow, oh, &err)) {
        if (!err.msg[0]) err = (gn_err){GN_ENOMEM, "out of memory"};
        cli_fail(&err);
        goto done;
    }
    const char *nm = class_name(&s, cls);
    printf("class %d%s%s (%s), score %.4g (layer %d)%s\nwrote %s and %s (%dx%d)\n", cls,
           *nm ? " " : "", nm, a.cls >= 0 ? "given" : "predicted", score, S,
           a.smooth > 0 ? ", SmoothGrad" : "", a.out, opath, ow, oh);
    rc = 0;
done:
    free(x);
    free(map);
    free(photo);
    free(heat);
    free(opath);
    session_free(&s);
    return rc;
}
