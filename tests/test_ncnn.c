/* ncnn loader (src/models/ncnn.c): a synthetic model against PyTorch, every
 * real ncnn model under ../shared/models/ncnn, reference outputs, and
 * malformed inputs. */
#include "test.h"

#include "models/models_internal.h"

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------- */

/* Loads param/bin text held in memory into m (initialised first). */
static int nc_load_mem(upres_ctx *ctx, const char *param, size_t param_n, const uint8_t *bin,
                       size_t bin_n, const char *dir, struct upres_model *m)
{
    upres__model_init(m);
    /* ctx keeps the first detail until cleared, as a public call would. */
    upres__clear_error(ctx);
    return upres__ncnn_load(ctx, param, param_n, bin, bin_n, "model", dir, m);
}

/* Float CHW [0,1] copy of an 8-bit RGB image; NULL on failure. */
static float *nc_to_chw(const upres_image *img)
{
    size_t n = (size_t)img->width * img->height;
    float *f = malloc(3 * n * sizeof(float));
    if (!f) return NULL;
    for (uint32_t y = 0; y < img->height; y++) {
        const uint8_t *row = upres_image_row(img, y);
        for (uint32_t x = 0; x < img->width; x++)
            for (int c = 0; c < 3; c++)
                f[c * n + (size_t)y * img->width + x] = row[x * img->channels + c] / 255.0f;
    }
    return f;
}

/* Loads an 8-bit RGB image from the shared images; NULL when missing. */
static upres_image *nc_shared_rgb(upres_ctx *ctx, const char *rel)
{
    const char *path = test_shared(rel);
    if (!path) return NULL;
    upres_image *img = NULL, *rgb = NULL;
    if (upres_load(ctx, path, NULL, &img, NULL) != UPRES_OK) return NULL;
    if (upres_image_convert(img, UPRES_U8, 3, 1.0f, &rgb) != UPRES_OK) rgb = NULL;
    upres_image_free(img);
    return rgb;
}

/* Runs `model_rel` (under ../shared/models) on the image `in_rel` through
 * upres__model_run; *out receives [3][h*s][w*s] floats (malloc()ed). Returns
 * 0, 1 when a file is missing, -1 on failure (message in msg). */
static int nc_run_shared(const char *model_rel, const char *in_rel, upres_model **mo, float **out,
                         upres_image **in_img, char *msg, size_t msg_n)
{
    const char *mp = test_shared(model_rel);
    upres_ctx *ctx = NULL;
    upres_ctx_new(NULL, &ctx);
    if (!ctx) {
        snprintf(msg, msg_n, "no ctx");
        return -1;
    }
    upres_image *img = nc_shared_rgb(ctx, in_rel);
    if (!mp || !img) {
        upres_image_free(img);
        upres_ctx_free(ctx);
        return 1;
    }
    upres_model *m = NULL;
    int st = upres_model_load(ctx, mp, &m);
    if (st) {
        snprintf(msg, msg_n, "load %s: %s (%s)", model_rel, upres_strerror(st),
                 upres_ctx_error(ctx));
        upres_image_free(img);
        upres_ctx_free(ctx);
        return -1;
    }
    float *in = nc_to_chw(img);
    size_t on = (size_t)3 * img->width * m->scale * img->height * m->scale;
    float *o = malloc(on * sizeof(float));
    st = in && o ? upres__model_run(ctx, m, in, (int)img->height, (int)img->width, o)
                 : UPRES_ERR_NOMEM;
    free(in);
    if (st) {
        snprintf(msg, msg_n, "run %s: %s (%s)", model_rel, upres_strerror(st),
                 upres_ctx_error(ctx));
        free(o);
        upres_model_free(m);
        upres_image_free(img);
        upres_ctx_free(ctx);
        return -1;
    }
    upres_ctx_free(ctx);
    *mo = m;
    *out = o;
    *in_img = img;
    return 0;
}

static uint8_t nc_u8(float v)
{
    float r = roundf(v * 255.0f);
    return r < 0.0f ? 0 : r > 255.0f ? 255 : (uint8_t)r;
}

/* Compares a model's output with a reference PNG: max and mean abs diff in
 * 8-bit steps. Returns 0, 1 when something is missing, -1 on failure. */
static int nc_reference(const char *model_rel, const char *size, const char *ref_name,
                        int *maxd, int *over, double *meand, char *msg, size_t msg_n)
{
    char in_rel[128], ref_rel[256];
    snprintf(in_rel, sizeof in_rel, "images/spandrel/inputs/%s.png", size);
    snprintf(ref_rel, sizeof ref_rel, "images/spandrel/outputs/%s/%s.png", size, ref_name);
    upres_model *m = NULL;
    float *out = NULL;
    upres_image *img = NULL;
    int r = nc_run_shared(model_rel, in_rel, &m, &out, &img, msg, msg_n);
    if (r) return r;
    upres_image *ref = nc_shared_rgb(NULL, ref_rel);
    int ret = 0;
    if (!ref) {
        ret = 1;
    } else if (ref->width != img->width * (uint32_t)m->scale ||
               ref->height != img->height * (uint32_t)m->scale) {
        snprintf(msg, msg_n, "%s: output %ux%u, reference %ux%u", model_rel,
                 img->width * m->scale, img->height * m->scale, ref->width, ref->height);
        ret = -1;
    } else {
        size_t n = (size_t)ref->width * ref->height;
        long long sum = 0;
        int mx = 0, nover = 0;
        for (uint32_t y = 0; y < ref->height; y++) {
            const uint8_t *row = upres_image_row(ref, y);
            for (uint32_t x = 0; x < ref->width; x++)
                for (int c = 0; c < 3; c++) {
                    int d = abs((int)nc_u8(out[c * n + (size_t)y * ref->width + x]) -
                                (int)row[x * 3 + c]);
                    sum += d;
                    nover += d > 1;
                    if (d > mx) mx = d;
                }
        }
        *maxd = mx;
        *over = nover;
        *meand = (double)sum / (double)(3 * n);
    }
    upres_image_free(ref);
    upres_image_free(img);
    upres_model_free(m);
    free(out);
    return ret;
}

/* Reference outputs come from the fp32 PyTorch weights, the ncnn files hold
 * fp16 weights. tol_max is 1 except where the fp16 rounding alone pushes a
 * handful of values to 2: an independent PyTorch evaluation of the same
 * ncnn graph and weights (see the report) agrees with ours within 1e-5 and
 * shows the same 2-step values, so those cases allow at most `tol_over`
 * values beyond 1. */
#define NC_REF_TEST_TOL(name, model, size, ref, tol_over)                                   \
    TEST(name)                                                                             \
    {                                                                                      \
        int mx = 0, over = 0;                                                              \
        double mean = 0;                                                                   \
        char msg[512] = "";                                                                \
        int r = nc_reference(model, size, ref, &mx, &over, &mean, msg, sizeof msg);        \
        if (r == 1) SKIP("shared model or images missing");                                \
        CHECKF(r == 0, "%s", msg);                                                         \
        printf("    %s vs %s/%s: max %d, %d values > 1, mean %.4f\n", model, size, ref, mx, \
               over, mean);                                                                \
        CHECKF(mx <= 2 && over <= (tol_over) && mean < 0.1,                                \
               "%s: max abs diff %d, %d values > 1 (mean %.4f) vs %s/%s", model, mx, over,  \
               mean, size, ref);                                                           \
    }
#define NC_REF_TEST(name, model, size, ref) NC_REF_TEST_TOL(name, model, size, ref, 0)

/* ---- synthetic model vs PyTorch ------------------------------------------ */

TEST(ncnn_tiny_matches_torch)
{
    size_t pn = 0, bn = 0, ion = 0;
    char *param = (char *)test_read_file(test_fixture("ncnn/tiny.param"), &pn);
    uint8_t *bin = test_read_file(test_fixture("ncnn/tiny.bin"), &bn);
    uint8_t *io = test_read_file(test_fixture("ncnn/tiny_io.bin"), &ion);
    upres_ctx *ctx = tu_ctx_1thread();
    CHECK(param && bin && io && ctx);
    int32_t ic, ih, iw, oc, oh, ow;
    memcpy(&ic, io, 4);
    memcpy(&ih, io + 4, 4);
    memcpy(&iw, io + 8, 4);
    size_t in_n = (size_t)ic * ih * iw;
    CHECK(ion >= 12 + in_n * 4 + 12);
    memcpy(&oc, io + 12 + in_n * 4, 4);
    memcpy(&oh, io + 16 + in_n * 4, 4);
    memcpy(&ow, io + 20 + in_n * 4, 4);
    size_t out_n = (size_t)oc * oh * ow;
    CHECK_EQ(ion, 24 + (in_n + out_n) * 4);
    float *in = malloc(in_n * 4), *want = malloc(out_n * 4), *got = malloc(out_n * 4);
    CHECK(in && want && got);
    memcpy(in, io + 12, in_n * 4);
    memcpy(want, io + 24 + in_n * 4, out_n * 4);

    struct upres_model m;
    int st = nc_load_mem(ctx, param, pn, bin, bn, NULL, &m);
    CHECKF(st == UPRES_OK, "%s", upres_ctx_error(ctx));
    /* Generic geometry from probing: 2x, one output pixel consumed per side. */
    CHECK_EQ(m.scale, 2);
    CHECK_EQ(m.pre_pad, 1);
    CHECK_EQ(m.out_off, 1);
    CHECK_EQ(m.in_c, 3);
    CHECK_EQ(m.out_c, 3);
    CHECK(strcmp(m.arch, "ncnn") == 0);
    CHECK(m.context >= 4);
    int gh, gw;
    CHECK_OK(nn_graph_out_size(m.graph, ctx, ih, iw, &gh, &gw));
    CHECK_EQ(gh, oh);
    CHECK_EQ(gw, ow);
    CHECK_OK(nn_graph_plan(m.graph, ctx, ih, iw, NULL));
    nn_tensor ti = {ic, ih, iw, in}, to = {0, 0, 0, got};
    CHECK_OK(nn_graph_run(m.graph, ctx, &ti, &to));
    CHECK_EQ(to.c, oc);
    CHECK_EQ(to.h, oh);
    CHECK_EQ(to.w, ow);
    double mx = 0;
    for (size_t i = 0; i < out_n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (d > mx) mx = d;
    }
    printf("    tiny: max abs diff vs torch %.3g\n", mx);
    CHECKF(mx < 1e-4, "max abs diff %g", mx);
    nn_graph_free(m.graph);
    free(in);
    free(want);
    free(got);
    free(param);
    free(bin);
    free(io);
    upres_ctx_free(ctx);
}

/* ---- every real model loads ------------------------------------------------ */

typedef struct nc_expect {
    const char *suffix; /* end of the .param path */
    const char *arch;
    int scale, pre_pad, align;
    int pro;
} nc_expect;

static const nc_expect nc_expects[] = {
    {"models-se/up2x-no-denoise.param", "RealCUGAN-se", 2, 18, 2, 0},
    {"models-se/up3x-no-denoise.param", "RealCUGAN-se", 3, 14, 4, 0},
    {"models-se/up4x-no-denoise.param", "RealCUGAN-se", 4, 19, 2, 0},
    {"models-pro/up2x-no-denoise.param", "RealCUGAN-pro", 2, 18, 2, 1},
    {"models-pro/up3x-no-denoise.param", "RealCUGAN-pro", 3, 14, 4, 1},
    {"models-nose/up2x-no-denoise.param", "RealCUGAN-nose", 2, 18, 2, 0},
    {"models-cunet/noise0_model.param", "waifu2x-cunet", 1, 28, 4, 0},
    {"models-cunet/scale2.0x_model.param", "waifu2x-cunet", 2, 18, 2, 0},
    {"models-upconv_7_photo/scale2.0x_model.param", "waifu2x-upconv7", 2, 7, 2, 0},
    {"realesr-animevideov3-x2.param", "SRVGGNetCompact", 2, 0, 1, 0},
    {"realesr-animevideov3-x3.param", "SRVGGNetCompact", 3, 0, 1, 0},
    {"realesr-animevideov3-x4.param", "SRVGGNetCompact", 4, 0, 1, 0},
    {"upscayl-lite-4x.param", "SRVGGNetCompact", 4, 0, 1, 0},
};

static int nc_ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

/* Loads every .param under dir (recursively); counts into *n. Returns NULL
 * or a failure message (static). */
static const char *nc_load_tree(upres_ctx *ctx, const char *dir, int *n, int *matched)
{
    static char msg[1024];
    DIR *d = opendir(dir);
    if (!d) return NULL;
    struct dirent *e;
    const char *fail = NULL;
    while (!fail && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        DIR *sub = opendir(path);
        if (sub) {
            closedir(sub);
            fail = nc_load_tree(ctx, path, n, matched);
            continue;
        }
        if (!nc_ends_with(path, ".param")) continue;
        upres_model *m = NULL;
        int st = upres_model_load(ctx, path, &m);
        if (st) {
            snprintf(msg, sizeof msg, "%s: %s (%s)", path, upres_strerror(st),
                     upres_ctx_error(ctx));
            fail = msg;
            break;
        }
        (*n)++;
        if (strcmp(m->format, "ncnn") != 0 || m->params < 10000 || m->in_c != 3 || m->out_c != 3 ||
            m->context < 4 || m->min_side < 1 || m->min_side > 64) {
            snprintf(msg, sizeof msg,
                     "%s: format %s params %llu channels %d/%d context %d min_side %d", path,
                     m->format, (unsigned long long)m->params, m->in_c, m->out_c, m->context,
                     m->min_side);
            fail = msg;
        }
        for (size_t i = 0; !fail && i < sizeof nc_expects / sizeof nc_expects[0]; i++) {
            const nc_expect *x = &nc_expects[i];
            if (!nc_ends_with(path, x->suffix)) continue;
            (*matched)++;
            if (strcmp(m->arch, x->arch) != 0 || m->scale != x->scale || m->pre_pad != x->pre_pad ||
                m->align != x->align || (m->in_scale != 1.0f) != x->pro || m->out_off != 0) {
                snprintf(msg, sizeof msg,
                         "%s: arch %s scale %d pre_pad %d align %d in_scale %g out_off %d", path,
                         m->arch, m->scale, m->pre_pad, m->align, m->in_scale, m->out_off);
                fail = msg;
            }
        }
        printf("    %-60s %-16s x%d pad %2d align %d ctx %2d min %2d params %llu\n",
               path + strlen(path) - (strlen(path) > 60 ? 60 : strlen(path)), m->arch, m->scale,
               m->pre_pad, m->align, m->context, m->min_side, (unsigned long long)m->params);
        upres_model_free(m);
    }
    closedir(d);
    return fail;
}

TEST(ncnn_all_shared_models_load)
{
    const char *root = test_shared("models/ncnn");
    if (!root) SKIP("../shared/models/ncnn missing");
    upres_ctx *ctx = tu_ctx_1thread();
    CHECK(ctx);
    int n = 0, matched = 0;
    const char *fail = nc_load_tree(ctx, root, &n, &matched);
    upres_ctx_free(ctx);
    CHECKF(!fail, "%s", fail);
    CHECK(n >= 1);
    printf("    %d ncnn models loaded, %d with known settings\n", n, matched);
}

/* ---- reference outputs --------------------------------------------------- */

NC_REF_TEST(ncnn_ref_general_x4v3_16, "models/ncnn/realesr-general-x4v3/upscayl-lite-4x.param",
            "16x16", "realesr-general-x4v3")
NC_REF_TEST(ncnn_ref_general_x4v3_32, "models/ncnn/realesr-general-x4v3/upscayl-lite-4x.param",
            "32x32", "realesr-general-x4v3")
NC_REF_TEST(ncnn_ref_cugan_se_2x_32, "models/ncnn/realcugan/models-se/up2x-no-denoise.param",
            "32x32", "up2x-latest-no-denoise")
NC_REF_TEST(ncnn_ref_cugan_se_3x_32, "models/ncnn/realcugan/models-se/up3x-no-denoise.param",
            "32x32", "up3x-latest-no-denoise")
NC_REF_TEST_TOL(ncnn_ref_cugan_se_4x_32, "models/ncnn/realcugan/models-se/up4x-no-denoise.param",
                "32x32", "up4x-latest-no-denoise", 10)
NC_REF_TEST(ncnn_ref_cugan_pro_2x_32, "models/ncnn/realcugan/models-pro/up2x-no-denoise.param",
            "32x32", "pro-no-denoise-up2x")
NC_REF_TEST(ncnn_ref_cugan_pro_3x_32, "models/ncnn/realcugan/models-pro/up3x-no-denoise.param",
            "32x32", "pro-no-denoise-up3x")
NC_REF_TEST(ncnn_ref_cugan_se_2x_64, "models/ncnn/realcugan/models-se/up2x-no-denoise.param",
            "64x64", "up2x-latest-no-denoise")
NC_REF_TEST(ncnn_ref_cugan_se_3x_64, "models/ncnn/realcugan/models-se/up3x-no-denoise.param",
            "64x64", "up3x-latest-no-denoise")
NC_REF_TEST(ncnn_ref_cugan_se_4x_64, "models/ncnn/realcugan/models-se/up4x-no-denoise.param",
            "64x64", "up4x-latest-no-denoise")
NC_REF_TEST(ncnn_ref_cugan_pro_2x_64, "models/ncnn/realcugan/models-pro/up2x-no-denoise.param",
            "64x64", "pro-no-denoise-up2x")
NC_REF_TEST_TOL(ncnn_ref_cugan_pro_3x_64, "models/ncnn/realcugan/models-pro/up3x-no-denoise.param",
                "64x64", "pro-no-denoise-up3x", 4)
NC_REF_TEST(ncnn_ref_general_x4v3_64, "models/ncnn/realesr-general-x4v3/upscayl-lite-4x.param",
            "64x64", "realesr-general-x4v3")

/* ---- sanity: outputs resemble a bicubic upscale -------------------------- */

static void nc_sanity(const char *model_rel)
{
    upres_model *m = NULL;
    float *out = NULL;
    upres_image *img = NULL;
    char msg[512] = "";
    int r = nc_run_shared(model_rel, "images/spandrel/inputs/32x32.png", &m, &out, &img, msg,
                          sizeof msg);
    if (r == 1) SKIP("shared model or image missing");
    CHECKF(r == 0, "%s", msg);
    upres_image *bic = NULL;
    upres_resize_desc rd = upres_resize_desc_defaults();
    rd.width = img->width * (uint32_t)m->scale;
    rd.height = img->height * (uint32_t)m->scale;
    rd.filter = UPRES_FILTER_BICUBIC;
    CHECK_OK(upres_resize(NULL, img, &rd, &bic));
    size_t n = (size_t)rd.width * rd.height;
    double mean_out[3] = {0}, mean_bic[3] = {0}, mad = 0;
    for (uint32_t y = 0; y < rd.height; y++) {
        const uint8_t *row = upres_image_row(bic, y);
        for (uint32_t x = 0; x < rd.width; x++)
            for (int c = 0; c < 3; c++) {
                double o = nc_u8(out[c * n + (size_t)y * rd.width + x]);
                double b = row[x * bic->channels + c];
                mean_out[c] += o;
                mean_bic[c] += b;
                mad += fabs(o - b);
            }
    }
    mad /= 3.0 * (double)n;
    double worst = 0;
    for (int c = 0; c < 3; c++) {
        double d = fabs(mean_out[c] - mean_bic[c]) / (double)n;
        if (d > worst) worst = d;
    }
    printf("    %s: x%d, channel mean diff %.2f, mean abs diff %.2f (8-bit)\n", model_rel,
           m->scale, worst, mad);
    upres_image_free(bic);
    upres_image_free(img);
    upres_model_free(m);
    free(out);
    CHECKF(worst < 3.0, "channel means differ by %.2f", worst);
    CHECKF(mad < 20.0, "mean abs diff %.2f", mad);
}

TEST(ncnn_sanity_animevideov3_x2)
{
    nc_sanity("models/ncnn/realesr-animevideov3/realesr-animevideov3-x2.param");
}
TEST(ncnn_sanity_animevideov3_x3)
{
    nc_sanity("models/ncnn/realesr-animevideov3/realesr-animevideov3-x3.param");
}
TEST(ncnn_sanity_animevideov3_x4)
{
    nc_sanity("models/ncnn/realesr-animevideov3/realesr-animevideov3-x4.param");
}
TEST(ncnn_sanity_cunet_scale2)
{
    nc_sanity("models/ncnn/waifu2x/models-cunet/noise1_scale2.0x_model.param");
}
TEST(ncnn_sanity_cunet_noise1x)
{
    nc_sanity("models/ncnn/waifu2x/models-cunet/noise2_model.param");
}
TEST(ncnn_sanity_upconv7_art)
{
    nc_sanity("models/ncnn/waifu2x/models-upconv_7_anime_style_art_rgb/scale2.0x_model.param");
}
TEST(ncnn_sanity_upconv7_photo)
{
    nc_sanity("models/ncnn/waifu2x/models-upconv_7_photo/noise1_scale2.0x_model.param");
}
TEST(ncnn_sanity_cugan_nose)
{
    nc_sanity("models/ncnn/realcugan/models-nose/up2x-no-denoise.param");
}

/* ---- malformed ------------------------------------------------------------ */

/* A small valid model: conv 3->3 (3x3, pad 1, bias, fp32) + ReLU. */
static const char nc_good_param[] =
    "7767517\n"
    "3 3\n"
    "Input  in   0 1 data\n"
    "Convolution conv 1 1 data c 0=3 1=3 4=1 5=1 6=81\n"
    "ReLU   relu 1 1 c out\n";

/* Its .bin: tag 0, 81 weights, 3 biases (1 + 84 words). */
static size_t nc_good_bin(uint8_t *buf)
{
    memset(buf, 0, 4);
    for (int i = 0; i < 84; i++) {
        float v = (float)((i * 37) % 11 - 5) * 0.05f;
        memcpy(buf + 4 + 4 * i, &v, 4);
    }
    return 4 + 84 * 4;
}

/* Loads param (NUL-terminated) + bin; returns the status, detail in *err. */
static int nc_try(upres_ctx *ctx, const char *param, const uint8_t *bin, size_t bin_n,
                  const char **err)
{
    struct upres_model m;
    int st = nc_load_mem(ctx, param, strlen(param), bin, bin_n, NULL, &m);
    *err = upres_ctx_error(ctx);
    if (st == UPRES_OK) {
        nn_graph_free(m.graph);
    } else if (m.graph) {
        return 999; /* a failed load must not leave a graph */
    }
    return st;
}

/* Replaces the first `from` in nc_good_param with `to` into buf. */
static const char *nc_edit(char *buf, size_t cap, const char *from, const char *to)
{
    const char *p = strstr(nc_good_param, from);
    if (!p) return NULL;
    snprintf(buf, cap, "%.*s%s%s", (int)(p - nc_good_param), nc_good_param, to, p + strlen(from));
    return buf;
}

TEST(ncnn_good_small_model_loads)
{
    upres_ctx *ctx = tu_ctx_1thread();
    uint8_t bin[400];
    size_t bn = nc_good_bin(bin);
    const char *err;
    CHECK_EQ(nc_try(ctx, nc_good_param, bin, bn, &err), UPRES_OK);
    /* CRLF line ends and blank lines are fine. */
    char crlf[512];
    size_t j = 0;
    for (const char *p = nc_good_param; *p; p++) {
        if (*p == '\n') crlf[j++] = '\r';
        crlf[j++] = *p;
    }
    crlf[j++] = '\n';
    crlf[j] = '\0';
    CHECKF(nc_try(ctx, crlf, bin, bn, &err) == UPRES_OK, "%s", err);
    upres_ctx_free(ctx);
}

TEST(ncnn_unknown_layer_type)
{
    upres_ctx *ctx = tu_ctx_1thread();
    uint8_t bin[400];
    size_t bn = nc_good_bin(bin);
    char p[512];
    const char *err;
    CHECK_EQ(nc_try(ctx, nc_edit(p, sizeof p, "ReLU   relu", "Foo relu"), bin, bn, &err),
             UPRES_ERR_UNSUPPORTED);
    CHECKF(strcmp(err, "ncnn: layer type Foo (layer 'relu') is not supported") == 0, "%s", err);
    upres_ctx_free(ctx);
}

TEST(ncnn_truncated_and_padded_bin)
{
    upres_ctx *ctx = tu_ctx_1thread();
    uint8_t bin[400];
    size_t bn = nc_good_bin(bin);
    const char *err;
    for (size_t cut = 0; cut < bn; cut++) {
        int st = nc_try(ctx, nc_good_param, bin, cut, &err);
        CHECKF(st == UPRES_ERR_CORRUPT, "cut %zu: %d %s", cut, st, err);
        CHECKF(strncmp(err, "ncnn: ", 6) == 0, "%s", err);
    }
    CHECK_EQ(nc_try(ctx, nc_good_param, bin, bn + 4, &err), UPRES_ERR_CORRUPT);
    CHECKF(strstr(err, "left over"), "%s", err);
    /* int8 and quantized-table storage are refused, not misread. */
    uint8_t q[400];
    memcpy(q, bin, bn);
    q[0] = 0x38, q[1] = 0x4B, q[2] = 0x0D, q[3] = 0x00;
    CHECK_EQ(nc_try(ctx, nc_good_param, q, bn, &err), UPRES_ERR_UNSUPPORTED);
    CHECKF(strstr(err, "int8"), "%s", err);
    q[0] = 1, q[1] = 0, q[2] = 0, q[3] = 0;
    CHECK_EQ(nc_try(ctx, nc_good_param, q, bn, &err), UPRES_ERR_UNSUPPORTED);
    /* A NaN weight is corrupt. */
    memcpy(q, bin, bn);
    float nan = NAN;
    memcpy(q + 8, &nan, 4);
    CHECK_EQ(nc_try(ctx, nc_good_param, q, bn, &err), UPRES_ERR_CORRUPT);
    upres_ctx_free(ctx);
}

TEST(ncnn_bad_structure)
{
    upres_ctx *ctx = tu_ctx_1thread();
    uint8_t bin[400];
    size_t bn = nc_good_bin(bin);
    char p[512];
    const char *err;
    static const struct {
        const char *from, *to;
        int status;
        const char *detail;
    } cases[] = {
        {"ReLU   relu 1 1 c", "ReLU relu 1 1 nope", UPRES_ERR_CORRUPT, "no earlier layer"},
        {"3 3\n", "4 3\n", UPRES_ERR_CORRUPT, "declares 4 layers"},
        {"3 3\n", "2 3\n", UPRES_ERR_CORRUPT, "more layers"},
        {"3 3\n", "3 4\n", UPRES_ERR_CORRUPT, "blobs"},
        {"3 3\n", "3 2\n", UPRES_ERR_CORRUPT, "blobs"},
        {"3 3\n", "-3 3\n", UPRES_ERR_CORRUPT, "implausible"},
        {"3 3\n", "3\n", UPRES_ERR_CORRUPT, "line 2"},
        {"7767517", "7767518", UPRES_ERR_UNKNOWN_FORMAT, "magic"},
        {"6=81", "6=80", UPRES_ERR_CORRUPT, "weight_data_size"},
        {"6=81", "6=81 6=81", UPRES_ERR_CORRUPT, "twice"},
        {"0=3 1=3", "0=100000000 1=3", UPRES_ERR_CORRUPT, "out of range"},
        {"0=3 1=3", "0=3 1=100000", UPRES_ERR_CORRUPT, "out of range"},
        {"0=3 1=3", "0=3 1=3 3=0", UPRES_ERR_CORRUPT, "out of range"},
        {"4=1", "4=-233", UPRES_ERR_UNSUPPORTED, "SAME"},
        {"4=1", "4=1 15=-234", UPRES_ERR_UNSUPPORTED, "SAME"},
        {"4=1", "4=5000", UPRES_ERR_CORRUPT, "padding out of range"},
        {"4=1", "4=-1", UPRES_ERR_CORRUPT, "padding out of range"},
        {"0=3 1=3", "0=3 1=3.5", UPRES_ERR_CORRUPT, "wrong kind"},
        {"0=3 1=3", "0=3 1=3x", UPRES_ERR_CORRUPT, "bad parameter"},
        {"0=3 1=3", "0=3 1=99999999999", UPRES_ERR_CORRUPT, "bad parameter"},
        {"0=3 1=3", "0=3 1=3 40=1", UPRES_ERR_CORRUPT, "out of range"},
        {"0=3 1=3", "0=3 1=3 -2147483648=1", UPRES_ERR_CORRUPT, "out of range"},
        {"0=3 1=3", "0=3 1=3 9=2 -23310=3,0.1", UPRES_ERR_CORRUPT, "declares"},
        {"0=3 1=3", "0=3 1=3 9=2 -23310=1,0.1,0.2", UPRES_ERR_CORRUPT, "declares"},
        {"0=3 1=3", "0=3 1=3 9=2 -23310=100000,0.1", UPRES_ERR_UNSUPPORTED, "elements"},
        {"0=3 1=3", "0=3 1=3 9=5", UPRES_ERR_UNSUPPORTED, "mish"},
        {"0=3 1=3", "0=3 1=3 8=1", UPRES_ERR_UNSUPPORTED, "int8"},
        {"0=3 1=3", "0=3 1=3 17=1 22=1", UPRES_ERR_UNSUPPORTED, "parameter 22"},
        {"0=3 1=3", "0=3 1=3 19=1", UPRES_ERR_UNSUPPORTED, "dynamic weights"},
        {"Convolution conv 1 1 data c 0=3 1=3 4=1",
         "Deconvolution conv 1 1 data c 0=3 1=3 4=1 20=8", UPRES_ERR_UNSUPPORTED, "fixed output"},
        {"1 1 data c", "1 1 data data", UPRES_ERR_CORRUPT, "twice"},
        {"1 1 data c", "1 100 data c", UPRES_ERR_CORRUPT, "outputs"},
        {"1 1 data c", "2 1 data c", UPRES_ERR_CORRUPT, "no earlier layer"},
        {"conv 1 1 data c 0=3 1=3 4=1 5=1 6=81", "conv 1", UPRES_ERR_CORRUPT, "malformed"},
        {"conv 1 1 data c", "conv 1 1 data c 0=", UPRES_ERR_CORRUPT, "bad parameter"},
        {"conv 1 1 data c", "conv 1 1 data c =3", UPRES_ERR_CORRUPT, "bad parameter"},
        {"Input  in   0 1 data\n", "Input in 0 1 data 2=4\n", UPRES_ERR_UNSUPPORTED, "RGB"},
        {"ReLU   relu 1 1 c out", "ReLU relu 1 1 c out\nInput in2 0 1 d2", UPRES_ERR_CORRUPT,
         "more layers"},
        {"ReLU   relu 1 1 c out\n", "Split s 1 2 c out o2\n", UPRES_ERR_CORRUPT, "blobs"},
        {"ReLU   relu 1 1 c out", "Interp relu 1 1 c out 0=3 1=1e40 2=2.0", UPRES_ERR_CORRUPT,
         "bad parameter"},
        {"ReLU   relu 1 1 c out", "Interp relu 1 1 c out 0=3 1=1e30 2=2.0", UPRES_ERR_CORRUPT,
         "scale out of range"},
        {"ReLU   relu 1 1 c out", "Interp relu 1 1 c out 0=3 3=100000 4=100000", UPRES_ERR_CORRUPT,
         "output size out of range"},
        {"ReLU   relu 1 1 c out", "Interp relu 1 1 c out 0=3 1=1e6 2=1e6", UPRES_ERR_CORRUPT,
         "scale out of range"},
        {"ReLU   relu 1 1 c out", "Pooling relu 1 1 c out 0=0 1=2 2=2", UPRES_ERR_UNSUPPORTED,
         "global average"},
        {"ReLU   relu 1 1 c out", "Eltwise relu 2 1 c c out 0=2", UPRES_ERR_UNSUPPORTED, "max"},
        {"ReLU   relu 1 1 c out", "BinaryOp relu 2 1 c c out 0=6", UPRES_ERR_UNSUPPORTED, "pow"},
        {"ReLU   relu 1 1 c out", "Crop relu 1 1 c out -23309=1,0 -23310=1,8 -23311=1,1",
         UPRES_ERR_UNSUPPORTED, "depends"},
        {"ReLU   relu 1 1 c out", "Crop relu 1 1 c out 3=8 4=8", UPRES_ERR_UNSUPPORTED, "fixed"},
        {"ReLU   relu 1 1 c out", "InnerProduct relu 1 1 c out 0=3 2=9", UPRES_ERR_UNSUPPORTED,
         "feature map"},
        {"ReLU   relu 1 1 c out", "PixelShuffle relu 1 1 c out 0=1000", UPRES_ERR_CORRUPT,
         "range"},
        {"ReLU   relu 1 1 c out", "PReLU relu 1 1 c out 0=2", UPRES_ERR_CORRUPT, "slope"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *param = nc_edit(p, sizeof p, cases[i].from, cases[i].to);
        CHECKF(param, "case %zu: no '%s'", i, cases[i].from);
        int st = nc_try(ctx, param, bin, bn, &err);
        CHECKF(st == cases[i].status, "case %zu (%s): %d, want %d: %s", i, cases[i].to, st,
               cases[i].status, err);
        CHECKF(strstr(err, cases[i].detail) && strncmp(err, "ncnn: ", 6) == 0,
               "case %zu (%s): detail '%s' lacks '%s'", i, cases[i].to, err, cases[i].detail);
        CHECKF(tu_one_line(err) || !strchr(err, '\n'), "case %zu: multi-line detail", i);
    }
    upres_ctx_free(ctx);
}

/* Every prefix and many byte edits of a real-sized param: no crash (run
 * under ASan), and a failure always leaves no graph. */
TEST(ncnn_param_mangling)
{
    size_t pn = 0, bn = 0;
    char *param = (char *)test_read_file(test_fixture("ncnn/tiny.param"), &pn);
    uint8_t *bin = test_read_file(test_fixture("ncnn/tiny.bin"), &bn);
    upres_ctx *ctx = tu_ctx_1thread();
    CHECK(param && bin && ctx);
    char *buf = malloc(pn + 1);
    CHECK(buf);
    struct upres_model m;
    int ok = 0;
    /* Cuts inside the last line can leave a valid model (a shorter name or
     * fewer parameters), so only earlier cuts must fail. */
    size_t last = pn - 1;
    while (last > 0 && param[last - 1] != '\n') last--;
    for (size_t cut = 0; cut < last; cut += 7) {
        int st = nc_load_mem(ctx, param, cut, bin, bn, NULL, &m);
        CHECKF(st != UPRES_OK, "prefix %zu loaded", cut);
        CHECK(m.graph == NULL);
    }
    static const char subst[] = "0123456789-=,. \nXe";
    uint32_t seed = 12345;
    for (int i = 0; i < 1500; i++) {
        memcpy(buf, param, pn);
        size_t pos = tu_xorshift32(&seed) % pn;
        buf[pos] = subst[tu_xorshift32(&seed) % (sizeof subst - 1)];
        int st = nc_load_mem(ctx, buf, pn, bin, bn, NULL, &m);
        if (st == UPRES_OK) {
            ok++;
            nn_graph_free(m.graph);
        } else {
            CHECK(m.graph == NULL);
            CHECKF(strncmp(upres_ctx_error(ctx), "ncnn: ", 6) == 0, "%s", upres_ctx_error(ctx));
        }
    }
    printf("    %d of 1500 single-byte edits still load\n", ok);
    free(buf);
    free(param);
    free(bin);
    upres_ctx_free(ctx);
}

/* fp16 decoding: zero, subnormals, normals, the largest half; odd counts
 * are padded to 4 bytes. */
TEST(ncnn_fp16_blocks)
{
    static const char param[] =
        "7767517\n3 3\n"
        "Input in 0 1 data 2=1\n"
        "Convolution conv 1 1 data c 0=1 1=1 5=0 6=1\n"
        "Convolution conv2 1 1 c out 0=1 1=1 5=0 6=1\n";
    static const struct {
        uint16_t h;
        float f;
    } vals[] = {{0x3C00, 1.0f}, {0xC000, -2.0f}, {0x0001, 5.9604645e-8f},
                {0x03FF, 6.0975552e-5f}, {0x7BFF, 65504.0f}, {0x3555, 0.33325195f}};
    upres_ctx *ctx = tu_ctx_1thread();
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        /* fp16 block of 1 (+2 alignment bytes), then fp16 1.0 (+2). */
        uint8_t bin[16] = {0x47, 0x6B, 0x30, 0x01, 0, 0, 0, 0,
                           0x47, 0x6B, 0x30, 0x01, 0, 0x3C, 0, 0};
        bin[4] = (uint8_t)(vals[i].h & 0xff);
        bin[5] = (uint8_t)(vals[i].h >> 8);
        struct upres_model m;
        int st = nc_load_mem(ctx, param, sizeof param - 1, bin, sizeof bin, NULL, &m);
        CHECKF(st == UPRES_OK, "%s", upres_ctx_error(ctx));
        CHECK_OK(nn_graph_plan(m.graph, ctx, 1, 1, NULL));
        float in = 1.0f, out = 0.0f;
        nn_tensor ti = {1, 1, 1, &in}, to = {0, 0, 0, &out};
        CHECK_OK(nn_graph_run(m.graph, ctx, &ti, &to));
        CHECKF(out == vals[i].f, "half 0x%04x -> %.9g, want %.9g", vals[i].h, out, vals[i].f);
        CHECK_EQ(m.in_c, 1);
        nn_graph_free(m.graph);
        /* Without the 2 alignment bytes the second block is misplaced. */
        st = nc_load_mem(ctx, param, sizeof param - 1, bin, sizeof bin - 2, NULL, &m);
        CHECK(st == UPRES_ERR_CORRUPT);
    }
    upres_ctx_free(ctx);
}

/* Output sizes that overflow: refused while probing, not crashed on. */
TEST(ncnn_huge_output_refused)
{
    static const char param[] =
        "7767517\n5 5\n"
        "Input in 0 1 data\n"
        "Interp a 1 1 data b 0=1 1=64.0 2=64.0\n"
        "Interp b 1 1 b c 0=1 1=64.0 2=64.0\n"
        "Interp c 1 1 c d 0=1 1=64.0 2=64.0\n"
        "Interp d 1 1 d e 0=1 1=64.0 2=64.0\n";
    upres_ctx *ctx = tu_ctx_1thread();
    struct upres_model m;
    int st = nc_load_mem(ctx, param, sizeof param - 1, NULL, 0, NULL, &m);
    CHECKF(st == UPRES_ERR_UNSUPPORTED, "%d %s", st, upres_ctx_error(ctx));
    CHECK(m.graph == NULL);
    CHECKF(strncmp(upres_ctx_error(ctx), "ncnn: ", 6) == 0, "%s", upres_ctx_error(ctx));
    /* A pooled vector as the output is not an image. */
    static const char pooled[] =
        "7767517\n2 2\nInput in 0 1 data\nPooling p 1 1 data out 0=1 4=1\n";
    st = nc_load_mem(ctx, pooled, sizeof pooled - 1, NULL, 0, NULL, &m);
    CHECK_EQ(st, UPRES_ERR_UNSUPPORTED);
    /* Two dangling outputs. */
    static const char two[] =
        "7767517\n3 3\nInput in 0 1 data\nReLU a 1 1 data x\nSigmoid b 1 1 data y\n";
    st = nc_load_mem(ctx, two, sizeof two - 1, NULL, 0, NULL, &m);
    CHECK_EQ(st, UPRES_ERR_UNSUPPORTED);
    CHECKF(strstr(upres_ctx_error(ctx), "2 outputs"), "%s", upres_ctx_error(ctx));
    upres_ctx_free(ctx);
}

/* Odd and tiny tile sizes run through upres__model_run for every family
 * (alignment rows, periodic padding, the Real-CUGAN 4x residual). */
TEST(ncnn_odd_sizes_run)
{
    static const char *const models[] = {
        "models/ncnn/realcugan/models-se/up2x-no-denoise.param",
        "models/ncnn/realcugan/models-se/up3x-no-denoise.param",
        "models/ncnn/realcugan/models-se/up4x-no-denoise.param",
        "models/ncnn/realcugan/models-pro/up3x-no-denoise.param",
        "models/ncnn/waifu2x/models-cunet/noise0_model.param",
        "models/ncnn/waifu2x/models-upconv_7_photo/scale2.0x_model.param",
        "models/ncnn/realesr-animevideov3/realesr-animevideov3-x3.param",
    };
    static const int sizes[][2] = {{13, 22}, {1, 1}, {2, 5}};
    upres_ctx *ctx = NULL;
    CHECK_OK(upres_ctx_new(NULL, &ctx));
    int ran = 0;
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        const char *path = test_shared(models[i]);
        if (!path) continue;
        upres_model *m = NULL;
        CHECKF(upres_model_load(ctx, path, &m) == UPRES_OK, "%s: %s", models[i],
               upres_ctx_error(ctx));
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
            int h = sizes[k][0], w = sizes[k][1];
            if (h < m->min_side || w < m->min_side) continue;
            size_t n = (size_t)h * w, on = 3 * n * m->scale * m->scale;
            float *in = malloc(3 * n * sizeof(float)), *out = malloc(on * sizeof(float));
            CHECK(in && out);
            double in_mean = 0, out_mean = 0;
            /* A smooth ramp: networks reproduce its mean closely. */
            for (size_t j = 0; j < 3 * n; j++) {
                int c = (int)(j / n), y = (int)(j % n) / w, x = (int)(j % n) % w;
                in[j] = 0.2f + 0.15f * (float)c + 0.4f * (float)(x + y) / (float)(h + w);
                in_mean += in[j];
            }
            int st = upres__model_run(ctx, m, in, h, w, out);
            CHECKF(st == UPRES_OK, "%s %dx%d: %s", models[i], w, h, upres_ctx_error(ctx));
            int finite = 1;
            for (size_t j = 0; j < on; j++) {
                finite &= isfinite(out[j]);
                out_mean += out[j];
            }
            in_mean /= 3.0 * n;
            out_mean /= (double)on;
            CHECKF(finite, "%s %dx%d: non-finite output", models[i], w, h);
            CHECKF(fabs(out_mean - in_mean) < (h >= 8 ? 0.03 : 0.2),
                   "%s %dx%d: mean %.3f vs input %.3f", models[i], w, h, out_mean, in_mean);
            free(in);
            free(out);
            ran++;
        }
        upres_model_free(m);
    }
    upres_ctx_free(ctx);
    if (!ran) SKIP("shared models missing");
}

/* A long chain loads in reasonable time (no quadratic blob handling). */
TEST(ncnn_many_layers)
{
    const int n = 20000;
    size_t cap = (size_t)n * 48 + 64;
    char *p = malloc(cap);
    CHECK(p);
    size_t len = (size_t)snprintf(p, cap, "7767517\n%d %d\nInput in 0 1 b0\n", n + 1, 2 * n + 1);
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(p + len, cap - len, "Split s%d 1 2 b%d b%d x%d\n", i, i, i + 1, i);
    upres_ctx *ctx = tu_ctx_1thread();
    struct upres_model m;
    /* Every Split leaves one top unread: many dangling aliases of read values
     * and a single real output, the last top. */
    int st = nc_load_mem(ctx, p, len, NULL, 0, NULL, &m);
    CHECK_EQ(st, UPRES_ERR_UNSUPPORTED); /* the output is the input itself */
    CHECKF(strstr(upres_ctx_error(ctx), "no output"), "%s", upres_ctx_error(ctx));
    len = (size_t)snprintf(p, cap, "7767517\n%d %d\nInput in 0 1 b0\n", n + 1, n + 1);
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(p + len, cap - len, "ReLU r%d 1 1 b%d b%d\n", i, i, i + 1);
    st = nc_load_mem(ctx, p, len, NULL, 0, NULL, &m);
    CHECKF(st == UPRES_OK, "%s", upres_ctx_error(ctx));
    CHECK_EQ(m.scale, 1);
    nn_graph_free(m.graph);
    free(p);
    upres_ctx_free(ctx);
}

/* A branch of 180 stride-64 1x1 convolutions stays 1x1 while its "input
 * pixels per value pixel" overflows to inf, and a 1-tap kernel then makes
 * its receptive radius inf * 0 = NaN; added to the input, that NaN reaches
 * the output. The context must come out capped, not from casting NaN. */
TEST(ncnn_nan_receptive_field_capped)
{
    const int n = 180;
    size_t cap = (size_t)n * 80 + 256;
    char *p = malloc(cap);
    uint8_t *bin = calloc((size_t)n, 40); /* per conv: tag 0 + 9 zero weights */
    CHECK(p && bin);
    size_t len = (size_t)snprintf(p, cap, "7767517\n%d %d\nInput in 0 1 data\n"
                                          "Split sp 1 2 data x0 b\n", n + 3, n + 4);
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(p + len, cap - len,
                                "Convolution c%d 1 1 x%d x%d 0=3 1=1 3=64 6=9\n", i, i, i + 1);
    len += (size_t)snprintf(p + len, cap - len, "BinaryOp add 2 1 b x%d out 0=0\n", n);
    upres_ctx *ctx = tu_ctx_1thread();
    struct upres_model m;
    int st = nc_load_mem(ctx, p, len, bin, (size_t)n * 40, NULL, &m);
    CHECKF(st == UPRES_OK, "%s", upres_ctx_error(ctx));
    CHECK_EQ(m.scale, 1);
    CHECK_EQ(m.context, 4096);
    nn_graph_free(m.graph);
    free(p);
    free(bin);
    upres_ctx_free(ctx);
}

/* m->context covers the receptive field: a tile cut with `context` pixels
 * of real image around it gives the same centre as the whole image (graphs
 * without global pooling only; pooling makes every pixel depend on all). */
TEST(ncnn_context_covers_receptive_field)
{
    static const char *const models[] = {
        "models/ncnn/realcugan/models-nose/up2x-no-denoise.param",
        "models/ncnn/waifu2x/models-upconv_7_photo/scale2.0x_model.param",
        "models/ncnn/realesr-animevideov3/realesr-animevideov3-x4.param",
        "models/ncnn/realesr-general-x4v3/upscayl-lite-4x.param",
    };
    upres_ctx *ctx = NULL;
    CHECK_OK(upres_ctx_new(NULL, &ctx));
    upres_image *full = nc_shared_rgb(ctx, "images/spandrel/inputs/einstein.png"), *img = NULL;
    if (full && full->width >= 96 && full->height >= 96) {
        /* The top-left 96x96 of it. */
        upres_resize_desc rd = upres_resize_desc_defaults();
        rd.width = rd.height = 96;
        rd.filter = UPRES_FILTER_NEAREST;
        rd.src_w = rd.src_h = 96;
        CHECK_OK(upres_resize(NULL, full, &rd, &img));
    }
    upres_image_free(full);
    int ran = 0;
    for (size_t i = 0; img && i < sizeof models / sizeof models[0]; i++) {
        const char *path = test_shared(models[i]);
        if (!path) continue;
        upres_model *m = NULL;
        CHECKF(upres_model_load(ctx, path, &m) == UPRES_OK, "%s", upres_ctx_error(ctx));
        const int W = 96, s = m->scale, c0 = m->context;
        const int t0 = 40, tn = 16; /* the tile: [40, 56) in both axes */
        CHECKF(c0 <= t0, "%s: context %d", models[i], c0);
        float *whole_in = nc_to_chw(img);
        float *whole = malloc((size_t)3 * W * W * s * s * sizeof(float));
        int cn = tn + 2 * c0;
        float *tin = malloc((size_t)3 * cn * cn * sizeof(float));
        float *tout = malloc((size_t)3 * cn * cn * s * s * sizeof(float));
        CHECK(whole_in && whole && tin && tout);
        CHECK_OK(upres__model_run(ctx, m, whole_in, W, W, whole));
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < cn; y++)
                for (int x = 0; x < cn; x++)
                    tin[((size_t)c * cn + y) * cn + x] =
                        whole_in[((size_t)c * W + (t0 - c0 + y)) * W + (t0 - c0 + x)];
        CHECK_OK(upres__model_run(ctx, m, tin, cn, cn, tout));
        double mx = 0;
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < tn * s; y++)
                for (int x = 0; x < tn * s; x++) {
                    float a = whole[((size_t)c * W * s + (t0 * s + y)) * W * s + t0 * s + x];
                    float b = tout[((size_t)c * cn * s + (c0 * s + y)) * cn * s + c0 * s + x];
                    if (fabs(a - b) > mx) mx = fabs(a - b);
                }
        printf("    %s: context %d, tile vs whole max diff %.3g\n", models[i], c0, mx);
        CHECKF(mx < 1e-4, "%s: tile differs from whole image by %g", models[i], mx);
        free(whole_in);
        free(whole);
        free(tin);
        free(tout);
        upres_model_free(m);
        ran++;
    }
    upres_image_free(img);
    upres_ctx_free(ctx);
    if (!ran) SKIP("shared models missing");
}
