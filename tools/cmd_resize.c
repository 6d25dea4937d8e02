/* `upres resize IN OUT`: resample to a size given by width, height, a box
 * with a fit mode, or scale factors. */
#include "cli.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

const char cli_resize_help[] =
    "usage: upres resize IN OUT SIZE [--filter NAME] [--fit MODE] [--linear] [OPTIONS]\n"
    "\n"
    "Resizes IN (after applying its EXIF orientation) and writes OUT in the\n"
    "format named by OUT's extension. SIZE is one of:\n"
    "      --width W        W pixels wide, height keeps the aspect ratio\n"
    "      --height H       H pixels high, width keeps the aspect ratio\n"
    "      --size WxH       a W x H box, see --fit (--width W --height H is the same)\n"
    "      --scale F        both sides times F (e.g. 4, 0.5)\n"
    "      --scale FXxFY    width times FX, height times FY (e.g. 2x1.5)\n"
    "Computed sides are rounded to the nearest pixel and are at least 1.\n"
    "\n"
    "      --fit MODE       how --size treats the aspect ratio:\n"
    "                         contain  fit inside WxH, keep the aspect (default)\n"
    "                         cover    fill WxH exactly, crop the overflow (centred)\n"
    "                         fill     stretch to exactly WxH\n"
    "      --filter NAME    lanczos3 (default), bicubic, mitchell, bilinear, box,\n"
    "                       nearest\n"
    "      --linear         filter in linear light instead of on sRGB-encoded values\n"
    "                       (truer for downscaling; default off, like most tools)\n"
    "\n"
    "Example: upres resize photo.jpg big.png --scale 4 --filter lanczos3\n"
    "\n" CLI_OUTPUT_HELP;

enum fit_mode { FIT_CONTAIN, FIT_COVER, FIT_FILL };

/* round(n * num / den) clamped to [1, UINT32_MAX]; den > 0. */
static uint32_t scale_ratio(uint32_t n, uint32_t num, uint32_t den)
{
    uint64_t p = (uint64_t)n * num;
    uint64_t q = p / den, r = p % den;
    if (2 * r >= den) q++;
    if (q < 1) q = 1;
    return q > UINT32_MAX ? UINT32_MAX : (uint32_t)q;
}

/* round(n * f) clamped to [1, UINT32_MAX]. */
static uint32_t scale_factor(uint32_t n, double f)
{
    double v = floor((double)n * f + 0.5);
    if (v < 1) return 1;
    return v >= 4294967295.0 ? UINT32_MAX : (uint32_t)v;
}

typedef struct resize_opts {
    uint32_t width, height;     /* --width / --height (0 = not given) */
    uint32_t box_w, box_h;      /* --size */
    double sx, sy;              /* --scale (0 = not given) */
    int fit, fit_set;
    int filter;
    int linear;
} resize_opts;

/* Output size and source region for an input of w0 x h0. */
static void plan(const resize_opts *o, uint32_t w0, uint32_t h0, upres_resize_desc *d)
{
    if (o->sx > 0) {
        d->width = scale_factor(w0, o->sx);
        d->height = scale_factor(h0, o->sy);
        return;
    }
    uint32_t bw = o->box_w, bh = o->box_h;
    if (!bw && o->width && o->height) bw = o->width, bh = o->height;
    if (!bw) {
        if (o->width) {
            d->width = o->width;
            d->height = scale_ratio(h0, o->width, w0);
        } else {
            d->height = o->height;
            d->width = scale_ratio(w0, o->height, h0);
        }
        return;
    }
    d->width = bw;
    d->height = bh;
    /* Compare bw/w0 with bh/h0 exactly, in integers. */
    uint64_t lhs = (uint64_t)bw * h0, rhs = (uint64_t)bh * w0;
    if (o->fit == FIT_CONTAIN) {
        if (lhs <= rhs) {
            uint32_t h = scale_ratio(h0, bw, w0);
            d->height = h < bh ? h : bh;
        } else {
            uint32_t w = scale_ratio(w0, bh, h0);
            d->width = w < bw ? w : bw;
        }
    } else if (o->fit == FIT_COVER && lhs != rhs) {
        /* Crop the source to the box's aspect, centred. */
        if (lhs > rhs) { /* box relatively wider: use full width, crop height */
            d->src_x = 0;
            d->src_w = w0;
            d->src_h = (double)w0 * bh / bw;
            d->src_y = ((double)h0 - d->src_h) / 2;
        } else {
            d->src_y = 0;
            d->src_h = h0;
            d->src_w = (double)h0 * bw / bh;
            d->src_x = ((double)w0 - d->src_w) / 2;
        }
    }
}

int cli_resize_main(cli_global *g, int argc, char **argv)
{
    cli_args a = {argc, argv, 0, "resize", 0};
    cli_output out_opts;
    cli_output_defaults(&out_opts);
    resize_opts o;
    memset(&o, 0, sizeof o);
    o.fit = FIT_CONTAIN;
    o.filter = UPRES_FILTER_LANCZOS3;
    const char *ops[2];
    int nops = 0;
    char buf[128];
    while (a.i < a.argc) {
        const char *arg = a.argv[a.i];
        if (a.only_operands || arg[0] != '-' || !arg[1]) {
            if (nops == 2) return cli_usage_error(a.cmd, "too many operands (want IN OUT)");
            ops[nops++] = arg;
            a.i++;
            continue;
        }
        if (!strcmp(arg, "--")) {
            a.only_operands = 1;
            a.i++;
            continue;
        }
        const char *v = NULL;
        long n;
        int r;
        if ((r = cli_match(&a, "width", 0, &v)) == CLI_MATCH) {
            if (!cli_parse_long(v, 1, UINT32_MAX, &n) || v[0] == '+')
                return cli_usage_error(a.cmd, "bad width '%s' (want a positive integer)",
                                       cli_clean(v, buf, sizeof buf));
            o.width = (uint32_t)n;
        } else if (r == CLI_BAD) {
            return CLI_USAGE;
        } else if ((r = cli_match(&a, "height", 0, &v)) == CLI_MATCH) {
            if (!cli_parse_long(v, 1, UINT32_MAX, &n) || v[0] == '+')
                return cli_usage_error(a.cmd, "bad height '%s' (want a positive integer)",
                                       cli_clean(v, buf, sizeof buf));
            o.height = (uint32_t)n;
        } else if (r == CLI_BAD) {
            return CLI_USAGE;
        } else if ((r = cli_match(&a, "size", 0, &v)) == CLI_MATCH) {
            if (!cli_parse_size(v, UINT32_MAX, &o.box_w, &o.box_h))
                return cli_usage_error(a.cmd, "bad size '%s' (want WxH, e.g. 1920x1080)",
                                       cli_clean(v, buf, sizeof buf));
        } else if (r == CLI_BAD) {
            return CLI_USAGE;
        } else if ((r = cli_match(&a, "scale", 0, &v)) == CLI_MATCH) {
            const char *x = strpbrk(v, "xX");
            int ok;
            if (x) {
                char left[64];
                size_t len = (size_t)(x - v);
                ok = len < sizeof left;
                if (ok) {
                    memcpy(left, v, len);
                    left[len] = 0;
                    ok = cli_parse_factor(left, &o.sx) && cli_parse_factor(x + 1, &o.sy);
                }
            } else {
                ok = cli_parse_factor(v, &o.sx);
                o.sy = o.sx;
            }
            if (!ok)
                return cli_usage_error(a.cmd, "bad scale '%s' (want F or FXxFY, e.g. 2 or 2x1.5)",
                                       cli_clean(v, buf, sizeof buf));
        } else if (r == CLI_BAD) {
            return CLI_USAGE;
        } else if ((r = cli_match(&a, "filter", 0, &v)) == CLI_MATCH) {
            int f = upres_filter_from_name(v);
            if (f < 0)
                return cli_usage_error(a.cmd, "unknown filter '%s' (lanczos3, bicubic, mitchell, "
                                              "bilinear, box, nearest)",
                                       cli_clean(v, buf, sizeof buf));
            o.filter = f;
        } else if (r == CLI_BAD) {
            return CLI_USAGE;
        } else if ((r = cli_match(&a, "fit", 0, &v)) == CLI_MATCH) {
            if (!strcmp(v, "contain")) o.fit = FIT_CONTAIN;
            else if (!strcmp(v, "cover")) o.fit = FIT_COVER;
            else if (!strcmp(v, "fill")) o.fit = FIT_FILL;
            else
                return cli_usage_error(a.cmd, "unknown fit '%s' (contain, cover, fill)",
                                       cli_clean(v, buf, sizeof buf));
            o.fit_set = 1;
        } else if (r == CLI_BAD) {
            return CLI_USAGE;
        } else if ((r = cli_match(&a, "linear", 0, NULL)) == CLI_MATCH) {
            o.linear = 1;
        } else if (r == CLI_BAD) {
            return CLI_USAGE;
        } else {
            int stop = -1;
            r = cli_output_option(&a, &out_opts);
            if (r == CLI_NOMATCH) r = cli_global_option(&a, g, &stop);
            if (r == CLI_BAD) return CLI_USAGE;
            if (stop >= 0) return stop;
            if (r == CLI_NOMATCH)
                return cli_usage_error(a.cmd, "unknown option '%s'", cli_clean(arg, buf, sizeof buf));
        }
    }
    if (nops < 2)
        return cli_usage_error(a.cmd, nops ? "missing output file (want IN OUT)"
                                           : "missing input and output files (want IN OUT)");
    int modes = (o.width || o.height) + (o.box_w != 0) + (o.sx > 0);
    if (modes == 0)
        return cli_usage_error(a.cmd, "missing the output size (--width, --height, --size or "
                                      "--scale)");
    if (modes > 1)
        return cli_usage_error(a.cmd, "give only one of --width/--height, --size, --scale");
    if (o.fit_set && !o.box_w && !(o.width && o.height))
        return cli_usage_error(a.cmd, "--fit applies to --size WxH only");

    const char *in = ops[0], *out = ops[1];
    upres_encode_desc ed;
    int rc = cli_output_desc(a.cmd, &out_opts, out, &ed);
    if (rc != CLI_OK) return rc;
    if ((rc = cli_check_paths(in, out, out_opts.force)) != CLI_OK) return rc;

    double t0 = cli_now();
    upres_ctx *ctx = NULL;
    upres_image *src = NULL, *dst = NULL;
    upres_file_info info;
    if ((rc = cli_make_ctx(g, &ctx)) != CLI_OK) return rc;
    rc = cli_load(g, ctx, in, 1, &src, &info);
    upres_resize_desc rd = upres_resize_desc_defaults();
    if (rc == CLI_OK) {
        plan(&o, src->width, src->height, &rd);
        rd.filter = (upres_filter)o.filter;
        rd.linear = o.linear;
        const upres_limits *lim = upres_ctx_limits(ctx);
        int st = upres_limits_check(lim, rd.width, rd.height, src->channels,
                                    (uint32_t)upres_depth_bytes(src->depth));
        if (st != UPRES_OK) {
            char why[96] = "";
            if (rd.width > lim->max_side || rd.height > lim->max_side)
                snprintf(why, sizeof why, " (at most %u pixels a side)", lim->max_side);
            else if ((uint64_t)rd.width * rd.height > lim->max_pixels)
                snprintf(why, sizeof why, " (at most %llu pixels; see --max-pixels)",
                         (unsigned long long)lim->max_pixels);
            rc = cli_fail("cannot resize '%s' to %ux%u: %s%s; ask for a smaller size",
                          cli_clean(in, buf, sizeof buf), rd.width, rd.height,
                          upres_strerror(st), why);
        }
    }
    if (rc == CLI_OK) {
        double t1 = cli_now();
        int st = upres_resize(ctx, src, &rd, &dst);
        if (st != UPRES_OK) {
            rc = cli_report(ctx, st, "resize", in);
        } else if (g->verbose) {
            char region[160] = "";
            if (rd.src_w > 0)
                snprintf(region, sizeof region, ", source region %.2f,%.2f %.2fx%.2f", rd.src_x,
                         rd.src_y, rd.src_w, rd.src_h);
            cli_verbose(g, "resized %ux%u -> %ux%u with %s on %s values%s, %d thread%s in %.1f ms",
                        src->width, src->height, dst->width, dst->height,
                        upres_filter_name(rd.filter), rd.linear ? "linear-light" : "encoded",
                        region, upres_ctx_threads(ctx), upres_ctx_threads(ctx) == 1 ? "" : "s",
                        (cli_now() - t1) * 1e3);
        }
    }
    if (rc == CLI_OK) rc = cli_save(g, ctx, dst, out, &ed);
    if (rc == CLI_OK) {
        char p[512];
        cli_note(g, "%s: %ux%u (from %ux%u, %s)", cli_clean(out, p, sizeof p), dst->width,
                 dst->height, src->width, src->height, upres_filter_name(rd.filter));
        cli_verbose(g, "total %.1f ms", (cli_now() - t0) * 1e3);
    }
    cli_progress_clear();
    upres_image_free(dst);
    upres_image_free(src);
    upres_ctx_free(ctx);
    return rc;
}
