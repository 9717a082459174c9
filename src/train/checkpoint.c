/* Checkpoints as safetensors files: the writer (atomic: temp file, fsync, rename, fsync of the
 * directory) and a reader that validates everything before it allocates or copies, because it
 * is handed arbitrary files (and will be fuzzed). See docs/checkpoints.md. */
#include "gemmnet/checkpoint.h"
#include "core/util.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CK_MAX_DIMS 8
#define CK_NAME_MAX 160
/* Integers in the JSON are doubles in cJSON: exact up to 2^53. */
#define CK_MAX_INT 9007199254740992.0

/* ---------------------------------------------------------------------------------------------
 * CRC-32 (zlib's), slicing by 8: table[k][b] is the CRC of byte b followed by k zero bytes. */

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t b = 0; b < 256; b++) {
        uint32_t c = b;
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[0][b] = c;
    }
    for (int k = 1; k < 8; k++)
        for (int b = 0; b < 256; b++)
            crc_table[k][b] = (crc_table[k - 1][b] >> 8) ^ crc_table[0][crc_table[k - 1][b] & 0xFF];
}

static uint32_t load_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint32_t gn_crc32(uint32_t crc, const void *data, size_t n)
{
    pthread_once(&crc_once, crc_init);
    const unsigned char *p = data;
    uint32_t c = ~crc;
    for (; n >= 8; n -= 8, p += 8) {
        uint32_t lo = c ^ load_le32(p), hi = load_le32(p + 4);
        c = crc_table[7][lo & 0xFF] ^ crc_table[6][(lo >> 8) & 0xFF] ^
            crc_table[5][(lo >> 16) & 0xFF] ^ crc_table[4][lo >> 24] ^ crc_table[3][hi & 0xFF] ^
            crc_table[2][(hi >> 8) & 0xFF] ^ crc_table[1][(hi >> 16) & 0xFF] ^
            crc_table[0][hi >> 24];
    }
    while (n--) c = crc_table[0][(c ^ *p++) & 0xFF] ^ (c >> 8);
    return ~c;
}

/* ---------------------------------------------------------------------------------------------
 * The in-memory form of a header, shared by the writer and the reader. */

typedef struct ck_tensor {
    char *name;
    char dtype[8];
    int ndim;
    uint64_t shape[CK_MAX_DIMS];
    uint64_t begin, end;  /* bytes, in the data section */
    const float *src;     /* writer: where the data comes from */
} ck_tensor;

struct gn_ckpt {
    ck_tensor *t;
    int n_t;
    int *by_name;         /* indices of t sorted by name */
    char **key, **val;    /* metadata, file order */
    int n_meta;
    unsigned char *data;  /* the data section */
    uint64_t data_size;
    char **skipped;
    int n_skipped;
};

static const struct {
    const char *name;
    int size;
} dtypes[] = {{"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4},
              {"I16", 2}, {"I8", 1},  {"U64", 8}, {"U32", 4},  {"U16", 2}, {"U8", 1},
              {"BOOL", 1}, {"F8_E5M2", 1}, {"F8_E4M3", 1}};

static int dtype_size(const char *name)
{
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (strcmp(dtypes[i].name, name) == 0) return dtypes[i].size;
    return 0;
}

static int host_is_le(void)
{
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

static void free_strs(char **s, int n)
{
    if (!s) return;
    for (int i = 0; i < n; i++) free(s[i]);
    free(s);
}

void gn_ckpt_close(gn_ckpt **pc)
{
    if (!pc || !*pc) return;
    gn_ckpt *c = *pc;
    if (c->t)
        for (int i = 0; i < c->n_t; i++) free(c->t[i].name);
    free(c->t);
    free(c->by_name);
    free_strs(c->key, c->n_meta);
    free_strs(c->val, c->n_meta);
    free(c->data);
    free_strs(c->skipped, c->n_skipped);
    free(c);
    *pc = NULL;
}

static void shape_str(const uint64_t *d, int ndim, char *buf, size_t n)
{
    size_t k = 0;
    buf[0] = 0;
    k += (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%llu", i ? "," : "", (unsigned long long)d[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
}

/* Strict UTF-8 (no overlongs, no surrogates, at most U+10FFFF), no NUL bytes. */
static int utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char b = s[i];
        if (b == 0) return 0;
        if (b < 0x80) {
            i++;
            continue;
        }
        int len;
        uint32_t cp, min;
        if ((b & 0xE0) == 0xC0) len = 2, cp = b & 0x1F, min = 0x80;
        else if ((b & 0xF0) == 0xE0) len = 3, cp = b & 0x0F, min = 0x800;
        else if ((b & 0xF8) == 0xF0) len = 4, cp = b & 0x07, min = 0x10000;
        else return 0;
        if (n - i < (size_t)len) return 0;
        for (int k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return 0;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
        i += (size_t)len;
    }
    return 1;
}

/* qsort has no context argument; the reader and writer run it on their own arrays, so a
 * thread-local base keeps concurrent calls apart. */
static _Thread_local const ck_tensor *tl_base;
static int by_name_cmp_tl(const void *a, const void *b)
{
    return strcmp(tl_base[*(const int *)a].name, tl_base[*(const int *)b].name);
}

static int *sorted_by_name(const ck_tensor *t, int n)
{
    int *idx = malloc((size_t)(n ? n : 1) * sizeof *idx);
    if (!idx) return NULL;
    for (int i = 0; i < n; i++) idx[i] = i;
    tl_base = t;
    qsort(idx, (size_t)n, sizeof *idx, by_name_cmp_tl);
    return idx;
}

static _Thread_local char **tl_keys;
static int by_key_cmp(const void *a, const void *b)
{
    return strcmp(tl_keys[*(const int *)a], tl_keys[*(const int *)b]);
}

static int find_tensor(const gn_ckpt *c, const char *name)
{
    int lo = 0, hi = c->n_t - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int r = strcmp(c->t[c->by_name[mid]].name, name);
        if (r == 0) return c->by_name[mid];
        if (r < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

static uint32_t crc_field(uint32_t crc, const char *s)
{
    char len[32];
    size_t n = strlen(s);
    int k = snprintf(len, sizeof len, "%zu:", n);
    crc = gn_crc32(crc, len, (size_t)k);
    return gn_crc32(crc, s, n);
}

/* The header checksum covers what the JSON says, independent of its layout and order (so a
 * file re-saved by another tool with the same contents still matches): tensors by name with
 * dtype and shape, then metadata by key, except checksum.header itself. Offsets are left out:
 * they are checked for consistency, and each tensor's own checksum catches swapped data. */
static int header_crc(const gn_ckpt *c, uint32_t *out)
{
    int *mi = malloc((size_t)(c->n_meta ? c->n_meta : 1) * sizeof *mi);
    if (!mi) return GN_ENOMEM;
    int nm = 0;
    for (int i = 0; i < c->n_meta; i++)
        if (strcmp(c->key[i], "checksum.header") != 0) mi[nm++] = i;
    tl_keys = c->key;
    qsort(mi, (size_t)nm, sizeof *mi, by_key_cmp);
    char buf[32 + 24 * CK_MAX_DIMS];
    uint32_t crc = 0;
    snprintf(buf, sizeof buf, "%d", c->n_t);
    crc = crc_field(crc, buf);
    for (int k = 0; k < c->n_t; k++) {
        const ck_tensor *t = &c->t[c->by_name[k]];
        crc = crc_field(crc, t->name);
        crc = crc_field(crc, t->dtype);
        shape_str(t->shape, t->ndim, buf, sizeof buf);
        crc = crc_field(crc, buf);
    }
    snprintf(buf, sizeof buf, "%d", nm);
    crc = crc_field(crc, buf);
    for (int k = 0; k < nm; k++) {
        crc = crc_field(crc, c->key[mi[k]]);
        crc = crc_field(crc, c->val[mi[k]]);
    }
    free(mi);
    *out = crc;
    return GN_OK;
}

static int meta_index(const gn_ckpt *c, const char *key)
{
    for (int i = 0; i < c->n_meta; i++)
        if (strcmp(c->key[i], key) == 0) return i;
    return -1;
}

const char *gn_ckpt_meta(const gn_ckpt *c, const char *key)
{
    if (!c || !key) return NULL;
    int i = meta_index(c, key);
    return i < 0 ? NULL : c->val[i];
}

int gn_ckpt_n_meta(const gn_ckpt *c) { return c ? c->n_meta : 0; }

const char *gn_ckpt_meta_key(const gn_ckpt *c, int i)
{
    return c && i >= 0 && i < c->n_meta ? c->key[i] : NULL;
}

int gn_ckpt_has(const gn_ckpt *c, const char *name)
{
    return c && name && find_tensor(c, name) >= 0;
}

int gn_ckpt_n_tensors(const gn_ckpt *c) { return c ? c->n_t : 0; }

const char *gn_ckpt_tensor(const gn_ckpt *c, int i, const char **dtype, int *ndim,
                           uint64_t shape[8])
{
    if (!c || i < 0 || i >= c->n_t) return NULL;
    const ck_tensor *t = &c->t[i];
    if (dtype) *dtype = t->dtype;
    if (ndim) *ndim = t->ndim;
    if (shape)
        for (int k = 0; k < t->ndim && k < 8; k++) shape[k] = t->shape[k];
    return t->name;
}

int gn_ckpt_n_skipped(const gn_ckpt *c) { return c ? c->n_skipped : 0; }

const char *gn_ckpt_skipped(const gn_ckpt *c, int i)
{
    return c && i >= 0 && i < c->n_skipped ? c->skipped[i] : NULL;
}

static int meta_add(gn_ckpt *c, const char *key, const char *val)
{
    char *k = gn_strdup(key), *v = gn_strdup(val);
    char **nk = realloc(c->key, (size_t)(c->n_meta + 1) * sizeof *nk);
    if (nk) c->key = nk;
    char **nv = realloc(c->val, (size_t)(c->n_meta + 1) * sizeof *nv);
    if (nv) c->val = nv;
    if (!k || !v || !nk || !nv) {
        free(k);
        free(v);
        return GN_ENOMEM;
    }
    c->key[c->n_meta] = k;
    c->val[c->n_meta] = v;
    c->n_meta++;
    return GN_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Writing. */

static int ckpt_add_tensor(gn_ckpt *c, int cap, const char *name, const gn_param *p,
                           const float *src, uint64_t *off)
{
    GN_ASSERT(c->n_t < cap);
    ck_tensor *t = &c->t[c->n_t];
    t->name = gn_strdup(name);
    if (!t->name) return GN_ENOMEM;
    c->n_t++;
    snprintf(t->dtype, sizeof t->dtype, "F32");
    t->ndim = p->ndim;
    for (int i = 0; i < p->ndim; i++) t->shape[i] = (uint64_t)p->shape[i];
    t->begin = *off;
    t->end = *off + 4 * (uint64_t)p->count;
    t->src = src;
    *off = t->end;
    return GN_OK;
}

/* Where parameter p of layer l lives in extra x (laid out as net->params or net->state). */
static float *extra_at(const gn_net *net, const gn_ckpt_extra *x, const gn_layer *l,
                       const gn_param *p)
{
    return x->of_state ? x->data + (l->state - net->state) + p->offset
                       : x->data + (l->params - net->params) + p->offset;
}

/* Builds the header of net as a gn_ckpt (data not copied: each tensor points at its source). */
static int ckpt_describe(gn_ckpt **out, const gn_net *net, const gn_ckpt_extra *x, int n_x,
                         const gn_kv *meta, int n_meta, gn_err *err)
{
    int rc = GN_OK, cap = 0;
    for (int i = 0; i < net->n_layers; i++) cap += (1 + n_x) * net->layers[i].n_par;
    gn_ckpt *c = calloc(1, sizeof *c);
    if (!c) return gn_err_set(err, GN_ENOMEM, "out of memory");
    c->t = calloc((size_t)(cap ? cap : 1), sizeof *c->t);
    if (!c->t) {
        rc = gn_err_set(err, GN_ENOMEM, "out of memory");
        goto done;
    }
    uint64_t off = 0;
    char name[CK_NAME_MAX];
    for (int i = 0; i < net->n_layers; i++) {
        const gn_layer *l = &net->layers[i];
        for (int j = 0; j < l->n_par; j++) {
            const gn_param *p = &l->par[j];
            gn_param_full_name(l, p, name, sizeof name);
            if ((rc = ckpt_add_tensor(c, cap, name, p, gn_param_data(l, p), &off))) goto oom;
        }
    }
    for (int k = 0; k < n_x; k++)
        for (int i = 0; i < net->n_layers; i++) {
            const gn_layer *l = &net->layers[i];
            for (int j = 0; j < l->n_par; j++) {
                const gn_param *p = &l->par[j];
                if (p->trainable == x[k].of_state) continue;
                char pn[CK_NAME_MAX - 64];
                gn_param_full_name(l, p, pn, sizeof pn);
                snprintf(name, sizeof name, "%.60s.%s", x[k].prefix, pn);
                if ((rc = ckpt_add_tensor(c, cap, name, p, extra_at(net, &x[k], l, p), &off)))
                    goto oom;
            }
        }
    c->data_size = off;
    c->by_name = sorted_by_name(c->t, c->n_t);
    if (!c->by_name) goto oom;
    for (int k = 1; k < c->n_t; k++)
        if (strcmp(c->t[c->by_name[k - 1]].name, c->t[c->by_name[k]].name) == 0) {
            rc = gn_err_set(err, GN_EINVAL, "two parameters are named %s",
                            c->t[c->by_name[k]].name);
            goto done;
        }

    if ((rc = meta_add(c, "format", GN_CKPT_FORMAT))) goto oom;
    if ((rc = meta_add(c, "format_version", GN_CKPT_FORMAT_VERSION))) goto oom;
    for (int i = 0; i < n_meta; i++) {
        const char *k = meta[i].key, *v = meta[i].val;
        if (!k || !v) {
            rc = gn_err_set(err, GN_EINVAL, "metadata entry %d has a NULL key or value", i);
            goto done;
        }
        if (!utf8_valid((const unsigned char *)k, strlen(k)) ||
            !utf8_valid((const unsigned char *)v, strlen(v))) {
            rc = gn_err_set(err, GN_EINVAL, "metadata entry '%.100s' is not valid UTF-8", k);
            goto done;
        }
        if (strcmp(k, "format") == 0 || strcmp(k, "format_version") == 0 ||
            strncmp(k, "checksum.", 9) == 0) {
            rc = gn_err_set(err, GN_EINVAL, "metadata key '%.100s' is reserved for gemmnet", k);
            goto done;
        }
        if (meta_index(c, k) >= 0) {
            rc = gn_err_set(err, GN_EINVAL, "metadata key '%.100s' given twice", k);
            goto done;
        }
        if ((rc = meta_add(c, k, v))) goto oom;
    }
    for (int i = 0; i < c->n_t; i++) {
        const ck_tensor *t = &c->t[i];
        char key[CK_NAME_MAX + 16], val[32];
        snprintf(key, sizeof key, "checksum.%s", t->name);
        snprintf(val, sizeof val, "crc32:%08x",
                 (unsigned)gn_crc32(0, t->src, (size_t)(t->end - t->begin)));
        if ((rc = meta_add(c, key, val))) goto oom;
    }
    uint32_t hc;
    if ((rc = header_crc(c, &hc))) goto oom;
    char val[32];
    snprintf(val, sizeof val, "crc32:%08x", (unsigned)hc);
    if ((rc = meta_add(c, "checksum.header", val))) goto oom;
    goto done;
oom:
    rc = gn_err_set(err, GN_ENOMEM, "out of memory");
done:
    if (rc) gn_ckpt_close(&c);
    *out = c;
    return rc;
}

/* The JSON header, padded with spaces to a multiple of 8 bytes. */
static char *ckpt_header_json(const gn_ckpt *c, size_t *len)
{
    char *text = NULL, *out = NULL;
    cJSON *root = cJSON_CreateObject();
    cJSON *md = cJSON_CreateObject();
    if (!root || !md) {
        cJSON_Delete(md);
        goto done;
    }
    cJSON_AddItemToObject(root, "__metadata__", md);
    for (int i = 0; i < c->n_meta; i++)
        if (!cJSON_AddStringToObject(md, c->key[i], c->val[i])) goto done;
    for (int i = 0; i < c->n_t; i++) {
        const ck_tensor *t = &c->t[i];
        cJSON *o = cJSON_CreateObject();
        if (!o) goto done;
        cJSON_AddItemToObject(root, t->name, o);
        cJSON *shape = cJSON_AddArrayToObject(o, "shape");
        cJSON *offs = cJSON_AddArrayToObject(o, "data_offsets");
        if (!cJSON_AddStringToObject(o, "dtype", t->dtype) || !shape || !offs) goto done;
        for (int d = 0; d < t->ndim; d++) {
            cJSON *v = cJSON_CreateNumber((double)t->shape[d]);
            if (!v) goto done;
            cJSON_AddItemToArray(shape, v);
        }
        cJSON *b = cJSON_CreateNumber((double)t->begin), *e = cJSON_CreateNumber((double)t->end);
        if (b) cJSON_AddItemToArray(offs, b);
        if (e) cJSON_AddItemToArray(offs, e);
        if (!b || !e) goto done;
    }
    text = cJSON_PrintUnformatted(root);
    if (!text) goto done;
    size_t n = strlen(text), padded = (n + 7) & ~(size_t)7;
    out = malloc(padded + 1);
    if (!out) goto done;
    memcpy(out, text, n);
    memset(out + n, ' ', padded - n);
    out[padded] = 0;
    *len = padded;
done:
    free(text);
    cJSON_Delete(root);
    return out;
}

int gn_ckpt_save(const char *path, const gn_net *net, const float *momentum, const gn_kv *meta,
                 int n_meta, gn_err *err)
{
    gn_ckpt_extra x = {"optimizer.momentum", (float *)momentum, 0};
    return gn_ckpt_save_extra(path, net, &x, momentum ? 1 : 0, meta, n_meta, err);
}

int gn_ckpt_save_extra(const char *path, const gn_net *net, const gn_ckpt_extra *x, int n_x,
                       const gn_kv *meta, int n_meta, gn_err *err)
{
    if (!path || !*path || !net || n_meta < 0 || (n_meta && !meta) || n_x < 0 || (n_x && !x))
        return gn_err_set(err, GN_EINVAL, "gn_ckpt_save: bad arguments");
    if (!host_is_le())
        return gn_err_set(err, GN_ENOTSUP, "checkpoints need a little-endian host");
    gn_ckpt *c = NULL;
    char *json = NULL;
    gn_atomic_file af = {0};
    int rc = ckpt_describe(&c, net, x, n_x, meta, n_meta, err);
    if (rc) return rc;
    size_t hlen = 0;
    json = ckpt_header_json(c, &hlen);
    if (!json) {
        rc = gn_err_set(err, GN_ENOMEM, "out of memory");
        goto done;
    }
    if (hlen > GN_CKPT_MAX_HEADER) {
        rc = gn_err_set(err, GN_EINVAL, "checkpoint header of %zu bytes is too large", hlen);
        goto done;
    }
    if ((rc = gn_atomic_open(&af, path, err))) goto done;
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    int ok = gn_atomic_write(&af, len8, 8) && gn_atomic_write(&af, json, hlen);
    for (int i = 0; ok && i < c->n_t; i++)
        ok = gn_atomic_write(&af, c->t[i].src, (size_t)(c->t[i].end - c->t[i].begin));
    rc = gn_atomic_commit(&af, err); /* reports a failed write */
done:
    gn_atomic_abort(&af);
    free(json);
    gn_ckpt_close(&c);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Reading: every check before the allocation it protects. */

static int json_uint(const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    if (!(d >= 0 && d <= CK_MAX_INT) || d != (double)(uint64_t)d) return 0;
    *out = (uint64_t)d;
    return 1;
}

static int parse_tensor(gn_ckpt *c, const cJSON *o, uint64_t data_size, gn_err *err)
{
    const char *name = o->string;
    ck_tensor *t = &c->t[c->n_t];
    if (!cJSON_IsObject(o))
        return gn_err_set(err, GN_EFORMAT, "tensor '%.100s' is not a JSON object", name);
    if (strlen(name) >= CK_NAME_MAX)
        return gn_err_set(err, GN_EFORMAT, "tensor name '%.100s...' is longer than %d bytes",
                          name, CK_NAME_MAX - 1);
    const cJSON *dtype = NULL, *shape = NULL, *offs = NULL, *f;
    cJSON_ArrayForEach(f, o)
    {
        if (strcmp(f->string, "dtype") == 0 && !dtype) dtype = f;
        else if (strcmp(f->string, "shape") == 0 && !shape) shape = f;
        else if (strcmp(f->string, "data_offsets") == 0 && !offs) offs = f;
        else
            return gn_err_set(err, GN_EFORMAT, "tensor '%.100s': unexpected or repeated field "
                              "'%.100s'", name, f->string);
    }
    if (!cJSON_IsString(dtype) || !cJSON_IsArray(shape) || !cJSON_IsArray(offs))
        return gn_err_set(err, GN_EFORMAT, "tensor '%.100s' needs dtype (a string), shape and "
                          "data_offsets (arrays)", name);
    int esize = dtype_size(dtype->valuestring);
    if (!esize)
        return gn_err_set(err, GN_EFORMAT, "tensor '%.100s': unknown dtype '%.20s'", name,
                          dtype->valuestring);
    int nd = cJSON_GetArraySize(shape);
    if (nd > CK_MAX_DIMS)
        return gn_err_set(err, GN_ENOTSUP, "tensor '%.100s' has %d dimensions, at most %d are "
                          "supported", name, nd, CK_MAX_DIMS);
    /* count * esize, refusing overflow: every valid size is below the file size anyway. */
    uint64_t bytes = (uint64_t)esize;
    int k = 0, overflow = 0;
    cJSON_ArrayForEach(f, shape)
    {
        if (!json_uint(f, &t->shape[k]))
            return gn_err_set(err, GN_EFORMAT, "tensor '%.100s': shape entries must be "
                              "non-negative integers", name);
        if (t->shape[k] && bytes > UINT64_MAX / t->shape[k]) overflow = 1;
        else bytes *= t->shape[k];
        k++;
    }
    if (overflow) bytes = UINT64_MAX;
    uint64_t b, e;
    if (cJSON_GetArraySize(offs) != 2 || !json_uint(cJSON_GetArrayItem(offs, 0), &b) ||
        !json_uint(cJSON_GetArrayItem(offs, 1), &e))
        return gn_err_set(err, GN_EFORMAT, "tensor '%.100s': data_offsets must be two "
                          "non-negative integers", name);
    if (b > e || e > data_size)
        return gn_err_set(err, GN_EFORMAT, "tensor '%.100s': data_offsets [%llu,%llu] out of "
                          "range (the data section has %llu bytes)", name, (unsigned long long)b,
                          (unsigned long long)e, (unsigned long long)data_size);
    char sh[32 + 24 * CK_MAX_DIMS];
    shape_str(t->shape, nd, sh, sizeof sh);
    if (e - b != bytes)
        return gn_err_set(err, GN_EFORMAT, "tensor '%.100s': %s %s needs %llu bytes, "
                          "data_offsets [%llu,%llu] hold %llu", name, dtype->valuestring, sh,
                          (unsigned long long)bytes, (unsigned long long)b,
                          (unsigned long long)e, (unsigned long long)(e - b));
    t->name = gn_strdup(name);
    if (!t->name) return gn_err_set(err, GN_ENOMEM, "out of memory");
    snprintf(t->dtype, sizeof t->dtype, "%s", dtype->valuestring);
    t->ndim = nd;
    t->begin = b;
    t->end = e;
    c->n_t++;
    return GN_OK;
}

static _Thread_local const ck_tensor *tl_off_base;
static int by_offset_cmp(const void *pa, const void *pb)
{
    const ck_tensor *a = &tl_off_base[*(const int *)pa], *b = &tl_off_base[*(const int *)pb];
    if (a->begin != b->begin) return a->begin < b->begin ? -1 : 1;
    if (a->end != b->end) return a->end < b->end ? -1 : 1;
    return 0;
}

/* Tensors must tile the data section: contiguous, no gap, no overlap, nothing left over. */
static int check_tiling(const gn_ckpt *c, gn_err *err)
{
    int *idx = malloc((size_t)(c->n_t ? c->n_t : 1) * sizeof *idx);
    if (!idx) return gn_err_set(err, GN_ENOMEM, "out of memory");
    for (int i = 0; i < c->n_t; i++) idx[i] = i;
    tl_off_base = c->t;
    qsort(idx, (size_t)c->n_t, sizeof *idx, by_offset_cmp);
    uint64_t pos = 0;
    int rc = GN_OK;
    for (int k = 0; k < c->n_t && !rc; k++) {
        const ck_tensor *t = &c->t[idx[k]];
        if (t->begin > pos)
            rc = gn_err_set(err, GN_EFORMAT, "a gap in the data: bytes %llu to %llu belong to "
                            "no tensor (next is '%.100s')", (unsigned long long)pos,
                            (unsigned long long)t->begin, t->name);
        else if (t->begin < pos)
            rc = gn_err_set(err, GN_EFORMAT, "tensor '%.100s' (bytes %llu to %llu) overlaps the "
                            "one before it", t->name, (unsigned long long)t->begin,
                            (unsigned long long)t->end);
        pos = t->end;
    }
    if (!rc && pos != c->data_size)
        rc = gn_err_set(err, GN_EFORMAT, "the data section has %llu bytes, the tensors cover "
                        "%llu", (unsigned long long)c->data_size, (unsigned long long)pos);
    free(idx);
    return rc;
}

static int parse_header(gn_ckpt *c, const char *h, size_t n, gn_err *err)
{
    if (n < 2 || h[0] != '{')
        return gn_err_set(err, GN_EFORMAT, "the header does not start with '{'");
    if (!utf8_valid((const unsigned char *)h, n))
        return gn_err_set(err, GN_EFORMAT, "the header is not UTF-8 text");
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(h, n, &end, 0);
    if (!root) {
        /* cJSON leaves the error position in end (its global error pointer is not per thread) */
        const char *at = end;
        size_t pos = at && at >= h && at <= h + n ? (size_t)(at - h) : 0;
        return gn_err_set(err, GN_EFORMAT, "the header is not valid JSON (near byte %zu)", pos);
    }
    int rc = GN_OK;
    for (const char *p = end; p && p < h + n; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            rc = gn_err_set(err, GN_EFORMAT, "the header has data after its JSON object "
                            "(byte %zu)", (size_t)(p - h));
            goto done;
        }
    if (!cJSON_IsObject(root)) {
        rc = gn_err_set(err, GN_EFORMAT, "the header is not a JSON object");
        goto done;
    }
    int n_items = cJSON_GetArraySize(root);
    c->t = calloc((size_t)(n_items ? n_items : 1), sizeof *c->t);
    if (!c->t) {
        rc = gn_err_set(err, GN_ENOMEM, "out of memory");
        goto done;
    }
    const cJSON *item, *md = NULL;
    cJSON_ArrayForEach(item, root)
    {
        if (strcmp(item->string, "__metadata__") == 0) {
            if (md) {
                rc = gn_err_set(err, GN_EFORMAT, "__metadata__ appears twice");
                goto done;
            }
            md = item;
            if (!cJSON_IsObject(md)) {
                rc = gn_err_set(err, GN_EFORMAT, "__metadata__ is not a JSON object");
                goto done;
            }
            const cJSON *kv;
            cJSON_ArrayForEach(kv, md)
            {
                if (!cJSON_IsString(kv)) {
                    rc = gn_err_set(err, GN_EFORMAT, "metadata '%.100s' is not a string",
                                    kv->string);
                    goto done;
                }
                if (meta_index(c, kv->string) >= 0) {
                    rc = gn_err_set(err, GN_EFORMAT, "metadata key '%.100s' appears twice",
                                    kv->string);
                    goto done;
                }
                if (meta_add(c, kv->string, kv->valuestring)) {
                    rc = gn_err_set(err, GN_ENOMEM, "out of memory");
                    goto done;
                }
            }
            continue;
        }
        if ((rc = parse_tensor(c, item, c->data_size, err))) goto done;
    }
    c->by_name = sorted_by_name(c->t, c->n_t);
    if (!c->by_name) {
        rc = gn_err_set(err, GN_ENOMEM, "out of memory");
        goto done;
    }
    for (int k = 1; k < c->n_t; k++)
        if (strcmp(c->t[c->by_name[k - 1]].name, c->t[c->by_name[k]].name) == 0) {
            rc = gn_err_set(err, GN_EFORMAT, "tensor '%.100s' appears twice",
                            c->t[c->by_name[k]].name);
            goto done;
        }
    rc = check_tiling(c, err);
done:
    cJSON_Delete(root);
    return rc;
}

static int parse_crc(const char *s, uint32_t *out)
{
    if (strncmp(s, "crc32:", 6) != 0 || strlen(s) != 14) return 0;
    uint32_t v = 0;
    for (int i = 6; i < 14; i++) {
        char ch = s[i];
        int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
        if (d < 0) return 0;
        v = v << 4 | (uint32_t)d;
    }
    *out = v;
    return 1;
}

/* gemmnet files must carry every checksum. A file with any checksum.* key counts as one too, so
 * that one damaged byte (in "format" and in the key "checksum.header", say) cannot turn a gemmnet
 * file into an unchecked foreign one. */
static int verify_checksums(gn_ckpt *c, gn_err *err)
{
    const char *fmt = gn_ckpt_meta(c, "format");
    int ours = fmt && strcmp(fmt, GN_CKPT_FORMAT) == 0;
    if (ours) {
        const char *ver = gn_ckpt_meta(c, "format_version");
        if (!ver || strcmp(ver, GN_CKPT_FORMAT_VERSION) != 0)
            return gn_err_set(err, GN_ENOTSUP, "checkpoint format_version %.20s, this gemmnet "
                              "reads %s", ver ? ver : "(missing)", GN_CKPT_FORMAT_VERSION);
    }
    for (int i = 0; i < c->n_meta && !ours; i++) ours = strncmp(c->key[i], "checksum.", 9) == 0;
    if (!ours) return GN_OK;
    uint32_t want, got;
    const char *hs = gn_ckpt_meta(c, "checksum.header");
    if (!hs || !parse_crc(hs, &want))
        return gn_err_set(err, GN_EFORMAT, "checksum.header is %s", hs ? "malformed" : "missing");
    if (header_crc(c, &got)) return gn_err_set(err, GN_ENOMEM, "out of memory");
    if (got != want)
        return gn_err_set(err, GN_EFORMAT, "header checksum mismatch: the names, shapes or "
                          "metadata are damaged");
    for (int i = 0; i < c->n_t; i++) {
        const ck_tensor *t = &c->t[i];
        char key[CK_NAME_MAX + 16];
        snprintf(key, sizeof key, "checksum.%s", t->name);
        const char *s = gn_ckpt_meta(c, key);
        if (!s || !parse_crc(s, &want))
            return gn_err_set(err, GN_EFORMAT, "%s: checksum %s", t->name,
                              s ? "malformed" : "missing");
        got = gn_crc32(0, c->data + t->begin, (size_t)(t->end - t->begin));
        if (got != want)
            return gn_err_set(err, GN_EFORMAT, "%s: checksum mismatch (crc32 %08x, recorded "
                              "%08x): the tensor's data is damaged", t->name, (unsigned)got,
                              (unsigned)want);
    }
    for (int i = 0; i < c->n_meta; i++)
        if (strncmp(c->key[i], "checksum.", 9) == 0 && strcmp(c->key[i], "checksum.header") &&
            find_tensor(c, c->key[i] + 9) < 0)
            return gn_err_set(err, GN_EFORMAT, "a checksum for tensor '%.100s', which is not "
                              "in the file", c->key[i] + 9);
    return GN_OK;
}

static int read_exact(FILE *f, void *p, size_t n) { return n == 0 || fread(p, 1, n, f) == n; }

int gn_ckpt_open(gn_ckpt **out, const char *path, gn_err *err)
{
    if (!out || !path) return gn_err_set(err, GN_EINVAL, "gn_ckpt_open: bad arguments");
    *out = NULL;
    if (!host_is_le())
        return gn_err_set(err, GN_ENOTSUP, "checkpoints need a little-endian host");
    int rc = GN_OK;
    char *hdr = NULL;
    gn_ckpt *c = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return gn_err_set(err, GN_EIO, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = gn_err_set(err, GN_EIO, "%s is not a regular file", path);
        goto done;
    }
    uint64_t size = (uint64_t)st.st_size;
    unsigned char len8[8];
    if (size < 8) {
        rc = gn_err_set(err, GN_EFORMAT, "%s: %s (%llu bytes): not a safetensors file", path,
                        size ? "too short" : "empty file", (unsigned long long)size);
        goto done;
    }
    if (!read_exact(f, len8, 8)) {
        rc = gn_err_set(err, GN_EIO, "%s: cannot read the header length", path);
        goto done;
    }
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)len8[i] << (8 * i);
    if (hlen > size - 8) {
        rc = gn_err_set(err, GN_EFORMAT, "%s: header length %llu exceeds the file (%llu bytes): "
                        "not a safetensors file, or truncated", path, (unsigned long long)hlen,
                        (unsigned long long)size);
        goto done;
    }
    if (hlen > GN_CKPT_MAX_HEADER) {
        rc = gn_err_set(err, GN_EFORMAT, "%s: header length %llu is over the limit of %u", path,
                        (unsigned long long)hlen, GN_CKPT_MAX_HEADER);
        goto done;
    }
    c = calloc(1, sizeof *c);
    hdr = malloc((size_t)hlen + 1);
    if (!c || !hdr) {
        rc = gn_err_set(err, GN_ENOMEM, "out of memory");
        goto done;
    }
    if (!read_exact(f, hdr, (size_t)hlen)) {
        rc = gn_err_set(err, GN_EIO, "%s: cannot read the header (truncated?)", path);
        goto done;
    }
    hdr[hlen] = 0;
    c->data_size = size - 8 - hlen;
    if ((rc = parse_header(c, hdr, (size_t)hlen, err))) goto wrap;
    /* The data section's size is the file's, already checked against every tensor. */
    if (c->data_size > SIZE_MAX - 1) {
        rc = gn_err_set(err, GN_ENOMEM, "%s: too large for this machine", path);
        goto done;
    }
    c->data = malloc((size_t)(c->data_size ? c->data_size : 1));
    if (!c->data) {
        rc = gn_err_set(err, GN_ENOMEM, "%s: out of memory for %llu bytes of data", path,
                        (unsigned long long)c->data_size);
        goto done;
    }
    if (!read_exact(f, c->data, (size_t)c->data_size)) {
        rc = gn_err_set(err, GN_EIO, "%s: cannot read the data (truncated?)", path);
        goto done;
    }
    if ((rc = verify_checksums(c, err))) goto wrap;
    goto done;
wrap:
    gn_err_wrap(err, "%s", path);
done:
    free(hdr);
    fclose(f);
    if (rc) gn_ckpt_close(&c);
    *out = c;
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Loading into a network. */

typedef struct ck_copy {
    float *dst;
    const ck_tensor *t;
} ck_copy;

static int add_skipped(gn_ckpt *c, const char *msg)
{
    char *s = gn_strdup(msg);
    char **ns = realloc(c->skipped, (size_t)(c->n_skipped + 1) * sizeof *ns);
    if (ns) c->skipped = ns;
    if (!s || !ns) {
        free(s);
        return GN_ENOMEM;
    }
    c->skipped[c->n_skipped++] = s;
    return GN_OK;
}

/* Checks one tensor against the network's parameter: *out is the tensor to copy, or NULL when
 * it is skipped. */
static int match_tensor(gn_ckpt *c, const char *name, const gn_param *p, int flags,
                        const ck_tensor **out, gn_err *err)
{
    *out = NULL;
    int i = find_tensor(c, name);
    if (i < 0) return gn_err_set(err, GN_ESHAPE, "%s: missing from the checkpoint", name);
    const ck_tensor *t = &c->t[i];
    if (strcmp(t->dtype, "F32") != 0)
        return gn_err_set(err, GN_EFORMAT, "%s: dtype %s, expected F32", name, t->dtype);
    int same = t->ndim == p->ndim;
    for (int d = 0; same && d < p->ndim; d++) same = t->shape[d] == (uint64_t)p->shape[d];
    if (!same) {
        uint64_t ps[4];
        for (int d = 0; d < p->ndim; d++) ps[d] = (uint64_t)p->shape[d];
        char a[32 + 24 * CK_MAX_DIMS], b[32 + 24 * CK_MAX_DIMS], msg[CK_NAME_MAX + 512];
        shape_str(t->shape, t->ndim, a, sizeof a);
        shape_str(ps, p->ndim, b, sizeof b);
        snprintf(msg, sizeof msg, "%s: shape %s in the checkpoint, %s in the network", name, a,
                 b);
        if (flags & GN_CKPT_SKIP_MISMATCH) {
            char line[sizeof msg + 16];
            snprintf(line, sizeof line, "%s (skipped)", msg);
            if (add_skipped(c, line)) return gn_err_set(err, GN_ENOMEM, "out of memory");
            return GN_OK;
        }
        return gn_err_set(err, GN_ESHAPE, "%s", msg);
    }
    *out = t;
    return GN_OK;
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int gn_ckpt_load_net(gn_ckpt *c, gn_net *net, float *momentum, int flags, gn_err *err)
{
    gn_ckpt_extra x = {"optimizer.momentum", momentum, 0};
    return gn_ckpt_load_extra(c, net, &x, momentum ? 1 : 0, flags, err);
}

/* Training state of a run (optimizer state, the EMA): never "not in the network". */
static int is_training_state(const char *name)
{
    return !strncmp(name, "optimizer.", 10) || !strncmp(name, "ema.", 4);
}

int gn_ckpt_load_extra(gn_ckpt *c, gn_net *net, const gn_ckpt_extra *x, int n_x, int flags,
                       gn_err *err)
{
    if (!c || !net || n_x < 0 || (n_x && !x))
        return gn_err_set(err, GN_EINVAL, "gn_ckpt_load_net: bad arguments");
    free_strs(c->skipped, c->n_skipped);
    c->skipped = NULL;
    c->n_skipped = 0;
    int cap = 0;
    for (int i = 0; i < net->n_layers; i++) cap += (1 + n_x) * net->layers[i].n_par;
    ck_copy *plan = malloc((size_t)(cap ? cap : 1) * sizeof *plan);
    char **expected = calloc((size_t)(cap ? cap : 1), sizeof *expected);
    int n_plan = 0, n_exp = 0, rc = GN_OK;
    if (!plan || !expected) goto oom;
    char name[CK_NAME_MAX];
    /* pass 0: the network's own tensors; pass k > 0: extra k-1 */
    for (int pass = 0; pass <= n_x; pass++)
        for (int i = 0; i < net->n_layers; i++) {
            gn_layer *l = &net->layers[i];
            for (int j = 0; j < l->n_par; j++) {
                const gn_param *p = &l->par[j];
                char pn[CK_NAME_MAX - 64];
                gn_param_full_name(l, p, pn, sizeof pn);
                float *dst;
                if (pass == 0) {
                    snprintf(name, sizeof name, "%s", pn);
                    dst = gn_param_data(l, p);
                } else {
                    const gn_ckpt_extra *e = &x[pass - 1];
                    if (p->trainable == e->of_state) continue;
                    snprintf(name, sizeof name, "%.60s.%s", e->prefix, pn);
                    dst = extra_at(net, e, l, p);
                }
                if (!(expected[n_exp] = gn_strdup(name))) goto oom;
                n_exp++;
                const ck_tensor *t = NULL;
                if ((rc = match_tensor(c, name, p, flags, &t, err))) {
                    if (pass > 0 && !gn_ckpt_has(c, name))
                        gn_err_wrap(err, "%s was asked for", x[pass - 1].prefix);
                    goto done;
                }
                if (t) plan[n_plan++] = (ck_copy){dst, t};
            }
        }
    qsort(expected, (size_t)n_exp, sizeof *expected, str_cmp);
    for (int i = 0; i < c->n_t; i++) {
        const char *tn = c->t[i].name;
        if (bsearch(&tn, expected, (size_t)n_exp, sizeof *expected, str_cmp)) continue;
        if (is_training_state(tn)) continue;
        if (!(flags & GN_CKPT_SKIP_MISMATCH)) {
            rc = gn_err_set(err, GN_ESHAPE, "%s: in the checkpoint but not in the network", tn);
            goto done;
        }
        snprintf(name, sizeof name, "%.100s: not in the network (ignored)", tn);
        if (add_skipped(c, name)) goto oom;
    }
    for (int k = 0; k < n_plan; k++)
        memcpy(plan[k].dst, c->data + plan[k].t->begin,
               (size_t)(plan[k].t->end - plan[k].t->begin));
    goto done;
oom:
    rc = gn_err_set(err, GN_ENOMEM, "out of memory");
done:
    free(plan);
    free_strs(expected, n_exp);
    return rc;
}
