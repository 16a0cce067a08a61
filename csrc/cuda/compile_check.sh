#!/usr/bin/env bash
# Compiles every CUDA source with nvcc for sm_80 and sm_90 (no GPU, no torch needed): the
# entry points here and the per-dtype kernel files that instances.py generates. Usage:
#   bash csrc/cuda/compile_check.sh [file.cu ...]   (default: all; generated names work too)
# Env: NVCC (default nvcc), CUDA_ARCHS (default "80 90"), JOBS (default nproc), PYTHON
# (default python3), OBJDIR (keep the objects there, e.g. for cuobjdump -sass; default: a
# temporary directory).
set -eu
cd "$(dirname "$0")"
NVCC="${NVCC:-nvcc}"
ARCHS="${CUDA_ARCHS:-80 90}"
JOBS="${JOBS:-$(nproc)}"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
OUTDIR="${OBJDIR:-$TMP}"
mkdir -p "$OUTDIR"
"${PYTHON:-python3}" instances.py "$TMP/gen" > /dev/null
GENCODE=""
for a in $ARCHS; do GENCODE="$GENCODE -gencode arch=compute_$a,code=sm_$a"; done
FILES=()
if [ $# -eq 0 ]; then
  FILES=(*.cu "$TMP"/gen/*.cu)
else
  for f in "$@"; do
    if [ -f "$f" ]; then FILES+=("$f"); elif [ -f "$TMP/gen/$f" ]; then FILES+=("$TMP/gen/$f"); else
      echo "no such CUDA source: $f" >&2; exit 2; fi
  done
fi
INCLUDE="$PWD"
export NVCC GENCODE OUTDIR INCLUDE
printf '%s\n' "${FILES[@]}" | xargs -P "$JOBS" -I{} bash -c '
  f="{}"
  start=$SECONDS
  if $NVCC -c -O3 -std=c++17 --expt-relaxed-constexpr $GENCODE -I "$INCLUDE" "$f" -o "$OUTDIR/$(basename "$f").o"; then
    echo "ok   $(basename "$f") ($((SECONDS - start)) s)"
  else
    echo "FAIL $(basename "$f")"; exit 255
  fi'
echo "all ${#FILES[@]} CUDA sources compile for sm_${ARCHS// /, sm_}"
