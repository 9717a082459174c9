/* The [data] section and the input geometry from [net]. */
#include "data/data_internal.h"
#include "gemmnet/cfg.h"
#include "core/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void gn_data_opts_default(gn_data_opts *o)
{
    memset(o, 0, sizeof *o);
    o->channels = 3;
    o->height = o->width = 224;
    o->workers = 0;
    o->prefetch = 4;
    o->scale[0] = 0.08f;
    o->scale[1] = 1.0f;
    o->ratio[0] = 3.0f / 4.0f;
    o->ratio[1] = 4.0f / 3.0f;
    o->flip = 1;
    const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
    memcpy(o->mean, mean, sizeof mean);
    memcpy(o->std, std, sizeof std);
    o->eval_resize = 256;
    o->max_bad_fraction = 0.01;
    o->max_pixels = 100000000;
    o->aug.ra_n = 2;
    o->aug.ra_m = 9;
    o->aug.erase_scale[0] = 0.02f;
    o->aug.erase_scale[1] = 0.33f;
    o->aug.erase_ratio[0] = 0.3f;
    o->aug.erase_ratio[1] = 3.3f;
    o->aug.saturation = o->aug.exposure = 1;
    o->mix_prob = 1.0;
    o->mix_switch_prob = 0.5;
}

void gn_data_opts_darknet_input(gn_data_opts *o)
{
    o->darknet_input = 1;
    for (int k = 0; k < 3; k++) {
        if (!o->mean_given) o->mean[k] = 0.0f;
        if (!o->std_given) o->std[k] = 1.0f;
    }
    if (!o->eval_resize_given) o->eval_resize = GN_MIN(o->width, o->height);
}

/* Resolves a path from the config against the config file's directory. */
static int resolve(char *dst, const char *cfg_path, const char *val, const gn_cfg_kv *kv,
                   gn_cfg_section *s, gn_err *err)
{
    int n;
    const char *slash = cfg_path ? strrchr(cfg_path, '/') : NULL;
    if (val[0] == '/' || !slash)
        n = snprintf(dst, GN_DATA_PATH_MAX, "%s", val);
    else
        n = snprintf(dst, GN_DATA_PATH_MAX, "%.*s/%s", (int)(slash - cfg_path), cfg_path, val);
    if (n < 0 || n >= GN_DATA_PATH_MAX) return gn_cfg_error(kv, s, err, GN_ECONFIG, "path too long");
    return GN_OK;
}

static int get_path(gn_cfg *cfg, gn_cfg_section *s, const char *key, char *dst, gn_err *err)
{
    const char *v = NULL;
    int rc = gn_cfg_str(s, key, NULL, &v, err);
    if (rc || !v) return rc;
    return resolve(dst, cfg->path, v, gn_cfg_kv_find(s, key), s, err);
}

static int get_pair(gn_cfg_section *s, const char *key, float out[2], float lo, float hi,
                    gn_err *err)
{
    float v[2];
    int n = 0;
    int rc = gn_cfg_float_list(s, key, v, 2, &n, err);
    if (rc || n == 0) return rc;
    if (n != 2 || !(v[0] >= lo && v[1] <= hi && v[0] <= v[1]))
        return gn_cfg_error(gn_cfg_kv_find(s, key), s, err, GN_ECONFIG,
                            "expected min,max with %g <= min <= max <= %g", lo, hi);
    out[0] = v[0];
    out[1] = v[1];
    return GN_OK;
}

/* 1 or 3 values (1: the same for every channel). */
static int get_rgb(gn_cfg_section *s, const char *key, float out[3], float lo, gn_err *err)
{
    float v[3];
    int n = 0;
    int rc = gn_cfg_float_list(s, key, v, 3, &n, err);
    if (rc || n == 0) return rc;
    if (n == 2) return gn_cfg_error(gn_cfg_kv_find(s, key), s, err, GN_ECONFIG, "expected 1 or 3 values");
    for (int k = 0; k < 3; k++) {
        float x = n == 1 ? v[0] : v[k];
        if (!(x >= lo) || !isfinite(x))
            return gn_cfg_error(gn_cfg_kv_find(s, key), s, err, GN_ECONFIG, "values must be >= %g", lo);
        out[k] = x;
    }
    return GN_OK;
}

/* Appends "file:line: [net] key=value: why" to the warning lines. */
static void warn_key(gn_augment_opts *a, gn_cfg_section *s, const char *key, const char *why)
{
    gn_cfg_kv *kv = gn_cfg_kv_find(s, key);
    if (!kv) return;
    kv->used = 1; /* not an unknown key: it is reported here */
    size_t n = strlen(a->warning);
    char at[512];
    if (kv->file && !strcmp(kv->file, "--set"))
        snprintf(at, sizeof at, "--set (argument %d)", kv->line);
    else
        snprintf(at, sizeof at, "%s:%d", kv->file ? kv->file : "?", kv->line);
    snprintf(a->warning + n, sizeof a->warning - n, "%s%s: [net] %s=%s: %s", n ? "\n" : "", at,
             kv->key, kv->val, why);
}

/* darknet's [net] augmentation keys with darknet's meaning (docs/data.md), unless a [data] key
 * says the same thing; what is not honoured is named in o->aug.warning. */
static int parse_darknet_aug(gn_data_opts *o, gn_cfg_section *net, gn_cfg_section *s, gn_err *err)
{
    gn_augment_opts *a = &o->aug;
    int rc;
    double v;
    if (gn_cfg_has(s, "rotate")) {
        warn_key(a, net, "angle", "not used: [data] rotate is given");
    } else {
        if ((rc = gn_cfg_float(net, "angle", 0, 0, 180, &v, err))) return rc;
        a->angle = (float)v;
    }
    static const char *const colour[] = {"hue", "saturation", "exposure"};
    for (int k = 0; k < 3; k++) {
        if (gn_cfg_has(s, "jitter")) {
            warn_key(a, net, colour[k], "not used: [data] jitter is given");
            continue;
        }
        if (k == 0) {
            if ((rc = gn_cfg_float(net, "hue", 0, 0, 1, &v, err))) return rc;
            a->hue = (float)v;
        } else {
            if ((rc = gn_cfg_float(net, colour[k], 1, 1e-3, 1e3, &v, err))) return rc;
            *(k == 1 ? &a->saturation : &a->exposure) = (float)v;
        }
    }
    /* min_crop / max_crop: darknet's crop instead of RandomResizedCrop, and aspect stretches
     * its window; with [data] scale or ratio, RandomResizedCrop, and aspect becomes ratio */
    int rrc = gn_cfg_has(s, "scale") || gn_cfg_has(s, "ratio");
    int dk_crop = !rrc && (gn_cfg_has(net, "min_crop") || gn_cfg_has(net, "max_crop"));
    if (dk_crop) {
        /* darknet's defaults: min_crop = width, max_crop = 2 * width */
        if ((rc = gn_cfg_int(net, "min_crop", GN_MAX(o->width, 1), 1, 1 << 16, &a->min_crop, err)))
            return rc;
        if ((rc = gn_cfg_int(net, "max_crop", GN_MAX(2 * o->width, 1), 1, 1 << 16, &a->max_crop, err)))
            return rc;
        if ((rc = gn_cfg_float(net, "aspect", 1, 1e-3, 1e3, &v, err))) return rc;
        a->aspect = (float)v;
    } else {
        static const char *const crop[] = {"min_crop", "max_crop"};
        for (int k = 0; k < 2; k++)
            warn_key(a, net, crop[k], "not used: [data] scale or ratio is given (RandomResizedCrop)");
        if (gn_cfg_has(s, "ratio")) {
            warn_key(a, net, "aspect", "not used: [data] ratio is given");
        } else if (gn_cfg_has(net, "aspect")) {
            if ((rc = gn_cfg_float(net, "aspect", 1, 1e-3, 1e3, &v, err))) return rc;
            o->ratio[0] = (float)GN_MIN(v, 1 / v);
            o->ratio[1] = (float)GN_MAX(v, 1 / v);
        }
    }
    if (gn_cfg_has(s, "flip")) {
        warn_key(a, net, "flip", "not used: [data] flip is given");
    } else if ((rc = gn_cfg_bool(net, "flip", o->flip, &o->flip, err))) {
        return rc;
    }
    return GN_OK;
}

/* Reads a [data] float in [lo, hi] with a message that says why the range is what it is. */
static int get_float(gn_cfg_section *s, const char *key, double def, double lo, double hi,
                     const char *why, float *out, gn_err *err)
{
    double v;
    int rc = gn_cfg_float(s, key, def, -1e30, 1e30, &v, err);
    if (rc) return rc;
    if (!(v >= lo && v <= hi))
        return gn_cfg_error(gn_cfg_kv_find(s, key), s, err, GN_ECONFIG, "%g is outside [%g, %g]%s%s",
                            v, lo, hi, why ? ": " : "", why ? why : "");
    *out = (float)v;
    return GN_OK;
}

/* RandAugment, TrivialAugmentWide, RandomAffine and RandomErasing keys of [data]. */
static int parse_augment(gn_data_opts *o, gn_cfg_section *s, gn_err *err)
{
    static const char *const policies[] = {"none", "randaugment", "trivialaugment",
                                           "trivialaugmentwide", NULL};
    static const char *const interp[] = {"nearest", "bilinear", NULL};
    gn_augment_opts *a = &o->aug;
    int rc, pol;
    if ((rc = gn_cfg_enum(s, "augment", policies, 0, &pol, err))) return rc;
    a->policy = pol >= 2 ? GN_AUGMENT_TRIVIALAUGMENT : pol;
    static const char *const ra_keys[] = {"randaugment_n", "randaugment_m", "randaugment_mstd"};
    for (int k = 0; k < 3; k++)
        if (a->policy != GN_AUGMENT_RANDAUGMENT && gn_cfg_has(s, ra_keys[k]))
            return gn_cfg_error(gn_cfg_kv_find(s, ra_keys[k]), s, err, GN_ECONFIG,
                                "applies to augment=randaugment only");
    if ((rc = gn_cfg_int(s, "randaugment_n", 2, 0, 64, &a->ra_n, err))) return rc;
    if ((rc = get_float(s, "randaugment_m", 9, 0, GN_AUG_BINS - 1,
                        "torchvision's magnitude bins are 0..30", &a->ra_m, err)))
        return rc;
    if ((rc = get_float(s, "randaugment_mstd", 0, 0, 100, NULL, &a->ra_mstd, err))) return rc;
    if ((rc = gn_cfg_enum(s, "augment_interpolation", interp, 0, &a->bilinear, err))) return rc;
    if ((rc = get_rgb(s, "augment_fill", a->fill, 0, err))) return rc;
    for (int k = 0; k < 3; k++)
        if (a->fill[k] > 255)
            return gn_cfg_error(gn_cfg_kv_find(s, "augment_fill"), s, err, GN_ECONFIG,
                                "values are pixels, 0..255");
    if ((rc = get_float(s, "rotate", 0, 0, 180, "degrees", &a->rotate, err))) return rc;
    float t[2];
    int n = 0;
    if ((rc = gn_cfg_float_list(s, "translate", t, 2, &n, err))) return rc;
    for (int k = 0; k < n; k++)
        if (!(t[k] >= 0 && t[k] <= 1))
            return gn_cfg_error(gn_cfg_kv_find(s, "translate"), s, err, GN_ECONFIG,
                                "fractions of the side, 0..1");
    if (n) a->translate[0] = t[0], a->translate[1] = t[n - 1];
    if ((rc = get_float(s, "erasing", 0, 0, 1, "a probability", &a->erase_p, err))) return rc;
    if ((rc = get_pair(s, "erasing_scale", a->erase_scale, 1e-6f, 1, err))) return rc;
    if ((rc = get_pair(s, "erasing_ratio", a->erase_ratio, 1e-3f, 1e3f, err))) return rc;
    const char *ev = NULL;
    if ((rc = gn_cfg_str(s, "erasing_value", NULL, &ev, err))) return rc;
    if (ev && !strcasecmp(ev, "random")) {
        a->erase_random = 1;
    } else if (ev) {
        char *end;
        double v = strtod(ev, &end);
        if (end == ev || *end || !isfinite(v))
            return gn_cfg_error(gn_cfg_kv_find(s, "erasing_value"), s, err, GN_ECONFIG,
                                "expected a number (normalized units) or random");
        a->erase_value = (float)v;
    }
    return GN_OK;
}

static int is_csv(const char *p)
{
    size_t n = strlen(p);
    return n >= 4 && !strcasecmp(p + n - 4, ".csv");
}

int gn_data_opts_parse(gn_data_opts *o, gn_cfg *cfg, gn_err *err)
{
    gn_data_opts_default(o);
    gn_cfg_section *net = gn_cfg_section_find(cfg, "net");
    gn_cfg_section *s = gn_cfg_section_find(cfg, "data");
    int rc;
    if ((rc = get_path(cfg, s, "train", o->train, err))) return rc;
    if ((rc = get_path(cfg, s, "val", o->val, err))) return rc;
    if ((rc = get_path(cfg, s, "classes", o->classes, err))) return rc;

    int inputs = 0, w = 0, h = 0, c = 0;
    if ((rc = gn_cfg_int(net, "inputs", 0, 0, 1 << 30, &inputs, err))) return rc;
    if ((rc = gn_cfg_int(net, "width", 0, 0, 1 << 16, &w, err))) return rc;
    if ((rc = gn_cfg_int(net, "height", 0, 0, 1 << 16, &h, err))) return rc;
    if ((rc = gn_cfg_int(net, "channels", 0, 0, 1 << 16, &c, err))) return rc;
    if (inputs > 0) {
        o->inputs = inputs;
        o->channels = inputs;
        o->height = o->width = 1;
    } else {
        o->width = w;
        o->height = h;
        o->channels = c ? c : 3;
    }
    if ((rc = gn_cfg_int(s, "targets", 0, 0, 1 << 20, &o->targets, err))) return rc;
    if ((rc = gn_cfg_int(s, "workers", 0, 0, 256, &o->workers, err))) return rc;
    if ((rc = gn_cfg_int(s, "prefetch", 4, 1, 1024, &o->prefetch, err))) return rc;
    if ((rc = get_pair(s, "scale", o->scale, 1e-6f, 1.0f, err))) return rc;
    if ((rc = get_pair(s, "ratio", o->ratio, 1e-3f, 1e3f, err))) return rc;
    if ((rc = gn_cfg_bool(s, "flip", 1, &o->flip, err))) return rc;
    if ((rc = parse_darknet_aug(o, net, s, err))) return rc;
    if ((rc = parse_augment(o, s, err))) return rc;
    float jit[3] = {0, 0, 0};
    if ((rc = get_rgb(s, "jitter", jit, 0, err))) return rc;
    memcpy(o->jitter, jit, sizeof jit);
    if (o->channels == 1) {
        o->mean[0] = o->mean[1] = o->mean[2] = 0.449f;
        o->std[0] = o->std[1] = o->std[2] = 0.226f;
    }
    if ((rc = get_rgb(s, "mean", o->mean, -1e30f, err))) return rc;
    if ((rc = get_rgb(s, "std", o->std, 1e-12f, err))) return rc;
    o->mean_given = gn_cfg_kv_find(s, "mean") != NULL;
    o->std_given = gn_cfg_kv_find(s, "std") != NULL;
    if ((rc = gn_cfg_float(s, "max_bad_fraction", 0.01, 0, 1, &o->max_bad_fraction, err))) return rc;
    double mp = 0;
    if ((rc = gn_cfg_float(s, "max_pixels", 100e6, 1, 1e12, &mp, err))) return rc;
    o->max_pixels = (int64_t)mp;
    if ((rc = gn_cfg_float(s, "mixup_alpha", 0, 0, 1e6, &o->mixup_alpha, err))) return rc;
    if ((rc = gn_cfg_float(s, "cutmix_alpha", 0, 0, 1e6, &o->cutmix_alpha, err))) return rc;
    if ((rc = gn_cfg_float(s, "mixup_prob", 1, 0, 1, &o->mix_prob, err))) return rc;
    if ((rc = gn_cfg_float(s, "mixup_switch_prob", 0.5, 0, 1, &o->mix_switch_prob, err))) return rc;

    int side = GN_MIN(o->width, o->height);
    int def_resize = side > 0 ? (int)lround(side / 0.875) : 0;
    if ((rc = gn_cfg_int(s, "eval_resize", def_resize, 0, 1 << 16, &o->eval_resize, err))) return rc;
    o->eval_resize_given = gn_cfg_kv_find(s, "eval_resize") != NULL;
    /* darknet's own configs have no [data] section (one made by --set alone has line 0) */
    if (!s || s->line <= 0) gn_data_opts_darknet_input(o);
    int images = 0;
    const char *srcs[2] = {o->train, o->val};
    for (int k = 0; k < 2; k++)
        if (*srcs[k] && !is_csv(srcs[k])) images = 1;
    if (images) {
        if (o->inputs > 0 || o->width <= 0 || o->height <= 0)
            return gn_cfg_error(NULL, net ? net : s, err, GN_ECONFIG,
                                "an image data source needs [net] width and height (not inputs)");
        if (o->channels != 1 && o->channels != 3)
            return gn_cfg_error(gn_cfg_kv_find(net, "channels"), net, err, GN_ECONFIG,
                                "image input needs channels=1 or 3");
        if (o->eval_resize < side)
            return gn_cfg_error(gn_cfg_kv_find(s, "eval_resize"), s, err, GN_ECONFIG,
                                "eval_resize %d is smaller than the input size %d", o->eval_resize,
                                side);
    }
    return GN_OK;
}
