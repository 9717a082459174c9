/* The layer types gemmnet knows, by config section name. One file per layer type. */
#include "gemmnet/net.h"

#include <string.h>

extern const gn_layer_ops gn_connected_ops;
extern const gn_layer_ops gn_cost_ops;
extern const gn_layer_ops gn_maxpool_ops;
extern const gn_layer_ops gn_avgpool_ops;
extern const gn_layer_ops gn_dropout_ops;
extern const gn_layer_ops gn_shortcut_ops;
extern const gn_layer_ops gn_route_ops;
extern const gn_layer_ops gn_softmax_ops;
extern const gn_layer_ops gn_activation_ops;
extern const gn_layer_ops gn_convolutional_ops;
extern const gn_layer_ops gn_batchnorm_ops;
extern const gn_layer_ops gn_crop_ops;

static const gn_layer_ops *const registry[] = {
    &gn_connected_ops,
    &gn_cost_ops,
    &gn_maxpool_ops,
    &gn_avgpool_ops,
    &gn_dropout_ops,
    &gn_shortcut_ops,
    &gn_route_ops,
    &gn_softmax_ops,
    &gn_activation_ops,
    &gn_convolutional_ops,
    &gn_batchnorm_ops,
    &gn_crop_ops,
};

size_t gn_layer_section_names(const char **names, size_t max)
{
    size_t n = sizeof registry / sizeof registry[0];
    for (size_t i = 0; i < n && i < max; i++) names[i] = registry[i]->section;
    return n;
}

const gn_layer_ops *gn_layer_ops_find(const char *section)
{
    for (size_t i = 0; i < sizeof registry / sizeof registry[0]; i++)
        if (!strcmp(registry[i]->section, section)) return registry[i];
    return NULL;
}
