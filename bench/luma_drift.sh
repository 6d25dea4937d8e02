#!/usr/bin/env bash
# Colour drift of `upscale --color luma` against a bicubic upscale, on the
# Real-ESRGAN sample inputs. Prints, per image and mode (luma, rgb), the mean
# CIEDE2000 against bicubic (everything the network changed, lightness
# included), the mean CIEDE2000 with lightness taken from the result on
# both sides (hue and chroma drift only), and that drift over the pixels
# where neither image has a channel at 0 or 255 (no clipping). Needs
# python3-skimage.
# Usage: bench/luma_drift.sh [MODEL]   (default: the CLI's default model)
set -euo pipefail
UPRES_BIN=${UPRES_BIN:-build/upres}
SHARED=${UPRES_SHARED:-../shared}
export UPRES_MODEL_PATH="${UPRES_MODEL_PATH:-}:$SHARED/models"
out=${BENCH_OUT:-bench/out/luma}
mkdir -p "$out"
model=()
[ $# -ge 1 ] && model=(-m "$1")
for f in "$SHARED"/images/real-esrgan/inputs/*; do
    s=$(basename "${f%.*}")
    # BENCH_REUSE=1: only recompute the metrics of an earlier run.
    [ "${BENCH_REUSE:-0}" = 1 ] && [ -f "$out/$s-bicubic.png" ] && continue
    "$UPRES_BIN" upscale "$f" -o "$out/$s-luma.png" "${model[@]}" --color luma --force -q
    "$UPRES_BIN" upscale "$f" -o "$out/$s-rgb.png" "${model[@]}" --force -q
    "$UPRES_BIN" resize "$f" "$out/$s-bicubic.png" --scale 4 --filter bicubic --force -q
done
/usr/bin/python3 - "$out" <<'PY'
import sys, glob, os
import numpy as np
from PIL import Image
from skimage.color import rgb2lab, deltaE_ciede2000
out = sys.argv[1]
def rgb8(p):
    im = Image.open(p)
    if im.mode in ('I;16', 'I'):
        im = Image.fromarray((np.asarray(im) >> 8).astype(np.uint8))
    if 'A' in im.getbands():
        im = Image.alpha_composite(Image.new('RGBA', im.size, (128, 128, 128, 255)), im.convert('RGBA'))
    return np.asarray(im.convert('RGB'))
def lab(p):
    # Alpha images are compared as seen: over mid-gray, so the colour of
    # invisible pixels does not count.
    im = Image.open(p)
    if im.mode in ('I;16', 'I'):
        im = Image.fromarray((np.asarray(im) >> 8).astype(np.uint8))
    if 'A' in im.getbands():
        im = Image.alpha_composite(Image.new('RGBA', im.size, (128, 128, 128, 255)), im.convert('RGBA'))
    return rgb2lab(np.asarray(im.convert('RGB')) / 255.0)
print(f"{'image':22} {'mode':5} {'dE00 vs bicubic':>16} {'hue+chroma only':>16} {'same, unclipped':>16}")
for b in sorted(glob.glob(os.path.join(out, '*-bicubic.png'))):
    s = os.path.basename(b)[:-len('-bicubic.png')]
    lb = lab(b)
    for mode in ('luma', 'rgb'):
        la = lab(os.path.join(out, f'{s}-{mode}.png'))
        full = deltaE_ciede2000(la, lb).mean()
        lb2 = lb.copy(); lb2[..., 0] = la[..., 0]
        drift = deltaE_ciede2000(la, lb2)
        ra, rb = rgb8(os.path.join(out, f'{s}-{mode}.png')), rgb8(b)
        clip = ((ra == 0) | (ra == 255)).any(-1) | ((rb == 0) | (rb == 255)).any(-1)
        unclipped = drift[~clip].mean() if (~clip).any() else float('nan')
        print(f"{s:22} {mode:5} {full:16.3f} {drift.mean():16.3f} {unclipped:16.3f}")
PY
