/* FLOP counts and planned memory against hand-computed values, the SGD update, and the small
 * measuring helpers of gemmnet/bench.h. */
#include "check.h"
#include "gemmnet/bench.h"
#include "gemmnet/train.h"

#include <string.h>

static gn_net *plan_text(const char *text, int batch, gn_cfg **cfg)
{
    gn_err err = {0};
    gn_net *net = NULL;
    *cfg = NULL;
    CHECK_MSG(gn_cfg_parse(cfg, text, "test", &err) == GN_OK, "%s", err.msg);
    if (!*cfg) return NULL;
    CHECK_MSG(gn_net_plan(&net, *cfg, batch, &err) == GN_OK, "%s", err.msg);
    if (net) CHECK_MSG(gn_net_check_flops(net, &err) == GN_OK, "%s", err.msg);
    return net;
}

static void test_connected(void)
{
    gn_cfg *cfg;
    /* 100 -> 30 -> 10, sse: forward 2*100*30 + 2*30*10 multiply-adds, backward twice that
     * (data and weights); the cost layer plans 3 per value both ways. */
    gn_net *net = plan_text("[net]\ninputs=100\n[connected]\noutput=30\n[connected]\noutput=10\n"
                            "[cost]\n", 4, &cfg);
    if (net) {
        CHECK_NEAR(net->layers[0].flops, 6000, 0);
        CHECK_NEAR(net->layers[0].flops_bwd, 12000, 0);
        CHECK_NEAR(net->layers[1].flops, 600, 0);
        CHECK_NEAR(net->layers[2].flops, 30, 0);
        CHECK_NEAR(net->flops, 6630, 0);
        CHECK_NEAR(net->flops_bwd, 12000 + 1200 + 30, 0);
        /* nothing allocated by a plan */
        CHECK(net->params == NULL && net->acts == NULL);
        CHECK(net->n_params == 100 * 30 + 30 + 30 * 10 + 10);
        /* params, grads, momentum; activations (30+10+10 per image); their gradients, each
         * rounded up to 16 floats: layer 0's 120 (alive in backward steps 1..0) -> 128 at 0,
         * layer 1's 40 (steps 2..1, overlaps layer 0) -> 48 after it, layer 2's (step 2 only,
         * disjoint from layer 0's lifetime) shares offset 0: 176 floats; input, targets
         * (floats) and labels (ints) */
        double want = 4.0 * (3.0 * 3340 + 4 * 50 + 176 + 4 * 100 + 4 * 10) + 4 * 4;
        CHECK_NEAR(gn_net_planned_bytes(net, 1), want, 0);
        CHECK_NEAR(gn_net_planned_bytes(net, 0), want - 4.0 * 3340, 0);
    }
    gn_net_free(&net);
    gn_cfg_free(&cfg);
    /* the plan grows with the batch, linearly here */
    gn_net *n1 = plan_text("[net]\ninputs=100\n[connected]\noutput=30\n[cost]\n", 1, &cfg);
    gn_cfg *cfg2;
    gn_net *n9 = plan_text("[net]\ninputs=100\n[connected]\noutput=30\n[cost]\n", 9, &cfg2);
    if (n1 && n9)
        CHECK(gn_net_planned_bytes(n9, 1) > gn_net_planned_bytes(n1, 1));
    gn_net_free(&n1);
    gn_net_free(&n9);
    gn_cfg_free(&cfg);
    gn_cfg_free(&cfg2);
}

static void test_check_flops(void)
{
    gn_cfg *cfg;
    gn_net *net = plan_text("[net]\ninputs=8\n[connected]\noutput=4\n[cost]\n", 1, &cfg);
    if (net) {
        gn_err err = {0};
        net->flops += 1; /* the net's sum no longer matches its layers */
        CHECK(gn_net_check_flops(net, &err) == GN_ESHAPE);
        CHECK(strstr(err.msg, "FLOPs") != NULL);
    }
    gn_net_free(&net);
    gn_cfg_free(&cfg);
}

static void test_sgd(void)
{
    /* v = mu*v + g + wd*w; w -= lr*v */
    float w[3] = {1.0f, -2.0f, 0.5f}, v[3] = {0.1f, 0.0f, -0.2f};
    const float g[3] = {0.5f, 1.0f, -1.0f};
    gn_sgd_step(w, v, g, 3, 0.1f, 0.9f, 0.01f, 0);
    CHECK_NEAR(v[0], 0.09 + 0.5 + 0.01, 1e-6);
    CHECK_NEAR(v[1], 0.0 + 1.0 - 0.02, 1e-6);
    CHECK_NEAR(v[2], -0.18 - 1.0 + 0.005, 1e-6);
    CHECK_NEAR(w[0], 1.0 - 0.1 * 0.6, 1e-6);
    CHECK_NEAR(w[1], -2.0 - 0.1 * 0.98, 1e-6);
    CHECK_NEAR(w[2], 0.5 - 0.1 * -1.175, 1e-6);
}

static void test_helpers(void)
{
    gn_err err = {0};
    double gf = 0;
    CHECK_MSG(gn_bench_sgemm(64, 3, &gf, &err) == GN_OK, "%s", err.msg);
    CHECK(gf > 0 && gf < 1e6);
    CHECK(gn_bench_sgemm(0, 3, &gf, &err) == GN_EINVAL);
    CHECK(gn_bench_peak_rss() > 0);
    CHECK(gn_bench_mem_available() > 0);
    CHECK(gn_bench_cores() >= 1);
    char cpu[128];
    gn_bench_cpu_model(cpu, sizeof cpu);
    CHECK(cpu[0] != 0);
}

/* The per-layer timed step computes what gn_net_forward/backward compute. */
static void test_timed_step(void)
{
    gn_err err = {0};
    gn_cfg *cfg = NULL;
    gn_net *net = NULL;
    CHECK(gn_cfg_parse(&cfg, "[net]\ninputs=5\n[connected]\noutput=7\nactivation=tanh\n"
                             "[connected]\noutput=3\n[cost]\n", "t", &err) == GN_OK);
    CHECK_MSG(gn_net_build(&net, cfg, 2, 3, &err) == GN_OK, "%s", err.msg);
    if (!net) {
        gn_cfg_free(&cfg);
        return;
    }
    for (int i = 0; i < 10; i++) net->input[i] = 0.1f * (float)(i - 4);
    for (int i = 0; i < 6; i++) net->targets[i] = 0.2f * (float)i;
    gn_ctx ctx = gn_net_ctx(net, 1);
    gn_net_zero_grads(net);
    double l1 = gn_net_forward(net, &ctx);
    gn_net_backward(net, &ctx);
    float g[256];
    CHECK(net->n_params == 5 * 7 + 7 + 7 * 3 + 3);
    memcpy(g, net->grads, net->n_params * sizeof(float));
    gn_layer_time t[3];
    memset(t, 0, sizeof t);
    gn_net_zero_grads(net);
    double l2 = gn_net_step_timed(net, &ctx, 1, t, NULL);
    CHECK_NEAR(l2, l1, 0);
    CHECK(memcmp(g, net->grads, net->n_params * sizeof(float)) == 0);
    for (int i = 0; i < 3; i++) CHECK(t[i].fwd >= 0 && t[i].bwd >= 0);
    /* connected reports its sgemm time, which is part of the layer's */
    CHECK(t[0].pf.gemm <= t[0].fwd && t[0].pb.gemm <= t[0].bwd);
    gn_net_free(&net);
    gn_cfg_free(&cfg);
}

int main(void)
{
    test_connected();
    test_check_flops();
    test_sgd();
    test_helpers();
    test_timed_step();
    return check_exit();
}
