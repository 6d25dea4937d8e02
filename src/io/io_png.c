/* PNG codec on libpng 1.6: strict decoding of every PNG colour type and bit
 * depth into u8/u16 images, and encoding of u8/u16 images with 1..4 channels.
 *
 * libpng reports errors by longjmp() out of its calls. Everything that must
 * survive such a jump (the image being filled, the output buffer) lives in a
 * heap-allocated job struct whose pointer is set before setjmp() and never
 * changed afterwards, so its contents are well defined after the jump. */
#include "io_internal.h"

#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* State shared between the codec functions and libpng's callbacks. */
typedef struct png_job {
    upres_ctx *ctx;
    int err_status;      /* status reported when libpng raises an error */
    const uint8_t *buf;  /* decode: the whole file */
    size_t size, pos;
    upres_image *img;    /* decode: the image being filled (owned until returned) */
    upres_membuf out;    /* encode: the file being written */
} png_job;

/* libpng error callback: records the message in ctx and unwinds to the
 * setjmp() of the codec function. Must not return. */
static void png_err_cb(png_structp png, png_const_charp msg)
{
    png_job *job = png_get_error_ptr(png);
    upres__fail(job->ctx, job->err_status, "PNG: %s", msg ? msg : "error");
    png_longjmp(png, 1);
}

/* libpng warning callback: the library never prints, so warnings (benign
 * problems libpng recovers from) are dropped. */
static void png_warn_cb(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

/* Feeds libpng `len` bytes from the in-memory file; running out of data is a
 * truncated file, reported through png_error (does not return then). */
static void png_read_cb(png_structp png, png_bytep data, size_t len)
{
    png_job *job = png_get_io_ptr(png);
    if (len > job->size - job->pos) png_error(png, "unexpected end of file (truncated)");
    memcpy(data, job->buf + job->pos, len);
    job->pos += len;
}

/* Appends libpng's output to job->out; an allocation failure becomes a
 * png_error with status UPRES_ERR_NOMEM. */
static void png_write_cb(png_structp png, png_bytep data, size_t len)
{
    png_job *job = png_get_io_ptr(png);
    int st = upres__membuf_append(&job->out, data, len);
    if (st != UPRES_OK) {
        job->err_status = st;
        png_error(png, "out of memory for the output file");
    }
}

/* Nothing to flush: the output is a memory buffer. */
static void png_flush_cb(png_structp png)
{
    (void)png;
}

/* PNG stores 16-bit samples big-endian; images hold them in host order. */
static int host_is_little_endian(void)
{
    const uint16_t one = 1;
    uint8_t first;
    memcpy(&first, &one, 1);
    return first == 1;
}

/* Copies the ICC profile and EXIF orientation libpng collected (before and
 * after IDAT) into the image. Profiles above the metadata limit are dropped,
 * as libpng itself drops those above its chunk limit. */
static int png_take_metadata(png_job *job, png_structp png, png_infop info)
{
    png_charp name;
    int comp;
    png_bytep prof;
    png_uint_32 plen;
    if (png_get_iCCP(png, info, &name, &comp, &prof, &plen) && prof && plen > 0 &&
        plen <= upres__limits(job->ctx)->max_metadata_bytes) {
        int st = upres_image_set_icc(job->img, prof, plen);
        if (st != UPRES_OK) return st;
    }
#ifdef PNG_eXIf_SUPPORTED
    png_uint_32 elen;
    png_bytep exif;
    if (png_get_eXIf_1(png, info, &elen, &exif) && exif && elen > 0)
        job->img->orientation = upres__exif_orientation(exif, elen);
#endif
    return UPRES_OK;
}

/* Big-endian 32-bit value at p (4 readable bytes). */
static uint32_t rd_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Walks the chunk headers of the file (without reading chunk data) and
 * rejects a chunk that claims to extend past the end of the file or a file
 * that ends before IEND. libpng would otherwise allocate and zero a buffer of
 * the claimed length (up to 2 GiB) before discovering the truncation. Also
 * applies max_side to a well-formed IHDR, so an oversized image is reported
 * as UPRES_ERR_LIMIT rather than as libpng's "Invalid IHDR data". */
static int png_prescan(upres_ctx *ctx, const uint8_t *buf, size_t size, const upres_limits *lim)
{
    size_t pos = 8;
    for (;;) {
        if (size - pos < 12)
            return upres__fail(ctx, UPRES_ERR_CORRUPT, "PNG: file ends before IEND (truncated)");
        uint32_t len = rd_be32(buf + pos);
        const uint8_t *type = buf + pos + 4;
        if (len > size - pos - 12)
            return upres__fail(ctx, UPRES_ERR_CORRUPT,
                               "PNG: chunk of %lu bytes extends past the end of the file",
                               (unsigned long)len);
        if (pos == 8 && len == 13 && memcmp(type, "IHDR", 4) == 0 &&
            crc32(crc32(0, Z_NULL, 0), type, 17) == rd_be32(type + 17)) {
            uint32_t w = rd_be32(type + 4), h = rd_be32(type + 8);
            if (w > lim->max_side || h > lim->max_side)
                return upres__fail(ctx, UPRES_ERR_LIMIT, "PNG: %lux%lu exceeds the %lu-pixel side limit",
                                   (unsigned long)w, (unsigned long)h, (unsigned long)lim->max_side);
        }
        if (memcmp(type, "IEND", 4) == 0) return UPRES_OK;
        pos += (size_t)len + 12;
    }
}

int upres__png_decode(upres_ctx *ctx, const uint8_t *buf, size_t size, upres_image **out,
                      upres_file_info *finfo)
{
    *out = NULL;
    const upres_limits *lim = upres__limits(ctx);
    if (size < 8) return upres__fail(ctx, UPRES_ERR_CORRUPT, "PNG: truncated signature");
    int pre = png_prescan(ctx, buf, size, lim);
    if (pre != UPRES_OK) return pre;
    png_job *job = calloc(1, sizeof *job);
    if (!job) return upres__fail(ctx, UPRES_ERR_NOMEM, "PNG: out of memory");
    job->ctx = ctx;
    job->err_status = UPRES_ERR_CORRUPT;
    job->buf = buf;
    job->size = size;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, job, png_err_cb, png_warn_cb);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(png ? &png : NULL, NULL, NULL);
        free(job);
        return upres__fail(ctx, UPRES_ERR_NOMEM, "PNG: out of memory");
    }
    if (setjmp(png_jmpbuf(png))) {
        /* The error callback has already recorded the detail. */
        int st = job->err_status;
        png_destroy_read_struct(&png, &info, NULL);
        upres_image_free(job->img);
        free(job);
        return st;
    }
    png_set_read_fn(png, job, png_read_cb);
    /* A bad CRC anywhere, ancillary chunks included, is corruption: the
     * caller asked for faithful decoding, not best effort. */
    png_set_crc_action(png, PNG_CRC_ERROR_QUIT, PNG_CRC_ERROR_QUIT);
    png_uint_32 side = lim->max_side > 0x7fffffffu ? 0x7fffffffu : lim->max_side;
    png_set_user_limits(png, side, side);
    /* Never below 64 KiB: the same limit bounds ordinary chunks (PLTE, text),
     * and 0 would mean "unlimited" to libpng. The profile itself is checked
     * against max_metadata_bytes exactly in png_take_metadata. */
    size_t chunk_max = lim->max_metadata_bytes < 65536 ? 65536 : lim->max_metadata_bytes;
    png_set_chunk_malloc_max(png, chunk_max);

    png_read_info(png, info);
    png_uint_32 w, h;
    int bit_depth, color_type, interlace;
    png_get_IHDR(png, info, &w, &h, &bit_depth, &color_type, &interlace, NULL, NULL);
    int has_trns = png_get_valid(png, info, PNG_INFO_tRNS) != 0;
    uint32_t channels;
    switch (color_type) {
    case PNG_COLOR_TYPE_GRAY: channels = has_trns ? 2 : 1; break;
    case PNG_COLOR_TYPE_GRAY_ALPHA: channels = 2; break;
    case PNG_COLOR_TYPE_RGB: channels = has_trns ? 4 : 3; break;
    case PNG_COLOR_TYPE_RGB_ALPHA: channels = 4; break;
    case PNG_COLOR_TYPE_PALETTE: channels = has_trns ? 4 : 3; break;
    default: png_error(png, "unknown colour type");
    }
    upres_depth depth = bit_depth == 16 ? UPRES_U16 : UPRES_U8;
    int st = upres_limits_check(lim, w, h, channels, (uint32_t)upres_depth_bytes(depth));
    if (st != UPRES_OK) {
        job->err_status = st;
        png_error(png, "image size exceeds the limits");
    }
    finfo->width = w;
    finfo->height = h;
    finfo->bits_per_sample = bit_depth;
    finfo->interlaced = interlace != PNG_INTERLACE_NONE;
    finfo->frames = 1;

    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (has_trns) png_set_tRNS_to_alpha(png);
    if (bit_depth == 16 && host_is_little_endian()) png_set_swap(png);
    int passes = png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (png_get_channels(png, info) != channels || png_get_bit_depth(png, info) != (bit_depth == 16 ? 16 : 8))
        png_error(png, "unexpected layout after transformations");

    st = upres_image_new(&job->img, w, h, channels, depth, lim);
    if (st != UPRES_OK) {
        job->err_status = st;
        png_error(png, "cannot allocate the image");
    }
    if (png_get_rowbytes(png, info) > job->img->stride) png_error(png, "row size mismatch");
    /* Rows go straight into the image; for interlaced files libpng merges
     * each pass into the rows already there. */
    for (int p = 0; p < passes; p++)
        for (png_uint_32 y = 0; y < h; y++)
            png_read_row(png, upres_image_row(job->img, y), NULL);
    /* Reading to IEND catches damage after the pixel data (a corrupt tail,
     * bad CRCs of late chunks, truncation) and collects late eXIf/iCCP. */
    png_read_end(png, info);

    st = png_take_metadata(job, png, info);
    png_destroy_read_struct(&png, &info, NULL);
    if (st != UPRES_OK) {
        upres_image_free(job->img);
        free(job);
        return upres__fail(ctx, st, "PNG: copying the ICC profile");
    }
    *out = job->img;
    free(job);
    return UPRES_OK;
}

int upres__png_encode(upres_ctx *ctx, const upres_image *img, const upres_encode_desc *desc,
                      const uint8_t *icc, size_t icc_size, uint8_t **out, size_t *out_size)
{
    *out = NULL;
    *out_size = 0;
    int color_type;
    switch (img->channels) {
    case 1: color_type = PNG_COLOR_TYPE_GRAY; break;
    case 2: color_type = PNG_COLOR_TYPE_GRAY_ALPHA; break;
    case 3: color_type = PNG_COLOR_TYPE_RGB; break;
    case 4: color_type = PNG_COLOR_TYPE_RGB_ALPHA; break;
    default: return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "PNG: %u channels", img->channels);
    }
    if (img->depth != UPRES_U8 && img->depth != UPRES_U16)
        return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "PNG: needs an 8- or 16-bit image");
    png_job *job = calloc(1, sizeof *job);
    if (!job) return upres__fail(ctx, UPRES_ERR_NOMEM, "PNG: out of memory");
    job->ctx = ctx;
    /* libpng only fails a write on bad parameters or allocation failure. */
    job->err_status = UPRES_ERR_INVALID_ARG;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, job, png_err_cb, png_warn_cb);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(png ? &png : NULL, NULL);
        free(job);
        return upres__fail(ctx, UPRES_ERR_NOMEM, "PNG: out of memory");
    }
    if (setjmp(png_jmpbuf(png))) {
        int st = job->err_status;
        png_destroy_write_struct(&png, &info);
        free(job->out.data);
        free(job);
        return st;
    }
    png_set_write_fn(png, job, png_write_cb, png_flush_cb);
    /* A profile libpng judges invalid must cost the profile, not the file:
     * with benign errors as warnings png_set_iCCP just drops it. */
    png_set_benign_errors(png, 1);
    png_set_compression_level(png, desc->png_compression);
    int bit_depth = img->depth == UPRES_U16 ? 16 : 8;
    png_set_IHDR(png, info, img->width, img->height, bit_depth, color_type, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (icc && icc_size > 0 && icc_size <= 0xffffffffu)
        png_set_iCCP(png, info, "ICC profile", PNG_COMPRESSION_TYPE_BASE, icc, (png_uint_32)icc_size);
    png_write_info(png, info);
    if (bit_depth == 16 && host_is_little_endian()) png_set_swap(png);
    for (uint32_t y = 0; y < img->height; y++)
        png_write_row(png, upres_image_row(img, y));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);

    uint8_t *data = job->out.data;
    size_t n = job->out.size, cap = job->out.cap;
    free(job);
    /* The buffer grew by doubling; give the slack back when it is large. */
    if (n > 0 && cap - n > 65536) {
        uint8_t *shrunk = realloc(data, n);
        if (shrunk) data = shrunk;
    }
    *out = data;
    *out_size = n;
    return UPRES_OK;
}
