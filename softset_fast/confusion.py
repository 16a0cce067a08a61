"""The public entry point: soft confusion counts over a threshold grid."""
from __future__ import annotations

import torch

from ._prepare import Layout, prepare
from .backends.registry import counts_function, resolve_backend


def soft_confusion_matrix(preds: torch.Tensor, target: torch.Tensor, *, thresholds=None, approx: str = "linear",
                          delta: float = 0.2, k: float = 10.0, task: str = "binary", num_classes: int | None = None,
                          weight: torch.Tensor | None = None, ignore_index: int | None = None,
                          multidim_average: str = "global", from_logits: bool = False, backend: str = "auto",
                          validate_args: bool = True, sync_dist: bool = False, process_group=None) -> torch.Tensor:
    """Soft confusion counts (tp, fn, fp, tn) at every threshold, differentiable in ``preds``.

    With H̃ the approximation of the step 1[p ≥ τ], weights w and targets y ∈ [0, 1]:
    TP = Σ w·y·H̃, FN = Σ w·y·(1 − H̃), FP = Σ w·(1 − y)·H̃, TN = Σ w·(1 − y)·(1 − H̃),
    so TP + FN and FP + TN do not depend on τ.

    Args:
        preds: probabilities in [0, 1] (logits with ``from_logits=True``); float16, bfloat16,
            float32 or float64. binary: any shape; multilabel / multiclass: [N, C, ...].
        target: binary / multilabel: preds' shape, bool, {0, 1} integers or soft labels in [0, 1];
            multiclass: class indices of shape [N, ...] (one-vs-rest, no one-hot is built).
        thresholds: None (0.1, …, 0.9), an int T (T evenly spaced points in (0, 1)), a list or
            a 1-D tensor, strictly ascending.
        approx: "linear" (paper Eq. 5, parameter ``delta`` in (0, 0.5)), "sigmoid" (slope ``k`` > 0)
            or "step" (exact counts, zero gradient).
        weight: non-negative per-element weights of target's shape.
        ignore_index: target value whose elements are left out (outside {0, 1}, or outside
            [0, C) for multiclass).
        multidim_average: "global" sums over the batch; "samplewise" keeps the batch axis.
        from_logits: apply sigmoid (binary, multilabel) or softmax over dim 1 (multiclass) first.
        backend: "auto" (the fused kernel for the tensors' device when built, else the reference
            with a warning), "reference", "cpu", "cuda" or "triton".
        validate_args: check the data's values (ranges, NaN); one extra read of the inputs.
        sync_dist: sum the counts over ``process_group`` (default: the world) with a differentiable
            all-reduce, so every rank gets the global counts and, under DDP's gradient averaging,
            the gradients of the loss on the concatenated batch (see softset_fast.distributed).
            Needs an initialised process group and multidim_average="global".

    Returns:
        binary [T, 4]; multilabel / multiclass [C, T, 4]; samplewise adds a leading [N].
        float64 for float64 preds, else float32 (accumulated in float64 by the fused kernels).
        An empty batch gives zero counts.
    """
    prepared = prepare(preds, target, thresholds=thresholds, approx=approx, delta=delta, k=k, task=task,
                       num_classes=num_classes, weight=weight, ignore_index=ignore_index,
                       multidim_average=multidim_average, from_logits=from_logits, validate_args=validate_args)
    soft_counts = counts_function(resolve_backend(backend, prepared.preds.device))
    return counts_of_prepared(prepared, soft_counts, sync_dist, process_group)


def counts_of_prepared(prepared: Layout, soft_counts, sync_dist: bool, process_group) -> torch.Tensor:
    """Runs the op ``soft_counts`` on prepared inputs, sums over ranks if asked, shapes the result."""
    return op_counts(prepared, soft_counts, sync_dist, process_group).reshape(prepared.out_shape)


def op_counts(prepared: Layout, soft_counts, sync_dist: bool, process_group) -> torch.Tensor:
    """The op's [G, C, T, 4] counts of prepared inputs, summed over ranks when ``sync_dist``."""
    counts = soft_counts(prepared.preds, prepared.target, prepared.weight, prepared.grid, prepared.approx,
                         prepared.k, prepared.num_classes, prepared.ignore_index, prepared.samplewise)
    if sync_dist:
        from .distributed import all_reduce_counts, check_ranks_agree
        if not prepared.samplewise:  # (samplewise: all_reduce_counts raises the clear error)
            options = dict(task=prepared.task, approx=prepared.approx, k=prepared.k if prepared.approx == "sigmoid"
                           else None, ignore_index=prepared.ignore_index)
            check_ranks_agree(counts, prepared.grid, options, process_group)
        counts = all_reduce_counts(counts, process_group, samplewise=prepared.samplewise)
    return counts
