/* Internal helpers shared by every part: the assert macro, aligned allocation, small math. */
#ifndef GN_UTIL_H
#define GN_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Programmer mistakes (never bad input): print file and line, then abort. */
#define GN_ASSERT(cond)                                                                     \
    do {                                                                                    \
        if (!(cond)) gn_assert_fail(#cond, __FILE__, __LINE__);                             \
    } while (0)

_Noreturn void gn_assert_fail(const char *what, const char *file, int line);

/* 64-byte aligned, zero-filled; NULL on failure or overflow. Free with gn_free. */
void *gn_alloc(size_t count, size_t size);
void gn_free(void *p);
/* p[0..n) = 0, a large buffer by all OpenMP threads (a slice each). */
void gn_zero_floats(float *p, size_t n);

char *gn_strdup(const char *s);
/* Seconds from a monotonic clock. */
double gn_now(void);

#define GN_MIN(a, b) ((a) < (b) ? (a) : (b))
#define GN_MAX(a, b) ((a) > (b) ? (a) : (b))

#endif
