/* TIFF codec on libtiff 4.5: decodes the first directory of a TIFF held in
 * memory, encodes u8/u16/f32 1-4 channel images into memory.
 *
 * Decoding takes one of two paths. The direct path reads strips or tiles of
 * 8/16-bit unsigned or 32-bit float MINISBLACK/MINISWHITE/RGB images itself
 * (contiguous or separate planes) and keeps the full precision. Everything
 * else libtiff can render (palette, 1/2/4-bit, YCbCr, CMYK, ...) goes through
 * TIFFReadRGBAImageOriented and becomes u8. libtiff's messages go to per-handle
 * handlers, never to stderr or to global state. */
#include "io_internal.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tiffio.h>

/* ------------------------------------------------------------------------ */
/* Memory streams for TIFFClientOpenExt                                      */

/* A seekable in-memory file. Reading: data/size is the caller's buffer
 * (never written). Writing: data is malloc()ed and grows; bytes skipped by a
 * seek past the end read as zero. `msg` holds libtiff's first error. */
typedef struct tiff_stream {
    uint8_t *data;
    size_t size, cap;
    uint64_t pos;
    int writable;
    int failed; /* an allocation for writing failed */
    char msg[192];
} tiff_stream;

/* libtiff I/O procs over a tiff_stream (the thandle_t): read/write return
 * bytes moved or -1, seek returns the new offset or (toff_t)-1. */
static tmsize_t ts_read(thandle_t h, void *buf, tmsize_t n)
{
    tiff_stream *s = (tiff_stream *)h;
    if (n <= 0 || s->pos >= s->size) return 0;
    uint64_t left = s->size - s->pos;
    size_t k = (uint64_t)n < left ? (size_t)n : (size_t)left;
    memcpy(buf, s->data + s->pos, k);
    s->pos += k;
    return (tmsize_t)k;
}

/* Grows the write buffer to hold at least `need` bytes (zero-filled). */
static int ts_reserve(tiff_stream *s, size_t need)
{
    if (need <= s->cap) return 1;
    size_t cap = s->cap ? s->cap : 65536;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    uint8_t *nd = realloc(s->data, cap);
    if (!nd) return 0;
    memset(nd + s->cap, 0, cap - s->cap);
    s->data = nd;
    s->cap = cap;
    return 1;
}

static tmsize_t ts_write(thandle_t h, void *buf, tmsize_t n)
{
    tiff_stream *s = (tiff_stream *)h;
    if (!s->writable || n < 0 || s->failed) return -1;
    size_t end;
    if (s->pos > SIZE_MAX || !upres__add_size((size_t)s->pos, (size_t)n, &end)) {
        s->failed = 1;
        return -1;
    }
    if (!ts_reserve(s, end)) {
        s->failed = 1;
        return -1;
    }
    if (n) memcpy(s->data + s->pos, buf, (size_t)n);
    s->pos = end;
    if (end > s->size) s->size = end;
    return n;
}

static toff_t ts_seek(thandle_t h, toff_t off, int whence)
{
    tiff_stream *s = (tiff_stream *)h;
    uint64_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? s->pos : s->size;
    /* toff_t is unsigned; libtiff passes relative moves as two's complement. */
    uint64_t np = base + (uint64_t)off;
    if (np > (uint64_t)INT64_MAX) return (toff_t)-1;
    s->pos = np;
    return np;
}

static int ts_close(thandle_t h)
{
    (void)h;
    return 0;
}

static toff_t ts_size(thandle_t h) { return ((tiff_stream *)h)->size; }

/* Read mode maps the caller's buffer so libtiff reads strips in place; it
 * maps read-only data as read-only and never writes through the mapping. */
static int ts_map(thandle_t h, void **base, toff_t *size)
{
    tiff_stream *s = (tiff_stream *)h;
    if (s->writable) return 0;
    *base = s->data;
    *size = s->size;
    return 1;
}

static void ts_unmap(thandle_t h, void *base, toff_t size)
{
    (void)h;
    (void)base;
    (void)size;
}

/* Keeps libtiff's first error message (module: text) for the failure report. */
static int ts_error(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap)
{
    (void)tif;
    tiff_stream *s = user;
    if (s && s->msg[0] == 0) {
        char text[160];
        vsnprintf(text, sizeof text, fmt, ap);
        if (module && *module)
            snprintf(s->msg, sizeof s->msg, "%s: %s", module, text);
        else
            snprintf(s->msg, sizeof s->msg, "%s", text);
    }
    return 1; /* handled: libtiff must not call its global (stderr) handler */
}

static int ts_warning(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap)
{
    (void)tif;
    (void)user;
    (void)module;
    (void)fmt;
    (void)ap;
    return 1;
}

/* Opens `s` with per-handle handlers. `max_alloc` bounds libtiff's single
 * allocations (0 = libtiff's default). Returns NULL on failure (s->msg says). */
static TIFF *ts_open(tiff_stream *s, const char *mode, uint64_t max_alloc)
{
    TIFFOpenOptions *opts = TIFFOpenOptionsAlloc();
    if (!opts) return NULL;
    TIFFOpenOptionsSetErrorHandlerExtR(opts, ts_error, s);
    TIFFOpenOptionsSetWarningHandlerExtR(opts, ts_warning, s);
    if (max_alloc) {
        uint64_t cap = (uint64_t)(sizeof(tmsize_t) >= 8 ? INT64_MAX : INT32_MAX);
        TIFFOpenOptionsSetMaxSingleMemAlloc(opts, (tmsize_t)(max_alloc < cap ? max_alloc : cap));
    }
    TIFF *tif = TIFFClientOpenExt("memory", mode, (thandle_t)s, ts_read, ts_write, ts_seek,
                                  ts_close, ts_size, ts_map, ts_unmap, opts);
    TIFFOpenOptionsFree(opts);
    return tif;
}

/* ------------------------------------------------------------------------ */
/* Decoding                                                                  */

/* Returns the status after recording "TIFF: <what>: <libtiff's message>". */
static int tiff_corrupt(upres_ctx *ctx, const tiff_stream *s, const char *what)
{
    if (s->msg[0]) return upres__fail(ctx, UPRES_ERR_CORRUPT, "TIFF: %s: %s", what, s->msg);
    return upres__fail(ctx, UPRES_ERR_CORRUPT, "TIFF: %s", what);
}

/* Layout of a direct-path image, all validated against the image size. */
typedef struct tiff_layout {
    uint32_t w, h;
    uint16_t spp, bps, photometric, planar;
    size_t sample_bytes;
    int assoc_alpha; /* the extra sample is premultiplied alpha */
} tiff_layout;

/* Copies `rows` rows of `cols` pixels of decoded strip/tile data (rows
 * `src_stride` bytes apart) to image position (x, y). `plane` < 0: the data
 * holds all samples interleaved; otherwise only sample `plane`. */
static void put_block(upres_image *img, const tiff_layout *L, const uint8_t *src,
                      size_t src_stride, uint32_t x, uint32_t y, uint32_t cols, uint32_t rows,
                      int plane)
{
    const size_t sb = L->sample_bytes, px = (size_t)L->spp * sb;
    for (uint32_t r = 0; r < rows; r++) {
        const uint8_t *s = src + (size_t)r * src_stride;
        uint8_t *d = (uint8_t *)upres_image_row(img, y + r) + (size_t)x * px;
        if (plane < 0) {
            memcpy(d, s, (size_t)cols * px);
            continue;
        }
        d += (size_t)plane * sb;
        for (uint32_t c = 0; c < cols; c++) memcpy(d + c * px, s + c * sb, sb);
    }
}

/* MINISWHITE inversion and un-premultiplication, in place. */
static void postprocess(upres_image *img, const tiff_layout *L)
{
    const uint32_t ch = img->channels, color = ch >= 3 ? 3 : 1;
    const int alpha = ch == 2 || ch == 4;
    const int invert = L->photometric == PHOTOMETRIC_MINISWHITE;
    if (!invert && !(alpha && L->assoc_alpha)) return;
    for (uint32_t y = 0; y < img->height; y++) {
        void *row = upres_image_row(img, y);
        for (uint32_t x = 0; x < img->width; x++) {
            size_t i = (size_t)x * ch;
            if (img->depth == UPRES_U8) {
                uint8_t *p = (uint8_t *)row + i;
                if (invert)
                    for (uint32_t c = 0; c < color; c++) p[c] = (uint8_t)(255 - p[c]);
                if (alpha && L->assoc_alpha && p[color]) {
                    unsigned a = p[color];
                    for (uint32_t c = 0; c < color; c++) {
                        unsigned v = (p[c] * 255u + a / 2) / a;
                        p[c] = (uint8_t)(v > 255 ? 255 : v);
                    }
                }
            } else if (img->depth == UPRES_U16) {
                uint16_t *p = (uint16_t *)row + i;
                if (invert)
                    for (uint32_t c = 0; c < color; c++) p[c] = (uint16_t)(65535 - p[c]);
                if (alpha && L->assoc_alpha && p[color]) {
                    uint32_t a = p[color];
                    for (uint32_t c = 0; c < color; c++) {
                        uint32_t v = (uint32_t)(((uint64_t)p[c] * 65535u + a / 2) / a);
                        p[c] = (uint16_t)(v > 65535 ? 65535 : v);
                    }
                }
            } else {
                float *p = (float *)row + i;
                if (invert)
                    for (uint32_t c = 0; c < color; c++) p[c] = 1.0f - p[c];
                if (alpha && L->assoc_alpha && p[color] > 0.0f)
                    for (uint32_t c = 0; c < color; c++) p[c] /= p[color];
            }
        }
    }
}

/* Reads every strip of the direct-path image into img. */
static int read_strips(upres_ctx *ctx, TIFF *tif, tiff_stream *s, const tiff_layout *L,
                       upres_image *img)
{
    uint32_t rps = 0;
    if (!TIFFGetFieldDefaulted(tif, TIFFTAG_ROWSPERSTRIP, &rps) || rps == 0 || rps > L->h)
        rps = L->h;
    const int sep = L->planar == PLANARCONFIG_SEPARATE;
    const uint32_t planes = sep ? L->spp : 1;
    const size_t line = (size_t)L->w * (sep ? 1 : L->spp) * L->sample_bytes;
    size_t bufsize;
    if (!upres__mul_size(line, rps, &bufsize))
        return upres__fail(ctx, UPRES_ERR_OVERFLOW, "TIFF: strip size overflows");
    const uint32_t per_plane = L->h / rps + (L->h % rps != 0);
    if ((uint64_t)TIFFNumberOfStrips(tif) < (uint64_t)per_plane * planes)
        return upres__fail(ctx, UPRES_ERR_CORRUPT, "TIFF: %u strips, need %llu",
                           (unsigned)TIFFNumberOfStrips(tif),
                           (unsigned long long)per_plane * planes);
    uint8_t *buf = malloc(bufsize);
    if (!buf) return upres__fail(ctx, UPRES_ERR_NOMEM, "TIFF: strip buffer of %zu bytes", bufsize);
    int st = UPRES_OK;
    for (uint32_t p = 0; p < planes && st == UPRES_OK; p++) {
        for (uint32_t y = 0; y < L->h; y += rps) {
            uint32_t rows = L->h - y < rps ? L->h - y : rps;
            uint32_t strip = TIFFComputeStrip(tif, y, (uint16_t)p);
            tmsize_t want = (tmsize_t)((size_t)rows * line);
            /* A short strip means missing data: refuse it rather than show
             * uninitialised rows. */
            if (TIFFReadEncodedStrip(tif, strip, buf, want) < want) {
                st = tiff_corrupt(ctx, s, "reading a strip");
                break;
            }
            put_block(img, L, buf, line, 0, y, L->w, rows, sep ? (int)p : -1);
        }
    }
    free(buf);
    return st;
}

/* Reads every tile of the direct-path image into img, clipping edge tiles. */
static int read_tiles(upres_ctx *ctx, TIFF *tif, tiff_stream *s, const tiff_layout *L,
                      upres_image *img)
{
    uint32_t tw = 0, th = 0;
    if (!TIFFGetField(tif, TIFFTAG_TILEWIDTH, &tw) || !TIFFGetField(tif, TIFFTAG_TILELENGTH, &th) ||
        tw == 0 || th == 0)
        return upres__fail(ctx, UPRES_ERR_CORRUPT, "TIFF: bad tile size");
    const int sep = L->planar == PLANARCONFIG_SEPARATE;
    const uint32_t planes = sep ? L->spp : 1;
    size_t line, bufsize;
    if (!upres__mul_size((size_t)tw, (sep ? 1 : L->spp) * L->sample_bytes, &line) ||
        !upres__mul_size(line, th, &bufsize))
        return upres__fail(ctx, UPRES_ERR_OVERFLOW, "TIFF: tile size overflows");
    /* A hostile file can declare enormous tiles over a tiny image. */
    const upres_limits *lim = upres__limits(ctx);
    if ((uint64_t)bufsize > lim->max_memory_bytes || (uint64_t)TIFFTileSize64(tif) != bufsize)
        return upres__fail(ctx, UPRES_ERR_LIMIT, "TIFF: %ux%u tiles are too large or inconsistent",
                           (unsigned)tw, (unsigned)th);
    uint8_t *buf = malloc(bufsize);
    if (!buf) return upres__fail(ctx, UPRES_ERR_NOMEM, "TIFF: tile buffer of %zu bytes", bufsize);
    int st = UPRES_OK;
    const uint32_t ntiles = TIFFNumberOfTiles(tif);
    for (uint32_t p = 0; p < planes && st == UPRES_OK; p++) {
        for (uint32_t ty = 0; ty < L->h && st == UPRES_OK; ty += th) {
            for (uint32_t tx = 0; tx < L->w; tx += tw) {
                uint32_t idx = TIFFComputeTile(tif, tx, ty, 0, (uint16_t)p);
                if (idx >= ntiles) {
                    st = upres__fail(ctx, UPRES_ERR_CORRUPT, "TIFF: tile %u missing", (unsigned)idx);
                    break;
                }
                if (TIFFReadEncodedTile(tif, idx, buf, (tmsize_t)bufsize) < (tmsize_t)bufsize) {
                    st = tiff_corrupt(ctx, s, "reading a tile");
                    break;
                }
                uint32_t cols = L->w - tx < tw ? L->w - tx : tw;
                uint32_t rows = L->h - ty < th ? L->h - ty : th;
                put_block(img, L, buf, line, tx, ty, cols, rows, sep ? (int)p : -1);
            }
        }
    }
    free(buf);
    return st;
}

/* Decodes through libtiff's RGBA renderer into u8 gray/RGB with optional
 * alpha. Rows come back in stored order (see below), so img->orientation
 * still applies afterwards exactly as in the direct path. */
static int decode_rgba(upres_ctx *ctx, TIFF *tif, tiff_stream *s, uint32_t w, uint32_t h,
                       int orientation, upres_image **out, upres_file_info *info)
{
    char emsg[1024] = "";
    if (!TIFFRGBAImageOK(tif, emsg))
        return upres__fail(ctx, UPRES_ERR_UNSUPPORTED, "TIFF: %s", emsg[0] ? emsg : "unsupported layout");
    uint16_t photometric = 0, extra = 0, *extra_types = NULL;
    TIFFGetFieldDefaulted(tif, TIFFTAG_PHOTOMETRIC, &photometric);
    TIFFGetFieldDefaulted(tif, TIFFTAG_EXTRASAMPLES, &extra, &extra_types);
    const int gray = photometric == PHOTOMETRIC_MINISBLACK || photometric == PHOTOMETRIC_MINISWHITE;
    const int alpha = extra > 0;
    const uint32_t ch = (gray ? 1 : 3) + (alpha ? 1 : 0);
    info->cmyk = photometric == PHOTOMETRIC_SEPARATED;
    const upres_limits *lim = upres__limits(ctx);
    int st = upres_limits_check(lim, w, h, 4, 1);
    if (st != UPRES_OK) return upres__fail(ctx, st, "TIFF: %ux%u image exceeds the limits", w, h);
    upres_image *img;
    if ((st = upres_image_new(&img, w, h, ch, UPRES_U8, lim)) != UPRES_OK)
        return upres__fail(ctx, st, "TIFF: %ux%u image", w, h);
    uint32_t *raster = malloc((size_t)w * h * sizeof *raster);
    if (!raster) {
        upres_image_free(img);
        return upres__fail(ctx, UPRES_ERR_NOMEM, "TIFF: %ux%u RGBA raster", w, h);
    }
    /* libtiff flips rows/columns from the file's orientation to the requested
     * one (but never transposes). Requesting the file's own orientation
     * yields the stored order, leaving the whole rotation to io.c. */
    if (!TIFFReadRGBAImageOriented(tif, w, h, raster, orientation, 1)) {
        free(raster);
        upres_image_free(img);
        return tiff_corrupt(ctx, s, "decoding");
    }
    for (uint32_t y = 0; y < h; y++) {
        uint8_t *d = upres_image_row(img, y);
        const uint32_t *r = raster + (size_t)y * w;
        for (uint32_t x = 0; x < w; x++) {
            uint32_t p = r[x];
            uint8_t c[4] = {(uint8_t)TIFFGetR(p), (uint8_t)TIFFGetG(p), (uint8_t)TIFFGetB(p),
                            (uint8_t)TIFFGetA(p)};
            /* The renderer always premultiplies alpha. */
            if (alpha && c[3] && c[3] < 255)
                for (int k = 0; k < 3; k++) {
                    unsigned v = (c[k] * 255u + c[3] / 2u) / c[3];
                    c[k] = (uint8_t)(v > 255 ? 255 : v);
                }
            if (gray) {
                d[0] = c[0];
                if (alpha) d[1] = c[3];
                d += ch;
            } else {
                memcpy(d, c, ch);
                d += ch;
            }
        }
    }
    free(raster);
    *out = img;
    return UPRES_OK;
}

int upres__tiff_decode(upres_ctx *ctx, const uint8_t *buf, size_t size, upres_image **out,
                       upres_file_info *info)
{
    *out = NULL;
    const upres_limits *lim = upres__limits(ctx);
    tiff_stream s;
    memset(&s, 0, sizeof s);
    s.data = (uint8_t *)(uintptr_t)buf; /* read-only: ts_write refuses */
    s.size = size;
    TIFF *tif = ts_open(&s, "r", lim->max_memory_bytes);
    if (!tif) return tiff_corrupt(ctx, &s, "not a readable TIFF");

    tiff_layout L;
    memset(&L, 0, sizeof L);
    uint16_t fmt = SAMPLEFORMAT_UINT, orientation = ORIENTATION_TOPLEFT, compression = 0;
    TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &L.w);
    TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &L.h);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &L.spp);
    TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &L.bps);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLEFORMAT, &fmt);
    TIFFGetFieldDefaulted(tif, TIFFTAG_PLANARCONFIG, &L.planar);
    TIFFGetFieldDefaulted(tif, TIFFTAG_COMPRESSION, &compression);
    if (!TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &L.photometric))
        L.photometric = L.spp >= 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK;
    TIFFGetFieldDefaulted(tif, TIFFTAG_ORIENTATION, &orientation);
    if (orientation < 1 || orientation > 8) orientation = ORIENTATION_TOPLEFT;

    info->width = L.w;
    info->height = L.h;
    info->bits_per_sample = L.bps;
    info->is_float = fmt == SAMPLEFORMAT_IEEEFP;
    int st = UPRES_OK;
    upres_image *img = NULL;
    if (L.w == 0 || L.h == 0) {
        st = upres__fail(ctx, UPRES_ERR_CORRUPT, "TIFF: image of %ux%u pixels", L.w, L.h);
        goto done;
    }
    st = upres_limits_check(lim, L.w, L.h, 1, 1);
    if (st != UPRES_OK) {
        st = upres__fail(ctx, st, "TIFF: %ux%u image exceeds the limits", L.w, L.h);
        goto done;
    }

    /* Channels of the direct path: colour samples per the photometric
     * interpretation plus at most one extra sample, taken as alpha. */
    uint32_t color = L.photometric == PHOTOMETRIC_RGB ? 3
                     : (L.photometric == PHOTOMETRIC_MINISBLACK ||
                        L.photometric == PHOTOMETRIC_MINISWHITE) ? 1 : 0;
    int int_ok = fmt == SAMPLEFORMAT_UINT && (L.bps == 8 || L.bps == 16);
    int float_ok = fmt == SAMPLEFORMAT_IEEEFP && L.bps == 32;
    int direct = color && (int_ok || float_ok) && L.spp >= color && L.spp <= color + 1 &&
                 (L.planar == PLANARCONFIG_CONTIG || L.planar == PLANARCONFIG_SEPARATE) &&
                 compression != COMPRESSION_OJPEG;
    if (!direct && (fmt == SAMPLEFORMAT_IEEEFP || fmt == SAMPLEFORMAT_INT ||
                    fmt == SAMPLEFORMAT_COMPLEXINT || fmt == SAMPLEFORMAT_COMPLEXIEEEFP)) {
        st = upres__fail(ctx, UPRES_ERR_UNSUPPORTED,
                         "TIFF: %u-bit %s samples with %u per pixel, photometric %u", L.bps,
                         fmt == SAMPLEFORMAT_IEEEFP ? "float" : "signed/complex", L.spp,
                         L.photometric);
        goto done;
    }
    if (direct) {
        if (L.spp > color) {
            uint16_t n = 0, *types = NULL;
            if (TIFFGetField(tif, TIFFTAG_EXTRASAMPLES, &n, &types) && n >= 1 && types)
                L.assoc_alpha = types[0] == EXTRASAMPLE_ASSOCALPHA;
        }
        L.sample_bytes = L.bps / 8;
        upres_depth depth = float_ok ? UPRES_F32 : L.bps == 16 ? UPRES_U16 : UPRES_U8;
        size_t line = (size_t)L.w * L.spp * L.sample_bytes;
        if (L.planar == PLANARCONFIG_SEPARATE) line = (size_t)L.w * L.sample_bytes;
        /* Our row arithmetic must agree with libtiff's, or a strip/tile
         * buffer could be misread. */
        if (!TIFFIsTiled(tif) && (uint64_t)TIFFScanlineSize64(tif) != line) {
            st = upres__fail(ctx, UPRES_ERR_UNSUPPORTED, "TIFF: unexpected scanline size");
            goto done;
        }
        st = upres_limits_check(lim, L.w, L.h, L.spp, (uint32_t)L.sample_bytes);
        if (st == UPRES_OK) st = upres_image_new(&img, L.w, L.h, L.spp, depth, lim);
        if (st != UPRES_OK) {
            st = upres__fail(ctx, st, "TIFF: %ux%u image of %u channels", L.w, L.h, L.spp);
            goto done;
        }
        st = TIFFIsTiled(tif) ? read_tiles(ctx, tif, &s, &L, img) : read_strips(ctx, tif, &s, &L, img);
        if (st != UPRES_OK) goto done;
        postprocess(img, &L);
    } else {
        st = decode_rgba(ctx, tif, &s, L.w, L.h, orientation, &img, info);
        if (st != UPRES_OK) goto done;
    }
    img->orientation = orientation;

    uint32_t icc_len = 0;
    void *icc = NULL;
    if (TIFFGetField(tif, TIFFTAG_ICCPROFILE, &icc_len, &icc) && icc && icc_len > 0 &&
        icc_len <= lim->max_metadata_bytes) {
        if ((st = upres_image_set_icc(img, icc, icc_len)) != UPRES_OK) {
            st = upres__fail(ctx, st, "TIFF: ICC profile of %u bytes", (unsigned)icc_len);
            goto done;
        }
    }
    /* Counting walks only the IFD offset chain; a broken chain past the first
     * directory does not make the image unreadable. */
    tdir_t ndirs = TIFFNumberOfDirectories(tif);
    info->frames = ndirs >= 1 && ndirs <= INT_MAX ? (int)ndirs : 1;

done:
    TIFFClose(tif);
    if (st != UPRES_OK) {
        upres_image_free(img);
        return st;
    }
    *out = img;
    return UPRES_OK;
}

/* ------------------------------------------------------------------------ */
/* Encoding                                                                  */

int upres__tiff_encode(upres_ctx *ctx, const upres_image *img, const upres_encode_desc *desc,
                       const uint8_t *icc, size_t icc_size, uint8_t **out, size_t *out_size)
{
    (void)desc;
    *out = NULL;
    *out_size = 0;
    const uint32_t w = img->width, h = img->height, ch = img->channels;
    const size_t sb = upres_depth_bytes(img->depth);
    if (ch < 1 || ch > 4 || sb == 0 || w == 0 || h == 0)
        return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "TIFF: bad image layout");
    if (icc_size > UINT32_MAX)
        return upres__fail(ctx, UPRES_ERR_UNSUPPORTED, "TIFF: ICC profile too large");
    size_t line;
    if (!upres__mul_size((size_t)w * ch, sb, &line))
        return upres__fail(ctx, UPRES_ERR_OVERFLOW, "TIFF: row size overflows");
    /* About 256 KiB per strip: large enough for deflate, small enough to
     * keep the scratch buffer modest. */
    uint32_t rps = (uint32_t)((256u * 1024u) / line);
    if (rps < 1) rps = 1;
    if (rps > h) rps = h;
    size_t bufsize;
    if (!upres__mul_size(line, rps, &bufsize))
        return upres__fail(ctx, UPRES_ERR_OVERFLOW, "TIFF: strip size overflows");

    tiff_stream s;
    memset(&s, 0, sizeof s);
    s.writable = 1;
    /* Plain "w" picks classic TIFF; images over 4 GiB need BigTIFF. */
    uint64_t total = (uint64_t)line * h;
    TIFF *tif = ts_open(&s, total > ((uint64_t)3 << 30) ? "w8" : "w", 0);
    if (!tif) {
        free(s.data);
        return upres__fail(ctx, s.failed ? UPRES_ERR_NOMEM : UPRES_ERR_IO, "TIFF: cannot start: %s",
                           s.msg);
    }
    uint8_t *scratch = malloc(bufsize);
    int st = UPRES_OK;
    if (!scratch) {
        st = upres__fail(ctx, UPRES_ERR_NOMEM, "TIFF: strip buffer of %zu bytes", bufsize);
        goto done;
    }
    int ok = 1;
    ok &= TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, w);
    ok &= TIFFSetField(tif, TIFFTAG_IMAGELENGTH, h);
    ok &= TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, (uint16_t)(sb * 8));
    ok &= TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, (uint16_t)ch);
    ok &= TIFFSetField(tif, TIFFTAG_SAMPLEFORMAT,
                       img->depth == UPRES_F32 ? SAMPLEFORMAT_IEEEFP : SAMPLEFORMAT_UINT);
    ok &= TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, ch >= 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK);
    ok &= TIFFSetField(tif, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
    if (ch == 2 || ch == 4) {
        uint16_t extra[1] = {EXTRASAMPLE_UNASSALPHA};
        ok &= TIFFSetField(tif, TIFFTAG_EXTRASAMPLES, 1, extra);
    }
    ok &= TIFFSetField(tif, TIFFTAG_COMPRESSION, COMPRESSION_ADOBE_DEFLATE);
    ok &= TIFFSetField(tif, TIFFTAG_PREDICTOR,
                       img->depth == UPRES_F32 ? PREDICTOR_FLOATINGPOINT : PREDICTOR_HORIZONTAL);
    ok &= TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, rps);
    /* An orientation still pending on the pixels is recorded, not lost. */
    int orient = img->orientation >= 1 && img->orientation <= 8 ? img->orientation : 1;
    ok &= TIFFSetField(tif, TIFFTAG_ORIENTATION, (uint16_t)orient);
    if (icc && icc_size) ok &= TIFFSetField(tif, TIFFTAG_ICCPROFILE, (uint32_t)icc_size, icc);
    if (!ok) {
        st = upres__fail(ctx, UPRES_ERR_IO, "TIFF: setting tags: %s", s.msg);
        goto done;
    }
    for (uint32_t y = 0, strip = 0; y < h; y += rps, strip++) {
        uint32_t rows = h - y < rps ? h - y : rps;
        /* libtiff's predictor works in place, and img is const. */
        for (uint32_t r = 0; r < rows; r++)
            memcpy(scratch + (size_t)r * line, upres_image_row(img, y + r), line);
        if (TIFFWriteEncodedStrip(tif, strip, scratch, (tmsize_t)((size_t)rows * line)) < 0) {
            st = upres__fail(ctx, s.failed ? UPRES_ERR_NOMEM : UPRES_ERR_IO, "TIFF: writing a strip: %s",
                             s.msg);
            goto done;
        }
    }
    if (!TIFFWriteDirectory(tif)) {
        st = upres__fail(ctx, s.failed ? UPRES_ERR_NOMEM : UPRES_ERR_IO, "TIFF: writing the directory: %s",
                         s.msg);
        goto done;
    }
done:
    TIFFClose(tif);
    free(scratch);
    if (st == UPRES_OK && s.failed) st = upres__fail(ctx, UPRES_ERR_NOMEM, "TIFF: output buffer");
    if (st != UPRES_OK) {
        free(s.data);
        return st;
    }
    *out = s.data;
    *out_size = s.size;
    return UPRES_OK;
}
