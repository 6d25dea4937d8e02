#!/usr/bin/python3
"""Generates the PNG/JPEG codec fixtures in tests/fixtures/io/.

Run with Debian's python (it has PIL):  /usr/bin/python3 tests/gen_io_fixtures.py
The output is deterministic: running it again rewrites identical files.

PNGs are written by the small encoder below (not PIL) so that every colour
type, bit depth and chunk layout can be produced exactly. Their pixel values
come from pattern() which tests/test_io_png.c recomputes (io_pattern()), so
the tests know the expected pixels without reference files. JPEGs are made
with PIL; where their decoded pixels are compared, PIL's own decode is stored
next to them as raw interleaved 8-bit samples (*.rgb / *.gray).
"""
import os
import struct
import zlib

from PIL import Image, ImageCms

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "io")


def pattern(x, y, c, bits):
    """Pseudo-random sample in [0, 2**bits); same formula as io_pattern() in C."""
    h = ((x * 131 + y * 197 + c * 71 + x * y * 13 + 7) * 2654435761) & 0xFFFFFFFF
    return h >> (32 - bits)


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def pack_row(samples, bits):
    """Packs one row of samples at `bits` per sample, MSB first, as PNG does."""
    if bits == 8:
        return bytes(samples)
    if bits == 16:
        return b"".join(struct.pack(">H", s) for s in samples)
    out, acc, n = bytearray(), 0, 0
    for s in samples:
        acc = (acc << bits) | s
        n += bits
        if n == 8:
            out.append(acc)
            acc, n = 0, 0
    if n:
        out.append(acc << (8 - n))
    return bytes(out)


def write_png(name, w, h, bits, ctype, rows, before=(), after=(), idat_parts=1, zcut=None):
    """rows: list of per-row sample lists (channels interleaved). zcut keeps
    only that many bytes of the zlib stream (with valid chunk CRCs)."""
    ihdr = struct.pack(">IIBBBBB", w, h, bits, ctype, 0, 0, 0)
    raw = b"".join(b"\x00" + pack_row(r, bits) for r in rows)
    z = zlib.compress(raw, 9)[:zcut]
    step = (len(z) + idat_parts - 1) // idat_parts
    idats = [chunk(b"IDAT", z[i:i + step]) for i in range(0, len(z), step)]
    data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + b"".join(before) + b"".join(idats)
            + b"".join(after) + chunk(b"IEND", b""))
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def grid(w, h, ch, bits, fix=None):
    rows = []
    for y in range(h):
        r = []
        for x in range(w):
            px = [pattern(x, y, c, bits) for c in range(ch)]
            if fix:
                px = fix(x, y, px)
            r.extend(px)
        rows.append(r)
    return rows


def exif_orientation(value):
    """A minimal big-endian TIFF structure with only the Orientation tag."""
    return (b"MM\x00\x2a" + struct.pack(">I", 8) + struct.pack(">H", 1)
            + struct.pack(">HHIHH", 0x0112, 3, 1, value, 0) + struct.pack(">I", 0))


def srgb_profile():
    icc = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    # lcms stamps the creation time into the header; pin it so reruns are
    # byte-identical. The profile ID (MD5) is zero, so nothing else changes.
    assert icc[84:100] == bytes(16)
    icc[24:36] = struct.pack(">6H", 2020, 1, 1, 0, 0, 0)
    return bytes(icc)


def main():
    os.makedirs(OUT, exist_ok=True)

    icc = srgb_profile()
    with open(os.path.join(OUT, "srgb.icc"), "wb") as f:
        f.write(icc)
    iccp = chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(icc, 9))
    write_png("icc_rgb.png", 16, 8, 8, 2, grid(16, 8, 3, 8), before=[iccp])

    # Low bit depth gray: expected value = pattern * 255 / (2**bits - 1).
    write_png("gray1.png", 13, 5, 1, 0, grid(13, 5, 1, 1))
    write_png("gray2.png", 11, 3, 2, 0, grid(11, 3, 1, 2))
    write_png("gray4.png", 13, 5, 4, 0, grid(13, 5, 1, 4))

    # Palettes: entry i = (i*16, 255-i*16, i*53 & 255); tRNS alpha i*25 for
    # the first 10 entries, the rest opaque.
    pal = b"".join(bytes([i * 16 & 255, (255 - i * 16) & 255, i * 53 & 255]) for i in range(16))
    trns = bytes(i * 25 for i in range(10))
    write_png("palette4_trns.png", 13, 7, 4, 3, grid(13, 7, 1, 4),
              before=[chunk(b"PLTE", pal), chunk(b"tRNS", trns)])
    write_png("palette2.png", 9, 5, 2, 3, grid(9, 5, 1, 2), before=[chunk(b"PLTE", pal[:12])])

    # tRNS on gray/RGB: pixels equal to the key become transparent.
    write_png("gray_trns.png", 12, 6, 8, 0,
              grid(12, 6, 1, 8, lambda x, y, p: [77] if (x + y) % 3 == 0 else p),
              before=[chunk(b"tRNS", struct.pack(">H", 77))])
    write_png("rgb_trns.png", 10, 6, 8, 2,
              grid(10, 6, 3, 8, lambda x, y, p: [10, 20, 30] if (x * y) % 4 == 1 else p),
              before=[chunk(b"tRNS", struct.pack(">HHH", 10, 20, 30))])
    write_png("gray16_trns.png", 7, 5, 16, 0,
              grid(7, 5, 1, 16, lambda x, y, p: [0x1234] if x == y else p),
              before=[chunk(b"tRNS", struct.pack(">H", 0x1234))])

    write_png("ga8.png", 9, 4, 8, 4, grid(9, 4, 2, 8))
    write_png("rgb16.png", 10, 6, 16, 2, grid(10, 6, 3, 16))
    write_png("rgba16.png", 10, 6, 16, 6, grid(10, 6, 4, 16))

    # eXIf after IDAT (allowed by the spec): orientation 3 = rotate 180.
    write_png("exif3.png", 6, 4, 8, 2, grid(6, 4, 3, 8),
              after=[chunk(b"eXIf", exif_orientation(3))])

    # Many ancillary chunks before and after a split IDAT: the target of the
    # bit-flip test (every flip must be detected).
    write_png("chunks.png", 7, 5, 8, 2, grid(7, 5, 3, 8),
              before=[chunk(b"gAMA", struct.pack(">I", 45455)),
                      chunk(b"pHYs", struct.pack(">IIB", 2835, 2835, 1)),
                      chunk(b"tEXt", b"Comment\x00bit flip target"),
                      chunk(b"eXIf", exif_orientation(1))],
              after=[chunk(b"tIME", struct.pack(">HBBBBB", 2020, 1, 2, 3, 4, 5)),
                     chunk(b"tEXt", b"Title\x00after IDAT")],
              idat_parts=2)

    # Damaged image data inside intact chunks: a zlib stream that holds one
    # row too few, and one cut in the middle. Both must be rejected.
    write_png("bad_short_idat.png", 8, 6, 8, 0, grid(8, 5, 1, 8))
    write_png("bad_cut_zlib.png", 8, 6, 8, 0, grid(8, 6, 1, 8), zcut=30)

    # JPEG with EXIF orientation 6 (rotate 90 CW to display): a red 16x16
    # block in the stored top-left of a 48x32 blue image.
    im = Image.new("RGB", (48, 32), (0, 0, 255))
    im.paste((255, 0, 0), (0, 0, 16, 16))
    ex = Image.Exif()
    ex[0x0112] = 6
    im.save(os.path.join(OUT, "exif6.jpg"), quality=95, exif=ex.tobytes())

    # Smooth RGB gradient, progressive; and a gray gradient. PIL's decode is
    # stored as the reference.
    im = Image.new("RGB", (32, 24))
    im.putdata([(x * 8, y * 10, 128 + (x - y) * 2) for y in range(24) for x in range(32)])
    im.save(os.path.join(OUT, "progressive.jpg"), quality=90, progressive=True)
    with open(os.path.join(OUT, "progressive.rgb"), "wb") as f:
        f.write(Image.open(os.path.join(OUT, "progressive.jpg")).convert("RGB").tobytes())

    im = Image.new("L", (24, 16))
    im.putdata([x * 10 + y * 3 for y in range(16) for x in range(24)])
    im.save(os.path.join(OUT, "gray.jpg"), quality=90)
    with open(os.path.join(OUT, "gray.gray"), "wb") as f:
        f.write(Image.open(os.path.join(OUT, "gray.jpg")).tobytes())

    # CMYK: eight solid 8x8 patches. PIL writes Adobe-inverted CMYK with an
    # APP14 marker; its own CMYK->RGB conversion is the expected result.
    patches = [(0, 0, 0, 0), (255, 0, 0, 0), (0, 255, 0, 0), (0, 0, 255, 0),
               (0, 0, 0, 255), (128, 64, 32, 16), (20, 200, 100, 60), (90, 90, 90, 90)]
    im = Image.new("CMYK", (32, 16))
    for i, p in enumerate(patches):
        im.paste(p, ((i % 4) * 8, (i // 4) * 8, (i % 4) * 8 + 8, (i // 4) * 8 + 8))
    im.save(os.path.join(OUT, "cmyk.jpg"), quality=95)
    with open(os.path.join(OUT, "cmyk.rgb"), "wb") as f:
        f.write(Image.open(os.path.join(OUT, "cmyk.jpg")).convert("RGB").tobytes())


if __name__ == "__main__":
    main()
