/* libFuzzer target: the checkpoint reader (gn_ckpt_open) and loading into a small network,
 * strictly and with GN_CKPT_SKIP_MISMATCH, with momentum. With GN_FUZZ_WRITE_SEED=PATH set, the
 * initialization writes a valid checkpoint of that network to PATH (the seed corpus). */
#include "gemmnet/cfg.h"
#include "gemmnet/checkpoint.h"
#include "gemmnet/gemmnet.h"
#include "fuzz_util.h"

#include <stdlib.h>
#include <string.h>

static const char *net_cfg = "[net]\nwidth=6\nheight=6\nchannels=3\n"
                             "[convolutional]\nfilters=2\nsize=3\npad=1\nbatch_normalize=1\n"
                             "activation=leaky\n[avgpool]\n[connected]\noutput=3\n[softmax]\n";
static gn_cfg *cfg;
static gn_net *net;
static float *mom;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    gn_err err = {0};
    if (gn_cfg_parse(&cfg, net_cfg, "fuzz.cfg", &err) || gn_net_build(&net, cfg, 1, 1, &err) ||
        !(mom = calloc(net->n_params, sizeof *mom))) {
        fprintf(stderr, "fuzz_ckpt: %s\n", err.msg);
        abort();
    }
    const char *seed = getenv("GN_FUZZ_WRITE_SEED");
    if (seed) {
        for (size_t i = 0; i < net->n_params; i++) mom[i] = 0.001f * (float)i;
        gn_kv meta[] = {{"iteration", "3"}, {"note", "fuzz seed"}};
        if (gn_ckpt_save(seed, net, mom, meta, 2, &err)) {
            fprintf(stderr, "fuzz_ckpt: %s\n", err.msg);
            abort();
        }
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size, ".safetensors");
    gn_err err = {0};
    gn_ckpt *c = NULL;
    if (gn_ckpt_open(&c, path, &err) == GN_OK) {
        for (int i = 0; i < gn_ckpt_n_meta(c); i++) (void)gn_ckpt_meta(c, gn_ckpt_meta_key(c, i));
        for (int i = 0; i < gn_ckpt_n_tensors(c); i++) {
            const char *dtype;
            int ndim;
            uint64_t shape[8];
            (void)gn_ckpt_tensor(c, i, &dtype, &ndim, shape);
        }
        gn_ckpt_load_net(c, net, mom, GN_CKPT_STRICT, &err);
        gn_ckpt_load_net(c, net, NULL, GN_CKPT_SKIP_MISMATCH, &err);
        for (int i = 0; i < gn_ckpt_n_skipped(c); i++) (void)gn_ckpt_skipped(c, i);
        gn_ckpt_close(&c);
    }
    remove(path);
    return 0;
}
