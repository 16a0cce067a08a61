"""Build of softset_fast._C: always the C++ CPU op; CUDA kernels when a CUDA
toolkit and a CUDA build of torch are present (or SOFTSET_FAST_FORCE_CUDA=1).
SOFTSET_FAST_FORCE_CPU=1 builds the CPU op only. TORCH_CUDA_ARCH_LIST picks the
GPU architectures (default "8.0;9.0"). SOFTSET_FAST_SANITIZE=1 compiles and links the
C++ with AddressSanitizer and UBSan at -O1 -g (`make sanitize` builds such a copy
apart and runs tests on it).
The C++ uses torch's stable ABI only: it is compiled with TORCH_TARGET_VERSION = MIN_TORCH
(softset_fast/_wheel.py) and the wheel requires torch >= MIN_TORCH. Versions are plain (0.1.0). SOFTSET_FAST_VARIANT=cu130 (cibuildwheel's
CUDA variant, whose distribution .ci/cibw/name_variant.sh renames softset-fast-cu130) builds the CUDA
kernels; =cpu builds none. The build's facts go to softset_fast/_build_info.py."""
import glob
import importlib.util
import os
import re
import sys

import torch
from setuptools import find_packages, setup
from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension

ROOT = os.path.dirname(os.path.abspath(__file__))
VARIANT = os.environ.get("SOFTSET_FAST_VARIANT") or None  # cibuildwheel's cpu / cu130; None for other builds


def _flag(name):
    return os.environ.get(name, "0") == "1"


def _decide_cuda():
    if _flag("SOFTSET_FAST_FORCE_CPU"):
        return False, "SOFTSET_FAST_FORCE_CPU=1"
    if _flag("SOFTSET_FAST_FORCE_CUDA"):
        return True, "SOFTSET_FAST_FORCE_CUDA=1"
    if VARIANT == "cpu":
        return False, "SOFTSET_FAST_VARIANT=cpu"
    if VARIANT:  # the CUDA distribution must not come out without its kernels
        return True, f"SOFTSET_FAST_VARIANT={VARIANT}"
    if torch.version.cuda is None:
        return False, f"torch {torch.__version__} is a CPU build"
    if CUDA_HOME is None:
        return False, "no CUDA toolkit found (set CUDA_HOME)"
    return True, f"CUDA toolkit at {CUDA_HOME}, torch built with CUDA {torch.version.cuda}"


def load_file(*path):
    """A Python file of this tree as a module, without importing the package (which needs the extension)."""
    spec = importlib.util.spec_from_file_location("softset_setup_" + path[-1][:-3], os.path.join(ROOT, *path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


WHEEL = load_file("softset_fast", "_wheel.py")  # MIN_TORCH and the distribution names, shared with the package


# The C++ uses torch's stable ABI only (csrc/torch_api.h): compiled for the oldest torch it supports, it
# loads in every torch from that release on.
if WHEEL.torch_too_old(torch.__version__):
    sys.exit(f"softset_fast: building needs torch >= {WHEEL.MIN_TORCH} (its stable ABI headers); torch {torch.__version__} "
             f"is installed")


def stable_abi_flags():
    """TORCH_TARGET_VERSION: the oldest torch the extension loads in; torch's headers then offer only that
    release's stable API."""
    return [f"-DTORCH_TARGET_VERSION={WHEEL.torch_target_version()}"]


def cuda_instances():
    """The per-dtype kernel files, generated from csrc/cuda/instances.py's list into build/."""
    module = load_file("csrc", "cuda", "instances.py")
    return [os.path.relpath(p, ROOT) for p in module.write(os.path.join(ROOT, "build", "cuda_instances"))]


def extensions():
    use_cuda, why = _decide_cuda()
    sources = [os.path.join("csrc", name) for name in ("softset.cpp", "op_checks.cpp", "soft_set_loss.cpp",
                                                                   "loss_plans.cpp")] + sorted(
        glob.glob(os.path.join("csrc", "cpu", "*.cpp")))
    debug = _flag("SOFTSET_FAST_DEBUG")
    sanitize = _flag("SOFTSET_FAST_SANITIZE")
    cxx = ["-O0", "-g"] if debug else ["-O1", "-g"] if sanitize else ["-O3"]
    # -std: torch picks the one its headers need. -fvisibility=hidden: PyInit__C is the one export.
    cxx += ["-fopenmp", "-fvisibility=hidden", "-DPy_LIMITED_API=0x03090000"]
    cxx += stable_abi_flags()
    link = ["-fopenmp"]
    if sanitize:
        sanitizers = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer"]
        cxx += sanitizers
        link += sanitizers
    extra = {"cxx": cxx}
    kwargs = dict(extra_link_args=link, py_limited_api=True)
    if use_cuda:
        os.environ.setdefault("TORCH_CUDA_ARCH_LIST", "8.0;9.0")
        sources += sorted(glob.glob(os.path.join("csrc", "cuda", "*.cpp")))
        sources += sorted(glob.glob(os.path.join("csrc", "cuda", "*.cu"))) + cuda_instances()
        kwargs["include_dirs"] = [os.path.join(ROOT, "csrc", "cuda")]  # for the generated files' includes
        # USE_CUDA: torch's C shim declares its CUDA functions (aoti_torch_get_current_cuda_stream) under it.
        extra["cxx"] += ["-DSOFTSET_FAST_WITH_CUDA", "-DUSE_CUDA"]
        extra["nvcc"] = ["-O3", "--expt-relaxed-constexpr", "-DSOFTSET_FAST_WITH_CUDA"]
        extra["nvcc"] += stable_abi_flags()
        extension = CUDAExtension("softset_fast._C", sources, extra_compile_args=extra, **kwargs)
        arch = os.environ["TORCH_CUDA_ARCH_LIST"]
        print(f"softset_fast: building CPU + CUDA ({why}); TORCH_CUDA_ARCH_LIST={arch}", file=sys.stderr)
    else:
        extension = CppExtension("softset_fast._C", sources, extra_compile_args=extra, **kwargs)
        print(f"softset_fast: building CPU only ({why})", file=sys.stderr)
    return [extension]


def base_version():
    """The one version string, kept in softset_fast/_version.py."""
    with open(os.path.join(ROOT, "softset_fast", "_version.py")) as f:
        return re.search(r'^__version__ = "([^"]+)"', f.read(), re.M).group(1)


def torch_requirement():
    """Every torch from MIN_TORCH on: the extension uses torch's stable ABI only."""
    return f"torch>={WHEEL.MIN_TORCH}"


def write_build_info(version):
    """Record what this build was compiled against, for softset_fast.show_config()."""
    use_cuda, why = _decide_cuda()
    variant = "cpu"
    if use_cuda:
        variant = WHEEL.cuda_variant(torch.version.cuda) if torch.version.cuda else "cuda"
    facts = {
        "version": version,
        "distribution": WHEEL.distribution(VARIANT),
        "variant": variant,
        "torch_version": torch.__version__,
        "stable_abi_target": WHEEL.MIN_TORCH,  # the oldest torch the extension loads in
        "torch_cuda_version": torch.version.cuda if use_cuda else None,
        "with_cuda": use_cuda,
        "cuda_decision": why,
        "cuda_arch_list": os.environ.get("TORCH_CUDA_ARCH_LIST") if use_cuda else None,
    }
    lines = ["# Generated by setup.py at build time (not in git): what softset_fast._C was built against."]
    lines += [f"{key} = {value!r}" for key, value in facts.items()]
    with open(os.path.join(ROOT, "softset_fast", "_build_info.py"), "w") as f:
        f.write("\n".join(lines) + "\n")


EXT_MODULES = extensions()  # first: it settles TORCH_CUDA_ARCH_LIST
VERSION = base_version()
if "sdist" not in sys.argv:  # an sdist must not ship the packager's build facts
    write_build_info(VERSION)

setup(
    version=VERSION,  # the name is pyproject.toml's (.ci/cibw/name_variant.sh renames it for a CUDA variant)
    install_requires=[torch_requirement()],
    packages=find_packages(include=["softset_fast", "softset_fast.*"]),
    package_data={"softset_fast": ["py.typed"]},  # PEP 561: the package's annotations are for type checkers
    ext_modules=EXT_MODULES,
    cmdclass={"build_ext": BuildExtension.with_options(use_ninja=True)},
    options={"bdist_wheel": {"py_limited_api": "cp39"}},
)
