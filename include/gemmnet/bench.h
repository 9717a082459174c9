/* Measuring the engine: FLOPs and planned memory of a network, the machine's sgemm rate, peak
 * resident memory, and a training step timed layer by layer. `gemmnet bench` is built on these;
 * they print nothing. */
#ifndef GEMMNET_BENCH_H
#define GEMMNET_BENCH_H

#include "gemmnet/gemmnet.h"

/* Bytes of the buffers a net plans for its batch: parameters and gradients (and momentum when
 * with_momentum), state, activations and their gradients, scratch, saved memory, input, labels,
 * targets. Works on a net from gn_net_plan, i.e. before anything is allocated. */
double gn_net_planned_bytes(const gn_net *net, int with_momentum);

/* Checks that net->flops and net->flops_bwd are the sums of the layers' plan values and that
 * every value is finite and not negative; GN_ESHAPE with the offending layer otherwise. */
int gn_net_check_flops(const gn_net *net, gn_err *err);

/* The median rate, in GFLOP/s, of `reps` cblas_sgemm calls C = A B with n x n matrices at the
 * current thread count (one untimed call first). */
int gn_bench_sgemm(int n, int reps, double *gflops, gn_err *err);

/* Peak resident set size of this process (VmHWM in /proc/self/status), bytes; 0 if unknown.
 * A process-wide high-water mark: it never goes down. */
double gn_bench_peak_rss(void);
/* MemAvailable from /proc/meminfo, bytes; 0 if unknown. */
double gn_bench_mem_available(void);
/* The CPU's model name from /proc/cpuinfo ("unknown" if none) into buf. */
void gn_bench_cpu_model(char *buf, size_t n);
/* The CPUs this process may run on: its affinity mask (taskset, cgroups), or OpenMP's places
 * when OpenMP binds threads (gn_process_cpus). */
int gn_bench_cores(void);

/* Seconds spent in one layer during one step. */
typedef struct gn_layer_time {
    double fwd, bwd;   /* the layer's forward and backward calls */
    gn_prof pf, pb;    /* the parts its kernels reported (im2col, sgemm) in each */
} gn_layer_time;

/* One forward pass (and, when backward, the backward pass) like gn_net_forward/backward, but
 * running the layers one at a time and adding each call's seconds into t[layer] (n_layers
 * entries). ctx->prof is replaced by the profiler's own; ctx->on_backward (an SGD step folded
 * into backward) still runs after each layer, its seconds added to *hook_s (hook_s may be
 * NULL), not to the layer's. Returns the loss. */
double gn_net_step_timed(gn_net *net, const gn_ctx *ctx, int backward, gn_layer_time *t,
                         double *hook_s);

#endif
