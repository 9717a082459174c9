/* [maxpool] and [avgpool]: fast kernels against their naive twins (guard values around the
 * outputs), hand-computed cases (padding, ties, padding never taken as 0), adjoint checks of
 * the backward kernels, finite-difference checks, and config errors. */
#include "gradcheck_util.h"
#include "net_util.h"
#include "kernels/pool.h"
#include "core/util.h"

#define GUARD 16
static const float guard_val = 1234.5f;

typedef struct pool_case {
    int n, c, h, w, k, s, o, p, q;
    int special; /* -inf and NaN pixels (max pooling only) */
} pool_case;

static void fill(float *v, size_t n, uint64_t seed)
{
    gn_rng r = gn_rng_make(gn_rng_key(seed, 3, 4));
    for (size_t i = 0; i < n; i++) v[i] = (float)(2 * gn_rng_uniform(&r) - 1);
}

static int guards_ok(const float *buf, size_t n)
{
    for (int i = 0; i < GUARD; i++)
        if (buf[i] != guard_val || buf[GUARD + n + (size_t)i] != guard_val) return 0;
    return 1;
}

static void kernels_vs_ref(pool_case t, int avg)
{
    size_t nx = (size_t)t.n * t.c * t.h * t.w, ny = (size_t)t.n * t.c * t.p * t.q;
    float *x = malloc(nx * sizeof *x), *dx = calloc(nx, sizeof *dx);
    float *y1 = malloc((ny + 2 * GUARD) * sizeof *y1), *y2 = malloc((ny + 2 * GUARD) * sizeof *y2);
    int32_t *i1 = malloc((ny + 2 * GUARD) * sizeof *i1), *i2 = malloc((ny + 2 * GUARD) * sizeof *i2);
    float *dy = malloc(ny * sizeof *dy);
    if (!x || !dx || !y1 || !y2 || !i1 || !i2 || !dy) {
        CHECK_MSG(0, "out of memory");
        goto done;
    }
    fill(x, nx, (uint64_t)(t.h * 100 + t.w));
    fill(dy, ny, 77);
    /* A few exact ties so the first-maximum rule is exercised too; with t.special, -inf
     * pixels (whole windows of them at the edges, where max pooling's frame is -inf too) and
     * NaNs (the first one in a window wins). */
    for (size_t i = 0; i + 1 < nx; i += 5) x[i + 1] = x[i];
    if (t.special)
        for (size_t i = 0; i < nx; i++) {
            size_t w = i % (size_t)t.w, h = i / (size_t)t.w % (size_t)t.h;
            if (w < 2 || h < 2 || i % 7 == 3) x[i] = -INFINITY;
            if (i % 23 == 5 || i % 29 == 11) x[i] = NAN;
        }
    for (size_t i = 0; i < ny + 2 * GUARD; i++) y1[i] = y2[i] = guard_val;
    for (size_t i = 0; i < ny + 2 * GUARD; i++) i1[i] = i2[i] = -7;
    char what[128];
    snprintf(what, sizeof what, "%s N%d C%d %dx%d K%d S%d O%d -> %dx%d%s", avg ? "avg" : "max",
             t.n, t.c, t.h, t.w, t.k, t.s, t.o, t.p, t.q, t.special ? " with -inf and NaN" : "");
    if (avg) {
        avgpool_forward(y1 + GUARD, x, t.n, t.c, t.h, t.w, t.p, t.q, t.k, t.s, t.o);
        avgpool_forward_ref(y2 + GUARD, x, t.n, t.c, t.h, t.w, t.p, t.q, t.k, t.s, t.o);
    } else {
        maxpool_forward(y1 + GUARD, i1 + GUARD, x, t.n, t.c, t.h, t.w, t.p, t.q, t.k, t.s, t.o);
        maxpool_forward_ref(y2 + GUARD, i2 + GUARD, x, t.n, t.c, t.h, t.w, t.p, t.q, t.k, t.s,
                            t.o);
    }
    CHECK_MSG(guards_ok(y1, ny), "%s: fast kernel wrote outside its output", what);
    CHECK_MSG(guards_ok(y2, ny), "%s: reference wrote outside its output", what);
    int same = 1;
    for (size_t i = 0; i < ny; i++) {
        float a = y1[GUARD + i], b = y2[GUARD + i];
        same &= a == b || (isnan(a) && isnan(b));
        if (!avg) same &= i1[GUARD + i] == i2[GUARD + i];
    }
    CHECK_MSG(same, "%s: fast and reference kernels differ", what);
    if (t.special) goto done; /* no adjoint with infinities and NaNs */
    /* Backward is the adjoint of forward: <f(x), dy> == <x, f^T(dy)>. */
    double lhs = 0, rhs = 0;
    for (size_t i = 0; i < ny; i++) lhs += (double)y1[GUARD + i] * dy[i];
    if (avg)
        avgpool_backward(dx, dy, t.n, t.c, t.h, t.w, t.p, t.q, t.k, t.s, t.o);
    else
        maxpool_backward(dx, dy, i1 + GUARD, t.n, t.c, t.h, t.w, t.p, t.q);
    for (size_t i = 0; i < nx; i++) rhs += (double)x[i] * dx[i];
    CHECK_MSG(fabs(lhs - rhs) <= 1e-4 * fmax(1.0, fabs(lhs)), "%s: adjoint %.8g vs %.8g", what,
              lhs, rhs);
done:
    free(x);
    free(dx);
    free(y1);
    free(y2);
    free(i1);
    free(i2);
    free(dy);
}

static void kernel_tests(void)
{
    /* n c h w k s o: max pooling with darknet's padding (offset o = padding/2), then PyTorch
     * style for average pooling (o = padding per side). */
    int cases[][7] = {
        {2, 3, 7, 5, 3, 2, 1}, {1, 3, 5, 7, 2, 1, 0}, {3, 1, 1, 1, 1, 1, 0},
        {2, 3, 9, 9, 2, 2, 0}, {1, 2, 6, 11, 3, 1, 1}, {2, 3, 13, 8, 3, 3, 1},
        {1, 64, 33, 35, 3, 2, 1}, {1, 2, 4, 3, 4, 1, 2},
        /* the specialised rows (3x3/2, 2x2/2): even and odd widths, edge windows both sides */
        {2, 5, 8, 10, 3, 2, 1}, {1, 3, 12, 3, 3, 2, 1}, {2, 3, 7, 11, 2, 2, 1},
        {1, 4, 10, 12, 3, 2, 0}, {3, 2, 6, 16, 2, 2, 0}, {1, 2, 9, 9, 5, 2, 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int *c = cases[i];
        pool_case t = {c[0], c[1], c[2], c[3], c[4], c[5], c[6], 0, 0, 0};
        /* darknet: padding = 2*o (plus one more on the far side at most) */
        int pad = 2 * c[6];
        if (pad <= 2 * (t.k - 1)) {
            t.p = (t.h + pad - t.k) / t.s + 1;
            t.q = (t.w + pad - t.k) / t.s + 1;
            kernels_vs_ref(t, 0);
            t.special = 1;
            kernels_vs_ref(t, 0);
            t.special = 0;
        }
        if (c[6] <= t.k / 2) {
            t.p = (t.h + 2 * c[6] - t.k) / t.s + 1;
            t.q = (t.w + 2 * c[6] - t.k) / t.s + 1;
            kernels_vs_ref(t, 1);
        }
    }
}

/* Builds a one-layer net on a given input, runs forward, backward with dy, compares. */
static void hand_case(const char *name, const char *cfg, const float *x, int nx,
                      const float *want_y, int ny, const float *dy, const float *want_dx)
{
    gn_net *net = net_util_build(name, cfg, 1);
    if (!net) return;
    gn_err err = {0};
    CHECK(gn_net_enable_dinput(net, &err) == GN_OK);
    CHECK(gn_shape_size(net->in) == (size_t)nx);
    CHECK_MSG(gn_shape_size(net->layers[0].out) == (size_t)ny, "%s: output has %zu values", name,
              gn_shape_size(net->layers[0].out));
    if (gn_shape_size(net->layers[0].out) != (size_t)ny) goto done;
    memcpy(net->input, x, (size_t)nx * sizeof *x);
    gn_ctx ctx = gn_net_ctx(net, 1);
    gn_layer *l = &net->layers[0];
    l->ops->forward(l, &ctx);
    for (int i = 0; i < ny; i++)
        CHECK_MSG(l->y[i] == want_y[i], "%s: y[%d] = %g, expected %g", name, i, l->y[i],
                  want_y[i]);
    if (dy) {
        memcpy(l->dy, dy, (size_t)ny * sizeof *dy);
        memset(net->dinput, 0, (size_t)nx * sizeof(float));
        l->ops->backward(l, &ctx);
        for (int i = 0; i < nx; i++)
            CHECK_MSG(fabsf(net->dinput[i] - want_dx[i]) <= 1e-6f * fmaxf(1, fabsf(want_dx[i])),
                      "%s: dx[%d] = %g, expected %g", name, i, net->dinput[i], want_dx[i]);
    }
done:
    net_util_free(&net);
}

static void hand_cases(void)
{
    const float x[9] = {1, 3, 3,
                        2, 3, 0,
                        5, 1, 5};
    const float dy[4] = {1, 10, 100, 1000};
    /* darknet padding=1, size 2 stride 2: windows start at 0 and 2; the right and bottom
     * windows hang over the edge. First maxima: (0,1), (0,2), (2,0), (2,2). */
    {
        const float y[4] = {3, 3, 5, 5};
        const float dx[9] = {0, 1, 10, 0, 0, 0, 100, 0, 1000};
        hand_case("maxpool k2 s2 pad1",
                  "[net]\nwidth=3\nheight=3\nchannels=1\n[maxpool]\nsize=2\nstride=2\npadding=1\n",
                  x, 9, y, 4, dy, dx);
    }
    /* PyTorch MaxPool2d(3, 2, 1) = darknet padding=2: windows start at -1 and 1. The 3 at
     * (0,1) wins the ties in both top windows. */
    {
        const float y[4] = {3, 3, 5, 5};
        const float dx[9] = {0, 11, 0, 0, 0, 0, 100, 0, 1000};
        hand_case("maxpool k3 s2 pad2 ties",
                  "[net]\nwidth=3\nheight=3\nchannels=1\n[maxpool]\nsize=3\nstride=2\npadding=2\n",
                  x, 9, y, 4, dy, dx);
    }
    /* Negative input, default padding (size-1 = 1, all on the far side): the corner window
     * holds only -9, so padding must not act as 0. */
    {
        const float xn[9] = {-1, -2, -3, -4, -5, -6, -7, -8, -9};
        const float y[9] = {-1, -2, -3, -4, -5, -6, -7, -8, -9};
        hand_case("maxpool negative, default padding",
                  "[net]\nwidth=3\nheight=3\nchannels=1\n[maxpool]\nsize=2\nstride=1\n", xn, 9, y,
                  9, NULL, NULL);
    }
    /* Global average: (C=2, 2x2) -> 2 means. */
    {
        const float xa[8] = {1, 2, 3, 6, -1, -1, 2, 4};
        const float y[2] = {3, 1};
        const float dyg[2] = {4, 8};
        const float dx[8] = {1, 1, 1, 1, 2, 2, 2, 2};
        hand_case("avgpool global", "[net]\nwidth=2\nheight=2\nchannels=2\n[avgpool]\n", xa, 8,
                  y, 2, dyg, dx);
    }
    /* Local average, size 2 stride 2 padding 1 on 3x3 (PyTorch AvgPool2d(2, 2, 1)): windows
     * start at -1 and 1; padding counts as 0 and every output divides by 4. */
    {
        const float xl[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
        const float y[4] = {0.25f, 1.25f, 2.75f, 7.0f};
        const float dyl[4] = {4, 8, 12, 16};
        const float dx[9] = {1, 2, 2, 3, 4, 4, 3, 4, 4};
        hand_case("avgpool k2 s2 pad1",
                  "[net]\nwidth=3\nheight=3\nchannels=1\n[avgpool]\nsize=2\nstride=2\npadding=1\n",
                  xl, 9, y, 4, dyl, dx);
    }
}

static void shape_and_flops(void)
{
    gn_net *net = net_util_build("shapes",
                                 "[net]\nwidth=7\nheight=5\nchannels=3\n"
                                 "[maxpool]\nsize=3\nstride=2\n"
                                 "[avgpool]\nsize=2\nstride=1\npadding=1\n"
                                 "[avgpool]\n",
                                 2);
    if (!net) return;
    gn_shape a = net->layers[0].out, b = net->layers[1].out, c = net->layers[2].out;
    /* darknet: (5 + 2 - 3)/2 + 1 = 3, (7 + 2 - 3)/2 + 1 = 4 */
    CHECK(a.c == 3 && a.h == 3 && a.w == 4);
    /* PyTorch: (3 + 2 - 2)/1 + 1 = 4, (4 + 2 - 2)/1 + 1 = 5 */
    CHECK(b.c == 3 && b.h == 4 && b.w == 5);
    CHECK(c.c == 3 && c.h == 1 && c.w == 1);
    CHECK(net->layers[0].flops == 3.0 * 3 * 4 * 9);
    CHECK(net->layers[0].flops_bwd == 3.0 * 3 * 4);
    CHECK(net->layers[2].flops == 3.0 * 4 * 5 + 3);
    net_util_free(&net);
}

static void gradchecks(void)
{
    const char *in = "[net]\nwidth=7\nheight=5\nchannels=3\n";
    const char *layers[] = {
        "[maxpool]\nsize=3\nstride=2\n",
        "[maxpool]\nsize=2\nstride=1\n",
        "[maxpool]\nsize=3\nstride=2\npadding=0\n",
        "[maxpool]\nsize=2\nstride=2\npadding=2\n",
        "[maxpool]\nsize=1\nstride=1\n",
        "[avgpool]\n",
        "[avgpool]\nsize=3\nstride=2\npadding=1\n",
        "[avgpool]\nsize=2\nstride=1\n",
        "[avgpool]\nsize=1\n",
    };
    char buf[256];
    for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++) {
        snprintf(buf, sizeof buf, "%s%s", in, layers[i]);
        char name[96];
        snprintf(name, sizeof name, "%.*s", (int)strcspn(layers[i] + 1, "\n") + 1, layers[i]);
        for (char *p = name; *p; p++)
            if (*p == '\n') *p = ' ';
        snprintf(name + strlen(name), sizeof name - strlen(name), " %s",
                 strchr(layers[i], '\n') + 1);
        for (char *p = name; *p; p++)
            if (*p == '\n') *p = ' ';
        gradcheck_cfg(name, buf, 2, 0, 1, 1e-2);
    }
    /* 1x1 input, and a pooling layer after a [connected] one. */
    gradcheck_cfg("maxpool on 1x1", "[net]\nwidth=1\nheight=1\nchannels=3\n[maxpool]\nsize=2\n",
                  3, 0, 1, 1e-2);
    gradcheck_cfg("avgpool after connected",
                  "[net]\ninputs=5\n[connected]\noutput=6\n[avgpool]\n", 3, 1, 1, 1e-2);
}

static void config_errors(void)
{
    const char *const size0[] = {"pool.cfg:5", "size", NULL};
    net_util_expect_error("pool.cfg", "[net]\nwidth=4\nheight=4\n[maxpool]\nsize=0\n",
                          GN_ECONFIG, size0);
    const char *const avg0[] = {"avg.cfg:6", "size", NULL};
    net_util_expect_error("avg.cfg", "[net]\nwidth=4\nheight=4\n[avgpool]\nstride=1\nsize=0\n",
                          GN_ECONFIG, avg0);
    const char *const pad[] = {"pad.cfg:7", "padding", NULL};
    net_util_expect_error("pad.cfg",
                          "[net]\nwidth=4\nheight=4\n[maxpool]\nsize=2\nstride=1\npadding=3\n",
                          GN_ECONFIG, pad);
    const char *const big[] = {"big.cfg:4", "[maxpool]", "5x5", NULL};
    net_util_expect_error("big.cfg",
                          "[net]\nwidth=4\nheight=3\n[maxpool]\nsize=5\nstride=1\npadding=0\n",
                          GN_ESHAPE, big);
    const char *const abig[] = {"abig.cfg:4", "[avgpool]", NULL};
    net_util_expect_error("abig.cfg", "[net]\nwidth=4\nheight=3\n[avgpool]\nsize=4\n",
                          GN_ESHAPE, abig);
    const char *const nosize[] = {"nosize.cfg:5", "stride", NULL};
    net_util_expect_error("nosize.cfg", "[net]\nwidth=4\nheight=4\n[avgpool]\nstride=2\n",
                          GN_ECONFIG, nosize);
    const char *const unknown[] = {"unk.cfg:6", "stride_x", "unknown", NULL};
    net_util_expect_error("unk.cfg", "[net]\nwidth=4\nheight=4\n[maxpool]\nsize=2\nstride_x=2\n",
                          GN_ECONFIG, unknown);
}

int main(void)
{
    kernel_tests();
    hand_cases();
    shape_and_flops();
    gradchecks();
    config_errors();
    return check_exit();
}
