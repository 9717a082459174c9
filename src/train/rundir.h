/* A training run's output directory: one run at a time, and no run replaces another's
 * checkpoints by accident.
 *
 * The lock is flock(2) on DIR/.lock, which holds the owner's PID as text (a hint for the
 * message; the lock itself is the kernel's, released when the process dies, so kill -9 leaves
 * no stale lock). A run into a directory that holds another run's checkpoints (last, best or
 * numbered) is refused unless it resumes that run or replaces it. */
#ifndef GN_TRAIN_RUNDIR_H
#define GN_TRAIN_RUNDIR_H

#include "gemmnet/gemmnet.h"

enum {
    GN_RUNDIR_RESUME = 1,     /* the run continues from a checkpoint: an existing run is fine */
    GN_RUNDIR_OVERWRITE = 2,  /* replace the run there (gn_rundir_replace deletes it) */
    GN_RUNDIR_PICK_FRESH = 4, /* dir is a default name: pass over a locked or used dir for the
                               * first free dir-2, dir-3, ... */
};

typedef struct gn_rundir {
    int fd;          /* the locked DIR/.lock, -1 when not held */
    int replace;     /* a run is there, to be deleted by gn_rundir_replace (OVERWRITE) */
    char dir[4096];  /* the directory in use */
} gn_rundir;

/* Creates dir (and its parents), takes its lock and applies the refusal rule of flags. On
 * success rd holds the lock and the chosen directory, and *suffix says which (0: dir itself,
 * n >= 2: dir-n). GN_EIO when the directory cannot be made; GN_EINVAL "DIR is in use by
 * another run (PID N)" or "DIR holds a run at iteration N of M: ..." otherwise. */
int gn_rundir_claim(gn_rundir *rd, const char *dir, unsigned flags, int *suffix, gn_err *err);
struct gn_train_args;
/* gn_rundir_claim for a training run: flags from args (overwrite, out_default; resume when it is
 * "auto" or a checkpoint in out_dir: --resume PATH from elsewhere is a new run there) and, under
 * MPI, rank 0 alone claims args->out_dir; the other ranks learn the outcome (the status and the
 * chosen name) by broadcast, so every rank fails or goes on together. */
int gn_rundir_claim_run(gn_rundir *rd, const struct gn_train_args *args, int rank, gn_err *err);
/* With GN_RUNDIR_OVERWRITE: deletes the replaced run's checkpoints, metrics.csv and
 * curves.svg (once the new run is ready to start: a config error does not cost the old run). A
 * no-op otherwise, and on ranks other than 0. */
int gn_rundir_replace(gn_rundir *rd, gn_err *err);
/* The name for a suffix from gn_rundir_claim: dir, or dir-n. */
void gn_rundir_name(char *out, size_t n, const char *dir, int suffix);
/* Releases the lock (the file stays: removing it would race with a run taking it). */
void gn_rundir_release(gn_rundir *rd);
/* Whether dir holds a checkpoint of a run: last, best or ckpt-*.safetensors. */
int gn_rundir_has_run(const char *dir);

#endif
