/* Tests of the WebP codec (src/io/io_webp.c): lossless and lossy round trips,
 * ICC and EXIF chunks, animations (built here with WebPAnimEncoder), limits,
 * and truncation / bit-flip robustness. */
#include "test.h"
#include "upres.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <webp/encode.h>
#include <webp/mux.h>

/* A w x h u8 image of random samples; with 4 channels every third pixel is
 * fully transparent (its RGB still random) and the rest random alpha. */
static upres_image *random_u8(uint32_t w, uint32_t h, uint32_t ch, uint32_t seed)
{
    upres_image *img = tu_random_image(w, h, ch, UPRES_U8, seed);
    if (!img || ch != 4) return img;
    for (size_t i = 0; i < (size_t)w * h; i += 3)
        ((uint8_t *)img->data)[i * 4 + 3] = 0;
    return img;
}

/* A smooth RGB image: gradients and a low-frequency ripple. */
static upres_image *smooth_u8(uint32_t w, uint32_t h)
{
    upres_image *img = NULL;
    if (upres_image_new(&img, w, h, 3, UPRES_U8, NULL) != UPRES_OK) return NULL;
    for (uint32_t y = 0; y < h; y++) {
        uint8_t *r = upres_image_row(img, y);
        for (uint32_t x = 0; x < w; x++) {
            r[x * 3] = (uint8_t)(255.0 * x / (w - 1));
            r[x * 3 + 1] = (uint8_t)(255.0 * y / (h - 1));
            r[x * 3 + 2] = (uint8_t)(128 + 100 * sin(x * 0.07) * cos(y * 0.05));
        }
    }
    return img;
}

static int encode_webp(const upres_image *img, int lossless, int quality, void **out, size_t *size)
{
    upres_encode_desc d = upres_encode_desc_defaults();
    d.format = UPRES_FORMAT_WEBP;
    d.webp_lossless = lossless;
    d.quality = quality;
    return upres_encode(NULL, img, &d, out, size);
}

TEST(webp_lossless_roundtrip_exact_rgb_rgba)
{
    for (uint32_t ch = 3; ch <= 4; ch++) {
        upres_image *src = random_u8(37, 29, ch, 100 + ch);
        CHECK(src);
        void *buf;
        size_t n;
        CHECK_OK(encode_webp(src, 1, 95, &buf, &n));
        upres_image *dst;
        upres_file_info info;
        CHECK_OK(upres_decode(NULL, buf, n, NULL, &dst, &info));
        /* Includes the random RGB under alpha = 0 (config.exact). */
        CHECKF(tu_same_pixels(src, dst), "%u channels differ", ch);
        CHECK_EQ(info.format, UPRES_FORMAT_WEBP);
        CHECK_EQ(info.lossless, 1);
        CHECK_EQ(info.frames, 1);
        CHECK_EQ(info.bits_per_sample, 8);
        CHECK_EQ(info.channels, ch);
        free(buf);
        upres_image_free(src);
        upres_image_free(dst);
    }
}

TEST(webp_gray_input_becomes_rgb)
{
    /* io.c converts gray(+alpha) to RGB(A); the values must survive. */
    upres_image *g = random_u8(10, 7, 2, 55);
    CHECK(g);
    void *buf;
    size_t n;
    CHECK_OK(encode_webp(g, 1, 90, &buf, &n));
    upres_image *dst;
    CHECK_OK(upres_decode(NULL, buf, n, NULL, &dst, NULL));
    CHECK_EQ(dst->channels, 4);
    for (size_t i = 0; i < 70; i++) {
        const uint8_t *s = (const uint8_t *)g->data + i * 2, *d = (const uint8_t *)dst->data + i * 4;
        CHECK(d[0] == s[0] && d[1] == s[0] && d[2] == s[0] && d[3] == s[1]);
    }
    free(buf);
    upres_image_free(g);
    upres_image_free(dst);
}

TEST(webp_lossy_q95_psnr)
{
    upres_image *src = smooth_u8(128, 96);
    CHECK(src);
    void *buf;
    size_t n;
    CHECK_OK(encode_webp(src, 0, 95, &buf, &n));
    upres_image *dst;
    upres_file_info info;
    CHECK_OK(upres_decode(NULL, buf, n, NULL, &dst, &info));
    CHECK_EQ(info.lossless, 0);
    CHECK_EQ(dst->channels, 3);
    CHECK_EQ(dst->width, 128);
    double p = tu_psnr_u8(src, dst);
    CHECKF(p > 35.0, "PSNR %.2f dB", p);
    /* Quality must matter: q10 is worse and smaller. */
    void *lo;
    size_t ln;
    CHECK_OK(encode_webp(src, 0, 10, &lo, &ln));
    upres_image *ldst;
    CHECK_OK(upres_decode(NULL, lo, ln, NULL, &ldst, NULL));
    CHECKF(ln < n && tu_psnr_u8(src, ldst) < p, "q10: %zu bytes vs %zu", ln, n);
    free(lo);
    upres_image_free(ldst);
    free(buf);
    upres_image_free(src);
    upres_image_free(dst);
}

TEST(webp_icc_roundtrip_identical)
{
    uint8_t icc[257];
    for (size_t i = 0; i < sizeof icc; i++) icc[i] = (uint8_t)(i * 13 + 1);
    icc[0] = 0, icc[1] = 0, icc[2] = 1, icc[3] = 1;
    memcpy(icc + 16, "RGB ", 4);
    memcpy(icc + 36, "acsp", 4);
    for (int lossless = 0; lossless <= 1; lossless++) {
        upres_image *src = random_u8(16, 16, 4, 7);
        CHECK(src);
        CHECK_OK(upres_image_set_icc(src, icc, sizeof icc));
        void *buf;
        size_t n;
        CHECK_OK(encode_webp(src, lossless, 80, &buf, &n));
        upres_image *dst;
        upres_file_info info;
        CHECK_OK(upres_decode(NULL, buf, n, NULL, &dst, &info));
        CHECK_EQ(info.icc_size, sizeof icc);
        CHECK_EQ(dst->icc_size, sizeof icc);
        CHECK(memcmp(dst->icc, icc, sizeof icc) == 0);
        if (lossless) CHECK(tu_same_pixels(src, dst));
        free(buf);
        upres_image_free(src);
        upres_image_free(dst);
    }
}

/* Builds a WebP with an EXIF chunk whose IFD0 holds Orientation = o. */
static int webp_with_exif(const void *webp, size_t n, int o, WebPData *out)
{
    const uint8_t exif[] = {'I', 'I', 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0,
                            (uint8_t)o, 0, 0, 0, 0, 0, 0, 0};
    WebPData in = {webp, n}, ex = {exif, sizeof exif};
    WebPMux *mux = WebPMuxCreate(&in, 1);
    if (!mux) return 0;
    int ok = WebPMuxSetChunk(mux, "EXIF", &ex, 1) == WEBP_MUX_OK &&
             WebPMuxAssemble(mux, out) == WEBP_MUX_OK;
    WebPMuxDelete(mux);
    return ok;
}

TEST(webp_exif_orientation_applied)
{
    /* 3x2: pixel value i+1 in the red channel, row-major. */
    upres_image *src;
    CHECK_OK(upres_image_new(&src, 3, 2, 3, UPRES_U8, NULL));
    for (int i = 0; i < 6; i++) ((uint8_t *)src->data)[i * 3] = (uint8_t)(40 * (i + 1));
    void *buf;
    size_t n;
    CHECK_OK(encode_webp(src, 1, 90, &buf, &n));
    WebPData w;
    CHECK(webp_with_exif(buf, n, 6, &w));
    upres_image *dst;
    upres_file_info info;
    CHECK_OK(upres_decode(NULL, w.bytes, w.size, NULL, &dst, &info));
    CHECK_EQ(info.orientation, 6);
    CHECK_EQ(dst->width, 2);
    CHECK_EQ(dst->height, 3);
    /* Orientation 6 displays stored {1 2 3 / 4 5 6} as {4 1 / 5 2 / 6 3}. */
    const int e[6] = {4, 1, 5, 2, 6, 3};
    for (int i = 0; i < 6; i++)
        CHECK_EQ(((const uint8_t *)upres_image_row(dst, (uint32_t)i / 2))[(i % 2) * 3], 40 * e[i]);
    upres_image_free(dst);
    WebPDataClear(&w);
    free(buf);
    upres_image_free(src);
}

/* Encodes a 2-frame animation: frame 1 a pattern, frame 2 solid blue.
 * `alpha`: frame 1 is half transparent. */
static int make_animation(uint32_t w, uint32_t h, int alpha, upres_image **frame1, WebPData *out)
{
    WebPAnimEncoderOptions eo;
    if (!WebPAnimEncoderOptionsInit(&eo)) return 0;
    WebPAnimEncoder *enc = WebPAnimEncoderNew((int)w, (int)h, &eo);
    if (!enc) return 0;
    WebPConfig cfg;
    WebPConfigInit(&cfg);
    cfg.lossless = 1;
    cfg.exact = 1;
    upres_image *f1;
    if (upres_image_new(&f1, w, h, 4, UPRES_U8, NULL) != UPRES_OK) return 0;
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++) {
            uint8_t *p = (uint8_t *)upres_image_row(f1, y) + x * 4;
            p[0] = (uint8_t)(x * 9);
            p[1] = (uint8_t)(y * 11);
            p[2] = (uint8_t)((x + y) * 5);
            p[3] = alpha && x < w / 2 ? 0 : 255;
            if (p[3] == 0) p[0] = p[1] = p[2] = 0;
        }
    int ok = 1;
    for (int f = 0; f < 2 && ok; f++) {
        WebPPicture pic;
        WebPPictureInit(&pic);
        pic.width = (int)w;
        pic.height = (int)h;
        pic.use_argb = 1;
        if (f == 0) {
            ok = WebPPictureImportRGBA(&pic, f1->data, (int)f1->stride);
        } else {
            uint8_t *blue = calloc((size_t)w * h, 4);
            for (size_t i = 0; i < (size_t)w * h; i++) blue[i * 4 + 2] = blue[i * 4 + 3] = 255;
            ok = WebPPictureImportRGBA(&pic, blue, (int)w * 4);
            free(blue);
        }
        ok = ok && WebPAnimEncoderAdd(enc, &pic, f * 100, &cfg);
        WebPPictureFree(&pic);
    }
    ok = ok && WebPAnimEncoderAdd(enc, NULL, 200, NULL);
    WebPDataInit(out);
    ok = ok && WebPAnimEncoderAssemble(enc, out);
    WebPAnimEncoderDelete(enc);
    if (!ok) {
        upres_image_free(f1);
        return 0;
    }
    *frame1 = f1;
    return 1;
}

TEST(webp_animated_first_frame)
{
    for (int alpha = 0; alpha <= 1; alpha++) {
        upres_image *f1;
        WebPData anim;
        CHECK(make_animation(24, 20, alpha, &f1, &anim));
        upres_image *dst;
        upres_file_info info;
        CHECK_OK(upres_decode(NULL, anim.bytes, anim.size, NULL, &dst, &info));
        CHECK_EQ(info.frames, 2);
        CHECK_EQ(info.lossless, 1);
        CHECK_EQ(dst->width, 24);
        CHECK_EQ(dst->height, 20);
        if (alpha) CHECK_EQ(dst->channels, 4);
        CHECK(dst->channels == 3 || dst->channels == 4);
        for (uint32_t y = 0; y < 20; y++)
            for (uint32_t x = 0; x < 24; x++) {
                const uint8_t *e = (const uint8_t *)upres_image_row(f1, y) + x * 4;
                const uint8_t *d = (const uint8_t *)upres_image_row(dst, y) + x * dst->channels;
                CHECKF(d[0] == e[0] && d[1] == e[1] && d[2] == e[2] &&
                           (dst->channels == 3 || d[3] == e[3]),
                       "alpha %d (%u,%u): %d %d %d vs %d %d %d", alpha, x, y, d[0], d[1], d[2], e[0],
                       e[1], e[2]);
            }
        upres_image_free(dst);
        upres_image_free(f1);
        WebPDataClear(&anim);
    }
}

TEST(webp_limits_refuse_large_images)
{
    upres_image *src = random_u8(40, 30, 3, 3);
    CHECK(src);
    void *buf;
    size_t n;
    CHECK_OK(encode_webp(src, 0, 50, &buf, &n));
    const char *fail = tu_decode_refused(buf, n, 1000, "WebP: ");
    CHECKF(!fail, "%s", fail);
    free(buf);
    upres_image_free(src);
}

TEST(webp_encode_rejects_oversized)
{
    upres_image *img;
    CHECK_OK(upres_image_new(&img, 16384, 1, 3, UPRES_U8, NULL));
    upres_ctx *ctx;
    CHECK_OK(upres_ctx_new(NULL, &ctx));
    upres_encode_desc d = upres_encode_desc_defaults();
    d.format = UPRES_FORMAT_WEBP;
    void *buf = (void *)1;
    size_t n;
    CHECK_EQ(upres_encode(ctx, img, &d, &buf, &n), UPRES_ERR_UNSUPPORTED);
    CHECK(buf == NULL);
    CHECK(strncmp(upres_ctx_error(ctx), "WebP: ", 6) == 0);
    upres_ctx_free(ctx);
    upres_image_free(img);
}

/* Every strict prefix must fail (with a WebP detail once the RIFF header is
 * complete); every bit flip must fail or give a well-formed image. */
static const char *mangle(const void *file, size_t n, int flips, uint32_t seed)
{
    return tu_mangle(file, n, flips, seed, "WebP: ", 12, 3);
}

TEST(webp_truncation_and_bitflips_never_crash)
{
    upres_image *src = random_u8(12, 10, 4, 17);
    CHECK(src);
    uint8_t icc[140] = {0};
    memcpy(icc + 16, "RGB ", 4);
    CHECK_OK(upres_image_set_icc(src, icc, sizeof icc));
    void *lossy, *lossless;
    size_t ln, lln;
    CHECK_OK(encode_webp(src, 0, 75, &lossy, &ln));
    CHECK_OK(encode_webp(src, 1, 75, &lossless, &lln));
    upres_image *f1;
    WebPData anim;
    CHECK(make_animation(8, 6, 1, &f1, &anim));

    int saved = tu_stderr_begin();
    CHECK(saved >= 0);
    const char *a = mangle(lossy, ln, 1500, 5);
    const char *b = a ? NULL : mangle(lossless, lln, 1500, 6);
    const char *c = a || b ? NULL : mangle(anim.bytes, anim.size, 1500, 7);
    long printed = tu_stderr_end(saved);
    CHECKF(!a, "lossy: %s", a);
    CHECKF(!b, "lossless: %s", b);
    CHECKF(!c, "animation: %s", c);
    CHECK_EQ(printed, 0);
    free(lossy);
    free(lossless);
    WebPDataClear(&anim);
    upres_image_free(f1);
    upres_image_free(src);
}

TEST(webp_pillow_fixture)
{
    size_t n;
    unsigned char *f = test_read_file(test_fixture("tw/pil_lossless.webp"), &n);
    CHECK(f);
    upres_image *img;
    upres_file_info info;
    CHECK_OK(upres_decode(NULL, f, n, NULL, &img, &info));
    free(f);
    CHECK_EQ(info.lossless, 1);
    CHECK_EQ(img->channels, 4);
    CHECK_EQ(img->width, 13);
    CHECK_EQ(img->height, 7);
    /* Formulas of tests/gen_tiff_webp_fixtures.py. */
    for (int y = 0; y < 7; y++)
        for (int x = 0; x < 13; x++) {
            const uint8_t *p = (const uint8_t *)upres_image_row(img, (uint32_t)y) + x * 4;
            CHECKF(p[0] == ((x * 17 + y * 5) & 255) && p[1] == ((x * 3 + y * 29) & 255) &&
                       p[2] == ((x * y * 7 + 11) & 255) && p[3] == 255 - (x + y) * 9,
                   "(%d,%d): %d %d %d %d", x, y, p[0], p[1], p[2], p[3]);
        }
    upres_image_free(img);
}
