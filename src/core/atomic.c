/* Writing a file atomically: "<path>.tmp.<pid>" (the pattern the trainer and crash test look
 * for), fsync, rename over path, fsync of the directory. Either path holds the complete new
 * file or it is untouched and no temporary file is left. */
#include "core/util.h"
#include "gemmnet/gemmnet.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void atomic_release(gn_atomic_file *a)
{
    free(a->tmp);
    free(a->dir);
    *a = (gn_atomic_file){0};
}

int gn_atomic_open(gn_atomic_file *a, const char *path, gn_err *err)
{
    GN_ASSERT(a && path);
    *a = (gn_atomic_file){.path = path};
    size_t plen = strlen(path);
    a->tmp = malloc(plen + 32);
    a->dir = malloc(plen + 2);
    if (!a->tmp || !a->dir) {
        atomic_release(a);
        return gn_err_set(err, GN_ENOMEM, "out of memory");
    }
    snprintf(a->tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(a->dir, plen + 2, ".");
    else if (slash == path) snprintf(a->dir, plen + 2, "/");
    else snprintf(a->dir, plen + 2, "%.*s", (int)(slash - path), path);

    /* O_EXCL: never write through a link or into someone else's file; a stale temp file of
     * ours (same pid, an earlier crash) is removed first. */
    int fd = open(a->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 && errno == EEXIST && unlink(a->tmp) == 0)
        fd = open(a->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        int rc = gn_err_set(err, GN_EIO, "cannot create %s: %s", a->tmp, strerror(errno));
        atomic_release(a); /* nothing of ours to remove */
        return rc;
    }
    a->f = fdopen(fd, "wb");
    if (!a->f) {
        int rc = gn_err_set(err, GN_EIO, "cannot open %s: %s", a->tmp, strerror(errno));
        close(fd);
        unlink(a->tmp);
        atomic_release(a);
        return rc;
    }
    errno = 0; /* so a failed write that leaves no errno reads as EIO in gn_atomic_commit */
    return GN_OK;
}

int gn_atomic_write(gn_atomic_file *a, const void *p, size_t n)
{
    /* nothing after the first failure, so its errno is the one gn_atomic_commit reports */
    if (!a->failed && n && fwrite(p, 1, n, a->f) != n) a->failed = 1;
    return !a->failed;
}

void gn_atomic_abort(gn_atomic_file *a)
{
    if (!a || !a->tmp) return;
    if (a->f) fclose(a->f);
    unlink(a->tmp);
    atomic_release(a);
}

int gn_atomic_commit(gn_atomic_file *a, gn_err *err)
{
    GN_ASSERT(a && a->f && a->tmp);
    int rc = GN_OK;
    /* a failed write first: its errno, which fflush must not overwrite */
    if (a->failed || ferror(a->f) || fflush(a->f) != 0) {
        rc = gn_err_set(err, GN_EIO, "cannot write %s: %s", a->tmp, strerror(errno ? errno : EIO));
        goto fail;
    }
    if (fsync(fileno(a->f)) != 0) {
        rc = gn_err_set(err, GN_EIO, "cannot fsync %s: %s", a->tmp, strerror(errno));
        goto fail;
    }
    int cr = fclose(a->f);
    a->f = NULL;
    if (cr != 0) {
        rc = gn_err_set(err, GN_EIO, "cannot close %s: %s", a->tmp, strerror(errno));
        goto fail;
    }
    if (rename(a->tmp, a->path) != 0) {
        rc = gn_err_set(err, GN_EIO, "cannot rename %s to %s: %s", a->tmp, a->path,
                        strerror(errno));
        goto fail;
    }
    /* The rename is durable only once the directory is; some file systems cannot fsync a
     * directory (EINVAL), which is no reason to fail. */
    int dfd = open(a->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        if (fsync(dfd) != 0 && errno != EINVAL && errno != ENOTSUP)
            rc = gn_err_set(err, GN_EIO, "%s was written, but fsync of its directory %s failed: "
                            "%s", a->path, a->dir, strerror(errno));
        close(dfd);
    }
    atomic_release(a);
    return rc;
fail:
    gn_atomic_abort(a);
    return rc;
}
