#!/usr/bin/env bash
# Neural-network inference speed of upres against PyTorch (Debian
# python3-torch, CPU, oneDNN convolutions, OpenBLAS) on the same machine, at
# the same thread count, in the same run. Models and inputs:
#   x4plus        RRDBNet, RealESRGAN_x4plus configuration (64 feat, 23 blocks,
#                 grow 32, x4), seeded random weights, 64x64 input
#   anime6b       RRDBNet, RealESRGAN_x4plus_anime_6B configuration (6 blocks),
#                 seeded random weights, 64x64 input
#   animevideov3  SRVGGNetCompact (64 feat, 16 convs, PReLU, x4), real weights
#                 from $UPRES_SHARED/models/pytorch, 128x128 input
#   general-x4v3  SRVGGNetCompact (64 feat, 32 convs, PReLU, x4), 128x128 input;
#                 upres runs the real ncnn model ($UPRES_SHARED/models/ncnn/
#                 realesr-general-x4v3/upscayl-lite-4x.param), torch the same
#                 architecture with random weights (the real weights exist only
#                 as ncnn; a dense convolution's speed does not depend on them)
# The random RRDBNet weights are written once by bench/nn_torch.py (torch.save,
# basicsr key names) to bench/out/nn/ and both engines load those files.
#
# Each model runs $RUNS rounds; a round is one upres timing and one torch
# timing, the order swapped every round. upres: `upres bench --runs 1
# --tile-pad 0 --json` (a fresh process, one untimed warm-up then one timed
# upres_upscale of the whole image in one tile, u8 -> float -> u8 conversion
# included; --tile-pad 0 so the network runs on exactly the WxH image, as
# torch's does, rather than on the image plus mirrored border context). torch: a
# resident process (bench/nn_torch.py serve), warmed up once per model, times
# model(x) on a float32 tensor under inference_mode (no conversion). Reported
# per model: median seconds of each, torch/upres (> 1: upres faster), the
# effective GFLOP/s of each (FLOPs = 2 * multiply-adds of every convolution,
# upsampling convolutions included; see nn_torch.py model_flops), and, once,
# the machine's float32 GEMM rate (numpy 2048^3 matmul, OpenBLAS, median of 5;
# measured before and after the models, the higher one is used).
#
# Environment: UPRES_BIN (default build/upres), UPRES_SHARED (default
# ../shared), RUNS (rounds per model, default 5), THREADS (default: number of
# CPUs), MODELS (default "x4plus anime6b animevideov3 general-x4v3"),
# PY (default /usr/bin/python3).
set -euo pipefail
cd "$(dirname "$0")/.."

UPRES_BIN=${UPRES_BIN:-build/upres}
UPRES_SHARED=${UPRES_SHARED:-../shared}
RUNS=${RUNS:-5}
THREADS=${THREADS:-$(nproc)}
MODELS=${MODELS:-x4plus anime6b animevideov3 general-x4v3}
PY=${PY:-/usr/bin/python3}
OUT=bench/out/nn
export UPRES_SHARED

die() { echo "nn.sh: $*" >&2; exit 1; }
[ -x "$UPRES_BIN" ] || die "$UPRES_BIN not found (make first)"
"$PY" -c 'import torch, numpy' 2>/dev/null ||
    die "$PY cannot import torch and numpy (bash .ci/deps --bench)"
[ "$RUNS" -ge 5 ] 2>/dev/null || echo "nn.sh: warning: RUNS=$RUNS, fewer than 5" >&2

# Thread counts for every pool torch or numpy may start.
export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS

# model_file NAME: the file upres loads for NAME.
model_file() {
    case $1 in
        x4plus|anime6b) echo "$OUT/rrdb-$1.pth" ;;
        animevideov3) echo "$UPRES_SHARED/models/pytorch/realesr-animevideov3.pth" ;;
        general-x4v3) echo "$UPRES_SHARED/models/ncnn/realesr-general-x4v3/upscayl-lite-4x.param" ;;
        *) die "unknown model $1" ;;
    esac
}
# model_size NAME: the input edge in pixels.
model_size() { case $1 in x4plus|anime6b) echo 64 ;; *) echo 128 ;; esac; }

for m in $MODELS; do
    f=$(model_file "$m")
    case $m in x4plus|anime6b) ;; *) [ -r "$f" ] || die "$f not found (set UPRES_SHARED)" ;; esac
done

mkdir -p "$OUT"
"$PY" bench/nn_torch.py gen "$OUT" >/dev/null

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

PEAK=$("$PY" bench/nn_torch.py sgemm "$THREADS")
BLAS=$("$PY" -c 'import numpy, re
numpy.ones((64, 64), numpy.float32) @ numpy.ones((64, 64), numpy.float32)
libs = [l.split()[-1] for l in open("/proc/self/maps") if re.search(r"blas", l)]
import os; print(sorted({os.path.realpath(l) for l in libs})[0] if libs else "?")')
TORCH_VER=$("$PY" -c 'import torch; print(torch.__version__)')

echo "nn benchmark: $(nproc) CPUs, $THREADS threads, $RUNS alternating rounds per model, median"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); torch $TORCH_VER"
echo "SGEMM peak (numpy float32 2048^3, $THREADS threads): $PEAK GFLOP/s  [$BLAS]"

coproc TORCH { exec "$PY" bench/nn_torch.py serve "$THREADS" "$OUT"; }
TORCH_IN=${TORCH[1]} TORCH_OUT=${TORCH[0]}

# torch_time NAME S: one timed torch forward pass, seconds in $T.
torch_time() {
    echo "$1 $2 $2" >&"$TORCH_IN"
    read -r T <&"$TORCH_OUT" || die "torch server died on $1"
}
# upres_time NAME S: one timed upres_upscale, seconds in $U.
upres_time() {
    local j
    j=$("$UPRES_BIN" -q -j "$THREADS" bench -m "$(model_file "$1")" --size "$2x$2" --runs 1 --tile-pad 0 --json) ||
        die "upres bench failed on $1"
    U=$(sed -n 's/.*"seconds_median": \([0-9.eE+-]*\).*/\1/p' <<<"$j")
    local tiles threads
    tiles=$(sed -n 's/.*"tiles": \([0-9]*\).*/\1/p' <<<"$j")
    threads=$(sed -n 's/.*"threads": \([0-9]*\).*/\1/p' <<<"$j")
    [ "$tiles" = 1 ] || die "upres split $1 at $2x$2 into $tiles tiles; expected 1"
    [ "$threads" = "$THREADS" ] || die "upres ran $threads threads, expected $THREADS"
}

ROWS=()
for m in $MODELS; do
    s=$(model_size "$m")
    flops=$("$PY" bench/nn_torch.py flops "$m" "$s" "$s")
    us=() ts=()
    for r in $(seq "$RUNS"); do
        if [ $((r % 2)) = 1 ]; then upres_time "$m" "$s"; torch_time "$m" "$s"
        else torch_time "$m" "$s"; upres_time "$m" "$s"; fi
        us+=("$U") ts+=("$T")
    done
    um=$(median "${us[@]}") tm=$(median "${ts[@]}")
    printf '%s %sx%s, %s GFLOP\n  upres  s: %s\n  torch  s: %s\n' "$m" "$s" "$s" \
        "$(awk -v f="$flops" 'BEGIN { printf "%.1f", f / 1e9 }')" \
        "$(printf '%.3f ' "${us[@]}")" "$(printf '%.3f ' "${ts[@]}")"
    ROWS+=("$m $s $flops $um $tm")
done

exec {TORCH_IN}>&-
wait "$TORCH_PID" 2>/dev/null || true

# The peak again: other load during the run shows as a gap between the two.
PEAK2=$("$PY" bench/nn_torch.py sgemm "$THREADS")
echo "SGEMM peak again after the run: $PEAK2 GFLOP/s"
PEAK=$(awk -v a="$PEAK" -v b="$PEAK2" 'BEGIN { print (a > b ? a : b) }')

echo
echo "medians; torch/upres > 1 means upres is faster; GFLOP/s in parentheses as % of the SGEMM peak"
echo "(the higher of the two measurements, $PEAK GFLOP/s)"
echo "| model | input | GFLOP | upres s | torch s | torch/upres | upres GFLOP/s | torch GFLOP/s |"
echo "|---|---|---|---|---|---|---|---|"
for row in "${ROWS[@]}"; do
    awk -v p="$PEAK" -v row="$row" 'BEGIN {
        split(row, r, " "); m = r[1]; s = r[2]; f = r[3]; u = r[4]; t = r[5]
        printf "| %s | %dx%d | %.1f | %.3f | %.3f | %.2f | %.1f (%.0f%%) | %.1f (%.0f%%) |\n",
            m, s, s, f / 1e9, u, t, t / u, f / u / 1e9, 100 * f / u / 1e9 / p,
            f / t / 1e9, 100 * f / t / 1e9 / p }'
done
