/* Fine-tuning keys (docs/fine-tuning.md): stopbackward=1, [train] freeze=N, lr_mult, and
 * batch norm of frozen layers in evaluation mode.
 *
 * A small conv net trains for a few iterations through the real trainer (CSV source, both SGD
 * paths: the step folded into backward at subdivisions=1 and the separate step at 2), starting
 * from a checkpoint written here. Checked: every frozen tensor, parameters and batch-norm running
 * statistics, is bit-identical afterwards; the head's weights changed and the loss on the
 * training rows fell; backward writes no gradient into frozen layers and no dL/dx below them;
 * lr_mult=0 keeps a layer's weights; bad values are refused naming file:line and the key. */
#include "check.h"
#include "gemmnet/gemmnet.h"
#include "gemmnet/checkpoint.h"
#include "gemmnet/train.h"
#include "core/rng.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ROWS 64
#define VALS (3 * 6 * 6)

static char g_dir[] = "/tmp/gn-finetune-XXXXXX";
static char g_csv[512], g_init[512];

/* Rows of 3x6x6 values; class 1 when the first channel's mean is positive: learnable from
 * pooled features. */
static int write_csv(void)
{
    FILE *f = fopen(g_csv, "w");
    if (!f) return -1;
    gn_rng r = gn_rng_make(11);
    for (int i = 0; i < ROWS; i++) {
        float v[VALS];
        int label = i % 2;
        for (int k = 0; k < VALS; k++)
            v[k] = (float)(2 * gn_rng_uniform(&r) - 1) + (k < 36 ? (label ? 0.6f : -0.6f) : 0.0f);
        for (int k = 0; k < VALS; k++) fprintf(f, "%.5f,", v[k]);
        fprintf(f, "%d\n", label);
    }
    return fclose(f);
}

/* Layers: 0 conv+bn, 1 [batchnorm], 2 conv+bn, 3 conv 1x1, 4 avgpool, 5 connected, 6 softmax.
 * `extra` is spliced into the layer-2 section, `head` into the connected one. */
static const char *cfg_text(char *buf, size_t n, const char *net_extra, const char *train_extra,
                            const char *extra, const char *head)
{
    snprintf(buf, n,
             "[net]\nwidth=6\nheight=6\nchannels=3\nbatch=16\nlearning_rate=0.1\n"
             "momentum=0.9\ndecay=0.0005\nmax_batches=12\n%s\n"
             "[data]\ntrain=%s\n[train]\nseed=3\nlog_every=100\n%s\n"
             "[convolutional]\nfilters=6\nsize=3\npad=1\nbatch_normalize=1\nactivation=relu\n"
             "[batchnorm]\n"
             "[convolutional]\nfilters=6\nsize=3\npad=1\nbatch_normalize=1\nactivation=relu\n%s\n"
             "[convolutional]\nfilters=8\nsize=1\nactivation=relu\n"
             "[avgpool]\n"
             "[connected]\noutput=2\nactivation=linear\n%s\n"
             "[softmax]\n",
             net_extra, g_csv, train_extra, extra, head);
    return buf;
}

static gn_cfg *parse(const char *text, const char *name)
{
    gn_err err = {0};
    gn_cfg *cfg = NULL;
    CHECK_MSG(gn_cfg_parse(&cfg, text, name, &err) == GN_OK, "%s", err.msg);
    return cfg;
}

/* The net of text with the weights of path (NULL: as initialized from seed 3). */
static gn_net *load(const char *text, const char *path, int batch)
{
    gn_err err = {0};
    gn_cfg *cfg = parse(text, "load.cfg");
    gn_net *net = NULL;
    gn_ckpt *ck = NULL;
    if (!cfg) return NULL;
    CHECK_MSG(gn_net_build(&net, cfg, batch, 3, &err) == GN_OK, "%s", err.msg);
    if (net && path) {
        CHECK_MSG(gn_ckpt_open(&ck, path, &err) == GN_OK, "%s", err.msg);
        CHECK_MSG(ck && gn_ckpt_load_net(ck, net, NULL, GN_CKPT_STRICT, &err) == GN_OK, "%s",
                  err.msg);
        gn_ckpt_close(&ck);
    }
    return net;
}

static void free_net(gn_net **net)
{
    if (!*net) return;
    gn_cfg *cfg = (*net)->cfg;
    gn_net_free(net);
    gn_cfg_free(&cfg);
}

/* Mean cross-entropy over the CSV's first 16 rows, evaluation mode. */
static double loss_on_rows(gn_net *net)
{
    FILE *f = fopen(g_csv, "r");
    if (!f) return -1;
    for (int i = 0; i < 16; i++) {
        for (int k = 0; k < VALS; k++)
            if (fscanf(f, "%f,", &net->input[i * VALS + k]) != 1) return -1;
        if (fscanf(f, "%d", &net->labels[i]) != 1) return -1;
    }
    fclose(f);
    gn_ctx ctx = gn_net_ctx(net, 0);
    return gn_net_forward(net, &ctx);
}

static int same_floats(const float *a, const float *b, size_t n)
{
    return n == 0 || memcmp(a, b, n * sizeof(float)) == 0;
}

/* Trains text from g_init; checks layers [0, frozen) bit-identical (params and state), layer
 * `fixed` (-1: none) bit-identical too, and every other layer with parameters changed. */
static void train_and_compare(const char *what, const char *text, int frozen, int fixed)
{
    char out[4300];
    snprintf(out, sizeof out, "%s/run-%s", g_dir, what);
    gn_err err = {0};
    gn_cfg *cfg = parse(text, what);
    if (!cfg) return;
    gn_train_args a = {0};
    a.out_dir = out;
    a.weights = g_init;
    a.threads = 1;
    gn_train_result r;
    CHECK_MSG(gn_train(cfg, &a, &r, &err) == GN_OK, "%s: %s", what, err.msg);
    gn_cfg_free(&cfg);
    gn_net *before = load(text, g_init, 16), *after = load(text, r.last_path, 16);
    if (!before || !after) goto done;
    for (int i = 0; i < before->n_layers; i++) {
        const gn_layer *b = &before->layers[i], *t = &after->layers[i];
        int keep = i < frozen || i == fixed;
        CHECK_MSG(b->frozen == (i < frozen), "%s: layer %d frozen=%d", what, i, b->frozen);
        if (keep) {
            CHECK_MSG(same_floats(b->params, t->params, b->n_params), "%s: layer %d's "
                      "parameters changed", what, i);
            CHECK_MSG(same_floats(b->state, t->state, b->n_state), "%s: layer %d's running "
                      "statistics changed", what, i);
        } else if (b->n_params) {
            CHECK_MSG(!same_floats(b->params, t->params, b->n_params), "%s: layer %d did not "
                      "learn", what, i);
        }
        if (!keep && b->n_state)
            CHECK_MSG(!same_floats(b->state, t->state, b->n_state), "%s: layer %d's running "
                      "statistics did not move", what, i);
    }
    double l0 = loss_on_rows(before), l1 = loss_on_rows(after);
    printf("%s: loss %.4f -> %.4f\n", what, l0, l1);
    CHECK_MSG(l1 < l0 - 0.02, "%s: loss %.4f -> %.4f", what, l0, l1);
done:
    free_net(&before);
    free_net(&after);
}

/* Backward of a frozen net leaves the frozen layers' gradients at zero and wires no dL/dx
 * into them; the unfrozen layers get gradients. */
static void check_backward_skips(void)
{
    char text[4096];
    gn_net *net = load(cfg_text(text, sizeof text, "", "", "stopbackward=1", ""), NULL, 4);
    if (!net) return;
    gn_rng r = gn_rng_make(5);
    for (size_t i = 0; i < 4 * (size_t)VALS; i++) net->input[i] = (float)gn_rng_uniform(&r);
    for (int i = 0; i < 4; i++) net->labels[i] = i % 2;
    gn_ctx ctx = gn_net_ctx(net, 1);
    gn_net_zero_grads(net);
    gn_net_forward(net, &ctx);
    gn_net_backward(net, &ctx);
    for (int i = 0; i < net->n_layers; i++) {
        const gn_layer *l = &net->layers[i];
        double s = 0;
        for (size_t k = 0; k < l->n_params; k++) s += l->grads[k] != 0.0f;
        if (i <= 2)
            CHECK_MSG(s == 0, "frozen layer %d has %g non-zero gradients", i, s);
        else if (l->n_params)
            CHECK_MSG(s > 0, "layer %d got no gradient", i);
    }
    CHECK_MSG(net->layers[3].dx[0] == NULL, "layer 3 still computes dL/dx into frozen layer 2");
    CHECK(net->layers[4].dx[0] != NULL);
    /* the trainer's memory saver (outputs of frozen conv+BN layers rebuilt for the first
     * training layer's weight gradient) gives the same bits */
    gn_err err = {0};
    gn_net *rnet = NULL;
    CHECK_MSG(gn_net_build_flags(&rnet, net->cfg, 4, 3, GN_NET_RECOMPUTE, &err) == GN_OK, "%s",
              err.msg);
    if (rnet) {
        memcpy(rnet->params, net->params, net->n_params * sizeof(float));
        memset(rnet->state, 0, net->n_state * sizeof(float));
        for (int i = 0; i < net->n_layers; i++) /* the running statistics net started from */
            if (net->layers[i].n_state) {
                float *rv = rnet->layers[i].state + net->layers[i].n_state / 2;
                for (size_t k = 0; k < net->layers[i].n_state / 2; k++) rv[k] = 1.0f;
            }
        memcpy(rnet->input, net->input, 4 * (size_t)VALS * sizeof(float));
        memcpy(rnet->labels, net->labels, 4 * sizeof(int));
        gn_ctx rctx = gn_net_ctx(rnet, 1);
        gn_net_zero_grads(rnet);
        gn_net_forward(rnet, &rctx);
        gn_net_backward(rnet, &rctx);
        CHECK_MSG(same_floats(rnet->grads, net->grads, net->n_params),
                  "gradients differ with GN_NET_RECOMPUTE");
        CHECK(same_floats(rnet->state, net->state, net->n_state));
        gn_net_free(&rnet);
    }
    free_net(&net);
}

static void expect_error(const char *extra, const char *head, const char *train_extra,
                         const char *needle)
{
    char text[4096];
    gn_err err = {0};
    gn_cfg *cfg = parse(cfg_text(text, sizeof text, "", train_extra, extra, head), "bad.cfg");
    gn_net *net = NULL;
    if (!cfg) return;
    int rc = gn_net_build(&net, cfg, 2, 1, &err);
    CHECK_MSG(rc == GN_ECONFIG, "%s: build returned %d", needle, rc);
    CHECK_MSG(strstr(err.msg, needle) != NULL, "expected '%s' in: %s", needle, err.msg);
    gn_net_free(&net);
    gn_cfg_free(&cfg);
}

int main(void)
{
    CHECK(mkdtemp(g_dir) != NULL);
    snprintf(g_csv, sizeof g_csv, "%s/rows.csv", g_dir);
    snprintf(g_init, sizeof g_init, "%s/init.safetensors", g_dir);
    CHECK(write_csv() == 0);
    gn_err err = {0};
    char text[4096];

    /* the starting weights: the plain net, initialized from seed 3 */
    gn_net *init = load(cfg_text(text, sizeof text, "", "", "", ""), NULL, 1);
    CHECK_MSG(init && gn_ckpt_save(g_init, init, NULL, NULL, 0, &err) == GN_OK, "%s", err.msg);
    free_net(&init);

    check_backward_skips();
    /* darknet's key on layer 2: layers 0-2 frozen; SGD folded into backward */
    train_and_compare("stopbackward", cfg_text(text, sizeof text, "", "", "stopbackward=1", ""), 3,
                      -1);
    /* gemmnet's key through --set, with the separate SGD step (subdivisions=2) */
    {
        gn_cfg *cfg = parse(cfg_text(text, sizeof text, "subdivisions=2", "", "", ""), "freeze.cfg");
        CHECK(cfg && gn_cfg_set(cfg, "train.freeze=3", 1, &err) == GN_OK);
        char *dump = cfg ? gn_cfg_dump(cfg) : NULL;
        if (dump) train_and_compare("freeze", dump, 3, -1);
        free(dump);
        gn_cfg_free(&cfg);
    }
    /* freeze=-3: all but the last three layers */
    train_and_compare("freeze-neg",
                      cfg_text(text, sizeof text, "", "freeze=-3", "", ""), 4, -1);
    /* lr_mult=0 on the head: nothing frozen, the head keeps its weights; both SGD paths */
    train_and_compare("lr_mult0", cfg_text(text, sizeof text, "", "", "", "lr_mult=0"), 0, 5);
    train_and_compare("lr_mult0-sub",
                      cfg_text(text, sizeof text, "subdivisions=2", "", "", "lr_mult=0"), 0, 5);

    /* bad values: file:line and the key */
    expect_error("lr_mult=-1", "", "", "bad.cfg:");
    expect_error("lr_mult=-1", "", "", "'lr_mult'");
    expect_error("lr_mult=fast", "", "", "'lr_mult'");
    expect_error("stopbackward=2", "", "", "'stopbackward'");
    expect_error("", "", "freeze=8", "'freeze'");
    expect_error("", "", "freeze=-8", "'freeze'");
    expect_error("frozen=1", "", "", "frozen"); /* an unknown key stays reported */

    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    CHECK(system(cmd) == 0);
    return check_exit();
}
