/* Unit visualization, deep dream and saliency on small random nets: the objective rises, the
 * saliency map is the true gradient (central differences), resampling's adjoint is its transpose,
 * pictures decode at the right size, and the weights never change. */
#include "check.h"
#include "gemmnet/checkpoint.h"
#include "gemmnet/data.h"
#include "gemmnet/gemmnet.h"
#include "gemmnet/viz.h"
#include "core/rng.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* A net with the layer kinds the commands meet: conv + batch norm, pooling, a vector head. */
static const char *conv_net =
    "[net]\nwidth=16\nheight=16\nchannels=3\n"
    "[convolutional]\nbatch_normalize=1\nfilters=8\nsize=3\nstride=1\npad=1\nactivation=relu\n"
    "[maxpool]\nsize=2\nstride=2\n"
    "[convolutional]\nbatch_normalize=1\nfilters=12\nsize=3\nstride=1\npad=1\nactivation=leaky\n"
    "[avgpool]\n"
    "[connected]\noutput=5\nactivation=linear\n"
    "[softmax]\n";

/* No kinks (tanh, average pooling), so finite differences are exact up to rounding. */
static const char *smooth_net =
    "[net]\nwidth=12\nheight=10\nchannels=3\n"
    "[convolutional]\nbatch_normalize=1\nfilters=6\nsize=3\nstride=1\npad=1\nactivation=tanh\n"
    "[convolutional]\nfilters=8\nsize=3\nstride=2\npad=1\nactivation=tanh\n"
    "[avgpool]\n"
    "[connected]\noutput=4\nactivation=linear\n"
    "[softmax]\n";

static char dir[512];

static gn_net *build(const char *name, const char *text, uint64_t seed)
{
    gn_err err = {0};
    gn_cfg *cfg = NULL;
    gn_net *net = NULL;
    if (gn_cfg_parse(&cfg, text, name, &err) || gn_net_build(&net, cfg, 1, seed, &err)) {
        CHECK_MSG(0, "%s: %s", name, err.msg);
        gn_cfg_free(&cfg);
        return NULL;
    }
    /* batch-norm running statistics away from 0/1, so evaluation mode matters */
    gn_rng r = gn_rng_make(seed);
    for (int i = 0; i < net->n_layers; i++) {
        gn_layer *l = &net->layers[i];
        for (int p = 0; p < l->n_par; p++) {
            if (l->par[p].trainable) continue;
            float *d = gn_param_data(l, &l->par[p]);
            int var = strstr(l->par[p].name, "var") != NULL;
            for (size_t k = 0; k < l->par[p].count; k++)
                d[k] = var ? (float)(0.5 + gn_rng_uniform(&r)) : (float)(0.2 * gn_rng_normal(&r));
        }
    }
    return net;
}

static void free_net(gn_net **net)
{
    if (!*net) return;
    gn_cfg *cfg = (*net)->cfg;
    gn_net_free(net);
    gn_cfg_free(&cfg);
}

/* Copies of params and state, to prove nothing wrote them. */
typedef struct snapshot {
    float *params, *state;
} snapshot;

static snapshot take(const gn_net *net)
{
    snapshot s = {malloc(sizeof(float) * (net->n_params + 1)),
                  malloc(sizeof(float) * (net->n_state + 1))};
    if (s.params) memcpy(s.params, net->params, sizeof(float) * net->n_params);
    if (s.state) memcpy(s.state, net->state, sizeof(float) * net->n_state);
    return s;
}

static void expect_same(const gn_net *net, snapshot *s, const char *what)
{
    CHECK_MSG(s->params && !memcmp(s->params, net->params, sizeof(float) * net->n_params),
              "%s changed the parameters", what);
    CHECK_MSG(s->state && !memcmp(s->state, net->state, sizeof(float) * net->n_state),
              "%s changed the state", what);
    free(s->params);
    free(s->state);
}

static void random_image(float *x, size_t n, uint64_t seed)
{
    gn_rng r = gn_rng_make(seed);
    for (size_t i = 0; i < n; i++) x[i] = (float)(0.8 * gn_rng_normal(&r));
}

/* The objective per step rises: the end clearly above the start. */
static void expect_rise(const gn_viz_trace *t, int want_n, const char *what)
{
    CHECK_MSG(t->n == want_n, "%s: %d trace values, expected %d", what, t->n, want_n);
    if (t->n < 2) return;
    double first = t->values[0], last = t->values[t->n - 1];
    printf("%-34s objective %.4g -> %.4g\n", what, first, last);
    CHECK_MSG(last > first + 0.5 * fabs(first) + 0.05, "%s: %.5g -> %.5g", what, first, last);
    /* and mostly monotone: the best of the last quarter beats everything in the first quarter */
    double best_first = -INFINITY, best_last = -INFINITY;
    for (int i = 0; i < t->n / 4; i++) best_first = fmax(best_first, t->values[i]);
    for (int i = t->n - t->n / 4; i < t->n; i++) best_last = fmax(best_last, t->values[i]);
    CHECK_MSG(best_last > best_first, "%s: not rising (%.5g vs %.5g)", what, best_first, best_last);
}

static void test_ascent(void)
{
    gn_net *net = build("conv_net", conv_net, 3);
    if (!net) return;
    gn_err err = {0};
    gn_viz_opts o;
    gn_viz_opts_default(&o);
    o.steps = 24;
    o.octaves = 2;
    double vals[128];
    gn_viz_trace tr = {vals, 128, 0};
    size_t N = gn_shape_size(net->in);
    float *img = malloc(sizeof(float) * N), *photo = malloc(sizeof(float) * N);
    if (!img || !photo) {
        CHECK(0);
        goto done;
    }
    const struct {
        int layer, unit;
        const char *what;
    } cases[] = {{0, 2, "conv unit (layer 0, channel 2)"},
                 {2, 7, "conv unit (layer 2, channel 7)"},
                 {3, 4, "vector unit (avgpool, element 4)"}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        snapshot s = take(net);
        int rc = gn_viz_ascent(net, cases[c].layer, GN_VIZ_UNIT, cases[c].unit, &o, NULL, img,
                               &tr, &err);
        CHECK_MSG(rc == GN_OK, "%s", err.msg);
        expect_rise(&tr, o.steps * o.octaves, cases[c].what);
        expect_same(net, &s, cases[c].what);
    }

    /* a class score: the input of [softmax] */
    int S = gn_viz_score_layer(net);
    CHECK(S == 4);
    snapshot s = take(net);
    o.octaves = 1;
    o.jitter = 0;
    CHECK_MSG(gn_viz_ascent(net, S, GN_VIZ_UNIT, 1, &o, NULL, img, &tr, &err) == GN_OK, "%s",
              err.msg);
    expect_rise(&tr, o.steps, "class score 1");
    /* the returned image scores what the trace's last steps say (no jitter here) */
    double v = 0;
    CHECK(gn_viz_input_grad(net, S, GN_VIZ_UNIT, 1, img, NULL, &v, &err) == GN_OK);
    CHECK_MSG(v >= tr.values[tr.n / 2], "final image scores %.5g", v);
    /* every pixel stays in the valid range of the normalization */
    int inside = 1;
    for (int ch = 0; ch < 3; ch++)
        for (size_t i = 0; i < N / 3; i++) {
            float p = img[ch * (N / 3) + i] * o.std[ch] + o.mean[ch];
            inside &= p >= -1e-5f && p <= 1 + 1e-5f;
        }
    CHECK(inside);
    expect_same(net, &s, "class score ascent");

    /* deep dream from a picture, with octaves */
    s = take(net);
    random_image(photo, N, 11);
    o.octaves = 3;
    o.jitter = 1;
    o.l2 = 0;
    CHECK_MSG(gn_viz_ascent(net, 2, GN_VIZ_DREAM, 0, &o, photo, img, &tr, &err) == GN_OK, "%s",
              err.msg);
    expect_rise(&tr, o.steps * o.octaves, "dream (layer 2)");
    expect_same(net, &s, "dream");

    /* a ReLU unit that faint noise leaves off (bias -1): the noise is drawn again stronger */
    free_net(&net);
    net = build("dead_unit", "[net]\nwidth=8\nheight=8\nchannels=3\n"
                "[convolutional]\nfilters=2\nsize=3\npad=1\nactivation=relu\n", 3);
    if (!net) goto done;
    net->layers[0].params[net->layers[0].par[1].offset + 1] = -1.0f; /* bias of unit 1 */
    o.octaves = 1;
    o.jitter = 0;
    CHECK_MSG(!strcmp(net->layers[0].par[1].name, "bias"), "%s", net->layers[0].par[1].name);
    CHECK_MSG(gn_viz_ascent(net, 0, GN_VIZ_UNIT, 1, &o, NULL, img, &tr, &err) == GN_OK, "%s",
              err.msg);
    expect_rise(&tr, o.steps, "ReLU unit off at the start");

    /* refusals */
    CHECK(gn_viz_ascent(net, 9, GN_VIZ_UNIT, 0, &o, NULL, img, &tr, &err) == GN_EINVAL);
    CHECK(gn_viz_ascent(net, 0, GN_VIZ_UNIT, 8, &o, NULL, img, &tr, &err) == GN_EINVAL);
    printf("refused: %s\n", err.msg);
done:
    free(img);
    free(photo);
    free_net(&net);
}

/* The score of class k at x, in float as the net computes it. */
static double score_at(gn_net *net, int S, int k, const float *x)
{
    double v = 0;
    gn_err err = {0};
    gn_viz_input_grad(net, S, GN_VIZ_UNIT, k, x, NULL, &v, &err);
    return v;
}

static void test_saliency(void)
{
    gn_net *net = build("smooth_net", smooth_net, 5);
    if (!net) return;
    gn_err err = {0};
    const int C = 3, HW = net->in.h * net->in.w;
    const size_t N = (size_t)C * HW;
    float *x = malloc(sizeof(float) * N), *xp = malloc(sizeof(float) * N);
    float *map = malloc(sizeof(float) * HW), *map2 = malloc(sizeof(float) * HW);
    if (!x || !xp || !map || !map2) {
        CHECK(0);
        goto done;
    }
    random_image(x, N, 21);
    int S = gn_viz_score_layer(net), cls = -1;
    snapshot s = take(net);
    CHECK_MSG(gn_viz_saliency(net, x, -1, 0, 0, 1, map, &cls, &err) == GN_OK, "%s", err.msg);
    expect_same(net, &s, "saliency");
    /* the predicted class is the arg max of the scores */
    int best = 0;
    for (int k = 1; k < 4; k++)
        if (score_at(net, S, k, x) > score_at(net, S, best, x)) best = k;
    CHECK_MSG(cls == best, "predicted %d, arg max %d", cls, best);

    float top = 0;
    for (int p = 0; p < HW; p++) top = fmaxf(top, map[p]);
    CHECK(top > 0);
    gn_rng r = gn_rng_make(77);
    int compared = 0;
    double worst = 0;
    const double h = 1e-2;
    for (int t = 0; t < 40; t++) {
        int p = (int)gn_rng_below(&r, (uint64_t)HW);
        double m = 0;
        for (int c = 0; c < C; c++) {
            memcpy(xp, x, sizeof(float) * N);
            xp[(size_t)c * HW + p] = (float)(x[(size_t)c * HW + p] + h);
            double up = score_at(net, S, cls, xp);
            xp[(size_t)c * HW + p] = (float)(x[(size_t)c * HW + p] - h);
            double dn = score_at(net, S, cls, xp);
            m = fmax(m, fabs((up - dn) / (2 * h)));
        }
        if (map[p] < 0.05f * top) continue; /* "tiny": relative error means nothing there */
        double e = fabs(m - map[p]) / fmax(m, map[p]);
        worst = fmax(worst, e);
        compared++;
        CHECK_MSG(e < 2e-2, "pixel %d: map %.6g, central differences %.6g", p, map[p], m);
    }
    printf("saliency vs central differences: %d pixels, worst relative error %.2e\n", compared,
           worst);
    CHECK(compared >= 10);

    /* a given class, and SmoothGrad: finite, non-negative, and close to the plain map at tiny
     * noise */
    CHECK(gn_viz_saliency(net, x, 2, 0, 0, 1, map, &cls, &err) == GN_OK && cls == 2);
    s = take(net);
    CHECK(gn_viz_saliency(net, x, 2, 6, 1e-6f, 9, map2, NULL, &err) == GN_OK);
    double diff = 0, mx = 0;
    for (int p = 0; p < HW; p++) {
        diff = fmax(diff, fabs(map2[p] - map[p]));
        mx = fmax(mx, map[p]);
    }
    CHECK_MSG(diff <= 1e-3 * mx, "SmoothGrad at noise 1e-6 differs by %.3g", diff);
    CHECK(gn_viz_saliency(net, x, 2, 6, 0.2f, 9, map2, NULL, &err) == GN_OK);
    int ok = 1;
    for (int p = 0; p < HW; p++) ok &= isfinite(map2[p]) && map2[p] >= 0;
    CHECK(ok);
    expect_same(net, &s, "SmoothGrad");
    CHECK(gn_viz_saliency(net, x, 4, 0, 0, 1, map, NULL, &err) == GN_EINVAL);
done:
    free(x);
    free(xp);
    free(map);
    free(map2);
    free_net(&net);
}

/* <R a, b> = <a, R^T b> for enlarging, shrinking and mixed sizes: the octave gradient is the
 * true gradient of the upsampled image. */
static void test_resize_adjoint(void)
{
    const int sizes[][4] = {{5, 7, 16, 16}, {16, 16, 6, 9}, {3, 12, 11, 4}, {8, 8, 8, 8}};
    for (size_t t = 0; t < sizeof sizes / sizeof sizes[0]; t++) {
        int sh = sizes[t][0], sw = sizes[t][1], dh = sizes[t][2], dw = sizes[t][3], c = 2;
        size_t ns = (size_t)c * sh * sw, nd = (size_t)c * dh * dw;
        float *a = malloc(sizeof(float) * ns), *ra = malloc(sizeof(float) * nd);
        float *b = malloc(sizeof(float) * nd), *rtb = malloc(sizeof(float) * ns);
        if (!a || !ra || !b || !rtb) {
            CHECK(0);
        } else {
            random_image(a, ns, 3 + t);
            random_image(b, nd, 30 + t);
            CHECK(gn_viz_resize(ra, dh, dw, a, sh, sw, c) == GN_OK);
            CHECK(gn_viz_resize_adjoint(rtb, sh, sw, b, dh, dw, c) == GN_OK);
            double l = 0, r = 0;
            for (size_t i = 0; i < nd; i++) l += (double)ra[i] * b[i];
            for (size_t i = 0; i < ns; i++) r += (double)a[i] * rtb[i];
            CHECK_MSG(fabs(l - r) <= 1e-4 * fmax(1, fabs(l)), "%dx%d -> %dx%d: %.7g vs %.7g", sh,
                      sw, dh, dw, l, r);
            /* a constant image stays constant (rows of the filter sum to 1) */
            for (size_t i = 0; i < ns; i++) a[i] = 0.25f;
            gn_viz_resize(ra, dh, dw, a, sh, sw, c);
            double dev = 0;
            for (size_t i = 0; i < nd; i++) dev = fmax(dev, fabs(ra[i] - 0.25));
            CHECK(dev < 1e-6);
        }
        free(a);
        free(ra);
        free(b);
        free(rtb);
    }
}

static void path_in(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", dir, name); }

static void expect_jpeg(const char *path, int w, int h)
{
    unsigned char *rgb = NULL;
    int gw = 0, gh = 0;
    gn_err err = {0};
    int rc = gn_jpeg_load_rgb(path, &rgb, &gw, &gh, &err);
    CHECK_MSG(rc == GN_OK, "%s: %s", path, err.msg);
    CHECK_MSG(gw == w && gh == h, "%s: %dx%d, expected %dx%d", path, gw, gh, w, h);
    free(rgb);
}

/* Reads back our own PNG: signature, IHDR, and the pixels from the stored deflate blocks. */
static void expect_png(const char *path, const unsigned char *want, int w, int h)
{
    FILE *f = fopen(path, "rb");
    CHECK_MSG(f != NULL, "%s", path);
    if (!f) return;
    unsigned char *buf = malloc(1 << 20);
    size_t n = buf ? fread(buf, 1, 1 << 20, f) : 0;
    fclose(f);
    CHECK(n > 8 + 25 + 12 && !memcmp(buf, "\x89PNG\r\n\x1a\n", 8) && !memcmp(buf + 12, "IHDR", 4));
    if (n < 64) {
        free(buf);
        return;
    }
    unsigned gw = (unsigned)buf[16] << 24 | buf[17] << 16 | buf[18] << 8 | buf[19];
    unsigned gh = (unsigned)buf[20] << 24 | buf[21] << 16 | buf[22] << 8 | buf[23];
    CHECK(gw == (unsigned)w && gh == (unsigned)h && buf[24] == 8 && buf[25] == 2);
    /* IDAT follows IHDR: 33 = 8 + 4 + 4 + 13 + 4 */
    CHECK(!memcmp(buf + 37, "IDAT", 4));
    const unsigned char *z = buf + 41 + 2;
    size_t row = (size_t)w * 3 + 1, pos = 0, raw_n = row * (size_t)h;
    int ok = 1;
    while (ok && pos < raw_n && (size_t)(z - buf) + 5 < n) {
        size_t len = z[1] | (size_t)z[2] << 8;
        ok &= (size_t)(z[3] | z[4] << 8) == (~len & 0xffff);
        z += 5;
        for (size_t k = 0; ok && k < len; k++, pos++) {
            size_t r = pos / row, c = pos % row;
            ok &= z[k] == (c ? want[r * (size_t)w * 3 + c - 1] : 0);
        }
        z += len;
    }
    CHECK_MSG(ok && pos == raw_n, "%s: pixels differ", path);
    free(buf);
}

static void test_pictures(void)
{
    gn_err err = {0};
    const int w = 13, h = 9;
    float x[3 * 13 * 9], map[13 * 9];
    random_image(x, sizeof x / sizeof x[0], 8);
    for (int i = 0; i < w * h; i++) map[i] = (float)(i % 7);
    const float mean[3] = {0.5f, 0.4f, 0.3f}, std[3] = {0.2f, 0.25f, 0.3f};
    unsigned char *rgb = malloc(52 * 36 * 3), *heat = malloc(52 * 36 * 3);
    if (!rgb || !heat) {
        CHECK(0);
        free(rgb);
        free(heat);
        return;
    }
    CHECK(gn_viz_render(rgb, 36, 52, x, 3, h, w, mean, std) == GN_OK);
    /* undoing the normalization: a 1x1 render of a constant image is the pixel itself */
    float one[3] = {(0.6f - 0.5f) / 0.2f, (0.2f - 0.4f) / 0.25f, (1.7f - 0.3f) / 0.3f};
    unsigned char px[3];
    CHECK(gn_viz_render(px, 1, 1, one, 3, 1, 1, mean, std) == GN_OK);
    CHECK(px[0] == 153 && px[1] == 51 && px[2] == 255);
    CHECK(gn_viz_heatmap(heat, 36, 52, map, h, w, rgb) == GN_OK);
    char p[600];
    path_in(p, sizeof p, "render.jpg");
    CHECK_MSG(gn_viz_save_rgb(p, rgb, 52, 36, &err) == GN_OK, "%s", err.msg);
    expect_jpeg(p, 52, 36);
    path_in(p, sizeof p, "heat.PNG");
    CHECK_MSG(gn_viz_save_rgb(p, heat, 52, 36, &err) == GN_OK, "%s", err.msg);
    expect_png(p, heat, 52, 36);

    /* a grid of 5 tiles in 3 columns, 2-pixel gaps */
    const unsigned char *tiles[5] = {rgb, heat, rgb, heat, rgb};
    int gh, gw;
    gn_viz_grid_size(5, 36, 52, 2, 3, &gh, &gw);
    CHECK(gh == 2 * 36 + 2 && gw == 3 * 52 + 2 * 2);
    unsigned char *grid = malloc((size_t)gh * gw * 3);
    if (grid) {
        gn_viz_grid(grid, tiles, 5, 36, 52, 2, 3);
        CHECK(!memcmp(grid + (52 + 2) * 3, heat, 52 * 3));                       /* tile 1 */
        CHECK(!memcmp(grid + ((size_t)(36 + 2) * gw + 52 + 2) * 3, rgb, 52 * 3)); /* tile 4 */
        CHECK(grid[((size_t)36 * gw) * 3] == 255);
    }
    free(grid);
    free(rgb);
    free(heat);
}

/* The commands end to end on a random net with a checkpoint: outputs decode at the promised
 * sizes. */
static void test_commands(void)
{
    const char *exe = getenv("GEMMNET");
    if (!exe || !*exe) {
        printf("GEMMNET not set: command tests skipped\n");
        return;
    }
    char cfgp[600], ck[600], photo[600], out[600], cmd[4096];
    path_in(cfgp, sizeof cfgp, "net.cfg");
    path_in(ck, sizeof ck, "net.safetensors");
    path_in(photo, sizeof photo, "photo.jpg");
    FILE *f = fopen(cfgp, "w");
    CHECK(f != NULL);
    if (!f) return;
    fputs(conv_net, f);
    fclose(f);
    gn_net *net = build("conv_net", conv_net, 4);
    gn_err err = {0};
    if (!net) return;
    CHECK_MSG(gn_ckpt_save(ck, net, NULL, NULL, 0, &err) == GN_OK, "%s", err.msg);
    free_net(&net);
    unsigned char img[40 * 30 * 3];
    for (int i = 0; i < 40 * 30 * 3; i++) img[i] = (unsigned char)((i * 37) % 251);
    CHECK_MSG(gn_jpeg_save_rgb(photo, img, 40, 30, 90, &err) == GN_OK, "%s", err.msg);

    path_in(out, sizeof out, "unit.jpg");
    snprintf(cmd, sizeof cmd, "'%s' visualize '%s' --weights '%s' --layer 2 --unit 1 --steps 5 "
             "--out '%s' > /dev/null", exe, cfgp, ck, out);
    CHECK_MSG(system(cmd) == 0, "%s", cmd);
    expect_jpeg(out, 256, 256); /* 16x16 input, enlarged 16 times */
    path_in(out, sizeof out, "grid.jpg");
    snprintf(cmd, sizeof cmd, "'%s' visualize '%s' --weights '%s' --layer -4 --units 0-4 "
             "--steps 3 --octaves 2 --out '%s' > /dev/null", exe, cfgp, ck, out);
    CHECK_MSG(system(cmd) == 0, "%s", cmd);
    expect_jpeg(out, 3 * 128 + 2 * 4, 2 * 128 + 4); /* tiles of 128, 4-pixel gaps */
    path_in(out, sizeof out, "class.jpg");
    snprintf(cmd, sizeof cmd, "'%s' visualize '%s' --weights '%s' --class 3 --steps 3 --size 40 "
             "--out '%s' > /dev/null", exe, cfgp, ck, out);
    CHECK_MSG(system(cmd) == 0, "%s", cmd);
    expect_jpeg(out, 40, 40);
    path_in(out, sizeof out, "dream.jpg");
    snprintf(cmd, sizeof cmd, "'%s' dream '%s' --weights '%s' --layer 2 '%s' --steps 3 "
             "--out '%s' > /dev/null", exe, cfgp, ck, photo, out);
    CHECK_MSG(system(cmd) == 0, "%s", cmd);
    expect_jpeg(out, 256, 256);
    /* the whole 40x30 photo at a working resolution of 20: 26x20, enlarged 13 times */
    path_in(out, sizeof out, "dream-whole.png");
    snprintf(cmd, sizeof cmd, "'%s' dream '%s' --weights '%s' --layer 4 '%s' --steps 2 "
             "--resolution 20 --out '%s' > /dev/null", exe, cfgp, ck, photo, out);
    CHECK_MSG(system(cmd) == 0, "%s", cmd);
    FILE *pf = fopen(out, "rb");
    unsigned char hdr[24] = {0};
    CHECK(pf && fread(hdr, 1, 24, pf) == 24);
    if (pf) fclose(pf);
    int pw = hdr[18] << 8 | hdr[19], ph = hdr[22] << 8 | hdr[23];
    CHECK_MSG(pw == 26 * 13 && ph == 20 * 13, "%s: %dx%d", out, pw, ph);
    path_in(out, sizeof out, "sal.jpg");
    snprintf(cmd, sizeof cmd, "'%s' saliency '%s' --weights '%s' '%s' --smooth 3 --out '%s' "
             "> /dev/null", exe, cfgp, ck, photo, out);
    CHECK_MSG(system(cmd) == 0, "%s", cmd);
    expect_jpeg(out, 256, 256);
    path_in(out, sizeof out, "sal-overlay.jpg");
    expect_jpeg(out, 256, 256);
    /* a layer after one whose weights depend on the input size cannot dream at another size */
    char cfg2[600], ck2[600];
    path_in(cfg2, sizeof cfg2, "flat.cfg");
    path_in(ck2, sizeof ck2, "flat.safetensors");
    static const char *flat = "[net]\nwidth=8\nheight=8\nchannels=3\n"
                              "[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=relu\n"
                              "[connected]\noutput=3\nactivation=relu\n"
                              "[connected]\noutput=2\nactivation=linear\n";
    if ((f = fopen(cfg2, "w"))) {
        fputs(flat, f);
        fclose(f);
    }
    if ((net = build("flat", flat, 4))) {
        CHECK_MSG(gn_ckpt_save(ck2, net, NULL, NULL, 0, &err) == GN_OK, "%s", err.msg);
        free_net(&net);
    }
    snprintf(cmd, sizeof cmd, "'%s' dream '%s' --weights '%s' --layer 2 '%s' --steps 2 "
             "--resolution 12 --out '%s' 2> /dev/null", exe, cfg2, ck2, photo, out);
    int st = system(cmd);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 1, "%s: %d", cmd, st);
    snprintf(cmd, sizeof cmd, "'%s' dream '%s' --weights '%s' --layer 0 '%s' --steps 2 "
             "--resolution 12 --out '%s' > /dev/null", exe, cfg2, ck2, photo, out);
    CHECK_MSG(system(cmd) == 0, "%s", cmd);

    /* usage errors exit 2, a missing checkpoint 1 */
    snprintf(cmd, sizeof cmd, "'%s' visualize '%s' --layer 2 --out x.jpg 2> /dev/null", exe, cfgp);
    st = system(cmd);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 2, "%s: %d", cmd, st);
    snprintf(cmd, sizeof cmd, "'%s' saliency '%s' --weights '%s/none' '%s' --out x.jpg "
             "2> /dev/null", exe, cfgp, dir, photo);
    st = system(cmd);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 1, "%s: %d", cmd, st);
}

static void remove_dir(void)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[1024];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

int main(void)
{
    gn_set_threads(1);
    const char *t = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/gn_viz_XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_resize_adjoint();
    test_ascent();
    test_saliency();
    test_pictures();
    test_commands();
    remove_dir();
    return check_exit();
}
