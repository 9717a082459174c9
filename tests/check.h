/* A minimal test harness: CHECK records a failure with file and line and lets the test go on;
 * check_exit() is main's return value (non-zero if anything failed). */
#ifndef GN_TEST_CHECK_H
#define GN_TEST_CHECK_H

#include <math.h>
#include <stdio.h>

static int check_failures_ = 0;
static int check_count_ = 0;

#define CHECK(cond)                                                                         \
    do {                                                                                    \
        check_count_++;                                                                     \
        if (!(cond)) {                                                                      \
            check_failures_++;                                                              \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                 \
        }                                                                                   \
    } while (0)

#define CHECK_MSG(cond, ...)                                                                \
    do {                                                                                    \
        check_count_++;                                                                     \
        if (!(cond)) {                                                                      \
            check_failures_++;                                                              \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                 \
            fprintf(stderr, __VA_ARGS__);                                                   \
            fputc('\n', stderr);                                                            \
        }                                                                                   \
    } while (0)

/* |a-b| <= tol * max(1, |b|) */
#define CHECK_NEAR(a, b, tol)                                                               \
    do {                                                                                    \
        double a_ = (a), b_ = (b);                                                          \
        CHECK_MSG(fabs(a_ - b_) <= (tol) * fmax(1.0, fabs(b_)), "%s = %.8g, expected %.8g", \
                  #a, a_, b_);                                                              \
    } while (0)

static inline int check_exit(void)
{
    printf("%d checks, %d failed\n", check_count_, check_failures_);
    return check_failures_ ? 1 : 0;
}

#endif
