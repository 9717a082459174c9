/* Measurements for `gemmnet bench`: planned memory and FLOPs of a net, the sgemm rate, memory
 * figures from /proc, the SGD update, and a step timed layer by layer. */
#include "gemmnet/bench.h"
#include "core/util.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

double gn_net_planned_bytes(const gn_net *net, int with_momentum)
{
    double floats = (2.0 + (with_momentum ? 1.0 : 0.0)) * (double)net->n_params +
                    (double)net->n_state + (double)net->n_acts + (double)net->n_dacts +
                    (double)net->ws_floats +
                    (double)net->n_save +
                    (double)net->batch * (double)gn_shape_size(net->in) +
                    (double)net->batch * (double)net->n_classes;
    return 4.0 * floats + (double)net->batch * sizeof(int);
}

int gn_net_check_flops(const gn_net *net, gn_err *err)
{
    double f = 0, b = 0;
    for (int i = 0; i < net->n_layers; i++) {
        const gn_layer *l = &net->layers[i];
        if (!isfinite(l->flops) || !isfinite(l->flops_bwd) || l->flops < 0 || l->flops_bwd < 0)
            return gn_err_set(err, GN_ESHAPE, "layer %d [%s] plans %g forward and %g backward "
                              "FLOPs", i, l->ops->section, l->flops, l->flops_bwd);
        f += l->flops;
        b += l->flops_bwd;
    }
    if (fabs(f - net->flops) > 1e-9 * fmax(1.0, f) || fabs(b - net->flops_bwd) > 1e-9 * fmax(1.0, b))
        return gn_err_set(err, GN_ESHAPE, "the net counts %g + %g FLOPs per image, its layers "
                          "%g + %g", net->flops, net->flops_bwd, f, b);
    return GN_OK;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int gn_bench_sgemm(int n, int reps, double *gflops, gn_err *err)
{
    *gflops = 0;
    if (n < 1 || reps < 1 || reps > 1000)
        return gn_err_set(err, GN_EINVAL, "sgemm benchmark: bad size %d or repeats %d", n, reps);
    size_t nn = (size_t)n * (size_t)n;
    float *a = gn_alloc(nn, sizeof(float)), *b = gn_alloc(nn, sizeof(float));
    float *c = gn_alloc(nn, sizeof(float));
    double *t = malloc((size_t)reps * sizeof *t);
    int rc = GN_OK;
    if (!a || !b || !c || !t) {
        rc = gn_err_set(err, GN_ENOMEM, "sgemm benchmark: out of memory for %d x %d", n, n);
        goto done;
    }
    for (size_t i = 0; i < nn; i++) {
        a[i] = (float)((i * 7 + 3) % 13) * 0.01f - 0.06f;
        b[i] = (float)((i * 5 + 1) % 11) * 0.01f - 0.05f;
    }
    for (int r = -1; r < reps; r++) {
        double t0 = gn_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f,
                    c, n);
        if (r >= 0) t[r] = gn_now() - t0;
    }
    qsort(t, (size_t)reps, sizeof *t, cmp_double);
    double med = reps % 2 ? t[reps / 2] : 0.5 * (t[reps / 2 - 1] + t[reps / 2]);
    *gflops = 2.0 * (double)n * (double)n * (double)n / med / 1e9;
done:
    gn_free(a);
    gn_free(b);
    gn_free(c);
    free(t);
    return rc;
}

/* The value of "key:" in a /proc file of "key: value kB" lines, in bytes; 0 if absent. */
static double proc_kb(const char *path, const char *key)
{
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[256];
    size_t k = strlen(key);
    double v = 0;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, k) && line[k] == ':') {
            v = 1024.0 * strtod(line + k + 1, NULL);
            break;
        }
    fclose(f);
    return v;
}

double gn_bench_peak_rss(void) { return proc_kb("/proc/self/status", "VmHWM"); }

double gn_bench_mem_available(void) { return proc_kb("/proc/meminfo", "MemAvailable"); }

void gn_bench_cpu_model(char *buf, size_t n)
{
    snprintf(buf, n, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10)) continue;
        char *v = strchr(line, ':');
        if (!v) continue;
        v++;
        while (*v == ' ' || *v == '\t') v++;
        v[strcspn(v, "\n")] = 0;
        snprintf(buf, n, "%s", v);
        break;
    }
    fclose(f);
}

int gn_bench_cores(void)
{
    cpu_set_t cpus;
    return gn_process_cpus(&cpus);
}

/* The backward hook that times layer i: the seconds and kernel parts since the previous layer
 * finished (so the zeroing of the gradient buffers whose lifetime starts at i counts to i);
 * then the caller's own hook, timed apart. */
typedef struct step_clock {
    gn_layer_time *t;
    gn_prof *prof;
    double since;
    void (*next)(void *user, int layer);
    void *next_user;
    double hook_s;
} step_clock;

static void time_backward(void *user, int i)
{
    step_clock *k = user;
    double now = gn_now();
    k->t[i].bwd += now - k->since;
    k->t[i].pb.im2col += k->prof->im2col;
    k->t[i].pb.gemm += k->prof->gemm;
    memset(k->prof, 0, sizeof *k->prof);
    if (k->next) {
        k->next(k->next_user, i);
        double after = gn_now();
        k->hook_s += after - now;
        now = after;
    }
    k->since = now;
}

double gn_net_step_timed(gn_net *net, const gn_ctx *ctx, int backward, gn_layer_time *t,
                         double *hook_s)
{
    GN_ASSERT(ctx->batch >= 1 && ctx->batch <= net->batch);
    gn_prof prof;
    gn_ctx c = *ctx;
    c.prof = &prof;
    for (int i = 0; i < net->n_layers; i++) {
        gn_layer *l = &net->layers[i];
        if (l->is_loss) {
            l->labels = net->labels;
            l->targets = net->targets;
        }
        memset(&prof, 0, sizeof prof);
        double t0 = gn_now();
        if (l->view_of < 0) l->ops->forward(l, &c);
        t[i].fwd += gn_now() - t0;
        t[i].pf.im2col += prof.im2col;
        t[i].pf.gemm += prof.gemm;
    }
    double loss = net->loss_layer >= 0 ? net->layers[net->loss_layer].loss : 0.0;
    if (!backward) return loss;
    GN_ASSERT(net->loss_layer >= 0);
    step_clock clock = {t, &prof, 0, ctx->on_backward, ctx->hook_user, 0};
    c.on_backward = time_backward;
    c.hook_user = &clock;
    memset(&prof, 0, sizeof prof);
    clock.since = gn_now();
    gn_net_backward(net, &c);
    if (hook_s) *hook_s += clock.hook_s;
    return loss;
}
