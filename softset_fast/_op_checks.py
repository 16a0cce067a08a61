"""The argument checks of the soft_counts ops, in Python: the metadata checks that
csrc/cpu/soft_counts_cpu.cpp (make_problem) makes, with the same messages. Used by
the fake kernels of the C++ ops (ops.py) and by the Triton op (triton_ops.py),
whose direct calls skip the public API's validation."""
from __future__ import annotations

import math

import torch

from ._prepare import KERNEL_TARGET_DTYPES, PRED_DTYPES

INDEX_DTYPES = (torch.uint8, torch.int32, torch.int64)


def check_op_args(op, preds, target, weight, grid, approx, k, num_classes, ignore_index) -> None:
    """Raises RuntimeError "<op>: <argument> ..." for arguments the kernels cannot take."""
    def check(ok, message):
        torch._check(ok, lambda: f"{op}: {message()}")

    check(preds.dim() == 3, lambda: f"preds must have shape [N, C, L], got {list(preds.shape)}")
    check(preds.dtype in PRED_DTYPES, lambda: f"preds must be float16, bfloat16, float32 or float64, got {preds.dtype}")
    check(target.device == preds.device, lambda: f"target must be on preds' device {preds.device}, got {target.device}")
    check(grid.device == preds.device, lambda: f"grid must be on preds' device {preds.device}, got {grid.device}")
    check(target.dtype in KERNEL_TARGET_DTYPES,
          lambda: "target must be bool, uint8, int32, int64, float16, bfloat16, float32 or float64, "
                  f"got {target.dtype}")
    check(num_classes >= 0, lambda: f"num_classes must be >= 0, got {num_classes}")
    batch, classes, length = preds.shape
    if num_classes > 0:
        check(num_classes == classes, lambda: f"num_classes={num_classes} does not match preds.shape[1]={classes}")
        check(target.dim() == 2 and target.shape[0] == batch and target.shape[1] == length,
              lambda: f"target must hold class indices of shape [N, L] = [{batch}, {length}], "
                      f"got {list(target.shape)}")
        check(target.dtype in INDEX_DTYPES,
              lambda: f"target must be an integer tensor of class indices when num_classes > 0, got {target.dtype}")
        check(ignore_index is None or ignore_index < 0 or ignore_index >= classes,
              lambda: f"ignore_index={ignore_index} lies inside the class range [0, {classes}); choose a value "
                      "outside it (e.g. -100 or 255)")
    else:
        check(target.shape == preds.shape,
              lambda: f"target must have the shape of preds {list(preds.shape)}, got {list(target.shape)}")
    if weight is not None:
        check(weight.device == preds.device, lambda: f"weight must be on preds' device {preds.device}, got {weight.device}")
        check(weight.shape == target.shape,
              lambda: f"weight must have the shape of target {list(target.shape)}, got {list(weight.shape)}")
        check(weight.dtype.is_floating_point, lambda: f"weight must be floating point, got {weight.dtype}")
    check(grid.dim() == 2 and grid.shape[1] == 8 and grid.shape[0] >= 1,
          lambda: f"grid must be the coefficient table [T, 8] with T >= 1, got {list(grid.shape)}")
    check(grid.dtype == torch.float64, lambda: f"grid must be float64, got {grid.dtype}")
    check(approx in ("linear", "sigmoid", "step"),
          lambda: f"approx must be 'linear', 'sigmoid' or 'step', got '{approx}'")
    if approx == "sigmoid":
        check(math.isfinite(k) and k > 0, lambda: f"k must be a finite number > 0 for approx='sigmoid', got {k}")
