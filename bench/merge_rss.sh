#!/usr/bin/env bash
# Peak memory and time of `upres merge` on a 12000x9000 RGB original, the
# acceptance bound of the proxy workflow being < 150 MB RSS. The original is
# BytheWater.jpg resized to 12000x9000 (324 MB of pixels) and written as PNG,
# JPEG and TIFF; each is split to a 512x512 proxy, the "model" brightens the
# proxy by 20 levels (Pillow), split-with-processed makes the delta, and the
# merge runs under /usr/bin/time -v. Also reported: the same merge with the
# whole original in memory would need at least 2 x 324 MB (in + out).
#
# Environment: UPRES_BIN (default build/upres), UPRES_SHARED (default
# ../shared), FORMATS (default "png jpg tif"), PY (default /usr/bin/python3).
set -euo pipefail
cd "$(dirname "$0")/.."
UPRES_BIN=${UPRES_BIN:-build/upres}
UPRES_SHARED=${UPRES_SHARED:-../shared}
FORMATS=${FORMATS:-png jpg tif}
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
a = np.asarray(Image.open(sys.argv[1]).convert("RGB")).astype(np.int16)
Image.fromarray(np.clip(a + 20, 0, 255).astype(np.uint8)).save(sys.argv[2])
PYEOF
    "$UPRES_BIN" -q split-with-processed "$orig" "$OUT/big_processed.png" 512 512
    rm -f "$OUT/big_merged.png"
    /usr/bin/time -v "$UPRES_BIN" -q merge "$orig" "$OUT/big_proxy_delta.png" \
        --output_image "$OUT/big_merged.png" --compression 1 2> "$OUT/time_$fmt.txt"
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$OUT/time_$fmt.txt")
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$OUT/time_$fmt.txt")
    printf 'merge of 12000x9000 %-4s original: peak RSS %6.1f MB, wall %s (pixels alone: 324 MB)\n' \
        "$fmt" "$(echo "$rss / 1024" | bc -l)" "$wall"
done
