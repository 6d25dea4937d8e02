/* Image fidelity metrics: PSNR, SSIM (Wang et al. 2004, as skimage computes
 * it), CIEDE2000 statistics, max abs difference. Definitions: docs/metrics.md. */
#include "metrics/metrics_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* SSIM window: skimage's Gaussian (sigma 1.5, truncate 3.5) has radius
 * int(3.5 * 1.5 + 0.5) = 5, i.e. 11 taps, and the mean leaves out a border
 * of (11 - 1) / 2 = 5 pixels on every side. */
#define SSIM_R 5
#define SSIM_TAPS (2 * SSIM_R + 1)
#define SSIM_SIGMA 1.5
#define SSIM_C1 (0.01 * 0.01) /* (K1 * data_range)^2 with data_range 1 */
#define SSIM_C2 (0.03 * 0.03)

/* Planes SSIM and PSNR are computed on: R, G, B and BT.601 luma Y'. */
enum { PL_R, PL_G, PL_B, PL_Y, PLANES };
/* Per-row statistics of the pixel pass. */
enum { RS_SSE_R, RS_SSE_G, RS_SSE_B, RS_SSE_Y, RS_DE_SUM, RS_DE_MAX, RS_MAX_ABS, RS_N };

upres_metrics_desc upres_metrics_desc_defaults(void)
{
    upres_metrics_desc d;
    memset(&d, 0, sizeof d);
    return d;
}

/* One image as seen by the metrics: the compared area and, for u8/u16, a
 * table of sRGB-decoded values (the decoding dominates CIEDE2000's cost). */
typedef struct view {
    const upres_image *img;
    uint32_t x0, y0;
    const double *lin; /* [256] or [65536], NULL for f32 */
} view;

/* Linear-light value of sample i (through the table when there is one). */
static inline double sample_lin(const view *v, const void *row, size_t i)
{
    switch (v->img->depth) {
    case UPRES_U8: return v->lin[((const uint8_t *)row)[i]];
    case UPRES_U16: return v->lin[((const uint16_t *)row)[i]];
    default: return upres__srgb_decode(upres__sample01(row, UPRES_F32, i));
    }
}

/* Row y (of the compared area) of plane p of v as [0,1] values into out[w]. */
static void plane_row(const view *v, uint32_t y, uint32_t w, int p, double *out)
{
    const upres_image *im = v->img;
    const void *row = upres_image_row(im, v->y0 + y);
    uint32_t ch = im->channels;
    size_t i = (size_t)v->x0 * ch;
    if (ch <= 2) {
        /* Gray counts as R = G = B, so Y' is 0.299 v + 0.587 v + 0.114 v
         * (evaluated like that, to stay the formula's value to the bit). */
        for (uint32_t x = 0; x < w; x++, i += ch) {
            double g = upres__sample01(row, im->depth, i);
            out[x] = p == PL_Y ? 0.299 * g + 0.587 * g + 0.114 * g : g;
        }
    } else if (p == PL_Y) {
        for (uint32_t x = 0; x < w; x++, i += ch) {
            double r = upres__sample01(row, im->depth, i);
            double g = upres__sample01(row, im->depth, i + 1);
            double b = upres__sample01(row, im->depth, i + 2);
            out[x] = 0.299 * r + 0.587 * g + 0.114 * b;
        }
    } else {
        for (uint32_t x = 0; x < w; x++, i += ch)
            out[x] = upres__sample01(row, im->depth, i + (size_t)p);
    }
}

/* ---- pass 1: per-pixel differences ------------------------------------ */

typedef struct pix_job {
    view a, b;
    uint32_t w;
    double *stats; /* [h][RS_N] */
    float *de;     /* [h][w] CIEDE2000 of every pixel */
} pix_job;

/* [0,1] R, G, B, alpha (1 when absent) and linear R, G, B of pixel x. */
static void pixel(const view *v, const void *row, uint32_t x, double c[4], double lin[3])
{
    const upres_image *im = v->img;
    uint32_t ch = im->channels;
    size_t i = ((size_t)v->x0 + x) * ch;
    if (ch <= 2) {
        c[0] = c[1] = c[2] = upres__sample01(row, im->depth, i);
        lin[0] = lin[1] = lin[2] = sample_lin(v, row, i);
    } else {
        for (int k = 0; k < 3; k++) {
            c[k] = upres__sample01(row, im->depth, i + (size_t)k);
            lin[k] = sample_lin(v, row, i + (size_t)k);
        }
    }
    c[3] = ch == 2 || ch == 4 ? upres__sample01(row, im->depth, i + ch - 1) : 1.0;
}

static void pix_rows(void *user, uint64_t begin, uint64_t end)
{
    pix_job *J = user;
    for (uint64_t y = begin; y < end; y++) {
        const void *ra = upres_image_row(J->a.img, J->a.y0 + (uint32_t)y);
        const void *rb = upres_image_row(J->b.img, J->b.y0 + (uint32_t)y);
        double s[RS_N] = {0};
        float *de = J->de + (size_t)y * J->w;
        for (uint32_t x = 0; x < J->w; x++) {
            double ca[4], cb[4], la[3], lb[3], laba[3], labb[3];
            pixel(&J->a, ra, x, ca, la);
            pixel(&J->b, rb, x, cb, lb);
            for (int k = 0; k < 3; k++) {
                double d = ca[k] - cb[k];
                s[RS_SSE_R + k] += d * d;
                if (fabs(d) > s[RS_MAX_ABS]) s[RS_MAX_ABS] = fabs(d);
            }
            if (fabs(ca[3] - cb[3]) > s[RS_MAX_ABS]) s[RS_MAX_ABS] = fabs(ca[3] - cb[3]);
            double dy = (0.299 * ca[0] + 0.587 * ca[1] + 0.114 * ca[2]) -
                        (0.299 * cb[0] + 0.587 * cb[1] + 0.114 * cb[2]);
            s[RS_SSE_Y] += dy * dy;
            upres__linear_rgb_to_lab(la[0], la[1], la[2], laba);
            upres__linear_rgb_to_lab(lb[0], lb[1], lb[2], labb);
            double e = upres__ciede2000(laba[0], laba[1], laba[2], labb[0], labb[1], labb[2]);
            de[x] = (float)e;
            s[RS_DE_SUM] += e;
            if (e > s[RS_DE_MAX]) s[RS_DE_MAX] = e;
        }
        memcpy(J->stats + y * RS_N, s, sizeof s);
    }
}

/* ---- percentile --------------------------------------------------------- */

static void swapf(float *a, float *b)
{
    float t = *a;
    *a = *b;
    *b = t;
}

/* Reorders v[0..n) so that v[k] holds the value a full sort would put there,
 * everything before it is <= and everything after is >=. Three-way
 * partitioning keeps runs of equal values (identical images) linear. */
static void select_kth(float *v, size_t n, size_t k)
{
    size_t lo = 0, hi = n; /* the answer lies in [lo, hi) */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        /* Median of three as the pivot. */
        float p0 = v[lo], p1 = v[mid], p2 = v[hi - 1];
        float p = p0 < p1 ? (p1 < p2 ? p1 : p0 < p2 ? p2 : p0) : (p0 < p2 ? p0 : p1 < p2 ? p2 : p1);
        size_t lt = lo, i = lo, gt = hi; /* [lo,lt) < p, [lt,i) == p, [gt,hi) > p */
        while (i < gt) {
            if (v[i] < p) swapf(&v[lt++], &v[i++]);
            else if (v[i] > p) swapf(&v[i], &v[--gt]);
            else i++;
        }
        if (k < lt) hi = lt;
        else if (k >= gt) lo = gt;
        else return;
    }
}

double upres__percentile(float *v, size_t n, double q)
{
    if (n == 0) return NAN;
    /* numpy's "linear" method: virtual index (n - 1) * q, clamped to the
     * last element; then its _lerp, which interpolates from the upper
     * neighbour when the fraction is >= 0.5. */
    double vi = (double)(n - 1) * q;
    size_t lo;
    double frac;
    if (vi >= (double)(n - 1)) {
        lo = n - 1;
        frac = 0;
    } else if (vi <= 0) {
        lo = 0;
        frac = 0;
    } else {
        lo = (size_t)floor(vi);
        frac = vi - floor(vi);
    }
    select_kth(v, n, lo);
    double a = v[lo], b = a;
    if (lo + 1 < n) {
        /* The next order statistic is the smallest value after lo. */
        float m = v[lo + 1];
        for (size_t i = lo + 2; i < n; i++)
            if (v[i] < m) m = v[i];
        b = m;
    }
    double d = b - a;
    return frac >= 0.5 ? b - d * (1 - frac) : a + d * frac;
}

/* ---- pass 2: SSIM ------------------------------------------------------- */

/* SSIM of the compared area is summed over output rows [SSIM_R, h - SSIM_R),
 * split into bands; each band owns its scratch rows so bands can run on any
 * thread and the sums do not depend on the thread count. */
typedef struct ssim_job {
    view a, b;
    uint32_t w, h;
    uint64_t rows_per_band;
    double g[SSIM_TAPS]; /* normalised Gaussian taps */
    double *scratch;     /* [bands][SSIM_SCRATCH][w] */
    double *row_sum;     /* [h][PLANES] sum of SSIM over the row's valid pixels */
} ssim_job;

/* Scratch rows per band: the five vertically filtered moments and a ring of
 * the SSIM_TAPS most recent input rows of both images. */
#define SSIM_SCRATCH (5 + 2 * SSIM_TAPS)

static void ssim_band(const ssim_job *J, uint64_t band)
{
    uint32_t w = J->w;
    double *buf = J->scratch + band * SSIM_SCRATCH * (size_t)w;
    double *vx = buf, *vy = vx + w, *vxx = vy + w, *vyy = vxx + w, *vxy = vyy + w;
    double *ring_a = buf + 5 * (size_t)w, *ring_b = ring_a + SSIM_TAPS * (size_t)w;
    uint64_t y0 = SSIM_R + band * J->rows_per_band;
    uint64_t y1 = y0 + J->rows_per_band;
    if (y1 > J->h - SSIM_R) y1 = J->h - SSIM_R;
    for (int p = 0; p < PLANES; p++) {
        /* Input row r lives in ring slot r % SSIM_TAPS, converted once. */
        for (uint64_t r = y0 - SSIM_R; r < y0 + SSIM_R; r++) {
            size_t slot = (size_t)(r % SSIM_TAPS) * w;
            plane_row(&J->a, (uint32_t)r, w, p, ring_a + slot);
            plane_row(&J->b, (uint32_t)r, w, p, ring_b + slot);
        }
        for (uint64_t y = y0; y < y1; y++) {
            size_t slot = (size_t)((y + SSIM_R) % SSIM_TAPS) * w;
            plane_row(&J->a, (uint32_t)(y + SSIM_R), w, p, ring_a + slot);
            plane_row(&J->b, (uint32_t)(y + SSIM_R), w, p, ring_b + slot);
            /* Vertical pass of the separable filter over the five moments
             * (x, y, x^2, y^2, xy), as skimage filters each image first
             * along rows then columns; borders never enter the cropped
             * mean, so no padding is needed. */
            memset(vx, 0, 5 * (size_t)w * sizeof *vx);
            for (int k = 0; k < SSIM_TAPS; k++) {
                size_t sk = (size_t)((y - SSIM_R + (uint64_t)k) % SSIM_TAPS) * w;
                const double *ra = ring_a + sk, *rb = ring_b + sk;
                double g = J->g[k];
                for (uint32_t x = 0; x < w; x++) {
                    double s = ra[x], t = rb[x];
                    vx[x] += g * s;
                    vy[x] += g * t;
                    vxx[x] += g * (s * s);
                    vyy[x] += g * (t * t);
                    vxy[x] += g * (s * t);
                }
            }
            double sum = 0;
            for (uint32_t x = SSIM_R; x + SSIM_R < w; x++) {
                double ux = 0, uy = 0, uxx = 0, uyy = 0, uxy = 0;
                for (int k = 0; k < SSIM_TAPS; k++) {
                    size_t j = x - SSIM_R + (size_t)k;
                    double g = J->g[k];
                    ux += g * vx[j];
                    uy += g * vy[j];
                    uxx += g * vxx[j];
                    uyy += g * vyy[j];
                    uxy += g * vxy[j];
                }
                double sx = uxx - ux * ux, sy = uyy - uy * uy, sxy = uxy - ux * uy;
                sum += ((2 * ux * uy + SSIM_C1) * (2 * sxy + SSIM_C2)) /
                       ((ux * ux + uy * uy + SSIM_C1) * (sx + sy + SSIM_C2));
            }
            J->row_sum[y * PLANES + (size_t)p] = sum;
        }
    }
}

static void ssim_bands(void *user, uint64_t begin, uint64_t end)
{
    for (uint64_t b = begin; b < end; b++) ssim_band(user, b);
}

/* Mean SSIM per plane into out[PLANES]; NAN when the area is smaller than
 * the window (skimage refuses such images). */
static int ssim_planes(upres_ctx *ctx, const view *a, const view *b, uint32_t w, uint32_t h,
                       double out[PLANES])
{
    if (w < SSIM_TAPS || h < SSIM_TAPS) {
        for (int p = 0; p < PLANES; p++) out[p] = NAN;
        return UPRES_OK;
    }
    ssim_job J;
    memset(&J, 0, sizeof J);
    J.a = *a;
    J.b = *b;
    J.w = w;
    J.h = h;
    double gs = 0;
    for (int k = 0; k < SSIM_TAPS; k++) {
        double t = k - SSIM_R;
        J.g[k] = exp(-0.5 / (SSIM_SIGMA * SSIM_SIGMA) * t * t);
        gs += J.g[k];
    }
    for (int k = 0; k < SSIM_TAPS; k++) J.g[k] /= gs;

    uint64_t rows = h - 2 * SSIM_R;
    /* A few bands per thread balance the load; at least ~16k pixels each
     * keeps the per-band setup negligible. */
    uint64_t bands = (uint64_t)upres_ctx_threads(ctx) * 4;
    uint64_t min_rows = 1 + (1 << 14) / w;
    if (bands > rows / min_rows) bands = rows / min_rows;
    /* Scratch stays under ~128 MiB however wide the image (fewer bands,
     * less parallelism, only for very wide images). */
    uint64_t mem_bands = (128u << 20) / ((uint64_t)SSIM_SCRATCH * sizeof(double) * w);
    if (bands > mem_bands) bands = mem_bands;
    if (bands < 1) bands = 1;
    J.rows_per_band = (rows + bands - 1) / bands;
    bands = (rows + J.rows_per_band - 1) / J.rows_per_band;

    size_t n_scratch, n_rows, bytes;
    if (!upres__mul_size((size_t)bands * SSIM_SCRATCH, w, &n_scratch) ||
        !upres__mul_size(h, PLANES, &n_rows) ||
        !upres__add_size(n_scratch, n_rows, &bytes) ||
        !upres__mul_size(bytes, sizeof(double), &bytes))
        return upres__fail(ctx, UPRES_ERR_OVERFLOW, "metrics: SSIM buffers too large");
    double *mem = malloc(bytes);
    if (!mem) return upres__fail(ctx, UPRES_ERR_NOMEM, "metrics: out of memory (SSIM)");
    J.scratch = mem;
    J.row_sum = mem + n_scratch;
    int st = upres__parallel_for(ctx, "ssim", bands, 1, ssim_bands, &J);
    if (st) {
        free(mem);
        return upres__fail(ctx, st, "metrics: cancelled");
    }
    double n = (double)(w - 2 * SSIM_R) * (double)rows;
    for (int p = 0; p < PLANES; p++) {
        double s = 0;
        for (uint32_t y = SSIM_R; y < h - SSIM_R; y++)
            s += J.row_sum[(size_t)y * PLANES + (size_t)p];
        out[p] = s / n;
    }
    free(mem);
    return UPRES_OK;
}

/* ---- entry point -------------------------------------------------------- */

/* sRGB decoding table of every code value of depth d (NULL for f32). */
static double *decode_table(upres_depth d)
{
    size_t n = d == UPRES_U8 ? 256 : d == UPRES_U16 ? 65536 : 0;
    if (!n) return NULL;
    double *t = malloc(n * sizeof *t);
    if (!t) return NULL;
    /* Divided, not multiplied by the reciprocal: the same [0,1] value as
     * upres__sample01 and as numpy's a / 255. */
    for (size_t i = 0; i < n; i++) t[i] = upres__srgb_decode((double)i / (double)(n - 1));
    return t;
}

static double psnr_of(double sse, double count)
{
    double mse = sse / count;
    return mse == 0 ? INFINITY : 10.0 * log10(1.0 / mse);
}

int upres_metrics_compute(upres_ctx *ctx, const upres_image *a, const upres_image *b,
                          const upres_metrics_desc *desc, upres_metrics *out)
{
    upres__clear_error(ctx);
    if (!out) return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "metrics: NULL result");
    memset(out, 0, sizeof *out);
    if (!a || !b || !upres__metrics_image_ok(a) || !upres__metrics_image_ok(b))
        return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "metrics: invalid image");
    if (a->width != b->width || a->height != b->height)
        return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "metrics: sizes differ (%ux%u vs %ux%u)",
                           a->width, a->height, b->width, b->height);
    upres_metrics_desc d = desc ? *desc : upres_metrics_desc_defaults();
    /* 2 * shave < side, written without the overflow of 2 * shave. */
    if (d.shave >= a->width / 2 + a->width % 2 || d.shave >= a->height / 2 + a->height % 2)
        return upres__fail(ctx, UPRES_ERR_INVALID_ARG,
                           "metrics: shaving %u pixels leaves nothing of %ux%u", d.shave, a->width,
                           a->height);
    uint32_t w = a->width - 2 * d.shave, h = a->height - 2 * d.shave;
    /* The per-pixel CIEDE2000 values are kept for the percentile. */
    int st = upres_limits_check(upres__limits(ctx), w, h, 1, sizeof(float));
    if (st) return upres__fail(ctx, st, "metrics: %ux%u exceeds the limits", w, h);
    size_t n_px, n_stats;
    if (!upres__mul_size(w, h, &n_px) || !upres__mul_size(h, RS_N * sizeof(double), &n_stats))
        return upres__fail(ctx, UPRES_ERR_OVERFLOW, "metrics: image too large");

    double *lin_a = decode_table(a->depth);
    double *lin_b = b->depth == a->depth ? lin_a : decode_table(b->depth);
    float *de = malloc(n_px * sizeof *de);
    double *stats = malloc(n_stats);
    if ((a->depth != UPRES_F32 && !lin_a) || (b->depth != UPRES_F32 && !lin_b) || !de || !stats) {
        st = upres__fail(ctx, UPRES_ERR_NOMEM, "metrics: out of memory");
        goto done;
    }
    view va = {a, d.shave, d.shave, lin_a}, vb = {b, d.shave, d.shave, lin_b};
    pix_job P = {va, vb, w, stats, de};
    st = upres__parallel_for(ctx, "metrics", h, 1 + (1 << 13) / w, pix_rows, &P);
    if (st) {
        st = upres__fail(ctx, st, "metrics: cancelled");
        goto done;
    }
    /* Reduced in row order so the result does not depend on the threads. */
    double acc[RS_N] = {0};
    for (uint32_t y = 0; y < h; y++) {
        const double *s = stats + (size_t)y * RS_N;
        for (int k = RS_SSE_R; k <= RS_DE_SUM; k++) acc[k] += s[k];
        if (s[RS_DE_MAX] > acc[RS_DE_MAX]) acc[RS_DE_MAX] = s[RS_DE_MAX];
        if (s[RS_MAX_ABS] > acc[RS_MAX_ABS]) acc[RS_MAX_ABS] = s[RS_MAX_ABS];
    }
    double npx = (double)w * (double)h;
    out->width = w;
    out->height = h;
    out->psnr = psnr_of(acc[RS_SSE_R] + acc[RS_SSE_G] + acc[RS_SSE_B], 3 * npx);
    out->psnr_y = psnr_of(acc[RS_SSE_Y], npx);
    out->de_mean = acc[RS_DE_SUM] / npx;
    out->de_max = acc[RS_DE_MAX];
    out->de_p95 = upres__percentile(de, n_px, 0.95);
    out->max_abs = acc[RS_MAX_ABS] * 255.0;
    if (a->depth == b->depth && a->depth != UPRES_F32) {
        /* Integer samples differ by whole code values: remove the rounding
         * of the [0,1] scaling (26.999999999999989 -> 27). */
        double top = a->depth == UPRES_U8 ? 255.0 : 65535.0;
        out->max_abs = round(acc[RS_MAX_ABS] * top) * (255.0 / top);
    }
    double ss[PLANES] = {0};
    st = ssim_planes(ctx, &va, &vb, w, h, ss);
    if (st) goto done;
    out->ssim = (ss[PL_R] + ss[PL_G] + ss[PL_B]) / 3;
    out->ssim_y = ss[PL_Y];
done:
    if (lin_b != lin_a) free(lin_b);
    free(lin_a);
    free(de);
    free(stats);
    if (st) {
        memset(out, 0, sizeof *out);
    }
    return st;
}
