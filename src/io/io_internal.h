/* Codec interface inside src/io. Each codec file implements one decoder and
 * one encoder with these shapes; io.c dispatches by format.
 *
 * Decoders: `buf` holds the whole file. They must check every dimension with
 * upres_limits_check(upres__limits(ctx), ...) before allocating, never read
 * past `size`, and on error free what they allocated, set *out = NULL, and
 * return upres__fail(ctx, UPRES_ERR_CORRUPT/..., "PNG: <detail>"). They fill
 * `info` (never NULL here; already zeroed, info->frames = 1), set
 * img->orientation to the raw EXIF/TIFF orientation (1..8, 1 if absent) and
 * attach any ICC profile (bounded by limits.max_metadata_bytes). io.c applies
 * the orientation afterwards.
 *
 * Encoders receive an image already converted to a layout the format takes
 * (see io.c: PNG u8/u16 1-4ch; JPEG u8 1 or 3ch; TIFF u8/u16/f32 1-4ch;
 * WebP u8 3 or 4ch), plus the ICC profile to embed (NULL when none should be
 * written). They return a malloc()ed buffer in *out. */
#ifndef UPRES_IO_INTERNAL_H
#define UPRES_IO_INTERNAL_H

#include "core/core_internal.h"

typedef int (*upres_decode_fn)(upres_ctx *ctx, const uint8_t *buf, size_t size,
                               upres_image **out, upres_file_info *info);
typedef int (*upres_encode_fn)(upres_ctx *ctx, const upres_image *img,
                               const upres_encode_desc *desc, const uint8_t *icc,
                               size_t icc_size, uint8_t **out, size_t *out_size);

int upres__png_decode(upres_ctx *ctx, const uint8_t *buf, size_t size, upres_image **out,
                      upres_file_info *info);
int upres__png_encode(upres_ctx *ctx, const upres_image *img, const upres_encode_desc *desc,
                      const uint8_t *icc, size_t icc_size, uint8_t **out, size_t *out_size);
int upres__jpeg_decode(upres_ctx *ctx, const uint8_t *buf, size_t size, upres_image **out,
                       upres_file_info *info);
int upres__jpeg_encode(upres_ctx *ctx, const upres_image *img, const upres_encode_desc *desc,
                       const uint8_t *icc, size_t icc_size, uint8_t **out, size_t *out_size);
int upres__tiff_decode(upres_ctx *ctx, const uint8_t *buf, size_t size, upres_image **out,
                       upres_file_info *info);
int upres__tiff_encode(upres_ctx *ctx, const upres_image *img, const upres_encode_desc *desc,
                       const uint8_t *icc, size_t icc_size, uint8_t **out, size_t *out_size);
int upres__webp_decode(upres_ctx *ctx, const uint8_t *buf, size_t size, upres_image **out,
                       upres_file_info *info);
int upres__webp_encode(upres_ctx *ctx, const upres_image *img, const upres_encode_desc *desc,
                       const uint8_t *icc, size_t icc_size, uint8_t **out, size_t *out_size);

/* Orientation (1..8) from an EXIF block: either starting with "Exif\0\0" or
 * directly with the TIFF header ("II*\0" / "MM\0*"). Returns 1 when absent or
 * malformed. Reads only within [data, data+size). */
int upres__exif_orientation(const uint8_t *data, size_t size);

/* A growable output buffer for encoders (malloc-based). */
typedef struct upres_membuf {
    uint8_t *data;
    size_t size, cap;
    int failed; /* set when an append could not allocate */
} upres_membuf;
int upres__membuf_append(upres_membuf *b, const void *data, size_t n);

#endif
