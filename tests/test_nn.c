/* Tests of the nn engine (src/nn): every op against PyTorch 1.13 results
 * (fixtures made by tests/gen_nn_fixtures.py), buffer reuse, plan errors,
 * replanning, limits and cancellation.
 *
 * Tolerance: |got - want| <= 1e-5 * (1 + |want|) per element. The references
 * of conv-like ops are float64 results, so this bounds our float32 rounding;
 * interpolation references are PyTorch's own float32 results. Convolutions
 * on the Winograd path get 1e-4 * (1 + |want|): its transforms scale the
 * rounding of each product by up to ~10 (the points +-2 and +-1/2). */
#include "test.h"

#include "nn/nn.h"
#include "nn/cpu/cpu_ops.h" /* nncpu_set_simd: both kernel sets in one binary */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FX_MAX 8

/* One "NNFX" fixture: up to FX_MAX tensors of up to 4 dims. */
typedef struct fx_tensor {
    int ndim, dims[4];
    size_t n;
    float *data;
} fx_tensor;

typedef struct fixture {
    int count;
    fx_tensor t[FX_MAX];
    unsigned char *raw;
} fixture;

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void fx_free(fixture *f)
{
    for (int i = 0; i < f->count; i++) free(f->t[i].data);
    free(f->raw);
    memset(f, 0, sizeof *f);
}

/* Loads tests/fixtures/nn/<name>.bin; 0 on success. */
static int fx_load(const char *name, fixture *f)
{
    char rel[256];
    snprintf(rel, sizeof rel, "nn/%s.bin", name);
    memset(f, 0, sizeof *f);
    size_t size = 0;
    f->raw = test_read_file(test_fixture(rel), &size);
    if (!f->raw || size < 8 || memcmp(f->raw, "NNFX", 4)) return -1;
    uint32_t cnt = rd32(f->raw + 4);
    size_t pos = 8;
    if (cnt > FX_MAX) return -1;
    for (uint32_t i = 0; i < cnt; i++) {
        fx_tensor *t = &f->t[f->count];
        if (pos + 4 > size) return -1;
        t->ndim = (int)rd32(f->raw + pos);
        pos += 4;
        if (t->ndim < 1 || t->ndim > 4 || pos + 4 * (size_t)t->ndim > size) return -1;
        t->n = 1;
        for (int d = 0; d < t->ndim; d++, pos += 4) {
            t->dims[d] = (int)rd32(f->raw + pos);
            t->n *= (size_t)t->dims[d];
        }
        if (pos + 4 * t->n > size) return -1;
        t->data = malloc(t->n * sizeof(float) + 1);
        if (!t->data) return -1;
        for (size_t k = 0; k < t->n; k++) {
            uint32_t u = rd32(f->raw + pos + 4 * k);
            memcpy(&t->data[k], &u, 4);
        }
        pos += 4 * t->n;
        f->count++;
    }
    return pos == size ? 0 : -1;
}

static upres_ctx *ctx_threads(int threads)
{
    upres_ctx_desc d = upres_ctx_desc_defaults();
    d.threads = threads;
    upres_ctx *c = NULL;
    return upres_ctx_new(&d, &c) == UPRES_OK ? c : NULL;
}

/* Plans g for `in` and runs it; returns a malloc()ed output (shape in *out)
 * or NULL, with the failing status in *st. */
static float *plan_run(nn_graph *g, upres_ctx *ctx, const fx_tensor *in, nn_tensor *out, int *st)
{
    int oh = 0, ow = 0;
    *st = nn_graph_plan(g, ctx, in->dims[1], in->dims[2], NULL);
    if (*st) return NULL;
    *st = nn_graph_out_size(g, ctx, in->dims[1], in->dims[2], &oh, &ow);
    if (*st) return NULL;
    size_t n = (size_t)nn_graph_out_channels(g) * (size_t)oh * (size_t)ow;
    float *buf = malloc(n * sizeof(float));
    if (!buf) {
        *st = UPRES_ERR_NOMEM;
        return NULL;
    }
    nn_tensor ti = {in->dims[0], in->dims[1], in->dims[2], in->data};
    out->data = buf;
    *st = nn_graph_run(g, ctx, &ti, out);
    if (*st) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* NULL when `got` (c/h/w) matches the 3-D fixture tensor `want`, else a
 * message naming the first bad element (static storage). */
static const char *compare(const nn_tensor *got, const fx_tensor *want, double tol)
{
    static char msg[256];
    if (want->ndim != 3 || got->c != want->dims[0] || got->h != want->dims[1] ||
        got->w != want->dims[2]) {
        snprintf(msg, sizeof msg, "shape %dx%dx%d, want %dx%dx%d", got->c, got->h, got->w,
                 want->dims[0], want->ndim > 1 ? want->dims[1] : 0,
                 want->ndim > 2 ? want->dims[2] : 0);
        return msg;
    }
    for (size_t i = 0; i < want->n; i++) {
        double d = fabs((double)got->data[i] - want->data[i]);
        if (!(d <= tol * (1.0 + fabs(want->data[i])))) {
            size_t pl = (size_t)got->h * (size_t)got->w;
            snprintf(msg, sizeof msg, "element c%zu y%zu x%zu: %.8g, want %.8g", i / pl,
                     i % pl / (size_t)got->w, i % (size_t)got->w, got->data[i],
                     (double)want->data[i]);
            return msg;
        }
    }
    return NULL;
}

#define TOL 1e-5
#define WTOL 1e-4

/* The conv tolerance for the current path (see the header). */
static double conv_tol(void) { return nncpu_set_winograd(-1) ? WTOL : TOL; }

/* ---- Convolution ------------------------------------------------------------ */

typedef struct conv_case {
    const char *name;
    int deconv, out_c, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, oph, opw, groups, bias;
    nn_act act;
    float alpha;
} conv_case;

/* Mirrors the conv_case / deconv_case calls of gen_nn_fixtures.py. Deconv
 * padding is symmetric there: pad=(ph, pw) -> pt = pb = ph, pl = pr = pw. */
static const conv_case conv_cases[] = {
    {"conv_basic", 0, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, NN_ACT_NONE, 0},
    {"conv_geom", 0, 6, 3, 2, 2, 1, 1, 2, 1, 2, 0, 1, 0, 0, 2, 1, NN_ACT_LEAKY, 0.2f},
    {"conv_depthwise", 0, 6, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, 0, 0, 6, 1, NN_ACT_RELU, 0},
    {"conv_1x1", 0, 7, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 0, NN_ACT_SIGMOID, 0},
    {"conv_deep", 0, 13, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, NN_ACT_LEAKY, 0.1f},
    {"conv_wide", 0, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, NN_ACT_NONE, 0},
    {"conv_stride3", 0, 5, 4, 4, 3, 3, 1, 1, 0, 1, 2, 0, 0, 0, 1, 1, NN_ACT_NONE, 0},
    {"deconv_k2s2", 1, 5, 2, 2, 2, 2, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1, NN_ACT_NONE, 0},
    {"deconv_k4s2p3", 1, 3, 4, 4, 2, 2, 1, 1, 3, 3, 3, 3, 0, 0, 1, 0, NN_ACT_NONE, 0},
    {"deconv_geom", 1, 6, 3, 2, 2, 3, 1, 2, 1, 0, 1, 0, 1, 2, 2, 1, NN_ACT_RELU, 0},
    {"deconv_wide", 1, 20, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, NN_ACT_NONE, 0},
};

static nn_conv_desc desc_of(const conv_case *c)
{
    nn_conv_desc d = nn_conv_desc_defaults();
    d.out_c = c->out_c;
    d.kh = c->kh;
    d.kw = c->kw;
    d.stride_h = c->sh;
    d.stride_w = c->sw;
    d.dil_h = c->dh;
    d.dil_w = c->dw;
    d.pad_t = c->pt;
    d.pad_l = c->pl;
    d.pad_b = c->pb;
    d.pad_r = c->pr;
    d.out_pad_h = c->oph;
    d.out_pad_w = c->opw;
    d.groups = c->groups;
    d.act = c->act;
    d.act_alpha = c->alpha;
    return d;
}

/* Runs every conv case with `threads` threads; NULL or a message. */
static const char *run_conv_cases(int deconv, int threads)
{
    static char msg[512];
    upres_ctx *ctx = ctx_threads(threads);
    if (!ctx) return "no context";
    msg[0] = 0;
    for (size_t i = 0; i < sizeof conv_cases / sizeof conv_cases[0] && !msg[0]; i++) {
        const conv_case *c = &conv_cases[i];
        if (c->deconv != deconv) continue;
        fixture f;
        if (fx_load(c->name, &f) || f.count != 3 + c->bias) {
            snprintf(msg, sizeof msg, "%s: bad fixture", c->name);
            fx_free(&f);
            break;
        }
        nn_conv_desc d = desc_of(c);
        nn_graph *g = nn_graph_new();
        int x = nn_input(g, f.t[0].dims[0]);
        const float *bias = c->bias ? f.t[2].data : NULL;
        int y = deconv ? nn_deconv2d(g, x, &d, f.t[1].data, bias)
                       : nn_conv2d(g, x, &d, f.t[1].data, bias);
        nn_graph_set_output(g, y);
        nn_tensor out;
        int st;
        float *buf = plan_run(g, ctx, &f.t[0], &out, &st);
        const char *e = buf ? compare(&out, &f.t[f.count - 1], conv_tol()) : upres_strerror(st);
        if (e) snprintf(msg, sizeof msg, "%s (%d threads): %s %s", c->name, threads, e,
                        upres_ctx_error(ctx));
        free(buf);
        nn_graph_free(g);
        fx_free(&f);
    }
    upres_ctx_free(ctx);
    return msg[0] ? msg : NULL;
}

TEST(nn_conv_matches_torch)
{
    const char *e = run_conv_cases(0, 1);
    CHECKF(!e, "%s", e);
    e = run_conv_cases(0, 2);
    CHECKF(!e, "%s", e);
}

TEST(nn_deconv_matches_torch)
{
    const char *e = run_conv_cases(1, 1);
    CHECKF(!e, "%s", e);
    e = run_conv_cases(1, 3);
    CHECKF(!e, "%s", e);
}

/* A 64 -> 64 3x3 conv (the SRVGGNetCompact body) on a 37x29 input against a
 * direct float64 convolution, so the blocked kernel is checked at real
 * channel counts (partial panels, several chunks per row band). */
TEST(nn_conv_64ch_vs_direct)
{
    const int C = 64, O = 64, H = 29, W = 37;
    float *in = malloc(sizeof(float) * C * H * W), *wt = malloc(sizeof(float) * O * C * 9);
    float *bias = malloc(sizeof(float) * O), *out = malloc(sizeof(float) * O * H * W);
    CHECK(in && wt && bias && out);
    uint32_t s = 12345;
    for (int i = 0; i < C * H * W; i++) in[i] = (float)(tu_xorshift32(&s) % 2001) / 1000.0f - 1.0f;
    for (int i = 0; i < O * C * 9; i++)
        wt[i] = (float)(tu_xorshift32(&s) % 2001) / 24000.0f - 0.04f;
    for (int i = 0; i < O; i++) bias[i] = (float)(tu_xorshift32(&s) % 200) / 100.0f - 1.0f;
    nn_graph *g = nn_graph_new();
    nn_conv_desc d = nn_conv_desc_defaults();
    d.out_c = O;
    d.kh = d.kw = 3;
    d.pad_t = d.pad_l = d.pad_b = d.pad_r = 1;
    d.act = NN_ACT_LEAKY;
    d.act_alpha = 0.1f;
    int x = nn_input(g, C);
    CHECK_OK(nn_graph_set_output(g, nn_conv2d(g, x, &d, wt, bias)));
    CHECK_EQ(nn_graph_params(g), O * C * 9 + O);
    upres_ctx *ctx = ctx_threads(2);
    CHECK(ctx);
    CHECK_OK(nn_graph_plan(g, ctx, H, W, NULL));
    for (int wino = 1; wino >= 0; wino--) {
        nncpu_set_winograd(wino);
        nn_tensor ti = {C, H, W, in}, to = {0, 0, 0, out};
        CHECK_OK(nn_graph_run(g, ctx, &ti, &to));
        CHECK(to.c == O && to.h == H && to.w == W);
        double worst = 0;
        for (int o = 0; o < O; o++)
            for (int y = 0; y < H; y++)
                for (int xx = 0; xx < W; xx++) {
                    double acc = bias[o];
                    for (int c = 0; c < C; c++)
                        for (int ky = 0; ky < 3; ky++)
                            for (int kx = 0; kx < 3; kx++) {
                                int iy = y + ky - 1, ix = xx + kx - 1;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                acc += (double)wt[((o * C + c) * 3 + ky) * 3 + kx] *
                                       in[(c * H + iy) * W + ix];
                            }
                    if (acc < 0) acc *= 0.1f;
                    double e = fabs(acc - out[(o * H + y) * W + xx]) / (1.0 + fabs(acc));
                    if (e > worst) worst = e;
                }
        CHECKF(worst <= conv_tol(), "winograd %d: worst relative error %g", wino, worst);
    }
    nncpu_set_winograd(1);
    nn_graph_free(g);
    upres_ctx_free(ctx);
    free(in);
    free(wt);
    free(bias);
    free(out);
}

/* ---- Portable vs AVX2 kernels ------------------------------------------ */

static void fill(float *p, size_t n, uint32_t seed, float scale);

/* Every conv and deconv fixture through both kernel sets (the AVX2 set is
 * skipped, not failed, where the build or the CPU lacks it). */
TEST(nn_simd_fixtures_both_paths)
{
    int avx2 = nncpu_set_simd(1);
    for (int k = 0; k <= 2 * avx2 + 1; k++) {
        int simd = k / 2, wino = k % 2;
        CHECK_EQ(nncpu_set_simd(simd), simd);
        CHECK_EQ(nncpu_simd(), simd);
        nncpu_set_winograd(wino);
        const char *e = run_conv_cases(0, 1);
        CHECKF(!e, "simd %d winograd %d: %s", simd, wino, e);
        e = run_conv_cases(0, 2);
        CHECKF(!e, "simd %d: %s", simd, e);
        e = run_conv_cases(1, 1);
        CHECKF(!e, "simd %d: %s", simd, e);
        e = run_conv_cases(1, 3);
        CHECKF(!e, "simd %d: %s", simd, e);
    }
    nncpu_set_winograd(1);
    if (!avx2) SKIP("portable kernels checked; no AVX2+FMA in this build or CPU");
}

/* Direct float64 conv (deconv: transposed) of one random case, with bias and
 * activation, for out = ref[out_c][oh][ow]. */
static void direct_conv(const nn_conv_desc *d, int deconv, int C, int H, int W, const float *in,
                        const float *wt, const float *bias, int OH, int OW, double *ref)
{
    const int O = d->out_c, G = d->groups, icg = C / G, ocg = O / G;
    for (int i = 0; i < O * OH * OW; i++) ref[i] = bias ? bias[i / (OH * OW)] : 0.0;
    for (int g = 0; g < G; g++)
        for (int o = 0; o < ocg; o++)
            for (int c = 0; c < icg; c++)
                for (int ky = 0; ky < d->kh; ky++)
                    for (int kx = 0; kx < d->kw; kx++) {
                        int oc = g * ocg + o, ic = g * icg + c;
                        double w = deconv ? wt[((ic * ocg + o) * d->kh + ky) * d->kw + kx]
                                          : wt[((oc * icg + c) * d->kh + ky) * d->kw + kx];
                        if (!deconv) {
                            for (int y = 0; y < OH; y++)
                                for (int x = 0; x < OW; x++) {
                                    int iy = y * d->stride_h - d->pad_t + ky * d->dil_h;
                                    int ix = x * d->stride_w - d->pad_l + kx * d->dil_w;
                                    if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                    ref[(oc * OH + y) * OW + x] += w * in[(ic * H + iy) * W + ix];
                                }
                        } else {
                            for (int iy = 0; iy < H; iy++)
                                for (int ix = 0; ix < W; ix++) {
                                    int y = iy * d->stride_h - d->pad_t + ky * d->dil_h;
                                    int x = ix * d->stride_w - d->pad_l + kx * d->dil_w;
                                    if (y < 0 || y >= OH || x < 0 || x >= OW) continue;
                                    ref[(oc * OH + y) * OW + x] += w * in[(ic * H + iy) * W + ix];
                                }
                        }
                    }
    for (int i = 0; i < O * OH * OW; i++) {
        double v = ref[i];
        switch (d->act) {
        case NN_ACT_RELU: v = v > 0 ? v : 0; break;
        case NN_ACT_LEAKY: v = v < 0 ? v * d->act_alpha : v; break;
        case NN_ACT_SIGMOID: v = 1.0 / (1.0 + exp(-v)); break;
        default: break;
        }
        ref[i] = v;
    }
}

/* Runs a one-conv graph on the current kernel set; malloc()ed output or NULL.
 * A conv (not a deconv) may be followed, for the graph to fuse, by PReLU
 * with `slopes` (out_c of them) when non-NULL and by y*scale + x when
 * `residual` (needs out_c == C). */
static float *run_conv_graph(const nn_conv_desc *d, int deconv, int C, int H, int W, float *in,
                             const float *wt, const float *bias, const float *slopes,
                             int residual, float scale, int threads, int *oh, int *ow)
{
    upres_ctx *ctx = ctx_threads(threads);
    nn_graph *g = nn_graph_new();
    int x = nn_input(g, C);
    int y = deconv ? nn_deconv2d(g, x, d, wt, bias) : nn_conv2d(g, x, d, wt, bias);
    if (slopes) y = nn_prelu(g, y, slopes, d->out_c);
    if (residual) y = nn_binary(g, NN_ADD, nn_affine(g, y, scale, 0.0f), x);
    float *out = NULL;
    if (ctx && nn_graph_set_output(g, y) == UPRES_OK &&
        nn_graph_out_size(g, ctx, H, W, oh, ow) == UPRES_OK &&
        nn_graph_plan(g, ctx, H, W, NULL) == UPRES_OK &&
        (out = malloc(sizeof(float) * (size_t)d->out_c * (size_t)*oh * (size_t)*ow))) {
        nn_tensor ti = {C, H, W, in}, to = {0, 0, 0, out};
        if (nn_graph_run(g, ctx, &ti, &to) != UPRES_OK) {
            free(out);
            out = NULL;
        }
    }
    nn_graph_free(g);
    upres_ctx_free(ctx);
    return out;
}

static float *run_one_conv(const nn_conv_desc *d, int deconv, int C, int H, int W, float *in,
                           const float *wt, const float *bias, int threads, int *oh, int *ow)
{
    return run_conv_graph(d, deconv, C, H, W, in, wt, bias, NULL, 0, 1.0f, threads, oh, ow);
}

static int rnd(uint32_t *s, int lo, int hi) { return lo + (int)(tu_xorshift32(s) % (uint32_t)(hi - lo + 1)); }

/* Random convs and deconvs (odd sizes, channel counts off the 6x16 blocks,
 * groups, stride, dilation, padding, every activation, with and without
 * bias) through both kernel sets: each within 1e-3 of a float64 direct
 * convolution and of each other. Cases 0-2 are large enough for several
 * im2col chunks and partial panels of 64+ channels. */
TEST(nn_simd_random_convs_match)
{
    int avx2 = nncpu_set_simd(1);
    uint32_t s = 777;
    double worst_x = 0, worst_ref = 0;
    for (int t = 0; t < 60; t++) {
        nn_conv_desc d = nn_conv_desc_defaults();
        int deconv = t % 4 == 3, G = rnd(&s, 1, 3);
        int icg = rnd(&s, 1, 9), ocg = rnd(&s, 1, 14);
        int H = rnd(&s, 1, 23), W = rnd(&s, 1, 29);
        d.kh = rnd(&s, 1, 5);
        d.kw = rnd(&s, 1, 5);
        d.stride_h = rnd(&s, 1, 3);
        d.stride_w = rnd(&s, 1, 3);
        d.dil_h = rnd(&s, 1, 2);
        d.dil_w = rnd(&s, 1, 2);
        d.pad_t = rnd(&s, 0, 2);
        d.pad_l = rnd(&s, 0, 2);
        d.pad_b = rnd(&s, 0, 2);
        d.pad_r = rnd(&s, 0, 2);
        d.act = (nn_act)((t + t / 4) % 4);
        d.act_alpha = 0.1f + 0.05f * (float)rnd(&s, 0, 4);
        if (t < 3) { /* SRVGG / RRDB-like: stride 1, 3x3, 64-ish channels */
            G = 1;
            icg = t == 2 ? 32 : 64;
            ocg = t == 0 ? 64 : t == 1 ? 67 : 35;
            H = 41 + t;
            W = 37 + 5 * t;
            d.kh = d.kw = 3;
            d.stride_h = d.stride_w = d.dil_h = d.dil_w = 1;
            d.pad_t = d.pad_l = d.pad_b = d.pad_r = 1;
        }
        if (deconv) {
            d.out_pad_h = d.stride_h > 1 ? rnd(&s, 0, d.stride_h - 1) : 0;
            d.out_pad_w = d.stride_w > 1 ? rnd(&s, 0, d.stride_w - 1) : 0;
        }
        d.out_c = ocg * G;
        d.groups = G;
        const int C = icg * G;
        int oh, ow;
        if (deconv) {
            oh = (H - 1) * d.stride_h - d.pad_t - d.pad_b + d.dil_h * (d.kh - 1) + 1 + d.out_pad_h;
            ow = (W - 1) * d.stride_w - d.pad_l - d.pad_r + d.dil_w * (d.kw - 1) + 1 + d.out_pad_w;
        } else {
            oh = (H + d.pad_t + d.pad_b - d.dil_h * (d.kh - 1) - 1) / d.stride_h + 1;
            ow = (W + d.pad_l + d.pad_r - d.dil_w * (d.kw - 1) - 1) / d.stride_w + 1;
            if (H + d.pad_t + d.pad_b < d.dil_h * (d.kh - 1) + 1 ||
                W + d.pad_l + d.pad_r < d.dil_w * (d.kw - 1) + 1)
                oh = ow = 0;
        }
        if (oh < 1 || ow < 1) continue; /* kernel larger than the input */
        size_t nin = (size_t)C * H * W, nw = (size_t)d.out_c * icg * d.kh * d.kw;
        size_t nout = (size_t)d.out_c * oh * ow;
        float *in = malloc(sizeof(float) * nin), *wt = malloc(sizeof(float) * nw);
        float *bias = malloc(sizeof(float) * (size_t)d.out_c);
        double *ref = malloc(sizeof(double) * nout);
        CHECK(in && wt && bias && ref);
        fill(in, nin, 100 + (uint32_t)t, 1.0f);
        fill(wt, nw, 200 + (uint32_t)t, 1.0f / sqrtf((float)(icg * d.kh * d.kw)));
        fill(bias, (size_t)d.out_c, 300 + (uint32_t)t, 0.5f);
        const float *b = t % 5 == 4 ? NULL : bias;
        direct_conv(&d, deconv, C, H, W, in, wt, b, oh, ow, ref);
        float *got[2] = {NULL, NULL};
        for (int simd = 0; simd <= avx2; simd++) {
            CHECK_EQ(nncpu_set_simd(simd), simd);
            int gh = 0, gw = 0;
            got[simd] = run_one_conv(&d, deconv, C, H, W, in, wt, b, 1 + t % 2, &gh, &gw);
            CHECKF(got[simd] && gh == oh && gw == ow, "case %d simd %d: run failed", t, simd);
            for (size_t i = 0; i < nout; i++) {
                double e = fabs(got[simd][i] - ref[i]);
                if (e > worst_ref) worst_ref = e;
                CHECKF(e <= 1e-3, "case %d (%s, simd %d) element %zu: %g, want %g", t,
                       deconv ? "deconv" : "conv", simd, i, got[simd][i], ref[i]);
            }
        }
        if (avx2)
            for (size_t i = 0; i < nout; i++) {
                double e = fabs((double)got[0][i] - got[1][i]);
                if (e > worst_x) worst_x = e;
                CHECKF(e <= 1e-3, "case %d: AVX2 %g vs portable %g", t, got[1][i], got[0][i]);
            }
        if (getenv("UPRES_TEST_VERBOSE"))
            fprintf(stderr, "case %d %s C%d O%d G%d %dx%d k%dx%d s%d,%d d%d,%d act %d: "
                    "worst vs ref %.3g, AVX2 vs portable %.3g\n", t, deconv ? "deconv" : "conv",
                    C, d.out_c, G, W, H, d.kw, d.kh, d.stride_w, d.stride_h, d.dil_w, d.dil_h,
                    (int)d.act, worst_ref, worst_x);
        free(got[0]);
        free(got[1]);
        free(in);
        free(wt);
        free(bias);
        free(ref);
    }
    if (!avx2) SKIP("portable kernels checked; no AVX2+FMA in this build or CPU");
}


/* run_conv_graph for a conv with its epilogue, output size not needed. */
static float *run_fused_conv(const nn_conv_desc *d, int C, int H, int W, float *in,
                             const float *wt, const float *bias, const float *slopes,
                             int residual, float scale, int threads)
{
    int oh, ow;
    return run_conv_graph(d, 0, C, H, W, in, wt, bias, slopes, residual, scale, threads, &oh,
                          &ow);
}

/* The Winograd path against the reference im2col path (and a float64
 * direct conv) on 3x3 convs of the shapes it takes: channel counts on and
 * off its blocks of 4, inputs smaller than one 6x6 tile and with partial
 * tiles, asymmetric and zero padding, every fused epilogue (bias,
 * activations, PReLU, scale + residual), 1-3 threads, both kernel sets. The
 * issue's bound is 1e-3 absolute; the test also holds 1e-4 * (1 + |want|). */
TEST(nn_winograd_matches_reference)
{
    int avx2 = nncpu_set_simd(1);
    double worst = 0;
    static const int chans[][2] = {{8, 8},   {13, 9},  {64, 64}, {96, 32},
                                   {192, 64}, {64, 48}, {21, 67}, {64, 64}};
    static const int sizes[][2] = {{1, 1}, {5, 7}, {6, 6}, {13, 11}, {37, 29}, {64, 64}, {7, 50}, {12, 12}};
    for (int t = 0; t < 8; t++) {
        nn_conv_desc d = nn_conv_desc_defaults();
        const int C = chans[t][0], H = sizes[t][0], W = sizes[t][1];
        d.out_c = chans[t][1];
        d.kh = d.kw = 3;
        d.pad_t = t == 3 ? 2 : t == 5 ? 0 : 1;
        d.pad_l = t == 3 ? 0 : t == 5 ? 0 : 1;
        d.pad_b = t == 3 ? 1 : t == 5 ? 0 : 1;
        d.pad_r = t == 3 ? 2 : t == 5 ? 0 : 1;
        if (H + d.pad_t + d.pad_b < 3 || W + d.pad_l + d.pad_r < 3) continue;
        d.act = (nn_act)(t % 4);
        d.act_alpha = 0.2f;
        const int oh = H + d.pad_t + d.pad_b - 2, ow = W + d.pad_l + d.pad_r - 2;
        const int prelu = t % 3 == 1 && d.act == NN_ACT_NONE;
        const int residual = (t == 2 || t == 4 || t == 7) && d.out_c == C && oh == H && ow == W;
        size_t nin = (size_t)C * H * W, nw = (size_t)d.out_c * C * 9;
        size_t nout = (size_t)d.out_c * oh * ow;
        float *in = malloc(sizeof(float) * nin), *wt = malloc(sizeof(float) * nw);
        float *bias = malloc(sizeof(float) * (size_t)d.out_c);
        float *slopes = malloc(sizeof(float) * (size_t)d.out_c);
        double *ref = malloc(sizeof(double) * nout);
        CHECK(in && wt && bias && slopes && ref);
        fill(in, nin, 500 + (uint32_t)t, 1.0f);
        fill(wt, nw, 600 + (uint32_t)t, 1.0f / sqrtf((float)(C * 9)));
        fill(bias, (size_t)d.out_c, 700 + (uint32_t)t, 0.5f);
        fill(slopes, (size_t)d.out_c, 800 + (uint32_t)t, 0.3f);
        const float *b = t == 6 ? NULL : bias;
        direct_conv(&d, 0, C, H, W, in, wt, b, oh, ow, ref);
        for (size_t i = 0; i < nout; i++) {
            if (prelu && ref[i] < 0) ref[i] *= slopes[i / ((size_t)oh * ow)];
            if (residual) ref[i] = ref[i] * 0.2 + in[i];
        }
        for (int simd = 0; simd <= avx2; simd++) {
            CHECK_EQ(nncpu_set_simd(simd), simd);
            float *got[2];
            for (int wino = 0; wino < 2; wino++) {
                nncpu_set_winograd(wino);
                got[wino] = run_fused_conv(&d, C, H, W, in, wt, b, prelu ? slopes : NULL,
                                           residual, 0.2f, 1 + (t + wino) % 3);
                CHECKF(got[wino], "case %d simd %d winograd %d: run failed", t, simd, wino);
            }
            nncpu_set_winograd(1);
            for (size_t i = 0; i < nout; i++) {
                double e = fabs((double)got[1][i] - got[0][i]);
                if (e > worst) worst = e;
                CHECKF(e <= 1e-3 && e <= WTOL * (1.0 + fabs(got[0][i])),
                       "case %d simd %d element %zu: winograd %.8g, reference %.8g", t, simd, i,
                       got[1][i], got[0][i]);
                double er = fabs(got[0][i] - ref[i]);
                CHECKF(er <= TOL * (1.0 + fabs(ref[i])), "case %d simd %d element %zu: %.8g, "
                       "float64 %.8g", t, simd, i, got[0][i], ref[i]);
            }
            free(got[0]);
            free(got[1]);
        }
        free(in);
        free(wt);
        free(bias);
        free(slopes);
        free(ref);
    }
    printf("    winograd vs reference: max abs difference %.3g\n", worst);
    if (!avx2) SKIP("portable kernels checked; no AVX2+FMA in this build or CPU");
}

/* Winograd output does not depend on the thread count: every tile is
 * computed by one worker with the same arithmetic. */
TEST(nn_winograd_thread_invariant)
{
    nn_conv_desc d = nn_conv_desc_defaults();
    const int C = 32, H = 45, W = 70;
    d.out_c = 40;
    d.kh = d.kw = 3;
    d.pad_t = d.pad_l = d.pad_b = d.pad_r = 1;
    d.act = NN_ACT_LEAKY;
    d.act_alpha = 0.2f;
    size_t nin = (size_t)C * H * W, nw = (size_t)d.out_c * C * 9, nout = (size_t)d.out_c * H * W;
    float *in = malloc(sizeof(float) * nin), *wt = malloc(sizeof(float) * nw);
    CHECK(in && wt);
    fill(in, nin, 901, 1.0f);
    fill(wt, nw, 902, 0.05f);
    CHECK(nncpu_conv_winograd(&d, C));
    float *one = run_fused_conv(&d, C, H, W, in, wt, NULL, NULL, 0, 1.0f, 1);
    float *two = run_fused_conv(&d, C, H, W, in, wt, NULL, NULL, 0, 1.0f, 2);
    float *three = run_fused_conv(&d, C, H, W, in, wt, NULL, NULL, 0, 1.0f, 3);
    CHECK(one && two && three);
    CHECK(memcmp(one, two, nout * sizeof(float)) == 0);
    CHECK(memcmp(one, three, nout * sizeof(float)) == 0);
    free(one);
    free(two);
    free(three);
    free(in);
    free(wt);
}

/* Fusion: concat -> conv, conv -> PReLU, conv -> x*s + residual and
 * conv -> add, as RRDBNet and SRVGGNetCompact chain them, against the
 * float64 ops one by one. A value the fusion removed cannot become the
 * output afterwards. */
TEST(nn_fusion_matches_direct)
{
    const int C = 16, H = 19, W = 23;
    const size_t P = (size_t)H * W;
    nn_conv_desc d = nn_conv_desc_defaults();
    d.out_c = C;
    d.kh = d.kw = 3;
    d.pad_t = d.pad_l = d.pad_b = d.pad_r = 1;
    float *in = malloc(sizeof(float) * C * P), *w1 = malloc(sizeof(float) * C * C * 9);
    float *w2 = malloc(sizeof(float) * C * C * 9), *w3 = malloc(sizeof(float) * C * 3 * C * 9);
    float *w4 = malloc(sizeof(float) * C * C * 9), *bias = malloc(sizeof(float) * C);
    float *sl = malloc(sizeof(float) * C), *out = malloc(sizeof(float) * C * P);
    double *a = malloc(sizeof(double) * C * P), *b = malloc(sizeof(double) * C * P);
    double *c = malloc(sizeof(double) * C * P), *e = malloc(sizeof(double) * C * P);
    float *cat = malloc(sizeof(float) * 3 * C * P), *cf = malloc(sizeof(float) * C * P);
    CHECK(in && w1 && w2 && w3 && w4 && bias && sl && out && a && b && c && e && cat && cf);
    fill(in, (size_t)C * P, 11, 1.0f);
    fill(w1, (size_t)C * C * 9, 12, 0.08f);
    fill(w2, (size_t)C * C * 9, 13, 0.08f);
    fill(w3, (size_t)C * 3 * C * 9, 14, 0.05f);
    fill(w4, (size_t)C * C * 9, 15, 0.08f);
    fill(bias, C, 16, 0.3f);
    fill(sl, C, 17, 0.25f);
    for (int wino = 0; wino < 2; wino++) {
        nncpu_set_winograd(wino);
        nn_graph *g = nn_graph_new();
        int x = nn_input(g, C);
        nn_conv_desc dl = d;
        dl.act = NN_ACT_LEAKY;
        dl.act_alpha = 0.2f;
        int ya = nn_conv2d(g, x, &dl, w1, bias);
        int yb = nn_prelu(g, nn_conv2d(g, x, &d, w2, NULL), sl, C);
        int parts[3] = {x, ya, yb};
        int yc = nn_binary(g, NN_ADD, nn_affine(g, nn_conv2d(g, nn_concat(g, 3, parts), &d, w3,
                                                             bias), 0.2f, 0.0f), x);
        int ye = nn_binary(g, NN_ADD, ya, nn_conv2d(g, yc, &d, w4, NULL));
        CHECK_OK(nn_graph_set_output(g, ye));
        upres_ctx *ctx = ctx_threads(2);
        CHECK_OK(nn_graph_plan(g, ctx, H, W, NULL));
        nn_tensor ti = {C, H, W, in}, to = {0, 0, 0, out};
        CHECK_OK(nn_graph_run(g, ctx, &ti, &to));
        /* The conv inside yc's chain was absorbed into yc's node. */
        CHECK_EQ(nn_graph_set_output(g, yc - 2), UPRES_ERR_INVALID_ARG);
        upres_ctx_free(ctx);
        nn_graph_free(g);
        /* float64: a, b, cat, c, e */
        direct_conv(&dl, 0, C, H, W, in, w1, bias, H, W, a);
        direct_conv(&d, 0, C, H, W, in, w2, NULL, H, W, b);
        for (size_t i = 0; i < (size_t)C * P; i++)
            if (b[i] < 0) b[i] *= sl[i / P];
        for (size_t i = 0; i < (size_t)C * P; i++) {
            cat[i] = in[i];
            cat[(size_t)C * P + i] = (float)a[i];
            cat[2 * (size_t)C * P + i] = (float)b[i];
        }
        direct_conv(&d, 0, 3 * C, H, W, cat, w3, bias, H, W, c);
        for (size_t i = 0; i < (size_t)C * P; i++) {
            c[i] = c[i] * 0.2 + in[i];
            cf[i] = (float)c[i];
        }
        direct_conv(&d, 0, C, H, W, cf, w4, NULL, H, W, e);
        double worst = 0;
        for (size_t i = 0; i < (size_t)C * P; i++) {
            double v = fabs(out[i] - (e[i] + a[i]));
            if (v > worst) worst = v;
        }
        CHECKF(worst <= (wino ? 1e-4 : 1e-5), "winograd %d: max abs error %g", wino, worst);
    }
    nncpu_set_winograd(1);
    free(in);
    free(w1);
    free(w2);
    free(w3);
    free(w4);
    free(bias);
    free(sl);
    free(out);
    free(a);
    free(b);
    free(c);
    free(e);
    free(cat);
    free(cf);
}

/* Two RRDBNet dense blocks in a row (C features, G growth, 5 convs each,
 * leaky ReLU, x*0.2 + input; the same weights twice), built as the RRDBNet
 * loader builds them: two chains whose caches take turns in the arena.
 * With `interloper` a conv of the first conv's output runs between the
 * first block's second and third convs and adds to the final output, so
 * the third conv cannot share the second's transforms (it starts a new
 * chain) and that conv's output stays alive through the second block. */
static float *run_dense_block(int C, int G, int H, int W, const float *in, float *const wts[5],
                              const float *bias, int interloper, const float *wx, int threads,
                              int *shared)
{
    nn_graph *g = nn_graph_new();
    int x = nn_input(g, C), extra = -1, y = -1;
    nn_conv_desc d = nn_conv_desc_defaults();
    d.kh = d.kw = 3;
    d.pad_t = d.pad_l = d.pad_b = d.pad_r = 1;
    for (int blk = 0; blk < 2; blk++) {
        int xs[5] = {x}, n = 1;
        for (int k = 0; k < 5; k++) {
            d.out_c = k < 4 ? G : C;
            int src = n == 1 ? x : nn_concat(g, n, xs);
            y = nn_conv2d(g, src, &d, wts[k], bias);
            if (k < 4) xs[n++] = nn_leaky_relu(g, y, 0.2f);
            if (blk == 0 && k == 1 && interloper) {
                nn_conv_desc dx = d;
                dx.out_c = C;
                /* Read twice, so it is not fused into the final add (which
                 * would move it after the blocks). */
                extra = nn_conv2d(g, xs[1], &dx, wx, NULL);
                extra = nn_binary(g, NN_ADD, extra, extra);
            }
        }
        x = y = nn_binary(g, NN_ADD, nn_affine(g, y, 0.2f, 0.0f), x);
    }
    if (extra >= 0) y = nn_binary(g, NN_ADD, y, extra);
    float *out = malloc(sizeof(float) * (size_t)C * H * W);
    upres_ctx *ctx = ctx_threads(threads);
    int st = nn_graph_set_output(g, y);
    if (!st) st = nn_graph_plan(g, ctx, H, W, NULL);
    nn_tensor ti = {C, H, W, (float *)in}, to = {0, 0, 0, out};
    if (!st && out) st = nn_graph_run(g, ctx, &ti, &to);
    *shared = nn_graph_wino_shared(g);
    upres_ctx_free(ctx);
    nn_graph_free(g);
    if (st) {
        free(out);
        return NULL;
    }
    return out;
}

/* The convs of a dense block share one Winograd cache: each transforms only
 * the channels the previous one did not read. RRDBNet's sizes (64
 * features, growth 32), so with one thread the convs split the 140 tiles
 * into blocks of different sizes (72 and 48 tiles) that all address the one
 * cache. Two blocks in a row against the im2col reference, 1 and 3 threads
 * bit-identical, and again with a conv of another input in between (it
 * closes the chain). */
TEST(nn_winograd_shared_input)
{
    const int C = 64, G = 32, H = 60, W = 80;
    const size_t P = (size_t)H * W, n = (size_t)C * P;
    float *in = malloc(sizeof(float) * n), *bias = malloc(sizeof(float) * C);
    float *wx = malloc(sizeof(float) * C * C * 9), *wts[5];
    CHECK(in && bias && wx);
    fill(in, n, 31, 1.0f);
    fill(bias, C, 32, 0.1f);
    fill(wx, (size_t)C * C * 9, 33, 0.04f);
    for (int k = 0; k < 5; k++) {
        size_t nw = (size_t)(k < 4 ? G : C) * (size_t)(C + k * G) * 9;
        wts[k] = malloc(sizeof(float) * nw);
        CHECK(wts[k]);
        fill(wts[k], nw, 40 + (uint32_t)k, 0.04f);
    }
    for (int interloper = 0; interloper < 2; interloper++) {
        int sh_ref, sh1, sh3;
        nncpu_set_winograd(0);
        float *ref = run_dense_block(C, G, H, W, in, wts, bias, interloper, wx, 2, &sh_ref);
        nncpu_set_winograd(1);
        float *one = run_dense_block(C, G, H, W, in, wts, bias, interloper, wx, 1, &sh1);
        float *three = run_dense_block(C, G, H, W, in, wts, bias, interloper, wx, 3, &sh3);
        CHECK(ref && one && three);
        /* Chains: convs 2-5 of each block reuse; with the interloper, the
         * first block's convs 2 and 4-5. */
        CHECK_EQ(sh1, interloper ? 7 : 8);
        CHECK_EQ(sh3, sh1);
        double worst = 0;
        for (size_t i = 0; i < n; i++) {
            double e = fabs((double)one[i] - ref[i]) / (1.0 + fabs((double)ref[i]));
            if (e > worst) worst = e;
        }
        printf("    dense blocks%s: winograd vs reference, max error %.3g\n",
               interloper ? " with a conv in between" : "", worst);
        CHECKF(worst <= WTOL, "max relative error %g", worst);
        CHECK(memcmp(one, three, n * sizeof(float)) == 0);
        free(ref);
        free(one);
        free(three);
    }
    nncpu_set_winograd(1);
    for (int k = 0; k < 5; k++) free(wts[k]);
    free(in);
    free(bias);
    free(wx);
}

/* ---- Single-input ops --------------------------------------------------- */

typedef struct interp_case {
    const char *name;
    nn_interp_mode mode;
    float sh, sw;
    int oh, ow, align;
} interp_case;

static const interp_case interp_cases[] = {
    {"interp_nearest_s2", NN_INTERP_NEAREST, 2, 2, 0, 0, 0},
    {"interp_nearest_size", NN_INTERP_NEAREST, 0, 0, 7, 13, 0},
    {"interp_nearest_s15", NN_INTERP_NEAREST, 1.5f, 1.5f, 0, 0, 0},
    {"interp_bilinear_size", NN_INTERP_BILINEAR, 0, 0, 9, 4, 0},
    {"interp_bilinear_ac", NN_INTERP_BILINEAR, 0, 0, 11, 8, 1},
    {"interp_bilinear_s15", NN_INTERP_BILINEAR, 1.5f, 1.5f, 0, 0, 0},
    {"interp_bicubic_s2", NN_INTERP_BICUBIC, 2, 2, 0, 0, 0},
    {"interp_bicubic_ac", NN_INTERP_BICUBIC, 0, 0, 8, 15, 1},
    {"interp_bicubic_down", NN_INTERP_BICUBIC, 0, 0, 4, 3, 0},
};

/* Builds input -> op -> output with `build`, runs it on fixture tensor 0 and
 * compares with the fixture's last tensor. */
typedef int (*build_fn)(nn_graph *g, int x, const fixture *f, const void *arg);

static const char *check_op(const char *name, build_fn build, const void *arg, int threads)
{
    static char msg[512];
    fixture f;
    if (fx_load(name, &f)) {
        fx_free(&f);
        snprintf(msg, sizeof msg, "%s: bad fixture", name);
        return msg;
    }
    upres_ctx *ctx = ctx_threads(threads);
    nn_graph *g = nn_graph_new();
    int x = nn_input(g, f.t[0].dims[0]);
    nn_graph_set_output(g, build(g, x, &f, arg));
    nn_tensor out;
    int st;
    float *buf = plan_run(g, ctx, &f.t[0], &out, &st);
    const char *e = buf ? compare(&out, &f.t[f.count - 1], TOL) : upres_strerror(st);
    if (e) snprintf(msg, sizeof msg, "%s: %s %s", name, e, ctx ? upres_ctx_error(ctx) : "");
    free(buf);
    nn_graph_free(g);
    upres_ctx_free(ctx);
    fx_free(&f);
    return e ? msg : NULL;
}

static int build_interp(nn_graph *g, int x, const fixture *f, const void *arg)
{
    const interp_case *c = arg;
    (void)f;
    return nn_interp(g, x, c->mode, c->sh, c->sw, c->oh, c->ow, c->align);
}

TEST(nn_interp_matches_torch)
{
    for (size_t i = 0; i < sizeof interp_cases / sizeof interp_cases[0]; i++) {
        const char *e = check_op(interp_cases[i].name, build_interp, &interp_cases[i], 2);
        CHECKF(!e, "%s", e);
    }
}

static int build_shuffle(nn_graph *g, int x, const fixture *f, const void *arg)
{
    (void)f;
    return arg ? nn_pixel_unshuffle(g, x, 3) : nn_pixel_shuffle(g, x, 2);
}

TEST(nn_pixel_shuffle_matches_torch)
{
    const char *e = check_op("pixel_shuffle", build_shuffle, NULL, 2);
    CHECKF(!e, "%s", e);
    e = check_op("pixel_unshuffle", build_shuffle, "un", 2);
    CHECKF(!e, "%s", e);
}

static int build_pad(nn_graph *g, int x, const fixture *f, const void *arg)
{
    (void)f;
    nn_pad_mode m = *(const nn_pad_mode *)arg;
    return nn_pad(g, x, 1, 2, 3, 0, m, m == NN_PAD_ZERO ? 0.5f : 0.0f);
}

TEST(nn_pad_matches_torch)
{
    static const nn_pad_mode modes[] = {NN_PAD_REFLECT, NN_PAD_REPLICATE, NN_PAD_ZERO};
    static const char *names[] = {"pad_reflect", "pad_replicate", "pad_constant"};
    for (int i = 0; i < 3; i++) {
        const char *e = check_op(names[i], build_pad, &modes[i], 1);
        CHECKF(!e, "%s", e);
    }
}

/* concat(relu, leaky 0.05, sigmoid, prelu(1 slope), prelu(C slopes)). */
static int build_acts(nn_graph *g, int x, const fixture *f, const void *arg)
{
    (void)arg;
    int xs[5] = {nn_relu(g, x), nn_leaky_relu(g, x, 0.05f), nn_sigmoid(g, x),
                 nn_prelu(g, x, f->t[1].data, 1), nn_prelu(g, x, f->t[2].data, f->t[2].dims[0])};
    return nn_concat(g, 5, xs);
}

TEST(nn_activations_match_torch)
{
    const char *e = check_op("acts", build_acts, NULL, 2);
    CHECKF(!e, "%s", e);
}

/* See the "binary" case of gen_nn_fixtures.py. */
static int build_binary(nn_graph *g, int x, const fixture *f, const void *arg)
{
    (void)arg;
    nn_conv_desc d = nn_conv_desc_defaults();
    d.out_c = 1;
    int s = nn_global_avg_pool(g, x);
    int t = nn_global_avg_pool(g, nn_conv2d(g, x, &d, f->t[1].data, NULL));
    int x2 = nn_binary(g, NN_MUL, x, x);
    int den = nn_affine(g, x2, 0.5f, 1.0f);
    int xs[8] = {nn_binary(g, NN_ADD, x, x),
                 nn_binary(g, NN_SUB, x, s),
                 nn_binary(g, NN_MUL, t, x),
                 nn_binary(g, NN_DIV, x, den),
                 nn_binary(g, NN_MUL, s, x),
                 nn_affine(g, x, 2.0f, -1.0f),
                 nn_channel_affine(g, x, f->t[2].data, f->t[3].data),
                 nn_binary(g, NN_SUB, t, x)};
    return nn_concat(g, 8, xs);
}

TEST(nn_binary_matches_torch)
{
    const char *e = check_op("binary", build_binary, NULL, 2);
    CHECKF(!e, "%s", e);
}

static int build_gap(nn_graph *g, int x, const fixture *f, const void *arg)
{
    (void)f;
    (void)arg;
    return nn_global_avg_pool(g, x);
}

TEST(nn_global_avg_pool_matches_torch)
{
    /* The binary fixture's tensor 4 is gap(x); reuse it through a copy of
     * the fixture whose last tensor is that one. */
    fixture f;
    CHECK(fx_load("binary", &f) == 0 && f.count == 6);
    upres_ctx *ctx = ctx_threads(1);
    nn_graph *g = nn_graph_new();
    int x = nn_input(g, f.t[0].dims[0]);
    CHECK_OK(nn_graph_set_output(g, build_gap(g, x, &f, NULL)));
    nn_tensor out;
    int st;
    float *buf = plan_run(g, ctx, &f.t[0], &out, &st);
    CHECK_OK(st);
    const char *e = compare(&out, &f.t[4], TOL);
    CHECKF(!e, "%s", e);
    free(buf);
    nn_graph_free(g);
    upres_ctx_free(ctx);
    fx_free(&f);
}

/* ---- Graph behaviour -------------------------------------------------- */

/* A small network with skips: conv -> leaky -> conv -> add(skip) -> crop ->
 * pad -> concat(.., interp) -> pixel_shuffle -> crop_like. */
static int build_net(nn_graph *g, int x, const float *w1, const float *w2, const float *b)
{
    nn_conv_desc d = nn_conv_desc_defaults();
    d.out_c = 8;
    d.kh = d.kw = 3;
    d.pad_t = d.pad_l = d.pad_b = d.pad_r = 1;
    int c1 = nn_conv2d(g, x, &d, w1, b);
    int a1 = nn_leaky_relu(g, c1, 0.2f);
    int c2 = nn_conv2d(g, a1, &d, w2, b);
    int s = nn_binary(g, NN_ADD, c2, c1);
    int cr = nn_crop(g, s, 1, 2, 1, 0);
    int p = nn_pad(g, cr, 1, 2, 1, 0, NN_PAD_REFLECT, 0);
    int up = nn_interp(g, p, NN_INTERP_BICUBIC, 1, 1, 0, 0, 0);
    int cat[2] = {p, up};
    int cc = nn_concat(g, 2, cat);
    int ps = nn_pixel_shuffle(g, cc, 2);
    int big = nn_interp(g, x, NN_INTERP_NEAREST, 2, 2, 0, 0, 0);
    return nn_crop_like(g, ps, big, 0, 0);
}

static void fill(float *p, size_t n, uint32_t seed, float scale)
{
    for (size_t i = 0; i < n; i++)
        p[i] = ((float)(tu_xorshift32(&seed) % 2001) / 1000.0f - 1.0f) * scale;
}

/* The network with its result in the caller's buffer, with its result kept
 * in the arena (an identity tail becomes the output), and its first stages
 * computed by separate one-op graphs must all agree bit for bit. */
TEST(nn_buffer_reuse_same_result)
{
    enum { C = 3, H = 11, W = 9 };
    float w1[8 * C * 9], w2[8 * 8 * 9], b[8], in[C * H * W];
    fill(w1, sizeof w1 / 4, 1, 0.3f);
    fill(w2, sizeof w2 / 4, 2, 0.2f);
    fill(b, 8, 3, 0.5f);
    fill(in, sizeof in / 4, 4, 1.0f);
    upres_ctx *ctx = ctx_threads(2);
    CHECK(ctx);
    nn_graph *g = nn_graph_new();
    int y = build_net(g, nn_input(g, C), w1, w2, b);
    CHECK(y > 0);
    CHECK_OK(nn_graph_set_output(g, y));
    size_t bytes = 0, bytes2 = 0;
    CHECK_OK(nn_graph_plan_bytes(g, ctx, H, W, &bytes2));
    CHECK_OK(nn_graph_plan(g, ctx, H, W, &bytes));
    CHECK_EQ(bytes, bytes2);
    int oh, ow;
    CHECK_OK(nn_graph_out_size(g, ctx, H, W, &oh, &ow));
    CHECK(oh == 2 * H && ow == 2 * W);
    CHECK_EQ(nn_graph_out_channels(g), 4);
    size_t on = (size_t)4 * oh * ow;
    float *out = malloc(sizeof(float) * on), *ref = malloc(sizeof(float) * on);
    CHECK(out && ref);
    nn_tensor ti = {C, H, W, in}, to = {0, 0, 0, out};
    CHECK_OK(nn_graph_run(g, ctx, &ti, &to));
    CHECK_OK(nn_graph_run(g, ctx, &ti, &to)); /* runs are repeatable */

    nn_graph *full = nn_graph_new();
    int tail = nn_affine(full, build_net(full, nn_input(full, C), w1, w2, b), 1.0f, 0.0f);
    CHECK_OK(nn_graph_set_output(full, tail));
    CHECK_OK(nn_graph_plan(full, ctx, H, W, NULL));
    nn_tensor tr = {0, 0, 0, ref};
    CHECK_OK(nn_graph_run(full, ctx, &ti, &tr));
    CHECK(memcmp(out, ref, sizeof(float) * on) == 0);
    nn_graph_free(full);

    /* c1 = conv(x), c2 = conv(leaky(c1)) in their own graphs. */
    nn_conv_desc d = nn_conv_desc_defaults();
    d.out_c = 8;
    d.kh = d.kw = 3;
    d.pad_t = d.pad_l = d.pad_b = d.pad_r = 1;
    float *c1 = malloc(sizeof(float) * 8 * H * W), *c2 = malloc(sizeof(float) * 8 * H * W);
    CHECK(c1 && c2);
    nn_graph *g1 = nn_graph_new();
    CHECK_OK(nn_graph_set_output(g1, nn_conv2d(g1, nn_input(g1, C), &d, w1, b)));
    CHECK_OK(nn_graph_plan(g1, ctx, H, W, NULL));
    nn_tensor t1 = {0, 0, 0, c1};
    CHECK_OK(nn_graph_run(g1, ctx, &ti, &t1));
    nn_graph *g2 = nn_graph_new();
    CHECK_OK(nn_graph_set_output(
        g2, nn_conv2d(g2, nn_leaky_relu(g2, nn_input(g2, 8), 0.2f), &d, w2, b)));
    CHECK_OK(nn_graph_plan(g2, ctx, H, W, NULL));
    nn_tensor t2 = {0, 0, 0, c2};
    CHECK_OK(nn_graph_run(g2, ctx, &t1, &t2));
    /* s = c2 + c1 cropped by (1, 2, 1, 0), then padded back by (1, 2): the
     * pad's channel 0 lands on even rows/cols of shuffle channel 0. */
    int checked = 0;
    for (int yy = 0; yy < H - 2; yy++)
        for (int xx = 0; xx < W - 2; xx++, checked++) {
            float s = c2[(yy + 1) * W + xx + 2] + c1[(yy + 1) * W + xx + 2];
            float got = out[(2 * (yy + 1)) * ow + 2 * (xx + 2)];
            CHECKF(got == s, "y%d x%d: %g != %g", yy, xx, got, s);
        }
    CHECK(checked > 50);
    nn_graph_free(g1);
    nn_graph_free(g2);
    free(c1);
    free(c2);
    free(out);
    free(ref);
    nn_graph_free(g);
    upres_ctx_free(ctx);
}

/* SRVGGNetCompact's tail, add(pixel_shuffle(a), nearest interp(b)), runs
 * fused (nothing else reads the shuffle or the interpolation): bit for bit
 * the unfused ops, which run when a second reader of the interpolation keeps
 * it a value of its own, and with less arena. Scale and size forms, both
 * operand orders, r = 2 and 3 (3: the source index comes from the float
 * step, not a shift), 1 and 3 threads. */
TEST(nn_shuffle_add_fused_matches_unfused)
{
    static const struct {
        int r, by_size, swap;
    } cases[] = {{2, 0, 0}, {3, 0, 1}, {3, 1, 0}, {4, 0, 0}};
    const int H = 13, W = 10;
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const int r = cases[ci].r, C = 3 * r * r;
        float *in = malloc(sizeof(float) * (size_t)C * H * W);
        float *wt = malloc(sizeof(float) * (size_t)3 * C), bias[3] = {0.1f, -0.2f, 0.3f};
        CHECK(in && wt);
        fill(in, (size_t)C * H * W, 70 + (uint32_t)ci, 1.0f);
        fill(wt, (size_t)3 * C, 80 + (uint32_t)ci, 0.3f);
        float *res[2][2] = {{NULL, NULL}, {NULL, NULL}};
        size_t bytes[2] = {0, 0};
        for (int fused = 0; fused < 2; fused++) {
            nn_graph *g = nn_graph_new();
            int x = nn_input(g, C);
            nn_conv_desc d = nn_conv_desc_defaults();
            d.out_c = 3;
            int small = nn_conv2d(g, x, &d, wt, bias);
            int up = cases[ci].by_size
                         ? nn_interp(g, small, NN_INTERP_NEAREST, 0, 0, H * r, W * r, 0)
                         : nn_interp(g, small, NN_INTERP_NEAREST, (float)r, (float)r, 0, 0, 0);
            int ps = nn_pixel_shuffle(g, nn_relu(g, x), r);
            int y = cases[ci].swap ? nn_binary(g, NN_ADD, up, ps) : nn_binary(g, NN_ADD, ps, up);
            if (!fused) nn_relu(g, up); /* a second reader, never run */
            CHECK_OK(nn_graph_set_output(g, y));
            CHECK_OK(nn_graph_plan(g, NULL, H, W, &bytes[fused]));
            for (int t = 0; t < 2; t++) {
                upres_ctx *ctx = ctx_threads(t ? 3 : 1);
                nn_tensor tin = {C, H, W, in}, tout = {0, 0, 0, NULL};
                res[fused][t] = malloc(sizeof(float) * 3 * (size_t)(H * r) * (size_t)(W * r));
                CHECK(ctx && res[fused][t]);
                tout.data = res[fused][t];
                CHECK_OK(nn_graph_run(g, ctx, &tin, &tout));
                CHECK_EQ(tout.c, 3);
                CHECK_EQ(tout.h, H * r);
                CHECK_EQ(tout.w, W * r);
                upres_ctx_free(ctx);
            }
            nn_graph_free(g);
        }
        CHECKF(bytes[1] < bytes[0], "case %zu: fused arena %zu, unfused %zu", ci, bytes[1],
               bytes[0]);
        const size_t n = 3 * (size_t)(H * r) * (size_t)(W * r);
        for (int t = 0; t < 2; t++)
            CHECKF(memcmp(res[1][t], res[0][0], n * sizeof(float)) == 0,
                   "case %zu, %d threads: fused result differs", ci, t ? 3 : 1);
        for (int f = 0; f < 2; f++)
            for (int t = 0; t < 2; t++) free(res[f][t]);
        free(in);
        free(wt);
    }
}

/* A chain of elementwise ops needs exactly two buffers (ping-pong), and a
 * value read late keeps its buffer alive until then. */
TEST(nn_plan_reuses_dead_buffers)
{
    nn_graph *g = nn_graph_new();
    int x = nn_input(g, 4);
    for (int i = 0; i < 10; i++) x = nn_relu(g, x);
    CHECK_OK(nn_graph_set_output(g, nn_sigmoid(g, x)));
    size_t bytes = 0, v = 4 * 16 * 16 * sizeof(float);
    CHECK_OK(nn_graph_plan(g, NULL, 16, 16, &bytes));
    CHECK_EQ(bytes, 2 * v);
    nn_graph_free(g);
    /* skip = relu(x); 5 relus; add(skip, chain): three live at the peak. */
    g = nn_graph_new();
    int skip = nn_relu(g, nn_input(g, 4));
    x = skip;
    for (int i = 0; i < 5; i++) x = nn_relu(g, x);
    CHECK_OK(nn_graph_set_output(g, nn_binary(g, NN_ADD, skip, x)));
    CHECK_OK(nn_graph_plan(g, NULL, 16, 16, &bytes));
    CHECK_EQ(bytes, 3 * v);
    nn_graph_free(g);
}

/* Plans that must fail, with the op named in the detail. */
TEST(nn_plan_errors)
{
    upres_ctx *ctx = ctx_threads(1);
    CHECK(ctx);
    size_t bytes;
    int oh, ow;
    /* Crop larger than the input. */
    nn_graph *g = nn_graph_new();
    int x = nn_input(g, 3);
    CHECK_OK(nn_graph_set_output(g, nn_crop(g, x, 20, 0, 20, 0)));
    upres__clear_error(ctx);
    CHECK_EQ(nn_graph_plan(g, ctx, 40, 32, &bytes), UPRES_ERR_INVALID_ARG);
    CHECKF(strstr(upres_ctx_error(ctx), "nn: crop"), "%s", upres_ctx_error(ctx));
    CHECK_OK(nn_graph_plan(g, ctx, 41, 32, &bytes));
    CHECK_OK(nn_graph_out_size(g, ctx, 41, 32, &oh, &ow));
    CHECK(oh == 1 && ow == 32);
    nn_graph_free(g);
    /* Mismatched add. */
    g = nn_graph_new();
    x = nn_input(g, 3);
    nn_conv_desc d = nn_conv_desc_defaults();
    d.out_c = 3;
    d.kh = d.kw = 3;
    float w[81] = {0};
    int c = nn_conv2d(g, x, &d, w, NULL);
    CHECK_OK(nn_graph_set_output(g, nn_binary(g, NN_ADD, x, c)));
    upres__clear_error(ctx);
    CHECK_EQ(nn_graph_plan(g, ctx, 10, 10, NULL), UPRES_ERR_INVALID_ARG);
    CHECKF(strstr(upres_ctx_error(ctx), "nn: binary"), "%s", upres_ctx_error(ctx));
    CHECK_EQ(nn_graph_out_size(g, ctx, 10, 10, &oh, &ow), UPRES_ERR_INVALID_ARG);
    nn_graph_free(g);
    /* Channel mismatch is refused while building. */
    g = nn_graph_new();
    x = nn_input(g, 3);
    d.out_c = 2;
    c = nn_conv2d(g, x, &d, w, NULL);
    CHECK(c > 0);
    CHECK_EQ(nn_binary(g, NN_ADD, x, c), UPRES_ERR_INVALID_ARG);
    CHECK_EQ(nn_graph_status(g), UPRES_ERR_INVALID_ARG);
    CHECK_EQ(nn_relu(g, x), UPRES_ERR_INVALID_ARG); /* poisoned */
    upres__clear_error(ctx);
    CHECK_EQ(nn_graph_plan(g, ctx, 10, 10, NULL), UPRES_ERR_INVALID_ARG);
    nn_graph_free(g);
    /* A 1-channel full-size tensor does not broadcast over channels. */
    g = nn_graph_new();
    x = nn_input(g, 3);
    d.out_c = 1;
    d.pad_t = d.pad_l = d.pad_b = d.pad_r = 1;
    c = nn_conv2d(g, x, &d, w, NULL);
    CHECK_OK(nn_graph_set_output(g, nn_binary(g, NN_MUL, x, c)));
    upres__clear_error(ctx);
    CHECK_EQ(nn_graph_plan(g, ctx, 10, 10, NULL), UPRES_ERR_INVALID_ARG);
    nn_graph_free(g);
    /* Odd size for unshuffle. */
    g = nn_graph_new();
    x = nn_input(g, 1);
    CHECK_OK(nn_graph_set_output(g, nn_pixel_unshuffle(g, x, 2)));
    upres__clear_error(ctx);
    CHECK_EQ(nn_graph_plan(g, ctx, 9, 8, NULL), UPRES_ERR_INVALID_ARG);
    CHECKF(strstr(upres_ctx_error(ctx), "nn: pixel_unshuffle"), "%s", upres_ctx_error(ctx));
    CHECK_OK(nn_graph_plan(g, ctx, 8, 8, NULL));
    nn_graph_free(g);
    /* Reflect padding not smaller than the side; kernel larger than input. */
    g = nn_graph_new();
    x = nn_input(g, 1);
    CHECK_OK(nn_graph_set_output(g, nn_pad(g, x, 4, 0, 0, 0, NN_PAD_REFLECT, 0)));
    upres__clear_error(ctx);
    CHECK_EQ(nn_graph_plan(g, ctx, 4, 8, NULL), UPRES_ERR_INVALID_ARG);
    CHECK_OK(nn_graph_plan(g, ctx, 5, 8, NULL));
    nn_graph_free(g);
    g = nn_graph_new();
    x = nn_input(g, 3);
    d = nn_conv_desc_defaults();
    d.out_c = 1;
    d.kh = d.kw = 3;
    CHECK_OK(nn_graph_set_output(g, nn_conv2d(g, x, &d, w, NULL)));
    upres__clear_error(ctx);
    CHECK_EQ(nn_graph_plan(g, ctx, 2, 8, NULL), UPRES_ERR_INVALID_ARG);
    CHECKF(strstr(upres_ctx_error(ctx), "nn: conv2d"), "%s", upres_ctx_error(ctx));
    nn_graph_free(g);
    /* Concat of different sizes; crop_like that does not fit. */
    g = nn_graph_new();
    x = nn_input(g, 1);
    int xs[2] = {x, nn_crop(g, x, 1, 0, 0, 0)};
    CHECK_OK(nn_graph_set_output(g, nn_concat(g, 2, xs)));
    upres__clear_error(ctx);
    CHECK_EQ(nn_graph_plan(g, ctx, 5, 5, NULL), UPRES_ERR_INVALID_ARG);
    nn_graph_free(g);
    g = nn_graph_new();
    x = nn_input(g, 1);
    int padded = nn_pad(g, x, 1, 1, 1, 1, NN_PAD_ZERO, 0);
    CHECK_OK(nn_graph_set_output(g, nn_crop_like(g, x, padded, 0, 0)));
    upres__clear_error(ctx);
    CHECK_EQ(nn_graph_plan(g, ctx, 5, 5, NULL), UPRES_ERR_INVALID_ARG);
    nn_graph_free(g);
    /* Bad builder arguments. */
    g = nn_graph_new();
    x = nn_input(g, 4);
    CHECK_EQ(nn_input(g, 4), UPRES_ERR_INVALID_ARG);
    nn_graph_free(g);
    g = nn_graph_new();
    x = nn_input(g, 4);
    d.out_c = 3;
    d.groups = 2; /* does not divide 3 */
    CHECK_EQ(nn_conv2d(g, x, &d, w, NULL), UPRES_ERR_INVALID_ARG);
    nn_graph_free(g);
    g = nn_graph_new();
    x = nn_input(g, 4);
    CHECK_EQ(nn_pixel_shuffle(g, x, 3), UPRES_ERR_INVALID_ARG);
    nn_graph_free(g);
    g = nn_graph_new();
    x = nn_input(g, 4);
    CHECK_EQ(nn_prelu(g, x, w, 3), UPRES_ERR_INVALID_ARG);
    nn_graph_free(g);
    g = nn_graph_new();
    upres__clear_error(ctx);
    CHECK_EQ(nn_graph_plan(g, ctx, 4, 4, NULL), UPRES_ERR_INVALID_ARG); /* no input/output */
    nn_graph_free(g);
    upres_ctx_free(ctx);
}

TEST(nn_memory_limit)
{
    upres_ctx_desc cd = upres_ctx_desc_defaults();
    cd.threads = 1;
    cd.limits.max_memory_bytes = 100000;
    upres_ctx *ctx = NULL;
    CHECK_OK(upres_ctx_new(&cd, &ctx));
    nn_graph *g = nn_graph_new();
    int x = nn_input(g, 4);
    int a = nn_relu(g, x), b = nn_sigmoid(g, a);
    CHECK_OK(nn_graph_set_output(g, nn_binary(g, NN_ADD, a, b)));
    size_t bytes = 0;
    /* Two live 4 x 40 x 40 values = 51200 bytes fit; 4 x 80 x 80 do not. */
    CHECK_OK(nn_graph_plan(g, ctx, 40, 40, &bytes));
    CHECK(bytes >= 2 * 4 * 40 * 40 * 4 && bytes <= 100000);
    upres__clear_error(ctx);
    CHECK_EQ(nn_graph_plan(g, ctx, 80, 80, &bytes), UPRES_ERR_LIMIT);
    CHECKF(strstr(upres_ctx_error(ctx), "nn:"), "%s", upres_ctx_error(ctx));
    CHECK_EQ(nn_graph_plan_bytes(g, ctx, 80, 80, &bytes), UPRES_ERR_LIMIT);
    /* Huge sides are refused without allocating. */
    CHECK(nn_graph_plan(g, NULL, 1 << 24, 1 << 24, &bytes) < 0);
    nn_graph_free(g);
    upres_ctx_free(ctx);
}

TEST(nn_replan_new_size)
{
    float w[8 * 3 * 9], w2[8 * 8 * 9], b[8];
    fill(w, sizeof w / 4, 7, 0.3f);
    fill(w2, sizeof w2 / 4, 8, 0.2f);
    fill(b, 8, 9, 0.5f);
    upres_ctx *ctx = ctx_threads(2);
    CHECK(ctx);
    nn_graph *g = nn_graph_new();
    CHECK_OK(nn_graph_set_output(g, build_net(g, nn_input(g, 3), w, w2, b)));
    static const int sizes[][2] = {{8, 8}, {13, 7}, {5, 21}, {8, 8}};
    for (int i = 0; i < 4; i++) {
        int H = sizes[i][0], W = sizes[i][1];
        float *in = malloc(sizeof(float) * 3 * H * W);
        float *o1 = malloc(sizeof(float) * 4 * 4 * H * W);
        float *o2 = malloc(sizeof(float) * 4 * 4 * H * W);
        CHECK(in && o1 && o2);
        fill(in, (size_t)3 * H * W, 10 + i, 1.0f);
        size_t probe;
        if (i) CHECK_OK(nn_graph_plan_bytes(g, ctx, 6, 6, &probe)); /* must not disturb the plan */
        CHECK_OK(nn_graph_plan(g, ctx, H, W, NULL));
        /* Probing other sizes (as tile choosers do) must not disturb the plan. */
        CHECK_OK(nn_graph_plan_bytes(g, ctx, 30, 30, &probe));
        int ph, pw;
        CHECK_OK(nn_graph_out_size(g, ctx, 40, 17, &ph, &pw));
        CHECK(ph == 80 && pw == 34);
        CHECK_EQ(nn_graph_out_size(g, ctx, 2, 2, &ph, &pw), UPRES_ERR_INVALID_ARG);
        nn_tensor ti = {3, H, W, in}, t1 = {0, 0, 0, o1}, t2 = {0, 0, 0, o2};
        CHECK_OK(nn_graph_run(g, ctx, &ti, &t1));
        CHECK(t1.h == 2 * H && t1.w == 2 * W && t1.c == 4);
        /* Wrong size input is refused. */
        nn_tensor bad = {3, H + 1, W, in};
        CHECK_EQ(nn_graph_run(g, ctx, &bad, &t2), UPRES_ERR_INVALID_ARG);
        nn_graph *f = nn_graph_new();
        CHECK_OK(nn_graph_set_output(f, build_net(f, nn_input(f, 3), w, w2, b)));
        CHECK_OK(nn_graph_plan(f, ctx, H, W, NULL));
        CHECK_OK(nn_graph_run(f, ctx, &ti, &t2));
        CHECKF(memcmp(o1, o2, sizeof(float) * 4 * 4 * H * W) == 0, "size %dx%d", W, H);
        nn_graph_free(f);
        free(in);
        free(o1);
        free(o2);
    }
    nn_graph_free(g);
    upres_ctx_free(ctx);
}

static int cancel_after(void *user, const char *what, uint64_t done, uint64_t total)
{
    (void)total;
    int *calls = user;
    if (strcmp(what, "nn") == 0) ++*calls;
    return done >= 2;
}

TEST(nn_cancel)
{
    upres_ctx_desc cd = upres_ctx_desc_defaults();
    cd.threads = 2;
    int calls = 0;
    cd.progress = cancel_after;
    cd.progress_user = &calls;
    upres_ctx *ctx = NULL;
    CHECK_OK(upres_ctx_new(&cd, &ctx));
    nn_graph *g = nn_graph_new();
    int x = nn_input(g, 2);
    for (int i = 0; i < 6; i++) x = nn_relu(g, x);
    CHECK_OK(nn_graph_set_output(g, x));
    CHECK_OK(nn_graph_plan(g, ctx, 4, 4, NULL));
    float in[32] = {0}, out[32];
    nn_tensor ti = {2, 4, 4, in}, to = {0, 0, 0, out};
    CHECK_EQ(nn_graph_run(g, ctx, &ti, &to), UPRES_ERR_CANCELLED);
    CHECK(calls >= 1 && calls <= 3);
    nn_graph_free(g);
    upres_ctx_free(ctx);
}

TEST(nn_identity_and_params)
{
    nn_graph *g = nn_graph_new();
    int x = nn_input(g, 2);
    CHECK_EQ(nn_channels(g, x), 2);
    CHECK_EQ(nn_channels(g, 5), UPRES_ERR_INVALID_ARG);
    float sl[2] = {0.1f, 0.2f};
    int p = nn_prelu(g, x, sl, 2);
    CHECK(p > 0);
    CHECK_EQ(nn_graph_params(g), 2);
    /* Output = input: copied through. */
    CHECK_OK(nn_graph_set_output(g, x));
    CHECK_OK(nn_graph_plan(g, NULL, 2, 3, NULL));
    float in[12], out[12];
    for (int i = 0; i < 12; i++) in[i] = (float)i - 5;
    nn_tensor ti = {2, 2, 3, in}, to = {0, 0, 0, out};
    CHECK_OK(nn_graph_run(g, NULL, &ti, &to));
    CHECK(memcmp(in, out, sizeof in) == 0 && to.c == 2 && to.h == 2 && to.w == 3);
    /* Prelu as output, planned with no ctx (single thread). */
    CHECK_OK(nn_graph_set_output(g, p));
    CHECK_OK(nn_graph_plan(g, NULL, 2, 3, NULL));
    CHECK_OK(nn_graph_run(g, NULL, &ti, &to));
    CHECK(out[0] == -5 * 0.1f && out[6] == 1.0f && out[7] == 2.0f);
    CHECK(out[11] == 6.0f);
    nn_graph_free(g);
    nn_graph_free(NULL);
}
