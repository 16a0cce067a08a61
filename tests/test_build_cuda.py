"""The CUDA sources compile with nvcc for sm_80 and sm_90, without a GPU.

Skipped when nvcc is not on PATH. Each file takes 30 s to a few minutes on a
small machine, so the compiles are marked slow (`pytest -m slow
tests/test_build_cuda.py`, or `make cuda-compile-check`, which runs them in
parallel); the header check is quick.
"""
import glob
import os
import shutil
import subprocess

import pytest

CUDA_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "csrc", "cuda")
ENTRY_FILES = ["forward.cu", "backward.cu", "epilogue.cu"]  # the rest: per-dtype soft_counts kernels
KERNEL_FILES = sorted(os.path.basename(f) for f in glob.glob(os.path.join(CUDA_DIR, "*.cu"))
                      if os.path.basename(f) not in ENTRY_FILES)

needs_nvcc = pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not on PATH")


def _compile(name, tmp_path):
    cmd = ["nvcc", "-c", "-O3", "-std=c++17", "--expt-relaxed-constexpr",
           "-gencode", "arch=compute_80,code=sm_80", "-gencode", "arch=compute_90,code=sm_90",
           os.path.join(CUDA_DIR, name), "-o", str(tmp_path / (name + ".o"))]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, f"nvcc failed for {name}:\n{result.stderr[-4000:]}"
    assert (tmp_path / (name + ".o")).stat().st_size > 0


def test_cuda_sources_include_no_torch_headers():
    # Torch headers make a .cu take minutes and gigabytes to compile; the glue is in .cpp.
    for path in glob.glob(os.path.join(CUDA_DIR, "*.cu")) + glob.glob(os.path.join(CUDA_DIR, "*.cuh")):
        with open(path) as f:
            text = f.read()
        for header in ("torch/", "ATen/", "c10/"):
            assert f"#include <{header}" not in text, f"{os.path.basename(path)} includes a {header} header"


def test_every_kernel_file_is_listed():
    assert len(KERNEL_FILES) == 8, KERNEL_FILES  # forward_/backward_ x half, bfloat16, float, double


@needs_nvcc
@pytest.mark.slow
@pytest.mark.parametrize("name", ENTRY_FILES)
def test_entry_points_compile(name, tmp_path):
    _compile(name, tmp_path)


@needs_nvcc
@pytest.mark.slow
@pytest.mark.parametrize("name", KERNEL_FILES)
def test_kernels_compile(name, tmp_path):
    _compile(name, tmp_path)
