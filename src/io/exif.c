/* A bounds-checked reader for the one EXIF field we need: Orientation (0x0112)
 * in IFD0 of the TIFF structure inside an EXIF block. */
#include "io_internal.h"

#include <string.h>

static unsigned rd16(const uint8_t *p, int le) { return le ? p[0] | p[1] << 8 : p[0] << 8 | p[1]; }
static uint32_t rd32(const uint8_t *p, int le)
{
    return le ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24
              : (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

int upres__exif_orientation(const uint8_t *d, size_t n)
{
    if (!d) return 1;
    if (n >= 6 && memcmp(d, "Exif\0\0", 6) == 0) {
        d += 6;
        n -= 6;
    }
    if (n < 8) return 1;
    int le;
    if (d[0] == 'I' && d[1] == 'I') le = 1;
    else if (d[0] == 'M' && d[1] == 'M') le = 0;
    else return 1;
    if (rd16(d + 2, le) != 42) return 1;
    uint32_t ifd = rd32(d + 4, le);
    if (ifd > n - 2 || ifd < 8) return 1;
    unsigned count = rd16(d + ifd, le);
    size_t pos = (size_t)ifd + 2;
    for (unsigned i = 0; i < count; i++, pos += 12) {
        if (pos + 12 > n) return 1;
        if (rd16(d + pos, le) != 0x0112) continue;
        unsigned type = rd16(d + pos + 2, le);
        uint32_t cnt = rd32(d + pos + 4, le);
        if (type != 3 || cnt < 1) return 1; /* SHORT */
        unsigned v = rd16(d + pos + 8, le);
        return v >= 1 && v <= 8 ? (int)v : 1;
    }
    return 1;
}
