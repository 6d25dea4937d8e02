/*
 * .safetensors reader: u64 LE header length N, N bytes of JSON
 *   {"name": {"dtype": "F16", "shape": [..], "data_offsets": [begin, end]}, ...,
 *    "__metadata__": {"key": "value", ...}}
 * then the data area, which the offsets index. The JSON parser is strict
 * (RFC 8259 syntax, UTF-8, no duplicate keys) but only builds what this
 * layout needs; values of unknown keys inside a tensor entry are skipped.
 */
#include "models/models_internal.h"

#include "core/core_internal.h"

#include <stdlib.h>
#include <string.h>

/* The reference implementation refuses larger headers too. */
#define ST_MAX_HEADER ((uint64_t)100 << 20)
/* Nesting allowed inside skipped values. */
#define ST_MAX_DEPTH 64

typedef struct st_entry {
    char *name; /* owned */
    size_t name_len;
    char dtype[16]; /* NUL-terminated; longer dtype strings are truncated with "..." */
    int ndim;
    int64_t shape[UPRES_SD_MAX_DIMS];
    uint64_t begin, end;
} st_entry;

typedef struct js {
    const uint8_t *start, *p, *end; /* the header JSON; p = parse position */
    upres_ctx *ctx;
    /* Scratch for the last decoded string (owned). */
    char *buf;
    size_t len, cap;
} js;

static int js_err(js *j, const char *what)
{
    return upres__fail(j->ctx, UPRES_ERR_CORRUPT, "safetensors: bad header JSON (%s at byte %zu)",
                       what, (size_t)(j->p - j->start));
}

static void js_ws(js *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static int js_lit(js *j, char c)
{
    js_ws(j);
    if (j->p >= j->end || *j->p != (uint8_t)c) return 0;
    j->p++;
    return 1;
}

static int js_put(js *j, const uint8_t *s, size_t n)
{
    if (j->cap - j->len < n + 1) {
        size_t cap = j->cap ? j->cap : 64;
        while (cap - j->len < n + 1) {
            if (cap > ((size_t)-1) / 2) return UPRES_ERR_OVERFLOW;
            cap *= 2;
        }
        char *b = realloc(j->buf, cap);
        if (!b) return upres__fail(j->ctx, UPRES_ERR_NOMEM, "safetensors: out of memory");
        j->buf = b;
        j->cap = cap;
    }
    memcpy(j->buf + j->len, s, n);
    j->len += n;
    j->buf[j->len] = 0;
    return UPRES_OK;
}

/* Length of the valid UTF-8 sequence starting at p (at most n bytes
 * available), or 0 when it is invalid (overlong, surrogate, > U+10FFFF). */
static size_t utf8_len(const uint8_t *p, size_t n)
{
    uint8_t c = p[0];
    size_t k;
    uint32_t min, cp;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) k = 2, min = 0x80, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef) k = 3, min = 0x800, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4) k = 4, min = 0x10000, cp = c & 0x07;
    else return 0;
    if (n < k) return 0;
    for (size_t i = 1; i < k; i++) {
        if ((p[i] & 0xc0) != 0x80) return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return k;
}

static int hex4(const uint8_t *p, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        uint8_t c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
        else return 0;
    }
    *out = v;
    return 1;
}

/* Parses a JSON string into j->buf / j->len (escapes decoded to UTF-8). */
static int js_string(js *j)
{
    if (!js_lit(j, '"')) return js_err(j, "expected a string");
    j->len = 0;
    int st = js_put(j, (const uint8_t *)"", 0);
    if (st) return st;
    for (;;) {
        if (j->p >= j->end) return js_err(j, "unterminated string");
        uint8_t c = *j->p;
        if (c == '"') {
            j->p++;
            return UPRES_OK;
        }
        if (c < 0x20) return js_err(j, "control character in string");
        if (c != '\\') {
            size_t k = utf8_len(j->p, (size_t)(j->end - j->p));
            if (!k) return js_err(j, "invalid UTF-8");
            if ((st = js_put(j, j->p, k))) return st;
            j->p += k;
            continue;
        }
        if (j->end - j->p < 2) return js_err(j, "unterminated escape");
        uint8_t e = j->p[1];
        j->p += 2;
        uint8_t one;
        switch (e) {
        case '"': one = '"'; break;
        case '\\': one = '\\'; break;
        case '/': one = '/'; break;
        case 'b': one = '\b'; break;
        case 'f': one = '\f'; break;
        case 'n': one = '\n'; break;
        case 'r': one = '\r'; break;
        case 't': one = '\t'; break;
        case 'u': {
            uint32_t cp, lo;
            if (j->end - j->p < 4 || !hex4(j->p, &cp)) return js_err(j, "bad \\u escape");
            j->p += 4;
            if (cp >= 0xdc00 && cp <= 0xdfff) return js_err(j, "lone surrogate");
            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u' ||
                    !hex4(j->p + 2, &lo) || lo < 0xdc00 || lo > 0xdfff)
                    return js_err(j, "lone surrogate");
                j->p += 6;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            uint8_t u[4];
            size_t n;
            if (cp < 0x80) u[0] = (uint8_t)cp, n = 1;
            else if (cp < 0x800) u[0] = (uint8_t)(0xc0 | cp >> 6), u[1] = (uint8_t)(0x80 | (cp & 0x3f)), n = 2;
            else if (cp < 0x10000)
                u[0] = (uint8_t)(0xe0 | cp >> 12), u[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f)),
                u[2] = (uint8_t)(0x80 | (cp & 0x3f)), n = 3;
            else
                u[0] = (uint8_t)(0xf0 | cp >> 18), u[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f)),
                u[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f)), u[3] = (uint8_t)(0x80 | (cp & 0x3f)),
                n = 4;
            if ((st = js_put(j, u, n))) return st;
            continue;
        }
        default:
            return js_err(j, "bad escape");
        }
        if ((st = js_put(j, &one, 1))) return st;
    }
}

/* A non-negative JSON integer (no sign, fraction or exponent) <= INT64_MAX. */
static int js_uint(js *j, uint64_t *out)
{
    js_ws(j);
    if (j->p >= j->end || *j->p < '0' || *j->p > '9') return js_err(j, "expected an integer");
    if (*j->p == '0' && j->end - j->p > 1 && j->p[1] >= '0' && j->p[1] <= '9')
        return js_err(j, "leading zero");
    uint64_t v = 0;
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
        if (v > ((uint64_t)INT64_MAX - 9) / 10) return js_err(j, "integer too large");
        v = v * 10 + (uint64_t)(*j->p++ - '0');
    }
    if (j->p < j->end && (*j->p == '.' || *j->p == 'e' || *j->p == 'E'))
        return js_err(j, "expected an integer");
    *out = v;
    return UPRES_OK;
}

static int js_skip(js *j, int depth);

/* Skips any JSON number. */
static int js_skip_number(js *j)
{
    if (j->p < j->end && *j->p == '-') j->p++;
    if (j->p >= j->end || *j->p < '0' || *j->p > '9') return js_err(j, "bad value");
    if (*j->p == '0') j->p++;
    else
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9') j->p++;
    if (j->p < j->end && *j->p == '.') {
        j->p++;
        if (j->p >= j->end || *j->p < '0' || *j->p > '9') return js_err(j, "bad number");
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9') j->p++;
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-')) j->p++;
        if (j->p >= j->end || *j->p < '0' || *j->p > '9') return js_err(j, "bad number");
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9') j->p++;
    }
    return UPRES_OK;
}

/* Skips any JSON value, nesting at most ST_MAX_DEPTH deep. Objects skipped
 * here are not checked for duplicate keys (their content is ignored). */
static int js_skip(js *j, int depth)
{
    if (depth > ST_MAX_DEPTH) return js_err(j, "nesting too deep");
    js_ws(j);
    if (j->p >= j->end) return js_err(j, "truncated");
    int st;
    switch (*j->p) {
    case '"':
        return js_string(j);
    case '{':
        j->p++;
        if (js_lit(j, '}')) return UPRES_OK;
        do {
            if ((st = js_string(j))) return st;
            if (!js_lit(j, ':')) return js_err(j, "expected ':'");
            if ((st = js_skip(j, depth + 1))) return st;
        } while (js_lit(j, ','));
        return js_lit(j, '}') ? UPRES_OK : js_err(j, "expected '}'");
    case '[':
        j->p++;
        if (js_lit(j, ']')) return UPRES_OK;
        do {
            if ((st = js_skip(j, depth + 1))) return st;
        } while (js_lit(j, ','));
        return js_lit(j, ']') ? UPRES_OK : js_err(j, "expected ']'");
    case 't':
    case 'f':
    case 'n': {
        static const char *const words[] = {"true", "false", "null"};
        for (int i = 0; i < 3; i++) {
            size_t n = strlen(words[i]);
            if ((size_t)(j->end - j->p) >= n && memcmp(j->p, words[i], n) == 0) {
                j->p += n;
                return UPRES_OK;
            }
        }
        return js_err(j, "bad literal");
    }
    default:
        return js_skip_number(j);
    }
}

/* "__metadata__": an object of string values (checked, then ignored). */
static int js_metadata(js *j)
{
    if (!js_lit(j, '{')) return js_err(j, "__metadata__ is not an object");
    if (js_lit(j, '}')) return UPRES_OK;
    int st;
    do {
        if ((st = js_string(j))) return st;
        if (!js_lit(j, ':')) return js_err(j, "expected ':'");
        js_ws(j);
        if (j->p >= j->end || *j->p != '"') return js_err(j, "__metadata__ value is not a string");
        if ((st = js_string(j))) return st;
    } while (js_lit(j, ','));
    return js_lit(j, '}') ? UPRES_OK : js_err(j, "expected '}'");
}

/* One tensor entry object into e (name already set). */
static int js_entry(js *j, st_entry *e)
{
    if (!js_lit(j, '{')) return js_err(j, "tensor entry is not an object");
    int seen_dtype = 0, seen_shape = 0, seen_off = 0, st;
    if (!js_lit(j, '}')) {
        do {
            if ((st = js_string(j))) return st;
            if (!js_lit(j, ':')) return js_err(j, "expected ':'");
            if (strcmp(j->buf, "dtype") == 0 && j->len == 5) {
                if (seen_dtype++) return js_err(j, "duplicate key dtype");
                if ((st = js_string(j))) return st;
                /* Keep printable ASCII only: the text goes into error details. */
                size_t n = 0;
                for (size_t i = 0; i < j->len && n < sizeof e->dtype - 1; i++)
                    e->dtype[n++] = (j->buf[i] >= 0x20 && j->buf[i] < 0x7f) ? j->buf[i] : '?';
                e->dtype[n] = 0;
                if (j->len > sizeof e->dtype - 1) memcpy(e->dtype + sizeof e->dtype - 4, "...", 4);
            } else if (strcmp(j->buf, "shape") == 0 && j->len == 5) {
                if (seen_shape++) return js_err(j, "duplicate key shape");
                if (!js_lit(j, '[')) return js_err(j, "shape is not an array");
                if (!js_lit(j, ']')) {
                    do {
                        uint64_t v;
                        if ((st = js_uint(j, &v))) return st;
                        if (e->ndim >= UPRES_SD_MAX_DIMS)
                            return upres__fail(j->ctx, UPRES_ERR_UNSUPPORTED,
                                               "safetensors: tensor %.200s has more than %d "
                                               "dimensions",
                                               e->name, UPRES_SD_MAX_DIMS);
                        e->shape[e->ndim++] = (int64_t)v;
                    } while (js_lit(j, ','));
                    if (!js_lit(j, ']')) return js_err(j, "expected ']'");
                }
            } else if (strcmp(j->buf, "data_offsets") == 0 && j->len == 12) {
                if (seen_off++) return js_err(j, "duplicate key data_offsets");
                if (!js_lit(j, '[')) return js_err(j, "data_offsets is not an array");
                if ((st = js_uint(j, &e->begin))) return st;
                if (!js_lit(j, ',')) return js_err(j, "data_offsets needs 2 integers");
                if ((st = js_uint(j, &e->end))) return st;
                if (!js_lit(j, ']')) return js_err(j, "data_offsets needs 2 integers");
            } else if ((st = js_skip(j, 1))) {
                return st;
            }
        } while (js_lit(j, ','));
        if (!js_lit(j, '}')) return js_err(j, "expected '}'");
    }
    if (!seen_dtype || !seen_shape || !seen_off)
        return upres__fail(j->ctx, UPRES_ERR_CORRUPT,
                           "safetensors: tensor %.200s lacks dtype, shape or data_offsets",
                           e->name);
    return UPRES_OK;
}

static int cmp_name(const void *a, const void *b)
{
    const st_entry *x = *(const st_entry *const *)a, *y = *(const st_entry *const *)b;
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp(x->name, y->name, n);
    return c ? c : (x->name_len > y->name_len) - (x->name_len < y->name_len);
}

static int cmp_begin(const void *a, const void *b)
{
    const st_entry *x = *(const st_entry *const *)a, *y = *(const st_entry *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

/* Checks names unique and byte ranges disjoint (sorted copies of pointers). */
static int check_layout(upres_ctx *ctx, st_entry *e, size_t n)
{
    if (n < 2) return UPRES_OK;
    st_entry **v = malloc(n * sizeof *v); /* n * sizeof fits: e already holds n entries */
    if (!v) return upres__fail(ctx, UPRES_ERR_NOMEM, "safetensors: out of memory");
    for (size_t i = 0; i < n; i++) v[i] = &e[i];
    int st = UPRES_OK;
    qsort(v, n, sizeof *v, cmp_name);
    for (size_t i = 1; i < n && !st; i++)
        if (cmp_name(&v[i - 1], &v[i]) == 0)
            st = upres__fail(ctx, UPRES_ERR_CORRUPT, "safetensors: duplicate tensor %.200s",
                             v[i]->name);
    if (!st) {
        qsort(v, n, sizeof *v, cmp_begin);
        for (size_t i = 1; i < n && !st; i++)
            if (v[i]->begin < v[i - 1]->end)
                st = upres__fail(ctx, UPRES_ERR_CORRUPT,
                                 "safetensors: tensors %.100s and %.100s overlap", v[i - 1]->name,
                                 v[i]->name);
    }
    free(v);
    return st;
}

static int dtype_code(const char *d)
{
    if (strcmp(d, "F32") == 0) return 0;
    if (strcmp(d, "F16") == 0) return 1;
    if (strcmp(d, "BF16") == 0) return 2;
    return -1;
}

static int host_little_endian(void)
{
    const uint16_t probe = 1;
    uint8_t b;
    memcpy(&b, &probe, 1);
    return b == 1;
}

static void free_entries(st_entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++) free(e[i].name);
    free(e);
}

int upres__safetensors_load(upres_ctx *ctx, const uint8_t *buf, size_t size, upres_statedict *out)
{
    if (!out) return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "safetensors: no output");
    out->t = NULL;
    out->n = 0;
    if (!buf || size < 8)
        return upres__fail(ctx, UPRES_ERR_CORRUPT, "safetensors: file shorter than its header");
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | buf[i];
    if (hlen > size - 8)
        return upres__fail(ctx, UPRES_ERR_CORRUPT,
                           "safetensors: header length %llu exceeds the file (%zu bytes)",
                           (unsigned long long)hlen, size);
    if (hlen > ST_MAX_HEADER)
        return upres__fail(ctx, UPRES_ERR_LIMIT, "safetensors: header of %llu bytes is too large",
                           (unsigned long long)hlen);
    const uint8_t *data = buf + 8 + hlen;
    uint64_t data_size = size - 8 - hlen;

    js j = {buf + 8, buf + 8, buf + 8 + hlen, ctx, NULL, 0, 0};
    st_entry *e = NULL;
    size_t n = 0, cap = 0;
    int st = UPRES_OK, seen_meta = 0;
    if (!js_lit(&j, '{')) {
        st = js_err(&j, "header is not an object");
        goto done;
    }
    if (!js_lit(&j, '}')) {
        do {
            if ((st = js_string(&j))) goto done;
            if (!js_lit(&j, ':')) {
                st = js_err(&j, "expected ':'");
                goto done;
            }
            if (j.len == 12 && strcmp(j.buf, "__metadata__") == 0) {
                if (seen_meta++) {
                    st = js_err(&j, "duplicate __metadata__");
                    goto done;
                }
                if ((st = js_metadata(&j))) goto done;
                continue;
            }
            if (n == cap) {
                size_t nc = cap ? cap * 2 : 16, bytes;
                if (!upres__mul_size(nc, sizeof *e, &bytes)) {
                    st = upres__fail(ctx, UPRES_ERR_OVERFLOW, "safetensors: too many tensors");
                    goto done;
                }
                st_entry *ne = realloc(e, bytes);
                if (!ne) {
                    st = upres__fail(ctx, UPRES_ERR_NOMEM, "safetensors: out of memory");
                    goto done;
                }
                e = ne;
                cap = nc;
            }
            st_entry *t = &e[n];
            memset(t, 0, sizeof *t);
            if (memchr(j.buf, 0, j.len)) {
                st = upres__fail(ctx, UPRES_ERR_CORRUPT, "safetensors: tensor name contains NUL");
                goto done;
            }
            /* The scratch buffer becomes the name; a new one is grown next time. */
            t->name = j.buf;
            t->name_len = j.len;
            j.buf = NULL;
            j.len = j.cap = 0;
            n++;
            if ((st = js_entry(&j, t))) goto done;
        } while (js_lit(&j, ','));
        if (!js_lit(&j, '}')) {
            st = js_err(&j, "expected '}'");
            goto done;
        }
    }
    /* The writer may pad the header with spaces for alignment. */
    js_ws(&j);
    if (j.p != j.end) {
        st = js_err(&j, "trailing bytes after the header object");
        goto done;
    }

    uint64_t total = 0;
    const upres_limits *lim = upres__limits(ctx);
    for (size_t i = 0; i < n; i++) {
        st_entry *t = &e[i];
        int code = dtype_code(t->dtype);
        if (code < 0) {
            st = upres__fail(ctx, UPRES_ERR_UNSUPPORTED,
                             "safetensors: tensor %.200s has dtype %s (only F32, F16 and BF16 "
                             "are supported)",
                             t->name, t->dtype);
            goto done;
        }
        uint64_t numel = 1, bytes, fbytes;
        for (int d = 0; d < t->ndim; d++)
            if (__builtin_mul_overflow(numel, (uint64_t)t->shape[d], &numel)) {
                st = upres__fail(ctx, UPRES_ERR_OVERFLOW, "safetensors: tensor %.200s is too large",
                                 t->name);
                goto done;
            }
        if (__builtin_mul_overflow(numel, (uint64_t)(code ? 2 : 4), &bytes) ||
            __builtin_mul_overflow(numel, (uint64_t)sizeof(float), &fbytes) ||
            __builtin_add_overflow(total, fbytes, &total)) {
            st = upres__fail(ctx, UPRES_ERR_OVERFLOW, "safetensors: tensor %.200s is too large",
                             t->name);
            goto done;
        }
        if (t->end < t->begin || t->end > data_size) {
            st = upres__fail(ctx, UPRES_ERR_CORRUPT,
                             "safetensors: tensor %.200s has data_offsets [%llu, %llu] outside "
                             "the %llu data bytes",
                             t->name, (unsigned long long)t->begin, (unsigned long long)t->end,
                             (unsigned long long)data_size);
            goto done;
        }
        if (t->end - t->begin != bytes) {
            st = upres__fail(ctx, UPRES_ERR_CORRUPT,
                             "safetensors: tensor %.200s has %llu bytes, its shape needs %llu",
                             t->name, (unsigned long long)(t->end - t->begin),
                             (unsigned long long)bytes);
            goto done;
        }
        if (total > lim->max_memory_bytes || total > SIZE_MAX) {
            st = upres__fail(ctx, UPRES_ERR_LIMIT,
                             "safetensors: tensors need more than %llu bytes of memory",
                             (unsigned long long)lim->max_memory_bytes);
            goto done;
        }
    }
    if ((st = check_layout(ctx, e, n))) goto done;

    for (size_t i = 0; i < n; i++) {
        st_entry *t = &e[i];
        int code = dtype_code(t->dtype);
        size_t numel = (size_t)((t->end - t->begin) / (code ? 2 : 4));
        /* At least one float so an empty tensor still has a non-NULL buffer. */
        float *f = malloc((numel ? numel : 1) * sizeof *f);
        if (!f) {
            st = upres__fail(ctx, UPRES_ERR_NOMEM, "safetensors: out of memory");
            goto done;
        }
        const uint8_t *src = data + t->begin;
        if (code == 0 && host_little_endian()) {
            memcpy(f, src, numel * sizeof *f);
        } else {
            size_t es = code ? 2 : 4;
            for (size_t k = 0; k < numel; k++) f[k] = upres__sd_elem(code, src + k * es);
        }
        if ((st = upres__sd_push(ctx, out, t->name, t->name_len, t->ndim, t->shape, f))) goto done;
    }

done:
    free(j.buf);
    free_entries(e, n);
    if (st) upres__sd_free(out);
    return st;
}
