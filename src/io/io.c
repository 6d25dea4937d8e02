/* Format detection, decode/encode dispatch, file reading, atomic writes. */
#include "io_internal.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

upres_format upres_format_from_magic(const void *buf, size_t n)
{
    const uint8_t *p = buf;
    if (!p) return UPRES_FORMAT_UNKNOWN;
    if (n >= 8 && memcmp(p, "\x89PNG\r\n\x1a\n", 8) == 0) return UPRES_FORMAT_PNG;
    if (n >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF) return UPRES_FORMAT_JPEG;
    if (n >= 4 && (memcmp(p, "II*\0", 4) == 0 || memcmp(p, "MM\0*", 4) == 0 ||
                   memcmp(p, "II+\0", 4) == 0 || memcmp(p, "MM\0+", 4) == 0))
        return UPRES_FORMAT_TIFF;
    if (n >= 12 && memcmp(p, "RIFF", 4) == 0 && memcmp(p + 8, "WEBP", 4) == 0)
        return UPRES_FORMAT_WEBP;
    return UPRES_FORMAT_UNKNOWN;
}

upres_format upres_format_from_path(const char *path)
{
    if (!path) return UPRES_FORMAT_UNKNOWN;
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(slash ? slash : path, '.');
    if (!dot) return UPRES_FORMAT_UNKNOWN;
    char ext[8];
    size_t i = 0;
    for (dot++; *dot && i < sizeof ext - 1; dot++) ext[i++] = (char)tolower((unsigned char)*dot);
    if (*dot) return UPRES_FORMAT_UNKNOWN;
    ext[i] = 0;
    if (!strcmp(ext, "png")) return UPRES_FORMAT_PNG;
    if (!strcmp(ext, "jpg") || !strcmp(ext, "jpeg") || !strcmp(ext, "jpe") || !strcmp(ext, "jfif"))
        return UPRES_FORMAT_JPEG;
    if (!strcmp(ext, "tif") || !strcmp(ext, "tiff")) return UPRES_FORMAT_TIFF;
    if (!strcmp(ext, "webp")) return UPRES_FORMAT_WEBP;
    return UPRES_FORMAT_UNKNOWN;
}

const char *upres_format_name(upres_format f)
{
    switch (f) {
    case UPRES_FORMAT_PNG: return "PNG";
    case UPRES_FORMAT_JPEG: return "JPEG";
    case UPRES_FORMAT_TIFF: return "TIFF";
    case UPRES_FORMAT_WEBP: return "WebP";
    default: return "unknown";
    }
}

upres_decode_desc upres_decode_desc_defaults(void)
{
    upres_decode_desc d;
    memset(&d, 0, sizeof d);
    d.apply_orientation = 1;
    return d;
}

upres_encode_desc upres_encode_desc_defaults(void)
{
    upres_encode_desc d;
    memset(&d, 0, sizeof d);
    d.format = UPRES_FORMAT_UNKNOWN;
    d.quality = 95;
    d.chroma_444 = 1;
    d.png_compression = 6;
    d.webp_lossless = 0;
    d.bit_depth = 0;
    d.write_icc = 1;
    d.background = 1.0f;
    return d;
}

int upres__membuf_append(upres_membuf *b, const void *data, size_t n)
{
    if (b->failed) return UPRES_ERR_NOMEM;
    size_t need;
    if (!upres__add_size(b->size, n, &need)) {
        b->failed = 1;
        return UPRES_ERR_OVERFLOW;
    }
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 65536;
        while (cap < need) {
            if (cap > SIZE_MAX / 2) {
                cap = need;
                break;
            }
            cap *= 2;
        }
        uint8_t *nd = realloc(b->data, cap);
        if (!nd) {
            b->failed = 1;
            return UPRES_ERR_NOMEM;
        }
        b->data = nd;
        b->cap = cap;
    }
    if (n) memcpy(b->data + b->size, data, n);
    b->size = need;
    return UPRES_OK;
}

int upres__icc_fits_decoded(const uint8_t *icc, size_t size, uint32_t channels)
{
    int icc_ch = upres__icc_channels(icc, size);
    return !icc || icc_ch == 0 || icc_ch == (channels >= 3 ? 3 : 1);
}

int upres_decode(upres_ctx *ctx, const void *buf, size_t size, const upres_decode_desc *desc,
                 upres_image **out, upres_file_info *info)
{
    upres__clear_error(ctx);
    if (!out) return UPRES_ERR_INVALID_ARG;
    *out = NULL;
    if (!buf && size) return UPRES_ERR_INVALID_ARG;
    upres_decode_desc d = desc ? *desc : upres_decode_desc_defaults();
    upres_file_info local;
    if (!info) info = &local;
    memset(info, 0, sizeof *info);
    info->frames = 1;
    info->orientation = 1;
    upres_format fmt = upres_format_from_magic(buf, size);
    info->format = fmt;
    upres_decode_fn fn;
    switch (fmt) {
    case UPRES_FORMAT_PNG: fn = upres__png_decode; break;
    case UPRES_FORMAT_JPEG: fn = upres__jpeg_decode; break;
    case UPRES_FORMAT_TIFF: fn = upres__tiff_decode; break;
    case UPRES_FORMAT_WEBP: fn = upres__webp_decode; break;
    default:
        return upres__fail(ctx, UPRES_ERR_UNKNOWN_FORMAT,
                           size == 0 ? "the file is empty"
                                     : "not PNG, JPEG, TIFF or WebP (judged by its first bytes)");
    }
    upres_image *img = NULL;
    int st = fn(ctx, buf, size, &img, info);
    if (st != UPRES_OK) {
        upres_image_free(img);
        return st;
    }
    /* A profile for another colour model (a CMYK profile on pixels converted
     * to RGB, an RGB one on gray) would be wrong to carry on: drop it. */
    if (!upres__icc_fits_decoded(img->icc, img->icc_size, img->channels))
        upres__image_take_icc(img, NULL, 0);
    info->channels = img->channels;
    info->icc_size = img->icc_size;
    if (img->orientation < 1 || img->orientation > 8) img->orientation = 1;
    info->orientation = img->orientation;
    if (d.apply_orientation && img->orientation != 1) {
        st = upres_image_apply_orientation(img);
        if (st != UPRES_OK) {
            upres_image_free(img);
            return upres__fail(ctx, st, "applying EXIF orientation");
        }
    }
    *out = img;
    return UPRES_OK;
}

int upres__read_fd(upres_ctx *ctx, int fd, uint64_t max, uint8_t **out, size_t *size)
{
    *out = NULL;
    *size = 0;
    struct stat st;
    if (fstat(fd, &st) != 0) return upres__fail(ctx, UPRES_ERR_IO, "%s", strerror(errno));
    if (S_ISDIR(st.st_mode)) return upres__fail(ctx, UPRES_ERR_IO, "is a directory");
    if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > max)
        return upres__fail(ctx, UPRES_ERR_LIMIT, "file of %lld bytes exceeds the %llu-byte limit",
                           (long long)st.st_size, (unsigned long long)max);
    /* A descriptor that was read through before (the streaming reader
     * falling back to a whole decode) starts over; pipes cannot, and need
     * not. */
    if (S_ISREG(st.st_mode) && lseek(fd, 0, SEEK_SET) != 0)
        return upres__fail(ctx, UPRES_ERR_IO, "%s", strerror(errno));
    size_t cap = S_ISREG(st.st_mode) && st.st_size > 0 ? (size_t)st.st_size + 1 : 65536, n = 0;
    uint8_t *buf = malloc(cap);
    if (!buf) return upres__fail(ctx, UPRES_ERR_NOMEM, "reading %zu bytes", cap);
    for (;;) {
        if (n == cap) {
            if ((uint64_t)cap > max) {
                free(buf);
                return upres__fail(ctx, UPRES_ERR_LIMIT, "file exceeds the %llu-byte limit",
                                   (unsigned long long)max);
            }
            size_t ncap = cap * 2;
            uint8_t *nb = realloc(buf, ncap);
            if (!nb) {
                free(buf);
                return upres__fail(ctx, UPRES_ERR_NOMEM, "reading the file");
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            free(buf);
            return upres__fail(ctx, UPRES_ERR_IO, "%s", strerror(e));
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    if ((uint64_t)n > max) {
        free(buf);
        return upres__fail(ctx, UPRES_ERR_LIMIT, "file exceeds the %llu-byte limit",
                           (unsigned long long)max);
    }
    *out = buf;
    *size = n;
    return UPRES_OK;
}

int upres_load(upres_ctx *ctx, const char *path, const upres_decode_desc *desc,
               upres_image **out, upres_file_info *info)
{
    upres__clear_error(ctx);
    if (!out) return UPRES_ERR_INVALID_ARG;
    *out = NULL;
    if (!path) return UPRES_ERR_INVALID_ARG;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return upres__fail(ctx, UPRES_ERR_IO, "%s", strerror(errno));
    uint8_t *buf;
    size_t size;
    int st = upres__read_fd(ctx, fd, upres__limits(ctx)->max_file_bytes, &buf, &size);
    close(fd);
    if (st != UPRES_OK) return st;
    st = upres_decode(ctx, buf, size, desc, out, info);
    free(buf);
    return st;
}

void upres__target_layout(uint32_t c, upres_depth src_depth, const upres_encode_desc *d,
                          upres_depth *depth, uint32_t *channels)
{
    int hi = src_depth != UPRES_U8;
    switch (d->format) {
    case UPRES_FORMAT_PNG:
        *channels = c;
        *depth = d->bit_depth == 16 ? UPRES_U16 : d->bit_depth == 8 ? UPRES_U8 : hi ? UPRES_U16 : UPRES_U8;
        break;
    case UPRES_FORMAT_JPEG:
        *channels = c <= 2 ? 1 : 3;
        *depth = UPRES_U8;
        break;
    case UPRES_FORMAT_TIFF:
        *channels = c;
        if (d->bit_depth == 32) *depth = UPRES_F32;
        else if (d->bit_depth == 16) *depth = UPRES_U16;
        else if (d->bit_depth == 8) *depth = UPRES_U8;
        else *depth = src_depth;
        break;
    default: /* WebP */
        *channels = (c == 2 || c == 4) ? 4 : 3;
        *depth = UPRES_U8;
        break;
    }
}

int upres__encode_check(upres_ctx *ctx, const upres_encode_desc *desc)
{
    if (desc->quality < 1 || desc->quality > 100 || desc->png_compression < 0 ||
        desc->png_compression > 9)
        return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "quality must be 1..100, compression 0..9");
    if (desc->bit_depth != 0 && desc->bit_depth != 8 && desc->bit_depth != 16 &&
        desc->bit_depth != 32)
        return upres__fail(ctx, UPRES_ERR_INVALID_ARG, "bit depth must be 8, 16 or 32");
    if (desc->bit_depth == 32 && desc->format != UPRES_FORMAT_TIFF)
        return upres__fail(ctx, UPRES_ERR_UNSUPPORTED, "32-bit float output needs TIFF");
    if (desc->bit_depth == 16 && desc->format != UPRES_FORMAT_PNG && desc->format != UPRES_FORMAT_TIFF)
        return upres__fail(ctx, UPRES_ERR_UNSUPPORTED, "16-bit output needs PNG or TIFF");
    switch (desc->format) {
    case UPRES_FORMAT_PNG:
    case UPRES_FORMAT_JPEG:
    case UPRES_FORMAT_TIFF:
    case UPRES_FORMAT_WEBP: return UPRES_OK;
    default:
        return upres__fail(ctx, UPRES_ERR_UNSUPPORTED,
                           "unknown output format (use .png, .jpg, .tif or .webp)");
    }
}

void upres__encode_icc(const upres_encode_desc *desc, const uint8_t *icc, size_t icc_size,
                       uint32_t src_channels, uint32_t dst_channels, const uint8_t **out,
                       size_t *out_size)
{
    *out = NULL;
    *out_size = 0;
    int color = dst_channels >= 3;
    /* upres_image_convert keeps the profile only within its colour model. */
    if (!desc->write_icc || !icc || !icc_size || (src_channels >= 3) != color) return;
    int icc_ch = upres__icc_channels(icc, icc_size);
    if ((icc_ch == 1 && !color) || (icc_ch == 3 && color)) {
        *out = icc;
        *out_size = icc_size;
    }
}

int upres_encode(upres_ctx *ctx, const upres_image *img, const upres_encode_desc *desc,
                 void **out, size_t *out_size)
{
    upres__clear_error(ctx);
    if (!out || !out_size) return UPRES_ERR_INVALID_ARG;
    *out = NULL;
    *out_size = 0;
    if (!img || !desc || !img->data || img->channels < 1 || img->channels > 4 ||
        !upres_depth_bytes(img->depth) || img->width == 0 || img->height == 0)
        return UPRES_ERR_INVALID_ARG;
    int st = upres__encode_check(ctx, desc);
    if (st != UPRES_OK) return st;
    upres_encode_fn fn;
    switch (desc->format) {
    case UPRES_FORMAT_PNG: fn = upres__png_encode; break;
    case UPRES_FORMAT_JPEG: fn = upres__jpeg_encode; break;
    case UPRES_FORMAT_TIFF: fn = upres__tiff_encode; break;
    default: fn = upres__webp_encode; break;
    }
    upres_depth depth;
    uint32_t channels;
    upres__target_layout(img->channels, img->depth, desc, &depth, &channels);
    const upres_image *use = img;
    upres_image *conv = NULL;
    if (depth != img->depth || channels != img->channels) {
        st = upres_image_convert(img, depth, channels, desc->background, &conv);
        if (st != UPRES_OK) return upres__fail(ctx, st, "converting for %s", upres_format_name(desc->format));
        use = conv;
    }
    const uint8_t *icc;
    size_t icc_size;
    upres__encode_icc(desc, img->icc, img->icc_size, img->channels, use->channels, &icc, &icc_size);
    uint8_t *buf = NULL;
    size_t n = 0;
    st = fn(ctx, use, desc, icc, icc_size, &buf, &n);
    upres_image_free(conv);
    if (st != UPRES_OK) {
        free(buf);
        return st;
    }
    *out = buf;
    *out_size = n;
    return UPRES_OK;
}

int upres__write_all(int fd, const void *data, size_t n)
{
    const uint8_t *p = data;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        if (w == 0) return EIO; /* no progress: do not spin */
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int upres__tmp_create(upres_ctx *ctx, const char *path, upres__tmpfile *tf)
{
    tf->tmp = NULL;
    tf->fd = -1;
    if (!path || !*path) return UPRES_ERR_INVALID_ARG;
    /* The temporary file sits in the target's folder so rename() is atomic.
     * Its name is short and fixed-length (the target's own name may already
     * be as long as the file system allows) and starts with a dot so a
     * half-written file is not mistaken for a result. open() with mode 0666
     * lets the kernel apply the umask: reading the umask would mean changing
     * it, which is process-wide and racy. */
    const char *slash = strrchr(path, '/');
    size_t dirlen = slash ? (size_t)(slash - path) + 1 : 0, cap;
    if (!upres__add_size(dirlen, 32, &cap)) return UPRES_ERR_OVERFLOW;
    char *tmp = malloc(cap);
    if (!tmp) return upres__fail(ctx, UPRES_ERR_NOMEM, "out of memory");
    memcpy(tmp, path, dirlen);
    static atomic_uint counter;
    int fd = -1;
    for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        unsigned r = (unsigned)ts.tv_nsec ^ (unsigned)getpid() * 2654435761u ^
                     atomic_fetch_add(&counter, 1) * 40503u;
        snprintf(tmp + dirlen, cap - dirlen, ".upres-%08x.tmp", r);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST) break;
    }
    if (fd < 0) {
        int err = errno;
        free(tmp);
        int dl = dirlen > 1 ? (int)(dirlen - 1) : (int)dirlen;
        return upres__fail(ctx, UPRES_ERR_IO, "cannot create a temporary file in '%.*s': %s",
                           dl > 0 ? dl : 1, dl > 0 ? path : ".", strerror(err));
    }
    tf->tmp = tmp;
    tf->fd = fd;
    return UPRES_OK;
}

int upres__tmp_commit(upres_ctx *ctx, const char *path, upres__tmpfile *tf)
{
    int err = 0;
    /* fsync before rename: otherwise a crash can leave an empty target on
     * file systems that delay allocation. */
    if (fsync(tf->fd) != 0 && errno != EINVAL && errno != EROFS) err = errno;
    if (close(tf->fd) != 0 && !err) err = errno;
    tf->fd = -1;
    if (!err && rename(tf->tmp, path) != 0) err = errno;
    if (err) unlink(tf->tmp);
    free(tf->tmp);
    tf->tmp = NULL;
    if (err) return upres__fail(ctx, UPRES_ERR_IO, "writing '%s': %s", path, strerror(err));
    return UPRES_OK;
}

void upres__tmp_discard(upres__tmpfile *tf)
{
    if (tf->fd >= 0) close(tf->fd);
    if (tf->tmp) unlink(tf->tmp);
    free(tf->tmp);
    tf->tmp = NULL;
    tf->fd = -1;
}

int upres_write_file_atomic(upres_ctx *ctx, const char *path, const void *data, size_t size)
{
    if (!path || !*path || (!data && size)) return UPRES_ERR_INVALID_ARG;
    upres__tmpfile tf;
    int st = upres__tmp_create(ctx, path, &tf);
    if (st != UPRES_OK) return st;
    int err = upres__write_all(tf.fd, data, size);
    if (err) {
        upres__tmp_discard(&tf);
        return upres__fail(ctx, UPRES_ERR_IO, "writing '%s': %s", path, strerror(err));
    }
    return upres__tmp_commit(ctx, path, &tf);
}

int upres_save(upres_ctx *ctx, const upres_image *img, const char *path,
               const upres_encode_desc *desc)
{
    upres__clear_error(ctx);
    if (!path || !img) return UPRES_ERR_INVALID_ARG;
    upres_encode_desc d = desc ? *desc : upres_encode_desc_defaults();
    if (d.format == UPRES_FORMAT_UNKNOWN) d.format = upres_format_from_path(path);
    void *buf;
    size_t n;
    int st = upres_encode(ctx, img, &d, &buf, &n);
    if (st != UPRES_OK) return st;
    st = upres_write_file_atomic(ctx, path, buf, n);
    free(buf);
    return st;
}
