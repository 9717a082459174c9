/* The IDX format of MNIST and Fashion-MNIST, and `gemmnet import-idx`: IDX images and labels to
 * JPEG class folders.
 *
 * IDX: two zero bytes, a type byte (0x08: unsigned bytes, the only type read here), the number
 * of dimensions (1..4), then each dimension as a big-endian uint32, then the values in C order.
 * Images: 0x00000803 (count, rows, columns); labels: 0x00000801 (count). Files may be gzipped
 * (zlib reads both). The parser works on memory and trusts nothing: every field is checked
 * against the bytes present before anything is allocated or indexed (tests/fuzz/fuzz_idx.c).
 *
 * The importer writes OUT/<class>/<index>.jpg as grayscale JPEGs. Each file is written under a
 * temporary name and renamed into place only after its data is on disk (one syncfs per chunk of
 * files: an fsync per 600-byte file would cost 5 ms each, 6 minutes for Fashion-MNIST), so a
 * file with the final name is always complete, and a rerun skips the files already there. */
#include "data/data_internal.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static const char *idx_type_name(int t)
{
    switch (t) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "short";
    case 0x0C: return "int";
    case 0x0D: return "float";
    case 0x0E: return "double";
    default: return "unknown";
    }
}

int gn_idx_parse(const unsigned char *buf, size_t len, const char *name, gn_idx *out, gn_err *err)
{
    memset(out, 0, sizeof *out);
    if (len < 4)
        return gn_err_set(err, GN_EFORMAT, "%s: %zu bytes, too short for an IDX header", name, len);
    if (buf[0] || buf[1])
        return gn_err_set(err, GN_EFORMAT, "%s: magic 0x%02x%02x%02x%02x is not IDX (it starts "
                          "with two zero bytes: 0x00000803 for images, 0x00000801 for labels)",
                          name, buf[0], buf[1], buf[2], buf[3]);
    if (buf[2] != 0x08)
        return gn_err_set(err, GN_ENOTSUP, "%s: IDX values of type 0x%02x (%s); only unsigned "
                          "bytes (0x08) are read", name, buf[2], idx_type_name(buf[2]));
    int nd = buf[3];
    if (nd < 1 || nd > GN_IDX_MAX_DIMS)
        return gn_err_set(err, GN_EFORMAT, "%s: IDX with %d dimensions (1 to %d are read)", name,
                          nd, GN_IDX_MAX_DIMS);
    size_t head = 4 + 4 * (size_t)nd;
    if (len < head)
        return gn_err_set(err, GN_EFORMAT, "%s: truncated: the header of %d dimensions needs %zu "
                          "bytes, the file has %zu", name, nd, head, len);
    uint64_t total = 1;
    for (int d = 0; d < nd; d++) {
        const unsigned char *p = buf + 4 + 4 * d;
        uint64_t v = (uint64_t)p[0] << 24 | (uint64_t)p[1] << 16 | (uint64_t)p[2] << 8 | p[3];
        out->dims[d] = (int64_t)v;
        /* v < 2^32, total < 2^40 before the product: no overflow */
        if (v == 0 || total * v > ((uint64_t)1 << 40))
            return gn_err_set(err, GN_EFORMAT, "%s: dimension %d is %llu: %s", name, d,
                              (unsigned long long)v, v ? "more than 2^40 values in all" : "empty");
        total *= v;
    }
    out->ndim = nd;
    if (len - head < total)
        return gn_err_set(err, GN_EFORMAT, "%s: truncated: the header promises %llu bytes of "
                          "values, the file has %zu", name, (unsigned long long)total, len - head);
    if (len - head > total)
        return gn_err_set(err, GN_EFORMAT, "%s: %zu bytes after the %llu bytes of values the "
                          "header promises", name, len - head - (size_t)total,
                          (unsigned long long)total);
    out->data = buf + head;
    out->count = (size_t)total;
    return GN_OK;
}

int gn_idx_read_file(const char *path, unsigned char **buf, size_t *len, size_t max_len,
                     gn_err *err)
{
    *buf = NULL;
    *len = 0;
    gzFile f = gzopen(path, "rb"); /* reads plain files as they are */
    if (!f) return gn_err_set(err, GN_EIO, "%s: cannot open: %s", path, strerror(errno));
    /* read up to max_len + 1 bytes: one more than allowed means too long */
    size_t cap = GN_MIN((size_t)1 << 20, max_len + 1), n = 0;
    unsigned char *b = malloc(cap);
    int rc = GN_OK;
    while (b) {
        if (n == cap) {
            if (cap > max_len) {
                rc = gn_err_set(err, GN_EFORMAT, "%s: more than %zu bytes (uncompressed)", path,
                                max_len);
                break;
            }
            size_t nc = GN_MIN(cap * 2, max_len + 1);
            unsigned char *nb = realloc(b, nc);
            if (!nb) {
                free(b);
                b = NULL;
                break;
            }
            b = nb;
            cap = nc;
        }
        unsigned want = (unsigned)GN_MIN(cap - n, (size_t)1 << 30);
        int got = gzread(f, b + n, want);
        int zerr = Z_OK;
        const char *m = gzerror(f, &zerr); /* zlib's message names the file */
        if (got < 0 || (zerr != Z_OK && zerr != Z_STREAM_END)) {
            /* a gzip stream cut short ends like a file, with an error set */
            rc = gn_err_set(err, GN_EFORMAT, "%s", m && *m ? m : "read error");
            break;
        }
        if (got == 0) break;
        n += (size_t)got;
    }
    if (!b && rc == GN_OK) rc = gn_err_set(err, GN_ENOMEM, "%s: out of memory", path);
    gzclose(f);
    if (rc) {
        free(b);
        return rc;
    }
    *buf = b;
    *len = n;
    return GN_OK;
}

/* "0-T-shirt_top": the label with its zero-padded index in front, so that folders sort in
 * label order (gemmnet and torchvision's ImageFolder number classes by sorted name), and
 * characters other than letters, digits, '-', '.' and '_' made '_'. */
static void class_dir_name(char *out, size_t n, int k, int width, const char *name)
{
    char num[16];
    int digits = snprintf(num, sizeof num, "%d", k);
    size_t j = 0;
    for (int d = digits; d < width && j + 1 < n; d++) out[j++] = '0';
    for (int d = 0; d < digits && j + 1 < n; d++) out[j++] = num[d];
    out[j] = 0;
    if (!name || !*name || j + 2 >= n) return;
    out[j++] = '-';
    for (const char *p = name; *p && j + 1 < n; p++) {
        unsigned char c = (unsigned char)*p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '.' || c == '_';
        out[j++] = ok ? (char)c : '_';
    }
    out[j] = 0;
}

static int mkdir_ok(const char *dir, gn_err *err)
{
    if (mkdir(dir, 0777) && errno != EEXIST)
        return gn_err_set(err, GN_EIO, "cannot create %s: %s", dir, strerror(errno));
    return GN_OK;
}

/* out_dir and its parents */
static int mkdir_parents(const char *dir, gn_err *err)
{
    char p[GN_DATA_PATH_MAX];
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p)
        return gn_err_set(err, GN_EINVAL, "%s: path too long", dir);
    for (char *c = p + 1; *c; c++) {
        if (*c != '/') continue;
        *c = 0;
        int rc = mkdir_ok(p, err);
        *c = '/';
        if (rc) return rc;
    }
    return mkdir_ok(p, err);
}

static int sync_dir(const char *dir, int fs, gn_err *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return gn_err_set(err, GN_EIO, "cannot open %s: %s", dir, strerror(errno));
    int bad = fs ? syncfs(fd) : fsync(fd);
    int e = errno;
    close(fd);
    if (bad && e != EINVAL && e != ENOTSUP)
        return gn_err_set(err, GN_EIO, "cannot sync %s: %s", dir, strerror(e));
    return GN_OK;
}

enum { IMPORT_CHUNK = 2048 };

int gn_idx_import(const char *images, const char *labels, const char *out_dir,
                  const gn_idx_import_opts *o, gn_idx_import_result *r, gn_err *err)
{
    memset(r, 0, sizeof *r);
    unsigned char *ib = NULL, *lb = NULL;
    size_t il = 0, ll = 0;
    char **dirs = NULL, (*tmp)[GN_DATA_PATH_MAX] = NULL;
    int n_pending = 0, n_classes = 0;
    gn_idx im, lab;
    int rc;
    if ((rc = gn_idx_read_file(images, &ib, &il, (size_t)1 << 32, err))) goto done;
    if ((rc = gn_idx_read_file(labels, &lb, &ll, (size_t)1 << 32, err))) goto done;
    if ((rc = gn_idx_parse(ib, il, images, &im, err))) goto done;
    if ((rc = gn_idx_parse(lb, ll, labels, &lab, err))) goto done;
    if (im.ndim != 3) {
        rc = gn_err_set(err, GN_EFORMAT, "%s: images need 3 dimensions (count, rows, columns), "
                        "this file has %d (magic 0x%08x; images are 0x00000803)", images, im.ndim,
                        0x800 + im.ndim);
        goto done;
    }
    if (lab.ndim != 1) {
        rc = gn_err_set(err, GN_EFORMAT, "%s: labels need 1 dimension, this file has %d (magic "
                        "0x%08x; labels are 0x00000801)", labels, lab.ndim, 0x800 + lab.ndim);
        goto done;
    }
    if (im.dims[0] != lab.dims[0]) {
        rc = gn_err_set(err, GN_EFORMAT, "%s has %lld images but %s has %lld labels", images,
                        (long long)im.dims[0], labels, (long long)lab.dims[0]);
        goto done;
    }
    int64_t rows = im.dims[1], cols = im.dims[2];
    if (rows > 65500 || cols > 65500) {
        rc = gn_err_set(err, GN_EFORMAT, "%s: %lldx%lld images are too large for JPEG", images,
                        (long long)rows, (long long)cols);
        goto done;
    }
    int64_t n = im.dims[0];
    if (o->limit > 0 && o->limit < n) n = o->limit;
    for (int64_t i = 0; i < (int64_t)lab.count; i++)
        if (lab.data[i] + 1 > n_classes) n_classes = lab.data[i] + 1;
    if (o->n_names > 0) {
        if (o->n_names < n_classes) {
            rc = gn_err_set(err, GN_EFORMAT, "%s: label %d, but only %d class names were given",
                            labels, n_classes - 1, o->n_names);
            goto done;
        }
        n_classes = o->n_names;
    }
    int width = 1;
    for (int k = n_classes - 1; k >= 10; k /= 10) width++;
    int iw = 1;
    for (int64_t k = im.dims[0] - 1; k >= 10; k /= 10) iw++;
    dirs = calloc((size_t)n_classes, sizeof *dirs);
    tmp = malloc(IMPORT_CHUNK * sizeof *tmp);
    if (!dirs || !tmp) {
        rc = gn_err_set(err, GN_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = mkdir_parents(out_dir, err))) goto done;
    for (int k = 0; k < n_classes; k++) {
        char name[256];
        class_dir_name(name, sizeof name, k, width, o->n_names ? o->names[k] : NULL);
        size_t len = strlen(out_dir) + strlen(name) + 2;
        if (!(dirs[k] = malloc(len))) {
            rc = gn_err_set(err, GN_ENOMEM, "out of memory");
            goto done;
        }
        snprintf(dirs[k], len, "%s/%s", out_dir, name);
        if ((rc = mkdir_ok(dirs[k], err))) goto done;
    }
    size_t px = (size_t)rows * (size_t)cols;
    for (int64_t i = 0; i <= n; i++) {
        /* a full chunk, or the end: data to disk, then the names */
        if (n_pending == IMPORT_CHUNK || (i == n && n_pending)) {
            if ((rc = sync_dir(out_dir, 1, err))) goto done;
            for (int p = 0; p < n_pending; p++) {
                char final[GN_DATA_PATH_MAX];
                size_t l = strlen(tmp[p]) - 4; /* without ".tmp" */
                memcpy(final, tmp[p], l);
                final[l] = 0;
                if (rename(tmp[p], final)) {
                    rc = gn_err_set(err, GN_EIO, "cannot rename %s: %s", tmp[p], strerror(errno));
                    goto done;
                }
            }
            n_pending = 0;
        }
        if (i == n) break;
        int k = lab.data[i];
        char path[GN_DATA_PATH_MAX - 8];
        if (snprintf(path, sizeof path, "%s/%0*lld.jpg", dirs[k], iw, (long long)i) >=
            (int)sizeof path) {
            rc = gn_err_set(err, GN_EINVAL, "%s: path too long", out_dir);
            goto done;
        }
        struct stat st;
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
            r->skipped++;
            continue;
        }
        snprintf(tmp[n_pending], sizeof tmp[n_pending], "%s.tmp", path);
        if ((rc = gn_jpeg_write(tmp[n_pending], im.data + (size_t)i * px, (int)cols, (int)rows,
                                1, o->quality, 0, err)))
            goto done;
        n_pending++;
        r->written++;
    }
    for (int k = 0; k < n_classes; k++)
        if ((rc = sync_dir(dirs[k], 0, err))) goto done;
    rc = sync_dir(out_dir, 0, err);
    r->images = n;
    r->classes = n_classes;
    r->rows = (int)rows;
    r->cols = (int)cols;
done:
    free(ib);
    free(lb);
    if (dirs)
        for (int k = 0; k < n_classes; k++) free(dirs[k]);
    free(dirs);
    free(tmp);
    return rc;
}
