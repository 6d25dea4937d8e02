/* Per-axis resampling weights for subsystems that resample in their own
 * loops (the proxy merge resamples a delta strip by strip). The weights are
 * exactly those upres_resize's float path uses for the same mapping. */
#ifndef UPRES_RESAMPLE_INTERNAL_H
#define UPRES_RESAMPLE_INTERNAL_H

#include "core/core_internal.h"

/* Output i of an axis reads input samples first[i] .. first[i]+count[i]-1
 * with weights w[i*stride ..] (float, summing to 1; zero past count[i]). */
typedef struct upres_axis {
    int out;
    int stride;
    int *first;   /* [out] */
    int *count;   /* [out] */
    float *w;     /* [out * stride] */
} upres_axis;

/* Plans the mapping of input interval [in0, in1) of an axis of in_size
 * samples onto `out` samples with filter f (NEAREST: one tap of weight 1).
 * Mapping the whole axis onto the same size gives the identity. Returns
 * UPRES_OK, UPRES_ERR_NOMEM, UPRES_ERR_OVERFLOW or UPRES_ERR_INVALID_ARG. */
int upres__axis_plan(upres_axis *a, int in_size, double in0, double in1, int out,
                     upres_filter f);
/* Frees the arrays; safe on a zeroed or already freed axis. */
void upres__axis_free(upres_axis *a);

/*
 * A whole-image resize fed with the source's rows top to bottom, for sources
 * too large to hold (the guided merge recomputes a proxy from a streamed
 * original). The result is bit-identical to upres_resize of the whole image
 * to out_w x out_h with `filter` (same passes, weights and roundings). Memory:
 * the result plus a ring of (longest vertical window + 64) intermediate rows
 * of out_w samples. Not thread-safe; the horizontal and vertical passes run
 * on ctx's pool (without progress reports: the caller reports per push).
 * new returns UPRES_ERR_INVALID_ARG, _NOMEM, _OVERFLOW or _LIMIT; push
 * returns UPRES_ERR_INVALID_ARG for rows past the source's height; finish
 * hands over the result (UPRES_ERR_INVALID_ARG before every source row was
 * pushed).
 */
typedef struct upres_sresize upres_sresize;
int upres__sresize_new(upres_ctx *ctx, const upres_layout *in, uint32_t out_w, uint32_t out_h,
                       upres_filter filter, upres_sresize **out);
/* Pushes the next n source rows (row k at rows + k*stride). */
int upres__sresize_push(upres_ctx *ctx, upres_sresize *s, const void *rows, size_t stride,
                        uint32_t n);
int upres__sresize_finish(upres_sresize *s, upres_image **out);
void upres__sresize_free(upres_sresize *s);

#endif
