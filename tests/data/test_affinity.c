/* Threads gemmnet starts itself are not confined to the main thread's core when OpenMP binds
 * threads. meson runs this test with OMP_PROC_BIND=true: libgomp then binds the main thread to
 * its first place, and a thread created with default attributes would inherit that one core.
 * Checks gn_process_cpus (the union of the places) and that the data loader's decoding threads
 * run on all of those CPUs. Skipped (exit 77) on a machine with one CPU or without OpenMP. */
#include "check.h"
#include "core/util.h"
#include "data/tmpdir.h"
#include "gemmnet/data.h"
#include "gemmnet/gemmnet.h"

#include <dirent.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#ifdef _OPENMP
/* CPUs in the "Cpus_allowed_list" of /proc/self/task/TID/status ("0-3,6" -> 5) */
static int task_cpus(const char *tid)
{
    char path[300], line[512];
    snprintf(path, sizeof path, "/proc/self/task/%s/status", tid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int n = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "Cpus_allowed_list:", 18)) continue;
        n = 0;
        for (char *p = line + 18; *p && *p != '\n';) {
            while (*p == ' ' || *p == '\t' || *p == ',') p++;
            if (!*p || *p == '\n') break;
            long a = strtol(p, &p, 10), b = a;
            if (*p == '-') b = strtol(p + 1, &p, 10);
            n += (int)(b - a + 1);
        }
    }
    fclose(f);
    return n;
}

/* Threads of this process whose affinity covers exactly `cpus` CPUs. */
static int threads_on(int cpus)
{
    DIR *d = opendir("/proc/self/task");
    if (!d) return -1;
    int k = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' && task_cpus(e->d_name) == cpus) k++;
    closedir(d);
    return k;
}
#endif

int main(void)
{
#ifndef _OPENMP
    printf("skip: built without OpenMP\n");
    return 77;
#else
    if (omp_get_proc_bind() == omp_proc_bind_false) {
        fprintf(stderr, "run with OMP_PROC_BIND=true (meson test does)\n");
        return 1;
    }
    int places = omp_get_num_places(), in_places = 0;
    for (int p = 0; p < places; p++) in_places += omp_get_place_num_procs(p);
    if (places < 2) {
        printf("skip: one OpenMP place on this machine\n");
        return 77;
    }
    cpu_set_t set;
    int n = gn_process_cpus(&set);
    CHECK_MSG(n == in_places, "gn_process_cpus %d, places hold %d", n, in_places);
    /* the premise: the main thread itself is held to one place */
    cpu_set_t mine;
    CHECK(sched_getaffinity(0, sizeof mine, &mine) == 0 && CPU_COUNT(&mine) < n);

    char dir[64];
    if (!tmp_make(dir, sizeof dir)) return 1;
    gn_synth_opts so;
    gn_synth_opts_default(&so);
    so.classes = 2;
    so.train = 4;
    so.val = 1;
    so.min_side = so.max_side = 48;
    gn_err e = {0};
    CHECK(gn_synth(dir, &so, &e) == GN_OK);
    gn_data_opts o;
    gn_data_opts_default(&o);
    snprintf(o.train, sizeof o.train, "%s/train", dir);
    o.width = o.height = 32;
    o.workers = 2;
    o.prefetch = 2;
    gn_loader *l = NULL;
    CHECK(gn_loader_create(&l, &o, GN_SPLIT_TRAIN, 2, 1, &e) == GN_OK);
    if (l) {
        float x[2 * 3 * 32 * 32];
        int lab[2], got = 0;
        CHECK(gn_loader_next(l, x, lab, NULL, &got, &e) == GN_OK && got == 2);
        int k = threads_on(n);
        CHECK_MSG(k >= 2, "%d threads on all %d CPUs; the 2 decoding threads should be", k, n);
        gn_loader_free(&l);
    }
    tmp_rmtree(dir);
    return check_exit();
#endif
}
