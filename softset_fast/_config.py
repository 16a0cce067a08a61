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
from ._wheel import install_hint, major_minor, torch_too_old
from .backends.registry import BACKENDS, available_backends, unavailable_reason


def build_info() -> dict | None:
    """The facts setup.py recorded when it built the extension, or None for an unbuilt checkout."""
    try:
        from . import _build_info
    except ImportError:
        return None
    keys = ("version", "distribution", "variant", "torch_version", "stable_abi_target", "torch_cuda_version",
            "with_cuda", "cuda_decision", "cuda_arch_list")
    return {key: getattr(_build_info, key, None) for key in keys}


def torch_range(built: dict) -> str:
    """The torch releases the built extension loads in: 'torch >= 2.11' (stable ABI) or 'torch 2.13.x'."""
    if built.get("stable_abi_target"):
        return f"torch >= {built['stable_abi_target']}"
    return "torch {}.{}.x".format(*major_minor(built["torch_version"]))


def torch_mismatch(built: dict | None = None) -> str | None:
    """A sentence when the running torch cannot load the extension as built, else None.

    A stable-ABI build (stable_abi_target set) loads in every torch from that release on; an older
    torch lacks the C shim functions it calls. A build against torch's unstable C++ API is tied to
    the torch minor release it was compiled against. Either mismatch typically shows as an
    undefined symbol when softset_fast._C loads.
    """
    built = build_info() if built is None else built
    if built is None or built["torch_version"] is None:
        return None
    target = built.get("stable_abi_target")
    if target is not None:
        if not torch_too_old(torch.__version__, target):
            return None
        return (f"softset_fast._C uses torch's stable ABI as of torch {target}, so it needs torch >= {target}, "
                f"but torch {torch.__version__} is running: `pip install --upgrade 'torch>={target}'`")
    if major_minor(built["torch_version"]) == major_minor(torch.__version__):
        return None
    return (f"softset_fast._C was built against torch {built['torch_version']} without the stable ABI (it runs only "
            f"with {torch_range(built)}) but torch {torch.__version__} is running; "
            f"{install_hint(cuda=torch.version.cuda is not None)}")


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
        "distribution": built["distribution"] if built else None,
        "variant": built["variant"] if built else None,
        "python_version": sys.version.split()[0],
        "torch_version": torch.__version__,
        "torch_cuda_version": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        "built_with_torch": built["torch_version"] if built else None,
        "stable_abi_target": built["stable_abi_target"] if built else None,
        "runs_with_torch": torch_range(built) if built and built["torch_version"] else None,
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
        + (f" (built as {facts['distribution']} {facts['wheel_version']}, {facts['variant']} variant)"
           if facts["wheel_version"] else ""),
        f"python:              {facts['python_version']}",
        f"torch (running):     {facts['torch_version']}, CUDA {facts['torch_cuda_version'] or 'none'}, "
        f"GPU available: {facts['cuda_available']}",
        f"built with torch:    {facts['built_with_torch'] or never_built}",
        f"stable ABI target:   "
        + (f"torch {facts['stable_abi_target']}" if facts["stable_abi_target"] else "none (torch's unstable C++ API)")
        + (f"; runs with {facts['runs_with_torch']}" if facts["runs_with_torch"] else ""),
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
