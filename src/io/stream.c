/* Streaming rows: upres_reader (decode a file top to bottom in batches of
 * rows) and upres_writer (encode a file from batches of rows into a
 * temporary file, renamed over the target at the end).
 *
 * The codecs' row decoders/encoders (io_internal.h) do the work; this file
 * chooses between them and the whole-image fallback, keeps count of rows,
 * and applies the same conversions upres_decode/upres_encode apply, through
 * the same helpers, so a streamed file equals a whole one. */
#include "io_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* stdio buffer of a streamed input file. */
#define STREAM_FILE_BUF ((size_t)64 * 1024)

/* Bytes of one row of `L`, or 0 when the layout is invalid or overflows. */
static size_t layout_row_bytes(const upres_layout *L)
{
    size_t bps = upres_depth_bytes(L->depth), row;
    if (!bps || L->width == 0 || L->height == 0 || L->channels < 1 || L->channels > 4) return 0;
    if (!upres__mul_size((size_t)L->width * L->channels, bps, &row)) return 0;
    return row;
}

/* Checks a caller's batch: `rows` rows `stride` bytes apart must be
 * addressable (the last row's end must not overflow). */
static int batch_ok(const void *p, size_t stride, size_t row_bytes, uint32_t rows)
{
    size_t span;
    if (!p || stride < row_bytes) return 0;
    return upres__mul_size(stride, rows - 1, &span) && upres__add_size(span, row_bytes, &span);
}

/* ------------------------------------------------------------------------ */
/* Reader                                                                    */

struct upres_reader {
    upres_ctx *ctx;
    FILE *f;              /* streaming: the open file */
    upres__rowdec *dec;   /* streaming: the codec's row decoder */
    upres_image *img;     /* whole: the decoded image */
    upres_layout layout;
    size_t row_bytes;
    const uint8_t *icc;   /* owned by dec or img */
    size_t icc_size;
    uint32_t y;           /* rows delivered */
    int fail_status;      /* nonzero after a failed decode */
};

void upres_reader_free(upres_reader *r)
{
    if (!r) return;
    if (r->dec) r->dec->destroy(r->dec);
    if (r->f) fclose(r->f);
    upres_image_free(r->img);
    free(r);
}

/* Opens the streaming decoder for `fmt`, if the format has one. *dec stays
 * NULL when the file must be decoded whole. */
static int open_rows(upres_ctx *ctx, upres_format fmt, FILE *f, int apply_orientation,
                     upres__rowdec **dec, upres_file_info *info)
{
    switch (fmt) {
    case UPRES_FORMAT_PNG: return upres__png_rows_open(ctx, f, apply_orientation, dec, info);
    case UPRES_FORMAT_JPEG: return upres__jpeg_rows_open(ctx, f, apply_orientation, dec, info);
    case UPRES_FORMAT_TIFF: return upres__tiff_rows_open(ctx, f, apply_orientation, dec, info);
    default: return UPRES_OK; /* WebP and unknown data: the whole decoder decides */
    }
}

int upres_reader_open(upres_ctx *ctx, const char *path, const upres_decode_desc *desc,
                      upres_reader **out, upres_file_info *info)
{
    upres__clear_error(ctx);
    if (!out) return UPRES_ERR_INVALID_ARG;
    *out = NULL;
    if (!path) return UPRES_ERR_INVALID_ARG;
    upres_decode_desc d = desc ? *desc : upres_decode_desc_defaults();
    upres_file_info local;
    if (!info) info = &local;
    memset(info, 0, sizeof *info);
    info->frames = 1;
    info->orientation = 1;

    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return upres__fail(ctx, UPRES_ERR_IO, "%s", strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return upres__fail(ctx, UPRES_ERR_IO, "%s", strerror(e));
    }
    if (S_ISDIR(sb.st_mode)) {
        close(fd);
        return upres__fail(ctx, UPRES_ERR_IO, "is a directory");
    }
    upres_reader *r = calloc(1, sizeof *r);
    if (!r) {
        close(fd);
        return upres__fail(ctx, UPRES_ERR_NOMEM, "out of memory");
    }
    r->ctx = ctx;
    int st = UPRES_OK;
    /* Only a regular file can be read twice (header probe, then a whole
     * decode) or by offset; anything else is read whole. */
    if (S_ISREG(sb.st_mode)) {
        uint8_t magic[16];
        ssize_t n;
        do n = pread(fd, magic, sizeof magic, 0);
        while (n < 0 && errno == EINTR);
        if (n < 0) {
            st = upres__fail(ctx, UPRES_ERR_IO, "%s", strerror(errno));
            close(fd);
            goto fail;
        }
        upres_format fmt = upres_format_from_magic(magic, (size_t)n);
        r->f = fdopen(fd, "rb");
        if (!r->f) {
            st = upres__fail(ctx, UPRES_ERR_NOMEM, "%s", strerror(errno));
            close(fd);
            goto fail;
        }
        setvbuf(r->f, NULL, _IOFBF, STREAM_FILE_BUF);
        info->format = fmt;
        st = open_rows(ctx, fmt, r->f, d.apply_orientation, &r->dec, info);
        if (st != UPRES_OK) goto fail;
    }
    if (r->dec) {
        upres__rowdec *dec = r->dec;
        r->layout = dec->layout;
        if (upres__icc_fits_decoded(dec->icc, dec->icc_size, dec->layout.channels)) {
            r->icc = dec->icc;
            r->icc_size = dec->icc_size;
        }
        info->channels = dec->layout.channels;
        info->icc_size = r->icc_size;
        info->orientation = dec->orientation >= 1 && dec->orientation <= 8 ? dec->orientation : 1;
    } else {
        /* Whole decode of the same open file, so it is the file probed
         * above even if `path` changes meanwhile. */
        uint8_t *buf;
        size_t size;
        st = upres__read_fd(ctx, r->f ? fileno(r->f) : fd, upres__limits(ctx)->max_file_bytes, &buf,
                            &size);
        if (r->f) fclose(r->f);
        else close(fd);
        r->f = NULL;
        if (st != UPRES_OK) goto fail;
        st = upres_decode(ctx, buf, size, &d, &r->img, info);
        free(buf);
        if (st != UPRES_OK) goto fail;
        r->layout.width = r->img->width;
        r->layout.height = r->img->height;
        r->layout.channels = r->img->channels;
        r->layout.depth = r->img->depth;
        r->icc = r->img->icc;
        r->icc_size = r->img->icc_size;
    }
    r->row_bytes = layout_row_bytes(&r->layout);
    if (!r->row_bytes) {
        st = upres__fail(ctx, UPRES_ERR_OVERFLOW, "row size overflows");
        goto fail;
    }
    *out = r;
    return UPRES_OK;
fail:
    upres_reader_free(r);
    return st;
}

upres_layout upres_reader_layout(const upres_reader *r)
{
    upres_layout L;
    if (r) return r->layout;
    memset(&L, 0, sizeof L);
    return L;
}

const uint8_t *upres_reader_icc(const upres_reader *r, size_t *size)
{
    const uint8_t *icc = r ? r->icc : NULL;
    if (size) *size = icc ? r->icc_size : 0;
    return icc;
}

int upres_reader_is_streaming(const upres_reader *r)
{
    return r && r->dec ? 1 : 0;
}

int upres_reader_read(upres_reader *r, void *dst, size_t stride, uint32_t rows)
{
    if (!r) return UPRES_ERR_INVALID_ARG;
    upres_ctx *ctx = r->ctx;
    upres__clear_error(ctx);
    if (r->fail_status)
        return upres__fail(ctx, r->fail_status, "an earlier read of this file failed");
    if (rows == 0) return UPRES_OK;
    if (rows > r->layout.height - r->y)
        return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "%u rows asked, %u of %u left", rows,
                           r->layout.height - r->y, r->layout.height);
    if (!batch_ok(dst, stride, r->row_bytes, rows))
        return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "no buffer, or stride %zu below the row size %zu",
                           stride, r->row_bytes);
    uint8_t *out = dst;
    if (r->dec) {
        int st = r->dec->read(r->dec, out, stride, rows);
        if (st != UPRES_OK) {
            r->fail_status = st;
            return st;
        }
    } else {
        for (uint32_t i = 0; i < rows; i++)
            memcpy(out + (size_t)i * stride, upres_image_row(r->img, r->y + i), r->row_bytes);
    }
    r->y += rows;
    return UPRES_OK;
}

/* ------------------------------------------------------------------------ */
/* Writer                                                                    */

struct upres_writer {
    upres_ctx *ctx;
    char *path;
    upres__tmpfile tf;
    upres_layout layout;     /* rows as the caller gives them */
    size_t row_bytes;
    upres_encode_desc desc;
    upres_depth tdepth;      /* rows as the format stores them */
    uint32_t tchannels;
    uint8_t *icc;            /* caller's profile (copy) */
    size_t icc_size;
    upres__rowenc *enc;      /* PNG, JPEG, TIFF */
    upres_image *gather;     /* WebP: every row, encoded at finish */
    uint32_t y;              /* rows written */
    int fail_status;         /* nonzero after any error */
    int done;                /* finish succeeded */
};

void upres_writer_free(upres_writer *w)
{
    if (!w) return;
    if (w->enc) w->enc->destroy(w->enc);
    if (!w->done && w->tf.tmp) upres__tmp_discard(&w->tf);
    upres_image_free(w->gather);
    free(w->icc);
    free(w->path);
    free(w);
}

int upres_writer_open(upres_ctx *ctx, const char *path, const upres_layout *layout,
                      const uint8_t *icc, size_t icc_size, const upres_encode_desc *desc,
                      upres_writer **out)
{
    upres__clear_error(ctx);
    if (!out) return UPRES_ERR_INVALID_ARG;
    *out = NULL;
    if (!path || !*path || !layout || (!icc && icc_size)) return UPRES_ERR_INVALID_ARG;
    size_t row_bytes = layout_row_bytes(layout);
    if (!row_bytes)
        return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "bad layout %ux%u, %u channels, depth %d",
                           layout->width, layout->height, layout->channels, (int)layout->depth);
    upres_encode_desc d = desc ? *desc : upres_encode_desc_defaults();
    if (d.format == UPRES_FORMAT_UNKNOWN) d.format = upres_format_from_path(path);
    int st = upres__encode_check(ctx, &d);
    if (st != UPRES_OK) return st;

    upres_writer *w = calloc(1, sizeof *w);
    if (!w) return upres__fail(ctx, UPRES_ERR_NOMEM, "out of memory");
    w->ctx = ctx;
    w->tf.fd = -1;
    w->layout = *layout;
    w->row_bytes = row_bytes;
    w->desc = d;
    size_t plen = strlen(path) + 1;
    w->path = malloc(plen);
    if (!w->path) {
        st = upres__fail(ctx, UPRES_ERR_NOMEM, "out of memory");
        goto fail;
    }
    memcpy(w->path, path, plen);
    if (icc && icc_size) {
        w->icc = malloc(icc_size);
        if (!w->icc) {
            st = upres__fail(ctx, UPRES_ERR_NOMEM, "copying the ICC profile");
            goto fail;
        }
        memcpy(w->icc, icc, icc_size);
        w->icc_size = icc_size;
    }
    upres__target_layout(layout->channels, layout->depth, &d, &w->tdepth, &w->tchannels);
    if (d.format == UPRES_FORMAT_WEBP) {
        st = upres_image_new(&w->gather, layout->width, layout->height, layout->channels,
                             layout->depth, upres__limits(ctx));
        if (st != UPRES_OK) {
            st = upres__fail(ctx, st, "WebP: %ux%u image to gather", layout->width, layout->height);
            goto fail;
        }
        if (w->icc && (st = upres_image_set_icc(w->gather, w->icc, w->icc_size)) != UPRES_OK) {
            st = upres__fail(ctx, st, "copying the ICC profile");
            goto fail;
        }
    }
    if ((st = upres__tmp_create(ctx, path, &w->tf)) != UPRES_OK) goto fail;
    if (!w->gather) {
        upres_layout T = {layout->width, layout->height, w->tchannels, w->tdepth};
        const uint8_t *eicc;
        size_t eicc_size;
        upres__encode_icc(&d, w->icc, w->icc_size, layout->channels, w->tchannels, &eicc, &eicc_size);
        switch (d.format) {
        case UPRES_FORMAT_PNG:
            st = upres__png_rows_begin(ctx, w->tf.fd, &T, &d, eicc, eicc_size, &w->enc);
            break;
        case UPRES_FORMAT_JPEG:
            st = upres__jpeg_rows_begin(ctx, w->tf.fd, &T, &d, eicc, eicc_size, &w->enc);
            break;
        default:
            st = upres__tiff_rows_begin(ctx, w->tf.fd, &T, &d, eicc, eicc_size, &w->enc);
            break;
        }
        if (st != UPRES_OK) goto fail;
    }
    *out = w;
    return UPRES_OK;
fail:
    upres_writer_free(w);
    return st;
}

int upres_writer_write(upres_writer *w, const void *src, size_t stride, uint32_t rows)
{
    if (!w) return UPRES_ERR_INVALID_ARG;
    upres_ctx *ctx = w->ctx;
    upres__clear_error(ctx);
    if (w->fail_status) return upres__fail(ctx, w->fail_status, "an earlier write failed");
    int st;
    if (w->done) {
        st = upres__fail(ctx, UPRES_ERR_INVALID_ARG, "the file is already finished");
    } else if (rows > w->layout.height - w->y) {
        st = upres__fail(ctx, UPRES_ERR_INVALID_ARG, "%u rows given, %u of %u left", rows,
                         w->layout.height - w->y, w->layout.height);
    } else if (rows == 0) {
        return UPRES_OK;
    } else if (!batch_ok(src, stride, w->row_bytes, rows)) {
        st = upres__fail(ctx, UPRES_ERR_INVALID_ARG, "no rows, or stride %zu below the row size %zu",
                         stride, w->row_bytes);
    } else if (w->gather) {
        for (uint32_t i = 0; i < rows; i++)
            memcpy(upres_image_row(w->gather, w->y + i), (const uint8_t *)src + (size_t)i * stride,
                   w->row_bytes);
        st = UPRES_OK;
    } else {
        /* The batch as an image, converted exactly as upres_encode converts
         * a whole one (the conversion is per pixel). */
        upres_image batch;
        memset(&batch, 0, sizeof batch);
        batch.width = w->layout.width;
        batch.height = rows;
        batch.channels = w->layout.channels;
        batch.depth = w->layout.depth;
        batch.stride = stride;
        batch.data = (void *)(uintptr_t)src; /* read only: convert and the encoders take const */
        batch.orientation = 1;
        upres_image *conv = NULL;
        uint8_t *aligned = NULL;
        st = UPRES_OK;
        if (w->tdepth != batch.depth || w->tchannels != batch.channels) {
            /* The conversion reads samples as their type: the caller's rows
             * need not be aligned for that, a packed copy is. */
            size_t bps = upres_depth_bytes(batch.depth);
            if (bps > 1 && ((uintptr_t)src % bps || stride % bps)) {
                aligned = malloc(w->row_bytes * rows);
                if (!aligned) {
                    st = upres__fail(ctx, UPRES_ERR_NOMEM, "copying %u rows", rows);
                } else {
                    for (uint32_t i = 0; i < rows; i++)
                        memcpy(aligned + (size_t)i * w->row_bytes,
                               (const uint8_t *)src + (size_t)i * stride, w->row_bytes);
                    batch.data = aligned;
                    batch.stride = w->row_bytes;
                }
            }
            if (st == UPRES_OK) {
                st = upres_image_convert(&batch, w->tdepth, w->tchannels, w->desc.background, &conv);
                if (st != UPRES_OK)
                    st = upres__fail(ctx, st, "converting for %s", upres_format_name(w->desc.format));
            }
        }
        if (st == UPRES_OK) st = w->enc->write(w->enc, conv ? conv : &batch);
        upres_image_free(conv);
        free(aligned);
    }
    if (st != UPRES_OK) {
        w->fail_status = st;
        return st;
    }
    w->y += rows;
    return UPRES_OK;
}

int upres_writer_finish(upres_writer *w)
{
    if (!w) return UPRES_ERR_INVALID_ARG;
    upres_ctx *ctx = w->ctx;
    upres__clear_error(ctx);
    if (w->fail_status) return upres__fail(ctx, w->fail_status, "an earlier write failed");
    if (w->done) return UPRES_OK;
    int st;
    if (w->y != w->layout.height) {
        st = upres__fail(ctx, UPRES_ERR_INVALID_ARG, "only %u of %u rows written", w->y,
                         w->layout.height);
    } else if (w->gather) {
        void *buf;
        size_t n;
        st = upres_encode(ctx, w->gather, &w->desc, &buf, &n);
        if (st == UPRES_OK) {
            int err = upres__write_all(w->tf.fd, buf, n);
            free(buf);
            if (err) st = upres__fail(ctx, UPRES_ERR_IO, "writing '%s': %s", w->path, strerror(err));
        }
    } else {
        st = w->enc->finish(w->enc);
    }
    if (st == UPRES_OK) {
        st = upres__tmp_commit(ctx, w->path, &w->tf);
        if (st == UPRES_OK) {
            w->done = 1;
            return UPRES_OK;
        }
    }
    /* Nothing may be left behind once finish has failed. */
    if (w->tf.tmp) upres__tmp_discard(&w->tf);
    w->fail_status = st;
    return st;
}
