/* Model loading front end (format detection, limits) and agreement between
 * the PyTorch and ncnn forms of the same real network. */
#include "test.h"

#include "models/models_internal.h"

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

TEST(model_load_refuses_what_is_not_a_model)
{
    upres_ctx *ctx = tu_ctx_1thread();
    const char *p = test_tmp("notes.pth");
    const char text[] = "hello, this is not a network\n";
    CHECK_EQ(test_write_file(p, text, sizeof text - 1), 0);
    upres_model *m = (upres_model *)1;
    CHECK_EQ(upres_model_load(ctx, p, &m), UPRES_ERR_UNKNOWN_FORMAT);
    CHECK(m == NULL);
    CHECK(strstr(upres_ctx_error(ctx), "not a model file") != NULL);

    m = (upres_model *)1;
    CHECK_EQ(upres_model_load(ctx, test_tmp("missing.safetensors"), &m), UPRES_ERR_IO);
    CHECK(m == NULL);
    CHECK_EQ(upres_model_load(ctx, NULL, &m), UPRES_ERR_INVALID_ARG);
    upres_model_free(NULL);
    upres_ctx_free(ctx);
}

TEST(model_load_ncnn_param_needs_its_bin)
{
    upres_ctx *ctx = tu_ctx_1thread();
    const char *param = test_tmp("lonely.param");
    const char text[] = "7767517\n1 1\nInput in0 0 1 in0\n";
    CHECK_EQ(test_write_file(param, text, sizeof text - 1), 0);
    upres_model *m = NULL;
    CHECK_EQ(upres_model_load(ctx, param, &m), UPRES_ERR_IO);
    CHECK(m == NULL);
    CHECK(strstr(upres_ctx_error(ctx), "lonely.bin") != NULL);
    upres_ctx_free(ctx);
}

TEST(model_load_respects_the_model_size_limit)
{
    const char *src = test_shared("models/pytorch/realesr-animevideov3.pth");
    if (!src) SKIP("shared models not available");
    upres_ctx_desc d = upres_ctx_desc_defaults();
    d.threads = 1;
    d.limits.max_model_bytes = 1 << 20; /* the file is 2.3 MB */
    upres_ctx *ctx;
    CHECK_OK(upres_ctx_new(&d, &ctx));
    upres_model *m = NULL;
    CHECK_EQ(upres_model_load(ctx, src, &m), UPRES_ERR_LIMIT);
    CHECK(m == NULL);
    upres_ctx_free(ctx);
}

/* Loads `rel` under the shared folder, crops (x, y, w, h) and returns it as
 * planar float RGB in [0,1]. */
static float *photo_crop(upres_ctx *ctx, const char *rel, uint32_t x0, uint32_t y0, int w, int h)
{
    const char *path = test_shared(rel);
    if (!path) return NULL;
    upres_image *img;
    if (upres_load(ctx, path, NULL, &img, NULL)) return NULL;
    float *f = NULL;
    if (img->channels == 3 && img->depth == UPRES_U8 && img->width >= x0 + (uint32_t)w &&
        img->height >= y0 + (uint32_t)h && (f = malloc(sizeof(float) * 3 * w * h))) {
        for (int y = 0; y < h; y++) {
            const uint8_t *row = (const uint8_t *)upres_image_row(img, y0 + (uint32_t)y);
            for (int x = 0; x < w; x++)
                for (int c = 0; c < 3; c++)
                    f[((size_t)c * h + y) * w + x] = row[(x0 + (uint32_t)x) * 3 + c] / 255.0f;
        }
    }
    upres_image_free(img);
    return f;
}

static int to_u8(float v)
{
    v = v * 255.0f + 0.5f;
    return !(v > 0.0f) ? 0 : v >= 255.0f ? 255 : (int)v;
}

/* The official animevideov3 release exists as a PyTorch file (fp32) and as
 * its ncnn conversion (fp16 weights): on real photos the two must agree
 * within one 8-bit level. */
TEST(model_animevideov3_pth_and_ncnn_agree_on_photos)
{
    const char *pth = test_shared("models/pytorch/realesr-animevideov3.pth");
    const char *ncnn = test_shared("models/ncnn/realesr-animevideov3/realesr-animevideov3-x4.param");
    if (!pth || !ncnn) SKIP("shared models not available");
    char pth_path[4096], ncnn_path[4096];
    snprintf(pth_path, sizeof pth_path, "%s", pth);
    snprintf(ncnn_path, sizeof ncnn_path, "%s", ncnn);
    upres_ctx *ctx;
    CHECK_OK(upres_ctx_new(NULL, &ctx));
    upres_model *a = NULL, *b = NULL;
    CHECK_OK(upres_model_load(ctx, pth_path, &a));
    CHECK_OK(upres_model_load(ctx, ncnn_path, &b));
    upres_model_info ia, ib;
    upres_model_get_info(a, &ia);
    upres_model_get_info(b, &ib);
    CHECK(strcmp(ia.arch, "SRVGGNetCompact") == 0);
    CHECK(strcmp(ib.arch, "SRVGGNetCompact") == 0); /* recognised from its layer mix */
    CHECK(strcmp(ia.format, "pth") == 0 && strcmp(ib.format, "ncnn") == 0);
    CHECK_EQ(ia.scale, 4);
    CHECK_EQ(ib.scale, 4);
    /* conv in 3*64*9+64, 16 body convs 64*64*9+64, 17 PReLU of 64, conv out
     * 64*48*9+48. */
    CHECK_EQ(ia.params, 1792 + 16 * 36928 + 17 * 64 + 27696);

    static const struct {
        const char *file;
        uint32_t x, y;
    } crops[] = {
        {"images/photos/ColorfulCups.jpg", 400, 300},
        {"images/photos/LadyBird.jpg", 200, 150},
        {"images/photos/GreenMeadow.jpg", 0, 0},
    };
    const int w = 64, h = 48, s = 4;
    float *oa = malloc(sizeof(float) * 3 * w * s * h * s);
    float *ob = malloc(sizeof(float) * 3 * w * s * h * s);
    CHECK(oa && ob);
    int max_diff = 0, tested = 0;
    long long differing = 0;
    for (size_t i = 0; i < sizeof crops / sizeof crops[0]; i++) {
        float *in = photo_crop(ctx, crops[i].file, crops[i].x, crops[i].y, w, h);
        if (!in) continue;
        CHECK_OK(upres__model_run(ctx, a, in, h, w, oa));
        CHECK_OK(upres__model_run(ctx, b, in, h, w, ob));
        free(in);
        for (size_t k = 0; k < (size_t)3 * w * s * h * s; k++) {
            int d = abs(to_u8(oa[k]) - to_u8(ob[k]));
            if (d > max_diff) max_diff = d;
            differing += d != 0;
        }
        tested++;
    }
    free(oa);
    free(ob);
    upres_model_free(a);
    upres_model_free(b);
    upres_ctx_free(ctx);
    if (!tested) SKIP("shared photos not available");
    printf("    %d photo crops: max diff %d level(s), %lld of %lld samples differ\n", tested,
           max_diff, differing, (long long)tested * 3 * w * s * h * s);
    CHECKF(max_diff <= 1, "pth and ncnn outputs differ by %d levels", max_diff);
    /* fp16 weights must change something, or the comparison compared a
     * model with itself. */
    CHECK(differing > 0);
}

/* Collects up to `cap` paths of files ending in `ext` under dir (recursive). */
static int find_files(const char *dir, const char *ext, char (*out)[1024], int n, int cap)
{
    DIR *d = opendir(dir);
    if (!d) return n;
    struct dirent *e;
    while ((e = readdir(d)) && n < cap) {
        if (e->d_name[0] == '.') continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(p, &st) != 0) continue;
        size_t l = strlen(p), le = strlen(ext);
        if (S_ISDIR(st.st_mode))
            n = find_files(p, ext, out, n, cap);
        else if (l > le && strcmp(p + l - le, ext) == 0)
            snprintf(out[n++], 1024, "%s", p);
    }
    closedir(d);
    return n;
}

/* Every real model of the shared set loads and runs (each on a small real
 * picture), giving finite values whose mean stays near the input's. */
TEST(model_every_shared_model_runs)
{
    const char *root = test_shared("models");
    if (!root) SKIP("shared models not available");
    char rootbuf[1024];
    snprintf(rootbuf, sizeof rootbuf, "%s", root);
    static char files[128][1024];
    int n = find_files(rootbuf, ".param", files, 0, 128);
    n = find_files(rootbuf, ".pth", files, n, 128);
    upres_ctx *ctx;
    CHECK_OK(upres_ctx_new(NULL, &ctx));
    const int w = 20, h = 18;
    float *in = photo_crop(ctx, "images/photos/ColorfulCups.jpg", 600, 400, w, h);
    if (!in) {
        upres_ctx_free(ctx);
        SKIP("shared photos not available");
    }
    double in_mean = 0;
    for (int i = 0; i < 3 * w * h; i++) in_mean += in[i];
    in_mean /= 3.0 * w * h;
    int ran = 0;
    char bad[1200] = "";
    for (int i = 0; i < n && !bad[0]; i++) {
        if (strstr(files[i], "PANx4_DF2K")) continue; /* an architecture we do not run */
        upres_model *m = NULL;
        int st = upres_model_load(ctx, files[i], &m);
        if (st) {
            snprintf(bad, sizeof bad, "%s: load: %s", files[i], upres_ctx_error(ctx));
            break;
        }
        upres_model_info info;
        upres_model_get_info(m, &info);
        size_t on = (size_t)3 * w * h * info.scale * info.scale;
        float *out = malloc(on * sizeof *out);
        st = out ? upres__model_run(ctx, m, in, h, w, out) : UPRES_ERR_NOMEM;
        double mean = 0;
        int finite = 1;
        for (size_t k = 0; !st && k < on; k++) {
            finite &= isfinite(out[k]);
            mean += out[k];
        }
        mean /= (double)on;
        if (st)
            snprintf(bad, sizeof bad, "%s: run: %s", files[i], upres_ctx_error(ctx));
        else if (!finite || fabs(mean - in_mean) > 0.08)
            snprintf(bad, sizeof bad, "%s: output mean %.3f, input mean %.3f", files[i], mean,
                     in_mean);
        free(out);
        upres_model_free(m);
        ran++;
    }
    free(in);
    upres_ctx_free(ctx);
    CHECKF(!bad[0], "%s", bad);
    printf("    %d shared models loaded and ran\n", ran);
    CHECK(ran >= 40);
}

/* A detail quoting a hostile tensor name stays one line. */
TEST(model_error_detail_stays_one_line)
{
    /* safetensors with two tensors named "a\nb" (JSON escape): duplicate. */
    const char hdr[] = "{\"a\\nb\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                       "\"a\\nb\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}";
    size_t hn = sizeof hdr - 1;
    uint8_t buf[256] = {0};
    CHECK(hn + 16 <= sizeof buf);
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)((uint64_t)hn >> (8 * i));
    memcpy(buf + 8, hdr, hn);
    const char *p = test_tmp("dup.safetensors");
    CHECK_EQ(test_write_file(p, buf, 8 + hn + 8), 0);
    upres_ctx *ctx = tu_ctx_1thread();
    upres_model *m = NULL;
    CHECK(upres_model_load(ctx, p, &m) < 0);
    const char *e = upres_ctx_error(ctx);
    CHECKF(strstr(e, "a?b") != NULL && strchr(e, '\n') == NULL, "detail: %s", e);
    upres_ctx_free(ctx);
}
