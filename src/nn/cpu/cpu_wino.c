/*
 * Winograd F(6x6, 3x3) convolution (see cpu_wino_impl.h for the algorithm
 * and layouts): weight transform, work split and the portable block kernel.
 *
 * A 3x3 convolution costs 9 multiply-adds per output and input channel;
 * here it costs 64/36 = 1.78 in the tuple GEMM plus the transforms, which
 * are linear in the channel counts rather than in their product. The output
 * is cut into 6x6 tiles in raster order and the tiles into blocks; a block
 * is transformed, multiplied and transformed back by one worker in its own
 * scratch (V and M of about 1 MiB, which stay in L2), and workers
 * pull blocks from a shared counter. Every output element is written by
 * exactly one block, with the same arithmetic whichever worker runs it, so
 * results do not depend on the thread count. A convolution in a chain
 * (nncpu_conv_io.wcache) keeps V in the chain's whole-image cache instead,
 * indexed by triples of tiles; blocks always start at a multiple of 3
 * tiles, so every convolution of the chain finds each tile's transforms in
 * the same place whatever its own block size; its scratch holds M alone.
 */
#include "nn/cpu/cpu_ops.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define WINO_NAME(x) x##_gen
#define WINO_FMA(a, b, c) ((a) * (b) + (c))
#include "nn/cpu/cpu_wino_impl.h"

/* Target floats of one block's scratch: V + M, or M alone when V is in a
 * chain's cache. 1 MiB, so a block's transforms and products stay in L2
 * between its three passes (measured on SRVGGNetCompact: 9 % faster than
 * 4 MiB blocks; smaller ones gain nothing and read the weights more often). */
#ifndef WINO_BLOCK_FLOATS
#define WINO_BLOCK_FLOATS (256u * 1024u)
#endif

/* -1: not read yet; 0: off; 1: on. */
static atomic_int wino_state = -1;

int nncpu_set_winograd(int on)
{
    int s = atomic_load(&wino_state);
    if (s < 0) {
        const char *e = getenv("UPRES_WINOGRAD");
        int want = !(e && strcmp(e, "0") == 0), expected = -1;
        if (!atomic_compare_exchange_strong(&wino_state, &expected, want)) want = expected;
        s = want;
    }
    if (on >= 0) atomic_store(&wino_state, on ? 1 : 0);
    return s;
}

int nncpu_conv_winograd(const nn_conv_desc *d, int in_c)
{
    return d->kh == 3 && d->kw == 3 && d->stride_h == 1 && d->stride_w == 1 && d->dil_h == 1 &&
           d->dil_w == 1 && d->groups == 1 && in_c >= 8 && d->out_c >= 8;
}

static size_t ocp_of(const nn_conv_desc *d) { return ((size_t)d->out_c + 3) / 4 * 4; }

size_t nncpu_wino_packed_size(const nn_conv_desc *d, int in_c)
{
    size_t n;
    if (!upres__mul_size(ocp_of(d), (size_t)in_c, &n) || !upres__mul_size(n, 64, &n)) return 0;
    return n;
}

void nncpu_wino_pack(const nn_conv_desc *d, int in_c, const float *weight, float *U)
{
    /* G for the points 0, 1, -1, 2, -2, 1/2, -1/2, infinity. */
    static const double G[8][3] = {{1.0, 0.0, 0.0},
                                   {-2.0 / 9, -2.0 / 9, -2.0 / 9},
                                   {-2.0 / 9, 2.0 / 9, -2.0 / 9},
                                   {1.0 / 90, 1.0 / 45, 2.0 / 45},
                                   {1.0 / 90, -1.0 / 45, 2.0 / 45},
                                   {32.0 / 45, 16.0 / 45, 8.0 / 45},
                                   {32.0 / 45, -16.0 / 45, 8.0 / 45},
                                   {0.0, 0.0, 1.0}};
    const size_t ocp = ocp_of(d), IC = (size_t)in_c;
    for (size_t oc = 0; oc < ocp; oc++)
        for (size_t ic = 0; ic < IC; ic++) {
            double u[8][8] = {{0}};
            if (oc < (size_t)d->out_c) {
                const float *g = weight + (oc * IC + ic) * 9;
                double t[8][3];
                for (int i = 0; i < 8; i++)
                    for (int k = 0; k < 3; k++)
                        t[i][k] = G[i][0] * g[k] + G[i][1] * g[3 + k] + G[i][2] * g[6 + k];
                for (int i = 0; i < 8; i++)
                    for (int j = 0; j < 8; j++)
                        u[i][j] = t[i][0] * G[j][0] + t[i][1] * G[j][1] + t[i][2] * G[j][2];
            }
            /* U[j][oc/4][ic][oc%4][i] = u[i][j] */
            for (int j = 0; j < 8; j++) {
                float *dst = U + (((size_t)j * (ocp / 4) + oc / 4) * IC + ic) * 32 + (oc % 4) * 8;
                for (int i = 0; i < 8; i++) dst[i] = (float)u[i][j];
            }
        }
}

static size_t tiles_of(int n) { return ((size_t)n + 5) / 6; }

/* Tiles per block (a multiple of 3) for splitting `tiles` over `threads`
 * workers. */
static int wino_nt(const nn_conv_desc *d, int in_c, size_t tiles, int threads, int cached)
{
    size_t per_tile = 64 * ((cached ? 0 : (size_t)in_c) + ocp_of(d));
    size_t nt = WINO_BLOCK_FLOATS / per_tile;
    if (nt < 6) nt = 6;
    if (nt > NNCPU_WINO_MAX_NT) nt = NNCPU_WINO_MAX_NT;
    /* A block count that is a multiple of the thread count, so no worker
     * idles through the last round. */
    size_t nb = (tiles + nt - 1) / nt;
    if (threads > 1) nb = (nb + (size_t)threads - 1) / (size_t)threads * (size_t)threads;
    nt = (tiles + nb - 1) / nb;
    nt = (nt + 2) / 3 * 3;
    /* Rounding up to whole triples can drop a block (484 tiles in 16
     * blocks of 31 become 15 of 33: one worker runs 8, the other 7), so
     * take the largest multiple of 3, down to half, whose block count
     * divides again (18 of 27). */
    if (threads > 1)
        for (size_t c = nt; c >= 3 && 2 * c >= nt; c -= 3)
            if ((tiles + c - 1) / c % (size_t)threads == 0) {
                nt = c;
                break;
            }
    return (int)(nt < 3 ? 3 : nt);
}

size_t nncpu_wino_scratch(const nn_conv_desc *d, int in_c, int out_h, int out_w)
{
    /* One thread gets the largest blocks; the conv may run with its V in
     * scratch or (in a chain) in the cache, with larger blocks. */
    size_t tiles, n, m;
    if (!upres__mul_size(tiles_of(out_h), tiles_of(out_w), &tiles)) return 0;
    size_t nt = (size_t)wino_nt(d, in_c, tiles, 1, 0), ntc = (size_t)wino_nt(d, in_c, tiles, 1, 1);
    if (!upres__add_size((size_t)in_c, ocp_of(d), &n) || !upres__mul_size(n, 64 * nt, &n) ||
        !upres__mul_size(ocp_of(d), 64 * ntc, &m))
        return 0;
    return n > m ? n : m;
}

size_t nncpu_wino_cache_floats(int channels, int out_h, int out_w)
{
    /* Whole triples of tiles, as the blocks index them. */
    size_t n;
    if (channels < 0 || out_h < 0 || out_w < 0 ||
        !upres__mul_size(tiles_of(out_h), tiles_of(out_w), &n) || n > SIZE_MAX - 2)
        return 0;
    n = (n + 2) / 3 * 3;
    if (!upres__mul_size(n, (size_t)channels, &n) || !upres__mul_size(n, 64, &n)) return 0;
    return n;
}

typedef struct wino_run {
    nncpu_wino_job jb;
    size_t tiles, nblocks;
    int nt, simd;
    float *scratch;
    size_t slot_floats;
    atomic_size_t next;
} wino_run;

static void wino_task(void *user, uint64_t begin, uint64_t end)
{
    wino_run *w = user;
    for (uint64_t slot = begin; slot < end; slot++) {
        float *scratch = w->scratch + slot * w->slot_floats;
        for (;;) {
            size_t b = atomic_fetch_add(&w->next, 1);
            if (b >= w->nblocks) break;
            size_t t0 = b * (size_t)w->nt;
            int nt = w->tiles - t0 < (size_t)w->nt ? (int)(w->tiles - t0) : w->nt;
#ifdef NNCPU_HAVE_AVX2
            if (w->simd) {
                nncpu_wino_block_avx2(&w->jb, t0, nt, scratch);
                continue;
            }
#endif
            nncpu_wino_block_gen(&w->jb, t0, nt, scratch);
        }
    }
}

int nncpu_wino_conv(upres_ctx *ctx, const nncpu_conv_io *io, const nn_conv_desc *d,
                    const float *U, float *scratch, int slots)
{
    wino_run w;
    memset(&w, 0, sizeof w);
    nncpu_wino_job *jb = &w.jb;
    jb->io = *io;
    jb->pad_t = d->pad_t;
    jb->pad_l = d->pad_l;
    jb->ocp = (int)ocp_of(d);
    jb->U = U;
    jb->tiles_x = (int)tiles_of(io->out->w);
    w.tiles = tiles_of(io->out->h) * (size_t)jb->tiles_x;
    int threads = ctx ? upres_ctx_threads(ctx) : 1;
    if (threads > slots) threads = slots;
    if (threads < 1) threads = 1;
    w.nt = wino_nt(d, io->in_c, w.tiles, threads, io->wcache != NULL);
    w.nblocks = (w.tiles + (size_t)w.nt - 1) / (size_t)w.nt;
    if ((size_t)threads > w.nblocks) threads = (int)w.nblocks;
    /* At most two blocks per worker: each reads the convolution's U about
     * once, from DRAM when the model's weights exceed the caches (RRDBNet
     * at 64x64); with more, later blocks find it in L3 (see wino_gemm). */
    jb->prefetch = w.nblocks <= 2 * (size_t)threads;
    w.simd = nncpu_simd();
    w.scratch = scratch;
    /* As the planner lays the slots out: nncpu_conv_scratch rounded to 16. */
    size_t per = nncpu_conv_scratch(d, io->in_c, io->out->h, io->out->w);
    w.slot_floats = (per + 15) / 16 * 16;
    atomic_init(&w.next, 0);
    return upres__parallel_for(ctx, NULL, (uint64_t)threads, 1, wino_task, &w);
}
