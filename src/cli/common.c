#include "cli/common.h"
#include "gemmnet/checkpoint.h"
#include "gemmnet/interop.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_is_help(const char *arg) { return !strcmp(arg, "-h") || !strcmp(arg, "--help"); }

int cli_parse_int(const char *cmd, const char *flag, const char *v, int lo, int hi)
{
    char *end;
    errno = 0;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || !*v || *end || errno || x < lo || x > hi) {
        fprintf(stderr, "gemmnet %s: %s needs an integer in [%d, %d], got '%s'\n", cmd, flag, lo,
                hi, v ? v : "");
        return -1;
    }
    return (int)x;
}

int cli_take_common(cli_common *c, int argc, char **argv, int i)
{
    const char *a = argv[i];
    if (!strcmp(a, "--set") || !strncmp(a, "--set=", 6)) {
        const char *v = a[5] == '=' ? a + 6 : (i + 1 < argc ? argv[i + 1] : NULL);
        if (!v) {
            fprintf(stderr, "gemmnet: --set needs section.key=value\n");
            return -1;
        }
        if (c->n_sets == CLI_MAX_SETS) {
            fprintf(stderr, "gemmnet: more than %d --set options\n", CLI_MAX_SETS);
            return -1;
        }
        c->set_argpos[c->n_sets] = a[5] == '=' ? i : i + 1;
        c->sets[c->n_sets++] = v;
        return a[5] == '=' ? 1 : 2;
    }
    if (!strcmp(a, "--threads") || !strncmp(a, "--threads=", 10)) {
        const char *v = a[9] == '=' ? a + 10 : (i + 1 < argc ? argv[i + 1] : NULL);
        int n = cli_parse_int(argv[0], "--threads", v, 0, 4096);
        if (n < 0) return -1;
        c->threads = n;
        return a[9] == '=' ? 1 : 2;
    }
    return 0;
}

int cli_take_common_or_help(cli_common *c, int argc, char **argv, int *i, const char *help)
{
    if (cli_is_help(argv[*i])) {
        fputs(help, stdout);
        return CLI_HELP;
    }
    int k = cli_take_common(c, argc, argv, *i);
    if (k < 0) return CLI_ERROR;
    *i += k;
    return k > 0 ? CLI_TAKEN : CLI_OTHER;
}

gn_cfg *cli_load_config(const cli_common *c)
{
    gn_err err = {0};
    gn_cfg *cfg = NULL;
    if (gn_cfg_load(&cfg, c->config, &err)) {
        cli_fail(&err);
        return NULL;
    }
    for (int i = 0; i < c->n_sets; i++)
        if (gn_cfg_set(cfg, c->sets[i], c->set_argpos[i], &err)) {
            cli_fail(&err);
            gn_cfg_free(&cfg);
            return NULL;
        }
    return cfg;
}

int cli_fail(const gn_err *err)
{
    fprintf(stderr, "gemmnet: %s\n", err->msg[0] ? err->msg : gn_status_name(err->code));
    return 1;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "gemmnet %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'gemmnet %s --help'.\n", cmd);
    return 2;
}

const char *cli_si(double v, char *buf, int n)
{
    const char *u[] = {"", "K", "M", "G", "T", "P"};
    int k = 0;
    while (v >= 1000 && k < 5) {
        v /= 1000;
        k++;
    }
    snprintf(buf, (size_t)n, k ? "%.2f%s" : "%.0f%s", v, u[k]);
    return buf;
}

int cli_load_net(gn_cfg *cfg, const char *path, int batch, gn_net **net, struct gn_ckpt **ck,
                 gn_err *err)
{
    int rc = gn_net_build(net, cfg, batch, 1, err);
    if (!rc) rc = gn_weights_load(*net, path, GN_CKPT_STRICT, ck, NULL, NULL, err);
    return rc;
}
