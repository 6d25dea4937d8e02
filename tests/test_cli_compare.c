/* Tests of `upres compare` (tools/cmd_compare.c) and the label font
 * (tools/cli_font.c, through the sheet it draws). The command runs as a
 * separate process in the test's temporary folder with UPRES_MODEL_PATH set
 * to $UPRES_SHARED/models and no other model folder; tests with real
 * networks use crops of 48x48 pixels or less of a Kodak image and SKIP
 * without ../shared. Error tests need no models. */
/* realpath() is XSI. */
#define _XOPEN_SOURCE 700
#include "test.h"
#include "upres.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CMP_TIMEOUT_S 300

static char cmp_out[65536], cmp_err[65536];
static char cmp_bin[PATH_MAX], cmp_image[PATH_MAX], cmp_models[PATH_MAX];

/* Resolves the program, the shared Kodak image and models (when `shared`)
 * to absolute paths, then moves into the test's folder with a model search
 * path of only the shared models (or none). Returns 0 when something is
 * missing. */
static int cmp_setup(int shared)
{
    if (!realpath(test_upres_bin(), cmp_bin)) return 0;
    cmp_models[0] = 0;
    if (shared) {
        const char *img = test_shared("images/kodak24/kodim05.png");
        const char *net = test_shared("models/pytorch/realesr-animevideov3.pth");
        const char *dir = test_shared("models");
        if (!img || !net || !dir || !realpath(img, cmp_image) || !realpath(dir, cmp_models))
            return 0;
    }
    char xdg[PATH_MAX];
    snprintf(xdg, sizeof xdg, "%s/no-xdg", test_tmpdir());
    return setenv("XDG_DATA_HOME", xdg, 1) == 0 &&
           setenv("UPRES_MODEL_PATH", cmp_models, 1) == 0 && chdir(test_tmpdir()) == 0;
}

/* Runs `upres compare ARGS...` (NULL-terminated); output in cmp_out/err. */
static int cmp_run(const char *first, ...)
{
    va_list ap;
    va_start(ap, first);
    int r = tu_upres_va(cmp_bin, "compare", CMP_TIMEOUT_S, cmp_out, sizeof cmp_out, cmp_err, sizeof cmp_err, first, ap);
    va_end(ap);
    return r;
}

/* dir/name, in one of 4 rotating buffers. */
static const char *in_dir(const char *dir, const char *name)
{
    static char b[4][PATH_MAX];
    static unsigned k;
    char *s = b[k++ % 4];
    snprintf(s, PATH_MAX, "%s/%s", dir, name);
    return s;
}

/* The image at path, or NULL. */
static upres_image *cmp_load(const char *path)
{
    upres_image *img = NULL;
    if (upres_load(NULL, path, NULL, &img, NULL) != UPRES_OK) return NULL;
    return img;
}

/* 1 when path holds a w x h image. */
static int sized(const char *path, uint32_t w, uint32_t h)
{
    upres_image *img = cmp_load(path);
    int ok = img != NULL && img->width == w && img->height == h;
    upres_image_free(img);
    return ok;
}

/* 1 when `crop` (8-bit) holds exactly the w x h region of `src` at x, y. */
static int same_region(const upres_image *src, const upres_image *crop, uint32_t x, uint32_t y,
                       uint32_t w, uint32_t h)
{
    if (crop->width != w || crop->height != h || crop->channels != src->channels ||
        src->depth != UPRES_U8 || crop->depth != UPRES_U8)
        return 0;
    for (uint32_t r = 0; r < h; r++)
        if (memcmp((const uint8_t *)upres_image_row(src, y + r) + (size_t)x * src->channels,
                   upres_image_row(crop, r), (size_t)w * src->channels) != 0)
            return 0;
    return 1;
}

/* The report's table row of `model` split at '|' into cells (trimmed, at
 * most 16), into `line`; returns the cell count, 0 when no row. */
static int report_row(const char *report, const char *model, char *line, size_t cap,
                      char *cells[16])
{
    char head[256];
    snprintf(head, sizeof head, "\n| %s |", model);
    const char *p = strstr(report, head);
    if (!p) return 0;
    p++;
    const char *end = strchr(p, '\n');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    if (n >= cap) return 0;
    memcpy(line, p, n);
    line[n] = 0;
    int k = 0;
    char *s = line + 1;
    for (char *bar; k < 16 && (bar = strchr(s, '|')) != NULL; s = bar + 1) {
        *bar = 0;
        while (*s == ' ') s++;
        char *t = bar;
        while (t > s && t[-1] == ' ') *--t = 0;
        cells[k++] = s;
    }
    return k;
}

/* Number of table rows (lines starting with "| " after the header's
 * separator line). */
static int table_rows(const char *report)
{
    const char *sep = strstr(report, "\n|---");
    if (!sep) return -1;
    int n = 0;
    for (const char *p = strchr(sep + 1, '\n'); p && p[1] == '|'; p = strchr(p + 1, '\n')) n++;
    return n;
}

/* Digits after the '.' in the number text s. */
static int decimals(const char *s)
{
    const char *dot = strchr(s, '.');
    if (!dot) return 0;
    int n = 0;
    while (dot[1 + n] >= '0' && dot[1 + n] <= '9') n++;
    return n;
}

/* The number after "key": in a JSON text; its text into txt (for the
 * precision). Returns 0 when absent. */
static int json_number(const char *json, const char *key, double *v, char *txt, size_t cap)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(json, pat);
    if (!p) return 0;
    p += strlen(pat);
    while (*p == ' ') p++;
    char *end;
    *v = strtod(p, &end);
    if (end == p) return 0;
    snprintf(txt, cap, "%.*s", (int)(end - p), p);
    return 1;
}

/* 1 when the report cell `cell` and the value `v` printed with `digits`
 * decimals agree to their common rounding. */
static int agrees(const char *cell, double v, int digits)
{
    char *end;
    double r = strtod(cell, &end);
    if (end == cell || *end) return 0;
    return fabs(r - v) <= 0.5 * pow(10, -decimals(cell)) + 0.5 * pow(10, -digits) + 1e-12;
}

/* ---- with real models ------------------------------------------------------- */

TEST(cli_compare_two_models_write_every_file)
{
    if (!cmp_setup(1)) SKIP("no shared Kodak image or models (../shared)");
    int rc = cmp_run(cmp_image, "-m", "realesr-animevideov3,up2x-no-denoise", "--crop", "48",
                     "-o", "out", NULL);
    CHECKF(rc == 0, "exit %d: %s", rc, cmp_err);
    /* The crop is the centre of the image. */
    upres_image *src = cmp_load(cmp_image), *crop = cmp_load("out/crop.png");
    CHECK(src && crop);
    uint32_t cx = (src->width - 48) / 2, cy = (src->height - 48) / 2;
    int same = same_region(src, crop, cx, cy, 48, 48);
    upres_image_free(src);
    CHECKF(same, "crop.png is not the centred 48x48 region");
    /* The baseline is bicubic at the largest scale (x4), the x2 model is
     * brought to the same size. */
    upres_image *want = NULL, *base = cmp_load("out/bicubic.png");
    upres_resize_desc rd = upres_resize_desc_defaults();
    rd.width = rd.height = 192;
    rd.filter = UPRES_FILTER_BICUBIC;
    CHECK_OK(upres_resize(NULL, crop, &rd, &want));
    upres_image_free(crop);
    int base_ok = base && tu_same_pixels(want, base);
    upres_image_free(want);
    CHECK(base_ok);
    static const char *const files[] = {"realesr-animevideov3.png", "up2x-no-denoise.png",
                                        "diff_realesr-animevideov3.png",
                                        "diff_up2x-no-denoise.png"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++)
        CHECKF(sized(in_dir("out", files[i]), 192, 192), "%s is not 192x192", files[i]);
    /* Three 192-pixel panels, gaps of 4, a bar of 11 (font scale 1). */
    CHECKF(sized("out/comparison.jpg", 3 * 192 + 2 * 4, 11 + 192), "comparison.jpg size");

    /* Heat map: no difference is black, a large one red; checked on every
     * pixel where the difference is 0 or at least 64 levels. */
    upres_image *model = cmp_load("out/realesr-animevideov3.png"),
                *map = cmp_load("out/diff_realesr-animevideov3.png");
    CHECK(model && map && map->channels == 3);
    size_t zero = 0, big = 0, bad = 0;
    for (uint32_t y = 0; y < 192; y++) {
        const uint8_t *a = upres_image_row(base, y), *b = upres_image_row(model, y),
                      *m = upres_image_row(map, y);
        for (uint32_t x = 0; x < 192; x++) {
            int d = 0;
            for (int c = 0; c < 3; c++) {
                int e = abs(a[3 * x + c] - b[3 * x + c]);
                d = e > d ? e : d;
            }
            const uint8_t *p = m + 3 * x;
            if (d == 0) zero++, bad += p[0] || p[1] || p[2];
            if (d >= 64) big++, bad += p[0] != 255 || p[1] || p[2];
        }
    }
    upres_image_free(base);
    upres_image_free(model);
    upres_image_free(map);
    CHECKF(bad == 0 && big > 0, "heat map: %zu wrong of %zu black and %zu red pixels", bad, zero,
           big);

    /* The report: a row per model, numbers from the written files. */
    size_t size = 0;
    char *report = (char *)test_read_file("out/report.md", &size);
    CHECK(report);
    char *text = realloc(report, size + 1);
    CHECK(text);
    text[size] = 0;
    int rows = table_rows(text);
    static const char *const names[] = {"realesr-animevideov3", "up2x-no-denoise"};
    static const int scales[] = {4, 2};
    char line[2048], *cell[16];
    const char *fail = NULL;
    char why[512] = "";
    if (rows != 2) fail = "not one row per model";
    for (int i = 0; !fail && i < 2; i++) {
        int n = report_row(text, names[i], line, sizeof line, cell);
        /* model, arch, scale, seconds, peak, mean dE, max dE, PSNR, SSIM, file */
        if (n != 10) {
            fail = "row with other than 10 cells";
            break;
        }
        char sc[8];
        snprintf(sc, sizeof sc, "%d", scales[i]);
        if (strcmp(cell[2], sc) != 0 || strtod(cell[3], NULL) <= 0) {
            fail = "scale or seconds";
            break;
        }
        /* The file cell is `NAME.png`. */
        size_t fl = strlen(cell[9]);
        if (fl < 3 || cell[9][0] != '`' || cell[9][fl - 1] != '`') {
            fail = "file cell";
            break;
        }
        cell[9][fl - 1] = 0;
        upres_image *a = cmp_load("out/bicubic.png"), *b = cmp_load(in_dir("out", cell[9] + 1));
        upres_metrics m;
        upres_metrics_desc md = upres_metrics_desc_defaults();
        int st = a && b ? upres_metrics_compute(NULL, a, b, &md, &m) : UPRES_ERR_IO;
        upres_image_free(a);
        upres_image_free(b);
        if (st == UPRES_ERR_UNSUPPORTED) {
            /* Metrics not available in this build: the report must say so. */
            if (strcmp(cell[5], "n/a") || strcmp(cell[8], "n/a")) fail = "n/a expected";
            continue;
        }
        if (st != UPRES_OK) {
            fail = "metrics of the written files failed";
            break;
        }
        if (!agrees(cell[5], m.de_mean, 17) || !agrees(cell[6], m.de_max, 17) ||
            !agrees(cell[7], m.psnr, 17) || !agrees(cell[8], m.ssim, 17)) {
            snprintf(why, sizeof why, "%s: report %s %s %s %s, library %.6f %.6f %.6f %.6f",
                     names[i], cell[5], cell[6], cell[7], cell[8], m.de_mean, m.de_max, m.psnr,
                     m.ssim);
            fail = "report differs from upres_metrics_compute on the files";
            break;
        }
        /* And from the command line, once `upres metrics` works. */
        char path[PATH_MAX];
        snprintf(path, sizeof path, "out/%s.png", names[i]);
        char *argv[] = {cmp_bin, (char *)"metrics", (char *)"--json", (char *)"out/bicubic.png",
                        path, NULL};
        static char jout[8192], jerr[4096];
        if (test_run(argv, CMP_TIMEOUT_S, jout, sizeof jout, jerr, sizeof jerr) != 0) continue;
        static const char *const keys[4][4] = {
            {"de_mean", "ciede2000_mean", "drift", "colour_drift"},
            {"de_max", "ciede2000_max", NULL, NULL},
            {"psnr", NULL, NULL, NULL},
            {"ssim", NULL, NULL, NULL}};
        for (int k = 0; !fail && k < 4; k++) {
            double v = 0;
            char txt[64];
            int found = 0;
            for (int j = 0; !found && j < 4 && keys[k][j]; j++)
                found = json_number(jout, keys[k][j], &v, txt, sizeof txt);
            if (!found) {
                snprintf(why, sizeof why, "no %s in: %.300s", keys[k][0], jout);
                fail = "upres metrics --json lacks a field";
            } else if (!agrees(cell[5 + k], v, decimals(txt))) {
                snprintf(why, sizeof why, "%s: report %s, upres metrics %s", keys[k][0],
                         cell[5 + k], txt);
                fail = "report differs from upres metrics --json";
            }
        }
    }
    CHECKF(!fail, "report.md: %s %s\n%s", fail, why, text);
    free(text);
}

TEST(cli_compare_crop_at_edge_default_folder_and_names)
{
    if (!cmp_setup(1)) SKIP("no shared Kodak image or models (../shared)");
    upres_image *src = cmp_load(cmp_image);
    CHECK(src);
    uint32_t w = src->width, h = src->height;
    char at[64];
    /* 40 asked, 12 x 9 left before the edges. */
    snprintf(at, sizeof at, "%u,%u", w - 12, h - 9);
    char path_model[PATH_MAX];
    snprintf(path_model, sizeof path_model, "%s/pytorch/realesr-animevideov3.pth", cmp_models);
    int rc = cmp_run(cmp_image, "--crop", "40", "--crop-at", at, "-m", path_model, "-m",
                     "models-se/up2x-no-denoise", NULL);
    CHECKF(rc == 0, "exit %d: %s", rc, cmp_err);
    upres_image *crop = cmp_load("compare-kodim05/crop.png");
    int same = crop && same_region(src, crop, w - 12, h - 9, 12, 9);
    upres_image_free(src);
    upres_image_free(crop);
    CHECKF(same, "crop.png is not the 12x9 region at the corner");
    /* A path gives its stem, a name with folders a file name without '/'. */
    CHECK(sized("compare-kodim05/realesr-animevideov3.png", 48, 36));
    CHECK(sized("compare-kodim05/models-se_up2x-no-denoise.png", 48, 36));
    CHECK(sized("compare-kodim05/diff_models-se_up2x-no-denoise.png", 48, 36));
    CHECK(sized("compare-kodim05/bicubic.png", 48, 36));
    CHECK(sized("compare-kodim05/comparison.jpg", 3 * 48 + 2 * 4, 11 + 36));
    size_t size = 0;
    char *report = (char *)test_read_file("compare-kodim05/report.md", &size);
    CHECK(report);
    char *text = realloc(report, size + 1);
    CHECK(text);
    text[size] = 0;
    int ok = table_rows(text) == 2 && strstr(text, "\n| realesr-animevideov3 | SRVGGNetCompact | 4 |") &&
             strstr(text, "\n| models-se/up2x-no-denoise | RealCUGAN") &&
             strstr(text, "lanczos3");
    CHECKF(ok, "report.md:\n%s", text);
    free(text);
}

/* ---- errors ------------------------------------------------------------------ */

/* Writes a w x h 8-bit RGB gradient to path. */
static int write_gradient(const char *path, uint32_t w, uint32_t h)
{
    upres_image *img = NULL;
    int st = upres_image_new(&img, w, h, 3, UPRES_U8, NULL);
    if (st != UPRES_OK) return st;
    for (uint32_t y = 0; y < h; y++) {
        uint8_t *row = upres_image_row(img, y);
        for (uint32_t i = 0; i < w * 3; i++) row[i] = (uint8_t)((i * 7 + y * 13) & 0xff);
    }
    st = upres_save(NULL, img, path, NULL);
    upres_image_free(img);
    return st;
}

/* 1 when stderr is exactly one line containing `part`. */
static int one_error(const char *part)
{
    return tu_one_line(cmp_err) && strstr(cmp_err, part) != NULL;
}

TEST(cli_compare_errors_are_one_line_and_write_nothing)
{
    CHECK(cmp_setup(0));
    CHECK_OK(write_gradient("g.png", 40, 30));
    int rc = cmp_run("g.png", "-m", "no-such-model", "-o", "o1", NULL);
    CHECKF(rc == 1 && one_error("no-such-model"), "unknown model: exit %d: %s", rc, cmp_err);
    struct stat sb;
    CHECKF(stat("o1", &sb) != 0, "the output folder was made for an unknown model");
    rc = cmp_run("g.png", "-m", "x", "--crop-at", "5", NULL);
    CHECKF(rc == 2 && one_error("--crop-at"), "--crop-at 5: exit %d: %s", rc, cmp_err);
    rc = cmp_run("g.png", "-m", "x", "--crop-at", "a,b", NULL);
    CHECKF(rc == 2 && one_error("--crop-at"), "--crop-at a,b: exit %d: %s", rc, cmp_err);
    rc = cmp_run("g.png", "-m", "x", "--crop-at", "-1,3", NULL);
    CHECKF(rc == 2 && one_error("--crop-at"), "--crop-at -1,3: exit %d: %s", rc, cmp_err);
    /* Inside the syntax but outside the 40x30 image: found before models. */
    rc = cmp_run("g.png", "-m", "x", "--crop-at", "40,0", "-o", "o2", NULL);
    CHECKF(rc == 2 && one_error("outside the 40x30"), "--crop-at 40,0: exit %d: %s", rc, cmp_err);
    CHECK(stat("o2", &sb) != 0);
    rc = cmp_run("g.png", "--crop", "16", NULL);
    CHECKF(rc == 2 && one_error("-m"), "no -m: exit %d: %s", rc, cmp_err);
    rc = cmp_run("g.png", "-m", "a,,b", NULL);
    CHECKF(rc == 2 && one_error("empty model name"), "a,,b: exit %d: %s", rc, cmp_err);
    rc = cmp_run("g.png", "-m", "a", "--crop", "0", NULL);
    CHECKF(rc == 2 && one_error("crop size"), "--crop 0: exit %d: %s", rc, cmp_err);
    rc = cmp_run("missing.png", "-m", "a", NULL);
    CHECKF(rc == 1 && one_error("missing.png"), "missing input: exit %d: %s", rc, cmp_err);
    rc = cmp_run("-m", "a", NULL);
    CHECKF(rc == 2 && one_error("IN"), "no IN: exit %d: %s", rc, cmp_err);
}

TEST(cli_compare_failure_leaves_the_folder_as_it_was)
{
    /* The fixture path is relative to the starting folder. */
    char model[PATH_MAX];
    CHECK(realpath(test_fixture("arch/srvgg_relu_x2.pth"), model) != NULL);
    CHECK(cmp_setup(0));
    CHECK_OK(write_gradient("g.png", 24, 24));
    /* A folder in the way of diff_MODEL.png is found before anything is
     * written. */
    CHECK(mkdir("o1", 0777) == 0 && mkdir("o1/diff_srvgg_relu_x2.png", 0777) == 0);
    int rc = cmp_run("g.png", "-m", model, "--crop", "16", "-o", "o1", NULL);
    CHECKF(rc == 1 && one_error("diff_srvgg_relu_x2.png"), "exit %d: %s", rc, cmp_err);
    CHECKF(test_dir_count("o1") == 1, "o1 holds %d entries", test_dir_count("o1"));
    /* A failure after every result was made (the 68x43 sheet is over
     * --max-pixels, the 32x32 results are not): the results of an earlier
     * run stay, nothing new appears, no staging folder is left... */
    CHECK(mkdir("o2", 0777) == 0 && test_write_file("o2/report.md", "old\n", 4) == 0);
    rc = cmp_run("g.png", "-m", model, "--crop", "16", "-o", "o2", "--max-pixels", "2900", NULL);
    CHECKF(rc == 1 && tu_one_line(cmp_err), "exit %d: %s", rc, cmp_err);
    CHECKF(test_dir_count("o2") == 1, "o2 holds %d entries", test_dir_count("o2"));
    size_t size = 0;
    unsigned char *old = test_read_file("o2/report.md", &size);
    CHECK(old && size == 4 && !memcmp(old, "old\n", 4));
    free(old);
    /* ...and a folder the run made is removed again. */
    rc = cmp_run("g.png", "-m", model, "--crop", "16", "-o", "o3", "--max-pixels", "2900", NULL);
    struct stat sb;
    CHECKF(rc == 1 && stat("o3", &sb) != 0, "exit %d, o3 %s", rc,
           stat("o3", &sb) == 0 ? "exists" : "absent");
    /* The same run within the limits publishes all six files and only them. */
    rc = cmp_run("g.png", "-m", model, "--crop", "16", "-o", "o2", NULL);
    CHECKF(rc == 0, "exit %d: %s", rc, cmp_err);
    CHECKF(test_dir_count("o2") == 6, "o2 holds %d entries", test_dir_count("o2"));
    CHECK(sized("o2/diff_srvgg_relu_x2.png", 32, 32) && sized("o2/comparison.jpg", 68, 43));
}
