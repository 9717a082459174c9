/* [shortcut], [route] and [activation]: hand-computed cases (shortcut across different sizes
 * in darknet's index mapping), finite-difference checks, and config errors. */
#include "gradcheck_util.h"
#include "net_util.h"

/* Runs backward of layer li alone with dy = given values, other gradients zero. */
static void layer_backward_with(gn_net *net, int li, const float *dy)
{
    gn_net_zero_dacts(net);
    gn_layer *l = &net->layers[li];
    memcpy(l->dy, dy, gn_shape_size(l->out) * sizeof(float));
    gn_ctx ctx = gn_net_ctx(net, 1);
    l->ops->backward(l, &ctx);
}

static void shortcut_from_larger(void)
{
    /* layer 0: the 4x4 input 0..15; layer 1: 2x2 max pool = (5, 7, 13, 15); layer 2 adds
     * layer 0 sampled with stride 2: positions (0,0) (0,2) (2,0) (2,2) = 0, 2, 8, 10. */
    gn_net *net = net_util_build("shortcut larger",
                                 "[net]\nwidth=4\nheight=4\nchannels=1\n[activation]\n"
                                 "[maxpool]\nsize=2\nstride=2\npadding=0\n"
                                 "[shortcut]\nfrom=0\nalpha=2\nbeta=0.5\n",
                                 1);
    if (!net) return;
    for (int i = 0; i < 16; i++) net->input[i] = (float)i;
    gn_ctx ctx = gn_net_ctx(net, 1);
    gn_net_forward(net, &ctx);
    const float want[4] = {10, 15, 30, 35};
    for (int i = 0; i < 4; i++)
        CHECK_MSG(net->layers[2].y[i] == want[i], "y[%d] = %g, expected %g", i,
                  net->layers[2].y[i], want[i]);
    const float dy[4] = {1, 2, 3, 4};
    layer_backward_with(net, 2, dy);
    for (int i = 0; i < 4; i++) CHECK(net->layers[1].dy[i] == 2 * dy[i]);
    const float dfrom[16] = {0.5f, 0, 1, 0, 0, 0, 0, 0, 1.5f, 0, 2, 0, 0, 0, 0, 0};
    for (int i = 0; i < 16; i++)
        CHECK_MSG(net->layers[0].dy[i] == dfrom[i], "dfrom[%d] = %g, expected %g", i,
                  net->layers[0].dy[i], dfrom[i]);
    net_util_free(&net);
}

static void shortcut_from_smaller(void)
{
    /* layer 0: input 2x2x2; layer 1: 2x4x4 (max pool with padding grows the plane); layer 2:
     * 4x4x4 (layer 1 twice); layer 3 adds layer 0 with sample 2 over min(C) = 2 channels:
     * y[k, 2j, 2i] += x0[k, j, i], alpha applying to those positions only. */
    gn_net *net = net_util_build("shortcut smaller",
                                 "[net]\nwidth=2\nheight=2\nchannels=2\n[activation]\n"
                                 "[maxpool]\nsize=3\nstride=1\npadding=4\n"
                                 "[route]\nlayers=-1,-1\n"
                                 "[shortcut]\nfrom=0\nalpha=3\nbeta=-2\n",
                                 1);
    if (!net) return;
    net_util_fill_input(net, 4);
    gn_ctx ctx = gn_net_ctx(net, 1);
    gn_net_forward(net, &ctx);
    const gn_layer *l2 = &net->layers[2], *l3 = &net->layers[3];
    CHECK(l3->out.c == 4 && l3->out.h == 4 && l3->out.w == 4);
    float want[64], dy[64], want_d0[8] = {0}, want_d2[64];
    for (int i = 0; i < 64; i++) {
        want[i] = l2->y[i];
        dy[i] = (float)(i % 7) - 3;
        want_d2[i] = dy[i];
    }
    for (int k = 0; k < 2; k++)
        for (int j = 0; j < 2; j++)
            for (int i = 0; i < 2; i++) {
                int o = (k * 4 + 2 * j) * 4 + 2 * i, a = (k * 2 + j) * 2 + i;
                want[o] = 3 * l2->y[o] - 2 * net->input[a];
                want_d2[o] = 3 * dy[o];
                want_d0[a] = -2 * dy[o];
            }
    int ok = 1;
    for (int i = 0; i < 64; i++) ok &= fabsf(l3->y[i] - want[i]) <= 1e-6f;
    CHECK_MSG(ok, "shortcut from a smaller layer: forward differs from darknet's mapping");
    layer_backward_with(net, 3, dy);
    ok = 1;
    for (int i = 0; i < 64; i++) ok &= fabsf(l2->dy[i] - want_d2[i]) <= 1e-6f;
    for (int i = 0; i < 8; i++) ok &= fabsf(net->layers[0].dy[i] - want_d0[i]) <= 1e-6f;
    CHECK_MSG(ok, "shortcut from a smaller layer: backward differs from darknet's mapping");
    net_util_free(&net);
}

static void shortcut_gradchecks(void)
{
    gradcheck_cfg("shortcut same shape leaky a/b",
                  "[net]\nwidth=5\nheight=3\nchannels=3\n[activation]\nactivation=tanh\n"
                  "[activation]\nactivation=logistic\n"
                  "[shortcut]\nfrom=0\nactivation=leaky\nalpha=0.7\nbeta=1.5\n",
                  2, 2, 1, 1e-2);
    gradcheck_cfg("shortcut from=-1 (both inputs one layer)",
                  "[net]\nwidth=5\nheight=3\nchannels=3\n[activation]\n"
                  "[shortcut]\nfrom=-1\nactivation=tanh\nalpha=0.5\n",
                  2, 1, 1, 1e-2);
    gradcheck_cfg("shortcut from larger (stride 2)",
                  "[net]\nwidth=7\nheight=6\nchannels=3\n[activation]\n"
                  "[maxpool]\nsize=2\nstride=2\npadding=0\n"
                  "[shortcut]\nfrom=0\nactivation=logistic\nalpha=1.5\n",
                  2, 2, 1, 1e-2);
    gradcheck_cfg("shortcut from smaller (sample 2)",
                  "[net]\nwidth=3\nheight=2\nchannels=3\n[activation]\n"
                  "[maxpool]\nsize=4\nstride=1\npadding=6\n"
                  "[shortcut]\nfrom=0\nalpha=0.5\nbeta=2\n",
                  2, 2, 1, 1e-2);
    gradcheck_cfg("shortcut fewer channels in from",
                  "[net]\ninputs=4\n[connected]\noutput=3\n[connected]\noutput=5\n"
                  "[shortcut]\nfrom=0\nactivation=tanh\n",
                  3, 2, 1, 1e-2);
    gradcheck_cfg("shortcut more channels in from",
                  "[net]\ninputs=4\n[connected]\noutput=5\n[connected]\noutput=3\n"
                  "[shortcut]\nfrom=-2\nbeta=0.3\n",
                  3, 2, 1, 1e-2);
}

static void route_tests(void)
{
    /* Concatenation order and a one-input route. */
    gn_net *net = net_util_build("route order",
                                 "[net]\nwidth=2\nheight=1\nchannels=2\n[activation]\n"
                                 "[avgpool]\nsize=1\n[route]\nlayers=1,-2\n[route]\nlayers=-3\n",
                                 2);
    if (net) {
        for (int i = 0; i < 8; i++) net->input[i] = (float)(i + 1);
        gn_ctx ctx = gn_net_ctx(net, 1);
        gn_net_forward(net, &ctx);
        const gn_layer *r = &net->layers[2], *r1 = &net->layers[3];
        CHECK(r->out.c == 4 && r->out.h == 1 && r->out.w == 2);
        /* image 0: layer1 = (1,2,3,4), layer0 = (1,2,3,4); image 1: (5..8) twice */
        const float want[16] = {1, 2, 3, 4, 1, 2, 3, 4, 5, 6, 7, 8, 5, 6, 7, 8};
        for (int i = 0; i < 16; i++) CHECK(r->y[i] == want[i]);
        CHECK(r1->out.c == 2 && r1->out.h == 1 && r1->out.w == 2);
        for (int i = 0; i < 8; i++) CHECK(r1->y[i] == net->input[i]);
        net_util_free(&net);
    }
    gradcheck_cfg("route three inputs, one listed twice",
                  "[net]\nwidth=5\nheight=3\nchannels=3\n[activation]\nactivation=tanh\n"
                  "[route]\nlayers=0,0\n[route]\nlayers=-1,0,-2\n",
                  2, 2, 1, 1e-2);
    gradcheck_cfg("route single", "[net]\ninputs=3\n[connected]\noutput=4\n[route]\nlayers=0\n",
                  3, 1, 1, 1e-2);
    const char *const missing[] = {"route.cfg:6", "layers", "[route]", NULL};
    net_util_expect_error("route.cfg",
                          "[net]\ninputs=3\n[connected]\noutput=4\n[route]\nlayers=-1,5\n",
                          GN_ECONFIG, missing);
    const char *const neg[] = {"neg.cfg:4", "layers", NULL};
    net_util_expect_error("neg.cfg", "[net]\ninputs=3\n[route]\nlayers=-1\n", GN_ECONFIG, neg);
    const char *const shape[] = {"shape.cfg:10", "layers", "3x4x4", "3x2x2", NULL};
    net_util_expect_error("shape.cfg",
                          "[net]\nwidth=4\nheight=4\nchannels=3\n[activation]\n"
                          "[maxpool]\nsize=2\npadding=0\n[route]\nlayers=0,1\n",
                          GN_ESHAPE, shape);
    const char *const nolayers[] = {"nol.cfg:3", "layers", NULL};
    net_util_expect_error("nol.cfg", "[net]\ninputs=3\n[route]\n", GN_ECONFIG, nolayers);
    const char *const from[] = {"from.cfg:6", "from", NULL};
    net_util_expect_error("from.cfg",
                          "[net]\ninputs=3\n[connected]\noutput=4\n[shortcut]\nfrom=-3\n",
                          GN_ECONFIG, from);
    const char *const fromabs[] = {"abs.cfg:6", "from", NULL};
    net_util_expect_error("abs.cfg",
                          "[net]\ninputs=3\n[connected]\noutput=4\n[shortcut]\nfrom=1\n",
                          GN_ECONFIG, fromabs);
}

static void activation_tests(void)
{
    const char *acts[] = {"linear", "relu", "leaky", "logistic", "tanh", "relu6"};
    char buf[256], name[64];
    for (int a = 0; a < 6; a++) {
        snprintf(buf, sizeof buf,
                 "[net]\nwidth=7\nheight=5\nchannels=3\n[activation]\nactivation=%s\n", acts[a]);
        snprintf(name, sizeof name, "activation %s", acts[a]);
        gradcheck_cfg(name, buf, 2, 0, 1, 1e-2);
    }
    /* an unknown name (relu6 was one until gemmnet had it); the message lists the known ones */
    const char *const bad[] = {"act.cfg:5", "activation", "relu6", NULL};
    net_util_expect_error("act.cfg", "[net]\ninputs=3\n[connected]\n[activation]\nactivation=relu7\n",
                          GN_ECONFIG, bad);
}

int main(void)
{
    shortcut_from_larger();
    shortcut_from_smaller();
    shortcut_gradchecks();
    route_tests();
    activation_tests();
    return check_exit();
}
