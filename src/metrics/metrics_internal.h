/* Image quality metrics used by tests and acceptance checks. */
#ifndef UPRES_METRICS_INTERNAL_H
#define UPRES_METRICS_INTERNAL_H

#include "core/core_internal.h"

/* sRGB-encoded r, g, b (nominally [0,1]; values are not clamped) -> CIE L*a*b*
 * with the D65 white of the 2-degree observer, computed in double exactly as
 * skimage.color.rgb2lab does: IEC 61966-2-1 decoding (threshold 0.04045),
 * the sRGB/D65 XYZ matrix, then the CIE 1976 L*a*b* formulas. */
void upres__srgb_to_lab(double r, double g, double b, double lab[3]);

/* IEC 61966-2-1 decoding of one sRGB-encoded value as skimage does it
 * (threshold 0.04045, exponent 2.4; not clamped). */
double upres__srgb_decode(double v);

/* upres__srgb_to_lab after the decoding: linear-light r, g, b -> L*a*b*.
 * upres__srgb_to_lab(r, g, b) == upres__linear_rgb_to_lab(decode(r), ...). */
void upres__linear_rgb_to_lab(double r, double g, double b, double lab[3]);

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

/* Sample i of an image row, scaled to [0,1]: u8 / 255, u16 / 65535, f32
 * clamped to [0,1] (NaN -> 0). */
static inline double upres__sample01(const void *row, upres_depth d, size_t i)
{
    switch (d) {
    case UPRES_U8: return ((const uint8_t *)row)[i] / 255.0;
    case UPRES_U16: return ((const uint16_t *)row)[i] / 65535.0;
    default: {
        double v = ((const float *)row)[i];
        return !(v > 0) ? 0 : v > 1 ? 1 : v;
    }
    }
}

/* 1 when img has data, a valid depth, 1..4 channels, nonzero size and a
 * stride that holds a row; else 0. */
int upres__metrics_image_ok(const upres_image *img);

/* The q-quantile (0 <= q <= 1) of v[0..n) as numpy.percentile(v, 100 q)
 * computes it with its default "linear" method: virtual index (n - 1) q
 * between the two neighbouring order statistics. Reorders v. NAN when n is 0. */
double upres__percentile(float *v, size_t n, double q);

#endif
