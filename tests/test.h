/* Minimal test framework. Each TEST() registers itself; the runner
 * (test_main.c) forks one child per test, so a crash or hang is reported as
 * that test's failure, and ends with the line "N passed, N failed, N skipped". */
#ifndef UPRES_TEST_H
#define UPRES_TEST_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "upres.h"

typedef void (*test_fn)(void);
void test_register(const char *name, test_fn fn, const char *file);
void test_fail_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void test_skip(const char *reason);
int test_failed(void);

#define TEST(name)                                                            \
    static void name(void);                                                   \
    __attribute__((constructor)) static void test_reg_##name(void)            \
    {                                                                         \
        test_register(#name, name, __FILE__);                                 \
    }                                                                         \
    static void name(void)

/* On failure: report and return from the test function. */
#define CHECK(cond)                                                           \
    do {                                                                      \
        if (!(cond)) {                                                        \
            test_fail_at(__FILE__, __LINE__, "%s", #cond);                    \
            return;                                                           \
        }                                                                     \
    } while (0)
#define CHECKF(cond, ...)                                                     \
    do {                                                                      \
        if (!(cond)) {                                                        \
            test_fail_at(__FILE__, __LINE__, __VA_ARGS__);                    \
            return;                                                           \
        }                                                                     \
    } while (0)
#define CHECK_OK(expr)                                                        \
    do {                                                                      \
        int st_ = (expr);                                                     \
        if (st_ != 0) {                                                       \
            test_fail_at(__FILE__, __LINE__, "%s -> %d (%s)", #expr, st_,      \
                         upres_strerror(st_));                                \
            return;                                                           \
        }                                                                     \
    } while (0)
#define CHECK_EQ(a, b)                                                        \
    do {                                                                      \
        long long a_ = (long long)(a), b_ = (long long)(b);                   \
        if (a_ != b_) {                                                       \
            test_fail_at(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, \
                         a_, b_);                                             \
            return;                                                           \
        }                                                                     \
    } while (0)
#define SKIP(reason)                                                          \
    do {                                                                      \
        test_skip(reason);                                                    \
        return;                                                               \
    } while (0)

/* A fresh empty directory for this test (removed at the end of the run). */
const char *test_tmpdir(void);
/* Joins test_tmpdir() and `name` into a static-ish buffer (8 rotating slots). */
const char *test_tmp(const char *name);
/* Path of `rel` under the repository's tests/fixtures directory. */
const char *test_fixture(const char *rel);
/* Path of `rel` under $UPRES_SHARED (default ../shared), or NULL if missing. */
const char *test_shared(const char *rel);
/* Path of the upres executable under test ($UPRES_BIN, default build/upres). */
const char *test_upres_bin(void);

/* Runs argv (no shell) with a timeout. Captures up to cap-1 bytes of stdout
 * and stderr into out/err (either may be NULL). Returns the exit status
 * (0..255), or 128+signal if killed by a signal, or -1 on timeout / spawn
 * failure. */
int test_run(char *const argv[], int timeout_s, char *out, size_t out_cap, char *err,
             size_t err_cap);

/* Whole-file helpers. read returns malloc()ed bytes or NULL. */
unsigned char *test_read_file(const char *path, size_t *size);
int test_write_file(const char *path, const void *data, size_t size);
int test_file_exists(const char *path);
/* Number of entries in a directory (excluding . and ..), -1 on error. */
int test_dir_count(const char *path);

/* ---- Shared helpers of the test files (tests/test_util.c) ---- */

/* Next value of a xorshift32 sequence; *s is the state and must be nonzero. */
uint32_t tu_xorshift32(uint32_t *s);
/* A new context with one worker thread and default limits; NULL on failure.
 * The caller frees it with upres_ctx_free(). */
upres_ctx *tu_ctx_1thread(void);
/* Sample (x, y, channel c) of an image in [0,1] units (u8 / 255, u16 /
 * 65535, f32 as stored), and the reverse (rounded, not clamped). */
/* Runs `BIN [SUB] ARGS...` (BIN NULL = test_upres_bin(), SUB NULL = none,
 * ARGS a NULL-terminated list in ap, at most 60) without a shell, out and
 * err cleared first and filled as by test_run. Returns what test_run
 * returns. */
int tu_upres_va(const char *bin, const char *sub, int timeout_s, char *out, size_t out_cap,
                char *err, size_t err_cap, const char *first, va_list ap);
double tu_sample01(const upres_image *img, uint32_t x, uint32_t y, uint32_t c);
void tu_put01(upres_image *img, uint32_t x, uint32_t y, uint32_t c, double v);
/* A new w x h image of `ch` channels of depth d filled from tu_xorshift32
 * seeded with `seed` (0 counts as 1), in row-major sample order: full range
 * for u8/u16, [-2, 3) for f32. NULL on failure; the caller frees it. */
upres_image *tu_random_image(uint32_t w, uint32_t h, uint32_t ch, upres_depth d, uint32_t seed);
/* 1 when a and b have the same width, height, channels and depth and
 * identical sample bytes (row padding and metadata ignored), else 0. */
int tu_same_pixels(const upres_image *a, const upres_image *b);
/* PSNR in dB of u8 image b against u8 image a (same layout), over every
 * sample; 99.0 when identical. */
double tu_psnr_u8(const upres_image *a, const upres_image *b);
/* Decodes the n bytes at buf with a one-thread context whose max_pixels is
 * `max_pixels`; the decode must fail with UPRES_ERR_LIMIT, leave no image
 * and give a detail starting with `prefix`. Returns NULL when it does, else
 * a message naming what went wrong (static storage). */
const char *tu_decode_refused(const void *buf, size_t n, uint64_t max_pixels, const char *prefix);
/* With a context made from *d: loading fixture `too_big` must fail with
 * UPRES_ERR_LIMIT and leave no image, and loading fixture `fits` must
 * succeed. Returns NULL when both hold, else a message (static storage). */
const char *tu_limit_splits(const upres_ctx_desc *d, const char *too_big, const char *fits);
/* Damages the n-byte file: every strict prefix must fail, with a detail
 * starting with `prefix` once the cut is >= detail_from bytes; `flips`
 * single-bit flips (positions from tu_xorshift32 seeded with `seed`) must
 * each fail or give a well-formed image of min_channels..4 channels whose
 * every byte is readable. No failed decode may leave an image. Returns NULL
 * when all hold, else a message (static storage). */
const char *tu_mangle(const void *file, size_t n, int flips, uint32_t seed, const char *prefix,
                      size_t detail_from, uint32_t min_channels);
/* Redirects file descriptor 2 to test_tmp("stderr.txt"), so a test can
 * prove nothing was printed. Returns the saved descriptor to pass to
 * tu_stderr_end(), or -1 on failure (stderr then unchanged). */
int tu_stderr_begin(void);
/* Restores stderr from `saved` (if >= 0) and returns how many bytes were
 * written while redirected, or -1 when that cannot be told. */
long tu_stderr_end(int saved);
/* 1 when s is exactly one non-empty line ending in '\n'. */
int tu_one_line(const char *s);
/* Stores v at p as 4 big-endian bytes. */
void tu_put_be32(uint8_t *p, uint32_t v);
/* Zeroes buf[0..total) and writes an ICC v2.1 RGB display ('mntr') profile
 * header of `total` bytes with an XYZ PCS, the D50 illuminant and a tag
 * count of `tags` (at offset 128). buf must hold at least 132 bytes. */
void tu_icc_header(uint8_t *buf, uint32_t total, uint32_t tags);
/* Writes a 20-byte ICC 'XYZ ' tag holding D50 at p. */
void tu_icc_xyz_d50(uint8_t *p);

#endif
