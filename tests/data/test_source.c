/* Folder, list-file and CSV sources, and the [data] config section. */
#include "check.h"
#include "data/data_internal.h"
#include "data/tmpdir.h"
#include "gemmnet/cfg.h"

#include <string.h>

static char dir[64];

static void mk(const char *rel)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    if (rel[strlen(rel) - 1] == '/') {
        p[strlen(p) - 1] = 0;
        mkdir(p, 0777);
    } else {
        tmp_write(p, "x", 1);
    }
}

static int ends(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

static void test_folder(void)
{
    const char *tree[] = {"train/", "train/b/", "train/a/", "train/c/", "train/.hidden/",
                          "train/a/z.JPEG", "train/a/y.jpg", "train/a/x.Jpeg", "train/a/readme.txt",
                          "train/a/dir.JPEG/", "train/b/a_image.JPEG", "train/c/c1.JPG",
                          "train/.hidden/h.JPEG", "val/", "val/a/", "val/c/", "val/c/v.JPEG",
                          "val/a/v.JPEG", NULL};
    for (int i = 0; tree[i]; i++) mk(tree[i]);
    char root[128], vroot[128];
    snprintf(root, sizeof root, "%s/train", dir);
    snprintf(vroot, sizeof vroot, "%s/val", dir);
    gn_dataset d;
    gn_err e = {0};
    CHECK(gn_dataset_open(&d, root, "", NULL, 0, 0, 0, &e) == GN_OK);
    CHECK(d.kind == GN_SRC_IMAGES && d.n_classes == 3 && d.n == 5);
    if (d.n == 5 && d.n_classes == 3) {
        CHECK(!strcmp(d.class_names[0], "a") && !strcmp(d.class_names[2], "c"));
        /* sorted by byte order within a class: "x.Jpeg" < "y.jpg" < "z.JPEG" */
        CHECK(ends(d.paths[0], "a/x.Jpeg") && ends(d.paths[1], "a/y.jpg") && ends(d.paths[2], "a/z.JPEG"));
        CHECK(d.labels[0] == 0 && d.labels[2] == 0 && d.labels[3] == 1 && d.labels[4] == 2);
    }
    /* val: class indices come from train's class list, even with class b missing */
    char **names = NULL;
    int nn = 0;
    CHECK(gn_folder_classes(root, &names, &nn, &e) == GN_OK && nn == 3);
    gn_dataset v;
    CHECK(gn_dataset_open(&v, vroot, "", names, nn, 0, 0, &e) == GN_OK);
    CHECK(v.n == 2 && v.n_classes == 3 && v.labels[0] == 0 && v.labels[1] == 2);
    gn_dataset_free(&v);
    mk("val/zzz/");
    CHECK(gn_dataset_open(&v, vroot, "", names, nn, 0, 0, &e) == GN_EFORMAT);
    CHECK_MSG(strstr(e.msg, "'zzz' is not a known class") != NULL, "%s", e.msg);
    gn_names_free(names, nn);
    gn_dataset_free(&d);
    /* an interrupted synth is detected */
    mk(".incomplete");
    CHECK(gn_dataset_open(&d, root, "", NULL, 0, 0, 0, &e) == GN_EFORMAT);
    CHECK_MSG(strstr(e.msg, "incomplete") != NULL, "%s", e.msg);
    char p[128];
    snprintf(p, sizeof p, "%s/.incomplete", dir);
    remove(p);
}

static void test_list(void)
{
    char p[128], cls[128];
    snprintf(p, sizeof p, "%s/list.txt", dir);
    const char *txt = "# a comment\n train/a/x.Jpeg 1\n\n/abs/path with space.jpg 0\ntrain/b/a_image.JPEG\t2\n";
    tmp_write(p, txt, strlen(txt));
    gn_dataset d;
    gn_err e = {0};
    CHECK(gn_dataset_open(&d, p, "", NULL, 0, 0, 0, &e) == GN_OK);
    CHECK(d.n == 3 && d.n_classes == 3);
    if (d.n == 3) {
        char want[160];
        snprintf(want, sizeof want, "%s/train/a/x.Jpeg", dir);
        CHECK(!strcmp(d.paths[0], want) && d.labels[0] == 1);
        CHECK(!strcmp(d.paths[1], "/abs/path with space.jpg") && d.labels[1] == 0);
        CHECK(d.labels[2] == 2);
    }
    gn_dataset_free(&d);
    snprintf(cls, sizeof cls, "%s/names.txt", dir);
    tmp_write(cls, "cat\ndog\n", 8);
    CHECK(gn_dataset_open(&d, p, cls, NULL, 0, 0, 0, &e) == GN_EFORMAT);
    CHECK_MSG(strstr(e.msg, "list.txt:5: label 2") != NULL, "%s", e.msg);
    const char *bad = "a.jpg 0\nb.jpg\n";
    tmp_write(p, bad, strlen(bad));
    CHECK(gn_dataset_open(&d, p, "", NULL, 0, 0, 0, &e) == GN_EFORMAT);
    CHECK_MSG(strstr(e.msg, "list.txt:2: expected 'path label'") != NULL, "%s", e.msg);
    const char *bad2 = "a.jpg 0\nb.jpg x1\n";
    tmp_write(p, bad2, strlen(bad2));
    CHECK(gn_dataset_open(&d, p, "", NULL, 0, 0, 0, &e) == GN_EFORMAT);
    CHECK_MSG(strstr(e.msg, "list.txt:2: label 'x1'") != NULL, "%s", e.msg);
    /* a huge label would allocate a name per class below it (found by fuzz_list) */
    const char *huge = "a.jpg 0\nb.jpg 888849398\n";
    tmp_write(p, huge, strlen(huge));
    CHECK(gn_dataset_open(&d, p, "", NULL, 0, 0, 0, &e) == GN_EFORMAT);
    CHECK_MSG(strstr(e.msg, "list.txt:2: label '888849398' is not an integer in [0, 1048576)"),
              "%s", e.msg);
    const char *ok = "a.jpg 1\n";
    tmp_write(p, ok, strlen(ok));
    CHECK(gn_dataset_open(&d, p, cls, NULL, 0, 0, 0, &e) == GN_OK);
    CHECK(d.n_classes == 2 && !strcmp(d.class_names[1], "dog"));
    gn_dataset_free(&d);
}

static void test_csv(void)
{
    char p[128];
    snprintf(p, sizeof p, "%s/lecture.csv", dir);
    const char *txt = "x1,x2,y\n1,2,3.5\n# comment\n -1 , 0.5 , 2\n";
    tmp_write(p, txt, strlen(txt));
    gn_dataset d;
    gn_err e = {0};
    CHECK(gn_dataset_open(&d, p, "", NULL, 0, 2, 1, &e) == GN_OK);
    CHECK(d.kind == GN_SRC_TABLE && d.n == 2 && d.n_classes == 0);
    if (d.n == 2) {
        CHECK(d.table[0] == 1 && d.table[1] == 2 && d.table[2] == 3.5f);
        CHECK(d.table[3] == -1 && d.table[4] == 0.5f && d.table[5] == 2);
    }
    gn_dataset_free(&d);
    snprintf(p, sizeof p, "%s/bad.csv", dir);
    const char *bad = "x1,x2,y\n1,2,3\n4,5\n";
    tmp_write(p, bad, strlen(bad));
    CHECK(gn_dataset_open(&d, p, "", NULL, 0, 2, 1, &e) == GN_EFORMAT);
    CHECK_MSG(strstr(e.msg, "bad.csv:3: expected 3 values, found 2") != NULL, "%s", e.msg);
    const char *bad2 = "1,2,3\n4,5,six\n";
    tmp_write(p, bad2, strlen(bad2));
    CHECK(gn_dataset_open(&d, p, "", NULL, 0, 2, 1, &e) == GN_EFORMAT);
    CHECK_MSG(strstr(e.msg, "bad.csv:2: a value is not a number") != NULL, "%s", e.msg);
    /* class index column */
    const char *cl = "0.1,0.2,0\n0.3,0.4,2\n";
    tmp_write(p, cl, strlen(cl));
    CHECK(gn_dataset_open(&d, p, "", NULL, 0, 2, 0, &e) == GN_OK);
    CHECK(d.n == 2 && d.n_classes == 3 && d.labels[1] == 2);
    gn_dataset_free(&d);
    const char *cl2 = "0.1,0.2,0\n0.3,0.4,1.5\n";
    tmp_write(p, cl2, strlen(cl2));
    CHECK(gn_dataset_open(&d, p, "", NULL, 0, 2, 0, &e) == GN_EFORMAT);
    CHECK_MSG(strstr(e.msg, "bad.csv:2: class index 1.5") != NULL, "%s", e.msg);
    /* a huge class index would allocate a name per class below it (found by fuzz_csv) */
    const char *cl3 = "22144,477637272\n";
    tmp_write(p, cl3, strlen(cl3));
    CHECK(gn_dataset_open(&d, p, "", NULL, 0, 1, 0, &e) == GN_EFORMAT);
    CHECK_MSG(strstr(e.msg, "bad.csv:1: class index 4.77637e+08 is not an integer in [0, 1048576)"),
              "%s", e.msg);
}

static void test_opts(void)
{
    const char *txt = "[net]\nwidth=64\nheight=48\nchannels=3\nangle=7\nhue=.1\nflip=1\nbatch=8\n"
                      "[data]\ntrain=data/train\nval=/abs/val\nscale=0.2,1\njitter=0.4\n"
                      "mean=0.5\nstd=0.25,0.25,0.5\nworkers=2\n";
    gn_cfg *cfg = NULL;
    gn_err e = {0};
    CHECK(gn_cfg_parse(&cfg, txt, "/some/dir/x.cfg", &e) == GN_OK);
    if (!cfg) return;
    gn_data_opts o;
    CHECK_MSG(gn_data_opts_parse(&o, cfg, &e) == GN_OK, "%s", e.msg);
    CHECK_MSG(!strcmp(o.train, "/some/dir/data/train"), "%s", o.train);
    CHECK(!strcmp(o.val, "/abs/val"));
    CHECK(o.width == 64 && o.height == 48 && o.channels == 3 && o.workers == 2);
    CHECK(o.scale[0] == 0.2f && o.jitter[2] == 0.4f && o.mean[1] == 0.5f && o.std[2] == 0.5f);
    CHECK(o.eval_resize == 55); /* 48 / 0.875 */
    /* only [net] batch (the trainer's key) is left unread */
    gn_cfg_kv *kv = gn_cfg_kv_find(gn_cfg_section_find(cfg, "net"), "batch");
    if (kv) kv->used = 1;
    CHECK_MSG(gn_cfg_check_all_unused(cfg, &e) == GN_OK, "%s", e.msg);
    gn_cfg_free(&cfg);
    const char *bad = "[net]\nwidth=64\nheight=64\n[data]\ntrain=t\nscale=0.5,0.1\n";
    CHECK(gn_cfg_parse(&cfg, bad, "b.cfg", &e) == GN_OK);
    CHECK(gn_data_opts_parse(&o, cfg, &e) == GN_ECONFIG);
    CHECK_MSG(strstr(e.msg, "scale") != NULL && strstr(e.msg, ":6") != NULL, "%s", e.msg);
    gn_cfg_free(&cfg);
    const char *noimg = "[net]\ninputs=2\n[data]\ntrain=t.csv\ntargets=1\n";
    CHECK(gn_cfg_parse(&cfg, noimg, "c.cfg", &e) == GN_OK);
    CHECK_MSG(gn_data_opts_parse(&o, cfg, &e) == GN_OK, "%s", e.msg);
    CHECK(o.inputs == 2 && o.channels == 2 && o.width == 1 && o.targets == 1);
    gn_cfg_free(&cfg);
    const char *nogeom = "[net]\nchannels=3\n[data]\ntrain=imgs\n";
    CHECK(gn_cfg_parse(&cfg, nogeom, "d.cfg", &e) == GN_OK);
    CHECK(gn_data_opts_parse(&o, cfg, &e) == GN_ECONFIG);
    gn_cfg_free(&cfg);
}

int main(void)
{
    if (!tmp_make(dir, sizeof dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_folder();
    test_list();
    test_csv();
    test_opts();
    tmp_rmtree(dir);
    return check_exit();
}
