/* ONNX export: the network in evaluation mode as an ONNX model (opset 13), built as protobuf-c
 * messages of ONNX's own schema (onnx.proto, compiled by protoc-c at build time) and written
 * atomically. docs/interop.md has the mapping; in short:
 *
 *   graph input  "input"  float32 [N, C, H, W], N dynamic ("N"): the tensor the net's first
 *                layer reads (after the [data] normalization, which stays outside the model)
 *   graph output "output" float32 [N, D]: the last layer's output flattened, D = C*H*W; for a
 *                classifier ending in [softmax] (and perhaps [cost]) the probabilities
 *
 *   [convolutional]  Conv (+ BatchNormalization) (+ activation)
 *   [connected]      (Flatten) Gemm, transB=1 (+ activation)
 *   [maxpool]        MaxPool, pads = [padding/2, rest]: darknet's total padding, asymmetric
 *   [avgpool]        GlobalAveragePool, or AveragePool with count_include_pad=1
 *   [shortcut]       (Slice, Pad: darknet's mapping of different shapes) (Mul) Add
 *                    (+ activation)
 *   [route]          Concat on channels; one input: the same tensor
 *   [batchnorm]      BatchNormalization;  [activation] its activation
 *   [softmax]        Flatten, (Mul 1/T), (Reshape to groups) Softmax on the last axis
 *   [crop]           Slice of the centre window (evaluation), (Mul scale) (Add shift)
 *   [dropout], [cost] nothing (identity in evaluation mode)
 *   activations      linear: none, relu: Relu, leaky: LeakyRelu(0.1), logistic: Sigmoid,
 *                    tanh: Tanh, ramp: Where(x > 0, 1.1x, 0.1x), relu6: Clip(0, 6)
 *
 * Batch norm stays a BatchNormalization node rather than being folded into the convolution's
 * weights: the file then holds the trained tensors unchanged (gemmnet's own names,
 * "layers.<i>.<name>", as in checkpoints), and the runtime computes what gemmnet computes in
 * the same order; ONNX Runtime folds the pair itself when it loads the model.
 *
 * Tensors are ranked 4 (N,C,H,W) or 2 (N,C*H*W); a layer that needs the other rank gets a
 * Flatten or a Reshape of its input, made once per tensor. Parameters go in as raw little-
 * endian data pointing into the net's buffers (nothing is copied until the write). */
#include "gemmnet/gemmnet.h"
#include "gemmnet/interop.h"
#include "core/util.h"
#include "interop/onnx.pb-c.h"
#include "layers/describe.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ONNX_OPSET 13
#define ONNX_IR_VERSION 7 /* the IR of opset 13's release (ONNX 1.8) */

/* Every allocation of one export, freed together. */
typedef struct onnx_builder {
    void **mem;
    size_t n_mem, cap_mem;
    Onnx__NodeProto **nodes;
    size_t n_nodes, cap_nodes;
    Onnx__TensorProto **inits;
    size_t n_inits, cap_inits;
    int oom;
    int n_names; /* for unique node and tensor names */
    int layer;   /* the layer being exported, in names */
} onnx_builder;

/* A tensor of the graph: its name, rank (2 or 4) and gemmnet's (C,H,W) shape. The other
 * rank's name is made on first demand and kept. */
typedef struct onnx_tensor {
    const char *name;
    int rank;
    gn_shape shape;
    const char *name2, *name4;
} onnx_tensor;

static void *ob_keep(onnx_builder *b, void *p)
{
    if (!p) {
        b->oom = 1;
        return NULL;
    }
    if (b->n_mem == b->cap_mem) {
        size_t cap = b->cap_mem ? 2 * b->cap_mem : 256;
        void **m = realloc(b->mem, cap * sizeof *m);
        if (!m) {
            free(p);
            b->oom = 1;
            return NULL;
        }
        b->mem = m;
        b->cap_mem = cap;
    }
    b->mem[b->n_mem++] = p;
    return p;
}

static void *ob_calloc(onnx_builder *b, size_t n, size_t size)
{
    return ob_keep(b, calloc(n ? n : 1, size));
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static char *ob_str(onnx_builder *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n >= 0 ? ob_calloc(b, (size_t)n + 1, 1) : NULL;
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

static int ob_push(onnx_builder *b, void ***arr, size_t *n, size_t *cap, void *p)
{
    if (!p) return b->oom = 1, -1;
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 64;
        void **a = realloc(*arr, c * sizeof *a);
        if (!a) return b->oom = 1, -1;
        *arr = a;
        *cap = c;
    }
    (*arr)[(*n)++] = p;
    return 0;
}

/* A node op_type(inputs) -> one new output; returns the node (its output is output[0]). */
static Onnx__NodeProto *ob_node(onnx_builder *b, const char *op_type, const char *const *inputs,
                                int n_in, const char *out_name)
{
    Onnx__NodeProto *n = ob_calloc(b, 1, sizeof *n);
    char **in = ob_calloc(b, (size_t)n_in, sizeof *in), **out = ob_calloc(b, 1, sizeof *out);
    if (!n || !in || !out) return NULL;
    *n = (Onnx__NodeProto)ONNX__NODE_PROTO__INIT;
    for (int i = 0; i < n_in; i++) in[i] = (char *)inputs[i];
    n->n_input = (size_t)n_in;
    n->input = in;
    out[0] = out_name ? (char *)out_name : ob_str(b, "l%d.%s.%d", b->layer, op_type, b->n_names++);
    n->n_output = 1;
    n->output = out;
    n->op_type = (char *)op_type;
    n->name = ob_str(b, "%s_%d", op_type, b->n_names++);
    if (!out[0] || !n->name) return NULL;
    if (ob_push(b, (void ***)&b->nodes, &b->n_nodes, &b->cap_nodes, n)) return NULL;
    return n;
}

static const char *out_of(const Onnx__NodeProto *n) { return n ? n->output[0] : NULL; }

static Onnx__AttributeProto *ob_attr(onnx_builder *b, Onnx__NodeProto *n, const char *name,
                                     Onnx__AttributeProto__AttributeType type)
{
    if (!n) return NULL;
    Onnx__AttributeProto *a = ob_calloc(b, 1, sizeof *a);
    Onnx__AttributeProto **arr = ob_calloc(b, n->n_attribute + 1, sizeof *arr);
    if (!a || !arr) return NULL;
    *a = (Onnx__AttributeProto)ONNX__ATTRIBUTE_PROTO__INIT;
    a->name = (char *)name;
    a->has_type = 1;
    a->type = type;
    if (n->n_attribute) memcpy(arr, n->attribute, n->n_attribute * sizeof *arr);
    arr[n->n_attribute++] = a;
    n->attribute = arr;
    return a;
}

static void attr_int(onnx_builder *b, Onnx__NodeProto *n, const char *name, int64_t v)
{
    Onnx__AttributeProto *a = ob_attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    if (!a) return;
    a->has_i = 1;
    a->i = v;
}

static void attr_float(onnx_builder *b, Onnx__NodeProto *n, const char *name, float v)
{
    Onnx__AttributeProto *a = ob_attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    if (!a) return;
    a->has_f = 1;
    a->f = v;
}

static void attr_ints(onnx_builder *b, Onnx__NodeProto *n, const char *name, const int64_t *v,
                      int count)
{
    Onnx__AttributeProto *a = ob_attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    int64_t *vals = ob_calloc(b, (size_t)count, sizeof *vals);
    if (!a || !vals) return;
    memcpy(vals, v, (size_t)count * sizeof *vals);
    a->n_ints = (size_t)count;
    a->ints = vals;
}

/* An initializer of the given dims; returns it with no data yet. */
static Onnx__TensorProto *ob_init(onnx_builder *b, const char *name, int32_t type,
                                  const int64_t *dims, int ndim)
{
    Onnx__TensorProto *t = ob_calloc(b, 1, sizeof *t);
    int64_t *d = ob_calloc(b, (size_t)ndim, sizeof *d);
    if (!t || !d || !name) return NULL;
    *t = (Onnx__TensorProto)ONNX__TENSOR_PROTO__INIT;
    t->name = (char *)name;
    if (ndim) memcpy(d, dims, (size_t)ndim * sizeof *d);
    t->n_dims = (size_t)ndim;
    t->dims = d;
    t->has_data_type = 1;
    t->data_type = type;
    if (ob_push(b, (void ***)&b->inits, &b->n_inits, &b->cap_inits, t)) return NULL;
    return t;
}

/* A parameter of l as an initializer named as in checkpoints; data stays in the net. */
static const char *ob_param(onnx_builder *b, const gn_layer *l, const char *pname)
{
    const gn_param *p = NULL;
    for (int i = 0; i < l->n_par; i++)
        if (!strcmp(l->par[i].name, pname)) p = &l->par[i];
    GN_ASSERT(p);
    char full[96];
    gn_param_full_name(l, p, full, sizeof full);
    int64_t dims[4];
    for (int i = 0; i < p->ndim; i++) dims[i] = p->shape[i];
    Onnx__TensorProto *t = ob_init(b, ob_str(b, "%s", full), ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT,
                                   dims, p->ndim);
    if (!t) return NULL;
    t->has_raw_data = 1;
    t->raw_data.len = p->count * sizeof(float);
    t->raw_data.data = (uint8_t *)gn_param_data(l, p); /* only read by the writer */
    return t->name;
}

static const char *ob_scalar(onnx_builder *b, float v)
{
    Onnx__TensorProto *t = ob_init(b, ob_str(b, "const.%d", b->n_names++),
                                   ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, NULL, 0);
    float *d = ob_calloc(b, 1, sizeof *d);
    if (!t || !d) return NULL;
    *d = v;
    t->n_float_data = 1;
    t->float_data = d;
    return t->name;
}

static const char *ob_int64s(onnx_builder *b, const int64_t *v, int n)
{
    int64_t dims[1] = {n};
    Onnx__TensorProto *t = ob_init(b, ob_str(b, "const.%d", b->n_names++),
                                   ONNX__TENSOR_PROTO__DATA_TYPE__INT64, dims, 1);
    int64_t *d = ob_calloc(b, (size_t)n, sizeof *d);
    if (!t || !d) return NULL;
    memcpy(d, v, (size_t)n * sizeof *d);
    t->n_int64_data = (size_t)n;
    t->int64_data = d;
    return t->name;
}

/* x reshaped to [N, v...] (0 keeps the batch dimension as it is). */
static const char *ob_reshape(onnx_builder *b, const char *x, const int64_t *v, int n)
{
    const char *in[2] = {x, ob_int64s(b, v, n)};
    if (!x || !in[1]) return NULL;
    return out_of(ob_node(b, "Reshape", in, 2, NULL));
}

/* The tensor with the rank a consumer needs. */
static const char *tensor_as(onnx_builder *b, onnx_tensor *t, int rank)
{
    if (t->rank == rank) return t->name;
    if (rank == 2) {
        if (!t->name2) {
            Onnx__NodeProto *n = ob_node(b, "Flatten", &t->name, 1, NULL);
            attr_int(b, n, "axis", 1);
            t->name2 = out_of(n);
        }
        return t->name2;
    }
    if (!t->name4) {
        int64_t shape[4] = {0, t->shape.c, t->shape.h, t->shape.w};
        t->name4 = ob_reshape(b, t->name, shape, 4);
    }
    return t->name4;
}

/* The activation act applied to x, or x for linear; NULL with *refused set when ONNX has no
 * counterpart here. Names, not values, so every gn_act a build has is covered by its name. */
static const char *ob_act(onnx_builder *b, const char *x, gn_act act, const char **refused)
{
    const char *name = gn_act_name(act);
    if (!strcmp(name, "linear")) return x;
    if (!strcmp(name, "relu")) return out_of(ob_node(b, "Relu", &x, 1, NULL));
    if (!strcmp(name, "logistic")) return out_of(ob_node(b, "Sigmoid", &x, 1, NULL));
    if (!strcmp(name, "tanh")) return out_of(ob_node(b, "Tanh", &x, 1, NULL));
    if (!strcmp(name, "leaky")) {
        Onnx__NodeProto *n = ob_node(b, "LeakyRelu", &x, 1, NULL);
        attr_float(b, n, "alpha", 0.1f);
        return out_of(n);
    }
    if (!strcmp(name, "ramp")) { /* x > 0 ? 1.1x : 0.1x, each product as gemmnet rounds it */
        const char *gt[2] = {x, ob_scalar(b, 0.0f)}, *hi[2] = {x, ob_scalar(b, 1.1f)},
                   *lo[2] = {x, ob_scalar(b, 0.1f)};
        if (!gt[1] || !hi[1] || !lo[1]) return NULL;
        const char *in[3] = {out_of(ob_node(b, "Greater", gt, 2, NULL)),
                             out_of(ob_node(b, "Mul", hi, 2, NULL)),
                             out_of(ob_node(b, "Mul", lo, 2, NULL))};
        if (!in[0] || !in[1] || !in[2]) return NULL;
        return out_of(ob_node(b, "Where", in, 3, NULL));
    }
    if (!strcmp(name, "relu6")) {
        const char *in[3] = {x, ob_scalar(b, 0.0f), ob_scalar(b, 6.0f)};
        if (!in[1] || !in[2]) return NULL;
        return out_of(ob_node(b, "Clip", in, 3, NULL));
    }
    *refused = name;
    return NULL;
}

static const char *ob_batchnorm(onnx_builder *b, const gn_layer *l, const char *x, float eps)
{
    const char *in[5] = {x, ob_param(b, l, "bn.weight"), ob_param(b, l, "bn.bias"),
                         ob_param(b, l, "bn.running_mean"), ob_param(b, l, "bn.running_var")};
    for (int i = 0; i < 5; i++)
        if (!in[i]) return NULL;
    Onnx__NodeProto *n = ob_node(b, "BatchNormalization", in, 5, NULL);
    attr_float(b, n, "epsilon", eps);
    return out_of(n);
}

/* darknet's shortcut between different shapes (shortcut_layer.c), as x0 + map(x1): per axis
 * stride = max(H1/H0, 1) and sample = max(H0/H1, 1); x1[k, j*stride, i*stride] for k < min(C),
 * j < min(H), i < min(W) lands on y[k, j*sample, i*sample], and map(x1) is 0 everywhere else
 * (x0 + 0 is x0 exactly: what darknet leaves unchanged). Slice takes every stride-th element,
 * a pad of each element to a sample x sample block puts them sample apart, and a last Pad
 * fills up to x0's shape. x1 is rank 4; returns map(x1), rank 4, shaped as x0. */
static const char *ob_shortcut_map(onnx_builder *b, const char *x1, gn_shape s0, gn_shape s1)
{
    int sth = GN_MAX(s1.h / s0.h, 1), stw = GN_MAX(s1.w / s0.w, 1);
    int sah = GN_MAX(s0.h / s1.h, 1), saw = GN_MAX(s0.w / s1.w, 1);
    int mc = GN_MIN(s0.c, s1.c), mh = GN_MIN(s0.h, s1.h), mw = GN_MIN(s0.w, s1.w);
    const char *v = x1;
    if (mc != s1.c || mh != s1.h || mw != s1.w || sth > 1 || stw > 1) {
        int64_t starts[3] = {0, 0, 0}, axes[3] = {1, 2, 3}, steps[3] = {1, sth, stw};
        int64_t ends[3] = {mc, (int64_t)(mh - 1) * sth + 1, (int64_t)(mw - 1) * stw + 1};
        const char *in[5] = {v, ob_int64s(b, starts, 3), ob_int64s(b, ends, 3),
                             ob_int64s(b, axes, 3), ob_int64s(b, steps, 3)};
        for (int k = 1; k < 5; k++)
            if (!in[k]) return NULL;
        v = out_of(ob_node(b, "Slice", in, 5, NULL)); /* (mc, mh, mw) */
    }
    if (v && (sah > 1 || saw > 1)) {
        int64_t six[6] = {0, mc, mh, 1, mw, 1};
        int64_t pads[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, sah - 1, 0, saw - 1};
        int64_t four[4] = {0, mc, (int64_t)mh * sah, (int64_t)mw * saw};
        const char *r = ob_reshape(b, v, six, 6);
        const char *in[2] = {r, ob_int64s(b, pads, 12)};
        v = r && in[1] ? out_of(ob_node(b, "Pad", in, 2, NULL)) : NULL;
        if (v) v = ob_reshape(b, v, four, 4); /* (mc, mh*sah, mw*saw) */
        mh *= sah;
        mw *= saw;
    }
    if (v && (mc != s0.c || mh != s0.h || mw != s0.w)) {
        int64_t pads[8] = {0, 0, 0, 0, 0, s0.c - mc, s0.h - mh, s0.w - mw};
        const char *in[2] = {v, ob_int64s(b, pads, 8)};
        v = in[1] ? out_of(ob_node(b, "Pad", in, 2, NULL)) : NULL;
    }
    return v;
}

#define REFUSE(...)                                                                         \
    do {                                                                                    \
        gn_err_set(err, GN_ENOTSUP, "layer %d [%s]: ", i, sec);                             \
        size_t len_ = strlen(err ? err->msg : "");                                          \
        if (err) snprintf(err->msg + len_, sizeof err->msg - len_, __VA_ARGS__);            \
        return GN_ENOTSUP;                                                                  \
    } while (0)

/* Nodes for layer i, reading tensors t[], its output into t[i]. */
static int export_layer(onnx_builder *b, const gn_net *net, onnx_tensor *t, onnx_tensor *input,
                        int i, gn_err *err)
{
    const gn_layer *l = &net->layers[i];
    const char *sec = l->ops->section;
    b->layer = i;
    onnx_tensor *x[GN_MAX_INPUTS];
    for (int k = 0; k < l->n_in; k++) x[k] = l->in_idx[k] < 0 ? input : &t[l->in_idx[k]];
    gn_layer_desc d;
    layer_desc_init(&d);
    if (l->ops->describe) l->ops->describe(l, &d);
    const char *y = NULL, *refused_act = NULL;
    int rank = 4;

    if (!strcmp(sec, "convolutional")) {
        GN_ASSERT(l->ops->describe);
        const char *in[3] = {tensor_as(b, x[0], 4), ob_param(b, l, "weight"),
                             d.bn ? NULL : ob_param(b, l, "bias")};
        Onnx__NodeProto *n = in[0] && in[1] ? ob_node(b, "Conv", in, d.bn ? 2 : 3, NULL) : NULL;
        int64_t k[2] = {d.size, d.size}, s[2] = {d.stride, d.stride}, one[2] = {1, 1};
        int64_t pads[4] = {d.pad_begin, d.pad_begin, d.pad_end, d.pad_end};
        attr_ints(b, n, "kernel_shape", k, 2);
        attr_ints(b, n, "strides", s, 2);
        attr_ints(b, n, "pads", pads, 4);
        attr_ints(b, n, "dilations", one, 2);
        attr_int(b, n, "group", d.groups);
        y = out_of(n);
        if (y && d.bn) y = ob_batchnorm(b, l, y, d.bn_eps);
        if (y) y = ob_act(b, y, d.act, &refused_act);
    } else if (!strcmp(sec, "connected")) {
        GN_ASSERT(l->ops->describe);
        int has_bias = 0;
        for (int p = 0; p < l->n_par; p++) has_bias |= !strcmp(l->par[p].name, "bias");
        const char *in[3] = {tensor_as(b, x[0], 2), ob_param(b, l, "weight"),
                             has_bias ? ob_param(b, l, "bias") : NULL};
        Onnx__NodeProto *n = in[0] && in[1] ? ob_node(b, "Gemm", in, has_bias ? 3 : 2, NULL)
                                            : NULL;
        attr_int(b, n, "transB", 1);
        y = out_of(n);
        if (y) y = ob_act(b, y, d.act, &refused_act);
        rank = 2;
    } else if (!strcmp(sec, "maxpool")) {
        GN_ASSERT(l->ops->describe);
        const char *in = tensor_as(b, x[0], 4);
        Onnx__NodeProto *n = in ? ob_node(b, "MaxPool", &in, 1, NULL) : NULL;
        int64_t k[2] = {d.size, d.size}, s[2] = {d.stride, d.stride};
        int64_t pads[4] = {d.pad_begin, d.pad_begin, d.pad_end, d.pad_end};
        attr_ints(b, n, "kernel_shape", k, 2);
        attr_ints(b, n, "strides", s, 2);
        attr_ints(b, n, "pads", pads, 4);
        y = out_of(n);
    } else if (!strcmp(sec, "avgpool")) {
        GN_ASSERT(l->ops->describe);
        const char *in = tensor_as(b, x[0], 4);
        if (d.size == 0) {
            y = in ? out_of(ob_node(b, "GlobalAveragePool", &in, 1, NULL)) : NULL;
        } else {
            Onnx__NodeProto *n = in ? ob_node(b, "AveragePool", &in, 1, NULL) : NULL;
            int64_t k[2] = {d.size, d.size}, s[2] = {d.stride, d.stride};
            int64_t pads[4] = {d.pad_begin, d.pad_begin, d.pad_end, d.pad_end};
            attr_ints(b, n, "kernel_shape", k, 2);
            attr_ints(b, n, "strides", s, 2);
            attr_ints(b, n, "pads", pads, 4);
            attr_int(b, n, "count_include_pad", 1);
            y = out_of(n);
        }
    } else if (!strcmp(sec, "shortcut")) {
        GN_ASSERT(l->ops->describe);
        gn_shape s0 = l->in[0], s1 = l->in[1];
        int same = s0.c == s1.c && s0.h == s1.h && s0.w == s1.w;
        if (!same && d.alpha != 1.0f)
            REFUSE("alpha=%g with inputs of different shapes (%dx%dx%d and %dx%dx%d, C x H x W) "
                   "has no ONNX counterpart here: darknet applies alpha to the mapped "
                   "positions only", (double)d.alpha, s0.c, s0.h, s0.w, s1.c, s1.h, s1.w);
        rank = same && x[0]->rank == x[1]->rank ? x[0]->rank : 4;
        const char *a = tensor_as(b, x[0], rank), *c = tensor_as(b, x[1], rank);
        if (c && !same) c = ob_shortcut_map(b, c, s0, s1);
        if (a && d.alpha != 1.0f) {
            const char *in[2] = {a, ob_scalar(b, d.alpha)};
            a = in[1] ? out_of(ob_node(b, "Mul", in, 2, NULL)) : NULL;
        }
        if (c && d.beta != 1.0f) {
            const char *in[2] = {c, ob_scalar(b, d.beta)};
            c = in[1] ? out_of(ob_node(b, "Mul", in, 2, NULL)) : NULL;
        }
        const char *in[2] = {a, c};
        y = a && c ? out_of(ob_node(b, "Add", in, 2, NULL)) : NULL;
        if (y) y = ob_act(b, y, d.act, &refused_act);
    } else if (!strcmp(sec, "route")) {
        if (l->n_in == 1) {
            t[i] = *x[0]; /* the same tensor, under the same names */
            return b->oom ? gn_err_set(err, GN_ENOMEM, "out of memory") : GN_OK;
        }
        rank = 2;
        for (int k = 0; k < l->n_in; k++)
            if (x[k]->rank == 4) rank = 4;
        const char *in[GN_MAX_INPUTS];
        int ok = 1;
        for (int k = 0; k < l->n_in; k++) ok &= (in[k] = tensor_as(b, x[k], rank)) != NULL;
        Onnx__NodeProto *n = ok ? ob_node(b, "Concat", in, l->n_in, NULL) : NULL;
        attr_int(b, n, "axis", 1);
        y = out_of(n);
    } else if (!strcmp(sec, "crop")) {
        GN_ASSERT(l->ops->describe);
        gn_shape si = l->in[0], so = l->out;
        int64_t dy = (si.h - so.h) / 2, dx = (si.w - so.w) / 2;
        int64_t starts[2] = {dy, dx}, ends[2] = {dy + so.h, dx + so.w}, axes[2] = {2, 3};
        const char *in[4] = {tensor_as(b, x[0], 4), ob_int64s(b, starts, 2),
                             ob_int64s(b, ends, 2), ob_int64s(b, axes, 2)};
        y = in[0] && in[1] && in[2] && in[3] ? out_of(ob_node(b, "Slice", in, 4, NULL)) : NULL;
        if (y && d.scale != 1.0f) {
            const char *m[2] = {y, ob_scalar(b, d.scale)};
            y = m[1] ? out_of(ob_node(b, "Mul", m, 2, NULL)) : NULL;
        }
        if (y && d.shift != 0.0f) {
            const char *a[2] = {y, ob_scalar(b, d.shift)};
            y = a[1] ? out_of(ob_node(b, "Add", a, 2, NULL)) : NULL;
        }
    } else if (!strcmp(sec, "dropout") || !strcmp(sec, "cost")) {
        t[i] = *x[0]; /* identity in evaluation mode; the loss is not part of the model */
        return GN_OK;
    } else if (!strcmp(sec, "activation")) {
        GN_ASSERT(l->ops->describe);
        rank = x[0]->rank;
        y = ob_act(b, x[0]->name, d.act, &refused_act);
    } else if (!strcmp(sec, "batchnorm")) {
        GN_ASSERT(l->ops->describe);
        rank = x[0]->rank;
        y = ob_batchnorm(b, l, x[0]->name, d.bn_eps);
    } else if (!strcmp(sec, "softmax")) {
        GN_ASSERT(l->ops->describe);
        rank = 2;
        y = tensor_as(b, x[0], 2);
        if (y && d.temperature != 1.0) { /* gemmnet multiplies by 1/T, in float */
            const char *in[2] = {y, ob_scalar(b, (float)(1.0 / d.temperature))};
            y = in[1] ? out_of(ob_node(b, "Mul", in, 2, NULL)) : NULL;
        }
        int64_t D = (int64_t)gn_shape_size(l->in[0]);
        if (y && d.groups > 1) {
            int64_t g[3] = {0, d.groups, D / d.groups};
            y = ob_reshape(b, y, g, 3);
        }
        Onnx__NodeProto *n = y ? ob_node(b, "Softmax", &y, 1, NULL) : NULL;
        attr_int(b, n, "axis", -1);
        y = out_of(n);
        if (y && d.groups > 1) {
            int64_t flat[2] = {0, D};
            y = ob_reshape(b, y, flat, 2);
        }
    } else {
        REFUSE("ONNX export does not cover this layer type (it covers convolutional, "
               "connected, maxpool, avgpool, shortcut, route, batchnorm, activation, softmax, "
               "crop, dropout and cost)");
    }
    if (refused_act)
        REFUSE("activation '%s' has no ONNX counterpart in gemmnet's exporter", refused_act);
    if (b->oom || !y) return gn_err_set(err, GN_ENOMEM, "out of memory");
    t[i] = (onnx_tensor){.name = y, .rank = rank, .shape = l->out};
    return GN_OK;
}

/* [N, dims...] float32, N symbolic. */
static Onnx__ValueInfoProto *ob_value_info(onnx_builder *b, const char *name,
                                           const int64_t *dims, int ndim)
{
    Onnx__ValueInfoProto *v = ob_calloc(b, 1, sizeof *v);
    Onnx__TypeProto *tp = ob_calloc(b, 1, sizeof *tp);
    Onnx__TypeProto__Tensor *tt = ob_calloc(b, 1, sizeof *tt);
    Onnx__TensorShapeProto *sh = ob_calloc(b, 1, sizeof *sh);
    Onnx__TensorShapeProto__Dimension **dim = ob_calloc(b, (size_t)ndim + 1, sizeof *dim);
    if (!v || !tp || !tt || !sh || !dim) return NULL;
    for (int i = 0; i <= ndim; i++) {
        Onnx__TensorShapeProto__Dimension *d = ob_calloc(b, 1, sizeof *d);
        if (!d) return NULL;
        *d = (Onnx__TensorShapeProto__Dimension)ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT;
        if (i == 0) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d->dim_param = "N";
        } else {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = dims[i - 1];
        }
        dim[i] = d;
    }
    *sh = (Onnx__TensorShapeProto)ONNX__TENSOR_SHAPE_PROTO__INIT;
    sh->n_dim = (size_t)ndim + 1;
    sh->dim = dim;
    *tt = (Onnx__TypeProto__Tensor)ONNX__TYPE_PROTO__TENSOR__INIT;
    tt->has_elem_type = 1;
    tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    tt->shape = sh;
    *tp = (Onnx__TypeProto)ONNX__TYPE_PROTO__INIT;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    *v = (Onnx__ValueInfoProto)ONNX__VALUE_INFO_PROTO__INIT;
    v->name = (char *)name;
    v->type = tp;
    return v;
}

/* protobuf-c's output sink, appending to an atomic file. */
typedef struct file_sink {
    ProtobufCBuffer base;
    gn_atomic_file *af;
} file_sink;

static void file_sink_append(ProtobufCBuffer *buf, size_t len, const uint8_t *data)
{
    file_sink *s = (file_sink *)buf;
    gn_atomic_write(s->af, data, len);
}

/* msg to path atomically: "<path>.tmp.<pid>", flushed and fsynced, renamed over path, the
 * directory fsynced; on failure the temporary file is removed and path untouched. */
static int write_atomic(const char *path, const ProtobufCMessage *msg, gn_err *err)
{
    gn_atomic_file af;
    int rc = gn_atomic_open(&af, path, err);
    if (rc) return rc;
    file_sink sink = {.base = {.append = file_sink_append}, .af = &af};
    protobuf_c_message_pack_to_buffer(msg, &sink.base);
    return gn_atomic_commit(&af, err); /* reports a failed write */
}

static int host_is_le(void)
{
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 1;
}

int gn_onnx_export(const char *path, const gn_net *net, gn_err *err)
{
    if (!path || !*path || !net || net->n_layers < 1)
        return gn_err_set(err, GN_EINVAL, "gn_onnx_export: bad arguments");
    if (!host_is_le())
        return gn_err_set(err, GN_ENOTSUP, "ONNX export needs a little-endian host");
    onnx_builder b = {0};
    onnx_tensor input = {.name = "input", .rank = 4, .shape = net->in};
    onnx_tensor *t = calloc((size_t)net->n_layers, sizeof *t);
    int rc = t ? GN_OK : gn_err_set(err, GN_ENOMEM, "out of memory");
    for (int i = 0; !rc && i < net->n_layers; i++) rc = export_layer(&b, net, t, &input, i, err);
    if (rc) goto done;

    /* the output: the last layer's tensor, flattened, under its own name */
    onnx_tensor *last = &t[net->n_layers - 1];
    Onnx__NodeProto *outn;
    if (last->rank == 4) {
        outn = ob_node(&b, "Flatten", &last->name, 1, "output");
        attr_int(&b, outn, "axis", 1);
    } else {
        outn = ob_node(&b, "Identity", &last->name, 1, "output");
    }
    gn_shape os = last->shape;
    int64_t in_dims[3] = {net->in.c, net->in.h, net->in.w}, out_dims[1] = {
        (int64_t)gn_shape_size(os)};
    Onnx__ValueInfoProto *vin = ob_value_info(&b, "input", in_dims, 3);
    Onnx__ValueInfoProto *vout = ob_value_info(&b, "output", out_dims, 1);
    Onnx__ValueInfoProto **gin = ob_calloc(&b, 1, sizeof *gin);
    Onnx__ValueInfoProto **gout = ob_calloc(&b, 1, sizeof *gout);
    Onnx__GraphProto *g = ob_calloc(&b, 1, sizeof *g);
    Onnx__ModelProto *m = ob_calloc(&b, 1, sizeof *m);
    Onnx__OperatorSetIdProto *ops = ob_calloc(&b, 1, sizeof *ops);
    Onnx__OperatorSetIdProto **opsv = ob_calloc(&b, 1, sizeof *opsv);
    if (b.oom || !outn || !vin || !vout || !gin || !gout || !g || !m || !ops || !opsv) {
        rc = gn_err_set(err, GN_ENOMEM, "out of memory");
        goto done;
    }
    gin[0] = vin;
    gout[0] = vout;
    *g = (Onnx__GraphProto)ONNX__GRAPH_PROTO__INIT;
    g->name = "gemmnet";
    g->n_node = b.n_nodes;
    g->node = b.nodes;
    g->n_initializer = b.n_inits;
    g->initializer = b.inits;
    g->n_input = 1;
    g->input = gin;
    g->n_output = 1;
    g->output = gout;
    g->doc_string = "input: the tensor gemmnet's first layer reads, [N, C, H, W] float32, after "
                    "the config's [data] normalization; output: the last layer's output "
                    "flattened, [N, C*H*W] (a classifier's probabilities)";
    *ops = (Onnx__OperatorSetIdProto)ONNX__OPERATOR_SET_ID_PROTO__INIT;
    ops->domain = "";
    ops->has_version = 1;
    ops->version = ONNX_OPSET;
    opsv[0] = ops;
    *m = (Onnx__ModelProto)ONNX__MODEL_PROTO__INIT;
    m->has_ir_version = 1;
    m->ir_version = ONNX_IR_VERSION;
    m->n_opset_import = 1;
    m->opset_import = opsv;
    m->producer_name = "gemmnet";
    m->producer_version = GN_VERSION;
    m->graph = g;
    rc = write_atomic(path, &m->base, err);

done:
    for (size_t k = 0; k < b.n_mem; k++) free(b.mem[k]);
    free(b.mem);
    free(b.nodes);
    free(b.inits);
    free(t);
    return rc;
}
