/* `upres metrics A B [--json] [--y] [--shave N]`: PSNR, SSIM, CIEDE2000 and
 * max abs difference of B against A (upres_metrics_compute). */
#include "cli.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

const char cli_metrics_help[] =
    "usage: upres metrics A B [--json] [--y] [--shave N] [OPTIONS]\n"
    "\n"
    "Measures how far image B is from image A (same size; any format, 8 or 16\n"
    "bits, gray or RGB, with or without alpha). Samples are compared as values\n"
    "in [0,1] (8-bit / 255, 16-bit / 65535), so an 8-bit and a 16-bit file compare\n"
    "directly; gray counts as R = G = B.\n"
    "\n"
    "  PSNR       dB over R, G, B (\"inf\" when identical); PSNR Y' over BT.601\n"
    "             luma Y' = 0.299 R + 0.587 G + 0.114 B of the sRGB-encoded values\n"
    "  SSIM       Wang et al. 2004: Gaussian window 11x11, sigma 1.5, mean of R, G,\n"
    "             B (as skimage structural_similarity(gaussian_weights=True,\n"
    "             sigma=1.5, use_sample_covariance=False)); SSIM Y' on Y'; a\n"
    "             5-pixel border is left out; undefined below 11x11\n"
    "  CIEDE2000  per pixel, sRGB (D65) -> CIELAB: mean (\"colour drift\"), 95th\n"
    "             percentile (numpy's linear interpolation), maximum\n"
    "  max abs    largest difference of any sample, in 8-bit levels (0-255)\n"
    "\n"
    "Alpha: colour channels are compared as stored (straight alpha, not\n"
    "composited); alpha differences count only in max abs (a missing alpha\n"
    "channel counts as opaque). EXIF orientation is applied first. ICC profiles\n"
    "are ignored: both images are taken as sRGB.\n"
    "\n"
    "Options:\n"
    "      --json           one JSON object on stdout: a, b, width, height, shave,\n"
    "                       headline (\"rgb\" or \"y\"), psnr, ssim (the headline\n"
    "                       values), psnr_rgb, ssim_rgb, psnr_y, ssim_y, de_mean,\n"
    "                       de_p95, de_max, max_abs, identical; a value that is\n"
    "                       not a finite number (PSNR of identical images, SSIM\n"
    "                       below 11x11) is null\n"
    "      --y              headline PSNR and SSIM on luma Y' (as most\n"
    "                       super-resolution papers report) instead of RGB\n"
    "      --shave N        leave out N pixels at every border first (SR\n"
    "                       benchmarks shave the scale factor)\n"
    "\n"
    "Example: upres metrics original.png upscaled.png --y --shave 4\n"
    "\n";

typedef struct metrics_opts {
    const char *path_a, *path_b;
    int json, luma;
    uint32_t shave;
} metrics_opts;

/* Parses the arguments. Returns -1 to go on, else the exit code (usage
 * error printed, or 0 after --help / --version). */
static int parse(cli_global *g, int argc, char **argv, metrics_opts *o)
{
    cli_args a = {argc, argv, 0, "metrics", 0};
    int nfiles = 0;
    while (a.i < a.argc) {
        const char *arg = a.argv[a.i], *v = NULL, *op;
        int k = cli_take_operand(&a, &op);
        if (k == 1 && nfiles >= 2) {
            char buf[64];
            return cli_usage_error(a.cmd, "unexpected argument '%s'",
                                   cli_clean(op, buf, sizeof buf));
        }
        if (k == 1 && nfiles++ == 0) o->path_a = op;
        else if (k == 1) o->path_b = op;
        if (k) continue;
        int r, stop = -1;
        if ((r = cli_match(&a, "json", 0, NULL)) == CLI_MATCH) {
            o->json = 1;
        } else if (r == CLI_NOMATCH && (r = cli_match(&a, "y", 0, NULL)) == CLI_MATCH) {
            o->luma = 1;
        } else if (r == CLI_NOMATCH && (r = cli_match(&a, "shave", 0, &v)) == CLI_MATCH) {
            long n;
            if (!cli_parse_long(v, 0, 65535, &n)) {
                char buf[64];
                return cli_usage_error(a.cmd,
                                       "--shave wants a number of pixels (0-65535), not '%s'",
                                       cli_clean(v, buf, sizeof buf));
            }
            o->shave = (uint32_t)n;
        } else if (r == CLI_NOMATCH) {
            r = cli_global_option(&a, g, &stop);
            if (stop >= 0) return stop;
            if (r == CLI_NOMATCH) {
                char buf[64];
                return cli_usage_error(a.cmd, "unknown option '%s'",
                                       cli_clean(arg, buf, sizeof buf));
            }
        }
        if (r == CLI_BAD) return CLI_USAGE;
    }
    if (nfiles < 2)
        return cli_usage_error(a.cmd, nfiles ? "missing the second image (B)"
                                             : "missing the two images to compare");
    return -1;
}

/* A JSON number, or null when v is not finite (JSON has no inf/NaN). */
static void json_num(const char *key, double v)
{
    if (isfinite(v)) printf(", \"%s\": %.17g", key, v);
    else printf(", \"%s\": null", key);
}

static void print_json(const metrics_opts *o, const upres_metrics *m)
{
    fputs("{\"a\": ", stdout);
    cli_json_str(stdout, o->path_a);
    fputs(", \"b\": ", stdout);
    cli_json_str(stdout, o->path_b);
    printf(", \"width\": %u, \"height\": %u, \"shave\": %u, \"headline\": \"%s\"", m->width,
           m->height, o->shave, o->luma ? "y" : "rgb");
    json_num("psnr", o->luma ? m->psnr_y : m->psnr);
    json_num("ssim", o->luma ? m->ssim_y : m->ssim);
    json_num("psnr_rgb", m->psnr);
    json_num("ssim_rgb", m->ssim);
    json_num("psnr_y", m->psnr_y);
    json_num("ssim_y", m->ssim_y);
    json_num("de_mean", m->de_mean);
    json_num("de_p95", m->de_p95);
    json_num("de_max", m->de_max);
    json_num("max_abs", m->max_abs);
    printf(", \"identical\": %s}\n", m->max_abs == 0 ? "true" : "false");
}

static void print_psnr(const char *label, double v)
{
    if (isinf(v)) printf("%-16s inf (identical)\n", label);
    else printf("%-16s %.4f dB\n", label, v);
}

static void print_ssim(const char *label, double v)
{
    if (isnan(v)) printf("%-16s undefined (smaller than 11x11)\n", label);
    else printf("%-16s %.6f\n", label, v);
}

static void print_table(const metrics_opts *o, const upres_metrics *m)
{
    printf("%-16s %ux%u", "compared:", m->width, m->height);
    if (o->shave) printf(" (%u px shaved off each border)", o->shave);
    printf("\n");
    if (o->luma) {
        print_psnr("PSNR Y':", m->psnr_y);
        print_ssim("SSIM Y':", m->ssim_y);
        print_psnr("PSNR RGB:", m->psnr);
        print_ssim("SSIM RGB:", m->ssim);
    } else {
        print_psnr("PSNR:", m->psnr);
        print_ssim("SSIM:", m->ssim);
        print_psnr("PSNR Y':", m->psnr_y);
        print_ssim("SSIM Y':", m->ssim_y);
    }
    printf("%-16s %.4f (colour drift)\n", "CIEDE2000 mean:", m->de_mean);
    printf("%-16s %.4f\n", "CIEDE2000 p95:", m->de_p95);
    printf("%-16s %.4f\n", "CIEDE2000 max:", m->de_max);
    printf("%-16s %.4g (8-bit levels)\n", "max abs diff:", m->max_abs);
}

int cli_metrics_main(cli_global *g, int argc, char **argv)
{
    metrics_opts o;
    memset(&o, 0, sizeof o);
    int rc = parse(g, argc, argv, &o);
    if (rc >= 0) return rc;
    upres_ctx *ctx = NULL;
    rc = cli_make_ctx(g, &ctx);
    if (rc != CLI_OK) return rc;
    upres_image *a = NULL, *b = NULL;
    upres_file_info info;
    rc = cli_load(g, ctx, o.path_a, 1, &a, &info);
    if (rc == CLI_OK) rc = cli_load(g, ctx, o.path_b, 1, &b, &info);
    if (rc == CLI_OK && (a->width != b->width || a->height != b->height)) {
        char pa[512], pb[512];
        cli_progress_clear();
        rc = cli_fail("metrics: the images differ in size: '%s' is %ux%u, '%s' is %ux%u; "
                      "resize or crop one to the other's size first",
                      cli_clean(o.path_a, pa, sizeof pa), a->width, a->height,
                      cli_clean(o.path_b, pb, sizeof pb), b->width, b->height);
    }
    if (rc == CLI_OK && (2 * (uint64_t)o.shave >= a->width || 2 * (uint64_t)o.shave >= a->height)) {
        cli_progress_clear();
        rc = cli_fail("metrics: --shave %u leaves nothing of the %ux%u images; use a smaller "
                      "--shave", o.shave, a->width, a->height);
    }
    upres_metrics m;
    if (rc == CLI_OK) {
        upres_metrics_desc d = upres_metrics_desc_defaults();
        d.shave = o.shave;
        int st = upres_metrics_compute(ctx, a, b, &d, &m);
        cli_progress_clear();
        if (st) rc = cli_report(ctx, st, "compare", o.path_b);
    }
    if (rc == CLI_OK) {
        if (o.json) print_json(&o, &m);
        else print_table(&o, &m);
        if (fflush(stdout) != 0) rc = cli_fail("metrics: cannot write the output");
    }
    upres_image_free(a);
    upres_image_free(b);
    upres_ctx_free(ctx);
    return rc;
}
