/* The run directory alone (src/train/rundir.c): the lock (a second claim fails and names this
 * process's PID; the lock is per open file, so one process can test it), the default name that
 * passes over a locked or used directory, and the refusal, --resume and --overwrite rules. */
#include "check.h"
#include "data/tmpdir.h"
#include "train/rundir.h"

#include <unistd.h>

int main(void)
{
    char root[64], dir[128], path[256], want[160];
    if (!tmp_make(root, sizeof root)) return 1;
    snprintf(dir, sizeof dir, "%s/runs/x", root);
    gn_err err = {0};
    gn_rundir a, b, c;
    int sfx = -1;

    CHECK_MSG(gn_rundir_claim(&a, dir, 0, &sfx, &err) == GN_OK && sfx == 0, "%s", err.msg);
    CHECK(a.fd >= 0 && !strcmp(a.dir, dir));
    snprintf(path, sizeof path, "%s/.lock", dir);
    size_t n = 0;
    unsigned char *pid = tmp_read(path, &n);
    snprintf(want, sizeof want, "%ld\n", (long)getpid());
    CHECK_MSG(pid && n == strlen(want) && !memcmp(pid, want, n), "lock file: %.*s", (int)n,
              pid ? (const char *)pid : "");
    free(pid);
    /* a second run into the locked directory */
    CHECK(gn_rundir_claim(&b, dir, GN_RUNDIR_OVERWRITE, &sfx, &err) == GN_EINVAL && b.fd < 0);
    snprintf(want, sizeof want, "in use by another run (PID %ld)", (long)getpid());
    CHECK_MSG(strstr(err.msg, want) && strstr(err.msg, dir), "%s", err.msg);
    /* the default name passes over it */
    CHECK(gn_rundir_claim(&b, dir, GN_RUNDIR_PICK_FRESH, &sfx, &err) == GN_OK && sfx == 2);
    snprintf(want, sizeof want, "%s-2", dir);
    CHECK_MSG(!strcmp(b.dir, want), "%s", b.dir);
    gn_rundir_release(&b);
    gn_rundir_release(&a);
    CHECK(a.fd == -1);

    /* a directory with a checkpoint (here an unreadable one) holds a run */
    snprintf(path, sizeof path, "%s/last.safetensors", dir);
    CHECK(tmp_write(path, "junk", 4) == 0);
    CHECK(gn_rundir_has_run(dir));
    CHECK(gn_rundir_claim(&c, dir, 0, &sfx, &err) == GN_EINVAL && c.fd < 0);
    CHECK_MSG(strstr(err.msg, "holds a run") && strstr(err.msg, "--resume auto continues it") &&
                  strstr(err.msg, "--overwrite"), "%s", err.msg);
    CHECK(access(path, F_OK) == 0);
    /* the default name: dir holds a run, dir-2 is free (b released it, it holds no run) */
    CHECK(gn_rundir_claim(&c, dir, GN_RUNDIR_PICK_FRESH, &sfx, &err) == GN_OK && sfx == 2);
    gn_rundir_release(&c);
    CHECK(gn_rundir_claim(&c, dir, GN_RUNDIR_RESUME, &sfx, &err) == GN_OK && sfx == 0);
    CHECK(access(path, F_OK) == 0);
    gn_rundir_release(&c);
    snprintf(path, sizeof path, "%s/ckpt-00000012.safetensors", dir);
    CHECK(tmp_write(path, "junk", 4) == 0);
    CHECK(gn_rundir_claim(&c, dir, GN_RUNDIR_OVERWRITE, &sfx, &err) == GN_OK && sfx == 0);
    CHECK(gn_rundir_has_run(dir)); /* deleted only when the run starts */
    CHECK(gn_rundir_replace(&c, &err) == GN_OK);
    CHECK(!gn_rundir_has_run(dir));
    gn_rundir_release(&c);
    /* a temporary checkpoint file is no run */
    snprintf(path, sizeof path, "%s/last.safetensors.tmp.123", dir);
    CHECK(tmp_write(path, "junk", 4) == 0);
    CHECK(!gn_rundir_has_run(dir));

    char name[64];
    gn_rundir_name(name, sizeof name, "runs/x/", 3);
    CHECK_MSG(!strcmp(name, "runs/x-3"), "%s", name);
    tmp_rmtree(root);
    return check_exit();
}
