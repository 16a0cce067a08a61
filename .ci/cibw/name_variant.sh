#!/usr/bin/env bash
# cibuildwheel before-build: a CUDA variant is its own distribution (softset-fast-cu130: the CPU and CUDA
# kernels), the CPU variant keeps softset-fast. The name is static in pyproject.toml ([project] name
# cannot be dynamic), so the container's copy of the project is renamed before the build; setup.py
# records the same name (softset_fast/_wheel.py: distribution) for show_config().
set -euo pipefail
variant="${SOFTSET_FAST_VARIANT:-cpu}"
[ "$variant" = cpu ] && exit 0
pyproject="$(dirname "$0")/../../pyproject.toml"
sed -i "s/^name = \"softset-fast\"\$/name = \"softset-fast-${variant}\"/" "$pyproject"
grep -q "^name = \"softset-fast-${variant}\"\$" "$pyproject" || { echo "could not rename the distribution in $pyproject"; exit 1; }
echo "softset_fast wheels: distribution softset-fast-${variant}"
