/* AI upscaling from the command line: `upres upscale` (one file, or a folder
 * with -i/-o) and `upres models` (what the model search path holds).
 *
 * Models are found by name in a search path (--model-path, UPRES_MODEL_PATH,
 * ./models, $XDG_DATA_HOME/upres/models); with no model at all the command
 * still produces a lanczos3 upscale, so a script's main job never fails for
 * want of weights. Only the public API is used. */
/* realpath() is in POSIX's XSI part. */
#define _XOPEN_SOURCE 700
#include "cli.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

const char cli_upscale_help[] =
    "usage: upres upscale IN [-o OUT] [-m MODEL] [-s SCALE | --width W | --height H]\n"
    "           [--tile N] [--tile-pad N] [--memory SIZE] [--color rgb|luma]\n"
    "           [--alpha lanczos|model] [--model-path DIR] [--json] [OPTIONS]\n"
    "       upres upscale -i DIR -o DIR [--recursive] [same options]\n"
    "\n"
    "Upscales IN with a super-resolution network (Real-ESRGAN, Real-CUGAN,\n"
    "waifu2x, ... in .pth, .safetensors or ncnn form), tile by tile with\n"
    "feathered overlaps, then resizes the result with lanczos3 to the exact size\n"
    "asked for. Alpha, gray, 16-bit and ICC profiles are kept.\n"
    "OUT defaults to IN's stem + -xSCALE (or -WxH with --width/--height) and\n"
    "IN's extension, beside IN; when OUT is a folder the file goes there.\n"
    "\n"
    "  -m, --model MODEL    a model file, or a name looked up in the search path:\n"
    "                       a file stem ('realesr-animevideov3', 'up2x-no-denoise'),\n"
    "                       the stem without a scale suffix (-x4, _2x), or a name\n"
    "                       with folders ('models-pro/up2x-no-denoise'). When\n"
    "                       several files match: the first search folder that\n"
    "                       has one, then .safetensors, .pth/.pt, ncnn .param\n"
    "                       (-v says which).\n"
    "                       Without -m the first found of realesr-general-x4v3,\n"
    "                       RealESRGAN_General_x4_v3, upscayl-lite-4x,\n"
    "                       RealESRGAN_x4plus, realesrgan-x4plus,\n"
    "                       realesr-animevideov3, RealESRGAN_x4plus_anime_6B,\n"
    "                       realesrgan-x4plus-anime; with none of them, a warning\n"
    "                       and a plain lanczos3 upscale (exit status 0)\n"
    "      --model-path DIR search DIR first (repeatable); then UPRES_MODEL_PATH\n"
    "                       (folders separated by ':'), ./models and\n"
    "                       $XDG_DATA_HOME/upres/models (~/.local/share/...); each\n"
    "                       with 4 levels of subfolders\n"
    "  -s, --scale F        output = input x F (default: the model's scale; 4\n"
    "                       without a model); any F, e.g. 2 with a x4 model\n"
    "      --width W        W pixels wide, height in proportion\n"
    "      --height H       H pixels high, width in proportion\n"
    "      --tile N         tile side in input pixels (0 = from --memory, default)\n"
    "      --tile-pad N     context pixels around each tile (default: the model's)\n"
    "      --memory SIZE    memory budget for the tiles, e.g. 512M, 2G (default a\n"
    "                       quarter of the RAM, at most 512M)\n"
    "      --color MODE     rgb: colour through the network (default); luma: only\n"
    "                       luma, chroma bicubic (colours cannot drift)\n"
    "      --alpha MODE     lanczos: alpha resized by lanczos3 (default); model:\n"
    "                       alpha through the network as gray\n"
    "      --json           one JSON object per file on stdout: input, output,\n"
    "                       model (path or null), arch, scale, model_scale, width,\n"
    "                       height, tile (0 = auto), tiles, seconds\n"
    "  -i, --input DIR      upscale every image in DIR (format judged by content;\n"
    "                       other files are skipped with a warning) into the folder\n"
    "                       -o DIR under the same names; the model is loaded once\n"
    "      --recursive      with -i: also the subfolders (recreated under -o)\n"
    "\n"
    "Examples: upres upscale photo.jpg                    (photo-x4.jpg)\n"
    "          upres upscale art.png -m up2x-no-denoise -o art2.png\n"
    "          upres upscale scan.tif -s 2 --color luma --model-path ~/models\n"
    "\n" CLI_OUTPUT_HELP;

const char cli_models_help[] =
    "usage: upres models [--model-path DIR] [--json]\n"
    "\n"
    "Lists every model file in the search path (see 'upres upscale --help'):\n"
    "name (the shortest one -m takes to pick that file), format, architecture,\n"
    "scale, parameter count and path; '*' marks the model 'upres upscale' uses\n"
    "without -m (the last line names it too). Files with a model extension\n"
    "(.safetensors, .pth, .pt, .param) are loaded to tell; those that fail are\n"
    "listed with the reason, and do not change the exit status.\n"
    "\n"
    "      --model-path DIR search DIR first (repeatable)\n"
    "      --json           one JSON object per file: name, format, arch, scale,\n"
    "                       channels, params, path, select (the -m name), default,\n"
    "                       error (null when loaded)\n";

/* Default models, best first: general-purpose x4 networks. */
static const char *const default_models[] = {
    "realesr-general-x4v3", "RealESRGAN_General_x4_v3", "upscayl-lite-4x",
    "RealESRGAN_x4plus",    "realesrgan-x4plus",        "realesr-animevideov3",
    "RealESRGAN_x4plus_anime_6B", "realesrgan-x4plus-anime",
};

/* Subfolder levels searched below each model folder. */
#define MODEL_DEPTH 4
/* Entries looked at per model folder, so a search path pointing at a huge
 * tree (a home folder) stays quick. */
#define MODEL_SCAN_MAX 20000

/* ---- small helpers ----------------------------------------------------- */

/* Copies s into a new string; NULL when out of memory. */
static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

/* a + "/" + b into a new string ("a/b", or "/b" when a is "/"). */
static char *join_path(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    int slash = na > 0 && a[na - 1] != '/';
    char *p = malloc(na + nb + 2);
    if (!p) return NULL;
    memcpy(p, a, na);
    if (slash) p[na++] = '/';
    memcpy(p + na, b, nb + 1);
    return p;
}

/* The last component of path. */
static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* Position of the extension's dot in a file name, or NULL (a leading dot is
 * no extension). */
static const char *ext_dot(const char *name)
{
    const char *b = base_name(name);
    const char *d = strrchr(b, '.');
    return d && d != b ? d : NULL;
}

/* mkdir -p (mode 0777 & umask). Returns 1 on success, 0 with errno set. */
static int mkdir_all(const char *dir)
{
    char tmp[PATH_MAX];
    if (!*dir) {
        errno = ENOENT;
        return 0;
    }
    if ((size_t)snprintf(tmp, sizeof tmp, "%s", dir) >= sizeof tmp) {
        errno = ENAMETOOLONG;
        return 0;
    }
    for (char *s = tmp + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        if (mkdir(tmp, 0777) != 0 && errno != EEXIST) return 0;
        *s = '/';
    }
    if (mkdir(tmp, 0777) == 0) return 1;
    struct stat sb;
    if (errno == EEXIST && stat(tmp, &sb) == 0 && S_ISDIR(sb.st_mode)) return 1;
    if (errno == EEXIST) errno = ENOTDIR;
    return 0;
}

static int is_dir(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* Parses a memory size: a decimal number with an optional binary suffix K,
 * M, G or T (x1024^n, optionally followed by B or iB); a bare number is
 * bytes. Returns 1 and *out >= 1 on success. */
int cli_parse_memory(const char *s, uint64_t *out)
{
    char num[64];
    size_t n = 0;
    while ((isdigit((unsigned char)s[n]) || s[n] == '.') && n + 1 < sizeof num) {
        num[n] = s[n];
        n++;
    }
    num[n] = 0;
    double v;
    if (!n || !cli_parse_factor(num, &v)) return 0;
    const char *u = s + n;
    double mul = 1;
    switch (*u) {
    case 'k': case 'K': mul = 1024.0; u++; break;
    case 'm': case 'M': mul = 1024.0 * 1024; u++; break;
    case 'g': case 'G': mul = 1024.0 * 1024 * 1024; u++; break;
    case 't': case 'T': mul = 1024.0 * 1024 * 1024 * 1024; u++; break;
    default: break;
    }
    if (mul > 1 && (!strcmp(u, "B") || !strcmp(u, "iB"))) u += strlen(u);
    else if (mul == 1 && !strcmp(u, "B")) u++;
    if (*u) return 0;
    double b = floor(v * mul);
    if (!(b >= 1) || b >= 1.8e19) return 0;
    *out = (uint64_t)b;
    return 1;
}

/* Writes s as a JSON string (quotes included). Invalid UTF-8 bytes become
 * U+FFFD so the output stays valid JSON whatever the file names hold. */
void cli_json_str(FILE *f, const char *s)
{
    if (!s) {
        fputs("null", f);
        return;
    }
    const unsigned char *p = (const unsigned char *)s;
    fputc('"', f);
    while (*p) {
        unsigned char c = *p;
        if (c == '"' || c == '\\') {
            fputc('\\', f);
            fputc(c, f);
            p++;
        } else if (c < 0x20 || c == 0x7f) {
            fprintf(f, "\\u%04x", c);
            p++;
        } else if (c < 0x80) {
            fputc(c, f);
            p++;
        } else {
            int len = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
            if (c >= 0xf5) len = 0;
            int ok = len > 0;
            for (int k = 1; ok && k < len; k++) ok = (p[k] & 0xc0) == 0x80;
            /* Overlong 3/4-byte forms and surrogates are not UTF-8 either. */
            if (ok && len == 3 && ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] >= 0xa0)))
                ok = 0;
            if (ok && len == 4 && ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] >= 0x90)))
                ok = 0;
            if (ok) {
                fwrite(p, 1, (size_t)len, f);
                p += len;
            } else {
                fputs("\\ufffd", f);
                p++;
            }
        }
    }
    fputc('"', f);
}

/* ---- the model search path ---------------------------------------------- */

typedef struct search_path {
    char **dirs;   /* owned, in search order, no duplicates */
    int *exists;   /* dirs[i] is a readable folder */
    size_t n;
} search_path;

static void sp_free(search_path *sp)
{
    for (size_t i = 0; i < sp->n; i++) free(sp->dirs[i]);
    free(sp->dirs);
    free(sp->exists);
    memset(sp, 0, sizeof *sp);
}

/* Appends dir unless it names a folder already in the list. Returns 0 when
 * out of memory. */
static int sp_add(search_path *sp, const char *dir)
{
    if (!*dir) return 1;
    char real[PATH_MAX], other[PATH_MAX];
    int have_real = realpath(dir, real) != NULL;
    for (size_t i = 0; i < sp->n; i++) {
        if (!strcmp(sp->dirs[i], dir)) return 1;
        if (have_real && realpath(sp->dirs[i], other) && !strcmp(real, other)) return 1;
    }
    char **nd = realloc(sp->dirs, (sp->n + 1) * sizeof *nd);
    if (!nd) return 0;
    sp->dirs = nd;
    int *ne = realloc(sp->exists, (sp->n + 1) * sizeof *ne);
    if (!ne) return 0;
    sp->exists = ne;
    if (!(sp->dirs[sp->n] = dup_str(dir))) return 0;
    sp->exists[sp->n] = is_dir(dir) && access(dir, R_OK | X_OK) == 0;
    sp->n++;
    return 1;
}

/* The search path: `user` (--model-path, in order), UPRES_MODEL_PATH,
 * ./models, $XDG_DATA_HOME/upres/models (XDG default ~/.local/share).
 * Returns CLI_OK or CLI_FAIL (out of memory, message printed). */
static int sp_build(search_path *sp, const cli_paths *user)
{
    memset(sp, 0, sizeof *sp);
    int ok = 1;
    for (size_t i = 0; ok && i < user->n; i++) ok = sp_add(sp, user->v[i]);
    const char *env = getenv("UPRES_MODEL_PATH");
    if (ok && env) {
        char *copy = dup_str(env);
        ok = copy != NULL;
        for (char *s = copy, *next; ok && s; s = next) {
            next = strchr(s, ':');
            if (next) *next++ = 0;
            ok = sp_add(sp, s);
        }
        free(copy);
    }
    if (ok) ok = sp_add(sp, "./models");
    const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
    char buf[PATH_MAX];
    /* XDG: a relative XDG_DATA_HOME is invalid and ignored. */
    if (ok && xdg && xdg[0] == '/') {
        if ((size_t)snprintf(buf, sizeof buf, "%s/upres/models", xdg) < sizeof buf)
            ok = sp_add(sp, buf);
    } else if (ok && home && home[0]) {
        if ((size_t)snprintf(buf, sizeof buf, "%s/.local/share/upres/models", home) < sizeof buf)
            ok = sp_add(sp, buf);
    }
    if (!ok) {
        sp_free(sp);
        return cli_fail("out of memory");
    }
    return CLI_OK;
}

/* "a, b (missing), c" into buf, for messages. */
static const char *sp_describe(const search_path *sp, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = 0;
    for (size_t i = 0; i < sp->n && n + 1 < cap; i++) {
        char d[PATH_MAX];
        int w = snprintf(buf + n, cap - n, "%s%s%s", i ? ", " : "",
                         cli_clean(sp->dirs[i], d, sizeof d), sp->exists[i] ? "" : " (missing)");
        if (w < 0) break;
        n += (size_t)w;
    }
    if (n >= cap && cap > 4) strcpy(buf + cap - 4, "...");
    return buf;
}

/* Model formats in preference order, as told by the file extension (the
 * library judges the bytes; the name only decides what to try). */
enum { KIND_SAFETENSORS = 0, KIND_PTH = 1, KIND_NCNN = 2, KIND_NONE = 3 };

static int kind_of(const char *name)
{
    const char *d = ext_dot(name);
    if (!d) return KIND_NONE;
    if (!strcasecmp(d, ".safetensors")) return KIND_SAFETENSORS;
    if (!strcasecmp(d, ".pth") || !strcasecmp(d, ".pt")) return KIND_PTH;
    if (!strcasecmp(d, ".param")) return KIND_NCNN;
    return KIND_NONE;
}

static const char *kind_name(int kind)
{
    return kind == KIND_SAFETENSORS ? "safetensors" : kind == KIND_PTH ? "pth" : "ncnn";
}

/* One model file found in the search path. */
typedef struct model_file {
    char *path;   /* owned: search folder + "/" + rel */
    char *rel;    /* owned: path below its search folder, extension removed */
    int kind;
    size_t dir;   /* index in the search path */
    dev_t dev;
    ino_t ino;
} model_file;

typedef struct model_list {
    model_file *v;
    size_t n, cap;
} model_list;

static void ml_free(model_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].path);
        free(l->v[i].rel);
    }
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names in folder `dir` (hidden ones left out), malloc()ed; *n is
 * their count. Returns NULL (and *n = 0) when unreadable or out of memory;
 * *oom tells which. */
static char **list_dir(const char *dir, size_t *n, int *oom)
{
    *n = 0;
    *oom = 0;
    DIR *d = opendir(dir);
    if (!d) return NULL;
    char **v = NULL;
    size_t cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        if (*n == cap) {
            size_t nc = cap ? cap * 2 : 32;
            char **nv = realloc(v, nc * sizeof *nv);
            if (!nv) goto fail;
            v = nv;
            cap = nc;
        }
        if (!(v[*n] = dup_str(e->d_name))) goto fail;
        (*n)++;
    }
    closedir(d);
    if (*n) qsort(v, *n, sizeof *v, cmp_names);
    if (!v) v = calloc(1, sizeof *v);
    if (!v) *oom = 1;
    return v;
fail:
    closedir(d);
    for (size_t i = 0; i < *n; i++) free(v[i]);
    free(v);
    *n = 0;
    *oom = 1;
    return NULL;
}

static void free_names(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

/* Adds the model files below `dir` (rel: its path below the search folder,
 * "" at the top) in name order, depth-first. Files are matched by (device,
 * inode) so a folder reached twice (links, nested search folders) lists
 * each file once. Returns 0 when out of memory. */
static int scan_dir(model_list *l, const char *dir, const char *rel, size_t sp_index, int depth,
                    size_t *budget)
{
    size_t n;
    int oom;
    char **names = list_dir(dir, &n, &oom);
    if (!names) return !oom;
    int ok = 1;
    for (size_t i = 0; ok && i < n && *budget; i++) {
        (*budget)--;
        char *path = join_path(dir, names[i]);
        char *r = rel[0] ? join_path(rel, names[i]) : dup_str(names[i]);
        struct stat sb;
        if (!path || !r) {
            ok = 0;
        } else if (stat(path, &sb) != 0) {
            /* dangling link or a race: nothing to list */
        } else if (S_ISDIR(sb.st_mode)) {
            if (depth < MODEL_DEPTH) ok = scan_dir(l, path, r, sp_index, depth + 1, budget);
        } else if (S_ISREG(sb.st_mode) && kind_of(names[i]) != KIND_NONE) {
            int dup = 0;
            for (size_t k = 0; k < l->n && !dup; k++)
                dup = l->v[k].dev == sb.st_dev && l->v[k].ino == sb.st_ino;
            if (!dup) {
                if (l->n == l->cap) {
                    size_t nc = l->cap ? l->cap * 2 : 32;
                    model_file *nv = realloc(l->v, nc * sizeof *nv);
                    if (!nv) ok = 0;
                    else l->v = nv, l->cap = nc;
                }
                if (ok) {
                    model_file *m = &l->v[l->n++];
                    m->path = path;
                    m->rel = r;
                    m->kind = kind_of(names[i]);
                    *(char *)ext_dot(m->rel) = 0;
                    m->dir = sp_index;
                    m->dev = sb.st_dev;
                    m->ino = sb.st_ino;
                    path = r = NULL;
                }
            }
        }
        free(path);
        free(r);
    }
    free_names(names, n);
    return ok;
}

/* Every model file in the search path, in search order. Returns CLI_OK or
 * CLI_FAIL (out of memory, message printed). */
static int scan_models(const search_path *sp, model_list *l)
{
    memset(l, 0, sizeof *l);
    for (size_t i = 0; i < sp->n; i++) {
        size_t budget = MODEL_SCAN_MAX;
        if (sp->exists[i] && !scan_dir(l, sp->dirs[i], "", i, 0, &budget)) {
            ml_free(l);
            return cli_fail("out of memory");
        }
    }
    return CLI_OK;
}

/* How well `cand` (a stem, or a path below a search folder, without
 * extension) matches the model name `name` (without extension): 0 equal,
 * 1 equal ignoring case, 2 `name` plus a scale suffix (-x4, _x2, -4x; the
 * scale goes to *scale), -1 no match. */
static int match_name(const char *cand, const char *name, int *scale)
{
    if (!strcmp(cand, name)) return 0;
    if (!strcasecmp(cand, name)) return 1;
    size_t n = strlen(name);
    if (strncasecmp(cand, name, n) != 0) return -1;
    const char *s = cand + n;
    if (*s != '-' && *s != '_') return -1;
    s++;
    int x_first = *s == 'x' || *s == 'X';
    if (x_first) s++;
    if (!isdigit((unsigned char)*s)) return -1;
    long v = 0;
    while (isdigit((unsigned char)*s) && v < 1000) v = v * 10 + (*s++ - '0');
    if (!x_first) {
        if (*s != 'x' && *s != 'X') return -1;
        s++;
    }
    if (*s) return -1;
    *scale = (int)v;
    return 2;
}

/* The candidate string of `m` that `name` is compared with: its stem, or
 * for a name with folders ("models-se/up2x") the same number of trailing
 * path components. */
static const char *match_target(const model_file *m, const char *name)
{
    int slashes = 0;
    for (const char *p = name; *p; p++) slashes += *p == '/';
    const char *t = m->rel + strlen(m->rel);
    while (t > m->rel) {
        if (t[-1] == '/' && slashes-- == 0) break;
        t--;
    }
    return slashes > 0 ? NULL : t;
}

/* Finds the model called `name` (see the help for the rules); want_scale
 * (0 = none) breaks ties between scale-suffixed names. Returns the index in
 * l or -1; *matches receives how many files matched at the best rank. */
static long find_model(const model_list *l, const char *name, int want_scale, size_t *matches)
{
    char base[PATH_MAX];
    int want_kind = kind_of(name);
    *matches = 0;
    /* A name this long is no file below a search folder; cutting it would
     * match something else (or lose the extension's dot). */
    if ((size_t)snprintf(base, sizeof base, "%s", name) >= sizeof base) return -1;
    if (want_kind != KIND_NONE) *(char *)ext_dot(base) = 0;
    /* "./x" and trailing slashes add nothing to a name. */
    char *b = base;
    while (b[0] == '.' && b[1] == '/') b += 2;
    long best = -1;
    int best_rank = 9, best_scale = 0;
    for (size_t i = 0; i < l->n; i++) {
        const model_file *m = &l->v[i];
        /* A name with an extension means exactly that file name. */
        if (want_kind != KIND_NONE && strcasecmp(ext_dot(m->path), ext_dot(name)) != 0) continue;
        const char *t = match_target(m, b);
        int sc = 0, rank = t ? match_name(t, b, &sc) : -1;
        if (rank < 0 || (rank == 2 && want_kind != KIND_NONE)) continue;
        if (best < 0 || rank < best_rank) {
            best = (long)i;
            best_rank = rank;
            best_scale = sc;
            *matches = 1;
            continue;
        }
        if (rank > best_rank) continue;
        (*matches)++;
        /* Same rank: the earlier search folder (--model-path DIR is searched
         * first, so it must win over a file of the same name elsewhere),
         * then the scale asked for, then the larger scale (a x4 network
         * resized down beats a x2 one made from it by a resize layer), then
         * the format preference; the list is in search order, so an earlier
         * file wins the remaining ties. */
        if (m->dir != l->v[best].dir) continue;
        int better, a_hit = rank == 2 && sc == want_scale, b_hit = rank == 2 && best_scale == want_scale;
        if (a_hit != b_hit) better = a_hit;
        else if (rank == 2 && sc != best_scale) better = sc > best_scale;
        else better = m->kind < l->v[best].kind;
        if (better) {
            best = (long)i;
            best_scale = sc;
        }
    }
    return best;
}

/* ---- model loading --------------------------------------------------------- */

static const char *model_hint(int status)
{
    switch (status) {
    case UPRES_ERR_IO: return "check the file name and its permissions";
    case UPRES_ERR_UNKNOWN_FORMAT:
        return "upres reads PyTorch .pth/.pt, .safetensors and ncnn .param/.bin models";
    case UPRES_ERR_UNSUPPORTED:
        return "this network or file feature is not supported; 'upres models' lists what loads";
    case UPRES_ERR_CORRUPT: return "the file is damaged, download it again";
    case UPRES_ERR_LIMIT:
    case UPRES_ERR_OVERFLOW: return "the model is larger than upres accepts";
    case UPRES_ERR_NOMEM: return "not enough memory";
    default: return "this is a bug in upres, please report it";
    }
}

/* One-line detail of a failed model load into buf. */
static const char *model_error(upres_ctx *ctx, int st, char *buf, size_t cap)
{
    char d[600];
    /* upres_strerror speaks of images; say "model" where it matters. */
    const char *what = st == UPRES_ERR_UNKNOWN_FORMAT ? "not a model format upres reads"
                       : st == UPRES_ERR_CORRUPT    ? "corrupt or truncated model file"
                       : st == UPRES_ERR_UNSUPPORTED ? "unsupported model"
                                                    : upres_strerror(st);
    cli_clean(upres_ctx_error(ctx), d, sizeof d);
    if (*d && strcmp(d, upres_strerror(st)) != 0)
        snprintf(buf, cap, "%s (%s)", what, d);
    else
        snprintf(buf, cap, "%s", what);
    return buf;
}

/* Loads `path`; on failure prints "cannot load model" with the library's
 * detail (as a warning when `warn_only`) and returns CLI_FAIL. */
static int load_model(const cli_global *g, upres_ctx *ctx, const char *path, int warn_only,
                      upres_model **out)
{
    double t0 = cli_now();
    char p[1024], e[800];
    int st = upres_model_load(ctx, path, out);
    if (st != UPRES_OK) {
        cli_progress_clear();
        fprintf(stderr, "upres: %scannot load model '%s': %s; %s\n", warn_only ? "warning: " : "",
                cli_clean(path, p, sizeof p), model_error(ctx, st, e, sizeof e),
                warn_only ? "trying the next default model" : model_hint(st));
        return CLI_FAIL;
    }
    if (g->verbose) {
        upres_model_info mi;
        upres_model_get_info(*out, &mi);
        cli_verbose(g, "model '%s': %s%s%s, x%d, %llu parameters, loaded in %.1f ms",
                    cli_clean(path, p, sizeof p), mi.format, strcmp(mi.arch, mi.format) ? " " : "",
                    strcmp(mi.arch, mi.format) ? mi.arch : "", mi.scale,
                    (unsigned long long)mi.params, (cli_now() - t0) * 1e3);
    }
    return CLI_OK;
}

/* A name that can only mean a path: absolute, ./ or ../, or ~. */
static int pure_path(const char *s)
{
    return s[0] == '/' || s[0] == '~' || !strncmp(s, "./", 2) || !strncmp(s, "../", 3);
}

int cli_resolve_model(const cli_global *g, upres_ctx *ctx, const char *want,
                         const cli_paths *model_dirs, int want_scale, upres_model **model,
                         char **path)
{
    *model = NULL;
    *path = NULL;
    char p[1024], where[2048];
    struct stat sb;
    int exists = want && stat(want, &sb) == 0, err = exists ? 0 : errno;
    if (exists && S_ISDIR(sb.st_mode) && pure_path(want))
        return cli_fail("cannot load model '%s': it is a folder; give a model file or a "
                        "name (see 'upres models')", cli_clean(want, p, sizeof p));
    /* A folder that happens to carry the name (a model's own folder in the
     * working folder) does not hide the model of that name. */
    /* A FIFO or a device would block or stream forever. */
    if (exists && !S_ISDIR(sb.st_mode) && !S_ISREG(sb.st_mode))
        return cli_fail("cannot load model '%s': not a regular file; give a model file or a "
                        "name (see 'upres models')", cli_clean(want, p, sizeof p));
    if (exists && !S_ISDIR(sb.st_mode)) {
        if (!(*path = dup_str(want))) return cli_fail("out of memory");
        int rc = load_model(g, ctx, want, 0, model);
        if (rc != CLI_OK) free(*path), *path = NULL;
        return rc;
    }
    if (want && pure_path(want))
        return cli_fail("cannot load model '%s': %s; check the path, or give a model name "
                        "(see 'upres models')", cli_clean(want, p, sizeof p), strerror(err));
    search_path sp;
    model_list l;
    if (sp_build(&sp, model_dirs) != CLI_OK) return CLI_FAIL;
    if (scan_models(&sp, &l) != CLI_OK) {
        sp_free(&sp);
        return CLI_FAIL;
    }
    sp_describe(&sp, where, sizeof where);
    int rc = CLI_OK;
    if (want) {
        size_t matches = 0;
        long k = find_model(&l, want, want_scale, &matches);
        if (k < 0) {
            rc = cli_fail("cannot find model '%s': no such file, and no model of that name in "
                          "%s; give a path, --model-path DIR, or see 'upres models'",
                          cli_clean(want, p, sizeof p), where);
        } else {
            if (matches > 1 && g->verbose) {
                char q[1024];
                cli_verbose(g, "model name '%s' matches %zu files; using '%s' (%s)",
                            cli_clean(want, p, sizeof p), matches,
                            cli_clean(l.v[k].path, q, sizeof q), kind_name(l.v[k].kind));
            } else {
                char q[1024];
                cli_verbose(g, "model name '%s' -> '%s'", cli_clean(want, p, sizeof p),
                            cli_clean(l.v[k].path, q, sizeof q));
            }
            rc = load_model(g, ctx, l.v[k].path, 0, model);
            if (rc == CLI_OK && !(*path = dup_str(l.v[k].path))) rc = cli_fail("out of memory");
        }
    } else {
        size_t nd = sizeof default_models / sizeof *default_models;
        for (size_t i = 0; i < nd && !*model; i++) {
            size_t matches;
            long k = find_model(&l, default_models[i], 4, &matches);
            if (k < 0) continue;
            cli_verbose(g, "default model %s -> '%s' (%s)", default_models[i],
                        cli_clean(l.v[k].path, p, sizeof p), kind_name(l.v[k].kind));
            if (load_model(g, ctx, l.v[k].path, 1, model) == CLI_OK &&
                !(*path = dup_str(l.v[k].path))) {
                upres_model_free(*model);
                *model = NULL;
                rc = cli_fail("out of memory");
                break;
            }
        }
        if (rc == CLI_OK && !*model) {
            char others[96] = "";
            if (l.n)
                snprintf(others, sizeof others, " (%zu other model%s there: pick one with -m)",
                         l.n, l.n == 1 ? " is" : "s are");
            cli_progress_clear();
            fprintf(stderr,
                    "upres: warning: no model found in %s%s; upscaling with lanczos3 instead "
                    "(install realesr-general-x4v3 there or use -m)\n",
                    where, others);
        }
    }
    ml_free(&l);
    sp_free(&sp);
    return rc;
}

/* ---- upscale --------------------------------------------------------------- */

typedef struct upscale_opts {
    const char *model;        /* -m */
    cli_paths model_dirs;     /* --model-path */
    double scale;             /* -s (0 = not given) */
    uint32_t width, height;   /* --width / --height (0 = not given) */
    long tile;                /* --tile; 0 = auto */
    long tile_pad;            /* --tile-pad; -1 = model's */
    uint64_t memory;          /* --memory; 0 = library default */
    upres_color_mode color;
    upres_alpha_mode alpha;
    int json;
    int recursive;
    const char *in_dir;       /* -i */
    const char *out;          /* -o */
    cli_output out_opts;
} upscale_opts;

/* Tiles of the running upscale, from its progress reports. */
static uint64_t upscale_tiles;

static int upscale_progress(void *user, const char *what, uint64_t done, uint64_t total)
{
    if (what && !strcmp(what, "upscale")) upscale_tiles = total;
    return cli_progress_cb(user, what, done, total);
}

/* cli_make_ctx with a progress callback that also counts the tiles. */
static int make_ctx(const cli_global *g, upres_ctx **ctx)
{
    upres_ctx_desc d = upres_ctx_desc_defaults();
    d.threads = g->threads;
    if (g->max_pixels) d.limits.max_pixels = g->max_pixels;
    d.progress = upscale_progress;
    int st = upres_ctx_new(&d, ctx);
    if (st != UPRES_OK) return cli_report(NULL, st, "start", NULL);
    cli_progress_start(!g->quiet && isatty(2));
    return CLI_OK;
}

/* round(n * num / den), at least 1; den > 0. */
static uint32_t ratio(uint32_t n, uint32_t num, uint32_t den)
{
    uint64_t p = (uint64_t)n * num, q = p / den;
    if (2 * (p % den) >= den) q++;
    if (q < 1) q = 1;
    return q > UINT32_MAX ? UINT32_MAX : (uint32_t)q;
}

/* Output size of a w x h input. */
static void out_size(const upscale_opts *o, double scale, uint32_t w, uint32_t h, uint32_t *ow,
                     uint32_t *oh)
{
    if (o->width) {
        *ow = o->width;
        *oh = ratio(h, o->width, w);
    } else if (o->height) {
        *oh = o->height;
        *ow = ratio(w, o->height, h);
    } else {
        double a = floor((double)w * scale + 0.5), b = floor((double)h * scale + 0.5);
        *ow = a < 1 ? 1 : a >= 4294967295.0 ? UINT32_MAX : (uint32_t)a;
        *oh = b < 1 ? 1 : b >= 4294967295.0 ? UINT32_MAX : (uint32_t)b;
    }
}

/* The default output name of `in`: beside it (or in `dir`), stem + -xS or
 * -WxH, IN's extension when it names a format we write, else the one of
 * the format read. */
static int default_out_name(const char *in, const char *dir, const upscale_opts *o, double scale,
                            uint32_t ow, uint32_t oh, upres_format fmt, char *out, size_t cap)
{
    const char *b = base_name(in), *dot = ext_dot(in);
    size_t stem_len = dot ? (size_t)(dot - b) : strlen(b);
    char ext[32];
    if (dot && upres_format_from_path(in) != UPRES_FORMAT_UNKNOWN)
        snprintf(ext, sizeof ext, "%s", dot);
    else
        snprintf(ext, sizeof ext, ".%s", fmt == UPRES_FORMAT_JPEG ? "jpg"
                                          : fmt == UPRES_FORMAT_TIFF ? "tif"
                                          : fmt == UPRES_FORMAT_WEBP ? "webp" : "png");
    char tag[64];
    if (o->width || o->height) snprintf(tag, sizeof tag, "-%ux%u", ow, oh);
    else snprintf(tag, sizeof tag, "-x%g", scale);
    int n;
    if (dir)
        n = snprintf(out, cap, "%s%s%.*s%s%s", dir,
                     dir[0] && dir[strlen(dir) - 1] != '/' ? "/" : "", (int)stem_len, b, tag, ext);
    else
        n = snprintf(out, cap, "%.*s%.*s%s%s", (int)(b - in), in, (int)stem_len, b, tag, ext);
    return n >= 0 && (size_t)n < cap;
}

/* Upscales one file. `out` is the output path, or NULL for the default name
 * (in `out_dir` when not NULL). Returns an exit code. */
static int upscale_one(const cli_global *g, upres_ctx *ctx, const upscale_opts *o,
                       upres_model *model, const char *model_path, const char *in,
                       const char *out, const char *out_dir)
{
    double t0 = cli_now();
    char p[1024], q[1024];
    upres_image *src = NULL, *dst = NULL;
    upres_file_info info;
    int rc = cli_load(g, ctx, in, 1, &src, &info);
    if (rc != CLI_OK) return rc;
    upres_model_info mi;
    memset(&mi, 0, sizeof mi);
    if (model) upres_model_get_info(model, &mi);
    /* The name is the file's stem: keep it from breaking message lines. */
    char mname[sizeof mi.name];
    cli_clean(model ? mi.name : "lanczos3", mname, sizeof mname);
    double scale = o->scale > 0 ? o->scale : model ? (double)mi.scale : 4.0;
    uint32_t ow, oh;
    out_size(o, scale, src->width, src->height, &ow, &oh);
    char name[PATH_MAX + 128];
    if (!out) {
        if (!default_out_name(in, out_dir, o, scale, ow, oh, info.format, name, sizeof name))
            rc = cli_fail("cannot name the output of '%s': the path is too long; give -o OUT",
                          cli_clean(in, p, sizeof p));
        out = name;
    }
    upres_encode_desc ed;
    if (rc == CLI_OK) rc = cli_output_desc("upscale", &o->out_opts, out, &ed);
    if (rc == CLI_OK) rc = cli_check_paths(in, out, o->out_opts.force);
    if (rc == CLI_OK) {
        const upres_limits *lim = upres_ctx_limits(ctx);
        int st = upres_limits_check(lim, ow, oh, src->channels,
                                    (uint32_t)upres_depth_bytes(src->depth));
        if (st != UPRES_OK) {
            char why[96] = "";
            if (ow > lim->max_side || oh > lim->max_side)
                snprintf(why, sizeof why, " (at most %u pixels a side)", lim->max_side);
            else if ((uint64_t)ow * oh > lim->max_pixels)
                snprintf(why, sizeof why, " (at most %llu pixels; see --max-pixels)",
                         (unsigned long long)lim->max_pixels);
            rc = cli_fail("cannot upscale '%s' to %ux%u: %s%s; ask for a smaller size",
                          cli_clean(in, p, sizeof p), ow, oh, upres_strerror(st), why);
        }
    }
    if (rc == CLI_OK) {
        upres_upscale_desc d = upres_upscale_desc_defaults();
        d.width = ow;
        d.height = oh;
        d.scale = scale;
        d.tile = (uint32_t)o->tile;
        d.tile_pad = (int)o->tile_pad;
        d.memory_bytes = o->memory;
        d.color = o->color;
        d.alpha = o->alpha;
        upscale_tiles = 0;
        double t1 = cli_now();
        int st = upres_upscale(ctx, model, src, &d, &dst);
        if (st == UPRES_OK && cli_interrupted()) st = UPRES_ERR_CANCELLED;
        if (st != UPRES_OK) {
            rc = cli_report(ctx, st, "upscale", in);
        } else {
            if (model && mi.global_pooling && upscale_tiles > 1) {
                cli_progress_clear();
                fprintf(stderr,
                        "upres: warning: %s averages over its whole input, so the %llu tiles "
                        "of '%s' may show seams; give it more memory (--memory) or a larger "
                        "--tile so it runs in one tile\n",
                        mname, (unsigned long long)upscale_tiles, cli_clean(in, p, sizeof p));
            }
            cli_verbose(g, "upscaled %ux%u -> %ux%u with %s, %llu tile%s, %d thread%s in %.1f ms",
                        src->width, src->height, dst->width, dst->height,
                        mname, (unsigned long long)upscale_tiles,
                        upscale_tiles == 1 ? "" : "s", upres_ctx_threads(ctx),
                        upres_ctx_threads(ctx) == 1 ? "" : "s", (cli_now() - t1) * 1e3);
        }
    }
    if (rc == CLI_OK) rc = cli_save(g, ctx, dst, out, &ed);
    if (rc == CLI_OK) {
        double secs = cli_now() - t0;
        if (o->json) {
            cli_progress_clear();
            fputs("{\"input\": ", stdout);
            cli_json_str(stdout, in);
            fputs(", \"output\": ", stdout);
            cli_json_str(stdout, out);
            fputs(", \"model\": ", stdout);
            cli_json_str(stdout, model ? model_path : NULL);
            fputs(", \"arch\": ", stdout);
            cli_json_str(stdout, model ? mi.arch : NULL);
            printf(", \"scale\": %.6g, \"model_scale\": ", (double)dst->width / src->width);
            if (model) printf("%d", mi.scale);
            else fputs("null", stdout);
            printf(", \"width\": %u, \"height\": %u, \"tile\": %ld, \"tiles\": %llu, "
                   "\"seconds\": %.3f}\n",
                   dst->width, dst->height, o->tile, (unsigned long long)upscale_tiles, secs);
            fflush(stdout);
        } else {
            cli_note(g, "%s: %ux%u (from %ux%u, %s)", cli_clean(out, q, sizeof q), dst->width,
                     dst->height, src->width, src->height, mname);
        }
        cli_verbose(g, "total %.1f ms", secs * 1e3);
    }
    upres_image_free(dst);
    upres_image_free(src);
    return rc;
}

/* One image found under -i DIR: its path and its path below DIR. */
typedef struct batch_list {
    cli_paths paths, rels;
} batch_list;

/* Collects the files below `dir` (rel: below the -i folder) in name order;
 * folders only when `recursive`, never hidden ones, links to folders or
 * the output folder (`skip_dev`/`skip_ino`, when `skip`). Returns 0 when out
 * of memory. */
static int collect_inputs(batch_list *b, const char *dir, const char *rel, int recursive,
                          int skip, dev_t skip_dev, ino_t skip_ino)
{
    size_t n;
    int oom;
    char **names = list_dir(dir, &n, &oom);
    if (!names) {
        if (!oom) {
            char p[1024];
            cli_progress_clear();
            fprintf(stderr, "upres: warning: cannot read folder '%s': %s; skipped\n",
                    cli_clean(dir, p, sizeof p), strerror(errno));
        }
        return !oom;
    }
    int ok = 1;
    for (size_t i = 0; ok && i < n; i++) {
        char *path = join_path(dir, names[i]);
        char *r = rel[0] ? join_path(rel, names[i]) : dup_str(names[i]);
        struct stat ls, sb;
        if (!path || !r) {
            ok = 0;
        } else if (lstat(path, &ls) == 0 && S_ISDIR(ls.st_mode)) {
            if (recursive && !(skip && ls.st_dev == skip_dev && ls.st_ino == skip_ino))
                ok = collect_inputs(b, path, r, recursive, skip, skip_dev, skip_ino);
        } else if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
            ok = cli_paths_add(&b->paths, path) && cli_paths_add(&b->rels, r);
        }
        free(path);
        free(r);
    }
    free_names(names, n);
    return ok;
}

/* 1 when the file starts like an image we read. */
static int looks_like_image(const char *path)
{
    unsigned char head[16];
    FILE *f = fopen(path, "rb");
    if (!f) return 1; /* let the load report why it cannot be read */
    size_t n = fread(head, 1, sizeof head, f);
    fclose(f);
    return upres_format_from_magic(head, n) != UPRES_FORMAT_UNKNOWN;
}

/* -i DIR -o DIR: every image below DIR into the same relative paths below
 * the output folder. */
static int upscale_dir(const cli_global *g, upres_ctx *ctx, const upscale_opts *o,
                       upres_model *model, const char *model_path)
{
    char p[1024], q[1024];
    if (!mkdir_all(o->out))
        return cli_fail("cannot create folder '%s': %s; choose another output folder",
                        cli_clean(o->out, p, sizeof p), strerror(errno));
    struct stat od;
    int have_od = stat(o->out, &od) == 0;
    batch_list b;
    memset(&b, 0, sizeof b);
    if (!collect_inputs(&b, o->in_dir, "", o->recursive, have_od, have_od ? od.st_dev : 0,
                        have_od ? od.st_ino : 0)) {
        cli_paths_free(&b.paths);
        cli_paths_free(&b.rels);
        return cli_fail("out of memory");
    }
    size_t done = 0, skipped = 0, failed = 0;
    int rc = CLI_OK;
    /* Outputs written under a name with .png added: "x" and "x.png" would
     * otherwise silently replace each other's result. Name order puts "x"
     * first, so only these names need remembering. */
    cli_paths taken = {0};
    for (size_t k = 0; k < b.paths.n; k++) {
        const char *in = b.paths.v[k], *rel = b.rels.v[k];
        if (cli_interrupted()) {
            rc = cli_report(ctx, UPRES_ERR_CANCELLED, "finish the folder at", in);
            break;
        }
        if (!looks_like_image(in)) {
            cli_progress_clear();
            fprintf(stderr, "upres: warning: skipped '%s': not a PNG, JPEG, TIFF or WebP image\n",
                    cli_clean(in, p, sizeof p));
            skipped++;
            continue;
        }
        /* Same relative path; a name whose extension is no output format
         * gets .png added. */
        char out[PATH_MAX + 16];
        int add_png = upres_format_from_path(rel) == UPRES_FORMAT_UNKNOWN;
        int n = snprintf(out, sizeof out, "%s/%s%s", o->out, rel, add_png ? ".png" : "");
        if (n < 0 || (size_t)n >= sizeof out) {
            cli_fail("cannot write the result of '%s': the path is too long",
                     cli_clean(in, p, sizeof p));
            failed++;
            continue;
        }
        size_t t = 0;
        while (t < taken.n && strcmp(taken.v[t], out) != 0) t++;
        if (t < taken.n) {
            cli_fail("cannot write the result of '%s': '%s' is the result of another input "
                     "already; rename one of them", cli_clean(in, p, sizeof p),
                     cli_clean(out, q, sizeof q));
            failed++;
            continue;
        }
        char parent[PATH_MAX + 16];
        snprintf(parent, sizeof parent, "%s", out);
        *strrchr(parent, '/') = 0;
        if (!mkdir_all(parent)) {
            cli_fail("cannot create folder '%s': %s; choose another output folder",
                     cli_clean(parent, q, sizeof q), strerror(errno));
            failed++;
            continue;
        }
        int r = upscale_one(g, ctx, o, model, model_path, in, out, NULL);
        if (r == CLI_OK) done++;
        else failed++;
        if (r == CLI_OK && add_png && !cli_paths_add(&taken, out)) {
            rc = cli_fail("out of memory");
            break;
        }
        if (r != CLI_OK && cli_interrupted()) {
            rc = CLI_FAIL;
            break;
        }
    }
    cli_progress_clear();
    size_t total = b.paths.n;
    if (total == 0) {
        rc = cli_fail("no files in '%s'%s; check the folder", cli_clean(o->in_dir, p, sizeof p),
                      o->recursive ? "" : " (use --recursive for its subfolders)");
    } else if (!g->quiet) {
        /* Stdout carries only JSON with --json. */
        fprintf(o->json ? stderr : stdout,
                "upscale: %zu written, %zu skipped, %zu failed (of %zu files)\n", done, skipped,
                failed, total);
    }
    if (rc == CLI_OK && failed) rc = CLI_FAIL;
    cli_paths_free(&taken);
    cli_paths_free(&b.paths);
    cli_paths_free(&b.rels);
    return rc;
}

/* Matches one upscale option at the cursor. */
int cli_model_option(cli_args *a, const char **model, cli_paths *dirs)
{
    const char *v = NULL;
    int r;
    if ((r = cli_match(a, "model", 'm', &v)) != CLI_NOMATCH) {
        if (r == CLI_MATCH && !*v)
            return cli_usage_error(a->cmd, "empty model name (want a file or a name, see "
                                           "'upres models')"), CLI_BAD;
        if (r == CLI_MATCH) *model = v;
        return r;
    }
    if ((r = cli_match(a, "model-path", 0, &v)) != CLI_NOMATCH) {
        if (r == CLI_MATCH && !cli_paths_add(dirs, v))
            return cli_fail("out of memory"), CLI_BAD;
        return r;
    }
    return CLI_NOMATCH;
}


int cli_tile_option(cli_args *a, long *tile, long *tile_pad)
{
    const char *v = NULL;
    char buf[128];
    long n;
    int r;
    if ((r = cli_match(a, "tile", 0, &v)) != CLI_NOMATCH) {
        if (r != CLI_MATCH) return r;
        if (!cli_parse_long(v, 0, 65535, &n) || v[0] == '+' || v[0] == '-' || (n > 0 && n < 8))
            return cli_usage_error(a->cmd, "bad tile size '%s' (want 0 for automatic, or 8..65535)",
                                   cli_clean(v, buf, sizeof buf)), CLI_BAD;
        *tile = n;
        return r;
    }
    if ((r = cli_match(a, "tile-pad", 0, &v)) != CLI_NOMATCH) {
        if (r != CLI_MATCH) return r;
        if (!cli_parse_long(v, 0, 4096, &n) || v[0] == '+')
            return cli_usage_error(a->cmd, "bad tile padding '%s' (want 0..4096 pixels)",
                                   cli_clean(v, buf, sizeof buf)), CLI_BAD;
        *tile_pad = n;
        return r;
    }
    return CLI_NOMATCH;
}

static int upscale_option(cli_args *a, void *opts)
{
    upscale_opts *o = opts;
    const char *v = NULL;
    char buf[128];
    long n;
    int r;
    if ((r = cli_model_option(a, &o->model, &o->model_dirs)) != CLI_NOMATCH) return r;
    if ((r = cli_match(a, "output", 'o', &v)) != CLI_NOMATCH) {
        if (r == CLI_MATCH && !*v)
            return cli_usage_error(a->cmd, "empty output name (want a file or a folder)"), CLI_BAD;
        if (r == CLI_MATCH) o->out = v;
        return r;
    }
    if ((r = cli_match(a, "input", 'i', &v)) != CLI_NOMATCH) {
        if (r == CLI_MATCH && !*v)
            return cli_usage_error(a->cmd, "empty input name (want a file or a folder)"), CLI_BAD;
        if (r == CLI_MATCH) o->in_dir = v;
        return r;
    }
    if ((r = cli_match(a, "scale", 's', &v)) != CLI_NOMATCH) {
        if (r != CLI_MATCH) return r;
        if (!cli_parse_factor(v, &o->scale) || o->scale > 1024)
            return cli_usage_error(a->cmd, "bad scale '%s' (want a number > 0 and at most 1024, "
                                           "e.g. 2 or 1.5)",
                                   cli_clean(v, buf, sizeof buf)), CLI_BAD;
        return r;
    }
    if ((r = cli_match(a, "width", 0, &v)) != CLI_NOMATCH) {
        if (r != CLI_MATCH) return r;
        if (!cli_parse_long(v, 1, UINT32_MAX, &n) || v[0] == '+')
            return cli_usage_error(a->cmd, "bad width '%s' (want a positive integer)",
                                   cli_clean(v, buf, sizeof buf)), CLI_BAD;
        o->width = (uint32_t)n;
        return r;
    }
    if ((r = cli_match(a, "height", 0, &v)) != CLI_NOMATCH) {
        if (r != CLI_MATCH) return r;
        if (!cli_parse_long(v, 1, UINT32_MAX, &n) || v[0] == '+')
            return cli_usage_error(a->cmd, "bad height '%s' (want a positive integer)",
                                   cli_clean(v, buf, sizeof buf)), CLI_BAD;
        o->height = (uint32_t)n;
        return r;
    }
    if ((r = cli_tile_option(a, &o->tile, &o->tile_pad)) != CLI_NOMATCH) return r;
    if ((r = cli_match(a, "memory", 0, &v)) != CLI_NOMATCH) {
        if (r != CLI_MATCH) return r;
        if (!cli_parse_memory(v, &o->memory) || o->memory < (1u << 20))
            return cli_usage_error(a->cmd, "bad memory size '%s' (want e.g. 512M or 2G, at "
                                           "least 1M)", cli_clean(v, buf, sizeof buf)), CLI_BAD;
        return r;
    }
    if ((r = cli_match(a, "color", 0, &v)) != CLI_NOMATCH) {
        if (r != CLI_MATCH) return r;
        if (!strcmp(v, "rgb")) o->color = UPRES_COLOR_RGB;
        else if (!strcmp(v, "luma")) o->color = UPRES_COLOR_LUMA;
        else
            return cli_usage_error(a->cmd, "unknown color mode '%s' (rgb, luma)",
                                   cli_clean(v, buf, sizeof buf)), CLI_BAD;
        return r;
    }
    if ((r = cli_match(a, "alpha", 0, &v)) != CLI_NOMATCH) {
        if (r != CLI_MATCH) return r;
        if (!strcmp(v, "lanczos") || !strcmp(v, "lanczos3")) o->alpha = UPRES_ALPHA_LANCZOS;
        else if (!strcmp(v, "model")) o->alpha = UPRES_ALPHA_MODEL;
        else
            return cli_usage_error(a->cmd, "unknown alpha mode '%s' (lanczos, model)",
                                   cli_clean(v, buf, sizeof buf)), CLI_BAD;
        return r;
    }
    if ((r = cli_match(a, "json", 0, NULL)) != CLI_NOMATCH) {
        if (r == CLI_MATCH) o->json = 1;
        return r;
    }
    if ((r = cli_match(a, "recursive", 'r', NULL)) != CLI_NOMATCH) {
        if (r == CLI_MATCH) o->recursive = 1;
        return r;
    }
    return cli_output_option(a, &o->out_opts);
}

int cli_upscale_main(cli_global *g, int argc, char **argv)
{
    cli_args a = {argc, argv, 0, "upscale", 0};
    upscale_opts o;
    memset(&o, 0, sizeof o);
    o.tile_pad = -1;
    cli_output_defaults(&o.out_opts);
    const char *in = NULL;
    char buf[256];
    int exit_now;
    int rc = cli_parse_options(g, &a, upscale_option, &o, &in,
                               "want one IN; use -i DIR for a folder", &exit_now);
    if (exit_now >= 0) rc = exit_now;
    if (rc != CLI_OK || exit_now >= 0) goto done;
    /* -i with a file is the same as the operand. */
    if (o.in_dir && !is_dir(o.in_dir)) {
        if (in) {
            rc = cli_usage_error(a.cmd, "give IN or -i, not both");
            goto done;
        }
        in = o.in_dir;
        o.in_dir = NULL;
    }
    if (o.in_dir && in) {
        rc = cli_usage_error(a.cmd, "give IN or -i DIR, not both");
    } else if (!o.in_dir && !in) {
        rc = cli_usage_error(a.cmd, "missing input file (want IN, or -i DIR -o DIR)");
    } else if (o.in_dir && !o.out) {
        rc = cli_usage_error(a.cmd, "-i DIR needs -o DIR, the folder to write into");
    } else if ((o.width > 0) + (o.height > 0) + (o.scale > 0) > 1) {
        rc = cli_usage_error(a.cmd, "give only one of -s, --width, --height");
    } else if (o.recursive && !o.in_dir) {
        rc = cli_usage_error(a.cmd, "--recursive goes with -i DIR");
    }
    if (rc != CLI_OK) goto done;
    if (o.in_dir) {
        struct stat si, so;
        if (stat(o.in_dir, &si) == 0 && stat(o.out, &so) == 0 && si.st_dev == so.st_dev &&
            si.st_ino == so.st_ino && !o.out_opts.force) {
            rc = cli_fail("refusing to write into the input folder '%s' (the results would "
                          "replace the images); choose another -o folder, or pass --force",
                          cli_clean(o.out, buf, sizeof buf));
            goto done;
        }
    }
    const char *out_dir = NULL;
    if (!o.in_dir && o.out && is_dir(o.out)) {
        out_dir = o.out;
        o.out = NULL;
    }
    if (!o.in_dir && o.out) {
        /* Problems with OUT before any slow work (and before the model
         * search can warn). */
        upres_encode_desc ed;
        if ((rc = cli_output_desc(a.cmd, &o.out_opts, o.out, &ed)) != CLI_OK) goto done;
        if ((rc = cli_check_paths(in, o.out, o.out_opts.force)) != CLI_OK) goto done;
    }

    if (!o.in_dir) {
        /* A missing input is reported before a (slow) model load. */
        struct stat si;
        if (stat(in, &si) != 0) {
            rc = cli_fail("cannot read '%s': %s; check the file name", cli_clean(in, buf, sizeof buf),
                          strerror(errno));
            goto done;
        }
        if (S_ISDIR(si.st_mode)) {
            rc = cli_fail("cannot read '%s': it is a folder; give an image file, or -i DIR -o DIR",
                          cli_clean(in, buf, sizeof buf));
            goto done;
        }
    }

    upres_ctx *ctx = NULL;
    upres_model *model = NULL;
    char *model_path = NULL;
    if ((rc = make_ctx(g, &ctx)) == CLI_OK) {
        int want_scale = o.scale > 0 && o.scale == floor(o.scale) && o.scale <= 16
                             ? (int)o.scale : 0;
        rc = cli_resolve_model(g, ctx, o.model, &o.model_dirs, want_scale, &model, &model_path);
    }
    if (rc == CLI_OK) {
        if (o.in_dir) rc = upscale_dir(g, ctx, &o, model, model_path);
        else rc = upscale_one(g, ctx, &o, model, model_path, in, o.out, out_dir);
    }
    cli_progress_clear();
    upres_model_free(model);
    free(model_path);
    upres_ctx_free(ctx);
done:
    cli_paths_free(&o.model_dirs);
    return rc;
}

/* ---- models ---------------------------------------------------------------- */

/* The shortest name (stem, or trailing folders + stem) that makes `-m`
 * pick file i of l, into buf; the full path when no name does (a file of
 * the same name earlier in the search path or in a preferred format). */
static const char *select_name(const model_list *l, size_t i, char *buf, size_t cap)
{
    const char *rel = l->v[i].rel;
    const char *p = rel + strlen(rel);
    for (;;) {
        while (p > rel && p[-1] != '/') p--;
        size_t matches;
        if (find_model(l, p, 0, &matches) == (long)i) {
            snprintf(buf, cap, "%s", p);
            return buf;
        }
        if (p == rel) break;
        p--;
    }
    snprintf(buf, cap, "%s", l->v[i].path);
    return buf;
}

/* One row of `upres models`. */
typedef struct model_row {
    const model_file *f;
    char select[PATH_MAX];
    upres_model_info info;
    int loaded;
    char error[800];
} model_row;

/* "1.2M", "897k", "64" into buf. */
static const char *human_count(uint64_t n, char *buf, size_t cap)
{
    if (n >= 1000000000u) snprintf(buf, cap, "%.2fG", (double)n / 1e9);
    else if (n >= 1000000u) snprintf(buf, cap, "%.2fM", (double)n / 1e6);
    else if (n >= 1000u) snprintf(buf, cap, "%.1fk", (double)n / 1e3);
    else snprintf(buf, cap, "%llu", (unsigned long long)n);
    return buf;
}

int cli_models_main(cli_global *g, int argc, char **argv)
{
    cli_args a = {argc, argv, 0, "models", 0};
    cli_paths dirs = {0};
    int json = 0, rc = CLI_OK, exit_now = -1;
    char buf[256];
    while (rc == CLI_OK && exit_now < 0 && a.i < a.argc) {
        const char *arg = a.argv[a.i], *v;
        int r, stop = -1;
        if (a.only_operands || arg[0] != '-' || !arg[1]) {
            rc = cli_usage_error(a.cmd, "unexpected operand '%s' (use --model-path DIR)",
                                 cli_clean(arg, buf, sizeof buf));
        } else if (!strcmp(arg, "--")) {
            a.only_operands = 1;
            a.i++;
        } else if ((r = cli_match(&a, "model-path", 0, &v)) != CLI_NOMATCH) {
            if (r == CLI_BAD) rc = CLI_USAGE;
            else if (!cli_paths_add(&dirs, v)) rc = cli_fail("out of memory");
        } else if ((r = cli_match(&a, "json", 0, NULL)) != CLI_NOMATCH) {
            if (r == CLI_BAD) rc = CLI_USAGE;
            else json = 1;
        } else {
            r = cli_global_option(&a, g, &stop);
            if (r == CLI_BAD) rc = CLI_USAGE;
            else if (stop >= 0) exit_now = stop;
            else if (r == CLI_NOMATCH)
                rc = cli_usage_error(a.cmd, "unknown option '%s'", cli_clean(arg, buf, sizeof buf));
        }
    }
    if (rc != CLI_OK || exit_now >= 0) {
        cli_paths_free(&dirs);
        return exit_now >= 0 ? exit_now : rc;
    }
    search_path sp;
    model_list l;
    memset(&l, 0, sizeof l);
    if ((rc = sp_build(&sp, &dirs)) != CLI_OK) {
        cli_paths_free(&dirs);
        return rc;
    }
    upres_ctx *ctx = NULL;
    model_row *rows = NULL;
    rc = scan_models(&sp, &l);
    if (rc == CLI_OK) rc = make_ctx(g, &ctx);
    if (rc == CLI_OK && l.n && !(rows = calloc(l.n, sizeof *rows))) rc = cli_fail("out of memory");
    for (size_t i = 0; rc == CLI_OK && i < l.n; i++) {
        model_row *row = &rows[i];
        row->f = &l.v[i];
        select_name(&l, i, row->select, sizeof row->select);
        upres_model *m = NULL;
        double t0 = cli_now();
        int st = upres_model_load(ctx, l.v[i].path, &m);
        if (st == UPRES_OK) {
            upres_model_get_info(m, &row->info);
            row->loaded = 1;
            upres_model_free(m);
        } else {
            model_error(ctx, st, row->error, sizeof row->error);
        }
        char q[1024];
        cli_verbose(g, "%s: %s in %.1f ms", cli_clean(l.v[i].path, q, sizeof q),
                    row->loaded ? "loaded" : "failed", (cli_now() - t0) * 1e3);
        if (cli_interrupted()) rc = cli_report(ctx, UPRES_ERR_CANCELLED, "list", NULL);
    }
    cli_progress_clear();
    /* The model `upscale` would take without -m. */
    long def = -1;
    for (size_t i = 0; rc == CLI_OK && def < 0 && i < sizeof default_models / sizeof *default_models;
         i++) {
        size_t matches;
        long k = find_model(&l, default_models[i], 4, &matches);
        if (k >= 0 && rows[k].loaded) def = k;
    }
    char where[4096];
    sp_describe(&sp, where, sizeof where);
    if (rc == CLI_OK && json) {
        for (size_t i = 0; i < l.n; i++) {
            const model_row *r = &rows[i];
            const char *slash = strrchr(r->f->rel, '/');
            fputs("{\"name\": ", stdout);
            cli_json_str(stdout, r->loaded ? r->info.name : slash ? slash + 1 : r->f->rel);
            fputs(", \"select\": ", stdout);
            cli_json_str(stdout, r->select);
            fputs(", \"format\": ", stdout);
            cli_json_str(stdout, r->loaded ? r->info.format : kind_name(r->f->kind));
            fputs(", \"arch\": ", stdout);
            cli_json_str(stdout, r->loaded ? r->info.arch : NULL);
            if (r->loaded)
                printf(", \"scale\": %d, \"channels\": %d, \"params\": %llu", r->info.scale,
                       r->info.channels, (unsigned long long)r->info.params);
            else
                fputs(", \"scale\": null, \"channels\": null, \"params\": null", stdout);
            fputs(", \"path\": ", stdout);
            cli_json_str(stdout, r->f->path);
            fputs(", \"error\": ", stdout);
            cli_json_str(stdout, r->loaded ? NULL : r->error);
            printf(", \"default\": %s}\n", (long)i == def ? "true" : "false");
        }
    } else if (rc == CLI_OK) {
        int wn = 4, wf = 6, wa = 4;
        for (size_t i = 0; i < l.n; i++) {
            const model_row *r = &rows[i];
            int n = (int)strlen(r->select);
            if (n > wn) wn = n;
            if (r->loaded && (int)strlen(r->info.arch) > wa) wa = (int)strlen(r->info.arch);
            const char *fmt = r->loaded ? r->info.format : kind_name(r->f->kind);
            if ((int)strlen(fmt) > wf) wf = (int)strlen(fmt);
        }
        if (wn > 40) wn = 40;
        printf("search path: %s\n", where);
        if (l.n) printf("  %-*s  %-*s  %-*s  %5s  %7s  %s\n", wn, "NAME", wf, "FORMAT", wa, "ARCH",
                        "SCALE", "PARAMS", "PATH");
        for (size_t i = 0; i < l.n; i++) {
            const model_row *r = &rows[i];
            char n1[PATH_MAX], n2[1024], n3[32], sc[16];
            cli_clean(r->select, n1, sizeof n1);
            cli_clean(r->f->path, n2, sizeof n2);
            if (r->loaded) {
                snprintf(sc, sizeof sc, "x%d", r->info.scale);
                printf("%c %-*s  %-*s  %-*s  %5s  %7s  %s\n", (long)i == def ? '*' : ' ', wn, n1,
                       wf, r->info.format, wa, r->info.arch, sc,
                       human_count(r->info.params, n3, sizeof n3), n2);
            } else {
                printf("  %-*s  %-*s  %-*s  %5s  %7s  %s  (cannot load: %s)\n", wn, n1, wf,
                       kind_name(r->f->kind), wa, "?", "?", "?", n2, r->error);
            }
        }
        size_t bad = 0;
        for (size_t i = 0; i < l.n; i++) bad += !rows[i].loaded;
        if (!l.n)
            printf("no model files (.safetensors, .pth, .pt, .param) found; 'upres upscale' "
                   "will use lanczos3\n");
        else
            printf("%zu model%s, %zu not loadable; without -m 'upres upscale' uses %s\n", l.n,
                   l.n == 1 ? "" : "s", bad,
                   def >= 0 ? rows[def].select : "lanczos3 (none of the default models found)");
    }
    free(rows);
    upres_ctx_free(ctx);
    ml_free(&l);
    sp_free(&sp);
    cli_paths_free(&dirs);
    return rc;
}
