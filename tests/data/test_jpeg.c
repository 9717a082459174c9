/* JPEG decoding against known pixels, DCT-reduced and region decoding against full decoding,
 * crop/flip geometry, colour spaces and broken files. */
#include "check.h"
#include "core/util.h"
#include "data/data_internal.h"
#include "data/tmpdir.h"

#include <math.h>
#include <string.h>

static char dir[64];

static unsigned char *make_image(int w, int h, int texture)
{
    unsigned char *p = malloc((size_t)w * h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            unsigned char *q = p + 3 * ((size_t)y * w + x);
            q[0] = (unsigned char)(x * 255 / (w - 1));
            q[1] = (unsigned char)(y * 255 / (h - 1));
            q[2] = (unsigned char)(texture ? 128 + 60 * sin(x * 0.15) * cos(y * 0.11) : 128);
        }
    return p;
}

static double mean_abs_diff(const float *a, const float *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += fabs(a[i] - b[i]);
    return s / (double)n;
}

static const float one[3] = {1, 1, 1}, zero[3] = {0, 0, 0};

/* Resampling without flip or normalization. */
static void rs(const unsigned char *src, int sw, int sh, const gn_box *box, int ow, int oh, float *out,
               gn_scratch *s)
{
    CHECK(gn_resample(src, sw, sh, box, ow, oh, 0, one, zero, out, s) == GN_OK);
}

static int decode_file(const char *path, gn_region_fn fn, void *ctx, int ow, int oh, int region,
                       gn_patch *p, gn_err *e)
{
    unsigned char *buf = NULL;
    size_t cap = 0, len = 0;
    int rc = gn_read_file(path, &buf, &cap, &len, e);
    if (!rc) rc = gn_jpeg_decode(buf, len, 100000000, fn, ctx, ow, oh, region, p, e);
    free(buf);
    return rc;
}

static void test_known_pixels(void)
{
    char path[128];
    snprintf(path, sizeof path, "%s/known.jpg", dir);
    int w = 96, h = 64;
    unsigned char *img = make_image(w, h, 0);
    gn_err e = {0};
    CHECK(gn_jpeg_save_rgb(path, img, w, h, 95, &e) == GN_OK);
    unsigned char *rgb = NULL;
    int dw = 0, dh = 0;
    CHECK(gn_jpeg_load_rgb(path, &rgb, &dw, &dh, &e) == GN_OK);
    CHECK(dw == w && dh == h);
    if (rgb && dw == w && dh == h) {
        double s = 0;
        int mx = 0;
        for (size_t i = 0; i < (size_t)w * h * 3; i++) {
            int d = abs((int)rgb[i] - (int)img[i]);
            s += d;
            if (d > mx) mx = d;
        }
        CHECK_MSG(s / (w * h * 3) < 2.0, "mean error %g", s / (w * h * 3));
        CHECK_MSG(mx < 24, "max error %d", mx);
    }
    free(rgb);
    free(img);
}

static void full_box(void *ctx, int w, int h, gn_box *b)
{
    (void)ctx;
    b->x = b->y = 0;
    b->w = w;
    b->h = h;
}

static void fixed_box(void *ctx, int w, int h, gn_box *b)
{
    (void)w;
    (void)h;
    *b = *(gn_box *)ctx;
}

static void test_reduced_and_region(void)
{
    char path[128];
    snprintf(path, sizeof path, "%s/big.jpg", dir);
    int w = 400, h = 300;
    unsigned char *img = make_image(w, h, 1);
    gn_err e = {0};
    CHECK(gn_jpeg_save_rgb(path, img, w, h, 95, &e) == GN_OK);
    free(img);
    gn_patch full = {0}, red = {0};
    gn_scratch s = {0};
    CHECK(decode_file(path, NULL, NULL, 0, 0, 0, &full, &e) == GN_OK);
    CHECK(full.w == w && full.h == h && full.scale_num == 8);
    /* whole image to 100x75: DCT scaling 2/8 */
    float a[100 * 75 * 3], b[100 * 75 * 3];
    CHECK(decode_file(path, full_box, NULL, 100, 75, 0, &red, &e) == GN_OK);
    CHECK_MSG(red.scale_num == 2, "scale %d/8", red.scale_num);
    rs(full.px, full.w, full.h, &full.box, 100, 75, a, &s);
    rs(red.px, red.w, red.h, &red.box, 100, 75, b, &s);
    double d = mean_abs_diff(a, b, sizeof a / sizeof *a);
    CHECK_MSG(d < 3.0, "reduced vs full: mean abs diff %g", d);
    /* a crop region, decoded alone and at reduced scale */
    gn_box box = {150.5, 90, 200, 160};
    float c[50 * 40 * 3], c2[50 * 40 * 3];
    CHECK(decode_file(path, fixed_box, &box, 50, 40, 1, &red, &e) == GN_OK);
    CHECK_MSG(red.scale_num == 2, "scale %d/8", red.scale_num);
    CHECK_MSG(red.w < 100 && red.h < 75, "region %dx%d not cropped", red.w, red.h);
    rs(full.px, full.w, full.h, &box, 50, 40, c, &s);
    rs(red.px, red.w, red.h, &red.box, 50, 40, c2, &s);
    d = mean_abs_diff(c, c2, sizeof c / sizeof *c);
    CHECK_MSG(d < 3.0, "region vs full: mean abs diff %g", d);
    /* a small output: 1/8 scale and a shrink factor of about 4 left for the filter */
    gn_box box2 = {100, 60, 200, 150};
    float d1[12 * 9 * 3], d2[12 * 9 * 3];
    CHECK(decode_file(path, fixed_box, &box2, 12, 9, 1, &red, &e) == GN_OK);
    CHECK_MSG(red.scale_num == 1, "scale %d/8", red.scale_num);
    rs(full.px, full.w, full.h, &box2, 12, 9, d1, &s);
    rs(red.px, red.w, red.h, &red.box, 12, 9, d2, &s);
    d = mean_abs_diff(d1, d2, sizeof d1 / sizeof *d1);
    CHECK_MSG(d < 3.0, "1/8 region vs full: mean abs diff %g", d);
    /* region at full scale too */
    CHECK(decode_file(path, fixed_box, &box, 0, 0, 1, &red, &e) == GN_OK);
    CHECK(red.scale_num == 8 && red.w < w && red.h < h);
    rs(red.px, red.w, red.h, &red.box, 50, 40, c2, &s);
    d = mean_abs_diff(c, c2, sizeof c / sizeof *c);
    CHECK_MSG(d < 0.5, "full-scale region vs full: mean abs diff %g", d);
    gn_patch_free(&full);
    gn_patch_free(&red);
    gn_scratch_free(&s);
}

static void test_geometry(void)
{
    /* quadrants: red, green / blue, white */
    int w = 64, h = 64;
    unsigned char *img = malloc((size_t)w * h * 3);
    static const unsigned char col[4][3] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {255, 255, 255}};
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) memcpy(img + 3 * (y * w + x), col[(y >= 32) * 2 + (x >= 32)], 3);
    char path[128];
    snprintf(path, sizeof path, "%s/quad.jpg", dir);
    gn_err e = {0};
    CHECK(gn_jpeg_save_rgb(path, img, w, h, 95, &e) == GN_OK);
    gn_patch p = {0};
    gn_scratch s = {0};
    float out[8 * 8 * 3];
    for (int q = 0; q < 4; q++) {
        gn_box box = {(q & 1) * 32 + 4, (q >> 1) * 32 + 4, 24, 24};
        CHECK(decode_file(path, fixed_box, &box, 8, 8, 1, &p, &e) == GN_OK);
        rs(p.px, p.w, p.h, &p.box, 8, 8, out, &s);
        for (int k = 0; k < 3; k++)
            CHECK_MSG(fabs(out[k * 64 + 4 * 8 + 4] - col[q][k]) < 20, "quadrant %d channel %d: %g",
                      q, k, out[k * 64 + 4 * 8 + 4]);
    }
    /* flip: the left column of the output is the right column of the input */
    unsigned char src[2 * 4 * 3] = {0};
    for (int y = 0; y < 2; y++) src[(y * 4 + 3) * 3] = 255;
    float chw[3 * 4 * 2], chw2[3 * 4 * 2];
    gn_box whole = {0, 0, 4, 2};
    CHECK(gn_resample(src, 4, 2, &whole, 4, 2, 1, one, zero, chw, &s) == GN_OK);
    CHECK_NEAR(chw[0], 255.0, 1e-4);
    CHECK_NEAR(chw[3], 0.0, 1e-4);
    CHECK_NEAR(chw[8], 0.0, 1e-4); /* green plane */
    CHECK(gn_resample(src, 4, 2, &whole, 4, 2, 0, one, zero, chw, &s) == GN_OK);
    CHECK_NEAR(chw[0], 0.0, 1e-4);
    CHECK_NEAR(chw[3], 255.0, 1e-4);
    /* normalization folded into the resampler equals the separate pass */
    const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
    float mul[3], add[3];
    gn_normalize_factors(mean, std, mul, add);
    CHECK(gn_resample(img, w, h, &whole, 4, 2, 0, mul, add, chw2, &s) == GN_OK);
    CHECK(gn_resample(img, w, h, &whole, 4, 2, 0, one, zero, chw, &s) == GN_OK);
    gn_finish_tensor(chw, 4, 2, 3, NULL, mean, std);
    double md = 0;
    for (int i = 0; i < 24; i++) md = fmax(md, fabs(chw[i] - chw2[i]));
    CHECK_MSG(md < 1e-4, "normalize differs by %g", md);
    CHECK_NEAR(chw2[0], (255 / 255.0 - mean[0]) / std[0], 1e-2); /* red quadrant */
    /* RandomResizedCrop boxes lie inside the image and respect scale and ratio */
    const float scale[2] = {0.08f, 1}, ratio[2] = {0.75f, 4.0f / 3};
    int bad = 0;
    for (int i = 0; i < 2000; i++) {
        gn_rng r = gn_rng_make(gn_rng_key(7, 0, (uint64_t)i));
        gn_box b;
        gn_rrc_box(&r, 500, 375, scale, ratio, &b);
        double area = b.w * b.h / (500.0 * 375), ar = b.w / b.h;
        if (b.x < 0 || b.y < 0 || b.x + b.w > 500 || b.y + b.h > 375) bad++;
        if (area < 0.07 || area > 1.0 || ar < 0.74 || ar > 1.35) bad++;
    }
    CHECK_MSG(bad == 0, "%d bad boxes", bad);
    /* the fallback: a centre crop clamped to the ratio range */
    const float tiny[2] = {0.9f, 1.0f}, square[2] = {1, 1};
    gn_rng r = gn_rng_make(1);
    gn_box b;
    gn_rrc_box(&r, 400, 100, tiny, square, &b);
    CHECK(b.w == 100 && b.h == 100 && b.x == 150 && b.y == 0);
    /* eval box: shorter side 256, centre 224 */
    gn_center_box(512, 384, 256, 224, 224, &b);
    CHECK_NEAR(b.h, 224 * 384 / 256.0, 1e-9);          /* resized to 341x256 */
    CHECK_NEAR(b.w, 224 * 512 / 341.0, 1e-9);
    CHECK_NEAR(b.x, (512 - b.w) / 2, 0.01);
    free(img);
    gn_patch_free(&p);
    gn_scratch_free(&s);
}

static void test_colour_spaces(void)
{
    int w = 40, h = 24;
    unsigned char *px = malloc((size_t)w * h * 4);
    char path[128];
    gn_err e = {0};
    unsigned char *rgb = NULL;
    int dw, dh;
    /* grayscale */
    memset(px, 100, (size_t)w * h);
    snprintf(path, sizeof path, "%s/gray.jpg", dir);
    CHECK(gn_jpeg_write(path, px, w, h, 1, 90, 0, &e) == GN_OK);
    CHECK(gn_jpeg_load_rgb(path, &rgb, &dw, &dh, &e) == GN_OK);
    CHECK(rgb && abs(rgb[0] - 100) <= 2 && abs(rgb[1] - 100) <= 2 && abs(rgb[2] - 100) <= 2);
    free(rgb);
    /* Adobe CMYK (stored inverted): red = no cyan ink, full magenta and yellow, no black */
    for (int i = 0; i < w * h; i++) {
        px[4 * i] = 255;
        px[4 * i + 1] = 0;
        px[4 * i + 2] = 0;
        px[4 * i + 3] = 255;
    }
    snprintf(path, sizeof path, "%s/cmyk.jpg", dir);
    CHECK(gn_jpeg_write(path, px, w, h, 4, 95, 0, &e) == GN_OK);
    rgb = NULL;
    CHECK(gn_jpeg_load_rgb(path, &rgb, &dw, &dh, &e) == GN_OK);
    CHECK_MSG(rgb && rgb[0] > 240 && rgb[1] < 15 && rgb[2] < 15, "cmyk -> %d %d %d",
              rgb ? rgb[0] : -1, rgb ? rgb[1] : -1, rgb ? rgb[2] : -1);
    free(rgb);
    free(px);
    /* progressive decodes like baseline */
    unsigned char *img = make_image(120, 80, 1), *r1 = NULL, *r2 = NULL;
    char p2[128];
    snprintf(path, sizeof path, "%s/base.jpg", dir);
    snprintf(p2, sizeof p2, "%s/prog.jpg", dir);
    CHECK(gn_jpeg_write(path, img, 120, 80, 3, 90, 0, &e) == GN_OK);
    CHECK(gn_jpeg_write(p2, img, 120, 80, 3, 90, 1, &e) == GN_OK);
    CHECK(gn_jpeg_load_rgb(path, &r1, &dw, &dh, &e) == GN_OK);
    CHECK(gn_jpeg_load_rgb(p2, &r2, &dw, &dh, &e) == GN_OK);
    if (r1 && r2) {
        double s = 0;
        for (int i = 0; i < 120 * 80 * 3; i++) s += abs(r1[i] - r2[i]);
        CHECK_MSG(s / (120 * 80 * 3) < 1.0, "progressive differs by %g", s / (120 * 80 * 3));
    }
    free(r2);
    /* restart markers, and region decoding across them */
    r2 = NULL;
    snprintf(p2, sizeof p2, "%s/restart.jpg", dir);
    CHECK(gn_jpeg_write(p2, img, 120, 80, 3, 90, GN_JPEG_RESTART, &e) == GN_OK);
    size_t nb = 0, nrst = 0;
    unsigned char *bytes = tmp_read(p2, &nb);
    for (size_t i = 0; bytes && i + 1 < nb; i++) nrst += bytes[i] == 0xFF && bytes[i + 1] >= 0xD0 && bytes[i + 1] <= 0xD7;
    free(bytes);
    CHECK_MSG(nrst >= 4, "%zu restart markers", nrst);
    CHECK(gn_jpeg_load_rgb(p2, &r2, &dw, &dh, &e) == GN_OK);
    if (r1 && r2) {
        double s = 0;
        for (int i = 0; i < 120 * 80 * 3; i++) s += abs(r1[i] - r2[i]);
        CHECK_MSG(s / (120 * 80 * 3) < 0.5, "restart-marker file differs by %g", s / (120 * 80 * 3));
    }
    gn_box box = {60, 40, 40, 30};
    gn_patch pa = {0}, pb = {0};
    gn_scratch sc = {0};
    float fa[3 * 20 * 15], fb[3 * 20 * 15];
    CHECK(decode_file(path, fixed_box, &box, 20, 15, 1, &pa, &e) == GN_OK);
    CHECK(decode_file(p2, fixed_box, &box, 20, 15, 1, &pb, &e) == GN_OK);
    rs(pa.px, pa.w, pa.h, &pa.box, 20, 15, fa, &sc);
    rs(pb.px, pb.w, pb.h, &pb.box, 20, 15, fb, &sc);
    CHECK(mean_abs_diff(fa, fb, sizeof fa / sizeof *fa) < 0.5);
    gn_patch_free(&pa);
    gn_patch_free(&pb);
    gn_scratch_free(&sc);
    free(r1);
    free(r2);
    free(img);
}

static void expect_fail(const char *path, const char *reason_part)
{
    unsigned char *rgb = NULL;
    int w, h;
    gn_err e = {0};
    int rc = gn_jpeg_load_rgb(path, &rgb, &w, &h, &e);
    CHECK_MSG(rc != GN_OK && rgb == NULL, "%s decoded", path);
    CHECK_MSG(strstr(e.msg, reason_part) != NULL, "%s: reason '%s' lacks '%s'", path, e.msg, reason_part);
}

static void test_bad_files(void)
{
    char path[128], good[128];
    gn_err e = {0};
    snprintf(good, sizeof good, "%s/good.jpg", dir);
    unsigned char *img = make_image(300, 200, 1);
    CHECK(gn_jpeg_save_rgb(good, img, 300, 200, 95, &e) == GN_OK);
    free(img);
    size_t n = 0;
    unsigned char *data = tmp_read(good, &n);
    CHECK(data != NULL);
    if (!data) return;
    snprintf(path, sizeof path, "%s/zero.JPEG", dir);
    tmp_write(path, "", 0);
    expect_fail(path, "empty");
    snprintf(path, sizeof path, "%s/png.JPEG", dir);
    tmp_write(path, "\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16);
    expect_fail(path, "PNG");
    snprintf(path, sizeof path, "%s/trunc.JPEG", dir);
    tmp_write(path, data, n * 2 / 5);
    expect_fail(path, "truncated");
    /* header claiming 60000x60000: refused before allocating */
    unsigned char *huge = malloc(n);
    memcpy(huge, data, n);
    for (size_t i = 0; i + 8 < n; i++)
        if (huge[i] == 0xFF && huge[i + 1] == 0xC0) {
            huge[i + 5] = 0xEA, huge[i + 6] = 0x60, huge[i + 7] = 0xEA, huge[i + 8] = 0x60;
            break;
        }
    snprintf(path, sizeof path, "%s/huge.JPEG", dir);
    tmp_write(path, huge, n);
    expect_fail(path, "header claims 60000x60000");
    /* garbage after the SOI marker */
    for (size_t i = 2; i < n; i++) huge[i] = (unsigned char)(i * 7919u);
    snprintf(path, sizeof path, "%s/garbage.JPEG", dir);
    tmp_write(path, huge, n);
    expect_fail(path, "");
    free(huge);
    free(data);
    snprintf(path, sizeof path, "%s/missing.JPEG", dir);
    expect_fail(path, "cannot open");
}

/* tiny images through the training path: RandomResizedCrop, DCT choice, region, upsampling */
static void test_tiny(void)
{
    unsigned char px[3 * 3 * 2];
    for (int i = 0; i < 6; i++) px[3 * i] = 200, px[3 * i + 1] = 40, px[3 * i + 2] = 90;
    int sizes[2][2] = {{1, 1}, {3, 2}};
    gn_patch p = {0};
    gn_scratch s = {0};
    for (int k = 0; k < 2; k++) {
        char path[128];
        snprintf(path, sizeof path, "%s/tiny%d.jpg", dir, k);
        gn_err e = {0};
        CHECK(gn_jpeg_write(path, px, sizes[k][0], sizes[k][1], 3, 95, 0, &e) == GN_OK);
        for (int i = 0; i < 20; i++) {
            gn_rng r = gn_rng_make((uint64_t)i);
            const float scale[2] = {0.08f, 1}, ratio[2] = {0.75f, 4.0f / 3};
            gn_box b;
            gn_rrc_box(&r, sizes[k][0], sizes[k][1], scale, ratio, &b);
            CHECK(decode_file(path, fixed_box, &b, 16, 12, 1, &p, &e) == GN_OK);
            float out[3 * 16 * 12];
            rs(p.px, p.w, p.h, &p.box, 16, 12, out, &s);
            CHECK_MSG(fabs(out[0] - 200) < 12 && fabs(out[16 * 12 + 100] - 40) < 12 &&
                      fabs(out[2 * 16 * 12 + 191] - 90) < 12,
                      "tiny %d: %g %g %g", k, out[0], out[16 * 12 + 100], out[2 * 16 * 12 + 191]);
        }
    }
    gn_patch_free(&p);
    gn_scratch_free(&s);
}

static void test_eval_transform(void)
{
    gn_data_opts o;
    gn_data_opts_default(&o);
    o.width = o.height = 16;
    o.eval_resize = 18;
    unsigned char *rgb = malloc(50 * 30 * 3);
    memset(rgb, 200, 50 * 30 * 3);
    float out[3 * 16 * 16];
    CHECK(gn_data_eval_transform(&o, rgb, 50, 30, out) == GN_OK);
    for (int k = 0; k < 3; k++) CHECK_NEAR(out[k * 256 + 77], (200 / 255.0 - o.mean[k]) / o.std[k], 1e-4);
    free(rgb);
}

int main(void)
{
    if (!tmp_make(dir, sizeof dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_known_pixels();
    test_reduced_and_region();
    test_geometry();
    test_colour_spaces();
    test_bad_files();
    test_eval_transform();
    test_tiny();
    tmp_rmtree(dir);
    return check_exit();
}
