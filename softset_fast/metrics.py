"""Confusion-matrix metrics on soft (or hard) counts.

Every function takes ``cm`` [..., T, 4] holding (tp, fn, fp, tn) per threshold,
as returned by :func:`softset_fast.soft_confusion_matrix`, and returns [..., T]
(``auroc``: [...]). Where a denominator is zero the result is ``zero_division``
(default 0.0), never NaN, and its gradient is zero.

``average`` reduces the class axis, the axis just before T (cm[..., C, T, 4]):
"none" keeps it; "macro" is the unweighted mean of the per-class metric;
"weighted" weights each class by its support tp + fn (uniform when there are
no positives at all); "micro" sums the counts over classes first.
"""
from __future__ import annotations

import functools

import torch

AVERAGES = ("none", "macro", "micro", "weighted")


def _unpack(cm: torch.Tensor):
    if not isinstance(cm, torch.Tensor):
        raise TypeError(f"cm must be a torch.Tensor, got {type(cm).__name__}")
    if cm.dim() < 2 or cm.shape[-1] != 4:
        raise ValueError(f"cm must have shape [..., T, 4] (tp, fn, fp, tn), got {tuple(cm.shape)}")
    if not cm.is_floating_point():
        cm = cm.to(torch.float32)
    return cm.unbind(-1)


def _safe_divide(numerator, denominator, zero_division: float):
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


def _class_weights(cm):
    support = (cm[..., 0] + cm[..., 1]).mean(-1)            # [..., C] (tp + fn is the same at every τ)
    total = support.sum(-1, keepdim=True)
    uniform = torch.full_like(support, 1.0 / support.shape[-1])
    return torch.where(total > 0, support / torch.where(total > 0, total, torch.ones_like(total)), uniform)


def _averaged(per_threshold_metric):
    """Adds ``average`` handling to a metric of the counts."""
    def metric(cm: torch.Tensor, *args, average: str | None = "none", **kwargs):
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
    return functools.wraps(per_threshold_metric)(metric)  # its name, so a metric pickles by reference


@_averaged
def fbeta(cm, beta: float = 1.0, zero_division: float = 0.0):
    """F_β = (1 + β²)TP / ((1 + β²)TP + β²FN + FP), per threshold."""
    if not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta!r}")
    tp, fn, fp, _ = _unpack(cm)
    scale = 1 + beta**2
    return _safe_divide(scale * tp, scale * tp + beta**2 * fn + fp, zero_division)


@_averaged
def f1(cm, zero_division: float = 0.0):
    """F1 = 2TP / (2TP + FN + FP), per threshold."""
    return fbeta(cm, 1.0, zero_division)


@_averaged
def accuracy(cm, zero_division: float = 0.0):
    """(TP + TN) / (TP + FN + FP + TN), per threshold."""
    tp, fn, fp, tn = _unpack(cm)
    return _safe_divide(tp + tn, tp + fn + fp + tn, zero_division)


@_averaged
def precision(cm, zero_division: float = 0.0):
    """TP / (TP + FP), per threshold."""
    tp, _, fp, _ = _unpack(cm)
    return _safe_divide(tp, tp + fp, zero_division)


@_averaged
def recall(cm, zero_division: float = 0.0):
    """TP / (TP + FN) (sensitivity, true positive rate), per threshold."""
    tp, fn, _, _ = _unpack(cm)
    return _safe_divide(tp, tp + fn, zero_division)


@_averaged
def specificity(cm, zero_division: float = 0.0):
    """TN / (TN + FP) (true negative rate), per threshold."""
    _, _, fp, tn = _unpack(cm)
    return _safe_divide(tn, tn + fp, zero_division)


@_averaged
def balanced_accuracy(cm, zero_division: float = 0.0):
    """(recall + specificity) / 2, per threshold."""
    return (recall(cm, zero_division) + specificity(cm, zero_division)) / 2


@_averaged
def jaccard(cm, zero_division: float = 0.0):
    """TP / (TP + FN + FP) (intersection over union), per threshold."""
    tp, fn, fp, _ = _unpack(cm)
    return _safe_divide(tp, tp + fn + fp, zero_division)


@_averaged
def gmean(cm, zero_division: float = 0.0):
    """sqrt(recall · specificity), per threshold."""
    return _safe_sqrt(recall(cm, zero_division) * specificity(cm, zero_division))


@_averaged
def mcc(cm, zero_division: float = 0.0):
    """(TP·TN − FP·FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)), per threshold.

    Computed in float64 whatever the counts' dtype: the product of four counts overflows
    float32 from counts of about 1e9·1e10 on (and TP·TN − FP·FN cancels there).
    """
    tp, fn, fp, tn = _unpack(cm)
    dtype = tp.dtype
    tp, fn, fp, tn = (x.to(torch.float64) for x in (tp, fn, fp, tn))
    denominator = _safe_sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return _safe_divide(tp * tn - fp * fn, denominator, zero_division).to(dtype)


@_averaged
def auroc(cm, zero_division: float = 0.0):
    """Area under the ROC curve through the grid's (FPR, TPR) points, closed by (0, 0) and (1, 1).

    The trapezoid rule over the points ordered by threshold: (1, 1), (FPR(τ_1), TPR(τ_1)), …,
    (FPR(τ_T), TPR(τ_T)), (0, 0), with ascending τ. Returns [...] (no T axis); ``zero_division``
    where there are no positives or no negatives.
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
    return torch.where(defined, area, torch.full_like(area, zero_division))


METRICS = {
    "f1": f1, "fbeta": fbeta, "accuracy": accuracy, "precision": precision, "recall": recall,
    "specificity": specificity, "balanced_accuracy": balanced_accuracy, "jaccard": jaccard,
    "gmean": gmean, "mcc": mcc, "auroc": auroc,
}
