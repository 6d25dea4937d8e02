/* Tests of the `upres` command-line tool (tools/): exit codes, one-line
 * errors, resize size arithmetic, `info` output, ICC and orientation through
 * convert, overwrite protection, no output on failure, and a match with
 * Pillow's resize (fixtures from tests/gen_cli_fixtures.py). The tool is run
 * as a separate process with test_run(); inputs are made with the public API. */
#include "test.h"
#include "upres.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CLI_TIMEOUT_S 30
#define OUT_CAP 8192

static char cli_out[OUT_CAP], cli_err[OUT_CAP];

/* Runs `upres ARGS...` (NULL-terminated), capturing into cli_out/cli_err.
 * Returns what test_run returns. */
static int cli(const char *first, ...)
{
    va_list ap;
    va_start(ap, first);
    int r = tu_upres_va(NULL, NULL, CLI_TIMEOUT_S, cli_out, sizeof cli_out, cli_err, sizeof cli_err, first, ap);
    va_end(ap);
    return r;
}

/* Same with an argv array (NULL-terminated, without the program). */
static int cli_v(const char *const *args)
{
    char *argv[64];
    int n = 0;
    argv[n++] = (char *)test_upres_bin();
    for (; *args && n < 63; args++) argv[n++] = (char *)*args;
    argv[n] = NULL;
    return test_run(argv, CLI_TIMEOUT_S, cli_out, sizeof cli_out, cli_err, sizeof cli_err);
}

/* A deterministic RGB(A)/gray test image with smooth and sharp structure. */
static upres_image *pattern_image(uint32_t w, uint32_t h, uint32_t channels, upres_depth depth)
{
    upres_image *img = NULL;
    if (upres_image_new(&img, w, h, channels, depth, NULL) != UPRES_OK) return NULL;
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++)
            for (uint32_t c = 0; c < channels; c++) {
                double v = (double)((x * 7 + y * 13 + c * 29) % 64) / 63.0;
                if ((x / 4 + y / 4) % 2) v = 1.0 - v;
                if (channels % 2 == 0 && c == channels - 1) v = 0.5 + 0.5 * (double)x / w;
                size_t i = (size_t)x * channels + c;
                void *row = upres_image_row(img, y);
                if (depth == UPRES_U8) ((uint8_t *)row)[i] = (uint8_t)(v * 255 + 0.5);
                else if (depth == UPRES_U16) ((uint16_t *)row)[i] = (uint16_t)(v * 65535 + 0.5);
                else ((float *)row)[i] = (float)v;
            }
    return img;
}

/* Writes a w x h pattern_image() of `channels` and `depth` to path, encoded
 * with *e (NULL: defaults, format from the name). Returns the status. */
static int save_pattern_as(const char *path, uint32_t w, uint32_t h, uint32_t channels,
                           upres_depth depth, const upres_encode_desc *e)
{
    upres_image *img = pattern_image(w, h, channels, depth);
    if (!img) return UPRES_ERR_NOMEM;
    int st = upres_save(NULL, img, path, e);
    upres_image_free(img);
    return st;
}

/* Writes a w x h 8-bit image of `channels` to path (format from the name). */
static int save_pattern(const char *path, uint32_t w, uint32_t h, uint32_t channels)
{
    return save_pattern_as(path, w, h, channels, UPRES_U8, NULL);
}

/* Builds a small well-formed ICC v2 RGB display profile with a 'desc' tag
 * holding `desc` and a 'wtpt' tag. Returns its size (<= cap, multiple of 4). */
static size_t make_icc(uint8_t *buf, size_t cap, const char *desc)
{
    size_t n = strlen(desc) + 1;
    size_t desc_off = 128 + 4 + 2 * 12;
    size_t desc_len = 12 + n + 4 + 4 + 2 + 1 + 67;
    size_t wtpt_off = (desc_off + desc_len + 3) & ~(size_t)3;
    size_t total = wtpt_off + 20;
    if (total > cap) return 0;
    tu_icc_header(buf, (uint32_t)total, 2);
    memcpy(buf + 132, "desc", 4);
    tu_put_be32(buf + 136, (uint32_t)desc_off);
    tu_put_be32(buf + 140, (uint32_t)desc_len);
    memcpy(buf + 144, "wtpt", 4);
    tu_put_be32(buf + 148, (uint32_t)wtpt_off);
    tu_put_be32(buf + 152, 20);
    uint8_t *d = buf + desc_off;
    memcpy(d, "desc", 4);
    tu_put_be32(d + 8, (uint32_t)n);
    memcpy(d + 12, desc, n);
    uint8_t *w = buf + wtpt_off;
    tu_icc_xyz_d50(w);
    return total;
}

/* Loads path and stores its size; returns the status. */
static int dims(const char *path, uint32_t *w, uint32_t *h)
{
    upres_image *img = NULL;
    int st = upres_load(NULL, path, NULL, &img, NULL);
    if (st == UPRES_OK) {
        *w = img->width;
        *h = img->height;
    }
    upres_image_free(img);
    return st;
}

TEST(cli_version_and_help_exit_0)
{
    CHECK_EQ(cli("--version", NULL), 0);
    CHECKF(strstr(cli_out, upres_version()) != NULL, "--version printed '%s'", cli_out);
    CHECK_EQ(cli("--help", NULL), 0);
    CHECK(strstr(cli_out, "usage: upres") && strstr(cli_out, "resize") && strstr(cli_out, "info"));
    CHECK_EQ(cli("-h", NULL), 0);
    CHECK(strstr(cli_out, "usage: upres"));
    const char *cmds[] = {"info", "resize", "convert", "help"};
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++) {
        CHECKF(cli(cmds[i], "--help", NULL) == 0, "%s --help: %s", cmds[i], cli_err);
        char want[64];
        snprintf(want, sizeof want, "usage: upres %s", cmds[i]);
        CHECKF(strstr(cli_out, want) != NULL, "%s --help printed: %s", cmds[i], cli_out);
        CHECKF(strstr(cli_out, "--verbose") != NULL, "%s --help lacks global options", cmds[i]);
        CHECK_EQ(strlen(cli_err), 0);
    }
    CHECK_EQ(cli("resize", "-h", NULL), 0);
    CHECK(strstr(cli_out, "--fit") && strstr(cli_out, "--quality"));
    CHECK_EQ(cli("help", "convert", NULL), 0);
    CHECK(strstr(cli_out, "usage: upres convert"));
    CHECK_EQ(cli("info", "--version", NULL), 0);
}

TEST(cli_usage_errors_exit_2_with_one_line)
{
    const char *in = test_tmp("in.png");
    const char *out = test_tmp("out.png");
    CHECK_OK(save_pattern(in, 8, 6, 3));
    const char *cases[][12] = {
        {NULL},
        {"frob", NULL},
        {"--frob", "info", in, NULL},
        {"info", NULL},
        {"info", "--bogus", in, NULL},
        {"resize", NULL},
        {"resize", in, NULL},
        {"resize", in, out, NULL},                               /* no size */
        {"resize", in, out, "--width", NULL},                    /* missing value */
        {"resize", in, out, "--width", "abc", NULL},
        {"resize", in, out, "--width", "0", NULL},
        {"resize", in, out, "--width", "-3", NULL},
        {"resize", in, out, "--height", "1.5", NULL},
        {"resize", in, out, "--size", "10x", NULL},
        {"resize", in, out, "--size", "x10", NULL},
        {"resize", in, out, "--scale", "0", NULL},
        {"resize", in, out, "--scale", "2x", NULL},
        {"resize", in, out, "--scale", "nan", NULL},
        {"resize", in, out, "--scale", "0x10", NULL},
        {"resize", in, out, "--width", "4", "--scale", "2", NULL},
        {"resize", in, out, "--width", "4", "--fit", "cover", NULL},
        {"resize", in, out, "--size", "4x4", "--fit", "stretch", NULL},
        {"resize", in, out, "--width", "4", "--filter", "bogus", NULL},
        {"resize", in, out, "--width", "4", "--quality", "101", NULL},
        {"resize", in, out, "--width", "4", "--compression", "10", NULL},
        {"resize", in, out, "--width", "4", "--bogus", NULL},
        {"resize", in, test_tmp("out.bmp"), "--width", "4", NULL},
        {"convert", NULL},
        {"convert", in, NULL},
        {"convert", in, out, "extra", NULL},
        {"convert", in, test_tmp("noext"), NULL},
        {"convert", in, test_tmp("out.jpg"), "--depth", "16", NULL},
        {"convert", in, test_tmp("out.png"), "--depth", "32", NULL},
        {"convert", in, out, "--depth", "12", NULL},
        {"convert", in, out, "--lossless", NULL},
        {"convert", in, out, "--force=yes", NULL},
        {"-j", "-1", "convert", in, out, NULL},
        {"convert", in, out, "--threads", "x", NULL},
        {"convert", in, out, "--max-pixels", "0", NULL},
        {"help", "frob", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int rc = cli_v(cases[i]);
        CHECKF(rc == 2, "case %zu (%s %s ...): exit %d, stderr: %s", i,
               cases[i][0] ? cases[i][0] : "", cases[i][0] && cases[i][1] ? cases[i][1] : "", rc,
               cli_err);
        CHECKF(tu_one_line(cli_err), "case %zu: stderr is not one line: '%s'", i, cli_err);
        CHECKF(strstr(cli_err, "--help") != NULL, "case %zu: no --help hint: %s", i, cli_err);
        CHECKF(strncmp(cli_err, "upres: ", 7) == 0, "case %zu: %s", i, cli_err);
        CHECKF(!test_file_exists(out), "case %zu wrote an output", i);
    }
    /* The offending word is named. */
    CHECK_EQ(cli("resize", in, out, "--filter", "bogus", "--width", "3", NULL), 2);
    CHECK(strstr(cli_err, "bogus"));
    CHECK_EQ(cli("convert", in, test_tmp("x.gif"), NULL), 2);
    CHECK(strstr(cli_err, "x.gif"));
}

TEST(cli_resize_size_arithmetic)
{
    const char *in = test_tmp("in.png");
    const char *thin = test_tmp("thin.png");
    const char *out = test_tmp("out.png");
    CHECK_OK(save_pattern(in, 40, 30, 3));
    CHECK_OK(save_pattern(thin, 100, 3, 3));
    struct {
        const char *src;
        const char *args[8];
        uint32_t w, h;
    } cases[] = {
        {in, {"--width", "20"}, 20, 15},
        {in, {"--width", "7"}, 7, 5},           /* 5.25 */
        {in, {"--width", "6"}, 6, 5},           /* 4.5 rounds up */
        {in, {"--height", "10"}, 13, 10},       /* 13.33 */
        {in, {"--height", "45"}, 60, 45},
        {thin, {"--width", "10"}, 10, 1},       /* 0.3 -> at least 1 */
        {thin, {"--height", "1"}, 33, 1},       /* 33.3 */
        {in, {"--size", "20x20"}, 20, 15},      /* contain (default) */
        {in, {"--size", "20x20", "--fit", "contain"}, 20, 15},
        {in, {"--size", "100x30"}, 40, 30},
        {in, {"--size", "100x45"}, 60, 45},
        {in, {"--size", "8x100"}, 8, 6},
        {in, {"--size", "20x20", "--fit", "cover"}, 20, 20},
        {in, {"--size", "13x17", "--fit", "fill"}, 13, 17},
        {in, {"--width", "10", "--height", "10"}, 10, 8}, /* 7.5 rounds up */
        {in, {"--scale", "2"}, 80, 60},
        {in, {"--scale", "0.5"}, 20, 15},
        {in, {"--scale", "1.1"}, 44, 33},
        {in, {"--scale", "2x0.5"}, 80, 15},
        {in, {"--scale", "0.01"}, 1, 1},
        {thin, {"--scale", "0.1"}, 10, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *argv[16] = {"resize", cases[i].src, out, "--filter", "bilinear"};
        int n = 5;
        for (int k = 0; cases[i].args[k]; k++) argv[n++] = cases[i].args[k];
        argv[n] = NULL;
        unlink(out);
        int rc = cli_v(argv);
        CHECKF(rc == 0, "case %zu (%s %s): exit %d: %s", i, cases[i].args[0], cases[i].args[1], rc,
               cli_err);
        uint32_t w = 0, h = 0;
        CHECK_OK(dims(out, &w, &h));
        CHECKF(w == cases[i].w && h == cases[i].h, "case %zu (%s %s): got %ux%u, want %ux%u", i,
               cases[i].args[0], cases[i].args[1], w, h, cases[i].w, cases[i].h);
    }
}

/* --fit cover crops the overflow centred; fill stretches. The input has red,
 * green and blue vertical bands 10, 20 and 10 px wide. */
TEST(cli_resize_fit_cover_crops_centre)
{
    const char *in = test_tmp("bands.png");
    const char *out = test_tmp("out.png");
    upres_image *img = NULL, *res = NULL;
    CHECK_OK(upres_image_new(&img, 40, 20, 3, UPRES_U8, NULL));
    for (uint32_t y = 0; y < 20; y++)
        for (uint32_t x = 0; x < 40; x++) {
            uint8_t *p = (uint8_t *)upres_image_row(img, y) + 3 * x;
            p[x < 10 ? 0 : x < 30 ? 1 : 2] = 255;
        }
    int st = upres_save(NULL, img, in, NULL);
    upres_image_free(img);
    CHECK_OK(st);

    CHECK_EQ(cli("resize", in, out, "--size", "20x20", "--fit", "cover", "--filter", "nearest", NULL), 0);
    CHECK_OK(upres_load(NULL, out, NULL, &res, NULL));
    CHECK_EQ(res->width, 20);
    CHECK_EQ(res->height, 20);
    for (uint32_t y = 0; y < 20; y++)
        for (uint32_t x = 0; x < 20; x++) {
            const uint8_t *p = (const uint8_t *)upres_image_row(res, y) + 3 * x;
            if (!(p[0] == 0 && p[1] == 255 && p[2] == 0)) {
                upres_image_free(res);
                CHECKF(0, "cover: pixel %u,%u is %u,%u,%u, want pure green", x, y, p[0], p[1], p[2]);
            }
        }
    upres_image_free(res);
    res = NULL;

    CHECK_EQ(cli("resize", in, out, "--size", "20x20", "--fit", "fill", "--filter", "nearest", NULL), 0);
    CHECK_OK(upres_load(NULL, out, NULL, &res, NULL));
    CHECK_EQ(res->width, 20);
    const uint8_t *r0 = upres_image_row(res, 10);
    int left_red = r0[0] == 255 && r0[1] == 0, right_blue = r0[3 * 19 + 2] == 255 && r0[3 * 19] == 0;
    upres_image_free(res);
    CHECK(left_red && right_blue);
}

TEST(cli_info_prints_every_field)
{
    const char *png = test_tmp("icc.png");
    uint8_t icc[512];
    size_t icc_size = make_icc(icc, sizeof icc, "upres test RGB");
    CHECK(icc_size > 0);
    upres_image *img = pattern_image(24, 16, 3, UPRES_U8);
    CHECK(img);
    CHECK_OK(upres_image_set_icc(img, icc, icc_size));
    int st = upres_save(NULL, img, png, NULL);
    upres_image_free(img);
    CHECK_OK(st);

    CHECKF(cli("info", png, NULL) == 0, "info: %s", cli_err);
    char want[128];
    CHECKF(strstr(cli_out, "format:       PNG\n") != NULL, "%s", cli_out);
    CHECKF(strstr(cli_out, "size:         24x16\n") != NULL, "%s", cli_out);
    CHECKF(strstr(cli_out, "channels:     3 (RGB)\n") != NULL, "%s", cli_out);
    CHECKF(strstr(cli_out, "depth:        8-bit\n") != NULL, "%s", cli_out);
    snprintf(want, sizeof want, "ICC profile:  %zu bytes, \"upres test RGB\"\n", icc_size);
    CHECKF(strstr(cli_out, want) != NULL, "want '%s' in:\n%s", want, cli_out);
    CHECKF(strstr(cli_out, "orientation:  1 (upright)\n") != NULL, "%s", cli_out);
    CHECKF(strstr(cli_out, "interlaced:   no\n") != NULL, "%s", cli_out);
    CHECKF(strstr(cli_out, "frames:       1\n") != NULL, "%s", cli_out);
    CHECKF(strstr(cli_out, "CMYK source:  no\n") != NULL, "%s", cli_out);
    CHECK_EQ(strlen(cli_err), 0);

    /* 16-bit gray+alpha PNG without a profile. */
    const char *ga = test_tmp("ga16.png");
    CHECK_OK(save_pattern_as(ga, 5, 3, 2, UPRES_U16, NULL));
    CHECKF(cli("info", ga, NULL) == 0, "info: %s", cli_err);
    CHECKF(strstr(cli_out, "channels:     2 (gray+alpha)\n") != NULL, "%s", cli_out);
    CHECKF(strstr(cli_out, "depth:        16-bit\n") != NULL, "%s", cli_out);
    CHECKF(strstr(cli_out, "ICC profile:  none\n") != NULL, "%s", cli_out);

    /* Float TIFF. */
    const char *tif = test_tmp("float.tif");
    upres_encode_desc d = upres_encode_desc_defaults();
    d.format = UPRES_FORMAT_TIFF;
    d.bit_depth = 32;
    CHECK_OK(save_pattern_as(tif, 6, 4, 4, UPRES_F32, &d));
    CHECKF(cli("info", tif, NULL) == 0, "info: %s", cli_err);
    CHECKF(strstr(cli_out, "format:       TIFF\n") != NULL, "%s", cli_out);
    CHECKF(strstr(cli_out, "channels:     4 (RGBA)\n") != NULL, "%s", cli_out);
    CHECKF(strstr(cli_out, "depth:        32-bit float\n") != NULL, "%s", cli_out);

    /* EXIF orientation 6 (fixture): size as stored and as oriented. */
    CHECKF(cli("info", test_fixture("cli/cli_orient6.jpg"), NULL) == 0, "info: %s", cli_err);
    CHECKF(strstr(cli_out, "format:       JPEG\n") != NULL, "%s", cli_out);
    CHECKF(strstr(cli_out, "size:         16x8 as stored, 8x16 as oriented\n") != NULL, "%s", cli_out);
    CHECKF(strstr(cli_out, "orientation:  6 (rotate 90\xc2\xb0 CW)\n") != NULL, "%s", cli_out);
    CHECKF(strstr(cli_out, "progressive:  no\n") != NULL, "%s", cli_out);

    /* Animated WebP: frames counted. */
    CHECKF(cli("info", test_fixture("cli/cli_anim.webp"), NULL) == 0, "info: %s", cli_err);
    CHECKF(strstr(cli_out, "format:       WebP (lossless)\n") != NULL, "%s", cli_out);
    CHECKF(strstr(cli_out, "frames:       2 (") != NULL, "%s", cli_out);
    CHECKF(strstr(cli_out, "channels:     4 (RGBA)\n") != NULL, "%s", cli_out);

    /* Several files; one bad one makes the exit status 1 but the others print. */
    const char *junk = test_tmp("junk.png");
    CHECK(test_write_file(junk, "not an image", 12) == 0);
    CHECK_EQ(cli("info", png, junk, ga, NULL), 1);
    CHECK(strstr(cli_out, "24x16") && strstr(cli_out, "gray+alpha"));
    CHECKF(tu_one_line(cli_err) && strstr(cli_err, "junk.png"), "%s", cli_err);
}

TEST(cli_convert_keeps_icc_through_jpeg)
{
    const char *png = test_tmp("a.png"), *jpg = test_tmp("b.jpg"), *png2 = test_tmp("c.png");
    uint8_t icc[512];
    size_t icc_size = make_icc(icc, sizeof icc, "round trip profile");
    upres_image *img = pattern_image(32, 24, 3, UPRES_U8), *back = NULL;
    CHECK(img);
    CHECK_OK(upres_image_set_icc(img, icc, icc_size));
    int st = upres_save(NULL, img, png, NULL);
    upres_image_free(img);
    CHECK_OK(st);
    CHECKF(cli("convert", png, jpg, "--quality", "90", NULL) == 0, "%s", cli_err);
    CHECKF(cli("convert", jpg, png2, NULL) == 0, "%s", cli_err);
    upres_file_info info;
    CHECK_OK(upres_load(NULL, png2, NULL, &back, &info));
    CHECK_EQ(info.format, UPRES_FORMAT_PNG);
    int same = back->icc_size == icc_size && back->icc && !memcmp(back->icc, icc, icc_size);
    size_t got = back->icc_size;
    upres_image_free(back);
    back = NULL;
    CHECKF(same, "ICC profile lost or changed: %zu bytes, want %zu", got, icc_size);
    CHECK_EQ(cli("info", jpg, NULL), 0);
    CHECK(strstr(cli_out, "\"round trip profile\""));

    /* --no-icc drops it. */
    CHECK_EQ(cli("convert", png, png2, "--no-icc", NULL), 0);
    CHECK_OK(upres_load(NULL, png2, NULL, &back, NULL));
    got = back->icc_size;
    upres_image_free(back);
    CHECK_EQ(got, 0);
}

/* convert applies EXIF orientation: stored 16x8 red|blue becomes 8x16 with
 * red on top (rotated 90 degrees clockwise). */
TEST(cli_convert_applies_orientation)
{
    const char *out = test_tmp("upright.png");
    CHECKF(cli("convert", test_fixture("cli/cli_orient6.jpg"), out, NULL) == 0, "%s", cli_err);
    upres_image *img = NULL;
    CHECK_OK(upres_load(NULL, out, NULL, &img, NULL));
    uint32_t w = img->width, h = img->height;
    const uint8_t *top = (const uint8_t *)upres_image_row(img, 2) + 3 * 4;
    const uint8_t *bot = (const uint8_t *)upres_image_row(img, 13) + 3 * 4;
    int ok = top[0] > 150 && top[2] < 100 && bot[2] > 150 && bot[0] < 100;
    upres_image_free(img);
    CHECK_EQ(w, 8);
    CHECK_EQ(h, 16);
    CHECK(ok);
}

TEST(cli_refuses_to_overwrite_input)
{
    const char *in = test_tmp("in.png");
    CHECK_OK(save_pattern(in, 20, 10, 3));
    size_t n0 = 0, n1 = 0;
    unsigned char *orig = test_read_file(in, &n0);
    CHECK(orig);
    /* The same file under several names: identical, via "..", a hard link
     * and a symlink. */
    char dotdot[4096], hard[4096], sym[4096];
    snprintf(dotdot, sizeof dotdot, "%s/../%s/in.png", test_tmpdir(), strrchr(test_tmpdir(), '/') + 1);
    snprintf(hard, sizeof hard, "%s", test_tmp("hard.png"));
    snprintf(sym, sizeof sym, "%s", test_tmp("sym.png"));
    CHECK(link(in, hard) == 0);
    CHECK(symlink(in, sym) == 0);
    const char *outs[] = {in, dotdot, hard, sym};
    for (int i = 0; i < 4; i++) {
        int rc = cli("convert", in, outs[i], "--compression", "0", NULL);
        CHECKF(rc == 1, "output %s: exit %d", outs[i], rc);
        CHECKF(tu_one_line(cli_err) && strstr(cli_err, "--force") && strstr(cli_err, "in.png"),
               "stderr: %s", cli_err);
        rc = cli("resize", in, outs[i], "--scale", "2", NULL);
        CHECKF(rc == 1, "resize to %s: exit %d", outs[i], rc);
        unsigned char *now = test_read_file(in, &n1);
        int same = now && n1 == n0 && !memcmp(now, orig, n0);
        free(now);
        CHECKF(same, "input changed (output name %s)", outs[i]);
    }
    /* With --force the input is replaced (atomically) by the new encoding. */
    CHECKF(cli("convert", in, in, "--compression", "0", "--force", NULL) == 0, "%s", cli_err);
    unsigned char *now = test_read_file(in, &n1);
    free(now);
    free(orig);
    CHECK(n1 > n0); /* stored, not deflated */
    uint32_t w, h;
    CHECK_OK(dims(in, &w, &h));
    CHECK_EQ(w, 20);
    CHECK_EQ(cli("resize", in, in, "--scale", "2", "--force", NULL), 0);
    CHECK_OK(dims(in, &w, &h));
    CHECK_EQ(w, 40);
    CHECK_EQ(h, 20);
    CHECK_EQ(test_dir_count(test_tmpdir()), 3); /* in, hard, sym: no temp files */
}

TEST(cli_failure_leaves_no_output)
{
    const char *good = test_tmp("good.png");
    const char *junk = test_tmp("junk.png");
    const char *trunc = test_tmp("trunc.png");
    CHECK_OK(save_pattern(good, 30, 20, 3));
    CHECK(test_write_file(junk, "GIF89a not really", 17) == 0);
    size_t n = 0;
    unsigned char *bytes = test_read_file(good, &n);
    CHECK(bytes && n > 40);
    CHECK(test_write_file(trunc, bytes, n / 2) == 0);
    free(bytes);
    char outdir[4096];
    snprintf(outdir, sizeof outdir, "%s", test_tmp("out"));
    CHECK(mkdir(outdir, 0700) == 0);
    char o_png[4200], o_jpg[4200];
    snprintf(o_png, sizeof o_png, "%s/o.png", outdir);
    snprintf(o_jpg, sizeof o_jpg, "%s/o.jpg", outdir);
    const char *missing = test_tmp("missing.png");
    struct {
        const char *args[10];
        const char *name; /* must appear in the message */
    } cases[] = {
        {{"convert", junk, o_png}, "junk.png"},
        {{"convert", trunc, o_jpg}, "trunc.png"},
        {{"convert", missing, o_png}, "missing.png"},
        {{"resize", junk, o_png, "--scale", "2"}, "junk.png"},
        {{"resize", trunc, o_png, "--width", "5"}, "trunc.png"},
        /* Too large an output for the pixel limit. */
        {{"--max-pixels", "5000", "resize", good, o_png, "--scale", "10"}, "good.png"},
        /* The input itself over the limit. */
        {{"resize", good, o_png, "--scale", "2", "--max-pixels", "100"}, "good.png"},
        {{"info", trunc}, "trunc.png"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int rc = cli_v(cases[i].args);
        CHECKF(rc == 1, "case %zu: exit %d, stderr %s", i, rc, cli_err);
        CHECKF(tu_one_line(cli_err), "case %zu: stderr not one line: '%s'", i, cli_err);
        CHECKF(strstr(cli_err, cases[i].name) != NULL, "case %zu: %s", i, cli_err);
        CHECKF(strncmp(cli_err, "upres: cannot ", 14) == 0, "case %zu: %s", i, cli_err);
        CHECKF(test_dir_count(outdir) == 0, "case %zu left %d files in the output folder", i,
               test_dir_count(outdir));
    }
    /* An output folder that does not exist is refused before any work. */
    char nodir[4200];
    snprintf(nodir, sizeof nodir, "%s/nope/o.png", outdir);
    CHECK_EQ(cli("convert", good, nodir, NULL), 1);
    CHECKF(tu_one_line(cli_err) && strstr(cli_err, "nope"), "%s", cli_err);
    /* An output that is a folder. */
    CHECK_EQ(cli("convert", good, outdir, NULL), 2); /* no extension: usage */
    char dirpng[4200];
    snprintf(dirpng, sizeof dirpng, "%s/d.png", outdir);
    CHECK(mkdir(dirpng, 0700) == 0);
    CHECK_EQ(cli("convert", good, dirpng, NULL), 1);
    CHECK(tu_one_line(cli_err));
    CHECK_EQ(test_dir_count(outdir), 1);
    /* A name with a newline still gives one line. */
    char nl[4200];
    snprintf(nl, sizeof nl, "%s/bad\nname.png", outdir);
    CHECK(test_write_file(nl, "xx", 2) == 0);
    CHECK_EQ(cli("convert", nl, o_png, NULL), 1);
    CHECKF(tu_one_line(cli_err), "'%s'", cli_err);
}

/* The CLI's resize of 8-bit PNGs reproduces Pillow within +-1. */
TEST(cli_resize_matches_pillow)
{
    static const struct {
        const char *in;
        uint32_t w, h;
    } cases[] = {{"rgb13x9", 31, 20}, {"rgb40x30", 17, 11}, {"gray11x7", 25, 16}};
    static const char *filters[] = {"lanczos3", "bicubic", "bilinear"};
    const char *out = test_tmp("out.png");
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++)
        for (size_t f = 0; f < 3; f++) {
            char in[256], ref[256], size[32];
            snprintf(in, sizeof in, "cli/cli_%s.png", cases[c].in);
            snprintf(ref, sizeof ref, "cli/cli_%s_%s_%ux%u.png", cases[c].in, filters[f],
                     cases[c].w, cases[c].h);
            snprintf(size, sizeof size, "%ux%u", cases[c].w, cases[c].h);
            int rc = cli("resize", test_fixture(in), out, "--size", size, "--fit", "fill",
                         "--filter", filters[f], NULL);
            CHECKF(rc == 0, "%s %s: exit %d: %s", cases[c].in, filters[f], rc, cli_err);
            upres_image *a = NULL, *b = NULL;
            CHECK_OK(upres_load(NULL, out, NULL, &a, NULL));
            int st = upres_load(NULL, test_fixture(ref), NULL, &b, NULL);
            if (st != UPRES_OK) upres_image_free(a);
            CHECK_OK(st);
            int maxd = -1;
            if (a->width == b->width && a->height == b->height && a->channels == b->channels &&
                a->depth == UPRES_U8 && b->depth == UPRES_U8) {
                maxd = 0;
                for (uint32_t y = 0; y < a->height; y++) {
                    const uint8_t *pa = upres_image_row(a, y), *pb = upres_image_row(b, y);
                    for (size_t i = 0; i < (size_t)a->width * a->channels; i++) {
                        int d = abs((int)pa[i] - (int)pb[i]);
                        if (d > maxd) maxd = d;
                    }
                }
            }
            upres_image_free(a);
            upres_image_free(b);
            CHECKF(maxd >= 0 && maxd <= 1, "%s %s: max difference from Pillow %d (-1: layout)",
                   cases[c].in, filters[f], maxd);
        }
}

TEST(cli_verbose_quiet_and_threads)
{
    const char *in = test_tmp("in.png");
    const char *o1 = test_tmp("o1.png"), *o2 = test_tmp("o2.png");
    CHECK_OK(save_pattern(in, 64, 48, 3));
    /* Default: one summary line on stdout, nothing on stderr. */
    CHECK_EQ(cli("resize", in, o1, "--scale", "3", NULL), 0);
    CHECKF(tu_one_line(cli_out) && strstr(cli_out, "192x144"), "stdout: %s", cli_out);
    CHECK_EQ(strlen(cli_err), 0);
    /* -q: silent. */
    CHECK_EQ(cli("-q", "resize", in, o1, "--scale", "3", NULL), 0);
    CHECK_EQ(strlen(cli_out) + strlen(cli_err), 0);
    /* -v after the subcommand: steps with timings on stderr. */
    CHECK_EQ(cli("resize", in, o1, "--scale", "3", "-v", "-j", "1", NULL), 0);
    CHECKF(strstr(cli_err, "read '") && strstr(cli_err, "resized 64x48 -> 192x144") &&
               strstr(cli_err, "wrote '") && strstr(cli_err, " ms"),
           "stderr: %s", cli_err);
    CHECKF(strstr(cli_err, "1 thread ") != NULL, "stderr: %s", cli_err);
    /* -j 1 and --threads=2 give the same bytes. */
    CHECK_EQ(cli("--threads=2", "resize", in, o2, "--scale", "3", NULL), 0);
    size_t n1, n2;
    unsigned char *a = test_read_file(o1, &n1), *b = test_read_file(o2, &n2);
    int same = a && b && n1 == n2 && !memcmp(a, b, n1);
    free(a);
    free(b);
    CHECK(same);
}

/* The progress bar: forced on (stderr is a pipe here), it redraws with \r and
 * erases itself at the end. */
TEST(cli_progress_bar_draws_and_clears)
{
    const char *in = test_tmp("in.png"), *out = test_tmp("out.png");
    CHECK_OK(save_pattern(in, 200, 150, 3));
    setenv("UPRES_FORCE_PROGRESS", "1", 1);
    int rc = cli("resize", in, out, "--scale", "4", NULL);
    unsetenv("UPRES_FORCE_PROGRESS");
    CHECKF(rc == 0, "%s", cli_err);
    size_t n = strlen(cli_err);
    CHECKF(n > 0 && cli_err[0] == '\r' && strstr(cli_err, "%") && strstr(cli_err, "["),
           "no bar drawn: '%s'", cli_err);
    CHECKF(cli_err[n - 1] == '\r' && !strchr(cli_err, '\n'), "bar not erased: '%s'", cli_err);
    /* The same command without the override draws nothing (not a terminal). */
    CHECK_EQ(cli("resize", in, out, "--scale", "4", NULL), 0);
    CHECK_EQ(strlen(cli_err), 0);
}
