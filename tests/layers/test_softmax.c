/* [softmax]: probabilities and the cross-entropy loss against hand-computed values, ignored
 * (-1) and bad (>= classes) labels, stability with large logits, temperature and groups,
 * finite-difference checks of the loss gradient and of the Jacobian path (softmax in the middle
 * of a net), config errors; label smoothing and soft targets (mixup/cutmix) by hand and by
 * finite differences (their PyTorch reference: tests/ref/recipe.safetensors). */
#include "gradcheck_util.h"
#include "net_util.h"
#include "layers/softmax_layer.h"

static void forward_backward(gn_net *net, double *loss)
{
    gn_err err = {0};
    CHECK(gn_net_enable_dinput(net, &err) == GN_OK);
    gn_ctx ctx = gn_net_ctx(net, 1);
    *loss = gn_net_forward(net, &ctx);
    gn_net_backward(net, &ctx);
}

static void hand_cases(void)
{
    gn_net *net = net_util_build("softmax hand", "[net]\ninputs=3\n[softmax]\n", 2);
    if (!net) return;
    const float x[6] = {1, 2, 3, 0, 0, 0};
    memcpy(net->input, x, sizeof x);
    const double p[3] = {0.09003057317038046, 0.24472847105479767, 0.6652409557748219};
    const double nll0 = 0.40760596444437584; /* log(1 + e^-1 + e^-2) */
    const double nll1 = 1.0986122886681098;  /* log 3 */
    const gn_layer *l = &net->layers[0];
    double loss;

    net->labels[0] = 2;
    net->labels[1] = 0;
    forward_backward(net, &loss);
    CHECK_NEAR(loss, (nll0 + nll1) / 2, 1e-6);
    for (int j = 0; j < 3; j++) {
        CHECK_NEAR(l->y[j], p[j], 1e-6);
        CHECK_NEAR(l->y[3 + j], 1.0 / 3, 1e-6);
        /* mean over 2 images: dx = (p - onehot) / 2 */
        CHECK_NEAR(net->dinput[j], (p[j] - (j == 2)) / 2, 1e-6);
        CHECK_NEAR(net->dinput[3 + j], (1.0 / 3 - (j == 0)) / 2, 1e-6);
    }
    CHECK(softmax_counted(l) == 2 && softmax_bad_labels(l) == 0);

    /* An ignored image leaves the mean and the gradient. */
    net->labels[1] = -1;
    forward_backward(net, &loss);
    CHECK_NEAR(loss, nll0, 1e-6);
    for (int j = 0; j < 3; j++) {
        CHECK_NEAR(net->dinput[j], p[j] - (j == 2), 1e-6);
        CHECK(net->dinput[3 + j] == 0);
    }
    CHECK(softmax_counted(l) == 1 && softmax_bad_labels(l) == 0);

    /* A label beyond the classes: ignored as well, and counted as bad. */
    net->labels[1] = 3;
    forward_backward(net, &loss);
    CHECK_NEAR(loss, nll0, 1e-6);
    CHECK(net->dinput[3] == 0 && net->dinput[4] == 0 && net->dinput[5] == 0);
    CHECK(softmax_counted(l) == 1 && softmax_bad_labels(l) == 1);

    /* Everything ignored: loss 0, no gradient. */
    net->labels[0] = -1;
    net->labels[1] = 99;
    forward_backward(net, &loss);
    CHECK(loss == 0);
    for (int j = 0; j < 6; j++) CHECK(net->dinput[j] == 0);

    /* Large logits stay finite: -log p = log(e^1000 + 1 + e^-1000) = 1000. */
    const float xl[6] = {1000, 0, -1000, -500, 700, 0};
    memcpy(net->input, xl, sizeof xl);
    net->labels[0] = 1;
    net->labels[1] = 1;
    forward_backward(net, &loss);
    CHECK_NEAR(loss, 500.0, 1e-6);
    for (int j = 0; j < 6; j++) CHECK(isfinite(l->y[j]) && isfinite(net->dinput[j]));
    CHECK_NEAR(l->y[0], 1.0, 1e-7);
    CHECK_NEAR(net->dinput[1], -0.5, 1e-6);
    net_util_free(&net);

    /* Temperature 2: softmax(x / 2). */
    net = net_util_build("softmax T", "[net]\ninputs=3\n[softmax]\ntemperature=2\n", 1);
    if (net) {
        memcpy(net->input, x, 3 * sizeof *x);
        net->labels[0] = 2;
        forward_backward(net, &loss);
        double s = exp(0.5) + exp(1.0) + exp(1.5);
        CHECK_NEAR(loss, log(s) - 1.5, 1e-6);
        CHECK_NEAR(net->layers[0].y[0], exp(0.5) / s, 1e-6);
        /* d/dx = (p - onehot) / T */
        CHECK_NEAR(net->dinput[2], (exp(1.5) / s - 1) / 2, 1e-6);
        net_util_free(&net);
    }

    /* Two groups normalized separately; the label's group carries the loss. */
    net = net_util_build("softmax groups", "[net]\ninputs=4\n[softmax]\ngroups=2\n", 1);
    if (net) {
        const float xg[4] = {1, 2, 3, 5};
        memcpy(net->input, xg, sizeof xg);
        net->labels[0] = 3;
        forward_backward(net, &loss);
        const float *y = net->layers[0].y;
        CHECK_NEAR(y[0] + y[1], 1.0, 1e-6);
        CHECK_NEAR(y[2] + y[3], 1.0, 1e-6);
        CHECK_NEAR(y[1], 1 / (1 + exp(-1.0)), 1e-6);
        CHECK_NEAR(loss, log(1 + exp(-2.0)), 1e-6);
        CHECK(net->dinput[0] == 0 && net->dinput[1] == 0);
        CHECK_NEAR(net->dinput[3], y[3] - 1, 1e-6);
        net_util_free(&net);
    }
}

static void gradchecks(void)
{
    gradcheck_cfg("softmax loss after connected",
                  "[net]\ninputs=5\n[connected]\noutput=7\n[softmax]\n", 3, 1, 1, 1e-2);
    gradcheck_cfg("softmax loss 3x2x2 groups=3 T=0.5",
                  "[net]\nwidth=2\nheight=2\nchannels=3\n[softmax]\ngroups=3\ntemperature=0.5\n",
                  3, 0, 1, 1e-2);
    gradcheck_cfg("softmax loss on 1x1x10",
                  "[net]\nwidth=1\nheight=1\nchannels=10\n[softmax]\n", 2, 0, 1, 1e-2);

    /* In the middle of a net: only the Jacobian path (labels ignored), loss from [cost]. */
    const char *mid[] = {
        "[net]\ninputs=5\n[connected]\noutput=6\nactivation=tanh\n[softmax]\ngroups=2\n"
        "[cost]\ntype=sse\n",
        "[net]\nwidth=3\nheight=2\nchannels=2\n[softmax]\ntemperature=0.7\n[connected]\n"
        "output=3\n[cost]\n",
    };
    for (int k = 0; k < 2; k++) {
        gn_net *net = net_util_build("softmax mid", mid[k], 3);
        if (!net) continue;
        net_util_fill_input(net, 7);
        gn_rng r = gn_rng_make(gn_rng_key(8, 0, 0));
        for (int i = 0; i < 3; i++) net->labels[i] = -1;
        for (size_t i = 0; i < (size_t)3 * net->n_classes; i++)
            net->targets[i] = (float)gn_rng_uniform(&r);
        gn_ctx ctx = gn_net_ctx(net, 1);
        net_util_input_gradcheck(k ? "softmax first, cost last" : "softmax between layers", net,
                                 &ctx, 60, 1e-2);
        net_util_free(&net);
    }
}

/* Label smoothing and soft targets against hand-computed values. */
static void soft_cases(void)
{
    gn_net *net = net_util_build("softmax soft", "[net]\ninputs=3\n[softmax]\n", 2);
    if (!net) return;
    const float x[6] = {1, 2, 3, 0, 0, 0};
    memcpy(net->input, x, sizeof x);
    const double p[3] = {0.09003057317038046, 0.24472847105479767, 0.6652409557748219};
    const double lse = 3.4076059644443806; /* log(e + e^2 + e^3) */
    double loss;
    gn_err err = {0};
    CHECK(gn_net_enable_dinput(net, &err) == GN_OK);

    /* Smoothing 0.3 on hard labels: target (1 - e) onehot + e / 3. */
    net->labels[0] = 2;
    net->labels[1] = 0;
    gn_ctx ctx = gn_net_ctx(net, 1);
    ctx.label_smoothing = 0.3f;
    loss = gn_net_forward(net, &ctx);
    gn_net_backward(net, &ctx);
    double e = (double)0.3f, l0 = 0, l1 = log(3.0);
    for (int j = 0; j < 3; j++) l0 += ((1 - e) * (j == 2) + e / 3) * (lse - x[j]);
    CHECK_NEAR(loss, (l0 + l1) / 2, 1e-6);
    for (int j = 0; j < 3; j++) {
        CHECK_NEAR(net->dinput[j], (p[j] - ((1 - e) * (j == 2) + e / 3)) / 2, 1e-6);
        CHECK_NEAR(net->dinput[3 + j], (1.0 / 3 - ((1 - e) * (j == 0) + e / 3)) / 2, 1e-6);
    }
    /* An ignored image stays out, as in PyTorch. */
    net->labels[1] = -1;
    loss = gn_net_forward(net, &ctx);
    CHECK_NEAR(loss, l0, 1e-6);

    /* Soft targets: image 0 is 0.7 class 2 + 0.3 class 0; image 1 is one-hot class 1. Labels
     * are not read (one is -1 above). */
    const float t[6] = {0.3f, 0, 0.7f, 0, 1, 0};
    memcpy(net->targets, t, sizeof t);
    ctx.label_smoothing = 0;
    ctx.soft_targets = 1;
    gn_net_zero_grads(net);
    loss = gn_net_forward(net, &ctx);
    gn_net_backward(net, &ctx);
    double s0 = 0.3 * (lse - 1) + 0.7 * (lse - 3);
    CHECK_NEAR(loss, (s0 + log(3.0)) / 2, 1e-6);
    CHECK(softmax_counted(&net->layers[0]) == 2);
    for (int j = 0; j < 3; j++) {
        CHECK_NEAR(net->dinput[j], (p[j] - t[j]) / 2, 1e-6);
        CHECK_NEAR(net->dinput[3 + j], (1.0 / 3 - t[3 + j]) / 2, 1e-6);
    }
    /* Soft targets and smoothing compose into timm's mixup target of smoothed one-hots:
     * 0.7 ((1 - e) onehot(2) + e/3) + 0.3 ((1 - e) onehot(0) + e/3). */
    ctx.label_smoothing = 0.3f;
    loss = gn_net_forward(net, &ctx);
    double s1 = 0;
    for (int j = 0; j < 3; j++)
        s1 += (0.7 * ((1 - e) * (j == 2) + e / 3) + 0.3 * ((1 - e) * (j == 0) + e / 3)) *
              (lse - x[j]);
    double s2 = 0;
    for (int j = 0; j < 3; j++) s2 += ((1 - e) * (j == 1) + e / 3) * log(3.0);
    CHECK_NEAR(loss, (s1 + s2) / 2, 1e-6);
    /* Evaluation: the trainer leaves both off, so the loss is the plain cross-entropy. */
    gn_ctx ev = gn_net_ctx(net, 0);
    net->labels[0] = 2;
    net->labels[1] = 0;
    CHECK_NEAR(gn_net_forward(net, &ev), (lse - 3 + log(3.0)) / 2, 1e-6);
    net_util_free(&net);

    /* Finite differences: soft targets that are not distributions (the gradient is exact for
     * any mass), groups, temperature, smoothing. */
    const char *cfgs[] = {
        "[net]\ninputs=5\n[connected]\noutput=6\nactivation=tanh\n[softmax]\n",
        "[net]\ninputs=5\n[connected]\noutput=6\n[softmax]\ngroups=2\ntemperature=0.7\n",
    };
    for (int k = 0; k < 2; k++)
        for (int soft = 0; soft < 2; soft++) {
            net = net_util_build("softmax soft fd", cfgs[k], 3);
            if (!net) continue;
            net_util_fill_input(net, 17 + (uint64_t)k);
            gn_rng r = gn_rng_make(gn_rng_key(9, (uint64_t)k, 0));
            for (int i = 0; i < 3; i++) net->labels[i] = (int)gn_rng_below(&r, 6);
            for (size_t i = 0; i < (size_t)3 * net->n_classes; i++)
                net->targets[i] = (float)gn_rng_uniform(&r);
            gn_ctx c = gn_net_ctx(net, 1);
            c.soft_targets = soft;
            c.label_smoothing = 0.15f;
            char name[64];
            snprintf(name, sizeof name, "%s, smoothing 0.15%s", k ? "groups=2 T=0.7" : "plain",
                     soft ? ", soft targets" : "");
            net_util_input_gradcheck(name, net, &c, 60, 1e-2);
            net_util_free(&net);
        }
}

static void config_errors(void)
{
    const char *const groups[] = {"g.cfg:4", "groups", "10", NULL};
    net_util_expect_error("g.cfg", "[net]\ninputs=10\n[softmax]\ngroups=3\n", GN_ESHAPE, groups);
    const char *const temp[] = {"t.cfg:5", "temperature", NULL};
    net_util_expect_error("t.cfg", "[net]\ninputs=10\n[softmax]\ngroups=2\ntemperature=0\n",
                          GN_ECONFIG, temp);
    const char *const spatial[] = {"s.cfg:4", "spatial", "unknown", NULL};
    net_util_expect_error("s.cfg", "[net]\ninputs=10\n[softmax]\nspatial=1\n", GN_ECONFIG,
                          spatial);
}

int main(void)
{
    hand_cases();
    gradchecks();
    soft_cases();
    config_errors();
    return check_exit();
}
