/* Checkpoints: a network's parameters, state and (optionally) SGD momentum in one safetensors
 * file, with the trainer's metadata and a CRC-32 per tensor.
 *
 * File layout (safetensors): 8 bytes, little-endian, header length N; N bytes of UTF-8 JSON
 * padded with spaces to a multiple of 8; then the raw little-endian tensor data. The JSON maps
 * tensor names to {"dtype":"F32","shape":[...],"data_offsets":[begin,end]} and holds a
 * "__metadata__" object of strings. Tensors are named as PyTorch's state_dict names them:
 * "layers.<index>.<name>", and "optimizer.momentum.layers.<index>.<name>" for the momentum of
 * a trainable parameter. gemmnet adds the metadata keys
 *   format = "gemmnet-checkpoint", format_version = "1",
 *   checksum.<tensor name> = "crc32:xxxxxxxx" (zlib's CRC-32 of the tensor's bytes),
 *   checksum.header = "crc32:xxxxxxxx" over the names, dtypes, shapes and metadata
 * (see docs/checkpoints.md). A file without format = "gemmnet-checkpoint" (one written by
 * Python's safetensors, say) is read without checksums.
 *
 * Only little-endian hosts are supported (others get GN_ENOTSUP). */
#ifndef GEMMNET_CHECKPOINT_H
#define GEMMNET_CHECKPOINT_H

#include "gemmnet/gemmnet.h"

/* One metadata entry: UTF-8 key and value. */
typedef struct gn_kv {
    const char *key;
    const char *val;
} gn_kv;

#define GN_CKPT_FORMAT "gemmnet-checkpoint"
#define GN_CKPT_FORMAT_VERSION "1"
/* Headers longer than this are refused before anything is allocated (the reference
 * implementation's limit). */
#define GN_CKPT_MAX_HEADER 100000000u

/* Writes net's parameters and state, momentum (NULL: none; else net->n_params floats laid out
 * as net->params) and the n_meta caller entries to path, atomically: the file is written to
 * "<path>.tmp.<pid>" in the same directory, flushed and fsynced, renamed over path, and the
 * directory fsynced. On any error the old file at path is untouched, the temporary file is
 * removed, and err says what failed. Caller keys must be unique, valid UTF-8, and must not be
 * "format", "format_version" or start with "checksum." (GN_EINVAL). */
int gn_ckpt_save(const char *path, const gn_net *net, const float *momentum, const gn_kv *meta,
                 int n_meta, gn_err *err);

/* An opened checkpoint: header parsed and validated, sizes checked, data read into memory and
 * every checksum verified. */
typedef struct gn_ckpt gn_ckpt;

/* GN_EIO if the file cannot be read, GN_EFORMAT (with the reason) if it is not a valid
 * checkpoint: not safetensors, truncated, inconsistent offsets, a checksum mismatch. */
int gn_ckpt_open(gn_ckpt **out, const char *path, gn_err *err);
void gn_ckpt_close(gn_ckpt **c);

/* A metadata value, or NULL if absent. Valid until gn_ckpt_close. */
const char *gn_ckpt_meta(const gn_ckpt *c, const char *key);
/* All metadata entries, in file order: i in [0, gn_ckpt_n_meta). */
int gn_ckpt_n_meta(const gn_ckpt *c);
const char *gn_ckpt_meta_key(const gn_ckpt *c, int i);
/* 1 if a tensor of that name is present. */
int gn_ckpt_has(const gn_ckpt *c, const char *name);
int gn_ckpt_n_tensors(const gn_ckpt *c);
/* Tensor i in [0, gn_ckpt_n_tensors), in file order: its name and dtype (valid until
 * gn_ckpt_close), rank, and shape (up to 8 dimensions are written to shape). */
const char *gn_ckpt_tensor(const gn_ckpt *c, int i, const char **dtype, int *ndim,
                           uint64_t shape[8]);

enum {
    GN_CKPT_STRICT = 0,
    /* Fine-tuning: tensors whose shape differs from the network's are left alone (the network
     * keeps its own initialization) and reported; tensors the network lacks are ignored and
     * reported. Tensors missing from the checkpoint are still refused. */
    GN_CKPT_SKIP_MISMATCH = 1,
};

/* Copies every parameter and state tensor of net (and, if momentum is non-NULL, the momentum of
 * every trainable parameter, into momentum laid out as net->params) from the checkpoint.
 * Everything is checked before anything is copied: on refusal net and momentum are unchanged.
 * Refused: a missing tensor, a dtype other than F32, a shape mismatch (STRICT), a tensor the
 * network does not have (STRICT; momentum tensors are never "extra"), missing momentum when
 * momentum is non-NULL. Each refusal names the tensor and the reason. */
int gn_ckpt_load_net(gn_ckpt *c, gn_net *net, float *momentum, int flags, gn_err *err);
/* What the last gn_ckpt_load_net skipped (GN_CKPT_SKIP_MISMATCH): one line per tensor, e.g.
 * "layers.3.weight: shape [10,64] in the checkpoint, [5,64] in the network (skipped)". */
int gn_ckpt_n_skipped(const gn_ckpt *c);
const char *gn_ckpt_skipped(const gn_ckpt *c, int i);

/* More tensors laid out as the network's: as net->params (of_state = 0: one tensor per
 * trainable parameter) or as net->state (of_state = 1: one per state tensor), stored as
 * "<prefix>.<parameter name>", e.g. "optimizer.exp_avg.layers.3.weight" or
 * "ema.layers.3.bn.running_mean". gn_ckpt_save and gn_ckpt_load_net are these with the one
 * extra {"optimizer.momentum", momentum, 0}. Loading copies each extra from the file (a
 * missing one is refused). Tensors named "optimizer.*" or "ema.*" are a run's training state:
 * a load that does not ask for them ignores them (never "not in the network"). */
typedef struct gn_ckpt_extra {
    const char *prefix;
    float *data;
    int of_state;
} gn_ckpt_extra;
int gn_ckpt_save_extra(const char *path, const gn_net *net, const gn_ckpt_extra *x, int n_x,
                       const gn_kv *meta, int n_meta, gn_err *err);
int gn_ckpt_load_extra(gn_ckpt *c, gn_net *net, const gn_ckpt_extra *x, int n_x, int flags,
                       gn_err *err);

/* zlib's CRC-32 (polynomial 0xEDB88320, reflected, init and final xor 0xFFFFFFFF): start with
 * crc = 0 and feed the bytes in pieces. */
uint32_t gn_crc32(uint32_t crc, const void *data, size_t n);

#endif
