/* State-dict loaders: PyTorch .pth (zip + restricted pickle, legacy) and
 * .safetensors. Fixtures come from tests/gen_pth_fixtures.py; each valid one
 * has a NAME.expect sidecar with the exact float32 bits the loader must give. */
#include "test.h"

#include "core/core_internal.h"
#include "models/models_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef int (*sd_loader)(upres_ctx *, const uint8_t *, size_t, upres_statedict *);

/* Loads fixture `name` from tests/fixtures/pth with `fn` and compares every
 * tensor (order, name, shape, float bits) with NAME.expect. Returns NULL when
 * all match, else a message (static storage). */
static const char *check_expect(sd_loader fn, const char *name)
{
    static char msg[512];
    char path[256];
    size_t n, en;
    snprintf(path, sizeof path, "pth/%s", name);
    unsigned char *buf = test_read_file(test_fixture(path), &n);
    snprintf(path, sizeof path, "pth/%s.expect", name);
    unsigned char *exp = test_read_file(test_fixture(path), &en);
    if (!buf || !exp) {
        free(buf);
        free(exp);
        snprintf(msg, sizeof msg, "%s: fixture missing", name);
        return msg;
    }
    upres_ctx *ctx = tu_ctx_1thread();
    upres_statedict sd = {0};
    int st = fn(ctx, buf, n, &sd);
    const char *res = NULL;
    if (st) {
        snprintf(msg, sizeof msg, "%s: load -> %d (%s)", name, st, upres_ctx_error(ctx));
        res = msg;
    }
    /* Walk the expect text line by line: name \t shape \t hex bits. */
    char *text = realloc(exp, en + 1);
    if (text) exp = (unsigned char *)text;
    exp[en] = 0;
    char *line = (char *)exp;
    size_t idx = 0;
    while (!res && *line) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        char *tab1 = strchr(line, '\t'), *tab2 = tab1 ? strchr(tab1 + 1, '\t') : NULL;
        if (!tab2) {
            snprintf(msg, sizeof msg, "%s: bad expect line", name);
            res = msg;
            break;
        }
        *tab1 = *tab2 = 0;
        if (idx >= sd.n) {
            snprintf(msg, sizeof msg, "%s: only %zu tensors, expected %s", name, sd.n, line);
            res = msg;
            break;
        }
        const upres_sd_tensor *t = &sd.t[idx];
        if (strcmp(t->name, line) != 0) {
            snprintf(msg, sizeof msg, "%s: tensor %zu is %s, expected %s", name, idx, t->name,
                     line);
            res = msg;
            break;
        }
        if (upres__sd_find(&sd, line) != t) {
            snprintf(msg, sizeof msg, "%s: sd_find(%s) is wrong", name, line);
            res = msg;
            break;
        }
        int nd = 0;
        char *s = tab1 + 1;
        while (*s) {
            long long d = strtoll(s, &s, 10);
            if (nd >= t->ndim || t->shape[nd] != d) {
                snprintf(msg, sizeof msg, "%s: %s dim %d differs", name, line, nd);
                res = msg;
                break;
            }
            nd++;
            if (*s == ',') s++;
        }
        if (res) break;
        if (nd != t->ndim) {
            snprintf(msg, sizeof msg, "%s: %s has %d dims, expected %d", name, line, t->ndim, nd);
            res = msg;
            break;
        }
        uint64_t numel = upres__sd_numel(t), k = 0;
        s = tab2 + 1;
        while (*s) {
            uint32_t want = (uint32_t)strtoul(s, &s, 16), got;
            if (k >= numel) {
                snprintf(msg, sizeof msg, "%s: %s has %llu elements, expected more", name, line,
                         (unsigned long long)numel);
                res = msg;
                break;
            }
            memcpy(&got, &t->data[k], 4);
            if (got != want) {
                snprintf(msg, sizeof msg, "%s: %s[%llu] = %08x, expected %08x", name, line,
                         (unsigned long long)k, got, want);
                res = msg;
                break;
            }
            k++;
            while (*s == ' ') s++;
        }
        if (!res && k != numel) {
            snprintf(msg, sizeof msg, "%s: %s has %llu elements, expected %llu", name, line,
                     (unsigned long long)numel, (unsigned long long)k);
            res = msg;
        }
        idx++;
        if (!nl) break;
        line = nl + 1;
    }
    if (!res && idx != sd.n) {
        snprintf(msg, sizeof msg, "%s: %zu tensors, expected %zu", name, sd.n, idx);
        res = msg;
    }
    upres__sd_free(&sd);
    upres_ctx_free(ctx);
    free(buf);
    free(exp);
    return res;
}

/* Loading fixture `name` with `fn` must fail with `status`, leave the state
 * dict empty and give a detail containing `detail`. NULL when it does. */
static const char *check_refused(sd_loader fn, const char *name, int status, const char *detail)
{
    static char msg[512];
    char path[256];
    size_t n;
    snprintf(path, sizeof path, "pth/%s", name);
    unsigned char *buf = test_read_file(test_fixture(path), &n);
    if (!buf) {
        snprintf(msg, sizeof msg, "%s: fixture missing", name);
        return msg;
    }
    upres_ctx *ctx = tu_ctx_1thread();
    upres_statedict sd = {(upres_sd_tensor *)1, 7};
    int st = fn(ctx, buf, n, &sd);
    const char *res = NULL;
    if (st != status || sd.n != 0 || sd.t != NULL || !strstr(upres_ctx_error(ctx), detail)) {
        snprintf(msg, sizeof msg, "%s: got %d (%s), n=%zu; expected %d with \"%s\"", name, st,
                 upres_ctx_error(ctx), sd.n, status, detail);
        res = msg;
    }
    if (st == 0) upres__sd_free(&sd);
    upres_ctx_free(ctx);
    free(buf);
    return res;
}

/* ---- safetensors ---------------------------------------------------------- */

TEST(safetensors_valid_f32_f16_bf16)
{
    const char *e = check_expect(upres__safetensors_load, "valid.safetensors");
    CHECKF(e == NULL, "%s", e);
}

TEST(safetensors_malformed_refused)
{
    static const struct {
        const char *file;
        int status;
        const char *detail;
    } cases[] = {
        {"st_offsets.safetensors", UPRES_ERR_CORRUPT, "tensor w has data_offsets [0, 16] outside"},
        {"st_overlap.safetensors", UPRES_ERR_CORRUPT, "tensors a and b overlap"},
        {"st_size.safetensors", UPRES_ERR_CORRUPT, "tensor a has 12 bytes, its shape needs 16"},
        {"st_dtype.safetensors", UPRES_ERR_UNSUPPORTED, "tensor n has dtype I64"},
        {"st_dup.safetensors", UPRES_ERR_CORRUPT, "duplicate tensor a"},
        {"st_json.safetensors", UPRES_ERR_CORRUPT, "safetensors: bad header JSON"},
        {"st_hlen.safetensors", UPRES_ERR_CORRUPT, "header length 1099511627776 exceeds"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *e =
            check_refused(upres__safetensors_load, cases[i].file, cases[i].status, cases[i].detail);
        CHECKF(e == NULL, "%s", e);
    }
}

/* A .safetensors image in memory: header text + data. */
static uint8_t *make_st(const char *json, const void *data, size_t dn, size_t *n)
{
    size_t hl = strlen(json);
    uint8_t *b = malloc(8 + hl + dn + 1);
    if (!b) return NULL;
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(b + 8, json, hl);
    if (dn) memcpy(b + 8 + hl, data, dn);
    *n = 8 + hl + dn;
    return b;
}

/* Every one of the 65536 halves converts exactly (subnormals, inf, NaN). */
TEST(safetensors_every_half_exact)
{
    uint16_t *h = malloc(65536 * 2);
    CHECK(h != NULL);
    for (uint32_t i = 0; i < 65536; i++) h[i] = (uint16_t)i; /* host order = LE on test hosts */
    size_t n;
    uint8_t *b = make_st("{\"h\":{\"dtype\":\"F16\",\"shape\":[256,256],"
                         "\"data_offsets\":[0,131072]}}",
                         h, 131072, &n);
    free(h);
    CHECK(b != NULL);
    upres_statedict sd = {0};
    CHECK_OK(upres__safetensors_load(NULL, b, n, &sd));
    free(b);
    CHECK_EQ(sd.n, 1);
    for (uint32_t i = 0; i < 65536; i++) {
        int e = (int)((i >> 10) & 31), m = (int)(i & 1023);
        float want = e == 0    ? ldexpf((float)m, -24)
                     : e == 31 ? (m ? NAN : INFINITY)
                               : ldexpf((float)(1024 + m), e - 25);
        if (i & 0x8000) want = -want;
        float got = sd.t[0].data[i];
        if (isnan(want)) {
            uint32_t gb;
            memcpy(&gb, &got, 4);
            CHECKF(isnan(got) && (gb & 0x7fffffu) == (uint32_t)m << 13 &&
                       (gb >> 31) == (i >> 15),
                   "half %04x -> %08x", i, gb);
        } else {
            CHECKF(got == want && signbit(got) == signbit(want), "half %04x -> %a, want %a", i,
                   (double)got, (double)want);
        }
    }
    upres__sd_free(&sd);
}

TEST(safetensors_json_strictness)
{
    static const struct {
        const char *json;
        int ok;
    } cases[] = {
        {"{}", 1},
        {"  {\"__metadata__\":{\"a\":\"b\"}}   ", 1},
        {"{\"x\\u00e9\\ud83d\\ude00\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4],"
         "\"extra\":[1,{\"k\":[true,null,-1.5e3]}]}}",
         1},
        {"{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}", 0}, /* unclosed */
        {"{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},}", 0}, /* trailing , */
        {"{\"x\":{\"dtype\":\"F32\",\"shape\":[01],\"data_offsets\":[0,4]}}", 0}, /* leading 0 */
        {"{\"x\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 0},
        {"{\"x\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}", 0},
        {"{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 0},
        {"{\"x\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 0},
        {"{\"x\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 0}, /* no dtype */
        {"{\"x\\ud800\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 0},
        {"{\"x\\u0000\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 0},
        {"{\"x\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 0},
        {"{\"x\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,4]}}",
         0},
        {"{\"__metadata__\":{\"a\":1}}", 0},
        {"{\"__metadata__\":{},\"__metadata__\":{}}", 0},
        {"[]", 0},
        {"{} x", 0},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}\x01", 0},
    };
    const float four = 1.0f;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n;
        uint8_t *b = make_st(cases[i].json, &four, 4, &n);
        CHECK(b != NULL);
        upres_ctx *ctx = tu_ctx_1thread();
        upres_statedict sd = {0};
        int st = upres__safetensors_load(ctx, b, n, &sd);
        free(b);
        CHECKF((st == 0) == cases[i].ok, "case %zu (%s) -> %d %s", i, cases[i].json, st,
               upres_ctx_error(ctx));
        if (!st && i == 2) {
            CHECK_EQ(sd.n, 1);
            CHECK(strcmp(sd.t[0].name, "x\xc3\xa9\xf0\x9f\x98\x80") == 0);
            CHECK_EQ(sd.t[0].ndim, 0);
            CHECK(sd.t[0].data[0] == 1.0f);
            CHECK_EQ(upres__sd_numel(&sd.t[0]), 1);
        }
        if (st) CHECK(tu_one_line(upres_ctx_error(ctx)) || strchr(upres_ctx_error(ctx), '\n') == NULL);
        upres__sd_free(&sd);
        upres_ctx_free(ctx);
    }
}

TEST(safetensors_every_truncation_fails)
{
    size_t n;
    unsigned char *buf = test_read_file(test_fixture("pth/valid.safetensors"), &n);
    CHECK(buf != NULL);
    for (size_t cut = 0; cut < n; cut++) {
        upres_statedict sd = {0};
        int st = upres__safetensors_load(NULL, buf, cut, &sd);
        CHECKF(st < 0 && sd.n == 0, "cut %zu -> %d", cut, st);
    }
    free(buf);
}

TEST(safetensors_memory_limit)
{
    upres_ctx_desc d = upres_ctx_desc_defaults();
    d.threads = 1;
    d.limits.max_memory_bytes = 20; /* valid.safetensors needs 24 + 48 + 24 + 4 float bytes */
    upres_ctx *ctx = NULL;
    CHECK_OK(upres_ctx_new(&d, &ctx));
    size_t n;
    unsigned char *buf = test_read_file(test_fixture("pth/valid.safetensors"), &n);
    CHECK(buf != NULL);
    upres_statedict sd = {0};
    CHECK_EQ(upres__safetensors_load(ctx, buf, n, &sd), UPRES_ERR_LIMIT);
    upres_ctx_free(ctx);
    free(buf);
}

/* ---- .pth ------------------------------------------------------------------ */

/* Every valid fixture loads with exactly the values torch saved:
 * ema.pth      params_ema chosen over "params" (ema + 100) and non-tensor entries
 * deflate.pth  deflated entries, any archive folder name
 * params.pth   nn.Parameter values
 * plain.pth    top-level dict: f32, half (inf/nan/subnormals), bf16, a
 *              transposed view, a 2-d slice with offset, a strided step, a 0-d
 *              element, an empty tensor; ints, strings and containers skipped
 * legacy.pth   the pre-1.6 format
 * crafted.pth  a hand-written pickle using the control opcodes */
TEST(pth_valid_files_load_exactly)
{
    static const char *const files[] = {"ema.pth",    "deflate.pth", "params.pth",
                                        "plain.pth",  "legacy.pth",  "crafted.pth"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        const char *e = check_expect(upres__pth_load, files[i]);
        CHECKF(e == NULL, "%s: %s", files[i], e);
    }
}

TEST(pth_malformed_refused)
{
    static const struct {
        const char *file;
        int status;
        const char *detail;
    } cases[] = {
        {"truncated.pth", UPRES_ERR_CORRUPT, "zip: truncated"},
        {"os_system.pth", UPRES_ERR_UNSUPPORTED, "pickle: global os.system is not allowed"},
        {"eval.pth", UPRES_ERR_UNSUPPORTED, "pickle: global builtins.eval is not allowed"},
        {"small_storage.pth", UPRES_ERR_CORRUPT,
         "pickle: tensor reaches element 4 of a storage of 4"},
        {"short_data.pth", UPRES_ERR_CORRUPT, "storage data/0 has 12 bytes, its record says 16"},
        {"long.pth", UPRES_ERR_UNSUPPORTED, "storage type torch.LongStorage is not supported"},
        {"notensor.pth", UPRES_ERR_UNSUPPORTED, "pth: no tensors in params"},
        {"zip64.pth", UPRES_ERR_UNSUPPORTED, "zip: ZIP64 archives are not supported"},
        {"valid.safetensors", UPRES_ERR_UNKNOWN_FORMAT, "pth: neither a zip nor"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *e =
            check_refused(upres__pth_load, cases[i].file, cases[i].status, cases[i].detail);
        CHECKF(e == NULL, "%s", e);
    }
    /* The os.system detail is exactly the one line the contract names. */
    size_t n;
    unsigned char *buf = test_read_file(test_fixture("pth/os_system.pth"), &n);
    CHECK(buf != NULL);
    upres_ctx *ctx = tu_ctx_1thread();
    upres_statedict sd = {0};
    CHECK_EQ(upres__pth_load(ctx, buf, n, &sd), UPRES_ERR_UNSUPPORTED);
    CHECK(strcmp(upres_ctx_error(ctx), "pickle: global os.system is not allowed") == 0);
    upres_ctx_free(ctx);
    free(buf);
}

/* A zip holding one stored entry "archive/data.pkl" with the given pickle
 * (CRC computed), written into a new buffer. */
static uint8_t *zip_one(const uint8_t *pkl, size_t pn, size_t *n)
{
    static const char name[] = "archive/data.pkl";
    size_t nl = sizeof name - 1, total = 30 + nl + pn + 46 + nl + 22;
    uint8_t *z = calloc(1, total);
    if (!z) return NULL;
    uint32_t crc = 0xffffffffu;
    for (size_t i = 0; i < pn; i++) {
        crc ^= pkl[i];
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1)));
    }
    crc ^= 0xffffffffu;
#define LE16(p, v) ((p)[0] = (uint8_t)(v), (p)[1] = (uint8_t)((v) >> 8))
#define LE32(p, v) (LE16(p, (v) & 0xffff), LE16((p) + 2, (uint32_t)(v) >> 16))
    uint8_t *l = z;
    LE32(l, 0x04034b50u);
    LE32(l + 14, crc);
    LE32(l + 18, pn);
    LE32(l + 22, pn);
    LE16(l + 26, nl);
    memcpy(l + 30, name, nl);
    memcpy(l + 30 + nl, pkl, pn);
    uint8_t *c = l + 30 + nl + pn;
    LE32(c, 0x02014b50u);
    LE32(c + 16, crc);
    LE32(c + 20, pn);
    LE32(c + 24, pn);
    LE16(c + 28, nl);
    memcpy(c + 46, name, nl);
    uint8_t *e = c + 46 + nl;
    LE32(e, 0x06054b50u);
    LE16(e + 8, 1);
    LE16(e + 10, 1);
    LE32(e + 12, 46 + nl);
    LE32(e + 16, (size_t)(c - z));
#undef LE16
#undef LE32
    *n = total;
    return z;
}

/* Pickles written by hand: what the machine must refuse, and the bounds. */
TEST(pth_pickle_machine_refusals)
{
    static const struct {
        const char *pkl;
        size_t n;
        int status;
        const char *detail;
    } cases[] = {
#define P(s) s, sizeof s - 1
        {P("\x80\x02" "cposix\nsystem\n)R."), UPRES_ERR_UNSUPPORTED, "global posix.system is not allowed"},
        {P("\x80\x02" "c__builtin__\neval\n)R."), UPRES_ERR_UNSUPPORTED, "global __builtin__.eval"},
        {P("\x80\x04\x8c\x02os\x8c\x06system\x93."), UPRES_ERR_UNSUPPORTED, "global os.system"},
        {P("\x80\x02" "ctorch\nload\n."), UPRES_ERR_UNSUPPORTED, "global torch.load is not allowed"},
        {P("\x80\x02}."), UPRES_ERR_UNSUPPORTED, "no tensors in the top-level dict"},
        {P("\x80\x02]."), UPRES_ERR_UNSUPPORTED, "holds a list, not a dict"},
        {P("\x80\x02}}"), UPRES_ERR_CORRUPT, "pickle: truncated"},
        {P("\x80\x02}s."), UPRES_ERR_CORRUPT, "stack underflow"},
        {P("\x80\x02(}t(."), UPRES_ERR_CORRUPT, "STOP with"},
        {P("\x80\x02}h\x05."), UPRES_ERR_CORRUPT, "memo entry 5 is not set"},
        {P("\x80\x02}r\xff\xff\xff\x7f."), UPRES_ERR_LIMIT, "memo index"},
        {P("\x80\x02I01\n."), UPRES_ERR_UNSUPPORTED, "opcode 0x49"},
        {P("\x80\x09}."), UPRES_ERR_UNSUPPORTED, "pickle: protocol 9"},
        {P("\x80\x02" "ccollections\nOrderedDict\nK\x01\x85R."), UPRES_ERR_UNSUPPORTED,
         "unexpected call of collections.OrderedDict"},
        {P("\x80\x02K\x01)R."), UPRES_ERR_UNSUPPORTED, "call of a int"},
        {P("\x80\x02]}b."), UPRES_ERR_UNSUPPORTED, "BUILD on a list"},
        {P("\x80\x02X\x03\x00\x00\x00" "abc\x85Q."), UPRES_ERR_UNSUPPORTED, "not a storage record"},
        {P("\x80\x02(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x00" "0"
           "X\x03\x00\x00\x00" "cpuK\x04tQ."),
         UPRES_ERR_UNSUPPORTED, "holds a storage, not a dict"},
        {P("\x80\x02(X\x07\x00\x00\x00storagectorch\nFloatStorage\nK\x00"
           "X\x03\x00\x00\x00" "cpuK\x04tQ."),
         UPRES_ERR_CORRUPT, "malformed storage record"},
        {P("\x80\x02}X\x01\x00\x00\x00w"
           "ctorch._utils\n_rebuild_tensor_v2\n"
           "((X\x07\x00\x00\x00storagectorch\nHalfStorage\nX\x01\x00\x00\x00" "0"
           "X\x03\x00\x00\x00" "cpuK\x04tQK\x00K\x02K\x02\x86K\x02K\x01\x86\x89NtRs."),
         UPRES_ERR_CORRUPT, "storage data/0 is missing"},
        {P("\x80\x02}X\x01\x00\x00\x00w"
           "ctorch._utils\n_rebuild_tensor_v2\n"
           "((X\x07\x00\x00\x00storagectorch\nHalfStorage\nX\x01\x00\x00\x00" "0"
           "X\x03\x00\x00\x00" "cpuK\x04tQK\x00K\x02K\x02\x86K\x03K\x01\x86\x89NtRs."),
         UPRES_ERR_CORRUPT, "tensor reaches element 4 of a storage of 4"},
        {P("\x80\x02}X\x01\x00\x00\x00w"
           "ctorch._utils\n_rebuild_tensor_v2\n"
           "((X\x07\x00\x00\x00storagectorch\nHalfStorage\nX\x01\x00\x00\x00" "0"
           "X\x03\x00\x00\x00" "cpuK\x04tQK\x00\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x40K\x08\x86"
           "K\x02K\x01\x86\x89NtRs."),
         UPRES_ERR_CORRUPT, "tensor size overflows"},
#undef P
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n;
        uint8_t *z = zip_one((const uint8_t *)cases[i].pkl, cases[i].n, &n);
        CHECK(z != NULL);
        upres_ctx *ctx = tu_ctx_1thread();
        upres_statedict sd = {0};
        int st = upres__pth_load(ctx, z, n, &sd);
        free(z);
        CHECKF(st == cases[i].status && sd.n == 0 &&
                   strstr(upres_ctx_error(ctx), cases[i].detail) != NULL,
               "case %zu: %d (%s), want %d (%s)", i, st, upres_ctx_error(ctx), cases[i].status,
               cases[i].detail);
        upres_ctx_free(ctx);
    }
}

/* A deflated data.pkl claiming more bytes than deflate can produce from
 * its compressed size is refused before anything is allocated for it. */
TEST(pth_zip_inflate_claim_bounded)
{
    static const uint8_t pkl[] = "\x80\x02}.";
    size_t n;
    uint8_t *z = zip_one(pkl, sizeof pkl - 1, &n);
    CHECK(z != NULL);
    size_t cd = 30 + 16 + (sizeof pkl - 1); /* central record after name + data */
    z[8] = 8, z[cd + 10] = 8;               /* method: deflate */
    for (int i = 0; i < 4; i++) z[22 + i] = z[cd + 24 + i] = i == 3 ? 0x7f : 0xff;
    upres_ctx *ctx = tu_ctx_1thread();
    upres_statedict sd = {0};
    CHECK_EQ(upres__pth_load(ctx, z, n, &sd), UPRES_ERR_CORRUPT);
    CHECKF(strstr(upres_ctx_error(ctx), "claims 2147483647 bytes from 4 deflated"), "%s",
           upres_ctx_error(ctx));
    free(z);
    upres_ctx_free(ctx);
}

/* A stride-0 view declares 2^20 floats from a one-element storage (legacy
 * format, 4 stored bytes): what the tensors declare counts against
 * max_model_bytes, not only what the file stores. */
TEST(pth_overlapping_view_bounded_by_model_limit)
{
    static const char pkl[] =
        "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19."
        "\x80\x02M\xe9\x03."
        "\x80\x02}."
        "\x80\x02}X\x01\x00\x00\x00w"
        "ctorch._utils\n_rebuild_tensor_v2\n"
        "((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x00" "0"
        "X\x03\x00\x00\x00" "cpuK\x01NtQK\x00J\x00\x00\x10\x00\x85K\x00\x85\x89NtRs."
        "\x80\x02]X\x01\x00\x00\x00" "0a."
        "\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x3f";
    upres_ctx_desc d = upres_ctx_desc_defaults();
    d.threads = 1;
    d.limits.max_model_bytes = 8 << 20;
    upres_ctx *ctx = NULL;
    CHECK_OK(upres_ctx_new(&d, &ctx));
    upres_statedict sd = {0};
    /* Within the limit it loads, and every element is the one stored. */
    CHECKF(upres__pth_load(ctx, (const uint8_t *)pkl, sizeof pkl - 1, &sd) == UPRES_OK, "%s",
           upres_ctx_error(ctx));
    CHECK(sd.n == 1 && upres__sd_numel(&sd.t[0]) == 1u << 20);
    CHECK(sd.t[0].data[0] == 1.0f && sd.t[0].data[(1u << 20) - 1] == 1.0f);
    upres__sd_free(&sd);
    upres_ctx_free(ctx);
    d.limits.max_model_bytes = 1 << 20;
    CHECK_OK(upres_ctx_new(&d, &ctx));
    CHECK_EQ(upres__pth_load(ctx, (const uint8_t *)pkl, sizeof pkl - 1, &sd), UPRES_ERR_LIMIT);
    CHECKF(strstr(upres_ctx_error(ctx), "model size limit"), "%s", upres_ctx_error(ctx));
    CHECK(sd.n == 0);
    upres_ctx_free(ctx);
}

/* Deep nesting, long mark chains and huge stacks stay bounded and free all. */
TEST(pth_pickle_machine_bounds)
{
    size_t big = (size_t)3 << 20;
    uint8_t *p = malloc(big + 8);
    CHECK(p != NULL);
    /* 3M EMPTY_LISTs: more values than the stack allows. */
    p[0] = 0x80, p[1] = 2;
    memset(p + 2, ']', big);
    p[big + 2] = '.';
    size_t n;
    uint8_t *z = zip_one(p, big + 3, &n);
    CHECK(z != NULL);
    upres_ctx *ctx = tu_ctx_1thread();
    upres_statedict sd = {0};
    CHECK_EQ(upres__pth_load(ctx, z, n, &sd), UPRES_ERR_LIMIT);
    CHECK(strstr(upres_ctx_error(ctx), "pickle:") != NULL);
    free(z);
    upres_ctx_free(ctx);
    /* 100k nested MARKs. */
    memset(p + 2, '(', 100000);
    p[100002] = '.';
    z = zip_one(p, 100003, &n);
    CHECK(z != NULL);
    ctx = tu_ctx_1thread();
    CHECK_EQ(upres__pth_load(ctx, z, n, &sd), UPRES_ERR_LIMIT);
    CHECK(strstr(upres_ctx_error(ctx), "marks nested deeper") != NULL);
    free(z);
    upres_ctx_free(ctx);
    /* A list appended to itself 1M times through the memo, then a dict of
     * 200k entries: fine, but no tensors. */
    size_t k = 0;
    p[k++] = 0x80, p[k++] = 2, p[k++] = '}', p[k++] = 'q', p[k++] = 0;
    for (int i = 0; i < 200000 && k + 16 < big; i++) {
        p[k++] = 'J';
        memcpy(p + k, &i, 4);
        k += 4;
        p[k++] = 'h', p[k++] = 0, p[k++] = 's';
    }
    p[k++] = '.';
    z = zip_one(p, k, &n);
    CHECK(z != NULL);
    ctx = tu_ctx_1thread();
    CHECK_EQ(upres__pth_load(ctx, z, n, &sd), UPRES_ERR_UNSUPPORTED);
    CHECK(strstr(upres_ctx_error(ctx), "no tensors") != NULL);
    free(z);
    upres_ctx_free(ctx);
    free(p);
}

/* Exact bits of a state dict: every tensor's float32 bytes in order. */
static void sd_sha(const upres_statedict *sd, char hex[65])
{
    size_t total = 0;
    for (size_t i = 0; i < sd->n; i++) total += (size_t)upres__sd_numel(&sd->t[i]) * 4;
    uint8_t *all = malloc(total ? total : 1), *q = all;
    if (!all) {
        hex[0] = 0;
        return;
    }
    for (size_t i = 0; i < sd->n; i++) {
        size_t b = (size_t)upres__sd_numel(&sd->t[i]) * 4;
        memcpy(q, sd->t[i].data, b);
        q += b;
    }
    upres__sha256_hex(all, total, hex);
    free(all);
}

/* Loads ../shared/REL with upres__pth_load: 1 when the file is missing
 * (the caller skips), else the loader's status. */
static int load_shared(const char *rel, upres_statedict *sd)
{
    const char *path = test_shared(rel);
    if (!path) return 1;
    size_t n;
    unsigned char *buf = test_read_file(path, &n);
    if (!buf) return UPRES_ERR_IO;
    upres_ctx *ctx = tu_ctx_1thread();
    int st = upres__pth_load(ctx, buf, n, sd);
    free(buf);
    upres_ctx_free(ctx);
    return st;
}

TEST(pth_realesr_animevideov3)
{
    upres_statedict sd = {0};
    int st = load_shared("models/pytorch/realesr-animevideov3.pth", &sd);
    if (st == 1) SKIP("../shared/models/pytorch/realesr-animevideov3.pth missing");
    CHECK_OK(st);
    CHECK_EQ(sd.n, 53);
    /* SRVGGNetCompact, 64 features, 16 convs, x4: body.0 conv, then
     * (PReLU, conv) pairs, body.34 the last conv to 3*4*4 channels. */
    uint64_t params = 0;
    for (int i = 0; i <= 34; i++) {
        char name[64];
        snprintf(name, sizeof name, "body.%d.weight", i);
        const upres_sd_tensor *w = upres__sd_find(&sd, name);
        CHECKF(w != NULL, "%s missing", name);
        if (i % 2 == 1) {
            CHECK_EQ(w->ndim, 1);
            CHECK_EQ(w->shape[0], 64);
        } else {
            CHECK_EQ(w->ndim, 4);
            CHECK_EQ(w->shape[0], i == 34 ? 48 : 64);
            CHECK_EQ(w->shape[1], i == 0 ? 3 : 64);
            CHECK(w->shape[2] == 3 && w->shape[3] == 3);
            snprintf(name, sizeof name, "body.%d.bias", i);
            const upres_sd_tensor *b = upres__sd_find(&sd, name);
            CHECKF(b != NULL && b->ndim == 1 && b->shape[0] == w->shape[0], "%s", name);
        }
    }
    for (size_t i = 0; i < sd.n; i++) params += upres__sd_numel(&sd.t[i]);
    CHECK_EQ(params, 621424);
    CHECK(strcmp(sd.t[0].name, "body.0.weight") == 0);
    char hex[65];
    sd_sha(&sd, hex);
    /* From torch.load(...)["params"], float32 bytes of every tensor in order. */
    CHECKF(strcmp(hex, "3da840fe0b71f22796317cd30564d48c9aecffc71298bb2591ce32328113910f") == 0,
           "sha %s", hex);
    upres__sd_free(&sd);
}

TEST(pth_legacy_pan_x4)
{
    upres_statedict sd = {0};
    int st = load_shared("models/pytorch/PANx4_DF2K.pth", &sd);
    if (st == 1) SKIP("../shared/models/pytorch/PANx4_DF2K.pth missing");
    CHECK_OK(st);
    CHECK_EQ(sd.n, 146);
    CHECK(strcmp(sd.t[0].name, "conv_first.weight") == 0);
    CHECK(sd.t[0].ndim == 4 && sd.t[0].shape[0] == 40 && sd.t[0].shape[1] == 3);
    const upres_sd_tensor *b = upres__sd_find(&sd, "conv_last.bias");
    CHECK(b != NULL && b->ndim == 1 && b->shape[0] == 3);
    uint64_t params = 0;
    for (size_t i = 0; i < sd.n; i++) params += upres__sd_numel(&sd.t[i]);
    CHECK_EQ(params, 272419);
    char hex[65];
    sd_sha(&sd, hex);
    CHECKF(strcmp(hex, "7c4e14a04b42ed3c9e2e20b6fb89366412f43272411f0a7667f102866b39441b") == 0,
           "sha %s", hex);
    upres__sd_free(&sd);
}

/* Runs buf through both loaders: each must succeed with a well-formed state
 * dict or fail leaving it empty. Returns NULL or a message. */
static const char *survives(const uint8_t *buf, size_t n)
{
    static char msg[160];
    sd_loader fns[2] = {upres__pth_load, upres__safetensors_load};
    for (int f = 0; f < 2; f++) {
        upres_statedict sd = {0};
        int st = fns[f](NULL, buf, n, &sd);
        if (st > 0 || (st < 0 && (sd.n != 0 || sd.t != NULL))) {
            snprintf(msg, sizeof msg, "loader %d: status %d with %zu tensors", f, st, sd.n);
            return msg;
        }
        volatile float acc = 0;
        for (size_t i = 0; i < sd.n; i++) {
            const upres_sd_tensor *t = &sd.t[i];
            if (!t->name || !t->data || t->ndim < 0 || t->ndim > UPRES_SD_MAX_DIMS) {
                snprintf(msg, sizeof msg, "loader %d: malformed tensor %zu", f, i);
                upres__sd_free(&sd);
                return msg;
            }
            /* Touch every byte so ASan sees any short buffer. */
            uint64_t numel = upres__sd_numel(t);
            for (uint64_t k = 0; k < numel; k++) acc += t->data[k];
            acc += (float)strlen(t->name);
        }
        (void)acc;
        upres__sd_free(&sd);
    }
    return NULL;
}

TEST(pth_mutations_never_crash)
{
    static const char *const files[] = {
        "ema.pth", "deflate.pth", "params.pth", "plain.pth", "legacy.pth", "crafted.pth",
        "valid.safetensors", "truncated.pth", "os_system.pth", "eval.pth", "small_storage.pth",
        "short_data.pth", "long.pth", "notensor.pth", "zip64.pth", "st_offsets.safetensors",
        "st_overlap.safetensors", "st_size.safetensors", "st_dtype.safetensors",
        "st_dup.safetensors", "st_json.safetensors", "st_hlen.safetensors",
    };
    uint32_t seed = 12345;
    int ok = 0, failed = 0;
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        char path[128];
        snprintf(path, sizeof path, "pth/%s", files[f]);
        size_t n;
        uint8_t *orig = test_read_file(test_fixture(path), &n);
        CHECKF(orig != NULL, "%s missing", files[f]);
        const char *e = survives(orig, n);
        CHECKF(e == NULL, "%s: %s", files[f], e);
        /* Valid files: single-byte mutations and truncations. */
        int valid = f < 7;
        uint8_t *m = malloc(n);
        CHECK(m != NULL);
        for (int i = 0; valid && i < 600; i++) {
            memcpy(m, orig, n);
            size_t pos = tu_xorshift32(&seed) % n;
            uint8_t val = (uint8_t)tu_xorshift32(&seed);
            /* Half the time a small change (length fields, indices). */
            m[pos] = (i & 1) ? val : (uint8_t)(m[pos] + (val & 1 ? 1 : 0xff));
            size_t len = (i % 10 == 9) ? tu_xorshift32(&seed) % n : n;
            e = survives(m, len);
            CHECKF(e == NULL, "%s byte %zu = %u, len %zu: %s", files[f], pos, m[pos], len, e);
            upres_statedict sd = {0};
            int fn = strstr(files[f], ".safetensors") != NULL;
            int st = (fn ? upres__safetensors_load : upres__pth_load)(NULL, m, len, &sd);
            if (st == 0) ok++;
            else failed++;
            upres__sd_free(&sd);
        }
        free(m);
        free(orig);
    }
    /* Both outcomes occur: the mutations reach past the first check. */
    CHECKF(ok > 100 && failed > 100, "ok %d, failed %d", ok, failed);
}
