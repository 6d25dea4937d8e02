/* Helpers shared by the subcommands: option matching and number parsing,
 * output options, path checks, the context, loading/saving with one-line
 * error messages. */
/* realpath() is in POSIX's XSI part, which -D_POSIX_C_SOURCE alone hides. */
#define _XOPEN_SOURCE 700
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const char cli_global_help[] =
    "Global options (before or after the subcommand):\n"
    "  -v, --verbose        print steps and timings on stderr\n"
    "  -q, --quiet          no progress bar, no summary lines\n"
    "  -j, --threads N      worker threads (0 = one per CPU, the default)\n"
    "      --max-pixels N   refuse images larger than N pixels (suffix k, M, G\n"
    "                       allowed; default 268M)\n"
    "      --version        print the version and exit\n"
    "  -h, --help           print help and exit\n";

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

const char *cli_clean(const char *s, char *buf, size_t cap)
{
    size_t n = 0;
    if (!s) s = "";
    for (; *s && n + 1 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        buf[n++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    buf[n] = 0;
    return buf;
}

const char *cli_channels_name(uint32_t channels)
{
    switch (channels) {
    case 1: return "gray";
    case 2: return "gray+alpha";
    case 3: return "RGB";
    case 4: return "RGBA";
    default: return "?";
    }
}

const char *cli_layout_name(const upres_image *img, char *buf, size_t cap)
{
    const char *d = img->depth == UPRES_U8    ? "8-bit"
                    : img->depth == UPRES_U16 ? "16-bit"
                                              : "32-bit float";
    snprintf(buf, cap, "%s %s", d, cli_channels_name(img->channels));
    return buf;
}

/* ---- messages ------------------------------------------------------------ */

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cli_progress_clear();
    fprintf(stderr, "upres: %s; run 'upres%s%s --help' for usage\n", msg, cmd ? " " : "",
            cmd ? cmd : "");
    return CLI_USAGE;
}

int cli_fail(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cli_progress_clear();
    fprintf(stderr, "upres: %s\n", msg);
    return CLI_FAIL;
}

void cli_verbose(const cli_global *g, const char *fmt, ...)
{
    if (!g->verbose) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cli_progress_clear();
    fprintf(stderr, "upres: %s\n", msg);
}

void cli_note(const cli_global *g, const char *fmt, ...)
{
    if (g->quiet) return;
    cli_progress_clear(); /* stdout and stderr may share the terminal */
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

/* What the user can do about a failure; `verb` is "read", "write" or another
 * step ("resize"). */
static const char *hint_for(int status, const char *verb)
{
    int reading = !strcmp(verb, "read");
    int writing = !strcmp(verb, "write");
    switch (status) {
    case UPRES_ERR_IO:
        return reading ? "check the file name and its permissions"
                       : "check that the folder is writable and the disk has room";
    case UPRES_ERR_UNKNOWN_FORMAT:
        return "upres reads PNG, JPEG, TIFF and WebP files";
    case UPRES_ERR_CORRUPT:
        return "the file is damaged, re-export or re-download it";
    case UPRES_ERR_UNSUPPORTED:
        return reading ? "convert the file with another tool first"
                       : "choose another output format or other output options";
    case UPRES_ERR_LIMIT:
    case UPRES_ERR_OVERFLOW:
        return reading ? "raise --max-pixels if you trust this file (each side stays limited to 65535)"
                       : "ask for a smaller size, or raise --max-pixels (each side stays limited to 65535)";
    case UPRES_ERR_NOMEM:
        return "not enough memory; try a smaller size or fewer threads (-j)";
    case UPRES_ERR_THREAD:
        return "try fewer threads (-j 1)";
    case UPRES_ERR_CANCELLED:
        return "interrupted; nothing was written";
    case UPRES_ERR_INVALID_ARG:
        return writing ? "check the output options" : "this is a bug in upres, please report it";
    default:
        return "this is a bug in upres, please report it";
    }
}

int cli_report(upres_ctx *ctx, int status, const char *verb, const char *path)
{
    char p[1024], d[600];
    const char *detail = cli_clean(ctx ? upres_ctx_error(ctx) : "", d, sizeof d);
    cli_progress_clear();
    fprintf(stderr, "upres: cannot %s", verb);
    if (path) fprintf(stderr, " '%s'", cli_clean(path, p, sizeof p));
    fprintf(stderr, ": %s", upres_strerror(status));
    if (*detail && strcmp(detail, upres_strerror(status)) != 0) fprintf(stderr, " (%s)", detail);
    fprintf(stderr, "; %s\n", hint_for(status, verb));
    return CLI_FAIL;
}

/* ---- option matching and numbers ---------------------------------------- */

/* Compares an option name typed by the user with `name` over n characters,
 * treating '_' and '-' alike (imgproxyproc's users type --delta_image). */
static int same_option_name(const char *typed, const char *name, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char t = typed[i] == '_' ? '-' : typed[i], c = name[i] == '_' ? '-' : name[i];
        if (t != c || t == 0) return 0;
    }
    return 1;
}

int cli_take_operand(cli_args *a, const char **operand)
{
    const char *arg = a->argv[a->i];
    if (a->only_operands || arg[0] != '-' || !arg[1]) {
        *operand = arg;
        a->i++;
        return 1;
    }
    if (!strcmp(arg, "--")) {
        a->only_operands = 1;
        a->i++;
        return 2;
    }
    return 0;
}

int cli_parse_options(cli_global *g, cli_args *a, int (*opt)(cli_args *, void *), void *opts,
                      const char **operand, const char *operand_help, int *exit_now)
{
    char buf[128];
    *exit_now = -1;
    while (a->i < a->argc) {
        const char *arg = a->argv[a->i], *op;
        if (!operand && (arg[0] != '-' || !arg[1] || !strcmp(arg, "--")))
            return cli_usage_error(a->cmd, "unexpected operand '%s' (%s takes options only)",
                                   cli_clean(arg, buf, sizeof buf), a->cmd);
        int k = operand ? cli_take_operand(a, &op) : 0;
        if (k == 1 && *operand)
            return cli_usage_error(a->cmd, "too many operands (%s)", operand_help);
        if (k == 1) *operand = op;
        if (k) continue;
        int stop = -1;
        int r = opt(a, opts);
        if (r == CLI_NOMATCH) r = cli_global_option(a, g, &stop);
        if (r == CLI_BAD) return CLI_USAGE;
        if (stop >= 0) {
            *exit_now = stop;
            return CLI_OK;
        }
        if (r == CLI_NOMATCH)
            return cli_usage_error(a->cmd, "unknown option '%s'", cli_clean(arg, buf, sizeof buf));
    }
    return CLI_OK;
}

int cli_match(cli_args *a, const char *longname, char shortname, const char **value)
{
    const char *arg = a->argv[a->i];
    const char *inl = NULL;
    int hit = 0;
    if (longname && arg[0] == '-' && arg[1] == '-') {
        size_t n = strlen(longname);
        if (same_option_name(arg + 2, longname, n) && (arg[2 + n] == 0 || arg[2 + n] == '=')) {
            hit = 1;
            if (arg[2 + n] == '=') {
                if (!value)
                    return cli_usage_error(a->cmd, "option '--%s' takes no value", longname),
                           CLI_BAD;
                inl = arg + 3 + n;
            }
        }
    } else if (shortname && arg[0] == '-' && arg[1] == shortname) {
        if (arg[2] == 0)
            hit = 1;
        else if (value) {
            hit = 1;
            inl = arg + 2;
        }
    }
    if (!hit) return CLI_NOMATCH;
    a->i++;
    if (!value) return CLI_MATCH;
    if (inl) {
        *value = inl;
        return CLI_MATCH;
    }
    if (a->i >= a->argc) {
        char buf[64];
        cli_usage_error(a->cmd, "option '%s' needs a value", cli_clean(arg, buf, sizeof buf));
        return CLI_BAD;
    }
    *value = a->argv[a->i++];
    return CLI_MATCH;
}

int cli_parse_long(const char *s, long min, long max, long *out)
{
    if (!s || !*s) return 0;
    for (const char *p = (*s == '-' || *s == '+') ? s + 1 : s; *p; p++)
        if (*p < '0' || *p > '9') return 0;
    if (s[0] && (s[0] == '-' || s[0] == '+') && !s[1]) return 0;
    errno = 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < min || v > max) return 0;
    *out = v;
    return 1;
}

int cli_parse_count(const char *s, uint64_t *out)
{
    if (!s || *s < '0' || *s > '9') return 0;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno) return 0;
    uint64_t mul = 1;
    if (*end == 'k' || *end == 'K') mul = 1000, end++;
    else if (*end == 'M') mul = 1000000, end++;
    else if (*end == 'G') mul = 1000000000, end++;
    if (*end) return 0;
    uint64_t r;
    if (__builtin_mul_overflow((uint64_t)v, mul, &r)) return 0;
    *out = r;
    return 1;
}

int cli_parse_factor(const char *s, double *out)
{
    if (!s || !*s) return 0;
    int dots = 0, digits = 0;
    /* Only plain decimals: strtod would also take hex, inf and nan. */
    for (const char *p = s; *p; p++) {
        if (*p == '.') dots++;
        else if (*p >= '0' && *p <= '9') digits++;
        else return 0;
    }
    if (dots > 1 || !digits) return 0;
    double v = strtod(s, NULL);
    if (!(v > 0) || !isfinite(v)) return 0;
    *out = v;
    return 1;
}

int cli_parse_size(const char *s, uint32_t max, uint32_t *w, uint32_t *h)
{
    if (!s) return 0;
    const char *x = strpbrk(s, "xX");
    if (!x || x == s) return 0;
    char left[32];
    size_t n = (size_t)(x - s);
    if (n >= sizeof left) return 0;
    memcpy(left, s, n);
    left[n] = 0;
    long a, b;
    if (!cli_parse_long(left, 1, (long)max, &a) || left[0] == '+' || left[0] == '-') return 0;
    if (!cli_parse_long(x + 1, 1, (long)max, &b) || x[1] == '+' || x[1] == '-') return 0;
    *w = (uint32_t)a;
    *h = (uint32_t)b;
    return 1;
}

int cli_global_option(cli_args *a, cli_global *g, int *exit_now)
{
    const char *v = NULL;
    int r;
    char buf[64];
    if ((r = cli_match(a, "version", 0, NULL)) != CLI_NOMATCH) {
        if (r == CLI_MATCH) {
            printf("upres %s\n", upres_version());
            *exit_now = CLI_OK;
        }
        return r;
    }
    if ((r = cli_match(a, "help", 'h', NULL)) != CLI_NOMATCH) {
        if (r == CLI_MATCH) {
            cli_print_help(a->cmd);
            *exit_now = CLI_OK;
        }
        return r;
    }
    if ((r = cli_match(a, "verbose", 'v', NULL)) != CLI_NOMATCH) {
        if (r == CLI_MATCH) g->verbose = 1, g->quiet = 0;
        return r;
    }
    if ((r = cli_match(a, "quiet", 'q', NULL)) != CLI_NOMATCH) {
        if (r == CLI_MATCH) g->quiet = 1, g->verbose = 0;
        return r;
    }
    if ((r = cli_match(a, "threads", 'j', &v)) != CLI_NOMATCH) {
        long n;
        if (r != CLI_MATCH) return r;
        if (!cli_parse_long(v, 0, 256, &n)) {
            cli_usage_error(a->cmd, "bad thread count '%s' (want 0..256)",
                            cli_clean(v, buf, sizeof buf));
            return CLI_BAD;
        }
        g->threads = (int)n;
        return r;
    }
    if ((r = cli_match(a, "max-pixels", 0, &v)) != CLI_NOMATCH) {
        uint64_t n;
        if (r != CLI_MATCH) return r;
        if (!cli_parse_count(v, &n) || n == 0) {
            cli_usage_error(a->cmd, "bad pixel count '%s' (want a positive integer, e.g. 50M)",
                            cli_clean(v, buf, sizeof buf));
            return CLI_BAD;
        }
        g->max_pixels = n;
        return r;
    }
    return CLI_NOMATCH;
}

/* ---- output options ------------------------------------------------------ */

void cli_output_defaults(cli_output *o)
{
    memset(o, 0, sizeof *o);
    o->quality = 95;
    o->compression = 6;
}

int cli_output_option(cli_args *a, cli_output *o)
{
    const char *v = NULL;
    long n;
    int r;
    char buf[64];
    if ((r = cli_match(a, "quality", 0, &v)) != CLI_NOMATCH) {
        if (r != CLI_MATCH) return r;
        if (!cli_parse_long(v, 1, 100, &n))
            return cli_usage_error(a->cmd, "bad quality '%s' (want 1..100)",
                                   cli_clean(v, buf, sizeof buf)),
                   CLI_BAD;
        o->quality = (int)n;
        o->quality_set = 1;
        return r;
    }
    if ((r = cli_match(a, "compression", 0, &v)) != CLI_NOMATCH) {
        if (r != CLI_MATCH) return r;
        if (!cli_parse_long(v, 0, 9, &n))
            return cli_usage_error(a->cmd, "bad compression level '%s' (want 0..9)",
                                   cli_clean(v, buf, sizeof buf)),
                   CLI_BAD;
        o->compression = (int)n;
        o->compression_set = 1;
        return r;
    }
    if ((r = cli_match(a, "depth", 0, &v)) != CLI_NOMATCH) {
        if (r != CLI_MATCH) return r;
        if (!cli_parse_long(v, 8, 32, &n) || (n != 8 && n != 16 && n != 32))
            return cli_usage_error(a->cmd, "bad depth '%s' (want 8, 16 or 32)",
                                   cli_clean(v, buf, sizeof buf)),
                   CLI_BAD;
        o->depth = (int)n;
        return r;
    }
    if ((r = cli_match(a, "lossless", 0, NULL)) != CLI_NOMATCH) {
        if (r == CLI_MATCH) o->lossless = 1;
        return r;
    }
    if ((r = cli_match(a, "no-icc", 0, NULL)) != CLI_NOMATCH) {
        if (r == CLI_MATCH) o->no_icc = 1;
        return r;
    }
    if ((r = cli_match(a, "force", 0, NULL)) != CLI_NOMATCH) {
        if (r == CLI_MATCH) o->force = 1;
        return r;
    }
    return CLI_NOMATCH;
}

int cli_output_desc(const char *cmd, const cli_output *o, const char *out_path,
                    upres_encode_desc *d)
{
    char buf[256];
    upres_format f = upres_format_from_path(out_path);
    if (f == UPRES_FORMAT_UNKNOWN)
        return cli_usage_error(cmd,
                               "cannot tell the output format from '%s' (use a .png, .jpg, "
                               ".tif or .webp name)",
                               cli_clean(out_path, buf, sizeof buf));
    if (o->depth == 16 && f != UPRES_FORMAT_PNG && f != UPRES_FORMAT_TIFF)
        return cli_usage_error(cmd, "--depth 16 needs a .png or .tif output, not %s",
                               upres_format_name(f));
    if (o->depth == 32 && f != UPRES_FORMAT_TIFF)
        return cli_usage_error(cmd, "--depth 32 (float) needs a .tif output, not %s",
                               upres_format_name(f));
    if (o->lossless && f != UPRES_FORMAT_WEBP)
        return cli_usage_error(cmd, "--lossless applies to .webp output only");
    *d = upres_encode_desc_defaults();
    d->format = f;
    d->quality = o->quality;
    d->png_compression = o->compression;
    d->webp_lossless = o->lossless;
    d->bit_depth = o->depth;
    d->write_icc = !o->no_icc;
    return CLI_OK;
}

/* ---- paths ---------------------------------------------------------------- */

/* Resolves the folder part of `path` and appends its last component, so a
 * not-yet-existing file gets a canonical name. Returns 0 when the folder
 * cannot be resolved (errno set). */
static int resolve_parent(const char *path, char *out, size_t cap)
{
    const char *slash = strrchr(path, '/');
    char dir[PATH_MAX];
    const char *base = path;
    if (slash) {
        size_t n = (size_t)(slash - path);
        if (n == 0) n = 1; /* "/file" */
        if (n >= sizeof dir) {
            errno = ENAMETOOLONG;
            return 0;
        }
        memcpy(dir, path, n);
        dir[n] = 0;
        base = slash + 1;
    } else {
        strcpy(dir, ".");
    }
    char real[PATH_MAX];
    if (!realpath(dir, real)) return 0;
    if ((size_t)snprintf(out, cap, "%s/%s", real, base) >= cap) {
        errno = ENAMETOOLONG;
        return 0;
    }
    return 1;
}

int cli_check_paths(const char *in, const char *out, int force)
{
    char pi[1024], po[1024];
    cli_clean(in, pi, sizeof pi);
    cli_clean(out, po, sizeof po);
    const char *slash = strrchr(out, '/');
    if (!*out || (slash && slash[1] == 0))
        return cli_fail("cannot write '%s': not a file name; give the output file a name such "
                        "as out.png", po);
    char rout[PATH_MAX + 256];
    if (!resolve_parent(out, rout, sizeof rout))
        return cli_fail("cannot write '%s': its folder is not usable (%s); create the folder "
                        "or choose another output path", po, strerror(errno));
    struct stat so, si;
    int out_exists = stat(out, &so) == 0;
    if (out_exists && S_ISDIR(so.st_mode))
        return cli_fail("cannot write '%s': it is a folder; give an output file name", po);
    /* A missing input is reported by the load that follows. */
    if (force || stat(in, &si) != 0) return CLI_OK;
    int same = out_exists && si.st_dev == so.st_dev && si.st_ino == so.st_ino;
    if (!same) {
        char rin[PATH_MAX + 256];
        same = resolve_parent(in, rin, sizeof rin) && !strcmp(rin, rout);
        if (!same) {
            char full[PATH_MAX];
            same = realpath(in, full) && !strcmp(full, rout);
        }
    }
    if (same)
        return cli_fail("refusing to overwrite the input '%s' with the output '%s'; choose "
                        "another output name, or pass --force to replace it", pi, po);
    return CLI_OK;
}

/* ---- context, load, save ------------------------------------------------- */

int cli_make_ctx(const cli_global *g, upres_ctx **ctx)
{
    upres_ctx_desc d = upres_ctx_desc_defaults();
    d.threads = g->threads;
    if (g->max_pixels) d.limits.max_pixels = g->max_pixels;
    d.progress = cli_progress_cb;
    d.progress_user = NULL;
    int st = upres_ctx_new(&d, ctx);
    if (st != UPRES_OK) return cli_report(NULL, st, "start", NULL);
    cli_progress_start(!g->quiet && isatty(2));
    return CLI_OK;
}

int cli_load(const cli_global *g, upres_ctx *ctx, const char *path, int apply_orientation,
             upres_image **img, upres_file_info *info)
{
    upres_decode_desc dd = upres_decode_desc_defaults();
    dd.apply_orientation = apply_orientation;
    upres_file_info own_info;
    if (!info) info = &own_info; /* the verbose line below reads it */
    double t0 = cli_now();
    char p[512], status[600];
    struct stat sb;
    /* Decoders report no progress: say what is happening on big files. */
    snprintf(status, sizeof status, "reading '%s'", cli_clean(path, p, sizeof p));
    cli_progress_status(status, stat(path, &sb) == 0 && sb.st_size > (32 << 20));
    int st = upres_load(ctx, path, &dd, img, info);
    if (st == UPRES_OK && cli_interrupted()) {
        upres_image_free(*img);
        *img = NULL;
        st = UPRES_ERR_CANCELLED;
    }
    if (st != UPRES_OK) return cli_report(ctx, st, "read", path);
    if (g->verbose) {
        char l[64];
        cli_verbose(g, "read '%s': %s %ux%u, %s%s in %.1f ms", cli_clean(path, p, sizeof p),
                    upres_format_name(info->format), (*img)->width, (*img)->height,
                    cli_layout_name(*img, l, sizeof l),
                    info->orientation != 1 && apply_orientation ? " (EXIF orientation applied)"
                                                                 : "",
                    (cli_now() - t0) * 1e3);
    }
    return CLI_OK;
}

int cli_save(const cli_global *g, upres_ctx *ctx, const upres_image *img, const char *path,
             const upres_encode_desc *d)
{
    double t0 = cli_now();
    char p[512], status[600];
    snprintf(status, sizeof status, "writing '%s'", cli_clean(path, p, sizeof p));
    cli_progress_status(status, (uint64_t)img->width * img->height > 8000000u);
    /* Encode, then write: an interrupt during the (possibly long) encode is
     * honoured before anything reaches the disk. */
    void *buf = NULL;
    size_t size = 0;
    int st = upres_encode(ctx, img, d, &buf, &size);
    if (st == UPRES_OK && cli_interrupted()) st = UPRES_ERR_CANCELLED;
    if (st == UPRES_OK) st = upres_write_file_atomic(ctx, path, buf, size);
    free(buf);
    if (st != UPRES_OK) return cli_report(ctx, st, "write", path);
    if (g->verbose) {
        struct stat sb;
        long long bytes = stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
        cli_verbose(g, "wrote '%s': %s, %lld bytes in %.1f ms", cli_clean(path, p, sizeof p),
                    upres_format_name(d->format), bytes, (cli_now() - t0) * 1e3);
    }
    return CLI_OK;
}
