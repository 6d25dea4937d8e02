/*
 * Separable resampling (upres_resize).
 *
 * Coefficients follow Pillow's libImaging/Resample.c exactly (same window
 * placement, same clipping of the window at the borders and renormalisation,
 * same filter formulas), so that:
 *  - u8 images without alpha (1 or 3 channels, gamma-encoded) take a
 *    fixed-point path whose arithmetic is bit-identical to Pillow's
 *    (22-bit coefficients, horizontal pass first into a clipped u8
 *    intermediate holding only the rows the vertical pass reads);
 *  - everything else (u16, f32, alpha, linear light) takes a float path:
 *    samples are scaled to [0,1], optionally linearised, premultiplied by
 *    alpha, filtered with float weights and float accumulation, then
 *    un-premultiplied, re-encoded and stored. The intermediate is clamped to
 *    [0,1] only for u8 sources (as the 8-bit path and Pillow clip theirs);
 *    u16 and f32 keep overshoot until the final store.
 * NEAREST mirrors Pillow's affine nearest sampler instead.
 *
 * Both passes run on the context's pool. The inner loops are written in
 * fixed-width blocks so that the compiler vectorises them at -O2.
 */
#include "resample/resample_internal.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PI_D 3.14159265358979323846

/* The hot loops are compiled twice on x86-64 (baseline SSE2 and AVX2) and the
 * loader picks one for the running CPU; AVX2 doubles the width of the int32
 * multiply-adds. Results are identical either way (integer arithmetic, and
 * the float loops keep their evaluation order). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define HOT_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define HOT_CLONES
#endif
/* Pillow's fixed-point precision for 8-bit resampling. */
#define PREC_BITS 22
/* Elements per vertical-pass block: a multiple of 1, 2, 3 and 4 so that a
 * block always holds whole pixels. */
#define VBLOCK 96

/* ------------------------------------------------------------------------ */
/* Names                                                                     */

static const char *const filter_names[UPRES_FILTER_COUNT_] = {
    "lanczos3", "bicubic", "mitchell", "bilinear", "box", "nearest"};

const char *upres_filter_name(upres_filter f)
{
    return (unsigned)f < UPRES_FILTER_COUNT_ ? filter_names[f] : "?";
}

int upres_filter_from_name(const char *name)
{
    static const struct {
        const char *name;
        upres_filter f;
    } aliases[] = {{"lanczos", UPRES_FILTER_LANCZOS3},
                   {"cubic", UPRES_FILTER_BICUBIC},
                   {"linear", UPRES_FILTER_BILINEAR},
                   {"area", UPRES_FILTER_BOX}};
    if (!name) return -1;
    for (int i = 0; i < UPRES_FILTER_COUNT_; i++)
        if (strcasecmp(name, filter_names[i]) == 0) return i;
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (strcasecmp(name, aliases[i].name) == 0) return (int)aliases[i].f;
    return -1;
}

upres_resize_desc upres_resize_desc_defaults(void)
{
    upres_resize_desc d;
    memset(&d, 0, sizeof d);
    d.filter = UPRES_FILTER_LANCZOS3;
    return d;
}

/* ------------------------------------------------------------------------ */
/* Filters (x in units of output-scaled input samples)                       */

/* Pillow's convention: the box covers (-0.5, 0.5]. */
static double filter_box(double x) { return (x > -0.5 && x <= 0.5) ? 1.0 : 0.0; }

static double filter_bilinear(double x)
{
    if (x < 0.0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

/* Keys cubic with a = -0.5, evaluated in Pillow's order so that rounding of
 * the fixed-point coefficients matches. */
static double filter_bicubic(double x)
{
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

/* Mitchell-Netravali, B = C = 1/3. */
static double filter_mitchell(double x)
{
    const double B = 1.0 / 3.0, C = 1.0 / 3.0;
    if (x < 0.0) x = -x;
    if (x < 1.0)
        return ((12 - 9 * B - 6 * C) * x * x * x + (-18 + 12 * B + 6 * C) * x * x +
                (6 - 2 * B)) / 6.0;
    if (x < 2.0)
        return ((-B - 6 * C) * x * x * x + (6 * B + 30 * C) * x * x +
                (-12 * B - 48 * C) * x + (8 * B + 24 * C)) / 6.0;
    return 0.0;
}

static double sinc(double x)
{
    if (x == 0.0) return 1.0;
    x = x * PI_D;
    return sin(x) / x;
}

/* Pillow's truncated lanczos: [-3, 3). */
static double filter_lanczos(double x)
{
    return (-3.0 <= x && x < 3.0) ? sinc(x) * sinc(x / 3) : 0.0;
}

typedef struct filter_def {
    double (*fn)(double x);
    double support;
} filter_def;

static const filter_def filter_defs[] = {
    [UPRES_FILTER_LANCZOS3] = {filter_lanczos, 3.0},
    [UPRES_FILTER_BICUBIC] = {filter_bicubic, 2.0},
    [UPRES_FILTER_MITCHELL] = {filter_mitchell, 2.0},
    [UPRES_FILTER_BILINEAR] = {filter_bilinear, 1.0},
    [UPRES_FILTER_BOX] = {filter_box, 0.5},
};

/* ------------------------------------------------------------------------ */
/* Per-axis coefficients                                                     */

/* Weights of one axis: output i reads input samples first[i] ..
 * first[i]+count[i]-1 with weights w*[i*stride ..]. Entries past count[i] are
 * zero, and stride is a multiple of 8 so the horizontal fixed-point dot
 * product can run over whole 8-wide blocks. first[i] + stride never exceeds
 * in_size + stride. */
typedef struct axis_coeffs {
    int out;
    int stride;
    int *first;
    int *count;
    int32_t *wi;    /* fixed-point, PREC_BITS (u8 path only) */
    float *wf;      /* float (float path only) */
} axis_coeffs;

static void axis_free(axis_coeffs *a)
{
    free(a->first);
    free(a->count);
    free(a->wi);
    free(a->wf);
    memset(a, 0, sizeof *a);
}

/* Allocates the arrays of an axis with `stride` weights per output.
 * `fixed` selects the int32 (else float) weight array. */
static int axis_alloc(axis_coeffs *a, int out, int stride, int fixed)
{
    size_t n;
    memset(a, 0, sizeof *a);
    if (!upres__mul_size((size_t)out, (size_t)stride, &n) ||
        !upres__mul_size(n, sizeof(int32_t), &n))
        return UPRES_ERR_OVERFLOW;
    a->out = out;
    a->stride = stride;
    a->first = malloc((size_t)out * sizeof(int));
    a->count = malloc((size_t)out * sizeof(int));
    if (fixed)
        a->wi = calloc(1, n);
    else
        a->wf = calloc(1, n);
    if (!a->first || !a->count || (!a->wi && !a->wf)) {
        axis_free(a);
        return UPRES_ERR_NOMEM;
    }
    return UPRES_OK;
}

/* Identity mapping (output i = input in0 + i) for an axis that needs no
 * filtering: weight exactly 1, so both paths reproduce the input. */
static int axis_identity(axis_coeffs *a, int in0, int out, int fixed)
{
    int st = axis_alloc(a, out, 8, fixed);
    if (st) return st;
    for (int i = 0; i < out; i++) {
        a->first[i] = in0 + i;
        a->count[i] = 1;
        if (fixed)
            a->wi[(size_t)i * 8] = 1 << PREC_BITS;
        else
            a->wf[(size_t)i * 8] = 1.0f;
    }
    return UPRES_OK;
}

/* Pillow's precompute_coeffs: maps [in0, in1) of an axis of in_size samples
 * onto out samples. The window is widened by the scale when shrinking,
 * clipped to the image and renormalised. */
static int axis_init(axis_coeffs *a, int in_size, double in0, double in1, int out,
                     const filter_def *f, int fixed)
{
    double scale = (in1 - in0) / out;
    double fscale = scale < 1.0 ? 1.0 : scale;
    double support = f->support * fscale;
    /* Pillow's bound on the window length. */
    double kmax = ceil(support) * 2 + 1;
    if (kmax > (double)in_size + 2) kmax = (double)in_size + 2;
    int ksize = (int)kmax;
    int stride = (ksize + 7) & ~7;
    int st = axis_alloc(a, out, stride, fixed);
    if (st) return st;
    double *w = malloc((size_t)ksize * sizeof(double));
    if (!w) {
        axis_free(a);
        return UPRES_ERR_NOMEM;
    }
    double ss = 1.0 / fscale;
    for (int xx = 0; xx < out; xx++) {
        double center = in0 + (xx + 0.5) * scale;
        /* Truncation toward zero, then clamping: Pillow's rounding. */
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        if (xmin > in_size - 1) xmin = in_size - 1;
        int n = xmax - xmin;
        if (n < 0) n = 0;
        if (n > ksize) n = ksize;
        double ww = 0.0;
        for (int x = 0; x < n; x++) {
            w[x] = f->fn((x + xmin - center + 0.5) * ss);
            ww += w[x];
        }
        for (int x = 0; x < n; x++)
            if (ww != 0.0) w[x] /= ww;
        a->first[xx] = xmin;
        a->count[xx] = n;
        size_t o = (size_t)xx * (size_t)stride;
        for (int x = 0; x < n; x++) {
            if (fixed)
                a->wi[o + x] = (int32_t)(w[x] < 0 ? -0.5 + w[x] * (1 << PREC_BITS)
                                                   : 0.5 + w[x] * (1 << PREC_BITS));
            else
                a->wf[o + x] = (float)w[x];
        }
    }
    free(w);
    return UPRES_OK;
}

/* ------------------------------------------------------------------------ */
/* Per-thread scratch                                                        */

/* One scratch buffer per pool thread. A range callback grabs a free slot for
 * its duration; at most `threads` callbacks run at once, so one is always
 * free and grabbing never fails. */
typedef struct scratch_pool {
    int n;
    size_t size;
    unsigned char *mem;
    atomic_int *busy;
} scratch_pool;

static int scratch_init(scratch_pool *p, int n, size_t size)
{
    size_t total;
    p->n = n;
    /* Keep each slot 64-byte aligned relative to the block and separate. */
    p->size = (size + 63) & ~(size_t)63;
    p->mem = NULL;
    p->busy = NULL;
    if (p->size < size || !upres__mul_size(p->size, (size_t)n, &total))
        return UPRES_ERR_OVERFLOW;
    p->mem = calloc(1, total ? total : 1);
    p->busy = calloc((size_t)n, sizeof *p->busy);
    if (!p->mem || !p->busy) {
        free(p->mem);
        free(p->busy);
        p->mem = NULL;
        p->busy = NULL;
        return UPRES_ERR_NOMEM;
    }
    for (int i = 0; i < n; i++) atomic_init(&p->busy[i], 0);
    return UPRES_OK;
}

static void scratch_free(scratch_pool *p)
{
    free(p->mem);
    free(p->busy);
    p->mem = NULL;
    p->busy = NULL;
}

static int scratch_get(scratch_pool *p)
{
    for (;;)
        for (int i = 0; i < p->n; i++)
            if (!atomic_exchange(&p->busy[i], 1)) return i;
}

static void scratch_put(scratch_pool *p, int i) { atomic_store(&p->busy[i], 0); }

/* ------------------------------------------------------------------------ */
/* The resize job                                                            */

typedef struct job {
    const upres_image *src;  /* NULL when streaming */
    upres_depth src_depth;
    upres_image *dst;
    uint32_t C;
    int in_w, out_w, out_h;
    axis_coeffs ax, ay;
    int need_h, need_v;
    int y_first, y_rows;     /* source rows the vertical pass reads */
    /* intermediate: y_rows rows of out_w*C samples (u8 or float) */
    void *tmp;
    size_t tmp_stride;       /* bytes */
    scratch_pool scratch;
    /* float path */
    int alpha, linear;
    int clamp_tmp;           /* clip the float intermediate to [0,1] */
    const float *lut8;       /* u8 -> linear, 256 entries (linear u8 input) */
    const float *thr8;       /* linear thresholds for u8 output, 255 entries */
    /* nearest */
    int *xtab, *ytab;
} job;

/* Pillow's clip8 on a PREC_BITS fixed-point sum. */
static inline uint8_t clip_fixed(int32_t v)
{
    return v < 0 ? 0 : v >= (256 << PREC_BITS) ? 255 : (uint8_t)(v >> PREC_BITS);
}

/* Horizontal fixed-point pass of one row with C channels (1..4, a constant
 * after inlining). planes: C planes of `pl` int32 each, zero past in_w. */
static inline void h_u8_row(const uint8_t *restrict src, uint8_t *restrict dst, int in_w,
                            const axis_coeffs *ax, int32_t *restrict planes, size_t pl,
                            const int C)
{
    /* Deinterleave so that each output sample is a contiguous dot product. */
    for (int x = 0; x < in_w; x++)
        for (int c = 0; c < C; c++) planes[(size_t)c * pl + x] = src[(size_t)x * C + c];
    const int stride = ax->stride;
    for (int xx = 0; xx < ax->out; xx++) {
        const int32_t *restrict w = ax->wi + (size_t)xx * stride;
        for (int c = 0; c < C; c++) {
            const int32_t *restrict p = planes + (size_t)c * pl + ax->first[xx];
            int32_t acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            /* Weights past count are zero and the planes are zero-padded,
             * so whole blocks give Pillow's exact integer sum. */
            for (int t = 0; t < stride; t += 8)
                for (int j = 0; j < 8; j++) acc[j] += p[t + j] * w[t + j];
            int32_t s = (1 << (PREC_BITS - 1)) + ((acc[0] + acc[1]) + (acc[2] + acc[3])) +
                        ((acc[4] + acc[5]) + (acc[6] + acc[7]));
            dst[(size_t)xx * C + c] = clip_fixed(s);
        }
    }
}

/* Fixed-point horizontal pass of one source row into intermediate row d. */
static inline void h_u8_any(const job *J, const uint8_t *s, uint8_t *d, int32_t *planes)
{
    size_t pl = (size_t)J->in_w + (size_t)J->ax.stride;
    switch (J->C) {
    case 1: h_u8_row(s, d, J->in_w, &J->ax, planes, pl, 1); break;
    case 2: h_u8_row(s, d, J->in_w, &J->ax, planes, pl, 2); break;
    case 3: h_u8_row(s, d, J->in_w, &J->ax, planes, pl, 3); break;
    default: h_u8_row(s, d, J->in_w, &J->ax, planes, pl, 4); break;
    }
}

HOT_CLONES static void h_u8_range(void *user, uint64_t begin, uint64_t end)
{
    job *J = user;
    int slot = scratch_get(&J->scratch);
    int32_t *planes = (int32_t *)(void *)(J->scratch.mem + (size_t)slot * J->scratch.size);
    for (uint64_t r = begin; r < end; r++)
        h_u8_any(J, upres_image_row(J->src, (uint32_t)(J->y_first + (int)r)),
                 (uint8_t *)J->tmp + r * J->tmp_stride, planes);
    scratch_put(&J->scratch, slot);
}

/* Vertical fixed-point pass of output row yy: `rows` points at source row
 * first[yy] of the intermediate, rows `bstride` bytes apart; VBLOCK samples
 * at a time. */
static inline void v_u8_row(const job *J, const uint8_t *rows, size_t bstride, uint64_t yy,
                            uint8_t *restrict d)
{
    const size_t N = (size_t)J->out_w * J->C;
    const int32_t *restrict w = J->ay.wi + yy * (size_t)J->ay.stride;
    const int n = J->ay.count[yy];
    size_t b = 0;
    for (; b + VBLOCK <= N; b += VBLOCK) {
        int32_t acc[VBLOCK];
        for (int j = 0; j < VBLOCK; j++) acc[j] = 1 << (PREC_BITS - 1);
        for (int t = 0; t < n; t++) {
            const uint8_t *restrict r = rows + (size_t)t * bstride + b;
            const int32_t k = w[t];
            for (int j = 0; j < VBLOCK; j++) acc[j] += r[j] * k;
        }
        for (int j = 0; j < VBLOCK; j++) d[b + j] = clip_fixed(acc[j]);
    }
    for (; b < N; b++) {
        int32_t acc = 1 << (PREC_BITS - 1);
        for (int t = 0; t < n; t++) acc += rows[(size_t)t * bstride + b] * w[t];
        d[b] = clip_fixed(acc);
    }
}

HOT_CLONES static void v_u8_range(void *user, uint64_t begin, uint64_t end)
{
    job *J = user;
    const uint8_t *base;
    size_t bstride;
    if (J->need_h) {
        base = J->tmp;
        bstride = J->tmp_stride;
    } else {
        base = (const uint8_t *)J->src->data + (size_t)J->y_first * J->src->stride;
        bstride = J->src->stride;
    }
    for (uint64_t yy = begin; yy < end; yy++)
        v_u8_row(J, base + (size_t)(J->ay.first[yy] - J->y_first) * bstride, bstride, yy,
                 upres_image_row(J->dst, (uint32_t)yy));
}

/* ---- float path ---- */

/* A source row -> interleaved floats in [0,1] (linearised, premultiplied). */
static void load_row_f(const job *J, const void *row, float *restrict out)
{
    const upres_depth depth = J->src_depth;
    const size_t n = (size_t)J->in_w * J->C;
    switch (depth) {
    case UPRES_U8: {
        const uint8_t *p = row;
        for (size_t i = 0; i < n; i++) out[i] = p[i] * (1.0f / 255.0f);
        if (J->lut8) {
            /* colour samples through the LUT, alpha stays as it is */
            const uint32_t C = J->C, cc = J->alpha ? C - 1 : C;
            for (size_t i = 0; i < n; i += C)
                for (uint32_t c = 0; c < cc; c++) out[i + c] = J->lut8[p[i + c]];
        }
        break;
    }
    case UPRES_U16: {
        const uint16_t *p = row;
        for (size_t i = 0; i < n; i++) out[i] = p[i] * (1.0f / 65535.0f);
        break;
    }
    default:
        memcpy(out, row, n * sizeof(float));
        break;
    }
    const uint32_t C = J->C, cc = J->alpha ? C - 1 : C;
    /* Linearise colour samples (never alpha); u8 already went through the LUT. */
    if (J->linear && depth != UPRES_U8)
        for (size_t i = 0; i < n; i += C)
            for (uint32_t c = 0; c < cc; c++) out[i + c] = upres__srgb_to_linear(out[i + c]);
    if (J->alpha)
        for (size_t i = 0; i < n; i += C)
            for (uint32_t c = 0; c < cc; c++) out[i + c] *= out[i + C - 1];
}

/* Horizontal float pass of one row. planes: the row deinterleaved into C
 * planes of `pl` floats. Each output sample is a dot product over exactly
 * count taps (never past them, so a NaN or Inf stays within its window),
 * summed in 8 lanes for vectorisation. */
static inline void h_f_row(const float *restrict in, float *restrict planes, size_t pl,
                           int in_w, float *restrict out, const axis_coeffs *ax, const int C)
{
    for (int x = 0; x < in_w; x++)
        for (int c = 0; c < C; c++) planes[(size_t)c * pl + x] = in[(size_t)x * C + c];
    for (int xx = 0; xx < ax->out; xx++) {
        const float *restrict w = ax->wf + (size_t)xx * ax->stride;
        const int n = ax->count[xx];
        for (int c = 0; c < C; c++) {
            const float *restrict p = planes + (size_t)c * pl + ax->first[xx];
            float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            int t = 0;
            for (; t + 8 <= n; t += 8)
                for (int j = 0; j < 8; j++) acc[j] += p[t + j] * w[t + j];
            for (int j = 0; t < n; t++, j++) acc[j] += p[t] * w[t];
            out[(size_t)xx * C + c] =
                ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
        }
    }
}

/* Float horizontal pass of one source row into intermediate row d. `row`
 * holds in_w*C floats of scratch, followed by the planes. */
static inline void h_f_any(const job *J, const void *src, float *restrict d, float *restrict row)
{
    const size_t pl = (size_t)J->in_w;
    float *planes = row + pl * J->C;
    load_row_f(J, src, row);
    switch (J->C) {
    case 1: h_f_row(row, planes, pl, J->in_w, d, &J->ax, 1); break;
    case 2: h_f_row(row, planes, pl, J->in_w, d, &J->ax, 2); break;
    case 3: h_f_row(row, planes, pl, J->in_w, d, &J->ax, 3); break;
    default: h_f_row(row, planes, pl, J->in_w, d, &J->ax, 4); break;
    }
    if (J->clamp_tmp) {
        /* 8-bit sources: clip the intermediate to the representable
         * range, as the fixed-point path (and Pillow) does. */
        const size_t n = (size_t)J->out_w * J->C;
        for (size_t i = 0; i < n; i++) d[i] = d[i] < 0.0f ? 0.0f : d[i] > 1.0f ? 1.0f : d[i];
    }
}

HOT_CLONES static void h_f_range(void *user, uint64_t begin, uint64_t end)
{
    job *J = user;
    int slot = scratch_get(&J->scratch);
    float *row = (float *)(void *)(J->scratch.mem + (size_t)slot * J->scratch.size);
    for (uint64_t r = begin; r < end; r++)
        h_f_any(J, upres_image_row(J->src, (uint32_t)(J->y_first + (int)r)),
                (float *)(void *)((uint8_t *)J->tmp + r * J->tmp_stride), row);
    scratch_put(&J->scratch, slot);
}

/* linear -> sRGB-encoded u8 by counting thresholds: exact rounding of the
 * transfer function without evaluating powf per sample. */
static inline uint8_t lin_to_u8(const float *thr, float v)
{
    int lo = 0, hi = 255; /* answer in [lo, hi] */
    while (lo < hi) {
        int mid = (lo + hi) >> 1;
        if (v >= thr[mid])
            lo = mid + 1;
        else
            hi = mid;
    }
    return (uint8_t)lo;
}

/* Un-premultiplies, re-encodes and stores npix pixels of v (in [0,1] units). */
static void store_f(const job *J, float *restrict v, size_t npix, void *dst, size_t off)
{
    const uint32_t C = J->C, cc = J->alpha ? C - 1 : C;
    if (J->alpha) {
        const upres_depth d = J->dst->depth;
        /* Below half a step of the output the pixel is stored transparent:
         * its colour is meaningless and dividing would amplify ringing. */
        const float amin = d == UPRES_U8 ? 0.5f / 255.0f : 0.5f / 65535.0f;
        for (size_t p = 0; p < npix; p++) {
            float *px = v + p * C;
            float a = px[C - 1];
            /* Integer outputs clip alpha overshoot; dividing by the clipped
             * alpha keeps the premultiplied colour that will be displayed. */
            if (d != UPRES_F32 && a > 1.0f) a = 1.0f;
            float inv = a >= amin ? 1.0f / a : 0.0f;
            for (uint32_t c = 0; c < cc; c++) px[c] *= inv;
        }
    }
    const size_t n = npix * C;
    switch (J->dst->depth) {
    case UPRES_U8: {
        uint8_t *d = (uint8_t *)dst + off;
        if (J->linear) {
            for (size_t p = 0; p < npix; p++)
                for (uint32_t c = 0; c < C; c++)
                    d[p * C + c] = c < cc ? lin_to_u8(J->thr8, v[p * C + c])
                                          : upres__f2u8(v[p * C + c]);
        } else {
            for (size_t i = 0; i < n; i++) d[i] = upres__f2u8(v[i]);
        }
        break;
    }
    case UPRES_U16: {
        uint16_t *d = (uint16_t *)dst + off;
        if (J->linear)
            for (size_t p = 0; p < npix; p++)
                for (uint32_t c = 0; c < cc; c++)
                    v[p * C + c] = upres__linear_to_srgb(v[p * C + c]);
        for (size_t i = 0; i < n; i++) d[i] = upres__f2u16(v[i]);
        break;
    }
    default: {
        float *d = (float *)dst + off;
        if (J->linear)
            for (size_t p = 0; p < npix; p++)
                for (uint32_t c = 0; c < cc; c++)
                    v[p * C + c] = upres__linear_to_srgb(v[p * C + c]);
        memcpy(d, v, n * sizeof(float));
        break;
    }
    }
}

/* Vertical float pass of output row yy: `rows` points at intermediate row
 * first[yy], rows `ts` floats apart. */
static inline void v_f_row(const job *J, const float *rows, size_t ts, uint64_t yy, void *d)
{
    const size_t N = (size_t)J->out_w * J->C;
    const float *restrict w = J->ay.wf + yy * (size_t)J->ay.stride;
    const int n = J->ay.count[yy];
    size_t b = 0;
    float acc[VBLOCK];
    for (; b < N; b += VBLOCK) {
        size_t m = N - b < VBLOCK ? N - b : VBLOCK;
        if (m == VBLOCK) {
            for (int j = 0; j < VBLOCK; j++) acc[j] = 0.0f;
            for (int t = 0; t < n; t++) {
                const float *restrict r = rows + (size_t)t * ts + b;
                const float k = w[t];
                for (int j = 0; j < VBLOCK; j++) acc[j] += r[j] * k;
            }
        } else {
            for (size_t j = 0; j < m; j++) acc[j] = 0.0f;
            for (int t = 0; t < n; t++) {
                const float *r = rows + (size_t)t * ts + b;
                for (size_t j = 0; j < m; j++) acc[j] += r[j] * w[t];
            }
        }
        /* VBLOCK is a multiple of C, so blocks hold whole pixels. */
        store_f(J, acc, m / J->C, d, b);
    }
}

HOT_CLONES static void v_f_range(void *user, uint64_t begin, uint64_t end)
{
    job *J = user;
    const size_t ts = J->tmp_stride / sizeof(float);
    for (uint64_t yy = begin; yy < end; yy++)
        v_f_row(J, (const float *)J->tmp + (size_t)(J->ay.first[yy] - J->y_first) * ts, ts, yy,
                upres_image_row(J->dst, (uint32_t)yy));
}

/* ---- nearest ---- */

/* Pillow's ImagingScaleAffine positions: start at in0 + step/2 and add the
 * step (accumulating, as Pillow does), truncating. Clamped into the image. */
static int *nearest_table(double in0, double in1, int out, int in_size)
{
    int *t = malloc((size_t)out * sizeof(int));
    if (!t) return NULL;
    double step = (in1 - in0) / out;
    double pos = in0 + step * 0.5;
    for (int i = 0; i < out; i++) {
        int v = pos < 0.0 ? 0 : (int)pos;
        t[i] = v >= in_size ? in_size - 1 : v;
        pos += step;
    }
    return t;
}

static void nearest_range(void *user, uint64_t begin, uint64_t end)
{
    job *J = user;
    const size_t px = J->C * upres_depth_bytes(J->src->depth);
    for (uint64_t yy = begin; yy < end; yy++) {
        const uint8_t *s = upres_image_row(J->src, (uint32_t)J->ytab[yy]);
        uint8_t *d = upres_image_row(J->dst, (uint32_t)yy);
        for (int x = 0; x < J->out_w; x++) memcpy(d + x * px, s + (size_t)J->xtab[x] * px, px);
    }
}

/* ------------------------------------------------------------------------ */
/* Entry point                                                               */

/* Rows per chunk so that one chunk is roughly `target` multiply-adds. */
static uint64_t rows_per_chunk(double cost_per_row)
{
    const double target = 1 << 18;
    double r = cost_per_row > 0 ? target / cost_per_row : 64;
    if (r < 1) r = 1;
    if (r > 256) r = 256;
    return (uint64_t)r;
}

static int copy_meta(const upres_image *src, upres_image *dst)
{
    dst->orientation = src->orientation;
    if (src->icc && src->icc_size) return upres_image_set_icc(dst, src->icc, src->icc_size);
    return UPRES_OK;
}

int upres_resize(upres_ctx *ctx, const upres_image *src, const upres_resize_desc *desc,
                 upres_image **out)
{
    upres__clear_error(ctx);
    if (!out) return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "resize: NULL output pointer");
    *out = NULL;
    if (!src || !desc) return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "resize: NULL argument");
    size_t bps = upres_depth_bytes(src->depth);
    if (bps == 0 || src->channels < 1 || src->channels > 4 || src->width == 0 ||
        src->height == 0 || !src->data)
        return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "resize: invalid source image");
    if (src->width > INT32_MAX / 2 || src->height > INT32_MAX / 2 ||
        src->stride / bps / src->channels < src->width)
        return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "resize: invalid source geometry");
    if (desc->width == 0 || desc->height == 0)
        return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "resize: output size %ux%u",
                           desc->width, desc->height);
    if ((unsigned)desc->filter >= UPRES_FILTER_COUNT_)
        return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "resize: unknown filter %d",
                           (int)desc->filter);
    int st = upres_limits_check(upres__limits(ctx), desc->width, desc->height, src->channels,
                                (uint32_t)bps);
    if (st)
        return upres__fail(ctx, st, "resize: output %ux%u exceeds the limits", desc->width,
                           desc->height);
    if (desc->width > INT32_MAX / 2 || desc->height > INT32_MAX / 2)
        return upres__fail(ctx, UPRES_ERR_LIMIT, "resize: output too large");

    /* Source region. */
    double x0 = desc->src_x, y0 = desc->src_y, rw = desc->src_w, rh = desc->src_h;
    const double W = src->width, H = src->height;
    if (x0 == 0 && y0 == 0 && rw == 0 && rh == 0) {
        rw = W;
        rh = H;
    }
    if (!isfinite(x0) || !isfinite(y0) || !isfinite(rw) || !isfinite(rh) || x0 < 0 ||
        y0 < 0 || rw <= 0 || rh <= 0 || x0 + rw > W * (1 + 1e-12) ||
        y0 + rh > H * (1 + 1e-12))
        return upres__fail(ctx, UPRES_ERR_INVALID_ARG,
                           "resize: region %g,%g %gx%g is not inside the %ux%u image", x0, y0,
                           rw, rh, src->width, src->height);
    double x1 = x0 + rw > W ? W : x0 + rw, y1 = y0 + rh > H ? H : y0 + rh;

    const int whole = x0 == 0 && y0 == 0 && x1 == W && y1 == H;
    upres_image *dst = NULL;
    if (whole && desc->width == src->width && desc->height == src->height) {
        /* Same size, whole image: an exact copy (as Pillow does). */
        st = upres_image_clone(src, &dst);
        if (st) return upres__fail(ctx, st, "resize: copying the image failed");
        *out = dst;
        return UPRES_OK;
    }

    st = upres_image_new(&dst, desc->width, desc->height, src->channels, src->depth,
                         upres__limits(ctx));
    if (st) return upres__fail(ctx, st, "resize: cannot allocate the %ux%u output",
                               desc->width, desc->height);
    st = copy_meta(src, dst);
    if (st) {
        upres_image_free(dst);
        return upres__fail(ctx, st, "resize: cannot copy the ICC profile");
    }

    job J;
    memset(&J, 0, sizeof J);
    J.src = src;
    J.src_depth = src->depth;
    J.dst = dst;
    J.C = src->channels;
    J.in_w = (int)src->width;
    J.out_w = (int)desc->width;
    J.out_h = (int)desc->height;
    float lut8[256], thr8[255];

    if (desc->filter == UPRES_FILTER_NEAREST) {
        J.xtab = nearest_table(x0, x1, J.out_w, (int)src->width);
        J.ytab = nearest_table(y0, y1, J.out_h, (int)src->height);
        if (!J.xtab || !J.ytab) {
            st = upres__fail(ctx, UPRES_ERR_NOMEM, "resize: out of memory");
        } else {
            st = upres__parallel_for(ctx, "resize", (uint64_t)J.out_h,
                                     rows_per_chunk((double)J.out_w * J.C), nearest_range, &J);
            if (st) st = upres__fail(ctx, st, "resize: cancelled");
        }
        free(J.xtab);
        free(J.ytab);
        if (st) {
            upres_image_free(dst);
            return st;
        }
        *out = dst;
        return UPRES_OK;
    }

    const filter_def *f = &filter_defs[desc->filter];
    J.alpha = J.C == 2 || J.C == 4;
    J.linear = desc->linear != 0;
    const int fixed = src->depth == UPRES_U8 && !J.alpha && !J.linear;
    /* Pillow's conditions for skipping a pass. */
    J.need_h = J.out_w != J.in_w || x0 != 0 || x1 != W;
    J.need_v = J.out_h != (int)src->height || y0 != 0 || y1 != H;

    st = J.need_v ? axis_init(&J.ay, (int)src->height, y0, y1, J.out_h, f, fixed)
                  : axis_identity(&J.ay, 0, J.out_h, fixed);
    if (!st)
        st = J.need_h ? axis_init(&J.ax, J.in_w, x0, x1, J.out_w, f, fixed)
                      : axis_identity(&J.ax, 0, J.out_w, fixed);
    if (st) goto fail_st;

    J.y_first = J.ay.first[0];
    {
        int last = J.ay.first[J.out_h - 1] + J.ay.count[J.out_h - 1];
        J.y_rows = last - J.y_first;
        if (J.y_rows < 1) J.y_rows = 1;
    }
    const int threads = upres_ctx_threads(ctx);
    double hcost = (double)J.out_w * J.C * J.ax.stride + (double)J.in_w * J.C;
    double vcost = (double)J.out_w * J.C * (J.ay.stride > 0 ? J.ay.stride : 1);

    if (fixed) {
        /* The horizontal pass writes straight into the output when the
         * vertical one is not needed; the intermediate holds only the rows
         * the vertical pass reads. */
        if (J.need_h) {
            if (J.need_v) {
                st = upres_limits_check(upres__limits(ctx), (uint64_t)J.out_w,
                                        (uint64_t)J.y_rows, J.C, 1);
                if (st) goto fail_st;
                J.tmp_stride = (size_t)J.out_w * J.C;
                J.tmp = malloc(J.tmp_stride * (size_t)J.y_rows);
                if (!J.tmp) {
                    st = UPRES_ERR_NOMEM;
                    goto fail_st;
                }
            } else {
                J.tmp = dst->data;
                J.tmp_stride = dst->stride;
            }
            size_t pl, slot;
            if (!upres__add_size((size_t)J.in_w, (size_t)J.ax.stride, &pl) ||
                !upres__mul_size(pl, (size_t)J.C * sizeof(int32_t), &slot)) {
                st = UPRES_ERR_OVERFLOW;
                goto fail_st;
            }
            if ((st = scratch_init(&J.scratch, threads, slot))) goto fail_st;
            st = upres__parallel_for(ctx, "resize", (uint64_t)J.y_rows, rows_per_chunk(hcost),
                                     h_u8_range, &J);
            if (st) goto fail_st;
        }
        if (J.need_v) {
            st = upres__parallel_for(ctx, "resize", (uint64_t)J.out_h, rows_per_chunk(vcost),
                                     v_u8_range, &J);
            if (st) goto fail_st;
        }
    } else {
        J.clamp_tmp = src->depth == UPRES_U8 && J.need_h;
        if (J.linear) {
            for (int i = 0; i < 256; i++) lut8[i] = upres__srgb_to_linear(i / 255.0f);
            for (int i = 0; i < 255; i++) thr8[i] = upres__srgb_to_linear((i + 0.5f) / 255.0f);
            if (src->depth == UPRES_U8) J.lut8 = lut8;
            J.thr8 = thr8;
        }
        st = upres_limits_check(upres__limits(ctx), (uint64_t)J.out_w, (uint64_t)J.y_rows, J.C,
                                4);
        if (st) goto fail_st;
        J.tmp_stride = (size_t)J.out_w * J.C * sizeof(float);
        J.tmp = malloc(J.tmp_stride * (size_t)J.y_rows);
        if (!J.tmp) {
            st = UPRES_ERR_NOMEM;
            goto fail_st;
        }
        /* a converted row and its planes */
        if ((st = scratch_init(&J.scratch, threads, (size_t)J.in_w * J.C * 2 * sizeof(float))))
            goto fail_st;
        st = upres__parallel_for(ctx, "resize", (uint64_t)J.y_rows, rows_per_chunk(hcost),
                                 h_f_range, &J);
        if (st) goto fail_st;
        st = upres__parallel_for(ctx, "resize", (uint64_t)J.out_h, rows_per_chunk(vcost),
                                 v_f_range, &J);
        if (st) goto fail_st;
    }

    if (J.tmp != dst->data) free(J.tmp);
    scratch_free(&J.scratch);
    axis_free(&J.ax);
    axis_free(&J.ay);
    *out = dst;
    return UPRES_OK;

fail_st:
    if (J.tmp != dst->data) free(J.tmp);
    scratch_free(&J.scratch);
    axis_free(&J.ax);
    axis_free(&J.ay);
    upres_image_free(dst);
    if (st == UPRES_ERR_CANCELLED) return upres__fail(ctx, st, "resize: cancelled");
    if (st == UPRES_ERR_NOMEM) return upres__fail(ctx, st, "resize: out of memory");
    return upres__fail(ctx, st, "resize: intermediate buffer: %s", upres_strerror(st));
}

/* ------------------------------------------------------------------------ */
/* Streaming resize                                                          */

/* Rows per pushed batch; the ring holds this many more than a window. */
#define SR_BATCH 64

struct upres_sresize {
    job J;                 /* J.src is NULL: rows come from push */
    int mode;              /* 0 filter, 1 copy (same size), 2 nearest */
    int fixed;
    uint8_t *ring;         /* 2*R slots of J.tmp_stride bytes; slot k+R mirrors k */
    int R;
    unsigned char *scratch;/* horizontal pass: per-thread planes */
    size_t scratch_size;
    int threads;
    int next_in, next_out; /* next source row expected, next output row */
    uint32_t in_h;         /* source rows */
    const uint8_t *batch;  /* the rows being pushed */
    size_t batch_stride;
    int batch_y0;
};

/* Horizontal pass of a batch's rows into the ring (rows outside the
 * vertical pass's span are skipped, as upres_resize never reads them). */
HOT_CLONES static void sr_h_range(void *user, uint64_t begin, uint64_t end)
{
    upres_sresize *S = user;
    job *J = &S->J;
    int slot = scratch_get(&J->scratch);
    unsigned char *scr = J->scratch.mem + (size_t)slot * J->scratch.size;
    for (uint64_t r = begin; r < end; r++) {
        int y = S->batch_y0 + (int)r;
        if (y < J->y_first || y >= J->y_first + J->y_rows) continue;
        const uint8_t *src = S->batch + r * S->batch_stride;
        uint8_t *d = S->ring + (size_t)((y - J->y_first) % S->R) * J->tmp_stride;
        if (!S->fixed)
            h_f_any(J, src, (float *)(void *)d, (float *)(void *)scr);
        else if (J->need_h)
            h_u8_any(J, src, d, (int32_t *)(void *)scr);
        else
            memcpy(d, src, J->tmp_stride);
        /* The mirror makes any R consecutive rows contiguous. */
        memcpy(d + (size_t)S->R * J->tmp_stride, d, J->tmp_stride);
    }
    scratch_put(&J->scratch, slot);
}

HOT_CLONES static void sr_v_range(void *user, uint64_t begin, uint64_t end)
{
    upres_sresize *S = user;
    job *J = &S->J;
    for (uint64_t yy = begin; yy < end; yy++) {
        const uint8_t *rows =
            S->ring + (size_t)((J->ay.first[yy] - J->y_first) % S->R) * J->tmp_stride;
        void *d = upres_image_row(J->dst, (uint32_t)yy);
        if (S->fixed)
            v_u8_row(J, rows, J->tmp_stride, yy, d);
        else
            v_f_row(J, (const float *)(const void *)rows, J->tmp_stride / sizeof(float), yy, d);
    }
}

static void sr_v_offset_range(void *user, uint64_t begin, uint64_t end)
{
    upres_sresize *S = user;
    sr_v_range(user, begin + (uint64_t)S->next_out, end + (uint64_t)S->next_out);
}

void upres__sresize_free(upres_sresize *s)
{
    if (!s) return;
    axis_free(&s->J.ax);
    axis_free(&s->J.ay);
    scratch_free(&s->J.scratch);
    free(s->J.xtab);
    free(s->J.ytab);
    upres_image_free(s->J.dst);
    free(s->ring);
    free(s);
}

int upres__sresize_new(upres_ctx *ctx, const upres_layout *in, uint32_t out_w, uint32_t out_h,
                       upres_filter filter, upres_sresize **out)
{
    *out = NULL;
    size_t bps = upres_depth_bytes(in->depth);
    if (!bps || in->channels < 1 || in->channels > 4 || !in->width || !in->height || !out_w ||
        !out_h || (unsigned)filter >= UPRES_FILTER_COUNT_ || in->width > INT32_MAX / 2 ||
        in->height > INT32_MAX / 2 || out_w > INT32_MAX / 2 || out_h > INT32_MAX / 2)
        return UPRES_ERR_INVALID_ARG;
    upres_sresize *S = calloc(1, sizeof *S);
    if (!S) return UPRES_ERR_NOMEM;
    job *J = &S->J;
    J->src_depth = in->depth;
    J->C = in->channels;
    J->in_w = (int)in->width;
    J->out_w = (int)out_w;
    J->out_h = (int)out_h;
    S->threads = upres_ctx_threads(ctx);
    S->in_h = in->height;
    int st = upres_image_new(&J->dst, out_w, out_h, in->channels, in->depth, upres__limits(ctx));
    if (st) goto fail;
    if (out_w == in->width && out_h == in->height) {
        /* upres_resize returns an exact copy. */
        S->mode = 1;
        *out = S;
        return UPRES_OK;
    }
    if (filter == UPRES_FILTER_NEAREST) {
        S->mode = 2;
        J->xtab = nearest_table(0, in->width, J->out_w, (int)in->width);
        J->ytab = nearest_table(0, in->height, J->out_h, (int)in->height);
        if (!J->xtab || !J->ytab) {
            st = UPRES_ERR_NOMEM;
            goto fail;
        }
        *out = S;
        return UPRES_OK;
    }
    /* The same choices as upres_resize on the whole image. */
    const filter_def *f = &filter_defs[filter];
    J->alpha = J->C == 2 || J->C == 4;
    S->fixed = in->depth == UPRES_U8 && !J->alpha;
    J->need_h = J->out_w != J->in_w;
    J->need_v = J->out_h != (int)in->height;
    st = J->need_v ? axis_init(&J->ay, (int)in->height, 0, in->height, J->out_h, f, S->fixed)
                   : axis_identity(&J->ay, 0, J->out_h, S->fixed);
    if (!st)
        st = J->need_h ? axis_init(&J->ax, J->in_w, 0, in->width, J->out_w, f, S->fixed)
                       : axis_identity(&J->ax, 0, J->out_w, S->fixed);
    if (st) goto fail;
    J->y_first = J->ay.first[0];
    int last = J->ay.first[J->out_h - 1] + J->ay.count[J->out_h - 1];
    J->y_rows = last - J->y_first < 1 ? 1 : last - J->y_first;
    J->clamp_tmp = !S->fixed && in->depth == UPRES_U8 && J->need_h;
    int maxc = 1;
    for (int i = 0; i < J->out_h; i++)
        if (J->ay.count[i] > maxc) maxc = J->ay.count[i];
    S->R = maxc + SR_BATCH;
    size_t sample = S->fixed ? 1 : sizeof(float), ring, scr;
    if (!upres__mul_size((size_t)J->out_w * J->C, sample, &J->tmp_stride) ||
        !upres__mul_size(J->tmp_stride, 2 * (size_t)S->R, &ring)) {
        st = UPRES_ERR_OVERFLOW;
        goto fail;
    }
    if (ring > upres__limits(ctx)->max_memory_bytes) {
        st = UPRES_ERR_LIMIT;
        goto fail;
    }
    S->ring = malloc(ring);
    if (S->fixed)
        scr = ((size_t)J->in_w + (size_t)J->ax.stride) * J->C * sizeof(int32_t);
    else
        scr = (size_t)J->in_w * J->C * 2 * sizeof(float);
    if (!S->ring || (st = scratch_init(&J->scratch, S->threads, scr))) {
        if (!st) st = UPRES_ERR_NOMEM;
        goto fail;
    }
    *out = S;
    return UPRES_OK;
fail:
    upres__sresize_free(S);
    return st;
}

int upres__sresize_push(upres_ctx *ctx, upres_sresize *S, const void *rows, size_t stride,
                        uint32_t n)
{
    job *J = &S->J;
    const size_t row_bytes = (size_t)J->in_w * J->C * upres_depth_bytes(J->src_depth);
    if ((uint64_t)S->next_in + n > S->in_h) return UPRES_ERR_INVALID_ARG;
    while (n > 0) {
        uint32_t m = n < SR_BATCH ? n : SR_BATCH;
        const uint8_t *b = rows;
        if (S->mode == 1) {
            for (uint32_t r = 0; r < m; r++)
                memcpy(upres_image_row(J->dst, (uint32_t)S->next_in + r), b + r * stride,
                       row_bytes);
        } else if (S->mode == 2) {
            const size_t px = J->C * upres_depth_bytes(J->src_depth);
            for (; S->next_out < J->out_h && J->ytab[S->next_out] < S->next_in + (int)m;
                 S->next_out++) {
                const uint8_t *s = b + (size_t)(J->ytab[S->next_out] - S->next_in) * stride;
                uint8_t *d = upres_image_row(J->dst, (uint32_t)S->next_out);
                for (int x = 0; x < J->out_w; x++)
                    memcpy(d + (size_t)x * px, s + (size_t)J->xtab[x] * px, px);
            }
        } else {
            S->batch = b;
            S->batch_stride = stride;
            S->batch_y0 = S->next_in;
            int st = upres__parallel_for(ctx, NULL, m, (m + (uint64_t)S->threads - 1) /
                                                           (uint64_t)S->threads,
                                         sr_h_range, S);
            if (st) return st;
            /* Output rows whose windows end within the rows seen so far.
             * Windows only move down, so the ring still holds them all. */
            int seen = S->next_in + (int)m, end = S->next_out;
            while (end < J->out_h && J->ay.first[end] + J->ay.count[end] <= seen) {
                if (J->ay.first[end] < seen - S->R) return UPRES_ERR_INVALID_ARG;
                end++;
            }
            if (end > S->next_out) {
                uint64_t cnt = (uint64_t)(end - S->next_out);
                /* sr_v_range indexes absolute output rows. */
                st = upres__parallel_for(ctx, NULL, cnt, (cnt + (uint64_t)S->threads - 1) /
                                                             (uint64_t)S->threads,
                                         sr_v_offset_range, S);
                if (st) return st;
                S->next_out = end;
            }
        }
        S->next_in += (int)m;
        rows = b + (size_t)m * stride;
        n -= m;
    }
    return UPRES_OK;
}

int upres__sresize_finish(upres_sresize *S, upres_image **out)
{
    *out = NULL;
    if (S->mode == 1 ? S->next_in != S->J.out_h : S->next_out != S->J.out_h)
        return UPRES_ERR_INVALID_ARG;
    *out = S->J.dst;
    S->J.dst = NULL;
    return UPRES_OK;
}

/* ------------------------------------------------------------------------ */
/* Axis weights for other subsystems                                         */

int upres__axis_plan(upres_axis *a, int in_size, double in0, double in1, int out,
                     upres_filter f)
{
    memset(a, 0, sizeof *a);
    if (in_size < 1 || out < 1 || (unsigned)f >= UPRES_FILTER_COUNT_ || !(in0 >= 0) ||
        !(in1 > in0) || in1 > in_size)
        return UPRES_ERR_INVALID_ARG;
    axis_coeffs c;
    int st;
    if (f == UPRES_FILTER_NEAREST) {
        int *t = nearest_table(in0, in1, out, in_size);
        if (!t) return UPRES_ERR_NOMEM;
        st = axis_alloc(&c, out, 8, 0);
        if (!st)
            for (int i = 0; i < out; i++) {
                c.first[i] = t[i];
                c.count[i] = 1;
                c.wf[(size_t)i * 8] = 1.0f;
            }
        free(t);
    } else if (out == in_size && in0 == 0 && in1 == in_size) {
        /* upres_resize skips such a pass, so the identity keeps agreement. */
        st = axis_identity(&c, 0, out, 0);
    } else {
        st = axis_init(&c, in_size, in0, in1, out, &filter_defs[f], 0);
    }
    if (st) return st;
    a->out = c.out;
    a->stride = c.stride;
    a->first = c.first;
    a->count = c.count;
    a->w = c.wf;
    return UPRES_OK;
}

void upres__axis_free(upres_axis *a)
{
    free(a->first);
    free(a->count);
    free(a->w);
    memset(a, 0, sizeof *a);
}
