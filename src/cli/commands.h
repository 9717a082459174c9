/* The gemmnet subcommands. Each takes the arguments after its name (argv[0] is the command
 * name) and returns the process exit code: 0 success, 1 failure, 2 usage error. Only the CLI
 * prints to the user. */
#ifndef GN_CLI_COMMANDS_H
#define GN_CLI_COMMANDS_H

int cmd_summary(int argc, char **argv);
int cmd_gradcheck(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_plot(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_check_data(int argc, char **argv);
int cmd_bench_data(int argc, char **argv);
int cmd_visualize(int argc, char **argv);
int cmd_dream(int argc, char **argv);
int cmd_saliency(int argc, char **argv);
int cmd_ckpt_info(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_import_idx(int argc, char **argv);

#endif
