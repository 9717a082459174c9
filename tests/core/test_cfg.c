/* The config reader: structure, comments, typed getters, --set overrides, and errors that name
 * file, line and key. */
#include "check.h"
#include "gemmnet/gemmnet.h"
#include "gemmnet/data.h"
#include "gemmnet/train.h"

#include <stdlib.h>
#include <string.h>

static int expect_error(const char *text, const char *needle1, const char *needle2)
{
    gn_cfg *cfg = NULL;
    gn_net *net = NULL;
    gn_err err = {0};
    int rc = gn_cfg_parse(&cfg, text, "x.cfg", &err);
    if (!rc) rc = gn_net_build(&net, cfg, 1, 1, &err);
    gn_net_free(&net);
    gn_cfg_free(&cfg);
    CHECK_MSG(rc != GN_OK, "no error for: %s", text);
    CHECK_MSG(strstr(err.msg, needle1) && (!needle2 || strstr(err.msg, needle2)),
              "'%s' lacks '%s'/'%s'", err.msg, needle1, needle2 ? needle2 : "");
    return rc;
}

/* text with the overrides sets (NULL-terminated) applied, then the training options and the
 * layers read: the status; o, the dump (freed by the caller) and err filled. */
static int with_sets(const char *text, const char *const *sets, gn_train_opts *o, char **dump,
                     int *padding, gn_err *err)
{
    gn_cfg *cfg = NULL;
    gn_net *net = NULL;
    *dump = NULL;
    int rc = gn_cfg_parse(&cfg, text, "x.cfg", err);
    for (int i = 0; !rc && sets[i]; i++) rc = gn_cfg_set(cfg, sets[i], i + 1, err);
    if (!rc) *dump = gn_cfg_dump(cfg);
    if (!rc) rc = gn_train_opts_parse(o, cfg, err);
    if (!rc) rc = gn_net_plan(&net, cfg, 1, err);
    if (!rc && padding) *padding = net->layers[0].out.w; /* 8x8 input, 3x3 kernel, stride 1 */
    gn_net_free(&net);
    gn_cfg_free(&cfg);
    return rc;
}

/* The command line wins over the file for keys that exclude each other; two such keys from the
 * same source stay an error. */
static void test_override_rule(void)
{
    const char *tail = "[convolutional]\nfilters=2\nsize=3\nstride=1\npad=1\n";
    char text[512];
    gn_train_opts o;
    gn_err err = {0};
    char *dump = NULL;
    int w = 0;
    snprintf(text, sizeof text, "[net]\nwidth=8\nheight=8\nepochs=12\n%s", tail);
    /* --set max_batches over the file's epochs */
    const char *s1[] = {"net.max_batches=100", NULL};
    CHECK_MSG(with_sets(text, s1, &o, &dump, NULL, &err) == GN_OK, "%s", err.msg);
    CHECK(o.max_batches == 100 && o.epochs == 0);
    CHECK_MSG(dump && strstr(dump, "max_batches=100\n") && !strstr(dump, "\nepochs=12\n") &&
                  strstr(dump, "# epochs=12 (x.cfg:4) dropped: --set gives max_batches"),
              "%s", dump ? dump : "(no dump)");
    free(dump);
    /* ... and the other way round */
    snprintf(text, sizeof text, "[net]\nwidth=8\nheight=8\nmax_batches=100\n%s", tail);
    const char *s2[] = {"net.epochs=3", NULL};
    CHECK_MSG(with_sets(text, s2, &o, &dump, NULL, &err) == GN_OK, "%s", err.msg);
    CHECK(o.max_batches == 0 && o.epochs == 3);
    CHECK(dump && !strstr(dump, "\nmax_batches=100\n") && strstr(dump, "# max_batches=100"));
    free(dump);
    /* both in the file, or both on the command line: still an error */
    snprintf(text, sizeof text, "[net]\nwidth=8\nheight=8\nmax_batches=100\nepochs=2\n%s", tail);
    const char *none[] = {NULL};
    CHECK(with_sets(text, none, &o, &dump, NULL, &err) == GN_ECONFIG &&
          strstr(err.msg, "x.cfg:5") && strstr(err.msg, "not both"));
    free(dump);
    snprintf(text, sizeof text, "[net]\nwidth=8\nheight=8\n%s", tail);
    const char *s3[] = {"net.max_batches=100", "net.epochs=2", NULL};
    CHECK_MSG(with_sets(text, s3, &o, &dump, NULL, &err) == GN_ECONFIG &&
                  strstr(err.msg, "--set (argument 2)") && strstr(err.msg, "not both"),
              "%s", err.msg);
    free(dump);
    /* a later --set of the same side replaces the earlier one and drops nothing of its own */
    snprintf(text, sizeof text, "[net]\nwidth=8\nheight=8\nepochs=12\n%s", tail);
    const char *s4[] = {"net.epochs=2", NULL};
    CHECK(with_sets(text, s4, &o, &dump, NULL, &err) == GN_OK && o.epochs == 2);
    CHECK(dump && !strstr(dump, "dropped"));
    free(dump);
    /* the file's pad=1 would win over padding: the command line's padding=0 wins instead */
    const char *s5[] = {"0.padding=0", NULL};
    CHECK_MSG(with_sets(text, s5, &o, &dump, &w, &err) == GN_OK, "%s", err.msg);
    CHECK_MSG(w == 6, "padding=0 from --set: output width %d, expected 6", w);
    free(dump);
    CHECK(with_sets(text, none, &o, &dump, &w, &err) == GN_OK && w == 8);
    free(dump);
    /* net.width from --set drops the file's inputs= (a vector input) */
    const char *s6[] = {"net.width=8", "net.height=8", NULL};
    snprintf(text, sizeof text, "[net]\ninputs=5\n%s", tail);
    CHECK_MSG(with_sets(text, s6, &o, &dump, &w, &err) == GN_OK && w == 8, "%s", err.msg);
    CHECK(dump && !strstr(dump, "\ninputs=5") && strstr(dump, "# inputs=5"));
    free(dump);
}

/* An unknown key or section suggests the nearest known one. */
static void test_suggestions(void)
{
    expect_error("[net]\ninputs=2\n[connected]\noutptu=2\n", "x.cfg:4",
                 "unknown key; did you mean 'output'?");
    expect_error("[net]\ninputs=2\n[conectd]\noutput=2\n", "x.cfg:3",
                 "unknown section [conectd]; did you mean [connected]?");
    expect_error("[net]\ninputs=2\n[softmx]\n", "x.cfg:3", "did you mean [softmax]?");
    /* nothing close: no guess */
    CHECK(expect_error("[net]\ninputs=2\n[connected]\noutput=2\nqqqqqq=1\n", "x.cfg:5",
                       "unknown key") == GN_ECONFIG);
    gn_cfg *cfg = NULL;
    gn_err err = {0};
    gn_train_opts o;
    CHECK(gn_cfg_parse(&cfg, "[net]\nwidth=8\nheight=8\nlearnin_rate=0.1\nqqqqqq=1\n"
                             "[connected]\noutput=2\n", "y.cfg", &err) == GN_OK);
    if (!cfg) return;
    gn_data_opts d;
    CHECK(gn_train_opts_parse(&o, cfg, &err) == GN_OK);
    CHECK(gn_data_opts_parse(&d, cfg, &err) == GN_OK);
    CHECK(gn_cfg_check_all_unused(cfg, &err) == GN_ECONFIG);
    CHECK_MSG(strstr(err.msg, "y.cfg:4: [net] key 'learnin_rate': unknown key; did you mean "
                              "'learning_rate'?"), "%s", err.msg);
    gn_cfg_kv_find(gn_cfg_section_find(cfg, "net"), "learnin_rate")->used = 1;
    CHECK(gn_cfg_check_all_unused(cfg, &err) == GN_ECONFIG);
    CHECK_MSG(strstr(err.msg, "'qqqqqq': unknown key") && !strstr(err.msg, "did you mean"), "%s",
              err.msg);
    CHECK(gn_cfg_set(cfg, "dat.train=/x", 3, &err) == GN_ECONFIG);
    CHECK_MSG(strstr(err.msg, "unknown section 'dat'; did you mean 'data'?"), "%s", err.msg);
    CHECK(gn_cfg_set(cfg, "net.learing_rat=2", 4, &err) == GN_OK); /* found by the check */
    gn_cfg_free(&cfg);
    CHECK(gn_cfg_nearest("filtres", (const char *const[]){"filters", "size"}, 2) != NULL);
    CHECK(gn_cfg_nearest("x", (const char *const[]){"size", "pad"}, 2) == NULL);
}

int main(void)
{
    test_override_rule();
    test_suggestions();
    gn_cfg *cfg = NULL;
    gn_err err = {0};
    const char *text = "# comment\n[net]\nwidth = 8 # trailing\nheight=8\n; other comment\n"
                       "channels=3\n\n[connected]\noutput=4\n[Network_Ignored_Name]\n";
    /* an unknown section is only found when the net is built */
    CHECK(gn_cfg_parse(&cfg, text, "a.cfg", &err) == GN_OK);
    CHECK(cfg && cfg->n_layers == 2);
    if (cfg) {
        gn_cfg_section *net = gn_cfg_section_find(cfg, "net");
        int w = 0;
        CHECK(gn_cfg_int(net, "width", 1, 1, 100, &w, &err) == GN_OK && w == 8);
        CHECK(gn_cfg_int(net, "width", 1, 10, 100, &w, &err) == GN_ECONFIG);
        CHECK_MSG(strstr(err.msg, "a.cfg:3") && strstr(err.msg, "width"), "%s", err.msg);
        CHECK(gn_cfg_set(cfg, "net.width=16", 4, &err) == GN_OK);
        CHECK(gn_cfg_int(net, "width", 1, 1, 100, &w, &err) == GN_OK && w == 16);
        CHECK(gn_cfg_set(cfg, "0.output=7", 5, &err) == GN_OK);
        CHECK(strcmp(gn_cfg_kv_find(gn_cfg_layer(cfg, 0), "output")->val, "7") == 0);
        CHECK(gn_cfg_set(cfg, "9.output=7", 6, &err) == GN_ECONFIG);
        CHECK(gn_cfg_set(cfg, "bogus.key=1", 7, &err) == GN_ECONFIG);
        CHECK(gn_cfg_set(cfg, "noequals", 8, &err) == GN_ECONFIG);
        CHECK(gn_cfg_set(cfg, "data.train=/x", 9, &err) == GN_OK);
        CHECK(gn_cfg_section_find(cfg, "data") != NULL);
        CHECK(gn_cfg_set(cfg, "net.height=abc", 10, &err) == GN_OK);
        int h;
        CHECK(gn_cfg_int(net, "height", 1, 1, 100, &h, &err) == GN_ECONFIG);
        CHECK_MSG(strstr(err.msg, "--set (argument 10)") && strstr(err.msg, "height"), "%s",
                  err.msg);
        char *dump = gn_cfg_dump(cfg);
        CHECK(dump && strstr(dump, "width=16") && strstr(dump, "[data]"));
        free(dump);
        gn_cfg_free(&cfg);
    }
    CHECK(cfg == NULL);

    /* Structural errors, each with file:line. */
    expect_error("[net]\nwidth=8\n[connected\n", "x.cfg:3", "section");
    expect_error("width=8\n[net]\n", "x.cfg:1", "width");
    expect_error("[connected]\noutput=2\n", "x.cfg:1", "[net]");
    expect_error("[net]\ninputs=2\njunk line\n", "x.cfg:3", "junk");
    expect_error("[net]\ninputs=2\ninputs=3\n", "x.cfg:3", "repeats");
    expect_error("", "no sections", NULL);
    /* Layer errors found when building: unknown section, unknown key, bad values. */
    expect_error("[net]\ninputs=2\n[fancy]\nx=1\n", "x.cfg:3", "unknown section");
    expect_error("[net]\ninputs=2\n[connected]\noutput=2\nsize=3\n", "x.cfg:5", "'size'");
    expect_error("[net]\ninputs=2\n[connected]\noutput=\n", "x.cfg:4", "missing value");
    expect_error("[net]\ninputs=2\n[connected]\noutput=-4\n", "x.cfg:4", "out of range");
    expect_error("[net]\ninputs=2\n[connected]\noutput=2\nactivation=swishy\n", "x.cfg:5",
                 "activation");
    expect_error("[net]\ninputs=2\n[connected]\noutput=2\ninit_weights=1,2\n", "x.cfg:5",
                 "init_weights");
    expect_error("[net]\nwidth=0\nheight=3\n[connected]\noutput=2\n", "x.cfg:2", "width");
    expect_error("[net]\ninputs=2\n", "no layers", NULL);
    /* Arbitrary bytes never crash the reader. */
    unsigned char junk[512];
    unsigned s = 12345;
    for (int t = 0; t < 200; t++) {
        for (size_t i = 0; i < sizeof junk - 1; i++) {
            s = s * 1103515245u + 12345u;
            const char alphabet[] = "[]=#;\n abc0123.-,net";
            junk[i] = (unsigned char)alphabet[(s >> 16) % (sizeof alphabet - 1)];
        }
        junk[sizeof junk - 1] = 0;
        gn_cfg *c = NULL;
        gn_net *n = NULL;
        if (gn_cfg_parse(&c, (const char *)junk, "junk", &err) == GN_OK)
            gn_net_build(&n, c, 1, 1, &err);
        gn_net_free(&n);
        gn_cfg_free(&c);
    }
    return check_exit();
}
