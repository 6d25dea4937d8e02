/* STUB: to be replaced by the real png codec. */
#include "io_internal.h"

int upres__png_decode(upres_ctx *ctx, const uint8_t *buf, size_t size, upres_image **out,
                      upres_file_info *info)
{
    (void)buf; (void)size; (void)info;
    *out = NULL;
    return upres__fail(ctx, UPRES_ERR_UNSUPPORTED, "png: not implemented yet");
}

int upres__png_encode(upres_ctx *ctx, const upres_image *img, const upres_encode_desc *desc,
                      const uint8_t *icc, size_t icc_size, uint8_t **out, size_t *out_size)
{
    (void)img; (void)desc; (void)icc; (void)icc_size;
    *out = NULL; *out_size = 0;
    return upres__fail(ctx, UPRES_ERR_UNSUPPORTED, "png: not implemented yet");
}
