/* The proxy workflow through the `upres` tool: split geometry and metadata,
 * split-with-processed + merge round trips, snake/kebab options, external
 * upscalers started without a shell (a fake tool records its argv), the
 * timeout, batch-split patterns, and one-line errors that leave nothing
 * behind. */
#include "test.h"
#include "upres.h"

#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define T_S 120
#define CAP 16384

static char out_[CAP], err_[CAP];

static int run(const char *first, ...)
{
    va_list ap;
    va_start(ap, first);
    int r = tu_upres_va(NULL, NULL, T_S, out_, sizeof out_, err_, sizeof err_, first, ap);
    va_end(ap);
    return r;
}

static int one_line(const char *s)
{
    size_t n = strlen(s);
    return n > 0 && s[n - 1] == '\n' && memchr(s, '\n', n - 1) == NULL;
}

/* Smooth picture with texture, 8-bit levels in [lo, hi]. */
static upres_image *picture(uint32_t w, uint32_t h, uint32_t ch, upres_depth d, int lo, int hi)
{
    upres_image *img = NULL;
    if (upres_image_new(&img, w, h, ch, d, NULL)) return NULL;
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++)
            for (uint32_t c = 0; c < ch; c++) {
                double t = 0.5 + 0.35 * sin(x * 0.013 + c) * cos(y * 0.017 - c) +
                           0.1 * (((x * 2654435761u) ^ (y * 40503u)) % 97) / 97.0;
                if (c == 3) t = ((x / 3 + y) % 11) / 10.0;
                double v = lo + (hi - lo) * (t > 1 ? 1 : t);
                size_t i = ((size_t)y * w + x) * ch + c;
                if (d == UPRES_U8)
                    ((uint8_t *)img->data)[i] = (uint8_t)(v + 0.5);
                else
                    ((uint16_t *)img->data)[i] = (uint16_t)(v * 257 + 0.5);
            }
    return img;
}

static int save(const upres_image *img, const char *path)
{
    upres_encode_desc ed = upres_encode_desc_defaults();
    ed.format = upres_format_from_path(path);
    ed.png_compression = 1;
    return upres_save(NULL, img, path, &ed);
}

static upres_image *load(const char *path)
{
    upres_image *img = NULL;
    return upres_load(NULL, path, NULL, &img, NULL) == UPRES_OK ? img : NULL;
}

static int copy_file(const char *from, const char *to)
{
    size_t n;
    unsigned char *b = test_read_file(from, &n);
    int ok = b && test_write_file(to, b, n) == 0;
    free(b);
    return ok;
}

TEST(cli_split_geometry_and_metadata)
{
    upres_image *img = picture(4000, 3000, 3, UPRES_U8, 30, 220);
    CHECK(img);
    const char *in = test_tmp("photo.jpg");
    int st = save(img, in);
    upres_image_free(img);
    CHECK_OK(st);
    CHECKF(run("split", in, "512", "512", NULL) == 0, "%s", err_);
    upres_image *p = load(test_tmp("photo_proxy.png"));
    CHECK(p && p->width == 512 && p->height == 512 && p->channels == 3);
    /* 64-pixel black bands above and below a 512x384 picture. */
    const uint8_t *top = upres_image_row(p, 63), *in_top = upres_image_row(p, 64),
                  *bottom = upres_image_row(p, 448), *in_bottom = upres_image_row(p, 447);
    int bands_black = 1, content = 0;
    for (int i = 0; i < 512 * 3; i++) {
        bands_black &= top[i] == 0 && bottom[i] == 0 && ((uint8_t *)p->data)[i] == 0;
        content |= in_top[i] > 10 && in_bottom[i] > 10;
    }
    upres_image_free(p);
    CHECK(bands_black && content);
    upres_proxy_metadata m;
    CHECK_OK(upres_proxy_metadata_load(NULL, test_tmp("photo_proxy_metadata.txt"), &m));
    CHECK(m.geom.content_width == 512 && m.geom.content_height == 384 && m.geom.content_x == 0 &&
          m.geom.content_y == 64 && m.geom.original_width == 4000);
    char hex[65];
    uint64_t bytes;
    CHECK_OK(upres_sha256_file(NULL, in, hex, &bytes));
    CHECK(!strcmp(hex, m.original_sha256) && bytes == m.original_bytes);
    CHECK(strstr(m.original_path, "/photo.jpg") && m.original_path[0] == '/');
    /* The metadata text survives parse + format unchanged. */
    size_t n;
    char *text = (char *)test_read_file(test_tmp("photo_proxy_metadata.txt"), &n), *again = NULL;
    size_t n2;
    CHECK(text);
    st = upres_proxy_metadata_format(&m, &again, &n2);
    int same = st == 0 && n == n2 && !memcmp(text, again, n);
    free(text);
    free(again);
    CHECK(same);
    /* Percentages: 1000x750, no padding (into another folder). */
    mkdir(test_tmp("pc"), 0755);
    CHECKF(run("split", in, "25%", "25%", "--out-dir", test_tmp("pc"), NULL) == 0, "%s", err_);
    p = load(test_tmp("pc/photo_proxy.png"));
    CHECK(p && p->width == 1000 && p->height == 750);
    upres_image_free(p);
    CHECK_OK(upres_proxy_metadata_load(NULL, test_tmp("pc/photo_proxy_metadata.txt"), &m));
    CHECK(m.geom.content_x == 0 && m.geom.content_y == 0 && m.geom.proxy_width == 1000);
}

/* split-with-processed + merge with `processed` made by `fn` from the proxy. */
static int workflow(const char *name, const upres_image *orig, const char *w, const char *h,
                    void (*fn)(upres_image *), const char *const *extra_swp,
                    const char *const *extra_merge, upres_image **merged)
{
    char in[512], proxy[512], processed[512], delta[512], out[512];
    snprintf(in, sizeof in, "%s", test_tmp(name));
    int st = save(orig, in);
    if (st) return -100;
    if (run("split", in, w, h, NULL) != 0) return -1;
    char stem[256];
    snprintf(stem, sizeof stem, "%.*s", (int)(strrchr(name, '.') - name), name);
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s_proxy.png", stem);
    snprintf(proxy, sizeof proxy, "%s", test_tmp(tmp));
    snprintf(tmp, sizeof tmp, "%s_processed.png", stem);
    snprintf(processed, sizeof processed, "%s", test_tmp(tmp));
    upres_image *p = load(proxy);
    if (!p) return -2;
    fn(p);
    st = save(p, processed);
    upres_image_free(p);
    if (st) return -3;
    char *argv[40];
    int n = 0;
    argv[n++] = (char *)test_upres_bin();
    argv[n++] = "split-with-processed";
    argv[n++] = in;
    argv[n++] = processed;
    argv[n++] = (char *)w;
    argv[n++] = (char *)h;
    for (; extra_swp && *extra_swp; extra_swp++) argv[n++] = (char *)*extra_swp;
    argv[n] = NULL;
    if (test_run(argv, T_S, out_, sizeof out_, err_, sizeof err_) != 0) return -4;
    snprintf(tmp, sizeof tmp, "%s_proxy_delta.png", stem);
    snprintf(delta, sizeof delta, "%s", test_tmp(tmp));
    snprintf(tmp, sizeof tmp, "%s_merged.png", stem);
    snprintf(out, sizeof out, "%s", test_tmp(tmp));
    n = 0;
    argv[n++] = (char *)test_upres_bin();
    argv[n++] = "merge";
    argv[n++] = in;
    argv[n++] = delta;
    for (; extra_merge && *extra_merge; extra_merge++) argv[n++] = (char *)*extra_merge;
    argv[n] = NULL;
    if (test_run(argv, T_S, out_, sizeof out_, err_, sizeof err_) != 0) return -5;
    *merged = load(out);
    return *merged ? 0 : -6;
}

static void unchanged(upres_image *p) { (void)p; }

static void plus20(upres_image *p)
{
    const uint32_t C = p->channels, cc = C >= 3 ? 3 : 1;
    for (uint32_t y = 0; y < p->height; y++) {
        uint8_t *r = upres_image_row(p, y);
        for (uint32_t x = 0; x < p->width; x++)
            for (uint32_t c = 0; c < cc; c++) {
                int v = r[x * C + c] + 20;
                r[x * C + c] = (uint8_t)(v > 255 ? 255 : v);
            }
    }
}

static void plus200(upres_image *p)
{
    for (uint32_t y = 0; y < p->height; y++) {
        uint8_t *r = upres_image_row(p, y);
        for (uint32_t i = 0; i < p->width * p->channels; i++)
            r[i] = (uint8_t)(r[i] + 200 > 255 ? 255 : r[i] + 200);
    }
}

TEST(cli_merge_identity_is_bit_exact)
{
    static const struct {
        const char *name;
        uint32_t ch;
        upres_depth d;
        const char *w, *h;
    } cases[] = {{"rgb8.png", 3, UPRES_U8, "200", "200"},
                 {"rgba8.png", 4, UPRES_U8, "50%", "50%"},
                 {"rgb16.png", 3, UPRES_U16, "128", "96"},
                 {"rgba16.tif", 4, UPRES_U16, "200", "150"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        upres_image *orig = picture(611, 407, cases[i].ch, cases[i].d, 0, 255), *m = NULL;
        CHECK(orig);
        int st = workflow(cases[i].name, orig, cases[i].w, cases[i].h, unchanged, NULL, NULL, &m);
        int same = st == 0 && tu_same_pixels(orig, m);
        upres_image_free(orig);
        upres_image_free(m);
        CHECKF(same, "%s: step %d (%s)", cases[i].name, st, err_);
    }
}

/* A channel-mixing grade with offsets, on 8-bit RGB. */
static void grade8(upres_image *p)
{
    for (uint32_t y = 0; y < p->height; y++) {
        uint8_t *r = upres_image_row(p, y);
        for (uint32_t x = 0; x < p->width; x++) {
            double v[3] = {r[3 * x] / 255.0, r[3 * x + 1] / 255.0, r[3 * x + 2] / 255.0};
            double o[3] = {1.1 * v[0] + 0.1 * v[1] - 0.15 * v[2] + 0.03,
                           -0.05 * v[0] + 0.9 * v[1] + 0.1 * v[2] + 0.02,
                           -0.1 * v[0] + 0.05 * v[1] + 0.8 * v[2] + 0.1};
            for (int c = 0; c < 3; c++)
                r[3 * x + c] = (uint8_t)floor((o[c] < 0 ? 0 : o[c] > 1 ? 1 : o[c]) * 255 + 0.5);
        }
    }
}

static double psnr8(const upres_image *a, const upres_image *b)
{
    size_t n = (size_t)a->width * a->height * a->channels;
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)((uint8_t *)a->data)[i] - ((uint8_t *)b->data)[i];
        s += d * d;
    }
    return s > 0 ? 10 * log10(255.0 * 255.0 * n / s) : 99;
}

/* --method: guided carries a grade into the original's texture, which the
 * delta cannot; auto picks it; bad values are one-line usage errors. */
TEST(cli_merge_methods)
{
    upres_image *orig = picture(640, 480, 3, UPRES_U8, 0, 255), *want = NULL, *m = NULL;
    CHECK(orig);
    CHECK_OK(upres_image_clone(orig, &want));
    grade8(want);
    static const char *const args[4][4] = {{"--method", "delta", NULL},
                                           {"--method", "guided", NULL},
                                           {"--method", "guided", "--residual", NULL},
                                           {"-v", NULL}};
    double psnr[4] = {0, 0, 0, 0};
    for (int k = 0; k < 4; k++) {
        int st = workflow("gr.png", orig, "96", "96", grade8, NULL, args[k], &m);
        CHECKF(st == 0, "case %d: step %d (%s)", k, st, err_);
        if (st) break;
        psnr[k] = psnr8(want, m);
        upres_image_free(m);
        m = NULL;
    }
    CHECKF(strstr(out_, "auto: guided") || strstr(err_, "auto: guided"),
           "auto did not choose guided: %s%s", out_, err_);
    CHECKF(psnr[1] > psnr[0] + 6 && psnr[2] > psnr[0] + 6 && psnr[3] > psnr[0] + 6,
           "delta %.2f, guided %.2f, guided+residual %.2f, auto %.2f dB", psnr[0], psnr[1],
           psnr[2], psnr[3]);
    upres_image_free(orig);
    upres_image_free(want);
    const char *o = test_tmp("gr.png"), *d = test_tmp("gr_proxy_delta.png");
    CHECK(run("merge", o, d, "--method", "fancy", NULL) == 2);
    CHECK(one_line(err_) && strstr(err_, "delta, guided or auto"));
    CHECK(run("merge", o, d, "--grid-bins", "0", NULL) == 2);
    CHECK(one_line(err_) && strstr(err_, "--grid-bins"));
    CHECK(run("merge", o, d, "--grid-cell", "0.5", NULL) == 2);
    CHECK(run("merge", o, d, "--smoothness", "-1", NULL) == 2);
    CHECK(run("merge", o, d, "--smoothness", "", NULL) == 2);
    CHECKF(run("merge", o, d, "--method", "delta", "--residual", "--force", NULL) == 0, "%s", err_);
    CHECK(strstr(err_, "--residual applies to --method guided only"));
    CHECK(run("merge", o, d, "--method", "guided", "--upscale-method", "cmd(cp %i %o)", NULL) == 2);
    CHECK(one_line(err_) && strstr(err_, "--method delta"));
    CHECK(run("merge", "--help", NULL) == 0);
    CHECK(strstr(out_, "auto") && strstr(out_, "--residual"));
}

static int worst_vs(const upres_image *orig, const upres_image *m, int add)
{
    int worst = 0;
    size_t n = (size_t)orig->width * orig->height * orig->channels;
    for (size_t i = 0; i < n; i++) {
        int want = ((uint8_t *)orig->data)[i] + add;
        want = want > 255 ? 255 : want;
        int e = abs(((uint8_t *)m->data)[i] - want);
        if (e > worst) worst = e;
    }
    return worst;
}

TEST(cli_merge_carries_changes_refine_and_16bit)
{
    /* +20 on a picture whose proxy does not clip. */
    upres_image *orig = picture(700, 500, 3, UPRES_U8, 10, 225), *m = NULL;
    CHECK(orig);
    int st = workflow("p20.jpg", orig, "256", "256", plus20, NULL, NULL, &m);
    upres_image_free(orig);
    CHECKF(st == 0, "step %d: %s", st, err_);
    /* The JPEG original is read back for the comparison. */
    orig = load(test_tmp("p20.jpg"));
    CHECK(orig);
    int e = worst_vs(orig, m, 20);
    upres_image_free(orig);
    upres_image_free(m);
    CHECKF(e <= 1, "+20: worst error %d", e);

    orig = picture(500, 400, 3, UPRES_U8, 0, 50);
    CHECK(orig);
    static const char *const refine[] = {"--refine", NULL};
    static const char *const use_refined[] = {"--refined_delta_image", NULL, NULL};
    char rpath[512];
    snprintf(rpath, sizeof rpath, "%s", test_tmp("dark_proxy_delta_refined.png"));
    const char *merge_args[] = {"--refined-delta-image", rpath, NULL};
    (void)use_refined;
    st = workflow("dark.png", orig, "100", "100", plus200, NULL, NULL, &m);
    CHECKF(st == 0, "step %d: %s", st, err_);
    e = worst_vs(orig, m, 128);
    upres_image_free(m);
    CHECKF(e <= 1, "+200 with one 8-bit delta gives +128: worst %d", e);
    st = workflow("dark.png", orig, "100", "100", plus200, refine, merge_args, &m);
    CHECKF(st == 0, "step %d: %s", st, err_);
    e = worst_vs(orig, m, 200);
    upres_image_free(m);
    CHECKF(e <= 1, "+200 with --refine: worst %d", e);
    static const char *const d16[] = {"--depth", "16", NULL};
    st = workflow("dark.png", orig, "100", "100", plus200, d16, NULL, &m);
    CHECKF(st == 0, "step %d: %s", st, err_);
    upres_image *delta = load(test_tmp("dark_proxy_delta.png"));
    CHECK(delta && delta->depth == UPRES_U16);
    upres_image_free(delta);
    e = worst_vs(orig, m, 200);
    upres_image_free(m);
    upres_image_free(orig);
    CHECKF(e <= 1, "+200 with --depth 16: worst %d", e);
}

TEST(cli_options_accept_snake_and_kebab_case)
{
    upres_image *orig = picture(300, 200, 3, UPRES_U8, 20, 200);
    CHECK(orig);
    CHECK_OK(save(orig, test_tmp("o.png")));
    upres_image_free(orig);
    CHECK(run("split", test_tmp("o.png"), "64", "64", NULL) == 0);
    CHECK(copy_file(test_tmp("o_proxy.png"), test_tmp("proc.png")));
    CHECKF(run("split-with-processed", test_tmp("o.png"), test_tmp("proc.png"), "64", "64",
               "--delta_image", test_tmp("d1.png"), "--refine", NULL) == 0, "%s", err_);
    CHECK(test_file_exists(test_tmp("d1.png")) && test_file_exists(test_tmp("d1_refined.png")));
    CHECKF(run("split-with-processed", test_tmp("o.png"), test_tmp("proc.png"), "64", "64",
               "--delta-image=" , NULL) != 0, "empty value accepted");
    CHECK(run("split-with-processed", test_tmp("o.png"), test_tmp("proc.png"), "64", "64",
              "--delta-image", test_tmp("d2.png"), NULL) == 0);
    CHECK(test_file_exists(test_tmp("d2.png")) && !test_file_exists(test_tmp("d2_refined.png")));
    CHECKF(run("merge", test_tmp("o.png"), test_tmp("d1.png"), "--refined_delta_image",
               test_tmp("d1_refined.png"), "--upscale_method", "basic", "--output_image",
               test_tmp("m1.png"), NULL) == 0, "%s", err_);
    CHECKF(run("merge", test_tmp("o.png"), test_tmp("d2.png"), "--upscale-method", "bicubic",
               "--output-image", test_tmp("m2.png"), "--metadata",
               test_tmp("o_proxy_metadata.txt"), NULL) == 0, "%s", err_);
    upres_image *a = load(test_tmp("o.png")), *b = load(test_tmp("m1.png")), *c = load(test_tmp("m2.png"));
    int ok = a && b && c && tu_same_pixels(a, b) && tu_same_pixels(a, c);
    upres_image_free(a);
    upres_image_free(b);
    upres_image_free(c);
    CHECK(ok);
    CHECK(run("merge", test_tmp("o.png"), test_tmp("d2.png"), "--upscale_method", "magic", NULL) == 2);
    CHECK(one_line(err_) && strstr(err_, "unknown upscale method"));
}

/* 1 while `pid` runs; a zombie (killed, waiting for init to reap it, which
 * a container's init may never do) counts as dead. */
static int process_alive(pid_t pid)
{
    if (kill(pid, 0) != 0) return 0;
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "r");
    if (!f) return 1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *paren = strrchr(buf, ')');
    return !(paren && paren[1] == ' ' && paren[2] == 'Z');
}

/* Writes an executable /bin/sh script. */
static int write_script(const char *path, const char *body)
{
    if (test_write_file(path, body, strlen(body)) != 0) return 0;
    return chmod(path, 0755) == 0;
}

TEST(cli_external_upscaler_gets_whole_arguments_and_no_shell)
{
    /* The tool's own folder and name hold spaces and shell syntax. */
    char tooldir[600];
    snprintf(tooldir, sizeof tooldir, "%s", test_tmp("tools dir ;$(touch pwned1)`touch pwned2`"));
    CHECK(mkdir(tooldir, 0755) == 0);
    char tool[1024], rec[1024], tmpd[1024], body[4096];
    snprintf(tool, sizeof tool, "%s/fake up'scaler\".sh", tooldir);
    snprintf(rec, sizeof rec, "%s", test_tmp("argv.txt"));
    /* TMPDIR with the same kind of characters: %i/%o live there. */
    snprintf(tmpd, sizeof tmpd, "%s", test_tmp("tmp $(touch pwned3) 'q' ;x"));
    CHECK(mkdir(tmpd, 0755) == 0);
    CHECK(setenv("TMPDIR", tmpd, 1) == 0);
    /* Records argv NUL-separated, then writes a 3x result (not the 4x the
     * merge needs): "wrong size" must be handled by resizing. */
    snprintf(body, sizeof body,
             "#!/bin/sh\n"
             "printf '%%s\\0' \"$0\" \"$@\" > '%s'\n"
             "exec '%s' resize \"$2\" \"$4\" --scale 3\n",
             rec, test_upres_bin());
    CHECK(write_script(tool, body));
    upres_image *orig = picture(400, 300, 3, UPRES_U8, 0, 255);
    CHECK(orig);
    char in[600];
    snprintf(in, sizeof in, "%s", test_tmp("-a b ';$(touch pwned4)`touch pwned5`.png"));
    CHECK_OK(save(orig, in));
    CHECK(run("split", "--", in, "100", "100", NULL) == 0);
    CHECK(copy_file(test_tmp("-a b ';$(touch pwned4)`touch pwned5`_proxy.png"), test_tmp("p.png")));
    CHECKF(run("split-with-processed", "--", in, test_tmp("p.png"), "100", "100", NULL) == 0, "%s", err_);
    /* The template quotes the tool's path; its '"' and '\\' are escaped. */
    char esc[2048];
    size_t o = 0;
    o += (size_t)snprintf(esc, sizeof esc, "cmd(\"");
    for (const char *s = tool; *s && o + 40 < sizeof esc; s++) {
        if (*s == '"' || *s == '\\') esc[o++] = '\\';
        esc[o++] = *s;
    }
    snprintf(esc + o, sizeof esc - o, "\" --in %%i -o \"%%o\" 'two words')");
    CHECKF(run("merge", "--upscale_method", esc, "--output-image", test_tmp("ext.png"), "--", in,
               test_tmp("-a b ';$(touch pwned4)`touch pwned5`_proxy_delta.png"), NULL) == 0,
           "%s", err_);
    size_t n;
    char *r = (char *)test_read_file(rec, &n);
    CHECK(r);
    const char *args[16];
    int argc = 0;
    for (size_t i = 0; i < n && argc < 16; i += strlen(r + i) + 1) args[argc++] = r + i;
    int ok = argc == 6 && !strcmp(args[0], tool) && !strcmp(args[1], "--in") &&
             !strcmp(args[3], "-o") && !strcmp(args[5], "two words") &&
             !strncmp(args[2], tmpd, strlen(tmpd)) && !strncmp(args[4], tmpd, strlen(tmpd)) &&
             args[2][0] == '/';
    char seen[600];
    snprintf(seen, sizeof seen, "argc %d: %s | %s | %s", argc, argc > 2 ? args[2] : "",
             argc > 4 ? args[4] : "", argc > 5 ? args[5] : "");
    free(r);
    CHECKF(ok, "%s", seen);
    /* No shell ran anything. */
    for (int k = 1; k <= 5; k++) {
        char name[32];
        snprintf(name, sizeof name, "pwned%d", k);
        CHECKF(!test_file_exists(test_tmp(name)) && access(name, F_OK) != 0, "%s exists", name);
    }
    /* Private folder removed. */
    CHECK_EQ(test_dir_count(tmpd), 0);
    /* An identity delta stays an identity through the tool (127 everywhere). */
    upres_image *m = load(test_tmp("ext.png"));
    int same = m && tu_same_pixels(orig, m);
    upres_image_free(m);
    upres_image_free(orig);
    CHECK(same);
}

TEST(cli_external_upscaler_timeout_and_failure)
{
    char tmpd[600];
    snprintf(tmpd, sizeof tmpd, "%s", test_tmp("tmp"));
    CHECK(mkdir(tmpd, 0755) == 0);
    CHECK(setenv("TMPDIR", tmpd, 1) == 0);
    char hang[512], fail[512], pidfile[512], body[2048];
    snprintf(hang, sizeof hang, "%s", test_tmp("hang.sh"));
    snprintf(fail, sizeof fail, "%s", test_tmp("fail.sh"));
    snprintf(pidfile, sizeof pidfile, "%s", test_tmp("child.pid"));
    snprintf(body, sizeof body, "#!/bin/sh\nsleep 100 &\necho $! > '%s'\nsleep 100\n", pidfile);
    CHECK(write_script(hang, body));
    CHECK(write_script(fail, "#!/bin/sh\necho starting >&2\necho 'model file missing: x.bin' >&2\nexit 3\n"));
    upres_image *orig = picture(200, 150, 3, UPRES_U8, 0, 255);
    CHECK(orig);
    CHECK_OK(save(orig, test_tmp("o.png")));
    upres_image_free(orig);
    CHECK(run("split", test_tmp("o.png"), "50", "50", NULL) == 0);
    CHECK(copy_file(test_tmp("o_proxy.png"), test_tmp("p.png")));
    CHECK(run("split-with-processed", test_tmp("o.png"), test_tmp("p.png"), "50", "50", NULL) == 0);
    CHECK(test_write_file(pidfile, "", 0) == 0); /* the hanging tool fills it */
    int before = test_dir_count(test_tmpdir());
    char method[600];
    snprintf(method, sizeof method, "cmd(%s %%i %%o)", hang);
    struct timeval t0, t1;
    gettimeofday(&t0, NULL);
    int rc = run("merge", test_tmp("o.png"), test_tmp("o_proxy_delta.png"), "--upscale_method",
                 method, "--cmd-timeout", "1", NULL);
    gettimeofday(&t1, NULL);
    double secs = (t1.tv_sec - t0.tv_sec) + (t1.tv_usec - t0.tv_usec) / 1e6;
    CHECKF(rc == 1 && one_line(err_), "rc %d: %s", rc, err_);
    CHECKF(secs < 6, "took %.1f s", secs);
    CHECKF(strstr(err_, "did not finish") && strstr(err_, "--cmd-timeout"), "%s", err_);
    /* The tool's background child died with its group. */
    size_t n;
    char *pid = (char *)test_read_file(pidfile, &n);
    CHECK(pid);
    long child = atol(pid);
    free(pid);
    struct timespec ts = {0, 200000000};
    nanosleep(&ts, NULL);
    CHECKF(child > 0 && !process_alive((pid_t)child), "child %ld still alive", child);
    CHECK_EQ(test_dir_count(tmpd), 0);
    CHECK(!test_file_exists(test_tmp("o_merged.png")));
    /* A failing tool: exit status and the tail of its stderr, one line. */
    snprintf(method, sizeof method, "cmd(%s %%i %%o)", fail);
    rc = run("merge", test_tmp("o.png"), test_tmp("o_proxy_delta.png"), "--upscale-method",
             method, NULL);
    CHECKF(rc == 1 && one_line(err_) && strstr(err_, "model file missing: x.bin") &&
           strstr(err_, "status 3"), "rc %d: %s", rc, err_);
    CHECK_EQ(test_dir_count(tmpd), 0);
    /* A missing program. */
    rc = run("merge", test_tmp("o.png"), test_tmp("o_proxy_delta.png"), "--upscale-method",
             "cmd(/nonexistent/upscaler %i %o)", NULL);
    CHECKF(rc == 1 && one_line(err_) && strstr(err_, "/nonexistent/upscaler"), "%s", err_);
    CHECK_EQ(test_dir_count(test_tmpdir()), before);
}

TEST(cli_proxy_errors_are_one_line_and_leave_nothing)
{
    upres_image *orig = picture(300, 200, 3, UPRES_U8, 20, 200), *other = picture(310, 200, 3, UPRES_U8, 0, 9);
    CHECK(orig && other);
    CHECK_OK(save(orig, test_tmp("o.png")));
    CHECK_OK(save(other, test_tmp("other.png")));
    upres_image_free(orig);
    upres_image_free(other);
    CHECK(run("split", test_tmp("o.png"), "64", "64", NULL) == 0);
    CHECK(copy_file(test_tmp("o_proxy.png"), test_tmp("p.png")));
    CHECK(run("split-with-processed", test_tmp("o.png"), test_tmp("p.png"), "64", "64", NULL) == 0);
    CHECK(test_write_file(test_tmp("bad_meta.txt"), "original_width=oops\n", 20) == 0);
    CHECK(mkdir(test_tmp("ro"), 0555) == 0);
    /* Root writes into any folder: a missing folder stands in for it. */
    char ro_out[600];
    snprintf(ro_out, sizeof ro_out, "%s",
             getuid() == 0 ? test_tmp("no/such/folder/x.png") : test_tmp("ro/x.png"));
    int before = test_dir_count(test_tmpdir());
    static const char *const expect[] = {
        "No such file", "No such file", "original_width", "310x200", "must have same size",
        "folder", "refusing to overwrite", "W H", "bad size"};
    for (int k = 0; k < 9; k++) {
        int rc = -1;
        switch (k) {
        case 0: rc = run("split", test_tmp("missing.png"), "64", "64", NULL); break;
        case 1: rc = run("merge", test_tmp("o.png"), test_tmp("missing_delta.png"), NULL); break;
        case 2:
            rc = run("merge", test_tmp("o.png"), test_tmp("o_proxy_delta.png"), "--metadata",
                     test_tmp("bad_meta.txt"), NULL);
            break;
        case 3:
            rc = run("merge", test_tmp("other.png"), test_tmp("o_proxy_delta.png"), "--metadata",
                     test_tmp("o_proxy_metadata.txt"), NULL);
            break;
        case 4:
            rc = run("split-with-processed", test_tmp("o.png"), test_tmp("other.png"), "64", "64", NULL);
            break;
        case 5:
            rc = run("merge", test_tmp("o.png"), test_tmp("o_proxy_delta.png"), "--output_image",
                     ro_out, NULL);
            break;
        case 6:
            rc = run("merge", test_tmp("o.png"), test_tmp("o_proxy_delta.png"), "--output_image",
                     test_tmp("o.png"), NULL);
            break;
        case 7: rc = run("split", test_tmp("o.png"), "64", NULL); break;
        case 8: rc = run("split", test_tmp("o.png"), "0", "64", NULL); break;
        }
        CHECKF(rc == (k >= 7 ? 2 : 1), "case %d: rc %d (%s)", k, rc, err_);
        CHECKF(one_line(err_) && strstr(err_, expect[k]), "case %d: '%s'", k, err_);
        CHECKF(test_dir_count(test_tmpdir()) == before, "case %d left a file", k);
        CHECK_EQ(test_dir_count(test_tmp("ro")), 0);
    }
    /* A delta name too long for the file system: nothing of the split is
     * left, not even the proxy computed first. */
    char longname[600];
    memset(longname, 'x', 300);
    strcpy(longname + 300, ".png");
    char longpath[1200];
    snprintf(longpath, sizeof longpath, "%s/%s", test_tmpdir(), longname);
    CHECK(unlink(test_tmp("o_proxy.png")) == 0 && unlink(test_tmp("o_proxy_metadata.txt")) == 0);
    before = test_dir_count(test_tmpdir());
    int rc = run("split-with-processed", test_tmp("o.png"), test_tmp("p.png"), "64", "64",
                 "--delta_image", longpath, NULL);
    CHECKF(rc == 1 && one_line(err_), "rc %d: %s", rc, err_);
    CHECKF(test_dir_count(test_tmpdir()) == before, "a partial output was left: %d files",
           test_dir_count(test_tmpdir()));
    /* A template without %o is a usage error before any work. */
    rc = run("merge", test_tmp("o.png"), test_tmp("o_proxy_delta.png"), "--upscale_method",
             "cmd(cp %i)", NULL);
    CHECKF(rc == 2 && one_line(err_) && strstr(err_, "%o"), "rc %d: %s", rc, err_);
    /* --force allows replacing the original, atomically. */
    CHECKF(run("merge", test_tmp("o.png"), test_tmp("o_proxy_delta.png"), "--output_image",
               test_tmp("o.png"), "--force", NULL) == 0, "%s", err_);
    chmod(test_tmp("ro"), 0755);
}

TEST(cli_batch_split_patterns_skip_and_summarise)
{
    const char *dirs[] = {"a", "a/b", "a/b/c", "a/.hidden"};
    for (int i = 0; i < 4; i++) CHECK(mkdir(test_tmp(dirs[i]), 0755) == 0);
    upres_image *img = picture(120, 80, 3, UPRES_U8, 0, 255);
    CHECK(img);
    CHECK_OK(save(img, test_tmp("a/x.png")));
    CHECK_OK(save(img, test_tmp("a/b/x.jpg")));
    CHECK_OK(save(img, test_tmp("a/b/c/z.tif")));
    CHECK_OK(save(img, test_tmp("a/.hidden/h.png")));
    CHECK_OK(save(img, test_tmp("a/x_proxy.png")));
    upres_image_free(img);
    CHECK(test_write_file(test_tmp("a/notes.txt"), "hello\n", 6) == 0);
    size_t n;
    unsigned char *png = test_read_file(test_tmp("a/x.png"), &n);
    CHECK(png);
    int ok = test_write_file(test_tmp("a/b/broken.png"), png, n / 2) == 0;
    free(png);
    CHECK(ok);
    char pattern[600];
    snprintf(pattern, sizeof pattern, "%s/**/*", test_tmp("a"));
    CHECK(mkdir(test_tmp("out"), 0755) == 0);
    int rc = run("batch-split", pattern, "32", "32", "--out-dir", test_tmp("out"), NULL);
    CHECKF(rc == 0, "rc %d: %s", rc, err_);
    CHECKF(strstr(out_, "3 proxies written, 3 skipped, 0 failed (of 6 files)"), "%s", out_);
    CHECK(strstr(err_, "notes.txt") && strstr(err_, "broken.png") && !strstr(err_, "h.png"));
    /* The folder structure below the pattern's root is recreated. */
    CHECK(test_file_exists(test_tmp("out/x_proxy.png")) &&
          test_file_exists(test_tmp("out/b/x_proxy.png")) &&
          test_file_exists(test_tmp("out/b/c/z_proxy.png")) &&
          test_file_exists(test_tmp("out/b/c/z_proxy_metadata.txt")));
    /* Two patterns (as a shell expands them) and a name clash in one folder. */
    CHECK_OK(copy_file(test_tmp("a/x.png"), test_tmp("a/b/x.png")) ? 0 : -1);
    char p1[600], p2[600];
    snprintf(p1, sizeof p1, "%s", test_tmp("a/b/x.jpg"));
    snprintf(p2, sizeof p2, "%s", test_tmp("a/b/x.png"));
    rc = run("batch-split", p1, p2, "50%", "50%", NULL);
    CHECKF(rc == 0 && strstr(out_, "1 proxies written, 1 skipped"), "rc %d: %s %s", rc, out_, err_);
    CHECK(strstr(err_, "already written"));
    /* A pattern reaching out with '..' never writes outside --out-dir, and a
     * trailing '**' means every file below. */
    CHECK(mkdir(test_tmp("out2"), 0755) == 0);
    snprintf(pattern, sizeof pattern, "%s/./../a/b/c/*.tif", test_tmp("a"));
    rc = run("batch-split", pattern, "32", "32", "--out-dir", test_tmp("out2"), NULL);
    CHECKF(rc == 0 && test_file_exists(test_tmp("out2/z_proxy.png")), "rc %d: %s %s", rc, out_, err_);
    snprintf(pattern, sizeof pattern, "%s/**", test_tmp("a/b/c"));
    rc = run("batch-split", pattern, "32", "32", "--out-dir", test_tmp("out2"), NULL);
    CHECKF(rc == 0 && strstr(out_, "1 proxies written"), "rc %d: %s %s", rc, out_, err_);
    /* Nothing matches: an error. */
    snprintf(pattern, sizeof pattern, "%s/**/*.webp", test_tmp("a"));
    rc = run("batch-split", pattern, "32", "32", NULL);
    CHECKF(rc == 1 && one_line(err_) && strstr(err_, "no files match"), "%s", err_);
}
