/* Times upres_resize alone (no codecs) on a raw 8-bit image.
 * Build ad hoc (not part of the Makefile), e.g.:
 *   cc -O2 -Iinclude bench/bench_resample.c build/libupres.a -lm -pthread \
 *      $(pkg-config --libs libpng libjpeg libtiff-4 libwebp libwebpdemux libwebpmux zlib) \
 *      -o /tmp/bench_resample
 * Usage: bench_resample IN.raw W H C OUT_W OUT_H [threads] [runs] [filter] [depth]
 * IN.raw holds W*H*C bytes. Prints the median wall time of `runs` resizes. */
#include "upres.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 7) {
        fprintf(stderr, "usage: %s IN.raw W H C OUT_W OUT_H [threads] [runs] [filter] [depth]\n",
                argv[0]);
        return 2;
    }
    uint32_t w = (uint32_t)atoi(argv[2]), h = (uint32_t)atoi(argv[3]), c = (uint32_t)atoi(argv[4]);
    upres_resize_desc d = upres_resize_desc_defaults();
    d.width = (uint32_t)atoi(argv[5]);
    d.height = (uint32_t)atoi(argv[6]);
    int threads = argc > 7 ? atoi(argv[7]) : 2, runs = argc > 8 ? atoi(argv[8]) : 5;
    if (argc > 9 && upres_filter_from_name(argv[9]) >= 0)
        d.filter = (upres_filter)upres_filter_from_name(argv[9]);
    upres_depth depth = argc > 10 && !strcmp(argv[10], "f32")   ? UPRES_F32
                        : argc > 10 && !strcmp(argv[10], "u16") ? UPRES_U16
                                                                : UPRES_U8;
    upres_image *img, *conv = NULL, *out = NULL;
    if (upres_image_new(&img, w, h, c, UPRES_U8, NULL)) return 1;
    FILE *f = fopen(argv[1], "rb");
    if (!f || fread(img->data, 1, (size_t)w * h * c, f) != (size_t)w * h * c) {
        fprintf(stderr, "cannot read %s\n", argv[1]);
        return 1;
    }
    fclose(f);
    if (depth != UPRES_U8) {
        if (upres_image_convert(img, depth, c, 1.0f, &conv)) return 1;
        upres_image_free(img);
        img = conv;
    }
    upres_ctx_desc cd = upres_ctx_desc_defaults();
    cd.threads = threads;
    upres_ctx *ctx;
    if (upres_ctx_new(&cd, &ctx)) return 1;
    double t[64];
    if (runs > 64) runs = 64;
    for (int i = 0; i < runs; i++) {
        double t0 = now_s();
        int st = upres_resize(ctx, img, &d, &out);
        t[i] = now_s() - t0;
        if (st) {
            fprintf(stderr, "resize: %s\n", upres_ctx_error(ctx));
            return 1;
        }
        upres_image_free(out);
    }
    qsort(t, (size_t)runs, sizeof t[0], cmp_d);
    printf("%ux%u -> %ux%u %s %s, %d threads: median %.4f s (min %.4f)\n", w, h, d.width,
           d.height, upres_filter_name(d.filter), upres_depth_name(depth), threads, t[runs / 2],
           t[0]);
    upres_image_free(img);
    upres_ctx_free(ctx);
    return 0;
}
