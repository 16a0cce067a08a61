#!/usr/bin/env bash
# Compiles every csrc/cuda/*.cu with nvcc for sm_80 and sm_90 (no GPU, no torch
# needed): the CI check that the CUDA kernels build. Usage:
#   bash csrc/cuda/compile_check.sh [file.cu ...]      (default: all of them)
# Env: NVCC (default nvcc), CUDA_ARCHS (default "80 90"), JOBS (default nproc).
set -eu
cd "$(dirname "$0")"
NVCC="${NVCC:-nvcc}"
ARCHS="${CUDA_ARCHS:-80 90}"
JOBS="${JOBS:-$(nproc)}"
OUTDIR="$(mktemp -d)"
trap 'rm -rf "$OUTDIR"' EXIT
GENCODE=""
for a in $ARCHS; do GENCODE="$GENCODE -gencode arch=compute_$a,code=sm_$a"; done
FILES=("$@")
[ ${#FILES[@]} -eq 0 ] && FILES=(*.cu)
export NVCC GENCODE OUTDIR
printf '%s\n' "${FILES[@]}" | xargs -P "$JOBS" -I{} bash -c '
  f="{}"
  start=$SECONDS
  if $NVCC -c -O3 -std=c++17 --expt-relaxed-constexpr $GENCODE "$f" -o "$OUTDIR/$(basename "$f").o"; then
    echo "ok   $f ($((SECONDS - start)) s)"
  else
    echo "FAIL $f"; exit 255
  fi'
echo "all ${#FILES[@]} CUDA sources compile for sm_${ARCHS// /, sm_}"
