"""Import-time check that the CUDA kernels were built against torch's CUDA.

A CUDA build of softset_fast._C registers ``softset_fast::cuda_version()``
(CUDA_VERSION at build time, e.g. 13000 for 13.0). Kernels built for another
CUDA major version than torch's fail at launch or load, so the "cuda" backend
is reported unavailable with the fix, and a warning says so once at import.
"""
from __future__ import annotations

import warnings

import torch

from .._wheel import install_hint


def _format(version: int) -> str:
    return f"{version // 1000}.{(version % 1000) // 10}"


def extension_cuda_version() -> int | None:
    """CUDA_VERSION the extension was built with, or None for a CPU-only build."""
    try:
        return int(torch.ops.softset_fast.cuda_version())
    except (AttributeError, RuntimeError):
        return None


def torch_cuda_version() -> int | None:
    if torch.version.cuda is None:
        return None
    major, minor = (int(x) for x in torch.version.cuda.split(".")[:2])
    return major * 1000 + minor * 10


_MISMATCH: list = []  # computed once: the facts cannot change in a process, and torch.compile reads a list


def mismatch() -> str | None:
    """None when the extension's CUDA matches torch's (or either has none), else what is wrong and the fix."""
    if not _MISMATCH:
        _MISMATCH.append(_compute_mismatch())
    return _MISMATCH[0]


def _compute_mismatch() -> str | None:
    built = extension_cuda_version()
    if built is None:
        return None
    runtime = torch_cuda_version()
    if runtime is None:
        return (f"softset_fast._C was built with CUDA {_format(built)} but torch {torch.__version__} is a CPU build; "
                f"the CUDA kernels cannot run; {install_hint(cuda=True)}")
    if built // 1000 != runtime // 1000:
        return (f"softset_fast._C was built with CUDA {_format(built)} but torch {torch.__version__} uses CUDA "
                f"{torch.version.cuda}; {install_hint(cuda=True)}")
    return None


def warn_on_mismatch() -> None:
    problem = mismatch()
    if problem is not None:
        warnings.warn(f"softset_fast: {problem}", RuntimeWarning, stacklevel=3)
