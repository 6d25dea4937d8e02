/* The proxy workflow: `upres split`, `split-with-processed`, `batch-split`
 * and `merge`. File names and options follow imgproxyproc so its users feel
 * at home; options take --snake_case or --kebab-case. */
/* realpath() is XSI. */
#define _XOPEN_SOURCE 700
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char cli_split_help[] =
    "usage: upres split INPUT W H [--out-dir DIR] [--filter NAME] [--proxy-depth 8|16]\n"
    "\n"
    "Makes a low-resolution proxy of INPUT for a model that only works at low\n"
    "resolution. W and H are pixels (512) or percentages of INPUT's sides (25%).\n"
    "INPUT is scaled to fit inside W x H keeping its aspect ratio (scale =\n"
    "min(W/width, H/height)) with an antialiased lanczos3 filter. When both W\n"
    "and H are pixels, the proxy is exactly W x H with the picture centred on\n"
    "black (transparent black with alpha) bands. Writes, beside INPUT:\n"
    "  STEM_proxy.png            the proxy to give to the model\n"
    "  STEM_proxy_metadata.txt   sizes, content box, padding, SHA-256 of INPUT\n"
    "Then run your model on the proxy and use `upres split-with-processed`.\n"
    "\n"
    "      --out-dir DIR        write the files into DIR instead\n"
    "      --filter NAME        downscaling filter (default lanczos3)\n"
    "      --proxy-depth 8|16   bits per sample of the proxy (default 8)\n"
    "\n"
    "Example: upres split photo.jpg 512 512\n";

const char cli_split_processed_help[] =
    "usage: upres split-with-processed ORIGINAL PROCESSED W H [--refine]\n"
    "           [--delta_image PATH] [--depth 8|16] [--out-dir DIR] [--filter NAME]\n"
    "           [--proxy-depth 8|16]\n"
    "\n"
    "Recomputes the proxy of ORIGINAL exactly as `upres split ORIGINAL W H` does,\n"
    "and writes what the model changed as a delta image beside ORIGINAL:\n"
    "  STEM_proxy_delta.png   clip(PROCESSED - proxy + 127): mid-grey 127 = no change\n"
    "PROCESSED must have the proxy's size. The proxy and metadata are written\n"
    "again too. Then run `upres merge ORIGINAL STEM_proxy_delta.png`.\n"
    "\n"
    "      --refine             also write STEM_proxy_delta_refined.png, the part of\n"
    "                           the change the 8-bit delta clipped (changes over\n"
    "                           +128 or under -127 levels)\n"
    "      --delta_image PATH   name of the delta (the refined one goes beside it,\n"
    "                           named PATH's stem + _refined.png)\n"
    "      --depth 8|16         16: one 16-bit delta (32768 = no change, 128 per\n"
    "                           8-bit level) that never clips (default 8)\n"
    "      --out-dir DIR, --filter NAME, --proxy-depth 8|16   as for split\n"
    "\n"
    "Example: upres split-with-processed photo.jpg photo_proxy_out.png 512 512 --refine\n";

const char cli_batch_split_help[] =
    "usage: upres batch-split PATTERN... W H [--out-dir DIR] [--filter NAME]\n"
    "           [--proxy-depth 8|16]\n"
    "\n"
    "Runs `upres split` on every file matching the PATTERNs. '*', '?' and [..]\n"
    "match within a name; '**' matches any depth of folders (quote the pattern\n"
    "so the shell leaves it alone: 'photos/**/*.jpg'). Files that are not\n"
    "readable images are skipped with a warning, as are upres's own proxy and\n"
    "delta files; a summary line ends the run. With --out-dir, the folder\n"
    "structure below the pattern's fixed part is recreated inside DIR.\n"
    "Exit status 1 when a proxy could not be written or nothing matched.\n"
    "\n"
    "Example: upres batch-split 'scans/**/*.tif' 25% 25% --out-dir proxies\n";

const char cli_merge_help[] =
    "usage: upres merge ORIGINAL DELTA [--method auto|guided|delta] [--residual]\n"
    "           [--grid-cell N] [--grid-bins N] [--smoothness S]\n"
    "           [--refined_delta_image PATH]\n"
    "           [--upscale_method M] [--refined_upscale_method M]\n"
    "           [--output_image PATH] [--metadata PATH] [--cmd-timeout S]\n"
    "           [--out-dir DIR] [--force] [OUTPUT OPTIONS]\n"
    "\n"
    "Carries the change a model made to the proxy back into the full-resolution\n"
    "ORIGINAL. ORIGINAL is read and the result written in strips, so memory\n"
    "stays small for huge PNG, JPEG and TIFF originals. 16-bit originals stay\n"
    "16-bit. The output is STEM_merged.png beside ORIGINAL unless given.\n"
    "\n"
    "Methods:\n"
    "  delta   the delta's padding is cropped, the delta is upscaled to\n"
    "          ORIGINAL's size and added (imgproxyproc's merge). Carries what\n"
    "          the model changed at the proxy's scale only: a colour or\n"
    "          contrast change does not reach finer detail. Alpha changes are\n"
    "          carried.\n"
    "  guided  bilateral guided upsampling: the proxy is recomputed from\n"
    "          ORIGINAL as split made it (filter and depth from the metadata),\n"
    "          the processed proxy is proxy + delta (+ refined delta), and a\n"
    "          grid over (x, y, luma) of 3x4 affine colour transforms is fitted\n"
    "          to map one to the other (least squares; the padding is left out;\n"
    "          clipped samples are released where the fit goes past the clip).\n"
    "          Every pixel of ORIGINAL gets the transform at its place and luma,\n"
    "          so tone curves, grades and local contrast reach full detail.\n"
    "          Alpha passes through untouched. Reads ORIGINAL twice.\n"
    "  auto    (default) chooses per image among delta, guided and guided +\n"
    "          residual without ground truth: the proxy pair is halved and each\n"
    "          method predicts the processed proxy from the proxy using the\n"
    "          halves. The guided variant with the higher PSNR wins, unless\n"
    "          delta predicts exactly (nothing changed) or more than 0.5 dB\n"
    "          better: this 2x rehearsal understates the grid's gain at the\n"
    "          original's larger scale. -v prints the scores. Auto is delta\n"
    "          when the delta changes alpha, and with cmd(...) upscaling.\n"
    "An 8-bit delta holds changes of -127..+128 levels: larger ones are clipped,\n"
    "so guided fits the clipped processed proxy, as delta adds the clipped\n"
    "change; with --refined_delta_image (split-with-processed --refine) both\n"
    "get the whole change. A 16-bit delta (--depth 16) is exact.\n"
    "\n"
    "      --method M           auto (default), guided or delta\n"
    "      --residual           guided: also add what the grid missed at the\n"
    "                           proxy's scale, upscaled like a delta (helps\n"
    "                           sharpening and local edits)\n"
    "      --grid-cell N        guided: proxy pixels per grid cell side (16)\n"
    "      --grid-bins N        guided: luma cells, 1-64 (8)\n"
    "      --smoothness S       guided: how strongly neighbouring cells agree,\n"
    "                           0-1000 (1); higher is smoother, lower follows\n"
    "                           local edits more closely\n"
    "      --refined_delta_image PATH   also apply a refined delta (from --refine)\n"
    "      --upscale_method M   how the delta (guided: the residual) is upscaled:\n"
    "                           lanczos3 (default;\n"
    "                           'basic' is the same), bicubic, mitchell, bilinear,\n"
    "                           box, nearest, or \"cmd(PROGRAM ARGS...)\" to run an\n"
    "                           external upscaler: %i and %o in ARGS name its input\n"
    "                           and output files (e.g. \"cmd(realesrgan-ncnn-vulkan\n"
    "                           -i %i -o %o -s 4)\"); it runs without a shell, its\n"
    "                           result is resized to the exact size needed\n"
    "      --refined_upscale_method M   for the refined delta (default: as above)\n"
    "      --cmd-timeout S      kill an external upscaler after S seconds (600)\n"
    "      --output_image PATH  where to write the result\n"
    "      --metadata PATH      the split's metadata (default: STEM_proxy_metadata.txt\n"
    "                           beside ORIGINAL or beside DELTA; without one the\n"
    "                           proxy is assumed fitted and centred like split's)\n"
    "      --out-dir DIR        write STEM_merged.png into DIR\n"
    "\n"
    "Example: upres merge photo.jpg photo_proxy_delta.png --refined_delta_image "
    "photo_proxy_delta_refined.png\n"
    "\n"
    "Output options (the format comes from the output's extension):\n"
    "      --quality Q      JPEG and lossy WebP quality, 1-100 (default 95)\n"
    "      --compression N  PNG zlib level, 0-9 (default 6)\n"
    "      --lossless       WebP: lossless encoding\n"
    "      --depth D        8 or 16 bits (PNG, TIFF), 32 float TIFF; default:\n"
    "                       ORIGINAL's\n"
    "      --no-icc         do not store the ICC colour profile\n"
    "      --force          allow the output to replace ORIGINAL or DELTA\n";

/* ---- small path helpers ------------------------------------------------- */

/* Folder part of `path` ("." when none) into out. */
static void dir_of(const char *path, char *out, size_t cap)
{
    const char *slash = strrchr(path, '/');
    if (!slash) {
        snprintf(out, cap, ".");
    } else if (slash == path) {
        snprintf(out, cap, "/");
    } else {
        snprintf(out, cap, "%.*s", (int)(slash - path), path);
    }
}

/* File name without folder and without its last extension. */
static void stem_of(const char *path, char *out, size_t cap)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    size_t n = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    snprintf(out, cap, "%.*s", (int)n, base);
}

/* dir + "/" + stem + suffix; 0 when too long. */
static int make_name(char *out, size_t cap, const char *dir, const char *stem, const char *suffix)
{
    int n = !strcmp(dir, "/") ? snprintf(out, cap, "/%s%s", stem, suffix)
                              : snprintf(out, cap, "%s/%s%s", dir, stem, suffix);
    return n >= 0 && (size_t)n < cap;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

/* Checks that `dir` exists, is a folder and is writable. */
static int check_out_dir(const char *dir)
{
    char d[512];
    struct stat sb;
    if (stat(dir, &sb) != 0)
        return cli_fail("cannot write into '%s': %s; create the folder or choose another one",
                        cli_clean(dir, d, sizeof d), strerror(errno));
    if (!S_ISDIR(sb.st_mode))
        return cli_fail("cannot write into '%s': not a folder; choose an output folder",
                        cli_clean(dir, d, sizeof d));
    if (access(dir, W_OK | X_OK) != 0)
        return cli_fail("cannot write into '%s': %s; choose a writable folder (--out-dir)",
                        cli_clean(dir, d, sizeof d), strerror(errno));
    return CLI_OK;
}

/* Fails with one line when `path` does not exist or is not a file. */
static int check_input(const char *path, const char *role)
{
    char p[512];
    struct stat sb;
    if (stat(path, &sb) != 0)
        return cli_fail("cannot read %s '%s': %s; check the file name", role,
                        cli_clean(path, p, sizeof p), strerror(errno));
    if (S_ISDIR(sb.st_mode))
        return cli_fail("cannot read %s '%s': it is a folder; give an image file", role,
                        cli_clean(path, p, sizeof p));
    return CLI_OK;
}

/* "512" or "25%" / "12.5%". */
static int parse_dim(const char *s, upres_proxy_dim *d)
{
    size_t n = strlen(s);
    if (n == 0) return 0;
    if (s[n - 1] == '%') {
        char num[64];
        if (n - 1 >= sizeof num || n == 1) return 0;
        memcpy(num, s, n - 1);
        num[n - 1] = 0;
        if (!cli_parse_factor(num, &d->value) || d->value > 10000) return 0;
        d->percent = 1;
        return 1;
    }
    long v;
    if (!cli_parse_long(s, 1, 65535, &v) || s[0] == '+') return 0;
    d->value = (double)v;
    d->percent = 0;
    return 1;
}

/* ---- options shared by the split commands -------------------------------- */

typedef struct split_opts {
    const char *out_dir;
    int filter;
    int proxy_depth;      /* 8 or 16 */
    /* split-with-processed */
    int refine;
    const char *delta_path;
    int delta_depth;      /* 8 or 16 */
} split_opts;

/* Matches one split option; `with_delta` enables the delta options. */
static int split_option(cli_args *a, split_opts *o, int with_delta)
{
    const char *v;
    char buf[128];
    int r;
    long n;
    if ((r = cli_match(a, "out-dir", 0, &v)) == CLI_MATCH) {
        o->out_dir = v;
        return r;
    }
    if (r) return r;
    if ((r = cli_match(a, "filter", 0, &v)) == CLI_MATCH) {
        o->filter = upres_filter_from_name(v);
        if (o->filter < 0)
            return cli_usage_error(a->cmd, "unknown filter '%s' (lanczos3, bicubic, mitchell, "
                                           "bilinear, box, nearest)", cli_clean(v, buf, sizeof buf)),
                   CLI_BAD;
        return r;
    }
    if (r) return r;
    if ((r = cli_match(a, "proxy-depth", 0, &v)) == CLI_MATCH) {
        if (!cli_parse_long(v, 8, 16, &n) || (n != 8 && n != 16))
            return cli_usage_error(a->cmd, "bad --proxy-depth '%s' (8 or 16)", cli_clean(v, buf, sizeof buf)),
                   CLI_BAD;
        o->proxy_depth = (int)n;
        return r;
    }
    if (r || !with_delta) return r;
    if ((r = cli_match(a, "refine", 0, NULL)) == CLI_MATCH) {
        o->refine = 1;
        return r;
    }
    if (r) return r;
    if ((r = cli_match(a, "delta-image", 0, &v)) == CLI_MATCH) {
        o->delta_path = v;
        return r;
    }
    if (r) return r;
    if ((r = cli_match(a, "depth", 0, &v)) == CLI_MATCH) {
        if (!cli_parse_long(v, 8, 16, &n) || (n != 8 && n != 16))
            return cli_usage_error(a->cmd, "bad --depth '%s' (8 or 16)", cli_clean(v, buf, sizeof buf)),
                   CLI_BAD;
        o->delta_depth = (int)n;
        return r;
    }
    return r;
}

/* Parses a split command line: options anywhere, operands into ops (at most
 * max). Returns CLI_OK or an exit code. */
static int parse_split_args(cli_global *g, cli_args *a, split_opts *o, int with_delta,
                            const char **ops, int max, int *nops)
{
    memset(o, 0, sizeof *o);
    o->filter = UPRES_FILTER_LANCZOS3;
    o->proxy_depth = 8;
    o->delta_depth = 8;
    *nops = 0;
    char buf[128];
    while (a->i < a->argc) {
        const char *arg = a->argv[a->i];
        if (a->only_operands || arg[0] != '-' || !arg[1]) {
            if (*nops == max) return cli_usage_error(a->cmd, "too many operands");
            ops[(*nops)++] = arg;
            a->i++;
            continue;
        }
        if (!strcmp(arg, "--")) {
            a->only_operands = 1;
            a->i++;
            continue;
        }
        int r = split_option(a, o, with_delta);
        int stop = -1;
        if (r == CLI_NOMATCH) r = cli_global_option(a, g, &stop);
        if (r == CLI_BAD) return CLI_USAGE;
        if (stop >= 0) return stop;
        if (r == CLI_NOMATCH)
            return cli_usage_error(a->cmd, "unknown option '%s'", cli_clean(arg, buf, sizeof buf));
    }
    if (o->refine && o->delta_depth == 16)
        return cli_usage_error(a->cmd, "--refine goes with the 8-bit delta; the 16-bit delta "
                                       "(--depth 16) never clips and needs no refinement");
    return CLI_OK;
}

static int parse_dims(const char *cmd, const char *w, const char *h, upres_proxy_dim *dw,
                      upres_proxy_dim *dh)
{
    char b1[64], b2[64];
    if (!parse_dim(w, dw) || !parse_dim(h, dh))
        return cli_usage_error(cmd, "bad size '%s' '%s' (want pixels 1-65535, e.g. 512, or a "
                                    "percentage, e.g. 25%%)",
                               cli_clean(w, b1, sizeof b1), cli_clean(h, b2, sizeof b2));
    return CLI_OK;
}

/* ---- the split itself ------------------------------------------------------ */

/* Output names of one split. */
typedef struct split_names {
    char dir[PATH_MAX];
    char stem[NAME_MAX + 1];
    char proxy[PATH_MAX + 64];
    char meta[PATH_MAX + 64];
    char delta[PATH_MAX + 64];
    char refined[PATH_MAX + 64];
} split_names;

static int plan_names(const char *input, const char *out_dir, const split_opts *o,
                      split_names *n)
{
    char p[512];
    if (out_dir)
        snprintf(n->dir, sizeof n->dir, "%s", out_dir);
    else
        dir_of(input, n->dir, sizeof n->dir);
    stem_of(input, n->stem, sizeof n->stem);
    int ok = make_name(n->proxy, sizeof n->proxy, n->dir, n->stem, "_proxy.png") &&
             make_name(n->meta, sizeof n->meta, n->dir, n->stem, "_proxy_metadata.txt");
    if (ok && o->delta_path) {
        ok = (size_t)snprintf(n->delta, sizeof n->delta, "%s", o->delta_path) < sizeof n->delta;
        char ddir[PATH_MAX], dstem[NAME_MAX + 1];
        dir_of(o->delta_path, ddir, sizeof ddir);
        stem_of(o->delta_path, dstem, sizeof dstem);
        ok = ok && make_name(n->refined, sizeof n->refined, ddir, dstem, "_refined.png");
    } else if (ok) {
        ok = make_name(n->delta, sizeof n->delta, n->dir, n->stem, "_proxy_delta.png") &&
             make_name(n->refined, sizeof n->refined, n->dir, n->stem,
                       "_proxy_delta_refined.png");
    }
    if (!ok) return cli_fail("cannot name the outputs of '%s': path too long", cli_clean(input, p, sizeof p));
    return CLI_OK;
}

/* Writes the outputs of one split as a group: each to a temporary name in
 * its folder first, then all renamed into place, so a failure (disk full,
 * a name too long, Ctrl-C) leaves none of them and keeps older files. Entry
 * 1 is the metadata, the others images (NULL entries are skipped). */
static int write_outputs(upres_ctx *ctx, const upres_image *const *imgs,
                         const upres_proxy_metadata *meta, const char *const *paths, int n)
{
    char tmp[4][PATH_MAX + 96];
    int made = 0, rc = CLI_OK;
    char p[512];
    for (int i = 0; i < n && rc == CLI_OK; i++) {
        if (!paths[i]) continue;
        for (int j = 0; j < i; j++)
            if (paths[j] && !strcmp(paths[i], paths[j]))
                rc = cli_fail("two outputs would be named '%s'; choose another --delta_image",
                              cli_clean(paths[i], p, sizeof p));
    }
    for (int i = 0; i < n && rc == CLI_OK; i++) {
        if (!paths[i]) continue;
        snprintf(tmp[i], sizeof tmp[i], "%s.upres-part", paths[i]);
        void *buf = NULL;
        size_t size = 0;
        int st;
        if (i == 1) {
            char *text = NULL;
            st = upres_proxy_metadata_format(meta, &text, &size);
            buf = text;
        } else {
            upres_encode_desc ed = upres_encode_desc_defaults();
            ed.format = UPRES_FORMAT_PNG;
            char status[600];
            snprintf(status, sizeof status, "writing '%s'", cli_clean(paths[i], p, sizeof p));
            cli_progress_status(status, 0);
            st = upres_encode(ctx, imgs[i], &ed, &buf, &size);
        }
        if (st == UPRES_OK && cli_interrupted()) st = UPRES_ERR_CANCELLED;
        if (st == UPRES_OK) st = upres_write_file_atomic(ctx, tmp[i], buf, size);
        free(buf);
        if (st != UPRES_OK) {
            rc = cli_report(ctx, st, "write", paths[i]);
            break;
        }
        made |= 1 << i;
    }
    for (int i = 0; i < n && rc == CLI_OK; i++)
        if (made & (1 << i)) {
            if (rename(tmp[i], paths[i]) != 0) {
                rc = cli_fail("cannot write '%s': %s; check the folder", cli_clean(paths[i], p, sizeof p),
                              strerror(errno));
                break;
            }
            made &= ~(1 << i);
        }
    for (int i = 0; i < n; i++)
        if (made & (1 << i)) unlink(tmp[i]);
    return rc;
}

/* Splits `input`; with `processed`, also writes the delta(s). `quiet_load`
 * makes read failures of INPUT return CLI_USAGE+1 (batch: "skip") after
 * printing a warning instead of an error. */
enum { SPLIT_SKIPPED = 100 };

static int split_one(cli_global *g, upres_ctx *ctx, const char *input, const char *processed,
                     upres_proxy_dim dw, upres_proxy_dim dh, const split_opts *o,
                     const char *out_dir, int batch)
{
    char p[512], q[512];
    split_names names;
    int rc = plan_names(input, out_dir ? out_dir : o->out_dir, o, &names);
    if (rc) return rc;
    if (!batch && (rc = check_input(input, "the original")) != CLI_OK) return rc;
    if (processed && (rc = check_input(processed, "the processed image")) != CLI_OK) return rc;
    if ((rc = check_out_dir(names.dir)) != CLI_OK) return rc;
    const char *outs[4] = {names.proxy, names.meta, processed ? names.delta : NULL,
                           processed && o->refine ? names.refined : NULL};
    for (int i = 0; i < 4; i++) {
        if (!outs[i]) continue;
        if ((rc = cli_check_paths(input, outs[i], 0)) != CLI_OK) return rc;
        if (processed && (rc = cli_check_paths(processed, outs[i], 0)) != CLI_OK) return rc;
    }
    if (processed && o->delta_path) {
        char ddir[PATH_MAX];
        dir_of(o->delta_path, ddir, sizeof ddir);
        if ((rc = check_out_dir(ddir)) != CLI_OK) return rc;
    }

    upres_image *orig = NULL, *proxy = NULL, *proc = NULL, *delta = NULL, *refined = NULL;
    upres_file_info info;
    if (batch) {
        /* In a batch a file that is not an image is skipped, not fatal. */
        upres_decode_desc dd = upres_decode_desc_defaults();
        int st = upres_load(ctx, input, &dd, &orig, &info);
        if (st == UPRES_OK && cli_interrupted()) {
            upres_image_free(orig);
            return cli_report(ctx, UPRES_ERR_CANCELLED, "read", input);
        }
        if (st != UPRES_OK) {
            char d[300];
            cli_progress_clear();
            fprintf(stderr, "upres: warning: skipped '%s': %s (%s)\n", cli_clean(input, p, sizeof p),
                    upres_strerror(st), cli_clean(upres_ctx_error(ctx), d, sizeof d));
            return SPLIT_SKIPPED;
        }
    } else if ((rc = cli_load(g, ctx, input, 1, &orig, &info)) != CLI_OK) {
        return rc;
    }

    upres_proxy_geometry geom;
    int st = upres_proxy_plan(orig->width, orig->height, dw, dh, &geom);
    if (st) {
        upres_image_free(orig);
        return cli_fail("cannot plan a proxy of '%s' (%ux%u): the size rounds to %s; choose a "
                        "larger size", cli_clean(input, p, sizeof p), orig->width, orig->height,
                        st == UPRES_ERR_LIMIT ? "more than 65535 pixels" : "0 pixels");
    }
    {
        uint64_t bytes = (uint64_t)orig->width * orig->height * orig->channels *
                         upres_depth_bytes(orig->depth);
        uint64_t pbytes = (uint64_t)geom.proxy_width * geom.proxy_height * orig->channels * 4;
        cli_check_memory(g, bytes + 2 * pbytes, "the split");
        rc = cli_check_disk(names.dir, pbytes * (processed ? 3 : 1) + 65536, "the proxy");
    }
    if (rc == CLI_OK) {
        st = upres_proxy_make(ctx, orig, &geom, (upres_filter)o->filter,
                              o->proxy_depth == 16 ? UPRES_U16 : UPRES_U8, &proxy);
        if (st) rc = cli_report(ctx, st, "make the proxy of", input);
    }
    if (rc == CLI_OK && processed) {
        rc = cli_load(g, ctx, processed, 1, &proc, NULL);
        if (rc == CLI_OK) {
            st = upres_proxy_delta(ctx, proxy, proc, o->delta_depth, &delta,
                                   o->refine ? &refined : NULL);
            if (st == UPRES_ERR_INVALID_ARG && (proc->width != proxy->width ||
                                                proc->height != proxy->height))
                rc = cli_fail("cannot compute the delta: Proxy and processed images must have "
                              "same size (proxy %ux%u, processed '%s' %ux%u); resize the model's "
                              "output to %ux%u first",
                              proxy->width, proxy->height, cli_clean(processed, q, sizeof q),
                              proc->width, proc->height, proxy->width, proxy->height);
            else if (st)
                rc = cli_report(ctx, st, "compute the delta of", processed);
        }
    }
    /* Everything is computed before anything is written: a failure above
     * leaves no outputs. */
    upres_proxy_metadata meta;
    if (rc == CLI_OK) {
        memset(&meta, 0, sizeof meta);
        meta.format_version = UPRES_PROXY_METADATA_VERSION;
        char real[PATH_MAX];
        snprintf(meta.original_path, sizeof meta.original_path, "%s",
                 realpath(input, real) ? real : input);
        st = upres_sha256_file(ctx, input, meta.original_sha256, &meta.original_bytes);
        if (st) rc = cli_report(ctx, st, "read", input);
        meta.original_channels = orig->channels;
        meta.original_depth = orig->depth == UPRES_U8 ? 8 : orig->depth == UPRES_U16 ? 16 : 32;
        meta.proxy_depth = o->proxy_depth;
        meta.filter = (upres_filter)o->filter;
        meta.geom = geom;
    }
    if (rc == CLI_OK) {
        char real[PATH_MAX];
        /* The proxy's final name exists after the commit below; its folder
         * does now. */
        char pdir[PATH_MAX];
        snprintf(meta.proxy_path, sizeof meta.proxy_path, "%s", names.proxy);
        if (realpath(names.dir, pdir)) {
            snprintf(real, sizeof real, "%s/%s_proxy.png", pdir, names.stem);
            snprintf(meta.proxy_path, sizeof meta.proxy_path, "%s", real);
        }
        const upres_image *imgs[4] = {proxy, NULL, delta, refined};
        const char *paths[4] = {names.proxy, names.meta, delta ? names.delta : NULL,
                                refined ? names.refined : NULL};
        rc = write_outputs(ctx, imgs, &meta, paths, 4);
    }
    if (rc == CLI_OK) {
        cli_note(g, "%s: %ux%u proxy of %ux%u '%s' (content %ux%u at %u,%u)",
                 cli_clean(names.proxy, p, sizeof p), geom.proxy_width, geom.proxy_height,
                 geom.original_width, geom.original_height, cli_clean(input, q, sizeof q),
                 geom.content_width, geom.content_height, geom.content_x, geom.content_y);
        if (delta)
            cli_note(g, "%s: %d-bit delta%s", cli_clean(names.delta, p, sizeof p),
                     o->delta_depth, refined ? " (and the refined delta beside it)" : "");
        if (!processed && !batch)
            cli_note(g, "next: run your model on the proxy, then: upres split-with-processed "
                        "ORIGINAL PROCESSED W H");
    }
    upres_image_free(orig);
    upres_image_free(proxy);
    upres_image_free(proc);
    upres_image_free(delta);
    upres_image_free(refined);
    return rc;
}

int cli_split_main(cli_global *g, int argc, char **argv)
{
    cli_args a = {argc, argv, 0, "split", 0};
    split_opts o;
    const char *ops[3];
    int nops;
    int rc = parse_split_args(g, &a, &o, 0, ops, 3, &nops);
    if (rc != CLI_OK) return rc;
    if (nops != 3) return cli_usage_error(a.cmd, "want INPUT W H");
    upres_proxy_dim dw, dh;
    if ((rc = parse_dims(a.cmd, ops[1], ops[2], &dw, &dh)) != CLI_OK) return rc;
    upres_ctx *ctx = NULL;
    if ((rc = cli_make_ctx(g, &ctx)) != CLI_OK) return rc;
    rc = split_one(g, ctx, ops[0], NULL, dw, dh, &o, NULL, 0);
    cli_progress_clear();
    upres_ctx_free(ctx);
    return rc;
}

int cli_split_processed_main(cli_global *g, int argc, char **argv)
{
    cli_args a = {argc, argv, 0, "split-with-processed", 0};
    split_opts o;
    const char *ops[4];
    int nops;
    int rc = parse_split_args(g, &a, &o, 1, ops, 4, &nops);
    if (rc != CLI_OK) return rc;
    if (nops != 4) return cli_usage_error(a.cmd, "want ORIGINAL PROCESSED W H");
    upres_proxy_dim dw, dh;
    if ((rc = parse_dims(a.cmd, ops[2], ops[3], &dw, &dh)) != CLI_OK) return rc;
    upres_ctx *ctx = NULL;
    if ((rc = cli_make_ctx(g, &ctx)) != CLI_OK) return rc;
    rc = split_one(g, ctx, ops[0], ops[1], dw, dh, &o, NULL, 0);
    cli_progress_clear();
    upres_ctx_free(ctx);
    return rc;
}

/* ---- batch-split ----------------------------------------------------------- */

static int is_own_output(const char *path)
{
    char stem[NAME_MAX + 1];
    stem_of(path, stem, sizeof stem);
    return ends_with(stem, "_proxy") || ends_with(stem, "_proxy_delta") ||
           ends_with(stem, "_proxy_delta_refined") || ends_with(path, "_proxy_metadata.txt");
}

/* mkdir -p of `dir` (mode 0777 & umask). */
static int make_dirs(const char *dir)
{
    char tmp[PATH_MAX];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s", dir) >= sizeof tmp) return 0;
    for (char *s = tmp + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        if (mkdir(tmp, 0777) != 0 && errno != EEXIST) return 0;
        *s = '/';
    }
    return mkdir(tmp, 0777) == 0 || errno == EEXIST;
}

int cli_batch_split_main(cli_global *g, int argc, char **argv)
{
    cli_args a = {argc, argv, 0, "batch-split", 0};
    split_opts o;
    const char **ops = calloc((size_t)argc + 1, sizeof *ops);
    if (!ops) return cli_fail("out of memory");
    int nops, rc = parse_split_args(g, &a, &o, 0, ops, argc, &nops);
    if (rc == CLI_OK && nops < 3) rc = cli_usage_error(a.cmd, "want PATTERN... W H");
    upres_proxy_dim dw, dh;
    if (rc == CLI_OK) rc = parse_dims(a.cmd, ops[nops - 2], ops[nops - 1], &dw, &dh);
    if (rc == CLI_OK && o.out_dir) rc = check_out_dir(o.out_dir);
    cli_paths files = {0};
    /* Where each file's proxy goes, to catch two inputs with one output. */
    char **roots = NULL;
    if (rc == CLI_OK) {
        roots = calloc((size_t)nops, sizeof *roots);
        if (!roots) rc = cli_fail("out of memory");
    }
    size_t *owner = NULL;
    for (int i = 0; rc == CLI_OK && i < nops - 2; i++) {
        size_t before = files.n;
        char root[PATH_MAX];
        if (!cli_expand_pattern(ops[i], &files, root, sizeof root)) rc = cli_fail("out of memory");
        roots[i] = strdup(root);
        size_t *no = realloc(owner, (files.n ? files.n : 1) * sizeof *owner);
        if (!no || !roots[i]) {
            rc = cli_fail("out of memory");
            break;
        }
        owner = no;
        for (size_t k = before; k < files.n; k++) owner[k] = (size_t)i;
    }
    if (rc == CLI_OK && files.n == 0) {
        char p[512];
        rc = cli_fail("no files match '%s'%s; check the pattern (quote it so the shell does "
                      "not expand it)", cli_clean(ops[0], p, sizeof p), nops > 3 ? " or the others" : "");
    }
    upres_ctx *ctx = NULL;
    if (rc == CLI_OK) rc = cli_make_ctx(g, &ctx);
    size_t done = 0, skipped = 0, failed = 0;
    cli_paths written = {0};
    for (size_t k = 0; rc == CLI_OK && k < files.n; k++) {
        const char *f = files.v[k];
        char p[512], buf[512];
        cli_progress_cb(NULL, "batch", k, files.n);
        if (cli_interrupted()) {
            rc = cli_report(ctx, UPRES_ERR_CANCELLED, "finish the batch at", f);
            break;
        }
        if (is_own_output(f)) {
            cli_verbose(g, "skipped '%s': an upres proxy output", cli_clean(f, p, sizeof p));
            skipped++;
            continue;
        }
        char out_dir[PATH_MAX] = "";
        if (o.out_dir) {
            /* Recreate the folders below the pattern's fixed part, so equal
             * names in different folders do not collide. */
            const char *root = roots[owner[k]];
            size_t rl = strlen(root);
            const char *rel = !strcmp(root, ".") ? f
                              : !strcmp(root, "/") ? f + 1
                              : (!strncmp(f, root, rl) && f[rl] == '/') ? f + rl + 1 : NULL;
            /* Never write outside DIR ("..", absolute). */
            int escapes = !rel || rel[0] == '/' || !strncmp(rel, "../", 3) || strstr(rel, "/../");
            if (escapes) {
                cli_progress_clear();
                fprintf(stderr, "upres: cannot place the proxy of '%s' inside '%s'; use a "
                                "pattern without '..'\n",
                        cli_clean(f, p, sizeof p), cli_clean(o.out_dir, buf, sizeof buf));
                failed++;
                continue;
            }
            char rdir[PATH_MAX];
            dir_of(rel, rdir, sizeof rdir);
            if (!strcmp(rdir, "."))
                snprintf(out_dir, sizeof out_dir, "%s", o.out_dir);
            else
                snprintf(out_dir, sizeof out_dir, "%s/%s", o.out_dir, rdir);
            if (!make_dirs(out_dir)) {
                cli_progress_clear();
                fprintf(stderr, "upres: cannot create folder '%s': %s\n",
                        cli_clean(out_dir, p, sizeof p), strerror(errno));
                failed++;
                continue;
            }
        }
        split_names nm;
        if (plan_names(f, out_dir[0] ? out_dir : NULL, &o, &nm) != CLI_OK) {
            failed++;
            continue;
        }
        int dup = 0;
        for (size_t w = 0; w < written.n && !dup; w++) dup = !strcmp(written.v[w], nm.proxy);
        if (dup) {
            char q[512];
            cli_progress_clear();
            fprintf(stderr, "upres: warning: skipped '%s': '%s' was already written from another "
                            "file of this batch; split it on its own with --out-dir\n",
                    cli_clean(f, p, sizeof p), cli_clean(nm.proxy, q, sizeof q));
            skipped++;
            continue;
        }
        int r = split_one(g, ctx, f, NULL, dw, dh, &o, out_dir[0] ? out_dir : NULL, 1);
        if (r == SPLIT_SKIPPED) {
            skipped++;
        } else if (r != CLI_OK) {
            failed++;
            if (cli_interrupted()) rc = CLI_FAIL;
        } else {
            done++;
            if (!cli_paths_add(&written, nm.proxy)) rc = cli_fail("out of memory");
        }
    }
    if (ctx) {
        cli_progress_cb(NULL, "batch", files.n, files.n);
        cli_progress_clear();
        if (rc == CLI_OK || done + skipped + failed > 0)
            printf("batch-split: %zu proxies written, %zu skipped, %zu failed (of %zu files)\n",
                   done, skipped, failed, files.n);
        if (rc == CLI_OK && failed) rc = CLI_FAIL;
    }
    upres_ctx_free(ctx);
    cli_paths_free(&files);
    cli_paths_free(&written);
    if (roots)
        for (int i = 0; i < nops; i++) free(roots[i]);
    free(roots);
    free(owner);
    free(ops);
    return rc;
}

/* ---- merge ----------------------------------------------------------------- */

/* Parses an --upscale_method value. */
static int parse_method(const char *cmd, const char *v, upres_delta_upscale *u, char **owned)
{
    char buf[160];
    size_t n = strlen(v);
    if (n >= 4 && !strncmp(v, "cmd(", 4)) {
        if (v[n - 1] != ')')
            return cli_usage_error(cmd, "external upscale method '%s' must end with ')'",
                                   cli_clean(v, buf, sizeof buf));
        free(*owned);
        *owned = malloc(n - 4);
        if (!*owned) return cli_fail("out of memory");
        memcpy(*owned, v + 4, n - 5);
        (*owned)[n - 5] = 0;
        if (!strstr(*owned, "%i") || !strstr(*owned, "%o"))
            return cli_usage_error(cmd, "external upscale method '%s' needs %%i (input file) and "
                                        "%%o (output file), e.g. \"cmd(tool -i %%i -o %%o)\"",
                                   cli_clean(v, buf, sizeof buf));
        u->command = *owned;
        return CLI_OK;
    }
    int f = !strcmp(v, "basic") ? UPRES_FILTER_LANCZOS3 : upres_filter_from_name(v);
    if (f < 0)
        return cli_usage_error(cmd, "unknown upscale method '%s' (lanczos3, basic, bicubic, "
                                    "mitchell, bilinear, box, nearest, or \"cmd(PROGRAM %%i "
                                    "%%o)\")", cli_clean(v, buf, sizeof buf));
    u->filter = (upres_filter)f;
    u->command = NULL;
    return CLI_OK;
}

/* Finds the metadata of a merge: the explicit path, or STEM_proxy_metadata.txt
 * beside the original or the delta. Sets *found = 0 when there is none. */
static int find_metadata(upres_ctx *ctx, const char *explicit_path, const char *original,
                         const char *delta, upres_proxy_metadata *m, char *used, size_t cap,
                         int *found)
{
    char p[512];
    *found = 0;
    if (explicit_path) {
        int st = upres_proxy_metadata_load(ctx, explicit_path, m);
        if (st) {
            char d[400];
            return cli_fail("cannot use metadata '%s': %s (%s); pass the "
                            "STEM_proxy_metadata.txt written by split",
                            cli_clean(explicit_path, p, sizeof p), upres_strerror(st),
                            cli_clean(upres_ctx_error(ctx), d, sizeof d));
        }
        snprintf(used, cap, "%s", explicit_path);
        *found = 1;
        return CLI_OK;
    }
    char stem[NAME_MAX + 1], dir[PATH_MAX], cand[3][PATH_MAX + 64];
    int nc = 0;
    stem_of(original, stem, sizeof stem);
    dir_of(original, dir, sizeof dir);
    if (make_name(cand[nc], sizeof cand[nc], dir, stem, "_proxy_metadata.txt")) nc++;
    dir_of(delta, dir, sizeof dir);
    if (make_name(cand[nc], sizeof cand[nc], dir, stem, "_proxy_metadata.txt")) nc++;
    char dstem[NAME_MAX + 1];
    stem_of(delta, dstem, sizeof dstem);
    if (ends_with(dstem, "_proxy_delta")) {
        dstem[strlen(dstem) - strlen("_delta")] = 0;
        if (make_name(cand[nc], sizeof cand[nc], dir, dstem, "_metadata.txt")) nc++;
    }
    for (int i = 0; i < nc; i++) {
        struct stat sb;
        if (stat(cand[i], &sb) != 0) continue;
        int st = upres_proxy_metadata_load(ctx, cand[i], m);
        if (st) {
            char d[400];
            return cli_fail("cannot use metadata '%s': %s (%s); fix or delete it, or pass "
                            "--metadata", cli_clean(cand[i], p, sizeof p), upres_strerror(st),
                            cli_clean(upres_ctx_error(ctx), d, sizeof d));
        }
        snprintf(used, cap, "%s", cand[i]);
        *found = 1;
        return CLI_OK;
    }
    return CLI_OK;
}

int cli_merge_main(cli_global *g, int argc, char **argv)
{
    cli_args a = {argc, argv, 0, "merge", 0};
    cli_output oo;
    cli_output_defaults(&oo);
    upres_merge_desc md = upres_merge_desc_defaults();
    char *cmd_main = NULL, *cmd_refined = NULL;
    const char *refined_path = NULL, *output = NULL, *meta_path = NULL, *out_dir = NULL;
    int refined_method_set = 0, method_set = 0;
    upres_merge_report report;
    md.report = &report;
    double timeout = 600;
    const char *ops[2];
    int nops = 0, rc = CLI_OK;
    char buf[160], p[512], q[512];
    while (rc == CLI_OK && a.i < a.argc) {
        const char *arg = a.argv[a.i];
        if (a.only_operands || arg[0] != '-' || !arg[1]) {
            if (nops == 2) {
                rc = cli_usage_error(a.cmd, "too many operands (want ORIGINAL DELTA)");
                break;
            }
            ops[nops++] = arg;
            a.i++;
            continue;
        }
        if (!strcmp(arg, "--")) {
            a.only_operands = 1;
            a.i++;
            continue;
        }
        const char *v;
        int r;
        if ((r = cli_match(&a, "refined-delta-image", 0, &v)) == CLI_MATCH) {
            refined_path = v;
        } else if (r == CLI_NOMATCH && (r = cli_match(&a, "upscale-method", 0, &v)) == CLI_MATCH) {
            rc = parse_method(a.cmd, v, &md.upscale, &cmd_main);
        } else if (r == CLI_NOMATCH &&
                   (r = cli_match(&a, "refined-upscale-method", 0, &v)) == CLI_MATCH) {
            rc = parse_method(a.cmd, v, &md.refined_upscale, &cmd_refined);
            refined_method_set = 1;
        } else if (r == CLI_NOMATCH && (r = cli_match(&a, "output-image", 'o', &v)) == CLI_MATCH) {
            output = v;
        } else if (r == CLI_NOMATCH && (r = cli_match(&a, "metadata", 0, &v)) == CLI_MATCH) {
            meta_path = v;
        } else if (r == CLI_NOMATCH && (r = cli_match(&a, "method", 0, &v)) == CLI_MATCH) {
            if (!strcmp(v, "delta"))
                md.method = UPRES_MERGE_DELTA;
            else if (!strcmp(v, "guided"))
                md.method = UPRES_MERGE_GUIDED;
            else if (!strcmp(v, "auto"))
                md.method = UPRES_MERGE_AUTO;
            else
                rc = cli_usage_error(a.cmd, "unknown --method '%s' (delta, guided or auto)",
                                     cli_clean(v, buf, sizeof buf));
            method_set = 1;
        } else if (r == CLI_NOMATCH && !strcmp(arg, "--residual")) {
            md.residual = 1;
            a.i++;
            continue;
        } else if (r == CLI_NOMATCH && (r = cli_match(&a, "grid-cell", 0, &v)) == CLI_MATCH) {
            if (!cli_parse_factor(v, &md.grid_cell) || md.grid_cell < 1 || md.grid_cell > 65535)
                rc = cli_usage_error(a.cmd, "bad --grid-cell '%s' (proxy pixels per cell, "
                                            "e.g. 16)", cli_clean(v, buf, sizeof buf));
        } else if (r == CLI_NOMATCH && (r = cli_match(&a, "grid-bins", 0, &v)) == CLI_MATCH) {
            long b;
            if (!cli_parse_long(v, 1, 64, &b))
                rc = cli_usage_error(a.cmd, "bad --grid-bins '%s' (luma cells, 1-64, e.g. 8)",
                                     cli_clean(v, buf, sizeof buf));
            else
                md.grid_bins = (int)b;
        } else if (r == CLI_NOMATCH && (r = cli_match(&a, "smoothness", 0, &v)) == CLI_MATCH) {
            char *e = NULL;
            md.smoothness = strtod(v, &e);
            if (!e || e == v || *e || !(md.smoothness >= 0 && md.smoothness <= 1000))
                rc = cli_usage_error(a.cmd, "bad --smoothness '%s' (0-1000, default 1)",
                                     cli_clean(v, buf, sizeof buf));
        } else if (r == CLI_NOMATCH && (r = cli_match(&a, "out-dir", 0, &v)) == CLI_MATCH) {
            out_dir = v;
        } else if (r == CLI_NOMATCH && (r = cli_match(&a, "cmd-timeout", 0, &v)) == CLI_MATCH) {
            if (!cli_parse_factor(v, &timeout) || timeout > 86400 * 7)
                rc = cli_usage_error(a.cmd, "bad --cmd-timeout '%s' (seconds, e.g. 600)",
                                     cli_clean(v, buf, sizeof buf));
        } else if (r == CLI_NOMATCH) {
            int stop = -1;
            r = cli_output_option(&a, &oo);
            if (r == CLI_NOMATCH) r = cli_global_option(&a, g, &stop);
            if (r == CLI_BAD) rc = CLI_USAGE;
            else if (stop >= 0) {
                /* --help, --version: done, successfully. */
                free(cmd_main);
                free(cmd_refined);
                return stop;
            } else if (r == CLI_NOMATCH)
                rc = cli_usage_error(a.cmd, "unknown option '%s'", cli_clean(arg, buf, sizeof buf));
            continue;
        }
        if (r == CLI_BAD) rc = CLI_USAGE;
    }
    if (rc == CLI_OK && nops != 2) rc = cli_usage_error(a.cmd, "want ORIGINAL DELTA");
    const int external = md.upscale.command || (refined_path && md.refined_upscale.command);
    if (rc == CLI_OK && method_set && md.method == UPRES_MERGE_GUIDED && external)
        rc = cli_usage_error(a.cmd, "--method guided cannot use an external upscaler; use "
                                    "--method delta with cmd(...)");
    if (rc == CLI_OK && md.residual && md.method != UPRES_MERGE_GUIDED) {
        cli_progress_clear();
        fprintf(stderr, "upres: warning: --residual applies to --method guided only%s\n",
                md.method == UPRES_MERGE_AUTO ? " (auto decides it by itself)" : "");
    }
    if (rc != CLI_OK) {
        free(cmd_main);
        free(cmd_refined);
        return rc;
    }
    if (!refined_method_set) md.refined_upscale = md.upscale;
    md.upscale.timeout_s = timeout;
    md.refined_upscale.timeout_s = timeout;
    const char *original = ops[0], *delta_path = ops[1];

    char outbuf[PATH_MAX + 64];
    if (!output) {
        char dir[PATH_MAX], stem[NAME_MAX + 1];
        if (out_dir)
            snprintf(dir, sizeof dir, "%s", out_dir);
        else
            dir_of(original, dir, sizeof dir);
        stem_of(original, stem, sizeof stem);
        if (!make_name(outbuf, sizeof outbuf, dir, stem, "_merged.png")) {
            free(cmd_main);
            free(cmd_refined);
            return cli_fail("cannot name the output of '%s': path too long",
                            cli_clean(original, p, sizeof p));
        }
        output = outbuf;
    }
    char outdir[PATH_MAX];
    dir_of(output, outdir, sizeof outdir);
    upres_ctx *ctx = NULL;
    upres_image *delta = NULL, *refined = NULL;
    upres_reader *rd = NULL;
    upres_proxy_metadata meta;
    int have_meta = 0;
    char meta_used[PATH_MAX + 64] = "";

    rc = check_input(original, "the original");
    if (rc == CLI_OK) rc = check_input(delta_path, "the delta");
    if (rc == CLI_OK && refined_path) rc = check_input(refined_path, "the refined delta");
    if (rc == CLI_OK) rc = cli_output_desc(a.cmd, &oo, output, &md.encode);
    if (rc == CLI_OK) rc = check_out_dir(outdir);
    if (rc == CLI_OK) rc = cli_check_paths(original, output, oo.force);
    if (rc == CLI_OK) rc = cli_check_paths(delta_path, output, oo.force);
    if (rc == CLI_OK && refined_path) rc = cli_check_paths(refined_path, output, oo.force);
    if (rc == CLI_OK) rc = cli_make_ctx(g, &ctx);
    upres_file_info info;
    if (rc == CLI_OK) {
        /* Opening a reader decodes the header (the whole file for formats
         * that do not stream): the original is known good before work. */
        int st = upres_reader_open(ctx, original, NULL, &rd, &info);
        if (st) rc = cli_report(ctx, st, "read", original);
    }
    if (rc == CLI_OK)
        rc = find_metadata(ctx, meta_path, original, delta_path, &meta, meta_used,
                           sizeof meta_used, &have_meta);
    if (rc == CLI_OK) rc = cli_load(g, ctx, delta_path, 0, &delta, NULL);
    if (rc == CLI_OK && refined_path) rc = cli_load(g, ctx, refined_path, 0, &refined, NULL);
    upres_layout L = {0, 0, 0, UPRES_U8};
    if (rc == CLI_OK) {
        L = upres_reader_layout(rd);
        if (have_meta) {
            if (meta.geom.original_width != L.width || meta.geom.original_height != L.height)
                rc = cli_fail("metadata '%s' is for a %ux%u original but '%s' is %ux%u; pass the "
                              "metadata of this image with --metadata",
                              cli_clean(meta_used, p, sizeof p), meta.geom.original_width,
                              meta.geom.original_height, cli_clean(original, q, sizeof q),
                              L.width, L.height);
            else if (meta.geom.proxy_width != delta->width ||
                     meta.geom.proxy_height != delta->height)
                rc = cli_fail("the delta '%s' is %ux%u but metadata '%s' says the proxy was %ux%u; "
                              "use the delta made from this split",
                              cli_clean(delta_path, p, sizeof p), delta->width, delta->height,
                              cli_clean(meta_used, q, sizeof q), meta.geom.proxy_width,
                              meta.geom.proxy_height);
            else {
                md.geom = &meta.geom;
                md.proxy_filter = meta.filter;
                md.proxy_depth = meta.proxy_depth == 16 ? UPRES_U16 : UPRES_U8;
            }
            struct stat sb;
            if (rc == CLI_OK && meta.original_sha256[0] && stat(original, &sb) == 0) {
                char hex[65];
                int same = (uint64_t)sb.st_size == meta.original_bytes &&
                           upres_sha256_file(ctx, original, hex, NULL) == UPRES_OK &&
                           !strcmp(hex, meta.original_sha256);
                if (!same) {
                    cli_progress_clear();
                    fprintf(stderr, "upres: warning: '%s' is not the file the proxy was made "
                                    "from (SHA-256 differs from '%s'); merging anyway\n",
                            cli_clean(original, p, sizeof p), cli_clean(meta_used, q, sizeof q));
                }
            }
        } else {
            upres_proxy_geometry gg;
            upres_proxy_dim dw = {(double)delta->width, 0}, dh = {(double)delta->height, 0};
            if (upres_proxy_plan(L.width, L.height, dw, dh, &gg) != UPRES_OK)
                rc = cli_fail("cannot fit the %ux%u delta to the %ux%u original; pass --metadata",
                              delta->width, delta->height, L.width, L.height);
            else
                cli_verbose(g, "no metadata found; assuming the proxy was fitted and centred "
                               "(content %ux%u at %u,%u)",
                            gg.content_width, gg.content_height, gg.content_x, gg.content_y);
        }
    }
    if (rc == CLI_OK && refined &&
        (refined->width != delta->width || refined->height != delta->height))
        rc = cli_fail("the refined delta '%s' is %ux%u but the delta is %ux%u; use the pair "
                      "written by one split-with-processed --refine",
                      cli_clean(refined_path, p, sizeof p), refined->width, refined->height,
                      delta->width, delta->height);
    if (rc == CLI_OK) {
        uint32_t oc = L.channels;
        if (delta->channels > oc) oc = delta->channels;
        size_t bps = upres_depth_bytes(L.depth);
        uint64_t row_in = (uint64_t)L.width * L.channels * bps, row_out = (uint64_t)L.width * oc * bps;
        uint64_t mem = 64 * (row_in + row_out) +
                       (uint64_t)upres_ctx_threads(ctx) * L.width * 4 * sizeof(float) +
                       (uint64_t)delta->width * delta->height * delta->channels * 2 * 2;
        if (!upres_reader_is_streaming(rd)) mem += (uint64_t)L.height * row_in;
        if (md.upscale.command) mem += (uint64_t)L.height * row_out; /* tool's result, worst case */
        if (md.method != UPRES_MERGE_DELTA && !md.upscale.command) {
            /* The fit: ~11.5 KB per grid vertex, plus the proxy pair's planes. */
            uint64_t cw = delta->width, ch = delta->height;
            if (md.geom) {
                cw = md.geom->content_width;
                ch = md.geom->content_height;
            }
            uint64_t vx = (uint64_t)(cw / md.grid_cell + 2), vy = (uint64_t)(ch / md.grid_cell + 2);
            mem += vx * vy * (uint64_t)(md.grid_bins + 1) * 11800 + cw * ch * 3 * 4 * 8;
        }
        cli_check_memory(g, mem, "the merge");
        uint64_t raw = (uint64_t)L.height * row_out;
        uint64_t need = md.encode.format == UPRES_FORMAT_JPEG ? raw / 4
                        : md.encode.format == UPRES_FORMAT_WEBP ? raw / 2
                                                                : raw + raw / 100;
        rc = cli_check_disk(outdir, need + 65536, "the merged image");
    }
    upres_reader_free(rd);
    rd = NULL;
    if (rc == CLI_OK) {
        md.original_path = original;
        md.output_path = output;
        md.delta = delta;
        md.refined = refined;
        double t0 = cli_now();
        /* An interrupt after the output was renamed into place is moot:
         * the file is complete, so success is reported. */
        int st = upres_proxy_merge(ctx, &md);
        if (st == UPRES_ERR_EXTERNAL || st == UPRES_ERR_TIMEOUT) {
            char d[700];
            rc = cli_fail("the external upscaler failed on the delta of '%s': %s; check the "
                          "cmd(...) template and the tool%s",
                          cli_clean(original, p, sizeof p),
                          cli_clean(upres_ctx_error(ctx), d, sizeof d),
                          st == UPRES_ERR_TIMEOUT ? " or raise --cmd-timeout" : "");
        } else if (st == UPRES_ERR_INVALID_ARG && md.upscale.command) {
            char d[700];
            rc = cli_fail("cannot use the external upscaler: %s; check the cmd(...) template",
                          cli_clean(upres_ctx_error(ctx), d, sizeof d));
        } else if (st) {
            rc = cli_report(ctx, st, "merge into", output);
        } else {
            char how[200];
            if (report.method == UPRES_MERGE_GUIDED)
                snprintf(how, sizeof how, "guided%s (grid %dx%dx%d, %d iterations)",
                         report.residual ? " + residual" : "", report.grid_nx, report.grid_ny,
                         report.grid_nz, report.iterations);
            else
                snprintf(how, sizeof how, "%s%s", refined ? "delta + refined delta" : "delta",
                         md.upscale.command ? " (external upscaler)" : "");
            if (md.method == UPRES_MERGE_AUTO && !external && report.auto_psnr[0] == 0)
                cli_verbose(g, "auto: the delta changes alpha, which only delta carries");
            else if (md.method == UPRES_MERGE_AUTO && !external)
                cli_verbose(g, "auto: predicting the proxy from half resolution gives delta "
                               "%.2f dB, guided %.2f dB, guided + residual %.2f dB",
                            report.auto_psnr[0], report.auto_psnr[1], report.auto_psnr[2]);
            cli_note(g, "%s: %ux%u, %s%s merged in %.1f s", cli_clean(output, p, sizeof p),
                     L.width, L.height, md.method == UPRES_MERGE_AUTO ? "auto: " : "", how,
                     cli_now() - t0);
        }
    }
    cli_progress_clear();
    upres_image_free(delta);
    upres_image_free(refined);
    upres_ctx_free(ctx);
    free(cmd_main);
    free(cmd_refined);
    return rc;
}
