/*
 * Model files -> inference graphs.
 *
 *   bytes --(pth.c / safetensors.c)--> upres_statedict --(arch.c)--> upres_model
 *   .param + .bin --(ncnn.c)--------------------------------------> upres_model
 *
 * Every loader treats its input as untrusted: all offsets and sizes are
 * bounds- and overflow-checked, nothing in the file is executed, and failures
 * return a negative upres_status with a one-line detail (upres__fail) that
 * names what was found ("pickle: global os.system is not allowed").
 */
#ifndef UPRES_MODELS_INTERNAL_H
#define UPRES_MODELS_INTERNAL_H

#include "nn/nn.h"

#include <stddef.h>
#include <stdint.h>

#define UPRES_SD_MAX_DIMS 8

/* One named float32 tensor of a state dict. */
typedef struct upres_sd_tensor {
    char *name;                        /* owned, NUL-terminated, e.g. "body.0.rdb1.conv1.weight" */
    int ndim;                          /* 0..UPRES_SD_MAX_DIMS */
    int64_t shape[UPRES_SD_MAX_DIMS];  /* PyTorch order, e.g. [out_c][in_c][kh][kw] */
    float *data;                       /* owned; prod(shape) floats, contiguous (converted
                                          from half/bfloat16 and made contiguous on load) */
} upres_sd_tensor;

/* An ordered list of tensors (file order). */
typedef struct upres_statedict {
    upres_sd_tensor *t;
    size_t n;
} upres_statedict;

/* Frees every tensor and the array; leaves sd empty. NULL is safe. */
void upres__sd_free(upres_statedict *sd);
/* The tensor called `name`, or NULL. */
const upres_sd_tensor *upres__sd_find(const upres_statedict *sd, const char *name);
/* Element count of t (0 when a dimension is 0). Sizes were overflow-checked on load. */
uint64_t upres__sd_numel(const upres_sd_tensor *t);

/* Helpers shared by the state-dict loaders. dtype codes: 0 = float32,
 * 1 = float16, 2 = bfloat16 (little-endian, element sizes 4, 2, 2). */
float upres__sd_half_to_float(uint16_t h); /* exact for every half, NaN payloads kept */
float upres__sd_elem(int dtype, const uint8_t *p);
/* Appends a tensor named name[0..name_len) (copied; must not contain NUL),
 * taking ownership of `data` (freed on failure too). */
int upres__sd_push(upres_ctx *ctx, upres_statedict *sd, const char *name, size_t name_len,
                   int ndim, const int64_t *shape, float *data);
/* UPRES_ERR_CORRUPT naming the first duplicate tensor name, else UPRES_OK. */
int upres__sd_check_unique(upres_ctx *ctx, const upres_statedict *sd);

/* PyTorch .pth/.pt in memory: the zip format (archive/data.pkl +
 * archive/data/N) or the legacy pre-1.6 format. Picks the sub-dict
 * `params_ema`, then `params`, then the top-level dict. Only the pickle
 * opcodes and globals a state dict needs are accepted. Tensor bytes are
 * bounded by lim->max_memory_bytes. On failure *out is empty. */
int upres__pth_load(upres_ctx *ctx, const uint8_t *buf, size_t size, upres_statedict *out);

/* .safetensors in memory (F32, F16, BF16 tensors; other dtypes refused). */
int upres__safetensors_load(upres_ctx *ctx, const uint8_t *buf, size_t size, upres_statedict *out);

/*
 * A loaded model: an inference graph plus the host-side steps around it.
 * upres__model_run(in) computes, for an input of h x w:
 *   x = in*in_scale + in_bias
 *   x = pad(x, pre_pad_mode, pre_pad on every side, then extra rows/cols at the
 *       bottom/right so that (h + 2*pre_pad) and (w + 2*pre_pad) become
 *       multiples of `align`)
 *   y = graph(x)
 *   out = crop(y, top-left at (out_off, out_off), size h*scale x w*scale)
 *         * out_scale + out_bias
 * The graph's output must therefore cover that crop.
 */
struct upres_model {
    nn_graph *graph;      /* owned */
    char name[128];       /* file name without extension */
    char format[16];      /* "pth", "safetensors", "ncnn" */
    char arch[48];        /* "RRDBNet", "SRVGGNetCompact", "waifu2x-cunet", "waifu2x-upconv7",
                             "RealCUGAN-se", "RealCUGAN-pro", "RealCUGAN-nose", "ncnn" */
    int scale;            /* output side / input side, >= 1 */
    int in_c, out_c;      /* graph channels: 3 (RGB, [0,1]) or 1 */
    uint64_t params;      /* parameter count */
    float in_scale, in_bias;   /* defaults 1, 0 */
    float out_scale, out_bias; /* defaults 1, 0 */
    int pre_pad;          /* >= 0 */
    nn_pad_mode pre_pad_mode; /* default NN_PAD_REFLECT */
    int align;            /* >= 1 */
    int out_off;          /* >= 0 */
    int min_side;         /* smallest h or w the host may pass (before pre_pad), >= 1 */
    int context;          /* input pixels of context a tile needs on each side for the
                             result to match whole-image inference (suggested tile padding) */
    int planned_h, planned_w; /* graph input size last planned; 0 = none */
    float *pad_buf;       /* [in_c][planned_h][planned_w] graph input scratch */
    float *out_buf;       /* [out_c][graph out h][graph out w] graph output scratch */
    size_t out_buf_n;     /* floats in out_buf */
};

/* Fills a model with the defaults above (graph NULL, scale 1, align 1,
 * min_side 1, context 16, channels 3). */
void upres__model_init(struct upres_model *m);

/* Builds the graph of a recognised architecture from a state dict (RRDBNet
 * in its three key namings with any block count / width / growth and scales
 * 1, 2, 4; SRVGGNetCompact of any depth). Recognition uses key names and
 * tensor shapes only. Fills m->graph, arch, scale, channels, params, context;
 * leaves name and format alone. Unknown layouts fail with
 * UPRES_ERR_UNSUPPORTED and a detail naming a few keys found. */
int upres__arch_build(upres_ctx *ctx, const upres_statedict *sd, struct upres_model *m);

/* ncnn model from the text of a .param file and the bytes of its .bin.
 * `name` (file stem, e.g. "up2x-no-denoise") and `dir` (its folder name,
 * e.g. "models-pro") let it recognise the host-side handling Real-CUGAN and
 * waifu2x graphs need (padding, pro-model input mapping); the graph itself is
 * built only from the .param. Fills everything but m->name and m->format. */
int upres__ncnn_load(upres_ctx *ctx, const char *param_text, size_t param_size,
                     const uint8_t *bin, size_t bin_size, const char *name, const char *dir,
                     struct upres_model *m);

/* Runs the model on one tile: in is [in_c][h][w] (h, w >= min_side), out
 * receives [out_c][h*scale][w*scale] (the caller's buffer). Plans the graph
 * again when the padded size differs from the last run. Not thread-safe per
 * model. */
int upres__model_run(upres_ctx *ctx, struct upres_model *m, const float *in, int h, int w,
                     float *out);
/* As upres__model_run, but the result stays in the model's own buffer:
 * *res points at [out_c][h*scale][w*scale] floats, valid until the next run
 * or the model's free. Saves the copy (and a whole-tile allocation for the
 * caller) when the crop and mapping are the identity. */
int upres__model_run_buf(upres_ctx *ctx, struct upres_model *m, const float *in, int h, int w,
                         const float **res);

/* Activation bytes a run on an h x w tile would need (for tile sizing). */
int upres__model_tile_bytes(upres_ctx *ctx, struct upres_model *m, int h, int w, size_t *bytes);

#endif
