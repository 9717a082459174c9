/* darknet .weights files. */
#include "gemmnet/gemmnet.h"
#include "gemmnet/interop.h"

int gn_darknet_weights_save(const char *path, const gn_net *net, gn_err *err)
{
    (void)path;
    (void)net;
    return gn_err_set(err, GN_ENOTSUP, "writing darknet .weights is not implemented yet");
}
