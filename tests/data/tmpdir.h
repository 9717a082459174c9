/* Temporary directories for the data tests: made with mkdtemp under /tmp, removed afterwards. */
#ifndef GN_TEST_TMPDIR_H
#define GN_TEST_TMPDIR_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int tmp_rm_(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static inline void tmp_rmtree(const char *dir) { nftw(dir, tmp_rm_, 16, FTW_DEPTH | FTW_PHYS); }

static inline char *tmp_make(char *buf, size_t n)
{
    snprintf(buf, n, "/tmp/gn_data_test_XXXXXX");
    return mkdtemp(buf);
}

static inline int tmp_write(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = n ? fwrite(data, 1, n, f) : 0;
    return (fclose(f) == 0 && w == n) ? 0 : -1;
}

static inline unsigned char *tmp_read(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)len + 1);
    if (b && fread(b, 1, (size_t)len, f) != (size_t)len) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *n = (size_t)len;
    return b;
}

#endif
