/* Shared by the libFuzzer targets: the input bytes as a file (the parsers under test read
 * files), at a per-process path, so parallel fuzzing jobs do not collide. */
#ifndef GN_FUZZ_UTIL_H
#define GN_FUZZ_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Writes data to /tmp/gn-fuzz-<pid><suffix>, returns the path (static buffer); aborts on an I/O
 * error, which is the harness failing, not the code under test. */
static inline const char *fuzz_file(const uint8_t *data, size_t size, const char *suffix)
{
    static char path[256];
    snprintf(path, sizeof path, "/tmp/gn-fuzz-%ld%s", (long)getpid(), suffix);
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f)) {
        perror(path);
        abort();
    }
    return path;
}

#endif
