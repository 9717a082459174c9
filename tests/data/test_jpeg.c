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
    gn_resample(full.px, full.w, full.h, &full.box, 100, 75, a, &s);
    gn_resample(red.px, red.w, red.h, &red.box, 100, 75, b, &s);
    double d = mean_abs_diff(a, b, sizeof a / sizeof *a);
    CHECK_MSG(d < 3.0, "reduced vs full: mean abs diff %g", d);
    /* a crop region, decoded alone and at reduced scale */
    gn_box box = {150.5, 90, 200, 160};
    float c[50 * 40 * 3], c2[50 * 40 * 3];
    CHECK(decode_file(path, fixed_box, &box, 50, 40, 1, &red, &e) == GN_OK);
    CHECK_MSG(red.scale_num == 2, "scale %d/8", red.scale_num);
    CHECK_MSG(red.w < 100 && red.h < 75, "region %dx%d not cropped", red.w, red.h);
    gn_resample(full.px, full.w, full.h, &box, 50, 40, c, &s);
    gn_resample(red.px, red.w, red.h, &red.box, 50, 40, c2, &s);
    d = mean_abs_diff(c, c2, sizeof c / sizeof *c);
    CHECK_MSG(d < 3.0, "region vs full: mean abs diff %g", d);
    /* region at full scale too */
    CHECK(decode_file(path, fixed_box, &box, 0, 0, 1, &red, &e) == GN_OK);
    CHECK(red.scale_num == 8 && red.w < w && red.h < h);
    gn_resample(red.px, red.w, red.h, &red.box, 50, 40, c2, &s);
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
        gn_resample(p.px, p.w, p.h, &p.box, 8, 8, out, &s);
        for (int k = 0; k < 3; k++)
            CHECK_MSG(fabs(out[(4 * 8 + 4) * 3 + k] - col[q][k]) < 20, "quadrant %d channel %d: %g",
                      q, k, out[(4 * 8 + 4) * 3 + k]);
    }
    /* flip: the left column of the output is the right column of the input */
    float hwc[4 * 2 * 3] = {0}, chw[3 * 4 * 2];
    for (int y = 0; y < 2; y++) hwc[(y * 4 + 3) * 3] = 255;
    const float mean[3] = {0, 0, 0}, std[3] = {1, 1, 1};
    gn_to_tensor(hwc, 4, 2, 3, 1, NULL, mean, std, chw);
    CHECK_NEAR(chw[0], 1.0, 1e-6);
    CHECK_NEAR(chw[3], 0.0, 1e-6);
    gn_to_tensor(hwc, 4, 2, 3, 0, NULL, mean, std, chw);
    CHECK_NEAR(chw[0], 0.0, 1e-6);
    CHECK_NEAR(chw[3], 1.0, 1e-6);
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
    tmp_rmtree(dir);
    return check_exit();
}
