/* `gemmnet bench` end to end on a small network: the table runs, the CSV, JSON and SVG files are
 * well formed, and batch sizes over --max-mem are reported as not fitting (not crashed), with
 * the documented exit status. The binary's path comes from $GEMMNET. */
#include "check.h"

#include <cJSON.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[256];

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = 2 * cap + 8192;
            char *b = realloc(buf, cap);
            if (!b) break;
            buf = b;
        }
        size_t k = fread(buf + n, 1, 4096, f);
        n += k;
        if (k < 4096) break;
    }
    fclose(f);
    if (buf) buf[n] = 0;
    return buf;
}

/* Runs `prefix gemmnet bench` with args, stdout and stderr to dir/out.txt; returns the exit
 * status. */
static int bench_in(const char *prefix, const char *args)
{
    const char *exe = getenv("GEMMNET");
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s '%s' bench '%s/net.cfg' %s >'%s/out.txt' 2>&1", prefix, exe,
             dir, args, dir);
    int st = system(cmd);
    char path[512];
    snprintf(path, sizeof path, "%s/out.txt", dir);
    char *out = slurp(path);
    if (out) {
        fputs(out, stdout);
        free(out);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 255;
}

static int bench(const char *args) { return bench_in("", args); }

static int count(const char *s, const char *what)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, what)); p += strlen(what)) n++;
    return n;
}

static void check_csv(const char *text)
{
    CHECK(text != NULL);
    if (!text) return;
    const char *nl = strchr(text, '\n');
    CHECK(nl != NULL);
    if (!nl) return;
    char header[1024];
    snprintf(header, sizeof header, "%.*s", (int)(nl - text), text);
    const char *need[] = {"batch", "threads", "img_per_s", "infer_img_per_s", "gflops",
                          "pct_sgemm", "peak_rss_mb", "p10_ms", "p50_ms", "p90_ms",
                          "planned_mb", "fits"};
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++) {
        char col[64];
        snprintf(col, sizeof col, ",%s,", need[i]);
        char padded[1100];
        snprintf(padded, sizeof padded, ",%s,", header);
        CHECK_MSG(strstr(padded, col) != NULL, "column %s missing in '%s'", need[i], header);
    }
    int cols = count(header, ",") + 1, rows = 0;
    for (const char *p = nl + 1; *p;) {
        const char *e = strchr(p, '\n');
        CHECK_MSG(e != NULL, "last CSV line not terminated");
        if (!e) break;
        char line[1024];
        snprintf(line, sizeof line, "%.*s", (int)(e - p), p);
        CHECK_MSG(count(line, ",") + 1 == cols, "row '%s' has not %d columns", line, cols);
        rows++;
        p = e + 1;
    }
    CHECK_MSG(rows == 4, "%d CSV rows, expected 4 (2 batches x 2 thread counts)", rows);
}

static void check_json(const char *text)
{
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    CHECK_MSG(j != NULL, "the JSON does not parse");
    if (!j) return;
    cJSON *m = cJSON_GetObjectItem(j, "machine");
    CHECK(cJSON_IsObject(m));
    CHECK(cJSON_IsString(cJSON_GetObjectItem(m, "cpu")));
    CHECK(cJSON_IsString(cJSON_GetObjectItem(m, "blas")));
    CHECK(cJSON_IsNumber(cJSON_GetObjectItem(m, "cores")));
    CHECK(cJSON_IsString(cJSON_GetObjectItem(m, "gemmnet_version")));
    CHECK(cJSON_IsString(cJSON_GetObjectItem(m, "build_type")));
    /* 64 -> 32 -> 10 + sse cost: 2*(64*32 + 32*10) + 3*10 forward FLOPs per image */
    cJSON *f = cJSON_GetObjectItem(j, "flops_forward_per_image");
    CHECK(cJSON_IsNumber(f) && f->valuedouble == 2.0 * (64 * 32 + 32 * 10) + 30);
    cJSON *pts = cJSON_GetObjectItem(j, "points");
    CHECK(cJSON_IsArray(pts) && cJSON_GetArraySize(pts) == 4);
    cJSON *p;
    cJSON_ArrayForEach(p, pts)
    {
        CHECK(cJSON_IsNumber(cJSON_GetObjectItem(p, "batch")));
        cJSON *ips = cJSON_GetObjectItem(p, "img_per_s");
        CHECK(cJSON_IsNumber(ips) && ips->valuedouble > 0);
        cJSON *rss = cJSON_GetObjectItem(p, "peak_rss_mb");
        CHECK(cJSON_IsNumber(rss) && rss->valuedouble > 0);
        cJSON *q10 = cJSON_GetObjectItem(p, "p10_ms"), *q50 = cJSON_GetObjectItem(p, "p50_ms"),
              *q90 = cJSON_GetObjectItem(p, "p90_ms");
        CHECK(q10 && q50 && q90 && q10->valuedouble <= q50->valuedouble &&
              q50->valuedouble <= q90->valuedouble);
        cJSON *ls = cJSON_GetObjectItem(p, "layers");
        CHECK(cJSON_IsArray(ls) && cJSON_GetArraySize(ls) == 3);
    }
    cJSON_Delete(j);
}

/* Well-formed enough: starts with <svg, every element opened is closed, one training line per
 * thread count. */
static void check_svg(const char *text)
{
    CHECK(text != NULL);
    if (!text) return;
    CHECK(!strncmp(text, "<svg", 4));
    char stack[64][32];
    int depth = 0, ok = 1, elements = 0;
    for (const char *p = text; (p = strchr(p, '<')); p++) {
        const char *e = strchr(p, '>');
        if (!e) {
            ok = 0;
            break;
        }
        int closing = p[1] == '/', selfclose = e[-1] == '/';
        const char *n = p + 1 + closing;
        size_t len = strcspn(n, " \t\n/>");
        if (closing) {
            if (depth == 0 || strlen(stack[depth - 1]) != len || strncmp(stack[depth - 1], n, len))
                ok = 0;
            else
                depth--;
        } else if (!selfclose) {
            if (depth == 64 || len >= 32) {
                ok = 0;
                break;
            }
            snprintf(stack[depth++], 32, "%.*s", (int)len, n);
        }
        elements++;
        p = e;
    }
    CHECK_MSG(ok && depth == 0, "the SVG's tags are not balanced");
    CHECK(elements > 20);
    CHECK(strstr(text, "class=\"train t1\"") && strstr(text, "<polyline"));
    CHECK(strstr(text, "class=\"train t2\""));
    CHECK(strstr(text, "batch size"));
}

int main(void)
{
    if (!getenv("GEMMNET")) {
        fprintf(stderr, "GEMMNET is not set\n");
        return 1;
    }
    snprintf(dir, sizeof dir, "/tmp/gemmnet-bench-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    char path[512];
    snprintf(path, sizeof path, "%s/net.cfg", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return check_exit();
    fputs("[net]\ninputs=64\nlearning_rate=0.01\nmomentum=0.9\ndecay=0.0005\n"
          "[connected]\noutput=32\nactivation=relu\n[connected]\noutput=10\n[cost]\n", f);
    fclose(f);

    char args[1024];
    snprintf(args, sizeof args, "--batch 2,16 --threads 1,2 --iters 3 --warmup 1 --layers --sgemm-size 256 "
             "--csv '%s/b.csv' --json '%s/b.json' --svg '%s/b.svg'", dir, dir, dir);
    CHECK(bench(args) == 0);
    char *out;
    snprintf(path, sizeof path, "%s/out.txt", dir);
    out = slurp(path);
    CHECK(out && strstr(out, "per-layer profile") && strstr(out, "sgemm 256^3"));
    free(out);
    const char *names[] = {"b.csv", "b.json", "b.svg"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        char *t = slurp(path);
        if (i == 0) check_csv(t);
        if (i == 1) check_json(t);
        if (i == 2) check_svg(t);
        free(t);
        remove(path);
    }

    /* Nothing fits in 1 KiB: every point is reported, none run, exit status 1. */
    CHECK(bench("--batch 1,4 --threads 1 --iters 1 --warmup 0 --max-mem 1K --sgemm-size 64") == 1);
    snprintf(path, sizeof path, "%s/out.txt", dir);
    out = slurp(path);
    CHECK(out && count(out, "does not fit") == 2);
    CHECK(out && strstr(out, "no point was measured"));
    free(out);
    /* Batch 1 fits in 1M, batch 100000 does not (its activations alone are ~40 MiB): the
     * first runs, the second is reported; exit status 0. */
    snprintf(args, sizeof args, "--batch 1,100000 --threads 1 --iters 2 --warmup 0 --sgemm-size 64 "
             "--max-mem 1M --csv '%s/m.csv'", dir);
    CHECK(bench(args) == 0);
    out = slurp(path);
    CHECK(out && count(out, "does not fit") == 1);
    free(out);
    snprintf(path, sizeof path, "%s/m.csv", dir);
    out = slurp(path);
    CHECK(out && strstr(out, "\n1,1,1,") && strstr(out, "\n100000,1,0,"));
    free(out);
    remove(path);
    /* Usage errors are status 2; --data real without a [data] section says what is missing. */
    CHECK(bench("--max-mem lots") == 2);
    CHECK(bench("--batch 0") == 2);
    CHECK(bench("--data real --batch 1") == 1);
    snprintf(path, sizeof path, "%s/out.txt", dir);
    out = slurp(path);
    CHECK(out && strstr(out, "needs [data] train="));
    free(out);
    remove(path);
    /* With OpenMP binding threads, the parent's main thread is held to one core; the points'
     * processes still get every CPU (started with the parent's mask they would run both threads
     * on that core, and say so). Under a one-CPU mask the warning is printed. */
    cpu_set_t cpus;
    CHECK(sched_getaffinity(0, sizeof cpus, &cpus) == 0);
    if (CPU_COUNT(&cpus) >= 2) {
        setenv("OMP_PROC_BIND", "true", 1);
        CHECK(bench("--batch 2 --threads 2 --iters 1 --warmup 0 --sgemm-size 64") == 0);
        unsetenv("OMP_PROC_BIND");
        out = slurp(path);
        CHECK_MSG(out && !strstr(out, "threads on"), "OMP_PROC_BIND=true: %s", out ? out : "");
        free(out);
    }
    if (system("command -v taskset >/dev/null 2>&1") == 0) {
        int first = 0;
        while (first < CPU_SETSIZE && !CPU_ISSET(first, &cpus)) first++;
        char prefix[64];
        snprintf(prefix, sizeof prefix, "taskset -c %d", first);
        CHECK(bench_in(prefix, "--batch 2 --threads 2 --iters 1 --warmup 0 --sgemm-size 64") ==
              0);
        out = slurp(path);
        CHECK(out && strstr(out, "warning: batch 2 runs 2 threads on 1 CPU"));
        CHECK(out && strstr(out, " 1 core,"));
        free(out);
    }
    remove(path);
    snprintf(path, sizeof path, "%s/net.cfg", dir);
    remove(path);
    rmdir(dir);
    return check_exit();
}
