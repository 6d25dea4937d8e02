/*
 * State dict -> inference graph for the architectures we recognise:
 *
 *   RRDBNet (ESRGAN / Real-ESRGAN / BSRGAN), in three key namings:
 *     new   conv_first, body.N.rdbK.convJ, conv_body, conv_upI, conv_hr, conv_last
 *     old   model.0, model.1.sub.N.RDBK.convJ.0, model.1.sub.NB, model.3I (upconvs),
 *           model.3U+2 (HR conv), model.3U+4 (last), U = number of upsamplings
 *     trunk conv_first, RRDB_trunk.N.RDBK.convJ, trunk_conv, upconvI, HRconv, conv_last
 *   with any block count, width and growth; U nearest x2 upsamplings, and an
 *   input pixel-unshuffled by 2 or 4 when conv_first takes 4x or 16x the
 *   output channels (Real-ESRGAN's x2 and x1 models).
 *
 *   SRVGGNetCompact: body.0 conv, then (activation, conv) pairs at body.(2i+1)
 *   and body.(2i+2); the last conv gives c*s*s channels that are pixel-shuffled
 *   and added to the nearest-upsampled input.
 *
 * Recognition uses only key names and tensor shapes. Every tensor is checked
 * against the shape the graph needs before it is used, so a malformed file
 * fails with UPRES_ERR_CORRUPT naming the tensor instead of reading past an
 * array. A tensor the graph does not use means a variant we do not know
 * (UPRES_ERR_UNSUPPORTED) rather than something safe to ignore.
 */
#include "models/models_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Largest channel count / kernel side we accept from a file. Real models use
 * at most a few hundred channels and 3x3 kernels; the bounds keep the int
 * fields of nn_conv_desc far from overflow. */
#define ARCH_MAX_CH 8192
#define ARCH_MAX_K 15
/* Largest RRDB block count, SRVGG conv count and number of x2 upsamplings. */
#define ARCH_MAX_BLOCKS 1000
#define ARCH_MAX_CONVS 1000
#define ARCH_MAX_UP 4

/* The state of one graph build: where errors go, the arch's name for error
 * details, and which tensors the graph used (a tensor left over means a
 * variant we do not know, e.g. ESRGAN+'s extra conv1x1 layers). */
typedef struct arch_build {
    upres_ctx *ctx;
    const upres_statedict *sd;
    nn_graph *g;
    const char *arch;
    unsigned char *used; /* [sd->n] */
} arch_build;

/* Turns a negative status from an nn builder into a ctx detail. Returns id
 * unchanged when it is a value id (>= 0). */
static int ab_check(arch_build *b, int id, const char *what)
{
    if (id >= 0)
        return id;
    return upres__fail(b->ctx, id, "%s: building the graph failed at %s (%s)", b->arch, what,
                       upres_strerror(id));
}

/* The tensor `name`, which must exist with `ndim` dimensions; NULL after
 * recording a UPRES_ERR_CORRUPT detail otherwise. */
static const upres_sd_tensor *ab_tensor(arch_build *b, const char *name, int ndim)
{
    const upres_sd_tensor *t = upres__sd_find(b->sd, name);
    if (!t) {
        upres__fail(b->ctx, UPRES_ERR_CORRUPT, "%s: missing tensor %s", b->arch, name);
        return NULL;
    }
    if (t->ndim != ndim || (upres__sd_numel(t) > 0 && !t->data)) {
        upres__fail(b->ctx, UPRES_ERR_CORRUPT, "%s: tensor %s has %d dimensions, expected %d",
                    b->arch, name, t->ndim, ndim);
        return NULL;
    }
    b->used[t - b->sd->t] = 1;
    return t;
}

/*
 * Adds a "same" convolution (stride 1, zero padding k/2) whose weight and bias
 * are `<prefix>.weight` [out][in][k][k] and `<prefix>.bias` [out], with in =
 * the channels of x and k odd. Returns the new value id or a negative status
 * (detail recorded; a wrong shape is UPRES_ERR_CORRUPT naming the tensor).
 */
static int ab_conv(arch_build *b, int x, const char *prefix, nn_act act, float alpha)
{
    char wn[160], bn[160];
    snprintf(wn, sizeof wn, "%s.weight", prefix);
    snprintf(bn, sizeof bn, "%s.bias", prefix);
    int in_c = nn_channels(b->g, x);
    if (in_c < 0)
        return ab_check(b, in_c, wn);
    const upres_sd_tensor *w = ab_tensor(b, wn, 4);
    if (!w)
        return UPRES_ERR_CORRUPT;
    const upres_sd_tensor *bias = ab_tensor(b, bn, 1);
    if (!bias)
        return UPRES_ERR_CORRUPT;
    int64_t oc = w->shape[0], ic = w->shape[1], kh = w->shape[2], kw = w->shape[3];
    if (oc < 1 || oc > ARCH_MAX_CH || ic != in_c)
        return upres__fail(b->ctx, UPRES_ERR_CORRUPT,
                           "%s: tensor %s has shape [%lld, %lld, %lld, %lld], expected %d input "
                           "channels",
                           b->arch, wn, (long long)oc, (long long)ic, (long long)kh,
                           (long long)kw, in_c);
    if (kh != kw || kh < 1 || kh > ARCH_MAX_K || kh % 2 == 0)
        return upres__fail(b->ctx, UPRES_ERR_CORRUPT,
                           "%s: tensor %s has a %lldx%lld kernel, expected an odd square one",
                           b->arch, wn, (long long)kh, (long long)kw);
    if (bias->shape[0] != oc)
        return upres__fail(b->ctx, UPRES_ERR_CORRUPT,
                           "%s: tensor %s has %lld values, expected %lld", b->arch, bn,
                           (long long)bias->shape[0], (long long)oc);
    nn_conv_desc d = nn_conv_desc_defaults();
    d.out_c = (int)oc;
    d.kh = d.kw = (int)kh;
    d.pad_t = d.pad_l = d.pad_b = d.pad_r = (int)kh / 2;
    d.act = act;
    d.act_alpha = alpha;
    return ab_check(b, nn_conv2d(b->g, x, &d, w->data, bias->data), wn);
}

/* y = x*s + skip (the residual scaling of RDB and RRDB blocks). */
static int ab_scaled_add(arch_build *b, int x, float s, int skip, const char *what)
{
    int y = ab_check(b, nn_affine(b->g, x, s, 0.0f), what);
    if (y < 0)
        return y;
    return ab_check(b, nn_binary(b->g, NN_ADD, y, skip), what);
}

/* Parses the decimal number at *p (at most 6 digits, no sign) and advances
 * *p past it. Returns the number, or -1 when *p does not start with a digit
 * or the number is too long. */
static int parse_index(const char **p)
{
    const char *s = *p;
    int v = 0, n = 0;
    while (*s >= '0' && *s <= '9') {
        if (++n > 6)
            return -1;
        v = v * 10 + (*s - '0');
        s++;
    }
    if (n == 0)
        return -1;
    *p = s;
    return v;
}

/* If `name` is `<prefix><digits><rest>`, returns the number (and *rest points
 * after it), else -1. */
static int key_index(const char *name, const char *prefix, const char **rest)
{
    size_t n = strlen(prefix);
    if (strncmp(name, prefix, n) != 0)
        return -1;
    const char *p = name + n;
    int v = parse_index(&p);
    if (v >= 0 && rest)
        *rest = p;
    return v;
}

static int has_key(const upres_statedict *sd, const char *name)
{
    return upres__sd_find(sd, name) != NULL;
}

/* ------------------------------------------------------------------------ */
/* RRDBNet                                                                   */

typedef enum rrdb_naming { RRDB_NEW, RRDB_OLD, RRDB_TRUNK } rrdb_naming;

typedef enum rrdb_role {
    R_FIRST, /* first conv */
    R_RDB,   /* i = block, j = RDB 1..3, k = conv 1..5 */
    R_TRUNK, /* conv after the blocks; i = block count */
    R_UP,    /* i = upsampling 1..U */
    R_HR,    /* i = U */
    R_LAST   /* i = U */
} rrdb_role;

/* Writes the key prefix (without ".weight"/".bias") of a layer into buf. */
static void rrdb_key(char *buf, size_t n, rrdb_naming nm, rrdb_role role, int i, int j, int k)
{
    static const char *const first[] = {"conv_first", "model.0", "conv_first"};
    static const char *const rdb[] = {"body.%d.rdb%d.conv%d", "model.1.sub.%d.RDB%d.conv%d.0",
                                      "RRDB_trunk.%d.RDB%d.conv%d"};
    static const char *const trunk[] = {"conv_body", "", "trunk_conv"};
    static const char *const up[] = {"conv_up", "", "upconv"};
    static const char *const hr[] = {"conv_hr", "", "HRconv"};
    switch (role) {
    case R_FIRST:
        snprintf(buf, n, "%s", first[nm]);
        break;
    case R_RDB:
        snprintf(buf, n, rdb[nm], i, j, k);
        break;
    case R_TRUNK:
        if (nm == RRDB_OLD)
            snprintf(buf, n, "model.1.sub.%d", i);
        else
            snprintf(buf, n, "%s", trunk[nm]);
        break;
    case R_UP:
        if (nm == RRDB_OLD)
            snprintf(buf, n, "model.%d", 3 * i);
        else
            snprintf(buf, n, "%s%d", up[nm], i);
        break;
    case R_HR:
        if (nm == RRDB_OLD)
            snprintf(buf, n, "model.%d", 3 * i + 2);
        else
            snprintf(buf, n, "%s", hr[nm]);
        break;
    case R_LAST:
        if (nm == RRDB_OLD)
            snprintf(buf, n, "model.%d", 3 * i + 4);
        else
            snprintf(buf, n, "conv_last");
        break;
    }
}

/* Which naming the keys use, or -1 when none. */
static int rrdb_detect(const upres_statedict *sd)
{
    if (has_key(sd, "conv_first.weight") && has_key(sd, "body.0.rdb1.conv1.weight") &&
        has_key(sd, "conv_body.weight") && has_key(sd, "conv_last.weight"))
        return RRDB_NEW;
    if (has_key(sd, "model.0.weight") && has_key(sd, "model.1.sub.0.RDB1.conv1.0.weight"))
        return RRDB_OLD;
    if (has_key(sd, "conv_first.weight") && has_key(sd, "RRDB_trunk.0.RDB1.conv1.weight") &&
        has_key(sd, "trunk_conv.weight") && has_key(sd, "conv_last.weight"))
        return RRDB_TRUNK;
    return -1;
}

/* Block count and number of x2 upsamplings from the keys present. Missing
 * layers in between are found later, when the graph asks for them. */
static int rrdb_layout(arch_build *b, rrdb_naming nm, int *nb, int *nup)
{
    static const char *const block_prefix[] = {"body.", "model.1.sub.", "RRDB_trunk."};
    int max_block = -1, max_model = -1;
    for (size_t i = 0; i < b->sd->n; i++) {
        const char *name = b->sd->t[i].name, *rest = NULL;
        int v = key_index(name, block_prefix[nm], NULL);
        if (v > max_block)
            max_block = v;
        if (nm == RRDB_OLD) {
            v = key_index(name, "model.", &rest);
            if (v >= 0 && strcmp(rest, ".weight") == 0 && v > max_model)
                max_model = v;
        }
    }
    /* Old naming: the trunk conv is model.1.sub.<block count>. */
    *nb = nm == RRDB_OLD ? max_block : max_block + 1;
    if (*nb < 1 || *nb > ARCH_MAX_BLOCKS)
        return upres__fail(b->ctx, UPRES_ERR_UNSUPPORTED, "RRDBNet: %d blocks", *nb);

    if (nm == RRDB_OLD) {
        /* model = [conv, shortcut, (upsample, conv, lrelu) x U, conv, lrelu, conv]:
         * the last conv is model.(3U+4), as spandrel derives the scale. */
        if (max_model < 4 || (max_model - 4) % 3 != 0)
            return upres__fail(b->ctx, UPRES_ERR_UNSUPPORTED,
                               "RRDBNet: unexpected last layer model.%d", max_model);
        *nup = (max_model - 4) / 3;
    } else {
        char key[64];
        int u = 0;
        for (;;) {
            rrdb_key(key, sizeof key, nm, R_UP, u + 1, 0, 0);
            size_t l = strlen(key);
            snprintf(key + l, sizeof key - l, ".weight");
            if (!has_key(b->sd, key) || u > ARCH_MAX_UP)
                break;
            u++;
        }
        *nup = u;
    }
    if (*nup > ARCH_MAX_UP)
        return upres__fail(b->ctx, UPRES_ERR_UNSUPPORTED, "RRDBNet: %d x2 upsamplings", *nup);
    return UPRES_OK;
}

/*
 * Input pixels of context a tile needs. The exact receptive radius is the sum
 * of the conv radii, each measured in input pixels at the resolution it runs
 * at: (15 per block + 2) convs at 1/shuffle resolution, one up-conv after each
 * x2 upsampling, HR and last at the end. For Real-ESRGAN's 23 blocks that is
 * ~350 px, but the residual scaling (0.2 per RDB and per RRDB) makes far
 * pixels contribute very little, so the suggestion is capped at 32 (three
 * times Real-ESRGAN's own default tile_pad of 10); tiny models get their exact
 * radius.
 */
static int rrdb_context(int nb, int nup, int shuffle)
{
    double r = (15.0 * nb + 2.0) * shuffle;
    for (int i = 1; i <= nup; i++)
        r += (double)shuffle / (1 << i);
    r += 2.0 * shuffle / (1 << nup);
    int c = (int)r + 1;
    return c > 32 ? 32 : c;
}

static int rrdb_build(arch_build *b, rrdb_naming nm, struct upres_model *m)
{
    int nb = 0, nup = 0, st;
    if ((st = rrdb_layout(b, nm, &nb, &nup)) < 0)
        return st;

    char key[96], wkey[112];
    rrdb_key(key, sizeof key, nm, R_FIRST, 0, 0, 0);
    snprintf(wkey, sizeof wkey, "%s.weight", key);
    const upres_sd_tensor *first = ab_tensor(b, wkey, 4);
    rrdb_key(key, sizeof key, nm, R_LAST, nup, 0, 0);
    snprintf(wkey, sizeof wkey, "%s.weight", key);
    const upres_sd_tensor *last = ab_tensor(b, wkey, 4);
    if (!first || !last)
        return UPRES_ERR_CORRUPT;

    /* Pixel-unshuffled inputs show as conv_first taking 4x or 16x the output
     * channels (Real-ESRGAN x2 and x1 models). */
    int64_t fin = first->shape[1], lout = last->shape[0];
    int shuffle = 1;
    if (lout >= 1 && fin == lout * 16)
        shuffle = 4;
    else if (lout >= 1 && fin == lout * 4)
        shuffle = 2;
    int64_t in_c = fin / (shuffle * shuffle);
    if ((in_c != 1 && in_c != 3) || (lout != 1 && lout != 3))
        return upres__fail(b->ctx, UPRES_ERR_UNSUPPORTED,
                           "RRDBNet: %lld input and %lld output channels (only 1 or 3)",
                           (long long)fin, (long long)lout);
    if (shuffle > (1 << nup))
        return upres__fail(b->ctx, UPRES_ERR_UNSUPPORTED,
                           "RRDBNet: pixel-unshuffle by %d with %d upsamplings", shuffle, nup);

    nn_graph *g = b->g;
    int x = ab_check(b, nn_input(g, (int)in_c), "input");
    if (x < 0)
        return x;
    if (shuffle > 1 && (x = ab_check(b, nn_pixel_unshuffle(g, x, shuffle), "unshuffle")) < 0)
        return x;
    rrdb_key(key, sizeof key, nm, R_FIRST, 0, 0, 0);
    int fea = ab_conv(b, x, key, NN_ACT_NONE, 0.0f);
    if (fea < 0)
        return fea;

    int t = fea;
    for (int i = 0; i < nb; i++) {
        int r = t;
        for (int j = 1; j <= 3; j++) {
            /* Residual dense block: conv k sees the block input and every
             * earlier conv's output, concatenated. */
            int feats[5];
            feats[0] = r;
            for (int k = 1; k <= 5; k++) {
                int cat = feats[0];
                if (k > 1 && (cat = ab_check(b, nn_concat(g, k, feats), "concat")) < 0)
                    return cat;
                rrdb_key(key, sizeof key, nm, R_RDB, i, j, k);
                int y = k < 5 ? ab_conv(b, cat, key, NN_ACT_LEAKY, 0.2f)
                              : ab_conv(b, cat, key, NN_ACT_NONE, 0.0f);
                if (y < 0)
                    return y;
                if (k < 5)
                    feats[k] = y;
                else if ((r = ab_scaled_add(b, y, 0.2f, feats[0], key)) < 0)
                    return r;
            }
        }
        if ((t = ab_scaled_add(b, r, 0.2f, t, "RRDB residual")) < 0)
            return t;
    }
    rrdb_key(key, sizeof key, nm, R_TRUNK, nb, 0, 0);
    int body = ab_conv(b, t, key, NN_ACT_NONE, 0.0f);
    if (body < 0)
        return body;
    if ((fea = ab_check(b, nn_binary(g, NN_ADD, fea, body), "trunk residual")) < 0)
        return fea;
    for (int i = 1; i <= nup; i++) {
        if ((fea = ab_check(b, nn_interp(g, fea, NN_INTERP_NEAREST, 2.0f, 2.0f, 0, 0, 0),
                            "upsampling")) < 0)
            return fea;
        rrdb_key(key, sizeof key, nm, R_UP, i, 0, 0);
        if ((fea = ab_conv(b, fea, key, NN_ACT_LEAKY, 0.2f)) < 0)
            return fea;
    }
    rrdb_key(key, sizeof key, nm, R_HR, nup, 0, 0);
    if ((fea = ab_conv(b, fea, key, NN_ACT_LEAKY, 0.2f)) < 0)
        return fea;
    rrdb_key(key, sizeof key, nm, R_LAST, nup, 0, 0);
    int out = ab_conv(b, fea, key, NN_ACT_NONE, 0.0f);
    if (out < 0)
        return out;
    if ((st = ab_check(b, nn_graph_set_output(g, out), "output")) < 0)
        return st;

    snprintf(m->arch, sizeof m->arch, "RRDBNet");
    m->scale = (1 << nup) / shuffle;
    m->in_c = (int)in_c;
    m->out_c = (int)lout;
    /* pixel_unshuffle needs sides divisible by the factor: the host pads
     * (reflect, as Real-ESRGAN does) and crops the result. */
    m->align = shuffle;
    m->min_side = shuffle;
    m->context = rrdb_context(nb, nup, shuffle);
    return UPRES_OK;
}

/* ------------------------------------------------------------------------ */
/* SRVGGNetCompact                                                           */

/* 1 when every key is body.<n>.weight or body.<n>.bias and body.0.weight is a
 * conv weight. */
static int srvgg_detect(const upres_statedict *sd)
{
    const upres_sd_tensor *t0 = upres__sd_find(sd, "body.0.weight");
    if (!t0 || t0->ndim != 4)
        return 0;
    for (size_t i = 0; i < sd->n; i++) {
        const char *rest = NULL;
        if (key_index(sd->t[i].name, "body.", &rest) < 0)
            return 0;
        if (strcmp(rest, ".weight") != 0 && strcmp(rest, ".bias") != 0)
            return 0;
    }
    return 1;
}

static int srvgg_build(arch_build *b, struct upres_model *m)
{
    int last = -1;
    for (size_t i = 0; i < b->sd->n; i++) {
        const char *rest = NULL;
        int v = key_index(b->sd->t[i].name, "body.", &rest);
        if (v > last && strcmp(rest, ".weight") == 0)
            last = v;
    }
    /* Convs at even indices 0..last, activations between them. */
    if (last < 2 || last % 2 != 0 || last / 2 - 1 > ARCH_MAX_CONVS)
        return upres__fail(b->ctx, UPRES_ERR_UNSUPPORTED,
                           "SRVGGNetCompact: unexpected last layer body.%d", last);
    char key[64];
    /* PReLU activations hold a weight (all of them or none). Parameterless
     * ones could be ReLU or LeakyReLU(0.1), which the file cannot tell
     * apart; Real-ESRGAN's act_type options list ReLU first and no released
     * model uses either, so ReLU it is. */
    int n_prelu = 0;
    for (int i = 1; i < last; i += 2) {
        snprintf(key, sizeof key, "body.%d.weight", i);
        n_prelu += has_key(b->sd, key);
    }
    if (n_prelu != 0 && n_prelu != last / 2) {
        for (int i = 1; i < last; i += 2) {
            snprintf(key, sizeof key, "body.%d.weight", i);
            if (!has_key(b->sd, key))
                break;
        }
        return upres__fail(b->ctx, UPRES_ERR_CORRUPT,
                           "SRVGGNetCompact: missing tensor %s (PReLU slopes)", key);
    }

    const upres_sd_tensor *t0 = ab_tensor(b, "body.0.weight", 4);
    snprintf(key, sizeof key, "body.%d.weight", last);
    const upres_sd_tensor *tl = ab_tensor(b, key, 4);
    if (!t0 || !tl)
        return UPRES_ERR_CORRUPT;
    int64_t in_c = t0->shape[1], lout = tl->shape[0];
    if (in_c != 1 && in_c != 3)
        return upres__fail(b->ctx, UPRES_ERR_UNSUPPORTED,
                           "SRVGGNetCompact: %lld input channels (only 1 or 3)", (long long)in_c);
    /* The last conv gives in_c * scale^2 channels (the output adds the
     * upsampled input, so out_c = in_c). */
    int scale = 0;
    for (int s = 1; s <= 16; s++)
        if (lout == in_c * s * s)
            scale = s;
    if (!scale)
        return upres__fail(b->ctx, UPRES_ERR_CORRUPT,
                           "SRVGGNetCompact: tensor %s has %lld output channels, expected %lld "
                           "times a square",
                           key, (long long)lout, (long long)in_c);

    nn_graph *g = b->g;
    int x = ab_check(b, nn_input(g, (int)in_c), "input");
    if (x < 0)
        return x;
    int h = x;
    for (int i = 0; i <= last; i += 2) {
        snprintf(key, sizeof key, "body.%d", i);
        int is_last = i == last;
        h = ab_conv(b, h, key, (is_last || n_prelu) ? NN_ACT_NONE : NN_ACT_RELU, 0.0f);
        if (h < 0)
            return h;
        if (is_last || !n_prelu)
            continue;
        snprintf(key, sizeof key, "body.%d.weight", i + 1);
        const upres_sd_tensor *p = ab_tensor(b, key, 1);
        if (!p)
            return UPRES_ERR_CORRUPT;
        int c = nn_channels(g, h);
        if (p->shape[0] != 1 && p->shape[0] != c)
            return upres__fail(b->ctx, UPRES_ERR_CORRUPT,
                               "SRVGGNetCompact: tensor %s has %lld slopes, expected 1 or %d", key,
                               (long long)p->shape[0], c);
        if ((h = ab_check(b, nn_prelu(g, h, p->data, (int)p->shape[0]), key)) < 0)
            return h;
    }
    if ((h = ab_check(b, nn_pixel_shuffle(g, h, scale), "pixel_shuffle")) < 0)
        return h;
    int base = x;
    if (scale > 1 && (base = ab_check(b, nn_interp(g, x, NN_INTERP_NEAREST, (float)scale,
                                                   (float)scale, 0, 0, 0),
                                      "upsampling")) < 0)
        return base;
    int out = ab_check(b, nn_binary(g, NN_ADD, h, base), "base add");
    if (out < 0)
        return out;
    int st = ab_check(b, nn_graph_set_output(g, out), "output");
    if (st < 0)
        return st;

    snprintf(m->arch, sizeof m->arch, "SRVGGNetCompact");
    m->scale = scale;
    m->in_c = m->out_c = (int)in_c;
    m->align = 1;
    m->min_side = 1;
    /* Every conv is 3x3 at input resolution and the rest is pointwise, so the
     * receptive radius is exactly the conv count (num_conv + 2). */
    int convs = last / 2 + 1;
    m->context = convs > 64 ? 64 : convs;
    return UPRES_OK;
}

/* ------------------------------------------------------------------------ */

/* Appends a printable, bounded copy of a key from the file to buf. */
static void append_key(char *buf, size_t cap, const char *name)
{
    size_t l = strlen(buf);
    for (size_t i = 0; name[i] && i < 48 && l + 1 < cap; i++) {
        unsigned char ch = (unsigned char)name[i];
        buf[l++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
    }
    buf[l] = '\0';
}

int upres__arch_build(upres_ctx *ctx, const upres_statedict *sd, struct upres_model *m)
{
    if (!sd || !m)
        return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "model: no state dict");
    arch_build b = {ctx, sd, NULL, "", NULL};
    int naming = rrdb_detect(sd);
    int srvgg = naming < 0 && srvgg_detect(sd);
    if (naming < 0 && !srvgg) {
        char keys[256] = "";
        size_t shown = sd->n < 3 ? sd->n : 3;
        for (size_t i = 0; i < shown; i++) {
            if (i)
                append_key(keys, sizeof keys, ", ");
            append_key(keys, sizeof keys, sd->t[i].name);
        }
        if (sd->n == 0)
            return upres__fail(ctx, UPRES_ERR_UNSUPPORTED,
                               "unrecognised architecture (no tensors)");
        return upres__fail(ctx, UPRES_ERR_UNSUPPORTED, "unrecognised architecture (keys: %s%s)",
                           keys, sd->n > shown ? ", ..." : "");
    }
    b.g = nn_graph_new();
    b.used = calloc(sd->n, 1);
    if (!b.g || !b.used) {
        nn_graph_free(b.g);
        free(b.used);
        return upres__fail(ctx, UPRES_ERR_NOMEM, "model: out of memory");
    }
    int st;
    if (srvgg) {
        b.arch = "SRVGGNetCompact";
        st = srvgg_build(&b, m);
    } else {
        b.arch = "RRDBNet";
        st = rrdb_build(&b, (rrdb_naming)naming, m);
    }
    for (size_t i = 0; st >= 0 && i < sd->n; i++) {
        if (!b.used[i]) {
            char key[64] = "";
            append_key(key, sizeof key, sd->t[i].name);
            st = upres__fail(ctx, UPRES_ERR_UNSUPPORTED,
                             "%s: unexpected tensor %s (an unknown variant)", b.arch, key);
        }
    }
    free(b.used);
    if (st < 0) {
        nn_graph_free(b.g);
        return st;
    }
    m->graph = b.g;
    m->params = nn_graph_params(b.g);
    return UPRES_OK;
}
