/* upres_image: allocation, copies, depth/channel conversion, orientation. */
#include "core_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int upres_image_new(upres_image **out, uint32_t width, uint32_t height, uint32_t channels,
                    upres_depth depth, const upres_limits *lim)
{
    if (!out) return UPRES_ERR_INVALID_ARG;
    *out = NULL;
    size_t bps = upres_depth_bytes(depth);
    if (bps == 0) return UPRES_ERR_INVALID_ARG;
    int st = upres_limits_check(lim, width, height, channels, (uint32_t)bps);
    if (st != UPRES_OK) return st;
    size_t stride, total;
    if (!upres__mul_size((size_t)width * channels, bps, &stride)) return UPRES_ERR_OVERFLOW;
    if (!upres__mul_size(stride, height, &total)) return UPRES_ERR_OVERFLOW;
    upres_image *img = calloc(1, sizeof *img);
    if (!img) return UPRES_ERR_NOMEM;
    img->data = calloc(1, total);
    if (!img->data) {
        free(img);
        return UPRES_ERR_NOMEM;
    }
    img->width = width;
    img->height = height;
    img->channels = channels;
    img->depth = depth;
    img->stride = stride;
    img->orientation = 1;
    *out = img;
    return UPRES_OK;
}

void upres_image_free(upres_image *img)
{
    if (!img) return;
    free(img->data);
    free(img->icc);
    free(img);
}

void upres__image_take_icc(upres_image *img, uint8_t *data, size_t size)
{
    free(img->icc);
    img->icc = size ? data : NULL;
    img->icc_size = size ? size : 0;
    if (!size) free(data);
}

int upres_image_set_icc(upres_image *img, const void *icc, size_t size)
{
    if (!img || (size && !icc)) return UPRES_ERR_INVALID_ARG;
    uint8_t *copy = NULL;
    if (size) {
        copy = malloc(size);
        if (!copy) return UPRES_ERR_NOMEM;
        memcpy(copy, icc, size);
    }
    upres__image_take_icc(img, copy, size);
    return UPRES_OK;
}

int upres_image_clone(const upres_image *src, upres_image **out)
{
    if (!src || !out) return UPRES_ERR_INVALID_ARG;
    upres_image *img;
    upres_limits unlimited = upres_limits_defaults();
    unlimited.max_pixels = UINT64_MAX;
    unlimited.max_side = UINT32_MAX;
    unlimited.max_memory_bytes = UINT64_MAX;
    int st = upres_image_new(&img, src->width, src->height, src->channels, src->depth, &unlimited);
    if (st) return st;
    size_t row = (size_t)src->width * src->channels * upres_depth_bytes(src->depth);
    for (uint32_t y = 0; y < src->height; y++)
        memcpy(upres_image_row(img, y), upres_image_row(src, y), row);
    img->orientation = src->orientation;
    if (src->icc_size && (st = upres_image_set_icc(img, src->icc, src->icc_size))) {
        upres_image_free(img);
        return st;
    }
    *out = img;
    return UPRES_OK;
}

/* Reads sample c of pixel x in row `row` as a float in [0,1] (f32 unclamped). */
static inline float get_sample(const void *row, upres_depth d, size_t i)
{
    switch (d) {
    case UPRES_U8: return ((const uint8_t *)row)[i] * (1.0f / 255.0f);
    case UPRES_U16: return ((const uint16_t *)row)[i] * (1.0f / 65535.0f);
    default: return ((const float *)row)[i];
    }
}

static inline void put_sample(void *row, upres_depth d, size_t i, float v)
{
    switch (d) {
    case UPRES_U8: ((uint8_t *)row)[i] = upres__f2u8(v); break;
    case UPRES_U16: ((uint16_t *)row)[i] = upres__f2u16(v); break;
    default: ((float *)row)[i] = v; break;
    }
}

int upres_image_convert(const upres_image *src, upres_depth depth, uint32_t channels,
                        float background, upres_image **out)
{
    if (!src || !out || channels < 1 || channels > 4 || !upres_depth_bytes(depth))
        return UPRES_ERR_INVALID_ARG;
    *out = NULL;
    upres_limits unlimited = upres_limits_defaults();
    unlimited.max_pixels = UINT64_MAX;
    unlimited.max_side = UINT32_MAX;
    unlimited.max_memory_bytes = UINT64_MAX;
    upres_image *dst;
    int st = upres_image_new(&dst, src->width, src->height, channels, depth, &unlimited);
    if (st) return st;
    dst->orientation = src->orientation;
    uint32_t sc = src->channels;
    int src_color = sc >= 3, dst_color = channels >= 3;
    int src_alpha = sc == 2 || sc == 4, dst_alpha = channels == 2 || channels == 4;
    if (src->icc_size && src_color == dst_color &&
        (st = upres_image_set_icc(dst, src->icc, src->icc_size))) {
        upres_image_free(dst);
        return st;
    }
    const uint32_t w = src->width;
    for (uint32_t y = 0; y < src->height; y++) {
        const void *s = upres_image_row(src, y);
        void *d = upres_image_row(dst, y);
        if (src->depth == depth && sc == channels) {
            memcpy(d, s, (size_t)w * sc * upres_depth_bytes(depth));
            continue;
        }
        if (sc == channels && src->depth == UPRES_U8 && depth == UPRES_U16) {
            for (size_t i = 0; i < (size_t)w * sc; i++)
                ((uint16_t *)d)[i] = (uint16_t)(((const uint8_t *)s)[i] * 257u);
            continue;
        }
        if (sc == channels && src->depth == UPRES_U16 && depth == UPRES_U8) {
            /* exact rounding of v*255/65535 */
            for (size_t i = 0; i < (size_t)w * sc; i++)
                ((uint8_t *)d)[i] = (uint8_t)((((const uint16_t *)s)[i] * 255u + 32767u) / 65535u);
            continue;
        }
        for (uint32_t x = 0; x < w; x++) {
            float px[4], c[3], a = 1.0f;
            for (uint32_t k = 0; k < sc; k++) px[k] = get_sample(s, src->depth, (size_t)x * sc + k);
            if (src_color) {
                c[0] = px[0];
                c[1] = px[1];
                c[2] = px[2];
            } else {
                c[0] = c[1] = c[2] = px[0];
            }
            if (src_alpha) a = px[sc - 1];
            if (src_alpha && !dst_alpha) {
                float ac = a < 0 ? 0 : a > 1 ? 1 : a;
                for (int k = 0; k < 3; k++) c[k] = c[k] * ac + background * (1.0f - ac);
            }
            size_t o = (size_t)x * channels;
            if (dst_color) {
                for (int k = 0; k < 3; k++) put_sample(d, depth, o + k, c[k]);
            } else {
                float l = src_color ? 0.2126f * c[0] + 0.7152f * c[1] + 0.0722f * c[2] : c[0];
                put_sample(d, depth, o, l);
            }
            if (dst_alpha) put_sample(d, depth, o + channels - 1, a);
        }
    }
    *out = dst;
    return UPRES_OK;
}

int upres_image_apply_orientation(upres_image *img)
{
    if (!img) return UPRES_ERR_INVALID_ARG;
    int o = img->orientation;
    if (o < 2 || o > 8) {
        img->orientation = 1;
        return UPRES_OK;
    }
    /* EXIF orientations: 2 mirror H, 3 rotate 180, 4 mirror V, 5 transpose,
     * 6 rotate 90 CW, 7 transverse, 8 rotate 90 CCW (to display upright). */
    const int swap = o >= 5;
    const uint32_t W = img->width, H = img->height;
    const uint32_t ow = swap ? H : W, oh = swap ? W : H;
    const size_t px = img->channels * upres_depth_bytes(img->depth);
    size_t ostride, total;
    if (!upres__mul_size(ow, px, &ostride) || !upres__mul_size(ostride, oh, &total))
        return UPRES_ERR_OVERFLOW;
    uint8_t *nd = malloc(total);
    if (!nd) return UPRES_ERR_NOMEM;
    for (uint32_t y = 0; y < oh; y++) {
        uint8_t *drow = nd + (size_t)y * ostride;
        for (uint32_t x = 0; x < ow; x++) {
            uint32_t sx, sy; /* source pixel for output (x, y) */
            switch (o) {
            case 2: sx = W - 1 - x; sy = y; break;
            case 3: sx = W - 1 - x; sy = H - 1 - y; break;
            case 4: sx = x; sy = H - 1 - y; break;
            case 5: sx = y; sy = x; break;
            case 6: sx = y; sy = H - 1 - x; break;
            case 7: sx = W - 1 - y; sy = H - 1 - x; break;
            default: sx = W - 1 - y; sy = x; break; /* 8 */
            }
            memcpy(drow + (size_t)x * px, (const uint8_t *)upres_image_row(img, sy) + (size_t)sx * px, px);
        }
    }
    free(img->data);
    img->data = nd;
    img->width = ow;
    img->height = oh;
    img->stride = ostride;
    img->orientation = 1;
    return UPRES_OK;
}
