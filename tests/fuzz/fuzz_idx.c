/* libFuzzer target: the IDX parser (src/data/idx.c) on arbitrary bytes; a parsed file's values
 * are all read, so a header that promised more than is there shows up under ASan. */
#include "data/data_internal.h"
#include "fuzz_util.h"

volatile unsigned fuzz_idx_sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gn_idx idx;
    gn_err err = {0};
    if (gn_idx_parse(data, size, "fuzz.idx", &idx, &err) == GN_OK) {
        unsigned sum = 0;
        for (size_t i = 0; i < idx.count; i++) sum += idx.data[i];
        fuzz_idx_sink = sum; /* keeps the reads */
    }
    return 0;
}
