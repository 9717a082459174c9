/* Test-time augmentation ([eval] tta=flip, gn_evaluate).
 *
 * Two validation tables hold the same rows of 3x5x7 images, the second each image mirrored
 * left to right (made here, not by gemmnet). A small net that is not mirror-invariant (a
 * connected layer on the feature map) is evaluated:
 * - tta=flip on either table gives the same top-1, top-5, loss and confusion matrix (each view
 *   of one is the other view of the other);
 * - its top-1 and top-5 equal those worked out here from the mean of the two tables' softmax
 *   outputs without tta, image by image, and its loss the mean of the two tables' losses;
 * - the mirrored table alone scores differently (so the check above can fail);
 * - tta=flip reaches gn_evaluate from the config, and a bad value is refused with file:line:key. */
#include "check.h"
#include "gemmnet/gemmnet.h"
#include "gemmnet/data.h"
#include "gemmnet/train.h"
#include "core/rng.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { ROWS = 37, C = 3, H = 5, W = 7, K = 4, BATCH = 8 };

static char g_dir[] = "/tmp/gn-tta-XXXXXX";
static char g_plain[512], g_mirror[512];

/* ROWS random images, labels i % K; mirror: each image's rows reversed. */
static int write_tables(void)
{
    FILE *a = fopen(g_plain, "w"), *b = fopen(g_mirror, "w");
    int rc = a && b ? 0 : -1;
    gn_rng r = gn_rng_make(5);
    for (int i = 0; i < ROWS && !rc; i++) {
        float v[C * H * W];
        for (int k = 0; k < C * H * W; k++) v[k] = (float)(2 * gn_rng_uniform(&r) - 1);
        for (int k = 0; k < C * H * W; k++) fprintf(a, "%.4f,", v[k]);
        for (int k = 0; k < C * H * W; k++) {
            int row = k / W, col = k % W;
            fprintf(b, "%.4f,", v[row * W + (W - 1 - col)]);
        }
        fprintf(a, "%d\n", i % K);
        fprintf(b, "%d\n", i % K);
    }
    if (a && fclose(a)) rc = -1;
    if (b && fclose(b)) rc = -1;
    return rc;
}

static gn_cfg *config(const char *val, const char *tta)
{
    char text[2048];
    snprintf(text, sizeof text,
             "[net]\nwidth=%d\nheight=%d\nchannels=%d\nbatch=%d\n"
             "[data]\ntrain=%s\nval=%s\n[eval]\ntta=%s\n"
             "[convolutional]\nfilters=6\nsize=3\npad=1\nbatch_normalize=1\nactivation=relu\n"
             "[connected]\noutput=%d\nactivation=linear\n[softmax]\n",
             W, H, C, BATCH, g_plain, val, tta, K);
    gn_err err = {0};
    gn_cfg *cfg = NULL;
    CHECK_MSG(gn_cfg_parse(&cfg, text, "tta.cfg", &err) == GN_OK, "%s", err.msg);
    return cfg;
}

typedef struct {
    gn_cfg *cfg;
    gn_net *net;
    gn_loader *val;
    gn_train_opts to;
} setup;

static int open_setup(setup *s, const char *val, const char *tta)
{
    memset(s, 0, sizeof *s);
    gn_err err = {0};
    gn_data_opts d;
    if (!(s->cfg = config(val, tta))) return -1;
    int rc = gn_train_opts_parse(&s->to, s->cfg, &err);
    if (!rc) rc = gn_data_opts_parse(&d, s->cfg, &err);
    if (!rc) rc = gn_net_build(&s->net, s->cfg, BATCH, 7, &err);
    if (!rc) rc = gn_loader_create(&s->val, &d, GN_SPLIT_VAL, BATCH, 1, &err);
    CHECK_MSG(rc == GN_OK, "%s", err.msg);
    return rc;
}

static void close_setup(setup *s)
{
    gn_loader_free(&s->val);
    gn_net_free(&s->net);
    gn_cfg_free(&s->cfg);
}

/* Every image's softmax output without tta (ROWS x K) and the loss summed over batches x n. */
static int outputs(setup *s, float *out, double *loss_sum)
{
    gn_err err = {0};
    int rc = gn_loader_seek(s->val, 0, 0), done = 0;
    *loss_sum = 0;
    while (!rc) {
        int n = 0;
        rc = gn_loader_next(s->val, s->net->input, s->net->labels, NULL, &n, &err);
        if (rc || n == 0) break;
        gn_ctx ctx = gn_net_ctx(s->net, 0);
        ctx.batch = n;
        ctx.loss_scale = 1.0f / (float)n;
        *loss_sum += gn_net_forward(s->net, &ctx) * n;
        if (done + n > ROWS) return -1;
        memcpy(out + (size_t)done * K, gn_net_output(s->net), (size_t)n * K * sizeof(float));
        done += n;
    }
    CHECK_MSG(rc == GN_OK && done == ROWS, "rc %d, %d rows: %s", rc, done, err.msg);
    return rc || done != ROWS ? -1 : 0;
}

static void tta_flip(void)
{
    setup plain, mirror;
    if (open_setup(&plain, g_plain, "flip") || open_setup(&mirror, g_mirror, "flip")) goto done;
    CHECK(plain.to.eval_tta == GN_TTA_FLIP);
    /* the same weights in both nets */
    CHECK(plain.net->n_params == mirror.net->n_params);
    memcpy(mirror.net->params, plain.net->params, plain.net->n_params * sizeof(float));
    memcpy(mirror.net->state, plain.net->state, plain.net->n_state * sizeof(float));

    gn_err err = {0};
    gn_eval_result a = {0}, b = {0}, none_a = {0}, none_b = {0};
    CHECK_MSG(gn_evaluate(plain.net, plain.val, 1, GN_TTA_FLIP, &a, &err) == GN_OK, "%s", err.msg);
    CHECK_MSG(gn_evaluate(mirror.net, mirror.val, 1, GN_TTA_FLIP, &b, &err) == GN_OK, "%s",
              err.msg);
    CHECK_MSG(gn_evaluate(plain.net, plain.val, 0, GN_TTA_NONE, &none_a, &err) == GN_OK, "%s",
              err.msg);
    CHECK_MSG(gn_evaluate(mirror.net, mirror.val, 0, GN_TTA_NONE, &none_b, &err) == GN_OK, "%s",
              err.msg);
    CHECK(a.images == ROWS && b.images == ROWS);
    CHECK_MSG(a.top1 == b.top1 && a.top5 == b.top5 && a.loss == b.loss,
              "plain %.6f %.6f %.8f, mirrored %.6f %.6f %.8f", a.top1, a.top5, a.loss, b.top1,
              b.top5, b.loss);
    CHECK(a.confusion && b.confusion &&
          !memcmp(a.confusion, b.confusion, (size_t)K * K * sizeof(int64_t)));
    CHECK_MSG(none_a.loss != none_b.loss, "the mirrored table scores as the plain one (%.8f)",
              none_a.loss);

    /* by hand: the mean of the two tables' outputs, image by image */
    float pa[ROWS * K], pb[ROWS * K];
    double la = 0, lb = 0;
    if (outputs(&plain, pa, &la) || outputs(&mirror, pb, &lb)) goto free_results;
    int hit1 = 0, hit5 = 0;
    for (int i = 0; i < ROWS; i++) {
        float m[K];
        for (int j = 0; j < K; j++) m[j] = 0.5f * (pa[i * K + j] + pb[i * K + j]);
        int label = i % K, above = 0;
        for (int j = 0; j < K; j++) above += m[j] > m[label] || (m[j] == m[label] && j < label);
        hit1 += above == 0;
        hit5 += above < 5;
    }
    CHECK_MSG(a.top1 == (double)hit1 / ROWS, "top-1 %.6f, by hand %d/%d", a.top1, hit1, ROWS);
    CHECK_MSG(a.top5 == (double)hit5 / ROWS, "top-5 %.6f, by hand %d/%d", a.top5, hit5, ROWS);
    CHECK_NEAR(a.loss, 0.5 * (la + lb) / ROWS, 1e-12);
    CHECK_NEAR(none_a.loss, la / ROWS, 1e-12);
free_results:
    gn_eval_result_free(&a);
    gn_eval_result_free(&b);
    gn_eval_result_free(&none_a);
    gn_eval_result_free(&none_b);
done:
    close_setup(&plain);
    close_setup(&mirror);
}

static void bad_value(void)
{
    gn_cfg *cfg = config(g_plain, "rotate");
    if (!cfg) return;
    gn_train_opts to;
    gn_err err = {0};
    CHECK(gn_train_opts_parse(&to, cfg, &err) != GN_OK);
    CHECK_MSG(strstr(err.msg, "tta.cfg:") && strstr(err.msg, "tta") && strstr(err.msg, "rotate"),
              "%s", err.msg);
    gn_cfg_free(&cfg);
}

int main(void)
{
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(g_plain, sizeof g_plain, "%s/plain.csv", g_dir);
    snprintf(g_mirror, sizeof g_mirror, "%s/mirror.csv", g_dir);
    CHECK(write_tables() == 0);
    tta_flip();
    bad_value();
    unlink(g_plain);
    unlink(g_mirror);
    rmdir(g_dir);
    return check_exit();
}
