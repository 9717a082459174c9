/* The lecture's worked example: a 2-2-1 tanh net, W0 = [[1,-3],[0.2,1]], W1 = [1,-1], input
 * (1.0, 0.1), target 0.5, Euclidean loss, one SGD step with learning rate 0.2. */
#include "check.h"
#include "gemmnet/gemmnet.h"

#include <string.h>

static const char *cfg_text =
    "[net]\ninputs=2\n"
    "[connected]\noutput=2\nactivation=tanh\nbias=0\ninit_weights=1,-3,0.2,1\n"
    "[connected]\noutput=1\nactivation=linear\nbias=0\ninit_weights=1,-1\n"
    "[cost]\ntype=sse\n";

int main(void)
{
    gn_err err = {0};
    gn_cfg *cfg = NULL;
    gn_net *net = NULL;
    CHECK(gn_cfg_parse(&cfg, cfg_text, "lecture", &err) == GN_OK);
    CHECK_MSG(gn_net_build(&net, cfg, 1, 1, &err) == GN_OK, "%s", err.msg);
    if (!net) return check_exit();
    net->input[0] = 1.0f;
    net->input[1] = 0.1f;
    net->targets[0] = 0.5f;
    gn_ctx ctx = gn_net_ctx(net, 1);
    double loss = gn_net_forward(net, &ctx);
    /* pre-activations x1 = W0 x = (0.7, 0.3); x3 = W1 tanh(x1) */
    const gn_layer *l0 = &net->layers[0], *l1 = &net->layers[1];
    CHECK_NEAR(l0->y[0], tanh(0.7), 1e-6);
    CHECK_NEAR(l0->y[1], tanh(0.3), 1e-6);
    CHECK_NEAR(l1->y[0], 0.3131, 1e-4);
    CHECK_NEAR(loss, 0.0175, 1e-4);
    gn_net_zero_grads(net);
    gn_net_backward(net, &ctx);
    for (size_t i = 0; i < net->n_params; i++) net->params[i] -= 0.2f * net->grads[i];
    const float *w0 = net->layers[0].params, *w1 = net->layers[1].params;
    CHECK_NEAR(w0[0], 1.0237, 1e-4);
    CHECK_NEAR(w0[1], -2.9976, 1e-4);
    CHECK_NEAR(w0[2], 0.1658, 1e-4);
    CHECK_NEAR(w0[3], 0.9966, 1e-4);
    CHECK_NEAR(w1[0], 1.0226, 1e-4);
    CHECK_NEAR(w1[1], -0.9891, 1e-4);
    gn_net_free(&net);
    gn_cfg_free(&cfg);
    return check_exit();
}
