/* [convolutional]: finite-difference checks on awkward shapes (every activation, with and
 * without batch norm, training and evaluation), output shapes, config errors, determinism. */
#include "gradcheck_util.h"
#include "kernels/winograd.h"

#include <stdlib.h>

/* The layer runs in float, so the finite differences of L = sum r_j y_j carry rounding noise
 * of about 1e-4 absolute; with the checker's 1e-2 floor that is up to ~1e-2 relative. In
 * training mode batch norm's input gradient is a difference of nearly equal terms (it sums to
 * zero per channel), so those cases sit right at that floor and get 3e-2; test_batchnorm checks
 * the batch-norm gradient itself in double precision to 1e-4. Wiring mistakes give O(1). */
/*
 * Every case runs with [net] winograd=0 (im2col), 2 and 4; the 3x3 stride-1 ones then take
 * Winograd. F(4x4,3x3) rounds its forward to about 6e-6 of the output scale (twenty times the
 * direct sum), which the finite differences (step 2e-3) turn into errors of up to ~1e-1: for it
 * this check can only catch wiring mistakes (O(1)), and test_kernels_winograd checks the
 * gradients themselves against the double-precision twin to 6e-5. */
static int wino_net; /* [net] winograd= for conv_case */

static void conv_case(const char *name, int c, int h, int w, const char *conv_keys, int batch,
                      int train)
{
    double tol = strstr(conv_keys, "batch_normalize=1") && train ? 3e-2 : 1e-2;
    if (wino_net == 4) tol = 0.25;
    char buf[1024], full[128];
    snprintf(buf, sizeof buf,
             "[net]\nwidth=%d\nheight=%d\nchannels=%d\nwinograd=%d\n[convolutional]\n%s\n", w,
             h, c, wino_net, conv_keys);
    snprintf(full, sizeof full, "%s, winograd=%d", name, wino_net);
    gradcheck_cfg(full, buf, batch, 0, train, tol);
}

/* Builds cfg text; returns the status (and the message in err). */
static int build(const char *text, gn_cfg **cfg, gn_net **net, int batch, gn_err *err)
{
    *cfg = NULL;
    *net = NULL;
    int rc = gn_cfg_parse(cfg, text, "test.cfg", err);
    if (rc == GN_OK) rc = gn_net_build(net, *cfg, batch, 1, err);
    return rc;
}

static void expect_error(const char *text, int code, const char *needle)
{
    gn_err err = {0};
    gn_cfg *cfg;
    gn_net *net;
    int rc = build(text, &cfg, &net, 2, &err);
    CHECK_MSG(rc == code, "expected error %d, got %d (%s)", code, rc, err.msg);
    CHECK_MSG(strstr(err.msg, needle) != NULL, "message '%s' does not name '%s'", err.msg,
              needle);
    CHECK_MSG(strstr(err.msg, "test.cfg:") != NULL, "message '%s' has no file:line", err.msg);
    gn_net_free(&net);
    gn_cfg_free(&cfg);
}

static void expect_shape(const char *text, int c, int h, int w, size_t nparams)
{
    gn_err err = {0};
    gn_cfg *cfg;
    gn_net *net;
    if (build(text, &cfg, &net, 2, &err)) {
        CHECK_MSG(0, "%s", err.msg);
        gn_cfg_free(&cfg);
        return;
    }
    gn_shape o = gn_net_out_shape(net);
    CHECK_MSG(o.c == c && o.h == h && o.w == w, "output %dx%dx%d, expected %dx%dx%d", o.c, o.h,
              o.w, c, h, w);
    CHECK_MSG(net->n_params == nparams, "%zu parameters, expected %zu", net->n_params, nparams);
    gn_net_free(&net);
    gn_cfg_free(&cfg);
}

/* Runs forward + backward of a small conv net in training mode; copies output, gradients and
 * the input gradient into the given buffers. */
static int run_once(const char *text, int batch, float **out, size_t *nout)
{
    gn_err err = {0};
    gn_cfg *cfg;
    gn_net *net;
    if (build(text, &cfg, &net, batch, &err) || gn_net_enable_dinput(net, &err)) {
        CHECK_MSG(0, "%s", err.msg);
        gn_net_free(&net);
        gn_cfg_free(&cfg);
        return -1;
    }
    gn_rng r = gn_rng_make(gn_rng_key(77, 0, 0));
    size_t nin = (size_t)batch * gn_shape_size(net->in);
    for (size_t i = 0; i < nin; i++) net->input[i] = (float)(2 * gn_rng_uniform(&r) - 1);
    for (size_t i = 0; i < (size_t)batch * (size_t)net->n_classes; i++)
        net->targets[i] = (float)gn_rng_uniform(&r);
    gn_ctx ctx = gn_net_ctx(net, 1);
    gn_net_zero_grads(net);
    gn_net_forward(net, &ctx);
    gn_net_backward(net, &ctx);
    size_t ny = (size_t)batch * gn_shape_size(gn_net_out_shape(net));
    *nout = ny + net->n_params + nin + net->n_state;
    *out = malloc(*nout * sizeof(float));
    if (!*out) {
        CHECK_MSG(0, "out of memory");
        gn_net_free(&net);
        gn_cfg_free(&cfg);
        return -1;
    }
    memcpy(*out, gn_net_output(net), ny * sizeof(float));
    memcpy(*out + ny, net->grads, net->n_params * sizeof(float));
    memcpy(*out + ny + net->n_params, net->dinput, nin * sizeof(float));
    memcpy(*out + ny + net->n_params + nin, net->state, net->n_state * sizeof(float));
    gn_net_free(&net);
    gn_cfg_free(&cfg);
    return 0;
}

static void gradient_cases(void)
{
    /* Shapes: 1x1, 3x3 stride 2, padding, 5x5, odd and non-square, 3 channels, groups. */
    conv_case("conv 1x1", 3, 4, 4, "filters=4\nsize=1\nactivation=linear", 2, 1);
    conv_case("conv 1x1 stride 2 7x5", 3, 7, 5, "filters=2\nsize=1\nstride=2\nactivation=linear",
              2, 1);
    conv_case("conv 3x3 stride 2 pad 1 7x5", 3, 7, 5,
              "filters=3\nsize=3\nstride=2\npad=1\nactivation=linear", 2, 1);
    conv_case("conv 3x3 no pad 6x7", 2, 6, 7, "filters=3\nsize=3\nactivation=linear", 2, 1);
    conv_case("conv 3x3 padding=2", 3, 5, 5, "filters=2\nsize=3\npadding=2\nactivation=linear",
              1, 1);
    conv_case("conv 5x5 pad 7x5", 3, 7, 5, "filters=2\nsize=5\npad=1\nactivation=linear", 2, 1);
    conv_case("conv 5x5 stride 3 9x8", 1, 9, 8, "filters=2\nsize=5\nstride=3\nactivation=linear",
              2, 1);
    conv_case("conv groups=2", 4, 5, 6, "filters=6\nsize=3\npad=1\ngroups=2\nactivation=linear",
              2, 1);
    conv_case("conv depthwise", 3, 6, 5,
              "filters=3\nsize=3\nstride=2\npad=1\ngroups=3\nactivation=linear", 2, 1);
    /* Every activation, with and without batch norm (training and evaluation). */
    const char *acts[] = {"linear", "relu", "leaky", "logistic", "tanh", "ramp", "relu6"};
    for (int a = 0; a < 7; a++)
        for (int bn = 0; bn < 2; bn++)
            for (int train = 1; train >= (bn ? 0 : 1); train--) {
                char keys[256], name[96];
                snprintf(keys, sizeof keys,
                         "filters=4\nsize=3\nstride=1\npad=1\nbatch_normalize=%d\n"
                         "activation=%s",
                         bn, acts[a]);
                snprintf(name, sizeof name, "conv 3x3 %s%s%s", acts[a], bn ? " bn" : "",
                         bn ? (train ? " train" : " eval") : "");
                conv_case(name, 3, 5, 4, keys, 3, train);
            }
    conv_case("conv 1x1 bn train", 3, 3, 5,
              "filters=4\nsize=1\nbatch_normalize=1\nactivation=leaky", 2, 1);

    conv_case("conv 3x3 stride 2 bn depthwise", 4, 7, 5,
              "filters=4\nsize=3\nstride=2\npad=1\ngroups=4\nbatch_normalize=1\n"
              "activation=linear",
              2, 1);
    conv_case("conv 5x5 groups 2 bn", 4, 6, 6,
              "filters=2\nsize=5\npad=1\ngroups=2\nbatch_normalize=1\nactivation=tanh", 2, 1);
    /* The default activation is darknet's logistic: a linear conv differs. */
    conv_case("conv default activation", 2, 4, 4, "filters=2\nsize=3", 2, 1);
    conv_case("conv 3x3 pad 1 9x7 one image", 3, 9, 7, "filters=5\nsize=3\npad=1\nactivation=relu",
              1, 1);
}

/* The winograd switch: [net] winograd=0 and a layer's winograd=0 under [net] winograd=4 give the
 * same bits (the im2col path); winograd=4 (net-wide or per layer) gives other bits. */
static void winograd_switch(void)
{
    const char *fmt = "[net]\nwidth=16\nheight=16\nchannels=8\n%s\n[convolutional]\nfilters=16\n"
                      "size=3\npad=1\nbatch_normalize=1\nactivation=relu\n%s\n[cost]\ntype=sse\n";
    const char *variants[][2] = {{"winograd=0", ""},
                                 {"winograd=4", "winograd=0"},
                                 {"winograd=4", ""},
                                 {"winograd=0", "winograd=4"}};
    float *out[4] = {NULL};
    size_t n[4] = {0};
    char text[512];
    for (int i = 0; i < 4; i++) {
        snprintf(text, sizeof text, fmt, variants[i][0], variants[i][1]);
        if (run_once(text, 4, &out[i], &n[i])) goto done;
    }
    CHECK_MSG(n[0] == n[1] && !memcmp(out[0], out[1], n[0] * sizeof(float)),
              "a layer's winograd=0 under [net] winograd=4 is not the im2col path");
    CHECK_MSG(n[2] == n[3] && !memcmp(out[2], out[3], n[2] * sizeof(float)),
              "a layer's winograd=4 differs from [net] winograd=4");
    CHECK_MSG(n[0] == n[2] && memcmp(out[0], out[2], n[0] * sizeof(float)),
              "winograd=4 gave the im2col bits: the switch does nothing");
done:
    for (int i = 0; i < 4; i++) free(out[i]);
}

/* winograd=auto ([net], absent, or a layer's own under [net] winograd=0) picks per shape and
 * batch (winograd_auto's balance, worked out by hand here with WINOGRAD_AUTO_WEIGHT_COST = 60):
 * 16x16 map, batch 8: F(4x4) (8*1728 - 60*36 = 11664 against F(2x2)'s 8*1280 - 60*16 = 9280);
 * 16x16, batch 2: F(2x2) (1600 against 1296); 2x2 map, batch 128: F(2x2) (128*20 - 960 > 0,
 * F(4x4) saves nothing); 2x2, batch 8 and 4x4, batch 2: im2col (no positive balance). The
 * explicit algorithms differ from each other on every case, so each comparison can fail. */
static void winograd_auto_rule(void)
{
    const char *fmt = "[net]\nwidth=%d\nheight=%d\nchannels=64\n%s\n[convolutional]\nfilters=16\n"
                      "size=3\npad=1\nbatch_normalize=1\nactivation=relu\n%s\n[cost]\ntype=sse\n";
    const char *variants[][2] = {{"winograd=0", ""},
                                 {"winograd=2", ""},
                                 {"winograd=4", ""},
                                 {"winograd=auto", ""},
                                 {"", ""},
                                 {"winograd=0", "winograd=auto"}};
    enum { NV = sizeof variants / sizeof variants[0], NX = 3 };
    CHECK(WINOGRAD_AUTO_MIN_C <= 64); /* the input has 64 channels */
    CHECK(WINOGRAD_AUTO_WEIGHT_COST == 60.0); /* the hand-worked cases above */
    /* side, batch, the explicit variant auto must match: 0 im2col, 1 F(2x2), 2 F(4x4) */
    const int cases[][3] = {{16, 8, 2}, {16, 2, 1}, {2, 128, 1}, {2, 8, 0}, {4, 2, 0}};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        int side = cases[ci][0], batch = cases[ci][1], want = cases[ci][2];
        float *out[NV] = {NULL};
        size_t n[NV] = {0};
        char text[512];
        for (int i = 0; i < NV; i++) {
            snprintf(text, sizeof text, fmt, side, side, variants[i][0], variants[i][1]);
            if (run_once(text, batch, &out[i], &n[i])) goto done;
        }
        for (int i = 0; i < NX; i++)
            for (int j = 0; j < i; j++)
                CHECK_MSG(n[i] == n[j] && memcmp(out[i], out[j], n[i] * sizeof(float)),
                          "%dx%d batch %d: %s gave the bits of %s", side, side, batch,
                          variants[i][0], variants[j][0]);
        for (int i = NX; i < NV; i++)
            CHECK_MSG(n[i] == n[want] && !memcmp(out[i], out[want], n[i] * sizeof(float)),
                      "%dx%d batch %d: [net] %s, layer %s is not %s", side, side, batch,
                      variants[i][0][0] ? variants[i][0] : "(absent)",
                      variants[i][1][0] ? variants[i][1] : "(absent)", variants[want][0]);
    done:
        for (int i = 0; i < NV; i++) free(out[i]);
    }
    /* Input channels below WINOGRAD_AUTO_MIN_C: im2col whatever the map. From it to
     * WINOGRAD_AUTO_MIN_C_F2: F(4x4) where it has a positive balance, never F(2x2) (16x16 batch 2,
     * F(2x2) with 64 channels above, is F(4x4) with 32; 2x2 batch 128, F(2x2) above, is im2col). */
    CHECK(WINOGRAD_AUTO_MIN_C > 8 && WINOGRAD_AUTO_MIN_C <= 32 && WINOGRAD_AUTO_MIN_C_F2 > 32);
    const char *thin = "[net]\nwidth=%d\nheight=%d\nchannels=%d\n%s\n[convolutional]\nfilters=16\n"
                       "size=3\npad=1\nactivation=relu\n[cost]\ntype=sse\n";
    /* channels, side, batch, the explicit algorithm auto must give */
    const struct { int c, side, batch; const char *want; } thin_cases[] = {
        {8, 16, 2, "winograd=0"}, {32, 16, 2, "winograd=4"}, {32, 2, 128, "winograd=0"}};
    for (size_t ci = 0; ci < sizeof thin_cases / sizeof thin_cases[0]; ci++) {
        float *o[2] = {NULL, NULL};
        size_t no[2] = {0, 0};
        char text[512];
        int c = thin_cases[ci].c, side = thin_cases[ci].side, batch = thin_cases[ci].batch;
        snprintf(text, sizeof text, thin, side, side, c, thin_cases[ci].want);
        int rc = run_once(text, batch, &o[0], &no[0]);
        snprintf(text, sizeof text, thin, side, side, c, "winograd=auto");
        if (!rc) rc = run_once(text, batch, &o[1], &no[1]);
        if (!rc)
            CHECK_MSG(no[0] == no[1] && !memcmp(o[0], o[1], no[0] * sizeof(float)),
                      "%d input channels, %dx%d batch %d: winograd=auto is not %s", c, side, side,
                      batch, thin_cases[ci].want);
        free(o[0]);
        free(o[1]);
    }
}

int main(void)
{
    for (wino_net = 0; wino_net <= 4; wino_net += 2) gradient_cases();
    winograd_switch();
    winograd_auto_rule();
    /* Later layer in a net: its input gradient flows into the first conv's dy. */
    gradcheck_cfg("conv after conv",
                  "[net]\nwidth=6\nheight=5\nchannels=2\n[convolutional]\nfilters=3\nsize=3\n"
                  "pad=1\nactivation=leaky\n[convolutional]\nfilters=2\nsize=3\nstride=2\n"
                  "batch_normalize=1\nactivation=relu\n",
                  2, 1, 1, 3e-2);

    /* Output shapes and parameter counts. */
    expect_shape("[net]\nwidth=5\nheight=7\nchannels=3\n[convolutional]\nfilters=4\nsize=3\n"
                 "stride=2\npad=1\n",
                 4, 4, 3, 4 * 3 * 9 + 4);
    expect_shape("[net]\nwidth=5\nheight=7\nchannels=3\n[convolutional]\nfilters=4\nsize=3\n"
                 "padding=2\npad=0\nbatch_normalize=1\n",
                 4, 9, 7, 4 * 3 * 9 + 8);
    /* pad=1 wins over padding=. */
    expect_shape("[net]\nwidth=8\nheight=8\nchannels=4\n[convolutional]\nfilters=8\nsize=5\n"
                 "padding=0\npad=1\ngroups=4\ndilation=1\n",
                 8, 8, 8, 8 * 1 * 25 + 8);
    {
        gn_err err = {0};
        gn_cfg *cfg;
        gn_net *net;
        if (build("[net]\nwidth=4\nheight=4\nchannels=3\n[convolutional]\nfilters=5\nsize=3\n"
                  "groups=1\nbatch_normalize=1\n",
                  &cfg, &net, 2, &err) == GN_OK) {
            const gn_layer *l = &net->layers[0];
            const char *names[] = {"weight", "bn.weight", "bn.bias", "bn.running_mean",
                                   "bn.running_var"};
            CHECK(l->n_par == 5);
            for (int i = 0; i < 5 && i < l->n_par; i++)
                CHECK_MSG(!strcmp(l->par[i].name, names[i]), "param %d is %s", i,
                          l->par[i].name);
            CHECK(l->par[0].ndim == 4 && l->par[0].shape[0] == 5 && l->par[0].shape[1] == 3 &&
                  l->par[0].shape[2] == 3 && l->par[0].shape[3] == 3);
            const float *rv = gn_param_data(l, &l->par[4]), *g = gn_param_data(l, &l->par[1]);
            CHECK(rv[0] == 1.0f && rv[4] == 1.0f && g[2] == 1.0f);
            CHECK(net->flops >= 2.0 * 5 * 3 * 9 * 4);
        } else {
            CHECK_MSG(0, "%s", err.msg);
        }
        gn_net_free(&net);
        gn_cfg_free(&cfg);
    }

    /* Config errors name file:line and the key. */
    expect_error("[net]\nwidth=4\nheight=4\nchannels=3\n[convolutional]\nfilters=4\nsize=1\n"
                 "groups=2\n",
                 GN_ECONFIG, "groups");
    expect_error("[net]\nwidth=4\nheight=4\nchannels=4\n[convolutional]\nfilters=3\nsize=1\n"
                 "groups=2\n",
                 GN_ECONFIG, "groups");
    expect_error("[net]\nwidth=8\nheight=8\nchannels=3\n[convolutional]\nfilters=4\nsize=3\n"
                 "dilation=2\n",
                 GN_ENOTSUP, "dilation");
    expect_error("[net]\nwidth=8\nheight=8\nchannels=3\n[convolutional]\nfilters=4\nsize=3\n"
                 "binary=1\n",
                 GN_ENOTSUP, "binary");
    expect_error("[net]\nwidth=8\nheight=8\nchannels=3\n[convolutional]\nfilters=4\nsize=3\n"
                 "xnor=1\n",
                 GN_ENOTSUP, "xnor");
    expect_error("[net]\nwidth=8\nheight=8\nchannels=3\n[convolutional]\nfilters=4\nsize=3\n"
                 "stride_x=2\n",
                 GN_ENOTSUP, "stride_x");
    expect_error("[net]\nwidth=2\nheight=8\nchannels=3\n[convolutional]\nfilters=4\nsize=3\n",
                 GN_ESHAPE, "3x3");
    expect_error("[net]\nwidth=8\nheight=8\nchannels=3\n[convolutional]\nfilters=4\nsize=3\n"
                 "activation=swish\n",
                 GN_ECONFIG, "activation");
    expect_error("[net]\nwidth=8\nheight=8\nchannels=3\n[convolutional]\nfilters=4\nsize=3\n"
                 "winograd=3\n",
                 GN_ECONFIG, "winograd");
    expect_error("[net]\nwidth=8\nheight=8\nchannels=3\nwinograd=6\n[convolutional]\nfilters=4\n"
                 "size=3\n",
                 GN_ECONFIG, "winograd");

    /* Determinism: two runs give bit-identical outputs, gradients and running statistics. */
    const char *det =
        "[net]\nwidth=9\nheight=7\nchannels=3\n[convolutional]\nfilters=8\nsize=3\nstride=2\n"
        "pad=1\nbatch_normalize=1\nactivation=leaky\n[convolutional]\nfilters=6\nsize=1\n"
        "groups=2\nactivation=linear\n[convolutional]\nfilters=4\nsize=3\npad=1\n"
        "activation=tanh\n[cost]\ntype=sse\n";
    /* Large enough (over 1M multiply-adds per batch) for the layer to plan an OpenMP loop. */
    const char *det_big =
        "[net]\nwidth=16\nheight=16\nchannels=8\n[convolutional]\nfilters=16\nsize=3\n"
        "pad=1\nbatch_normalize=1\nactivation=relu\n[convolutional]\nfilters=4\nsize=3\n"
        "stride=2\nactivation=linear\n[cost]\ntype=sse\n";
    for (int batch = 4; batch <= 5; batch++) {
        float *a = NULL, *b = NULL;
        size_t na = 0, nb = 0;
        if (run_once(det_big, batch, &a, &na) == 0 && run_once(det_big, batch, &b, &nb) == 0) {
            CHECK(na == nb);
            CHECK_MSG(memcmp(a, b, na * sizeof(float)) == 0,
                      "big, batch %d: two runs are not bit-identical", batch);
        }
        free(a);
        free(b);
    }
    for (int batch = 1; batch <= 5; batch += 4) {
        float *a = NULL, *b = NULL;
        size_t na = 0, nb = 0;
        if (run_once(det, batch, &a, &na) == 0 && run_once(det, batch, &b, &nb) == 0) {
            CHECK(na == nb);
            CHECK_MSG(memcmp(a, b, na * sizeof(float)) == 0,
                      "batch %d: two runs are not bit-identical", batch);
        }
        free(a);
        free(b);
    }
    return check_exit();
}
