/* Without MPI: one process, rank 0 of 1; every collective leaves its data as it is. */
#include "gemmnet/dist.h"
#include "gemmnet/gemmnet.h"

#include <stdio.h>
#include <stdlib.h>

int gn_dist_built(void) { return 0; }

int gn_dist_init(int *argc, char ***argv, gn_err *err)
{
    (void)argc;
    (void)argv;
    /* N copies of a one-process trainer would all write the same output directory */
    const char *n = getenv("OMPI_COMM_WORLD_SIZE");
    if (n && atoi(n) > 1)
        return gn_err_set(err, GN_ENOTSUP, "started by mpirun with %s processes, but this "
                          "gemmnet was built without MPI: rebuild with -Dmpi=enabled "
                          "(needs libopenmpi-dev)", n);
    return GN_OK;
}

void gn_dist_finalize(void) {}
int gn_dist_rank(void) { return 0; }
int gn_dist_size(void) { return 1; }

void gn_dist_abort(const char *msg)
{
    fprintf(stderr, "gemmnet rank 0: %s\n", msg);
    exit(1);
}

int gn_dist_set_timeout(double seconds, gn_err *err)
{
    (void)seconds;
    (void)err;
    return GN_OK;
}

int gn_dist_bcast_f32(float *buf, size_t n, int root, const char *what, gn_err *err)
{
    (void)buf, (void)n, (void)root, (void)what, (void)err;
    return GN_OK;
}

int gn_dist_bcast_i64(long long *buf, size_t n, int root, const char *what, gn_err *err)
{
    (void)buf, (void)n, (void)root, (void)what, (void)err;
    return GN_OK;
}

int gn_dist_sum_f32(float *buf, size_t n, const char *what, gn_err *err)
{
    (void)buf, (void)n, (void)what, (void)err;
    return GN_OK;
}

int gn_dist_sum_f64(double *buf, size_t n, const char *what, gn_err *err)
{
    (void)buf, (void)n, (void)what, (void)err;
    return GN_OK;
}

int gn_dist_isum_f32(float *buf, size_t n, gn_err *err)
{
    (void)buf, (void)n, (void)err;
    return GN_OK;
}

void gn_dist_progress(void) {}

int gn_dist_wait_all(const char *what, gn_err *err)
{
    (void)what, (void)err;
    return GN_OK;
}
