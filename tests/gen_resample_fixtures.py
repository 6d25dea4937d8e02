#!/usr/bin/python3
"""Generates tests/fixtures/resample/: synthetic inputs and reference outputs
for tests/test_resample.c.

Run with Debian's python (Pillow 9.4 + numpy):  /usr/bin/python3 tests/gen_resample_fixtures.py
The output is deterministic (fixed seeds), so re-running reproduces the
committed files byte for byte.

File format ("URAW"): 16-byte header -- magic b"URAW", then width, height,
channels as little-endian uint32 -- followed by width*height*channels bytes
(8-bit samples, rows top to bottom, interleaved channels).

cases.txt: one case per line,
    name input filter out_w out_h box_x box_y box_w box_h expected tol alpha_min paths
box all zero = whole image; tol = allowed |difference| per sample in 8-bit
levels; for images with alpha, colour samples are compared only where the
expected alpha is >= alpha_min (alpha itself is always compared with +-1).
paths: "u8" = compare the 8-bit result; "float" = a double-precision reference
without intermediate rounding, compared with the u16 and f32 results.

References: Pillow's Image.resize for lanczos3/bicubic/bilinear/box/nearest;
for mitchell (which Pillow lacks) an independent numpy implementation of the
same separable scheme in double precision, with the intermediate rounded to
8 bits (for the u8 path) or not (for the float paths; also for lanczos3 and
bicubic, whose Pillow outputs clip the intermediate).
"""
import os
import struct
import sys

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures", "resample")

PIL_FILTERS = {
    "lanczos3": Image.LANCZOS,
    "bicubic": Image.BICUBIC,
    "bilinear": Image.BILINEAR,
    "box": Image.BOX,
    "nearest": Image.NEAREST,
}
MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def write_raw(path, arr):
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    h, w, c = arr.shape
    with open(path, "wb") as f:
        f.write(b"URAW" + struct.pack("<III", w, h, c))
        f.write(arr.tobytes())


def synth(w, h, c, seed):
    """Noise + gradients + hard edges, so that ringing overshoots and the
    clipping paths are exercised."""
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    out = np.empty((h, w, c))
    for ch in range(c):
        g = 255.0 * (x / max(w - 1, 1)) * (0.3 + 0.7 * ch / max(c - 1, 1))
        g += 120.0 * (y / max(h - 1, 1))
        edges = np.where(((x.astype(int) // (3 + ch)) + (y.astype(int) // 4)) % 2 == 0, 255.0, 0.0)
        mix = np.where((x + 2 * y) % 11 < 5, edges, g)
        out[:, :, ch] = mix + rng.normal(0, 18, size=(h, w))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def synth_rgba(w, h, seed):
    rgb = synth(w, h, 3, seed)
    y, x = np.mgrid[0:h, 0:w]
    alpha = 40 + (215 * x / (w - 1))
    alpha = np.where((x // 5 + y // 5) % 3 == 0, 255, alpha)
    alpha = np.where((x > w // 2) & (y < 4), 0, alpha)  # a fully transparent patch
    alpha = np.where((x < 4) & (y > h - 5), 8, alpha)   # a nearly transparent patch
    return np.dstack([rgb, np.clip(np.rint(alpha), 0, 255).astype(np.uint8)])


def pil_image(arr):
    c = 1 if arr.ndim == 2 else arr.shape[2]
    a = arr if arr.ndim == 2 else (arr[:, :, 0] if c == 1 else arr)
    return Image.fromarray(a, MODES[c])


# ---- independent reference for mitchell (and a cross-check of the scheme) ----

def mitchell(x, B=1.0 / 3.0, C=1.0 / 3.0):
    x = np.abs(x)
    r = np.zeros_like(x)
    m1 = x < 1
    m2 = (x >= 1) & (x < 2)
    r[m1] = ((12 - 9 * B - 6 * C) * x[m1] ** 3 + (-18 + 12 * B + 6 * C) * x[m1] ** 2 + (6 - 2 * B)) / 6
    r[m2] = ((-B - 6 * C) * x[m2] ** 3 + (6 * B + 30 * C) * x[m2] ** 2
             + (-12 * B - 48 * C) * x[m2] + (8 * B + 24 * C)) / 6
    return r


def weight_matrix(in_size, in0, in1, out_size, kernel, support):
    """Dense out_size x in_size matrix: window centred on each output sample,
    widened by the scale when shrinking, clipped to the image, renormalised."""
    scale = (in1 - in0) / out_size
    fs = max(scale, 1.0)
    sup = support * fs
    m = np.zeros((out_size, in_size))
    for i in range(out_size):
        center = in0 + (i + 0.5) * scale
        lo = max(int(center - sup + 0.5), 0)
        hi = min(int(center + sup + 0.5), in_size)
        xs = np.arange(lo, hi)
        w = kernel((xs - center + 0.5) / fs)
        if w.sum() != 0:
            w = w / w.sum()
        m[i, lo:hi] = w
    return m


def lanczos3(x):
    return np.where((x >= -3) & (x < 3), np.sinc(x) * np.sinc(x / 3), 0.0)


def keys_cubic(x, a=-0.5):
    x = np.abs(x)
    return np.where(x < 1, ((a + 2) * x - (a + 3)) * x * x + 1,
                    np.where(x < 2, (((x - 5) * x + 8) * x - 4) * a, 0.0))


def numpy_resize(arr, size, kernel, support, round_between):
    """Horizontal then vertical pass in double precision. round_between: round
    and clip the intermediate to 8 bits, as an 8-bit pipeline does."""
    a = arr.astype(np.float64)
    if a.ndim == 2:
        a = a[:, :, None]
    h, w, c = a.shape
    ow, oh = size
    mx = weight_matrix(w, 0.0, float(w), ow, kernel, support)
    my = weight_matrix(h, 0.0, float(h), oh, kernel, support)
    t = np.einsum("ox,yxc->yoc", mx, a)
    if round_between:
        t = np.clip(np.floor(t + 0.5), 0, 255)
    r = np.einsum("py,yoc->poc", my, t)
    return np.clip(np.floor(r + 0.5), 0, 255).astype(np.uint8)


NUMPY_KERNELS = {"mitchell": (mitchell, 2.0), "lanczos3": (lanczos3, 3.0),
                 "bicubic": (keys_cubic, 2.0)}


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.remove(os.path.join(OUT, f))
    inputs = {
        "g37L": synth(37, 23, 1, 1)[:, :, 0],
        "g37": synth(37, 23, 3, 2),
        "g64": synth(64, 48, 3, 3),
        "col29": synth(1, 29, 3, 4),
        "row29L": synth(29, 1, 1, 5)[:, :, 0],
        "a37": synth_rgba(37, 23, 6),
    }
    for name, arr in inputs.items():
        write_raw(os.path.join(OUT, name + ".raw"), arr)

    cases = []

    def add(inp, flt, size, box=None, tol=1, alpha_min=0, ref="pil", suffix=""):
        """ref: "pil" (Pillow), "np8" (numpy, 8-bit intermediate: compared
        with the u8 path) or "npf" (numpy, no intermediate rounding: compared
        with the u16/f32 paths)."""
        arr = inputs[inp]
        if ref == "pil":
            res = np.asarray(pil_image(arr).resize(size, PIL_FILTERS[flt], box=box))
        else:
            res = numpy_resize(arr, size, *NUMPY_KERNELS[flt], round_between=ref == "np8")
        # cases.txt stores x, y, w, h (Pillow's box is x0, y0, x1, y1)
        region = (box[0], box[1], box[2] - box[0], box[3] - box[1]) if box else (0, 0, 0, 0)
        name = "%s_%s_%dx%d%s%s" % (inp, flt, size[0], size[1], "_box" if box else "",
                                    "" if ref == "pil" else "_" + ref)
        path = os.path.join(OUT, name + ".raw")
        if not os.path.exists(path):
            write_raw(path, res)
        paths = "float" if ref == "npf" else "u8"
        cases.append("%s%s %s.raw %s %d %d %r %r %r %r %s.raw %d %d %s" % (
            name, suffix, inp, flt, size[0], size[1], *[float(v) for v in region], name, tol,
            alpha_min, paths))

    for inp in ("g37L", "g37"):
        for flt in ("lanczos3", "bicubic", "bilinear"):
            for size in ((11, 7), (61, 38), (16, 30), (36, 22), (1, 23), (37, 1)):
                add(inp, flt, size)
    for flt in ("lanczos3", "bicubic", "bilinear", "box"):
        add("g64", flt, (17, 13))
        add("g64", flt, (29, 67))
    for flt in ("lanczos3", "bicubic", "bilinear"):
        add("col29", flt, (1, 11))
        add("col29", flt, (1, 50))
        add("col29", flt, (3, 40))
        add("row29L", flt, (11, 1))
        add("row29L", flt, (47, 3))
        add("g37", flt, (1, 1))
        add("g37", flt, (20, 13), box=(3.5, 2.25, 29.25, 17.75))
        add("g37", flt, (24, 24), box=(6.0, 0.0, 29.0, 23.0))
    for flt in ("box", "nearest"):
        for size in ((11, 7), (61, 38), (16, 30), (5, 3)):
            add("g37", flt, size)
        add("g37L", flt, (13, 9))
    add("g37", "nearest", (20, 13), box=(3.5, 2.25, 29.25, 17.75))
    for size in ((11, 7), (61, 38), (16, 30)):
        add("g37", "mitchell", size, ref="np8")
        add("g37L", "mitchell", size, ref="np8")
        for flt in ("mitchell", "lanczos3", "bicubic"):
            add("g37", flt, size, ref="npf")
    # Pillow resizes RGBA premultiplied in 8 bits, rounding at each step and
    # truncating when it un-premultiplies, so its colour error grows as 255/alpha
    # (about -0.4 levels on average, +-2 at alpha >= 200); we filter in float.
    # Alpha itself is a plain channel (+-1).
    for flt in ("lanczos3", "bicubic", "bilinear"):
        for size in ((11, 7), (61, 38), (16, 30)):
            add("a37", flt, size, tol=2, alpha_min=200)
            add("a37", flt, size, tol=3, alpha_min=128, suffix="_a128")
            add("a37", flt, size, tol=12, alpha_min=32, suffix="_a32")

    with open(os.path.join(OUT, "cases.txt"), "w") as f:
        f.write("\n".join(cases) + "\n")
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print("%d cases, %d files, %d bytes" % (len(cases), len(os.listdir(OUT)), total), file=sys.stderr)


if __name__ == "__main__":
    main()
