/*
 * PyTorch .pth/.pt state dicts, read without running anything from the file.
 *
 * Two containers:
 *   zip (torch >= 1.6): <prefix>/data.pkl (the pickle) and <prefix>/data/<key>
 *     (raw little-endian storage bytes), stored or deflated; ZIP64 refused.
 *   legacy (< 1.6): a run of pickles: magic number, protocol version, sys info,
 *     the object, the list of storage keys; then per key an int64 element
 *     count and the raw bytes.
 *
 * The pickle is read by a small stack machine that knows the opcodes of
 * protocols 2..5 a state dict uses and builds inert values; the only
 * "callables" are an allow-list of globals (OrderedDict, the tensor rebuild
 * helpers, torch.Size, Float/Half/BFloat16 storages) interpreted here.
 * Any other global is refused when it is named, before anything could use it.
 * Every value is tracked on one allocation list, so any error path frees all.
 */
#include "models/models_internal.h"

#include "core/core_internal.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* Bounds on the pickle machine. Real state dicts use a few thousand stack
 * slots and ~10 values per tensor; these leave a wide margin while keeping
 * a hostile pickle's memory use to some hundred MB at most. */
#define PK_MAX_STACK ((size_t)1 << 20)
#define PK_MAX_MARKS ((size_t)1 << 16)
#define PK_MAX_MEMO ((size_t)1 << 20)
#define PK_MAX_OBJS ((size_t)1 << 20)
#define PK_MAX_GLOBAL_NAME 256

/* ------------------------------------------------------------------------ */
/* Little helpers                                                            */

static uint32_t rd16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

static int host_little_endian(void)
{
    const uint16_t probe = 1;
    uint8_t b;
    memcpy(&b, &probe, 1);
    return b == 1;
}

/* Copies up to cap-1 bytes of s into out, printable ASCII only (the text
 * goes into one-line error details). */
static void printable(char *out, size_t cap, const uint8_t *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < cap; i++)
        out[k++] = (s[i] >= 0x20 && s[i] < 0x7f) ? (char)s[i] : '?';
    out[k] = 0;
}

/* dtype codes shared with statedict.c */
enum { DT_F32 = 0, DT_F16 = 1, DT_BF16 = 2 };
static size_t dt_size(int dt) { return dt == DT_F32 ? 4 : 2; }

/* ------------------------------------------------------------------------ */
/* Zip                                                                       */

typedef struct zent {
    const uint8_t *name;
    size_t name_len;
    uint32_t method, crc, flags;
    uint64_t csize, usize, lho; /* compressed, uncompressed size; local header offset */
} zent;

typedef struct zipf {
    const uint8_t *buf;
    size_t size;
    zent *e; /* sorted by name */
    size_t n;
} zipf;

static int zent_cmp(const void *a, const void *b)
{
    const zent *x = a, *y = b;
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp(x->name, y->name, n);
    return c ? c : (x->name_len > y->name_len) - (x->name_len < y->name_len);
}

/* Reads the central directory of the zip in buf. */
static int zip_open(upres_ctx *ctx, const uint8_t *buf, size_t size, zipf *z)
{
    memset(z, 0, sizeof *z);
    z->buf = buf;
    z->size = size;
    if (size < 22) return upres__fail(ctx, UPRES_ERR_CORRUPT, "zip: truncated (no end record)");
    /* The end record is in the last 22 + 65535 bytes (its comment is at most 65535). */
    size_t lo = size > 22 + 65535 ? size - 22 - 65535 : 0, eocd = (size_t)-1;
    for (size_t i = size - 22 + 1; i-- > lo;) {
        if (rd32(buf + i) == 0x06054b50u && i + 22 + rd16(buf + i + 20) <= size) {
            eocd = i;
            break;
        }
    }
    if (eocd == (size_t)-1)
        return upres__fail(ctx, UPRES_ERR_CORRUPT, "zip: truncated (no end record)");
    const uint8_t *r = buf + eocd;
    uint32_t disk = rd16(r + 4), cd_disk = rd16(r + 6), n_disk = rd16(r + 8), n = rd16(r + 10);
    uint64_t cd_size = rd32(r + 12), cd_off = rd32(r + 16);
    /* Saturated fields mean the real values live in ZIP64 records. torch
     * writes those records even for small files, but then also fills the
     * classic fields, which are all this reader uses. */
    if (n == 0xffff || n_disk == 0xffff || cd_size == 0xffffffffu || cd_off == 0xffffffffu)
        return upres__fail(ctx, UPRES_ERR_UNSUPPORTED, "zip: ZIP64 archives are not supported");
    if (disk != 0 || cd_disk != 0 || n_disk != n)
        return upres__fail(ctx, UPRES_ERR_UNSUPPORTED, "zip: multi-disk archives are not supported");
    if (cd_off > eocd || cd_size > eocd - cd_off)
        return upres__fail(ctx, UPRES_ERR_CORRUPT, "zip: central directory outside the file");
    z->e = calloc(n ? n : 1, sizeof *z->e);
    if (!z->e) return upres__fail(ctx, UPRES_ERR_NOMEM, "zip: out of memory");
    const uint8_t *p = buf + cd_off, *end = p + cd_size;
    for (uint32_t i = 0; i < n; i++) {
        if (end - p < 46 || rd32(p) != 0x02014b50u)
            return upres__fail(ctx, UPRES_ERR_CORRUPT, "zip: bad central directory entry %u", i);
        zent *e = &z->e[i];
        e->flags = rd16(p + 8);
        e->method = rd16(p + 10);
        e->crc = rd32(p + 16);
        e->csize = rd32(p + 20);
        e->usize = rd32(p + 24);
        size_t nl = rd16(p + 28), xl = rd16(p + 30), cl = rd16(p + 32);
        e->lho = rd32(p + 42);
        if ((size_t)(end - p) - 46 < nl + xl + cl)
            return upres__fail(ctx, UPRES_ERR_CORRUPT, "zip: bad central directory entry %u", i);
        e->name = p + 46;
        e->name_len = nl;
        if (e->csize == 0xffffffffu || e->usize == 0xffffffffu || e->lho == 0xffffffffu)
            return upres__fail(ctx, UPRES_ERR_UNSUPPORTED, "zip: ZIP64 archives are not supported");
        p += 46 + nl + xl + cl;
    }
    z->n = n;
    qsort(z->e, z->n, sizeof *z->e, zent_cmp);
    return UPRES_OK;
}

/* The entry named a + b (two parts, to avoid building the string), or NULL. */
static const zent *zip_find(const zipf *z, const uint8_t *a, size_t an, const uint8_t *b,
                            size_t bn)
{
    size_t lo = 0, hi = z->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const zent *e = &z->e[mid];
        /* Compare e->name with a||b. */
        int c;
        size_t k = e->name_len < an ? e->name_len : an;
        c = memcmp(e->name, a, k);
        if (!c && e->name_len < an) c = -1;
        if (!c) {
            size_t rest = e->name_len - an;
            k = rest < bn ? rest : bn;
            c = memcmp(e->name + an, b, k);
            if (!c) c = (rest > bn) - (rest < bn);
        }
        if (c == 0) return e;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

/* The bytes of entry e: a pointer into the zip when stored, else inflated
 * into *owned (malloc()ed; the caller frees). The CRC is checked. */
static int zip_read(upres_ctx *ctx, const zipf *z, const zent *e, const uint8_t **data,
                    size_t *len, uint8_t **owned)
{
    char nm[80];
    printable(nm, sizeof nm, e->name, e->name_len);
    *owned = NULL;
    if (e->flags & 1) return upres__fail(ctx, UPRES_ERR_UNSUPPORTED, "zip: %s is encrypted", nm);
    if (e->lho > z->size || z->size - e->lho < 30 || rd32(z->buf + e->lho) != 0x04034b50u)
        return upres__fail(ctx, UPRES_ERR_CORRUPT, "zip: bad local header for %s", nm);
    uint64_t start = e->lho + 30 + rd16(z->buf + e->lho + 26) + rd16(z->buf + e->lho + 28);
    if (start > z->size || e->csize > z->size - start)
        return upres__fail(ctx, UPRES_ERR_CORRUPT, "zip: %s extends past the end of the file", nm);
    const uint8_t *src = z->buf + start;
    const upres_limits *lim = upres__limits(ctx);
    if (e->usize > lim->max_memory_bytes || e->usize > SIZE_MAX)
        return upres__fail(ctx, UPRES_ERR_LIMIT, "zip: %s is too large", nm);
    if (e->method == 0) {
        if (e->csize != e->usize)
            return upres__fail(ctx, UPRES_ERR_CORRUPT, "zip: stored %s has two sizes", nm);
        *data = src;
    } else if (e->method == 8) {
        /* Deflate expands at most 1032:1; a larger claim would only make us
         * allocate memory the stream cannot fill. */
        if (e->usize / 1032 > e->csize)
            return upres__fail(ctx, UPRES_ERR_CORRUPT,
                               "zip: %s claims %llu bytes from %llu deflated ones", nm,
                               (unsigned long long)e->usize, (unsigned long long)e->csize);
        uint8_t *out = malloc(e->usize ? (size_t)e->usize : 1);
        if (!out) return upres__fail(ctx, UPRES_ERR_NOMEM, "zip: out of memory");
        z_stream s;
        memset(&s, 0, sizeof s);
        if (inflateInit2(&s, -MAX_WBITS) != Z_OK) {
            free(out);
            return upres__fail(ctx, UPRES_ERR_NOMEM, "zip: inflate init failed");
        }
        /* Feed in chunks: avail_in/avail_out are 32-bit. */
        uint64_t in_left = e->csize, out_left = e->usize;
        s.next_in = (Bytef *)(uintptr_t)src;
        s.next_out = out;
        int zr = Z_OK;
        while (zr == Z_OK) {
            uInt ci = in_left > 0x40000000u ? 0x40000000u : (uInt)in_left;
            uInt co = out_left > 0x40000000u ? 0x40000000u : (uInt)out_left;
            s.avail_in = ci;
            s.avail_out = co;
            zr = inflate(&s, Z_NO_FLUSH);
            in_left -= ci - s.avail_in;
            out_left -= co - s.avail_out;
            if (zr == Z_BUF_ERROR || (zr == Z_OK && ci == s.avail_in && co == s.avail_out)) break;
        }
        inflateEnd(&s);
        if (zr != Z_STREAM_END || out_left != 0) {
            free(out);
            return upres__fail(ctx, UPRES_ERR_CORRUPT, "zip: %s does not inflate to %llu bytes",
                               nm, (unsigned long long)e->usize);
        }
        *data = out;
        *owned = out;
    } else {
        return upres__fail(ctx, UPRES_ERR_UNSUPPORTED, "zip: %s uses compression method %u", nm,
                           e->method);
    }
    *len = (size_t)e->usize;
    /* crc32 takes a uInt length: feed large entries in pieces. */
    uLong crc = crc32(0L, Z_NULL, 0);
    for (size_t off = 0; off < *len;) {
        size_t k = *len - off > 0x40000000u ? 0x40000000u : *len - off;
        crc = crc32(crc, *data + off, (uInt)k);
        off += k;
    }
    if ((uint32_t)crc != e->crc) {
        free(*owned);
        *owned = NULL;
        return upres__fail(ctx, UPRES_ERR_CORRUPT, "zip: CRC mismatch in %s", nm);
    }
    return UPRES_OK;
}

/* ------------------------------------------------------------------------ */
/* Pickle values                                                             */

enum {
    K_NONE, K_BOOL, K_INT, K_BIGINT, K_FLOAT, K_STR, K_BYTES, K_TUPLE, K_LIST, K_DICT,
    K_GLOBAL, K_STORAGE, K_TENSOR
};
static const char *const kind_names[] = {"None",   "bool",   "int",     "big int", "float",
                                         "str",    "bytes",  "tuple",   "list",    "dict",
                                         "global", "storage", "tensor"};

enum {
    G_ORDERED_DICT, G_REBUILD_TENSOR_V2, G_REBUILD_TENSOR, G_REBUILD_PARAMETER,
    G_REBUILD_PARAMETER_STATE, G_TORCH_SIZE, G_FLOAT_STORAGE, G_HALF_STORAGE, G_BF16_STORAGE
};
static const struct {
    const char *module, *name;
} allowed[] = {
    {"collections", "OrderedDict"},
    {"torch._utils", "_rebuild_tensor_v2"},
    {"torch._utils", "_rebuild_tensor"},
    {"torch._utils", "_rebuild_parameter"},
    {"torch._utils", "_rebuild_parameter_with_state"},
    {"torch", "Size"},
    {"torch", "FloatStorage"},
    {"torch", "HalfStorage"},
    {"torch", "BFloat16Storage"},
};

typedef struct pobj pobj;
struct pobj {
    pobj *next; /* allocation list */
    int kind;
    union {
        int64_t i; /* BOOL, INT */
        double f;
        int g;     /* GLOBAL: index in allowed[] */
        struct {   /* STR, BYTES, BIGINT (two's complement LE): into the pickle */
            const uint8_t *p;
            size_t n;
        } s;
        struct { /* TUPLE, LIST; DICT holds key,value pairs: v[2i], v[2i+1] */
            pobj **v;
            size_t n, cap;
        } a;
        struct {        /* STORAGE: elements [off, off+numel) of storage table entry */
            size_t idx;
            uint64_t off, numel;
        } st;
        struct {
            size_t sidx;   /* storage table entry */
            uint64_t off;  /* element offset in that storage (view offset included) */
            int ndim;
            int64_t shape[UPRES_SD_MAX_DIMS];
            int64_t stride[UPRES_SD_MAX_DIMS];
        } t;
    } u;
};

/* One distinct storage (by key). */
typedef struct pstore {
    const uint8_t *key;
    size_t key_len;
    int dtype;
    uint64_t numel;        /* elements, as declared by the persistent id */
    const uint8_t *data;   /* numel * dt_size(dtype) bytes once resolved, else NULL */
    uint8_t *owned;        /* inflated bytes behind data, if any */
} pstore;

typedef struct vm {
    upres_ctx *ctx;
    pobj *objs;
    size_t nobjs;
    pobj **stack;
    size_t sp, scap;
    size_t *marks;
    size_t nmarks, mcap;
    pobj **memo;
    size_t memo_cap, memo_count;
    int legacy; /* persistent ids carry view metadata */
    pstore *st;
    size_t nst, stcap;
    size_t *hash; /* open addressing over st: index+1, 0 = empty; hcap slots */
    size_t hcap;
    int new_err; /* status of the last failed vm_new */
} vm;

static pobj *vm_new(vm *v, int kind)
{
    if (v->nobjs >= PK_MAX_OBJS) {
        v->new_err = upres__fail(v->ctx, UPRES_ERR_LIMIT, "pickle: more than %zu values",
                                 PK_MAX_OBJS);
        return NULL;
    }
    pobj *o = calloc(1, sizeof *o);
    if (!o) {
        v->new_err = upres__fail(v->ctx, UPRES_ERR_NOMEM, "pickle: out of memory");
        return NULL;
    }
    o->kind = kind;
    o->next = v->objs;
    v->objs = o;
    v->nobjs++;
    return o;
}

static void vm_free(vm *v)
{
    for (pobj *o = v->objs, *n; o; o = n) {
        n = o->next;
        if (o->kind == K_TUPLE || o->kind == K_LIST || o->kind == K_DICT) free(o->u.a.v);
        free(o);
    }
    for (size_t i = 0; i < v->nst; i++) free(v->st[i].owned);
    free(v->st);
    free(v->hash);
    free(v->stack);
    free(v->marks);
    free(v->memo);
    memset(v, 0, sizeof *v);
}

/* Appends x to a TUPLE/LIST/DICT array. */
static int arr_push(vm *v, pobj *o, pobj *x)
{
    if (o->u.a.n == o->u.a.cap) {
        size_t cap = o->u.a.cap ? o->u.a.cap * 2 : 4;
        pobj **nv = realloc(o->u.a.v, cap * sizeof *nv); /* cap <= 2 * PK_MAX_STACK-ish */
        if (!nv) return upres__fail(v->ctx, UPRES_ERR_NOMEM, "pickle: out of memory");
        o->u.a.v = nv;
        o->u.a.cap = cap;
    }
    o->u.a.v[o->u.a.n++] = x;
    return UPRES_OK;
}

static int push(vm *v, pobj *o)
{
    if (!o) return v->new_err; /* vm_new recorded the detail */
    if (v->sp == v->scap) {
        if (v->scap >= PK_MAX_STACK)
            return upres__fail(v->ctx, UPRES_ERR_LIMIT, "pickle: stack deeper than %zu",
                               PK_MAX_STACK);
        size_t cap = v->scap ? v->scap * 2 : 64;
        pobj **ns = realloc(v->stack, cap * sizeof *ns);
        if (!ns) return upres__fail(v->ctx, UPRES_ERR_NOMEM, "pickle: out of memory");
        v->stack = ns;
        v->scap = cap;
    }
    v->stack[v->sp++] = o;
    return UPRES_OK;
}

/* Lowest stack index the current opcode may pop (above the last mark). */
static size_t floor_sp(const vm *v) { return v->nmarks ? v->marks[v->nmarks - 1] : 0; }

static int underflow(vm *v) { return upres__fail(v->ctx, UPRES_ERR_CORRUPT, "pickle: stack underflow"); }

/* Removes the last mark and gives its stack position (the items above it
 * stay on the stack for the caller). */
static int pop_mark(vm *v, size_t *pos)
{
    if (!v->nmarks) return upres__fail(v->ctx, UPRES_ERR_CORRUPT, "pickle: no mark");
    *pos = v->marks[--v->nmarks];
    return UPRES_OK;
}

static int make_tuple(vm *v, size_t from)
{
    pobj *t = vm_new(v, K_TUPLE);
    if (!t) return v->new_err;
    for (size_t i = from; i < v->sp; i++) {
        int st = arr_push(v, t, v->stack[i]);
        if (st) return st;
    }
    v->sp = from;
    return push(v, t);
}

/* ---- storages ------------------------------------------------------------ */

static uint64_t key_hash(const uint8_t *k, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ k[i]) * 1099511628211ull;
    return h;
}

/* Index of storage `key` in the table, or (size_t)-1. */
static size_t store_find(const vm *v, const uint8_t *k, size_t n)
{
    if (!v->hcap) return (size_t)-1;
    for (size_t h = (size_t)key_hash(k, n) & (v->hcap - 1);; h = (h + 1) & (v->hcap - 1)) {
        size_t s = v->hash[h];
        if (!s) return (size_t)-1;
        const pstore *p = &v->st[s - 1];
        if (p->key_len == n && memcmp(p->key, k, n) == 0) return s - 1;
    }
}

/* The table entry for `key`, created on first use; a later use must agree
 * on dtype and element count. */
static int store_get(vm *v, const uint8_t *k, size_t n, int dtype, uint64_t numel, size_t *idx)
{
    char nm[64];
    size_t i = store_find(v, k, n);
    if (i != (size_t)-1) {
        if (v->st[i].dtype != dtype || v->st[i].numel != numel) {
            printable(nm, sizeof nm, k, n);
            return upres__fail(v->ctx, UPRES_ERR_CORRUPT,
                               "pickle: storage %s is declared with two types or sizes", nm);
        }
        *idx = i;
        return UPRES_OK;
    }
    if (v->nst == v->stcap) {
        size_t cap = v->stcap ? v->stcap * 2 : 16;
        pstore *ns = realloc(v->st, cap * sizeof *ns); /* cap <= 2 * PK_MAX_OBJS */
        if (!ns) return upres__fail(v->ctx, UPRES_ERR_NOMEM, "pickle: out of memory");
        v->st = ns;
        v->stcap = cap;
    }
    /* Keep the hash table at most half full. */
    if ((v->nst + 1) * 2 > v->hcap) {
        size_t hc = v->hcap ? v->hcap * 2 : 32;
        size_t *nh = calloc(hc, sizeof *nh);
        if (!nh) return upres__fail(v->ctx, UPRES_ERR_NOMEM, "pickle: out of memory");
        for (size_t j = 0; j < v->nst; j++) {
            size_t h = (size_t)key_hash(v->st[j].key, v->st[j].key_len) & (hc - 1);
            while (nh[h]) h = (h + 1) & (hc - 1);
            nh[h] = j + 1;
        }
        free(v->hash);
        v->hash = nh;
        v->hcap = hc;
    }
    pstore *p = &v->st[v->nst];
    memset(p, 0, sizeof *p);
    p->key = k;
    p->key_len = n;
    p->dtype = dtype;
    p->numel = numel;
    size_t h = (size_t)key_hash(k, n) & (v->hcap - 1);
    while (v->hash[h]) h = (h + 1) & (v->hcap - 1);
    v->hash[h] = v->nst + 1;
    *idx = v->nst++;
    return UPRES_OK;
}

static int is_str(const pobj *o, const char *s)
{
    size_t n = strlen(s);
    return o->kind == K_STR && o->u.s.n == n && memcmp(o->u.s.p, s, n) == 0;
}

/* BINPERSID: ('storage', StorageType, key, location, numel[, view_metadata]). */
static int persistent_load(vm *v, pobj *pid)
{
    size_t want = v->legacy ? 6 : 5;
    if (pid->kind != K_TUPLE || pid->u.a.n < 1 || !is_str(pid->u.a.v[0], "storage"))
        return upres__fail(v->ctx, UPRES_ERR_UNSUPPORTED,
                           "pickle: persistent id is not a storage record");
    pobj **f = pid->u.a.v;
    if (pid->u.a.n != want || f[1]->kind != K_GLOBAL || f[2]->kind != K_STR ||
        f[3]->kind != K_STR || f[4]->kind != K_INT || f[4]->u.i < 0)
        return upres__fail(v->ctx, UPRES_ERR_CORRUPT, "pickle: malformed storage record");
    int dtype;
    switch (f[1]->u.g) {
    case G_FLOAT_STORAGE: dtype = DT_F32; break;
    case G_HALF_STORAGE: dtype = DT_F16; break;
    case G_BF16_STORAGE: dtype = DT_BF16; break;
    default:
        return upres__fail(v->ctx, UPRES_ERR_CORRUPT,
                           "pickle: storage record names %s.%s, not a storage type",
                           allowed[f[1]->u.g].module, allowed[f[1]->u.g].name);
    }
    uint64_t numel = (uint64_t)f[4]->u.i, off = 0, vn = numel;
    if (v->legacy && f[5]->kind != K_NONE) {
        /* (view_key, offset, view_size) in elements of the root storage. */
        pobj *m = f[5];
        if (m->kind != K_TUPLE || m->u.a.n != 3 || m->u.a.v[1]->kind != K_INT ||
            m->u.a.v[2]->kind != K_INT || m->u.a.v[1]->u.i < 0 || m->u.a.v[2]->u.i < 0 ||
            (uint64_t)m->u.a.v[1]->u.i > numel ||
            (uint64_t)m->u.a.v[2]->u.i > numel - (uint64_t)m->u.a.v[1]->u.i)
            return upres__fail(v->ctx, UPRES_ERR_CORRUPT, "pickle: malformed storage view");
        off = (uint64_t)m->u.a.v[1]->u.i;
        vn = (uint64_t)m->u.a.v[2]->u.i;
    }
    size_t idx = 0;
    int st = store_get(v, f[2]->u.s.p, f[2]->u.s.n, dtype, numel, &idx);
    if (st) return st;
    pobj *o = vm_new(v, K_STORAGE);
    if (!o) return v->new_err;
    o->u.st.idx = idx;
    o->u.st.off = off;
    o->u.st.numel = vn;
    return push(v, o);
}

/* ---- globals and REDUCE --------------------------------------------------- */

static int find_global(vm *v, const uint8_t *mod, size_t mn, const uint8_t *name, size_t nn)
{
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
        if (strlen(allowed[i].module) == mn && memcmp(allowed[i].module, mod, mn) == 0 &&
            strlen(allowed[i].name) == nn && memcmp(allowed[i].name, name, nn) == 0) {
            pobj *o = vm_new(v, K_GLOBAL);
            if (!o) return v->new_err;
            o->u.g = (int)i;
            return push(v, o);
        }
    char m[100], n[100];
    printable(m, sizeof m, mod, mn);
    printable(n, sizeof n, name, nn);
    if (strcmp(m, "torch") == 0 && nn > 7 && strcmp(n + strlen(n) - 7, "Storage") == 0)
        return upres__fail(v->ctx, UPRES_ERR_UNSUPPORTED,
                           "pickle: storage type torch.%s is not supported (only Float, Half and "
                           "BFloat16)",
                           n);
    return upres__fail(v->ctx, UPRES_ERR_UNSUPPORTED, "pickle: global %s.%s is not allowed", m, n);
}

static int int_tuple(const pobj *o, int64_t *out, int *n)
{
    if (o->kind != K_TUPLE || o->u.a.n > UPRES_SD_MAX_DIMS) return 0;
    for (size_t i = 0; i < o->u.a.n; i++) {
        if (o->u.a.v[i]->kind != K_INT || o->u.a.v[i]->u.i < 0) return 0;
        out[i] = o->u.a.v[i]->u.i;
    }
    *n = (int)o->u.a.n;
    return 1;
}

/* _rebuild_tensor(_v2)(storage, storage_offset, size, stride, ...): checks
 * that every element the view can reach lies inside the storage. */
static int rebuild_tensor(vm *v, pobj *args)
{
    pobj **a = args->u.a.v;
    int64_t shape[UPRES_SD_MAX_DIMS], stride[UPRES_SD_MAX_DIMS];
    int nd, ns;
    if (a[0]->kind != K_STORAGE || a[1]->kind != K_INT || a[1]->u.i < 0)
        return upres__fail(v->ctx, UPRES_ERR_CORRUPT, "pickle: malformed tensor record");
    if (!int_tuple(a[2], shape, &nd) || !int_tuple(a[3], stride, &ns) || nd != ns)
        return upres__fail(v->ctx, a[2]->kind == K_TUPLE && a[2]->u.a.n > UPRES_SD_MAX_DIMS
                                       ? UPRES_ERR_UNSUPPORTED
                                       : UPRES_ERR_CORRUPT,
                           "pickle: tensor size/stride are not %d or fewer non-negative ints",
                           UPRES_SD_MAX_DIMS);
    const pobj *s = a[0];
    uint64_t off = (uint64_t)a[1]->u.i, numel = 1, last = off;
    int bad = 0;
    for (int i = 0; i < nd; i++) {
        uint64_t span;
        bad |= __builtin_mul_overflow(numel, (uint64_t)shape[i], &numel);
        if (shape[i] > 0) {
            bad |= __builtin_mul_overflow((uint64_t)(shape[i] - 1), (uint64_t)stride[i], &span);
            bad |= __builtin_add_overflow(last, span, &last);
        }
    }
    if (bad)
        return upres__fail(v->ctx, UPRES_ERR_CORRUPT, "pickle: tensor size overflows");
    if (numel > 0 && last >= s->u.st.numel)
        return upres__fail(v->ctx, UPRES_ERR_CORRUPT,
                           "pickle: tensor reaches element %llu of a storage of %llu",
                           (unsigned long long)last, (unsigned long long)s->u.st.numel);
    pobj *t = vm_new(v, K_TENSOR);
    if (!t) return v->new_err;
    t->u.t.sidx = s->u.st.idx;
    t->u.t.off = s->u.st.off + off; /* cannot overflow: both within the root storage */
    t->u.t.ndim = nd;
    memcpy(t->u.t.shape, shape, sizeof shape);
    memcpy(t->u.t.stride, stride, sizeof stride);
    return push(v, t);
}

static int reduce(vm *v, pobj *fn, pobj *args)
{
    if (fn->kind != K_GLOBAL)
        return upres__fail(v->ctx, UPRES_ERR_UNSUPPORTED, "pickle: call of a %s",
                           kind_names[fn->kind]);
    if (args->kind != K_TUPLE)
        return upres__fail(v->ctx, UPRES_ERR_CORRUPT, "pickle: call arguments are not a tuple");
    size_t n = args->u.a.n;
    switch (fn->u.g) {
    case G_ORDERED_DICT:
        if (n != 0) break;
        return push(v, vm_new(v, K_DICT));
    case G_REBUILD_TENSOR_V2: /* (storage, offset, size, stride, requires_grad, hooks[, metadata]) */
        if (n != 6 && n != 7) break;
        return rebuild_tensor(v, args);
    case G_REBUILD_TENSOR:
        if (n != 4) break;
        return rebuild_tensor(v, args);
    case G_REBUILD_PARAMETER: /* (tensor, requires_grad, hooks) */
    case G_REBUILD_PARAMETER_STATE: /* (tensor, requires_grad, hooks, state) */
        if (n != (fn->u.g == G_REBUILD_PARAMETER ? 3u : 4u) || args->u.a.v[0]->kind != K_TENSOR)
            break;
        return push(v, args->u.a.v[0]);
    case G_TORCH_SIZE:
        if (n != 1 || args->u.a.v[0]->kind != K_TUPLE) break;
        return push(v, args->u.a.v[0]);
    default:
        break;
    }
    return upres__fail(v->ctx, UPRES_ERR_UNSUPPORTED, "pickle: unexpected call of %s.%s with %zu "
                       "arguments",
                       allowed[fn->u.g].module, allowed[fn->u.g].name, n);
}

/* ---- the machine ---------------------------------------------------------- */

static int memo_put(vm *v, uint64_t idx)
{
    if (v->sp == 0 || v->sp <= floor_sp(v)) return underflow(v);
    if (idx >= PK_MAX_MEMO)
        return upres__fail(v->ctx, UPRES_ERR_LIMIT, "pickle: memo index %llu too large",
                           (unsigned long long)idx);
    if (idx >= v->memo_cap) {
        size_t cap = v->memo_cap ? v->memo_cap : 64;
        while (cap <= idx) cap *= 2;
        pobj **nm = realloc(v->memo, cap * sizeof *nm);
        if (!nm) return upres__fail(v->ctx, UPRES_ERR_NOMEM, "pickle: out of memory");
        memset(nm + v->memo_cap, 0, (cap - v->memo_cap) * sizeof *nm);
        v->memo = nm;
        v->memo_cap = cap;
    }
    if (!v->memo[idx]) v->memo_count++;
    v->memo[idx] = v->stack[v->sp - 1];
    return UPRES_OK;
}

static int memo_get(vm *v, uint64_t idx)
{
    if (idx >= v->memo_cap || !v->memo[idx])
        return upres__fail(v->ctx, UPRES_ERR_CORRUPT, "pickle: memo entry %llu is not set",
                           (unsigned long long)idx);
    return push(v, v->memo[idx]);
}

/* Runs one pickle from p[0..n) to its STOP. *used = bytes consumed,
 * *result = the value (owned by v). Each run starts with an empty stack and
 * memo, like a fresh Unpickler; values of earlier runs stay valid. */
static int vm_run(vm *v, const uint8_t *p, size_t n, size_t *used, pobj **result)
{
    v->sp = 0;
    v->nmarks = 0;
    v->memo_count = 0;
    if (v->memo) memset(v->memo, 0, v->memo_cap * sizeof *v->memo);
    size_t pos = 0;
    int st = UPRES_OK;
/* Need k more bytes of operand. */
#define NEED(k)                                                                              \
    do {                                                                                     \
        if (n - pos < (uint64_t)(k))                                                         \
            return upres__fail(v->ctx, UPRES_ERR_CORRUPT, "pickle: truncated at byte %zu", pos); \
    } while (0)
/* Need k values above the last mark. */
#define POPN(k)                                                                              \
    do {                                                                                     \
        if (v->sp - floor_sp(v) < (size_t)(k)) return underflow(v);                          \
    } while (0)
    for (;;) {
        NEED(1);
        uint8_t op = p[pos++];
        switch (op) {
        case 0x80: /* PROTO */
            NEED(1);
            if (p[pos] < 2 || p[pos] > 5)
                return upres__fail(v->ctx, UPRES_ERR_UNSUPPORTED, "pickle: protocol %u",
                                   p[pos]);
            pos++;
            break;
        case 0x95: /* FRAME: a length hint only */
            NEED(8);
            pos += 8;
            break;
        case '}': st = push(v, vm_new(v, K_DICT)); break;
        case ']': st = push(v, vm_new(v, K_LIST)); break;
        case ')': st = push(v, vm_new(v, K_TUPLE)); break;
        case 'N': st = push(v, vm_new(v, K_NONE)); break;
        case 0x88: /* NEWTRUE */
        case 0x89: { /* NEWFALSE */
            pobj *o = vm_new(v, K_BOOL);
            if (o) o->u.i = op == 0x88;
            st = push(v, o);
            break;
        }
        case '(': /* MARK */
            if (v->nmarks == v->mcap) {
                if (v->mcap >= PK_MAX_MARKS)
                    return upres__fail(v->ctx, UPRES_ERR_LIMIT, "pickle: marks nested deeper "
                                                                "than %zu",
                                       PK_MAX_MARKS);
                size_t cap = v->mcap ? v->mcap * 2 : 16;
                size_t *nm = realloc(v->marks, cap * sizeof *nm);
                if (!nm) return upres__fail(v->ctx, UPRES_ERR_NOMEM, "pickle: out of memory");
                v->marks = nm;
                v->mcap = cap;
            }
            v->marks[v->nmarks++] = v->sp;
            break;
        case 'X': case 0x8c: case 0x8d: /* BINUNICODE, SHORT_BINUNICODE, BINUNICODE8 */
        case 'B': case 'C': case 0x8e: { /* BINBYTES, SHORT_BINBYTES, BINBYTES8 */
            uint64_t len;
            size_t w = (op == 'X' || op == 'B') ? 4 : (op == 0x8c || op == 'C') ? 1 : 8;
            NEED(w);
            len = w == 4 ? rd32(p + pos) : w == 1 ? p[pos] : rd64(p + pos);
            pos += w;
            NEED(len);
            pobj *o = vm_new(v, (op == 'X' || op == 0x8c || op == 0x8d) ? K_STR : K_BYTES);
            if (o) o->u.s.p = p + pos, o->u.s.n = (size_t)len;
            pos += (size_t)len;
            st = push(v, o);
            break;
        }
        case 'J': case 'K': case 'M': { /* BININT, BININT1, BININT2 */
            int64_t x;
            size_t w = op == 'J' ? 4 : op == 'K' ? 1 : 2;
            NEED(w);
            x = w == 4 ? (int32_t)rd32(p + pos) : w == 1 ? (int64_t)p[pos] : (int64_t)rd16(p + pos);
            pos += w;
            pobj *o = vm_new(v, K_INT);
            if (o) o->u.i = x;
            st = push(v, o);
            break;
        }
        case 0x8a: case 0x8b: { /* LONG1, LONG4: little-endian two's complement */
            uint64_t len;
            if (op == 0x8a) {
                NEED(1);
                len = p[pos];
                pos += 1;
            } else {
                NEED(4);
                int32_t l = (int32_t)rd32(p + pos);
                if (l < 0) return upres__fail(v->ctx, UPRES_ERR_CORRUPT, "pickle: negative LONG4");
                len = (uint64_t)l;
                pos += 4;
            }
            NEED(len);
            if (len > 64)
                return upres__fail(v->ctx, UPRES_ERR_UNSUPPORTED, "pickle: integer of %llu bytes",
                                   (unsigned long long)len);
            pobj *o;
            if (len <= 8) {
                o = vm_new(v, K_INT);
                uint64_t u = 0;
                for (size_t i = 0; i < len; i++) u |= (uint64_t)p[pos + i] << (8 * i);
                if (len && len < 8 && (p[pos + len - 1] & 0x80)) u |= ~(uint64_t)0 << (8 * len);
                if (o) memcpy(&o->u.i, &u, sizeof u);
            } else {
                o = vm_new(v, K_BIGINT);
                if (o) o->u.s.p = p + pos, o->u.s.n = (size_t)len;
            }
            pos += (size_t)len;
            st = push(v, o);
            break;
        }
        case 'G': { /* BINFLOAT, big-endian */
            NEED(8);
            uint64_t u = 0;
            for (int i = 0; i < 8; i++) u = u << 8 | p[pos + i];
            pos += 8;
            pobj *o = vm_new(v, K_FLOAT);
            if (o) memcpy(&o->u.f, &u, sizeof u);
            st = push(v, o);
            break;
        }
        case 't': { /* TUPLE */
            size_t from = 0;
            if ((st = pop_mark(v, &from))) return st;
            st = make_tuple(v, from);
            break;
        }
        case 0x85: case 0x86: case 0x87: { /* TUPLE1..3 */
            size_t k = (size_t)(op - 0x84);
            POPN(k);
            st = make_tuple(v, v->sp - k);
            break;
        }
        case 'c': { /* GLOBAL "module\nname\n" */
            const uint8_t *m = p + pos, *e1, *e2;
            size_t lim = n - pos < 2 * PK_MAX_GLOBAL_NAME ? n - pos : 2 * PK_MAX_GLOBAL_NAME;
            e1 = memchr(m, '\n', lim);
            if (!e1) return upres__fail(v->ctx, UPRES_ERR_CORRUPT, "pickle: bad GLOBAL");
            e2 = memchr(e1 + 1, '\n', lim - (size_t)(e1 + 1 - m));
            if (!e2) return upres__fail(v->ctx, UPRES_ERR_CORRUPT, "pickle: bad GLOBAL");
            pos = (size_t)(e2 + 1 - p);
            st = find_global(v, m, (size_t)(e1 - m), e1 + 1, (size_t)(e2 - e1 - 1));
            break;
        }
        case 0x93: { /* STACK_GLOBAL */
            POPN(2);
            pobj *m = v->stack[v->sp - 2], *nm = v->stack[v->sp - 1];
            if (m->kind != K_STR || nm->kind != K_STR)
                return upres__fail(v->ctx, UPRES_ERR_CORRUPT, "pickle: STACK_GLOBAL of non-strings");
            v->sp -= 2;
            st = find_global(v, m->u.s.p, m->u.s.n, nm->u.s.p, nm->u.s.n);
            break;
        }
        case 'R': case 0x81: { /* REDUCE, NEWOBJ: f(*args) / cls.__new__(cls, *args) */
            POPN(2);
            pobj *fn = v->stack[v->sp - 2], *args = v->stack[v->sp - 1];
            if (op == 0x81 && !(fn->kind == K_GLOBAL && fn->u.g == G_ORDERED_DICT))
                return upres__fail(v->ctx, UPRES_ERR_UNSUPPORTED,
                                   "pickle: NEWOBJ is only allowed for OrderedDict");
            v->sp -= 2;
            st = reduce(v, fn, args);
            break;
        }
        case 'b': { /* BUILD: only an OrderedDict's attributes (state dict _metadata) */
            POPN(2);
            pobj *obj = v->stack[v->sp - 2];
            if (obj->kind != K_DICT)
                return upres__fail(v->ctx, UPRES_ERR_UNSUPPORTED, "pickle: BUILD on a %s",
                                   kind_names[obj->kind]);
            v->sp -= 1;
            break;
        }
        case 'Q': { /* BINPERSID */
            POPN(1);
            pobj *pid = v->stack[--v->sp];
            st = persistent_load(v, pid);
            break;
        }
        case 'h': NEED(1); st = memo_get(v, p[pos]); pos += 1; break;
        case 'j': NEED(4); st = memo_get(v, rd32(p + pos)); pos += 4; break;
        case 'q': NEED(1); st = memo_put(v, p[pos]); pos += 1; break;
        case 'r': NEED(4); st = memo_put(v, rd32(p + pos)); pos += 4; break;
        case 0x94: st = memo_put(v, v->memo_count); break; /* MEMOIZE */
        case 's': { /* SETITEM */
            POPN(3);
            pobj *d = v->stack[v->sp - 3];
            if (d->kind != K_DICT)
                return upres__fail(v->ctx, UPRES_ERR_CORRUPT, "pickle: SETITEM on a %s",
                                   kind_names[d->kind]);
            if ((st = arr_push(v, d, v->stack[v->sp - 2]))) return st;
            if ((st = arr_push(v, d, v->stack[v->sp - 1]))) return st;
            v->sp -= 2;
            break;
        }
        case 'u': case 'e': { /* SETITEMS, APPENDS */
            size_t from = 0;
            if ((st = pop_mark(v, &from))) return st;
            if (from == 0 || from <= floor_sp(v) || from > v->sp) return underflow(v);
            pobj *d = v->stack[from - 1];
            if (d->kind != (op == 'u' ? K_DICT : K_LIST) ||
                (op == 'u' && (v->sp - from) % 2 != 0))
                return upres__fail(v->ctx, UPRES_ERR_CORRUPT, "pickle: %s on a %s",
                                   op == 'u' ? "SETITEMS" : "APPENDS", kind_names[d->kind]);
            for (size_t i = from; i < v->sp; i++)
                if ((st = arr_push(v, d, v->stack[i]))) return st;
            v->sp = from;
            break;
        }
        case 'a': { /* APPEND */
            POPN(2);
            pobj *l = v->stack[v->sp - 2];
            if (l->kind != K_LIST)
                return upres__fail(v->ctx, UPRES_ERR_CORRUPT, "pickle: APPEND on a %s",
                                   kind_names[l->kind]);
            if ((st = arr_push(v, l, v->stack[v->sp - 1]))) return st;
            v->sp -= 1;
            break;
        }
        case '0': POPN(1); v->sp--; break; /* POP */
        case '1': { /* POP_MARK */
            size_t from = 0;
            if ((st = pop_mark(v, &from))) return st;
            if (from > v->sp) return underflow(v);
            v->sp = from;
            break;
        }
        case '2': POPN(1); st = push(v, v->stack[v->sp - 1]); break; /* DUP */
        case '.': /* STOP */
            if (v->sp != 1 || v->nmarks)
                return upres__fail(v->ctx, UPRES_ERR_CORRUPT, "pickle: STOP with %zu values left",
                                   v->sp);
            *used = pos;
            *result = v->stack[0];
            return UPRES_OK;
        default:
            return upres__fail(v->ctx, UPRES_ERR_UNSUPPORTED,
                               "pickle: opcode 0x%02x at byte %zu is not supported", op, pos - 1);
        }
        if (st) return st;
    }
#undef NEED
#undef POPN
}

/* ------------------------------------------------------------------------ */
/* From the unpickled object to a state dict                                 */

/* The value stored under string key `k` in dict d, or NULL. */
static pobj *dict_get(const pobj *d, const char *k)
{
    pobj *r = NULL;
    for (size_t i = 0; i + 1 < d->u.a.n; i += 2)
        if (is_str(d->u.a.v[i], k)) r = d->u.a.v[i + 1]; /* later entries win, as in Python */
    return r;
}

/* Sets s->data to the storage's bytes (zip: <prefix>/data/<key>), checking
 * their length; records a detail and returns a status on failure. */
typedef int (*resolve_fn)(vm *v, pstore *s, void *user);

/* Copies tensor t into a new contiguous float array. */
static int materialize(vm *v, const pobj *t, float **out)
{
    const pstore *s = &v->st[t->u.t.sidx];
    uint64_t numel = 1;
    for (int i = 0; i < t->u.t.ndim; i++) numel *= (uint64_t)t->u.t.shape[i]; /* checked */
    float *f = malloc(numel ? (size_t)numel * sizeof *f : sizeof *f);
    if (!f) return upres__fail(v->ctx, UPRES_ERR_NOMEM, "pth: out of memory");
    *out = f;
    if (!numel) return UPRES_OK;
    size_t es = dt_size(s->dtype);
    int nd = t->u.t.ndim;
    /* Contiguous float32 on a little-endian host: one copy. */
    int contiguous = 1;
    int64_t expect = 1;
    for (int i = nd - 1; i >= 0; i--) {
        if (t->u.t.shape[i] != 1 && t->u.t.stride[i] != expect) contiguous = 0;
        expect *= t->u.t.shape[i];
    }
    if (contiguous && s->dtype == DT_F32 && host_little_endian()) {
        memcpy(f, s->data + t->u.t.off * 4, (size_t)numel * 4);
        return UPRES_OK;
    }
    /* Odometer over the index; rebuild_tensor proved every position is in range. */
    int64_t idx[UPRES_SD_MAX_DIMS] = {0};
    uint64_t pos = t->u.t.off;
    for (uint64_t k = 0; k < numel; k++) {
        f[k] = upres__sd_elem(s->dtype, s->data + pos * es);
        for (int d = nd - 1; d >= 0; d--) {
            if (++idx[d] < t->u.t.shape[d]) {
                pos += (uint64_t)t->u.t.stride[d];
                break;
            }
            pos -= (uint64_t)(t->u.t.shape[d] - 1) * (uint64_t)t->u.t.stride[d];
            idx[d] = 0;
        }
    }
    return UPRES_OK;
}

/* Picks params_ema / params / the top dict and converts its tensors. */
static int collect(vm *v, pobj *top, resolve_fn resolve, void *user, upres_statedict *out)
{
    if (top->kind != K_DICT)
        return upres__fail(v->ctx, UPRES_ERR_UNSUPPORTED, "pth: the file holds a %s, not a dict",
                           kind_names[top->kind]);
    const char *where = "the top-level dict";
    pobj *d = dict_get(top, "params_ema");
    if (d && d->kind == K_DICT) where = "params_ema";
    else if ((d = dict_get(top, "params")) && d->kind == K_DICT) where = "params";
    else d = top;

    const upres_limits *lim = upres__limits(v->ctx);
    uint64_t total = 0, declared = 0;
    int st;
    for (size_t i = 0; i + 1 < d->u.a.n; i += 2) {
        pobj *k = d->u.a.v[i], *t = d->u.a.v[i + 1];
        if (k->kind != K_STR || t->kind != K_TENSOR) continue;
        uint64_t numel = 1;
        for (int j = 0; j < t->u.t.ndim; j++) numel *= (uint64_t)t->u.t.shape[j];
        if (numel > (lim->max_memory_bytes - total) / sizeof(float) ||
            numel > SIZE_MAX / sizeof(float))
            return upres__fail(v->ctx, UPRES_ERR_LIMIT,
                               "pth: tensors need more than %llu bytes of memory",
                               (unsigned long long)lim->max_memory_bytes);
        pstore *s = &v->st[t->u.t.sidx];
        /* Views may overlap (stride 0), so a few stored bytes can declare any
         * number of elements: bound what the tensors declare, as the model
         * size limit promises, not just what the file holds. */
        if (numel > (lim->max_model_bytes - declared) / dt_size(s->dtype))
            return upres__fail(v->ctx, UPRES_ERR_LIMIT,
                               "pth: tensors declare more than the %llu-byte model size limit",
                               (unsigned long long)lim->max_model_bytes);
        total += numel * sizeof(float);
        declared += numel * dt_size(s->dtype);
        if (!s->data && (st = resolve(v, s, user))) return st;
        float *f = NULL;
        if ((st = materialize(v, t, &f))) return st;
        if ((st = upres__sd_push(v->ctx, out, (const char *)k->u.s.p, k->u.s.n, t->u.t.ndim,
                                 t->u.t.shape, f)))
            return st;
    }
    if (out->n == 0)
        return upres__fail(v->ctx, UPRES_ERR_UNSUPPORTED, "pth: no tensors in %s", where);
    return upres__sd_check_unique(v->ctx, out);
}

/* ------------------------------------------------------------------------ */
/* Containers                                                                */

typedef struct zip_user {
    const zipf *z;
    const uint8_t *prefix; /* "<name>/" */
    size_t prefix_len;
} zip_user;

static int zip_resolve(vm *v, pstore *s, void *user)
{
    const zip_user *zu = user;
    char nm[64];
    printable(nm, sizeof nm, s->key, s->key_len);
    /* Build "<prefix>data/<key>" as prefix + ("data/" + key). */
    size_t n = 5 + s->key_len;
    uint8_t *tail = malloc(n);
    if (!tail) return upres__fail(v->ctx, UPRES_ERR_NOMEM, "pth: out of memory");
    memcpy(tail, "data/", 5);
    memcpy(tail + 5, s->key, s->key_len);
    const zent *e = zip_find(zu->z, zu->prefix, zu->prefix_len, tail, n);
    free(tail);
    if (!e) return upres__fail(v->ctx, UPRES_ERR_CORRUPT, "pth: storage data/%s is missing", nm);
    const uint8_t *data;
    size_t len;
    int st = zip_read(v->ctx, zu->z, e, &data, &len, &s->owned);
    if (st) return st;
    uint64_t want = s->numel * dt_size(s->dtype); /* numel <= INT64_MAX, small factor */
    if (s->numel > UINT64_MAX / 4 || len != want)
        return upres__fail(v->ctx, UPRES_ERR_CORRUPT,
                           "pth: storage data/%s has %zu bytes, its record says %llu", nm, len,
                           (unsigned long long)want);
    s->data = data;
    return UPRES_OK;
}

static int load_zip(upres_ctx *ctx, const uint8_t *buf, size_t size, upres_statedict *out)
{
    zipf z;
    vm v;
    memset(&v, 0, sizeof v);
    v.ctx = ctx;
    uint8_t *pkl_owned = NULL;
    int st = zip_open(ctx, buf, size, &z);
    if (st) goto done;
    /* data.pkl sits in one top folder whose name is free ("archive", the file stem...). */
    const zent *pkl = NULL;
    for (size_t i = 0; i < z.n; i++) {
        const zent *e = &z.e[i];
        const uint8_t *slash = memchr(e->name, '/', e->name_len);
        if (slash && slash > e->name && (size_t)(e->name + e->name_len - slash) == 9 &&
            memcmp(slash + 1, "data.pkl", 8) == 0) {
            if (pkl) {
                st = upres__fail(ctx, UPRES_ERR_CORRUPT, "pth: several data.pkl in the zip");
                goto done;
            }
            pkl = e;
        }
    }
    if (!pkl) {
        st = upres__fail(ctx, UPRES_ERR_UNSUPPORTED, "pth: zip without a <name>/data.pkl");
        goto done;
    }
    zip_user zu = {&z, pkl->name, pkl->name_len - 8};
    const zent *bo = zip_find(&z, zu.prefix, zu.prefix_len, (const uint8_t *)"byteorder", 9);
    if (bo) {
        const uint8_t *d;
        size_t n;
        uint8_t *own;
        if ((st = zip_read(ctx, &z, bo, &d, &n, &own))) goto done;
        int little = n == 6 && memcmp(d, "little", 6) == 0;
        free(own);
        if (!little) {
            st = upres__fail(ctx, UPRES_ERR_UNSUPPORTED, "pth: big-endian tensors are not supported");
            goto done;
        }
    }
    const uint8_t *pk;
    size_t pn, used;
    if ((st = zip_read(ctx, &z, pkl, &pk, &pn, &pkl_owned))) goto done;
    pobj *top;
    if ((st = vm_run(&v, pk, pn, &used, &top))) goto done;
    st = collect(&v, top, zip_resolve, &zu, out);
done:
    vm_free(&v);
    free(pkl_owned);
    free(z.e);
    return st;
}

static int legacy_resolve(vm *v, pstore *s, void *user)
{
    (void)user;
    char nm[64];
    printable(nm, sizeof nm, s->key, s->key_len);
    return upres__fail(v->ctx, UPRES_ERR_CORRUPT, "pth: storage %s has no data record", nm);
}

static int load_legacy(upres_ctx *ctx, const uint8_t *buf, size_t size, upres_statedict *out)
{
    static const uint8_t magic[10] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
    vm v;
    memset(&v, 0, sizeof v);
    v.ctx = ctx;
    size_t pos = 0, used;
    pobj *o, *top, *keys;
    int st;
    if ((st = vm_run(&v, buf, size, &used, &o))) goto done;
    pos += used;
    if (o->kind != K_BIGINT || o->u.s.n != 10 || memcmp(o->u.s.p, magic, 10) != 0) {
        st = upres__fail(ctx, UPRES_ERR_UNKNOWN_FORMAT, "pth: legacy magic number missing");
        goto done;
    }
    if ((st = vm_run(&v, buf + pos, size - pos, &used, &o))) goto done;
    pos += used;
    if (o->kind != K_INT || o->u.i != 1001) {
        st = upres__fail(ctx, UPRES_ERR_UNSUPPORTED, "pth: legacy protocol version is not 1001");
        goto done;
    }
    if ((st = vm_run(&v, buf + pos, size - pos, &used, &o))) goto done;
    pos += used;
    if (o->kind != K_DICT) {
        st = upres__fail(ctx, UPRES_ERR_CORRUPT, "pth: legacy sys_info is not a dict");
        goto done;
    }
    pobj *le = dict_get(o, "little_endian");
    if (le && !(le->kind == K_BOOL && le->u.i == 1)) {
        st = upres__fail(ctx, UPRES_ERR_UNSUPPORTED, "pth: big-endian tensors are not supported");
        goto done;
    }
    v.legacy = 1;
    if ((st = vm_run(&v, buf + pos, size - pos, &used, &top))) goto done;
    pos += used;
    v.legacy = 0;
    if ((st = vm_run(&v, buf + pos, size - pos, &used, &keys))) goto done;
    pos += used;
    if (keys->kind != K_LIST) {
        st = upres__fail(ctx, UPRES_ERR_CORRUPT, "pth: legacy storage key list is not a list");
        goto done;
    }
    /* Records follow in list order: int64 element count, then the bytes. */
    for (size_t i = 0; i < keys->u.a.n; i++) {
        pobj *k = keys->u.a.v[i];
        char nm[64];
        if (k->kind != K_STR) {
            st = upres__fail(ctx, UPRES_ERR_CORRUPT, "pth: legacy storage key is not a string");
            goto done;
        }
        printable(nm, sizeof nm, k->u.s.p, k->u.s.n);
        size_t si = store_find(&v, k->u.s.p, k->u.s.n);
        if (si == (size_t)-1) {
            st = upres__fail(ctx, UPRES_ERR_CORRUPT, "pth: legacy storage %s is never used", nm);
            goto done;
        }
        pstore *s = &v.st[si];
        if (s->data) {
            st = upres__fail(ctx, UPRES_ERR_CORRUPT, "pth: legacy storage %s listed twice", nm);
            goto done;
        }
        if (size - pos < 8) {
            st = upres__fail(ctx, UPRES_ERR_CORRUPT, "pth: legacy storage %s is truncated", nm);
            goto done;
        }
        uint64_t numel = rd64(buf + pos);
        pos += 8;
        if (numel != s->numel) {
            st = upres__fail(ctx, UPRES_ERR_CORRUPT,
                             "pth: legacy storage %s holds %llu elements, its record says %llu",
                             nm, (unsigned long long)numel, (unsigned long long)s->numel);
            goto done;
        }
        size_t es = dt_size(s->dtype);
        if (numel > (size - pos) / es) {
            st = upres__fail(ctx, UPRES_ERR_CORRUPT, "pth: legacy storage %s is truncated", nm);
            goto done;
        }
        /* A zero-element storage still needs a non-NULL pointer to count as read. */
        s->data = numel ? buf + pos : buf;
        pos += (size_t)numel * es;
    }
    st = collect(&v, top, legacy_resolve, NULL, out);
done:
    vm_free(&v);
    return st;
}

int upres__pth_load(upres_ctx *ctx, const uint8_t *buf, size_t size, upres_statedict *out)
{
    if (!out) return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "pth: no output");
    out->t = NULL;
    out->n = 0;
    if (!buf) return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "pth: no input");
    int st;
    if (size >= 4 && buf[0] == 'P' && buf[1] == 'K' &&
        ((buf[2] == 3 && buf[3] == 4) || (buf[2] == 5 && buf[3] == 6)))
        st = load_zip(ctx, buf, size, out);
    else if (size >= 3 && buf[0] == 0x80 && buf[1] == 0x02 && buf[2] == 0x8a)
        st = load_legacy(ctx, buf, size, out);
    else
        st = upres__fail(ctx, UPRES_ERR_UNKNOWN_FORMAT, "pth: neither a zip nor a legacy pickle");
    if (st) upres__sd_free(out);
    return st;
}
