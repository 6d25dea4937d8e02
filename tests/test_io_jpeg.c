/* Tests of the JPEG codec (src/io/io_jpeg.c): EXIF orientation, progressive,
 * gray and CMYK decoding (against PIL's decode stored by
 * tests/gen_io_fixtures.py), quality/subsampling, ICC through PNG -> JPEG ->
 * PNG, truncation and limits. */
#include "test.h"
#include "upres.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t *px8(const upres_image *img, uint32_t x, uint32_t y)
{
    return (const uint8_t *)upres_image_row(img, y) + (size_t)x * img->channels;
}

/* Largest absolute difference between img (u8) and packed reference bytes. */
static int max_diff_ref(const upres_image *img, const unsigned char *ref)
{
    int worst = 0;
    size_t row = (size_t)img->width * img->channels;
    for (uint32_t y = 0; y < img->height; y++) {
        const uint8_t *p = upres_image_row(img, y);
        for (size_t i = 0; i < row; i++) {
            int d = abs((int)p[i] - (int)ref[y * row + i]);
            if (d > worst) worst = d;
        }
    }
    return worst;
}

static int is_red(const uint8_t *p) { return p[0] > 220 && p[1] < 40 && p[2] < 40; }
static int is_blue(const uint8_t *p) { return p[0] < 40 && p[1] < 40 && p[2] > 220; }

TEST(jpeg_exif_orientation_6_rotates)
{
    upres_image *img;
    upres_file_info info;
    CHECK_OK(upres_load(NULL, test_fixture("io/exif6.jpg"), NULL, &img, &info));
    CHECK_EQ(info.orientation, 6);
    CHECK_EQ(info.width, 48); /* as stored */
    CHECK_EQ(img->orientation, 1);
    CHECK_EQ(img->width, 32);
    CHECK_EQ(img->height, 48);
    /* Stored top-left block, rotated 90 degrees clockwise: top-right. */
    CHECK(is_red(px8(img, 24, 8)));
    CHECK(is_blue(px8(img, 8, 8)));
    CHECK(is_blue(px8(img, 24, 40)));
    upres_image_free(img);

    upres_decode_desc d = upres_decode_desc_defaults();
    d.apply_orientation = 0;
    CHECK_OK(upres_load(NULL, test_fixture("io/exif6.jpg"), &d, &img, &info));
    CHECK_EQ(img->orientation, 6);
    CHECK_EQ(img->width, 48);
    CHECK_EQ(img->height, 32);
    CHECK(is_red(px8(img, 8, 8)));
    CHECK(is_blue(px8(img, 40, 8)));
    CHECK(is_blue(px8(img, 8, 24)));
    upres_image_free(img);
}

/* Loads fixture `jpg` into *img (and *info) and reads the packed u8
 * reference decode `ref` (PIL's, same layout). Returns the largest absolute
 * sample difference, or -1 when either cannot be read or the reference's
 * size is not width * height * channels of the image (*img is then NULL). */
static int diff_from_ref(const char *jpg, const char *ref, upres_image **img, upres_file_info *info)
{
    *img = NULL;
    size_t n;
    unsigned char *r = test_read_file(test_fixture(ref), &n);
    if (!r) return -1;
    int d = -1;
    if (upres_load(NULL, test_fixture(jpg), NULL, img, info) == UPRES_OK) {
        if (n == (size_t)(*img)->width * (*img)->height * (*img)->channels) {
            d = max_diff_ref(*img, r);
        } else {
            upres_image_free(*img);
            *img = NULL;
        }
    }
    free(r);
    return d;
}

TEST(jpeg_progressive_gray_match_reference)
{
    upres_image *img;
    upres_file_info info;
    int d = diff_from_ref("io/progressive.jpg", "io/progressive.rgb", &img, &info);
    CHECKF(d >= 0, "progressive.jpg or its reference missing, or sizes differ");
    CHECK_EQ(info.interlaced, 1);
    CHECK_EQ(info.bits_per_sample, 8);
    CHECK_EQ(img->channels, 3);
    /* Same libjpeg-turbo, same DCT: at most a rounding step apart. */
    CHECKF(d <= 1, "max difference %d", d);
    upres_image_free(img);

    d = diff_from_ref("io/gray.jpg", "io/gray.gray", &img, &info);
    CHECKF(d >= 0, "gray.jpg or its reference missing, or sizes differ");
    CHECK_EQ(info.interlaced, 0);
    CHECK_EQ(img->channels, 1);
    CHECK_EQ(img->width, 24);
    CHECKF(d <= 1, "max difference %d", d);
    upres_image_free(img);
}

TEST(jpeg_cmyk_converts_to_rgb)
{
    upres_image *img;
    upres_file_info info;
    int d = diff_from_ref("io/cmyk.jpg", "io/cmyk.rgb", &img, &info);
    CHECKF(d >= 0, "cmyk.jpg or its reference missing, or sizes differ");
    CHECK_EQ(info.cmyk, 1);
    CHECK_EQ(img->channels, 3);
    CHECK(img->icc == NULL);
    CHECKF(d <= 2, "max difference from PIL's conversion: %d", d);
    /* Patch 0 is no ink (white), patch 4 full black, patch 1 full cyan. */
    const uint8_t *w = px8(img, 4, 4), *k = px8(img, 4, 12), *c = px8(img, 12, 4);
    CHECK(w[0] > 245 && w[1] > 245 && w[2] > 245);
    CHECK(k[0] < 10 && k[1] < 10 && k[2] < 10);
    CHECK(c[0] < 10 && c[1] > 245 && c[2] > 245);
    upres_image_free(img);
}

/* A smooth test image: gradients and a slow sine. */
static upres_image *smooth_image(uint32_t w, uint32_t h, uint32_t ch)
{
    upres_image *img;
    if (upres_image_new(&img, w, h, ch, UPRES_U8, NULL)) return NULL;
    for (uint32_t y = 0; y < h; y++) {
        uint8_t *row = upres_image_row(img, y);
        for (uint32_t x = 0; x < w; x++) {
            double v[3] = {255.0 * x / (w - 1), 255.0 * y / (h - 1),
                           127.5 + 100.0 * sin((x + 2.0 * y) / 15.0)};
            for (uint32_t c = 0; c < ch; c++) row[x * ch + c] = (uint8_t)lround(v[c]);
        }
    }
    return img;
}

static int jpeg_roundtrip(const upres_image *img, int quality, int c444, upres_image **back,
                          size_t *size)
{
    upres_encode_desc e = upres_encode_desc_defaults();
    e.format = UPRES_FORMAT_JPEG;
    e.quality = quality;
    e.chroma_444 = c444;
    void *buf;
    int st = upres_encode(NULL, img, &e, &buf, size);
    if (st) return st;
    st = upres_decode(NULL, buf, *size, NULL, back, NULL);
    free(buf);
    return st;
}

TEST(jpeg_quality_and_subsampling)
{
    upres_image *img = smooth_image(96, 64, 3), *back;
    CHECK(img != NULL);
    size_t s444, s420, s50;
    CHECK_OK(jpeg_roundtrip(img, 95, 1, &back, &s444));
    double p444 = tu_psnr_u8(img, back);
    upres_image_free(back);
    CHECK_OK(jpeg_roundtrip(img, 95, 0, &back, &s420));
    double p420 = tu_psnr_u8(img, back);
    upres_image_free(back);
    CHECK_OK(jpeg_roundtrip(img, 50, 1, &back, &s50));
    double p50 = tu_psnr_u8(img, back);
    upres_image_free(back);
    CHECKF(p444 > 40.0, "q95 4:4:4 PSNR %.2f", p444);
    CHECKF(p420 > 40.0, "q95 4:2:0 PSNR %.2f", p420);
    CHECKF(p50 < p444, "q50 %.2f vs q95 %.2f", p50, p444);
    /* Subsampling really happened: half the chroma samples, smaller file. */
    CHECKF(s420 < s444, "4:2:0 %zu bytes, 4:4:4 %zu", s420, s444);
    CHECK(s50 < s444);
    upres_image_free(img);

    img = smooth_image(50, 30, 1);
    CHECK_OK(jpeg_roundtrip(img, 95, 1, &back, &s444));
    CHECK_EQ(back->channels, 1);
    CHECKF(tu_psnr_u8(img, back) > 40.0, "gray PSNR %.2f", tu_psnr_u8(img, back));
    upres_image_free(back);
    upres_image_free(img);
}

TEST(jpeg_icc_survives_png_jpeg_png)
{
    size_t n;
    unsigned char *icc = test_read_file(test_fixture("io/srgb.icc"), &n);
    CHECK(icc != NULL);
    upres_image *a, *b, *c;
    CHECK_OK(upres_load(NULL, test_fixture("io/icc_rgb.png"), NULL, &a, NULL));
    CHECK_EQ(a->icc_size, n);
    CHECK_OK(upres_save(NULL, a, test_tmp("icc.jpg"), NULL));
    CHECK_OK(upres_load(NULL, test_tmp("icc.jpg"), NULL, &b, NULL));
    CHECK_EQ(b->icc_size, n);
    CHECK(memcmp(b->icc, icc, n) == 0);
    CHECK_OK(upres_save(NULL, b, test_tmp("icc.png"), NULL));
    CHECK_OK(upres_load(NULL, test_tmp("icc.png"), NULL, &c, NULL));
    CHECK_EQ(c->icc_size, n);
    CHECK(memcmp(c->icc, icc, n) == 0);
    upres_image_free(a);
    upres_image_free(b);
    upres_image_free(c);
    free(icc);
}

TEST(jpeg_every_truncation_fails)
{
    const char *names[] = {"io/exif6.jpg", "io/progressive.jpg", "io/cmyk.jpg"};
    upres_ctx *ctx;
    CHECK_OK(upres_ctx_new(NULL, &ctx));
    for (int f = 0; f < 3; f++) {
        size_t n;
        unsigned char *data = test_read_file(test_fixture(names[f]), &n);
        CHECK(data != NULL);
        for (size_t len = 0; len < n; len++) {
            unsigned char *cut = malloc(len ? len : 1);
            memcpy(cut, data, len);
            upres_image *img;
            int st = upres_decode(ctx, cut, len, NULL, &img, NULL);
            free(cut);
            CHECKF(st < 0, "%s cut to %zu of %zu bytes decoded", names[f], len, n);
            CHECK(img == NULL);
            if (len > 3) CHECKF(strncmp(upres_ctx_error(ctx), "JPEG: ", 6) == 0, "%s", upres_ctx_error(ctx));
        }
        free(data);
    }
    upres_ctx_free(ctx);
}

TEST(jpeg_corrupt_data_fails_or_decodes_safely)
{
    /* JPEG has no checksum, so a flip may decode; it must never crash, and
     * flips in the entropy-coded data that break Huffman codes must fail. */
    size_t n;
    unsigned char *data = test_read_file(test_fixture("io/progressive.jpg"), &n);
    CHECK(data != NULL);
    int failed = 0;
    for (size_t i = 0; i < n * 8; i += 3) {
        data[i / 8] ^= (unsigned char)(1u << (i % 8));
        upres_image *img;
        int st = upres_decode(NULL, data, n, NULL, &img, NULL);
        data[i / 8] ^= (unsigned char)(1u << (i % 8));
        if (st == UPRES_OK) upres_image_free(img);
        else failed++;
    }
    CHECK(failed > 0);
    free(data);
}

TEST(jpeg_limits_checked_before_decoding)
{
    upres_ctx_desc d = upres_ctx_desc_defaults();
    d.limits.max_pixels = 1000; /* exif6.jpg has 1536, progressive.jpg 768 */
    const char *fail = tu_limit_splits(&d, "io/exif6.jpg", "io/progressive.jpg");
    CHECKF(!fail, "%s", fail);
}

TEST(jpeg_real_photo_roundtrip)
{
    const char *path = test_shared("images/photos/BytheWater.jpg");
    if (!path) SKIP("../shared/images/photos/BytheWater.jpg not available");
    upres_image *img, *back;
    upres_file_info info;
    CHECK_OK(upres_load(NULL, path, NULL, &img, &info));
    CHECK_EQ(img->channels, 3);
    size_t n;
    CHECK_OK(jpeg_roundtrip(img, 95, 1, &back, &n));
    double p = tu_psnr_u8(img, back);
    CHECKF(p > 35.0, "PSNR %.2f", p);
    CHECK(n < (size_t)img->width * img->height * 3 / 2);
    upres_image_free(img);
    upres_image_free(back);
}
