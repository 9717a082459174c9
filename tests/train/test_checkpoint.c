/* Checkpoints: round trip, every refusal the loader promises (with its reason), truncation and
 * bit-flip sweeps, atomic saves that fail without harming the old file, and a safetensors file
 * built by hand from the spec (as Python's safetensors writes them). */
#include "check.h"
#include "gemmnet/checkpoint.h"
#include "gemmnet/gemmnet.h"

#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[256];

static const char *cfg_small =
    "[net]\ninputs=5\n"
    "[connected]\noutput=4\nactivation=relu\n"
    "[connected]\noutput=3\nactivation=linear\n"
    "[cost]\ntype=sse\n";

typedef struct built {
    gn_cfg *cfg;
    gn_net *net;
} built;

static built build(const char *text, uint64_t seed)
{
    built b = {0};
    gn_err err = {0};
    CHECK_MSG(gn_cfg_parse(&b.cfg, text, "test", &err) == GN_OK, "%s", err.msg);
    if (b.cfg) CHECK_MSG(gn_net_build(&b.net, b.cfg, 2, seed, &err) == GN_OK, "%s", err.msg);
    return b;
}

static void unbuild(built *b)
{
    gn_net_free(&b->net);
    gn_cfg_free(&b->cfg);
}

static char *path_in(const char *name)
{
    static char buf[4][512];
    static int k = 0;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

/* Unlinks first: ext4 flushes a file truncated and rewritten on close, which made the sweeps
 * below slow. */
static int write_bytes(const char *path, const void *p, size_t n)
{
    unlink(path);
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    int ok = fwrite(p, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

static unsigned char *read_bytes(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc((size_t)sz + 1);
    if (p && fread(p, 1, (size_t)sz, f) != (size_t)sz) {
        free(p);
        p = NULL;
    }
    fclose(f);
    *n = (size_t)sz;
    return p;
}

/* Opens path; expects a refusal whose message contains want (NULL: any message). */
static void expect_refused(const char *path, int code, const char *want, const char *what)
{
    gn_ckpt *c = NULL;
    gn_err err = {0};
    int rc = gn_ckpt_open(&c, path, &err);
    CHECK_MSG(rc != GN_OK && c == NULL, "%s: accepted", what);
    if (code >= 0) CHECK_MSG(rc == code, "%s: code %d (%s)", what, rc, err.msg);
    if (want) CHECK_MSG(strstr(err.msg, want) != NULL, "%s: '%s' lacks '%s'", what, err.msg, want);
    gn_ckpt_close(&c);
}

/* A safetensors file from a JSON header and data, padded as the spec's writer pads. */
static void write_st(const char *path, const char *json, const void *data, size_t n)
{
    size_t h = strlen(json), hp = (h + 7) & ~(size_t)7;
    size_t total = 8 + hp + n;
    unsigned char *buf = malloc(total);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)hp >> (8 * i));
    memcpy(buf + 8, json, h);
    memset(buf + 8 + h, ' ', hp - h);
    if (n) memcpy(buf + 8 + hp, data, n);
    CHECK(write_bytes(path, buf, total));
    free(buf);
}

static void fill(float *p, size_t n, float base)
{
    for (size_t i = 0; i < n; i++) p[i] = base + 0.25f * (float)i - 0.001f * (float)(i * i);
}

static void test_crc(void)
{
    CHECK(gn_crc32(0, "123456789", 9) == 0xCBF43926u);
    CHECK(gn_crc32(0, "", 0) == 0);
    /* Slicing by 8 against the bit-at-a-time definition, all lengths and alignments. */
    unsigned char buf[80];
    for (int i = 0; i < 80; i++) buf[i] = (unsigned char)(i * 37 + 11);
    for (int off = 0; off < 8; off++)
        for (int n = 0; n + off <= 80; n++) {
            uint32_t c = 0xFFFFFFFFu;
            for (int i = 0; i < n; i++) {
                c ^= buf[off + i];
                for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            }
            uint32_t split = gn_crc32(gn_crc32(0, buf + off, (size_t)n / 3), buf + off + n / 3,
                                      (size_t)(n - n / 3));
            CHECK(gn_crc32(0, buf + off, (size_t)n) == ~c);
            CHECK(split == ~c);
        }
}

static void test_round_trip(void)
{
    built a = build(cfg_small, 1), b = build(cfg_small, 2);
    if (!a.net || !b.net) goto done;
    gn_net *na = a.net, *nb = b.net;
    CHECK(memcmp(na->params, nb->params, na->n_params * sizeof(float)) != 0);
    float *ma = malloc(na->n_params * sizeof(float)), *mb = malloc(nb->n_params * sizeof(float));
    fill(ma, na->n_params, -1.5f);
    fill(mb, nb->n_params, 7.0f);
    gn_kv meta[] = {{"iteration", "1234"}, {"rng", "0123456789abcdef"},
                    {"config", "[net]\nbatch=64\n\"quoted\" \\ and \xc3\xa9t\xc3\xa9"},
                    {"empty", ""}};
    gn_err err = {0};
    const char *p = path_in("rt.safetensors");
    CHECK_MSG(gn_ckpt_save(p, na, ma, meta, 4, &err) == GN_OK, "%s", err.msg);
    size_t n = 0;
    unsigned char *bytes = read_bytes(p, &n);
    CHECK(bytes && n > 8);
    if (bytes) {
        uint64_t h = 0;
        for (int i = 0; i < 8; i++) h |= (uint64_t)bytes[i] << (8 * i);
        CHECK(h % 8 == 0 && 8 + h + 4 * 2 * na->n_params == n);
        CHECK(bytes[8] == '{');
    }
    free(bytes);

    gn_ckpt *c = NULL;
    CHECK_MSG(gn_ckpt_open(&c, p, &err) == GN_OK, "%s", err.msg);
    if (c) {
        CHECK(gn_ckpt_n_tensors(c) == 8);
        CHECK(gn_ckpt_has(c, "layers.0.weight") && gn_ckpt_has(c, "layers.1.bias"));
        CHECK(gn_ckpt_has(c, "optimizer.momentum.layers.1.weight"));
        CHECK(!gn_ckpt_has(c, "layers.2.weight"));
        for (int i = 0; i < 4; i++) {
            const char *v = gn_ckpt_meta(c, meta[i].key);
            CHECK_MSG(v && strcmp(v, meta[i].val) == 0, "meta %s", meta[i].key);
        }
        CHECK(strcmp(gn_ckpt_meta(c, "format"), GN_CKPT_FORMAT) == 0);
        CHECK(strcmp(gn_ckpt_meta(c, "format_version"), "1") == 0);
        CHECK(gn_ckpt_meta(c, "checksum.layers.0.weight") != NULL);
        CHECK(gn_ckpt_meta(c, "nonexistent") == NULL);
        CHECK(gn_ckpt_n_meta(c) >= 4 && gn_ckpt_meta_key(c, 0) != NULL);
        CHECK_MSG(gn_ckpt_load_net(c, nb, mb, GN_CKPT_STRICT, &err) == GN_OK, "%s", err.msg);
        CHECK(memcmp(na->params, nb->params, na->n_params * sizeof(float)) == 0);
        CHECK(na->n_state == nb->n_state &&
              (na->n_state == 0 ||
               memcmp(na->state, nb->state, na->n_state * sizeof(float)) == 0));
        CHECK(memcmp(ma, mb, na->n_params * sizeof(float)) == 0);
        CHECK(gn_ckpt_n_skipped(c) == 0);
    }
    gn_ckpt_close(&c);
    CHECK(c == NULL);

    /* Saved without momentum: loads weights, and refuses when momentum is asked for. */
    p = path_in("nomom.safetensors");
    CHECK_MSG(gn_ckpt_save(p, na, NULL, NULL, 0, &err) == GN_OK, "%s", err.msg);
    CHECK_MSG(gn_ckpt_open(&c, p, &err) == GN_OK, "%s", err.msg);
    if (c) {
        CHECK(gn_ckpt_n_tensors(c) == 4);
        fill(nb->params, nb->n_params, 3.0f);
        fill(mb, nb->n_params, 9.0f);
        float *keep = malloc(nb->n_params * sizeof(float));
        memcpy(keep, nb->params, nb->n_params * sizeof(float));
        int rc = gn_ckpt_load_net(c, nb, mb, GN_CKPT_STRICT, &err);
        CHECK(rc != GN_OK);
        CHECK_MSG(strstr(err.msg, "momentum") && strstr(err.msg, "missing"), "%s", err.msg);
        /* a refused load changes nothing */
        CHECK(memcmp(keep, nb->params, nb->n_params * sizeof(float)) == 0);
        CHECK_MSG(gn_ckpt_load_net(c, nb, NULL, GN_CKPT_STRICT, &err) == GN_OK, "%s", err.msg);
        CHECK(memcmp(na->params, nb->params, na->n_params * sizeof(float)) == 0);
        free(keep);
    }
    gn_ckpt_close(&c);

    /* Metadata the writer refuses. */
    gn_kv bad1[] = {{"format", "x"}}, bad2[] = {{"checksum.x", "y"}}, bad3[] = {{"a", "1"},
                                                                                 {"a", "2"}};
    gn_kv bad4[] = {{"k", "\xff\xfe"}}, bad5[] = {{"k", NULL}};
    p = path_in("badmeta.safetensors");
    CHECK(gn_ckpt_save(p, na, NULL, bad1, 1, &err) == GN_EINVAL);
    CHECK(gn_ckpt_save(p, na, NULL, bad2, 1, &err) == GN_EINVAL);
    CHECK(gn_ckpt_save(p, na, NULL, bad3, 2, &err) == GN_EINVAL);
    CHECK(gn_ckpt_save(p, na, NULL, bad4, 1, &err) == GN_EINVAL);
    CHECK(gn_ckpt_save(p, na, NULL, bad5, 1, &err) == GN_EINVAL);
    CHECK(access(p, F_OK) != 0);
    free(ma);
    free(mb);
done:
    unbuild(&a);
    unbuild(&b);
}

/* Not safetensors at all, or inconsistent layouts. */
static void test_not_safetensors(void)
{
    const char *p = path_in("bad.safetensors");
    unsigned char rnd[1000];
    uint64_t s = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < 1000; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        rnd[i] = (unsigned char)s;
    }
    CHECK(write_bytes(p, rnd, sizeof rnd));
    expect_refused(p, GN_EFORMAT, NULL, "random bytes");
    static const unsigned char jpeg[] = {0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 'J', 'F', 'I', 'F',
                                         0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00,
                                         0x00, 0xFF, 0xDB, 0x00, 0x43, 0x00, 0xFF, 0xD9};
    CHECK(write_bytes(p, jpeg, sizeof jpeg));
    expect_refused(p, GN_EFORMAT, "exceeds the file", "jpeg");
    CHECK(write_bytes(p, "", 0));
    expect_refused(p, GN_EFORMAT, "empty", "empty file");
    CHECK(write_bytes(p, "\x10\0\0", 3));
    expect_refused(p, GN_EFORMAT, "too short", "3 bytes");
    unsigned char big[24] = {0xE8, 0x03}; /* header length 1000, file of 24 bytes */
    memcpy(big + 8, "{}              ", 16);
    CHECK(write_bytes(p, big, sizeof big));
    expect_refused(p, GN_EFORMAT, "exceeds the file", "header length > file");
    expect_refused(path_in("does-not-exist"), GN_EIO, "cannot open", "no file");
    expect_refused(dir, GN_EIO, NULL, "a directory");

    float d[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]", d, 8);
    expect_refused(p, GN_EFORMAT, "not valid JSON", "unterminated JSON");
    write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}} x", d, 8);
    expect_refused(p, GN_EFORMAT, "after its JSON", "trailing bytes");
    write_st(p, "[1,2]", d, 0);
    expect_refused(p, GN_EFORMAT, "'{'", "array header");
    write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", d, 4);
    expect_refused(p, GN_EFORMAT, "out of range", "offsets beyond the data");
    write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", d, 8);
    expect_refused(p, GN_EFORMAT, "needs 12 bytes", "shape does not fit the offsets");
    write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", d, 12);
    expect_refused(p, GN_EFORMAT, "overlaps", "overlapping");
    write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}", d, 20);
    expect_refused(p, GN_EFORMAT, "gap", "gap");
    write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", d, 16);
    expect_refused(p, GN_EFORMAT, "cover", "data not covered");
    write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", d, 8);
    expect_refused(p, GN_EFORMAT, "out of range", "reversed offsets");
    write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", d, 8);
    expect_refused(p, GN_EFORMAT, "non-negative", "negative shape");
    write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", d, 8);
    expect_refused(p, GN_EFORMAT, "non-negative", "fractional shape");
    write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],"
                "\"data_offsets\":[0,8]}}", d, 8);
    expect_refused(p, GN_EFORMAT, NULL, "overflowing shape");
    write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,1e300]}}", d, 8);
    expect_refused(p, GN_EFORMAT, NULL, "huge offset");
    write_st(p, "{\"a\":{\"dtype\":\"X9\",\"shape\":[2],\"data_offsets\":[0,8]}}", d, 8);
    expect_refused(p, GN_EFORMAT, "unknown dtype", "unknown dtype");
    write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", d, 8);
    expect_refused(p, GN_EFORMAT, "data_offsets", "no offsets");
    write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", d, 16);
    expect_refused(p, GN_EFORMAT, "twice", "duplicate name");
    write_st(p, "{\"__metadata__\":{\"k\":1},\"a\":{\"dtype\":\"F32\",\"shape\":[2],"
                "\"data_offsets\":[0,8]}}", d, 8);
    expect_refused(p, GN_EFORMAT, "not a string", "numeric metadata");
    write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":\"\xff\"}",
             d, 8);
    expect_refused(p, GN_EFORMAT, "UTF-8", "bad UTF-8");
    write_st(p, "{\"__metadata__\":{\"format\":\"gemmnet-checkpoint\",\"format_version\":\"1\"},"
                "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", d, 8);
    expect_refused(p, GN_EFORMAT, "missing", "gemmnet file without checksums");
    write_st(p, "{\"__metadata__\":{\"format\":\"gemmnet-checkpoint\",\"format_version\":\"2\"},"
                "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", d, 8);
    expect_refused(p, GN_ENOTSUP, "format_version 2", "future version");
    /* Deep nesting must not blow the stack. */
    char deep[6000];
    int k = snprintf(deep, sizeof deep, "{\"a\":");
    for (int i = 0; i < 2500; i++) deep[k++] = '[';
    deep[k] = 0;
    write_st(p, deep, d, 0);
    expect_refused(p, GN_EFORMAT, NULL, "deep nesting");
    /* An empty safetensors file (no tensors) is valid; it just holds nothing. */
    write_st(p, "{}", d, 0);
    gn_ckpt *c = NULL;
    gn_err err = {0};
    CHECK_MSG(gn_ckpt_open(&c, p, &err) == GN_OK, "%s", err.msg);
    CHECK(c && gn_ckpt_n_tensors(c) == 0);
    gn_ckpt_close(&c);
}

/* Every prefix of a good file, and every single-bit flip in it, is refused. */
static void test_damage(void)
{
    built a = build(cfg_small, 3);
    if (!a.net) return;
    float *m = malloc(a.net->n_params * sizeof(float));
    fill(m, a.net->n_params, 0.5f);
    gn_kv meta[] = {{"iteration", "77"}};
    gn_err err = {0};
    const char *good = path_in("good.safetensors"), *p = path_in("damaged.safetensors");
    CHECK_MSG(gn_ckpt_save(good, a.net, m, meta, 1, &err) == GN_OK, "%s", err.msg);
    size_t n = 0;
    unsigned char *bytes = read_bytes(good, &n);
    if (!bytes) goto done;
    uint64_t h = 0;
    for (int i = 0; i < 8; i++) h |= (uint64_t)bytes[i] << (8 * i);
    int accepted = 0;
    for (size_t len = 0; len < n; len++) {
        CHECK(write_bytes(p, bytes, len));
        gn_ckpt *c = NULL;
        if (gn_ckpt_open(&c, p, &err) == GN_OK) accepted++;
        gn_ckpt_close(&c);
    }
    CHECK_MSG(accepted == 0, "%d truncations accepted (of %zu)", accepted, n);

    accepted = 0;
    int named = 0, data_flips = 0;
    for (size_t i = 0; i < n; i++)
        for (int bit = 0; bit < 8; bit++) {
            bytes[i] ^= (unsigned char)(1u << bit);
            CHECK(write_bytes(p, bytes, n));
            gn_ckpt *c = NULL;
            if (gn_ckpt_open(&c, p, &err) == GN_OK) {
                accepted++;
                if (accepted < 5) fprintf(stderr, "flip at byte %zu bit %d accepted\n", i, bit);
            } else if (i >= 8 + h) {
                data_flips++;
                /* The message names the damaged tensor. */
                named += strstr(err.msg, "checksum mismatch") && strstr(err.msg, "layers.");
            }
            gn_ckpt_close(&c);
            bytes[i] ^= (unsigned char)(1u << bit);
        }
    CHECK_MSG(accepted == 0, "%d bit flips accepted", accepted);
    CHECK(data_flips == (int)(8 * (n - 8 - h)));
    CHECK(named == data_flips);
    /* Two damaged bytes that would make it look like a foreign file without a header
     * checksum: still refused, the tensor checksums make it a gemmnet file. */
    {
        unsigned char *q = memmem(bytes, n, "gemmnet-checkpoint", 18);
        unsigned char *r = memmem(bytes, n, "\"checksum.header\"", 17);
        CHECK(q && r);
        if (q && r) {
            q[17] ^= 1;
            r[1] ^= 0x20;
            CHECK(write_bytes(p, bytes, n));
            expect_refused(p, GN_EFORMAT, "checksum.header is missing", "format and key damaged");
            q[17] ^= 1;
            r[1] ^= 0x20;
        }
    }
    /* A flip in the second tensor names that tensor. */
    bytes[8 + h + 4 * 4 * 5 + 1] ^= 4; /* layers.0.weight is [4,5]; then layers.0.bias */
    CHECK(write_bytes(p, bytes, n));
    expect_refused(p, GN_EFORMAT, "layers.0.bias: checksum mismatch", "flip in bias");
    free(bytes);
done:
    free(m);
    unbuild(&a);
}

/* Other networks: shape mismatch, missing and extra tensors, fine-tuning, other dtypes. */
static void test_other_nets(void)
{
    built a = build(cfg_small, 4);
    built wide = build("[net]\ninputs=6\n[connected]\noutput=4\n[connected]\noutput=3\n"
                       "[cost]\n", 5);
    built deeper = build("[net]\ninputs=5\n[connected]\noutput=4\n[connected]\noutput=3\n"
                         "[connected]\noutput=2\n[cost]\n", 6);
    built shallow = build("[net]\ninputs=5\n[connected]\noutput=4\n[cost]\n", 7);
    built nobias = build("[net]\ninputs=5\n[connected]\noutput=4\n[connected]\noutput=3\n"
                         "bias=0\n[cost]\n", 8);
    built head = build("[net]\ninputs=5\n[connected]\noutput=4\n[connected]\noutput=7\n"
                       "[cost]\n", 9);
    if (!a.net || !wide.net || !deeper.net || !shallow.net || !nobias.net || !head.net)
        goto done;
    gn_err err = {0};
    const char *p = path_in("nets.safetensors");
    CHECK_MSG(gn_ckpt_save(p, a.net, NULL, NULL, 0, &err) == GN_OK, "%s", err.msg);
    gn_ckpt *c = NULL;
    CHECK_MSG(gn_ckpt_open(&c, p, &err) == GN_OK, "%s", err.msg);
    if (!c) goto done;

    CHECK(gn_ckpt_load_net(c, wide.net, NULL, GN_CKPT_STRICT, &err) == GN_ESHAPE);
    CHECK_MSG(strcmp(err.msg, "layers.0.weight: shape [4,5] in the checkpoint, [4,6] in the "
                              "network") == 0, "%s", err.msg);
    CHECK(gn_ckpt_load_net(c, deeper.net, NULL, GN_CKPT_STRICT, &err) == GN_ESHAPE);
    CHECK_MSG(strstr(err.msg, "layers.2.weight: missing"), "%s", err.msg);
    CHECK(gn_ckpt_load_net(c, deeper.net, NULL, GN_CKPT_SKIP_MISMATCH, &err) == GN_ESHAPE);
    CHECK(gn_ckpt_load_net(c, shallow.net, NULL, GN_CKPT_STRICT, &err) == GN_ESHAPE);
    CHECK_MSG(strstr(err.msg, "layers.1.") && strstr(err.msg, "not in the network"), "%s",
              err.msg);
    CHECK(gn_ckpt_load_net(c, nobias.net, NULL, GN_CKPT_STRICT, &err) == GN_ESHAPE);
    CHECK_MSG(strstr(err.msg, "layers.1.bias: in the checkpoint but not in the network"), "%s",
              err.msg);

    /* Fine-tuning a new head: the first layer loads, the head keeps its own initialization. */
    float *head_w = malloc(head.net->n_params * sizeof(float));
    memcpy(head_w, head.net->params, head.net->n_params * sizeof(float));
    CHECK(gn_ckpt_load_net(c, head.net, NULL, GN_CKPT_STRICT, &err) == GN_ESHAPE);
    CHECK_MSG(gn_ckpt_load_net(c, head.net, NULL, GN_CKPT_SKIP_MISMATCH, &err) == GN_OK, "%s",
              err.msg);
    CHECK(gn_ckpt_n_skipped(c) == 2);
    CHECK_MSG(gn_ckpt_n_skipped(c) > 0 &&
                  strcmp(gn_ckpt_skipped(c, 0), "layers.1.weight: shape [3,4] in the "
                                                "checkpoint, [7,4] in the network (skipped)") == 0,
              "%s", gn_ckpt_skipped(c, 0));
    size_t n0 = a.net->layers[0].n_params;
    CHECK(memcmp(head.net->params, a.net->params, n0 * sizeof(float)) == 0);
    CHECK(memcmp(head.net->params + n0, head_w + n0,
                 (head.net->n_params - n0) * sizeof(float)) == 0);
    /* Extra tensors are reported, not refused, when fine-tuning. */
    CHECK_MSG(gn_ckpt_load_net(c, shallow.net, NULL, GN_CKPT_SKIP_MISMATCH, &err) == GN_OK,
              "%s", err.msg);
    CHECK(gn_ckpt_n_skipped(c) == 2 && strstr(gn_ckpt_skipped(c, 1), "not in the network"));
    free(head_w);
    gn_ckpt_close(&c);

    /* Another dtype: a valid safetensors file of F16 / F64 tensors with the right shapes. */
    static const char *dts[] = {"F16", "F64"};
    for (int k = 0; k < 2; k++) {
        int es = k ? 8 : 2;
        char json[1024];
        snprintf(json, sizeof json,
                 "{\"layers.0.weight\":{\"dtype\":\"%s\",\"shape\":[4,5],\"data_offsets\":[0,%d]},"
                 "\"layers.0.bias\":{\"dtype\":\"%s\",\"shape\":[4],\"data_offsets\":[%d,%d]},"
                 "\"layers.1.weight\":{\"dtype\":\"%s\",\"shape\":[3,4],\"data_offsets\":[%d,%d]},"
                 "\"layers.1.bias\":{\"dtype\":\"%s\",\"shape\":[3],\"data_offsets\":[%d,%d]}}",
                 dts[k], 20 * es, dts[k], 20 * es, 24 * es, dts[k], 24 * es, 36 * es, dts[k],
                 36 * es, 39 * es);
        unsigned char zeros[39 * 8] = {0};
        write_st(p, json, zeros, (size_t)(39 * es));
        CHECK_MSG(gn_ckpt_open(&c, p, &err) == GN_OK, "%s", err.msg);
        if (!c) continue;
        char want[64];
        snprintf(want, sizeof want, "dtype %s, expected F32", dts[k]);
        CHECK(gn_ckpt_load_net(c, a.net, NULL, GN_CKPT_STRICT, &err) == GN_EFORMAT);
        CHECK_MSG(strstr(err.msg, want), "%s", err.msg);
        gn_ckpt_close(&c);
    }
done:
    unbuild(&a);
    unbuild(&wide);
    unbuild(&deeper);
    unbuild(&shallow);
    unbuild(&nobias);
    unbuild(&head);
}

/* A file laid out as Python's safetensors writes one (metadata first, tensors sorted by name,
 * header padded with spaces), with no gemmnet checksums. */
static void test_foreign_file(void)
{
    built a = build(cfg_small, 10);
    if (!a.net) return;
    float data[39];
    for (int i = 0; i < 39; i++) data[i] = (float)i * 0.5f - 3.0f;
    /* sorted names: layers.0.bias [4], layers.0.weight [4,5], layers.1.bias [3], layers.1.weight
     * [3,4]; data in that order */
    const char *json =
        "{\"__metadata__\":{\"format\":\"pt\"},"
        "\"layers.0.bias\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
        "\"layers.0.weight\":{\"dtype\":\"F32\",\"shape\":[4,5],\"data_offsets\":[16,96]},"
        "\"layers.1.bias\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[96,108]},"
        "\"layers.1.weight\":{\"dtype\":\"F32\",\"shape\":[3,4],\"data_offsets\":[108,156]}}";
    const char *p = path_in("foreign.safetensors");
    unsigned char le[39 * 4];
    for (int i = 0; i < 39; i++) {
        uint32_t u;
        memcpy(&u, &data[i], 4);
        for (int b = 0; b < 4; b++) le[4 * i + b] = (unsigned char)(u >> (8 * b));
    }
    write_st(p, json, le, sizeof le);
    gn_ckpt *c = NULL;
    gn_err err = {0};
    CHECK_MSG(gn_ckpt_open(&c, p, &err) == GN_OK, "%s", err.msg);
    if (c) {
        CHECK(strcmp(gn_ckpt_meta(c, "format"), "pt") == 0);
        CHECK_MSG(gn_ckpt_load_net(c, a.net, NULL, GN_CKPT_STRICT, &err) == GN_OK, "%s",
                  err.msg);
        const gn_layer *l0 = &a.net->layers[0], *l1 = &a.net->layers[1];
        const float *w0 = gn_param_data(l0, &l0->par[0]), *b0 = gn_param_data(l0, &l0->par[1]);
        const float *w1 = gn_param_data(l1, &l1->par[0]), *b1 = gn_param_data(l1, &l1->par[1]);
        CHECK(memcmp(b0, data, 16) == 0 && memcmp(w0, data + 4, 80) == 0);
        CHECK(memcmp(b1, data + 24, 12) == 0 && memcmp(w1, data + 27, 48) == 0);
    }
    gn_ckpt_close(&c);
    unbuild(&a);
}

static int count_temp_files(const char *name)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    size_t k = strlen(name);
    struct dirent *e;
    while ((e = readdir(d)))
        if (strncmp(e->d_name, name, k) == 0 && strstr(e->d_name + k, ".tmp.")) n++;
    closedir(d);
    return n;
}

/* A failed save leaves the old checkpoint as it was and no temporary file. */
static void test_atomic(void)
{
    built a = build(cfg_small, 11);
    built big = build("[net]\ninputs=64\n[connected]\noutput=256\n[cost]\n", 12);
    if (!a.net || !big.net) goto done;
    gn_err err = {0};
    char nodir[600];
    snprintf(nodir, sizeof nodir, "%s/no/such/dir/x.safetensors", dir);
    CHECK(gn_ckpt_save(nodir, a.net, NULL, NULL, 0, &err) == GN_EIO);
    CHECK_MSG(strstr(err.msg, "cannot create") && strstr(err.msg, "No such file"), "%s",
              err.msg);

    const char *p = path_in("atomic.safetensors");
    CHECK_MSG(gn_ckpt_save(p, a.net, NULL, NULL, 0, &err) == GN_OK, "%s", err.msg);
    size_t n0 = 0, n1 = 0;
    unsigned char *before = read_bytes(p, &n0), *after;

    /* The temporary file's name is taken by a directory. */
    char tmp[700];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", p, (long)getpid());
    CHECK(mkdir(tmp, 0755) == 0);
    CHECK(gn_ckpt_save(p, big.net, NULL, NULL, 0, &err) == GN_EIO);
    CHECK_MSG(strstr(err.msg, "cannot create"), "%s", err.msg);
    rmdir(tmp);
    after = read_bytes(p, &n1);
    CHECK(before && after && n0 == n1 && memcmp(before, after, n0) == 0);
    free(after);

    /* The disk fills up mid-write (a file-size limit stands in for a full disk: EFBIG). */
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit old, lim;
    CHECK(getrlimit(RLIMIT_FSIZE, &old) == 0);
    lim = old;
    lim.rlim_cur = 4096;
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    int rc = gn_ckpt_save(p, big.net, NULL, NULL, 0, &err);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, SIG_DFL);
    CHECK(rc == GN_EIO);
    CHECK_MSG(strstr(err.msg, "cannot write"), "%s", err.msg);
    CHECK(count_temp_files("atomic.safetensors") == 0);
    after = read_bytes(p, &n1);
    CHECK(before && after && n0 == n1 && memcmp(before, after, n0) == 0);
    free(after);
    gn_ckpt *c = NULL;
    CHECK_MSG(gn_ckpt_open(&c, p, &err) == GN_OK, "%s", err.msg);
    if (c) CHECK_MSG(gn_ckpt_load_net(c, a.net, NULL, 0, &err) == GN_OK, "%s", err.msg);
    gn_ckpt_close(&c);

    /* And a save that succeeds replaces it. */
    CHECK_MSG(gn_ckpt_save(p, big.net, NULL, NULL, 0, &err) == GN_OK, "%s", err.msg);
    CHECK(count_temp_files("atomic.safetensors") == 0);
    CHECK_MSG(gn_ckpt_open(&c, p, &err) == GN_OK, "%s", err.msg);
    if (c) CHECK(gn_ckpt_load_net(c, big.net, NULL, 0, &err) == GN_OK);
    gn_ckpt_close(&c);
    free(before);
done:
    unbuild(&a);
    unbuild(&big);
}

static void remove_dir(void)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[800];
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

int main(void)
{
    const char *t = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/gn_ckpt_XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_crc();
    test_round_trip();
    test_not_safetensors();
    test_damage();
    test_other_nets();
    test_foreign_file();
    test_atomic();
    remove_dir();
    return check_exit();
}
