/* libFuzzer target: the config parser with --set overrides, then the option readers and
 * gn_net_build (batch 1) on what parses.
 * Input: config text, then optionally a NUL byte and override lines ("section.key=value"). */
#include "gemmnet/bench.h"
#include "gemmnet/cfg.h"
#include "gemmnet/data.h"
#include "gemmnet/gemmnet.h"
#include "gemmnet/train.h"

#include <stdlib.h>
#include <string.h>

#define MAX_PLAN_BYTES (64.0 * 1048576.0) /* build only nets this small: the fuzzer's RSS limit */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    size_t tlen = strlen(text);
    gn_err err = {0};
    gn_cfg *cfg = NULL;
    if (gn_cfg_parse(&cfg, text, "fuzz.cfg", &err) == GN_OK) {
        int ok = 1;
        /* overrides: NUL-separated tail, one per line */
        char *p = tlen < size ? text + tlen + 1 : NULL;
        for (int k = 0; ok && p && p < text + size && k < 16; k++) {
            char *nl = memchr(p, '\n', (size_t)(text + size - p));
            if (nl) *nl = 0;
            if (gn_cfg_set(cfg, p, k + 1, &err)) ok = 0;
            p = nl ? nl + 1 : NULL;
        }
        gn_net *net = NULL;
        if (ok && gn_net_plan(&net, cfg, 1, &err) == GN_OK) {
            double need = gn_net_planned_bytes(net, 1);
            gn_net_free(&net);
            if (need < MAX_PLAN_BYTES && gn_net_build(&net, cfg, 1, 1, &err) == GN_OK)
                gn_net_free(&net);
        }
        if (ok) {
            gn_data_opts d;
            gn_data_opts_parse(&d, cfg, &err);
            gn_train_opts t;
            gn_train_opts_parse(&t, cfg, &err);
        }
        gn_cfg_free(&cfg);
    }
    free(text);
    return 0;
}
