/* The gradient arena plan (gn_net_plan): gradient buffers whose backward lifetimes overlap
 * never share memory, every buffer lies inside the arena, and deep nets need far less than one
 * buffer per layer. Plans the project's configs (and darknet's, when installed). */
#include "check.h"
#include "gemmnet/gemmnet.h"

#include <unistd.h>

static size_t dy_floats(const gn_net *net, const gn_layer *l)
{
    return (size_t)net->batch * gn_shape_size(l->out);
}

static void check_plan(const char *path, int batch, double max_fraction)
{
    gn_err err = {0};
    gn_cfg *cfg = NULL;
    gn_net *net = NULL;
    if (access(path, R_OK)) {
        printf("skip %s (not found)\n", path);
        return;
    }
    CHECK_MSG(gn_cfg_load(&cfg, path, &err) == GN_OK, "%s", err.msg);
    if (cfg) CHECK_MSG(gn_net_plan(&net, cfg, batch, &err) == GN_OK, "%s", err.msg);
    if (!net) goto done;
    int bad = 0;
    for (int i = 0; i < net->n_layers; i++) {
        const gn_layer *a = &net->layers[i];
        CHECK(a->last_use >= i);
        for (int k = 0; k < a->n_in; k++)
            if (a->in_idx[k] >= 0) CHECK(net->layers[a->in_idx[k]].last_use >= i);
        if (a->dy_off % 16 || a->dy_off + dy_floats(net, a) > net->n_dacts) bad++;
        for (int j = 0; j < i; j++) {
            const gn_layer *b = &net->layers[j];
            int alive_together = a->index <= b->last_use && b->index <= a->last_use;
            int share = a->dy_off < b->dy_off + dy_floats(net, b) &&
                        b->dy_off < a->dy_off + dy_floats(net, a);
            if (alive_together && share) {
                if (bad++ < 5)
                    printf("%s: layers %d and %d are alive together but share memory\n", path,
                           j, i);
            }
        }
    }
    CHECK_MSG(bad == 0, "%s: %d misplaced gradient buffers", path, bad);
    double frac = (double)net->n_dacts / (double)net->n_acts;
    printf("%s: %d layers, gradient arena %.1f%% of the activations\n", path, net->n_layers,
           100.0 * frac);
    CHECK_MSG(frac <= max_fraction, "%s: gradient arena is %.2f of the activations (at most %.2f)",
              path, frac, max_fraction);
done:
    gn_net_free(&net);
    gn_cfg_free(&cfg);
}

int main(int argc, char **argv)
{
    CHECK(argc == 2);
    if (argc != 2) return check_exit();
    char path[1024];
    /* A chain needs two live buffers at a time, a residual net a few more. */
    const char *deep[] = {"resnet18.cfg", "darknet19.cfg", "quickstart.cfg"};
    for (size_t i = 0; i < sizeof deep / sizeof deep[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", argv[1], deep[i]);
        check_plan(path, 4, 0.5);
    }
    snprintf(path, sizeof path, "%s/lecture.cfg", argv[1]);
    check_plan(path, 1, 16.0); /* 2-2-1 values: the 16-float rounding dominates */
    const char *dn[] = {"resnet50.cfg", "darknet19.cfg", "tiny.cfg", "extraction.cfg"};
    for (size_t i = 0; i < sizeof dn / sizeof dn[0]; i++) {
        snprintf(path, sizeof path, "/usr/share/darknet/cfg/%s", dn[i]);
        check_plan(path, 2, 0.5);
    }
    return check_exit();
}
