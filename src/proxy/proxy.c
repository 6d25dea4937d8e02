/* Proxy workflow, small-image side: planning the proxy geometry, the
 * metadata file, making the proxy and computing delta images. The streaming
 * merge into the full-size original is in merge.c. */
#include "core/core_internal.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SIDE 65535u

/* ------------------------------------------------------------------------ */
/* Geometry                                                                  */

/* Pixels of one target side; 0 when invalid. */
static uint64_t target_pixels(uint32_t side, upres_proxy_dim d)
{
    if (!isfinite(d.value) || d.value <= 0) return 0;
    if (d.percent) {
        if (d.value > 10000) return 0;
        /* The epsilon absorbs binary representation error (33.3% of 3000
         * is 999, not 998). */
        double px = floor((double)side * d.value / 100.0 + 1e-9);
        return px < 1 ? 0 : (uint64_t)px;
    }
    if (d.value != floor(d.value) || d.value > (double)UINT32_MAX) return 0;
    return (uint64_t)d.value;
}

/* Offset of the content in `slack` pixels of padding: round(slack / 2) with
 * ties to even, as Python's round() in PIL's ImageOps.pad (imgproxyproc's
 * padding), so proxies and recomputed content boxes agree with its files. */
static uint32_t centre_offset(uint64_t slack)
{
    return (uint32_t)(slack / 2 + ((slack & 3) == 3 ? 1 : 0));
}

int upres_proxy_plan(uint32_t width, uint32_t height, upres_proxy_dim tw, upres_proxy_dim th,
                     upres_proxy_geometry *out)
{
    if (!out || width == 0 || height == 0) return UPRES_ERR_INVALID_ARG;
    memset(out, 0, sizeof *out);
    uint64_t TW = target_pixels(width, tw), TH = target_pixels(height, th);
    if (TW == 0 || TH == 0) return UPRES_ERR_INVALID_ARG;
    if (TW > MAX_SIDE || TH > MAX_SIDE) return UPRES_ERR_LIMIT;
    /* scale = min(TW/width, TH/height), compared exactly: the binding side
     * gets its target, the other is floor(side * scale). */
    uint64_t cw, ch;
    if (TW * height <= TH * width) {
        cw = TW;
        ch = (uint64_t)height * TW / width;
    } else {
        ch = TH;
        cw = (uint64_t)width * TH / height;
    }
    if (cw < 1) cw = 1;
    if (ch < 1) ch = 1;
    out->original_width = width;
    out->original_height = height;
    out->content_width = (uint32_t)cw;
    out->content_height = (uint32_t)ch;
    if (!tw.percent && !th.percent) {
        out->proxy_width = (uint32_t)TW;
        out->proxy_height = (uint32_t)TH;
        out->content_x = centre_offset(TW - cw);
        out->content_y = centre_offset(TH - ch);
    } else {
        out->proxy_width = (uint32_t)cw;
        out->proxy_height = (uint32_t)ch;
    }
    return UPRES_OK;
}

/* Checks the internal consistency of a geometry. */
int upres__proxy_geom_valid(const upres_proxy_geometry *g)
{
    return g->original_width >= 1 && g->original_height >= 1 && g->proxy_width >= 1 &&
           g->proxy_height >= 1 && g->content_width >= 1 && g->content_height >= 1 &&
           g->original_width <= MAX_SIDE && g->original_height <= MAX_SIDE &&
           g->proxy_width <= MAX_SIDE && g->proxy_height <= MAX_SIDE &&
           (uint64_t)g->content_x + g->content_width <= g->proxy_width &&
           (uint64_t)g->content_y + g->content_height <= g->proxy_height;
}

/* ------------------------------------------------------------------------ */
/* Metadata                                                                  */

typedef struct strbuf {
    char *p;
    size_t n, cap;
    int failed;
} strbuf;

static void sb_add(strbuf *b, const char *s, size_t n)
{
    if (b->failed) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void sb_printf(strbuf *b, const char *fmt, ...) UPRES_PRINTF(2, 3);
static void sb_printf(strbuf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        b->failed = 1;
        return;
    }
    sb_add(b, tmp, (size_t)n);
}

/* key=path with backslash, newline and carriage return escaped. */
static void sb_path(strbuf *b, const char *key, const char *path)
{
    sb_add(b, key, strlen(key));
    sb_add(b, "=", 1);
    for (const char *s = path; *s; s++) {
        if (*s == '\\') sb_add(b, "\\\\", 2);
        else if (*s == '\n') sb_add(b, "\\n", 2);
        else if (*s == '\r') sb_add(b, "\\r", 2);
        else sb_add(b, s, 1);
    }
    sb_add(b, "\n", 1);
}

int upres_proxy_metadata_format(const upres_proxy_metadata *m, char **text, size_t *size)
{
    if (!text) return UPRES_ERR_INVALID_ARG;
    *text = NULL;
    if (size) *size = 0;
    if (!m || !upres__proxy_geom_valid(&m->geom)) return UPRES_ERR_INVALID_ARG;
    const upres_proxy_geometry *g = &m->geom;
    strbuf b = {0};
    sb_printf(&b, "# upres proxy metadata: key=value lines, see docs/proxy.md\n");
    sb_printf(&b, "format_version=%d\n", UPRES_PROXY_METADATA_VERSION);
    sb_path(&b, "original_path", m->original_path);
    sb_printf(&b, "original_bytes=%llu\n", (unsigned long long)m->original_bytes);
    sb_printf(&b, "original_sha256=%s\n", m->original_sha256);
    sb_printf(&b, "original_width=%u\noriginal_height=%u\n", g->original_width,
              g->original_height);
    sb_printf(&b, "original_channels=%u\noriginal_depth=%d\n", m->original_channels,
              m->original_depth);
    sb_path(&b, "proxy_path", m->proxy_path);
    sb_printf(&b, "proxy_width=%u\nproxy_height=%u\nproxy_depth=%d\n", g->proxy_width,
              g->proxy_height, m->proxy_depth ? m->proxy_depth : 8);
    sb_printf(&b, "content_x=%u\ncontent_y=%u\ncontent_width=%u\ncontent_height=%u\n",
              g->content_x, g->content_y, g->content_width, g->content_height);
    sb_printf(&b, "pad_left=%u\npad_top=%u\npad_right=%u\npad_bottom=%u\n", g->content_x,
              g->content_y, g->proxy_width - g->content_x - g->content_width,
              g->proxy_height - g->content_y - g->content_height);
    sb_printf(&b, "filter=%s\n", upres_filter_name(m->filter));
    sb_printf(&b, "scale=%.9g\n", (double)g->content_width / g->original_width);
    if (b.failed) {
        free(b.p);
        return UPRES_ERR_NOMEM;
    }
    *text = b.p;
    if (size) *size = b.n;
    return UPRES_OK;
}

enum {
    K_VERSION, K_OPATH, K_OBYTES, K_OSHA, K_OW, K_OH, K_OCH, K_ODEPTH, K_PPATH, K_PW, K_PH,
    K_PDEPTH, K_CX, K_CY, K_CW, K_CH, K_PL, K_PT, K_PR, K_PB, K_FILTER, K_SCALE, K_COUNT
};
static const char *const keys[K_COUNT] = {
    "format_version", "original_path", "original_bytes", "original_sha256", "original_width",
    "original_height", "original_channels", "original_depth", "proxy_path", "proxy_width",
    "proxy_height", "proxy_depth", "content_x", "content_y", "content_width",
    "content_height", "pad_left", "pad_top", "pad_right", "pad_bottom", "filter", "scale"};

/* Strict unsigned decimal; 1 on success. */
static int parse_u64(const char *s, size_t n, uint64_t max, uint64_t *out)
{
    if (n == 0 || n > 20) return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        if (v > (UINT64_MAX - 9) / 10) return 0;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > max) return 0;
    *out = v;
    return 1;
}

/* Copies value [s, s+n) into dst[cap], undoing the path escapes when
 * `unescape` (imgproxyproc files have none). 0 when too long or malformed. */
static int copy_path(char *dst, size_t cap, const char *s, size_t n, int unescape)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '\0') return 0;
        if (unescape && c == '\\') {
            if (++i >= n) return 0;
            c = s[i] == 'n' ? '\n' : s[i] == 'r' ? '\r' : s[i] == '\\' ? '\\' : 0;
            if (!c) return 0;
        }
        if (o + 1 >= cap) return 0;
        dst[o++] = c;
    }
    dst[o] = '\0';
    return 1;
}

int upres_proxy_metadata_parse(upres_ctx *ctx, const char *text, size_t size,
                               upres_proxy_metadata *out)
{
    upres__clear_error(ctx);
    if (!out || (!text && size)) return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "metadata: NULL argument");
    memset(out, 0, sizeof *out);
    struct {
        const char *v;
        size_t n;
        int line;
    } val[K_COUNT];
    memset(val, 0, sizeof val);
    size_t pos = 0;
    int line = 0;
    while (pos < size) {
        line++;
        const char *s = text + pos;
        const char *nl = memchr(s, '\n', size - pos);
        size_t len = nl ? (size_t)(nl - s) : size - pos;
        pos += len + (nl ? 1 : 0);
        if (len && s[len - 1] == '\r') len--;
        if (len == 0 || s[0] == '#') continue;
        const char *eq = memchr(s, '=', len);
        if (!eq) return upres__fail(ctx, UPRES_ERR_CORRUPT, "metadata line %d: no '=' in the line", line);
        size_t klen = (size_t)(eq - s);
        for (int k = 0; k < K_COUNT; k++) {
            if (strlen(keys[k]) != klen || memcmp(keys[k], s, klen) != 0) continue;
            if (val[k].v)
                return upres__fail(ctx, UPRES_ERR_CORRUPT, "metadata line %d: %s given twice", line,
                                   keys[k]);
            val[k].v = eq + 1;
            val[k].n = len - klen - 1;
            val[k].line = line;
        }
    }

    uint64_t num[K_COUNT] = {0};
    static const int numeric[] = {K_VERSION, K_OBYTES, K_OW, K_OH, K_OCH, K_ODEPTH, K_PW, K_PH,
                                  K_PDEPTH, K_CX, K_CY, K_CW, K_CH, K_PL, K_PT, K_PR, K_PB};
    for (size_t i = 0; i < sizeof numeric / sizeof numeric[0]; i++) {
        int k = numeric[i];
        uint64_t max = k == K_OBYTES ? UINT64_MAX : UINT32_MAX;
        if (val[k].v && !parse_u64(val[k].v, val[k].n, max, &num[k]))
            return upres__fail(ctx, UPRES_ERR_CORRUPT, "metadata line %d: %s: not a whole number",
                               val[k].line, keys[k]);
    }
    static const int required[] = {K_OW, K_OH, K_PW, K_PH};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
        if (!val[required[i]].v)
            return upres__fail(ctx, UPRES_ERR_CORRUPT, "metadata: %s is missing",
                               keys[required[i]]);
    if (num[K_VERSION] > UPRES_PROXY_METADATA_VERSION)
        return upres__fail(ctx, UPRES_ERR_UNSUPPORTED,
                           "metadata format_version %llu is newer than this upres reads (%d)",
                           (unsigned long long)num[K_VERSION], UPRES_PROXY_METADATA_VERSION);
    out->format_version = (int)num[K_VERSION];
    const int escaped = val[K_VERSION].v != NULL;
    if (val[K_OPATH].v && !copy_path(out->original_path, sizeof out->original_path,
                                     val[K_OPATH].v, val[K_OPATH].n, escaped))
        return upres__fail(ctx, UPRES_ERR_CORRUPT, "metadata line %d: original_path is malformed or too long",
                           val[K_OPATH].line);
    if (val[K_PPATH].v && !copy_path(out->proxy_path, sizeof out->proxy_path, val[K_PPATH].v,
                                     val[K_PPATH].n, escaped))
        return upres__fail(ctx, UPRES_ERR_CORRUPT, "metadata line %d: proxy_path is malformed or too long",
                           val[K_PPATH].line);
    if (val[K_OSHA].v && val[K_OSHA].n) {
        int ok = val[K_OSHA].n == 64;
        for (size_t i = 0; ok && i < 64; i++) {
            char c = val[K_OSHA].v[i];
            ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
        }
        if (!ok)
            return upres__fail(ctx, UPRES_ERR_CORRUPT, "metadata line %d: original_sha256 is not 64 hex digits",
                               val[K_OSHA].line);
        memcpy(out->original_sha256, val[K_OSHA].v, 64);
        out->original_sha256[64] = '\0';
    }
    out->original_bytes = num[K_OBYTES];
    if (num[K_OCH] > 4)
        return upres__fail(ctx, UPRES_ERR_CORRUPT, "metadata line %d: original_channels must be 1..4",
                           val[K_OCH].line);
    out->original_channels = (uint32_t)num[K_OCH];
    if (val[K_ODEPTH].v && num[K_ODEPTH] != 8 && num[K_ODEPTH] != 16 && num[K_ODEPTH] != 32)
        return upres__fail(ctx, UPRES_ERR_CORRUPT, "metadata line %d: original_depth must be 8, 16 or 32",
                           val[K_ODEPTH].line);
    out->original_depth = (int)num[K_ODEPTH];
    out->proxy_depth = val[K_PDEPTH].v ? (int)num[K_PDEPTH] : 8;
    if (out->proxy_depth != 8 && out->proxy_depth != 16)
        return upres__fail(ctx, UPRES_ERR_CORRUPT, "metadata line %d: proxy_depth must be 8 or 16",
                           val[K_PDEPTH].line);
    out->filter = UPRES_FILTER_LANCZOS3;
    if (val[K_FILTER].v) {
        char name[32];
        if (val[K_FILTER].n >= sizeof name)
            return upres__fail(ctx, UPRES_ERR_CORRUPT, "metadata line %d: unknown filter", val[K_FILTER].line);
        memcpy(name, val[K_FILTER].v, val[K_FILTER].n);
        name[val[K_FILTER].n] = '\0';
        int f = upres_filter_from_name(name);
        if (f < 0)
            return upres__fail(ctx, UPRES_ERR_CORRUPT, "metadata line %d: unknown filter '%s'",
                               val[K_FILTER].line, name);
        out->filter = (upres_filter)f;
    }

    upres_proxy_geometry *g = &out->geom;
    const uint64_t ow = num[K_OW], oh = num[K_OH], pw = num[K_PW], ph = num[K_PH];
    if (ow < 1 || oh < 1 || pw < 1 || ph < 1 || ow > MAX_SIDE || oh > MAX_SIDE ||
        pw > MAX_SIDE || ph > MAX_SIDE)
        return upres__fail(ctx, UPRES_ERR_CORRUPT, "metadata: image sides must be 1..%u",
                           MAX_SIDE);
    int have_box = 0;
    for (int k = K_CX; k <= K_CH; k++) have_box += val[k].v != NULL;
    if (have_box == 0) {
        /* imgproxyproc wrote no content box: its proxies are fitted and
         * centred as a pixel-target split is. */
        upres_proxy_dim dw = {(double)pw, 0}, dh = {(double)ph, 0};
        int st = upres_proxy_plan((uint32_t)ow, (uint32_t)oh, dw, dh, g);
        if (st) return upres__fail(ctx, UPRES_ERR_CORRUPT, "metadata: cannot derive the content box");
    } else if (have_box != 4) {
        return upres__fail(ctx, UPRES_ERR_CORRUPT,
                           "metadata: content_x, content_y, content_width and content_height must all be given");
    } else {
        g->original_width = (uint32_t)ow;
        g->original_height = (uint32_t)oh;
        g->proxy_width = (uint32_t)pw;
        g->proxy_height = (uint32_t)ph;
        g->content_x = (uint32_t)num[K_CX];
        g->content_y = (uint32_t)num[K_CY];
        g->content_width = (uint32_t)num[K_CW];
        g->content_height = (uint32_t)num[K_CH];
        if (!upres__proxy_geom_valid(g))
            return upres__fail(ctx, UPRES_ERR_CORRUPT,
                               "metadata: content box %ux%u at %u,%u does not fit the %ux%u proxy",
                               g->content_width, g->content_height, g->content_x, g->content_y,
                               g->proxy_width, g->proxy_height);
    }
    const uint64_t pads[4] = {g->content_x, g->content_y,
                              (uint64_t)g->proxy_width - g->content_x - g->content_width,
                              (uint64_t)g->proxy_height - g->content_y - g->content_height};
    for (int i = 0; i < 4; i++)
        if (val[K_PL + i].v && num[K_PL + i] != pads[i])
            return upres__fail(ctx, UPRES_ERR_CORRUPT,
                               "metadata line %d: %s=%llu disagrees with the content box (%llu)",
                               val[K_PL + i].line, keys[K_PL + i],
                               (unsigned long long)num[K_PL + i], (unsigned long long)pads[i]);
    return UPRES_OK;
}

int upres_proxy_metadata_save(upres_ctx *ctx, const char *path, const upres_proxy_metadata *m)
{
    upres__clear_error(ctx);
    char *text;
    size_t n;
    int st = upres_proxy_metadata_format(m, &text, &n);
    if (st) return upres__fail(ctx, st, "metadata: invalid geometry");
    st = upres_write_file_atomic(ctx, path, text, n);
    free(text);
    return st;
}

int upres_proxy_metadata_load(upres_ctx *ctx, const char *path, upres_proxy_metadata *out)
{
    upres__clear_error(ctx);
    if (!path || !out) return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "metadata: NULL argument");
    FILE *f = fopen(path, "rb");
    if (!f) return upres__fail(ctx, UPRES_ERR_IO, "cannot open: %s", strerror(errno));
    /* Real metadata is under 10 KB; refuse anything absurd before reading. */
    enum { MAX_TEXT = 1 << 20 };
    char *buf = malloc(MAX_TEXT + 1);
    if (!buf) {
        fclose(f);
        return upres__fail(ctx, UPRES_ERR_NOMEM, "metadata: out of memory");
    }
    size_t n = fread(buf, 1, MAX_TEXT + 1, f);
    int err = ferror(f);
    fclose(f);
    int st;
    if (err)
        st = upres__fail(ctx, UPRES_ERR_IO, "cannot read the metadata file");
    else if (n > MAX_TEXT)
        st = upres__fail(ctx, UPRES_ERR_CORRUPT, "metadata: file is over 1 MiB; not an upres metadata file");
    else
        st = upres_proxy_metadata_parse(ctx, buf, n, out);
    free(buf);
    return st;
}

/* ------------------------------------------------------------------------ */
/* Proxy                                                                     */

int upres_proxy_make(upres_ctx *ctx, const upres_image *orig, const upres_proxy_geometry *g,
                     upres_filter filter, upres_depth depth, upres_image **out)
{
    upres__clear_error(ctx);
    if (!out) return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "proxy: NULL output");
    *out = NULL;
    if (!orig || !g || !upres__proxy_geom_valid(g) || (depth != UPRES_U8 && depth != UPRES_U16))
        return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "proxy: invalid argument");
    if (orig->width != g->original_width || orig->height != g->original_height)
        return upres__fail(ctx, UPRES_ERR_INVALID_ARG,
                           "proxy: planned for %ux%u but the image is %ux%u",
                           g->original_width, g->original_height, orig->width, orig->height);
    upres_resize_desc rd = upres_resize_desc_defaults();
    rd.width = g->content_width;
    rd.height = g->content_height;
    rd.filter = filter;
    upres_image *content = NULL, *conv = NULL, *canvas = NULL;
    int st = upres_resize(ctx, orig, &rd, &content);
    if (st) return st;
    if (content->depth != depth) {
        st = upres_image_convert(content, depth, content->channels, 1.0f, &conv);
        upres_image_free(content);
        if (st) return upres__fail(ctx, st, "proxy: depth conversion failed");
        content = conv;
    }
    if (g->proxy_width == g->content_width && g->proxy_height == g->content_height) {
        *out = content;
        return UPRES_OK;
    }
    /* Zero-filled: black, and transparent where there is alpha. */
    st = upres_image_new(&canvas, g->proxy_width, g->proxy_height, content->channels, depth,
                         upres__limits(ctx));
    if (!st) st = upres_image_set_icc(canvas, content->icc, content->icc_size);
    if (st) {
        upres_image_free(content);
        upres_image_free(canvas);
        return upres__fail(ctx, st, "proxy: cannot allocate the %ux%u canvas", g->proxy_width,
                           g->proxy_height);
    }
    size_t px = content->channels * upres_depth_bytes(depth);
    for (uint32_t y = 0; y < content->height; y++)
        memcpy((uint8_t *)upres_image_row(canvas, g->content_y + y) + (size_t)g->content_x * px,
               upres_image_row(content, y), (size_t)content->width * px);
    upres_image_free(content);
    *out = canvas;
    return UPRES_OK;
}

/* ------------------------------------------------------------------------ */
/* Delta                                                                     */

/* Sample i of a row as a value in [0,1] (f32 as stored). */
static inline double sample01(const upres_image *img, const void *row, size_t i)
{
    switch (img->depth) {
    case UPRES_U8: return ((const uint8_t *)row)[i] / 255.0;
    case UPRES_U16: return ((const uint16_t *)row)[i] / 65535.0;
    default: return ((const float *)row)[i];
    }
}

/* Channel c (0..2 colour, 3 alpha) of pixel x in [0,1]; gray replicates to
 * every colour channel and a missing alpha is opaque. */
static inline double pixel01(const upres_image *img, const void *row, uint32_t x, int c)
{
    const uint32_t C = img->channels, cc = C >= 3 ? 3 : 1;
    const int has_alpha = C == 2 || C == 4;
    size_t base = (size_t)x * C;
    if (c == 3) return has_alpha ? sample01(img, row, base + C - 1) : 1.0;
    return sample01(img, row, base + (cc == 3 ? (size_t)c : 0));
}

static inline double clampd(double v, double lo, double hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

int upres_proxy_delta(upres_ctx *ctx, const upres_image *proxy, const upres_image *processed,
                      int bits, upres_image **delta, upres_image **refined)
{
    upres__clear_error(ctx);
    if (!delta) return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "delta: NULL output");
    *delta = NULL;
    if (refined) *refined = NULL;
    if (!proxy || !processed || (bits != 8 && bits != 16))
        return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "delta: invalid argument");
    if (refined && bits != 8)
        return upres__fail(ctx, UPRES_ERR_INVALID_ARG,
                           "delta: a refined delta goes with the 8-bit delta only (the 16-bit one never clips)");
    if (proxy->width != processed->width || proxy->height != processed->height)
        return upres__fail(ctx, UPRES_ERR_INVALID_ARG,
                           "Proxy and processed images must have same size. Proxy: %ux%u, Processed: %ux%u",
                           proxy->width, proxy->height, processed->width, processed->height);
    const uint32_t W = proxy->width, H = proxy->height;
    const int colour = (proxy->channels >= 3 || processed->channels >= 3) ? 3 : 1;
    const int alpha = processed->channels == 2 || processed->channels == 4;
    const uint32_t DC = (uint32_t)colour + (alpha ? 1u : 0u);
    const upres_depth dd = bits == 16 ? UPRES_U16 : UPRES_U8;
    upres_image *d = NULL, *r = NULL;
    int st = upres_image_new(&d, W, H, DC, dd, upres__limits(ctx));
    if (!st && refined) st = upres_image_new(&r, W, H, DC, UPRES_U8, upres__limits(ctx));
    if (st) {
        upres_image_free(d);
        return upres__fail(ctx, st, "delta: cannot allocate %ux%u", W, H);
    }
    const int exact8 = proxy->depth == UPRES_U8 && processed->depth == UPRES_U8;
    for (uint32_t y = 0; y < H; y++) {
        const void *prow = upres_image_row(proxy, y), *qrow = upres_image_row(processed, y);
        uint8_t *d8 = upres_image_row(d, y);
        uint16_t *d16 = upres_image_row(d, y);
        uint8_t *r8 = r ? upres_image_row(r, y) : NULL;
        for (uint32_t x = 0; x < W; x++)
            for (uint32_t k = 0; k < DC; k++) {
                int c = k < (uint32_t)colour ? (int)k : 3;
                double p = pixel01(proxy, prow, x, c), q = pixel01(processed, qrow, x, c);
                size_t i = (size_t)x * DC + k;
                if (bits == 16) {
                    d16[i] = (uint16_t)clampd(32768.0 + floor(32640.0 * (q - p) + 0.5), 0, 65535);
                    continue;
                }
                /* In 8-bit levels; for two 8-bit images these are integers
                 * and the formulas are imgproxyproc's exactly. */
                double pl = exact8 ? floor(p * 255.0 + 0.5) : p * 255.0;
                double ql = exact8 ? floor(q * 255.0 + 0.5) : q * 255.0;
                double v = clampd(floor(ql - pl + 0.5) + 127.0, 0, 255);
                d8[i] = (uint8_t)v;
                if (r8) {
                    double inter = clampd(pl + (v - 127.0), 0, 255);
                    r8[i] = (uint8_t)clampd(floor(ql - inter + 0.5) + 127.0, 0, 255);
                }
            }
    }
    *delta = d;
    if (refined) *refined = r;
    return UPRES_OK;
}
