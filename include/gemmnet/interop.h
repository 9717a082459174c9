/* Weights in other tools' formats: darknet's .weights (in and out) and ONNX (out).
 * docs/interop.md lists what each covers and how it is verified. */
#ifndef GEMMNET_INTEROP_H
#define GEMMNET_INTEROP_H

struct gn_err;
struct gn_net;

/* Writes net's parameters and state as a darknet .weights file at path (atomically: a
 * temporary file renamed into place). */
int gn_darknet_weights_save(const char *path, const struct gn_net *net, struct gn_err *err);

/* Writes net (its graph, parameters and state, evaluation mode) as an ONNX model at path
 * (atomically). A layer ONNX cannot express is refused by name (GN_ENOTSUP). */
int gn_onnx_export(const char *path, const struct gn_net *net, struct gn_err *err);

#endif
