/* The classification configs Debian's darknet package ships build a network, every key in them
 * is understood, and one forward and backward pass on a small input runs and gives finite
 * numbers. Skipped (exit 77) when the darknet package is not installed. */
#include "check.h"
#include "gemmnet/gemmnet.h"
#include "gemmnet/data.h"
#include "gemmnet/train.h"
#include "core/rng.h"

#include <math.h>
#include <string.h>
#include <unistd.h>

static const struct {
    const char *name;
    int size;
} cfgs[] = {
    {"darknet19.cfg", 64}, {"alexnet.cfg", 99},     {"tiny.cfg", 64},
    {"extraction.cfg", 64}, {"resnet18.cfg", 64}, {"resnet50.cfg", 64},
};

int main(void)
{
    const char *dir = "/usr/share/darknet/cfg";
    if (access(dir, R_OK)) {
        printf("SKIP: %s not found (apt-get install darknet)\n", dir);
        return 77;
    }
    gn_set_threads(0);
    for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++) {
        char path[512], w[64], h[64];
        snprintf(path, sizeof path, "%s/%s", dir, cfgs[i].name);
        snprintf(w, sizeof w, "net.width=%d", cfgs[i].size);
        snprintf(h, sizeof h, "net.height=%d", cfgs[i].size);
        gn_err err = {0};
        gn_cfg *cfg = NULL;
        gn_net *net = NULL;
        gn_train_opts to;
        gn_data_opts d;
        int rc = gn_cfg_load(&cfg, path, &err);
        if (!rc) rc = gn_cfg_set(cfg, w, 1, &err);
        if (!rc) rc = gn_cfg_set(cfg, h, 2, &err);
        if (!rc) rc = gn_train_opts_parse(&to, cfg, &err);
        if (!rc) rc = gn_data_opts_parse(&d, cfg, &err);
        gn_train_accept_darknet_keys(cfg);
        if (!rc) rc = gn_net_build(&net, cfg, 2, 1, &err);
        if (!rc) rc = gn_cfg_check_all_unused(cfg, &err);
        CHECK_MSG(rc == GN_OK, "%s: %s", cfgs[i].name, err.msg);
        if (rc) {
            gn_net_free(&net);
            gn_cfg_free(&cfg);
            continue;
        }
        gn_rng r = gn_rng_make(7);
        for (size_t k = 0; k < 2 * gn_shape_size(net->in); k++)
            net->input[k] = (float)(2 * gn_rng_uniform(&r) - 1);
        net->labels[0] = 1;
        net->labels[1] = 7;
        gn_ctx ctx = gn_net_ctx(net, 1);
        double loss = gn_net_forward(net, &ctx);
        gn_net_zero_grads(net);
        gn_net_backward(net, &ctx);
        double gsum = 0;
        int finite = 1;
        for (size_t k = 0; k < net->n_params; k++) {
            finite &= isfinite(net->grads[k]);
            gsum += fabs(net->grads[k]);
        }
        printf("%-16s %3d layers %10zu params  loss %.4f  |grad| %.4g\n", cfgs[i].name,
               net->n_layers, net->n_params, loss, gsum);
        CHECK_MSG(isfinite(loss) && loss > 0, "%s: loss %g", cfgs[i].name, loss);
        CHECK_MSG(finite && gsum > 0, "%s: gradients not finite or all zero", cfgs[i].name);
        gn_net_free(&net);
        gn_cfg_free(&cfg);
    }
    return check_exit();
}
