/*
 * upres_upscale: a model run over overlapping, feather-blended tiles, then
 * lanczos3 to the exact size asked for.
 *
 * Data flow (all intermediate images are f32, values clamped to [0,1]):
 *   input --(to float)--> colour source: RGB, or Y (BT.601 luma) or gray
 *                         alpha source (1 channel)
 *   colour source --(tiled network)--> colour at the network's scale
 *        --(lanczos3 when the size differs)--> colour at the target size
 *   luma path: RGB of the input --(bicubic)--> target size; recombined in
 *              CIELAB: its a*, b* with its L* moved by the network's change
 *              of lightness
 *   alpha --(lanczos3 | tiled network)--> target size
 *   --> output at the input's depth, rounded once, ICC kept.
 */
#include "metrics/metrics_internal.h"
#include "models/models_internal.h"
#include "upscale/upscale_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Smallest tile chosen from a memory budget. */
#define MIN_AUTO_TILE 32
/* Largest tile_pad accepted. */
#define MAX_TILE_PAD 4096
/* Overlap between neighbouring tiles' cores never drops below this (input
 * pixels), so tiles are feathered even with tile_pad 0. */
#define MIN_OVERLAP 4

/* BT.601 full-range luma weights, on sRGB-encoded values (as JPEG's Y'CbCr). */
#define KR 0.299f
#define KG 0.587f
#define KB 0.114f

upres_upscale_desc upres_upscale_desc_defaults(void)
{
    upres_upscale_desc d;
    memset(&d, 0, sizeof d);
    d.tile_pad = -1;
    d.color = UPRES_COLOR_RGB;
    d.alpha = UPRES_ALPHA_LANCZOS;
    return d;
}

/* ---- small helpers ------------------------------------------------------ */

static inline float clamp01(float v)
{
    return !(v > 0.0f) ? 0.0f : v > 1.0f ? 1.0f : v;
}

static inline float get01(const void *row, upres_depth d, size_t i)
{
    switch (d) {
    case UPRES_U8: return ((const uint8_t *)row)[i] * (1.0f / 255.0f);
    case UPRES_U16: return ((const uint16_t *)row)[i] * (1.0f / 65535.0f);
    default: return clamp01(((const float *)row)[i]);
    }
}

static inline void put01(void *row, upres_depth d, size_t i, float v)
{
    switch (d) {
    case UPRES_U8: ((uint8_t *)row)[i] = upres__f2u8(v); break;
    case UPRES_U16: ((uint16_t *)row)[i] = upres__f2u16(v); break;
    default: ((float *)row)[i] = clamp01(v); break;
    }
}

static inline float *frow(const upres_image *img, uint32_t y)
{
    return (float *)upres_image_row(img, y);
}

/* A new zeroed f32 image checked against ctx's limits. */
static int new_f32(upres_ctx *ctx, uint32_t w, uint32_t h, uint32_t c, upres_image **out,
                   const char *what)
{
    int st = upres_image_new(out, w, h, c, UPRES_F32, upres__limits(ctx));
    if (st)
        return upres__fail(ctx, st, "upscale: %s buffer %ux%ux%u: %s", what, w, h, c,
                           upres_strerror(st));
    return UPRES_OK;
}

/* Resizes f32 image *img (1 or 3 channels, so no alpha handling applies) to
 * w x h with filter f, replacing it; no-op when the size already matches. */
static int resize_to(upres_ctx *ctx, upres_image **img, uint32_t w, uint32_t h, upres_filter f)
{
    if ((*img)->width == w && (*img)->height == h) return UPRES_OK;
    upres_resize_desc rd = upres_resize_desc_defaults();
    rd.width = w;
    rd.height = h;
    rd.filter = f;
    upres_image *r = NULL;
    int st = upres_resize(ctx, *img, &rd, &r);
    if (st) return st;
    upres_image_free(*img);
    *img = r;
    return UPRES_OK;
}

static void clamp_rows(void *user, uint64_t y0, uint64_t y1)
{
    upres_image *img = user;
    const size_t n = (size_t)img->width * img->channels;
    for (uint64_t y = y0; y < y1; y++) {
        float *r = frow(img, (uint32_t)y);
        for (size_t i = 0; i < n; i++) r[i] = clamp01(r[i]);
    }
}

/* Clamps every sample of f32 image img to [0,1] (NaN -> 0). */
static int clamp_image(upres_ctx *ctx, upres_image *img)
{
    return upres__parallel_for(ctx, NULL, img->height, 16, clamp_rows, img);
}

/* The default tile budget: a quarter of RAM, at most 512 MiB. Beyond that
 * bigger tiles save only the little context recomputed at their borders,
 * while a process that must also hold the model and the whole output (a
 * 1920x1080 x4 upscale with RRDBNet) should stay within 2 GB. */
static uint64_t default_memory(void)
{
    const uint64_t cap = (uint64_t)512 << 20;
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGE_SIZE);
    if (pages <= 0 || size <= 0) return cap;
    uint64_t q = (uint64_t)pages * (uint64_t)size / 4;
    return q < cap ? q : cap;
}

/* ---- tiling ------------------------------------------------------------- */

typedef struct tiling {
    upres_tile_axis ax, ay;
    int win_w, win_h;          /* network input per tile */
    float *in;                 /* [in_c][win_h][win_w]; the output stays in the model */
} tiling;

static void tiling_free(tiling *t)
{
    upres__tile_axis_free(&t->ax);
    upres__tile_axis_free(&t->ay);
    free(t->in);
    memset(t, 0, sizeof *t);
}

/* Overlap between neighbouring cores, input pixels: half the context (at
 * least MIN_OVERLAP) but at most a quarter of the tile, so a small tile does
 * not cost much more than it already does. When the context covers the
 * network's reach the tiles agree anyway and the ramp only has to hide
 * rounding; when it does not (capped RRDBNet context, Real-CUGAN's global
 * pooling) the ramp spreads the disagreement instead of showing a seam. */
static int overlap_for(int pad, int tile)
{
    int o = pad / 2 > MIN_OVERLAP ? pad / 2 : MIN_OVERLAP;
    return o < tile / 4 ? o : tile / 4;
}

/* Bytes one tile needs: the model's activations and buffers plus our tile
 * input. */
static int tile_cost(upres_ctx *ctx, upres_model *m, uint32_t w, uint32_t h, int tile, int pad,
                     uint64_t *bytes)
{
    int ww = upres__tile_window((int)w, tile, pad, m->min_side, m->align);
    int wh = upres__tile_window((int)h, tile, pad, m->min_side, m->align);
    if (ww < 0 || wh < 0) return UPRES_ERR_OVERFLOW;
    size_t act = 0;
    int st = upres__model_tile_bytes(ctx, m, wh, ww, &act);
    if (st) return st;
    double own = 4.0 * (double)m->in_c * wh * ww;
    double total = (double)act + own;
    *bytes = total >= 1.8e19 ? UINT64_MAX : (uint64_t)total;
    return UPRES_OK;
}

/* The largest tile in [MIN_AUTO_TILE, max side] whose cost fits `budget`
 * (the whole image when it fits; MIN_AUTO_TILE when nothing does). */
static int choose_tile(upres_ctx *ctx, upres_model *m, uint32_t w, uint32_t h, int pad,
                       uint64_t budget, int *tile)
{
    int hi = (int)(w > h ? w : h);
    uint64_t b;
    int fits = tile_cost(ctx, m, w, h, hi, pad, &b) == UPRES_OK && b <= budget;
    /* A failed probe only means "does not fit"; its detail must not stand
     * in for a later, real error (upres__fail keeps the first detail). */
    upres__clear_error(ctx);
    int lo = MIN_AUTO_TILE;
    if (fits || lo >= hi) {
        *tile = hi;
        return UPRES_OK;
    }
    /* Invariant: tiles above hi do not fit; lo is the answer unless a larger
     * one fits. The cost grows with the tile, so bisect. */
    hi--;
    while (lo < hi) {
        int mid = lo + (hi - lo + 1) / 2;
        if (tile_cost(ctx, m, w, h, mid, pad, &b) == UPRES_OK && b <= budget)
            lo = mid;
        else
            hi = mid - 1;
    }
    upres__clear_error(ctx);
    *tile = lo;
    return UPRES_OK;
}

/* Lays out the tiles of a w x h input with tile side `tile` (the axes and
 * the window size, checked against ctx's limits) without allocating the tile
 * buffers. On error *t is left freed. */
static int tiling_layout(upres_ctx *ctx, upres_model *m, uint32_t w, uint32_t h, int tile,
                         int pad, tiling *t)
{
    memset(t, 0, sizeof *t);
    int ov = overlap_for(pad, tile);
    int st = upres__tile_axis_plan(&t->ax, (int)w, tile, pad, ov, m->min_side, m->align, m->scale);
    if (!st)
        st = upres__tile_axis_plan(&t->ay, (int)h, tile, pad, ov, m->min_side, m->align, m->scale);
    if (st) {
        tiling_free(t);
        return upres__fail(ctx, st, "upscale: cannot plan tiles: %s", upres_strerror(st));
    }
    t->win_w = t->ax.before + t->ax.core + t->ax.after;
    t->win_h = t->ay.before + t->ay.core + t->ay.after;
    const upres_limits *lim = upres__limits(ctx);
    uint64_t ow = (uint64_t)t->win_w * m->scale, oh = (uint64_t)t->win_h * m->scale;
    st = upres_limits_check(lim, (uint64_t)t->win_w, (uint64_t)t->win_h, (uint32_t)m->in_c, 4);
    if (!st) st = upres_limits_check(lim, ow, oh, (uint32_t)m->out_c, 4);
    if (st) {
        /* tiling_free zeroes *t: report the window it had. */
        const int ww = t->win_w, wh = t->win_h;
        tiling_free(t);
        return upres__fail(ctx, st, "upscale: tile window %dx%d (x%d) exceeds the limits", ww,
                           wh, m->scale);
    }
    return UPRES_OK;
}

/* tiling_layout plus the tile input buffer (freed by tiling_free). */
static int tiling_plan(upres_ctx *ctx, upres_model *m, uint32_t w, uint32_t h, int tile, int pad,
                       tiling *t)
{
    int st = tiling_layout(ctx, m, w, h, tile, pad, t);
    if (st) return st;
    t->in = malloc((size_t)m->in_c * t->win_w * t->win_h * sizeof(float));
    if (!t->in) {
        tiling_free(t);
        return upres__fail(ctx, UPRES_ERR_NOMEM, "upscale: out of memory for the tile buffers");
    }
    return UPRES_OK;
}

/* The tile side upres_upscale uses for a w x h input: desc's tile capped at
 * the longer side, else the largest that fits desc's memory budget (a
 * quarter of RAM, at most 512 MiB, when 0). */
static int tile_side(upres_ctx *ctx, upres_model *m, uint32_t w, uint32_t h,
                     const upres_upscale_desc *d, int pad, int *tile)
{
    if (d->tile) {
        uint32_t mx = w > h ? w : h;
        *tile = (int)(d->tile < mx ? d->tile : mx);
        return UPRES_OK;
    }
    return choose_tile(ctx, m, w, h, pad, d->memory_bytes ? d->memory_bytes : default_memory(),
                       tile);
}

/*
 * Runs the model over every tile of `src` (f32, 1 or 3 channels, the input's
 * size) and accumulates the weighted results into `dst` (f32, 1 or 3
 * channels, the input's size times the model's scale, zeroed). A 1-channel
 * source feeds every input channel of a 3-channel model; a 1-channel dst
 * receives the mean of a 3-channel model's outputs. With `direct` (one
 * tile only; dst unused) the tile's output is left in the model instead and
 * *direct points at it ([out_c][win_h*s][win_w*s]).
 */
static int run_tiles(upres_ctx *ctx, upres_model *m, tiling *t, const upres_image *src,
                     upres_image *dst, const float **direct, uint64_t *done, uint64_t total)
{
    const int s = m->scale, W = (int)src->width, H = (int)src->height;
    const int sc = (int)src->channels;
    const size_t in_plane = (size_t)t->win_w * t->win_h;
    const int ow = t->win_w * s, oh = t->win_h * s;
    const size_t out_plane = (size_t)ow * oh;
    const int cw = t->ax.core * s, ch = t->ay.core * s;
    int *xmap = malloc((size_t)t->win_w * sizeof *xmap);
    if (!xmap) return upres__fail(ctx, UPRES_ERR_NOMEM, "upscale: out of memory");
    int st = UPRES_OK;
    for (int ty = 0; ty < t->ay.n && !st; ty++) {
        for (int tx = 0; tx < t->ax.n && !st; tx++) {
            const int64_t x0 = (int64_t)t->ax.pos[tx] - t->ax.before;
            const int64_t y0 = (int64_t)t->ay.pos[ty] - t->ay.before;
            for (int i = 0; i < t->win_w; i++) xmap[i] = upres__reflect(x0 + i, W);
            for (int yy = 0; yy < t->win_h; yy++) {
                const float *row = frow(src, (uint32_t)upres__reflect(y0 + yy, H));
                for (int c = 0; c < m->in_c; c++) {
                    float *d = t->in + c * in_plane + (size_t)yy * t->win_w;
                    int k = sc == 1 ? 0 : c;
                    for (int i = 0; i < t->win_w; i++) d[i] = row[(size_t)xmap[i] * sc + k];
                }
            }
            const float *tout;
            st = upres__model_run_buf(ctx, m, t->in, t->win_h, t->win_w, &tout);
            if (st) break;
            if (direct) {
                *direct = tout;
            } else {
                /* Only the core goes into the result; the context around it
                 * exists so the core sees real neighbours. */
                const size_t dx0 = (size_t)t->ax.pos[tx] * s;
                /* The last core may hang past the image end (grid alignment). */
                const int kmax = (int)((size_t)H * s - (size_t)t->ay.pos[ty] * s) < ch
                                     ? (int)((size_t)H * s - (size_t)t->ay.pos[ty] * s)
                                     : ch;
                const int jmax =
                    (int)((size_t)W * s - dx0) < cw ? (int)((size_t)W * s - dx0) : cw;
                const float *wy = t->ay.w + (size_t)ty * ch, *wx = t->ax.w + (size_t)tx * cw;
                const size_t oy = (size_t)t->ay.before * s, ox = (size_t)t->ax.before * s;
                const int dc = (int)dst->channels, oc = m->out_c;
                const float inv_oc = 1.0f / (float)oc;
                /* On the calling thread: the first tile touches dst's fresh
                 * pages, and page faults from two threads at once contend in
                 * the kernel (measured: a 128x128 SRVGGNetCompact upscale took
                 * 15 % longer with this pass on the pool). */
                for (int k = 0; k < kmax; k++) {
                    float *restrict drow =
                        frow(dst, (uint32_t)((size_t)t->ay.pos[ty] * s + k)) + dx0 * dc;
                    const float *o = tout + (oy + (size_t)k) * (size_t)ow + ox;
                    if (dc == oc) {
                        for (int c = 0; c < dc; c++)
                            for (int j = 0; j < jmax; j++)
                                drow[(size_t)j * dc + c] += wy[k] * wx[j] * o[c * out_plane + j];
                    } else {
                        for (int j = 0; j < jmax; j++) {
                            float v = 0;
                            for (int c = 0; c < oc; c++) v += o[c * out_plane + j];
                            drow[j] += wy[k] * wx[j] * v * inv_oc;
                        }
                    }
                }
            }
            ++*done;
            st = upres__progress(ctx, "upscale", *done, total);
            if (st) st = upres__fail(ctx, st, "upscale: cancelled");
        }
    }
    free(xmap);
    return st;
}

/* ---- the public call ---------------------------------------------------- */

static int image_valid(const upres_image *im)
{
    size_t bps = upres_depth_bytes(im->depth);
    return bps && im->data && im->width && im->height && im->channels >= 1 &&
           im->channels <= 4 && im->width <= INT32_MAX / 2 && im->height <= INT32_MAX / 2 &&
           im->stride / bps / im->channels >= im->width;
}

/* Output size for an in_w x in_h input per the desc's rules; fails for a
 * bad scale or an output of `channels` samples of `bytes` over the limits. */
static int target_size(upres_ctx *ctx, uint32_t in_w, uint32_t in_h, uint32_t channels,
                       uint32_t bytes, const upres_upscale_desc *d, int model_scale, uint32_t *tw,
                       uint32_t *th)
{
    const double W = in_w, H = in_h;
    double w, h;
    if (d->width && d->height) {
        w = d->width;
        h = d->height;
    } else if (d->width) {
        w = d->width;
        h = floor(H * d->width / W + 0.5);
    } else if (d->height) {
        h = d->height;
        w = floor(W * d->height / H + 0.5);
    } else {
        if (!isfinite(d->scale) || d->scale < 0)
            return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "upscale: invalid scale %g",
                               d->scale);
        double s = d->scale > 0 ? d->scale : model_scale > 0 ? model_scale : 2;
        w = floor(W * s + 0.5);
        h = floor(H * s + 0.5);
    }
    if (w < 1) w = 1;
    if (h < 1) h = 1;
    const upres_limits *lim = upres__limits(ctx);
    if (w > lim->max_side || h > lim->max_side || w > 4294967295.0 || h > 4294967295.0)
        return upres__fail(ctx, UPRES_ERR_LIMIT, "upscale: output %.0fx%.0f exceeds the limits",
                           w, h);
    *tw = (uint32_t)w;
    *th = (uint32_t)h;
    int st = upres_limits_check(lim, *tw, *th, channels, bytes);
    if (st)
        return upres__fail(ctx, st, "upscale: output %ux%u exceeds the limits", *tw, *th);
    return UPRES_OK;
}

typedef struct work {
    upres_image *color_src, *alpha_src; /* input size */
    upres_image *chroma;                /* luma mode: RGB, input size, then target size */
    upres_image *color, *alpha;         /* network size, then target size */
} work;

static void work_free(work *w)
{
    upres_image_free(w->color_src);
    upres_image_free(w->alpha_src);
    upres_image_free(w->chroma);
    upres_image_free(w->color);
    upres_image_free(w->alpha);
}

/* The last step: network colour (+ luma-mode chroma, + alpha), all at the
 * target size, into the output image at its depth. */
typedef struct finish_job {
    upres_image *res;
    const upres_image *color, *alpha, *chroma; /* alpha, chroma may be NULL */
    int rgb_net, C;
    /* Instead of color (NULL then): the network's planar RGB output, pixel
     * (x, y) of channel c at planar[c*plane + (oy+y)*stride + ox+x],
     * clamped here. */
    const float *planar;
    size_t plane, stride;
    int oy, ox;
} finish_job;

static void finish_rows(void *user, uint64_t y0, uint64_t y1)
{
    const finish_job *J = user;
    upres_image *res = J->res;
    const int C = J->C;
    for (uint64_t yy = y0; yy < y1; yy++) {
        const uint32_t y = (uint32_t)yy;
        void *orow = upres_image_row(res, y);
        if (J->planar) {
            const float *p = J->planar + (size_t)(J->oy + (int)y) * J->stride + (size_t)J->ox;
            const float *ar = J->alpha ? frow(J->alpha, y) : NULL;
            if (res->depth == UPRES_U8 && C == 3) {
                /* The common case without put01's switch per sample. */
                uint8_t *o8 = orow;
                const float *p0 = p, *p1 = p + J->plane, *p2 = p + 2 * J->plane;
                for (uint32_t x = 0; x < res->width; x++) {
                    o8[3 * (size_t)x] = upres__f2u8(clamp01(p0[x]));
                    o8[3 * (size_t)x + 1] = upres__f2u8(clamp01(p1[x]));
                    o8[3 * (size_t)x + 2] = upres__f2u8(clamp01(p2[x]));
                }
                continue;
            }
            for (uint32_t x = 0; x < res->width; x++) {
                size_t o = (size_t)x * C;
                for (int c = 0; c < 3; c++)
                    put01(orow, res->depth, o + c, clamp01(p[(size_t)c * J->plane + x]));
                if (ar) put01(orow, res->depth, o + C - 1, ar[x]);
            }
            continue;
        }
        const float *cr = frow(J->color, y);
        const float *ar = J->alpha ? frow(J->alpha, y) : NULL;
        const float *chr = J->chroma ? frow(J->chroma, y) : NULL;
        for (uint32_t x = 0; x < res->width; x++) {
            size_t o = (size_t)x * C;
            if (J->rgb_net) {
                for (int c = 0; c < 3; c++) put01(orow, res->depth, o + c, cr[3 * x + c]);
            } else if (chr) {
                /* Hue and chroma (a*, b*) are the bicubic upscale's; its
                 * lightness moves by what the network changed in the luma
                 * (measured as the L* of grays), so a network that only
                 * interpolates gives the bicubic colour back. */
                const float *p = chr + 3 * (size_t)x;
                double lab[3], rgb[3];
                upres__srgb_to_lab(p[0], p[1], p[2], lab);
                double ybic = KR * p[0] + KG * p[1] + KB * p[2];
                lab[0] += upres__srgb_gray_lightness(clamp01(cr[x])) -
                          upres__srgb_gray_lightness(clamp01((float)ybic));
                /* Out-of-gamut results are clipped per channel: measured on
                 * real images (bench/luma_drift.sh), that stays closer to
                 * the bicubic colour in CIEDE2000 than reducing chroma at
                 * constant hue does. */
                upres__lab_to_srgb(lab, rgb);
                for (int c = 0; c < 3; c++) put01(orow, res->depth, o + c, clamp01((float)rgb[c]));
            } else {
                put01(orow, res->depth, o, cr[x]);
            }
            if (ar) put01(orow, res->depth, o + C - 1, ar[x]);
        }
    }
}

/* Checks the parts of desc and model that upres_upscale and
 * upres_upscale_plan both rely on. */
static int check_args(upres_ctx *ctx, const upres_model *model, const upres_upscale_desc *d)
{
    if (d->color != UPRES_COLOR_RGB && d->color != UPRES_COLOR_LUMA)
        return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "upscale: unknown colour mode %d",
                           (int)d->color);
    if (d->alpha != UPRES_ALPHA_LANCZOS && d->alpha != UPRES_ALPHA_MODEL)
        return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "upscale: unknown alpha mode %d",
                           (int)d->alpha);
    if (d->tile_pad < -1 || d->tile_pad > MAX_TILE_PAD)
        return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "upscale: tile_pad %d not in -1..%d",
                           d->tile_pad, MAX_TILE_PAD);
    if (model && (!model->graph || model->scale < 1 || model->scale > 16 ||
                  (model->in_c != 1 && model->in_c != 3) ||
                  (model->out_c != 1 && model->out_c != 3) || model->min_side < 1 ||
                  model->context < 0))
        return upres__fail(ctx, UPRES_ERR_UNSUPPORTED,
                           "upscale: model with scale %d, %d -> %d channels is not supported",
                           model->scale, model->in_c, model->out_c);
    return UPRES_OK;
}

int upres_upscale(upres_ctx *ctx, upres_model *model, const upres_image *in,
                  const upres_upscale_desc *desc, upres_image **out)
{
    upres__clear_error(ctx);
    if (!out) return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "upscale: NULL output pointer");
    *out = NULL;
    if (!in || !image_valid(in))
        return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "upscale: invalid input image");
    upres_upscale_desc d = desc ? *desc : upres_upscale_desc_defaults();
    int st = check_args(ctx, model, &d);
    if (st) return st;
    uint32_t tw = 0, th = 0;
    st = target_size(ctx, in->width, in->height, in->channels,
                     (uint32_t)upres_depth_bytes(in->depth), &d, model ? model->scale : 0, &tw, &th);
    if (st) return st;

    if (!model) {
        /* Nothing to run: the plain lanczos3 resize is the whole job. */
        upres_resize_desc rd = upres_resize_desc_defaults();
        rd.width = tw;
        rd.height = th;
        rd.filter = UPRES_FILTER_LANCZOS3;
        st = upres__progress(ctx, "upscale", 0, 1);
        if (st) return upres__fail(ctx, st, "upscale: cancelled");
        st = upres_resize(ctx, in, &rd, out);
        if (!st && (st = upres__progress(ctx, "upscale", 1, 1))) {
            upres_image_free(*out);
            *out = NULL;
            return upres__fail(ctx, st, "upscale: cancelled");
        }
        return st;
    }

    const uint32_t W = in->width, H = in->height, C = in->channels;
    const int is_color = C >= 3, has_alpha = C == 2 || C == 4;
    /* Colour images go through the network as Y,Y,Y when asked, and
     * necessarily when the model has a single channel. */
    const int luma = is_color && (d.color == UPRES_COLOR_LUMA || model->in_c == 1 ||
                                  model->out_c == 1);
    const int rgb_net = is_color && !luma;
    const int alpha_net = has_alpha && d.alpha == UPRES_ALPHA_MODEL;
    const int s = model->scale;
    const int pad = d.tile_pad >= 0 ? d.tile_pad : model->context;
    if ((uint64_t)W * s > UINT32_MAX / 2 || (uint64_t)H * s > UINT32_MAX / 2)
        return upres__fail(ctx, UPRES_ERR_LIMIT, "upscale: network output too large");
    const uint32_t NW = W * (uint32_t)s, NH = H * (uint32_t)s;

    work wk;
    memset(&wk, 0, sizeof wk);
    tiling tl;
    memset(&tl, 0, sizeof tl);

    /* Float sources at the input size. */
    if ((st = new_f32(ctx, W, H, rgb_net ? 3 : 1, &wk.color_src, "source"))) goto done;
    if (has_alpha && (st = new_f32(ctx, W, H, 1, &wk.alpha_src, "alpha"))) goto done;
    if (luma && (st = new_f32(ctx, W, H, 3, &wk.chroma, "chroma"))) goto done;
    for (uint32_t y = 0; y < H; y++) {
        const void *row = upres_image_row(in, y);
        float *cs = frow(wk.color_src, y);
        float *as = has_alpha ? frow(wk.alpha_src, y) : NULL;
        for (uint32_t x = 0; x < W; x++) {
            size_t i = (size_t)x * C;
            if (is_color) {
                float r = get01(row, in->depth, i), g = get01(row, in->depth, i + 1),
                      b = get01(row, in->depth, i + 2);
                if (rgb_net) {
                    cs[3 * x] = r;
                    cs[3 * x + 1] = g;
                    cs[3 * x + 2] = b;
                } else {
                    cs[x] = KR * r + KG * g + KB * b;
                    float *ch = frow(wk.chroma, y) + 3 * (size_t)x;
                    ch[0] = r;
                    ch[1] = g;
                    ch[2] = b;
                }
            } else {
                cs[x] = get01(row, in->depth, i);
            }
            if (as) as[x] = get01(row, in->depth, i + C - 1);
        }
    }

    /* Tiles. */
    int tile;
    if ((st = tile_side(ctx, model, W, H, &d, pad, &tile))) goto done;
    if ((st = tiling_plan(ctx, model, W, H, tile, pad, &tl))) goto done;
    const uint64_t total = (uint64_t)tl.ax.n * tl.ay.n * (alpha_net ? 2 : 1);
    uint64_t tiles_done = 0;
    if ((st = upres__progress(ctx, "upscale", 0, total))) {
        st = upres__fail(ctx, st, "upscale: cancelled");
        goto done;
    }
    /* One tile of an RGB network and no resize after it (an image within
     * the tile budget, at the model's scale): the last step reads the
     * tile's output where the model left it, with no network-size image in
     * between; the pixels are the same, as a lone tile's weights are 1. */
    const int direct = tl.ax.n == 1 && tl.ay.n == 1 && rgb_net && !alpha_net &&
                       model->out_c == 3 && tw == NW && th == NH;
    const float *planar = NULL;
    if (direct) {
        if ((st = run_tiles(ctx, model, &tl, wk.color_src, NULL, &planar, &tiles_done, total)))
            goto done;
    } else {
        if ((st = new_f32(ctx, NW, NH, rgb_net ? 3 : 1, &wk.color, "network output"))) goto done;
        if ((st = run_tiles(ctx, model, &tl, wk.color_src, wk.color, NULL, &tiles_done, total)))
            goto done;
        /* Networks overshoot [0,1]; clamping before the exact-size resize
         * (as Real-ESRGAN does before its outscale resize) keeps that
         * overshoot from shifting edges and feeding lanczos ringing. */
        if ((st = clamp_image(ctx, wk.color))) goto done;
    }
    const int oy = tl.ay.before * s, ox = tl.ax.before * s;
    const size_t ostride = (size_t)tl.win_w * (size_t)s;
    const size_t oplane = ostride * (size_t)tl.win_h * (size_t)s;
    upres_image_free(wk.color_src);
    wk.color_src = NULL;
    if (alpha_net) {
        if ((st = new_f32(ctx, NW, NH, 1, &wk.alpha, "network alpha"))) goto done;
        if ((st = run_tiles(ctx, model, &tl, wk.alpha_src, wk.alpha, NULL, &tiles_done, total)))
            goto done;
        if ((st = clamp_image(ctx, wk.alpha))) goto done;
    }
    tiling_free(&tl);

    /* Exact size. */
    if (!direct && (st = resize_to(ctx, &wk.color, tw, th, UPRES_FILTER_LANCZOS3))) goto done;
    if (has_alpha) {
        if (!alpha_net) {
            wk.alpha = wk.alpha_src;
            wk.alpha_src = NULL;
        }
        if ((st = resize_to(ctx, &wk.alpha, tw, th, UPRES_FILTER_LANCZOS3))) goto done;
    }
    if (luma && (st = resize_to(ctx, &wk.chroma, tw, th, UPRES_FILTER_BICUBIC))) goto done;

    /* Recombine at the input's depth, rounding once. */
    upres_image *res = NULL;
    if ((st = upres_image_new(&res, tw, th, C, in->depth, upres__limits(ctx)))) {
        st = upres__fail(ctx, st, "upscale: cannot allocate the %ux%u output", tw, th);
        goto done;
    }
    res->orientation = in->orientation;
    if (in->icc_size && (st = upres_image_set_icc(res, in->icc, in->icc_size))) {
        upres_image_free(res);
        st = upres__fail(ctx, st, "upscale: cannot copy the ICC profile");
        goto done;
    }
    finish_job fj = {.res = res,
                     .color = wk.color,
                     .alpha = has_alpha ? wk.alpha : NULL,
                     .chroma = luma ? wk.chroma : NULL,
                     .rgb_net = rgb_net,
                     .C = (int)C,
                     .planar = planar,
                     .plane = oplane,
                     .stride = ostride,
                     .oy = oy,
                     .ox = ox};
    if ((st = upres__parallel_for(ctx, NULL, th, 16, finish_rows, &fj))) {
        upres_image_free(res);
        goto done;
    }
    *out = res;
    st = UPRES_OK;

done:
    tiling_free(&tl);
    work_free(&wk);
    return st;
}

int upres_upscale_plan(upres_ctx *ctx, upres_model *model, uint32_t w, uint32_t h,
                       const upres_upscale_desc *desc, uint32_t *tile, uint32_t *tiles,
                       uint64_t *tile_bytes)
{
    upres__clear_error(ctx);
    if (tile) *tile = 0;
    if (tiles) *tiles = 0;
    if (tile_bytes) *tile_bytes = 0;
    upres_upscale_desc d = desc ? *desc : upres_upscale_desc_defaults();
    int st = check_args(ctx, model, &d);
    if (st) return st;
    /* The sizes image_valid accepts for an input... */
    if (w < 1 || h < 1 || w > INT32_MAX / 2 || h > INT32_MAX / 2)
        return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "upscale plan: invalid input size %ux%u",
                           w, h);
    /* ...and that an input image could have under ctx's limits; this also
     * bounds the tile layout planned below. */
    if ((st = upres_limits_check(upres__limits(ctx), w, h, 1, 1)))
        return upres__fail(ctx, st, "upscale plan: input %ux%u exceeds the limits", w, h);
    /* The desc's scale or size and the output it asks for, as upres_upscale
     * checks them (for the smallest layout, 8-bit gray). */
    uint32_t tw, th;
    if ((st = target_size(ctx, w, h, 1, 1, &d, model ? model->scale : 0, &tw, &th))) return st;
    if (!model) {
        /* One lanczos3 resize of the whole image, reported as one step. */
        if (tiles) *tiles = 1;
        return UPRES_OK;
    }
    const int s = model->scale;
    if ((uint64_t)w * s > UINT32_MAX / 2 || (uint64_t)h * s > UINT32_MAX / 2)
        return upres__fail(ctx, UPRES_ERR_LIMIT, "upscale: network output too large");
    const int pad = d.tile_pad >= 0 ? d.tile_pad : model->context;
    int side;
    if ((st = tile_side(ctx, model, w, h, &d, pad, &side))) return st;
    tiling t;
    if ((st = tiling_layout(ctx, model, w, h, side, pad, &t))) return st;
    const uint64_t n = (uint64_t)t.ax.n * (uint64_t)t.ay.n;
    tiling_free(&t);
    uint64_t bytes = 0;
    if (tile_bytes && (st = tile_cost(ctx, model, w, h, side, pad, &bytes)))
        return upres__fail(ctx, st, "upscale plan: tile cost: %s", upres_strerror(st));
    if (n > UINT32_MAX)
        return upres__fail(ctx, UPRES_ERR_LIMIT, "upscale plan: %llu tiles",
                           (unsigned long long)n);
    if (tile) *tile = (uint32_t)side;
    if (tiles) *tiles = (uint32_t)n;
    if (tile_bytes) *tile_bytes = bytes;
    return UPRES_OK;
}
