/* libFuzzer target: the darknet .weights reader (gn_darknet_weights_read) on a small network with
 * every layer type that has darknet values ([convolutional] with and without batch norm, grouped,
 * [batchnorm], [connected] with and without bias), strictly and with GN_CKPT_SKIP_MISMATCH; and
 * the writer on whatever was read. With GN_FUZZ_WRITE_SEED=PATH set, the initialization writes
 * the seed corpus: PATH (version 0.2.0, as gemmnet and darknet write), PATH.v01 (0.1.0, 32-bit
 * seen) and PATH.t (0.1001.0: transposed [connected] weights). */
#include "gemmnet/cfg.h"
#include "gemmnet/gemmnet.h"
#include "gemmnet/interop.h"
#include "gemmnet/checkpoint.h"
#include "fuzz_util.h"

#include <stdlib.h>
#include <string.h>

static const char *net_cfg =
    "[net]\nwidth=4\nheight=4\nchannels=2\n"
    "[convolutional]\nfilters=4\nsize=3\npad=1\ngroups=2\nbatch_normalize=1\nactivation=leaky\n"
    "[convolutional]\nfilters=2\nsize=1\nactivation=relu\n"
    "[maxpool]\nsize=2\nstride=2\n[batchnorm]\n"
    "[connected]\noutput=3\n[connected]\noutput=2\nbias=0\n[softmax]\n";
static gn_cfg *cfg;
static gn_net *net;

static void write_file(const char *path, const unsigned char *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b, 1, n, f) != n || fclose(f)) abort();
}

/* The 0.2.0 file at path rewritten as minor=minor with a 32-bit seen, to path+suffix. */
static void variant(const char *path, int minor, const char *suffix)
{
    FILE *f = fopen(path, "rb");
    unsigned char b[8192];
    size_t n = f ? fread(b, 1, sizeof b, f) : 0;
    if (!f || n < 20) abort();
    fclose(f);
    memcpy(b + 4, &minor, 4);
    memmove(b + 16, b + 20, n - 20); /* the 64-bit seen becomes its low 32 bits */
    char out[512];
    snprintf(out, sizeof out, "%s%s", path, suffix);
    write_file(out, b, n - 4);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    gn_err err = {0};
    if (gn_cfg_parse(&cfg, net_cfg, "fuzz.cfg", &err) || gn_net_build(&net, cfg, 1, 1, &err)) {
        fprintf(stderr, "fuzz_weights: %s\n", err.msg);
        abort();
    }
    const char *seed = getenv("GN_FUZZ_WRITE_SEED");
    if (seed) {
        for (size_t i = 0; i < net->n_params; i++) net->params[i] = 0.01f * (float)(i % 97);
        for (int li = 0; li < net->n_layers; li++) /* darknet's [batchnorm] has no bias */
            if (!strcmp(net->layers[li].ops->section, "batchnorm"))
                memset(net->layers[li].params + net->layers[li].n_params / 2, 0,
                       net->layers[li].n_params / 2 * sizeof(float));
        net->seen = 1234;
        if (gn_darknet_weights_save(seed, net, &err)) {
            fprintf(stderr, "fuzz_weights: %s\n", err.msg);
            abort();
        }
        variant(seed, 1, ".v01");
        variant(seed, 1001, ".t");
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gn_err err = {0};
    gn_darknet_info info;
    int ok = gn_darknet_weights_read(data, size, "fuzz", net, GN_CKPT_STRICT, &info, &err) == GN_OK;
    ok |= gn_darknet_weights_read(data, size, "fuzz", net, GN_CKPT_SKIP_MISMATCH, &info,
                                  &err) == GN_OK;
    if (ok) {
        const char *path = fuzz_file(data, 0, ".weights");
        gn_darknet_weights_save(path, net, &err);
        remove(path);
    }
    return 0;
}
