#!/usr/bin/env bash
# The one prepared GPU check (about 5 minutes on an H100): builds the extension
# with CUDA from this tree, runs the CUDA tests, the Triton tests, then the GPU
# benchmark (every backend timed, plus kernel-only times from torch.profiler), and
# prints a compact table last. Each step has its own time limit; a failing step is
# reported and the next one still runs (the Triton part works without the CUDA build).
# Logs and results go to $OUT (default out/gpu_check): at most 8 files.
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
# The lent machines' default g++ (/opt/gcc, "g++-real") links a private libstdc++ into shared
# objects; the extension then segfaults while formatting any C++ error message (seen with
# cuda-gdb, benchmarks/gpu_probe.sh, 2026-11-27). The system compiler does not.
if [ -z "${CXX:-}" ] && [ -x /usr/bin/g++ ]; then export CC=/usr/bin/gcc CXX=/usr/bin/g++; fi
echo "CXX=${CXX:-default}" | tee -a "$OUT/env.log"
rm -rf build softset_fast/_C*.so
step build 150 env TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}" SOFTSET_FAST_FORCE_CUDA=1 \
  MAX_JOBS="${MAX_JOBS:-16}" $PY setup.py build_ext --inplace
$PY -c "
import torch, softset_fast
from softset_fast.backends.registry import available_backends
print('available backends:', available_backends())
print('CUDA kernel registered:', torch._C._dispatch_has_kernel_for_dispatch_key('softset_fast::soft_counts', 'CUDA'))
" 2>&1 | tee -a "$OUT/env.log"

# Which C++ exceptions survive on this machine (the first run segfaulted at the first error
# raised by the CUDA op): each probe in its own process; gdb's backtrace if there is a gdb.
cat > "$OUT/probe.py" <<'PROBE'
import sys, torch, softset_fast
from softset_fast._grid import coefficient_table, resolve_thresholds
dev = sys.argv[1]
grid = coefficient_table(resolve_thresholds(5, "linear", dev), "linear", 0.2)
preds, target = torch.rand(4, 3, 5, device=dev), torch.rand(4, 3, 5, device=dev) < 0.5
try:
    torch.ops.softset_fast.soft_counts(preds[0], target, None, grid, "linear", 10.0, 0, None, False)
    print(dev, "probe: no error raised")
except RuntimeError as err:
    print(dev, "probe: raised", str(err).splitlines()[0][:120])
PROBE
probe() {
  for dev in cpu cuda; do
    timeout -k 5 40 $PY -X faulthandler "$OUT/probe.py" $dev 2>&1 | tail -n 3
    echo "probe $dev rc=${PIPESTATUS[0]}"
  done
  if command -v gdb >/dev/null; then
    timeout -k 5 60 gdb -q -batch -ex run -ex bt --args $PY "$OUT/probe.py" cuda 2>&1 | grep -E "^#|SIG|probe" | head -n 30
  fi
  rm -f "$OUT/probe.py"
}
echo "=== probe ===" | tee "$OUT/test_errors.log"
probe 2>&1 | tee -a "$OUT/test_errors.log"

# The direct-op argument checks first, verbose (each test's name is printed before it runs,
# so a crash names its case), cpu and cuda: errors raised by the C++ ops themselves.
step test_errors_pytest 40 $PY -X faulthandler -m pytest -v -p no:cacheprovider tests/test_op_contract.py \
  -k "cpu or cuda"
cat "$OUT/test_errors_pytest.log" >> "$OUT/test_errors.log" && rm -f "$OUT/test_errors_pytest.log"

CUDA_TESTS=$(ls tests/test_cuda.py tests/test_backends.py tests/test_loss_epilogue.py tests/test_ops.py 2>/dev/null | tr '\n' ' ')
# The whole CUDA matrix (the loss epilogue kernel included); the argument-check cases ran
# above (a crash there must not hide the rest of the matrix).
step test_cuda 75 $PY -X faulthandler -m pytest -x -q -p no:cacheprovider $CUDA_TESTS -k "cuda"
TRITON_TESTS=$(ls tests/test_triton*.py 2>/dev/null | tr '\n' ' ')
if [ -n "$TRITON_TESTS" ]; then
  step test_triton 100 $PY -m pytest -x -q -p no:cacheprovider $TRITON_TESTS
fi
step bench 100 $PY benchmarks/gpu_bench.py --out "$OUT"

# At most 8 files come back: the test logs go into one.
for f in test_errors test_cuda test_triton; do
  [ -f "$OUT/$f.log" ] && { echo "##### $f"; cat "$OUT/$f.log"; rm -f "$OUT/$f.log"; }
done > "$OUT/tests.log"

echo
echo "==================== summary ===================="
for name in build test_errors_pytest test_cuda test_triton bench; do
  [ -n "${STATUS[$name]+x}" ] && printf '%-12s %s\n' "$name" "${STATUS[$name]}"
done
grep -E "^#####|passed|failed|rror|Fatal" "$OUT/tests.log" 2>/dev/null | grep -v "^tests/" | tail -n 16
[ -f "$OUT/results.md" ] && cat "$OUT/results.md"
exit 0
