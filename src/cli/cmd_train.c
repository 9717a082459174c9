/* gemmnet train / eval / plot (predict: cmd_predict.c). */
#include "cli/commands.h"
#include "cli/common.h"
#include "gemmnet/checkpoint.h"
#include "gemmnet/data.h"
#include "gemmnet/dist.h"
#include "gemmnet/interop.h"
#include "gemmnet/train.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile int g_stop = 0; /* the signal that asked the run to stop */

static void on_signal(int sig) { g_stop = sig; }

typedef struct log_state {
    int live;      /* a live status line is on the terminal */
    int tty;
} log_state;

static void log_line(void *user, int kind, const char *line)
{
    log_state *s = user;
    if (kind == GN_LOG_PROGRESS && s->tty) {
        fprintf(stderr, "\r\033[K%s", line);
        s->live = 1;
        return;
    }
    if (s->live) {
        fputs("\r\033[K", stderr);
        s->live = 0;
    }
    fprintf(kind == GN_LOG_WARN ? stderr : stdout, "%s%s\n", kind == GN_LOG_WARN ? "warning: " : "",
            line);
    fflush(stdout);
}

static const char *train_help =
    "usage: gemmnet train CONFIG [--set section.key=value ...] [--out DIR]\n"
    "                     [--resume auto|PATH | --overwrite]\n"
    "                     [--weights PATH [--skip-mismatch]] [--threads N] [--seed S]\n\n"
    "Trains the network CONFIG describes on the data its [data] section names.\n"
    "  --set s.k=v      override a config key; it replaces the file's value, and drops a key of\n"
    "                   the file that excludes it (net.max_batches drops epochs, and so on)\n"
    "  --out DIR        checkpoints, metrics.csv and curves.svg (default: runs/<config name>,\n"
    "                   or runs/<config name>-2, -3, ... when that holds another run)\n"
    "  --resume auto    continue from DIR/last.safetensors when it exists; PATH: from that file\n"
    "  --overwrite      replace the run DIR holds (without it, such a DIR is refused)\n"
    "  --weights PATH   start from these weights (fine-tuning): a checkpoint, or a darknet\n"
    "                   .weights file (then darknet's input convention; docs/data.md)\n"
    "  --skip-mismatch  with --weights: keep this network's own values where shapes differ\n"
    "  --threads N      compute threads (default: all cores)\n"
    "  --seed S         same as --set train.seed=S\n"
    "Ends with a line starting 'final:'. SIGINT/SIGTERM write a checkpoint, end the final:\n"
    "line with (stopped) and exit 130/143 (128 + the signal, as the shell does), so that\n"
    "'gemmnet train ... && gemmnet eval ...' does not go on with an unfinished model.\n"
    "One run at a time per DIR: a second run into it fails at once, naming the first's PID.\n"
    "Data-parallel: mpirun -np N gemmnet train CONFIG ... (docs/distributed.md).\n"
    "See docs/training.md for the config keys.\n";

static int train_main(int argc, char **argv);

/* Under mpirun every rank runs this; rank 0 alone prints. A rank that fails stops the whole
 * job (MPI_Abort), since the others would wait for it in the next collective. */
int cmd_train(int argc, char **argv)
{
    gn_err err = {0};
    if (gn_dist_init(&argc, &argv, &err)) {
        fprintf(stderr, "error: %s\n", err.msg);
        return 1;
    }
    if (gn_dist_rank() != 0 && !freopen("/dev/null", "w", stdout)) return 1;
    int rc = train_main(argc, argv);
    /* a stop by a signal (128 + signal) is no failure: every rank stopped together */
    if (rc && rc < 128 && gn_dist_size() > 1) {
        char msg[64];
        snprintf(msg, sizeof msg, "training failed (exit status %d), stopping every rank", rc);
        gn_dist_abort(msg);
    }
    gn_dist_finalize();
    return rc;
}

static int train_main(int argc, char **argv)
{
    cli_common c = {0};
    gn_train_args a = {0};
    char seedset[64], outbuf[4096];
    for (int i = 1; i < argc;) {
        int t = cli_take_common_or_help(&c, argc, argv, &i, train_help);
        if (t == CLI_HELP) return 0;
        if (t == CLI_ERROR) return 2;
        if (t == CLI_TAKEN) continue;
        const char *o = argv[i];
        int has = i + 1 < argc;
        if (!strcmp(o, "--out") && has) {
            a.out_dir = argv[i + 1];
            i += 2;
        } else if (!strcmp(o, "--resume") && has) {
            a.resume = argv[i + 1];
            i += 2;
        } else if (!strcmp(o, "--weights") && has) {
            a.weights = argv[i + 1];
            i += 2;
        } else if (!strcmp(o, "--overwrite")) {
            a.overwrite = 1;
            i++;
        } else if (!strcmp(o, "--skip-mismatch")) {
            a.skip_mismatch = 1;
            i++;
        } else if (!strcmp(o, "--seed") && has) {
            if (cli_parse_int("train", "--seed", argv[i + 1], 0, 2147483647) < 0) return 2;
            if (c.n_sets == CLI_MAX_SETS) return cli_usage_error("train", "too many --set");
            snprintf(seedset, sizeof seedset, "train.seed=%s", argv[i + 1]);
            c.set_argpos[c.n_sets] = i + 1;
            c.sets[c.n_sets++] = seedset;
            i += 2;
        } else if (o[0] == '-' || c.config) {
            return cli_usage_error("train", "unexpected '%s'", o);
        } else {
            c.config = argv[i++];
        }
    }
    if (!c.config) return cli_usage_error("train", "missing CONFIG");
    if (a.resume && a.weights) return cli_usage_error("train", "--resume and --weights exclude each other");
    if (a.resume && a.overwrite) return cli_usage_error("train", "--resume and --overwrite exclude each other");
    if (!a.out_dir) {
        const char *base = strrchr(c.config, '/');
        base = base ? base + 1 : c.config;
        snprintf(outbuf, sizeof outbuf, "runs/%.*s", (int)strcspn(base, "."), base);
        a.out_dir = outbuf;
        /* --resume auto continues this very directory: fail if it is in use, pick no other */
        a.out_default = !a.overwrite && !(a.resume && !strcmp(a.resume, "auto"));
    }
    gn_cfg *cfg = cli_load_config(&c);
    if (!cfg) return 1;
    char *dump = gn_cfg_dump(cfg);
    if (dump) {
        printf("# resolved config (%s)\n%s# end of config\n", c.config, dump);
        free(dump);
    }
    log_state ls = {0, isatty(2)};
    a.threads = c.threads;
    a.progress_interactive = ls.tty;
    a.log = log_line;
    a.user = &ls;
    a.stop = &g_stop;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    gn_err err = {0};
    gn_train_result r;
    int rc = gn_train(cfg, &a, &r, &err);
    if (ls.live) fputs("\r\033[K", stderr);
    gn_cfg_free(&cfg);
    if (rc && rc != GN_EINTR) return cli_fail(&err);
    printf("final: iters=%lld epochs=%.2f loss=%.4f", (long long)r.iters, r.epochs, r.train_loss);
    if (r.has_val) {
        printf(" val_loss=%.4f", r.val.loss);
        if (r.val.top1 >= 0) printf(" top1=%.2f%% top5=%.2f%%", 100 * r.val.top1, 100 * r.val.top5);
    }
    printf(" img_per_s=%.1f time=%.1fs%s\n", r.img_per_s, r.seconds,
           rc == GN_EINTR ? " (stopped)" : "");
    if (r.bad_files) printf("skipped %lld unreadable files (listed above)\n", (long long)r.bad_files);
    printf("checkpoint: %s\n", r.last_path);
    if (r.has_val && access(r.best_path, F_OK) == 0) printf("best:       %s\n", r.best_path);
    printf("metrics:    %s/metrics.csv\ncurves:     %s/curves.svg\n", r.out_dir, r.out_dir);
    /* the shell's convention for a process ended by a signal: an unfinished run fails */
    if (rc == GN_EINTR) return 128 + (g_stop ? g_stop : SIGTERM);
    return 0;
}

static const char *eval_help =
    "usage: gemmnet eval CONFIG --weights PATH [--set ...] [--threads N] [--batch N]\n"
    "                    [--confusion FILE.csv]\n\n"
    "Evaluates the weights on the config's validation split ([data] val=, or --set data.val=DIR):\n"
    "loss, top-1, top-5, per-class accuracy, and the confusion matrix as CSV (rows: true class,\n"
    "columns: predicted class). The config's [eval] tta=flip (or --set eval.tta=flip) also\n"
    "feeds each image mirrored and scores the mean of the two outputs.\n";

int cmd_eval(int argc, char **argv)
{
    cli_common c = {0};
    const char *weights = NULL, *confusion = NULL;
    int batch = 32;
    for (int i = 1; i < argc;) {
        int t = cli_take_common_or_help(&c, argc, argv, &i, eval_help);
        if (t == CLI_HELP) return 0;
        if (t == CLI_ERROR) return 2;
        if (t == CLI_TAKEN) continue;
        if (!strcmp(argv[i], "--weights") && i + 1 < argc) {
            weights = argv[i + 1];
            i += 2;
        } else if (!strcmp(argv[i], "--confusion") && i + 1 < argc) {
            confusion = argv[i + 1];
            i += 2;
        } else if (!strcmp(argv[i], "--batch") && i + 1 < argc) {
            if ((batch = cli_parse_int("eval", "--batch", argv[i + 1], 1, 1 << 16)) < 0) return 2;
            i += 2;
        } else if (argv[i][0] == '-' || c.config) {
            return cli_usage_error("eval", "unexpected '%s'", argv[i]);
        } else {
            c.config = argv[i++];
        }
    }
    if (!c.config || !weights) return cli_usage_error("eval", "needs CONFIG and --weights PATH");
    gn_set_threads(c.threads);
    gn_cfg *cfg = cli_load_config(&c);
    if (!cfg) return 1;
    gn_err err = {0};
    gn_net *net = NULL;
    gn_ckpt *ck = NULL;
    gn_loader *val = NULL;
    gn_data_opts d;
    gn_train_opts to;
    gn_eval_result r = {0};
    int rc = gn_train_opts_parse(&to, cfg, &err);
    if (!rc) rc = gn_data_opts_parse(&d, cfg, &err);
    if (!rc) rc = gn_weights_input_convention(&d, weights, &err);
    gn_train_accept_darknet_keys(cfg);
    if (!rc) rc = cli_load_net(cfg, weights, batch, &net, &ck, &err);
    if (!rc) rc = gn_cfg_check_all_unused(cfg, &err);
    if (!rc && !gn_loader_has_split(&d, GN_SPLIT_VAL))
        rc = gn_err_set(&err, GN_ECONFIG, "no validation data: set [data] val= or --set data.val=DIR");
    if (!rc) rc = gn_loader_create(&val, &d, GN_SPLIT_VAL, batch, 1, &err);
    if (!rc) rc = gn_evaluate(net, val, 1, to.eval_tta, &r, &err);
    const char *f;
    while (val && (f = gn_loader_pop_failure(val))) fprintf(stderr, "warning: skipped %s\n", f);
    if (!rc) {
        printf("%lld images  loss %.4f", (long long)r.images, r.loss);
        if (r.top1 >= 0) printf("  top1 %.2f%%  top5 %.2f%%", 100 * r.top1, 100 * r.top5);
        printf("\n");
        if (r.confusion) {
            printf("\n%-24s %8s %8s\n", "class", "images", "top1");
            for (int k = 0; k < r.classes; k++) {
                long long tot = 0;
                for (int j = 0; j < r.classes; j++) tot += r.confusion[(size_t)k * r.classes + j];
                printf("%-24s %8lld %7.2f%%\n", gn_loader_class_name(val, k), tot,
                       tot ? 100.0 * r.confusion[(size_t)k * r.classes + k] / tot : 0.0);
            }
        }
        if (confusion && r.confusion) {
            FILE *o = fopen(confusion, "w");
            if (!o) {
                rc = gn_err_set(&err, GN_EIO, "cannot write %s", confusion);
            } else {
                fprintf(o, "true\\predicted");
                for (int j = 0; j < r.classes; j++) fprintf(o, ",%s", gn_loader_class_name(val, j));
                fprintf(o, "\n");
                for (int k = 0; k < r.classes; k++) {
                    fprintf(o, "%s", gn_loader_class_name(val, k));
                    for (int j = 0; j < r.classes; j++)
                        fprintf(o, ",%lld", (long long)r.confusion[(size_t)k * r.classes + j]);
                    fprintf(o, "\n");
                }
                if (fclose(o)) rc = gn_err_set(&err, GN_EIO, "cannot write %s", confusion);
                else printf("confusion matrix: %s\n", confusion);
            }
        }
    }
    gn_eval_result_free(&r);
    gn_loader_free(&val);
    gn_ckpt_close(&ck);
    gn_net_free(&net);
    gn_cfg_free(&cfg);
    return rc ? cli_fail(&err) : 0;
}

static const char *plot_help =
    "usage: gemmnet plot DIR\n\n"
    "Writes DIR/curves.svg (loss and accuracy against iterations) from DIR/metrics.csv.\n";

int cmd_plot(int argc, char **argv)
{
    if (argc == 2 && cli_is_help(argv[1])) {
        fputs(plot_help, stdout);
        return 0;
    }
    if (argc != 2) return cli_usage_error("plot", "needs DIR");
    gn_err err = {0};
    if (gn_plot_metrics(argv[1], &err)) return cli_fail(&err);
    printf("%s/curves.svg\n", argv[1]);
    return 0;
}
