#!/usr/bin/env bash
# PSNR of `upres merge` against ground truth for six image operators applied
# to the proxy (tone, saturation, grade, unsharp, bilateral, clahe). See the
# docstring of bench/proxy_fidelity.py for what is measured.
# Usage: bench/proxy_fidelity.sh [--methods "name=args;..."] [--merge-args ARGS]
#            [--photos STEMS] [--ops OPS] [--fresh] [--keep-merged] ...
# Env: UPRES_BIN (build/upres), UPRES_SHARED (../shared), PY (/usr/bin/python3).
set -euo pipefail
cd "$(dirname "$0")/.."
export UPRES_BIN=${UPRES_BIN:-build/upres}
export UPRES_SHARED=${UPRES_SHARED:-../shared}
PY=${PY:-/usr/bin/python3}
exec "$PY" bench/proxy_fidelity.py "$@"
