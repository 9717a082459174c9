/* Shared by the layer tests: build a one-layer network from cfg text, fill it with random data,
 * and run the finite-difference check on that layer. */
#ifndef GN_TEST_GRADCHECK_UTIL_H
#define GN_TEST_GRADCHECK_UTIL_H

#include "check.h"
#include "gemmnet/gemmnet.h"
#include "core/rng.h"

#include <string.h>

/* Builds cfg_text for `batch`, fills the input, labels/targets and parameters randomly (also
 * batch-norm-like state), and checks layer `index` (its inputs are the real outputs of the
 * layers before it). Returns the worst error seen, or 1e9 on a build failure. */
static inline double gradcheck_cfg(const char *name, const char *cfg_text, int batch, int index,
                                   int train, double tol)
{
    gn_err err = {0};
    gn_cfg *cfg = NULL;
    gn_net *net = NULL;
    double worst = 1e9;
    if (gn_cfg_parse(&cfg, cfg_text, name, &err) || gn_net_build(&net, cfg, batch, 5, &err)) {
        CHECK_MSG(0, "%s: %s", name, err.msg);
        gn_cfg_free(&cfg);
        return worst;
    }
    gn_rng r = gn_rng_make(gn_rng_key(11, 0, 0));
    size_t nin = (size_t)batch * gn_shape_size(net->in);
    for (size_t i = 0; i < nin; i++) net->input[i] = (float)(2 * gn_rng_uniform(&r) - 1);
    for (int i = 0; i < batch; i++) net->labels[i] = (int)gn_rng_below(&r, (uint64_t)net->n_classes);
    for (size_t i = 0; i < (size_t)batch * (size_t)net->n_classes; i++)
        net->targets[i] = (float)(2 * gn_rng_uniform(&r) - 1);
    /* Make the input gradient of the first layer available too. */
    gn_net_enable_dinput(net, &err);
    gn_ctx ctx = gn_net_ctx(net, train);
    ctx.seed = 3;
    gn_net_forward(net, &ctx);
    gn_gradcheck res;
    if (gn_gradcheck_layer(&net->layers[index], &ctx, 60, 9, &res, &err)) {
        CHECK_MSG(0, "%s: %s", name, err.msg);
    } else {
        worst = res.max_err_dx > res.max_err_dw ? res.max_err_dx : res.max_err_dw;
        printf("%-40s dx %.2e  dw %.2e  (%d checked, %d kinks skipped)\n", name, res.max_err_dx,
               res.max_err_dw, res.checked, res.skipped);
        CHECK_MSG(res.checked > 0, "%s: nothing was checked", name);
        CHECK_MSG(worst <= tol, "%s: worst relative error %.3e > %.1e", name, worst, tol);
    }
    gn_net_free(&net);
    gn_cfg_free(&cfg);
    return worst;
}

#endif
