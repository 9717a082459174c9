/* gemmnet summary / gradcheck: look at a network a config describes. */
#include "cli/commands.h"
#include "cli/common.h"
#include "gemmnet/bench.h"
#include "core/rng.h"

#include <cJSON.h>

#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

static const char *summary_help =
    "usage: gemmnet summary CONFIG [--set section.key=value ...] [--batch N] [--json]\n\n"
    "Prints every layer with its inputs, output shape, parameter count and forward FLOPs per\n"
    "image (2 per multiply-add), marked 'frozen' or 'lr xM' when fine-tuning keys apply to it\n"
    "(docs/fine-tuning.md), then the totals and the planned memory for a batch of N\n"
    "(default: the config's batch/subdivisions).\n"
    "--json: the same network as one JSON object instead, for scripts (scripts/import-torchvision):\n"
    "input [c,h,w]; classes; params and state (floats); layers, each with index, type, inputs\n"
    "(producing layer indices, -1 for the net's input), output [c,h,w], flops, frozen, lr_mult,\n"
    "and params: every tensor in checkpoint order with its checkpoint name, PyTorch shape and\n"
    "trainable flag.\n";

static cJSON *shape_json(gn_shape s)
{
    int v[3] = {s.c, s.h, s.w};
    return cJSON_CreateIntArray(v, 3);
}

/* The planned net as JSON (summary --json); NULL when out of memory. */
static cJSON *summary_json(const gn_net *net, int batch)
{
    cJSON *o = cJSON_CreateObject(), *layers = NULL;
    if (!o) return NULL;
    cJSON_AddItemToObject(o, "input", shape_json(net->in));
    cJSON_AddNumberToObject(o, "batch", batch);
    cJSON_AddNumberToObject(o, "classes", net->n_classes);
    cJSON_AddNumberToObject(o, "params", (double)net->n_params);
    cJSON_AddNumberToObject(o, "state", (double)net->n_state);
    cJSON_AddNumberToObject(o, "flops", net->flops);
    if (!(layers = cJSON_AddArrayToObject(o, "layers"))) goto fail;
    for (int i = 0; i < net->n_layers; i++) {
        const gn_layer *l = &net->layers[i];
        cJSON *lo = cJSON_CreateObject(), *ps;
        if (!lo || !cJSON_AddItemToArray(layers, lo)) goto fail;
        cJSON_AddNumberToObject(lo, "index", i);
        cJSON_AddStringToObject(lo, "type", l->ops->section);
        cJSON_AddItemToObject(lo, "inputs", cJSON_CreateIntArray(l->in_idx, l->n_in));
        cJSON_AddItemToObject(lo, "output", shape_json(l->out));
        cJSON_AddNumberToObject(lo, "flops", l->flops);
        cJSON_AddBoolToObject(lo, "frozen", l->frozen);
        cJSON_AddNumberToObject(lo, "lr_mult", l->lr_mult);
        if (!(ps = cJSON_AddArrayToObject(lo, "params"))) goto fail;
        for (int j = 0; j < l->n_par; j++) {
            const gn_param *p = &l->par[j];
            cJSON *po = cJSON_CreateObject();
            char full[96];
            if (!po || !cJSON_AddItemToArray(ps, po)) goto fail;
            gn_param_full_name(l, p, full, sizeof full);
            cJSON_AddStringToObject(po, "name", full);
            cJSON_AddStringToObject(po, "param", p->name);
            cJSON_AddItemToObject(po, "shape", cJSON_CreateIntArray(p->shape, p->ndim));
            cJSON_AddBoolToObject(po, "trainable", p->trainable);
        }
    }
    return o;
fail:
    cJSON_Delete(o);
    return NULL;
}

static int planned_batch(gn_cfg *cfg, int *batch, gn_err *err)
{
    gn_cfg_section *net = gn_cfg_section_find(cfg, "net");
    int b, sub, rc;
    if ((rc = gn_cfg_int(net, "batch", 1, 1, 1 << 20, &b, err))) return rc;
    if ((rc = gn_cfg_int(net, "subdivisions", 1, 1, 1 << 20, &sub, err))) return rc;
    if (b % sub)
        return gn_cfg_error(gn_cfg_kv_find(net, "subdivisions"), net, err, GN_ECONFIG,
                            "batch=%d is not divisible by subdivisions=%d", b, sub);
    *batch = b / sub;
    return GN_OK;
}

static void shape_str(gn_shape s, char *buf, size_t n)
{
    if (s.h == 1 && s.w == 1)
        snprintf(buf, n, "%d", s.c);
    else
        snprintf(buf, n, "%dx%dx%d", s.c, s.h, s.w);
}

int cmd_summary(int argc, char **argv)
{
    cli_common c = {0};
    int batch = 0, json = 0;
    for (int i = 1; i < argc;) {
        int t = cli_take_common_or_help(&c, argc, argv, &i, summary_help);
        if (t == CLI_HELP) return 0;
        if (t == CLI_ERROR) return 2;
        if (t == CLI_TAKEN) continue;
        if (!strcmp(argv[i], "--batch") && i + 1 < argc) {
            if ((batch = cli_parse_int("summary", "--batch", argv[i + 1], 1, 1 << 20)) < 0)
                return 2;
            i += 2;
            continue;
        }
        if (!strcmp(argv[i], "--json")) {
            json = 1;
            i++;
            continue;
        }
        if (argv[i][0] == '-' || c.config) return cli_usage_error("summary", "unexpected '%s'", argv[i]);
        c.config = argv[i++];
    }
    if (!c.config) return cli_usage_error("summary", "missing CONFIG");
    gn_cfg *cfg = cli_load_config(&c);
    if (!cfg) return 1;
    gn_err err = {0};
    gn_net *net = NULL;
    int rc = 1;
    if (!batch && planned_batch(cfg, &batch, &err)) goto done;
    /* no buffers: any batch can be shown; memory as training plans it */
    if (gn_net_plan_flags(&net, cfg, batch, GN_NET_RECOMPUTE, &err)) goto done;
    if (json) {
        cJSON *o = summary_json(net, batch);
        char *text = o ? cJSON_PrintUnformatted(o) : NULL;
        cJSON_Delete(o);
        if (!text) {
            gn_err_set(&err, GN_ENOMEM, "out of memory");
            goto done;
        }
        printf("%s\n", text);
        cJSON_free(text);
        rc = 0;
        goto done;
    }
    char ins[64], outs[64], buf[32];
    printf("%s: input %dx%dx%d, batch %d\n\n", cfg->path, net->in.c, net->in.h, net->in.w, batch);
    printf("%4s  %-14s %-14s %-16s %12s %12s\n", "#", "layer", "input", "output", "params",
           "MFLOP/img");
    for (int i = 0; i < net->n_layers; i++) {
        const gn_layer *l = &net->layers[i];
        shape_str(l->in[0], ins, sizeof ins);
        if (l->n_in > 1) {
            size_t len = strlen(ins);
            snprintf(ins + len, sizeof ins - len, "+%d", l->n_in - 1);
        }
        shape_str(l->out, outs, sizeof outs);
        printf("%4d  %-14s %-14s %-16s %12zu %12.2f", i, l->ops->section, ins, outs,
               l->n_params + l->n_state, l->flops / 1e6);
        /* fine-tuning: what train.freeze / stopbackward and lr_mult set */
        if (l->frozen) printf("  frozen");
        if (l->lr_mult != 1.0f) printf("  lr x%g", (double)l->lr_mult);
        printf("\n");
    }
    double mem = gn_net_planned_bytes(net, 1);
    printf("\nparameters: %zu trainable (%s), %zu state\n", net->n_params,
           cli_si((double)net->n_params, buf, sizeof buf), net->n_state);
    printf("forward: %.3f GFLOP per image; training step: %.3f GFLOP per image\n",
           net->flops / 1e9, (net->flops + net->flops_bwd) / 1e9);
    printf("planned memory for batch %d (with momentum): %.1f MiB\n", batch, mem / 1048576.0);
    gn_err merr = {0};
    if (gn_net_check_memory(net, 1, &merr))
        printf("does not fit: %s\n", merr.msg);
    else if (gn_net_memory_limit() > 0)
        printf("memory limit: %.0f MiB (fits)\n", gn_net_memory_limit() / 1048576.0);
    rc = 0;
done:
    if (rc) cli_fail(&err);
    gn_net_free(&net);
    gn_cfg_free(&cfg);
    return rc;
}

static const char *gradcheck_help =
    "usage: gemmnet gradcheck CONFIG [--set section.key=value ...] [--batch N] [--checks N]\n"
    "                         [--tol X] [--eval]\n\n"
    "Builds the network (usually with a small input: --set net.width=16 --set net.height=16),\n"
    "runs it forward on random data, then checks every layer's backward pass against central\n"
    "finite differences of a double-precision loss, for its inputs and parameters (up to N\n"
    "entries each, default 40). Prints the worst relative error per layer; exits 1 if any\n"
    "layer exceeds the tolerance (default 0.02). Kinks (ReLU at 0, pooling ties) are skipped.\n";

int cmd_gradcheck(int argc, char **argv)
{
    cli_common c = {0};
    int batch = 2, checks = 40, train = 1;
    double tol = 0.02;
    for (int i = 1; i < argc;) {
        int t = cli_take_common_or_help(&c, argc, argv, &i, gradcheck_help);
        if (t == CLI_HELP) return 0;
        if (t == CLI_ERROR) return 2;
        if (t == CLI_TAKEN) continue;
        if (!strcmp(argv[i], "--batch") && i + 1 < argc) {
            if ((batch = cli_parse_int("gradcheck", "--batch", argv[i + 1], 1, 4096)) < 0) return 2;
            i += 2;
        } else if (!strcmp(argv[i], "--checks") && i + 1 < argc) {
            if ((checks = cli_parse_int("gradcheck", "--checks", argv[i + 1], 1, 1 << 20)) < 0)
                return 2;
            i += 2;
        } else if (!strcmp(argv[i], "--tol") && i + 1 < argc) {
            char *end;
            tol = strtod(argv[i + 1], &end);
            if (*end || !(tol > 0)) return cli_usage_error("gradcheck", "bad --tol '%s'", argv[i + 1]);
            i += 2;
        } else if (!strcmp(argv[i], "--eval")) {
            train = 0;
            i++;
        } else if (argv[i][0] == '-' || c.config) {
            return cli_usage_error("gradcheck", "unexpected '%s'", argv[i]);
        } else {
            c.config = argv[i++];
        }
    }
    if (!c.config) return cli_usage_error("gradcheck", "missing CONFIG");
    gn_set_threads(c.threads);
    gn_cfg *cfg = cli_load_config(&c);
    if (!cfg) return 1;
    gn_err err = {0};
    gn_net *net = NULL;
    int rc = 1, failed = 0;
    if (gn_net_build(&net, cfg, batch, 1, &err) || gn_net_enable_dinput(net, &err)) goto done;
    gn_rng r = gn_rng_make(42);
    for (size_t i = 0; i < (size_t)batch * gn_shape_size(net->in); i++)
        net->input[i] = (float)(2 * gn_rng_uniform(&r) - 1);
    for (int i = 0; i < batch; i++)
        net->labels[i] = (int)gn_rng_below(&r, (uint64_t)(net->n_classes > 0 ? net->n_classes : 1));
    for (size_t i = 0; i < (size_t)batch * (size_t)net->n_classes; i++)
        net->targets[i] = (float)(2 * gn_rng_uniform(&r) - 1);
    gn_ctx ctx = gn_net_ctx(net, train);
    ctx.seed = 1;
    gn_net_forward(net, &ctx);
    printf("%4s  %-14s %12s %12s %8s %8s  %s\n", "#", "layer", "err dx", "err dW", "checked",
           "skipped", "result");
    for (int i = 0; i < net->n_layers; i++) {
        gn_layer *l = &net->layers[i];
        gn_gradcheck g;
        if (gn_gradcheck_layer(l, &ctx, checks, 7, &g, &err)) goto done;
        int bad = g.max_err_dx > tol || g.max_err_dw > tol;
        failed += bad;
        printf("%4d  %-14s %12.3e %12.3e %8d %8d  %s\n", i, l->ops->section, g.max_err_dx,
               g.max_err_dw, g.checked, g.skipped, bad ? "FAIL" : "ok");
    }
    printf("%d layers, %d failed (tolerance %g)\n", net->n_layers, failed, tol);
    rc = failed ? 1 : 0;
    err.msg[0] = 0;
done:
    if (rc && err.msg[0]) cli_fail(&err);
    gn_net_free(&net);
    gn_cfg_free(&cfg);
    return rc;
}
