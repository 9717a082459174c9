/* The probabilities `gemmnet predict` computes, at full precision, for the torchvision test
 * (test_torchvision.py) until `gemmnet predict --csv` is there:
 *   predict_probs CONFIG WEIGHTS [--set section.key=value ...] IMAGE...
 * prints the CSV predict --csv will: a header `path,top1,probability,class 0,...`, then per
 * image its path, top-1 class index, its probability and every class's probability (%.9g).
 * The same steps as cmd_predict: eval transform, forward in evaluation mode. Exit 1 on any
 * error. */
#include "gemmnet/gemmnet.h"
#include "gemmnet/checkpoint.h"
#include "gemmnet/data.h"
#include "gemmnet/train.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: predict_probs CONFIG WEIGHTS [--set k=v ...] IMAGE...\n");
        return 2;
    }
    gn_err err = {0};
    gn_cfg *cfg = NULL;
    gn_net *net = NULL;
    gn_ckpt *ck = NULL;
    gn_data_opts d;
    gn_train_opts to;
    int rc = gn_cfg_load(&cfg, argv[1], &err), first = 3;
    while (!rc && first + 1 < argc && !strcmp(argv[first], "--set")) {
        rc = gn_cfg_set(cfg, argv[first + 1], first + 1, &err);
        first += 2;
    }
    if (!rc) rc = gn_train_opts_parse(&to, cfg, &err);
    if (!rc) rc = gn_data_opts_parse(&d, cfg, &err);
    if (!rc) gn_train_accept_darknet_keys(cfg);
    if (!rc) rc = gn_net_build(&net, cfg, 1, 1, &err);
    if (!rc) rc = gn_ckpt_open(&ck, argv[2], &err);
    if (!rc) rc = gn_ckpt_load_net(ck, net, NULL, GN_CKPT_STRICT, &err);
    if (!rc) rc = gn_cfg_check_all_unused(cfg, &err);
    if (!rc) {
        int k = net->n_classes;
        printf("path,top1,probability");
        for (int j = 0; j < k; j++) printf(",class %d", j);
        printf("\n");
        for (int i = first; i < argc && !rc; i++) {
            unsigned char *rgb = NULL;
            int w, h;
            if ((rc = gn_jpeg_load_rgb(argv[i], &rgb, &w, &h, &err))) break;
            gn_data_eval_transform(&d, rgb, w, h, net->input);
            free(rgb);
            gn_ctx ctx = gn_net_ctx(net, 0);
            gn_net_forward(net, &ctx);
            const float *p = gn_net_output(net);
            int best = 0;
            for (int j = 1; j < k; j++)
                if (p[j] > p[best]) best = j;
            printf("%s,%d,%.9g", argv[i], best, p[best]);
            for (int j = 0; j < k; j++) printf(",%.9g", p[j]);
            printf("\n");
        }
    }
    if (rc) fprintf(stderr, "predict_probs: %s\n", err.msg);
    gn_ckpt_close(&ck);
    gn_net_free(&net);
    gn_cfg_free(&cfg);
    return rc ? 1 : 0;
}
