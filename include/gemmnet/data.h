/* The data pipeline: JPEG folders, list files and CSV tables -> batches of float32 NCHW tensors.
 *
 * Every random choice (shuffle order, crop, flip, colour jitter, augmentations) is a pure
 * function of (seed, epoch, sample index), so the batches do not depend on the number of worker threads or on
 * their timing, and a run resumed with gn_loader_seek sees exactly the batches it would have seen.
 * Unreadable files are skipped and replaced by the next readable sample in dataset order, so
 * batches stay full; each failure is reported once through gn_loader_pop_failure. */
#ifndef GEMMNET_DATA_H
#define GEMMNET_DATA_H

#include <stdint.h>

struct gn_cfg;
struct gn_err;

#define GN_DATA_PATH_MAX 4096

/* Train-split augmentations after the crop and flip (src/data/augment.c; keys in docs/data.md). */
enum { GN_AUGMENT_NONE = 0, GN_AUGMENT_RANDAUGMENT = 1, GN_AUGMENT_TRIVIALAUGMENT = 2 };
typedef struct gn_augment_opts {
    int policy;           /* GN_AUGMENT_*: torchvision's RandAugment or TrivialAugmentWide */
    int ra_n;             /* RandAugment: operations per image */
    float ra_m;           /* RandAugment: magnitude bin, 0..30 of torchvision's 31 */
    float ra_mstd;        /* RandAugment: timm's magnitude std, in bins (0: fixed magnitude) */
    int bilinear;         /* geometric operations: 0 nearest (torchvision's default), 1 bilinear */
    float fill[3];        /* 0..255: pixels a geometric operation brings in from outside */
    float rotate;         /* RandomAffine degrees: uniform in +-rotate (0: off) */
    float translate[2];   /* RandomAffine translate: fractions of width and height */
    float erase_p;        /* RandomErasing probability (0: off), after normalization */
    float erase_scale[2], erase_ratio[2];
    int erase_random;     /* 1: standard normal values; 0: erase_value */
    float erase_value;
    float angle;          /* darknet [net] angle: bilinear rotation in +-angle degrees */
    float hue;            /* darknet [net] hue: shift in HSV by +-hue (of the full circle) */
    float saturation, exposure; /* darknet [net]: S and V scaled by a factor in [1/s, s] */
    int min_crop, max_crop; /* darknet [net]: > 0 crops as darknet does (shorter side scaled to
                             * min_crop..max_crop, a random window) instead of RandomResizedCrop */
    float aspect;         /* with min_crop: darknet's aspect (the window's width stretched by a
                           * factor in [1/a, a]) */
    char warning[1024];   /* [net] keys that a [data] key overrides, one per line; "" if none */
} gn_augment_opts;

typedef struct gn_data_opts {
    /* sources, resolved against the config file's directory; "" when not configured */
    char train[GN_DATA_PATH_MAX];
    char val[GN_DATA_PATH_MAX];
    char classes[GN_DATA_PATH_MAX];
    /* input geometry from [net]: C x H x W, or a vector of `inputs` values (C=inputs, H=W=1) */
    int channels, height, width;
    int inputs;          /* > 0 for vector input */
    int targets;         /* > 0: the last `targets` CSV columns are regression targets */
    int workers;         /* decoding threads; 0 = auto */
    int prefetch;        /* batches in the ring */
    float scale[2];      /* RandomResizedCrop area range */
    float ratio[2];      /* RandomResizedCrop aspect range */
    int flip;            /* random horizontal flip */
    float jitter[3];     /* brightness, contrast, saturation; 0 = off */
    float mean[3], std[3]; /* in 0..1 units */
    int eval_resize;     /* shorter side before the centre crop */
    double max_bad_fraction;
    int64_t max_pixels;  /* refuse JPEG headers claiming more pixels than this */
    gn_augment_opts aug;
    /* darknet's input convention (docs/data.md): pixels/255 with no mean/std, eval_resize = the
     * input size. Set for a config without its own [data] section, or by
     * gn_data_opts_darknet_input; keys [data] gives (the *_given flags) always win. */
    int darknet_input;
    int mean_given, std_given, eval_resize_given;
    /* mixup and cutmix of training batches (timm's Mixup, docs/recipes.md); 0 alphas = off */
    double mixup_alpha, cutmix_alpha;
    double mix_prob;        /* [data] mixup_prob: the chance that a batch is mixed */
    double mix_switch_prob; /* [data] mixup_switch_prob: cutmix's share when both are on */
} gn_data_opts;

/* Defaults (ImageNet mean/std, scale 0.08..1, ...) with no sources and a 3x224x224 input. */
void gn_data_opts_default(gn_data_opts *o);
/* Reads [data] and the input geometry (width/height/channels or inputs) from [net]; every key
 * read is marked used. darknet's [net] augmentation keys are honoured (angle, hue, saturation,
 * exposure, aspect, min_crop, max_crop, flip) unless a [data] key overrides them; overridden
 * keys are named in o->aug.warning for the caller to show. */
int gn_data_opts_parse(gn_data_opts *o, struct gn_cfg *cfg, struct gn_err *err);
/* Switches o to darknet's input convention, except for what [data] set itself. */
void gn_data_opts_darknet_input(gn_data_opts *o);

enum { GN_SPLIT_TRAIN = 0, GN_SPLIT_VAL = 1 };

typedef struct gn_loader gn_loader;

/* batch = images per call; seed for shuffling/augmentation; split selects train (shuffle +
 * augment, full batches) or val (dataset order, eval transform, short last batch). */
int gn_loader_create(gn_loader **out, const gn_data_opts *o, int split, int batch, uint64_t seed,
                     struct gn_err *err);
int gn_loader_has_split(const gn_data_opts *o, int split);
/* The bytes a loader of `batch` images will allocate up front, without opening the data: its
 * ring of prefetched batches (prefetch slots of images, labels and targets) and each decoding
 * worker's output image; for the planning-time memory check. */
double gn_loader_planned_bytes(const gn_data_opts *o, int batch);
int64_t gn_loader_size(const gn_loader *l);
int gn_loader_classes(const gn_loader *l);            /* 0 for regression */
const char *gn_loader_class_name(const gn_loader *l, int k);
int64_t gn_loader_batches_per_epoch(const gn_loader *l);
/* 1 when this (training) loader mixes batches (mixup/cutmix): gn_loader_next then fills
 * `targets` with batch x classes soft targets beside the labels. */
int gn_loader_soft_targets(const gn_loader *l);
/* Data-parallel: this loader returns only rank's contiguous share (batch images) of each global
 * batch of batch*nranks images, in the same global order as one process would use. Call before
 * the first gn_loader_next (or seek afterwards). */
int gn_loader_set_shard(gn_loader *l, int rank, int nranks);
/* The next batch produced is (epoch, batch_in_epoch). */
int gn_loader_seek(gn_loader *l, int64_t epoch, int64_t batch_in_epoch);
/* Fills x (batch*C*H*W), labels (batch; may be NULL for regression) or targets
 * (batch*targets; may be NULL for classification). *n = images delivered: val's last batch is
 * short, and n = 0 marks the end of a val epoch (the next call starts the next epoch). Train goes
 * on with epoch+1 after the last full batch. */
int gn_loader_next(gn_loader *l, float *x, int *labels, float *targets, int *n,
                   struct gn_err *err);
/* Like gn_loader_next, and also says which batch this was (either pointer may be NULL). The val
 * end-of-epoch marker has *batch_out == gn_loader_batches_per_epoch(l); with shards, this tells it
 * apart from a rank's empty slice of the short last batch (also n = 0). */
int gn_loader_next_at(gn_loader *l, float *x, int *labels, float *targets, int *n,
                      int64_t *epoch_out, int64_t *batch_out, struct gn_err *err);
void gn_loader_position(const gn_loader *l, int64_t *epoch, int64_t *batch_in_epoch);

/* Prediction over a list of image files (gemmnet predict): one pass over paths[0..n) in that
 * order, `batch` files at a time, with the evaluation transform, decoded by the worker
 * threads. Unlike a split, a file that cannot be decoded is skipped, not replaced: its batch is
 * one image shorter. Failures are counted (gn_loader_get_stats), reported through
 * gn_loader_pop_failure, and limited by max_bad_fraction as for a split. paths are copied. */
int gn_loader_create_files(gn_loader **out, const gn_data_opts *o, const char *const *paths,
                           int64_t n, int batch, struct gn_err *err);
/* The next batch of such a loader: *n images into x, and into files (batch long) the index in
 * paths of each. *n may be 0 (every file of that batch failed); *done = 1 after the last. */
int gn_loader_next_files(gn_loader *l, float *x, int64_t *files, int *n, int *done,
                         struct gn_err *err);

typedef struct gn_loader_stats {
    int64_t decoded;      /* images decoded and transformed (batches delivered so far) */
    int64_t failed;       /* decode attempts that failed */
    int64_t failed_files; /* distinct files that failed at least once */
    int64_t batches;      /* batches delivered */
    double wait_s;        /* time gn_loader_next spent waiting for the workers */
    double work_s;        /* worker CPU time spent decoding and transforming */
} gn_loader_stats;
void gn_loader_get_stats(const gn_loader *l, gn_loader_stats *s);
/* The next not yet reported "path: reason", or NULL. The string lives until the next call. */
const char *gn_loader_pop_failure(gn_loader *l);
void gn_loader_free(gn_loader **l);

/* Decode one JPEG file to 8-bit RGB (malloc'ed, w*h*3), refusing headers of more than
 * 100e6 pixels before allocating. */
int gn_jpeg_load_rgb(const char *path, unsigned char **rgb, int *w, int *h, struct gn_err *err);
/* Write 8-bit RGB as a baseline JPEG of the given quality (1..100). */
int gn_jpeg_save_rgb(const char *path, const unsigned char *rgb, int w, int h, int quality,
                     struct gn_err *err);
/* Eval transform of one decoded RGB image (resize shorter side to eval_resize, centre crop to
 * height x width, normalize) into out (channels*height*width floats). */
int gn_data_eval_transform(const gn_data_opts *o, const unsigned char *rgb, int w, int h,
                           float *out);

/* The built-in data set: DIR/train/<class>/NAME.JPEG, DIR/val/<class>/NAME.JPEG, DIR/classes.txt and
 * DIR/.complete (written last). Counts are per class. */
typedef struct gn_synth_opts {
    int classes;             /* 1..10 */
    int train, val;          /* images per class */
    uint64_t seed;
    int min_side, max_side;  /* image sides are drawn from this range (default 150..500) */
} gn_synth_opts;
void gn_synth_opts_default(gn_synth_opts *o);
int gn_synth(const char *dir, const gn_synth_opts *o, struct gn_err *err);
const char *gn_synth_class_name(int k);

#endif
