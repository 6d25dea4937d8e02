/*
 * Neural-network inference engine: a static graph of float32 ops on one image
 * at a time (batch 1), laid out CHW (NCHW with N = 1), run by reference CPU
 * kernels on the ctx's thread pool.
 *
 * Life cycle:
 *   1. nn_graph_new(), then add ops. Each op returns a value id (>= 0) or a
 *      negative upres_status (the graph is then poisoned: every later call
 *      fails with the first error). Channel counts are static and checked
 *      while building; heights and widths are not known yet.
 *   2. nn_graph_set_output().
 *   3. nn_graph_plan(h, w): infers every value's shape for an input of h x w,
 *      validates it (crop larger than its input, mismatched add, ...) and
 *      allocates all activation buffers once, reusing memory between values
 *      whose lifetimes do not overlap. Planning again with another size
 *      replaces the buffers.
 *   4. nn_graph_run(): any number of times, on inputs of the planned size.
 * The first plan (or nn_graph_out_size) also fuses the graph: a conv absorbs
 * a concat feeding it and a following activation, PReLU, x*s and residual
 * add, and an add of a pixel shuffle and a nearest interpolation becomes one
 * pass, where no other node reads the values between (see fuse() in
 * graph.c).
 * After that no node can be added, and only values that still exist can be
 * made the output (nn_graph_set_output fails on an absorbed one).
 *
 * Errors: nn_* functions are internal and do not clear the ctx error detail
 * (upres__fail keeps the first one); a caller that retries after a failure
 * (e.g. a smaller tile after UPRES_ERR_LIMIT) calls upres__clear_error first.
 *
 * Weights passed to the builders are copied; the caller keeps its arrays.
 * Weight layouts follow PyTorch. A graph is not thread-safe: one run at a
 * time (a run itself uses the whole pool).
 */
#ifndef UPRES_NN_H
#define UPRES_NN_H

#include "core/core_internal.h"

#include <stddef.h>
#include <stdint.h>

/* A dense float32 tensor of shape [c][h][w], row-major (w fastest). */
typedef struct nn_tensor {
    int c, h, w;
    float *data; /* c*h*w floats; ownership stated where a tensor is passed */
} nn_tensor;

typedef struct nn_graph nn_graph;

/* Activation fused into conv / deconv / dense outputs. */
typedef enum nn_act {
    NN_ACT_NONE = 0,
    NN_ACT_RELU,
    NN_ACT_LEAKY,   /* x < 0 ? alpha*x : x */
    NN_ACT_SIGMOID,
    NN_ACT_PRELU    /* per-channel slopes; only set by the graph's fusion, not by builders */
} nn_act;

typedef enum nn_binop {
    NN_ADD = 0, /* a + b */
    NN_SUB,     /* a - b */
    NN_MUL,     /* a * b */
    NN_DIV      /* a / b */
} nn_binop;

typedef enum nn_pad_mode {
    NN_PAD_ZERO = 0, /* constant `value` */
    NN_PAD_REFLECT,  /* mirror without repeating the edge (PyTorch 'reflect') */
    NN_PAD_REPLICATE /* repeat the edge sample */
} nn_pad_mode;

typedef enum nn_interp_mode {
    NN_INTERP_NEAREST = 0, /* PyTorch 'nearest': src = floor(dst * in/out) */
    NN_INTERP_BILINEAR,    /* PyTorch 'bilinear' */
    NN_INTERP_BICUBIC      /* PyTorch 'bicubic' (A = -0.75, edge clamp) */
} nn_interp_mode;

/* Convolution / deconvolution geometry. */
typedef struct nn_conv_desc {
    int out_c;                    /* output channels, >= 1 */
    int kh, kw;                   /* kernel size, >= 1 */
    int stride_h, stride_w;       /* >= 1 */
    int dil_h, dil_w;             /* >= 1 */
    int pad_t, pad_l, pad_b, pad_r; /* zero padding, >= 0 (deconv: removed from the output) */
    int out_pad_h, out_pad_w;     /* deconv only: extra rows/cols at bottom/right (PyTorch output_padding) */
    int groups;                   /* >= 1, divides in_c and out_c */
    nn_act act;                   /* fused activation */
    float act_alpha;              /* slope for NN_ACT_LEAKY */
} nn_conv_desc;

/* Stride 1, dilation 1, no padding, groups 1, no activation; the caller sets
 * out_c, kh, kw (and padding). */
nn_conv_desc nn_conv_desc_defaults(void);

nn_graph *nn_graph_new(void);
void nn_graph_free(nn_graph *g); /* NULL is safe */

/* The first error recorded while building (UPRES_OK if none). */
int nn_graph_status(const nn_graph *g);

/* The graph's single input, `channels` channels. Must be called exactly once. */
int nn_input(nn_graph *g, int channels);

/* Channel count of value x, or a negative status for an invalid id. */
int nn_channels(const nn_graph *g, int x);

/* 2-D convolution (cross-correlation, as PyTorch's Conv2d).
 * weight [out_c][in_c/groups][kh][kw]; bias [out_c] or NULL.
 * out = floor((in + pad_t + pad_b - dil*(k-1) - 1) / stride) + 1. */
int nn_conv2d(nn_graph *g, int x, const nn_conv_desc *d, const float *weight, const float *bias);

/* Transposed convolution (PyTorch ConvTranspose2d).
 * weight [in_c][out_c/groups][kh][kw]; bias [out_c] or NULL.
 * out = (in - 1)*stride - pad_t - pad_b + dil*(k-1) + 1 + out_pad. */
int nn_deconv2d(nn_graph *g, int x, const nn_conv_desc *d, const float *weight, const float *bias);

int nn_relu(nn_graph *g, int x);
int nn_leaky_relu(nn_graph *g, int x, float alpha);
/* PReLU: x < 0 ? slope[c]*x : x. n_slopes is 1 (shared) or in_c. */
int nn_prelu(nn_graph *g, int x, const float *slopes, int n_slopes);
int nn_sigmoid(nn_graph *g, int x);

/* Elementwise a (op) b. Shapes must match, except that either side may be
 * [c][1][1] (broadcast over space) or [1][1][1] (a scalar tensor); channel
 * count of the result is the larger one. */
int nn_binary(nn_graph *g, nn_binop op, int a, int b);
/* x*scale + bias with scalars. */
int nn_affine(nn_graph *g, int x, float scale, float bias);
/* Per-channel x*scale[c] + bias[c]; either array may be NULL (1 / 0). */
int nn_channel_affine(nn_graph *g, int x, const float *scale, const float *bias);

/* Concatenation along channels of n >= 1 values of equal h, w. */
int nn_concat(nn_graph *g, int n, const int *xs);

/* PyTorch pixel_shuffle: [c*r*r][h][w] -> [c][h*r][w*r]. */
int nn_pixel_shuffle(nn_graph *g, int x, int r);
/* PyTorch pixel_unshuffle: [c][h*r][w*r] -> [c*r*r][h][w]; h, w must divide. */
int nn_pixel_unshuffle(nn_graph *g, int x, int r);

/* PyTorch F.interpolate. Output size: out_h/out_w when > 0, else
 * floor(in * scale). With scale given (out_* = 0) the source coordinate uses
 * 1/scale as PyTorch does when scale_factor is passed
 * (recompute_scale_factor=False); with out_* given it uses in/out.
 * align_corners applies to bilinear and bicubic. */
int nn_interp(nn_graph *g, int x, nn_interp_mode mode, float scale_h, float scale_w,
              int out_h, int out_w, int align_corners);

/* Removes t/l/b/r rows and columns from the borders (all >= 0). */
int nn_crop(nn_graph *g, int x, int t, int l, int b, int r);
/* Crops x to the h x w of value `ref`, starting at (off_h, off_w). */
int nn_crop_like(nn_graph *g, int x, int ref, int off_h, int off_w);
/* Adds t/l/b/r rows and columns (>= 0). Reflect needs pad < side. */
int nn_pad(nn_graph *g, int x, int t, int l, int b, int r, nn_pad_mode mode, float value);

/* Global average pooling: [c][h][w] -> [c][1][1]. */
int nn_global_avg_pool(nn_graph *g, int x);

/* Marks the output value. */
int nn_graph_set_output(nn_graph *g, int x);

/* Output channels (valid after set_output). */
int nn_graph_out_channels(const nn_graph *g);

/* Output h, w for an input of in_h x in_w, without allocating; fails with
 * UPRES_ERR_INVALID_ARG (detail in ctx) when the graph cannot take that size. */
int nn_graph_out_size(nn_graph *g, upres_ctx *ctx, int in_h, int in_w, int *out_h, int *out_w);

/* Shapes and buffers for an in_h x in_w input (see life cycle). Checks the
 * total against the ctx limits' max_memory_bytes. *bytes (may be NULL)
 * receives the activation memory in bytes. */
int nn_graph_plan(nn_graph *g, upres_ctx *ctx, int in_h, int in_w, size_t *bytes);

/* Activation memory (bytes) that plan would allocate for in_h x in_w, without
 * allocating; for choosing tile sizes. */
int nn_graph_plan_bytes(nn_graph *g, upres_ctx *ctx, int in_h, int in_w, size_t *bytes);

/* Runs the planned graph. in: c = input channels, h/w = planned size, data
 * read only. out: the caller's buffer of out_c*out_h*out_w floats; its c/h/w
 * are set. May fail with UPRES_ERR_CANCELLED via the ctx progress callback. */
int nn_graph_run(nn_graph *g, upres_ctx *ctx, const nn_tensor *in, nn_tensor *out);

/* Number of weight and bias floats held (parameter count). */
uint64_t nn_graph_params(const nn_graph *g);

/* Number of global average pooling nodes. Such a graph sees its whole input
 * at once, so running it on tiles cannot reproduce the whole-image result. */
int nn_graph_global_pools(const nn_graph *g);

/* Number of convolutions that, in the last plan, read part of their input
 * from the Winograd transforms of an earlier convolution in their chain
 * (see nncpu_conv_io.wcache) rather than transforming it again. */
int nn_graph_wino_shared(const nn_graph *g);

#endif
