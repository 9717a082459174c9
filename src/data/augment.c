/* Train-split augmentations after the crop and flip: torchvision's RandAugment and
 * TrivialAugmentWide (one table of operations with their magnitude ranges), RandomAffine
 * (rotation and translation), RandomErasing, and darknet's [net] angle / hue / saturation /
 * exposure.
 *
 * The operations work on 8-bit RGB images (rows of w*3 bytes), as torchvision's do on PIL
 * images or uint8 tensors; they follow torchvision's uint8 tensor definitions (truncating casts
 * where torchvision truncates, rounding where it rounds), and geometric ones sample as
 * grid_sample does (nearest by default, fill 0). Every random draw comes from the caller's
 * counter-based generator, so an image's augmentation is a pure function of (seed, epoch,
 * index). Proof against torchvision: tests/data/test_augment.c, tests/ref/gen_augment.py. */
#include "data/data_internal.h"
#include "core/util.h"

#include <math.h>
#include <string.h>

static const double deg = 3.14159265358979323846 / 180.0;

static unsigned char u8_trunc(float v) { return (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v); }

/* nearbyintf (round half to even, as torch.round and grid_sample's nearest do) for |v| < 2^22,
 * without a libm call: adding and removing 2^23 leaves no fraction bits, and IEEE rounding to
 * nearest-even does the rest */
static inline float round_even(float v)
{
    const float big = 8388608.0f;
    return v >= 0 ? (v + big) - big : -((-v + big) - big);
}

/* ---- geometry ---- */

/* Samples img through theta, torchvision's inverse affine matrix in pixel coordinates centred on
 * the image (output pixel centre -> source point), as F_t.affine's grid and grid_sample
 * (align_corners=False) compute it in float32; taps outside the image contribute fill. */
static void warp(unsigned char *restrict img, unsigned char *restrict tmp, int w, int h,
                 const float theta[6], const gn_aug_geom *g)
{
    float hw = 0.5f * (float)w, hh = 0.5f * (float)h;
    float A = theta[0] / hw, B = theta[1] / hw, C = theta[2] / hw;
    float D = theta[3] / hh, E = theta[4] / hh, F = theta[5] / hh;
    int fill = g->fill[0] != 0 || g->fill[1] != 0 || g->fill[2] != 0;
    for (int y = 0; y < h; y++) {
        float yo = -hh + 0.5f + (float)y;
        unsigned char *o = tmp + (size_t)y * w * 3;
        for (int x = 0; x < w; x++, o += 3) {
            float xo = -hw + 0.5f + (float)x;
            float gx = xo * A + yo * B + C, gy = xo * D + yo * E + F;
            float ix = ((gx + 1.0f) * (float)w - 1.0f) / 2.0f;
            float iy = ((gy + 1.0f) * (float)h - 1.0f) / 2.0f;
            if (!g->bilinear) {
                float rx = round_even(ix), ry = round_even(iy);
                if (rx >= 0 && rx < (float)w && ry >= 0 && ry < (float)h) {
                    const unsigned char *p = img + ((size_t)ry * w + (size_t)rx) * 3;
                    o[0] = p[0];
                    o[1] = p[1];
                    o[2] = p[2];
                } else {
                    for (int c = 0; c < 3; c++) o[c] = (unsigned char)round_even(g->fill[c]);
                }
                continue;
            }
            float fx = (float)(int)ix, fy = (float)(int)iy; /* floor, without a libm call */
            fx -= fx > ix;
            fy -= fy > iy;
            float ax = ix - fx, ay = iy - fy;
            int x0 = (int)fx, y0 = (int)fy;
            float w00 = (1 - ax) * (1 - ay), w01 = ax * (1 - ay), w10 = (1 - ax) * ay, w11 = ax * ay;
            if (x0 >= 0 && y0 >= 0 && x0 < w - 1 && y0 < h - 1) { /* all four taps inside */
                const unsigned char *p = img + ((size_t)y0 * w + (size_t)x0) * 3, *q = p + (size_t)w * 3;
                for (int c = 0; c < 3; c++)
                    o[c] = (unsigned char)round_even(w00 * p[c] + w01 * p[c + 3] + w10 * q[c] +
                                                     w11 * q[c + 3]);
                continue;
            }
            float wt[4] = {w00, w01, w10, w11};
            int tx[4] = {x0, x0 + 1, x0, x0 + 1}, ty[4] = {y0, y0, y0 + 1, y0 + 1};
            float acc[3] = {0, 0, 0}, inside = 0;
            for (int t = 0; t < 4; t++) {
                if (tx[t] < 0 || tx[t] >= w || ty[t] < 0 || ty[t] >= h) continue;
                const unsigned char *p = img + ((size_t)ty[t] * w + (size_t)tx[t]) * 3;
                for (int c = 0; c < 3; c++) acc[c] += wt[t] * p[c];
                inside += wt[t];
            }
            for (int c = 0; c < 3; c++) {
                /* torchvision blends a fill colour as sample*inside + (1-inside)*fill, where
                 * the sample already counts outside taps as 0; with no fill (0), just the sample */
                float v = fill ? acc[c] * inside + (1.0f - inside) * g->fill[c] : acc[c];
                o[c] = (unsigned char)round_even(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
    }
    memcpy(img, tmp, (size_t)w * h * 3);
}

void gn_aug_affine(unsigned char *img, unsigned char *tmp, int w, int h, double angle, double tx,
                   double ty, double shear_x, double shear_y, double cx, double cy,
                   const gn_aug_geom *g)
{
    /* torchvision's _get_inverse_affine_matrix (scale 1), centre relative to the image centre */
    double rot = angle * deg, sx = shear_x * deg, sy = shear_y * deg;
    double ccx = cx - 0.5 * w, ccy = cy - 0.5 * h;
    double a = cos(rot - sy) / cos(sy);
    double b = -cos(rot - sy) * tan(sx) / cos(sy) - sin(rot);
    double c = sin(rot - sy) / cos(sy);
    double d = -sin(rot - sy) * tan(sx) / cos(sy) + cos(rot);
    double m[6] = {d, -b, 0, -c, a, 0};
    m[2] += m[0] * (-ccx - tx) + m[1] * (-ccy - ty) + ccx;
    m[5] += m[3] * (-ccx - tx) + m[4] * (-ccy - ty) + ccy;
    float theta[6];
    for (int k = 0; k < 6; k++) theta[k] = (float)m[k];
    warp(img, tmp, w, h, theta, g);
}

/* ---- the operations (torchvision's _apply_op) ---- */

static void op_identity(unsigned char *img, unsigned char *tmp, int w, int h, double mag,
                        const gn_aug_geom *g)
{
    (void)img, (void)tmp, (void)w, (void)h, (void)mag, (void)g;
}

/* shear factor mag about the top-left corner (F.affine with shear=degrees(atan(mag))) */
static void op_shear_x(unsigned char *img, unsigned char *tmp, int w, int h, double mag,
                       const gn_aug_geom *g)
{
    gn_aug_affine(img, tmp, w, h, 0, 0, 0, atan(mag) / deg, 0, 0, 0, g);
}

static void op_shear_y(unsigned char *img, unsigned char *tmp, int w, int h, double mag,
                       const gn_aug_geom *g)
{
    gn_aug_affine(img, tmp, w, h, 0, 0, 0, 0, atan(mag) / deg, 0, 0, g);
}

/* whole pixels: torchvision passes int(magnitude) */
static void op_translate_x(unsigned char *img, unsigned char *tmp, int w, int h, double mag,
                           const gn_aug_geom *g)
{
    gn_aug_affine(img, tmp, w, h, 0, trunc(mag), 0, 0, 0, 0.5 * w, 0.5 * h, g);
}

static void op_translate_y(unsigned char *img, unsigned char *tmp, int w, int h, double mag,
                           const gn_aug_geom *g)
{
    gn_aug_affine(img, tmp, w, h, 0, 0, trunc(mag), 0, 0, 0.5 * w, 0.5 * h, g);
}

/* F.rotate: counter-clockwise degrees about the centre */
static void op_rotate(unsigned char *img, unsigned char *tmp, int w, int h, double mag,
                      const gn_aug_geom *g)
{
    gn_aug_affine(img, tmp, w, h, -mag, 0, 0, 0, 0, 0.5 * w, 0.5 * h, g);
}

/* _blend(img, other, f) = f*img + (1-f)*other, clamped, truncated to uint8 (float32 math) */
static unsigned char blend(float f, float f1, unsigned char v, float other)
{
    return u8_trunc(f * (float)v + f1 * other);
}

/* rgb_to_grayscale on uint8: the weighted sum truncated */
static unsigned char gray_of(const unsigned char *p)
{
    return u8_trunc(0.2989f * (float)p[0] + 0.587f * (float)p[1] + 0.114f * (float)p[2]);
}

static void op_brightness(unsigned char *img, unsigned char *tmp, int w, int h, double mag,
                          const gn_aug_geom *g)
{
    (void)tmp, (void)g;
    float f = (float)(1.0 + mag), f1 = (float)(1.0 - (1.0 + mag));
    for (size_t i = 0, n = (size_t)w * h * 3; i < n; i++) img[i] = blend(f, f1, img[i], 0);
}

static void op_color(unsigned char *img, unsigned char *tmp, int w, int h, double mag,
                     const gn_aug_geom *g)
{
    (void)tmp, (void)g;
    float f = (float)(1.0 + mag), f1 = (float)(1.0 - (1.0 + mag));
    for (size_t i = 0, n = (size_t)w * h; i < n; i++) {
        unsigned char *p = img + i * 3;
        float l = gray_of(p);
        for (int c = 0; c < 3; c++) p[c] = blend(f, f1, p[c], l);
    }
}

static void op_contrast(unsigned char *img, unsigned char *tmp, int w, int h, double mag,
                        const gn_aug_geom *g)
{
    (void)tmp, (void)g;
    size_t n = (size_t)w * h;
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += gray_of(img + i * 3);
    float mean = (float)(sum / (double)n);
    float f = (float)(1.0 + mag), f1 = (float)(1.0 - (1.0 + mag));
    for (size_t i = 0; i < 3 * n; i++) img[i] = blend(f, f1, img[i], mean);
}

/* blend with the image smoothed by [[1,1,1],[1,5,1],[1,1,1]]/13 (rounded); the border rows and
 * columns blend with themselves, so they stay. The blur is exact in integers: S/13 is never a
 * tie, so rounding it cannot differ from torchvision's float32 convolution. */
static void op_sharpness(unsigned char *img, unsigned char *tmp, int w, int h, double mag,
                         const gn_aug_geom *g)
{
    (void)g;
    if (w <= 2 || h <= 2) return;
    float f = (float)(1.0 + mag), f1 = (float)(1.0 - (1.0 + mag));
    memcpy(tmp, img, (size_t)w * h * 3);
    size_t row = (size_t)w * 3;
    for (int y = 1; y < h - 1; y++) {
        const unsigned char *up = tmp + (size_t)(y - 1) * row, *mid = up + row, *dn = mid + row;
        unsigned char *o = img + (size_t)y * row;
        for (size_t k = 3; k < row - 3; k++) {
            int s = up[k - 3] + up[k] + up[k + 3] + mid[k - 3] + 5 * mid[k] + mid[k + 3] +
                    dn[k - 3] + dn[k] + dn[k + 3];
            o[k] = blend(f, f1, mid[k], (float)((2 * s + 13) / 26));
        }
    }
}

static void op_posterize(unsigned char *img, unsigned char *tmp, int w, int h, double mag,
                         const gn_aug_geom *g)
{
    (void)tmp, (void)g;
    int bits = (int)mag;
    if (bits >= 8) return;
    unsigned char mask = (unsigned char)(0xff << (8 - GN_MAX(bits, 0)));
    for (size_t i = 0, n = (size_t)w * h * 3; i < n; i++) img[i] &= mask;
}

static void op_solarize(unsigned char *img, unsigned char *tmp, int w, int h, double mag,
                        const gn_aug_geom *g)
{
    (void)tmp, (void)g;
    for (size_t i = 0, n = (size_t)w * h * 3; i < n; i++)
        if ((double)img[i] >= mag) img[i] = (unsigned char)(255 - img[i]);
}

/* each channel stretched to 0..255 (unchanged when it is flat) */
static void op_autocontrast(unsigned char *img, unsigned char *tmp, int w, int h, double mag,
                            const gn_aug_geom *g)
{
    (void)tmp, (void)mag, (void)g;
    size_t n = (size_t)w * h;
    for (int c = 0; c < 3; c++) {
        int lo = 255, hi = 0;
        for (size_t i = 0; i < n; i++) {
            lo = GN_MIN(lo, img[i * 3 + c]);
            hi = GN_MAX(hi, img[i * 3 + c]);
        }
        if (hi == lo) continue;
        float mn = (float)lo, scale = 255.0f / ((float)hi - mn);
        for (size_t i = 0; i < n; i++) img[i * 3 + c] = u8_trunc(((float)img[i * 3 + c] - mn) * scale);
    }
}

/* torchvision's _scale_channel: a lookup table from the cumulative histogram, per channel */
static void op_equalize(unsigned char *img, unsigned char *tmp, int w, int h, double mag,
                        const gn_aug_geom *g)
{
    (void)tmp, (void)mag, (void)g;
    size_t n = (size_t)w * h;
    for (int c = 0; c < 3; c++) {
        int64_t hist[256] = {0};
        for (size_t i = 0; i < n; i++) hist[img[i * 3 + c]]++;
        int last = 255;
        while (last > 0 && !hist[last]) last--;
        int64_t nonzero_but_last = 0;
        for (int v = 0; v < last; v++) nonzero_but_last += hist[v];
        int64_t step = nonzero_but_last / 255;
        if (step == 0) continue;
        unsigned char lut[256];
        int64_t cum = 0;
        for (int v = 0; v < 256; v++) {
            int64_t l = (cum + step / 2) / step; /* the table shifted by one: cumsum before v */
            lut[v] = (unsigned char)GN_MIN(l, 255);
            cum += hist[v];
        }
        for (size_t i = 0; i < n; i++) img[i * 3 + c] = lut[img[i * 3 + c]];
    }
}

/* torchvision's RandAugment / TrivialAugmentWide _augmentation_space, in its order: the value at
 * the last bin (linear ops: linspace(0, max, bins); TranslateX/Y in RandAugment: 150/331 of the
 * side; Posterize: 8 - round(bin / ((bins-1)/span)); Solarize: linspace(255, 0, bins)). */
const gn_aug_op gn_aug_ops[] = {
    {"Identity", GN_MAG_NONE, 0, 0, 0, op_identity},
    {"ShearX", GN_MAG_LINEAR, 0.3, 0.99, 1, op_shear_x},
    {"ShearY", GN_MAG_LINEAR, 0.3, 0.99, 1, op_shear_y},
    {"TranslateX", GN_MAG_TRANSLATE_X, 150.0 / 331.0, 32.0, 1, op_translate_x},
    {"TranslateY", GN_MAG_TRANSLATE_Y, 150.0 / 331.0, 32.0, 1, op_translate_y},
    {"Rotate", GN_MAG_LINEAR, 30.0, 135.0, 1, op_rotate},
    {"Brightness", GN_MAG_LINEAR, 0.9, 0.99, 1, op_brightness},
    {"Color", GN_MAG_LINEAR, 0.9, 0.99, 1, op_color},
    {"Contrast", GN_MAG_LINEAR, 0.9, 0.99, 1, op_contrast},
    {"Sharpness", GN_MAG_LINEAR, 0.9, 0.99, 1, op_sharpness},
    {"Posterize", GN_MAG_POSTERIZE, 4, 6, 0, op_posterize},
    {"Solarize", GN_MAG_SOLARIZE, 255.0, 255.0, 0, op_solarize},
    {"AutoContrast", GN_MAG_NONE, 0, 0, 0, op_autocontrast},
    {"Equalize", GN_MAG_NONE, 0, 0, 0, op_equalize},
};
const int gn_aug_n_ops = (int)(sizeof gn_aug_ops / sizeof gn_aug_ops[0]);

double gn_aug_magnitude(const gn_aug_op *op, int policy, double bin, int bins, int w, int h)
{
    double top = policy == GN_AUGMENT_RANDAUGMENT ? op->ra : op->ta;
    double t = bins > 1 ? bin / (bins - 1) : 0;
    switch (op->kind) {
    case GN_MAG_LINEAR: return top * t;
    case GN_MAG_TRANSLATE_X: return policy == GN_AUGMENT_RANDAUGMENT ? top * w * t : top * t;
    case GN_MAG_TRANSLATE_Y: return policy == GN_AUGMENT_RANDAUGMENT ? top * h * t : top * t;
    case GN_MAG_POSTERIZE: return 8 - nearbyint(bin / ((bins - 1) / top));
    case GN_MAG_SOLARIZE: return top * (1 - t);
    default: return 0;
    }
}

/* ---- darknet's colour distortion (image.c: rgb_to_hsv, distort_image, hsv_to_rgb) ---- */

void gn_aug_hsv(unsigned char *img, int w, int h, float dhue, float dsat, float dexp)
{
    float unit[256]; /* v/255 as darknet's loader divides */
    for (int v = 0; v < 256; v++) unit[v] = (float)v / 255.0f;
    for (size_t i = 0, n = (size_t)w * h; i < n; i++) {
        unsigned char *p = img + i * 3;
        float r = unit[p[0]], g = unit[p[1]], b = unit[p[2]];
        float mx = GN_MAX(r, GN_MAX(g, b)), mn = GN_MIN(r, GN_MIN(g, b)), delta = mx - mn;
        float hue = 0, s = 0, v = mx;
        if (mx > 0 && delta > 0) { /* darknet divides 0 by 0 for grays; their hue is unused */
            s = delta / mx;
            if (r == mx) hue = (g - b) / delta;
            else if (g == mx) hue = 2 + (b - r) / delta;
            else hue = 4 + (r - g) / delta;
            if (hue < 0) hue += 6;
            hue /= 6;
        }
        s *= dsat;
        v *= dexp;
        hue += dhue;
        if (hue > 1) hue -= 1;
        if (hue < 0) hue += 1;
        if (s == 0) {
            r = g = b = v;
        } else {
            float hh = 6 * hue;
            int k = (int)hh; /* hh >= 0: the floor */
            float f = hh - (float)k;
            float pp = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
            switch (k) {
            case 0: r = v, g = t, b = pp; break;
            case 1: r = q, g = v, b = pp; break;
            case 2: r = pp, g = v, b = t; break;
            case 3: r = pp, g = q, b = v; break;
            case 4: r = t, g = pp, b = v; break;
            default: r = v, g = pp, b = q; break;
            }
        }
        float rgb[3] = {r, g, b};
        for (int c = 0; c < 3; c++) {
            float x = rgb[c] < 0 ? 0 : rgb[c] > 1 ? 1 : rgb[c]; /* constrain_image */
            p[c] = (unsigned char)round_even(x * 255.0f);
        }
    }
}

/* darknet's rand_scale: uniform between 1 and s, inverted half of the time */
static float rand_scale(gn_rng *r, float s)
{
    float lo = GN_MIN(1.0f, s), hi = GN_MAX(1.0f, s);
    float x = lo + (hi - lo) * (float)gn_rng_uniform(r);
    return gn_rng_below(r, 2) ? x : 1.0f / x;
}

static double uniform(gn_rng *r, double lo, double hi) { return lo + (hi - lo) * gn_rng_uniform(r); }

/* ---- darknet's crop (data.c: random_augment_image, image.c: rotate_crop_image) ---- */

void gn_aug_darknet_box(gn_rng *r, int w, int h, const gn_augment_opts *a, int out_w, int out_h,
                        gn_box *b)
{
    double aspect = rand_scale(r, a->aspect > 0 ? a->aspect : 1);
    int lo = GN_MIN(a->min_crop, a->max_crop), hi = GN_MAX(a->min_crop, a->max_crop);
    int side = lo + (int)gn_rng_below(r, (uint64_t)(hi - lo + 1));
    double shorter = GN_MIN((double)h, w * aspect);
    double s = side / shorter;
    /* half the slack between the scaled image and the window (darknet measures dy against the
     * width; gemmnet against the height, the same for its square inputs) */
    double dx = (w * s / aspect - out_w) / 2, dy = (h * s - out_h) / 2;
    dx = uniform(r, -dx, dx);
    dy = uniform(r, -dy, dy);
    b->w = out_w * aspect / s;
    b->h = out_h / s;
    b->x = w / 2.0 + dx * aspect / s - b->w / 2;
    b->y = h / 2.0 + dy / s - b->h / 2;
}

/* ---- the per-image pipeline ---- */

int gn_augment_active(const gn_augment_opts *a)
{
    return a->policy != GN_AUGMENT_NONE || a->rotate > 0 || a->translate[0] > 0 ||
           a->translate[1] > 0 || a->angle > 0 || a->hue > 0 || a->saturation != 1 ||
           a->exposure != 1;
}

void gn_augment_planes(const gn_augment_opts *a, gn_rng *r, float *chw, int w, int h,
                       unsigned char *work)
{
    size_t n = (size_t)w * h;
    unsigned char *img = work, *tmp = work + 3 * n;
    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < 3; c++) {
            float v = chw[c * n + i];
            img[i * 3 + c] = (unsigned char)(v <= 0 ? 0 : v >= 255 ? 255 : (int)(v + 0.5f));
        }
    /* darknet: rotation (bilinear, black outside), then hue / saturation / exposure */
    if (a->angle > 0) {
        const gn_aug_geom dk = {1, {0, 0, 0}};
        gn_aug_affine(img, tmp, w, h, uniform(r, -a->angle, a->angle), 0, 0, 0, 0, 0.5 * w,
                      0.5 * h, &dk);
    }
    if (a->hue > 0 || a->saturation != 1 || a->exposure != 1) {
        float dhue = (float)uniform(r, -a->hue, a->hue);
        float dsat = rand_scale(r, a->saturation), dexp = rand_scale(r, a->exposure);
        gn_aug_hsv(img, w, h, dhue, dsat, dexp);
    }
    gn_aug_geom g = {a->bilinear, {a->fill[0], a->fill[1], a->fill[2]}};
    int ops = a->policy == GN_AUGMENT_RANDAUGMENT ? a->ra_n : a->policy == GN_AUGMENT_TRIVIALAUGMENT;
    for (int k = 0; k < ops; k++) {
        const gn_aug_op *op = &gn_aug_ops[gn_rng_below(r, (uint64_t)gn_aug_n_ops)];
        double bin;
        if (a->policy == GN_AUGMENT_RANDAUGMENT) {
            bin = a->ra_m;
            if (a->ra_mstd > 0) /* timm: a normal draw around M, clipped to the bins */
                bin = GN_MIN(GN_MAX(bin + a->ra_mstd * gn_rng_normal(r), 0.0), GN_AUG_BINS - 1.0);
        } else {
            bin = (double)gn_rng_below(r, GN_AUG_BINS);
        }
        double mag = gn_aug_magnitude(op, a->policy, bin, GN_AUG_BINS, w, h);
        if (op->is_signed && gn_rng_below(r, 2)) mag = -mag;
        op->apply(img, tmp, w, h, mag, &g);
    }
    /* RandomAffine(degrees=rotate, translate=translate) */
    if (a->rotate > 0 || a->translate[0] > 0 || a->translate[1] > 0) {
        double angle = a->rotate > 0 ? uniform(r, -a->rotate, a->rotate) : 0;
        double mx = a->translate[0] * w, my = a->translate[1] * h;
        double tx = mx > 0 ? nearbyint(uniform(r, -mx, mx)) : 0;
        double ty = my > 0 ? nearbyint(uniform(r, -my, my)) : 0;
        gn_aug_affine(img, tmp, w, h, angle, tx, ty, 0, 0, 0.5 * w, 0.5 * h, &g);
    }
    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < 3; c++) chw[c * n + i] = img[i * 3 + c];
}

void gn_augment_erase(const gn_augment_opts *a, gn_rng *r, float *chw, int c, int w, int h)
{
    if (!(a->erase_p > 0) || !(gn_rng_uniform(r) < a->erase_p)) return;
    double area = (double)w * h;
    double lr0 = log(a->erase_ratio[0]), lr1 = log(a->erase_ratio[1]);
    for (int attempt = 0; attempt < 10; attempt++) {
        double ea = area * uniform(r, a->erase_scale[0], a->erase_scale[1]);
        double aspect = exp(uniform(r, lr0, lr1));
        int eh = (int)nearbyint(sqrt(ea * aspect)), ew = (int)nearbyint(sqrt(ea / aspect));
        if (!(eh < h && ew < w)) continue;
        int i = (int)gn_rng_below(r, (uint64_t)(h - eh + 1));
        int j = (int)gn_rng_below(r, (uint64_t)(w - ew + 1));
        for (int k = 0; k < c; k++)
            for (int y = i; y < i + eh; y++) {
                float *row = chw + ((size_t)k * h + y) * w;
                for (int x = j; x < j + ew; x++)
                    row[x] = a->erase_random ? (float)gn_rng_normal(r) : a->erase_value;
            }
        return;
    }
}
