#!/usr/bin/python3
"""Fixtures for tests/test_metrics.c: the oracle is Debian's python3-skimage.

Run from the repository root with Debian's python (it has skimage, PIL and
numpy):  /usr/bin/python3 tests/gen_metrics_fixtures.py

Writes tests/fixtures/metrics/:
  *.png            20 small image pairs: synthetic photo-like scenes (smooth
                   shading, shapes, texture, lens blur) and degraded copies
                   (Gaussian blur, noise, JPEG, bicubic down/up, colour shift,
                   posterize); 8-bit RGB, gray and RGBA, 16-bit RGB, and one
                   8-bit vs 16-bit pair.
  expected.txt     one line per pair: A B psnr ssim psnr_y ssim_y de_mean
                   de_max de_p95 max_abs, with the definitions of
                   docs/metrics.md computed by skimage 0.19 / numpy.
  ciede_sharma.txt the 34 pairs of Sharma, Wu, Dalal (2005): L1 a1 b1 L2 a2
                   b2, the published dE and skimage's deltaE_ciede2000. Pair 10
                   has hues exactly 180 degrees apart; numpy's arctan2 is one
                   ulp off libm's there, which flips skimage onto the other
                   branch of the mean-hue rule (7.2195 instead of the
                   published 7.1792).
  ciede_random.bin skimage's deltaE_ciede2000 of the 10,000 Lab pairs made by
                   lab_pairs() below (regenerated identically by the C test)
                   as little-endian float32.
"""
import os
import struct
import zlib
from io import BytesIO

import numpy as np
from PIL import Image, ImageFilter
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "metrics")
RANDOM_PAIRS = 10000


# ---- PNG writing (PIL cannot write 16-bit RGB) ----

def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_png(name, a):
    """a: HxW or HxWxC array, uint8 or uint16 (big-endian in the file)."""
    if a.ndim == 2:
        a = a[:, :, None]
    h, w, c = a.shape
    ctype = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    bits = 16 if a.dtype == np.uint16 else 8
    raw = a.astype(">u2" if bits == 16 else "u1").reshape(h, -1).tobytes()
    rowlen = len(raw) // h
    body = b"".join(b"\0" + raw[y * rowlen:(y + 1) * rowlen] for y in range(h))
    data = (b"\x89PNG\r\n\x1a\n" +
            png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bits, ctype, 0, 0, 0)) +
            png_chunk(b"IDAT", zlib.compress(body, 9)) + png_chunk(b"IEND", b""))
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


# ---- content ----

def scene(w, h, seed):
    """A photo-like RGB scene as float64 in [0,1]: shaded background, a few
    soft-edged shapes, fine texture, mild lens blur."""
    rng = np.random.RandomState(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((h, w, 3))
    base = rng.uniform(0.2, 0.8, 3)
    gx, gy = rng.uniform(-0.4, 0.4, 2)
    for c in range(3):
        img[:, :, c] = base[c] + gx * (xx / w - 0.5) * (c + 1) / 2 + gy * (yy / h - 0.5)
    for _ in range(6):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        rx, ry = rng.uniform(3, w / 2.5), rng.uniform(3, h / 2.5)
        d = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2
        mask = np.clip((1.0 - d) * 4.0, 0, 1)[:, :, None]
        img = img * (1 - mask) + rng.uniform(0, 1, 3) * mask
    img += 0.04 * np.sin(xx * rng.uniform(0.5, 1.5) + yy * rng.uniform(0.3, 1.2))[:, :, None]
    img += rng.normal(0, 0.02, img.shape)
    img = np.clip(img, 0, 1)
    pil = Image.fromarray((img * 255 + 0.5).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.6))
    return np.asarray(pil).astype(np.float64) / 255 * 0.9 + img * 0.1


def to8(f):
    return (np.clip(f, 0, 1) * 255 + 0.5).astype(np.uint8)


def to16(f):
    return (np.clip(f, 0, 1) * 65535 + 0.5).astype(np.uint16)


def pil_op(a8, op):
    im = Image.fromarray(a8)
    return np.asarray(op(im))


def blur8(a8, r):
    return pil_op(a8, lambda im: im.filter(ImageFilter.GaussianBlur(r)))


def jpeg8(a8, q):
    buf = BytesIO()
    Image.fromarray(a8).save(buf, "JPEG", quality=q)
    return np.asarray(Image.open(BytesIO(buf.getvalue())).convert(Image.fromarray(a8).mode))


def bicubic8(a8, f):
    h, w = a8.shape[:2]
    return pil_op(a8, lambda im: im.resize((max(1, w // f), max(1, h // f)), Image.BICUBIC)
                  .resize((w, h), Image.BICUBIC))


def noise8(a8, sigma, seed):
    rng = np.random.RandomState(seed)
    return np.clip(a8 + rng.normal(0, sigma, a8.shape), 0, 255).round().astype(np.uint8)


def noise16(a16, sigma, seed):
    rng = np.random.RandomState(seed)
    return np.clip(a16 + rng.normal(0, sigma, a16.shape), 0, 65535).round().astype(np.uint16)


def blur16(a16, sigma):
    from scipy.ndimage import gaussian_filter
    f = gaussian_filter(a16.astype(np.float64), sigma=(sigma, sigma, 0), mode="nearest")
    return np.clip(f, 0, 65535).round().astype(np.uint16)


def bicubic16(a16, f):
    """Down/up with PIL's bicubic on float planes (mode 'F')."""
    h, w, c = a16.shape
    out = np.empty_like(a16)
    for k in range(c):
        im = Image.fromarray(a16[:, :, k].astype(np.float32), "F")
        im = im.resize((w // f, h // f), Image.BICUBIC).resize((w, h), Image.BICUBIC)
        out[:, :, k] = np.clip(np.asarray(im), 0, 65535).round().astype(np.uint16)
    return out


# ---- the oracle ----

def as_rgb01(a):
    """[0,1] float64 RGB (gray replicated) and alpha (1 when absent)."""
    scale = 65535.0 if a.dtype == np.uint16 else 255.0
    f = a.astype(np.float64) / scale
    if f.ndim == 2:
        f = f[:, :, None]
    c = f.shape[2]
    alpha = f[:, :, c - 1] if c in (2, 4) else np.ones(f.shape[:2])
    rgb = f[:, :, :1].repeat(3, axis=2) if c <= 2 else f[:, :, :3]
    return rgb, alpha


def expected(a, b):
    ra, aa = as_rgb01(a)
    rb, ab = as_rgb01(b)
    same = a.dtype == b.dtype and a.ndim == 3 and b.ndim == 3 and a.shape[2] == b.shape[2] == 3
    if same:
        # The headline definition: skimage on the integers with the type's
        # range (equal to the [0,1] computation up to rounding).
        rng = 65535 if a.dtype == np.uint16 else 255
        ia, ib = a, b
    else:
        rng, ia, ib = 1.0, ra, rb
    psnr = peak_signal_noise_ratio(ia, ib, data_range=rng)
    ssim = structural_similarity(ia, ib, gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False, data_range=rng, channel_axis=-1)
    ya = 0.299 * ra[:, :, 0] + 0.587 * ra[:, :, 1] + 0.114 * ra[:, :, 2]
    yb = 0.299 * rb[:, :, 0] + 0.587 * rb[:, :, 1] + 0.114 * rb[:, :, 2]
    psnr_y = peak_signal_noise_ratio(ya, yb, data_range=1)
    ssim_y = structural_similarity(ya, yb, gaussian_weights=True, sigma=1.5,
                                   use_sample_covariance=False, data_range=1)
    de = deltaE_ciede2000(rgb2lab(ra), rgb2lab(rb))
    max_abs = max(np.abs(ra - rb).max(), np.abs(aa - ab).max()) * 255
    return [psnr, ssim, psnr_y, ssim_y, de.mean(), de.max(), np.percentile(de, 95), max_abs]


# ---- random Lab pairs, generated identically in tests/test_metrics.c ----

def lab_pairs(n):
    """64-bit LCG (Knuth's MMIX constants); u = top 53 bits / 2^53. Pair i
    is of kind i % 4: independent colours, a close neighbour, a neutral
    first colour, roughly opposite hues. Each expression is evaluated in the
    same order in C."""
    s = 0x2545F4914F6CDD1D
    mask = (1 << 64) - 1

    def u():
        nonlocal s
        s = (s * 6364136223846793005 + 1442695040888963407) & mask
        return (s >> 11) * (1.0 / 9007199254740992.0)

    out = []
    for i in range(n):
        L1 = 100.0 * u()
        a1 = 256.0 * u() - 128.0
        b1 = 256.0 * u() - 128.0
        L2 = 100.0 * u()
        a2 = 256.0 * u() - 128.0
        b2 = 256.0 * u() - 128.0
        k = i % 4
        if k == 1:
            L2 = L1 + (4.0 * u() - 2.0)
            a2 = a1 + (4.0 * u() - 2.0)
            b2 = b1 + (4.0 * u() - 2.0)
        elif k == 2:
            a1 = 0.0
            b1 = 0.0
        elif k == 3:
            a2 = (4.0 * u() - 2.0) - a1
            b2 = (4.0 * u() - 2.0) - b1
        out.append((L1, a1, b1, L2, a2, b2))
    return np.array(out)


# Published dE of each pair (table 1).
SHARMA_DE = [2.0425, 2.8615, 3.4412, 1.0000, 1.0000, 1.0000, 2.3669, 2.3669, 7.1792, 7.1792,
             7.2195, 7.2195, 4.8045, 4.8045, 4.7461, 4.3065, 27.1492, 22.8977, 31.9030, 19.4535,
             1.0000, 1.0000, 1.0000, 1.0000, 1.2644, 1.2630, 1.8731, 1.8645, 2.0373, 1.4146,
             1.4441, 1.5381, 0.6377, 0.9082]

SHARMA = [
    (50.0000, 2.6772, -79.7751, 50.0000, 0.0000, -82.7485),
    (50.0000, 3.1571, -77.2803, 50.0000, 0.0000, -82.7485),
    (50.0000, 2.8361, -74.0200, 50.0000, 0.0000, -82.7485),
    (50.0000, -1.3802, -84.2814, 50.0000, 0.0000, -82.7485),
    (50.0000, -1.1848, -84.8006, 50.0000, 0.0000, -82.7485),
    (50.0000, -0.9009, -85.5211, 50.0000, 0.0000, -82.7485),
    (50.0000, 0.0000, 0.0000, 50.0000, -1.0000, 2.0000),
    (50.0000, -1.0000, 2.0000, 50.0000, 0.0000, 0.0000),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0009),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0010),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0011),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0012),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0009, -2.4900),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0010, -2.4900),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0011, -2.4900),
    (50.0000, 2.5000, 0.0000, 50.0000, 0.0000, -2.5000),
    (50.0000, 2.5000, 0.0000, 73.0000, 25.0000, -18.0000),
    (50.0000, 2.5000, 0.0000, 61.0000, -5.0000, 29.0000),
    (50.0000, 2.5000, 0.0000, 56.0000, -27.0000, -3.0000),
    (50.0000, 2.5000, 0.0000, 58.0000, 24.0000, 15.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.1736, 0.5854),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.2972, 0.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 1.8634, 0.5757),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.2592, 0.3350),
    (60.2574, -34.0099, 36.2677, 60.4626, -34.1751, 39.4387),
    (63.0109, -31.0961, -5.8663, 62.8187, -29.7946, -4.0864),
    (61.2901, 3.7196, -5.3901, 61.4292, 2.2480, -4.9620),
    (35.0831, -44.1164, 3.7933, 35.0232, -40.0716, 1.5901),
    (22.7233, 20.0904, -46.6940, 23.0331, 14.9730, -42.5619),
    (36.4612, 47.8580, 18.3852, 36.2715, 50.5065, 21.2231),
    (90.8027, -2.0831, 1.4410, 91.1528, -1.6435, 0.0447),
    (90.9257, -0.5406, -0.9208, 88.6381, -0.8985, -0.7239),
    (6.7747, -0.2908, -2.4247, 5.8714, -0.0985, -2.2286),
    (2.0776, 0.0795, -1.1350, 0.9033, -0.0636, -0.5514),
]


def main():
    os.makedirs(OUT, exist_ok=True)
    pairs = []  # (name_a, array_a, name_b, array_b)

    def add(ref_name, ref, deg_name, deg):
        pairs.append((ref_name, ref, deg_name, deg))

    a = to8(scene(48, 40, 1))
    add("a.png", a, "a_blur.png", blur8(a, 1.0))
    add("a.png", a, "a_noise.png", noise8(a, 5, 11))
    add("a.png", a, "a_jpeg30.png", jpeg8(a, 30))
    add("a.png", a, "a_bicubic2.png", bicubic8(a, 2))
    b = to8(scene(56, 44, 2))
    add("b.png", b, "b_jpeg75.png", jpeg8(b, 75))
    add("b.png", b, "b_noise.png", noise8(b, 12, 12))
    shifted = b.astype(np.int32) + np.array([6, 0, -4])
    add("b.png", b, "b_shift.png", np.clip(shifted, 0, 255).astype(np.uint8))
    add("b.png", b, "b_poster.png", (b & 0xF0) | 0x08)
    c = to8(scene(33, 27, 3))
    add("c.png", c, "c_blur.png", blur8(c, 2.0))
    add("c.png", c, "c_jpeg50.png", jpeg8(c, 50))
    add("c.png", c, "c_bicubic3.png", bicubic8(c, 3))
    d = to8(scene(11, 13, 4))  # the smallest size SSIM is defined for
    add("d.png", d, "d_noise.png", noise8(d, 8, 14))
    e = to8(scene(40, 32, 5).mean(axis=2))
    add("e.png", e, "e_blur.png", blur8(e, 1.2))
    add("e.png", e, "e_jpeg40.png", jpeg8(e, 40))
    f = np.dstack([to8(scene(32, 24, 6)), to8(np.linspace(0.2, 1, 32))[None, :].repeat(24, 0)])
    f2 = noise8(f, 4, 16)
    f2[:, :, 3] = f[:, :, 3] // 2
    add("f.png", f, "f_noise.png", f2)
    g = to16(scene(40, 32, 7))
    add("g.png", g, "g_noise.png", noise16(g, 600, 17))
    add("g.png", g, "g_blur.png", blur16(g, 0.8))
    add("g.png", g, "g_bicubic2.png", bicubic16(g, 2))
    h = to16(scene(32, 32, 8))
    add("h.png", h, "h_noise.png", noise16(h, 90, 18))
    add("g.png", g, "g_8bit.png", to8(g / 65535.0))

    written = set()
    lines = ["# A B psnr ssim psnr_y ssim_y de_mean de_max de_p95 max_abs "
             "(skimage; written by tests/gen_metrics_fixtures.py)"]
    for na, ia, nb, ib in pairs:
        for n, arr in ((na, ia), (nb, ib)):
            if n not in written:
                write_png(n, arr)
                written.add(n)
        vals = expected(ia, ib)
        lines.append(" ".join([na, nb] + ["%.12g" % v for v in vals]))
    with open(os.path.join(OUT, "expected.txt"), "w") as fp:
        fp.write("\n".join(lines) + "\n")

    sh = np.array(SHARMA)
    de = deltaE_ciede2000(sh[:, :3], sh[:, 3:])
    with open(os.path.join(OUT, "ciede_sharma.txt"), "w") as fp:
        fp.write("# L1 a1 b1 L2 a2 b2 published-dE skimage-deltaE_ciede2000 "
                 "(Sharma, Wu, Dalal 2005, table 1)\n")
        for row, pub, v in zip(SHARMA, SHARMA_DE, de):
            fp.write(" ".join("%.4f" % x for x in row) + " %.4f %.10f\n" % (pub, v))

    lab = lab_pairs(RANDOM_PAIRS)
    de = deltaE_ciede2000(lab[:, :3], lab[:, 3:])
    with open(os.path.join(OUT, "ciede_random.bin"), "wb") as fp:
        fp.write(de.astype("<f4").tobytes())
    print("wrote %d pairs, %d images" % (len(pairs), len(written)))


if __name__ == "__main__":
    main()
