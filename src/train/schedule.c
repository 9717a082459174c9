/* Learning-rate schedules (darknet's policies and meaning, plus cosine). */
#include "gemmnet/train.h"
#include "gemmnet/net.h"
#include "core/rng.h"
#include "core/util.h"

#include <math.h>

static double policy_lr(const gn_schedule *s, int64_t iter);

double gn_schedule_lr(const gn_schedule *s, int64_t iter)
{
    if (iter < 0) iter = 0;
    double lr = policy_lr(s, iter);
    /* torch's LinearLR(start_factor, total_iters=warmup), chained with the policy */
    if (s->warmup > 0 && iter < s->warmup)
        lr *= s->warmup_start + (1.0 - s->warmup_start) * (double)iter / (double)s->warmup;
    return lr;
}

/* darknet's burn_in, then the policy */
static double policy_lr(const gn_schedule *s, int64_t iter)
{
    if (s->burn_in > 0 && iter < s->burn_in)
        return s->lr * pow((double)iter / (double)s->burn_in, s->power);
    double t = (double)iter;
    switch (s->policy) {
    case GN_POLICY_CONSTANT: return s->lr;
    case GN_POLICY_STEP: return s->lr * pow(s->scale, (double)(iter / (s->step > 0 ? s->step : 1)));
    case GN_POLICY_STEPS: {
        double lr = s->lr;
        for (int i = 0; i < s->n_steps; i++) {
            if (s->steps[i] > iter) break;
            lr *= s->scales[i];
        }
        return lr;
    }
    case GN_POLICY_EXP: return s->lr * pow(s->gamma, t);
    case GN_POLICY_POLY: {
        double f = s->max_batches > 0 ? 1.0 - t / (double)s->max_batches : 1.0;
        return s->lr * pow(f > 0 ? f : 0.0, s->power);
    }
    case GN_POLICY_SIGMOID: return s->lr / (1.0 + exp(s->gamma * (t - (double)s->step)));
    case GN_POLICY_RANDOM: {
        gn_rng r = gn_rng_make(gn_rng_key(s->seed, (uint64_t)iter, 0x5eed));
        return s->lr * pow(gn_rng_uniform(&r), s->power);
    }
    case GN_POLICY_COSINE: {
        double f = s->max_batches > 0 ? t / (double)s->max_batches : 0.0;
        if (f > 1) f = 1;
        return s->lr_min + 0.5 * (s->lr - s->lr_min) * (1.0 + cos(3.141592653589793 * f));
    }
    }
    return s->lr;
}
