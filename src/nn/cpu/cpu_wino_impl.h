/*
 * Winograd F(6x6, 3x3) block kernel, written once and compiled twice:
 * cpu_wino.c includes it for the portable path and cpu_avx2.c inside an
 * avx2+fma target region. The includer defines
 *   WINO_NAME(x)      the name of the exported block function
 *   WINO_FMA(a,b,c)   a*b + c on v8 (the AVX2 build makes it one FMA)
 *   WINO_TRANSPOSE    optional: an in-register 8x8 transpose of v8 r[8]
 *   WINO_LOAD6/STORE6 optional: lanes 0..5 of a v8 from / to 6 floats
 *                     (load6(v8 *v, const float *p), store6(float *p, const v8 *v))
 *   WINO_LOADEDGE     optional: loadedge(v8 *v, const float *row, int x0, int W),
 *                     lane i = row[x0 + i] inside [0, W), else 0; W >= 8
 * and nothing here touches global state.
 *
 * The algorithm (Lavin & Gray 2016; interpolation points 0, +-1, +-2,
 * +-1/2, infinity): every 6x6 output tile is A^T [(G g G^T) . (B^T d B)] A
 * for its 8x8 input patch d. The 64 products of one tile are held as eight
 * 8-lane vectors: vector j, lane i is element [i][j] of the 8x8 transform.
 * The sum over input channels is then a "tuple GEMM": for each j,
 * M[j][oc][t] = sum over ic of U[j][oc][ic] * V[j][ic][t], lane by lane,
 * which needs no broadcasts and keeps 4 x 3 vector accumulators.
 *
 * Layouts (floats; see nncpu_wino_job for the names):
 *   U  [8 j][ocp/4][in_c][4 oc][8 lanes]  weights, transformed once (pack)
 *   V  [ntp/3][8 j][cs][3 tiles][8]      one block's transformed input
 *   M  [ocp/4][ntp][8 j][4 oc][8]         one block's products
 * so the GEMM reads each operand in one sequential run per step: a U
 * slice, and for each triple one j's channels (96 bytes each, back to
 * back; with the channels outermost instead, 768 bytes apart, RRDBNet and
 * SRVGGNetCompact ran 3-5 % slower). The output transform reads the 8
 * vectors of one tile close together (1 KiB); ntp is the
 * block's tile count rounded up to 3 (padding tiles are zero and never
 * stored). V is the block's scratch (cs = in_c) or, for a chain of
 * convolutions whose inputs extend one another (RRDBNet's dense blocks),
 * the block's triples of a whole-image cache with room for cs = io.wc_stride
 * channels: each convolution transforms only the channels the previous one
 * did not read, and its GEMM reads the rest where they were left.
 */
#include <math.h>
#include <string.h>

typedef float v8 __attribute__((vector_size(32)));
typedef float v8u __attribute__((vector_size(32), aligned(4)));

#define WLOAD(p) (*(const v8u *)(p))
#define WSTORE(p, v) (*(v8u *)(p) = (v))
#define WSPLAT(x) ((v8){(x), (x), (x), (x), (x), (x), (x), (x)})

typedef int vi8 __attribute__((vector_size(32)));

/* Lane-wise *v = *v < 0 ? *v * s : *v (C has no vector ?:). Vectors go
 * by pointer in this file: as arguments GCC notes an ABI change without
 * AVX, although every call is inlined. */
static inline __attribute__((always_inline)) void wino_neg_scale(v8 *v, float s)
{
    vi8 neg = *v < WSPLAT(0.0f);
    *v = (v8)(((vi8)(*v * WSPLAT(s)) & neg) | ((vi8)*v & ~neg));
}

#ifndef WINO_STORE6
static inline __attribute__((always_inline)) void wino_load6_gen(v8 *v, const float *p)
{
    float t[8] = {0};
    memcpy(t, p, 6 * sizeof(float));
    *v = WLOAD(t);
}
static inline __attribute__((always_inline)) void wino_store6_gen(float *p, const v8 *v)
{
    float t[8];
    WSTORE(t, *v);
    memcpy(p, t, 6 * sizeof(float));
}
#define WINO_LOAD6 wino_load6_gen
#define WINO_STORE6 wino_store6_gen
#endif

#ifndef WINO_LOADEDGE
/* Lane i of *v = row[x0 + i] where 0 <= x0 + i < W, else 0 (W >= 8). */
static inline __attribute__((always_inline)) void wino_loadedge_gen(v8 *v, const float *row,
                                                                    int x0, int W)
{
    float t[8];
    for (int i = 0; i < 8; i++) t[i] = x0 + i >= 0 && x0 + i < W ? row[x0 + i] : 0.0f;
    *v = WLOAD(t);
}
#define WINO_LOADEDGE wino_loadedge_gen
#endif

#ifndef WINO_TRANSPOSE
static inline __attribute__((always_inline)) void wino_transpose_gen(v8 r[8])
{
    float t[8][8];
    memcpy(t, r, sizeof t);
    for (int i = 0; i < 8; i++)
        for (int k = 0; k < 8; k++) r[i][k] = t[k][i];
}
#define WINO_TRANSPOSE wino_transpose_gen
#endif

/* r[0..8) <- B^T r, rows as vectors (see the header for B^T). */
static inline __attribute__((always_inline)) void wino_bt(v8 r[8])
{
    const v8 r0 = r[0], r1 = r[1], r2 = r[2], r3 = r[3];
    const v8 r4 = r[4], r5 = r[5], r6 = r[6], r7 = r[7];
    const v8 c525 = WSPLAT(5.25f), c425 = WSPLAT(4.25f), c125 = WSPLAT(1.25f);
    const v8 c25 = WSPLAT(2.5f), c05 = WSPLAT(0.5f), c025 = WSPLAT(0.25f);
    const v8 c2 = WSPLAT(2.0f), c4 = WSPLAT(4.0f);
    v8 a = WINO_FMA(r4 - r2, c525, r0 - r6);
    v8 h = WINO_FMA(r3 - r5, c525, r7 - r1);
    v8 t12a = WINO_FMA(r4, -c425, r2 + r6), t12b = WINO_FMA(r3, -c425, r1 + r5);
    v8 t34a = WINO_FMA(r4, -c125, WINO_FMA(r2, c025, r6));
    v8 t34b = WINO_FMA(r5, c2, WINO_FMA(r3, -c25, r1 * c05));
    v8 t56a = WINO_FMA(WINO_FMA(r4, -c125, r2), c4, r6);
    v8 t56b = WINO_FMA(r5, c05, WINO_FMA(r3, -c25, r1 * c2));
    r[0] = a;
    r[1] = t12a + t12b;
    r[2] = t12a - t12b;
    r[3] = t34a + t34b;
    r[4] = t34a - t34b;
    r[5] = t56a + t56b;
    r[6] = t56a - t56b;
    r[7] = h;
}

/* r[0..6) <- A^T r (6 of 8 rows come out). */
static inline __attribute__((always_inline)) void wino_at(v8 r[8])
{
    const v8 m0 = r[0], m7 = r[7];
    const v8 a024 = r[1] + r[2], a135 = r[1] - r[2];
    const v8 b024 = r[3] + r[4], b135 = r[3] - r[4];
    const v8 c024 = r[5] + r[6], c135 = r[5] - r[6];
    r[0] = m0 + a024 + b024 + c024;
    r[1] = WINO_FMA(c135, WSPLAT(0.5f), WINO_FMA(b135, WSPLAT(2.0f), a135));
    r[2] = WINO_FMA(c024, WSPLAT(0.25f), WINO_FMA(b024, WSPLAT(4.0f), a024));
    r[3] = WINO_FMA(c135, WSPLAT(0.125f), WINO_FMA(b135, WSPLAT(8.0f), a135));
    r[4] = WINO_FMA(c024, WSPLAT(0.0625f), WINO_FMA(b024, WSPLAT(16.0f), a024));
    r[5] = WINO_FMA(c135, WSPLAT(0.03125f), WINO_FMA(b135, WSPLAT(32.0f), a135)) + m7;
    r[6] = r[7] = WSPLAT(0.0f);
}

/* Transforms channels [c0, in_c) of the input patches of the block's nt
 * tiles (tile k's output corner at row ty[k], column tx[k]) into V with cs
 * channels per triple (ntp slots per channel; the padding slots get zeros). */
static void wino_input(const nncpu_wino_job *jb, const int *ty, const int *tx, int nt, int ntp,
                       int c0, size_t cs, float *restrict V)
{
    const int H = jb->io.h, W = jb->io.w;
    const size_t jstride = cs * 24; /* between one tile's 8 vectors */
    for (int ic = c0; ic < jb->io.in_c; ic++) {
        const float *src = jb->io.chan[ic];
        for (int k = 0; k < ntp; k++) {
            /* Tile k's slot: panel k/3, channel ic, place k%3. */
            float *vc = V + ((size_t)(k / 3) * cs * 8 + (size_t)ic) * 24 + (k % 3) * 8;
            v8 r[8];
            if (k >= nt) {
                for (int j = 0; j < 8; j++) WSTORE(vc + j * jstride, WSPLAT(0.0f));
                continue;
            }
            const int y0 = ty[k] - jb->pad_t, x0 = tx[k] - jb->pad_l;
            if (y0 >= 0 && x0 >= 0 && y0 + 8 <= H && x0 + 8 <= W) {
                const float *p = src + (size_t)y0 * (size_t)W + (size_t)x0;
                #pragma GCC unroll 8
                for (int y = 0; y < 8; y++) r[y] = WLOAD(p + (size_t)y * (size_t)W);
                /* The same patch of the next channel, a whole pass over
                 * the block's tiles ahead: one channel's rows in a block
                 * are too few for the hardware prefetcher to learn them
                 * (general-x4v3: about 4 % faster). */
                if (ic + 1 < jb->io.in_c) {
                    const float *q = jb->io.chan[ic + 1] + (size_t)y0 * (size_t)W + (size_t)x0;
                    #pragma GCC unroll 8
                    for (int y = 0; y < 8; y++) __builtin_prefetch(q + (size_t)y * (size_t)W);
                }
            } else if (W >= 8) {
                /* Border tile: zero rows outside the input, and zero
                 * columns outside it within a row (WINO_LOADEDGE). */
                #pragma GCC unroll 8
                for (int y = 0; y < 8; y++) {
                    int iy = y0 + y;
                    if (iy >= 0 && iy < H)
                        WINO_LOADEDGE(&r[y], src + (size_t)iy * (size_t)W, x0, W);
                    else
                        r[y] = WSPLAT(0.0f);
                }
            } else {
                /* Input narrower than a patch: zero padding outside it;
                 * each row is one run of input columns [lo, hi) between
                 * zeros. */
                int lo = x0 < 0 ? -x0 : 0, hi = W - x0 < 8 ? W - x0 : 8;
                #pragma GCC unroll 8
                for (int y = 0; y < 8; y++) {
                    float buf[8] = {0};
                    int iy = y0 + y;
                    if (iy >= 0 && iy < H && hi > lo)
                        memcpy(buf + lo, src + (size_t)iy * (size_t)W + (size_t)(x0 + lo),
                               (size_t)(hi - lo) * sizeof(float));
                    r[y] = WLOAD(buf);
                }
            }
            wino_bt(r);
            WINO_TRANSPOSE(r);
            wino_bt(r);
            #pragma GCC unroll 8
            for (int j = 0; j < 8; j++) WSTORE(vc + j * jstride, r[j]);
        }
    }
}

/* Input channels per GEMM pass: one pass's U slice (WINO_KC * 128 bytes)
 * and V slice (WINO_KC * 96) stay in L1 together; over all of RRDBNet's
 * 192 channels they would not, and every load would come from L2. */
#ifndef WINO_KC
#define WINO_KC 64
#endif

/* M = U . V summed over input channels, for every j (see the header); V
 * has cs channels per triple. The channels go in passes of WINO_KC, each
 * continuing the sums the previous one stored in M, in the same order as
 * one pass would (so the results do not depend on WINO_KC).
 *
 * Each (j, k0, ob) step multiplies one U slice (kn * 128 bytes, read
 * whole) with the V slices of all triples. While it runs, the next step's
 * U slice is prefetched into L1, a few lines per triple, and over the ob
 * steps of a (j, k0) pass the next pass's V slices into L2. RRDBNet's
 * transformed weights (470 MB at x4plus) come from DRAM on every
 * inference, and its dense blocks' V from the chain's whole-image cache
 * in L3; the hardware prefetchers restart at every 4 KiB page, so without
 * this the GEMM waited on those misses (x4plus and anime6b at 64x64:
 * 10-13 % faster end to end). Only jobs of a few blocks per worker do
 * this (nncpu_wino_job.prefetch): where every worker runs many blocks,
 * as SRVGGNetCompact's at 128x128, the U of a convolution is read again
 * by each block and comes from L3, and the prefetch instructions made the
 * whole network 3 % slower. Prefetches only read and never fault: they
 * do not change any result. */
static void wino_gemm(const nncpu_wino_job *jb, int ntp, size_t cs, const float *restrict V,
                      float *restrict M)
{
    const size_t in_c = (size_t)jb->io.in_c, ocp = (size_t)jb->ocp, nob = ocp / 4;
    const size_t ntr = (size_t)ntp / 3;
    const size_t kc0 = in_c < WINO_KC ? in_c : WINO_KC; /* kn of a pass at k0 = 0 */
    for (int j = 0; j < 8; j++) {
        const float *Uj = jb->U + (size_t)j * ocp * in_c * 8;
        for (size_t k0 = 0; k0 < in_c; k0 += WINO_KC) {
            const size_t kn = in_c - k0 < WINO_KC ? in_c - k0 : WINO_KC;
            /* The next (j, k0) pass: its first channel's V in triple 0
             * (triples are cs * 192 floats apart) and its channel count
             * (none after the last). */
            const float *vn = NULL;
            size_t knv = 0;
            if (kn < in_c - k0) {
                vn = V + ((size_t)j * cs + k0 + kn) * 24;
                knv = in_c - k0 - kn < WINO_KC ? in_c - k0 - kn : WINO_KC;
            } else if (j + 1 < 8) {
                vn = V + (size_t)(j + 1) * cs * 24;
                knv = kc0;
            }
            for (size_t ob = 0; ob < nob; ob++) {
                const float *u = Uj + (ob * in_c + k0) * 32;
                /* The next step's U slice: the next ob, else the next
                 * pass's first (U is [j][ob][ic][4][8], so the next k0
                 * starts kn channels on from ob 0's slice). */
                const float *un = NULL;
                size_t knu = 0;
                if (ob + 1 < nob) {
                    un = u + in_c * 32;
                    knu = kn;
                } else if (vn) {
                    un = kn < in_c - k0 ? Uj + (k0 + kn) * 32 : Uj + ocp * in_c * 8;
                    knu = knv;
                }
                /* U: 128 bytes per channel, its lines spread over the
                 * triples. V: the next pass's channels are 96 bytes each,
                 * back to back in every triple; lines [va, vb) of each
                 * (whole lines only, so no address passes the slice). */
                const size_t ulines = knu * 2, vlines = knv * 24 / 16;
                const size_t va = ob * vlines / nob, vb = (ob + 1) * vlines / nob;
                for (int t = 0; t < ntp; t += 3) {
                    const size_t q = (size_t)t / 3;
                    if (jb->prefetch) {
                        for (size_t l = q * ulines / ntr; l < (q + 1) * ulines / ntr; l++)
                            __builtin_prefetch(un + l * 16, 0, 3);
                        if (vn)
                            for (size_t l = va; l < vb; l++)
                                __builtin_prefetch(vn + q * cs * 192 + l * 16, 0, 2);
                    }
                    const float *v = V + ((q * 8 + (size_t)j) * cs + k0) * 24;
                    /* M[ob][t + c][j][r] */
                    float *m = M + ((ob * (size_t)ntp + (size_t)t) * 8 + (size_t)j) * 32;
                    v8 c00, c01, c02, c10, c11, c12, c20, c21, c22, c30, c31, c32;
                    if (k0 == 0) {
                        c00 = c01 = c02 = c10 = c11 = c12 = WSPLAT(0.0f);
                        c20 = c21 = c22 = c30 = c31 = c32 = WSPLAT(0.0f);
                    } else {
                        c00 = WLOAD(m), c10 = WLOAD(m + 8), c20 = WLOAD(m + 16), c30 = WLOAD(m + 24);
                        c01 = WLOAD(m + 256), c11 = WLOAD(m + 264);
                        c21 = WLOAD(m + 272), c31 = WLOAD(m + 280);
                        c02 = WLOAD(m + 512), c12 = WLOAD(m + 520);
                        c22 = WLOAD(m + 528), c32 = WLOAD(m + 536);
                    }
                    for (size_t ic = 0; ic < kn; ic++) {
                        const float *vi = v + ic * 24, *ui = u + ic * 32;
                        const v8 v0 = WLOAD(vi), v1 = WLOAD(vi + 8), v2 = WLOAD(vi + 16);
                        v8 w = WLOAD(ui);
                        c00 = WINO_FMA(w, v0, c00);
                        c01 = WINO_FMA(w, v1, c01);
                        c02 = WINO_FMA(w, v2, c02);
                        w = WLOAD(ui + 8);
                        c10 = WINO_FMA(w, v0, c10);
                        c11 = WINO_FMA(w, v1, c11);
                        c12 = WINO_FMA(w, v2, c12);
                        w = WLOAD(ui + 16);
                        c20 = WINO_FMA(w, v0, c20);
                        c21 = WINO_FMA(w, v1, c21);
                        c22 = WINO_FMA(w, v2, c22);
                        w = WLOAD(ui + 24);
                        c30 = WINO_FMA(w, v0, c30);
                        c31 = WINO_FMA(w, v1, c31);
                        c32 = WINO_FMA(w, v2, c32);
                    }
                    WSTORE(m, c00);
                    WSTORE(m + 8, c10);
                    WSTORE(m + 16, c20);
                    WSTORE(m + 24, c30);
                    WSTORE(m + 256, c01);
                    WSTORE(m + 264, c11);
                    WSTORE(m + 272, c21);
                    WSTORE(m + 280, c31);
                    WSTORE(m + 512, c02);
                    WSTORE(m + 520, c12);
                    WSTORE(m + 528, c22);
                    WSTORE(m + 536, c32);
                }
            }
        }
    }
}

/* The activation of the fused epilogue on one vector; slope: the LEAKY or
 * PRELU slope of this output channel. */
static inline __attribute__((always_inline)) void wino_act(v8 *v, nn_act act, float slope)
{
    switch (act) {
    case NN_ACT_RELU: wino_neg_scale(v, 0.0f); break;
    case NN_ACT_LEAKY:
    case NN_ACT_PRELU: wino_neg_scale(v, slope); break;
    case NN_ACT_SIGMOID:
        for (int i = 0; i < 8; i++) (*v)[i] = 1.0f / (1.0f + expf(-(*v)[i]));
        break;
    default: break;
    }
}

/* Output transform and the fused epilogue of the block's nt tiles (corners
 * ty, tx as for wino_input), for activation `act` (a constant where
 * wino_output inlines it). The job's
 * epilogue operands are read once into locals: the output stores could
 * alias them as far as the compiler knows, and reloading them after every
 * row cost more than the arithmetic. A whole tile (6x6 inside the output)
 * has its rows unrolled so the transformed rows stay in registers; when
 * its right neighbour is the block's next tile in the same row, each row
 * is stored as 8 floats, whose last 2 that neighbour overwrites later (it
 * is written by this worker, after this one, for every channel). */
static inline __attribute__((always_inline)) void
wino_output_act(const nncpu_wino_job *jb, nn_act act, int post, const int *ty, const int *tx,
                int nt, int ntp,
                const float *restrict M)
{
    const int OH = jb->io.out->h, OWi = jb->io.out->w, OC = jb->io.out->c;
    const size_t OW = (size_t)OWi, plane = (size_t)OH * OW;
    float *const outd = jb->io.out->data;
    const float *const bias = jb->io.bias, *const slopes = jb->io.slopes;
    const float alpha = jb->io.alpha, scale = jb->io.scale;
    const int per_slope = jb->io.nslopes != 1, scaled = post && scale != 1.0f;
    const float *const resp = post ? jb->io.res : NULL;
    const int res_full = resp && jb->io.res_full, res_scalar = resp && !jb->io.res_full;
    const int nob = jb->ocp / 4;
    for (int ob = 0; ob < nob; ob++)
        for (int k = 0; k < nt; k++) {
            const int y0 = ty[k], x0 = tx[k];
            int rows = OH - y0 < 6 ? OH - y0 : 6;
            int cols = OWi - x0 < 6 ? OWi - x0 : 6;
            const int full = rows == 6 && cols == 6;
            const int wide = full && k + 1 < nt && x0 + 8 <= OWi;
            const float *mt = M + ((size_t)ob * (size_t)ntp + (size_t)k) * 256;
            for (int q = 0; q < 4; q++) {
                int oc = ob * 4 + q;
                if (oc >= OC) break;
                v8 r[8];
                #pragma GCC unroll 8
                for (int j = 0; j < 8; j++) r[j] = WLOAD(mt + j * 32 + q * 8);
                wino_at(r);
                WINO_TRANSPOSE(r);
                wino_at(r);
                const v8 bv = WSPLAT(bias ? bias[oc] : 0.0f);
                const float slope = act == NN_ACT_PRELU ? slopes[per_slope ? oc : 0] : alpha;
                const float rs = res_scalar ? resp[oc] : 0.0f;
                float *out = outd + (size_t)oc * plane + (size_t)y0 * OW + (size_t)x0;
                const float *res = res_full ? resp + (size_t)oc * plane + (size_t)y0 * OW + (size_t)x0 : NULL;
                if (full) {
                    #pragma GCC unroll 6
                    for (int y = 0; y < 6; y++) {
                        v8 v = r[y] + bv;
                        wino_act(&v, act, slope);
                        if (scaled) v = v * WSPLAT(scale);
                        if (res) {
                            v8 rr;
                            if (wide)
                                rr = WLOAD(res + (size_t)y * OW);
                            else
                                WINO_LOAD6(&rr, res + (size_t)y * OW);
                            v = v + rr;
                        }
                        if (post) v = v + WSPLAT(rs);
                        if (wide)
                            WSTORE(out + (size_t)y * OW, v);
                        else
                            WINO_STORE6(out + (size_t)y * OW, &v);
                    }
                    continue;
                }
                /* A tile cut by the output's edge: its rows go through
                 * memory (indexing r by a variable row would keep all of
                 * r in memory in the whole-tile path too). */
                float part[6][8];
                #pragma GCC unroll 6
                for (int y = 0; y < 6; y++) {
                    v8 v = r[y] + bv;
                    wino_act(&v, act, slope);
                    if (scaled) v = v * WSPLAT(scale);
                    if (post) v = v + WSPLAT(rs);
                    WSTORE(part[y], v);
                }
                for (int y = 0; y < rows; y++) {
                    float *dst = out + (size_t)y * OW;
                    if (res)
                        for (int i = 0; i < cols; i++) dst[i] = part[y][i] + res[(size_t)y * OW + (size_t)i];
                    else
                        for (int i = 0; i < cols; i++) dst[i] = part[y][i];
                }
            }
        }
}

/* One copy of the output loop per activation, and per whether a scale or
 * residual follows it, so no row tests them. */
static void wino_output(const nncpu_wino_job *jb, const int *ty, const int *tx, int nt, int ntp,
                        const float *restrict M)
{
    const int post = jb->io.scale != 1.0f || jb->io.res;
#define WINO_OUT(a)                                                                        \
    (post ? wino_output_act(jb, a, 1, ty, tx, nt, ntp, M)                                   \
          : wino_output_act(jb, a, 0, ty, tx, nt, ntp, M))
    switch (jb->io.act) {
    case NN_ACT_RELU: WINO_OUT(NN_ACT_RELU); break;
    case NN_ACT_LEAKY: WINO_OUT(NN_ACT_LEAKY); break;
    case NN_ACT_PRELU: WINO_OUT(NN_ACT_PRELU); break;
    case NN_ACT_SIGMOID: WINO_OUT(NN_ACT_SIGMOID); break;
    default: WINO_OUT(NN_ACT_NONE); break;
    }
#undef WINO_OUT
}

/* One block: tiles [t0, t0+nt) of the job, with V and M in scratch. */
void WINO_NAME(nncpu_wino_block)(const nncpu_wino_job *jb, size_t t0, int nt, float *scratch)
{
    int ntp = (nt + 2) / 3 * 3;
    float *V = scratch, *M = scratch + (size_t)64 * (size_t)jb->io.in_c * (size_t)ntp;
    size_t cs = (size_t)jb->io.in_c;
    int c0 = 0;
    if (jb->io.wcache) {
        cs = (size_t)jb->io.wc_stride;
        c0 = jb->io.wc_done;
        V = jb->io.wcache + t0 / 3 * cs * 192;
        M = scratch;
    }
    /* Each tile's output corner, once per block rather than once per
     * channel in the transforms (a division each). */
    int ty[NNCPU_WINO_MAX_NT], tx[NNCPU_WINO_MAX_NT];
    for (int k = 0; k < nt; k++) {
        size_t t = t0 + (size_t)k;
        ty[k] = (int)(t / (size_t)jb->tiles_x) * 6;
        tx[k] = (int)(t % (size_t)jb->tiles_x) * 6;
    }
    wino_input(jb, ty, tx, nt, ntp, c0, cs, V);
    wino_gemm(jb, ntp, cs, V, M);
    wino_output(jb, ty, tx, nt, ntp, M);
}
