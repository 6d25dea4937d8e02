/* JPEG codec on libjpeg-turbo: decoding of gray, YCbCr/RGB and CMYK/YCCK
 * files (CMYK converted to RGB here) with ICC profile and EXIF orientation,
 * and encoding of u8 gray/RGB images; both whole (in memory) and row by row
 * (streaming, on files). Both directions share their libjpeg set-up and row
 * loops (jpeg_read_head/begin/rows, jpeg_write_start/rows), so the streamed
 * samples and bytes equal the whole-image ones.
 *
 * libjpeg reports errors through error_exit, which we turn into a longjmp().
 * Everything that must survive the jump lives in a heap-allocated job whose
 * pointer is set before setjmp() and never changed, so its contents are well
 * defined afterwards. */
#include "io_internal.h"

#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdio.h> /* jpeglib.h needs FILE */
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>

/* Progressive files can ask for an unbounded number of scans, each costing a
 * pass over the whole image; real encoders use about ten. */
#define JPEG_MAX_SCANS 500

/* Largest ICC profile that fits in 255 APP2 markers of 65519 data bytes. */
#define JPEG_MAX_ICC ((size_t)255 * 65519)

/* Rows handed to libjpeg per read/write call. */
#define JPEG_ROWS_PER_CALL 16

/* Output buffer of a file-backed encoder, written out whenever it fills. */
#define JPEG_OUT_BUF ((size_t)64 * 1024)

typedef struct jpeg_job {
    struct jpeg_error_mgr err;
    jmp_buf jb;
    upres_ctx *ctx;
    int err_status;       /* status for libjpeg errors without a better one */
    struct jpeg_decompress_struct d;
    struct jpeg_compress_struct c;
    struct jpeg_progress_mgr progress;
    upres_image *img;     /* whole decode: the image being filled */
    uint32_t channels;    /* decode: of the delivered rows, 1 or 3 */
    int cmyk;             /* decode: converted from CMYK/YCCK */
    int orientation;      /* decode: from EXIF, 1 when absent */
    uint8_t *cmyk_row;    /* decode: one CMYK row before conversion */
    JOCTET *icc;          /* decode: profile from jpeg_read_icc_profile (malloc) */
    unsigned int icc_size;
    struct jpeg_destination_mgr dest;
    int fd;               /* encode: >= 0 writes there through obuf */
    uint8_t *obuf;        /* encode: output file, malloc()ed, grown by realloc (fd < 0) */
    size_t ocap, osize;
} jpeg_job;

/* Status for a libjpeg error code: what the failure means for the caller. */
static int jpeg_status_of(int code, int fallback)
{
    switch (code) {
    case JERR_OUT_OF_MEMORY: return UPRES_ERR_NOMEM;
    case JERR_IMAGE_TOO_BIG:
    case JERR_WIDTH_OVERFLOW:
    case JERR_NO_BACKING_STORE: return UPRES_ERR_LIMIT;
    case JERR_BAD_PRECISION:
    case JERR_NOT_COMPILED:
    case JERR_CONVERSION_NOTIMPL:
    case JERR_ARITH_NOTIMPL: return UPRES_ERR_UNSUPPORTED;
    default: return fallback;
    }
}

/* error_exit: records libjpeg's message in ctx and unwinds to the codec's
 * setjmp(). Never returns. */
static void jpeg_error_exit_cb(j_common_ptr cinfo)
{
    jpeg_job *job = cinfo->client_data;
    char msg[JMSG_LENGTH_MAX];
    cinfo->err->format_message(cinfo, msg);
    job->err_status = jpeg_status_of(cinfo->err->msg_code, job->err_status);
    upres__fail(job->ctx, job->err_status, "JPEG: %s", msg);
    longjmp(job->jb, 1);
}

/* emit_message: never prints. Warnings that mean pixels were lost (data ran
 * out, a marker or a bad Huffman code inside entropy-coded data) are fatal;
 * libjpeg would otherwise fill the rest with grey and report success. */
static void jpeg_emit_message_cb(j_common_ptr cinfo, int level)
{
    if (level != -1) return;
    int code = cinfo->err->msg_code;
    if (code == JWRN_JPEG_EOF || code == JWRN_HIT_MARKER || code == JWRN_HUFF_BAD_CODE) {
        jpeg_job *job = cinfo->client_data;
        job->err_status = UPRES_ERR_CORRUPT;
        jpeg_error_exit_cb(cinfo);
    }
    cinfo->err->num_warnings++;
}

/* output_message: the library never prints. */
static void jpeg_output_message_cb(j_common_ptr cinfo)
{
    (void)cinfo;
}

/* Bounds the number of scans of a progressive file (see JPEG_MAX_SCANS). */
static void jpeg_progress_cb(j_common_ptr cinfo)
{
    if (!cinfo->is_decompressor) return;
    j_decompress_ptr d = (j_decompress_ptr)cinfo;
    if (d->input_scan_number > JPEG_MAX_SCANS) {
        jpeg_job *job = cinfo->client_data;
        upres__fail(job->ctx, UPRES_ERR_LIMIT, "JPEG: more than %d progressive scans",
                    JPEG_MAX_SCANS);
        job->err_status = UPRES_ERR_LIMIT;
        longjmp(job->jb, 1);
    }
}

/* Sets up job->err with our callbacks (never prints, never exits). */
static void jpeg_job_init_err(jpeg_job *job)
{
    jpeg_std_error(&job->err);
    job->err.error_exit = jpeg_error_exit_cb;
    job->err.emit_message = jpeg_emit_message_cb;
    job->err.output_message = jpeg_output_message_cb;
}

/* x/255 rounded to nearest, exact for 0 <= x <= 255*255. */
static inline uint8_t div255(unsigned x)
{
    x += 128;
    return (uint8_t)((x + (x >> 8)) >> 8);
}

/* CMYK row -> RGB row. Adobe (Photoshop) files store inverted CMYK, 255 =
 * no ink; others store ink amounts. Naive conversion without a profile. */
static void cmyk_to_rgb(const uint8_t *src, uint8_t *dst, uint32_t width, int inverted)
{
    for (uint32_t x = 0; x < width; x++, src += 4, dst += 3) {
        unsigned c = src[0], m = src[1], y = src[2], k = src[3];
        if (!inverted) {
            c = 255 - c;
            m = 255 - m;
            y = 255 - y;
            k = 255 - k;
        }
        dst[0] = div255(c * k);
        dst[1] = div255(m * k);
        dst[2] = div255(y * k);
    }
}

/* Reads EXIF orientation and the ICC profile from the saved APP markers.
 * Must run before jpeg_finish_decompress, which frees the markers. */
static void jpeg_read_metadata(jpeg_job *job, int want_icc)
{
    j_decompress_ptr d = &job->d;
    for (jpeg_saved_marker_ptr m = d->marker_list; m; m = m->next) {
        if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6 &&
            memcmp(m->data, "Exif\0\0", 6) == 0) {
            job->orientation = upres__exif_orientation(m->data, m->data_length);
            break;
        }
    }
    if (!want_icc) return;
    JOCTET *icc = NULL;
    unsigned int len = 0;
    if (jpeg_read_icc_profile(d, &icc, &len) && icc && len > 0 &&
        len <= upres__limits(job->ctx)->max_metadata_bytes) {
        job->icc = icc;
        job->icc_size = len;
    } else {
        free(icc);
    }
}

/* Fails the decode from inside the setjmp() scope: records the detail and
 * unwinds. Never returns. */
static void jpeg_fail_jump(jpeg_job *job, int st, const char *fmt, unsigned a, unsigned b)
{
    job->err_status = st;
    upres__fail(job->ctx, st, fmt, a, b);
    longjmp(job->jb, 1);
}

/* Common set-up of both decoders after setjmp(): creates the decompressor
 * on the source the caller then attaches (see jpeg_read_head). */
static void jpeg_read_create(jpeg_job *job)
{
    const upres_limits *lim = upres__limits(job->ctx);
    j_decompress_ptr d = &job->d;
    jpeg_create_decompress(d);
    d->mem->max_memory_to_use =
        lim->max_memory_bytes > (uint64_t)LONG_MAX ? LONG_MAX : (long)lim->max_memory_bytes;
    job->progress.progress_monitor = jpeg_progress_cb;
    d->progress = &job->progress;
}

/* Reads the header and metadata once the source is attached: colour space,
 * limits, info, EXIF orientation, ICC profile. */
static void jpeg_read_head(jpeg_job *job, upres_file_info *info)
{
    const upres_limits *lim = upres__limits(job->ctx);
    j_decompress_ptr d = &job->d;
    jpeg_save_markers(d, JPEG_APP0 + 1, 0xFFFF);
    jpeg_save_markers(d, JPEG_APP0 + 2, 0xFFFF);
    jpeg_read_header(d, TRUE);

    uint32_t channels = 3;
    int cmyk = 0;
    switch (d->jpeg_color_space) {
    case JCS_GRAYSCALE:
        d->out_color_space = JCS_GRAYSCALE;
        channels = 1;
        break;
    case JCS_YCbCr:
    case JCS_RGB:
        d->out_color_space = JCS_RGB;
        break;
    case JCS_CMYK:
    case JCS_YCCK:
        d->out_color_space = JCS_CMYK;
        cmyk = 1;
        break;
    default:
        jpeg_fail_jump(job, UPRES_ERR_UNSUPPORTED, "JPEG: unknown colour space with %u components",
                       (unsigned)d->num_components, 0);
    }
    int st = upres_limits_check(lim, d->image_width, d->image_height, channels, 1);
    if (st == UPRES_OK && cmyk) st = upres_limits_check(lim, d->image_width, 1, 4, 1);
    if (st != UPRES_OK)
        jpeg_fail_jump(job, st, "JPEG: %ux%u image exceeds the limits", d->image_width,
                       d->image_height);
    info->width = d->image_width;
    info->height = d->image_height;
    info->bits_per_sample = d->data_precision;
    info->interlaced = d->progressive_mode ? 1 : 0;
    info->cmyk = cmyk;
    info->frames = 1;
    d->dct_method = JDCT_ISLOW;
    job->channels = channels;
    job->cmyk = cmyk;
    job->orientation = 1;
    /* A CMYK profile does not describe the RGB we produce. */
    jpeg_read_metadata(job, !cmyk);
}

/* Starts decompression (for a progressive file this reads every scan). */
static void jpeg_read_begin(jpeg_job *job)
{
    j_decompress_ptr d = &job->d;
    jpeg_start_decompress(d);
    if (d->output_width != d->image_width || d->output_height != d->image_height ||
        d->output_components != (job->cmyk ? 4 : (int)job->channels))
        jpeg_fail_jump(job, UPRES_ERR_CORRUPT, "JPEG: unexpected output layout", 0, 0);
    if (job->cmyk) {
        job->cmyk_row = malloc((size_t)d->output_width * 4);
        if (!job->cmyk_row) jpeg_fail_jump(job, UPRES_ERR_NOMEM, "JPEG: out of memory", 0, 0);
    }
}

/* Decodes the next n rows (never past the end) into dst, rows `stride`
 * bytes apart; then, after the last row, reads up to EOI so that a
 * truncated tail is an error too. */
static void jpeg_read_rows(jpeg_job *job, uint8_t *dst, size_t stride, uint32_t n)
{
    j_decompress_ptr d = &job->d;
    const uint32_t end = d->output_scanline + n;
    if (job->cmyk) {
        int inverted = d->saw_Adobe_marker;
        while (d->output_scanline < end) {
            JSAMPROW row = job->cmyk_row;
            uint8_t *out = dst + (size_t)(d->output_scanline + n - end) * stride;
            if (jpeg_read_scanlines(d, &row, 1) != 1) break;
            cmyk_to_rgb(job->cmyk_row, out, d->output_width, inverted);
        }
    } else {
        /* Scanlines go straight into the caller's rows, several per call. */
        while (d->output_scanline < end) {
            JSAMPROW rows[JPEG_ROWS_PER_CALL];
            uint32_t y = d->output_scanline, k = end - y;
            if (k > JPEG_ROWS_PER_CALL) k = JPEG_ROWS_PER_CALL;
            for (uint32_t i = 0; i < k; i++) rows[i] = dst + (size_t)(y + n - end + i) * stride;
            if (jpeg_read_scanlines(d, rows, k) == 0) break;
        }
    }
    if (d->output_scanline < end)
        jpeg_fail_jump(job, UPRES_ERR_CORRUPT, "JPEG: decoding stopped at row %u",
                       d->output_scanline, 0);
    if (d->output_scanline == d->output_height) jpeg_finish_decompress(d);
}

int upres__jpeg_decode(upres_ctx *ctx, const uint8_t *buf, size_t size, upres_image **out,
                       upres_file_info *info)
{
    *out = NULL;
    const upres_limits *lim = upres__limits(ctx);
    if (size > ULONG_MAX) return upres__fail(ctx, UPRES_ERR_LIMIT, "JPEG: file too large");
    jpeg_job *job = calloc(1, sizeof *job);
    if (!job) return upres__fail(ctx, UPRES_ERR_NOMEM, "JPEG: out of memory");
    job->ctx = ctx;
    job->fd = -1;
    job->err_status = UPRES_ERR_CORRUPT;
    jpeg_job_init_err(job);
    job->d.err = &job->err;
    job->d.client_data = job;
    if (setjmp(job->jb)) {
        int st = job->err_status;
        jpeg_destroy_decompress(&job->d);
        upres_image_free(job->img);
        free(job->cmyk_row);
        free(job->icc);
        free(job);
        return st;
    }
    j_decompress_ptr d = &job->d;
    jpeg_read_create(job);
    jpeg_mem_src(d, buf, (unsigned long)size);
    jpeg_read_head(job, info);
    int st = upres_image_new(&job->img, d->image_width, d->image_height, job->channels, UPRES_U8, lim);
    if (st != UPRES_OK)
        jpeg_fail_jump(job, st, "JPEG: cannot allocate %ux%u image", d->image_width, d->image_height);
    jpeg_read_begin(job);
    jpeg_read_rows(job, job->img->data, job->img->stride, job->img->height);
    jpeg_destroy_decompress(d);

    upres_image *img = job->img;
    if (job->icc) upres__image_take_icc(img, job->icc, job->icc_size);
    img->orientation = job->orientation;
    free(job->cmyk_row);
    free(job);
    *out = img;
    return UPRES_OK;
}

/* ------------------------------------------------------------------------ */
/* Streaming decoder                                                         */

typedef struct jpeg_rows {
    upres__rowdec base; /* first: the decoder is passed around as its base */
    jpeg_job job;
} jpeg_rows;

static void jpeg_rows_destroy(upres__rowdec *dec)
{
    jpeg_rows *r = (jpeg_rows *)dec;
    if (!r) return;
    jpeg_destroy_decompress(&r->job.d);
    free(r->job.cmyk_row);
    free(r->job.icc);
    free(r);
}

static int jpeg_rows_read(upres__rowdec *dec, uint8_t *dst, size_t stride, uint32_t rows)
{
    jpeg_rows *r = (jpeg_rows *)dec;
    if (setjmp(r->job.jb)) return r->job.err_status;
    jpeg_read_rows(&r->job, dst, stride, rows);
    return UPRES_OK;
}

int upres__jpeg_rows_open(upres_ctx *ctx, FILE *f, int apply_orientation, upres__rowdec **out,
                          upres_file_info *info)
{
    *out = NULL;
    jpeg_rows *r = calloc(1, sizeof *r);
    if (!r) return upres__fail(ctx, UPRES_ERR_NOMEM, "JPEG: out of memory");
    jpeg_job *job = &r->job;
    job->ctx = ctx;
    job->fd = -1;
    job->err_status = UPRES_ERR_CORRUPT;
    jpeg_job_init_err(job);
    job->d.err = &job->err;
    job->d.client_data = job;
    if (setjmp(job->jb)) {
        int st = job->err_status;
        jpeg_rows_destroy(&r->base);
        return st;
    }
    jpeg_read_create(job);
    jpeg_stdio_src(&job->d, f);
    jpeg_read_head(job, info);
    if (apply_orientation && job->orientation != 1) {
        jpeg_rows_destroy(&r->base);
        return UPRES_OK;
    }
    jpeg_read_begin(job);
    r->base.layout.width = job->d.output_width;
    r->base.layout.height = job->d.output_height;
    r->base.layout.channels = job->channels;
    r->base.layout.depth = UPRES_U8;
    r->base.orientation = job->orientation;
    r->base.icc = job->icc;
    r->base.icc_size = job->icc_size;
    r->base.read = jpeg_rows_read;
    r->base.destroy = jpeg_rows_destroy;
    *out = &r->base;
    return UPRES_OK;
}

/* ------------------------------------------------------------------------ */
/* Encoding                                                                  */

/* Destination manager writing into one malloc()ed buffer grown by realloc,
 * so the finished file is handed to the caller without a copy; or, when
 * job->fd >= 0, through a fixed buffer written out whenever it fills. */
static void jpeg_dest_init(j_compress_ptr c)
{
    jpeg_job *job = c->client_data;
    job->obuf = malloc(job->ocap);
    if (!job->obuf) ERREXIT1(c, JERR_OUT_OF_MEMORY, 0);
    job->dest.next_output_byte = job->obuf;
    job->dest.free_in_buffer = job->ocap;
}

/* Writes the first n bytes of obuf to job->fd; a failure unwinds with
 * UPRES_ERR_IO. */
static void jpeg_dest_write(jpeg_job *job, size_t n)
{
    int err = upres__write_all(job->fd, job->obuf, n);
    if (err) {
        job->err_status = UPRES_ERR_IO;
        upres__fail(job->ctx, UPRES_ERR_IO, "JPEG: writing the file: %s", strerror(err));
        longjmp(job->jb, 1);
    }
}

static boolean jpeg_dest_empty(j_compress_ptr c)
{
    jpeg_job *job = c->client_data;
    if (job->fd >= 0) {
        /* libjpeg calls this only when the buffer is full. */
        jpeg_dest_write(job, job->ocap);
        job->dest.next_output_byte = job->obuf;
        job->dest.free_in_buffer = job->ocap;
        return TRUE;
    }
    size_t ncap;
    if (!upres__mul_size(job->ocap, 2, &ncap)) ERREXIT1(c, JERR_OUT_OF_MEMORY, 1);
    uint8_t *nb = realloc(job->obuf, ncap);
    if (!nb) ERREXIT1(c, JERR_OUT_OF_MEMORY, 1);
    job->obuf = nb;
    job->dest.next_output_byte = nb + job->ocap;
    job->dest.free_in_buffer = ncap - job->ocap;
    job->ocap = ncap;
    return TRUE;
}

static void jpeg_dest_term(j_compress_ptr c)
{
    jpeg_job *job = c->client_data;
    job->osize = job->ocap - job->dest.free_in_buffer;
    if (job->fd >= 0) jpeg_dest_write(job, job->osize);
}

/* Checks what the encoders accept, before any libjpeg state exists. */
static int jpeg_check_layout(upres_ctx *ctx, uint32_t w, uint32_t h, uint32_t channels,
                             upres_depth depth, const uint8_t *icc, size_t icc_size)
{
    if (depth != UPRES_U8 || (channels != 1 && channels != 3))
        return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "JPEG: needs an 8-bit gray or RGB image");
    if (w > JPEG_MAX_DIMENSION || h > JPEG_MAX_DIMENSION)
        return upres__fail(ctx, UPRES_ERR_UNSUPPORTED, "JPEG: %ux%u exceeds the format's %ld pixels",
                           w, h, (long)JPEG_MAX_DIMENSION);
    if (icc && icc_size > JPEG_MAX_ICC)
        return upres__fail(ctx, UPRES_ERR_UNSUPPORTED,
                           "JPEG: ICC profile of %zu bytes does not fit in APP2 markers", icc_size);
    return UPRES_OK;
}

/* Common start of both encoders after setjmp(): compressor, destination,
 * settings, header and profile, up to the first row. */
static void jpeg_write_start(jpeg_job *job, uint32_t w, uint32_t h, uint32_t channels,
                             const upres_encode_desc *desc, const uint8_t *icc, size_t icc_size)
{
    j_compress_ptr c = &job->c;
    jpeg_create_compress(c);
    job->dest.init_destination = jpeg_dest_init;
    job->dest.empty_output_buffer = jpeg_dest_empty;
    job->dest.term_destination = jpeg_dest_term;
    c->dest = &job->dest;
    c->image_width = w;
    c->image_height = h;
    c->input_components = (int)channels;
    c->in_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(c);
    jpeg_set_quality(c, desc->quality, TRUE);
    c->dct_method = JDCT_ISLOW;
    if (channels == 3 && desc->chroma_444) {
        for (int i = 0; i < c->num_components; i++) {
            c->comp_info[i].h_samp_factor = 1;
            c->comp_info[i].v_samp_factor = 1;
        }
    }
    jpeg_start_compress(c, TRUE);
    if (icc && icc_size > 0) jpeg_write_icc_profile(c, icc, (unsigned int)icc_size);
}

/* Compresses every row of `rows` (the next rows->height of the image), and
 * completes the file after the last row of the image. */
static void jpeg_write_rows(jpeg_job *job, const upres_image *rows)
{
    j_compress_ptr c = &job->c;
    for (uint32_t y = 0; y < rows->height;) {
        JSAMPROW ptr[JPEG_ROWS_PER_CALL];
        uint32_t n = rows->height - y;
        if (n > JPEG_ROWS_PER_CALL) n = JPEG_ROWS_PER_CALL;
        for (uint32_t i = 0; i < n; i++) ptr[i] = upres_image_row(rows, y + i);
        JDIMENSION done = jpeg_write_scanlines(c, ptr, n);
        if (done == 0) ERREXIT(c, JERR_CANT_SUSPEND);
        y += done;
    }
    if (c->next_scanline == c->image_height) jpeg_finish_compress(c);
}

int upres__jpeg_encode(upres_ctx *ctx, const upres_image *img, const upres_encode_desc *desc,
                       const uint8_t *icc, size_t icc_size, uint8_t **out, size_t *out_size)
{
    *out = NULL;
    *out_size = 0;
    int st = jpeg_check_layout(ctx, img->width, img->height, img->channels, img->depth, icc, icc_size);
    if (st != UPRES_OK) return st;
    jpeg_job *job = calloc(1, sizeof *job);
    if (!job) return upres__fail(ctx, UPRES_ERR_NOMEM, "JPEG: out of memory");
    job->ctx = ctx;
    job->fd = -1;
    job->err_status = UPRES_ERR_INVALID_ARG;
    /* Start near the final size (photos at high quality take around a
     * quarter of the raw bytes); realloc growth covers the rest. */
    size_t raw;
    if (!upres__mul_size((size_t)img->width * img->channels, img->height, &raw)) raw = 0;
    job->ocap = raw / 4 + 65536;
    jpeg_job_init_err(job);
    job->c.err = &job->err;
    job->c.client_data = job;
    if (setjmp(job->jb)) {
        st = job->err_status;
        jpeg_destroy_compress(&job->c);
        free(job->obuf);
        free(job);
        return st;
    }
    jpeg_write_start(job, img->width, img->height, img->channels, desc, icc, icc_size);
    jpeg_write_rows(job, img);
    jpeg_destroy_compress(&job->c);

    uint8_t *data = job->obuf;
    size_t n = job->osize;
    if (job->ocap - n > 65536) {
        uint8_t *shrunk = realloc(data, n ? n : 1);
        if (shrunk) data = shrunk;
    }
    free(job);
    *out = data;
    *out_size = n;
    return UPRES_OK;
}

/* ------------------------------------------------------------------------ */
/* Streaming encoder                                                         */

typedef struct jpeg_wr {
    upres__rowenc base; /* first: the encoder is passed around as its base */
    jpeg_job job;
} jpeg_wr;

static void jpeg_wr_destroy(upres__rowenc *e)
{
    jpeg_wr *w = (jpeg_wr *)e;
    if (!w) return;
    jpeg_destroy_compress(&w->job.c);
    free(w->job.obuf);
    free(w);
}

static int jpeg_wr_write(upres__rowenc *e, const upres_image *rows)
{
    jpeg_wr *w = (jpeg_wr *)e;
    if (setjmp(w->job.jb)) return w->job.err_status;
    jpeg_write_rows(&w->job, rows);
    return UPRES_OK;
}

/* jpeg_write_rows already completed the file with the last row. */
static int jpeg_wr_finish(upres__rowenc *e)
{
    jpeg_wr *w = (jpeg_wr *)e;
    if (w->job.c.next_scanline != w->job.c.image_height)
        return upres__fail(w->job.ctx, UPRES_ERR_INVALID_ARG, "JPEG: %u of %u rows written",
                           (unsigned)w->job.c.next_scanline, (unsigned)w->job.c.image_height);
    return UPRES_OK;
}

int upres__jpeg_rows_begin(upres_ctx *ctx, int fd, const upres_layout *L,
                           const upres_encode_desc *desc, const uint8_t *icc, size_t icc_size,
                           upres__rowenc **out)
{
    *out = NULL;
    int st = jpeg_check_layout(ctx, L->width, L->height, L->channels, L->depth, icc, icc_size);
    if (st != UPRES_OK) return st;
    jpeg_wr *w = calloc(1, sizeof *w);
    if (!w) return upres__fail(ctx, UPRES_ERR_NOMEM, "JPEG: out of memory");
    jpeg_job *job = &w->job;
    job->ctx = ctx;
    job->fd = fd;
    job->ocap = JPEG_OUT_BUF;
    job->err_status = UPRES_ERR_INVALID_ARG;
    jpeg_job_init_err(job);
    job->c.err = &job->err;
    job->c.client_data = job;
    w->base.write = jpeg_wr_write;
    w->base.finish = jpeg_wr_finish;
    w->base.destroy = jpeg_wr_destroy;
    if (setjmp(job->jb)) {
        st = job->err_status;
        jpeg_wr_destroy(&w->base);
        return st;
    }
    jpeg_write_start(job, L->width, L->height, L->channels, desc, icc, icc_size);
    *out = &w->base;
    return UPRES_OK;
}
