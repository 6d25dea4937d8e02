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

#include <stdio.h>

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

/* ------------------------------------------------------------------------ */
/* Shared by upres_decode/upres_encode and the streaming reader/writer       */

/* 1 when a decoded image of `channels` may keep the ICC profile `icc`: a
 * profile for another colour model (CMYK on pixels converted to RGB, RGB on
 * gray) would be wrong to carry on. */
int upres__icc_fits_decoded(const uint8_t *icc, size_t size, uint32_t channels);

/* Checks the encode settings upres_encode() checks (quality, compression,
 * bit depth against the format) and records the detail on failure. */
int upres__encode_check(upres_ctx *ctx, const upres_encode_desc *desc);

/* Depth and channel count the format stores for pixels of `channels` x
 * `depth` (the conversion upres_encode applies before the codec). */
void upres__target_layout(uint32_t channels, upres_depth depth, const upres_encode_desc *d,
                          upres_depth *out_depth, uint32_t *out_channels);

/* The profile to embed (or NULL/0) when pixels of `src_channels` carrying
 * `icc` are written as `dst_channels`: the profile survives a conversion only
 * within its colour model (gray vs RGB), and is embedded only when
 * desc->write_icc and its own colour space matches what is written. */
void upres__encode_icc(const upres_encode_desc *desc, const uint8_t *icc, size_t icc_size,
                       uint32_t src_channels, uint32_t dst_channels, const uint8_t **out,
                       size_t *out_size);

/* Reads the whole regular file open as `fd` from offset 0, refusing more than
 * `max` bytes; *out is malloc()ed. Does not close fd. */
int upres__read_fd(upres_ctx *ctx, int fd, uint64_t max, uint8_t **out, size_t *size);

/* Writes all n bytes to fd (retrying short writes and EINTR). Returns 0 or
 * the errno of the failure. */
int upres__write_all(int fd, const void *data, size_t n);

/* Atomic replacement of a file, in three steps: create a temporary file
 * (".upres-XXXXXXXX.tmp", mode 0666 less umask) in the folder of `path`; the
 * caller writes to tf->fd; then commit (fsync, close, rename over `path`) or
 * discard (close, unlink). Exactly one of commit/discard must follow a
 * successful create; both release everything. */
typedef struct upres__tmpfile {
    char *tmp; /* path of the temporary file, malloc()ed */
    int fd;
} upres__tmpfile;
int upres__tmp_create(upres_ctx *ctx, const char *path, upres__tmpfile *tf);
/* On failure the temporary file is removed and `path` is untouched. */
int upres__tmp_commit(upres_ctx *ctx, const char *path, upres__tmpfile *tf);
void upres__tmp_discard(upres__tmpfile *tf);

/* ------------------------------------------------------------------------ */
/* Streaming codecs (used by src/io/stream.c)                                */

/*
 * A row decoder: delivers the rows of one image top to bottom, already in
 * the layout upres_decode gives (before orientation). Made by a codec's
 * *_rows_open; freed with destroy().
 */
typedef struct upres__rowdec upres__rowdec;
struct upres__rowdec {
    upres_layout layout;   /* as stored: orientation not applied */
    int orientation;       /* EXIF/TIFF orientation of the file, 1..8 */
    uint8_t *icc;          /* profile (malloc()ed, owned by the decoder) or NULL */
    size_t icc_size;
    /* Decodes the next `rows` rows into dst (rows `stride` bytes apart). The
     * caller never asks past layout.height and stops after an error. Errors
     * are recorded in the ctx given at open. */
    int (*read)(upres__rowdec *d, uint8_t *dst, size_t stride, uint32_t rows);
    void (*destroy)(upres__rowdec *d);
};

/*
 * Opens a row decoder on the file `f` (positioned at its start; `fd` is
 * fileno(f), which TIFF reads with pread). Fills `info` as the whole-file
 * decoder does (already zeroed, frames = 1). On success *out is either the
 * decoder, or NULL when this file must be decoded whole instead (interlaced
 * PNG, a TIFF layout only the RGBA renderer handles, an orientation that
 * `apply_orientation` asks to apply, ...). The caller keeps f open while the
 * decoder lives and closes it afterwards.
 */
int upres__png_rows_open(upres_ctx *ctx, FILE *f, int apply_orientation, upres__rowdec **out,
                         upres_file_info *info);
int upres__jpeg_rows_open(upres_ctx *ctx, FILE *f, int apply_orientation, upres__rowdec **out,
                          upres_file_info *info);
int upres__tiff_rows_open(upres_ctx *ctx, FILE *f, int apply_orientation, upres__rowdec **out,
                          upres_file_info *info);

/*
 * A row encoder writing one file to a file descriptor as rows arrive. Rows
 * are in the encoder's layout (see the whole-image encoders above); the
 * bytes written are exactly those the whole-image encoder produces.
 */
typedef struct upres__rowenc upres__rowenc;
struct upres__rowenc {
    /* Encodes rows->height more rows (rows->width etc. match the layout). */
    int (*write)(upres__rowenc *e, const upres_image *rows);
    /* After the last row: writes the rest of the file (not fsynced). */
    int (*finish)(upres__rowenc *e);
    void (*destroy)(upres__rowenc *e);
};

/* Starts encoding an image of layout `L` (already the format's layout) to
 * fd; `icc` (may be NULL) is embedded and must outlive the encoder. */
int upres__png_rows_begin(upres_ctx *ctx, int fd, const upres_layout *L,
                          const upres_encode_desc *desc, const uint8_t *icc, size_t icc_size,
                          upres__rowenc **out);
int upres__jpeg_rows_begin(upres_ctx *ctx, int fd, const upres_layout *L,
                           const upres_encode_desc *desc, const uint8_t *icc, size_t icc_size,
                           upres__rowenc **out);
int upres__tiff_rows_begin(upres_ctx *ctx, int fd, const upres_layout *L,
                           const upres_encode_desc *desc, const uint8_t *icc, size_t icc_size,
                           upres__rowenc **out);

#endif
