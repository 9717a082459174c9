/* darknet .weights files: reading them into a net, writing a net as one, and telling them from
 * safetensors checkpoints by content.
 *
 * The format (darknet's parser.c; little-endian, float32): int32 major, minor, revision; then
 * `seen` (images trained on) as uint64 when major*10+minor >= 2 and both are below 1000, else as
 * int32; then, for each layer in config order, its values with no names or shapes:
 *   [convolutional] biases[K]; with batch_normalize scales[K], rolling_mean[K],
 *                   rolling_variance[K]; then weights[K][C/groups][size][size]
 *   [connected]     biases[out], weights[out][in] (stored [in][out] when major or minor is above
 *                   1000, darknet's "transposed" files)
 *   [batchnorm]     scales[C], rolling_mean[C], rolling_variance[C] (its biases are not stored)
 * Every other layer type of darknet's classifiers has no values. The file says nothing about the
 * layers, so the net decides how many values each holds; a file for another config shows up as
 * too short or too long.
 *
 * gemmnet's names for them: darknet's biases are bias, or bn.bias with batch norm (darknet adds
 * them after normalizing, and its convolution then has no bias of its own: PyTorch's
 * Conv2d(bias=False) + BatchNorm2d); scales are bn.weight; rolling_mean / rolling_variance are
 * bn.running_mean / bn.running_var; the convolution weights have PyTorch's layout already. */
#include "gemmnet/checkpoint.h"
#include "gemmnet/data.h"
#include "gemmnet/gemmnet.h"
#include "gemmnet/interop.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DN_HEADER_MAX 20 /* 3 x int32 + uint64 seen */

/* One run of values in the file: count floats of a parameter (NULL: zeros, or values that must
 * be zero when read), optionally stored transposed as rows x cols. */
typedef struct dn_slot {
    const char *name; /* gemmnet's tensor name, for messages */
    float *data;
    size_t count;
    int rows, cols;   /* transposed: the file holds [rows][cols] of a [cols][rows] tensor */
    int transposed;
    int must_be_zero; /* data == NULL: the file's values are read but must be 0 */
    int variance;     /* must not be negative */
} dn_slot;

enum { DN_MAX_SLOTS = 6 };

static gn_param *find_param(const gn_layer *l, const char *name)
{
    for (int i = 0; i < l->n_par; i++)
        if (!strcmp(l->par[i].name, name)) return (gn_param *)&l->par[i];
    return NULL;
}

static void add_slot(dn_slot *s, int *n, const gn_layer *l, const char *name, size_t count)
{
    gn_param *p = find_param(l, name);
    s[*n] = (dn_slot){.name = name, .data = p ? gn_param_data(l, p) : NULL,
                      .count = p ? p->count : count};
    s[*n].variance = strstr(name, "running_var") != NULL;
    (*n)++;
}

/* The runs of values layer l holds in a darknet file, in file order; 0 runs for a layer without
 * values. GN_ENOTSUP for a layer with values that darknet's format has no layout for. */
static int layer_slots(const gn_layer *l, int transposed, dn_slot *s, int *n, gn_err *err)
{
    *n = 0;
    const char *type = l->ops->section;
    if (!strcmp(type, "convolutional")) {
        gn_param *w = find_param(l, "weight");
        if (!w) goto unsupported;
        size_t k = (size_t)w->shape[0];
        if (find_param(l, "bn.weight")) {
            add_slot(s, n, l, "bn.bias", k);
            add_slot(s, n, l, "bn.weight", k);
            add_slot(s, n, l, "bn.running_mean", k);
            add_slot(s, n, l, "bn.running_var", k);
        } else {
            add_slot(s, n, l, "bias", k);
        }
        add_slot(s, n, l, "weight", 0);
    } else if (!strcmp(type, "connected")) {
        gn_param *w = find_param(l, "weight");
        if (!w || w->ndim != 2) goto unsupported;
        add_slot(s, n, l, "bias", (size_t)w->shape[0]);
        if (!s[0].data) s[0].must_be_zero = 1; /* bias=0: darknet always stores biases */
        add_slot(s, n, l, "weight", 0);
        if (transposed) {
            s[1].transposed = 1;
            s[1].rows = w->shape[1];
            s[1].cols = w->shape[0];
        }
    } else if (!strcmp(type, "batchnorm")) {
        add_slot(s, n, l, "bn.weight", 0);
        add_slot(s, n, l, "bn.running_mean", 0);
        add_slot(s, n, l, "bn.running_var", 0);
    } else if (l->n_par > 0) {
        goto unsupported;
    }
    for (int i = 0; i < *n; i++)
        if (!s[i].data && !s[i].must_be_zero) goto unsupported;
    return GN_OK;
unsupported:
    return gn_err_set(err, GN_ENOTSUP, "layer %d [%s]: darknet's .weights has no layout for "
                      "this layer's parameters", l->index, type);
}

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void wr32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static float rdf(const unsigned char *p)
{
    uint32_t u = rd32(p);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Reads and checks the header; *hdr = its length. */
static int read_header(const unsigned char *b, size_t n, const char *name, gn_darknet_info *in,
                       size_t *hdr, gn_err *err)
{
    if (n < 12)
        return gn_err_set(err, GN_EFORMAT, "%s: %zu bytes, too short for a darknet .weights "
                          "header", name, n);
    int32_t major = (int32_t)rd32(b), minor = (int32_t)rd32(b + 4), rev = (int32_t)rd32(b + 8);
    in->major = major;
    in->minor = minor;
    in->revision = rev;
    in->first_missing = -1;
    /* darknet writes 0.1.x (older) and 0.2.x; above 1000 marks its transposed files */
    int ma = major > 1000 ? major - 1000 : major, mi = minor > 1000 ? minor - 1000 : minor;
    if (major < 0 || minor < 0 || rev < 0 || major >= 2000 || minor >= 2000 || ma > 1 ||
        mi > 9 || rev > 999)
        return gn_err_set(err, GN_EFORMAT, "%s: darknet .weights version %d.%d.%d is not one "
                          "gemmnet reads (0.x.y and 1.x.y with x < 10, y < 1000; 1000 added to "
                          "major or minor for transposed files)", name, (int)major, (int)minor,
                          (int)rev);
    in->transposed = major > 1000 || minor > 1000;
    int wide = major * 10 + minor >= 2 && major < 1000 && minor < 1000;
    *hdr = wide ? 20 : 16;
    if (n < *hdr)
        return gn_err_set(err, GN_EFORMAT, "%s: truncated in the header (version %d.%d.%d needs "
                          "%zu bytes, the file has %zu)", name, (int)major, (int)minor, (int)rev,
                          *hdr, n);
    in->seen = wide ? (uint64_t)rd32(b + 12) | (uint64_t)rd32(b + 16) << 32 : rd32(b + 12);
    return GN_OK;
}

int gn_darknet_weights_read(const void *buf, size_t n, const char *name, gn_net *net, int flags,
                            gn_darknet_info *info, gn_err *err)
{
    if (!buf && n) return gn_err_set(err, GN_EINVAL, "gn_darknet_weights_read: no buffer");
    if (!name) name = "(weights)";
    const unsigned char *b = buf;
    gn_darknet_info in;
    size_t off = 0;
    int rc = read_header(b, n, name, &in, &off, err);
    if (rc) return rc;
    /* Pass 1 checks sizes and values; pass 2 copies. */
    for (int pass = 0; pass < 2; pass++) {
        size_t pos = off;
        for (int li = 0; li < net->n_layers; li++) {
            const gn_layer *l = &net->layers[li];
            dn_slot s[DN_MAX_SLOTS];
            int ns;
            if ((rc = layer_slots(l, in.transposed, s, &ns, err))) return rc;
            if (!ns) continue;
            if (pos == n && (flags & GN_CKPT_SKIP_MISMATCH)) {
                in.first_missing = li;
                break;
            }
            for (int i = 0; i < ns; i++) {
                size_t bytes = s[i].count * sizeof(float);
                if (n - pos < bytes)
                    return gn_err_set(err, GN_EFORMAT, "%s: truncated: the file ends in layer %d "
                                      "[%s] (%s: %zu values needed, %zu bytes left); a file for "
                                      "another config?", name, li, l->ops->section, s[i].name,
                                      s[i].count, n - pos);
                const unsigned char *p = b + pos;
                if (pass == 0) {
                    for (size_t j = 0; j < s[i].count; j++) {
                        float v = rdf(p + 4 * j);
                        if (!isfinite(v) || (s[i].variance && v < 0) ||
                            (s[i].must_be_zero && v != 0))
                            return gn_err_set(err, GN_EFORMAT, "%s: layer %d [%s] %s[%zu] is %g "
                                              "(%s)", name, li, l->ops->section, s[i].name, j,
                                              (double)v,
                                              !isfinite(v) ? "not finite"
                                              : s[i].variance ? "a negative variance"
                                                              : "the layer has no bias (bias=0)");
                    }
                } else if (s[i].data && s[i].transposed) {
                    for (int r = 0; r < s[i].rows; r++)
                        for (int c = 0; c < s[i].cols; c++)
                            s[i].data[(size_t)c * s[i].rows + r] =
                                rdf(p + 4 * ((size_t)r * s[i].cols + c));
                } else if (s[i].data) {
                    for (size_t j = 0; j < s[i].count; j++) s[i].data[j] = rdf(p + 4 * j);
                }
                pos += bytes;
            }
            /* darknet's [batchnorm] has no stored bias: it is 0 */
            if (pass == 1 && !strcmp(l->ops->section, "batchnorm")) {
                gn_param *beta = find_param(l, "bn.bias");
                if (beta) memset(gn_param_data(l, beta), 0, beta->count * sizeof(float));
            }
        }
        if (pass == 0 && pos != n)
            return gn_err_set(err, GN_EFORMAT, "%s: %zu bytes after the last layer's values "
                              "(the net holds %zu bytes of values, the file %zu): a file for "
                              "another config?", name, n - pos, pos - off, n - off);
    }
    net->seen = in.seen;
    if (info) *info = in;
    return GN_OK;
}

/* The whole file in memory (checked against SIZE_MAX and the file's own size). */
static int slurp(const char *path, unsigned char **out, size_t *n, gn_err *err)
{
    *out = NULL;
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return gn_err_set(err, GN_EIO, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    int rc = GN_OK;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 0 ||
        (uint64_t)st.st_size > SIZE_MAX / 2) {
        rc = gn_err_set(err, GN_EIO, "%s: not a regular file of a readable size", path);
        goto done;
    }
    *n = (size_t)st.st_size;
    *out = malloc(*n ? *n : 1);
    if (!*out) {
        rc = gn_err_set(err, GN_ENOMEM, "%s: out of memory for %zu bytes", path, *n);
        goto done;
    }
    if (*n && fread(*out, 1, *n, f) != *n) rc = gn_err_set(err, GN_EIO, "cannot read %s", path);
done:
    fclose(f);
    if (rc) {
        free(*out);
        *out = NULL;
    }
    return rc;
}

int gn_darknet_weights_load(const char *path, gn_net *net, int flags, gn_darknet_info *info,
                            gn_err *err)
{
    unsigned char *buf;
    size_t n;
    int rc = slurp(path, &buf, &n, err);
    if (!rc) rc = gn_darknet_weights_read(buf, n, path, net, flags, info, err);
    free(buf);
    return rc;
}

/* Writes n bytes to path atomically: "<path>.tmp.<pid>", fsync, rename, fsync of the directory. */
static int write_atomic(const char *path, const unsigned char *b, size_t n, gn_err *err)
{
    gn_atomic_file af;
    int rc = gn_atomic_open(&af, path, err);
    if (rc) return rc;
    gn_atomic_write(&af, b, n);
    return gn_atomic_commit(&af, err); /* reports a failed write */
}

int gn_darknet_weights_save(const char *path, const gn_net *net, gn_err *err)
{
    if (!path || !*path || !net) return gn_err_set(err, GN_EINVAL, "gn_darknet_weights_save: bad arguments");
    /* Sizes and refusals first, then the bytes in memory, then one atomic write. */
    size_t total = 20;
    for (int li = 0; li < net->n_layers; li++) {
        const gn_layer *l = &net->layers[li];
        dn_slot s[DN_MAX_SLOTS];
        int ns, rc;
        if ((rc = layer_slots(l, 0, s, &ns, err))) return rc;
        for (int i = 0; i < ns; i++) total += s[i].count * sizeof(float);
        if (!strcmp(l->ops->section, "batchnorm")) {
            gn_param *beta = find_param(l, "bn.bias");
            const float *v = beta ? gn_param_data(l, beta) : NULL;
            for (size_t j = 0; v && j < beta->count; j++)
                if (v[j] != 0)
                    return gn_err_set(err, GN_ENOTSUP, "layer %d [batchnorm]: bn.bias[%zu] is %g; "
                                      "darknet's .weights does not store a [batchnorm] bias (it "
                                      "is 0 there)", li, j, (double)v[j]);
        }
    }
    unsigned char *b = malloc(total);
    if (!b) return gn_err_set(err, GN_ENOMEM, "out of memory for %zu bytes", total);
    wr32(b, 0);
    wr32(b + 4, 2);
    wr32(b + 8, 0);
    wr32(b + 12, (uint32_t)net->seen);
    wr32(b + 16, (uint32_t)(net->seen >> 32));
    size_t pos = 20;
    for (int li = 0; li < net->n_layers; li++) {
        dn_slot s[DN_MAX_SLOTS];
        int ns;
        layer_slots(&net->layers[li], 0, s, &ns, NULL);
        for (int i = 0; i < ns; i++) {
            for (size_t j = 0; j < s[i].count; j++) {
                uint32_t u = 0;
                if (s[i].data) memcpy(&u, &s[i].data[j], sizeof u);
                wr32(b + pos + 4 * j, u);
            }
            pos += s[i].count * sizeof(float);
        }
    }
    int rc = write_atomic(path, b, total, err);
    free(b);
    return rc;
}

int gn_weights_kind_of(const char *path, gn_weights_kind *kind, gn_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return gn_err_set(err, GN_EIO, "cannot open %s: %s", path, strerror(errno));
    unsigned char h[9];
    size_t got = fread(h, 1, sizeof h, f);
    struct stat st;
    int ok = fstat(fileno(f), &st) == 0;
    fclose(f);
    if (!ok) return gn_err_set(err, GN_EIO, "cannot stat %s", path);
    uint64_t hlen = 0;
    for (int i = 0; i < 8 && got >= 8; i++) hlen |= (uint64_t)h[i] << (8 * i);
    if (got == 9 && h[8] == '{' && hlen >= 2 && hlen <= (uint64_t)st.st_size - 8) {
        *kind = GN_WEIGHTS_CHECKPOINT;
        return GN_OK;
    }
    if (got >= 9 && st.st_size >= 16) {
        *kind = GN_WEIGHTS_DARKNET;
        return GN_OK;
    }
    return gn_err_set(err, GN_EFORMAT, "%s: %lld bytes, neither a safetensors checkpoint nor a "
                      "darknet .weights file", path, (long long)st.st_size);
}

int gn_weights_load(gn_net *net, const char *path, int flags, gn_ckpt **ck, gn_weights_kind *kind,
                    gn_darknet_info *dk, gn_err *err)
{
    gn_weights_kind k;
    gn_ckpt *c = NULL;
    if (ck) *ck = NULL;
    int rc = gn_weights_kind_of(path, &k, err);
    if (rc) return rc;
    if (kind) *kind = k;
    if (k == GN_WEIGHTS_DARKNET) return gn_darknet_weights_load(path, net, flags, dk, err);
    rc = gn_ckpt_open(&c, path, err);
    if (!rc) rc = gn_ckpt_load_net(c, net, NULL, flags, err);
    const char *seen = rc ? NULL : gn_ckpt_meta(c, "seen");
    if (seen) net->seen = strtoull(seen, NULL, 10);
    if (!rc && ck) *ck = c;
    else gn_ckpt_close(&c);
    return rc;
}

int gn_weights_input_convention(gn_data_opts *d, const char *weights_path, gn_err *err)
{
    if (!weights_path) return GN_OK;
    gn_weights_kind k;
    int rc = gn_weights_kind_of(weights_path, &k, err);
    if (rc) return rc;
    if (k == GN_WEIGHTS_DARKNET) {
        gn_data_opts_darknet_input(d);
        return GN_OK;
    }
    /* a checkpoint of a run that trained with darknet's convention says so */
    gn_ckpt *c = NULL;
    if ((rc = gn_ckpt_open(&c, weights_path, err))) return rc;
    const char *conv = gn_ckpt_meta(c, "input_convention");
    if (conv && !strcmp(conv, "darknet")) gn_data_opts_darknet_input(d);
    gn_ckpt_close(&c);
    return GN_OK;
}
