"""One op contract: every backend rejects the same bad direct-op calls with the same message.

The C++ checks (csrc/op_checks.cpp, used by the CPU and CUDA kernels) and their Python twin
(softset_fast/backends/op_checks.py, used by the Triton op and the fake kernels) are held equal
here on one table of bad calls; the shared codes of csrc/softset_common.h are held equal to
Python's.
"""
import math
import pathlib
import re

import pytest
import torch

from softset_fast._grid import GRID_COLUMNS, coefficient_table, resolve_thresholds
from softset_fast.backends import op_checks
from softset_fast.backends.registry import counts_function

ROOT = pathlib.Path(__file__).resolve().parents[1]


def good_call(device):
    preds = torch.rand(4, 3, 5, device=device)
    target = torch.rand(4, 3, 5, device=device) < 0.5
    grid = coefficient_table(resolve_thresholds(5, "linear", device), "linear", 0.2)
    return dict(preds=preds, target=target, weight=None, grid=grid, approx="linear", k=10.0, num_classes=0,
                ignore_index=None, samplewise=False)


def _class_target(call, classes, **extra):
    call.update(target=torch.zeros(4, 5, dtype=torch.int64, device=call["preds"].device), num_classes=classes, **extra)


def _grid_value(call, row, column, value):
    grid = call["grid"].clone()
    grid[row, column] = value
    call["grid"] = grid


# case -> (edit of the good call, the argument the message must name)
BAD_CALLS = {
    "preds_dim": (lambda c: c.update(preds=c["preds"][0]), "preds"),
    "preds_dtype": (lambda c: c.update(preds=c["preds"].to(torch.int32)), "preds"),
    "target_shape": (lambda c: c.update(target=c["target"][:, :2]), "target"),
    "target_dtype": (lambda c: c.update(target=c["target"].to(torch.int16)), "target"),
    "class_target_dtype": (lambda c: c.update(target=torch.zeros(4, 5, device=c["preds"].device), num_classes=3),
                           "target"),
    "class_target_shape": (lambda c: c.update(target=torch.zeros(4, 6, dtype=torch.int64,
                                                                 device=c["preds"].device), num_classes=3), "target"),
    "num_classes_mismatch": (lambda c: _class_target(c, 4), "num_classes"),
    "num_classes_negative": (lambda c: c.update(num_classes=-1), "num_classes"),
    "ignore_in_class_range": (lambda c: _class_target(c, 3, ignore_index=2), "ignore_index"),
    "weight_shape": (lambda c: c.update(weight=torch.ones(4, 3, device=c["preds"].device)), "weight"),
    "weight_dtype": (lambda c: c.update(weight=torch.ones(4, 3, 5, dtype=torch.int32, device=c["preds"].device)),
                     "weight"),
    "grid_shape": (lambda c: c.update(grid=c["grid"][:, :4]), "grid"),
    "grid_empty": (lambda c: c.update(grid=c["grid"][:0]), "grid"),
    "grid_dtype": (lambda c: c.update(grid=c["grid"].float()), "grid"),
    "approx": (lambda c: c.update(approx="cubic"), "approx"),
    "sigmoid_k": (lambda c: c.update(approx="sigmoid", k=-1.0), "k"),
    "sigmoid_k_inf": (lambda c: c.update(approx="sigmoid", k=math.inf), "k"),
    "unsorted_grid": (lambda c: c.update(grid=c["grid"].flip(0)), "grid"),
    "a_above_b": (lambda c: _grid_value(c, 2, 1, 0.9), "grid"),  # a > tau > b on one row
    **{f"grid_{name}_nan": ((lambda c, col=col: _grid_value(c, 2, col, math.nan)), "grid")
       for col, name in enumerate(GRID_COLUMNS)},
    "grid_slope_inf": (lambda c: _grid_value(c, 0, 3, math.inf), "grid"),
}


def error_message(fn) -> str:
    with pytest.raises((RuntimeError, ValueError, TypeError)) as info:
        fn()
    return str(info.value).splitlines()[0]


def without_op_name(message: str) -> str:
    """The message after '<op>: ' (the backends' ops have different names)."""
    return re.sub(r"^\S*soft_counts\w*: ", "", message)


def twin_message(call) -> str:
    def run():
        op_checks.check_op_args("soft_counts", *list(call.values())[:-1])
        op_checks.check_grid_values("soft_counts", call["grid"], call["approx"])
    return without_op_name(error_message(run))


@pytest.mark.parametrize("case", sorted(BAD_CALLS))
def test_bad_direct_calls_same_message_on_every_backend(backend, device, case):
    edit, word = BAD_CALLS[case]
    call = good_call(device)
    edit(call)
    message = without_op_name(error_message(lambda: counts_function(backend)(*call.values())))
    assert word in message
    assert message == twin_message(call)


@pytest.mark.parametrize("case", sorted(BAD_CALLS))
def test_bad_direct_backward_calls_same_message(backend, device, case):
    edit, word = BAD_CALLS[case]
    call = good_call(device)
    edit(call)
    backward = {"cpu": torch.ops.softset_fast._soft_counts_backward,
                "cuda": torch.ops.softset_fast._soft_counts_backward}.get(backend)
    if backward is None:
        backward = torch.ops.softset_fast._triton_soft_counts_backward
    grad = torch.ones(1, 3, max(call["grid"].shape[0], 1), 4, device=device)
    message = without_op_name(error_message(lambda: backward(grad, *call.values())))
    assert word in message


@pytest.mark.parametrize("grad_case", ["shape", "device", "dtype"])
def test_backward_rejects_a_bad_grad(backend, device, grad_case):
    call = good_call(device)
    grad = torch.ones(1, 3, 5, 4, device=device)
    if grad_case == "shape":
        grad = grad[:, :2]
    elif grad_case == "device":
        grad = torch.ones(1, 3, 5, 4, device="meta")
    else:
        grad = grad.to(torch.int32)
    backward = (torch.ops.softset_fast._triton_soft_counts_backward if backend == "triton"
                else torch.ops.softset_fast._soft_counts_backward)
    message = error_message(lambda: backward(grad, *call.values()))
    assert "grad must" in message


def test_python_codes_match_the_shared_header():
    header = (ROOT / "csrc" / "softset_common.h").read_text()
    columns = re.search(r"enum GridColumn : int \{([^}]*)\}", header).group(1)
    names = [entry.split("=")[0].strip() for entry in columns.split(",")]
    values = [int(entry.split("=")[1]) for entry in columns.split(",")]
    expected = ["k" + ("Tau" if name == "tau" else name.upper()) for name in GRID_COLUMNS]
    assert names[:-1] == expected and values[:-1] == list(range(len(GRID_COLUMNS)))
    assert names[-1] == "kGridColumns" and values[-1] == len(GRID_COLUMNS)
    approx = re.search(r"enum class Approx : int \{([^}]*)\}", header).group(1)
    codes = {entry.split("=")[0].strip(): int(entry.split("=")[1]) for entry in approx.split(",")}
    from softset_fast.backends import triton_kernels
    assert codes == {"kLinear": triton_kernels.LINEAR, "kSigmoid": triton_kernels.SIGMOID,
                     "kStep": triton_kernels.STEP}


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_accumulation_rule_is_the_same_on_every_backend(backend, device, dtype):
    """csrc/softset_common.h's counts_type and _prepare.accumulation_dtype: the counts (and the weights
    they read) are float64 for float64 preds, float32 otherwise; the fused loss op follows it too."""
    from softset_fast._prepare import accumulation_dtype
    call = good_call(device)
    call.update(preds=call["preds"].to(dtype), weight=torch.rand(4, 3, 5, dtype=torch.float64, device=device))
    counts = counts_function(backend)(*call.values())
    assert counts.dtype == accumulation_dtype(dtype)
    assert counts_function("reference")(*call.values()).dtype == counts.dtype
    grad = torch.ones_like(counts)
    backward = (torch.ops.softset_fast._triton_soft_counts_backward if backend == "triton"
                else torch.ops.softset_fast._soft_counts_backward)
    assert backward(grad, *call.values()).dtype == dtype
