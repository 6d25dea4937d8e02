#!/usr/bin/python3
"""Writes the fixtures of tests/test_cli.c into tests/fixtures/cli/.

Run with Debian's python (it has PIL and numpy):  /usr/bin/python3 tests/gen_cli_fixtures.py
The output is deterministic: re-running it reproduces the committed files.

  cli_<name>.png                  resize inputs (8-bit RGB or gray, fixed-seed noise
                                  over smooth ramps, so every filter tap matters)
  cli_<name>_<filter>_<W>x<H>.png Pillow's Image.resize((W, H), filter) of that input,
                                  the reference the CLI must match within +-1
  cli_orient6.jpg                 16x8 JPEG whose EXIF orientation is 6 (rotate 90 CW):
                                  left half red, right half blue, as stored
  cli_anim.webp                   8x6 lossless animated WebP with 2 frames
"""
import os

import numpy as np
from PIL import Image

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "cli")

FILTERS = {
    "lanczos3": Image.Resampling.LANCZOS,
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
}

# (input name, mode, width, height, [(out w, out h), ...])
CASES = [
    ("rgb13x9", "RGB", 13, 9, [(31, 20)]),    # upscale, non-integer ratios
    ("rgb40x30", "RGB", 40, 30, [(17, 11)]),  # downscale (filter widened)
    ("gray11x7", "L", 11, 7, [(25, 16)]),     # gray upscale
]


def make_input(mode, w, h, seed):
    rng = np.random.RandomState(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    chans = 3 if mode == "RGB" else 1
    planes = []
    for c in range(chans):
        ramp = 255.0 * (0.5 + 0.4 * np.sin(xx * (0.7 + 0.3 * c) + yy * (0.4 - 0.2 * c)))
        noise = rng.randint(-60, 61, size=(h, w))
        planes.append(np.clip(ramp + noise, 0, 255).astype(np.uint8))
    arr = np.stack(planes, axis=-1) if chans == 3 else planes[0]
    return Image.fromarray(arr, mode)


def save_png(img, name):
    # No optional chunks: the bytes depend only on the pixels.
    img.save(os.path.join(OUT, name), format="PNG", optimize=False, compress_level=9)


def main():
    os.makedirs(OUT, exist_ok=True)
    for i, (name, mode, w, h, sizes) in enumerate(CASES):
        src = make_input(mode, w, h, 1000 + i)
        save_png(src, "cli_%s.png" % name)
        for fname, f in FILTERS.items():
            for ow, oh in sizes:
                save_png(src.resize((ow, oh), f), "cli_%s_%s_%dx%d.png" % (name, fname, ow, oh))

    img = Image.new("RGB", (16, 8), (220, 20, 20))
    img.paste((20, 20, 220), (8, 0, 16, 8))
    exif = Image.Exif()
    exif[0x0112] = 6
    img.save(os.path.join(OUT, "cli_orient6.jpg"), format="JPEG", quality=95,
             subsampling=0, exif=exif.tobytes())

    frames = [Image.new("RGBA", (8, 6), (255, 0, 0, 255)), Image.new("RGBA", (8, 6), (0, 0, 255, 128))]
    frames[0].save(os.path.join(OUT, "cli_anim.webp"), format="WEBP", save_all=True,
                   append_images=frames[1:], duration=100, loop=0, lossless=True)


if __name__ == "__main__":
    main()
