"""Losses 1 − metric on the soft counts, functional and as nn.Modules.

Threshold metrics are averaged over the grid (and over classes with
``average``, and over samples for multidim_average="samplewise"); the result
is a scalar. Defaults follow the paper and its official package: thresholds
0.1..0.9, approx="linear" with delta=0.2 (sigmoid k=10).
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from . import metrics as _metrics
from ._prepare import resolve, to_op_layout
from .backends.registry import counts_function, fused_loss_runs, resolve_backend
from .confusion import counts_of_prepared, op_counts


def _resolve_metric(metric) -> Callable:
    if callable(metric):
        return metric
    if isinstance(metric, str) and metric in _metrics.METRICS:
        return _metrics.METRICS[metric]
    raise ValueError(f"metric must be one of {sorted(_metrics.METRICS)} or a callable on the counts, got {metric!r}")


# soft_confusion_matrix's keywords and defaults, resolved once per loss call.
_CONFUSION_DEFAULTS = dict(thresholds=None, approx="linear", delta=0.2, k=10.0, task="binary", num_classes=None,
                           weight=None, ignore_index=None, multidim_average="global", from_logits=False,
                           backend="auto", validate_args=True, sync_dist=False, process_group=None)
_LAYOUT_KEYS = ("thresholds", "approx", "delta", "k", "task", "num_classes", "weight", "ignore_index",
                "multidim_average", "from_logits", "validate_args")


def metric_loss(preds: torch.Tensor, target: torch.Tensor, metric="f1", *, average: str = "macro",
                metric_kwargs: dict | None = None, **confusion_kwargs) -> torch.Tensor:
    """1 − mean(metric(soft_confusion_matrix(preds, target, **confusion_kwargs))).

    ``metric``: a name of softset_fast.metrics (e.g. "f1", "mcc", "auroc") or a callable taking
    the counts [..., T, 4] and returning per-threshold values. ``average`` reduces the class axis
    for task="multilabel" / "multiclass" (ignored for binary); "none" gives the per-class losses [C].
    Every keyword of soft_confusion_matrix is accepted (thresholds, approx, delta, k, task, weight,
    backend, …). A built-in metric on the C++ CPU backend runs as one fused op (counts, metric and
    mean, and one backward), see docs/architecture.md.
    """
    function = _resolve_metric(metric)
    unknown = set(confusion_kwargs) - set(_CONFUSION_DEFAULTS)
    if unknown:
        raise TypeError(f"metric_loss got unexpected keyword arguments {sorted(unknown)}; the counts take "
                        f"{sorted(_CONFUSION_DEFAULTS)}")
    options = {**_CONFUSION_DEFAULTS, **confusion_kwargs}
    kwargs = dict(metric_kwargs or {})
    layout = resolve(preds, target, **{key: options[key] for key in _LAYOUT_KEYS})
    backend = resolve_backend(options["backend"], layout.preds.device)
    task_average = average if layout.task != "binary" else "macro"
    if fused_loss_runs(backend, layout.preds.device) and _fusable(metric, kwargs, task_average):
        return _fused_loss(layout, metric, task_average, kwargs, options["sync_dist"], options["process_group"])
    counts = counts_of_prepared(to_op_layout(layout), counts_function(backend), options["sync_dist"],
                                options["process_group"])
    if layout.task != "binary" and isinstance(metric, str):
        kwargs["average"] = average
    values = function(counts, **kwargs)
    if layout.task != "binary" and average == "none":
        return 1 - _mean_except_class_axis(values, layout.samplewise)
    return 1 - values.mean()


def _fusable(metric, kwargs: dict, average) -> bool:
    allowed = {"beta", "zero_division"} if metric == "fbeta" else {"zero_division"}
    return isinstance(metric, str) and metric in _metrics.METRICS and set(kwargs) <= allowed and \
        average in _metrics.AVERAGES


def _fused_loss(layout, metric: str, average: str, kwargs: dict, sync_dist: bool, process_group):
    beta = float(kwargs.get("beta", 1.0))
    zero_division = float(kwargs.get("zero_division", 0.0))
    ops = torch.ops.softset_fast
    if not sync_dist:
        return ops.soft_set_loss(layout.preds, layout.target, layout.weight, layout.grid, layout.approx, layout.k,
                                 layout.num_classes, layout.ignore_index, layout.samplewise, list(layout.shape),
                                 layout.task, layout.validate_values, metric, average, beta, zero_division)
    # The collective sits between the counts and the loss: counts -> all-reduce -> epilogue.
    counts = op_counts(to_op_layout(layout), ops.soft_counts, True, process_group)
    return ops.metric_loss(counts, metric, average, beta, zero_division)


def _mean_except_class_axis(values: torch.Tensor, samplewise: bool) -> torch.Tensor:
    """Per-class mean of metric values [(N,) C(, T)]: over the samples and the thresholds."""
    class_axis = 1 if samplewise else 0
    dims = [d for d in range(values.dim()) if d != class_axis]
    return values.mean(dims) if dims else values


def fbeta_loss(preds, target, beta: float = 1.0, *, zero_division: float = 0.0, average: str = "macro",
               **confusion_kwargs):
    """1 − F_β averaged over the threshold grid."""
    return metric_loss(preds, target, "fbeta", average=average,
                       metric_kwargs={"beta": beta, "zero_division": zero_division}, **confusion_kwargs)


def f1_loss(preds, target, **kwargs):
    """1 − F1 averaged over the threshold grid."""
    return fbeta_loss(preds, target, 1.0, **kwargs)


def accuracy_loss(preds, target, *, zero_division: float = 0.0, average: str = "macro", **confusion_kwargs):
    """1 − accuracy averaged over the threshold grid."""
    return metric_loss(preds, target, "accuracy", average=average,
                       metric_kwargs={"zero_division": zero_division}, **confusion_kwargs)


def auroc_loss(preds, target, *, zero_division: float = 0.0, average: str = "macro", **confusion_kwargs):
    """1 − AUROC of the soft ROC curve through the grid (closed by (0, 0) and (1, 1))."""
    return metric_loss(preds, target, "auroc", average=average,
                       metric_kwargs={"zero_division": zero_division}, **confusion_kwargs)


class SoftSetLoss(nn.Module):
    """nn.Module form of :func:`metric_loss`; ``forward(preds, target, weight=None)``."""

    def __init__(self, metric="f1", *, average: str = "macro", metric_kwargs: dict | None = None,
                 **confusion_kwargs):
        super().__init__()
        _resolve_metric(metric)
        if "weight" in confusion_kwargs:
            raise TypeError("pass weight to forward(), not to the constructor")
        self.metric = metric
        self.average = average
        self.metric_kwargs = dict(metric_kwargs or {})
        self.confusion_kwargs = confusion_kwargs

    def forward(self, preds: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None):
        return metric_loss(preds, target, self.metric, average=self.average, metric_kwargs=self.metric_kwargs,
                           weight=weight, **self.confusion_kwargs)

    def extra_repr(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in self.confusion_kwargs.items())
        return f"metric={self.metric!r}" + (f", {options}" if options else "")


class FBetaLoss(SoftSetLoss):
    """1 − F_β averaged over the threshold grid (beta=1: the F1 loss)."""

    def __init__(self, beta: float = 1.0, *, zero_division: float = 0.0, **kwargs):
        super().__init__("fbeta", metric_kwargs={"beta": beta, "zero_division": zero_division}, **kwargs)


class AccuracyLoss(SoftSetLoss):
    """1 − accuracy averaged over the threshold grid."""

    def __init__(self, *, zero_division: float = 0.0, **kwargs):
        super().__init__("accuracy", metric_kwargs={"zero_division": zero_division}, **kwargs)


class AUROCLoss(SoftSetLoss):
    """1 − AUROC over the threshold grid."""

    def __init__(self, *, zero_division: float = 0.0, **kwargs):
        super().__init__("auroc", metric_kwargs={"zero_division": zero_division}, **kwargs)
