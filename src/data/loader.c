/* The batch loader: worker threads decode and transform whole batches into a ring of ready
 * batches, in the order of a job sequence number, while the caller trains on earlier ones.
 *
 * Job seq is the batch (epoch, b) = position at (re)start + seq. Every random choice is derived
 * from (seed, epoch, file index), and a file that fails is replaced by the next file in dataset
 * order that decodes, so a batch's content does not depend on which worker made it or when. */
#include "data/data_internal.h"
#include "core/util.h"

#include <math.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { SLOT_FREE = 0, SLOT_WORKING, SLOT_READY };

typedef struct slot {
    float *x;
    int *labels;
    int64_t *files;  /* files mode: the file of each image */
    float *targets;
    int n;
    int state;
    int64_t seq;
    int status;
    gn_err err;
    int64_t decoded, failed;
} slot;

typedef struct worker {
    struct gn_loader *l;
    pthread_t thread;
    unsigned char *buf;
    size_t buf_cap;
    gn_patch patch;
    gn_scratch scratch;
    float *hwc;
    unsigned char *aug; /* 8-bit augmentation buffers, when they are on */
    int32_t *perm;
    int64_t perm_epoch;
    double work_s;
    int64_t images;
} worker;

struct gn_loader {
    gn_data_opts o;
    int split, batch;
    int files_mode;  /* gn_loader_create_files: failed files skipped, not replaced */
    uint64_t seed;
    gn_dataset d;
    int rank, nranks;
    int64_t bpe;
    size_t per_img;
    int64_t epoch, bidx; /* the next batch the caller gets */
    int mix;             /* train batches are mixed (mixup/cutmix): soft targets */

    int n_workers;
    worker *w;
    int running, stop;
    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_ready;
    slot *ring;
    int n_slots;
    int64_t base_epoch, base_b, next_seq, consume_seq;
    double work_s; /* busy time of all workers, under mu */

    pthread_mutex_t fail_mu;
    unsigned char *bad;
    char **fails;
    int n_fails, cap_fails, fails_read;
    char first_fail[1200];
    char *popped;

    gn_loader_stats st;
};

static void batch_pos(const gn_loader *l, int64_t seq, int64_t *e, int64_t *b)
{
    int64_t k = l->base_b + seq;
    *e = l->base_epoch + k / l->bpe;
    *b = k % l->bpe;
}

static void record_failure(gn_loader *l, int64_t file, const char *reason)
{
    pthread_mutex_lock(&l->fail_mu);
    if (!l->bad[file]) {
        l->bad[file] = 1;
        l->st.failed_files++;
        size_t n = strlen(l->d.paths[file]) + strlen(reason) + 3;
        char *m = malloc(n);
        if (m) snprintf(m, n, "%s: %s", l->d.paths[file], reason);
        if (!l->first_fail[0]) snprintf(l->first_fail, sizeof l->first_fail, "%s: %s", l->d.paths[file], reason);
        if (m && l->n_fails == l->cap_fails) {
            int nc = l->cap_fails ? 2 * l->cap_fails : 16;
            char **nf = realloc(l->fails, (size_t)nc * sizeof *nf);
            if (nf) {
                l->fails = nf;
                l->cap_fails = nc;
            }
        }
        if (m && l->n_fails < l->cap_fails)
            l->fails[l->n_fails++] = m;
        else
            free(m); /* out of memory: the failure is still counted */
    }
    pthread_mutex_unlock(&l->fail_mu);
}

typedef struct region_ctx {
    const gn_loader *l;
    gn_rng *rng;
} region_ctx;

static void train_region(void *ctx, int w, int h, gn_box *b)
{
    region_ctx *c = ctx;
    const gn_data_opts *o = &c->l->o;
    if (o->aug.min_crop > 0) /* darknet's [net] min_crop / max_crop */
        gn_aug_darknet_box(c->rng, w, h, &o->aug, o->width, o->height, b);
    else
        gn_rrc_box(c->rng, w, h, o->scale, o->ratio, b);
}

static void eval_region(void *ctx, int w, int h, gn_box *b)
{
    region_ctx *c = ctx;
    gn_center_box(w, h, c->l->o.eval_resize, c->l->o.width, c->l->o.height, b);
}

/* Decodes and transforms one file into out (C*H*W). */
static int load_image(gn_loader *l, worker *wk, int64_t epoch, int64_t file, float *out, gn_err *err)
{
    size_t len = 0;
    int rc = gn_read_file(l->d.paths[file], &wk->buf, &wk->buf_cap, &len, err);
    if (rc) return rc;
    gn_rng rng = gn_rng_make(gn_rng_key(l->seed, (uint64_t)epoch, (uint64_t)file));
    region_ctx ctx = {l, &rng};
    int train = l->split == GN_SPLIT_TRAIN;
    rc = gn_jpeg_decode(wk->buf, len, l->o.max_pixels, train ? train_region : eval_region, &ctx,
                        l->o.width, l->o.height, 1, &wk->patch, err);
    if (rc) return rc;
    int flip = 0;
    float jit[3] = {1, 1, 1};
    if (train) {
        flip = l->o.flip && gn_rng_uniform(&rng) < 0.5;
        for (int k = 0; k < 3; k++) {
            float j = l->o.jitter[k];
            if (j > 0) {
                double lo = GN_MAX(0.0, 1.0 - j);
                jit[k] = (float)(lo + (1.0 + j - lo) * gn_rng_uniform(&rng));
            }
        }
    }
    /* the common case writes the normalized tensor directly; jitter and gray need a second pass */
    int direct = l->o.channels == 3 && jit[0] == 1 && jit[1] == 1 && jit[2] == 1 && !wk->aug;
    float mul[3] = {1, 1, 1}, add[3] = {0, 0, 0};
    if (direct) gn_normalize_factors(l->o.mean, l->o.std, mul, add);
    float *dst = direct ? out : wk->hwc;
    if (gn_resample(wk->patch.px, wk->patch.w, wk->patch.h, &wk->patch.box, l->o.width,
                    l->o.height, flip, mul, add, dst, &wk->scratch))
        return gn_err_set(err, GN_ENOMEM, "out of memory resampling");
    if (!direct) {
        if (wk->aug) gn_augment_planes(&l->o.aug, &rng, dst, l->o.width, l->o.height, wk->aug);
        gn_finish_tensor(dst, l->o.width, l->o.height, l->o.channels, jit, l->o.mean, l->o.std);
        memcpy(out, dst, sizeof(float) * l->per_img);
    }
    if (train) gn_augment_erase(&l->o.aug, &rng, out, l->o.channels, l->o.width, l->o.height);
    return GN_OK;
}

static int ensure_perm(gn_loader *l, worker *wk, int64_t epoch)
{
    if (wk->perm_epoch == epoch) return GN_OK;
    int64_t n = l->d.n;
    for (int64_t i = 0; i < n; i++) wk->perm[i] = (int32_t)i;
    gn_rng r = gn_rng_make(gn_rng_key(l->seed, (uint64_t)epoch, UINT64_MAX));
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)gn_rng_below(&r, (uint64_t)(i + 1));
        int32_t t = wk->perm[i];
        wk->perm[i] = wk->perm[j];
        wk->perm[j] = t;
    }
    wk->perm_epoch = epoch;
    return GN_OK;
}

/* CPU time of the calling thread: busy time that is not inflated by other processes. */
static double thread_cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void produce(gn_loader *l, worker *wk, int64_t seq, slot *s)
{
    double t0 = thread_cpu_now();
    int64_t e, b;
    batch_pos(l, seq, &e, &b);
    int train = l->split == GN_SPLIT_TRAIN;
    int64_t G = (int64_t)l->batch * l->nranks, start = b * G;
    int64_t count = train ? G : GN_MIN(G, l->d.n - start);
    int64_t mine = GN_MAX(0, GN_MIN((int64_t)l->batch, count - (int64_t)l->rank * l->batch));
    int64_t first = start + (int64_t)l->rank * l->batch;
    s->status = GN_OK;
    s->decoded = s->failed = 0;
    s->n = (int)mine;
    if (train) ensure_perm(l, wk, e);
    if (l->files_mode) {
        /* every file in order; one that fails leaves no image behind (the batch is shorter) */
        int kout = 0;
        for (int64_t k = 0; k < mine; k++) {
            gn_err ferr = {0};
            int rc = load_image(l, wk, e, first + k, s->x + (size_t)kout * l->per_img, &ferr);
            if (rc == GN_OK) {
                s->files[kout++] = first + k;
                s->decoded++;
                continue;
            }
            s->failed++;
            record_failure(l, first + k, ferr.msg);
            if (rc == GN_ENOMEM) {
                s->status = gn_err_set(&s->err, rc, "%s: %s", l->d.paths[first + k], ferr.msg);
                return;
            }
        }
        s->n = kout;
        wk->images += s->decoded;
        wk->work_s += thread_cpu_now() - t0;
        return;
    }
    for (int64_t k = 0; k < mine; k++) {
        int64_t idx = train ? wk->perm[first + k] : first + k;
        if (l->d.kind == GN_SRC_TABLE) {
            const float *row = l->d.table + (size_t)idx * (size_t)(l->d.n_in + l->d.n_tgt);
            memcpy(s->x + (size_t)k * l->per_img, row, sizeof(float) * (size_t)l->d.n_in);
            if (l->d.n_tgt)
                memcpy(s->targets + (size_t)k * l->d.n_tgt, row + l->d.n_in,
                       sizeof(float) * (size_t)l->d.n_tgt);
            else
                s->labels[k] = l->d.labels[idx];
            s->decoded++;
            continue;
        }
        int64_t file = -1;
        for (int64_t a = 0; a < l->d.n; a++) {
            int64_t f = (idx + a) % l->d.n;
            gn_err ferr = {0};
            int rc = load_image(l, wk, e, f, s->x + (size_t)k * l->per_img, &ferr);
            if (rc == GN_OK) {
                file = f;
                break;
            }
            s->failed++;
            record_failure(l, f, ferr.msg);
            if (rc == GN_ENOMEM) {
                s->status = gn_err_set(&s->err, rc, "%s: %s", l->d.paths[f], ferr.msg);
                return;
            }
        }
        if (file < 0) {
            s->status = gn_err_set(&s->err, GN_EFORMAT, "no file of the data set could be decoded");
            return;
        }
        s->labels[k] = l->d.labels[file];
        s->decoded++;
    }
    if (l->mix) {
        /* one draw per global batch (every rank mixes its share with the same lambda), from
         * its own key so the images' draws do not change */
        gn_rng r = gn_rng_make(gn_rng_key(gn_mix64(l->seed ^ 0x6d6978ull), (uint64_t)e,
                                          (uint64_t)b));
        gn_mix m;
        int c = l->d.kind == GN_SRC_TABLE ? l->d.n_in : l->o.channels;
        int h = l->d.kind == GN_SRC_TABLE ? 1 : l->o.height;
        int w = l->d.kind == GN_SRC_TABLE ? 1 : l->o.width;
        gn_mix_draw(&r, &l->o, h, w, &m);
        gn_mix_apply(s->x, s->targets, s->labels, s->n, c, h, w, l->d.n_classes, &m);
    }
    wk->images += s->decoded;
    wk->work_s += thread_cpu_now() - t0; /* read by gn_loader_get_stats under l->mu */
}

static void *worker_main(void *arg)
{
    worker *wk = arg;
    gn_loader *l = wk->l;
    pthread_mutex_lock(&l->mu);
    while (!l->stop) {
        /* files mode has one pass: nothing to decode after its last batch */
        int more = !l->files_mode || l->base_b + l->next_seq < l->bpe;
        if (more && l->next_seq < l->consume_seq + l->n_slots) {
            int64_t seq = l->next_seq++;
            slot *s = &l->ring[seq % l->n_slots];
            s->state = SLOT_WORKING;
            s->seq = seq;
            pthread_mutex_unlock(&l->mu);
            produce(l, wk, seq, s);
            pthread_mutex_lock(&l->mu);
            l->work_s += wk->work_s;
            wk->work_s = 0;
            s->state = SLOT_READY;
            pthread_cond_broadcast(&l->cv_ready);
        } else {
            pthread_cond_wait(&l->cv_work, &l->mu);
        }
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

static void stop_workers(gn_loader *l)
{
    if (!l->running) return;
    pthread_mutex_lock(&l->mu);
    l->stop = 1;
    pthread_cond_broadcast(&l->cv_work);
    pthread_mutex_unlock(&l->mu);
    for (int i = 0; i < l->running; i++) pthread_join(l->w[i].thread, NULL);
    l->running = 0;
    l->stop = 0;
    for (int i = 0; i < l->n_slots; i++) l->ring[i].state = SLOT_FREE;
}

static int start_workers(gn_loader *l, gn_err *err)
{
    l->base_epoch = l->epoch;
    l->base_b = l->bidx;
    l->next_seq = l->consume_seq = 0;
    /* the decoders may run on every CPU of the process, not only the main thread's (which
     * is one core when OpenMP binds threads) */
    pthread_attr_t attr;
    cpu_set_t cpus;
    if (pthread_attr_init(&attr))
        return gn_err_set(err, GN_ENOMEM, "cannot start data worker threads");
    gn_process_cpus(&cpus);
    pthread_attr_setaffinity_np(&attr, sizeof cpus, &cpus);
    int rc = GN_OK;
    for (int i = 0; i < l->n_workers; i++) {
        if (pthread_create(&l->w[i].thread, &attr, worker_main, &l->w[i]) != 0) {
            stop_workers(l);
            rc = gn_err_set(err, GN_ENOMEM, "cannot start data worker threads");
            break;
        }
        l->running = i + 1;
    }
    pthread_attr_destroy(&attr);
    return rc;
}

static int worker_init(gn_loader *l, worker *wk)
{
    wk->l = l;
    wk->perm_epoch = -1;
    if (l->d.kind == GN_SRC_IMAGES) {
        wk->hwc = malloc(sizeof(float) * 3 * (size_t)l->o.width * (size_t)l->o.height);
        if (!wk->hwc) return GN_ENOMEM;
    }
    if (l->d.kind == GN_SRC_IMAGES && l->split == GN_SPLIT_TRAIN && gn_augment_active(&l->o.aug)) {
        wk->aug = malloc(6 * (size_t)l->o.width * (size_t)l->o.height);
        if (!wk->aug) return GN_ENOMEM;
    }
    if (l->split == GN_SPLIT_TRAIN) {
        wk->perm = malloc(sizeof(int32_t) * (size_t)l->d.n);
        if (!wk->perm) return GN_ENOMEM;
    }
    return GN_OK;
}

static void worker_free(worker *wk)
{
    free(wk->buf);
    gn_patch_free(&wk->patch);
    gn_scratch_free(&wk->scratch);
    free(wk->hwc);
    free(wk->aug);
    free(wk->perm);
}

int gn_loader_has_split(const gn_data_opts *o, int split)
{
    return split == GN_SPLIT_TRAIN ? o->train[0] != 0 : o->val[0] != 0;
}

static int default_workers(void)
{
    /* measured on 2 cores (docs/data.md): one worker keeps ahead of training steps while leaving
     * the other core to the compute threads; larger machines get a few more. Cores: those this
     * process may run on (an MPI rank bound to 4 cores of 64 counts 4) */
    cpu_set_t cpus;
    int cores = gn_process_cpus(&cpus);
    if (cores <= 2) return 1;
    return (int)GN_MIN(cores / 2, 8);
}

double gn_loader_planned_bytes(const gn_data_opts *o, int batch)
{
    /* as gn_loader_create allocates them (a table has one worker and no image buffer; it is
     * not known yet whether the source is one, so the image case, the larger, is counted) */
    double per_img = o->inputs > 0 ? (double)o->inputs
                                   : (double)o->channels * o->height * o->width;
    double slot = (double)batch * (per_img * sizeof(float) + sizeof(int) +
                                   (double)GN_MAX(o->targets, 1) * sizeof(float) +
                                   sizeof(int64_t));
    int workers = o->workers > 0 ? o->workers : default_workers();
    /* each worker's output image, and its augmentation buffer (counted whether used or not) */
    double per_worker = 3.0 * o->width * o->height * sizeof(float) + 6.0 * o->width * o->height;
    return GN_MAX(o->prefetch, 1) * slot + workers * per_worker;
}

static int loader_finish(gn_loader **out, gn_loader *l, const char *path, gn_err *err);

static int set_batches(gn_loader *l, gn_err *err)
{
    int64_t G = (int64_t)l->batch * l->nranks;
    l->bpe = l->split == GN_SPLIT_TRAIN ? l->d.n / G : (l->d.n + G - 1) / G;
    if (l->bpe == 0)
        return gn_err_set(err, GN_EINVAL, "%lld samples are fewer than one batch of %lld",
                          (long long)l->d.n, (long long)G);
    return GN_OK;
}

static gn_loader *loader_alloc(const gn_data_opts *o, int split, int batch, uint64_t seed)
{
    gn_loader *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    l->o = *o;
    l->split = split;
    l->batch = batch;
    l->seed = seed;
    l->rank = 0;
    l->nranks = 1;
    pthread_mutex_init(&l->mu, NULL);
    pthread_mutex_init(&l->fail_mu, NULL);
    pthread_cond_init(&l->cv_work, NULL);
    pthread_cond_init(&l->cv_ready, NULL);
    return l;
}

int gn_loader_create(gn_loader **out, const gn_data_opts *o, int split, int batch, uint64_t seed,
                     gn_err *err)
{
    *out = NULL;
    if (split != GN_SPLIT_TRAIN && split != GN_SPLIT_VAL)
        return gn_err_set(err, GN_EINVAL, "bad split %d", split);
    if (batch <= 0) return gn_err_set(err, GN_EINVAL, "batch must be positive, not %d", batch);
    const char *path = split == GN_SPLIT_TRAIN ? o->train : o->val;
    if (!*path)
        return gn_err_set(err, GN_ECONFIG, "no [data] %s source configured",
                          split == GN_SPLIT_TRAIN ? "train" : "val");
    gn_loader *l = loader_alloc(o, split, batch, seed);
    if (!l) return gn_err_set(err, GN_ENOMEM, "out of memory");
    int rc = GN_OK;
    /* val takes its class indices from train's class directories */
    char **ref = NULL;
    int n_ref = 0;
    if (split == GN_SPLIT_VAL && !o->classes[0] && o->train[0] && gn_is_dir(o->train) &&
        gn_is_dir(o->val)) {
        rc = gn_folder_classes(o->train, &ref, &n_ref, err);
        if (rc) goto fail;
    }
    int n_in = o->inputs > 0 ? o->inputs : o->channels * o->height * o->width;
    rc = gn_dataset_open(&l->d, path, o->classes, ref, n_ref, n_in, o->targets, err);
    gn_names_free(ref, n_ref);
    if (rc) goto fail;
    return loader_finish(out, l, path, err);
fail:
    gn_loader_free(&l);
    return rc;
}

/* The part of gn_loader_create after the data set is open: checks, threads, the ring. */
static int loader_finish(gn_loader **out, gn_loader *l, const char *path, gn_err *err)
{
    const gn_data_opts *o = &l->o;
    int batch = l->batch, rc;
    if (l->d.kind == GN_SRC_IMAGES && o->targets > 0) {
        rc = gn_err_set(err, GN_ECONFIG, "%s: [data] targets applies to .csv tables only", path);
        goto fail;
    }
    if (l->d.kind == GN_SRC_IMAGES && (o->width <= 0 || o->height <= 0 ||
                                       (o->channels != 1 && o->channels != 3))) {
        rc = gn_err_set(err, GN_ECONFIG, "image input needs [net] width, height and channels 1 or 3");
        goto fail;
    }
    if (l->d.n > INT32_MAX) {
        rc = gn_err_set(err, GN_ENOTSUP, "%s: more than 2^31 samples", path);
        goto fail;
    }
    l->per_img = l->d.kind == GN_SRC_TABLE ? (size_t)l->d.n_in
                                            : (size_t)o->channels * o->height * o->width;
    if ((rc = set_batches(l, err))) goto fail;
    l->bad = calloc((size_t)l->d.n, 1);
    l->n_workers = l->d.kind == GN_SRC_TABLE ? 1 : o->workers > 0 ? o->workers : default_workers();
    l->n_slots = GN_MAX(o->prefetch, 1);
    l->w = calloc((size_t)l->n_workers, sizeof *l->w);
    l->ring = calloc((size_t)l->n_slots, sizeof *l->ring);
    if (!l->bad || !l->w || !l->ring) goto oom;
    for (int i = 0; i < l->n_workers; i++)
        if (worker_init(l, &l->w[i])) goto oom;
    l->mix = l->split == GN_SPLIT_TRAIN && (o->mixup_alpha > 0 || o->cutmix_alpha > 0) &&
             o->mix_prob > 0;
    if (l->mix && l->d.n_tgt) {
        rc = gn_err_set(err, GN_ECONFIG, "%s: [data] mixup_alpha and cutmix_alpha need class "
                        "labels, not regression targets", path);
        goto fail;
    }
    int nt = l->mix ? l->d.n_classes : l->d.n_tgt;
    for (int i = 0; i < l->n_slots; i++) {
        slot *s = &l->ring[i];
        s->x = gn_alloc((size_t)batch * l->per_img, sizeof(float));
        s->labels = gn_alloc((size_t)batch, sizeof(int));
        s->targets = gn_alloc((size_t)batch * (size_t)GN_MAX(nt, 1), sizeof(float));
        s->files = gn_alloc((size_t)batch, sizeof(int64_t));
        if (!s->x || !s->labels || !s->targets || !s->files) goto oom;
    }
    *out = l;
    return GN_OK;
oom:
    rc = gn_err_set(err, GN_ENOMEM, "out of memory for the loader (batch %d)", batch);
fail:
    gn_loader_free(&l);
    return rc;
}

int gn_loader_create_files(gn_loader **out, const gn_data_opts *o, const char *const *paths,
                           int64_t n, int batch, gn_err *err)
{
    *out = NULL;
    if (batch <= 0) return gn_err_set(err, GN_EINVAL, "batch must be positive, not %d", batch);
    if (n <= 0) return gn_err_set(err, GN_EINVAL, "no image files");
    if (n > INT32_MAX) return gn_err_set(err, GN_ENOTSUP, "more than 2^31 files");
    if (o->inputs > 0 || o->width <= 0 || o->height <= 0 || (o->channels != 1 && o->channels != 3))
        return gn_err_set(err, GN_ECONFIG, "image input needs [net] width, height and channels 1 "
                          "or 3");
    if (o->eval_resize < GN_MIN(o->width, o->height))
        return gn_err_set(err, GN_ECONFIG, "[data] eval_resize %d is smaller than the input "
                          "size %d", o->eval_resize, GN_MIN(o->width, o->height));
    gn_loader *l = loader_alloc(o, GN_SPLIT_VAL, batch, 1);
    if (!l) return gn_err_set(err, GN_ENOMEM, "out of memory");
    l->files_mode = 1;
    l->d.kind = GN_SRC_IMAGES;
    l->d.paths = calloc((size_t)n, sizeof *l->d.paths);
    l->d.labels = calloc((size_t)n, sizeof *l->d.labels);
    if (!l->d.paths || !l->d.labels) goto oom;
    for (int64_t i = 0; i < n; i++) {
        l->d.n = i + 1;
        if (!(l->d.paths[i] = gn_strdup(paths[i]))) goto oom;
    }
    return loader_finish(out, l, "the image list", err);
oom:
    gn_loader_free(&l);
    return gn_err_set(err, GN_ENOMEM, "out of memory for %lld file names", (long long)n);
}

int64_t gn_loader_size(const gn_loader *l) { return l->d.n; }
int gn_loader_classes(const gn_loader *l) { return l->d.n_tgt ? 0 : l->d.n_classes; }

const char *gn_loader_class_name(const gn_loader *l, int k)
{
    return k >= 0 && k < l->d.n_classes ? l->d.class_names[k] : NULL;
}

int64_t gn_loader_batches_per_epoch(const gn_loader *l) { return l->bpe; }
int gn_loader_soft_targets(const gn_loader *l) { return l->mix; }

int gn_loader_set_shard(gn_loader *l, int rank, int nranks)
{
    if (nranks < 1 || rank < 0 || rank >= nranks) return GN_EINVAL;
    int64_t G = (int64_t)l->batch * nranks;
    if (l->d.n / G == 0) return GN_EINVAL;
    stop_workers(l);
    l->rank = rank;
    l->nranks = nranks;
    set_batches(l, NULL);
    if (l->bidx > l->bpe) l->bidx = 0;
    return GN_OK;
}

int gn_loader_seek(gn_loader *l, int64_t epoch, int64_t batch_in_epoch)
{
    if (epoch < 0 || batch_in_epoch < 0 || batch_in_epoch >= l->bpe) return GN_EINVAL;
    stop_workers(l);
    l->epoch = epoch;
    l->bidx = batch_in_epoch;
    return GN_OK;
}

void gn_loader_position(const gn_loader *l, int64_t *epoch, int64_t *batch_in_epoch)
{
    if (epoch) *epoch = l->epoch;
    if (batch_in_epoch) *batch_in_epoch = l->bidx;
}

static int next_impl(gn_loader *l, float *x, int *labels, float *targets, int64_t *files,
                     int *n, int64_t *epoch_out, int64_t *batch_out, gn_err *err)
{
    *n = 0;
    if (epoch_out) *epoch_out = l->epoch;
    if (batch_out) *batch_out = l->bidx;
    if (l->split == GN_SPLIT_VAL && l->bidx == l->bpe) {
        /* the end-of-epoch marker; the workers are already on the next epoch */
        l->epoch++;
        l->bidx = 0;
        return GN_OK;
    }
    if (!l->running) {
        int rc = start_workers(l, err);
        if (rc) return rc;
    }
    int64_t seq = l->consume_seq;
    slot *s = &l->ring[seq % l->n_slots];
    double t0 = gn_now();
    pthread_mutex_lock(&l->mu);
    while (!(s->state == SLOT_READY && s->seq == seq)) pthread_cond_wait(&l->cv_ready, &l->mu);
    pthread_mutex_unlock(&l->mu);
    l->st.wait_s += gn_now() - t0;

    int rc = s->status;
    if (rc) {
        gn_err_set(err, rc, "%s", s->err.msg);
    } else {
        size_t ni = (size_t)s->n;
        memcpy(x, s->x, sizeof(float) * ni * l->per_img);
        if (labels && !l->d.n_tgt) memcpy(labels, s->labels, sizeof(int) * ni);
        if (targets && l->d.n_tgt) memcpy(targets, s->targets, sizeof(float) * ni * (size_t)l->d.n_tgt);
        if (files) memcpy(files, s->files, sizeof(int64_t) * ni);
        if (targets && l->mix)
            memcpy(targets, s->targets, sizeof(float) * ni * (size_t)l->d.n_classes);
        *n = s->n;
    }
    l->st.decoded += s->decoded;
    l->st.failed += s->failed;
    l->st.batches++;
    pthread_mutex_lock(&l->mu);
    s->state = SLOT_FREE;
    l->consume_seq++;
    pthread_cond_broadcast(&l->cv_work);
    pthread_mutex_unlock(&l->mu);
    if (++l->bidx == l->bpe && l->split == GN_SPLIT_TRAIN) {
        l->epoch++;
        l->bidx = 0;
    }
    if (rc) return rc;
    int64_t attempts = l->st.decoded + l->st.failed;
    if (attempts >= 20 && (double)l->st.failed > l->o.max_bad_fraction * (double)attempts) {
        pthread_mutex_lock(&l->fail_mu);
        rc = gn_err_set(err, GN_EFORMAT,
                        "%lld of %lld image reads failed (%.1f%%), more than max_bad_fraction=%g; "
                        "first: %s",
                        (long long)l->st.failed, (long long)attempts,
                        100.0 * (double)l->st.failed / (double)attempts, l->o.max_bad_fraction,
                        l->first_fail);
        pthread_mutex_unlock(&l->fail_mu);
        return rc;
    }
    return GN_OK;
}

int gn_loader_next_at(gn_loader *l, float *x, int *labels, float *targets, int *n,
                      int64_t *epoch_out, int64_t *batch_out, gn_err *err)
{
    return next_impl(l, x, labels, targets, NULL, n, epoch_out, batch_out, err);
}

int gn_loader_next_files(gn_loader *l, float *x, int64_t *files, int *n, int *done, gn_err *err)
{
    *n = 0;
    *done = l->bidx == l->bpe;
    if (*done) return GN_OK;
    return next_impl(l, x, NULL, NULL, files, n, NULL, NULL, err);
}

int gn_loader_next(gn_loader *l, float *x, int *labels, float *targets, int *n, gn_err *err)
{
    return gn_loader_next_at(l, x, labels, targets, n, NULL, NULL, err);
}

void gn_loader_get_stats(const gn_loader *l, gn_loader_stats *s)
{
    *s = l->st;
    gn_loader *m = (gn_loader *)l;
    pthread_mutex_lock(&m->fail_mu);
    s->failed_files = l->st.failed_files;
    pthread_mutex_unlock(&m->fail_mu);
    pthread_mutex_lock(&m->mu);
    s->work_s = l->work_s;
    pthread_mutex_unlock(&m->mu);
}

const char *gn_loader_pop_failure(gn_loader *l)
{
    free(l->popped);
    l->popped = NULL;
    pthread_mutex_lock(&l->fail_mu);
    if (l->fails_read < l->n_fails) {
        l->popped = l->fails[l->fails_read];
        l->fails[l->fails_read++] = NULL;
    }
    pthread_mutex_unlock(&l->fail_mu);
    return l->popped;
}

void gn_loader_free(gn_loader **lp)
{
    gn_loader *l = *lp;
    if (!l) return;
    stop_workers(l);
    if (l->w)
        for (int i = 0; i < l->n_workers; i++) worker_free(&l->w[i]);
    free(l->w);
    if (l->ring)
        for (int i = 0; i < l->n_slots; i++) {
            gn_free(l->ring[i].x);
            gn_free(l->ring[i].labels);
            gn_free(l->ring[i].targets);
            gn_free(l->ring[i].files);
        }
    free(l->ring);
    for (int i = 0; i < l->n_fails; i++) free(l->fails[i]);
    free(l->fails);
    free(l->popped);
    free(l->bad);
    gn_dataset_free(&l->d);
    pthread_mutex_destroy(&l->mu);
    pthread_mutex_destroy(&l->fail_mu);
    pthread_cond_destroy(&l->cv_work);
    pthread_cond_destroy(&l->cv_ready);
    free(l);
    *lp = NULL;
}

int gn_data_eval_transform(const gn_data_opts *o, const unsigned char *rgb, int w, int h, float *out)
{
    gn_box b;
    gn_center_box(w, h, o->eval_resize, o->width, o->height, &b);
    gn_scratch s = {0};
    const float one[3] = {1, 1, 1}, zero[3] = {0, 0, 0};
    float *tmp = malloc(sizeof(float) * 3 * (size_t)o->width * (size_t)o->height);
    int rc = tmp ? gn_resample(rgb, w, h, &b, o->width, o->height, 0, one, zero, tmp, &s) : GN_ENOMEM;
    if (rc == GN_OK) {
        gn_finish_tensor(tmp, o->width, o->height, o->channels, NULL, o->mean, o->std);
        memcpy(out, tmp, sizeof(float) * (size_t)o->channels * o->width * o->height);
    }
    free(tmp);
    gn_scratch_free(&s);
    return rc;
}
