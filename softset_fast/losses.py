"""Losses 1 − metric on the soft counts, functional and as nn.Modules.

Threshold metrics are averaged over the grid (and over classes with ``average``, and over
samples for multidim_average="samplewise"). Defaults follow the paper and its official
package: thresholds 0.1..0.9, approx="linear" with delta=0.2 (sigmoid k=10).

A built-in metric on the C++ CPU backend runs as one fused op; ``classes``,
``class_weight``, ``ignore_absent_classes``, a callable metric and other backends take the
tensor-op path (the fused op knows the four built-in averages only).
"""
from __future__ import annotations

import inspect
import os
import sys
import warnings
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence, Union

import torch
from torch import nn

from . import _loss_plans
from . import metrics as _metrics
from ._options import (MODULE_OPTIONS, Approx, Average, Backend, ClassWeight, MultidimAverage, Task,
                       Thresholds, check_class_options, check_loss_options, check_metric_kwargs, document, pick,
                       strict_keywords)
from ._prepare import resolve, to_op_layout
from .backends import loss_autograd
from .backends.registry import counts_function, fused_loss_runs, resolve_backend
from .confusion import counts_of_prepared, op_counts

if TYPE_CHECKING:  # annotations only
    from torch.distributed import ProcessGroup

__all__ = ["metric_loss", "fbeta_loss", "f1_loss", "accuracy_loss", "auroc_loss", "SoftSetLoss", "FBetaLoss",
           "AccuracyLoss", "AUROCLoss", "StepGradientWarning"]

Metric = Union[str, Callable[..., torch.Tensor]]


class StepGradientWarning(UserWarning):
    """A loss computed with approx="step" on preds that require grad: the step's gradient is
    exactly zero, so training on it learns nothing. Shown once per process."""


_step_warned = False  # once per process, whatever the warning filters (a flag, not the "once" filter:
                      # that filter is lost when softset_fast is imported inside warnings.catch_warnings)


def _warn_if_step(approx: str, preds: torch.Tensor) -> None:
    global _step_warned
    if _step_warned or approx != "step" or not preds.requires_grad or not torch.is_grad_enabled() or \
            torch.compiler.is_compiling():
        return
    _step_warned = True
    warnings.warn("softset_fast: a loss with approx='step' has an exactly zero gradient in preds, so training on "
                  "it learns nothing; use approx='linear' or 'sigmoid' to train (the step is for evaluation)",
                  StepGradientWarning, stacklevel=_caller_stacklevel())


def _caller_stacklevel() -> int:
    """The stacklevel of the first frame outside softset_fast and torch (nn.Module's call), so the
    warning points at the user's call."""
    inside = tuple(os.path.dirname(os.path.abspath(m.__file__)) + os.sep for m in (sys.modules[__package__], torch))
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(inside):
        frame, level = frame.f_back, level + 1
    return level


def _resolve_metric(metric) -> Callable:
    if callable(metric):
        return metric
    if isinstance(metric, str) and metric in _metrics.METRICS:
        return _metrics.METRICS[metric]
    raise ValueError(f"metric must be one of {sorted(_metrics.METRICS)} or a callable on the counts, got {metric!r}")


# The keywords each built-in metric takes besides the counts and average (read once: signature() is slow).
_METRIC_KEYWORDS = {name: frozenset(inspect.signature(function).parameters) - {"cm", "average"}
                    for name, function in _metrics.METRICS.items()}


def _checked_metric_kwargs(metric, metric_kwargs) -> dict:
    """metric_kwargs as a dict, checked: a built-in metric must accept each keyword."""
    if metric_kwargs is not None and not isinstance(metric_kwargs, (dict, Mapping)):  # dict first: fast
        raise TypeError(f"metric_kwargs must be a dict of keywords or None, got {metric_kwargs!r}")
    kwargs = dict(metric_kwargs or {})
    check_metric_kwargs(kwargs)
    unknown = sorted(set(kwargs) - _METRIC_KEYWORDS[metric]) if isinstance(metric, str) else []
    if unknown:
        raise TypeError(f"metric_kwargs {unknown} are not keywords of metric {metric!r}; it takes "
                        f"{sorted(_METRIC_KEYWORDS[metric])}")
    return kwargs


@strict_keywords
@document
def metric_loss(preds: torch.Tensor, target: torch.Tensor, metric: Metric = "f1", *,
                average: Average | None = "macro", metric_kwargs: Mapping[str, Any] | None = None,
                classes: Sequence[int] | None = None, class_weight: ClassWeight = None,
                ignore_absent_classes: bool = False, thresholds: Thresholds = None, approx: Approx = "linear",
                delta: float = 0.2, k: float = 10.0, task: Task = "binary", num_classes: int | None = None,
                weight: torch.Tensor | None = None, ignore_index: int | None = None,
                multidim_average: MultidimAverage = "global", from_logits: bool = False, backend: Backend = "auto",
                validate_args: bool = True, sync_dist: bool = False,
                process_group: ProcessGroup | None = None) -> torch.Tensor:
    """1 − mean(metric(soft_confusion_matrix(preds, target, ...))): any metric as a loss.

    A built-in metric on the C++ CPU backend runs as one fused op (counts, metric and mean, and
    one backward; docs/architecture.md); ``classes``, ``class_weight`` and
    ``ignore_absent_classes`` take the tensor-op path, with the same values.

    {loss_sections}

    Example:
        >>> import softset_fast as sf
        >>> preds = torch.tensor([0.9, 0.8, 0.4, 0.3, 0.2])
        >>> target = torch.tensor([1, 0, 1, 0, 0])
        >>> sf.metric_loss(preds, target, "mcc")
        tensor(0.7866)
        >>> probs = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.3, 0.3, 0.4], [0.5, 0.4, 0.1]])
        >>> sf.metric_loss(probs, torch.tensor([0, 1, 2, 1]), "jaccard", task="multiclass", average="none")
        tensor([0.6811, 0.6399, 0.7630])
    """
    key = _loss_plans.signature(preds, target, weight, metric, average, metric_kwargs, classes, class_weight,
                                ignore_absent_classes, thresholds, approx, delta, k, task, num_classes, ignore_index,
                                multidim_average, from_logits, backend, validate_args, sync_dist)
    plan = _loss_plans.plan_for(key)
    if plan is not None:  # this signature's checks passed before: straight to the fused op
        return plan(preds, target, weight)
    function = _resolve_metric(metric)
    kwargs = _checked_metric_kwargs(metric, metric_kwargs)
    checked = check_class_options(average, classes, class_weight, ignore_absent_classes, task, num_classes,
                                  validate_args, sync_dist)
    average, classes, class_weight = checked["average"], checked["classes"], checked["class_weight"]
    layout = resolve(preds, target, thresholds=thresholds, approx=approx, delta=delta, k=k, task=task,
                     num_classes=num_classes, weight=weight, ignore_index=ignore_index,
                     multidim_average=multidim_average, from_logits=from_logits, validate_args=validate_args)
    _warn_if_step(layout.approx, preds)
    backend = resolve_backend(backend, layout.preds.device)
    class_control = classes is not None or class_weight is not None or ignore_absent_classes
    if class_control:
        _check_against_classes(classes, class_weight, layout.classes)
    task_average = average if layout.task != "binary" else "macro"
    if not class_control and fused_loss_runs(backend, layout.preds.device) and _fusable(metric, kwargs):
        return _fused_loss(layout, metric, task_average, kwargs, sync_dist, process_group, key)
    counts = counts_of_prepared(to_op_layout(layout), counts_function(backend), sync_dist, process_group)
    if layout.task == "binary":
        return 1 - _metric_values(function, counts, kwargs, None).mean()
    return _class_loss(counts, function, kwargs, task_average, layout.samplewise, classes, class_weight,
                       ignore_absent_classes)


_metric_loss = metric_loss.__wrapped__  # for the thin losses: their own keywords are checked already


def _check_against_classes(classes, class_weight, num_classes: int) -> None:
    """The class options against the call's number of classes (preds.shape[1])."""
    if classes is not None and not all(0 <= c < num_classes for c in classes):
        raise ValueError(f"classes must lie in [0, {num_classes}) (preds.shape[1]), got {list(classes)}")
    if class_weight is not None and class_weight.shape[0] != num_classes:
        raise ValueError(f"class_weight must have one weight per class, preds.shape[1] = {num_classes}, "
                         f"got {class_weight.shape[0]}")


def _fusable(metric, kwargs: dict) -> bool:
    allowed = {"beta", "zero_division"} if metric == "fbeta" else {"zero_division"}
    return isinstance(metric, str) and metric in _metrics.METRICS and set(kwargs) <= allowed


def _fused_loss(layout, metric: str, average: str, kwargs: dict, sync_dist: bool, process_group, key):
    beta = float(kwargs.get("beta", 1.0))
    zero_division = float(kwargs.get("zero_division", 0.0))
    ops = torch.ops.softset_fast
    if not sync_dist:
        op_args = (layout.grid, layout.approx, layout.k, layout.num_classes, layout.ignore_index, layout.samplewise,
                   list(layout.shape), layout.task, layout.validate_values, metric, average, beta, zero_division)
        # The plan repeats what resolve did to the tensors, remapping aside; no plan while tracing (key None).
        if key is not None and not layout.target_remapped:
            _loss_plans.record(key, _loss_plans.FusedPlan(
                op_args, from_logits=layout.from_logits,
                check_logits=(layout.task, layout.classes, layout.ignore_index) if layout.logits_checked else None))
        return loss_autograd.soft_set_loss(layout.preds, layout.target, layout.weight, *op_args)
    # The collective sits between the counts and the loss: counts -> all-reduce -> epilogue.
    counts = op_counts(to_op_layout(layout), ops.soft_counts, True, process_group)
    return ops.metric_loss(counts, metric, average, beta, zero_division)


def _metric_values(function, counts: torch.Tensor, kwargs: dict, average: str | None) -> torch.Tensor:
    """The metric of counts [(N,) (C,) T, 4], classes reduced by ``average`` (None: binary, no class axis).
    A callable gets the built-in metrics' average handling, on its per-class values."""
    if function in _metrics.METRICS.values():
        return function(counts, **kwargs) if average is None else function(counts, average=average, **kwargs)
    values = function(counts, **kwargs)
    if not isinstance(values, torch.Tensor) or values.shape not in (counts.shape[:-1], counts.shape[:-2]):
        shape = getattr(values, "shape", type(values).__name__)
        raise ValueError(f"metric must return one value per threshold, [..., T] (or [...]) for counts "
                         f"{list(counts.shape)}, got {shape}")
    return values if average is None else _metrics.with_average(function)(counts, average=average, **kwargs)


def _class_loss(counts, function, kwargs: dict, average: str, samplewise: bool, classes, class_weight,
                ignore_absent: bool) -> torch.Tensor:
    """1 − the metric of counts [(N,) C, T, 4], reduced over the classes as the options say."""
    class_axis = 1 if samplewise else 0
    if classes is not None:
        counts = counts.index_select(class_axis, torch.tensor(classes, device=counts.device))
    if class_weight is None and not ignore_absent:
        values = _metric_values(function, counts, kwargs, average)
        if average == "none":
            return 1 - _mean_except_class_axis(values, samplewise)
        return 1 - values.mean()
    # A weighted macro average: per class (and sample) the loss averaged over the thresholds.
    values = _metric_values(function, counts, kwargs, "none")           # [(N,) C(, T)]
    losses = 1 - (values.mean(-1) if values.dim() == counts.dim() - 1 else values)   # [(N,) C]
    weights = torch.ones(counts.shape[class_axis], dtype=losses.dtype, device=losses.device)
    if class_weight is not None:
        class_weight = class_weight.to(device=losses.device, dtype=losses.dtype)
        weights = class_weight if classes is None else class_weight[list(classes)]
    if ignore_absent:  # no positives (tp + fn = 0 at every threshold): out of the average
        weights = weights * ((counts[..., 0, 0] + counts[..., 0, 1]) > 0)
    total = weights.sum(-1)
    per_group = (losses * weights).sum(-1) / torch.where(total > 0, total, torch.ones_like(total))
    if not samplewise:
        return per_group                       # 0 (no gradient) when no class is left
    groups = (total > 0).sum()                 # samples with at least one class in the average
    return per_group.sum() / torch.where(groups > 0, groups, torch.ones_like(groups))


def _mean_except_class_axis(values: torch.Tensor, samplewise: bool) -> torch.Tensor:
    """Per-class mean of metric values [(N,) C(, T)]: over the samples and the thresholds."""
    class_axis = 1 if samplewise else 0
    dims = [d for d in range(values.dim()) if d != class_axis]
    return values.mean(dims) if dims else values


# The thin losses below pass every option on by name (tests/test_api.py checks that none is dropped),
# not through locals(): torch 2.11's dynamo cannot trace locals(), and a compiled training step calls them.
@strict_keywords
@document
def fbeta_loss(preds: torch.Tensor, target: torch.Tensor, beta: float = 1.0, *, zero_division: float = 0.0,
               average: Average | None = "macro", classes: Sequence[int] | None = None,
               class_weight: ClassWeight = None, ignore_absent_classes: bool = False, thresholds: Thresholds = None,
               approx: Approx = "linear", delta: float = 0.2, k: float = 10.0, task: Task = "binary",
               num_classes: int | None = None, weight: torch.Tensor | None = None, ignore_index: int | None = None,
               multidim_average: MultidimAverage = "global", from_logits: bool = False, backend: Backend = "auto",
               validate_args: bool = True, sync_dist: bool = False,
               process_group: ProcessGroup | None = None) -> torch.Tensor:
    """1 − F_β averaged over the threshold grid; F_β = (1 + β²)TP / ((1 + β²)TP + β²FN + FP).

    {loss_sections}

    Example:
        >>> import softset_fast as sf
        >>> preds = torch.tensor([0.9, 0.8, 0.4, 0.3, 0.2])
        >>> target = torch.tensor([1, 0, 1, 0, 0])
        >>> sf.fbeta_loss(preds, target, beta=2.0)
        tensor(0.4043)
    """
    return _metric_loss(preds, target, "fbeta", metric_kwargs={"beta": beta, "zero_division": zero_division},
                        average=average, classes=classes, class_weight=class_weight,
                        ignore_absent_classes=ignore_absent_classes, thresholds=thresholds, approx=approx, delta=delta,
                        k=k, task=task, num_classes=num_classes, weight=weight, ignore_index=ignore_index,
                        multidim_average=multidim_average, from_logits=from_logits, backend=backend,
                        validate_args=validate_args, sync_dist=sync_dist, process_group=process_group)


@strict_keywords
@document
def f1_loss(preds: torch.Tensor, target: torch.Tensor, *, zero_division: float = 0.0,
            average: Average | None = "macro", classes: Sequence[int] | None = None, class_weight: ClassWeight = None,
            ignore_absent_classes: bool = False, thresholds: Thresholds = None, approx: Approx = "linear",
            delta: float = 0.2, k: float = 10.0, task: Task = "binary", num_classes: int | None = None,
            weight: torch.Tensor | None = None, ignore_index: int | None = None,
            multidim_average: MultidimAverage = "global", from_logits: bool = False, backend: Backend = "auto",
            validate_args: bool = True, sync_dist: bool = False,
            process_group: ProcessGroup | None = None) -> torch.Tensor:
    """1 − F1 averaged over the threshold grid (:func:`fbeta_loss` with β = 1).

    {loss_sections}

    Example:
        >>> import softset_fast as sf
        >>> preds = torch.tensor([[0.9, 0.1], [0.8, 0.7], [0.4, 0.2], [0.3, 0.9]])
        >>> target = torch.tensor([[1, 0], [0, 1], [1, 0], [0, 1]])
        >>> sf.f1_loss(preds, target, task="multilabel")
        tensor(0.3288)
    """
    return _metric_loss(preds, target, "f1", metric_kwargs={"zero_division": zero_division},
                        average=average, classes=classes, class_weight=class_weight,
                        ignore_absent_classes=ignore_absent_classes, thresholds=thresholds, approx=approx, delta=delta,
                        k=k, task=task, num_classes=num_classes, weight=weight, ignore_index=ignore_index,
                        multidim_average=multidim_average, from_logits=from_logits, backend=backend,
                        validate_args=validate_args, sync_dist=sync_dist, process_group=process_group)


@strict_keywords
@document
def accuracy_loss(preds: torch.Tensor, target: torch.Tensor, *, zero_division: float = 0.0,
                  average: Average | None = "macro", classes: Sequence[int] | None = None,
                  class_weight: ClassWeight = None, ignore_absent_classes: bool = False,
                  thresholds: Thresholds = None, approx: Approx = "linear", delta: float = 0.2, k: float = 10.0,
                  task: Task = "binary", num_classes: int | None = None, weight: torch.Tensor | None = None,
                  ignore_index: int | None = None, multidim_average: MultidimAverage = "global",
                  from_logits: bool = False, backend: Backend = "auto", validate_args: bool = True,
                  sync_dist: bool = False, process_group: ProcessGroup | None = None) -> torch.Tensor:
    """1 − accuracy averaged over the threshold grid; accuracy = (TP + TN) / (TP + FN + FP + TN).

    {loss_sections}

    Example:
        >>> import softset_fast as sf
        >>> logits = torch.tensor([2.0, 1.5, -0.5, -1.0, -2.0])
        >>> sf.accuracy_loss(logits, torch.tensor([1, 0, 1, 0, 0]), from_logits=True)
        tensor(0.3982)
    """
    return _metric_loss(preds, target, "accuracy", metric_kwargs={"zero_division": zero_division},
                        average=average, classes=classes, class_weight=class_weight,
                        ignore_absent_classes=ignore_absent_classes, thresholds=thresholds, approx=approx, delta=delta,
                        k=k, task=task, num_classes=num_classes, weight=weight, ignore_index=ignore_index,
                        multidim_average=multidim_average, from_logits=from_logits, backend=backend,
                        validate_args=validate_args, sync_dist=sync_dist, process_group=process_group)


@strict_keywords
@document
def auroc_loss(preds: torch.Tensor, target: torch.Tensor, *, zero_division: float = 0.0,
               average: Average | None = "macro", classes: Sequence[int] | None = None,
               class_weight: ClassWeight = None, ignore_absent_classes: bool = False, thresholds: Thresholds = None,
               approx: Approx = "linear", delta: float = 0.2, k: float = 10.0, task: Task = "binary",
               num_classes: int | None = None, weight: torch.Tensor | None = None, ignore_index: int | None = None,
               multidim_average: MultidimAverage = "global", from_logits: bool = False, backend: Backend = "auto",
               validate_args: bool = True, sync_dist: bool = False,
               process_group: ProcessGroup | None = None) -> torch.Tensor:
    """1 − AUROC of the soft ROC curve through the grid, closed by (0, 0) and (1, 1).

    {loss_sections}

    Example:
        >>> import softset_fast as sf
        >>> preds = torch.tensor([0.9, 0.8, 0.4, 0.3, 0.2])
        >>> sf.auroc_loss(preds, torch.tensor([1, 0, 1, 0, 0]), thresholds=99)
        tensor(0.3317)
    """
    return _metric_loss(preds, target, "auroc", metric_kwargs={"zero_division": zero_division},
                        average=average, classes=classes, class_weight=class_weight,
                        ignore_absent_classes=ignore_absent_classes, thresholds=thresholds, approx=approx, delta=delta,
                        k=k, task=task, num_classes=num_classes, weight=weight, ignore_index=ignore_index,
                        multidim_average=multidim_average, from_logits=from_logits, backend=backend,
                        validate_args=validate_args, sync_dist=sync_dist, process_group=process_group)


def _is_default(value, default) -> bool:
    if value is default:
        return True
    if isinstance(value, torch.Tensor) or isinstance(default, torch.Tensor):
        return False
    return type(value) is type(default) and value == default


@document
class SoftSetLoss(nn.Module):
    """nn.Module form of :func:`metric_loss`: options fixed (and checked) at construction,
    ``forward(preds, target, weight=None)`` computes the loss.

    {loss_sections}

    Example:
        >>> import softset_fast as sf
        >>> criterion = sf.SoftSetLoss("mcc", from_logits=True)
        >>> criterion
        SoftSetLoss(metric='mcc', from_logits=True)
        >>> criterion(torch.tensor([2.0, 1.5, -0.5, -1.0]), torch.tensor([1, 0, 1, 0]))
        tensor(0.9056)
    """

    @strict_keywords
    def __init__(self, metric: Metric = "f1", *, average: Average | None = "macro",
                 metric_kwargs: Mapping[str, Any] | None = None, classes: Sequence[int] | None = None,
                 class_weight: ClassWeight = None, ignore_absent_classes: bool = False, thresholds: Thresholds = None,
                 approx: Approx = "linear", delta: float = 0.2, k: float = 10.0, task: Task = "binary",
                 num_classes: int | None = None, ignore_index: int | None = None,
                 multidim_average: MultidimAverage = "global", from_logits: bool = False, backend: Backend = "auto",
                 validate_args: bool = True, sync_dist: bool = False, process_group: ProcessGroup | None = None):
        super().__init__()
        self._setup(metric, metric_kwargs, pick(locals(), MODULE_OPTIONS))

    def _setup(self, metric, metric_kwargs, options: dict) -> None:
        """Checks every option now (a bad one fails at construction, not at the first forward)."""
        _resolve_metric(metric)
        metric_kwargs = _checked_metric_kwargs(metric, metric_kwargs)
        checked = check_loss_options(**options)
        self.metric = metric
        self.metric_kwargs = {key: float(value) if key in ("beta", "zero_division") else value
                              for key, value in metric_kwargs.items()}
        self.options = {**options, "average": checked["average"], "classes": checked["classes"]}
        del self.options["class_weight"]
        # A buffer: .to(device) moves it with the model; not in the state_dict (it is an option).
        self.register_buffer("class_weight", checked["class_weight"], persistent=False)

    def forward(self, preds: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        return _metric_loss(preds, target, self.metric, metric_kwargs=self.metric_kwargs, weight=weight,
                            class_weight=self.class_weight, **self.options)

    def extra_repr(self) -> str:
        """Every constructor argument that differs from its default."""
        values = {**self.options, **self.metric_kwargs, "metric": self.metric,
                  "metric_kwargs": self.metric_kwargs or None, "class_weight": self.class_weight}
        parameters = inspect.signature(type(self).__init__).parameters
        return ", ".join(f"{name}={values[name]!r}" for name, parameter in parameters.items()
                         if name in values and not _is_default(values[name], parameter.default))


@document
class FBetaLoss(SoftSetLoss):
    """1 − F_β averaged over the threshold grid (beta=1: the F1 loss): :func:`fbeta_loss` as a
    module, options checked at construction, ``forward(preds, target, weight=None)``.

    {loss_sections}

    Example:
        >>> import softset_fast as sf
        >>> criterion = sf.FBetaLoss(beta=2, task="multilabel", average="none")
        >>> criterion
        FBetaLoss(beta=2.0, average='none', task='multilabel')
        >>> preds = torch.tensor([[0.9, 0.1], [0.8, 0.7], [0.4, 0.2], [0.3, 0.9]])
        >>> criterion(preds, torch.tensor([[1, 0], [0, 1], [1, 0], [0, 1]]))
        tensor([0.3888, 0.2420])
    """

    @strict_keywords
    def __init__(self, beta: float = 1.0, *, zero_division: float = 0.0, average: Average | None = "macro",
                 classes: Sequence[int] | None = None, class_weight: ClassWeight = None,
                 ignore_absent_classes: bool = False, thresholds: Thresholds = None, approx: Approx = "linear",
                 delta: float = 0.2, k: float = 10.0, task: Task = "binary", num_classes: int | None = None,
                 ignore_index: int | None = None, multidim_average: MultidimAverage = "global",
                 from_logits: bool = False, backend: Backend = "auto", validate_args: bool = True,
                 sync_dist: bool = False, process_group: ProcessGroup | None = None):
        nn.Module.__init__(self)
        self._setup("fbeta", {"beta": beta, "zero_division": zero_division}, pick(locals(), MODULE_OPTIONS))


@document
class AccuracyLoss(SoftSetLoss):
    """1 − accuracy averaged over the threshold grid: :func:`accuracy_loss` as a module, options
    checked at construction, ``forward(preds, target, weight=None)``.

    {loss_sections}

    Example:
        >>> import softset_fast as sf
        >>> criterion = sf.AccuracyLoss(thresholds=[0.25, 0.5, 0.75])
        >>> criterion(torch.tensor([0.9, 0.8, 0.4, 0.3]), torch.tensor([1, 0, 1, 0]))
        tensor(0.4440)
    """

    @strict_keywords
    def __init__(self, *, zero_division: float = 0.0, average: Average | None = "macro",
                 classes: Sequence[int] | None = None, class_weight: ClassWeight = None,
                 ignore_absent_classes: bool = False, thresholds: Thresholds = None, approx: Approx = "linear",
                 delta: float = 0.2, k: float = 10.0, task: Task = "binary", num_classes: int | None = None,
                 ignore_index: int | None = None, multidim_average: MultidimAverage = "global",
                 from_logits: bool = False, backend: Backend = "auto", validate_args: bool = True,
                 sync_dist: bool = False, process_group: ProcessGroup | None = None):
        nn.Module.__init__(self)
        self._setup("accuracy", {"zero_division": zero_division}, pick(locals(), MODULE_OPTIONS))


@document
class AUROCLoss(SoftSetLoss):
    """1 − AUROC over the threshold grid: :func:`auroc_loss` as a module, options checked at
    construction, ``forward(preds, target, weight=None)``.

    {loss_sections}

    Example:
        >>> import softset_fast as sf
        >>> criterion = sf.AUROCLoss(task="multiclass", classes=[1, 2], approx="sigmoid")
        >>> probs = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.3, 0.3, 0.4], [0.5, 0.4, 0.1]])
        >>> criterion(probs, torch.tensor([0, 1, 2, 1]))
        tensor(0.1898)
    """

    @strict_keywords
    def __init__(self, *, zero_division: float = 0.0, average: Average | None = "macro",
                 classes: Sequence[int] | None = None, class_weight: ClassWeight = None,
                 ignore_absent_classes: bool = False, thresholds: Thresholds = None, approx: Approx = "linear",
                 delta: float = 0.2, k: float = 10.0, task: Task = "binary", num_classes: int | None = None,
                 ignore_index: int | None = None, multidim_average: MultidimAverage = "global",
                 from_logits: bool = False, backend: Backend = "auto", validate_args: bool = True,
                 sync_dist: bool = False, process_group: ProcessGroup | None = None):
        nn.Module.__init__(self)
        self._setup("auroc", {"zero_division": zero_division}, pick(locals(), MODULE_OPTIONS))
