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

/* Taps of a triangle filter whose support grows with the shrink factor (antialiasing). Output o
 * reads n[o] consecutive source pixels from first[o] with weights wt[o*taps ...]; taps outside
 * the source are folded onto the edge pixel. */
static void filter_taps(double start, double len, int n_out, int n_in, int *first, int *n,
                        float *wt, int taps)
{
    double scale = len / n_out;
    double support = scale > 1 ? scale : 1;
    for (int o = 0; o < n_out; o++) {
        double c = start + (o + 0.5) * scale - 0.5;
        int lo = (int)floor(c - support) + 1, hi = (int)floor(c + support);
        if (hi - lo + 1 > taps) hi = lo + taps - 1;
        int a = GN_MIN(GN_MAX(lo, 0), n_in - 1), b = GN_MIN(GN_MAX(hi, 0), n_in - 1);
        float *w = wt + (size_t)o * taps;
        for (int t = 0; t < taps; t++) w[t] = 0;
        double sum = 0;
        for (int i = lo; i <= hi; i++) {
            double d = fabs(i - c) / support;
            double v = d < 1 ? 1 - d : 0;
            w[GN_MIN(GN_MAX(i, a), b) - a] += (float)v;
            sum += v;
        }
        if (sum <= 0) {
            /* the centre lies exactly between taps at distance 1: take the nearest pixel */
            w[GN_MIN(GN_MAX((int)lround(c), a), b) - a] = 1;
            sum = 1;
        }
        /* drop zero-weight taps at both ends */
        int s0 = 0, s1 = b - a;
        while (s0 < s1 && w[s0] == 0) s0++;
        while (s1 > s0 && w[s1] == 0) s1--;
        for (int t = 0; t <= s1 - s0; t++) w[t] = (float)(w[s0 + t] / sum);
        first[o] = a + s0;
        n[o] = s1 - s0 + 1;
    }
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
                int flip, const float mul[3], const float add[3], float *out, gn_scratch *s)
{
    double scx = box->w / ow, scy = box->h / oh;
    int tx = 2 * (int)ceil(scx > 1 ? scx : 1) + 1;
    int ty = 2 * (int)ceil(scy > 1 ? scy : 1) + 1;
    size_t nwx = (size_t)ow * tx, nwy = (size_t)oh * ty;
    if (ensure(s, nwx + nwy, 2 * ((size_t)ow + oh))) return GN_ENOMEM;
    float *wx = s->f, *wy = s->f + nwx;
    int *x0 = s->i, *xn = x0 + ow, *y0 = xn + ow, *yn = y0 + oh;
    filter_taps(box->x, box->w, ow, sw, x0, xn, wx, tx);
    filter_taps(box->y, box->h, oh, sh, y0, yn, wy, ty);
    /* rows of the horizontally filtered image that the vertical pass reads */
    int ylo = y0[0], yhi = y0[0] + yn[0] - 1;
    for (int o = 1; o < oh; o++) {
        ylo = GN_MIN(ylo, y0[o]);
        yhi = GN_MAX(yhi, y0[o] + yn[o] - 1);
    }
    int nrows = yhi - ylo + 1;
    size_t plane_in = (size_t)nrows * ow, plane_out = (size_t)ow * oh;
    if (ensure(s, nwx + nwy + 3 * plane_in, 0)) return GN_ENOMEM;
    wx = s->f;
    wy = s->f + nwx;
    float *mid = s->f + nwx + nwy;
    /* horizontal pass into three planes; a flip just mirrors the output column */
    for (int r = 0; r < nrows; r++) {
        const unsigned char *row = src + (size_t)(ylo + r) * sw * 3;
        float *m0 = mid + (size_t)r * ow, *m1 = m0 + plane_in, *m2 = m1 + plane_in;
        for (int o = 0; o < ow; o++) {
            const unsigned char *q = row + (size_t)x0[o] * 3;
            const float *ww = wx + (size_t)o * tx;
            float a0, a1, a2;
            if (xn[o] == 2) { /* the common cases when enlarging or shrinking a little */
                a0 = ww[0] * q[0] + ww[1] * q[3];
                a1 = ww[0] * q[1] + ww[1] * q[4];
                a2 = ww[0] * q[2] + ww[1] * q[5];
            } else if (xn[o] == 3) {
                a0 = ww[0] * q[0] + ww[1] * q[3] + ww[2] * q[6];
                a1 = ww[0] * q[1] + ww[1] * q[4] + ww[2] * q[7];
                a2 = ww[0] * q[2] + ww[1] * q[5] + ww[2] * q[8];
            } else {
                a0 = a1 = a2 = 0;
                for (int t = 0; t < xn[o]; t++, q += 3) {
                    a0 += ww[t] * q[0];
                    a1 += ww[t] * q[1];
                    a2 += ww[t] * q[2];
                }
            }
            int d = flip ? ow - 1 - o : o;
            m0[d] = a0;
            m1[d] = a1;
            m2[d] = a2;
        }
    }
    /* vertical pass, with the per-channel affine map (normalization) folded in */
    for (int c = 0; c < 3; c++)
        for (int o = 0; o < oh; o++) {
            float *restrict dst = out + c * plane_out + (size_t)o * ow;
            const float *ww = wy + (size_t)o * ty;
            const float *restrict m = mid + c * plane_in + (size_t)(y0[o] - ylo) * ow;
            float w0 = ww[0] * mul[c], ad = add[c];
            /* one pass over dst for the common tap counts: the output is the memory traffic */
            if (yn[o] == 1) {
                for (int k = 0; k < ow; k++) dst[k] = w0 * m[k] + ad;
            } else if (yn[o] == 2) {
                const float *restrict m1 = m + ow;
                float w1 = ww[1] * mul[c];
                for (int k = 0; k < ow; k++) dst[k] = w0 * m[k] + w1 * m1[k] + ad;
            } else {
                const float *restrict m1 = m + ow, *restrict m2 = m + 2 * (size_t)ow;
                float w1 = ww[1] * mul[c], w2 = ww[2] * mul[c];
                for (int k = 0; k < ow; k++) dst[k] = w0 * m[k] + w1 * m1[k] + w2 * m2[k] + ad;
                for (int t = 3; t < yn[o]; t++) {
                    const float *restrict mt = m + (size_t)t * ow;
                    float wt = ww[t] * mul[c];
                    for (int k = 0; k < ow; k++) dst[k] += wt * mt[k];
                }
            }
        }
    return GN_OK;
}

static float clamp255(float v) { return v < 0 ? 0 : v > 255 ? 255 : v; }

void gn_normalize_factors(const float mean[3], const float std[3], float mul[3], float add[3])
{
    for (int k = 0; k < 3; k++) {
        mul[k] = 1.0f / (255.0f * std[k]);
        add[k] = -mean[k] / std[k];
    }
}

void gn_finish_tensor(float *chw, int w, int h, int channels, const float jit[3],
                      const float mean[3], const float std[3])
{
    size_t plane = (size_t)w * h;
    float *R = chw, *G = chw + plane, *B = chw + 2 * plane;
    float b = 1, c = 1, sat = 1, gmean = 0;
    int jitter = jit && (jit[0] != 1 || jit[1] != 1 || jit[2] != 1);
    if (jitter) {
        b = jit[0];
        c = jit[1];
        sat = jit[2];
        /* contrast blends with the mean gray level of the brightness-adjusted image */
        double sum = 0;
        for (size_t i = 0; i < plane; i++)
            sum += 0.299f * clamp255(b * R[i]) + 0.587f * clamp255(b * G[i]) + 0.114f * clamp255(b * B[i]);
        gmean = (float)(sum / (double)plane);
    }
    float mul[3], add[3];
    gn_normalize_factors(mean, std, mul, add);
    for (size_t i = 0; i < plane; i++) {
        float r = R[i], g = G[i], bl = B[i];
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
        if (channels == 1) {
            R[i] = (0.299f * r + 0.587f * g + 0.114f * bl) * mul[0] + add[0];
        } else {
            R[i] = r * mul[0] + add[0];
            G[i] = g * mul[1] + add[1];
            B[i] = bl * mul[2] + add[2];
        }
    }
}
