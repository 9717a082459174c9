/* Times the gradient allreduce of gemmnet/dist.h (docs/distributed.md):
 *   mpirun -np 2 build/tests/dist/bench_allreduce [FLOATS [REPS [BUCKET_MB]]]
 * FLOATS defaults to 11,689,512 (ResNet-18's parameters). Prints, on rank 0, the mean seconds
 * of one blocking MPI_Allreduce of the whole buffer and of the bucketed MPI_Iallreduce path
 * the trainer uses (buckets of BUCKET_MB, default 8, started in reverse order, then waited). */
#include "gemmnet/dist.h"
#include "gemmnet/gemmnet.h"
#include "core/util.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    gn_err err = {0};
    if (gn_dist_init(&argc, &argv, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    size_t n = argc > 1 ? (size_t)atoll(argv[1]) : 11689512;
    int reps = argc > 2 ? atoi(argv[2]) : 20;
    double mb = argc > 3 ? atof(argv[3]) : 8;
    size_t bucket = (size_t)(mb * 1e6 / 4);
    float *g = gn_alloc(n, sizeof(float));
    if (!g || reps < 1 || bucket < 1) return fprintf(stderr, "bad arguments or no memory\n"), 1;
    for (size_t i = 0; i < n; i++) g[i] = (float)(i % 7) * 1e-3f;
    int rc = gn_dist_sum_f32(g, n, "warm-up", &err);
    double t0 = gn_now();
    for (int r = 0; r < reps && !rc; r++) rc = gn_dist_sum_f32(g, n, "MPI_Allreduce", &err);
    double t_block = (gn_now() - t0) / reps;
    t0 = gn_now();
    for (int r = 0; r < reps && !rc; r++) {
        for (size_t hi = n; hi > 0 && !rc;) {
            size_t lo = hi > bucket ? hi - bucket : 0;
            rc = gn_dist_isum_f32(g + lo, hi - lo, &err);
            hi = lo;
        }
        if (!rc) rc = gn_dist_wait_all("MPI_Iallreduce", &err);
    }
    double t_buck = (gn_now() - t0) / reps;
    if (rc) gn_dist_abort(err.msg);
    if (gn_dist_rank() == 0)
    {
        /* bus bandwidth: what each rank sends in a ring allreduce, 2(N-1)/N x size, per second */
        double bytes = 2.0 * (gn_dist_size() - 1) / gn_dist_size() * 4.0 * (double)n;
        printf("ranks=%d floats=%zu (%.1f MB) allreduce=%.4fs (bus %.2f GB/s) bucketed(%g MB)="
               "%.4fs (bus %.2f GB/s)\n", gn_dist_size(), n, 4e-6 * (double)n, t_block,
               bytes / t_block / 1e9, mb, t_buck, bytes / t_buck / 1e9);
    }
    gn_free(g);
    gn_dist_finalize();
    return 0;
}
