/* Mixup and cutmix on a whole batch, with timm's Mixup semantics (mode "batch"): image i is
 * mixed with image n-1-i (the batch flipped), with one lambda for the batch; the targets become
 * lam onehot(y_i) + (1 - lam) onehot(y_{n-1-i}). Label smoothing is not applied here: the loss
 * applies it to these targets, which gives timm's smoothed mixed targets exactly (the map is
 * linear; see src/layers/softmax_layer.c).
 *
 * The draw per batch (timm's _params_per_batch): with probability `prob` the batch is mixed;
 * when both alphas are > 0, cutmix is chosen with probability `switch_prob`, else mixup; lam is
 * drawn from Beta(alpha, alpha) of the chosen one. Cutmix's box (timm's rand_bbox): a centre
 * uniform over the image, sides int(H sqrt(1 - lam)) x int(W sqrt(1 - lam)), halves rounded
 * down, clipped to the image; lam is then corrected to 1 - (clipped area) / (H W).
 * Shape letters: N images, C channels, H x W pixels, K classes. */
#include "data/data_internal.h"
#include "core/util.h"

#include <math.h>
#include <string.h>

/* Gamma(a, 1): Marsaglia and Tsang's method; for a < 1, Gamma(a + 1) * U^(1/a). */
static double rng_gamma(gn_rng *r, double a)
{
    if (a < 1) {
        double u = gn_rng_uniform(r);
        return rng_gamma(r, a + 1) * pow(u, 1.0 / a);
    }
    double d = a - 1.0 / 3, c = 1 / sqrt(9 * d);
    for (;;) {
        double x, v;
        do {
            x = gn_rng_normal(r);
            v = 1 + c * x;
        } while (v <= 0);
        v = v * v * v;
        double u = gn_rng_uniform(r);
        if (u < 1 - 0.0331 * x * x * x * x) return d * v;
        if (u > 0 && log(u) < 0.5 * x * x + d * (1 - v + log(v))) return d * v;
    }
}

double gn_rng_beta(gn_rng *r, double a, double b)
{
    double x = rng_gamma(r, a), y = rng_gamma(r, b);
    if (!(x + y > 0)) return gn_rng_uniform(r) < a / (a + b); /* both underflowed (tiny a, b) */
    return x / (x + y);
}

void gn_mix_draw(gn_rng *r, const gn_data_opts *o, int h, int w, gn_mix *m)
{
    memset(m, 0, sizeof *m);
    m->lam = 1;
    int mixup = o->mixup_alpha > 0, cutmix = o->cutmix_alpha > 0;
    if (!(mixup || cutmix) || !(gn_rng_uniform(r) < o->mix_prob)) return;
    if (mixup && cutmix)
        m->cutmix = gn_rng_uniform(r) < o->mix_switch_prob;
    else
        m->cutmix = cutmix;
    double alpha = m->cutmix ? o->cutmix_alpha : o->mixup_alpha;
    m->lam = gn_rng_beta(r, alpha, alpha);
    m->active = 1;
    if (!m->cutmix) return;
    double ratio = sqrt(1 - m->lam);
    int ch = (int)(h * ratio), cw = (int)(w * ratio);
    int cy = (int)gn_rng_below(r, (uint64_t)h), cx = (int)gn_rng_below(r, (uint64_t)w);
    m->y0 = GN_MAX(cy - ch / 2, 0);
    m->y1 = GN_MIN(cy + ch / 2, h);
    m->x0 = GN_MAX(cx - cw / 2, 0);
    m->x1 = GN_MIN(cx + cw / 2, w);
    m->lam = 1 - (double)(m->y1 - m->y0) * (m->x1 - m->x0) / ((double)h * w);
}

// x:(N,C,H,W) labels:(N) -> x mixed in place, targets:(N,K)
void gn_mix_apply(float *restrict x, float *restrict targets, const int *restrict labels, int n,
                  int c, int h, int w, int k, const gn_mix *m)
{
    size_t per = (size_t)c * h * w;
    float lam = (float)m->lam, rest = (float)(1 - m->lam);
    for (int i = 0; m->active && i < n / 2; i++) {
        float *a = x + (size_t)i * per, *b = x + (size_t)(n - 1 - i) * per;
        if (!m->cutmix) {
            for (size_t j = 0; j < per; j++) {
                float va = a[j], vb = b[j];
                a[j] = lam * va + rest * vb;
                b[j] = lam * vb + rest * va;
            }
            continue;
        }
        /* the box of each image comes from its partner: swap the boxes */
        for (int ci = 0; ci < c; ci++)
            for (int y = m->y0; y < m->y1; y++)
                for (int xx = m->x0; xx < m->x1; xx++) {
                    size_t j = ((size_t)ci * h + y) * w + xx;
                    float t = a[j];
                    a[j] = b[j];
                    b[j] = t;
                }
    }
    for (int i = 0; i < n; i++) {
        float *t = targets + (size_t)i * k;
        memset(t, 0, sizeof(float) * (size_t)k);
        int y1 = labels[i], y2 = labels[n - 1 - i];
        if (y1 >= 0 && y1 < k) t[y1] += m->active ? lam : 1.0f;
        if (m->active && y2 >= 0 && y2 < k) t[y2] += rest;
    }
}
