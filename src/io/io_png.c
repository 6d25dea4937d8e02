/* PNG codec on libpng 1.6: strict decoding of every PNG colour type and bit
 * depth into u8/u16 images, and encoding of u8/u16 images with 1..4 channels;
 * both whole (in memory) and row by row (streaming, on files). The two share
 * their libpng set-up (png_read_start, png_write_start), so their samples and
 * bytes cannot differ.
 *
 * libpng reports errors by longjmp() out of its calls. Everything that must
 * survive such a jump (the image being filled, the output buffer) lives in a
 * heap-allocated job struct whose pointer is set before setjmp() and never
 * changed afterwards, so its contents are well defined after the jump. */
#include "io_internal.h"

#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* Pending output of a file-backed encoder is written out in pieces of this
 * size; libpng itself hands over chunks of at most 8 KiB. */
#define PNG_OUT_FLUSH ((size_t)64 * 1024)

/* State shared between the codec functions and libpng's callbacks. */
typedef struct png_job {
    upres_ctx *ctx;
    int err_status;      /* status reported when libpng raises an error */
    const uint8_t *buf;  /* decode from memory: the whole file */
    size_t size, pos;
    FILE *f;             /* decode from a file (then buf is unused) */
    upres_image *img;    /* whole decode: the image being filled (owned until returned) */
    uint8_t *icc;        /* decode: profile found (malloc()ed) or NULL */
    size_t icc_size;
    int orientation;     /* decode: from eXIf, 1 when absent */
    upres_membuf out;    /* encode: the file being written, or (fd >= 0) its unwritten tail */
    int fd;              /* encode: >= 0 when writing to this descriptor */
    char msg[160];       /* scratch for error messages built before png_error */
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

/* Feeds libpng `len` bytes from the in-memory file or from job->f; running
 * out of data is a truncated file, reported through png_error (does not
 * return then). */
static void png_read_cb(png_structp png, png_bytep data, size_t len)
{
    png_job *job = png_get_io_ptr(png);
    if (job->f) {
        if (fread(data, 1, len, job->f) == len) return;
        if (ferror(job->f)) {
            job->err_status = UPRES_ERR_IO;
            snprintf(job->msg, sizeof job->msg, "reading the file: %s", strerror(errno));
            png_error(png, job->msg);
        }
        png_error(png, "unexpected end of file (truncated)");
    }
    if (len > job->size - job->pos) png_error(png, "unexpected end of file (truncated)");
    memcpy(data, job->buf + job->pos, len);
    job->pos += len;
}

/* Writes the pending output of a file-backed encoder; a failure becomes a
 * png_error with status UPRES_ERR_IO. */
static void png_out_flush(png_structp png, png_job *job)
{
    if (job->fd < 0 || job->out.size == 0) return;
    int err = upres__write_all(job->fd, job->out.data, job->out.size);
    job->out.size = 0;
    if (err) {
        job->err_status = UPRES_ERR_IO;
        snprintf(job->msg, sizeof job->msg, "writing the file: %s", strerror(err));
        png_error(png, job->msg);
    }
}

/* Appends libpng's output to job->out (sent on to job->fd in large pieces);
 * an allocation failure becomes a png_error with status UPRES_ERR_NOMEM. */
static void png_write_cb(png_structp png, png_bytep data, size_t len)
{
    png_job *job = png_get_io_ptr(png);
    int st = upres__membuf_append(&job->out, data, len);
    if (st != UPRES_OK) {
        job->err_status = st;
        png_error(png, "out of memory for the output file");
    }
    if (job->out.size >= PNG_OUT_FLUSH) png_out_flush(png, job);
}

/* libpng's flush request: output is written at the end anyway. */
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

/* Copies the ICC profile and EXIF orientation libpng has collected so far
 * into job->icc / job->orientation. Profiles above the metadata limit are
 * dropped, as libpng itself drops those above its chunk limit. */
static int png_take_metadata(png_job *job, png_structp png, png_infop info)
{
    png_charp name;
    int comp;
    png_bytep prof;
    png_uint_32 plen;
    if (png_get_iCCP(png, info, &name, &comp, &prof, &plen) && prof && plen > 0 &&
        plen <= upres__limits(job->ctx)->max_metadata_bytes) {
        uint8_t *copy = malloc(plen);
        if (!copy) return UPRES_ERR_NOMEM;
        memcpy(copy, prof, plen);
        free(job->icc);
        job->icc = copy;
        job->icc_size = plen;
    }
#ifdef PNG_eXIf_SUPPORTED
    png_uint_32 elen;
    png_bytep exif;
    if (png_get_eXIf_1(png, info, &elen, &exif) && exif && elen > 0)
        job->orientation = upres__exif_orientation(exif, elen);
#endif
    return UPRES_OK;
}

/* Big-endian 32-bit value at p (4 readable bytes). */
static uint32_t rd_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Where png_prescan reads: the whole file in memory, or a descriptor. */
typedef struct png_src {
    const uint8_t *buf; /* NULL: read fd with pread */
    int fd;
    uint64_t size;      /* bytes in the file */
} png_src;

/* Copies n bytes at offset `off` (known to lie inside the file) into dst.
 * Returns 0 or the errno of a failed read (EIO for a short one). */
static int png_src_peek(const png_src *s, uint64_t off, uint8_t *dst, size_t n)
{
    if (s->buf) {
        memcpy(dst, s->buf + off, n);
        return 0;
    }
    while (n > 0) {
        ssize_t r = pread(s->fd, dst, n, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return r < 0 ? errno : EIO;
        dst += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

/* Walks the chunk headers of the file (without reading chunk data) and
 * rejects a chunk that claims to extend past the end of the file or a file
 * that ends before IEND. libpng would otherwise allocate and zero a buffer of
 * the claimed length (up to 2 GiB) before discovering the truncation. Also
 * applies max_side to a well-formed IHDR, so an oversized image is reported
 * as UPRES_ERR_LIMIT rather than as libpng's "Invalid IHDR data". Sets
 * *late_exif when an eXIf chunk follows the first IDAT (its orientation is
 * only known once the pixels are read). */
static int png_prescan(upres_ctx *ctx, const png_src *src, const upres_limits *lim, int *late_exif)
{
    uint64_t pos = 8, size = src->size;
    int seen_idat = 0, err;
    *late_exif = 0;
    for (;;) {
        uint8_t head[8];
        if (size - pos < 12)
            return upres__fail(ctx, UPRES_ERR_CORRUPT, "PNG: file ends before IEND (truncated)");
        if ((err = png_src_peek(src, pos, head, 8)) != 0)
            return upres__fail(ctx, UPRES_ERR_IO, "PNG: reading the file: %s", strerror(err));
        uint32_t len = rd_be32(head);
        const uint8_t *type = head + 4;
        if (len > size - pos - 12)
            return upres__fail(ctx, UPRES_ERR_CORRUPT,
                               "PNG: chunk of %lu bytes extends past the end of the file",
                               (unsigned long)len);
        if (pos == 8 && len == 13 && memcmp(type, "IHDR", 4) == 0) {
            uint8_t ihdr[4 + 13 + 4]; /* type, data, CRC */
            memcpy(ihdr, type, 4);
            if ((err = png_src_peek(src, pos + 8, ihdr + 4, 13 + 4)) != 0)
                return upres__fail(ctx, UPRES_ERR_IO, "PNG: reading the file: %s", strerror(err));
            if (crc32(crc32(0, Z_NULL, 0), ihdr, 17) == rd_be32(ihdr + 17)) {
                uint32_t w = rd_be32(ihdr + 4), h = rd_be32(ihdr + 8);
                if (w > lim->max_side || h > lim->max_side)
                    return upres__fail(ctx, UPRES_ERR_LIMIT,
                                       "PNG: %lux%lu exceeds the %lu-pixel side limit",
                                       (unsigned long)w, (unsigned long)h,
                                       (unsigned long)lim->max_side);
            }
        }
        if (memcmp(type, "IDAT", 4) == 0) seen_idat = 1;
        if (memcmp(type, "eXIf", 4) == 0 && seen_idat) *late_exif = 1;
        if (memcmp(type, "IEND", 4) == 0) return UPRES_OK;
        pos += (uint64_t)len + 12;
    }
}

/* Layout libpng delivers after png_read_start. */
typedef struct png_shape {
    png_uint_32 w, h;
    uint32_t channels;
    upres_depth depth;
    int passes; /* 1, or 7 for an interlaced file */
} png_shape;

/* Common start of both decoders, called after setjmp(): reads the header
 * chunks, checks the size against the limits, fills finfo and sets up the
 * transformations to u8/u16 gray/GA/RGB/RGBA in host order. */
static void png_read_start(png_job *job, png_structp png, png_infop info, upres_file_info *finfo,
                           png_shape *out)
{
    const upres_limits *lim = upres__limits(job->ctx);
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
    /* limits_check above bounds this product. */
    if (png_get_rowbytes(png, info) != (size_t)w * channels * upres_depth_bytes(depth))
        png_error(png, "row size mismatch");
    out->w = w;
    out->h = h;
    out->channels = channels;
    out->depth = depth;
    out->passes = passes;
}

int upres__png_decode(upres_ctx *ctx, const uint8_t *buf, size_t size, upres_image **out,
                      upres_file_info *finfo)
{
    *out = NULL;
    const upres_limits *lim = upres__limits(ctx);
    if (size < 8) return upres__fail(ctx, UPRES_ERR_CORRUPT, "PNG: truncated signature");
    png_src src = {buf, -1, size};
    int late_exif;
    int pre = png_prescan(ctx, &src, lim, &late_exif);
    if (pre != UPRES_OK) return pre;
    png_job *job = calloc(1, sizeof *job);
    if (!job) return upres__fail(ctx, UPRES_ERR_NOMEM, "PNG: out of memory");
    job->ctx = ctx;
    job->err_status = UPRES_ERR_CORRUPT;
    job->buf = buf;
    job->size = size;
    job->orientation = 1;
    job->fd = -1;
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
        free(job->icc);
        free(job);
        return st;
    }
    png_shape sh;
    png_read_start(job, png, info, finfo, &sh);
    int st = upres_image_new(&job->img, sh.w, sh.h, sh.channels, sh.depth, lim);
    if (st != UPRES_OK) {
        job->err_status = st;
        png_error(png, "cannot allocate the image");
    }
    /* Rows go straight into the image; for interlaced files libpng merges
     * each pass into the rows already there. */
    for (int p = 0; p < sh.passes; p++)
        for (png_uint_32 y = 0; y < sh.h; y++)
            png_read_row(png, upres_image_row(job->img, y), NULL);
    /* Reading to IEND catches damage after the pixel data (a corrupt tail,
     * bad CRCs of late chunks, truncation) and collects late eXIf/iCCP. */
    png_read_end(png, info);

    st = png_take_metadata(job, png, info);
    png_destroy_read_struct(&png, &info, NULL);
    if (st != UPRES_OK) {
        upres_image_free(job->img);
        free(job->icc);
        free(job);
        return upres__fail(ctx, st, "PNG: copying the ICC profile");
    }
    upres_image *img = job->img;
    if (job->icc) upres__image_take_icc(img, job->icc, job->icc_size);
    img->orientation = job->orientation;
    *out = img;
    free(job);
    return UPRES_OK;
}

/* ------------------------------------------------------------------------ */
/* Streaming decoder                                                         */

typedef struct png_rows {
    upres__rowdec base; /* first: the decoder is passed around as its base */
    png_job job;
    png_structp png;
    png_infop info;
    uint32_t y;         /* rows delivered */
} png_rows;

static void png_rows_destroy(upres__rowdec *d)
{
    png_rows *r = (png_rows *)d;
    if (!r) return;
    if (r->png) png_destroy_read_struct(&r->png, &r->info, NULL);
    free(r->job.icc);
    free(r);
}

static int png_rows_read(upres__rowdec *d, uint8_t *dst, size_t stride, uint32_t rows)
{
    png_rows *r = (png_rows *)d;
    /* Everything the loop changes lives in *r, so nothing needs to be
     * volatile across the jump. */
    if (setjmp(png_jmpbuf(r->png))) return r->job.err_status;
    for (uint32_t i = 0; i < rows; i++) {
        png_read_row(r->png, dst + (size_t)i * stride, NULL);
        r->y++;
    }
    /* As in the whole decode: a damaged tail fails the read of the last rows. */
    if (r->y == r->base.layout.height) png_read_end(r->png, r->info);
    return UPRES_OK;
}

int upres__png_rows_open(upres_ctx *ctx, FILE *f, int apply_orientation, upres__rowdec **out,
                         upres_file_info *finfo)
{
    *out = NULL;
    const upres_limits *lim = upres__limits(ctx);
    struct stat sb;
    int fd = fileno(f);
    if (fstat(fd, &sb) != 0) return upres__fail(ctx, UPRES_ERR_IO, "PNG: %s", strerror(errno));
    if (sb.st_size < 8) return upres__fail(ctx, UPRES_ERR_CORRUPT, "PNG: truncated signature");
    png_src src = {NULL, fd, (uint64_t)sb.st_size};
    int late_exif;
    int st = png_prescan(ctx, &src, lim, &late_exif);
    if (st != UPRES_OK) return st;
    /* The orientation must be known before the first row: an eXIf chunk
     * after the pixel data leaves this file to the whole decoder. */
    if (late_exif) return UPRES_OK;

    png_rows *r = calloc(1, sizeof *r);
    if (!r) return upres__fail(ctx, UPRES_ERR_NOMEM, "PNG: out of memory");
    png_job *job = &r->job;
    job->ctx = ctx;
    job->err_status = UPRES_ERR_CORRUPT;
    job->f = f;
    job->orientation = 1;
    job->fd = -1;
    r->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, job, png_err_cb, png_warn_cb);
    r->info = r->png ? png_create_info_struct(r->png) : NULL;
    if (!r->info) {
        png_rows_destroy(&r->base);
        return upres__fail(ctx, UPRES_ERR_NOMEM, "PNG: out of memory");
    }
    if (setjmp(png_jmpbuf(r->png))) {
        st = job->err_status;
        png_rows_destroy(&r->base);
        return st;
    }
    png_shape sh;
    png_read_start(job, r->png, r->info, finfo, &sh);
    /* iCCP must precede IDAT (libpng ignores a late one) and eXIf does here,
     * so the metadata is complete already. */
    st = png_take_metadata(job, r->png, r->info);
    if (st != UPRES_OK) {
        png_rows_destroy(&r->base);
        return upres__fail(ctx, st, "PNG: copying the ICC profile");
    }
    if (sh.passes != 1 || (apply_orientation && job->orientation != 1)) {
        png_rows_destroy(&r->base);
        return UPRES_OK;
    }
    r->base.layout.width = sh.w;
    r->base.layout.height = sh.h;
    r->base.layout.channels = sh.channels;
    r->base.layout.depth = sh.depth;
    r->base.orientation = job->orientation;
    r->base.icc = job->icc;
    r->base.icc_size = job->icc_size;
    r->base.read = png_rows_read;
    r->base.destroy = png_rows_destroy;
    *out = &r->base;
    return UPRES_OK;
}

/* ------------------------------------------------------------------------ */
/* Encoding                                                                  */

/* Checks the layout an encoder accepts; *color_type receives libpng's. */
static int png_check_layout(upres_ctx *ctx, uint32_t channels, upres_depth depth, int *color_type)
{
    switch (channels) {
    case 1: *color_type = PNG_COLOR_TYPE_GRAY; break;
    case 2: *color_type = PNG_COLOR_TYPE_GRAY_ALPHA; break;
    case 3: *color_type = PNG_COLOR_TYPE_RGB; break;
    case 4: *color_type = PNG_COLOR_TYPE_RGB_ALPHA; break;
    default: return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "PNG: %u channels", channels);
    }
    if (depth != UPRES_U8 && depth != UPRES_U16)
        return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "PNG: needs an 8- or 16-bit image");
    return UPRES_OK;
}

/* Common start of both encoders, called after setjmp(): settings, header
 * and profile, up to the first row. */
static void png_write_start(png_job *job, png_structp png, png_infop info, uint32_t w, uint32_t h,
                            int color_type, upres_depth depth, const upres_encode_desc *desc,
                            const uint8_t *icc, size_t icc_size)
{
    png_set_write_fn(png, job, png_write_cb, png_flush_cb);
    /* A profile libpng judges invalid must cost the profile, not the file:
     * with benign errors as warnings png_set_iCCP just drops it. */
    png_set_benign_errors(png, 1);
    png_set_compression_level(png, desc->png_compression);
    int bit_depth = depth == UPRES_U16 ? 16 : 8;
    png_set_IHDR(png, info, w, h, bit_depth, color_type, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (icc && icc_size > 0 && icc_size <= 0xffffffffu)
        png_set_iCCP(png, info, "ICC profile", PNG_COMPRESSION_TYPE_BASE, icc, (png_uint_32)icc_size);
    png_write_info(png, info);
    if (bit_depth == 16 && host_is_little_endian()) png_set_swap(png);
}

int upres__png_encode(upres_ctx *ctx, const upres_image *img, const upres_encode_desc *desc,
                      const uint8_t *icc, size_t icc_size, uint8_t **out, size_t *out_size)
{
    *out = NULL;
    *out_size = 0;
    int color_type;
    int st = png_check_layout(ctx, img->channels, img->depth, &color_type);
    if (st != UPRES_OK) return st;
    png_job *job = calloc(1, sizeof *job);
    if (!job) return upres__fail(ctx, UPRES_ERR_NOMEM, "PNG: out of memory");
    job->ctx = ctx;
    job->fd = -1;
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
        st = job->err_status;
        png_destroy_write_struct(&png, &info);
        free(job->out.data);
        free(job);
        return st;
    }
    png_write_start(job, png, info, img->width, img->height, color_type, img->depth, desc, icc,
                    icc_size);
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

/* ------------------------------------------------------------------------ */
/* Streaming encoder                                                         */

typedef struct png_wr {
    upres__rowenc base; /* first: the encoder is passed around as its base */
    png_job job;
    png_structp png;
    png_infop info;
} png_wr;

static void png_wr_destroy(upres__rowenc *e)
{
    png_wr *w = (png_wr *)e;
    if (!w) return;
    if (w->png) png_destroy_write_struct(&w->png, &w->info);
    free(w->job.out.data);
    free(w);
}

static int png_wr_write(upres__rowenc *e, const upres_image *rows)
{
    png_wr *w = (png_wr *)e;
    if (setjmp(png_jmpbuf(w->png))) return w->job.err_status;
    for (uint32_t y = 0; y < rows->height; y++)
        png_write_row(w->png, upres_image_row(rows, y));
    return UPRES_OK;
}

static int png_wr_finish(upres__rowenc *e)
{
    png_wr *w = (png_wr *)e;
    if (setjmp(png_jmpbuf(w->png))) return w->job.err_status;
    png_write_end(w->png, NULL);
    png_out_flush(w->png, &w->job);
    return UPRES_OK;
}

int upres__png_rows_begin(upres_ctx *ctx, int fd, const upres_layout *L,
                          const upres_encode_desc *desc, const uint8_t *icc, size_t icc_size,
                          upres__rowenc **out)
{
    *out = NULL;
    int color_type;
    int st = png_check_layout(ctx, L->channels, L->depth, &color_type);
    if (st != UPRES_OK) return st;
    png_wr *w = calloc(1, sizeof *w);
    if (!w) return upres__fail(ctx, UPRES_ERR_NOMEM, "PNG: out of memory");
    w->job.ctx = ctx;
    w->job.fd = fd;
    w->job.err_status = UPRES_ERR_INVALID_ARG;
    w->base.write = png_wr_write;
    w->base.finish = png_wr_finish;
    w->base.destroy = png_wr_destroy;
    w->png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &w->job, png_err_cb, png_warn_cb);
    w->info = w->png ? png_create_info_struct(w->png) : NULL;
    if (!w->info) {
        png_wr_destroy(&w->base);
        return upres__fail(ctx, UPRES_ERR_NOMEM, "PNG: out of memory");
    }
    if (setjmp(png_jmpbuf(w->png))) {
        st = w->job.err_status;
        png_wr_destroy(&w->base);
        return st;
    }
    png_write_start(&w->job, w->png, w->info, L->width, L->height, color_type, L->depth, desc, icc,
                    icc_size);
    *out = &w->base;
    return UPRES_OK;
}
