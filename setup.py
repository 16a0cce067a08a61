"""Build of softset_fast._C: always the C++ CPU op; CUDA kernels when a CUDA
toolkit and a CUDA build of torch are present (or SOFTSET_FAST_FORCE_CUDA=1).
SOFTSET_FAST_FORCE_CPU=1 builds the CPU op only. TORCH_CUDA_ARCH_LIST picks the
GPU architectures (default "8.0;9.0")."""
import glob
import os
import sys

import torch
from setuptools import find_packages, setup
from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension

ROOT = os.path.dirname(os.path.abspath(__file__))


def _flag(name):
    return os.environ.get(name, "0") == "1"


def _decide_cuda():
    if _flag("SOFTSET_FAST_FORCE_CPU"):
        return False, "SOFTSET_FAST_FORCE_CPU=1"
    if _flag("SOFTSET_FAST_FORCE_CUDA"):
        return True, "SOFTSET_FAST_FORCE_CUDA=1"
    if torch.version.cuda is None:
        return False, f"torch {torch.__version__} is a CPU build"
    if CUDA_HOME is None:
        return False, "no CUDA toolkit found (set CUDA_HOME)"
    return True, f"CUDA toolkit at {CUDA_HOME}, torch built with CUDA {torch.version.cuda}"


def extensions():
    use_cuda, why = _decide_cuda()
    sources = [os.path.join("csrc", "softset.cpp")] + sorted(glob.glob(os.path.join("csrc", "cpu", "*.cpp")))
    debug = _flag("SOFTSET_FAST_DEBUG")
    cxx = ["-O0", "-g"] if debug else ["-O3"]
    cxx += ["-fopenmp", "-DPy_LIMITED_API=0x03090000"]  # -std: torch picks the one its headers need
    extra = {"cxx": cxx}
    kwargs = dict(extra_link_args=["-fopenmp"], py_limited_api=True)
    if use_cuda:
        os.environ.setdefault("TORCH_CUDA_ARCH_LIST", "8.0;9.0")
        sources += sorted(glob.glob(os.path.join("csrc", "cuda", "*.cpp")))
        sources += sorted(glob.glob(os.path.join("csrc", "cuda", "*.cu")))
        extra["cxx"].append("-DSOFTSET_FAST_WITH_CUDA")
        extra["nvcc"] = ["-O3", "--expt-relaxed-constexpr", "-DSOFTSET_FAST_WITH_CUDA"]
        extension = CUDAExtension("softset_fast._C", sources, extra_compile_args=extra, **kwargs)
        arch = os.environ["TORCH_CUDA_ARCH_LIST"]
        print(f"softset_fast: building CPU + CUDA ({why}); TORCH_CUDA_ARCH_LIST={arch}", file=sys.stderr)
    else:
        extension = CppExtension("softset_fast._C", sources, extra_compile_args=extra, **kwargs)
        print(f"softset_fast: building CPU only ({why})", file=sys.stderr)
    return [extension]


setup(
    name="softset-fast",
    packages=find_packages(include=["softset_fast", "softset_fast.*"]),
    ext_modules=extensions(),
    cmdclass={"build_ext": BuildExtension.with_options(use_ninja=True)},
    options={"bdist_wheel": {"py_limited_api": "cp39"}},
)
