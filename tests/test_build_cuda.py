"""The CUDA sources compile with nvcc for sm_80 and sm_90, without a GPU.

The per-dtype kernel files are generated from csrc/cuda/instances.py's list (never
checked in); the header and list checks are quick. The compiles are skipped when nvcc
is not on PATH; each file takes 30 s to a few minutes on a small machine, so they are
marked slow (`pytest -m slow tests/test_build_cuda.py`, or `make cuda-compile-check`,
which runs them in parallel).
"""
import glob
import importlib.util
import os
import re
import shutil
import subprocess

import pytest

CUDA_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "csrc", "cuda")
ENTRY_FILES = sorted(os.path.basename(f) for f in glob.glob(os.path.join(CUDA_DIR, "*.cu")))


def _load_instances():
    spec = importlib.util.spec_from_file_location("softset_cuda_instances", os.path.join(CUDA_DIR, "instances.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


instances = _load_instances()
KERNEL_FILES = sorted(instances.sources())

needs_nvcc = pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not on PATH")


def _compile(path, tmp_path):
    name = os.path.basename(path)
    cmd = ["nvcc", "-c", "-O3", "-std=c++17", "--expt-relaxed-constexpr",
           "-gencode", "arch=compute_80,code=sm_80", "-gencode", "arch=compute_90,code=sm_90",
           "-I", CUDA_DIR, path, "-o", str(tmp_path / (name + ".o"))]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, f"nvcc failed for {name}:\n{result.stderr[-4000:]}"
    assert (tmp_path / (name + ".o")).stat().st_size > 0


def test_cuda_sources_include_no_torch_headers():
    # Torch headers make a .cu take minutes and gigabytes to compile; the glue is in .cpp.
    texts = dict(instances.sources())
    for path in glob.glob(os.path.join(CUDA_DIR, "*.cu")) + glob.glob(os.path.join(CUDA_DIR, "*.cuh")) + \
            glob.glob(os.path.join(CUDA_DIR, "*.h")):
        with open(path) as f:
            texts[os.path.basename(path)] = f.read()
    for name, text in texts.items():
        for header in ("torch/", "ATen/", "c10/"):
            assert f"#include <{header}" not in text, f"{name} includes a {header} header"


def test_one_kernel_file_per_job_and_preds_type():
    names = ("half", "bfloat16", "float", "double")
    assert KERNEL_FILES == sorted(f"{job}_{n}.cu" for job in ("forward", "backward") for n in names)
    assert ENTRY_FILES == ["backward.cu", "epilogue.cu", "forward.cu"]


def test_instance_list_matches_the_preds_dispatch():
    # forward.cu / backward.cu call forward_for<P> / backward_for<P> for every type dispatch_preds
    # lets through; a type without a generated file would fail only at link time of a CUDA build.
    with open(os.path.join(CUDA_DIR, "dispatch.cuh")) as f:
        text = f.read()
    start = text.index("constexpr bool kIsPredsType")  # the types dispatch_preds lets through
    body = text[start:text.index(";", start)]
    assert set(re.findall(r"is_same<T, ([\w:]+)>", body)) == set(instances.PREDS_TYPES.values())


def test_generated_files_are_rewritten_only_when_changed(tmp_path):
    paths = instances.write(str(tmp_path))
    assert sorted(os.path.basename(p) for p in paths) == KERNEL_FILES
    before = {p: os.stat(p).st_mtime_ns for p in paths}
    os.utime(paths[0], ns=(1, 1))  # an old stamp: a rewrite would replace it
    instances.write(str(tmp_path))
    assert os.stat(paths[0]).st_mtime_ns == 1
    assert all(os.stat(p).st_mtime_ns == before[p] for p in paths[1:])


@needs_nvcc
@pytest.mark.slow
@pytest.mark.parametrize("name", ENTRY_FILES)
def test_entry_points_compile(name, tmp_path):
    _compile(os.path.join(CUDA_DIR, name), tmp_path)


@needs_nvcc
@pytest.mark.slow
@pytest.mark.parametrize("name", KERNEL_FILES)
def test_kernels_compile(name, tmp_path):
    (path,) = [p for p in instances.write(str(tmp_path / "gen")) if os.path.basename(p) == name]
    _compile(path, tmp_path)
