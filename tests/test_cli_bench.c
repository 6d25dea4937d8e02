/* Tests of `upres bench` and `upres hw` (tools/cmd_bench.c, tools/cmd_hw.c),
 * run as a separate process with test_run() in a hermetic folder (no
 * ./models, empty XDG_DATA_HOME, UPRES_MODEL_PATH empty) so installed models
 * cannot change the results; their --json output must be one strictly valid
 * JSON object with plausible fields. Runs with a real model use
 * $UPRES_SHARED/models on a 32x32 image and SKIP without it. Also tests
 * upres_upscale_plan against what upres_upscale reports (the progress
 * total) with the tiny random-weight models in tests/fixtures/arch. */
/* realpath() is XSI. */
#define _XOPEN_SOURCE 700
#include "test.h"
#include "upres.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BH_TIMEOUT_S 120
#define BH_CAP 16384

static char bh_out[BH_CAP], bh_err[BH_CAP];
static char bh_bin[PATH_MAX];

/* ---- a strict JSON reader (RFC 8259) ----------------------------------------- */

/* Parser state. When `want` names a key path ("a" or "a.b": object members
 * from the top), the span of that member's value is recorded in hit/hit_len. */
typedef struct jp {
    const char *p;
    const char *want;
    const char *hit;
    size_t hit_len;
} jp;

static void j_ws(jp *j)
{
    while (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r') j->p++;
}

static int j_value(jp *j, int depth, const char *path);

/* A string; UTF-8 checked, control characters and bad escapes refused. */
static int j_string(jp *j)
{
    const unsigned char *p = (const unsigned char *)j->p;
    if (*p++ != '"') return 0;
    for (;;) {
        unsigned c = *p;
        if (c == '"') break;
        if (c < 0x20) return 0;
        if (c == '\\') {
            p++;
            if (*p == 'u') {
                for (int k = 1; k <= 4; k++)
                    if (!((p[k] >= '0' && p[k] <= '9') || (p[k] >= 'a' && p[k] <= 'f') ||
                          (p[k] >= 'A' && p[k] <= 'F')))
                        return 0;
                p += 5;
            } else if (*p && strchr("\"\\/bfnrt", *p)) {
                p++;
            } else {
                return 0;
            }
            continue;
        }
        int len = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3
                                 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
        if (!len) return 0;
        for (int k = 1; k < len; k++)
            if ((p[k] & 0xc0) != 0x80) return 0;
        p += len;
    }
    j->p = (const char *)p + 1;
    return 1;
}

/* A number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int j_number(jp *j)
{
    const char *p = j->p;
    if (*p == '-') p++;
    if (*p == '0') p++;
    else if (*p >= '1' && *p <= '9')
        while (*p >= '0' && *p <= '9') p++;
    else return 0;
    if (*p == '.') {
        p++;
        if (!(*p >= '0' && *p <= '9')) return 0;
        while (*p >= '0' && *p <= '9') p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') p++;
        if (!(*p >= '0' && *p <= '9')) return 0;
        while (*p >= '0' && *p <= '9') p++;
    }
    j->p = p;
    return 1;
}

/* `path` is the rest of j->want still to match inside this value (NULL when
 * this value is off the wanted path). */
static int j_object(jp *j, int depth, const char *path)
{
    j->p++;
    j_ws(j);
    if (*j->p == '}') {
        j->p++;
        return 1;
    }
    /* Keys seen in this object: a repeated key is refused (our output never
     * has one, and readers disagree on which value wins). */
    const char *seen[64];
    size_t seen_len[64], nseen = 0;
    for (;;) {
        j_ws(j);
        const char *key = j->p + 1;
        if (!j_string(j)) return 0;
        size_t klen = (size_t)(j->p - 1 - key);
        for (size_t i = 0; i < nseen; i++)
            if (seen_len[i] == klen && !memcmp(seen[i], key, klen)) return 0;
        if (nseen == 64) return 0;
        seen[nseen] = key;
        seen_len[nseen++] = klen;
        j_ws(j);
        if (*j->p++ != ':') return 0;
        j_ws(j);
        const char *sub = NULL;
        if (path) {
            size_t plen = strcspn(path, ".");
            if (plen == klen && !strncmp(path, key, klen)) sub = path[plen] ? path + plen + 1 : "";
        }
        const char *start = j->p;
        if (!j_value(j, depth + 1, sub && *sub ? sub : NULL)) return 0;
        if (sub && !*sub) {
            j->hit = start;
            j->hit_len = (size_t)(j->p - start);
        }
        j_ws(j);
        if (*j->p == ',') {
            j->p++;
            continue;
        }
        if (*j->p++ != '}') return 0;
        return 1;
    }
}

static int j_array(jp *j, int depth)
{
    j->p++;
    j_ws(j);
    if (*j->p == ']') {
        j->p++;
        return 1;
    }
    for (;;) {
        j_ws(j);
        if (!j_value(j, depth + 1, NULL)) return 0;
        j_ws(j);
        if (*j->p == ',') {
            j->p++;
            continue;
        }
        return *j->p++ == ']';
    }
}

static int j_value(jp *j, int depth, const char *path)
{
    if (depth > 64) return 0;
    switch (*j->p) {
    case '{': return j_object(j, depth, path);
    case '[': return j_array(j, depth);
    case '"': return j_string(j);
    case 't': return !strncmp(j->p, "true", 4) ? (j->p += 4, 1) : 0;
    case 'f': return !strncmp(j->p, "false", 5) ? (j->p += 5, 1) : 0;
    case 'n': return !strncmp(j->p, "null", 4) ? (j->p += 4, 1) : 0;
    default: return j_number(j);
    }
}

/* 1 when s is exactly one JSON object (surrounding whitespace allowed). When
 * `key` is given (a member path like "recommended.threads") and present, its
 * value's text is copied into buf (else buf is ""). */
static int json_object(const char *s, const char *key, char *buf, size_t cap)
{
    jp j = {s, key, NULL, 0};
    if (buf) buf[0] = 0;
    j_ws(&j);
    if (*j.p != '{' || !j_value(&j, 0, key)) return 0;
    j_ws(&j);
    if (*j.p) return 0;
    if (buf && j.hit && j.hit_len < cap) {
        memcpy(buf, j.hit, j.hit_len);
        buf[j.hit_len] = 0;
    }
    return 1;
}

/* The number at `key` of JSON object s, or NAN when absent or not a number. */
static double json_num(const char *s, const char *key)
{
    char v[64];
    if (!json_object(s, key, v, sizeof v) || !v[0] || !(v[0] == '-' || (v[0] >= '0' && v[0] <= '9')))
        return NAN;
    return strtod(v, NULL);
}

/* 1 when `key` of JSON object s is the literal text `want` (strings with
 * their quotes). */
static int json_is(const char *s, const char *key, const char *want)
{
    char v[1024];
    return json_object(s, key, v, sizeof v) && !strcmp(v, want);
}

/* The validator itself must be able to say no. */
TEST(cli_bench_json_validator_refuses_bad_json)
{
    static const char *good[] = {"{}", " {\"a\": [1, -2.5e+3, true, null, \"x\\u00e9\\n\"]} ",
                                 "{\"a\": {\"b\": 0.25}}", "{\"\\u00e9\": \"\xc3\xa9\"}"};
    static const char *bad[] = {"", "[]", "{", "{\"a\": 1,}", "{\"a\" 1}", "{\"a\": 01}",
                                "{\"a\": 1.}", "{\"a\": .5}", "{\"a\": nan}", "{\"a\": inf}",
                                "{\"a\": \"tab\there\"}", "{\"a\": \"\\x\"}", "{\"a\": 1} {}",
                                "{a: 1}", "{\"a\": \"\xff\"}", "{\"a\": [1 2]}", "{\"a\": +1}",
                                "{\"a\": 'x'}", "{\"a\": True}",
                                "{\"a\": 1, \"a\": 2}"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        CHECKF(json_object(good[i], NULL, NULL, 0), "refused %s", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        CHECKF(!json_object(bad[i], NULL, NULL, 0), "accepted %s", bad[i]);
    CHECK(json_num("{\"a\": {\"b\": 0.25}}", "a.b") == 0.25);
    CHECK(isnan(json_num("{\"a\": {\"b\": 0.25}}", "b")));
    CHECK(json_is("{\"a\": [1], \"b\": null}", "b", "null"));
}

/* ---- running the tool ------------------------------------------------------------ */

/* Makes the test hermetic: the program path made absolute, the working folder
 * the test's temporary folder, XDG_DATA_HOME an empty folder and
 * UPRES_MODEL_PATH empty. Returns 0 on failure. */
static int bh_setup(void)
{
    if (!realpath(test_upres_bin(), bh_bin)) return 0;
    char xdg[PATH_MAX];
    snprintf(xdg, sizeof xdg, "%s/xdg", test_tmpdir());
    if (setenv("XDG_DATA_HOME", xdg, 1) != 0 || setenv("UPRES_MODEL_PATH", "", 1) != 0) return 0;
    return chdir(test_tmpdir()) == 0;
}

/* Runs `upres ARGS...` (NULL-terminated) into bh_out / bh_err. */
static int bh(const char *first, ...)
{
    va_list ap;
    va_start(ap, first);
    int r = tu_upres_va(bh_bin, NULL, BH_TIMEOUT_S, bh_out, sizeof bh_out, bh_err, sizeof bh_err, first, ap);
    va_end(ap);
    return r;
}

/* Absolute path of the shared x4 model, or NULL when absent. Call before
 * bh_setup() (which changes the working folder). */
static const char *shared_model(void)
{
    static char buf[PATH_MAX];
    const char *p = test_shared("models/pytorch/realesr-animevideov3.pth");
    return p && realpath(p, buf) ? buf : NULL;
}

/* Checks the fields every `bench --json` run has, for a 32x32 input, one
 * run, at x4. Returns NULL when they hold, else a message (static). */
static const char *bench_fields_ok(const char *js)
{
    static char msg[256];
    if (!json_object(js, NULL, NULL, 0)) return "not one valid JSON object";
    static const char *keys[] = {"model", "method", "arch", "scale", "width", "height",
                                 "out_width", "out_height", "runs", "seconds_median",
                                 "seconds_min", "seconds_max", "input_mp_per_s",
                                 "output_mp_per_s", "peak_rss_bytes", "threads", "tile", "tiles",
                                 "tile_bytes", "load_seconds"};
    char v[512];
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        if (!json_object(js, keys[i], v, sizeof v) || !v[0]) {
            snprintf(msg, sizeof msg, "missing \"%s\"", keys[i]);
            return msg;
        }
    if (json_num(js, "width") != 32 || json_num(js, "height") != 32) return "input size";
    if (json_num(js, "out_width") != 128 || json_num(js, "out_height") != 128) return "output size";
    if (json_num(js, "scale") != 4 || json_num(js, "runs") != 1) return "scale or runs";
    double med = json_num(js, "seconds_median"), lo = json_num(js, "seconds_min"),
           hi = json_num(js, "seconds_max");
    if (!(lo > 0 && lo <= med && med <= hi && hi < BH_TIMEOUT_S)) return "seconds";
    /* One run: all three are that run. */
    if (lo != hi) return "one run but min != max";
    /* Rates are pixels over the median time, output = 16 x input at x4. */
    double in = json_num(js, "input_mp_per_s"), out = json_num(js, "output_mp_per_s");
    if (!(in > 0) || fabs(in - 32 * 32 / 1e6 / med) > 0.02 * in) return "input_mp_per_s";
    if (fabs(out - 16 * in) > 0.02 * out) return "output_mp_per_s";
    /* A running process with the library mapped uses well over 1 MB and
     * (for 32x32 inputs) far less than 2 GB. */
    double rss = json_num(js, "peak_rss_bytes");
    if (!(rss > 1e6 && rss < 2e9)) return "peak_rss_bytes";
    if (json_num(js, "threads") != 2) return "threads (-j 2 given)";
    if (!(json_num(js, "load_seconds") >= 0)) return "load_seconds";
    return NULL;
}

TEST(cli_bench_json_without_model_times_lanczos)
{
    CHECK(bh_setup());
    int rc = bh("bench", "--json", "--size", "32x32", "--runs", "1", "-j", "2", NULL);
    CHECKF(rc == 0, "rc %d: %s", rc, bh_err);
    const char *why = bench_fields_ok(bh_out);
    CHECKF(!why, "%s: %s", why, bh_out);
    CHECK(json_is(bh_out, "model", "null"));
    CHECK(json_is(bh_out, "arch", "null"));
    CHECK(json_is(bh_out, "method", "\"lanczos3\""));
    CHECK(json_is(bh_out, "tile", "null"));
    CHECK_EQ(json_num(bh_out, "tiles"), 1);
    CHECK_EQ(json_num(bh_out, "tile_bytes"), 0);
    /* Exactly one line on stdout; the missing model is one warning line. */
    CHECK(tu_one_line(bh_out));
    CHECKF(tu_one_line(bh_err) && strstr(bh_err, "no model found"), "%s", bh_err);
}

TEST(cli_bench_json_with_model)
{
    const char *model = shared_model();
    if (!model) SKIP("shared model realesr-animevideov3.pth not found");
    CHECK(bh_setup());
    int rc = bh("bench", "-m", model, "--json", "--size", "32x32", "--runs", "1", "-j", "2", NULL);
    CHECKF(rc == 0, "rc %d: %s", rc, bh_err);
    const char *why = bench_fields_ok(bh_out);
    CHECKF(!why, "%s: %s", why, bh_out);
    char want[PATH_MAX + 4];
    snprintf(want, sizeof want, "\"%s\"", model);
    CHECKF(json_is(bh_out, "model", want), "%s", bh_out);
    CHECK(json_is(bh_out, "method", "\"realesr-animevideov3\""));
    CHECK(json_is(bh_out, "arch", "\"SRVGGNetCompact\""));
    /* The default budget (a quarter of RAM, at most 512 MiB) fits a 32x32 tile at once. */
    CHECK_EQ(json_num(bh_out, "tile"), 32);
    CHECK_EQ(json_num(bh_out, "tiles"), 1);
    /* 16 convolutions of 64 channels over a 32x32 window: megabytes. */
    double tb = json_num(bh_out, "tile_bytes");
    CHECKF(tb > 1e6 && tb < 1e9, "tile_bytes %g", tb);
    CHECKF(!bh_err[0], "stderr: %s", bh_err);
    /* --tile-pad 0: the network sees the bare 32x32 image, without the
     * model's context mirrored in at the borders, so a tile needs less. */
    rc = bh("bench", "-m", model, "--json", "--size", "32x32", "--runs", "1", "--tile-pad", "0",
            NULL);
    CHECKF(rc == 0, "rc %d: %s", rc, bh_err);
    CHECK_EQ(json_num(bh_out, "tiles"), 1);
    double tb0 = json_num(bh_out, "tile_bytes");
    CHECKF(tb0 > 1e5 && tb0 < tb, "tile_bytes %g with --tile-pad 0, %g without", tb0, tb);
}

TEST(cli_bench_human_output_names_units)
{
    CHECK(bh_setup());
    int rc = bh("bench", "--size", "24x16", "--runs", "2", NULL);
    CHECKF(rc == 0, "rc %d: %s", rc, bh_err);
    CHECKF(strstr(bh_out, "lanczos3") && strstr(bh_out, "24x16") && strstr(bh_out, "96x64") &&
               strstr(bh_out, "MP/s of input") && strstr(bh_out, "MP/s of output") &&
               strstr(bh_out, "median of 2") && strstr(bh_out, "peak resident"),
           "%s", bh_out);
}

TEST(cli_bench_bad_arguments_are_usage_errors)
{
    CHECK(bh_setup());
    static const char *const cases[][3] = {
        {"--runs", "0", NULL}, {"--runs", "1001", NULL}, {"--runs", "x", NULL},
        {"--size", "0x5", NULL}, {"--size", "12", NULL}, {"--size", "70000x2", NULL},
        {"stray", NULL, NULL}, {"--bogus", NULL, NULL}, {"--json=1", NULL, NULL},
        {"-m", "", NULL}, {"--tile-pad", "-1"}, {"--tile", "5"}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int rc = bh("bench", cases[i][0], cases[i][1], NULL);
        CHECKF(rc == 2, "bench %s %s: rc %d", cases[i][0], cases[i][1] ? cases[i][1] : "", rc);
        CHECKF(!bh_out[0] && tu_one_line(bh_err), "bench %s: out '%s' err '%s'", cases[i][0],
               bh_out, bh_err);
    }
    /* A model that does not exist is a failure, not a silent fallback. */
    int rc = bh("bench", "-m", "no-such-model", "--size", "8x8", NULL);
    CHECKF(rc == 1 && !bh_out[0] && tu_one_line(bh_err), "rc %d: %s", rc, bh_err);
    /* Larger than the pixel limit: refused before any work. */
    rc = bh("bench", "--size", "20x20", "--max-pixels", "100", NULL);
    CHECKF(rc == 1 && strstr(bh_err, "20x20"), "rc %d: %s", rc, bh_err);
}

/* ---- hw ---------------------------------------------------------------------------- */

/* Checks the fields of `hw --json` (width x height asked, `threads` from -j,
 * 0 = one per core). Returns NULL when they hold, else a message (static). */
static const char *hw_fields_ok(const char *js, double w, double h, double threads)
{
    if (!json_object(js, NULL, NULL, 0)) return "not one valid JSON object";
    char v[512];
    if (!json_object(js, "cpu", v, sizeof v) || !(v[0] == '"' || !strcmp(v, "null"))) return "cpu";
    double cores = json_num(js, "logical_cores");
    if (cores != (double)sysconf(_SC_NPROCESSORS_ONLN)) return "logical_cores";
    if (!json_object(js, "simd", v, sizeof v) || v[0] != '[') return "simd";
#if defined(__x86_64__)
    /* Every x86-64 CPU has SSE2. */
    if (!strstr(v, "\"sse2\"")) return "simd lacks sse2 on x86-64";
#endif
    double total = json_num(js, "ram_total_bytes"), avail = json_num(js, "ram_available_bytes");
    if (!(total > 64e6 && avail > 0 && avail <= total)) return "ram";
    if (!json_is(js, "gpu", "null")) return "gpu";
    if (json_num(js, "width") != w || json_num(js, "height") != h) return "size";
    if (json_num(js, "recommended.batch_size") != 1) return "batch_size";
    if (!json_is(js, "recommended.fp16", "false")) return "fp16";
    if (json_num(js, "recommended.threads") != (threads ? threads : cores)) return "threads";
    if (!json_object(js, "recommended.tile_size", v, sizeof v) || !v[0]) return "tile_size";
    if (!(json_num(js, "tiles") >= 1) || !(json_num(js, "tile_bytes") >= 0)) return "tiles";
    return NULL;
}

TEST(cli_hw_json_without_model)
{
    CHECK(bh_setup());
    int rc = bh("hw", "--json", NULL);
    CHECKF(rc == 0, "rc %d: %s", rc, bh_err);
    const char *why = hw_fields_ok(bh_out, 1920, 1080, 0);
    CHECKF(!why, "%s: %s", why, bh_out);
    CHECK(tu_one_line(bh_out));
    CHECK(json_is(bh_out, "model", "null"));
    CHECK(json_is(bh_out, "recommended.tile_size", "null"));
    /* Human form: the same facts in words. */
    rc = bh("hw", NULL);
    CHECKF(rc == 0 && strstr(bh_out, "logical core") && strstr(bh_out, "GB total") &&
               strstr(bh_out, "GPU:"),
           "rc %d: %s", rc, bh_out);
}

TEST(cli_hw_json_with_model_matches_plan)
{
    const char *model = shared_model();
    if (!model) SKIP("shared model realesr-animevideov3.pth not found");
    CHECK(bh_setup());
    int rc = bh("hw", "-m", model, "--size", "640x480", "--json", NULL);
    CHECKF(rc == 0, "rc %d: %s", rc, bh_err);
    const char *why = hw_fields_ok(bh_out, 640, 480, 0);
    CHECKF(!why, "%s: %s", why, bh_out);
    CHECK(json_is(bh_out, "arch", "\"SRVGGNetCompact\""));
    /* The recommendation is the library's own plan with default settings. */
    /* Default threads like the tool's: per-thread scratch counts in the cost. */
    upres_ctx *ctx = NULL;
    upres_model *m = NULL;
    CHECK_OK(upres_ctx_new(NULL, &ctx));
    CHECK_OK(upres_model_load(ctx, model, &m));
    uint32_t tile = 0, tiles = 0;
    uint64_t bytes = 0;
    CHECK_OK(upres_upscale_plan(ctx, m, 640, 480, NULL, &tile, &tiles, &bytes));
    upres_model_free(m);
    upres_ctx_free(ctx);
    CHECKF(json_num(bh_out, "recommended.tile_size") == tile, "plan %u: %s", tile, bh_out);
    CHECK_EQ(json_num(bh_out, "tiles"), tiles);
    CHECK_EQ(json_num(bh_out, "tile_bytes"), bytes);
    CHECK(tile >= 32 && tile <= 640);
}

TEST(cli_hw_bad_arguments_are_usage_errors)
{
    CHECK(bh_setup());
    static const char *const cases[][3] = {{"--size", "1920", NULL}, {"--size", "0x0", NULL},
                                           {"extra", NULL, NULL},    {"--runs", "1", NULL},
                                           {"-m", "", NULL}, {"--tile-pad", "-1"}, {"--tile", "5"}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int rc = bh("hw", cases[i][0], cases[i][1], NULL);
        CHECKF(rc == 2 && !bh_out[0] && tu_one_line(bh_err), "hw %s: rc %d, err '%s'",
               cases[i][0], rc, bh_err);
    }
}

/* ---- upres_upscale_plan --------------------------------------------------------------- */

/* Largest progress total reported for "upscale". */
static int plan_progress(void *user, const char *what, uint64_t done, uint64_t total)
{
    (void)done;
    if (what && !strcmp(what, "upscale")) *(uint64_t *)user = total;
    return 0;
}

/* A w x h image of `ch` u8 channels with some structure. */
static upres_image *plan_image(uint32_t w, uint32_t h, uint32_t ch)
{
    upres_image *img = tu_random_image(w, h, ch, UPRES_U8, w * 131 + h);
    return img;
}

/* Upscales a w x h image of `ch` channels with m and desc d; *total gets the
 * progress total. Returns the status. */
static int plan_run(upres_model *m, uint32_t w, uint32_t h, uint32_t ch,
                    const upres_upscale_desc *d, uint64_t *total)
{
    upres_ctx_desc cd = upres_ctx_desc_defaults();
    cd.threads = 1;
    cd.progress = plan_progress;
    cd.progress_user = total;
    upres_ctx *ctx = NULL;
    int st = upres_ctx_new(&cd, &ctx);
    if (st) return st;
    upres_image *in = plan_image(w, h, ch), *out = NULL;
    *total = 0;
    st = in ? upres_upscale(ctx, m, in, d, &out) : UPRES_ERR_NOMEM;
    upres_image_free(in);
    upres_image_free(out);
    upres_ctx_free(ctx);
    return st;
}

TEST(upscale_plan_tile_count_matches_upscale)
{
    static const char *models[] = {"arch/srvgg_relu_x2.pth", "arch/rrdb_new_x1.pth",
                                   "arch/srvgg_prelu_x4.pth"};
    static const uint32_t sizes[][2] = {{37, 23}, {64, 64}, {90, 41}};
    upres_ctx *ctx = tu_ctx_1thread();
    CHECK(ctx);
    int checked = 0, split = 0, budgeted = 0;
    for (size_t mi = 0; mi < sizeof models / sizeof *models; mi++) {
        upres_model *m = NULL;
        CHECK_OK(upres_model_load(ctx, test_fixture(models[mi]), &m));
        for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
            const uint32_t w = sizes[si][0], h = sizes[si][1];
            /* The default budget (the whole image fits), an explicit tile,
             * and a budget of 2/3 of the whole image's cost. */
            uint64_t whole = 0;
            for (int mode = 2; mode >= 0; mode--) {
                upres_upscale_desc d = upres_upscale_desc_defaults();
                if (mode == 0) d.tile = 20;
                if (mode == 1) d.memory_bytes = whole / 3 * 2;
                uint32_t tile = 0, tiles = 0;
                uint64_t bytes = 0, total = 0;
                CHECK_OK(upres_upscale_plan(ctx, m, w, h, &d, &tile, &tiles, &bytes));
                CHECK_OK(plan_run(m, w, h, 3, &d, &total));
                CHECKF(total == tiles, "%s %ux%u mode %d: plan %u tiles (side %u), upscale %llu",
                       models[mi], w, h, mode, tiles, tile, (unsigned long long)total);
                CHECK(bytes > 0 && tile >= 1 && tile <= (w > h ? w : h));
                if (mode == 0) CHECK_EQ(tile, 20);
                if (mode == 2) CHECK_EQ(tile, w > h ? w : h);
                if (mode == 2) whole = bytes;
                if (mode == 1 && tile > 32) {
                    /* The budget picks the largest tile that fits: it fits,
                     * one pixel more does not. */
                    CHECKF(bytes <= d.memory_bytes, "%llu > budget", (unsigned long long)bytes);
                    if (tile < (w > h ? w : h)) {
                        upres_upscale_desc d2 = d;
                        uint64_t b2 = 0;
                        d2.tile = tile + 1;
                        CHECK_OK(upres_upscale_plan(ctx, m, w, h, &d2, NULL, NULL, &b2));
                        CHECKF(b2 > d.memory_bytes, "tile %u fits too", tile + 1);
                        budgeted++;
                    }
                }
                split += tiles > 1;
                checked++;
            }
        }
        /* With the network also run on alpha, upscale does every tile twice. */
        upres_upscale_desc d = upres_upscale_desc_defaults();
        d.tile = 16;
        d.alpha = UPRES_ALPHA_MODEL;
        uint32_t tiles = 0;
        uint64_t total = 0;
        CHECK_OK(upres_upscale_plan(ctx, m, 40, 30, &d, NULL, &tiles, NULL));
        CHECK_OK(plan_run(m, 40, 30, 4, &d, &total));
        CHECK_EQ(total, 2 * (uint64_t)tiles);
        upres_model_free(m);
    }
    upres_ctx_free(ctx);
    CHECK_EQ(checked, 27);
    /* The cases must exercise real splitting, not only single tiles. */
    CHECKF(split >= 9, "only %d split cases", split);
    CHECKF(budgeted >= 3, "only %d cases where the budget chose the tile", budgeted);
}

TEST(upscale_plan_without_model_is_one_step)
{
    upres_ctx *ctx = tu_ctx_1thread();
    CHECK(ctx);
    uint32_t tile = 99, tiles = 0;
    uint64_t bytes = 99, total = 0;
    CHECK_OK(upres_upscale_plan(ctx, NULL, 50, 40, NULL, &tile, &tiles, &bytes));
    CHECK_EQ(tile, 0);
    CHECK_EQ(tiles, 1);
    CHECK_EQ(bytes, 0);
    CHECK_OK(plan_run(NULL, 50, 40, 3, NULL, &total));
    CHECK_EQ(total, tiles);
    upres_ctx_free(ctx);
}

TEST(upscale_plan_refuses_bad_arguments)
{
    upres_ctx_desc cd = upres_ctx_desc_defaults();
    cd.threads = 1;
    cd.limits.max_pixels = 10000;
    upres_ctx *ctx = NULL;
    CHECK_OK(upres_ctx_new(&cd, &ctx));
    upres_model *m = NULL;
    CHECK_OK(upres_model_load(ctx, test_fixture("arch/srvgg_relu_x2.pth"), &m));
    /* All outputs optional. */
    CHECK_OK(upres_upscale_plan(ctx, m, 30, 20, NULL, NULL, NULL, NULL));
    upres_upscale_desc d = upres_upscale_desc_defaults();
    uint32_t tile = 7, tiles = 7;
    uint64_t bytes = 7;
    int st = upres_upscale_plan(ctx, m, 0, 20, &d, &tile, &tiles, &bytes);
    CHECK_EQ(st, UPRES_ERR_INVALID_ARG);
    CHECK(tile == 0 && tiles == 0 && bytes == 0);
    CHECK(upres_ctx_error(ctx)[0]);
    CHECK_EQ(upres_upscale_plan(ctx, NULL, 20, 0, &d, NULL, NULL, NULL), UPRES_ERR_INVALID_ARG);
    /* Over the ctx's pixel limit: no input of that size could exist. */
    CHECK_EQ(upres_upscale_plan(ctx, m, 200, 200, &d, &tile, NULL, NULL), UPRES_ERR_LIMIT);
    d.tile_pad = -2;
    CHECK_EQ(upres_upscale_plan(ctx, m, 30, 20, &d, NULL, NULL, NULL), UPRES_ERR_INVALID_ARG);
    d = upres_upscale_desc_defaults();
    d.color = (upres_color_mode)7;
    CHECK_EQ(upres_upscale_plan(ctx, m, 30, 20, &d, NULL, NULL, NULL), UPRES_ERR_INVALID_ARG);
    d = upres_upscale_desc_defaults();
    d.alpha = (upres_alpha_mode)9;
    CHECK_EQ(upres_upscale_plan(ctx, m, 30, 20, &d, NULL, NULL, NULL), UPRES_ERR_INVALID_ARG);
    /* A valid call after a failure leaves no stale detail. */
    CHECK_OK(upres_upscale_plan(ctx, m, 30, 20, NULL, &tile, &tiles, &bytes));
    CHECK(!upres_ctx_error(ctx)[0]);
    CHECK(tile == 30 && tiles == 1 && bytes > 0);
    /* A NULL ctx uses the default limits. */
    CHECK_OK(upres_upscale_plan(NULL, m, 300, 200, NULL, &tile, &tiles, NULL));
    upres_model_free(m);
    upres_ctx_free(ctx);
}

TEST(upscale_plan_checks_the_desc_size_like_upscale)
{
    upres_ctx_desc cd = upres_ctx_desc_defaults();
    cd.threads = 1;
    cd.limits.max_side = 100;
    upres_ctx *ctx = NULL;
    CHECK_OK(upres_ctx_new(&cd, &ctx));
    upres_model *m = NULL;
    CHECK_OK(upres_model_load(ctx, test_fixture("arch/srvgg_relu_x2.pth"), &m));
    upres_image *in = plan_image(30, 20, 3), *out = NULL;
    CHECK(in);
    /* A bad scale, and an output over the limits (60 wide at x2 fits, 120
     * at x4 does not): refused by the plan exactly when upscale refuses. */
    static const double scales[] = {-1, NAN, INFINITY, 4, 0, 3};
    for (size_t i = 0; i < sizeof scales / sizeof *scales; i++) {
        upres_upscale_desc d = upres_upscale_desc_defaults();
        d.scale = scales[i];
        int sp = upres_upscale_plan(ctx, m, 30, 20, &d, NULL, NULL, NULL);
        int su = upres_upscale(ctx, m, in, &d, &out);
        upres_image_free(out);
        out = NULL;
        CHECKF(sp == su, "scale %g: plan %d, upscale %d", scales[i], sp, su);
        CHECK(i >= 4 ? sp == UPRES_OK : sp == (i < 3 ? UPRES_ERR_INVALID_ARG : UPRES_ERR_LIMIT));
    }
    upres_upscale_desc d = upres_upscale_desc_defaults();
    d.width = 101;
    CHECK_EQ(upres_upscale_plan(ctx, m, 30, 20, &d, NULL, NULL, NULL), UPRES_ERR_LIMIT);
    CHECK(strstr(upres_ctx_error(ctx), "101"));
    upres_image_free(in);
    upres_model_free(m);
    upres_ctx_free(ctx);
}

TEST(cli_hw_threads_follow_j)
{
    /* The fixture path is relative to the starting folder. */
    char model[PATH_MAX];
    CHECK(realpath(test_fixture("arch/srvgg_relu_x2.pth"), model) != NULL);
    CHECK(bh_setup());
    int rc = bh("hw", "-j", "1", "-m", model, "--size", "300x200", "--json", NULL);
    CHECKF(rc == 0, "rc %d: %s", rc, bh_err);
    /* The threads recommended are the ones the tile cost was planned for. */
    const char *why = hw_fields_ok(bh_out, 300, 200, 1);
    CHECKF(!why, "%s: %s", why, bh_out);
    upres_ctx *ctx = tu_ctx_1thread();
    upres_model *m = NULL;
    CHECK(ctx);
    CHECK_OK(upres_model_load(ctx, model, &m));
    uint64_t bytes = 0;
    CHECK_OK(upres_upscale_plan(ctx, m, 300, 200, NULL, NULL, NULL, &bytes));
    upres_model_free(m);
    upres_ctx_free(ctx);
    CHECK_EQ(json_num(bh_out, "tile_bytes"), bytes);
    rc = bh("hw", "-j", "1", "-m", model, NULL);
    CHECKF(rc == 0 && strstr(bh_out, ", 1 thread, fp32"), "rc %d: %s", rc, bh_out);
}
