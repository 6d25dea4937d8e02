#!/usr/bin/env bash
# Speed of `upres resize` against Pillow and libvips on a 5120x2880 RGB photo:
# lanczos3 down to 512 wide, and 512 wide back up to 5120. Every tool reads
# and writes JPEG (Q95, 4:4:4). Prints the median of $RUNS runs per tool and
# the ratios (other tool's time / upres's time: > 1 means upres is faster).
#
# Then, unless NO_RAW=1, the resampler alone: bench/bench_resample.c built ad
# hoc against $UPRES_LIB (default: the library next to $UPRES_BIN) on raw
# pixels, against `vips resize` on uncompressed .v files, so that the codecs
# do not dominate.
#
# Environment: UPRES_BIN (default build/upres), UPRES_SHARED (default
# ../shared), RUNS (default 5), THREADS (threads for the raw benchmark,
# default 2), PY (default /usr/bin/python3).
set -euo pipefail
cd "$(dirname "$0")/.."

UPRES_BIN=${UPRES_BIN:-build/upres}
UPRES_SHARED=${UPRES_SHARED:-../shared}
UPRES_LIB=${UPRES_LIB:-$(dirname "$UPRES_BIN")/libupres.a}
RUNS=${RUNS:-5}
THREADS=${THREADS:-2}
PY=${PY:-/usr/bin/python3}
OUT=bench/out
PHOTO=$UPRES_SHARED/images/photos/BytheWater.jpg

for tool in "$UPRES_BIN" vips "$PY"; do
    command -v "$tool" >/dev/null || { echo "resize.sh: $tool not found" >&2; exit 1; }
done
[ -r "$PHOTO" ] || { echo "resize.sh: $PHOTO not found (set UPRES_SHARED)" >&2; exit 1; }
mkdir -p "$OUT"

# Inputs: the 2560x1600 photo upscaled to 5120x3200 and centre-cropped to
# 5120x2880; and that image at 512x288. Both JPEG Q95 4:4:4.
if [ ! -s "$OUT/big.jpg" ] || [ ! -s "$OUT/small.jpg" ]; then
    "$PY" - "$PHOTO" "$OUT" <<'PYEOF'
import sys
from PIL import Image
src, out = sys.argv[1], sys.argv[2]
im = Image.open(src).convert("RGB")
im = im.resize((5120, 3200), Image.LANCZOS).crop((0, 160, 5120, 3040))
im.save(out + "/big.jpg", quality=95, subsampling=0)
im.resize((512, 288), Image.LANCZOS).save(out + "/small.jpg", quality=95, subsampling=0)
PYEOF
fi

now() { date +%s.%N; }

# median_time LABEL CMD...: runs CMD $RUNS times, prints and returns (in
# $MEDIAN) the median wall time in seconds.
median_time() {
    local label=$1; shift
    local times=() t0 t1
    "$@" >/dev/null 2>&1 || { echo "resize.sh: failed: $*" >&2; "$@"; exit 1; }  # warm-up
    for _ in $(seq "$RUNS"); do
        t0=$(now); "$@" >/dev/null 2>&1; t1=$(now)
        times+=("$(echo "$t1 - $t0" | bc -l)")
    done
    MEDIAN=$(printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    printf '  %-26s median %.3f s   (runs: %s)\n' "$label" "$MEDIAN" \
        "$(printf '%.3f ' "${times[@]}")"
}

ratio() { echo "scale=2; $1 / $2" | bc -l; }

echo "resize benchmark: $(nproc) CPUs, $RUNS runs each, median wall time"
echo "input: $OUT/big.jpg (5120x2880), $OUT/small.jpg (512x288); output JPEG Q95 4:4:4"

echo "down 5120x2880 -> 512x288, lanczos3:"
median_time "upres" "$UPRES_BIN" resize "$OUT/big.jpg" "$OUT/down-upres.jpg" --width 512 \
    --filter lanczos3 --quality 95 -q
U=$MEDIAN
median_time "pillow" "$PY" bench/pil_resize.py "$OUT/big.jpg" "$OUT/down-pil.jpg" 512 288
P=$MEDIAN
median_time "vips" vips resize "$OUT/big.jpg" "$OUT/down-vips.jpg[Q=95,subsample-mode=off]" 0.1 \
    --kernel lanczos3
V=$MEDIAN
echo "  ratios: pillow/upres $(ratio "$P" "$U")   vips/upres $(ratio "$V" "$U")"

echo "up 512x288 -> 5120x2880, lanczos3:"
median_time "upres" "$UPRES_BIN" resize "$OUT/small.jpg" "$OUT/up-upres.jpg" --width 5120 \
    --filter lanczos3 --quality 95 -q
U=$MEDIAN
median_time "pillow" "$PY" bench/pil_resize.py "$OUT/small.jpg" "$OUT/up-pil.jpg" 5120 2880
P=$MEDIAN
median_time "vips" vips resize "$OUT/small.jpg" "$OUT/up-vips.jpg[Q=95,subsample-mode=off]" 10 \
    --kernel lanczos3
V=$MEDIAN
echo "  ratios: pillow/upres $(ratio "$P" "$U")   vips/upres $(ratio "$V" "$U")"

[ "${NO_RAW:-0}" = 1 ] && exit 0
if [ ! -r "$UPRES_LIB" ]; then
    echo "(no $UPRES_LIB: skipping the resampler-only benchmark)"
    exit 0
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cc -O2 -Iinclude bench/bench_resample.c "$UPRES_LIB" -lm -pthread \
    $(pkg-config --libs libpng libjpeg libtiff-4 libwebp libwebpdemux libwebpmux zlib) \
    -o "$TMP/bench_resample"
"$PY" - "$OUT" "$TMP" <<'PYEOF'
import sys
from PIL import Image
out, tmp = sys.argv[1], sys.argv[2]
for name in ("big", "small"):
    im = Image.open("%s/%s.jpg" % (out, name)).convert("RGB")
    open("%s/%s.raw" % (tmp, name), "wb").write(im.tobytes())
PYEOF
vips copy "$OUT/big.jpg" "$TMP/big.v"
vips copy "$OUT/small.jpg" "$TMP/small.v"
echo "resampler only (u8 RGB, $THREADS threads; vips: VIPS_CONCURRENCY=$THREADS, .v in and out):"
"$TMP/bench_resample" "$TMP/big.raw" 5120 2880 3 512 288 "$THREADS" "$RUNS" lanczos3
"$TMP/bench_resample" "$TMP/small.raw" 512 288 3 5120 2880 "$THREADS" "$RUNS" lanczos3
export VIPS_CONCURRENCY=$THREADS
median_time "vips down (.v)" vips resize "$TMP/big.v" "$TMP/down.v" 0.1 --kernel lanczos3
median_time "vips up (.v)" vips resize "$TMP/small.v" "$TMP/up.v" 10 --kernel lanczos3
median_time "vips copy 5120x2880 (.v)" vips copy "$TMP/big.v" "$TMP/copy.v"
