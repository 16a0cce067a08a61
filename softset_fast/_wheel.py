"""The wheel that provides the compiled kernels for the running torch, and the source build.

A compiled extension runs only with the torch minor release (and CUDA major version) it was
built against, so wheels carry a local version label naming them: 0.1.0+pt213cpu for torch
2.13 without CUDA, 0.1.0+pt213cu130 for torch 2.13 with CUDA 13.0. Every message that says a
backend cannot run ends with :func:`install_hint`, so they all name the same wheel and command.
setup.py loads this file by path to label its builds: it imports nothing from the package at
module level.
"""
from __future__ import annotations

import torch

# The CUDA of the released CUDA wheels (pyproject.toml, cibuildwheel's cu130 variant): the one
# to name when the running torch is a CPU build and so implies no CUDA version.
RELEASED_CUDA = "13.0"


def local_label(torch_version: str, cuda_version: str | None) -> str:
    """'pt213cpu' for torch 2.13.x without CUDA, 'pt213cu130' with CUDA 13.0."""
    major, minor = torch_version.split("+")[0].split(".")[:2]
    return f"pt{major}{minor}" + ("cu" + cuda_version.replace(".", "") if cuda_version else "cpu")


def install_hint(cuda: bool = False) -> str:
    """How to get the C++ CPU kernels (cuda=False) or the CUDA kernels for the running torch.

    Names the wheel first, e.g. ``softset_fast 0.1.0+pt213cu130``, then the source build.
    """
    from ._version import __version__  # here, not at the top: setup.py loads this file alone

    torch_minor = ".".join(torch.__version__.split("+")[0].split(".")[:2])
    if not cuda:
        wheel = f"{__version__}+{local_label(torch.__version__, torch.version.cuda)}"
        return (f"install the softset_fast {wheel} wheel (built for torch {torch_minor}), or build from source "
                f"in a checkout: `pip install --no-build-isolation .`")
    cuda_version = torch.version.cuda or RELEASED_CUDA
    wheel = f"{__version__}+{local_label(torch.__version__, cuda_version)}"
    torch_first = "" if torch.version.cuda else f"install a CUDA {cuda_version} build of torch {torch_minor}, then "
    return (f"{torch_first}install the softset_fast {wheel} wheel (built for torch {torch_minor} with CUDA "
            f"{cuda_version}), or build from source in a checkout: `SOFTSET_FAST_FORCE_CUDA=1 "
            f"CUDA_HOME=/path/to/cuda-{cuda_version} pip install --no-build-isolation .`")
