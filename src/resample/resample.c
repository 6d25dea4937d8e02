/* STUB: to be replaced by the real resampler. */
#include "core/core_internal.h"
#include <string.h>

upres_resize_desc upres_resize_desc_defaults(void)
{
    upres_resize_desc d;
    memset(&d, 0, sizeof d);
    d.filter = UPRES_FILTER_LANCZOS3;
    return d;
}
const char *upres_filter_name(upres_filter f) { (void)f; return "?"; }
int upres_filter_from_name(const char *name) { (void)name; return -1; }
int upres_resize(upres_ctx *ctx, const upres_image *src, const upres_resize_desc *desc, upres_image **out)
{
    (void)src; (void)desc; *out = NULL;
    return upres__fail(ctx, UPRES_ERR_UNSUPPORTED, "resize: not implemented yet");
}
