#include "kernels/activation.h"

#include <math.h>
#include <string.h>

void act_forward(float *restrict y, size_t n, gn_act a)
{
    switch (a) {
    case GN_ACT_LINEAR: break;
    case GN_ACT_RELU:
#pragma omp parallel for simd schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++) y[i] = y[i] > 0 ? y[i] : 0;
        break;
    case GN_ACT_LEAKY:
#pragma omp parallel for simd schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++) y[i] = y[i] > 0 ? y[i] : 0.1f * y[i];
        break;
    case GN_ACT_LOGISTIC:
#pragma omp parallel for schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++) y[i] = 1.0f / (1.0f + expf(-y[i]));
        break;
    case GN_ACT_TANH:
#pragma omp parallel for schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++) y[i] = tanhf(y[i]);
        break;
    case GN_ACT_RAMP:
#pragma omp parallel for simd schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++) y[i] = y[i] > 0 ? 1.1f * y[i] : 0.1f * y[i];
        break;
    case GN_ACT_RELU6:
#pragma omp parallel for simd schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++) y[i] = y[i] > 0 ? (y[i] < 6 ? y[i] : 6) : 0;
        break;
    }
}

void act_backward(float *restrict dy, const float *restrict y, size_t n, gn_act a)
{
    switch (a) {
    case GN_ACT_LINEAR: break;
    case GN_ACT_RELU:
#pragma omp parallel for simd schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++) dy[i] = y[i] > 0 ? dy[i] : 0;
        break;
    case GN_ACT_LEAKY:
#pragma omp parallel for simd schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++) dy[i] = y[i] > 0 ? dy[i] : 0.1f * dy[i];
        break;
    case GN_ACT_LOGISTIC:
#pragma omp parallel for simd schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++) dy[i] *= y[i] * (1.0f - y[i]);
        break;
    case GN_ACT_TANH:
#pragma omp parallel for simd schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++) dy[i] *= 1.0f - y[i] * y[i];
        break;
    case GN_ACT_RAMP:
#pragma omp parallel for simd schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++) dy[i] = y[i] > 0 ? 1.1f * dy[i] : 0.1f * dy[i];
        break;
    case GN_ACT_RELU6:
        /* PyTorch's hardtanh_backward: the gradient passes strictly between the kinks, so
         * exactly 0 and exactly 6 (the clamped values) give 0. */
#pragma omp parallel for simd schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++) dy[i] = y[i] > 0 && y[i] < 6 ? dy[i] : 0;
        break;
    }
}

static const char *const act_names[] = {"linear", "relu", "leaky", "logistic", "tanh", "ramp",
                                          "relu6"};

int gn_act_parse(const char *name, gn_act *out)
{
    for (int i = 0; i < (int)(sizeof act_names / sizeof act_names[0]); i++)
        if (!strcmp(name, act_names[i])) {
            *out = (gn_act)i;
            return 0;
        }
    return -1;
}

const char *gn_act_name(gn_act a) { return act_names[a]; }
