#!/usr/bin/python3
"""Makes tests/fixtures/upscale/ciede_skimage.txt: sRGB colour pairs with their
CIE L*a*b* (skimage.color.rgb2lab, D65, 2 degrees) and CIEDE2000 difference
(skimage.color.deltaE_ciede2000), the oracle for src/metrics/ciede2000.c.

Run from the repository root with Debian's python (it has skimage):
    /usr/bin/python3 tests/gen_upscale_fixtures.py
Each line: bits r1 g1 b1 r2 g2 b2 L1 a1 b1 L2 a2 b2 dE, where bits is 8 or 16
and the six colour values are integers of that depth (sRGB-encoded)."""
import os

import numpy as np
from skimage.color import deltaE_ciede2000, rgb2lab

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "upscale",
                   "ciede_skimage.txt")


def main():
    rng = np.random.default_rng(20240604)
    rows = []
    # 8-bit pairs: random, near-identical, neutral (hue undefined), extremes.
    for _ in range(24):
        rows.append((8, rng.integers(0, 256, 3), rng.integers(0, 256, 3)))
    for _ in range(8):
        c = rng.integers(0, 252, 3)
        rows.append((8, c, c + rng.integers(0, 4, 3)))
    for v in (0, 1, 10, 128, 254, 255):
        rows.append((8, np.array([v, v, v]), np.array([255 - v, 255 - v, 255 - v])))
    rows.append((8, np.array([0, 0, 0]), np.array([0, 0, 0])))
    rows.append((8, np.array([255, 0, 0]), np.array([0, 0, 255])))
    rows.append((8, np.array([128, 128, 128]), np.array([130, 126, 128])))
    # 16-bit pairs.
    for _ in range(8):
        rows.append((16, rng.integers(0, 65536, 3), rng.integers(0, 65536, 3)))
    lines = []
    for bits, c1, c2 in rows:
        m = 255.0 if bits == 8 else 65535.0
        lab1 = rgb2lab(np.array([[c1 / m]], dtype=np.float64))[0, 0]
        lab2 = rgb2lab(np.array([[c2 / m]], dtype=np.float64))[0, 0]
        de = float(deltaE_ciede2000(lab1, lab2))
        vals = [bits] + [int(v) for v in c1] + [int(v) for v in c2]
        lines.append(" ".join(str(v) for v in vals) + " " +
                     " ".join("%.17g" % v for v in list(lab1) + list(lab2) + [de]))
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
