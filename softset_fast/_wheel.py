"""The released wheels: the torch they need, their two distributions, and how to get them.

The C++ glue uses only torch's stable ABI, compiled for MIN_TORCH (TORCH_TARGET_VERSION), so one
built extension runs under every torch from MIN_TORCH on and wheels carry the plain version (0.1.0).
CPU and CUDA kernels differ by distribution, both on PyPI and both providing the ``softset_fast``
package (install one of them):

* ``softset-fast``: the C++ CPU kernels; runs with any torch >= MIN_TORCH, CPU or CUDA build.
* ``softset-fast-cu130``: the CPU and CUDA 13 kernels; needs a CUDA 13 build of torch >= MIN_TORCH.

Two wheels with one name and version cannot both be on PyPI (their file names are equal), and the
distribution name keeps the variant visible in ``pip list`` now that the version names no torch.
Every message that says a backend cannot run ends with :func:`install_hint`. setup.py loads this
file by path (for MIN_TORCH and the distribution names): it imports nothing from the package at
module level.
"""
from __future__ import annotations

import torch

MIN_TORCH = "2.11"  # the one place: setup.py's requirement and TORCH_TARGET_VERSION, the runtime check
RELEASED_CUDA = "13.0"  # the CUDA of the released CUDA wheels (pyproject.toml, cibuildwheel's cu130 variant)
DISTRIBUTION = "softset-fast"


def major_minor(version: str) -> tuple[int, int]:
    """(2, 13) for '2.13.0+cpu', '2.13.0a0+git1234' or '2.13'."""
    major, minor = version.split("+")[0].split(".")[:2]
    return int(major), int("".join(ch for ch in minor if ch.isdigit()) or 0)


def torch_target_version(version: str = MIN_TORCH) -> str:
    """TORCH_TARGET_VERSION for a torch release: one byte each for major, minor, patch, then 5 zero bytes."""
    major, minor = major_minor(version)
    return f"0x{major:02x}{minor:02x}000000000000"


def torch_too_old(torch_version: str, minimum: str = MIN_TORCH) -> bool:
    return major_minor(torch_version) < major_minor(minimum)


def cuda_variant(cuda_version: str) -> str:
    """'cu130' for CUDA '13.0'."""
    return "cu" + "".join(cuda_version.split(".")[:2])


def distribution(variant: str | None) -> str:
    """'softset-fast' for the CPU variant (or a plain source build), 'softset-fast-cu130' for variant 'cu130'."""
    return DISTRIBUTION if variant in (None, "", "cpu") else f"{DISTRIBUTION}-{variant}"


def upgrade_torch_hint(torch_version: str) -> str:
    return (f"softset_fast's compiled kernels need torch >= {MIN_TORCH} (the stable ABI release they target) "
            f"but torch {torch_version} is running: `pip install --upgrade 'torch>={MIN_TORCH}'`")


def install_hint(cuda: bool = False) -> str:
    """How to get the C++ CPU kernels (cuda=False) or the CUDA kernels for the running torch.

    Names the wheel's distribution first, e.g. ``install softset-fast-cu130``, then the source build.
    """
    if torch_too_old(torch.__version__):
        return upgrade_torch_hint(torch.__version__)
    if not cuda:
        return (f"install {DISTRIBUTION} (`pip install --force-reinstall {DISTRIBUTION}`, one wheel for every "
                f"torch >= {MIN_TORCH}), or build from source in a checkout: `pip install --no-build-isolation .`")
    released = distribution(cuda_variant(RELEASED_CUDA))
    cuda_version = torch.version.cuda or RELEASED_CUDA
    build = (f"or build from source in a checkout: `SOFTSET_FAST_FORCE_CUDA=1 CUDA_HOME=/path/to/cuda-{cuda_version} "
             f"pip install --no-build-isolation .`")
    if torch.version.cuda is not None and torch.version.cuda.split(".")[0] == RELEASED_CUDA.split(".")[0]:
        torch_first = ""
    else:  # a CPU torch, or another CUDA major than the released wheel's
        torch_first = f"install a CUDA {RELEASED_CUDA.split('.')[0]} build of torch >= {MIN_TORCH}, then "
    return (f"{torch_first}install {released}, the wheel with the CUDA {RELEASED_CUDA} kernels "
            f"(`pip uninstall -y {DISTRIBUTION} && pip install {released}`), {build}")
