/* gemmnet bench: training throughput against batch size and thread count, and why.
 *
 * Each point (batch size, thread count) runs in a fresh process (this program re-executed with
 * the hidden option --point B,T), so that the peak resident memory it reports (VmHWM, a
 * process-wide high-water mark) belongs to that point alone. The child prints its measurements
 * as text lines on a pipe; the parent collects them and writes the table, CSV, JSON and SVG. */
#include "cli/commands.h"
#include "cli/common.h"
#include "core/rng.h"
#include "core/util.h"
#include "gemmnet/bench.h"
#include "gemmnet/data.h"
#include "gemmnet/train.h"

#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef GN_BUILD_TYPE
#define GN_BUILD_TYPE "unknown"
#endif

static const char *bench_help =
    "usage: gemmnet bench CONFIG [--set section.key=value ...] [--batch LIST] [--threads LIST]\n"
    "                     [--iters N] [--warmup N] [--csv FILE] [--json FILE] [--svg FILE]\n"
    "                     [--layers] [--data synthetic|real] [--max-mem SIZE]\n\n"
    "Measures full training steps (forward, backward, SGD update with momentum and weight\n"
    "decay, folded into backward as in gemmnet train) and forward-only inference on random\n"
    "in-memory input, for every batch size in LIST (default 1,2,4,8,16,32,64,128) and every\n"
    "thread count in LIST (default: all cores, that is the CPUs this process may run on; 0\n"
    "also means all cores). Each point runs in a fresh process, so its peak resident memory is\n"
    "its own; it may use all those CPUs (also under OMP_PROC_BIND), and warns when a point has\n"
    "more threads than CPUs. Reported per point: median, p10 and p90 step time after --warmup\n"
    "steps (default 1) over --iters steps (default 5), training and inference images/s,\n"
    "achieved GFLOP/s from the network's FLOP count, that as a percentage of the sgemm rate\n"
    "(a 2048^3 cblas_sgemm (median of 5) measured at the start of the run at the same thread\n"
    "count), peak resident memory, and the memory the engine plans for its buffers.\n\n"
    "  --max-mem SIZE  batch sizes whose planned buffers exceed SIZE (512M, 2G, ...; binary\n"
    "                  units) are reported as not fitting and not run; default: MemAvailable\n"
    "  --sgemm-size N  the sgemm reference's matrix size (default 2048)\n"
    "  --layers        also time every layer's forward and backward (and, inside layers that\n"
    "                  report them, im2col/col2im or Winograd transforms, and sgemm) and\n"
    "                  print a sorted profile\n"
    "  --data real     each training step also takes its batch from the configured\n                  loader ([data] train=), to show when loading limits training\n"
    "  --csv/--json/--svg FILE   write the results (the JSON carries a machine fingerprint;\n"
    "                  the SVG charts images/s and memory against batch size)\n\n"
    "Exit status: 0 when at least one point ran and none failed (points that do not fit are\n"
    "not failures); 1 when a point failed or no batch size fits; 2 for usage errors.\n";

#define MAX_LIST 64

typedef struct bench_opts {
    cli_common c;
    int batches[MAX_LIST], n_batches;
    int threads[MAX_LIST], n_threads;
    int iters, warmup;
    const char *csv, *json, *svg;
    int layers;
    int data_real;
    double max_mem;          /* bytes; 0 = MemAvailable */
    int sgemm_n;             /* size of the sgemm reference */
    int point_b, point_t;    /* child mode (--point B,T) when point_b > 0 */
} bench_opts;

enum { PT_RAN = 1, PT_NOFIT = 0, PT_FAILED = -1 };

typedef struct point {
    int batch, threads;
    int status;         /* PT_* */
    double planned;     /* bytes the engine plans (with momentum) */
    double t[3];        /* training step seconds: p10, p50, p90 */
    double ti[3];       /* inference (forward only) seconds: p10, p50, p90 */
    double peak_rss;    /* bytes */
    double sgemm;       /* GFLOP/s at this thread count */
    double update_s;    /* the SGD update (zeroing the gradients), per step (with --layers) */
    gn_layer_time *lt;  /* per layer, seconds per step (with --layers) */
} point;

/* ---- option parsing ---- */

static int parse_list(const char *flag, const char *v, int lo, int hi, int *out, int *n)
{
    *n = 0;
    const char *p = v;
    while (p && *p) {
        char *end;
        errno = 0;
        long x = strtol(p, &end, 10);
        if (end == p || errno || x < lo || x > hi || (*end && *end != ',') || *n == MAX_LIST) {
            fprintf(stderr, "gemmnet bench: %s needs a comma-separated list of at most %d "
                    "integers in [%d, %d], got '%s'\n", flag, MAX_LIST, lo, hi, v);
            return -1;
        }
        out[(*n)++] = (int)x;
        p = *end ? end + 1 : end;
    }
    if (*n == 0) {
        fprintf(stderr, "gemmnet bench: %s needs a list, got '%s'\n", flag, v ? v : "");
        return -1;
    }
    return 0;
}

/* "512M", "2G", "1.5g", "4096" (bytes), binary units. */
static int parse_size(const char *v, double *out)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (end == v || errno || !(x > 0)) return -1;
    double m = 1;
    switch (*end) {
    case 'k': case 'K': m = 1024.0; end++; break;
    case 'm': case 'M': m = 1048576.0; end++; break;
    case 'g': case 'G': m = 1073741824.0; end++; break;
    case 't': case 'T': m = 1099511627776.0; end++; break;
    default: break;
    }
    if (*end == 'i') end++;
    if (*end == 'b' || *end == 'B') end++;
    if (*end) return -1;
    *out = x * m;
    return 0;
}

static int parse_args(bench_opts *o, int argc, char **argv)
{
    static const int default_batches[] = {1, 2, 4, 8, 16, 32, 64, 128};
    o->n_batches = (int)(sizeof default_batches / sizeof default_batches[0]);
    memcpy(o->batches, default_batches, sizeof default_batches);
    o->threads[0] = 0;
    o->n_threads = 1;
    o->iters = 5;
    o->warmup = 1;
    o->sgemm_n = 2048;
    for (int i = 1; i < argc;) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (cli_is_help(a)) {
            fputs(bench_help, stdout);
            return 1;
        }
        if (!strcmp(a, "--threads")) { /* a list here, unlike the common single value */
            if (!v || parse_list("--threads", v, 0, 4096, o->threads, &o->n_threads)) return -1;
            i += 2;
            continue;
        }
        int k = cli_take_common(&o->c, argc, argv, i);
        if (k < 0) return -1;
        if (k > 0) {
            i += k;
            continue;
        }
        if (!strcmp(a, "--layers")) {
            o->layers = 1;
            i++;
            continue;
        }
        if (a[0] == '-' && !v) {
            cli_usage_error("bench", "'%s' needs a value or is unknown", a);
            return -1;
        }
        if (!strcmp(a, "--batch")) {
            if (parse_list("--batch", v, 1, 1 << 20, o->batches, &o->n_batches)) return -1;
        } else if (!strcmp(a, "--iters")) {
            if ((o->iters = cli_parse_int("bench", "--iters", v, 1, 100000)) < 0) return -1;
        } else if (!strcmp(a, "--warmup")) {
            if ((o->warmup = cli_parse_int("bench", "--warmup", v, 0, 100000)) < 0) return -1;
        } else if (!strcmp(a, "--sgemm-size")) {
            if ((o->sgemm_n = cli_parse_int("bench", "--sgemm-size", v, 16, 16384)) < 0) return -1;
        } else if (!strcmp(a, "--csv")) {
            o->csv = v;
        } else if (!strcmp(a, "--json")) {
            o->json = v;
        } else if (!strcmp(a, "--svg")) {
            o->svg = v;
        } else if (!strcmp(a, "--data")) {
            if (!strcmp(v, "real"))
                o->data_real = 1;
            else if (strcmp(v, "synthetic")) {
                cli_usage_error("bench", "--data is synthetic or real, not '%s'", v);
                return -1;
            }
        } else if (!strcmp(a, "--max-mem")) {
            if (parse_size(v, &o->max_mem)) {
                cli_usage_error("bench", "--max-mem needs a size such as 512M or 2G, got '%s'", v);
                return -1;
            }
        } else if (!strcmp(a, "--point")) { /* internal: one point in a child process */
            if (sscanf(v, "%d,%d", &o->point_b, &o->point_t) != 2 || o->point_b < 1 ||
                o->point_t < 0) {
                cli_usage_error("bench", "bad --point '%s'", v);
                return -1;
            }
        } else if (a[0] == '-' || o->c.config) {
            cli_usage_error("bench", "unexpected '%s'", a);
            return -1;
        } else {
            o->c.config = a;
            i++;
            continue;
        }
        i += 2;
    }
    if (!o->c.config) {
        cli_usage_error("bench", "missing CONFIG");
        return -1;
    }
    return 0;
}

/* ---- one point, in the child ---- */

/* q-quantile of sorted x[0..n) with linear interpolation. */
static double quantile(const double *x, int n, double q)
{
    double pos = q * (n - 1);
    int i = (int)pos;
    if (i >= n - 1) return x[n - 1];
    return x[i] + (pos - i) * (x[i + 1] - x[i]);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void summarize(double *t, int n, double out[3])
{
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    out[0] = quantile(t, n, 0.1);
    out[1] = quantile(t, n, 0.5);
    out[2] = quantile(t, n, 0.9);
}

typedef struct sgd_hyper {
    double lr, mu, wd;
} sgd_hyper;

static int read_hyper(gn_cfg *cfg, sgd_hyper *h, gn_err *err)
{
    gn_cfg_section *s = gn_cfg_section_find(cfg, "net");
    int rc;
    if ((rc = gn_cfg_float(s, "learning_rate", 0.001, 0, 1e6, &h->lr, err))) return rc;
    if ((rc = gn_cfg_float(s, "momentum", 0.9, 0, 1, &h->mu, err))) return rc;
    return gn_cfg_float(s, "decay", 0.0001, 0, 1e6, &h->wd, err);
}

/* Runs the point and prints "layer ..." lines and one "point ..." line on out. */
static int child_point(const bench_opts *o, gn_cfg *cfg, FILE *out)
{
    gn_err err = {0};
    gn_net *net = NULL;
    float *vel = NULL;
    double *times = NULL;
    gn_layer_time *lt = NULL;
    gn_loader *loader = NULL;
    int rc = 1, b = o->point_b;
    sgd_hyper h;
    gn_set_threads(o->point_t);
    cpu_set_t cpus;
    int ncpu = gn_process_cpus(&cpus);
    if (ncpu < o->point_t)
        fprintf(stderr, "gemmnet bench: warning: batch %d runs %d threads on %d CPU%s (this "
                "process's affinity mask): they take turns, and the point measures less than the "
                "machine\n", b, o->point_t, ncpu, ncpu == 1 ? "" : "s");
    if (read_hyper(cfg, &h, &err)) goto done;
    int brc = gn_net_build_flags(&net, cfg, b, 1, GN_NET_RECOMPUTE, &err);
    if (brc == GN_ENOMEM) {
        fprintf(out, "point nomem\n");
        fprintf(stderr, "gemmnet: %s\n", err.msg);
        rc = 0;
        goto done;
    }
    if (brc) goto done;
    if (net->loss_layer < 0) {
        gn_err_set(&err, GN_ECONFIG, "%s: the network has no loss layer ([softmax] or [cost]), "
                   "so it cannot be trained", cfg->path);
        goto done;
    }
    vel = gn_alloc(net->n_params, sizeof(float));
    times = malloc((size_t)o->iters * sizeof *times);
    lt = calloc((size_t)net->n_layers, sizeof *lt);
    if (!vel || !times || !lt) {
        fprintf(out, "point nomem\n");
        fprintf(stderr, "gemmnet: out of memory for batch %d\n", b);
        rc = 0;
        goto done;
    }
    gn_rng r = gn_rng_make(42);
    for (size_t i = 0; i < (size_t)b * gn_shape_size(net->in); i++)
        net->input[i] = (float)(2 * gn_rng_uniform(&r) - 1);
    for (int i = 0; i < b; i++) net->labels[i] = (int)gn_rng_below(&r, (uint64_t)net->n_classes);
    for (size_t i = 0; i < (size_t)b * (size_t)net->n_classes; i++)
        net->targets[i] = (float)(2 * gn_rng_uniform(&r) - 1);
    if (o->data_real) {
        gn_data_opts d;
        if (gn_data_opts_parse(&d, cfg, &err)) goto done;
        if (!gn_loader_has_split(&d, GN_SPLIT_TRAIN)) {
            gn_err_set(&err, GN_ECONFIG, "--data real needs [data] train= in the config (or "
                       "--set data.train=DIR)");
            goto done;
        }
        if (gn_loader_create(&loader, &d, GN_SPLIT_TRAIN, b, 1, &err)) goto done;
        if (gn_loader_classes(loader) != net->n_classes) {
            gn_err_set(&err, GN_ESHAPE, "the data has %d classes, the network outputs %d",
                       gn_loader_classes(loader), net->n_classes);
            goto done;
        }
    }
    gn_ctx ctx = gn_net_ctx(net, 1);
    ctx.seed = 1;
    double tt[3], ti[3];
    gn_sgd_fused sgd;
    /* A training step as gemmnet train runs it on one rank: the SGD step folded into backward,
     * which leaves the gradients zero for the next step. */
    gn_net_zero_grads(net);
    for (int it = -o->warmup; it < o->iters; it++) {
        double t0 = gn_now();
        ctx.step = (uint64_t)(it + o->warmup);
        if (loader) {
            int n = 0;
            if (gn_loader_next(loader, net->input, net->labels, NULL, &n, &err)) goto done;
        }
        gn_net_forward(net, &ctx);
        gn_sgd_fused_begin(&sgd, net, vel, (float)h.lr, (float)h.mu, (float)h.wd, 0, &ctx);
        gn_net_backward(net, &ctx);
        gn_sgd_fused_finish(&sgd);
        if (it >= 0) times[it] = gn_now() - t0;
    }
    summarize(times, o->iters, tt);
    gn_ctx ictx = gn_net_ctx(net, 0);
    for (int it = -o->warmup; it < o->iters; it++) {
        double t0 = gn_now();
        gn_net_forward(net, &ictx);
        if (it >= 0) times[it] = gn_now() - t0;
    }
    summarize(times, o->iters, ti);
    double update = 0;
    if (o->layers) {
        for (int it = 0; it < o->iters; it++) {
            gn_sgd_fused_begin(&sgd, net, vel, (float)h.lr, (float)h.mu, (float)h.wd, 0, &ctx);
            gn_net_step_timed(net, &ctx, 1, lt, &update);
            double t0 = gn_now();
            gn_sgd_fused_finish(&sgd);
            update += gn_now() - t0;
        }
        for (int i = 0; i < net->n_layers; i++) {
            const gn_layer_time *x = &lt[i];
            double k = 1.0 / o->iters;
            fprintf(out, "layer %d %.9g %.9g %.9g %.9g %.9g %.9g\n", i, x->fwd * k, x->bwd * k,
                    x->pf.im2col * k, x->pf.gemm * k, x->pb.im2col * k, x->pb.gemm * k);
        }
        update /= o->iters;
    }
    fprintf(out, "point ran %.9g %.9g %.9g %.9g %.9g %.9g %.0f %.9g\n", tt[0], tt[1], tt[2], ti[0],
            ti[1], ti[2], gn_bench_peak_rss(), update);
    rc = 0;
done:
    if (rc) cli_fail(&err);
    free(lt);
    free(times);
    gn_free(vel);
    gn_loader_free(&loader);
    gn_net_free(&net);
    return rc;
}

/* ---- the parent: spawn one child per point ---- */

static int run_child(const bench_opts *o, point *p, int n_layers)
{
    char pt[64], iters[32], warm[32];
    snprintf(pt, sizeof pt, "%d,%d", p->batch, p->threads);
    snprintf(iters, sizeof iters, "%d", o->iters);
    snprintf(warm, sizeof warm, "%d", o->warmup);
    const char *args[2 * CLI_MAX_SETS + 16];
    int n = 0;
    args[n++] = "gemmnet";
    args[n++] = "bench";
    args[n++] = o->c.config;
    for (int i = 0; i < o->c.n_sets; i++) {
        args[n++] = "--set";
        args[n++] = o->c.sets[i];
    }
    args[n++] = "--point";
    args[n++] = pt;
    args[n++] = "--iters";
    args[n++] = iters;
    args[n++] = "--warmup";
    args[n++] = warm;
    if (o->layers) args[n++] = "--layers";
    if (o->data_real) {
        args[n++] = "--data";
        args[n++] = "real";
    }
    args[n] = NULL;

    int fd[2];
    if (pipe(fd)) {
        fprintf(stderr, "gemmnet bench: pipe: %s\n", strerror(errno));
        return PT_FAILED;
    }
    /* the child starts with the mask of the thread that forks it: with OpenMP binding threads
     * that is one core, and the child's OpenMP would then put all its threads there */
    cpu_set_t cpus;
    gn_process_cpus(&cpus);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "gemmnet bench: fork: %s\n", strerror(errno));
        close(fd[0]);
        close(fd[1]);
        return PT_FAILED;
    }
    if (pid == 0) {
        close(fd[0]);
        if (dup2(fd[1], STDOUT_FILENO) < 0) _exit(127);
        close(fd[1]);
        sched_setaffinity(0, sizeof cpus, &cpus);
        execv("/proc/self/exe", (char *const *)args);
        fprintf(stderr, "gemmnet bench: cannot re-execute /proc/self/exe: %s\n", strerror(errno));
        _exit(127);
    }
    close(fd[1]);
    FILE *in = fdopen(fd[0], "r");
    int status = PT_FAILED;
    char line[512];
    while (in && fgets(line, sizeof line, in)) {
        int li;
        gn_layer_time x;
        if (sscanf(line, "layer %d %lf %lf %lf %lf %lf %lf", &li, &x.fwd, &x.bwd, &x.pf.im2col,
                   &x.pf.gemm, &x.pb.im2col, &x.pb.gemm) == 7) {
            if (p->lt && li >= 0 && li < n_layers) p->lt[li] = x;
        } else if (!strncmp(line, "point nomem", 11)) {
            status = PT_NOFIT;
        } else if (sscanf(line, "point ran %lf %lf %lf %lf %lf %lf %lf %lf", &p->t[0], &p->t[1],
                          &p->t[2], &p->ti[0], &p->ti[1], &p->ti[2], &p->peak_rss,
                          &p->update_s) == 8) {
            status = PT_RAN;
        }
    }
    if (in)
        fclose(in);
    else
        close(fd[0]);
    int ws = 0;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
    }
    if (WIFSIGNALED(ws)) {
        fprintf(stderr, "gemmnet bench: batch %d, %d threads: the measuring process was killed "
                "by signal %d%s\n", p->batch, p->threads, WTERMSIG(ws),
                WTERMSIG(ws) == 9 ? " (out of memory?)" : "");
        return PT_FAILED;
    }
    if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) return PT_FAILED;
    return status;
}

/* ---- reports ---- */

typedef struct run_info {
    const char *config;
    gn_shape in;
    size_t n_params;
    double flops, flops_bwd; /* per image */
    char cpu[256];
    int cores;
    double max_mem;
    double sgemm[MAX_LIST];  /* per thread-list entry */
    int n_layers;
    const gn_layer *layers;  /* from the planned net (names, shapes, FLOPs) */
} run_info;

static double mib(double bytes) { return bytes / 1048576.0; }
static double img_s(const point *p) { return p->batch / p->t[1]; }
static double infer_img_s(const point *p) { return p->batch / p->ti[1]; }
static double gflops(const run_info *ri, const point *p)
{
    return (ri->flops + ri->flops_bwd) * p->batch / p->t[1] / 1e9;
}

static void print_row_header(void)
{
    printf("%6s %4s  %9s %9s %9s  %9s %9s  %8s %6s  %9s %9s\n", "batch", "thr", "p10 ms",
           "p50 ms", "p90 ms", "train/s", "infer/s", "GFLOP/s", "%sgemm", "peak MiB",
           "plan MiB");
}

static void print_row(const run_info *ri, const point *p)
{
    if (p->status == PT_RAN)
        printf("%6d %4d  %9.1f %9.1f %9.1f  %9.2f %9.2f  %8.2f %5.1f%%  %9.1f %9.1f\n", p->batch,
               p->threads, 1e3 * p->t[0], 1e3 * p->t[1], 1e3 * p->t[2], img_s(p), infer_img_s(p),
               gflops(ri, p), 100 * gflops(ri, p) / p->sgemm, mib(p->peak_rss), mib(p->planned));
    else
        printf("%6d %4d  %-41s %36.1f\n", p->batch, p->threads,
               p->status == PT_NOFIT ? "does not fit in --max-mem" : "FAILED (see above)",
               mib(p->planned));
    fflush(stdout);
}

static void shape_str(gn_shape s, char *buf, size_t n)
{
    if (s.h == 1 && s.w == 1)
        snprintf(buf, n, "%d", s.c);
    else
        snprintf(buf, n, "%dx%dx%d", s.c, s.h, s.w);
}

typedef struct layer_row {
    int index;
    double total;
} layer_row;

static int cmp_row(const void *a, const void *b)
{
    const layer_row *x = a, *y = b;
    return (x->total < y->total) - (x->total > y->total);
}

/* The sorted per-layer profile of one point, then the same summed by layer type. */
static void print_layers(const run_info *ri, const point *p)
{
    layer_row *rows = malloc((size_t)ri->n_layers * sizeof *rows);
    if (!rows) return;
    double sum = 0;
    for (int i = 0; i < ri->n_layers; i++) {
        rows[i].index = i;
        rows[i].total = p->lt[i].fwd + p->lt[i].bwd;
        sum += rows[i].total;
    }
    qsort(rows, (size_t)ri->n_layers, sizeof *rows, cmp_row);
    double step = sum + p->update_s;
    printf("\nper-layer profile, batch %d, %d thread%s (ms per step; %.1f ms in layers + %.1f ms "
           "SGD update; median step %.1f ms):\n", p->batch, p->threads,
           p->threads == 1 ? "" : "s",
           1e3 * sum, 1e3 * p->update_s, 1e3 * p->t[1]);
    printf("%4s  %-14s %-12s %9s %9s %9s %6s %8s %7s | %8s %8s %8s | %8s %8s %8s\n", "#",
           "layer", "output", "fwd", "bwd", "total", "%", "GFLOP/s", "%sgemm", "im2col", "sgemm",
           "rest", "col2im", "sgemm", "rest");
    for (int r = 0; r < ri->n_layers; r++) {
        int i = rows[r].index;
        const gn_layer_time *x = &p->lt[i];
        const gn_layer *l = &ri->layers[i];
        char out[32];
        shape_str(l->out, out, sizeof out);
        double tot = rows[r].total;
        double gf = tot > 0 ? (l->flops + l->flops_bwd) * p->batch / tot / 1e9 : 0;
        printf("%4d  %-14s %-12s %9.2f %9.2f %9.2f %5.1f%% %8.2f %6.1f%% | %8.2f %8.2f %8.2f | "
               "%8.2f %8.2f %8.2f\n", i, l->ops->section, out, 1e3 * x->fwd, 1e3 * x->bwd,
               1e3 * tot, step > 0 ? 100 * tot / step : 0, gf,
               p->sgemm > 0 ? 100 * gf / p->sgemm : 0, 1e3 * x->pf.im2col, 1e3 * x->pf.gemm,
               1e3 * (x->fwd - x->pf.im2col - x->pf.gemm), 1e3 * x->pb.im2col, 1e3 * x->pb.gemm,
               1e3 * (x->bwd - x->pb.im2col - x->pb.gemm));
    }
    /* by layer type */
    printf("\nby layer type:\n%-14s %6s %9s %9s %9s %6s %9s %9s %9s\n", "type", "layers", "fwd",
           "bwd", "total", "%", "im2col", "sgemm", "rest");
    for (int i = 0; i < ri->n_layers; i++) {
        const char *name = ri->layers[i].ops->section;
        int first = 1;
        for (int j = 0; j < i; j++)
            if (!strcmp(ri->layers[j].ops->section, name)) first = 0;
        if (!first) continue;
        int count = 0;
        double f = 0, bw = 0, im = 0, gm = 0;
        for (int j = i; j < ri->n_layers; j++) {
            if (strcmp(ri->layers[j].ops->section, name)) continue;
            count++;
            f += p->lt[j].fwd;
            bw += p->lt[j].bwd;
            im += p->lt[j].pf.im2col + p->lt[j].pb.im2col;
            gm += p->lt[j].pf.gemm + p->lt[j].pb.gemm;
        }
        printf("%-14s %6d %9.2f %9.2f %9.2f %5.1f%% %9.2f %9.2f %9.2f\n", name, count, 1e3 * f,
               1e3 * bw, 1e3 * (f + bw), step > 0 ? 100 * (f + bw) / step : 0, 1e3 * im,
               1e3 * gm, 1e3 * (f + bw - im - gm));
    }
    printf("%-14s %6s %9s %9s %9.2f %5.1f%%\n", "(update)", "", "", "", 1e3 * p->update_s,
           step > 0 ? 100 * p->update_s / step : 0);
    free(rows);
}

static int write_csv(const char *path, const run_info *ri, const point *pts, int n)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "gemmnet bench: cannot write %s: %s\n", path, strerror(errno));
        return 1;
    }
    fprintf(f, "batch,threads,fits,planned_mb,p10_ms,p50_ms,p90_ms,img_per_s,infer_p50_ms,"
               "infer_img_per_s,gflops,sgemm_gflops,pct_sgemm,peak_rss_mb\n");
    for (int i = 0; i < n; i++) {
        const point *p = &pts[i];
        fprintf(f, "%d,%d,%d,%.1f", p->batch, p->threads, p->status == PT_RAN ? 1 : 0,
                mib(p->planned));
        if (p->status == PT_RAN)
            fprintf(f, ",%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%.2f,%.2f,%.1f\n", 1e3 * p->t[0],
                    1e3 * p->t[1], 1e3 * p->t[2], img_s(p), 1e3 * p->ti[1], infer_img_s(p),
                    gflops(ri, p), p->sgemm, 100 * gflops(ri, p) / p->sgemm, mib(p->peak_rss));
        else
            fprintf(f, ",,,,,,,,%.2f,,\n", p->sgemm);
    }
    int bad = ferror(f);
    if (fclose(f) || bad) {
        fprintf(stderr, "gemmnet bench: error writing %s\n", path);
        return 1;
    }
    return 0;
}

static int write_json(const char *path, const bench_opts *o, const run_info *ri, const point *pts,
                      int n)
{
    int rc = 1;
    char *text = NULL;
    cJSON *root = cJSON_CreateObject();
    if (!root) goto done;
    cJSON *m = cJSON_AddObjectToObject(root, "machine");
    if (!m) goto done;
    cJSON_AddStringToObject(m, "cpu", ri->cpu);
    cJSON_AddNumberToObject(m, "cores", ri->cores);
    cJSON_AddStringToObject(m, "blas", gn_blas_info());
    cJSON_AddStringToObject(m, "build_type", GN_BUILD_TYPE);
#ifdef _OPENMP
    cJSON_AddTrueToObject(m, "openmp");
#else
    cJSON_AddFalseToObject(m, "openmp");
#endif
    cJSON_AddStringToObject(m, "gemmnet_version", GN_VERSION);
    cJSON_AddStringToObject(root, "config", ri->config);
    cJSON *sets = cJSON_AddArrayToObject(root, "set");
    for (int i = 0; sets && i < o->c.n_sets; i++)
        cJSON_AddItemToArray(sets, cJSON_CreateString(o->c.sets[i]));
    int in[3] = {ri->in.c, ri->in.h, ri->in.w};
    cJSON_AddItemToObject(root, "input_chw", cJSON_CreateIntArray(in, 3));
    cJSON_AddNumberToObject(root, "parameters", (double)ri->n_params);
    cJSON_AddNumberToObject(root, "flops_forward_per_image", ri->flops);
    cJSON_AddNumberToObject(root, "flops_train_per_image", ri->flops + ri->flops_bwd);
    cJSON_AddNumberToObject(root, "iters", o->iters);
    cJSON_AddNumberToObject(root, "warmup", o->warmup);
    cJSON_AddNumberToObject(root, "max_mem_mb", mib(ri->max_mem));
    cJSON_AddStringToObject(root, "data", "synthetic");
    cJSON *sg = cJSON_AddArrayToObject(root, "sgemm");
    for (int i = 0; sg && i < o->n_threads; i++) {
        cJSON *s = cJSON_CreateObject();
        cJSON_AddItemToArray(sg, s);
        cJSON_AddNumberToObject(s, "threads", o->threads[i]);
        cJSON_AddNumberToObject(s, "n", o->sgemm_n);
        cJSON_AddNumberToObject(s, "gflops", ri->sgemm[i]);
    }
    cJSON *arr = cJSON_AddArrayToObject(root, "points");
    if (!arr) goto done;
    for (int i = 0; i < n; i++) {
        const point *p = &pts[i];
        cJSON *j = cJSON_CreateObject();
        if (!j) goto done;
        cJSON_AddItemToArray(arr, j);
        cJSON_AddNumberToObject(j, "batch", p->batch);
        cJSON_AddNumberToObject(j, "threads", p->threads);
        cJSON_AddStringToObject(j, "status", p->status == PT_RAN     ? "ran"
                                             : p->status == PT_NOFIT ? "does not fit"
                                                                     : "failed");
        cJSON_AddBoolToObject(j, "fits", p->status != PT_NOFIT);
        cJSON_AddNumberToObject(j, "planned_mb", mib(p->planned));
        cJSON_AddNumberToObject(j, "sgemm_gflops", p->sgemm);
        if (p->status != PT_RAN) continue;
        cJSON_AddNumberToObject(j, "p10_ms", 1e3 * p->t[0]);
        cJSON_AddNumberToObject(j, "p50_ms", 1e3 * p->t[1]);
        cJSON_AddNumberToObject(j, "p90_ms", 1e3 * p->t[2]);
        cJSON_AddNumberToObject(j, "img_per_s", img_s(p));
        cJSON_AddNumberToObject(j, "infer_p10_ms", 1e3 * p->ti[0]);
        cJSON_AddNumberToObject(j, "infer_p50_ms", 1e3 * p->ti[1]);
        cJSON_AddNumberToObject(j, "infer_p90_ms", 1e3 * p->ti[2]);
        cJSON_AddNumberToObject(j, "infer_img_per_s", infer_img_s(p));
        cJSON_AddNumberToObject(j, "gflops", gflops(ri, p));
        cJSON_AddNumberToObject(j, "pct_sgemm", 100 * gflops(ri, p) / p->sgemm);
        cJSON_AddNumberToObject(j, "peak_rss_mb", mib(p->peak_rss));
        if (!p->lt) continue;
        cJSON_AddNumberToObject(j, "update_ms", 1e3 * p->update_s);
        cJSON *ls = cJSON_AddArrayToObject(j, "layers");
        for (int k = 0; ls && k < ri->n_layers; k++) {
            const gn_layer_time *x = &p->lt[k];
            cJSON *l = cJSON_CreateObject();
            cJSON_AddItemToArray(ls, l);
            cJSON_AddNumberToObject(l, "index", k);
            cJSON_AddStringToObject(l, "type", ri->layers[k].ops->section);
            cJSON_AddNumberToObject(l, "fwd_ms", 1e3 * x->fwd);
            cJSON_AddNumberToObject(l, "bwd_ms", 1e3 * x->bwd);
            cJSON_AddNumberToObject(l, "fwd_im2col_ms", 1e3 * x->pf.im2col);
            cJSON_AddNumberToObject(l, "fwd_sgemm_ms", 1e3 * x->pf.gemm);
            cJSON_AddNumberToObject(l, "bwd_col2im_ms", 1e3 * x->pb.im2col);
            cJSON_AddNumberToObject(l, "bwd_sgemm_ms", 1e3 * x->pb.gemm);
            cJSON_AddNumberToObject(l, "flops_per_image", ri->layers[k].flops);
            cJSON_AddNumberToObject(l, "flops_bwd_per_image", ri->layers[k].flops_bwd);
        }
    }
    text = cJSON_Print(root);
    if (!text) goto done;
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "gemmnet bench: cannot write %s: %s\n", path, strerror(errno));
        goto done;
    }
    int bad = fputs(text, f) < 0 || fputc('\n', f) == EOF;
    if (fclose(f) || bad) {
        fprintf(stderr, "gemmnet bench: error writing %s\n", path);
        goto done;
    }
    rc = 0;
done:
    if (rc && !text) fprintf(stderr, "gemmnet bench: out of memory building the JSON report\n");
    free(text);
    cJSON_Delete(root);
    return rc;
}

/* ---- the SVG chart ---- */

static void xml_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '&') fputs("&amp;", f);
        else if (*s == '"') fputs("&quot;", f);
        else fputc(*s, f);
    }
}

/* A "nice" axis maximum and step (1, 2 or 5 times a power of ten) for values up to v. */
static void nice_axis(double v, double *top, double *step)
{
    if (!(v > 0)) v = 1;
    double raw = v / 5, p = pow(10, floor(log10(raw))), m = raw / p;
    *step = (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
    *top = ceil(v / *step) * *step;
}

static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd",
                                      "#ff7f0e", "#17becf", "#8c564b", "#e377c2"};

typedef struct panel {
    double x0, y0, w, h;     /* plot area */
    double bmin, bmax;       /* batch range (log2 axis) */
    double ymax;
} panel;

static double px(const panel *p, double batch)
{
    double a = log2(p->bmin), b = log2(p->bmax);
    double t = b > a ? (log2(batch) - a) / (b - a) : 0.5;
    return p->x0 + p->w * (0.04 + 0.92 * t);
}

static double py(const panel *p, double v) { return p->y0 + p->h * (1 - v / p->ymax); }

static void axes(FILE *f, const panel *p, double step, const char *title, const char *ylabel,
                 const int *bs, int nb)
{
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" class=\"label\" font-weight=\"bold\">", p->x0,
            p->y0 - 8);
    xml_text(f, title);
    fputs("</text>\n", f);
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#fff\" "
               "stroke=\"#444\"/>\n", p->x0, p->y0, p->w, p->h);
    for (double v = 0; v <= p->ymax * 1.0001; v += step) {
        double y = py(p, v);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n",
                p->x0, y, p->x0 + p->w, y);
        char lab[32];
        if (p->ymax >= 10000 && v > 0)
            snprintf(lab, sizeof lab, "%gk", v / 1000);
        else
            snprintf(lab, sizeof lab, "%g", v);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" class=\"tick\">%s</text>\n",
                p->x0 - 6, y + 4, lab);
    }
    for (int i = 0; i < nb; i++) {
        double x = px(p, bs[i]);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>\n", x,
                p->y0, x, p->y0 + p->h);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#444\"/>\n", x,
                p->y0 + p->h, x, p->y0 + p->h + 5);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" class=\"tick\">%d</text>\n",
                x, p->y0 + p->h + 18, bs[i]);
    }
    fprintf(f, "<text transform=\"translate(%.1f,%.1f) rotate(-90)\" text-anchor=\"middle\" "
               "class=\"label\">", p->x0 - 52, p->y0 + p->h / 2);
    xml_text(f, ylabel);
    fputs("</text>\n", f);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" class=\"label\">batch size "
               "(log scale)</text>\n", p->x0 + p->w / 2, p->y0 + p->h + 38);
}

/* One line over the points of thread count t: what = 0 train img/s, 1 inference img/s,
 * 2 peak RSS MiB, 3 planned MiB. */
static void series(FILE *f, const panel *pn, const point *pts, int n, int t, int what,
                   const char *color, const char *dash, const char *cls)
{
    fprintf(f, "<polyline class=\"%s t%d\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s%s%s "
               "points=\"", cls, t, color, dash ? " stroke-dasharray=\"" : "", dash ? dash : "",
            dash ? "\"" : "");
    for (int i = 0; i < n; i++) {
        const point *p = &pts[i];
        if (p->threads != t || (p->status != PT_RAN && what != 3)) continue;
        double v = what == 0 ? img_s(p) : what == 1 ? infer_img_s(p)
                 : what == 2 ? mib(p->peak_rss) : mib(p->planned);
        fprintf(f, "%.1f,%.1f ", px(pn, p->batch), py(pn, v));
    }
    fputs("\"/>\n", f);
    for (int i = 0; i < n; i++) {
        const point *p = &pts[i];
        if (p->threads != t || (p->status != PT_RAN && what != 3)) continue;
        double v = what == 0 ? img_s(p) : what == 1 ? infer_img_s(p)
                 : what == 2 ? mib(p->peak_rss) : mib(p->planned);
        if (what == 3) continue;
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\" stroke=\"%s\"/>\n",
                px(pn, p->batch), py(pn, v), what == 0 || what == 2 ? color : "#fff", color);
    }
}

static int write_svg(const char *path, const bench_opts *o, const run_info *ri, const point *pts,
                     int n)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "gemmnet bench: cannot write %s: %s\n", path, strerror(errno));
        return 1;
    }
    const double W = 1040, H = 720;
    double bmin = 1e30, bmax = 0, tmax = 0, mmax = 0;
    int nofit = 0;
    for (int i = 0; i < o->n_batches; i++) {
        bmin = fmin(bmin, o->batches[i]);
        bmax = fmax(bmax, o->batches[i]);
    }
    for (int i = 0; i < n; i++) {
        const point *p = &pts[i];
        if (p->status == PT_RAN) {
            tmax = fmax(tmax, fmax(img_s(p), infer_img_s(p)));
            mmax = fmax(mmax, mib(p->peak_rss));
        }
        if (p->status != PT_FAILED) mmax = fmax(mmax, mib(p->planned));
        if (p->status == PT_NOFIT) nofit = 1;
    }
    if (nofit) mmax = fmax(mmax, mib(ri->max_mem));
    double tstep, mstep;
    panel top = {90, 110, 620, 310, bmin, bmax, 1}, bot = {90, 510, 620, 140, bmin, bmax, 1};
    nice_axis(tmax * 1.05, &top.ymax, &tstep);
    nice_axis(mmax * 1.05, &bot.ymax, &mstep);
    const char *base = strrchr(ri->config, '/');
    base = base ? base + 1 : ri->config;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
               "viewBox=\"0 0 %.0f %.0f\" font-family=\"Helvetica, Arial, sans-serif\">\n",
            W, H, W, H);
    fputs("<style>.tick{font-size:12px;fill:#333}.label{font-size:13px;fill:#222}"
          ".title{font-size:18px;font-weight:bold;fill:#111}.sub{font-size:12px;fill:#555}"
          ".legend{font-size:12px;fill:#222}</style>\n", f);
    fprintf(f, "<rect width=\"%.0f\" height=\"%.0f\" fill=\"#fafafa\"/>\n", W, H);
    fputs("<text x=\"90\" y=\"34\" class=\"title\">gemmnet bench: ", f);
    xml_text(f, base);
    fprintf(f, ", %dx%dx%d input, images/s against batch size</text>\n", ri->in.c, ri->in.h,
            ri->in.w);
    fputs("<text x=\"90\" y=\"54\" class=\"sub\">", f);
    xml_text(f, ri->cpu);
    fprintf(f, ", %d core%s; ", ri->cores, ri->cores == 1 ? "" : "s");
    /* "OpenBLAS 0.3.21 (openmp)" out of the long configuration string */
    const char *blas = gn_blas_info(), *par = strrchr(blas, '(');
    const char *sp = strchr(blas, ' ');
    sp = sp ? strchr(sp + 1, ' ') : NULL;
    fprintf(f, "%.*s %s", sp ? (int)(sp - blas) : (int)strlen(blas), blas, sp && par ? par : "");
    fprintf(f, "; gemmnet %s (%s); %.2f GFLOP per trained image</text>\n", GN_VERSION,
            GN_BUILD_TYPE, (ri->flops + ri->flops_bwd) / 1e9);
    fprintf(f, "<text x=\"90\" y=\"72\" class=\"sub\">training step = forward + backward + SGD "
               "update; median of %d steps after %d warm-up; whiskers: p10-p90</text>\n",
            o->iters, o->warmup);
    axes(f, &top, tstep, "throughput: training (solid) and inference (dashed)",
         "images per second", o->batches, o->n_batches);
    axes(f, &bot, mstep, "memory: peak resident (solid) and planned buffers (dotted)",
         "MiB", o->batches, o->n_batches);
    if (nofit) {
        double y = py(&bot, mib(ri->max_mem));
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#888\" "
                   "stroke-dasharray=\"8,3,2,3\"/>\n<text x=\"%.1f\" y=\"%.1f\" class=\"tick\" "
                   "text-anchor=\"end\">memory limit %.0f MiB</text>\n", bot.x0, y,
                bot.x0 + bot.w, y, bot.x0 + bot.w - 4, y - 4, mib(ri->max_mem));
    }
    for (int k = 0; k < o->n_threads; k++) {
        int t = o->threads[k];
        const char *c = palette[k % (int)(sizeof palette / sizeof palette[0])];
        /* p10-p90 whiskers of training throughput */
        for (int i = 0; i < n; i++) {
            const point *p = &pts[i];
            if (p->threads != t || p->status != PT_RAN) continue;
            double x = px(&top, p->batch);
            fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                       "stroke-opacity=\"0.5\"/>\n", x, py(&top, p->batch / p->t[2]), x,
                    py(&top, p->batch / p->t[0]), c);
        }
        series(f, &top, pts, n, t, 0, c, NULL, "train");
        series(f, &top, pts, n, t, 1, c, "6,4", "infer");
        series(f, &bot, pts, n, t, 2, c, NULL, "rss");
        series(f, &bot, pts, n, t, 3, c, "2,3", "planned");
        for (int i = 0; i < n; i++) {
            const point *p = &pts[i];
            if (p->threads != t || p->status == PT_RAN) continue;
            double x = px(&top, p->batch);
            fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" class=\"tick\" "
                       "style=\"fill:%s\">%s</text>\n", x, top.y0 + top.h - 8 - 14 * k, c,
                    p->status == PT_NOFIT ? "no fit" : "failed");
        }
    }
    /* legend, right of the panels */
    double lx = 740, ly = 120;
    fputs("<text x=\"740\" y=\"120\" class=\"label\" font-weight=\"bold\">threads</text>\n", f);
    for (int k = 0; k < o->n_threads; k++) {
        const char *c = palette[k % (int)(sizeof palette / sizeof palette[0])];
        double y = ly + 22 + 20 * k;
        fprintf(f, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"%s\" "
                   "stroke-width=\"3\"/>\n", lx, y - 4, lx + 28, y - 4, c);
        fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" class=\"legend\">%d thread%s (sgemm %.0f "
                   "GFLOP/s)</text>\n", lx + 36, y, o->threads[k], o->threads[k] == 1 ? "" : "s",
                ri->sgemm[k]);
    }
    double y = ly + 40 + 20 * o->n_threads;
    fprintf(f, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"#444\" "
               "stroke-width=\"2\"/><text x=\"%.0f\" y=\"%.0f\" class=\"legend\">training "
               "(top), peak RSS (bottom)</text>\n", lx, y - 4, lx + 28, y - 4, lx + 36, y);
    y += 20;
    fprintf(f, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"#444\" "
               "stroke-width=\"2\" stroke-dasharray=\"6,4\"/><text x=\"%.0f\" y=\"%.0f\" "
               "class=\"legend\">inference (forward only)</text>\n", lx, y - 4, lx + 28, y - 4,
            lx + 36, y);
    y += 20;
    fprintf(f, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"#444\" "
               "stroke-width=\"2\" stroke-dasharray=\"2,3\"/><text x=\"%.0f\" y=\"%.0f\" "
               "class=\"legend\">planned buffers (bottom)</text>\n", lx, y - 4, lx + 28, y - 4,
            lx + 36, y);
    fputs("</svg>\n", f);
    int bad = ferror(f);
    if (fclose(f) || bad) {
        fprintf(stderr, "gemmnet bench: error writing %s\n", path);
        return 1;
    }
    return 0;
}

/* ---- the command ---- */

int cmd_bench(int argc, char **argv)
{
    bench_opts o;
    memset(&o, 0, sizeof o);
    int a = parse_args(&o, argc, argv);
    if (a) return a > 0 ? 0 : 2;
    gn_cfg *cfg = cli_load_config(&o.c);
    if (!cfg) return 1;
    if (o.point_b > 0) {
        int rc = child_point(&o, cfg, stdout);
        gn_cfg_free(&cfg);
        return rc;
    }
    int rc = 1;
    gn_err err = {0};
    gn_net *plan = NULL;
    point *pts = NULL;
    run_info ri;
    memset(&ri, 0, sizeof ri);
    int n_pts = o.n_batches * o.n_threads, ran = 0, failed = 0;
    ri.config = o.c.config;
    ri.cores = gn_bench_cores();
    for (int k = 0; k < o.n_threads; k++) /* 0 means all cores: name the real count */
        if (o.threads[k] == 0) o.threads[k] = ri.cores;
    gn_bench_cpu_model(ri.cpu, sizeof ri.cpu);
    ri.max_mem = o.max_mem > 0 ? o.max_mem : gn_bench_mem_available();
    /* The smallest batch's plan gives names, shapes and FLOPs; every batch is planned below. */
    if (gn_net_plan(&plan, cfg, 1, &err) || gn_net_check_flops(plan, &err)) goto fail;
    if (plan->loss_layer < 0) {
        gn_err_set(&err, GN_ECONFIG, "%s: the network has no loss layer ([softmax] or [cost]), "
                   "so it cannot be trained", cfg->path);
        goto fail;
    }
    ri.in = plan->in;
    ri.n_params = plan->n_params;
    ri.flops = plan->flops;
    ri.flops_bwd = plan->flops_bwd;
    ri.n_layers = plan->n_layers;
    ri.layers = plan->layers;
    pts = calloc((size_t)n_pts, sizeof *pts);
    if (!pts) {
        gn_err_set(&err, GN_ENOMEM, "out of memory");
        goto fail;
    }
    for (int k = 0; k < o.n_threads; k++)
        for (int i = 0; i < o.n_batches; i++) {
            point *p = &pts[k * o.n_batches + i];
            p->batch = o.batches[i];
            p->threads = o.threads[k];
            gn_net *pb = NULL;
            gn_set_threads(p->threads); /* layers size per-thread scratch when planned */
            if (gn_net_plan_flags(&pb, cfg, p->batch, GN_NET_RECOMPUTE, &err)) goto fail;
            p->planned = gn_net_planned_bytes(pb, 1);
            gn_net_free(&pb);
            if (o.layers) {
                p->lt = calloc((size_t)ri.n_layers, sizeof *p->lt);
                if (!p->lt) {
                    gn_err_set(&err, GN_ENOMEM, "out of memory");
                    goto fail;
                }
            }
        }

    char buf[32];
    printf("%s: input %dx%dx%d, %s parameters, %.3f GFLOP forward and %.3f GFLOP per trained "
           "image\n", o.c.config, ri.in.c, ri.in.h, ri.in.w,
           cli_si((double)ri.n_params, buf, sizeof buf), ri.flops / 1e9,
           (ri.flops + ri.flops_bwd) / 1e9);
    printf("machine: %s, %d core%s, %s, gemmnet %s (%s)\n", ri.cpu, ri.cores,
           ri.cores == 1 ? "" : "s", gn_blas_info(),
           GN_VERSION, GN_BUILD_TYPE);
    const char *blas_note = gn_blas_core_note();
    if (blas_note) printf("note: %s\n", blas_note);
    printf("%d warm-up + %d timed steps per point, synthetic data; memory limit %.0f MiB\n",
           o.warmup, o.iters, mib(ri.max_mem));
    for (int k = 0; k < o.n_threads; k++) {
        gn_set_threads(o.threads[k]);
        int t = gn_get_threads();
        if (gn_bench_sgemm(o.sgemm_n, 5, &ri.sgemm[k], &err)) goto fail;
        printf("sgemm %d^3 with %d thread%s: %.1f GFLOP/s (median of 5)\n", o.sgemm_n, t,
               t == 1 ? "" : "s", ri.sgemm[k]);
    }
    printf("\n");
    print_row_header();
    for (int k = 0; k < o.n_threads; k++)
        for (int i = 0; i < o.n_batches; i++) {
            point *p = &pts[k * o.n_batches + i];
            p->sgemm = ri.sgemm[k];
            if (p->planned > ri.max_mem)
                p->status = PT_NOFIT;
            else
                p->status = run_child(&o, p, ri.n_layers);
            ran += p->status == PT_RAN;
            failed += p->status == PT_FAILED;
            print_row(&ri, p);
        }
    if (o.layers)
        for (int i = 0; i < n_pts; i++)
            if (pts[i].status == PT_RAN) print_layers(&ri, &pts[i]);
    int nofit = 0;
    for (int i = 0; i < n_pts; i++) nofit += pts[i].status == PT_NOFIT;
    if (nofit)
        printf("\n%d point%s did not fit: planned buffers above the memory limit of %.0f MiB "
               "(--max-mem)\n", nofit, nofit == 1 ? "" : "s", mib(ri.max_mem));
    int werr = 0;
    if (o.csv) werr |= write_csv(o.csv, &ri, pts, n_pts);
    if (o.json) werr |= write_json(o.json, &o, &ri, pts, n_pts);
    if (o.svg) werr |= write_svg(o.svg, &o, &ri, pts, n_pts);
    if (!ran) fprintf(stderr, "gemmnet bench: no point was measured\n");
    rc = werr || failed || !ran ? 1 : 0;
    goto done;
fail:
    cli_fail(&err);
done:
    for (int i = 0; pts && i < n_pts; i++) free(pts[i].lt);
    free(pts);
    gn_net_free(&plan);
    gn_cfg_free(&cfg);
    return rc;
}
