/* Mixup and cutmix (src/data/mix.c, timm's Mixup in "batch" mode): the Beta sampler's moments,
 * the per-batch draw (probability, switch probability, cutmix's box and corrected lambda), the
 * mixing of images and targets by hand, and the loader end to end: a table whose inputs are the
 * one-hot label, so a mixed row must equal its soft target; JPEG batches with cutmix the same
 * for 1 and 2 workers and after a seek; validation never mixed; bad keys refused with
 * file:line:key. */
#include "check.h"
#include "tmpdir.h"
#include "data/data_internal.h"

#include <math.h>

static void beta_moments(void)
{
    const double ab[][2] = {{0.2, 0.2}, {1, 1}, {2, 2}, {0.5, 2}};
    for (int k = 0; k < 4; k++) {
        double a = ab[k][0], b = ab[k][1];
        gn_rng r = gn_rng_make(gn_rng_key(5, (uint64_t)k, 0));
        const int n = 40000;
        double s = 0, s2 = 0;
        int outside = 0;
        for (int i = 0; i < n; i++) {
            double v = gn_rng_beta(&r, a, b);
            outside += !(v >= 0 && v <= 1);
            s += v;
            s2 += v * v;
        }
        double mean = s / n, var = s2 / n - mean * mean;
        double want_mean = a / (a + b), want_var = a * b / ((a + b) * (a + b) * (a + b + 1));
        printf("Beta(%g, %g): mean %.4f (%.4f)  var %.4f (%.4f)\n", a, b, mean, want_mean, var,
               want_var);
        CHECK(outside == 0);
        CHECK_MSG(fabs(mean - want_mean) < 0.01, "Beta(%g,%g) mean %g", a, b, mean);
        CHECK_MSG(fabs(var - want_var) < 0.06 * want_var, "Beta(%g,%g) var %g", a, b, var);
    }
}

static void draws(void)
{
    gn_data_opts o;
    gn_data_opts_default(&o);
    gn_mix m;
    gn_rng r = gn_rng_make(1);
    /* off by default */
    gn_mix_draw(&r, &o, 10, 10, &m);
    CHECK(!m.active && m.lam == 1);
    /* both on, prob 0.6, switch 0.3: 60% mixed, 30% of those cutmix */
    o.mixup_alpha = 0.2;
    o.cutmix_alpha = 1.0;
    o.mix_prob = 0.6;
    o.mix_switch_prob = 0.3;
    int active = 0, cut = 0, n = 20000, bad_box = 0, bad_lam = 0;
    for (int i = 0; i < n; i++) {
        gn_mix_draw(&r, &o, 13, 10, &m);
        active += m.active;
        cut += m.cutmix;
        if (!m.active) continue;
        if (m.cutmix) {
            bad_box += !(0 <= m.y0 && m.y0 <= m.y1 && m.y1 <= 13 && 0 <= m.x0 && m.x0 <= m.x1 &&
                         m.x1 <= 10);
            /* the lambda corrected by the clipped box's area */
            bad_lam += fabs(m.lam - (1 - (m.y1 - m.y0) * (m.x1 - m.x0) / 130.0)) > 1e-12;
        } else {
            bad_lam += !(m.lam >= 0 && m.lam <= 1);
        }
    }
    printf("mixed %.3f (0.6), cutmix share %.3f (0.3)\n", (double)active / n, (double)cut / active);
    CHECK(fabs((double)active / n - 0.6) < 0.015);
    CHECK(fabs((double)cut / active - 0.3) < 0.015);
    CHECK(bad_box == 0 && bad_lam == 0);
    /* cutmix alone: always cutmix; mixup alone: never */
    o.mix_prob = 1;
    o.mixup_alpha = 0;
    gn_mix_draw(&r, &o, 8, 8, &m);
    CHECK(m.active && m.cutmix);
    o.mixup_alpha = 0.4;
    o.cutmix_alpha = 0;
    for (int i = 0; i < 100; i++) {
        gn_mix_draw(&r, &o, 8, 8, &m);
        CHECK(m.active && !m.cutmix);
    }
    /* timm's box: sides int(H sqrt(1 - lam)), halves rounded down, clipped. A centre in the
     * corner keeps only the lower-right quarter-ish; lam follows the clipped area. */
    o.mixup_alpha = 0;
    o.cutmix_alpha = 1;
    int corner = 0;
    for (int i = 0; i < 5000 && !corner; i++) {
        gn_mix_draw(&r, &o, 16, 16, &m);
        corner = m.y0 == 0 && m.x0 == 0 && m.y1 < 16 && m.x1 < 16 && m.y1 > 0;
    }
    CHECK(corner);
}

static void apply_by_hand(void)
{
    enum { N = 5, C = 2, H = 3, W = 4, K = 3, P = C * H * W };
    float x[N * P], x0[N * P], t[N * K];
    const int labels[N] = {0, 2, 1, 1, 0};
    for (int i = 0; i < N * P; i++) x0[i] = (float)(i % 17) - 3.5f;
    gn_mix m = {.active = 1, .cutmix = 0, .lam = 0.3};
    memcpy(x, x0, sizeof x);
    gn_mix_apply(x, t, labels, N, C, H, W, K, &m);
    for (int i = 0; i < N; i++) {
        int j = N - 1 - i;
        for (int e = 0; e < P; e++)
            CHECK_NEAR(x[i * P + e], 0.3f * x0[i * P + e] + 0.7f * x0[j * P + e], 1e-6);
        double sum = 0;
        for (int k = 0; k < K; k++) {
            double want = (k == labels[i] ? 0.3 : 0) + (k == labels[j] ? 0.7 : 0);
            CHECK_NEAR(t[i * K + k], want, 1e-7);
            sum += t[i * K + k];
        }
        CHECK_NEAR(sum, 1, 1e-6);
    }
    /* cutmix: the box (rows 1..2, columns 1..2) comes from the partner, the rest stays */
    m = (gn_mix){.active = 1, .cutmix = 1, .lam = 1 - 4.0 / 12, .y0 = 1, .y1 = 3, .x0 = 1, .x1 = 3};
    memcpy(x, x0, sizeof x);
    gn_mix_apply(x, t, labels, N, C, H, W, K, &m);
    for (int i = 0; i < N; i++) {
        int j = N - 1 - i;
        for (int c = 0; c < C; c++)
            for (int y = 0; y < H; y++)
                for (int xx = 0; xx < W; xx++) {
                    int e = (c * H + y) * W + xx, in = y >= 1 && y < 3 && xx >= 1 && xx < 3;
                    CHECK(x[i * P + e] == x0[(in ? j : i) * P + e]);
                }
        CHECK_NEAR(t[i * K + labels[i]], labels[i] == labels[j] ? 1 : 2.0 / 3, 1e-6);
    }
    /* not active: one-hot targets, images untouched */
    m = (gn_mix){.active = 0, .lam = 1};
    memcpy(x, x0, sizeof x);
    gn_mix_apply(x, t, labels, N, C, H, W, K, &m);
    CHECK(memcmp(x, x0, sizeof x) == 0);
    for (int i = 0; i < N; i++)
        for (int k = 0; k < K; k++) CHECK(t[i * K + k] == (k == labels[i]));
}

static int make_opts(gn_data_opts *o, const char *text, gn_err *err)
{
    gn_cfg *cfg = NULL;
    int rc = gn_cfg_parse(&cfg, text, "mix.cfg", err);
    if (!rc) rc = gn_data_opts_parse(o, cfg, err);
    gn_cfg_free(&cfg);
    return rc;
}

/* A table whose 4 inputs are the one-hot label: a mixed row equals its soft target. */
static void table_end_to_end(const char *dir)
{
    char path[512], text[2048];
    snprintf(path, sizeof path, "%s/onehot.csv", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return;
    for (int i = 0; i < 64; i++) {
        int y = (i * 7) % 4;
        fprintf(f, "%d,%d,%d,%d,%d\n", y == 0, y == 1, y == 2, y == 3, y);
    }
    fclose(f);
    snprintf(text, sizeof text, "[net]\ninputs=4\n[data]\ntrain=%s\nval=%s\nmixup_alpha=0.4\n"
             "cutmix_alpha=1\n", path, path);
    gn_data_opts o;
    gn_err err = {0};
    CHECK_MSG(make_opts(&o, text, &err) == GN_OK, "%s", err.msg);
    gn_loader *l = NULL, *v = NULL;
    CHECK_MSG(gn_loader_create(&l, &o, GN_SPLIT_TRAIN, 8, 3, &err) == GN_OK, "%s", err.msg);
    CHECK_MSG(gn_loader_create(&v, &o, GN_SPLIT_VAL, 8, 3, &err) == GN_OK, "%s", err.msg);
    if (!l || !v) goto done;
    CHECK(gn_loader_soft_targets(l) && !gn_loader_soft_targets(v));
    float x[32], t[32];
    int lab[8], n, mixed = 0;
    for (int b = 0; b < 16; b++) {
        CHECK(gn_loader_next(l, x, lab, t, &n, &err) == GN_OK && n == 8);
        for (int i = 0; i < 32; i++) CHECK_NEAR(x[i], t[i], 1e-6);
        for (int i = 0; i < 32; i++) mixed += t[i] > 0.01f && t[i] < 0.99f;
    }
    CHECK_MSG(mixed > 0, "no batch was mixed");
    for (int i = 0; i < 32; i++) t[i] = -7;
    CHECK(gn_loader_next(v, x, lab, t, &n, &err) == GN_OK && n == 8);
    for (int i = 0; i < 32; i++) CHECK(x[i] == 0 || x[i] == 1); /* validation: not mixed */
    CHECK(t[0] == -7);                                          /* and no soft targets */
done:
    gn_loader_free(&l);
    gn_loader_free(&v);
}

/* JPEGs of flat gray levels: with cutmix, batches must not depend on the worker count, and a
 * seek must give the same batch again. */
static void images_workers(const char *dir)
{
    char root[512], p[700], text[2048];
    snprintf(root, sizeof root, "%s/img", dir);
    mkdir(root, 0777);
    unsigned char px[16 * 16 * 3];
    for (int c = 0; c < 3; c++) {
        snprintf(p, sizeof p, "%s/c%d", root, c);
        mkdir(p, 0777);
        for (int i = 0; i < 6; i++) {
            memset(px, 40 + 80 * c + 5 * i, sizeof px);
            snprintf(p, sizeof p, "%s/c%d/%d.jpg", root, c, i);
            gn_err e = {0};
            CHECK(gn_jpeg_save_rgb(p, px, 16, 16, 95, &e) == GN_OK);
        }
    }
    float *batch[3];
    float t[3][4 * 3];
    for (int run = 0; run < 3; run++) {
        snprintf(text, sizeof text, "[net]\nwidth=8\nheight=8\nchannels=3\n[data]\ntrain=%s\n"
                 "workers=%d\ncutmix_alpha=1\nmixup_alpha=0.5\nscale=0.5,1\n", root,
                 run == 1 ? 2 : 1);
        gn_data_opts o;
        gn_err err = {0};
        gn_loader *l = NULL;
        batch[run] = calloc(4 * 3 * 64, sizeof(float));
        CHECK_MSG(make_opts(&o, text, &err) == GN_OK, "%s", err.msg);
        CHECK_MSG(gn_loader_create(&l, &o, GN_SPLIT_TRAIN, 4, 9, &err) == GN_OK, "%s", err.msg);
        if (!l || !batch[run]) continue;
        int lab[4], n;
        if (run == 2) gn_loader_seek(l, 1, 2);
        for (int b = 0; b < (run == 2 ? 1 : 7); b++) /* epoch 1, batch 2 (4 batches per epoch) */
            CHECK(gn_loader_next(l, batch[run], lab, t[run], &n, &err) == GN_OK && n == 4);
        gn_loader_free(&l);
    }
    CHECK(memcmp(batch[0], batch[1], 4 * 3 * 64 * sizeof(float)) == 0);
    CHECK(memcmp(batch[0], batch[2], 4 * 3 * 64 * sizeof(float)) == 0);
    CHECK(memcmp(t[0], t[1], sizeof t[0]) == 0 && memcmp(t[0], t[2], sizeof t[0]) == 0);
    for (int run = 0; run < 3; run++) free(batch[run]);
}

static void config_errors(void)
{
    const char *bad[][3] = {
        {"[net]\ninputs=4\n[data]\nmixup_alpha=-0.2\n", "mix.cfg:4", "mixup_alpha"},
        {"[net]\ninputs=4\n[data]\n\ncutmix_alpha=-1\n", "mix.cfg:5", "cutmix_alpha"},
        {"[net]\ninputs=4\n[data]\nmixup_prob=1.5\n", "mix.cfg:4", "mixup_prob"},
        {"[net]\ninputs=4\n[data]\nmixup_switch_prob=-0.1\n", "mix.cfg:4", "mixup_switch_prob"},
    };
    for (int k = 0; k < 4; k++) {
        gn_data_opts o;
        gn_err err = {0};
        int rc = make_opts(&o, bad[k][0], &err);
        printf("%s\n", err.msg);
        CHECK(rc == GN_ECONFIG);
        CHECK_MSG(strstr(err.msg, bad[k][1]) && strstr(err.msg, bad[k][2]), "%s", err.msg);
    }
}

int main(void)
{
    char dir[64];
    beta_moments();
    draws();
    apply_by_hand();
    config_errors();
    if (!tmp_make(dir, sizeof dir)) {
        CHECK_MSG(0, "mkdtemp failed");
        return check_exit();
    }
    table_end_to_end(dir);
    images_workers(dir);
    tmp_rmtree(dir);
    return check_exit();
}
