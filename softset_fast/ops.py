"""Fake (meta) kernels of the ``softset_fast`` ops.

The schemas live in csrc/softset.cpp, the device kernels in csrc/cpu/ and
csrc/cuda/, and the autograd (the gradient in preds through the private
``soft_counts_backward`` op, so the backward is dispatchable and traceable too)
in csrc/autograd.cpp. Here, once for every device: shape/dtype propagation for
torch.compile and FakeTensor (``register_fake``, with the same argument checks
as the kernels).
"""
from __future__ import annotations

import torch


_PRED_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_TARGET_DTYPES = (torch.bool, torch.uint8, torch.int32, torch.int64,
                  torch.float16, torch.bfloat16, torch.float32, torch.float64)
_INDEX_DTYPES = (torch.uint8, torch.int32, torch.int64)


def _check_args(op, preds, target, weight, grid, approx, k, num_classes, ignore_index) -> None:
    """The structural checks of csrc/cpu/soft_counts_cpu.cpp (make_problem), for fake tensors."""
    torch._check(preds.dim() == 3, lambda: f"{op}: preds must have shape [N, C, L], got {tuple(preds.shape)}")
    torch._check(preds.dtype in _PRED_DTYPES,
                 lambda: f"{op}: preds must be float16, bfloat16, float32 or float64, got {preds.dtype}")
    torch._check(target.dtype in _TARGET_DTYPES, lambda: f"{op}: target has unsupported dtype {target.dtype}")
    torch._check(num_classes >= 0, lambda: f"{op}: num_classes must be >= 0, got {num_classes}")
    n, c, length = preds.shape
    if num_classes > 0:
        torch._check(num_classes == c, lambda: f"{op}: num_classes={num_classes} does not match preds.shape[1]={c}")
        torch._check(target.dim() == 2 and target.shape[0] == n and target.shape[1] == length,
                     lambda: f"{op}: target must hold class indices of shape [N, L] = [{n}, {length}], "
                             f"got {tuple(target.shape)}")
        torch._check(target.dtype in _INDEX_DTYPES,
                     lambda: f"{op}: target must be an integer tensor of class indices when num_classes > 0, "
                             f"got {target.dtype}")
        torch._check(ignore_index is None or ignore_index < 0 or ignore_index >= c,
                     lambda: f"{op}: ignore_index={ignore_index} lies inside the class range [0, {c})")
    else:
        torch._check(target.shape == preds.shape,
                     lambda: f"{op}: target must have the shape of preds {tuple(preds.shape)}, "
                             f"got {tuple(target.shape)}")
    if weight is not None:
        torch._check(weight.shape == target.shape,
                     lambda: f"{op}: weight must have the shape of target {tuple(target.shape)}, "
                             f"got {tuple(weight.shape)}")
        torch._check(weight.dtype.is_floating_point,
                     lambda: f"{op}: weight must be floating point, got {weight.dtype}")
    torch._check(grid.dim() == 2 and grid.shape[1] == 8 and grid.shape[0] >= 1,
                 lambda: f"{op}: grid must be the coefficient table [T, 8] with T >= 1, got {tuple(grid.shape)}")
    torch._check(grid.dtype == torch.float64, lambda: f"{op}: grid must be float64, got {grid.dtype}")
    torch._check(approx in ("linear", "sigmoid", "step"),
                 lambda: f"{op}: approx must be 'linear', 'sigmoid' or 'step', got {approx!r}")


def _counts_shape(preds, grid, samplewise):
    groups = preds.shape[0] if samplewise else 1
    return (groups, preds.shape[1], grid.shape[0], 4)


@torch.library.register_fake("softset_fast::soft_counts")
def _soft_counts_fake(preds, target, weight, grid, approx, k, num_classes, ignore_index, samplewise):
    _check_args("soft_counts", preds, target, weight, grid, approx, k, num_classes, ignore_index)
    dtype = torch.float64 if preds.dtype == torch.float64 else torch.float32
    return preds.new_empty(_counts_shape(preds, grid, samplewise), dtype=dtype)


@torch.library.register_fake("softset_fast::soft_counts_backward")
def _soft_counts_backward_fake(grad, preds, target, weight, grid, approx, k, num_classes, ignore_index, samplewise):
    _check_args("soft_counts_backward", preds, target, weight, grid, approx, k, num_classes, ignore_index)
    expected = _counts_shape(preds, grid, samplewise)
    torch._check(tuple(grad.shape) == expected,
                 lambda: f"soft_counts_backward: grad must have shape {expected}, got {tuple(grad.shape)}")
    return torch.empty_like(preds, memory_format=torch.contiguous_format)
