/* Winograd convolution F(m x m, 3x3), m = 2 or 4. Glossary and layouts in winograd.h and
 * conv.h.
 *
 * The constant matrices (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks"):
 *   F(2x2,3x3): B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
 *               G   = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]
 *               A^T = [1 1 1 0; 0 1 -1 -1]
 *   F(4x4,3x3): B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0;
 *                      0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
 *               G   = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6;
 *                      1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
 *               A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
 * Each is written out below as straight-line 1-D code (F applied to a strided vector) together
 * with its transpose for the backward passes; a 2-D transform F X F^T applies the 1-D one to
 * the columns, then to the rows.
 *
 * Workspace: `uarrays` arrays of alpha^2 K C floats, then per thread a slice holding
 * V (alpha^2,C,T) and M (alpha^2,K,T), T = tiles in a chunk (T contiguous: the layout the GEMMs
 * want; one cache line between positions, pos_stride). The first alpha^2 K C array is U
 * (shared by the threads). Backward of a narrow layer
 * (`fused`) makes one pass over the chunks, A dy A^T once per chunk feeding both dU and dV, with
 * a dU partial per thread in the arrays after U. A wide layer (512x512: 16 or 36 MiB per array)
 * first runs the data pass over all chunks (dV overwrites V), then the weight pass, where U is
 * no longer needed and its space holds the one dU: U and dU never both take space, at the price
 * of computing A dy A^T twice, one of the cheaper transforms. */
#include "kernels/winograd.h"
#include "kernels/kprof.h"
#include "core/util.h"

#include <cblas.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE__)
#include <immintrin.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

/* A chunk of images holds about this many tiles (one image when the map is larger): enough
 * columns for an efficient sgemm, a workspace that stays small. */
#define WINO_CHUNK_TILES 200
/* The loop over chunks runs threads in parallel only when each thread gets at least this many
 * tiles; below that, chunks go in turn through multithreaded sgemm. */
#define WINO_PAR_TILES 8
/* Backward of layers with fewer filter x channel pairs than this runs data and weight gradients
 * in one pass over the chunks (A dy A^T once per chunk, the chunk's tiles still in cache), with
 * the dU partials of a loop over chunks beside U. Wider layers run a data pass with U, then the
 * weight pass with its chunks in turn into one dU in U's space: there U, dU and a partial per
 * thread would cost 16 or 36 MiB each (512x512), and the in-turn GEMMs are as fast as a loop
 * over chunks. docs/performance.md, "Winograd". */
#define WINO_FUSED_MAX_KC (256 * 512)

/* ---- 1-D transforms: o[i*os] = (F in)[i] for in[j*is] ---- */

/* B^T, 4 -> 4 */
static inline void bt_2(float *restrict o, size_t os, const float *restrict d, size_t is)
{
    float d0 = d[0], d1 = d[is], d2 = d[2 * is], d3 = d[3 * is];
    o[0] = d0 - d2;
    o[os] = d1 + d2;
    o[2 * os] = d2 - d1;
    o[3 * os] = d1 - d3;
}

/* B, 4 -> 4 */
static inline void b_2(float *restrict o, size_t os, const float *restrict v, size_t is)
{
    float v0 = v[0], v1 = v[is], v2 = v[2 * is], v3 = v[3 * is];
    o[0] = v0;
    o[os] = v1 - v2 + v3;
    o[2 * os] = v1 + v2 - v0;
    o[3 * os] = -v3;
}

/* A^T, 4 -> 2 */
static inline void at_2(float *restrict o, size_t os, const float *restrict m, size_t is)
{
    float m1 = m[is], m2 = m[2 * is];
    o[0] = m[0] + m1 + m2;
    o[os] = m1 - m2 - m[3 * is];
}

/* A, 2 -> 4 */
static inline void a_2(float *restrict o, size_t os, const float *restrict y, size_t is)
{
    float y0 = y[0], y1 = y[is];
    o[0] = y0;
    o[os] = y0 + y1;
    o[2 * os] = y0 - y1;
    o[3 * os] = -y1;
}

/* G, 3 -> 4 */
static inline void g_2(float *restrict o, size_t os, const float *restrict g, size_t is)
{
    float g0 = g[0], g1 = g[is], g2 = g[2 * is], h = 0.5f * (g0 + g2);
    o[0] = g0;
    o[os] = h + 0.5f * g1;
    o[2 * os] = h - 0.5f * g1;
    o[3 * os] = g2;
}

/* G^T, 4 -> 3 */
static inline void gt_2(float *restrict o, size_t os, const float *restrict u, size_t is)
{
    float u1 = u[is], u2 = u[2 * is], h = 0.5f * (u1 + u2);
    o[0] = u[0] + h;
    o[os] = 0.5f * (u1 - u2);
    o[2 * os] = h + u[3 * is];
}

/* B^T, 6 -> 6 */
static inline void bt_4(float *restrict o, size_t os, const float *restrict d, size_t is)
{
    float d0 = d[0], d1 = d[is], d2 = d[2 * is], d3 = d[3 * is], d4 = d[4 * is],
          d5 = d[5 * is];
    float p = d4 - 4.0f * d2, q = d3 - 4.0f * d1, r = d4 - d2, t = 2.0f * (d3 - d1);
    o[0] = 4.0f * d0 - 5.0f * d2 + d4;
    o[os] = p + q;
    o[2 * os] = p - q;
    o[3 * os] = r + t;
    o[4 * os] = r - t;
    o[5 * os] = 4.0f * d1 - 5.0f * d3 + d5;
}

/* B, 6 -> 6 */
static inline void b_4(float *restrict o, size_t os, const float *restrict v, size_t is)
{
    float v0 = v[0], v1 = v[is], v2 = v[2 * is], v3 = v[3 * is], v4 = v[4 * is],
          v5 = v[5 * is];
    float s12 = v1 + v2, d12 = v2 - v1, s34 = v3 + v4, d34 = v4 - v3;
    o[0] = 4.0f * v0;
    o[os] = 4.0f * d12 + 2.0f * d34 + 4.0f * v5;
    o[2 * os] = -5.0f * v0 - 4.0f * s12 - s34;
    o[3 * os] = -d12 - 2.0f * d34 - 5.0f * v5;
    o[4 * os] = v0 + s12 + s34;
    o[5 * os] = v5;
}

/* A^T, 6 -> 4 */
static inline void at_4(float *restrict o, size_t os, const float *restrict m, size_t is)
{
    float s12 = m[is] + m[2 * is], d12 = m[is] - m[2 * is];
    float s34 = m[3 * is] + m[4 * is], d34 = m[3 * is] - m[4 * is];
    o[0] = m[0] + s12 + s34;
    o[os] = d12 + 2.0f * d34;
    o[2 * os] = s12 + 4.0f * s34;
    o[3 * os] = d12 + 8.0f * d34 + m[5 * is];
}

/* A, 4 -> 6 */
static inline void a_4(float *restrict o, size_t os, const float *restrict y, size_t is)
{
    float y0 = y[0], y1 = y[is], y2 = y[2 * is], y3 = y[3 * is];
    float e1 = y0 + y2, f1 = y1 + y3, e2 = y0 + 4.0f * y2, f2 = 2.0f * y1 + 8.0f * y3;
    o[0] = y0;
    o[os] = e1 + f1;
    o[2 * os] = e1 - f1;
    o[3 * os] = e2 + f2;
    o[4 * os] = e2 - f2;
    o[5 * os] = y3;
}

/* G, 3 -> 6 (multiplying by rounded reciprocals: no divisions in the loop) */
static inline void g_4(float *restrict o, size_t os, const float *restrict g, size_t is)
{
    const float r6 = 1.0f / 6.0f, r12 = 1.0f / 12.0f, r24 = 1.0f / 24.0f;
    float g0 = g[0], g1 = g[is], g2 = g[2 * is];
    float e = -(g0 + g2) * r6, f = g0 * r24 + g2 * r6;
    o[0] = 0.25f * g0;
    o[os] = e - g1 * r6;
    o[2 * os] = e + g1 * r6;
    o[3 * os] = f + g1 * r12;
    o[4 * os] = f - g1 * r12;
    o[5 * os] = g2;
}

/* G^T, 6 -> 3 */
static inline void gt_4(float *restrict o, size_t os, const float *restrict u, size_t is)
{
    const float r6 = 1.0f / 6.0f, r12 = 1.0f / 12.0f, r24 = 1.0f / 24.0f;
    float u1 = u[is], u2 = u[2 * is], u3 = u[3 * is], u4 = u[4 * is];
    float s12 = u1 + u2, s34 = u3 + u4;
    o[0] = 0.25f * u[0] - s12 * r6 + s34 * r24;
    o[os] = (u2 - u1) * r6 + (u3 - u4) * r12;
    o[2 * os] = (s34 - s12) * r6 + u[5 * is];
}

/* ---- 2-D transforms of WB tiles at once ----
 * Y:(nout,nout) = F X:(nin,nin) F^T for each of WB lanes: position q of X is the row of floats
 * at x + q*xs, position q of Y goes to y + q*ys; only the first n lanes are read (the rest are
 * zero) and written, so a block that ends a channel's columns works in place in the big arrays.
 * The rows are copied into local blocks of WB floats and out again; each 1-D transform runs on
 * whole local rows (l innermost, contiguous), so the compiler turns it into vector code; every
 * lane does exactly the scalar operations of one tile, in the same order: columns first, then
 * rows. */

#define WB 16 /* tiles (or (k,c) pairs) transformed together: two AVX or four SSE vectors */

/* U is written once per pass and read back by the GEMMs; a large one (512x512 filters x
 * channels: 36 MiB for F(4x4)) is far beyond the caches, where ordinary stores first read
 * every line they fill. From this size on U is written with non-temporal stores (whole aligned
 * rows of WB floats), fenced before the threads meet. bench_winograd time 64 2, F(4x4)
 * transforms forward / backward, 3 interleaved runs: 512x4x4 5.3-5.7 / 10.6-10.8 ->
 * 2.7-3.0 / 8.1-9.1 ms, 256x7x7 (9 MiB) 3.8-4.0 / 7.0-7.3 -> 3.3 / 6.5-6.7 ms; below 8 MiB
 * (128x128: 2.3 MiB) no difference either way. */
#define WINO_STREAM_MIN_BYTES ((size_t)8 << 20)

/* dst: 64-byte aligned (one row of WB floats) */
static inline void stream_row(float *restrict dst, const float *restrict src)
{
#if defined(__AVX512F__)
    _mm512_stream_ps(dst, _mm512_loadu_ps(src));
#elif defined(__AVX__)
    _mm256_stream_ps(dst, _mm256_loadu_ps(src));
    _mm256_stream_ps(dst + 8, _mm256_loadu_ps(src + 8));
#elif defined(__SSE__)
    for (int i = 0; i < WB; i += 4) _mm_stream_ps(dst + i, _mm_loadu_ps(src + i));
#else
    memcpy(dst, src, WB * sizeof *dst);
#endif
}

static inline void stream_fence(void)
{
#if defined(__SSE__)
    _mm_sfence();
#endif
}

/* Y:(nout,nout) = F X F^T for WB lanes (above); stream: Y's rows by stream_row (whole blocks,
 * 64-byte aligned rows) */
#define WINO_2D_STORE(name, f, nin, nout, stream)                                         \
    static inline void name(float *restrict y, size_t ys, const float *restrict x,        \
                            size_t xs, int n)                                             \
    {                                                                                     \
        float in[(nin) * (nin) * WB], t[(nout) * (nin) * WB], out[(nout) * (nout) * WB];  \
        if (n == WB) /* constant-size copies: the common case, kept inline */            \
            for (int q = 0; q < (nin) * (nin); q++)                                       \
                memcpy(in + q * WB, x + q * xs, WB * sizeof(float));                      \
        else                                                                              \
            for (int q = 0; q < (nin) * (nin); q++)                                       \
                for (int l = 0; l < WB; l++) in[q * WB + l] = l < n ? x[q * xs + l] : 0.0f;  \
        for (int j = 0; j < (nin); j++)                                                   \
            for (int l = 0; l < WB; l++)                                                  \
                f(t + j * WB + l, (nin) * WB, in + j * WB + l, (nin) * WB);               \
        for (int i = 0; i < (nout); i++)                                                  \
            for (int l = 0; l < WB; l++)                                                  \
                f(out + i * (nout) * WB + l, WB, t + i * (nin) * WB + l, WB);             \
        if (n == WB && (stream))                                                          \
            for (int q = 0; q < (nout) * (nout); q++) stream_row(y + q * ys, out + q * WB);  \
        else if (n == WB)                                                                 \
            for (int q = 0; q < (nout) * (nout); q++)                                     \
                memcpy(y + q * ys, out + q * WB, WB * sizeof(float));                     \
        else                                                                              \
            for (int q = 0; q < (nout) * (nout); q++)                                     \
                for (int l = 0; l < n; l++) y[q * ys + l] = out[q * WB + l];              \
    }

#define WINO_2D(name, f, nin, nout) WINO_2D_STORE(name, f, nin, nout, 0)
WINO_2D(bt2d_2, bt_2, 4, 4)
WINO_2D(b2d_2, b_2, 4, 4)
WINO_2D(at2d_2, at_2, 4, 2)
WINO_2D(a2d_2, a_2, 2, 4)
WINO_2D(g2d_2, g_2, 3, 4)
WINO_2D(gt2d_2, gt_2, 4, 3)
WINO_2D(bt2d_4, bt_4, 6, 6)
WINO_2D(b2d_4, b_4, 6, 6)
WINO_2D(at2d_4, at_4, 6, 4)
WINO_2D(a2d_4, a_4, 4, 6)
WINO_2D(g2d_4, g_4, 3, 6)
WINO_2D_STORE(g2d_2_nt, g_2, 3, 4, 1)
WINO_2D_STORE(g2d_4_nt, g_4, 3, 6, 1)
WINO_2D(gt2d_4, gt_4, 6, 3)

/* ---- the plan: tiles, chunks, threads, workspace ---- */

typedef struct wino_plan {
    int m, a, aa;       /* output tile, input patch (alpha), positions alpha^2 */
    int tH, tW, tpi;    /* tiles down, across, per image */
    int cap;            /* images per chunk when chunks go in turn */
    int ipc, nchunks;   /* images per chunk, chunks */
    int nt;             /* threads in the loop over chunks; 1: chunks in turn */
    int slices;         /* per-thread slices (V and M) the workspace holds */
    int fused;          /* backward in one pass over the chunks, U beside the dU partials */
    int uarrays;        /* alpha^2 K C arrays in the workspace: U, then dU partials if fused */
    size_t u, vm, slice; /* floats: U (and each dU), V (and M) of a full chunk, V plus M */
} wino_plan;

static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }

/* Floats from one position xi's (rows, T) matrix to the next: V (C, T), M (K, T), and U or
 * dU (K, C). One line more than rows*T: with T*rows*4 bytes a multiple of 4 KiB (128 channels x 192 tiles, 256 x 200, ...)
 * the alpha^2 rows a block reads or writes would all map to one L1 set; the skew spreads
 * them (bench_winograd time 64 2, 128x14x14 F(4x4): transforms 5.9-6.0 / 11.7-12.1 ->
 * 5.5-5.7 / 11.1-11.3 ms forward / backward). */
static size_t pos_stride(size_t rows, size_t T) { return rows * T + WB; }

/* Can a loop over chunks give each of t threads enough tiles? (Monotone in N and t, so a
 * smaller batch or fewer threads never needs more workspace than planned.) */
static int loop_ok(const conv2d_shape *s, int tpi, int t)
{
    return t > 1 && s->N >= t && (size_t)s->N * tpi >= (size_t)t * WINO_PAR_TILES;
}

static wino_plan make_plan(const conv2d_shape *s, int m, int threads)
{
    wino_plan p;
    p.m = m;
    p.a = m + 2;
    p.aa = p.a * p.a;
    p.tH = (s->P + m - 1) / m;
    p.tW = (s->Q + m - 1) / m;
    p.tpi = p.tH * p.tW;
    int cap = WINO_CHUNK_TILES / p.tpi;
    if (cap < 1) cap = 1;
    if (cap > s->N) cap = s->N;
    if (threads > KPROF_MAX_THREADS) threads = KPROF_MAX_THREADS;
    p.slices = 1;
    for (int t = threads; t > 1; t--)
        if (loop_ok(s, p.tpi, t)) {
            p.slices = t;
            break;
        }
    p.fused = (size_t)s->K * s->C < WINO_FUSED_MAX_KC;
    p.uarrays = p.fused ? 1 + p.slices : 1;
    size_t tmax = (size_t)cap * p.tpi;
    p.u = round16((size_t)p.aa * pos_stride(s->K, s->C));
    p.vm = (size_t)p.aa * pos_stride(s->C > s->K ? s->C : s->K, tmax);
    p.slice = 2 * p.vm;
    int nt = 1;
#ifdef _OPENMP
    nt = omp_get_max_threads();
    if (nt > threads) nt = threads;
#endif
    p.nt = loop_ok(s, p.tpi, nt) ? nt : 1;
    p.cap = p.ipc = cap;
    if (p.nt > 1) { /* a multiple of nt chunks, as even as the batch allows */
        int nch = (s->N + cap - 1) / cap;
        nch = (nch + p.nt - 1) / p.nt * p.nt;
        if (nch > s->N) nch = s->N;
        p.ipc = (s->N + nch - 1) / nch;
    }
    p.nchunks = (s->N + p.ipc - 1) / p.ipc;
    return p;
}

int winograd_applies(const conv2d_shape *s)
{
    return (s->winograd == 2 || s->winograd == 4) && s->R == 3 && s->S == 3 &&
           s->stride == 1 && s->groups == 1 && s->pad >= 0 && s->pad <= 2;
}

int winograd_auto(const conv2d_shape *s)
{
    conv2d_shape f = *s;
    f.winograd = 4;
    if (!winograd_applies(&f) || s->C < WINOGRAD_AUTO_MIN_C) return 0;
    /* per filter x channel pair: multiplies saved over im2col across the batch, less the
     * transformed weights' cost */
    double best = 0;
    int pick = 0;
    for (int m = 4; m >= 2; m -= 2) {
        if (m == 2 && s->C < WINOGRAD_AUTO_MIN_C_F2) break;
        double aa = (m + 2) * (m + 2), tiles = (double)((s->P + m - 1) / m) * ((s->Q + m - 1) / m);
        double gain = (double)s->N * (9.0 * s->P * s->Q - aa * tiles) -
                      WINOGRAD_AUTO_WEIGHT_COST * aa;
        if (gain > best) best = gain, pick = m;
    }
    return pick;
}

size_t winograd_ws_floats(const conv2d_shape *s, int m, int threads)
{
    wino_plan p = make_plan(s, m, threads);
    return (size_t)p.uarrays * p.u + (size_t)p.slices * p.slice;
}

/* ---- blocks of WB tiles ----
 * A block is WB consecutive columns col0 .. col0+jn-1 (jn <= WB) of a chunk's T = nb*tpi tiles,
 * all of one channel (or filter): column n*tpi + j is tile j = (j / tW, j % tW) of image n, so a
 * block runs on across images where a map has fewer than WB tiles (ResNet-18's 4x4 and 2x2
 * stages: one to four tiles per image). Lane l holds column col0 + l; lanes past jn are zero and
 * never stored. Each block function is written once for a constant m (always inlined into a
 * per-m copy below), so the transforms in the inner loops are straight-line code, with no
 * function pointers. */

/* Where each lane's tile lies: its plane (offset from the channel's plane in image 0) and its
 * tile row and column. */
typedef struct wino_lanes {
    int jn;
    size_t plane[WB];
    int ti[WB], tj[WB];
} wino_lanes;

static void lanes_at(wino_lanes *L, size_t col0, size_t T, size_t plane_stride,
                     const wino_plan *p)
{
    L->jn = (int)GN_MIN((size_t)WB, T - col0);
    size_t n = col0 / p->tpi;
    int j = (int)(col0 % p->tpi);
    for (int l = 0; l < L->jn; l++) {
        L->plane[l] = n * plane_stride;
        L->ti[l] = j / p->tW;
        L->tj[l] = j % p->tW;
        if (++j == p->tpi) j = 0, n++;
    }
}

/* [*lo, *hi): the rows (or columns) i < a of a patch starting at h0 that lie in 0 .. H-1 */
static inline void patch_inside(int *lo, int *hi, int h0, int a, int H)
{
    *lo = h0 < 0 ? -h0 : 0;
    *hi = H - h0 < a ? H - h0 : a;
}

/* x planes (H,W) at base + plane[l] -> o rows q*os, q < a^2: B^T d B of the lanes' patches */
GN_INLINE void input_block(float *restrict o, size_t os, const float *restrict base,
                           const conv2d_shape *s, const wino_lanes *L, const int m)
{
    const int a = m + 2, H = s->H, W = s->W;
    float d[36 * WB];
    for (int l = 0; l < WB; l++) {
        if (l >= L->jn) {
            for (int q = 0; q < a * a; q++) d[q * WB + l] = 0.0f;
            continue;
        }
        const float *plane = base + L->plane[l];
        int h0 = L->ti[l] * m - s->pad, w0 = L->tj[l] * m - s->pad;
        if (h0 >= 0 && w0 >= 0 && h0 + a <= H && w0 + a <= W) {
            const float *src = plane + (size_t)h0 * W + w0;
            for (int i = 0; i < a; i++)
                for (int j = 0; j < a; j++) d[(i * a + j) * WB + l] = src[(size_t)i * W + j];
        } else { /* zeros, then the rectangle of the patch inside the map */
            int ilo, ihi, jlo, jhi;
            patch_inside(&ilo, &ihi, h0, a, H);
            patch_inside(&jlo, &jhi, w0, a, W);
            for (int q = 0; q < a * a; q++) d[q * WB + l] = 0.0f;
            for (int i = ilo; i < ihi; i++)
                for (int j = jlo; j < jhi; j++)
                    d[(i * a + j) * WB + l] = plane[(size_t)(h0 + i) * W + w0 + j];
        }
    }
    if (m == 2)
        bt2d_2(o, os, d, WB, L->jn);
    else
        bt2d_4(o, os, d, WB, L->jn);
}

/* dx planes (H,W) += overlap-add of B dV B^T, dV rows q*vs (lanes in order: overlaps in one
 * plane add up in tile order, as in the scalar loop) */
GN_INLINE void input_grad_block(float *restrict base, const float *restrict v, size_t vs,
                                const conv2d_shape *s, const wino_lanes *L, const int m)
{
    const int a = m + 2, H = s->H, W = s->W;
    float d[36 * WB];
    if (m == 2)
        b2d_2(d, WB, v, vs, L->jn);
    else
        b2d_4(d, WB, v, vs, L->jn);
    for (int l = 0; l < L->jn; l++) {
        float *plane = base + L->plane[l];
        int h0 = L->ti[l] * m - s->pad, w0 = L->tj[l] * m - s->pad;
        if (h0 >= 0 && w0 >= 0 && h0 + a <= H && w0 + a <= W) {
            float *dst = plane + (size_t)h0 * W + w0;
            for (int i = 0; i < a; i++)
                for (int j = 0; j < a; j++) dst[(size_t)i * W + j] += d[(i * a + j) * WB + l];
        } else {
            int ilo, ihi, jlo, jhi;
            patch_inside(&ilo, &ihi, h0, a, H);
            patch_inside(&jlo, &jhi, w0, a, W);
            for (int i = ilo; i < ihi; i++)
                for (int j = jlo; j < jhi; j++)
                    plane[(size_t)(h0 + i) * W + w0 + j] += d[(i * a + j) * WB + l];
        }
    }
}

/* M rows q*ms -> y planes (P,Q) = A^T M A + bias, outputs past the edge dropped */
GN_INLINE void output_block(float *restrict base, const float *restrict mk, size_t ms,
                            float bias, const conv2d_shape *s, const wino_lanes *L,
                            const int m)
{
    const int P = s->P, Q = s->Q;
    float yt[16 * WB];
    if (m == 2)
        at2d_2(yt, WB, mk, ms, L->jn);
    else
        at2d_4(yt, WB, mk, ms, L->jn);
    for (int l = 0; l < L->jn; l++) {
        int h0 = L->ti[l] * m, w0 = L->tj[l] * m;
        int hn = GN_MIN(m, P - h0), wn = GN_MIN(m, Q - w0);
        float *dst = base + L->plane[l] + (size_t)h0 * Q + w0;
        if (hn == m && wn == m) {
            for (int r = 0; r < m; r++)
                for (int q = 0; q < m; q++) dst[(size_t)r * Q + q] = yt[(r * m + q) * WB + l] + bias;
        } else {
            for (int r = 0; r < hn; r++)
                for (int q = 0; q < wn; q++) dst[(size_t)r * Q + q] = yt[(r * m + q) * WB + l] + bias;
        }
    }
}

/* dy planes (P,Q) -> Mbar rows q*os = A dy A^T, outputs past the edge read as zero */
GN_INLINE void output_grad_block(float *restrict o, size_t os, const float *restrict base,
                                 const conv2d_shape *s, const wino_lanes *L, const int m)
{
    const int P = s->P, Q = s->Q;
    float yt[16 * WB];
    for (int l = 0; l < WB; l++) {
        if (l >= L->jn) {
            for (int q = 0; q < m * m; q++) yt[q * WB + l] = 0.0f;
            continue;
        }
        int h0 = L->ti[l] * m, w0 = L->tj[l] * m;
        const float *src = base + L->plane[l] + (size_t)h0 * Q + w0;
        if (h0 + m <= P && w0 + m <= Q) {
            for (int r = 0; r < m; r++)
                for (int q = 0; q < m; q++) yt[(r * m + q) * WB + l] = src[(size_t)r * Q + q];
        } else {
            int hn = GN_MIN(m, P - h0), wn = GN_MIN(m, Q - w0);
            for (int q = 0; q < m * m; q++) yt[q * WB + l] = 0.0f;
            for (int r = 0; r < hn; r++)
                for (int q = 0; q < wn; q++) yt[(r * m + q) * WB + l] = src[(size_t)r * Q + q];
        }
    }
    if (m == 2)
        a2d_2(o, os, yt, WB, L->jn);
    else
        a2d_4(o, os, yt, WB, L->jn);
}

/* w:(nb,3,3) -> U rows q*os = G g G^T; stream: non-temporal stores where the rows allow */
GN_INLINE void weight_block(float *restrict o, size_t os, const float *restrict w, int nb,
                            const int m, int stream)
{
    float g[9 * WB];
    if (nb == WB) /* a stride-9 gather per row: vector code */
        for (int r = 0; r < 9; r++)
            for (int l = 0; l < WB; l++) g[r * WB + l] = w[(size_t)l * 9 + r];
    else
        for (int l = 0; l < WB; l++)
            for (int r = 0; r < 9; r++) g[r * WB + l] = l < nb ? w[(size_t)l * 9 + r] : 0.0f;
    if (stream && nb == WB && !((uintptr_t)o & 63) && !(os & 15)) {
        if (m == 2)
            g2d_2_nt(o, os, g, WB, nb);
        else
            g2d_4_nt(o, os, g, WB, nb);
    } else if (m == 2) {
        g2d_2(o, os, g, WB, nb);
    } else {
        g2d_4(o, os, g, WB, nb);
    }
}

/* dU rows q*us -> dw:(nb,3,3) += G^T dU G, where dU is the sum of nparts partials ps floats
 * apart (summed here in partial order, so no pass of its own writes the sum) */
GN_INLINE void weight_grad_block(float *restrict dw, const float *restrict du, size_t us,
                                 int nb, int nparts, size_t ps, const int m)
{
    float g[9 * WB], sum[36 * WB]; /* alpha^2 <= 36 rows */
    if (nparts > 1) {
        for (int q = 0; q < (m + 2) * (m + 2); q++) {
            float *o = sum + q * WB;
            for (int l = 0; l < WB; l++) o[l] = l < nb ? du[q * us + l] : 0.0f;
            for (int t = 1; t < nparts; t++)
                for (int l = 0; l < WB; l++) o[l] += l < nb ? du[t * ps + q * us + l] : 0.0f;
        }
        du = sum;
        us = WB;
    }
    if (m == 2)
        gt2d_2(g, WB, du, us, nb);
    else
        gt2d_4(g, WB, du, us, nb);
    for (int l = 0; l < nb; l++)
        for (int r = 0; r < 9; r++) dw[(size_t)l * 9 + r] += g[r * WB + l];
}

/* One copy of each block function per m, called through a switch once per block. */
#define WINO_PER_M(m)                                                                       \
    static void input_block_##m(float *restrict o, size_t os, const float *restrict base,   \
                                const conv2d_shape *s, const wino_lanes *L)                 \
    {                                                                                       \
        input_block(o, os, base, s, L, m);                                                  \
    }                                                                                       \
    static void input_grad_block_##m(float *restrict base, const float *restrict v,         \
                                     size_t vs, const conv2d_shape *s, const wino_lanes *L) \
    {                                                                                       \
        input_grad_block(base, v, vs, s, L, m);                                             \
    }                                                                                       \
    static void output_block_##m(float *restrict base, const float *restrict mk, size_t ms, \
                                 float bias, const conv2d_shape *s, const wino_lanes *L)    \
    {                                                                                       \
        output_block(base, mk, ms, bias, s, L, m);                                          \
    }                                                                                       \
    static void output_grad_block_##m(float *restrict o, size_t os,                         \
                                      const float *restrict base, const conv2d_shape *s,    \
                                      const wino_lanes *L)                                  \
    {                                                                                       \
        output_grad_block(o, os, base, s, L, m);                                            \
    }                                                                                       \
    static void weight_block_##m(float *restrict o, size_t os, const float *restrict w,     \
                                 int nb, int stream)                                        \
    {                                                                                       \
        weight_block(o, os, w, nb, m, stream);                                              \
    }                                                                                       \
    static void weight_grad_block_##m(float *restrict dw, const float *restrict du,         \
                                      size_t us, int nb, int nparts, size_t ps)             \
    {                                                                                       \
        weight_grad_block(dw, du, us, nb, nparts, ps, m);                                   \
    }

WINO_PER_M(2)
WINO_PER_M(4)

/* ---- transforms of a chunk: loops over blocks, `threads` OpenMP threads ----
 * Every block reads and writes its alpha^2 rows straight in the big arrays: WB floats each, or
 * the n columns left in the last block of a channel (the 2-D transforms take n). */

/* w:(K,C,3,3) -> U:(aa,K,C) */
static void weight_tiles(float *restrict U, const float *restrict w, const conv2d_shape *s,
                         const wino_plan *p, int threads)
{
    size_t KC = (size_t)s->K * s->C, us = pos_stride(s->K, s->C);
    int nblk = (int)((KC + WB - 1) / WB), stream = p->u * sizeof(float) >= WINO_STREAM_MIN_BYTES;
    (void)threads; /* read only by the OpenMP pragma */
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
#pragma omp for schedule(static) nowait
        for (int bi = 0; bi < nblk; bi++) {
            size_t i0 = (size_t)bi * WB;
            int nb = (int)GN_MIN((size_t)WB, KC - i0);
            if (p->m == 2)
                weight_block_2(U + i0, us, w + i0 * 9, nb, stream);
            else
                weight_block_4(U + i0, us, w + i0 * 9, nb, stream);
        }
        if (stream) stream_fence(); /* before the barrier that ends the region */
    }
}

/* dU:(aa,K,C), the sum of nparts partials p->u floats apart -> dw:(K,C,3,3) += G^T dU G */
static void weight_grad(float *restrict dw, const float *restrict dU, int nparts,
                        const conv2d_shape *s, const wino_plan *p, int threads)
{
    size_t KC = (size_t)s->K * s->C, us = pos_stride(s->K, s->C);
    int nblk = (int)((KC + WB - 1) / WB);
    (void)threads; /* read only by the OpenMP pragma */
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
    for (int bi = 0; bi < nblk; bi++) {
        size_t i0 = (size_t)bi * WB;
        int nb = (int)GN_MIN((size_t)WB, KC - i0);
        if (p->m == 2)
            weight_grad_block_2(dw + i0 * 9, dU + i0, us, nb, nparts, p->u);
        else
            weight_grad_block_4(dw + i0 * 9, dU + i0, us, nb, nparts, p->u);
    }
}

/* The four tile passes walk the channels (or filters) of a chunk in an OpenMP loop, so the
 * overlap-adds into one plane stay on one thread, and in each channel the blocks of WB
 * columns of the T = nb*tpi tiles. */
#define FOR_CHANNEL_BLOCKS(nch, T)                                                          \
    (void)threads; /* read only by the OpenMP pragma */                                     \
    _Pragma("omp parallel for schedule(static) num_threads(threads) if (threads > 1)")      \
    for (int c = 0; c < (nch); c++)                                                         \
        for (size_t col0 = 0; col0 < (T); col0 += WB)

/* x:(nb,C,H,W) -> V:(aa,C,T), T = nb*tpi */
static void input_tiles(float *restrict V, const float *restrict x, int nb,
                        const conv2d_shape *s, const wino_plan *p, int threads)
{
    int C = s->C;
    size_t HW = (size_t)s->H * s->W, T = (size_t)nb * p->tpi, CT = pos_stride(C, T);
    FOR_CHANNEL_BLOCKS(C, T)
    {
        wino_lanes L;
        lanes_at(&L, col0, T, C * HW, p);
        float *v = V + (size_t)c * T + col0;
        if (p->m == 2)
            input_block_2(v, CT, x + c * HW, s, &L);
        else
            input_block_4(v, CT, x + c * HW, s, &L);
    }
}

/* dV:(aa,C,T) -> dx:(nb,C,H,W) += overlap-add of B dV B^T */
static void input_grad(float *restrict dx, const float *restrict V, int nb,
                       const conv2d_shape *s, const wino_plan *p, int threads)
{
    int C = s->C;
    size_t HW = (size_t)s->H * s->W, T = (size_t)nb * p->tpi, CT = pos_stride(C, T);
    FOR_CHANNEL_BLOCKS(C, T)
    {
        wino_lanes L;
        lanes_at(&L, col0, T, C * HW, p);
        const float *v = V + (size_t)c * T + col0;
        if (p->m == 2)
            input_grad_block_2(dx + c * HW, v, CT, s, &L);
        else
            input_grad_block_4(dx + c * HW, v, CT, s, &L);
    }
}

/* M:(aa,K,T) -> y:(nb,K,P,Q) = A^T M A (+ b), outputs past the edge dropped */
static void output_tiles(float *restrict y, const float *restrict M, const float *restrict b,
                         int nb, const conv2d_shape *s, const wino_plan *p, int threads)
{
    int K = s->K;
    size_t PQ = (size_t)s->P * s->Q, T = (size_t)nb * p->tpi, KT = pos_stride(K, T);
    FOR_CHANNEL_BLOCKS(K, T)
    {
        wino_lanes L;
        lanes_at(&L, col0, T, K * PQ, p);
        float bias = b ? b[c] : 0.0f;
        const float *mk = M + (size_t)c * T + col0;
        if (p->m == 2)
            output_block_2(y + c * PQ, mk, KT, bias, s, &L);
        else
            output_block_4(y + c * PQ, mk, KT, bias, s, &L);
    }
}

/* dy:(nb,K,P,Q) -> Mbar:(aa,K,T) = A dy A^T, outputs past the edge read as zero */
static void output_grad(float *restrict M, const float *restrict dy, int nb,
                        const conv2d_shape *s, const wino_plan *p, int threads)
{
    int K = s->K;
    size_t PQ = (size_t)s->P * s->Q, T = (size_t)nb * p->tpi, KT = pos_stride(K, T);
    FOR_CHANNEL_BLOCKS(K, T)
    {
        wino_lanes L;
        lanes_at(&L, col0, T, K * PQ, p);
        float *mk = M + (size_t)c * T + col0;
        if (p->m == 2)
            output_grad_block_2(mk, KT, dy + c * PQ, s, &L);
        else
            output_grad_block_4(mk, KT, dy + c * PQ, s, &L);
    }
}

/* ---- profiling: t (may be NULL) gets transform seconds in t[0], sgemm seconds in t[1] ---- */

/* ---- the passes over one chunk of nb images ---- */

/* x:(nb,C,H,W) -> y:(nb,K,P,Q); sl: one slice */
static void forward_chunk(float *restrict y, const float *restrict x, const float *restrict U,
                          const float *restrict b, int nb, float *restrict sl,
                          const conv2d_shape *s, const wino_plan *p, int threads, double *t)
{
    double ck = kprof_now(t);
    int T = nb * p->tpi, K = s->K, C = s->C;
    size_t vs = pos_stride(C, T), ms = pos_stride(K, T), us = pos_stride(K, C);
    float *V = sl, *M = sl + p->vm;
    input_tiles(V, x, nb, s, p, threads);
    kprof_lap(t, 0, &ck);
    for (int xi = 0; xi < p->aa; xi++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, K, T, C, 1.0f,
                    U + xi * us, C, V + xi * vs, T, 0.0f,
                    M + xi * ms, T);
    kprof_lap(t, 1, &ck);
    output_tiles(y, M, b, nb, s, p, threads);
    kprof_lap(t, 0, &ck);
}

/* dx += B (U^T Mbar) B^T for nb images, Mbar in the slice's M (V is overwritten) */
static void data_from_mbar(float *restrict dx, const float *restrict U, int nb,
                           float *restrict sl, const conv2d_shape *s, const wino_plan *p,
                           int threads, double *t)
{
    double ck = kprof_now(t);
    int T = nb * p->tpi, K = s->K, C = s->C;
    size_t vs = pos_stride(C, T), ms = pos_stride(K, T), us = pos_stride(K, C);
    float *V = sl, *M = sl + p->vm;
    for (int xi = 0; xi < p->aa; xi++) /* dV over V */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, C, T, K, 1.0f,
                    U + xi * us, C, M + xi * ms, T, 0.0f,
                    V + xi * vs, T);
    kprof_lap(t, 1, &ck);
    input_grad(dx, V, nb, s, p, threads);
    kprof_lap(t, 0, &ck);
}

/* dx += B (U^T Mbar) B^T for nb images; sl: one slice */
static void data_chunk(float *restrict dx, const float *restrict dy, const float *restrict U,
                       int nb, float *restrict sl, const conv2d_shape *s, const wino_plan *p,
                       int threads, double *t)
{
    double ck = kprof_now(t);
    output_grad(sl + p->vm, dy, nb, s, p, threads);
    kprof_lap(t, 0, &ck);
    data_from_mbar(dx, U, nb, sl, s, p, threads, t);
}

/* dU = beta dU + Mbar V^T for nb images (beta 0: the first chunk, no zeroing pass over dU);
 * sl: one slice */
static void weight_chunk(float *restrict dU, float beta, const float *restrict dy,
                         const float *restrict x, int nb, float *restrict sl,
                         const conv2d_shape *s, const wino_plan *p, int threads, double *t)
{
    double ck = kprof_now(t);
    int T = nb * p->tpi, K = s->K, C = s->C;
    size_t vs = pos_stride(C, T), ms = pos_stride(K, T), us = pos_stride(K, C);
    float *V = sl, *M = sl + p->vm;
    input_tiles(V, x, nb, s, p, threads);
    output_grad(M, dy, nb, s, p, threads);
    kprof_lap(t, 0, &ck);
    for (int xi = 0; xi < p->aa; xi++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, K, C, T, 1.0f,
                    M + xi * ms, T, V + xi * vs, T, beta,
                    dU + xi * us, C);
    kprof_lap(t, 1, &ck);
}

/* dU = beta dU + Mbar V^T and, when dx is not NULL, dx += B (U^T Mbar) B^T for nb images,
 * Mbar computed once; sl: one slice */
static void both_chunk(float *restrict dx, float *restrict dU, float beta,
                       const float *restrict dy, const float *restrict x,
                       const float *restrict U, int nb, float *restrict sl,
                       const conv2d_shape *s, const wino_plan *p, int threads, double *t)
{
    weight_chunk(dU, beta, dy, x, nb, sl, s, p, threads, t);
    if (dx) data_from_mbar(dx, U, nb, sl, s, p, threads, t); /* V's job is done */
}

void winograd_forward_prof(float *restrict y, const float *restrict x, const float *restrict w,
                           const float *restrict b, float *restrict ws, const conv2d_shape *s,
                           int threads, double *prof)
{
    GN_ASSERT(winograd_applies(s));
    wino_plan p = make_plan(s, s->winograd, threads);
    size_t xs = (size_t)s->C * s->H * s->W, ys = (size_t)s->K * s->P * s->Q;
    float *U = ws, *sl = ws + (size_t)p.uarrays * p.u;
    double ck = kprof_now(prof);
    weight_tiles(U, w, s, &p, threads);
    kprof_lap(prof, 0, &ck);
    if (p.nt == 1) {
        for (int ch = 0; ch < p.nchunks; ch++) {
            int n0 = ch * p.ipc, nb = GN_MIN(p.ipc, s->N - n0);
            forward_chunk(y + n0 * ys, x + n0 * xs, U, b, nb, sl, s, &p, threads, prof);
        }
        return;
    }
    double part[KPROF_MAX_THREADS][2] = {{0}};
#pragma omp parallel for schedule(static) num_threads(p.nt)
    for (int ch = 0; ch < p.nchunks; ch++) {
        int id = kernel_thread_id(), n0 = ch * p.ipc, nb = GN_MIN(p.ipc, s->N - n0);
        forward_chunk(y + n0 * ys, x + n0 * xs, U, b, nb, sl + (size_t)id * p.slice, s, &p, 1,
                      prof ? part[id] : NULL);
    }
    kprof_merge(prof, part, p.nt);
}

/* db[k] += sum of dy[., k, ., .], each k summed in a fixed order */
static void bias_grad(float *restrict db, const float *restrict dy, const conv2d_shape *s,
                      int threads)
{
    size_t PQ = (size_t)s->P * s->Q;
    (void)threads; /* read only by the OpenMP pragma */
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
    for (int k = 0; k < s->K; k++) {
        double acc = 0;
        for (int n = 0; n < s->N; n++) {
            const float *d = dy + ((size_t)n * s->K + k) * PQ;
            for (size_t i = 0; i < PQ; i++) acc += d[i];
        }
        db[k] += (float)acc;
    }
}

void winograd_backward_prof(float *restrict dx, float *restrict dw, float *restrict db,
                            const float *restrict dy, const float *restrict x,
                            const float *restrict w, float *restrict ws, const conv2d_shape *s,
                            int threads, double *prof)
{
    GN_ASSERT(winograd_applies(s));
    wino_plan p = make_plan(s, s->winograd, threads);
    size_t xs = (size_t)s->C * s->H * s->W, ys = (size_t)s->K * s->P * s->Q;
    float *U = ws, *sl = ws + (size_t)p.uarrays * p.u;
    double part[KPROF_MAX_THREADS][2] = {{0}};
    double ck = kprof_now(prof);
    if (db) bias_grad(db, dy, s, threads);
    if (dx) weight_tiles(U, w, s, &p, threads);
    kprof_lap(prof, 0, &ck);
    float *dU = ws; /* dU, or the first of its nparts partials */
    int nparts = 1;
    if (p.fused) {
        /* One pass: U stays, dU (thread t's partial) at ws + (1+t)*u; each thread's first
         * chunk writes its partial (beta 0), weight_grad sums them. */
        dU = ws + p.u;
        if (p.nt == 1) {
            for (int ch = 0; ch < p.nchunks; ch++) {
                int n0 = ch * p.ipc, nb = GN_MIN(p.ipc, s->N - n0);
                both_chunk(dx ? dx + n0 * xs : NULL, dU, ch ? 1.0f : 0.0f, dy + n0 * ys,
                           x + n0 * xs, U, nb, sl, s, &p, threads, prof);
            }
        } else {
            int wrote[KPROF_MAX_THREADS] = {0};
#pragma omp parallel for schedule(static) num_threads(p.nt)
            for (int ch = 0; ch < p.nchunks; ch++) {
                int id = kernel_thread_id(), n0 = ch * p.ipc, nb = GN_MIN(p.ipc, s->N - n0);
                both_chunk(dx ? dx + n0 * xs : NULL, dU + (size_t)id * p.u,
                           wrote[id] ? 1.0f : 0.0f, dy + n0 * ys, x + n0 * xs, U, nb,
                           sl + (size_t)id * p.slice, s, &p, 1, prof ? part[id] : NULL);
                wrote[id] = 1;
            }
            kprof_merge(prof, part, p.nt);
            /* A static schedule hands chunks to the first threads: those partials count. */
            GN_ASSERT(wrote[0]);
            while (nparts < p.nt && wrote[nparts]) nparts++;
            for (int t = nparts; t < p.nt; t++) GN_ASSERT(!wrote[t]);
        }
    } else {
        if (dx) { /* the data pass, with U */
            if (p.nt == 1) {
                for (int ch = 0; ch < p.nchunks; ch++) {
                    int n0 = ch * p.ipc, nb = GN_MIN(p.ipc, s->N - n0);
                    data_chunk(dx + n0 * xs, dy + n0 * ys, U, nb, sl, s, &p, threads, prof);
                }
            } else {
#pragma omp parallel for schedule(static) num_threads(p.nt)
                for (int ch = 0; ch < p.nchunks; ch++) {
                    int id = kernel_thread_id(), n0 = ch * p.ipc, nb = GN_MIN(p.ipc, s->N - n0);
                    data_chunk(dx + n0 * xs, dy + n0 * ys, U, nb, sl + (size_t)id * p.slice, s,
                               &p, 1, prof ? part[id] : NULL);
                }
                kprof_merge(prof, part, p.nt);
            }
        }
        /* The weight pass in turn: chunks of up to cap images into one dU in U's space (the
         * data pass is done with U), transforms in OpenMP loops over channels, multithreaded
         * sgemm. */
        for (int n0 = 0; n0 < s->N; n0 += p.cap) {
            int nb = GN_MIN(p.cap, s->N - n0);
            weight_chunk(dU, n0 ? 1.0f : 0.0f, dy + n0 * ys, x + n0 * xs, nb, sl, s, &p,
                         threads, prof);
        }
    }
    ck = kprof_now(prof);
    weight_grad(dw, dU, nparts, s, &p, threads);
    kprof_lap(prof, 0, &ck);
}
