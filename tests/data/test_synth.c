/* The built-in data set: deterministic for a seed, complete-marker written last, and its classes
 * are not separable by the images' mean colour. */
#include "check.h"
#include "data/data_internal.h"
#include "data/tmpdir.h"

#include <string.h>

static char dir[64];

static int same_file(const char *a, const char *b)
{
    size_t na = 0, nb = 0;
    unsigned char *x = tmp_read(a, &na), *y = tmp_read(b, &nb);
    int same = x && y && na == nb && !memcmp(x, y, na);
    free(x);
    free(y);
    return same;
}

static int exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static void test_determinism(void)
{
    gn_synth_opts o;
    gn_synth_opts_default(&o);
    o.train = 4;
    o.val = 2;
    o.min_side = 60;
    o.max_side = 120;
    char a[128], b[128], c[128], pa[256], pb[256], pc[256];
    snprintf(a, sizeof a, "%s/a", dir);
    snprintf(b, sizeof b, "%s/b", dir);
    snprintf(c, sizeof c, "%s/c", dir);
    gn_err e = {0};
    CHECK(gn_synth(a, &o, &e) == GN_OK);
    CHECK(gn_synth(b, &o, &e) == GN_OK);
    o.seed = 2;
    CHECK(gn_synth(c, &o, &e) == GN_OK);
    int same = 0, differ = 0, n = 0;
    for (int k = 0; k < 10; k++)
        for (int split = 0; split < 2; split++)
            for (int i = 0; i < (split ? 2 : 4); i++) {
                const char *name = gn_synth_class_name(k), *sp = split ? "val" : "train";
                snprintf(pa, sizeof pa, "%s/%s/%s/%s_%05d.JPEG", a, sp, name, name, i);
                snprintf(pb, sizeof pb, "%s/%s/%s/%s_%05d.JPEG", b, sp, name, name, i);
                snprintf(pc, sizeof pc, "%s/%s/%s/%s_%05d.JPEG", c, sp, name, name, i);
                n++;
                same += same_file(pa, pb);
                differ += !same_file(pa, pc);
            }
    CHECK(n == 60);
    CHECK_MSG(same == n, "%d of %d files identical for the same seed", same, n);
    CHECK_MSG(differ == n, "%d of %d files differ for another seed", differ, n);
    snprintf(pa, sizeof pa, "%s/.complete", a);
    CHECK(exists(pa));
    snprintf(pa, sizeof pa, "%s/.incomplete", a);
    CHECK(!exists(pa));
    snprintf(pa, sizeof pa, "%s/classes.txt", a);
    size_t len = 0;
    char *txt = (char *)tmp_read(pa, &len);
    CHECK(txt && len > 0);
    int lines = 0;
    for (size_t i = 0; txt && i < len; i++) lines += txt[i] == '\n';
    CHECK(lines == 10);
    free(txt);
    /* the loader opens it (classes and files) */
    gn_dataset d;
    snprintf(pa, sizeof pa, "%s/train", a);
    CHECK(gn_dataset_open(&d, pa, "", NULL, 0, 0, 0, &e) == GN_OK);
    CHECK(d.n == 40 && d.n_classes == 10);
    gn_dataset_free(&d);
    o.classes = 11;
    CHECK(gn_synth(a, &o, &e) == GN_EINVAL);
}

/* Nearest class mean on the per-image mean RGB: must be near chance (10%). */
static void test_mean_colour(void)
{
    gn_synth_opts o;
    gn_synth_opts_default(&o);
    o.train = 30;
    o.val = 20;
    o.min_side = 120;
    o.max_side = 240;
    o.seed = 11;
    char root[128], p[256];
    snprintf(root, sizeof root, "%s/mc", dir);
    gn_err e = {0};
    CHECK(gn_synth(root, &o, &e) == GN_OK);
    double cm[10][3] = {{0}};
    int correct = 0, total = 0, bad = 0;
    for (int split = 0; split < 2; split++)
        for (int k = 0; k < 10; k++)
            for (int i = 0; i < (split ? o.val : o.train); i++) {
                const char *name = gn_synth_class_name(k);
                snprintf(p, sizeof p, "%s/%s/%s/%s_%05d.JPEG", root, split ? "val" : "train", name,
                         name, i);
                unsigned char *rgb = NULL;
                int w = 0, h = 0;
                if (gn_jpeg_load_rgb(p, &rgb, &w, &h, &e)) {
                    bad++;
                    continue;
                }
                double m[3] = {0, 0, 0};
                for (size_t j = 0; j < (size_t)w * h; j++)
                    for (int c = 0; c < 3; c++) m[c] += rgb[3 * j + c];
                free(rgb);
                for (int c = 0; c < 3; c++) m[c] /= (double)w * h;
                if (!split) {
                    for (int c = 0; c < 3; c++) cm[k][c] += m[c] / o.train;
                    continue;
                }
                int best = 0;
                double bd = 1e30;
                for (int q = 0; q < 10; q++) {
                    double dd = 0;
                    for (int c = 0; c < 3; c++) dd += (m[c] - cm[q][c]) * (m[c] - cm[q][c]);
                    if (dd < bd) bd = dd, best = q;
                }
                correct += best == k;
                total++;
            }
    CHECK(bad == 0);
    double acc = total ? (double)correct / total : 1;
    printf("nearest class mean colour: %.1f%% of %d val images (chance 10%%)\n", 100 * acc, total);
    CHECK_MSG(acc < 0.30, "mean colour classifies %.1f%%", 100 * acc);
}

int main(void)
{
    if (!tmp_make(dir, sizeof dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_determinism();
    test_mean_colour();
    tmp_rmtree(dir);
    return check_exit();
}
