/* [crop]: evaluation takes the centre window as 2x - 1 (x with noadjust=1); training takes a
 * window per image at a random offset, flipped about half the time with flip=1, the same for the
 * same (seed, step) whatever the threads, another for another step; finite-difference checks in
 * both modes; config errors; darknet's vgg-16.cfg and strided.cfg ([crop] first; strided's
 * convolutions use darknet's ramp activation) plan. */
#include "gradcheck_util.h"
#include "net_util.h"

#include <stdlib.h>
#include <unistd.h>

enum { C = 2, H = 7, W = 9, CH = 4, CW = 5, N = 64 };

static void run(gn_net *net, int train, uint64_t step)
{
    gn_ctx ctx = gn_net_ctx(net, train);
    ctx.seed = 4;
    ctx.step = step;
    gn_net_forward(net, &ctx);
}

/* Image n of y is the window (dy, dx) of image n of x, flipped or not, as a*x + b: which?
 * Returns 1 and the placement when found. */
static int find_window(const float *x, const float *y, float a, float b, int *dy, int *dx,
                       int *flip)
{
    for (int f = 0; f < 2; f++)
        for (int i0 = 0; i0 <= H - CH; i0++)
            for (int j0 = 0; j0 <= W - CW; j0++) {
                int same = 1;
                for (int c = 0; c < C && same; c++)
                    for (int i = 0; i < CH && same; i++)
                        for (int j = 0; j < CW && same; j++) {
                            int col = f ? j0 + CW - 1 - j : j0 + j;
                            same = y[(c * CH + i) * CW + j] == a * x[(c * H + i0 + i) * W + col] + b;
                        }
                if (same) {
                    *dy = i0;
                    *dx = j0;
                    *flip = f;
                    return 1;
                }
            }
    return 0;
}

int main(void)
{
    char text[256];
    snprintf(text, sizeof text,
             "[net]\nwidth=%d\nheight=%d\nchannels=%d\n[crop]\ncrop_height=%d\ncrop_width=%d\n"
             "flip=1\nangle=0\nsaturation=1\nexposure=1\nshift=.2\n",
             W, H, C, CH, CW);
    gn_net *net = net_util_build("crop", text, N);
    if (!net) return check_exit();
    net_util_fill_input(net, 1);
    const size_t isz = C * H * W, osz = C * CH * CW;
    const float *y = net->layers[0].y;
    CHECK(net->layers[0].out.c == C && net->layers[0].out.h == CH && net->layers[0].out.w == CW);

    /* Evaluation: the centre window, 2x - 1, never flipped. */
    run(net, 0, 1);
    int ok = 1;
    for (int n = 0; n < N; n++) {
        int dy, dx, f;
        ok &= find_window(net->input + n * isz, y + n * osz, 2, -1, &dy, &dx, &f) &&
              dy == (H - CH) / 2 && dx == (W - CW) / 2 && !f;
    }
    CHECK_MSG(ok, "evaluation must take the centre window as 2x - 1");

    /* Training: every image a window; offsets spread over the range; about half flipped. */
    run(net, 1, 1);
    float *first = malloc(N * osz * sizeof(float));
    memcpy(first, y, N * osz * sizeof(float));
    int found = 1, flips = 0, seen_dy[H] = {0}, seen_dx[W] = {0};
    for (int n = 0; n < N; n++) {
        int dy, dx, f;
        if (!find_window(net->input + n * isz, y + n * osz, 2, -1, &dy, &dx, &f)) {
            found = 0;
            continue;
        }
        flips += f;
        seen_dy[dy] = seen_dx[dx] = 1;
    }
    int ndy = 0, ndx = 0;
    for (int i = 0; i <= H - CH; i++) ndy += seen_dy[i];
    for (int j = 0; j <= W - CW; j++) ndx += seen_dx[j];
    printf("training: %d of %d images flipped; %d of %d row offsets, %d of %d column offsets\n",
           flips, N, ndy, H - CH + 1, ndx, W - CW + 1);
    CHECK_MSG(found, "a training output is not a window of its input");
    /* 64 fair coins: 16..48 fails with probability < 1e-4 */
    CHECK_MSG(flips >= 16 && flips <= 48, "%d of %d flipped", flips, N);
    CHECK(ndy == H - CH + 1 && ndx == W - CW + 1);

    int threads = gn_get_threads();
    gn_set_threads(1);
    run(net, 1, 1);
    gn_set_threads(threads);
    CHECK_MSG(!memcmp(first, y, N * osz * sizeof(float)), "the crops changed with the threads");
    run(net, 1, 2);
    CHECK_MSG(memcmp(first, y, N * osz * sizeof(float)), "step 2 cropped as step 1");
    free(first);
    net_util_free(&net);

    /* noadjust=1: the values unchanged; flip=0: never flipped. */
    snprintf(text, sizeof text,
             "[net]\nwidth=%d\nheight=%d\nchannels=%d\n[crop]\ncrop_height=%d\ncrop_width=%d\n"
             "noadjust=1\n", W, H, C, CH, CW);
    net = net_util_build("crop noadjust", text, N);
    if (net) {
        net_util_fill_input(net, 2);
        run(net, 1, 3);
        ok = 1;
        for (int n = 0; n < N; n++) {
            int dy, dx, f;
            ok &= find_window(net->input + n * isz, net->layers[0].y + n * osz, 1, 0, &dy, &dx,
                              &f) && !f;
        }
        CHECK_MSG(ok, "noadjust=1 flip=0: plain windows");
        net_util_free(&net);
    }

    gradcheck_cfg("crop train (flip)",
                  "[net]\nwidth=6\nheight=5\nchannels=3\n[crop]\ncrop_height=3\ncrop_width=4\n"
                  "flip=1\n[convolutional]\nfilters=2\nsize=3\npad=1\nactivation=linear\n",
                  8, 0, 1, 1e-2);
    gradcheck_cfg("crop eval, after a conv",
                  "[net]\nwidth=6\nheight=5\nchannels=3\n[convolutional]\nfilters=2\nsize=1\n"
                  "activation=linear\n[crop]\ncrop_height=4\ncrop_width=3\n",
                  3, 1, 0, 1e-2);

    const char *const big[] = {"big.cfg:6", "crop_width", "does not fit", NULL};
    net_util_expect_error("big.cfg", "[net]\nwidth=5\nheight=5\nchannels=1\n[crop]\ncrop_width=6\n",
                          GN_ESHAPE, big);
    const char *const unk[] = {"unk.cfg:6", "hue", "unknown", NULL};
    net_util_expect_error("unk.cfg", "[net]\nwidth=5\nheight=5\nchannels=1\n[crop]\nhue=.1\n",
                          GN_ECONFIG, unk);

    /* darknet's configs that use it: planned only (vgg-16 has 138M parameters). */
    const char *dn[] = {"/usr/share/darknet/cfg/vgg-16.cfg", "/usr/share/darknet/cfg/strided.cfg"};
    for (int i = 0; i < 2; i++) {
        if (access(dn[i], R_OK)) {
            printf("skipped %s: not installed\n", dn[i]);
            continue;
        }
        gn_err err = {0};
        gn_cfg *cfg = NULL;
        gn_net *plan = NULL;
        int rc = gn_cfg_load(&cfg, dn[i], &err);
        if (!rc) rc = gn_net_plan(&plan, cfg, 1, &err);
        CHECK_MSG(rc == GN_OK, "%s: %s", dn[i], err.msg);
        if (!rc) {
            CHECK(!strcmp(plan->layers[0].ops->section, "crop") && plan->layers[0].out.h == 224 &&
                  plan->layers[0].out.w == 224);
            printf("%s: %d layers, %zu parameters\n", dn[i], plan->n_layers, plan->n_params);
        }
        gn_net_free(&plan);
        gn_cfg_free(&cfg);
    }
    return check_exit();
}
