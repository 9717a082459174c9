/* The [data] section and the input geometry from [net]. */
#include "data/data_internal.h"
#include "gemmnet/cfg.h"
#include "core/util.h"

#include <math.h>
#include <stdio.h>
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
    static const char *const darknet_aug[] = {"min_crop", "max_crop", "aspect", "angle", "hue",
                                              "saturation", "exposure", "flip", NULL};
    gn_cfg_accept(net, darknet_aug);
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
    float jit[3] = {0, 0, 0};
    if ((rc = get_rgb(s, "jitter", jit, 0, err))) return rc;
    memcpy(o->jitter, jit, sizeof jit);
    if (o->channels == 1) {
        o->mean[0] = o->mean[1] = o->mean[2] = 0.449f;
        o->std[0] = o->std[1] = o->std[2] = 0.226f;
    }
    if ((rc = get_rgb(s, "mean", o->mean, -1e30f, err))) return rc;
    if ((rc = get_rgb(s, "std", o->std, 1e-12f, err))) return rc;
    if ((rc = gn_cfg_float(s, "max_bad_fraction", 0.01, 0, 1, &o->max_bad_fraction, err))) return rc;
    double mp = 0;
    if ((rc = gn_cfg_float(s, "max_pixels", 100e6, 1, 1e12, &mp, err))) return rc;
    o->max_pixels = (int64_t)mp;

    int side = GN_MIN(o->width, o->height);
    int def_resize = side > 0 ? (int)lround(side / 0.875) : 0;
    if ((rc = gn_cfg_int(s, "eval_resize", def_resize, 0, 1 << 16, &o->eval_resize, err))) return rc;
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
