/* curves.svg: training loss, validation loss and accuracy against iterations, drawn from
 * metrics.csv as a self-contained SVG that any browser opens. */
#include "gemmnet/gemmnet.h"
#include "gemmnet/train.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct series {
    double *x, *y;
    int n, cap;
} series;

static int push(series *s, double x, double y)
{
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 256;
        double *nx = realloc(s->x, (size_t)cap * sizeof *nx);
        if (!nx) return -1;
        s->x = nx;
        double *ny = realloc(s->y, (size_t)cap * sizeof *ny);
        if (!ny) return -1;
        s->y = ny;
        s->cap = cap;
    }
    s->x[s->n] = x;
    s->y[s->n] = y;
    s->n++;
    return 0;
}

/* Splits a CSV line in place into at most n fields. */
static int fields(char *line, char **f, int n)
{
    int k = 0;
    f[k++] = line;
    for (char *p = line; *p && k < n; p++)
        if (*p == ',') {
            *p = 0;
            f[k++] = p + 1;
        }
    for (int i = 0; i < k; i++) f[i][strcspn(f[i], "\r\n")] = 0;
    return k;
}

static double nice_step(double range, int ticks)
{
    double raw = range / ticks, mag = pow(10, floor(log10(raw))), r = raw / mag;
    return (r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10) * mag;
}

typedef struct panel {
    double x0, y0, w, h;       /* plot area in pixels */
    double xmin, xmax, ymin, ymax;
} panel;

static double px(const panel *p, double x) { return p->x0 + (x - p->xmin) / (p->xmax - p->xmin) * p->w; }
static double py(const panel *p, double y) { return p->y0 + p->h - (y - p->ymin) / (p->ymax - p->ymin) * p->h; }

static void axes(FILE *f, const panel *p, const char *title, const char *ylabel)
{
    fprintf(f, "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' fill='#fff' stroke='#999'/>\n",
            p->x0, p->y0, p->w, p->h);
    double xs = nice_step(p->xmax - p->xmin, 6), ys = nice_step(p->ymax - p->ymin, 5);
    for (double x = ceil(p->xmin / xs) * xs; x <= p->xmax + 1e-9; x += xs) {
        fprintf(f, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#eee'/>\n", px(p, x),
                p->y0, px(p, x), p->y0 + p->h);
        fprintf(f, "<text x='%.1f' y='%.1f' text-anchor='middle'>%g</text>\n", px(p, x),
                p->y0 + p->h + 16, x);
    }
    for (double y = ceil(p->ymin / ys) * ys; y <= p->ymax + 1e-9; y += ys) {
        fprintf(f, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#eee'/>\n", p->x0,
                py(p, y), p->x0 + p->w, py(p, y));
        fprintf(f, "<text x='%.1f' y='%.1f' text-anchor='end'>%g</text>\n", p->x0 - 6,
                py(p, y) + 4, fabs(y) < 1e-12 ? 0.0 : y);
    }
    fprintf(f, "<text x='%.1f' y='%.1f' text-anchor='middle' font-size='15' font-weight='bold'>"
            "%s</text>\n", p->x0 + p->w / 2, p->y0 - 10, title);
    fprintf(f, "<text x='%.1f' y='%.1f' text-anchor='middle'>iteration</text>\n",
            p->x0 + p->w / 2, p->y0 + p->h + 36);
    fprintf(f, "<text transform='translate(%.1f,%.1f) rotate(-90)' text-anchor='middle'>%s"
            "</text>\n", p->x0 - 48, p->y0 + p->h / 2, ylabel);
}

static void line(FILE *f, const panel *p, const series *s, const char *color, int dots)
{
    if (!s->n) return;
    fprintf(f, "<polyline fill='none' stroke='%s' stroke-width='2' points='", color);
    for (int i = 0; i < s->n; i++) fprintf(f, "%.1f,%.1f ", px(p, s->x[i]), py(p, s->y[i]));
    fprintf(f, "'/>\n");
    if (dots)
        for (int i = 0; i < s->n; i++)
            fprintf(f, "<circle cx='%.1f' cy='%.1f' r='3' fill='%s'/>\n", px(p, s->x[i]),
                    py(p, s->y[i]), color);
}

static void legend(FILE *f, const panel *p, int row, const char *color, const char *name)
{
    double x = p->x0 + p->w - 130, y = p->y0 + 18 + 18 * row;
    fprintf(f, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='%s' stroke-width='3'/>\n",
            x, y - 4, x + 22, y - 4, color);
    fprintf(f, "<text x='%.1f' y='%.1f'>%s</text>\n", x + 28, y, name);
}

static void range(const series *a, const series *b, double *lo, double *hi, double *xmax)
{
    const series *ss[2] = {a, b};
    for (int k = 0; k < 2; k++)
        for (int i = 0; ss[k] && i < ss[k]->n; i++) {
            if (ss[k]->y[i] < *lo) *lo = ss[k]->y[i];
            if (ss[k]->y[i] > *hi) *hi = ss[k]->y[i];
            if (ss[k]->x[i] > *xmax) *xmax = ss[k]->x[i];
        }
}

int gn_plot_metrics(const char *dir, gn_err *err)
{
    char path[4200], out[4200], tmp[4300];
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    snprintf(out, sizeof out, "%s/curves.svg", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    FILE *in = fopen(path, "r");
    if (!in) return gn_err_set(err, GN_EIO, "cannot read %s: %s", path, strerror(errno));
    series loss = {0}, vloss = {0}, top1 = {0}, top5 = {0};
    char buf[1024], *f[16];
    int col[9], rc = GN_OK;
    const char *names[9] = {"iter", "epoch", "loss", "lr", "img_per_s", "data_wait", "val_loss",
                            "val_top1", "val_top5"};
    if (!fgets(buf, sizeof buf, in)) {
        fclose(in);
        return gn_err_set(err, GN_EFORMAT, "%s is empty", path);
    }
    int nf = fields(buf, f, 16);
    for (int j = 0; j < 9; j++) {
        col[j] = -1;
        for (int i = 0; i < nf; i++)
            if (!strcmp(f[i], names[j])) col[j] = i;
    }
    if (col[0] < 0 || col[2] < 0) {
        fclose(in);
        return gn_err_set(err, GN_EFORMAT, "%s has no iter/loss columns", path);
    }
    while (fgets(buf, sizeof buf, in)) {
        nf = fields(buf, f, 16);
        double x = atof(f[0]);
        const int want[4] = {2, 6, 7, 8};
        series *dst[4] = {&loss, &vloss, &top1, &top5};
        for (int k = 0; k < 4; k++) {
            int c = col[want[k]];
            if (c >= 0 && c < nf && f[c][0] && push(dst[k], x, atof(f[c]))) rc = GN_ENOMEM;
        }
    }
    fclose(in);
    FILE *o = rc ? NULL : fopen(tmp, "w");
    if (!o) {
        if (!rc) rc = gn_err_set(err, GN_EIO, "cannot write %s: %s", tmp, strerror(errno));
        else gn_err_set(err, rc, "out of memory");
        goto done;
    }
    int two = top1.n > 0;
    double W = two ? 1000 : 520, H = 380;
    fprintf(o, "<svg xmlns='http://www.w3.org/2000/svg' width='%.0f' height='%.0f' "
            "viewBox='0 0 %.0f %.0f' font-family='sans-serif' font-size='12'>\n", W, H, W, H);
    fprintf(o, "<rect width='100%%' height='100%%' fill='#fafafa'/>\n");
    double lo = INFINITY, hi = -INFINITY, xmax = 1;
    range(&loss, &vloss, &lo, &hi, &xmax);
    if (!(lo < hi)) {
        lo = isfinite(lo) ? lo - 1 : 0;
        hi = lo + 2;
    }
    if (lo > 0 && lo < 0.5 * hi) lo = 0;
    panel pl = {70, 40, 410, 280, 0, xmax, lo, hi + 0.05 * (hi - lo)};
    axes(o, &pl, "loss", "loss");
    line(o, &pl, &loss, "#1f77b4", 0);
    line(o, &pl, &vloss, "#d62728", 1);
    legend(o, &pl, 0, "#1f77b4", "training");
    if (vloss.n) legend(o, &pl, 1, "#d62728", "validation");
    if (two) {
        panel pa = {570, 40, 410, 280, 0, xmax, 0, 100};
        axes(o, &pa, "validation accuracy", "percent");
        line(o, &pa, &top1, "#2ca02c", 1);
        line(o, &pa, &top5, "#9467bd", 1);
        pa.y0 += 180;
        legend(o, &pa, 0, "#2ca02c", "top-1");
        legend(o, &pa, 1, "#9467bd", "top-5");
    }
    fprintf(o, "</svg>\n");
    int werr = ferror(o);
    if (fclose(o) || werr || rename(tmp, out)) {
        rc = gn_err_set(err, GN_EIO, "cannot write %s: %s", out, strerror(errno));
        remove(tmp); /* a full disk must not leave a partial curves.svg.tmp behind */
    }
done:
    free(loss.x); free(loss.y); free(vloss.x); free(vloss.y);
    free(top1.x); free(top1.y); free(top5.x); free(top5.y);
    return rc;
}
