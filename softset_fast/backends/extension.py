"""The C++ ops: loads softset_fast._C and registers their fake (meta) kernels.

The schemas live in csrc/softset.cpp, the device kernels in csrc/cpu/ and
csrc/cuda/, and the autograd (the gradient in preds through the private
``_soft_counts_backward`` op, so the backward is dispatchable and traceable too)
in loss_autograd.py. Here, once for every device: shape/dtype propagation for
torch.compile and FakeTensor (``register_fake``, with the same argument checks
as the kernels: op_checks.py).
"""
from __future__ import annotations

import torch

from .._prepare import accumulation_dtype
from .op_checks import check_backward_grad, check_op_args

extension_error: str | None = None  # why softset_fast._C did not load, or None
try:  # registers torch.ops.softset_fast.* (C++ CPU, and CUDA when built)
    from .. import _C  # noqa: F401
except ImportError as err:  # pragma: no cover - depends on the build
    extension_error = f"{type(err).__name__}: {err}"


def _counts_shape(preds, grid, samplewise):
    groups = preds.shape[0] if samplewise else 1
    return (groups, preds.shape[1], grid.shape[0], 4)


def _soft_counts_fake(preds, target, weight, grid, approx, k, num_classes, ignore_index, samplewise,
                      deterministic=False):
    check_op_args("soft_counts", preds, target, weight, grid, approx, k, num_classes, ignore_index)
    return preds.new_empty(_counts_shape(preds, grid, samplewise), dtype=accumulation_dtype(preds.dtype))


def _soft_counts_backward_fake(grad, preds, target, weight, grid, approx, k, num_classes, ignore_index, samplewise):
    check_op_args("_soft_counts_backward", preds, target, weight, grid, approx, k, num_classes, ignore_index)
    check_backward_grad("_soft_counts_backward", grad, preds, grid, samplewise)
    return torch.empty_like(preds, memory_format=torch.contiguous_format)


if extension_error is None:
    torch.library.register_fake("softset_fast::soft_counts")(_soft_counts_fake)
    torch.library.register_fake("softset_fast::_soft_counts_backward")(_soft_counts_backward_fake)
    from . import loss_autograd
    loss_autograd.register()
    from . import cuda_check, libstdcxx_check
    cuda_check.warn_on_mismatch()
    libstdcxx_check.warn_on_mismatch()
