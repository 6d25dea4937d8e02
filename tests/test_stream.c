/* Tests of the streaming reader and writer (src/io/stream.c): rows read in
 * batches equal upres_load's pixels, ICC and info; files written row by row
 * equal upres_save's bytes; damage, misuse and unwritable folders fail
 * cleanly; a large PNG goes through both in little memory. */
#include "test.h"
#include "upres.h"

#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <tiffio.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define ST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ST_ASAN 1
#endif
#endif
#ifndef ST_ASAN
#define ST_ASAN 0
#endif

static char st_msg[512];

/* Bytes of one packed row of `L`. */
static size_t st_row_bytes(upres_layout L)
{
    return (size_t)L.width * L.channels * upres_depth_bytes(L.depth);
}

/* Reads `path` with a reader in batches of `batch` rows (0 = all at once)
 * into rows with 5 bytes of padding each, then checks layout, pixels, ICC,
 * info and is_streaming against upres_load with the same desc. Returns NULL
 * when all agree, else a message (static storage). */
static const char *st_like_load(const char *path, const upres_decode_desc *desc, uint32_t batch,
                                int want_streaming)
{
    upres_ctx *ctx = tu_ctx_1thread();
    upres_image *ref = NULL;
    upres_file_info ri, si;
    upres_reader *r = NULL;
    uint8_t *buf = NULL;
    const char *fail = NULL;
    if (!ctx) return "no context";
    int st = upres_load(ctx, path, desc, &ref, &ri);
    if (st != UPRES_OK) {
        snprintf(st_msg, sizeof st_msg, "%s: load: %s", path, upres_ctx_error(ctx));
        fail = st_msg;
        goto out;
    }
    memset(&si, 0x55, sizeof si);
    st = upres_reader_open(ctx, path, desc, &r, &si);
    if (st != UPRES_OK) {
        snprintf(st_msg, sizeof st_msg, "%s: open: %d %s", path, st, upres_ctx_error(ctx));
        fail = st_msg;
        goto out;
    }
    upres_layout L = upres_reader_layout(r);
    if (L.width != ref->width || L.height != ref->height || L.channels != ref->channels ||
        L.depth != ref->depth) {
        snprintf(st_msg, sizeof st_msg, "%s: layout %ux%u c%u d%d, load %ux%u c%u d%d", path,
                 L.width, L.height, L.channels, (int)L.depth, ref->width, ref->height,
                 ref->channels, (int)ref->depth);
        fail = st_msg;
        goto out;
    }
    if (want_streaming >= 0 && upres_reader_is_streaming(r) != want_streaming) {
        snprintf(st_msg, sizeof st_msg, "%s: is_streaming %d, expected %d", path,
                 upres_reader_is_streaming(r), want_streaming);
        fail = st_msg;
        goto out;
    }
    if (si.format != ri.format || si.width != ri.width || si.height != ri.height ||
        si.bits_per_sample != ri.bits_per_sample || si.is_float != ri.is_float ||
        si.channels != ri.channels || si.orientation != ri.orientation || si.frames != ri.frames ||
        si.cmyk != ri.cmyk || si.interlaced != ri.interlaced || si.lossless != ri.lossless ||
        si.icc_size != ri.icc_size) {
        snprintf(st_msg, sizeof st_msg, "%s: info differs (orientation %d/%d, icc %zu/%zu, frames %d/%d)",
                 path, si.orientation, ri.orientation, si.icc_size, ri.icc_size, si.frames, ri.frames);
        fail = st_msg;
        goto out;
    }
    size_t icc_size = 12345;
    const uint8_t *icc = upres_reader_icc(r, &icc_size);
    if (icc_size != ref->icc_size || (icc_size && (!icc || memcmp(icc, ref->icc, icc_size) != 0)) ||
        (!icc_size && icc)) {
        snprintf(st_msg, sizeof st_msg, "%s: ICC of %zu bytes, load has %zu", path, icc_size,
                 ref->icc_size);
        fail = st_msg;
        goto out;
    }
    const size_t row = st_row_bytes(L), stride = row + 5;
    buf = malloc(stride * L.height);
    if (!buf) {
        fail = "out of memory";
        goto out;
    }
    uint32_t step = batch ? batch : L.height;
    for (uint32_t y = 0; y < L.height; y += step) {
        uint32_t n = L.height - y < step ? L.height - y : step;
        st = upres_reader_read(r, buf + (size_t)y * stride, stride, n);
        if (st != UPRES_OK) {
            snprintf(st_msg, sizeof st_msg, "%s: read at row %u: %d %s", path, y, st,
                     upres_ctx_error(ctx));
            fail = st_msg;
            goto out;
        }
    }
    for (uint32_t y = 0; y < L.height; y++)
        if (memcmp(buf + (size_t)y * stride, upres_image_row(ref, y), row) != 0) {
            snprintf(st_msg, sizeof st_msg, "%s: row %u differs (batch %u)", path, y, batch);
            fail = st_msg;
            goto out;
        }
    /* Everything is read: one more row is past the end. */
    st = upres_reader_read(r, buf, stride, 1);
    if (st != UPRES_ERR_INVALID_ARG) {
        snprintf(st_msg, sizeof st_msg, "%s: reading past the end gave %d", path, st);
        fail = st_msg;
    }
out:
    free(buf);
    upres_reader_free(r);
    upres_image_free(ref);
    upres_ctx_free(ctx);
    return fail;
}

/* st_like_load for batches of 1, 7 and all rows. */
static const char *st_like_load_batches(const char *path, const upres_decode_desc *desc,
                                        int want_streaming)
{
    static const uint32_t batches[] = {1, 7, 0};
    for (size_t i = 0; i < sizeof batches / sizeof batches[0]; i++) {
        const char *f = st_like_load(path, desc, batches[i], want_streaming);
        if (f) return f;
    }
    return NULL;
}

/* The sRGB profile fixture (malloc()ed) or NULL. */
static uint8_t *st_icc(size_t *size)
{
    return test_read_file(test_fixture("io/srgb.icc"), size);
}

/* ---- PNG ----------------------------------------------------------------- */

TEST(stream_png_fixtures_match_load)
{
    static const char *names[] = {
        "io/gray1.png",    "io/gray2.png",        "io/gray4.png",       "io/gray_trns.png",
        "io/gray16_trns.png", "io/ga8.png",       "io/rgb_trns.png",    "io/rgb16.png",
        "io/rgba16.png",   "io/palette2.png",     "io/palette4_trns.png", "io/icc_rgb.png",
        "io/chunks.png",   "cli/cli_rgb40x30.png", "cli/cli_gray11x7.png",
    };
    upres_decode_desc raw = upres_decode_desc_defaults();
    raw.apply_orientation = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *f = st_like_load_batches(test_fixture(names[i]), NULL, 1);
        CHECKF(!f, "%s", f);
        f = st_like_load(test_fixture(names[i]), &raw, 3, 1);
        CHECKF(!f, "%s", f);
    }
}

TEST(stream_png_written_layouts_match_load)
{
    /* 8/16-bit gray, GA, RGB, RGBA written by upres_save, with and without
     * a profile; sizes that do not divide by the batch sizes. */
    size_t icc_n = 0;
    uint8_t *icc = st_icc(&icc_n);
    CHECK(icc);
    for (uint32_t ch = 1; ch <= 4; ch++)
        for (int d = 0; d < 2; d++) {
            upres_image *img = tu_random_image(37, 29, ch, d ? UPRES_U16 : UPRES_U8, ch * 10 + d);
            CHECK(img);
            if (ch >= 3) CHECK_OK(upres_image_set_icc(img, icc, icc_n));
            const char *path = test_tmp("w.png");
            CHECK_OK(upres_save(NULL, img, path, NULL));
            upres_image_free(img);
            const char *f = st_like_load_batches(path, NULL, 1);
            CHECKF(!f, "%u channels, depth %d: %s", ch, d, f);
        }
    free(icc);
}

/* Writes `img` (u8) as an Adam7-interlaced PNG at path. Returns 0 on success. */
static int st_write_interlaced(const char *path, const upres_image *img)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    png_bytep *volatile rows = NULL;
    if (!info || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, info ? &info : NULL);
        free(rows);
        fclose(f);
        return -1;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, img->width, img->height, 8,
                 img->channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_ADAM7,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    rows = malloc(sizeof *rows * img->height);
    if (!rows) png_error(png, "oom");
    for (uint32_t y = 0; y < img->height; y++) rows[y] = upres_image_row(img, y);
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(rows);
    return fclose(f) == 0 ? 0 : -1;
}

TEST(stream_png_interlaced_is_decoded_whole)
{
    upres_image *img = tu_random_image(23, 17, 3, UPRES_U8, 5);
    CHECK(img);
    const char *path = test_tmp("adam7.png");
    CHECK_EQ(st_write_interlaced(path, img), 0);
    upres_image_free(img);
    const char *f = st_like_load_batches(path, NULL, 0);
    CHECKF(!f, "%s", f);
}

TEST(stream_png_late_exif_is_decoded_whole)
{
    /* exif3.png has its eXIf (orientation 3) after IDAT. */
    upres_decode_desc raw = upres_decode_desc_defaults();
    raw.apply_orientation = 0;
    const char *f = st_like_load_batches(test_fixture("io/exif3.png"), NULL, 0);
    CHECKF(!f, "%s", f);
    f = st_like_load_batches(test_fixture("io/exif3.png"), &raw, 0);
    CHECKF(!f, "%s", f);
}

/* ---- JPEG, WebP -------------------------------------------------------- */

TEST(stream_jpeg_fixtures_match_load)
{
    static const char *names[] = {"io/gray.jpg", "io/progressive.jpg", "io/cmyk.jpg"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *f = st_like_load_batches(test_fixture(names[i]), NULL, 1);
        CHECKF(!f, "%s", f);
    }
    /* Files made here: RGB 4:4:4 and 4:2:0 with a profile, gray. */
    size_t icc_n = 0;
    uint8_t *icc = st_icc(&icc_n);
    CHECK(icc);
    for (int k = 0; k < 3; k++) {
        upres_image *img = tu_random_image(45, 33, k == 2 ? 1 : 3, UPRES_U8, 77 + k);
        CHECK(img);
        if (k < 2) CHECK_OK(upres_image_set_icc(img, icc, icc_n));
        upres_encode_desc ed = upres_encode_desc_defaults();
        ed.format = UPRES_FORMAT_JPEG;
        ed.chroma_444 = k == 0;
        const char *path = test_tmp("w.jpg");
        CHECK_OK(upres_save(NULL, img, path, &ed));
        upres_image_free(img);
        const char *f = st_like_load_batches(path, NULL, 1);
        CHECKF(!f, "case %d: %s", k, f);
    }
    free(icc);
}

TEST(stream_jpeg_oriented_is_decoded_whole_unless_raw)
{
    static const char *names[] = {"io/exif6.jpg", "cli/cli_orient6.jpg"};
    upres_decode_desc raw = upres_decode_desc_defaults();
    raw.apply_orientation = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *f = st_like_load_batches(test_fixture(names[i]), NULL, 0);
        CHECKF(!f, "%s", f);
        /* Not applying the orientation, the rows come as stored: streamed. */
        f = st_like_load_batches(test_fixture(names[i]), &raw, 1);
        CHECKF(!f, "%s", f);
    }
}

TEST(stream_webp_is_decoded_whole)
{
    const char *f = st_like_load_batches(test_fixture("tw/pil_lossless.webp"), NULL, 0);
    CHECKF(!f, "%s", f);
    f = st_like_load_batches(test_fixture("cli/cli_anim.webp"), NULL, 0);
    CHECKF(!f, "%s", f);
}

TEST(stream_shared_photos_match_load)
{
    static const char *names[] = {"images/photos/OneStandsOut.jpg", "images/photos/LadyBird.jpg",
                                  "images/kodak24/kodim01.png", "images/kodak24/kodim03.png"};
    int found = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *path = test_shared(names[i]);
        if (!path) continue;
        found++;
        const char *f = st_like_load(path, NULL, 13, -1);
        CHECKF(!f, "%s", f);
    }
    if (!found) SKIP("no shared images");
}

/* ---- TIFF ---------------------------------------------------------------- */

/* How st_write_tiff lays out a file. */
typedef struct st_tiff {
    uint16_t bps, fmt, planar, compression, orientation, photometric;
    int assoc;         /* the alpha sample is associated (premultiplied) */
    uint32_t rps;      /* strips (0 = one strip) */
    uint32_t tw, th;   /* tiles when nonzero */
    const uint8_t *icc;
    uint32_t icc_size;
} st_tiff;

/* Writes img (u8/u16/f32, or u8 holding 0/1 samples when t->bps == 1) to
 * path with libtiff as *t says. Returns 0 on success. */
static int st_write_tiff(const char *path, const upres_image *img, const st_tiff *t)
{
    TIFF *tif = TIFFOpen(path, "w");
    if (!tif) return -1;
    const uint32_t w = img->width, h = img->height, spp = img->channels;
    const size_t sb = t->bps >= 8 ? t->bps / 8u : 0;
    const int sep = t->planar == PLANARCONFIG_SEPARATE;
    const uint32_t planes = sep ? spp : 1;
    TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, w);
    TIFFSetField(tif, TIFFTAG_IMAGELENGTH, h);
    TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, (uint16_t)spp);
    TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, t->bps);
    TIFFSetField(tif, TIFFTAG_PHOTOMETRIC,
                 t->photometric ? t->photometric : spp >= 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK);
    TIFFSetField(tif, TIFFTAG_PLANARCONFIG, sep ? PLANARCONFIG_SEPARATE : PLANARCONFIG_CONTIG);
    TIFFSetField(tif, TIFFTAG_SAMPLEFORMAT, t->fmt ? t->fmt : SAMPLEFORMAT_UINT);
    TIFFSetField(tif, TIFFTAG_COMPRESSION, t->compression ? t->compression : COMPRESSION_NONE);
    if (t->orientation) TIFFSetField(tif, TIFFTAG_ORIENTATION, t->orientation);
    if (t->icc) TIFFSetField(tif, TIFFTAG_ICCPROFILE, t->icc_size, t->icc);
    if (spp == 2 || spp == 4) {
        uint16_t extra = t->assoc ? EXTRASAMPLE_ASSOCALPHA : EXTRASAMPLE_UNASSALPHA;
        TIFFSetField(tif, TIFFTAG_EXTRASAMPLES, 1, &extra);
    }
    int ok = 1;
    if (t->bps == 1) {
        /* Packed 1-bit gray, one strip. */
        TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, h);
        size_t line = (w + 7) / 8;
        uint8_t *buf = calloc(line, h);
        for (uint32_t y = 0; y < h; y++)
            for (uint32_t x = 0; x < w; x++)
                if (((uint8_t *)upres_image_row(img, y))[x])
                    buf[y * line + x / 8] |= (uint8_t)(0x80 >> (x % 8));
        ok = buf && TIFFWriteEncodedStrip(tif, 0, buf, (tmsize_t)(line * h)) >= 0;
        free(buf);
    } else if (t->tw) {
        TIFFSetField(tif, TIFFTAG_TILEWIDTH, t->tw);
        TIFFSetField(tif, TIFFTAG_TILELENGTH, t->th);
        const size_t tline = (size_t)t->tw * (sep ? 1 : spp) * sb;
        uint8_t *tb = malloc(tline * t->th);
        ok = tb != NULL;
        for (uint32_t p = 0; p < planes && ok; p++)
            for (uint32_t ty = 0; ty < h && ok; ty += t->th)
                for (uint32_t tx = 0; tx < w && ok; tx += t->tw) {
                    memset(tb, 0, tline * t->th);
                    for (uint32_t r = 0; r < t->th && ty + r < h; r++)
                        for (uint32_t c = 0; c < t->tw && tx + c < w; c++) {
                            const uint8_t *s = (const uint8_t *)upres_image_row(img, ty + r) +
                                               (size_t)(tx + c) * spp * sb;
                            if (sep) memcpy(tb + r * tline + c * sb, s + p * sb, sb);
                            else memcpy(tb + r * tline + c * spp * sb, s, spp * sb);
                        }
                    ok = TIFFWriteEncodedTile(tif, TIFFComputeTile(tif, tx, ty, 0, (uint16_t)p), tb,
                                              (tmsize_t)(tline * t->th)) >= 0;
                }
        free(tb);
    } else {
        uint32_t rps = t->rps ? t->rps : h;
        TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, rps);
        const size_t line = (size_t)w * (sep ? 1 : spp) * sb;
        uint8_t *sbuf = malloc(line * rps);
        ok = sbuf != NULL;
        for (uint32_t p = 0; p < planes && ok; p++)
            for (uint32_t y = 0; y < h && ok; y += rps) {
                uint32_t rows = h - y < rps ? h - y : rps;
                for (uint32_t r = 0; r < rows; r++) {
                    const uint8_t *s = upres_image_row(img, y + r);
                    if (!sep) {
                        memcpy(sbuf + r * line, s, line);
                        continue;
                    }
                    for (uint32_t c = 0; c < w; c++)
                        memcpy(sbuf + r * line + c * sb, s + ((size_t)c * spp + p) * sb, sb);
                }
                ok = TIFFWriteEncodedStrip(tif, TIFFComputeStrip(tif, y, (uint16_t)p), sbuf,
                                           (tmsize_t)(line * rows)) >= 0;
            }
        free(sbuf);
    }
    if (ok) ok = TIFFWriteDirectory(tif);
    TIFFClose(tif);
    return ok ? 0 : -1;
}

TEST(stream_tiff_fixtures_match_load)
{
    static const char *names[] = {"tw/pil_float.tif", "tw/pil_gray16_be.tif", "tw/pil_rgba_lzw.tif"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *f = st_like_load_batches(test_fixture(names[i]), NULL, 1);
        CHECKF(!f, "%s", f);
    }
}

TEST(stream_tiff_strips_and_tiles_match_load)
{
    size_t icc_n = 0;
    uint8_t *icc = st_icc(&icc_n);
    CHECK(icc);
    static const upres_depth depths[] = {UPRES_U8, UPRES_U16, UPRES_F32};
    const char *path = test_tmp("t.tif");
    for (size_t di = 0; di < 3; di++)
        for (uint32_t ch = 1; ch <= 4; ch++)
            for (int kind = 0; kind < 5; kind++) {
                /* 0: contig strips of 5 rows, deflate; 1: separate strips of 4
                 * rows; 2: contig 16x16 tiles; 3: separate 16x32 tiles, LZW;
                 * 4: one contig strip. 40x23: partial edge tiles/strips. */
                upres_image *img = tu_random_image(40, 23, ch, depths[di], (uint32_t)(di * 100 + ch * 10 + kind + 1));
                CHECK(img);
                if (depths[di] == UPRES_F32) {
                    /* Keep floats in [0,1]: some are above 1 in tu_random_image. */
                    for (uint32_t y = 0; y < img->height; y++)
                        for (size_t i = 0; i < (size_t)img->width * ch; i++) {
                            float *p = (float *)upres_image_row(img, y) + i;
                            *p = (*p + 2.0f) / 5.0f;
                        }
                }
                st_tiff t;
                memset(&t, 0, sizeof t);
                t.bps = (uint16_t)(upres_depth_bytes(depths[di]) * 8);
                t.fmt = depths[di] == UPRES_F32 ? SAMPLEFORMAT_IEEEFP : SAMPLEFORMAT_UINT;
                t.planar = kind == 1 || kind == 3 ? PLANARCONFIG_SEPARATE : PLANARCONFIG_CONTIG;
                t.compression = kind == 0 ? COMPRESSION_ADOBE_DEFLATE : kind == 3 ? COMPRESSION_LZW : 0;
                t.rps = kind == 0 ? 5 : kind == 1 ? 4 : 0;
                t.tw = kind == 2 || kind == 3 ? 16 : 0;
                t.th = kind == 2 ? 16 : kind == 3 ? 32 : 0;
                if (ch >= 3) {
                    t.icc = icc;
                    t.icc_size = (uint32_t)icc_n;
                }
                CHECK_EQ(st_write_tiff(path, img, &t), 0);
                upres_image_free(img);
                const char *f = st_like_load_batches(path, NULL, 1);
                CHECKF(!f, "depth %d, %u channels, kind %d: %s", (int)depths[di], ch, kind, f);
            }
    free(icc);
}

TEST(stream_tiff_fallbacks)
{
    const char *path = test_tmp("t.tif");
    upres_decode_desc raw = upres_decode_desc_defaults();
    raw.apply_orientation = 0;
    /* 1-bit gray: only libtiff's RGBA renderer reads it. */
    upres_image *img = tu_random_image(21, 9, 1, UPRES_U8, 3);
    CHECK(img);
    for (size_t i = 0; i < (size_t)21 * 9; i++) ((uint8_t *)img->data)[i] &= 1;
    st_tiff t;
    memset(&t, 0, sizeof t);
    t.bps = 1;
    CHECK_EQ(st_write_tiff(path, img, &t), 0);
    upres_image_free(img);
    const char *f = st_like_load_batches(path, NULL, 0);
    CHECKF(!f, "1-bit: %s", f);

    /* Orientation 6: whole when applied, streamed as stored otherwise. */
    img = tu_random_image(13, 7, 3, UPRES_U16, 4);
    CHECK(img);
    memset(&t, 0, sizeof t);
    t.bps = 16;
    t.orientation = 6;
    t.rps = 3;
    CHECK_EQ(st_write_tiff(path, img, &t), 0);
    upres_image_free(img);
    f = st_like_load_batches(path, NULL, 0);
    CHECKF(!f, "orientation 6: %s", f);
    f = st_like_load_batches(path, &raw, 1);
    CHECKF(!f, "orientation 6 raw: %s", f);
}

/* Fills a w x h RGBA u8 image with a smooth pattern (compresses well). */
static upres_image *st_smooth(uint32_t w, uint32_t h, uint32_t ch)
{
    upres_image *img = NULL;
    if (upres_image_new(&img, w, h, ch, UPRES_U8, NULL) != UPRES_OK) return NULL;
    for (uint32_t y = 0; y < h; y++) {
        uint8_t *p = upres_image_row(img, y);
        for (uint32_t x = 0; x < w; x++)
            for (uint32_t c = 0; c < ch; c++) *p++ = (uint8_t)((x * (c + 1) + y * 3 + c * 50) >> 3);
    }
    return img;
}

TEST(stream_tiff_huge_strips)
{
    /* One deflate strip of 36 MB: too big to buffer, read line by line when
     * contiguous; separate planes are decoded whole. Associated alpha makes
     * every line go through the un-premultiplication. */
    upres_image *img = st_smooth(3000, 3000, 4);
    CHECK(img);
    const char *path = test_tmp("big.tif");
    st_tiff t;
    memset(&t, 0, sizeof t);
    t.bps = 8;
    t.compression = COMPRESSION_ADOBE_DEFLATE;
    t.assoc = 1;
    CHECK_EQ(st_write_tiff(path, img, &t), 0);
    const char *f = st_like_load(path, NULL, 1000, 1);
    CHECKF(!f, "contiguous: %s", f);
    t.planar = PLANARCONFIG_SEPARATE;
    CHECK_EQ(st_write_tiff(path, img, &t), 0);
    upres_image_free(img);
    f = st_like_load(path, NULL, 999, 0);
    CHECKF(!f, "separate: %s", f);
}

/* ---- Writer ---------------------------------------------------------------- */

/* Writes img through a writer in batches of `batch` rows (rows copied to a
 * buffer with padding, so the stride differs from the image's) and checks the
 * file's bytes equal upres_save's for the same desc. Returns NULL or a
 * message (static storage). */
static const char *st_writer_like_save(const upres_image *img, const upres_encode_desc *ed,
                                       const char *ext, uint32_t batch)
{
    char a[64], b[64];
    snprintf(a, sizeof a, "saved.%s", ext);
    snprintf(b, sizeof b, "streamed.%s", ext);
    const char *pa = test_tmp(a), *pb = test_tmp(b);
    upres_ctx *ctx = tu_ctx_1thread();
    if (!ctx) return "no context";
    const char *fail = NULL;
    upres_writer *w = NULL;
    uint8_t *rows = NULL, *fa = NULL, *fb = NULL;
    int st = upres_save(ctx, img, pa, ed);
    if (st != UPRES_OK) {
        snprintf(st_msg, sizeof st_msg, "save: %s", upres_ctx_error(ctx));
        fail = st_msg;
        goto out;
    }
    upres_layout L = {img->width, img->height, img->channels, img->depth};
    st = upres_writer_open(ctx, pb, &L, img->icc, img->icc_size, ed, &w);
    if (st != UPRES_OK) {
        snprintf(st_msg, sizeof st_msg, "writer_open: %s", upres_ctx_error(ctx));
        fail = st_msg;
        goto out;
    }
    const size_t row = st_row_bytes(L), stride = row + 3;
    rows = malloc(stride * batch);
    if (!rows) {
        fail = "out of memory";
        goto out;
    }
    for (uint32_t y = 0; y < L.height; y += batch) {
        uint32_t n = L.height - y < batch ? L.height - y : batch;
        for (uint32_t i = 0; i < n; i++) memcpy(rows + i * stride, upres_image_row(img, y + i), row);
        st = upres_writer_write(w, rows, stride, n);
        if (st != UPRES_OK) {
            snprintf(st_msg, sizeof st_msg, "write at row %u: %s", y, upres_ctx_error(ctx));
            fail = st_msg;
            goto out;
        }
    }
    st = upres_writer_finish(w);
    if (st != UPRES_OK) {
        snprintf(st_msg, sizeof st_msg, "finish: %s", upres_ctx_error(ctx));
        fail = st_msg;
        goto out;
    }
    size_t na = 0, nb = 0;
    fa = test_read_file(pa, &na);
    fb = test_read_file(pb, &nb);
    if (!fa || !fb || na != nb || memcmp(fa, fb, na) != 0) {
        snprintf(st_msg, sizeof st_msg, "files differ: %zu vs %zu bytes", na, nb);
        fail = st_msg;
    }
out:
    upres_writer_free(w);
    free(rows);
    free(fa);
    free(fb);
    upres_ctx_free(ctx);
    return fail;
}

TEST(stream_writer_png_equals_save)
{
    size_t icc_n = 0;
    uint8_t *icc = st_icc(&icc_n);
    CHECK(icc);
    static const upres_depth depths[] = {UPRES_U8, UPRES_U16, UPRES_F32};
    static const int bits[] = {0, 8, 16};
    for (size_t di = 0; di < 3; di++)
        for (uint32_t ch = 1; ch <= 4; ch++)
            for (size_t bi = 0; bi < 3; bi++) {
                upres_image *img = tu_random_image(29, 19, ch, depths[di], (uint32_t)(di * 40 + ch * 4 + bi + 1));
                CHECK(img);
                CHECK_OK(upres_image_set_icc(img, icc, icc_n));
                upres_encode_desc ed = upres_encode_desc_defaults();
                ed.format = UPRES_FORMAT_PNG;
                ed.bit_depth = bits[bi];
                ed.png_compression = (int)(bi * 4);
                const char *f = st_writer_like_save(img, &ed, "png", bi == 0 ? 1 : 7);
                upres_image_free(img);
                CHECKF(!f, "depth %d, %u channels, bits %d: %s", (int)depths[di], ch, bits[bi], f);
            }
    free(icc);
}

TEST(stream_writer_tiff_equals_save)
{
    size_t icc_n = 0;
    uint8_t *icc = st_icc(&icc_n);
    CHECK(icc);
    static const upres_depth depths[] = {UPRES_U8, UPRES_U16, UPRES_F32};
    static const int bits[] = {0, 8, 16, 32};
    for (size_t di = 0; di < 3; di++)
        for (uint32_t ch = 1; ch <= 4; ch++)
            for (size_t bi = 0; bi < 4; bi++) {
                /* 300 columns: a few strips of about 256 KiB. */
                upres_image *img = tu_random_image(300, 333, ch, depths[di], (uint32_t)(di * 40 + ch * 4 + bi + 1));
                CHECK(img);
                if (ch >= 3) CHECK_OK(upres_image_set_icc(img, icc, icc_n));
                upres_encode_desc ed = upres_encode_desc_defaults();
                ed.format = UPRES_FORMAT_TIFF;
                ed.bit_depth = bits[bi];
                const char *f = st_writer_like_save(img, &ed, "tif", bi == 1 ? 1 : 50);
                upres_image_free(img);
                CHECKF(!f, "depth %d, %u channels, bits %d: %s", (int)depths[di], ch, bits[bi], f);
            }
    free(icc);
}

TEST(stream_writer_jpeg_and_webp_equal_save)
{
    size_t icc_n = 0;
    uint8_t *icc = st_icc(&icc_n);
    CHECK(icc);
    for (uint32_t ch = 1; ch <= 4; ch++)
        for (int k = 0; k < 2; k++) {
            upres_image *img = tu_random_image(51, 37, ch, k ? UPRES_U16 : UPRES_U8, ch * 7 + (uint32_t)k);
            CHECK(img);
            CHECK_OK(upres_image_set_icc(img, icc, icc_n));
            upres_encode_desc ed = upres_encode_desc_defaults();
            ed.format = UPRES_FORMAT_JPEG;
            ed.chroma_444 = k == 0;
            ed.background = 0.25f;
            const char *f = st_writer_like_save(img, &ed, "jpg", k ? 16 : 5);
            CHECKF(!f, "JPEG %u channels, k %d: %s", ch, k, f);
            /* Same bytes, so the same pixels; decode once to be sure. */
            upres_image *a = NULL, *b = NULL;
            CHECK_OK(upres_load(NULL, test_tmp("saved.jpg"), NULL, &a, NULL));
            CHECK_OK(upres_load(NULL, test_tmp("streamed.jpg"), NULL, &b, NULL));
            int same = tu_same_pixels(a, b);
            upres_image_free(a);
            upres_image_free(b);
            CHECK(same);
            ed = upres_encode_desc_defaults();
            ed.format = UPRES_FORMAT_WEBP;
            ed.webp_lossless = k;
            f = st_writer_like_save(img, &ed, "webp", 9);
            upres_image_free(img);
            CHECKF(!f, "WebP %u channels, k %d: %s", ch, k, f);
        }
    free(icc);
}

/* ---- Damage and misuse ------------------------------------------------------ */

/* Opens `path` and reads it to the end a row at a time: must fail (at open
 * or at a read) with `want` (0 = any error) and a detail containing `needle`
 * (NULL = any non-empty detail); after a failed read, the next read must
 * fail too. Returns NULL or a message (static storage). */
static const char *st_read_fails(const char *path, int want, const char *needle)
{
    upres_ctx *ctx = tu_ctx_1thread();
    upres_reader *r = NULL;
    uint8_t *row = NULL;
    const char *fail = NULL;
    int st = upres_reader_open(ctx, path, NULL, &r, NULL);
    if (st == UPRES_OK) {
        upres_layout L = upres_reader_layout(r);
        row = malloc(st_row_bytes(L));
        for (uint32_t y = 0; y < L.height && st == UPRES_OK; y++)
            st = upres_reader_read(r, row, st_row_bytes(L), 1);
    } else if (r) {
        fail = "failed open left a reader";
        goto out;
    }
    char detail[256];
    snprintf(detail, sizeof detail, "%s", upres_ctx_error(ctx));
    if (r && st != UPRES_OK && upres_reader_read(r, row, st_row_bytes(upres_reader_layout(r)), 1) == UPRES_OK) {
        fail = "a read after a failed read succeeded";
        goto out;
    }
    if (st == UPRES_OK) fail = "no error";
    else if (want && st != want) {
        snprintf(st_msg, sizeof st_msg, "status %d, expected %d (%s)", st, want, detail);
        fail = st_msg;
    } else if (!detail[0] || (needle && !strstr(detail, needle))) {
        snprintf(st_msg, sizeof st_msg, "detail '%s' lacks '%s'", detail, needle ? needle : "");
        fail = st_msg;
    }
out:
    free(row);
    upres_reader_free(r);
    upres_ctx_free(ctx);
    return fail;
}

/* Writes the first n bytes of file to path. */
static int st_put(const char *path, const uint8_t *file, size_t n)
{
    return test_write_file(path, file, n);
}

TEST(stream_damaged_files_fail_cleanly)
{
    static const char *exts[] = {"png", "jpg", "tif"};
    for (int k = 0; k < 3; k++) {
        upres_image *img = tu_random_image(64, 48, 3, UPRES_U8, (uint32_t)k + 9);
        CHECK(img);
        char name[32];
        snprintf(name, sizeof name, "good.%s", exts[k]);
        const char *good = test_tmp(name);
        CHECK_OK(upres_save(NULL, img, good, NULL));
        upres_image_free(img);
        size_t n = 0;
        uint8_t *file = test_read_file(good, &n);
        CHECK(file);
        const char *bad = test_tmp(k == 0 ? "bad.png" : k == 1 ? "bad.jpg" : "bad.tif");
        /* Truncations at several points, the header included. */
        static const double cuts[] = {0.0, 0.02, 0.3, 0.6, 0.97};
        for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
            size_t len = (size_t)(n * cuts[c]);
            if (len == n) len--;
            CHECK_EQ(st_put(bad, file, len), 0);
            const char *f = st_read_fails(bad, 0, NULL);
            CHECKF(!f, "%s cut at %zu of %zu: %s", exts[k], len, n, f);
        }
        free(file);
    }
}

TEST(stream_corrupt_data_fails_during_read)
{
    upres_image *img = tu_random_image(64, 48, 3, UPRES_U8, 21);
    CHECK(img);
    /* PNG: a flipped byte inside IDAT: the header opens, the rows fail with a
     * CRC error. */
    const char *path = test_tmp("crc.png");
    CHECK_OK(upres_save(NULL, img, path, NULL));
    size_t n = 0;
    uint8_t *file = test_read_file(path, &n);
    CHECK(file);
    uint8_t *idat = NULL;
    for (size_t i = 8; i + 8 < n; i++)
        if (memcmp(file + i, "IDAT", 4) == 0) {
            idat = file + i;
            break;
        }
    CHECK(idat);
    idat[4 + 100] ^= 0x10;
    CHECK_EQ(test_write_file(path, file, n), 0);
    free(file);
    upres_reader *r = NULL;
    upres_ctx *ctx = tu_ctx_1thread();
    CHECK_OK(upres_reader_open(ctx, path, NULL, &r, NULL));
    upres_reader_free(r);
    upres_ctx_free(ctx);
    const char *f = st_read_fails(path, UPRES_ERR_CORRUPT, "CRC");
    CHECKF(!f, "PNG: %s", f);

    /* TIFF: garbage inside the second strip's deflate data. */
    path = test_tmp("bad_strip.tif");
    upres_image *tall = tu_random_image(300, 700, 3, UPRES_U8, 22);
    CHECK(tall);
    CHECK_OK(upres_save(NULL, tall, path, NULL));
    upres_image_free(tall);
    file = test_read_file(path, &n);
    CHECK(file);
    /* Strips follow the 8-byte header; the middle of the file is strip data. */
    memset(file + n / 2, 0xA5, 64);
    CHECK_EQ(test_write_file(path, file, n), 0);
    free(file);
    f = st_read_fails(path, UPRES_ERR_CORRUPT, "TIFF");
    CHECKF(!f, "TIFF: %s", f);

    /* JPEG: the entropy-coded data cut short. */
    path = test_tmp("cut.jpg");
    CHECK_OK(upres_save(NULL, img, path, NULL));
    file = test_read_file(path, &n);
    CHECK(file);
    CHECK_EQ(test_write_file(path, file, n * 2 / 3), 0);
    free(file);
    f = st_read_fails(path, UPRES_ERR_CORRUPT, "JPEG");
    CHECKF(!f, "JPEG: %s", f);
    upres_image_free(img);
}

TEST(stream_reader_argument_errors)
{
    upres_ctx *ctx = tu_ctx_1thread();
    upres_reader *r = NULL;
    CHECK_EQ(upres_reader_open(ctx, NULL, NULL, &r, NULL), UPRES_ERR_INVALID_ARG);
    CHECK_EQ(upres_reader_open(ctx, test_tmp("missing.png"), NULL, &r, NULL), UPRES_ERR_IO);
    CHECK(r == NULL);
    CHECK_EQ(upres_reader_open(ctx, test_tmpdir(), NULL, &r, NULL), UPRES_ERR_IO);
    CHECK_OK(upres_reader_open(ctx, test_fixture("io/rgb16.png"), NULL, &r, NULL));
    upres_layout L = upres_reader_layout(r);
    CHECK_EQ(L.width, 10);
    CHECK_EQ(L.height, 6);
    size_t row = st_row_bytes(L);
    uint8_t buf[2048];
    CHECK_EQ(upres_reader_read(r, buf, row, L.height + 1), UPRES_ERR_INVALID_ARG);
    CHECK_EQ(upres_reader_read(r, buf, row - 1, 1), UPRES_ERR_INVALID_ARG);
    CHECK_EQ(upres_reader_read(r, NULL, row, 1), UPRES_ERR_INVALID_ARG);
    CHECK_OK(upres_reader_read(r, buf, row, 0));
    /* Argument errors consume nothing: all rows are still there. */
    CHECK_OK(upres_reader_read(r, buf, row, L.height - 1));
    CHECK_EQ(upres_reader_read(r, buf, row, 2), UPRES_ERR_INVALID_ARG);
    CHECK_OK(upres_reader_read(r, buf, row, 1));
    CHECK_EQ(upres_reader_read(r, buf, row, 1), UPRES_ERR_INVALID_ARG);
    CHECK(upres_ctx_error(ctx)[0] != 0);
    upres_reader_free(r);
    upres_reader_free(NULL);
    CHECK_EQ(upres_reader_is_streaming(NULL), 0);
    upres_ctx_free(ctx);
}

TEST(stream_reader_limits)
{
    /* Pixel limits apply at open, the file size limit does not (PNG streams;
     * a fallback file is read whole and obeys it). */
    upres_ctx_desc d = upres_ctx_desc_defaults();
    d.threads = 1;
    d.limits.max_pixels = 50;
    upres_ctx *ctx = NULL;
    CHECK_OK(upres_ctx_new(&d, &ctx));
    upres_reader *r = NULL;
    static const char *names[] = {"cli/cli_rgb40x30.png", "io/progressive.jpg", "tw/pil_rgba_lzw.tif"};
    for (size_t i = 0; i < 3; i++) {
        CHECKF(upres_reader_open(ctx, test_fixture(names[i]), NULL, &r, NULL) == UPRES_ERR_LIMIT,
               "%s: %s", names[i], upres_ctx_error(ctx));
        CHECK(r == NULL);
        CHECK(upres_ctx_error(ctx)[0] != 0);
    }
    upres_ctx_free(ctx);
    d = upres_ctx_desc_defaults();
    d.threads = 1;
    d.limits.max_file_bytes = 64;
    CHECK_OK(upres_ctx_new(&d, &ctx));
    upres_image *img = NULL;
    CHECK_EQ(upres_load(ctx, test_fixture("cli/cli_rgb40x30.png"), NULL, &img, NULL), UPRES_ERR_LIMIT);
    CHECK_OK(upres_reader_open(ctx, test_fixture("cli/cli_rgb40x30.png"), NULL, &r, NULL));
    CHECK_EQ(upres_reader_is_streaming(r), 1);
    upres_reader_free(r);
    CHECK_EQ(upres_reader_open(ctx, test_fixture("tw/pil_lossless.webp"), NULL, &r, NULL), UPRES_ERR_LIMIT);
    upres_ctx_free(ctx);
}

TEST(stream_writer_missing_and_extra_rows_leave_nothing)
{
    const char *dir = test_tmpdir();
    static const char *names[] = {"m.png", "m.jpg", "m.tif", "m.webp"};
    upres_layout L = {17, 9, 3, UPRES_U8};
    uint8_t rows[17 * 3 * 10];
    memset(rows, 128, sizeof rows);
    for (size_t i = 0; i < 4; i++) {
        upres_ctx *ctx = tu_ctx_1thread();
        const char *path = test_tmp(names[i]);
        upres_writer *w = NULL;
        CHECK_OK(upres_writer_open(ctx, path, &L, NULL, 0, NULL, &w));
        CHECK_EQ(test_dir_count(dir), 1); /* the temporary file */
        CHECK_OK(upres_writer_write(w, rows, 17 * 3, 8));
        CHECK_EQ(upres_writer_finish(w), UPRES_ERR_INVALID_ARG);
        CHECK(strstr(upres_ctx_error(ctx), "8 of 9") != NULL);
        CHECK_EQ(test_dir_count(dir), 0);
        /* Only free is accepted now. */
        CHECK(upres_writer_write(w, rows, 17 * 3, 1) != UPRES_OK);
        CHECK(upres_writer_finish(w) != UPRES_OK);
        upres_writer_free(w);
        CHECK(!test_file_exists(path));

        w = NULL;
        CHECK_OK(upres_writer_open(ctx, path, &L, NULL, 0, NULL, &w));
        CHECK_EQ(upres_writer_write(w, rows, 17 * 3, 10), UPRES_ERR_INVALID_ARG);
        CHECK(upres_writer_finish(w) != UPRES_OK);
        upres_writer_free(w);
        CHECK_EQ(test_dir_count(dir), 0);
        upres_ctx_free(ctx);
    }
}

TEST(stream_writer_free_without_finish_keeps_target)
{
    const char *dir = test_tmpdir();
    const char *path = test_tmp("keep.png");
    CHECK_EQ(test_write_file(path, "old", 3), 0);
    upres_layout L = {5, 4, 1, UPRES_U16};
    uint16_t rows[5 * 4] = {0};
    upres_writer *w = NULL;
    CHECK_OK(upres_writer_open(NULL, path, &L, NULL, 0, NULL, &w));
    CHECK_EQ(test_dir_count(dir), 2);
    CHECK_OK(upres_writer_write(w, rows, 10, 4));
    upres_writer_free(w);
    CHECK_EQ(test_dir_count(dir), 1);
    size_t n = 0;
    unsigned char *data = test_read_file(path, &n);
    CHECK(data);
    CHECK_EQ(n, 3);
    CHECK(memcmp(data, "old", 3) == 0);
    free(data);
    /* Finished, it replaces the file. */
    w = NULL;
    CHECK_OK(upres_writer_open(NULL, path, &L, NULL, 0, NULL, &w));
    CHECK_OK(upres_writer_write(w, rows, 10, 4));
    CHECK_OK(upres_writer_finish(w));
    upres_writer_free(w);
    CHECK_EQ(test_dir_count(dir), 1);
    upres_image *img = NULL;
    CHECK_OK(upres_load(NULL, path, NULL, &img, NULL));
    CHECK_EQ(img->width, 5);
    CHECK_EQ(img->depth, UPRES_U16);
    upres_image_free(img);
}

TEST(stream_writer_open_errors)
{
    upres_ctx *ctx = tu_ctx_1thread();
    upres_layout L = {5, 4, 3, UPRES_U8};
    upres_writer *w = NULL;
    CHECK_EQ(upres_writer_open(ctx, "/nonexistent-upres-dir/x.png", &L, NULL, 0, NULL, &w), UPRES_ERR_IO);
    CHECK(w == NULL);
    CHECKF(strstr(upres_ctx_error(ctx), "temporary file") != NULL, "%s", upres_ctx_error(ctx));
    CHECK_EQ(upres_writer_open(ctx, test_tmp("x.bmp"), &L, NULL, 0, NULL, &w), UPRES_ERR_UNSUPPORTED);
    upres_layout bad = {0, 4, 3, UPRES_U8};
    CHECK_EQ(upres_writer_open(ctx, test_tmp("x.png"), &bad, NULL, 0, NULL, &w), UPRES_ERR_INVALID_ARG);
    upres_encode_desc ed = upres_encode_desc_defaults();
    ed.bit_depth = 16;
    CHECK_EQ(upres_writer_open(ctx, test_tmp("x.jpg"), &L, NULL, 0, &ed, &w), UPRES_ERR_UNSUPPORTED);
    /* A "folder" that is a file. */
    const char *file = test_tmp("plain");
    CHECK_EQ(test_write_file(file, "x", 1), 0);
    char path[4096];
    snprintf(path, sizeof path, "%s/x.png", file);
    CHECK_EQ(upres_writer_open(ctx, path, &L, NULL, 0, NULL, &w), UPRES_ERR_IO);
    CHECKF(strstr(upres_ctx_error(ctx), "temporary file"), "%s", upres_ctx_error(ctx));
    CHECK_EQ(unlink(file), 0);
    CHECK_EQ(test_dir_count(test_tmpdir()), 0);
    upres_ctx_free(ctx);
}

TEST(stream_writer_readonly_folder)
{
    /* Root ignores the folder's mode. */
    if (geteuid() == 0) SKIP("running as root: permissions are not enforced");
    upres_ctx *ctx = tu_ctx_1thread();
    upres_layout L = {5, 4, 3, UPRES_U8};
    upres_writer *w = NULL;
    char path[4096];
    const char *ro = test_tmp("ro");
    CHECK_EQ(mkdir(ro, 0555), 0);
    snprintf(path, sizeof path, "%s/x.png", ro);
    CHECK_EQ(upres_writer_open(ctx, path, &L, NULL, 0, NULL, &w), UPRES_ERR_IO);
    CHECK(w == NULL);
    const char *e = upres_ctx_error(ctx);
    CHECKF(strstr(e, "temporary file") && strstr(e, "ermission denied"), "%s", e);
    CHECK_EQ(test_dir_count(ro), 0);
    chmod(ro, 0755);
    upres_ctx_free(ctx);
}

/* ---- Memory ------------------------------------------------------------------ */

/* Peak resident set size of this process so far, in KiB. */
static long st_maxrss_kib(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : -1;
}

/* Sample c of the synthetic gradient at (x, y) of a w x h image. */
static uint8_t st_grad(uint32_t x, uint32_t y, uint32_t c, uint32_t w, uint32_t h)
{
    switch (c) {
    case 0: return (uint8_t)((uint64_t)x * 255 / (w - 1));
    case 1: return (uint8_t)((uint64_t)y * 255 / (h - 1));
    default: {
        /* Noise, so that the file is large too (about a third of the pixels). */
        uint32_t k = x * 0x9E3779B1u + y * 0x85EBCA77u;
        k ^= k >> 15;
        k *= 0x2C1B3C6Du;
        k ^= k >> 12;
        return (uint8_t)(k >> 24);
    }
    }
}

TEST(stream_large_png_in_little_memory)
{
    /* 8000x6000 RGB is 144 MB of pixels; both directions must stay within a
     * few MB. Under AddressSanitizer (much slower) the image is smaller. */
    const uint32_t W = ST_ASAN ? 2000 : 8000, H = ST_ASAN ? 1500 : 6000, B = 64;
    const char *path = test_tmp("large.png");
    upres_ctx *ctx = tu_ctx_1thread();
    CHECK(ctx);
    const size_t row = (size_t)W * 3;
    uint8_t *buf = malloc(row * B);
    CHECK(buf);
    memset(buf, 0, row * B); /* make the batch resident before the baseline */
    long base = st_maxrss_kib();
    upres_layout L = {W, H, 3, UPRES_U8};
    upres_writer *w = NULL;
    /* zlib's fastest level keeps the test quick; memory does not depend on it. */
    upres_encode_desc ed = upres_encode_desc_defaults();
    ed.png_compression = 1;
    CHECK_OK(upres_writer_open(ctx, path, &L, NULL, 0, &ed, &w));
    for (uint32_t y = 0; y < H; y += B) {
        uint32_t n = H - y < B ? H - y : B;
        for (uint32_t i = 0; i < n; i++) {
            uint8_t *p = buf + (size_t)i * row;
            for (uint32_t x = 0; x < W; x++)
                for (uint32_t c = 0; c < 3; c++) *p++ = st_grad(x, y + i, c, W, H);
        }
        CHECK_OK(upres_writer_write(w, buf, row, n));
    }
    CHECK_OK(upres_writer_finish(w));
    upres_writer_free(w);
    long after_write = st_maxrss_kib();

    upres_reader *r = NULL;
    CHECK_OK(upres_reader_open(ctx, path, NULL, &r, NULL));
    CHECK_EQ(upres_reader_is_streaming(r), 1);
    L = upres_reader_layout(r);
    CHECK_EQ(L.width, W);
    CHECK_EQ(L.height, H);
    CHECK_EQ(L.channels, 3);
    uint64_t bad = 0;
    for (uint32_t y = 0; y < H; y += B) {
        uint32_t n = H - y < B ? H - y : B;
        CHECK_OK(upres_reader_read(r, buf, row, n));
        for (uint32_t i = 0; i < n; i++) {
            const uint8_t *p = buf + (size_t)i * row;
            for (uint32_t x = 0; x < W; x++)
                for (uint32_t c = 0; c < 3; c++) bad += *p++ != st_grad(x, y + i, c, W, H);
        }
    }
    CHECK_EQ(bad, 0);
    CHECK_EQ(upres_reader_read(r, buf, row, 1), UPRES_ERR_INVALID_ARG);
    upres_reader_free(r);
    long after_read = st_maxrss_kib();
    free(buf);
    upres_ctx_free(ctx);
    struct stat sb;
    CHECK_EQ(stat(path, &sb), 0);
    printf("    measured: %ux%u RGB PNG (%lld bytes): max RSS %ld KiB at start, +%ld KiB after "
           "writing, +%ld KiB after reading\n",
           W, H, (long long)sb.st_size, base, after_write - base, after_read - base);
    unlink(path);
    CHECK(base > 0);
    CHECKF(after_read - base < 30 * 1024, "max RSS grew by %ld KiB", after_read - base);
}
