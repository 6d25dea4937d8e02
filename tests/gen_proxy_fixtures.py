#!/usr/bin/python3
"""Writes tests/fixtures/proxy: originals, deltas and the merged results an
independent implementation computes, for the test proxy_merge_matches_pillow_oracle.

The oracle: crop the delta's content box, subtract the neutral 127, upscale
each channel as a Pillow 'F' (float) image with LANCZOS to the original's
size, add to the original, round and clamp. Pillow's float resampler uses the
same window placement upres documents, in double precision; results may
differ from upres only on exact .5 ties (tolerance: +-1 on <= 0.1% of samples).

Run with Debian's python3 (python3-pil, python3-numpy):
    /usr/bin/python3 tests/gen_proxy_fixtures.py
"""
import os

import numpy as np
from PIL import Image

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "proxy")


def picture(w, h, ch, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    planes = []
    for c in range(ch):
        t = 0.5 + 0.3 * np.sin(x * 0.06 + c) * np.cos(y * 0.05 - c) + 0.08 * rng.standard_normal((h, w))
        planes.append(np.clip(20 + 215 * t, 0, 255))
    return np.rint(np.stack(planes, -1)).astype(np.uint8)


def delta_image(w, h, ch, seed):
    """A smooth change of up to +-60 levels plus noise; the padding gets
    unrelated noise so that a merge that leaks padding fails the test."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    planes = []
    for c in range(ch):
        d = 60 * np.sin(x * 0.2 + 2 * c) * np.cos(y * 0.15) + 6 * rng.standard_normal((h, w))
        planes.append(np.clip(127 + d, 0, 255))
    return np.rint(np.stack(planes, -1)).astype(np.uint8)


def plan(w, h, tw, th, pixels):
    if tw * h <= th * w:
        cw, chh = tw, h * tw // w
    else:
        cw, chh = w * th // h, th
    cw, chh = max(cw, 1), max(chh, 1)
    if pixels:
        # round() with ties to even, as PIL's ImageOps.pad places the picture
        return tw, th, round((tw - cw) * 0.5), round((th - chh) * 0.5), cw, chh
    return cw, chh, 0, 0, cw, chh


def merged(orig, delta, box):
    x0, y0, cw, chh = box
    h, w = orig.shape[:2]
    crop = delta[y0:y0 + chh, x0:x0 + cw].astype(np.float32) - 127.0
    up = np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(crop[..., c]), "F")
                              .resize((w, h), Image.LANCZOS)) for c in range(crop.shape[2])], -1)
    return np.clip(np.floor(orig.astype(np.float64) + up + 0.5), 0, 255).astype(np.uint8)


def write_meta(path, ow, oh, ch, pw, ph, x0, y0, cw, chh):
    with open(path, "w") as f:
        f.write("# upres proxy metadata: key=value lines, see docs/proxy.md\n")
        f.write("format_version=1\n")
        f.write(f"original_width={ow}\noriginal_height={oh}\noriginal_channels={ch}\noriginal_depth=8\n")
        f.write(f"proxy_width={pw}\nproxy_height={ph}\nproxy_depth=8\n")
        f.write(f"content_x={x0}\ncontent_y={y0}\ncontent_width={cw}\ncontent_height={chh}\n")
        f.write(f"pad_left={x0}\npad_top={y0}\npad_right={pw - x0 - cw}\npad_bottom={ph - y0 - chh}\n")
        f.write("filter=lanczos3\n")


def case(name, w, h, ch, tw, th, pixels, seed):
    orig = picture(w, h, ch, seed)
    pw, ph, x0, y0, cw, chh = plan(w, h, tw, th, pixels)
    delta = delta_image(pw, ph, ch, seed + 1)
    out = merged(orig, delta, (x0, y0, cw, chh))
    mode = "RGB" if ch == 3 else "L"
    sq = (lambda a: a) if ch == 3 else (lambda a: a[..., 0])
    Image.fromarray(sq(orig), mode).save(os.path.join(OUT, f"orig_{name}.png"))
    Image.fromarray(sq(delta), mode).save(os.path.join(OUT, f"delta_{name}.png"))
    Image.fromarray(sq(out), mode).save(os.path.join(OUT, f"merged_{name}.png"))
    write_meta(os.path.join(OUT, f"meta_{name}.txt"), w, h, ch, pw, ph, x0, y0, cw, chh)


def main():
    os.makedirs(OUT, exist_ok=True)
    case("rgb", 157, 111, 3, 64, 64, True, 1)     # padded: content 64x45 at 0,10 (slack 19)
    case("gray", 130, 170, 1, 65, 85, False, 3)   # 50%: content 65x85, no padding


if __name__ == "__main__":
    main()
