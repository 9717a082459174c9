/* libFuzzer target: JPEG decoding and the training augmentation (RandomResizedCrop region
 * decode, resample with flip, colour jitter, normalization), and the eval transform. */
#include "data/data_internal.h"
#include "gemmnet/data.h"
#include "gemmnet/gemmnet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OUT 16

typedef struct region_ctx {
    gn_rng *r;
    const gn_data_opts *o;
} region_ctx;

static void rrc(void *ctx, int w, int h, gn_box *b)
{
    region_ctx *c = ctx;
    gn_rrc_box(c->r, w, h, c->o->scale, c->o->ratio, b);
}

/* With GN_FUZZ_WRITE_SEED=DIR set, writes small JPEG seeds to DIR: gray, RGB, CMYK (Adobe),
 * progressive, with restart markers. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *dir = getenv("GN_FUZZ_WRITE_SEED");
    if (!dir) return 0;
    enum { W = 24, H = 16 };
    static unsigned char px[W * H * 4];
    for (int i = 0; i < W * H * 4; i++) px[i] = (unsigned char)(i * 37 + (i / 7) * 11);
    static const struct {
        const char *name;
        int comps, flags, w, h;
    } v[] = {{"gray.jpg", 1, 0, W, H},          {"rgb.jpg", 3, 0, W, H},
             {"cmyk.jpg", 4, 0, W, H},          {"progressive.jpg", 3, GN_JPEG_PROGRESSIVE, W, H},
             {"restart.jpg", 3, GN_JPEG_RESTART, W, H}, {"tiny.jpg", 3, 0, 1, 1}};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, v[i].name);
        gn_err err = {0};
        if (gn_jpeg_write(path, px, v[i].w, v[i].h, v[i].comps, 50, v[i].flags, &err)) {
            fprintf(stderr, "fuzz_jpeg: %s\n", err.msg);
            abort();
        }
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static gn_patch patch;
    static gn_scratch scratch;
    static float out[3 * OUT * OUT];
    gn_data_opts o;
    gn_data_opts_default(&o);
    o.width = o.height = OUT;
    o.jitter[0] = o.jitter[1] = o.jitter[2] = 0.4f;
    gn_err err = {0};
    gn_rng r = gn_rng_make(gn_rng_key(size, 7, 0));
    region_ctx ctx = {&r, &o};
    /* 4M pixels: what a fuzzer's memory limit allows; the loader's default is larger */
    if (gn_jpeg_decode(data, size, 1 << 22, rrc, &ctx, OUT, OUT, 1, &patch, &err) == GN_OK) {
        float mul[3] = {1, 1, 1}, add[3] = {0, 0, 0}; /* 0..255 for the jitter step */
        if (gn_resample(patch.px, patch.w, patch.h, &patch.box, OUT, OUT, (int)(size & 1), mul,
                        add, out, &scratch) == GN_OK) {
            float jit[3] = {1.2f, 0.8f, 1.1f};
            gn_finish_tensor(out, OUT, OUT, 3, jit, o.mean, o.std);
        }
    }
    if (gn_jpeg_decode(data, size, 1 << 22, NULL, NULL, 0, 0, 0, &patch, &err) == GN_OK)
        gn_data_eval_transform(&o, patch.px, patch.w, patch.h, out);
    return 0;
}
