/* Activation maximization, deep dream and saliency: gradients of one layer's output with
 * respect to the input pixels, from the same backward pass that trains the weights.
 *
 * Shape letters: C channels, H x W the net's input, h x w an octave's (smaller) image. */
#include "gemmnet/viz.h"
#include "core/rng.h"
#include "core/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void gn_viz_opts_default(gn_viz_opts *o)
{
    memset(o, 0, sizeof *o);
    o->steps = 64;
    o->lr = 0.05f;
    o->l2 = 0.01f;
    o->tv = 0.05f;
    o->jitter = 2;
    o->octaves = 3;
    o->octave_scale = 1.4f;
    o->init_std = 0.1f;
    o->seed = 1;
    const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
    memcpy(o->mean, mean, sizeof mean);
    memcpy(o->std, std, sizeof std);
}

int gn_viz_score_layer(const gn_net *net)
{
    for (int i = net->n_layers - 1; i >= 0; i--)
        if (!strcmp(net->layers[i].ops->section, "softmax"))
            return net->layers[i].in_idx[0] >= 0 ? net->layers[i].in_idx[0] : i;
    return net->n_layers - 1;
}

static int check_target(gn_net *net, int layer, gn_viz_objective obj, int unit,
                        gn_err *err)
{
    if (layer < 0 || layer >= net->n_layers)
        return gn_err_set(err, GN_EINVAL, "layer %d does not exist (the net has %d layers)",
                          layer, net->n_layers);
    if (obj == GN_VIZ_UNIT && (unit < 0 || unit >= net->layers[layer].out.c))
        return gn_err_set(err, GN_EINVAL, "layer %d (%s) has %d %s; there is no unit %d", layer,
                          net->layers[layer].ops->section, net->layers[layer].out.c,
                          net->layers[layer].out.h * net->layers[layer].out.w > 1 ? "channels"
                                                                                  : "outputs",
                          unit);
    if (obj != GN_VIZ_UNIT && obj != GN_VIZ_DREAM)
        return gn_err_set(err, GN_EINVAL, "unknown objective %d", (int)obj);
    return gn_net_enable_dinput(net, err);
}

/* Runs the net on net->input (image 0) and backward from layer; returns the objective. On
 * return net->dinput holds its gradient with respect to the input. */
static double forward_backward(gn_net *net, int layer, gn_viz_objective obj, int unit)
{
    gn_ctx ctx = gn_net_ctx(net, 0);
    ctx.batch = 1;
    ctx.loss_scale = 1.0f;
    gn_net_forward(net, &ctx);
    gn_net_zero_dacts(net);
    gn_layer *l = &net->layers[layer];
    size_t hw = (size_t)l->out.h * l->out.w, n = (size_t)l->out.c * hw;
    double v = 0;
    if (obj == GN_VIZ_UNIT) {
        const float *y = l->y + (size_t)unit * hw;
        float *dy = l->dy + (size_t)unit * hw;
        for (size_t i = 0; i < hw; i++) {
            v += y[i];
            dy[i] = (float)(1.0 / (double)hw);
        }
        v /= (double)hw;
    } else {
        for (size_t i = 0; i < n; i++) {
            v += 0.5 * (double)l->y[i] * l->y[i];
            l->dy[i] = l->y[i];
        }
    }
    gn_net_backward_from(net, &ctx, layer);
    return v;
}

int gn_viz_input_grad(gn_net *net, int layer, gn_viz_objective obj, int unit, const float *x,
                      float *grad, double *value, gn_err *err)
{
    int rc = check_target(net, layer, obj, unit, err);
    if (rc) return rc;
    size_t n = gn_shape_size(net->in);
    memcpy(net->input, x, n * sizeof(float));
    double v = forward_backward(net, layer, obj, unit);
    if (grad) memcpy(grad, net->dinput, n * sizeof(float));
    if (value) *value = v;
    return GN_OK;
}

/* dst = src rolled by (dy, dx) pixels (circularly) in each of c planes of h x w. */
static void roll(float *restrict dst, const float *restrict src, int c, int h, int w, int dy,
                 int dx)
{
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < h; y++) {
            int ys = ((y - dy) % h + h) % h;
            const float *s = src + ((size_t)ch * h + ys) * w;
            float *d = dst + ((size_t)ch * h + y) * w;
            for (int x = 0; x < w; x++) d[x] = s[((x - dx) % w + w) % w];
        }
}

/* g += l2 * z + tv * d/dz sum (neighbour differences)^2, per plane of h x w. */
static void add_regularizers(float *restrict g, const float *restrict z, int c, int h, int w,
                             float l2, float tv)
{
    for (int ch = 0; ch < c; ch++) {
        const float *p = z + (size_t)ch * h * w;
        float *q = g + (size_t)ch * h * w;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                float v = p[y * w + x], t = 0;
                if (x > 0) t += v - p[y * w + x - 1];
                if (x < w - 1) t += v - p[y * w + x + 1];
                if (y > 0) t += v - p[(y - 1) * w + x];
                if (y < h - 1) t += v - p[(y + 1) * w + x];
                q[y * w + x] += l2 * v + tv * 2 * t;
            }
    }
}

/* Keeps each of c planes of hw pixels in its channel's range [lo, hi]. */
static void clip(float *restrict z, int c, int hw, const float lo[3], const float hi[3])
{
    for (int ch = 0; ch < c; ch++) {
        int k = c == 3 ? ch : 0;
        float *p = z + (size_t)ch * hw;
        for (int i = 0; i < hw; i++) p[i] = p[i] < lo[k] ? lo[k] : p[i] > hi[k] ? hi[k] : p[i];
    }
}

int gn_viz_ascent(gn_net *net, int layer, gn_viz_objective obj, int unit, const gn_viz_opts *o,
                  const float *start, float *img, gn_viz_trace *trace, gn_err *err)
{
    int rc = check_target(net, layer, obj, unit, err);
    if (rc) return rc;
    if (o->steps < 0 || o->octaves < 1 || !(o->octave_scale >= 1) || o->jitter < 0)
        return gn_err_set(err, GN_EINVAL, "bad options: steps %d, octaves %d, octave scale %g, "
                          "jitter %d", o->steps, o->octaves, o->octave_scale, o->jitter);
    const int C = net->in.c, H = net->in.h, W = net->in.w;
    const size_t N = (size_t)C * H * W;
    float lo[3], hi[3];
    for (int k = 0; k < 3; k++) {
        lo[k] = (0 - o->mean[k]) / o->std[k];
        hi[k] = (1 - o->mean[k]) / o->std[k];
    }
    if (trace) trace->n = 0;
    /* z: the image being optimized at the octave's size; base: the start image at that size;
     * full/grad_full: at the input size */
    float *z = malloc(N * sizeof(float)), *znext = malloc(N * sizeof(float));
    float *base = malloc(N * sizeof(float)), *full = malloc(N * sizeof(float));
    float *gfull = malloc(N * sizeof(float)), *g = malloc(N * sizeof(float));
    rc = GN_ENOMEM;
    if (!z || !znext || !base || !full || !gfull || !g) {
        gn_err_set(err, rc, "out of memory");
        goto done;
    }
    gn_rng r = gn_rng_make(gn_rng_key(o->seed, 0x5a11, (uint64_t)unit));
    int h = H, w = W, ph = 0, pw = 0, redraws = 0;
    for (int oct = 0; oct < o->octaves; oct++) {
        double f = pow(o->octave_scale, o->octaves - 1 - oct);
        h = GN_MAX(1, GN_MIN(H, (int)lround(H / f)));
        w = GN_MAX(1, GN_MIN(W, (int)lround(W / f)));
        size_t n = (size_t)C * h * w;
        if (start && (rc = gn_viz_resize(base, h, w, start, H, W, C))) goto oom;
        if (oct == 0) {
            /* the details (z - base) start as noise, or as nothing when dreaming on a photo */
            for (size_t i = 0; i < n; i++)
                z[i] = start ? base[i] : (float)(o->init_std * gn_rng_normal(&r));
            clip(z, C, h * w, lo, hi);
        } else {
            /* carry the details found so far to the new size */
            if ((rc = gn_viz_resize(znext, h, w, z, ph, pw, C))) goto oom;
            memcpy(z, znext, n * sizeof(float));
            if (start) {
                /* upsampled details + the start at its sharper new size */
                if ((rc = gn_viz_resize(znext, ph, pw, start, H, W, C))) goto oom;
                if ((rc = gn_viz_resize(g, h, w, znext, ph, pw, C))) goto oom;
                for (size_t i = 0; i < n; i++) z[i] += base[i] - g[i];
            }
        }
        for (int step = 0; step < o->steps; step++) {
            int jy = o->jitter ? (int)gn_rng_below(&r, 2 * (uint64_t)o->jitter + 1) - o->jitter : 0;
            int jx = o->jitter ? (int)gn_rng_below(&r, 2 * (uint64_t)o->jitter + 1) - o->jitter : 0;
            if ((rc = gn_viz_resize(full, H, W, z, h, w, C))) goto oom;
            roll(net->input, full, C, H, W, jy, jx);
            double v = forward_backward(net, layer, obj, unit);
            if (!isfinite(v)) {
                rc = gn_err_set(err, GN_ENAN, "the objective became %g at octave %d step %d", v,
                                oct, step);
                goto done;
            }
            roll(gfull, net->dinput, C, H, W, -jy, -jx);
            if ((rc = gn_viz_resize_adjoint(g, h, w, gfull, H, W, C))) goto oom;
            double m = 0;
            for (size_t i = 0; i < n; i++) m += fabsf(g[i]);
            m /= (double)n;
            if (m == 0 && !start && oct == 0 && step == 0 && redraws < 4) {
                /* a ReLU unit that the faint starting noise leaves at 0 has no gradient: start
                 * again from stronger noise */
                redraws++;
                for (size_t i = 0; i < n; i++)
                    z[i] = (float)(o->init_std * (1 << 2 * redraws) * gn_rng_normal(&r));
                clip(z, C, h * w, lo, hi);
                step--;
                continue;
            }
            if (trace && trace->n < trace->cap) trace->values[trace->n++] = v;
            float s = m > 0 ? (float)(1.0 / m) : 0.0f;
            /* descend on -objective/m + regularizers, i.e. ascend on the objective */
            for (size_t i = 0; i < n; i++) g[i] *= -s;
            add_regularizers(g, z, C, h, w, o->l2, o->tv);
            for (size_t i = 0; i < n; i++) z[i] -= o->lr * g[i];
            clip(z, C, h * w, lo, hi);
        }
        ph = h;
        pw = w;
    }
    if ((rc = gn_viz_resize(img, H, W, z, h, w, C))) goto oom;
    rc = GN_OK;
    goto done;
oom:
    gn_err_set(err, rc, "out of memory");
done:
    free(z);
    free(znext);
    free(base);
    free(full);
    free(gfull);
    free(g);
    return rc;
}

int gn_viz_saliency(gn_net *net, const float *x, int cls, int smooth, float noise, uint64_t seed,
                    float *map, int *cls_out, gn_err *err)
{
    int S = gn_viz_score_layer(net);
    const gn_layer *sl = &net->layers[S];
    const int C = net->in.c, HW = net->in.h * net->in.w;
    const size_t N = (size_t)C * HW;
    if (smooth < 0 || !(noise >= 0))
        return gn_err_set(err, GN_EINVAL, "bad SmoothGrad options: %d samples, noise %g", smooth,
                          noise);
    if (cls < 0) {
        /* the predicted class: the largest score (mean over positions for a spatial output) */
        double v, best = -INFINITY;
        int rc = gn_viz_input_grad(net, S, GN_VIZ_DREAM, 0, x, NULL, &v, err);
        if (rc) return rc;
        size_t hw = (size_t)sl->out.h * sl->out.w;
        for (int k = 0; k < sl->out.c; k++) {
            double s = 0;
            for (size_t i = 0; i < hw; i++) s += sl->y[(size_t)k * hw + i];
            if (s > best) {
                best = s;
                cls = k;
            }
        }
    }
    int rc = check_target(net, S, GN_VIZ_UNIT, cls, err);
    if (rc) return rc;
    if (cls_out) *cls_out = cls;
    float lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < N; i++) {
        lo = fminf(lo, x[i]);
        hi = fmaxf(hi, x[i]);
    }
    float sigma = noise * (hi - lo);
    int samples = smooth > 0 ? smooth : 1;
    gn_rng r = gn_rng_make(gn_rng_key(seed, 0x5a1e, (uint64_t)cls));
    /* SmoothGrad averages the signed gradients (noise cancels), then takes |.| */
    float *acc = calloc(N, sizeof(float));
    if (!acc) return gn_err_set(err, GN_ENOMEM, "out of memory");
    for (int s = 0; s < samples; s++) {
        for (size_t i = 0; i < N; i++)
            net->input[i] = x[i] + (smooth > 0 ? sigma * (float)gn_rng_normal(&r) : 0.0f);
        forward_backward(net, S, GN_VIZ_UNIT, cls);
        for (size_t i = 0; i < N; i++) acc[i] += net->dinput[i] / (float)samples;
    }
    for (int p = 0; p < HW; p++) {
        float m = 0;
        for (int c = 0; c < C; c++) m = fmaxf(m, fabsf(acc[(size_t)c * HW + p]));
        map[p] = m;
    }
    free(acc);
    return GN_OK;
}
