/* Status names, limits, version, sRGB transfer, small helpers. */
#include "core_internal.h"

#include <math.h>
#include <string.h>

const char *upres_version(void) { return UPRES_VERSION_STRING; }

const char *upres_strerror(int status)
{
    switch (status) {
    case UPRES_OK: return "success";
    case UPRES_ERR_INVALID_ARG: return "invalid argument";
    case UPRES_ERR_NOMEM: return "out of memory";
    case UPRES_ERR_OVERFLOW: return "size overflow";
    case UPRES_ERR_LIMIT: return "image exceeds the size limits";
    case UPRES_ERR_IO: return "input/output error";
    case UPRES_ERR_UNKNOWN_FORMAT: return "not a recognised image format";
    case UPRES_ERR_UNSUPPORTED: return "unsupported image feature";
    case UPRES_ERR_CORRUPT: return "corrupt or truncated image data";
    case UPRES_ERR_EXISTS: return "refusing to overwrite";
    case UPRES_ERR_THREAD: return "could not start a thread";
    case UPRES_ERR_CANCELLED: return "cancelled";
    case UPRES_ERR_EXTERNAL: return "external program failed";
    case UPRES_ERR_TIMEOUT: return "external program timed out";
    default: return "unknown error";
    }
}

upres_limits upres_limits_defaults(void)
{
    upres_limits l;
    l.max_pixels = 268435456u;
    l.max_side = 65535u;
    l.max_metadata_bytes = (size_t)16 << 20;
    l.max_file_bytes = (uint64_t)4 << 30;
    l.max_memory_bytes = (uint64_t)16 << 30;
    l.max_model_bytes = (uint64_t)2 << 30;
    return l;
}

int upres_limits_check(const upres_limits *lim, uint64_t width, uint64_t height,
                       uint32_t channels, uint32_t bytes_per_sample)
{
    upres_limits def = upres_limits_defaults();
    if (!lim) lim = &def;
    if (width == 0 || height == 0 || channels == 0 || channels > 4 || bytes_per_sample == 0)
        return UPRES_ERR_INVALID_ARG;
    if (width > lim->max_side || height > lim->max_side) return UPRES_ERR_LIMIT;
    uint64_t px, bytes;
    if (__builtin_mul_overflow(width, height, &px)) return UPRES_ERR_OVERFLOW;
    if (px > lim->max_pixels) return UPRES_ERR_LIMIT;
    if (__builtin_mul_overflow(px, (uint64_t)channels * bytes_per_sample, &bytes))
        return UPRES_ERR_OVERFLOW;
    if (bytes > lim->max_memory_bytes) return UPRES_ERR_LIMIT;
    if (bytes > (uint64_t)SIZE_MAX) return UPRES_ERR_OVERFLOW;
    return UPRES_OK;
}

size_t upres_depth_bytes(upres_depth depth)
{
    switch (depth) {
    case UPRES_U8: return 1;
    case UPRES_U16: return 2;
    case UPRES_F32: return 4;
    default: return 0;
    }
}

const char *upres_depth_name(upres_depth depth)
{
    switch (depth) {
    case UPRES_U8: return "u8";
    case UPRES_U16: return "u16";
    case UPRES_F32: return "f32";
    default: return "?";
    }
}

float upres__srgb_to_linear(float v)
{
    float a = fabsf(v);
    float r = a <= 0.04045f ? a / 12.92f : powf((a + 0.055f) / 1.055f, 2.4f);
    return v < 0 ? -r : r;
}

float upres__linear_to_srgb(float v)
{
    float a = fabsf(v);
    float r = a <= 0.0031308f ? a * 12.92f : 1.055f * powf(a, 1.0f / 2.4f) - 0.055f;
    return v < 0 ? -r : r;
}

int upres__icc_channels(const uint8_t *icc, size_t size)
{
    /* ICC.1 header: profile size at 0 (big endian), data colour space at 16. */
    if (!icc || size < 132) return 0;
    if (memcmp(icc + 16, "GRAY", 4) == 0) return 1;
    if (memcmp(icc + 16, "RGB ", 4) == 0) return 3;
    if (memcmp(icc + 16, "CMYK", 4) == 0) return 4;
    return 0;
}
