/* CIEDE2000 colour difference between sRGB images (Sharma, Wu, Dalal,
 * "The CIEDE2000 color-difference formula: implementation notes, supplementary
 * test data, and mathematical observations", Color Res. Appl. 30, 2005). */
#include "metrics/metrics_internal.h"

#include <math.h>
#include <stdlib.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

double upres__srgb_decode(double v)
{
    return v > 0.04045 ? pow((v + 0.055) / 1.055, 2.4) : v / 12.92;
}

static double lab_f(double t)
{
    return t > 0.008856 ? cbrt(t) : 7.787 * t + 16.0 / 116.0;
}

void upres__srgb_to_lab(double r, double g, double b, double lab[3])
{
    upres__linear_rgb_to_lab(upres__srgb_decode(r), upres__srgb_decode(g), upres__srgb_decode(b),
                             lab);
}

void upres__linear_rgb_to_lab(double r, double g, double b, double lab[3])
{
    /* skimage's xyz_from_rgb and its D65 / 2-degree white point. */
    double x = 0.412453 * r + 0.357580 * g + 0.180423 * b;
    double y = 0.212671 * r + 0.715160 * g + 0.072169 * b;
    double z = 0.019334 * r + 0.119193 * g + 0.950227 * b;
    double fx = lab_f(x / 0.95047), fy = lab_f(y / 1.0), fz = lab_f(z / 1.08883);
    lab[0] = 116.0 * fy - 16.0;
    lab[1] = 500.0 * (fx - fy);
    lab[2] = 200.0 * (fy - fz);
}

/* Inverse of lab_f, using the same constants so that the two round-trip. */
static double lab_finv(double t)
{
    return t > 0.20689655172413793 ? t * t * t : (t - 16.0 / 116.0) / 7.787;
}

static double srgb_encode(double v)
{
    return v > 0.0031308 ? 1.055 * pow(v, 1.0 / 2.4) - 0.055 : 12.92 * v;
}

void upres__lab_to_srgb(const double lab[3], double rgb[3])
{
    double fy = (lab[0] + 16.0) / 116.0;
    double x = 0.95047 * lab_finv(fy + lab[1] / 500.0);
    double y = lab_finv(fy);
    double z = 1.08883 * lab_finv(fy - lab[2] / 200.0);
    /* The inverse of the matrix in upres__srgb_to_lab. */
    rgb[0] = srgb_encode(3.240481343200527 * x - 1.5371515162713185 * y - 0.4985363261688879 * z);
    rgb[1] = srgb_encode(-0.9692549499965684 * x + 1.8759900014898907 * y + 0.04155592655829285 * z);
    rgb[2] = srgb_encode(0.05564663913517715 * x - 0.20404133836651123 * y + 1.0573110696453443 * z);
}

double upres__srgb_gray_lightness(double v)
{
    /* The matrix rows sum to 1 for Y, so a gray's Y is its linear value. */
    return 116.0 * lab_f(upres__srgb_decode(v)) - 16.0;
}

/* Polar angle in [0, 2*pi). */
static double hue_2pi(double x, double y)
{
    double t = atan2(y, x);
    return t < 0 ? t + 2 * M_PI : t;
}

double upres__ciede2000(double L1, double a1, double b1, double L2, double a2, double b2)
{
    const double pow25_7 = 6103515625.0; /* 25^7 */
    double cbar = 0.5 * (hypot(a1, b1) + hypot(a2, b2));
    double c7 = pow(cbar, 7);
    double G = 0.5 * (1 - sqrt(c7 / (c7 + pow25_7)));
    double ap1 = a1 * (1 + G), ap2 = a2 * (1 + G);
    double C1 = hypot(ap1, b1), C2 = hypot(ap2, b2);
    double h1 = hue_2pi(ap1, b1), h2 = hue_2pi(ap2, b2);

    double lbar = 0.5 * (L1 + L2);
    double t = (lbar - 50) * (lbar - 50);
    double SL = 1 + 0.015 * t / sqrt(20 + t);
    double L_term = (L2 - L1) / SL;

    double cpbar = 0.5 * (C1 + C2);
    double SC = 1 + 0.045 * cpbar;
    double C_term = (C2 - C1) / SC;

    double hdiff = h2 - h1, hsum = h1 + h2, CC = C1 * C2;
    double dh = hdiff;
    if (hdiff > M_PI) dh -= 2 * M_PI;
    if (hdiff < -M_PI) dh += 2 * M_PI;
    /* The hue of a neutral colour is undefined: it contributes no hue
     * difference and the mean hue is the other colour's. */
    if (CC == 0) dh = 0;
    double dH_term = 2 * sqrt(CC) * sin(dh / 2);

    double hbar = hsum;
    if (CC != 0 && fabs(hdiff) > M_PI) hbar += hsum < 2 * M_PI ? 2 * M_PI : -2 * M_PI;
    if (CC == 0) hbar *= 2;
    hbar *= 0.5;

    const double deg = M_PI / 180.0;
    double T = 1 - 0.17 * cos(hbar - 30 * deg) + 0.24 * cos(2 * hbar) +
               0.32 * cos(3 * hbar + 6 * deg) - 0.20 * cos(4 * hbar - 63 * deg);
    double SH = 1 + 0.015 * cpbar * T;
    double H_term = dH_term / SH;

    double cp7 = pow(cpbar, 7);
    double Rc = 2 * sqrt(cp7 / (cp7 + pow25_7));
    double e = (hbar / deg - 275) / 25;
    double dtheta = 30 * deg * exp(-e * e);
    double R_term = -sin(2 * dtheta) * Rc * C_term * H_term;

    double d2 = L_term * L_term + C_term * C_term + H_term * H_term + R_term;
    return sqrt(d2 > 0 ? d2 : 0);
}

typedef struct de_job {
    const upres_image *a, *b;
    double *row_sum, *row_max; /* [height] */
} de_job;

static void pixel_lab(const upres_image *img, const void *row, uint32_t x, double lab[3])
{
    size_t i = (size_t)x * img->channels;
    double r = upres__sample01(row, img->depth, i), g = r, b = r;
    if (img->channels >= 3) {
        g = upres__sample01(row, img->depth, i + 1);
        b = upres__sample01(row, img->depth, i + 2);
    }
    upres__srgb_to_lab(r, g, b, lab);
}

static void de_rows(void *user, uint64_t begin, uint64_t end)
{
    de_job *J = user;
    for (uint64_t y = begin; y < end; y++) {
        const void *ra = upres_image_row(J->a, (uint32_t)y), *rb = upres_image_row(J->b, (uint32_t)y);
        double sum = 0, mx = 0;
        for (uint32_t x = 0; x < J->a->width; x++) {
            double la[3], lb[3];
            pixel_lab(J->a, ra, x, la);
            pixel_lab(J->b, rb, x, lb);
            double d = upres__ciede2000(la[0], la[1], la[2], lb[0], lb[1], lb[2]);
            sum += d;
            if (d > mx) mx = d;
        }
        J->row_sum[y] = sum;
        J->row_max[y] = mx;
    }
}

int upres__metrics_image_ok(const upres_image *im)
{
    size_t bps = upres_depth_bytes(im->depth);
    return bps && im->data && im->width && im->height && im->channels >= 1 &&
           im->channels <= 4 && im->stride / bps / im->channels >= im->width;
}

int upres__ciede2000_mean(upres_ctx *ctx, const upres_image *a, const upres_image *b,
                          double *mean, double *max)
{
    if (!a || !b || !upres__metrics_image_ok(a) || !upres__metrics_image_ok(b))
        return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "ciede2000: invalid image");
    if (a->width != b->width || a->height != b->height)
        return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "ciede2000: sizes differ (%ux%u vs %ux%u)",
                           a->width, a->height, b->width, b->height);
    size_t bytes;
    if (!upres__mul_size(a->height, 2 * sizeof(double), &bytes))
        return upres__fail(ctx, UPRES_ERR_OVERFLOW, "ciede2000: too many rows");
    double *buf = malloc(bytes);
    if (!buf) return upres__fail(ctx, UPRES_ERR_NOMEM, "ciede2000: out of memory");
    de_job J = {a, b, buf, buf + a->height};
    uint64_t chunk = 1 + (1 << 14) / a->width;
    int st = upres__parallel_for(ctx, NULL, a->height, chunk, de_rows, &J);
    if (st) {
        free(buf);
        return upres__fail(ctx, st, "ciede2000: cancelled");
    }
    /* Reduced in row order so the result does not depend on the threads. */
    double sum = 0, mx = 0;
    for (uint32_t y = 0; y < a->height; y++) {
        sum += J.row_sum[y];
        if (J.row_max[y] > mx) mx = J.row_max[y];
    }
    free(buf);
    if (mean) *mean = sum / ((double)a->width * a->height);
    if (max) *max = mx;
    return UPRES_OK;
}
