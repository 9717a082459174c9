/* gemmnet: a training engine for image classification on CPUs.
 *
 * Every library call returns a status (GN_OK or a GN_E* code) and leaves a human-readable message
 * in the gn_err it was handed. Only the command-line front end prints and chooses exit codes. */
#ifndef GEMMNET_H
#define GEMMNET_H

#include <stddef.h>
#include <stdint.h>

#ifndef GN_VERSION
#define GN_VERSION "0.1.0"
#endif

typedef enum gn_status {
    GN_OK = 0,
    GN_ENOMEM,   /* allocation failed or the plan exceeds the memory limit */
    GN_EIO,      /* a file could not be read or written */
    GN_EFORMAT,  /* a file is not what it claims to be (JPEG, checkpoint, CSV) */
    GN_ECONFIG,  /* a configuration error: names file, line and key */
    GN_ESHAPE,   /* shapes that do not fit together */
    GN_EINVAL,   /* a bad argument */
    GN_ENOTSUP,  /* valid input that gemmnet does not implement */
    GN_ENAN,     /* the loss became NaN or Inf */
    GN_EINTR,    /* stopped by a signal */
} gn_status;

typedef struct gn_err {
    int code;
    char msg[1024];
} gn_err;

/* Records code and message in err (which may be NULL) and returns code. */
int gn_err_set(gn_err *err, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* Prefixes the message already in err with more context ("while loading X: ..."). */
int gn_err_wrap(gn_err *err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
const char *gn_status_name(int code);

/* Threads used by every parallel part (OpenMP loops and OpenBLAS). n <= 0: all cores. */
void gn_set_threads(int n);
int gn_get_threads(void);
/* "OpenBLAS 0.3.21 (openmp)" and the like, for fingerprints. */
const char *gn_blas_info(void);
/* A note when the environment's OPENBLAS_CORETYPE holds OpenBLAS to AVX2 (or older) kernels on
 * a CPU that runs AVX-512, else NULL. gemmnet never overrides the variable: it only says so. */
const char *gn_blas_core_note(void);

#include "gemmnet/cfg.h"
#include "gemmnet/net.h"

#endif
