"""What this install is: its version, the torch and CUDA it was built against,
the backends usable here and the CPU threads the kernels get.

The build-time facts come from softset_fast/_build_info.py, which setup.py writes
when it compiles softset_fast._C (it is not in git; a checkout that was never
built has none).
"""
from __future__ import annotations

import os
import sys

import torch

from ._version import __version__
from ._wheel import install_hint
from .backends.registry import BACKENDS, available_backends, unavailable_reason


def build_info() -> dict | None:
    """The facts setup.py recorded when it built the extension, or None for an unbuilt checkout."""
    try:
        from . import _build_info
    except ImportError:
        return None
    keys = ("version", "torch_version", "torch_cuda_version", "with_cuda", "cuda_decision", "cuda_arch_list")
    return {key: getattr(_build_info, key, None) for key in keys}


def _major_minor(version: str) -> tuple[str, ...]:
    return tuple(version.split("+")[0].split(".")[:2])


def torch_mismatch(built: dict | None = None) -> str | None:
    """A sentence when the running torch is not the one the extension was built against, else None.

    A compiled op is tied to torch's C++ ABI, which changes between minor releases:
    a mismatch typically shows as an undefined symbol when softset_fast._C loads.
    """
    built = build_info() if built is None else built
    if built is None or built["torch_version"] is None:
        return None
    if _major_minor(built["torch_version"]) == _major_minor(torch.__version__):
        return None
    return (f"softset_fast._C was built against torch {built['torch_version']} but torch {torch.__version__} "
            f"is running; {install_hint(cuda=torch.version.cuda is not None)}")


def _extension_cuda() -> tuple[str | None, str | None]:
    """(CUDA version the extension's kernels were compiled with, the mismatch with torch's CUDA or None)."""
    try:
        from .backends import cuda_check as _cuda_check
    except ImportError:  # the extension did not load
        return None, None
    built = _cuda_check.extension_cuda_version()
    version = None if built is None else f"{built // 1000}.{(built % 1000) // 10}"
    return version, _cuda_check.mismatch()


def _libstdcxx() -> tuple[str, str | None]:
    """(which libstdc++ serves softset_fast._C, the two-runtimes problem or None)."""
    from .backends import extension, libstdcxx_check
    if extension.extension_error is not None:
        return "not checked (the extension is not loaded)", None
    return libstdcxx_check.check()


def _parallel_backend() -> str:
    """ATen's intra-op parallel backend (the CPU kernels use at::parallel_for), e.g. 'OpenMP'."""
    for line in torch.__config__.parallel_info().splitlines():
        if line.startswith("ATen parallel backend:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def config() -> dict:
    """The facts of show_config() as a dict, without printing."""
    built = build_info()
    reasons = {name: unavailable_reason(name) for name in BACKENDS}
    extension_cuda, cuda_mismatch = _extension_cuda()
    libstdcxx, libstdcxx_mismatch = _libstdcxx()
    return {
        "softset_fast_version": __version__,
        "wheel_version": built["version"] if built else None,
        "python_version": sys.version.split()[0],
        "torch_version": torch.__version__,
        "torch_cuda_version": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        "built_with_torch": built["torch_version"] if built else None,
        "built_with_cuda": built["torch_cuda_version"] if built else None,
        "extension_cuda_version": extension_cuda,
        "cuda_mismatch": cuda_mismatch,
        "cuda_arch_list": built["cuda_arch_list"] if built else None,
        "cuda_decision": built["cuda_decision"] if built else None,
        "torch_mismatch": torch_mismatch(built),
        "libstdcxx": libstdcxx,
        "libstdcxx_mismatch": libstdcxx_mismatch,
        "backends": available_backends(),
        "unavailable": {name: reason for name, reason in reasons.items() if reason is not None},
        "parallel_backend": _parallel_backend(),
        "num_threads": torch.get_num_threads(),
        "omp_num_threads_env": os.environ.get("OMP_NUM_THREADS"),
    }


def show_config(file=None) -> dict:
    """Print what this install is (versions, build, backends, threads) and return it as a dict.

    Paste its output into bug reports. ``python -m softset_fast info`` prints the same.
    """
    facts = config()
    never_built = "unknown (no softset_fast/_build_info.py: the extension was never built here)"
    lines = [
        f"softset_fast:        {facts['softset_fast_version']}"
        + (f" (built as {facts['wheel_version']})" if facts["wheel_version"] else ""),
        f"python:              {facts['python_version']}",
        f"torch (running):     {facts['torch_version']}, CUDA {facts['torch_cuda_version'] or 'none'}, "
        f"GPU available: {facts['cuda_available']}",
        f"built with torch:    {facts['built_with_torch'] or never_built}",
        f"built with CUDA:     {facts['built_with_cuda'] or 'no'}"
        + (f" ({facts['cuda_decision']})" if facts["cuda_decision"] else ""),
        f"kernels' CUDA:       {facts['extension_cuda_version'] or 'none (CPU-only extension)'}",
        f"CUDA arch list:      {facts['cuda_arch_list'] or '-'}",
        f"libstdc++:           {facts['libstdcxx']}",
        f"backends available:  {', '.join(facts['backends'])}",
    ]
    lines += [f"  {name} unavailable: {reason}" for name, reason in facts["unavailable"].items()]
    lines.append(f"CPU threads:         {facts['num_threads']} ({facts['parallel_backend']} via torch; "
                 f"OMP_NUM_THREADS={facts['omp_num_threads_env'] or 'unset'})")
    lines += [f"WARNING: {facts[key]}" for key in ("torch_mismatch", "cuda_mismatch") if facts[key]]
    print("\n".join(lines), file=file if file is not None else sys.stdout)
    return facts
