/* Internal helpers shared by every subsystem. Depends on nothing but libc. */
#ifndef UPRES_CORE_INTERNAL_H
#define UPRES_CORE_INTERNAL_H

#include "upres.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define UPRES_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define UPRES_PRINTF(a, b)
#endif

/* Overflow-checked arithmetic: return true on success and store the result. */
static inline bool upres__mul_size(size_t a, size_t b, size_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool upres__add_size(size_t a, size_t b, size_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}

/* Records the detail of a failure in ctx (ctx may be NULL) and returns
 * `status`, so callers can write `return upres__fail(ctx, ERR, "...")`. */
int upres__fail(upres_ctx *ctx, int status, const char *fmt, ...) UPRES_PRINTF(3, 4);
/* Clears ctx's error detail; called at the start of each public call. */
void upres__clear_error(upres_ctx *ctx);
/* Limits of ctx, or the defaults when ctx is NULL. */
const upres_limits *upres__limits(const upres_ctx *ctx);

/* Runs fn(user, begin, end) over [0, n) split into chunks of at most `chunk`
 * items, on the ctx's pool (ctx may be NULL: runs on the calling thread).
 * `what` names the work for the progress callback (NULL = no progress).
 * Returns UPRES_OK or UPRES_ERR_CANCELLED. fn must not fail; it must be safe to
 * run concurrently on disjoint ranges. */
typedef void (*upres_range_fn)(void *user, uint64_t begin, uint64_t end);
int upres__parallel_for(upres_ctx *ctx, const char *what, uint64_t n, uint64_t chunk,
                        upres_range_fn fn, void *user);

/* Reports progress of a step that runs on the calling thread (no-op when ctx
 * or its callback is NULL). Returns UPRES_ERR_CANCELLED when the callback asks
 * to stop, else UPRES_OK. */
int upres__progress(upres_ctx *ctx, const char *what, uint64_t done, uint64_t total);

/* 1 when a proxy geometry is consistent (sides 1..65535, content box inside
 * the canvas); defined in src/proxy. */
int upres__proxy_geom_valid(const upres_proxy_geometry *g);

/* SHA-256 of a memory block as 64 lowercase hex digits + NUL. */
void upres__sha256_hex(const void *data, size_t size, char hex[65]);

/* sRGB transfer functions (IEC 61966-2-1), on values in [0,1]; inputs outside
 * are extended symmetrically/linearly so out-of-range floats survive. */
float upres__srgb_to_linear(float v);
float upres__linear_to_srgb(float v);

/* Clamps and rounds a float in [0,1] to an integer range; NaN gives 0
 * (converting NaN to an integer directly is undefined). */
static inline uint8_t upres__f2u8(float v)
{
    v = v * 255.0f + 0.5f;
    return !(v > 0.0f) ? 0 : v >= 255.0f ? 255 : (uint8_t)v;
}
static inline uint16_t upres__f2u16(float v)
{
    v = v * 65535.0f + 0.5f;
    return !(v > 0.0f) ? 0 : v >= 65535.0f ? 65535 : (uint16_t)v;
}

/* Colour space signature of an ICC profile header: 1 for 'GRAY', 3 for 'RGB ',
 * 4 for 'CMYK', 0 for anything else or a malformed header. */
int upres__icc_channels(const uint8_t *icc, size_t size);

/* Takes ownership of `data` (malloc()ed) as the image's ICC profile. */
void upres__image_take_icc(upres_image *img, uint8_t *data, size_t size);

#endif
