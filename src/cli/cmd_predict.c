/* gemmnet predict: class probabilities for images, folders and list files, batched through the
 * loader (decoding in its worker threads, the evaluation transform) and the net. */
#include "cli/commands.h"
#include "cli/common.h"
#include "gemmnet/checkpoint.h"
#include "gemmnet/data.h"
#include "gemmnet/interop.h"
#include "gemmnet/train.h"
#include "core/util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *predict_help =
    "usage: gemmnet predict CONFIG --weights PATH [--set ...] [--threads N] [--batch N]\n"
    "                       [--top N] [--csv FILE] IMAGE|DIR|LIST...\n\n"
    "Class probabilities (the output of the net's last layer) for JPEG images, with the\n"
    "evaluation transform (shorter side to [data] eval_resize, centre crop), in batches of N\n"
    "(default 32) decoded by the loader's worker threads. Each argument is\n"
    "  IMAGE  a JPEG file (.jpg/.jpeg, or any file that starts like a JPEG)\n"
    "  DIR    every .jpg/.jpeg below it, recursively, in name order (the ImageNet layout\n"
    "         root/<class>/NAME.JPEG, or any folder of JPEGs)\n"
    "  LIST   a text file of image paths, one per line, or Caffe-style 'path label' lines\n"
    "         (the label is ignored); relative paths are relative to the list's folder\n"
    "Without --csv: each path, then its top N classes (default 5) with probabilities.\n"
    "--csv FILE: one row per image (written atomically): path, top-1 class, its\n"
    "probability, then one column per class with every probability; the header names the\n"
    "classes (from the checkpoint; numbers for a darknet .weights file, which has none).\n"
    "With the config's [eval] tta=flip (or --set eval.tta=flip) each image is also run\n"
    "mirrored left to right and the two outputs averaged.\n"
    "PATH is a checkpoint or a darknet .weights file, told apart by content. Unreadable\n"
    "images are skipped, listed and counted. Exit status 1 when no image could be read.\n";

typedef struct pathlist {
    char **v;
    int64_t n, cap;
} pathlist;

static int push(pathlist *p, char *owned, gn_err *err)
{
    if (!owned) return gn_err_set(err, GN_ENOMEM, "out of memory for the file list");
    if (p->n == p->cap) {
        int64_t nc = p->cap ? 2 * p->cap : 256;
        char **nv = realloc(p->v, (size_t)nc * sizeof *nv);
        if (!nv) {
            free(owned);
            return gn_err_set(err, GN_ENOMEM, "out of memory for the file list");
        }
        p->v = nv;
        p->cap = nc;
    }
    p->v[p->n++] = owned;
    return GN_OK;
}

static void pathlist_free(pathlist *p)
{
    for (int64_t i = 0; i < p->n; i++) free(p->v[i]);
    free(p->v);
    memset(p, 0, sizeof *p);
}

static char *join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *s = malloc(a + b + 2);
    if (!s) return NULL;
    memcpy(s, dir, a);
    s[a] = '/';
    memcpy(s + a + 1, name, b + 1);
    return s;
}

static int has_jpeg_ext(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot && (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg"));
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every JPEG below dir: entries in name order, each folder where its name sorts (hidden
 * entries skipped). depth guards against symlink loops. */
static int add_dir(pathlist *p, const char *dir, int depth, gn_err *err)
{
    if (depth > 64) return gn_err_set(err, GN_EINVAL, "%s: folders nested too deep", dir);
    DIR *d = opendir(dir);
    if (!d) return gn_err_set(err, GN_EIO, "%s: cannot open directory: %s", dir, strerror(errno));
    pathlist names = {0};
    int rc = GN_OK;
    struct dirent *e;
    while (rc == GN_OK && (e = readdir(d)))
        if (e->d_name[0] != '.') rc = push(&names, gn_strdup(e->d_name), err);
    closedir(d);
    if (names.n > 1) qsort(names.v, (size_t)names.n, sizeof *names.v, cmp_str);
    for (int64_t i = 0; rc == GN_OK && i < names.n; i++) {
        char *full = join(dir, names.v[i]);
        struct stat st;
        if (!full) {
            rc = gn_err_set(err, GN_ENOMEM, "out of memory for the file list");
        } else if (stat(full, &st) == 0 && S_ISDIR(st.st_mode)) {
            rc = add_dir(p, full, depth + 1, err);
            free(full);
        } else if (has_jpeg_ext(names.v[i]) && stat(full, &st) == 0 && S_ISREG(st.st_mode)) {
            rc = push(p, full, err);
        } else {
            free(full);
        }
    }
    pathlist_free(&names);
    return rc;
}

/* One path per line, or 'path label' (an integer last word after white space): the label is
 * dropped. Blank lines and lines starting with '#' are skipped. */
static int add_list(pathlist *p, const char *list, gn_err *err)
{
    FILE *f = fopen(list, "r");
    if (!f) return gn_err_set(err, GN_EIO, "%s: cannot open: %s", list, strerror(errno));
    const char *slash = strrchr(list, '/');
    char *base = slash ? strndup(list, (size_t)(slash - list) + (slash == list)) : gn_strdup(".");
    char *line = NULL;
    size_t cap = 0;
    int rc = base ? GN_OK : gn_err_set(err, GN_ENOMEM, "out of memory");
    int64_t before = p->n;
    while (rc == GN_OK && getline(&line, &cap, f) >= 0) {
        char *s = line, *e = line + strlen(line);
        while (*s && isspace((unsigned char)*s)) s++;
        while (e > s && isspace((unsigned char)e[-1])) *--e = 0;
        if (!*s || *s == '#') continue;
        char *w = e;
        while (w > s && !isspace((unsigned char)w[-1])) w--;
        if (w > s) {
            char *end;
            (void)strtol(w, &end, 10);
            if (end != w && !*end) { /* 'path label' */
                while (w > s && isspace((unsigned char)w[-1])) w--;
                *w = 0;
            }
        }
        rc = push(p, s[0] == '/' ? gn_strdup(s) : join(base, s), err);
    }
    if (rc == GN_OK && ferror(f)) rc = gn_err_set(err, GN_EIO, "%s: read error", list);
    if (rc == GN_OK && p->n == before) rc = gn_err_set(err, GN_EFORMAT, "%s: no image paths", list);
    free(line);
    free(base);
    fclose(f);
    return rc;
}

/* Starts with a JPEG's SOI marker and the first marker's FF. */
static int looks_like_jpeg(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    unsigned char b[3] = {0};
    size_t n = fread(b, 1, 3, f);
    fclose(f);
    return n == 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF;
}

static int add_arg(pathlist *p, const char *a, gn_err *err)
{
    struct stat st;
    if (stat(a, &st) == 0 && S_ISDIR(st.st_mode)) {
        int64_t before = p->n;
        int rc = add_dir(p, a, 0, err);
        if (rc == GN_OK && p->n == before)
            rc = gn_err_set(err, GN_EFORMAT, "%s: no .jpg/.jpeg files below it", a);
        return rc;
    }
    /* a JPEG by name or content; anything else that exists is a list; the rest are images
     * that the loader reports as unreadable */
    if (has_jpeg_ext(a) || looks_like_jpeg(a) || stat(a, &st) != 0 || !S_ISREG(st.st_mode))
        return push(p, gn_strdup(a), err);
    return add_list(p, a, err);
}

/* A CSV field, quoted (RFC 4180) when it holds a comma, quote or line break. */
static void csv_field(FILE *o, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, o);
        return;
    }
    fputc('"', o);
    for (; *s; s++) {
        if (*s == '"') fputc('"', o);
        fputc(*s, o);
    }
    fputc('"', o);
}

int cmd_predict(int argc, char **argv)
{
    cli_common c = {0};
    const char *weights = NULL, *csv = NULL;
    int top = 5, batch = 32;
    const char **args = calloc((size_t)argc, sizeof *args);
    int n_args = 0;
    if (!args) return cli_usage_error("predict", "out of memory");
    for (int i = 1; i < argc;) {
        int t = cli_take_common_or_help(&c, argc, argv, &i, predict_help);
        if (t == CLI_HELP || t == CLI_ERROR) {
            free(args);
            return t == CLI_HELP ? 0 : 2;
        }
        if (t == CLI_TAKEN) continue;
        int bad = 0;
        if (!strcmp(argv[i], "--weights") && i + 1 < argc) {
            weights = argv[i + 1];
            i += 2;
        } else if (!strcmp(argv[i], "--csv") && i + 1 < argc) {
            csv = argv[i + 1];
            i += 2;
        } else if (!strcmp(argv[i], "--top") && i + 1 < argc) {
            bad = (top = cli_parse_int("predict", "--top", argv[i + 1], 1, 1 << 20)) < 0;
            i += 2;
        } else if (!strcmp(argv[i], "--batch") && i + 1 < argc) {
            bad = (batch = cli_parse_int("predict", "--batch", argv[i + 1], 1, 1 << 16)) < 0;
            i += 2;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            free(args);
            return cli_usage_error("predict", "unexpected '%s'", argv[i]);
        } else if (!c.config) {
            c.config = argv[i++];
        } else {
            args[n_args++] = argv[i++];
        }
        if (bad) {
            free(args);
            return 2;
        }
    }
    if (!c.config || !weights || !n_args) {
        free(args);
        return cli_usage_error("predict", "needs CONFIG, --weights PATH and at least one "
                               "IMAGE, DIR or LIST");
    }
    gn_set_threads(c.threads);
    gn_err err = {0};
    pathlist files = {0};
    gn_cfg *cfg = NULL;
    gn_net *net = NULL;
    gn_ckpt *ck = NULL;
    gn_loader *ld = NULL;
    char **cls = NULL, *names_copy = NULL;
    int64_t *idx = NULL;
    float *mean = NULL; /* the two views' mean with tta=flip */
    gn_atomic_file out = {0}; /* the CSV, renamed into place once complete */
    int64_t done_rows = 0, failed = 0;
    int rc = GN_OK;
    for (int i = 0; rc == GN_OK && i < n_args; i++) rc = add_arg(&files, args[i], &err);
    free(args);
    if (rc) goto done;
    if (!(cfg = cli_load_config(&c))) {
        pathlist_free(&files);
        return 1;
    }
    gn_data_opts d;
    gn_train_opts to;
    rc = gn_train_opts_parse(&to, cfg, &err);
    if (!rc) rc = gn_data_opts_parse(&d, cfg, &err);
    if (!rc) rc = gn_weights_input_convention(&d, weights, &err);
    gn_train_accept_darknet_keys(cfg);
    if (files.n < batch) batch = (int)files.n;
    if (!rc) rc = cli_load_net(cfg, weights, batch, &net, &ck, &err);
    if (!rc) rc = gn_cfg_check_all_unused(cfg, &err);
    if (!rc) rc = gn_loader_create_files(&ld, &d, (const char *const *)files.v, files.n, batch,
                                         &err);
    if (rc) goto done;
    int k = net->n_classes;
    cls = calloc((size_t)k, sizeof *cls);
    idx = malloc((size_t)batch * sizeof *idx);
    if (to.eval_tta == GN_TTA_FLIP) mean = malloc((size_t)batch * (size_t)k * sizeof *mean);
    const char *names = gn_ckpt_meta(ck, "classes");
    names_copy = names ? gn_strdup(names) : NULL;
    if (!cls || !idx || (names && !names_copy) || (to.eval_tta == GN_TTA_FLIP && !mean)) {
        rc = gn_err_set(&err, GN_ENOMEM, "out of memory");
        goto done;
    }
    /* class names: the checkpoint's, one per line; numbers where it has none */
    int j = 0;
    for (char *p = names_copy, *nl; p && *p && j < k; p = nl ? nl + 1 : p + strlen(p)) {
        nl = strchr(p, '\n');
        if (nl) *nl = 0;
        cls[j++] = p;
    }
    char (*num)[16] = calloc((size_t)k, sizeof *num);
    if (!num) {
        rc = gn_err_set(&err, GN_ENOMEM, "out of memory");
        goto done;
    }
    for (j = 0; j < k; j++)
        if (!cls[j]) {
            snprintf(num[j], sizeof num[j], "%d", j);
            cls[j] = num[j];
        }
    if (top > k) top = k;
    if (csv) {
        if ((rc = gn_atomic_open(&out, csv, &err))) goto done_num;
        fputs("path,class,probability", out.f);
        for (j = 0; j < k; j++) {
            fputc(',', out.f);
            csv_field(out.f, cls[j]);
        }
        fputc('\n', out.f);
    }
    unsigned char *used = calloc((size_t)k, 1);
    if (!used) {
        rc = gn_err_set(&err, GN_ENOMEM, "out of memory");
        goto done_num;
    }
    for (;;) {
        int n = 0, end = 0;
        rc = gn_loader_next_files(ld, net->input, idx, &n, &end, &err);
        const char *f;
        while ((f = gn_loader_pop_failure(ld))) fprintf(stderr, "warning: skipped %s\n", f);
        if (rc || end) break;
        if (n == 0) continue;
        gn_ctx ctx = gn_net_ctx(net, 0);
        ctx.batch = n;
        const float *y = NULL;
        gn_eval_forward(net, &ctx, to.eval_tta, mean, &y);
        for (int i = 0; i < n; i++) {
            const float *p = y + (size_t)i * k;
            const char *path = files.v[idx[i]];
            memset(used, 0, (size_t)k);
            int best = 0;
            for (j = 1; j < k; j++)
                if (p[j] > p[best]) best = j;
            if (out.f) {
                csv_field(out.f, path);
                fputc(',', out.f);
                csv_field(out.f, cls[best]);
                /* %.9g: every float reads back as itself */
                fprintf(out.f, ",%.9g", p[best]);
                for (j = 0; j < k; j++) fprintf(out.f, ",%.9g", p[j]);
                fputc('\n', out.f);
                continue;
            }
            printf("%s\n", path);
            for (int t = 0; t < top; t++) {
                int b = -1;
                for (j = 0; j < k; j++)
                    if (!used[j] && (b < 0 || p[j] > p[b])) b = j;
                used[b] = 1;
                printf("  %6.2f%%  %s\n", 100.0 * p[b], cls[b]);
            }
        }
        done_rows += n;
    }
    free(used);
    gn_loader_stats st;
    gn_loader_get_stats(ld, &st);
    failed = st.failed_files;
    if (failed) printf("skipped %lld unreadable files (listed above)\n", (long long)failed);
    if (!rc && done_rows == 0) rc = gn_err_set(&err, GN_EFORMAT, "no image could be read");
    if (!rc && out.f) {
        rc = gn_atomic_commit(&out, &err);
        if (!rc) printf("%lld images -> %s\n", (long long)done_rows, csv);
    }
done_num:
    free(num);
done:
    gn_atomic_abort(&out);
    free(idx);
    free(mean);
    free(cls);
    free(names_copy);
    gn_loader_free(&ld);
    gn_ckpt_close(&ck);
    gn_net_free(&net);
    gn_cfg_free(&cfg);
    pathlist_free(&files);
    return rc ? cli_fail(&err) : 0;
}
