/* configs/lecture.cfg trained for its one iteration through the real pipeline (CSV source,
 * trainer, checkpoint) reproduces the lecture's numbers. */
#include "check.h"
#include "gemmnet/gemmnet.h"
#include "gemmnet/checkpoint.h"
#include "gemmnet/train.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
    const char *root = getenv("GN_SOURCE_ROOT");
    char path[4096], out[] = "/tmp/gn-lecture-XXXXXX";
    snprintf(path, sizeof path, "%s/configs/lecture.cfg", root ? root : ".");
    CHECK(mkdtemp(out) != NULL);
    gn_err err = {0};
    gn_cfg *cfg = NULL;
    CHECK_MSG(gn_cfg_load(&cfg, path, &err) == GN_OK, "%s", err.msg);
    if (!cfg) return check_exit();
    gn_train_args a = {0};
    a.out_dir = out;
    a.threads = 1;
    gn_train_result r;
    CHECK_MSG(gn_train(cfg, &a, &r, &err) == GN_OK, "%s", err.msg);
    CHECK(r.iters == 1);
    /* the smoothed loss of the first iteration is its loss */
    CHECK_NEAR(r.train_loss, 0.0175, 1e-4);

    gn_net *net = NULL;
    gn_ckpt *ck = NULL;
    gn_cfg *cfg2 = NULL;
    CHECK(gn_cfg_load(&cfg2, path, &err) == GN_OK);
    CHECK(cfg2 && gn_net_build(&net, cfg2, 1, 99, &err) == GN_OK);
    CHECK_MSG(gn_ckpt_open(&ck, r.last_path, &err) == GN_OK, "%s", err.msg);
    if (net && ck) {
        CHECK_MSG(gn_ckpt_load_net(ck, net, NULL, GN_CKPT_STRICT, &err) == GN_OK, "%s", err.msg);
        const float *w0 = net->layers[0].params, *w1 = net->layers[1].params;
        CHECK_NEAR(w0[0], 1.0237, 1e-4);
        CHECK_NEAR(w0[1], -2.9976, 1e-4);
        CHECK_NEAR(w0[2], 0.1658, 1e-4);
        CHECK_NEAR(w0[3], 0.9966, 1e-4);
        CHECK_NEAR(w1[0], 1.0226, 1e-4);
        CHECK_NEAR(w1[1], -0.9891, 1e-4);
        CHECK(gn_ckpt_meta(ck, "iteration") && !strcmp(gn_ckpt_meta(ck, "iteration"), "1"));
    }
    gn_ckpt_close(&ck);
    gn_net_free(&net);
    gn_cfg_free(&cfg2);
    gn_cfg_free(&cfg);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", out);
    CHECK(system(cmd) == 0);
    return check_exit();
}
