/* Tiling of one image axis for upres_upscale: where tiles sit, how much
 * context each gets, and the feathered weights that blend their results. */
#ifndef UPRES_UPSCALE_INTERNAL_H
#define UPRES_UPSCALE_INTERNAL_H

#include "core/core_internal.h"

/*
 * One axis of length `len` input pixels cut into `n` tiles. Tile i covers the
 * core [pos[i], pos[i] + core) of the image (core = min(tile, len)); it is run
 * on the window [pos[i] - before, pos[i] + core + after), whose samples
 * outside the image are mirrored (reflect without repeating the edge, applied
 * repeatedly when the window reaches past a whole period). Every tile has the
 * same window length `before + core + after`, so one graph plan serves all.
 * Adjacent cores overlap by at least `overlap` pixels (less only when the axis
 * is shorter); tiles at the ends are shifted inward instead of shrunk.
 * Window starts (pos[i] - before) are multiples of `align`; the last core may
 * then reach up to align - 1 samples past `len` (weight 0 there).
 *
 * w[i * core * scale + k] is the blending weight of output sample k of tile
 * i's core (output coordinate pos[i] * scale + k): a raised-cosine ramp over
 * each overlap with a neighbour, 1 elsewhere, normalised so the weights of
 * all tiles covering an output sample sum to 1. Every output sample of the
 * axis is covered by at least one tile with a positive weight.
 */
typedef struct upres_tile_axis {
    int len, core, before, after, scale, overlap;
    int n;
    int *pos;  /* [n] */
    float *w;  /* [n * core * scale] */
} upres_tile_axis;

/* Plans an axis. len >= 1, tile >= 1, pad >= 0 (context each side),
 * overlap >= 0 (wanted; limited to core / 2), min_window >= 1 (the window is
 * widened with more context when shorter), align >= 1 (the model's grid),
 * scale >= 1. Returns UPRES_OK,
 * UPRES_ERR_INVALID_ARG, UPRES_ERR_OVERFLOW or UPRES_ERR_NOMEM; on error the
 * axis is left freed. */
int upres__tile_axis_plan(upres_tile_axis *a, int len, int tile, int pad, int overlap,
                          int min_window, int align, int scale);
/* Frees the arrays; safe on a zeroed or freed axis. */
void upres__tile_axis_free(upres_tile_axis *a);

/* Window length of a tile along an axis planned with these arguments, without
 * planning it (for choosing a tile size); -1 on overflow. */
int upres__tile_window(int len, int tile, int pad, int min_window, int align);

/* Index of sample i (any integer) of an axis of n >= 1 samples after
 * mirroring without repeating the edge, repeated as needed. */
static inline int upres__reflect(int64_t i, int n)
{
    if (n <= 1) return 0;
    int64_t p = 2 * (int64_t)(n - 1);
    i %= p;
    if (i < 0) i += p;
    return (int)(i < n ? i : p - i);
}

#endif
