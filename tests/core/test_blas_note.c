/* gn_blas_core_note: silent without OPENBLAS_CORETYPE; with it, a note exactly when OpenBLAS
 * runs an AVX2-or-older core on a CPU with AVX-512 (checked against the CPU and the core this
 * process got), naming the variable's value. */
#include "check.h"
#include "gemmnet/gemmnet.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
    const char *env = getenv("OPENBLAS_CORETYPE");
    char *saved = env ? strdup(env) : NULL;
    unsetenv("OPENBLAS_CORETYPE");
    CHECK_MSG(gn_blas_core_note() == NULL, "a note without OPENBLAS_CORETYPE");
    setenv("OPENBLAS_CORETYPE", "Whatever", 1);
    const char *core = openblas_get_corename(), *note = gn_blas_core_note();
    int want = 0;
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    want = core && (!strcmp(core, "Haswell") || !strcmp(core, "Zen")) &&
           __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
#endif
    CHECK_MSG(!note == !want, "core %s: note '%s', expected %s", core ? core : "?",
              note ? note : "(none)", want ? "one" : "none");
    if (note) CHECK_MSG(strstr(note, "OPENBLAS_CORETYPE=Whatever") != NULL, "note: %s", note);
    printf("OpenBLAS core %s: %s\n", core ? core : "?", note ? note : "no note");
    if (saved) setenv("OPENBLAS_CORETYPE", saved, 1);
    free(saved);
    return check_exit();
}
