/* Image transforms: torchvision's RandomResizedCrop parameters, the eval centre crop, an
 * antialiased resampler, and the conversion to a normalized CHW tensor with flip and jitter. */
#include "data/data_internal.h"
#include "core/util.h"

#include <math.h>
#include <string.h>

void gn_rrc_box(gn_rng *r, int w, int h, const float scale[2], const float ratio[2], gn_box *b)
{
    double area = (double)w * h;
    double lr0 = log(ratio[0]), lr1 = log(ratio[1]);
    for (int attempt = 0; attempt < 10; attempt++) {
        double target = area * (scale[0] + (scale[1] - scale[0]) * gn_rng_uniform(r));
        double aspect = exp(lr0 + (lr1 - lr0) * gn_rng_uniform(r));
        int cw = (int)lround(sqrt(target * aspect));
        int ch = (int)lround(sqrt(target / aspect));
        if (cw > 0 && cw <= w && ch > 0 && ch <= h) {
            int i = (int)gn_rng_below(r, (uint64_t)(h - ch + 1));
            int j = (int)gn_rng_below(r, (uint64_t)(w - cw + 1));
            b->x = j;
            b->y = i;
            b->w = cw;
            b->h = ch;
            return;
        }
    }
    /* torchvision's fallback: a centre crop clamped to the ratio range */
    double in_ratio = (double)w / h;
    int cw = w, ch = h;
    if (in_ratio < ratio[0]) {
        ch = (int)lround(w / (double)ratio[0]);
    } else if (in_ratio > ratio[1]) {
        cw = (int)lround(h * (double)ratio[1]);
    }
    cw = GN_MAX(1, GN_MIN(cw, w));
    ch = GN_MAX(1, GN_MIN(ch, h));
    b->x = (w - cw) / 2;
    b->y = (h - ch) / 2;
    b->w = cw;
    b->h = ch;
}

void gn_center_box(int w, int h, int resize, int out_w, int out_h, gn_box *b)
{
    /* torchvision Resize(int): the shorter side becomes resize, the longer int(resize*long/short) */
    int rw, rh;
    if (w <= h) {
        rw = resize;
        rh = (int)((int64_t)resize * h / w);
    } else {
        rh = resize;
        rw = (int)((int64_t)resize * w / h);
    }
    double fx = (double)rw / w, fy = (double)rh / h;
    double left = round((rw - out_w) / 2.0), top = round((rh - out_h) / 2.0);
    b->x = left / fx;
    b->y = top / fy;
    b->w = out_w / fx;
    b->h = out_h / fy;
}

/* Taps of a triangle filter whose support grows with the shrink factor (antialiasing). */
static int filter_taps(double start, double len, int n_out, int n_in, int *idx, float *wt, int taps)
{
    double scale = len / n_out;
    double support = scale > 1 ? scale : 1;
    for (int o = 0; o < n_out; o++) {
        double c = start + (o + 0.5) * scale - 0.5;
        int first = (int)floor(c - support) + 1;
        double sum = 0;
        for (int t = 0; t < taps; t++) {
            int i = first + t;
            double d = fabs(i - c) / support;
            double v = d < 1 ? 1 - d : 0;
            idx[o * taps + t] = GN_MIN(GN_MAX(i, 0), n_in - 1);
            wt[o * taps + t] = (float)v;
            sum += v;
        }
        if (sum <= 0) {
            /* the centre lies between taps at exact distance 1: take the nearest pixel */
            wt[o * taps] = 1;
            sum = 1;
        }
        for (int t = 0; t < taps; t++) wt[o * taps + t] = (float)(wt[o * taps + t] / sum);
    }
    return GN_OK;
}

static int ensure(gn_scratch *s, size_t nf, size_t ni)
{
    if (nf > s->fcap) {
        float *f = realloc(s->f, nf * sizeof *f);
        if (!f) return GN_ENOMEM;
        s->f = f;
        s->fcap = nf;
    }
    if (ni > s->icap) {
        int *i = realloc(s->i, ni * sizeof *i);
        if (!i) return GN_ENOMEM;
        s->i = i;
        s->icap = ni;
    }
    return GN_OK;
}

void gn_scratch_free(gn_scratch *s)
{
    free(s->f);
    free(s->i);
    memset(s, 0, sizeof *s);
}

int gn_resample(const unsigned char *src, int sw, int sh, const gn_box *box, int ow, int oh,
                float *out, gn_scratch *s)
{
    double scx = box->w / ow, scy = box->h / oh;
    int tx = 2 * (int)ceil(scx > 1 ? scx : 1) + 1;
    int ty = 2 * (int)ceil(scy > 1 ? scy : 1) + 1;
    size_t nwx = (size_t)ow * tx, nwy = (size_t)oh * ty;
    /* rows of the intermediate (horizontally filtered) image that the vertical pass reads */
    int ylo = (int)floor(box->y - (scy > 1 ? scy : 1)) - 1, yhi = (int)ceil(box->y + box->h + (scy > 1 ? scy : 1)) + 1;
    ylo = GN_MAX(ylo, 0);
    yhi = GN_MIN(yhi, sh - 1);
    if (yhi < ylo) yhi = ylo;
    int nrows = yhi - ylo + 1;
    size_t nmid = (size_t)nrows * ow * 3;
    if (ensure(s, nwx + nwy + nmid, nwx + nwy)) return GN_ENOMEM;
    float *wx = s->f, *wy = s->f + nwx, *mid = s->f + nwx + nwy;
    int *ix = s->i, *iy = s->i + nwx;
    filter_taps(box->x, box->w, ow, sw, ix, wx, tx);
    filter_taps(box->y, box->h, oh, sh, iy, wy, ty);
    for (size_t k = 0; k < nwy; k++) iy[k] = GN_MIN(GN_MAX(iy[k], ylo), yhi);
    for (int r = 0; r < nrows; r++) {
        const unsigned char *row = src + (size_t)(ylo + r) * sw * 3;
        float *m = mid + (size_t)r * ow * 3;
        for (int o = 0; o < ow; o++) {
            float a0 = 0, a1 = 0, a2 = 0;
            const int *ii = ix + (size_t)o * tx;
            const float *ww = wx + (size_t)o * tx;
            for (int t = 0; t < tx; t++) {
                const unsigned char *q = row + (size_t)ii[t] * 3;
                a0 += ww[t] * q[0];
                a1 += ww[t] * q[1];
                a2 += ww[t] * q[2];
            }
            m[3 * o] = a0;
            m[3 * o + 1] = a1;
            m[3 * o + 2] = a2;
        }
    }
    for (int o = 0; o < oh; o++) {
        float *dst = out + (size_t)o * ow * 3;
        memset(dst, 0, sizeof(float) * (size_t)ow * 3);
        for (int t = 0; t < ty; t++) {
            float wt = wy[(size_t)o * ty + t];
            if (wt == 0) continue;
            const float *m = mid + (size_t)(iy[(size_t)o * ty + t] - ylo) * ow * 3;
            for (int k = 0; k < ow * 3; k++) dst[k] += wt * m[k];
        }
    }
    return GN_OK;
}

static float clamp255(float v) { return v < 0 ? 0 : v > 255 ? 255 : v; }

void gn_to_tensor(const float *hwc, int w, int h, int channels, int flip, const float jit[3],
                  const float mean[3], const float std[3], float *chw)
{
    size_t plane = (size_t)w * h;
    float b = 1, c = 1, sat = 1, gmean = 0;
    int jitter = jit && (jit[0] != 1 || jit[1] != 1 || jit[2] != 1);
    if (jitter) {
        b = jit[0];
        c = jit[1];
        sat = jit[2];
        /* contrast blends with the mean gray level of the brightness-adjusted image */
        double sum = 0;
        for (size_t i = 0; i < plane; i++) {
            const float *p = hwc + 3 * i;
            sum += 0.299f * clamp255(b * p[0]) + 0.587f * clamp255(b * p[1]) +
                   0.114f * clamp255(b * p[2]);
        }
        gmean = (float)(sum / (double)plane);
    }
    float sc[3], of[3];
    for (int k = 0; k < 3; k++) {
        sc[k] = 1.0f / (255.0f * std[k]);
        of[k] = -mean[k] / std[k];
    }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const float *p = hwc + 3 * ((size_t)y * w + (flip ? w - 1 - x : x));
            float r = p[0], g = p[1], bl = p[2];
            if (jitter) {
                r = clamp255(b * r);
                g = clamp255(b * g);
                bl = clamp255(b * bl);
                r = clamp255(c * r + (1 - c) * gmean);
                g = clamp255(c * g + (1 - c) * gmean);
                bl = clamp255(c * bl + (1 - c) * gmean);
                float gray = 0.299f * r + 0.587f * g + 0.114f * bl;
                r = clamp255(sat * r + (1 - sat) * gray);
                g = clamp255(sat * g + (1 - sat) * gray);
                bl = clamp255(sat * bl + (1 - sat) * gray);
            }
            size_t o = (size_t)y * w + x;
            if (channels == 1) {
                chw[o] = (0.299f * r + 0.587f * g + 0.114f * bl) * sc[0] + of[0];
            } else {
                chw[o] = r * sc[0] + of[0];
                chw[plane + o] = g * sc[1] + of[1];
                chw[2 * plane + o] = bl * sc[2] + of[2];
            }
        }
}
