#!/usr/bin/env bash
# cibuildwheel before-build and before-test: the pinned torch of this variant
# (TORCH_VERSION, SOFTSET_FAST_VARIANT=cpu|cuXYZ) from PyTorch's per-variant index,
# plus the build tools; the wheel builds against it without build isolation.
# With an argument (the test-command's second smoke test): that torch release instead.
set -euo pipefail
variant="${SOFTSET_FAST_VARIANT:-cpu}"
version="${1:-${TORCH_VERSION:?set TORCH_VERSION}}"
# The extra index offers torch 2.13.0+cpu / +cu130, which pip ranks above the plain 2.13.0.
python -m pip install "torch==${version}" --extra-index-url "https://download.pytorch.org/whl/${variant}"
python - "$variant" <<'PY'
import sys, torch
got = "cu" + torch.version.cuda.replace(".", "") if torch.version.cuda else "cpu"
print(f"torch {torch.__version__}: variant {got}")
sys.exit(0 if got == sys.argv[1] else f"torch {torch.__version__} is {got}, not the requested {sys.argv[1]}")
PY
python -m pip install setuptools wheel ninja
