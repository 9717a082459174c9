/* Open MPI implementation of gemmnet/dist.h.
 *
 * Every MPI call's return is checked (MPI_COMM_WORLD uses MPI_ERRORS_RETURN) and turned into a
 * gn_err naming the operation. A watchdog thread aborts the whole job (MPI_Abort) when one
 * collective waits longer than the configured timeout: a rank that hangs, or died in a way the
 * launcher did not notice, then stops the job with a message instead of blocking it forever. */
#include "gemmnet/dist.h"
#include "gemmnet/gemmnet.h"

#include <limits.h>
#include <mpi.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_REQ 4096

static int g_on;                 /* MPI initialized by gn_dist_init */
static int g_rank, g_size = 1;
static MPI_Request g_req[MAX_REQ];
static int g_nreq;

/* watchdog: armed while a collective waits */
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_t g_thread;
static int g_thread_on;
static double g_timeout;         /* seconds; 0 = off */
static double g_armed_at;        /* gn_now() when the current wait began; 0 = not armed */
static const char *g_what = "";

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int gn_dist_built(void) { return 1; }

static int mpi_fail(gn_err *err, int rc, const char *what)
{
    char s[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, s, &len) != MPI_SUCCESS) snprintf(s, sizeof s, "MPI error %d", rc);
    return gn_err_set(err, GN_EIO, "rank %d of %d: %s failed: %s", g_rank, g_size, what, s);
}

int gn_dist_init(int *argc, char ***argv, gn_err *err)
{
    if (g_on) return GN_OK;
    if (!getenv("OMPI_COMM_WORLD_SIZE") && !getenv("PMIX_RANK")) return GN_OK; /* not launched */
    int provided = 0;
    /* The watchdog thread may call MPI_Abort while the main thread waits in MPI. */
    int rc = MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided);
    if (rc != MPI_SUCCESS) return gn_err_set(err, GN_EIO, "MPI_Init_thread failed (%d)", rc);
    g_on = 1;
    if ((rc = MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN)) != MPI_SUCCESS)
        return mpi_fail(err, rc, "MPI_Comm_set_errhandler");
    if ((rc = MPI_Comm_rank(MPI_COMM_WORLD, &g_rank)) != MPI_SUCCESS)
        return mpi_fail(err, rc, "MPI_Comm_rank");
    if ((rc = MPI_Comm_size(MPI_COMM_WORLD, &g_size)) != MPI_SUCCESS)
        return mpi_fail(err, rc, "MPI_Comm_size");
    return GN_OK;
}

void gn_dist_finalize(void)
{
    if (!g_on) return;
    pthread_mutex_lock(&g_mu);
    g_timeout = 0;
    pthread_mutex_unlock(&g_mu);
    MPI_Finalize();
    g_on = 0;
}

int gn_dist_rank(void) { return g_rank; }
int gn_dist_size(void) { return g_size; }

void gn_dist_abort(const char *msg)
{
    fprintf(stderr, "gemmnet rank %d of %d: %s\n", g_rank, g_size, msg);
    fflush(stderr);
    if (g_on) MPI_Abort(MPI_COMM_WORLD, 1);
    exit(1);
}

static void *watchdog(void *arg)
{
    (void)arg;
    for (;;) {
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&g_mu);
        double t = g_timeout, at = g_armed_at;
        const char *what = g_what;
        pthread_mutex_unlock(&g_mu);
        if (t > 0 && at > 0 && mono() - at > t) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s did not complete within mpi_timeout=%g s: another rank "
                     "has failed or hangs; stopping the job", what, t);
            gn_dist_abort(msg);
        }
    }
    return NULL;
}

int gn_dist_set_timeout(double seconds, gn_err *err)
{
    if (!g_on) return GN_OK;
    pthread_mutex_lock(&g_mu);
    g_timeout = seconds;
    pthread_mutex_unlock(&g_mu);
    if (seconds > 0 && !g_thread_on) {
        if (pthread_create(&g_thread, NULL, watchdog, NULL))
            return gn_err_set(err, GN_ENOMEM, "cannot start the MPI watchdog thread");
        pthread_detach(g_thread);
        g_thread_on = 1;
    }
    return GN_OK;
}

static void arm(const char *what)
{
    pthread_mutex_lock(&g_mu);
    g_what = what;
    g_armed_at = mono();
    pthread_mutex_unlock(&g_mu);
}

static void disarm(void)
{
    pthread_mutex_lock(&g_mu);
    g_armed_at = 0;
    pthread_mutex_unlock(&g_mu);
}

static int check_count(size_t n, const char *what, gn_err *err)
{
    if (n > INT_MAX) return gn_err_set(err, GN_EINVAL, "%s: %zu elements, more than MPI's int "
                                       "count", what, n);
    return GN_OK;
}

static int bcast(void *buf, size_t n, MPI_Datatype t, int root, const char *what, gn_err *err)
{
    if (!g_on || g_size == 1) return GN_OK;
    {
        int e = check_count(n, what, err);
        if (e) return e;
    }
    arm(what);
    int rc = MPI_Bcast(buf, (int)n, t, root, MPI_COMM_WORLD);
    disarm();
    return rc == MPI_SUCCESS ? GN_OK : mpi_fail(err, rc, what);
}

static int sum(void *buf, size_t n, MPI_Datatype t, const char *what, gn_err *err)
{
    if (!g_on || g_size == 1) return GN_OK;
    {
        int e = check_count(n, what, err);
        if (e) return e;
    }
    arm(what);
    int rc = MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, t, MPI_SUM, MPI_COMM_WORLD);
    disarm();
    return rc == MPI_SUCCESS ? GN_OK : mpi_fail(err, rc, what);
}

int gn_dist_bcast_f32(float *buf, size_t n, int root, const char *what, gn_err *err)
{
    return bcast(buf, n, MPI_FLOAT, root, what, err);
}

int gn_dist_bcast_i64(long long *buf, size_t n, int root, const char *what, gn_err *err)
{
    return bcast(buf, n, MPI_LONG_LONG, root, what, err);
}

int gn_dist_sum_f32(float *buf, size_t n, const char *what, gn_err *err)
{
    return sum(buf, n, MPI_FLOAT, what, err);
}

int gn_dist_sum_f64(double *buf, size_t n, const char *what, gn_err *err)
{
    return sum(buf, n, MPI_DOUBLE, what, err);
}

int gn_dist_isum_f32(float *buf, size_t n, gn_err *err)
{
    if (!g_on || g_size == 1 || n == 0) return GN_OK;
    {
        int e = check_count(n, "MPI_Iallreduce", err);
        if (e) return e;
    }
    if (g_nreq == MAX_REQ) return gn_err_set(err, GN_EINVAL, "too many gradient buckets");
    int rc = MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD,
                            &g_req[g_nreq]);
    if (rc != MPI_SUCCESS) return mpi_fail(err, rc, "MPI_Iallreduce (gradients)");
    g_nreq++;
    return GN_OK;
}

void gn_dist_progress(void)
{
    if (!g_nreq) return;
    int flag = 0;
    /* Only to let Open MPI move data; errors surface in gn_dist_wait_all. */
    MPI_Testall(g_nreq, g_req, &flag, MPI_STATUSES_IGNORE);
}

int gn_dist_wait_all(const char *what, gn_err *err)
{
    if (!g_nreq) return GN_OK;
    arm(what);
    int rc = MPI_Waitall(g_nreq, g_req, MPI_STATUSES_IGNORE);
    disarm();
    g_nreq = 0;
    return rc == MPI_SUCCESS ? GN_OK : mpi_fail(err, rc, what);
}
