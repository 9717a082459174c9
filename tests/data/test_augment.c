/* Augmentations (src/data/augment.c): every RandAugment / TrivialAugmentWide operation and the
 * affine warp against torchvision (tests/ref/augment.safetensors, written by
 * tests/ref/gen_augment.py), the magnitude table against torchvision's _augmentation_space,
 * darknet's HSV distortion, RandomErasing, the [data] and darknet [net] keys, and batches that
 * stay a pure function of (seed, epoch, index) with every augmentation on.
 *
 * Tolerances (torchvision computes in float32 too, but its summation order and grid_sample's
 * vectorized arithmetic are not ours):
 *  - photometric operations and bilinear sampling: every pixel within 1 level (a truncating or
 *    rounding cast can land on the other side of an integer), and at least 99% exact;
 *  - nearest sampling: at most 1% of pixels differ (a source coordinate within float32 rounding
 *    of a half-pixel boundary picks the neighbouring pixel, whose value may be anything). */
#include "check.h"
#include "data/data_internal.h"
#include "data/tmpdir.h"
#include "gemmnet/cfg.h"
#include "ref/ref_reader.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *meta_case(const ref_file *f, int i, const char *key)
{
    char k[64];
    snprintf(k, sizeof k, "c%d/%s", i, key);
    const char *v = ref_meta(f, k);
    return v ? v : "";
}

static const gn_aug_op *find_op(const char *name)
{
    for (int k = 0; k < gn_aug_n_ops; k++)
        if (!strcmp(gn_aug_ops[k].name, name)) return &gn_aug_ops[k];
    return NULL;
}

static void test_reference(void)
{
    const char *root = getenv("GN_SOURCE_ROOT");
    char path[4096], msg[512];
    snprintf(path, sizeof path, "%s/tests/ref/augment.safetensors", root ? root : ".");
    ref_file *f = NULL;
    CHECK_MSG(ref_file_open(&f, path, msg, sizeof msg) == 0, "%s", msg);
    if (!f) return;
    const ref_tensor *in[2] = {ref_find(f, "input0"), ref_find(f, "input1")};
    CHECK(in[0] && in[1] && in[0]->ndim == 3 && in[0]->shape[2] == 3);
    if (!in[0] || !in[1]) goto done;
    int h = in[0]->shape[0], w = in[0]->shape[1];
    size_t n = (size_t)w * h * 3;
    unsigned char *img = malloc(n), *tmp = malloc(n);
    int cases = atoi(ref_meta(f, "cases") ? ref_meta(f, "cases") : "0");
    CHECK(cases > 60);
    int seen[32] = {0};
    size_t total = 0, all_differ = 0;
    int all_maxd = 0;
    for (int i = 0; i < cases; i++) {
        char key[64];
        snprintf(key, sizeof key, "c%d/out", i);
        const ref_tensor *out = ref_find(f, key);
        snprintf(key, sizeof key, "c%d/mag", i);
        const ref_tensor *mag_t = ref_find(f, key);
        const char *name = meta_case(f, i, "op");
        int input = atoi(meta_case(f, i, "input"));
        CHECK_MSG(out && mag_t && out->count == n && input >= 0 && input < 2, "case %d", i);
        if (!out || !mag_t || out->count != n || input < 0 || input > 1) continue;
        for (size_t k = 0; k < n; k++) img[k] = (unsigned char)ref_i32_at(in[input], k);
        gn_aug_geom g = {!strcmp(meta_case(f, i, "interp"), "bilinear"), {0, 0, 0}};
        const char *fill = meta_case(f, i, "fill");
        if (*fill) sscanf(fill, "%f,%f,%f", &g.fill[0], &g.fill[1], &g.fill[2]);
        int geometric = 1;
        double mag = ref_f32_at(mag_t, 0);
        if (!strcmp(name, "affine")) {
            double a[5];
            CHECK(sscanf(meta_case(f, i, "affine"), "%lf,%lf,%lf,%lf,%lf", &a[0], &a[1], &a[2], &a[3],
                         &a[4]) == 5);
            gn_aug_affine(img, tmp, w, h, a[0], a[1], a[2], a[3], a[4], 0.5 * w, 0.5 * h, &g);
        } else {
            const gn_aug_op *op = find_op(name);
            CHECK_MSG(op != NULL, "case %d: no operation %s", i, name);
            if (!op) continue;
            seen[op - gn_aug_ops] = 1;
            int policy = !strcmp(meta_case(f, i, "policy"), "ra") ? GN_AUGMENT_RANDAUGMENT
                                                                   : GN_AUGMENT_TRIVIALAUGMENT;
            double ours = gn_aug_magnitude(op, policy, atof(meta_case(f, i, "bin")), GN_AUG_BINS, w, h) *
                          atoi(meta_case(f, i, "sign"));
            CHECK_MSG(fabs(ours - mag) <= 1e-5 * fmax(1, fabs(mag)), "case %d %s %s bin %s: magnitude %g, torchvision %g",
                      i, name, meta_case(f, i, "policy"), meta_case(f, i, "bin"), ours, mag);
            geometric = op->kind == GN_MAG_TRANSLATE_X || op->kind == GN_MAG_TRANSLATE_Y ||
                        !strcmp(name, "ShearX") || !strcmp(name, "ShearY") || !strcmp(name, "Rotate");
            op->apply(img, tmp, w, h, mag, &g);
        }
        size_t differ = 0;
        int maxd = 0;
        total += n;
        for (size_t k = 0; k < n; k++) {
            int d = abs((int)img[k] - (int)ref_i32_at(out, k));
            differ += d != 0;
            maxd = d > maxd ? d : maxd;
        }
        all_differ += differ;
        all_maxd = maxd > all_maxd ? maxd : all_maxd;
        if (geometric && !g.bilinear)
            CHECK_MSG(differ * 100 <= n, "case %d %s (%s, mag %g): %zu of %zu values differ", i, name,
                      meta_case(f, i, "interp"), mag, differ, n);
        else
            CHECK_MSG(maxd <= 1 && differ * 100 <= n, "case %d %s (%s, mag %g): %zu of %zu values differ, by up to %d",
                      i, name, meta_case(f, i, "interp"), mag, differ, n, maxd);
    }
    printf("torchvision reference: %d cases, %zu of %zu values differ, by up to %d\n", cases,
           all_differ, total, all_maxd);
    for (int k = 0; k < gn_aug_n_ops; k++) CHECK_MSG(seen[k], "%s has no reference case", gn_aug_ops[k].name);
    CHECK(gn_aug_n_ops == 14);
    free(img);
    free(tmp);
done:
    ref_file_close(&f);
}

static void test_hsv(void)
{
    /* pure red with the hue shifted by a third of the circle is green; a gray stays gray at any
     * hue and saturation; exposure scales the value */
    unsigned char px[9] = {255, 0, 0, 100, 100, 100, 200, 100, 50};
    unsigned char a[9];
    memcpy(a, px, 9);
    gn_aug_hsv(a, 3, 1, 1.0f / 3, 1, 1);
    CHECK(a[0] == 0 && a[1] == 255 && a[2] == 0);
    CHECK(a[3] == 100 && a[4] == 100 && a[5] == 100);
    memcpy(a, px, 9);
    gn_aug_hsv(a, 3, 1, 0, 1, 1);
    CHECK(!memcmp(a, px, 9));
    gn_aug_hsv(a, 3, 1, 0, 1.5f, 1.5f);
    CHECK(a[3] == 150 && a[4] == 150 && a[5] == 150);
    CHECK(a[6] == 255 && a[8] < 50); /* V 200 -> 300 clamps; S 0.75 -> 1.125 pushes blue below 0 */
    memcpy(a, px, 9);
    gn_aug_hsv(a, 3, 1, 0, 0, 1); /* saturation 0: gray at the value */
    CHECK(a[6] == 200 && a[7] == 200 && a[8] == 200);
}

static void test_erase(void)
{
    enum { C = 3, EW = 40, EH = 30 };
    static float x[C * EW * EH];
    gn_augment_opts a;
    gn_data_opts o;
    gn_data_opts_default(&o);
    a = o.aug;
    a.erase_p = 1;
    a.erase_value = 0;
    int sizes_ok = 1, erased = 0;
    for (uint64_t s = 0; s < 200; s++) {
        for (int i = 0; i < C * EW * EH; i++) x[i] = 1;
        gn_rng r = gn_rng_make(s);
        gn_augment_erase(&a, &r, x, C, EW, EH);
        /* the zeros form one rectangle, the same in every channel */
        int x0 = EW, x1 = -1, y0 = EH, y1 = -1, zeros = 0;
        for (int y = 0; y < EH; y++)
            for (int xx = 0; xx < EW; xx++)
                if (x[y * EW + xx] == 0) {
                    zeros++;
                    x0 = xx < x0 ? xx : x0, x1 = xx > x1 ? xx : x1;
                    y0 = y < y0 ? y : y0, y1 = y > y1 ? y : y1;
                }
        if (!zeros) continue; /* ten attempts can all miss */
        erased++;
        int rect = (x1 - x0 + 1) * (y1 - y0 + 1);
        double frac = (double)rect / (EW * EH);
        if (rect != zeros || memcmp(x, x + EW * EH, sizeof(float) * EW * EH) ||
            memcmp(x, x + 2 * EW * EH, sizeof(float) * EW * EH) || frac < 0.01 || frac > 0.4)
            sizes_ok = 0;
    }
    CHECK(sizes_ok);
    CHECK(erased > 150);
    /* p = 0.25: about a quarter of the images */
    a.erase_p = 0.25f;
    erased = 0;
    for (uint64_t s = 0; s < 400; s++) {
        for (int i = 0; i < C * EW * EH; i++) x[i] = 1;
        gn_rng r = gn_rng_make(s + 1000);
        gn_augment_erase(&a, &r, x, C, EW, EH);
        int any = 0;
        for (int i = 0; i < C * EW * EH; i++) any |= x[i] != 1;
        erased += any;
    }
    CHECK_MSG(erased > 60 && erased < 140, "%d of 400 erased at p=0.25", erased);
    /* random values: standard normal */
    a.erase_p = 1;
    a.erase_random = 1;
    for (int i = 0; i < C * EW * EH; i++) x[i] = 100;
    gn_rng r = gn_rng_make(7);
    gn_augment_erase(&a, &r, x, C, EW, EH);
    double sum = 0, sq = 0;
    int cnt = 0;
    for (int i = 0; i < C * EW * EH; i++)
        if (x[i] != 100) sum += x[i], sq += x[i] * x[i], cnt++;
    CHECK(cnt > 50 && fabs(sum / cnt) < 0.3 && fabs(sq / cnt - 1) < 0.4);
}

static void test_darknet_box(void)
{
    /* a 400x300 image, 32x32 output, shorter side scaled to 40..80: the window is 32/r of the
     * shorter side with r a whole number in range, centred within the slack */
    gn_augment_opts a;
    memset(&a, 0, sizeof a);
    a.min_crop = 40;
    a.max_crop = 80;
    a.aspect = 1;
    int ok = 1, rmin = 1000, rmax = 0;
    for (uint64_t s = 0; s < 500; s++) {
        gn_rng r = gn_rng_make(s);
        gn_box b;
        gn_aug_darknet_box(&r, 400, 300, &a, 32, 32, &b);
        double side = 32 * 300 / b.h; /* r */
        int ri = (int)lround(side);
        rmin = ri < rmin ? ri : rmin;
        rmax = ri > rmax ? ri : rmax;
        double slack_x = (400 - b.w) / 2, slack_y = (300 - b.h) / 2;
        double cx = b.x + b.w / 2 - 200, cy = b.y + b.h / 2 - 150;
        if (fabs(side - ri) > 1e-6 || ri < 40 || ri > 80 || fabs(b.w - b.h) > 1e-9 ||
            fabs(cx) > slack_x + 1e-9 || fabs(cy) > slack_y + 1e-9)
            ok = 0;
    }
    CHECK(ok && rmin <= 42 && rmax >= 78);
    /* aspect .5: the window's width/height ratio within [0.5, 2], both sides seen */
    a.aspect = 0.5f;
    int wide = 0, tall = 0;
    ok = 1;
    for (uint64_t s = 0; s < 200; s++) {
        gn_rng r = gn_rng_make(s);
        gn_box b;
        gn_aug_darknet_box(&r, 400, 300, &a, 32, 32, &b);
        double q = b.w / b.h;
        if (q < 0.5 - 1e-6 || q > 2 + 1e-6) ok = 0;
        wide += q > 1.2;
        tall += q < 1 / 1.2;
    }
    CHECK(ok && wide > 20 && tall > 20);
}

/* Parses cfg text; returns the status, with the message in e. */
static int parse(const char *text, gn_data_opts *o, gn_err *e)
{
    gn_cfg *cfg = NULL;
    memset(e, 0, sizeof *e);
    int rc = gn_cfg_parse(&cfg, text, "aug.cfg", e);
    if (!rc) rc = gn_data_opts_parse(o, cfg, e);
    if (!rc) rc = gn_cfg_check_all_unused(cfg, e);
    gn_cfg_free(&cfg);
    return rc;
}

static void test_keys(void)
{
    gn_data_opts o;
    gn_err e;
    CHECK(parse("[net]\nwidth=32\nheight=32\n[data]\naugment=randaugment\nrandaugment_n=3\n"
                "randaugment_m=27\nrandaugment_mstd=1.5\nerasing=0.25\nerasing_value=random\n"
                "rotate=10\ntranslate=0.1,0.2\naugment_interpolation=bilinear\naugment_fill=128\n",
                &o, &e) == GN_OK);
    CHECK(o.aug.policy == GN_AUGMENT_RANDAUGMENT && o.aug.ra_n == 3 && o.aug.ra_m == 27 &&
          o.aug.ra_mstd == 1.5f && o.aug.erase_p == 0.25f && o.aug.erase_random &&
          o.aug.rotate == 10 && o.aug.translate[0] == 0.1f && o.aug.translate[1] == 0.2f &&
          o.aug.bilinear && o.aug.fill[2] == 128 && !o.aug.warning[0]);
    CHECK(parse("[net]\nwidth=32\nheight=32\n[data]\naugment=TrivialAugmentWide\n", &o, &e) == GN_OK &&
          o.aug.policy == GN_AUGMENT_TRIVIALAUGMENT);
    /* refused with file:line:key */
    struct { const char *text, *where; } bad[] = {
        {"[net]\n[data]\naugment=randaugment\nrandaugment_m=40\n", "aug.cfg:4: [data] key 'randaugment_m'"},
        {"[net]\n[data]\naugment=randaugment\nrandaugment_m=-1\n", "aug.cfg:4: [data] key 'randaugment_m'"},
        {"[net]\n[data]\naugment=autoaugment\n", "aug.cfg:3: [data] key 'augment'"},
        {"[net]\n[data]\nrandaugment_n=2\n", "aug.cfg:3: [data] key 'randaugment_n'"},
        {"[net]\n[data]\nrotate=-5\n", "aug.cfg:3: [data] key 'rotate'"},
        {"[net]\n[data]\nerasing=1.5\n", "aug.cfg:3: [data] key 'erasing'"},
        {"[net]\n[data]\nerasing_value=gray\n", "aug.cfg:3: [data] key 'erasing_value'"},
        {"[net]\n[data]\ntranslate=0.1,-0.1\n", "aug.cfg:3: [data] key 'translate'"},
        {"[net]\nangle=-3\n", "aug.cfg:2: [net] key 'angle'"},
        {"[net]\nsaturation=0\n", "aug.cfg:2: [net] key 'saturation'"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        int rc = parse(bad[k].text, &o, &e);
        CHECK_MSG(rc == GN_ECONFIG && strstr(e.msg, bad[k].where), "%s -> %d %s", bad[k].text, rc, e.msg);
    }
    parse("[net]\n[data]\naugment=randaugment\nrandaugment_m=40\n", &o, &e);
    CHECK(strstr(e.msg, "0..30") != NULL);
    /* darknet keys with darknet's meaning, min_crop / max_crop included: no warning */
    CHECK(parse("[net]\nwidth=32\nheight=32\nangle=7\nhue=.1\nsaturation=.75\nexposure=1.5\n"
                "aspect=.5\nflip=0\nmin_crop=128\nmax_crop=448\n", &o, &e) == GN_OK);
    CHECK(o.aug.angle == 7 && fabsf(o.aug.hue - 0.1f) < 1e-6f && o.aug.saturation == 0.75f &&
          o.aug.exposure == 1.5f && o.aug.min_crop == 128 && o.aug.max_crop == 448 &&
          o.aug.aspect == 0.5f && o.ratio[0] == 0.75f && o.flip == 0 && gn_augment_active(&o.aug));
    CHECK_MSG(!o.aug.warning[0], "%s", o.aug.warning);
    /* max_crop alone: min_crop is darknet's default, the width */
    CHECK(parse("[net]\nwidth=32\nheight=32\nmax_crop=40\n", &o, &e) == GN_OK &&
          o.aug.min_crop == 32 && o.aug.max_crop == 40 && o.aug.aspect == 1);
    /* without min_crop / max_crop, aspect is RandomResizedCrop's ratio range */
    CHECK(parse("[net]\nwidth=32\nheight=32\naspect=.5\n", &o, &e) == GN_OK && o.ratio[0] == 0.5f &&
          o.ratio[1] == 2.0f && o.aug.min_crop == 0);
    /* with [data] scale, RandomResizedCrop: min_crop and max_crop are named */
    CHECK(parse("[net]\nwidth=32\nheight=32\nmin_crop=128\nmax_crop=448\n[data]\nscale=0.5,1\n", &o, &e) ==
          GN_OK && o.aug.min_crop == 0);
    CHECK_MSG(strstr(o.aug.warning, "aug.cfg:4: [net] min_crop=128: not used: [data] scale") &&
              strstr(o.aug.warning, "aug.cfg:5: [net] max_crop=448: not used"), "%s", o.aug.warning);
    /* a [data] key that says the same thing wins, and the [net] key is named */
    CHECK(parse("[net]\nwidth=32\nheight=32\nangle=7\nhue=.1\naspect=.5\n[data]\nrotate=3\njitter=0.2\n"
                "ratio=0.9,1.1\n", &o, &e) == GN_OK);
    CHECK(o.aug.angle == 0 && o.aug.hue == 0 && o.aug.rotate == 3 && o.ratio[0] == 0.9f);
    CHECK_MSG(strstr(o.aug.warning, "aug.cfg:4: [net] angle=7: not used: [data] rotate") &&
              strstr(o.aug.warning, "aug.cfg:5: [net] hue") && strstr(o.aug.warning, "aug.cfg:6: [net] aspect"),
              "%s", o.aug.warning);
    /* no augmentation keys: nothing on, nothing to warn about */
    CHECK(parse("[net]\nwidth=32\nheight=32\n", &o, &e) == GN_OK && !gn_augment_active(&o.aug) &&
          o.aug.erase_p == 0 && !o.aug.warning[0]);
}

enum { W = 32, H = 24, B = 4, PER = 3 * W * H };

static int run(const gn_data_opts *o, int nb, float *x, int *lab)
{
    gn_loader *l = NULL;
    gn_err e = {0};
    int rc = gn_loader_create(&l, o, GN_SPLIT_TRAIN, B, 11, &e);
    for (int i = 0; !rc && i < nb; i++) {
        int n = 0;
        rc = gn_loader_next(l, x + (size_t)i * B * PER, lab + i * B, NULL, &n, &e);
        if (!rc && n != B) rc = -1;
    }
    if (rc) fprintf(stderr, "loader: %s\n", e.msg);
    gn_loader_free(&l);
    return rc;
}

static void test_loader(const char *train)
{
    gn_data_opts o;
    gn_data_opts_default(&o);
    snprintf(o.train, sizeof o.train, "%s", train);
    o.width = W;
    o.height = H;
    o.prefetch = 2;
    enum { NB = 6 };
    size_t nx = (size_t)NB * B * PER;
    float *plain = malloc(sizeof(float) * nx), *ref = malloc(sizeof(float) * nx), *x = malloc(sizeof(float) * nx);
    int lab[NB * B], lab2[NB * B];
    o.workers = 1;
    CHECK(run(&o, NB, plain, lab) == 0);
    gn_augment_opts *a = &o.aug;
    /* the 8-bit stage with nothing to do (RandAugment with 0 operations) only rounds to 8 bits:
     * within half a level of the plain pipeline, so its conversions keep channels and pixels */
    a->policy = GN_AUGMENT_RANDAUGMENT;
    a->ra_n = 0;
    CHECK(gn_augment_active(a));
    CHECK(run(&o, NB, ref, lab2) == 0);
    double maxd = 0, half = 0.5 / (255.0 * 0.224) + 1e-5;
    for (size_t i = 0; i < nx; i++) maxd = fmax(maxd, fabs(ref[i] - plain[i]));
    CHECK_MSG(maxd <= half, "8-bit round trip differs by %g", maxd);
    /* everything on */
    a->policy = GN_AUGMENT_RANDAUGMENT;
    a->ra_n = 2;
    a->ra_m = 20;
    a->ra_mstd = 2;
    a->rotate = 10;
    a->translate[0] = a->translate[1] = 0.1f;
    a->erase_p = 0.5f;
    a->erase_random = 1;
    a->angle = 7;
    a->hue = 0.1f;
    a->saturation = a->exposure = 0.75f;
    a->min_crop = 24;
    a->max_crop = 64;
    a->aspect = 0.75f;
    CHECK(run(&o, NB, ref, lab2) == 0);
    CHECK(!memcmp(lab, lab2, sizeof lab)); /* the same files, augmented */
    CHECK(memcmp(plain, ref, sizeof(float) * nx) != 0);
    for (int workers = 2; workers <= 3; workers++) {
        o.workers = workers;
        memset(x, 0, sizeof(float) * nx);
        CHECK(run(&o, NB, x, lab2) == 0);
        CHECK_MSG(!memcmp(x, ref, sizeof(float) * nx), "%d workers differ", workers);
    }
    /* a resumed run (seek to batch 4) sees the batch it would have seen */
    {
        gn_loader *l = NULL;
        gn_err e = {0};
        int n = 0;
        CHECK(gn_loader_create(&l, &o, GN_SPLIT_TRAIN, B, 11, &e) == GN_OK);
        if (l) {
            int64_t bpe = gn_loader_batches_per_epoch(l);
            CHECK(bpe > 4 && gn_loader_seek(l, 0, 4) == GN_OK);
            CHECK(gn_loader_next(l, x, lab2, NULL, &n, &e) == GN_OK && n == B);
            CHECK(!memcmp(x, ref + (size_t)4 * B * PER, sizeof(float) * B * PER));
            gn_loader_free(&l);
        }
    }
    /* darknet's crop at min_crop = max_crop = 8: the image's shorter side shrinks to 8 rows or
     * columns of the 32x24 window, so at the top or the bottom (the offset is random) at least
     * two rows lie outside the image and repeat its edge row; RandomResizedCrop's stay inside */
    memset(a, 0, sizeof *a);
    a->saturation = a->exposure = 1;
    a->min_crop = a->max_crop = 8;
    o.workers = 1;
    CHECK(run(&o, NB, ref, lab2) == 0);
    int flat_dk = 0, flat_plain = 0;
    for (int i = 0; i < NB * B; i++)
        for (int k = 0; k < 2; k++) {
            const float *p = (k ? ref : plain) + (size_t)i * PER;
            int top = 1, bottom = 1; /* equal up to the resampler's float weights */
            for (int c = 0; c < 3; c++)
                for (int j = 0; j < W; j++) {
                    const float *pc = p + c * W * H + j;
                    top &= fabsf(pc[0] - pc[W]) < 1e-4f;
                    bottom &= fabsf(pc[(H - 2) * W] - pc[(H - 1) * W]) < 1e-4f;
                }
            *(k ? &flat_dk : &flat_plain) += top || bottom;
        }
    CHECK_MSG(flat_dk == NB * B && flat_plain == 0, "two edge rows equal: darknet crop %d, "
              "RandomResizedCrop %d, of %d", flat_dk, flat_plain, NB * B);
    /* TrivialAugmentWide alone changes the images too, and is as repeatable */
    memset(a, 0, sizeof *a);
    a->saturation = a->exposure = 1;
    a->policy = GN_AUGMENT_TRIVIALAUGMENT;
    o.workers = 1;
    CHECK(run(&o, NB, ref, lab2) == 0);
    CHECK(memcmp(plain, ref, sizeof(float) * nx) != 0);
    o.workers = 2;
    CHECK(run(&o, NB, x, lab2) == 0);
    CHECK(!memcmp(x, ref, sizeof(float) * nx));
    free(plain);
    free(ref);
    free(x);
}

int main(void)
{
    test_reference();
    test_hsv();
    test_erase();
    test_darknet_box();
    test_keys();
    char dir[64];
    if (!tmp_make(dir, sizeof dir)) {
        perror("mkdtemp");
        return 1;
    }
    gn_synth_opts so;
    gn_synth_opts_default(&so);
    so.classes = 2;
    so.train = 12;
    so.val = 1;
    so.min_side = 40;
    so.max_side = 70;
    char syn[128], train[160];
    snprintf(syn, sizeof syn, "%s/syn", dir);
    gn_err e = {0};
    CHECK_MSG(gn_synth(syn, &so, &e) == GN_OK, "%s", e.msg);
    snprintf(train, sizeof train, "%s/train", syn);
    test_loader(train);
    tmp_rmtree(dir);
    return check_exit();
}
