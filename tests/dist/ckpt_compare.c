/* Test helper: compares the tensors of two gemmnet checkpoints (the data-parallel tests).
 *   ckpt_compare A B TOL [PREFIX]
 * For every tensor of A whose name starts with PREFIX (default "layers."): B must hold it with
 * the same shape, and max|a - b| <= TOL * max(max|a|, 1e-3) (TOL 0: bit-identical values).
 * Prints the worst tensor; exit 0 when all agree, 1 when not, 2 on a read error. */
#include "gemmnet/checkpoint.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct file {
    char *buf;
    size_t len;
    cJSON *hdr;
    const char *data;
} file;

static int load(file *f, const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return fprintf(stderr, "cannot open %s\n", path), 2;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    f->buf = malloc((size_t)n + 1);
    if (!f->buf || fread(f->buf, 1, (size_t)n, fp) != (size_t)n) {
        fclose(fp);
        return fprintf(stderr, "cannot read %s\n", path), 2;
    }
    fclose(fp);
    f->len = (size_t)n;
    uint64_t h = 0;
    memcpy(&h, f->buf, 8); /* little-endian hosts only, as gemmnet */
    if (h + 8 > f->len) return fprintf(stderr, "%s: bad header\n", path), 2;
    f->hdr = cJSON_ParseWithLength(f->buf + 8, (size_t)h);
    if (!f->hdr) return fprintf(stderr, "%s: bad JSON\n", path), 2;
    f->data = f->buf + 8 + h;
    return 0;
}

static size_t offset(const cJSON *t, int i)
{
    return (size_t)cJSON_GetArrayItem(cJSON_GetObjectItem(t, "data_offsets"), i)->valuedouble;
}

int main(int argc, char **argv)
{
    if (argc < 4) return fprintf(stderr, "usage: ckpt_compare A B TOL [PREFIX]\n"), 2;
    double tol = atof(argv[3]);
    const char *prefix = argc > 4 ? argv[4] : "layers.";
    file a = {0}, b = {0};
    if (load(&a, argv[1]) || load(&b, argv[2])) return 2;
    int bad = 0, n = 0;
    double worst = 0;
    char worst_name[256] = "";
    for (cJSON *t = a.hdr->child; t; t = t->next) {
        if (strncmp(t->string, prefix, strlen(prefix))) continue;
        cJSON *u = cJSON_GetObjectItem(b.hdr, t->string);
        size_t a0 = offset(t, 0), a1 = offset(t, 1);
        if (!u || offset(u, 1) - offset(u, 0) != a1 - a0) {
            printf("%s: missing or another size in %s\n", t->string, argv[2]);
            bad = 1;
            continue;
        }
        const float *x = (const float *)(const void *)(a.data + a0);
        const float *y = (const float *)(const void *)(b.data + offset(u, 0));
        size_t k = (a1 - a0) / 4;
        double dmax = 0, amax = 1e-3;
        for (size_t i = 0; i < k; i++) {
            float xi, yi;
            memcpy(&xi, x + i, 4);
            memcpy(&yi, y + i, 4);
            double d = fabs((double)xi - (double)yi);
            if (!(d <= dmax)) dmax = isnan(d) ? INFINITY : d;
            if (fabs(xi) > amax) amax = fabs(xi);
        }
        double rel = dmax / amax;
        if (rel > worst || n == 0) {
            worst = rel;
            snprintf(worst_name, sizeof worst_name, "%s", t->string);
        }
        if (!(rel <= tol)) bad = 1;
        n++;
    }
    printf("%d tensors compared; worst relative difference %.3g (%s); tolerance %g: %s\n", n,
           worst, worst_name, tol, bad || !n ? "DIFFERENT" : "same");
    cJSON_Delete(a.hdr);
    cJSON_Delete(b.hdr);
    free(a.buf);
    free(b.buf);
    return bad || !n;
}
