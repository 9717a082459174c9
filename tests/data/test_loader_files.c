/* gn_loader_create_files (gemmnet predict): files in the given order, batches that skip (not
 * replace) unreadable files and say which file each image is, for any worker count; and an image
 * of the net's size with eval_resize = its shorter side passes through unresampled (the tensor
 * is the decoded pixels, normalized), which the PyTorch comparison of predict relies on. */
#include "check.h"
#include "data/data_internal.h"
#include "data/tmpdir.h"

#include <string.h>

static char dir[64];
enum { W = 20, H = 12, PER = 3 * W * H, NF = 7 };

int main(void)
{
    CHECK(tmp_make(dir, sizeof dir) != NULL);
    gn_err err = {0};
    char paths[NF][128];
    const char *pp[NF];
    /* files 0, 2, 3, 5, 6: JPEGs of W x H random pixels; 1: text; 4: missing */
    gn_rng r = gn_rng_make(9);
    unsigned char px[H * W * 3];
    for (int f = 0; f < NF; f++) {
        snprintf(paths[f], sizeof paths[f], "%s/f%d.jpg", dir, f);
        pp[f] = paths[f];
        if (f == 1) {
            CHECK(tmp_write(paths[f], "not a jpeg", 10) == 0);
        } else if (f != 4) {
            for (int i = 0; i < H * W * 3; i++) px[i] = (unsigned char)gn_rng_below(&r, 256);
            CHECK_MSG(gn_jpeg_save_rgb(paths[f], px, W, H, 90, &err) == GN_OK, "%s", err.msg);
        }
    }
    gn_data_opts o;
    gn_data_opts_default(&o);
    o.width = W;
    o.height = H;
    o.eval_resize = H; /* the shorter side: no resampling */
    o.max_bad_fraction = 1;
    float ref[NF][PER];
    for (int workers = 1; workers <= 3; workers += 2) {
        o.workers = workers;
        gn_loader *l = NULL;
        CHECK_MSG(gn_loader_create_files(&l, &o, pp, NF, 3, &err) == GN_OK, "%s", err.msg);
        if (!l) break;
        /* batches of files {0,1,2} {3,4,5} {6}: images 0,2 | 3,5 | 6 */
        const int64_t want[3][2] = {{0, 2}, {3, 5}, {6, -1}};
        float x[3 * PER];
        int64_t files[3];
        for (int b = 0; b < 3; b++) {
            int n = -1, done = 1;
            CHECK_MSG(gn_loader_next_files(l, x, files, &n, &done, &err) == GN_OK, "%s",
                      err.msg);
            CHECK(!done);
            CHECK_MSG(n == (b < 2 ? 2 : 1), "batch %d: %d images", b, n);
            for (int i = 0; i < n && i < 2; i++) {
                CHECK_MSG(files[i] == want[b][i], "batch %d image %d is file %lld", b, i,
                          (long long)files[i]);
                if (workers == 1)
                    memcpy(ref[files[i]], x + (size_t)i * PER, sizeof ref[0]);
                else
                    CHECK_MSG(!memcmp(ref[files[i]], x + (size_t)i * PER, sizeof ref[0]),
                              "file %lld differs with %d workers", (long long)files[i], workers);
            }
        }
        int n = -1, done = 0;
        CHECK(gn_loader_next_files(l, x, files, &n, &done, &err) == GN_OK && done && n == 0);
        gn_loader_stats st;
        gn_loader_get_stats(l, &st);
        CHECK_MSG(st.failed_files == 2 && st.decoded == 5, "failed %lld decoded %lld",
                  (long long)st.failed_files, (long long)st.decoded);
        int reported = 0;
        while (gn_loader_pop_failure(l)) reported++;
        CHECK(reported == 2);
        gn_loader_free(&l);
    }
    /* no resampling: each value is the decoded pixel, normalized */
    unsigned char *rgb = NULL;
    int w = 0, h = 0;
    CHECK_MSG(gn_jpeg_load_rgb(paths[3], &rgb, &w, &h, &err) == GN_OK, "%s", err.msg);
    if (rgb && w == W && h == H) {
        double worst = 0;
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < W * H; i++) {
                double v = (rgb[i * 3 + c] / 255.0 - o.mean[c]) / o.std[c];
                worst = fmax(worst, fabs(ref[3][c * W * H + i] - v));
            }
        CHECK_MSG(worst < 1e-5, "worst difference from the decoded pixels %g", worst);
    }
    free(rgb);
    /* the default eval_resize (H/0.875) resamples: the same file comes out different */
    gn_loader *l = NULL;
    o.eval_resize = (int)(H / 0.875 + 0.5);
    CHECK(gn_loader_create_files(&l, &o, pp + 3, 1, 1, &err) == GN_OK);
    if (l) {
        float x[PER];
        int64_t files[1];
        int n = 0, done = 0;
        CHECK(gn_loader_next_files(l, x, files, &n, &done, &err) == GN_OK && n == 1);
        CHECK(memcmp(x, ref[3], sizeof x) != 0);
        gn_loader_free(&l);
    }
    /* eval_resize below the input size is refused */
    o.eval_resize = H - 1;
    CHECK(gn_loader_create_files(&l, &o, pp, NF, 2, &err) == GN_ECONFIG && !l);
    tmp_rmtree(dir);
    return check_exit();
}
