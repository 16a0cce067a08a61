"""Confusion-matrix metrics on soft (or hard) counts.

Every function takes ``cm`` [..., T, 4] holding (tp, fn, fp, tn) per threshold,
as returned by :func:`softset_fast.soft_confusion_matrix`, and returns [..., T]
(``auroc``: [...]). Where a denominator is zero the result is ``zero_division``
(default 0.0), never NaN, and its gradient is zero.

``average`` reduces the class axis, the axis just before T (cm[..., C, T, 4]):
"none" (the default, or None) keeps it; "macro" is the unweighted mean of the
per-class metric; "weighted" weights each class by its support tp + fn (uniform
when there are no positives at all); "micro" sums the counts over classes first.

Example:
    >>> import torch
    >>> from softset_fast import metrics
    >>> cm = torch.tensor([[6., 2., 1., 11.], [3., 5., 0., 12.]])   # 2 thresholds: (tp, fn, fp, tn)
    >>> metrics.f1(cm)
    tensor([0.8000, 0.5455])
"""
from __future__ import annotations

import functools
import inspect
import math

import torch

from ._options import AVERAGES, METRIC_DOCS, Average, document

__all__ = ["METRICS", "AVERAGES", "fbeta", "f1", "accuracy", "precision", "recall", "specificity",
           "balanced_accuracy", "jaccard", "gmean", "mcc", "auroc"]


def _unpack(cm: torch.Tensor):
    if not isinstance(cm, torch.Tensor):
        raise TypeError(f"cm must be a torch.Tensor, got {type(cm).__name__}")
    if cm.dim() < 2 or cm.shape[-1] != 4:
        raise ValueError(f"cm must have shape [..., T, 4] (tp, fn, fp, tn), got {tuple(cm.shape)}")
    if not cm.is_floating_point():
        cm = cm.to(torch.float32)
    return cm.unbind(-1)


def _safe_divide(numerator, denominator, zero_division: float):
    _check_zero_division(zero_division)
    zero = denominator == 0
    ratio = numerator / torch.where(zero, torch.ones_like(denominator), denominator)
    return torch.where(zero, torch.full_like(ratio, zero_division), ratio)


def _safe_sqrt(x):
    """sqrt with a zero (not infinite) gradient at 0."""
    positive = x > 0
    return torch.where(positive, torch.where(positive, x, torch.ones_like(x)).sqrt(), torch.zeros_like(x))


def _check_average(average, cm):
    if average is None:
        average = "none"
    if average not in AVERAGES:
        raise ValueError(f"average must be one of {AVERAGES}, got {average!r}")
    if average != "none" and cm.dim() < 3:
        raise ValueError(f"average={average!r} needs a class axis: cm of shape [..., C, T, 4], got {tuple(cm.shape)}")
    return average


def _check_zero_division(zero_division) -> None:
    if isinstance(zero_division, bool) or not isinstance(zero_division, (int, float)) or \
            not math.isfinite(zero_division):
        raise ValueError(f"zero_division must be a finite number (the value of 0/0), got {zero_division!r}")


def _class_weights(cm):
    support = (cm[..., 0] + cm[..., 1]).mean(-1)            # [..., C] (tp + fn is the same at every τ)
    total = support.sum(-1, keepdim=True)
    uniform = torch.full_like(support, 1.0 / max(support.shape[-1], 1))  # (no classes: an empty tensor)
    return torch.where(total > 0, support / torch.where(total > 0, total, torch.ones_like(total)), uniform)


def with_average(per_threshold_metric):
    """Adds ``average`` handling to a metric of the counts [..., C, T, 4] -> [..., C, T] (or [..., C])."""
    def metric(cm: torch.Tensor, *args, average: Average | None = "none", **kwargs):
        average = _check_average(average, cm)
        if average == "micro":
            return per_threshold_metric(cm.sum(-3), *args, **kwargs)
        values = per_threshold_metric(cm, *args, **kwargs)     # [..., C, T] or [..., C]
        if average == "none":
            return values
        class_axis = -2 if values.dim() == cm.dim() - 1 else -1
        if average == "macro":
            return values.mean(class_axis)
        weights = _class_weights(cm)
        if class_axis == -2:
            weights = weights.unsqueeze(-1)
        return (values * weights).sum(class_axis)
    return metric


def _averaged(per_threshold_metric):
    """with_average for a built-in metric: keeps its signature (with ``average`` added, for help()
    and inspect.signature) and its name (so it pickles by reference), fills its docstring."""
    signature = inspect.signature(per_threshold_metric)
    average = inspect.Parameter("average", inspect.Parameter.KEYWORD_ONLY, default="none",
                                annotation="Average | None")
    wrapped = functools.wraps(per_threshold_metric)(with_average(per_threshold_metric))
    wrapped.__signature__ = signature.replace(parameters=[*signature.parameters.values(), average])
    return document(wrapped, METRIC_DOCS)


@_averaged
def fbeta(cm: torch.Tensor, beta: float = 1.0, zero_division: float = 0.0) -> torch.Tensor:
    """F_β = (1 + β²)TP / ((1 + β²)TP + β²FN + FP), per threshold.

    {metric_sections}

    Returns:
        F_β per threshold, in [0, 1].

    Example:
        >>> cm = torch.tensor([[6., 2., 1., 11.], [3., 5., 0., 12.]])
        >>> fbeta(cm, beta=2.0)
        tensor([0.7692, 0.4286])
    """
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not (beta > 0 and math.isfinite(beta)):
        raise ValueError(f"beta must be a finite number > 0, got {beta!r}")
    tp, fn, fp, _ = _unpack(cm)
    scale = 1 + beta**2
    return _safe_divide(scale * tp, scale * tp + beta**2 * fn + fp, zero_division)


@_averaged
def f1(cm: torch.Tensor, zero_division: float = 0.0) -> torch.Tensor:
    """F1 = 2TP / (2TP + FN + FP), per threshold.

    {metric_sections}

    Returns:
        F1 per threshold, in [0, 1].

    Example:
        >>> cm = torch.tensor([[6., 2., 1., 11.], [3., 5., 0., 12.]])
        >>> f1(cm)
        tensor([0.8000, 0.5455])
    """
    return fbeta(cm, 1.0, zero_division)


@_averaged
def accuracy(cm: torch.Tensor, zero_division: float = 0.0) -> torch.Tensor:
    """(TP + TN) / (TP + FN + FP + TN), per threshold.

    {metric_sections}

    Returns:
        accuracy per threshold, in [0, 1].

    Example:
        >>> cm = torch.tensor([[6., 2., 1., 11.], [3., 5., 0., 12.]])
        >>> accuracy(cm)
        tensor([0.8500, 0.7500])
    """
    tp, fn, fp, tn = _unpack(cm)
    return _safe_divide(tp + tn, tp + fn + fp + tn, zero_division)


@_averaged
def precision(cm: torch.Tensor, zero_division: float = 0.0) -> torch.Tensor:
    """TP / (TP + FP), per threshold.

    {metric_sections}

    Returns:
        precision per threshold, in [0, 1].

    Example:
        >>> cm = torch.tensor([[6., 2., 1., 11.], [0., 8., 0., 12.]])
        >>> precision(cm, zero_division=1.0)   # nothing predicted positive at the second threshold
        tensor([0.8571, 1.0000])
    """
    tp, _, fp, _ = _unpack(cm)
    return _safe_divide(tp, tp + fp, zero_division)


@_averaged
def recall(cm: torch.Tensor, zero_division: float = 0.0) -> torch.Tensor:
    """TP / (TP + FN) (sensitivity, true positive rate), per threshold.

    {metric_sections}

    Returns:
        recall per threshold, in [0, 1].

    Example:
        >>> cm = torch.tensor([[6., 2., 1., 11.], [3., 5., 0., 12.]])
        >>> recall(cm)
        tensor([0.7500, 0.3750])
    """
    tp, fn, _, _ = _unpack(cm)
    return _safe_divide(tp, tp + fn, zero_division)


@_averaged
def specificity(cm: torch.Tensor, zero_division: float = 0.0) -> torch.Tensor:
    """TN / (TN + FP) (true negative rate), per threshold.

    {metric_sections}

    Returns:
        specificity per threshold, in [0, 1].

    Example:
        >>> cm = torch.tensor([[6., 2., 1., 11.], [3., 5., 0., 12.]])
        >>> specificity(cm)
        tensor([0.9167, 1.0000])
    """
    _, _, fp, tn = _unpack(cm)
    return _safe_divide(tn, tn + fp, zero_division)


@_averaged
def balanced_accuracy(cm: torch.Tensor, zero_division: float = 0.0) -> torch.Tensor:
    """(recall + specificity) / 2, per threshold.

    {metric_sections}

    Returns:
        balanced accuracy per threshold, in [0, 1].

    Example:
        >>> cm = torch.tensor([[6., 2., 1., 11.], [3., 5., 0., 12.]])
        >>> balanced_accuracy(cm)
        tensor([0.8333, 0.6875])
    """
    return (recall(cm, zero_division) + specificity(cm, zero_division)) / 2


@_averaged
def jaccard(cm: torch.Tensor, zero_division: float = 0.0) -> torch.Tensor:
    """TP / (TP + FN + FP) (intersection over union), per threshold.

    {metric_sections}

    Returns:
        the Jaccard index per threshold, in [0, 1].

    Example:
        >>> cm = torch.tensor([[6., 2., 1., 11.], [3., 5., 0., 12.]])
        >>> jaccard(cm)
        tensor([0.6667, 0.3750])
    """
    tp, fn, fp, _ = _unpack(cm)
    return _safe_divide(tp, tp + fn + fp, zero_division)


@_averaged
def gmean(cm: torch.Tensor, zero_division: float = 0.0) -> torch.Tensor:
    """sqrt(recall · specificity), per threshold.

    {metric_sections}

    Returns:
        the geometric mean per threshold, in [0, 1].

    Example:
        >>> cm = torch.tensor([[6., 2., 1., 11.], [3., 5., 0., 12.]])
        >>> gmean(cm)
        tensor([0.8292, 0.6124])
    """
    return _safe_sqrt(recall(cm, zero_division) * specificity(cm, zero_division))


@_averaged
def mcc(cm: torch.Tensor, zero_division: float = 0.0) -> torch.Tensor:
    """(TP·TN − FP·FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)), per threshold.

    Computed in float64 whatever the counts' dtype: the product of four counts overflows
    float32 from counts of about 1e9·1e10 on (and TP·TN − FP·FN cancels there).

    {metric_sections}

    Returns:
        Matthews' correlation coefficient per threshold, in [−1, 1].

    Example:
        >>> cm = torch.tensor([[6., 2., 1., 11.], [3., 5., 0., 12.]])
        >>> mcc(cm)
        tensor([0.6847, 0.5145])
    """
    tp, fn, fp, tn = _unpack(cm)
    dtype = tp.dtype
    tp, fn, fp, tn = (x.to(torch.float64) for x in (tp, fn, fp, tn))
    denominator = _safe_sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return _safe_divide(tp * tn - fp * fn, denominator, zero_division).to(dtype)


@_averaged
def auroc(cm: torch.Tensor, zero_division: float = 0.0) -> torch.Tensor:
    """Area under the ROC curve through the grid's (FPR, TPR) points, closed by (0, 0) and (1, 1).

    The trapezoid rule over the points ordered by threshold: (1, 1), (FPR(τ_1), TPR(τ_1)), …,
    (FPR(τ_T), TPR(τ_T)), (0, 0), with ascending τ; ``zero_division`` where there are no
    positives or no negatives.

    {metric_sections}

    Returns:
        the area, [...] (no T axis; [..., C] for average="none" with a class axis).

    Example:
        >>> cm = torch.tensor([[6., 2., 1., 11.], [3., 5., 0., 12.]])
        >>> auroc(cm)
        tensor(0.8490)
    """
    tp, fn, fp, tn = _unpack(cm)
    positives = tp + fn
    negatives = fp + tn
    tpr = _safe_divide(tp, positives, 0.0)
    fpr = _safe_divide(fp, negatives, 0.0)
    one = torch.ones_like(tpr[..., :1])
    x = torch.cat([one, fpr, torch.zeros_like(one)], dim=-1)
    y = torch.cat([one, tpr, torch.zeros_like(one)], dim=-1)
    area = ((x[..., :-1] - x[..., 1:]) * (y[..., :-1] + y[..., 1:]) / 2).sum(-1)
    defined = (positives[..., 0] > 0) & (negatives[..., 0] > 0)
    _check_zero_division(zero_division)
    return torch.where(defined, area, torch.full_like(area, zero_division))


METRICS = {
    "f1": f1, "fbeta": fbeta, "accuracy": accuracy, "precision": precision, "recall": recall,
    "specificity": specificity, "balanced_accuracy": balanced_accuracy, "jaccard": jaccard,
    "gmean": gmean, "mcc": mcc, "auroc": auroc,
}
