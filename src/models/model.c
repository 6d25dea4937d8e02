/* Model files: format detection, loading, and the host-side steps around a
 * network run (input mapping, padding, output crop). */
#include "models/models_internal.h"

#include "io/io_internal.h"

#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void upres__model_init(struct upres_model *m)
{
    memset(m, 0, sizeof *m);
    m->scale = 1;
    m->in_c = m->out_c = 3;
    m->in_scale = m->out_scale = 1.0f;
    m->pre_pad_mode = NN_PAD_REFLECT;
    m->align = 1;
    m->min_side = 1;
    m->context = 16;
}

/* Reads a whole model file, bounded by limits.max_model_bytes. */
static int read_model_file(upres_ctx *ctx, const char *path, uint8_t **buf, size_t *size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return upres__fail(ctx, UPRES_ERR_IO, "%s: %s", path, strerror(errno));
    int st = upres__read_fd(ctx, fd, upres__limits(ctx)->max_model_bytes, buf, size);
    close(fd);
    return st;
}

/* Copies the last path component without its extension into dst. */
static void path_stem(const char *path, char *dst, size_t cap)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    const char *dot = strrchr(base, '.');
    if (dot && dot != base) n = (size_t)(dot - base);
    if (n >= cap) n = cap - 1;
    memcpy(dst, base, n);
    dst[n] = '\0';
}

/* Name of the folder holding `path` ("" for a bare file name). */
static void parent_name(const char *path, char *dst, size_t cap)
{
    dst[0] = '\0';
    const char *end = strrchr(path, '/');
    if (!end) return;
    while (end > path && end[-1] == '/') end--;
    const char *begin = end;
    while (begin > path && begin[-1] != '/') begin--;
    size_t n = (size_t)(end - begin);
    if (n >= cap) n = cap - 1;
    memcpy(dst, begin, n);
    dst[n] = '\0';
}

/* path with its extension (if any) replaced by `ext`, or NULL. malloc()ed. */
static char *swap_ext(const char *path, const char *ext)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    size_t keep = dot && dot != base ? (size_t)(dot - path) : strlen(path);
    size_t n = keep + strlen(ext) + 1;
    char *s = malloc(n);
    if (!s) return NULL;
    memcpy(s, path, keep);
    strcpy(s + keep, ext);
    return s;
}

static int is_ncnn_param(const uint8_t *b, size_t n)
{
    static const char magic[] = "7767517";
    if (n < sizeof magic - 1 || memcmp(b, magic, sizeof magic - 1) != 0) return 0;
    return n == sizeof magic - 1 || b[sizeof magic - 1] == '\n' || b[sizeof magic - 1] == '\r' ||
           b[sizeof magic - 1] == ' ';
}

static int is_safetensors(const uint8_t *b, size_t n)
{
    if (n < 10) return 0;
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--) h = h << 8 | b[i];
    return h >= 2 && h <= n - 8 && b[8] == '{';
}

static int load_ncnn(upres_ctx *ctx, const char *param_path, const uint8_t *param, size_t param_n,
                     struct upres_model *m)
{
    char *bin_path = swap_ext(param_path, ".bin");
    if (!bin_path) return upres__fail(ctx, UPRES_ERR_NOMEM, "model path");
    uint8_t *bin = NULL;
    size_t bin_n = 0;
    int st = read_model_file(ctx, bin_path, &bin, &bin_n);
    if (st) {
        free(bin_path);
        return st;
    }
    free(bin_path);
    char stem[128], dir[128];
    path_stem(param_path, stem, sizeof stem);
    parent_name(param_path, dir, sizeof dir);
    st = upres__ncnn_load(ctx, (const char *)param, param_n, bin, bin_n, stem, dir, m);
    free(bin);
    return st;
}

int upres_model_load(upres_ctx *ctx, const char *path, upres_model **out)
{
    upres__clear_error(ctx);
    if (!out) return UPRES_ERR_INVALID_ARG;
    *out = NULL;
    if (!path || !*path) return UPRES_ERR_INVALID_ARG;
    struct upres_model *m = malloc(sizeof *m);
    if (!m) return upres__fail(ctx, UPRES_ERR_NOMEM, "model");
    upres__model_init(m);
    path_stem(path, m->name, sizeof m->name);

    uint8_t *buf = NULL;
    size_t n = 0;
    int st = read_model_file(ctx, path, &buf, &n);
    if (st) goto fail;

    upres_statedict sd = {0};
    if (n >= 4 && buf[0] == 'P' && buf[1] == 'K' && buf[2] == 3 && buf[3] == 4) {
        strcpy(m->format, "pth");
        st = upres__pth_load(ctx, buf, n, &sd);
    } else if (n >= 2 && buf[0] == 0x80 && buf[1] >= 2 && buf[1] <= 5) {
        /* A pickle stream: PyTorch's legacy (pre-1.6) serialization. */
        strcpy(m->format, "pth");
        st = upres__pth_load(ctx, buf, n, &sd);
    } else if (is_safetensors(buf, n)) {
        strcpy(m->format, "safetensors");
        st = upres__safetensors_load(ctx, buf, n, &sd);
    } else if (is_ncnn_param(buf, n)) {
        strcpy(m->format, "ncnn");
        st = load_ncnn(ctx, path, buf, n, m);
        free(buf);
        buf = NULL;
        if (st) goto fail;
        goto done;
    } else {
        /* An ncnn .bin named directly: its .param sits beside it. */
        char *param_path = swap_ext(path, ".param");
        uint8_t *param = NULL;
        size_t param_n = 0;
        int found = param_path && access(param_path, R_OK) == 0 &&
                    read_model_file(ctx, param_path, &param, &param_n) == UPRES_OK &&
                    is_ncnn_param(param, param_n);
        if (found) {
            strcpy(m->format, "ncnn");
            free(buf);
            buf = NULL;
            st = load_ncnn(ctx, param_path, param, param_n, m);
        } else {
            upres__clear_error(ctx);
            st = upres__fail(ctx, UPRES_ERR_UNKNOWN_FORMAT,
                             "not a model file (expected PyTorch .pth, .safetensors or ncnn .param)");
        }
        free(param);
        free(param_path);
        if (st) goto fail;
        goto done;
    }
    free(buf);
    buf = NULL;
    if (st) goto fail;
    st = upres__arch_build(ctx, &sd, m);
    upres__sd_free(&sd);
    if (st) goto fail;
done:
    if (!m->graph || m->scale < 1 || m->align < 1 || m->min_side < 1 || m->pre_pad < 0 ||
        m->out_off < 0) {
        st = upres__fail(ctx, UPRES_ERR_UNSUPPORTED, "model loader left an inconsistent model");
        goto fail;
    }
    *out = m;
    return UPRES_OK;
fail:
    free(buf);
    upres_model_free(m);
    return st;
}

void upres_model_free(upres_model *m)
{
    if (!m) return;
    nn_graph_free(m->graph);
    free(m->pad_buf);
    free(m->out_buf);
    free(m);
}

void upres_model_get_info(const upres_model *m, upres_model_info *info)
{
    if (!info) return;
    memset(info, 0, sizeof *info);
    if (!m) return;
    snprintf(info->name, sizeof info->name, "%s", m->name);
    snprintf(info->format, sizeof info->format, "%s", m->format);
    snprintf(info->arch, sizeof info->arch, "%s", m->arch);
    info->scale = m->scale;
    info->channels = m->in_c;
    info->params = m->params;
    info->context = m->context;
    info->global_pooling = nn_graph_global_pools(m->graph) > 0;
}

/* Graph input size for an h x w tile: pre_pad on each side, rounded up to a
 * multiple of align. */
static int padded_size(const struct upres_model *m, int side, int *out)
{
    long long v = (long long)side + 2LL * m->pre_pad;
    v = (v + m->align - 1) / m->align * m->align;
    if (v > 65535LL * 4) return UPRES_ERR_LIMIT;
    *out = (int)v;
    return UPRES_OK;
}

/* Mirror index (reflect without repeating the edge), periodic so any pad
 * width works even on tiny inputs. */
static int mirror(int i, int n)
{
    if (n == 1) return 0;
    int period = 2 * (n - 1);
    i %= period;
    if (i < 0) i += period;
    return i < n ? i : period - i;
}

static int clampi(int i, int n) { return i < 0 ? 0 : i >= n ? n - 1 : i; }

static int plan(upres_ctx *ctx, struct upres_model *m, int ph, int pw)
{
    if (m->planned_h == ph && m->planned_w == pw) return UPRES_OK;
    m->planned_h = m->planned_w = 0;
    free(m->pad_buf);
    free(m->out_buf);
    m->pad_buf = m->out_buf = NULL;
    m->out_buf_n = 0;
    int oh, ow;
    int st = nn_graph_out_size(m->graph, ctx, ph, pw, &oh, &ow);
    if (st) return st;
    st = nn_graph_plan(m->graph, ctx, ph, pw, NULL);
    if (st) return st;
    size_t nin, nout;
    if (!upres__mul_size((size_t)m->in_c * (size_t)ph, (size_t)pw, &nin) ||
        !upres__mul_size((size_t)m->out_c * (size_t)oh, (size_t)ow, &nout) ||
        nin > SIZE_MAX / sizeof(float) || nout > SIZE_MAX / sizeof(float))
        return upres__fail(ctx, UPRES_ERR_OVERFLOW, "model tile %dx%d", pw, ph);
    m->pad_buf = malloc(nin * sizeof(float));
    m->out_buf = malloc(nout * sizeof(float));
    if (!m->pad_buf || !m->out_buf) {
        free(m->pad_buf);
        free(m->out_buf);
        m->pad_buf = m->out_buf = NULL;
        return upres__fail(ctx, UPRES_ERR_NOMEM, "model tile %dx%d", pw, ph);
    }
    m->out_buf_n = nout;
    m->planned_h = ph;
    m->planned_w = pw;
    return UPRES_OK;
}

int upres__model_tile_bytes(upres_ctx *ctx, struct upres_model *m, int h, int w, size_t *bytes)
{
    int ph, pw, oh, ow;
    if (h < 1 || w < 1 || padded_size(m, h, &ph) || padded_size(m, w, &pw))
        return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "model tile %dx%d", w, h);
    int st = nn_graph_out_size(m->graph, ctx, ph, pw, &oh, &ow);
    if (st) return st;
    size_t act;
    st = nn_graph_plan_bytes(m->graph, ctx, ph, pw, &act);
    if (st) return st;
    /* Host scratch: the padded input and the whole graph output. */
    double extra = ((double)m->in_c * ph * pw + (double)m->out_c * oh * ow) * sizeof(float);
    if ((double)act + extra > (double)SIZE_MAX) return UPRES_ERR_OVERFLOW;
    *bytes = act + (size_t)extra;
    return UPRES_OK;
}

int upres__model_run_buf(upres_ctx *ctx, struct upres_model *m, const float *in, int h, int w,
                         const float **res)
{
    if (!m || !m->graph || !in || !res || h < m->min_side || w < m->min_side)
        return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "model run on a %dx%d tile (minimum %d)", w,
                           h, m ? m->min_side : 1);
    int ph, pw;
    if (padded_size(m, h, &ph) || padded_size(m, w, &pw))
        return upres__fail(ctx, UPRES_ERR_LIMIT, "model tile %dx%d", w, h);
    int st = plan(ctx, m, ph, pw);
    if (st) return st;

    /* Input mapping and padding in one pass. The extra rows/cols that make
     * the size a multiple of `align` go at the bottom/right, like
     * Real-CUGAN's reference code. */
    const int P = m->pre_pad;
    const int rep = m->pre_pad_mode == NN_PAD_REPLICATE;
    const int zero = m->pre_pad_mode == NN_PAD_ZERO;
    const float a = m->in_scale, b = m->in_bias;
    for (int c = 0; c < m->in_c; c++) {
        const float *src = in + (size_t)c * h * w;
        float *dst = m->pad_buf + (size_t)c * ph * pw;
        for (int y = 0; y < ph; y++) {
            int sy = y - P;
            int inside_y = sy >= 0 && sy < h;
            sy = rep ? clampi(sy, h) : mirror(sy, h);
            float *d = dst + (size_t)y * pw;
            const float *s = src + (size_t)sy * w;
            for (int x = 0; x < pw; x++) {
                int sx = x - P;
                int inside = inside_y && sx >= 0 && sx < w;
                if (zero && !inside) {
                    d[x] = 0.0f;
                    continue;
                }
                sx = rep ? clampi(sx, w) : mirror(sx, w);
                d[x] = s[sx] * a + b;
            }
        }
    }

    nn_tensor tin = {m->in_c, ph, pw, m->pad_buf};
    nn_tensor tout = {0, 0, 0, m->out_buf};
    st = nn_graph_run(m->graph, ctx, &tin, &tout);
    if (st) return st;
    long long need_h = (long long)h * m->scale + m->out_off;
    long long need_w = (long long)w * m->scale + m->out_off;
    if (tout.c != m->out_c || tout.h < need_h || tout.w < need_w)
        return upres__fail(ctx, UPRES_ERR_UNSUPPORTED,
                           "model output %dx%dx%d does not cover the %lldx%lld result", tout.c,
                           tout.w, tout.h, (long long)w * m->scale, (long long)h * m->scale);
    /* The crop and mapping in place: every result element lies at or
     * before its source (out_off >= 0 and the graph output covers the
     * crop), so a forward pass never overwrites a source not yet read. */
    const size_t oh = (size_t)h * (size_t)m->scale, ow = (size_t)w * (size_t)m->scale;
    const size_t th = (size_t)tout.h, tw = (size_t)tout.w, off = (size_t)m->out_off;
    const float os = m->out_scale, ob = m->out_bias;
    float *buf = m->out_buf;
    if (!(off == 0 && th == oh && tw == ow && os == 1.0f && ob == 0.0f))
        for (size_t c = 0; c < (size_t)m->out_c; c++)
            for (size_t y = 0; y < oh; y++) {
                const float *src = buf + (c * th + y + off) * tw + off;
                float *dst = buf + (c * oh + y) * ow;
                for (size_t x = 0; x < ow; x++) dst[x] = src[x] * os + ob;
            }
    *res = buf;
    return UPRES_OK;
}

int upres__model_run(upres_ctx *ctx, struct upres_model *m, const float *in, int h, int w,
                     float *out)
{
    const float *res;
    if (!out) return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "model run: NULL output");
    int st = upres__model_run_buf(ctx, m, in, h, w, &res);
    if (st) return st;
    memcpy(out, res, (size_t)m->out_c * (size_t)h * (size_t)m->scale * (size_t)w *
                         (size_t)m->scale * sizeof(float));
    return UPRES_OK;
}
