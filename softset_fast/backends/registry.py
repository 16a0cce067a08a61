"""Which backends are built, and which one a call runs on.

Every backend is a function with the op contract of ``reference.soft_counts``:
[N, C, L] inputs -> [G, C, T, 4] counts, differentiable in preds.
"""
from __future__ import annotations

import os
import warnings

import torch

from . import reference
from . import loss_op  # noqa: F401  (the fused loss ops' fake kernels)
from .extension import extension_error
from .._wheel import install_hint

BACKENDS = ("reference", "cpu", "cuda", "triton")


_kernel_cache: dict[str, bool] = {}


def _has_kernel(key: str) -> bool:
    if extension_error is not None:
        return False
    # Cached, and filled at import below: torch.compile(fullgraph=True) can read a dict
    # but not trace the dispatcher query (it returns a non-Tensor).
    if key not in _kernel_cache:
        _kernel_cache[key] = torch._C._dispatch_has_kernel_for_dispatch_key("softset_fast::soft_counts", key)
    return _kernel_cache[key]


for _key in ("CPU", "CUDA"):
    _has_kernel(_key)


def _triton_usable() -> str | None:
    """None when the Triton backend can run here, else the reason it cannot."""
    try:
        from . import triton_op  # noqa: F401
    except ImportError as err:
        return f"the Triton kernels failed to import ({type(err).__name__}: {err}); `pip install triton`"
    if os.environ.get("TRITON_INTERPRET") == "1" or torch.cuda.is_available():
        return None
    return "Triton needs a CUDA GPU (or TRITON_INTERPRET=1 for the CPU interpreter)"


def unavailable_reason(name: str) -> str | None:
    """None when ``name`` can run here, else a sentence saying why not and how to get it."""
    if name == "reference":
        return None
    if name == "cpu":
        if _has_kernel("CPU"):
            return None
        detail = extension_error or "the op has no CPU kernel"
        return f"the C++ extension softset_fast._C is not built or did not load ({detail}); {install_hint()}"
    if name == "cuda":
        if _has_kernel("CUDA"):
            from . import cuda_check
            return cuda_check.mismatch()
        problem = (f"softset_fast._C did not load ({extension_error})" if extension_error
                   else "the extension was built without CUDA")
        return f"{problem}; {install_hint(cuda=True)}"
    if name == "triton":
        return _triton_usable()
    raise ValueError(f"backend must be one of {('auto',) + BACKENDS}, got {name!r}")


def available_backends() -> list[str]:
    """The backends that can run in this process, e.g. ['reference', 'cpu']."""
    return [name for name in BACKENDS if unavailable_reason(name) is None]


_warned_fallback: set[str] = set()


def resolve_backend(backend: str, device: torch.device) -> str:
    """The backend a call runs on; ``auto`` picks the fastest built one for the device.

    Under torch.func transforms (grad, vmap, jacrev, ...) ``auto`` picks the reference: the fused loss's
    autograd (loss_autograd.SoftSetLoss) is an autograd.Function without functorch rules.
    """
    under_torch_func = torch._C._are_functorch_transforms_active()
    if backend == "auto":
        if under_torch_func:
            return "reference"
        if device.type == "cpu":
            preferred = ["cpu"]
        elif device.type == "cuda":
            preferred = ["cuda", "triton"]
        else:
            preferred = []
        for name in preferred:
            if unavailable_reason(name) is None:
                return name
        if device.type not in _warned_fallback:
            _warned_fallback.add(device.type)
            reasons = "; ".join(f"{n}: {unavailable_reason(n)}" for n in preferred) or "no fused kernel for it"
            warnings.warn(f"softset_fast: no fused backend for {device.type} tensors, falling back to the "
                          f"O(N·T) reference ({reasons})", RuntimeWarning, stacklevel=3)
        return "reference"
    reason = unavailable_reason(backend)
    if reason is not None:
        raise RuntimeError(f"backend={backend!r} is not available: {reason}")
    expected = {"cpu": "cpu", "cuda": "cuda"}.get(backend)
    if expected is not None and under_torch_func:
        raise RuntimeError(f"backend={backend!r} cannot run under torch.func transforms (grad, vmap, ...): its "
                           "autograd is an autograd.Function without functorch rules; use "
                           "backend='reference' (backend='auto' picks it there)")
    if expected is not None and device.type != expected:
        raise ValueError(f"backend={backend!r} runs on {expected} tensors, but preds is on {device}")
    if backend == "triton" and device.type != "cuda" and os.environ.get("TRITON_INTERPRET") != "1":
        raise ValueError(f"backend='triton' runs on cuda tensors (or CPU tensors under TRITON_INTERPRET=1), "
                         f"but preds is on {device}")
    return backend


def _extension_counts(preds, target, weight, grid, approx, k, num_classes, ignore_index, samplewise):
    """The C++ op, told whether torch's deterministic algorithms are on (which its stable ABI cannot read)."""
    return torch.ops.softset_fast.soft_counts(preds, target, weight, grid, approx, k, num_classes, ignore_index,
                                              samplewise, torch.are_deterministic_algorithms_enabled())


def counts_function(name: str):
    """The function computing [G, C, T, 4] counts for backend ``name``."""
    if name == "reference":
        return reference.soft_counts
    if name in ("cpu", "cuda"):
        return _extension_counts
    if name == "triton":
        from . import triton_op
        return triton_op.soft_counts
    raise ValueError(f"backend must be one of {('auto',) + BACKENDS}, got {name!r}")


def fused_loss_runs(name: str, device: torch.device) -> bool:
    """Whether backend ``name`` runs a built-in loss as the fused op softset_fast::soft_set_loss.

    The C++ CPU backend does. CUDA has the epilogue kernel compiled but it has not run on a GPU
    yet, so CUDA losses keep the tensor-op path until benchmarks/gpu_check.sh has checked it.
    """
    return name == "cpu" and device.type == "cpu" and loss_op.AVAILABLE
