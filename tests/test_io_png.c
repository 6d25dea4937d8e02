/* Tests of the PNG codec (src/io/io_png.c): every colour type and bit depth,
 * tRNS, interlacing, 8/16-bit round trips, ICC and eXIf, and strictness
 * against truncation and bit flips. Fixtures come from tests/gen_io_fixtures.py;
 * io_pattern() below must match its pattern(). */
#include "test.h"
#include "upres.h"

#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

/* Sample in [0, 2^bits) at (x, y, channel c); gen_io_fixtures.py pattern(). */
static unsigned io_pattern(uint32_t x, uint32_t y, uint32_t c, unsigned bits)
{
    uint32_t h = (x * 131u + y * 197u + c * 71u + x * y * 13u + 7u) * 2654435761u;
    return h >> (32 - bits);
}

/* Sample (x, y, c) of an image as an integer, whatever its depth. */
static unsigned px_at(const upres_image *img, uint32_t x, uint32_t y, uint32_t c)
{
    const uint8_t *row = upres_image_row(img, y);
    size_t i = (size_t)x * img->channels + c;
    if (img->depth == UPRES_U16) return ((const uint16_t *)(const void *)row)[i];
    return row[i];
}

static upres_status load_fixture(const char *name, upres_image **img, upres_file_info *info,
                                 int apply_orientation)
{
    upres_decode_desc d = upres_decode_desc_defaults();
    d.apply_orientation = apply_orientation;
    return (upres_status)upres_load(NULL, test_fixture(name), &d, img, info);
}

/* Fills an image with the pattern at full range of its depth. */
static void fill_pattern(upres_image *img, uint32_t salt)
{
    unsigned bits = img->depth == UPRES_U16 ? 16 : 8;
    for (uint32_t y = 0; y < img->height; y++)
        for (uint32_t x = 0; x < img->width; x++)
            for (uint32_t c = 0; c < img->channels; c++) {
                unsigned v = io_pattern(x + salt, y, c, bits);
                uint8_t *row = upres_image_row(img, y);
                size_t i = (size_t)x * img->channels + c;
                if (bits == 16) ((uint16_t *)(void *)row)[i] = (uint16_t)v;
                else row[i] = (uint8_t)v;
            }
}

/* Encodes img as PNG and decodes it again; 0 on success. */
static int png_roundtrip(const upres_image *img, upres_image **back, upres_file_info *info)
{
    upres_encode_desc e = upres_encode_desc_defaults();
    e.format = UPRES_FORMAT_PNG;
    void *buf;
    size_t n;
    int st = upres_encode(NULL, img, &e, &buf, &n);
    if (st) return st;
    st = upres_decode(NULL, buf, n, NULL, back, info);
    free(buf);
    return st;
}

TEST(png_roundtrip_16bit_exact_every_layout)
{
    for (uint32_t ch = 1; ch <= 4; ch++) {
        upres_image *img, *back;
        upres_file_info info;
        CHECK_OK(upres_image_new(&img, 23, 17, ch, UPRES_U16, NULL));
        fill_pattern(img, ch);
        CHECK_OK(png_roundtrip(img, &back, &info));
        CHECKF(tu_same_pixels(img, back), "16-bit %u-channel round trip differs", ch);
        CHECK_EQ(info.bits_per_sample, 16);
        CHECK_EQ(info.channels, ch);
        CHECK_EQ(info.interlaced, 0);
        upres_image_free(img);
        upres_image_free(back);
    }
}

TEST(png_roundtrip_8bit_exact_every_layout)
{
    for (uint32_t ch = 1; ch <= 4; ch++) {
        upres_image *img, *back;
        upres_file_info info;
        CHECK_OK(upres_image_new(&img, 31, 9, ch, UPRES_U8, NULL));
        fill_pattern(img, 100 + ch);
        CHECK_OK(png_roundtrip(img, &back, &info));
        CHECKF(tu_same_pixels(img, back), "8-bit %u-channel round trip differs", ch);
        CHECK_EQ(info.bits_per_sample, 8);
        upres_image_free(img);
        upres_image_free(back);
    }
}

TEST(png_roundtrip_through_files_and_levels)
{
    upres_image *img, *back;
    CHECK_OK(upres_image_new(&img, 64, 40, 4, UPRES_U16, NULL));
    fill_pattern(img, 7);
    upres_encode_desc e = upres_encode_desc_defaults();
    size_t sizes[2];
    int levels[2] = {0, 9};
    for (int i = 0; i < 2; i++) {
        e.png_compression = levels[i];
        CHECK_OK(upres_save(NULL, img, test_tmp("rt.png"), &e));
        CHECK_OK(upres_load(NULL, test_tmp("rt.png"), NULL, &back, NULL));
        CHECK(tu_same_pixels(img, back));
        upres_image_free(back);
        unsigned char *f = test_read_file(test_tmp("rt.png"), &sizes[i]);
        CHECK(f != NULL);
        free(f);
    }
    /* Level 0 stores: at least the raw pixel bytes. */
    CHECK(sizes[0] >= (size_t)64 * 40 * 8);
    CHECK(sizes[1] < sizes[0]);
    upres_image_free(img);
}

TEST(png_decode_gray_low_bit_depths)
{
    static const struct { const char *name; unsigned bits, w, h; } f[] = {
        {"io/gray1.png", 1, 13, 5}, {"io/gray2.png", 2, 11, 3}, {"io/gray4.png", 4, 13, 5}};
    for (int i = 0; i < 3; i++) {
        upres_image *img;
        upres_file_info info;
        CHECK_OK(load_fixture(f[i].name, &img, &info, 1));
        CHECK_EQ(img->width, f[i].w);
        CHECK_EQ(img->height, f[i].h);
        CHECK_EQ(img->channels, 1);
        CHECK_EQ(img->depth, UPRES_U8);
        CHECK_EQ(info.bits_per_sample, f[i].bits);
        unsigned scale = 255 / ((1u << f[i].bits) - 1);
        for (uint32_t y = 0; y < img->height; y++)
            for (uint32_t x = 0; x < img->width; x++)
                CHECKF(px_at(img, x, y, 0) == io_pattern(x, y, 0, f[i].bits) * scale,
                       "%s at %u,%u: %u", f[i].name, x, y, px_at(img, x, y, 0));
        upres_image_free(img);
    }
}

/* Palette entry i of the fixtures: (i*16, 255-i*16, i*53 & 255). */
static unsigned pal_entry(unsigned i, unsigned c)
{
    return c == 0 ? (i * 16) & 255 : c == 1 ? (255 - i * 16) & 255 : (i * 53) & 255;
}

TEST(png_decode_palette_with_trns_gives_rgba)
{
    upres_image *img;
    upres_file_info info;
    CHECK_OK(load_fixture("io/palette4_trns.png", &img, &info, 1));
    CHECK_EQ(img->channels, 4);
    CHECK_EQ(img->depth, UPRES_U8);
    CHECK_EQ(info.bits_per_sample, 4);
    for (uint32_t y = 0; y < img->height; y++)
        for (uint32_t x = 0; x < img->width; x++) {
            unsigned idx = io_pattern(x, y, 0, 4);
            for (unsigned c = 0; c < 3; c++) CHECK_EQ(px_at(img, x, y, c), pal_entry(idx, c));
            CHECK_EQ(px_at(img, x, y, 3), idx < 10 ? idx * 25 : 255);
        }
    upres_image_free(img);
}

TEST(png_decode_palette_without_trns_gives_rgb)
{
    upres_image *img;
    CHECK_OK(load_fixture("io/palette2.png", &img, NULL, 1));
    CHECK_EQ(img->channels, 3);
    CHECK_EQ(img->width, 9);
    for (uint32_t y = 0; y < img->height; y++)
        for (uint32_t x = 0; x < img->width; x++)
            for (unsigned c = 0; c < 3; c++)
                CHECK_EQ(px_at(img, x, y, c), pal_entry(io_pattern(x, y, 0, 2), c));
    upres_image_free(img);
}

TEST(png_decode_trns_key_on_gray_and_rgb)
{
    upres_image *img;
    CHECK_OK(load_fixture("io/gray_trns.png", &img, NULL, 1));
    CHECK_EQ(img->channels, 2);
    int transparent = 0;
    for (uint32_t y = 0; y < img->height; y++)
        for (uint32_t x = 0; x < img->width; x++) {
            unsigned v = (x + y) % 3 == 0 ? 77 : io_pattern(x, y, 0, 8);
            CHECK_EQ(px_at(img, x, y, 0), v);
            CHECK_EQ(px_at(img, x, y, 1), v == 77 ? 0 : 255);
            transparent += v == 77;
        }
    CHECK(transparent > 0);
    upres_image_free(img);

    CHECK_OK(load_fixture("io/rgb_trns.png", &img, NULL, 1));
    CHECK_EQ(img->channels, 4);
    transparent = 0;
    for (uint32_t y = 0; y < img->height; y++)
        for (uint32_t x = 0; x < img->width; x++) {
            int key = (x * y) % 4 == 1;
            for (unsigned c = 0; c < 3; c++)
                CHECK_EQ(px_at(img, x, y, c), key ? 10u + 10 * c : io_pattern(x, y, c, 8));
            CHECK_EQ(px_at(img, x, y, 3), key ? 0 : 255);
            transparent += key;
        }
    CHECK(transparent > 0);
    upres_image_free(img);

    upres_file_info info;
    CHECK_OK(load_fixture("io/gray16_trns.png", &img, &info, 1));
    CHECK_EQ(img->channels, 2);
    CHECK_EQ(img->depth, UPRES_U16);
    CHECK_EQ(info.bits_per_sample, 16);
    for (uint32_t y = 0; y < img->height; y++)
        for (uint32_t x = 0; x < img->width; x++) {
            unsigned v = x == y ? 0x1234 : io_pattern(x, y, 0, 16);
            CHECK_EQ(px_at(img, x, y, 0), v);
            CHECK_EQ(px_at(img, x, y, 1), v == 0x1234 ? 0 : 65535);
        }
    upres_image_free(img);
}

TEST(png_decode_gray_alpha_and_16bit_fixtures)
{
    static const struct { const char *name; uint32_t ch; unsigned bits; } f[] = {
        {"io/ga8.png", 2, 8}, {"io/rgb16.png", 3, 16}, {"io/rgba16.png", 4, 16}};
    for (int i = 0; i < 3; i++) {
        upres_image *img;
        CHECK_OK(load_fixture(f[i].name, &img, NULL, 1));
        CHECK_EQ(img->channels, f[i].ch);
        CHECK_EQ(img->depth, f[i].bits == 16 ? UPRES_U16 : UPRES_U8);
        for (uint32_t y = 0; y < img->height; y++)
            for (uint32_t x = 0; x < img->width; x++)
                for (uint32_t c = 0; c < f[i].ch; c++)
                    CHECKF(px_at(img, x, y, c) == io_pattern(x, y, c, f[i].bits), "%s %u,%u,%u",
                           f[i].name, x, y, c);
        upres_image_free(img);
    }
}

TEST(png_decode_icc_profile)
{
    size_t n;
    unsigned char *icc = test_read_file(test_fixture("io/srgb.icc"), &n);
    CHECK(icc != NULL);
    upres_image *img;
    upres_file_info info;
    CHECK_OK(load_fixture("io/icc_rgb.png", &img, &info, 1));
    CHECK_EQ(img->icc_size, n);
    CHECK(memcmp(img->icc, icc, n) == 0);
    CHECK_EQ(info.icc_size, n);
    for (uint32_t c = 0; c < 3; c++) CHECK_EQ(px_at(img, 5, 3, c), io_pattern(5, 3, c, 8));
    upres_image_free(img);
    free(icc);
}

TEST(png_decode_exif_orientation_after_idat)
{
    upres_image *img;
    upres_file_info info;
    CHECK_OK(load_fixture("io/exif3.png", &img, &info, 0));
    CHECK_EQ(img->orientation, 3);
    CHECK_EQ(info.orientation, 3);
    CHECK_EQ(px_at(img, 0, 0, 0), io_pattern(0, 0, 0, 8));
    upres_image_free(img);
    CHECK_OK(load_fixture("io/exif3.png", &img, &info, 1));
    CHECK_EQ(img->orientation, 1);
    CHECK_EQ(info.orientation, 3);
    for (uint32_t y = 0; y < 4; y++)
        for (uint32_t x = 0; x < 6; x++)
            CHECK_EQ(px_at(img, x, y, 1), io_pattern(5 - x, 3 - y, 1, 8));
    upres_image_free(img);
}

/* ---- PNGs written here with libpng: interlaced vs plain ---------------- */

typedef struct test_png_out {
    unsigned char *data;
    size_t size, cap;
} test_png_out;

static void test_png_write(png_structp png, png_bytep p, size_t n)
{
    test_png_out *o = png_get_io_ptr(png);
    if (o->size + n > o->cap) {
        size_t cap = (o->size + n) * 2;
        unsigned char *d = realloc(o->data, cap);
        if (!d) png_error(png, "oom");
        o->data = d;
        o->cap = cap;
    }
    memcpy(o->data + o->size, p, n);
    o->size += n;
}

static void test_png_flush(png_structp png) { (void)png; }

/* Writes a w x h PNG of the given type whose sample (x,y,c) is
 * io_pattern(x,y,c,bits) (palette: index pattern, 2^bits-entry palette
 * pal_entry, with a tRNS of 3 entries). Returns 0 on success. */
static int make_png(test_png_out *o, uint32_t w, uint32_t h, int bits, int ctype, int interlace)
{
    memset(o, 0, sizeof *o);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    unsigned char *volatile row = NULL;
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free(row);
        return -1;
    }
    png_set_write_fn(png, o, test_png_write, test_png_flush);
    png_set_IHDR(png, info, w, h, bits, ctype,
                 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, 0, 0);
    int ch = ctype == PNG_COLOR_TYPE_GRAY || ctype == PNG_COLOR_TYPE_PALETTE ? 1
             : ctype == PNG_COLOR_TYPE_GRAY_ALPHA ? 2 : ctype == PNG_COLOR_TYPE_RGB ? 3 : 4;
    if (ctype == PNG_COLOR_TYPE_PALETTE) {
        png_color pal[256];
        for (unsigned i = 0; i < (1u << bits); i++) {
            pal[i].red = (png_byte)pal_entry(i, 0);
            pal[i].green = (png_byte)pal_entry(i, 1);
            pal[i].blue = (png_byte)pal_entry(i, 2);
        }
        png_set_PLTE(png, info, pal, 1 << bits);
        png_byte trns[3] = {0, 100, 200};
        png_set_tRNS(png, info, trns, 3, NULL);
    }
    png_write_info(png, info);
    int passes = png_set_interlace_handling(png);
    row = malloc((size_t)w * ch * 2);
    for (int p = 0; p < passes; p++)
        for (uint32_t y = 0; y < h; y++) {
            /* Pack MSB first, as PNG stores samples. */
            memset(row, 0, (size_t)w * ch * 2);
            for (uint32_t x = 0; x < w; x++)
                for (int c = 0; c < ch; c++) {
                    unsigned v = io_pattern(x, y, (uint32_t)c, (unsigned)bits);
                    size_t s = (size_t)x * ch + (size_t)c;
                    if (bits == 16) {
                        row[2 * s] = (unsigned char)(v >> 8);
                        row[2 * s + 1] = (unsigned char)v;
                    } else if (bits == 8) {
                        row[s] = (unsigned char)v;
                    } else {
                        size_t bit = s * (size_t)bits;
                        row[bit / 8] |= (unsigned char)(v << (8 - bits - bit % 8));
                    }
                }
            png_write_row(png, row);
        }
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(row);
    return 0;
}

TEST(png_interlaced_decodes_like_plain)
{
    static const struct { int bits, ctype; } k[] = {
        {1, PNG_COLOR_TYPE_GRAY},       {2, PNG_COLOR_TYPE_GRAY},  {4, PNG_COLOR_TYPE_GRAY},
        {8, PNG_COLOR_TYPE_GRAY},       {16, PNG_COLOR_TYPE_GRAY}, {8, PNG_COLOR_TYPE_GRAY_ALPHA},
        {8, PNG_COLOR_TYPE_RGB},        {16, PNG_COLOR_TYPE_RGB_ALPHA},
        {4, PNG_COLOR_TYPE_PALETTE},    {8, PNG_COLOR_TYPE_PALETTE}};
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        test_png_out plain, inter;
        CHECK(make_png(&plain, 37, 19, k[i].bits, k[i].ctype, 0) == 0);
        CHECK(make_png(&inter, 37, 19, k[i].bits, k[i].ctype, 1) == 0);
        CHECK(plain.size != inter.size || memcmp(plain.data, inter.data, plain.size) != 0);
        upres_image *a, *b;
        upres_file_info ia, ib;
        CHECK_OK(upres_decode(NULL, plain.data, plain.size, NULL, &a, &ia));
        CHECK_OK(upres_decode(NULL, inter.data, inter.size, NULL, &b, &ib));
        CHECK_EQ(ia.interlaced, 0);
        CHECK_EQ(ib.interlaced, 1);
        CHECK_EQ(ib.bits_per_sample, k[i].bits);
        CHECKF(tu_same_pixels(a, b), "bits %d type %d: interlaced differs", k[i].bits, k[i].ctype);
        /* And both hold the values written. */
        for (uint32_t y = 0; y < 19; y++)
            for (uint32_t x = 0; x < 37; x++) {
                if (k[i].ctype == PNG_COLOR_TYPE_PALETTE) {
                    unsigned idx = io_pattern(x, y, 0, (unsigned)k[i].bits);
                    CHECK_EQ(b->channels, 4);
                    CHECK_EQ(px_at(b, x, y, 1), pal_entry(idx, 1));
                    CHECK_EQ(px_at(b, x, y, 3), idx < 3 ? idx * 100 : 255);
                } else {
                    unsigned bits = (unsigned)k[i].bits;
                    unsigned scale = bits >= 8 ? 1 : 255 / ((1u << bits) - 1);
                    for (uint32_t c = 0; c < b->channels; c++)
                        CHECK_EQ(px_at(b, x, y, c), io_pattern(x, y, c, bits) * scale);
                }
            }
        upres_image_free(a);
        upres_image_free(b);
        free(plain.data);
        free(inter.data);
    }
}

/* ---- strictness ---------------------------------------------------------- */

static int is_rejection(int st)
{
    return st == UPRES_ERR_CORRUPT || st == UPRES_ERR_UNKNOWN_FORMAT;
}

TEST(png_every_truncation_fails)
{
    const char *names[] = {"io/icc_rgb.png", "io/chunks.png", "io/exif3.png"};
    for (int f = 0; f < 3; f++) {
        size_t n;
        unsigned char *data = test_read_file(test_fixture(names[f]), &n);
        CHECK(data != NULL);
        upres_image *img;
        CHECK_OK(upres_decode(NULL, data, n, NULL, &img, NULL));
        upres_image_free(img);
        for (size_t len = 0; len < n; len++) {
            /* A fresh copy of exactly len bytes so ASan sees any overread. */
            unsigned char *cut = malloc(len ? len : 1);
            memcpy(cut, data, len);
            int st = upres_decode(NULL, cut, len, NULL, &img, NULL);
            free(cut);
            CHECKF(is_rejection(st), "%s cut to %zu bytes: %d", names[f], len, st);
            CHECK(img == NULL);
        }
        free(data);
    }
}

TEST(png_every_bit_flip_fails)
{
    const char *names[] = {"io/chunks.png", "io/palette4_trns.png", "io/exif3.png"};
    for (int f = 0; f < 3; f++) {
        size_t n;
        unsigned char *data = test_read_file(test_fixture(names[f]), &n);
        CHECK(data != NULL);
        for (size_t i = 0; i < n * 8; i++) {
            data[i / 8] ^= (unsigned char)(1u << (i % 8));
            upres_image *img;
            int st = upres_decode(NULL, data, n, NULL, &img, NULL);
            data[i / 8] ^= (unsigned char)(1u << (i % 8));
            CHECKF(is_rejection(st), "%s: flip of byte %zu bit %zu decoded (%d)", names[f],
                   i / 8, i % 8, st);
        }
        free(data);
    }
}

TEST(png_error_detail_names_the_problem)
{
    size_t n;
    unsigned char *data = test_read_file(test_fixture("io/chunks.png"), &n);
    CHECK(data != NULL);
    upres_ctx *ctx;
    CHECK_OK(upres_ctx_new(NULL, &ctx));
    data[n - 20] ^= 1; /* inside the last tEXt chunk, after IDAT */
    upres_image *img;
    CHECK_EQ(upres_decode(ctx, data, n, NULL, &img, NULL), UPRES_ERR_CORRUPT);
    const char *msg = upres_ctx_error(ctx);
    CHECKF(strncmp(msg, "PNG: ", 5) == 0 && strstr(msg, "CRC"), "detail: %s", msg);
    CHECK_EQ(upres_decode(ctx, data, n - 30, NULL, &img, NULL), UPRES_ERR_CORRUPT);
    CHECKF(strstr(upres_ctx_error(ctx), "PNG: ") != NULL, "detail: %s", upres_ctx_error(ctx));
    upres_ctx_free(ctx);
    free(data);
}

TEST(png_limits_checked_before_decoding)
{
    upres_ctx_desc d = upres_ctx_desc_defaults();
    d.limits.max_pixels = 100; /* icc_rgb.png has 128, rgb16.png 60 */
    const char *fail = tu_limit_splits(&d, "io/icc_rgb.png", "io/rgb16.png");
    CHECKF(!fail, "max_pixels: %s", fail);

    d = upres_ctx_desc_defaults();
    d.limits.max_side = 12; /* icc_rgb.png is 16 wide, gray2.png 11 x 3 */
    fail = tu_limit_splits(&d, "io/icc_rgb.png", "io/gray2.png");
    CHECKF(!fail, "max_side: %s", fail);

    /* A profile above the metadata limit is dropped, the pixels still load. */
    d = upres_ctx_desc_defaults();
    d.limits.max_metadata_bytes = 100;
    upres_ctx *ctx;
    CHECK_OK(upres_ctx_new(&d, &ctx));
    upres_image *img;
    CHECK_OK(upres_load(ctx, test_fixture("io/icc_rgb.png"), NULL, &img, NULL));
    CHECK(img->icc == NULL);
    upres_image_free(img);
    upres_ctx_free(ctx);
}

TEST(png_invalid_icc_is_dropped_not_fatal)
{
    upres_image *img, *back;
    CHECK_OK(upres_image_new(&img, 8, 8, 3, UPRES_U8, NULL));
    fill_pattern(img, 3);
    /* An 'RGB ' header (so io.c passes it on) with a wrong length field. */
    uint8_t bad[200];
    memset(bad, 0x11, sizeof bad);
    memcpy(bad + 16, "RGB ", 4);
    memcpy(bad + 36, "acsp", 4);
    CHECK_OK(upres_image_set_icc(img, bad, sizeof bad));
    CHECK_OK(png_roundtrip(img, &back, NULL));
    CHECK(back->icc == NULL);
    back->icc_size = 0;
    CHECK(tu_same_pixels(img, back));
    upres_image_free(img);
    upres_image_free(back);
}

TEST(png_damaged_image_data_in_intact_chunks_fails)
{
    const char *names[] = {"io/bad_short_idat.png", "io/bad_cut_zlib.png"};
    upres_ctx *ctx;
    CHECK_OK(upres_ctx_new(NULL, &ctx));
    for (int i = 0; i < 2; i++) {
        upres_image *img;
        CHECK_EQ(upres_load(ctx, test_fixture(names[i]), NULL, &img, NULL), UPRES_ERR_CORRUPT);
        CHECK(img == NULL);
        CHECKF(strncmp(upres_ctx_error(ctx), "PNG: ", 5) == 0, "%s", upres_ctx_error(ctx));
    }
    upres_ctx_free(ctx);
}
