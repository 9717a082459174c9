/* Shared by the layer tests: building small nets from cfg text, expecting build errors, and a
 * whole-net finite-difference check of dL/d(input). */
#ifndef GN_TEST_NET_UTIL_H
#define GN_TEST_NET_UTIL_H

#include "check.h"
#include "gemmnet/gemmnet.h"
#include "core/rng.h"

#include <string.h>

/* Builds text (named name, so errors read "name:line: ...") for batch images; NULL on failure
 * (recorded as a failed check). Free with net_util_free. */
static inline gn_net *net_util_build(const char *name, const char *text, int batch)
{
    gn_err err = {0};
    gn_cfg *cfg = NULL;
    gn_net *net = NULL;
    if (gn_cfg_parse(&cfg, text, name, &err) || gn_net_build(&net, cfg, batch, 5, &err)) {
        CHECK_MSG(0, "%s: %s", name, err.msg);
        gn_cfg_free(&cfg);
        return NULL;
    }
    return net;
}

static inline void net_util_free(gn_net **net)
{
    if (!*net) return;
    gn_cfg *cfg = (*net)->cfg;
    gn_net_free(net);
    gn_cfg_free(&cfg);
}

/* Expects building text to fail with code and a message containing every string in want
 * (NULL-terminated). */
static inline void net_util_expect_error(const char *name, const char *text, int code,
                                         const char *const *want)
{
    gn_err err = {0};
    gn_cfg *cfg = NULL;
    gn_net *net = NULL;
    int rc = gn_cfg_parse(&cfg, text, name, &err);
    if (rc == GN_OK) rc = gn_net_build(&net, cfg, 2, 5, &err);
    CHECK_MSG(rc == code, "%s: got %s (%s), expected %s", name, gn_status_name(rc), err.msg,
              gn_status_name(code));
    for (int i = 0; want[i]; i++)
        CHECK_MSG(strstr(err.msg, want[i]) != NULL, "%s: message '%s' lacks '%s'", name,
                  err.msg, want[i]);
    if (rc != GN_OK) printf("%-28s -> %s\n", name, err.msg);
    gn_net_free(&net);
    gn_cfg_free(&cfg);
}

/* Fills net->input uniformly in [-1, 1) from seed. */
static inline void net_util_fill_input(gn_net *net, uint64_t seed)
{
    gn_rng r = gn_rng_make(gn_rng_key(seed, 1, 2));
    size_t n = (size_t)net->batch * gn_shape_size(net->in);
    for (size_t i = 0; i < n; i++) net->input[i] = (float)(2 * gn_rng_uniform(&r) - 1);
}

/* Whole-net check: for up to max_checks input elements, (L(x+h) - L(x-h)) / 2h against
 * net->dinput from gn_net_backward. Kinks (the quotient moving with the step) are skipped.
 * Returns the worst relative error; records a failure above tol. */
static inline double net_util_input_gradcheck(const char *name, gn_net *net, const gn_ctx *ctx,
                                              int max_checks, double tol)
{
    gn_err err = {0};
    if (gn_net_enable_dinput(net, &err)) {
        CHECK_MSG(0, "%s: %s", name, err.msg);
        return 1e9;
    }
    gn_net_forward(net, ctx);
    gn_net_zero_grads(net);
    gn_net_backward(net, ctx);
    size_t n = (size_t)ctx->batch * gn_shape_size(net->in);
    size_t step = n > (size_t)max_checks ? n / (size_t)max_checks : 1;
    double worst = 0;
    int checked = 0, skipped = 0;
    for (size_t i = 0; i < n; i += step) {
        float v0 = net->input[i];
        double num[2];
        for (int k = 0; k < 2; k++) {
            double h = k ? 1e-3 : 2e-3;
            net->input[i] = (float)(v0 + h);
            double up = (double)net->input[i] - v0;
            double lp = gn_net_forward(net, ctx);
            net->input[i] = (float)(v0 - h);
            double dn = v0 - (double)net->input[i];
            double lm = gn_net_forward(net, ctx);
            num[k] = (lp - lm) / (up + dn);
        }
        net->input[i] = v0;
        if (fabs(num[0] - num[1]) > 0.02 * fmax(fabs(num[0]), fabs(num[1])) + 2e-3) {
            skipped++;
            continue;
        }
        double a = net->dinput[i];
        double e = fabs(a - num[0]) / fmax(fmax(fabs(a), fabs(num[0])), 1e-2);
        if (e > worst) worst = e;
        checked++;
    }
    gn_net_forward(net, ctx);
    printf("%-40s dinput %.2e  (%d checked, %d kinks skipped)\n", name, worst, checked, skipped);
    CHECK_MSG(checked > 0, "%s: nothing was checked", name);
    CHECK_MSG(worst <= tol, "%s: worst relative error %.3e > %.1e", name, worst, tol);
    return worst;
}

#endif
