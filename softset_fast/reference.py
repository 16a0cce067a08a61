"""The pure-PyTorch reference: the oracle every fused backend is tested against.

:func:`soft_confusion_matrix` has the signature and the results of
:func:`softset_fast.soft_confusion_matrix`, computed by the O(N·T) reference op
(:func:`soft_counts`, in softset_fast/backends/reference.py) without going
through the backend dispatcher it is meant to check.
"""
from __future__ import annotations

from .backends.reference import approximate_step, heaviside, soft_counts
from .confusion import counts_of_prepared
from ._prepare import prepare

__all__ = ["soft_confusion_matrix", "soft_counts", "heaviside", "approximate_step"]


def soft_confusion_matrix(preds, target, *, thresholds=None, approx="linear", delta=0.2, k=10.0,
                          task="binary", num_classes=None, weight=None, ignore_index=None,
                          multidim_average="global", from_logits=False, backend="reference",
                          validate_args=True, sync_dist=False, process_group=None):
    """Reference implementation of :func:`softset_fast.soft_confusion_matrix` (see its docstring)."""
    if backend not in ("reference", "auto"):
        raise ValueError(f"softset_fast.reference.soft_confusion_matrix only runs backend='reference', got {backend!r}")
    prepared = prepare(preds, target, thresholds=thresholds, approx=approx, delta=delta, k=k, task=task,
                       num_classes=num_classes, weight=weight, ignore_index=ignore_index,
                       multidim_average=multidim_average, from_logits=from_logits, validate_args=validate_args)
    return counts_of_prepared(prepared, soft_counts, sync_dist, process_group)
