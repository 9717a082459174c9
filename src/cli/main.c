#include "gemmnet/gemmnet.h"
#include "cli/commands.h"
#include <stdio.h>
#include <string.h>
/* Temporary dispatch for the data commands (branch data); replaced by the real CLI on merge. */
int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "synth")) return cmd_synth(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "check-data")) return cmd_check_data(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "bench-data")) return cmd_bench_data(argc - 1, argv + 1);
    printf("gemmnet %s\n", GN_VERSION);
    return 0;
}
