/* Finite-difference checks of [connected] (every activation, with and without bias) and
 * [cost]; relu6's kinks at 0 and 6, and its folded-in batch-norm form. */
#include "gradcheck_util.h"
#include "kernels/activation.h"
#include "kernels/batchnorm.h"

/* relu6 (PyTorch's ReLU6 and its hardtanh_backward): y = min(max(x, 0), 6), and the gradient
 * passes only strictly between the kinks. The plain kernels and the batch-norm-folded ones
 * (used by [convolutional] batch_normalize=1) must agree value for value. */
static void check_relu6_kernels(void)
{
    enum { N = 2, C = 3, HW = 11, M = N * C * HW };
    float x[M], y[M], dy[M], want_y[M], want_dy[M];
    for (int i = 0; i < M; i++) {
        x[i] = -8.0f + 0.25f * (float)i; /* -8 .. 8.25, exactly 0 and 6 among them */
        want_y[i] = x[i] <= 0 ? 0 : x[i] >= 6 ? 6 : x[i];
        dy[i] = 1.0f + 0.5f * (float)(i % 5);
        want_dy[i] = x[i] > 0 && x[i] < 6 ? dy[i] : 0;
    }
    memcpy(y, x, sizeof y);
    act_forward(y, M, GN_ACT_RELU6);
    CHECK(!memcmp(y, want_y, sizeof y));
    for (int i = 0; i < M; i++) CHECK_MSG(act_one(x[i], GN_ACT_RELU6) == want_y[i], "x %g", x[i]);
    act_backward(dy, y, M, GN_ACT_RELU6);
    CHECK(!memcmp(dy, want_dy, sizeof dy));
    /* Folded into batch norm (evaluation): running mean 0, var 1 - eps, gamma 1, beta 0 make
     * xhat = x, so y and the activation gradient must be the plain kernels'. */
    float rm[C] = {0, 0, 0}, rv[C], g[C] = {1, 1, 1}, b[C] = {0, 0, 0}, xhat[M], istd[C];
    for (int c = 0; c < C; c++) rv[c] = 1.0f - 1e-5f;
    float yb[M], db[M];
    memcpy(yb, x, sizeof yb);
    batchnorm_forward_eval(yb, xhat, istd, rm, rv, g, b, N, C, HW, 1e-5f, GN_ACT_RELU6);
    double e = 0;
    for (int i = 0; i < M; i++) e = fmax(e, fabs((double)yb[i] - want_y[i]));
    CHECK_MSG(e <= 1e-5, "batch norm + relu6 forward off by %.2e", e);
    for (int i = 0; i < M; i++) {
        db[i] = 1.0f + 0.5f * (float)(i % 5);
        xhat[i] = x[i]; /* exactly, so the kinks are hit exactly */
    }
    batchnorm_act_backward(db, xhat, g, b, N, C, HW, GN_ACT_RELU6);
    CHECK(!memcmp(db, want_dy, sizeof db));
}

int main(void)
{
    const char *acts[] = {"linear", "relu", "leaky", "logistic", "tanh", "ramp", "relu6"};
    char buf[512];
    for (int a = 0; a < 7; a++) {
        snprintf(buf, sizeof buf,
                 "[net]\nwidth=3\nheight=2\nchannels=3\n[connected]\noutput=7\nactivation=%s\n",
                 acts[a]);
        char name[64];
        snprintf(name, sizeof name, "connected %s", acts[a]);
        gradcheck_cfg(name, buf, 3, 0, 1, 1e-2);
    }
    /* relu6 on both sides of both kinks: weights of +-4..9 on inputs in (-1, 1) put the
     * pre-activations well below 0, in (0, 6) and above 6. */
    gradcheck_cfg("connected relu6 wide",
                  "[net]\ninputs=3\n[connected]\noutput=8\nactivation=relu6\n"
                  "init_weights=9,4,-5, -9,-4,5, 5,2,1, 7,7,-1, -3,8,2, 6,-6,4, 2,2,9, -8,1,-1\n"
                  "init_bias=3,3,3,3,3,3,3,3\n",
                  6, 0, 1, 1e-2);
    check_relu6_kernels();
    gradcheck_cfg("connected no bias",
                  "[net]\ninputs=5\n[connected]\noutput=1\nbias=0\n", 2, 0, 1, 1e-2);
    gradcheck_cfg("cost sse", "[net]\ninputs=4\n[connected]\noutput=3\n[cost]\ntype=sse\n", 3, 1,
                  1, 1e-2);
    gradcheck_cfg("cost l1", "[net]\ninputs=4\n[connected]\noutput=3\n[cost]\ntype=l1\n", 3, 1, 1,
                  1e-2);
    return check_exit();
}
