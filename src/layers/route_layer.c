/* [route]: concatenates the outputs of earlier layers along channels, in the listed order.
 * x_k:(N,C_k,H,W) -> y:(N,sum C_k,H,W). One input: a copy of that layer's output.
 * Key: layers (a list of up to GN_MAX_INPUTS indexes; negative is relative). Every input must
 * have the same H and W. Backward splits dy back (+=), so a layer listed twice gets both parts.
 * FLOPs: none counted (copies only). With one input the net may make it a view of that layer
 * (gn_layer.view_of), and then runs neither its forward nor its backward. */
#include "layers/layer.h"

#include <string.h>

static int route_parse(gn_layer *l, struct gn_cfg_section *s, gn_err *err)
{
    int v[GN_MAX_INPUTS], n = 0, rc;
    if (!gn_cfg_has(s, "layers"))
        return gn_cfg_error(NULL, s, err, GN_ECONFIG, "missing key 'layers' (the layers to "
                            "concatenate)");
    if ((rc = gn_cfg_int_list(s, "layers", v, GN_MAX_INPUTS, &n, err))) return rc;
    for (int k = 0; k < n; k++)
        if ((rc = layer_resolve_index(l, s, "layers", v[k], &l->in_idx[k], err))) return rc;
    l->n_in = n;
    return GN_OK;
}

static int route_plan(gn_layer *l, gn_err *err)
{
    gn_shape o = l->in[0];
    for (int k = 1; k < l->n_in; k++) {
        gn_shape s = l->in[k];
        if (s.h != o.h || s.w != o.w)
            return gn_cfg_error(gn_cfg_kv_find(l->sec, "layers"), l->sec, err, GN_ESHAPE,
                                "layer %d's output is %dx%dx%d but layer %d's is %dx%dx%d "
                                "(C x H x W): concatenation needs the same H and W",
                                l->in_idx[0], l->in[0].c, l->in[0].h, l->in[0].w, l->in_idx[k],
                                s.c, s.h, s.w);
        o.c += s.c;
    }
    l->out = o;
    l->flops = l->flops_bwd = 0;
    l->bwd_ignores_x = 1;
    l->can_view = l->n_in == 1; /* y is x[0]: the net may share it instead of copying */
    return GN_OK;
}

static void route_forward(gn_layer *l, const gn_ctx *ctx)
{
    size_t dy = gn_shape_size(l->out);
    for (int m = 0; m < ctx->batch; m++) {
        size_t off = (size_t)m * dy;
        for (int k = 0; k < l->n_in; k++) {
            size_t d = gn_shape_size(l->in[k]);
            memcpy(l->y + off, l->x[k] + (size_t)m * d, d * sizeof(float));
            off += d;
        }
    }
}

static void route_backward(gn_layer *l, const gn_ctx *ctx)
{
    size_t dout = gn_shape_size(l->out);
    for (int m = 0; m < ctx->batch; m++) {
        size_t off = (size_t)m * dout;
        for (int k = 0; k < l->n_in; k++) {
            size_t d = gn_shape_size(l->in[k]);
            if (l->dx[k]) {
                float *dx = l->dx[k] + (size_t)m * d;
                const float *dy = l->dy + off;
                for (size_t i = 0; i < d; i++) dx[i] += dy[i];
            }
            off += d;
        }
    }
}

const gn_layer_ops gn_route_ops = {
    .section = "route",
    .parse = route_parse,
    .plan = route_plan,
    .forward = route_forward,
    .backward = route_backward,
};
