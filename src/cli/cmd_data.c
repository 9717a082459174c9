/* gemmnet synth, check-data and bench-data: the data set tools. */
#include "cli/commands.h"
#include "core/util.h"
#include "data/data_internal.h"
#include "gemmnet/cfg.h"
#include "gemmnet/data.h"
#include "gemmnet/gemmnet.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_int_arg(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

int cmd_synth(int argc, char **argv)
{
    gn_synth_opts o;
    gn_synth_opts_default(&o);
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        long v;
        const char *a = argv[i];
        int is_opt = a[0] == '-' && a[1] == '-';
        if (is_opt && i + 1 >= argc) {
            fprintf(stderr, "gemmnet synth: %s needs a value\n", a);
            return 2;
        }
        if (!strcmp(a, "--classes") && parse_int_arg(argv[i + 1], 1, 10, &v)) o.classes = (int)v;
        else if (!strcmp(a, "--train") && parse_int_arg(argv[i + 1], 0, 1000000, &v)) o.train = (int)v;
        else if (!strcmp(a, "--val") && parse_int_arg(argv[i + 1], 0, 1000000, &v)) o.val = (int)v;
        else if (!strcmp(a, "--seed") && parse_int_arg(argv[i + 1], 0, LONG_MAX, &v)) o.seed = (uint64_t)v;
        else if (!strcmp(a, "--min-side") && parse_int_arg(argv[i + 1], 16, 4096, &v)) o.min_side = (int)v;
        else if (!strcmp(a, "--max-side") && parse_int_arg(argv[i + 1], 16, 4096, &v)) o.max_side = (int)v;
        else if (!is_opt && !dir) {
            dir = a;
            continue;
        } else {
            fprintf(stderr, "gemmnet synth: bad argument '%s'%s%s\n"
                            "usage: gemmnet synth DIR [--classes N] [--train N] [--val N] [--seed S]"
                            " [--min-side N] [--max-side N]\n",
                    a, is_opt ? " " : "", is_opt ? argv[i + 1] : "");
            return 2;
        }
        i++;
    }
    if (!dir) {
        fprintf(stderr, "usage: gemmnet synth DIR [--classes N] [--train N] [--val N] [--seed S]\n");
        return 2;
    }
    gn_err err = {0};
    double t0 = gn_now();
    if (gn_synth(dir, &o, &err)) {
        fprintf(stderr, "gemmnet synth: %s\n", err.msg);
        return 1;
    }
    printf("wrote %d classes x (%d train + %d val) JPEGs to %s in %.1f s\n", o.classes, o.train,
           o.val, dir, gn_now() - t0);
    return 0;
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

int cmd_check_data(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gemmnet check-data DIR|LIST\n");
        return 2;
    }
    gn_err err = {0};
    gn_dataset d;
    if (gn_dataset_open(&d, argv[1], "", NULL, 0, 0, 0, &err)) {
        fprintf(stderr, "gemmnet check-data: %s\n", err.msg);
        return 1;
    }
    if (d.kind != GN_SRC_IMAGES) {
        fprintf(stderr, "gemmnet check-data: %s is not an image folder or list file\n", argv[1]);
        gn_dataset_free(&d);
        return 2;
    }
    int64_t *count = calloc((size_t)d.n_classes, sizeof *count);
    int *ws = malloc((size_t)d.n * sizeof *ws), *hs = malloc((size_t)d.n * sizeof *hs);
    if (!count || !ws || !hs) {
        fprintf(stderr, "gemmnet check-data: out of memory\n");
        free(count), free(ws), free(hs);
        gn_dataset_free(&d);
        return 1;
    }
    int64_t bad = 0, good = 0;
    unsigned char *buf = NULL;
    size_t cap = 0, len = 0;
    gn_patch p = {0};
    for (int64_t i = 0; i < d.n; i++) {
        count[d.labels[i]]++;
        gn_err e = {0};
        /* a 1/8-scale decode still reads every entropy-coded byte, so truncation shows */
        int rc = gn_read_file(d.paths[i], &buf, &cap, &len, &e);
        if (!rc) rc = gn_jpeg_decode(buf, len, 100000000, NULL, NULL, 1, 1, 0, &p, &e);
        if (rc) {
            printf("unreadable: %s: %s\n", d.paths[i], e.msg);
            bad++;
            continue;
        }
        ws[good] = p.src_w;
        hs[good] = p.src_h;
        good++;
    }
    printf("%d classes\n", d.n_classes);
    for (int c = 0; c < d.n_classes; c++) printf("  %-24s %lld\n", d.class_names[c], (long long)count[c]);
    if (good) {
        qsort(ws, (size_t)good, sizeof *ws, cmp_int);
        qsort(hs, (size_t)good, sizeof *hs, cmp_int);
        printf("width  min %d median %d max %d\n", ws[0], ws[good / 2], ws[good - 1]);
        printf("height min %d median %d max %d\n", hs[0], hs[good / 2], hs[good - 1]);
    }
    printf("%lld files, %lld unreadable\n", (long long)d.n, (long long)bad);
    free(buf);
    gn_patch_free(&p);
    free(count);
    free(ws);
    free(hs);
    gn_dataset_free(&d);
    return bad ? 1 : 0;
}

static int bench_split(const gn_data_opts *o0, int split, int batch, int images, int workers)
{
    gn_data_opts o = *o0;
    o.workers = workers;
    gn_err err = {0};
    gn_loader *l = NULL;
    if (gn_loader_create(&l, &o, split, batch, 1, &err)) {
        fprintf(stderr, "gemmnet bench-data: %s\n", err.msg);
        return 1;
    }
    size_t per = (size_t)o.channels * o.height * o.width;
    float *x = malloc(sizeof(float) * per * (size_t)batch);
    int *labels = malloc(sizeof(int) * (size_t)batch);
    float *targets = malloc(sizeof(float) * (size_t)batch * (size_t)GN_MAX(o.targets, 1));
    int rc = (x && labels && targets) ? 0 : 1;
    int64_t got = 0;
    double t0 = gn_now();
    while (rc == 0 && got < images) {
        int n = 0;
        if (gn_loader_next(l, x, labels, targets, &n, &err)) {
            fprintf(stderr, "gemmnet bench-data: %s\n", err.msg);
            rc = 1;
        }
        got += n;
    }
    double dt = gn_now() - t0;
    gn_loader_stats st;
    gn_loader_get_stats(l, &st);
    const char *f;
    while ((f = gn_loader_pop_failure(l))) printf("unreadable: %s\n", f);
    if (rc == 0)
        printf("%-5s %dx%d workers %d: %8.1f img/s total, %7.1f img/s per worker CPU second, "
               "waited %.2f s of %.2f s\n",
               split == GN_SPLIT_TRAIN ? "train" : "val", o.width, o.height, workers,
               (double)got / dt, st.work_s > 0 ? (double)st.decoded / st.work_s * 1.0 : 0.0,
               st.wait_s, dt);
    free(x);
    free(labels);
    free(targets);
    gn_loader_free(&l);
    return rc;
}

int cmd_bench_data(int argc, char **argv)
{
    const char *path = NULL;
    long images = 2000, batch = 32;
    int wl[16] = {1, 2}, nw = 2;
    gn_err err = {0};
    gn_cfg *cfg = NULL;
    char **sets = calloc((size_t)argc, sizeof *sets);
    int n_sets = 0, rc = 0;
    if (!sets) return 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] == '-' && i + 1 >= argc) goto usage;
        if (!strcmp(a, "--set")) sets[n_sets++] = argv[++i];
        else if (!strcmp(a, "--images")) {
            if (!parse_int_arg(argv[++i], 1, 100000000, &images)) goto usage;
        } else if (!strcmp(a, "--batch")) {
            if (!parse_int_arg(argv[++i], 1, 100000, &batch)) goto usage;
        } else if (!strcmp(a, "--workers")) {
            char *s = argv[++i], *tok, *save = NULL;
            nw = 0;
            for (tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                long v;
                if (nw == 16 || !parse_int_arg(tok, 1, 64, &v)) goto usage;
                wl[nw++] = (int)v;
            }
            if (!nw) goto usage;
        } else if (a[0] != '-' && !path) path = a;
        else goto usage;
    }
    if (!path) goto usage;
    if (gn_cfg_load(&cfg, path, &err)) goto fail;
    for (int i = 0; i < n_sets; i++)
        if (gn_cfg_set(cfg, sets[i], i + 1, &err)) goto fail;
    gn_data_opts o;
    if (gn_data_opts_parse(&o, cfg, &err)) goto fail;
    for (const char *w = o.aug.warning; *w;) { /* darknet keys not honoured, one a line */
        int n = (int)strcspn(w, "\n");
        fprintf(stderr, "warning: %.*s\n", n, w);
        w += n + (w[n] == '\n');
    }
    for (int split = 0; split < 2 && rc == 0; split++) {
        if (!gn_loader_has_split(&o, split)) continue;
        for (int k = 0; k < nw && rc == 0; k++) rc = bench_split(&o, split, (int)batch, (int)images, wl[k]);
    }
    goto done;
usage:
    fprintf(stderr, "usage: gemmnet bench-data CONFIG [--set section.key=value ...] [--images N]"
                    " [--batch N] [--workers 1,2,...]\n");
    rc = 2;
    goto done;
fail:
    fprintf(stderr, "gemmnet bench-data: %s\n", err.msg);
    rc = 1;
done:
    gn_cfg_free(&cfg);
    free(sets);
    return rc;
}
