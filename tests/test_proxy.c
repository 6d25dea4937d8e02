/* Proxy workflow in the library: geometry, metadata, SHA-256, proxy, delta
 * and the streaming merge (identity, uniform changes, refine, 16-bit, the
 * Pillow oracle fixture). */
#include "test.h"

#include "core/core_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static upres_proxy_dim px(double v) { return (upres_proxy_dim){v, 0}; }
static upres_proxy_dim pc(double v) { return (upres_proxy_dim){v, 1}; }

TEST(proxy_plan_fits_centres_and_pads)
{
    upres_proxy_geometry g;
    CHECK_OK(upres_proxy_plan(4000, 3000, px(512), px(512), &g));
    CHECK_EQ(g.proxy_width, 512);
    CHECK_EQ(g.proxy_height, 512);
    CHECK_EQ(g.content_width, 512);
    CHECK_EQ(g.content_height, 384);
    CHECK_EQ(g.content_x, 0);
    CHECK_EQ(g.content_y, 64);
    /* Portrait: bands left and right. */
    CHECK_OK(upres_proxy_plan(3000, 4000, px(512), px(512), &g));
    CHECK(g.content_width == 384 && g.content_height == 512 && g.content_x == 64 && g.content_y == 0);
    /* Percentages: no padding. */
    CHECK_OK(upres_proxy_plan(4000, 3000, pc(25), pc(25), &g));
    CHECK(g.proxy_width == 1000 && g.proxy_height == 750 && g.content_width == 1000 &&
          g.content_height == 750 && g.content_x == 0 && g.content_y == 0);
    /* 33.3% of 3000 is 999 (not 998 from binary rounding). */
    CHECK_OK(upres_proxy_plan(3000, 3000, pc(33.3), pc(33.3), &g));
    CHECK_EQ(g.proxy_width, 999);
    /* Unequal percentages: the smaller binds, no padding. */
    CHECK_OK(upres_proxy_plan(4000, 3000, pc(50), pc(25), &g));
    CHECK(g.proxy_width == 1000 && g.proxy_height == 750);
    /* Odd slack: round(slack / 2) with ties to even, as ImageOps.pad. */
    CHECK_OK(upres_proxy_plan(1000, 333, px(100), px(100), &g));
    CHECK(g.content_width == 100 && g.content_height == 33 && g.content_y == 34);
    CHECK_EQ(g.proxy_height - g.content_y - g.content_height, 33);
    CHECK_OK(upres_proxy_plan(1000, 350, px(100), px(100), &g)); /* slack 65 */
    CHECK(g.content_height == 35 && g.content_y == 32);
    /* Extreme aspect: at least one pixel. */
    CHECK_OK(upres_proxy_plan(60000, 1, px(64), px(64), &g));
    CHECK(g.content_width == 64 && g.content_height == 1);
    /* Invalid targets. */
    CHECK_EQ(upres_proxy_plan(4000, 3000, px(0), px(512), &g), UPRES_ERR_INVALID_ARG);
    CHECK_EQ(upres_proxy_plan(4000, 3000, px(12.5), px(512), &g), UPRES_ERR_INVALID_ARG);
    CHECK_EQ(upres_proxy_plan(100, 100, pc(0.5), pc(0.5), &g), UPRES_ERR_INVALID_ARG);
    CHECK_EQ(upres_proxy_plan(4000, 3000, px(70000), px(512), &g), UPRES_ERR_LIMIT);
    CHECK_EQ(upres_proxy_plan(0, 3000, px(512), px(512), &g), UPRES_ERR_INVALID_ARG);
}

static void fill_meta(upres_proxy_metadata *m)
{
    memset(m, 0, sizeof *m);
    m->format_version = UPRES_PROXY_METADATA_VERSION;
    snprintf(m->original_path, sizeof m->original_path, "/tmp/odd dir\\x/a=b\nc\r.jpg");
    snprintf(m->proxy_path, sizeof m->proxy_path, "/tmp/odd dir\\x/a=b\nc\r_proxy.png");
    m->original_bytes = 123456789012ull;
    snprintf(m->original_sha256, sizeof m->original_sha256, "%s",
             "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    m->original_channels = 4;
    m->original_depth = 16;
    m->proxy_depth = 8;
    m->filter = UPRES_FILTER_LANCZOS3;
    upres_proxy_plan(4000, 3000, px(512), px(512), &m->geom);
}

TEST(proxy_metadata_round_trips)
{
    upres_proxy_metadata m, r;
    fill_meta(&m);
    char *text = NULL, *again = NULL;
    size_t n, n2;
    CHECK_OK(upres_proxy_metadata_format(&m, &text, &n));
    CHECK(strstr(text, "content_y=64\n") && strstr(text, "pad_bottom=64\n") &&
          strstr(text, "original_width=4000\n") && strstr(text, "filter=lanczos3\n"));
    /* Escaped: one line per key whatever the path holds. */
    CHECK(strstr(text, "original_path=/tmp/odd dir\\\\x/a=b\\nc\\r.jpg\n"));
    int st = upres_proxy_metadata_parse(NULL, text, n, &r);
    if (st) free(text);
    CHECK_OK(st);
    CHECK(!strcmp(r.original_path, m.original_path) && !strcmp(r.proxy_path, m.proxy_path));
    CHECK(!strcmp(r.original_sha256, m.original_sha256));
    CHECK(r.original_bytes == m.original_bytes && r.original_channels == 4 &&
          r.original_depth == 16 && r.proxy_depth == 8 && r.filter == UPRES_FILTER_LANCZOS3 &&
          r.format_version == 1);
    CHECK(!memcmp(&r.geom, &m.geom, sizeof r.geom));
    CHECK_OK(upres_proxy_metadata_format(&r, &again, &n2));
    CHECK(n == n2 && !memcmp(text, again, n));
    free(text);
    free(again);
    /* Through a file. */
    const char *path = test_tmp("m.txt");
    CHECK_OK(upres_proxy_metadata_save(NULL, path, &m));
    CHECK_OK(upres_proxy_metadata_load(NULL, path, &r));
    CHECK(!memcmp(&r.geom, &m.geom, sizeof r.geom) && !strcmp(r.original_path, m.original_path));
}

TEST(proxy_metadata_reads_imgproxyproc_files)
{
    const char *text = "original_path=photos/a b.jpg\noriginal_width=4000\noriginal_height=3000\n"
                       "proxy_width=512\nproxy_height=512\nproxy_path=photos/a b_proxy.png\n";
    upres_proxy_metadata r;
    CHECK_OK(upres_proxy_metadata_parse(NULL, text, strlen(text), &r));
    CHECK_EQ(r.format_version, 0);
    CHECK(!strcmp(r.original_path, "photos/a b.jpg"));
    CHECK(r.geom.content_width == 512 && r.geom.content_height == 384 && r.geom.content_y == 64);
    /* imgproxyproc wrote raw backslashes: they are kept. */
    const char *win = "original_path=C:\\x\\n.jpg\noriginal_width=10\noriginal_height=10\n"
                      "proxy_width=5\nproxy_height=5\n";
    CHECK_OK(upres_proxy_metadata_parse(NULL, win, strlen(win), &r));
    CHECK(!strcmp(r.original_path, "C:\\x\\n.jpg"));
}

TEST(proxy_metadata_rejects_wrong_files_naming_the_line)
{
    upres_ctx *ctx = tu_ctx_1thread();
    CHECK(ctx);
    static const struct {
        const char *text;
        const char *detail;
    } cases[] = {
        {"format_version=1\noriginal_width=4000\noriginal_height=x\nproxy_width=5\nproxy_height=5\n",
         "line 3: original_height: not a whole number"},
        {"original_width=4000\nproxy_width=5\nproxy_height=5\n", "original_height is missing"},
        {"format_version=1\noriginal_width=40\noriginal_height=30\nproxy_width=5\nproxy_height=5\n"
         "content_x=0\ncontent_y=0\ncontent_width=6\ncontent_height=5\n",
         "does not fit"},
        {"format_version=1\noriginal_width=40\noriginal_height=30\nproxy_width=5\nproxy_height=5\n"
         "content_x=0\ncontent_y=1\ncontent_width=5\ncontent_height=3\npad_bottom=2\n",
         "pad_bottom=2 disagrees"},
        {"format_version=1\noriginal_width=40\noriginal_height=30\nproxy_width=5\nproxy_height=5\n"
         "content_x=0\n",
         "must all be given"},
        {"format_version=9\noriginal_width=40\noriginal_height=30\nproxy_width=5\nproxy_height=5\n",
         "newer"},
        {"original_width=40\noriginal_width=40\n", "line 2: original_width given twice"},
        {"hello\n", "line 1: no '='"},
        {"format_version=1\noriginal_width=40\noriginal_height=30\nproxy_width=5\nproxy_height=5\n"
         "original_path=a\\q\n",
         "original_path is malformed"},
        {"format_version=1\noriginal_width=0\noriginal_height=30\nproxy_width=5\nproxy_height=5\n",
         "sides must be"},
        {"format_version=1\noriginal_width=40\noriginal_height=30\nproxy_width=5\nproxy_height=5\n"
         "original_sha256=xyz\n",
         "64 hex digits"},
    };
    upres_proxy_metadata r;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int st = upres_proxy_metadata_parse(ctx, cases[i].text, strlen(cases[i].text), &r);
        CHECKF(st < 0, "case %zu accepted", i);
        CHECKF(strstr(upres_ctx_error(ctx), cases[i].detail), "case %zu: '%s'", i,
               upres_ctx_error(ctx));
    }
    CHECK_EQ(upres_proxy_metadata_load(ctx, test_tmp("missing.txt"), &r), UPRES_ERR_IO);
    upres_ctx_free(ctx);
}

TEST(proxy_sha256_known_answers)
{
    char hex[65];
    upres__sha256_hex("", 0, hex);
    CHECK(!strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    upres__sha256_hex("abc", 3, hex);
    CHECK(!strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    upres__sha256_hex(two, strlen(two), hex);
    CHECK(!strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
    /* A million 'a' through a file: crosses many read blocks. */
    size_t n = 1000000;
    char *buf = malloc(n);
    CHECK(buf);
    memset(buf, 'a', n);
    const char *path = test_tmp("a.bin");
    int ok = test_write_file(path, buf, n) == 0;
    free(buf);
    CHECK(ok);
    uint64_t bytes = 0;
    CHECK_OK(upres_sha256_file(NULL, path, hex, &bytes));
    CHECK_EQ(bytes, 1000000);
    CHECK(!strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"));
}

/* Smooth test picture with texture, values in [lo, hi] (8-bit levels). */
static upres_image *picture(uint32_t w, uint32_t h, uint32_t ch, upres_depth d, double lo,
                            double hi, uint32_t seed)
{
    upres_image *img = NULL;
    if (upres_image_new(&img, w, h, ch, d, NULL)) return NULL;
    uint32_t s = seed ? seed : 1;
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++)
            for (uint32_t c = 0; c < ch; c++) {
                double t = 0.5 + 0.3 * sin(x * 0.05 + c) * cos(y * 0.07 - c) +
                           0.2 * ((tu_xorshift32(&s) & 1023) / 1023.0 - 0.5);
                if (c == 3 || (ch == 2 && c == 1)) t = ((x + y) % 7) / 6.0; /* alpha */
                double v = lo + (hi - lo) * (t < 0 ? 0 : t > 1 ? 1 : t);
                size_t i = ((size_t)y * w + x) * ch + c;
                if (d == UPRES_U8)
                    ((uint8_t *)img->data)[i] = (uint8_t)floor(v + 0.5);
                else
                    ((uint16_t *)img->data)[i] = (uint16_t)floor(v * 257 + 0.5);
            }
    return img;
}

TEST(proxy_make_pads_with_black_and_centres)
{
    upres_ctx *ctx = tu_ctx_1thread();
    upres_image *orig = picture(400, 300, 3, UPRES_U8, 30, 220, 5), *proxy = NULL, *ref = NULL;
    CHECK(ctx && orig);
    upres_proxy_geometry g;
    CHECK_OK(upres_proxy_plan(400, 300, px(64), px(64), &g));
    CHECK_OK(upres_proxy_make(ctx, orig, &g, UPRES_FILTER_LANCZOS3, UPRES_U8, &proxy));
    CHECK(proxy->width == 64 && proxy->height == 64 && proxy->channels == 3);
    upres_resize_desc rd = upres_resize_desc_defaults();
    rd.width = 64;
    rd.height = 48;
    CHECK_OK(upres_resize(ctx, orig, &rd, &ref));
    for (uint32_t y = 0; y < 64; y++) {
        const uint8_t *row = upres_image_row(proxy, y);
        for (uint32_t i = 0; i < 64 * 3; i++) {
            int want = (y < 8 || y >= 56) ? 0 : ((uint8_t *)upres_image_row(ref, y - 8))[i];
            CHECKF(row[i] == want, "y %u i %u: %d != %d", y, i, row[i], want);
        }
    }
    upres_image_free(proxy);
    upres_image_free(orig);
    upres_image_free(ref);
    /* With alpha the bands are transparent; a 16-bit proxy of an 8-bit image
     * is the 8-bit one times 257. */
    orig = picture(300, 400, 4, UPRES_U8, 0, 255, 6);
    CHECK(orig);
    CHECK_OK(upres_proxy_plan(300, 400, px(40), px(40), &g));
    CHECK_OK(upres_proxy_make(ctx, orig, &g, UPRES_FILTER_LANCZOS3, UPRES_U16, &proxy));
    CHECK(proxy->depth == UPRES_U16 && proxy->channels == 4 && g.content_x == 5);
    const uint16_t *r0 = upres_image_row(proxy, 10);
    CHECK(r0[0] == 0 && r0[3] == 0 && r0[5 * 4 + 3] != 0);
    for (uint32_t i = 0; i < 4; i++) CHECK_EQ(r0[5 * 4 + i] % 257, 0);
    upres_image_free(proxy);
    upres_image_free(orig);
    upres_ctx_free(ctx);
}

/* One-pixel images for the delta formulas. */
static upres_image *pixel(uint32_t ch, upres_depth d, const int *v)
{
    upres_image *img = NULL;
    if (upres_image_new(&img, 1, 1, ch, d, NULL)) return NULL;
    for (uint32_t c = 0; c < ch; c++) {
        if (d == UPRES_U8)
            ((uint8_t *)img->data)[c] = (uint8_t)v[c];
        else
            ((uint16_t *)img->data)[c] = (uint16_t)v[c];
    }
    return img;
}

TEST(proxy_delta_formulas)
{
    upres_ctx *ctx = tu_ctx_1thread();
    CHECK(ctx);
    /* proxy, processed -> 8-bit delta, refined, 16-bit delta */
    static const int cases[][5] = {
        {100, 100, 127, 127, 32768}, {100, 120, 147, 127, 32768 + 20 * 128},
        {10, 250, 255, 239, 32768 + 240 * 128}, {250, 0, 0, 4, 32768 - 250 * 128},
        {0, 255, 255, 254, 32768 + 255 * 128}, {255, 0, 0, 0, 32768 - 255 * 128},
        {50, 250, 255, 199, 32768 + 200 * 128}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int p[3] = {cases[i][0], cases[i][0], cases[i][0]};
        int q[3] = {cases[i][1], cases[i][1], cases[i][1]};
        upres_image *P = pixel(3, UPRES_U8, p), *Q = pixel(3, UPRES_U8, q), *D = NULL, *R = NULL,
                    *D16 = NULL;
        CHECK(P && Q);
        CHECK_OK(upres_proxy_delta(ctx, P, Q, 8, &D, &R));
        CHECK_OK(upres_proxy_delta(ctx, P, Q, 16, &D16, NULL));
        CHECKF(((uint8_t *)D->data)[1] == cases[i][2], "case %zu delta %d", i, ((uint8_t *)D->data)[1]);
        CHECKF(((uint8_t *)R->data)[1] == cases[i][3], "case %zu refined %d", i, ((uint8_t *)R->data)[1]);
        CHECKF(((uint16_t *)D16->data)[2] == cases[i][4], "case %zu 16-bit %d", i,
               ((uint16_t *)D16->data)[2]);
        upres_image_free(P);
        upres_image_free(Q);
        upres_image_free(D);
        upres_image_free(R);
        upres_image_free(D16);
    }
    /* Channels: gray proxy + RGB processed -> RGB delta; processed alpha
     * against a proxy without alpha counts from opaque. */
    int g1[1] = {100}, rgba[4] = {90, 100, 110, 200};
    upres_image *P = pixel(1, UPRES_U8, g1), *Q = pixel(4, UPRES_U8, rgba), *D = NULL;
    CHECK_OK(upres_proxy_delta(ctx, P, Q, 8, &D, NULL));
    CHECK(D->channels == 4);
    const uint8_t *d = D->data;
    CHECK(d[0] == 117 && d[1] == 127 && d[2] == 137 && d[3] == 72);
    upres_image_free(D);
    /* Sizes must match, with imgproxyproc's message. */
    upres_image *big = NULL;
    CHECK_OK(upres_image_new(&big, 2, 1, 3, UPRES_U8, NULL));
    CHECK_EQ(upres_proxy_delta(ctx, P, big, 8, &D, NULL), UPRES_ERR_INVALID_ARG);
    CHECK(D == NULL && strstr(upres_ctx_error(ctx), "Proxy and processed images must have same size"));
    /* The refined delta belongs to the 8-bit encoding. */
    upres_image *R = NULL;
    CHECK_EQ(upres_proxy_delta(ctx, P, Q, 16, &D, &R), UPRES_ERR_INVALID_ARG);
    upres_image_free(big);
    upres_image_free(P);
    upres_image_free(Q);
    upres_ctx_free(ctx);
}

/* ---- merge ------------------------------------------------------------------ */

/* Adds `add` 8-bit levels to every colour sample of a proxy (clamped), so a
 * "model" brightens the picture. Alpha is left alone. */
static void brighten(upres_image *img, int add)
{
    const uint32_t C = img->channels, cc = C >= 3 ? 3 : 1;
    for (uint32_t y = 0; y < img->height; y++)
        for (uint32_t x = 0; x < img->width; x++)
            for (uint32_t c = 0; c < cc; c++) {
                size_t i = (size_t)x * C + c;
                if (img->depth == UPRES_U8) {
                    uint8_t *p = (uint8_t *)upres_image_row(img, y) + i;
                    int v = *p + add;
                    *p = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
                } else {
                    uint16_t *p = (uint16_t *)upres_image_row(img, y) + i;
                    int v = *p + add * 257;
                    *p = (uint16_t)(v < 0 ? 0 : v > 65535 ? 65535 : v);
                }
            }
}

/* Merge method of round_trip (the guided tests set them and put them back). */
static upres_merge_method rt_method = UPRES_MERGE_DELTA;
static int rt_residual;
/* Colour edit of round_trip: 0 = brighten by `add`, 1 = grade(). */
static int rt_edit;

/* A colour grade with cross terms (a per-pixel affine map, clipped): what a
 * colour model does and what a delta cannot carry into texture. */
static void grade(upres_image *img)
{
    static const double M[3][4] = {
        {1.15, 0.10, -0.20, 0.02}, {-0.05, 0.90, 0.10, 0.03}, {-0.15, 0.05, 0.80, 0.10}};
    const uint32_t C = img->channels;
    const double maxv = img->depth == UPRES_U8 ? 255 : 65535;
    for (uint32_t y = 0; y < img->height; y++)
        for (uint32_t x = 0; x < img->width; x++) {
            double v[3], o[3];
            for (int c = 0; c < 3; c++) {
                size_t i = (size_t)x * C + (C >= 3 ? (size_t)c : 0);
                v[c] = (img->depth == UPRES_U8 ? ((uint8_t *)upres_image_row(img, y))[i]
                                               : ((uint16_t *)upres_image_row(img, y))[i]) /
                       maxv;
            }
            for (int c = 0; c < 3; c++) {
                double t = M[c][0] * v[0] + M[c][1] * v[1] + M[c][2] * v[2] + M[c][3];
                o[c] = floor((t < 0 ? 0 : t > 1 ? 1 : t) * maxv + 0.5);
            }
            for (int c = 0; c < (C >= 3 ? 3 : 1); c++) {
                size_t i = (size_t)x * C + (size_t)c;
                if (img->depth == UPRES_U8)
                    ((uint8_t *)upres_image_row(img, y))[i] = (uint8_t)o[c];
                else
                    ((uint16_t *)upres_image_row(img, y))[i] = (uint16_t)o[c];
            }
        }
}

/* Full round: save `orig`, make its proxy (pixel target tw x th, or
 * percentages when pct), apply `add` to it, compute the delta(s), merge, and
 * load the result. */
static int round_trip(upres_ctx *ctx, const upres_image *orig, double tw, double th, int pct,
                      int add, int bits, int refine, uint32_t strip, upres_image **out)
{
    const char *opath = test_tmp("orig.png"), *mpath = test_tmp("merged.png");
    upres_encode_desc ed = upres_encode_desc_defaults();
    ed.format = UPRES_FORMAT_PNG;
    int st = upres_save(ctx, orig, opath, &ed);
    if (st) return st;
    upres_proxy_geometry g;
    upres_proxy_dim dw = {tw, pct}, dh = {th, pct};
    st = upres_proxy_plan(orig->width, orig->height, dw, dh, &g);
    if (st) return st;
    upres_image *proxy = NULL, *proc = NULL, *delta = NULL, *refined = NULL;
    st = upres_proxy_make(ctx, orig, &g, UPRES_FILTER_LANCZOS3, UPRES_U8, &proxy);
    if (!st) st = upres_image_clone(proxy, &proc);
    if (!st) {
        if (rt_edit)
            grade(proc);
        else
            brighten(proc, add);
        st = upres_proxy_delta(ctx, proxy, proc, bits, &delta, refine ? &refined : NULL);
    }
    if (!st) {
        upres_merge_desc md = upres_merge_desc_defaults();
        md.original_path = opath;
        md.output_path = mpath;
        md.delta = delta;
        md.refined = refined;
        md.geom = &g;
        md.encode.format = UPRES_FORMAT_PNG;
        md.strip_rows = strip;
        md.method = rt_method;
        md.residual = rt_residual;
        st = upres_proxy_merge(ctx, &md);
    }
    if (!st) st = upres_load(ctx, mpath, NULL, out, NULL);
    upres_image_free(proxy);
    upres_image_free(proc);
    upres_image_free(delta);
    upres_image_free(refined);
    return st;
}

/* Every depth and channel layout the identity tests cover. */
static const upres_depth depths[2] = {UPRES_U8, UPRES_U16};
static const uint32_t chans[4] = {3, 4, 1, 2};

static upres_ctx *ctx_threads(int n)
{
    upres_ctx *ctx = NULL;
    upres_ctx_desc cd = upres_ctx_desc_defaults();
    cd.threads = n;
    return upres_ctx_new(&cd, &ctx) == UPRES_OK ? ctx : NULL;
}

TEST(proxy_merge_identity_is_bit_exact)
{
    upres_ctx *ctx = ctx_threads(2);
    CHECK(ctx);
    for (int di = 0; di < 2; di++)
        for (int ci = 0; ci < 4; ci++)
            for (int pct = 0; pct < 2; pct++) {
                /* Full-range noise: any rounding or clamping slip shows. */
                upres_image *orig = tu_random_image(203, 151, chans[ci], depths[di],
                                                    (uint32_t)(7 + di * 10 + ci * 2 + pct)),
                            *out = NULL;
                CHECK(orig);
                int st = round_trip(ctx, orig, pct ? 30 : 64, pct ? 30 : 64, pct, 0, 8, 1, 0, &out);
                if (st) upres_image_free(orig);
                CHECKF(st == 0, "depth %d ch %u pct %d: %s (%s)", di, chans[ci], pct,
                       upres_strerror(st), upres_ctx_error(ctx));
                int same = tu_same_pixels(orig, out);
                upres_image_free(orig);
                upres_image_free(out);
                CHECKF(same, "depth %d channels %u pct %d: not bit-exact", di, chans[ci], pct);
            }
    upres_ctx_free(ctx);
}

/* Largest |out - (orig + add)| over colour samples, expected value clamped
 * to the range; alpha must be unchanged (exactly). */
static int max_err(const upres_image *orig, const upres_image *out, int add, int *alpha_bad)
{
    const uint32_t C = orig->channels, cc = C >= 3 ? 3 : 1;
    const int maxv = orig->depth == UPRES_U8 ? 255 : 65535;
    const int scale = orig->depth == UPRES_U8 ? 1 : 257;
    int worst = 0;
    *alpha_bad = 0;
    for (uint32_t y = 0; y < orig->height; y++)
        for (uint32_t x = 0; x < orig->width; x++)
            for (uint32_t c = 0; c < C; c++) {
                size_t i = (size_t)x * C + c;
                int a, b;
                if (orig->depth == UPRES_U8) {
                    a = ((uint8_t *)upres_image_row(orig, y))[i];
                    b = ((uint8_t *)upres_image_row(out, y))[i];
                } else {
                    a = ((uint16_t *)upres_image_row(orig, y))[i];
                    b = ((uint16_t *)upres_image_row(out, y))[i];
                }
                if (c >= cc) {
                    if (a != b) *alpha_bad = 1;
                    continue;
                }
                int want = a + add * scale;
                want = want < 0 ? 0 : want > maxv ? maxv : want;
                int e = abs(b - want);
                if (e > worst) worst = e;
            }
    return worst;
}

TEST(proxy_merge_uniform_change_carries_within_one_level)
{
    upres_ctx *ctx = tu_ctx_1thread();
    CHECK(ctx);
    for (int di = 0; di < 2; di++)
        for (int alpha = 0; alpha < 2; alpha++) {
            upres_depth d = di ? UPRES_U16 : UPRES_U8;
            upres_image *orig = picture(333, 250, alpha ? 4 : 3, d, 20, 200, 11), *out = NULL;
            CHECK(orig);
            /* Isolated bright pixels: original + 20 clamps there, while the
             * proxy (and so the model's input) stays unclipped. */
            for (uint32_t k = 0; k < 40; k++) {
                uint32_t x = 7 + k * 8, y = 5 + (k * 37) % 240;
                for (uint32_t c = 0; c < 3; c++) {
                    size_t i = (size_t)x * orig->channels + c;
                    if (d == UPRES_U8)
                        ((uint8_t *)upres_image_row(orig, y))[i] = 250;
                    else
                        ((uint16_t *)upres_image_row(orig, y))[i] = 64250;
                }
            }
            int st = round_trip(ctx, orig, 100, 100, 0, 20, 8, 0, 0, &out);
            if (st) upres_image_free(orig);
            CHECK_OK(st);
            int abad;
            int e = max_err(orig, out, 20, &abad);
            upres_image_free(orig);
            upres_image_free(out);
            /* 8-bit: within 1 level; 16-bit: exact up to one 16-bit step. */
            CHECKF(e <= 1 && !abad, "depth %d alpha %d: max error %d, alpha changed %d", di, alpha, e, abad);
        }
    upres_ctx_free(ctx);
}

TEST(proxy_merge_refine_and_16bit_carry_big_changes)
{
    upres_ctx *ctx = tu_ctx_1thread();
    upres_image *orig = picture(240, 180, 3, UPRES_U8, 0, 50, 21), *out = NULL;
    CHECK(ctx && orig);
    int abad, e;
    /* The single 8-bit delta clips at +128. */
    CHECK_OK(round_trip(ctx, orig, 60, 60, 0, 200, 8, 0, 0, &out));
    e = max_err(orig, out, 128, &abad);
    upres_image_free(out);
    CHECKF(e <= 1, "plain delta: error %d against +128", e);
    /* With the refined delta the whole +200 arrives. */
    CHECK_OK(round_trip(ctx, orig, 60, 60, 0, 200, 8, 1, 0, &out));
    e = max_err(orig, out, 200, &abad);
    upres_image_free(out);
    CHECKF(e <= 1, "refined: error %d against +200", e);
    /* So does the single 16-bit delta, and -200 too. */
    CHECK_OK(round_trip(ctx, orig, 60, 60, 0, 200, 16, 0, 0, &out));
    e = max_err(orig, out, 200, &abad);
    upres_image_free(out);
    CHECKF(e <= 1, "16-bit delta: error %d against +200", e);
    upres_image_free(orig);
    orig = picture(240, 180, 3, UPRES_U8, 205, 255, 22);
    CHECK_OK(round_trip(ctx, orig, 60, 60, 0, -200, 16, 0, 0, &out));
    e = max_err(orig, out, -200, &abad);
    upres_image_free(out);
    upres_image_free(orig);
    CHECKF(e <= 1, "16-bit delta: error %d against -200", e);
    upres_ctx_free(ctx);
}

TEST(proxy_merge_strip_height_does_not_change_the_result)
{
    upres_ctx *ctx = NULL;
    upres_ctx_desc cd = upres_ctx_desc_defaults();
    cd.threads = 2;
    CHECK_OK(upres_ctx_new(&cd, &ctx));
    upres_image *orig = picture(181, 97, 3, UPRES_U8, 10, 240, 31), *a = NULL, *b = NULL;
    CHECK(orig);
    CHECK_OK(round_trip(ctx, orig, 50, 50, 0, 13, 8, 0, 1, &a));
    CHECK_OK(round_trip(ctx, orig, 50, 50, 0, 13, 8, 0, 64, &b));
    int same = tu_same_pixels(a, b);
    upres_image_free(a);
    CHECK_OK(round_trip(ctx, orig, 50, 50, 0, 13, 8, 0, 7, &a));
    same = same && tu_same_pixels(a, b);
    upres_image_free(a);
    upres_image_free(b);
    upres_image_free(orig);
    upres_ctx_free(ctx);
    CHECK(same);
}

TEST(proxy_guided_identity_is_within_one_level)
{
    upres_ctx *ctx = ctx_threads(2);
    CHECK(ctx);
    static const upres_merge_method methods[2] = {UPRES_MERGE_GUIDED, UPRES_MERGE_AUTO};
    for (int di = 0; di < 2; di++)
        for (int ci = 0; ci < 4; ci++)
            for (int k = 0; k < 3; k++) {
                rt_method = methods[k / 2];
                rt_residual = k == 1;
                upres_image *orig = tu_random_image(203, 151, chans[ci], depths[di],
                                                    (uint32_t)(70 + di * 10 + ci * 3 + k)),
                            *out = NULL;
                CHECK(orig);
                int st = round_trip(ctx, orig, 64, 64, 0, 0, k == 2 ? 16 : 8, 0, 0, &out);
                rt_method = UPRES_MERGE_DELTA;
                rt_residual = 0;
                if (st) upres_image_free(orig);
                CHECKF(st == 0, "depth %d ch %u case %d: %s (%s)", di, chans[ci], k,
                       upres_strerror(st), upres_ctx_error(ctx));
                int abad, e = max_err(orig, out, 0, &abad);
                upres_image_free(orig);
                upres_image_free(out);
                CHECKF(e <= 1 && !abad, "depth %d channels %u case %d: max error %d, alpha "
                                        "changed %d", di, chans[ci], k, e, abad);
            }
    upres_ctx_free(ctx);
}

/* PSNR (dB) of b against a over colour samples, in 8-bit units. */
static double psnr_colour(const upres_image *a, const upres_image *b)
{
    const uint32_t C = a->channels, cc = C >= 3 ? 3 : 1;
    const double unit = a->depth == UPRES_U8 ? 1.0 : 1.0 / 257;
    double s = 0;
    size_t n = 0;
    for (uint32_t y = 0; y < a->height; y++)
        for (uint32_t x = 0; x < a->width; x++)
            for (uint32_t c = 0; c < cc; c++) {
                size_t i = (size_t)x * C + c;
                double d = a->depth == UPRES_U8
                               ? (double)((uint8_t *)upres_image_row(a, y))[i] -
                                     ((uint8_t *)upres_image_row(b, y))[i]
                               : (double)((uint16_t *)upres_image_row(a, y))[i] -
                                     ((uint16_t *)upres_image_row(b, y))[i];
                s += d * d * unit * unit;
                n++;
            }
    return s > 0 ? 10 * log10(255.0 * 255.0 * n / s) : 99;
}

/* A grade applied to the proxy reaches the original's texture through the
 * grid (the delta carries it only at the proxy's resolution); alpha passes
 * through, 16-bit stays 16-bit, and AUTO picks the grid. */
TEST(proxy_guided_carries_a_colour_grade_into_texture)
{
    upres_ctx *ctx = tu_ctx_1thread();
    CHECK(ctx);
    for (int di = 0; di < 2; di++)
        for (int alpha = 0; alpha < 2; alpha++) {
            upres_depth d = di ? UPRES_U16 : UPRES_U8;
            upres_image *orig = picture(400, 300, alpha ? 4 : 3, d, 10, 245, 41 + di),
                        *want = NULL, *outd = NULL, *outg = NULL;
            CHECK(orig);
            if (alpha) /* alpha in picture() has zero pixels; keep it mostly opaque */
                for (uint32_t y = 0; y < 300; y++)
                    for (uint32_t x = 0; x < 400; x++) {
                        size_t i = (size_t)x * 4 + 3;
                        if (d == UPRES_U8)
                            ((uint8_t *)upres_image_row(orig, y))[i] = (uint8_t)(128 + (x % 128));
                        else
                            ((uint16_t *)upres_image_row(orig, y))[i] = (uint16_t)(30000 + x * 80);
                    }
            CHECK_OK(upres_image_clone(orig, &want));
            grade(want);
            rt_edit = 1;
            int st = round_trip(ctx, orig, 80, 80, 0, 0, 16, 0, 0, &outd);
            rt_method = UPRES_MERGE_GUIDED;
            if (!st) st = round_trip(ctx, orig, 80, 80, 0, 0, 16, 0, 0, &outg);
            rt_method = UPRES_MERGE_DELTA;
            rt_edit = 0;
            CHECKF(st == 0, "%s (%s)", upres_strerror(st), upres_ctx_error(ctx));
            double pd = psnr_colour(want, outd), pg = psnr_colour(want, outg);
            int abad;
            max_err(orig, outg, 0, &abad);
            CHECKF(outg->depth == d && outg->channels == orig->channels, "layout changed");
            CHECKF(!abad, "depth %d: alpha changed", di);
            CHECKF(pg > 40 && pg > pd + 6, "depth %d alpha %d: guided %.2f dB, delta %.2f dB", di,
                   alpha, pg, pd);
            upres_image_free(orig);
            upres_image_free(want);
            upres_image_free(outd);
            upres_image_free(outg);
        }
    upres_ctx_free(ctx);
}

/* Same output with 1 and 3 threads, for every method. */
TEST(proxy_guided_does_not_depend_on_threads)
{
    upres_ctx *c1 = tu_ctx_1thread(), *c3 = NULL;
    upres_ctx_desc cd = upres_ctx_desc_defaults();
    cd.threads = 3;
    CHECK_OK(upres_ctx_new(&cd, &c3));
    upres_image *orig = picture(301, 203, 3, UPRES_U8, 0, 255, 51);
    CHECK(c1 && orig);
    rt_edit = 1;
    for (int k = 0; k < 3; k++) {
        upres_image *a = NULL, *b = NULL;
        rt_method = k == 2 ? UPRES_MERGE_AUTO : UPRES_MERGE_GUIDED;
        rt_residual = k == 1;
        int st = round_trip(c1, orig, 100, 100, 0, 0, 8, 0, 0, &a);
        if (!st) st = round_trip(c3, orig, 100, 100, 0, 0, 8, 0, 13, &b);
        CHECKF(st == 0, "case %d: %s", k, upres_strerror(st));
        CHECKF(tu_same_pixels(a, b), "case %d: 1 and 3 threads differ", k);
        upres_image_free(a);
        upres_image_free(b);
    }
    rt_edit = 0;
    rt_method = UPRES_MERGE_DELTA;
    rt_residual = 0;
    upres_image_free(orig);
    upres_ctx_free(c1);
    upres_ctx_free(c3);
}

/* Saves orig as PNG at path, plans a 40x40 proxy, makes it, and a graded
 * copy of it as the processed proxy. */
static int graded_pair(upres_ctx *ctx, const upres_image *orig, const char *path,
                       upres_proxy_geometry *g, upres_image **proxy, upres_image **proc)
{
    upres_encode_desc ed = upres_encode_desc_defaults();
    ed.format = UPRES_FORMAT_PNG;
    int st = upres_save(ctx, orig, path, &ed);
    if (!st) st = upres_proxy_plan(orig->width, orig->height, px(40), px(40), g);
    if (!st) st = upres_proxy_make(ctx, orig, g, UPRES_FILTER_LANCZOS3, UPRES_U8, proxy);
    if (!st) st = upres_image_clone(*proxy, proc);
    if (!st) grade(*proc);
    return st;
}

TEST(proxy_guided_rejects_bad_parameters_and_reports)
{
    upres_ctx *ctx = tu_ctx_1thread();
    upres_image *orig = picture(120, 90, 3, UPRES_U8, 0, 255, 61), *proxy = NULL, *proc = NULL,
                *delta = NULL;
    CHECK(ctx && orig);
    const char *opath = test_tmp("gorig.png"), *mpath = test_tmp("gmerged.png");
    upres_proxy_geometry g;
    CHECK_OK(graded_pair(ctx, orig, opath, &g, &proxy, &proc));
    CHECK_OK(upres_proxy_delta(ctx, proxy, proc, 8, &delta, NULL));
    upres_merge_report rep;
    upres_merge_desc md = upres_merge_desc_defaults();
    CHECK_EQ(md.method, UPRES_MERGE_AUTO);
    md.original_path = opath;
    md.output_path = mpath;
    md.delta = delta;
    md.geom = &g;
    md.encode.format = UPRES_FORMAT_PNG;
    md.report = &rep;
    upres_merge_desc bad = md;
    bad.grid_bins = 0;
    CHECK_EQ(upres_proxy_merge(ctx, &bad), UPRES_ERR_INVALID_ARG);
    bad = md;
    bad.smoothness = -1;
    CHECK_EQ(upres_proxy_merge(ctx, &bad), UPRES_ERR_INVALID_ARG);
    bad = md;
    bad.grid_cell = 0.5;
    CHECK_EQ(upres_proxy_merge(ctx, &bad), UPRES_ERR_INVALID_ARG);
    bad = md;
    bad.method = (upres_merge_method)7;
    CHECK_EQ(upres_proxy_merge(ctx, &bad), UPRES_ERR_INVALID_ARG);
    bad = md;
    bad.method = UPRES_MERGE_GUIDED;
    bad.upscale.command = "tool %i %o";
    CHECK_EQ(upres_proxy_merge(ctx, &bad), UPRES_ERR_INVALID_ARG);
    CHECK(!test_file_exists(mpath));
    /* AUTO on a grade: the grid predicts the proxy better than the delta. */
    CHECK_OK(upres_proxy_merge(ctx, &md));
    CHECKF(rep.method == UPRES_MERGE_GUIDED && rep.auto_psnr[1] > rep.auto_psnr[0],
           "auto chose %d (delta %.2f, guided %.2f, +residual %.2f dB)", (int)rep.method,
           rep.auto_psnr[0], rep.auto_psnr[1], rep.auto_psnr[2]);
    CHECK(rep.grid_nx == 3 && rep.grid_ny == 2 && rep.grid_nz == 8);
    md.method = UPRES_MERGE_DELTA;
    CHECK_OK(upres_proxy_merge(ctx, &md));
    CHECK(rep.method == UPRES_MERGE_DELTA && rep.residual == 0);
    /* DELTA does not look at the grid fields. */
    md.grid_bins = 0;
    md.grid_cell = 0;
    CHECK_OK(upres_proxy_merge(ctx, &md));
    upres_image_free(orig);
    upres_image_free(proxy);
    upres_image_free(proc);
    upres_image_free(delta);
    upres_ctx_free(ctx);
}

/* A model that edits alpha (here: cuts out the left half) needs the delta:
 * AUTO takes it, GUIDED passes the original's alpha through. */
TEST(proxy_auto_keeps_alpha_edits)
{
    upres_ctx *ctx = tu_ctx_1thread();
    upres_image *orig = picture(160, 120, 4, UPRES_U8, 10, 245, 71), *proxy = NULL, *proc = NULL,
                *delta = NULL, *out = NULL;
    CHECK(ctx && orig);
    for (uint32_t y = 0; y < 120; y++)
        for (uint32_t x = 0; x < 160; x++) ((uint8_t *)upres_image_row(orig, y))[x * 4 + 3] = 255;
    upres_proxy_geometry g;
    CHECK_OK(graded_pair(ctx, orig, test_tmp("a.png"), &g, &proxy, &proc));
    for (uint32_t y = 0; y < 40; y++)
        for (uint32_t x = 0; x < 20; x++) ((uint8_t *)upres_image_row(proc, y))[x * 4 + 3] = 0;
    CHECK_OK(upres_proxy_delta(ctx, proxy, proc, 16, &delta, NULL));
    upres_merge_report rep;
    for (int k = 0; k < 2; k++) {
        upres_merge_desc md = upres_merge_desc_defaults();
        md.original_path = test_tmp("a.png");
        md.output_path = test_tmp("a_out.png");
        md.delta = delta;
        md.geom = &g;
        md.encode.format = UPRES_FORMAT_PNG;
        md.report = &rep;
        md.method = k ? UPRES_MERGE_GUIDED : UPRES_MERGE_AUTO;
        CHECK_OK(upres_proxy_merge(ctx, &md));
        CHECK_EQ(rep.method, k ? UPRES_MERGE_GUIDED : UPRES_MERGE_DELTA);
        CHECK_OK(upres_load(ctx, md.output_path, NULL, &out, NULL));
        CHECK_EQ(out->channels, 4);
        /* Well inside the left half: cut out by delta, kept by guided. */
        int a = ((uint8_t *)upres_image_row(out, 60))[20 * 4 + 3];
        CHECKF(k ? a == 255 : a <= 2, "method %d: alpha %d", k, a);
        upres_image_free(out);
        out = NULL;
    }
    upres_image_free(orig);
    upres_image_free(proxy);
    upres_image_free(proc);
    upres_image_free(delta);
    upres_ctx_free(ctx);
}

/* The fixture pair from tests/gen_proxy_fixtures.py: Pillow upscales the
 * cropped delta in float ('F' images) and numpy adds it. */
TEST(proxy_merge_matches_pillow_oracle)
{
    static const char *const cases[][4] = {
        {"proxy/orig_rgb.png", "proxy/delta_rgb.png", "proxy/merged_rgb.png", "proxy/meta_rgb.txt"},
        {"proxy/orig_gray.png", "proxy/delta_gray.png", "proxy/merged_gray.png", "proxy/meta_gray.txt"},
    };
    upres_ctx *ctx = tu_ctx_1thread();
    CHECK(ctx);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        upres_image *delta = NULL, *want = NULL, *got = NULL;
        upres_proxy_metadata m;
        CHECK_OK(upres_proxy_metadata_load(ctx, test_fixture(cases[k][3]), &m));
        CHECK_OK(upres_load(ctx, test_fixture(cases[k][1]), NULL, &delta, NULL));
        CHECK_OK(upres_load(ctx, test_fixture(cases[k][2]), NULL, &want, NULL));
        upres_merge_desc md = upres_merge_desc_defaults();
        md.original_path = test_fixture(cases[k][0]);
        md.output_path = test_tmp("oracle.png");
        md.method = UPRES_MERGE_DELTA;
        md.delta = delta;
        md.geom = &m.geom;
        md.encode.format = UPRES_FORMAT_PNG;
        CHECK_OK(upres_proxy_merge(ctx, &md));
        CHECK_OK(upres_load(ctx, md.output_path, NULL, &got, NULL));
        CHECK(got->width == want->width && got->height == want->height &&
              got->channels == want->channels);
        size_t n = (size_t)got->width * got->height * got->channels, off = 0;
        int worst = 0;
        for (size_t i = 0; i < n; i++) {
            int e = abs(((uint8_t *)got->data)[i] - ((uint8_t *)want->data)[i]);
            if (e) off++;
            if (e > worst) worst = e;
        }
        upres_image_free(delta);
        upres_image_free(want);
        upres_image_free(got);
        /* Float rounding only decides exact .5 ties. */
        CHECKF(worst <= 1 && off * 1000 <= n, "case %zu: worst %d, %zu of %zu samples differ", k,
               worst, off, n);
    }
    upres_ctx_free(ctx);
}

TEST(proxy_merge_gray_original_takes_a_colour_delta)
{
    upres_ctx *ctx = tu_ctx_1thread();
    upres_image *orig = picture(120, 90, 1, UPRES_U8, 40, 200, 41), *proxy = NULL,
                *proc = NULL, *delta = NULL, *out = NULL;
    CHECK(ctx && orig);
    upres_encode_desc ed = upres_encode_desc_defaults();
    ed.format = UPRES_FORMAT_PNG;
    CHECK_OK(upres_save(ctx, orig, test_tmp("g.png"), &ed));
    upres_proxy_geometry g;
    CHECK_OK(upres_proxy_plan(120, 90, pc(50), pc(50), &g));
    CHECK_OK(upres_proxy_make(ctx, orig, &g, UPRES_FILTER_LANCZOS3, UPRES_U8, &proxy));
    /* A "colourisation" model: red up 30, blue down 30. */
    CHECK_OK(upres_image_convert(proxy, UPRES_U8, 3, 1.0f, &proc));
    for (uint32_t y = 0; y < proc->height; y++) {
        uint8_t *r = upres_image_row(proc, y);
        for (uint32_t x = 0; x < proc->width; x++) {
            r[3 * x] = (uint8_t)(r[3 * x] + 30 > 255 ? 255 : r[3 * x] + 30);
            r[3 * x + 2] = (uint8_t)(r[3 * x + 2] < 30 ? 0 : r[3 * x + 2] - 30);
        }
    }
    CHECK_OK(upres_proxy_delta(ctx, proxy, proc, 8, &delta, NULL));
    CHECK_EQ(delta->channels, 3);
    int worst[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        upres_merge_desc md = upres_merge_desc_defaults();
        md.original_path = test_tmp("g.png");
        md.output_path = test_tmp("g_merged.png");
        md.delta = delta;
        md.encode.format = UPRES_FORMAT_PNG;
        md.method = k ? UPRES_MERGE_GUIDED : UPRES_MERGE_DELTA;
        CHECK_OK(upres_proxy_merge(ctx, &md));
        CHECK_OK(upres_load(ctx, md.output_path, NULL, &out, NULL));
        CHECK_EQ(out->channels, 3);
        for (uint32_t y = 0; y < 90; y++)
            for (uint32_t x = 0; x < 120; x++) {
                int v = ((uint8_t *)upres_image_row(orig, y))[x];
                const uint8_t *o = (uint8_t *)upres_image_row(out, y) + 3 * x;
                int e = abs(o[0] - (v + 30)) > abs(o[1] - v) ? abs(o[0] - (v + 30)) : abs(o[1] - v);
                if (abs(o[2] - (v - 30)) > e) e = abs(o[2] - (v - 30));
                if (e > worst[k]) worst[k] = e;
            }
        upres_image_free(out);
        out = NULL;
    }
    upres_image_free(orig);
    upres_image_free(proxy);
    upres_image_free(proc);
    upres_image_free(delta);
    upres_ctx_free(ctx);
    /* Where the +30 clips (v > 225) the grid fits a transform across the
     * clip, hence 2 for guided. */
    CHECKF(worst[0] <= 1 && worst[1] <= 2, "worst delta %d, guided %d", worst[0], worst[1]);
}

static int cancel_after_first(void *user, const char *what, uint64_t done, uint64_t total)
{
    (void)total;
    (void)done;
    if (what && !strcmp(what, "merge")) return ++*(int *)user >= 1;
    return 0;
}

TEST(proxy_merge_cancel_and_mismatches_leave_nothing)
{
    int calls = 0;
    upres_ctx_desc cd = upres_ctx_desc_defaults();
    cd.threads = 1;
    cd.progress = cancel_after_first;
    cd.progress_user = &calls;
    upres_ctx *ctx = NULL;
    CHECK_OK(upres_ctx_new(&cd, &ctx));
    upres_image *orig = picture(100, 300, 3, UPRES_U8, 0, 255, 51), *delta = NULL;
    CHECK(orig);
    upres_encode_desc ed = upres_encode_desc_defaults();
    ed.format = UPRES_FORMAT_PNG;
    CHECK_OK(upres_save(ctx, orig, test_tmp("c.png"), &ed));
    CHECK_OK(upres_image_new(&delta, 20, 60, 3, UPRES_U8, NULL));
    memset(delta->data, 127, delta->stride * delta->height);
    upres_merge_desc md = upres_merge_desc_defaults();
    md.original_path = test_tmp("c.png");
    md.output_path = test_tmp("c_out.png");
    md.delta = delta;
    md.encode.format = UPRES_FORMAT_PNG;
    md.strip_rows = 16;
    CHECK_EQ(upres_proxy_merge(ctx, &md), UPRES_ERR_CANCELLED);
    CHECK(!test_file_exists(md.output_path));
    CHECK_EQ(test_dir_count(test_tmpdir()), 1);
    /* A delta of the wrong size for the given geometry. */
    upres_proxy_geometry g;
    CHECK_OK(upres_proxy_plan(100, 300, px(40), px(40), &g));
    md.geom = &g;
    CHECK_EQ(upres_proxy_merge(ctx, &md), UPRES_ERR_INVALID_ARG);
    CHECK(strstr(upres_ctx_error(ctx), "20x60 but the proxy was 40x40"));
    /* Geometry of another original. */
    CHECK_OK(upres_proxy_plan(200, 300, px(20), px(60), &g));
    CHECK_EQ(upres_proxy_merge(ctx, &md), UPRES_ERR_INVALID_ARG);
    CHECK(strstr(upres_ctx_error(ctx), "200x300 original but this one is 100x300"));
    CHECK_EQ(test_dir_count(test_tmpdir()), 1);
    upres_image_free(orig);
    upres_image_free(delta);
    upres_ctx_free(ctx);
}
