/* Data-parallel communication: the few collectives the trainer needs, behind one interface.
 * Two implementations, chosen by meson (-Dmpi=auto|enabled|disabled): src/dist/dist_mpi.c
 * (Open MPI) and src/dist/dist_none.c (one process: rank 0 of 1, every collective a no-op).
 * The trainer calls only these functions and never includes mpi.h.
 *
 * Errors are values (gn_err), except in two places where a stuck or failed job cannot be
 * recovered by returning: gn_dist_abort (the caller asks for it) and the watchdog thread, which
 * write one line to stderr and call MPI_Abort so every rank stops. */
#ifndef GEMMNET_DIST_H
#define GEMMNET_DIST_H

#include <stddef.h>

struct gn_err;

/* 1 when gemmnet was built with MPI. */
int gn_dist_built(void);
/* Starts MPI when the process was launched by mpirun (Open MPI's OMPI_COMM_WORLD_SIZE or PMIx's
 * PMIX_RANK in the environment); otherwise, and without MPI, the process is rank 0 of 1 and
 * nothing else happens. Call once, before any other gn_dist_* function. Built without MPI, a
 * process started by mpirun with more than one process gets GN_ENOTSUP. */
int gn_dist_init(int *argc, char ***argv, struct gn_err *err);
/* Ends MPI (no-op when not started). */
void gn_dist_finalize(void);
int gn_dist_rank(void);
int gn_dist_size(void);
/* Writes "gemmnet rank R: msg" to stderr and stops every rank (MPI_Abort); exits the process
 * with code 1 when MPI is not running. Does not return. */
void gn_dist_abort(const char *msg);

/* Seconds a collective may wait before the watchdog aborts the job (0: no watchdog). The
 * watchdog thread starts on the first call with a positive value. */
int gn_dist_set_timeout(double seconds, struct gn_err *err);

/* Blocking collectives over all ranks; `what` names the operation for messages. */
int gn_dist_bcast_f32(float *buf, size_t n, int root, const char *what, struct gn_err *err);
int gn_dist_bcast_i64(long long *buf, size_t n, int root, const char *what, struct gn_err *err);
/* In place: buf = sum over ranks. */
int gn_dist_sum_f32(float *buf, size_t n, const char *what, struct gn_err *err);
int gn_dist_sum_f64(double *buf, size_t n, const char *what, struct gn_err *err);

/* Non-blocking sums in place (MPI_Iallreduce), for gradients while backward still runs: start
 * any number (buf stays untouched by the caller until gn_dist_wait_all), call gn_dist_progress
 * now and then so the library moves the data, and gn_dist_wait_all to finish them all. */
int gn_dist_isum_f32(float *buf, size_t n, struct gn_err *err);
void gn_dist_progress(void);
int gn_dist_wait_all(const char *what, struct gn_err *err);

#endif
