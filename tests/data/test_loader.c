/* The loader: identical batches for any worker count and after a seek, epochs without
 * replacement, eval order and short batches, sharding, bad files and CSV tables. */
#include "check.h"
#include "data/data_internal.h"
#include "data/tmpdir.h"

#include <string.h>

static char dir[64];
enum { W = 32, H = 24, B = 4, PER = 3 * W * H };

static void opts_for(gn_data_opts *o, const char *train, const char *val, int workers)
{
    gn_data_opts_default(o);
    snprintf(o->train, sizeof o->train, "%s", train);
    snprintf(o->val, sizeof o->val, "%s", val);
    o->width = W;
    o->height = H;
    o->eval_resize = 28;
    o->workers = workers;
    o->prefetch = 3;
    o->jitter[0] = o->jitter[1] = o->jitter[2] = 0.3f;
}

/* Runs nb batches; x: nb*B*PER floats, lab: nb*B labels. */
static int run(gn_loader *l, int nb, float *x, int *lab, int *ns)
{
    gn_err e = {0};
    for (int i = 0; i < nb; i++) {
        int n = -1;
        if (gn_loader_next(l, x + (size_t)i * B * PER, lab + i * B, NULL, &n, &e)) {
            fprintf(stderr, "loader: %s\n", e.msg);
            return -1;
        }
        if (ns) ns[i] = n;
    }
    return 0;
}

static void test_determinism(const char *train, const char *val)
{
    gn_data_opts o;
    gn_err e = {0};
    enum { EPOCHS = 2 };
    gn_loader *l = NULL;
    opts_for(&o, train, val, 1);
    CHECK(gn_loader_create(&l, &o, GN_SPLIT_TRAIN, B, 5, &e) == GN_OK);
    if (!l) return;
    CHECK(gn_loader_size(l) == 36 && gn_loader_classes(l) == 3);
    CHECK(!strcmp(gn_loader_class_name(l, 0), "disc") && !strcmp(gn_loader_class_name(l, 2), "square"));
    int bpe = (int)gn_loader_batches_per_epoch(l);
    CHECK(bpe == 9);
    int nb = EPOCHS * bpe;
    float *ref = malloc(sizeof(float) * (size_t)nb * B * PER), *x = malloc(sizeof(float) * (size_t)nb * B * PER);
    int *rl = malloc(sizeof(int) * (size_t)nb * B), *xl = malloc(sizeof(int) * (size_t)nb * B);
    CHECK(run(l, nb, ref, rl, NULL) == 0);
    int64_t ep, bi;
    gn_loader_position(l, &ep, &bi);
    CHECK(ep == EPOCHS && bi == 0);
    gn_loader_free(&l);
    CHECK(l == NULL);
    /* each epoch uses every sample once: 12 per class */
    for (int epoch = 0; epoch < EPOCHS; epoch++) {
        int cnt[3] = {0, 0, 0};
        for (int i = 0; i < bpe * B; i++) cnt[rl[epoch * bpe * B + i]]++;
        CHECK(cnt[0] == 12 && cnt[1] == 12 && cnt[2] == 12);
    }
    CHECK(memcmp(rl, rl + bpe * B, sizeof(int) * bpe * B) != 0);
    /* the same batches with 2 and 3 workers and a one-slot ring */
    for (int workers = 2; workers <= 3; workers++) {
        opts_for(&o, train, val, workers);
        if (workers == 3) o.prefetch = 1;
        CHECK(gn_loader_create(&l, &o, GN_SPLIT_TRAIN, B, 5, &e) == GN_OK);
        if (!l) continue;
        memset(x, 0, sizeof(float) * (size_t)nb * B * PER);
        CHECK(run(l, nb, x, xl, NULL) == 0);
        CHECK_MSG(!memcmp(x, ref, sizeof(float) * (size_t)nb * B * PER), "%d workers differ", workers);
        CHECK(!memcmp(xl, rl, sizeof(int) * (size_t)nb * B));
        gn_loader_stats st;
        gn_loader_get_stats(l, &st);
        CHECK(st.decoded == (int64_t)nb * B && st.failed == 0 && st.batches == nb);
        gn_loader_free(&l);
    }
    /* resume: seek to epoch 1, batch 3 */
    opts_for(&o, train, val, 2);
    CHECK(gn_loader_create(&l, &o, GN_SPLIT_TRAIN, B, 5, &e) == GN_OK);
    if (l) {
        CHECK(run(l, 2, x, xl, NULL) == 0); /* some batches before the seek */
        CHECK(gn_loader_seek(l, 1, 3) == GN_OK);
        int n;
        int64_t eo = -1, bo = -1;
        CHECK(gn_loader_next_at(l, x, xl, NULL, &n, &eo, &bo, &e) == GN_OK);
        CHECK(eo == 1 && bo == 3 && n == B);
        size_t at = (size_t)(bpe + 3);
        CHECK(!memcmp(x, ref + at * B * PER, sizeof(float) * B * PER));
        CHECK(!memcmp(xl, rl + at * B, sizeof(int) * B));
        CHECK(gn_loader_seek(l, 0, 9) == GN_EINVAL);
        gn_loader_free(&l);
    }
    /* a different seed gives different batches */
    opts_for(&o, train, val, 1);
    CHECK(gn_loader_create(&l, &o, GN_SPLIT_TRAIN, B, 6, &e) == GN_OK);
    if (l) {
        CHECK(run(l, 1, x, xl, NULL) == 0);
        CHECK(memcmp(x, ref, sizeof(float) * B * PER) != 0);
        gn_loader_free(&l);
    }
    /* shards: rank r gets images [2r, 2r+2) of each global batch of 4 */
    for (int rank = 0; rank < 2; rank++) {
        opts_for(&o, train, val, 2);
        CHECK(gn_loader_create(&l, &o, GN_SPLIT_TRAIN, B / 2, 5, &e) == GN_OK);
        if (!l) continue;
        CHECK(gn_loader_set_shard(l, rank, 2) == GN_OK);
        CHECK(gn_loader_batches_per_epoch(l) == bpe);
        for (int i = 0; i < bpe + 2; i++) {
            int n = 0;
            CHECK(gn_loader_next(l, x, xl, NULL, &n, &e) == GN_OK);
            CHECK(n == B / 2);
            size_t off = (size_t)i * B + (size_t)rank * (B / 2);
            CHECK_MSG(!memcmp(x, ref + off * PER, sizeof(float) * (B / 2) * PER), "rank %d batch %d", rank, i);
            CHECK(!memcmp(xl, rl + off, sizeof(int) * (B / 2)));
        }
        gn_loader_free(&l);
    }
    free(ref);
    free(x);
    free(rl);
    free(xl);
}

static void test_val(const char *train, const char *val)
{
    gn_data_opts o;
    gn_err e = {0};
    gn_loader *l = NULL;
    opts_for(&o, train, val, 2);
    CHECK(gn_loader_create(&l, &o, GN_SPLIT_VAL, B, 5, &e) == GN_OK);
    if (!l) return;
    CHECK(gn_loader_size(l) == 15 && gn_loader_batches_per_epoch(l) == 4);
    float *x = malloc(sizeof(float) * 12 * B * PER);
    int lab[12 * B], ns[12];
    CHECK(run(l, 11, x, lab, ns) == 0);
    int want[11] = {4, 4, 4, 3, 0, 4, 4, 4, 3, 0, 4};
    for (int i = 0; i < 11; i++) CHECK_MSG(ns[i] == want[i], "batch %d: n=%d", i, ns[i]);
    /* dataset order: five of class 0, then class 1, ... */
    CHECK(lab[0] == 0 && lab[4] == 0 && lab[5] == 1 && lab[10] == 2);
    /* every epoch of val is the same */
    CHECK(!memcmp(x, x + (size_t)5 * B * PER, sizeof(float) * 4 * B * PER));
    CHECK(!memcmp(x, x + (size_t)10 * B * PER, sizeof(float) * B * PER));
    /* sharded val: global batches of 4 hold 4,4,4,3 images, so rank 1 of 2 gets 2,2,2,1 (its
     * share, the same images as the unsharded run), then the end marker */
    gn_loader *s1 = NULL;
    CHECK(gn_loader_create(&s1, &o, GN_SPLIT_VAL, 2, 5, &e) == GN_OK);
    if (s1) {
        CHECK(gn_loader_set_shard(s1, 1, 2) == GN_OK);
        float *xs = malloc(sizeof(float) * 2 * PER);
        int ls[2], sw[5] = {2, 2, 2, 1, 0};
        for (int i = 0; i < 5; i++) {
            int n = -1;
            int64_t eo = -1, bo = -1;
            CHECK(gn_loader_next_at(s1, xs, ls, NULL, &n, &eo, &bo, &e) == GN_OK);
            CHECK_MSG(n == sw[i] && bo == i && eo == 0, "shard batch %d: n=%d b=%lld", i, n, (long long)bo);
            if (i < 4 && n == sw[i])
                CHECK(!memcmp(xs, x + ((size_t)i * B + 2) * PER, sizeof(float) * (size_t)n * PER));
        }
        CHECK(gn_loader_batches_per_epoch(s1) == 4);
        free(xs);
        gn_loader_free(&s1);
    }
    gn_loader_free(&l);
    free(x);
}

/* channels=1 gives the gray level of the RGB output */
static void test_gray(const char *train, const char *val)
{
    gn_data_opts o;
    gn_err e = {0};
    gn_loader *l3 = NULL, *l1 = NULL;
    opts_for(&o, train, val, 1);
    for (int k = 0; k < 3; k++) {
        o.mean[k] = 0;
        o.std[k] = 1;
    }
    CHECK(gn_loader_create(&l3, &o, GN_SPLIT_VAL, B, 1, &e) == GN_OK);
    o.channels = 1;
    CHECK(gn_loader_create(&l1, &o, GN_SPLIT_VAL, B, 1, &e) == GN_OK);
    if (l1 && l3) {
        float *x3 = malloc(sizeof(float) * B * PER), *x1 = malloc(sizeof(float) * B * W * H);
        int lab[B], n3 = 0, n1 = 0;
        CHECK(gn_loader_next(l3, x3, lab, NULL, &n3, &e) == GN_OK);
        CHECK(gn_loader_next(l1, x1, lab, NULL, &n1, &e) == GN_OK);
        CHECK(n1 == B && n3 == B);
        double md = 0;
        for (int i = 0; i < B; i++)
            for (int p = 0; p < W * H; p++) {
                const float *c = x3 + (size_t)i * PER + p;
                double g = 0.299 * c[0] + 0.587 * c[W * H] + 0.114 * c[2 * W * H];
                md = fmax(md, fabs(g - x1[(size_t)i * W * H + p]));
            }
        CHECK_MSG(md < 1e-5, "gray differs by %g", md);
        free(x3);
        free(x1);
    }
    gn_loader_free(&l3);
    gn_loader_free(&l1);
}

static void copy_file(const char *from, const char *to)
{
    size_t n = 0;
    unsigned char *b = tmp_read(from, &n);
    if (b) tmp_write(to, b, n);
    free(b);
}

static void test_bad_files(const char *train)
{
    char root[128], cls[160], p[256], src[256];
    snprintf(root, sizeof root, "%s/bad", dir);
    mkdir(root, 0777);
    snprintf(cls, sizeof cls, "%s/only", root);
    mkdir(cls, 0777);
    const char *names[3] = {"disc", "ring", "square"};
    for (int i = 0; i < 25; i++) {
        snprintf(src, sizeof src, "%s/%s/%s_%05d.JPEG", train, names[i % 3], names[i % 3], i / 3);
        snprintf(p, sizeof p, "%s/good%02d.JPEG", cls, i);
        copy_file(src, p);
    }
    /* files that decode: gray, CMYK, progressive */
    unsigned char px[60 * 50 * 4];
    for (size_t i = 0; i < sizeof px; i++) px[i] = (unsigned char)(i * 31 % 251);
    gn_err e = {0};
    snprintf(p, sizeof p, "%s/gray.JPEG", cls);
    CHECK(gn_jpeg_write(p, px, 60, 50, 1, 80, 0, &e) == GN_OK);
    snprintf(p, sizeof p, "%s/cmyk.jpg", cls);
    CHECK(gn_jpeg_write(p, px, 60, 50, 4, 80, 0, &e) == GN_OK);
    snprintf(p, sizeof p, "%s/prog.jpeg", cls);
    CHECK(gn_jpeg_write(p, px, 60, 50, 3, 80, 1, &e) == GN_OK);
    /* files that do not */
    snprintf(p, sizeof p, "%s/zero.JPEG", cls);
    tmp_write(p, "", 0);
    snprintf(p, sizeof p, "%s/png.JPEG", cls);
    tmp_write(p, "\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10", 20);
    snprintf(src, sizeof src, "%s/good00.JPEG", cls);
    size_t n = 0;
    unsigned char *data = tmp_read(src, &n);
    CHECK(data != NULL);
    if (!data) return;
    size_t sos = 0;
    for (size_t i = 0; i + 1 < n; i++)
        if (data[i] == 0xFF && data[i + 1] == 0xDA) sos = i;
    snprintf(p, sizeof p, "%s/trunc.JPEG", cls);
    tmp_write(p, data, sos + 40);
    for (size_t i = 0; i + 8 < n; i++)
        if (data[i] == 0xFF && (data[i + 1] == 0xC0 || data[i + 1] == 0xC2)) {
            data[i + 5] = 0xEA, data[i + 6] = 0x60, data[i + 7] = 0xEA, data[i + 8] = 0x60;
            break;
        }
    snprintf(p, sizeof p, "%s/huge.JPEG", cls);
    tmp_write(p, data, n);
    free(data);
    snprintf(p, sizeof p, "%s/folder.JPEG", cls);
    mkdir(p, 0777);

    gn_data_opts o;
    gn_loader *l = NULL;
    int64_t failed_ref = -1;
    for (int workers = 1; workers <= 2; workers++) {
        opts_for(&o, root, "", workers);
        o.max_bad_fraction = 0.5;
        CHECK(gn_loader_create(&l, &o, GN_SPLIT_TRAIN, B, 3, &e) == GN_OK);
        if (!l) return;
        CHECK(gn_loader_size(l) == 32); /* 25 + 3 good + 4 bad; not the directory */
        float x[B * PER];
        int lab[B];
        for (int i = 0; i < 16; i++) {
            int got = 0;
            CHECK_MSG(gn_loader_next(l, x, lab, NULL, &got, &e) == GN_OK, "%s", e.msg);
            CHECK(got == B);
        }
        gn_loader_stats st;
        gn_loader_get_stats(l, &st);
        CHECK_MSG(st.failed_files == 4, "failed files %lld", (long long)st.failed_files);
        CHECK(st.failed >= 8); /* each bad file once per epoch */
        if (failed_ref < 0) failed_ref = st.failed;
        CHECK(st.failed == failed_ref);
        const char *want[4] = {"zero.JPEG: empty file", "png.JPEG: not a JPEG (PNG data)",
                               "trunc.JPEG: truncated", "huge.JPEG: header claims 60000x60000"};
        int seen[4] = {0, 0, 0, 0}, total = 0;
        const char *f;
        while ((f = gn_loader_pop_failure(l))) {
            total++;
            for (int k = 0; k < 4; k++)
                if (strstr(f, want[k])) seen[k]++;
        }
        CHECK(total == 4);
        for (int k = 0; k < 4; k++) CHECK_MSG(seen[k] == 1, "reason %s seen %d times", want[k], seen[k]);
        CHECK(gn_loader_pop_failure(l) == NULL);
        gn_loader_free(&l);
    }
    /* with the default 1% limit the loader stops with a clear error */
    opts_for(&o, root, "", 2);
    CHECK(gn_loader_create(&l, &o, GN_SPLIT_TRAIN, B, 3, &e) == GN_OK);
    if (!l) return;
    int rc = GN_OK;
    float x[B * PER];
    int lab[B];
    for (int i = 0; i < 16 && rc == GN_OK; i++) {
        int got = 0;
        rc = gn_loader_next(l, x, lab, NULL, &got, &e);
    }
    CHECK(rc == GN_EFORMAT);
    CHECK_MSG(strstr(e.msg, "max_bad_fraction") != NULL, "%s", e.msg);
    gn_loader_free(&l);
}

static void test_table(void)
{
    char p[128];
    snprintf(p, sizeof p, "%s/t.csv", dir);
    const char *txt = "a,b,y\n0,1,10\n1,1,11\n2,1,12\n3,1,13\n4,1,14\n5,1,15\n6,1,16\n";
    tmp_write(p, txt, strlen(txt));
    gn_data_opts o;
    gn_data_opts_default(&o);
    snprintf(o.train, sizeof o.train, "%s", p);
    snprintf(o.val, sizeof o.val, "%s", p);
    o.inputs = o.channels = 2;
    o.width = o.height = 1;
    o.targets = 1;
    gn_err e = {0};
    gn_loader *l = NULL;
    CHECK(gn_loader_create(&l, &o, GN_SPLIT_TRAIN, 3, 1, &e) == GN_OK);
    if (!l) return;
    CHECK(gn_loader_batches_per_epoch(l) == 2 && gn_loader_classes(l) == 0);
    int seen[7] = {0};
    for (int i = 0; i < 2; i++) {
        float x[6], t[3];
        int n = 0;
        CHECK(gn_loader_next(l, x, NULL, t, &n, &e) == GN_OK && n == 3);
        for (int k = 0; k < 3; k++) {
            CHECK(x[2 * k + 1] == 1 && t[k] == 10 + x[2 * k]);
            if (x[2 * k] >= 0 && x[2 * k] < 7) seen[(int)x[2 * k]]++;
        }
    }
    int dup = 0;
    for (int k = 0; k < 7; k++) dup += seen[k] > 1;
    CHECK(dup == 0);
    gn_loader_free(&l);
    CHECK(gn_loader_create(&l, &o, GN_SPLIT_VAL, 3, 1, &e) == GN_OK);
    if (!l) return;
    float x[6], t[3];
    int n = 0;
    CHECK(gn_loader_next(l, x, NULL, t, &n, &e) == GN_OK && n == 3 && x[0] == 0 && t[2] == 12);
    gn_loader_free(&l);
}

int main(void)
{
    if (!tmp_make(dir, sizeof dir)) {
        perror("mkdtemp");
        return 1;
    }
    gn_synth_opts so;
    gn_synth_opts_default(&so);
    so.classes = 3;
    so.train = 12;
    so.val = 5;
    so.min_side = 40;
    so.max_side = 90;
    char syn[128], train[160], val[160];
    snprintf(syn, sizeof syn, "%s/syn", dir);
    gn_err e = {0};
    CHECK_MSG(gn_synth(syn, &so, &e) == GN_OK, "%s", e.msg);
    snprintf(train, sizeof train, "%s/train", syn);
    snprintf(val, sizeof val, "%s/val", syn);
    test_determinism(train, val);
    test_val(train, val);
    test_gray(train, val);
    test_bad_files(train);
    test_table();
    tmp_rmtree(dir);
    return check_exit();
}
