/* Bilateral guided upsampling: fitting a grid of affine colour transforms on
 * a low-resolution pair and slicing it at any resolution.
 *
 * The fit minimises, over the 12 coefficients of every vertex,
 *   sum_p w_p |S(p) [r g b 1]_p - q_p|^2                      (data)
 * + lx * sum over x and y neighbours |M_u - M_v|^2             (smoothness)
 * + lz * sum over luma neighbours    |M_u - M_v|^2
 * + eps * sum_v |M_v - I|^2                                     (weak pull)
 * where S(p) is the trilinear blend of the 8 vertices around pixel p, exactly
 * as slicing blends them: what is fitted is what is applied. The normal
 * equations are block-sparse (27 neighbours of 4x4 blocks per vertex and
 * output channel; the channels differ only in the clipped samples they leave
 * out) and are solved by conjugate gradients with a block-Jacobi
 * preconditioner, in double precision, from the identity. Samples the
 * processed image clipped at 0 or 1 are left out where the fit predicts them
 * past the clip (an active-set iteration of up to BGU_PASSES fits).
 * Parallel parts (accumulation by cell rows of one parity, CG by vertex
 * rows) sum in a fixed order, so any thread count gives the same grid. */
#include "proxy/proxy_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Relative weights of the terms, per pixel of a cell (tuned on
 * bench/proxy_fidelity; see docs/proxy.md). */
#define BGU_LXY 0.02
#define BGU_LZ 0.002
#define BGU_EPS 1e-5
#define BGU_TOL 1e-6      /* CG stops at |r| <= tol |b|, per channel */
#define BGU_MAX_ITER 2000
#define BGU_PASSES 3      /* fits of the clipped-sample active set */
/* H, Dinv, b and 6 CG vectors, `has` and the float result, per vertex. */
#define BGU_VERTEX_BYTES ((27 * 48 + 48 + 7 * 12) * sizeof(double) + 1 + 12 * sizeof(float))
_Static_assert(BGU_VERTEX_BYTES <= BGU_BYTES_PER_VERTEX, "BGU_BYTES_PER_VERTEX is too small");

void upres__bgu_free(bgu_grid *g)
{
    if (!g) return;
    free(g->m);
    memset(g, 0, sizeof *g);
}

/* Inverts the symmetric positive definite 4x4 matrix a (row-major) into inv
 * by Gauss-Jordan elimination; returns 0 when a pivot vanishes. */
static int inv4(const double *a, double *inv)
{
    double m[4][8];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 8; j++) m[i][j] = j < 4 ? a[i * 4 + j] : (j - 4 == i);
    for (int c = 0; c < 4; c++) {
        int piv = c;
        for (int r = c + 1; r < 4; r++)
            if (fabs(m[r][c]) > fabs(m[piv][c])) piv = r;
        if (!(fabs(m[piv][c]) > 0)) return 0;
        if (piv != c)
            for (int j = 0; j < 8; j++) {
                double t = m[c][j];
                m[c][j] = m[piv][j];
                m[piv][j] = t;
            }
        double d = 1.0 / m[c][c];
        for (int j = 0; j < 8; j++) m[c][j] *= d;
        for (int r = 0; r < 4; r++)
            if (r != c) {
                double f = m[r][c];
                for (int j = 0; j < 8; j++) m[r][j] -= f * m[c][j];
            }
    }
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) inv[i * 4 + j] = m[i][j + 4];
    return 1;
}

/* The normal equations K x = b. x holds V blocks of 12 doubles (index
 * i*3 + c: input i of r, g, b, 1; output channel c). K = data + scalar
 * terms; the data part has one 4x4 block per (vertex, neighbour, channel),
 * channels differing only by which clipped samples they leave out. */
typedef struct fit_sys {
    int NX, NY, NZ;     /* vertices per axis */
    size_t V;
    int w, h;           /* the fitted image */
    const float *src, *dst, *wgt;
    unsigned char *skip;/* [w*h]: bit c set = sample c left out (clipped) */
    double *H;          /* [V][27][3][16]: neighbour k = (dz+1) + 3(dx+1) + 9(dy+1) */
    double *b;          /* [V][12] */
    unsigned char *has; /* [V]: the vertex has data */
    double lxy, lz, eps;
    int *band;          /* [NY]: first pixel row of each cell row; band[NY-1] = h */
    int phase;          /* accumulation: cell rows of this parity */
    /* CG state */
    const double *Dinv; /* [V][3][16] */
    double *x, *r, *z, *p, *q;
    double *part;       /* [NY][3][3]: per vertex row partial sums */
    double alpha[3], beta[3];
} fit_sys;

/* Grid cell of pixel (x, y) with colour s: the 8 surrounding vertices and
 * their trilinear weights (the same arithmetic as slicing, in double). */
static void pixel_cell(const fit_sys *S, int x, int y, const float *s, size_t vv[8], double t[8])
{
    const int nx = S->NX - 1, ny = S->NY - 1, nz = S->NZ - 1;
    double gy = (y + 0.5) * (double)ny / S->h, gx = (x + 0.5) * (double)nx / S->w;
    int iy = (int)gy, ix = (int)gx;
    if (iy > ny - 1) iy = ny - 1;
    if (ix > nx - 1) ix = nx - 1;
    double fy = gy - iy, fx = gx - ix;
    double l = 0.2126 * s[0] + 0.7152 * s[1] + 0.0722 * s[2];
    l = l > 0 ? (l < 1 ? l : 1) : 0;
    double gz = l * nz;
    int iz = (int)gz;
    if (iz > nz - 1) iz = nz - 1;
    double fz = gz - iz;
    for (int a = 0; a < 8; a++) {
        int bx = a & 1, by = (a >> 1) & 1, bz = (a >> 2) & 1;
        t[a] = (bx ? fx : 1 - fx) * (by ? fy : 1 - fy) * (bz ? fz : 1 - fz);
        vv[a] = ((size_t)(iy + by) * S->NX + (size_t)(ix + bx)) * S->NZ + (size_t)(iz + bz);
    }
}

/* Accumulates H and b over the pixel rows of cell rows 2k + phase for k in
 * [begin, end). Such a band touches vertex rows j and j+1 only, so bands of
 * one parity write disjoint memory, and every vertex sums its pixels in the
 * same order whatever the threads. */
static void accum_range(void *user, uint64_t begin, uint64_t end)
{
    fit_sys *S = user;
    for (uint64_t k = begin; k < end; k++) {
        int j = (int)(2 * k) + S->phase;
        if (j >= S->NY - 1) break;
        for (int y = S->band[j]; y < S->band[j + 1]; y++)
            for (int xx = 0; xx < S->w; xx++) {
                size_t pi = (size_t)y * S->w + xx;
                double wp = S->wgt ? S->wgt[pi] : 1.0;
                if (!(wp > 0)) continue;
                const float *s = S->src + pi * 3, *d = S->dst + pi * 3;
                const unsigned sk = S->skip[pi];
                if (sk == 7) continue;
                size_t vv[8];
                double t[8], M[16];
                pixel_cell(S, xx, y, s, vv, t);
                const double pt[4] = {s[0], s[1], s[2], 1.0};
                double on[3];
                for (int c = 0; c < 3; c++) on[c] = (sk >> c) & 1 ? 0.0 : 1.0;
                for (int i = 0; i < 4; i++)
                    for (int jj = 0; jj < 4; jj++) M[i * 4 + jj] = wp * pt[i] * pt[jj];
                for (int a = 0; a < 8; a++) {
                    if (t[a] == 0) continue;
                    int bx = a & 1, by = (a >> 1) & 1, bz = (a >> 2) & 1;
                    double *bv = S->b + vv[a] * 12, wa = wp * t[a];
                    for (int i = 0; i < 4; i++)
                        for (int c = 0; c < 3; c++) bv[i * 3 + c] += on[c] * wa * pt[i] * d[c];
                    S->has[vv[a]] = 1;
                    double *Hv = S->H + vv[a] * 27 * 48;
                    for (int a2 = 0; a2 < 8; a2++) {
                        if (t[a2] == 0) continue;
                        int bx2 = a2 & 1, by2 = (a2 >> 1) & 1, bz2 = (a2 >> 2) & 1;
                        int kk = (bz2 - bz + 1) + 3 * (bx2 - bx + 1) + 9 * (by2 - by + 1);
                        double tt = t[a] * t[a2];
                        double *B = Hv + kk * 48;
                        for (int c = 0; c < 3; c++) {
                            if (!on[c]) continue;
                            for (int e = 0; e < 16; e++) B[c * 16 + e] += tt * M[e];
                        }
                    }
                }
            }
    }
}

/* y_v = (K x)_v for the vertices of vertex row iy. */
static void apply_row(const fit_sys *S, int iy, const double *x, double *y)
{
    const int NX = S->NX, NY = S->NY, NZ = S->NZ;
    for (int ix = 0; ix < NX; ix++)
        for (int iz = 0; iz < NZ; iz++) {
            size_t v = ((size_t)iy * NX + ix) * NZ + iz;
            const double *xv = x + v * 12;
            double acc[12];
            double deg = 0;
            for (int k = 0; k < 12; k++) acc[k] = S->eps * xv[k];
            /* Smoothness: lambda * (x_v - x_u) for every neighbour u. */
#define NEIGH(cond, off, lam)                                                  \
    if (cond) {                                                                \
        const double *xu = x + (size_t)((ptrdiff_t)v + (off)) * 12;            \
        for (int k = 0; k < 12; k++) acc[k] -= (lam) * xu[k];                  \
        deg += (lam);                                                          \
    }
            NEIGH(ix > 0, -(ptrdiff_t)NZ, S->lxy)
            NEIGH(ix < NX - 1, (ptrdiff_t)NZ, S->lxy)
            NEIGH(iy > 0, -(ptrdiff_t)NX * NZ, S->lxy)
            NEIGH(iy < NY - 1, (ptrdiff_t)NX * NZ, S->lxy)
            NEIGH(iz > 0, -1, S->lz)
            NEIGH(iz < NZ - 1, 1, S->lz)
#undef NEIGH
            for (int k = 0; k < 12; k++) acc[k] += deg * xv[k];
            if (S->has[v]) {
                const double *Hv = S->H + v * 27 * 48;
                for (int dy = -1; dy <= 1; dy++) {
                    if (iy + dy < 0 || iy + dy >= NY) continue;
                    for (int dx = -1; dx <= 1; dx++) {
                        if (ix + dx < 0 || ix + dx >= NX) continue;
                        for (int dz = -1; dz <= 1; dz++) {
                            if (iz + dz < 0 || iz + dz >= NZ) continue;
                            int k = (dz + 1) + 3 * (dx + 1) + 9 * (dy + 1);
                            const double *B = Hv + k * 48;
                            const double *xu =
                                x + (size_t)((ptrdiff_t)v + ((ptrdiff_t)dy * NX + dx) * NZ + dz) *
                                        12;
                            for (int c = 0; c < 3; c++)
                                for (int i = 0; i < 4; i++) {
                                    const double *Bi = B + c * 16 + i * 4;
                                    acc[i * 3 + c] += Bi[0] * xu[c] + Bi[1] * xu[3 + c] +
                                                      Bi[2] * xu[6 + c] + Bi[3] * xu[9 + c];
                                }
                        }
                    }
                }
            }
            memcpy(y + v * 12, acc, sizeof acc);
        }
}

/* Per-channel dot products of a and b over vertex row iy, added to out. */
static void dot_row(const fit_sys *S, int iy, const double *a, const double *b, double out[3])
{
    const size_t v0 = (size_t)iy * S->NX * S->NZ, v1 = v0 + (size_t)S->NX * S->NZ;
    for (size_t k = v0 * 12; k < v1 * 12; k++) out[k % 3] += a[k] * b[k];
}

/* z = D^-1 r on vertex row iy (per channel 4x4 blocks). */
static void precond_row(const fit_sys *S, int iy)
{
    const size_t v0 = (size_t)iy * S->NX * S->NZ, v1 = v0 + (size_t)S->NX * S->NZ;
    for (size_t v = v0; v < v1; v++) {
        const double *rv = S->r + v * 12;
        double *zv = S->z + v * 12;
        for (int c = 0; c < 3; c++) {
            const double *D = S->Dinv + (v * 3 + (size_t)c) * 16;
            for (int i = 0; i < 4; i++)
                zv[i * 3 + c] = D[i * 4] * rv[c] + D[i * 4 + 1] * rv[3 + c] +
                                D[i * 4 + 2] * rv[6 + c] + D[i * 4 + 3] * rv[9 + c];
        }
    }
}

/* CG stage 1 per vertex row: q = K p; partials p.q. */
static void cg_stage1(void *user, uint64_t begin, uint64_t end)
{
    fit_sys *S = user;
    for (uint64_t iy = begin; iy < end; iy++) {
        double *pt = S->part + iy * 9;
        apply_row(S, (int)iy, S->p, S->q);
        pt[0] = pt[1] = pt[2] = 0;
        dot_row(S, (int)iy, S->p, S->q, pt);
    }
}

/* CG stage 2 per vertex row: x += alpha p, r -= alpha q, z = D^-1 r;
 * partials r.z and r.r. */
static void cg_stage2(void *user, uint64_t begin, uint64_t end)
{
    fit_sys *S = user;
    for (uint64_t iy = begin; iy < end; iy++) {
        const size_t v0 = (size_t)iy * S->NX * S->NZ, v1 = v0 + (size_t)S->NX * S->NZ;
        for (size_t k = v0 * 12; k < v1 * 12; k++) {
            S->x[k] += S->alpha[k % 3] * S->p[k];
            S->r[k] -= S->alpha[k % 3] * S->q[k];
        }
        precond_row(S, (int)iy);
        double *pt = S->part + iy * 9;
        for (int k = 3; k < 9; k++) pt[k] = 0;
        dot_row(S, (int)iy, S->r, S->z, pt + 3);
        dot_row(S, (int)iy, S->r, S->r, pt + 6);
    }
}

/* CG stage 3 per vertex row: p = z + beta p. */
static void cg_stage3(void *user, uint64_t begin, uint64_t end)
{
    fit_sys *S = user;
    for (uint64_t iy = begin; iy < end; iy++) {
        const size_t v0 = (size_t)iy * S->NX * S->NZ, v1 = v0 + (size_t)S->NX * S->NZ;
        for (size_t k = v0 * 12; k < v1 * 12; k++) S->p[k] = S->z[k] + S->beta[k % 3] * S->p[k];
    }
}

/* Sums the partials at offset `off` over rows in order (deterministic). */
static void sum_parts(const fit_sys *S, int off, double out[3])
{
    out[0] = out[1] = out[2] = 0;
    for (int iy = 0; iy < S->NY; iy++)
        for (int c = 0; c < 3; c++) out[c] += S->part[iy * 9 + off + c];
}

/* Preconditioned conjugate gradients on K x = b from the current x, the
 * three channels independently (own step sizes, own stopping). Returns the
 * iterations taken, or a negative status (cancelled). */
static int cg_solve(upres_ctx *ctx, fit_sys *S, int pass)
{
    const size_t V = S->V;
    const uint64_t NY = (uint64_t)S->NY;
    double bn[3] = {0, 0, 0}, rn[3], rz[3], pq[3];
    for (size_t k = 0; k < V * 12; k++) bn[k % 3] += S->b[k] * S->b[k];
    /* r = b - K x, via stage 1 on p = x. */
    memcpy(S->p, S->x, V * 12 * sizeof(double));
    int st = upres__parallel_for(ctx, NULL, NY, 1, cg_stage1, S);
    if (st) return st;
    for (size_t k = 0; k < V * 12; k++) S->r[k] = S->b[k] - S->q[k];
    S->alpha[0] = S->alpha[1] = S->alpha[2] = 0;
    st = upres__parallel_for(ctx, NULL, NY, 1, cg_stage2, S);
    if (st) return st;
    sum_parts(S, 3, rz);
    sum_parts(S, 6, rn);
    memcpy(S->p, S->z, V * 12 * sizeof(double));
    int it = 0;
    for (; it < BGU_MAX_ITER; it++) {
        int done = 1;
        for (int c = 0; c < 3; c++)
            if (rn[c] > BGU_TOL * BGU_TOL * bn[c]) done = 0;
        if (done) break;
        if (it % 16 == 0 && (st = upres__progress(ctx, "fit", (uint64_t)pass, BGU_PASSES)))
            return st;
        if ((st = upres__parallel_for(ctx, NULL, NY, 1, cg_stage1, S))) return st;
        sum_parts(S, 0, pq);
        for (int c = 0; c < 3; c++)
            S->alpha[c] = rn[c] > BGU_TOL * BGU_TOL * bn[c] && pq[c] > 0 ? rz[c] / pq[c] : 0;
        if ((st = upres__parallel_for(ctx, NULL, NY, 1, cg_stage2, S))) return st;
        double rz2[3];
        sum_parts(S, 3, rz2);
        sum_parts(S, 6, rn);
        for (int c = 0; c < 3; c++) {
            /* A converged channel (alpha 0) keeps p = z instead of growing. */
            S->beta[c] = rz[c] > 0 && S->alpha[c] != 0 ? rz2[c] / rz[c] : 0;
            rz[c] = rz2[c];
        }
        if ((st = upres__parallel_for(ctx, NULL, NY, 1, cg_stage3, S))) return st;
    }
    return it;
}

/* Builds H, b (with the pull toward the identity) and the preconditioner
 * for the current skip flags. */
static int build_system(upres_ctx *ctx, fit_sys *S, double *Dinv)
{
    const size_t V = S->V;
    memset(S->H, 0, V * 27 * 48 * sizeof(double));
    memset(S->b, 0, V * 12 * sizeof(double));
    memset(S->has, 0, V);
    const uint64_t bands = (uint64_t)S->NY - 1;
    for (S->phase = 0; S->phase < 2; S->phase++) {
        int st = upres__parallel_for(ctx, NULL, (bands + 1 - (uint64_t)S->phase) / 2, 1,
                                     accum_range, S);
        if (st) return st;
    }
    for (size_t v = 0; v < V; v++)
        for (int c = 0; c < 3; c++) S->b[v * 12 + c * 3 + c] += S->eps;
    /* Block-Jacobi preconditioner: each channel's own block plus the
     * vertex's share of the scalar terms. */
    const int NX = S->NX, NZ = S->NZ;
    for (int iy = 0; iy < S->NY; iy++)
        for (int ix = 0; ix < NX; ix++)
            for (int iz = 0; iz < NZ; iz++) {
                size_t v = ((size_t)iy * NX + ix) * NZ + iz;
                double deg = S->eps;
                deg += S->lxy * ((ix > 0) + (ix < NX - 1) + (iy > 0) + (iy < S->NY - 1));
                deg += S->lz * ((iz > 0) + (iz < NZ - 1));
                for (int c = 0; c < 3; c++) {
                    double D[16];
                    memcpy(D, S->H + (v * 27 + 13) * 48 + (size_t)c * 16, sizeof D);
                    for (int i = 0; i < 4; i++) D[i * 4 + i] += deg;
                    double *out = Dinv + (v * 3 + (size_t)c) * 16;
                    if (!inv4(D, out)) {
                        memset(out, 0, 16 * sizeof(double));
                        for (int i = 0; i < 4; i++) out[i * 5] = 1 / deg;
                    }
                }
            }
    return UPRES_OK;
}

/* Updates the skip flags: a sample clipped at 0 (or 1) is left out when the
 * fit x predicts it at or beyond the clip: it only says "at most 0", and the
 * merge clips the same way. A clipped sample the fit predicts inside the
 * range stays in (a region the model made black must come out black).
 * Returns how many flags changed. */
static size_t update_skip(fit_sys *S)
{
    size_t changed = 0;
    for (int y = 0; y < S->h; y++)
        for (int xx = 0; xx < S->w; xx++) {
            size_t pi = (size_t)y * S->w + xx;
            const float *s = S->src + pi * 3, *d = S->dst + pi * 3;
            unsigned sk = 0;
            if (!(d[0] > 0 && d[0] < 1 && d[1] > 0 && d[1] < 1 && d[2] > 0 && d[2] < 1)) {
                size_t vv[8];
                double t[8], pred[3] = {0, 0, 0};
                pixel_cell(S, xx, y, s, vv, t);
                const double pt[4] = {s[0], s[1], s[2], 1.0};
                for (int a = 0; a < 8; a++) {
                    const double *xv = S->x + vv[a] * 12;
                    for (int i = 0; i < 4; i++)
                        for (int c = 0; c < 3; c++) pred[c] += t[a] * xv[i * 3 + c] * pt[i];
                }
                for (int c = 0; c < 3; c++)
                    if ((d[c] <= 0 && pred[c] <= 0) || (d[c] >= 1 && pred[c] >= 1)) sk |= 1u << c;
            }
            if (sk != S->skip[pi]) changed++;
            S->skip[pi] = (unsigned char)sk;
        }
    return changed;
}

int upres__bgu_fit(upres_ctx *ctx, const float *src, const float *dst, const float *wgt, int w,
                   int h, const bgu_params *p, bgu_grid *out)
{
    memset(out, 0, sizeof *out);
    if (w < 1 || h < 1 || !(p->cell >= 1) || p->bins < 1 || p->bins > 256 || !(p->smoothness >= 0))
        return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "guided merge: invalid grid parameters");
    long nx = p->nx > 0 ? p->nx : lround(w / p->cell), ny = p->ny > 0 ? p->ny : lround(h / p->cell);
    if (nx < 1) nx = 1;
    if (ny < 1) ny = 1;
    const int nz = p->bins;
    fit_sys S;
    memset(&S, 0, sizeof S);
    S.NX = (int)nx + 1;
    S.NY = (int)ny + 1;
    S.NZ = nz + 1;
    S.V = (size_t)S.NX * S.NY * S.NZ;
    S.w = w;
    S.h = h;
    S.src = src;
    S.dst = dst;
    S.wgt = wgt;
    /* H, Dinv, b and 6 CG vectors, has, the result; per pixel the flags. */
    const size_t per_v = BGU_VERTEX_BYTES;
    size_t need;
    if (!upres__mul_size(S.V, per_v, &need) || !upres__add_size(need, (size_t)w * h, &need) ||
        need > upres__limits(ctx)->max_memory_bytes)
        return upres__fail(ctx, UPRES_ERR_LIMIT,
                           "guided merge: a grid of %ldx%ldx%d cells exceeds the memory limit; "
                           "use a larger --grid-cell", nx, ny, nz);
    const size_t V = S.V;
    S.H = malloc(V * 27 * 48 * sizeof(double));
    S.has = malloc(V);
    S.skip = malloc((size_t)w * h);
    S.band = malloc((size_t)S.NY * sizeof(int));
    S.part = malloc((size_t)S.NY * 9 * sizeof(double));
    double *Dinv = malloc(V * 48 * sizeof(double));
    double *vec = malloc(V * 12 * 7 * sizeof(double));
    float *m = malloc(V * 12 * sizeof(float));
    int st = UPRES_OK;
    if (!S.H || !S.has || !S.skip || !S.band || !S.part || !Dinv || !vec || !m) {
        st = upres__fail(ctx, UPRES_ERR_NOMEM, "guided merge: out of memory for the grid");
        goto done;
    }
    S.Dinv = Dinv;
    S.b = vec;
    S.x = vec + V * 12;
    S.r = vec + 2 * V * 12;
    S.z = vec + 3 * V * 12;
    S.p = vec + 4 * V * 12;
    S.q = vec + 5 * V * 12;
    /* Pixel rows of each cell row (the row's cell as pixel_cell computes it). */
    for (int j = 0; j < S.NY; j++) S.band[j] = h;
    for (int y = h - 1; y >= 0; y--) {
        int iy = (int)((y + 0.5) * (double)ny / h);
        if (iy > ny - 1) iy = (int)ny - 1;
        S.band[iy] = y;
    }
    for (int j = S.NY - 2; j >= 0; j--)
        if (S.band[j] > S.band[j + 1]) S.band[j] = S.band[j + 1];

    /* Term weights scale with the pixels per cell, so that --grid-cell
     * does not change the balance between data and smoothness. */
    const double base = (double)w * h / ((double)nx * ny);
    S.lxy = p->smoothness * BGU_LXY * base;
    S.lz = p->smoothness * BGU_LZ * base;
    S.eps = BGU_EPS * base;

    /* First fit: every clipped sample left out. */
    for (size_t i = 0; i < (size_t)w * h; i++) {
        const float *d = dst + i * 3;
        unsigned sk = 0;
        for (int c = 0; c < 3; c++)
            if (!(d[c] > 0 && d[c] < 1)) sk |= 1u << c;
        S.skip[i] = (unsigned char)sk;
    }
    /* From the identity: an unchanged proxy is solved before any step. */
    for (size_t v = 0; v < V; v++)
        for (int k = 0; k < 12; k++) S.x[v * 12 + k] = k / 3 == k % 3 ? 1.0 : 0.0;
    int it = 0;
    for (int pass = 0; pass < BGU_PASSES; pass++) {
        st = build_system(ctx, &S, Dinv);
        if (st) break;
        int n = cg_solve(ctx, &S, pass);
        if (n < 0) {
            st = n;
            break;
        }
        it += n;
        /* Then the clipped samples the fit brings inside the range join
         * (an active-set iteration; it usually settles in two passes). */
        if (pass + 1 < BGU_PASSES && update_skip(&S) == 0) break;
    }
    if (st) {
        st = upres__fail(ctx, st, "merge: cancelled");
        goto done;
    }
    for (size_t v = 0; v < V; v++)
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < 4; i++) m[v * 12 + c * 4 + i] = (float)S.x[v * 12 + i * 3 + c];
    out->nx = (int)nx;
    out->ny = (int)ny;
    out->nz = nz;
    out->m = m;
    out->iterations = it;
    m = NULL;
done:
    free(S.H);
    free(S.has);
    free(S.skip);
    free(S.band);
    free(S.part);
    free(Dinv);
    free(vec);
    free(m);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Slicing                                                                   */

int upres__bgu_slicer_init(bgu_slicer *s, const bgu_grid *g, int W, int H)
{
    memset(s, 0, sizeof *s);
    s->g = g;
    s->W = W;
    s->H = H;
    s->ix = malloc((size_t)W * sizeof(int));
    s->fx = malloc((size_t)W * sizeof(float));
    if (!s->ix || !s->fx) {
        upres__bgu_slicer_free(s);
        return UPRES_ERR_NOMEM;
    }
    for (int X = 0; X < W; X++) {
        double gx = (X + 0.5) * (double)g->nx / W;
        int ix = (int)gx;
        if (ix > g->nx - 1) ix = g->nx - 1;
        s->ix[X] = ix;
        s->fx[X] = (float)(gx - ix);
    }
    s->scratch = (size_t)(g->nx + 1) * (g->nz + 1) * 12;
    return UPRES_OK;
}

void upres__bgu_slicer_free(bgu_slicer *s)
{
    free(s->ix);
    free(s->fx);
    memset(s, 0, sizeof *s);
}

void upres__bgu_slice_row(const bgu_slicer *s, int Y, const float *in, float *out,
                          float *scratch)
{
    const bgu_grid *g = s->g;
    const int NX = g->nx + 1, NZ = g->nz + 1, nz = g->nz;
    double gy = (Y + 0.5) * (double)g->ny / s->H;
    int iy = (int)gy;
    if (iy > g->ny - 1) iy = g->ny - 1;
    const float fy = (float)(gy - iy), fy0 = 1.0f - fy;
    /* The row's (x, luma) slab of the grid, interpolated in y once. */
    const float *m0 = g->m + (size_t)iy * NX * NZ * 12, *m1 = m0 + (size_t)NX * NZ * 12;
    const size_t n = (size_t)NX * NZ * 12;
    for (size_t k = 0; k < n; k++) scratch[k] = fy0 * m0[k] + fy * m1[k];
    for (int X = 0; X < s->W; X++) {
        const float r = in[X * 3], gg = in[X * 3 + 1], b = in[X * 3 + 2];
        float l = 0.2126f * r + 0.7152f * gg + 0.0722f * b;
        l = l > 0 ? (l < 1 ? l : 1) : 0; /* NaN (f32 originals) -> 0 */
        float gz = l * (float)nz;
        int iz = (int)gz;
        if (iz > nz - 1) iz = nz - 1;
        const float fz = gz - (float)iz, fx = s->fx[X];
        const float w00 = (1 - fx) * (1 - fz), w01 = (1 - fx) * fz, w10 = fx * (1 - fz),
                    w11 = fx * fz;
        const float *c00 = scratch + ((size_t)s->ix[X] * NZ + iz) * 12, *c01 = c00 + 12,
                    *c10 = c00 + (size_t)NZ * 12, *c11 = c10 + 12;
        float c[12];
        for (int k = 0; k < 12; k++) c[k] = w00 * c00[k] + w01 * c01[k] + w10 * c10[k] + w11 * c11[k];
        out[X * 3] = c[0] * r + c[1] * gg + c[2] * b + c[3];
        out[X * 3 + 1] = c[4] * r + c[5] * gg + c[6] * b + c[7];
        out[X * 3 + 2] = c[8] * r + c[9] * gg + c[10] * b + c[11];
    }
}
