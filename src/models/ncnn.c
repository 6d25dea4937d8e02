/*
 * ncnn .param (text) + .bin -> nn graph, plus the host-side settings the
 * Real-CUGAN, waifu2x and Real-ESRGAN ncnn graphs expect.
 *
 * The .param text is parsed strictly, one layer per line:
 *   7767517
 *   <layer count> <blob count>
 *   <Type> <name> <n bottoms> <n tops> <bottom names...> <top names...> <id=value...>
 * where a value is an int, a float (it contains '.', 'e' or 'E') or, for
 * ids written as -23300-K, an array "count,v1,...". Blob names map to nn value
 * ids; Split only aliases its input. The .bin holds the weights in layer order:
 * "weight" blocks start with a 4-byte tag (0x01306B47 fp16, 0 raw fp32), bias,
 * PReLU and Scale data are raw fp32 without a tag. Every read is checked
 * against the .bin size and the file must be consumed exactly.
 */
#include "models/models_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NC_MAGIC 7767517
#define NC_MAX_PARAMS 32        /* ids 0..31, as ncnn */
#define NC_MAX_ARRAY 256        /* elements of one array parameter */
#define NC_MAX_NAME 255         /* bytes of a layer / blob name */
#define NC_MAX_IO 64            /* bottoms or tops of one layer */
#define NC_MAX_LAYERS 100000
#define NC_MAX_BLOBS 200000
#define NC_MAX_CH 65536         /* channel count of any value */
#define NC_MAX_KERNEL 64
#define NC_MAX_STRIDE 64
#define NC_MAX_PAD 4096
#define NC_MAX_INTERP_SCALE 64.0f
#define NC_MAX_SIDE 65536

#define NC_TAG_FP16 0x01306B47u
#define NC_TAG_INT8 0x000D4B38u
#define NC_TAG_FP32_SCALED 0x0002C056u

/* ------------------------------------------------------------------------ */
/* Parameters of one layer line                                              */

typedef struct nc_param {
    int set;          /* 1 when the line gives this id */
    int is_array;
    int n;            /* array element count (1 for a scalar) */
    int is_float[NC_MAX_ARRAY]; /* per element: written as a float */
    int iv[NC_MAX_ARRAY];       /* integer value (ints only) */
    float fv[NC_MAX_ARRAY];     /* value as float (ints converted) */
} nc_param;

typedef struct nc_layer {
    char type[NC_MAX_NAME + 1];
    char name[NC_MAX_NAME + 1];
    int lineno;
    int nin, nout;
    int in[NC_MAX_IO];  /* blob table indices */
    int out[NC_MAX_IO]; /* blob table indices */
    nc_param p[NC_MAX_PARAMS];
    int bad_id;         /* first parameter read with the wrong kind, or -1 */
} nc_layer;

/* Reads int parameter `id` (default `def`). A float-written or array value
 * marks the layer bad (reported by the caller through bad_id). */
static int p_int(nc_layer *L, int id, int def)
{
    const nc_param *p = &L->p[id];
    if (!p->set)
        return def;
    if (p->is_array || p->is_float[0]) {
        if (L->bad_id < 0)
            L->bad_id = id;
        return def;
    }
    return p->iv[0];
}

/* Reads float parameter `id`; ints are accepted and converted. */
static float p_float(nc_layer *L, int id, float def)
{
    const nc_param *p = &L->p[id];
    if (!p->set)
        return def;
    if (p->is_array) {
        if (L->bad_id < 0)
            L->bad_id = id;
        return def;
    }
    return p->fv[0];
}

/* Array parameter `id`: its element count (0 when absent); a scalar marks the
 * layer bad. */
static int p_array_n(nc_layer *L, int id)
{
    const nc_param *p = &L->p[id];
    if (!p->set)
        return 0;
    if (!p->is_array) {
        if (L->bad_id < 0)
            L->bad_id = id;
        return 0;
    }
    return p->n;
}

/* Integer element i of array `id` (caller checked the count); a float
 * element marks the layer bad. */
static int p_array_int(nc_layer *L, int id, int i)
{
    const nc_param *p = &L->p[id];
    if (p->is_float[i]) {
        if (L->bad_id < 0)
            L->bad_id = id;
        return 0;
    }
    return p->iv[i];
}

/* Ids the layer type does not read are rejected, so a parameter we would
 * silently ignore (a feature we do not implement) cannot change the result. */
static int p_only(const nc_layer *L, const char *allowed, int *bad)
{
    for (int id = 0; id < NC_MAX_PARAMS; id++) {
        if (!L->p[id].set)
            continue;
        int ok = 0;
        for (const char *a = allowed; *a; a++) {
            int v = *a >= 'a' ? *a - 'a' + 10 : *a - '0';
            if (v == id)
                ok = 1;
        }
        if (!ok) {
            *bad = id;
            return 0;
        }
    }
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Number parsing (locale independent)                                       */

/* Parses a decimal int in [s, e) exactly; 0 on success. */
static int parse_int(const char *s, const char *e, int *out)
{
    int neg = 0;
    long long v = 0;
    if (s < e && (*s == '-' || *s == '+'))
        neg = *s++ == '-';
    if (s >= e)
        return -1;
    for (; s < e; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (*s - '0');
        if (v > 2147483648LL)
            return -1;
    }
    if (neg)
        v = -v;
    if (v > 2147483647LL || v < -2147483647LL - 1)
        return -1;
    *out = (int)v;
    return 0;
}

/* Parses a decimal float ("1.5", "-2e-3", "1.000000e-01", ".5") in [s, e)
 * exactly; 0 on success. Mantissa digits beyond 19 only shift the exponent;
 * the result is exact for the short values converters write. */
static int parse_float(const char *s, const char *e, float *out)
{
    int neg = 0, digits = 0, exp10 = 0;
    unsigned long long m = 0;
    if (s < e && (*s == '-' || *s == '+'))
        neg = *s++ == '-';
    for (; s < e && *s >= '0' && *s <= '9'; s++, digits++) {
        if (m < 1000000000000000000ULL)
            m = m * 10 + (unsigned)(*s - '0');
        else
            exp10++;
    }
    if (s < e && *s == '.') {
        s++;
        for (; s < e && *s >= '0' && *s <= '9'; s++, digits++) {
            if (m < 1000000000000000000ULL) {
                m = m * 10 + (unsigned)(*s - '0');
                exp10--;
            }
        }
    }
    if (digits == 0)
        return -1;
    if (s < e && (*s == 'e' || *s == 'E')) {
        int x;
        s++;
        if (parse_int(s, e, &x) != 0 || x > 1000 || x < -1000)
            return -1;
        exp10 += x;
        s = e;
    }
    if (s != e)
        return -1;
    double v = (double)m;
    /* Dividing by an exact power of ten keeps values like 1e-1 correctly
     * rounded, which multiplying by an inexact 1e-1 would not. */
    if (exp10 >= 0 && exp10 <= 22)
        v *= pow(10.0, exp10);
    else if (exp10 < 0 && exp10 >= -22)
        v /= pow(10.0, -exp10);
    else
        v *= pow(10.0, exp10);
    if (!isfinite(v) || fabs(v) > 3.0e38)
        return -1;
    *out = (float)(neg ? -v : v);
    return 0;
}

static int has_float_syntax(const char *s, const char *e)
{
    for (; s < e; s++)
        if (*s == '.' || *s == 'e' || *s == 'E')
            return 1;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Blob table: name -> value, open addressing                                */

typedef struct nc_blob {
    char *name;   /* owned */
    int value;    /* nn value id; -1 until produced */
    int spatial1; /* 1 when the value is [c][1][1] by construction (pooled) */
    int consumed;
    double rf;    /* receptive-field radius, graph-input pixels */
    double f;     /* graph-input pixels per pixel of this value */
} nc_blob;

typedef struct nc_blobs {
    nc_blob *b;
    int n, cap;     /* entries used, allocated */
    int *slot;      /* hash slots -> index or -1 */
    size_t nslot;   /* power of two */
} nc_blobs;

static uint32_t hash_name(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

static void blobs_free(nc_blobs *t)
{
    for (int i = 0; i < t->n; i++)
        free(t->b[i].name);
    free(t->b);
    free(t->slot);
    memset(t, 0, sizeof(*t));
}

static int blobs_init(nc_blobs *t, int declared)
{
    memset(t, 0, sizeof(*t));
    t->cap = declared;
    t->nslot = 16;
    while (t->nslot < (size_t)declared * 2)
        t->nslot *= 2;
    t->b = calloc((size_t)t->cap, sizeof(nc_blob));
    t->slot = malloc(t->nslot * sizeof(int));
    if (!t->b || !t->slot)
        return UPRES_ERR_NOMEM;
    for (size_t i = 0; i < t->nslot; i++)
        t->slot[i] = -1;
    return UPRES_OK;
}

/* Index of `name`, or -1. */
static int blobs_find(const nc_blobs *t, const char *name)
{
    size_t i = hash_name(name) & (t->nslot - 1);
    while (t->slot[i] >= 0) {
        if (strcmp(t->b[t->slot[i]].name, name) == 0)
            return t->slot[i];
        i = (i + 1) & (t->nslot - 1);
    }
    return -1;
}

/* Adds `name` (not yet present); its index, or -1 when the declared blob
 * count is exceeded, or -2 when out of memory. */
static int blobs_add(nc_blobs *t, const char *name)
{
    if (t->n >= t->cap)
        return -1;
    char *copy = malloc(strlen(name) + 1);
    if (!copy)
        return -2;
    strcpy(copy, name);
    nc_blob *b = &t->b[t->n];
    memset(b, 0, sizeof(*b));
    b->name = copy;
    b->value = -1;
    size_t i = hash_name(name) & (t->nslot - 1);
    while (t->slot[i] >= 0)
        i = (i + 1) & (t->nslot - 1);
    t->slot[i] = t->n;
    return t->n++;
}

/* ------------------------------------------------------------------------ */
/* .bin reader                                                               */

typedef struct nc_bin {
    const uint8_t *p;
    size_t size, off;
} nc_bin;

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    uint32_t bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else {
            /* Subnormal half: normalise into a float exponent. */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof(f));
    return f;
}

static uint32_t rd_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Reads n floats of layer L's `what` block into a new malloc()ed array
 * (*out). tagged: the block starts with ncnn's 4-byte storage tag. */
static int bin_read(upres_ctx *ctx, nc_bin *bin, const nc_layer *L, const char *what, size_t n,
                    int tagged, float **out)
{
    *out = NULL;
    size_t left = bin->size - bin->off;
    int fp16 = 0;
    if (tagged) {
        if (left < 4)
            return upres__fail(ctx, UPRES_ERR_CORRUPT,
                               "ncnn: .bin ends at byte %zu before the %s of layer '%s'",
                               bin->size, what, L->name);
        uint32_t tag = rd_le32(bin->p + bin->off);
        const uint8_t *t = bin->p + bin->off;
        if (tag == NC_TAG_FP16) {
            fp16 = 1;
        } else if (tag == NC_TAG_INT8) {
            return upres__fail(ctx, UPRES_ERR_UNSUPPORTED,
                               "ncnn: layer '%s' stores int8 %s (quantized models are not "
                               "supported)", L->name, what);
        } else if (tag != NC_TAG_FP32_SCALED && (t[0] | t[1] | t[2] | t[3]) != 0) {
            return upres__fail(ctx, UPRES_ERR_UNSUPPORTED,
                               "ncnn: layer '%s' %s has storage tag 0x%08X (only fp16 and fp32 "
                               "are supported)", L->name, what, (unsigned)tag);
        }
        bin->off += 4;
        left -= 4;
    }
    /* n <= the .bin size, so these products cannot overflow size_t. */
    if (n > bin->size)
        goto short_read;
    size_t bytes = fp16 ? (n * 2 + 3) / 4 * 4 : n * 4;
    if (bytes > left)
        goto short_read;
    float *w = malloc((n ? n : 1) * sizeof(float));
    if (!w)
        return upres__fail(ctx, UPRES_ERR_NOMEM, "ncnn: out of memory reading layer '%s'",
                           L->name);
    const uint8_t *p = bin->p + bin->off;
    for (size_t i = 0; i < n; i++) {
        if (fp16) {
            w[i] = half_to_float((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        } else {
            uint32_t bits = rd_le32(p + 4 * i);
            memcpy(&w[i], &bits, sizeof(float));
        }
        if (!isfinite(w[i])) {
            free(w);
            return upres__fail(ctx, UPRES_ERR_CORRUPT,
                               "ncnn: layer '%s' %s holds a non-finite value (at .bin byte %zu)",
                               L->name, what, bin->off + (fp16 ? 2 : 4) * i);
        }
    }
    bin->off += bytes;
    *out = w;
    return UPRES_OK;
short_read:
    return upres__fail(ctx, UPRES_ERR_CORRUPT,
                       "ncnn: .bin is truncated: layer '%s' needs %zu %s values at byte %zu of "
                       "%zu", L->name, n, what, bin->off, bin->size);
}

/* ------------------------------------------------------------------------ */
/* Builder state                                                             */

typedef struct nc_state {
    upres_ctx *ctx;
    nn_graph *g;
    nc_blobs blobs;
    nc_bin bin;
    int input_value; /* nn value of the Input layer, -1 before */
    double fs[32];   /* distinct "input pixels per value pixel" ratios seen */
    int nfs;         /* entries in fs; -1 once there were too many */
} nc_state;

static int fail_param(nc_state *S, const nc_layer *L, int id)
{
    return upres__fail(S->ctx, UPRES_ERR_CORRUPT,
                       "ncnn: layer '%s' (%s, line %d): parameter %d has the wrong kind of "
                       "value", L->name, L->type, L->lineno, id);
}

static int fail_unused_param(nc_state *S, const nc_layer *L, int id)
{
    return upres__fail(S->ctx, UPRES_ERR_UNSUPPORTED,
                       "ncnn: layer '%s' (%s) uses parameter %d, which is not supported",
                       L->name, L->type, id);
}

static int fail_geom(nc_state *S, const nc_layer *L, const char *what)
{
    return upres__fail(S->ctx, UPRES_ERR_CORRUPT, "ncnn: layer '%s' (%s): %s", L->name, L->type,
                       what);
}

static int fail_feature(nc_state *S, const nc_layer *L, const char *what)
{
    return upres__fail(S->ctx, UPRES_ERR_UNSUPPORTED, "ncnn: layer '%s' (%s): %s is not supported",
                       L->name, L->type, what);
}

/* A negative status from an nn builder: nn recorded its own detail in the
 * graph only, so name the layer here. */
static int fail_nn(nc_state *S, const nc_layer *L, int st)
{
    return upres__fail(S->ctx, st < 0 ? st : UPRES_ERR_CORRUPT,
                       "ncnn: layer '%s' (%s) does not fit its inputs (%s)", L->name, L->type,
                       upres_strerror(st < 0 ? st : UPRES_ERR_CORRUPT));
}

static nc_blob *in_blob(nc_state *S, const nc_layer *L, int i)
{
    return &S->blobs.b[L->in[i]];
}

/* Binds top i of L to value v with the given geometry facts. */
static void set_out(nc_state *S, const nc_layer *L, int i, int v, int spatial1, double rf,
                    double f)
{
    nc_blob *b = &S->blobs.b[L->out[i]];
    b->value = v;
    b->spatial1 = spatial1;
    b->rf = rf;
    b->f = f;
    if (spatial1 || S->nfs < 0)
        return;
    for (int i = 0; i < S->nfs; i++)
        if (fabs(S->fs[i] - f) < 1e-9 * f)
            return;
    if (S->nfs < (int)(sizeof(S->fs) / sizeof(S->fs[0])))
        S->fs[S->nfs++] = f;
    else
        S->nfs = -1;
}

/* The one output of an elementwise layer: graph value v (or, when
 * negative, the nn status to report) with src's spatial properties. */
static int out_like(nc_state *S, const nc_layer *L, const nc_blob *src, int v)
{
    if (v < 0)
        return fail_nn(S, L, v);
    set_out(S, L, 0, v, src->spatial1, src->rf, src->f);
    return UPRES_OK;
}

static int need_io(nc_state *S, const nc_layer *L, int nin_lo, int nin_hi, int nout)
{
    if (L->nin < nin_lo || L->nin > nin_hi || L->nout != nout)
        return upres__fail(S->ctx, UPRES_ERR_CORRUPT,
                           "ncnn: layer '%s' (%s) has %d inputs and %d outputs", L->name,
                           L->type, L->nin, L->nout);
    return UPRES_OK;
}

/* ncnn activation_type / activation_params -> fused nn activation. */
static int read_act(nc_state *S, nc_layer *L, nn_act *act, float *alpha)
{
    int type = p_int(L, 9, 0);
    int n = p_array_n(L, 10);
    *alpha = 0.0f;
    switch (type) {
    case 0:
        *act = NN_ACT_NONE;
        return UPRES_OK;
    case 1:
        *act = NN_ACT_RELU;
        return UPRES_OK;
    case 2:
        *act = NN_ACT_LEAKY;
        if (n >= 1)
            *alpha = L->p[10].fv[0];
        return UPRES_OK;
    case 4:
        *act = NN_ACT_SIGMOID;
        return UPRES_OK;
    default:
        return fail_feature(S, L, type == 3 ? "activation clip" :
                                  type == 5 ? "activation mish" :
                                  type == 6 ? "activation hardswish" : "this activation type");
    }
}

/* Shared by Convolution, ConvolutionDepthWise, Deconvolution, InnerProduct. */
typedef enum { K_CONV, K_DWCONV, K_DECONV, K_DENSE } nc_kind;

/* The checks every layer builder starts with: input/output counts (see
 * need_io) and the parameter ids the layer reads (`allowed`, see p_only). */
static int layer_begin(nc_state *S, nc_layer *L, int min_in, int max_in, int nout,
                       const char *allowed)
{
    int bad, st = need_io(S, L, min_in, max_in, nout);
    if (st)
        return st;
    if (!p_only(L, allowed, &bad))
        return fail_unused_param(S, L, bad);
    return UPRES_OK;
}

static int build_conv(nc_state *S, nc_layer *L, nc_kind kind)
{
    int st = need_io(S, L, 1, 1, 1);
    if (st)
        return st;
    int bad = -1;
    for (int id = 0; id < NC_MAX_PARAMS; id++) {
        if (!L->p[id].set)
            continue;
        int ok;
        switch (kind) {
        case K_DENSE:
            ok = id <= 2 || id == 8 || id == 9 || id == 10;
            break;
        case K_CONV: /* 17 = impl_type, a CPU kernel choice that changes nothing */
            ok = id <= 6 || (id >= 8 && id <= 19);
            break;
        case K_DWCONV:
            ok = id <= 19;
            break;
        default: /* 20/21 are read to refuse them with a clear message */
            ok = id <= 6 || (id >= 9 && id <= 16) || (id >= 18 && id <= 21);
            break;
        }
        if (!ok) {
            bad = id;
            break;
        }
    }
    if (bad >= 0)
        return fail_unused_param(S, L, bad);

    nc_blob *src = in_blob(S, L, 0);
    int x = src->value;
    int in_c = nn_channels(S->g, x);
    if (in_c < 0)
        return fail_nn(S, L, in_c);

    nn_conv_desc d = nn_conv_desc_defaults();
    int num_output = p_int(L, 0, 0);
    int bias_term, wsize, int8 = 0, dynamic = 0, groups = 1;
    int kw = 1, kh = 1, dw = 1, dh = 1, sw = 1, sh = 1, pl = 0, pr = 0, pt = 0, pb = 0;
    int opr = 0, opb = 0;
    float pad_value = 0.0f;
    if (kind == K_DENSE) {
        bias_term = p_int(L, 1, 0);
        wsize = p_int(L, 2, 0);
        int8 = p_int(L, 8, 0);
    } else {
        kw = p_int(L, 1, 0);
        kh = p_int(L, 11, kw);
        dw = p_int(L, 2, 1);
        dh = p_int(L, 12, dw);
        sw = p_int(L, 3, 1);
        sh = p_int(L, 13, sw);
        pl = p_int(L, 4, 0);
        pr = p_int(L, 15, pl);
        pt = p_int(L, 14, pl);
        pb = p_int(L, 16, pt);
        bias_term = p_int(L, 5, 0);
        wsize = p_int(L, 6, 0);
        if (kind == K_DECONV) {
            opr = p_int(L, 18, 0);
            opb = p_int(L, 19, opr);
            if (L->p[20].set || L->p[21].set)
                return fail_feature(S, L, "a fixed output size (20/21)");
        } else {
            int8 = p_int(L, 8, 0);
            pad_value = p_float(L, 18, 0.0f);
            dynamic = p_int(L, 19, 0);
        }
        if (kind == K_DWCONV)
            groups = p_int(L, 7, 1);
    }
    nn_act act = NN_ACT_NONE;
    float alpha = 0.0f;
    st = read_act(S, L, &act, &alpha);
    if (L->bad_id >= 0)
        return fail_param(S, L, L->bad_id);
    if (st)
        return st;
    if (int8)
        return fail_feature(S, L, "int8 quantization");
    if (dynamic)
        return fail_feature(S, L, "dynamic weights");
    if (pl == -233 || pl == -234 || pr == -233 || pr == -234 || pt == -233 || pt == -234 ||
        pb == -233 || pb == -234)
        return fail_feature(S, L, "'SAME' padding (-233/-234)");
    if (num_output < 1 || num_output > NC_MAX_CH)
        return fail_geom(S, L, "output channel count out of range");
    if (kw < 1 || kh < 1 || kw > NC_MAX_KERNEL || kh > NC_MAX_KERNEL || dw < 1 || dh < 1 ||
        dw > NC_MAX_STRIDE || dh > NC_MAX_STRIDE || sw < 1 || sh < 1 || sw > NC_MAX_STRIDE ||
        sh > NC_MAX_STRIDE)
        return fail_geom(S, L, "kernel, dilation or stride out of range");
    if (pl < 0 || pr < 0 || pt < 0 || pb < 0 || pl > NC_MAX_PAD || pr > NC_MAX_PAD ||
        pt > NC_MAX_PAD || pb > NC_MAX_PAD || opr < 0 || opb < 0 || opr > NC_MAX_PAD ||
        opb > NC_MAX_PAD)
        return fail_geom(S, L, "padding out of range");
    if (bias_term != 0 && bias_term != 1)
        return fail_geom(S, L, "bias_term is not 0 or 1");
    if (groups < 1 || in_c % groups != 0 || num_output % groups != 0)
        return fail_geom(S, L, "group count does not divide the channels");
    if (kind == K_DENSE && !src->spatial1)
        return fail_feature(S, L, "InnerProduct on a feature map (only on pooled 1x1 values)");

    /* The declared weight size must be exactly what the geometry implies. */
    uint64_t expect = (uint64_t)num_output * (uint64_t)(in_c / groups) * (uint64_t)kh *
                      (uint64_t)kw;
    if (wsize <= 0 || (uint64_t)wsize != expect)
        return upres__fail(S->ctx, UPRES_ERR_CORRUPT,
                           "ncnn: layer '%s' (%s): weight_data_size %d does not match %d "
                           "outputs x %d inputs x %dx%d kernel",
                           L->name, L->type, wsize, num_output, in_c / groups, kh, kw);

    float *w = NULL, *bias = NULL, *wt = NULL;
    st = bin_read(S->ctx, &S->bin, L, "weights", (size_t)wsize, 1, &w);
    if (!st && bias_term)
        st = bin_read(S->ctx, &S->bin, L, "bias", (size_t)num_output, 0, &bias);
    if (st)
        goto done;

    d.out_c = num_output;
    d.kh = kh;
    d.kw = kw;
    d.stride_h = sh;
    d.stride_w = sw;
    d.dil_h = dh;
    d.dil_w = dw;
    d.groups = groups;
    d.act = act;
    d.act_alpha = alpha;
    double rf = src->rf, f = src->f;
    int v;
    if (kind == K_DECONV) {
        /* ncnn stores deconvolution weights [out][in][kh][kw]; nn (as PyTorch)
         * wants [in][out][kh][kw]. Same taps, no flip. */
        size_t k2 = (size_t)kh * (size_t)kw;
        wt = malloc((size_t)wsize * sizeof(float));
        if (!wt) {
            st = upres__fail(S->ctx, UPRES_ERR_NOMEM, "ncnn: out of memory");
            goto done;
        }
        for (int o = 0; o < num_output; o++)
            for (int i = 0; i < in_c; i++)
                memcpy(wt + ((size_t)i * (size_t)num_output + (size_t)o) * k2,
                       w + ((size_t)o * (size_t)in_c + (size_t)i) * k2, k2 * sizeof(float));
        d.pad_t = pt;
        d.pad_b = pb;
        d.pad_l = pl;
        d.pad_r = pr;
        d.out_pad_h = opb;
        d.out_pad_w = opr;
        v = nn_deconv2d(S->g, x, &d, wt, bias);
        f /= (double)(sh > sw ? sh : sw);
        rf += f * (double)((kh > kw ? kh - 1 : kw - 1) * (dh > dw ? dh : dw)) / 2.0;
    } else {
        if (pad_value != 0.0f && (pl | pr | pt | pb)) {
            /* nn convolutions pad with zeros; pad explicitly for other values. */
            x = nn_pad(S->g, x, pt, pl, pb, pr, NN_PAD_ZERO, pad_value);
            if (x < 0) {
                st = fail_nn(S, L, x);
                goto done;
            }
        } else {
            d.pad_t = pt;
            d.pad_b = pb;
            d.pad_l = pl;
            d.pad_r = pr;
        }
        v = nn_conv2d(S->g, x, &d, w, bias);
        rf += f * (double)((kh > kw ? kh - 1 : kw - 1) * (dh > dw ? dh : dw)) / 2.0;
        f *= (double)(sh > sw ? sh : sw);
    }
    if (v < 0) {
        st = fail_nn(S, L, v);
        goto done;
    }
    set_out(S, L, 0, v, src->spatial1, rf, f);
done:
    free(w);
    free(bias);
    free(wt);
    return st;
}

static int build_prelu(nc_state *S, nc_layer *L)
{
    int st = layer_begin(S, L, 1, 1, 1, "0");
    if (st)
        return st;
    nc_blob *src = in_blob(S, L, 0);
    int c = nn_channels(S->g, src->value);
    int n = p_int(L, 0, 0);
    if (L->bad_id >= 0)
        return fail_param(S, L, L->bad_id);
    if (c < 0)
        return fail_nn(S, L, c);
    if (n != 1 && n != c)
        return fail_geom(S, L, "slope count is neither 1 nor the channel count");
    float *slopes;
    st = bin_read(S->ctx, &S->bin, L, "slopes", (size_t)n, 0, &slopes);
    if (st)
        return st;
    int v = nn_prelu(S->g, src->value, slopes, n);
    free(slopes);
    return out_like(S, L, src, v);
}

static int build_relu(nc_state *S, nc_layer *L)
{
    int st = layer_begin(S, L, 1, 1, 1, "0");
    if (st)
        return st;
    float slope = p_float(L, 0, 0.0f);
    if (L->bad_id >= 0)
        return fail_param(S, L, L->bad_id);
    nc_blob *src = in_blob(S, L, 0);
    int v = slope == 0.0f ? nn_relu(S->g, src->value) : nn_leaky_relu(S->g, src->value, slope);
    return out_like(S, L, src, v);
}

static int build_sigmoid(nc_state *S, nc_layer *L)
{
    int st = layer_begin(S, L, 1, 1, 1, "");
    if (st)
        return st;
    nc_blob *src = in_blob(S, L, 0);
    int v = nn_sigmoid(S->g, src->value);
    return out_like(S, L, src, v);
}

/* Receptive field of a value combining a and b: a pooled (1x1) operand is
 * global context, not local, so only feature maps count. */
static void merge_geom(const nc_blob *a, const nc_blob *b, int *s1, double *rf, double *f)
{
    *s1 = a->spatial1 && b->spatial1;
    if (a->spatial1 && !b->spatial1) {
        *rf = b->rf;
        *f = b->f;
    } else if (b->spatial1 && !a->spatial1) {
        *rf = a->rf;
        *f = a->f;
    } else {
        *rf = a->rf > b->rf ? a->rf : b->rf;
        *f = a->f < b->f ? a->f : b->f;
    }
}

static int build_binaryop(nc_state *S, nc_layer *L)
{
    int st = layer_begin(S, L, 1, 2, 1, "012");
    if (st)
        return st;
    int op = p_int(L, 0, 0);
    int with_scalar = p_int(L, 1, 0);
    float b = p_float(L, 2, 0.0f);
    if (L->bad_id >= 0)
        return fail_param(S, L, L->bad_id);
    if (with_scalar != 0 && with_scalar != 1)
        return fail_geom(S, L, "with_scalar is not 0 or 1");
    if ((with_scalar && L->nin != 1) || (!with_scalar && L->nin != 2))
        return fail_geom(S, L, "input count does not match with_scalar");
    static const char *const names[] = {"add", "sub", "mul", "div", "max", "min",
                                        "pow", "rsub", "rdiv", "rpow", "atan2", "ratan2"};
    nc_blob *x = in_blob(S, L, 0);
    int v;
    if (with_scalar) {
        switch (op) {
        case 0: v = nn_affine(S->g, x->value, 1.0f, b); break;
        case 1: v = nn_affine(S->g, x->value, 1.0f, -b); break;
        case 2: v = nn_affine(S->g, x->value, b, 0.0f); break;
        case 3:
            if (b == 0.0f)
                return fail_geom(S, L, "division by a zero scalar");
            v = nn_affine(S->g, x->value, 1.0f / b, 0.0f);
            break;
        case 7: v = nn_affine(S->g, x->value, -1.0f, b); break;
        default: goto unsupported;
        }
        return out_like(S, L, x, v);
    }
    nc_blob *y = in_blob(S, L, 1);
    switch (op) {
    case 0: v = nn_binary(S->g, NN_ADD, x->value, y->value); break;
    case 1: v = nn_binary(S->g, NN_SUB, x->value, y->value); break;
    case 2: v = nn_binary(S->g, NN_MUL, x->value, y->value); break;
    case 3: v = nn_binary(S->g, NN_DIV, x->value, y->value); break;
    case 7: v = nn_binary(S->g, NN_SUB, y->value, x->value); break;
    case 8: v = nn_binary(S->g, NN_DIV, y->value, x->value); break;
    default: goto unsupported;
    }
    if (v < 0)
        return fail_nn(S, L, v);
    int s1;
    double rf, f;
    merge_geom(x, y, &s1, &rf, &f);
    set_out(S, L, 0, v, s1, rf, f);
    return UPRES_OK;
unsupported:
    return upres__fail(S->ctx, UPRES_ERR_UNSUPPORTED,
                       "ncnn: layer '%s' (BinaryOp): operation %s%s is not supported", L->name,
                       op >= 0 && op < 12 ? names[op] : "(unknown)",
                       with_scalar ? " with a scalar" : "");
}

static int build_eltwise(nc_state *S, nc_layer *L)
{
    int st = layer_begin(S, L, 2, NC_MAX_IO, 1, "01");
    if (st)
        return st;
    int op = p_int(L, 0, 0);
    int ncoef = p_array_n(L, 1);
    if (L->bad_id >= 0)
        return fail_param(S, L, L->bad_id);
    if (op != 0 && op != 1)
        return fail_feature(S, L, op == 2 ? "Eltwise max" : "this Eltwise operation");
    if (ncoef != 0 && (op != 1 || ncoef != L->nin))
        return fail_geom(S, L, "coefficient count does not match the inputs");
    int acc = -1, s1 = 1;
    double rf = 0.0, f = 1e30;
    for (int i = 0; i < L->nin; i++) {
        nc_blob *x = in_blob(S, L, i);
        int v = x->value;
        if (ncoef && L->p[1].fv[i] != 1.0f) {
            v = nn_affine(S->g, v, L->p[1].fv[i], 0.0f);
            if (v < 0)
                return fail_nn(S, L, v);
        }
        if (acc < 0) {
            acc = v;
        } else {
            acc = nn_binary(S->g, op == 1 ? NN_ADD : NN_MUL, acc, v);
            if (acc < 0)
                return fail_nn(S, L, acc);
        }
        if (!x->spatial1) {
            s1 = 0;
            rf = rf > x->rf ? rf : x->rf;
            f = f < x->f ? f : x->f;
        }
    }
    if (s1) {
        rf = in_blob(S, L, 0)->rf;
        f = in_blob(S, L, 0)->f;
    }
    set_out(S, L, 0, acc, s1, rf, f);
    return UPRES_OK;
}

static int build_scale(nc_state *S, nc_layer *L)
{
    int st = layer_begin(S, L, 1, 2, 1, "01");
    if (st)
        return st;
    int n = p_int(L, 0, 0);
    int bias_term = p_int(L, 1, 0);
    if (L->bad_id >= 0)
        return fail_param(S, L, L->bad_id);
    nc_blob *x = in_blob(S, L, 0);
    int v;
    if (n == -233) {
        /* The scale comes from a second input (the SE branch of cunet). */
        if (L->nin != 2)
            return fail_geom(S, L, "scale from a blob needs two inputs");
        if (bias_term)
            return fail_feature(S, L, "a bias with a blob scale");
        nc_blob *y = in_blob(S, L, 1);
        v = nn_binary(S->g, NN_MUL, x->value, y->value);
        if (v < 0)
            return fail_nn(S, L, v);
        int s1;
        double rf, f;
        merge_geom(x, y, &s1, &rf, &f);
        set_out(S, L, 0, v, s1, rf, f);
        return UPRES_OK;
    }
    if (L->nin != 1)
        return fail_geom(S, L, "a stored scale takes one input");
    int c = nn_channels(S->g, x->value);
    if (c < 0)
        return fail_nn(S, L, c);
    if (n != c)
        return fail_geom(S, L, "scale_data_size differs from the channel count");
    if (bias_term != 0 && bias_term != 1)
        return fail_geom(S, L, "bias_term is not 0 or 1");
    float *scale = NULL, *bias = NULL;
    st = bin_read(S->ctx, &S->bin, L, "scales", (size_t)n, 0, &scale);
    if (!st && bias_term)
        st = bin_read(S->ctx, &S->bin, L, "bias", (size_t)n, 0, &bias);
    if (!st) {
        st = out_like(S, L, x, nn_channel_affine(S->g, x->value, scale, bias));
    }
    free(scale);
    free(bias);
    return st;
}

/* ncnn numpy-style slicing: axis 0 is channels, 1 height, 2 width (negative
 * axes count from the end of 3 dims). Only crops whose amounts do not depend
 * on the input size can be built: start >= 0 and end <= 0 (from the end), or
 * an open end. */
static int crop_slice(nc_state *S, nc_layer *L, int *t, int *l, int *b, int *r)
{
    int ns = p_array_n(L, 9), ne = p_array_n(L, 10), na = p_array_n(L, 11);
    if (L->bad_id >= 0)
        return fail_param(S, L, L->bad_id);
    if (ns != ne || (na != 0 && na != ns) || ns < 1 || ns > 3)
        return fail_geom(S, L, "starts/ends/axes counts differ");
    int done[3] = {0, 0, 0};
    for (int i = 0; i < ns; i++) {
        int axis = na ? p_array_int(L, 11, i) : i;
        int start = p_array_int(L, 9, i), end = p_array_int(L, 10, i);
        if (L->bad_id >= 0)
            return fail_param(S, L, L->bad_id);
        if (axis < 0)
            axis += 3;
        if (axis < 0 || axis > 2 || done[axis])
            return fail_geom(S, L, "bad or repeated crop axis");
        done[axis] = 1;
        if (start == -233)
            start = 0;
        int open_end = end == -233 || end == 0 || end >= 1 << 30;
        if (start < 0 || start > NC_MAX_SIDE || (!open_end && (end > 0 || end < -NC_MAX_SIDE)))
            return fail_feature(S, L, "a crop whose size depends on the input size");
        int from_end = open_end ? 0 : -end;
        if (axis == 0) {
            if (start != 0 || from_end != 0)
                return fail_feature(S, L, "a channel crop");
        } else if (axis == 1) {
            *t = start;
            *b = from_end;
        } else {
            *l = start;
            *r = from_end;
        }
    }
    return UPRES_OK;
}

static int build_crop(nc_state *S, nc_layer *L)
{
    int bad, st = need_io(S, L, 1, 2, 1);
    if (st)
        return st;
    nc_blob *x = in_blob(S, L, 0);
    if (x->spatial1)
        return fail_feature(S, L, "Crop of a pooled vector");
    int v;
    if (L->p[9].set || L->p[10].set) {
        if (!p_only(L, "9ab", &bad))
            return fail_unused_param(S, L, bad);
        if (L->nin != 1)
            return fail_geom(S, L, "a slice crop takes one input");
        int t = 0, l = 0, b = 0, r = 0;
        st = crop_slice(S, L, &t, &l, &b, &r);
        if (st)
            return st;
        v = nn_crop(S->g, x->value, t, l, b, r);
    } else {
        if (!p_only(L, "012345678", &bad))
            return fail_unused_param(S, L, bad);
        int woff = p_int(L, 0, 0), hoff = p_int(L, 1, 0), coff = p_int(L, 2, 0);
        int outw = p_int(L, 3, 0), outh = p_int(L, 4, 0), outc = p_int(L, 5, 0);
        int woff2 = p_int(L, 6, 0), hoff2 = p_int(L, 7, 0), coff2 = p_int(L, 8, 0);
        if (L->bad_id >= 0)
            return fail_param(S, L, L->bad_id);
        if (coff != 0 || coff2 != 0 || (outc != 0 && outc != -233))
            return fail_feature(S, L, "a channel crop");
        if (woff < 0 || hoff < 0 || woff > NC_MAX_SIDE || hoff > NC_MAX_SIDE)
            return fail_feature(S, L, "a dynamic or negative crop offset");
        if (L->nin == 2) {
            /* Crop to the size of the reference blob. */
            nc_blob *ref = in_blob(S, L, 1);
            if (ref->spatial1)
                return fail_feature(S, L, "Crop to a pooled vector");
            int cx = nn_channels(S->g, x->value), cr = nn_channels(S->g, ref->value);
            if (cx < 0 || cr < 0)
                return fail_nn(S, L, cx < 0 ? cx : cr);
            if (cr != cx)
                return fail_feature(S, L, "a channel crop to the reference");
            v = nn_crop_like(S->g, x->value, ref->value, hoff, woff);
        } else {
            if ((outw != 0 && outw != -233) || (outh != 0 && outh != -233))
                return fail_feature(S, L, "a crop to a fixed output size");
            if (woff2 < 0 || hoff2 < 0 || woff2 > NC_MAX_SIDE || hoff2 > NC_MAX_SIDE)
                return fail_geom(S, L, "negative crop amount");
            v = nn_crop(S->g, x->value, hoff, woff, hoff2, woff2);
        }
    }
    if (v < 0)
        return fail_nn(S, L, v);
    set_out(S, L, 0, v, 0, x->rf, x->f);
    return UPRES_OK;
}

static int build_interp(nc_state *S, nc_layer *L)
{
    int bad, st = need_io(S, L, 1, 2, 1);
    if (st)
        return st;
    if (L->nin != 1)
        return fail_feature(S, L, "Interp to the size of another blob");
    if (!p_only(L, "0123456", &bad))
        return fail_unused_param(S, L, bad);
    int type = p_int(L, 0, 0);
    float hs = p_float(L, 1, 1.0f), ws = p_float(L, 2, 1.0f);
    int oh = p_int(L, 3, 0), ow = p_int(L, 4, 0);
    int dyn = p_int(L, 5, 0), align = p_int(L, 6, 0);
    if (L->bad_id >= 0)
        return fail_param(S, L, L->bad_id);
    nc_blob *x = in_blob(S, L, 0);
    if (x->spatial1)
        return fail_feature(S, L, "Interp of a pooled vector");
    if (dyn)
        return fail_feature(S, L, "dynamic target size");
    nn_interp_mode mode;
    double taps;
    switch (type) {
    case 1: mode = NN_INTERP_NEAREST; taps = 0.5; break;
    case 2: mode = NN_INTERP_BILINEAR; taps = 1.0; break;
    case 3: mode = NN_INTERP_BICUBIC; taps = 2.0; break;
    default: return fail_feature(S, L, "this resize_type");
    }
    if (align != 0 && align != 1)
        return fail_geom(S, L, "align_corner is not 0 or 1");
    if ((oh == 0) != (ow == 0) || oh < 0 || ow < 0 || oh > NC_MAX_SIDE || ow > NC_MAX_SIDE)
        return fail_geom(S, L, "output size out of range");
    double f = x->f;
    if (oh == 0) {
        if (!(hs > 0.0f && ws > 0.0f && hs <= NC_MAX_INTERP_SCALE && ws <= NC_MAX_INTERP_SCALE &&
              hs >= 1.0f / NC_MAX_INTERP_SCALE && ws >= 1.0f / NC_MAX_INTERP_SCALE))
            return fail_geom(S, L, "scale out of range");
        f /= (double)(hs > ws ? hs : ws);
    } else {
        hs = ws = 0.0f;
    }
    int v = nn_interp(S->g, x->value, mode, hs, ws, oh, ow, align);
    if (v < 0)
        return fail_nn(S, L, v);
    set_out(S, L, 0, v, 0, x->rf + x->f * taps, f);
    return UPRES_OK;
}

static int build_pixelshuffle(nc_state *S, nc_layer *L)
{
    int st = layer_begin(S, L, 1, 1, 1, "01");
    if (st)
        return st;
    int r = p_int(L, 0, 1), mode = p_int(L, 1, 0);
    if (L->bad_id >= 0)
        return fail_param(S, L, L->bad_id);
    if (mode != 0)
        return fail_feature(S, L, "PixelShuffle mode 1");
    if (r < 1 || r > 16)
        return fail_geom(S, L, "upscale_factor out of range");
    nc_blob *x = in_blob(S, L, 0);
    int v = nn_pixel_shuffle(S->g, x->value, r);
    if (v < 0)
        return fail_nn(S, L, v);
    set_out(S, L, 0, v, 0, x->rf, x->f / r);
    return UPRES_OK;
}

static int build_pooling(nc_state *S, nc_layer *L)
{
    int st = layer_begin(S, L, 1, 1, 1, "0123456789abcde");
    if (st)
        return st;
    int type = p_int(L, 0, 0), global = p_int(L, 4, 0);
    if (L->bad_id >= 0)
        return fail_param(S, L, L->bad_id);
    if (type != 1 || global != 1)
        return fail_feature(S, L, "pooling other than global average");
    nc_blob *x = in_blob(S, L, 0);
    int v = nn_global_avg_pool(S->g, x->value);
    if (v < 0)
        return fail_nn(S, L, v);
    set_out(S, L, 0, v, 1, x->rf, x->f);
    return UPRES_OK;
}

static int build_padding(nc_state *S, nc_layer *L)
{
    int st = layer_begin(S, L, 1, 1, 1, "012345678");
    if (st)
        return st;
    int t = p_int(L, 0, 0), b = p_int(L, 1, 0), l = p_int(L, 2, 0), r = p_int(L, 3, 0);
    int type = p_int(L, 4, 0);
    float value = p_float(L, 5, 0.0f);
    int per_ch = p_int(L, 6, 0), front = p_int(L, 7, 0), behind = p_int(L, 8, 0);
    if (L->bad_id >= 0)
        return fail_param(S, L, L->bad_id);
    if (per_ch || front || behind)
        return fail_feature(S, L, "channel or per-channel padding");
    if (t < 0 || b < 0 || l < 0 || r < 0 || t > NC_MAX_PAD || b > NC_MAX_PAD || l > NC_MAX_PAD ||
        r > NC_MAX_PAD)
        return fail_geom(S, L, "padding out of range");
    nn_pad_mode mode = type == 0 ? NN_PAD_ZERO : type == 1 ? NN_PAD_REPLICATE : NN_PAD_REFLECT;
    if (type < 0 || type > 2)
        return fail_feature(S, L, "this padding type");
    nc_blob *x = in_blob(S, L, 0);
    if (x->spatial1)
        return fail_feature(S, L, "Padding of a pooled vector");
    int v = nn_pad(S->g, x->value, t, l, b, r, mode, value);
    if (v < 0)
        return fail_nn(S, L, v);
    set_out(S, L, 0, v, 0, x->rf, x->f);
    return UPRES_OK;
}

static int build_concat(nc_state *S, nc_layer *L)
{
    int st = layer_begin(S, L, 1, NC_MAX_IO, 1, "0");
    if (st)
        return st;
    int axis = p_int(L, 0, 0);
    if (L->bad_id >= 0)
        return fail_param(S, L, L->bad_id);
    if (axis != 0 && axis != -3)
        return fail_feature(S, L, "concatenation along a spatial axis");
    int xs[NC_MAX_IO];
    double rf = 0.0, f = 1e30;
    int s1 = 1;
    for (int i = 0; i < L->nin; i++) {
        nc_blob *x = in_blob(S, L, i);
        xs[i] = x->value;
        s1 &= x->spatial1;
        rf = rf > x->rf ? rf : x->rf;
        f = f < x->f ? f : x->f;
    }
    int v = nn_concat(S->g, L->nin, xs);
    if (v < 0)
        return fail_nn(S, L, v);
    set_out(S, L, 0, v, s1, rf, f);
    return UPRES_OK;
}

static int build_input(nc_state *S, nc_layer *L)
{
    int st = layer_begin(S, L, 0, 0, 1, "0123");
    if (st)
        return st;
    int c = p_int(L, 2, 3);
    if (L->bad_id >= 0)
        return fail_param(S, L, L->bad_id);
    if (S->input_value >= 0)
        return fail_feature(S, L, "a second Input");
    if (c != 1 && c != 3)
        return fail_feature(S, L, "an input that is neither RGB nor gray");
    int v = nn_input(S->g, c);
    if (v < 0)
        return fail_nn(S, L, v);
    S->input_value = v;
    set_out(S, L, 0, v, 0, 0.0, 1.0);
    return UPRES_OK;
}

static int build_split(nc_state *S, nc_layer *L)
{
    int bad;
    if (L->nin != 1 || L->nout < 1)
        return need_io(S, L, 1, 1, 1);
    if (!p_only(L, "", &bad))
        return fail_unused_param(S, L, bad);
    nc_blob *x = in_blob(S, L, 0);
    for (int i = 0; i < L->nout; i++)
        set_out(S, L, i, x->value, x->spatial1, x->rf, x->f);
    return UPRES_OK;
}

static int build_dropout(nc_state *S, nc_layer *L)
{
    int st = layer_begin(S, L, 1, 1, 1, "0");
    if (st)
        return st;
    float scale = p_float(L, 0, 1.0f);
    if (L->bad_id >= 0)
        return fail_param(S, L, L->bad_id);
    nc_blob *x = in_blob(S, L, 0);
    int v = x->value;
    if (scale != 1.0f)
        v = nn_affine(S->g, v, scale, 0.0f);
    return out_like(S, L, x, v);
}

typedef int (*nc_build_fn)(nc_state *S, nc_layer *L);

static int build_conv_plain(nc_state *S, nc_layer *L) { return build_conv(S, L, K_CONV); }
static int build_conv_dw(nc_state *S, nc_layer *L) { return build_conv(S, L, K_DWCONV); }
static int build_deconv(nc_state *S, nc_layer *L) { return build_conv(S, L, K_DECONV); }
static int build_dense(nc_state *S, nc_layer *L) { return build_conv(S, L, K_DENSE); }

static const struct {
    const char *type;
    nc_build_fn fn;
} nc_types[] = {
    {"Input", build_input},
    {"Split", build_split},
    {"Convolution", build_conv_plain},
    {"ConvolutionDepthWise", build_conv_dw},
    {"Deconvolution", build_deconv},
    {"InnerProduct", build_dense},
    {"PReLU", build_prelu},
    {"ReLU", build_relu},
    {"Sigmoid", build_sigmoid},
    {"BinaryOp", build_binaryop},
    {"Eltwise", build_eltwise},
    {"Scale", build_scale},
    {"Crop", build_crop},
    {"Interp", build_interp},
    {"PixelShuffle", build_pixelshuffle},
    {"Pooling", build_pooling},
    {"Padding", build_padding},
    {"Concat", build_concat},
    {"Dropout", build_dropout},
};

/* ------------------------------------------------------------------------ */
/* .param text                                                               */

typedef struct nc_text {
    const char *p, *end;
    int lineno;
} nc_text;

/* Next non-blank line as [*s, *e) with trailing CR/space trimmed; 0 at the
 * end of the text. */
static int next_line(nc_text *t, const char **s, const char **e)
{
    while (t->p < t->end) {
        const char *ls = t->p;
        const char *nl = memchr(ls, '\n', (size_t)(t->end - ls));
        const char *le = nl ? nl : t->end;
        t->p = nl ? nl + 1 : t->end;
        t->lineno++;
        while (le > ls && (le[-1] == '\r' || le[-1] == ' ' || le[-1] == '\t'))
            le--;
        while (ls < le && (*ls == ' ' || *ls == '\t'))
            ls++;
        if (ls < le) {
            *s = ls;
            *e = le;
            return 1;
        }
    }
    return 0;
}

/* Next token of [*s, e): 1 and [*ts, *te) when there is one. */
static int next_tok(const char **s, const char *e, const char **ts, const char **te)
{
    const char *p = *s;
    while (p < e && (*p == ' ' || *p == '\t'))
        p++;
    if (p >= e)
        return 0;
    *ts = p;
    while (p < e && *p != ' ' && *p != '\t')
        p++;
    *te = p;
    *s = p;
    return 1;
}

static int tok_name(const char *ts, const char *te, char *out)
{
    size_t n = (size_t)(te - ts);
    if (n == 0 || n > NC_MAX_NAME || memchr(ts, '\0', n))
        return -1;
    memcpy(out, ts, n);
    out[n] = '\0';
    return 0;
}

/* Parses "id=value" into L->p. */
static int parse_param(nc_state *S, nc_layer *L, const char *ts, const char *te)
{
    const char *eq = memchr(ts, '=', (size_t)(te - ts));
    int id;
    if (!eq || parse_int(ts, eq, &id) != 0)
        goto bad;
    int is_array = 0;
    if (id <= -23300) {
        is_array = 1;
        id = -(id + 23300); /* not -id - 23300: -INT_MIN overflows */
    }
    if (id < 0 || id >= NC_MAX_PARAMS)
        return upres__fail(S->ctx, UPRES_ERR_CORRUPT,
                           "ncnn: line %d (layer '%s'): parameter id %.*s out of range",
                           L->lineno, L->name, (int)(eq - ts), ts);
    nc_param *p = &L->p[id];
    if (p->set)
        return upres__fail(S->ctx, UPRES_ERR_CORRUPT,
                           "ncnn: line %d (layer '%s'): parameter %d given twice", L->lineno,
                           L->name, id);
    p->set = 1;
    p->is_array = is_array;
    const char *v = eq + 1;
    if (!is_array) {
        p->n = 1;
        p->is_float[0] = has_float_syntax(v, te);
        if (p->is_float[0]) {
            if (parse_float(v, te, &p->fv[0]) != 0)
                goto bad;
            p->iv[0] = 0;
        } else {
            if (parse_int(v, te, &p->iv[0]) != 0)
                goto bad;
            p->fv[0] = (float)p->iv[0];
        }
        return UPRES_OK;
    }
    const char *comma = memchr(v, ',', (size_t)(te - v));
    int count;
    if (parse_int(v, comma ? comma : te, &count) != 0 || count < 0)
        goto bad;
    if (count > NC_MAX_ARRAY)
        return upres__fail(S->ctx, UPRES_ERR_UNSUPPORTED,
                           "ncnn: line %d (layer '%s'): array parameter %d has %d elements "
                           "(at most %d supported)", L->lineno, L->name, id, count, NC_MAX_ARRAY);
    const char *q = comma ? comma + 1 : te;
    int got = 0;
    if (comma) {
        while (1) {
            const char *c = memchr(q, ',', (size_t)(te - q));
            const char *ve = c ? c : te;
            if (got >= count)
                goto count_mismatch;
            p->is_float[got] = has_float_syntax(q, ve);
            if (p->is_float[got]) {
                if (parse_float(q, ve, &p->fv[got]) != 0)
                    goto bad;
                p->iv[got] = 0;
            } else {
                if (parse_int(q, ve, &p->iv[got]) != 0)
                    goto bad;
                p->fv[got] = (float)p->iv[got];
            }
            got++;
            if (!c)
                break;
            q = c + 1;
        }
    }
    if (got != count)
        goto count_mismatch;
    p->n = count;
    return UPRES_OK;
count_mismatch:
    return upres__fail(S->ctx, UPRES_ERR_CORRUPT,
                       "ncnn: line %d (layer '%s'): array parameter %d does not hold the %d "
                       "values it declares", L->lineno, L->name, id, count);
bad:
    return upres__fail(S->ctx, UPRES_ERR_CORRUPT,
                       "ncnn: line %d (layer '%s'): bad parameter '%.*s'",
                       L->lineno, L->name, (int)(te - ts > 60 ? 60 : te - ts), ts);
}

/* Parses one layer line into L (blob names resolved; tops created). */
static int parse_layer(nc_state *S, nc_layer *L, const char *s, const char *e, nc_build_fn *fn)
{
    const char *ts, *te;
    char buf[NC_MAX_NAME + 1];
    int st;
    /* Only the flags: values are written whenever a parameter is set, and
     * clearing all ~100 KB of value slots per line would dominate. */
    for (int i = 0; i < NC_MAX_PARAMS; i++)
        L->p[i].set = 0;
    L->bad_id = -1;
    L->name[0] = '\0';
    if (!next_tok(&s, e, &ts, &te) || tok_name(ts, te, L->type) != 0)
        goto syntax;
    if (!next_tok(&s, e, &ts, &te) || tok_name(ts, te, L->name) != 0)
        goto syntax;
    *fn = NULL;
    for (size_t i = 0; i < sizeof(nc_types) / sizeof(nc_types[0]); i++)
        if (strcmp(nc_types[i].type, L->type) == 0)
            *fn = nc_types[i].fn;
    if (!*fn)
        return upres__fail(S->ctx, UPRES_ERR_UNSUPPORTED,
                           "ncnn: layer type %s (layer '%s') is not supported", L->type, L->name);
    if (!next_tok(&s, e, &ts, &te) || parse_int(ts, te, &L->nin) != 0 ||
        !next_tok(&s, e, &ts, &te) || parse_int(ts, te, &L->nout) != 0)
        goto syntax;
    if (L->nin < 0 || L->nout < 0 || L->nin > NC_MAX_IO || L->nout > NC_MAX_IO)
        return upres__fail(S->ctx, UPRES_ERR_CORRUPT,
                           "ncnn: line %d: layer '%s' declares %d inputs and %d outputs",
                           L->lineno, L->name, L->nin, L->nout);
    for (int i = 0; i < L->nin; i++) {
        if (!next_tok(&s, e, &ts, &te) || tok_name(ts, te, buf) != 0)
            goto syntax;
        int b = blobs_find(&S->blobs, buf);
        if (b < 0 || S->blobs.b[b].value < 0)
            return upres__fail(S->ctx, UPRES_ERR_CORRUPT,
                               "ncnn: line %d: layer '%s' reads blob '%s', which no earlier "
                               "layer produces", L->lineno, L->name, buf);
        S->blobs.b[b].consumed = 1;
        L->in[i] = b;
    }
    for (int i = 0; i < L->nout; i++) {
        if (!next_tok(&s, e, &ts, &te) || tok_name(ts, te, buf) != 0)
            goto syntax;
        if (blobs_find(&S->blobs, buf) >= 0)
            return upres__fail(S->ctx, UPRES_ERR_CORRUPT,
                               "ncnn: line %d: blob '%s' is produced twice (layer '%s')",
                               L->lineno, buf, L->name);
        int b = blobs_add(&S->blobs, buf);
        if (b == -2)
            return upres__fail(S->ctx, UPRES_ERR_NOMEM, "ncnn: out of memory");
        if (b < 0)
            return upres__fail(S->ctx, UPRES_ERR_CORRUPT,
                               "ncnn: line %d: more blobs than the %d declared", L->lineno,
                               S->blobs.cap);
        L->out[i] = b;
    }
    while (next_tok(&s, e, &ts, &te)) {
        st = parse_param(S, L, ts, te);
        if (st)
            return st;
    }
    return UPRES_OK;
syntax:
    return upres__fail(S->ctx, UPRES_ERR_CORRUPT, "ncnn: line %d: malformed layer line%s%s%s",
                       L->lineno, L->name[0] ? " (layer '" : "", L->name,
                       L->name[0] ? "')" : "");
}

/* ------------------------------------------------------------------------ */
/* Host-side settings                                                        */

typedef enum {
    FAM_GENERIC = 0,
    FAM_CUGAN_SE,
    FAM_CUGAN_PRO,
    FAM_CUGAN_NOSE,
    FAM_W2X_CUNET,
    FAM_W2X_UPCONV7
} nc_family;

/* The model family from the folder name (the last component of `dir`);
 * these folder names are the ones the realcugan/waifu2x tools ship and key
 * their own host-side handling on. */
static nc_family family_of(const char *dir)
{
    if (!dir)
        return FAM_GENERIC;
    const char *base = dir;
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    for (size_t i = 0; i < n; i++)
        if (dir[i] == '/' && i + 1 < n)
            base = dir + i + 1;
    size_t bn = (size_t)(dir + n - base);
#define NC_IS(lit) (bn == sizeof(lit) - 1 && memcmp(base, lit, bn) == 0)
#define NC_PREFIX(lit) (bn >= sizeof(lit) - 1 && memcmp(base, lit, sizeof(lit) - 1) == 0)
    if (NC_IS("models-se"))
        return FAM_CUGAN_SE;
    if (NC_IS("models-pro"))
        return FAM_CUGAN_PRO;
    if (NC_IS("models-nose"))
        return FAM_CUGAN_NOSE;
    if (NC_PREFIX("models-cunet"))
        return FAM_W2X_CUNET;
    if (NC_PREFIX("models-upconv_7"))
        return FAM_W2X_UPCONV7;
#undef NC_IS
#undef NC_PREFIX
    return FAM_GENERIC;
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static int round_up(int v, int a)
{
    return (v + a - 1) / a * a;
}

/* Output size of the graph for an n x n input, or -1 when it cannot take it.
 * A size that does not fit is an expected answer here, not an error: the
 * detail nn records for it is dropped so that it cannot mask ours. */
static int probe(nc_state *S, int n, int *out_h, int *out_w)
{
    int oh = 0, ow = 0;
    if (nn_graph_out_size(S->g, S->ctx, n, n, &oh, &ow) != UPRES_OK) {
        upres__clear_error(S->ctx);
        return -1;
    }
    *out_h = oh;
    *out_w = ow;
    return 0;
}

/* Fills m's host settings from the family and from probing the built graph:
 * the scale and the border the graph consumes come from output sizes, the
 * family only supplies what is not in the graph (pad mode, input mapping,
 * the exact alignment the reference tools use). */
static int host_settings(nc_state *S, nc_family fam, double out_rf, struct upres_model *m)
{
    upres_ctx *ctx = S->ctx;
    /* Two sizes, multiples of every alignment we use, large enough for the
     * borders these graphs consume. */
    const int n1 = 192, n2 = 256;
    int h1, w1, h2, w2;
    if (probe(S, n1, &h1, &w1) != 0 || probe(S, n2, &h2, &w2) != 0)
        return upres__fail(ctx, UPRES_ERR_UNSUPPORTED,
                           "ncnn: the graph cannot run on %dx%d or %dx%d inputs", n1, n1, n2, n2);
    if (h1 != w1 || h2 != w2 || (h2 - h1) % (n2 - n1) != 0 || h2 <= h1)
        return upres__fail(ctx, UPRES_ERR_UNSUPPORTED,
                           "ncnn: the output size is not an integer multiple of the input size "
                           "(%d -> %dx%d, %d -> %dx%d)", n1, h1, w1, n2, h2, w2);
    int s = (h2 - h1) / (n2 - n1);
    int shrink = s * n1 - h1; /* output pixels the graph consumes in all */
    if (s < 1 || s > 16 || shrink < 0 || shrink % 2 != 0)
        return upres__fail(ctx, UPRES_ERR_UNSUPPORTED,
                           "ncnn: unsupported geometry: scale %d with %d output pixels consumed",
                           s, shrink);
    m->scale = s;

    int pre_pad = 0, align = 1;
    nn_pad_mode mode = NN_PAD_REFLECT;
    switch (fam) {
    case FAM_CUGAN_SE:
    case FAM_CUGAN_PRO:
    case FAM_CUGAN_NOSE:
        /* realcugan-ncnn-vulkan / the PyTorch UpCunet: reflection padding
         * 18 (2x), 14 (3x), 19 (4x); the unpadded size rounded up to a
         * multiple of 2 (2x, 4x) or 4 (3x), which for these paddings is the
         * same as aligning the padded size. */
        pre_pad = s == 2 ? 18 : s == 3 ? 14 : s == 4 ? 19 : -1;
        align = s == 3 ? 4 : 2;
        mode = NN_PAD_REFLECT;
        break;
    case FAM_W2X_CUNET:
        /* waifu2x-ncnn-vulkan: 28 px for the 1x denoisers, 18 px for 2x;
         * tiles aligned to 4 (1x) or 2 (2x); edges replicated. */
        pre_pad = s == 1 ? 28 : s == 2 ? 18 : -1;
        align = s == 1 ? 4 : 2;
        mode = NN_PAD_REPLICATE;
        break;
    case FAM_W2X_UPCONV7:
        pre_pad = 7;
        align = 2;
        mode = NN_PAD_REPLICATE;
        break;
    default:
        break;
    }
    if (fam != FAM_GENERIC && (pre_pad < 0 || shrink != 2 * s * pre_pad))
        return upres__fail(ctx, UPRES_ERR_UNSUPPORTED,
                           "ncnn: a %s graph of scale %d consuming %d output pixels is not "
                           "one we know", fam >= FAM_W2X_CUNET ? "waifu2x" : "Real-CUGAN", s,
                           shrink);
    if (fam == FAM_GENERIC) {
        /* Pad by as much as the graph consumes, rounded up to input pixels;
         * out_off removes what rounding added. Alignment: the smallest
         * power of two whose multiples all run. */
        pre_pad = (shrink / 2 + s - 1) / s;
        mode = NN_PAD_REFLECT;
        for (align = 1; align <= 64; align *= 2) {
            int ok = 1;
            for (int k = 0; k < 6 && ok; k++) {
                int n = n1 + k * align, oh, ow;
                ok = probe(S, n, &oh, &ow) == 0 && oh == s * n - shrink && ow == oh;
            }
            if (ok)
                break;
        }
        if (align > 64)
            return upres__fail(ctx, UPRES_ERR_UNSUPPORTED,
                               "ncnn: found no input alignment the graph accepts");
    }
    m->pre_pad = pre_pad;
    m->pre_pad_mode = mode;
    m->align = align;
    m->out_off = s * pre_pad - shrink / 2;

    /* Smallest side: the host pads periodically, so any side works for the
     * padding; the graph must take every padded size from there on. */
    int lo = 1;
    int min_side = -1;
    for (int h = lo; h <= 256 && min_side < 0; h++) {
        int ok = 1;
        for (int k = 0; k <= align + 1 && ok; k++) {
            int n = round_up(h + k + 2 * pre_pad, align), oh, ow;
            ok = probe(S, n, &oh, &ow) == 0 && oh >= m->out_off + s * (h + k) &&
                 ow >= m->out_off + s * (h + k);
        }
        if (ok)
            min_side = h;
    }
    if (min_side < 0)
        return upres__fail(ctx, UPRES_ERR_UNSUPPORTED,
                           "ncnn: the graph runs on no input of up to 256 pixels");
    m->min_side = min_side;

    /* Context: the receptive-field radius, rounded up to a multiple of the
     * graph's period: the smallest input shift P that moves every value by
     * whole pixels (P / f integral for each ratio f; 2 for Real-CUGAN 2x/4x,
     * 4 for 3x and the cunet 1x). Inputs shifted by other amounts meet the
     * strided layers at another phase and give different values, so tiles
     * only match the whole image when their padded origins stay on the P
     * grid. */
    /* Chained strides can drive the radius to inf or NaN (inf * a 1-tap
     * kernel); cap it where a tile's padding is capped, before the cast. */
    double rf_px = ceil(out_rf - 1e-9);
    int ctxpx = rf_px >= 0.0 && rf_px <= NC_MAX_PAD ? (int)rf_px : NC_MAX_PAD;
    for (int P = 1; P <= 64 && S->nfs > 0; P++) {
        int ok = 1;
        for (int i = 0; i < S->nfs && ok; i++) {
            double q = (double)P / S->fs[i];
            ok = fabs(q - floor(q + 0.5)) < 1e-6;
        }
        if (ok) {
            ctxpx = round_up(ctxpx, P);
            if (ctxpx > NC_MAX_PAD)
                ctxpx -= P;
            break;
        }
    }
    m->context = ctxpx < 1 ? 1 : ctxpx;
    return UPRES_OK;
}

/* Real-CUGAN 4x: the ncnn graph lacks the network's last step, adding the
 * nearest-neighbour 4x of the (unpadded) input (realcugan-ncnn-vulkan does
 * it on the host). Rebuilt in the graph: the input without its pre_pad
 * border, upscaled 4x, added to the output (both cover the aligned size). */
static int add_cugan4x_residual(nc_state *S, int out, int pre_pad, int *res)
{
    int x = nn_crop(S->g, S->input_value, pre_pad, pre_pad, pre_pad, pre_pad);
    if (x >= 0)
        x = nn_interp(S->g, x, NN_INTERP_NEAREST, 4.0f, 4.0f, 0, 0, 0);
    if (x >= 0)
        x = nn_binary(S->g, NN_ADD, out, x);
    if (x < 0)
        return upres__fail(S->ctx, x, "ncnn: could not add the Real-CUGAN 4x input residual");
    *res = x;
    return UPRES_OK;
}

/* ------------------------------------------------------------------------ */

/* Number of layers of type `type` in a .param text (lines starting with
 * the type followed by a blank). */
static int count_layers(const char *text, size_t n, const char *type)
{
    size_t tl = strlen(type);
    int k = 0;
    for (size_t i = 0; i + tl < n; i++)
        if ((i == 0 || text[i - 1] == '\n') && !memcmp(text + i, type, tl) &&
            (text[i + tl] == ' ' || text[i + tl] == '\t'))
            k++;
    return k;
}

/* Architecture label of a graph that is not one of the families keyed on
 * the folder: the layer mix of Real-ESRGAN's SRVGGNetCompact (a plain chain
 * of convolutions and PReLU, a pixel shuffle, plus an upsampled copy of the
 * input) is common enough to name. Only a label; nothing depends on it. */
static const char *generic_arch(const char *text, size_t n)
{
    if (count_layers(text, n, "PixelShuffle") == 1 && count_layers(text, n, "PReLU") >= 2 &&
        count_layers(text, n, "Interp") >= 1 && !count_layers(text, n, "Pooling") &&
        !count_layers(text, n, "Deconvolution") && !count_layers(text, n, "Concat") &&
        !count_layers(text, n, "Eltwise"))
        return "SRVGGNetCompact";
    return "ncnn";
}

int upres__ncnn_load(upres_ctx *ctx, const char *param_text, size_t param_size,
                     const uint8_t *bin, size_t bin_size, const char *name, const char *dir,
                     struct upres_model *m)
{
    /* Everything the host needs is either in the graph (scale, consumed
     * border, context) or keyed on the folder (`dir`); the file stem adds
     * nothing, since scale comes from probing the graph. */
    (void)name;
    if (!param_text || !m || (!bin && bin_size))
        return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "ncnn: NULL argument");
    m->graph = NULL;
    nc_state S;
    memset(&S, 0, sizeof(S));
    S.ctx = ctx;
    S.bin.p = bin;
    S.bin.size = bin_size;
    S.input_value = -1;
    nc_layer *L = NULL;
    int st;

    nc_text t = {param_text, param_text + param_size, 0};
    const char *s, *e;
    int magic, nlayers, nblobs;
    if (!next_line(&t, &s, &e) || parse_int(s, e, &magic) != 0 || magic != NC_MAGIC)
        return upres__fail(ctx, UPRES_ERR_UNKNOWN_FORMAT,
                           "ncnn: the .param does not start with the magic 7767517");
    {
        const char *ts, *te;
        if (!next_line(&t, &s, &e) || !next_tok(&s, e, &ts, &te) ||
            parse_int(ts, te, &nlayers) != 0 || !next_tok(&s, e, &ts, &te) ||
            parse_int(ts, te, &nblobs) != 0 || next_tok(&s, e, &ts, &te))
            return upres__fail(ctx, UPRES_ERR_CORRUPT,
                               "ncnn: line 2 must hold the layer and blob counts");
    }
    if (nlayers < 1 || nblobs < 1 || nlayers > NC_MAX_LAYERS || nblobs > NC_MAX_BLOBS ||
        (size_t)nlayers > param_size || (size_t)nblobs > param_size)
        return upres__fail(ctx, UPRES_ERR_CORRUPT, "ncnn: implausible counts: %d layers, %d blobs",
                           nlayers, nblobs);

    S.g = nn_graph_new();
    L = malloc(sizeof(*L));
    if (!S.g || !L) {
        st = upres__fail(ctx, UPRES_ERR_NOMEM, "ncnn: out of memory");
        goto fail;
    }
    st = blobs_init(&S.blobs, nblobs);
    if (st) {
        upres__fail(ctx, st, "ncnn: out of memory");
        goto fail;
    }

    int nread = 0;
    double out_rf = 0.0;
    while (next_line(&t, &s, &e)) {
        if (nread == nlayers) {
            st = upres__fail(ctx, UPRES_ERR_CORRUPT,
                             "ncnn: line %d: more layers than the %d declared", t.lineno, nlayers);
            goto fail;
        }
        L->lineno = t.lineno;
        nc_build_fn fn = NULL;
        st = parse_layer(&S, L, s, e, &fn);
        if (st)
            goto fail;
        if (S.input_value < 0 && strcmp(L->type, "Input") != 0) {
            st = upres__fail(ctx, UPRES_ERR_CORRUPT,
                             "ncnn: layer '%s' comes before the Input layer", L->name);
            goto fail;
        }
        st = fn(&S, L);
        if (st)
            goto fail;
        nread++;
    }
    if (nread != nlayers) {
        st = upres__fail(ctx, UPRES_ERR_CORRUPT, "ncnn: the .param declares %d layers but holds %d",
                         nlayers, nread);
        goto fail;
    }
    if (S.blobs.n != nblobs) {
        st = upres__fail(ctx, UPRES_ERR_CORRUPT, "ncnn: the .param declares %d blobs but names %d",
                         nblobs, S.blobs.n);
        goto fail;
    }
    if (S.bin.off != S.bin.size) {
        st = upres__fail(ctx, UPRES_ERR_CORRUPT,
                         "ncnn: the .bin has %zu bytes left over after the last layer (read %zu "
                         "of %zu)", S.bin.size - S.bin.off, S.bin.off, S.bin.size);
        goto fail;
    }

    /* The output: the one value nothing reads (Split aliases of a read value
     * do not count). Read values are sorted so each lookup is a bisection. */
    int out = -1, nout = 0, out_blob = -1, nreadv = 0;
    int *readv = malloc((size_t)S.blobs.n * sizeof(int));
    if (!readv) {
        st = upres__fail(ctx, UPRES_ERR_NOMEM, "ncnn: out of memory");
        goto fail;
    }
    for (int i = 0; i < S.blobs.n; i++)
        if (S.blobs.b[i].consumed)
            readv[nreadv++] = S.blobs.b[i].value;
    qsort(readv, (size_t)nreadv, sizeof(int), cmp_int);
    for (int i = 0; i < S.blobs.n; i++) {
        nc_blob *b = &S.blobs.b[i];
        if (b->consumed || b->value == S.input_value || b->value == out ||
            bsearch(&b->value, readv, (size_t)nreadv, sizeof(int), cmp_int))
            continue;
        out = b->value;
        out_blob = i;
        nout++;
    }
    free(readv);
    if (nout != 1) {
        st = nout ? upres__fail(ctx, UPRES_ERR_UNSUPPORTED,
                                "ncnn: the graph has %d outputs (one is supported)", nout)
                  : upres__fail(ctx, UPRES_ERR_UNSUPPORTED,
                                "ncnn: the graph has no output (every blob is read, or is the "
                                "input)");
        goto fail;
    }
    if (S.blobs.b[out_blob].spatial1) {
        st = upres__fail(ctx, UPRES_ERR_UNSUPPORTED, "ncnn: the graph's output is not an image");
        goto fail;
    }
    out_rf = S.blobs.b[out_blob].rf;

    nc_family fam = family_of(dir);
    double out_f = S.blobs.b[out_blob].f;
    int is_cugan = fam == FAM_CUGAN_SE || fam == FAM_CUGAN_PRO || fam == FAM_CUGAN_NOSE;
    if (is_cugan && out_f > 0.0 && fabs(1.0 / out_f - 4.0) < 1e-6) {
        st = add_cugan4x_residual(&S, out, 19, &out);
        if (st)
            goto fail;
    }
    st = nn_graph_set_output(S.g, out);
    if (st < 0 || (st = nn_graph_status(S.g)) != UPRES_OK) {
        upres__fail(ctx, st, "ncnn: the graph could not be built (%s)", upres_strerror(st));
        goto fail;
    }
    int out_c = nn_graph_out_channels(S.g);
    int in_c = nn_channels(S.g, S.input_value);
    if (out_c != 1 && out_c != 3) {
        st = upres__fail(ctx, UPRES_ERR_UNSUPPORTED,
                         "ncnn: the graph outputs %d channels (1 or 3 supported)", out_c);
        goto fail;
    }
    m->graph = S.g;
    st = host_settings(&S, fam, out_rf, m);
    if (st) {
        m->graph = NULL;
        goto fail;
    }
    static const char *const arch_names[] = {"ncnn", "RealCUGAN-se", "RealCUGAN-pro",
                                             "RealCUGAN-nose", "waifu2x-cunet",
                                             "waifu2x-upconv7"};
    snprintf(m->arch, sizeof(m->arch), "%s",
             fam == FAM_GENERIC ? generic_arch(param_text, param_size) : arch_names[fam]);
    m->in_c = in_c;
    m->out_c = out_c;
    m->params = nn_graph_params(S.g);
    m->in_scale = 1.0f;
    m->in_bias = 0.0f;
    m->out_scale = 1.0f;
    m->out_bias = 0.0f;
    if (fam == FAM_CUGAN_PRO) {
        /* The pro models were trained on x*0.7+0.15 and give outputs in that
         * range; map back with (y-0.15)/0.7. */
        m->in_scale = 0.7f;
        m->in_bias = 0.15f;
        m->out_scale = 1.0f / 0.7f;
        m->out_bias = -0.15f / 0.7f;
    }
    m->planned_h = 0;
    m->planned_w = 0;
    blobs_free(&S.blobs);
    free(L);
    return UPRES_OK;

fail:
    nn_graph_free(S.g);
    m->graph = NULL;
    blobs_free(&S.blobs);
    free(L);
    return st;
}
