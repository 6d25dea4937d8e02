/* make_sample: writes a deterministic, colourful test scene for trying out
 * resamplers (the README's demo input).
 *
 *   usage: make_sample OUT.png [WxH]      (default 480x320)
 *
 * The scene has something for every kind of artefact: smooth gradients
 * (banding), hard-edged shapes and circles (ringing, jaggies), fine lines and
 * a zone plate (aliasing, moire), and a small checkerboard (blur). Only the
 * public API is used: upres_image_new + upres_save. */
#include "upres.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PI 3.14159265358979323846

/* An RGB colour, components 0..1. */
typedef struct rgb {
    double r, g, b;
} rgb;

/* Hue h in [0,1) at full saturation and value `v`. */
static rgb hue(double h, double v)
{
    h = (h - floor(h)) * 6.0;
    int i = (int)h;
    double f = h - i;
    double q = 1.0 - f;
    rgb c;
    switch (i % 6) {
    case 0: c = (rgb){1, f, 0}; break;
    case 1: c = (rgb){q, 1, 0}; break;
    case 2: c = (rgb){0, 1, f}; break;
    case 3: c = (rgb){0, q, 1}; break;
    case 4: c = (rgb){f, 0, 1}; break;
    default: c = (rgb){1, 0, q}; break;
    }
    c.r *= v;
    c.g *= v;
    c.b *= v;
    return c;
}

/* Colour of the scene at pixel centre (x, y) of a w x h image. Every feature
 * is placed in units of the image size so any WxH gives the same layout. */
static rgb scene(double x, double y, double w, double h)
{
    double u = x / w, v = y / h;
    double s = w < h ? w : h;  /* scale for round things */
    /* Background: hue sweep left to right, darkening downwards. */
    rgb c = hue(u * 0.85, 1.0 - 0.6 * v);
    c.r = c.r * 0.8 + 0.1;
    c.g = c.g * 0.8 + 0.1;
    c.b = c.b * 0.8 + 0.1;

    /* A grey ramp along the top: banding shows here first. */
    if (v < 0.08) {
        double gr = u;
        c = (rgb){gr, gr, gr};
    }
    /* Hard-edged rectangle and a triangle. */
    if (u > 0.06 && u < 0.26 && v > 0.14 && v < 0.42) c = (rgb){0.95, 0.95, 0.1};
    if (u > 0.10 && u < 0.22 && v > 0.20 && v < 0.36) c = (rgb){0.05, 0.05, 0.3};
    {
        double tx = (u - 0.30) / 0.16, ty = (v - 0.14) / 0.28; /* unit box */
        if (ty >= 0 && ty <= 1 && fabs(tx - 0.5) <= ty * 0.5) c = (rgb){0.9, 0.1, 0.2};
    }
    /* Circles: a filled disc and a thin ring. */
    {
        double dx = x - 0.62 * w, dy = y - 0.28 * h, r = hypot(dx, dy);
        if (r < 0.13 * s) c = (rgb){0.1, 0.6, 0.95};
        if (fabs(r - 0.18 * s) < 0.012 * s) c = (rgb){1, 1, 1};
    }
    /* Zone plate: cos(k r^2), frequency rising to Nyquist at its rim. */
    {
        double cx = 0.86 * w, cy = 0.27 * h, R = 0.12 * s;
        double dx = x - cx, dy = y - cy, r2 = dx * dx + dy * dy;
        if (r2 < R * R) {
            double k = PI / (2.0 * R); /* phase step pi/px at r = R */
            double g = 0.5 + 0.5 * cos(k * r2);
            c = (rgb){g, g, g};
        }
    }
    /* Fine lines: 1-px lines at spacings 2..6 px, and a slanted fan. */
    if (v > 0.52 && v < 0.72 && u > 0.05 && u < 0.45) {
        int ix = (int)x, band = (int)((u - 0.05) / 0.08); /* 5 bands */
        int period = 2 + band;
        double g = ix % period == 0 ? 0.0 : 1.0;
        c = (rgb){g, g, g};
    }
    if (v > 0.52 && v < 0.92 && u > 0.50 && u < 0.70) {
        /* Lines through a point below: angles change across the box. */
        double ax = x - 0.60 * w, ay = y - 1.1 * h;
        double ang = atan2(ax, -ay);
        double g = 0.5 + 0.5 * cos(ang * 120.0);
        c = (rgb){g, 0.9 * g, 0.3 + 0.7 * g};
    }
    /* Small checkerboard: 2-px and 4-px squares. */
    if (v > 0.76 && v < 0.92 && u > 0.05 && u < 0.45) {
        int sq = u < 0.25 ? 2 : 4;
        int ix = (int)x / sq, iy = (int)y / sq;
        c = ((ix + iy) & 1) ? (rgb){0.1, 0.1, 0.1} : (rgb){0.95, 0.9, 0.8};
    }
    /* Smooth radial blob with colour: gentle gradients for upscaling. */
    {
        double dx = (u - 0.86) / 0.12, dy = (v - 0.72) / 0.18, r2 = dx * dx + dy * dy;
        if (r2 < 1) {
            rgb b = hue(0.55 + 0.4 * r2, 1.0);
            double t = 1 - r2;
            c.r = c.r * (1 - t) + b.r * t;
            c.g = c.g * (1 - t) + b.g * t;
            c.b = c.b * (1 - t) + b.b * t;
        }
    }
    return c;
}

static uint8_t to8(double v)
{
    v = v * 255.0 + 0.5;
    return v <= 0 ? 0 : v >= 255 ? 255 : (uint8_t)v;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: make_sample OUT.png [WxH]   (default 480x320)\n");
        return 2;
    }
    unsigned long w = 480, h = 320;
    if (argc == 3) {
        char *end;
        w = strtoul(argv[2], &end, 10);
        if (*end != 'x' || w < 16 || w > 16384) goto bad;
        h = strtoul(end + 1, &end, 10);
        if (*end || h < 16 || h > 16384) goto bad;
    }
    upres_image *img = NULL;
    int st = upres_image_new(&img, (uint32_t)w, (uint32_t)h, 3, UPRES_U8, NULL);
    if (st != UPRES_OK) {
        fprintf(stderr, "make_sample: %s\n", upres_strerror(st));
        return 1;
    }
    for (uint32_t y = 0; y < img->height; y++) {
        uint8_t *row = upres_image_row(img, y);
        for (uint32_t x = 0; x < img->width; x++) {
            rgb c = scene(x + 0.5, y + 0.5, (double)w, (double)h);
            row[3 * x + 0] = to8(c.r);
            row[3 * x + 1] = to8(c.g);
            row[3 * x + 2] = to8(c.b);
        }
    }
    upres_encode_desc d = upres_encode_desc_defaults();
    d.format = upres_format_from_path(argv[1]);
    if (d.format == UPRES_FORMAT_UNKNOWN) d.format = UPRES_FORMAT_PNG;
    upres_ctx *ctx = NULL;
    st = upres_ctx_new(NULL, &ctx);
    if (st == UPRES_OK) st = upres_save(ctx, img, argv[1], &d);
    if (st != UPRES_OK) {
        const char *detail = ctx ? upres_ctx_error(ctx) : "";
        fprintf(stderr, "make_sample: cannot write '%s': %s%s%s%s\n", argv[1], upres_strerror(st),
                *detail ? " (" : "", detail, *detail ? ")" : "");
    } else {
        printf("%s: %lux%lu test scene\n", argv[1], w, h);
    }
    upres_ctx_free(ctx);
    upres_image_free(img);
    return st == UPRES_OK ? 0 : 1;
bad:
    fprintf(stderr, "make_sample: bad size '%s' (want WxH, 16..16384 each)\n", argv[2]);
    return 2;
}
