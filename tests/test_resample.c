/* Tests of upres_resize: agreement with Pillow 9.4 (fixtures made by
 * tests/gen_resample_fixtures.py), invariants (constants, identity, depths,
 * threads), linear light, alpha, regions and argument checking. */
#include "test.h"
#include "upres.h"
#include "resample/resample_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---- */

/* Reads a "URAW" fixture (16-byte header: magic, width, height, channels as
 * little-endian u32; then 8-bit samples) into a new u8 image; NULL on error. */
static upres_image *load_raw(const char *name)
{
    size_t size = 0;
    unsigned char *b = test_read_file(test_fixture(name), &size);
    if (!b) return NULL;
    upres_image *img = NULL;
    if (size >= 16 && memcmp(b, "URAW", 4) == 0) {
        uint32_t v[3];
        for (int i = 0; i < 3; i++)
            v[i] = (uint32_t)b[4 + 4 * i] | (uint32_t)b[5 + 4 * i] << 8 |
                   (uint32_t)b[6 + 4 * i] << 16 | (uint32_t)b[7 + 4 * i] << 24;
        if (v[0] && v[1] && v[2] >= 1 && v[2] <= 4 &&
            size == 16 + (size_t)v[0] * v[1] * v[2] &&
            upres_image_new(&img, v[0], v[1], v[2], UPRES_U8, NULL) == 0)
            memcpy(img->data, b + 16, size - 16);
    }
    free(b);
    return img;
}

/* Fills a w x h image with a deterministic pattern (gradient + noise +
 * edges), values spread over the full range of the depth. */
static upres_image *make_pattern(uint32_t w, uint32_t h, uint32_t c, upres_depth d,
                                 uint32_t seed)
{
    upres_image *img = NULL;
    if (upres_image_new(&img, w, h, c, d, NULL)) return NULL;
    uint32_t s = seed * 2654435761u + 1;
    for (uint32_t y = 0; y < h; y++) {
        for (uint32_t x = 0; x < w; x++)
            for (uint32_t ch = 0; ch < c; ch++) {
                s = s * 1103515245u + 12345u;
                double v = ((x * 7 + y * 3 + ch * 50) % 200) / 255.0 + ((s >> 16) % 40) / 255.0;
                if (((x / 5) + (y / 3)) % 4 == 0) v = ch & 1 ? 0.0 : 1.0;
                if (c == 2 || c == 4)
                    if (ch == c - 1) v = 0.25 + 0.75 * (x % 13) / 12.0;
                if (v > 1) v = 1;
                tu_put01(img, x, y, ch, v);
            }
    }
    return img;
}

/* Largest |a-b| over all samples, in [0,1] units; -1 if the shapes differ. */
static double max_diff(const upres_image *a, const upres_image *b)
{
    if (a->width != b->width || a->height != b->height || a->channels != b->channels)
        return -1;
    double m = 0;
    for (uint32_t y = 0; y < a->height; y++)
        for (uint32_t x = 0; x < a->width; x++)
            for (uint32_t c = 0; c < a->channels; c++) {
                double d = fabs(tu_sample01(a, x, y, c) - tu_sample01(b, x, y, c));
                if (d > m) m = d;
            }
    return m;
}

static int resize(upres_ctx *ctx, const upres_image *src, uint32_t w, uint32_t h,
                  upres_filter f, upres_image **out)
{
    upres_resize_desc d = upres_resize_desc_defaults();
    d.width = w;
    d.height = h;
    d.filter = f;
    return upres_resize(ctx, src, &d, out);
}

/* One line of cases.txt. */
typedef struct fixture_case {
    char name[128], input[64], filter[32], expected[128], paths[16];
    unsigned w, h;
    double bx, by, bw, bh;
    int tol, alpha_min;
} fixture_case;

/* Reads cases.txt into a malloc()ed array; returns the count, -1 on error. */
static int read_cases(fixture_case **out)
{
    FILE *f = fopen(test_fixture("resample/cases.txt"), "r");
    *out = NULL;
    if (!f) return -1;
    int n = 0, cap = 0;
    fixture_case c, *v = NULL;
    while (fscanf(f, "%127s %63s %31s %u %u %lf %lf %lf %lf %127s %d %d %15s", c.name,
                  c.input, c.filter, &c.w, &c.h, &c.bx, &c.by, &c.bw, &c.bh, c.expected, &c.tol,
                  &c.alpha_min, c.paths) == 13) {
        if (n == cap) {
            fixture_case *nv = realloc(v, (size_t)(cap = cap ? cap * 2 : 64) * sizeof *v);
            if (!nv) break;
            v = nv;
        }
        v[n++] = c;
    }
    fclose(f);
    *out = v;
    return v ? n : -1;
}

/* Resizes the case's input with `filter` at `depth` and returns the largest
 * deviation from the expected output in 8-bit levels (colour samples only
 * where the expected alpha >= alpha_min); -1 on an error. *alpha_dev (may be
 * NULL) gets the largest deviation of the alpha channel. */
static double run_case(const fixture_case *c, int filter, upres_depth depth, double *alpha_dev)
{
    char path[200];
    snprintf(path, sizeof path, "resample/%s", c->input);
    upres_image *in = load_raw(path);
    snprintf(path, sizeof path, "resample/%s", c->expected);
    upres_image *exp = load_raw(path);
    upres_image *conv = NULL, *got = NULL;
    double worst = -1;
    if (!in || !exp) goto done;
    if (depth != UPRES_U8) {
        if (upres_image_convert(in, depth, in->channels, 1.0f, &conv)) goto done;
    }
    upres_resize_desc d = upres_resize_desc_defaults();
    d.width = c->w;
    d.height = c->h;
    d.filter = (upres_filter)filter;
    d.src_x = c->bx;
    d.src_y = c->by;
    d.src_w = c->bw;
    d.src_h = c->bh;
    if (upres_resize(NULL, conv ? conv : in, &d, &got)) goto done;
    if (got->width != exp->width || got->height != exp->height ||
        got->channels != exp->channels)
        goto done;
    worst = 0;
    if (alpha_dev) *alpha_dev = 0;
    uint32_t C = exp->channels;
    int has_alpha = C == 2 || C == 4;
    for (uint32_t y = 0; y < exp->height; y++)
        for (uint32_t x = 0; x < exp->width; x++) {
            const uint8_t *e = (const uint8_t *)upres_image_row(exp, y) + (size_t)x * C;
            for (uint32_t ch = 0; ch < C; ch++) {
                if (has_alpha && ch != C - 1 && e[C - 1] < c->alpha_min) continue;
                double g = tu_sample01(got, x, y, ch) * 255.0;
                if (g < 0) g = 0;
                if (g > 255) g = 255;
                double dv = fabs(g - e[ch]);
                if (has_alpha && ch == C - 1) {
                    if (alpha_dev && dv > *alpha_dev) *alpha_dev = dv;
                } else if (dv > worst)
                    worst = dv;
            }
        }
done:
    upres_image_free(in);
    upres_image_free(exp);
    upres_image_free(conv);
    upres_image_free(got);
    return worst;
}

/* ---- tests ---- */

TEST(resample_filter_names)
{
    CHECK(strcmp(upres_filter_name(UPRES_FILTER_LANCZOS3), "lanczos3") == 0);
    CHECK(strcmp(upres_filter_name(UPRES_FILTER_MITCHELL), "mitchell") == 0);
    CHECK(strcmp(upres_filter_name(UPRES_FILTER_NEAREST), "nearest") == 0);
    CHECK(strcmp(upres_filter_name((upres_filter)99), "?") == 0);
    for (int f = 0; f < UPRES_FILTER_COUNT_; f++)
        CHECK_EQ(upres_filter_from_name(upres_filter_name((upres_filter)f)), f);
    CHECK_EQ(upres_filter_from_name("LANCZOS"), UPRES_FILTER_LANCZOS3);
    CHECK_EQ(upres_filter_from_name("Cubic"), UPRES_FILTER_BICUBIC);
    CHECK_EQ(upres_filter_from_name("linear"), UPRES_FILTER_BILINEAR);
    CHECK_EQ(upres_filter_from_name("AREA"), UPRES_FILTER_BOX);
    CHECK_EQ(upres_filter_from_name("BiLinear"), UPRES_FILTER_BILINEAR);
    CHECK_EQ(upres_filter_from_name("lanczos2"), -1);
    CHECK_EQ(upres_filter_from_name(""), -1);
    CHECK_EQ(upres_filter_from_name(NULL), -1);
    upres_resize_desc d = upres_resize_desc_defaults();
    CHECK_EQ(d.filter, UPRES_FILTER_LANCZOS3);
    CHECK_EQ(d.linear, 0);
    CHECK(d.src_x == 0 && d.src_y == 0 && d.src_w == 0 && d.src_h == 0);
}

/* Every fixture case within its tolerance (Pillow: +-1, expected exact). */
TEST(resample_pillow_fixtures)
{
    fixture_case *cases;
    int n = read_cases(&cases);
    CHECKF(n > 50, "cannot read tests/fixtures/resample/cases.txt (%d cases)", n);
    int bad = 0, exact = 0, tested = 0;
    for (int i = 0; i < n; i++) {
        if (strcmp(cases[i].paths, "u8")) continue;
        int f = upres_filter_from_name(cases[i].filter);
        double adev = 0, dev = f < 0 ? -1 : run_case(&cases[i], f, UPRES_U8, &adev);
        tested++;
        if (dev < 0 || dev > cases[i].tol || adev > 1) {
            fprintf(stderr, "    %s: max deviation %.0f (tolerance %d), alpha %.0f%s\n",
                    cases[i].name, dev, cases[i].tol, adev, dev < 0 ? " [error]" : "");
            bad++;
        }
        if (dev == 0 && adev == 0) exact++;
    }
    fprintf(stderr, "    %d/%d u8 cases bit-exact\n", exact, tested);
    CHECK(tested > 50);
    free(cases);
    CHECKF(bad == 0, "%d of %d fixture cases out of tolerance", bad, n);
}

/* u16 and f32 inputs follow the same scheme in float: within half a level
 * (plus float error) of a double-precision reference without intermediate
 * rounding; within a level of Pillow for the filters without negative lobes
 * (whose 8-bit intermediate is rounded but never clipped). */
TEST(resample_fixtures_float_depths)
{
    fixture_case *cases;
    int n = read_cases(&cases);
    CHECKF(n > 50, "cannot read cases.txt (%d)", n);
    int bad = 0, tested = 0;
    for (int i = 0; i < n; i++) {
        int f = upres_filter_from_name(cases[i].filter);
        int exact_ref = strcmp(cases[i].paths, "float") == 0;
        if (cases[i].alpha_min ||
            (!exact_ref && f != UPRES_FILTER_BILINEAR && f != UPRES_FILTER_BOX))
            continue;
        for (int d = UPRES_U16; d <= UPRES_F32; d++) {
            double dev = run_case(&cases[i], f, (upres_depth)d, NULL);
            double tol = exact_ref ? 0.502 : 1.01;
            tested++;
            if (dev < 0 || dev > tol) {
                fprintf(stderr, "    %s as %s: max deviation %.3f levels (tolerance %.3f)\n",
                        cases[i].name, upres_depth_name((upres_depth)d), dev, tol);
                bad++;
            }
        }
    }
    free(cases);
    CHECK(tested > 40);
    CHECKF(bad == 0, "%d float-depth cases out of tolerance", bad);
}

/* The comparison is able to fail: another filter does not pass. */
TEST(resample_fixtures_discriminate)
{
    fixture_case *cases;
    int n = read_cases(&cases);
    CHECKF(n > 50, "cannot read cases.txt (%d)", n);
    int checked = 0, caught = 0;
    for (int i = 0; i < n; i++) {
        int f = upres_filter_from_name(cases[i].filter);
        int other = f == UPRES_FILTER_LANCZOS3   ? UPRES_FILTER_BICUBIC
                    : f == UPRES_FILTER_BICUBIC  ? UPRES_FILTER_MITCHELL
                    : f == UPRES_FILTER_BILINEAR ? UPRES_FILTER_LANCZOS3
                    : f == UPRES_FILTER_NEAREST  ? UPRES_FILTER_BILINEAR
                                                 : -1;
        if (other < 0 || cases[i].w * cases[i].h < 100 || strcmp(cases[i].paths, "u8") ||
            cases[i].alpha_min)
            continue;
        double dev = run_case(&cases[i], other, UPRES_U8, NULL);
        checked++;
        if (dev > 1) caught++;
        else
            fprintf(stderr, "    %s with %s: max deviation %.0f (expected > 1)\n", cases[i].name,
                    upres_filter_name((upres_filter)other), dev);
    }
    free(cases);
    CHECK(checked > 20);
    CHECKF(caught == checked, "%d of %d wrong-filter runs matched the reference",
           checked - caught, checked);
}

TEST(resample_constant_stays_constant)
{
    const uint32_t sizes[][2] = {{7, 5}, {61, 40}, {1, 9}, {13, 1}, {100, 3}};
    for (int d = UPRES_U8; d <= UPRES_F32; d++)
        for (uint32_t c = 1; c <= 4; c++) {
            upres_image *img;
            CHECK_OK(upres_image_new(&img, 23, 17, c, (upres_depth)d, NULL));
            for (uint32_t y = 0; y < 17; y++)
                for (uint32_t i = 0; i < 23 * c; i++) {
                    void *row = upres_image_row(img, y);
                    double v = (i % c == 0) ? 0.7 : (i % c == 1) ? 0.2 : 1.0;
                    if (d == UPRES_U8)
                        ((uint8_t *)row)[i] = (uint8_t)lrint(v * 255);
                    else if (d == UPRES_U16)
                        ((uint16_t *)row)[i] = (uint16_t)lrint(v * 65535);
                    else
                        ((float *)row)[i] = (float)v;
                }
            for (int f = 0; f < UPRES_FILTER_COUNT_; f++)
                for (int lin = 0; lin <= 1; lin++)
                    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
                        upres_resize_desc desc = upres_resize_desc_defaults();
                        desc.width = sizes[s][0];
                        desc.height = sizes[s][1];
                        desc.filter = (upres_filter)f;
                        desc.linear = lin;
                        upres_image *out = NULL;
                        CHECK_OK(upres_resize(NULL, img, &desc, &out));
                        double m = 0;
                        for (uint32_t y = 0; y < out->height; y++)
                            for (uint32_t x = 0; x < out->width; x++)
                                for (uint32_t ch = 0; ch < c; ch++) {
                                    double e = tu_sample01(img, 0, 0, ch);
                                    double g = tu_sample01(out, x, y, ch);
                                    if (fabs(e - g) > m) m = fabs(e - g);
                                }
                        upres_image_free(out);
                        double tol = d == UPRES_F32 ? 2e-6 : 0;
                        CHECKF(m <= tol, "%s %u ch %s linear=%d -> %ux%u: deviation %g",
                               upres_depth_name((upres_depth)d), c,
                               upres_filter_name((upres_filter)f), lin, sizes[s][0],
                               sizes[s][1], m);
                    }
            upres_image_free(img);
        }
}

TEST(resample_identity_is_copy)
{
    upres_image *img = make_pattern(31, 19, 4, UPRES_U16, 3), *out = NULL;
    CHECK(img);
    const uint8_t icc[] = {1, 2, 3, 4, 5};
    CHECK_OK(upres_image_set_icc(img, icc, sizeof icc));
    img->orientation = 6;
    for (int f = 0; f < UPRES_FILTER_COUNT_; f++) {
        upres_resize_desc d = upres_resize_desc_defaults();
        d.width = 31;
        d.height = 19;
        d.filter = (upres_filter)f;
        d.linear = f & 1;
        CHECK_OK(upres_resize(NULL, img, &d, &out));
        CHECK(out->data != img->data);
        CHECK(tu_same_pixels(img, out));
        CHECK_EQ(out->icc_size, sizeof icc);
        CHECK(memcmp(out->icc, icc, sizeof icc) == 0);
        CHECK_EQ(out->orientation, 6);
        upres_image_free(out);
    }
    /* Metadata is also carried by a real resize. */
    CHECK_OK(resize(NULL, img, 10, 40, UPRES_FILTER_LANCZOS3, &out));
    CHECK_EQ(out->icc_size, sizeof icc);
    CHECK_EQ(out->orientation, 6);
    upres_image_free(out);
    upres_image_free(img);
}

/* A region as large as the output at the same scale is an exact crop. */
TEST(resample_region_crop)
{
    for (int d = UPRES_U8; d <= UPRES_F32; d++)
        for (uint32_t c = 1; c <= 4; c++) {
            upres_image *img = make_pattern(40, 30, c, (upres_depth)d, c), *out = NULL;
            CHECK(img);
            for (int f = 0; f < UPRES_FILTER_NEAREST + 1; f++) {
                /* Mitchell (B > 0) blurs even at scale 1. */
                if (f == UPRES_FILTER_MITCHELL) continue;
                upres_resize_desc desc = upres_resize_desc_defaults();
                desc.filter = (upres_filter)f;
                desc.src_x = 5;
                desc.src_y = 3;
                desc.src_w = desc.width = 21;
                desc.src_h = desc.height = 17;
                CHECK_OK(upres_resize(NULL, img, &desc, &out));
                double m = 0;
                for (uint32_t y = 0; y < 17; y++)
                    for (uint32_t x = 0; x < 21; x++)
                        for (uint32_t ch = 0; ch < c; ch++) {
                            double e = tu_sample01(img, x + 5, y + 3, ch);
                            double v = fabs(e - tu_sample01(out, x, y, ch));
                            /* colour of a premultiplied pixel carries the
                             * float round trip of alpha */
                            if (v > m) m = v;
                        }
                upres_image_free(out);
                double tol = (c == 2 || c == 4 || d == UPRES_F32) ? 1e-5 : 0;
                CHECKF(m <= tol, "%s %u ch %s: crop deviates by %g",
                       upres_depth_name((upres_depth)d), c, upres_filter_name((upres_filter)f),
                       m);
            }
            upres_image_free(img);
        }
    /* Cover crop: 40x30 -> 16x16 takes the centred 30x30 square. Like
     * Pillow's box, windows near the region's edge still read pixels outside
     * it, so only the columns whose window lies inside equal resizing the
     * cropped image (scale 1.875, lanczos support 5.6: columns 4..11). */
    upres_image *img = make_pattern(40, 30, 3, UPRES_U8, 9), *crop, *a = NULL, *b = NULL;
    CHECK(img);
    CHECK_OK(upres_image_new(&crop, 30, 30, 3, UPRES_U8, NULL));
    for (uint32_t y = 0; y < 30; y++)
        memcpy(upres_image_row(crop, y), (uint8_t *)upres_image_row(img, y) + 5 * 3, 30 * 3);
    upres_resize_desc desc = upres_resize_desc_defaults();
    desc.width = desc.height = 16;
    desc.src_x = 5;
    desc.src_w = desc.src_h = 30;
    CHECK_OK(upres_resize(NULL, img, &desc, &a));
    CHECK_OK(resize(NULL, crop, 16, 16, UPRES_FILTER_LANCZOS3, &b));
    for (uint32_t y = 0; y < 16; y++)
        CHECK(memcmp((uint8_t *)upres_image_row(a, y) + 4 * 3,
                     (uint8_t *)upres_image_row(b, y) + 4 * 3, 8 * 3) == 0);
    CHECK(!tu_same_pixels(a, b));
    /* ... and differs from squashing the whole image. */
    upres_image_free(b);
    CHECK_OK(resize(NULL, img, 16, 16, UPRES_FILTER_LANCZOS3, &b));
    CHECK(!tu_same_pixels(a, b));
    upres_image_free(a);
    upres_image_free(b);
    upres_image_free(crop);
    upres_image_free(img);
}

/* u16 and f32 follow the u8 result on a smooth image. */
TEST(resample_depths_agree)
{
    upres_image *u8 = NULL;
    CHECK_OK(upres_image_new(&u8, 57, 41, 3, UPRES_U8, NULL));
    for (uint32_t y = 0; y < 41; y++)
        for (uint32_t x = 0; x < 57; x++)
            for (uint32_t c = 0; c < 3; c++)
                ((uint8_t *)upres_image_row(u8, y))[x * 3 + c] =
                    (uint8_t)(127.5 + 120 * sin(x * 0.3 + c) * cos(y * 0.21));
    for (int f = 0; f < UPRES_FILTER_COUNT_; f++) {
        const uint32_t sizes[][2] = {{20, 13}, {130, 77}};
        for (int s = 0; s < 2; s++) {
            upres_image *r8 = NULL;
            CHECK_OK(resize(NULL, u8, sizes[s][0], sizes[s][1], (upres_filter)f, &r8));
            for (int d = UPRES_U16; d <= UPRES_F32; d++) {
                upres_image *in = NULL, *r = NULL;
                CHECK_OK(upres_image_convert(u8, (upres_depth)d, 3, 1.0f, &in));
                CHECK_OK(resize(NULL, in, sizes[s][0], sizes[s][1], (upres_filter)f, &r));
                CHECK_EQ(r->depth, d);
                double m = max_diff(r8, r) * 255;
                /* the u8 path rounds its intermediate: up to ~1.5 levels */
                CHECKF(m >= 0 && m <= 1.5, "%s %s %ux%u: %.3f levels from u8",
                       upres_filter_name((upres_filter)f), upres_depth_name((upres_depth)d),
                       sizes[s][0], sizes[s][1], m);
                upres_image_free(in);
                upres_image_free(r);
            }
            upres_image_free(r8);
        }
    }
    upres_image_free(u8);
}

TEST(resample_linear_light)
{
    /* One-pixel black/white stripes: averaging in linear light gives a much
     * lighter grey (~188) than averaging the encoded values (~128). */
    upres_image *img = NULL, *a = NULL, *b = NULL;
    CHECK_OK(upres_image_new(&img, 64, 8, 3, UPRES_U8, NULL));
    for (uint32_t y = 0; y < 8; y++)
        for (uint32_t x = 0; x < 64 * 3; x++)
            ((uint8_t *)upres_image_row(img, y))[x] = (x / 3) & 1 ? 255 : 0;
    upres_resize_desc d = upres_resize_desc_defaults();
    d.width = 16;
    d.height = 2;
    d.filter = UPRES_FILTER_BOX;
    CHECK_OK(upres_resize(NULL, img, &d, &a));
    d.linear = 1;
    CHECK_OK(upres_resize(NULL, img, &d, &b));
    int pa = ((uint8_t *)a->data)[8 * 3], pb = ((uint8_t *)b->data)[8 * 3];
    CHECKF(pa >= 126 && pa <= 129, "gamma-space average %d", pa);
    CHECKF(pb >= 186 && pb <= 189, "linear-light average %d", pb);
    upres_image_free(a);
    upres_image_free(b);
    /* Same for u16 and f32. */
    for (int dep = UPRES_U16; dep <= UPRES_F32; dep++) {
        upres_image *c = NULL;
        CHECK_OK(upres_image_convert(img, (upres_depth)dep, 3, 1.0f, &c));
        CHECK_OK(upres_resize(NULL, c, &d, &b));
        double v = tu_sample01(b, 8, 1, 0) * 255;
        CHECKF(v > 186 && v < 189, "%s linear-light average %.2f",
               upres_depth_name((upres_depth)dep), v);
        upres_image_free(b);
        upres_image_free(c);
    }
    /* A grey ramp downscaled in linear mode keeps each constant column's
     * value exactly (constant along the filter direction). */
    upres_image_free(img);
    CHECK_OK(upres_image_new(&img, 256, 9, 1, UPRES_U8, NULL));
    for (uint32_t y = 0; y < 9; y++)
        for (uint32_t x = 0; x < 256; x++) ((uint8_t *)upres_image_row(img, y))[x] = (uint8_t)x;
    d = upres_resize_desc_defaults();
    d.width = 256;
    d.height = 4;
    d.linear = 1;
    CHECK_OK(upres_resize(NULL, img, &d, &a));
    for (uint32_t y = 0; y < 4; y++)
        for (uint32_t x = 0; x < 256; x++)
            CHECK_EQ(((uint8_t *)upres_image_row(a, y))[x], x);
    upres_image_free(a);
    upres_image_free(img);
}

/* Colour under alpha = 0 must not bleed into visible pixels. */
TEST(resample_alpha_premultiplied)
{
    for (int dep = UPRES_U8; dep <= UPRES_F32; dep++) {
        upres_image *img = NULL, *out = NULL, *conv = NULL;
        CHECK_OK(upres_image_new(&img, 20, 4, 4, UPRES_U8, NULL));
        for (uint32_t y = 0; y < 4; y++)
            for (uint32_t x = 0; x < 20; x++) {
                uint8_t *p = (uint8_t *)upres_image_row(img, y) + x * 4;
                if (x < 10) { p[0] = 255; p[1] = 0; p[2] = 0; p[3] = 255; }
                else { p[0] = 0; p[1] = 255; p[2] = 0; p[3] = 0; }
            }
        CHECK_OK(upres_image_convert(img, (upres_depth)dep, 4, 1.0f, &conv));
        CHECK_OK(resize(NULL, conv, 7, 3, UPRES_FILTER_LANCZOS3, &out));
        int partial = 0;
        for (uint32_t x = 0; x < 7; x++) {
            double a = tu_sample01(out, x, 1, 3);
            if (a > 0.02 && a < 0.98) partial++;
            if (a > 0.02) {
                CHECKF(tu_sample01(out, x, 1, 1) < 0.01, "%s x=%u: green %.3f bled through alpha %.3f",
                       upres_depth_name((upres_depth)dep), x, tu_sample01(out, x, 1, 1), a);
                CHECKF(tu_sample01(out, x, 1, 0) > 0.99, "%s x=%u: red %.3f",
                       upres_depth_name((upres_depth)dep), x, tu_sample01(out, x, 1, 0));
            }
        }
        CHECK(partial >= 1);
        upres_image_free(out);
        upres_image_free(conv);
        upres_image_free(img);
    }
}

static int cancel_cb(void *user, const char *what, uint64_t done, uint64_t total)
{
    int *calls = user;
    (void)done;
    (void)total;
    if (strcmp(what, "resize") == 0) ++*calls;
    return *calls >= 2;
}

static int count_cb(void *user, const char *what, uint64_t done, uint64_t total)
{
    int *calls = user;
    if (strcmp(what, "resize") == 0 && done <= total) ++*calls;
    return 0;
}

TEST(resample_threads_identical)
{
    upres_ctx *c1, *c4;
    upres_ctx_desc cd = upres_ctx_desc_defaults();
    cd.threads = 1;
    CHECK_OK(upres_ctx_new(&cd, &c1));
    cd.threads = 4;
    int calls = 0;
    cd.progress = count_cb;
    cd.progress_user = &calls;
    CHECK_OK(upres_ctx_new(&cd, &c4));
    CHECK_EQ(upres_ctx_threads(c4), 4);
    const struct { uint32_t c; upres_depth d; } kinds[] = {
        {3, UPRES_U8}, {1, UPRES_U8}, {4, UPRES_U8}, {3, UPRES_U16}, {2, UPRES_F32}};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        upres_image *img = make_pattern(301, 203, kinds[k].c, kinds[k].d, (uint32_t)k);
        CHECK(img);
        const uint32_t sizes[][2] = {{123, 457}, {97, 61}, {640, 203}, {301, 64}};
        for (int f = 0; f < UPRES_FILTER_COUNT_; f += 2)
            for (int s = 0; s < 4; s++) {
                upres_image *a = NULL, *b = NULL;
                CHECK_OK(resize(c1, img, sizes[s][0], sizes[s][1], (upres_filter)f, &a));
                CHECK_OK(resize(c4, img, sizes[s][0], sizes[s][1], (upres_filter)f, &b));
                CHECKF(tu_same_pixels(a, b), "%u ch %s %s -> %ux%u differs between 1 and 4 threads",
                       kinds[k].c, upres_depth_name(kinds[k].d),
                       upres_filter_name((upres_filter)f), sizes[s][0], sizes[s][1]);
                upres_image_free(a);
                upres_image_free(b);
            }
        upres_image_free(img);
    }
    CHECK(calls > 0);
    upres_ctx_free(c1);
    upres_ctx_free(c4);
}

TEST(resample_cancel)
{
    int calls = 0;
    upres_ctx *ctx;
    upres_ctx_desc cd = upres_ctx_desc_defaults();
    cd.threads = 2;
    cd.progress = cancel_cb;
    cd.progress_user = &calls;
    CHECK_OK(upres_ctx_new(&cd, &ctx));
    upres_image *img = make_pattern(800, 600, 3, UPRES_U8, 1), *out = (upres_image *)1;
    CHECK(img);
    CHECK_EQ(resize(ctx, img, 1900, 1300, UPRES_FILTER_LANCZOS3, &out), UPRES_ERR_CANCELLED);
    CHECK(out == NULL);
    CHECK(strlen(upres_ctx_error(ctx)) > 0);
    upres_image_free(img);
    upres_ctx_free(ctx);
}

TEST(resample_invalid_args)
{
    upres_ctx *ctx;
    upres_ctx_desc cd = upres_ctx_desc_defaults();
    cd.threads = 1;
    cd.limits.max_side = 1000;
    CHECK_OK(upres_ctx_new(&cd, &ctx));
    upres_image *img = make_pattern(20, 10, 3, UPRES_U8, 1), *out = (upres_image *)1;
    CHECK(img);
    upres_resize_desc d = upres_resize_desc_defaults();
    d.width = 5;
    d.height = 5;
    CHECK_EQ(upres_resize(ctx, NULL, &d, &out), UPRES_ERR_INVALID_ARG);
    CHECK(out == NULL);
    CHECK_EQ(upres_resize(ctx, img, NULL, &out), UPRES_ERR_INVALID_ARG);
    CHECK_EQ(upres_resize(ctx, img, &d, NULL), UPRES_ERR_INVALID_ARG);

    struct { const char *what; upres_resize_desc d; int want; } bad[16];
    int n = 0;
#define BAD(w, field, value, code)                                            \
    do {                                                                      \
        bad[n].what = w;                                                      \
        bad[n].d = d;                                                         \
        bad[n].d.field = value;                                               \
        bad[n].want = code;                                                   \
        n++;                                                                  \
    } while (0)
    BAD("zero width", width, 0, UPRES_ERR_INVALID_ARG);
    BAD("zero height", height, 0, UPRES_ERR_INVALID_ARG);
    BAD("too wide", width, 1001, UPRES_ERR_LIMIT);
    BAD("filter", filter, (upres_filter)UPRES_FILTER_COUNT_, UPRES_ERR_INVALID_ARG);
    BAD("filter<0", filter, (upres_filter)-1, UPRES_ERR_INVALID_ARG);
    BAD("negative x", src_x, -1, UPRES_ERR_INVALID_ARG);
    BAD("region w only", src_w, 5, UPRES_ERR_INVALID_ARG); /* src_h still 0 */
    BAD("nan", src_y, NAN, UPRES_ERR_INVALID_ARG);
#undef BAD
    for (int i = 0; i < n; i++) {
        out = (upres_image *)1;
        CHECKF(upres_resize(ctx, img, &bad[i].d, &out) == bad[i].want && out == NULL,
               "%s not rejected", bad[i].what);
        CHECKF(strlen(upres_ctx_error(ctx)) > 0, "%s: no error detail", bad[i].what);
    }
    /* Regions reaching outside the image. */
    const double regions[][4] = {{15, 0, 6, 10}, {0, 0, 20, 10.5}, {0, 0, 20, -3},
                                 {0, 0, INFINITY, 10}, {19.5, 9.5, 0.5, 0.5}};
    for (int i = 0; i < 5; i++) {
        upres_resize_desc r = d;
        r.src_x = regions[i][0];
        r.src_y = regions[i][1];
        r.src_w = regions[i][2];
        r.src_h = regions[i][3];
        int st = upres_resize(ctx, img, &r, &out);
        if (i < 4) {
            CHECKF(st == UPRES_ERR_INVALID_ARG, "region %d accepted (%d)", i, st);
            CHECK(strstr(upres_ctx_error(ctx), "region") != NULL);
        } else {
            CHECK_OK(st); /* a tiny region in the corner is fine */
            upres_image_free(out);
        }
    }
    /* Bad source images. */
    upres_image broken = *img;
    broken.channels = 5;
    CHECK_EQ(upres_resize(ctx, &broken, &d, &out), UPRES_ERR_INVALID_ARG);
    broken = *img;
    broken.stride = 10;
    CHECK_EQ(upres_resize(ctx, &broken, &d, &out), UPRES_ERR_INVALID_ARG);
    broken = *img;
    broken.depth = (upres_depth)9;
    CHECK_EQ(upres_resize(ctx, &broken, &d, &out), UPRES_ERR_INVALID_ARG);
    /* And a good call still works (and clears the detail). */
    CHECK_OK(upres_resize(ctx, img, &d, &out));
    CHECK_EQ(strlen(upres_ctx_error(ctx)), 0);
    upres_image_free(out);
    upres_image_free(img);
    upres_ctx_free(ctx);
}

/* Extreme ratios and tiny images on every filter and layout. */
TEST(resample_extreme_sizes)
{
    const uint32_t dims[][4] = {{1, 1, 1, 1}, {1, 1, 50, 3}, {300, 2, 1, 1},
                                {2, 300, 3, 1}, {5, 5, 1000, 2}, {1000, 3, 7, 9}};
    for (int dep = UPRES_U8; dep <= UPRES_F32; dep++)
        for (uint32_t c = 1; c <= 4; c++)
            for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
                upres_image *img = make_pattern(dims[i][0], dims[i][1], c, (upres_depth)dep, 2);
                CHECK(img);
                for (int f = 0; f < UPRES_FILTER_COUNT_; f++) {
                    upres_image *out = NULL;
                    CHECK_OK(resize(NULL, img, dims[i][2], dims[i][3], (upres_filter)f, &out));
                    CHECK_EQ(out->width, dims[i][2]);
                    CHECK_EQ(out->height, dims[i][3]);
                    CHECK_EQ(out->channels, c);
                    if (dep == UPRES_F32) {
                        for (uint32_t y = 0; y < out->height; y++)
                            for (uint32_t x = 0; x < out->width * c; x++)
                                CHECK(isfinite(((float *)upres_image_row(out, y))[x]));
                    }
                    upres_image_free(out);
                }
                upres_image_free(img);
            }
}

/* The streaming resize (used to recompute proxies from streamed originals)
 * gives exactly upres_resize's result for every path: fixed-point u8, float
 * (u16, f32, alpha), skipped passes, same size, nearest, upscaling, and any
 * batch sizes of pushed rows. */
TEST(resample_stream_matches_whole_resize)
{
    static const struct {
        uint32_t w, h, ch;
        upres_depth d;
        uint32_t ow, oh;
        upres_filter f;
    } cases[] = {
        {517, 389, 3, UPRES_U8, 64, 48, UPRES_FILTER_LANCZOS3},
        {517, 389, 1, UPRES_U8, 100, 389, UPRES_FILTER_LANCZOS3},  /* no vertical pass */
        {517, 389, 3, UPRES_U8, 517, 40, UPRES_FILTER_BICUBIC},    /* no horizontal pass */
        {300, 700, 4, UPRES_U8, 31, 77, UPRES_FILTER_LANCZOS3},
        {300, 200, 3, UPRES_U16, 57, 41, UPRES_FILTER_LANCZOS3},
        {300, 200, 2, UPRES_U16, 57, 41, UPRES_FILTER_MITCHELL},
        {200, 150, 3, UPRES_F32, 33, 25, UPRES_FILTER_LANCZOS3},
        {200, 150, 3, UPRES_U8, 33, 25, UPRES_FILTER_NEAREST},
        {120, 90, 3, UPRES_U8, 120, 90, UPRES_FILTER_LANCZOS3},    /* same size: a copy */
        {40, 30, 4, UPRES_U8, 97, 71, UPRES_FILTER_LANCZOS3},      /* upscale */
        {3000, 20, 3, UPRES_U8, 5, 1, UPRES_FILTER_BOX},
    };
    upres_ctx *ctx = NULL;
    upres_ctx_desc cd = upres_ctx_desc_defaults();
    cd.threads = 2;
    CHECK_OK(upres_ctx_new(&cd, &ctx));
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        upres_image *src = tu_random_image(cases[k].w, cases[k].h, cases[k].ch,
                                           cases[k].d == UPRES_F32 ? UPRES_U16 : cases[k].d,
                                           (uint32_t)(900 + k)),
                    *want = NULL, *got = NULL;
        CHECK(src);
        if (cases[k].d == UPRES_F32) {
            upres_image *f = NULL;
            CHECK_OK(upres_image_convert(src, UPRES_F32, src->channels, 1.0f, &f));
            upres_image_free(src);
            src = f;
        }
        upres_resize_desc rd = upres_resize_desc_defaults();
        rd.width = cases[k].ow;
        rd.height = cases[k].oh;
        rd.filter = cases[k].f;
        CHECK_OK(upres_resize(ctx, src, &rd, &want));
        upres_layout L = {src->width, src->height, src->channels, src->depth};
        upres_sresize *sr = NULL;
        CHECK_OK(upres__sresize_new(ctx, &L, cases[k].ow, cases[k].oh, cases[k].f, &sr));
        /* Batches of 1, 2, ... 130 rows: crossing the internal batch size. */
        uint32_t y = 0, n = 1;
        int st = UPRES_OK;
        while (!st && y < src->height) {
            uint32_t m = src->height - y < n ? src->height - y : n;
            if (k == 0 && y > 200) {
                /* Finishing early is refused. */
                CHECK_EQ(upres__sresize_finish(sr, &got), UPRES_ERR_INVALID_ARG);
                CHECK(got == NULL);
            }
            st = upres__sresize_push(ctx, sr, upres_image_row(src, y), src->stride, m);
            y += m;
            n = n % 130 + 1 + (uint32_t)k;
        }
        CHECK_OK(st);
        /* Rows past the source's height are refused. */
        CHECK_EQ(upres__sresize_push(ctx, sr, upres_image_row(src, 0), src->stride, 1),
                 UPRES_ERR_INVALID_ARG);
        CHECK_OK(upres__sresize_finish(sr, &got));
        upres__sresize_free(sr);
        CHECKF(tu_same_pixels(want, got), "case %zu: streamed result differs", k);
        upres_image_free(src);
        upres_image_free(want);
        upres_image_free(got);
    }
    upres__sresize_free(NULL);
    upres_ctx_free(ctx);
}
