"""Fake (meta) kernels of the ``softset_fast`` ops.

The schemas live in csrc/softset.cpp, the device kernels in csrc/cpu/ and
csrc/cuda/, and the autograd (the gradient in preds through the private
``soft_counts_backward`` op, so the backward is dispatchable and traceable too)
in csrc/autograd.cpp. Here, once for every device: shape/dtype propagation for
torch.compile and FakeTensor (``register_fake``, with the same argument checks
as the kernels: _op_checks.py).
"""
from __future__ import annotations

import torch

from ._op_checks import check_op_args


def _counts_shape(preds, grid, samplewise):
    groups = preds.shape[0] if samplewise else 1
    return (groups, preds.shape[1], grid.shape[0], 4)


@torch.library.register_fake("softset_fast::soft_counts")
def _soft_counts_fake(preds, target, weight, grid, approx, k, num_classes, ignore_index, samplewise):
    check_op_args("soft_counts", preds, target, weight, grid, approx, k, num_classes, ignore_index)
    dtype = torch.float64 if preds.dtype == torch.float64 else torch.float32
    return preds.new_empty(_counts_shape(preds, grid, samplewise), dtype=dtype)


@torch.library.register_fake("softset_fast::soft_counts_backward")
def _soft_counts_backward_fake(grad, preds, target, weight, grid, approx, k, num_classes, ignore_index, samplewise):
    check_op_args("soft_counts_backward", preds, target, weight, grid, approx, k, num_classes, ignore_index)
    expected = _counts_shape(preds, grid, samplewise)
    torch._check(tuple(grad.shape) == expected,
                 lambda: f"soft_counts_backward: grad must have shape {expected}, got {tuple(grad.shape)}")
    return torch.empty_like(preds, memory_format=torch.contiguous_format)
