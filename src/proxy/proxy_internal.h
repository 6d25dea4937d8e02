/* Guided merge internals: a bilateral grid of affine colour transforms
 * (Chen, Adams, Wadhwa, Hasinoff, "Bilateral Guided Upsampling", 2016),
 * fitted on a proxy pair and sliced at any resolution. Used by merge.c. */
#ifndef UPRES_PROXY_INTERNAL_H
#define UPRES_PROXY_INTERNAL_H

#include "core/core_internal.h"

/* Fit parameters (see upres_merge_desc). */
typedef struct bgu_params {
    double cell;        /* pixels of the fitted image per cell side, >= 1 */
    int bins;           /* luma cells, >= 1 */
    double smoothness;  /* scales the neighbour terms, >= 0 */
    int nx, ny;         /* cells across and down; 0 = round(w or h / cell), >= 1 */
} bgu_params;

/* Bytes the fit needs per grid vertex (bounds: see upres__bgu_fit). */
#define BGU_BYTES_PER_VERTEX 11500

/*
 * The grid: (nx+1) x (ny+1) x (nz+1) vertices over (x, y, luma), each a 3x4
 * affine transform out = M * [r g b 1]. A pixel of a W x H image at column X,
 * row Y and luma l (Rec. 709 weights on the stored, gamma-encoded values)
 * sits at grid coordinates ((X+0.5)*nx/W, (Y+0.5)*ny/H, clamp(l,0,1)*nz):
 * the grid spans the picture whatever its resolution, so a grid fitted on a
 * proxy slices the original.
 */
typedef struct bgu_grid {
    int nx, ny, nz;
    float *m;           /* [ny+1][nx+1][nz+1][12]; M[c][i] at c*4+i */
    int iterations;     /* conjugate-gradient iterations the fit took */
} bgu_grid;

/*
 * Fits the grid that maps `src` to `dst` in the least-squares sense, with
 * smoothness between neighbouring vertices and a weak pull toward the
 * identity (which decides cells without data). src, dst: w*h pixels of 3
 * floats in [0,1]; wgt: w*h weights in [0,1] (alpha; NULL = all 1). dst
 * samples at exactly 0 or 1 count as clipped: left out where the fit goes
 * past the clip. Runs on ctx's pool; the result does not depend on the
 * number of threads. Memory: about 11.5 KB per vertex plus w*h bytes.
 * Returns UPRES_OK, UPRES_ERR_INVALID_ARG, UPRES_ERR_NOMEM, UPRES_ERR_LIMIT
 * (the grid would exceed the memory limit) or UPRES_ERR_CANCELLED (ctx's
 * progress callback, called as ("fit", pass, passes) every few iterations,
 * asked to stop), with the detail in ctx.
 */
int upres__bgu_fit(upres_ctx *ctx, const float *src, const float *dst, const float *wgt, int w,
                   int h, const bgu_params *p, bgu_grid *out);
void upres__bgu_free(bgu_grid *g);

/* Column tables of a slicer for images W x H. */
typedef struct bgu_slicer {
    const bgu_grid *g;
    int W, H;
    int *ix;            /* [W] cell column */
    float *fx;          /* [W] weight of column ix+1 */
    size_t scratch;     /* floats of scratch slice_row needs */
} bgu_slicer;

int upres__bgu_slicer_init(bgu_slicer *s, const bgu_grid *g, int W, int H);
void upres__bgu_slicer_free(bgu_slicer *s);
/*
 * Applies the grid to row Y: in and out hold W pixels of 3 floats (may
 * alias). scratch: s->scratch floats. Thread-safe with distinct scratch.
 */
void upres__bgu_slice_row(const bgu_slicer *s, int Y, const float *in, float *out,
                          float *scratch);

#endif
