/* Tile placement and feathered blending weights (see upscale_internal.h). */
#include "upscale/upscale_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

void upres__tile_axis_free(upres_tile_axis *a)
{
    if (!a) return;
    free(a->pos);
    free(a->w);
    a->pos = NULL;
    a->w = NULL;
    a->n = 0;
}

/* Context before and after the core: `pad` each side, more when the window
 * would be shorter than min_window (split evenly, the odd pixel after); the
 * context before is rounded up to a multiple of `align` so the window starts
 * on the model's grid. */
static int window_split(int core, int pad, int min_window, int align, int *before, int *after)
{
    int64_t win = (int64_t)core + 2 * (int64_t)pad;
    int64_t extra = win < min_window ? min_window - win : 0;
    int64_t b = pad + extra / 2, a = pad + extra - extra / 2;
    b = (b + align - 1) / align * align;
    if (core + b + a > INT32_MAX / 2) return -1;
    *before = (int)b;
    *after = (int)a;
    return (int)(core + b + a);
}

/* Core length of the tiles: the tile side, but the whole axis when shorter,
 * and at least two grid cells when the axis is cut, so that the stride
 * between grid-aligned tiles can be a whole cell. */
static int axis_core(int len, int tile, int align)
{
    int core = tile < len ? tile : len;
    if (align > 1 && core < len && core < 2 * align) core = 2 * align < len ? 2 * align : len;
    return core;
}

int upres__tile_window(int len, int tile, int pad, int min_window, int align)
{
    if (len < 1 || tile < 1 || pad < 0 || min_window < 1 || align < 1) return -1;
    int b, a;
    return window_split(axis_core(len, tile, align), pad, min_window, align, &b, &a);
}

/* Raised-cosine ramp rising from 0 at t = 0 to 1 at t = 1: its mirror image
 * adds up with it to exactly 1 over a two-tile overlap, and its slope is zero
 * at both ends, so no kink shows where the ramp starts. */
static double ramp(double t)
{
    return 0.5 - 0.5 * cos(M_PI * t);
}

int upres__tile_axis_plan(upres_tile_axis *a, int len, int tile, int pad, int overlap,
                          int min_window, int align, int scale)
{
    memset(a, 0, sizeof *a);
    if (len < 1 || tile < 1 || pad < 0 || overlap < 0 || min_window < 1 || align < 1 ||
        scale < 1)
        return UPRES_ERR_INVALID_ARG;
    int core = axis_core(len, tile, align);
    if (window_split(core, pad, min_window, align, &a->before, &a->after) < 0)
        return UPRES_ERR_OVERFLOW;
    /* At least one grid cell, so that grid-aligned neighbours still blend. */
    if (overlap < align) overlap = align;
    if (overlap > core / 2) overlap = core / 2;
    a->len = len;
    a->core = core;
    a->scale = scale;
    a->overlap = overlap;
    /* Models that downsample inside (pixel-unshuffle, U-Nets) give the
     * whole-image result only on windows that start on their grid, so
     * positions are counted in grid cells of `align` samples: the last tile
     * starts at the first cell from which its core reaches the end (hanging
     * past it by less than a cell; those samples get no weight), and n tiles
     * at most `gmax` cells apart (a stride of at most core - overlap) get
     * there. Snapping evenly spread positions to the grid afterwards instead
     * could open gaps between cores. */
    int64_t n = 1, cells = 0;
    if (core < len) {
        int64_t gmax = (core - overlap) / align;
        if (gmax < 1) gmax = 1; /* core >= 2 * align when cut, so not reached */
        cells = ((int64_t)len - core + align - 1) / align;
        n = 1 + (cells + gmax - 1) / gmax;
    }
    size_t cs, nw;
    if (!upres__mul_size((size_t)core, (size_t)scale, &cs) ||
        !upres__mul_size(cs, (size_t)n, &nw) || nw > SIZE_MAX / sizeof(float))
        return UPRES_ERR_OVERFLOW;
    a->pos = malloc((size_t)n * sizeof *a->pos);
    a->w = malloc(nw * sizeof *a->w);
    double *sum = calloc((size_t)len * (size_t)scale, sizeof *sum);
    if (!a->pos || !a->w || !sum) {
        free(sum);
        upres__tile_axis_free(a);
        return UPRES_ERR_NOMEM;
    }
    a->n = (int)n;
    /* Spread evenly (rounded to whole cells) so every overlap is about the
     * same; the first tile starts at 0 and the last reaches len, both full
     * size. Rounding keeps each step within ceil(cells / (n - 1)) <= gmax. */
    for (int64_t i = 0; i < n; i++)
        a->pos[i] = n == 1 ? 0 : (int)(align * ((2 * i * cells + (n - 1)) / (2 * (n - 1))));
    const size_t end = (size_t)len * (size_t)scale;
    for (int i = 0; i < a->n; i++) {
        float *w = a->w + (size_t)i * cs;
        int lo_prev = a->pos[i], hi_prev = i > 0 ? a->pos[i - 1] + core : lo_prev;
        int lo_next = i + 1 < a->n ? a->pos[i + 1] : a->pos[i] + core, hi_next = a->pos[i] + core;
        for (size_t k = 0; k < cs; k++) {
            /* Centre of output sample k in input coordinates. */
            double u = a->pos[i] + (k + 0.5) / scale, v = 1.0;
            if (hi_prev > lo_prev && u < hi_prev)
                v *= ramp((u - lo_prev) / (hi_prev - lo_prev));
            if (hi_next > lo_next && u > lo_next)
                v *= 1.0 - ramp((u - lo_next) / (hi_next - lo_next));
            if ((size_t)a->pos[i] * scale + k >= end) v = 0.0;
            w[k] = (float)v;
            if (v > 0.0) sum[(size_t)a->pos[i] * scale + k] += v;
        }
    }
    for (int i = 0; i < a->n; i++) {
        float *w = a->w + (size_t)i * cs;
        const double *s = sum + (size_t)a->pos[i] * scale;
        for (size_t k = 0; k < cs; k++)
            if (w[k] > 0.0f) w[k] = (float)(w[k] / s[k]);
    }
    free(sum);
    return UPRES_OK;
}
