/* Tests of `upres upscale` and `upres models` (tools/cmd_upscale.c), run as a
 * separate process with test_run(). Each test runs in its own temporary
 * folder with a controlled model search path (UPRES_MODEL_PATH, an empty
 * XDG_DATA_HOME, no ./models), so models installed on the machine cannot
 * change the results. Tests that run a real network use the models in
 * $UPRES_SHARED/models on inputs of 32x32..48x40 and SKIP without them. */
/* realpath() is XSI. */
#define _XOPEN_SOURCE 700
#include "test.h"
#include "upres.h"

#include <dirent.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define UP_TIMEOUT_S 120
#define UP_CAP 65536

static char up_out[UP_CAP], up_err[UP_CAP];
static char up_bin[PATH_MAX];

/* Makes the test hermetic: the program path made absolute, the working
 * folder the test's temporary folder (so ./models is absent), XDG_DATA_HOME
 * an empty folder and UPRES_MODEL_PATH = model_path ("" = none). Returns 0
 * on failure. */
static int up_setup(const char *model_path)
{
    if (!realpath(test_upres_bin(), up_bin)) return 0;
    char xdg[PATH_MAX];
    snprintf(xdg, sizeof xdg, "%s/xdg", test_tmpdir());
    if (setenv("XDG_DATA_HOME", xdg, 1) != 0) return 0;
    if (setenv("UPRES_MODEL_PATH", model_path ? model_path : "", 1) != 0) return 0;
    return chdir(test_tmpdir()) == 0;
}

/* Absolute path of the shared models folder, or NULL when absent. Call
 * before up_setup() (which changes the working folder). */
static const char *shared_models(void)
{
    static char buf[PATH_MAX];
    const char *p = test_shared("models/pytorch/realesr-animevideov3.pth");
    if (!p || !realpath(test_shared("models"), buf)) return NULL;
    return buf;
}

/* Runs `upres ARGS...` (NULL-terminated) into up_out / up_err. */
static int up(const char *first, ...)
{
    va_list ap;
    va_start(ap, first);
    int r = tu_upres_va(up_bin, NULL, UP_TIMEOUT_S, up_out, sizeof up_out, up_err, sizeof up_err, first, ap);
    va_end(ap);
    return r;
}

/* Writes a w x h image with smooth and sharp structure to path (format from
 * the name). Returns the status. */
static int up_save_pattern(const char *path, uint32_t w, uint32_t h, uint32_t channels,
                           upres_depth depth)
{
    upres_image *img = NULL;
    int st = upres_image_new(&img, w, h, channels, depth, NULL);
    if (st != UPRES_OK) return st;
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++)
            for (uint32_t c = 0; c < channels; c++) {
                double v = (double)((x * 5 + y * 11 + c * 37) % 48) / 47.0;
                if ((x / 6 + y / 5) % 2) v = 1.0 - v;
                if (channels % 2 == 0 && c == channels - 1) v = 0.25 + 0.5 * (double)y / h;
                size_t i = (size_t)x * channels + c;
                void *row = upres_image_row(img, y);
                if (depth == UPRES_U8) ((uint8_t *)row)[i] = (uint8_t)(v * 255 + 0.5);
                else ((uint16_t *)row)[i] = (uint16_t)(v * 65535 + 0.5);
            }
    st = upres_save(NULL, img, path, NULL);
    upres_image_free(img);
    return st;
}

/* Loads path; returns NULL on failure. */
static upres_image *up_load(const char *path)
{
    upres_image *img = NULL;
    return upres_load(NULL, path, NULL, &img, NULL) == UPRES_OK ? img : NULL;
}

/* 1 when the file at path decodes to a w x h image. */
static int has_size(const char *path, uint32_t w, uint32_t h)
{
    upres_image *img = up_load(path);
    int ok = img && img->width == w && img->height == h;
    upres_image_free(img);
    return ok;
}

/* The value of "key" in a one-object JSON line (NULL when absent): the text
 * after `"key": ` up to the next ',' or '}' (strings keep their quotes). */
static const char *json_field(const char *json, const char *key, char *buf, size_t cap)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *p = strstr(json, pat);
    if (!p) return NULL;
    p += strlen(pat);
    size_t n = 0;
    int in_str = 0;
    for (; p[n] && n + 1 < cap; n++) {
        if (p[n] == '"' && (n == 0 || p[n - 1] != '\\')) in_str = !in_str;
        if (!in_str && (p[n] == ',' || p[n] == '}')) break;
    }
    memcpy(buf, p, n);
    buf[n] = 0;
    return buf;
}

/* Symlinks `target` at `link` after creating link's folder. */
static int link_at(const char *target, const char *link)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", link);
    char *s = strrchr(dir, '/');
    if (s) {
        *s = 0;
        for (char *q = dir + 1; *q; q++)
            if (*q == '/') {
                *q = 0;
                mkdir(dir, 0777);
                *q = '/';
            }
        mkdir(dir, 0777);
    }
    return symlink(target, link);
}

/* Number of lines in s. */
static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* ---- with a real model ----------------------------------------------------- */

TEST(cli_upscale_real_model_gives_size_and_differs_from_lanczos)
{
    const char *models = shared_models();
    if (!models) SKIP("no shared models (../shared/models)");
    CHECK(up_setup(models));
    CHECK_OK(up_save_pattern("in.png", 32, 24, 3, UPRES_U8));
    int rc = up("upscale", "in.png", "-m", "realesr-animevideov3", "--json", NULL);
    CHECKF(rc == 0, "exit %d: %s", rc, up_err);
    CHECKF(has_size("in-x4.png", 128, 96), "in-x4.png is not 128x96");
    char v[4096];
    CHECKF(json_field(up_out, "model", v, sizeof v) &&
               strstr(v, "pytorch/realesr-animevideov3.pth\""),
           "model: %s", up_out);
    CHECKF(json_field(up_out, "arch", v, sizeof v) && !strcmp(v, "\"SRVGGNetCompact\""), "arch: %s",
           up_out);
    CHECKF(json_field(up_out, "width", v, sizeof v) && !strcmp(v, "128"), "%s", up_out);
    CHECKF(json_field(up_out, "height", v, sizeof v) && !strcmp(v, "96"), "%s", up_out);
    CHECKF(json_field(up_out, "model_scale", v, sizeof v) && !strcmp(v, "4"), "%s", up_out);
    CHECK(json_field(up_out, "seconds", v, sizeof v) && json_field(up_out, "tile", v, sizeof v));
    CHECKF(count_lines(up_out) == 1, "stdout is not one JSON line: %s", up_out);
    /* The network ran: the result is not the lanczos3 upscale. */
    upres_image *in = up_load("in.png"), *net = up_load("in-x4.png"), *lz = NULL;
    CHECK(in && net);
    upres_resize_desc rd = upres_resize_desc_defaults();
    rd.width = 128;
    rd.height = 96;
    CHECK_OK(upres_resize(NULL, in, &rd, &lz));
    double psnr = tu_psnr_u8(lz, net);
    upres_image_free(in);
    upres_image_free(net);
    upres_image_free(lz);
    CHECKF(psnr < 45.0, "model output equals lanczos3 (PSNR %.1f dB)", psnr);
}

TEST(cli_upscale_scale_2_with_x4_model_and_width)
{
    const char *models = shared_models();
    if (!models) SKIP("no shared models (../shared/models)");
    CHECK(up_setup(models));
    CHECK_OK(up_save_pattern("pic.png", 40, 24, 3, UPRES_U8));
    int rc = up("upscale", "pic.png", "-m", "realesr-animevideov3", "-s", "2", "--json", NULL);
    CHECKF(rc == 0, "exit %d: %s", rc, up_err);
    CHECKF(has_size("pic-x2.png", 80, 48), "pic-x2.png is not 80x48");
    char v[256];
    CHECKF(json_field(up_out, "scale", v, sizeof v) && !strcmp(v, "2"), "%s", up_out);
    CHECKF(json_field(up_out, "model_scale", v, sizeof v) && !strcmp(v, "4"), "%s", up_out);
    /* --width: height in proportion (24 * 100 / 40 = 60); -o names the file. */
    rc = up("upscale", "pic.png", "-m", "realesr-animevideov3", "--width", "100", "-o", "w.png",
            NULL);
    CHECKF(rc == 0, "exit %d: %s", rc, up_err);
    CHECK(has_size("w.png", 100, 60));
    /* Without -o the name carries the size. */
    rc = up("upscale", "pic.png", "-m", "realesr-animevideov3", "--height", "36", "-q", NULL);
    CHECKF(rc == 0, "exit %d: %s", rc, up_err);
    CHECK(has_size("pic-60x36.png", 60, 36));
    CHECK_EQ(strlen(up_out), 0); /* -q: no summary */
}

TEST(cli_upscale_default_model_from_search_path)
{
    const char *models = shared_models();
    if (!models) SKIP("no shared models (../shared/models)");
    char ncnn[PATH_MAX];
    snprintf(ncnn, sizeof ncnn, "%s/ncnn/realesr-general-x4v3/upscayl-lite-4x.param", models);
    if (access(ncnn, R_OK) != 0) SKIP("no realesr-general-x4v3 ncnn model");
    CHECK(up_setup(models));
    CHECK_OK(up_save_pattern("d.png", 32, 32, 3, UPRES_U8));
    int rc = up("upscale", "d.png", "--json", "-v", NULL);
    CHECKF(rc == 0, "exit %d: %s", rc, up_err);
    char v[4096];
    CHECKF(json_field(up_out, "model", v, sizeof v) && strstr(v, "upscayl-lite-4x.param\""),
           "default model: %s", up_out);
    CHECK(has_size("d-x4.png", 128, 128));
    CHECKF(!strstr(up_err, "warning"), "unexpected warning: %s", up_err);
}

/* ---- without a model ------------------------------------------------------- */

TEST(cli_upscale_no_model_falls_back_to_lanczos)
{
    CHECK(up_setup(""));
    CHECK_OK(up_save_pattern("a.png", 20, 10, 4, UPRES_U16));
    int rc = up("upscale", "a.png", "--json", NULL);
    CHECKF(rc == 0, "exit %d: %s", rc, up_err);
    CHECKF(tu_one_line(up_err), "stderr is not one line: '%s'", up_err);
    CHECKF(strstr(up_err, "warning") && strstr(up_err, "no model") && strstr(up_err, "./models") &&
               strstr(up_err, "xdg/upres/models"),
           "warning does not say where it looked: %s", up_err);
    char v[256];
    CHECKF(json_field(up_out, "model", v, sizeof v) && !strcmp(v, "null"), "%s", up_out);
    CHECKF(json_field(up_out, "arch", v, sizeof v) && !strcmp(v, "null"), "%s", up_out);
    /* The size the default models would give; layout and depth kept. */
    upres_image *img = up_load("a-x4.png");
    CHECK(img);
    int ok = img->width == 80 && img->height == 40 && img->channels == 4 && img->depth == UPRES_U16;
    upres_image_free(img);
    CHECK(ok);
    /* And it is lanczos3 (within one level: the upscaler may compute in
     * float where upres_resize uses Pillow's fixed point). */
    CHECK_OK(up_save_pattern("rgb.png", 20, 10, 3, UPRES_U8));
    CHECK_EQ(up("upscale", "rgb.png", "-q", NULL), 0);
    upres_image *in = up_load("rgb.png"), *lz = NULL, *got = up_load("rgb-x4.png");
    CHECK(in && got);
    upres_resize_desc rd = upres_resize_desc_defaults();
    rd.width = 80;
    rd.height = 40;
    CHECK_OK(upres_resize(NULL, in, &rd, &lz));
    int maxd = 0;
    for (uint32_t y = 0; y < 40; y++)
        for (uint32_t i = 0; i < 80 * 3; i++) {
            int d = abs((int)((uint8_t *)upres_image_row(lz, y))[i] -
                        (int)((uint8_t *)upres_image_row(got, y))[i]);
            if (d > maxd) maxd = d;
        }
    upres_image_free(in);
    upres_image_free(lz);
    upres_image_free(got);
    CHECKF(maxd <= 1, "fallback differs from lanczos3 by %d levels", maxd);
    /* -s and --memory/--tile are accepted in the fallback too. */
    rc = up("upscale", "a.png", "-s", "1.5", "--memory", "512M", "--tile", "64", "-o", "b.png",
            NULL);
    CHECKF(rc == 0, "exit %d: %s", rc, up_err);
    CHECK(has_size("b.png", 30, 15));
}

TEST(cli_upscale_model_name_lookup)
{
    /* Junk model files: every lookup ends in a load error naming the file
     * the rules chose, so no working model is needed. */
    CHECK(up_setup(""));
    CHECK_OK(up_save_pattern("in.png", 16, 16, 3, UPRES_U8));
    const char *junk = "not a model";
    mkdir("mp", 0777);
    mkdir("mp/a", 0777);
    mkdir("mp/a/b", 0777);
    mkdir("mp/z", 0777);
    mkdir("mp2", 0777);
    CHECK(test_write_file("mp/a/b/net.pth", junk, 11) == 0);
    CHECK(test_write_file("mp/z/net.safetensors", junk, 11) == 0);
    CHECK(test_write_file("mp/a/abc-x2.param", junk, 11) == 0);
    CHECK(test_write_file("mp/a/abc-x4.param", junk, 11) == 0);
    CHECK(test_write_file("mp/a/Mixed.pth", junk, 11) == 0);
    CHECK(test_write_file("mp2/only.pt", junk, 11) == 0);
    /* .safetensors is preferred over .pth, wherever it sits. */
    int rc = up("upscale", "in.png", "-m", "net", "--model-path", "mp", NULL);
    CHECKF(rc == 1, "exit %d", rc);
    CHECKF(tu_one_line(up_err), "not one line: %s", up_err);
    CHECKF(strstr(up_err, "mp/z/net.safetensors") && strstr(up_err, "cannot load model"), "%s",
           up_err);
    /* A file name with its extension picks that file. */
    rc = up("upscale", "in.png", "-m", "net.pth", "--model-path", "mp", NULL);
    CHECKF(rc == 1 && strstr(up_err, "mp/a/b/net.pth"), "exit %d: %s", rc, up_err);
    /* A scale suffix may be left out: the larger scale, or the one asked. */
    rc = up("upscale", "in.png", "-m", "abc", "--model-path", "mp", NULL);
    CHECKF(rc == 1 && strstr(up_err, "abc-x4.param"), "exit %d: %s", rc, up_err);
    rc = up("upscale", "in.png", "-m", "abc", "-s", "2", "--model-path", "mp", NULL);
    CHECKF(rc == 1 && strstr(up_err, "abc-x2.param"), "exit %d: %s", rc, up_err);
    /* Case-insensitive as a last resort; folders in a name. */
    rc = up("upscale", "in.png", "-m", "mixed", "--model-path", "mp", NULL);
    CHECKF(rc == 1 && strstr(up_err, "Mixed.pth"), "exit %d: %s", rc, up_err);
    rc = up("upscale", "in.png", "-m", "b/net", "--model-path", "mp", NULL);
    CHECKF(rc == 1 && strstr(up_err, "mp/a/b/net.pth"), "exit %d: %s", rc, up_err);
    /* --model-path is repeatable; UPRES_MODEL_PATH is searched as well. */
    rc = up("upscale", "in.png", "-m", "only", "--model-path", "mp", "--model-path", "mp2", NULL);
    CHECKF(rc == 1 && strstr(up_err, "mp2/only.pt"), "exit %d: %s", rc, up_err);
    char env[PATH_MAX];
    snprintf(env, sizeof env, "%s/nowhere:%s/mp2", test_tmpdir(), test_tmpdir());
    CHECK(setenv("UPRES_MODEL_PATH", env, 1) == 0);
    rc = up("upscale", "in.png", "-m", "only", NULL);
    CHECKF(rc == 1 && strstr(up_err, "mp2/only.pt"), "exit %d: %s", rc, up_err);
    /* ./models is searched. */
    CHECK(setenv("UPRES_MODEL_PATH", "", 1) == 0);
    mkdir("models", 0777);
    CHECK(test_write_file("models/local.pth", junk, 11) == 0);
    rc = up("upscale", "in.png", "-m", "local", NULL);
    CHECKF(rc == 1 && strstr(up_err, "models/local.pth"), "exit %d: %s", rc, up_err);
    CHECK(!test_file_exists("in-x4.png"));
}

TEST(cli_upscale_real_model_by_name_in_model_path)
{
    const char *models = shared_models();
    if (!models) SKIP("no shared models (../shared/models)");
    CHECK(up_setup(""));
    char target[PATH_MAX], link[PATH_MAX];
    snprintf(target, sizeof target, "%s/pytorch/realesr-animevideov3.pth", models);
    snprintf(link, sizeof link, "%s/mine/sr/anime/realesr-animevideov3.pth", test_tmpdir());
    CHECK(link_at(target, link) == 0);
    CHECK_OK(up_save_pattern("in.png", 24, 24, 3, UPRES_U8));
    int rc = up("upscale", "in.png", "-m", "realesr-animevideov3", "--model-path", "mine", "-v",
                "-o", "o.png", NULL);
    CHECKF(rc == 0, "exit %d: %s", rc, up_err);
    CHECKF(strstr(up_err, "mine/sr/anime/realesr-animevideov3.pth"), "-v does not name it: %s",
           up_err);
    CHECK(has_size("o.png", 96, 96));
}

TEST(cli_upscale_bad_model_is_one_line_error)
{
    CHECK(up_setup(""));
    CHECK_OK(up_save_pattern("in.png", 16, 16, 3, UPRES_U8));
    const char *cases[][8] = {
        {"upscale", "in.png", "-m", "no-such-model", NULL},
        {"upscale", "in.png", "-m", "./no/such/file.pth", NULL},
        {"upscale", "in.png", "-m", "/no/such/file.safetensors", NULL},
        {"upscale", "in.png", "-m", "junk.pth", NULL},
        {"upscale", "in.png", "-m", "trunc.param", NULL},
    };
    CHECK(test_write_file("junk.pth", "PK\003\004garbage", 11) == 0);
    CHECK(test_write_file("trunc.param", "7767517\n3 3\n", 12) == 0);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int rc = up(cases[i][0], cases[i][1], cases[i][2], cases[i][3], NULL);
        CHECKF(rc == 1, "case %zu: exit %d: %s", i, rc, up_err);
        CHECKF(tu_one_line(up_err), "case %zu: not one line: '%s'", i, up_err);
        CHECKF(!strncmp(up_err, "upres: ", 7), "case %zu: %s", i, up_err);
        /* The file or name is in the message, and it is no fallback. */
        const char *name = strrchr(cases[i][3], '/') ? strrchr(cases[i][3], '/') + 1 : cases[i][3];
        CHECKF(strstr(up_err, name), "case %zu does not name '%s': %s", i, name, up_err);
        CHECKF(!strstr(up_err, "warning"), "case %zu: %s", i, up_err);
        CHECKF(!test_file_exists("in-x4.png") && !test_file_exists("in-x2.png"),
               "case %zu wrote an output", i);
    }
    /* The library's detail is carried for a file that fails to load. */
    CHECK_EQ(up("upscale", "in.png", "-m", "junk.pth", NULL), 1);
    CHECKF(strstr(up_err, "cannot load model 'junk.pth'"), "%s", up_err);
}

TEST(cli_upscale_usage_errors)
{
    CHECK(up_setup(""));
    CHECK_OK(up_save_pattern("in.png", 8, 8, 3, UPRES_U8));
    const char *cases[][10] = {
        {"upscale", NULL},
        {"upscale", "in.png", "in.png", NULL},
        {"upscale", "in.png", "-s", "0", NULL},
        {"upscale", "in.png", "-s", "x", NULL},
        {"upscale", "in.png", "-s", "2", "--width", "10", NULL},
        {"upscale", "in.png", "--width", "10", "--height", "10", NULL},
        {"upscale", "in.png", "--tile", "3", NULL},
        {"upscale", "in.png", "--tile", "-1", NULL},
        {"upscale", "in.png", "--tile-pad", "x", NULL},
        {"upscale", "in.png", "--memory", "lots", NULL},
        {"upscale", "in.png", "--memory", "12Q", NULL},
        {"upscale", "in.png", "--color", "cmyk", NULL},
        {"upscale", "in.png", "--alpha", "drop", NULL},
        {"upscale", "in.png", "-o", "out.bmp", NULL},
        {"upscale", "in.png", "-o", "out.jpg", "--depth", "16", NULL},
        {"upscale", "in.png", "--recursive", NULL},
        {"upscale", "-i", ".", NULL},
        {"upscale", "in.png", "--bogus", NULL},
        {"models", "extra", NULL},
        {"models", "--bogus", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *argv[12];
        int n = 0;
        argv[n++] = up_bin;
        for (int k = 0; cases[i][k]; k++) argv[n++] = (char *)cases[i][k];
        argv[n] = NULL;
        int rc = test_run(argv, UP_TIMEOUT_S, up_out, sizeof up_out, up_err, sizeof up_err);
        CHECKF(rc == 2, "case %zu: exit %d: %s", i, rc, up_err);
        CHECKF(tu_one_line(up_err), "case %zu: not one line: '%s'", i, up_err);
        CHECKF(strstr(up_err, "--help"), "case %zu: %s", i, up_err);
    }
    CHECK(test_dir_count(".") == 1); /* nothing but in.png */
    CHECK_EQ(up("upscale", "--help", NULL), 0);
    CHECK(strstr(up_out, "usage: upres upscale") && strstr(up_out, "--model-path") &&
          strstr(up_out, "realesr-general-x4v3"));
    CHECK_EQ(up("models", "--help", NULL), 0);
    CHECK(strstr(up_out, "usage: upres models"));
    CHECK_EQ(up("--help", NULL), 0);
    CHECK(strstr(up_out, "upscale") && strstr(up_out, "models"));
}

TEST(cli_upscale_never_overwrites_input)
{
    CHECK(up_setup(""));
    CHECK_OK(up_save_pattern("in.png", 12, 8, 3, UPRES_U8));
    size_t n0 = 0, n1 = 0;
    unsigned char *before = test_read_file("in.png", &n0);
    CHECK(before);
    int rc = up("upscale", "in.png", "-o", "in.png", NULL);
    unsigned char *after = test_read_file("in.png", &n1);
    int same = after && n0 == n1 && !memcmp(before, after, n0);
    free(before);
    free(after);
    CHECKF(rc == 1, "exit %d: %s", rc, up_err);
    CHECKF(tu_one_line(up_err) && strstr(up_err, "--force"), "%s", up_err);
    CHECK(same);
    CHECK(has_size("in.png", 12, 8));
    /* Through another name for the same file too. */
    CHECK(symlink("in.png", "alias.png") == 0);
    CHECK_EQ(up("upscale", "alias.png", "-o", "./in.png", NULL), 1);
    CHECK(has_size("in.png", 12, 8));
    /* --force replaces it (atomically). */
    rc = up("upscale", "in.png", "-o", "in.png", "--force", NULL);
    CHECKF(rc == 0, "exit %d: %s", rc, up_err);
    CHECK(has_size("in.png", 48, 32));
    /* -o into a folder: the default name there. */
    mkdir("outdir", 0777);
    rc = up("upscale", "in.png", "-o", "outdir", "-s", "2", NULL);
    CHECKF(rc == 0, "exit %d: %s", rc, up_err);
    CHECK(has_size("outdir/in-x2.png", 96, 64));
    /* -i DIR -o DIR with the same folder is refused. */
    mkdir("same", 0777);
    CHECK_OK(up_save_pattern("same/x.png", 8, 8, 3, UPRES_U8));
    rc = up("upscale", "-i", "same", "-o", "same", NULL);
    CHECKF(rc == 1 && tu_one_line(up_err), "exit %d: %s", rc, up_err);
    CHECK(has_size("same/x.png", 8, 8));
}

TEST(cli_upscale_folder_mode)
{
    CHECK(up_setup(""));
    mkdir("in", 0777);
    mkdir("in/sub", 0777);
    mkdir("in/sub/deeper", 0777);
    CHECK_OK(up_save_pattern("in/a.png", 10, 6, 3, UPRES_U8));
    CHECK_OK(up_save_pattern("in/sub/b.jpg", 8, 8, 3, UPRES_U8));
    CHECK_OK(up_save_pattern("in/sub/deeper/c.tif", 6, 4, 1, UPRES_U16));
    CHECK_OK(up_save_pattern("in/noext.png", 5, 5, 3, UPRES_U8));
    CHECK(rename("in/noext.png", "in/noext") == 0);
    CHECK(test_write_file("in/notes.txt", "hello\n", 6) == 0);
    CHECK(test_write_file("in/sub/readme.md", "# x\n", 4) == 0);
    CHECK(test_write_file("in/.hidden.png", "x", 1) == 0);
    /* Not recursive: only the top level. */
    int rc = up("upscale", "-i", "in", "-o", "out1", "-s", "2", NULL);
    CHECKF(rc == 0, "exit %d: %s", rc, up_err);
    CHECK(has_size("out1/a.png", 20, 12));
    CHECK(has_size("out1/noext.png", 10, 10));
    CHECK(!test_file_exists("out1/sub"));
    CHECKF(strstr(up_err, "notes.txt") && !strstr(up_err, "readme.md") && !strstr(up_err, "hidden"),
           "%s", up_err);
    CHECKF(strstr(up_out, "2 written, 1 skipped, 0 failed"), "summary: %s", up_out);
    /* Recursive, with --json: one object per file, warnings one line each. */
    rc = up("upscale", "-i", "in", "-o", "out2", "-s", "2", "--recursive", "--json", NULL);
    CHECKF(rc == 0, "exit %d: %s", rc, up_err);
    CHECK(has_size("out2/a.png", 20, 12));
    CHECK(has_size("out2/sub/b.jpg", 16, 16));
    CHECK(has_size("out2/sub/deeper/c.tif", 12, 8));
    upres_image *c = up_load("out2/sub/deeper/c.tif");
    CHECK(c);
    int kept = c->channels == 1 && c->depth == UPRES_U16;
    upres_image_free(c);
    CHECK(kept);
    CHECKF(count_lines(up_out) == 4, "want 4 JSON lines: %s", up_out);
    CHECKF(strstr(up_out, "\"output\": \"out2/sub/b.jpg\""), "%s", up_out);
    CHECKF(strstr(up_err, "notes.txt") && strstr(up_err, "readme.md"), "%s", up_err);
    /* No model warning + 2 skip warnings + the summary (stderr with --json). */
    CHECKF(count_lines(up_err) == 4, "stderr: %s", up_err);
    CHECK(strstr(up_err, "4 written, 2 skipped, 0 failed"));
    /* A damaged image fails that file only; the exit status says so. */
    CHECK(test_write_file("in/sub/bad.png", "\x89PNG\r\n\x1a\n\0\0\0\rIHDRjunk", 20) == 0);
    rc = up("upscale", "-i", "in", "-o", "out3", "--recursive", "-s", "1", NULL);
    CHECKF(rc == 1, "exit %d: %s", rc, up_err);
    CHECK(strstr(up_err, "bad.png"));
    CHECK(has_size("out3/sub/b.jpg", 8, 8));
    CHECKF(strstr(up_out, "4 written, 2 skipped, 1 failed"), "%s", up_out);
    /* The output folder inside the input folder is not walked into. */
    rc = up("upscale", "-i", "in", "-o", "in/up", "--recursive", "-s", "1", NULL);
    CHECK(rc == 1); /* bad.png still fails */
    CHECK(has_size("in/up/a.png", 10, 6));
    CHECK(!test_file_exists("in/up/up"));
    CHECKF(strstr(up_out, "4 written, 2 skipped, 1 failed"), "%s", up_out);
}

/* ---- models ---------------------------------------------------------------- */

/* Counts the .param and .pth files below dir (any depth, hidden entries
 * left out as the search does). */
static int count_model_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (stat(p, &sb) != 0) continue;
        size_t len = strlen(e->d_name);
        if (S_ISDIR(sb.st_mode))
            n += count_model_files(p);
        else if ((len > 6 && !strcmp(e->d_name + len - 6, ".param")) ||
                 (len > 4 && !strcmp(e->d_name + len - 4, ".pth")))
            n++;
    }
    closedir(d);
    return n;
}

TEST(cli_models_lists_shared_models)
{
    const char *models = shared_models();
    if (!models) SKIP("no shared models (../shared/models)");
    CHECK(up_setup(models));
    /* Plus a junk file, which must be listed with its error. */
    mkdir("extra", 0777);
    CHECK(test_write_file("extra/broken.pth", "PK\003\004nope", 8) == 0);
    int rc = up("models", "--model-path", "extra", NULL);
    CHECKF(rc == 0, "exit %d: %s", rc, up_err);
    const char *line = strstr(up_out, "\n  realesr-animevideov3 ");
    if (!line) line = strstr(up_out, "\n* realesr-animevideov3 ");
    CHECKF(line, "no realesr-animevideov3 row: %s", up_out);
    const char *eol = strchr(line + 1, '\n');
    char row[1024];
    snprintf(row, sizeof row, "%.*s", (int)(eol ? eol - line : 1000), line + 1);
    CHECKF(strstr(row, " pth ") && strstr(row, "SRVGGNetCompact") && strstr(row, " x4 ") &&
               strstr(row, "621.4k") && strstr(row, "realesr-animevideov3.pth"),
           "row: %s", row);
    CHECKF(strstr(up_out, "realesr-animevideov3-x2 ") && strstr(up_out, "ncnn"), "%s", up_out);
    CHECKF(strstr(up_out, "models-se/up2x-no-denoise ") && strstr(up_out, "RealCUGAN-se"), "%s",
           up_out);
    CHECKF(strstr(up_out, "broken") && strstr(up_out, "cannot load"), "%s", up_out);
    /* JSON: the exact parameter count of SRVGGNetCompact(64 feat, 16 conv,
     * x4, PReLU): convs 3->64, 16 x 64->64, 64->48, 17 PReLUs of 64. */
    rc = up("models", "--model-path", "extra", "--json", NULL);
    CHECKF(rc == 0, "exit %d: %s", rc, up_err);
    const char *obj = strstr(up_out, "\"name\": \"realesr-animevideov3\"");
    CHECKF(obj, "%s", up_out);
    char v[4096];
    CHECKF(json_field(obj, "format", v, sizeof v) && !strcmp(v, "\"pth\""), "%s", obj);
    CHECKF(json_field(obj, "arch", v, sizeof v) && !strcmp(v, "\"SRVGGNetCompact\""), "%s", obj);
    CHECKF(json_field(obj, "scale", v, sizeof v) && !strcmp(v, "4"), "%s", obj);
    long long want = (3 * 64 * 9 + 64) + 16LL * (64 * 64 * 9 + 64) + (64 * 48 * 9 + 48) + 17 * 64;
    CHECKF(json_field(obj, "params", v, sizeof v) && atoll(v) == want, "params %s, want %lld", v,
           want);
    CHECKF(json_field(obj, "error", v, sizeof v) && !strcmp(v, "null"), "%s", obj);
    const char *bad = strstr(up_out, "\"name\": \"broken\"");
    CHECKF(bad && json_field(bad, "error", v, sizeof v) && strcmp(v, "null") != 0, "%s", up_out);
    /* Every model file once (an ncnn model as its .param), one line each. */
    int files = count_model_files(models);
    CHECK(files > 0);
    CHECKF(count_lines(up_out) == files + 1, "%d lines for %d files + 1", count_lines(up_out),
           files);
}

TEST(cli_models_empty_search_path)
{
    CHECK(up_setup(""));
    int rc = up("models", NULL);
    CHECKF(rc == 0, "exit %d: %s", rc, up_err);
    CHECKF(strstr(up_out, "./models (missing)") && strstr(up_out, "lanczos3"), "%s", up_out);
    rc = up("models", "--json", NULL);
    CHECK(rc == 0 && up_out[0] == 0);
}

/* ---- review regressions ---------------------------------------------------- */

TEST(cli_upscale_rev3_model_path_searched_first)
{
    /* A file of the name in --model-path wins over one in a preferred
     * format later in the search path (here $XDG_DATA_HOME's folder). */
    CHECK(up_setup(""));
    CHECK_OK(up_save_pattern("in.png", 8, 8, 3, UPRES_U8));
    mkdir("mine", 0777);
    mkdir("xdg", 0777);
    mkdir("xdg/upres", 0777);
    mkdir("xdg/upres/models", 0777);
    CHECK(test_write_file("mine/net.pth", "not a model", 11) == 0);
    CHECK(test_write_file("xdg/upres/models/net.safetensors", "not a model", 11) == 0);
    int rc = up("upscale", "in.png", "-m", "net", "--model-path", "mine", NULL);
    CHECKF(rc == 1 && strstr(up_err, "mine/net.pth"), "exit %d: %s", rc, up_err);
    /* Without --model-path the other one is found. */
    rc = up("upscale", "in.png", "-m", "net", NULL);
    CHECKF(rc == 1 && strstr(up_err, "net.safetensors"), "exit %d: %s", rc, up_err);
    CHECK(!test_file_exists("in-x4.png"));
}

TEST(cli_upscale_rev3_hostile_names)
{
    CHECK(up_setup(""));
    CHECK_OK(up_save_pattern("in.png", 8, 8, 3, UPRES_U8));
    /* A model name longer than any path: an error, not a crash. */
    static char longname[6000];
    memset(longname, 'a', 5000);
    strcpy(longname + 5000, ".pth");
    int rc = up("upscale", "in.png", "-m", longname, NULL);
    CHECKF(rc == 1 && tu_one_line(up_err) && strstr(up_err, "cannot find model"), "exit %d: %.200s",
           rc, up_err);
    memset(longname, 'a', 4094);
    strcpy(longname + 4094, "b.c/net.pth");
    rc = up("upscale", "in.png", "-m", longname, NULL);
    CHECKF(rc == 1 && tu_one_line(up_err), "exit %d: %.200s", rc, up_err);
    /* Empty -o / -i are usage errors (an empty output folder name used to
     * be walked as a path). */
    mkdir("d", 0777);
    rc = up("upscale", "-i", "d", "-o", "", NULL);
    CHECKF(rc == 2 && tu_one_line(up_err), "exit %d: %s", rc, up_err);
    rc = up("upscale", "-i", "", "-o", "x", NULL);
    CHECKF(rc == 2 && tu_one_line(up_err), "exit %d: %s", rc, up_err);
    CHECK(!test_file_exists("x"));
    /* --json stays valid JSON for a name with quotes, backslashes, control
     * characters, invalid UTF-8 (U+FFFD) and valid UTF-8 (kept). */
    const char *odd = "d/q\"b\\s\n\001\177\377\303\251.png";
    CHECK_OK(up_save_pattern(odd, 6, 4, 3, UPRES_U8));
    rc = up("upscale", "-i", "d", "-o", "o", "-s", "2", "--json", NULL);
    CHECKF(rc == 0, "exit %d: %s", rc, up_err);
    CHECKF(count_lines(up_out) == 1, "%s", up_out);
    CHECKF(strstr(up_out, "\"input\": \"d/q\\\"b\\\\s\\u000a\\u0001\\u007f\\ufffd\303\251.png\""),
           "%s", up_out);
    CHECKF(strstr(up_out, "\"output\": \"o/q\\\"b\\\\s\\u000a\\u0001\\u007f\\ufffd\303\251.png\""),
           "%s", up_out);
    CHECK(has_size("o/q\"b\\s\n\001\177\377\303\251.png", 12, 8));
    /* Messages keep such a name on one line. */
    rc = up("upscale", odd, "-o", "o/x.bmp", NULL);
    CHECKF(rc == 2 && tu_one_line(up_err), "exit %d: %s", rc, up_err);
    rc = up("upscale", odd, "-o", "nowhere/x.png", NULL);
    CHECKF(rc == 1 && tu_one_line(up_err), "exit %d: %s", rc, up_err);
}

TEST(cli_upscale_rev3_folder_name_clash_and_special_model)
{
    CHECK(up_setup(""));
    mkdir("in", 0777);
    /* "x" (a PNG without extension) becomes x.png, like the real x.png:
     * the second result must not silently replace the first. */
    CHECK_OK(up_save_pattern("in/x.png", 6, 4, 3, UPRES_U8));
    CHECK(rename("in/x.png", "in/x") == 0);
    CHECK_OK(up_save_pattern("in/x.png", 5, 5, 3, UPRES_U8));
    int rc = up("upscale", "-i", "in", "-o", "out", "-s", "2", NULL);
    CHECKF(rc == 1, "exit %d: %s", rc, up_err);
    CHECK(has_size("out/x.png", 12, 8));
    CHECKF(strstr(up_err, "in/x.png") && strstr(up_err, "rename"), "%s", up_err);
    CHECKF(strstr(up_out, "1 written, 0 skipped, 1 failed"), "%s", up_out);
    /* A model "file" that is a FIFO would block forever: refused. */
    CHECK(mkfifo("pipe.pth", 0600) == 0);
    CHECK_OK(up_save_pattern("in.png", 4, 4, 3, UPRES_U8));
    rc = up("upscale", "in.png", "-m", "./pipe.pth", NULL);
    CHECKF(rc == 1 && tu_one_line(up_err) && strstr(up_err, "pipe.pth"), "exit %d: %s", rc,
           up_err);
    CHECK(!test_file_exists("in-x4.png"));
}
