/* Architecture recognition (src/models/arch.c): tiny random-weight RRDBNet
 * and SRVGGNetCompact models in every key naming and scale against PyTorch
 * (fixtures from tests/gen_arch_fixtures.py), unknown layouts, malformed
 * shapes, and the real realesr-animevideov3 / PAN files when present. */
#include "test.h"

#include "models/models_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Acceptance bound: max |ours - torch| in float32. */
#define ARCH_TOL 1e-4

/* Reads a raw little-endian float32 fixture of exactly n floats; NULL when
 * missing or of another size. The caller frees it. */
static float *read_f32(const char *rel, size_t n)
{
    size_t size = 0;
    unsigned char *b = test_read_file(test_fixture(rel), &size);
    if (!b || size != n * 4) {
        free(b);
        return NULL;
    }
    float *f = malloc(n * sizeof *f);
    if (!f) {
        free(b);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)b[4 * i] | (uint32_t)b[4 * i + 1] << 8 |
                     (uint32_t)b[4 * i + 2] << 16 | (uint32_t)b[4 * i + 3] << 24;
        memcpy(&f[i], &u, 4);
    }
    free(b);
    return f;
}

/*
 * Loads every model of tests/fixtures/arch/cases.txt whose file name starts
 * with `prefix`, checks what was recognised (arch, scale, channels, parameter
 * count) and runs it on the case's input: the result must match torch's
 * within ARCH_TOL. Returns NULL on success, else a message (static storage).
 * *count receives the number of models checked.
 */
static const char *run_cases(const char *prefix, int *count)
{
    static char msg[512];
    *count = 0;
    size_t size = 0;
    char *list = (char *)test_read_file(test_fixture("arch/cases.txt"), &size);
    if (!list)
        return "cannot read arch/cases.txt";
    char *text = realloc(list, size + 1);
    if (!text) {
        free(list);
        return "out of memory";
    }
    text[size] = '\0';
    upres_ctx *ctx = tu_ctx_1thread();
    const char *err = NULL;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line && !err;
         line = strtok_r(NULL, "\n", &save)) {
        char file[128], cas[128], arch[48];
        int scale, ch, h, w;
        unsigned long long params;
        if (sscanf(line, "%127s %127s %47s %d %d %d %d %llu", file, cas, arch, &scale, &ch, &h,
                   &w, &params) != 8) {
            snprintf(msg, sizeof msg, "bad cases.txt line: %s", line);
            err = msg;
            break;
        }
        if (strncmp(file, prefix, strlen(prefix)) != 0)
            continue;
        char rel[256];
        snprintf(rel, sizeof rel, "arch/%s", file);
        upres_model *m = NULL;
        int st = upres_model_load(ctx, test_fixture(rel), &m);
        if (st) {
            snprintf(msg, sizeof msg, "%s: load -> %s (%s)", file, upres_strerror(st),
                     upres_ctx_error(ctx));
            err = msg;
            break;
        }
        upres_model_info info;
        upres_model_get_info(m, &info);
        if (strcmp(info.arch, arch) != 0 || info.scale != scale || info.channels != ch ||
            info.params != params || m->in_c != ch || m->out_c != ch) {
            snprintf(msg, sizeof msg,
                     "%s: recognised as %s x%d, %d channels, %llu params; expected %s x%d, %d, "
                     "%llu",
                     file, info.arch, info.scale, info.channels,
                     (unsigned long long)info.params, arch, scale, ch, params);
            err = msg;
            upres_model_free(m);
            break;
        }
        size_t nin = (size_t)ch * h * w, nout = nin * scale * scale;
        snprintf(rel, sizeof rel, "arch/%s.in.f32", cas);
        float *in = read_f32(rel, nin);
        snprintf(rel, sizeof rel, "arch/%s.out.f32", cas);
        float *ref = read_f32(rel, nout);
        float *out = malloc(nout * sizeof *out);
        if (!in || !ref || !out) {
            snprintf(msg, sizeof msg, "%s: missing or short fixture data", file);
            err = msg;
        } else if ((st = upres__model_run(ctx, m, in, h, w, out)) != 0) {
            snprintf(msg, sizeof msg, "%s: run -> %s (%s)", file, upres_strerror(st),
                     upres_ctx_error(ctx));
            err = msg;
        } else {
            double maxe = 0.0;
            for (size_t i = 0; i < nout; i++) {
                double e = fabs((double)out[i] - (double)ref[i]);
                if (!(e <= maxe)) /* also catches NaN */
                    maxe = isnan(e) ? INFINITY : e;
            }
            fprintf(stderr, "    %-30s %-16s x%d  max abs err %.2e\n", file, info.arch,
                    info.scale, maxe);
            if (!(maxe <= ARCH_TOL)) {
                snprintf(msg, sizeof msg, "%s: max abs error %.3g > %g", file, maxe, ARCH_TOL);
                err = msg;
            }
        }
        free(in);
        free(ref);
        free(out);
        upres_model_free(m);
        if (!err)
            (*count)++;
    }
    upres_ctx_free(ctx);
    free(text);
    return err;
}

TEST(arch_rrdb_new_naming_matches_torch)
{
    int n = 0;
    const char *e = run_cases("rrdb_new_", &n);
    CHECKF(!e, "%s", e);
    CHECK(n >= 5); /* x4, x2, x1, gray x2 (.pth and .safetensors) */
}

TEST(arch_rrdb_old_naming_matches_torch)
{
    int n = 0;
    const char *e = run_cases("rrdb_old_", &n);
    CHECKF(!e, "%s", e);
    CHECK(n >= 5); /* x4 (zip and legacy), x2, x1, x8 */
}

TEST(arch_rrdb_trunk_naming_matches_torch)
{
    int n = 0;
    const char *e = run_cases("rrdb_trunk_", &n);
    CHECKF(!e, "%s", e);
    CHECK(n >= 4); /* x4, x2 (unshuffle), x1, x2 with one upsampling */
}

TEST(arch_srvgg_matches_torch)
{
    int n = 0;
    const char *e = run_cases("srvgg_", &n);
    CHECKF(!e, "%s", e);
    CHECK(n >= 4); /* PReLU x4 (.pth, .safetensors), ReLU x2, gray PReLU x3 */
}

/* Pixel-unshuffled models ask the host for aligned sizes; their context
 * suggestion stays bounded. */
TEST(arch_rrdb_alignment_and_context)
{
    static const struct {
        const char *file;
        int align;
    } cases[] = {{"arch/rrdb_new_x4.pth", 1},
                 {"arch/rrdb_new_x2.pth", 2},
                 {"arch/rrdb_new_x1.pth", 4},
                 {"arch/rrdb_old_x8.pth", 1},
                 {"arch/srvgg_prelu_x4.pth", 1}};
    upres_ctx *ctx = tu_ctx_1thread();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        upres_model *m = NULL;
        CHECK_OK(upres_model_load(ctx, test_fixture(cases[i].file), &m));
        CHECKF(m->align == cases[i].align && m->min_side == cases[i].align, "%s: align %d",
               cases[i].file, m->align);
        CHECKF(m->context >= 1 && m->context <= 32, "%s: context %d", cases[i].file, m->context);
        upres_model_free(m);
    }
    upres_ctx_free(ctx);
}

/* ---- hand-made state dicts ---------------------------------------------- */

/* Appends a tensor filled with small pseudo-random values. Returns 0 on
 * success. */
static int sd_add(upres_statedict *sd, const char *name, int ndim, int64_t d0, int64_t d1,
                  int64_t d2, int64_t d3)
{
    int64_t dims[4] = {d0, d1, d2, d3};
    size_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= (size_t)dims[i];
    upres_sd_tensor *t = realloc(sd->t, (sd->n + 1) * sizeof *t);
    if (!t)
        return -1;
    sd->t = t;
    t = &sd->t[sd->n];
    memset(t, 0, sizeof *t);
    t->name = malloc(strlen(name) + 1);
    t->data = malloc((n ? n : 1) * sizeof(float));
    if (!t->name || !t->data) {
        free(t->name);
        free(t->data);
        return -1;
    }
    strcpy(t->name, name);
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        t->shape[i] = dims[i];
    uint32_t s = 12345u + (uint32_t)sd->n;
    for (size_t i = 0; i < n; i++)
        t->data[i] = (float)(tu_xorshift32(&s) % 1000) / 1000.0f - 0.5f;
    sd->n++;
    return 0;
}

static int sd_conv(upres_statedict *sd, const char *prefix, int out, int in)
{
    char name[128];
    snprintf(name, sizeof name, "%s.weight", prefix);
    if (sd_add(sd, name, 4, out, in, 3, 3))
        return -1;
    snprintf(name, sizeof name, "%s.bias", prefix);
    return sd_add(sd, name, 1, out, 0, 0, 0);
}

/* SRVGGNetCompact, num_feat 4, num_conv 2, x2, PReLU (prelu != 0) or ReLU. */
static int make_srvgg(upres_statedict *sd, int prelu)
{
    if (sd_conv(sd, "body.0", 4, 3) || (prelu && sd_add(sd, "body.1.weight", 1, 4, 0, 0, 0)) ||
        sd_conv(sd, "body.2", 4, 4) || (prelu && sd_add(sd, "body.3.weight", 1, 4, 0, 0, 0)) ||
        sd_conv(sd, "body.4", 4, 4) || (prelu && sd_add(sd, "body.5.weight", 1, 4, 0, 0, 0)) ||
        sd_conv(sd, "body.6", 12, 4))
        return -1;
    return 0;
}

/* New-naming RRDBNet x4, num_feat 4, num_grow_ch 2, one block. */
static int make_rrdb(upres_statedict *sd)
{
    char p[64];
    if (sd_conv(sd, "conv_first", 4, 3))
        return -1;
    for (int k = 1; k <= 3; k++)
        for (int j = 1; j <= 5; j++) {
            snprintf(p, sizeof p, "body.0.rdb%d.conv%d", k, j);
            if (sd_conv(sd, p, j < 5 ? 2 : 4, 4 + 2 * (j - 1)))
                return -1;
        }
    if (sd_conv(sd, "conv_body", 4, 4) || sd_conv(sd, "conv_up1", 4, 4) ||
        sd_conv(sd, "conv_up2", 4, 4) || sd_conv(sd, "conv_hr", 4, 4) ||
        sd_conv(sd, "conv_last", 3, 4))
        return -1;
    return 0;
}

static upres_sd_tensor *sd_get(upres_statedict *sd, const char *name)
{
    return (upres_sd_tensor *)upres__sd_find(sd, name);
}

/* Builds sd; returns the status and leaves the detail in `detail`. */
static int build(const upres_statedict *sd, struct upres_model *m, char *detail, size_t cap)
{
    upres_ctx *ctx = tu_ctx_1thread();
    upres__model_init(m);
    int st = upres__arch_build(ctx, sd, m);
    snprintf(detail, cap, "%s", ctx ? upres_ctx_error(ctx) : "");
    upres_ctx_free(ctx);
    return st;
}

TEST(arch_handmade_models_are_recognised)
{
    char d[512];
    struct upres_model m;
    upres_statedict sd = {0};
    CHECK_EQ(make_srvgg(&sd, 1), 0);
    CHECK_OK(build(&sd, &m, d, sizeof d));
    CHECK(strcmp(m.arch, "SRVGGNetCompact") == 0);
    CHECK_EQ(m.scale, 2);
    CHECK_EQ(m.in_c, 3);
    CHECK_EQ(m.context, 4);
    CHECK_EQ(m.params, (4 * 27 + 4) + 2 * (4 * 36 + 4) + 3 * 4 + (12 * 36 + 12));
    nn_graph_free(m.graph);
    upres__sd_free(&sd);

    CHECK_EQ(make_srvgg(&sd, 0), 0);
    CHECK_OK(build(&sd, &m, d, sizeof d));
    CHECK_EQ(m.params, (4 * 27 + 4) + 2 * (4 * 36 + 4) + (12 * 36 + 12));
    nn_graph_free(m.graph);
    upres__sd_free(&sd);

    CHECK_EQ(make_rrdb(&sd), 0);
    CHECK_OK(build(&sd, &m, d, sizeof d));
    CHECK(strcmp(m.arch, "RRDBNet") == 0);
    CHECK_EQ(m.scale, 4);
    CHECK_EQ(m.align, 1);
    nn_graph_free(m.graph);
    upres__sd_free(&sd);
}

TEST(arch_unknown_layout_is_unsupported)
{
    char d[512];
    struct upres_model m;
    upres_statedict sd = {0};
    CHECK_EQ(sd_conv(&sd, "conv_first", 4, 3), 0);
    CHECK_EQ(sd_conv(&sd, "SCPA_trunk.0.conv1_a", 4, 4), 0);
    CHECK_EQ(build(&sd, &m, d, sizeof d), UPRES_ERR_UNSUPPORTED);
    CHECKF(strstr(d, "unrecognised architecture (keys: conv_first.weight, conv_first.bias, "
                     "SCPA_trunk.0.conv1_a.weight, ...)") != NULL,
           "detail: %s", d);
    CHECK(m.graph == NULL);
    upres__sd_free(&sd);

    /* No tensors at all. */
    CHECK_EQ(build(&sd, &m, d, sizeof d), UPRES_ERR_UNSUPPORTED);
    CHECK(strstr(d, "unrecognised architecture") != NULL);

    /* Key names are untrusted: control bytes are not copied into the detail. */
    CHECK_EQ(sd_add(&sd, "evil\n\x1b[2Jname", 1, 1, 0, 0, 0), 0);
    CHECK_EQ(build(&sd, &m, d, sizeof d), UPRES_ERR_UNSUPPORTED);
    CHECKF(strstr(d, "evil??[2Jname") != NULL && !strchr(d, '\n'), "detail: %s", d);
    upres__sd_free(&sd);

    /* SRVGG-like keys but something else in between: not SRVGG. */
    CHECK_EQ(make_srvgg(&sd, 1), 0);
    CHECK_EQ(sd_add(&sd, "body.2.body.0.weight", 4, 4, 4, 3, 3), 0);
    CHECK_EQ(build(&sd, &m, d, sizeof d), UPRES_ERR_UNSUPPORTED);
    upres__sd_free(&sd);

    /* A known layout with layers we would ignore (ESRGAN+'s conv1x1): refused
     * rather than run without them. */
    CHECK_EQ(make_rrdb(&sd), 0);
    CHECK_EQ(sd_add(&sd, "body.0.rdb1.conv1x1.weight", 4, 2, 4, 1, 1), 0);
    CHECK_EQ(build(&sd, &m, d, sizeof d), UPRES_ERR_UNSUPPORTED);
    CHECKF(strstr(d, "unexpected tensor body.0.rdb1.conv1x1.weight") != NULL, "detail: %s", d);
    CHECK(m.graph == NULL);
    upres__sd_free(&sd);
}

/* Each damage must give UPRES_ERR_CORRUPT with a detail naming `needle`. */
TEST(arch_wrong_shapes_are_corrupt)
{
    char d[512];
    struct upres_model m;
    upres_statedict sd = {0};

    /* in_c of a conv does not match the previous layer (same element count). */
    CHECK_EQ(make_srvgg(&sd, 1), 0);
    upres_sd_tensor *t = sd_get(&sd, "body.2.weight");
    t->shape[0] = 2;
    t->shape[1] = 8;
    CHECK_EQ(build(&sd, &m, d, sizeof d), UPRES_ERR_CORRUPT);
    CHECKF(strstr(d, "body.2.weight") != NULL, "detail: %s", d);
    CHECK(m.graph == NULL);
    upres__sd_free(&sd);

    /* Bias of the wrong length. */
    CHECK_EQ(make_srvgg(&sd, 1), 0);
    sd_get(&sd, "body.4.bias")->shape[0] = 3;
    CHECK_EQ(build(&sd, &m, d, sizeof d), UPRES_ERR_CORRUPT);
    CHECKF(strstr(d, "body.4.bias") != NULL, "detail: %s", d);
    upres__sd_free(&sd);

    /* PReLU slopes of the wrong count, and one missing. */
    CHECK_EQ(make_srvgg(&sd, 1), 0);
    sd_get(&sd, "body.3.weight")->shape[0] = 3;
    CHECK_EQ(build(&sd, &m, d, sizeof d), UPRES_ERR_CORRUPT);
    CHECKF(strstr(d, "body.3.weight") != NULL, "detail: %s", d);
    upres__sd_free(&sd);
    CHECK_EQ(make_srvgg(&sd, 1), 0);
    t = sd_get(&sd, "body.3.weight");
    CHECK(t != NULL);
    free(t->name);
    free(t->data);
    memmove(t, t + 1, (size_t)(sd.t + sd.n - (t + 1)) * sizeof *t);
    sd.n--;
    CHECK_EQ(build(&sd, &m, d, sizeof d), UPRES_ERR_CORRUPT);
    CHECKF(strstr(d, "body.3.weight") != NULL, "detail: %s", d);
    upres__sd_free(&sd);

    /* Last conv's channels are not 3*s*s. */
    CHECK_EQ(make_srvgg(&sd, 0), 0);
    t = sd_get(&sd, "body.6.weight");
    t->shape[0] = 6;
    t->shape[1] = 8; /* same count as [12][4] */
    CHECK_EQ(build(&sd, &m, d, sizeof d), UPRES_ERR_CORRUPT);
    CHECKF(strstr(d, "body.6.weight") != NULL, "detail: %s", d);
    upres__sd_free(&sd);

    /* A conv weight with 2 dimensions; an even kernel. */
    CHECK_EQ(make_srvgg(&sd, 0), 0);
    t = sd_get(&sd, "body.4.weight");
    t->ndim = 2;
    t->shape[1] = 36;
    CHECK_EQ(build(&sd, &m, d, sizeof d), UPRES_ERR_CORRUPT);
    CHECKF(strstr(d, "body.4.weight") != NULL, "detail: %s", d);
    upres__sd_free(&sd);
    CHECK_EQ(make_srvgg(&sd, 0), 0);
    t = sd_get(&sd, "body.4.weight");
    t->shape[1] = 9;
    t->shape[2] = 2;
    t->shape[3] = 2;
    CHECK_EQ(build(&sd, &m, d, sizeof d), UPRES_ERR_CORRUPT);
    CHECKF(strstr(d, "body.4.weight") != NULL, "detail: %s", d);
    upres__sd_free(&sd);

    /* RRDBNet: a tensor of the dense block missing; growth inconsistent. */
    CHECK_EQ(make_rrdb(&sd), 0);
    t = sd_get(&sd, "body.0.rdb2.conv3.bias");
    t->name[0] = 'x';
    CHECK_EQ(build(&sd, &m, d, sizeof d), UPRES_ERR_CORRUPT);
    CHECKF(strstr(d, "missing tensor body.0.rdb2.conv3.bias") != NULL, "detail: %s", d);
    upres__sd_free(&sd);
    CHECK_EQ(make_rrdb(&sd), 0);
    t = sd_get(&sd, "body.0.rdb3.conv4.weight"); /* [2][10][3][3] */
    t->shape[0] = 4;
    t->shape[1] = 5;
    CHECK_EQ(build(&sd, &m, d, sizeof d), UPRES_ERR_CORRUPT);
    /* conv4 itself is consistent with its input; conv5 then sees 4+2+2+2+4. */
    CHECKF(strstr(d, "body.0.rdb3.conv4.weight") != NULL ||
               strstr(d, "body.0.rdb3.conv5.weight") != NULL,
           "detail: %s", d);
    upres__sd_free(&sd);
}

/* The fixture made by the generator: a reshaped tensor in a .safetensors,
 * through the public loader. */
TEST(arch_bad_shape_file_is_a_clean_error)
{
    upres_ctx *ctx = tu_ctx_1thread();
    upres_model *m = (upres_model *)1;
    int st = upres_model_load(ctx, test_fixture("arch/bad_shape.safetensors"), &m);
    CHECK_EQ(st, UPRES_ERR_CORRUPT);
    CHECK(m == NULL);
    CHECKF(strstr(upres_ctx_error(ctx), "body.0.rdb1.conv2.weight") != NULL, "detail: %s",
           upres_ctx_error(ctx));
    upres_ctx_free(ctx);
}

TEST(arch_real_pan_is_unsupported)
{
    const char *p = test_shared("models/pytorch/PANx4_DF2K.pth");
    if (!p)
        SKIP("shared models not available");
    upres_ctx *ctx = tu_ctx_1thread();
    upres_model *m = (upres_model *)1;
    CHECK_EQ(upres_model_load(ctx, p, &m), UPRES_ERR_UNSUPPORTED);
    CHECK(m == NULL);
    const char *d = upres_ctx_error(ctx);
    CHECKF(strstr(d, "unrecognised architecture (keys: conv_first.weight") && strstr(d, "SCPA"),
           "detail: %s", d);
    upres_ctx_free(ctx);
}

TEST(arch_real_animevideov3_is_srvgg_x4)
{
    const char *p = test_shared("models/pytorch/realesr-animevideov3.pth");
    if (!p)
        SKIP("shared models not available");
    upres_ctx *ctx = tu_ctx_1thread();
    upres_model *m = NULL;
    CHECK_OK(upres_model_load(ctx, p, &m));
    upres_model_info info;
    upres_model_get_info(m, &info);
    CHECK(strcmp(info.arch, "SRVGGNetCompact") == 0);
    CHECK_EQ(info.scale, 4);
    CHECK_EQ(info.channels, 3);
    /* num_feat 64, num_conv 16, PReLU: first conv, 16 body convs, 17 PReLUs,
     * last conv to 48 channels. */
    CHECK_EQ(info.params, (64 * 27 + 64) + 16 * (64 * 576 + 64) + 17 * 64 + (48 * 576 + 48));
    CHECK_EQ(info.context, 18); /* receptive radius of 18 3x3 convs */

    /* Against torch's output for a fixed 6x7 input (from the generator). */
    enum { H = 6, W = 7 };
    float *in = read_f32("arch/animevideov3.in.f32", 3 * H * W);
    float *ref = read_f32("arch/animevideov3.out.f32", 3 * 16 * H * W);
    float *out = malloc(3 * 16 * H * W * sizeof *out);
    int st = in && ref && out ? upres__model_run(ctx, m, in, H, W, out) : UPRES_ERR_NOMEM;
    double maxe = 0.0;
    for (int i = 0; st == 0 && i < 3 * 16 * H * W; i++) {
        double e = fabs((double)out[i] - (double)ref[i]);
        if (!(e <= maxe))
            maxe = isnan(e) ? INFINITY : e;
    }
    free(in);
    free(ref);
    free(out);
    CHECK_OK(st);
    fprintf(stderr, "    realesr-animevideov3.pth max abs err %.2e\n", maxe);
    CHECKF(maxe <= ARCH_TOL, "max abs error %.3g", maxe);
    upres_model_free(m);
    upres_ctx_free(ctx);
}
