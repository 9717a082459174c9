/* What a trainer may read from a [softmax] layer beyond gn_layer. */
#ifndef GN_LAYERS_SOFTMAX_LAYER_H
#define GN_LAYERS_SOFTMAX_LAYER_H

#include "gemmnet/net.h"

/* Images of the last forward whose label was >= the number of outputs (bad data): they were
 * left out of the loss and its gradient. 0 when l is not a [softmax] layer. */
int softmax_bad_labels(const gn_layer *l);
/* Images of the last forward that counted in the loss (label in range). */
int softmax_counted(const gn_layer *l);

#endif
