/* Helpers shared by several test files (declared in test.h, prefix tu_):
 * deterministic images, pixel comparison, limit and damage checks, stderr
 * capture and ICC building blocks. None of them reports a test failure
 * itself; they return what the caller CHECKs. */
#include "test.h"
#include "upres.h"

#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

uint32_t tu_xorshift32(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

upres_ctx *tu_ctx_1thread(void)
{
    upres_ctx_desc d = upres_ctx_desc_defaults();
    d.threads = 1;
    upres_ctx *c = NULL;
    if (upres_ctx_new(&d, &c) != UPRES_OK) return NULL;
    return c;
}

int tu_upres_va(const char *bin, const char *sub, int timeout_s, char *out, size_t out_cap,
                char *err, size_t err_cap, const char *first, va_list ap)
{
    char *argv[64];
    int n = 0;
    argv[n++] = (char *)(bin ? bin : test_upres_bin());
    if (sub) argv[n++] = (char *)sub;
    for (const char *a = first; a && n < 63; a = va_arg(ap, const char *)) argv[n++] = (char *)a;
    argv[n] = NULL;
    if (out && out_cap) out[0] = 0;
    if (err && err_cap) err[0] = 0;
    return test_run(argv, timeout_s, out, out_cap, err, err_cap);
}

double tu_sample01(const upres_image *img, uint32_t x, uint32_t y, uint32_t c)
{
    const void *row = upres_image_row(img, y);
    size_t i = (size_t)x * img->channels + c;
    switch (img->depth) {
    case UPRES_U8: return ((const uint8_t *)row)[i] / 255.0;
    case UPRES_U16: return ((const uint16_t *)row)[i] / 65535.0;
    default: return ((const float *)row)[i];
    }
}

void tu_put01(upres_image *img, uint32_t x, uint32_t y, uint32_t c, double v)
{
    void *row = upres_image_row(img, y);
    size_t i = (size_t)x * img->channels + c;
    if (img->depth == UPRES_U8)
        ((uint8_t *)row)[i] = (uint8_t)lrint(v * 255);
    else if (img->depth == UPRES_U16)
        ((uint16_t *)row)[i] = (uint16_t)lrint(v * 65535);
    else
        ((float *)row)[i] = (float)v;
}

upres_image *tu_random_image(uint32_t w, uint32_t h, uint32_t ch, upres_depth d, uint32_t seed)
{
    upres_image *img = NULL;
    if (upres_image_new(&img, w, h, ch, d, NULL) != UPRES_OK) return NULL;
    uint32_t s = seed ? seed : 1;
    for (uint32_t y = 0; y < h; y++) {
        void *row = upres_image_row(img, y);
        for (size_t i = 0; i < (size_t)w * ch; i++) {
            if (d == UPRES_U8) ((uint8_t *)row)[i] = (uint8_t)tu_xorshift32(&s);
            else if (d == UPRES_U16) ((uint16_t *)row)[i] = (uint16_t)tu_xorshift32(&s);
            else ((float *)row)[i] = (float)(tu_xorshift32(&s) % 100000) / 20000.0f - 2.0f;
        }
    }
    return img;
}

int tu_same_pixels(const upres_image *a, const upres_image *b)
{
    if (a->width != b->width || a->height != b->height || a->channels != b->channels ||
        a->depth != b->depth)
        return 0;
    size_t row = (size_t)a->width * a->channels * upres_depth_bytes(a->depth);
    for (uint32_t y = 0; y < a->height; y++)
        if (memcmp(upres_image_row(a, y), upres_image_row(b, y), row) != 0) return 0;
    return 1;
}

double tu_psnr_u8(const upres_image *a, const upres_image *b)
{
    double se = 0;
    size_t row = (size_t)a->width * a->channels, n = 0;
    for (uint32_t y = 0; y < a->height; y++) {
        const uint8_t *p = upres_image_row(a, y), *q = upres_image_row(b, y);
        for (size_t i = 0; i < row; i++, n++) se += ((double)p[i] - q[i]) * ((double)p[i] - q[i]);
    }
    if (se == 0) return 99.0;
    return 10.0 * log10(255.0 * 255.0 / (se / (double)n));
}

const char *tu_decode_refused(const void *buf, size_t n, uint64_t max_pixels, const char *prefix)
{
    static char msg[256];
    upres_ctx_desc cd = upres_ctx_desc_defaults();
    cd.threads = 1;
    cd.limits.max_pixels = max_pixels;
    upres_ctx *ctx;
    if (upres_ctx_new(&cd, &ctx) != UPRES_OK) return "no context";
    /* Not NULL beforehand, so a decoder that forgets to clear it is caught. */
    upres_image *dst = (upres_image *)1;
    int st = upres_decode(ctx, buf, n, NULL, &dst, NULL);
    const char *fail = NULL;
    if (st != UPRES_ERR_LIMIT) {
        snprintf(msg, sizeof msg, "decode gave %d (%s), not UPRES_ERR_LIMIT", st, upres_strerror(st));
        fail = msg;
        if (st == UPRES_OK) upres_image_free(dst);
    } else if (dst != NULL) {
        fail = "refused decode left an image";
    } else if (strncmp(upres_ctx_error(ctx), prefix, strlen(prefix)) != 0) {
        snprintf(msg, sizeof msg, "detail '%s' does not start with '%s'", upres_ctx_error(ctx), prefix);
        fail = msg;
    }
    upres_ctx_free(ctx);
    return fail;
}

const char *tu_limit_splits(const upres_ctx_desc *d, const char *too_big, const char *fits)
{
    static char msg[512];
    upres_ctx *ctx;
    if (upres_ctx_new(d, &ctx) != UPRES_OK) return "no context";
    upres_image *img;
    const char *fail = NULL;
    int st = upres_load(ctx, test_fixture(too_big), NULL, &img, NULL);
    if (st != UPRES_ERR_LIMIT) {
        snprintf(msg, sizeof msg, "%s: load gave %d, not UPRES_ERR_LIMIT", too_big, st);
        fail = msg;
        if (st == UPRES_OK) upres_image_free(img);
    } else if (img != NULL) {
        snprintf(msg, sizeof msg, "%s: refused load left an image", too_big);
        fail = msg;
    } else if ((st = upres_load(ctx, test_fixture(fits), NULL, &img, NULL)) != UPRES_OK) {
        snprintf(msg, sizeof msg, "%s: load gave %d (%s)", fits, st, upres_ctx_error(ctx));
        fail = msg;
    } else {
        upres_image_free(img);
    }
    upres_ctx_free(ctx);
    return fail;
}

const char *tu_mangle(const void *file, size_t n, int flips, uint32_t seed, const char *prefix,
                      size_t detail_from, uint32_t min_channels)
{
    static char msg[256];
    upres_ctx *ctx = tu_ctx_1thread();
    if (!ctx) return "no context";
    unsigned char *copy = malloc(n ? n : 1);
    if (!copy) {
        upres_ctx_free(ctx);
        return "out of memory";
    }
    const char *fail = NULL;
    for (size_t cut = 0; cut < n && !fail; cut++) {
        upres_image *img = NULL;
        int st = upres_decode(ctx, file, cut, NULL, &img, NULL);
        if (st == UPRES_OK) {
            snprintf(msg, sizeof msg, "a %zu-byte prefix of %zu decoded", cut, n);
            fail = msg;
        } else if (img) {
            fail = "failed decode left an image";
        } else if (cut >= detail_from && strncmp(upres_ctx_error(ctx), prefix, strlen(prefix)) != 0) {
            snprintf(msg, sizeof msg, "cut %zu: detail '%s'", cut, upres_ctx_error(ctx));
            fail = msg;
        }
        upres_image_free(img);
    }
    uint32_t s = seed;
    for (int i = 0; i < flips && !fail && n; i++) {
        memcpy(copy, file, n);
        size_t bit = tu_xorshift32(&s) % (n * 8);
        copy[bit / 8] ^= (unsigned char)(1u << (bit % 8));
        upres_image *img = NULL;
        int st = upres_decode(ctx, copy, n, NULL, &img, NULL);
        if (st == UPRES_OK) {
            if (!img || !img->data || img->width == 0 || img->height == 0 ||
                img->channels < min_channels || img->channels > 4 ||
                img->stride < (size_t)img->width * img->channels * upres_depth_bytes(img->depth))
                fail = "flipped file gave a malformed image";
            else {
                /* Touch every byte so the sanitizers see any short buffer. */
                volatile unsigned sum = 0;
                size_t row = (size_t)img->width * img->channels * upres_depth_bytes(img->depth);
                for (uint32_t y = 0; y < img->height; y++)
                    for (size_t k = 0; k < row; k++) sum += ((uint8_t *)upres_image_row(img, y))[k];
                (void)sum;
            }
        } else if (img) {
            fail = "failed decode left an image";
        }
        upres_image_free(img);
    }
    free(copy);
    upres_ctx_free(ctx);
    return fail;
}

int tu_stderr_begin(void)
{
    fflush(stderr);
    int saved = dup(2);
    if (saved < 0) return -1;
    int fd = open(test_tmp("stderr.txt"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        close(saved);
        return -1;
    }
    dup2(fd, 2);
    close(fd);
    return saved;
}

long tu_stderr_end(int saved)
{
    fflush(stderr);
    if (saved < 0) return -1;
    dup2(saved, 2);
    close(saved);
    struct stat st;
    return stat(test_tmp("stderr.txt"), &st) == 0 ? (long)st.st_size : -1;
}

int tu_one_line(const char *s)
{
    const char *nl = strchr(s, '\n');
    return nl && nl != s && nl[1] == 0;
}

void tu_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

void tu_icc_header(uint8_t *buf, uint32_t total, uint32_t tags)
{
    memset(buf, 0, total);
    tu_put_be32(buf, total);
    tu_put_be32(buf + 8, 0x02100000);
    memcpy(buf + 12, "mntr", 4);
    memcpy(buf + 16, "RGB ", 4);
    memcpy(buf + 20, "XYZ ", 4);
    memcpy(buf + 36, "acsp", 4);
    tu_put_be32(buf + 68, 0x0000F6D6); /* D50 illuminant */
    tu_put_be32(buf + 72, 0x00010000);
    tu_put_be32(buf + 76, 0x0000D32D);
    tu_put_be32(buf + 128, tags);
}

void tu_icc_xyz_d50(uint8_t *p)
{
    memcpy(p, "XYZ ", 4);
    memset(p + 4, 0, 4);
    tu_put_be32(p + 8, 0x0000F6D6);
    tu_put_be32(p + 12, 0x00010000);
    tu_put_be32(p + 16, 0x0000D32D);
}
