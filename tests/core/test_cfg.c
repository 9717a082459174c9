/* The config reader: structure, comments, typed getters, --set overrides, and errors that name
 * file, line and key. */
#include "check.h"
#include "gemmnet/gemmnet.h"

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

int main(void)
{
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
