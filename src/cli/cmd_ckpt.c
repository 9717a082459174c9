/* gemmnet ckpt-info: open and validate a checkpoint, print its metadata and tensors. */
#include "cli/commands.h"
#include "cli/common.h"
#include "gemmnet/checkpoint.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *ckpt_help =
    "usage: gemmnet ckpt-info FILE [--config CONFIG [--set section.key=value ...]] [--quiet]\n\n"
    "Opens FILE, validates it (header, offsets, every CRC-32) and prints its metadata and\n"
    "tensors (name, dtype, shape). With --config, also loads it into the network CONFIG\n"
    "describes (strictly: every tensor present with the right shape). Exits 0 if the file is\n"
    "valid, 1 with the reason if it is refused.\n";

int cmd_ckpt_info(int argc, char **argv)
{
    cli_common c = {0};
    const char *file = NULL;
    int quiet = 0;
    for (int i = 1; i < argc;) {
        int t = cli_take_common_or_help(&c, argc, argv, &i, ckpt_help);
        if (t == CLI_HELP) return 0;
        if (t == CLI_ERROR) return 2;
        if (t == CLI_TAKEN) continue;
        if (!strcmp(argv[i], "--config") && i + 1 < argc) {
            c.config = argv[i + 1];
            i += 2;
        } else if (!strcmp(argv[i], "--quiet")) {
            quiet = 1;
            i++;
        } else if (argv[i][0] == '-' || file) {
            return cli_usage_error("ckpt-info", "unexpected '%s'", argv[i]);
        } else {
            file = argv[i++];
        }
    }
    if (!file) return cli_usage_error("ckpt-info", "missing FILE");
    gn_err err = {0};
    gn_ckpt *ck = NULL;
    gn_cfg *cfg = NULL;
    gn_net *net = NULL;
    float *mom = NULL;
    int rc = 1;
    if (gn_ckpt_open(&ck, file, &err)) {
        gn_err_wrap(&err, "%s refused", file);
        goto done;
    }
    if (!quiet) {
        printf("%s: valid, %d tensors, %d metadata entries\n", file, gn_ckpt_n_tensors(ck),
               gn_ckpt_n_meta(ck));
        for (int i = 0; i < gn_ckpt_n_meta(ck); i++) {
            const char *key = gn_ckpt_meta_key(ck, i);
            if (strncmp(key, "checksum.", 9) == 0) continue;
            const char *v = gn_ckpt_meta(ck, key);
            int len = (int)strcspn(v, "\n");
            int cut = len > 200 ? 200 : len;
            printf("  meta %s = %.*s%s\n", key, cut, v, v[cut] ? " ..." : "");
        }
        for (int i = 0; i < gn_ckpt_n_tensors(ck); i++) {
            const char *dtype;
            int ndim;
            uint64_t shape[8];
            const char *name = gn_ckpt_tensor(ck, i, &dtype, &ndim, shape);
            printf("  %-48s %-5s [", name, dtype);
            for (int d = 0; d < ndim; d++) printf("%s%" PRIu64, d ? "," : "", shape[d]);
            printf("]\n");
        }
    }
    if (c.config) {
        if (!(cfg = cli_load_config(&c))) goto done_quiet;
        if (gn_net_build(&net, cfg, 1, 1, &err)) goto done;
        int has_mom = 0;
        for (int i = 0; i < gn_ckpt_n_tensors(ck); i++)
            if (!strncmp(gn_ckpt_tensor(ck, i, NULL, NULL, NULL), "optimizer.", 10)) has_mom = 1;
        if (has_mom && net->n_params && !(mom = calloc(net->n_params, sizeof *mom))) {
            gn_err_set(&err, GN_ENOMEM, "out of memory");
            goto done;
        }
        if (gn_ckpt_load_net(ck, net, mom, GN_CKPT_STRICT, &err)) {
            gn_err_wrap(&err, "%s does not load into %s", file, cfg->path);
            goto done;
        }
        if (!quiet) printf("loads into %s\n", cfg->path);
    }
    rc = 0;
done:
    if (rc) cli_fail(&err);
done_quiet:
    free(mom);
    gn_net_free(&net);
    gn_cfg_free(&cfg);
    gn_ckpt_close(&ck);
    return rc;
}
