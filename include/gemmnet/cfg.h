/* Configuration files in darknet's .cfg format: "[section]" lines, then "key=value" lines; '#'
 * and ';' start comments. The first section is [net] (or [network]); gemmnet's own sections
 * ([data], [train], [eval], [checkpoint]) may appear anywhere; every other section is one layer,
 * numbered from 0 in file order.
 *
 * Every key remembers its file and line, and whether something read it, so that a value of the
 * wrong type names file:line:key and a key nobody read is reported as unknown. */
#ifndef GEMMNET_CFG_H
#define GEMMNET_CFG_H

#include <stddef.h>
#include <stdint.h>

struct gn_err;

typedef struct gn_cfg_kv {
    char *key;
    char *val;
    const char *file; /* the config's path, or "--set" */
    int line;         /* for --set: the override's position on the command line */
    int used;
} gn_cfg_kv;

typedef struct gn_cfg_section {
    char *name;  /* lower case, without brackets; "network" is stored as "net" */
    const char *file;
    int line;
    int layer;   /* index among layer sections, or -1 for [net], [data], [eval], ... */
    gn_cfg_kv *kv;
    int n_kv, cap_kv;
    char *notes; /* "# ..." lines for the dump: file keys an override dropped; or NULL */
    char *known; /* "\nkey\n..." every key a reader asked for (getters, gn_cfg_has): the
                  * names an unknown key's suggestion is chosen from; or NULL */
} gn_cfg_section;

typedef struct gn_cfg {
    char *path;
    gn_cfg_section *sec;
    int n_sec, cap_sec;
    int n_layers;
} gn_cfg;

/* Sections that are not layers. */
int gn_cfg_is_meta_section(const char *name);

int gn_cfg_load(gn_cfg **out, const char *path, struct gn_err *err);
int gn_cfg_parse(gn_cfg **out, const char *text, const char *name, struct gn_err *err);
void gn_cfg_free(gn_cfg **cfg);

/* Applies "section.key=value": section is a name ("net", "data") or a layer index ("3").
 * A named section that does not exist yet is created (so [data] can come from --set alone).
 * The command line wins over the file: where two keys exclude each other (net.max_batches and
 * net.epochs, net.inputs and net.width/height, a convolution's pad and padding), the override
 * drops the file's key of the other side, and the dump says so in a comment. Two such keys from
 * the same source (both in the file, or both from --set) are left for the reader to refuse. */
int gn_cfg_set(gn_cfg *cfg, const char *assignment, int argpos, struct gn_err *err);

gn_cfg_section *gn_cfg_section_find(gn_cfg *cfg, const char *name);
gn_cfg_section *gn_cfg_layer(gn_cfg *cfg, int index);
gn_cfg_kv *gn_cfg_kv_find(gn_cfg_section *s, const char *key);
int gn_cfg_has(gn_cfg_section *s, const char *key);

/* Typed getters. A missing key gives def; a present one is parsed, range-checked and marked
 * used; on error the message names file, line, section and key. s may be NULL (def is used). */
int gn_cfg_int(gn_cfg_section *s, const char *key, int def, int lo, int hi, int *out,
               struct gn_err *err);
int gn_cfg_i64(gn_cfg_section *s, const char *key, int64_t def, int64_t lo, int64_t hi,
               int64_t *out, struct gn_err *err);
int gn_cfg_float(gn_cfg_section *s, const char *key, double def, double lo, double hi,
                 double *out, struct gn_err *err);
int gn_cfg_bool(gn_cfg_section *s, const char *key, int def, int *out, struct gn_err *err);
/* The returned string lives as long as the config. */
int gn_cfg_str(gn_cfg_section *s, const char *key, const char *def, const char **out,
               struct gn_err *err);
/* names is NULL-terminated; *out is the index of the matching name. */
int gn_cfg_enum(gn_cfg_section *s, const char *key, const char *const *names, int def,
                int *out, struct gn_err *err);
/* Comma-separated lists; *n receives the count (at most max). */
int gn_cfg_int_list(gn_cfg_section *s, const char *key, int *out, int max, int *n,
                    struct gn_err *err);
int gn_cfg_float_list(gn_cfg_section *s, const char *key, float *out, int max, int *n,
                      struct gn_err *err);
/* Marks keys as read without interpreting them (darknet keys gemmnet accepts and ignores). */
void gn_cfg_accept(gn_cfg_section *s, const char *const *keys);

/* The name in names[0..n) nearest to word by edit distance (case-insensitive; a swap of two
 * neighbouring letters counts one), if it is close enough to be a likely typo, else NULL. */
const char *gn_cfg_nearest(const char *word, const char *const *names, size_t n);
/* The nearest known section name for an unknown section: gemmnet's own sections and the
 * layer_types[0..n) (NULL if none is close). */
const char *gn_cfg_nearest_section(const char *name, const char *const *layer_types, size_t n);

/* Error for the first key in s (or in any section, for the _all form) that nobody read; it
 * suggests the nearest key a reader of s asked for ("did you mean 'learning_rate'?"). */
int gn_cfg_check_unused(gn_cfg_section *s, struct gn_err *err);
int gn_cfg_check_all_unused(gn_cfg *cfg, struct gn_err *err);

/* An error located at a key or section ("file:line: [section] key 'k': ..."). */
int gn_cfg_error(const gn_cfg_kv *kv, const gn_cfg_section *s, struct gn_err *err, int code,
                 const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

/* The resolved configuration (after --set) as .cfg text; the caller frees it. */
char *gn_cfg_dump(const gn_cfg *cfg);
/* FNV-1a hash of the sections and keys that define the network's shape and parameters
 * (layer sections plus net.width/height/channels/inputs), for refusing mismatched resumes. */
uint64_t gn_cfg_net_hash(const gn_cfg *cfg);

#endif
