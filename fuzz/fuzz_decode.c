/* libFuzzer target: any byte string through the decoders must either decode
 * to a valid image or fail cleanly. Built by `make fuzz` (clang). */
#include "upres.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static upres_ctx *ctx;
    if (!ctx) {
        upres_ctx_desc d = upres_ctx_desc_defaults();
        d.threads = 1;
        d.limits.max_pixels = 16u << 20; /* keep the fuzzer's memory bounded */
        if (upres_ctx_new(&d, &ctx) != UPRES_OK) abort();
    }
    upres_image *img = NULL;
    if (upres_decode(ctx, data, size, NULL, &img, NULL) == UPRES_OK) {
        if (!img || !img->data || img->width == 0 || img->height == 0) abort();
        /* Touch every row so out-of-bounds allocations show up. */
        volatile uint8_t sink = 0;
        for (uint32_t y = 0; y < img->height; y++) sink ^= *(uint8_t *)upres_image_row(img, y);
        (void)sink;
    } else if (img) {
        abort();
    }
    upres_image_free(img);
    return 0;
}
