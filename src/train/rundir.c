/* A training run's output directory: the lock, the refusal to replace another run, and the
 * choice of a fresh default name (rundir.h). */
#include "train/rundir.h"
#include "gemmnet/checkpoint.h"
#include "gemmnet/dist.h"
#include "gemmnet/train.h"

#include <dirent.h>
#include <libgen.h>
#include <limits.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOCK_NAME ".lock"
#define MAX_SUFFIX 1000
#define LOCK_BUSY (-1) /* try_lock: not a gn_status */

static int mkdir_p(const char *dir, gn_err *err)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s", dir) >= (int)sizeof tmp)
        return gn_err_set(err, GN_EINVAL, "output directory name too long");
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0777) && errno != EEXIST)
            return gn_err_set(err, GN_EIO, "cannot create %s: %s", tmp, strerror(errno));
        *p = '/';
    }
    if (mkdir(tmp, 0777) && errno != EEXIST)
        return gn_err_set(err, GN_EIO, "cannot create %s: %s", tmp, strerror(errno));
    return GN_OK;
}

/* last.safetensors, best.safetensors, ckpt-<iteration>.safetensors (not their temporary files) */
static int is_checkpoint_name(const char *name)
{
    size_t len = strlen(name);
    if (!strcmp(name, "last.safetensors") || !strcmp(name, "best.safetensors")) return 1;
    return !strncmp(name, "ckpt-", 5) && len > 17 && !strcmp(name + len - 12, ".safetensors");
}

int gn_rundir_has_run(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    int found = 0;
    struct dirent *e;
    while (!found && (e = readdir(d))) found = is_checkpoint_name(e->d_name);
    closedir(d);
    return found;
}

void gn_rundir_name(char *out, size_t n, const char *dir, int suffix)
{
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/') len--; /* "runs/x/" -> "runs/x-2", not "runs/x/-2" */
    if (suffix) snprintf(out, n, "%.*s-%d", (int)len, dir, suffix);
    else snprintf(out, n, "%s", dir);
}

void gn_rundir_release(gn_rundir *rd)
{
    if (rd->fd >= 0) close(rd->fd); /* closing the last descriptor drops the flock */
    rd->fd = -1;
}

/* "at iteration N of M" from the run's newest checkpoint (last, else best, else the highest
 * numbered one), or why it could not be read. */
static void describe_run(const char *dir, char *buf, size_t n)
{
    char path[4096 + 300] = "", best_num[256] = "";
    snprintf(path, sizeof path, "%s/last.safetensors", dir);
    if (access(path, F_OK)) snprintf(path, sizeof path, "%s/best.safetensors", dir);
    if (access(path, F_OK)) {
        DIR *d = opendir(dir);
        struct dirent *e;
        while (d && (e = readdir(d)))
            if (is_checkpoint_name(e->d_name) && strlen(e->d_name) < sizeof best_num &&
                strcmp(e->d_name, best_num) > 0)
                snprintf(best_num, sizeof best_num, "%s", e->d_name);
        if (d) closedir(d);
        snprintf(path, sizeof path, "%s/%s", dir, best_num);
    }
    gn_ckpt *c = NULL;
    gn_err e = {0};
    if (gn_ckpt_open(&c, path, &e)) {
        snprintf(buf, n, "a run (%.600s: %.300s)", path, e.msg);
        return;
    }
    const char *it = gn_ckpt_meta(c, "iteration"), *max = gn_ckpt_meta(c, "max_batches");
    if (it && max) snprintf(buf, n, "a run at iteration %.30s of %.30s", it, max);
    else if (it) snprintf(buf, n, "a run at iteration %.30s", it);
    else snprintf(buf, n, "a checkpoint (%.600s)", path);
    gn_ckpt_close(&c);
}

/* Deletes what the replaced run left: its checkpoints, metrics and curves. */
static int remove_run(const char *dir, gn_err *err)
{
    DIR *d = opendir(dir);
    if (!d) return gn_err_set(err, GN_EIO, "cannot read %s: %s", dir, strerror(errno));
    int rc = GN_OK;
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        if (!is_checkpoint_name(e->d_name) && strcmp(e->d_name, "metrics.csv") &&
            strcmp(e->d_name, "curves.svg"))
            continue;
        char p[4096 + 300];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (unlink(p) && errno != ENOENT)
            rc = gn_err_set(err, GN_EIO, "--overwrite: cannot remove %s: %s", p, strerror(errno));
    }
    closedir(d);
    return rc;
}

int gn_rundir_replace(gn_rundir *rd, gn_err *err)
{
    if (!rd->replace || rd->fd < 0) return GN_OK;
    rd->replace = 0;
    return remove_run(rd->dir, err);
}

/* 0: locked (rd->fd set); LOCK_BUSY: another process holds it (its PID text in pid); else
 * GN_EIO. */
static int try_lock(gn_rundir *rd, char *pid, size_t pid_n, gn_err *err)
{
    char path[4096 + 16];
    snprintf(path, sizeof path, "%s/" LOCK_NAME, rd->dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) return gn_err_set(err, GN_EIO, "cannot open %s: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB)) {
        int e = errno;
        ssize_t got = e == EWOULDBLOCK ? pread(fd, pid, pid_n - 1, 0) : -1;
        close(fd);
        if (e != EWOULDBLOCK)
            return gn_err_set(err, GN_EIO, "cannot lock %s: %s", path, strerror(e));
        pid[got > 0 ? got : 0] = 0;
        pid[strcspn(pid, "\n")] = 0;
        if (!*pid) snprintf(pid, pid_n, "unknown");
        return LOCK_BUSY;
    }
    rd->fd = fd;
    return GN_OK;
}

/* Once the directory is ours: the PID into the lock file. It is written in place, not by
 * rename: the lock belongs to this inode, and a renamed file would be a second, unlocked one.
 * It is only a hint for the message above. */
static int write_pid(gn_rundir *rd, gn_err *err)
{
    char text[32];
    int len = snprintf(text, sizeof text, "%ld\n", (long)getpid());
    if (ftruncate(rd->fd, 0) || pwrite(rd->fd, text, (size_t)len, 0) != len) {
        int e = errno;
        gn_rundir_release(rd);
        return gn_err_set(err, GN_EIO, "cannot write %s/" LOCK_NAME ": %s", rd->dir, strerror(e));
    }
    return GN_OK;
}

int gn_rundir_claim(gn_rundir *rd, const char *dir, unsigned flags, int *suffix, gn_err *err)
{
    rd->fd = -1;
    rd->replace = 0;
    *suffix = 0;
    char pid[32];
    for (int k = 0; k < MAX_SUFFIX; k++) {
        int sfx = k ? k + 1 : 0;
        gn_rundir_name(rd->dir, sizeof rd->dir, dir, sfx);
        if (strlen(rd->dir) + 32 >= sizeof rd->dir)
            return gn_err_set(err, GN_EINVAL, "output directory name too long");
        int rc = mkdir_p(rd->dir, err);
        if (!rc) rc = try_lock(rd, pid, sizeof pid, err);
        if (rc == LOCK_BUSY && (flags & GN_RUNDIR_PICK_FRESH)) continue;
        if (rc == LOCK_BUSY)
            return gn_err_set(err, GN_EINVAL, "%s is in use by another run (PID %s): wait for "
                              "it to finish, or train into another directory with --out NEW",
                              rd->dir, pid);
        if (rc) return rc;
        if (gn_rundir_has_run(rd->dir)) {
            if (flags & GN_RUNDIR_RESUME) {
                /* continues the run there */
            } else if (flags & GN_RUNDIR_OVERWRITE) {
                rd->replace = 1;
            } else if (flags & GN_RUNDIR_PICK_FRESH) {
                gn_rundir_release(rd);
                continue;
            } else {
                char what[1024];
                describe_run(rd->dir, what, sizeof what);
                gn_rundir_release(rd);
                return gn_err_set(err, GN_EINVAL, "%s holds %s: --resume auto continues it; "
                                  "--out NEW for a new run; --overwrite to replace it",
                                  rd->dir, what);
            }
        }
        *suffix = sfx;
        return write_pid(rd, err);
    }
    return gn_err_set(err, GN_EINVAL, "%s and %s-2 .. %s-%d all hold runs: give --out DIR", dir,
                      dir, dir, MAX_SUFFIX);
}

/* Whether the checkpoint at path lies in dir: --resume PATH continues the run there, while a
 * PATH from elsewhere starts another run's continuation in dir. */
static int in_dir(const char *path, const char *dir)
{
    char copy[PATH_MAX], a[PATH_MAX], b[PATH_MAX];
    if (snprintf(copy, sizeof copy, "%s", path) >= (int)sizeof copy) return 0;
    if (!realpath(dirname(copy), a) || !realpath(dir, b)) return 0;
    return !strcmp(a, b);
}

int gn_rundir_claim_run(gn_rundir *rd, const gn_train_args *args, int rank, gn_err *err)
{
    int resumes_here = args->resume && (!strcmp(args->resume, "auto") ||
                                        in_dir(args->resume, args->out_dir));
    unsigned flags = (resumes_here ? GN_RUNDIR_RESUME : 0u) |
                     (args->overwrite ? GN_RUNDIR_OVERWRITE : 0u) |
                     (args->out_default ? GN_RUNDIR_PICK_FRESH : 0u);
    long long v[2] = {GN_OK, 0}; /* rank 0's status, the chosen suffix */
    gn_err e0 = {0};
    rd->fd = -1;
    rd->replace = 0;
    if (rank == 0) {
        int sfx = 0;
        v[0] = gn_rundir_claim(rd, args->out_dir, flags, &sfx, &e0);
        v[1] = sfx;
    }
    int rc = gn_dist_bcast_i64(v, 2, 0, "the output directory (MPI_Bcast)", err);
    if (!rc && v[0]) {
        rc = (int)v[0];
        if (rank == 0) *err = e0;
        else gn_err_set(err, rc, "rank 0 could not use the output directory %s", args->out_dir);
    }
    if (rc) {
        gn_rundir_release(rd);
        return rc;
    }
    if (rank) gn_rundir_name(rd->dir, sizeof rd->dir, args->out_dir, (int)v[1]);
    return GN_OK;
}
