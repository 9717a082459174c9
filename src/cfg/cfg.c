/* The darknet-style .cfg reader, --set overrides, typed getters and unknown-key checks. */
#include "gemmnet/gemmnet.h"
#include "core/util.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

static const char *const meta_sections[] = {"net", "data", "train", "eval", "checkpoint", "mpi", NULL};

int gn_cfg_is_meta_section(const char *name)
{
    for (int i = 0; meta_sections[i]; i++)
        if (!strcmp(name, meta_sections[i])) return 1;
    return 0;
}

static char *trim(char *s)
{
    while (*s && isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = 0;
    return s;
}

static void lower(char *s)
{
    for (; *s; s++) *s = (char)tolower((unsigned char)*s);
}

void gn_cfg_free(gn_cfg **pcfg)
{
    if (!pcfg || !*pcfg) return;
    gn_cfg *cfg = *pcfg;
    for (int i = 0; i < cfg->n_sec; i++) {
        gn_cfg_section *s = &cfg->sec[i];
        for (int k = 0; k < s->n_kv; k++) {
            free(s->kv[k].key);
            free(s->kv[k].val);
        }
        free(s->kv);
        free(s->name);
        free(s->notes);
        free(s->known);
    }
    free(cfg->sec);
    free(cfg->path);
    free(cfg);
    *pcfg = NULL;
}

static gn_cfg_section *add_section(gn_cfg *cfg, const char *name, int line)
{
    if (cfg->n_sec == cfg->cap_sec) {
        int cap = cfg->cap_sec ? cfg->cap_sec * 2 : 16;
        gn_cfg_section *n = realloc(cfg->sec, (size_t)cap * sizeof *n);
        if (!n) return NULL;
        cfg->sec = n;
        cfg->cap_sec = cap;
    }
    gn_cfg_section *s = &cfg->sec[cfg->n_sec];
    memset(s, 0, sizeof *s);
    s->name = gn_strdup(name);
    if (!s->name) return NULL;
    lower(s->name);
    if (!strcmp(s->name, "network")) strcpy(s->name, "net");
    s->file = cfg->path;
    s->line = line;
    s->layer = gn_cfg_is_meta_section(s->name) ? -1 : cfg->n_layers++;
    cfg->n_sec++;
    return s;
}

static gn_cfg_kv *add_kv(gn_cfg_section *s, const char *key, const char *val, const char *file,
                         int line)
{
    if (s->n_kv == s->cap_kv) {
        int cap = s->cap_kv ? s->cap_kv * 2 : 8;
        gn_cfg_kv *n = realloc(s->kv, (size_t)cap * sizeof *n);
        if (!n) return NULL;
        s->kv = n;
        s->cap_kv = cap;
    }
    gn_cfg_kv *kv = &s->kv[s->n_kv];
    kv->key = gn_strdup(key);
    kv->val = gn_strdup(val);
    if (!kv->key || !kv->val) {
        free(kv->key);
        free(kv->val);
        return NULL;
    }
    lower(kv->key);
    kv->file = file;
    kv->line = line;
    kv->used = 0;
    s->n_kv++;
    return kv;
}

int gn_cfg_parse(gn_cfg **out, const char *text, const char *name, gn_err *err)
{
    *out = NULL;
    gn_cfg *cfg = calloc(1, sizeof *cfg);
    if (!cfg) return gn_err_set(err, GN_ENOMEM, "out of memory");
    cfg->path = gn_strdup(name ? name : "<config>");
    if (!cfg->path) {
        free(cfg);
        return gn_err_set(err, GN_ENOMEM, "out of memory");
    }
    int rc = GN_OK, lineno = 0;
    gn_cfg_section *cur = NULL;
    const char *p = text;
    char *buf = NULL;
    size_t cap = 0;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        lineno++;
        if (len + 1 > cap) {
            cap = len + 1;
            char *nb = realloc(buf, cap);
            if (!nb) {
                rc = gn_err_set(err, GN_ENOMEM, "out of memory");
                goto done;
            }
            buf = nb;
        }
        memcpy(buf, p, len);
        buf[len] = 0;
        p = nl ? nl + 1 : p + len;
        if (memchr(buf, 0, len)) {
            rc = gn_err_set(err, GN_ECONFIG, "%s:%d: a NUL byte: not a text config file",
                            cfg->path, lineno);
            goto done;
        }
        /* Comments: a line starting with '#' or ';', and anything after " #"/" ;". */
        char *line = trim(buf);
        if (!*line || *line == '#' || *line == ';') continue;
        for (char *c = line; *c; c++)
            if ((*c == '#' || *c == ';') && c > line && isspace((unsigned char)c[-1])) {
                *c = 0;
                break;
            }
        line = trim(line);
        if (*line == '[') {
            char *close = strchr(line, ']');
            if (!close || close[1] != 0 || close == line + 1) {
                rc = gn_err_set(err, GN_ECONFIG, "%s:%d: malformed section header '%s'",
                                cfg->path, lineno, line);
                goto done;
            }
            *close = 0;
            char *nm = trim(line + 1);
            for (char *c = nm; *c; c++)
                if (!isalnum((unsigned char)*c) && *c != '_' && *c != '-') {
                    rc = gn_err_set(err, GN_ECONFIG, "%s:%d: malformed section name '[%s]'",
                                    cfg->path, lineno, nm);
                    goto done;
                }
            cur = add_section(cfg, nm, lineno);
            if (!cur) {
                rc = gn_err_set(err, GN_ENOMEM, "out of memory");
                goto done;
            }
            continue;
        }
        char *eq = strchr(line, '=');
        if (!eq) {
            rc = gn_err_set(err, GN_ECONFIG,
                            "%s:%d: expected 'key=value' or '[section]', found '%.80s'",
                            cfg->path, lineno, line);
            goto done;
        }
        *eq = 0;
        char *key = trim(line), *val = trim(eq + 1);
        if (!*key) {
            rc = gn_err_set(err, GN_ECONFIG, "%s:%d: a value without a key", cfg->path, lineno);
            goto done;
        }
        if (!cur) {
            rc = gn_err_set(err, GN_ECONFIG, "%s:%d: key '%s' comes before any [section]",
                            cfg->path, lineno, key);
            goto done;
        }
        gn_cfg_kv *dup = gn_cfg_kv_find(cur, key);
        if (dup) {
            rc = gn_err_set(err, GN_ECONFIG, "%s:%d: [%s] key '%s' repeats line %d", cfg->path,
                            lineno, cur->name, key, dup->line);
            goto done;
        }
        if (!add_kv(cur, key, val, cfg->path, lineno)) {
            rc = gn_err_set(err, GN_ENOMEM, "out of memory");
            goto done;
        }
    }
    if (cfg->n_sec == 0) {
        rc = gn_err_set(err, GN_ECONFIG, "%s: no sections: not a network config", cfg->path);
        goto done;
    }
    if (strcmp(cfg->sec[0].name, "net")) {
        rc = gn_err_set(err, GN_ECONFIG, "%s:%d: the first section must be [net], found [%s]",
                        cfg->path, cfg->sec[0].line, cfg->sec[0].name);
        goto done;
    }
    for (int i = 1; i < cfg->n_sec; i++)
        if (!strcmp(cfg->sec[i].name, "net") ||
            (cfg->sec[i].layer < 0 && gn_cfg_section_find(cfg, cfg->sec[i].name) != &cfg->sec[i])) {
            rc = gn_err_set(err, GN_ECONFIG, "%s:%d: a second [%s] section", cfg->path,
                            cfg->sec[i].line, cfg->sec[i].name);
            goto done;
        }
done:
    free(buf);
    if (rc) gn_cfg_free(&cfg);
    *out = cfg;
    return rc;
}

int gn_cfg_load(gn_cfg **out, const char *path, gn_err *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return gn_err_set(err, GN_EIO, "%s: cannot open: %s", path, strerror(errno));
    char *text = NULL;
    size_t n = 0, cap = 0;
    int rc = GN_OK;
    for (;;) {
        if (cap - n < 4096) {
            if (cap > (64u << 20)) {
                rc = gn_err_set(err, GN_ECONFIG, "%s: larger than 64 MiB: not a config", path);
                goto done;
            }
            cap = cap ? cap * 2 : 8192;
            char *nt = realloc(text, cap + 1);
            if (!nt) {
                rc = gn_err_set(err, GN_ENOMEM, "out of memory");
                goto done;
            }
            text = nt;
        }
        size_t got = fread(text + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    if (ferror(f)) {
        rc = gn_err_set(err, GN_EIO, "%s: read error", path);
        goto done;
    }
    text[n] = 0;
    if (strlen(text) != n) {
        rc = gn_err_set(err, GN_ECONFIG, "%s: contains NUL bytes: not a text config file", path);
        goto done;
    }
    rc = gn_cfg_parse(out, text, path, err);
done:
    fclose(f);
    free(text);
    return rc;
}

gn_cfg_section *gn_cfg_section_find(gn_cfg *cfg, const char *name)
{
    for (int i = 0; i < cfg->n_sec; i++)
        if (!strcmp(cfg->sec[i].name, name)) return &cfg->sec[i];
    return NULL;
}

gn_cfg_section *gn_cfg_layer(gn_cfg *cfg, int index)
{
    for (int i = 0; i < cfg->n_sec; i++)
        if (cfg->sec[i].layer == index) return &cfg->sec[i];
    return NULL;
}

gn_cfg_kv *gn_cfg_kv_find(gn_cfg_section *s, const char *key)
{
    if (!s) return NULL;
    for (int i = 0; i < s->n_kv; i++)
        if (!strcasecmp(s->kv[i].key, key)) return &s->kv[i];
    return NULL;
}

static void note_known(gn_cfg_section *s, const char *key);

int gn_cfg_has(gn_cfg_section *s, const char *key)
{
    note_known(s, key);
    return gn_cfg_kv_find(s, key) != NULL;
}

/* Optimal string alignment distance (Levenshtein plus swaps of neighbours), case-insensitive,
 * for names up to 63 characters. */
static int edit_distance(const char *a, const char *b)
{
    size_t m = strlen(a), n = strlen(b);
    if (m > 63 || n > 63) return 1 << 20;
    int d[64][64];
    for (size_t i = 0; i <= m; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= n; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= m; i++)
        for (size_t j = 1; j <= n; j++) {
            int ca = tolower((unsigned char)a[i - 1]), cb = tolower((unsigned char)b[j - 1]);
            int v = d[i - 1][j - 1] + (ca != cb);
            v = GN_MIN(v, d[i - 1][j] + 1);
            v = GN_MIN(v, d[i][j - 1] + 1);
            if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
                tolower((unsigned char)a[i - 2]) == cb)
                v = GN_MIN(v, d[i - 2][j - 2] + 1);
            d[i][j] = v;
        }
    return d[m][n];
}

const char *gn_cfg_nearest(const char *word, const char *const *names, size_t n)
{
    /* close enough to be a typo: one edit in short names, up to a third of a long one's */
    int limit = GN_MAX(1, GN_MIN(3, (int)strlen(word) / 3)), best_d = limit + 1;
    const char *best = NULL;
    for (size_t i = 0; i < n; i++) {
        int dist = edit_distance(word, names[i]);
        if (dist < best_d && strcasecmp(word, names[i])) {
            best_d = dist;
            best = names[i];
        }
    }
    return best;
}

const char *gn_cfg_nearest_section(const char *name, const char *const *layer_types, size_t n)
{
    const char *cands[96];
    size_t k = 0;
    for (int i = 0; meta_sections[i] && k < 96; i++) cands[k++] = meta_sections[i];
    for (size_t i = 0; i < n && k < 96; i++) cands[k++] = layer_types[i];
    return gn_cfg_nearest(name, cands, k);
}

/* Keys that exclude each other, by section type: the readers refuse both sides given at once
 * (options.c, net.c) or let one silently win (convolutional_layer.c: pad over padding). */
static const struct {
    const char *section;
    const char *side[2][3];
} exclusive[] = {
    {"net", {{"max_batches"}, {"epochs"}}},
    {"net", {{"inputs"}, {"width", "height"}}},
    {"convolutional", {{"pad"}, {"padding"}}},
};

static int append_note(gn_cfg_section *s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static int append_note(gn_cfg_section *s, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    size_t old = s->notes ? strlen(s->notes) : 0;
    char *n = realloc(s->notes, old + strlen(line) + 2);
    if (!n) return GN_ENOMEM;
    s->notes = n;
    sprintf(n + old, "%s\n", line);
    return GN_OK;
}

/* key was just set from the command line in s: drop the file's keys it excludes. */
static int drop_excluded(gn_cfg_section *s, const char *key, gn_err *err)
{
    for (size_t g = 0; g < sizeof exclusive / sizeof exclusive[0]; g++) {
        if (strcmp(exclusive[g].section, s->name)) continue;
        for (int side = 0; side < 2; side++) {
            int mine = 0;
            for (int j = 0; j < 3 && exclusive[g].side[side][j]; j++)
                mine |= !strcmp(exclusive[g].side[side][j], key);
            if (!mine) continue;
            for (int j = 0; j < 3 && exclusive[g].side[!side][j]; j++) {
                gn_cfg_kv *kv = gn_cfg_kv_find(s, exclusive[g].side[!side][j]);
                if (!kv || !strcmp(kv->file, "--set")) continue;
                /* no argument position: the note is compared when a run resumes */
                if (append_note(s, "# %s=%s (%s:%d) dropped: --set gives %s", kv->key, kv->val,
                                kv->file, kv->line, key))
                    return gn_err_set(err, GN_ENOMEM, "out of memory");
                free(kv->key);
                free(kv->val);
                s->n_kv--;
                memmove(kv, kv + 1, (size_t)(s->kv + s->n_kv - kv) * sizeof *kv);
            }
        }
    }
    return GN_OK;
}

int gn_cfg_set(gn_cfg *cfg, const char *assignment, int argpos, gn_err *err)
{
    const char *eq = strchr(assignment, '=');
    const char *dot = strchr(assignment, '.');
    if (!eq || !dot || dot > eq || dot == assignment || dot + 1 == eq)
        return gn_err_set(err, GN_ECONFIG,
                          "--set %s: expected section.key=value (e.g. net.width=112 or "
                          "3.filters=64)", assignment);
    char sec[64], key[128];
    size_t ls = (size_t)(dot - assignment), lk = (size_t)(eq - dot - 1);
    if (ls >= sizeof sec || lk >= sizeof key)
        return gn_err_set(err, GN_ECONFIG, "--set %s: section or key too long", assignment);
    memcpy(sec, assignment, ls);
    sec[ls] = 0;
    memcpy(key, dot + 1, lk);
    key[lk] = 0;
    char *k = trim(key), *sn = trim(sec);
    lower(sn);
    if (!strcmp(sn, "network")) strcpy(sn, "net");
    const char *val = eq + 1;
    gn_cfg_section *s = NULL;
    char *endp;
    errno = 0;
    long idx = strtol(sn, &endp, 10);
    if (*sn && *endp == 0) {
        if (errno || idx < 0 || idx >= cfg->n_layers)
            return gn_err_set(err, GN_ECONFIG, "--set %s: there is no layer %s (the config has "
                              "layers 0..%d)", assignment, sn, cfg->n_layers - 1);
        s = gn_cfg_layer(cfg, (int)idx);
    } else {
        s = gn_cfg_section_find(cfg, sn);
        if (!s) {
            if (!gn_cfg_is_meta_section(sn)) {
                const char *near = gn_cfg_nearest_section(sn, NULL, 0);
                return gn_err_set(err, GN_ECONFIG,
                                  "--set %s: unknown section '%s'%s%s%s (use net, data, train, "
                                  "eval, checkpoint, or a layer index)", assignment, sn,
                                  near ? "; did you mean '" : "", near ? near : "",
                                  near ? "'?" : "");
            }
            s = add_section(cfg, sn, 0);
            if (!s) return gn_err_set(err, GN_ENOMEM, "out of memory");
            s->file = "--set";
        }
    }
    gn_cfg_kv *kv = gn_cfg_kv_find(s, k);
    if (kv) {
        char *nv = gn_strdup(val);
        if (!nv) return gn_err_set(err, GN_ENOMEM, "out of memory");
        free(kv->val);
        kv->val = nv;
        kv->file = "--set";
        kv->line = argpos;
        return drop_excluded(s, kv->key, err);
    }
    if (!(kv = add_kv(s, k, val, "--set", argpos)))
        return gn_err_set(err, GN_ENOMEM, "out of memory");
    return drop_excluded(s, kv->key, err);
}

static void where(const gn_cfg_kv *kv, const gn_cfg_section *s, char *buf, size_t n)
{
    char sec[96] = "";
    if (s) {
        if (s->layer >= 0)
            snprintf(sec, sizeof sec, "[%s] (layer %d)", s->name, s->layer);
        else
            snprintf(sec, sizeof sec, "[%s]", s->name);
    }
    if (kv && !strcmp(kv->file, "--set"))
        snprintf(buf, n, "--set (argument %d): %s key '%s'", kv->line, sec, kv->key);
    else if (kv)
        snprintf(buf, n, "%s:%d: %s key '%s'", kv->file, kv->line, sec, kv->key);
    else if (s)
        snprintf(buf, n, "%s:%d: %s", s->file ? s->file : "?", s->line, sec);
    else
        snprintf(buf, n, "config");
}

int gn_cfg_error(const gn_cfg_kv *kv, const gn_cfg_section *s, gn_err *err, int code,
                 const char *fmt, ...)
{
    char loc[512], msg[512];
    where(kv, s, loc, sizeof loc);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return gn_err_set(err, code, "%s: %s", loc, msg);
}

static int parse_i64(const char *v, int64_t *out)
{
    char *end;
    errno = 0;
    while (isspace((unsigned char)*v)) v++;
    if (!*v) return -1;
    long long x = strtoll(v, &end, 10);
    if (errno) return -1;
    /* darknet writes some integers as "1e6" or "10.0"; accept exact integral floats */
    if (*end == '.' || *end == 'e' || *end == 'E') {
        double d = strtod(v, &end);
        if (*end || !isfinite(d) || d != floor(d) || fabs(d) > 9e18) return -1;
        x = (long long)d;
    }
    while (isspace((unsigned char)*end)) end++;
    if (*end) return -1;
    *out = x;
    return 0;
}

static int parse_f64(const char *v, double *out)
{
    char *end;
    errno = 0;
    while (isspace((unsigned char)*v)) v++;
    if (!*v) return -1;
    double d = strtod(v, &end);
    while (isspace((unsigned char)*end)) end++;
    if (*end || !isfinite(d)) return -1;
    *out = d;
    return 0;
}

/* Remembers that a reader of s asked for key: a known key of that section. */
static void note_known(gn_cfg_section *s, const char *key)
{
    if (!s) return;
    size_t kl = strlen(key), old = s->known ? strlen(s->known) : 0;
    if (s->known) {
        for (const char *p = strstr(s->known, key); p; p = strstr(p + 1, key))
            if (p[-1] == '\n' && p[kl] == '\n') return;
    }
    char *n = realloc(s->known, old + kl + (old ? 2 : 3));
    if (!n) return; /* only the suggestion is lost */
    if (!old) *n = '\n', n[1] = 0, old = 1;
    sprintf(n + old, "%s\n", key);
    s->known = n;
}

static gn_cfg_kv *get_kv(gn_cfg_section *s, const char *key)
{
    note_known(s, key);
    gn_cfg_kv *kv = gn_cfg_kv_find(s, key);
    if (kv) kv->used = 1;
    return kv;
}

int gn_cfg_i64(gn_cfg_section *s, const char *key, int64_t def, int64_t lo, int64_t hi,
               int64_t *out, gn_err *err)
{
    gn_cfg_kv *kv = get_kv(s, key);
    if (!kv) {
        *out = def;
        return GN_OK;
    }
    int64_t x;
    if (!*kv->val) return gn_cfg_error(kv, s, err, GN_ECONFIG, "missing value");
    if (parse_i64(kv->val, &x))
        return gn_cfg_error(kv, s, err, GN_ECONFIG, "'%s' is not an integer", kv->val);
    if (x < lo || x > hi)
        return gn_cfg_error(kv, s, err, GN_ECONFIG, "%lld is out of range [%lld, %lld]",
                            (long long)x, (long long)lo, (long long)hi);
    *out = x;
    return GN_OK;
}

int gn_cfg_int(gn_cfg_section *s, const char *key, int def, int lo, int hi, int *out, gn_err *err)
{
    int64_t x;
    int rc = gn_cfg_i64(s, key, def, lo, hi, &x, err);
    if (rc == GN_OK) *out = (int)x;
    return rc;
}

int gn_cfg_float(gn_cfg_section *s, const char *key, double def, double lo, double hi,
                 double *out, gn_err *err)
{
    gn_cfg_kv *kv = get_kv(s, key);
    if (!kv) {
        *out = def;
        return GN_OK;
    }
    double x;
    if (!*kv->val) return gn_cfg_error(kv, s, err, GN_ECONFIG, "missing value");
    if (parse_f64(kv->val, &x))
        return gn_cfg_error(kv, s, err, GN_ECONFIG, "'%s' is not a number", kv->val);
    if (x < lo || x > hi)
        return gn_cfg_error(kv, s, err, GN_ECONFIG, "%g is out of range [%g, %g]", x, lo, hi);
    *out = x;
    return GN_OK;
}

int gn_cfg_bool(gn_cfg_section *s, const char *key, int def, int *out, gn_err *err)
{
    gn_cfg_kv *kv = get_kv(s, key);
    if (!kv) {
        *out = def;
        return GN_OK;
    }
    const char *v = kv->val;
    if (!strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes")) *out = 1;
    else if (!strcmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "no")) *out = 0;
    else if (!*v) return gn_cfg_error(kv, s, err, GN_ECONFIG, "missing value");
    else return gn_cfg_error(kv, s, err, GN_ECONFIG, "'%s' is not 0/1/true/false", v);
    return GN_OK;
}

int gn_cfg_str(gn_cfg_section *s, const char *key, const char *def, const char **out, gn_err *err)
{
    gn_cfg_kv *kv = get_kv(s, key);
    if (!kv) {
        *out = def;
        return GN_OK;
    }
    if (!*kv->val) return gn_cfg_error(kv, s, err, GN_ECONFIG, "missing value");
    *out = kv->val;
    return GN_OK;
}

int gn_cfg_enum(gn_cfg_section *s, const char *key, const char *const *names, int def, int *out,
                gn_err *err)
{
    gn_cfg_kv *kv = get_kv(s, key);
    if (!kv) {
        *out = def;
        return GN_OK;
    }
    if (!*kv->val) return gn_cfg_error(kv, s, err, GN_ECONFIG, "missing value");
    for (int i = 0; names[i]; i++)
        if (!strcasecmp(kv->val, names[i])) {
            *out = i;
            return GN_OK;
        }
    char list[400] = "";
    for (int i = 0; names[i]; i++) {
        if (i) strncat(list, ", ", sizeof list - strlen(list) - 1);
        strncat(list, names[i], sizeof list - strlen(list) - 1);
    }
    return gn_cfg_error(kv, s, err, GN_ECONFIG, "'%s' is not one of: %s", kv->val, list);
}

static int list_generic(gn_cfg_section *s, const char *key, int is_int, void *out, int max, int *n,
                        gn_err *err)
{
    *n = 0;
    gn_cfg_kv *kv = get_kv(s, key);
    if (!kv) return GN_OK;
    if (!*kv->val) return gn_cfg_error(kv, s, err, GN_ECONFIG, "missing value");
    const char *p = kv->val;
    char item[64];
    while (*p) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        if (len >= sizeof item)
            return gn_cfg_error(kv, s, err, GN_ECONFIG, "list item too long");
        memcpy(item, p, len);
        item[len] = 0;
        if (*n >= max)
            return gn_cfg_error(kv, s, err, GN_ECONFIG, "more than %d values", max);
        if (is_int) {
            int64_t x;
            if (parse_i64(item, &x) || x < INT_MIN || x > INT_MAX)
                return gn_cfg_error(kv, s, err, GN_ECONFIG, "'%s' is not an integer",
                                    trim(item));
            ((int *)out)[*n] = (int)x;
        } else {
            double x;
            if (parse_f64(item, &x))
                return gn_cfg_error(kv, s, err, GN_ECONFIG, "'%s' is not a number", trim(item));
            ((float *)out)[*n] = (float)x;
        }
        (*n)++;
        p = c ? c + 1 : p + len;
        if (c && !*p) return gn_cfg_error(kv, s, err, GN_ECONFIG, "list ends with ','");
    }
    return GN_OK;
}

int gn_cfg_int_list(gn_cfg_section *s, const char *key, int *out, int max, int *n, gn_err *err)
{
    return list_generic(s, key, 1, out, max, n, err);
}

int gn_cfg_float_list(gn_cfg_section *s, const char *key, float *out, int max, int *n,
                      gn_err *err)
{
    return list_generic(s, key, 0, out, max, n, err);
}

void gn_cfg_accept(gn_cfg_section *s, const char *const *keys)
{
    for (int i = 0; keys[i]; i++) get_kv(s, keys[i]);
}

/* The known key of s nearest to key, copied to buf; 0 if none is close. */
static int nearest_known(const gn_cfg_section *s, const char *key, char *buf, size_t n)
{
    const char *names[256];
    char copy[4096];
    size_t k = 0;
    if (!s->known || strlen(s->known) >= sizeof copy) return 0;
    strcpy(copy, s->known);
    for (char *save = NULL, *t = strtok_r(copy, "\n", &save); t && k < 256;
         t = strtok_r(NULL, "\n", &save))
        names[k++] = t;
    const char *near = gn_cfg_nearest(key, names, k);
    if (near) snprintf(buf, n, "%s", near);
    return near != NULL;
}

int gn_cfg_check_unused(gn_cfg_section *s, gn_err *err)
{
    if (!s) return GN_OK;
    char near[128];
    for (int i = 0; i < s->n_kv; i++)
        if (!s->kv[i].used) {
            if (nearest_known(s, s->kv[i].key, near, sizeof near))
                return gn_cfg_error(&s->kv[i], s, err, GN_ECONFIG,
                                    "unknown key; did you mean '%s'?", near);
            return gn_cfg_error(&s->kv[i], s, err, GN_ECONFIG, "unknown key");
        }
    return GN_OK;
}

int gn_cfg_check_all_unused(gn_cfg *cfg, gn_err *err)
{
    for (int i = 0; i < cfg->n_sec; i++) {
        int rc = gn_cfg_check_unused(&cfg->sec[i], err);
        if (rc) return rc;
    }
    return GN_OK;
}

char *gn_cfg_dump(const gn_cfg *cfg)
{
    size_t cap = 256;
    for (int i = 0; i < cfg->n_sec; i++) {
        cap += strlen(cfg->sec[i].name) + 4 + (cfg->sec[i].notes ? strlen(cfg->sec[i].notes) : 0);
        for (int k = 0; k < cfg->sec[i].n_kv; k++)
            cap += strlen(cfg->sec[i].kv[k].key) + strlen(cfg->sec[i].kv[k].val) + 2;
    }
    char *out = malloc(cap), *p = out;
    if (!out) return NULL;
    for (int i = 0; i < cfg->n_sec; i++) {
        const gn_cfg_section *s = &cfg->sec[i];
        p += sprintf(p, "%s[%s]\n", i ? "\n" : "", s->name);
        for (int k = 0; k < s->n_kv; k++) p += sprintf(p, "%s=%s\n", s->kv[k].key, s->kv[k].val);
        if (s->notes) p += sprintf(p, "%s", s->notes);
    }
    *p = 0;
    return out;
}

static uint64_t fnv(uint64_t h, const char *s)
{
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ull;
    }
    h ^= 0xff;
    h *= 0x100000001b3ull;
    return h;
}

uint64_t gn_cfg_net_hash(const gn_cfg *cfg)
{
    static const char *const net_keys[] = {"width", "height", "channels", "inputs", NULL};
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < cfg->n_sec; i++) {
        const gn_cfg_section *s = &cfg->sec[i];
        if (s->layer < 0 && strcmp(s->name, "net")) continue;
        h = fnv(h, s->name);
        for (int k = 0; k < s->n_kv; k++) {
            int take = s->layer >= 0;
            for (int j = 0; !take && net_keys[j]; j++) take = !strcmp(s->kv[k].key, net_keys[j]);
            /* Initial-value keys do not change the network's shape. */
            if (s->layer >= 0 && !strcmp(s->kv[k].key, "init_weights")) take = 0;
            if (s->layer >= 0 && !strcmp(s->kv[k].key, "init_bias")) take = 0;
            if (!take) continue;
            h = fnv(h, s->kv[k].key);
            h = fnv(h, s->kv[k].val);
        }
    }
    return h;
}
