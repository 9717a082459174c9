/* Building a network from a config: parse every layer section, plan shapes and sizes, allocate
 * the flat buffers once, wire each layer's inputs, outputs and gradients, initialize. */
#include "gemmnet/gemmnet.h"
#include "gemmnet/bench.h"
#include "core/util.h"
#include "layers/layer.h"
#include "kernels/winograd.h"

#include <stdlib.h>
#include <string.h>

/* [net] winograd= when absent: per shape, F(4x4,3x3) where it pays (docs/performance.md,
 * "Winograd"). */
#define GN_WINOGRAD_DEFAULT WINOGRAD_AUTO

static int read_input_shape(gn_cfg *cfg, gn_shape *in, gn_err *err)
{
    gn_cfg_section *s = gn_cfg_section_find(cfg, "net");
    int rc, inputs;
    if ((rc = gn_cfg_int(s, "inputs", 0, 0, 1 << 28, &inputs, err))) return rc;
    if ((rc = gn_cfg_int(s, "channels", inputs ? 1 : 3, 1, 4096, &in->c, err))) return rc;
    if ((rc = gn_cfg_int(s, "width", inputs ? 1 : 0, 1, 16384, &in->w, err))) return rc;
    if ((rc = gn_cfg_int(s, "height", inputs ? 1 : 0, 1, 16384, &in->h, err))) return rc;
    if (inputs) {
        if (in->w != 1 || in->h != 1)
            return gn_cfg_error(gn_cfg_kv_find(s, "inputs"), s, err, GN_ECONFIG,
                                "give either inputs= (a vector) or width/height, not both");
        in->c = inputs;
    }
    if (gn_shape_size(*in) > (size_t)1 << 28)
        return gn_cfg_error(NULL, s, err, GN_ECONFIG, "input of %dx%dx%d is too large", in->c,
                            in->h, in->w);
    return GN_OK;
}

/* The lowest layer whose backward has to run. With frozen layers (fine-tuning) and no
 * gradient wanted with respect to the input (net->dinput), that is the first layer with
 * trainable parameters that are not frozen: below it nothing needs a gradient, so its
 * backward is skipped and no layer writes dL/dx into it (n_layers when nothing trains).
 * Else 0: every layer's backward runs, as a net without frozen layers always did. */
static int first_backward(const gn_net *net)
{
    int any = 0;
    for (int i = 0; i < net->n_layers; i++) any |= net->layers[i].frozen;
    if (net->dinput || !any) return 0;
    for (int i = 0; i < net->n_layers; i++)
        if (net->layers[i].n_params && !net->layers[i].frozen) return i;
    return net->n_layers;
}

static void wire(gn_net *net)
{
    size_t off = 0, soff = 0, save_off = 0;
    int first = first_backward(net);
    for (int i = 0; i < net->n_layers; i++) {
        gn_layer *l = &net->layers[i];
        l->params = net->params + off;
        l->grads = net->grads + off;
        off += l->n_params;
        l->state = net->state + soff;
        soff += l->n_state;
        const gn_layer *r = l->view_of >= 0 ? &net->layers[l->view_of] : l;
        l->y = net->acts + r->y_off;
        l->dy = net->dacts + r->dy_off;
        l->save = l->save_floats ? net->save + save_off : NULL;
        save_off += l->save_floats;
        for (int k = 0; k < l->n_in; k++) {
            int p = l->in_idx[k];
            l->x[k] = p < 0 ? net->input : net->layers[p].y;
            l->dx[k] = p < 0 ? net->dinput : p < first ? NULL : net->layers[p].dy;
        }
    }
}

/* Buffers planned into a shared arena: a size and one or two lifetimes, in steps of one time
 * axis for forward and backward (see step_fwd/step_bwd). Two buffers alive at one step never
 * share memory. */
typedef struct span {
    size_t floats, off;
    int n;
    int t0[2], t1[2];
} span;

/* Forward runs layer i at step i, backward runs it at step 2n-1-i. */
static int step_fwd(int i) { return i; }
static int step_bwd(const gn_net *net, int i) { return 2 * net->n_layers - 1 - i; }

static int spans_meet(const span *a, const span *b)
{
    for (int i = 0; i < a->n; i++)
        for (int j = 0; j < b->n; j++)
            if (a->t0[i] <= b->t1[j] && b->t0[j] <= a->t1[i]) return 1;
    return 0;
}

/* Floats rounded up to 16 so every buffer starts on a 64-byte line. */
static size_t round16f(size_t n) { return (n + 15) & ~(size_t)15; }

/* Greedy placement, largest buffer first: each goes to the lowest offset free of every placed
 * buffer it meets. Returns the arena size in floats, or (size_t)-1 when out of memory. */
static size_t place_spans(span *sp, int n)
{
    int *order = malloc((size_t)(n > 0 ? n : 1) * sizeof *order);
    if (!order) return (size_t)-1;
    for (int i = 0; i < n; i++) order[i] = i;
    for (int i = 1; i < n; i++) /* insertion sort: size descending, then index */
        for (int j = i; j > 0; j--) {
            size_t a = sp[order[j]].floats, b = sp[order[j - 1]].floats;
            if (a < b || (a == b && order[j] > order[j - 1])) break;
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        span *a = &sp[order[i]];
        a->off = 0;
        /* Step past every placed buffer in the way until the gap fits; layers are tens to
         * hundreds, so the repeated scan is cheap. */
        for (int moved = 1; moved;) {
            moved = 0;
            for (int j = 0; j < i; j++) {
                const span *o = &sp[order[j]];
                if (spans_meet(a, o) && a->off < o->off + o->floats &&
                    o->off < a->off + a->floats) {
                    a->off = o->off + o->floats;
                    moved = 1;
                }
            }
        }
        total = GN_MAX(total, a->off + a->floats);
    }
    free(order);
    return total;
}

/* Gradients: layer i's dy lives in backward from its last consumer's step (which starts writing
 * it) to its own (which reads it last). Activations: see gn_net in net.h. Fills dy_off, y_off,
 * transient, n_dacts and n_acts. */
static int plan_arenas(gn_net *net)
{
    int n = net->n_layers;
    for (int i = 0; i < n; i++) net->layers[i].last_use = i;
    for (int j = 0; j < n; j++)
        for (int k = 0; k < net->layers[j].n_in; k++) {
            int p = net->layers[j].in_idx[k];
            if (p >= 0) net->layers[p].last_use = GN_MAX(net->layers[p].last_use, j);
        }
    /* Views (GN_NET_RECOMPUTE): a one-input route of a layer that keeps its output shares that
     * layer's buffers, whose lifetimes then cover the view's readers too. In index order, so a
     * view of a view resolves to the first layer. */
    for (int i = 0; i < n; i++) {
        gn_layer *l = &net->layers[i];
        l->view_of = -1;
        if (!(net->flags & GN_NET_RECOMPUTE) || !l->can_view || l->in_idx[0] < 0 ||
            i == n - 1 || i == net->loss_layer)
            continue;
        int r = l->in_idx[0];
        if (net->layers[r].view_of >= 0) r = net->layers[r].view_of;
        if (net->layers[r].recomputable) continue; /* it may not keep its output */
        l->view_of = r;
        net->layers[r].last_use = GN_MAX(net->layers[r].last_use, l->last_use);
    }
    /* Without GN_NET_RECOMPUTE: outputs one after the other in acts, gradients placed in
     * dacts. With it: outputs and gradients placed together in one arena (acts; dacts points
     * into it), so a gradient can reuse an output's memory after its last use and the reverse:
     * spans [0, n) are the gradients, [n, 2n) the outputs. */
    int unified = (net->flags & GN_NET_RECOMPUTE) != 0;
    span *sp = malloc((size_t)2 * n * sizeof *sp);
    if (!sp) return -1;
    for (int i = 0; i < n; i++) {
        const gn_layer *l = &net->layers[i];
        size_t floats = l->view_of >= 0 ? 0 : (size_t)net->batch * gn_shape_size(l->out);
        sp[i] = (span){.floats = round16f(floats), .n = 1,
                       .t0 = {step_bwd(net, l->last_use)}, .t1 = {step_bwd(net, i)}};
    }
    size_t total = 0;
    net->n_acts = 0;
    if (!unified) {
        total = place_spans(sp, n);
        for (int i = 0; i < n; i++) {
            gn_layer *l = &net->layers[i];
            l->dy_off = sp[i].off;
            l->transient = 0;
            l->rebuild_at = -1;
            l->y_off = net->n_acts;
            net->n_acts += (size_t)net->batch * gn_shape_size(l->out);
        }
        net->n_dacts = total;
    } else {
        for (int i = 0; i < n; i++) {
            gn_layer *l = &net->layers[i];
            span *y = &sp[n + i];
            l->transient = l->recomputable && l->ops->recompute && l->last_use > i &&
                           i != n - 1 && i != net->loss_layer;
            *y = (span){.floats = l->view_of >= 0 ? 0
                                                  : round16f((size_t)net->batch *
                                                             gn_shape_size(l->out)),
                        .n = 1, .t0 = {step_fwd(i)}};
            l->rebuild_at = -1;
            if (l->transient) {
                /* Alive in forward until its last consumer ran; rebuilt in backward only for
                 * the consumers whose backward reads it (a convolution's weight gradient, not
                 * a max pool, a shortcut or a route), from the last of them to the first. Its
                 * own backward works from what it saved. */
                for (int j = l->last_use; j > i; j--)
                    for (int k = 0; k < net->layers[j].n_in; k++)
                        if (net->layers[j].in_idx[k] == i && !net->layers[j].bwd_ignores_x) {
                            if (l->rebuild_at < 0) l->rebuild_at = j;
                            l->read_until = j;
                        }
                y->t1[0] = step_fwd(l->last_use);
                if (l->rebuild_at >= 0) {
                    y->n = 2;
                    y->t0[1] = step_bwd(net, l->rebuild_at);
                    y->t1[1] = step_bwd(net, l->read_until);
                }
            } else {
                /* The output and the loss layer's y are read after the step (accuracy, the
                 * loss): they stay to the end. */
                int last = i == n - 1 || i == net->loss_layer;
                y->t1[0] = last ? step_bwd(net, 0) : step_bwd(net, i);
            }
        }
        total = place_spans(sp, 2 * n);
        for (int i = 0; i < n; i++) {
            net->layers[i].dy_off = sp[i].off;
            net->layers[i].y_off = sp[n + i].off;
        }
        net->n_acts = total;
        net->n_dacts = 0;
    }
    free(sp);
    return total == (size_t)-1 ? -1 : 0;
}

/* Keys every layer section takes (docs/fine-tuning.md): darknet's stopbackward=1 (this layer
 * and all before it are frozen: no backward, no update, batch norm in evaluation mode) and
 * lr_mult= (this layer's learning rate is the schedule's times lr_mult; 0 stops its updates). */
static int parse_finetune_keys(gn_layer *l, gn_cfg_section *s, int *stop_below, gn_err *err)
{
    int rc, stop;
    double mult;
    if ((rc = gn_cfg_bool(s, "stopbackward", 0, &stop, err))) return rc;
    if (stop) *stop_below = l->index + 1;
    if ((rc = gn_cfg_float(s, "lr_mult", 1.0, 0.0, 1e6, &mult, err))) return rc;
    l->lr_mult = (float)mult;
    return GN_OK;
}

/* [train] freeze=N: the first N layers are frozen (N < 0: all but the last -N), the same as
 * stopbackward=1 on layer N-1; the larger of the two wins. */
static int apply_freeze(gn_net *net, gn_cfg *cfg, int stop_below, gn_err *err)
{
    gn_cfg_section *tr = gn_cfg_section_find(cfg, "train");
    int n = net->n_layers, freeze, rc;
    if ((rc = gn_cfg_int(tr, "freeze", 0, -n, n, &freeze, err))) return rc;
    if (freeze < 0) freeze += n;
    if (freeze > stop_below) stop_below = freeze;
    for (int i = 0; i < stop_below; i++) net->layers[i].frozen = 1;
    return GN_OK;
}

int gn_net_plan(gn_net **out, gn_cfg *cfg, int batch, gn_err *err)
{
    return gn_net_plan_flags(out, cfg, batch, 0, err);
}

int gn_net_plan_flags(gn_net **out, gn_cfg *cfg, int batch, unsigned flags, gn_err *err)
{
    *out = NULL;
    if (batch < 1) return gn_err_set(err, GN_EINVAL, "batch must be at least 1 (got %d)", batch);
    gn_net *net = calloc(1, sizeof *net);
    if (!net) return gn_err_set(err, GN_ENOMEM, "out of memory");
    net->cfg = cfg;
    net->batch = batch;
    net->flags = flags;
    net->loss_layer = -1;
    int rc = read_input_shape(cfg, &net->in, err);
    if (rc) goto fail;
    /* net.recompute=0 turns the training memory saver off where the caller allows it. */
    int recompute;
    if ((rc = gn_cfg_bool(gn_cfg_section_find(cfg, "net"), "recompute", 1, &recompute, err)))
        goto fail;
    if (!recompute) net->flags &= ~GN_NET_RECOMPUTE;
    int winograd;
    rc = layer_parse_winograd(gn_cfg_section_find(cfg, "net"), GN_WINOGRAD_DEFAULT, &winograd,
                              err);
    if (rc) goto fail;
    if (cfg->n_layers == 0) {
        rc = gn_err_set(err, GN_ECONFIG, "%s: the config has no layers", cfg->path);
        goto fail;
    }
    int stop_below = 0; /* layers [0, stop_below) are frozen by stopbackward= */
    net->layers = calloc((size_t)cfg->n_layers, sizeof *net->layers);
    if (!net->layers) {
        rc = gn_err_set(err, GN_ENOMEM, "out of memory");
        goto fail;
    }
    for (int i = 0; i < cfg->n_layers; i++) {
        gn_cfg_section *s = gn_cfg_layer(cfg, i);
        gn_layer *l = &net->layers[i];
        net->n_layers = i + 1;
        l->index = i;
        l->view_of = -1;
        l->sec = s;
        l->batch = batch;
        l->winograd = winograd;
        l->lr_mult = 1.0f;
        l->ops = gn_layer_ops_find(s->name);
        if (!l->ops) {
            const char *types[64];
            size_t n = gn_layer_section_names(types, 64);
            const char *near = gn_cfg_nearest_section(s->name, types, n < 64 ? n : 64);
            if (near)
                rc = gn_cfg_error(NULL, s, err, GN_ECONFIG, "unknown section [%s]; did you mean "
                                  "[%s]?", s->name, near);
            else
                rc = gn_cfg_error(NULL, s, err, GN_ECONFIG, "unknown section [%s]", s->name);
            goto fail;
        }
        l->n_in = 1;
        l->in_idx[0] = i - 1;
        if ((rc = l->ops->parse(l, s, err))) goto fail;
        if ((rc = parse_finetune_keys(l, s, &stop_below, err))) goto fail;
        if ((rc = gn_cfg_check_unused(s, err))) goto fail;
        for (int k = 0; k < l->n_in; k++) {
            int p = l->in_idx[k];
            GN_ASSERT(p >= -1 && p < i);
            l->in[k] = p < 0 ? net->in : net->layers[p].out;
        }
        if ((rc = l->ops->plan(l, err))) goto fail;
        if (gn_shape_size(l->out) == 0 || l->out.c < 1 || l->out.h < 1 || l->out.w < 1) {
            rc = gn_cfg_error(NULL, s, err, GN_ESHAPE,
                              "the output would be empty (%dx%dx%d): input %dx%dx%d is too "
                              "small for this layer", l->out.c, l->out.h, l->out.w,
                              l->in[0].c, l->in[0].h, l->in[0].w);
            goto fail;
        }
        if (l->is_loss) net->loss_layer = i;
        net->n_params += l->n_params;
        net->n_state += l->n_state;
        net->n_save += l->save_floats;
        net->ws_floats = GN_MAX(net->ws_floats, l->ws_floats);
        net->flops += l->flops;
        net->flops_bwd += l->flops_bwd;
    }
    if ((rc = apply_freeze(net, cfg, stop_below, err))) goto fail;
    net->n_classes = (int)gn_shape_size(net->layers[net->n_layers - 1].out);
    if (plan_arenas(net)) {
        rc = gn_err_set(err, GN_ENOMEM, "out of memory");
        goto fail;
    }
    *out = net;
    return GN_OK;
fail:
    gn_net_free(&net);
    return rc;
}

double gn_net_memory_limit(void)
{
    const char *e = getenv("GEMMNET_MAX_MEM");
    if (e && *e) {
        char *end;
        double v = strtod(e, &end);
        double unit = 1048576.0;
        if (*end == 'K' || *end == 'k') unit = 1024.0, end++;
        else if (*end == 'M' || *end == 'm') end++;
        else if (*end == 'G' || *end == 'g') unit = 1073741824.0, end++;
        if (*end == 'i' && end[-1] != 'i') end++; /* "MiB" */
        if (*end == 'B') end++;
        if (!*end && v > 0) return v * unit;
    }
    return gn_bench_mem_available();
}

int gn_net_check_memory(const gn_net *net, int with_momentum, gn_err *err)
{
    return gn_net_check_memory_plus(net, with_momentum, 0, NULL, err);
}

int gn_net_check_memory_plus(const gn_net *net, int with_momentum, double extra_bytes,
                             const char *extra_what, gn_err *err)
{
    double limit = gn_net_memory_limit();
    double need = gn_net_planned_bytes(net, with_momentum) + extra_bytes;
    if (limit <= 0 || need <= limit) return GN_OK;
    const char *e = getenv("GEMMNET_MAX_MEM");
    char extra[256] = "";
    if (extra_bytes > 0)
        snprintf(extra, sizeof extra, ", %s %.0f MiB", extra_what ? extra_what : "other buffers",
                 extra_bytes / 1048576.0);
    return gn_err_set(err, GN_ENOMEM, "the network needs %.0f MiB for batch %d (activations and "
                      "their gradients %.0f MiB, parameters %.0f MiB%s), the machine has %.0f "
                      "MiB available (%s): lower the batch, raise subdivisions or shrink the "
                      "input", need / 1048576.0, net->batch,
                      4.0 * ((double)net->n_acts + (double)net->n_dacts) / 1048576.0,
                      4.0 * (2.0 + with_momentum) * (double)net->n_params / 1048576.0, extra,
                      limit / 1048576.0,
                      e && *e ? "GEMMNET_MAX_MEM" : "MemAvailable in /proc/meminfo; "
                      "GEMMNET_MAX_MEM=MiB overrides it");
}

int gn_net_build(gn_net **out, gn_cfg *cfg, int batch, uint64_t seed, gn_err *err)
{
    return gn_net_build_flags(out, cfg, batch, seed, 0, err);
}

int gn_net_build_flags(gn_net **out, gn_cfg *cfg, int batch, uint64_t seed, unsigned flags,
                       gn_err *err)
{
    gn_net *net;
    int rc = gn_net_plan_flags(&net, cfg, batch, flags, err);
    *out = NULL;
    if (rc) return rc;
    if ((rc = gn_net_check_memory(net, 0, err))) goto fail;
    net->params = gn_alloc(net->n_params, sizeof(float));
    net->grads = gn_alloc(net->n_params, sizeof(float));
    net->state = gn_alloc(net->n_state, sizeof(float));
    net->acts = gn_alloc(net->n_acts, sizeof(float));
    /* With GN_NET_RECOMPUTE the gradients live in the activation arena (plan_arenas). */
    net->dacts = net->n_dacts ? gn_alloc(net->n_dacts, sizeof(float)) : net->acts;
    net->ws = gn_alloc(net->ws_floats, sizeof(float));
    net->save = gn_alloc(net->n_save, sizeof(float));
    net->input = gn_alloc((size_t)batch * gn_shape_size(net->in), sizeof(float));
    net->labels = gn_alloc((size_t)batch, sizeof(int));
    net->targets = gn_alloc((size_t)batch * (size_t)net->n_classes, sizeof(float));
    if (!net->params || !net->grads || !net->state || !net->acts || !net->dacts || !net->ws ||
        !net->save || !net->input || !net->labels || !net->targets) {
        double mb = 4.0 * (2.0 * (double)net->n_params + (double)net->n_state +
                           (double)net->n_acts + (double)net->n_dacts +
                           (double)net->ws_floats +
                           (double)net->n_save) / 1048576.0;
        rc = gn_err_set(err, GN_ENOMEM, "cannot allocate the network's buffers (%.0f MiB for "
                        "batch %d)", mb, batch);
        goto fail;
    }
    wire(net);
    for (int i = 0; i < net->n_layers; i++)
        if (net->layers[i].ops->init) net->layers[i].ops->init(&net->layers[i], seed);
    *out = net;
    return GN_OK;
fail:
    gn_net_free(&net);
    return rc;
}

void gn_net_free(gn_net **pnet)
{
    if (!pnet || !*pnet) return;
    gn_net *net = *pnet;
    for (int i = 0; i < net->n_layers; i++)
        if (net->layers[i].ops && net->layers[i].ops->destroy)
            net->layers[i].ops->destroy(&net->layers[i]);
    free(net->layers);
    gn_free(net->params);
    gn_free(net->grads);
    gn_free(net->state);
    gn_free(net->acts);
    if (net->dacts != net->acts) gn_free(net->dacts);
    gn_free(net->ws);
    gn_free(net->save);
    gn_free(net->input);
    gn_free(net->dinput);
    gn_free(net->labels);
    gn_free(net->targets);
    free(net);
    *pnet = NULL;
}

int gn_net_enable_dinput(gn_net *net, gn_err *err)
{
    if (net->dinput) return GN_OK;
    net->dinput = gn_alloc((size_t)net->batch * gn_shape_size(net->in), sizeof(float));
    if (!net->dinput) return gn_err_set(err, GN_ENOMEM, "out of memory");
    wire(net);
    return GN_OK;
}

gn_ctx gn_net_ctx(gn_net *net, int train)
{
    gn_ctx c;
    memset(&c, 0, sizeof c);
    c.batch = net->batch;
    c.train = train;
    c.loss_scale = 1.0f / (float)net->batch;
    c.ws = net->ws;
    return c;
}

double gn_net_forward(gn_net *net, const gn_ctx *ctx)
{
    GN_ASSERT(ctx->batch >= 1 && ctx->batch <= net->batch);
    for (int i = 0; i < net->n_layers; i++) {
        gn_layer *l = &net->layers[i];
        if (l->is_loss) {
            l->labels = net->labels;
            l->targets = net->targets;
        }
        if (l->view_of < 0) l->ops->forward(l, ctx); /* a view has nothing to do */
    }
    return net->loss_layer >= 0 ? net->layers[net->loss_layer].loss : 0.0;
}

void gn_net_zero_dacts(gn_net *net)
{
    /* With GN_NET_RECOMPUTE gradients and outputs share one arena: there is no gradient arena
     * to zero on its own (gn_net_backward zeroes each dy when its lifetime starts). */
    GN_ASSERT(!(net->flags & GN_NET_RECOMPUTE));
    gn_zero_floats(net->dacts, net->n_dacts);
    if (net->dinput) memset(net->dinput, 0, (size_t)net->batch * gn_shape_size(net->in) * 4);
}

static void zero_dy(const gn_layer *l, const gn_ctx *ctx)
{
    gn_zero_floats(l->dy, (size_t)ctx->batch * gn_shape_size(l->out));
}

void gn_net_backward_from(gn_net *net, const gn_ctx *ctx, int layer)
{
    GN_ASSERT(layer >= 0 && layer < net->n_layers);
    GN_ASSERT(!net->layers[layer].transient);
    /* Buffers whose lifetime started above `layer` (their writers do not run): zero (and
     * rebuild) now. They are alive at step `layer`, so none shares memory with the seed. */
    for (int p = 0; p < layer; p++)
        if (net->layers[p].view_of < 0 && net->layers[p].last_use > layer) {
            zero_dy(&net->layers[p], ctx);
            /* rebuilt now only if a reader runs (its lifetime then spans this step) */
            if (net->layers[p].rebuild_at > layer && net->layers[p].read_until <= layer)
                net->layers[p].ops->recompute(&net->layers[p], ctx);
        }
    if (net->dinput) memset(net->dinput, 0, (size_t)ctx->batch * gn_shape_size(net->in) * 4);
    /* Below `first` nothing needs a gradient (frozen layers, see wire): stop there. */
    int first = first_backward(net);
    for (int i = layer; i >= first; i--) {
        gn_layer *l = &net->layers[i];
        /* A dy's lifetime starts here when this is its last consumer, or (nobody reads the
         * layer) its own step: zero it before anything adds into it. */
        if (i != layer && l->view_of < 0 && l->last_use == i) zero_dy(l, ctx);
        /* The same for the inputs whose last consumer this is (through a view: the layer it
         * views); a transient input is rebuilt here, its backward lifetime starting now. */
        for (int k = 0; k < l->n_in; k++) {
            int p = l->in_idx[k];
            if (p >= 0 && net->layers[p].view_of >= 0) p = net->layers[p].view_of;
            if (p < 0) continue;
            if (net->layers[p].last_use == i) zero_dy(&net->layers[p], ctx);
            if (net->layers[p].rebuild_at == i)
                net->layers[p].ops->recompute(&net->layers[p], ctx);
        }
        if (l->view_of < 0) l->ops->backward(l, ctx);
        if (ctx->on_backward) ctx->on_backward(ctx->hook_user, i);
    }
}

void gn_net_backward(gn_net *net, const gn_ctx *ctx)
{
    GN_ASSERT(net->loss_layer >= 0);
    zero_dy(&net->layers[net->loss_layer], ctx);
    gn_net_backward_from(net, ctx, net->loss_layer);
}

void gn_net_zero_grads(gn_net *net) { gn_zero_floats(net->grads, net->n_params); }

const float *gn_net_output(const gn_net *net) { return net->layers[net->n_layers - 1].y; }

gn_shape gn_net_out_shape(const gn_net *net) { return net->layers[net->n_layers - 1].out; }

float *gn_param_data(const gn_layer *l, const gn_param *p)
{
    return (p->trainable ? l->params : l->state) + p->offset;
}

void gn_param_full_name(const gn_layer *l, const gn_param *p, char *buf, size_t n)
{
    snprintf(buf, n, "layers.%d.%s", l->index, p->name);
}
