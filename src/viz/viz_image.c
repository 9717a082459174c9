/* Pictures for the visualization commands: resampling (and its adjoint, for optimizing an image
 * at a smaller scale than the net sees it), undoing the input normalization, heat maps, grids.
 *
 * Shape letters: C channels, H x W source, P x Q destination. */
#include "gemmnet/viz.h"
#include "gemmnet/checkpoint.h"
#include "gemmnet/data.h"
#include "core/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The dense n_out x n_in matrix of a 1-D resampling: a triangle filter centred at each output
 * pixel's position in the input (half-pixel centres, edges clamped), as wide as the shrink
 * factor when shrinking; each row sums to 1. */
static void resample_matrix(float *restrict m, int n_out, int n_in)
{
    memset(m, 0, sizeof(float) * (size_t)n_out * (size_t)n_in);
    double scale = (double)n_in / n_out, support = scale > 1 ? scale : 1;
    for (int o = 0; o < n_out; o++) {
        double c = (o + 0.5) * scale - 0.5, sum = 0;
        int first = (int)floor(c - support) + 1, last = (int)ceil(c + support) - 1;
        float *row = m + (size_t)o * n_in;
        for (int i = first; i <= last; i++) {
            double wt = 1 - fabs(i - c) / support;
            if (wt <= 0) continue;
            int k = GN_MIN(GN_MAX(i, 0), n_in - 1);
            row[k] += (float)wt;
            sum += wt;
        }
        for (int k = 0; k < n_in; k++) row[k] = (float)(row[k] / sum);
    }
}

/* dst:(C,P,Q) = My:(P,H) * src:(C,H,W) * Mx^T:(W,Q), or with adjoint the transpose:
 * dst:(C,H,W) = My^T * src:(C,P,Q) * Mx. */
static int resize_impl(float *dst, int dh, int dw, const float *src, int sh, int sw, int c,
                       int adjoint)
{
    /* the matrices map the small side (H,W) to the large (P,Q) as in the forward direction */
    int P = adjoint ? sh : dh, Q = adjoint ? sw : dw, H = adjoint ? dh : sh, W = adjoint ? dw : sw;
    float *my = malloc(sizeof(float) * (size_t)P * H);
    float *mx = malloc(sizeof(float) * (size_t)Q * W);
    float *tmp = malloc(sizeof(float) * (size_t)GN_MAX(P, H) * GN_MAX(Q, W));
    int rc = GN_ENOMEM;
    if (!my || !mx || !tmp) goto done;
    resample_matrix(my, P, H);
    resample_matrix(mx, Q, W);
    for (int ch = 0; ch < c; ch++) {
        const float *s = src + (size_t)ch * sh * sw;
        float *d = dst + (size_t)ch * dh * dw;
        if (!adjoint) {
            /* tmp:(H,Q) = s:(H,W) Mx^T, then d:(P,Q) = My tmp */
            for (int y = 0; y < H; y++)
                for (int q = 0; q < Q; q++) {
                    const float *mr = mx + (size_t)q * W, *sr = s + (size_t)y * W;
                    float a = 0;
                    for (int x = 0; x < W; x++) a += mr[x] * sr[x];
                    tmp[(size_t)y * Q + q] = a;
                }
            memset(d, 0, sizeof(float) * (size_t)P * Q);
            for (int p = 0; p < P; p++)
                for (int y = 0; y < H; y++) {
                    float wt = my[(size_t)p * H + y];
                    if (wt == 0) continue;
                    for (int q = 0; q < Q; q++) d[(size_t)p * Q + q] += wt * tmp[(size_t)y * Q + q];
                }
        } else {
            /* tmp:(H,Q) = My^T s:(P,Q), then d:(H,W) = tmp Mx */
            memset(tmp, 0, sizeof(float) * (size_t)H * Q);
            for (int p = 0; p < P; p++)
                for (int y = 0; y < H; y++) {
                    float wt = my[(size_t)p * H + y];
                    if (wt == 0) continue;
                    for (int q = 0; q < Q; q++) tmp[(size_t)y * Q + q] += wt * s[(size_t)p * Q + q];
                }
            memset(d, 0, sizeof(float) * (size_t)H * W);
            for (int y = 0; y < H; y++)
                for (int q = 0; q < Q; q++) {
                    float t = tmp[(size_t)y * Q + q];
                    const float *mr = mx + (size_t)q * W;
                    float *dr = d + (size_t)y * W;
                    for (int x = 0; x < W; x++) dr[x] += mr[x] * t;
                }
        }
    }
    rc = GN_OK;
done:
    free(my);
    free(mx);
    free(tmp);
    return rc;
}

int gn_viz_resize(float *dst, int dh, int dw, const float *src, int sh, int sw, int c)
{
    if (dh == sh && dw == sw) {
        memmove(dst, src, sizeof(float) * (size_t)c * sh * sw);
        return GN_OK;
    }
    return resize_impl(dst, dh, dw, src, sh, sw, c, 0);
}

int gn_viz_resize_adjoint(float *dsrc, int sh, int sw, const float *ddst, int dh, int dw, int c)
{
    if (dh == sh && dw == sw) {
        memmove(dsrc, ddst, sizeof(float) * (size_t)c * sh * sw);
        return GN_OK;
    }
    return resize_impl(dsrc, sh, sw, ddst, dh, dw, c, 1);
}

static unsigned char to_byte(float v)
{
    v = v < 0 ? 0 : v > 255 ? 255 : v;
    return (unsigned char)lrintf(v);
}

int gn_viz_render(unsigned char *rgb, int oh, int ow, const float *x, int c, int h, int w,
                  const float mean[3], const float std[3])
{
    float *big = malloc(sizeof(float) * (size_t)c * oh * ow);
    if (!big) return GN_ENOMEM;
    int rc = gn_viz_resize(big, oh, ow, x, h, w, c);
    if (rc == GN_OK) {
        size_t plane = (size_t)oh * ow;
        for (size_t i = 0; i < plane; i++)
            for (int k = 0; k < 3; k++) {
                int ch = c == 3 ? k : 0;
                rgb[3 * i + k] = to_byte((big[ch * plane + i] * std[ch] + mean[ch]) * 255.0f);
            }
    }
    free(big);
    return rc;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

int gn_viz_heatmap(unsigned char *rgb, int oh, int ow, const float *map, int h, int w,
                   const unsigned char *under)
{
    size_t n = (size_t)h * w, plane = (size_t)oh * ow;
    float *sorted = malloc(sizeof(float) * n);
    float *big = malloc(sizeof(float) * plane);
    if (!sorted || !big) {
        free(sorted);
        free(big);
        return GN_ENOMEM;
    }
    memcpy(sorted, map, sizeof(float) * n);
    qsort(sorted, n, sizeof(float), cmp_float);
    float top = sorted[(size_t)floor(0.995 * (double)(n - 1))];
    if (!(top > 0)) top = sorted[n - 1] > 0 ? sorted[n - 1] : 1;
    int rc = gn_viz_resize(big, oh, ow, map, h, w, 1);
    for (size_t i = 0; rc == GN_OK && i < plane; i++) {
        float t = big[i] / top;
        t = t < 0 ? 0 : t > 1 ? 1 : t;
        /* hot: black -> red -> yellow -> white over thirds of the range */
        float col[3] = {fminf(1, 3 * t), fminf(1, fmaxf(0, 3 * t - 1)), fmaxf(0, 3 * t - 2)};
        /* under the map: the picture in gray, dimmed, so its colours do not mix with the map's */
        float gray = under ? 0.6f * (0.299f * under[3 * i] + 0.587f * under[3 * i + 1] +
                                     0.114f * under[3 * i + 2])
                           : 0;
        float a = under ? t : 1;
        for (int k = 0; k < 3; k++) rgb[3 * i + k] = to_byte((1 - a) * gray + a * 255 * col[k]);
    }
    free(sorted);
    free(big);
    return rc;
}

void gn_viz_grid_size(int n, int th, int tw, int gap, int cols, int *oh, int *ow)
{
    cols = GN_MAX(1, GN_MIN(cols, n));
    int rows = (n + cols - 1) / cols;
    *oh = rows * th + (rows - 1) * gap;
    *ow = cols * tw + (cols - 1) * gap;
}

void gn_viz_grid(unsigned char *out, const unsigned char *const *tiles, int n, int th, int tw,
                 int gap, int cols)
{
    int oh, ow;
    gn_viz_grid_size(n, th, tw, gap, cols, &oh, &ow);
    cols = GN_MAX(1, GN_MIN(cols, n));
    memset(out, 255, (size_t)oh * ow * 3);
    for (int t = 0; t < n; t++) {
        int r = t / cols, c = t % cols;
        for (int y = 0; y < th; y++)
            memcpy(out + ((size_t)(r * (th + gap) + y) * ow + (size_t)c * (tw + gap)) * 3,
                   tiles[t] + (size_t)y * tw * 3, (size_t)tw * 3);
    }
}

/* ---- PNG without compression: zlib "stored" blocks, so no zlib is needed ---- */

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* Writes one chunk: length, type, data, CRC-32 of type and data. */
static int png_chunk(FILE *f, const char *type, const unsigned char *data, size_t n)
{
    unsigned char hdr[8], crc[4];
    put_be32(hdr, (uint32_t)n);
    memcpy(hdr + 4, type, 4);
    uint32_t c = gn_crc32(gn_crc32(0, type, 4), data, n);
    put_be32(crc, c);
    return fwrite(hdr, 1, 8, f) == 8 && (n == 0 || fwrite(data, 1, n, f) == n) &&
                   fwrite(crc, 1, 4, f) == 4
               ? 0
               : -1;
}

int gn_viz_write_png(const char *path, const unsigned char *rgb, int w, int h, gn_err *err)
{
    if (w < 1 || h < 1 || (size_t)w * 3 + 1 > 0x7fffffff / (size_t)h)
        return gn_err_set(err, GN_EINVAL, "%s: bad image size %dx%d", path, w, h);
    /* raw: each row is filter byte 0 and the pixels; z: zlib header, stored blocks of at most
     * 65535 bytes (1 header byte, LEN, NLEN), Adler-32 */
    size_t raw_n = (size_t)h * ((size_t)w * 3 + 1), blocks = (raw_n + 65534) / 65535;
    size_t z_n = 2 + raw_n + 5 * blocks + 4;
    unsigned char *z = malloc(z_n);
    if (!z) return gn_err_set(err, GN_ENOMEM, "out of memory");
    unsigned char *q = z;
    *q++ = 0x78;
    *q++ = 0x01;
    uint32_t a = 1, b = 0;
    size_t row = (size_t)w * 3 + 1, pos = 0;
    while (pos < raw_n) {
        size_t len = GN_MIN(raw_n - pos, (size_t)65535);
        *q++ = pos + len == raw_n ? 1 : 0;
        q[0] = (unsigned char)len;
        q[1] = (unsigned char)(len >> 8);
        q[2] = (unsigned char)~len;
        q[3] = (unsigned char)(~len >> 8);
        q += 4;
        for (size_t k = 0; k < len; k++, pos++) {
            size_t r = pos / row, c = pos % row;
            unsigned char v = c == 0 ? 0 : rgb[r * (size_t)w * 3 + c - 1];
            *q++ = v;
            a = (a + v) % 65521;
            b = (b + a) % 65521;
        }
    }
    put_be32(q, (b << 16) | a);
    unsigned char ihdr[13];
    put_be32(ihdr, (uint32_t)w);
    put_be32(ihdr + 4, (uint32_t)h);
    ihdr[8] = 8;  /* bits per sample */
    ihdr[9] = 2;  /* RGB */
    ihdr[10] = ihdr[11] = ihdr[12] = 0;
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    FILE *f = fopen(path, "wb");
    int rc = GN_OK;
    if (!f) {
        rc = gn_err_set(err, GN_EIO, "%s: cannot create", path);
    } else {
        int bad = fwrite(sig, 1, 8, f) != 8 || png_chunk(f, "IHDR", ihdr, 13) ||
                  png_chunk(f, "IDAT", z, z_n) || png_chunk(f, "IEND", NULL, 0);
        if (fclose(f) || bad) rc = gn_err_set(err, GN_EIO, "%s: write failed", path);
    }
    free(z);
    return rc;
}

int gn_viz_save_rgb(const char *path, const unsigned char *rgb, int w, int h, gn_err *err)
{
    size_t n = strlen(path);
    if (n >= 4 && !strcasecmp(path + n - 4, ".png")) return gn_viz_write_png(path, rgb, w, h, err);
    return gn_jpeg_save_rgb(path, rgb, w, h, 92, err);
}
