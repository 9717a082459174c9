/* The built-in data set: shapes and textures whose class is in the form, not in the colour.
 * Foreground and background colours are random per image, objects are placed and scaled at
 * random and surrounded by distractor strokes and noise, so a classifier needs spatial features
 * and augmentation matters. Every image is a pure function of (seed, split, class, index). */
#include "data/data_internal.h"
#include "core/util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const k_names[] = {"disc",    "ring", "square", "triangle", "cross",
                                      "stripes", "checker", "dots", "star",    "spiral"};
enum { N_SHAPES = 10 };

const char *gn_synth_class_name(int k) { return k >= 0 && k < N_SHAPES ? k_names[k] : NULL; }

void gn_synth_opts_default(gn_synth_opts *o)
{
    o->classes = 10;
    o->train = 260;
    o->val = 50;
    o->seed = 1;
    o->min_side = 150;
    o->max_side = 500;
}

/* Is the point (u, v) of the object's unit frame inside shape cls? */
static int inside(int cls, double u, double v)
{
    const double pi = 3.14159265358979323846;
    double rho = sqrt(u * u + v * v), m = fmax(fabs(u), fabs(v));
    switch (cls) {
    case 0: return rho < 1;
    case 1: return rho > 0.62 && rho < 1;
    case 2: return m < 0.85;
    case 3: return v > -0.55 && v < 1 - 1.732 * fabs(u);
    case 4: return (fabs(u) < 0.28 && fabs(v) < 1) || (fabs(v) < 0.28 && fabs(u) < 1);
    case 5: return m < 1 && fmod(u + 10.0, 0.5) < 0.25;
    case 6: return m < 1 && (((int)floor(u * 2.5 + 10) + (int)floor(v * 2.5 + 10)) & 1);
    case 7: {
        if (m >= 1) return 0;
        double gu = u * 2 - floor(u * 2) - 0.5, gv = v * 2 - floor(v * 2) - 0.5;
        return gu * gu + gv * gv < 0.09;
    }
    case 8: {
        double t = atan2(v, u), c = 0.5 + 0.5 * cos(5 * t);
        return rho < 0.38 + 0.62 * c * c;
    }
    default: {
        if (rho >= 1) return 0;
        double t = atan2(v, u) / (2 * pi);
        return fmod(t + rho * 2.5 + 10.0, 1.0) < 0.45;
    }
    }
}

static double luma(const int c[3]) { return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]; }

static void random_colour(gn_rng *r, int c[3])
{
    for (int k = 0; k < 3; k++) c[k] = (int)gn_rng_below(r, 256);
}

static unsigned char clamp_u8(double v) { return (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v + 0.5); }

static void stroke(unsigned char *px, int w, int h, double x0, double y0, double x1, double y1,
                   int thick, const int c[3])
{
    double len = hypot(x1 - x0, y1 - y0);
    int steps = (int)len + 1;
    for (int s = 0; s <= steps; s++) {
        double t = (double)s / steps;
        int cx = (int)(x0 + t * (x1 - x0)), cy = (int)(y0 + t * (y1 - y0));
        for (int dy = 0; dy < thick; dy++)
            for (int dx = 0; dx < thick; dx++) {
                int x = cx + dx, y = cy + dy;
                if (x < 0 || y < 0 || x >= w || y >= h) continue;
                unsigned char *p = px + 3 * ((size_t)y * w + x);
                p[0] = (unsigned char)c[0];
                p[1] = (unsigned char)c[1];
                p[2] = (unsigned char)c[2];
            }
    }
}

/* Draws one image of class cls; returns a malloc'ed RGB buffer. */
static unsigned char *draw(gn_rng *r, int cls, int min_side, int max_side, int *wo, int *ho)
{
    int w = min_side + (int)gn_rng_below(r, (uint64_t)(max_side - min_side + 1));
    int h = min_side + (int)gn_rng_below(r, (uint64_t)(max_side - min_side + 1));
    unsigned char *px = malloc((size_t)w * h * 3);
    if (!px) return NULL;
    int bg[3], fg[3];
    random_colour(r, bg);
    do random_colour(r, fg);
    while (fabs(luma(fg) - luma(bg)) < 60);
    /* background: a gentle gradient plus noise */
    double gx = (gn_rng_uniform(r) - 0.5) * 60 / w, gy = (gn_rng_uniform(r) - 0.5) * 60 / h;
    for (int y = 0; y < h; y++) {
        unsigned char *p = px + 3 * (size_t)y * w;
        for (int x = 0; x < w; x++) {
            int g = (int)floor(gx * (x - w / 2) + gy * (y - h / 2) + 0.5);
            for (int k = 0; k < 3; k++) {
                int v = bg[k] + g;
                p[3 * x + k] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
    }
    /* distractor strokes behind the object */
    int n_strokes = 3 + (int)gn_rng_below(r, 5);
    for (int s = 0; s < n_strokes; s++) {
        int c[3];
        random_colour(r, c);
        double x0 = gn_rng_uniform(r) * w, y0 = gn_rng_uniform(r) * h;
        double x1 = x0 + (gn_rng_uniform(r) - 0.5) * w * 0.6, y1 = y0 + (gn_rng_uniform(r) - 0.5) * h * 0.6;
        stroke(px, w, h, x0, y0, x1, y1, 1 + (int)gn_rng_below(r, 3), c);
    }
    /* the object: random centre, size and rotation */
    int side = GN_MIN(w, h);
    double rad = side * (0.18 + 0.2 * gn_rng_uniform(r));
    double cx = rad + gn_rng_uniform(r) * (w - 2 * rad), cy = rad + gn_rng_uniform(r) * (h - 2 * rad);
    double ang = gn_rng_uniform(r) * 6.283185307179586, ca = cos(ang), sa = sin(ang);
    int bx0 = GN_MAX(0, (int)(cx - 1.5 * rad)), bx1 = GN_MIN(w, (int)(cx + 1.5 * rad) + 1);
    int by0 = GN_MAX(0, (int)(cy - 1.5 * rad)), by1 = GN_MIN(h, (int)(cy + 1.5 * rad) + 1);
    for (int y = by0; y < by1; y++)
        for (int x = bx0; x < bx1; x++) {
            double dx = (x + 0.5 - cx) / rad, dy = (y + 0.5 - cy) / rad;
            double u = ca * dx + sa * dy, v = -sa * dx + ca * dy;
            if (!inside(cls, u, v)) continue;
            unsigned char *p = px + 3 * ((size_t)y * w + x);
            p[0] = (unsigned char)fg[0];
            p[1] = (unsigned char)fg[1];
            p[2] = (unsigned char)fg[2];
        }
    /* a couple of thin strokes across the object, then pixel noise */
    for (int s = 0; s < 2; s++) {
        int c[3];
        random_colour(r, c);
        stroke(px, w, h, gn_rng_uniform(r) * w, gn_rng_uniform(r) * h, gn_rng_uniform(r) * w,
               gn_rng_uniform(r) * h, 1, c);
    }
    uint64_t z = gn_rng_u64(r) | 1;
    size_t n = (size_t)w * h * 3;
    for (size_t i = 0; i < n; i += 8) {
        z ^= z << 13;
        z ^= z >> 7;
        z ^= z << 17;
        /* eight noise values in -6..6 from the eight bytes of z */
        for (size_t b = 0; b < 8 && i + b < n; b++) {
            int v = px[i + b] + (int)((((z >> (8 * b)) & 0xFF) * 13) >> 8) - 6;
            px[i + b] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
    *wo = w;
    *ho = h;
    return px;
}

static int make_dir(const char *path, gn_err *err)
{
    if (mkdir(path, 0777) == 0 || errno == EEXIST) return GN_OK;
    return gn_err_set(err, GN_EIO, "%s: cannot create directory: %s", path, strerror(errno));
}

static int touch(const char *path, const char *text, gn_err *err)
{
    FILE *f = fopen(path, "w");
    if (!f) return gn_err_set(err, GN_EIO, "%s: cannot create: %s", path, strerror(errno));
    int bad = fputs(text, f) < 0;
    if (fclose(f) != 0 || bad) return gn_err_set(err, GN_EIO, "%s: write error", path);
    return GN_OK;
}

static int write_one(const char *dir, const gn_synth_opts *o, int split, int cls, int idx, gn_err *err)
{
    gn_rng r = gn_rng_make(gn_rng_key(o->seed, (uint64_t)(split * 1000 + cls), (uint64_t)idx));
    int w = 0, h = 0;
    unsigned char *px = draw(&r, cls, o->min_side, o->max_side, &w, &h);
    if (!px) return gn_err_set(err, GN_ENOMEM, "out of memory drawing an image");
    static const int qualities[4] = {60, 75, 85, 95};
    int quality = qualities[gn_rng_below(&r, 4)];
    int gray = gn_rng_uniform(&r) < 0.15, progressive = gn_rng_uniform(&r) < 0.2;
    if (gray)
        for (size_t i = 0; i < (size_t)w * h; i++)
            px[i] = clamp_u8(0.299 * px[3 * i] + 0.587 * px[3 * i + 1] + 0.114 * px[3 * i + 2]);
    char path[GN_DATA_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s/%s/%s_%05d.JPEG", dir, split ? "val" : "train", k_names[cls],
             k_names[cls], idx);
    int rc = gn_jpeg_write(path, px, w, h, gray ? 1 : 3, quality, progressive, err);
    free(px);
    return rc;
}

int gn_synth(const char *dir, const gn_synth_opts *o, gn_err *err)
{
    if (o->classes < 1 || o->classes > N_SHAPES)
        return gn_err_set(err, GN_EINVAL, "synth makes 1 to %d classes, not %d", N_SHAPES, o->classes);
    if (o->train < 0 || o->val < 0 || o->train + o->val == 0)
        return gn_err_set(err, GN_EINVAL, "synth needs a positive number of images");
    if (o->min_side < 16 || o->max_side < o->min_side || o->max_side > 4096)
        return gn_err_set(err, GN_EINVAL, "bad synth image size range %d..%d", o->min_side, o->max_side);
    if (strlen(dir) > GN_DATA_PATH_MAX - 64) return gn_err_set(err, GN_EINVAL, "path too long");
    char path[GN_DATA_PATH_MAX + 64];
    int rc;
    if ((rc = make_dir(dir, err))) return rc;
    snprintf(path, sizeof path, "%s/.complete", dir);
    if (unlink(path) != 0 && errno != ENOENT)
        return gn_err_set(err, GN_EIO, "%s: cannot remove: %s", path, strerror(errno));
    snprintf(path, sizeof path, "%s/.incomplete", dir);
    if ((rc = touch(path, "gemmnet synth is writing this data set\n", err))) return rc;
    for (int split = 0; split < 2; split++) {
        snprintf(path, sizeof path, "%s/%s", dir, split ? "val" : "train");
        if ((rc = make_dir(path, err))) return rc;
        for (int c = 0; c < o->classes; c++) {
            snprintf(path, sizeof path, "%s/%s/%s", dir, split ? "val" : "train", k_names[c]);
            if ((rc = make_dir(path, err))) return rc;
        }
    }
    int64_t per_class = (int64_t)o->train + o->val, total = per_class * o->classes;
    int failed = 0;
    gn_err first = {0};
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 4)
#endif
    for (int64_t j = 0; j < total; j++) {
        if (failed) continue;
        int cls = (int)(j / per_class), k = (int)(j % per_class);
        int split = k >= o->train, idx = split ? k - o->train : k;
        gn_err e = {0};
        if (write_one(dir, o, split, cls, idx, &e)) {
#ifdef _OPENMP
#pragma omp critical(gn_synth_err)
#endif
            {
                if (!failed) first = e;
                failed = 1;
            }
        }
    }
    if (failed) return gn_err_set(err, first.code, "%s", first.msg);
    char names[N_SHAPES * 16] = "";
    for (int c = 0; c < o->classes; c++) {
        strcat(names, k_names[c]);
        strcat(names, "\n");
    }
    snprintf(path, sizeof path, "%s/classes.txt", dir);
    if ((rc = touch(path, names, err))) return rc;
    snprintf(path, sizeof path, "%s/.incomplete", dir);
    if (unlink(path) != 0) return gn_err_set(err, GN_EIO, "%s: cannot remove: %s", path, strerror(errno));
    snprintf(path, sizeof path, "%s/.complete", dir);
    return touch(path, "gemmnet synth\n", err);
}
