#!/usr/bin/env bash
# Short diagnosis on the lent GPU machine (about 3 minutes): does a C++ error raised by the
# extension (TORCH_CHECK) reach Python there, or crash the process as in the gpu_check runs?
# Builds the CPU op three ways (the default compiler, the system compiler, without OpenMP and
# the limited API) and calls the op with a bad argument after each; then reruns the Triton
# torch.compile tests.   bash benchmarks/gpu_probe.sh  (logs in $OUT)
set -u
export PYTHONUNBUFFERED=1
OUT="${OUT:-out/gpu_probe}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
LOG="$OUT/probe.log"
{
  echo "date: $(date -u +%FT%TZ)"
  for c in /opt/gcc/bin/g++ /usr/bin/g++ $(command -v c++); do [ -x "$c" ] && echo "$c: $($c --version | head -n 1)"; done
  $PY -c "import torch; print(torch.__version__); print(torch._C._GLIBCXX_USE_CXX11_ABI); print(torch.__config__.show())" 2>&1 \
    | grep -iE "^[0-9]|True|False|compiler|gcc|CXX_FLAGS" | head -n 8
  command -v cuda-gdb gdb
} > "$LOG" 2>&1

cat > /tmp/probe.py <<'PROBE'
import sys, torch
sys.path.insert(0, ".")
import softset_fast  # noqa: F401  registers the ops
p = torch.rand(4, 5)
try:
    torch.ops.softset_fast.soft_counts(p, p, None, torch.zeros(3, 8, dtype=torch.float64), "linear", 10.0, 0, None, False)
    print("probe: no error raised")
except Exception as err:
    print("probe: raised", type(err).__name__, str(err).splitlines()[0][:100])
PROBE

attempt() {  # attempt NAME [ENV...]: CPU-only build with ENV, then the probe
  local name="$1"; shift
  rm -rf build softset_fast/_C*.so
  env "$@" SOFTSET_FAST_FORCE_CPU=1 MAX_JOBS=16 timeout 150 $PY setup.py build_ext --inplace > "$OUT/build.log" 2>&1
  echo "== $name: build rc=$? ($(grep -m1 -oE '(/opt/gcc/bin/g\+\+|/usr/bin/g\+\+|c\+\+) ' "$OUT/build.log"))"
  timeout 60 $PY -X faulthandler /tmp/probe.py 2>&1 | grep -E "probe|Fatal|Segmentation|Abort" | head -n 3
  echo "   probe rc=${PIPESTATUS[0]}"
}
{
  attempt default
  if command -v cuda-gdb >/dev/null; then
    timeout 90 cuda-gdb -q -batch -ex run -ex bt --args $PY /tmp/probe.py 2>&1 | grep -E "^#|SIG|probe" | head -n 25
  fi
  [ -x /usr/bin/g++ ] && attempt system-gcc CC=/usr/bin/gcc CXX=/usr/bin/g++
  sed -i 's/cxx += \["-fopenmp", "-DPy_LIMITED_API=0x03090000"\]/cxx += []/; s/extra_link_args=\["-fopenmp"\], py_limited_api=True/py_limited_api=False/' setup.py
  attempt no-openmp-no-limited-api
  git checkout -q setup.py 2>/dev/null || true
} >> "$LOG" 2>&1

# The Triton torch.compile tests (the bool-target fix) need no extension build.
rm -rf build softset_fast/_C*.so
timeout 120 $PY -m pytest -q -p no:cacheprovider tests/test_triton.py -k compile >> "$LOG" 2>&1
echo "triton compile tests rc=$?" >> "$LOG"
cat "$LOG"
