/*
 * Reference CPU kernels of the nn engine (src/nn/graph.c is the only caller).
 *
 * Every tensor is CHW float32 (nn_tensor). Kernels never allocate and never
 * fail on data: shapes were validated and buffers sized by the planner, and
 * the caller passes any scratch memory the kernel asked for through the
 * *_scratch functions. `out` never overlaps an input. Kernels spread work
 * over ctx's pool (ctx may be NULL: single thread) and return UPRES_OK (or
 * UPRES_ERR_CANCELLED should the pool report it).
 */
#ifndef UPRES_NN_CPU_OPS_H
#define UPRES_NN_CPU_OPS_H

#include "nn/nn.h"

#include <stddef.h>

/* ---- SIMD dispatch ------------------------------------------------------- */

/* Convolutions have two kernel sets: portable C (GCC vector types, SSE2 on
 * x86-64) and AVX2+FMA (cpu_avx2.c). The set is chosen once per process at
 * the first convolution: AVX2 when the build has it (not with
 * -DUPRES_NO_SIMD, x86-64 GCC/Clang only), the CPU reports AVX2 and FMA, and
 * the environment variable UPRES_SIMD is not "0". Both sets read the same
 * packed weights and scratch sizes, so the choice never affects planning. */
#if !defined(UPRES_NO_SIMD) && defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define NNCPU_HAVE_AVX2 1
#endif

/* 1 while the AVX2 kernels are in use, 0 for the portable ones; thread-safe. */
int nncpu_simd(void);
/* Test hook: selects the portable (0) or AVX2 (non-zero) kernels for the
 * whole process and returns the set now in use (0 when AVX2 was asked for
 * but the build or the CPU lacks it). Not to be called while a graph runs. */
int nncpu_set_simd(int on);

#define NNCPU_MR 6       /* output channels per micro-tile (packed weight panels) */
#define NNCPU_NR_AVX2 16 /* pixels per AVX2 micro-tile */

#ifdef NNCPU_HAVE_AVX2
/* 1 when the CPU runs AVX2 and FMA (cpu_avx2.c). */
int nncpu_avx2_usable(void);
/* out[r][x] = act(sum_k a[k][r] * b[k][x] + bias[r]) for r < rows <= 6,
 * x < cols <= 16. a: one packed weight panel, NNCPU_MR floats per k; b: one
 * packed column panel, 16 floats per k; out: row r at out + r*ldo; bias:
 * `rows` floats or NULL. act may be NONE, RELU, LEAKY (slope alpha[0]) or
 * PRELU (slope alpha[r] for row r); the caller applies sigmoid. Only call
 * when nncpu_simd() is 1. */
void nncpu_avx2_gemm6x16(size_t K, const float *restrict a, const float *restrict b,
                         float *restrict out, size_t ldo, int rows, int cols,
                         const float *bias, nn_act act, const float *alpha);
#endif

/* ---- Convolution ---------------------------------------------------------- */

/* Operands of one convolution. The input is given channel by channel so a
 * convolution can read a concatenation without it being copied; the output
 * gets a fused epilogue: out = act(conv(in) + bias) * scale + res. */
typedef struct nncpu_conv_io {
    const float *const *chan; /* in_c pointers to h*w-float input planes */
    int in_c, h, w;           /* input shape */
    nn_tensor *out;           /* c/h/w set by the caller (the planned shape) */
    const float *bias;        /* out_c floats or NULL */
    nn_act act;               /* NONE, RELU, LEAKY (alpha), PRELU (slopes), SIGMOID */
    float alpha;
    const float *slopes;      /* PReLU: nslopes (1 or out_c) floats */
    int nslopes;
    float scale;              /* 1 for none */
    const float *res;         /* NULL, out_c planes of out h*w (res_full), or out_c scalars */
    int res_full;
    /* Winograd input cache shared by a chain of convolutions whose inputs
     * extend one another (NULL: none; ignored off the Winograd path).
     * Holds transformed input channels [0, wc_done) already; this
     * convolution adds [wc_done, in_c). wc_stride: the cache's channel
     * capacity (>= in_c); size nncpu_wino_cache_floats(). */
    float *wcache;
    int wc_done, wc_stride;
} nncpu_conv_io;

/* Floats of the packed weights of a conv with `in_c` input channels
 * (0 when the size would overflow; the caller checks weight counts first).
 * Convolutions the Winograd path takes (nncpu_conv_winograd) also hold
 * their transformed weights, 64/9 times the plain size. */
size_t nncpu_conv_packed_size(const nn_conv_desc *d, int in_c);
/* Repacks PyTorch weights [out_c][in_c/groups][kh][kw] into the GEMM layout
 * used by nncpu_conv2d (`packed` holds nncpu_conv_packed_size() floats). */
void nncpu_conv_pack(const nn_conv_desc *d, int in_c, const float *weight, float *packed);
/* Scratch floats one worker needs to run the conv for an out_h x out_w
 * output; the caller provides `slots` such areas, back to back. */
size_t nncpu_conv_scratch(const nn_conv_desc *d, int in_c, int out_h, int out_w);
/* Runs the convolution of io (see nncpu_conv_io). scratch: `slots` (>= 1)
 * areas of nncpu_conv_scratch() floats each, 64-byte aligned. */
int nncpu_conv2d(upres_ctx *ctx, const nncpu_conv_io *io, const nn_conv_desc *d,
                 const float *packed, float *scratch, int slots);

/* ---- Winograd F(6x6, 3x3) (cpu_wino.c) ----------------------------------- */

/* 1 when convolutions of this geometry go through Winograd: 3x3, stride 1,
 * dilation 1, one group, at least 8 input and 8 output channels. Static:
 * it decides the packed layout. */
int nncpu_conv_winograd(const nn_conv_desc *d, int in_c);
/* Test hook: with on = 0 every convolution takes the im2col GEMM path (the
 * reference) even where Winograd weights exist, with on = 1 the Winograd
 * path is used where it applies (the default), with on < 0 nothing changes.
 * Returns the setting before the call. The environment variable
 * UPRES_WINOGRAD=0 sets 0 at start. Not to be called while a graph runs. */
int nncpu_set_winograd(int on);
/* Floats of the transformed weights (0 on overflow). */
size_t nncpu_wino_packed_size(const nn_conv_desc *d, int in_c);
/* U = G g G^T for every (oc, ic), in the layout of cpu_wino_impl.h. */
void nncpu_wino_pack(const nn_conv_desc *d, int in_c, const float *weight, float *U);
/* Scratch floats of one worker (0 on overflow). */
size_t nncpu_wino_scratch(const nn_conv_desc *d, int in_c, int out_h, int out_w);
/* Floats of a Winograd input cache (nncpu_conv_io.wcache) of `channels`
 * channels for an out_h x out_w output (0 on overflow). */
size_t nncpu_wino_cache_floats(int channels, int out_h, int out_w);
/* The convolution of io with transformed weights U. */
int nncpu_wino_conv(upres_ctx *ctx, const nncpu_conv_io *io, const nn_conv_desc *d,
                    const float *U, float *scratch, int slots);

/* One Winograd job, shared by the portable and AVX2 block kernels. */
typedef struct nncpu_wino_job {
    nncpu_conv_io io;         /* the convolution's operands (io.wcache: the chain's cache) */
    int pad_t, pad_l;
    int ocp;                  /* out_c rounded up to 4 */
    const float *U;           /* transformed weights (nncpu_wino_pack) */
    int tiles_x;              /* tiles per row; tile t is row t / tiles_x */
    int prefetch;             /* 1: the GEMM prefetches U and V one step ahead
                                 (few blocks per worker, so U is not cached) */
} nncpu_wino_job;

/* The most tiles in one block. */
#define NNCPU_WINO_MAX_NT 126

/* Runs tiles [t0, t0+nt) of jb (t0 a multiple of 3, nt <= NNCPU_WINO_MAX_NT); scratch:
 * 64*nt3*(in_c + ocp) floats with nt3 = nt rounded up to 3, or 64*nt3*ocp
 * with jb->io.wcache. */
void nncpu_wino_block_gen(const nncpu_wino_job *jb, size_t t0, int nt, float *scratch);
#ifdef NNCPU_HAVE_AVX2
void nncpu_wino_block_avx2(const nncpu_wino_job *jb, size_t t0, int nt, float *scratch);
#endif

/* Floats of the packed transposed-conv weights (0 on overflow). */
size_t nncpu_deconv_packed_size(const nn_conv_desc *d, int in_c);
/* Repacks PyTorch ConvTranspose2d weights [in_c][out_c/groups][kh][kw]. */
void nncpu_deconv_pack(const nn_conv_desc *d, int in_c, const float *weight, float *packed);
/* Scratch floats (one shared area, 64-byte aligned) for an in_h x in_w input. */
size_t nncpu_deconv_scratch(const nn_conv_desc *d, int in_c, int in_h, int in_w);
/* out = act(conv_transpose(in) + bias). */
int nncpu_deconv2d(upres_ctx *ctx, const nn_tensor *in, nn_tensor *out, const nn_conv_desc *d,
                   const float *packed, const float *bias, float *scratch);

/* ---- Elementwise ---------------------------------------------------------- */

/* out = act(in), same shape. */
int nncpu_act(upres_ctx *ctx, const nn_tensor *in, nn_tensor *out, nn_act act, float alpha);
/* out = in < 0 ? slope*in : in; slopes has 1 or in->c entries. */
int nncpu_prelu(upres_ctx *ctx, const nn_tensor *in, nn_tensor *out, const float *slopes,
                int n_slopes);
/* out = in*scale[c] + bias[c]; scale/bias NULL mean 1/0; with `per_channel`
 * 0 both point at one scalar instead. */
int nncpu_affine(upres_ctx *ctx, const nn_tensor *in, nn_tensor *out, const float *scale,
                 const float *bias, int per_channel);
/* out = a (op) b with the broadcasting of nn_binary (validated by the caller:
 * each side is out's shape, [c][1][1] or [1][1][1]). */
int nncpu_binary(upres_ctx *ctx, nn_binop op, const nn_tensor *a, const nn_tensor *b,
                 nn_tensor *out);

/* ---- Data movement -------------------------------------------------------- */

/* Copies each input's channels into out, in order (equal h, w). */
int nncpu_concat(upres_ctx *ctx, int n, const nn_tensor *ins, nn_tensor *out);
int nncpu_pixel_shuffle(upres_ctx *ctx, const nn_tensor *in, nn_tensor *out, int r);
int nncpu_pixel_unshuffle(upres_ctx *ctx, const nn_tensor *in, nn_tensor *out, int r);
/* out = in[:, top:top+out->h, left:left+out->w] (inside in). */
int nncpu_crop(upres_ctx *ctx, const nn_tensor *in, nn_tensor *out, int top, int left);
/* Pads in by t rows at the top and l columns at the left (out is bigger by
 * the remaining rows/cols at the bottom/right). Reflect needs pads < side. */
int nncpu_pad(upres_ctx *ctx, const nn_tensor *in, nn_tensor *out, int t, int l,
              nn_pad_mode mode, float value);
/* Scratch floats (64-byte aligned) of an interpolation to out_h x out_w
 * (sides already bounded by the planner, so no overflow). */
size_t nncpu_interp_scratch(int out_h, int out_w);
/* F.interpolate to out's size. scale_h/w > 0: the scale_factor that was
 * given (source step 1/scale); 0: size given (step in/out). */
int nncpu_interp(upres_ctx *ctx, const nn_tensor *in, nn_tensor *out, nn_interp_mode mode,
                 double scale_h, double scale_w, int align_corners, float *scratch);
/* Scratch floats (64-byte aligned) of nncpu_shuffle_add for an out_h x
 * out_w output. */
size_t nncpu_shuffle_add_scratch(int out_h, int out_w);
/* out = pixel_shuffle(a, r) + nearest interpolation of b to out's size
 * (scale_h/w as for nncpu_interp), in one pass: a is [c*r*r][h][w], b and
 * out [c][..], out h*r x w*r. The sum is the one nncpu_pixel_shuffle,
 * nncpu_interp (nearest) and nncpu_binary (add) give one after another. */
int nncpu_shuffle_add(upres_ctx *ctx, const nn_tensor *a, const nn_tensor *b, nn_tensor *out,
                      int r, double scale_h, double scale_w, float *scratch);
/* out[c][0][0] = mean of in[c]. */
int nncpu_global_avg_pool(upres_ctx *ctx, const nn_tensor *in, nn_tensor *out);

#endif
