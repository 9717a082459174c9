/* gemmnet's command-line front end: dispatches to the subcommands. */
#include "cli/commands.h"
#include "gemmnet/gemmnet.h"

#include <stdio.h>
#include <string.h>

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"train", cmd_train, "train a network on the data its config names"},
    {"eval", cmd_eval, "loss, top-1/top-5, per-class accuracy and confusion matrix"},
    {"predict", cmd_predict, "class probabilities for JPEGs, folders and lists (--csv)"},
    {"plot", cmd_plot, "draw DIR/curves.svg from DIR/metrics.csv"},
    {"summary", cmd_summary, "layers, output shapes, parameters and FLOPs of a config"},
    {"gradcheck", cmd_gradcheck, "check every layer's gradients with finite differences"},
    {"bench", cmd_bench, "training and inference throughput against batch size and threads"},
    {"synth", cmd_synth, "generate the built-in data set (JPEGs in the ImageNet layout)"},
    {"check-data", cmd_check_data, "scan a data set: class counts, sizes, unreadable files"},
    {"bench-data", cmd_bench_data, "measure the loader: images/s decoded and augmented"},
    {"import-idx", cmd_import_idx, "IDX images and labels (Fashion-MNIST) to JPEG class folders"},
    {"visualize", cmd_visualize, "an image that excites a unit or class (gradient ascent)"},
    {"dream", cmd_dream, "deep dream: amplify what a layer sees in a photo"},
    {"saliency", cmd_saliency, "which pixels move a class score (|d score / d pixel|)"},
    {"ckpt-info", cmd_ckpt_info, "validate a checkpoint and print its tensors and metadata"},
    {"export", cmd_export, "write a trained network as ONNX or darknet .weights"},
};

static void usage(FILE *f)
{
    fprintf(f,
            "gemmnet %s: train image classifiers on CPUs\n\n"
            "usage: gemmnet COMMAND [options]   (gemmnet COMMAND --help for its options)\n\n"
            "commands:\n",
            GN_VERSION);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nA CONFIG is a darknet-style .cfg file; any key can be overridden with\n"
               "--set section.key=value (e.g. --set net.width=112, --set 3.filters=64).\n"
               "Documentation: README.md and docs/ in the source tree.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ||
        !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("gemmnet %s\n", GN_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "gemmnet: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
