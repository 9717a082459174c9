/* [dropout]: evaluation is the identity; in training the kept fraction is about 1-p and kept
 * values are scaled by 1/(1-p); the mask depends only on (seed, step, layer, element), not on
 * threads; finite-difference check in training mode; config errors. */
#include "gradcheck_util.h"
#include "net_util.h"

#include <stdlib.h>

static void run(gn_net *net, int train, uint64_t seed, uint64_t step)
{
    gn_ctx ctx = gn_net_ctx(net, train);
    ctx.seed = seed;
    ctx.step = step;
    gn_net_forward(net, &ctx);
}

int main(void)
{
    const int d = 70000, batch = 2;
    const size_t n = (size_t)d * batch;
    gn_net *net = net_util_build("dropout",
                                 "[net]\ninputs=70000\n[dropout]\nprobability=0.3\n", batch);
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    if (!net || !a || !b) {
        CHECK_MSG(0, "setup failed");
        goto done;
    }
    net_util_fill_input(net, 1);
    for (size_t i = 0; i < n; i++)
        if (net->input[i] == 0) net->input[i] = 0.5f;
    const float *y = net->layers[0].y;

    run(net, 0, 1, 1);
    int same = 1;
    for (size_t i = 0; i < n; i++) same &= y[i] == net->input[i];
    CHECK_MSG(same, "evaluation mode must be the identity");

    run(net, 1, 1, 1);
    size_t kept = 0;
    int scaled = 1;
    const float scale = (float)(1.0 / 0.7);
    for (size_t i = 0; i < n; i++) {
        if (y[i] == 0) continue;
        kept++;
        scaled &= y[i] == net->input[i] * scale;
    }
    double frac = (double)kept / (double)n;
    printf("kept fraction %.4f (expected 0.7)\n", frac);
    /* 140000 Bernoulli(0.7) draws: the standard deviation of the mean is 0.0012. */
    CHECK_MSG(fabs(frac - 0.7) < 0.006, "kept fraction %.4f", frac);
    CHECK_MSG(scaled, "kept values must be x / (1 - p)");
    memcpy(a, y, n * sizeof *a);

    /* The same (seed, step) gives the same mask, with one thread or more. */
    int threads = gn_get_threads();
    gn_set_threads(1);
    run(net, 1, 1, 1);
    gn_set_threads(threads);
    CHECK_MSG(!memcmp(a, y, n * sizeof *a), "the mask changed with the thread count");
    run(net, 1, 1, 1);
    CHECK_MSG(!memcmp(a, y, n * sizeof *a), "the mask changed between identical runs");

    /* Another step or seed: another mask. */
    run(net, 1, 1, 2);
    memcpy(b, y, n * sizeof *b);
    size_t differ = 0;
    for (size_t i = 0; i < n; i++) differ += (a[i] == 0) != (b[i] == 0);
    /* Independent masks differ in 2 * 0.3 * 0.7 = 42% of the places. */
    CHECK_MSG(differ > n / 3, "step 2's mask differs in only %zu of %zu places", differ, n);
    run(net, 1, 2, 1);
    differ = 0;
    for (size_t i = 0; i < n; i++) differ += (a[i] == 0) != (y[i] == 0);
    CHECK_MSG(differ > n / 3, "seed 2's mask differs in only %zu of %zu places", differ, n);

    /* Backward uses the same mask: dx = dy * mask / (1 - p). */
    {
        gn_err err = {0};
        CHECK(gn_net_enable_dinput(net, &err) == GN_OK);
        gn_ctx ctx = gn_net_ctx(net, 1);
        ctx.seed = 1;
        ctx.step = 1;
        gn_net_forward(net, &ctx);
        memset(net->dinput, 0, n * sizeof(float));
        gn_layer *l = &net->layers[0];
        for (size_t i = 0; i < n; i++) l->dy[i] = 1.0f;
        l->ops->backward(l, &ctx);
        int ok = 1;
        for (size_t i = 0; i < n; i++) ok &= net->dinput[i] == (a[i] != 0 ? scale : 0.0f);
        CHECK_MSG(ok, "backward must apply the forward mask");
    }

    gradcheck_cfg("dropout train p=0.5",
                  "[net]\nwidth=5\nheight=3\nchannels=3\n[dropout]\n", 3, 0, 1, 1e-2);
    gradcheck_cfg("dropout train p=0.2 after connected",
                  "[net]\ninputs=4\n[connected]\noutput=9\n[dropout]\nprobability=0.2\n", 3, 1, 1,
                  1e-2);
    gradcheck_cfg("dropout eval", "[net]\nwidth=5\nheight=3\nchannels=3\n[dropout]\n", 3, 0, 0,
                  1e-2);

    const char *const big[] = {"p.cfg:4", "probability", NULL};
    net_util_expect_error("p.cfg", "[net]\ninputs=3\n[dropout]\nprobability=1.5\n", GN_ECONFIG,
                          big);
    const char *const one[] = {"one.cfg:5", "probability", NULL};
    net_util_expect_error("one.cfg", "[net]\ninputs=3\n[dropout]\n\nprobability=1\n",
                          GN_ECONFIG, one);
    const char *const unk[] = {"unk.cfg:5", "dropblock", "unknown", NULL};
    net_util_expect_error("unk.cfg", "[net]\ninputs=3\n[dropout]\nprobability=0.1\ndropblock=1\n",
                          GN_ECONFIG, unk);
done:
    free(a);
    free(b);
    net_util_free(&net);
    return check_exit();
}
