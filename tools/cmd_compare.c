/* `upres compare`: runs several upscaling models and a bicubic baseline on
 * one crop of an image and writes every result, a labelled side-by-side
 * sheet, a difference heat map per model and a markdown report with time,
 * peak memory and fidelity numbers (docs/compare.md). Only the public API is
 * used; models are found as `upres upscale -m` finds them. */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char cli_compare_help[] =
    "usage: upres compare IN -m MODEL[,MODEL...] [--crop N] [--crop-at X,Y] [-o DIR]\n"
    "           [--model-path DIR] [--diff-scale L] [OPTIONS]\n"
    "\n"
    "Compares upscaling models on a crop of IN. Each model runs on the crop at\n"
    "its own scale; a bicubic resize is the baseline. Written into DIR:\n"
    "  crop.png           the crop\n"
    "  bicubic.png        the baseline: the crop resized with bicubic by S, the\n"
    "                     largest scale of the models\n"
    "  MODEL.png          each model's result (a model with a smaller scale is\n"
    "                     then resized with lanczos3 to the common size)\n"
    "  diff_MODEL.png     heat map of |MODEL - bicubic|: per pixel the largest\n"
    "                     difference of R, G, B in 8-bit levels, black (0) ->\n"
    "                     blue -> yellow -> red (L or more)\n"
    "  comparison.jpg     the results side by side, baseline first, each under\n"
    "                     a bar with its name\n"
    "  report.md          a table per model: arch, scale, seconds (the upscale\n"
    "                     alone), peak memory (the process's peak resident\n"
    "                     memory while loading and running the model, VmHWM;\n"
    "                     n/a where the system cannot tell), colour drift (mean\n"
    "                     and max CIEDE2000), PSNR and SSIM, all against\n"
    "                     bicubic.png, computed from the written files exactly as\n"
    "                     'upres metrics bicubic.png MODEL.png' does\n"
    "Files of the same name are replaced, all together once every one is made: a\n"
    "failed run leaves DIR as it was. Model names become file\n"
    "names with characters other than letters, digits, '.', '_', '+' and '-'\n"
    "replaced by '_' (a model file given by path: its name without extension);\n"
    "a name taken twice gets -2, -3, ... More in docs/compare.md.\n"
    "\n"
    "  -m, --model LIST     models to compare, separated by ',' (repeatable): files\n"
    "                       or names as 'upres upscale -m' takes them\n"
    "      --model-path DIR search DIR first for model names (repeatable)\n"
    "      --crop N         side of the square crop in pixels (default 512),\n"
    "                       clipped to the image\n"
    "      --crop-at X,Y    the crop's top-left corner (default: centred); a crop\n"
    "                       reaching past the image's edge is cut there\n"
    "  -o, --output DIR     folder for the results (default compare-STEM in the\n"
    "                       working folder, STEM being IN's name without\n"
    "                       extension); created when missing\n"
    "      --diff-scale L   difference shown as red in the heat maps, in 8-bit\n"
    "                       levels, 1..255 (default 64)\n"
    "\n"
    "Example: upres compare photo.jpg -m realesr-animevideov3,up2x-no-denoise --crop 256\n";

/* Panel gap and label bar of comparison.jpg, in multiples of the font
 * scale (see sheet_scale). */
#define SHEET_GAP 4
#define SHEET_BAR (CLI_FONT_H + 4)

/* One model being compared. */
typedef struct cmp_model {
    const char *want;        /* the -m entry */
    char *path;              /* the model file found (owned) */
    upres_model_info info;
    char label[160];         /* name shown on the sheet and in the report */
    char key[128];           /* file name part: KEY.png, diff_KEY.png */
    double seconds;          /* wall time of upres_upscale */
    double peak_mib;         /* VmHWM in MiB; < 0 when unknown */
    int resized;             /* result resized with lanczos3 to the common scale */
    int have_metrics;
    upres_metrics m;
} cmp_model;

typedef struct cmp_opts {
    cli_paths models;        /* -m entries, split at ',' */
    cli_paths model_dirs;    /* --model-path */
    long crop;
    int crop_at_set;
    long crop_x, crop_y;
    long diff_scale;
    const char *out_dir;
} cmp_opts;

/* ---- argument parsing ------------------------------------------------------ */

/* Adds each ','-separated name of `list` to o->models. Returns CLI_MATCH or
 * CLI_BAD (message printed). */
static int add_models(cli_args *a, cmp_opts *o, const char *list)
{
    char buf[256];
    const char *s = list;
    for (;;) {
        const char *e = strchr(s, ',');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (!n)
            return cli_usage_error(a->cmd, "empty model name in '%s' (want names separated by "
                                           "',')", cli_clean(list, buf, sizeof buf)), CLI_BAD;
        char *name = malloc(n + 1);
        if (!name) return cli_fail("out of memory"), CLI_BAD;
        memcpy(name, s, n);
        name[n] = 0;
        int ok = cli_paths_add(&o->models, name);
        free(name);
        if (!ok) return cli_fail("out of memory"), CLI_BAD;
        if (!e) return CLI_MATCH;
        s = e + 1;
    }
}

/* Parses "X,Y" (two integers >= 0, no signs). Returns 1 on success. */
static int parse_point(const char *s, long *x, long *y)
{
    const char *comma = strchr(s, ',');
    char num[32];
    if (!comma || (size_t)(comma - s) >= sizeof num) return 0;
    memcpy(num, s, (size_t)(comma - s));
    num[comma - s] = 0;
    return num[0] != '+' && comma[1] != '+' && cli_parse_long(num, 0, 4294967295L, x) &&
           cli_parse_long(comma + 1, 0, 4294967295L, y);
}

/* Matches one compare option at the cursor. */
static int compare_option(cli_args *a, void *opts)
{
    cmp_opts *o = opts;
    const char *v = NULL;
    char buf[128];
    int r;
    if ((r = cli_match(a, "model", 'm', &v)) != CLI_NOMATCH)
        return r == CLI_MATCH ? add_models(a, o, v) : r;
    if ((r = cli_match(a, "model-path", 0, &v)) != CLI_NOMATCH) {
        if (r == CLI_MATCH && !cli_paths_add(&o->model_dirs, v))
            return cli_fail("out of memory"), CLI_BAD;
        return r;
    }
    if ((r = cli_match(a, "output", 'o', &v)) != CLI_NOMATCH) {
        if (r == CLI_MATCH && !*v)
            return cli_usage_error(a->cmd, "empty output folder name"), CLI_BAD;
        if (r == CLI_MATCH) o->out_dir = v;
        return r;
    }
    if ((r = cli_match(a, "crop", 0, &v)) != CLI_NOMATCH) {
        if (r == CLI_MATCH && (!cli_parse_long(v, 1, 65535, &o->crop) || v[0] == '+'))
            return cli_usage_error(a->cmd, "bad crop size '%s' (want 1..65535 pixels)",
                                   cli_clean(v, buf, sizeof buf)), CLI_BAD;
        return r;
    }
    if ((r = cli_match(a, "crop-at", 0, &v)) != CLI_NOMATCH) {
        if (r == CLI_MATCH && !parse_point(v, &o->crop_x, &o->crop_y))
            return cli_usage_error(a->cmd, "bad --crop-at '%s' (want X,Y: the crop's top-left "
                                           "corner in pixels, e.g. 100,40)",
                                   cli_clean(v, buf, sizeof buf)), CLI_BAD;
        if (r == CLI_MATCH) o->crop_at_set = 1;
        return r;
    }
    if ((r = cli_match(a, "diff-scale", 0, &v)) != CLI_NOMATCH) {
        if (r == CLI_MATCH && (!cli_parse_long(v, 1, 255, &o->diff_scale) || v[0] == '+'))
            return cli_usage_error(a->cmd, "bad --diff-scale '%s' (want 1..255 levels)",
                                   cli_clean(v, buf, sizeof buf)), CLI_BAD;
        return r;
    }
    return CLI_NOMATCH;
}

/* ---- names ----------------------------------------------------------------- */

/* The last path component of s, without its extension. */
static void file_stem(const char *s, char *buf, size_t cap)
{
    const char *b = strrchr(s, '/');
    b = b ? b + 1 : s;
    const char *dot = strrchr(b, '.');
    size_t n = dot && dot != b ? (size_t)(dot - b) : strlen(b);
    snprintf(buf, cap, "%.*s", (int)n, b);
}

/* A file name part made from `name`: letters, digits, '.', '_', '+', '-'
 * kept, anything else (slashes, spaces, bytes >= 0x80) becomes '_'; a
 * leading '.' too, so no hidden or "." / ".." names. */
static void sanitise(const char *name, char *buf, size_t cap)
{
    size_t n = 0;
    for (const unsigned char *s = (const unsigned char *)name; *s && n + 1 < cap; s++) {
        int ok = (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
                 (*s >= '0' && *s <= '9') || *s == '_' || *s == '+' || *s == '-' ||
                 (*s == '.' && n > 0);
        buf[n++] = ok ? (char)*s : '_';
    }
    if (!n) buf[n++] = '_';
    buf[n] = 0;
}

/* 1 when `name` is one of the n names in `used`. */
static int name_used(char used[][160], size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(used[i], name)) return 1;
    return 0;
}

/* Chooses label and key of every model: the -m entry (its stem when it is
 * a file path), keys made unique against each other and the fixed output
 * names by a "-2", "-3", ... suffix. Returns 0 when out of memory. */
static int name_models(cmp_model *v, size_t n)
{
    size_t cap = 2 * n + 2, used_n = 0;
    char (*used)[160] = calloc(cap, sizeof *used);
    if (!used) return 0;
    snprintf(used[used_n++], sizeof used[0], "crop.png");
    snprintf(used[used_n++], sizeof used[0], "bicubic.png");
    for (size_t i = 0; i < n; i++) {
        struct stat sb;
        char clean[160];
        if (stat(v[i].want, &sb) == 0 && S_ISREG(sb.st_mode))
            file_stem(v[i].want, v[i].label, sizeof v[i].label);
        else
            snprintf(v[i].label, sizeof v[i].label, "%s", v[i].want);
        cli_clean(v[i].label, clean, sizeof clean);
        snprintf(v[i].label, sizeof v[i].label, "%s", clean);
        char base[100];
        sanitise(v[i].label, base, sizeof base);
        for (unsigned k = 1;; k++) {
            char a[160], b[160];
            if (k == 1) snprintf(v[i].key, sizeof v[i].key, "%s", base);
            else snprintf(v[i].key, sizeof v[i].key, "%s-%u", base, k);
            snprintf(a, sizeof a, "%s.png", v[i].key);
            snprintf(b, sizeof b, "diff_%s.png", v[i].key);
            if (!name_used(used, used_n, a) && !name_used(used, used_n, b)) {
                memcpy(used[used_n++], a, sizeof a);
                memcpy(used[used_n++], b, sizeof b);
                /* The same model twice: tell the rows and panels apart. */
                size_t ln = strlen(v[i].label);
                if (k > 1 && ln + 12 < sizeof v[i].label)
                    snprintf(v[i].label + ln, sizeof v[i].label - ln, " #%u", k);
                break;
            }
        }
    }
    free(used);
    return 1;
}

/* dir + "/" + name into buf; 0 when it does not fit. */
static int out_path(const char *dir, const char *name, char *buf, size_t cap)
{
    size_t n = strlen(dir);
    int r = snprintf(buf, cap, "%s%s%s", dir, n && dir[n - 1] == '/' ? "" : "/", name);
    return r >= 0 && (size_t)r < cap;
}

/* ---- images ---------------------------------------------------------------- */

/* A copy of the w x h region of src at (x, y) (inside src), metadata kept.
 * Returns a status. */
static int crop_image(upres_ctx *ctx, const upres_image *src, uint32_t x, uint32_t y, uint32_t w,
                      uint32_t h, upres_image **out)
{
    size_t px = src->channels * upres_depth_bytes(src->depth);
    int st = upres_image_new(out, w, h, src->channels, src->depth, upres_ctx_limits(ctx));
    if (st != UPRES_OK) return st;
    for (uint32_t r = 0; r < h; r++)
        memcpy(upres_image_row(*out, r), (const uint8_t *)upres_image_row(src, y + r) + x * px,
               w * px);
    st = upres_image_set_icc(*out, src->icc, src->icc_size);
    if (st != UPRES_OK) {
        upres_image_free(*out);
        *out = NULL;
    }
    return st;
}

/* Saves img as PNG (depth kept: 8-bit, or 16-bit for deeper images). */
static int save_png(const cli_global *g, upres_ctx *ctx, const upres_image *img, const char *path)
{
    upres_encode_desc d = upres_encode_desc_defaults();
    d.format = UPRES_FORMAT_PNG;
    return cli_save(g, ctx, img, path, &d);
}

/* Loads one of the files written, as 8-bit RGB for drawing (alpha composited
 * over white) and, when `as_written` is not NULL, as the file holds it. */
static int load_written(const cli_global *g, upres_ctx *ctx, const char *path,
                        upres_image **as_written, upres_image **rgb8)
{
    upres_image *img = NULL;
    upres_file_info info;
    int rc = cli_load(g, ctx, path, 0, &img, &info);
    if (rc != CLI_OK) return rc;
    int st = upres_image_convert(img, UPRES_U8, 3, 1.0f, rgb8);
    if (st != UPRES_OK) {
        upres_image_free(img);
        return cli_report(ctx, st, "convert", path);
    }
    if (as_written) *as_written = img;
    else upres_image_free(img);
    return CLI_OK;
}

/* Colour of the heat-map value t in [0, 1]: black, blue, yellow, red at
 * 0, 1/3, 2/3, 1, linear in between. */
static void ramp(double t, uint8_t rgb[3])
{
    static const double stops[4][3] = {{0, 0, 0}, {0, 0, 255}, {255, 255, 0}, {255, 0, 0}};
    double p = t * 3;
    int i = p >= 3 ? 2 : (int)p;
    double f = p - i;
    for (int c = 0; c < 3; c++) {
        double v = stops[i][c] + (stops[i + 1][c] - stops[i][c]) * f;
        rgb[c] = (uint8_t)(v + 0.5);
    }
}

/* The heat map of |a - b| (8-bit RGB images of one size); `scale` levels
 * and more are red. */
static int diff_map(upres_ctx *ctx, const upres_image *a, const upres_image *b, long scale,
                    upres_image **out)
{
    int st = upres_image_new(out, a->width, a->height, 3, UPRES_U8, upres_ctx_limits(ctx));
    if (st != UPRES_OK) return st;
    for (uint32_t y = 0; y < a->height; y++) {
        const uint8_t *pa = upres_image_row(a, y), *pb = upres_image_row(b, y);
        uint8_t *po = upres_image_row(*out, y);
        for (uint32_t x = 0; x < a->width; x++) {
            int d = 0;
            for (int c = 0; c < 3; c++) {
                int e = abs((int)pa[3 * x + c] - (int)pb[3 * x + c]);
                if (e > d) d = e;
            }
            ramp(d >= scale ? 1.0 : (double)d / (double)scale, po + 3 * x);
        }
    }
    return UPRES_OK;
}

/* Font scale of the labels for panels `w` pixels wide. */
static uint32_t sheet_scale(uint32_t w)
{
    uint32_t k = w / 256;
    return k < 1 ? 1 : k > 8 ? 8 : k;
}

/* The side-by-side sheet of n 8-bit RGB panels of one size, each under a
 * bar with its label (cut with ".." when too long). Size: n * W + (n - 1) *
 * SHEET_GAP * k by SHEET_BAR * k + H, k = sheet_scale(W). */
static int make_sheet(upres_ctx *ctx, upres_image *const *panels, const char *const *labels,
                      size_t n, upres_image **out)
{
    uint32_t w = panels[0]->width, h = panels[0]->height, k = sheet_scale(w);
    uint64_t gap = (uint64_t)SHEET_GAP * k, bar = (uint64_t)SHEET_BAR * k;
    uint64_t sw = (uint64_t)n * w + (uint64_t)(n - 1) * gap, sh = bar + h;
    if (sw > UINT32_MAX || sh > UINT32_MAX) return UPRES_ERR_LIMIT;
    int st = upres_image_new(out, (uint32_t)sw, (uint32_t)sh, 3, UPRES_U8, upres_ctx_limits(ctx));
    if (st != UPRES_OK) return st;
    /* Dark background and bars, white labels: readable over any photo. */
    for (uint32_t y = 0; y < sh; y++) memset(upres_image_row(*out, y), 40, (size_t)sw * 3);
    static const uint8_t white[3] = {255, 255, 255};
    for (size_t i = 0; i < n; i++) {
        uint64_t x0 = i * ((uint64_t)w + gap);
        for (uint32_t y = 0; y < h; y++)
            memcpy((uint8_t *)upres_image_row(*out, (uint32_t)(bar + y)) + x0 * 3,
                   upres_image_row(panels[i], y), (size_t)w * 3);
        char text[160];
        snprintf(text, sizeof text, "%s", labels[i]);
        uint32_t room = w > 4 * k ? w - 4 * k : 0;
        size_t len = strlen(text);
        if (cli_text_width(text, k) > room) {
            size_t fit = (room + k) / ((uint32_t)CLI_FONT_ADVANCE * k);
            if (fit > len) fit = len;
            if (fit >= 3) {
                text[fit - 2] = text[fit - 1] = '.';
                text[fit] = 0;
            } else {
                text[fit] = 0;
            }
        }
        cli_draw_text(*out, (int64_t)(x0 + 2 * k), 2 * k, text, k, white);
    }
    return UPRES_OK;
}

/* ---- the report ------------------------------------------------------------ */

/* Appends to a growing text; sets *ok = 0 when out of memory. */
typedef struct text_buf {
    char *s;
    size_t n, cap;
    int ok;
} text_buf;

static void tb_add(text_buf *t, const char *fmt, ...) CLI_PRINTF(2, 3);

static void tb_add(text_buf *t, const char *fmt, ...)
{
    if (!t->ok) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = t->cap - t->n;
        int w = vsnprintf(t->s ? t->s + t->n : NULL, t->s ? room : 0, fmt, ap);
        va_end(ap);
        if (w < 0) {
            t->ok = 0;
            return;
        }
        if (t->s && (size_t)w < room) {
            t->n += (size_t)w;
            return;
        }
        size_t nc = t->cap * 2 + (size_t)w + 256;
        char *ns = realloc(t->s, nc);
        if (!ns) {
            t->ok = 0;
            return;
        }
        t->s = ns;
        t->cap = nc;
    }
}

/* A table cell: s with '|' and '\' escaped and control characters made '?'. */
static void tb_cell(text_buf *t, const char *s)
{
    char clean[1024];
    cli_clean(s, clean, sizeof clean);
    tb_add(t, " ");
    for (const char *p = clean; *p; p++) {
        if (*p == '|' || *p == '\\') tb_add(t, "\\%c", *p);
        else tb_add(t, "%c", *p);
    }
    tb_add(t, " |");
}

/* A number cell; NaN gives n/a. */
static void tb_num(text_buf *t, const char *fmt, double v)
{
    if (isnan(v)) tb_add(t, " n/a |");
    else if (isinf(v)) tb_add(t, " inf |");
    else {
        tb_add(t, " ");
        tb_add(t, fmt, v);
        tb_add(t, " |");
    }
}

/* Writes report.md (see docs/compare.md) to path atomically. */
static int write_report(upres_ctx *ctx, const char *path, const char *in,
                        const upres_image *src, uint32_t cx, uint32_t cy, const upres_image *crop,
                        int scale, double bicubic_s, const cmp_model *v, size_t n, long diff_scale,
                        const char *metrics_error)
{
    text_buf t = {NULL, 0, 0, 1};
    tb_add(&t, "# upres compare\n\n");
    char name[1024];
    tb_add(&t, "Input: '%s'.\n\n", cli_clean(in, name, sizeof name));
    tb_add(&t, "Crop `crop.png`: %ux%u at (%u, %u) of the %ux%u image. ", crop->width,
           crop->height, cx, cy, src->width, src->height);
    tb_add(&t, "Baseline `bicubic.png`: the crop resized x%d with bicubic to %ux%u (%.1f ms).\n\n",
           scale, crop->width * (uint32_t)scale, crop->height * (uint32_t)scale, bicubic_s * 1e3);
    int any_resized = 0;
    for (size_t i = 0; i < n; i++) any_resized |= v[i].resized;
    if (any_resized) {
        tb_add(&t, "Models with a scale below x%d were resized with lanczos3 to that size after "
                   "the network:", scale);
        for (size_t i = 0, first = 1; i < n; i++)
            if (v[i].resized) {
                tb_add(&t, "%s `%s.png` (x%d)", first ? "" : ",", v[i].key, v[i].info.scale);
                first = 0;
            }
        tb_add(&t, ".\n\n");
    }
    tb_add(&t, "| model | arch | scale | seconds | peak memory (MiB) | colour drift: mean "
               "\xce\x94" "E2000 | max \xce\x94" "E2000 | PSNR (dB) | SSIM | file |\n");
    tb_add(&t, "|---|---|---:|---:|---:|---:|---:|---:|---:|---|\n");
    for (size_t i = 0; i < n; i++) {
        const cmp_model *m = &v[i];
        double na = NAN;
        tb_add(&t, "|");
        tb_cell(&t, m->label);
        tb_cell(&t, m->info.arch);
        tb_add(&t, " %d |", m->info.scale);
        tb_num(&t, "%.3f", m->seconds);
        tb_num(&t, "%.1f", m->peak_mib >= 0 ? m->peak_mib : na);
        tb_num(&t, "%.4f", m->have_metrics ? m->m.de_mean : na);
        tb_num(&t, "%.4f", m->have_metrics ? m->m.de_max : na);
        tb_num(&t, "%.4f", m->have_metrics ? m->m.psnr : na);
        tb_num(&t, "%.6f", m->have_metrics ? m->m.ssim : na);
        tb_add(&t, " `%s.png` |\n", m->key);
    }
    tb_add(&t, "\nSeconds: wall time of the upscale alone (%d thread%s), model loading "
               "excluded. Peak memory: the process's peak resident memory (VmHWM) while the "
               "model was loaded and run, reset before each model; n/a where the system "
               "cannot tell.\n\n", upres_ctx_threads(ctx), upres_ctx_threads(ctx) == 1 ? "" : "s");
    tb_add(&t, "Colour drift, PSNR and SSIM compare each `MODEL.png` with `bicubic.png` as "
               "written (`upres metrics bicubic.png MODEL.png` gives the same numbers): "
               "CIEDE2000 on sRGB D65 CIELAB, PSNR over R, G, B, SSIM the mean over R, G, B "
               "(Gaussian window, sigma 1.5).\n");
    if (metrics_error) tb_add(&t, "Metrics unavailable (n/a): %s.\n", metrics_error);
    tb_add(&t, "\nDifference maps `diff_MODEL.png`: per pixel the largest |MODEL - bicubic| of "
               "R, G, B in 8-bit levels (alpha composited over white); black = 0, blue = %.1f, "
               "yellow = %.1f, red = %ld levels or more.\n",
           diff_scale / 3.0, diff_scale * 2 / 3.0, diff_scale);
    if (!t.ok) {
        free(t.s);
        return cli_fail("out of memory");
    }
    int st = upres_write_file_atomic(ctx, path, t.s, t.n);
    free(t.s);
    return st == UPRES_OK ? CLI_OK : cli_report(ctx, st, "write", path);
}

/* ---- the command ----------------------------------------------------------- */

/* Creates folder `dir` when missing (its parent must exist); *made = 1 when
 * this call created it. */
static int make_dir(const char *dir, int *made)
{
    char p[1024];
    struct stat sb;
    *made = 0;
    if (mkdir(dir, 0777) == 0) return *made = 1, CLI_OK;
    int err = errno;
    if (err == EEXIST && stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode)) return CLI_OK;
    if (err == EEXIST) err = ENOTDIR;
    return cli_fail("cannot create folder '%s': %s; choose another -o folder",
                    cli_clean(dir, p, sizeof p), strerror(err));
}

/* Name of output file k of the run (0 <= k < 4 + 2 n) into buf[160]. */
static void output_name(const cmp_model *v, size_t n, size_t k, char *buf)
{
    static const char *const fixed[] = {"crop.png", "bicubic.png", "comparison.jpg", "report.md"};
    if (k < 4) snprintf(buf, 160, "%s", fixed[k]);
    else if (k < 4 + n) snprintf(buf, 160, "%s.png", v[k - 4].key);
    else snprintf(buf, 160, "diff_%s.png", v[k - 4 - n].key);
}

/* Checks every destination in dir before anything is written, so that a
 * folder in the way or the input itself fails the run up front. */
static int check_outputs(const char *in, const char *dir, const cmp_model *v, size_t n)
{
    char name[160], path[PATH_MAX + 256], p[1024];
    for (size_t k = 0; k < 4 + 2 * n; k++) {
        output_name(v, n, k, name);
        if (!out_path(dir, name, path, sizeof path))
            return cli_fail("cannot write into '%s': the path is too long; choose a shorter -o "
                            "folder", cli_clean(dir, p, sizeof p));
        int rc = cli_check_paths(in, path, 0);
        if (rc != CLI_OK) return rc;
    }
    return CLI_OK;
}

/* Moves the files of the run from the staging folder into dir. */
static int publish(const char *stage, const char *dir, const cmp_model *v, size_t n)
{
    char name[160], from[PATH_MAX + 256], to[PATH_MAX + 256], p[1024];
    for (size_t k = 0; k < 4 + 2 * n; k++) {
        output_name(v, n, k, name);
        if (!out_path(stage, name, from, sizeof from) || !out_path(dir, name, to, sizeof to) ||
            rename(from, to) != 0)
            return cli_fail("cannot move '%s' into '%s': %s; the folder holds part of the results",
                            name, cli_clean(dir, p, sizeof p), strerror(errno));
    }
    return CLI_OK;
}

/* Removes the staging folder and what is left in it. */
static void remove_stage(const char *stage, const cmp_model *v, size_t n)
{
    char name[160], path[PATH_MAX + 256];
    for (size_t k = 0; k < 4 + 2 * n; k++) {
        output_name(v, n, k, name);
        if (out_path(stage, name, path, sizeof path)) unlink(path);
    }
    rmdir(stage);
}

/* Runs model m on the crop into `path` (resized to ow x oh when its scale
 * differs), filling its time and memory. */
static int run_model(const cli_global *g, upres_ctx *ctx, cmp_model *m, const cmp_opts *o,
                     const upres_image *crop, uint32_t ow, uint32_t oh, const char *path)
{
    int can_peak = cli_peak_rss_reset();
    upres_model *model = NULL;
    char *again = NULL;
    /* The file found in the first pass: loaded by path, so the same file. */
    int rc = cli_resolve_model(g, ctx, m->path, &o->model_dirs, 0, &model, &again);
    free(again);
    if (rc != CLI_OK) return rc;
    upres_upscale_desc d = upres_upscale_desc_defaults();
    upres_image *out = NULL;
    double t0 = cli_now();
    int st = upres_upscale(ctx, model, crop, &d, &out);
    m->seconds = cli_now() - t0;
    if (st == UPRES_OK && cli_interrupted()) st = UPRES_ERR_CANCELLED;
    m->peak_mib = can_peak && cli_peak_rss() ? (double)cli_peak_rss() / 1048576.0 : -1;
    upres_model_free(model);
    if (st != UPRES_OK) return cli_report(ctx, st, "upscale", m->label);
    cli_verbose(g, "%s: %ux%u in %.3f s", m->label, out->width, out->height, m->seconds);
    if (out->width != ow || out->height != oh) {
        upres_resize_desc rd = upres_resize_desc_defaults();
        rd.width = ow;
        rd.height = oh;
        rd.filter = UPRES_FILTER_LANCZOS3;
        upres_image *r = NULL;
        st = upres_resize(ctx, out, &rd, &r);
        upres_image_free(out);
        if (st != UPRES_OK) return cli_report(ctx, st, "resize", m->label);
        out = r;
        m->resized = 1;
    }
    rc = save_png(g, ctx, out, path);
    upres_image_free(out);
    return rc;
}

/* Everything after the options: see the help. */
static int compare_run(const cli_global *g, const cmp_opts *o, const char *in)
{
    char p[1024], path[PATH_MAX + 256], dirbuf[PATH_MAX], stage[PATH_MAX] = "";
    size_t n = o->models.n;
    cmp_model *v = calloc(n, sizeof *v);
    upres_ctx *ctx = NULL;
    upres_image *src = NULL, *crop = NULL, *base = NULL;
    upres_image **rgb = NULL;
    upres_file_info info;
    int rc = v ? CLI_OK : cli_fail("out of memory");
    if (rc == CLI_OK) rc = cli_make_ctx(g, &ctx);
    if (rc == CLI_OK) rc = cli_load(g, ctx, in, 1, &src, &info);
    /* The crop, before any slow model search. */
    uint32_t cx = 0, cy = 0, cw = 0, ch = 0;
    if (rc == CLI_OK) {
        uint64_t side = (uint64_t)o->crop;
        if (o->crop_at_set) {
            if ((uint64_t)o->crop_x >= src->width || (uint64_t)o->crop_y >= src->height) {
                rc = cli_usage_error("compare", "--crop-at %ld,%ld is outside the %ux%u image "
                                                "of '%s'", o->crop_x, o->crop_y, src->width,
                                     src->height, cli_clean(in, p, sizeof p));
            } else {
                cx = (uint32_t)o->crop_x;
                cy = (uint32_t)o->crop_y;
                cw = (uint32_t)(side < src->width - cx ? side : src->width - cx);
                ch = (uint32_t)(side < src->height - cy ? side : src->height - cy);
            }
        } else {
            cw = (uint32_t)(side < src->width ? side : src->width);
            ch = (uint32_t)(side < src->height ? side : src->height);
            cx = (src->width - cw) / 2;
            cy = (src->height - ch) / 2;
        }
    }
    /* Every model is found and loaded once up front, so a wrong name fails
     * before anything is written; each is loaded again for its run so the
     * peak memory counts its own weights only. */
    int scale = 1;
    for (size_t i = 0; rc == CLI_OK && i < n; i++) {
        upres_model *model = NULL;
        v[i].want = o->models.v[i];
        rc = cli_resolve_model(g, ctx, v[i].want, &o->model_dirs, 0, &model, &v[i].path);
        if (rc != CLI_OK) break;
        upres_model_get_info(model, &v[i].info);
        upres_model_free(model);
        if (v[i].info.scale > scale) scale = v[i].info.scale;
    }
    if (rc == CLI_OK && !name_models(v, n)) rc = cli_fail("out of memory");
    uint32_t ow = 0, oh = 0;
    if (rc == CLI_OK) {
        ow = cw * (uint32_t)scale;
        oh = ch * (uint32_t)scale;
        int st = upres_limits_check(upres_ctx_limits(ctx), ow, oh, src->channels,
                                    (uint32_t)upres_depth_bytes(src->depth));
        if (st != UPRES_OK)
            rc = cli_fail("cannot compare on a %ux%u crop at x%d: %s; use a smaller --crop", cw,
                          ch, scale, upres_strerror(st));
    }
    const char *dir = o->out_dir;
    if (rc == CLI_OK && !dir) {
        char stem[256];
        file_stem(in, stem, sizeof stem);
        snprintf(dirbuf, sizeof dirbuf, "compare-%s", stem);
        dir = dirbuf;
    }
    /* Everything is written into a hidden staging folder inside dir and
     * moved into place once all succeeded: a failed or interrupted run
     * leaves dir as it was (a folder it created is removed again). The
     * staging path is under PATH_MAX, so stage + "/" + a name always fits
     * the path buffers. */
    int made_dir = 0;
    if (rc == CLI_OK) rc = make_dir(dir, &made_dir);
    if (rc == CLI_OK) rc = check_outputs(in, dir, v, n);
    if (rc == CLI_OK && (!out_path(dir, ".upres-compare-XXXXXX", stage, sizeof stage) ||
                         !mkdtemp(stage))) {
        stage[0] = 0;
        rc = cli_fail("cannot write into '%s': %s; choose another -o folder",
                      cli_clean(dir, p, sizeof p), strerror(errno));
    }
    if (rc == CLI_OK) {
        int st = crop_image(ctx, src, cx, cy, cw, ch, &crop);
        if (st != UPRES_OK) rc = cli_report(ctx, st, "crop", in);
    }
    if (rc == CLI_OK) out_path(stage, "crop.png", path, sizeof path);
    if (rc == CLI_OK) rc = save_png(g, ctx, crop, path);
    /* The baseline. */
    double bicubic_s = 0;
    if (rc == CLI_OK) {
        upres_resize_desc rd = upres_resize_desc_defaults();
        rd.width = ow;
        rd.height = oh;
        rd.filter = UPRES_FILTER_BICUBIC;
        double t0 = cli_now();
        int st = upres_resize(ctx, crop, &rd, &base);
        bicubic_s = cli_now() - t0;
        if (st != UPRES_OK) rc = cli_report(ctx, st, "resize", in);
    }
    if (rc == CLI_OK) out_path(stage, "bicubic.png", path, sizeof path);
    if (rc == CLI_OK) rc = save_png(g, ctx, base, path);
    upres_image_free(base);
    base = NULL;
    for (size_t i = 0; rc == CLI_OK && i < n; i++) {
        char name[160];
        snprintf(name, sizeof name, "%s.png", v[i].key);
        out_path(stage, name, path, sizeof path);
        rc = run_model(g, ctx, &v[i], o, crop, ow, oh, path);
        cli_progress_clear();
    }
    /* Metrics, maps and the sheet from the files as written, so that
     * `upres metrics` on them agrees with the report. */
    upres_image *base_file = NULL;
    const char *metrics_error = NULL;
    char metrics_detail[300];
    if (rc == CLI_OK && !(rgb = calloc(n + 1, sizeof *rgb))) rc = cli_fail("out of memory");
    if (rc == CLI_OK) {
        out_path(stage, "bicubic.png", path, sizeof path);
        rc = load_written(g, ctx, path, &base_file, &rgb[0]);
    }
    for (size_t i = 0; rc == CLI_OK && i < n; i++) {
        char name[160];
        upres_image *file = NULL;
        snprintf(name, sizeof name, "%s.png", v[i].key);
        out_path(stage, name, path, sizeof path);
        rc = load_written(g, ctx, path, &file, &rgb[i + 1]);
        if (rc != CLI_OK) break;
        upres_metrics_desc md = upres_metrics_desc_defaults();
        int st = upres_metrics_compute(ctx, base_file, file, &md, &v[i].m);
        upres_image_free(file);
        if (st == UPRES_OK) {
            v[i].have_metrics = 1;
        } else if (!metrics_error) {
            char d[256];
            cli_clean(upres_ctx_error(ctx), d, sizeof d);
            snprintf(metrics_detail, sizeof metrics_detail, "%s%s%s", upres_strerror(st),
                     *d ? ": " : "", d);
            metrics_error = metrics_detail;
            cli_progress_clear();
            fprintf(stderr, "upres: warning: cannot compute the metrics (%s); the report says "
                            "n/a\n", metrics_detail);
        }
        upres_image *map = NULL;
        st = diff_map(ctx, rgb[0], rgb[i + 1], o->diff_scale, &map);
        if (st != UPRES_OK) {
            rc = cli_report(ctx, st, "make the difference map of", v[i].label);
            break;
        }
        snprintf(name, sizeof name, "diff_%s.png", v[i].key);
        out_path(stage, name, path, sizeof path);
        rc = save_png(g, ctx, map, path);
        upres_image_free(map);
    }
    upres_image_free(base_file);
    if (rc == CLI_OK) {
        const char **labels = calloc(n + 1, sizeof *labels);
        char (*text)[200] = calloc(n + 1, sizeof *text);
        upres_image *sheet = NULL;
        if (!labels || !text) {
            rc = cli_fail("out of memory");
        } else {
            snprintf(text[0], sizeof text[0], "bicubic (baseline)");
            for (size_t i = 0; i < n; i++) {
                if (v[i].resized)
                    snprintf(text[i + 1], sizeof text[0], "%s (x%d+lanczos3)", v[i].label,
                             v[i].info.scale);
                else
                    snprintf(text[i + 1], sizeof text[0], "%s", v[i].label);
            }
            for (size_t i = 0; i <= n; i++) labels[i] = text[i];
            int st = make_sheet(ctx, rgb, labels, n + 1, &sheet);
            if (st != UPRES_OK) rc = cli_report(ctx, st, "make", "comparison.jpg");
        }
        if (rc == CLI_OK) {
            upres_encode_desc d = upres_encode_desc_defaults();
            d.format = UPRES_FORMAT_JPEG;
            out_path(stage, "comparison.jpg", path, sizeof path);
            rc = cli_save(g, ctx, sheet, path, &d);
        }
        upres_image_free(sheet);
        free(labels);
        free(text);
    }
    if (rc == CLI_OK) {
        out_path(stage, "report.md", path, sizeof path);
        rc = write_report(ctx, path, in, src, cx, cy, crop, scale, bicubic_s, v, n,
                          o->diff_scale, metrics_error);
    }
    if (rc == CLI_OK && cli_interrupted())
        rc = cli_report(NULL, UPRES_ERR_CANCELLED, "write the results into", dir);
    if (rc == CLI_OK) rc = publish(stage, dir, v, n);
    if (stage[0]) remove_stage(stage, v, n);
    if (rc != CLI_OK && made_dir) rmdir(dir);
    if (rc == CLI_OK) {
        cli_progress_clear();
        cli_note(g, "%s: %ux%u crop at (%u, %u), %zu model%s at x%d; see report.md there",
                 cli_clean(dir, p, sizeof p), cw, ch, cx, cy, n, n == 1 ? "" : "s", scale);
    }
    cli_progress_clear();
    if (rgb)
        for (size_t i = 0; i <= n; i++) upres_image_free(rgb[i]);
    free(rgb);
    for (size_t i = 0; v && i < n; i++) free(v[i].path);
    free(v);
    upres_image_free(crop);
    upres_image_free(src);
    upres_ctx_free(ctx);
    return rc;
}

int cli_compare_main(cli_global *g, int argc, char **argv)
{
    cli_args a = {argc, argv, 0, "compare", 0};
    cmp_opts o;
    memset(&o, 0, sizeof o);
    o.crop = 512;
    o.diff_scale = 64;
    const char *in = NULL;
    char buf[256];
    int exit_now;
    int rc = cli_parse_options(g, &a, compare_option, &o, &in, "want one IN", &exit_now);
    if (exit_now >= 0) rc = exit_now;
    else if (rc == CLI_OK && !in) rc = cli_usage_error(a.cmd, "missing input file IN");
    else if (rc == CLI_OK && !o.models.n)
        rc = cli_usage_error(a.cmd, "missing -m MODEL (the models to compare, e.g. -m "
                                    "realesr-animevideov3,up2x-no-denoise)");
    if (rc == CLI_OK && exit_now < 0) {
        struct stat sb;
        if (stat(in, &sb) != 0)
            rc = cli_fail("cannot read '%s': %s; check the file name",
                          cli_clean(in, buf, sizeof buf), strerror(errno));
        else if (S_ISDIR(sb.st_mode))
            rc = cli_fail("cannot read '%s': it is a folder; give an image file",
                          cli_clean(in, buf, sizeof buf));
        else
            rc = compare_run(g, &o, in);
    }
    cli_paths_free(&o.models);
    cli_paths_free(&o.model_dirs);
    return rc;
}
