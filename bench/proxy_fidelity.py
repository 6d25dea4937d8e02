#!/usr/bin/env python3
"""Proxy fidelity: how well `upres merge` carries an operator back to full size.

The proxy workflow (`upres split` -> model on the 512x512 proxy ->
`upres split-with-processed` -> `upres merge`) assumes that what an operator
does to the small proxy, upscaled as a delta and added to the original, is
close to what the same operator would have done to the original itself.
This bench measures that against ground truth. For every photo in
$UPRES_SHARED/images/photos and every operator below:

  1. truth      the operator applied to the full photo (W = photo width),
                saved as {stem}_{op}_truth.png (cached; --fresh recomputes);
  2. proxy      `upres split PHOTO 512 512` (picture fitted, black bands);
  3. processed  the operator applied to the proxy's content box only
                (W = content_width), the bands left untouched,
                saved as {stem}_{op}_processed.png;
  4. delta      `upres split-with-processed ... --depth 16`, a 16-bit delta
                that carries the processed proxy exactly (no clipping);
  5. merge      `upres merge PHOTO DELTA --metadata META -o OUT --force ARGS`
                once per method (see --methods), run one after the other
                since upres is multithreaded itself; wall time recorded;
  6. score      PSNR of the merged image against the truth: 8-bit RGB, all
                pixels, 10*log10(255^2/MSE), capped at 99 dB (identical).

Operators (RGB uint8 in, RGB uint8 out, float32 inside, rounded and
clipped). Every size is a fraction of the picture width W, so the operator
on the proxy (W = 512 or less) is "the same" look as on the original
(W = 1280 or 2560): a fixed pixel radius would mean a 5x larger look on the
proxy than on the original, which is not what anyone wants to transfer.

  tone        per-channel curve: gamma 0.8 (y = x^0.8 on [0,1]), then a 50 %
              blend with the smoothstep S-curve 3y^2 - 2y^3. Pointwise.
  saturation  y = L + 1.6 (x - L), L = Rec.601 luma 0.299R+0.587G+0.114B.
  grade       teal-orange colour grade, an affine 3x3 channel mix with cross
              terms (see GRADE_M, GRADE_B): teal shadows (black ->
              (0, 6, 14)), warm highlights (white -> ~(254, 241, 215)).
  unsharp     local contrast: y = x + 1.0 (x - G_sigma(x)), sigma = 1 % of W
              (25.6 px at 2560, ~5 px on the proxy); cv2.GaussianBlur,
              ksize (0,0), BORDER_REFLECT.
  bilateral   edge-preserving smoothing: cv2.bilateralFilter on uint8,
              sigmaSpace = 0.3 % of W (7.7 px at 2560, 1.5 px on the proxy),
              d = 2*round(1.5 sigmaSpace)+1 (25 at 2560, 5 on the proxy),
              sigmaColor = 30, BORDER_REFLECT. About 0.8 s per 2560x1600
              photo on 2 cores, so the suggested size was kept.
  clahe       CLAHE on lightness: RGB -> 8-bit Lab (cv2), clipLimit 2.0,
              tileGridSize (8,8) on L (the tiles are already a fixed
              fraction of the picture), Lab -> RGB.

The photos are decoded with PIL (EXIF orientation applied), which gives
exactly the pixels `upres convert` gives for these JPEGs (checked), so the
truth is built from the same original that merge reads. The truth cache is
keyed by file name only: after changing an operator, run with --fresh.

Output: Markdown on stdout -- one table per method (rows = photos, columns
= operators, mean column and mean row), a summary table (rows = methods),
and for every method other than `delta` a "gain over delta" table (mean
gain per operator, overall, worst photo x operator pair). Raw results go to
bench/out/fidelity/results.csv (photo, op, method, psnr, seconds); progress
and per-stage times go to stderr. Merged images are deleted after scoring
unless --keep-merged. A merge that fails is reported, shown as "fail", and
makes the exit status 1.

Run from the repository root (or through bench/proxy_fidelity.sh, which
sets the defaults):

  bench/proxy_fidelity.sh                                 # all methods
  bench/proxy_fidelity.sh --methods "delta=--method delta" # one method only
  bench/proxy_fidelity.sh --methods "delta=--method delta;g=--method guided" \\
      --merge-args "--smoothness 2" --photos LadyBird,Green* --ops tone,clahe

--photos patterns must match a whole stem or file name (LadyBird, Lady*).
A method with no arguments (`auto (default)=`) runs merge with the binary's
own default method (auto). results.csv holds the latest run only.

Environment: UPRES_BIN (default build/upres), UPRES_SHARED (default
../shared). Run time on 2 cores, 5 photos x 6 operators: about 35 s
outside the merges on a first run (20 s with cached truths), plus
1-5 s per merge, 30 merges per method (about 7.5 min for the four
default methods).
"""

import argparse
import csv
import fnmatch
import math
import os
import shlex
import subprocess
import sys
import time
from collections import defaultdict

import cv2
import numpy as np
from PIL import Image, ImageOps

DEFAULT_METHODS = ("delta=--method delta;guided=--method guided;"
                   "guided+res=--method guided --residual;auto (default)=")
PSNR_CAP = 99.0


# --------------------------------------------------------------------------
# Operators. Each takes an RGB uint8 array (H, W, 3) and the width `w` its
# sizes are relative to, and returns an RGB uint8 array of the same shape.
# --------------------------------------------------------------------------

def to_u8(y):
    """Round and clip a float array to uint8."""
    return np.clip(np.rint(y), 0, 255).astype(np.uint8)


def op_tone(x, w):
    """Strong nonlinear per-channel curve: gamma 0.8, then half smoothstep."""
    t = (x.astype(np.float32) / 255.0) ** np.float32(0.8)
    s = t * t * (3.0 - 2.0 * t)
    return to_u8(255.0 * (0.5 * t + 0.5 * s))


LUMA601 = np.array([0.299, 0.587, 0.114], np.float32)


def op_saturation(x, w):
    """Saturation boost around Rec.601 luma: y = L + 1.6 (x - L)."""
    f = x.astype(np.float32)
    lum = (f @ LUMA601)[..., None]
    return to_u8(lum + 1.6 * (f - lum))


# Teal-orange grade, out = M @ in + B per pixel (0..255 units). Rows:
# R gets a little of G and loses some B (warm), G is nearly kept, B loses
# R and is damped (less blue in highlights); the offsets lift G and B in
# the shadows (teal blacks) and pull R down there.
GRADE_M = np.array([[1.10, 0.03, -0.11],
                    [-0.04, 0.96, 0.00],
                    [-0.12, 0.06, 0.85]], np.float32)
GRADE_B = np.array([-6.0, 6.0, 14.0], np.float32)


def op_grade(x, w):
    """Affine channel-mixing colour grade (teal shadows, orange highlights)."""
    return to_u8(x.astype(np.float32) @ GRADE_M.T + GRADE_B)


def op_unsharp(x, w):
    """Local contrast boost, y = x + 1.0 (x - blur), blur sigma = 1 % of W.

    A large-radius unsharp mask: the radius is a fraction of the picture so
    the proxy gets the same (relative) halo size as the original."""
    f = x.astype(np.float32)
    blur = cv2.GaussianBlur(f, (0, 0), 0.01 * w, borderType=cv2.BORDER_REFLECT)
    return to_u8(f + 1.0 * (f - blur))


def op_bilateral(x, w):
    """Edge-preserving smoothing, sigmaSpace = 0.3 % of W, sigmaColor = 30.

    Runs on uint8 (OpenCV rounds its float result once); the window is
    d = 2*round(1.5*sigma)+1, what OpenCV picks itself for d = -1."""
    sigma = 0.003 * w
    d = 2 * int(round(1.5 * sigma)) + 1
    return cv2.bilateralFilter(np.ascontiguousarray(x), d, 30.0, sigma,
                               borderType=cv2.BORDER_REFLECT)


def op_clahe(x, w):
    """CLAHE on Lab lightness (clip 2.0, 8x8 tiles: tiles scale with W)."""
    lab = cv2.cvtColor(np.ascontiguousarray(x), cv2.COLOR_RGB2LAB)
    clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))
    lab[..., 0] = clahe.apply(np.ascontiguousarray(lab[..., 0]))
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


OPERATORS = {
    "tone": op_tone,
    "saturation": op_saturation,
    "grade": op_grade,
    "unsharp": op_unsharp,
    "bilateral": op_bilateral,
    "clahe": op_clahe,
}


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------

class StageTimer:
    """Accumulates wall time per named stage for the final stderr summary."""

    def __init__(self):
        self.total = defaultdict(float)
        self.count = defaultdict(int)

    def add(self, stage, seconds):
        self.total[stage] += seconds
        self.count[stage] += 1

    def report(self):
        log("stage times (wall, s):")
        order = (["split", "decode"] + [f"op-{o}" for o in OPERATORS]
                 + ["truth-save", "truth-load", "proxy-op", "delta", "merge",
                    "score"])
        for stage in sorted(self.total, key=lambda s: order.index(s)
                            if s in order else len(order)):
            t, n = self.total[stage], self.count[stage]
            log(f"  {stage:<12} {t:8.1f} total  {t / n:6.2f} each  x{n}")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def load_rgb(path):
    """Read an image as RGB uint8, EXIF orientation applied."""
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        if im.mode not in ("RGB", "L", "RGBA", "P"):
            raise SystemExit(f"{path}: unexpected mode {im.mode} (want 8-bit)")
        return np.asarray(im.convert("RGB"))


def save_png(path, arr, level=1):
    """Save RGB uint8 as PNG (low compression: these are scratch files)."""
    Image.fromarray(arr, "RGB").save(path, compress_level=level)


def psnr(a, b):
    """8-bit RGB PSNR over all pixels, capped at PSNR_CAP for identical."""
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch {a.shape} vs {b.shape}")
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    if mse == 0:
        return PSNR_CAP
    return min(PSNR_CAP, 10.0 * math.log10(255.0 ** 2 / mse))


def read_metadata(path):
    """Parse upres's key=value proxy metadata."""
    meta = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                k, v = line.split("=", 1)
                meta[k] = v
    return meta


def run_upres(upres, args):
    """Run upres; returns (ok, seconds, stderr)."""
    t0 = time.perf_counter()
    p = subprocess.run([upres, "-q"] + args, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
    return p.returncode == 0, time.perf_counter() - t0, p.stderr.strip()


def must_run(upres, args):
    ok, dt, err = run_upres(upres, args)
    if not ok:
        raise SystemExit(f"upres {' '.join(args)} failed: {err}")
    return dt


def parse_methods(spec):
    """'name=args;name2=args2' -> [(name, [args...]), ...]."""
    methods = []
    for item in spec.split(";"):
        item = item.strip()
        if not item:
            continue
        name, sep, args = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise SystemExit(f"--methods: want name=args, got {item!r}")
        if any(name == m for m, _ in methods):
            raise SystemExit(f"--methods: {name!r} given twice")
        methods.append((name, shlex.split(args)))
    if not methods:
        raise SystemExit("--methods: no method given")
    return methods


def select_photos(folder, patterns):
    """Photos in folder whose stem or file name matches one of patterns."""
    files = sorted(f for f in os.listdir(folder)
                   if f.lower().endswith((".jpg", ".jpeg", ".png", ".tif",
                                          ".tiff", ".webp")))
    if patterns:
        pats = [p for p in patterns.replace(",", " ").split() if p]
        files = [f for f in files
                 if any(fnmatch.fnmatch(os.path.splitext(f)[0], p)
                        or fnmatch.fnmatch(f, p) for p in pats)]
    if not files:
        raise SystemExit(f"no photo in {folder} matches {patterns!r}")
    return [os.path.join(folder, f) for f in files]


def safe_name(name):
    """Method name -> folder name."""
    return "".join(c if c.isalnum() or c in "-_+." else "_" for c in name)


# --------------------------------------------------------------------------
# Markdown output
# --------------------------------------------------------------------------

def fmt(v, signed=False):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "fail"
    return f"{v:+.2f}" if signed else f"{v:.2f}"


def mean(vals):
    vals = [v for v in vals if v is not None and not math.isnan(v)]
    return sum(vals) / len(vals) if vals else float("nan")


def md_table(header, rows):
    out = ["| " + " | ".join(header) + " |",
           "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def print_report(results, photos, ops, methods):
    """results[(photo, op, method)] = psnr (nan on failure)."""
    names = [m for m, _ in methods]
    for m in names:
        print(f"### PSNR (dB) vs truth, method `{m}`\n")
        rows = []
        for p in photos:
            vals = [results.get((p, o, m), float("nan")) for o in ops]
            rows.append([p] + [fmt(v) for v in vals] + [fmt(mean(vals))])
        col_means = [mean([results.get((p, o, m), float("nan"))
                           for p in photos]) for o in ops]
        rows.append(["**mean**"] + [fmt(v) for v in col_means]
                    + [fmt(mean([results.get((p, o, m), float("nan"))
                                 for p in photos for o in ops]))])
        print(md_table(["photo"] + ops + ["mean"], rows) + "\n")

    print("### Summary: mean PSNR (dB) per operator\n")
    rows = []
    for m in names:
        vals = [mean([results.get((p, o, m), float("nan")) for p in photos])
                for o in ops]
        allv = mean([results.get((p, o, m), float("nan"))
                     for p in photos for o in ops])
        rows.append([m] + [fmt(v) for v in vals] + [fmt(allv)])
    print(md_table(["method"] + ops + ["all"], rows) + "\n")

    if "delta" not in names:
        return
    for m in names:
        if m == "delta":
            continue
        gains = {}
        for p in photos:
            for o in ops:
                a = results.get((p, o, m), float("nan"))
                b = results.get((p, o, "delta"), float("nan"))
                if not (math.isnan(a) or math.isnan(b)):
                    gains[(p, o)] = a - b
        print(f"### Gain of `{m}` over `delta` (dB)\n")
        per_op = [mean([gains[(p, o)] for p in photos if (p, o) in gains])
                  for o in ops]
        overall = mean(list(gains.values()))
        if gains:
            wp, wo = min(gains, key=gains.get)
            worst = f"{fmt(gains[(wp, wo)], True)} ({wp} {wo})"
        else:
            worst = "fail"
        row = [m] + [fmt(v, True) for v in per_op] + [fmt(overall, True), worst]
        print(md_table(["method"] + ops + ["mean", "worst"], [row]) + "\n")


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(
        description="PSNR of `upres merge` against operator ground truth.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="See the module docstring (head of this file) for details.")
    ap.add_argument("--methods", default=DEFAULT_METHODS,
                    help="semicolon-separated name=merge-args list "
                         f"(default: {DEFAULT_METHODS!r})")
    ap.add_argument("--merge-args", default="",
                    help="extra arguments appended to every merge, e.g. "
                         "'--smoothness 2'")
    ap.add_argument("--photos", default="",
                    help="comma/space-separated stems or globs (default all)")
    ap.add_argument("--ops", default="",
                    help="comma-separated subset of: " + ",".join(OPERATORS))
    ap.add_argument("--size", type=int, default=512,
                    help="proxy width and height (default 512)")
    ap.add_argument("--out", default="bench/out/fidelity",
                    help="output folder (default bench/out/fidelity)")
    ap.add_argument("--fresh", action="store_true",
                    help="recompute the cached ground truths")
    ap.add_argument("--keep-merged", action="store_true",
                    help="keep the merged images (merged/METHOD/)")
    args = ap.parse_args()

    upres = os.environ.get("UPRES_BIN", "build/upres")
    shared = os.environ.get("UPRES_SHARED", "../shared")
    if not os.access(upres, os.X_OK):
        raise SystemExit(f"{upres}: not an executable (build with make -j2 "
                         "or set UPRES_BIN)")
    methods = parse_methods(args.methods)
    extra = shlex.split(args.merge_args)
    ops = [o.strip() for o in args.ops.split(",") if o.strip()] or list(OPERATORS)
    for o in ops:
        if o not in OPERATORS:
            raise SystemExit(f"--ops: unknown operator {o!r}; have "
                             + ", ".join(OPERATORS))
    photos = select_photos(os.path.join(shared, "images", "photos"),
                           args.photos)

    out = args.out
    proxy_dir = os.path.join(out, "proxy")
    for d in [out, proxy_dir] + [os.path.join(out, "delta", o) for o in ops] \
            + [os.path.join(out, "merged", safe_name(m)) for m, _ in methods]:
        os.makedirs(d, exist_ok=True)

    size = str(args.size)
    timer = StageTimer()
    results = {}
    csv_rows = []
    failures = 0
    stems = []
    t_start = time.perf_counter()

    for photo in photos:
        stem = os.path.splitext(os.path.basename(photo))[0]
        stems.append(stem)
        original = None  # decoded lazily: only needed for missing truths

        # Proxy of the photo; its metadata gives the content box.
        timer.add("split", must_run(upres, ["split", photo, size, size,
                                            "--out-dir", proxy_dir]))
        proxy_path = os.path.join(proxy_dir, f"{stem}_proxy.png")
        meta = read_metadata(os.path.join(proxy_dir,
                                          f"{stem}_proxy_metadata.txt"))
        cx, cy, cw, ch = (int(meta[k]) for k in ("content_x", "content_y",
                                                 "content_width",
                                                 "content_height"))
        proxy = load_rgb(proxy_path)

        for op in ops:
            fn = OPERATORS[op]

            # 1. Ground truth on the full photo (cached).
            truth_path = os.path.join(out, f"{stem}_{op}_truth.png")
            t0 = time.perf_counter()
            if os.path.exists(truth_path) and not args.fresh:
                truth = load_rgb(truth_path)
                timer.add("truth-load", time.perf_counter() - t0)
            else:
                if original is None:
                    original = load_rgb(photo)
                    timer.add("decode", time.perf_counter() - t0)
                    t0 = time.perf_counter()
                truth = fn(original, original.shape[1])
                timer.add(f"op-{op}", time.perf_counter() - t0)
                t0 = time.perf_counter()
                save_png(truth_path, truth)
                timer.add("truth-save", time.perf_counter() - t0)

            # 3. Operator on the proxy's content box; bands untouched.
            t0 = time.perf_counter()
            processed = proxy.copy()
            box = proxy[cy:cy + ch, cx:cx + cw]
            processed[cy:cy + ch, cx:cx + cw] = fn(box, cw)
            processed_path = os.path.join(out, f"{stem}_{op}_processed.png")
            save_png(processed_path, processed)
            timer.add("proxy-op", time.perf_counter() - t0)

            # 4. 16-bit delta, one folder per operator (fixed file names).
            delta_dir = os.path.join(out, "delta", op)
            timer.add("delta", must_run(upres, [
                "split-with-processed", photo, processed_path, size, size,
                "--depth", "16", "--out-dir", delta_dir]))
            delta_path = os.path.join(delta_dir, f"{stem}_proxy_delta.png")
            meta_path = os.path.join(delta_dir, f"{stem}_proxy_metadata.txt")

            # 5./6. Merge per method, sequentially, and score.
            for name, margs in methods:
                merged = os.path.join(out, "merged", safe_name(name),
                                      f"{stem}_{op}.png")
                ok, dt, err = run_upres(upres, [
                    "merge", photo, delta_path, "--metadata", meta_path,
                    "-o", merged, "--force"] + margs + extra)
                timer.add("merge", dt)
                if ok:
                    t0 = time.perf_counter()
                    score = psnr(load_rgb(merged), truth)
                    timer.add("score", time.perf_counter() - t0)  # read + PSNR
                    if not args.keep_merged:
                        os.remove(merged)
                    log(f"{stem:14} {op:10} {name:12} {score:6.2f} dB "
                        f"merge {dt:5.2f} s")
                else:
                    score = float("nan")
                    failures += 1
                    log(f"{stem:14} {op:10} {name:12} merge FAILED: {err}")
                results[(stem, op, name)] = score
                csv_rows.append([stem, op, name,
                                 "" if math.isnan(score) else f"{score:.4f}",
                                 f"{dt:.3f}"])

    csv_path = os.path.join(out, "results.csv")
    with open(csv_path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["photo", "op", "method", "psnr", "seconds"])
        w.writerows(csv_rows)

    print_report(results, stems, ops, methods)
    timer.report()
    log(f"total {time.perf_counter() - t_start:.1f} s; results in {csv_path}")
    if failures:
        log(f"{failures} merge(s) failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
