#!/usr/bin/python3
"""Writes the TIFF/WebP interoperability fixtures in tests/fixtures/tw/ with
Pillow (run with Debian's /usr/bin/python3: Pillow 9.4, numpy).

Every image is 13x7 and its pixels follow formulas that tests/test_io_tiff.c
and tests/test_io_webp.c recompute in C:
    r = (x*17 + y*5) & 255, g = (x*3 + y*29) & 255, b = (x*y*7 + 11) & 255,
    a = 255 - ((x + y) * 9)          (never 0: WebP may alter RGB under a = 0)
    v16 = (x*4099 + y*611 + 7) & 65535
    f   = (x - 6) * 0.25 + y * 0.125  (some values negative or above 1)
"""
import os

import numpy as np
from PIL import Image

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "tw")
W, H = 13, 7


def planes():
    y, x = np.mgrid[0:H, 0:W].astype(np.int64)
    r = (x * 17 + y * 5) & 255
    g = (x * 3 + y * 29) & 255
    b = (x * y * 7 + 11) & 255
    a = 255 - (x + y) * 9
    v16 = (x * 4099 + y * 611 + 7) & 65535
    f = (x - 6) * 0.25 + y * 0.125
    return r, g, b, a, v16, f


def main():
    os.makedirs(OUT, exist_ok=True)
    r, g, b, a, v16, f = planes()
    rgba = np.stack([r, g, b, a], axis=-1).astype(np.uint8)
    Image.fromarray(rgba, "RGBA").save(os.path.join(OUT, "pil_rgba_lzw.tif"), compression="tiff_lzw")
    # Big-endian 16-bit gray: exercises libtiff's byte swapping.
    be = Image.frombytes("I;16B", (W, H), v16.astype(">u2").tobytes())
    be.save(os.path.join(OUT, "pil_gray16_be.tif"))
    Image.fromarray(f.astype(np.float32), "F").save(os.path.join(OUT, "pil_float.tif"),
                                                    compression="tiff_adobe_deflate")
    Image.fromarray(rgba, "RGBA").save(os.path.join(OUT, "pil_lossless.webp"), lossless=True)


if __name__ == "__main__":
    main()
