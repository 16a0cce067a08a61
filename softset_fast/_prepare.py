"""Argument checks and the canonical [N, C, L] layout every backend consumes.

Structural checks (types, shapes, devices, options) always run. Value checks
(ranges, NaN) read the data once and synchronise with the device; they run when
``validate_args=True`` and are skipped while torch.compile traces.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass

import torch

from ._grid import APPROXIMATIONS, grid_for

TASKS = ("binary", "multilabel", "multiclass")
MULTIDIM_AVERAGES = ("global", "samplewise")
PRED_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
# Target dtypes the kernels read directly; others are converted first.
KERNEL_TARGET_DTYPES = (torch.bool, torch.uint8, torch.int32, torch.int64,
                        torch.float16, torch.bfloat16, torch.float32, torch.float64)


def accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 inputs give float64 results; everything else float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _is_tracing() -> bool:
    return torch.compiler.is_compiling()


def _is_batched(*tensors) -> bool:
    """True for tensors being transformed by torch.func.vmap."""
    is_batched = torch._C._functorch.is_batchedtensor
    return any(t is not None and is_batched(t) for t in tensors)


def check_bool(name: str, value) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")


def check_options(approx, delta, k, task, multidim_average) -> None:
    if approx not in APPROXIMATIONS:
        raise ValueError(f"approx must be one of {APPROXIMATIONS}, got {approx!r}")
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    if multidim_average not in MULTIDIM_AVERAGES:
        raise ValueError(f"multidim_average must be one of {MULTIDIM_AVERAGES}, got {multidim_average!r}")
    if approx == "linear":
        if isinstance(delta, bool) or not isinstance(delta, (int, float)) or not (0 < delta < 0.5):
            raise ValueError(f"delta must be a number in (0, 0.5) for approx='linear', got {delta!r}")
    if approx == "sigmoid":
        if isinstance(k, bool) or not isinstance(k, (int, float)) or not (k > 0 and math.isfinite(k)):
            raise ValueError(f"k must be a finite number > 0 for approx='sigmoid', got {k!r}")


def _check_tensor(name: str, value) -> None:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")


def _check_same_device(name: str, value: torch.Tensor, preds: torch.Tensor) -> None:
    if value.device != preds.device:
        raise ValueError(f"{name} must be on the same device as preds ({preds.device}), got {value.device}")


def check_structure(preds, target, weight, task, num_classes, ignore_index, multidim_average) -> int:
    """Checks types, shapes and devices; returns the number of classes (1 for binary)."""
    _check_tensor("preds", preds)
    _check_tensor("target", target)
    if preds.dtype not in PRED_DTYPES:
        raise TypeError(f"preds must be float16, bfloat16, float32 or float64, got dtype {preds.dtype}")
    if target.is_complex():
        raise TypeError(f"target must be bool, integer or floating point, got dtype {target.dtype}")
    _check_same_device("target", target, preds)
    if ignore_index is not None and (isinstance(ignore_index, bool) or not isinstance(ignore_index, int)):
        raise TypeError(f"ignore_index must be an int or None, got {ignore_index!r}")
    if ignore_index is not None and not -2**63 <= ignore_index < 2**63:
        raise ValueError(f"ignore_index must fit in int64, got {ignore_index}")
    for name, value in (("target", target), ("weight", weight)):
        if value is not None and isinstance(value, torch.Tensor) and value.requires_grad:
            raise ValueError(f"{name} must not require grad: the counts are differentiable in preds only "
                             f"(pass {name}.detach())")
    if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1):
        raise ValueError(f"num_classes must be a positive int or None, got {num_classes!r}")

    if task == "binary":
        if target.shape != preds.shape:
            raise ValueError(f"target must have the shape of preds {tuple(preds.shape)} for task='binary', "
                             f"got {tuple(target.shape)}")
        if multidim_average == "samplewise" and preds.dim() < 1:
            raise ValueError("multidim_average='samplewise' needs preds with a batch axis, got a 0-d tensor")
        classes = 1
    else:
        if preds.dim() < 2:
            raise ValueError(f"preds must have shape [N, C, ...] for task={task!r}, got {tuple(preds.shape)}")
        classes = preds.shape[1]
        if num_classes is not None and num_classes != classes:
            raise ValueError(f"num_classes={num_classes} does not match preds.shape[1]={classes}")
        if task == "multilabel":
            if target.shape != preds.shape:
                raise ValueError(f"target must have the shape of preds {tuple(preds.shape)} for task='multilabel', "
                                 f"got {tuple(target.shape)}")
        else:
            if classes == 0:
                raise ValueError(f"preds must have at least one class for task='multiclass' (preds.shape[1] >= 1), "
                                 f"got shape {tuple(preds.shape)}")
            expected = preds.shape[:1] + preds.shape[2:]
            if target.shape != expected:
                raise ValueError(f"target must hold class indices of shape {tuple(expected)} (preds without its "
                                 f"class axis) for task='multiclass', got {tuple(target.shape)}")
            if target.is_floating_point() or target.dtype == torch.bool:
                raise TypeError(f"target must be an integer tensor of class indices for task='multiclass', "
                                f"got dtype {target.dtype}")
    if task != "multiclass" and ignore_index in (0, 1):
        raise ValueError(f"ignore_index={ignore_index} is a valid label for task={task!r}; "
                         "choose a value outside {0, 1} (e.g. -1 or 255)")
    if weight is not None:
        _check_tensor("weight", weight)
        _check_same_device("weight", weight, preds)
        if weight.shape != target.shape:
            raise ValueError(f"weight must have the shape of target {tuple(target.shape)}, got {tuple(weight.shape)}")
        if weight.is_complex():
            raise TypeError(f"weight must be real, got dtype {weight.dtype}")
    return classes


def effective_ignore_index(target: torch.Tensor, ignore_index: int | None) -> int | None:
    """None when no target value can equal ``ignore_index``: a value outside the target dtype's range
    (e.g. 256 for uint8) would wrap in the kernels' comparison and drop valid labels."""
    if ignore_index is None or target.is_floating_point():
        return ignore_index
    if target.dtype == torch.bool:
        return ignore_index if ignore_index in (0, 1) else None
    info = torch.iinfo(target.dtype)
    return ignore_index if info.min <= ignore_index <= info.max else None


def check_values(preds, target, weight, task, classes, ignore_index, from_logits) -> None:
    """Data checks; each reads its tensor once and synchronises."""
    if preds.numel() > 0:
        if from_logits:
            if not bool(torch.isfinite(preds).all()):
                raise ValueError("preds contains NaN or inf")
        else:
            low, high = torch.aminmax(preds)
            # aminmax propagates NaN, so one pass covers NaN, inf and the range.
            if not bool(torch.isfinite(low)) or not bool(torch.isfinite(high)):
                raise ValueError("preds contains NaN or inf")
            if low < 0 or high > 1:
                raise ValueError(f"preds must be probabilities in [0, 1] (or pass from_logits=True), "
                                 f"got values in [{float(low):g}, {float(high):g}]")
    if target.numel() > 0 and target.dtype != torch.bool:
        kept = target if ignore_index is None else target[target != ignore_index]
        if kept.numel() > 0:
            if task == "multiclass":
                low, high = torch.aminmax(kept)
                if low < 0 or high >= classes:
                    raise ValueError(f"target must hold class indices in [0, {classes}) or ignore_index, "
                                     f"got values in [{int(low)}, {int(high)}]")
            elif kept.is_floating_point():
                low, high = torch.aminmax(kept)
                if not (bool(low >= 0) and bool(high <= 1)):
                    raise ValueError(f"target must lie in [0, 1] (soft labels allowed) for task={task!r}, "
                                     f"got values in [{float(low):g}, {float(high):g}]")
            elif not bool(((kept == 0) | (kept == 1)).all()):
                raise ValueError(f"target must hold 0 or 1 for task={task!r} (or ignore_index)")
    if weight is not None and weight.numel() > 0:
        if weight.is_floating_point() and not bool(torch.isfinite(weight).all()):
            raise ValueError("weight contains NaN or inf")
        acc = accumulation_dtype(preds.dtype)
        if torch.finfo(weight.dtype).max > torch.finfo(acc).max and bool(weight.abs().max() > torch.finfo(acc).max):
            raise ValueError(f"weight must be finite in {str(acc).removeprefix('torch.')}, the dtype the counts "
                             f"of {str(preds.dtype).removeprefix('torch.')} preds accumulate in; got values up to "
                             f"{float(weight.abs().max()):g}")
        if bool((weight < 0).any()):
            raise ValueError("weight must be non-negative")


@dataclass
class Layout:
    """A checked call, and how its tensors map onto the layout of the ``softset_fast::soft_counts`` op.

    resolve() gives the public tensors in their own shapes; to_op_layout() the same call with
    preds [N, C, L] (probabilities: ``from_logits`` already applied), target [N, C, L] or
    [N, L] (class indices), weight in target's shape and the accumulation dtype.
    grid: [T, 8] float64 coefficient table (see _grid.GRID_COLUMNS)
    num_classes: 0 for binary/multilabel, C for class-index targets
    shape: [N, C, L] of the op; target_shape: [N, C, L] or [N, L]
    out_shape: the public result shape; the op returns [G, C, T, 4]
    validate_values: the data's values are still to be checked (by check_values or the fused op)
    from_logits: preds were logits, made probabilities by :func:`probabilities`
    logits_checked: ``from_logits`` values were checked before the sigmoid / softmax
    target_remapped: the target was rewritten from the data (a multiclass ignore_index naming a class)
    """
    preds: torch.Tensor
    target: torch.Tensor
    weight: torch.Tensor | None
    grid: torch.Tensor
    approx: str
    k: float
    task: str
    classes: int
    num_classes: int
    ignore_index: int | None
    samplewise: bool
    shape: tuple
    target_shape: tuple
    out_shape: tuple
    validate_values: bool
    from_logits: bool = False
    logits_checked: bool = False
    target_remapped: bool = False


def probabilities(logits: torch.Tensor, task: str) -> torch.Tensor:
    """``from_logits``: the softmax over the class axis for a multiclass task, else the sigmoid."""
    return logits.softmax(dim=1) if task == "multiclass" else logits.sigmoid()


def kernel_target(target: torch.Tensor) -> torch.Tensor:
    """target in a dtype every op path reads (KERNEL_TARGET_DTYPES): others are converted."""
    if target.dtype in KERNEL_TARGET_DTYPES:
        return target
    return target.to(torch.int64 if not target.is_floating_point() else torch.float32)


# The target value an ignored class is remapped to: outside every class range, and read by every kernel.
DROPPED_CLASS = -1


def _drop_class(target: torch.Tensor, ignore_index: int) -> tuple[torch.Tensor, int]:
    """A multiclass ignore_index that names a class: its samples are left out entirely (as torchmetrics
    does), by remapping their targets to DROPPED_CLASS, which the kernels skip as the ignore_index. The
    class itself stays, with no positives. The kernels reject an ignore_index inside [0, C), so every
    backend and the fused loss get the remapped target."""
    dtype = target.dtype if target.dtype in (torch.int32, torch.int64) else torch.int64  # uint8 has no -1
    dropped = torch.tensor(DROPPED_CLASS, dtype=dtype, device=target.device)
    return torch.where(target == ignore_index, dropped, target.to(dtype)), DROPPED_CLASS


@functools.lru_cache(maxsize=256)
def _checked_options(typed_options: tuple) -> None:
    """check_options once per distinct options; keyed with the types (k=True must not hit k=1)."""
    check_options(*(value for _, value in typed_options))  # raises: errors are not cached


def resolve(preds, target, *, thresholds, approx, delta, k, task, num_classes, weight, ignore_index,
            multidim_average, from_logits, validate_args=True) -> Layout:
    """Checks everything but the data's values (unless ``from_logits``, whose logits are checked
    here before the sigmoid) and works out the op's layout, without touching the data."""
    if torch.compiler.is_compiling():  # traced once, so nothing to cache (and torch 2.11 warns on lru_cache)
        check_options(approx, delta, k, task, multidim_average)
    else:
        try:
            _checked_options(tuple((type(v), v) for v in (approx, delta, k, task, multidim_average)))
        except TypeError:  # unhashable option values: check them uncached for the clear error
            check_options(approx, delta, k, task, multidim_average)
    check_bool("from_logits", from_logits)
    check_bool("validate_args", validate_args)
    classes = check_structure(preds, target, weight, task, num_classes, ignore_index, multidim_average)
    ignore_index = effective_ignore_index(target, ignore_index)
    # Meta tensors have no values to check; traced ones are checked when the graph runs, not here.
    validate_values = validate_args and not _is_tracing() and preds.device.type != "meta"
    if validate_values and _is_batched(preds, target, weight):
        raise ValueError("validate_args=True reads the data's values, which torch.func.vmap does not allow; "
                         "pass validate_args=False inside vmap (and validate the unbatched inputs once)")
    grid = grid_for(thresholds, approx, float(delta), preds.device, validate_tensor=validate_values)
    logits_checked = from_logits and validate_values
    if from_logits:
        if validate_values:
            check_values(preds, target, weight, task, classes, ignore_index, from_logits)
            validate_values = False
        preds = probabilities(preds, task)
    target = kernel_target(target)
    target_remapped = task == "multiclass" and ignore_index is not None and 0 <= ignore_index < classes
    if target_remapped:
        if validate_values:  # on the targets as given: the remapping below would hide a stray -1
            check_values(preds, target, weight, task, classes, ignore_index, False)
            validate_values = False
        target, ignore_index = _drop_class(target, ignore_index)
    samplewise = multidim_average == "samplewise"
    num_thresholds = grid.shape[0]
    if task == "binary":
        batch = preds.shape[0] if samplewise else 1
        # explicit lengths: -1 is ambiguous for an empty batch
        length = math.prod(preds.shape[1:]) if samplewise else preds.numel()
        shape = (batch, 1, length)
        target_shape = shape
        out_shape = (batch, num_thresholds, 4) if samplewise else (num_thresholds, 4)
        op_classes = 0
    else:
        batch = preds.shape[0]
        length = math.prod(preds.shape[2:])
        shape = (batch, classes, length)
        op_classes = classes if task == "multiclass" else 0
        target_shape = (batch, length) if op_classes else shape
        out_shape = (batch, classes, num_thresholds, 4) if samplewise else (classes, num_thresholds, 4)
    return Layout(preds=preds, target=target, weight=weight, grid=grid, approx=approx, k=float(k), task=task,
                  classes=classes, num_classes=op_classes, ignore_index=ignore_index, samplewise=samplewise,
                  shape=shape, target_shape=target_shape, out_shape=out_shape, validate_values=validate_values,
                  from_logits=from_logits, logits_checked=logits_checked, target_remapped=target_remapped)


def prepare(preds, target, *, thresholds, approx, delta, k, task, num_classes, weight, ignore_index,
            multidim_average, from_logits, validate_args=True) -> Layout:
    """Checks the arguments and lays the data out as [N, C, L] for the op."""
    return to_op_layout(resolve(preds, target, thresholds=thresholds, approx=approx, delta=delta, k=k, task=task,
                                num_classes=num_classes, weight=weight, ignore_index=ignore_index,
                                multidim_average=multidim_average, from_logits=from_logits,
                                validate_args=validate_args))


def to_op_layout(layout: Layout) -> Layout:
    """Checks the values still to be checked and reshapes the data into the op's [N, C, L] layout."""
    target, weight = layout.target, layout.weight
    if layout.validate_values:
        check_values(layout.preds, target, weight, layout.task, layout.classes, layout.ignore_index, False)
    target3 = target.reshape(layout.target_shape)
    weight3 = None
    if weight is not None:
        weight3 = weight.reshape(layout.target_shape).to(accumulation_dtype(layout.preds.dtype)).contiguous()
    return dataclasses.replace(layout, preds=layout.preds.reshape(layout.shape).contiguous(),
                               target=target3.contiguous(), weight=weight3, validate_values=False)
