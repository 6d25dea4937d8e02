/*
 * State dicts: the container shared by the .pth and .safetensors loaders,
 * plus the element conversions both need (little-endian float32, IEEE half,
 * bfloat16 -> float).
 */
#include "models/models_internal.h"

#include "core/core_internal.h"

#include <stdlib.h>
#include <string.h>


void upres__sd_free(upres_statedict *sd)
{
    if (!sd) return;
    for (size_t i = 0; i < sd->n; i++) {
        free(sd->t[i].name);
        free(sd->t[i].data);
    }
    free(sd->t);
    sd->t = NULL;
    sd->n = 0;
}

const upres_sd_tensor *upres__sd_find(const upres_statedict *sd, const char *name)
{
    if (!sd || !name) return NULL;
    for (size_t i = 0; i < sd->n; i++)
        if (strcmp(sd->t[i].name, name) == 0) return &sd->t[i];
    return NULL;
}

uint64_t upres__sd_numel(const upres_sd_tensor *t)
{
    if (!t) return 0;
    uint64_t n = 1;
    for (int i = 0; i < t->ndim; i++) {
        if (t->shape[i] <= 0) return 0;
        n *= (uint64_t)t->shape[i];
    }
    return n;
}

static float bits_to_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* IEEE 754 binary16 -> binary32, exact for every input (the float32 range
 * and precision contain all halves); NaN payloads are kept. */
float upres__sd_half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0) {
        /* Zero or subnormal: mant * 2^-24, a product float represents exactly. */
        float v = (float)mant * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    if (exp == 31) return bits_to_float(sign | 0x7f800000u | (mant << 13));
    return bits_to_float(sign | ((exp + 112u) << 23) | (mant << 13));
}

/* One little-endian element of `dtype` at p, as float. */
float upres__sd_elem(int dtype, const uint8_t *p)
{
    switch (dtype) {
    case 0:
        return bits_to_float((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                             (uint32_t)p[3] << 24);
    case 1:
        return upres__sd_half_to_float((uint16_t)(p[0] | p[1] << 8));
    default:
        /* bfloat16 is the top half of a float32. */
        return bits_to_float(((uint32_t)p[0] | (uint32_t)p[1] << 8) << 16);
    }
}

/* Appends a tensor named name[0..name_len) (copied; must not contain NUL)
 * taking ownership of `data` (freed on failure too). Names are not checked
 * for uniqueness here; see upres__sd_check_unique. */
int upres__sd_push(upres_ctx *ctx, upres_statedict *sd, const char *name, size_t name_len,
                   int ndim, const int64_t *shape, float *data)
{
    if (ndim < 0 || ndim > UPRES_SD_MAX_DIMS || memchr(name, 0, name_len)) {
        free(data);
        return upres__fail(ctx, UPRES_ERR_CORRUPT, "state dict: bad tensor name or rank");
    }
    /* Grow by doubling when n reaches a power of two (capacity is implicit). */
    if ((sd->n & (sd->n - 1)) == 0) {
        size_t cap = sd->n ? sd->n * 2 : 1, bytes;
        if (!upres__mul_size(cap, sizeof *sd->t, &bytes)) {
            free(data);
            return upres__fail(ctx, UPRES_ERR_OVERFLOW, "state dict: too many tensors");
        }
        upres_sd_tensor *t = realloc(sd->t, bytes);
        if (!t) {
            free(data);
            return upres__fail(ctx, UPRES_ERR_NOMEM, "state dict: out of memory");
        }
        sd->t = t;
    }
    char *nm = malloc(name_len + 1);
    if (!nm) {
        free(data);
        return upres__fail(ctx, UPRES_ERR_NOMEM, "state dict: out of memory");
    }
    memcpy(nm, name, name_len);
    nm[name_len] = 0;
    upres_sd_tensor *t = &sd->t[sd->n++];
    memset(t, 0, sizeof *t);
    t->name = nm;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->data = data;
    return UPRES_OK;
}

static int cmp_name_ptr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* UPRES_ERR_CORRUPT naming the first duplicate tensor name, else UPRES_OK.
 * Sorting keeps this O(n log n) for files declaring very many tensors. */
int upres__sd_check_unique(upres_ctx *ctx, const upres_statedict *sd)
{
    if (sd->n < 2) return UPRES_OK;
    size_t bytes;
    if (!upres__mul_size(sd->n, sizeof(char *), &bytes))
        return upres__fail(ctx, UPRES_ERR_OVERFLOW, "state dict: too many tensors");
    const char **names = malloc(bytes);
    if (!names) return upres__fail(ctx, UPRES_ERR_NOMEM, "state dict: out of memory");
    for (size_t i = 0; i < sd->n; i++) names[i] = sd->t[i].name;
    qsort(names, sd->n, sizeof *names, cmp_name_ptr);
    int st = UPRES_OK;
    for (size_t i = 1; i < sd->n; i++) {
        if (strcmp(names[i - 1], names[i]) == 0) {
            st = upres__fail(ctx, UPRES_ERR_CORRUPT, "state dict: duplicate tensor %.200s",
                             names[i]);
            break;
        }
    }
    free(names);
    return st;
}
