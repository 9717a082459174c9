/* Finite-difference checks of [connected] (every activation, with and without bias) and
 * [cost]. */
#include "gradcheck_util.h"

int main(void)
{
    const char *acts[] = {"linear", "relu", "leaky", "logistic", "tanh", "ramp"};
    char buf[512];
    for (int a = 0; a < 6; a++) {
        snprintf(buf, sizeof buf,
                 "[net]\nwidth=3\nheight=2\nchannels=3\n[connected]\noutput=7\nactivation=%s\n",
                 acts[a]);
        char name[64];
        snprintf(name, sizeof name, "connected %s", acts[a]);
        gradcheck_cfg(name, buf, 3, 0, 1, 1e-2);
    }
    gradcheck_cfg("connected no bias",
                  "[net]\ninputs=5\n[connected]\noutput=1\nbias=0\n", 2, 0, 1, 1e-2);
    gradcheck_cfg("cost sse", "[net]\ninputs=4\n[connected]\noutput=3\n[cost]\ntype=sse\n", 3, 1,
                  1, 1e-2);
    gradcheck_cfg("cost l1", "[net]\ninputs=4\n[connected]\noutput=3\n[cost]\ntype=l1\n", 3, 1, 1,
                  1e-2);
    return check_exit();
}
