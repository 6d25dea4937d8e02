/* Streaming merge: original rows in, delta upscaled on the fly, rows out.
 *
 * Peak memory is a few strips of the original and output plus the delta
 * (proxy-sized), whatever the original's height. Each delta is upscaled
 * vertically first, on its small width, then horizontally to the original's
 * width, for one output row at a time; no full-size delta ever exists. */
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
    return d;
}

/* A delta as a source of per-row changes at the original's size. */
typedef struct dsrc {
    const upres_image *img;   /* u8 or u16 samples */
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

static int dsrc_init(upres_ctx *ctx, dsrc *s, const upres_image *delta,
                     const upres_delta_upscale *up, const upres_proxy_geometry *g,
                     const char *temp_dir, const char *label)
{
    memset(s, 0, sizeof *s);
    const int is16 = delta->depth == UPRES_U16;
    s->offset = is16 ? 32768.0f : 127.0f;
    s->unit = is16 ? 1.0f / 32640.0f : 1.0f / 255.0f;
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
    dsrc src[2];
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

static void merge_rows(void *user, uint64_t begin, uint64_t end)
{
    merge_job *J = user;
    const uint32_t W = J->W;
    float *acc = malloc((size_t)W * 4 * sizeof(float));
    float *tmp = malloc(J->tmp_floats * sizeof(float));
    if (!acc || !tmp) {
        free(acc);
        free(tmp);
        atomic_store(&J->failed, 1);
        return;
    }
    const uint32_t IC = J->in_ch, OC = J->out_ch;
    const int in_colour = IC >= 3 ? 3 : 1, in_alpha = IC == 2 || IC == 4;
    const int out_colour = OC >= 3 ? 3 : 1, out_alpha = OC == 2 || OC == 4;
    const float maxv = J->depth == UPRES_U8 ? 255.0f : J->depth == UPRES_U16 ? 65535.0f : 1.0f;
    for (uint64_t r = begin; r < end; r++) {
        memset(acc, 0, (size_t)W * 4 * sizeof(float));
        for (int k = 0; k < J->nsrc; k++) dsrc_row(&J->src[k], J->y0 + (uint32_t)r, tmp, acc);
        const uint8_t *in = J->in + r * J->in_stride;
        uint8_t *out = J->out + r * J->out_stride;
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
                float v = o + d * maxv;
                switch (J->depth) {
                case UPRES_U8: {
                    v = floorf(v + 0.5f);
                    out[ob + c] = !(v > 0.0f) ? 0 : v >= 255.0f ? 255 : (uint8_t)v;
                    break;
                }
                case UPRES_U16: {
                    v = floorf(v + 0.5f);
                    ((uint16_t *)(void *)out)[ob + c] =
                        !(v > 0.0f) ? 0 : v >= 65535.0f ? 65535 : (uint16_t)v;
                    break;
                }
                default: ((float *)(void *)out)[ob + c] = v; break;
                }
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

int upres_proxy_merge(upres_ctx *ctx, const upres_merge_desc *desc)
{
    upres__clear_error(ctx);
    if (!desc || !desc->original_path || !desc->output_path || !desc->delta)
        return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "merge: original, output and delta are required");
    upres_reader *rd = NULL;
    upres_writer *wr = NULL;
    merge_job J;
    memset(&J, 0, sizeof J);
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

    st = dsrc_init(ctx, &J.src[0], desc->delta, &desc->upscale, &g, desc->temp_dir, "delta");
    if (st) goto done;
    J.nsrc = 1;
    if (desc->refined) {
        st = dsrc_init(ctx, &J.src[1], desc->refined, &desc->refined_upscale, &g,
                       desc->temp_dir, "refined delta");
        if (st) goto done;
        J.nsrc = 2;
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
    free(inbuf);
    free(outbuf);
    return st;
}
