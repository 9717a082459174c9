/* Helpers every layer file shares: parameter bookkeeping, initialization, common keys. */
#ifndef GN_LAYERS_LAYER_H
#define GN_LAYERS_LAYER_H

#include "gemmnet/gemmnet.h"
#include "core/util.h"

/* Appends a parameter (trainable: to params, else to state) with PyTorch's shape; returns it. */
gn_param *layer_add_param(gn_layer *l, const char *name, int trainable, int ndim, int d0, int d1,
                          int d2, int d3);
/* The layer's param or state slice for p. */
static inline float *layer_param(gn_layer *l, const gn_param *p)
{
    return (p->trainable ? l->params : l->state) + p->offset;
}
static inline float *layer_grad(gn_layer *l, const gn_param *p)
{
    GN_ASSERT(p->trainable);
    return l->grads + p->offset;
}

/* activation=... (default def), with the list of names in the error. */
int layer_parse_act(struct gn_cfg_section *s, gn_act def, gn_act *out, gn_err *err);
/* winograd=auto|0|2|4 (default def; auto is WINOGRAD_AUTO): the convolution algorithm, see
 * docs/layers.md. */
int layer_parse_winograd(struct gn_cfg_section *s, int def, int *out, gn_err *err);
/* "from"/"layers" style index: negative is relative to layer l, else absolute. Errors when the
 * target does not exist or is not earlier than l. */
int layer_resolve_index(gn_layer *l, struct gn_cfg_section *s, const char *key, int v, int *out,
                        gn_err *err);
/* Uniform(-a, a) into w, from a key derived from (seed, layer index, salt). */
void layer_init_uniform(float *w, size_t n, float a, uint64_t seed, int layer, int salt);
/* The He/Xavier bound for fan_in inputs followed by activation act. */
float layer_init_bound(int fan_in, gn_act act);
/* init_weights=/init_bias= lists (explicit initial values, e.g. the lecture example): copies
 * them when present; errors if the count is wrong. Returns 1 in *given when present. */
int layer_parse_init_list(gn_layer *l, struct gn_cfg_section *s, const char *key, size_t count,
                          float **out, int *given, gn_err *err);

#endif
