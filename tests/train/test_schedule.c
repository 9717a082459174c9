/* Learning-rate schedules and the SGD step against hand-computed values; training keys parsed
 * and refused with file:line. */
#include "check.h"
#include "gemmnet/gemmnet.h"
#include "gemmnet/train.h"

#include <string.h>

static int parse(const char *text, gn_train_opts *o, gn_err *err)
{
    gn_cfg *cfg = NULL;
    int rc = gn_cfg_parse(&cfg, text, "t.cfg", err);
    if (!rc) rc = gn_train_opts_parse(o, cfg, err);
    gn_cfg_free(&cfg);
    return rc;
}

int main(void)
{
    gn_schedule s;
    memset(&s, 0, sizeof s);
    s.lr = 0.1;
    s.power = 4;
    s.policy = GN_POLICY_CONSTANT;
    CHECK_NEAR(gn_schedule_lr(&s, 123), 0.1, 1e-12);
    s.policy = GN_POLICY_STEP;
    s.step = 10;
    s.scale = 0.5;
    CHECK_NEAR(gn_schedule_lr(&s, 9), 0.1, 1e-12);
    CHECK_NEAR(gn_schedule_lr(&s, 10), 0.05, 1e-12);
    CHECK_NEAR(gn_schedule_lr(&s, 35), 0.0125, 1e-12);
    s.policy = GN_POLICY_STEPS;
    s.n_steps = 2;
    s.steps[0] = 100;
    s.steps[1] = 200;
    s.scales[0] = 0.1f;
    s.scales[1] = 0.5f;
    CHECK_NEAR(gn_schedule_lr(&s, 99), 0.1, 1e-9);
    CHECK_NEAR(gn_schedule_lr(&s, 100), 0.01, 1e-8);
    CHECK_NEAR(gn_schedule_lr(&s, 250), 0.005, 1e-8);
    s.policy = GN_POLICY_EXP;
    s.gamma = 0.9;
    CHECK_NEAR(gn_schedule_lr(&s, 2), 0.081, 1e-12);
    s.policy = GN_POLICY_POLY;
    s.max_batches = 100;
    s.power = 2;
    CHECK_NEAR(gn_schedule_lr(&s, 50), 0.025, 1e-12);
    CHECK_NEAR(gn_schedule_lr(&s, 100), 0.0, 1e-12);
    s.policy = GN_POLICY_SIGMOID;
    s.gamma = 0.1;
    s.step = 30;
    CHECK_NEAR(gn_schedule_lr(&s, 30), 0.05, 1e-12);
    s.policy = GN_POLICY_COSINE;
    s.lr_min = 0.001;
    CHECK_NEAR(gn_schedule_lr(&s, 0), 0.1, 1e-12);
    CHECK_NEAR(gn_schedule_lr(&s, 50), 0.0505, 1e-12);
    CHECK_NEAR(gn_schedule_lr(&s, 100), 0.001, 1e-12);
    s.policy = GN_POLICY_RANDOM;
    s.power = 1;
    double r1 = gn_schedule_lr(&s, 7), r2 = gn_schedule_lr(&s, 7);
    CHECK(r1 == r2 && r1 >= 0 && r1 < 0.1);
    /* burn-in: darknet's lr * (iter/burn_in)^power */
    s.policy = GN_POLICY_CONSTANT;
    s.burn_in = 10;
    s.power = 4;
    CHECK_NEAR(gn_schedule_lr(&s, 5), 0.1 * 0.0625, 1e-12);
    CHECK_NEAR(gn_schedule_lr(&s, 10), 0.1, 1e-12);

    /* SGD as PyTorch: w=1, dw=0.5, wd=0.1, mu=0.9, lr=0.1 twice. */
    float w = 1, v = 0, dw = 0.5f;
    gn_sgd_step(&w, &v, &dw, 1, 0.1f, 0.9f, 0.1f, 0);
    CHECK_NEAR(v, 0.6, 1e-6);
    CHECK_NEAR(w, 0.94, 1e-6);
    gn_sgd_step(&w, &v, &dw, 1, 0.1f, 0.9f, 0.1f, 0);
    CHECK_NEAR(v, 0.9 * 0.6 + 0.5 + 0.094, 1e-6);
    CHECK_NEAR(w, 0.94 - 0.1 * (0.54 + 0.594), 1e-6);
    float wn = 1, vn = 0;
    gn_sgd_step(&wn, &vn, &dw, 1, 0.1f, 0.9f, 0.1f, 1);
    CHECK_NEAR(wn, 1 - 0.1 * (0.6 + 0.9 * 0.6), 1e-6);

    gn_train_opts o;
    gn_err err = {0};
    CHECK(parse("[net]\nbatch=64\nsubdivisions=2\nlearning_rate=0.1\npolicy=steps\nsteps=10,20\n"
                "scales=.1,.1\nmax_batches=30\n[eval]\nevery=5\n[checkpoint]\nkeep=2\n",
                &o, &err) == GN_OK);
    CHECK(o.batch == 64 && o.subdivisions == 2 && o.max_batches == 30 && o.eval_every == 5);
    CHECK(o.sched.n_steps == 2 && o.ckpt_keep == 2);
    CHECK(parse("[net]\nbatch=10\nsubdivisions=3\n", &o, &err) == GN_ECONFIG);
    CHECK_MSG(strstr(err.msg, "t.cfg:3") && strstr(err.msg, "subdivisions"), "%s", err.msg);
    CHECK(parse("[net]\npolicy=weird\n", &o, &err) == GN_ECONFIG);
    CHECK_MSG(strstr(err.msg, "t.cfg:2") && strstr(err.msg, "policy"), "%s", err.msg);
    CHECK(parse("[net]\nlearning_rate=fast\n", &o, &err) == GN_ECONFIG);
    CHECK_MSG(strstr(err.msg, "t.cfg:2") && strstr(err.msg, "learning_rate"), "%s", err.msg);
    CHECK(parse("[net]\npolicy=steps\nsteps=1,2\nscales=.1\n", &o, &err) == GN_ECONFIG);
    CHECK(parse("[net]\nmax_batches=10\nepochs=2\n", &o, &err) == GN_ECONFIG);
    return check_exit();
}
