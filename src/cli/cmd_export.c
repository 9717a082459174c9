/* gemmnet export: a trained network in another tool's format, chosen by the output's name. */
#include "cli/commands.h"
#include "cli/common.h"
#include "gemmnet/checkpoint.h"
#include "gemmnet/data.h"
#include "gemmnet/interop.h"
#include "gemmnet/train.h"

#include <stdio.h>
#include <string.h>

static const char *export_help =
    "usage: gemmnet export CONFIG --weights PATH --out FILE [--set ...]\n\n"
    "Writes the network CONFIG describes, with the weights from PATH (a checkpoint or a darknet\n"
    ".weights file, told apart by content), as FILE:\n"
    "  FILE.onnx     an ONNX model (opset 13, evaluation mode): input \"input\" [N,C,H,W]\n"
    "                (after the [data] normalization), output \"output\" [N,D] (the\n"
    "                probabilities of a classifier), N dynamic; batch norm as\n"
    "                BatchNormalization nodes, dropout and cost layers dropped. A layer ONNX\n"
    "                cannot express is refused by name (exit 1, nothing written);\n"
    "                docs/interop.md has the mapping\n"
    "  FILE.weights  a darknet .weights file, in the config's layer order (version 0.2.0\n"
    "                and a 64-bit seen, as darknet writes; docs/interop.md)\n"
    "The file is written to a temporary name and renamed into place.\n";

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

int cmd_export(int argc, char **argv)
{
    cli_common c = {0};
    const char *weights = NULL, *out = NULL;
    for (int i = 1; i < argc;) {
        int t = cli_take_common_or_help(&c, argc, argv, &i, export_help);
        if (t == CLI_HELP) return 0;
        if (t == CLI_ERROR) return 2;
        if (t == CLI_TAKEN) continue;
        if (!strcmp(argv[i], "--weights") && i + 1 < argc) {
            weights = argv[i + 1];
            i += 2;
        } else if (!strcmp(argv[i], "--out") && i + 1 < argc) {
            out = argv[i + 1];
            i += 2;
        } else if (argv[i][0] == '-' || c.config) {
            return cli_usage_error("export", "unexpected '%s'", argv[i]);
        } else {
            c.config = argv[i++];
        }
    }
    if (!c.config || !weights || !out)
        return cli_usage_error("export", "needs CONFIG, --weights PATH and --out FILE");
    int onnx = has_suffix(out, ".onnx"), darknet = has_suffix(out, ".weights");
    if (!onnx && !darknet)
        return cli_usage_error("export", "--out %s: the name must end in .onnx or .weights", out);
    gn_cfg *cfg = cli_load_config(&c);
    if (!cfg) return 1;
    gn_err err = {0};
    gn_net *net = NULL;
    gn_ckpt *ck = NULL;
    gn_data_opts d;
    gn_train_opts to;
    /* the training and data keys are read (and so checked) though export uses none of them */
    int rc = gn_train_opts_parse(&to, cfg, &err);
    if (!rc) rc = gn_data_opts_parse(&d, cfg, &err);
    gn_train_accept_darknet_keys(cfg);
    if (!rc) rc = cli_load_net(cfg, weights, 1, &net, &ck, &err);
    if (!rc) rc = gn_cfg_check_all_unused(cfg, &err);
    if (!rc) rc = onnx ? gn_onnx_export(out, net, &err) : gn_darknet_weights_save(out, net, &err);
    if (!rc) printf("%s\n", out);
    gn_ckpt_close(&ck);
    gn_net_free(&net);
    gn_cfg_free(&cfg);
    return rc ? cli_fail(&err) : 0;
}
