#!/usr/bin/env bash
# Peak memory and time of `upres merge` on a 12000x9000 RGB original, per
# method (the bounds: delta < 150 MB RSS, guided < 200 MB). The original is
# BytheWater.jpg resized to 12000x9000 (324 MB of pixels) and written as PNG,
# JPEG and TIFF; each is split to a 512x512 proxy, the "model" applies a tone
# curve and a +10 level lift to the proxy (Pillow), split-with-processed
# makes the delta, and each method's merge runs under /usr/bin/time -v; the
# guided methods' wall time is also given relative to delta's on the same
# original (run after it, same process environment). Holding the original
# and the result in memory would need at least 2 x 324 MB (in + out).
#
# Environment: UPRES_BIN (default build/upres), UPRES_SHARED (default
# ../shared), FORMATS (default "png jpg tif"), METHODS (default
# "delta guided auto"), PY (default /usr/bin/python3).
set -euo pipefail
cd "$(dirname "$0")/.."
UPRES_BIN=${UPRES_BIN:-build/upres}
UPRES_SHARED=${UPRES_SHARED:-../shared}
FORMATS=${FORMATS:-png jpg tif}
METHODS=${METHODS:-delta guided auto}
PY=${PY:-/usr/bin/python3}
OUT=bench/out/merge
PHOTO=$UPRES_SHARED/images/photos/BytheWater.jpg
[ -x /usr/bin/time ] || { echo "merge_rss.sh: /usr/bin/time not found (apt-get install time)" >&2; exit 1; }
[ -r "$PHOTO" ] || { echo "merge_rss.sh: $PHOTO not found (set UPRES_SHARED)" >&2; exit 1; }
mkdir -p "$OUT"

for fmt in $FORMATS; do
    orig=$OUT/big.$fmt
    if [ ! -s "$orig" ]; then
        echo "making $orig (12000x9000) ..."
        "$UPRES_BIN" -q resize "$PHOTO" "$orig" --size 12000x9000 --fit fill --compression 1 --quality 90
    fi
    "$UPRES_BIN" -q split "$orig" 512 512
    "$PY" - "$OUT/big_proxy.png" "$OUT/big_processed.png" <<'PYEOF'
import sys
import numpy as np
from PIL import Image
a = np.asarray(Image.open(sys.argv[1]).convert("RGB")).astype(np.float64) / 255
t = a ** 0.8 + 10 / 255
Image.fromarray((np.clip(t, 0, 1) * 255 + 0.5).astype(np.uint8)).save(sys.argv[2])
PYEOF
    "$UPRES_BIN" -q split-with-processed "$orig" "$OUT/big_processed.png" 512 512
    base=""
    for m in $METHODS; do
        rm -f "$OUT/big_merged.png"
        /usr/bin/time -v "$UPRES_BIN" -q merge "$orig" "$OUT/big_proxy_delta.png" --method "$m" \
            --output_image "$OUT/big_merged.png" --compression 1 2> "$OUT/time_${fmt}_$m.txt"
        rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$OUT/time_${fmt}_$m.txt")
        wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$OUT/time_${fmt}_$m.txt")
        secs=$(echo "$wall" | awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }')
        [ "$m" = delta ] && base=$secs
        rel=""
        [ -n "$base" ] && rel=$(awk -v a="$secs" -v b="$base" 'BEGIN { printf "  (%.2fx delta)", a / b }')
        printf 'merge --method %-6s of 12000x9000 %-4s original: peak RSS %6.1f MB, wall %s%s\n' \
            "$m" "$fmt" "$(echo "$rss / 1024" | bc -l)" "$wall" "$rel"
    done
done
