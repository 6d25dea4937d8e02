/* Minimal test framework. Each TEST() registers itself; the runner
 * (test_main.c) forks one child per test, so a crash or hang is reported as
 * that test's failure, and ends with the line "N passed, N failed, N skipped". */
#ifndef UPRES_TEST_H
#define UPRES_TEST_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

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

#endif
