#!/usr/bin/env bash
# cibuildwheel before-all, once per container (manylinux_2_28, AlmaLinux 8): for a
# CUDA variant (SOFTSET_FAST_VARIANT=cu130 -> CUDA 13.0) install the CUDA toolkit's
# compiler and the headers torch's CUDA headers include, into /usr/local/cuda.
set -euo pipefail
variant="${SOFTSET_FAST_VARIANT:-cpu}"
case "$variant" in
  cpu) echo "softset_fast wheels: CPU variant, no CUDA toolkit"; exit 0 ;;
  cu[0-9]*) ;;
  *) echo "SOFTSET_FAST_VARIANT must be cpu or cuXYZ (e.g. cu130), got '$variant'" >&2; exit 1 ;;
esac
digits="${variant#cu}"                       # 130
version="${digits:0:${#digits}-1}-${digits: -1}"  # 13-0
arch="$(uname -m)"; [ "$arch" = aarch64 ] && arch=sbsa
dnf install -y dnf-plugins-core
dnf config-manager --add-repo "https://developer.download.nvidia.com/compute/cuda/repos/rhel8/${arch}/cuda-rhel8.repo"
dnf install -y "cuda-nvcc-${version}" "cuda-cudart-devel-${version}" "cuda-cccl-${version}" "cuda-nvtx-${version}" \
  "cuda-nvrtc-devel-${version}" "libcublas-devel-${version}" "libcusparse-devel-${version}" \
  "libcusolver-devel-${version}" "libcurand-devel-${version}"
ln -sfn "/usr/local/cuda-${version/-/.}" /usr/local/cuda
/usr/local/cuda/bin/nvcc --version
