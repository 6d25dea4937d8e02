/* Streaming merge: original rows in, delta upscaled on the fly, rows out.
 *
 * Peak memory is a few strips of the original and output plus the delta
 * (proxy-sized), whatever the original's height. Each delta is upscaled
 * vertically first, on its small width, then horizontally to the original's
 * width, for one output row at a time; no full-size delta ever exists. */
#include "proxy/proxy_internal.h"
#include "resample/resample_internal.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_STRIP 64

upres_merge_desc upres_merge_desc_defaults(void)
{
    upres_merge_desc d;
    memset(&d, 0, sizeof d);
    d.upscale.filter = UPRES_FILTER_LANCZOS3;
    d.upscale.timeout_s = 600;
    d.refined_upscale = d.upscale;
    d.encode = upres_encode_desc_defaults();
    d.method = UPRES_MERGE_AUTO;
    d.grid_cell = 16;
    d.grid_bins = 8;
    d.smoothness = 1;
    d.proxy_filter = UPRES_FILTER_LANCZOS3;
    d.proxy_depth = UPRES_U8;
    return d;
}

/* A delta as a source of per-row changes at the original's size. */
typedef struct dsrc {
    const upres_image *img;   /* u8 or u16 samples; f32 for a guided residual */
    uint32_t x0, y0, w, h;    /* region of img that maps onto the original */
    uint32_t ch;              /* img->channels */
    int colour;               /* 1 or 3 colour channels */
    int alpha;                /* last channel is an alpha change */
    float offset, unit;       /* change = (sample - offset) * unit, in [0,1] units */
    upres_axis ax, ay;        /* region -> original width, height */
    upres_image *owned;       /* an external tool's result, freed with the source */
} dsrc;

static void dsrc_free(dsrc *s)
{
    upres__axis_free(&s->ax);
    upres__axis_free(&s->ay);
    upres_image_free(s->owned);
    memset(s, 0, sizeof *s);
}

/* Crop of the content box as an image of its own (for external tools). */
static int crop_image(upres_ctx *ctx, const upres_image *src, const upres_proxy_geometry *g,
                      upres_image **out)
{
    int st = upres_image_new(out, g->content_width, g->content_height, src->channels,
                             src->depth, upres__limits(ctx));
    if (st) return st;
    size_t px = src->channels * upres_depth_bytes(src->depth);
    for (uint32_t y = 0; y < g->content_height; y++)
        memcpy(upres_image_row(*out, y),
               (const uint8_t *)upres_image_row(src, g->content_y + y) + (size_t)g->content_x * px,
               (size_t)g->content_width * px);
    return UPRES_OK;
}

/* The delta encoding (see upres_proxy_delta): change = (sample - *offset) *
 * *unit in [0,1] units; f32 (a guided residual) holds the change itself. */
static void delta_coding(upres_depth d, float *offset, float *unit)
{
    *offset = d == UPRES_F32 ? 0.0f : d == UPRES_U16 ? 32768.0f : 127.0f;
    *unit = d == UPRES_F32 ? 1.0f : d == UPRES_U16 ? 1.0f / 32640.0f : 1.0f / 255.0f;
}

static int dsrc_init(upres_ctx *ctx, dsrc *s, const upres_image *delta,
                     const upres_delta_upscale *up, const upres_proxy_geometry *g,
                     const char *temp_dir, const char *label)
{
    memset(s, 0, sizeof *s);
    delta_coding(delta->depth, &s->offset, &s->unit);
    s->img = delta;
    s->x0 = g->content_x;
    s->y0 = g->content_y;
    s->w = g->content_width;
    s->h = g->content_height;
    s->ch = delta->channels;
    s->colour = delta->channels >= 3 ? 3 : 1;
    s->alpha = delta->channels == 2 || delta->channels == 4;
    int st;
    if (up->command) {
        upres_image *crop = NULL, *res = NULL, *conv = NULL;
        st = crop_image(ctx, delta, g, &crop);
        if (st) return upres__fail(ctx, st, "%s: cannot crop the delta", label);
        upres_external_desc ed = upres_external_desc_defaults();
        ed.command = up->command;
        ed.timeout_s = up->timeout_s;
        ed.temp_dir = temp_dir;
        /* The tool's own size is kept; the strip resampler below brings it
         * to the exact size without a full-size copy. */
        st = upres_external_run(ctx, crop, &ed, &res, NULL);
        upres_image_free(crop);
        if (st) return st;
        /* Read the result in the delta's encoding: same depth (the offset
         * depends on it); alpha only if the delta had one and the tool kept
         * it (a dropped alpha means "alpha unchanged", not "opaque"). */
        if (delta->depth == UPRES_U16 && res->depth == UPRES_U8) {
            /* 32768 would come back as 128 = +1 level everywhere. */
            upres_image_free(res);
            return upres__fail(ctx, UPRES_ERR_EXTERNAL,
                               "the tool returned an 8-bit image for a 16-bit delta, which would "
                               "shift every pixel; use an 8-bit delta (--depth 8) with this tool");
        }
        int rc = res->channels >= 3 ? 3 : 1;
        int ra = (res->channels == 2 || res->channels == 4) && s->alpha;
        uint32_t want = (uint32_t)rc + (ra ? 1u : 0u);
        if (res->depth != delta->depth || res->channels != want) {
            if (res->channels != want && (res->channels == 2 || res->channels == 4) && !ra) {
                /* Drop the alpha without compositing: take colour only. */
                upres_image *tmp = NULL;
                st = upres_image_new(&tmp, res->width, res->height, (uint32_t)rc, res->depth,
                                     upres__limits(ctx));
                if (!st) {
                    size_t bps = upres_depth_bytes(res->depth);
                    for (uint32_t y = 0; y < res->height; y++) {
                        const uint8_t *a = upres_image_row(res, y);
                        uint8_t *b = upres_image_row(tmp, y);
                        for (uint32_t x = 0; x < res->width; x++)
                            memcpy(b + (size_t)x * rc * bps, a + (size_t)x * res->channels * bps,
                                   (size_t)rc * bps);
                    }
                    upres_image_free(res);
                    res = tmp;
                }
            }
            if (!st && (res->depth != delta->depth || res->channels != want)) {
                st = upres_image_convert(res, delta->depth, want, 1.0f, &conv);
                upres_image_free(res);
                res = conv;
            }
            if (st) {
                upres_image_free(res);
                return upres__fail(ctx, st, "%s: cannot convert the tool's result", label);
            }
        }
        s->owned = res;
        s->img = res;
        s->x0 = s->y0 = 0;
        s->w = res->width;
        s->h = res->height;
        s->ch = res->channels;
        s->colour = rc;
        s->alpha = ra;
    }
    /* The content box is resampled as an image of its own: filter windows
     * are clipped at its edges, so padding never leaks into the result. */
    const upres_filter f = up->command ? UPRES_FILTER_LANCZOS3 : up->filter;
    st = upres__axis_plan(&s->ax, (int)s->w, 0, s->w, (int)g->original_width, f);
    if (!st) st = upres__axis_plan(&s->ay, (int)s->h, 0, s->h, (int)g->original_height, f);
    if (st) {
        dsrc_free(s);
        return upres__fail(ctx, st, "%s: cannot plan the upscale", label);
    }
    return UPRES_OK;
}

/* Adds delta row y (original coordinates) into acc[W*4] (channels: 3 colour +
 * alpha, in [0,1] units). tmp holds s->w * s->ch floats. */
static void dsrc_row(const dsrc *s, uint32_t y, float *restrict tmp, float *restrict acc)
{
    const uint32_t C = s->ch;
    const size_t n = (size_t)s->w * C;
    const int first = s->ay.first[y], count = s->ay.count[y];
    const float *wy = s->ay.w + (size_t)y * s->ay.stride;
    for (size_t i = 0; i < n; i++) tmp[i] = 0.0f;
    for (int t = 0; t < count; t++) {
        const float k = wy[t];
        const void *row = upres_image_row(s->img, s->y0 + (uint32_t)(first + t));
        if (s->img->depth == UPRES_U16) {
            const uint16_t *p = (const uint16_t *)row + (size_t)s->x0 * C;
            for (size_t i = 0; i < n; i++) tmp[i] += k * ((float)p[i] - s->offset);
        } else if (s->img->depth == UPRES_F32) {
            const float *p = (const float *)row + (size_t)s->x0 * C;
            for (size_t i = 0; i < n; i++) tmp[i] += k * p[i];
        } else {
            const uint8_t *p = (const uint8_t *)row + (size_t)s->x0 * C;
            for (size_t i = 0; i < n; i++) tmp[i] += k * ((float)p[i] - s->offset);
        }
    }
    const int W = s->ax.out, stride = s->ax.stride;
    for (int x = 0; x < W; x++) {
        const float *wx = s->ax.w + (size_t)x * stride;
        const float *src = tmp + (size_t)s->ax.first[x] * C;
        const int cnt = s->ax.count[x];
        float v[4] = {0, 0, 0, 0};
        for (int t = 0; t < cnt; t++)
            for (uint32_t c = 0; c < C; c++) v[c] += wx[t] * src[(size_t)t * C + c];
        float *a = acc + (size_t)x * 4;
        if (s->colour == 3) {
            a[0] += v[0] * s->unit;
            a[1] += v[1] * s->unit;
            a[2] += v[2] * s->unit;
        } else {
            float g = v[0] * s->unit;
            a[0] += g;
            a[1] += g;
            a[2] += g;
        }
        if (s->alpha) a[3] += v[C - 1] * s->unit;
    }
}

typedef struct merge_job {
    dsrc src[2];              /* deltas; GUIDED: src[0] is the residual, if any */
    int nsrc;
    uint32_t W;
    uint32_t in_ch, out_ch;   /* original's and output's channels */
    upres_depth depth;
    const uint8_t *in;        /* strip of the original */
    size_t in_stride;
    uint8_t *out;             /* strip of the output */
    size_t out_stride;
    uint32_t y0;              /* original row of strip row 0 */
    size_t tmp_floats;        /* per-row scratch for the vertical pass */
    const bgu_slicer *slicer; /* GUIDED: colour comes from the grid */
    atomic_int failed;        /* a scratch allocation failed (set by workers) */
} merge_job;

static inline float in_sample(upres_depth d, const void *row, size_t i)
{
    switch (d) {
    case UPRES_U8: return ((const uint8_t *)row)[i];
    case UPRES_U16: return ((const uint16_t *)row)[i];
    default: return ((const float *)row)[i];
    }
}

static inline float clamp01(float v) { return v > 0.0f ? (v < 1.0f ? v : 1.0f) : 0.0f; }

/* Rounds and clamps v (in the original's levels) into sample i of row out. */
static inline void put_sample(upres_depth d, void *out, size_t i, float v)
{
    switch (d) {
    case UPRES_U8:
        v = floorf(v + 0.5f);
        ((uint8_t *)out)[i] = !(v > 0.0f) ? 0 : v >= 255.0f ? 255 : (uint8_t)v;
        break;
    case UPRES_U16:
        v = floorf(v + 0.5f);
        ((uint16_t *)out)[i] = !(v > 0.0f) ? 0 : v >= 65535.0f ? 65535 : (uint16_t)v;
        break;
    default: ((float *)out)[i] = v; break;
    }
}

static void merge_rows(void *user, uint64_t begin, uint64_t end)
{
    merge_job *J = user;
    const uint32_t W = J->W;
    const size_t slice_floats = J->slicer ? J->slicer->scratch + (size_t)W * 3 : 0;
    float *acc = malloc((size_t)W * 4 * sizeof(float));
    float *tmp = malloc((J->tmp_floats + slice_floats + 1) * sizeof(float));
    if (!acc || !tmp) {
        free(acc);
        free(tmp);
        atomic_store(&J->failed, 1);
        return;
    }
    float *rgb = tmp + J->tmp_floats, *gscratch = rgb + (size_t)W * 3;
    const uint32_t IC = J->in_ch, OC = J->out_ch;
    const int in_colour = IC >= 3 ? 3 : 1, in_alpha = IC == 2 || IC == 4;
    const int out_colour = OC >= 3 ? 3 : 1, out_alpha = OC == 2 || OC == 4;
    const float maxv = J->depth == UPRES_U8 ? 255.0f : J->depth == UPRES_U16 ? 65535.0f : 1.0f;
    for (uint64_t r = begin; r < end; r++) {
        memset(acc, 0, (size_t)W * 4 * sizeof(float));
        for (int k = 0; k < J->nsrc; k++) dsrc_row(&J->src[k], J->y0 + (uint32_t)r, tmp, acc);
        const uint8_t *in = J->in + r * J->in_stride;
        uint8_t *out = J->out + r * J->out_stride;
        if (J->slicer) {
            /* The grid maps the original's colour; the residual (if any) is
             * in acc; alpha is copied. */
            const float inv = 1.0f / maxv;
            for (uint32_t x = 0; x < W; x++)
                for (int c = 0; c < 3; c++)
                    rgb[x * 3 + c] =
                        in_sample(J->depth, in, (size_t)x * IC + (in_colour == 3 ? c : 0)) * inv;
            upres__bgu_slice_row(J->slicer, (int)(J->y0 + r), rgb, rgb, gscratch);
            for (uint32_t x = 0; x < W; x++) {
                const float *a = acc + (size_t)x * 4;
                float *v = rgb + (size_t)x * 3;
                size_t ob = (size_t)x * OC;
                /* The residual was taken against the clipped fit, as here;
                 * f32 originals keep their range. */
                if (J->depth != UPRES_F32)
                    for (int c = 0; c < 3; c++) v[c] = clamp01(v[c]);
                if (out_colour == 3) {
                    for (int c = 0; c < 3; c++) put_sample(J->depth, out, ob + c, (v[c] + a[c]) * maxv);
                } else {
                    float g = 0.2126f * (v[0] + a[0]) + 0.7152f * (v[1] + a[1]) +
                              0.0722f * (v[2] + a[2]);
                    put_sample(J->depth, out, ob, g * maxv);
                }
                if (out_alpha)
                    put_sample(J->depth, out, ob + OC - 1,
                               in_alpha ? in_sample(J->depth, in, (size_t)x * IC + IC - 1) : maxv);
            }
            continue;
        }
        for (uint32_t x = 0; x < W; x++) {
            const float *a = acc + (size_t)x * 4;
            size_t ib = (size_t)x * IC, ob = (size_t)x * OC;
            for (uint32_t c = 0; c < OC; c++) {
                int is_alpha = out_alpha && c == OC - 1;
                float o, d;
                if (is_alpha) {
                    o = in_alpha ? in_sample(J->depth, in, ib + IC - 1) : maxv;
                    d = a[3];
                } else {
                    o = in_sample(J->depth, in, ib + (in_colour == 3 ? c : 0));
                    d = out_colour == 3 ? a[c] : a[0];
                }
                /* One rounding for the sum of all deltas; a zero change
                 * leaves the sample exactly as it was. */
                put_sample(J->depth, out, ob + c, o + d * maxv);
            }
        }
    }
    free(acc);
    free(tmp);
}

static int check_delta(upres_ctx *ctx, const upres_image *d, const upres_proxy_geometry *g,
                       const char *label)
{
    if (d->depth != UPRES_U8 && d->depth != UPRES_U16)
        return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "%s must be 8- or 16-bit", label);
    if (d->width != g->proxy_width || d->height != g->proxy_height)
        return upres__fail(ctx, UPRES_ERR_INVALID_ARG,
                           "%s is %ux%u but the proxy was %ux%u", label, d->width, d->height,
                           g->proxy_width, g->proxy_height);
    return UPRES_OK;
}

/* ------------------------------------------------------------------------ */
/* Guided merge: the proxy pair and the fit                                  */

/* The proxy's content box as float planes: P the recomputed proxy, Q the
 * processed proxy (P + deltas), wgt the proxy's alpha (NULL when opaque). */
typedef struct proxy_pair {
    int w, h;
    float *P, *Q;   /* [h][w][3] in [0,1] */
    float *wgt;     /* [h][w] or NULL */
} proxy_pair;

static void pair_free(proxy_pair *pp)
{
    free(pp->P);
    free(pp->Q);
    free(pp->wgt);
    memset(pp, 0, sizeof *pp);
}

/* Recomputes the proxy's content as split made it: the original streamed
 * through the same resize (bit-identical to upres_resize), then converted to
 * the proxy's depth as upres_proxy_make does. */
static int recompute_proxy(upres_ctx *ctx, const char *path, const upres_proxy_geometry *g,
                           upres_filter filter, upres_depth depth, upres_image **out)
{
    *out = NULL;
    upres_reader *rd = NULL;
    upres_sresize *sr = NULL;
    uint8_t *buf = NULL;
    upres_image *img = NULL;
    int st = upres_reader_open(ctx, path, NULL, &rd, NULL);
    if (st) return st;
    const upres_layout L = upres_reader_layout(rd);
    const uint32_t strip = L.height < DEFAULT_STRIP ? L.height : DEFAULT_STRIP;
    const size_t stride = (size_t)L.width * L.channels * upres_depth_bytes(L.depth);
    st = upres__sresize_new(ctx, &L, g->content_width, g->content_height, filter, &sr);
    if (st) {
        st = upres__fail(ctx, st, "guided merge: cannot set up the proxy's resize");
        goto done;
    }
    buf = malloc(stride * strip);
    if (!buf) {
        st = upres__fail(ctx, UPRES_ERR_NOMEM, "guided merge: out of memory");
        goto done;
    }
    for (uint32_t y = 0; y < L.height; y += strip) {
        uint32_t n = L.height - y < strip ? L.height - y : strip;
        st = upres_reader_read(rd, buf, stride, n);
        if (!st) st = upres__sresize_push(ctx, sr, buf, stride, n);
        if (!st) st = upres__progress(ctx, "proxy", (uint64_t)y + n, L.height);
        if (st) {
            if (st == UPRES_ERR_CANCELLED) st = upres__fail(ctx, st, "merge: cancelled");
            goto done;
        }
    }
    st = upres__sresize_finish(sr, &img);
    if (st) {
        st = upres__fail(ctx, st, "guided merge: the proxy's resize did not complete");
        goto done;
    }
    if (img->depth != depth) {
        upres_image *conv = NULL;
        st = upres_image_convert(img, depth, img->channels, 1.0f, &conv);
        upres_image_free(img);
        img = conv;
        if (st) {
            st = upres__fail(ctx, st, "guided merge: proxy depth conversion failed");
            goto done;
        }
    }
    *out = img;
done:
    upres__sresize_free(sr);
    upres_reader_free(rd);
    free(buf);
    return st;
}

/* Sample i of an image row in [0,1] units (f32 as stored). */
static inline float sample01(const upres_image *img, const void *row, size_t i)
{
    const float v = in_sample(img->depth, row, i);
    return img->depth == UPRES_U8 ? v * (1.0f / 255.0f)
           : img->depth == UPRES_U16 ? v * (1.0f / 65535.0f) : v;
}

/* Builds P, Q and the weights from the proxy's content and the deltas. The
 * deltas' content box is read at the proxy's offset; each adds its colour
 * change and the sum is clipped to [0,1] after each, as the images were.
 * The weight of a pixel is the smaller of its proxy and processed alphas
 * (colour under transparency means nothing); *alpha_changed tells whether
 * a delta changes alpha anywhere in the content box. */
static int make_pair(upres_ctx *ctx, const upres_image *content, const upres_image *const *d,
                     int nd, const upres_proxy_geometry *g, proxy_pair *pp, int *alpha_changed)
{
    memset(pp, 0, sizeof *pp);
    *alpha_changed = 0;
    const int w = (int)content->width, h = (int)content->height;
    const size_t n = (size_t)w * h;
    const uint32_t C = content->channels;
    int da = 0;
    for (int k = 0; k < nd; k++) da |= d[k]->channels == 2 || d[k]->channels == 4;
    const int colour = C >= 3 ? 3 : 1, alpha = C == 2 || C == 4 || da;
    pp->w = w;
    pp->h = h;
    pp->P = malloc(n * 3 * sizeof(float));
    pp->Q = malloc(n * 3 * sizeof(float));
    if (alpha) pp->wgt = malloc(n * sizeof(float));
    if (!pp->P || !pp->Q || (alpha && !pp->wgt)) {
        pair_free(pp);
        return upres__fail(ctx, UPRES_ERR_NOMEM, "guided merge: out of memory");
    }
    for (int y = 0; y < h; y++) {
        const void *row = upres_image_row(content, (uint32_t)y);
        for (int x = 0; x < w; x++) {
            size_t i = (size_t)y * w + x;
            for (int c = 0; c < 3; c++) {
                float v = sample01(content, row, (size_t)x * C + (colour == 3 ? (size_t)c : 0));
                pp->P[i * 3 + c] = v;
                pp->Q[i * 3 + c] = v;
            }
            if (alpha)
                pp->wgt[i] = C == 2 || C == 4 ? sample01(content, row, (size_t)x * C + C - 1) : 1.0f;
        }
    }
    float *pa = NULL; /* processed alpha */
    if (da) {
        pa = malloc(n * sizeof(float));
        if (!pa) {
            pair_free(pp);
            return upres__fail(ctx, UPRES_ERR_NOMEM, "guided merge: out of memory");
        }
        memcpy(pa, pp->wgt, n * sizeof(float));
    }
    for (int k = 0; k < nd; k++) {
        const upres_image *D = d[k];
        const int is16 = D->depth == UPRES_U16;
        float off, unit;
        delta_coding(D->depth, &off, &unit);
        const uint32_t DC = D->channels;
        const int dcol = DC >= 3 ? 3 : 1;
        for (int y = 0; y < h; y++) {
            const void *row = upres_image_row(D, g->content_y + (uint32_t)y);
            for (int x = 0; x < w; x++) {
                size_t i = (size_t)y * w + x, b = (size_t)(g->content_x + (uint32_t)x) * DC;
                for (int c = 0; c < 3; c++) {
                    size_t si = b + (dcol == 3 ? (size_t)c : 0);
                    float v = is16 ? ((const uint16_t *)row)[si] : ((const uint8_t *)row)[si];
                    pp->Q[i * 3 + c] = clamp01(pp->Q[i * 3 + c] + (v - off) * unit);
                }
                if (DC == 2 || DC == 4) {
                    float v = is16 ? ((const uint16_t *)row)[b + DC - 1]
                                   : ((const uint8_t *)row)[b + DC - 1];
                    if (v != off) *alpha_changed = 1;
                    pa[i] = clamp01(pa[i] + (v - off) * unit);
                }
            }
        }
    }
    if (pa)
        for (size_t i = 0; i < n; i++)
            if (pa[i] < pp->wgt[i]) pp->wgt[i] = pa[i];
    free(pa);
    return UPRES_OK;
}

/* Wraps planes of w x h x ch floats as an image (a copy). */
static int planes_image(upres_ctx *ctx, const float *v, int w, int h, int ch, upres_image **out)
{
    int st = upres_image_new(out, (uint32_t)w, (uint32_t)h, (uint32_t)ch, UPRES_F32,
                             upres__limits(ctx));
    if (st) return upres__fail(ctx, st, "guided merge: out of memory");
    for (int y = 0; y < h; y++)
        memcpy(upres_image_row(*out, (uint32_t)y), v + (size_t)y * w * ch,
               (size_t)w * ch * sizeof(float));
    return UPRES_OK;
}

/* Slices grid g over the w x h planes src into dst (may alias). */
static int slice_planes(upres_ctx *ctx, const bgu_grid *g, const float *src, float *dst, int w,
                        int h)
{
    bgu_slicer sl;
    if (upres__bgu_slicer_init(&sl, g, w, h))
        return upres__fail(ctx, UPRES_ERR_NOMEM, "guided merge: out of memory");
    float *scr = malloc(sl.scratch * sizeof(float));
    if (!scr) {
        upres__bgu_slicer_free(&sl);
        return upres__fail(ctx, UPRES_ERR_NOMEM, "guided merge: out of memory");
    }
    for (int y = 0; y < h; y++)
        upres__bgu_slice_row(&sl, y, src + (size_t)y * w * 3, dst + (size_t)y * w * 3, scr);
    free(scr);
    upres__bgu_slicer_free(&sl);
    return UPRES_OK;
}

/* Resizes w x h x ch planes to ow x oh (float path of upres_resize). */
static int resize_planes(upres_ctx *ctx, const float *v, int w, int h, int ch, int ow, int oh,
                         upres_filter f, float **out)
{
    *out = NULL;
    upres_image *a = NULL, *b = NULL;
    int st = planes_image(ctx, v, w, h, ch, &a);
    if (st) return st;
    upres_resize_desc rd = upres_resize_desc_defaults();
    rd.width = (uint32_t)ow;
    rd.height = (uint32_t)oh;
    rd.filter = f;
    st = upres_resize(ctx, a, &rd, &b);
    upres_image_free(a);
    if (st) return st;
    float *o = malloc((size_t)ow * oh * ch * sizeof(float));
    if (!o) {
        upres_image_free(b);
        return upres__fail(ctx, UPRES_ERR_NOMEM, "guided merge: out of memory");
    }
    for (int y = 0; y < oh; y++)
        memcpy(o + (size_t)y * ow * ch, upres_image_row(b, (uint32_t)y),
               (size_t)ow * ch * sizeof(float));
    upres_image_free(b);
    *out = o;
    return UPRES_OK;
}

/* Weighted mean squared error of a against b (w*h pixels of 3). */
static double planes_mse(const float *a, const float *b, const float *wgt, size_t n)
{
    double s = 0, ws = 0;
    for (size_t i = 0; i < n; i++) {
        double wi = wgt ? wgt[i] : 1.0;
        for (int c = 0; c < 3; c++) {
            double d = (double)a[i * 3 + c] - b[i * 3 + c];
            s += wi * d * d;
        }
        ws += 3 * wi;
    }
    return ws > 0 ? s / ws : 0;
}

static double mse_psnr(double mse) { return mse > 1e-10 ? -10.0 * log10(mse) : 99.0; }

/*
 * AUTO's choice without ground truth: the proxy plays the original. P and Q
 * are reduced to half size, the same grid (same cells over the picture) is
 * fitted on the halves, and each method predicts Q from P: delta as
 * P + up(Q/2 - P/2), guided as the grid sliced over P, guided + residual
 * adding up(Q/2 - grid(P/2)). The better guided variant wins unless delta
 * predicts Q exactly (an unchanged proxy: bit-exact) or better by more than
 * AUTO_MARGIN_DB. The margin favours the grid because the rehearsal is at a
 * 2x scale while the real merge is usually at a larger one, where the grid
 * gains more over the delta (detail the proxy lacks grows with the scale).
 */
#define AUTO_MARGIN_DB 0.5
static int auto_choose(upres_ctx *ctx, const proxy_pair *pp, const bgu_params *bp,
                       upres_filter f, upres_merge_report *rep, int *method, int *residual)
{
    const int w = pp->w, h = pp->h, w2 = (w + 1) / 2, h2 = (h + 1) / 2;
    const size_t n = (size_t)w * h, n2 = (size_t)w2 * h2;
    float *P2 = NULL, *Q2 = NULL, *G2 = NULL, *up = NULL, *pred = NULL, *W2 = NULL;
    bgu_grid g2;
    memset(&g2, 0, sizeof g2);
    double mse[3];
    int st = resize_planes(ctx, pp->P, w, h, 3, w2, h2, UPRES_FILTER_LANCZOS3, &P2);
    if (!st) st = resize_planes(ctx, pp->Q, w, h, 3, w2, h2, UPRES_FILTER_LANCZOS3, &Q2);
    /* The weights (alpha) are reduced the same way, as a gray plane. */
    if (!st && pp->wgt)
        st = resize_planes(ctx, pp->wgt, w, h, 1, w2, h2, UPRES_FILTER_LANCZOS3, &W2);
    if (st) goto done;
    if (W2)
        for (size_t i = 0; i < n2; i++) W2[i] = clamp01(W2[i]);
    /* The same cells over the picture as the real fit. */
    bgu_params b2 = *bp;
    b2.nx = bp->nx > 0 ? bp->nx : (int)lround(w / bp->cell);
    b2.ny = bp->ny > 0 ? bp->ny : (int)lround(h / bp->cell);
    if (b2.nx < 1) b2.nx = 1;
    if (b2.ny < 1) b2.ny = 1;
    st = upres__bgu_fit(ctx, P2, Q2, W2, w2, h2, &b2, &g2);
    if (st) goto done;
    pred = malloc(n * 3 * sizeof(float));
    G2 = malloc(n2 * 3 * sizeof(float));
    if (!pred || !G2) {
        st = upres__fail(ctx, UPRES_ERR_NOMEM, "guided merge: out of memory");
        goto done;
    }
    /* delta */
    for (size_t i = 0; i < n2 * 3; i++) G2[i] = Q2[i] - P2[i];
    st = resize_planes(ctx, G2, w2, h2, 3, w, h, f, &up);
    if (st) goto done;
    for (size_t i = 0; i < n * 3; i++) pred[i] = clamp01(pp->P[i] + up[i]);
    mse[0] = planes_mse(pred, pp->Q, pp->wgt, n);
    free(up);
    up = NULL;
    /* guided */
    st = slice_planes(ctx, &g2, pp->P, pred, w, h);
    if (st) goto done;
    float *clip = malloc(n * 3 * sizeof(float));
    if (!clip) {
        st = upres__fail(ctx, UPRES_ERR_NOMEM, "guided merge: out of memory");
        goto done;
    }
    for (size_t i = 0; i < n * 3; i++) clip[i] = clamp01(pred[i]);
    mse[1] = planes_mse(clip, pp->Q, pp->wgt, n);
    /* guided + residual */
    st = slice_planes(ctx, &g2, P2, G2, w2, h2);
    if (!st) {
        for (size_t i = 0; i < n2 * 3; i++) G2[i] = Q2[i] - clamp01(G2[i]);
        st = resize_planes(ctx, G2, w2, h2, 3, w, h, f, &up);
    }
    if (!st) {
        for (size_t i = 0; i < n * 3; i++) clip[i] = clamp01(clamp01(pred[i]) + up[i]);
        mse[2] = planes_mse(clip, pp->Q, pp->wgt, n);
    }
    free(clip);
    if (st) goto done;
    /* Ties between the guided variants go to the residual, which also
     * holds delta's proxy-scale change. */
    int best = mse[2] <= mse[1] ? 2 : 1;
    if (mse_psnr(mse[0]) >= 99.0 || mse_psnr(mse[0]) > mse_psnr(mse[best]) + AUTO_MARGIN_DB)
        best = 0;
    *method = best == 0 ? UPRES_MERGE_DELTA : UPRES_MERGE_GUIDED;
    *residual = best == 2;
    if (rep)
        for (int k = 0; k < 3; k++) rep->auto_psnr[k] = mse_psnr(mse[k]);
done:
    upres__bgu_free(&g2);
    free(P2);
    free(Q2);
    free(G2);
    free(up);
    free(pred);
    free(W2);
    return st;
}

/* Everything the guided slice needs, prepared before the merge pass. */
typedef struct guided_state {
    bgu_grid grid;
    bgu_slicer slicer;
    upres_image *residual;        /* f32 content-sized, or NULL */
    upres_proxy_geometry rgeom;   /* the residual's own "proxy" geometry */
} guided_state;

static void guided_free(guided_state *gs)
{
    upres__bgu_slicer_free(&gs->slicer);
    upres__bgu_free(&gs->grid);
    upres_image_free(gs->residual);
    memset(gs, 0, sizeof *gs);
}

/* Recomputes the proxy pair, decides AUTO, fits the grid and computes the
 * residual. Sets *method to what will run. */
/* AUTO keeps each fit's normal equations within this many bytes by
 * coarsening the grid of a large proxy (a 512x512 proxy at the default
 * cell needs about 125 MB). */
#define AUTO_FIT_BUDGET ((size_t)256 << 20)

static int guided_prepare(upres_ctx *ctx, const upres_merge_desc *desc,
                          const upres_proxy_geometry *g, int clamp, guided_state *gs,
                          int *method, int *residual)
{
    memset(gs, 0, sizeof *gs);
    upres_image *content = NULL;
    proxy_pair pp;
    memset(&pp, 0, sizeof pp);
    const upres_image *deltas[2] = {desc->delta, desc->refined};
    bgu_params bp = {desc->grid_cell, desc->grid_bins, desc->smoothness, 0, 0};
    int alpha_changed = 0;
    int st = recompute_proxy(ctx, desc->original_path, g, desc->proxy_filter, desc->proxy_depth,
                             &content);
    if (!st) st = make_pair(ctx, content, deltas, desc->refined ? 2 : 1, g, &pp, &alpha_changed);
    upres_image_free(content);
    if (st) goto done;
    if (*method == UPRES_MERGE_AUTO && alpha_changed) {
        /* The grid maps colour only: an alpha edit needs the delta. */
        *method = UPRES_MERGE_DELTA;
        goto done;
    }
    if (*method == UPRES_MERGE_AUTO) {
        for (;;) {
            double nx = lround(pp.w / bp.cell), ny = lround(pp.h / bp.cell);
            double v = (fmax(nx, 1) + 1) * (fmax(ny, 1) + 1) * (bp.bins + 1);
            if (v * BGU_BYTES_PER_VERTEX <= (double)AUTO_FIT_BUDGET || bp.cell >= 65535) break;
            bp.cell *= 1.25;
        }
    }
    if (*method == UPRES_MERGE_AUTO) {
        st = auto_choose(ctx, &pp, &bp, desc->upscale.filter, desc->report, method, residual);
        if (st || *method == UPRES_MERGE_DELTA) goto done;
    }
    st = upres__bgu_fit(ctx, pp.P, pp.Q, pp.wgt, pp.w, pp.h, &bp, &gs->grid);
    if (st) goto done;
    if (*residual) {
        float *R = malloc((size_t)pp.w * pp.h * 3 * sizeof(float));
        if (!R) {
            st = upres__fail(ctx, UPRES_ERR_NOMEM, "guided merge: out of memory");
            goto done;
        }
        st = slice_planes(ctx, &gs->grid, pp.P, R, pp.w, pp.h);
        if (!st) {
            for (size_t i = 0; i < (size_t)pp.w * pp.h * 3; i++)
                R[i] = pp.Q[i] - (clamp ? clamp01(R[i]) : R[i]);
            st = planes_image(ctx, R, pp.w, pp.h, 3, &gs->residual);
        }
        free(R);
        if (st) goto done;
        gs->rgeom = *g;
        gs->rgeom.proxy_width = gs->rgeom.content_width;
        gs->rgeom.proxy_height = gs->rgeom.content_height;
        gs->rgeom.content_x = gs->rgeom.content_y = 0;
    }
    if (upres__bgu_slicer_init(&gs->slicer, &gs->grid, (int)g->original_width,
                               (int)g->original_height))
        st = upres__fail(ctx, UPRES_ERR_NOMEM, "guided merge: out of memory");
done:
    pair_free(&pp);
    if (st) guided_free(gs);
    return st;
}

int upres_proxy_merge(upres_ctx *ctx, const upres_merge_desc *desc)
{
    upres__clear_error(ctx);
    if (!desc || !desc->original_path || !desc->output_path || !desc->delta)
        return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "merge: original, output and delta are required");
    upres_reader *rd = NULL;
    upres_writer *wr = NULL;
    merge_job J;
    memset(&J, 0, sizeof J);
    guided_state gs;
    memset(&gs, 0, sizeof gs);
    uint8_t *inbuf = NULL, *outbuf = NULL;
    int st = upres_reader_open(ctx, desc->original_path, NULL, &rd, NULL);
    if (st) return st;
    const upres_layout L = upres_reader_layout(rd);

    upres_proxy_geometry g;
    if (desc->geom) {
        g = *desc->geom;
        if (!upres__proxy_geom_valid(&g)) {
            st = upres__fail(ctx, UPRES_ERR_INVALID_ARG,
                             "merge: the content box %ux%u at %u,%u does not fit the %ux%u proxy",
                             g.content_width, g.content_height, g.content_x, g.content_y,
                             g.proxy_width, g.proxy_height);
            goto done;
        }
        if (g.original_width != L.width || g.original_height != L.height) {
            st = upres__fail(ctx, UPRES_ERR_INVALID_ARG,
                             "the metadata is for a %ux%u original but this one is %ux%u",
                             g.original_width, g.original_height, L.width, L.height);
            goto done;
        }
    } else {
        upres_proxy_dim dw = {(double)desc->delta->width, 0}, dh = {(double)desc->delta->height, 0};
        st = upres_proxy_plan(L.width, L.height, dw, dh, &g);
        if (st) {
            st = upres__fail(ctx, st, "merge: cannot derive the proxy geometry");
            goto done;
        }
    }
    st = check_delta(ctx, desc->delta, &g, "the delta");
    if (!st && desc->refined) st = check_delta(ctx, desc->refined, &g, "the refined delta");
    if (st) goto done;

    if (desc->report) memset(desc->report, 0, sizeof *desc->report);
    int method = desc->method, residual = desc->residual;
    if ((unsigned)method > UPRES_MERGE_GUIDED ||
        (method != UPRES_MERGE_DELTA &&
         (!(desc->grid_cell >= 1 && desc->grid_cell <= 65535) || desc->grid_bins < 1 ||
          desc->grid_bins > 64 || !(desc->smoothness >= 0 && desc->smoothness <= 1000) ||
          (unsigned)desc->proxy_filter >= UPRES_FILTER_COUNT_ ||
          (desc->proxy_depth != UPRES_U8 && desc->proxy_depth != UPRES_U16)))) {
        st = upres__fail(ctx, UPRES_ERR_INVALID_ARG, "merge: invalid method or grid parameters");
        goto done;
    }
    if (desc->upscale.command || (desc->refined && desc->refined_upscale.command)) {
        if (method == UPRES_MERGE_GUIDED) {
            st = upres__fail(ctx, UPRES_ERR_INVALID_ARG,
                             "merge: an external upscaler works with the delta method only");
            goto done;
        }
        method = UPRES_MERGE_DELTA;
    }
    if (method != UPRES_MERGE_DELTA) {
        /* The proxy is recomputed with a reader of its own; this one is
         * closed meanwhile, so that an original decoded whole at open is
         * never held twice. */
        upres_reader_free(rd);
        rd = NULL;
        st = guided_prepare(ctx, desc, &g, L.depth != UPRES_F32, &gs, &method, &residual);
        if (!st) st = upres_reader_open(ctx, desc->original_path, NULL, &rd, NULL);
        if (st) goto done;
    }
    if (desc->report) {
        desc->report->method = (upres_merge_method)method;
        desc->report->residual = method == UPRES_MERGE_GUIDED && residual;
        desc->report->grid_nx = gs.grid.nx;
        desc->report->grid_ny = gs.grid.ny;
        desc->report->grid_nz = gs.grid.nz;
        desc->report->iterations = gs.grid.iterations;
    }
    if (method == UPRES_MERGE_GUIDED) {
        J.slicer = &gs.slicer;
        if (gs.residual) {
            upres_delta_upscale up = desc->upscale;
            st = dsrc_init(ctx, &J.src[0], gs.residual, &up, &gs.rgeom, desc->temp_dir,
                           "residual");
            if (st) goto done;
            J.nsrc = 1;
        }
    } else {
    st = dsrc_init(ctx, &J.src[0], desc->delta, &desc->upscale, &g, desc->temp_dir, "delta");
    if (st) goto done;
    J.nsrc = 1;
    if (desc->refined) {
        st = dsrc_init(ctx, &J.src[1], desc->refined, &desc->refined_upscale, &g,
                       desc->temp_dir, "refined delta");
        if (st) goto done;
        J.nsrc = 2;
    }
    }

    J.W = L.width;
    J.in_ch = L.channels;
    J.depth = L.depth;
    {
        int colour = L.channels >= 3 ? 3 : 1, alpha = L.channels == 2 || L.channels == 4;
        for (int k = 0; k < J.nsrc; k++) {
            if (J.src[k].colour == 3) colour = 3;
            if (J.src[k].alpha) alpha = 1;
        }
        if (J.slicer) {
            /* Channels as delta gives them; alpha passes through (opaque when
             * only the delta has it). */
            alpha = L.channels == 2 || L.channels == 4 || desc->delta->channels == 2 ||
                    desc->delta->channels == 4;
            colour = L.channels >= 3 || desc->delta->channels >= 3 ? 3 : 1;
        }
        J.out_ch = (uint32_t)colour + (alpha ? 1u : 0u);
        for (int k = 0; k < J.nsrc; k++) {
            size_t n = (size_t)J.src[k].w * J.src[k].ch;
            if (n > J.tmp_floats) J.tmp_floats = n;
        }
    }
    uint32_t strip = desc->strip_rows ? desc->strip_rows : DEFAULT_STRIP;
    if (strip > L.height) strip = L.height;
    const size_t bps = upres_depth_bytes(L.depth);
    J.in_stride = (size_t)L.width * L.channels * bps;
    J.out_stride = (size_t)L.width * J.out_ch * bps;
    size_t in_bytes, out_bytes;
    if (!upres__mul_size(J.in_stride, strip, &in_bytes) ||
        !upres__mul_size(J.out_stride, strip, &out_bytes)) {
        st = upres__fail(ctx, UPRES_ERR_OVERFLOW, "merge: strip size overflows");
        goto done;
    }
    if (in_bytes + out_bytes > upres__limits(ctx)->max_memory_bytes) {
        st = upres__fail(ctx, UPRES_ERR_LIMIT, "merge: strips of %u rows exceed the memory limit", strip);
        goto done;
    }
    inbuf = malloc(in_bytes);
    outbuf = malloc(out_bytes);
    if (!inbuf || !outbuf) {
        st = upres__fail(ctx, UPRES_ERR_NOMEM, "merge: cannot allocate the strip buffers");
        goto done;
    }
    J.in = inbuf;
    J.out = outbuf;

    {
        size_t icc_size = 0;
        const uint8_t *icc = upres_reader_icc(rd, &icc_size);
        /* A gray profile cannot describe an RGB result. */
        if ((L.channels >= 3 ? 3 : 1) != (J.out_ch >= 3 ? 3 : 1)) {
            icc = NULL;
            icc_size = 0;
        }
        upres_layout ol = {L.width, L.height, J.out_ch, L.depth};
        st = upres_writer_open(ctx, desc->output_path, &ol, icc, icc_size, &desc->encode, &wr);
        if (st) goto done;
    }

    for (uint32_t y = 0; y < L.height; y += strip) {
        uint32_t n = L.height - y < strip ? L.height - y : strip;
        st = upres_reader_read(rd, inbuf, J.in_stride, n);
        if (st) goto done;
        J.y0 = y;
        /* One chunk per thread: each chunk allocates its scratch once. */
        uint64_t chunk = (n + (uint64_t)upres_ctx_threads(ctx) - 1) / (uint64_t)upres_ctx_threads(ctx);
        st = upres__parallel_for(ctx, NULL, n, chunk, merge_rows, &J);
        if (!st && atomic_load(&J.failed)) st = upres__fail(ctx, UPRES_ERR_NOMEM, "merge: out of memory");
        if (st) goto done;
        st = upres_writer_write(wr, outbuf, J.out_stride, n);
        if (st) goto done;
        st = upres__progress(ctx, "merge", (uint64_t)y + n, L.height);
        if (st) {
            st = upres__fail(ctx, st, "merge: cancelled");
            goto done;
        }
    }
    st = upres_writer_finish(wr);

done:
    upres_writer_free(wr);
    upres_reader_free(rd);
    for (int k = 0; k < 2; k++) dsrc_free(&J.src[k]);
    guided_free(&gs);
    free(inbuf);
    free(outbuf);
    return st;
}
