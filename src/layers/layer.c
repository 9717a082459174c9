#include "layers/layer.h"
#include "core/rng.h"
#include "kernels/winograd.h"

#include <math.h>
#include <string.h>

gn_param *layer_add_param(gn_layer *l, const char *name, int trainable, int ndim, int d0, int d1,
                          int d2, int d3)
{
    GN_ASSERT(l->n_par < GN_MAX_PARAMS);
    gn_param *p = &l->par[l->n_par++];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->trainable = trainable;
    p->ndim = ndim;
    int d[4] = {d0, d1, d2, d3};
    p->count = 1;
    for (int i = 0; i < ndim; i++) {
        p->shape[i] = d[i];
        p->count *= (size_t)d[i];
    }
    if (trainable) {
        p->offset = l->n_params;
        l->n_params += p->count;
    } else {
        p->offset = l->n_state;
        l->n_state += p->count;
    }
    return p;
}

int layer_parse_act(struct gn_cfg_section *s, gn_act def, gn_act *out, gn_err *err)
{
    static const char *const names[] = {"linear", "relu", "leaky", "logistic", "tanh", "ramp",
                                        "relu6", NULL};
    int v;
    int rc = gn_cfg_enum(s, "activation", names, (int)def, &v, err);
    if (rc == GN_OK) *out = (gn_act)v;
    return rc;
}

int layer_parse_winograd(struct gn_cfg_section *s, int def, int *out, gn_err *err)
{
    static const char *const names[] = {"auto", "0", "2", "4", NULL};
    int v;
    int rc = gn_cfg_enum(s, "winograd", names, def == WINOGRAD_AUTO ? 0 : def / 2 + 1, &v, err);
    if (rc == GN_OK) *out = v == 0 ? WINOGRAD_AUTO : 2 * (v - 1);
    return rc;
}

int layer_resolve_index(gn_layer *l, struct gn_cfg_section *s, const char *key, int v, int *out,
                        gn_err *err)
{
    int target = v < 0 ? l->index + v : v;
    if (target < 0 || target >= l->index)
        return gn_cfg_error(gn_cfg_kv_find(s, key), s, err, GN_ECONFIG,
                            "%d points to layer %d, which is not an earlier layer (this is "
                            "layer %d)", v, target, l->index);
    *out = target;
    return GN_OK;
}

void layer_init_uniform(float *w, size_t n, float a, uint64_t seed, int layer, int salt)
{
    gn_rng r = gn_rng_make(gn_rng_key(seed, (uint64_t)layer, (uint64_t)salt));
    for (size_t i = 0; i < n; i++) w[i] = (float)((2.0 * gn_rng_uniform(&r) - 1.0) * a);
}

float layer_init_bound(int fan_in, gn_act act)
{
    /* He for rectifiers, LeCun otherwise: variance 2/fan_in or 1/fan_in, as uniform bounds. */
    double var = (act == GN_ACT_RELU || act == GN_ACT_LEAKY || act == GN_ACT_RAMP ||
                  act == GN_ACT_RELU6) ? 2.0 : 1.0;
    return (float)sqrt(3.0 * var / (fan_in > 0 ? fan_in : 1));
}

int layer_parse_init_list(gn_layer *l, struct gn_cfg_section *s, const char *key, size_t count,
                          float **out, int *given, gn_err *err)
{
    (void)l;
    *given = 0;
    *out = NULL;
    gn_cfg_kv *kv = gn_cfg_kv_find(s, key);
    if (!kv) return GN_OK;
    if (count > 1u << 20)
        return gn_cfg_error(kv, s, err, GN_ECONFIG, "explicit values are for small layers only");
    float *v = malloc((count + 1) * sizeof *v);
    if (!v) return gn_err_set(err, GN_ENOMEM, "out of memory");
    int n = 0;
    int rc = gn_cfg_float_list(s, key, v, (int)count + 1, &n, err);
    if (rc == GN_OK && (size_t)n != count)
        rc = gn_cfg_error(kv, s, err, GN_ECONFIG, "%d values given, the layer has %zu", n, count);
    if (rc) {
        free(v);
        return rc;
    }
    *out = v;
    *given = 1;
    return GN_OK;
}
