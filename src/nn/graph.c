/*
 * nn graph: building, shape inference, memory planning and the run loop.
 *
 * Values are numbered by the node that produces them, and a node may only
 * read values with smaller numbers, so node order is a valid execution order.
 *
 * Buffer planning (nn_graph_plan):
 *   - Only the nodes the output depends on are planned and run (a backward
 *     walk from the output marks them).
 *   - The input value is the caller's read-only buffer and the output value
 *     is written straight into the caller's output buffer, so neither takes
 *     arena memory (an output that is the input itself is copied).
 *   - Every other value gets a range of one arena allocation. Each value's
 *     lifetime runs from the node that makes it to its last reader. Walking
 *     the nodes in order, a value is placed at the lowest offset that does
 *     not overlap any value still alive (first fit over the live ranges,
 *     kept sorted by offset); after a node runs, the values it read for the
 *     last time die and their ranges become free. A node's inputs are alive
 *     while its output is placed, so no kernel ever works in place.
 *   - Kernel scratch (im2col blocks, one per worker thread, the packed input
 *     of a transposed conv, interpolation tap tables) is one more allocation
 *     sized by the largest need of any node, shared by all nodes since they
 *     run one after another.
 *   - Every size is overflow-checked, and the arena plus scratch is checked
 *     against the ctx's max_memory_bytes before anything is allocated.
 */
#include "nn/nn.h"

#include "nn/cpu/cpu_ops.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Largest side of any intermediate value. Keeps all per-side int arithmetic
 * (conv coordinates times strides, interpolation indices) far from INT_MAX. */
#define NN_MAX_SIDE (1 << 20)
/* Largest kernel side, stride, dilation, padding, shuffle factor. */
#define NN_MAX_PARAM 4096
#define NN_ALIGN_FLOATS 16 /* 64-byte alignment of arena ranges */

typedef enum nn_op {
    OP_INPUT,
    OP_CONV,
    OP_DECONV,
    OP_ACT,
    OP_PRELU,
    OP_BINARY,
    OP_AFFINE,
    OP_CHAFFINE,
    OP_CONCAT,
    OP_PSHUF,
    OP_PUNSHUF,
    OP_INTERP,
    OP_CROP,
    OP_CROP_LIKE,
    OP_PAD,
    OP_GAP,
    OP_SHUF_ADD /* fused: pixel_shuffle(a) + nearest interp(b) (see fuse) */
} nn_op;

static const char *const op_names[] = {
    "input",   "conv2d",        "deconv2d",       "activation", "prelu", "binary",
    "affine",  "channel_affine", "concat",        "pixel_shuffle", "pixel_unshuffle",
    "interp",  "crop",          "crop_like",      "pad",        "global_avg_pool",
    "shuffle_add"};

typedef struct nn_node {
    nn_op op;
    int c;     /* output channels */
    int a, b;  /* input value ids (-1 = none) */
    int *xs;   /* concat inputs, or a fused conv's concatenated input (owned), nxs of them */
    int nxs;
    int in_c;             /* conv: input channels */
    int wc_done;          /* conv: Winograd cache channels already transformed (-1: no cache) */
    int wc_stride;        /* conv: channel capacity of its chain's cache */
    int wc_last;          /* conv: the last conv of its chain */
    size_t wc_off;        /* conv: arena offset of its chain's cache, floats (planned) */
    int absorbed;         /* fused into a later node: its value no longer exists */
    float post_scale;     /* conv: fused scale before the residual `b` (1: none) */
    const float **chan;   /* conv: in_c input plane pointers, filled per run (owned) */
    nn_conv_desc cd;      /* conv, deconv; act/act_alpha also for OP_ACT */
    float *wt;            /* packed weights (owned) */
    float *p0, *p1;       /* prelu slopes / affine scale, affine bias (owned) */
    int n0;               /* slope count; affine: per channel */
    int i[4];             /* crop t/l/b/r, pad t/l/b/r, shuffle r, crop_like offsets */
    int mode;             /* binop, pad mode, interp mode */
    float f0;             /* pad value */
    float sh, sw;         /* interp scales */
    int oh, ow, align;    /* interp sizes, align_corners */
    /* Shape inference writes h, w (for whatever size was asked last);
     * nn_graph_plan copies them to ph, pw, which the run uses, so probing
     * other sizes never disturbs a plan. */
    int h, w;
    int ph, pw;
    int needed, last;     /* depend only on the output, not on the size */
    size_t off;           /* arena offset, floats (planned) */
} nn_node;

struct nn_graph {
    nn_node *nodes;
    int n, cap;
    int status;
    int input, output;
    int fused; /* fuse() has rewritten the graph: no more building */
    uint64_t params;
    /* Plan. */
    int planned, plan_h, plan_w;
    float *arena;
    float *scratch;
    int slots; /* conv scratch areas */
    size_t plan_bytes;
};

/* ---- Building -------------------------------------------------------------- */

nn_conv_desc nn_conv_desc_defaults(void)
{
    nn_conv_desc d;
    memset(&d, 0, sizeof d);
    d.kh = d.kw = 1;
    d.stride_h = d.stride_w = 1;
    d.dil_h = d.dil_w = 1;
    d.groups = 1;
    d.act = NN_ACT_NONE;
    return d;
}

nn_graph *nn_graph_new(void)
{
    nn_graph *g = calloc(1, sizeof *g);
    if (g) {
        g->input = -1;
        g->output = -1;
    }
    return g;
}

static void node_free(nn_node *n)
{
    free(n->xs);
    free(n->wt);
    free(n->p0);
    free(n->p1);
    free(n->chan);
}

static void plan_free(nn_graph *g)
{
    free(g->arena);
    free(g->scratch);
    g->arena = g->scratch = NULL;
    g->planned = 0;
    g->plan_bytes = 0;
}

void nn_graph_free(nn_graph *g)
{
    if (!g) return;
    for (int i = 0; i < g->n; i++) node_free(&g->nodes[i]);
    free(g->nodes);
    plan_free(g);
    free(g);
}

int nn_graph_status(const nn_graph *g) { return g ? g->status : UPRES_ERR_INVALID_ARG; }

/* Records the first build error and returns it. */
static int poison(nn_graph *g, int st)
{
    if (g && g->status == UPRES_OK) g->status = st;
    return g ? g->status : st;
}

static int valid_id(const nn_graph *g, int x) { return x >= 0 && x < g->n; }

/* Appends a zeroed node producing `c` channels; NULL after poisoning g. */
static nn_node *add_node(nn_graph *g, nn_op op, int c, int a)
{
    if (g->n == g->cap) {
        int cap = g->cap ? g->cap * 2 : 64;
        if (cap > INT_MAX / 2) {
            poison(g, UPRES_ERR_LIMIT);
            return NULL;
        }
        nn_node *nn = realloc(g->nodes, (size_t)cap * sizeof *nn);
        if (!nn) {
            poison(g, UPRES_ERR_NOMEM);
            return NULL;
        }
        g->nodes = nn;
        g->cap = cap;
    }
    if (g->fused) {
        poison(g, UPRES_ERR_INVALID_ARG);
        return NULL;
    }
    nn_node *n = &g->nodes[g->n++];
    memset(n, 0, sizeof *n);
    n->op = op;
    n->c = c;
    n->a = a;
    n->b = -1;
    n->last = -1;
    return n;
}

/* Common entry check of the unary builders: g usable and x a value. */
static int check_x(nn_graph *g, int x)
{
    if (!g) return UPRES_ERR_INVALID_ARG;
    if (g->status) return g->status;
    if (!valid_id(g, x)) return poison(g, UPRES_ERR_INVALID_ARG);
    return UPRES_OK;
}

static int unary(nn_graph *g, nn_op op, int x, nn_node **out)
{
    int st = check_x(g, x);
    if (st) return st;
    nn_node *n = add_node(g, op, g->nodes[x].c, x);
    if (!n) return g->status;
    *out = n;
    return UPRES_OK;
}

static float *dup_floats(const float *src, size_t n)
{
    float *p = malloc(n ? n * sizeof(float) : 1);
    if (p && n) memcpy(p, src, n * sizeof(float));
    return p;
}

int nn_input(nn_graph *g, int channels)
{
    if (!g) return UPRES_ERR_INVALID_ARG;
    if (g->status) return g->status;
    if (g->input >= 0 || channels < 1 || channels > NN_MAX_SIDE)
        return poison(g, UPRES_ERR_INVALID_ARG);
    if (!add_node(g, OP_INPUT, channels, -1)) return g->status;
    g->input = g->n - 1;
    return g->input;
}

int nn_channels(const nn_graph *g, int x)
{
    if (!g || !valid_id(g, x)) return UPRES_ERR_INVALID_ARG;
    return g->nodes[x].c;
}

static int desc_ok(const nn_conv_desc *d, int in_c, int deconv)
{
    if (!d) return 0;
    if (d->out_c < 1 || d->out_c > NN_MAX_SIDE || d->kh < 1 || d->kw < 1 ||
        d->kh > NN_MAX_PARAM || d->kw > NN_MAX_PARAM)
        return 0;
    if (d->stride_h < 1 || d->stride_w < 1 || d->stride_h > NN_MAX_PARAM ||
        d->stride_w > NN_MAX_PARAM || d->dil_h < 1 || d->dil_w < 1 ||
        d->dil_h > NN_MAX_PARAM || d->dil_w > NN_MAX_PARAM)
        return 0;
    int pads[4] = {d->pad_t, d->pad_l, d->pad_b, d->pad_r};
    for (int i = 0; i < 4; i++)
        if (pads[i] < 0 || pads[i] > NN_MAX_PARAM) return 0;
    if (d->groups < 1 || in_c % d->groups || d->out_c % d->groups) return 0;
    if (deconv) {
        /* PyTorch: output padding must be smaller than stride or dilation. */
        if (d->out_pad_h < 0 || d->out_pad_w < 0) return 0;
        if (d->out_pad_h >= d->stride_h && d->out_pad_h >= d->dil_h) return 0;
        if (d->out_pad_w >= d->stride_w && d->out_pad_w >= d->dil_w) return 0;
    } else if (d->out_pad_h || d->out_pad_w) {
        return 0;
    }
    if (d->act < NN_ACT_NONE || d->act > NN_ACT_SIGMOID) return 0;
    /* Weights and the GEMM depth must stay well inside int / size_t. */
    uint64_t k = (uint64_t)(in_c / d->groups) * (uint64_t)d->kh * (uint64_t)d->kw;
    if (k > (1u << 24) || k * (uint64_t)d->out_c > (1ull << 32)) return 0;
    return 1;
}

static int conv_common(nn_graph *g, int x, const nn_conv_desc *d, const float *weight,
                       const float *bias, int deconv)
{
    int st = check_x(g, x);
    if (st) return st;
    int in_c = g->nodes[x].c;
    if (!weight || !desc_ok(d, in_c, deconv)) return poison(g, UPRES_ERR_INVALID_ARG);
    size_t psize = deconv ? nncpu_deconv_packed_size(d, in_c) : nncpu_conv_packed_size(d, in_c);
    if (psize == 0) return poison(g, UPRES_ERR_OVERFLOW);
    float *packed = malloc(psize * sizeof(float));
    float *b = bias ? dup_floats(bias, (size_t)d->out_c) : NULL;
    if (!packed || (bias && !b)) {
        free(packed);
        free(b);
        return poison(g, UPRES_ERR_NOMEM);
    }
    if (deconv) nncpu_deconv_pack(d, in_c, weight, packed);
    else nncpu_conv_pack(d, in_c, weight, packed);
    nn_node *n = add_node(g, deconv ? OP_DECONV : OP_CONV, d->out_c, x);
    if (!n) {
        free(packed);
        free(b);
        return g->status;
    }
    n->cd = *d;
    n->wt = packed;
    n->p1 = b;
    n->in_c = in_c;
    n->post_scale = 1.0f;
    g->params += (uint64_t)(in_c / d->groups) * (uint64_t)d->kh * (uint64_t)d->kw *
                     (uint64_t)d->out_c + (bias ? (uint64_t)d->out_c : 0);
    return g->n - 1;
}

int nn_conv2d(nn_graph *g, int x, const nn_conv_desc *d, const float *weight, const float *bias)
{
    return conv_common(g, x, d, weight, bias, 0);
}

int nn_deconv2d(nn_graph *g, int x, const nn_conv_desc *d, const float *weight,
                const float *bias)
{
    return conv_common(g, x, d, weight, bias, 1);
}

static int act_node(nn_graph *g, int x, nn_act act, float alpha)
{
    nn_node *n = NULL;
    int st = unary(g, OP_ACT, x, &n);
    if (st) return st;
    n->cd.act = act;
    n->cd.act_alpha = alpha;
    return g->n - 1;
}

int nn_relu(nn_graph *g, int x) { return act_node(g, x, NN_ACT_RELU, 0.0f); }
int nn_leaky_relu(nn_graph *g, int x, float alpha) { return act_node(g, x, NN_ACT_LEAKY, alpha); }
int nn_sigmoid(nn_graph *g, int x) { return act_node(g, x, NN_ACT_SIGMOID, 0.0f); }

int nn_prelu(nn_graph *g, int x, const float *slopes, int n_slopes)
{
    int st = check_x(g, x);
    if (st) return st;
    if (!slopes || (n_slopes != 1 && n_slopes != g->nodes[x].c))
        return poison(g, UPRES_ERR_INVALID_ARG);
    float *s = dup_floats(slopes, (size_t)n_slopes);
    if (!s) return poison(g, UPRES_ERR_NOMEM);
    nn_node *n = NULL;
    if ((st = unary(g, OP_PRELU, x, &n))) {
        free(s);
        return st;
    }
    n->p0 = s;
    n->n0 = n_slopes;
    g->params += (uint64_t)n_slopes;
    return g->n - 1;
}

int nn_binary(nn_graph *g, nn_binop op, int a, int b)
{
    int st = check_x(g, a);
    if (st) return st;
    if (!valid_id(g, b) || op < NN_ADD || op > NN_DIV) return poison(g, UPRES_ERR_INVALID_ARG);
    int ca = g->nodes[a].c, cb = g->nodes[b].c;
    /* Channels broadcast only from a [1][1][1] scalar tensor (checked again
     * at plan time, when spatial sizes are known). */
    if (ca != cb && ca != 1 && cb != 1) return poison(g, UPRES_ERR_INVALID_ARG);
    nn_node *n = add_node(g, OP_BINARY, ca > cb ? ca : cb, a);
    if (!n) return g->status;
    n->b = b;
    n->mode = (int)op;
    return g->n - 1;
}

int nn_affine(nn_graph *g, int x, float scale, float bias)
{
    nn_node *n = NULL;
    int st = unary(g, OP_AFFINE, x, &n);
    if (st) return st;
    n->p0 = dup_floats(&scale, 1);
    n->p1 = dup_floats(&bias, 1);
    if (!n->p0 || !n->p1) return poison(g, UPRES_ERR_NOMEM);
    n->n0 = 0;
    return g->n - 1;
}

int nn_channel_affine(nn_graph *g, int x, const float *scale, const float *bias)
{
    int st = check_x(g, x);
    if (st) return st;
    size_t c = (size_t)g->nodes[x].c;
    float *s = scale ? dup_floats(scale, c) : NULL, *b = bias ? dup_floats(bias, c) : NULL;
    nn_node *n = NULL;
    if ((scale && !s) || (bias && !b)) st = poison(g, UPRES_ERR_NOMEM);
    else st = unary(g, OP_CHAFFINE, x, &n);
    if (st) {
        free(s);
        free(b);
        return st;
    }
    n->p0 = s;
    n->p1 = b;
    n->n0 = 1;
    g->params += (scale ? c : 0) + (bias ? c : 0);
    return g->n - 1;
}

int nn_concat(nn_graph *g, int n, const int *xs)
{
    if (!g) return UPRES_ERR_INVALID_ARG;
    if (g->status) return g->status;
    if (n < 1 || !xs) return poison(g, UPRES_ERR_INVALID_ARG);
    int64_t c = 0;
    for (int i = 0; i < n; i++) {
        if (!valid_id(g, xs[i])) return poison(g, UPRES_ERR_INVALID_ARG);
        c += g->nodes[xs[i]].c;
        if (c > NN_MAX_SIDE) return poison(g, UPRES_ERR_LIMIT);
    }
    int *copy = malloc((size_t)n * sizeof *copy);
    if (!copy) return poison(g, UPRES_ERR_NOMEM);
    memcpy(copy, xs, (size_t)n * sizeof *copy);
    nn_node *nd = add_node(g, OP_CONCAT, (int)c, xs[0]);
    if (!nd) {
        free(copy);
        return g->status;
    }
    nd->xs = copy;
    nd->nxs = n;
    return g->n - 1;
}

int nn_pixel_shuffle(nn_graph *g, int x, int r)
{
    int st = check_x(g, x);
    if (st) return st;
    if (r < 1 || r > NN_MAX_PARAM || g->nodes[x].c % (r * r))
        return poison(g, UPRES_ERR_INVALID_ARG);
    nn_node *n = add_node(g, OP_PSHUF, g->nodes[x].c / (r * r), x);
    if (!n) return g->status;
    n->i[0] = r;
    return g->n - 1;
}

int nn_pixel_unshuffle(nn_graph *g, int x, int r)
{
    int st = check_x(g, x);
    if (st) return st;
    if (r < 1 || r > NN_MAX_PARAM || (int64_t)g->nodes[x].c * r * r > NN_MAX_SIDE)
        return poison(g, UPRES_ERR_INVALID_ARG);
    nn_node *n = add_node(g, OP_PUNSHUF, g->nodes[x].c * r * r, x);
    if (!n) return g->status;
    n->i[0] = r;
    return g->n - 1;
}

int nn_interp(nn_graph *g, int x, nn_interp_mode mode, float scale_h, float scale_w, int out_h,
              int out_w, int align_corners)
{
    int st = check_x(g, x);
    if (st) return st;
    if (mode < NN_INTERP_NEAREST || mode > NN_INTERP_BICUBIC || out_h < 0 || out_w < 0 ||
        out_h > NN_MAX_SIDE || out_w > NN_MAX_SIDE ||
        (out_h == 0 && !(scale_h > 0.0f && scale_h <= NN_MAX_SIDE)) ||
        (out_w == 0 && !(scale_w > 0.0f && scale_w <= NN_MAX_SIDE)))
        return poison(g, UPRES_ERR_INVALID_ARG);
    nn_node *n = NULL;
    if ((st = unary(g, OP_INTERP, x, &n))) return st;
    n->mode = (int)mode;
    n->sh = out_h > 0 ? 0.0f : scale_h;
    n->sw = out_w > 0 ? 0.0f : scale_w;
    n->oh = out_h;
    n->ow = out_w;
    n->align = align_corners ? 1 : 0;
    return g->n - 1;
}

int nn_crop(nn_graph *g, int x, int t, int l, int b, int r)
{
    int st = check_x(g, x);
    if (st) return st;
    if (t < 0 || l < 0 || b < 0 || r < 0 || t > NN_MAX_SIDE || l > NN_MAX_SIDE ||
        b > NN_MAX_SIDE || r > NN_MAX_SIDE)
        return poison(g, UPRES_ERR_INVALID_ARG);
    nn_node *n = NULL;
    if ((st = unary(g, OP_CROP, x, &n))) return st;
    n->i[0] = t;
    n->i[1] = l;
    n->i[2] = b;
    n->i[3] = r;
    return g->n - 1;
}

int nn_crop_like(nn_graph *g, int x, int ref, int off_h, int off_w)
{
    int st = check_x(g, x);
    if (st) return st;
    if (!valid_id(g, ref) || off_h < 0 || off_w < 0 || off_h > NN_MAX_SIDE ||
        off_w > NN_MAX_SIDE)
        return poison(g, UPRES_ERR_INVALID_ARG);
    nn_node *n = NULL;
    if ((st = unary(g, OP_CROP_LIKE, x, &n))) return st;
    n->b = ref;
    n->i[0] = off_h;
    n->i[1] = off_w;
    return g->n - 1;
}

int nn_pad(nn_graph *g, int x, int t, int l, int b, int r, nn_pad_mode mode, float value)
{
    int st = check_x(g, x);
    if (st) return st;
    if (t < 0 || l < 0 || b < 0 || r < 0 || t > NN_MAX_SIDE || l > NN_MAX_SIDE ||
        b > NN_MAX_SIDE || r > NN_MAX_SIDE || mode < NN_PAD_ZERO || mode > NN_PAD_REPLICATE)
        return poison(g, UPRES_ERR_INVALID_ARG);
    nn_node *n = NULL;
    if ((st = unary(g, OP_PAD, x, &n))) return st;
    n->i[0] = t;
    n->i[1] = l;
    n->i[2] = b;
    n->i[3] = r;
    n->mode = (int)mode;
    n->f0 = value;
    return g->n - 1;
}

int nn_global_avg_pool(nn_graph *g, int x)
{
    nn_node *n = NULL;
    int st = unary(g, OP_GAP, x, &n);
    if (st) return st;
    return g->n - 1;
}

int nn_graph_set_output(nn_graph *g, int x)
{
    int st = check_x(g, x);
    if (st) return st;
    /* After fusion only values that still exist can become the output. */
    if (g->input < 0 || g->nodes[x].absorbed) return poison(g, UPRES_ERR_INVALID_ARG);
    g->output = x;
    plan_free(g);
    return UPRES_OK;
}

int nn_graph_out_channels(const nn_graph *g)
{
    if (!g || g->status || g->output < 0) return g && g->status ? g->status : UPRES_ERR_INVALID_ARG;
    return g->nodes[g->output].c;
}

uint64_t nn_graph_params(const nn_graph *g) { return g ? g->params : 0; }

int nn_graph_wino_shared(const nn_graph *g)
{
    int n = 0;
    if (g)
        for (int i = 0; i <= g->output; i++)
            if (g->nodes[i].needed && g->nodes[i].wc_done > 0) n++;
    return n;
}

int nn_graph_global_pools(const nn_graph *g)
{
    int k = 0;
    for (int i = 0; g && i < g->n; i++) k += g->nodes[i].op == OP_GAP;
    return k;
}

/* ---- Shape inference ------------------------------------------------------- */

/* Checks one inferred side; names the node on failure. */
static int side_ok(upres_ctx *ctx, const nn_node *n, int id, int64_t h, int64_t w)
{
    if (h < 1 || w < 1)
        return upres__fail(ctx, UPRES_ERR_INVALID_ARG,
                           "nn: %s (node %d) gives an empty %lldx%lld output", op_names[n->op],
                           id, (long long)h, (long long)w);
    if (h > NN_MAX_SIDE || w > NN_MAX_SIDE)
        return upres__fail(ctx, UPRES_ERR_LIMIT,
                           "nn: %s (node %d) output %lldx%lld exceeds the %d px side limit",
                           op_names[n->op], id, (long long)h, (long long)w, NN_MAX_SIDE);
    return UPRES_OK;
}

/*
 * Fusion, done once before the first shape inference. Each convolution
 * absorbs, when the value between is read by nothing else:
 *   - a concat feeding it (the conv then reads the concat's inputs in place;
 *     RRDBNet's dense blocks would otherwise copy every feature four times),
 *   - a following activation or PReLU, if the conv has none,
 *   - then a following scalar affine with zero bias (x*s), and an add of
 *     another value of the same channel count (a residual).
 * The last absorbed node becomes the conv (it keeps its id, so readers of
 * the chain's result are untouched); the others are left unread and so are
 * never planned or run. A fused residual must be the conv's shape or
 * [c][1][1] (checked at plan time).
 *
 * An add of a pixel shuffle and a nearest interpolation, each read by
 * nothing else (the upsampling tail of SRVGGNetCompact, which adds the
 * input scaled up to the shuffled output), becomes one OP_SHUF_ADD that
 * reads their inputs: one pass over the output instead of three, and
 * neither intermediate is stored.
 */
static int fuse(nn_graph *g)
{
    int *users = calloc((size_t)g->n, sizeof *users), *user = malloc((size_t)g->n * sizeof *user);
    if (!users || !user) {
        free(users);
        free(user);
        return UPRES_ERR_NOMEM;
    }
    for (int i = 0; i < g->n; i++) user[i] = -1;
    for (int i = 0; i < g->n; i++) {
        const nn_node *n = &g->nodes[i];
        int refs[2] = {n->a, n->b};
        for (int k = 0; k < 2; k++)
            if (refs[k] >= 0) users[refs[k]]++, user[refs[k]] = i;
        for (int k = 0; k < n->nxs; k++) users[n->xs[k]]++, user[n->xs[k]] = i;
    }
    users[g->output]++; /* the caller reads it */
    int st = UPRES_OK;
    for (int i = 0; i < g->n && st == UPRES_OK; i++) {
        nn_node *c = &g->nodes[i];
        /* A conv made by an earlier fusion (it has its planes array) is
         * complete: a second scale or residual has no place in it. */
        if (c->op != OP_CONV || c->chan) continue;
        nn_node *K = &g->nodes[c->a];
        if (K->op == OP_CONCAT && users[c->a] == 1) {
            c->xs = K->xs;
            c->nxs = K->nxs;
            K->xs = NULL;
            K->nxs = 0;
            K->absorbed = 1;
            c->a = c->xs[0];
        }
        nn_act act = c->cd.act;
        float alpha = c->cd.act_alpha, scale = 1.0f;
        float *slopes = NULL;
        int nslopes = 0, res = -1, tail = i, cur = i, prelu = -1;
        int chain[4] = {i}, nchain = 1; /* the nodes merged into one */
        int next = users[cur] == 1 ? user[cur] : -1;
        nn_node *N = next >= 0 ? &g->nodes[next] : NULL;
        if (N && act == NN_ACT_NONE && N->op == OP_ACT && N->a == cur) {
            act = N->cd.act;
            alpha = N->cd.act_alpha;
            tail = cur = chain[nchain++] = next;
        } else if (N && act == NN_ACT_NONE && N->op == OP_PRELU && N->a == cur) {
            act = NN_ACT_PRELU;
            slopes = N->p0;
            nslopes = N->n0;
            tail = cur = prelu = chain[nchain++] = next;
        }
        /* A residual only after a conv that keeps the spatial size, so the
         * add cannot be one that broadcasts the conv's output. */
        const nn_conv_desc *d = &c->cd;
        int same = d->stride_h == 1 && d->stride_w == 1 &&
                   d->pad_t + d->pad_b == d->dil_h * (d->kh - 1) &&
                   d->pad_l + d->pad_r == d->dil_w * (d->kw - 1);
        next = same && users[cur] == 1 ? user[cur] : -1;
        N = next >= 0 ? &g->nodes[next] : NULL;
        if (N && N->op == OP_AFFINE && N->n0 == 0 && N->p1[0] == 0.0f && users[next] == 1) {
            int add = user[next];
            nn_node *B = &g->nodes[add];
            if (B->op == OP_BINARY && B->mode == NN_ADD && (B->a == next) != (B->b == next)) {
                int other = B->a == next ? B->b : B->a;
                if (g->nodes[other].c == c->c) {
                    scale = N->p0[0];
                    res = other;
                    chain[nchain++] = next;
                    tail = chain[nchain++] = add;
                }
            }
        } else if (N && N->op == OP_BINARY && N->mode == NN_ADD && (N->a == cur) != (N->b == cur)) {
            int other = N->a == cur ? N->b : N->a;
            if (g->nodes[other].c == c->c) {
                res = other;
                tail = chain[nchain++] = next;
            }
        }
        nn_node *T = &g->nodes[tail];
        T->chan = malloc((size_t)c->in_c * sizeof *T->chan);
        if (!T->chan) {
            st = UPRES_ERR_NOMEM;
            break;
        }
        if (tail == i) continue;
        /* Move the conv into the tail node, and the slopes to it from an
         * absorbed PReLU. */
        if (T->p0 != slopes) free(T->p0);
        if (prelu >= 0) g->nodes[prelu].p0 = NULL;
        free(T->p1);
        free(T->xs);
        T->op = OP_CONV;
        T->c = c->c;
        T->a = c->a;
        T->b = res;
        T->xs = c->xs;
        T->nxs = c->nxs;
        T->cd = c->cd;
        T->cd.act = act;
        T->cd.act_alpha = alpha;
        T->wt = c->wt;
        T->p1 = c->p1;
        T->p0 = slopes;
        T->n0 = nslopes;
        T->in_c = c->in_c;
        T->post_scale = scale;
        c->xs = NULL;
        c->nxs = 0;
        c->wt = NULL;
        c->p1 = NULL;
        /* No node reads the absorbed ones now, so none is needed. */
        c->a = -1;
        for (int k = 0; k < nchain; k++)
            if (chain[k] != tail) g->nodes[chain[k]].absorbed = 1;
    }
    for (int i = 0; i < g->n && st == UPRES_OK; i++) {
        nn_node *B = &g->nodes[i];
        if (B->op != OP_BINARY || B->mode != NN_ADD || B->absorbed || B->a == B->b) continue;
        for (int k = 0; k < 2; k++) {
            int p = k ? B->b : B->a, q = k ? B->a : B->b;
            nn_node *P = &g->nodes[p], *I = &g->nodes[q];
            if (P->op != OP_PSHUF || I->op != OP_INTERP || I->mode != NN_INTERP_NEAREST ||
                users[p] != 1 || users[q] != 1 || P->c != B->c || I->c != B->c)
                continue;
            B->op = OP_SHUF_ADD;
            B->a = P->a;
            B->b = I->a;
            B->i[0] = P->i[0];
            B->sh = I->sh;
            B->sw = I->sw;
            B->oh = I->oh;
            B->ow = I->ow;
            P->a = I->a = -1;
            P->absorbed = I->absorbed = 1;
            break;
        }
    }
    free(users);
    free(user);
    if (st == UPRES_OK) g->fused = 1;
    return st;
}

/* Marks the nodes the output depends on and each value's last reader. */
static void mark_needed(nn_graph *g)
{
    for (int i = 0; i < g->n; i++) {
        g->nodes[i].needed = 0;
        g->nodes[i].last = -1;
    }
    g->nodes[g->output].needed = 1;
    for (int i = g->output; i >= 0; i--) {
        nn_node *n = &g->nodes[i];
        if (!n->needed) continue;
        for (int k = 0; k < n->nxs; k++) g->nodes[n->xs[k]].needed = 1;
        if (n->op != OP_CONCAT) {
            if (n->a >= 0) g->nodes[n->a].needed = 1;
            /* crop_like reads only the shape of `b`, but that shape must be
             * inferred, so b is needed (it stays alive no longer than its
             * other readers need: crop_like does not extend its life). */
            if (n->b >= 0) g->nodes[n->b].needed = 1;
        }
    }
    for (int i = 0; i <= g->output; i++) {
        nn_node *n = &g->nodes[i];
        if (!n->needed) continue;
        for (int k = 0; k < n->nxs; k++) g->nodes[n->xs[k]].last = i;
        if (n->op != OP_CONCAT) {
            if (n->a >= 0) g->nodes[n->a].last = i;
            if (n->b >= 0 && n->op != OP_CROP_LIKE) g->nodes[n->b].last = i;
        }
    }
}

/* The input values of conv n: the concat it absorbed, or its a. */
static int conv_parts(const nn_node *n, const int **parts)
{
    if (n->nxs) {
        *parts = n->xs;
        return n->nxs;
    }
    *parts = &n->a;
    return 1;
}

/* 1 when conv n reads all of conv p's input first, padded the same way, so
 * the Winograd transforms of p's input are the first of n's. */
static int conv_extends(const nn_node *p, const nn_node *n)
{
    const int *pp, *np;
    int pn = conv_parts(p, &pp), nn = conv_parts(n, &np);
    if (nn < pn || p->cd.pad_t != n->cd.pad_t || p->cd.pad_l != n->cd.pad_l ||
        p->cd.pad_b != n->cd.pad_b || p->cd.pad_r != n->cd.pad_r)
        return 0;
    for (int k = 0; k < pn; k++)
        if (pp[k] != np[k]) return 0;
    return 1;
}

/* Links the needed Winograd convolutions into chains that share their
 * transformed input (nncpu_conv_io.wcache): a conv joins the chain of the
 * Winograd conv run just before it when it extends that conv's input
 * (conv_extends), as in RRDBNet's dense blocks, where the five convs
 * would otherwise transform the block's input five times. Any other
 * Winograd conv closes the chain. The planner gives each chain's cache an
 * arena range alive from its first conv to its last (wc_last). The
 * chain's inputs stay alive as long (its last conv reads them all), so
 * what the cache holds stays valid. Depends on the structure alone. */
static void chain_wino(nn_graph *g)
{
    int prev = -1, first = -1;
    for (int i = 0; i <= g->output; i++) {
        nn_node *n = &g->nodes[i];
        n->wc_done = -1;
        n->wc_stride = 0;
        if (!n->needed || n->op != OP_CONV || !nncpu_conv_winograd(&n->cd, n->in_c)) continue;
        if (prev >= 0 && conv_extends(&g->nodes[prev], n)) {
            g->nodes[first].wc_done = 0;
            n->wc_done = g->nodes[prev].in_c;
        } else {
            first = i;
        }
        prev = i;
    }
    /* Backwards: each chain's capacity is its last conv's input. */
    int stride = 0, last = -1;
    for (int i = g->output; i >= 0; i--) {
        nn_node *n = &g->nodes[i];
        if (n->wc_done < 0) continue;
        if (stride == 0) {
            stride = n->in_c;
            last = i;
        }
        n->wc_stride = stride;
        n->wc_last = last;
        if (n->wc_done == 0) stride = 0;
    }
}

/* Infers h, w of every needed node for an in_h x in_w input. */
static int infer(nn_graph *g, upres_ctx *ctx, int in_h, int in_w)
{
    if (!g) return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "nn: no graph");
    if (g->status)
        return upres__fail(ctx, g->status, "nn: the graph failed to build (%s)",
                           upres_strerror(g->status));
    if (g->input < 0 || g->output < 0)
        return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "nn: graph has no %s",
                           g->input < 0 ? "input" : "output");
    if (in_h < 1 || in_w < 1 || in_h > NN_MAX_SIDE || in_w > NN_MAX_SIDE)
        return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "nn: input size %dx%d out of range",
                           in_w, in_h);
    if (!g->fused && fuse(g))
        return upres__fail(ctx, UPRES_ERR_NOMEM, "nn: out of memory preparing the graph");
    mark_needed(g);
    chain_wino(g);
    for (int i = 0; i <= g->output; i++) {
        nn_node *n = &g->nodes[i];
        if (!n->needed) continue;
        const nn_node *A = n->a >= 0 ? &g->nodes[n->a] : NULL;
        int64_t h = 0, w = 0;
        switch (n->op) {
        case OP_INPUT:
            h = in_h;
            w = in_w;
            break;
        case OP_CONV: {
            const nn_conv_desc *d = &n->cd;
            int64_t eh = (int64_t)d->dil_h * (d->kh - 1) + 1;
            int64_t ew = (int64_t)d->dil_w * (d->kw - 1) + 1;
            int64_t ph = (int64_t)A->h + d->pad_t + d->pad_b;
            int64_t pw = (int64_t)A->w + d->pad_l + d->pad_r;
            if (ph < eh || pw < ew)
                return upres__fail(ctx, UPRES_ERR_INVALID_ARG,
                                   "nn: conv2d (node %d): %lldx%lld kernel extent larger than "
                                   "the padded %lldx%lld input",
                                   i, (long long)ew, (long long)eh, (long long)pw, (long long)ph);
            h = (ph - eh) / d->stride_h + 1;
            w = (pw - ew) / d->stride_w + 1;
            for (int k = 1; k < n->nxs; k++) {
                const nn_node *X = &g->nodes[n->xs[k]];
                if (X->h != A->h || X->w != A->w)
                    return upres__fail(ctx, UPRES_ERR_INVALID_ARG,
                                       "nn: concat (node %d): input %d is %dx%d, input 0 %dx%d",
                                       i, k, X->w, X->h, A->w, A->h);
            }
            if (n->b >= 0) {
                const nn_node *R = &g->nodes[n->b];
                if (!(R->h == h && R->w == w) && !(R->h == 1 && R->w == 1))
                    return upres__fail(ctx, UPRES_ERR_INVALID_ARG,
                                       "nn: binary (node %d, fused add): shapes %lldx%lld and "
                                       "%dx%d do not broadcast",
                                       i, (long long)w, (long long)h, R->w, R->h);
            }
            break;
        }
        case OP_DECONV: {
            const nn_conv_desc *d = &n->cd;
            h = ((int64_t)A->h - 1) * d->stride_h - d->pad_t - d->pad_b +
                (int64_t)d->dil_h * (d->kh - 1) + 1 + d->out_pad_h;
            w = ((int64_t)A->w - 1) * d->stride_w - d->pad_l - d->pad_r +
                (int64_t)d->dil_w * (d->kw - 1) + 1 + d->out_pad_w;
            break;
        }
        case OP_ACT:
        case OP_PRELU:
        case OP_AFFINE:
        case OP_CHAFFINE:
            h = A->h;
            w = A->w;
            break;
        case OP_BINARY: {
            const nn_node *B = &g->nodes[n->b];
            int sa = A->h == 1 && A->w == 1, sb = B->h == 1 && B->w == 1;
            /* A channel mismatch is allowed only from a [1][1][1] side. */
            int chan_ok = A->c == B->c || (A->c == 1 && sa) || (B->c == 1 && sb);
            int space_ok = (A->h == B->h && A->w == B->w) || sa || sb;
            if (!chan_ok || !space_ok)
                return upres__fail(ctx, UPRES_ERR_INVALID_ARG,
                                   "nn: binary (node %d): shapes %dx%dx%d and %dx%dx%d do not "
                                   "broadcast",
                                   i, A->c, A->h, A->w, B->c, B->h, B->w);
            h = sa ? B->h : A->h;
            w = sa ? B->w : A->w;
            break;
        }
        case OP_CONCAT:
            h = g->nodes[n->xs[0]].h;
            w = g->nodes[n->xs[0]].w;
            for (int k = 1; k < n->nxs; k++) {
                const nn_node *X = &g->nodes[n->xs[k]];
                if (X->h != h || X->w != w)
                    return upres__fail(ctx, UPRES_ERR_INVALID_ARG,
                                       "nn: concat (node %d): input %d is %dx%d, input 0 %lldx%lld",
                                       i, k, X->w, X->h, (long long)w, (long long)h);
            }
            break;
        case OP_PSHUF:
            h = (int64_t)A->h * n->i[0];
            w = (int64_t)A->w * n->i[0];
            break;
        case OP_PUNSHUF:
            if (A->h % n->i[0] || A->w % n->i[0])
                return upres__fail(ctx, UPRES_ERR_INVALID_ARG,
                                   "nn: pixel_unshuffle (node %d): %dx%d is not divisible by %d",
                                   i, A->w, A->h, n->i[0]);
            h = A->h / n->i[0];
            w = A->w / n->i[0];
            break;
        case OP_INTERP:
            h = n->oh > 0 ? n->oh : (int64_t)floor((double)A->h * (double)n->sh);
            w = n->ow > 0 ? n->ow : (int64_t)floor((double)A->w * (double)n->sw);
            break;
        case OP_CROP:
            if ((int64_t)n->i[0] + n->i[2] >= A->h || (int64_t)n->i[1] + n->i[3] >= A->w)
                return upres__fail(ctx, UPRES_ERR_INVALID_ARG,
                                   "nn: crop (node %d): removing %d+%d rows and %d+%d columns "
                                   "from %dx%d leaves nothing",
                                   i, n->i[0], n->i[2], n->i[1], n->i[3], A->w, A->h);
            h = A->h - n->i[0] - n->i[2];
            w = A->w - n->i[1] - n->i[3];
            break;
        case OP_CROP_LIKE: {
            const nn_node *R = &g->nodes[n->b];
            if ((int64_t)n->i[0] + R->h > A->h || (int64_t)n->i[1] + R->w > A->w)
                return upres__fail(ctx, UPRES_ERR_INVALID_ARG,
                                   "nn: crop_like (node %d): %dx%d at (%d,%d) does not fit in "
                                   "%dx%d",
                                   i, R->w, R->h, n->i[1], n->i[0], A->w, A->h);
            h = R->h;
            w = R->w;
            break;
        }
        case OP_PAD:
            if (n->mode == NN_PAD_REFLECT &&
                (n->i[0] >= A->h || n->i[2] >= A->h || n->i[1] >= A->w || n->i[3] >= A->w))
                return upres__fail(ctx, UPRES_ERR_INVALID_ARG,
                                   "nn: pad (node %d): reflect padding %d/%d/%d/%d needs a side "
                                   "larger than the pad, input is %dx%d",
                                   i, n->i[0], n->i[1], n->i[2], n->i[3], A->w, A->h);
            h = (int64_t)A->h + n->i[0] + n->i[2];
            w = (int64_t)A->w + n->i[1] + n->i[3];
            break;
        case OP_GAP:
            h = w = 1;
            break;
        case OP_SHUF_ADD: {
            /* The interpolation's own size must be the shuffle's, as the
             * add of the two required. */
            const nn_node *B = &g->nodes[n->b];
            h = (int64_t)A->h * n->i[0];
            w = (int64_t)A->w * n->i[0];
            int64_t ih = n->oh > 0 ? n->oh : (int64_t)floor((double)B->h * (double)n->sh);
            int64_t iw = n->ow > 0 ? n->ow : (int64_t)floor((double)B->w * (double)n->sw);
            if (ih != h || iw != w)
                return upres__fail(ctx, UPRES_ERR_INVALID_ARG,
                                   "nn: binary (node %d, fused shuffle and interp): shapes "
                                   "%lldx%lld and %lldx%lld do not match",
                                   i, (long long)w, (long long)h, (long long)iw, (long long)ih);
            break;
        }
        }
        int st = side_ok(ctx, n, i, h, w);
        if (st) return st;
        n->h = (int)h;
        n->w = (int)w;
    }
    return UPRES_OK;
}

int nn_graph_out_size(nn_graph *g, upres_ctx *ctx, int in_h, int in_w, int *out_h, int *out_w)
{
    int st = infer(g, ctx, in_h, in_w);
    if (st) return st;
    if (out_h) *out_h = g->nodes[g->output].h;
    if (out_w) *out_w = g->nodes[g->output].w;
    return UPRES_OK;
}

/* ---- Planning -------------------------------------------------------------- */

typedef struct live_range {
    size_t off, size;
    int last; /* the range is free after node `last` runs */
} live_range;

/* Value floats of node n, rounded up to the arena alignment; 0 on overflow. */
static size_t value_floats(const nn_node *n)
{
    size_t s;
    if (!upres__mul_size((size_t)n->c, (size_t)n->h, &s) || !upres__mul_size(s, (size_t)n->w, &s) ||
        s > SIZE_MAX / 8)
        return 0;
    return (s + NN_ALIGN_FLOATS - 1) / NN_ALIGN_FLOATS * NN_ALIGN_FLOATS;
}

/* Scratch floats node n needs (total over all slots); 0 with *ok = 0 on
 * overflow. */
static size_t node_scratch(const nn_graph *g, const nn_node *n, int slots, int *ok)
{
    size_t s = 0;
    *ok = 1;
    const nn_node *A = n->a >= 0 ? &g->nodes[n->a] : NULL;
    switch (n->op) {
    case OP_CONV: {
        size_t per = nncpu_conv_scratch(&n->cd, n->in_c, n->h, n->w);
        size_t per_al = (per + NN_ALIGN_FLOATS - 1) / NN_ALIGN_FLOATS * NN_ALIGN_FLOATS;
        if (per == 0 || per_al < per || !upres__mul_size(per_al, (size_t)slots, &s)) *ok = 0;
        break;
    }
    case OP_DECONV:
        s = nncpu_deconv_scratch(&n->cd, A->c, A->h, A->w);
        if (s == 0) *ok = 0;
        break;
    case OP_INTERP: s = nncpu_interp_scratch(n->h, n->w); break;
    case OP_SHUF_ADD: s = nncpu_shuffle_add_scratch(n->h, n->w); break;
    default: break;
    }
    return s;
}

/* First fit of a range of `size` floats between the live ranges (sorted
 * by offset), alive until node `last` has run. Returns its offset and
 * raises *top to its end, or returns SIZE_MAX when the arena would
 * overflow. `live` has room for one more range. */
static size_t live_add(live_range *live, int *nlive, size_t size, int last, size_t *top)
{
    size_t off = 0, end;
    int pos = 0;
    for (; pos < *nlive; pos++) {
        if (live[pos].off >= off + size) break;
        size_t e = live[pos].off + live[pos].size;
        if (e > off) off = e;
    }
    if (!upres__add_size(off, size, &end)) return SIZE_MAX;
    memmove(&live[pos + 1], &live[pos], (size_t)(*nlive - pos) * sizeof *live);
    live[pos] = (live_range){off, size, last};
    (*nlive)++;
    if (end > *top) *top = end;
    return off;
}

/* Places every needed value and every Winograd chain's cache (for the
 * sizes of the last inference) and returns arena and scratch sizes in
 * floats; with `commit` also records the placement and shapes as the plan
 * (n->off, n->wc_off, n->ph, n->pw). */
static int place(nn_graph *g, upres_ctx *ctx, int slots, int commit, size_t *arena_floats,
                 size_t *scratch_floats)
{
    /* Values, plus one chain cache: chains do not overlap in time. */
    live_range *live = malloc((size_t)(g->output + 2) * sizeof *live);
    if (!live) return upres__fail(ctx, UPRES_ERR_NOMEM, "nn: out of memory planning buffers");
    int nlive = 0;
    size_t top = 0, scratch = 0, chain_off = 0;
    for (int i = 0; i <= g->output; i++) {
        nn_node *n = &g->nodes[i];
        if (!n->needed) continue;
        int ok;
        size_t s = node_scratch(g, n, slots, &ok);
        size_t size = value_floats(n);
        if (!ok || size == 0) {
            free(live);
            return upres__fail(ctx, UPRES_ERR_OVERFLOW, "nn: %s (node %d) %dx%dx%d is too large",
                               op_names[n->op], i, n->c, n->h, n->w);
        }
        if (s > scratch) scratch = s;
        if (commit) {
            n->ph = n->h;
            n->pw = n->w;
        }
        if (n->wc_done == 0) {
            /* The chain's cache, alive until its last conv has run. */
            size_t cf = nncpu_wino_cache_floats(n->wc_stride, n->h, n->w);
            if (cf > SIZE_MAX / 8) cf = 0;
            cf = (cf + NN_ALIGN_FLOATS - 1) / NN_ALIGN_FLOATS * NN_ALIGN_FLOATS;
            chain_off = cf ? live_add(live, &nlive, cf, n->wc_last, &top) : SIZE_MAX;
            if (chain_off == SIZE_MAX) {
                free(live);
                return upres__fail(ctx, UPRES_ERR_OVERFLOW, "nn: activation arena overflows");
            }
        }
        if (commit && n->wc_done >= 0) n->wc_off = chain_off;
        if (n->op != OP_INPUT && i != g->output) {
            size_t off = live_add(live, &nlive, size, n->last, &top);
            if (off == SIZE_MAX) {
                free(live);
                return upres__fail(ctx, UPRES_ERR_OVERFLOW, "nn: activation arena overflows");
            }
            if (commit) n->off = off;
        }
        /* Ranges whose last reader is node i die now. */
        for (int k = 0; k < nlive;) {
            if (live[k].last <= i) {
                memmove(&live[k], &live[k + 1], (size_t)(nlive - k - 1) * sizeof *live);
                nlive--;
            } else {
                k++;
            }
        }
    }
    free(live);
    *arena_floats = top;
    *scratch_floats = scratch;
    return UPRES_OK;
}

/* Shapes, placement and the memory check; allocates only when `alloc`. */
static int plan_common(nn_graph *g, upres_ctx *ctx, int in_h, int in_w, size_t *bytes, int alloc)
{
    if (alloc && g) plan_free(g);
    int st = infer(g, ctx, in_h, in_w);
    if (st) return st;
    int slots = ctx ? upres_ctx_threads(ctx) : 1;
    if (slots < 1) slots = 1;
    size_t af = 0, sf = 0, total;
    if ((st = place(g, ctx, slots, alloc, &af, &sf))) return st;
    if (!upres__add_size(af, sf, &total) || !upres__mul_size(total, sizeof(float), &total))
        return upres__fail(ctx, UPRES_ERR_OVERFLOW, "nn: activation memory overflows");
    uint64_t limit = upres__limits(ctx)->max_memory_bytes;
    if ((uint64_t)total > limit)
        return upres__fail(ctx, UPRES_ERR_LIMIT,
                           "nn: %dx%d input needs %llu MiB of activations, limit %llu MiB", in_w,
                           in_h, (unsigned long long)(total >> 20),
                           (unsigned long long)(limit >> 20));
    if (bytes) *bytes = total;
    if (!alloc) return UPRES_OK;
    /* 64-byte aligned: aligned_alloc wants a multiple of the alignment. */
    size_t abytes = af * sizeof(float), sbytes = sf * sizeof(float);
    g->arena = abytes ? aligned_alloc(64, abytes) : NULL;
    g->scratch = sbytes ? aligned_alloc(64, (sbytes + 63) / 64 * 64) : NULL;
    if ((abytes && !g->arena) || (sbytes && !g->scratch)) {
        plan_free(g);
        return upres__fail(ctx, UPRES_ERR_NOMEM, "nn: cannot allocate %llu MiB of activations",
                           (unsigned long long)(total >> 20));
    }
    g->slots = slots;
    g->plan_h = in_h;
    g->plan_w = in_w;
    g->plan_bytes = total;
    g->planned = 1;
    return UPRES_OK;
}

int nn_graph_plan(nn_graph *g, upres_ctx *ctx, int in_h, int in_w, size_t *bytes)
{
    return plan_common(g, ctx, in_h, in_w, bytes, 1);
}

int nn_graph_plan_bytes(nn_graph *g, upres_ctx *ctx, int in_h, int in_w, size_t *bytes)
{
    if (g && g->planned && g->plan_h == in_h && g->plan_w == in_w &&
        g->slots == (ctx ? upres_ctx_threads(ctx) : 1)) {
        if (bytes) *bytes = g->plan_bytes;
        return UPRES_OK;
    }
    return plan_common(g, ctx, in_h, in_w, bytes, 0);
}

/* ---- Running --------------------------------------------------------------- */

static nn_tensor value_tensor(const nn_graph *g, int id, const nn_tensor *in, nn_tensor *out)
{
    const nn_node *n = &g->nodes[id];
    nn_tensor t = {n->c, n->ph, n->pw, NULL};
    if (id == g->input) t.data = in->data;
    else if (id == g->output) t.data = out->data;
    else t.data = g->arena + n->off;
    return t;
}

/* A conv node's operands: its input planes (of a or of the fused concat
 * xs), epilogue and residual. */
static int run_conv(nn_graph *g, nn_node *n, const nn_tensor *in, nn_tensor *out, nn_tensor *y,
                    upres_ctx *ctx)
{
    nncpu_conv_io io;
    memset(&io, 0, sizeof io);
    int nparts = n->nxs ? n->nxs : 1, c = 0;
    for (int k = 0; k < nparts; k++) {
        nn_tensor t = value_tensor(g, n->nxs ? n->xs[k] : n->a, in, out);
        for (int ch = 0; ch < t.c; ch++) n->chan[c++] = t.data + (size_t)ch * t.h * t.w;
        io.h = t.h;
        io.w = t.w;
    }
    io.chan = n->chan;
    io.in_c = c;
    io.out = y;
    io.bias = n->p1;
    io.act = n->cd.act;
    io.alpha = n->cd.act_alpha;
    io.slopes = n->p0;
    io.nslopes = n->n0;
    io.scale = n->post_scale;
    if (n->wc_done >= 0) {
        io.wcache = g->arena + n->wc_off;
        io.wc_done = n->wc_done;
        io.wc_stride = n->wc_stride;
    }
    if (n->b >= 0) {
        nn_tensor r = value_tensor(g, n->b, in, out);
        io.res = r.data;
        io.res_full = !(r.h == 1 && r.w == 1) || (y->h == 1 && y->w == 1);
    }
    return nncpu_conv2d(ctx, &io, &n->cd, n->wt, g->scratch, g->slots);
}

int nn_graph_run(nn_graph *g, upres_ctx *ctx, const nn_tensor *in, nn_tensor *out)
{
    if (!g || !in || !out || !in->data || !out->data)
        return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "nn: run: NULL argument");
    if (!g->planned)
        return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "nn: run: graph not planned");
    const nn_node *I = &g->nodes[g->input];
    if (in->c != I->c || in->h != g->plan_h || in->w != g->plan_w)
        return upres__fail(ctx, UPRES_ERR_INVALID_ARG,
                           "nn: run: input %dx%dx%d, planned for %dx%dx%d", in->c, in->h, in->w,
                           I->c, g->plan_h, g->plan_w);
    const nn_node *O = &g->nodes[g->output];
    out->c = O->c;
    out->h = O->ph;
    out->w = O->pw;
    if (g->output == g->input) {
        memcpy(out->data, in->data, (size_t)O->c * (size_t)O->ph * (size_t)O->pw * sizeof(float));
        return UPRES_OK;
    }
    uint64_t total = (uint64_t)g->output + 1;
    for (int i = 0; i <= g->output; i++) {
        nn_node *n = &g->nodes[i];
        if (!n->needed || n->op == OP_INPUT) continue;
        int st = upres__progress(ctx, "nn", (uint64_t)i, total);
        if (st) return upres__fail(ctx, st, "nn: cancelled");
        nn_tensor y = value_tensor(g, i, in, out);
        nn_tensor a = n->a >= 0 ? value_tensor(g, n->a, in, out) : y;
        switch (n->op) {
        case OP_INPUT: break;
        case OP_CONV: st = run_conv(g, n, in, out, &y, ctx); break;
        case OP_DECONV: st = nncpu_deconv2d(ctx, &a, &y, &n->cd, n->wt, n->p1, g->scratch); break;
        case OP_ACT: st = nncpu_act(ctx, &a, &y, n->cd.act, n->cd.act_alpha); break;
        case OP_PRELU: st = nncpu_prelu(ctx, &a, &y, n->p0, n->n0); break;
        case OP_BINARY: {
            nn_tensor b = value_tensor(g, n->b, in, out);
            st = nncpu_binary(ctx, (nn_binop)n->mode, &a, &b, &y);
            break;
        }
        case OP_AFFINE:
        case OP_CHAFFINE: st = nncpu_affine(ctx, &a, &y, n->p0, n->p1, n->n0); break;
        case OP_CONCAT: {
            nn_tensor ts[16], *tp = ts;
            if (n->nxs > 16) {
                tp = malloc((size_t)n->nxs * sizeof *tp);
                if (!tp) return upres__fail(ctx, UPRES_ERR_NOMEM, "nn: out of memory");
            }
            for (int k = 0; k < n->nxs; k++) tp[k] = value_tensor(g, n->xs[k], in, out);
            st = nncpu_concat(ctx, n->nxs, tp, &y);
            if (tp != ts) free(tp);
            break;
        }
        case OP_PSHUF: st = nncpu_pixel_shuffle(ctx, &a, &y, n->i[0]); break;
        case OP_PUNSHUF: st = nncpu_pixel_unshuffle(ctx, &a, &y, n->i[0]); break;
        case OP_INTERP:
            st = nncpu_interp(ctx, &a, &y, (nn_interp_mode)n->mode, n->sh, n->sw, n->align,
                              g->scratch);
            break;
        case OP_CROP: st = nncpu_crop(ctx, &a, &y, n->i[0], n->i[1]); break;
        case OP_CROP_LIKE: st = nncpu_crop(ctx, &a, &y, n->i[0], n->i[1]); break;
        case OP_PAD:
            st = nncpu_pad(ctx, &a, &y, n->i[0], n->i[1], (nn_pad_mode)n->mode, n->f0);
            break;
        case OP_GAP: st = nncpu_global_avg_pool(ctx, &a, &y); break;
        case OP_SHUF_ADD: {
            nn_tensor b = value_tensor(g, n->b, in, out);
            st = nncpu_shuffle_add(ctx, &a, &b, &y, n->i[0], n->sh, n->sw, g->scratch);
            break;
        }
        }
        if (st) return upres__fail(ctx, st, "nn: %s (node %d) failed", op_names[n->op], i);
    }
    if (upres__progress(ctx, "nn", total, total))
        return upres__fail(ctx, UPRES_ERR_CANCELLED, "nn: cancelled");
    return UPRES_OK;
}
