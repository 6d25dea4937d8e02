/* Image quality metrics used by tests and acceptance checks. */
#ifndef UPRES_METRICS_INTERNAL_H
#define UPRES_METRICS_INTERNAL_H

#include "core/core_internal.h"

/* sRGB-encoded r, g, b (nominally [0,1]; values are not clamped) -> CIE L*a*b*
 * with the D65 white of the 2-degree observer, computed in double exactly as
 * skimage.color.rgb2lab does: IEC 61966-2-1 decoding (threshold 0.04045),
 * the sRGB/D65 XYZ matrix, then the CIE 1976 L*a*b* formulas. */
void upres__srgb_to_lab(double r, double g, double b, double lab[3]);

/* The inverse of upres__srgb_to_lab (results not clamped; out-of-gamut
 * colours give values outside [0,1]). */
void upres__lab_to_srgb(const double lab[3], double rgb[3]);

/* L* of the sRGB gray v (= upres__srgb_to_lab(v, v, v)[0], cheaper). */
double upres__srgb_gray_lightness(double v);

/* CIEDE2000 colour difference of two L*a*b* colours with kL = kC = kH = 1
 * (Sharma, Wu, Dalal 2005; the same arithmetic as
 * skimage.color.deltaE_ciede2000). */
double upres__ciede2000(double L1, double a1, double b1, double L2, double a2, double b2);

/* Mean and maximum CIEDE2000 over all pixels of two images of equal width
 * and height. Either may be u8, u16 or f32 (read as sRGB-encoded values in
 * [0,1]; f32 is clamped to [0,1]) and gray or RGB (gray counts as R=G=B);
 * alpha is ignored. mean or max may be NULL. Errors: UPRES_ERR_INVALID_ARG
 * (NULL image, size mismatch, invalid image). */
int upres__ciede2000_mean(upres_ctx *ctx, const upres_image *a, const upres_image *b,
                          double *mean, double *max);

#endif
