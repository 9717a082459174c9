/* Internal parts of the data pipeline, shared by the loader, the CLI tools and the tests. */
#ifndef GN_DATA_INTERNAL_H
#define GN_DATA_INTERNAL_H

#include "gemmnet/data.h"
#include "gemmnet/gemmnet.h"
#include "core/rng.h"

#include <stddef.h>
#include <stdint.h>

/* ---- JPEG decoding (jpeg.c) ---- */

/* A region of the original image, in original pixel units (may be fractional). */
typedef struct gn_box {
    double x, y, w, h;
} gn_box;

/* Called with the image size from the header; fills the region to decode. */
typedef void (*gn_region_fn)(void *ctx, int w, int h, gn_box *box);

/* A decoded patch: 8-bit RGB rows of w*3 bytes; box is the requested region in the patch's
 * pixel coordinates (after DCT scaling and region cropping). The buffer is reused between calls. */
typedef struct gn_patch {
    unsigned char *px;
    size_t cap;
    int w, h;
    int src_w, src_h;   /* the original image size */
    int scale_num;      /* DCT scaling used: scale_num/8 */
    gn_box box;
} gn_patch;

/* Decodes the region chosen by fn (NULL: the whole image) from a JPEG in memory, at the
 * smallest DCT scale that keeps the region at least out_w x out_h (0: full scale), decoding only
 * the rows and iMCU columns the region needs (region != whole). Refuses headers of more than
 * max_pixels before allocating. GN_EFORMAT for anything that is not a readable JPEG. */
int gn_jpeg_decode(const unsigned char *data, size_t len, int64_t max_pixels, gn_region_fn fn,
                   void *ctx, int out_w, int out_h, int use_region, gn_patch *p, gn_err *err);
void gn_patch_free(gn_patch *p);
/* Writes a JPEG from 8-bit pixels with comps = 1 (gray), 3 (RGB) or 4 (CMYK, stored inverted as
 * Adobe applications do, with an Adobe marker); flags: GN_JPEG_PROGRESSIVE, GN_JPEG_RESTART (a
 * restart marker after every MCU row). */
enum { GN_JPEG_PROGRESSIVE = 1, GN_JPEG_RESTART = 2 };
int gn_jpeg_write(const char *path, const unsigned char *px, int w, int h, int comps, int quality,
                  int flags, gn_err *err);
/* Reads a whole file into a malloc'ed buffer (*buf reused if *cap is large enough). */
int gn_read_file(const char *path, unsigned char **buf, size_t *cap, size_t *len, gn_err *err);

/* ---- transforms (transform.c) ---- */

/* torchvision RandomResizedCrop.get_params on a w x h image. */
void gn_rrc_box(gn_rng *r, int w, int h, const float scale[2], const float ratio[2], gn_box *b);
/* Resize shorter side to `resize`, centre crop out_w x out_h, as a box in original pixels. */
void gn_center_box(int w, int h, int resize, int out_w, int out_h, gn_box *b);
/* Resamples box of src (sw x sh RGB) to three planes of ow x oh floats (CHW) with an
 * antialiased triangle filter (bilinear when enlarging, area-like when shrinking), mirrored when
 * flip, each value v (0..255) stored as v*mul[c] + add[c]; s is scratch space, grown as needed.
 * Returns GN_ENOMEM on allocation failure. */
typedef struct gn_scratch {
    float *f;
    size_t fcap;
    int *i;
    size_t icap;
} gn_scratch;
int gn_resample(const unsigned char *src, int sw, int sh, const gn_box *box, int ow, int oh,
                int flip, const float mul[3], const float add[3], float *out, gn_scratch *s);
void gn_scratch_free(gn_scratch *s);
/* mul/add that turn 0..255 into (v/255 - mean)/std. */
void gn_normalize_factors(const float mean[3], const float std[3], float mul[3], float add[3]);
/* For jitter or gray output: CHW planes of 0..255 values -> colour jitter (factors for
 * brightness, contrast, saturation; 1 = unchanged) -> normalized, in place; channels 1 writes
 * the gray plane first. */
void gn_finish_tensor(float *chw, int w, int h, int channels, const float jit[3],
                      const float mean[3], const float std[3]);

/* ---- augmentations (augment.c) ---- */

/* How geometric operations sample: nearest or bilinear, and the fill value (0..255) for pixels
 * that come from outside the image (all 0: torchvision's fill=None, outside taps count as 0). */
typedef struct gn_aug_geom {
    int bilinear;
    float fill[3];
} gn_aug_geom;

/* An operation on an 8-bit RGB image (w x h, rows of w*3 bytes) in place, with magnitude mag in
 * the operation's own units (degrees, pixels, factor - 1, bits, threshold); tmp is scratch space
 * of w*h*3 bytes. */
typedef void (*gn_aug_fn)(unsigned char *img, unsigned char *tmp, int w, int h, double mag,
                          const gn_aug_geom *g);

/* How an operation's magnitude follows the bin (torchvision's _augmentation_space). */
enum { GN_MAG_NONE, GN_MAG_LINEAR, GN_MAG_TRANSLATE_X, GN_MAG_TRANSLATE_Y, GN_MAG_POSTERIZE,
       GN_MAG_SOLARIZE };

typedef struct gn_aug_op {
    const char *name;  /* torchvision's name */
    int kind;          /* GN_MAG_* */
    double ra, ta;     /* magnitude at the last bin for RandAugment / TrivialAugmentWide */
    int is_signed;     /* the sign is drawn at random */
    gn_aug_fn apply;
} gn_aug_op;

/* The operations of RandAugment and TrivialAugmentWide, in torchvision's order. */
extern const gn_aug_op gn_aug_ops[];
extern const int gn_aug_n_ops;
#define GN_AUG_BINS 31 /* torchvision's num_magnitude_bins */

/* The magnitude of op at bin (0..bins-1, fractional with timm's mstd) for policy
 * GN_AUGMENT_RANDAUGMENT or GN_AUGMENT_TRIVIALAUGMENT on a w x h image, before the sign. */
double gn_aug_magnitude(const gn_aug_op *op, int policy, double bin, int bins, int w, int h);
/* torchvision's affine with its inverse matrix (F.affine: angle clockwise in degrees,
 * translate in pixels, shear in degrees, about centre cx, cy in pixels from the top-left). */
void gn_aug_affine(unsigned char *img, unsigned char *tmp, int w, int h, double angle, double tx,
                   double ty, double shear_x, double shear_y, double cx, double cy,
                   const gn_aug_geom *g);
/* darknet's random_distort_image: hue shifted by dhue (of the circle), saturation and value
 * scaled, in HSV as darknet converts. */
void gn_aug_hsv(unsigned char *img, int w, int h, float dhue, float dsat, float dexp);
/* darknet's random_augment_image window (without its rotation) on a w x h image for an
 * out_w x out_h output: aspect a' = rand_scale(aspect), the shorter side of the image stretched
 * by a' scaled to r in [min_crop, max_crop], a window at a uniform offset from the centre. It may
 * reach outside the image (when r is below the output size). */
void gn_aug_darknet_box(gn_rng *r, int w, int h, const gn_augment_opts *a, int out_w, int out_h,
                        gn_box *b);
/* Whether the 8-bit stage (policy, affine, darknet keys) has work to do. */
int gn_augment_active(const gn_augment_opts *a);
/* The 8-bit stage on CHW planes of 0..255 floats (as gn_resample writes them with mul 1, add
 * 0): darknet's angle and HSV, then RandAugment / TrivialAugmentWide, then RandomAffine. work
 * holds 2*w*h*3 bytes. Every draw comes from r. */
void gn_augment_planes(const gn_augment_opts *a, gn_rng *r, float *chw, int w, int h,
                       unsigned char *work);
/* torchvision's RandomErasing on a normalized c x h x w tensor. */
void gn_augment_erase(const gn_augment_opts *a, gn_rng *r, float *chw, int c, int w, int h);

/* ---- sources (source.c) ---- */

enum { GN_SRC_IMAGES = 0, GN_SRC_TABLE = 1 };

/* The most classes a list file or CSV table may number (labels 0 .. GN_MAX_CLASSES-1): a stray
 * huge label would otherwise allocate a class name for every index below it. */
#define GN_MAX_CLASSES (1 << 20)

typedef struct gn_dataset {
    int kind;
    int64_t n;
    char **paths;       /* images */
    int *labels;        /* images, and tables with a class column */
    int n_classes;      /* 0 for regression */
    char **class_names;
    int n_in, n_tgt;    /* tables: values per row are n_in inputs then n_tgt targets */
    float *table;       /* n x (n_in + n_tgt) */
} gn_dataset;

/* Opens a folder root, a list file or a .csv; classes_file may be "". For tables,
 * n_in is the number of input values and n_tgt the number of regression targets (0: class).
 * ref_names (may be NULL) fix the class indices of a folder (val uses train's classes). */
int gn_dataset_open(gn_dataset *d, const char *path, const char *classes_file,
                    char **ref_names, int n_ref, int n_in, int n_tgt, gn_err *err);
/* The class directory names of a folder root, sorted; free with gn_names_free. */
int gn_folder_classes(const char *root, char ***names, int *n, gn_err *err);
void gn_names_free(char **names, int n);
void gn_dataset_free(gn_dataset *d);
int gn_is_dir(const char *path);
int gn_has_jpeg_ext(const char *name);

/* ---- IDX files (idx.c): MNIST, Fashion-MNIST ---- */

#define GN_IDX_MAX_DIMS 4

/* A parsed IDX file of unsigned bytes: data points into the caller's buffer. */
typedef struct gn_idx {
    int ndim;
    int64_t dims[GN_IDX_MAX_DIMS];
    const unsigned char *data;
    size_t count; /* product of dims */
} gn_idx;

/* Validates the header against len (magic, type 0x08, 1..4 dimensions, none 0, exactly as many
 * value bytes as the dimensions promise); messages start with name and give the reason. */
int gn_idx_parse(const unsigned char *buf, size_t len, const char *name, gn_idx *out, gn_err *err);
/* Reads a file, gunzipping it if it is gzipped, refusing more than max_len bytes. */
int gn_idx_read_file(const char *path, unsigned char **buf, size_t *len, size_t max_len,
                     gn_err *err);

typedef struct gn_idx_import_opts {
    int quality;              /* JPEG quality 1..100 */
    int64_t limit;            /* import the first `limit` images only; 0 = all */
    const char *const *names; /* class names by label (may be NULL) */
    int n_names;
} gn_idx_import_opts;

typedef struct gn_idx_import_result {
    int64_t images, written, skipped;
    int classes, rows, cols;
} gn_idx_import_result;

/* IDX images (0x803) and labels (0x801) to out_dir/<label>[-<name>]/<index>.jpg, grayscale;
 * each file atomically, skipping those already there. */
int gn_idx_import(const char *images, const char *labels, const char *out_dir,
                  const gn_idx_import_opts *o, gn_idx_import_result *r, gn_err *err);

/* ---- mixup and cutmix (mix.c) ---- */

/* One batch's draw: active (mixed at all), cutmix (else mixup), lam (after cutmix's area
 * correction), and cutmix's box rows [y0, y1) and columns [x0, x1). */
typedef struct gn_mix {
    int active, cutmix;
    double lam;
    int y0, y1, x0, x1;
} gn_mix;

/* Beta(a, b) from two Gamma draws. */
double gn_rng_beta(gn_rng *r, double a, double b);
/* timm's per-batch draw from the [data] mixup keys, for images of h x w pixels. */
void gn_mix_draw(gn_rng *r, const gn_data_opts *o, int h, int w, gn_mix *m);
/* Mixes image i with image n-1-i in place and writes the soft targets (n x k):
 * lam onehot(labels[i]) + (1 - lam) onehot(labels[n-1-i]); one-hot when m is not active. */
void gn_mix_apply(float *x, float *targets, const int *labels, int n, int c, int h, int w, int k,
                  const gn_mix *m);

#endif
