"""The argument checks of the soft_counts ops in Python: the twin of csrc/op_checks.cpp
(the one C++ definition, used by the CPU and CUDA kernels), with the same messages;
tests/test_op_contract.py holds the two equal on a table of bad calls. Used by the fake
kernels of the C++ ops (extension.py: metadata only, fake tensors have no values) and by
the Triton op (triton_op.py), whose direct calls skip the public API's validation."""
from __future__ import annotations

import math

import torch

from .._grid import GRID_COLUMNS
from .._prepare import KERNEL_TARGET_DTYPES, PRED_DTYPES

INDEX_DTYPES = (torch.uint8, torch.int32, torch.int64)


def _name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def check_op_args(op, preds, target, weight, grid, approx, k, num_classes, ignore_index) -> None:
    """Raises RuntimeError "<op>: <argument> ..." for arguments the kernels cannot take."""
    def check(ok, message):
        torch._check(ok, lambda: f"{op}: {message()}")

    check(preds.dim() == 3, lambda: f"preds must have shape [N, C, L], got {list(preds.shape)}")
    check(preds.dtype in PRED_DTYPES, lambda: f"preds must be float16, bfloat16, float32 or float64, got {_name(preds.dtype)}")
    check(target.device == preds.device, lambda: f"target must be on preds' device {preds.device}, got {target.device}")
    check(grid.device == preds.device, lambda: f"grid must be on preds' device {preds.device}, got {grid.device}")
    check(target.dtype in KERNEL_TARGET_DTYPES,
          lambda: "target must be bool, uint8, int32, int64, float16, bfloat16, float32 or float64, "
                  f"got {_name(target.dtype)}")
    check(num_classes >= 0, lambda: f"num_classes must be >= 0, got {num_classes}")
    batch, classes, length = preds.shape
    if num_classes > 0:
        check(num_classes == classes, lambda: f"num_classes={num_classes} does not match preds.shape[1]={classes}")
        check(target.dim() == 2 and target.shape[0] == batch and target.shape[1] == length,
              lambda: f"target must hold class indices of shape [N, L] = [{batch}, {length}], "
                      f"got {list(target.shape)}")
        check(target.dtype in INDEX_DTYPES,
              lambda: f"target must be an integer tensor of class indices when num_classes > 0, got {_name(target.dtype)}")
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
        check(weight.dtype.is_floating_point, lambda: f"weight must be floating point, got {_name(weight.dtype)}")
    check(grid.dim() == 2 and grid.shape[1] == 8 and grid.shape[0] >= 1,
          lambda: f"grid must be the coefficient table [T, 8] with T >= 1, got {list(grid.shape)}")
    check(grid.dtype == torch.float64, lambda: f"grid must be float64, got {_name(grid.dtype)}")
    check(approx in ("linear", "sigmoid", "step"),
          lambda: f"approx must be 'linear', 'sigmoid' or 'step', got '{approx}'")
    if approx == "sigmoid":
        check(math.isfinite(k) and k > 0, lambda: f"k must be a finite number > 0 for approx='sigmoid', got {k:g}")
    check(grid.shape[0] < (1 << 28), lambda: f"grid has too many thresholds ({grid.shape[0]})")


def check_backward_grad(op, grad, preds, grid, samplewise) -> None:
    """The backward's grad: [G, C, T, 4], floating point, on preds' device."""
    expected = (preds.shape[0] if samplewise else 1, preds.shape[1], grid.shape[0], 4)
    torch._check(grad.device == preds.device,
                 lambda: f"{op}: grad must be on preds' device {preds.device}, got {grad.device}")
    torch._check(tuple(grad.shape) == expected,
                 lambda: f"{op}: grad must have shape {list(expected)}, got {list(grad.shape)}")
    torch._check(grad.dtype.is_floating_point, lambda: f"{op}: grad must be floating point, got {_name(grad.dtype)}")


def check_grid_values(op, grid: torch.Tensor, approx: str) -> None:
    """Every column finite, tau strictly ascending; linear: a <= tau <= b, a and b ascending.
    Reads the grid on the host (one synchronisation for a GPU grid): callers cache the result."""
    g = grid.detach().to("cpu", torch.float64)
    finite = torch.isfinite(g)
    if not bool(finite.all()):
        row, col = (~finite).nonzero()[0].tolist()
        raise RuntimeError(f"{op}: grid must be finite in every column ({', '.join(GRID_COLUMNS)}); row {row} "
                           f"column {col} is {g[row, col].item()}")
    tau, a, b = g[:, 0], g[:, 1], g[:, 2]
    if approx == "linear":
        bad = ~((a <= tau) & (tau <= b))
        if bool(bad.any()):
            raise RuntimeError(f"{op}: grid row {int(bad.nonzero()[0])} must have a <= tau <= b (columns 1, 0, 2); "
                               "build grid with softset_fast._grid.coefficient_table")
    if g.shape[0] > 1 and not bool((tau[1:] > tau[:-1]).all()):
        raise RuntimeError(f"{op}: grid thresholds (column 0) must be strictly ascending")
    if approx == "linear" and g.shape[0] > 1 and not bool(((a[1:] >= a[:-1]) & (b[1:] >= b[:-1])).all()):
        raise RuntimeError(f"{op}: grid breakpoints a, b (columns 1, 2) must be ascending; build grid with "
                           "softset_fast._grid.coefficient_table")
