"""Repeated loss calls: the checks and the op's layout worked out once per call signature.

A training loop calls the same loss with the same options on tensors of the same dtypes and
shapes every step. The first call of a signature runs every check (losses.metric_loss); when
it ends in the fused op, it records a :class:`FusedPlan`, the op's arguments that do not
depend on the data. A later call with the same signature goes straight to the op. The data's
values are still checked on every call (by the op, or before the sigmoid of ``from_logits``).

A signature is every option with its type (``k=True`` must not reuse the plan of ``k=1``) and
each tensor's dtype, shape, device and requires_grad. Calls whose work depends on more than
that never use a plan: a tensor grid, class options, sync_dist, a callable metric,
approx="step" (it warns), tracing and functorch transforms.
"""
from __future__ import annotations

import weakref

import torch

from ._prepare import check_values, kernel_target, probabilities
from .backends import loss_autograd

_PLANS: dict = {}
_PLANS_LIMIT = 256


# The options of each live plan by its number, for the planned op's fake kernel (backends/loss_op.py).
PLANNED_OPTIONS: dict = {}


class FusedPlan:
    """One call signature's fused loss: ``soft_set_loss(preds, target, weight, *op_args)``. The options
    are stored in C++ once (``_soft_set_loss_plan``), so each call passes the tensors and the plan's
    number only; the C++ plan lives as long as this object."""
    __slots__ = ("op_args", "from_logits", "check_logits", "number", "__weakref__")

    def __init__(self, op_args: tuple, from_logits: bool, check_logits: tuple | None):
        self.op_args = op_args
        self.from_logits = from_logits
        self.check_logits = check_logits  # (task, classes, ignore_index) of check_values when the logits are checked
        self.number = torch.ops.softset_fast._soft_set_loss_plan(*op_args)
        PLANNED_OPTIONS[self.number] = op_args
        weakref.finalize(self, _drop, self.number).atexit = False  # at exit the C++ registry goes as a whole

    def __call__(self, preds: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
        if self.from_logits:
            if self.check_logits is not None:
                check_values(preds, target, weight, *self.check_logits, True)
            preds = probabilities(preds, self.op_args[7])  # the task
        return loss_autograd.planned_soft_set_loss(preds, kernel_target(target), weight, self.op_args, self.number)


def _drop(number: int) -> None:
    PLANNED_OPTIONS.pop(number, None)
    torch.ops.softset_fast._drop_soft_set_loss_plan(number)


def _thresholds_key(thresholds):
    if thresholds is None or (type(thresholds) is int):
        return thresholds
    if type(thresholds) in (list, tuple):
        return tuple(thresholds), tuple(map(type, thresholds))
    raise TypeError  # a tensor grid (its values may change): no plan


def signature(preds, target, weight, metric, average, metric_kwargs, classes, class_weight, ignore_absent_classes,
              thresholds, approx, delta, k, task, num_classes, ignore_index, multidim_average, from_logits, backend,
              validate_args, sync_dist) -> tuple | None:
    """The hashable signature of a loss call, or None when the call cannot use a plan. One flat tuple
    (it is built and hashed every step): the options, the types of those that equal a value of another
    type (True == 1 == 1.0), and each tensor's dtype, shape, device and requires_grad."""
    if (sync_dist is not False or classes is not None or class_weight is not None
            or ignore_absent_classes is not False or type(metric) is not str or approx == "step"
            or type(preds) is not _Tensor or type(target) is not _Tensor
            or (weight is not None and type(weight) is not _Tensor)
            or (metric_kwargs is not None and type(metric_kwargs) is not dict)
            or _is_compiling() or _functorch_transforms_active()):
        return None
    try:
        thresholds = _thresholds_key(thresholds)
    except TypeError:  # a tensor grid
        return None
    kwargs = (*metric_kwargs.items(), *map(type, metric_kwargs.values())) if metric_kwargs else ()
    return (metric, average, approx, delta, type(delta), k, type(k), task, num_classes, type(num_classes),
            ignore_index, type(ignore_index), multidim_average, from_logits, type(from_logits), backend,
            validate_args, type(validate_args), thresholds, *kwargs,
            preds.dtype, preds.shape, preds.device, preds.requires_grad, target.dtype, target.shape, target.device,
            target.requires_grad,
            None if weight is None else (weight.dtype, weight.shape, weight.device, weight.requires_grad))


_Tensor = torch.Tensor
_is_compiling = torch.compiler.is_compiling
_functorch_transforms_active = torch._C._are_functorch_transforms_active


def plan_for(key: tuple | None) -> FusedPlan | None:
    if key is None:
        return None
    try:
        return _PLANS.get(key)
    except TypeError:  # unhashable option values: no plan
        return None


def record(key: tuple | None, plan: FusedPlan) -> None:
    if key is None:
        return
    if len(_PLANS) >= _PLANS_LIMIT:
        _PLANS.clear()
    try:
        _PLANS[key] = plan
    except TypeError:  # unhashable option values
        pass
