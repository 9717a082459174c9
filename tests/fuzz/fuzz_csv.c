/* libFuzzer target: CSV tables (numeric rows, a header line, a class column or regression
 * targets). The first byte picks the geometry: inputs 1..4, targets 0..3. */
#include "data/data_internal.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int n_in = 1 + (data[0] & 3), n_tgt = (data[0] >> 2) & 3;
    const char *path = fuzz_file(data + 1, size - 1, ".csv");
    gn_dataset d;
    gn_err err = {0};
    if (gn_dataset_open(&d, path, "", NULL, 0, n_in, n_tgt, &err) == GN_OK) gn_dataset_free(&d);
    remove(path);
    return 0;
}
