/* darknet .weights, reader and writer, on files built here by hand in darknet's layout: every
 * version branch (0.1 with a 32-bit seen, 0.2 with a 64-bit one, transposed [connected]), every
 * layer type with values (grouped [convolutional] with and without batch norm, [batchnorm],
 * [connected] with and without bias), the writer byte-identical to the hand-built file, every
 * refusal with its message (and the net untouched), a file ending early with
 * GN_CKPT_SKIP_MISMATCH, telling .weights from checkpoints by content, and the input
 * convention a .weights file or a config without [data] brings. */
#include "check.h"
#include "gemmnet/checkpoint.h"
#include "gemmnet/data.h"
#include "gemmnet/gemmnet.h"
#include "gemmnet/interop.h"
#include "../data/tmpdir.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *net_cfg =
    "[net]\nwidth=5\nheight=4\nchannels=4\n"
    "[convolutional]\nfilters=6\nsize=3\npad=1\ngroups=2\nbatch_normalize=1\nactivation=leaky\n"
    "[convolutional]\nfilters=3\nsize=1\nactivation=relu\n"
    "[maxpool]\nsize=2\nstride=2\n"
    "[batchnorm]\n"
    "[connected]\noutput=7\nactivation=relu\n"
    "[connected]\noutput=5\nbias=0\n"
    "[softmax]\n";

/* A byte buffer that grows. */
typedef struct buf {
    unsigned char *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *src, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}

static void put_i32(buf *b, int32_t v) { put(b, &v, 4); }

/* Value number k of the file: distinct, exact in float, positive (variances are >= 0). */
static float val(int k) { return 0.5f + (float)k / 64.0f; }

/* The expected tensors, filled as the file is built: name -> values. */
typedef struct expect {
    char name[48];
    float v[512];
    size_t n;
} expect;
static expect ex[32];
static int n_ex;

static expect *ex_add(int layer, const char *name, size_t n)
{
    expect *e = &ex[n_ex++];
    snprintf(e->name, sizeof e->name, "layers.%d.%s", layer, name);
    e->n = n;
    return e;
}

/* One run of n values in the file, expected in tensor `name` of `layer` (NULL name: values the
 * net does not keep, which must be 0: zero_ok). */
static int counter;
static void run(buf *b, int layer, const char *name, size_t n)
{
    expect *e = name ? ex_add(layer, name, n) : NULL;
    for (size_t i = 0; i < n; i++) {
        float f = name ? val(counter++) : 0.0f;
        put(b, &f, 4);
        if (e) e->v[i] = f;
    }
}

/* A [connected] layer's out x in weights, stored [in][out] in transposed files. */
static void connected_weights(buf *b, int layer, int out, int in, int transposed)
{
    if (!transposed) {
        run(b, layer, "weight", (size_t)out * in);
        return;
    }
    expect *e = ex_add(layer, "weight", (size_t)out * in);
    for (int i = 0; i < in; i++)
        for (int o = 0; o < out; o++) {
            float f = val(counter++);
            put(b, &f, 4);
            e->v[o * in + i] = f;
        }
}

/* The file for net_cfg at the given version. The input is 4x5x4: conv0 6 filters (groups 2:
 * 2 input channels each, 3x3), conv1 3 filters 1x1 over 6, maxpool 4x5 -> 2x3 (darknet's
 * padding size-1 = 1: (5+1-2)/2+1 = 3, (4+1-2)/2+1 = 2), batchnorm over 3, connected 18 -> 7,
 * connected 7 -> 5 without bias. */
static buf build(int major, int minor, uint64_t seen)
{
    buf b = {0};
    counter = 0;
    n_ex = 0;
    put_i32(&b, major);
    put_i32(&b, minor);
    put_i32(&b, 0);
    if (major * 10 + minor >= 2 && major < 1000 && minor < 1000) put(&b, &seen, 8);
    else put_i32(&b, (int32_t)seen);
    run(&b, 0, "bn.bias", 6);
    run(&b, 0, "bn.weight", 6);
    run(&b, 0, "bn.running_mean", 6);
    run(&b, 0, "bn.running_var", 6);
    run(&b, 0, "weight", 6 * 2 * 9);
    run(&b, 1, "bias", 3);
    run(&b, 1, "weight", 3 * 6);
    run(&b, 3, "bn.weight", 3);
    run(&b, 3, "bn.running_mean", 3);
    run(&b, 3, "bn.running_var", 3);
    int transposed = major > 1000 || minor > 1000;
    run(&b, 4, "bias", 7);
    connected_weights(&b, 4, 7, 18, transposed);
    run(&b, 5, NULL, 5); /* bias=0: zeros in the file */
    connected_weights(&b, 5, 5, 7, transposed);
    return b;
}

static const float *tensor(gn_net *net, const char *full, size_t *n)
{
    for (int li = 0; li < net->n_layers; li++) {
        gn_layer *l = &net->layers[li];
        for (int i = 0; i < l->n_par; i++) {
            char name[96];
            gn_param_full_name(l, &l->par[i], name, sizeof name);
            if (!strcmp(name, full)) {
                *n = l->par[i].count;
                return gn_param_data(l, &l->par[i]);
            }
        }
    }
    return NULL;
}

/* Every expected tensor holds its values; the [batchnorm] bias is 0. */
static int matches(gn_net *net, const char *what)
{
    int ok = 1;
    for (int k = 0; k < n_ex; k++) {
        size_t n = 0;
        const float *t = tensor(net, ex[k].name, &n);
        int same = t && n == ex[k].n && !memcmp(t, ex[k].v, n * sizeof(float));
        CHECK_MSG(same, "%s: %s differs from the file", what, ex[k].name);
        ok &= same;
    }
    size_t n;
    const float *beta = tensor(net, "layers.3.bn.bias", &n);
    for (size_t i = 0; beta && i < n; i++) ok &= beta[i] == 0;
    CHECK_MSG(beta && ok, "%s: values or the zero [batchnorm] bias", what);
    return ok;
}

static gn_net *build_net(gn_cfg **cfg)
{
    gn_err err = {0};
    gn_net *net = NULL;
    if (gn_cfg_parse(cfg, net_cfg, "dn.cfg", &err) || gn_net_build(&net, *cfg, 1, 3, &err)) {
        CHECK_MSG(0, "%s", err.msg);
        return NULL;
    }
    return net;
}

/* Reading b must fail with code and a message containing want, leaving net unchanged. */
static void refused(gn_net *net, const buf *b, int flags, int code, const char *want,
                    const char *what)
{
    size_t np = net->n_params * sizeof(float), ns = net->n_state * sizeof(float);
    float *p = malloc(np), *s = malloc(ns);
    memcpy(p, net->params, np);
    memcpy(s, net->state, ns);
    uint64_t seen = net->seen;
    gn_err err = {0};
    int rc = gn_darknet_weights_read(b->p, b->n, "x.weights", net, flags, NULL, &err);
    printf("%-34s -> %s\n", what, err.msg);
    CHECK_MSG(rc == code, "%s: got %s, expected %s", what, gn_status_name(rc),
              gn_status_name(code));
    CHECK_MSG(strstr(err.msg, want) != NULL, "%s: '%s' lacks '%s'", what, err.msg, want);
    CHECK_MSG(!memcmp(p, net->params, np) && !memcmp(s, net->state, ns) && net->seen == seen,
              "%s: the net changed", what);
    free(p);
    free(s);
}

int main(void)
{
    char dir[64], path[128], path2[128];
    if (!tmp_make(dir, sizeof dir)) {
        CHECK_MSG(0, "mkdtemp");
        return check_exit();
    }
    gn_cfg *cfg = NULL;
    gn_net *net = build_net(&cfg);
    if (!net) return check_exit();
    gn_err err = {0};
    gn_darknet_info info;

    /* 0.2.0, 64-bit seen */
    const uint64_t big_seen = ((uint64_t)1 << 40) + 12345;
    buf b2 = build(0, 2, big_seen);
    CHECK(gn_darknet_weights_read(b2.p, b2.n, "v02", net, GN_CKPT_STRICT, &info, &err) == GN_OK);
    CHECK_MSG(info.major == 0 && info.minor == 2 && !info.transposed && info.seen == big_seen &&
              info.first_missing == -1, "header %d.%d seen %llu", info.major, info.minor,
              (unsigned long long)info.seen);
    CHECK(net->seen == big_seen);
    matches(net, "0.2.0");

    /* The writer: byte-identical to the hand-built file. */
    snprintf(path, sizeof path, "%s/out.weights", dir);
    CHECK(gn_darknet_weights_save(path, net, &err) == GN_OK);
    size_t n = 0;
    unsigned char *w = tmp_read(path, &n);
    CHECK_MSG(w && n == b2.n && !memcmp(w, b2.p, n), "written %zu bytes, hand-built %zu: %s", n,
              b2.n, w && n == b2.n ? "contents differ" : "sizes differ");
    free(w);
    /* ... and read back by the file path, by content (gn_weights_load). */
    gn_weights_kind kind = 0;
    gn_ckpt *ck = (gn_ckpt *)1;
    memset(net->params, 0, net->n_params * sizeof(float));
    CHECK(gn_weights_load(net, path, GN_CKPT_STRICT, &ck, &kind, &info, &err) == GN_OK);
    CHECK(kind == GN_WEIGHTS_DARKNET && ck == NULL);
    matches(net, "written and reloaded");

    /* 0.1.0, 32-bit seen */
    buf b1 = build(0, 1, 777);
    memset(net->params, 0, net->n_params * sizeof(float));
    CHECK(gn_darknet_weights_read(b1.p, b1.n, "v01", net, GN_CKPT_STRICT, &info, &err) == GN_OK);
    CHECK(b1.n == b2.n - 4 && info.seen == 777 && net->seen == 777);
    matches(net, "0.1.0");
    /* written back as 0.2.0: the 0.2.0 file with seen 777 */
    CHECK(gn_darknet_weights_save(path, net, &err) == GN_OK);
    buf b2s = build(0, 2, 777);
    w = tmp_read(path, &n);
    CHECK_MSG(w && n == b2s.n && !memcmp(w, b2s.p, n), "0.1.0 not written back as 0.2.0");
    free(w);

    /* transposed: minor above 1000 (32-bit seen), and major above 1000 */
    int tv[2][2] = {{0, 1002}, {1000 + 1, 0}};
    for (int i = 0; i < 2; i++) {
        buf bt = build(tv[i][0], tv[i][1], 99);
        memset(net->params, 0, net->n_params * sizeof(float));
        CHECK(gn_darknet_weights_read(bt.p, bt.n, "transposed", net, GN_CKPT_STRICT, &info,
                                      &err) == GN_OK);
        CHECK(info.transposed && info.seen == 99);
        matches(net, tv[i][0] ? "transposed (major 1001)" : "transposed (minor 1002)");
        free(bt.p);
    }

    /* Refusals, the net untouched. */
    free(b2.p);
    b2 = build(0, 2, 5);
    buf t = b2;
    t.n = b2.n - 4; /* one value short: inside the last layer */
    refused(net, &t, GN_CKPT_STRICT, GN_EFORMAT, "ends in layer 5 [connected] (weight", "truncated");
    t.n = 20 + 6 * 4 + 10; /* inside layer 0's scales */
    refused(net, &t, GN_CKPT_STRICT, GN_EFORMAT, "ends in layer 0 [convolutional] (bn.weight",
            "truncated early");
    t.n = 14;
    refused(net, &t, GN_CKPT_STRICT, GN_EFORMAT, "truncated in the header", "header cut");
    buf l = {0};
    put(&l, b2.p, b2.n);
    put_i32(&l, 0);
    refused(net, &l, GN_CKPT_STRICT, GN_EFORMAT, "4 bytes after the last layer", "too long");
    int bad_versions[][3] = {{5, 0, 0}, {0, 10, 0}, {-1, 2, 0}, {0, 2, 1000}, {2000, 0, 0}};
    for (size_t i = 0; i < sizeof bad_versions / sizeof bad_versions[0]; i++) {
        buf v = {0};
        put(&v, b2.p, b2.n);
        memcpy(v.p, bad_versions[i], 12);
        char want[64];
        snprintf(want, sizeof want, "version %d.%d.%d is not one", bad_versions[i][0],
                 bad_versions[i][1], bad_versions[i][2]);
        refused(net, &v, GN_CKPT_STRICT, GN_EFORMAT, want, "wrong version");
        free(v.p);
    }
    float nanv = NAN, neg = -1.0f, one = 1.0f;
    size_t var0 = 20 + 3 * 6 * 4; /* layer 0's rolling_variance[0] */
    memcpy(l.p + var0, &neg, 4);
    l.n = b2.n;
    refused(net, &l, GN_CKPT_STRICT, GN_EFORMAT, "bn.running_var[0] is -1 (a negative variance)",
            "negative variance");
    memcpy(l.p + var0, &nanv, 4);
    refused(net, &l, GN_CKPT_STRICT, GN_EFORMAT, "not finite", "NaN");
    memcpy(l.p + var0, b2.p + var0, 4);
    size_t zb = b2.n - (5 + 35) * 4; /* layer 5's bias (must be 0: bias=0) */
    memcpy(l.p + zb + 8, &one, 4);
    refused(net, &l, GN_CKPT_STRICT, GN_EFORMAT, "layer 5 [connected] bias[2] is 1", "bias=0");
    memcpy(l.p + zb + 8, b2.p + zb + 8, 4);
    CHECK(gn_darknet_weights_read(l.p, l.n, "restored", net, GN_CKPT_STRICT, NULL, &err) == GN_OK);

    /* GN_CKPT_SKIP_MISMATCH: a file ending at a layer boundary (darknet's partial files). */
    size_t after_conv = 20 + (4 * 6 + 108 + 3 + 18) * 4;
    float *before = malloc(net->n_params * sizeof(float));
    memset(net->params, 0, net->n_params * sizeof(float));
    memcpy(before, net->params, net->n_params * sizeof(float));
    t.n = after_conv;
    refused(net, &t, GN_CKPT_STRICT, GN_EFORMAT, "ends in layer 3 [batchnorm] (bn.weight",
            "partial, strict");
    CHECK(gn_darknet_weights_read(b2.p, after_conv, "partial", net, GN_CKPT_SKIP_MISMATCH, &info,
                                  &err) == GN_OK);
    CHECK_MSG(info.first_missing == 3, "first_missing %d", info.first_missing);
    size_t nw;
    const float *w0 = tensor(net, "layers.0.weight", &nw), *w4 = tensor(net, "layers.4.weight", &nw);
    CHECK(w0 && w0[0] == ex[4].v[0]);
    CHECK(w4 && w4[0] == 0.0f && w4[nw - 1] == 0.0f);
    t.n = after_conv + 4;
    refused(net, &t, GN_CKPT_SKIP_MISMATCH, GN_EFORMAT, "ends in layer 3 [batchnorm]",
            "partial inside a layer");
    free(before);

    /* Telling the kinds apart; a checkpoint through gn_weights_load. */
    snprintf(path2, sizeof path2, "%s/c.safetensors", dir);
    CHECK(gn_darknet_weights_read(b2.p, b2.n, "b2", net, GN_CKPT_STRICT, NULL, &err) == GN_OK);
    CHECK(gn_ckpt_save(path2, net, NULL, NULL, 0, &err) == GN_OK);
    CHECK(gn_weights_kind_of(path2, &kind, &err) == GN_OK && kind == GN_WEIGHTS_CHECKPOINT);
    CHECK(gn_weights_kind_of(path, &kind, &err) == GN_OK && kind == GN_WEIGHTS_DARKNET);
    memset(net->params, 0, net->n_params * sizeof(float));
    CHECK(gn_weights_load(net, path2, GN_CKPT_STRICT, &ck, &kind, NULL, &err) == GN_OK);
    CHECK(kind == GN_WEIGHTS_CHECKPOINT && ck != NULL);
    gn_ckpt_close(&ck);
    matches(net, "through a checkpoint");
    snprintf(path2, sizeof path2, "%s/short", dir);
    tmp_write(path2, "abc", 3);
    CHECK(gn_weights_kind_of(path2, &kind, &err) == GN_EFORMAT &&
          strstr(err.msg, "neither a safetensors checkpoint nor a darknet .weights file"));

    /* The writer refuses a [batchnorm] bias darknet cannot store, and writes nothing. */
    size_t nb;
    float *beta = (float *)tensor(net, "layers.3.bn.bias", &nb);
    beta[1] = 0.25f;
    snprintf(path2, sizeof path2, "%s/refused.weights", dir);
    CHECK(gn_darknet_weights_save(path2, net, &err) == GN_ENOTSUP &&
          strstr(err.msg, "layer 3 [batchnorm]: bn.bias[1]"));
    CHECK(access(path2, F_OK) != 0);
    beta[1] = 0;

    /* Input convention: no [data] section -> darknet's; [data] -> gemmnet's unless a .weights
     * file; keys [data] sets win. */
    const char *cfgs[] = {"[net]\nwidth=8\nheight=8\n[convolutional]\n",
                          "[net]\nwidth=8\nheight=8\n[data]\nflip=0\n[convolutional]\n",
                          "[net]\nwidth=8\nheight=8\n[data]\nmean=0.5\n[convolutional]\n"};
    for (int i = 0; i < 3; i++) {
        gn_cfg *c = NULL;
        gn_data_opts d;
        CHECK(gn_cfg_parse(&c, cfgs[i], "conv.cfg", &err) == GN_OK);
        CHECK(gn_data_opts_parse(&d, c, &err) == GN_OK);
        if (i == 0)
            CHECK_MSG(d.darknet_input && d.mean[0] == 0 && d.std[2] == 1 && d.eval_resize == 8,
                      "no [data]: mean %g std %g eval_resize %d", d.mean[0], d.std[2],
                      d.eval_resize);
        else
            CHECK(!d.darknet_input && d.mean[1] != 0 && d.std[1] != 1 && d.eval_resize == 9);
        CHECK(gn_weights_input_convention(&d, path2, &err) == GN_EIO); /* no such file */
        CHECK(gn_weights_input_convention(&d, path, &err) == GN_OK);
        CHECK(d.darknet_input && d.std[0] == 1 && d.eval_resize == 8);
        CHECK(d.mean[0] == (i == 2 ? 0.5f : 0.0f));
        gn_cfg_free(&c);
    }
    /* A checkpoint carries the convention its run trained with (input_convention metadata). */
    for (int i = 0; i < 3; i++) {
        const char *conv[] = {"darknet", "gemmnet", NULL};
        gn_kv meta[] = {{"input_convention", conv[i]}};
        snprintf(path2, sizeof path2, "%s/conv%d.safetensors", dir, i);
        CHECK(gn_ckpt_save(path2, net, NULL, meta, conv[i] ? 1 : 0, &err) == GN_OK);
        gn_cfg *c = NULL;
        gn_data_opts d;
        CHECK(gn_cfg_parse(&c, cfgs[1], "conv.cfg", &err) == GN_OK);
        CHECK(gn_data_opts_parse(&d, c, &err) == GN_OK);
        CHECK(gn_weights_input_convention(&d, path2, &err) == GN_OK);
        CHECK_MSG(d.darknet_input == (i == 0) && (d.mean[0] == 0) == (i == 0),
                  "checkpoint with input_convention=%s: darknet_input %d mean %g",
                  conv[i] ? conv[i] : "(none)", d.darknet_input, d.mean[0]);
        gn_cfg_free(&c);
    }
    {
        gn_cfg *c = NULL;
        gn_data_opts d;
        CHECK(gn_cfg_parse(&c, cfgs[0], "conv.cfg", &err) == GN_OK);
        CHECK(gn_cfg_set(c, "data.train=/nowhere", 1, &err) == GN_OK);
        CHECK(gn_data_opts_parse(&d, c, &err) == GN_OK);
        CHECK_MSG(d.darknet_input, "a [data] section made by --set is not the config's own");
        gn_cfg_free(&c);
    }

    free(b1.p);
    free(b2.p);
    free(b2s.p);
    free(l.p);
    gn_net_free(&net);
    gn_cfg_free(&cfg);
    tmp_rmtree(dir);
    return check_exit();
}
