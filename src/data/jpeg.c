/* JPEG decoding and encoding with the libjpeg API of libjpeg-turbo: reduced-size DCT decoding,
 * region decoding (jpeg_crop_scanline + jpeg_skip_scanlines), gray/CMYK/YCCK to RGB, and an error
 * manager that turns libjpeg's fatal errors into a status instead of exit(). */
#include "data/data_internal.h"
#include "core/util.h"

#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <jpeglib.h>
#include <jerror.h>

typedef struct err_mgr {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    int eof_warnings;
    char msg[JMSG_LENGTH_MAX];
} err_mgr;

static void on_error_exit(j_common_ptr c)
{
    err_mgr *e = (err_mgr *)c->err;
    c->err->format_message(c, e->msg);
    longjmp(e->jump, 1);
}

/* Warnings are not printed; a premature end of data makes the file count as truncated. */
static void on_emit_message(j_common_ptr c, int level)
{
    err_mgr *e = (err_mgr *)c->err;
    if (level < 0) {
        c->err->num_warnings++;
        if (c->err->msg_code == JWRN_JPEG_EOF) e->eof_warnings++;
    }
}

static void on_output_message(j_common_ptr c) { (void)c; }

static void err_mgr_init(err_mgr *e)
{
    jpeg_std_error(&e->pub);
    e->pub.error_exit = on_error_exit;
    e->pub.emit_message = on_emit_message;
    e->pub.output_message = on_output_message;
    e->eof_warnings = 0;
    e->msg[0] = 0;
}

int gn_read_file(const char *path, unsigned char **buf, size_t *cap, size_t *len, gn_err *err)
{
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return gn_err_set(err, GN_EIO, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return gn_err_set(err, GN_EIO, "not a regular file");
    }
    size_t n = (size_t)st.st_size;
    if (n + 1 > *cap) {
        unsigned char *nb = realloc(*buf, n + 1);
        if (!nb) {
            fclose(f);
            return gn_err_set(err, GN_ENOMEM, "out of memory reading %zu bytes", n);
        }
        *buf = nb;
        *cap = n + 1;
    }
    size_t got = n ? fread(*buf, 1, n, f) : 0;
    int bad = ferror(f);
    fclose(f);
    if (bad || got != n) return gn_err_set(err, GN_EIO, "read error");
    *len = n;
    return GN_OK;
}

static int grow(gn_patch *p, size_t need, gn_err *err)
{
    if (need <= p->cap) return GN_OK;
    unsigned char *nb = realloc(p->px, need);
    if (!nb) return gn_err_set(err, GN_ENOMEM, "out of memory for a %zu-byte image", need);
    p->px = nb;
    p->cap = need;
    return GN_OK;
}

void gn_patch_free(gn_patch *p)
{
    free(p->px);
    memset(p, 0, sizeof *p);
}

static int not_jpeg(const unsigned char *d, size_t len, gn_err *err)
{
    if (len == 0) return gn_err_set(err, GN_EFORMAT, "empty file");
    if (len >= 8 && !memcmp(d, "\x89PNG\r\n\x1a\n", 8))
        return gn_err_set(err, GN_EFORMAT, "not a JPEG (PNG data)");
    if (len >= 6 && (!memcmp(d, "GIF87a", 6) || !memcmp(d, "GIF89a", 6)))
        return gn_err_set(err, GN_EFORMAT, "not a JPEG (GIF data)");
    return gn_err_set(err, GN_EFORMAT, "not a JPEG (no SOI marker)");
}

/* Adobe applications store CMYK inverted (0 = full ink), and say so with an Adobe marker. */
static void cmyk_to_rgb(unsigned char *px, size_t n, int inverted)
{
    for (size_t i = 0; i < n; i++) {
        int c = px[4 * i], m = px[4 * i + 1], y = px[4 * i + 2], k = px[4 * i + 3];
        if (!inverted) {
            c = 255 - c;
            m = 255 - m;
            y = 255 - y;
            k = 255 - k;
        }
        px[3 * i] = (unsigned char)((c * k + 127) / 255);
        px[3 * i + 1] = (unsigned char)((m * k + 127) / 255);
        px[3 * i + 2] = (unsigned char)((y * k + 127) / 255);
    }
}

int gn_jpeg_decode(const unsigned char *data, size_t len, int64_t max_pixels, gn_region_fn fn,
                   void *ctx, int out_w, int out_h, int use_region, gn_patch *p, gn_err *err)
{
    if (len < 4 || data[0] != 0xFF || data[1] != 0xD8) return not_jpeg(data, len, err);
    struct jpeg_decompress_struct cinfo;
    err_mgr em;
    err_mgr_init(&em);
    cinfo.err = &em.pub;
    if (setjmp(em.jump)) {
        jpeg_destroy_decompress(&cinfo);
        return gn_err_set(err, GN_EFORMAT, "%s", em.msg);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)len);
    jpeg_read_header(&cinfo, TRUE);
    int w = (int)cinfo.image_width, h = (int)cinfo.image_height;
    if ((int64_t)w * h > max_pixels) {
        jpeg_destroy_decompress(&cinfo);
        return gn_err_set(err, GN_EFORMAT, "header claims %dx%d pixels, more than the limit %lld",
                          w, h, (long long)max_pixels);
    }
    int cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    int comps = cmyk ? 4 : 3;
    cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;

    gn_box box = {0, 0, w, h};
    if (fn) fn(ctx, w, h, &box);
    /* 1/8, 2/8 and 4/8 have SIMD IDCTs in libjpeg-turbo; 3/8, 5/8 ... are plain C and slower
     * than decoding at the next larger SIMD scale */
    int num = 8;
    if (out_w > 0 && out_h > 0)
        for (int k = 1; k < 8; k *= 2)
            if (box.w * k / 8 >= out_w && box.h * k / 8 >= out_h) {
                num = k;
                break;
            }
    cinfo.scale_num = (unsigned)num;
    cinfo.scale_denom = 8;
    jpeg_start_decompress(&cinfo);
    int ow = (int)cinfo.output_width, oh = (int)cinfo.output_height;
    double sx = (double)ow / w, sy = (double)oh / h;
    /* the region plus a margin for the resampling filter's support (which grows with the
     * shrink factor left after DCT scaling) */
    int x0 = 0, x1 = ow, y0 = 0, y1 = oh;
    if (use_region) {
        int mx = 2, my = 2;
        if (out_w > 0 && out_h > 0) {
            mx += (int)ceil(GN_MAX(1.0, box.w * sx / out_w));
            my += (int)ceil(GN_MAX(1.0, box.h * sy / out_h));
        } else {
            mx = my = 3;
        }
        x0 = GN_MAX(0, (int)floor(box.x * sx) - mx);
        x1 = GN_MIN(ow, (int)ceil((box.x + box.w) * sx) + mx);
        y0 = GN_MAX(0, (int)floor(box.y * sy) - my);
        y1 = GN_MIN(oh, (int)ceil((box.y + box.h) * sy) + my);
        if (x1 <= x0 || y1 <= y0) {
            x0 = y0 = 0;
            x1 = ow;
            y1 = oh;
        }
    }
    if (x0 > 0 || x1 < ow) {
        JDIMENSION xoff = (JDIMENSION)x0, cw = (JDIMENSION)(x1 - x0);
        jpeg_crop_scanline(&cinfo, &xoff, &cw);
        x0 = (int)xoff;
        x1 = x0 + (int)cw;
    }
    int pw = x1 - x0, ph = y1 - y0;
    if (grow(p, (size_t)pw * (size_t)ph * (size_t)comps, err)) {
        jpeg_destroy_decompress(&cinfo);
        return err ? err->code : GN_ENOMEM;
    }
    if (y0 > 0) jpeg_skip_scanlines(&cinfo, (JDIMENSION)y0);
    size_t stride = (size_t)pw * (size_t)comps;
    while ((int)cinfo.output_scanline < y1) {
        JSAMPROW rows[16];
        int r0 = (int)cinfo.output_scanline, nr = GN_MIN(16, y1 - r0);
        for (int r = 0; r < nr; r++) rows[r] = p->px + (size_t)(r0 - y0 + r) * stride;
        jpeg_read_scanlines(&cinfo, rows, (JDIMENSION)nr);
    }
    if (y1 < oh)
        jpeg_abort_decompress(&cinfo);
    else
        jpeg_finish_decompress(&cinfo);
    int inverted = cinfo.saw_Adobe_marker;
    jpeg_destroy_decompress(&cinfo);
    if (em.eof_warnings) return gn_err_set(err, GN_EFORMAT, "truncated file (premature end of JPEG data)");
    if (cmyk) cmyk_to_rgb(p->px, (size_t)pw * (size_t)ph, inverted);
    p->w = pw;
    p->h = ph;
    p->src_w = w;
    p->src_h = h;
    p->scale_num = num;
    p->box.x = box.x * sx - x0;
    p->box.y = box.y * sy - y0;
    p->box.w = box.w * sx;
    p->box.h = box.h * sy;
    return GN_OK;
}

int gn_jpeg_load_rgb(const char *path, unsigned char **rgb, int *w, int *h, gn_err *err)
{
    *rgb = NULL;
    unsigned char *buf = NULL;
    size_t cap = 0, len = 0;
    gn_patch p = {0};
    int rc = gn_read_file(path, &buf, &cap, &len, err);
    if (rc == GN_OK) rc = gn_jpeg_decode(buf, len, 100000000, NULL, NULL, 0, 0, 0, &p, err);
    free(buf);
    if (rc) {
        gn_patch_free(&p);
        return gn_err_wrap(err, "%s", path);
    }
    *rgb = p.px;
    *w = p.w;
    *h = p.h;
    return GN_OK;
}

int gn_jpeg_write(const char *path, const unsigned char *px, int w, int h, int comps, int quality,
                  int flags, gn_err *err)
{
    GN_ASSERT(comps == 1 || comps == 3 || comps == 4);
    if (w <= 0 || h <= 0 || w > 65500 || h > 65500 || quality < 1 || quality > 100)
        return gn_err_set(err, GN_EINVAL, "%s: bad JPEG size %dx%d or quality %d", path, w, h,
                          quality);
    FILE *f = fopen(path, "wb");
    if (!f) return gn_err_set(err, GN_EIO, "%s: cannot create: %s", path, strerror(errno));
    struct jpeg_compress_struct cinfo;
    err_mgr em;
    err_mgr_init(&em);
    cinfo.err = &em.pub;
    if (setjmp(em.jump)) {
        jpeg_destroy_compress(&cinfo);
        fclose(f);
        return gn_err_set(err, GN_EIO, "%s: %s", path, em.msg);
    }
    jpeg_create_compress(&cinfo);
    jpeg_stdio_dest(&cinfo, f);
    cinfo.image_width = (JDIMENSION)w;
    cinfo.image_height = (JDIMENSION)h;
    cinfo.input_components = comps;
    cinfo.in_color_space = comps == 1 ? JCS_GRAYSCALE : comps == 3 ? JCS_RGB : JCS_CMYK;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    if (flags & GN_JPEG_PROGRESSIVE) jpeg_simple_progression(&cinfo);
    if (flags & GN_JPEG_RESTART) cinfo.restart_in_rows = 1;
    jpeg_start_compress(&cinfo, TRUE);
    size_t stride = (size_t)w * (size_t)comps;
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = (JSAMPROW)(px + cinfo.next_scanline * stride);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) return gn_err_set(err, GN_EIO, "%s: write error", path);
    return GN_OK;
}

int gn_jpeg_save_rgb(const char *path, const unsigned char *rgb, int w, int h, int quality,
                     gn_err *err)
{
    return gn_jpeg_write(path, rgb, w, h, 3, quality, 0, err);
}
