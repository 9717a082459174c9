/* IDX files and `gemmnet import-idx` (src/data/idx.c): the parser on valid files and on every
 * truncation, wrong magic, unsupported type, empty or too many dimensions and trailing bytes
 * (each refused with its reason); gzipped files, whole and cut short; the import itself (folder
 * names in label order, one JPEG per image that decodes back to its pixels, counts), a rerun
 * that skips what is there and finishes what is missing, and mismatched files refused. */
#include "check.h"
#include "tmpdir.h"
#include "data/data_internal.h"

#include <dirent.h>
#include <zlib.h>

enum { N = 7, R = 5, C = 6 };

/* An IDX image file of N RxC images (pixel = 37*i + 5*y + x) or its labels (i % 3), in buf. */
static size_t make_idx(unsigned char *buf, int images)
{
    size_t n = 0;
    unsigned char head[4] = {0, 0, 8, (unsigned char)(images ? 3 : 1)};
    memcpy(buf, head, 4);
    n = 4;
    int dims[3] = {N, R, C};
    for (int d = 0; d < (images ? 3 : 1); d++) {
        buf[n++] = 0;
        buf[n++] = 0;
        buf[n++] = (unsigned char)(dims[d] >> 8);
        buf[n++] = (unsigned char)dims[d];
    }
    for (int i = 0; i < N; i++) {
        if (!images) {
            buf[n++] = (unsigned char)(i % 3);
            continue;
        }
        for (int y = 0; y < R; y++)
            for (int x = 0; x < C; x++) buf[n++] = (unsigned char)(37 * i + 5 * y + x);
    }
    return n;
}

static void expect_err(const unsigned char *b, size_t len, const char *want, const char *what)
{
    gn_idx idx;
    gn_err err = {0};
    int rc = gn_idx_parse(b, len, "f.idx", &idx, &err);
    CHECK_MSG(rc != GN_OK && strstr(err.msg, want) && strstr(err.msg, "f.idx"),
              "%s: rc %d, '%s' (wanted '%s')", what, rc, err.msg, want);
}

static void parser(void)
{
    unsigned char b[4096];
    size_t n = make_idx(b, 1);
    gn_idx idx;
    gn_err err = {0};
    CHECK(gn_idx_parse(b, n, "f.idx", &idx, &err) == GN_OK);
    CHECK(idx.ndim == 3 && idx.dims[0] == N && idx.dims[1] == R && idx.dims[2] == C);
    CHECK(idx.count == N * R * C && idx.data == b + 16 && idx.data[R * C] == 37);
    /* every truncation is refused, with the reason */
    int refused = 0;
    for (size_t len = 0; len < n; len++) {
        gn_err e = {0};
        refused += gn_idx_parse(b, len, "f.idx", &idx, &e) != GN_OK &&
                   (strstr(e.msg, "truncated") || strstr(e.msg, "too short"));
    }
    CHECK_MSG(refused == (int)n, "%d of %zu truncations refused with the reason", refused, n);
    expect_err(b, n + 1, "after the", "a trailing byte");
    unsigned char m[4096];
    memcpy(m, b, n);
    m[0] = 0x1f; /* e.g. a gzip file given as is */
    expect_err(m, n, "is not IDX", "wrong magic");
    memcpy(m, b, n);
    m[2] = 0x0D;
    expect_err(m, n, "float", "float values");
    memcpy(m, b, n);
    m[3] = 5;
    expect_err(m, n, "5 dimensions", "5 dimensions");
    memcpy(m, b, n);
    m[3] = 0;
    expect_err(m, n, "0 dimensions", "0 dimensions");
    memcpy(m, b, n);
    m[11] = 0; /* rows = 0 */
    expect_err(m, n, "empty", "an empty dimension");
    memcpy(m, b, n);
    m[4] = m[8] = m[12] = 0xff; /* 2^32-ish in every dimension: no overflow, refused */
    expect_err(m, n, "2^40", "huge dimensions");
    n = make_idx(b, 0);
    CHECK(gn_idx_parse(b, n, "l.idx", &idx, &err) == GN_OK && idx.ndim == 1 && idx.count == N);
}

static int write_gz(const char *path, const unsigned char *b, size_t n)
{
    gzFile f = gzopen(path, "wb");
    if (!f) return -1;
    int w = gzwrite(f, b, (unsigned)n);
    return gzclose(f) == Z_OK && w == (int)n ? 0 : -1;
}

static int count_files(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name), s = strlen(suffix);
        n += l > s && !strcmp(e->d_name + l - s, suffix);
    }
    closedir(d);
    return n;
}

static void import(const char *dir)
{
    unsigned char b[4096], lb[64];
    size_t n = make_idx(b, 1), nl = make_idx(lb, 0);
    char img[512], lab[512], out[512], p[700];
    snprintf(img, sizeof img, "%s/img.idx.gz", dir);
    snprintf(lab, sizeof lab, "%s/lab.idx", dir);
    snprintf(out, sizeof out, "%s/out/train", dir);
    CHECK(write_gz(img, b, n) == 0 && tmp_write(lab, lb, nl) == 0);
    /* gzipped and plain files read the same */
    unsigned char *rb = NULL;
    size_t rl = 0;
    gn_err err = {0};
    CHECK(gn_idx_read_file(img, &rb, &rl, 1 << 20, &err) == GN_OK && rl == n &&
          !memcmp(rb, b, n));
    free(rb);
    CHECK(gn_idx_read_file(img, &rb, &rl, 100, &err) != GN_OK && strstr(err.msg, "more than"));

    const char *names[] = {"T-shirt/top", "Trouser", "Ankle boot"};
    gn_idx_import_opts o = {.quality = 95, .names = names, .n_names = 3};
    gn_idx_import_result r;
    CHECK_MSG(gn_idx_import(img, lab, out, &o, &r, &err) == GN_OK, "%s", err.msg);
    CHECK(r.images == N && r.written == N && r.skipped == 0 && r.classes == 3);
    const char *dirs[] = {"0-T-shirt_top", "1-Trouser", "2-Ankle_boot"};
    for (int k = 0; k < 3; k++) {
        snprintf(p, sizeof p, "%s/%s", out, dirs[k]);
        CHECK_MSG(count_files(p, ".jpg") == (N - k + 2) / 3, "%s: %d files", p,
                  count_files(p, ".jpg"));
        CHECK(count_files(p, ".tmp") == 0);
    }
    /* image 4 (label 1) decodes back to its pixels (JPEG quality 95: within a few levels) */
    snprintf(p, sizeof p, "%s/1-Trouser/4.jpg", out);
    unsigned char *rgb = NULL;
    int w = 0, h = 0, worst = 0;
    CHECK_MSG(gn_jpeg_load_rgb(p, &rgb, &w, &h, &err) == GN_OK, "%s", err.msg);
    if (rgb && w == C && h == R)
        for (int y = 0; y < R; y++)
            for (int x = 0; x < C; x++) {
                int d = abs(rgb[(y * C + x) * 3] - (37 * 4 + 5 * y + x));
                worst = d > worst ? d : worst;
            }
    CHECK_MSG(w == C && h == R && worst <= 4, "%dx%d, worst difference %d", w, h, worst);
    free(rgb);
    /* a rerun skips everything; after a loss it writes just the missing file */
    CHECK(gn_idx_import(img, lab, out, &o, &r, &err) == GN_OK && r.written == 0 && r.skipped == N);
    unlink(p);
    CHECK(gn_idx_import(img, lab, out, &o, &r, &err) == GN_OK && r.written == 1 &&
          r.skipped == N - 1);
    /* --limit */
    snprintf(out, sizeof out, "%s/out/limited", dir);
    o.limit = 2;
    CHECK(gn_idx_import(img, lab, out, &o, &r, &err) == GN_OK && r.images == 2 && r.written == 2);
    o.limit = 0;
    /* mismatched or wrong files are refused with the reason */
    o.n_names = 2;
    CHECK(gn_idx_import(img, lab, out, &o, &r, &err) != GN_OK && strstr(err.msg, "class names"));
    o.n_names = 3;
    CHECK(gn_idx_import(lab, img, out, &o, &r, &err) != GN_OK &&
          strstr(err.msg, "3 dimensions") && strstr(err.msg, "lab.idx"));
    unsigned char cut[4096];
    memcpy(cut, lb, nl);
    CHECK(tmp_write(lab, cut, nl - 1) == 0);
    CHECK(gn_idx_import(img, lab, out, &o, &r, &err) != GN_OK && strstr(err.msg, "truncated"));
    b[10] = 9; /* 9 rows instead of 5: the images file is now short */
    CHECK(write_gz(img, b, n) == 0 && tmp_write(lab, lb, nl) == 0);
    CHECK(gn_idx_import(img, lab, out, &o, &r, &err) != GN_OK && strstr(err.msg, "truncated") &&
          strstr(err.msg, "img.idx.gz"));
    /* a gzip stream cut short */
    b[10] = 5;
    CHECK(write_gz(img, b, n) == 0);
    unsigned char *gz = NULL;
    size_t gl = 0;
    gz = tmp_read(img, &gl);
    CHECK(gz && gl > 20 && tmp_write(img, gz, gl / 2) == 0);
    free(gz);
    int rc = gn_idx_import(img, lab, out, &o, &r, &err);
    printf("cut gzip: %s\n", err.msg);
    CHECK(rc != GN_OK);
}

int main(void)
{
    char dir[64];
    parser();
    if (!tmp_make(dir, sizeof dir)) {
        CHECK_MSG(0, "mkdtemp failed");
        return check_exit();
    }
    import(dir);
    tmp_rmtree(dir);
    return check_exit();
}
