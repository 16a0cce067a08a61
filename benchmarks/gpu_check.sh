#!/usr/bin/env bash
# The one prepared GPU check (about 7 minutes on an H100): builds the extension
# with CUDA from this tree, runs the CUDA and Triton tests, then the GPU benchmark,
# and prints a compact table. Each step has its own time limit; a failing step is
# reported and the next one still runs (the Triton part works without the CUDA build).
# Logs and results go to $OUT (default out/gpu_check).
#
#   bash benchmarks/gpu_check.sh            # on the lent GPU machine, from the repo root
set -u
set +x
export PYTHONUNBUFFERED=1
OUT="${OUT:-out/gpu_check}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
declare -A STATUS

step() {  # step NAME SECONDS CMD...: runs CMD with a limit, tees its log, records the outcome
  local name="$1" limit="$2"; shift 2
  local t0=$SECONDS
  echo "=== $name (limit ${limit}s) ==="
  timeout --kill-after=10 "$limit" "$@" > >(tee "$OUT/$name.log") 2>&1
  local rc=$?
  wait
  local what="ok"
  [ $rc -eq 124 ] || [ $rc -eq 137 ] && what="TIMEOUT"
  [ $rc -ne 0 ] && [ "$what" = ok ] && what="FAILED rc=$rc"
  STATUS[$name]="$what ($((SECONDS - t0)) s)"
  echo "=== $name: ${STATUS[$name]} ==="
}

{
  echo "date: $(date -u +%FT%TZ)"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1
  $PY -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda)"
  nvcc --version | tail -n 2
} 2>&1 | tee "$OUT/env.log"

# Build with the machine's own torch and nvcc; sm_90 only to keep it short.
# torch guesses CUDA_HOME from nvcc on PATH, which may be a wrapper: name the real root.
if [ -z "${CUDA_HOME:-}" ] && command -v nvcc >/dev/null; then
  export CUDA_HOME="$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")"
fi
echo "CUDA_HOME=${CUDA_HOME:-unset}" | tee -a "$OUT/env.log"
rm -rf build softset_fast/_C*.so
step build 280 env TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}" SOFTSET_FAST_FORCE_CUDA=1 \
  MAX_JOBS="${MAX_JOBS:-16}" $PY setup.py build_ext --inplace
$PY -c "
import torch, softset_fast
from softset_fast._backends import available_backends
print('available backends:', available_backends())
print('CUDA kernel registered:', torch._C._dispatch_has_kernel_for_dispatch_key('softset_fast::soft_counts', 'CUDA'))
" 2>&1 | tee "$OUT/import.log"

TRITON_TESTS=$(ls tests/test_triton*.py 2>/dev/null | tr '\n' ' ')
CUDA_TESTS=$(ls tests/test_cuda.py tests/test_backends.py 2>/dev/null | tr '\n' ' ')
step test_cuda 110 $PY -m pytest -x -q -p no:cacheprovider $CUDA_TESTS -k "cuda"
if [ -n "$TRITON_TESTS" ]; then
  step test_triton 70 $PY -m pytest -x -q -p no:cacheprovider $TRITON_TESTS
fi
step bench 150 $PY benchmarks/gpu_bench.py --out "$OUT"

echo
echo "==================== summary ===================="
for name in build test_cuda test_triton bench; do
  [ -n "${STATUS[$name]+x}" ] && printf '%-12s %s\n' "$name" "${STATUS[$name]}"
done
grep -E "passed|failed|error" "$OUT"/test_*.log 2>/dev/null | tail -n 4
[ -f "$OUT/results.md" ] && cat "$OUT/results.md"
exit 0
