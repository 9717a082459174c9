/* gemmnet import-idx: IDX images and labels (MNIST, Fashion-MNIST) to JPEG class folders. */
#include "cli/commands.h"
#include "cli/common.h"
#include "core/util.h"
#include "data/data_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const help =
    "usage: gemmnet import-idx IMAGES LABELS OUT_DIR [--names FILE] [--quality Q] [--limit N]\n"
    "\n"
    "Writes the images of an IDX image file (magic 0x00000803: count, rows, columns; gzipped or\n"
    "not) as grayscale JPEGs OUT_DIR/<label>-<name>/<index>.jpg, the label taken from the IDX\n"
    "label file (magic 0x00000801). Folder names start with the zero-padded label, so sorted\n"
    "folders (gemmnet, torchvision's ImageFolder) number the classes as the data set does.\n"
    "Each file is written under a temporary name and renamed once on disk; files already there\n"
    "are skipped, so an interrupted import is finished by running it again.\n"
    "\n"
    "  --names FILE   class names, one per line in label order (else folders are <label>)\n"
    "  --quality Q    JPEG quality, 1-100 (default 95)\n"
    "  --limit N      only the first N images (default: all)\n";

/* One name per line; blank lines end nothing, they are names too (in label order). */
static char **read_names(const char *path, int *n, gn_err *err)
{
    *n = 0;
    FILE *f = fopen(path, "r");
    if (!f) {
        gn_err_set(err, GN_EIO, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    char **names = NULL, line[512];
    int cap = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            char **nn = realloc(names, (size_t)cap * sizeof *nn);
            if (!nn) break;
            names = nn;
        }
        if (!(names[*n] = gn_strdup(line))) break;
        (*n)++;
    }
    int bad = ferror(f) || !feof(f);
    fclose(f);
    if (bad || *n == 0) {
        gn_names_free(names, *n);
        gn_err_set(err, GN_EFORMAT, "%s: %s", path, bad ? "read error or out of memory"
                                                        : "no class names");
        *n = 0;
        return NULL;
    }
    return names;
}

int cmd_import_idx(int argc, char **argv)
{
    const char *pos[3] = {NULL, NULL, NULL}, *names_path = NULL;
    int n_pos = 0;
    gn_idx_import_opts o = {.quality = 95};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            fputs(help, stdout);
            return 0;
        }
        if (a[0] == '-' && a[1] == '-') {
            if (i + 1 >= argc) return cli_usage_error("import-idx", "%s needs a value", a);
            const char *v = argv[++i];
            if (!strcmp(a, "--names")) {
                names_path = v;
            } else if (!strcmp(a, "--quality")) {
                if ((o.quality = cli_parse_int("import-idx", a, v, 1, 100)) < 0) return 2;
            } else if (!strcmp(a, "--limit")) {
                int lim = cli_parse_int("import-idx", a, v, 1, 2147483647);
                if (lim < 0) return 2;
                o.limit = lim;
            } else {
                return cli_usage_error("import-idx", "unknown option %s", a);
            }
            continue;
        }
        if (n_pos == 3) return cli_usage_error("import-idx", "unexpected argument '%s'", a);
        pos[n_pos++] = a;
    }
    if (n_pos != 3)
        return cli_usage_error("import-idx", "needs IMAGES LABELS OUT_DIR");
    gn_err err = {0};
    char **names = NULL;
    int n_names = 0;
    if (names_path && !(names = read_names(names_path, &n_names, &err))) return cli_fail(&err);
    o.names = (const char *const *)names;
    o.n_names = n_names;
    gn_idx_import_result r;
    double t0 = gn_now();
    int rc = gn_idx_import(pos[0], pos[1], pos[2], &o, &r, &err);
    gn_names_free(names, n_names);
    if (rc) return cli_fail(&err);
    printf("%s: %lld images of %dx%d in %d classes: %lld written, %lld already there (%.1f s)\n",
           pos[2], (long long)r.images, r.cols, r.rows, r.classes, (long long)r.written,
           (long long)r.skipped, gn_now() - t0);
    return 0;
}
