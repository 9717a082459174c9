/* The ONNX exporter without a runtime (suite unit, so it also runs under the sanitizers): the
 * model written for tests/interop/onnx_layers.cfg is read back with protobuf-c and checked
 * field by field: opset and IR version, the named input and output with a symbolic batch,
 * darknet's max-pool padding as begin/end pads, the batch norm as BatchNormalization with
 * gemmnet's own tensors, no Dropout node; and a refused layer (onnx_refuse.cfg) is named and
 * leaves no file behind, also none in place of an older one. ONNX Runtime's numbers are checked
 * by test_onnx (integration). */
#include "check.h"
#include "../data/tmpdir.h"
#include "gemmnet/gemmnet.h"
#include "gemmnet/interop.h"
#include "interop/onnx.pb-c.h"

#include <dirent.h>
#include <string.h>

static gn_net *build(const char *root, const char *name, gn_cfg **cfg)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/interop/%s", root, name);
    gn_err err = {0};
    gn_net *net = NULL;
    int rc = gn_cfg_load(cfg, path, &err);
    if (!rc) rc = gn_net_build(&net, *cfg, 1, 5, &err);
    CHECK_MSG(rc == GN_OK, "%s: %s", name, err.msg);
    return net;
}

static const Onnx__NodeProto *find_node(const Onnx__GraphProto *g, const char *op, int nth)
{
    for (size_t i = 0; i < g->n_node; i++)
        if (!strcmp(g->node[i]->op_type, op) && nth-- == 0) return g->node[i];
    return NULL;
}

static const Onnx__AttributeProto *find_attr(const Onnx__NodeProto *n, const char *name)
{
    for (size_t i = 0; n && i < n->n_attribute; i++)
        if (!strcmp(n->attribute[i]->name, name)) return n->attribute[i];
    return NULL;
}

static const Onnx__TensorProto *find_init(const Onnx__GraphProto *g, const char *name)
{
    for (size_t i = 0; i < g->n_initializer; i++)
        if (!strcmp(g->initializer[i]->name, name)) return g->initializer[i];
    return NULL;
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) n += e->d_name[0] != '.';
    if (d) closedir(d);
    return n;
}

int main(void)
{
    const char *root = getenv("GN_SOURCE_ROOT");
    CHECK_MSG(root != NULL, "GN_SOURCE_ROOT is not set (meson test sets it)");
    if (!root) return check_exit();
    char dir[64], path[128];
    CHECK(tmp_make(dir, sizeof dir) != NULL);
    snprintf(path, sizeof path, "%s/model.onnx", dir);

    gn_cfg *cfg = NULL;
    gn_net *net = build(root, "onnx_layers.cfg", &cfg);
    gn_err err = {0};
    int rc = net ? gn_onnx_export(path, net, &err) : GN_EINVAL;
    CHECK_MSG(rc == GN_OK, "export: %s", err.msg);
    size_t n = 0;
    unsigned char *buf = rc ? NULL : tmp_read(path, &n);
    Onnx__ModelProto *m = buf ? onnx__model_proto__unpack(NULL, n, buf) : NULL;
    CHECK_MSG(m != NULL, "%s does not parse as an ONNX ModelProto", path);
    if (m) {
        const Onnx__GraphProto *g = m->graph;
        CHECK(m->ir_version >= 7 && m->n_opset_import == 1);
        CHECK(!strcmp(m->opset_import[0]->domain, "") && m->opset_import[0]->version >= 13);
        CHECK(g->n_input == 1 && !strcmp(g->input[0]->name, "input"));
        CHECK(g->n_output == 1 && !strcmp(g->output[0]->name, "output"));
        const Onnx__TensorShapeProto *is = g->input[0]->type->tensor_type->shape;
        const Onnx__TensorShapeProto *os = g->output[0]->type->tensor_type->shape;
        CHECK(is->n_dim == 4 && is->dim[0]->value_case ==
                                    ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM);
        CHECK(is->dim[1]->dim_value == 3 && is->dim[2]->dim_value == 13 &&
              is->dim[3]->dim_value == 11);
        CHECK(os->n_dim == 2 && os->dim[1]->dim_value == 10);
        /* layer 2: size 3, stride 2, padding 3 -> 1 before, 2 after */
        const Onnx__AttributeProto *pads = find_attr(find_node(g, "MaxPool", 0), "pads");
        CHECK(pads && pads->n_ints == 4);
        if (pads && pads->n_ints == 4)
            CHECK(pads->ints[0] == 1 && pads->ints[1] == 1 && pads->ints[2] == 2 &&
                  pads->ints[3] == 2);
        /* layer 13: size 2, stride 1, padding 1 -> 0 before, 1 after */
        pads = find_attr(find_node(g, "MaxPool", 1), "pads");
        CHECK(pads && pads->n_ints == 4);
        if (pads && pads->n_ints == 4)
            CHECK(pads->ints[0] == 0 && pads->ints[1] == 0 && pads->ints[2] == 1 &&
                  pads->ints[3] == 1);
        /* layer 1's batch norm, its running mean byte for byte */
        const Onnx__NodeProto *bn = find_node(g, "BatchNormalization", 0);
        CHECK(bn && bn->n_input == 5 && !strcmp(bn->input[3], "layers.1.bn.running_mean"));
        const Onnx__TensorProto *rm = find_init(g, "layers.1.bn.running_mean");
        const gn_layer *l0 = net ? &net->layers[1] : NULL;
        const gn_param *p = NULL;
        for (int k = 0; l0 && k < l0->n_par; k++)
            if (!strcmp(l0->par[k].name, "bn.running_mean")) p = &l0->par[k];
        CHECK(rm && p && rm->raw_data.len == p->count * sizeof(float) &&
              !memcmp(rm->raw_data.data, gn_param_data(l0, p), rm->raw_data.len));
        const Onnx__AttributeProto *eps = find_attr(bn, "epsilon");
        CHECK(eps && eps->f == 1e-5f);
        CHECK(find_node(g, "Dropout", 0) == NULL);
        CHECK(find_node(g, "Softmax", 0) != NULL && find_node(g, "Softmax", 1) == NULL);
        onnx__model_proto__free_unpacked(m, NULL);
    }
    free(buf);
    gn_net_free(&net);
    gn_cfg_free(&cfg);

    /* refused: named, nothing written, an older file untouched */
    net = build(root, "onnx_refuse.cfg", &cfg);
    tmp_write(path, "old", 3);
    err = (gn_err){0};
    rc = net ? gn_onnx_export(path, net, &err) : GN_EINVAL;
    CHECK_MSG(rc == GN_ENOTSUP && strstr(err.msg, "layer 2 [shortcut]"), "rc %d: %s", rc,
              err.msg);
    buf = tmp_read(path, &n);
    CHECK(buf && n == 3 && !memcmp(buf, "old", 3));
    free(buf);
    CHECK(count_entries(dir) == 1);
    snprintf(path, sizeof path, "%s/fresh.onnx", dir);
    rc = net ? gn_onnx_export(path, net, &err) : GN_EINVAL;
    CHECK(rc == GN_ENOTSUP && count_entries(dir) == 1);
    gn_net_free(&net);
    gn_cfg_free(&cfg);
    tmp_rmtree(dir);
    return check_exit();
}
