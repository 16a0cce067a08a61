#!/usr/bin/env bash
# One wheel, many torch releases: builds the wheel ONCE against the installed torch (the round trip of
# .ci/wheel_roundtrip.sh: sdist, wheel, auditwheel, smoke test), checks its extension's imports
# (tools/check_stable_abi.py, and torch-abi-audit from PyPI), then in each given venv installs that
# wheel (--no-deps: the venv's torch stays) with the test dependencies and runs .ci/smoke_wheel.py and
# the CPU test suite against the installed package. A stable-ABI wheel must pass under every torch >=
# MIN_TORCH (softset_fast/_wheel.py); a build of the unported C++ passes only under its own torch.
#
#   bash .ci/torch_matrix.sh [VENV=TORCH_VERSION ...]      (make torch-matrix)
#
# Each argument is a venv and the torch it holds; a missing venv is created (python -m venv, then
# pip install torch==VERSION; PIP_CONSTRAINT=/dev/null lifts a pip constraints file that caps torch).
# Default: /work/venvs/pt211=2.11.0 /work/venvs/pt212=2.12.1 /work/venvs/pt214=2.14.1 /work/venvs/pt215=2.15.0.
# Env: PYTHON (the build's python, with torch, setuptools, wheel, ninja), WHEEL (test this wheel instead
# of building one; BUILD_TORCH is then PYTHON's torch), PYTEST_ARGS (default
# "tests -x -q"), KEEP=1 keeps the temp dir. Exit 1 when any step failed; the summary lists them all.
set -uo pipefail
SRC="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
PYTEST_ARGS="${PYTEST_ARGS:-tests -x -q}"
TEST_DEPS="pytest pytest-benchmark hypothesis numpy scikit-learn matplotlib tqdm torchmetrics"  # the CPU suite's imports; demo writes its png with matplotlib
[ $# -gt 0 ] || set -- /work/venvs/pt211=2.11.0 /work/venvs/pt212=2.12.1 /work/venvs/pt214=2.14.1 /work/venvs/pt215=2.15.0
WORK="$(mktemp -d -t softset-matrix.XXXXXX)"
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$WORK"' EXIT
RESULTS=()
record() { RESULTS+=("$(printf '%-8s %-28s %s' "$1" "$2" "$3")"); echo "== torch matrix: $1 $2: $3"; }

BUILD_TORCH="$("$PYTHON" -c 'import torch; print(torch.__version__.split("+")[0])')"
if [ -z "${WHEEL:-}" ]; then  # WHEEL=path: a wheel the round trip built already (WHEEL_OUT of .ci/run)
  echo "== torch matrix: the wheel, built once against torch $BUILD_TORCH"
  TORCH_VERSION="$BUILD_TORCH" WHEEL_OUT="$WORK/wheel" PYTHON="$PYTHON" bash "$SRC/.ci/wheel_roundtrip.sh" \
    || { echo "the wheel round trip failed: no wheel to test"; exit 1; }
  WHEEL="$(ls "$WORK"/wheel/softset_fast-*.whl)"
fi
mkdir -p "$WORK/unpacked" && "$PYTHON" -m zipfile -e "$WHEEL" "$WORK/unpacked"
SO="$(ls "$WORK"/unpacked/softset_fast/_C*.so)"

if "$PYTHON" "$SRC/tools/check_stable_abi.py" "$SO" >"$WORK/abi.txt"; then
  record pass "stable ABI imports" "tools/check_stable_abi.py"
else
  head -20 "$WORK/abi.txt"; record FAIL "stable ABI imports" "$(head -1 "$WORK/abi.txt" | sed 's/.*: //')"
fi
# The same question from an independent tool, which also names the oldest torch the C shim calls allow.
if "$PYTHON" -m pip install -q torch-abi-audit >/dev/null 2>&1; then
  AUDIT="$(dirname "$(command -v "$PYTHON")")/torch-abi-audit"
  [ -x "$AUDIT" ] || AUDIT=torch-abi-audit
  if "$AUDIT" -v "$SO" --check torch >"$WORK/audit.txt" 2>&1; then
    record pass "torch-abi-audit" "$(grep -m1 'Min torch' "$WORK/audit.txt" | tr -s ' ')"
  else
    head -20 "$WORK/audit.txt"; record FAIL "torch-abi-audit" "$(grep -m1 'Torch ABI' "$WORK/audit.txt" | tr -s ' ')"
  fi
else
  record FAIL "torch-abi-audit" "could not pip install torch-abi-audit"
fi

# The test tree without the package, so that tests import the installed wheel (their subprocesses
# run with cwd = this tree, too); csrc/, examples/, tools/ stay for the tests that read them, and so does
# softset_fast/py.typed (tests/test_api.py checks the checkout ships it): a directory without Python
# files never shadows the installed package.
mkdir -p "$WORK/tree"
(cd "$SRC" && git ls-files -z --cached --others --exclude-standard -- . ':(exclude,glob)softset_fast/**/*.py' \
   | xargs -0 -I{} sh -c 'test -e "{}" && printf "%s\0" "{}"' | tar --null -T - -cf -) | tar -C "$WORK/tree" -xf -
cp "$SRC/.ci/smoke_wheel.py" "$WORK/smoke_wheel.py"

for spec in "$@"; do
  venv="${spec%%=*}" version="${spec#*=}"
  vpy="$venv/bin/python"
  echo "== torch matrix: $venv (torch $version)"
  if [ ! -x "$vpy" ] || ! "$vpy" -c 'import torch' 2>/dev/null; then
    "$PYTHON" -m venv "$venv" && PIP_CONSTRAINT=/dev/null "$vpy" -m pip install -q "torch==$version" \
      || { record FAIL "$version" "could not create $venv"; continue; }
  fi
  # --no-deps: the wheel's torch requirement must not swap the venv's torch; the venv's pip settings
  # stay (PIP_CONSTRAINT=/dev/null only so that a torch cap cannot downgrade torch through a dependency).
  PIP_CONSTRAINT=/dev/null "$vpy" -m pip install -q --no-deps --force-reinstall "$WHEEL" \
    && PIP_CONSTRAINT=/dev/null "$vpy" -m pip install -q $TEST_DEPS \
    || { record FAIL "$version" "pip install"; continue; }
  # tests/test_triton.py runs the Triton kernels under the CPU interpreter, which needs triton >= 3.9
  # (3.6's, torch 2.11's pin, rejects a bool scalar argument; on a GPU 3.6 runs them): --no-deps keeps torch.
  "$vpy" -c 'import sys, triton; sys.exit(tuple(map(int, triton.__version__.split(".")[:2])) < (3, 9))' 2>/dev/null \
    || PIP_CONSTRAINT=/dev/null "$vpy" -m pip install -q --no-deps "triton>=3.9"
  running="$("$vpy" -c 'import torch; print(torch.__version__)' 2>/dev/null)"
  case "$running" in "$version"|"$version"+*) ;; *) record FAIL "$version" "the venv holds torch $running"; continue;; esac
  if (cd "$WORK" && "$vpy" smoke_wheel.py) >"$WORK/smoke.txt" 2>&1; then
    record pass "$running" "smoke test"
  else
    tail -5 "$WORK/smoke.txt"; record FAIL "$running" "smoke test: $(tail -1 "$WORK/smoke.txt" | cut -c1-150)"
  fi
  # python -m pytest from the tree puts it first on sys.path; it has no softset_fast/, so the wheel is
  # imported (checked first). PATH: the venv's console script, not another install's.
  if (cd "$WORK/tree" && export PATH="$venv/bin:$PATH" && \
      "$vpy" -c 'import softset_fast, sys; sys.exit("site-packages" not in softset_fast.__file__ and softset_fast.__file__)' && \
      "$vpy" -m pytest -p no:cacheprovider $PYTEST_ARGS) >"$WORK/pytest.txt" 2>&1; then
    record pass "$running" "pytest $PYTEST_ARGS: $(tail -1 "$WORK/pytest.txt")"
  else
    # The whole log is kept: the temp dir goes, and a fuzz failure's example is above the last lines.
    mkdir -p "$SRC/out/torch-matrix" && cp "$WORK/pytest.txt" "$SRC/out/torch-matrix/pytest-$running.txt"
    tail -15 "$WORK/pytest.txt"; echo "the whole log: out/torch-matrix/pytest-$running.txt"
    record FAIL "$running" "pytest $PYTEST_ARGS: $(tail -1 "$WORK/pytest.txt" | cut -c1-150)"
  fi
done

echo "== torch matrix summary (wheel $(basename "$WHEEL"), built against torch $BUILD_TORCH)"
printf '%s\n' "${RESULTS[@]}"
! printf '%s\n' "${RESULTS[@]}" | grep -q '^FAIL'
