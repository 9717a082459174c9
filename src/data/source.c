/* Data sources: ImageNet-style folders (root/<class>/NAME.JPEG, classes sorted by name), list files
 * ("path label" lines) and numeric CSV tables. A label comes from the directory or the list,
 * never from a substring of the path. */
#include "data/data_internal.h"
#include "core/util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

int gn_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int gn_has_jpeg_ext(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot && (!strcasecmp(dot, ".jpeg") || !strcasecmp(dot, ".jpg"));
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void gn_names_free(char **names, int n)
{
    if (!names) return;
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

static char *join_path(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *s = malloc(a + b + 2);
    if (!s) return NULL;
    memcpy(s, dir, a);
    s[a] = '/';
    memcpy(s + a + 1, name, b + 1);
    return s;
}

/* Sorted names in dir of subdirectories (want_dirs) or of regular files with a JPEG extension.
 * Hidden entries (".name") are skipped. */
static int list_dir(const char *dir, int want_dirs, char ***out, int *n_out, gn_err *err)
{
    *out = NULL;
    *n_out = 0;
    DIR *d = opendir(dir);
    if (!d) return gn_err_set(err, GN_EIO, "%s: cannot open directory: %s", dir, strerror(errno));
    char **names = NULL;
    int n = 0, cap = 0, rc = GN_OK;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        if (!want_dirs && !gn_has_jpeg_ext(e->d_name)) continue;
        char *full = join_path(dir, e->d_name);
        if (!full) {
            rc = gn_err_set(err, GN_ENOMEM, "out of memory listing %s", dir);
            break;
        }
        struct stat st;
        int ok = stat(full, &st) == 0 && (want_dirs ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode));
        free(full);
        if (!ok) continue;
        if (n == cap) {
            int nc = cap ? 2 * cap : 64;
            char **nn = realloc(names, (size_t)nc * sizeof *nn);
            if (!nn) {
                rc = gn_err_set(err, GN_ENOMEM, "out of memory listing %s", dir);
                break;
            }
            names = nn;
            cap = nc;
        }
        names[n] = gn_strdup(e->d_name);
        if (!names[n]) {
            rc = gn_err_set(err, GN_ENOMEM, "out of memory listing %s", dir);
            break;
        }
        n++;
    }
    closedir(d);
    if (rc) {
        gn_names_free(names, n);
        return rc;
    }
    if (n > 1) qsort(names, (size_t)n, sizeof *names, cmp_str);
    *out = names;
    *n_out = n;
    return GN_OK;
}

int gn_folder_classes(const char *root, char ***names, int *n, gn_err *err)
{
    return list_dir(root, 1, names, n, err);
}

static int push_sample(gn_dataset *d, int64_t *cap, char *path, int label, gn_err *err)
{
    if (d->n == *cap) {
        int64_t nc = *cap ? 2 * *cap : 1024;
        char **np = realloc(d->paths, (size_t)nc * sizeof *np);
        if (!np) goto oom;
        d->paths = np;
        int *nl = realloc(d->labels, (size_t)nc * sizeof *nl);
        if (!nl) goto oom;
        d->labels = nl;
        *cap = nc;
    }
    d->paths[d->n] = path;
    d->labels[d->n] = label;
    d->n++;
    return GN_OK;
oom:
    free(path);
    return gn_err_set(err, GN_ENOMEM, "out of memory for the sample list");
}

static int read_names(const char *path, char ***out, int *n_out, gn_err *err)
{
    *out = NULL;
    *n_out = 0;
    FILE *f = fopen(path, "r");
    if (!f) return gn_err_set(err, GN_EIO, "%s: cannot open: %s", path, strerror(errno));
    char *line = NULL;
    size_t lcap = 0;
    char **names = NULL;
    int n = 0, rc = GN_OK;
    while (getline(&line, &lcap, f) >= 0) {
        char *s = line, *e = line + strlen(line);
        while (*s && isspace((unsigned char)*s)) s++;
        while (e > s && isspace((unsigned char)e[-1])) *--e = 0;
        if (!*s || *s == '#') continue;
        char **nn = realloc(names, (size_t)(n + 1) * sizeof *nn);
        if (!nn || !(nn[n] = gn_strdup(s))) {
            if (nn) names = nn;
            rc = gn_err_set(err, GN_ENOMEM, "out of memory reading %s", path);
            break;
        }
        names = nn;
        n++;
    }
    if (rc == GN_OK && ferror(f)) rc = gn_err_set(err, GN_EIO, "%s: read error", path);
    free(line);
    fclose(f);
    if (rc == GN_OK && n == 0) rc = gn_err_set(err, GN_EFORMAT, "%s: no class names", path);
    if (rc) {
        gn_names_free(names, n);
        return rc;
    }
    *out = names;
    *n_out = n;
    return GN_OK;
}

static int find_name(char **names, int n, const char *s)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(names[i], s)) return i;
    return -1;
}

static int copy_names(gn_dataset *d, char **names, int n, gn_err *err)
{
    d->class_names = calloc((size_t)n, sizeof *d->class_names);
    if (!d->class_names) return gn_err_set(err, GN_ENOMEM, "out of memory");
    d->n_classes = n;
    for (int i = 0; i < n; i++)
        if (!(d->class_names[i] = gn_strdup(names[i])))
            return gn_err_set(err, GN_ENOMEM, "out of memory");
    return GN_OK;
}

/* Class names for a list file or CSV table: from the names file when there is one, else the
 * numbers 0..max_label. */
static int set_class_names(gn_dataset *d, char **names, int n_names, int max_label, gn_err *err)
{
    if (names) return copy_names(d, names, n_names, err);
    d->n_classes = max_label + 1;
    d->class_names = calloc((size_t)d->n_classes, sizeof *d->class_names);
    if (!d->class_names) return gn_err_set(err, GN_ENOMEM, "out of memory");
    for (int i = 0; i < d->n_classes; i++) {
        char num[16];
        snprintf(num, sizeof num, "%d", i);
        if (!(d->class_names[i] = gn_strdup(num))) return gn_err_set(err, GN_ENOMEM, "out of memory");
    }
    return GN_OK;
}

/* gemmnet synth writes DIR/.incomplete first and removes it last. */
static int synth_incomplete(const char *root)
{
    size_t n = strlen(root);
    char *p = malloc(n + 16);
    if (!p) return 0;
    memcpy(p, root, n + 1);
    while (n > 1 && p[n - 1] == '/') p[--n] = 0;
    memcpy(p + n, "/../.incomplete", 16);
    struct stat st;
    int r = stat(p, &st) == 0;
    free(p);
    return r;
}

static int open_folder(gn_dataset *d, const char *root, char **names, int n_names, gn_err *err)
{
    if (synth_incomplete(root))
        return gn_err_set(err, GN_EFORMAT,
                          "%s: the data set is incomplete (an interrupted 'gemmnet synth'?); "
                          "run synth again", root);
    char **dirs = NULL;
    int n_dirs = 0;
    int rc = list_dir(root, 1, &dirs, &n_dirs, err);
    if (rc) return rc;
    if (n_dirs == 0) {
        rc = gn_err_set(err, GN_EFORMAT, "%s: no class directories (expected root/<class>/NAME.JPEG)",
                        root);
        goto done;
    }
    if (names)
        rc = copy_names(d, names, n_names, err);
    else
        rc = copy_names(d, dirs, n_dirs, err);
    if (rc) goto done;
    int64_t cap = 0;
    for (int c = 0; c < n_dirs && rc == GN_OK; c++) {
        int label = find_name(d->class_names, d->n_classes, dirs[c]);
        if (label < 0) {
            rc = gn_err_set(err, GN_EFORMAT, "%s: class directory '%s' is not a known class",
                            root, dirs[c]);
            break;
        }
        char *cdir = join_path(root, dirs[c]);
        if (!cdir) {
            rc = gn_err_set(err, GN_ENOMEM, "out of memory");
            break;
        }
        char **files = NULL;
        int nf = 0;
        rc = list_dir(cdir, 0, &files, &nf, err);
        for (int i = 0; i < nf && rc == GN_OK; i++) {
            char *p = join_path(cdir, files[i]);
            rc = p ? push_sample(d, &cap, p, label, err) : gn_err_set(err, GN_ENOMEM, "out of memory");
        }
        gn_names_free(files, nf);
        free(cdir);
    }
    if (rc == GN_OK && d->n == 0)
        rc = gn_err_set(err, GN_EFORMAT, "%s: no .JPEG/.jpg/.jpeg files in the class directories", root);
done:
    gn_names_free(dirs, n_dirs);
    return rc;
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) return gn_strdup(".");
    size_t n = (size_t)(slash - path);
    if (n == 0) n = 1;
    char *s = malloc(n + 1);
    if (!s) return NULL;
    memcpy(s, path, n);
    s[n] = 0;
    return s;
}

static int open_list(gn_dataset *d, const char *path, char **names, int n_names, gn_err *err)
{
    FILE *f = fopen(path, "r");
    if (!f) return gn_err_set(err, GN_EIO, "%s: cannot open: %s", path, strerror(errno));
    char *base = dir_of(path), *line = NULL;
    size_t lcap = 0;
    int rc = base ? GN_OK : gn_err_set(err, GN_ENOMEM, "out of memory");
    int lineno = 0, max_label = -1;
    int64_t cap = 0;
    while (rc == GN_OK && getline(&line, &lcap, f) >= 0) {
        lineno++;
        char *s = line, *e = line + strlen(line);
        while (*s && isspace((unsigned char)*s)) s++;
        while (e > s && isspace((unsigned char)e[-1])) *--e = 0;
        if (!*s || *s == '#') continue;
        char *sp = e;
        while (sp > s && !isspace((unsigned char)sp[-1])) sp--;
        if (sp == s) {
            rc = gn_err_set(err, GN_EFORMAT, "%s:%d: expected 'path label'", path, lineno);
            break;
        }
        char *end;
        errno = 0;
        long label = strtol(sp, &end, 10);
        if (*end || errno || label < 0 || label >= GN_MAX_CLASSES) {
            rc = gn_err_set(err, GN_EFORMAT, "%s:%d: label '%s' is not an integer in [0, %d)",
                            path, lineno, sp, GN_MAX_CLASSES);
            break;
        }
        if (names && label >= n_names) {
            rc = gn_err_set(err, GN_EFORMAT, "%s:%d: label %ld, but the classes file names %d classes",
                            path, lineno, label, n_names);
            break;
        }
        char *pe = sp;
        while (pe > s && isspace((unsigned char)pe[-1])) pe--;
        *pe = 0;
        char *full = s[0] == '/' ? gn_strdup(s) : join_path(base, s);
        rc = full ? push_sample(d, &cap, full, (int)label, err)
                  : gn_err_set(err, GN_ENOMEM, "out of memory");
        if (label > max_label) max_label = (int)label;
    }
    if (rc == GN_OK && ferror(f)) rc = gn_err_set(err, GN_EIO, "%s: read error", path);
    if (rc == GN_OK && d->n == 0) rc = gn_err_set(err, GN_EFORMAT, "%s: no samples", path);
    if (rc == GN_OK) {
        rc = set_class_names(d, names, n_names, max_label, err);
    }
    free(line);
    free(base);
    fclose(f);
    return rc;
}

static int parse_num(const char *s, double *v)
{
    while (isspace((unsigned char)*s)) s++;
    if (!*s) return 0;
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    while (isspace((unsigned char)*end)) end++;
    return !*end && errno != ERANGE && isfinite(*v);
}

static int open_table(gn_dataset *d, const char *path, char **names, int n_names, int n_in,
                      int n_tgt, gn_err *err)
{
    if (n_in <= 0) return gn_err_set(err, GN_ECONFIG, "%s: a table needs [net] inputs (or width, height, channels)", path);
    FILE *f = fopen(path, "r");
    if (!f) return gn_err_set(err, GN_EIO, "%s: cannot open: %s", path, strerror(errno));
    d->kind = GN_SRC_TABLE;
    d->n_in = n_in;
    d->n_tgt = n_tgt;
    int cols = n_in + (n_tgt > 0 ? n_tgt : 1);
    int stride = n_in + n_tgt;
    double *vals = malloc((size_t)cols * sizeof *vals);
    char *line = NULL;
    size_t lcap = 0;
    int rc = vals ? GN_OK : gn_err_set(err, GN_ENOMEM, "out of memory");
    int lineno = 0, seen_data = 0, max_label = -1;
    int64_t cap = 0;
    while (rc == GN_OK && getline(&line, &lcap, f) >= 0) {
        lineno++;
        char *s = line;
        while (*s && isspace((unsigned char)*s)) s++;
        if (!*s || *s == '#') continue;
        int found = 0, numeric = 1;
        for (char *p = s;;) {
            char *c = strchr(p, ',');
            if (c) *c = 0;
            double v = 0;
            if (!parse_num(p, &v)) numeric = 0;
            if (found < cols) vals[found] = v;
            found++;
            if (!c) break;
            p = c + 1;
        }
        if (!numeric && !seen_data && d->n == 0) {
            seen_data = 1; /* a header line */
            continue;
        }
        seen_data = 1;
        if (found != cols) {
            rc = gn_err_set(err, GN_EFORMAT, "%s:%d: expected %d values, found %d", path, lineno,
                            cols, found);
            break;
        }
        if (!numeric) {
            rc = gn_err_set(err, GN_EFORMAT, "%s:%d: a value is not a number", path, lineno);
            break;
        }
        int label = 0;
        if (n_tgt == 0) {
            double lv = vals[n_in];
            if (lv < 0 || lv != floor(lv) || lv >= GN_MAX_CLASSES || (names && lv >= n_names)) {
                rc = gn_err_set(err, GN_EFORMAT, "%s:%d: class index %g is not an integer in [0, %d)",
                                path, lineno, lv, names ? n_names : GN_MAX_CLASSES);
                break;
            }
            label = (int)lv;
            if (label > max_label) max_label = label;
        }
        if (d->n == cap) {
            int64_t nc = cap ? 2 * cap : 256;
            float *nt = realloc(d->table, (size_t)nc * (size_t)stride * sizeof *nt);
            int *nl = nt ? realloc(d->labels, (size_t)nc * sizeof *nl) : NULL;
            if (nt) d->table = nt;
            if (!nl) {
                rc = gn_err_set(err, GN_ENOMEM, "out of memory reading %s", path);
                break;
            }
            d->labels = nl;
            cap = nc;
        }
        float *row = d->table + (size_t)d->n * stride;
        for (int k = 0; k < n_in; k++) row[k] = (float)vals[k];
        for (int k = 0; k < n_tgt; k++) row[n_in + k] = (float)vals[n_in + k];
        d->labels[d->n] = label;
        d->n++;
    }
    if (rc == GN_OK && ferror(f)) rc = gn_err_set(err, GN_EIO, "%s: read error", path);
    if (rc == GN_OK && d->n == 0) rc = gn_err_set(err, GN_EFORMAT, "%s: no rows", path);
    if (rc == GN_OK && n_tgt == 0) {
        rc = set_class_names(d, names, n_names, max_label, err);
    }
    free(vals);
    free(line);
    fclose(f);
    return rc;
}

static int ends_with_ci(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcasecmp(s + a - b, suffix);
}

int gn_dataset_open(gn_dataset *d, const char *path, const char *classes_file, char **ref_names,
                    int n_ref, int n_in, int n_tgt, gn_err *err)
{
    memset(d, 0, sizeof *d);
    char **names = NULL;
    int n_names = 0, rc = GN_OK;
    if (classes_file && *classes_file) {
        rc = read_names(classes_file, &names, &n_names, err);
        if (rc) return rc;
    }
    if (ends_with_ci(path, ".csv")) {
        rc = open_table(d, path, names, n_names, n_in, n_tgt, err);
    } else if (gn_is_dir(path)) {
        if (names)
            rc = open_folder(d, path, names, n_names, err);
        else
            rc = open_folder(d, path, ref_names, n_ref, err);
    } else {
        rc = open_list(d, path, names, n_names, err);
    }
    gn_names_free(names, n_names);
    if (rc) gn_dataset_free(d);
    return rc;
}

void gn_dataset_free(gn_dataset *d)
{
    if (d->paths)
        for (int64_t i = 0; i < d->n; i++) free(d->paths[i]);
    free(d->paths);
    free(d->labels);
    gn_names_free(d->class_names, d->n_classes);
    free(d->table);
    memset(d, 0, sizeof *d);
}
