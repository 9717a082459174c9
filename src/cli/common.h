/* What the subcommands share: option parsing for the common flags, loading a config with its
 * --set overrides, and reporting errors. */
#ifndef GN_CLI_COMMON_H
#define GN_CLI_COMMON_H

#include "gemmnet/gemmnet.h"

#define CLI_MAX_SETS 256

typedef struct cli_common {
    const char *config;        /* the positional CONFIG */
    const char *sets[CLI_MAX_SETS];
    int set_argpos[CLI_MAX_SETS];
    int n_sets;
    int threads;               /* --threads N, 0 = all cores */
} cli_common;

/* Takes --set K=V / --set=K=V and --threads N from argv[i]; returns how many arguments it
 * consumed (0: not a common option, -1: error already printed). */
int cli_take_common(cli_common *c, int argc, char **argv, int i);
/* The start of every subcommand's argument loop: -h/--help (prints help), then the common
 * options. CLI_TAKEN: argv[*i] was consumed and *i advanced; CLI_OTHER: argv[*i] is the
 * command's own; CLI_HELP: help was printed (exit 0); CLI_ERROR: an error was printed (exit 2). */
enum { CLI_OTHER, CLI_TAKEN, CLI_HELP, CLI_ERROR };
int cli_take_common_or_help(cli_common *c, int argc, char **argv, int *i, const char *help);
/* Loads c->config and applies the overrides in order. Prints the error and returns NULL. */
gn_cfg *cli_load_config(const cli_common *c);
struct gn_ckpt;
/* Builds the net for cfg at batch and loads weights from path (strict): a checkpoint, whose *ck
 * stays open for its metadata (class names), or a darknet .weights file (*ck = NULL). */
int cli_load_net(gn_cfg *cfg, const char *path, int batch, gn_net **net, struct gn_ckpt **ck,
                 gn_err *err);
/* Prints "gemmnet: <message>" to stderr; returns 1. */
int cli_fail(const gn_err *err);
/* Prints "gemmnet <cmd>: <message>" and the usage hint; returns 2. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Whether argv[i] is -h/--help. */
int cli_is_help(const char *arg);
/* Parses a positive integer argument; prints and returns -1 on error. */
int cli_parse_int(const char *cmd, const char *flag, const char *v, int lo, int hi);
/* Human-readable numbers: 1.2M, 3.4G. */
const char *cli_si(double v, char *buf, int n);

#endif
