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

#endif
