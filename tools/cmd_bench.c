/* `upres bench`: times upres_upscale with a model on a generated test image
 * and reports seconds per image, megapixels per second and peak memory. */
#include "cli.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

const char cli_bench_help[] =
    "usage: upres bench [-m MODEL] [--size WxH] [--runs N] [--tile N] [--tile-pad N]\n"
    "                   [--json]\n"
    "\n"
    "Times 'upres upscale' on a generated test image (smooth gradients, hard\n"
    "edges, fine stripes and a little noise; the same pixels on every run and\n"
    "machine) held in memory, so no file is read or written. One untimed\n"
    "warm-up run comes first, then N timed runs at the model's scale (4x with\n"
    "no model). Reported: seconds per image (median, min, max), speed in\n"
    "megapixels per second of input and of output (at the median time), the\n"
    "peak resident memory of the whole process (model and images included),\n"
    "the threads and the tile size used.\n"
    "\n"
    "  -m, --model MODEL    a model file or name, as for 'upres upscale' (default:\n"
    "                       the first default model found; none: lanczos3 is\n"
    "                       timed and the report says so)\n"
    "      --model-path DIR also search DIR for model names (repeatable)\n"
    "      --size WxH       test image size (default 256x256)\n"
    "      --runs N         timed runs, 1..1000 (default 3)\n"
    "      --tile N         tile side in input pixels (default: from the memory\n"
    "                       budget, as for 'upres upscale')\n"
    "      --tile-pad N     context pixels around each tile, also mirrored in at\n"
    "                       the image borders (default: the model's); 0 times the\n"
    "                       bare network on exactly WxH\n"
    "      --json           one JSON object on stdout: model (path or null),\n"
    "                       method, arch, scale, width, height, out_width,\n"
    "                       out_height, runs, seconds_median, seconds_min,\n"
    "                       seconds_max, input_mp_per_s, output_mp_per_s,\n"
    "                       peak_rss_bytes, threads, tile (null without a\n"
    "                       model), tiles, tile_bytes, load_seconds\n"
    "\n"
    "Threads follow -j (default: one per CPU). Example:\n"
    "  upres bench -m realesr-animevideov3 --size 512x512 --runs 5\n";

#define DEFAULT_SIDE 256
#define DEFAULT_RUNS 3
#define MAX_RUNS 1000

typedef struct bench_opts {
    cli_model_job job; /* -m, --model-path, --size, --json */
    long runs;
    long tile, tile_pad; /* --tile (0 automatic), --tile-pad (-1 the model's) */
} bench_opts;

/* ---- the test image -------------------------------------------------------- */

/* Next value of a xorshift32 sequence (state nonzero). */
static uint32_t next_rand(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

/* Fills u8 RGB `img` with a deterministic scene whose features are placed in
 * units of its size: a diagonal colour gradient (banding, colour drift), a
 * disc and a bar with hard edges (ringing, jaggies), fine stripes near
 * Nyquist (aliasing) and +-6 levels of noise (grain), so networks see
 * photo-like statistics rather than a flat fill. */
static void fill_scene(upres_image *img)
{
    const double W = img->width, H = img->height, S = W < H ? W : H;
    uint32_t seed = 0x9e3779b9u;
    for (uint32_t y = 0; y < img->height; y++) {
        uint8_t *row = upres_image_row(img, y);
        for (uint32_t x = 0; x < img->width; x++) {
            double u = (x + 0.5) / W, v = (y + 0.5) / H;
            double c[3] = {0.15 + 0.7 * u, 0.2 + 0.6 * v, 0.85 - 0.5 * (u + v) / 2};
            double dx = x + 0.5 - 0.35 * W, dy = y + 0.5 - 0.4 * H;
            if (dx * dx + dy * dy < 0.04 * S * S) c[0] = 0.95, c[1] = 0.85, c[2] = 0.2;
            if (u > 0.6 && u < 0.8 && v > 0.15 && v < 0.85) c[0] = c[1] = c[2] = 0.08;
            if (v > 0.7 && v < 0.9 && u < 0.5) {
                double t = 0.5 + 0.5 * cos(2.6 * (x + 0.5));
                c[0] = c[1] = c[2] = 0.2 + 0.6 * t;
            }
            for (int k = 0; k < 3; k++) {
                double n = (double)(next_rand(&seed) % 13) - 6.0;
                double q = floor(c[k] * 255.0 + n + 0.5);
                row[3 * (size_t)x + k] = (uint8_t)(q < 0 ? 0 : q > 255 ? 255 : q);
            }
        }
    }
}

/* ---- measurements ------------------------------------------------------------ */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* ---- the command -------------------------------------------------------------- */

int cli_model_job_option(cli_args *a, cli_model_job *j)
{
    const char *v = NULL;
    char buf[128];
    int r;
    if ((r = cli_model_option(a, &j->model, &j->model_dirs)) != CLI_NOMATCH) return r;
    if ((r = cli_match(a, "size", 0, &v)) != CLI_NOMATCH) {
        if (r == CLI_MATCH && !cli_parse_size(v, 65535, &j->w, &j->h))
            return cli_usage_error(a->cmd, "bad size '%s' (want WxH, e.g. 512x512)",
                                   cli_clean(v, buf, sizeof buf)), CLI_BAD;
        return r;
    }
    if ((r = cli_match(a, "json", 0, NULL)) != CLI_NOMATCH) {
        if (r == CLI_MATCH) j->json = 1;
        return r;
    }
    return CLI_NOMATCH;
}

static int bench_option(cli_args *a, void *opts)
{
    bench_opts *o = opts;
    const char *v = NULL;
    char buf[128];
    int r;
    if ((r = cli_model_job_option(a, &o->job)) != CLI_NOMATCH) return r;
    if ((r = cli_tile_option(a, &o->tile, &o->tile_pad)) != CLI_NOMATCH) return r;
    if ((r = cli_match(a, "runs", 0, &v)) != CLI_NOMATCH) {
        if (r == CLI_MATCH && (!cli_parse_long(v, 1, MAX_RUNS, &o->runs) || v[0] == '+'))
            return cli_usage_error(a->cmd, "bad run count '%s' (want 1..%d)",
                                   cli_clean(v, buf, sizeof buf), MAX_RUNS), CLI_BAD;
        return r;
    }
    return CLI_NOMATCH;
}

/* Prints the results (times sorted ascending, n >= 1). */
static void bench_print(const bench_opts *o, upres_ctx *ctx,
                        upres_model *model, const char *model_path, const upres_image *out,
                        const double *t, long n, uint32_t tile, uint32_t tiles,
                        uint64_t tile_bytes, double load_s)
{
    upres_model_info mi;
    memset(&mi, 0, sizeof mi);
    if (model) upres_model_get_info(model, &mi);
    const double med = n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
    const double in_mp = (double)o->job.w * o->job.h / 1e6, out_mp = (double)out->width * out->height / 1e6;
    const double in_rate = med > 0 ? in_mp / med : 0, out_rate = med > 0 ? out_mp / med : 0;
    const uint64_t rss = cli_peak_rss();
    const int threads = upres_ctx_threads(ctx);
    cli_progress_clear();
    if (o->job.json) {
        fputs("{\"model\": ", stdout);
        cli_json_str(stdout, model ? model_path : NULL);
        fputs(", \"method\": ", stdout);
        cli_json_str(stdout, model ? mi.name : "lanczos3");
        fputs(", \"arch\": ", stdout);
        cli_json_str(stdout, model ? mi.arch : NULL);
        printf(", \"scale\": %.6g, \"width\": %u, \"height\": %u, \"out_width\": %u, "
               "\"out_height\": %u, \"runs\": %ld, \"seconds_median\": %.6f, "
               "\"seconds_min\": %.6f, \"seconds_max\": %.6f, \"input_mp_per_s\": %.6g, "
               "\"output_mp_per_s\": %.6g, \"peak_rss_bytes\": %llu, \"threads\": %d, "
               "\"tile\": ",
               (double)out->width / o->job.w, o->job.w, o->job.h, out->width, out->height, n, med, t[0],
               t[n - 1], in_rate, out_rate, (unsigned long long)rss, threads);
        if (model) printf("%u", tile);
        else fputs("null", stdout);
        printf(", \"tiles\": %u, \"tile_bytes\": %llu, \"load_seconds\": %.6f}\n", tiles,
               (unsigned long long)tile_bytes, load_s);
        fflush(stdout);
        return;
    }
    char name[sizeof mi.name];
    if (model)
        printf("model:   %s (%s, x%d), loaded in %.2f s\n", cli_clean(mi.name, name, sizeof name),
               mi.arch, mi.scale, load_s);
    else
        printf("model:   none found, timing lanczos3 (what 'upres upscale' falls back to)\n");
    printf("image:   %ux%u test scene -> %ux%u\n", o->job.w, o->job.h, out->width, out->height);
    if (model)
        printf("tiles:   %u of %u px (%.0f MB each), %d thread%s\n", tiles, tile,
               tile_bytes / 1048576.0, threads, threads == 1 ? "" : "s");
    else
        printf("threads: %d\n", threads);
    printf("time:    %.3f s per image (median of %ld; min %.3f, max %.3f), after 1 warm-up\n",
           med, n, t[0], t[n - 1]);
    printf("speed:   %.3g MP/s of input, %.3g MP/s of output\n", in_rate, out_rate);
    if (rss) printf("memory:  %.0f MB peak resident (whole process)\n", rss / 1048576.0);
    else printf("memory:  peak resident size unknown on this system\n");
}

int cli_bench_main(cli_global *g, int argc, char **argv)
{
    cli_args a = {argc, argv, 0, "bench", 0};
    bench_opts o;
    memset(&o, 0, sizeof o);
    o.job.w = o.job.h = DEFAULT_SIDE;
    o.runs = DEFAULT_RUNS;
    o.tile = 0;
    o.tile_pad = -1;
    int rc = CLI_OK;
    int exit_now;
    rc = cli_parse_options(g, &a, bench_option, &o, NULL, NULL, &exit_now);
    if (rc == CLI_OK && exit_now >= 0) rc = exit_now;
    if (rc != CLI_OK || exit_now >= 0) {
        cli_paths_free(&o.job.model_dirs);
        return rc;
    }

    upres_ctx *ctx = NULL;
    upres_model *model = NULL;
    char *model_path = NULL;
    upres_image *src = NULL, *dst = NULL;
    double *times = NULL;
    double load_s = 0;
    if ((rc = cli_make_ctx(g, &ctx)) != CLI_OK) goto done;
    double t0 = cli_now();
    if ((rc = cli_resolve_model(g, ctx, o.job.model, &o.job.model_dirs, 0, &model, &model_path)))
        goto done;
    load_s = cli_now() - t0;

    int st = upres_image_new(&src, o.job.w, o.job.h, 3, UPRES_U8, upres_ctx_limits(ctx));
    if (st != UPRES_OK) {
        rc = cli_fail("cannot make a %ux%u test image: %s; choose a smaller --size", o.job.w, o.job.h,
                      upres_strerror(st));
        goto done;
    }
    fill_scene(src);
    upres_upscale_desc d = upres_upscale_desc_defaults();
    /* Without a model, time what `upres upscale` does then: lanczos3 x4. */
    if (!model) d.scale = 4;
    d.tile = (uint32_t)o.tile;
    d.tile_pad = (int)o.tile_pad;
    char what[64];
    snprintf(what, sizeof what, "upscale the %ux%u test image", o.job.w, o.job.h);
    uint32_t tile = 0, tiles = 0;
    uint64_t tile_bytes = 0;
    if ((st = upres_upscale_plan(ctx, model, o.job.w, o.job.h, &d, &tile, &tiles, &tile_bytes))) {
        rc = cli_report(ctx, st, what, NULL);
        goto done;
    }
    if (!(times = malloc((size_t)o.runs * sizeof *times))) {
        rc = cli_fail("out of memory");
        goto done;
    }
    /* Run 0 is the warm-up: first-touch page faults, the graph plan and the
     * thread pool start belong to no image. */
    for (long i = 0; i <= o.runs; i++) {
        upres_image_free(dst);
        dst = NULL;
        double t1 = cli_now();
        st = upres_upscale(ctx, model, src, &d, &dst);
        double dt = cli_now() - t1;
        if (st == UPRES_OK && cli_interrupted()) st = UPRES_ERR_CANCELLED;
        if (st != UPRES_OK) {
            rc = cli_report(ctx, st, what, NULL);
            goto done;
        }
        if (i > 0) times[i - 1] = dt;
        cli_verbose(g, "%s %ld: %.3f s", i ? "run" : "warm-up", i, dt);
    }
    qsort(times, (size_t)o.runs, sizeof *times, cmp_double);
    bench_print(&o, ctx, model, model_path, dst, times, o.runs, tile, tiles, tile_bytes, load_s);

done:
    cli_progress_clear();
    free(times);
    upres_image_free(dst);
    upres_image_free(src);
    upres_model_free(model);
    free(model_path);
    upres_ctx_free(ctx);
    cli_paths_free(&o.job.model_dirs);
    return rc;
}
