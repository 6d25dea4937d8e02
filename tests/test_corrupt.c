/* Damaged input through the CLI (the acceptance item "200 truncated or
 * bit-flipped variants of sample images: each exits with a clear error line,
 * no crash, no hang over 10 s, no output file").
 *
 * Samples are made here with the public API (PNG, JPEG, TIFF, WebP of 96x64
 * with real structure), plus small real images from ../shared when present.
 * Every truncation of every format and every single-bit flip of a PNG (CRCs
 * cover every chunk) must be rejected. A second test flips random bits of the
 * other formats, where damage may go unnoticed: it only demands a clean exit
 * (0 with an output, or 1 with one line and none). A deterministic PRNG picks
 * the variants, so a failure names a reproducible case. */
#include "test.h"
#include "upres.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define VARIANTS 200
#define RUN_TIMEOUT_S 10
#define ERR_CAP 4096

static uint64_t prng_state;

/* splitmix64: small, good enough, same sequence everywhere. */
static uint64_t prng(void)
{
    uint64_t z = (prng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* A minimal well-formed RGB display profile (header, 'wtpt' tag), so the
 * PNG sample carries an ancillary iCCP chunk whose damage must be caught. */
static size_t corrupt_icc(uint8_t *buf)
{
    const size_t total = 128 + 4 + 12 + 20;
    tu_icc_header(buf, (uint32_t)total, 1);
    memcpy(buf + 132, "wtpt", 4);
    tu_put_be32(buf + 136, 144);
    tu_put_be32(buf + 140, 20);
    tu_icc_xyz_d50(buf + 144);
    return total;
}

/* A 96x64 scene: gradients, a disc, stripes and some noise, so every codec
 * produces a realistic stream (several IDAT rows, JPEG blocks, ...). */
static upres_image *scene(uint32_t channels)
{
    upres_image *img = NULL;
    if (upres_image_new(&img, 96, 64, channels, UPRES_U8, NULL) != UPRES_OK) return NULL;
    prng_state = 42;
    for (uint32_t y = 0; y < 64; y++) {
        uint8_t *row = upres_image_row(img, y);
        for (uint32_t x = 0; x < 96; x++) {
            int dx = (int)x - 60, dy = (int)y - 30;
            int disc = dx * dx + dy * dy < 300;
            int stripe = x < 30 && (x / 2) % 2;
            int noise = (int)(prng() % 24) - 12;
            for (uint32_t c = 0; c < channels; c++) {
                int v = (int)(x * 255 / 95 * (c == 0) + y * 255 / 63 * (c == 1) + 128 * (c == 2));
                if (disc) v = 255 - v;
                if (stripe) v = c == 1 ? 255 : 0;
                if (c == 3) v = 255 - (int)y * 2;
                v += noise;
                row[x * channels + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
    }
    return img;
}

typedef struct sample {
    const char *name; /* for messages */
    const char *ext;
    unsigned char *data;
    size_t size;
} sample;

/* Encodes `img` with `d` into s (data malloc()ed). Returns the status. */
static int make_sample(sample *s, const char *name, const char *ext, const upres_image *img,
                       upres_format fmt, int quality, int lossless)
{
    upres_encode_desc d = upres_encode_desc_defaults();
    d.format = fmt;
    if (quality) d.quality = quality;
    d.webp_lossless = lossless;
    void *buf = NULL;
    size_t n = 0;
    int st = upres_encode(NULL, img, &d, &buf, &n);
    s->name = name;
    s->ext = ext;
    s->data = buf;
    s->size = n;
    return st;
}

/* Reads a real image from ../shared into s; 0 when absent. */
static int shared_sample(sample *s, const char *rel, const char *ext)
{
    const char *path = test_shared(rel);
    if (!path) return 0;
    s->name = rel;
    s->ext = ext;
    s->data = test_read_file(path, &s->size);
    return s->data != NULL && s->size > 16;
}

enum { TRUNCATE, FLIP };

typedef struct variant {
    const sample *src;
    int kind;
    size_t arg; /* TRUNCATE: new length; FLIP: bit index */
} variant;

/* Appends `count` truncations of s spread over the file: one in each of
 * `count` equal slices (jittered), the last one at size-1. */
static void add_truncations(variant *v, int *n, const sample *s, int count)
{
    for (int k = 0; k < count; k++) {
        size_t slice = s->size / (size_t)count;
        size_t len = (size_t)k * slice + (slice ? (size_t)(prng() % slice) : 0);
        if (k == count - 1) len = s->size - 1;
        if (len >= s->size) len = s->size - 1;
        v[*n].src = s;
        v[*n].kind = TRUNCATE;
        v[*n].arg = len;
        (*n)++;
    }
}

/* Appends `count` single-bit flips of s: half anywhere, half in the first
 * 128 and last 16 bytes where the headers and the end marker live. */
static void add_flips(variant *v, int *n, const sample *s, int count)
{
    for (int k = 0; k < count; k++) {
        size_t byte;
        if (k % 2 == 0 || s->size < 256) {
            byte = (size_t)(prng() % s->size);
        } else {
            size_t r = (size_t)(prng() % 144);
            byte = r < 128 ? r : s->size - 16 + (r - 128);
        }
        v[*n].src = s;
        v[*n].kind = FLIP;
        v[*n].arg = byte * 8 + (size_t)(prng() % 8);
        (*n)++;
    }
}

/* Writes variant i as `path`. Returns 0 on success. */
static int write_variant(const variant *v, const char *path)
{
    const sample *s = v->src;
    if (v->kind == TRUNCATE) return test_write_file(path, s->data, v->arg);
    unsigned char *copy = malloc(s->size);
    if (!copy) return -1;
    memcpy(copy, s->data, s->size);
    copy[v->arg / 8] ^= (unsigned char)(1u << (v->arg % 8));
    int r = test_write_file(path, copy, s->size);
    free(copy);
    return r;
}

static void describe(const variant *v, char *buf, size_t cap)
{
    if (v->kind == TRUNCATE)
        snprintf(buf, cap, "%s truncated to %zu of %zu bytes", v->src->name, v->arg, v->src->size);
    else
        snprintf(buf, cap, "%s with bit %zu of byte %zu flipped (of %zu)", v->src->name,
                 v->arg % 8, v->arg / 8, v->src->size);
}

/* Converts each undamaged sample through the CLI: rejecting damaged files
 * only means something when the intact ones go through. Returns the number
 * that failed (details on stderr). */
static int intact_samples_convert(const sample *s, int n, const char *outdir)
{
    char in[4200], out[4200], err[ERR_CAP];
    int bad = 0;
    snprintf(out, sizeof out, "%s/intact.png", outdir);
    for (int i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "intact%d.%s", i, s[i].ext);
        snprintf(in, sizeof in, "%s", test_tmp(name));
        if (test_write_file(in, s[i].data, s[i].size) != 0) return n;
        char *argv[] = {(char *)test_upres_bin(), "-q", "convert", in, out, NULL};
        int rc = test_run(argv, RUN_TIMEOUT_S, NULL, 0, err, sizeof err);
        if (rc != 0 || !test_file_exists(out)) {
            fprintf(stderr, "    intact %s: exit %d: %.300s\n", s[i].name, rc, err);
            bad++;
        }
        unlink(out);
        unlink(in);
    }
    return bad;
}

static void free_samples(sample *s, int n)
{
    for (int i = 0; i < n; i++) free(s[i].data);
}

TEST(corrupt_200_variants_fail_cleanly)
{
    sample smp[8];
    memset(smp, 0, sizeof smp);
    upres_image *rgb = scene(3), *rgba = scene(4);
    CHECK(rgb && rgba);
    uint8_t icc[256];
    size_t icc_size = corrupt_icc(icc);
    int st = upres_image_set_icc(rgb, icc, icc_size);
    if (st == UPRES_OK) st = make_sample(&smp[0], "sample.png (RGB, iCCP)", "png", rgb, UPRES_FORMAT_PNG, 0, 0);
    if (st == UPRES_OK) st = make_sample(&smp[1], "sample-rgba.png", "png", rgba, UPRES_FORMAT_PNG, 0, 0);
    if (st == UPRES_OK) st = make_sample(&smp[2], "sample.jpg", "jpg", rgb, UPRES_FORMAT_JPEG, 90, 0);
    if (st == UPRES_OK) st = make_sample(&smp[3], "sample.tif", "tif", rgba, UPRES_FORMAT_TIFF, 0, 0);
    if (st == UPRES_OK) st = make_sample(&smp[4], "sample.webp", "webp", rgb, UPRES_FORMAT_WEBP, 80, 0);
    upres_image_free(rgb);
    upres_image_free(rgba);
    if (st != UPRES_OK) free_samples(smp, 5);
    CHECK_OK(st);
    int nsmp = 5;
    int have_kodak = shared_sample(&smp[nsmp], "images/kodak24/kodim23.png", "png");
    const sample *kodak = have_kodak ? &smp[nsmp++] : NULL;
    int have_jpg = shared_sample(&smp[nsmp], "images/waifu2x/0.jpg", "jpg");
    const sample *realjpg = have_jpg ? &smp[nsmp++] : NULL;

    variant *v = calloc(VARIANTS, sizeof *v);
    CHECK(v);
    int n = 0;
    prng_state = 0x5eed;
    /* Real images replace some generated variants: the total stays 200. */
    add_truncations(v, &n, &smp[0], 30);
    add_truncations(v, &n, &smp[2], realjpg ? 20 : 30);
    add_truncations(v, &n, &smp[3], 30);
    add_truncations(v, &n, &smp[4], 30);
    add_flips(v, &n, &smp[0], 40);
    add_flips(v, &n, &smp[1], kodak ? 20 : 40);
    if (kodak) {
        add_truncations(v, &n, kodak, 10);
        add_flips(v, &n, kodak, 10);
    }
    if (realjpg) add_truncations(v, &n, realjpg, 10);
    if (n != VARIANTS) {
        free(v);
        free_samples(smp, nsmp);
        CHECKF(0, "built %d variants, want %d", n, VARIANTS);
    }

    char outdir[4096], out[4200], in[4200], err[ERR_CAP], what[256];
    snprintf(outdir, sizeof outdir, "%s", test_tmp("out"));
    mkdir(outdir, 0700);
    snprintf(out, sizeof out, "%s/out.png", outdir);
    int failures = intact_samples_convert(smp, nsmp, outdir);
    if (failures) {
        free(v);
        free_samples(smp, nsmp);
        CHECKF(0, "%d intact samples did not convert", failures);
    }
    for (int i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "v%03d.%s", i, v[i].src->ext);
        snprintf(in, sizeof in, "%s", test_tmp(name));
        if (write_variant(&v[i], in) != 0) {
            failures++;
            continue;
        }
        char *argv[] = {(char *)test_upres_bin(), "convert", in, out, NULL};
        int rc = test_run(argv, RUN_TIMEOUT_S, NULL, 0, err, sizeof err);
        int files = test_dir_count(outdir);
        const char *bad = NULL;
        if (rc == -1) bad = "timed out (or could not run)";
        else if (rc >= 128) bad = "killed by a signal";
        else if (rc != 1) bad = "exit status is not 1";
        else if (!tu_one_line(err)) bad = "stderr is not exactly one line";
        else if (!strstr(err, name)) bad = "the error line does not name the file";
        else if (files != 0) bad = "a file was left in the output folder";
        if (bad) {
            if (failures < 12) {
                describe(&v[i], what, sizeof what);
                fprintf(stderr, "    variant %d (%s): %s; exit %d, stderr: %.300s\n", i, what, bad,
                        rc, err);
            }
            failures++;
            /* Clear the folder so the next variant is judged on its own. */
            unlink(out);
        }
        unlink(in);
    }
    free(v);
    free_samples(smp, nsmp);
    CHECKF(failures == 0, "%d of %d damaged files were not rejected cleanly", failures, n);
}

TEST(corrupt_random_flips_exit_cleanly)
{
    sample smp[4];
    memset(smp, 0, sizeof smp);
    upres_image *rgb = scene(3);
    CHECK(rgb);
    int st = make_sample(&smp[0], "sample.jpg", "jpg", rgb, UPRES_FORMAT_JPEG, 90, 0);
    if (st == UPRES_OK) st = make_sample(&smp[1], "sample.tif", "tif", rgb, UPRES_FORMAT_TIFF, 0, 0);
    if (st == UPRES_OK) st = make_sample(&smp[2], "sample.webp", "webp", rgb, UPRES_FORMAT_WEBP, 80, 0);
    if (st == UPRES_OK) st = make_sample(&smp[3], "sample-lossless.webp", "webp", rgb, UPRES_FORMAT_WEBP, 0, 1);
    upres_image_free(rgb);
    if (st != UPRES_OK) free_samples(smp, 4);
    CHECK_OK(st);

    char outdir[4096], out[4200], in[4200], err[ERR_CAP], what[256];
    snprintf(outdir, sizeof outdir, "%s", test_tmp("out"));
    mkdir(outdir, 0700);
    snprintf(out, sizeof out, "%s/out.png", outdir);
    int failures = intact_samples_convert(smp, 4, outdir);
    if (failures) {
        free_samples(smp, 4);
        CHECKF(0, "%d intact samples did not convert", failures);
    }
    prng_state = 0xf11b5;
    int decoded = 0;
    const int total = 100;
    for (int i = 0; i < total; i++) {
        variant v = {&smp[i % 4], FLIP, 0};
        v.arg = (size_t)(prng() % (v.src->size * 8));
        char name[32];
        snprintf(name, sizeof name, "f%03d.%s", i, v.src->ext);
        snprintf(in, sizeof in, "%s", test_tmp(name));
        if (write_variant(&v, in) != 0) {
            failures++;
            continue;
        }
        char *argv[] = {(char *)test_upres_bin(), "-q", "convert", in, out, NULL};
        int rc = test_run(argv, RUN_TIMEOUT_S, NULL, 0, err, sizeof err);
        int have_out = test_file_exists(out);
        const char *bad = NULL;
        if (rc == -1) bad = "timed out (or could not run)";
        else if (rc >= 128) bad = "killed by a signal";
        else if (rc != 0 && rc != 1) bad = "exit status is neither 0 nor 1";
        else if (rc == 0 && !have_out) bad = "success without an output file";
        else if (rc == 0 && err[0]) bad = "success, yet something was printed on stderr";
        else if (rc == 1 && have_out) bad = "failure left an output file";
        else if (rc == 1 && !tu_one_line(err)) bad = "stderr is not exactly one line";
        if (rc == 0) decoded++;
        unlink(out);
        if (!bad && test_dir_count(outdir) != 0) bad = "a temporary file was left behind";
        if (bad) {
            if (failures < 12) {
                describe(&v, what, sizeof what);
                fprintf(stderr, "    flip %d (%s): %s; exit %d, stderr: %.300s\n", i, what, bad, rc,
                        err);
            }
            failures++;
        }
        unlink(in);
    }
    free_samples(smp, 4);
    fprintf(stderr, "    %d of %d flipped files still decoded\n", decoded, total);
    CHECKF(failures == 0, "%d of %d flipped files did not exit cleanly", failures, total);
}
