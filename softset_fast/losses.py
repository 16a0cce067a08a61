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
from .confusion import soft_confusion_matrix


def _resolve_metric(metric) -> Callable:
    if callable(metric):
        return metric
    if isinstance(metric, str) and metric in _metrics.METRICS:
        return _metrics.METRICS[metric]
    raise ValueError(f"metric must be one of {sorted(_metrics.METRICS)} or a callable on the counts, got {metric!r}")


def metric_loss(preds: torch.Tensor, target: torch.Tensor, metric="f1", *, average: str = "macro",
                metric_kwargs: dict | None = None, **confusion_kwargs) -> torch.Tensor:
    """1 − mean(metric(soft_confusion_matrix(preds, target, **confusion_kwargs))).

    ``metric``: a name of softset_fast.metrics (e.g. "f1", "mcc", "auroc") or a callable taking
    the counts [..., T, 4] and returning per-threshold values. ``average`` reduces the class axis
    for task="multilabel" / "multiclass" (ignored for binary). Every keyword of
    soft_confusion_matrix is accepted (thresholds, approx, delta, k, task, weight, backend, …).
    """
    function = _resolve_metric(metric)
    counts = soft_confusion_matrix(preds, target, **confusion_kwargs)
    kwargs = dict(metric_kwargs or {})
    if confusion_kwargs.get("task", "binary") != "binary" and isinstance(metric, str):
        kwargs["average"] = average
    values = function(counts, **kwargs)
    return 1 - values.mean()


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
