/* Unit tests for src/core and the format-independent parts of src/io:
 * status names, limits, images, conversion, orientation, the thread pool,
 * the EXIF reader, format detection and atomic writes. */
#include "test.h"
#include "upres.h"
#include "io/io_internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

TEST(core_strerror_names_every_status)
{
    for (int s = 0; s >= UPRES_ERR_TIMEOUT; s--)
        CHECKF(strcmp(upres_strerror(s), "unknown error") != 0, "status %d unnamed", s);
    CHECK(strcmp(upres_strerror(-999), "unknown error") == 0);
}

TEST(core_limits_defaults_and_checks)
{
    upres_limits l = upres_limits_defaults();
    CHECK_EQ(l.max_pixels, 268435456u);
    CHECK_EQ(l.max_side, 65535u);
    CHECK_EQ(upres_limits_check(&l, 65535, 4096, 4, 1), UPRES_OK);
    CHECK_EQ(upres_limits_check(&l, 65536, 1, 1, 1), UPRES_ERR_LIMIT);
    CHECK_EQ(upres_limits_check(&l, 20000, 20000, 3, 1), UPRES_ERR_LIMIT); /* 400 MP */
    CHECK_EQ(upres_limits_check(&l, 0, 10, 3, 1), UPRES_ERR_INVALID_ARG);
    CHECK_EQ(upres_limits_check(&l, 10, 10, 5, 1), UPRES_ERR_INVALID_ARG);
    l.max_side = UINT32_MAX;
    l.max_pixels = UINT64_MAX;
    l.max_memory_bytes = UINT64_MAX;
    CHECK_EQ(upres_limits_check(&l, UINT32_MAX, UINT32_MAX, 4, 4), UPRES_ERR_OVERFLOW);
    l = upres_limits_defaults();
    l.max_pixels = 100;
    upres_image *img = (upres_image *)1;
    CHECK_EQ(upres_image_new(&img, 11, 10, 1, UPRES_U8, &l), UPRES_ERR_LIMIT);
    CHECK(img == NULL);
    CHECK_OK(upres_image_new(&img, 10, 10, 1, UPRES_U8, &l));
    upres_image_free(img);
    upres_image_free(NULL);
    upres_ctx_free(NULL);
}

TEST(core_image_new_layout)
{
    upres_image *img;
    CHECK_OK(upres_image_new(&img, 7, 5, 3, UPRES_U16, NULL));
    CHECK_EQ(img->stride, 7 * 3 * 2);
    CHECK_EQ(img->orientation, 1);
    CHECK(img->icc == NULL);
    uint16_t *p = upres_image_row(img, 4);
    p[20] = 0xBEEF;
    CHECK_OK(upres_image_set_icc(img, "abc", 3));
    upres_image *c;
    CHECK_OK(upres_image_clone(img, &c));
    CHECK_EQ(((uint16_t *)upres_image_row(c, 4))[20], 0xBEEF);
    CHECK(c->icc_size == 3 && memcmp(c->icc, "abc", 3) == 0);
    CHECK(c->icc != img->icc);
    upres_image_free(c);
    CHECK_OK(upres_image_set_icc(img, NULL, 0));
    CHECK(img->icc == NULL && img->icc_size == 0);
    upres_image_free(img);
    CHECK_EQ(upres_image_new(&img, 1, 1, 1, (upres_depth)9, NULL), UPRES_ERR_INVALID_ARG);
}

TEST(core_convert_depths_round_trip)
{
    upres_image *a, *b, *c;
    CHECK_OK(upres_image_new(&a, 256, 1, 1, UPRES_U8, NULL));
    for (int i = 0; i < 256; i++) ((uint8_t *)a->data)[i] = (uint8_t)i;
    CHECK_OK(upres_image_convert(a, UPRES_U16, 1, 1.0f, &b));
    for (int i = 0; i < 256; i++) CHECK_EQ(((uint16_t *)b->data)[i], i * 257);
    CHECK_OK(upres_image_convert(b, UPRES_F32, 1, 1.0f, &c));
    upres_image_free(b);
    CHECK_OK(upres_image_convert(c, UPRES_U8, 1, 1.0f, &b));
    CHECK(memcmp(a->data, b->data, 256) == 0);
    upres_image_free(b);
    upres_image_free(c);
    upres_image_free(a);
    /* u16 -> u8 rounds to nearest: 128 (=0x0080) -> 0, 129*257-128 -> 129 */
    CHECK_OK(upres_image_new(&a, 3, 1, 1, UPRES_U16, NULL));
    uint16_t *s = a->data;
    s[0] = 128;
    s[1] = 129 * 257 - 128;
    s[2] = 65535;
    CHECK_OK(upres_image_convert(a, UPRES_U8, 1, 1.0f, &b));
    CHECK_EQ(((uint8_t *)b->data)[0], 0);
    CHECK_EQ(((uint8_t *)b->data)[1], 129);
    CHECK_EQ(((uint8_t *)b->data)[2], 255);
    upres_image_free(a);
    upres_image_free(b);
}

TEST(core_convert_channels)
{
    upres_image *a, *b;
    CHECK_OK(upres_image_new(&a, 2, 1, 4, UPRES_U8, NULL));
    uint8_t px[8] = {255, 0, 0, 255, 0, 0, 255, 0}; /* opaque red, transparent blue */
    memcpy(a->data, px, 8);
    /* drop alpha over white: red stays, transparent becomes white */
    CHECK_OK(upres_image_convert(a, UPRES_U8, 3, 1.0f, &b));
    uint8_t *o = b->data;
    CHECK(o[0] == 255 && o[1] == 0 && o[2] == 0);
    CHECK(o[3] == 255 && o[4] == 255 && o[5] == 255);
    upres_image_free(b);
    /* to gray: Rec. 709 luma of red = 0.2126 */
    CHECK_OK(upres_image_convert(a, UPRES_U8, 2, 1.0f, &b));
    o = b->data;
    CHECK_EQ(o[0], 54);
    CHECK_EQ(o[1], 255);
    CHECK_EQ(o[3], 0);
    upres_image_free(b);
    upres_image_free(a);
    /* gray -> RGBA replicates and adds opaque alpha; gray ICC is dropped */
    CHECK_OK(upres_image_new(&a, 1, 1, 1, UPRES_U16, NULL));
    ((uint16_t *)a->data)[0] = 1000;
    CHECK_OK(upres_image_set_icc(a, "x", 1));
    CHECK_OK(upres_image_convert(a, UPRES_U16, 4, 1.0f, &b));
    uint16_t *q = b->data;
    CHECK(q[0] == 1000 && q[1] == 1000 && q[2] == 1000 && q[3] == 65535);
    CHECK(b->icc == NULL);
    upres_image_free(b);
    upres_image_free(a);
}

/* For each EXIF orientation, where the stored top-left pixel must land. */
TEST(core_orientation_all_eight)
{
    /* stored 3x2 image, pixel value = 10*y + x */
    static const struct { int o; uint32_t w, h; uint8_t expect[6]; } cases[] = {
        {1, 3, 2, {0, 1, 2, 10, 11, 12}},
        {2, 3, 2, {2, 1, 0, 12, 11, 10}},
        {3, 3, 2, {12, 11, 10, 2, 1, 0}},
        {4, 3, 2, {10, 11, 12, 0, 1, 2}},
        {5, 2, 3, {0, 10, 1, 11, 2, 12}},
        {6, 2, 3, {10, 0, 11, 1, 12, 2}},
        {7, 2, 3, {12, 2, 11, 1, 10, 0}},
        {8, 2, 3, {2, 12, 1, 11, 0, 10}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        upres_image *img;
        CHECK_OK(upres_image_new(&img, 3, 2, 1, UPRES_U8, NULL));
        for (int y = 0; y < 2; y++)
            for (int x = 0; x < 3; x++) ((uint8_t *)upres_image_row(img, y))[x] = (uint8_t)(10 * y + x);
        img->orientation = cases[k].o;
        CHECK_OK(upres_image_apply_orientation(img));
        CHECK_EQ(img->orientation, 1);
        CHECKF(img->width == cases[k].w && img->height == cases[k].h, "orientation %d size", cases[k].o);
        for (uint32_t i = 0; i < 6; i++) {
            uint8_t v = ((uint8_t *)upres_image_row(img, i / img->width))[i % img->width];
            CHECKF(v == cases[k].expect[i], "orientation %d pixel %u: %d != %d", cases[k].o, i, v,
                   cases[k].expect[i]);
        }
        upres_image_free(img);
    }
}

typedef struct {
    int *hits;
    pthread_t caller;
    int progress_calls, progress_wrong_thread;
    uint64_t last_done;
    int cancel_after;
} pool_state;

static void mark(void *user, uint64_t b, uint64_t e)
{
    pool_state *s = user;
    for (uint64_t i = b; i < e; i++) __atomic_fetch_add(&s->hits[i], 1, __ATOMIC_RELAXED);
}

/* Slow chunks, so the calling thread surely gets some (cancellation is only
 * observed between the caller's own chunks). */
static void mark_slow(void *user, uint64_t b, uint64_t e)
{
    mark(user, b, e);
    nanosleep(&(struct timespec){0, 1000000}, NULL);
}

static int on_progress(void *user, const char *what, uint64_t done, uint64_t total)
{
    pool_state *s = user;
    (void)what;
    (void)total;
    s->progress_calls++;
    if (!pthread_equal(pthread_self(), s->caller)) s->progress_wrong_thread++;
    s->last_done = done;
    return s->cancel_after && s->progress_calls >= s->cancel_after;
}

#include "core/core_internal.h"

TEST(core_pool_covers_every_index_once)
{
    for (int threads = 1; threads <= 4; threads++) {
        pool_state s = {0};
        s.hits = calloc(10007, sizeof(int));
        s.caller = pthread_self();
        upres_ctx_desc d = upres_ctx_desc_defaults();
        d.threads = threads;
        d.progress = on_progress;
        d.progress_user = &s;
        upres_ctx *ctx;
        CHECK_OK(upres_ctx_new(&d, &ctx));
        CHECK_EQ(upres_ctx_threads(ctx), threads);
        for (int rep = 0; rep < 20; rep++) {
            CHECK_OK(upres__parallel_for(ctx, "test", 10007, 97, mark, &s));
            CHECK_EQ(s.last_done, 10007);
        }
        for (int i = 0; i < 10007; i++) CHECKF(s.hits[i] == 20, "index %d hit %d times", i, s.hits[i]);
        CHECK(s.progress_calls > 0);
        CHECK_EQ(s.progress_wrong_thread, 0);
        s.cancel_after = s.progress_calls + 1;
        CHECKF(upres__parallel_for(ctx, "test", 10007, 100, mark_slow, &s) == UPRES_ERR_CANCELLED, "threads %d calls %d", threads, s.progress_calls);
        upres_ctx_free(ctx);
        free(s.hits);
    }
}

TEST(core_exif_orientation_reader)
{
    /* little-endian TIFF header, IFD at 8 with one entry 0x0112 SHORT 1 = 6 */
    uint8_t le[] = {'E', 'x', 'i', 'f', 0, 0, 'I', 'I', 42, 0, 8, 0, 0, 0, 1, 0,
                    0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0};
    CHECK_EQ(upres__exif_orientation(le, sizeof le), 6);
    CHECK_EQ(upres__exif_orientation(le + 6, sizeof le - 6), 6);
    uint8_t be[] = {'M', 'M', 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 8, 0, 0};
    CHECK_EQ(upres__exif_orientation(be, sizeof be), 8);
    /* every truncation is safe and gives 1 or the value */
    for (size_t n = 0; n < sizeof le; n++) {
        int o = upres__exif_orientation(le, n);
        CHECKF(o == 1 || (o == 6 && n >= 26), "len %zu -> %d", n, o);
    }
    /* IFD offset pointing outside, bad value, wrong type */
    uint8_t bad[sizeof le];
    memcpy(bad, le, sizeof le);
    bad[10] = 200;
    CHECK_EQ(upres__exif_orientation(bad, sizeof bad), 1);
    memcpy(bad, le, sizeof le);
    bad[24] = 9;
    CHECK_EQ(upres__exif_orientation(bad, sizeof bad), 1);
    memcpy(bad, le, sizeof le);
    bad[18] = 4;
    CHECK_EQ(upres__exif_orientation(bad, sizeof bad), 1);
    CHECK_EQ(upres__exif_orientation(NULL, 100), 1);
}

TEST(core_format_detection)
{
    CHECK_EQ(upres_format_from_magic("\x89PNG\r\n\x1a\n", 8), UPRES_FORMAT_PNG);
    CHECK_EQ(upres_format_from_magic("\xff\xd8\xff\xe0", 4), UPRES_FORMAT_JPEG);
    CHECK_EQ(upres_format_from_magic("II*\0", 4), UPRES_FORMAT_TIFF);
    CHECK_EQ(upres_format_from_magic("MM\0*", 4), UPRES_FORMAT_TIFF);
    CHECK_EQ(upres_format_from_magic("RIFF\0\0\0\0WEBPVP8 ", 16), UPRES_FORMAT_WEBP);
    CHECK_EQ(upres_format_from_magic("RIFF\0\0\0\0WAVE", 12), UPRES_FORMAT_UNKNOWN);
    CHECK_EQ(upres_format_from_magic("\x89PNG", 4), UPRES_FORMAT_UNKNOWN);
    CHECK_EQ(upres_format_from_path("a/b.PNG"), UPRES_FORMAT_PNG);
    CHECK_EQ(upres_format_from_path("x.JpEg"), UPRES_FORMAT_JPEG);
    CHECK_EQ(upres_format_from_path("x.tif"), UPRES_FORMAT_TIFF);
    CHECK_EQ(upres_format_from_path("x.webp"), UPRES_FORMAT_WEBP);
    CHECK_EQ(upres_format_from_path("dir.png/noext"), UPRES_FORMAT_UNKNOWN);
    CHECK_EQ(upres_format_from_path("x.bmp"), UPRES_FORMAT_UNKNOWN);
    /* decoding judges by content, not the name */
    upres_ctx *ctx;
    CHECK_OK(upres_ctx_new(NULL, &ctx));
    upres_image *img = (upres_image *)1;
    CHECK_EQ(upres_decode(ctx, "GIF89a....", 10, NULL, &img, NULL), UPRES_ERR_UNKNOWN_FORMAT);
    CHECK(img == NULL);
    CHECK(strlen(upres_ctx_error(ctx)) > 0);
    CHECK_EQ(upres_decode(ctx, "", 0, NULL, &img, NULL), UPRES_ERR_UNKNOWN_FORMAT);
    CHECK_EQ(upres_load(ctx, test_tmp("missing.png"), NULL, &img, NULL), UPRES_ERR_IO);
    upres_ctx_free(ctx);
}

TEST(core_atomic_write_leaves_no_partial_file)
{
    const char *p = test_tmp("out.bin");
    CHECK_OK(upres_write_file_atomic(NULL, p, "hello", 5));
    size_t n;
    unsigned char *d = test_read_file(p, &n);
    CHECK(d && n == 5 && memcmp(d, "hello", 5) == 0);
    free(d);
    CHECK_OK(upres_write_file_atomic(NULL, p, "bye", 3));
    CHECK_EQ(test_dir_count(test_tmpdir()), 1);
    /* into a folder that does not exist: error, nothing created */
    CHECK_EQ(upres_write_file_atomic(NULL, test_tmp("nodir/x.bin"), "x", 1), UPRES_ERR_IO);
    CHECK_EQ(test_dir_count(test_tmpdir()), 1);
    /* a failing encode through upres_save leaves nothing either */
    upres_image *img;
    CHECK_OK(upres_image_new(&img, 4, 4, 3, UPRES_U8, NULL));
    upres_encode_desc e = upres_encode_desc_defaults();
    e.quality = 0;
    CHECK_EQ(upres_save(NULL, img, test_tmp("bad.jpg"), &e), UPRES_ERR_INVALID_ARG);
    CHECK_EQ(upres_save(NULL, img, test_tmp("bad.bmp"), NULL), UPRES_ERR_UNSUPPORTED);
    CHECK_EQ(test_dir_count(test_tmpdir()), 1);
    upres_image_free(img);
}

/* Many tiny back-to-back jobs: a worker that woke late for one job must not
 * run chunks of the next one a second time. */
TEST(core_pool_back_to_back_jobs_run_each_chunk_once)
{
    upres_ctx_desc d = upres_ctx_desc_defaults();
    d.threads = 4;
    upres_ctx *ctx;
    CHECK_OK(upres_ctx_new(&d, &ctx));
    pool_state s = {0};
    s.hits = calloc(8, sizeof(int));
    const int jobs = 40000;
    for (int j = 0; j < jobs; j++) CHECK_OK(upres__parallel_for(ctx, NULL, 8, 1, mark, &s));
    for (int i = 0; i < 8; i++) CHECKF(s.hits[i] == jobs, "index %d ran %d times, want %d", i, s.hits[i], jobs);
    free(s.hits);
    upres_ctx_free(ctx);
}

TEST(core_atomic_write_long_name)
{
    /* A target name at the file-system limit (255) must still be writable:
     * the temporary name may not be derived from it. */
    char name[256];
    memset(name, 'a', 251);
    memcpy(name + 251, ".bin", 5);
    CHECK_OK(upres_write_file_atomic(NULL, test_tmp(name), "x", 1));
    CHECK(test_file_exists(test_tmp(name)));
    CHECK_EQ(test_dir_count(test_tmpdir()), 1);
}
