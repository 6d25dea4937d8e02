/* libFuzzer target: any byte string through the model loaders (PyTorch
 * pickle/zip, safetensors, ncnn .param + .bin) must load or fail cleanly,
 * never crash or leak. The first byte picks the loader; for ncnn the rest is
 * split at the first NUL into .param text and .bin bytes. Built by
 * `make fuzz` (clang). */
#include "models/models_internal.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static upres_ctx *ctx;
    if (!ctx) {
        upres_ctx_desc d = upres_ctx_desc_defaults();
        d.threads = 1;
        d.limits.max_memory_bytes = 64u << 20; /* keep the fuzzer's memory bounded */
        d.limits.max_model_bytes = 64u << 20;
        if (upres_ctx_new(&d, &ctx) != UPRES_OK) abort();
    }
    if (size < 1) return 0;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    upres_statedict sd = {0};
    switch (data[0] % 3) {
    case 0:
        if (upres__pth_load(ctx, p, n, &sd) != UPRES_OK && sd.n) abort();
        break;
    case 1:
        if (upres__safetensors_load(ctx, p, n, &sd) != UPRES_OK && sd.n) abort();
        break;
    default: {
        const uint8_t *nul = memchr(p, 0, n);
        size_t pn = nul ? (size_t)(nul - p) : n;
        const uint8_t *bin = nul ? nul + 1 : p + n;
        size_t bn = nul ? n - pn - 1 : 0;
        struct upres_model m;
        upres__model_init(&m);
        (void)upres__ncnn_load(ctx, (const char *)p, pn, bin, bn, "fuzz", "fuzz", &m);
        nn_graph_free(m.graph); /* the caller owns whatever graph was left */
        break;
    }
    }
    upres__sd_free(&sd);
    return 0;
}
