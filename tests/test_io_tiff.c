/* Tests of the TIFF codec (src/io/io_tiff.c): round trips through upres's
 * encoder, and decoding of layouts written here with libtiff directly
 * (separate planes, tiles, palette, 1-bit, MINISWHITE, associated alpha,
 * orientation, CMYK, JPEG), plus truncation and bit-flip robustness. */
#include "test.h"
#include "upres.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <tiffio.h>

static int encode_tiff(const upres_image *img, int bit_depth, void **out, size_t *size)
{
    upres_encode_desc d = upres_encode_desc_defaults();
    d.format = UPRES_FORMAT_TIFF;
    d.bit_depth = bit_depth;
    return upres_encode(NULL, img, &d, out, size);
}

/* Layout of a TIFF written by write_tiff(). */
typedef struct tw_spec {
    uint32_t w, h;
    uint16_t spp, bps, photometric, planar, fmt, compression, orientation;
    uint32_t rps;          /* strips: rows per strip */
    uint32_t tw, th;       /* tiles when nonzero */
    int extra;             /* EXTRASAMPLES type of the last sample, or -1 for none */
    const uint16_t *cmap;  /* palette: 3 * (1 << bps) entries, R then G then B */
    int pages;             /* directories to write (the same image); 0 = 1 */
    const uint8_t *icc;    /* ICC profile to store, or NULL */
    uint32_t icc_size;
} tw_spec;

/* Writes a TIFF with libtiff from `px`: rows of interleaved samples, packed
 * ceil(w*spp*bps/8) bytes per row (bps < 8 only with contiguous strips).
 * Returns the file's bytes (malloc()ed) or NULL. */
static unsigned char *write_tiff(const tw_spec *sp, const void *px, size_t *size)
{
    const char *path = test_tmp("written.tif");
    TIFF *tif = TIFFOpen(path, "w");
    if (!tif) return NULL;
    const size_t sb = sp->bps >= 8 ? sp->bps / 8u : 0;
    const size_t row = ((size_t)sp->w * sp->spp * sp->bps + 7) / 8;
    const int sep = sp->planar == PLANARCONFIG_SEPARATE;
    const uint32_t planes = sep ? sp->spp : 1;
    int pages = sp->pages ? sp->pages : 1;
    int ok = 1;
    for (int page = 0; page < pages && ok; page++) {
        TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, sp->w);
        TIFFSetField(tif, TIFFTAG_IMAGELENGTH, sp->h);
        TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, sp->spp);
        TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, sp->bps);
        TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, sp->photometric);
        TIFFSetField(tif, TIFFTAG_PLANARCONFIG, sp->planar ? sp->planar : PLANARCONFIG_CONTIG);
        TIFFSetField(tif, TIFFTAG_SAMPLEFORMAT, sp->fmt ? sp->fmt : SAMPLEFORMAT_UINT);
        TIFFSetField(tif, TIFFTAG_COMPRESSION, sp->compression ? sp->compression : COMPRESSION_NONE);
        if (sp->orientation) TIFFSetField(tif, TIFFTAG_ORIENTATION, sp->orientation);
        if (sp->icc) TIFFSetField(tif, TIFFTAG_ICCPROFILE, sp->icc_size, sp->icc);
        if (sp->extra >= 0) {
            uint16_t t = (uint16_t)sp->extra;
            TIFFSetField(tif, TIFFTAG_EXTRASAMPLES, 1, &t);
        }
        if (sp->cmap) {
            uint32_t n = 1u << sp->bps;
            TIFFSetField(tif, TIFFTAG_COLORMAP, sp->cmap, sp->cmap + n, sp->cmap + 2 * n);
        }
        if (sp->photometric == PHOTOMETRIC_SEPARATED) TIFFSetField(tif, TIFFTAG_INKSET, INKSET_CMYK);
        if (sp->compression == COMPRESSION_JPEG) {
            TIFFSetField(tif, TIFFTAG_JPEGQUALITY, 95);
            if (sp->photometric == PHOTOMETRIC_YCBCR)
                TIFFSetField(tif, TIFFTAG_JPEGCOLORMODE, JPEGCOLORMODE_RGB);
        }
        if (sp->tw) {
            TIFFSetField(tif, TIFFTAG_TILEWIDTH, sp->tw);
            TIFFSetField(tif, TIFFTAG_TILELENGTH, sp->th);
            size_t tline = (size_t)sp->tw * (sep ? 1 : sp->spp) * sb;
            unsigned char *tb = malloc(tline * sp->th);
            for (uint32_t p = 0; p < planes && ok; p++)
                for (uint32_t ty = 0; ty < sp->h && ok; ty += sp->th)
                    for (uint32_t tx = 0; tx < sp->w && ok; tx += sp->tw) {
                        memset(tb, 0, tline * sp->th);
                        for (uint32_t r = 0; r < sp->th && ty + r < sp->h; r++)
                            for (uint32_t c = 0; c < sp->tw && tx + c < sp->w; c++) {
                                const unsigned char *s =
                                    (const unsigned char *)px + (size_t)(ty + r) * row +
                                    (size_t)(tx + c) * sp->spp * sb;
                                if (sep)
                                    memcpy(tb + r * tline + c * sb, s + p * sb, sb);
                                else
                                    memcpy(tb + r * tline + c * sp->spp * sb, s, sp->spp * sb);
                            }
                        ok = TIFFWriteEncodedTile(tif, TIFFComputeTile(tif, tx, ty, 0, (uint16_t)p), tb,
                                                  (tmsize_t)(tline * sp->th)) >= 0;
                    }
            free(tb);
        } else {
            uint32_t rps = sp->rps ? sp->rps : sp->h;
            TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, rps);
            size_t line = sep ? (size_t)sp->w * sb : row;
            unsigned char *sbuf = malloc(line * rps);
            for (uint32_t p = 0; p < planes && ok; p++)
                for (uint32_t y = 0; y < sp->h && ok; y += rps) {
                    uint32_t rows = sp->h - y < rps ? sp->h - y : rps;
                    for (uint32_t r = 0; r < rows; r++) {
                        const unsigned char *s = (const unsigned char *)px + (size_t)(y + r) * row;
                        if (!sep) {
                            memcpy(sbuf + r * line, s, row);
                            continue;
                        }
                        for (uint32_t c = 0; c < sp->w; c++)
                            memcpy(sbuf + r * line + c * sb, s + ((size_t)c * sp->spp + p) * sb, sb);
                    }
                    ok = TIFFWriteEncodedStrip(tif, TIFFComputeStrip(tif, y, (uint16_t)p), sbuf,
                                               (tmsize_t)(line * rows)) >= 0;
                }
            free(sbuf);
        }
        if (ok) ok = TIFFWriteDirectory(tif);
    }
    TIFFClose(tif);
    return ok ? test_read_file(path, size) : NULL;
}

static tw_spec spec(uint32_t w, uint32_t h, uint16_t spp, uint16_t bps, uint16_t photometric)
{
    tw_spec s;
    memset(&s, 0, sizeof s);
    s.w = w;
    s.h = h;
    s.spp = spp;
    s.bps = bps;
    s.photometric = photometric;
    s.extra = -1;
    return s;
}

/* Round trip of every channel count at one depth, bit-exact. */
static void roundtrip_depth(upres_depth depth, int bits)
{
    for (uint32_t ch = 1; ch <= 4; ch++) {
        upres_image *src = tu_random_image(37, 19, ch, depth, 1234 + ch);
        CHECK(src);
        void *buf;
        size_t n;
        CHECK_OK(encode_tiff(src, 0, &buf, &n));
        upres_image *dst;
        upres_file_info info;
        CHECK_OK(upres_decode(NULL, buf, n, NULL, &dst, &info));
        CHECKF(tu_same_pixels(src, dst), "%u channels differ after the round trip", ch);
        CHECK_EQ(info.format, UPRES_FORMAT_TIFF);
        CHECK_EQ(info.bits_per_sample, bits);
        CHECK_EQ(info.is_float, depth == UPRES_F32);
        CHECK_EQ(info.channels, ch);
        CHECK_EQ(info.frames, 1);
        CHECK_EQ(info.orientation, 1);
        free(buf);
        upres_image_free(src);
        upres_image_free(dst);
    }
}

TEST(tiff_roundtrip_u16_exact) { roundtrip_depth(UPRES_U16, 16); }
TEST(tiff_roundtrip_u8_exact) { roundtrip_depth(UPRES_U8, 8); }

TEST(tiff_roundtrip_f32_exact_out_of_range)
{
    roundtrip_depth(UPRES_F32, 32);
    if (test_failed()) return;
    /* Values no 8/16-bit path could keep, and float specials. */
    const float special[] = {-0.0f, 1e-40f, -3.5f, 1e30f, 65504.0f, INFINITY, -INFINITY, NAN,
                             1.0f + 1e-7f, 0.333333343f, -1e-20f, 2.0f};
    upres_image *src;
    CHECK_OK(upres_image_new(&src, 4, 3, 1, UPRES_F32, NULL));
    memcpy(src->data, special, sizeof special);
    void *buf;
    size_t n;
    CHECK_OK(encode_tiff(src, 32, &buf, &n));
    upres_image *dst;
    CHECK_OK(upres_decode(NULL, buf, n, NULL, &dst, NULL));
    CHECK_EQ(dst->depth, UPRES_F32);
    CHECK(memcmp(dst->data, special, sizeof special) == 0);
    free(buf);
    upres_image_free(src);
    upres_image_free(dst);
}

TEST(tiff_encode_converts_depth_on_request)
{
    /* u8 written as 16-bit must come back as v * 257. */
    upres_image *src = tu_random_image(9, 4, 3, UPRES_U8, 77);
    CHECK(src);
    void *buf;
    size_t n;
    CHECK_OK(encode_tiff(src, 16, &buf, &n));
    upres_image *dst;
    CHECK_OK(upres_decode(NULL, buf, n, NULL, &dst, NULL));
    CHECK_EQ(dst->depth, UPRES_U16);
    for (size_t i = 0; i < 9 * 4 * 3; i++)
        CHECK_EQ(((uint16_t *)dst->data)[i], ((uint8_t *)src->data)[i] * 257);
    free(buf);
    upres_image_free(src);
    upres_image_free(dst);
}

/* Writes sp with write_tiff() from px and decodes the file with *dd (NULL:
 * defaults) into *img (and *info when not NULL). Returns the decode's
 * status, or UPRES_ERR_IO when libtiff could not write the file. */
static int decode_written(const tw_spec *sp, const void *px, const upres_decode_desc *dd,
                          upres_image **img, upres_file_info *info)
{
    size_t n;
    unsigned char *f = write_tiff(sp, px, &n);
    if (!f) return UPRES_ERR_IO;
    int st = upres_decode(NULL, f, n, dd, img, info);
    free(f);
    return st;
}

/* Decodes `file` and compares it with interleaved `expect` of the given
 * layout. */
static int decode_matches(const unsigned char *file, size_t n, const void *expect, uint32_t w,
                          uint32_t h, uint32_t ch, upres_depth d)
{
    upres_image *img = NULL;
    if (upres_decode(NULL, file, n, NULL, &img, NULL) != UPRES_OK) return 0;
    int ok = img->width == w && img->height == h && img->channels == ch && img->depth == d;
    size_t row = (size_t)w * ch * upres_depth_bytes(d);
    for (uint32_t y = 0; ok && y < h; y++)
        ok = memcmp(upres_image_row(img, y), (const uint8_t *)expect + y * row, row) == 0;
    upres_image_free(img);
    return ok;
}

/* Writes sp with write_tiff() from px and decodes it: 1 when that gives
 * exactly the interleaved `expect` (sp->w x sp->h, ch channels of depth d),
 * 0 when writing fails or the decode differs. */
static int written_decodes_as(const tw_spec *sp, const void *px, const void *expect, uint32_t ch,
                              upres_depth d)
{
    size_t n;
    unsigned char *f = write_tiff(sp, px, &n);
    if (!f) return 0;
    int ok = decode_matches(f, n, expect, sp->w, sp->h, ch, d);
    free(f);
    return ok;
}

TEST(tiff_separate_planar_strips)
{
    /* RGBA u8, 2 rows per strip (last strip short), LZW; and RGB u16 raw. */
    upres_image *a = tu_random_image(7, 5, 4, UPRES_U8, 5);
    CHECK(a);
    tw_spec s = spec(7, 5, 4, 8, PHOTOMETRIC_RGB);
    s.planar = PLANARCONFIG_SEPARATE;
    s.rps = 2;
    s.compression = COMPRESSION_LZW;
    s.extra = EXTRASAMPLE_UNASSALPHA;
    CHECK(written_decodes_as(&s, a->data, a->data, 4, UPRES_U8));
    upres_image *b = tu_random_image(11, 6, 3, UPRES_U16, 6);
    CHECK(b);
    s = spec(11, 6, 3, 16, PHOTOMETRIC_RGB);
    s.planar = PLANARCONFIG_SEPARATE;
    s.rps = 4;
    CHECK(written_decodes_as(&s, b->data, b->data, 3, UPRES_U16));
    upres_image_free(a);
    upres_image_free(b);
}

TEST(tiff_large_single_strip)
{
    /* libtiff splits big uncompressed strips into virtual ones ("chopping");
     * the row bookkeeping must follow. 300 rows, one strip, 270 KB. */
    upres_image *a = tu_random_image(300, 300, 3, UPRES_U8, 11);
    CHECK(a);
    tw_spec s = spec(300, 300, 3, 8, PHOTOMETRIC_RGB);
    CHECK(written_decodes_as(&s, a->data, a->data, 3, UPRES_U8));
    upres_image_free(a);
}

TEST(tiff_tiled_contig_and_separate)
{
    /* 40x23 with 16x16 tiles: partial tiles on the right and bottom edges. */
    upres_image *a = tu_random_image(40, 23, 3, UPRES_U8, 8);
    CHECK(a);
    tw_spec s = spec(40, 23, 3, 8, PHOTOMETRIC_RGB);
    s.tw = s.th = 16;
    s.compression = COMPRESSION_ADOBE_DEFLATE;
    CHECK(written_decodes_as(&s, a->data, a->data, 3, UPRES_U8));
    upres_image *b = tu_random_image(33, 17, 2, UPRES_U16, 9);
    CHECK(b);
    s = spec(33, 17, 2, 16, PHOTOMETRIC_MINISBLACK);
    s.tw = s.th = 16;
    s.planar = PLANARCONFIG_SEPARATE;
    s.extra = EXTRASAMPLE_UNASSALPHA;
    CHECK(written_decodes_as(&s, b->data, b->data, 2, UPRES_U16));
    upres_image *c = tu_random_image(20, 20, 1, UPRES_F32, 10);
    CHECK(c);
    s = spec(20, 20, 1, 32, PHOTOMETRIC_MINISBLACK);
    s.fmt = SAMPLEFORMAT_IEEEFP;
    s.tw = s.th = 16;
    CHECK(written_decodes_as(&s, c->data, c->data, 1, UPRES_F32));
    upres_image_free(a);
    upres_image_free(b);
    upres_image_free(c);
}

TEST(tiff_palette_via_fallback)
{
    const uint8_t rgb[4][3] = {{255, 0, 0}, {0, 128, 0}, {10, 20, 250}, {255, 255, 255}};
    uint16_t cmap[3 * 256];
    memset(cmap, 0, sizeof cmap);
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < 3; k++) cmap[k * 256 + i] = (uint16_t)(rgb[i][k] * 257);
    uint8_t idx[5 * 3];
    for (int i = 0; i < 15; i++) idx[i] = (uint8_t)((i * 7) % 4);
    tw_spec s = spec(5, 3, 1, 8, PHOTOMETRIC_PALETTE);
    s.cmap = cmap;
    upres_image *img;
    upres_file_info info;
    CHECK_OK(decode_written(&s, idx, NULL, &img, &info));
    CHECK_EQ(img->channels, 3);
    CHECK_EQ(img->depth, UPRES_U8);
    CHECK_EQ(info.bits_per_sample, 8);
    for (uint32_t y = 0; y < 3; y++)
        for (uint32_t x = 0; x < 5; x++) {
            const uint8_t *p = (const uint8_t *)upres_image_row(img, y) + x * 3;
            const uint8_t *e = rgb[idx[y * 5 + x]];
            CHECKF(p[0] == e[0] && p[1] == e[1] && p[2] == e[2], "(%u,%u): %d %d %d", x, y, p[0],
                   p[1], p[2]);
        }
    upres_image_free(img);
}

TEST(tiff_1bit_via_fallback)
{
    /* 10x2 bilevel, MSB first, rows padded to 2 bytes. */
    const uint8_t bits[4] = {0xA5, 0xC0, 0x0F, 0x40};
    for (int white = 0; white <= 1; white++) {
        tw_spec s = spec(10, 2, 1, 1, white ? PHOTOMETRIC_MINISWHITE : PHOTOMETRIC_MINISBLACK);
        upres_image *img;
        upres_file_info info;
        CHECK_OK(decode_written(&s, bits, NULL, &img, &info));
        CHECK_EQ(img->channels, 1);
        CHECK_EQ(img->depth, UPRES_U8);
        CHECK_EQ(info.bits_per_sample, 1);
        for (uint32_t y = 0; y < 2; y++)
            for (uint32_t x = 0; x < 10; x++) {
                int bit = (bits[y * 2 + x / 8] >> (7 - x % 8)) & 1;
                int v = (bit ^ white) ? 255 : 0;
                CHECK_EQ(((uint8_t *)upres_image_row(img, y))[x], v);
            }
        upres_image_free(img);
    }
}

TEST(tiff_miniswhite_inverts)
{
    const uint8_t g8[6] = {0, 10, 255, 128, 1, 254};
    tw_spec s = spec(3, 2, 1, 8, PHOTOMETRIC_MINISWHITE);
    const uint8_t e8[6] = {255, 245, 0, 127, 254, 1};
    CHECK(written_decodes_as(&s, g8, e8, 1, UPRES_U8));
    const uint16_t ga16[4] = {0, 1000, 65535, 40000}; /* gray, alpha, gray, alpha */
    s = spec(2, 1, 2, 16, PHOTOMETRIC_MINISWHITE);
    s.extra = EXTRASAMPLE_UNASSALPHA;
    const uint16_t e16[4] = {65535, 1000, 0, 40000}; /* alpha untouched */
    CHECK(written_decodes_as(&s, ga16, e16, 2, UPRES_U16));
}

TEST(tiff_associated_alpha_unpremultiplies)
{
    const uint8_t p8[12] = {64, 32, 0, 128, 0, 0, 0, 0, 200, 100, 50, 255};
    tw_spec s = spec(3, 1, 4, 8, PHOTOMETRIC_RGB);
    s.extra = EXTRASAMPLE_ASSOCALPHA;
    const uint8_t e8[12] = {128, 64, 0, 128, 0, 0, 0, 0, 200, 100, 50, 255};
    CHECK(written_decodes_as(&s, p8, e8, 4, UPRES_U8));
    const uint16_t p16[4] = {16384, 32768, 1000, 0};
    s = spec(2, 1, 2, 16, PHOTOMETRIC_MINISBLACK);
    s.extra = EXTRASAMPLE_ASSOCALPHA;
    const uint16_t e16[4] = {32768, 32768, 1000, 0};
    CHECK(written_decodes_as(&s, p16, e16, 2, UPRES_U16));
    /* Unassociated alpha is kept as stored. */
    s = spec(3, 1, 4, 8, PHOTOMETRIC_RGB);
    s.extra = EXTRASAMPLE_UNASSALPHA;
    CHECK(written_decodes_as(&s, p8, p8, 4, UPRES_U8));
}

/* Expected displayed pixel values of the 3x2 image {1..6} (row-major) after
 * orientation o: displayed rows, as EXIF defines them. */
static void oriented_3x2(int o, uint8_t out[6], uint32_t *w, uint32_t *h)
{
    static const uint8_t by_o[9][6] = {
        {0}, {1, 2, 3, 4, 5, 6}, {3, 2, 1, 6, 5, 4}, {6, 5, 4, 3, 2, 1}, {4, 5, 6, 1, 2, 3},
        {1, 4, 2, 5, 3, 6}, {4, 1, 5, 2, 6, 3}, {6, 3, 5, 2, 4, 1}, {3, 6, 2, 5, 1, 4}};
    memcpy(out, by_o[o], 6);
    *w = o >= 5 ? 2 : 3;
    *h = o >= 5 ? 3 : 2;
}

TEST(tiff_orientation_applied_once)
{
    const uint8_t g[6] = {1, 2, 3, 4, 5, 6};
    uint16_t cmap[3 * 256];
    for (int i = 0; i < 256; i++) cmap[i] = cmap[256 + i] = cmap[512 + i] = (uint16_t)(i * 257);
    for (int o = 1; o <= 8; o++) {
        uint8_t e[6];
        uint32_t ew, eh;
        oriented_3x2(o, e, &ew, &eh);
        for (int pal = 0; pal <= 1; pal++) {
            /* pal = 1 goes through libtiff's RGBA renderer (the fallback). */
            tw_spec s = spec(3, 2, 1, 8, pal ? PHOTOMETRIC_PALETTE : PHOTOMETRIC_MINISBLACK);
            s.orientation = (uint16_t)o;
            if (pal) s.cmap = cmap;
            upres_image *img;
            upres_file_info info;
            CHECK_OK(decode_written(&s, g, NULL, &img, &info));
            CHECK_EQ(info.orientation, o);
            CHECK_EQ(img->orientation, 1);
            CHECK_EQ(img->width, ew);
            CHECK_EQ(img->height, eh);
            for (uint32_t i = 0; i < 6; i++) {
                const uint8_t *p = (const uint8_t *)upres_image_row(img, i / ew) + (i % ew) * img->channels;
                CHECKF(p[0] == e[i], "orientation %d palette %d pixel %u: %d != %d", o, pal, i, p[0], e[i]);
            }
            upres_image_free(img);
            /* Without applying it, the stored pixels and the tag come back. */
            upres_decode_desc dd = upres_decode_desc_defaults();
            dd.apply_orientation = 0;
            CHECK_OK(decode_written(&s, g, &dd, &img, NULL));
            CHECK_EQ(img->orientation, o);
            CHECK_EQ(img->width, 3);
            for (uint32_t i = 0; i < 6; i++)
                CHECK_EQ(((const uint8_t *)upres_image_row(img, i / 3))[(i % 3) * img->channels], g[i]);
            upres_image_free(img);
        }
    }
}

TEST(tiff_cmyk_via_fallback)
{
    const uint8_t cmyk[8] = {0, 255, 255, 0, 0, 0, 0, 255};
    tw_spec s = spec(2, 1, 4, 8, PHOTOMETRIC_SEPARATED);
    upres_image *img;
    upres_file_info info;
    CHECK_OK(decode_written(&s, cmyk, NULL, &img, &info));
    CHECK_EQ(info.cmyk, 1);
    CHECK_EQ(img->channels, 3);
    const uint8_t e[6] = {255, 0, 0, 0, 0, 0};
    CHECK(memcmp(img->data, e, 6) == 0);
    upres_image_free(img);
}

TEST(tiff_jpeg_ycbcr_via_fallback)
{
    if (!TIFFIsCODECConfigured(COMPRESSION_JPEG)) SKIP("libtiff without JPEG");
    uint8_t px[32 * 32 * 3];
    for (int i = 0; i < 32 * 32; i++) {
        px[i * 3] = 200;
        px[i * 3 + 1] = 100;
        px[i * 3 + 2] = 50;
    }
    tw_spec s = spec(32, 32, 3, 8, PHOTOMETRIC_YCBCR);
    s.compression = COMPRESSION_JPEG;
    s.rps = 16;
    upres_image *img;
    CHECK_OK(decode_written(&s, px, NULL, &img, NULL));
    CHECK_EQ(img->channels, 3);
    CHECK_EQ(img->width, 32);
    for (size_t i = 0; i < sizeof px; i++)
        CHECKF(abs(((uint8_t *)img->data)[i] - px[i]) <= 4, "sample %zu: %d vs %d", i,
               ((uint8_t *)img->data)[i], px[i]);
    upres_image_free(img);
}

TEST(tiff_icc_roundtrip_identical)
{
    uint8_t icc[300];
    for (size_t i = 0; i < sizeof icc; i++) icc[i] = (uint8_t)(i * 31 + 7);
    icc[0] = 0, icc[1] = 0, icc[2] = 1, icc[3] = 44; /* size 300, big endian */
    memcpy(icc + 16, "RGB ", 4);
    memcpy(icc + 36, "acsp", 4);
    upres_image *src = tu_random_image(8, 8, 3, UPRES_U16, 3);
    CHECK(src);
    CHECK_OK(upres_image_set_icc(src, icc, sizeof icc));
    void *buf;
    size_t n;
    CHECK_OK(encode_tiff(src, 0, &buf, &n));
    upres_image *dst;
    upres_file_info info;
    CHECK_OK(upres_decode(NULL, buf, n, NULL, &dst, &info));
    CHECK_EQ(info.icc_size, sizeof icc);
    CHECK_EQ(dst->icc_size, sizeof icc);
    CHECK(memcmp(dst->icc, icc, sizeof icc) == 0);
    upres_image_free(dst);
    /* A profile over the metadata limit is dropped, the image still loads. */
    upres_ctx_desc cd = upres_ctx_desc_defaults();
    cd.threads = 1;
    cd.limits.max_metadata_bytes = 100;
    upres_ctx *ctx;
    CHECK_OK(upres_ctx_new(&cd, &ctx));
    CHECK_OK(upres_decode(ctx, buf, n, NULL, &dst, NULL));
    CHECK(dst->icc == NULL);
    upres_image_free(dst);
    upres_ctx_free(ctx);
    free(buf);
    upres_image_free(src);
}

TEST(tiff_multipage_counts_frames_and_reads_first)
{
    uint8_t g[4] = {9, 8, 7, 6};
    tw_spec s = spec(2, 2, 1, 8, PHOTOMETRIC_MINISBLACK);
    s.pages = 3;
    upres_image *img;
    upres_file_info info;
    CHECK_OK(decode_written(&s, g, NULL, &img, &info));
    CHECK_EQ(info.frames, 3);
    CHECK(memcmp(img->data, g, 4) == 0);
    upres_image_free(img);
}

TEST(tiff_limits_refuse_large_images)
{
    upres_image *src = tu_random_image(40, 30, 3, UPRES_U8, 4);
    CHECK(src);
    void *buf;
    size_t n;
    CHECK_OK(encode_tiff(src, 0, &buf, &n));
    const char *fail = tu_decode_refused(buf, n, 1000, "TIFF: ");
    CHECKF(!fail, "%s", fail);
    free(buf);
    upres_image_free(src);
}

TEST(tiff_unsupported_sample_format_fails_cleanly)
{
    int16_t v[4] = {-5, 3, 100, -32768};
    tw_spec s = spec(2, 2, 1, 16, PHOTOMETRIC_MINISBLACK);
    s.fmt = SAMPLEFORMAT_INT;
    size_t n;
    unsigned char *f = write_tiff(&s, v, &n);
    CHECK(f);
    upres_ctx *ctx = tu_ctx_1thread();
    CHECK(ctx);
    upres_image *img = NULL;
    CHECK_EQ(upres_decode(ctx, f, n, NULL, &img, NULL), UPRES_ERR_UNSUPPORTED);
    CHECK(img == NULL);
    CHECK(strncmp(upres_ctx_error(ctx), "TIFF: ", 6) == 0);
    upres_ctx_free(ctx);
    free(f);
}

/* Every strict prefix must fail with a TIFF error (once past the 8-byte
 * header); every single-bit flip must either fail or give a well-formed
 * image. Returns a failure message or NULL. */
static const char *mangle(const unsigned char *file, size_t n, int flips, uint32_t seed)
{
    return tu_mangle(file, n, flips, seed, "TIFF: ", 8, 1);
}

/* A 16x16 8-bit gray uncompressed TIFF with its directory before the pixel
 * data (libtiff itself writes the directory last), so that truncations cut
 * into the strip. Writes 122 + 256 bytes into out. */
static size_t handmade_tiff(unsigned char out[378])
{
    static const uint16_t tags[9][2] = {{256, 16}, {257, 16}, {258, 8}, {259, 1}, {262, 1},
                                        {273, 122}, {277, 1}, {278, 16}, {279, 256}};
    memset(out, 0, 378);
    memcpy(out, "II*\0\x08\0\0\0", 8);
    out[8] = 9;
    for (int i = 0; i < 9; i++) {
        unsigned char *e = out + 10 + i * 12;
        e[0] = (unsigned char)(tags[i][0] & 255), e[1] = (unsigned char)(tags[i][0] >> 8);
        e[2] = 3; /* SHORT */
        e[4] = 1; /* count */
        e[8] = (unsigned char)(tags[i][1] & 255), e[9] = (unsigned char)(tags[i][1] >> 8);
    }
    for (int i = 0; i < 256; i++) out[122 + i] = (unsigned char)(i * 3);
    return 378;
}

TEST(tiff_truncated_strip_fails)
{
    unsigned char f[378];
    size_t n = handmade_tiff(f);
    upres_image *img;
    CHECK_OK(upres_decode(NULL, f, n, NULL, &img, NULL));
    CHECK_EQ(img->width, 16);
    for (int i = 0; i < 256; i++) CHECK_EQ(((uint8_t *)img->data)[i], (uint8_t)(i * 3));
    upres_image_free(img);
    upres_ctx *ctx = tu_ctx_1thread();
    CHECK(ctx);
    int saved = tu_stderr_begin();
    int bad = -1;
    for (size_t cut = 122; cut < n && bad < 0; cut++) {
        img = NULL;
        int st = upres_decode(ctx, f, cut, NULL, &img, NULL);
        if (st != UPRES_ERR_CORRUPT || img) bad = (int)cut;
        upres_image_free(img);
    }
    long printed = tu_stderr_end(saved);
    CHECKF(bad < 0, "cut at %d did not fail as corrupt", bad);
    CHECK_EQ(printed, 0);
    upres_ctx_free(ctx);
}

TEST(tiff_truncation_and_bitflips_never_crash)
{
    /* Our own deflate encoding, and libtiff-written raw tiles and palette. */
    upres_image *src = tu_random_image(12, 9, 4, UPRES_U16, 21);
    CHECK(src);
    void *enc;
    size_t en;
    CHECK_OK(encode_tiff(src, 0, &enc, &en));
    upres_image *t = tu_random_image(20, 18, 3, UPRES_U8, 22);
    CHECK(t);
    tw_spec s = spec(20, 18, 3, 8, PHOTOMETRIC_RGB);
    s.tw = s.th = 16;
    size_t tn;
    unsigned char *tiled = write_tiff(&s, t->data, &tn);
    CHECK(tiled);
    uint16_t cmap[3 * 16];
    for (int i = 0; i < 48; i++) cmap[i] = (uint16_t)(i * 1300);
    uint8_t idx[8 * 6 / 2];
    for (size_t i = 0; i < sizeof idx; i++) idx[i] = (uint8_t)(i * 37);
    s = spec(8, 6, 1, 4, PHOTOMETRIC_PALETTE);
    s.cmap = cmap;
    s.compression = COMPRESSION_PACKBITS;
    size_t pn;
    unsigned char *pal = write_tiff(&s, idx, &pn);
    CHECK(pal);

    size_t qn;
    unsigned char *pil = test_read_file(test_fixture("tw/pil_rgba_lzw.tif"), &qn);
    CHECK(pil);

    int saved = tu_stderr_begin();
    const char *f1 = mangle(enc, en, 1500, 99);
    const char *f2 = f1 ? NULL : mangle(tiled, tn, 1500, 98);
    const char *f3 = f1 || f2 ? NULL : mangle(pal, pn, 1500, 97);
    const char *f4 = f1 || f2 || f3 ? NULL : mangle(pil, qn, 1500, 96);
    unsigned char hand[378];
    size_t hn = handmade_tiff(hand);
    const char *f5 = f1 || f2 || f3 || f4 ? NULL : mangle(hand, hn, 1500, 95);
    long printed = tu_stderr_end(saved);
    CHECKF(!f1, "deflate TIFF: %s", f1);
    CHECKF(!f2, "tiled TIFF: %s", f2);
    CHECKF(!f3, "palette TIFF: %s", f3);
    CHECKF(!f4, "Pillow TIFF: %s", f4);
    CHECKF(!f5, "directory-first TIFF: %s", f5);
    free(pil);
    CHECK_EQ(printed, 0);
    free(enc);
    free(tiled);
    free(pal);
    upres_image_free(src);
    upres_image_free(t);
}

/* Pixel formulas of tests/gen_tiff_webp_fixtures.py (13x7 images). */
static int fx_r(int x, int y) { return (x * 17 + y * 5) & 255; }
static int fx_g(int x, int y) { return (x * 3 + y * 29) & 255; }
static int fx_b(int x, int y) { return (x * y * 7 + 11) & 255; }
static int fx_a(int x, int y) { return 255 - (x + y) * 9; }

static upres_image *load_fixture(const char *name, upres_file_info *info)
{
    size_t n;
    unsigned char *f = test_read_file(test_fixture(name), &n);
    if (!f) return NULL;
    upres_image *img = NULL;
    upres_decode(NULL, f, n, NULL, &img, info);
    free(f);
    return img;
}

TEST(tiff_pillow_fixtures)
{
    upres_file_info info;
    upres_image *img = load_fixture("tw/pil_rgba_lzw.tif", &info);
    CHECK(img);
    CHECK_EQ(img->channels, 4);
    CHECK_EQ(img->depth, UPRES_U8);
    for (int y = 0; y < 7; y++)
        for (int x = 0; x < 13; x++) {
            const uint8_t *p = (const uint8_t *)upres_image_row(img, (uint32_t)y) + x * 4;
            CHECKF(p[0] == fx_r(x, y) && p[1] == fx_g(x, y) && p[2] == fx_b(x, y) && p[3] == fx_a(x, y),
                   "rgba (%d,%d)", x, y);
        }
    upres_image_free(img);

    img = load_fixture("tw/pil_gray16_be.tif", &info);
    CHECK(img);
    CHECK_EQ(img->channels, 1);
    CHECK_EQ(img->depth, UPRES_U16);
    CHECK_EQ(info.bits_per_sample, 16);
    for (int y = 0; y < 7; y++)
        for (int x = 0; x < 13; x++)
            CHECK_EQ(((const uint16_t *)upres_image_row(img, (uint32_t)y))[x], (x * 4099 + y * 611 + 7) & 65535);
    upres_image_free(img);

    img = load_fixture("tw/pil_float.tif", &info);
    CHECK(img);
    CHECK_EQ(img->depth, UPRES_F32);
    CHECK_EQ(info.is_float, 1);
    for (int y = 0; y < 7; y++)
        for (int x = 0; x < 13; x++)
            CHECK(((const float *)upres_image_row(img, (uint32_t)y))[x] == (float)((x - 6) * 0.25 + y * 0.125));
    upres_image_free(img);
}

/* Pixels converted from CMYK to RGB must not keep the CMYK profile; an RGB
 * profile on an RGB TIFF is kept. */
TEST(tiff_cmyk_profile_not_attached_to_rgb)
{
    uint8_t icc[200] = {0, 0, 0, 200};
    memcpy(icc + 16, "CMYK", 4);
    memcpy(icc + 36, "acsp", 4);
    const uint8_t cmyk[8] = {0, 255, 255, 0, 0, 0, 0, 255};
    tw_spec s = spec(2, 1, 4, 8, PHOTOMETRIC_SEPARATED);
    s.icc = icc;
    s.icc_size = sizeof icc;
    upres_image *img;
    upres_file_info info;
    CHECK_OK(decode_written(&s, cmyk, NULL, &img, &info));
    CHECK_EQ(img->channels, 3);
    CHECK(img->icc == NULL);
    CHECK_EQ(info.icc_size, 0);
    upres_image_free(img);
    memcpy(icc + 16, "RGB ", 4);
    const uint8_t rgb[6] = {1, 2, 3, 4, 5, 6};
    s = spec(2, 1, 3, 8, PHOTOMETRIC_RGB);
    s.icc = icc;
    s.icc_size = sizeof icc;
    CHECK_OK(decode_written(&s, rgb, NULL, &img, &info));
    CHECK(img->icc_size == sizeof icc && memcmp(img->icc, icc, sizeof icc) == 0);
    upres_image_free(img);
}
