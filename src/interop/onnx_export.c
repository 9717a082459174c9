/* ONNX export. */
#include "gemmnet/gemmnet.h"
#include "gemmnet/interop.h"

int gn_onnx_export(const char *path, const gn_net *net, gn_err *err)
{
    (void)path;
    (void)net;
    return gn_err_set(err, GN_ENOTSUP, "ONNX export is not implemented yet");
}
