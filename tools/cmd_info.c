/* `upres info FILE...`: what an image file holds (format, size, layout,
 * depth, ICC profile, orientation, ...), one "key: value" line each. */
#include "cli.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

const char cli_info_help[] =
    "usage: upres info FILE... [OPTIONS]\n"
    "\n"
    "Prints what each image file holds: format, size as stored and as displayed\n"
    "(after EXIF orientation), channels, sample depth, ICC profile, orientation,\n"
    "interlacing/progressive, frames, CMYK source.\n"
    "\n"
    "Example: upres info photo.jpg\n"
    "\n";

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Appends code point `c` to buf as UTF-8 (printable only; others become '?').
 * Returns the new length, never past cap-1. */
static size_t put_char(char *buf, size_t n, size_t cap, uint32_t c)
{
    char tmp[4];
    size_t k;
    if (c < 0x20 || c == 0x7f || (c >= 0xd800 && c <= 0xdfff)) c = '?';
    if (c < 0x80) {
        tmp[0] = (char)c;
        k = 1;
    } else if (c < 0x800) {
        tmp[0] = (char)(0xc0 | c >> 6);
        tmp[1] = (char)(0x80 | (c & 0x3f));
        k = 2;
    } else {
        tmp[0] = (char)(0xe0 | c >> 12);
        tmp[1] = (char)(0x80 | ((c >> 6) & 0x3f));
        tmp[2] = (char)(0x80 | (c & 0x3f));
        k = 3;
    }
    if (n + k >= cap) return n;
    memcpy(buf + n, tmp, k);
    return n + k;
}

/* The text of an ICC profile's 'desc' tag (v2 textDescriptionType or v4
 * multiLocalizedUnicodeType, first record) into buf; "" when absent or
 * malformed. Reads only within [icc, icc+size). */
static const char *icc_description(const uint8_t *icc, size_t size, char *buf, size_t cap)
{
    buf[0] = 0;
    if (!icc || size < 132) return buf;
    uint32_t count = be32(icc + 128);
    if (count > (size - 132) / 12) return buf;
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *e = icc + 132 + 12 * (size_t)i;
        if (memcmp(e, "desc", 4) != 0) continue;
        uint32_t off = be32(e + 4), len = be32(e + 8);
        if (off > size || len > size - off || len < 12) return buf;
        const uint8_t *t = icc + off;
        size_t n = 0;
        if (!memcmp(t, "desc", 4)) {
            uint32_t chars = be32(t + 8);
            if (chars > len - 12) chars = len - 12;
            for (uint32_t k = 0; k < chars && t[12 + k]; k++)
                n = put_char(buf, n, cap, t[12 + k] < 0x80 ? t[12 + k] : '?');
        } else if (!memcmp(t, "mluc", 4) && len >= 28) {
            uint32_t recs = be32(t + 8), rec_size = be32(t + 12);
            if (recs < 1 || rec_size < 12) return buf;
            uint32_t slen = be32(t + 20), soff = be32(t + 24);
            if (soff > len || slen > len - soff) return buf;
            for (uint32_t k = 0; k + 1 < slen; k += 2) {
                uint32_t c = (uint32_t)t[soff + k] << 8 | t[soff + k + 1];
                if (!c) break;
                n = put_char(buf, n, cap, c);
            }
        }
        while (n > 0 && buf[n - 1] == ' ') n--; /* fixed-width fields pad with spaces */
        buf[n] = 0;
        return buf;
    }
    return buf;
}

/* Meaning of an EXIF orientation value: what the viewer must do. */
static const char *orientation_meaning(int o)
{
    switch (o) {
    case 1: return "upright";
    case 2: return "mirrored horizontally";
    case 3: return "rotate 180\xc2\xb0";
    case 4: return "mirrored vertically";
    case 5: return "mirrored horizontally, then rotate 270\xc2\xb0 CW";
    case 6: return "rotate 90\xc2\xb0 CW";
    case 7: return "mirrored horizontally, then rotate 90\xc2\xb0 CW";
    case 8: return "rotate 270\xc2\xb0 CW";
    default: return "invalid";
    }
}

static const char *depth_name(const upres_file_info *info, char *buf, size_t cap)
{
    if (info->is_float) snprintf(buf, cap, "%d-bit float", info->bits_per_sample);
    else snprintf(buf, cap, "%d-bit", info->bits_per_sample);
    return buf;
}

static int info_one(const cli_global *g, upres_ctx *ctx, const char *path)
{
    upres_image *img = NULL;
    upres_file_info info;
    /* Orientation is not applied: the oriented size is computed, which
     * saves a rotation of the pixels we do not print. */
    int rc = cli_load(g, ctx, path, 0, &img, &info);
    if (rc != CLI_OK) return rc;
    char p[1024], b[256], d[32];
    struct stat st;
    printf("file:         %s\n", cli_clean(path, p, sizeof p));
    if (stat(path, &st) == 0) printf("file size:    %lld bytes\n", (long long)st.st_size);
    printf("format:       %s", upres_format_name(info.format));
    if (info.format == UPRES_FORMAT_WEBP) printf(" (%s)", info.lossless ? "lossless" : "lossy");
    printf("\n");
    int swap = info.orientation >= 5 && info.orientation <= 8;
    uint32_t ow = swap ? info.height : info.width, oh = swap ? info.width : info.height;
    if (ow != info.width || oh != info.height)
        printf("size:         %ux%u as stored, %ux%u as oriented\n", info.width, info.height, ow, oh);
    else
        printf("size:         %ux%u\n", info.width, info.height);
    printf("channels:     %u (%s%s)\n", info.channels, cli_channels_name(info.channels),
           info.cmyk ? ", converted from CMYK" : "");
    printf("depth:        %s", depth_name(&info, d, sizeof d));
    int decoded_bits = img->depth == UPRES_U8 ? 8 : img->depth == UPRES_U16 ? 16 : 32;
    if (decoded_bits != info.bits_per_sample)
        printf(" (read as %s)", img->depth == UPRES_U8    ? "8-bit"
                                : img->depth == UPRES_U16 ? "16-bit"
                                                          : "32-bit float");
    printf("\n");
    if (img->icc && img->icc_size) {
        icc_description(img->icc, img->icc_size, b, sizeof b);
        if (b[0]) printf("ICC profile:  %zu bytes, \"%s\"\n", img->icc_size, b);
        else printf("ICC profile:  %zu bytes\n", img->icc_size);
    } else {
        printf("ICC profile:  none\n");
    }
    printf("orientation:  %d (%s)\n", info.orientation, orientation_meaning(info.orientation));
    if (info.format == UPRES_FORMAT_PNG)
        printf("interlaced:   %s\n", info.interlaced ? "yes (Adam7)" : "no");
    else if (info.format == UPRES_FORMAT_JPEG)
        printf("progressive:  %s\n", info.interlaced ? "yes" : "no");
    printf("frames:       %d%s\n", info.frames,
           info.frames > 1 ? " (animated; upres reads the first)" : "");
    printf("CMYK source:  %s\n", info.cmyk ? "yes (converted to RGB)" : "no");
    upres_image_free(img);
    return CLI_OK;
}

int cli_info_main(cli_global *g, int argc, char **argv)
{
    cli_args a = {argc, argv, 0, "info", 0};
    int nfiles = 0;
    /* Operands are compacted to the front of argv: the write index never
     * passes the read index. */
    char **files = argv;
    while (a.i < a.argc) {
        const char *arg = a.argv[a.i];
        if (a.only_operands || arg[0] != '-' || !arg[1]) {
            files[nfiles++] = a.argv[a.i++];
            continue;
        }
        if (!strcmp(arg, "--")) {
            a.only_operands = 1;
            a.i++;
            continue;
        }
        int stop = -1, r = cli_global_option(&a, g, &stop);
        if (r == CLI_BAD) return CLI_USAGE;
        if (stop >= 0) return stop;
        if (r == CLI_NOMATCH) {
            char buf[64];
            return cli_usage_error(a.cmd, "unknown option '%s'", cli_clean(arg, buf, sizeof buf));
        }
    }
    if (nfiles == 0) return cli_usage_error(a.cmd, "missing the image file");
    upres_ctx *ctx = NULL;
    int rc = cli_make_ctx(g, &ctx);
    if (rc != CLI_OK) return rc;
    int failed = 0;
    for (int i = 0; i < nfiles; i++) {
        if (i > 0) printf("\n");
        if (info_one(g, ctx, files[i]) != CLI_OK) failed = 1;
        fflush(stdout);
    }
    cli_progress_clear();
    upres_ctx_free(ctx);
    return failed ? CLI_FAIL : CLI_OK;
}
