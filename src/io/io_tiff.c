/* TIFF codec on libtiff 4.5: decodes the first directory of a TIFF held in
 * memory, encodes u8/u16/f32 1-4 channel images into memory.
 *
 * Decoding takes one of two paths. The direct path reads strips or tiles of
 * 8/16-bit unsigned or 32-bit float MINISBLACK/MINISWHITE/RGB images itself
 * (contiguous or separate planes) and keeps the full precision. Everything
 * else libtiff can render (palette, 1/2/4-bit, YCbCr, CMYK, ...) goes through
 * TIFFReadRGBAImageOriented and becomes u8. libtiff's messages go to per-handle
 * handlers, never to stderr or to global state.
 *
 * The direct path works in bands (one strip per plane, or one row of tiles),
 * shared by the whole-image decoder and the streaming one; the encoders share
 * their tags and strip writing. Files are read with pread and written with
 * pwrite through the same stream procs as memory, so the bytes agree. */
#include "io_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include <tiffio.h>

/* ------------------------------------------------------------------------ */
/* Memory streams for TIFFClientOpenExt                                      */

/* A seekable file in memory or on a descriptor. Memory, reading: data/size
 * is the caller's buffer (never written). Memory, writing: data is malloc()ed
 * and grows; bytes skipped by a seek past the end read as zero. Descriptor
 * (fd >= 0): pread/pwrite at pos, size tracks the end (a seek past it leaves
 * a hole, which reads as zero too). `msg` holds libtiff's first error. */
typedef struct tiff_stream {
    uint8_t *data;
    uint64_t size;
    size_t cap;
    uint64_t pos;
    int fd;       /* -1: memory */
    int writable;
    int failed;   /* an allocation for writing failed */
    int err;      /* errno of a failed pread/pwrite */
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
    if (s->fd >= 0) {
        size_t got = 0;
        while (got < k) {
            ssize_t r = pread(s->fd, (uint8_t *)buf + got, k - got, (off_t)(s->pos + got));
            if (r < 0 && errno == EINTR) continue;
            if (r < 0) {
                s->err = errno;
                return -1;
            }
            if (r == 0) break;
            got += (size_t)r;
        }
        s->pos += got;
        return (tmsize_t)got;
    }
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
    if (s->fd >= 0) {
        if (s->err) return -1;
        size_t done = 0;
        while (done < (size_t)n) {
            ssize_t w = pwrite(s->fd, (const uint8_t *)buf + done, (size_t)n - done,
                               (off_t)(s->pos + done));
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) {
                s->err = w < 0 ? errno : EIO;
                return -1;
            }
            done += (size_t)w;
        }
        s->pos += (uint64_t)n;
        if (s->pos > s->size) s->size = s->pos;
        return n;
    }
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
    if (s->writable || s->fd >= 0) return 0;
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
    upres_depth depth;
} tiff_layout;

/* Copies `rows` rows of `cols` pixels of decoded strip/tile data (rows
 * `src_stride` bytes apart) to column x of the rows at dst (`dst_stride`
 * bytes apart, L->spp samples per pixel). `plane` < 0: the data holds all
 * samples interleaved; otherwise only sample `plane`. */
static void put_block(uint8_t *dst, size_t dst_stride, const tiff_layout *L, const uint8_t *src,
                      size_t src_stride, uint32_t x, uint32_t cols, uint32_t rows, int plane)
{
    const size_t sb = L->sample_bytes, px = (size_t)L->spp * sb;
    for (uint32_t r = 0; r < rows; r++) {
        const uint8_t *s = src + (size_t)r * src_stride;
        uint8_t *d = dst + (size_t)r * dst_stride + (size_t)x * px;
        if (plane < 0) {
            memcpy(d, s, (size_t)cols * px);
            continue;
        }
        d += (size_t)plane * sb;
        for (uint32_t c = 0; c < cols; c++) memcpy(d + c * px, s + c * sb, sb);
    }
}

/* MINISWHITE inversion and un-premultiplication, in place, of `rows` rows
 * of L->w pixels at dst (`stride` bytes apart). */
static void postprocess(uint8_t *dst, size_t stride, uint32_t rows, const tiff_layout *L)
{
    const uint32_t ch = L->spp, color = ch >= 3 ? 3 : 1;
    const int alpha = ch == 2 || ch == 4;
    const int invert = L->photometric == PHOTOMETRIC_MINISWHITE;
    if (!invert && !(alpha && L->assoc_alpha)) return;
    for (uint32_t y = 0; y < rows; y++) {
        void *row = dst + (size_t)y * stride;
        for (uint32_t x = 0; x < L->w; x++) {
            size_t i = (size_t)x * ch;
            if (L->depth == UPRES_U8) {
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
            } else if (L->depth == UPRES_U16) {
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

/* Reads a direct-path image band by band: a band is one strip (of every
 * plane) or one row of tiles, `rows` image rows tall (the last one may be
 * shorter). */
typedef struct tiff_bands {
    upres_ctx *ctx;
    TIFF *tif;
    tiff_stream *s;
    const tiff_layout *L;
    int tiled, sep;
    uint32_t rows;      /* rows per strip, or tile height */
    uint32_t tw;        /* tile width */
    size_t line;        /* bytes of one decoded strip/tile row (one plane if separate) */
    size_t out_line;    /* bytes of one image row */
    uint8_t *buf;       /* scratch for one strip/tile; NULL when strips go straight to dst */
    size_t bufsize;
} tiff_bands;

/* Validates the strip or tile structure and allocates the scratch buffer. */
static int bands_init(tiff_bands *b, upres_ctx *ctx, TIFF *tif, tiff_stream *s, const tiff_layout *L)
{
    memset(b, 0, sizeof *b);
    b->ctx = ctx;
    b->tif = tif;
    b->s = s;
    b->L = L;
    b->tiled = TIFFIsTiled(tif);
    b->sep = L->planar == PLANARCONFIG_SEPARATE;
    const uint32_t planes = b->sep ? L->spp : 1;
    const size_t spx = (size_t)(b->sep ? 1 : L->spp) * L->sample_bytes;
    b->out_line = (size_t)L->w * L->spp * L->sample_bytes;
    if (!b->tiled) {
        uint32_t rps = 0;
        if (!TIFFGetFieldDefaulted(tif, TIFFTAG_ROWSPERSTRIP, &rps) || rps == 0 || rps > L->h)
            rps = L->h;
        b->rows = rps;
        b->line = (size_t)L->w * spx;
        const uint32_t per_plane = L->h / rps + (L->h % rps != 0);
        if ((uint64_t)TIFFNumberOfStrips(tif) < (uint64_t)per_plane * planes)
            return upres__fail(ctx, UPRES_ERR_CORRUPT, "TIFF: %u strips, need %llu",
                               (unsigned)TIFFNumberOfStrips(tif),
                               (unsigned long long)per_plane * planes);
        /* Contiguous strips decode straight into the destination rows. */
        if (!b->sep) return UPRES_OK;
        if (!upres__mul_size(b->line, rps, &b->bufsize))
            return upres__fail(ctx, UPRES_ERR_OVERFLOW, "TIFF: strip size overflows");
    } else {
        uint32_t tw = 0, th = 0;
        if (!TIFFGetField(tif, TIFFTAG_TILEWIDTH, &tw) || !TIFFGetField(tif, TIFFTAG_TILELENGTH, &th) ||
            tw == 0 || th == 0)
            return upres__fail(ctx, UPRES_ERR_CORRUPT, "TIFF: bad tile size");
        b->tw = tw;
        b->rows = th;
        if (!upres__mul_size((size_t)tw, spx, &b->line) || !upres__mul_size(b->line, th, &b->bufsize))
            return upres__fail(ctx, UPRES_ERR_OVERFLOW, "TIFF: tile size overflows");
        /* A hostile file can declare enormous tiles over a tiny image. */
        const upres_limits *lim = upres__limits(ctx);
        if ((uint64_t)b->bufsize > lim->max_memory_bytes || (uint64_t)TIFFTileSize64(tif) != b->bufsize)
            return upres__fail(ctx, UPRES_ERR_LIMIT, "TIFF: %ux%u tiles are too large or inconsistent",
                               (unsigned)tw, (unsigned)th);
    }
    b->buf = malloc(b->bufsize);
    if (!b->buf)
        return upres__fail(ctx, UPRES_ERR_NOMEM, "TIFF: %s buffer of %zu bytes",
                           b->tiled ? "tile" : "strip", b->bufsize);
    return UPRES_OK;
}

static void bands_free(tiff_bands *b)
{
    free(b->buf);
    b->buf = NULL;
}

/* Decodes the band of image rows [y0, y0 + n) (y0 a multiple of b->rows,
 * n = min(b->rows, h - y0)) into dst, rows b->out_line bytes apart, and
 * post-processes it. */
static int bands_read(tiff_bands *b, uint32_t y0, uint8_t *dst)
{
    const tiff_layout *L = b->L;
    TIFF *tif = b->tif;
    const uint32_t planes = b->sep ? L->spp : 1;
    const uint32_t n = L->h - y0 < b->rows ? L->h - y0 : b->rows;
    for (uint32_t p = 0; p < planes; p++) {
        if (!b->tiled) {
            uint32_t strip = TIFFComputeStrip(tif, y0, (uint16_t)p);
            tmsize_t want = (tmsize_t)((size_t)n * b->line);
            /* A short strip means missing data: refuse it rather than show
             * uninitialised rows. */
            if (TIFFReadEncodedStrip(tif, strip, b->sep ? b->buf : dst, want) < want)
                return tiff_corrupt(b->ctx, b->s, "reading a strip");
            if (b->sep) put_block(dst, b->out_line, L, b->buf, b->line, 0, L->w, n, (int)p);
            continue;
        }
        const uint32_t ntiles = TIFFNumberOfTiles(tif);
        for (uint32_t tx = 0; tx < L->w; tx += b->tw) {
            uint32_t idx = TIFFComputeTile(tif, tx, y0, 0, (uint16_t)p);
            if (idx >= ntiles)
                return upres__fail(b->ctx, UPRES_ERR_CORRUPT, "TIFF: tile %u missing", (unsigned)idx);
            if (TIFFReadEncodedTile(tif, idx, b->buf, (tmsize_t)b->bufsize) < (tmsize_t)b->bufsize)
                return tiff_corrupt(b->ctx, b->s, "reading a tile");
            uint32_t cols = L->w - tx < b->tw ? L->w - tx : b->tw;
            put_block(dst, b->out_line, L, b->buf, b->line, tx, cols, n, b->sep ? (int)p : -1);
        }
    }
    postprocess(dst, b->out_line, n, L);
    return UPRES_OK;
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

/* What tiff_probe found in the first directory. */
typedef struct tiff_probe_out {
    tiff_layout L;     /* valid when direct */
    int direct;        /* 1: the direct path reads it; 0: the RGBA renderer */
    uint16_t orientation;
} tiff_probe_out;

/* Reads the tags of the current directory, fills `info`, checks the size
 * against the limits and chooses the decoding path. */
static int tiff_probe(upres_ctx *ctx, TIFF *tif, tiff_probe_out *P, upres_file_info *info)
{
    const upres_limits *lim = upres__limits(ctx);
    tiff_layout *L = &P->L;
    memset(P, 0, sizeof *P);
    uint16_t fmt = SAMPLEFORMAT_UINT, orientation = ORIENTATION_TOPLEFT, compression = 0;
    TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &L->w);
    TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &L->h);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &L->spp);
    TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &L->bps);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLEFORMAT, &fmt);
    TIFFGetFieldDefaulted(tif, TIFFTAG_PLANARCONFIG, &L->planar);
    TIFFGetFieldDefaulted(tif, TIFFTAG_COMPRESSION, &compression);
    if (!TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &L->photometric))
        L->photometric = L->spp >= 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK;
    TIFFGetFieldDefaulted(tif, TIFFTAG_ORIENTATION, &orientation);
    if (orientation < 1 || orientation > 8) orientation = ORIENTATION_TOPLEFT;
    P->orientation = orientation;

    info->width = L->w;
    info->height = L->h;
    info->bits_per_sample = L->bps;
    info->is_float = fmt == SAMPLEFORMAT_IEEEFP;
    if (L->w == 0 || L->h == 0)
        return upres__fail(ctx, UPRES_ERR_CORRUPT, "TIFF: image of %ux%u pixels", L->w, L->h);
    int st = upres_limits_check(lim, L->w, L->h, 1, 1);
    if (st != UPRES_OK) return upres__fail(ctx, st, "TIFF: %ux%u image exceeds the limits", L->w, L->h);

    /* Channels of the direct path: colour samples per the photometric
     * interpretation plus at most one extra sample, taken as alpha. */
    uint32_t color = L->photometric == PHOTOMETRIC_RGB ? 3
                     : (L->photometric == PHOTOMETRIC_MINISBLACK ||
                        L->photometric == PHOTOMETRIC_MINISWHITE) ? 1 : 0;
    int int_ok = fmt == SAMPLEFORMAT_UINT && (L->bps == 8 || L->bps == 16);
    int float_ok = fmt == SAMPLEFORMAT_IEEEFP && L->bps == 32;
    P->direct = color && (int_ok || float_ok) && L->spp >= color && L->spp <= color + 1 &&
                (L->planar == PLANARCONFIG_CONTIG || L->planar == PLANARCONFIG_SEPARATE) &&
                compression != COMPRESSION_OJPEG;
    if (!P->direct && (fmt == SAMPLEFORMAT_IEEEFP || fmt == SAMPLEFORMAT_INT ||
                       fmt == SAMPLEFORMAT_COMPLEXINT || fmt == SAMPLEFORMAT_COMPLEXIEEEFP))
        return upres__fail(ctx, UPRES_ERR_UNSUPPORTED,
                           "TIFF: %u-bit %s samples with %u per pixel, photometric %u", L->bps,
                           fmt == SAMPLEFORMAT_IEEEFP ? "float" : "signed/complex", L->spp,
                           L->photometric);
    if (!P->direct) return UPRES_OK;
    if (L->spp > color) {
        uint16_t n = 0, *types = NULL;
        if (TIFFGetField(tif, TIFFTAG_EXTRASAMPLES, &n, &types) && n >= 1 && types)
            L->assoc_alpha = types[0] == EXTRASAMPLE_ASSOCALPHA;
    }
    L->sample_bytes = L->bps / 8;
    L->depth = float_ok ? UPRES_F32 : L->bps == 16 ? UPRES_U16 : UPRES_U8;
    size_t line = (size_t)L->w * L->spp * L->sample_bytes;
    if (L->planar == PLANARCONFIG_SEPARATE) line = (size_t)L->w * L->sample_bytes;
    /* Our row arithmetic must agree with libtiff's, or a strip/tile buffer
     * could be misread. */
    if (!TIFFIsTiled(tif) && (uint64_t)TIFFScanlineSize64(tif) != line)
        return upres__fail(ctx, UPRES_ERR_UNSUPPORTED, "TIFF: unexpected scanline size");
    st = upres_limits_check(lim, L->w, L->h, L->spp, (uint32_t)L->sample_bytes);
    if (st != UPRES_OK)
        return upres__fail(ctx, st, "TIFF: %ux%u image of %u channels", L->w, L->h, L->spp);
    return UPRES_OK;
}

/* The ICC profile of the current directory (bounded by the metadata limit)
 * as a malloc()ed copy, or NULL/0. */
static int tiff_get_icc(upres_ctx *ctx, TIFF *tif, uint8_t **out, size_t *size)
{
    *out = NULL;
    *size = 0;
    uint32_t icc_len = 0;
    void *icc = NULL;
    if (TIFFGetField(tif, TIFFTAG_ICCPROFILE, &icc_len, &icc) && icc && icc_len > 0 &&
        icc_len <= upres__limits(ctx)->max_metadata_bytes) {
        *out = malloc(icc_len);
        if (!*out)
            return upres__fail(ctx, UPRES_ERR_NOMEM, "TIFF: ICC profile of %u bytes", (unsigned)icc_len);
        memcpy(*out, icc, icc_len);
        *size = icc_len;
    }
    return UPRES_OK;
}

/* Number of directories, for info->frames. Counting walks only the IFD
 * offset chain; a broken chain past the first directory does not make the
 * image unreadable. */
static int tiff_frames(TIFF *tif)
{
    tdir_t ndirs = TIFFNumberOfDirectories(tif);
    return ndirs >= 1 && ndirs <= INT_MAX ? (int)ndirs : 1;
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
    s.fd = -1;
    TIFF *tif = ts_open(&s, "r", lim->max_memory_bytes);
    if (!tif) return tiff_corrupt(ctx, &s, "not a readable TIFF");

    tiff_probe_out P;
    upres_image *img = NULL;
    int st = tiff_probe(ctx, tif, &P, info);
    if (st != UPRES_OK) goto done;
    if (P.direct) {
        st = upres_image_new(&img, P.L.w, P.L.h, P.L.spp, P.L.depth, lim);
        if (st != UPRES_OK) {
            st = upres__fail(ctx, st, "TIFF: %ux%u image of %u channels", P.L.w, P.L.h, P.L.spp);
            goto done;
        }
        tiff_bands b;
        st = bands_init(&b, ctx, tif, &s, &P.L);
        /* The image is packed, so each band goes straight to its rows. */
        for (uint32_t y = 0; y < P.L.h && st == UPRES_OK; y += b.rows)
            st = bands_read(&b, y, upres_image_row(img, y));
        bands_free(&b);
        if (st != UPRES_OK) goto done;
    } else {
        st = decode_rgba(ctx, tif, &s, P.L.w, P.L.h, P.orientation, &img, info);
        if (st != UPRES_OK) goto done;
    }
    img->orientation = P.orientation;
    uint8_t *icc;
    size_t icc_size;
    if ((st = tiff_get_icc(ctx, tif, &icc, &icc_size)) != UPRES_OK) goto done;
    if (icc) upres__image_take_icc(img, icc, icc_size);
    info->frames = tiff_frames(tif);

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
/* Streaming decoder                                                         */

/* Bands (strips or tile rows) above this many bytes are not buffered whole
 * by the streaming reader: contiguous strips are then read line by line,
 * and other layouts are decoded whole. */
#define TIFF_STREAM_BAND_MAX ((size_t)32 << 20)

typedef struct tiff_rows {
    upres__rowdec base; /* first: the decoder is passed around as its base */
    upres_ctx *ctx;
    tiff_stream s;
    TIFF *tif;
    tiff_layout L;
    tiff_bands b;
    int scanline;       /* rows come from TIFFReadScanline, no band buffer */
    uint8_t *band;      /* decoded rows [band_y, band_y + band_n) */
    uint32_t band_y, band_n;
    uint32_t y;         /* next row to deliver */
} tiff_rows;

static void tiff_rows_destroy(upres__rowdec *d)
{
    tiff_rows *r = (tiff_rows *)d;
    if (!r) return;
    if (r->tif) TIFFClose(r->tif);
    bands_free(&r->b);
    free(r->band);
    free(r->base.icc);
    free(r);
}

static int tiff_rows_read(upres__rowdec *d, uint8_t *dst, size_t stride, uint32_t rows)
{
    tiff_rows *r = (tiff_rows *)d;
    const size_t line = r->b.out_line;
    for (uint32_t i = 0; i < rows; i++, r->y++) {
        uint8_t *out = dst + (size_t)i * stride;
        if (r->scanline) {
            /* Through r->band (one line): postprocess needs aligned samples,
             * the caller's rows need not be. */
            if (TIFFReadScanline(r->tif, r->band, r->y, 0) < 0)
                return tiff_corrupt(r->ctx, &r->s, "reading a line");
            postprocess(r->band, line, 1, &r->L);
            memcpy(out, r->band, line);
            continue;
        }
        if (r->y >= r->band_y + r->band_n) {
            int st = bands_read(&r->b, r->y, r->band);
            if (st != UPRES_OK) return st;
            r->band_y = r->y;
            r->band_n = r->L.h - r->y < r->b.rows ? r->L.h - r->y : r->b.rows;
        }
        memcpy(out, r->band + (size_t)(r->y - r->band_y) * line, line);
    }
    return UPRES_OK;
}

int upres__tiff_rows_open(upres_ctx *ctx, FILE *f, int apply_orientation, upres__rowdec **out,
                          upres_file_info *info)
{
    *out = NULL;
    const upres_limits *lim = upres__limits(ctx);
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0) return upres__fail(ctx, UPRES_ERR_IO, "TIFF: %s", strerror(errno));
    tiff_rows *r = calloc(1, sizeof *r);
    if (!r) return upres__fail(ctx, UPRES_ERR_NOMEM, "TIFF: out of memory");
    r->ctx = ctx;
    r->s.fd = fileno(f);
    r->s.size = (uint64_t)sb.st_size;
    r->tif = ts_open(&r->s, "r", lim->max_memory_bytes);
    int st = UPRES_OK;
    if (!r->tif) {
        st = r->s.err ? upres__fail(ctx, UPRES_ERR_IO, "TIFF: reading the file: %s", strerror(r->s.err))
                      : tiff_corrupt(ctx, &r->s, "not a readable TIFF");
        goto fail;
    }
    tiff_probe_out P;
    if ((st = tiff_probe(ctx, r->tif, &P, info)) != UPRES_OK) goto fail;
    /* The RGBA renderer needs the whole raster anyway; an orientation to
     * apply needs the whole image. */
    if (!P.direct || (apply_orientation && P.orientation != 1)) goto whole;
    r->L = P.L;
    if ((st = bands_init(&r->b, ctx, r->tif, &r->s, &r->L)) != UPRES_OK) goto fail;
    size_t band_bytes;
    if (!upres__mul_size(r->b.out_line, r->b.rows, &band_bytes))
        band_bytes = SIZE_MAX;
    if (band_bytes > TIFF_STREAM_BAND_MAX) {
        /* Only contiguous strips can be read a line at a time in order. */
        if (r->b.tiled || r->b.sep) goto whole;
        r->scanline = 1;
        band_bytes = r->b.out_line;
    }
    r->band = malloc(band_bytes);
    if (!r->band) {
        st = upres__fail(ctx, UPRES_ERR_NOMEM, "TIFF: band of %zu bytes", band_bytes);
        goto fail;
    }
    if ((st = tiff_get_icc(ctx, r->tif, &r->base.icc, &r->base.icc_size)) != UPRES_OK) goto fail;
    info->frames = tiff_frames(r->tif);
    r->base.layout.width = r->L.w;
    r->base.layout.height = r->L.h;
    r->base.layout.channels = r->L.spp;
    r->base.layout.depth = r->L.depth;
    r->base.orientation = P.orientation;
    r->base.read = tiff_rows_read;
    r->base.destroy = tiff_rows_destroy;
    *out = &r->base;
    return UPRES_OK;
whole:
    tiff_rows_destroy(&r->base);
    return UPRES_OK;
fail:
    tiff_rows_destroy(&r->base);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Encoding                                                                  */

/* Status for a failed write: the descriptor's errno, an allocation, or
 * libtiff's own complaint. Records "TIFF: <what>: <detail>". */
static int tiff_write_fail(upres_ctx *ctx, const tiff_stream *s, const char *what)
{
    if (s->err) return upres__fail(ctx, UPRES_ERR_IO, "TIFF: %s: %s", what, strerror(s->err));
    return upres__fail(ctx, s->failed ? UPRES_ERR_NOMEM : UPRES_ERR_IO, "TIFF: %s: %s", what, s->msg);
}

/* A TIFF being written strip by strip, shared by both encoders. */
typedef struct tiff_out {
    upres_ctx *ctx;
    tiff_stream s;
    TIFF *tif;
    uint32_t w, h, rps;
    size_t line;        /* bytes per row */
    uint8_t *scratch;   /* one strip: libtiff's predictor works in place */
    uint32_t fill;      /* rows waiting in scratch */
    uint32_t strip;     /* next strip number */
} tiff_out;

/* Opens the output (fd >= 0: that descriptor, else memory), sets every tag
 * and allocates the strip buffer. */
static int tiff_out_begin(tiff_out *o, upres_ctx *ctx, int fd, uint32_t w, uint32_t h, uint32_t ch,
                          upres_depth depth, int orientation, const uint8_t *icc, size_t icc_size)
{
    memset(o, 0, sizeof *o);
    o->ctx = ctx;
    o->s.fd = fd;
    o->s.writable = 1;
    const size_t sb = upres_depth_bytes(depth);
    if (ch < 1 || ch > 4 || sb == 0 || w == 0 || h == 0)
        return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "TIFF: bad image layout");
    if (icc_size > UINT32_MAX)
        return upres__fail(ctx, UPRES_ERR_UNSUPPORTED, "TIFF: ICC profile too large");
    if (!upres__mul_size((size_t)w * ch, sb, &o->line))
        return upres__fail(ctx, UPRES_ERR_OVERFLOW, "TIFF: row size overflows");
    /* About 256 KiB per strip: large enough for deflate, small enough to
     * keep the scratch buffer modest. */
    uint32_t rps = (uint32_t)((256u * 1024u) / o->line);
    if (rps < 1) rps = 1;
    if (rps > h) rps = h;
    size_t bufsize;
    if (!upres__mul_size(o->line, rps, &bufsize))
        return upres__fail(ctx, UPRES_ERR_OVERFLOW, "TIFF: strip size overflows");
    o->w = w;
    o->h = h;
    o->rps = rps;
    /* Plain "w" picks classic TIFF; images over 4 GiB need BigTIFF. */
    uint64_t total = (uint64_t)o->line * h;
    o->tif = ts_open(&o->s, total > ((uint64_t)3 << 30) ? "w8" : "w", 0);
    if (!o->tif) return tiff_write_fail(ctx, &o->s, "cannot start");
    o->scratch = malloc(bufsize);
    if (!o->scratch) return upres__fail(ctx, UPRES_ERR_NOMEM, "TIFF: strip buffer of %zu bytes", bufsize);
    TIFF *tif = o->tif;
    int ok = 1;
    ok &= TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, w);
    ok &= TIFFSetField(tif, TIFFTAG_IMAGELENGTH, h);
    ok &= TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, (uint16_t)(sb * 8));
    ok &= TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, (uint16_t)ch);
    ok &= TIFFSetField(tif, TIFFTAG_SAMPLEFORMAT,
                       depth == UPRES_F32 ? SAMPLEFORMAT_IEEEFP : SAMPLEFORMAT_UINT);
    ok &= TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, ch >= 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK);
    ok &= TIFFSetField(tif, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
    if (ch == 2 || ch == 4) {
        uint16_t extra[1] = {EXTRASAMPLE_UNASSALPHA};
        ok &= TIFFSetField(tif, TIFFTAG_EXTRASAMPLES, 1, extra);
    }
    ok &= TIFFSetField(tif, TIFFTAG_COMPRESSION, COMPRESSION_ADOBE_DEFLATE);
    ok &= TIFFSetField(tif, TIFFTAG_PREDICTOR,
                       depth == UPRES_F32 ? PREDICTOR_FLOATINGPOINT : PREDICTOR_HORIZONTAL);
    ok &= TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, rps);
    /* An orientation still pending on the pixels is recorded, not lost. */
    int orient = orientation >= 1 && orientation <= 8 ? orientation : 1;
    ok &= TIFFSetField(tif, TIFFTAG_ORIENTATION, (uint16_t)orient);
    if (icc && icc_size) ok &= TIFFSetField(tif, TIFFTAG_ICCPROFILE, (uint32_t)icc_size, icc);
    if (!ok) return upres__fail(ctx, UPRES_ERR_IO, "TIFF: setting tags: %s", o->s.msg);
    return UPRES_OK;
}

/* Appends `rows` rows (stride bytes apart), encoding each strip once full
 * or once the image's last row is in. */
static int tiff_out_rows(tiff_out *o, const uint8_t *src, size_t stride, uint32_t rows)
{
    for (uint32_t r = 0; r < rows; r++) {
        memcpy(o->scratch + (size_t)o->fill * o->line, src + (size_t)r * stride, o->line);
        o->fill++;
        uint32_t y = o->strip * o->rps + o->fill; /* rows complete so far */
        if (o->fill < o->rps && y < o->h) continue;
        if (TIFFWriteEncodedStrip(o->tif, o->strip, o->scratch, (tmsize_t)((size_t)o->fill * o->line)) < 0)
            return tiff_write_fail(o->ctx, &o->s, "writing a strip");
        o->strip++;
        o->fill = 0;
    }
    return UPRES_OK;
}

/* Writes the directory and closes libtiff's handle (the data stays in o->s). */
static int tiff_out_end(tiff_out *o)
{
    int st = UPRES_OK;
    if (!TIFFWriteDirectory(o->tif)) st = tiff_write_fail(o->ctx, &o->s, "writing the directory");
    TIFFClose(o->tif);
    o->tif = NULL;
    if (st == UPRES_OK && (o->s.failed || o->s.err)) st = tiff_write_fail(o->ctx, &o->s, "closing");
    return st;
}

/* Releases everything but a memory output's data. */
static void tiff_out_free(tiff_out *o)
{
    if (o->tif) TIFFClose(o->tif);
    o->tif = NULL;
    free(o->scratch);
    o->scratch = NULL;
}

int upres__tiff_encode(upres_ctx *ctx, const upres_image *img, const upres_encode_desc *desc,
                       const uint8_t *icc, size_t icc_size, uint8_t **out, size_t *out_size)
{
    (void)desc;
    *out = NULL;
    *out_size = 0;
    tiff_out o;
    int st = tiff_out_begin(&o, ctx, -1, img->width, img->height, img->channels, img->depth,
                            img->orientation, icc, icc_size);
    if (st == UPRES_OK) st = tiff_out_rows(&o, img->data, img->stride, img->height);
    if (st == UPRES_OK) st = tiff_out_end(&o);
    tiff_out_free(&o);
    if (st != UPRES_OK) {
        free(o.s.data);
        return st;
    }
    *out = o.s.data;
    *out_size = (size_t)o.s.size;
    return UPRES_OK;
}

/* ------------------------------------------------------------------------ */
/* Streaming encoder                                                         */

typedef struct tiff_wr {
    upres__rowenc base; /* first: the encoder is passed around as its base */
    tiff_out o;
} tiff_wr;

static void tiff_wr_destroy(upres__rowenc *e)
{
    tiff_wr *w = (tiff_wr *)e;
    if (!w) return;
    tiff_out_free(&w->o);
    free(w);
}

static int tiff_wr_write(upres__rowenc *e, const upres_image *rows)
{
    tiff_wr *w = (tiff_wr *)e;
    return tiff_out_rows(&w->o, rows->data, rows->stride, rows->height);
}

static int tiff_wr_finish(upres__rowenc *e)
{
    tiff_wr *w = (tiff_wr *)e;
    if (w->o.fill != 0 || (uint64_t)w->o.strip * w->o.rps < w->o.h)
        return upres__fail(w->o.ctx, UPRES_ERR_INVALID_ARG, "TIFF: rows missing");
    return tiff_out_end(&w->o);
}

int upres__tiff_rows_begin(upres_ctx *ctx, int fd, const upres_layout *L,
                           const upres_encode_desc *desc, const uint8_t *icc, size_t icc_size,
                           upres__rowenc **out)
{
    (void)desc;
    *out = NULL;
    tiff_wr *w = calloc(1, sizeof *w);
    if (!w) return upres__fail(ctx, UPRES_ERR_NOMEM, "TIFF: out of memory");
    w->base.write = tiff_wr_write;
    w->base.finish = tiff_wr_finish;
    w->base.destroy = tiff_wr_destroy;
    int st = tiff_out_begin(&w->o, ctx, fd, L->width, L->height, L->channels, L->depth, 1, icc,
                            icc_size);
    if (st != UPRES_OK) {
        tiff_wr_destroy(&w->base);
        return st;
    }
    *out = &w->base;
    return UPRES_OK;
}
