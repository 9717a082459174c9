/* Learning-rate schedules and the SGD step against hand-computed values, the step folded into
 * backward against the plain one; training keys parsed and refused with file:line. */
#include "check.h"
#include "gemmnet/gemmnet.h"
#include "gemmnet/train.h"

#include <stdlib.h>
#include <string.h>

static int parse(const char *text, gn_train_opts *o, gn_err *err)
{
    gn_cfg *cfg = NULL;
    int rc = gn_cfg_parse(&cfg, text, "t.cfg", err);
    if (!rc) rc = gn_train_opts_parse(o, cfg, err);
    gn_cfg_free(&cfg);
    return rc;
}

/* The SGD step folded into backward (gn_sgd_fused) against backward then gn_sgd_step over the
 * whole buffer: the same weights and velocities bit for bit, and every gradient zero after. A
 * convolution with batch norm, a connected layer of 73,728 weights (cut between threads) and
 * their biases; plain and Nesterov momentum; two steps each. */
static void check_fused(int nesterov)
{
    const char *text = "[net]\nwidth=6\nheight=6\nchannels=3\n"
                       "[convolutional]\nfilters=8\nsize=3\npad=1\nbatch_normalize=1\n"
                       "activation=relu\n"
                       "[connected]\noutput=256\nactivation=tanh\n"
                       "[connected]\noutput=5\nactivation=linear\n"
                       "[softmax]\n";
    gn_cfg *cfg = NULL;
    gn_net *a = NULL, *b = NULL;
    gn_err err = {0};
    CHECK_MSG(gn_cfg_parse(&cfg, text, "fused.cfg", &err) == GN_OK, "%s", err.msg);
    CHECK_MSG(cfg && gn_net_build(&a, cfg, 3, 7, &err) == GN_OK &&
                  gn_net_build(&b, cfg, 3, 7, &err) == GN_OK,
              "%s", err.msg);
    if (!a || !b) goto done;
    size_t n = a->n_params;
    CHECK(n > 65536 && n == b->n_params); /* the threads split the buffer */
    float *va = calloc(n, sizeof *va), *vb = calloc(n, sizeof *vb);
    for (size_t i = 0; i < 3 * 6 * 6 * 3; i++)
        a->input[i] = b->input[i] = (float)((int)(i * 37 % 17) - 8) / 8.0f;
    for (int i = 0; i < 3; i++) a->labels[i] = b->labels[i] = i + 1;
    for (int step = 0; step < 2; step++) {
        gn_ctx ca = gn_net_ctx(a, 1), cb = gn_net_ctx(b, 1);
        gn_net_zero_grads(a);
        if (step == 0) gn_net_zero_grads(b); /* later steps start from the zeros it left */
        gn_net_forward(a, &ca);
        gn_net_backward(a, &ca);
        gn_sgd_step(a->params, va, a->grads, n, 0.05f, 0.9f, 0.01f, nesterov);
        gn_sgd_fused f;
        gn_net_forward(b, &cb);
        gn_sgd_fused_begin(&f, b, vb, 0.05f, 0.9f, 0.01f, nesterov, &cb);
        gn_net_backward(b, &cb);
        gn_sgd_fused_finish(&f);
        size_t nonzero = 0;
        for (size_t i = 0; i < n; i++) nonzero += b->grads[i] != 0.0f;
        CHECK_MSG(nonzero == 0, "nesterov %d step %d: %zu gradients left non-zero", nesterov,
                  step, nonzero);
        CHECK_MSG(!memcmp(a->params, b->params, n * sizeof *va) && !memcmp(va, vb, n * sizeof *va),
                  "nesterov %d step %d: the folded step differs from gn_sgd_step", nesterov,
                  step);
    }
    free(va);
    free(vb);
done:
    gn_net_free(&a);
    gn_net_free(&b);
    gn_cfg_free(&cfg);
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
    check_fused(0);
    check_fused(1);
    return check_exit();
}
