/* A reader for the reference files in safetensors format: an 8-byte little-endian header
 * length, a JSON header {"name": {"dtype", "shape", "data_offsets": [begin, end]}, ...,
 * "__metadata__": {string: string}}, then the raw little-endian data. F32 and I32 only.
 *
 * ref_file_open validates the whole header (dtypes, shapes against byte counts, offsets inside
 * the data) so a lookup afterwards cannot read out of bounds. Test-only code: errors go into
 * the caller's message buffer. */
#ifndef GN_TEST_REF_READER_H
#define GN_TEST_REF_READER_H

#include <cjson/cJSON.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REF_MAX_DIM 8

typedef struct ref_tensor {
    const char *name; /* points into the JSON tree */
    int is_int;       /* I32 (else F32) */
    int ndim;
    int shape[REF_MAX_DIM];
    size_t count;
    const void *data; /* 4-byte aligned, count elements */
} ref_tensor;

typedef struct ref_file {
    cJSON *header;
    cJSON *meta; /* the "__metadata__" object, or NULL */
    unsigned char *data;
    size_t data_len;
    ref_tensor *t;
    int n;
} ref_file;

static inline void ref_file_close(ref_file **pf)
{
    if (!pf || !*pf) return;
    ref_file *f = *pf;
    cJSON_Delete(f->header);
    free(f->data);
    free(f->t);
    free(f);
    *pf = NULL;
}

static inline int ref_host_is_le(void)
{
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* Returns 0 on success; on failure a message in msg and *out NULL. */
static inline int ref_file_open(ref_file **out, const char *path, char *msg, size_t msg_len)
{
    *out = NULL;
    int rc = -1;
    FILE *fp = NULL;
    char *hdr = NULL;
    ref_file *f = calloc(1, sizeof *f);
    if (!f) {
        snprintf(msg, msg_len, "out of memory");
        goto done;
    }
    if (!ref_host_is_le()) {
        snprintf(msg, msg_len, "the reference files are little-endian; this host is not");
        goto done;
    }
    fp = fopen(path, "rb");
    if (!fp) {
        snprintf(msg, msg_len, "%.400s: cannot open", path);
        goto done;
    }
    unsigned char lenb[8];
    if (fread(lenb, 1, 8, fp) != 8) {
        snprintf(msg, msg_len, "%.400s: too short for a safetensors file", path);
        goto done;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | lenb[i];
    if (fseek(fp, 0, SEEK_END) != 0) {
        snprintf(msg, msg_len, "%.400s: cannot seek", path);
        goto done;
    }
    long fsize = ftell(fp);
    if (fsize < 0 || hlen == 0 || hlen > (uint64_t)fsize - 8 || fseek(fp, 8, SEEK_SET) != 0) {
        snprintf(msg, msg_len, "%.400s: header length %llu does not fit the file (%ld bytes)", path,
                 (unsigned long long)hlen, fsize);
        goto done;
    }
    hdr = malloc((size_t)hlen);
    f->data_len = (size_t)((uint64_t)fsize - 8 - hlen);
    f->data = malloc(f->data_len ? f->data_len : 1); /* malloc's alignment suits floats */
    if (!hdr || !f->data) {
        snprintf(msg, msg_len, "out of memory");
        goto done;
    }
    if (fread(hdr, 1, (size_t)hlen, fp) != (size_t)hlen ||
        fread(f->data, 1, f->data_len, fp) != f->data_len) {
        snprintf(msg, msg_len, "%.400s: read error", path);
        goto done;
    }
    f->header = cJSON_ParseWithLength(hdr, (size_t)hlen);
    if (!cJSON_IsObject(f->header)) {
        snprintf(msg, msg_len, "%.400s: the header is not a JSON object", path);
        goto done;
    }
    int n = cJSON_GetArraySize(f->header);
    f->t = calloc((size_t)n + 1, sizeof *f->t);
    if (!f->t) {
        snprintf(msg, msg_len, "out of memory");
        goto done;
    }
    const cJSON *e;
    cJSON_ArrayForEach(e, f->header)
    {
        if (!strcmp(e->string, "__metadata__")) {
            if (!cJSON_IsObject(e)) {
                snprintf(msg, msg_len, "%.400s: __metadata__ is not an object", path);
                goto done;
            }
            f->meta = (cJSON *)e;
            continue;
        }
        ref_tensor *t = &f->t[f->n];
        t->name = e->string;
        const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
        const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
        const cJSON *of = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
        if (!cJSON_IsString(dt) || !cJSON_IsArray(sh) || !cJSON_IsArray(of) ||
            cJSON_GetArraySize(of) != 2 || cJSON_GetArraySize(sh) > REF_MAX_DIM) {
            snprintf(msg, msg_len, "%.400s: tensor '%s': malformed entry", path, t->name);
            goto done;
        }
        if (!strcmp(dt->valuestring, "F32"))
            t->is_int = 0;
        else if (!strcmp(dt->valuestring, "I32"))
            t->is_int = 1;
        else {
            snprintf(msg, msg_len, "%.400s: tensor '%s': dtype %s is not supported", path, t->name,
                     dt->valuestring);
            goto done;
        }
        t->count = 1;
        const cJSON *d;
        cJSON_ArrayForEach(d, sh)
        {
            if (!cJSON_IsNumber(d) || d->valuedouble < 0 || d->valuedouble > 1e9) {
                snprintf(msg, msg_len, "%.400s: tensor '%s': bad shape", path, t->name);
                goto done;
            }
            t->shape[t->ndim++] = d->valueint;
            t->count *= (size_t)d->valueint;
        }
        double b = cJSON_GetArrayItem(of, 0)->valuedouble, en = cJSON_GetArrayItem(of, 1)->valuedouble;
        if (b < 0 || en < b || en > (double)f->data_len || (size_t)b % 4 != 0 ||
            (size_t)(en - b) != 4 * t->count) {
            snprintf(msg, msg_len, "%.400s: tensor '%s': data_offsets [%.0f, %.0f] do not fit its "
                     "shape or the file", path, t->name, b, en);
            goto done;
        }
        t->data = f->data + (size_t)b;
        f->n++;
    }
    rc = 0;
done:
    if (fp) fclose(fp);
    free(hdr);
    if (rc)
        ref_file_close(&f);
    else
        *out = f;
    return rc;
}

static inline const ref_tensor *ref_find(const ref_file *f, const char *name)
{
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->t[i].name, name)) return &f->t[i];
    return NULL;
}

/* Element i as int / float (through memcpy: the data is raw bytes). */
static inline int32_t ref_i32_at(const ref_tensor *t, size_t i)
{
    int32_t v;
    float fv;
    if (t->is_int) {
        memcpy(&v, (const unsigned char *)t->data + 4 * i, 4);
        return v;
    }
    memcpy(&fv, (const unsigned char *)t->data + 4 * i, 4);
    return (int32_t)fv;
}
static inline float ref_f32_at(const ref_tensor *t, size_t i)
{
    float v;
    if (t->is_int) return (float)ref_i32_at(t, i);
    memcpy(&v, (const unsigned char *)t->data + 4 * i, 4);
    return v;
}

/* A metadata string, or NULL. */
static inline const char *ref_meta(const ref_file *f, const char *key)
{
    const cJSON *v = f->meta ? cJSON_GetObjectItemCaseSensitive(f->meta, key) : NULL;
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

#endif
