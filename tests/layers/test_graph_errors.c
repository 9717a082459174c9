/* Gradients through graphs where one output feeds several layers (fan-out): route of one layer
 * twice, a shortcut plus the next layer, and a spatial net mixing pooling, shortcut across
 * sizes, route and dropout. Checked for the whole net: (L(x+h) - L(x-h)) / 2h against
 * dL/d(input) from gn_net_backward, so a layer that overwrote (=) instead of accumulating (+=)
 * into a shared gradient would show. */
#include "net_util.h"

static void check_net(const char *name, const char *text, int batch, int train)
{
    gn_net *net = net_util_build(name, text, batch);
    if (!net) return;
    net_util_fill_input(net, 21);
    gn_rng r = gn_rng_make(gn_rng_key(22, 0, 0));
    for (int i = 0; i < batch; i++)
        net->labels[i] = (int)gn_rng_below(&r, (uint64_t)net->n_classes);
    gn_ctx ctx = gn_net_ctx(net, train);
    ctx.seed = 17;
    ctx.step = 4;
    net_util_input_gradcheck(name, net, &ctx, 80, 1e-2);
    net_util_free(&net);
}

int main(void)
{
    check_net("fan-out: route of one layer twice",
              "[net]\nwidth=5\nheight=3\nchannels=2\n"
              "[activation]\nactivation=tanh\n"
              "[route]\nlayers=0,0\n"
              "[connected]\noutput=4\n"
              "[softmax]\n",
              2, 1);
    check_net("fan-out: shortcut plus the next layer",
              "[net]\ninputs=6\n"
              "[connected]\noutput=5\nactivation=tanh\n"
              "[connected]\noutput=5\nactivation=logistic\n"
              "[shortcut]\nfrom=0\nalpha=0.5\n"
              "[connected]\noutput=3\n"
              "[softmax]\n",
              3, 1);
    check_net("fan-out: pooling, shortcut, route, dropout",
              "[net]\nwidth=7\nheight=6\nchannels=3\n"
              "[activation]\nactivation=tanh\n"
              "[maxpool]\nsize=2\nstride=2\npadding=0\n"
              "[shortcut]\nfrom=0\nactivation=logistic\n"
              "[route]\nlayers=-1,1,-2\n"
              "[dropout]\nprobability=0.25\n"
              "[avgpool]\nsize=3\nstride=1\npadding=1\n"
              "[avgpool]\n"
              "[connected]\noutput=4\n"
              "[softmax]\ntemperature=0.5\n",
              2, 1);
    check_net("fan-out: shortcut from=-1 (one layer, both inputs)",
              "[net]\ninputs=4\n"
              "[connected]\noutput=5\nactivation=tanh\n"
              "[shortcut]\nfrom=-1\nbeta=2\n"
              "[connected]\noutput=3\n"
              "[cost]\n",
              2, 1);
    return check_exit();
}
