/*
 * Reference CPU kernels (see cpu_ops.h).
 *
 * Convolution is a GEMM per group: out[oc][p] = sum_k W[oc][k] * col[k][p]
 * with k = (ic, ky, kx) and p = output pixel. The output pixels are cut into
 * chunks of NC pixels; a worker builds the im2col block of one chunk in its
 * own scratch slot (so scratch stays K*NC floats per thread whatever the
 * image size) and multiplies it by the packed weights with a register-blocked
 * MR x NR micro-kernel written with GCC/Clang vector types, which compile to
 * SIMD on every target without -march flags. Transposed convolution uses the
 * same micro-kernel on the transposed weights and scatters (col2im) the
 * products; workers own disjoint output channels so the scatter needs no
 * locks.
 *
 * With AVX2 (see cpu_ops.h) the micro-tile is 6 x 16 with FMA and the bias
 * and activation are applied in registers; the weight panels are the same
 * (6 rows), only the column panels are 16 pixels wide instead of 8. Chunks
 * are multiples of 16 pixels on both paths so scratch sizes do not depend on
 * the path.
 */
#include "nn/cpu/cpu_ops.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* 4-float SIMD vector; `vf4u` may sit at any float-aligned address. */
typedef float vf4 __attribute__((vector_size(16)));
typedef float vf4u __attribute__((vector_size(16), aligned(4)));

#define MR NNCPU_MR /* output rows (channels) per micro-tile */
#define NR 8          /* pixels per portable micro-tile: two vf4 */
#define NR_MAX 16     /* widest column panel of any path (AVX2) */
#define NC_MAX 512
#define MIN_CHUNK 128 /* pixels */
#define COL_TARGET_FLOATS 65536 /* ~256 KiB im2col block: stays in L2 */

/* Applies act to n floats in place; the switch is hoisted so each loop is a
 * plain (vectorisable) pass. */
static void act_row(float *restrict p, size_t n, nn_act act, float alpha)
{
    switch (act) {
    case NN_ACT_RELU:
        for (size_t i = 0; i < n; i++) p[i] = p[i] > 0.0f ? p[i] : 0.0f;
        break;
    case NN_ACT_LEAKY:
        for (size_t i = 0; i < n; i++) p[i] = p[i] < 0.0f ? p[i] * alpha : p[i];
        break;
    case NN_ACT_SIGMOID:
        for (size_t i = 0; i < n; i++) p[i] = 1.0f / (1.0f + expf(-p[i]));
        break;
    default: break;
    }
}

static inline size_t plane(const nn_tensor *t) { return (size_t)t->h * (size_t)t->w; }

/* ---- SIMD dispatch -------------------------------------------------------- */

/* -1 until resolved, then 0 (portable) or 1 (AVX2). Resolution is
 * idempotent, so concurrent first calls may both compute it; the
 * compare-exchange only keeps a forced value from being overwritten. */
static atomic_int simd_state = -1;

static int simd_resolve(void)
{
#ifdef NNCPU_HAVE_AVX2
    const char *e = getenv("UPRES_SIMD");
    if (e && strcmp(e, "0") == 0) return 0;
    return nncpu_avx2_usable();
#else
    return 0;
#endif
}

int nncpu_simd(void)
{
    int s = atomic_load(&simd_state);
    if (s >= 0) return s;
    int want = simd_resolve(), expected = -1;
    if (!atomic_compare_exchange_strong(&simd_state, &expected, want)) return expected;
    return want;
}

int nncpu_set_simd(int on)
{
#ifdef NNCPU_HAVE_AVX2
    int s = on && nncpu_avx2_usable() ? 1 : 0;
#else
    int s = 0;
    (void)on;
#endif
    atomic_store(&simd_state, s);
    return s;
}

/*
 * tile[MR][NR] = sum over k < K of a[k][0..MR) (outer) b[k][0..NR).
 * a: packed weights, MR floats per k; b: packed columns, NR floats per k,
 * 16-byte aligned. Twelve named accumulators keep the tile in registers.
 */
static void micro_kernel(int K, const float *restrict a, const float *restrict b,
                         float tile[MR][NR])
{
    vf4 c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0}, c20 = {0}, c21 = {0};
    vf4 c30 = {0}, c31 = {0}, c40 = {0}, c41 = {0}, c50 = {0}, c51 = {0};
    for (int k = 0; k < K; k++) {
        const vf4 b0 = *(const vf4 *)(b + (size_t)k * NR);
        const vf4 b1 = *(const vf4 *)(b + (size_t)k * NR + 4);
        const float *ak = a + (size_t)k * MR;
        vf4 x;
        x = (vf4){ak[0], ak[0], ak[0], ak[0]};
        c00 += x * b0;
        c01 += x * b1;
        x = (vf4){ak[1], ak[1], ak[1], ak[1]};
        c10 += x * b0;
        c11 += x * b1;
        x = (vf4){ak[2], ak[2], ak[2], ak[2]};
        c20 += x * b0;
        c21 += x * b1;
        x = (vf4){ak[3], ak[3], ak[3], ak[3]};
        c30 += x * b0;
        c31 += x * b1;
        x = (vf4){ak[4], ak[4], ak[4], ak[4]};
        c40 += x * b0;
        c41 += x * b1;
        x = (vf4){ak[5], ak[5], ak[5], ak[5]};
        c50 += x * b0;
        c51 += x * b1;
    }
    *(vf4u *)&tile[0][0] = c00;
    *(vf4u *)&tile[0][4] = c01;
    *(vf4u *)&tile[1][0] = c10;
    *(vf4u *)&tile[1][4] = c11;
    *(vf4u *)&tile[2][0] = c20;
    *(vf4u *)&tile[2][4] = c21;
    *(vf4u *)&tile[3][0] = c30;
    *(vf4u *)&tile[3][4] = c31;
    *(vf4u *)&tile[4][0] = c40;
    *(vf4u *)&tile[4][4] = c41;
    *(vf4u *)&tile[5][0] = c50;
    *(vf4u *)&tile[5][4] = c51;
}

/* ---- Convolution ---------------------------------------------------------- */

static size_t conv_k(const nn_conv_desc *d, int in_c)
{
    return (size_t)(in_c / d->groups) * (size_t)d->kh * (size_t)d->kw;
}

static size_t round_up(size_t v, size_t m) { return (v + m - 1) / m * m; }

/* Pixels per im2col chunk for a GEMM depth K over P output pixels. */
static size_t conv_chunk(size_t K, size_t P)
{
    size_t nc = COL_TARGET_FLOATS / (K ? K : 1) / NR_MAX * NR_MAX;
    /* Wide inputs (RRDBNet's dense blocks, K up to 1728) would get chunks of
     * a few panels, and then the per-row bookkeeping of im2col costs more
     * than the GEMM; keep chunks at least MIN_CHUNK pixels wide. */
    if (nc < MIN_CHUNK) nc = MIN_CHUNK;
    if (nc > NC_MAX) nc = NC_MAX;
    size_t pr = round_up(P, NR_MAX);
    return nc < pr ? nc : pr;
}

/* Floats of the im2col GEMM weights (0 on overflow). */
static size_t gemm_packed_size(const nn_conv_desc *d, int in_c)
{
    size_t ocg = (size_t)(d->out_c / d->groups), npan = (ocg + MR - 1) / MR, n;
    if (!upres__mul_size(npan * MR, conv_k(d, in_c), &n) ||
        !upres__mul_size(n, (size_t)d->groups, &n))
        return 0;
    return round_up(n, 16); /* keeps the Winograd weights after it aligned */
}

size_t nncpu_conv_packed_size(const nn_conv_desc *d, int in_c)
{
    size_t n = gemm_packed_size(d, in_c);
    if (n && nncpu_conv_winograd(d, in_c)) {
        size_t u = nncpu_wino_packed_size(d, in_c);
        if (!u || !upres__add_size(n, u, &n)) return 0;
    }
    return n;
}

void nncpu_conv_pack(const nn_conv_desc *d, int in_c, const float *weight, float *packed)
{
    size_t K = conv_k(d, in_c), ocg = (size_t)(d->out_c / d->groups);
    size_t npan = (ocg + MR - 1) / MR;
    for (size_t g = 0; g < (size_t)d->groups; g++)
        for (size_t pan = 0; pan < npan; pan++) {
            float *dst = packed + (g * npan + pan) * K * MR;
            for (size_t k = 0; k < K; k++)
                for (size_t r = 0; r < MR; r++) {
                    size_t o = pan * MR + r;
                    dst[k * MR + r] = o < ocg ? weight[(g * ocg + o) * K + k] : 0.0f;
                }
        }
    if (nncpu_conv_winograd(d, in_c))
        nncpu_wino_pack(d, in_c, weight, packed + gemm_packed_size(d, in_c));
}

size_t nncpu_conv_scratch(const nn_conv_desc *d, int in_c, int out_h, int out_w)
{
    size_t K = conv_k(d, in_c), n;
    size_t nc = conv_chunk(K, (size_t)out_h * (size_t)out_w);
    if (!upres__mul_size(K, nc, &n)) return 0;
    if (nncpu_conv_winograd(d, in_c)) {
        size_t w = nncpu_wino_scratch(d, in_c, out_h, out_w);
        if (!w) return 0;
        if (w > n) n = w;
    }
    return n;
}

typedef struct conv_job {
    const nncpu_conv_io *io;
    nn_tensor *out;
    const nn_conv_desc *d;
    const float *packed, *bias;
    float *scratch;
    size_t slot_floats, K, nc, nchunks, nitems, P;
    int simd; /* the kernel set of this run (nncpu_simd() read once) */
    atomic_size_t next;
} conv_job;

/* Writes n floats from src (zeros when src is NULL) at chunk pixels
 * [jx, jx+n) of column row `dst` (panel layout, see conv_im2col). */
static inline void col_put(float *restrict dst, size_t panel_stride, size_t nr, size_t jx,
                           const float *restrict src, size_t n)
{
    while (n) {
        size_t off = jx % nr, run = nr - off < n ? nr - off : n;
        float *d = dst + (jx / nr) * panel_stride + off;
        /* Runs are at most one panel (8 or 16 floats); there a memcpy or
         * memset call (which GCC also makes of plain copy loops) costs more
         * than the copy: measured as most of im2col's time on RRDBNet. */
        if (run == 16) {
            /* The common case, a whole AVX2 panel, in straight-line code. */
            const vf4 z = {0.0f, 0.0f, 0.0f, 0.0f};
            vf4 a = z, b = z, c = z, e = z;
            if (src) {
                a = *(const vf4u *)src;
                b = *(const vf4u *)(src + 4);
                c = *(const vf4u *)(src + 8);
                e = *(const vf4u *)(src + 12);
                src += 16;
            }
            *(vf4u *)d = a;
            *(vf4u *)(d + 4) = b;
            *(vf4u *)(d + 8) = c;
            *(vf4u *)(d + 12) = e;
        } else if (src) {
            for (size_t i = 0; i < run; i++) d[i] = src[i];
            src += run;
        } else {
            for (size_t i = 0; i < run; i++) d[i] = 0.0f;
        }
        jx += run;
        n -= run;
    }
}

/* Builds the im2col block of pixels [p0, p0+np) of group g into col, laid
 * out as nr-pixel panels: col[panel][k][nr], zero past np and outside the
 * input (zero padding). Always inlined with a constant nr so the panel
 * index arithmetic is shifts. */
static inline __attribute__((always_inline)) void
conv_im2col_nr(const conv_job *j, size_t g, size_t p0, size_t np, float *restrict col,
               const size_t nr)
{
    const nn_conv_desc *d = j->d;
    const nncpu_conv_io *io = j->io;
    const int H = io->h, W = io->w, OW = j->out->w;
    const size_t K = j->K, icg = (size_t)(io->in_c / d->groups), npan = (np + nr - 1) / nr;
    const size_t panel_stride = K * nr;
    size_t k = 0;
    for (size_t ic = 0; ic < icg; ic++) {
        const float *src = io->chan[g * icg + ic];
        for (int ky = 0; ky < d->kh; ky++)
            for (int kx = 0; kx < d->kw; kx++, k++) {
                /* Walk the chunk row segment by row segment so the bounds
                 * test on y is done once per segment. */
                size_t p = p0, end = p0 + np, jx = 0;
                int oy = (int)(p / (size_t)OW), ox = (int)(p % (size_t)OW);
                float *dst = col + k * nr;
                while (p < end) {
                    size_t seg = (size_t)(OW - ox);
                    if (seg > end - p) seg = end - p;
                    int iy = oy * d->stride_h - d->pad_t + ky * d->dil_h;
                    int ix = ox * d->stride_w - d->pad_l + kx * d->dil_w;
                    if (iy < 0 || iy >= H) {
                        col_put(dst, panel_stride, nr, jx, NULL, seg);
                        jx += seg;
                    } else if (d->stride_w == 1) {
                        /* Unit stride: the segment is zeros, one run of
                         * the input row, zeros. */
                        const float *row = src + (size_t)iy * (size_t)W;
                        int64_t lo = ix < 0 ? -(int64_t)ix : 0, hi = (int64_t)W - ix;
                        if (lo > (int64_t)seg) lo = (int64_t)seg;
                        if (hi > (int64_t)seg) hi = (int64_t)seg;
                        if (hi < lo) hi = lo;
                        col_put(dst, panel_stride, nr, jx, NULL, (size_t)lo);
                        if (hi > lo)
                            col_put(dst, panel_stride, nr, jx + (size_t)lo, row + (ix + lo),
                                    (size_t)(hi - lo));
                        col_put(dst, panel_stride, nr, jx + (size_t)hi, NULL,
                                seg - (size_t)hi);
                        jx += seg;
                    } else {
                        const float *row = src + (size_t)iy * (size_t)W;
                        for (size_t s = 0; s < seg; s++, jx++, ix += d->stride_w)
                            dst[(jx / nr) * panel_stride + jx % nr] =
                                (ix >= 0 && ix < W) ? row[ix] : 0.0f;
                    }
                    p += seg;
                    ox = 0;
                    oy++;
                }
                col_put(dst, panel_stride, nr, jx, NULL, npan * nr - jx);
            }
    }
}

/* The epilogue the GEMM kernel did not apply, on n outputs of channel oc
 * starting at pixel pix: PReLU or sigmoid (the kernels fuse only ReLU and
 * leaky), then scale and residual. */
static void conv_post(const conv_job *j, float *restrict dst, size_t n, size_t oc, size_t pix,
                      int prelu_done)
{
    const nncpu_conv_io *io = j->io;
    if (io->act == NN_ACT_PRELU && !prelu_done) {
        float s = io->slopes[io->nslopes == 1 ? 0 : oc];
        for (size_t x = 0; x < n; x++) dst[x] = dst[x] < 0.0f ? dst[x] * s : dst[x];
    } else if (io->act == NN_ACT_SIGMOID) {
        act_row(dst, n, NN_ACT_SIGMOID, 0.0f);
    }
    if (io->scale != 1.0f)
        for (size_t x = 0; x < n; x++) dst[x] *= io->scale;
    if (io->res && io->res_full) {
        const float *r = io->res + oc * j->P + pix;
        for (size_t x = 0; x < n; x++) dst[x] += r[x];
    } else if (io->res) {
        for (size_t x = 0; x < n; x++) dst[x] += io->res[oc];
    }
}

static void conv_im2col(const conv_job *j, size_t g, size_t p0, size_t np, float *col)
{
    conv_im2col_nr(j, g, p0, np, col, NR);
}

#ifdef NNCPU_HAVE_AVX2
static void conv_im2col16(const conv_job *j, size_t g, size_t p0, size_t np, float *col)
{
    conv_im2col_nr(j, g, p0, np, col, NNCPU_NR_AVX2);
}

/* conv_item with the 6x16 AVX2 kernel, bias and ReLU/leaky fused. */
static void conv_item_avx2(conv_job *j, size_t item, float *col)
{
    const nn_conv_desc *d = j->d;
    const size_t NRA = NNCPU_NR_AVX2;
    size_t g = item / j->nchunks, chunk = item % j->nchunks;
    size_t p0 = chunk * j->nc, np = j->P - p0 < j->nc ? j->P - p0 : j->nc;
    const size_t K = j->K, ocg = (size_t)(d->out_c / d->groups), P = j->P;
    const size_t npan_w = (ocg + MR - 1) / MR, npan_p = (np + NRA - 1) / NRA;
    /* The kernel applies ReLU, leaky and PReLU; conv_post the rest. */
    const nncpu_conv_io *io = j->io;
    const int prelu = io->act == NN_ACT_PRELU;
    const nn_act act =
        io->act == NN_ACT_RELU || io->act == NN_ACT_LEAKY || prelu ? io->act : NN_ACT_NONE;
    const int post = io->act == NN_ACT_SIGMOID || io->scale != 1.0f || io->res;
    float slopes[MR];
    conv_im2col16(j, g, p0, np, col);
    /* Weight panel outermost: its K*6 floats stay in L1 while the column
     * panels stream from L2 (measured a few % faster than the reverse). */
    for (size_t pan = 0; pan < npan_w; pan++) {
        size_t o0 = pan * MR, oc0 = g * ocg + o0;
        int rows = ocg - o0 < MR ? (int)(ocg - o0) : MR;
        const float *a = j->packed + (g * npan_w + pan) * K * MR;
        for (size_t pb = 0; pb < npan_p; pb++) {
            size_t pix = p0 + pb * NRA, npix = np - pb * NRA < NRA ? np - pb * NRA : NRA;
            float *dst = j->out->data + oc0 * P + pix;
            if (prelu)
                for (int r = 0; r < rows; r++)
                    slopes[r] = io->slopes[io->nslopes == 1 ? 0 : oc0 + (size_t)r];
            else
                slopes[0] = io->alpha;
            nncpu_avx2_gemm6x16(K, a, col + pb * K * NRA, dst, P, rows, (int)npix,
                                j->bias ? j->bias + oc0 : NULL, act, slopes);
            if (post)
                for (int r = 0; r < rows; r++)
                    conv_post(j, dst + (size_t)r * P, npix, oc0 + (size_t)r, pix, 1);
        }
    }
}
#endif

static void conv_item(conv_job *j, size_t item, float *col)
{
    const nn_conv_desc *d = j->d;
    size_t g = item / j->nchunks, chunk = item % j->nchunks;
    size_t p0 = chunk * j->nc, np = j->P - p0 < j->nc ? j->P - p0 : j->nc;
    const size_t K = j->K, ocg = (size_t)(d->out_c / d->groups);
    const size_t npan_w = (ocg + MR - 1) / MR, npan_p = (np + NR - 1) / NR;
    const size_t P = j->P;
    conv_im2col(j, g, p0, np, col);
    float tile[MR][NR];
    for (size_t pb = 0; pb < npan_p; pb++) {
        const float *b = col + pb * K * NR;
        size_t pix = p0 + pb * NR, npix = np - pb * NR < NR ? np - pb * NR : NR;
        for (size_t pan = 0; pan < npan_w; pan++) {
            micro_kernel((int)K, j->packed + (g * npan_w + pan) * K * MR, b, tile);
            for (size_t r = 0; r < MR; r++) {
                size_t o = pan * MR + r;
                if (o >= ocg) break;
                size_t oc = g * ocg + o;
                float bias = j->bias ? j->bias[oc] : 0.0f;
                float *dst = j->out->data + oc * P + pix;
                for (size_t x = 0; x < npix; x++) dst[x] = tile[r][x] + bias;
                if (j->io->act == NN_ACT_RELU || j->io->act == NN_ACT_LEAKY)
                    act_row(dst, npix, j->io->act, j->io->alpha);
                conv_post(j, dst, npix, oc, pix, 0);
            }
        }
    }
}

static void conv_task(void *user, uint64_t begin, uint64_t end)
{
    conv_job *j = user;
    for (uint64_t slot = begin; slot < end; slot++) {
        float *col = j->scratch + slot * j->slot_floats;
        for (;;) {
            size_t item = atomic_fetch_add(&j->next, 1);
            if (item >= j->nitems) break;
#ifdef NNCPU_HAVE_AVX2
            if (j->simd) {
                conv_item_avx2(j, item, col);
                continue;
            }
#endif
            conv_item(j, item, col);
        }
    }
}

int nncpu_conv2d(upres_ctx *ctx, const nncpu_conv_io *io, const nn_conv_desc *d,
                 const float *packed, float *scratch, int slots)
{
    if (nncpu_conv_winograd(d, io->in_c) && nncpu_set_winograd(-1))
        return nncpu_wino_conv(ctx, io, d, packed + gemm_packed_size(d, io->in_c), scratch,
                               slots);
    conv_job j;
    j.io = io;
    j.out = io->out;
    j.d = d;
    j.packed = packed;
    j.bias = io->bias;
    j.scratch = scratch;
    j.K = conv_k(d, io->in_c);
    j.P = plane(io->out);
    j.nc = conv_chunk(j.K, j.P);
    /* As the planner lays the slots out. */
    j.slot_floats = round_up(nncpu_conv_scratch(d, io->in_c, io->out->h, io->out->w), 16);
    j.nchunks = (j.P + j.nc - 1) / j.nc;
    j.nitems = j.nchunks * (size_t)d->groups;
    j.simd = nncpu_simd();
    atomic_init(&j.next, 0);
    int threads = ctx ? upres_ctx_threads(ctx) : 1;
    if (threads > slots) threads = slots;
    if ((size_t)threads > j.nitems) threads = (int)j.nitems;
    if (threads < 1) threads = 1;
    /* One task per scratch slot; the tasks pull chunks from a shared
     * counter, which balances the load without tying chunks to slots. */
    return upres__parallel_for(ctx, NULL, (uint64_t)threads, 1, conv_task, &j);
}

/* ---- Transposed convolution ----------------------------------------------- */

/* GEMM rows of one output channel: its kh*kw taps. Output channels are
 * handled in blocks of `ocb` so that a block's rows fill whole MR panels. */
static size_t deconv_taps(const nn_conv_desc *d) { return (size_t)d->kh * (size_t)d->kw; }

static size_t deconv_ocb(const nn_conv_desc *d)
{
    size_t taps = deconv_taps(d), ocg = (size_t)(d->out_c / d->groups), ocb = 1;
    /* Few channels: one per task, so that every thread gets some. */
    if (ocg <= 16) return 1;
    while ((ocb * taps) % MR && ocb < MR) ocb++;
    if ((ocb * taps) % MR) ocb = 1;
    return ocb < ocg ? ocb : ocg;
}

size_t nncpu_deconv_packed_size(const nn_conv_desc *d, int in_c)
{
    size_t ocg = (size_t)(d->out_c / d->groups), ocb = deconv_ocb(d);
    size_t nblk = (ocg + ocb - 1) / ocb, rows, n;
    if (!upres__mul_size(ocb, deconv_taps(d), &rows)) return 0;
    rows = round_up(rows, MR);
    if (!upres__mul_size(rows, nblk, &n) || !upres__mul_size(n, (size_t)(in_c / d->groups), &n) ||
        !upres__mul_size(n, (size_t)d->groups, &n))
        return 0;
    return n;
}

/* Layout: [g][block][panel][ic][MR], row r of a block = (oc - block start) *
 * taps + tap, rows past the block's channels zero. */
void nncpu_deconv_pack(const nn_conv_desc *d, int in_c, const float *weight, float *packed)
{
    size_t ocg = (size_t)(d->out_c / d->groups), icg = (size_t)(in_c / d->groups);
    size_t taps = deconv_taps(d), ocb = deconv_ocb(d), nblk = (ocg + ocb - 1) / ocb;
    size_t rows = round_up(ocb * taps, MR), npan = rows / MR;
    for (size_t g = 0; g < (size_t)d->groups; g++)
        for (size_t blk = 0; blk < nblk; blk++)
            for (size_t pan = 0; pan < npan; pan++) {
                float *dst = packed + ((g * nblk + blk) * npan + pan) * icg * MR;
                for (size_t ic = 0; ic < icg; ic++)
                    for (size_t r = 0; r < MR; r++) {
                        size_t row = pan * MR + r, o = blk * ocb + row / taps, tap = row % taps;
                        float v = 0.0f;
                        if (row < ocb * taps && o < ocg)
                            v = weight[((g * icg + ic) * ocg + o) * taps + tap];
                        dst[ic * MR + r] = v;
                    }
            }
}

size_t nncpu_deconv_scratch(const nn_conv_desc *d, int in_c, int in_h, int in_w)
{
    size_t n;
    if (!upres__mul_size(round_up((size_t)in_h * (size_t)in_w, NR_MAX), (size_t)(in_c / d->groups),
                         &n))
        return 0;
    return n;
}

typedef struct deconv_job {
    const nn_tensor *in;
    nn_tensor *out;
    const nn_conv_desc *d;
    const float *packed, *bias;
    const float *colp; /* the group's input, packed as [panel][ic][nr] */
    size_t g, icg, ocg, ocb, nblk, taps, npan, P;
    size_t nr; /* column panel width: NR, or 16 with AVX2 */
    int simd;
} deconv_job;

static void deconv_block(void *user, uint64_t begin, uint64_t end)
{
    deconv_job *j = user;
    const nn_conv_desc *d = j->d;
    const int IW = j->in->w, OH = j->out->h, OW = j->out->w;
    const size_t nr = j->nr, opl = plane(j->out), ppan = (j->P + nr - 1) / nr;
    float tile[MR][NR], tile16[MR * NR_MAX];
    const float *t = j->simd ? tile16 : &tile[0][0];
    for (uint64_t blk = begin; blk < end; blk++) {
        size_t o0 = blk * j->ocb, o1 = o0 + j->ocb < j->ocg ? o0 + j->ocb : j->ocg;
        for (size_t o = o0; o < o1; o++) {
            size_t oc = j->g * j->ocg + o;
            float bv = j->bias ? j->bias[oc] : 0.0f, *dst = j->out->data + oc * opl;
            for (size_t i = 0; i < opl; i++) dst[i] = bv;
        }
        const float *wblk = j->packed + (j->g * j->nblk + blk) * j->npan * j->icg * MR;
        for (size_t pb = 0; pb < ppan; pb++) {
            size_t p0 = pb * nr, np = j->P - p0 < nr ? j->P - p0 : nr;
            for (size_t pan = 0; pan < j->npan; pan++) {
                const float *a = wblk + pan * j->icg * MR, *b = j->colp + pb * j->icg * nr;
#ifdef NNCPU_HAVE_AVX2
                if (j->simd)
                    nncpu_avx2_gemm6x16(j->icg, a, b, tile16, NR_MAX, MR, NR_MAX, NULL,
                                        NN_ACT_NONE, NULL);
                else
#endif
                    micro_kernel((int)j->icg, a, b, tile);
                for (size_t r = 0; r < MR; r++) {
                    size_t row = pan * MR + r, o = o0 + row / j->taps, tap = row % j->taps;
                    if (o >= o1) break;
                    int ky = (int)(tap / (size_t)d->kw), kx = (int)(tap % (size_t)d->kw);
                    float *dst = j->out->data + (j->g * j->ocg + o) * opl;
                    for (size_t x = 0; x < np; x++) {
                        size_t p = p0 + x;
                        int iy = (int)(p / (size_t)IW), ix = (int)(p % (size_t)IW);
                        int oy = iy * d->stride_h - d->pad_t + ky * d->dil_h;
                        int ox = ix * d->stride_w - d->pad_l + kx * d->dil_w;
                        if (oy >= 0 && oy < OH && ox >= 0 && ox < OW)
                            dst[(size_t)oy * (size_t)OW + (size_t)ox] += t[r * nr + x];
                    }
                }
            }
        }
        if (d->act != NN_ACT_NONE)
            for (size_t o = o0; o < o1; o++)
                act_row(j->out->data + (j->g * j->ocg + o) * opl, opl, d->act, d->act_alpha);
    }
}

int nncpu_deconv2d(upres_ctx *ctx, const nn_tensor *in, nn_tensor *out, const nn_conv_desc *d,
                   const float *packed, const float *bias, float *scratch)
{
    deconv_job j;
    j.in = in;
    j.out = out;
    j.d = d;
    j.packed = packed;
    j.bias = bias;
    j.icg = (size_t)(in->c / d->groups);
    j.ocg = (size_t)(d->out_c / d->groups);
    j.ocb = deconv_ocb(d);
    j.nblk = (j.ocg + j.ocb - 1) / j.ocb;
    j.taps = deconv_taps(d);
    j.npan = round_up(j.ocb * j.taps, MR) / MR;
    j.P = plane(in);
    j.colp = scratch;
    j.simd = nncpu_simd();
    j.nr = j.simd ? NR_MAX : NR;
    const size_t nr = j.nr, ppan = (j.P + nr - 1) / nr;
    for (size_t g = 0; g < (size_t)d->groups; g++) {
        j.g = g;
        /* Pack the group's input once; every output block reads it. */
        for (size_t pb = 0; pb < ppan; pb++)
            for (size_t ic = 0; ic < j.icg; ic++) {
                const float *src = in->data + (g * j.icg + ic) * j.P + pb * nr;
                float *dst = scratch + (pb * j.icg + ic) * nr;
                size_t np = j.P - pb * nr < nr ? j.P - pb * nr : nr;
                for (size_t x = 0; x < nr; x++) dst[x] = x < np ? src[x] : 0.0f;
            }
        int st = upres__parallel_for(ctx, NULL, j.nblk, 1, deconv_block, &j);
        if (st) return st;
    }
    return UPRES_OK;
}

/* ---- Elementwise ---------------------------------------------------------- */

/* Most simple ops run one channel plane per task. */
typedef struct plane_job {
    const nn_tensor *a, *b;
    nn_tensor *out;
    const float *p0, *p1;
    int i0, i1, i2;
    float f0;
    double d0, d1;
} plane_job;

static int per_plane(upres_ctx *ctx, int c, upres_range_fn fn, plane_job *j)
{
    return upres__parallel_for(ctx, NULL, (uint64_t)c, 1, fn, j);
}

static void act_fn(void *user, uint64_t begin, uint64_t end)
{
    plane_job *j = user;
    size_t pl = plane(j->a);
    for (uint64_t c = begin; c < end; c++) {
        float *dst = j->out->data + c * pl;
        memcpy(dst, j->a->data + c * pl, pl * sizeof(float));
        act_row(dst, pl, (nn_act)j->i0, j->f0);
    }
}

int nncpu_act(upres_ctx *ctx, const nn_tensor *in, nn_tensor *out, nn_act act, float alpha)
{
    plane_job j = {.a = in, .out = out, .i0 = (int)act, .f0 = alpha};
    return per_plane(ctx, in->c, act_fn, &j);
}

static void prelu_fn(void *user, uint64_t begin, uint64_t end)
{
    plane_job *j = user;
    size_t pl = plane(j->a);
    for (uint64_t c = begin; c < end; c++) {
        const float *restrict src = j->a->data + c * pl;
        float *restrict dst = j->out->data + c * pl;
        float s = j->p0[j->i0 == 1 ? 0 : c];
        for (size_t i = 0; i < pl; i++) dst[i] = src[i] < 0.0f ? s * src[i] : src[i];
    }
}

int nncpu_prelu(upres_ctx *ctx, const nn_tensor *in, nn_tensor *out, const float *slopes,
                int n_slopes)
{
    plane_job j = {.a = in, .out = out, .p0 = slopes, .i0 = n_slopes};
    return per_plane(ctx, in->c, prelu_fn, &j);
}

static void affine_fn(void *user, uint64_t begin, uint64_t end)
{
    plane_job *j = user;
    size_t pl = plane(j->a);
    for (uint64_t c = begin; c < end; c++) {
        const float *restrict src = j->a->data + c * pl;
        float *restrict dst = j->out->data + c * pl;
        size_t ci = j->i0 ? c : 0;
        float s = j->p0 ? j->p0[ci] : 1.0f, b = j->p1 ? j->p1[ci] : 0.0f;
        for (size_t i = 0; i < pl; i++) dst[i] = src[i] * s + b;
    }
}

int nncpu_affine(upres_ctx *ctx, const nn_tensor *in, nn_tensor *out, const float *scale,
                 const float *bias, int per_channel)
{
    plane_job j = {.a = in, .out = out, .p0 = scale, .p1 = bias, .i0 = per_channel};
    return per_plane(ctx, in->c, affine_fn, &j);
}

static inline float binop(nn_binop op, float x, float y)
{
    switch (op) {
    case NN_SUB: return x - y;
    case NN_MUL: return x * y;
    case NN_DIV: return x / y;
    default: return x + y;
    }
}

static void binary_fn(void *user, uint64_t begin, uint64_t end)
{
    plane_job *j = user;
    const nn_tensor *a = j->a, *b = j->b;
    nn_binop op = (nn_binop)j->i0;
    size_t pl = plane(j->out);
    for (uint64_t c = begin; c < end; c++) {
        /* Each side: full plane (step 1) or a per-channel / scalar value
         * (step 0); a 1-channel side is read at channel 0. */
        size_t sa = plane(a) == 1 ? 0 : 1, sb = plane(b) == 1 ? 0 : 1;
        const float *pa = a->data + (a->c == 1 ? 0 : c) * plane(a);
        const float *pb = b->data + (b->c == 1 ? 0 : c) * plane(b);
        float *restrict dst = j->out->data + c * pl;
        if (sa && sb) {
            switch (op) {
            case NN_SUB: for (size_t i = 0; i < pl; i++) dst[i] = pa[i] - pb[i]; break;
            case NN_MUL: for (size_t i = 0; i < pl; i++) dst[i] = pa[i] * pb[i]; break;
            case NN_DIV: for (size_t i = 0; i < pl; i++) dst[i] = pa[i] / pb[i]; break;
            default: for (size_t i = 0; i < pl; i++) dst[i] = pa[i] + pb[i]; break;
            }
        } else {
            for (size_t i = 0; i < pl; i++) dst[i] = binop(op, pa[i * sa], pb[i * sb]);
        }
    }
}

int nncpu_binary(upres_ctx *ctx, nn_binop op, const nn_tensor *a, const nn_tensor *b,
                 nn_tensor *out)
{
    plane_job j = {.a = a, .b = b, .out = out, .i0 = (int)op};
    return per_plane(ctx, out->c, binary_fn, &j);
}

/* ---- Data movement -------------------------------------------------------- */

typedef struct concat_job {
    const nn_tensor *ins;
    nn_tensor *out;
    int n;
} concat_job;

static void concat_fn(void *user, uint64_t begin, uint64_t end)
{
    concat_job *j = user;
    size_t pl = plane(j->out);
    for (uint64_t c = begin; c < end; c++) {
        uint64_t rem = c;
        int i = 0;
        while (rem >= (uint64_t)j->ins[i].c) rem -= (uint64_t)j->ins[i++].c;
        memcpy(j->out->data + c * pl, j->ins[i].data + rem * pl, pl * sizeof(float));
    }
}

int nncpu_concat(upres_ctx *ctx, int n, const nn_tensor *ins, nn_tensor *out)
{
    concat_job j = {ins, out, n};
    return upres__parallel_for(ctx, NULL, (uint64_t)out->c, 1, concat_fn, &j);
}

static void shuffle_fn(void *user, uint64_t begin, uint64_t end)
{
    plane_job *j = user;
    const int r = j->i0, unshuffle = j->i1;
    /* Parametrised by the small side: s = [C*r*r][h][w], l = [C][h*r][w*r]. */
    const nn_tensor *s = unshuffle ? j->out : j->a, *l = unshuffle ? j->a : j->out;
    const size_t h = (size_t)s->h, w = (size_t)s->w, lw = (size_t)l->w;
    for (uint64_t sc = begin; sc < end; sc++) {
        size_t lc = sc / (size_t)(r * r), i = sc / (size_t)r % (size_t)r, k = sc % (size_t)r;
        float *sp = s->data + sc * h * w;
        float *lp = l->data + lc * plane(l);
        for (size_t y = 0; y < h; y++) {
            float *lrow = lp + (y * (size_t)r + i) * lw + k;
            float *srow = sp + y * w;
            if (unshuffle)
                for (size_t x = 0; x < w; x++) srow[x] = lrow[x * (size_t)r];
            else
                for (size_t x = 0; x < w; x++) lrow[x * (size_t)r] = srow[x];
        }
    }
}

int nncpu_pixel_shuffle(upres_ctx *ctx, const nn_tensor *in, nn_tensor *out, int r)
{
    plane_job j = {.a = in, .out = out, .i0 = r, .i1 = 0};
    return per_plane(ctx, in->c, shuffle_fn, &j);
}

int nncpu_pixel_unshuffle(upres_ctx *ctx, const nn_tensor *in, nn_tensor *out, int r)
{
    plane_job j = {.a = in, .out = out, .i0 = r, .i1 = 1};
    return per_plane(ctx, out->c, shuffle_fn, &j);
}

static void crop_fn(void *user, uint64_t begin, uint64_t end)
{
    plane_job *j = user;
    for (uint64_t c = begin; c < end; c++)
        for (int y = 0; y < j->out->h; y++)
            memcpy(j->out->data + (c * (size_t)j->out->h + (size_t)y) * (size_t)j->out->w,
                   j->a->data + (c * (size_t)j->a->h + (size_t)(y + j->i0)) * (size_t)j->a->w +
                       (size_t)j->i1,
                   (size_t)j->out->w * sizeof(float));
}

int nncpu_crop(upres_ctx *ctx, const nn_tensor *in, nn_tensor *out, int top, int left)
{
    plane_job j = {.a = in, .out = out, .i0 = top, .i1 = left};
    return per_plane(ctx, in->c, crop_fn, &j);
}

/* Source index of padded coordinate i (in [-pad, n + pad)) for a side of n. */
static inline int pad_index(int i, int n, nn_pad_mode mode)
{
    if (i >= 0 && i < n) return i;
    if (mode == NN_PAD_REPLICATE) return i < 0 ? 0 : n - 1;
    if (mode == NN_PAD_REFLECT) {
        if (n == 1) return 0;
        return i < 0 ? -i : 2 * (n - 1) - i;
    }
    return -1;
}

static void pad_fn(void *user, uint64_t begin, uint64_t end)
{
    plane_job *j = user;
    const nn_tensor *in = j->a;
    nn_tensor *out = j->out;
    const nn_pad_mode mode = (nn_pad_mode)j->i2;
    for (uint64_t c = begin; c < end; c++) {
        const float *src = in->data + c * plane(in);
        for (int y = 0; y < out->h; y++) {
            float *dst = out->data + (c * (size_t)out->h + (size_t)y) * (size_t)out->w;
            int sy = pad_index(y - j->i0, in->h, mode);
            if (sy < 0) {
                for (int x = 0; x < out->w; x++) dst[x] = j->f0;
                continue;
            }
            const float *row = src + (size_t)sy * (size_t)in->w;
            for (int x = 0; x < out->w; x++) {
                int sx = pad_index(x - j->i1, in->w, mode);
                dst[x] = sx < 0 ? j->f0 : row[sx];
            }
        }
    }
}

int nncpu_pad(upres_ctx *ctx, const nn_tensor *in, nn_tensor *out, int t, int l,
              nn_pad_mode mode, float value)
{
    plane_job j = {.a = in, .out = out, .i0 = t, .i1 = l, .i2 = (int)mode, .f0 = value};
    return per_plane(ctx, in->c, pad_fn, &j);
}

/* Source step of one output index, as PyTorch's area_pixel_compute_scale /
 * compute_scales_value (float math, the scale_factor inverted in double). */
static float interp_step(int in, int out, double scale, int align_corners)
{
    if (align_corners) return out > 1 ? (float)(in - 1) / (float)(out - 1) : 0.0f;
    return scale > 0.0 ? (float)(1.0 / scale) : (float)in / (float)out;
}

/* Taps and weights of one output coordinate along one axis. */
typedef struct interp_tap {
    int idx[4];
    float wt[4];
} interp_tap;

/* Source index of output o for nearest interpolation, as PyTorch's
 * nearest_idx (step from interp_step). */
static int nearest_src(int o, int in, int out, float step)
{
    if (out == in) return o;
    if (out == 2 * in) return o >> 1;
    int s = (int)floorf((float)o * step);
    return s > in - 1 ? in - 1 : s;
}

static void interp_axis(interp_tap *t, int in, int out, double scale, int align_corners,
                        nn_interp_mode mode)
{
    float step = interp_step(in, out, scale, mode == NN_INTERP_NEAREST ? 0 : align_corners);
    for (int o = 0; o < out; o++) {
        interp_tap *tp = &t[o];
        memset(tp, 0, sizeof *tp);
        if (mode == NN_INTERP_NEAREST) {
            tp->idx[0] = nearest_src(o, in, out, step);
            tp->wt[0] = 1.0f;
        } else if (mode == NN_INTERP_BILINEAR) {
            if (out == in) {
                tp->idx[0] = tp->idx[1] = o;
                tp->wt[0] = 1.0f;
                continue;
            }
            float real;
            if (align_corners) real = step * (float)o;
            else {
                real = (float)((double)step * (o + 0.5) - 0.5);
                if (real < 0.0f) real = 0.0f;
            }
            int i0 = (int)real;
            if (i0 > in - 1) i0 = in - 1; /* float rounding guard */
            float l1 = real - (float)i0;
            if (l1 < 0.0f) l1 = 0.0f;
            if (l1 > 1.0f) l1 = 1.0f;
            tp->idx[0] = i0;
            tp->idx[1] = i0 + (i0 < in - 1 ? 1 : 0);
            tp->wt[0] = 1.0f - l1;
            tp->wt[1] = l1;
        } else {
            float real = align_corners ? step * (float)o
                                       : (float)((double)step * (o + 0.5) - 0.5);
            float fl = floorf(real);
            int i0 = (int)fl;
            float x = real - fl;
            const float A = -0.75f;
            float x1 = x + 1.0f, x2 = 1.0f - x, x3 = x2 + 1.0f;
            tp->wt[0] = ((A * x1 - 5.0f * A) * x1 + 8.0f * A) * x1 - 4.0f * A;
            tp->wt[1] = ((A + 2.0f) * x - (A + 3.0f)) * x * x + 1.0f;
            tp->wt[2] = ((A + 2.0f) * x2 - (A + 3.0f)) * x2 * x2 + 1.0f;
            tp->wt[3] = ((A * x3 - 5.0f * A) * x3 + 8.0f * A) * x3 - 4.0f * A;
            for (int k = 0; k < 4; k++) {
                int s = i0 - 1 + k;
                tp->idx[k] = s < 0 ? 0 : s > in - 1 ? in - 1 : s;
            }
        }
    }
}

typedef struct interp_job {
    const nn_tensor *in;
    nn_tensor *out;
    const interp_tap *ty, *tx;
    int ntaps;
} interp_job;

static void interp_fn(void *user, uint64_t begin, uint64_t end)
{
    interp_job *j = user;
    const nn_tensor *in = j->in;
    nn_tensor *out = j->out;
    const int n = j->ntaps;
    for (uint64_t c = begin; c < end; c++) {
        const float *src = in->data + c * plane(in);
        for (int y = 0; y < out->h; y++) {
            float *dst = out->data + (c * (size_t)out->h + (size_t)y) * (size_t)out->w;
            const interp_tap *ty = &j->ty[y];
            for (int x = 0; x < out->w; x++) {
                const interp_tap *tx = &j->tx[x];
                float acc = 0.0f;
                for (int a = 0; a < n; a++) {
                    const float *row = src + (size_t)ty->idx[a] * (size_t)in->w;
                    float r = 0.0f;
                    for (int b = 0; b < n; b++) r += tx->wt[b] * row[tx->idx[b]];
                    acc += ty->wt[a] * r;
                }
                dst[x] = acc;
            }
        }
    }
}

size_t nncpu_interp_scratch(int out_h, int out_w)
{
    return ((size_t)out_h + (size_t)out_w) * (sizeof(interp_tap) / sizeof(float));
}

int nncpu_interp(upres_ctx *ctx, const nn_tensor *in, nn_tensor *out, nn_interp_mode mode,
                 double scale_h, double scale_w, int align_corners, float *scratch)
{
    interp_tap *ty = (interp_tap *)(void *)scratch, *tx = ty + out->h;
    interp_axis(ty, in->h, out->h, scale_h, align_corners, mode);
    interp_axis(tx, in->w, out->w, scale_w, align_corners, mode);
    int taps = mode == NN_INTERP_NEAREST ? 1 : mode == NN_INTERP_BILINEAR ? 2 : 4;
    interp_job j = {in, out, ty, tx, taps};
    return upres__parallel_for(ctx, NULL, (uint64_t)in->c, 1, interp_fn, &j);
}

typedef struct shuffle_add_job {
    const nn_tensor *a, *b;
    nn_tensor *out;
    const int *sy, *sx; /* nearest source row / column of b per output row / column */
    int r;
} shuffle_add_job;

static void shuffle_add_fn(void *user, uint64_t begin, uint64_t end)
{
    const shuffle_add_job *j = user;
    const nn_tensor *a = j->a, *b = j->b;
    const size_t r = (size_t)j->r, aw = (size_t)a->w, apl = plane(a), bpl = plane(b);
    const size_t OH = (size_t)j->out->h, OW = (size_t)j->out->w;
    for (uint64_t row = begin; row < end; row++) {
        const size_t c = row / OH, y = row % OH;
        const float *brow = b->data + c * bpl + (size_t)j->sy[y] * (size_t)b->w;
        /* Output column X*r + k of this row comes from plane
         * c*r*r + (y%r)*r + k of a, row y/r, column X. */
        const float *arow = a->data + (c * r * r + y % r * r) * apl + y / r * aw;
        float *dst = j->out->data + row * OW;
        for (size_t k = 0; k < r; k++) {
            const float *ap = arow + k * apl;
            for (size_t X = 0; X < aw; X++) {
                const size_t x = X * r + k;
                dst[x] = ap[X] + brow[j->sx[x]];
            }
        }
    }
}

size_t nncpu_shuffle_add_scratch(int out_h, int out_w)
{
    return (size_t)out_h + (size_t)out_w;
}

int nncpu_shuffle_add(upres_ctx *ctx, const nn_tensor *a, const nn_tensor *b, nn_tensor *out,
                      int r, double scale_h, double scale_w, float *scratch)
{
    int *sy = (int *)(void *)scratch, *sx = sy + out->h;
    const float step_h = interp_step(b->h, out->h, scale_h, 0);
    const float step_w = interp_step(b->w, out->w, scale_w, 0);
    for (int y = 0; y < out->h; y++) sy[y] = nearest_src(y, b->h, out->h, step_h);
    for (int x = 0; x < out->w; x++) sx[x] = nearest_src(x, b->w, out->w, step_w);
    shuffle_add_job j = {a, b, out, sy, sx, r};
    /* By rows: the output has few channels (3 for RGB), too few to share
     * out by plane. */
    return upres__parallel_for(ctx, NULL, (uint64_t)out->c * (uint64_t)out->h, 16, shuffle_add_fn,
                               &j);
}

static void gap_fn(void *user, uint64_t begin, uint64_t end)
{
    plane_job *j = user;
    size_t pl = plane(j->a);
    for (uint64_t c = begin; c < end; c++) {
        const float *src = j->a->data + c * pl;
        double s = 0.0;
        for (size_t i = 0; i < pl; i++) s += src[i];
        j->out->data[c] = (float)(s / (double)pl);
    }
}

int nncpu_global_avg_pool(upres_ctx *ctx, const nn_tensor *in, nn_tensor *out)
{
    plane_job j = {.a = in, .out = out};
    return per_plane(ctx, in->c, gap_fn, &j);
}
