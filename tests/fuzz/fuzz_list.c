/* libFuzzer target: list files ("path label" lines), with and without a classes file.
 * Input: list text, then optionally a NUL byte and a classes file (one name a line). */
#include "data/data_internal.h"
#include "fuzz_util.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t n1 = nul ? (size_t)(nul - data) : size;
    char list[300], classes[300];
    snprintf(list, sizeof list, "%s", fuzz_file(data, n1, ".txt"));
    classes[0] = 0;
    if (nul) snprintf(classes, sizeof classes, "%s", fuzz_file(nul + 1, size - n1 - 1, ".names"));
    gn_dataset d;
    gn_err err = {0};
    if (gn_dataset_open(&d, list, classes, NULL, 0, 0, 0, &err) == GN_OK) gn_dataset_free(&d);
    remove(list);
    if (classes[0]) remove(classes);
    return 0;
}
