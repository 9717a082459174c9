/* Weights in other tools' formats: darknet's .weights (in and out) and ONNX (out).
 * docs/interop.md lists what each covers and how it is verified. */
#ifndef GEMMNET_INTEROP_H
#define GEMMNET_INTEROP_H

#include <stddef.h>
#include <stdint.h>

struct gn_err;
struct gn_net;
struct gn_ckpt;
struct gn_data_opts;

/* Writes net's parameters and state as a darknet .weights file at path (atomically: a
 * temporary file renamed into place). Version 0.2.0 with a 64-bit `seen` (net->seen), as
 * darknet writes it; layers in config order. A layer type darknet's format has no place for, or
 * a [batchnorm] bias other than 0 (darknet does not store it), is refused by layer (GN_ENOTSUP). */
int gn_darknet_weights_save(const char *path, const struct gn_net *net, struct gn_err *err);

/* What a darknet .weights header said. first_missing: with GN_CKPT_SKIP_MISMATCH, the first
 * layer the file had no values for (the file ended before it; that layer and the ones after it
 * keep their initialization), else -1. */
typedef struct gn_darknet_info {
    int major, minor, revision;
    int transposed;  /* major or minor above 1000: [connected] weights stored input-major */
    uint64_t seen;   /* images darknet had trained on; becomes net->seen */
    int first_missing;
} gn_darknet_info;

/* Reads the darknet .weights file at path into net, the layers in config order. flags:
 * GN_CKPT_STRICT (the file must hold exactly the net's values) or GN_CKPT_SKIP_MISMATCH (it may
 * end early at a layer boundary, as darknet's `partial` files do). Refused with GN_EFORMAT and
 * the reason: an unknown version, a file that ends inside a layer (named, with the tensor and
 * the bytes missing), one longer than the net, a non-finite value or a negative variance; a
 * layer type with no darknet layout: GN_ENOTSUP. Everything is checked before anything is
 * copied: on refusal net is unchanged. info may be NULL. */
int gn_darknet_weights_load(const char *path, struct gn_net *net, int flags,
                            gn_darknet_info *info, struct gn_err *err);
/* The same from n bytes in memory; name is used in messages. */
int gn_darknet_weights_read(const void *buf, size_t n, const char *name, struct gn_net *net,
                            int flags, gn_darknet_info *info, struct gn_err *err);

/* The kinds of weights file --weights takes, told apart by content, not by name. */
typedef enum gn_weights_kind {
    GN_WEIGHTS_CHECKPOINT = 1, /* safetensors: gemmnet's checkpoints, or written by Python */
    GN_WEIGHTS_DARKNET = 2,    /* darknet's .weights */
} gn_weights_kind;

/* Which kind the file at path is: safetensors when its first 8 bytes are a header length that
 * fits the file and the header starts with '{'; otherwise darknet's .weights when it is long
 * enough for darknet's header. GN_EIO if unreadable, GN_EFORMAT if neither. */
int gn_weights_kind_of(const char *path, gn_weights_kind *kind, struct gn_err *err);

/* Loads the weights at path into net, whichever kind the file is. A checkpoint is left open in
 * *ck (when ck is non-NULL; else closed) for its metadata and skipped-tensor list; for a darknet
 * file *ck is NULL and dk (if non-NULL) gets its header. kind (if non-NULL) says which it was.
 * flags: GN_CKPT_STRICT or GN_CKPT_SKIP_MISMATCH. */
int gn_weights_load(struct gn_net *net, const char *path, int flags, struct gn_ckpt **ck,
                    gn_weights_kind *kind, gn_darknet_info *dk, struct gn_err *err);

/* darknet's input convention for weights_path (NULL: none) and d's config: d gets pixels/255
 * with no mean/std (gn_data_opts_darknet_input: keys [data] set win) when weights_path is a
 * darknet .weights file, or a checkpoint whose metadata says input_convention = darknet (the
 * trainer writes it for runs that trained so). A config without its own [data] section already
 * has it from gn_data_opts_parse. GN_EIO / GN_EFORMAT when the file cannot be read or is
 * neither kind. */
int gn_weights_input_convention(struct gn_data_opts *d, const char *weights_path,
                                struct gn_err *err);

/* Writes net (its graph, parameters and state, evaluation mode) as an ONNX model at path
 * (atomically). A layer ONNX cannot express is refused by name (GN_ENOTSUP). */
int gn_onnx_export(const char *path, const struct gn_net *net, struct gn_err *err);

#endif
